/* adapters/meta.h - what Meta's platforms (WhatsApp Cloud API, Instagram Messaging) share:
 * the X-Hub-Signature-256 check and the GET verification handshake. Pure; knows nothing
 * about either platform's body. */
#ifndef HUB_META_H
#define HUB_META_H

#include "adapters/adapter.h"

/* X-Hub-Signature-256: sha256=<hex HMAC-SHA256(ch->app_secret, raw body)>, hex of either
 * case, compared in constant time. 0, or -EPERM when the header, the secret or the match
 * is missing. The legacy SHA-1 X-Hub-Signature is never looked at. */
int hub_meta_verify(const struct hub_channel *ch, const struct hub_webhook *wh);

/* GET ?hub.mode=subscribe&hub.challenge=C&hub.verify_token=T: 0 and *reply = C (a slice of
 * the request's query value) when T equals ch->verify_token (compared in constant time);
 * -EPERM for a wrong token or mode, -EBADMSG when a parameter is missing or C is empty or
 * longer than 256 bytes. */
int hub_meta_handshake(const struct hub_channel *ch, const struct hub_webhook *wh,
		       struct hub_str *reply);

#endif
