/* tests/fuzz/fuzz_json.c - lib/json.h's reader on any bytes (`make fuzz-json`). When the text
 * parses: the token tree is consistent (parents before children, spans inside them, keys of
 * size 1, sizes as the iterators count them), every accessor answers within bounds, a
 * token limit of exactly n passes and n - 1 fails with -EMSGSIZE, and parse -> write
 * (hub_json_add_str, and hub_jw where the depth allows) -> parse gives the same tree, whose
 * writing gives the same bytes again. When it does not: a negative errno and a message. */
#include <errno.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/json.h"
#include "lib/pool.h"
#include "lib/utf8.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "json";

#define MAX_TOKENS 8192

/* Writes the subtree at i compactly; returns the index after it. */
static int write_tree(const struct hub_json_doc *doc, int i, struct hub_pool *pool,
		      struct hub_buf *out)
{
	const struct hub_json_tok *t = &doc->tok[i];
	struct hub_str s;
	int k, next = i + 1;

	switch (t->type) {
	case HUB_JSON_STRING:
		fuzz_check(hub_json_string(doc, i, pool, &s) == 0, "token %d", i);
		hub_json_add_str(out, s);
		return next;
	case HUB_JSON_PRIMITIVE:
		hub_buf_addstr(out, hub_json_raw(doc, i));
		return next;
	case HUB_JSON_ARRAY:
		hub_buf_addch(out, '[');
		for (k = 0; k < t->size; k++) {
			if (k)
				hub_buf_addch(out, ',');
			next = write_tree(doc, next, pool, out);
		}
		hub_buf_addch(out, ']');
		return next;
	case HUB_JSON_OBJECT:
		hub_buf_addch(out, '{');
		for (k = 0; k < t->size; k++) {
			if (k)
				hub_buf_addch(out, ',');
			fuzz_check(doc->tok[next].type == HUB_JSON_STRING, "key %d", next);
			fuzz_check(hub_json_string(doc, next, pool, &s) == 0, "key %d", next);
			hub_json_add_str(out, s);
			hub_buf_addch(out, ':');
			next = write_tree(doc, next + 1, pool, out);
		}
		hub_buf_addch(out, '}');
		return next;
	}
	fuzz_check(0, "token %d has type %d", i, (int)t->type);
	return next;
}

/* The same through hub_jw; false when a key holds a NUL (hub_jw_key takes a C string). */
static bool jw_tree(const struct hub_json_doc *doc, int i, struct hub_pool *pool,
		    struct hub_jw *w, int *next)
{
	const struct hub_json_tok *t = &doc->tok[i];
	struct hub_str s;
	int n = i + 1;

	switch (t->type) {
	case HUB_JSON_STRING:
		fuzz_check(hub_json_string(doc, i, pool, &s) == 0, "token %d", i);
		hub_jw_str(w, s);
		break;
	case HUB_JSON_PRIMITIVE:
		hub_jw_raw(w, hub_json_raw(doc, i));
		break;
	case HUB_JSON_ARRAY:
		hub_jw_arr_open(w);
		for (int k = 0; k < t->size; k++)
			if (!jw_tree(doc, n, pool, w, &n))
				return false;
		hub_jw_arr_close(w);
		break;
	case HUB_JSON_OBJECT:
		hub_jw_obj_open(w);
		for (int k = 0; k < t->size; k++) {
			fuzz_check(hub_json_string(doc, n, pool, &s) == 0, "key %d", n);
			if (memchr(s.p, '\0', s.len))
				return false;
			hub_jw_key(w, hub_pool_strndup(pool, s.p, s.len));
			if (!jw_tree(doc, n + 1, pool, w, &n))
				return false;
		}
		hub_jw_obj_close(w);
		break;
	}
	*next = n;
	return true;
}

static int depth_of(const struct hub_json_doc *doc)
{
	int max = 0;

	for (int i = 0; i < doc->n; i++) {
		int d = 0;

		for (int p = doc->tok[i].parent; p >= 0; p = doc->tok[p].parent)
			if (doc->tok[p].type != HUB_JSON_STRING)
				d++;
		if (d > max)
			max = d;
	}
	return max;
}

static bool is_number(struct hub_str r)
{
	return r.len && (r.p[0] == '-' || (r.p[0] >= '0' && r.p[0] <= '9'));
}

