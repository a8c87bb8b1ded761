/* tests/unit/test_jwt.c - lib/jwt: HS256 round trip and every way a token is refused
 * (expired, forged, alg none, wrong secret, malformed, missing claims, too large), and an
 * absurd exp clamped; iat, the lifetime cap and revocation (lib/revoke).
 * Tokens under test are built by hand here so that each defect is exactly one. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/jwt.h"
#include "lib/revoke.h"

#define NOW 1700000000
#define SECRET HUB_STR("test-secret-0123456789")

static const char good_claims[] =
	"{\"sub\":\"u1\",\"tid\":\"t1\",\"role\":\"agent\",\"exp\":1700000100}";
static const char hs256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* header.payload.signature with the signature computed over the first two (sign = true)
 * or left as given in sig. */
static void build(struct hub_buf *out, const char *header, const char *payload,
		  struct hub_str secret, bool sign, const char *sig)
{
	hub_buf_reset(out);
	hub_base64url_add(out, header, strlen(header));
	hub_buf_addch(out, '.');
	hub_base64url_add(out, payload, strlen(payload));
	if (sign) {
		unsigned char mac[HUB_SHA256_LEN];
		hub_hmac_sha256(secret, hub_buf_str(out), mac);
		hub_buf_addch(out, '.');
		hub_base64url_add(out, mac, sizeof(mac));
	} else if (sig) {
		hub_buf_addch(out, '.');
		hub_buf_adds(out, sig);
	}
}

static int verify(const struct hub_buf *tok, struct hub_jwt_claims *c, struct hub_err *err)
{
	hub_err_clear(err);
	return hub_jwt_verify(hub_buf_str(tok), SECRET, NOW, c, err);
}

/* The error message never echoes the token or its parts. */
static void assert_no_echo(const struct hub_buf *tok, const struct hub_err *err)
{
	const char *dot = strchr(tok->p, '.');
	size_t n = dot ? (size_t)(dot - tok->p) : tok->len;

	if (n >= 8)
		assert_null(memmem(err->msg, strlen(err->msg), tok->p, 8));
}

static void expect_claims_fail(const char *payload, int code, const char *why)
{
	struct hub_buf tok = HUB_BUF_INIT;
	struct hub_jwt_claims c;
	struct hub_err err = HUB_ERR_INIT;

	build(&tok, hs256, payload, SECRET, true, NULL);
	assert_int_equal(verify(&tok, &c, &err), code);
	assert_int_equal(err.code, code);
	if (why)
		assert_non_null(strstr(err.msg, why));
	assert_no_echo(&tok, &err);
	hub_buf_release(&tok);
}

static void test_round_trip(void **state)
{
	struct hub_jwt_claims in = { .role = HUB_ROLE_ADMIN, .exp = NOW + 60 };
	struct hub_jwt_claims out;
	struct hub_buf tok = HUB_BUF_INIT;
	struct hub_err err = HUB_ERR_INIT;

	(void)state;
	snprintf(in.sub, sizeof(in.sub), "%s", "user-42");
	snprintf(in.tid, sizeof(in.tid), "%s", "tenant \"a\"/é");
	assert_int_equal(hub_jwt_sign(&tok, SECRET, &in), 0);
	assert_int_equal(strncmp(tok.p, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37), 0);
	assert_int_equal(verify(&tok, &out, &err), 0);
	assert_string_equal(out.sub, "user-42");
	assert_string_equal(out.tid, "tenant \"a\"/é");
	assert_int_equal(out.role, HUB_ROLE_ADMIN);
	assert_int_equal(out.exp, NOW + 60);

	/* A hand-built token with the same claims verifies too. */
	build(&tok, hs256, good_claims, SECRET, true, NULL);
	assert_int_equal(verify(&tok, &out, &err), 0);
	assert_string_equal(out.sub, "u1");
	assert_string_equal(out.tid, "t1");
	assert_int_equal(out.role, HUB_ROLE_AGENT);
	assert_int_equal(out.exp, 1700000100);
	/* typ is optional */
	build(&tok, "{\"alg\":\"HS256\"}", good_claims, SECRET, true, NULL);
	assert_int_equal(verify(&tok, &out, &err), 0);
	hub_buf_release(&tok);
}

