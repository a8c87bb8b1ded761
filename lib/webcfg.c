/* lib/webcfg.c - see webcfg.h. */
#include "lib/webcfg.h"

#include <errno.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/json.h"
#include <stdio.h>

#define TITLE_MAX 80
#define TEXT_MAX 500
#define TOKENS_MAX 256
#define TOKEN_PREFIX "wv1."
#define SIG_DOMAIN "bayge.visitor.v1\n"

const char *const hub_webcfg_langs[HUB_WEBCFG_LANGS] = { "ru", "kk", "en" };

static size_t code_points(struct hub_str s)
{
	size_t n = 0;

	for (size_t i = 0; i < s.len; i++)
		n += ((unsigned char)s.p[i] & 0xc0) != 0x80; /* not a continuation byte */
	return n;
}

static bool valid_origin(struct hub_str s)
{
	size_t i, start;

	if (s.len > 7 && memcmp(s.p, "http://", 7) == 0)
		start = 7;
	else if (s.len > 8 && memcmp(s.p, "https://", 8) == 0)
		start = 8;
	else
		return false;
	if (s.len > 253 + start)
		return false;
	for (i = start; i < s.len; i++) {
		char c = s.p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == ':' || c == '[' || c == ']'))
			return false;
	}
	return s.p[s.len - 1] != ':' && s.p[start] != ':';
}

