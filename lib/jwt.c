/* lib/jwt.c - HS256 JSON Web Tokens (RFC 7519, RFC 7515 compact form): signing and
 * verification of the agents' access tokens. Only HS256; the header is checked before the
 * signature and the claims only after it. Pure: no I/O, no clock, nothing logged. */
#include "lib/jwt.h"

#include <errno.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/json.h"
#include "lib/pool.h"

#define JWT_TOKEN_MAX 4096  /* bytes of a whole token */
#define JWT_JSON_TOKENS 64  /* jsmn tokens of the header or of the claims */
#define JWT_SIG_B64_LEN 43  /* base64url of 32 bytes, no padding */

/* base64url of {"alg":"HS256","typ":"JWT"} */
static const char jwt_header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

int hub_role_parse(const char *name, enum hub_role *out)
{
	if (name && strcmp(name, "agent") == 0) {
		*out = HUB_ROLE_AGENT;
		return 0;
	}
	if (name && strcmp(name, "admin") == 0) {
		*out = HUB_ROLE_ADMIN;
		return 0;
	}
	return -EINVAL;
}

const char *hub_role_name(enum hub_role role)
{
	switch (role) {
	case HUB_ROLE_AGENT:
		return "agent";
	case HUB_ROLE_ADMIN:
		return "admin";
	}
	return NULL;
}

/* A user or tenant id: non-empty, shorter than HUB_JWT_ID_MAX, no control characters. */
static bool id_ok(struct hub_str s)
{
	if (s.len == 0 || s.len >= HUB_JWT_ID_MAX)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static void sign_input(struct hub_str secret, struct hub_str input, struct hub_buf *sig_b64)
{
	unsigned char mac[HUB_SHA256_LEN];

	hub_hmac_sha256(secret, input, mac);
	hub_base64url_add(sig_b64, mac, sizeof(mac));
}

int hub_jwt_sign(struct hub_buf *out, struct hub_str secret, const struct hub_jwt_claims *claims)
{
	struct hub_buf payload = HUB_BUF_INIT;
	struct hub_jw w;
	const char *role = hub_role_name(claims->role);
	size_t start = out->len;

	if (secret.len == 0 || !role || claims->exp > HUB_JWT_EXP_MAX || claims->iat < 0 ||
	    claims->iat > claims->exp)
		return -EINVAL;
	if (!id_ok(hub_str_from(claims->sub)) || !id_ok(hub_str_from(claims->tid)))
		return -EINVAL;

	hub_jw_init(&w, &payload);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "sub");
	hub_jw_cstr(&w, claims->sub);
	hub_jw_key(&w, "tid");
	hub_jw_cstr(&w, claims->tid);
	hub_jw_key(&w, "role");
	hub_jw_cstr(&w, role);
	hub_jw_key(&w, "exp");
	hub_jw_int(&w, claims->exp);
	if (claims->iat > 0) {
		hub_jw_key(&w, "iat");
		hub_jw_int(&w, claims->iat);
	}
	hub_jw_obj_close(&w);

	hub_buf_adds(out, jwt_header_b64);
	hub_buf_addch(out, '.');
	hub_base64url_add(out, payload.p, payload.len);
	{
		struct hub_str input = { out->p + start, out->len - start };
		struct hub_buf sig = HUB_BUF_INIT;

		sign_input(secret, input, &sig);
		hub_buf_addch(out, '.');
		hub_buf_addstr(out, hub_buf_str(&sig));
		hub_buf_release(&sig);
	}
	hub_buf_release(&payload);
	return 0;
}

/* The value of key in the object at 0, -1 when absent, -2 when present more than once
 * (a duplicated claim could be read differently by another parser). */
static int get_once(const struct hub_json_doc *doc, const char *key)
{
	size_t n = strlen(key);
	int found = -1;

	for (int k = hub_json_first(doc, 0); k >= 0; k = hub_json_after(doc, k)) {
		struct hub_str raw = hub_json_raw(doc, k);
		if (raw.len == n && memcmp(raw.p, key, n) == 0) {
			if (found >= 0)
				return -2;
			found = k + 1;
		}
	}
	return found;
}

/* Decodes one base64url segment holding a JSON object into buf and doc. */
static int decode_segment(struct hub_pool *pool, struct hub_str seg, struct hub_buf *buf,
			  struct hub_json_doc *doc)
{
	if (seg.len == 0 || hub_base64url_decode(buf, seg) < 0)
		return -EBADMSG;
	if (hub_json_parse(pool, hub_buf_str(buf), JWT_JSON_TOKENS, doc, NULL) < 0)
		return -EBADMSG;
	if (!hub_json_is(doc, 0, HUB_JSON_OBJECT))
		return -EBADMSG;
	return 0;
}

