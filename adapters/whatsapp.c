/* adapters/whatsapp.c - WhatsApp Cloud API webhooks: signature, the GET handshake, and
 * entry[] x changes[] x messages[]/statuses[] into normalized events.
 * Pure: bytes in, events out; knows nothing about HTTP or the database. */
#include "adapters/adapter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/json.h"

#define WA_MAX_TOKENS 200000 /* a 4 MiB body of up to 1000 updates stays well under */

/* Meta: X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, app secret as key> */
static int wa_verify(const struct hub_channel *ch, const struct hub_webhook *wh)
{
	struct hub_str sig = wh->header(wh->req, "X-Hub-Signature-256");
	unsigned char want[HUB_SHA256_LEN], got[HUB_SHA256_LEN];

	if (!ch->app_secret || !sig.p || !hub_str_startswith(sig, "sha256="))
		return -EPERM;
	sig.p += 7;
	sig.len -= 7;
	if (hub_hex_decode(sig, got, sizeof(got)) < 0)
		return -EPERM;
	hub_hmac_sha256(hub_str_from(ch->app_secret), wh->body, want);
	return hub_ct_equal(want, got, sizeof(want)) ? 0 : -EPERM;
}

static bool secret_equal(struct hub_str given, const char *expected)
{
	unsigned char a[HUB_SHA256_LEN], b[HUB_SHA256_LEN];
	static const struct hub_str key = HUB_STR("hub-compare");

	/* Compare digests so that neither content nor length leaks through timing. */
	hub_hmac_sha256(key, given, a);
	hub_hmac_sha256(key, hub_str_from(expected), b);
	return hub_ct_equal(a, b, sizeof(a));
}

/* GET ?hub.mode=subscribe&hub.challenge=C&hub.verify_token=T → C when T matches. */
static int wa_handshake(const struct hub_channel *ch, const struct hub_webhook *wh,
			struct hub_str *reply)
{
	struct hub_str mode = wh->query(wh->req, "hub.mode");
	struct hub_str token = wh->query(wh->req, "hub.verify_token");
	struct hub_str challenge = wh->query(wh->req, "hub.challenge");

	if (!mode.p || !token.p || !challenge.p || !challenge.len || challenge.len > 256)
		return -EBADMSG;
	if (!hub_str_eqs(mode, "subscribe") || !ch->verify_token ||
	    !secret_equal(token, ch->verify_token))
		return -EPERM;
	*reply = challenge;
	return 0;
}

struct wa_ctx {
	struct hub_pool *pool;
	const struct hub_channel *ch;
	const struct hub_json_doc *doc;
	struct hub_event_list *out;
};

/* A string field or an empty slice. */
static struct hub_str str_at(const struct wa_ctx *c, int obj, const char *key)
{
	struct hub_str s = HUB_STR_NULL;

	if (hub_json_string(c->doc, hub_json_get(c->doc, obj, key), c->pool, &s) < 0)
		return HUB_STR_NULL;
	return s;
}

/* WhatsApp timestamps are strings of Unix seconds. */
static int64_t ts_ms(struct hub_str s)
{
	char tmp[24];
	char *end;
	long long v;

	if (!s.len || s.len >= sizeof(tmp))
		return 0;
	memcpy(tmp, s.p, s.len);
	tmp[s.len] = '\0';
	v = strtoll(tmp, &end, 10);
	if (*end || v <= 0 || v > 100000000000LL)
		return 0;
	return v * 1000;
}

static const struct {
	const char *name;
	enum hub_msg_type type;
} media_types[] = {
	{ "image", HUB_MSG_IMAGE },   { "audio", HUB_MSG_AUDIO },
	{ "video", HUB_MSG_VIDEO },   { "document", HUB_MSG_DOCUMENT },
	{ "sticker", HUB_MSG_STICKER },
};

/* The sender's profile from value.contacts[] by wa_id or user_id. */
static int find_contact(const struct wa_ctx *c, int contacts, struct hub_str from)
{
	for (int k = hub_json_first(c->doc, contacts); k >= 0; k = hub_json_after(c->doc, k)) {
		if (hub_str_eq(str_at(c, k, "wa_id"), from) ||
		    hub_str_eq(str_at(c, k, "user_id"), from))
			return k;
	}
	return -1;
}

