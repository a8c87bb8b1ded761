/* adapters/meta.c - Meta's webhook authentication, shared by the WhatsApp and Instagram
 * adapters: the X-Hub-Signature-256 HMAC and the GET verification handshake. Pure: knows
 * nothing about HTTP beyond the header and query lookups of struct hub_webhook. */
#include "adapters/meta.h"

#include <errno.h>

#include "lib/crypto.h"

#define META_SIG_PREFIX "sha256="

int hub_meta_verify(const struct hub_channel *ch, const struct hub_webhook *wh)
{
	struct hub_str sig = wh->header(wh->req, "X-Hub-Signature-256");
	unsigned char want[HUB_SHA256_LEN], got[HUB_SHA256_LEN];

	if (!ch->app_secret || !*ch->app_secret || !sig.p ||
	    !hub_str_startswith(sig, META_SIG_PREFIX))
		return -EPERM;
	sig.p += sizeof(META_SIG_PREFIX) - 1;
	sig.len -= sizeof(META_SIG_PREFIX) - 1;
	if (hub_hex_decode(sig, got, sizeof(got)) < 0)
		return -EPERM;
	hub_hmac_sha256(hub_str_from(ch->app_secret), wh->body, want);
	return hub_ct_equal(want, got, sizeof(want)) ? 0 : -EPERM;
}

int hub_meta_handshake(const struct hub_channel *ch, const struct hub_webhook *wh,
		       struct hub_str *reply)
{
	struct hub_str mode = wh->query(wh->req, "hub.mode");
	struct hub_str token = wh->query(wh->req, "hub.verify_token");
	struct hub_str challenge = wh->query(wh->req, "hub.challenge");

	if (!mode.p || !token.p || !challenge.p || !challenge.len || challenge.len > 256)
		return -EBADMSG;
	if (!hub_str_eqs(mode, "subscribe") || !ch->verify_token || !*ch->verify_token ||
	    !hub_secret_equal(token, ch->verify_token))
		return -EPERM;
	*reply = challenge;
	return 0;
}