static void test_sign_rejects_bad_claims(void **state)
{
	struct hub_jwt_claims c = { .role = HUB_ROLE_AGENT, .exp = NOW + 60 };
	struct hub_buf tok = HUB_BUF_INIT;

	(void)state;
	snprintf(c.sub, sizeof(c.sub), "%s", "u");
	snprintf(c.tid, sizeof(c.tid), "%s", "t");
	assert_int_equal(hub_jwt_sign(&tok, HUB_STR(""), &c), -EINVAL);
	c.sub[0] = '\0';
	assert_int_equal(hub_jwt_sign(&tok, SECRET, &c), -EINVAL);
	snprintf(c.sub, sizeof(c.sub), "%s", "u\n");
	assert_int_equal(hub_jwt_sign(&tok, SECRET, &c), -EINVAL);
	snprintf(c.sub, sizeof(c.sub), "%s", "u");
	c.role = (enum hub_role)7;
	assert_int_equal(hub_jwt_sign(&tok, SECRET, &c), -EINVAL);
	assert_int_equal(tok.len, 0);
	hub_buf_release(&tok);
}

static void test_expired(void **state)
{
	struct hub_jwt_claims c = { .role = HUB_ROLE_AGENT, .exp = NOW };
	struct hub_jwt_claims out;
	struct hub_buf tok = HUB_BUF_INIT;
	struct hub_err err = HUB_ERR_INIT;

	(void)state;
	snprintf(c.sub, sizeof(c.sub), "%s", "u");
	snprintf(c.tid, sizeof(c.tid), "%s", "t");
	assert_int_equal(hub_jwt_sign(&tok, SECRET, &c), 0);
	/* exp == now is already expired */
	assert_int_equal(verify(&tok, &out, &err), -EKEYEXPIRED);
	assert_string_equal(err.msg, "token expired");
	hub_buf_reset(&tok);
	c.exp = NOW + 1;
	assert_int_equal(hub_jwt_sign(&tok, SECRET, &c), 0);
	assert_int_equal(verify(&tok, &out, &err), 0);
	assert_int_equal(hub_jwt_verify(hub_buf_str(&tok), SECRET, NOW + 1, &out, &err),
			 -EKEYEXPIRED);
	hub_buf_release(&tok);
}

static void test_forged_signature(void **state)
{
	struct hub_jwt_claims c = { .role = HUB_ROLE_AGENT, .exp = NOW + 60 };
	struct hub_jwt_claims out;
	struct hub_buf tok = HUB_BUF_INIT, forged = HUB_BUF_INIT;
	struct hub_err err = HUB_ERR_INIT;
	char *last;

	(void)state;
	snprintf(c.sub, sizeof(c.sub), "%s", "u");
	snprintf(c.tid, sizeof(c.tid), "%s", "t");
	assert_int_equal(hub_jwt_sign(&tok, SECRET, &c), 0);

	/* One flipped character of the signature. */
	hub_buf_addstr(&forged, hub_buf_str(&tok));
	last = &forged.p[forged.len - 2];
	*last = *last == 'A' ? 'B' : 'A';
	assert_int_equal(verify(&forged, &out, &err), -EPERM);
	assert_string_equal(err.msg, "bad token signature");

	/* The claims changed (admin, other tenant), the signature kept. */
	build(&forged, hs256,
	      "{\"sub\":\"u\",\"tid\":\"other\",\"role\":\"admin\",\"exp\":1700000060}",
	      SECRET, false, strrchr(tok.p, '.') + 1);
	assert_int_equal(verify(&forged, &out, &err), -EPERM);
	assert_string_equal(err.msg, "bad token signature");

	/* Truncated, padded, empty signatures. */
	hub_buf_reset(&forged);
	hub_buf_add(&forged, tok.p, tok.len - 1);
	assert_int_equal(verify(&forged, &out, &err), -EPERM);
	hub_buf_reset(&forged);
	hub_buf_addstr(&forged, hub_buf_str(&tok));
	hub_buf_adds(&forged, "=");
	assert_int_equal(verify(&forged, &out, &err), -EPERM);
	build(&forged, hs256, good_claims, SECRET, false, "");
	assert_int_equal(verify(&forged, &out, &err), -EPERM);
	assert_no_echo(&forged, &err);
	hub_buf_release(&forged);
	hub_buf_release(&tok);
}

