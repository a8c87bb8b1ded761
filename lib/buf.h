/* lib/buf.h - growable byte buffers (hub_buf, owning) and slices (hub_str, borrowed).
 * A hub_buf is always NUL-terminated, so .p can be passed to C string functions (git's
 * strbuf). Knows nothing about where the bytes come from. */
#ifndef HUB_BUF_H
#define HUB_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/mem.h"

/* A borrowed, not NUL-terminated slice: valid as long as what it points into. */
struct hub_str {
	const char *p;
	size_t len;
};

#define HUB_STR(lit) ((struct hub_str){ (lit), sizeof(lit) - 1 })
#define HUB_STR_NULL ((struct hub_str){ NULL, 0 })
/* For printf: printf("%.*s", HUB_STR_FMT(s)) */
#define HUB_STR_FMT(s) (int)(s).len, (s).p

struct hub_str hub_str_from(const char *cstr); /* NULL gives HUB_STR_NULL */
bool hub_str_eq(struct hub_str a, struct hub_str b);
bool hub_str_eqs(struct hub_str a, const char *cstr);
/* ASCII case-insensitive equality (HTTP header names). */
bool hub_str_caseeqs(struct hub_str a, const char *cstr);
bool hub_str_startswith(struct hub_str s, const char *prefix);

extern char hub_buf_empty[1];

struct hub_buf {
	char *p;    /* NUL-terminated; points to hub_buf_empty until the first growth */
	size_t len; /* bytes used, not counting the NUL */
	size_t cap; /* bytes allocated; 0 while p is hub_buf_empty */
};

#define HUB_BUF_INIT { hub_buf_empty, 0, 0 }

void hub_buf_init(struct hub_buf *b);
/* Frees the memory; b is left as after hub_buf_init(). NULL-safe. */
void hub_buf_release(struct hub_buf *b);
/* Empties b, keeping its capacity. */
void hub_buf_reset(struct hub_buf *b);
/* Ensures room for extra more bytes (and the NUL). */
void hub_buf_grow(struct hub_buf *b, size_t extra);
void hub_buf_add(struct hub_buf *b, const void *p, size_t n);
void hub_buf_adds(struct hub_buf *b, const char *s);
void hub_buf_addstr(struct hub_buf *b, struct hub_str s);
void hub_buf_addch(struct hub_buf *b, int c);
void hub_buf_addf(struct hub_buf *b, const char *fmt, ...) HUB_PRINTF(2, 3);
/* The value of one hex digit (either case), or -1. */
int hub_hexval(int c);
/* Lower-case hex of n bytes. */
void hub_buf_addhex(struct hub_buf *b, const void *p, size_t n);
/* Appends s %-encoded (RFC 3986): letters, digits, "-._~" and the characters of keep as
 * they are, every other byte as %XX. */
void hub_buf_addpct(struct hub_buf *b, const char *s, const char *keep);
/* Shortens b to len bytes (len <= b->len). */
void hub_buf_truncate(struct hub_buf *b, size_t len);
/* Removes the first n bytes. */
void hub_buf_consume(struct hub_buf *b, size_t n);
/* Hands the memory to the caller (always malloc'ed, NUL-terminated); b is emptied. */
char *hub_buf_detach(struct hub_buf *b, size_t *len);
struct hub_str hub_buf_str(const struct hub_buf *b);
/* Appends the whole file. 0 or a negative errno; on error b keeps what it had. */
int hub_buf_read_file(struct hub_buf *b, const char *path) HUB_MUSTCHECK;

#endif
