/* lib/medialink.c - see medialink.h. */
#include "lib/medialink.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

static void digest(const struct hub_medialink_key *key, const char *purpose, int64_t id,
		   int64_t exp, unsigned char out[HUB_SHA256_LEN])
{
	char msg[128];
	int n = snprintf(msg, sizeof(msg), "%s:%" PRId64 ":%" PRId64, purpose, id, exp);

	hub_hmac_sha256((struct hub_str){ (const char *)key->k, sizeof(key->k) },
			(struct hub_str){ msg, (size_t)n }, out);
}

void hub_medialink_key_init(struct hub_medialink_key *key, struct hub_str jwt_secret)
{
	hub_hmac_sha256(jwt_secret, HUB_STR("bayge-hub media links v1"), key->k);
}

void hub_medialink_sign(const struct hub_medialink_key *key, const char *purpose, int64_t id,
			int64_t exp, struct hub_buf *b)
{
	unsigned char mac[HUB_SHA256_LEN];

	digest(key, purpose, id, exp, mac);
	hub_buf_addf(b, "exp=%" PRId64 "&sig=", exp);
	hub_buf_addhex(b, mac, sizeof(mac));
}

int hub_medialink_verify(const struct hub_medialink_key *key, const char *purpose, int64_t id,
			 struct hub_str exp, struct hub_str sig, int64_t now)
{
	unsigned char mac[HUB_SHA256_LEN], given[HUB_SHA256_LEN];
	int64_t e = 0;

	if (!exp.len || exp.len > 12 || sig.len != 2 * HUB_SHA256_LEN ||
	    hub_hex_decode(sig, given, sizeof(given)) < 0)
		return -EPERM;
	for (size_t i = 0; i < exp.len; i++) {
		if (exp.p[i] < '0' || exp.p[i] > '9')
			return -EPERM;
		e = e * 10 + (exp.p[i] - '0');
	}
	digest(key, purpose, id, e, mac);
	if (!hub_ct_equal(mac, given, sizeof(mac)))
		return -EPERM;
	return e < now ? -ETIMEDOUT : 0;
}

void hub_medialink_upload_url(const struct hub_medialink_key *key, const char *public_url,
			      int64_t id, const char *filename, int64_t exp, struct hub_buf *b)
{
	hub_buf_addf(b, "%s/media/%" PRId64 "/", public_url, id);
	hub_buf_addpct(b, filename, "");
	hub_buf_addch(b, '?');
	hub_medialink_sign(key, "upload", id, exp, b);
}