static void test_alg_none_and_others(void **state)
{
	struct hub_jwt_claims out;
	struct hub_buf tok = HUB_BUF_INIT;
	struct hub_err err = HUB_ERR_INIT;
	static const char *const headers[] = {
		"{\"alg\":\"none\",\"typ\":\"JWT\"}",
		"{\"alg\":\"None\"}",
		"{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
		"{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
		"{\"alg\":\"hs256\"}",
		"{\"typ\":\"JWT\"}",
		"{\"alg\":null}",
		"{\"alg\":[\"HS256\"]}",
		"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		/* without a signature segment, with an empty one, with a valid HMAC */
		build(&tok, headers[i], good_claims, SECRET, false, NULL);
		assert_int_equal(verify(&tok, &out, &err), -EPERM);
		assert_non_null(strstr(err.msg, "unsupported token algorithm"));
		build(&tok, headers[i], good_claims, SECRET, false, "");
		assert_int_equal(verify(&tok, &out, &err), -EPERM);
		assert_non_null(strstr(err.msg, "unsupported token algorithm"));
		build(&tok, headers[i], good_claims, SECRET, true, NULL);
		assert_int_equal(verify(&tok, &out, &err), -EPERM);
		assert_non_null(strstr(err.msg, "unsupported token algorithm"));
	}
	hub_buf_release(&tok);
}

static void test_wrong_secret(void **state)
{
	struct hub_jwt_claims out;
	struct hub_buf tok = HUB_BUF_INIT;
	struct hub_err err = HUB_ERR_INIT;

	(void)state;
	build(&tok, hs256, good_claims, HUB_STR("another-secret"), true, NULL);
	assert_int_equal(verify(&tok, &out, &err), -EPERM);
	assert_string_equal(err.msg, "bad token signature");
	build(&tok, hs256, good_claims, HUB_STR("test-secret-012345678"), true, NULL);
	assert_int_equal(verify(&tok, &out, &err), -EPERM);
	/* An empty configured secret verifies nothing. */
	build(&tok, hs256, good_claims, HUB_STR(""), true, NULL);
	assert_int_equal(hub_jwt_verify(hub_buf_str(&tok), HUB_STR(""), NOW, &out, &err),
			 -EINVAL);
	hub_buf_release(&tok);
}

static void test_malformed(void **state)
{
	struct hub_jwt_claims out;
	struct hub_buf tok = HUB_BUF_INIT;
	struct hub_err err = HUB_ERR_INIT;
	static const char *const raw[] = {
		"",
		"abc",
		"abc.def",
		"...",
		"a.b.c.d",
		"eyJhbGciOiJIUzI1NiJ9",                      /* header only */
		"eyJhbGciOiJIUzI1NiJ9=.e30.xx",              /* padding */
		"eyJhbGciOiJIUzI1NiJ9 .e30.xx",              /* whitespace */
		"ey$hbGciOiJIUzI1NiJ9.e30.xx",               /* bad alphabet */
		"eyJhbGciOiJIUzI1NiJ9.e30.x.y",              /* four segments */
		"bm90IGpzb24.e30.xx",                        /* header "not json" */
		"WyJIUzI1NiJd.e30.xx",                       /* header ["HS256"] */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		hub_buf_reset(&tok);
		hub_buf_adds(&tok, raw[i]);
		hub_err_clear(&err);
		assert_int_equal(hub_jwt_verify(hub_buf_str(&tok), SECRET, NOW, &out, &err),
				 -EBADMSG);
		assert_non_null(strstr(err.msg, "malformed token"));
	}
	/* Signed, but the claims are not JSON, not an object, or JSON with garbage after. */
	expect_claims_fail("not json", -EBADMSG, "malformed token");
	expect_claims_fail("[1,2]", -EBADMSG, "malformed token");
	expect_claims_fail("{\"sub\":\"u\"} x", -EBADMSG, "malformed token");
	expect_claims_fail("", -EBADMSG, "malformed token");
	/* Signed, header typ wrong or header duplicated alg. */
	build(&tok, "{\"alg\":\"HS256\",\"typ\":\"JOSE+JSON\"}", good_claims, SECRET, true, NULL);
	assert_int_equal(verify(&tok, &out, &err), -EBADMSG);
	build(&tok, "{\"alg\":\"HS256\",\"alg\":\"none\"}", good_claims, SECRET, true, NULL);
	assert_int_equal(verify(&tok, &out, &err), -EBADMSG);
	hub_buf_release(&tok);
}