static int check_header(struct hub_pool *pool, const struct hub_json_doc *doc, struct hub_err *err)
{
	struct hub_str s;
	int i;

	i = get_once(doc, "alg");
	if (i == -2)
		return hub_err_set(err, -EBADMSG, "malformed token: duplicate header field");
	if (i < 0)
		return hub_err_set(err, -EPERM, "unsupported token algorithm: alg missing");
	if (hub_json_string(doc, i, pool, &s) < 0)
		return hub_err_set(err, -EPERM, "unsupported token algorithm: alg not a string");
	if (!hub_str_eqs(s, "HS256"))
		return hub_err_set(err, -EPERM, "unsupported token algorithm: only HS256");
	i = get_once(doc, "typ");
	if (i == -2)
		return hub_err_set(err, -EBADMSG, "malformed token: duplicate header field");
	if (i >= 0 && (hub_json_string(doc, i, pool, &s) < 0 || !hub_str_caseeqs(s, "JWT")))
		return hub_err_set(err, -EBADMSG, "malformed token: typ is not JWT");
	/* RFC 7515 4.1.11: extensions we do not understand must be refused. */
	if (get_once(doc, "crit") != -1)
		return hub_err_set(err, -EPERM, "unsupported token algorithm: crit header");
	return 0;
}

static int get_id(struct hub_pool *pool, const struct hub_json_doc *doc, const char *key,
		  char out[HUB_JWT_ID_MAX], struct hub_err *err)
{
	struct hub_str s;
	int i = get_once(doc, key);

	if (i == -2)
		return hub_err_set(err, -EBADMSG, "malformed token: duplicate claim %s", key);
	if (i < 0)
		return hub_err_set(err, -EBADMSG, "malformed token: missing claim %s", key);
	if (hub_json_string(doc, i, pool, &s) < 0)
		return hub_err_set(err, -EBADMSG, "malformed token: claim %s is not a string", key);
	if (!id_ok(s))
		return hub_err_set(err, -EBADMSG, "malformed token: claim %s is empty, too long "
				   "or has control characters", key);
	memcpy(out, s.p, s.len);
	out[s.len] = '\0';
	return 0;
}

static int check_claims(struct hub_pool *pool, const struct hub_json_doc *doc, int64_t now,
			struct hub_jwt_claims *out, struct hub_err *err)
{
	struct hub_jwt_claims c;
	struct hub_str s;
	char role[16];
	int i, ret;

	memset(&c, 0, sizeof(c));
	ret = get_id(pool, doc, "sub", c.sub, err);
	if (ret < 0)
		return ret;
	ret = get_id(pool, doc, "tid", c.tid, err);
	if (ret < 0)
		return ret;

	i = get_once(doc, "role");
	if (i == -2)
		return hub_err_set(err, -EBADMSG, "malformed token: duplicate claim role");
	if (i < 0)
		return hub_err_set(err, -EBADMSG, "malformed token: missing claim role");
	if (hub_json_string(doc, i, pool, &s) < 0)
		return hub_err_set(err, -EBADMSG, "malformed token: claim role is not a string");
	if (s.len >= sizeof(role))
		return hub_err_set(err, -EBADMSG, "malformed token: unknown role");
	memcpy(role, s.p, s.len);
	role[s.len] = '\0';
	if (hub_role_parse(role, &c.role) < 0)
		return hub_err_set(err, -EBADMSG, "malformed token: unknown role");

	i = get_once(doc, "exp");
	if (i == -2)
		return hub_err_set(err, -EBADMSG, "malformed token: duplicate claim exp");
	if (i < 0)
		return hub_err_set(err, -EBADMSG, "malformed token: missing claim exp");
	if (!hub_json_is(doc, i, HUB_JSON_PRIMITIVE) || hub_json_int64(doc, i, &c.exp) < 0)
		return hub_err_set(err, -EBADMSG, "malformed token: claim exp is not an integer");
	if (c.exp <= now)
		return hub_err_set(err, -EKEYEXPIRED, "token expired");
	/* Signed by the secret's holder, so honoured, but clamped: at 2^64 / 1000 seconds
	 * exp * 1000 wraps, and a socket whose expiry wrapped re-armed its timer every
	 * millisecond (security issue, finding 9). The year 9999 is later than anyone
	 * meant. */
	if (c.exp > HUB_JWT_EXP_MAX)
		c.exp = HUB_JWT_EXP_MAX;