static int parse_message(struct wa_ctx *c, int contacts, int m)
{
	const struct hub_json_doc *doc = c->doc;
	struct hub_event *ev;
	struct hub_inbound_msg *msg;
	struct hub_str from = str_at(c, m, "from");
	struct hub_str user_id = str_at(c, m, "from_user_id");
	struct hub_str id = str_at(c, m, "id");
	struct hub_str type = str_at(c, m, "type");
	int contact;

	if (!from.len)
		from = user_id;
	if (!id.len || !from.len || !type.len)
		return -EBADMSG;
	ev = hub_event_list_push(c->out, c->pool);
	ev->kind = HUB_EVENT_MESSAGE;
	msg = &ev->msg;
	msg->channel_kind = HUB_CHANNEL_WHATSAPP;
	msg->channel_id = c->ch ? c->ch->id : NULL;
	msg->external_id = id;
	msg->sender_external_id = from;
	msg->raw_type = type;
	msg->platform_ts = ts_ms(str_at(c, m, "timestamp"));
	contact = find_contact(c, contacts, from);
	if (contact >= 0) {
		struct hub_str wa_id = str_at(c, contact, "wa_id");
		msg->sender_profile_name = str_at(c, hub_json_get(doc, contact, "profile"), "name");
		msg->sender_username = str_at(c, hub_json_get(doc, contact, "profile"),
					      "username");
		if (wa_id.len && hub_phone_normalize(c->pool, wa_id, &msg->sender_phone) < 0)
			msg->sender_phone = HUB_STR_NULL;
	} else if (!hub_str_eq(from, user_id) &&
		   hub_phone_normalize(c->pool, from, &msg->sender_phone) < 0) {
		msg->sender_phone = HUB_STR_NULL;
	}
	msg->reply_to_external_id = str_at(c, hub_json_get(doc, m, "context"), "id");

	int body = hub_json_get(doc, m, type.len < 32 ? hub_pool_strndup(c->pool, type.p,
								       type.len) : "");
	if (hub_str_eqs(type, "text")) {
		msg->type = HUB_MSG_TEXT;
		msg->text = str_at(c, body, "body");
		return 0;
	}
	for (size_t i = 0; i < HUB_ARRAY_SIZE(media_types); i++) {
		if (!hub_str_eqs(type, media_types[i].name))
			continue;
		msg->type = media_types[i].type;
		msg->media.platform_id = str_at(c, body, "id");
		msg->media.mime = str_at(c, body, "mime_type");
		msg->media.caption = str_at(c, body, "caption");
		msg->media.filename = str_at(c, body, "filename");
		msg->text = msg->media.caption;
		return 0;
	}
	if (hub_str_eqs(type, "location")) {
		msg->type = HUB_MSG_LOCATION;
		msg->location.present =
			hub_json_double(doc, hub_json_get(doc, body, "latitude"),
					&msg->location.lat) == 0 &&
			hub_json_double(doc, hub_json_get(doc, body, "longitude"),
					&msg->location.lon) == 0;
		msg->location.name = str_at(c, body, "name");
		msg->text = msg->location.name;
		return 0;
	}
	if (hub_str_eqs(type, "interactive")) {
		int reply = hub_json_get(doc, body, "button_reply");
		if (reply < 0)
			reply = hub_json_get(doc, body, "list_reply");
		msg->type = HUB_MSG_INTERACTIVE;
		msg->text = str_at(c, reply, "title");
		return 0;
	}
	if (hub_str_eqs(type, "button")) {
		msg->type = HUB_MSG_INTERACTIVE;
		msg->text = str_at(c, body, "text");
		return 0;
	}
	if (hub_str_eqs(type, "reaction")) {
		ev->kind = HUB_EVENT_REACTION;
		msg->type = HUB_MSG_REACTION;
		msg->text = str_at(c, body, "emoji"); /* absent: the reaction was removed */
		msg->reply_to_external_id = str_at(c, body, "message_id");
		return 0;
	}
	if (hub_str_eqs(type, "contacts")) {
		msg->type = HUB_MSG_CONTACT;
		return 0;
	}
	msg->type = HUB_MSG_UNSUPPORTED;
	return 0;
}