static void test_claims(void **state)
{
	(void)state;
	expect_claims_fail("{\"tid\":\"t\",\"role\":\"agent\",\"exp\":1700000100}", -EBADMSG,
			   "missing claim sub");
	expect_claims_fail("{\"sub\":\"u\",\"role\":\"agent\",\"exp\":1700000100}", -EBADMSG,
			   "missing claim tid");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"exp\":1700000100}", -EBADMSG,
			   "missing claim role");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\"}", -EBADMSG,
			   "missing claim exp");
	expect_claims_fail("{}", -EBADMSG, "missing claim");
	/* wrong types */
	expect_claims_fail("{\"sub\":1,\"tid\":\"t\",\"role\":\"agent\",\"exp\":1700000100}",
			   -EBADMSG, "sub is not a string");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":null,\"role\":\"agent\",\"exp\":1700000100}",
			   -EBADMSG, "tid is not a string");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"role\":1,\"exp\":1700000100}",
			   -EBADMSG, "role is not a string");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\",\"exp\":\"1700000100\"}",
			   -EBADMSG, "exp is not an integer");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\",\"exp\":1.7e9}",
			   -EBADMSG, "exp is not an integer");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\",\"exp\":true}",
			   -EBADMSG, "exp is not an integer");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\","
			   "\"exp\":99999999999999999999}", -EBADMSG, "exp is not an integer");
	/* empty, control characters, duplicates */
	expect_claims_fail("{\"sub\":\"\",\"tid\":\"t\",\"role\":\"agent\",\"exp\":1700000100}",
			   -EBADMSG, "claim sub is empty");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\\n\",\"role\":\"agent\",\"exp\":1700000100}",
			   -EBADMSG, "claim tid");
	expect_claims_fail("{\"sub\":\"u\\u0000x\",\"tid\":\"t\",\"role\":\"agent\","
			   "\"exp\":1700000100}", -EBADMSG, "claim sub");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"tid\":\"t2\",\"role\":\"agent\","
			   "\"exp\":1700000100}", -EBADMSG, "duplicate claim tid");
	/* expired by the hand-built route too */
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\",\"exp\":1}",
			   -EKEYEXPIRED, "token expired");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\",\"exp\":-5}",
			   -EKEYEXPIRED, "token expired");
}

static void test_roles(void **state)
{
	enum hub_role r;

	(void)state;
	assert_int_equal(hub_role_parse("agent", &r), 0);
	assert_int_equal(r, HUB_ROLE_AGENT);
	assert_int_equal(hub_role_parse("admin", &r), 0);
	assert_int_equal(r, HUB_ROLE_ADMIN);
	assert_int_equal(hub_role_parse("Admin", &r), -EINVAL);
	assert_int_equal(hub_role_parse("root", &r), -EINVAL);
	assert_int_equal(hub_role_parse("", &r), -EINVAL);
	assert_int_equal(hub_role_parse(NULL, &r), -EINVAL);
	assert_string_equal(hub_role_name(HUB_ROLE_AGENT), "agent");
	assert_string_equal(hub_role_name(HUB_ROLE_ADMIN), "admin");
	assert_null(hub_role_name((enum hub_role)0));

	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"superuser\",\"exp\":1700000100}",
			   -EBADMSG, "unknown role");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"ADMIN\",\"exp\":1700000100}",
			   -EBADMSG, "unknown role");
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"\",\"exp\":1700000100}",
			   -EBADMSG, "unknown role");
}