static void check_tree(const struct hub_json_doc *doc, struct hub_pool *pool)
{
	fuzz_check(doc->n >= 1 && doc->tok, "n %d", doc->n);
	fuzz_check(doc->tok[0].parent == -1, "root's parent %d", doc->tok[0].parent);
	fuzz_check(hub_json_next(doc, 0) == doc->n, "the root spans %d of %d tokens",
		   hub_json_next(doc, 0), doc->n);
	for (int i = 0; i < doc->n; i++) {
		const struct hub_json_tok *t = &doc->tok[i];
		struct hub_str raw = hub_json_raw(doc, i), s;
		int count = 0, p = t->parent;

		fuzz_check(t->start >= 0 && t->start <= t->end && (size_t)t->end <= doc->len,
			   "token %d spans %d..%d of %zu", i, t->start, t->end, doc->len);
		fuzz_check(hub_json_next(doc, i) > i && hub_json_next(doc, i) <= doc->n,
			   "next of %d", i);
		if (i > 0) {
			fuzz_check(p >= 0 && p < i, "token %d has parent %d", i, p);
			/* a value's parent is its key: after the key, inside the key's object */
			if (doc->tok[p].type == HUB_JSON_STRING)
				fuzz_check(doc->tok[p].end < t->start &&
						   t->end <= doc->tok[doc->tok[p].parent].end,
					   "value %d outside its object", i);
			else
				fuzz_check(doc->tok[p].start <= t->start &&
						   t->end <= doc->tok[p].end,
					   "token %d outside its parent %d", i, p);
			if (doc->tok[p].type == HUB_JSON_OBJECT)
				fuzz_check(t->type == HUB_JSON_STRING && t->size == 1,
					   "key %d: type %d size %d", i, (int)t->type, t->size);
			else
				fuzz_check(doc->tok[p].type == HUB_JSON_ARRAY ||
						   (doc->tok[p].type == HUB_JSON_STRING &&
						    doc->tok[p].parent >= 0 &&
						    doc->tok[doc->tok[p].parent].type ==
							    HUB_JSON_OBJECT),
					   "token %d under a %d", i, (int)doc->tok[p].type);
		}
		switch (t->type) {
		case HUB_JSON_OBJECT:
		case HUB_JSON_ARRAY:
			for (int k = hub_json_first(doc, i); k >= 0; k = hub_json_after(doc, k)) {
				fuzz_check(k > i && k < doc->n && doc->tok[k].parent == i,
					   "child %d of %d", k, i);
				if (t->type == HUB_JSON_OBJECT && !memchr(hub_json_raw(doc, k).p,
									  '\0',
									  hub_json_raw(doc, k).len)) {
					char *key = hub_pool_strndup(pool, hub_json_raw(doc, k).p,
								     hub_json_raw(doc, k).len);
					int v = hub_json_get(doc, i, key);

					fuzz_check(v > i && v <= k + 1 && doc->tok[v - 1].parent == i,
						   "get %d in %d: %d", k, i, v);
					fuzz_check(hub_json_path(doc, i, key, NULL) == v, "path");
				}
				count++;
			}
			fuzz_check(count == t->size, "token %d: %d children, size %d", i, count,
				   t->size);
			break;
		case HUB_JSON_STRING:
			fuzz_check(hub_json_string(doc, i, pool, &s) == 0, "string %d", i);
			fuzz_check(s.len <= raw.len && hub_utf8_valid(s.p, s.len),
				   "string %d: %zu bytes from %zu", i, s.len, raw.len);
			break;
		case HUB_JSON_PRIMITIVE: {
			int64_t v;
			double d;
			bool b;
			bool lit = hub_str_eqs(raw, "true") || hub_str_eqs(raw, "false") ||
				   hub_str_eqs(raw, "null");

			fuzz_check(lit || is_number(raw), "primitive %d: %.*s", i,
				   HUB_STR_FMT(raw));
			fuzz_check((hub_json_bool(doc, i, &b) == 0) ==
					   (hub_str_eqs(raw, "true") || hub_str_eqs(raw, "false")),
				   "bool %d", i);
			fuzz_check(hub_json_is_null(doc, i) == hub_str_eqs(raw, "null"), "null %d",
				   i);
			if (hub_json_int64(doc, i, &v) == 0)
				fuzz_check(!memchr(raw.p, '.', raw.len) && !memchr(raw.p, 'e', raw.len) &&
						   !memchr(raw.p, 'E', raw.len),
					   "int64 of %.*s", HUB_STR_FMT(raw));
			if (hub_json_double(doc, i, &d) == 0)
				fuzz_check(is_number(raw), "double of %.*s", HUB_STR_FMT(raw));
			fuzz_check(hub_json_string(doc, i, pool, &s) == -EINVAL, "string of %d", i);
			break;
		}
		default:
			fuzz_check(0, "token %d has type %d", i, (int)t->type);
		}
	}
	/* Out-of-range indexes are answered, not read. */
	fuzz_check(hub_json_get(doc, -1, "a") == -1 && hub_json_get(doc, doc->n, "a") == -1,
		   "get out of range");
	fuzz_check(hub_json_raw(doc, doc->n).p == NULL && hub_json_first(doc, doc->n) == -1,
		   "raw/first out of range");
	fuzz_check(!hub_json_is(doc, -1, HUB_JSON_OBJECT), "is(-1)");
}