	/* RFC 7519 4.1.6; optional here, but what revocation (lib/revoke.h) and the lifetime
	 * cap read, so one that is there must make sense. */
	i = get_once(doc, "iat");
	if (i == -2)
		return hub_err_set(err, -EBADMSG, "malformed token: duplicate claim iat");
	if (i >= 0 && (!hub_json_is(doc, i, HUB_JSON_PRIMITIVE) ||
		       hub_json_int64(doc, i, &c.iat) < 0 || c.iat < 1 || c.iat > c.exp))
		return hub_err_set(err, -EBADMSG, "malformed token: claim iat is not a time "
				   "before exp");

	*out = c;
	return 0;
}

int hub_jwt_check_ttl(const struct hub_jwt_claims *c, int64_t max_ttl_s, int64_t now,
		      struct hub_err *err)
{
	int64_t from = c->iat > 0 ? c->iat : now;

	if (max_ttl_s > 0 && c->exp - from > max_ttl_s)
		return hub_err_set(err, -EKEYREJECTED, "token lifetime over %lld s "
				   "(auth.max_token_ttl_s): ask for a shorter one",
				   (long long)max_ttl_s);
	return 0;
}

int hub_jwt_verify(struct hub_str token, struct hub_str secret, int64_t now,
		   struct hub_jwt_claims *out, struct hub_err *err)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf hbuf = HUB_BUF_INIT, pbuf = HUB_BUF_INIT, sig = HUB_BUF_INIT;
	struct hub_json_doc doc;
	struct hub_str hseg, pseg, sseg, input;
	const char *dot1, *dot2;
	int ret;

	if (secret.len == 0) {
		ret = hub_err_set(err, -EINVAL, "no token secret configured");
		goto out;
	}
	if (token.len > JWT_TOKEN_MAX) {
		ret = hub_err_set(err, -EBADMSG, "malformed token: over %d bytes", JWT_TOKEN_MAX);
		goto out;
	}
	if (token.len == 0 || !token.p) {
		ret = hub_err_set(err, -EBADMSG, "malformed token: empty");
		goto out;
	}

	/* The header first: "alg":"none" is refused as such, with or without a signature. */
	dot1 = memchr(token.p, '.', token.len);
	if (!dot1) {
		ret = hub_err_set(err, -EBADMSG, "malformed token: not three segments");
		goto out;
	}
	hseg = (struct hub_str){ token.p, (size_t)(dot1 - token.p) };
	if (decode_segment(&pool, hseg, &hbuf, &doc) < 0) {
		ret = hub_err_set(err, -EBADMSG, "malformed token: bad header");
		goto out;
	}
	ret = check_header(&pool, &doc, err);
	if (ret < 0)
		goto out;

	pseg.p = dot1 + 1;
	dot2 = memchr(pseg.p, '.', (size_t)(token.p + token.len - pseg.p));
	if (!dot2) {
		ret = hub_err_set(err, -EBADMSG, "malformed token: not three segments");
		goto out;
	}
	pseg.len = (size_t)(dot2 - pseg.p);
	sseg = (struct hub_str){ dot2 + 1, (size_t)(token.p + token.len - dot2 - 1) };
	if (memchr(sseg.p, '.', sseg.len)) {
		ret = hub_err_set(err, -EBADMSG, "malformed token: not three segments");
		goto out;
	}

	/* The signature before the claims: nothing unauthenticated is parsed further. Our
	 * base64url is canonical (no padding, zero spare bits), so comparing the encoded
	 * MAC is comparing the MAC. */
	input = (struct hub_str){ token.p, (size_t)(dot2 - token.p) };
	sign_input(secret, input, &sig);
	if (sseg.len != JWT_SIG_B64_LEN || !hub_ct_equal(sig.p, sseg.p, JWT_SIG_B64_LEN)) {
		ret = hub_err_set(err, -EPERM, "bad token signature");
		goto out;
	}

	if (decode_segment(&pool, pseg, &pbuf, &doc) < 0) {
		ret = hub_err_set(err, -EBADMSG, "malformed token: bad claims");
		goto out;
	}
	ret = check_claims(&pool, &doc, now, out, err);
out:
	hub_buf_release(&sig);
	hub_buf_release(&pbuf);
	hub_buf_release(&hbuf);
	hub_pool_release(&pool);
	return ret;
}
