/* lib/json.h - JSON in and out.
 * Reading: jsmn tokenizes (strict, with parent links), then every string, number and
 * literal is validated (escapes, UTF-8, number grammar, one top-level value), so callers
 * walk a well-formed tree of slices into the source text. Tokens come from a pool.
 * Writing: hub_jw appends to a hub_buf, escaping strings and tracking commas.
 * jsmn.h is included by json.c only. */
#ifndef HUB_JSON_H
#define HUB_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/pool.h"

enum hub_json_type {
	HUB_JSON_OBJECT = 1,
	HUB_JSON_ARRAY,
	HUB_JSON_STRING,
	HUB_JSON_PRIMITIVE, /* number, true, false, null */
};

struct hub_json_tok {
	enum hub_json_type type;
	int start, end; /* byte offsets into the source; a string's exclude the quotes */
	int size;       /* object: number of keys; array: number of items; key: 1 */
	int parent;     /* index of the parent token, -1 for the root */
};

struct hub_json_doc {
	const char *src;
	size_t len;
	struct hub_json_tok *tok; /* tok[0] is the root value */
	int n;
};

/* Parses text (which must outlive doc) with at most max_tokens tokens. 0, or -EBADMSG with
 * err naming line, column and the problem, or -EMSGSIZE when over max_tokens. */
int hub_json_parse(struct hub_pool *pool, struct hub_str text, int max_tokens,
		   struct hub_json_doc *doc, struct hub_err *err) HUB_MUSTCHECK;
/* 1-based line and column (in bytes) of a byte offset, for error messages. */
void hub_json_linecol(struct hub_str text, size_t offset, int *line, int *col);

/* Index just past the subtree at i. */
int hub_json_next(const struct hub_json_doc *doc, int i);
/* The value of key in the object at obj, or -1 (also when obj is not an object). */
int hub_json_get(const struct hub_json_doc *doc, int obj, const char *key);
/* Nested lookup: hub_json_path(doc, 0, "metadata", "phone_number_id", NULL). */
int hub_json_path(const struct hub_json_doc *doc, int obj, ...);
bool hub_json_is(const struct hub_json_doc *doc, int i, enum hub_json_type type);
bool hub_json_is_null(const struct hub_json_doc *doc, int i);
/* The raw source bytes of a token (a string's without quotes, still escaped). */
struct hub_str hub_json_raw(const struct hub_json_doc *doc, int i);
/* The unescaped value of a string token: a slice of the source when it has no escapes,
 * else a copy in pool. -EINVAL when i is not a string (or i < 0). */
int hub_json_string(const struct hub_json_doc *doc, int i, struct hub_pool *pool,
		    struct hub_str *out) HUB_MUSTCHECK;
/* An integer number token (no fraction or exponent) that fits int64; -EINVAL or -ERANGE. */
int hub_json_int64(const struct hub_json_doc *doc, int i, int64_t *out) HUB_MUSTCHECK;
int hub_json_double(const struct hub_json_doc *doc, int i, double *out) HUB_MUSTCHECK;
int hub_json_bool(const struct hub_json_doc *doc, int i, bool *out) HUB_MUSTCHECK;

/* Iterating: for (int k = hub_json_first(doc, obj); k >= 0; k = hub_json_after(doc, k))
 * visits an array's items, or an object's keys (the value is k + 1). */
int hub_json_first(const struct hub_json_doc *doc, int i);
int hub_json_after(const struct hub_json_doc *doc, int k);

/* Appends s as a quoted JSON string; invalid UTF-8 becomes U+FFFD. */
void hub_json_add_str(struct hub_buf *b, struct hub_str s);

#define HUB_JW_DEPTH 32

struct hub_jw {
	struct hub_buf *b;
	int depth;
	bool first[HUB_JW_DEPTH]; /* nothing written yet at this depth */
	bool after_key;
};

void hub_jw_init(struct hub_jw *w, struct hub_buf *b);
void hub_jw_obj_open(struct hub_jw *w);
void hub_jw_obj_close(struct hub_jw *w);
void hub_jw_arr_open(struct hub_jw *w);
void hub_jw_arr_close(struct hub_jw *w);
void hub_jw_key(struct hub_jw *w, const char *key);
void hub_jw_str(struct hub_jw *w, struct hub_str s);
void hub_jw_cstr(struct hub_jw *w, const char *s); /* NULL writes null */
void hub_jw_int(struct hub_jw *w, int64_t v);
void hub_jw_double(struct hub_jw *w, double v);
void hub_jw_bool(struct hub_jw *w, bool v);
void hub_jw_null(struct hub_jw *w);
/* Appends already-encoded JSON as one value. */
void hub_jw_raw(struct hub_jw *w, struct hub_str json);

#endif
