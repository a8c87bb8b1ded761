/* lib/mem.h - allocation that aborts on failure, assertions and small macros.
 * Memory is bounded by configured limits, not by malloc failing (git, redis, h2o):
 * an allocation failure is fatal. Knows nothing about the rest of hub. */
#ifndef HUB_MEM_H
#define HUB_MEM_H

#include <stddef.h>

#define HUB_MUSTCHECK __attribute__((warn_unused_result))
#define HUB_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HUB_NORETURN __attribute__((noreturn))
#define HUB_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define hub_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

void *hub_xmalloc(size_t n);
/* Zeroed array of nmemb * size bytes; aborts on overflow. */
void *hub_xcalloc(size_t nmemb, size_t size);
void *hub_xrealloc(void *p, size_t n);
char *hub_xstrdup(const char *s);
/* n bytes of p and a terminating NUL. */
char *hub_xmemdup(const void *p, size_t n);

HUB_NORETURN void hub__assert_fail(const char *expr, const char *file, int line);

/* For our own bugs only; active in every build (kresd's kr_require). Whatever comes from
 * outside the process is validated, never asserted. */
#define hub_assert(e) ((e) ? (void)0 : hub__assert_fail(#e, __FILE__, __LINE__))

#endif
