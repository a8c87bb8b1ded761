/* lib/pool.h - an arena: many small allocations freed at once (nginx ngx_pool_t, h2o
 * h2o_mem_pool_t). One per request; pure modules allocate only from the pool they are given
 * and never free what they return. */
#ifndef HUB_POOL_H
#define HUB_POOL_H

#include <stddef.h>

#include "lib/buf.h"

struct hub_pool_chunk;

struct hub_pool {
	struct hub_pool_chunk *chunks; /* newest first */
	size_t total;                  /* bytes handed out, for limits and metrics */
};

#define HUB_POOL_INIT { NULL, 0 }

void hub_pool_init(struct hub_pool *pool);
/* Frees every allocation of the pool; the pool can be used again. NULL-safe. */
void hub_pool_release(struct hub_pool *pool);
/* n bytes aligned for any type, zeroed. Never NULL. */
void *hub_pool_alloc(struct hub_pool *pool, size_t n);
/* Zeroed array; aborts on overflow. */
void *hub_pool_calloc(struct hub_pool *pool, size_t nmemb, size_t size);
/* An array of size-byte items that is full (*cap items, all used) moved into one of twice
 * the capacity (first when *cap is 0); returns it and updates *cap. The old array stays in
 * the pool; the items past the old ones are zeroed. */
void *hub_pool_grow(struct hub_pool *pool, void *items, size_t *cap, size_t first,
		    size_t size);
/* NUL-terminated copies. */
char *hub_pool_strdup(struct hub_pool *pool, const char *s);
char *hub_pool_strndup(struct hub_pool *pool, const char *s, size_t n);
struct hub_str hub_pool_strcopy(struct hub_pool *pool, struct hub_str s);
/* A formatted string in pool. */
char *hub_pool_sprintf(struct hub_pool *pool, const char *fmt, ...) HUB_PRINTF(2, 3);

#endif
