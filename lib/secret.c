/* lib/secret.c - see secret.h. */
#include "lib/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lib/crypto.h"

#define PREFIX "hs1:"
#define NONCE_LEN 12
#define TAG_LEN 16
#define KEY_LEN 32

struct key {
	unsigned char k[KEY_LEN];
	char id[HUB_SECRET_ID_LEN + 1];
};

struct hub_keyring {
	struct key keys[2]; /* [0] the current, [1] the previous */
	int n;
};

static int add_key(struct hub_keyring *kr, const char *hex, const char *which,
		   struct hub_err *err)
{
	static const char label[] = "bayge-hub-key";
	struct key *k = &kr->keys[kr->n];
	unsigned char digest[HUB_SHA256_LEN], buf[sizeof(label) - 1 + KEY_LEN];

	if (strlen(hex) != HUB_SECRET_KEY_HEX ||
	    hub_hex_decode(hub_str_from(hex), k->k, KEY_LEN) < 0)
		return hub_err_set(err, -EINVAL, "%s must be %d hex digits (32 random bytes: "
				   "openssl rand -hex 32)", which, HUB_SECRET_KEY_HEX);
	memcpy(buf, label, sizeof(label) - 1);
	memcpy(buf + sizeof(label) - 1, k->k, KEY_LEN);
	if (!EVP_Digest(buf, sizeof(buf), digest, NULL, EVP_sha256(), NULL))
		hub_assert(!"SHA-256 failed");
	for (int i = 0; i < HUB_SECRET_ID_LEN / 2; i++)
		snprintf(k->id + 2 * i, 3, "%02x", digest[i]);
	OPENSSL_cleanse(buf, sizeof(buf));
	kr->n++;
	return 0;
}

int hub_keyring_new(const char *current, const char *previous, struct hub_keyring **out,
		    struct hub_err *err)
{
	struct hub_keyring *kr = hub_xcalloc(1, sizeof(*kr));
	int ret = 0;

	if (previous && !current)
		ret = hub_err_set(err, -EINVAL, "a previous master key needs a current one");
	if (ret == 0 && current)
		ret = add_key(kr, current, "the master key", err);
	if (ret == 0 && previous)
		ret = add_key(kr, previous, "the previous master key", err);
	if (ret < 0) {
		hub_keyring_free(kr);
		return ret;
	}
	*out = kr;
	return 0;
}

void hub_keyring_free(struct hub_keyring *kr)
{
	if (!kr)
		return;
	OPENSSL_cleanse(kr, sizeof(*kr));
	free(kr);
}

const char *hub_keyring_id(const struct hub_keyring *kr)
{
	return kr && kr->n ? kr->keys[0].id : NULL;
}

bool hub_secret_sealed(struct hub_str value)
{
	return value.len >= sizeof(PREFIX) - 1 && memcmp(value.p, PREFIX, sizeof(PREFIX) - 1) == 0;
}

/* AES-256-GCM of in (len bytes) with aad: encrypt (tag written) or decrypt (tag checked).
 * 0 or -EBADMSG. */
static int gcm(bool enc, const unsigned char *key, const unsigned char *nonce,
	       struct hub_str aad, const unsigned char *in, size_t len, unsigned char *out,
	       unsigned char *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	if (!ctx)
		hub_assert(!"out of memory");
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) &&
	     EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) &&
	     (!aad.len || EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)aad.p,
					   (int)aad.len)) &&
	     (!len || EVP_CipherUpdate(ctx, out, &n, in, (int)len)) &&
	     (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag)) &&
	     EVP_CipherFinal_ex(ctx, out + (len ? n : 0), &n) &&
	     (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag));
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -EBADMSG;
}

int hub_secret_seal(const struct hub_keyring *kr, struct hub_str where, struct hub_str plain,
		    struct hub_buf *out)
{
	size_t len = NONCE_LEN + plain.len + TAG_LEN;
	unsigned char *raw;

	if (!kr || !kr->n)
		return -ENOKEY;
	if (plain.len > 1u << 20)
		return -EMSGSIZE;
	raw = hub_xmalloc(len);
	if (hub_random_bytes(raw, NONCE_LEN) < 0)
		hub_assert(!"no random bytes");
	if (gcm(true, kr->keys[0].k, raw, where, (const unsigned char *)plain.p, plain.len,
		raw + NONCE_LEN, raw + NONCE_LEN + plain.len) < 0)
		hub_assert(!"AES-GCM failed");
	hub_buf_adds(out, PREFIX);
	hub_buf_adds(out, kr->keys[0].id);
	hub_buf_addch(out, ':');
	hub_base64url_add(out, raw, len);
	OPENSSL_cleanse(raw, len);
	free(raw);
	return 0;
}

int hub_secret_open(const struct hub_keyring *kr, struct hub_str where, struct hub_str value,
		    struct hub_buf *out)
{
	const size_t head = sizeof(PREFIX) - 1 + HUB_SECRET_ID_LEN + 1;
	const struct key *k = NULL;
	struct hub_buf raw = HUB_BUF_INIT;
	unsigned char *plain;
	size_t len;
	int ret;

	if (!hub_secret_sealed(value) || value.len < head || value.p[head - 1] != ':')
		return -EBADMSG;
	for (int i = 0; kr && i < kr->n; i++)
		if (memcmp(value.p + sizeof(PREFIX) - 1, kr->keys[i].id, HUB_SECRET_ID_LEN) == 0)
			k = &kr->keys[i];
	if (!k)
		return -ENOKEY;
	if (hub_base64url_decode(&raw, (struct hub_str){ value.p + head, value.len - head }) < 0 ||
	    raw.len < NONCE_LEN + TAG_LEN) {
		hub_buf_release(&raw);
		return -EBADMSG;
	}
	len = raw.len - NONCE_LEN - TAG_LEN;
	plain = hub_xmalloc(len + 1);
	ret = gcm(false, k->k, (unsigned char *)raw.p, where, (unsigned char *)raw.p + NONCE_LEN,
		  len, plain, (unsigned char *)raw.p + NONCE_LEN + len);
	if (ret == 0)
		hub_buf_add(out, plain, len);
	OPENSSL_cleanse(plain, len + 1);
	free(plain);
	hub_buf_release(&raw);
	return ret;
}
