/* lib/pool.c - see pool.h. Chunks of 4 KiB or more; a large allocation gets its own. */
#include "lib/pool.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hub_pool_chunk {
	struct hub_pool_chunk *next;
	size_t size; /* usable bytes in data */
	size_t used;
	alignas(max_align_t) unsigned char data[];
};

#define POOL_CHUNK 4096

void hub_pool_init(struct hub_pool *pool)
{
	pool->chunks = NULL;
	pool->total = 0;
}

void hub_pool_release(struct hub_pool *pool)
{
	if (!pool)
		return;
	while (pool->chunks) {
		struct hub_pool_chunk *next = pool->chunks->next;
		free(pool->chunks);
		pool->chunks = next;
	}
	pool->total = 0;
}

/* n bytes aligned for any type, as they are. */
static void *pool_take(struct hub_pool *pool, size_t n)
{
	const size_t align = alignof(max_align_t);
	struct hub_pool_chunk *c = pool->chunks;
	size_t need;

	if (n > SIZE_MAX / 2)
		hub_assert(!"pool allocation too large");
	need = (n + align - 1) & ~(align - 1);
	if (!need)
		need = align;
	if (!c || c->size - c->used < need) {
		size_t size = need > POOL_CHUNK / 2 ? need : POOL_CHUNK;
		struct hub_pool_chunk *nc = hub_xmalloc(sizeof(*nc) + size);

		nc->size = size;
		nc->used = 0;
		if (c && size == need && c->size - c->used >= POOL_CHUNK / 4) {
			/* a big one-off: keep the current chunk first for the small ones */
			nc->next = c->next;
			c->next = nc;
		} else {
			nc->next = c;
			pool->chunks = nc;
		}
		c = nc;
	}
	void *p = c->data + c->used;
	c->used += need;
	pool->total += need;
	return p;
}

void *hub_pool_alloc(struct hub_pool *pool, size_t n)
{
	return memset(pool_take(pool, n), 0, n);
}

/* The bytes of nmemb items of size bytes; aborts on overflow. */
static size_t array_bytes(size_t nmemb, size_t size)
{
	if (size && nmemb > SIZE_MAX / 2 / size)
		hub_assert(!"pool allocation overflow");
	return nmemb * size;
}

void *hub_pool_calloc(struct hub_pool *pool, size_t nmemb, size_t size)
{
	return hub_pool_alloc(pool, array_bytes(nmemb, size));
}

void *hub_pool_grow(struct hub_pool *pool, void *items, size_t *cap, size_t first,
		    size_t size)
{
	size_t n = *cap;
	void *grown;

	*cap = n ? 2 * n : first;
	/* the old items copied, only the new ones zeroed */
	grown = pool_take(pool, array_bytes(*cap, size));
	if (n)
		memcpy(grown, items, n * size);
	memset((char *)grown + n * size, 0, (*cap - n) * size);
	return grown;
}

char *hub_pool_strndup(struct hub_pool *pool, const char *s, size_t n)
{
	char *p = hub_pool_alloc(pool, n + 1);

	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *hub_pool_strdup(struct hub_pool *pool, const char *s)
{
	return hub_pool_strndup(pool, s, strlen(s));
}

struct hub_str hub_pool_strcopy(struct hub_pool *pool, struct hub_str s)
{
	return (struct hub_str){ hub_pool_strndup(pool, s.p, s.len), s.len };
}

char *hub_pool_sprintf(struct hub_pool *pool, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	p = hub_pool_alloc(pool, (size_t)(n < 0 ? 0 : n) + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
	va_end(ap);
	return p;
}
