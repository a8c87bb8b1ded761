/* lib/json.c - see json.h. A recursive-descent validator checks the grammar first (so
 * errors carry a precise position and jsmn's leniencies never reach callers) and counts the
 * tokens, then jsmn builds the token tree in one pass. */
#include "lib/json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "lib/utf8.h"

#define JSON_MAX_DEPTH 64

/* jsmn fills hub_json_tok's directly: its tokens (with JSMN_PARENT_LINKS) have the same
 * fields in the same places, and its types the same values. */
#define TOK_AS_JSMN(field)                                                                         \
	_Static_assert(offsetof(struct hub_json_tok, field) == offsetof(jsmntok_t, field) &&       \
			   sizeof(((struct hub_json_tok *)0)->field) ==                            \
			       sizeof(((jsmntok_t *)0)->field),                                    \
		       "hub_json_tok." #field " is not jsmntok_t's")
TOK_AS_JSMN(type);
TOK_AS_JSMN(start);
TOK_AS_JSMN(end);
TOK_AS_JSMN(size);
TOK_AS_JSMN(parent);
_Static_assert(sizeof(struct hub_json_tok) == sizeof(jsmntok_t), "hub_json_tok is not jsmntok_t");
_Static_assert((int)HUB_JSON_OBJECT == (int)JSMN_OBJECT && (int)HUB_JSON_ARRAY == (int)JSMN_ARRAY &&
		   (int)HUB_JSON_STRING == (int)JSMN_STRING &&
		   (int)HUB_JSON_PRIMITIVE == (int)JSMN_PRIMITIVE,
	       "hub_json_type's values are not jsmn's");

struct vstate {
	const char *s;
	size_t n, i;
	const char *why;
	unsigned tokens; /* values and keys so far: jsmn's token count */
};

static void skip_ws(struct vstate *v)
{
	while (v->i < v->n && (v->s[v->i] == ' ' || v->s[v->i] == '\t' || v->s[v->i] == '\n' ||
			       v->s[v->i] == '\r'))
		v->i++;
}

static bool fail(struct vstate *v, const char *why)
{
	v->why = why;
	return false;
}

/* The end of the bytes from p[i] that a JSON string holds as they are: printable ASCII
 * but '"' and '\\', and two-byte UTF-8 characters (a lead byte 0xc2..0xdf and a
 * continuation byte: always valid, so Cyrillic text is one run). The validator passes
 * them without a look more, the writer copies them. */
static size_t plain_run(const unsigned char *p, size_t i, size_t n)
{
	while (i < n) {
		unsigned char c = p[i];

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\')
			i++;
		else if (c - 0xc2u < 0x1e && i + 1 < n && (p[i + 1] & 0xc0) == 0x80)
			i += 2;
		else
			break;
	}
	return i;
}

static bool v_string(struct vstate *v)
{
	v->i++; /* opening quote */
	while ((v->i = plain_run((const unsigned char *)v->s, v->i, v->n)) < v->n) {
		unsigned char c = (unsigned char)v->s[v->i];
		if (c == '"') {
			v->i++;
			return true;
		}
		if (c < 0x20)
			return fail(v, "control character in string");
		if (c == '\\') {
			if (v->i + 1 >= v->n)
				break;
			char e = v->s[v->i + 1];
			if (e == 'u') {
				if (v->i + 6 > v->n)
					break;
				for (int k = 2; k < 6; k++)
					if (hub_hexval(v->s[v->i + k]) < 0)
						return fail(v, "bad \\u escape");
				v->i += 6;
			} else if (strchr("\"\\/bfnrt", e) && e) {
				v->i += 2;
			} else {
				return fail(v, "bad escape in string");
			}
			continue;
		}
		uint32_t cp;
		size_t len = hub_utf8_decode((const unsigned char *)v->s + v->i, v->n - v->i, &cp);
		if (!len)
			return fail(v, "invalid UTF-8 in string");
		v->i += len;
	}
	return fail(v, "unterminated string");
}

static bool v_number(struct vstate *v)
{
	size_t start = v->i;

	if (v->s[v->i] == '-')
		v->i++;
	if (v->i >= v->n)
		return fail(v, "bad number");
	if (v->s[v->i] == '0') {
		v->i++;
	} else if (v->s[v->i] >= '1' && v->s[v->i] <= '9') {
		while (v->i < v->n && v->s[v->i] >= '0' && v->s[v->i] <= '9')
			v->i++;
	} else {
		return fail(v, "bad number");
	}
	if (v->i < v->n && v->s[v->i] == '.') {
		v->i++;
		if (v->i >= v->n || v->s[v->i] < '0' || v->s[v->i] > '9')
			return fail(v, "bad number");
		while (v->i < v->n && v->s[v->i] >= '0' && v->s[v->i] <= '9')
			v->i++;
	}
	if (v->i < v->n && (v->s[v->i] == 'e' || v->s[v->i] == 'E')) {
		v->i++;
		if (v->i < v->n && (v->s[v->i] == '+' || v->s[v->i] == '-'))
			v->i++;
		if (v->i >= v->n || v->s[v->i] < '0' || v->s[v->i] > '9')
			return fail(v, "bad number");
		while (v->i < v->n && v->s[v->i] >= '0' && v->s[v->i] <= '9')
			v->i++;
	}
	return v->i > start;
}

static bool v_literal(struct vstate *v, const char *lit)
{
	size_t n = strlen(lit);

	if (v->n - v->i < n || memcmp(v->s + v->i, lit, n) != 0)
		return fail(v, "unexpected character");
	v->i += n;
	return true;
}

static bool v_value(struct vstate *v, int depth)
{
	skip_ws(v);
	if (v->i >= v->n)
		return fail(v, "unexpected end of input");
	if (depth > JSON_MAX_DEPTH)
		return fail(v, "nested too deeply");
	v->tokens++;
	switch (v->s[v->i]) {
	case '"':
		return v_string(v);
	case '{':
		v->i++;
		skip_ws(v);
		if (v->i < v->n && v->s[v->i] == '}') {
			v->i++;
			return true;
		}
		for (;;) {
			skip_ws(v);
			if (v->i >= v->n || v->s[v->i] != '"')
				return fail(v, "expected a string key");
			v->tokens++;
			if (!v_string(v))
				return false;
			skip_ws(v);
			if (v->i >= v->n || v->s[v->i] != ':')
				return fail(v, "expected ':'");
			v->i++;
			if (!v_value(v, depth + 1))
				return false;
			skip_ws(v);
			if (v->i < v->n && v->s[v->i] == ',') {
				v->i++;
				continue;
			}
			if (v->i < v->n && v->s[v->i] == '}') {
				v->i++;
				return true;
			}
			return fail(v, "expected ',' or '}'");
		}
	case '[':
		v->i++;
		skip_ws(v);
		if (v->i < v->n && v->s[v->i] == ']') {
			v->i++;
			return true;
		}
		for (;;) {
			if (!v_value(v, depth + 1))
				return false;
			skip_ws(v);
			if (v->i < v->n && v->s[v->i] == ',') {
				v->i++;
				continue;
			}
			if (v->i < v->n && v->s[v->i] == ']') {
				v->i++;
				return true;
			}
			return fail(v, "expected ',' or ']'");
		}
	case 't':
		return v_literal(v, "true");
	case 'f':
		return v_literal(v, "false");
	case 'n':
		return v_literal(v, "null");
	default:
		if (v->s[v->i] == '-' || (v->s[v->i] >= '0' && v->s[v->i] <= '9'))
			return v_number(v);
		return fail(v, "unexpected character");
	}
}

void hub_json_linecol(struct hub_str text, size_t offset, int *line, int *col)
{
	int l = 1, c = 1;

	for (size_t i = 0; i < offset && i < text.len; i++) {
		if (text.p[i] == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col = c;
}

int hub_json_parse(struct hub_pool *pool, struct hub_str text, int max_tokens,
		   struct hub_json_doc *doc, struct hub_err *err)
{
	struct vstate v = { text.p, text.len, 0, NULL, 0 };
	jsmn_parser parser;
	jsmntok_t *toks;
	int line, col, n;

	memset(doc, 0, sizeof(*doc));
	if (text.len > (size_t)INT32_MAX)
		return hub_err_set(err, -EMSGSIZE, "JSON text too large");
	if (v_value(&v, 0)) {
		skip_ws(&v);
		if (v.i != v.n)
			v.why = "trailing characters after the value";
	}
	if (v.why) {
		hub_json_linecol(text, v.i, &line, &col);
		return hub_err_set(err, -EBADMSG, "%d:%d: %s", line, col, v.why);
	}
	v.i = 0;
	skip_ws(&v);
	if (v.s[v.i] != '{' && v.s[v.i] != '[' && v.s[v.i] != '"') {
		/* a bare number or literal: strict jsmn wants a delimiter after it */
		size_t end = v.n;
		while (end > v.i && strchr(" \t\r\n", v.s[end - 1]))
			end--;
		doc->src = text.p;
		doc->len = text.len;
		doc->n = 1;
		doc->tok = hub_pool_calloc(pool, 1, sizeof(*doc->tok));
		doc->tok[0] = (struct hub_json_tok){ HUB_JSON_PRIMITIVE, (int)v.i, (int)end, 0, -1 };
		return 0;
	}
	/* the validator counted the tokens: jsmn fills them in one pass */
	if (v.tokens > (unsigned)max_tokens)
		return hub_err_set(err, -EMSGSIZE, "JSON has %u tokens, limit %d", v.tokens,
				   max_tokens);
	toks = hub_pool_calloc(pool, v.tokens, sizeof(*toks));
	jsmn_init(&parser);
	n = jsmn_parse(&parser, text.p, text.len, toks, v.tokens);
	if (n < 1)
		return hub_err_set(err, -EBADMSG, "malformed JSON");
	doc->src = text.p;
	doc->len = text.len;
	doc->n = n;
	doc->tok = (struct hub_json_tok *)toks; /* the same layout (TOK_AS_JSMN) */
	return 0;
}

int hub_json_next(const struct hub_json_doc *doc, int i)
{
	int end = doc->tok[i].end;

	i++;
	while (i < doc->n && doc->tok[i].start < end)
		i++;
	return i;
}

int hub_json_first(const struct hub_json_doc *doc, int i)
{
	if (i < 0 || i >= doc->n)
		return -1;
	if (doc->tok[i].type != HUB_JSON_OBJECT && doc->tok[i].type != HUB_JSON_ARRAY)
		return -1;
	return doc->tok[i].size > 0 ? i + 1 : -1;
}

int hub_json_after(const struct hub_json_doc *doc, int k)
{
	int parent = doc->tok[k].parent;
	int next;

	if (parent < 0)
		return -1;
	if (doc->tok[parent].type == HUB_JSON_OBJECT)
		next = hub_json_next(doc, k + 1);
	else
		next = hub_json_next(doc, k);
	if (next >= doc->n || doc->tok[next].parent != parent)
		return -1;
	return next;
}

static bool raw_eq(const struct hub_json_doc *doc, int i, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(doc->tok[i].end - doc->tok[i].start) == n &&
	       memcmp(doc->src + doc->tok[i].start, s, n) == 0;
}

int hub_json_get(const struct hub_json_doc *doc, int obj, const char *key)
{
	if (obj < 0 || obj >= doc->n || doc->tok[obj].type != HUB_JSON_OBJECT)
		return -1;
	/* Keys in our payloads carry no escapes; compare raw bytes. */
	for (int k = hub_json_first(doc, obj); k >= 0; k = hub_json_after(doc, k))
		if (raw_eq(doc, k, key))
			return k + 1;
	return -1;
}

int hub_json_path(const struct hub_json_doc *doc, int obj, ...)
{
	va_list ap;
	const char *key;

	va_start(ap, obj);
	while (obj >= 0 && (key = va_arg(ap, const char *)) != NULL)
		obj = hub_json_get(doc, obj, key);
	va_end(ap);
	return obj;
}

bool hub_json_is(const struct hub_json_doc *doc, int i, enum hub_json_type type)
{
	return i >= 0 && i < doc->n && doc->tok[i].type == type;
}

bool hub_json_is_null(const struct hub_json_doc *doc, int i)
{
	return hub_json_is(doc, i, HUB_JSON_PRIMITIVE) && raw_eq(doc, i, "null");
}

struct hub_str hub_json_raw(const struct hub_json_doc *doc, int i)
{
	if (i < 0 || i >= doc->n)
		return HUB_STR_NULL;
	return (struct hub_str){ doc->src + doc->tok[i].start,
				 (size_t)(doc->tok[i].end - doc->tok[i].start) };
}

int hub_json_string(const struct hub_json_doc *doc, int i, struct hub_pool *pool,
		    struct hub_str *out)
{
	struct hub_str raw;
	char *dst;
	size_t n = 0;

	if (!hub_json_is(doc, i, HUB_JSON_STRING))
		return -EINVAL;
	raw = hub_json_raw(doc, i);
	if (!memchr(raw.p, '\\', raw.len)) {
		*out = raw;
		return 0;
	}
	dst = hub_pool_alloc(pool, raw.len + 1); /* unescaping never grows */
	for (size_t k = 0; k < raw.len; k++) {
		if (raw.p[k] != '\\') {
			dst[n++] = raw.p[k];
			continue;
		}
		char e = raw.p[++k];
		switch (e) {
		case 'b': dst[n++] = '\b'; break;
		case 'f': dst[n++] = '\f'; break;
		case 'n': dst[n++] = '\n'; break;
		case 'r': dst[n++] = '\r'; break;
		case 't': dst[n++] = '\t'; break;
		case 'u': {
			uint32_t cp = 0;
			for (int d = 1; d <= 4; d++)
				cp = cp << 4 | (uint32_t)hub_hexval(raw.p[k + d]);
			k += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && k + 6 < raw.len &&
			    raw.p[k + 1] == '\\' && raw.p[k + 2] == 'u') {
				uint32_t lo = 0;
				for (int d = 3; d <= 6; d++)
					lo = lo << 4 | (uint32_t)hub_hexval(raw.p[k + d]);
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					k += 6;
				}
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd; /* a lone surrogate */
			n += hub_utf8_encode(cp, dst + n);
			break;
		}
		default: dst[n++] = e; break; /* " \ / */
		}
	}
	dst[n] = '\0';
	*out = (struct hub_str){ dst, n };
	return 0;
}

int hub_json_int64(const struct hub_json_doc *doc, int i, int64_t *out)
{
	struct hub_str raw;
	char tmp[32];
	char *end;
	long long v;

	if (!hub_json_is(doc, i, HUB_JSON_PRIMITIVE))
		return -EINVAL;
	raw = hub_json_raw(doc, i);
	if (raw.len == 0 || raw.len >= sizeof(tmp) || !(raw.p[0] == '-' ||
	    (raw.p[0] >= '0' && raw.p[0] <= '9')))
		return -EINVAL;
	if (memchr(raw.p, '.', raw.len) || memchr(raw.p, 'e', raw.len) ||
	    memchr(raw.p, 'E', raw.len))
		return -EINVAL;
	memcpy(tmp, raw.p, raw.len);
	tmp[raw.len] = '\0';
	errno = 0;
	v = strtoll(tmp, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

int hub_json_double(const struct hub_json_doc *doc, int i, double *out)
{
	struct hub_str raw;
	char tmp[64];
	char *end;

	if (!hub_json_is(doc, i, HUB_JSON_PRIMITIVE))
		return -EINVAL;
	raw = hub_json_raw(doc, i);
	if (raw.len == 0 || raw.len >= sizeof(tmp) || !(raw.p[0] == '-' ||
	    (raw.p[0] >= '0' && raw.p[0] <= '9')))
		return -EINVAL;
	memcpy(tmp, raw.p, raw.len);
	tmp[raw.len] = '\0';
	*out = strtod(tmp, &end);
	if (*end || !isfinite(*out))
		return -ERANGE;
	return 0;
}

int hub_json_bool(const struct hub_json_doc *doc, int i, bool *out)
{
	if (!hub_json_is(doc, i, HUB_JSON_PRIMITIVE))
		return -EINVAL;
	if (raw_eq(doc, i, "true"))
		*out = true;
	else if (raw_eq(doc, i, "false"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

void hub_json_add_str(struct hub_buf *b, struct hub_str s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s.p;

	hub_buf_grow(b, s.len + 2);
	hub_buf_addch(b, '"');
	for (size_t i = 0; i < s.len;) {
		unsigned char c = p[i];
		size_t j = plain_run(p, i, s.len);

		if (j > i) {
			hub_buf_add(b, p + i, j - i);
			i = j;
			continue;
		}
		if (c >= 0x80) { /* three or four bytes, or not UTF-8 */
			uint32_t cp;
			size_t len = hub_utf8_decode(p + i, s.len - i, &cp);
			if (len) {
				hub_buf_add(b, p + i, len);
				i += len;
			} else {
				hub_buf_adds(b, "\xef\xbf\xbd");
				i++;
			}
			continue;
		}
		switch (c) {
		case '"': hub_buf_adds(b, "\\\""); break;
		case '\\': hub_buf_adds(b, "\\\\"); break;
		case '\n': hub_buf_adds(b, "\\n"); break;
		case '\r': hub_buf_adds(b, "\\r"); break;
		case '\t': hub_buf_adds(b, "\\t"); break;
		default: {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			hub_buf_add(b, e, sizeof(e));
		}
		}
		i++;
	}
	hub_buf_addch(b, '"');
}

void hub_jw_init(struct hub_jw *w, struct hub_buf *b)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
	w->first[0] = true;
}

static void jw_value(struct hub_jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		hub_buf_addch(w->b, ',');
	w->first[w->depth] = false;
}

static void jw_open(struct hub_jw *w, char c)
{
	jw_value(w);
	hub_buf_addch(w->b, c);
	hub_assert(w->depth + 1 < HUB_JW_DEPTH);
	w->first[++w->depth] = true;
}

static void jw_close(struct hub_jw *w, char c)
{
	hub_assert(w->depth > 0);
	w->depth--;
	hub_buf_addch(w->b, c);
}

void hub_jw_obj_open(struct hub_jw *w) { jw_open(w, '{'); }
void hub_jw_obj_close(struct hub_jw *w) { jw_close(w, '}'); }
void hub_jw_arr_open(struct hub_jw *w) { jw_open(w, '['); }
void hub_jw_arr_close(struct hub_jw *w) { jw_close(w, ']'); }

void hub_jw_key(struct hub_jw *w, const char *key)
{
	jw_value(w);
	hub_json_add_str(w->b, hub_str_from(key));
	hub_buf_addch(w->b, ':');
	w->after_key = true;
}

void hub_jw_str(struct hub_jw *w, struct hub_str s)
{
	jw_value(w);
	hub_json_add_str(w->b, s);
}

void hub_jw_cstr(struct hub_jw *w, const char *s)
{
	if (!s) {
		hub_jw_null(w);
		return;
	}
	hub_jw_str(w, hub_str_from(s));
}

void hub_jw_int(struct hub_jw *w, int64_t v)
{
	jw_value(w);
	hub_buf_addf(w->b, "%lld", (long long)v);
}

void hub_jw_double(struct hub_jw *w, double v)
{
	char tmp[32];

	jw_value(w);
	if (!isfinite(v)) {
		hub_buf_adds(w->b, "null");
		return;
	}
	/* the shortest form that reads back as the same double: 43.2567, not 43.256700000000002 */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	hub_buf_adds(w->b, tmp);
}

void hub_jw_bool(struct hub_jw *w, bool v)
{
	jw_value(w);
	hub_buf_adds(w->b, v ? "true" : "false");
}

void hub_jw_null(struct hub_jw *w)
{
	jw_value(w);
	hub_buf_adds(w->b, "null");
}

void hub_jw_raw(struct hub_jw *w, struct hub_str json)
{
	jw_value(w);
	hub_buf_addstr(w->b, json);
}