static void test_large(void **state)
{
	struct hub_jwt_claims c = { .role = HUB_ROLE_AGENT, .exp = NOW + 60 };
	struct hub_jwt_claims out;
	struct hub_buf tok = HUB_BUF_INIT, payload = HUB_BUF_INIT;
	struct hub_err err = HUB_ERR_INIT;

	(void)state;
	/* The longest ids allowed still sign and verify. */
	memset(c.sub, 'u', HUB_JWT_ID_MAX - 1);
	c.sub[HUB_JWT_ID_MAX - 1] = '\0';
	memset(c.tid, 't', HUB_JWT_ID_MAX - 1);
	c.tid[HUB_JWT_ID_MAX - 1] = '\0';
	assert_int_equal(hub_jwt_sign(&tok, SECRET, &c), 0);
	assert_int_equal(verify(&tok, &out, &err), 0);
	assert_string_equal(out.sub, c.sub);

	/* An id of HUB_JWT_ID_MAX bytes is refused. */
	hub_buf_adds(&payload, "{\"sub\":\"");
	for (int i = 0; i < HUB_JWT_ID_MAX; i++)
		hub_buf_addch(&payload, 'u');
	hub_buf_adds(&payload, "\",\"tid\":\"t\",\"role\":\"agent\",\"exp\":1700000100}");
	expect_claims_fail(payload.p, -EBADMSG, "too long");

	/* A validly signed token over 4 KiB is refused before anything else. */
	hub_buf_reset(&payload);
	hub_buf_adds(&payload, "{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\",\"exp\":1700000100,"
			       "\"pad\":\"");
	for (int i = 0; i < 4000; i++)
		hub_buf_addch(&payload, 'x');
	hub_buf_adds(&payload, "\"}");
	build(&tok, hs256, payload.p, SECRET, true, NULL);
	assert_true(tok.len > 4096);
	assert_int_equal(verify(&tok, &out, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "malformed token"));
	assert_no_echo(&tok, &err);

	/* Many small claims: over the JSON token bound, refused, not crashed. */
	hub_buf_reset(&payload);
	hub_buf_adds(&payload, "{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\",\"exp\":1700000100");
	for (int i = 0; i < 100; i++)
		hub_buf_addf(&payload, ",\"k%d\":%d", i, i);
	hub_buf_adds(&payload, "}");
	expect_claims_fail(payload.p, -EBADMSG, "malformed token");
	hub_buf_release(&payload);
	hub_buf_release(&tok);
}

/* Security issue, finding 9: exp >= 2^64 / 1000 made exp * 1000 wrap in the websocket
 * server, which then re-armed that socket's timer every millisecond. An absurd exp is
 * still the signer's word, but it comes out clamped to HUB_JWT_EXP_MAX, where
 * milliseconds fit in 64 bits many times over. */
static void test_absurd_exp_is_clamped(void **state)
{
	static const char *const exps[] = {
		"18446744073709552",   /* the first whose milliseconds wrap 2^64 */
		"9223372036854775",    /* the first whose milliseconds wrap 2^63 */
		"9223372036854775807", /* INT64_MAX */
		"253402300800",        /* one second past the clamp */
	};
	struct hub_buf tok = HUB_BUF_INIT, payload = HUB_BUF_INIT;
	struct hub_jwt_claims c;
	struct hub_err err = HUB_ERR_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof(exps) / sizeof(exps[0]); i++) {
		hub_buf_reset(&payload);
		hub_buf_addf(&payload, "{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\","
			     "\"exp\":%s}", exps[i]);
		build(&tok, hs256, payload.p, SECRET, true, NULL);
		assert_int_equal(verify(&tok, &c, &err), 0);
		assert_true(c.exp == HUB_JWT_EXP_MAX);
		/* what a caller does with it cannot overflow */
		assert_true((uint64_t)c.exp * 1000 / 1000 == (uint64_t)HUB_JWT_EXP_MAX);
	}
	/* the clamp itself and anything below are kept as they are */
	hub_buf_reset(&payload);
	hub_buf_addf(&payload, "{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\","
		     "\"exp\":253402300799}");
	build(&tok, hs256, payload.p, SECRET, true, NULL);
	assert_int_equal(verify(&tok, &c, &err), 0);
	assert_true(c.exp == HUB_JWT_EXP_MAX);
	/* beyond int64: not an integer we read, as before */
	expect_claims_fail("{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\","
			   "\"exp\":18446744073709551616}", -EBADMSG, "exp is not an integer");
	/* and nothing signs what verification would change */
	memset(&c, 0, sizeof(c));
	snprintf(c.sub, sizeof(c.sub), "%s", "u");
	snprintf(c.tid, sizeof(c.tid), "%s", "t");
	c.role = HUB_ROLE_AGENT;
	c.exp = HUB_JWT_EXP_MAX + 1;
	hub_buf_reset(&tok);
	assert_int_equal(hub_jwt_sign(&tok, SECRET, &c), -EINVAL);
	assert_int_equal(tok.len, 0);
	c.exp = HUB_JWT_EXP_MAX;
	assert_int_equal(hub_jwt_sign(&tok, SECRET, &c), 0);
	assert_int_equal(verify(&tok, &c, &err), 0);
	assert_true(c.exp == HUB_JWT_EXP_MAX);
	hub_buf_release(&payload);
	hub_buf_release(&tok);
}