/* Both trees have the same shape and the same values. */
static void check_same(const struct hub_json_doc *a, const struct hub_json_doc *b,
		       struct hub_pool *pool)
{
	fuzz_check(a->n == b->n, "%d tokens, then %d", a->n, b->n);
	for (int i = 0; i < a->n; i++) {
		struct hub_str sa, sb;

		fuzz_check(a->tok[i].type == b->tok[i].type && a->tok[i].size == b->tok[i].size &&
				   a->tok[i].parent == b->tok[i].parent,
			   "token %d differs", i);
		if (a->tok[i].type == HUB_JSON_STRING) {
			fuzz_check(hub_json_string(a, i, pool, &sa) == 0 &&
					   hub_json_string(b, i, pool, &sb) == 0 &&
					   hub_str_eq(sa, sb),
				   "string %d differs", i);
		} else if (a->tok[i].type == HUB_JSON_PRIMITIVE) {
			fuzz_check(hub_str_eq(hub_json_raw(a, i), hub_json_raw(b, i)),
				   "primitive %d differs", i);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf out = HUB_BUF_INIT, again = HUB_BUF_INIT, jw = HUB_BUF_INIT;
	struct hub_json_doc doc, doc2, doc3;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_str text = { (const char *)data, size };
	int ret;

	ret = hub_json_parse(&pool, text, MAX_TOKENS, &doc, &err);
	if (ret < 0) {
		fuzz_check((ret == -EBADMSG || ret == -EMSGSIZE) && err.code == ret && err.msg[0],
			   "ret %d, err %d \"%s\"", ret, err.code, err.msg);
		goto out;
	}
	check_tree(&doc, &pool);

	/* the limit counts tokens exactly (a bare number or literal is one, unchecked) */
	fuzz_check(hub_json_parse(&pool, text, doc.n, &doc2, NULL) == 0, "limit n");
	if (doc.tok[0].type != HUB_JSON_PRIMITIVE)
		fuzz_check(hub_json_parse(&pool, text, doc.n - 1, &doc2, NULL) == -EMSGSIZE,
			   "limit n - 1");

	write_tree(&doc, 0, &pool, &out);
	ret = hub_json_parse(&pool, hub_buf_str(&out), MAX_TOKENS, &doc2, &err);
	fuzz_check(ret == 0, "the written text does not parse: %s", err.msg);
	check_same(&doc, &doc2, &pool);
	write_tree(&doc2, 0, &pool, &again);
	fuzz_check(hub_str_eq(hub_buf_str(&out), hub_buf_str(&again)), "second writing differs");
	fuzz_check(hub_json_parse(&pool, hub_buf_str(&again), MAX_TOKENS, &doc3, NULL) == 0,
		   "third parse");

	if (depth_of(&doc) < HUB_JW_DEPTH - 1) {
		struct hub_jw w;
		int next;

		hub_jw_init(&w, &jw);
		if (jw_tree(&doc, 0, &pool, &w, &next))
			fuzz_check(hub_str_eq(hub_buf_str(&out), hub_buf_str(&jw)),
				   "hub_jw writes differently");
	}
out:
	hub_buf_release(&jw);
	hub_buf_release(&again);
	hub_buf_release(&out);
	hub_pool_release(&pool);
	return 0;
}
