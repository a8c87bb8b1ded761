/* lib/buf.c - see buf.h. */
#include "lib/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char hub_buf_empty[1];

struct hub_str hub_str_from(const char *cstr)
{
	if (!cstr)
		return HUB_STR_NULL;
	return (struct hub_str){ cstr, strlen(cstr) };
}

bool hub_str_eq(struct hub_str a, struct hub_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool hub_str_eqs(struct hub_str a, const char *cstr)
{
	return hub_str_eq(a, hub_str_from(cstr));
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

bool hub_str_caseeqs(struct hub_str a, const char *cstr)
{
	size_t n = strlen(cstr);

	if (a.len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a.p[i]) != lower((unsigned char)cstr[i]))
			return false;
	return true;
}

bool hub_str_startswith(struct hub_str s, const char *prefix)
{
	size_t n = strlen(prefix);

	return s.len >= n && memcmp(s.p, prefix, n) == 0;
}

void hub_buf_init(struct hub_buf *b)
{
	b->p = hub_buf_empty;
	b->len = 0;
	b->cap = 0;
}

void hub_buf_release(struct hub_buf *b)
{
	if (!b)
		return;
	if (b->cap)
		free(b->p);
	hub_buf_init(b);
}

void hub_buf_reset(struct hub_buf *b)
{
	hub_buf_truncate(b, 0);
}

void hub_buf_grow(struct hub_buf *b, size_t extra)
{
	size_t need;

	if (extra > SIZE_MAX - b->len - 1)
		hub_assert(!"hub_buf size overflow");
	need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap < SIZE_MAX / 2 ? cap * 2 : need;
	if (b->cap) {
		b->p = hub_xrealloc(b->p, cap);
	} else {
		b->p = hub_xmalloc(cap);
		b->p[0] = '\0';
	}
	b->cap = cap;
}

void hub_buf_add(struct hub_buf *b, const void *p, size_t n)
{
	if (!n)
		return;
	hub_buf_grow(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void hub_buf_adds(struct hub_buf *b, const char *s)
{
	hub_buf_add(b, s, strlen(s));
}

void hub_buf_addstr(struct hub_buf *b, struct hub_str s)
{
	hub_buf_add(b, s.p, s.len);
}

void hub_buf_addch(struct hub_buf *b, int c)
{
	char ch = (char)c;

	hub_buf_add(b, &ch, 1);
}

void hub_buf_addf(struct hub_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	hub_assert(n >= 0);
	if (b->cap && (size_t)n < b->cap - b->len) {
		b->len += (size_t)n;
		return;
	}
	hub_buf_grow(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

int hub_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void hub_buf_addpct(struct hub_buf *b, const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) || strchr(keep, *p)) {
			hub_buf_addch(b, *p);
		} else {
			hub_buf_addch(b, '%');
			hub_buf_addch(b, hex[*p >> 4]);
			hub_buf_addch(b, hex[*p & 15]);
		}
	}
}

void hub_buf_addhex(struct hub_buf *b, const void *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *s = p;

	hub_buf_grow(b, 2 * n);
	for (size_t i = 0; i < n; i++) {
		b->p[b->len++] = digits[s[i] >> 4];
		b->p[b->len++] = digits[s[i] & 15];
	}
	b->p[b->len] = '\0';
}

void hub_buf_truncate(struct hub_buf *b, size_t len)
{
	hub_assert(len <= b->len);
	if (!b->cap)
		return;
	b->len = len;
	b->p[len] = '\0';
}

void hub_buf_consume(struct hub_buf *b, size_t n)
{
	hub_assert(n <= b->len);
	if (!n)
		return;
	memmove(b->p, b->p + n, b->len - n);
	hub_buf_truncate(b, b->len - n);
}

char *hub_buf_detach(struct hub_buf *b, size_t *len)
{
	char *p;

	if (!b->cap)
		hub_buf_grow(b, 0);
	p = b->p;
	if (len)
		*len = b->len;
	hub_buf_init(b);
	return p;
}

struct hub_str hub_buf_str(const struct hub_buf *b)
{
	return (struct hub_str){ b->p, b->len };
}

int hub_buf_read_file(struct hub_buf *b, const char *path)
{
	size_t old = b->len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (;;) {
		hub_buf_grow(b, 8192);
		ssize_t n = read(fd, b->p + b->len, b->cap - b->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int ret = -errno;
			close(fd);
			if (b->cap)
				hub_buf_truncate(b, old);
			return ret;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
		b->p[b->len] = '\0';
	}
	close(fd);
	return 0;
}