static void test_iat_and_lifetime_cap(void **state)
{
	struct hub_jwt_claims c = { .role = HUB_ROLE_AGENT, .exp = NOW + 7200, .iat = NOW };
	struct hub_buf tok = HUB_BUF_INIT;
	struct hub_err err = HUB_ERR_INIT;

	(void)state;
	snprintf(c.sub, sizeof(c.sub), "%s", "u1");
	snprintf(c.tid, sizeof(c.tid), "%s", "t1");
	assert_int_equal(hub_jwt_sign(&tok, SECRET, &c), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(verify(&tok, &c, &err), 0);
	assert_int_equal(c.iat, NOW);
	assert_int_equal(hub_jwt_check_ttl(&c, 7200, NOW + 100, &err), 0);
	assert_int_equal(hub_jwt_check_ttl(&c, 0, NOW, &err), 0);
	assert_int_equal(hub_jwt_check_ttl(&c, 7199, NOW + 100, &err), -EKEYREJECTED);
	assert_non_null(strstr(err.msg, "auth.max_token_ttl_s"));
	c.iat = 0; /* without iat: what is left */
	assert_int_equal(hub_jwt_check_ttl(&c, 7000, NOW + 200, &err), 0);
	assert_int_equal(hub_jwt_check_ttl(&c, 7000, NOW + 100, &err), -EKEYREJECTED);
	/* an iat after exp, not a number, or twice is malformed */
	build(&tok, hs256, "{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\","
	      "\"exp\":1700000100,\"iat\":1700000101}", SECRET, true, NULL);
	assert_int_equal(verify(&tok, &c, &err), -EBADMSG);
	build(&tok, hs256, "{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\","
	      "\"exp\":1700000100,\"iat\":\"now\"}", SECRET, true, NULL);
	assert_int_equal(verify(&tok, &c, &err), -EBADMSG);
	build(&tok, hs256, "{\"sub\":\"u\",\"tid\":\"t\",\"role\":\"agent\","
	      "\"exp\":1700000100,\"iat\":1,\"iat\":2}", SECRET, true, NULL);
	assert_int_equal(verify(&tok, &c, &err), -EBADMSG);
	hub_buf_release(&tok);
}

static void test_revocations(void **state)
{
	struct hub_revocations *rv = hub_revocations_new();
	struct hub_jwt_claims c = { "u1", "t1", HUB_ROLE_AGENT, NOW + 60, NOW };
	struct hub_err err = HUB_ERR_INIT;

	(void)state;
	assert_int_equal(hub_revocations_check(NULL, &c, &err), 0);
	hub_revocations_add(rv, "t1", "u2", NOW + 5);
	hub_revocations_add(rv, "t2", NULL, NOW + 5);
	hub_revocations_add(rv, "t1", "u1", NOW - 10);
	hub_revocations_add(rv, "t1", "u1", NOW - 20); /* the later one wins */
	hub_revocations_seal(rv);
	assert_int_equal(hub_revocations_count(rv), 3);
	assert_int_equal(hub_revocations_not_before(rv, &c), NOW - 10);
	assert_int_equal(hub_revocations_check(rv, &c, &err), 0);
	c.iat = NOW - 11;
	assert_int_equal(hub_revocations_check(rv, &c, &err), -EKEYREVOKED);
	c.iat = 0; /* no iat: refused once a not-before is set */
	assert_int_equal(hub_revocations_check(rv, &c, &err), -EKEYREVOKED);
	assert_non_null(strstr(err.msg, "no iat"));
	snprintf(c.sub, sizeof(c.sub), "%s", "u3"); /* nothing for u3 nor t1 as a whole */
	assert_int_equal(hub_revocations_check(rv, &c, &err), 0);
	snprintf(c.tid, sizeof(c.tid), "%s", "t2"); /* the whole tenant t2 */
	c.iat = NOW + 4;
	assert_int_equal(hub_revocations_check(rv, &c, &err), -EKEYREVOKED);
	c.iat = NOW + 5;
	assert_int_equal(hub_revocations_check(rv, &c, &err), 0);
	hub_revocations_unref(hub_revocations_ref(rv));
	hub_revocations_unref(rv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_sign_rejects_bad_claims),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_forged_signature),
		cmocka_unit_test(test_alg_none_and_others),
		cmocka_unit_test(test_wrong_secret),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_absurd_exp_is_clamped),
		cmocka_unit_test(test_iat_and_lifetime_cap),
		cmocka_unit_test(test_revocations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
