/* lib/crypto.c - see crypto.h. */
#include "lib/crypto.h"

#include <errno.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

void hub_hmac_sha256(struct hub_str key, struct hub_str data, unsigned char out[HUB_SHA256_LEN])
{
	unsigned int len = HUB_SHA256_LEN;
	static const unsigned char nothing[1];

	if (!HMAC(EVP_sha256(), key.len ? key.p : (const void *)nothing, (int)key.len,
		  data.len ? (const unsigned char *)data.p : nothing, data.len, out, &len))
		hub_assert(!"HMAC failed");
}

bool hub_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

static void sha256(struct hub_str data, unsigned char out[HUB_SHA256_LEN])
{
	if (!EVP_Digest(data.len ? data.p : "", data.len, out, NULL, EVP_sha256(), NULL))
		hub_assert(!"SHA-256 failed");
}

bool hub_secret_equal(struct hub_str given, const char *expected)
{
	unsigned char a[HUB_SHA256_LEN], b[HUB_SHA256_LEN];

	/* digests of equal length (a keyed HMAC adds nothing here: its key would be public,
	 * and it costs about four times a digest in OpenSSL 3) */
	sha256(given, a);
	sha256(hub_str_from(expected), b);
	return hub_ct_equal(a, b, sizeof(a));
}

int hub_hex_decode(struct hub_str hex, unsigned char *out, size_t outlen)
{
	int bad = 0;

	if (hex.len != 2 * outlen)
		return -EBADMSG;
	for (size_t i = 0; i < outlen; i++) {
		int hi = hub_hexval((unsigned char)hex.p[2 * i]);
		int lo = hub_hexval((unsigned char)hex.p[2 * i + 1]);
		bad |= (hi | lo) < 0;
		out[i] = (unsigned char)(((hi & 15) << 4) | (lo & 15)); /* -1 never shifted */
	}
	return bad ? -EBADMSG : 0;
}

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void hub_base64url_add(struct hub_buf *b, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0;

	hub_buf_grow(b, (n + 2) / 3 * 4);
	for (; i + 3 <= n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
		char q[4] = { b64url[v >> 18], b64url[(v >> 12) & 63], b64url[(v >> 6) & 63],
			      b64url[v & 63] };
		hub_buf_add(b, q, 4);
	}
	if (n - i == 1) {
		unsigned v = (unsigned)s[i] << 16;
		char q[2] = { b64url[v >> 18], b64url[(v >> 12) & 63] };
		hub_buf_add(b, q, 2);
	} else if (n - i == 2) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
		char q[3] = { b64url[v >> 18], b64url[(v >> 12) & 63], b64url[(v >> 6) & 63] };
		hub_buf_add(b, q, 3);
	}
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int hub_base64url_decode(struct hub_buf *b, struct hub_str s)
{
	size_t old = b->len;
	unsigned acc = 0;
	int bits = 0;

	if (s.len % 4 == 1)
		return -EBADMSG;
	for (size_t i = 0; i < s.len; i++) {
		int v = b64val((unsigned char)s.p[i]);
		if (v < 0) {
			if (b->cap)
				hub_buf_truncate(b, old);
			return -EBADMSG;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			hub_buf_addch(b, (int)((acc >> bits) & 0xff));
		}
	}
	/* The unused low bits of the last character must be zero (canonical form). */
	if (acc & ((1u << bits) - 1)) {
		if (b->cap)
			hub_buf_truncate(b, old);
		return -EBADMSG;
	}
	return 0;
}

int hub_random_bytes(void *p, size_t n)
{
	unsigned char *s = p;

	while (n) {
		ssize_t r = getrandom(s, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		s += r;
		n -= (size_t)r;
	}
	return 0;
}