static int parse_status(struct wa_ctx *c, int s)
{
	struct hub_event *ev;
	struct hub_str id = str_at(c, s, "id");
	struct hub_str status = str_at(c, s, "status");

	if (!id.len || !status.len)
		return -EBADMSG;
	ev = hub_event_list_push(c->out, c->pool);
	ev->kind = HUB_EVENT_STATUS;
	ev->status.external_id = id;
	ev->status.status = status;
	ev->status.recipient = str_at(c, s, "recipient_id");
	ev->status.platform_ts = ts_ms(str_at(c, s, "timestamp"));
	int errors = hub_json_get(c->doc, s, "errors");
	int first = hub_json_first(c->doc, errors);
	if (first >= 0) {
		struct hub_buf b = HUB_BUF_INIT;
		int64_t code = 0;
		if (hub_json_int64(c->doc, hub_json_get(c->doc, first, "code"), &code) < 0)
			code = 0;
		hub_buf_addf(&b, "%lld ", (long long)code);
		hub_buf_addstr(&b, str_at(c, first, "title"));
		ev->status.error = hub_pool_strcopy(c->pool, hub_buf_str(&b));
		hub_buf_release(&b);
	}
	return 0;
}

static int wa_parse(struct hub_pool *pool, const struct hub_channel *ch, struct hub_str body,
		    struct hub_event_list *out, struct hub_err *err)
{
	struct hub_json_doc doc;
	struct wa_ctx c = { pool, ch, &doc, out };
	int entries, ret;

	ret = hub_json_parse(pool, body, WA_MAX_TOKENS, &doc, err);
	if (ret < 0)
		return ret;
	if (!hub_json_is(&doc, 0, HUB_JSON_OBJECT))
		return hub_err_set(err, -EBADMSG, "body is not a JSON object");
	if (!hub_str_eqs(str_at(&c, 0, "object"), "whatsapp_business_account")) {
		out->ignored++;
		return 0;
	}
	entries = hub_json_get(&doc, 0, "entry");
	if (!hub_json_is(&doc, entries, HUB_JSON_ARRAY))
		return hub_err_set(err, -EBADMSG, "entry: must be an array");
	for (int e = hub_json_first(&doc, entries); e >= 0; e = hub_json_after(&doc, e)) {
		int changes = hub_json_get(&doc, e, "changes");
		for (int ch_i = hub_json_first(&doc, changes); ch_i >= 0;
		     ch_i = hub_json_after(&doc, ch_i)) {
			int value = hub_json_get(&doc, ch_i, "value");
			struct hub_str account;

			if (!hub_str_eqs(str_at(&c, ch_i, "field"), "messages") ||
			    !hub_json_is(&doc, value, HUB_JSON_OBJECT)) {
				out->ignored++;
				continue;
			}
			account = str_at(&c, hub_json_get(&doc, value, "metadata"),
					 "phone_number_id");
			if (ch && !hub_str_eqs(account, ch->account_id))
				return hub_err_set(err, -EACCES,
						   "metadata.phone_number_id is not this "
						   "channel's account");
			int contacts = hub_json_get(&doc, value, "contacts");
			int msgs = hub_json_get(&doc, value, "messages");
			for (int m = hub_json_first(&doc, msgs); m >= 0; m = hub_json_after(&doc, m))
				if (parse_message(&c, contacts, m) < 0)
					out->bad++;
			int sts = hub_json_get(&doc, value, "statuses");
			for (int s = hub_json_first(&doc, sts); s >= 0; s = hub_json_after(&doc, s))
				if (parse_status(&c, s) < 0)
					out->bad++;
		}
	}
	return 0;
}

const struct hub_adapter hub_adapter_whatsapp = {
	.name = "whatsapp",
	.kind = HUB_CHANNEL_WHATSAPP,
	.verify = wa_verify,
	.handshake = wa_handshake,
	.parse_webhook = wa_parse,
};
