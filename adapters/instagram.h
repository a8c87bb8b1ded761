/* adapters/instagram.h - what only the Instagram adapter has: the User Profile API, which
 * names a sender the webhooks give only as an IGSID. This builds the request and reads the
 * answer; the daemon makes the call, keeps the name and retries. Pure, as every adapter. */
#ifndef HUB_INSTAGRAM_H
#define HUB_INSTAGRAM_H

#include "adapters/adapter.h"

/* GET /<api_version>/<igsid>?fields=name,username with the channel's token, from pool.
 * -EINVAL for an IGSID that is not digits or a channel without a usable token (err never
 * names the token). */
int hub_instagram_profile_req(struct hub_pool *pool, const struct hub_channel *ch,
			      const char *api_version, struct hub_str igsid,
			      struct hub_send_req *out, struct hub_err *err) HUB_MUSTCHECK;

/* The answer {"name":..,"username":..,"id":..}: 0 with *name and *username (either may be
 * empty: the user never set it, or the app may not read it); -EAGAIN to ask again later (no
 * answer, 429, 5xx, a temporary Graph error: *retry_after_ms when the platform said how
 * long); -EPERM refused for good (no consent, no such user, an expired token), with
 * *why (code and message, for the log). */
int hub_instagram_parse_profile(struct hub_pool *pool, int http_status,
				struct hub_str retry_after_header, struct hub_str body,
				struct hub_str *name, struct hub_str *username,
				int64_t *retry_after_ms, struct hub_str *why) HUB_MUSTCHECK;

#endif
