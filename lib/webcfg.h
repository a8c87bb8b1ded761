/* lib/webcfg.h - the website chat's pure parts: a web channel's settings (the JSON of
 * channels.web and of the config file's "web" key), the visitors' tokens and the signed-in
 * users' hash. Pure: no I/O; strings from the pool given.
 *
 * Settings: {"origins": ["https://shop.example.kz", ...],   1..32 origins, each
 *            scheme://host[:port], lower case, no path
 *            "title": "Acme" or {"ru": ..., "kk": ..., "en": ...},  at most 80 characters
 *            "color": "#0a7cff",                               #rgb or #rrggbb
 *            "greeting": {"ru": ..., "kk": ..., "en": ...},     each at most 500 characters
 *            "offline": {"ru": ..., "kk": ..., "en": ...},
 *            "prechat": false}                                  the name-and-phone form
 * Texts may be a string (every language) or an object of languages; a missing language
 * falls back to English, then to the widget's own text.
 *
 * A visitor token: "wv1.<channel>.<base64url of the sender>.<issued, Unix s>.<base64url of
 * HMAC-SHA256(identity secret, "bayge.visitor.v1\n" channel "\n" sender "\n" issued)>",
 * where sender is "v:<32 hex>" (an anonymous browser) or "u:<user id>" (a verified user).
 * The user hash is the hex HMAC-SHA256(identity secret, user id), as the site computes it. */
#ifndef HUB_WEBCFG_H
#define HUB_WEBCFG_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/pool.h"

#define HUB_WEBCFG_ORIGINS_MAX 32
#define HUB_WEBCFG_LANGS 3        /* ru, kk, en */
#define HUB_WEBCFG_USER_ID_MAX 128 /* bytes of a site's user id */

struct hub_webcfg {
	const char *origins[HUB_WEBCFG_ORIGINS_MAX];
	size_t norigins;
	const char *title[HUB_WEBCFG_LANGS];    /* NULL: the widget's default */
	const char *greeting[HUB_WEBCFG_LANGS]; /* NULL: none */
	const char *offline[HUB_WEBCFG_LANGS];  /* NULL: the widget's default */
	const char *color;                      /* "#0a7cff"; NULL: the default */
	bool prechat;
};

extern const char *const hub_webcfg_langs[HUB_WEBCFG_LANGS]; /* "ru", "kk", "en" */

/* Parses and checks settings (strings in pool). 0, or -EINVAL with err naming the key. */
int hub_webcfg_parse(struct hub_pool *pool, struct hub_str json, struct hub_webcfg *out,
		     struct hub_err *err) HUB_MUSTCHECK;
/* The settings as the widget gets them (origins left out): {"title":{...},...}. */
void hub_webcfg_public_json(const struct hub_webcfg *c, struct hub_buf *out);
/* Is origin (the Origin header's value) one of the settings' origins? Exact, as browsers
 * send it (scheme://host[:port], lower case). */
bool hub_webcfg_origin_allowed(const struct hub_webcfg *c, struct hub_str origin);

/* A site's user id: 1..HUB_WEBCFG_USER_ID_MAX printable ASCII bytes (no space). */
bool hub_webcfg_user_id_valid(struct hub_str user_id);
/* Is hash (hex, either case) HMAC-SHA256(secret, user_id)? Constant time. */
bool hub_webcfg_user_hash_ok(struct hub_str secret, struct hub_str user_id, struct hub_str hash);

/* Appends a token for (channel, sender) issued at iat. */
void hub_visitor_token_sign(struct hub_buf *out, struct hub_str secret, const char *channel,
			    struct hub_str sender, int64_t iat);
/* The channel a token names (a slice of token), without checking anything else; -EBADMSG
 * when it is not shaped as a token. */
int hub_visitor_token_channel(struct hub_str token, struct hub_str *channel) HUB_MUSTCHECK;
/* Verifies token for channel with secret: 0 and the sender (in pool); -EBADMSG malformed,
 * -EXDEV another channel's, -EPERM a bad signature. */
int hub_visitor_token_verify(struct hub_pool *pool, struct hub_str token, struct hub_str secret,
			     const char *channel, struct hub_str *sender) HUB_MUSTCHECK;

#endif
