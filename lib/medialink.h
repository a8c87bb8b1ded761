/* lib/medialink.h - signed, expiring links to files: what the inbox page puts in an <img
 * src> (a message's file, which it cannot fetch with an Authorization header) and where the
 * platforms fetch an agent's upload from. The query "exp=<unix seconds>&sig=<hex>" carries
 * HMAC-SHA256("<purpose>:<id>:<exp>") under a key derived from the JWT secret, so a new
 * secret revokes every link, and a link of one purpose or id is worth nothing for another.
 * Pure: the caller gives the time. */
#ifndef HUB_MEDIALINK_H
#define HUB_MEDIALINK_H

#include <stdint.h>

#include "lib/buf.h"
#include "lib/crypto.h"

struct hub_medialink_key {
	unsigned char k[HUB_SHA256_LEN];
};

/* The links' key: HMAC-SHA256(jwt_secret, "bayge-hub media links v1"). */
void hub_medialink_key_init(struct hub_medialink_key *key, struct hub_str jwt_secret);
/* Appends "exp=<exp>&sig=<64 hex digits>" for (purpose, id) to b. */
void hub_medialink_sign(const struct hub_medialink_key *key, const char *purpose, int64_t id,
			int64_t exp, struct hub_buf *b);
/* 0 when sig is the signature of (purpose, id, exp) and exp >= now; -EPERM for a missing or
 * wrong signature or exp, -ETIMEDOUT for an expired link. Constant time in the signature. */
int hub_medialink_verify(const struct hub_medialink_key *key, const char *purpose, int64_t id,
			 struct hub_str exp, struct hub_str sig, int64_t now) HUB_MUSTCHECK;

/* "<public_url>/media/<id>/<filename, %-encoded>?exp=&sig=" (purpose "upload") into b:
 * where a platform fetches an agent's upload; the name is in the path because Telegram
 * names a file sent by URL after the URL's last segment. */
void hub_medialink_upload_url(const struct hub_medialink_key *key, const char *public_url,
			      int64_t id, const char *filename, int64_t exp, struct hub_buf *b);

#endif
