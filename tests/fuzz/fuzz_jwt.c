/* tests/fuzz/fuzz_jwt.c - lib/jwt.h's hub_jwt_verify on any token (`make fuzz-jwt`).
 * Byte 0: bit 0 picks the mode, bits 1-2 the clock. Mode 0: the rest is the token as it
 * came. Mode 1: the rest is a header's JSON, a newline and the claims' JSON, signed here
 * with the secret (OpenSSL's HMAC, not lib/crypto's), so that the fuzzer reaches the
 * claims. Properties: a known result with a message that does not echo the token; an
 * accepted token is three segments whose signature is the HMAC of the first two, with
 * claims in bounds (ids 1..127 bytes without control characters, a known role, exp after
 * now) that hub_jwt_sign signs into a token verifying to the same claims; a token with one
 * character of its signature changed is refused; an empty secret refuses everything. */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/jwt.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "jwt";

static const char secret_s[] = "fuzz-jwt-secret-0123456789abcdef";
static const int64_t clocks[4] = { 0, 1700000000, 4102444800, INT64_MAX };

static void b64url(struct hub_buf *b, const unsigned char *p, size_t n)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		hub_buf_addch(b, abc[v >> 18]);
		hub_buf_addch(b, abc[(v >> 12) & 63]);
		hub_buf_addch(b, abc[(v >> 6) & 63]);
		hub_buf_addch(b, abc[v & 63]);
	}
	if (n - i == 1) {
		hub_buf_addch(b, abc[p[i] >> 2]);
		hub_buf_addch(b, abc[(p[i] & 3) << 4]);
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];

		hub_buf_addch(b, abc[v >> 10]);
		hub_buf_addch(b, abc[(v >> 4) & 63]);
		hub_buf_addch(b, abc[(v & 15) << 2]);
	}
}

/* base64url(HMAC-SHA256(secret, input)) */
static void mac(struct hub_buf *out, const char *input, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	fuzz_check(HMAC(EVP_sha256(), secret_s, (int)strlen(secret_s),
			(const unsigned char *)input, len, md, &mdlen) != NULL &&
			   mdlen == 32,
		   "HMAC");
	b64url(out, md, mdlen);
}

static bool id_ok(const char *s)
{
	size_t n = strnlen(s, HUB_JWT_ID_MAX);

	if (n == 0 || n >= HUB_JWT_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static void check_accepted(struct hub_str token, int64_t now, const struct hub_jwt_claims *c)
{
	struct hub_str secret = HUB_STR(secret_s);
	const char *dot1 = memchr(token.p, '.', token.len), *dot2;
	struct hub_buf sig = HUB_BUF_INIT, again = HUB_BUF_INIT, bad = HUB_BUF_INIT;
	struct hub_jwt_claims c2;
	size_t siglen;

	/* three segments, signed by the secret */
	fuzz_check(dot1, "accepted without a dot");
	dot2 = memchr(dot1 + 1, '.', (size_t)(token.p + token.len - dot1 - 1));
	fuzz_check(dot2, "accepted with two segments");
	siglen = (size_t)(token.p + token.len - dot2 - 1);
	fuzz_check(!memchr(dot2 + 1, '.', siglen), "accepted with four segments");
	mac(&sig, token.p, (size_t)(dot2 - token.p));
	fuzz_check(siglen == sig.len && memcmp(dot2 + 1, sig.p, sig.len) == 0,
		   "accepted without the secret's signature");

	/* claims in bounds */
	fuzz_check(id_ok(c->sub) && id_ok(c->tid), "sub or tid out of bounds");
	fuzz_check(c->role == HUB_ROLE_AGENT || c->role == HUB_ROLE_ADMIN, "role %d",
		   (int)c->role);
	fuzz_check(c->exp > now, "expired at %lld, now %lld", (long long)c->exp, (long long)now);
#ifdef HUB_JWT_EXP_MAX
	fuzz_check(c->exp <= HUB_JWT_EXP_MAX, "exp %lld", (long long)c->exp);
#endif

	/* signed again, the same claims */
	fuzz_check(hub_jwt_sign(&again, secret, c) == 0, "accepted claims cannot be signed");
	fuzz_check(hub_jwt_verify(hub_buf_str(&again), secret, now, &c2, NULL) == 0 &&
			   strcmp(c->sub, c2.sub) == 0 && strcmp(c->tid, c2.tid) == 0 &&
			   c->role == c2.role && c->exp == c2.exp,
		   "signed again, the claims differ");

	/* one character of the signature changed: refused */
	hub_buf_add(&bad, token.p, token.len);
	bad.p[bad.len - 1] = bad.p[bad.len - 1] == 'A' ? 'B' : 'A';
	fuzz_check(hub_jwt_verify(hub_buf_str(&bad), secret, now, &c2, NULL) == -EPERM,
		   "a changed signature is not refused");
	hub_buf_release(&bad);
	hub_buf_release(&again);
	hub_buf_release(&sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hub_buf built = HUB_BUF_INIT;
	struct hub_jwt_claims c;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_str token;
	int64_t now;
	int ret;

	if (size < 1)
		return 0;
	now = clocks[(data[0] >> 1) & 3];
	token = (struct hub_str){ (const char *)data + 1, size - 1 };
	if (data[0] & 1) {
		const char *nl = memchr(token.p, '\n', token.len);
		size_t hlen = nl ? (size_t)(nl - token.p) : token.len;

		b64url(&built, (const unsigned char *)token.p, hlen);
		hub_buf_addch(&built, '.');
		if (nl)
			b64url(&built, (const unsigned char *)nl + 1, token.len - hlen - 1);
		{
			size_t input = built.len;

			hub_buf_addch(&built, '.');
			mac(&built, built.p, input);
		}
		token = hub_buf_str(&built);
	}

	memset(&c, 0, sizeof(c));
	ret = hub_jwt_verify(token, HUB_STR(secret_s), now, &c, &err);
	fuzz_check(ret == 0 || ret == -EBADMSG || ret == -EPERM || ret == -EKEYEXPIRED,
		   "result %d", ret);
	if (ret == 0) {
		check_accepted(token, now, &c);
	} else {
		fuzz_check(err.code == ret && err.msg[0], "no message for %d", ret);
		fuzz_check(token.len < 8 || !memmem(err.msg, strlen(err.msg), token.p, token.len),
			   "the message echoes the token");
	}
	fuzz_check(hub_jwt_verify(token, HUB_STR_NULL, now, &c, NULL) == -EINVAL,
		   "an empty secret");
	hub_buf_release(&built);
	return 0;
}
