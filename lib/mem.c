/* lib/mem.c - see mem.h. */
#include "lib/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static HUB_NORETURN void oom(size_t n)
{
	fprintf(stderr, "<2>fatal: out of memory (%zu bytes)\n", n);
	abort();
}

void *hub_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *hub_xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (size && nmemb > SIZE_MAX / size)
		oom(SIZE_MAX);
	p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		oom(nmemb * size);
	return p;
}

void *hub_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		oom(n);
	return q;
}

char *hub_xstrdup(const char *s)
{
	return hub_xmemdup(s, strlen(s));
}

char *hub_xmemdup(const void *p, size_t n)
{
	char *q;

	if (n == SIZE_MAX)
		oom(n);
	q = hub_xmalloc(n + 1);
	if (n)
		memcpy(q, p, n);
	q[n] = '\0';
	return q;
}

void hub__assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "<2>fatal: assertion failed: %s (%s:%d)\n", expr, file, line);
	abort();
}