static bool valid_color(struct hub_str s)
{
	if (!(s.len == 4 || s.len == 7) || s.p[0] != '#')
		return false;
	for (size_t i = 1; i < s.len; i++) {
		char c = s.p[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

/* No control characters but newlines (a text is shown as text, never as markup). */
static bool plain_text(struct hub_str s)
{
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];

		if ((c < ' ' && c != '\n') || c == 0x7f)
			return false;
	}
	return true;
}

/* A text: a string for every language, or {"ru","kk","en"} (each optional). */
static int texts(struct hub_pool *pool, const struct hub_json_doc *doc, int i, const char *key,
		 size_t max, const char **out, struct hub_err *err)
{
	struct hub_str s;

	if (hub_json_is(doc, i, HUB_JSON_STRING)) {
		if (hub_json_string(doc, i, pool, &s) < 0 || !s.len || code_points(s) > max ||
		    !plain_text(s))
			return hub_err_set(err, -EINVAL, "web.%s: must be 1 to %zu characters of "
					   "text", key, max);
		for (int l = 0; l < HUB_WEBCFG_LANGS; l++)
			out[l] = hub_pool_strndup(pool, s.p, s.len);
		return 0;
	}
	if (!hub_json_is(doc, i, HUB_JSON_OBJECT))
		return hub_err_set(err, -EINVAL, "web.%s: must be a text or an object of "
				   "languages (ru, kk, en)", key);
	for (int k = hub_json_first(doc, i); k >= 0; k = hub_json_after(doc, k)) {
		struct hub_str name;
		int l;

		if (hub_json_string(doc, k, pool, &name) < 0)
			return hub_err_set(err, -EINVAL, "web.%s: bad key", key);
		for (l = 0; l < HUB_WEBCFG_LANGS; l++)
			if (hub_str_eqs(name, hub_webcfg_langs[l]))
				break;
		if (l == HUB_WEBCFG_LANGS)
			return hub_err_set(err, -EINVAL, "web.%s.%.*s: unknown language (ru, kk, "
					   "en)", key, HUB_STR_FMT(name));
		if (!hub_json_is(doc, k + 1, HUB_JSON_STRING) ||
		    hub_json_string(doc, k + 1, pool, &s) < 0 || !s.len || code_points(s) > max ||
		    !plain_text(s))
			return hub_err_set(err, -EINVAL, "web.%s.%s: must be 1 to %zu characters "
					   "of text", key, hub_webcfg_langs[l], max);
		out[l] = hub_pool_strndup(pool, s.p, s.len);
	}
	return 0;
}

int hub_webcfg_parse(struct hub_pool *pool, struct hub_str json, struct hub_webcfg *out,
		     struct hub_err *err)
{
	struct hub_json_doc doc;
	struct hub_str s;
	int ret;

	memset(out, 0, sizeof(*out));
	if (hub_json_parse(pool, json, TOKENS_MAX, &doc, err) < 0 ||
	    !hub_json_is(&doc, 0, HUB_JSON_OBJECT))
		return hub_err_set(err, -EINVAL, "web: must be a JSON object");
	for (int k = hub_json_first(&doc, 0); k >= 0; k = hub_json_after(&doc, k)) {
		struct hub_str key;
		int v = k + 1;

		if (hub_json_string(&doc, k, pool, &key) < 0)
			return hub_err_set(err, -EINVAL, "web: bad key");
		if (hub_str_eqs(key, "origins")) {
			if (!hub_json_is(&doc, v, HUB_JSON_ARRAY))
				return hub_err_set(err, -EINVAL, "web.origins: must be an array");
			for (int e = hub_json_first(&doc, v); e >= 0; e = hub_json_after(&doc, e)) {
				if (out->norigins == HUB_WEBCFG_ORIGINS_MAX)
					return hub_err_set(err, -EINVAL, "web.origins: at most %d",
							   HUB_WEBCFG_ORIGINS_MAX);
				if (!hub_json_is(&doc, e, HUB_JSON_STRING) ||
				    hub_json_string(&doc, e, pool, &s) < 0 || !valid_origin(s))
					return hub_err_set(err, -EINVAL, "web.origins[%zu]: must be "
							   "an origin as a browser sends it: "
							   "https://host or https://host:port, lower "
							   "case, without a path", out->norigins);
				out->origins[out->norigins++] = hub_pool_strndup(pool, s.p, s.len);
			}
		} else if (hub_str_eqs(key, "title")) {
			if ((ret = texts(pool, &doc, v, "title", TITLE_MAX, out->title, err)) < 0)
				return ret;
		} else if (hub_str_eqs(key, "greeting")) {
			if ((ret = texts(pool, &doc, v, "greeting", TEXT_MAX, out->greeting, err)) <
			    0)
				return ret;
		} else if (hub_str_eqs(key, "offline")) {
			if ((ret = texts(pool, &doc, v, "offline", TEXT_MAX, out->offline, err)) < 0)
				return ret;
		} else if (hub_str_eqs(key, "color")) {
			if (!hub_json_is(&doc, v, HUB_JSON_STRING) ||
			    hub_json_string(&doc, v, pool, &s) < 0 || !valid_color(s))
				return hub_err_set(err, -EINVAL, "web.color: must be #rgb or #rrggbb");
			out->color = hub_pool_strndup(pool, s.p, s.len);
		} else if (hub_str_eqs(key, "prechat")) {
			if (hub_json_bool(&doc, v, &out->prechat) < 0)
				return hub_err_set(err, -EINVAL, "web.prechat: must be true or false");
		} else {
			return hub_err_set(err, -EINVAL, "web.%.*s: unknown key (origins, title, "
					   "color, greeting, offline, prechat)", HUB_STR_FMT(key));
		}
	}
	if (!out->norigins)
		return hub_err_set(err, -EINVAL, "web.origins: at least one origin is required");
	return 0;
}

static void texts_json(struct hub_jw *w, const char *key, const char *const *t)
{
	hub_jw_key(w, key);
	hub_jw_obj_open(w);
	for (int l = 0; l < HUB_WEBCFG_LANGS; l++) {
		if (!t[l])
			continue;
		hub_jw_key(w, hub_webcfg_langs[l]);
		hub_jw_cstr(w, t[l]);
	}
	hub_jw_obj_close(w);
}

void hub_webcfg_public_json(const struct hub_webcfg *c, struct hub_buf *out)
{
	struct hub_jw w;

	hub_jw_init(&w, out);
	hub_jw_obj_open(&w);
	texts_json(&w, "title", c->title);
	texts_json(&w, "greeting", c->greeting);
	texts_json(&w, "offline", c->offline);
	hub_jw_key(&w, "color");
	hub_jw_cstr(&w, c->color);
	hub_jw_key(&w, "prechat");
	hub_jw_bool(&w, c->prechat);
	hub_jw_obj_close(&w);
}

bool hub_webcfg_origin_allowed(const struct hub_webcfg *c, struct hub_str origin)
{
	for (size_t i = 0; i < c->norigins; i++)
		if (hub_str_eqs(origin, c->origins[i]))
			return true;
	return false;
}

bool hub_webcfg_user_id_valid(struct hub_str id)
{
	if (!id.len || id.len > HUB_WEBCFG_USER_ID_MAX)
		return false;
	for (size_t i = 0; i < id.len; i++)
		if ((unsigned char)id.p[i] <= ' ' || (unsigned char)id.p[i] >= 0x7f)
			return false;
	return true;
}

bool hub_webcfg_user_hash_ok(struct hub_str secret, struct hub_str user_id, struct hub_str hash)
{
	unsigned char mac[HUB_SHA256_LEN], given[HUB_SHA256_LEN];

	if (hash.len != 2 * HUB_SHA256_LEN || hub_hex_decode(hash, given, sizeof(given)) < 0)
		return false;
	hub_hmac_sha256(secret, user_id, mac);
	return hub_ct_equal(mac, given, HUB_SHA256_LEN);
}

static void token_mac(struct hub_str secret, struct hub_str channel, struct hub_str sender,
		      struct hub_str iat, unsigned char mac[HUB_SHA256_LEN])
{
	struct hub_buf m = HUB_BUF_INIT;

	hub_buf_adds(&m, SIG_DOMAIN);
	hub_buf_addstr(&m, channel);
	hub_buf_addch(&m, '\n');
	hub_buf_addstr(&m, sender);
	hub_buf_addch(&m, '\n');
	hub_buf_addstr(&m, iat);
	hub_hmac_sha256(secret, hub_buf_str(&m), mac);
	hub_buf_release(&m);
}

void hub_visitor_token_sign(struct hub_buf *out, struct hub_str secret, const char *channel,
			    struct hub_str sender, int64_t iat)
{
	unsigned char mac[HUB_SHA256_LEN];
	char ts[24];

	snprintf(ts, sizeof(ts), "%lld", (long long)iat);
	token_mac(secret, hub_str_from(channel), sender, hub_str_from(ts), mac);
	hub_buf_adds(out, TOKEN_PREFIX);
	hub_buf_adds(out, channel);
	hub_buf_addch(out, '.');
	hub_base64url_add(out, sender.p, sender.len);
	hub_buf_addf(out, ".%s.", ts);
	hub_base64url_add(out, mac, sizeof(mac));
}

/* The four parts after the prefix: channel, sender (encoded), iat, mac (encoded). */
static int split(struct hub_str t, struct hub_str part[4])
{
	const char *p, *end = t.p + t.len;

	if (t.len > 1024 || t.len < sizeof(TOKEN_PREFIX) ||
	    memcmp(t.p, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1) != 0)
		return -EBADMSG;
	p = t.p + sizeof(TOKEN_PREFIX) - 1;
	for (int i = 0; i < 4; i++) {
		const char *dot = i < 3 ? memchr(p, '.', (size_t)(end - p)) : end;

		if (!dot || dot == p)
			return -EBADMSG;
		part[i] = (struct hub_str){ p, (size_t)(dot - p) };
		p = dot + 1;
	}
	return 0;
}

int hub_visitor_token_channel(struct hub_str token, struct hub_str *channel)
{
	struct hub_str part[4];

	if (split(token, part) < 0)
		return -EBADMSG;
	*channel = part[0];
	return 0;
}

int hub_visitor_token_verify(struct hub_pool *pool, struct hub_str token, struct hub_str secret,
			     const char *channel, struct hub_str *sender)
{
	struct hub_str part[4];
	struct hub_buf s = HUB_BUF_INIT, m = HUB_BUF_INIT;
	unsigned char mac[HUB_SHA256_LEN];
	int ret;

	if (split(token, part) < 0)
		return -EBADMSG;
	for (size_t i = 0; i < part[2].len; i++)
		if (part[2].p[i] < '0' || part[2].p[i] > '9' || part[2].len > 12)
			return -EBADMSG;
	if (hub_base64url_decode(&s, part[1]) < 0 || s.len < 3 || s.len > 2 +
	    HUB_WEBCFG_USER_ID_MAX || hub_base64url_decode(&m, part[3]) < 0 ||
	    m.len != HUB_SHA256_LEN) {
		ret = -EBADMSG;
		goto out;
	}
	if (!hub_str_eqs(part[0], channel)) {
		ret = -EXDEV;
		goto out;
	}
	token_mac(secret, part[0], hub_buf_str(&s), part[2], mac);
	if (!hub_ct_equal(mac, m.p, HUB_SHA256_LEN)) {
		ret = -EPERM;
		goto out;
	}
	*sender = hub_pool_strcopy(pool, hub_buf_str(&s));
	ret = 0;
out:
	hub_buf_release(&s);
	hub_buf_release(&m);
	return ret;
}
