/* adapters/whatsapp.c - WhatsApp Cloud API webhooks: signature, the GET handshake, and
 * entry[] x changes[] x messages[]/statuses[]/message_echoes[] into normalized events; and
 * the send request (POST /{version}/{phone_number_id}/messages) and its answer.
 * Pure: bytes in, events out; knows nothing about HTTP, the database or media downloads. */
#include "adapters/adapter.h"
#include "adapters/meta.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"

#define WA_MAX_TOKENS 200000 /* a 4 MiB body of up to 1000 updates stays well under */
/* Meta sends up to 1000 updates per POST: one change holds at most WA_MAX_ITEMS messages,
 * statuses and echoes together, and at most WA_MAX_CONTACTS contacts are read. Items beyond
 * are counted in out->bad, unread; the others are kept. So a body Meta would never send
 * costs bounded work, and if Meta ever sent one it would lose only the excess (refusing it
 * would lose all of it to days of retries). */
#define WA_MAX_ITEMS 1000
#define WA_MAX_CONTACTS 1000
#define WA_DAY_MS (24 * 3600 * 1000LL)

/* One entry of a change's contacts index: a card by its wa_id or by its user_id. */
enum wa_key { CARD_WA_ID, CARD_USER_ID };

struct wa_card {
	enum wa_key kind;
	struct hub_str key;
	int card; /* the contact's token */
};

struct wa_ctx {
	struct hub_pool *pool;
	const struct hub_channel *ch;
	const struct hub_json_doc *doc;
	struct hub_event_list *out;
	/* value.contacts[] of the change being walked, sorted by (kind, key, card): a sender
	 * is found in O(log n), never by scanning every card for every message */
	struct wa_card *cards;
	size_t ncards;
	size_t budget; /* items the change being walked may still hold */
};

/* A string field or an empty slice (also when obj is not an object or the value is not a
 * string). */
static struct hub_str str_at(const struct wa_ctx *c, int obj, const char *key)
{
	struct hub_str s = HUB_STR_NULL;

	if (obj < 0 || hub_json_string(c->doc, hub_json_get(c->doc, obj, key), c->pool, &s) < 0)
		return HUB_STR_NULL;
	return s;
}

static int obj_at(const struct wa_ctx *c, int obj, const char *key)
{
	int v = obj < 0 ? -1 : hub_json_get(c->doc, obj, key);

	return hub_json_is(c->doc, v, HUB_JSON_OBJECT) ? v : -1;
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

static int card_cmp(const void *pa, const void *pb)
{
	const struct wa_card *a = pa, *b = pb;
	size_t n = a->key.len < b->key.len ? a->key.len : b->key.len;
	int r;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	r = n ? memcmp(a->key.p, b->key.p, n) : 0;
	if (r)
		return r;
	if (a->key.len != b->key.len)
		return a->key.len < b->key.len ? -1 : 1;
	return (a->card > b->card) - (a->card < b->card);
}

/* Indexes value.contacts[] of one change: its first WA_MAX_CONTACTS cards by wa_id and by
 * user_id; the cards beyond count as bad. */
static void index_contacts(struct wa_ctx *c, int value)
{
	const struct hub_json_doc *doc = c->doc;
	int arr = hub_json_get(doc, value, "contacts");
	size_t size, n = 0;

	c->ncards = 0;
	if (!hub_json_is(doc, arr, HUB_JSON_ARRAY))
		return;
	size = (size_t)doc->tok[arr].size;
	if (size > WA_MAX_CONTACTS) {
		c->out->bad += size - WA_MAX_CONTACTS;
		size = WA_MAX_CONTACTS;
	}
	c->cards = hub_pool_calloc(c->pool, 2 * size, sizeof(*c->cards));
	for (int k = hub_json_first(doc, arr); k >= 0 && n < size;
	     k = hub_json_after(doc, k), n++) {
		struct hub_str wa_id = str_at(c, k, "wa_id");
		struct hub_str uid = str_at(c, k, "user_id");

		if (wa_id.len)
			c->cards[c->ncards++] = (struct wa_card){ CARD_WA_ID, wa_id, k };
		if (uid.len)
			c->cards[c->ncards++] = (struct wa_card){ CARD_USER_ID, uid, k };
	}
	qsort(c->cards, c->ncards, sizeof(*c->cards), card_cmp);
}

/* The first card (in contacts[] order) of kind with key, or -1. */
static int find_card(const struct wa_ctx *c, enum wa_key kind, struct hub_str key)
{
	const struct wa_card probe = { kind, key, -1 };
	size_t lo = 0, hi = c->ncards;

	if (!key.len)
		return -1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (card_cmp(&c->cards[mid], &probe) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->ncards && c->cards[lo].kind == kind && hub_str_eq(c->cards[lo].key, key))
		return c->cards[lo].card;
	return -1;
}

/* The sender's card in value.contacts[]: the first whose wa_id is from or whose user_id is
 * uid, or -1. */
static int find_contact(const struct wa_ctx *c, struct hub_str from, struct hub_str uid)
{
	int a = find_card(c, CARD_WA_ID, from);
	int b = find_card(c, CARD_USER_ID, uid);

	return a < 0 ? b : b < 0 || a < b ? a : b;
}

/* The value named by the message's type ("text": {...}, "contacts": [...]), or -1. */
static int type_body(const struct wa_ctx *c, int m, struct hub_str type)
{
	char key[64];

	if (!type.len || type.len >= sizeof(key))
		return -1;
	memcpy(key, type.p, type.len);
	key[type.len] = '\0';
	return hub_json_get(c->doc, m, key);
}

/*
 * The content of a message of type `type` whose type object is body: msg->type, text,
 * media, location, contact card. Returns 0, or -EBADMSG for content that cannot be shown
 * (a text without its body). Event kinds (edit, revoke, reaction) are the caller's.
 */
static int parse_content(struct wa_ctx *c, struct hub_inbound_msg *msg, struct hub_str type,
			 int body)
{
	const struct hub_json_doc *doc = c->doc;

	if (hub_str_eqs(type, "text")) {
		msg->type = HUB_MSG_TEXT;
		msg->text = str_at(c, body, "body");
		return msg->text.len ? 0 : -EBADMSG;
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
		bool voice = false;
		if (msg->type == HUB_MSG_AUDIO &&
		    hub_json_bool(doc, hub_json_get(doc, body, "voice"), &voice) == 0 && voice)
			msg->raw_type = hub_str_from("voice");
		return 0;
	}
	if (hub_str_eqs(type, "location")) {
		msg->type = HUB_MSG_LOCATION;
		msg->location.present =
			body >= 0 &&
			hub_json_double(doc, hub_json_get(doc, body, "latitude"),
					&msg->location.lat) == 0 &&
			hub_json_double(doc, hub_json_get(doc, body, "longitude"),
					&msg->location.lon) == 0;
		msg->location.name = str_at(c, body, "name");
		msg->location.address = str_at(c, body, "address");
		msg->text = msg->location.name.len ? msg->location.name : msg->location.address;
		return 0;
	}
	if (hub_str_eqs(type, "contacts")) {
		/* shared vCards: the first card's formatted name and first phone */
		int card = -1;

		if (hub_json_is(doc, body, HUB_JSON_ARRAY))
			card = hub_json_first(doc, body);
		msg->type = HUB_MSG_CONTACT;
		if (card >= 0) {
			int phones = hub_json_get(doc, card, "phones");
			msg->contact.name = str_at(c, obj_at(c, card, "name"), "formatted_name");
			if (hub_json_is(doc, phones, HUB_JSON_ARRAY))
				msg->contact.phone = str_at(c, hub_json_first(doc, phones), "phone");
		}
		msg->text = msg->contact.name;
		return 0;
	}
	if (hub_str_eqs(type, "interactive")) {
		/* button_reply/list_reply {id, title}; nfm_reply (a WhatsApp Flow's answer)
		 * {name, body, response_json}: the answers are what the agent needs to see. */
		struct hub_str sub = str_at(c, body, "type");
		int reply = obj_at(c, body, "button_reply");

		msg->type = HUB_MSG_INTERACTIVE;
		if (reply < 0)
			reply = obj_at(c, body, "list_reply");
		if (reply >= 0) {
			msg->text = str_at(c, reply, "title");
		} else if ((reply = obj_at(c, body, "nfm_reply")) >= 0) {
			msg->text = str_at(c, reply, "response_json");
			if (!msg->text.len)
				msg->text = str_at(c, reply, "body");
		}
		if (sub.len)
			msg->raw_type = sub;
		return 0;
	}
	if (hub_str_eqs(type, "button")) {
		/* a template's quick-reply button: {payload, text} */
		msg->type = HUB_MSG_INTERACTIVE;
		msg->text = str_at(c, body, "text");
		return 0;
	}
	/* order {catalog_id, text, product_items[]}, system {body, type, ...}: shown by their
	 * text; "unsupported" and unknown types: only the raw type (errors[].title is
	 * Meta's diagnostic, not the customer's words). */
	msg->type = HUB_MSG_UNSUPPORTED;
	if (hub_str_eqs(type, "order"))
		msg->text = str_at(c, body, "text");
	else if (hub_str_eqs(type, "system"))
		msg->text = str_at(c, body, "body");
	return 0;
}

/* The sender of a customer's message: the business-scoped user id ("from_user_id", an
 * identity of its own that survives a hidden phone) when there is one, else the phone
 * ("from"); the phone, when given, is an attribute (it links a new user id to the contact
 * already known by that phone); name and username from its contacts[] card. */
static int parse_sender(struct wa_ctx *c, int m, struct hub_inbound_msg *msg)
{
	struct hub_str from = str_at(c, m, "from");
	struct hub_str uid = str_at(c, m, "from_user_id");
	int profile = obj_at(c, find_contact(c, from, uid), "profile");

	msg->sender_external_id = uid.len ? uid : from;
	if (!msg->sender_external_id.len)
		return -EBADMSG;
	msg->sender_profile_name = str_at(c, profile, "name");
	msg->sender_username = str_at(c, profile, "username");
	if (from.len && hub_phone_normalize(c->pool, from, &msg->sender_phone) < 0)
		msg->sender_phone = HUB_STR_NULL;
	return 0;
}

/*
 * One item of messages[] (echo false) or message_echoes[] (echo true) into one event:
 * 0, 1 when it is valid but not served (a group's message), -EBADMSG when malformed.
 */
static int parse_message(struct wa_ctx *c, int m, bool echo)
{
	const struct hub_json_doc *doc = c->doc;
	struct hub_inbound_msg msg = { 0 };
	enum hub_event_kind kind = echo ? HUB_EVENT_ECHO : HUB_EVENT_MESSAGE;
	struct hub_str id = str_at(c, m, "id");
	struct hub_str type = str_at(c, m, "type");
	int body = type_body(c, m, type);

	if (!hub_json_is(doc, m, HUB_JSON_OBJECT) || !id.len || !type.len)
		return -EBADMSG;
	if (hub_json_get(doc, m, "group_id") >= 0)
		return 1; /* group chats are not served */
	msg.channel_kind = HUB_CHANNEL_WHATSAPP;
	msg.channel_id = c->ch ? c->ch->id : NULL;
	msg.external_id = id;
	msg.raw_type = type;
	msg.platform_ts = ts_ms(str_at(c, m, "timestamp"));
	msg.reply_to_external_id = str_at(c, obj_at(c, m, "context"), "id");
	if (echo) {
		/* the business wrote it: the sender is the business number; the customer, as
		 * in parse_sender, is the BSUID ("to_user_id", the identity its own messages
		 * come from) when there is one, else the phone ("to") */
		struct hub_str to_uid = str_at(c, m, "to_user_id");

		msg.sender_external_id = str_at(c, m, "from");
		msg.recipient_external_id = to_uid.len ? to_uid : str_at(c, m, "to");
		if (!msg.recipient_external_id.len)
			return -EBADMSG;
	} else if (parse_sender(c, m, &msg) < 0) {
		return -EBADMSG;
	}

	if (hub_str_eqs(type, "edit")) {
		int inner = obj_at(c, body, "message");
		struct hub_str itype = str_at(c, inner, "type");

		kind = HUB_EVENT_EDIT;
		msg.external_id = str_at(c, body, "original_message_id");
		msg.dedupe_key = id;
		if (!msg.external_id.len || inner < 0)
			return -EBADMSG;
		if (!itype.len && obj_at(c, inner, "text") >= 0)
			itype = hub_str_from("text");
		if (hub_str_eqs(itype, "edit") || hub_str_eqs(itype, "revoke") ||
		    hub_str_eqs(itype, "reaction"))
			return -EBADMSG;
		if (parse_content(c, &msg, itype, type_body(c, inner, itype)) < 0)
			return -EBADMSG;
		msg.raw_type = type;
	} else if (hub_str_eqs(type, "revoke")) {
		kind = HUB_EVENT_DELETE;
		msg.type = HUB_MSG_UNSUPPORTED; /* a deletion has no content */
		msg.external_id = str_at(c, body, "original_message_id");
		msg.dedupe_key = id;
		if (!msg.external_id.len)
			return -EBADMSG;
	} else if (hub_str_eqs(type, "reaction")) {
		/* {message_id, emoji}; no emoji (or "") = the reaction was removed. The
		 * reaction has its own wamid: external_id, unique per reaction event. An echo's
		 * reaction is the business's own: recipient_external_id tells them apart. */
		kind = HUB_EVENT_REACTION;
		msg.type = HUB_MSG_REACTION;
		msg.text = str_at(c, body, "emoji");
		msg.reply_to_external_id = str_at(c, body, "message_id");
		if (!msg.reply_to_external_id.len)
			return -EBADMSG;
	} else if (parse_content(c, &msg, type, body) < 0) {
		return -EBADMSG;
	}

	struct hub_event *ev = hub_event_list_push(c->out, c->pool);
	ev->kind = kind;
	ev->msg = msg;
	return 0;
}

/* sent < delivered < read (≤ played); failed is final. Others (e.g. the legacy "deleted"
 * and "warning") are valid but not served. */
static bool known_status(struct hub_str s)
{
	static const char *const known[] = { "sent", "delivered", "read", "played", "failed" };

	for (size_t i = 0; i < HUB_ARRAY_SIZE(known); i++)
		if (hub_str_eqs(s, known[i]))
			return true;
	return false;
}

/* One item of statuses[]: 0, 1 when not served, -EBADMSG. conversation{} and pricing{}
 * are billing data: not read. */
static int parse_status(struct wa_ctx *c, int s)
{
	const struct hub_json_doc *doc = c->doc;
	struct hub_event *ev;
	struct hub_str id = str_at(c, s, "id");
	struct hub_str status = str_at(c, s, "status");

	if (!hub_json_is(doc, s, HUB_JSON_OBJECT) || !id.len || !status.len)
		return -EBADMSG;
	if (!known_status(status))
		return 1;
	ev = hub_event_list_push(c->out, c->pool);
	ev->kind = HUB_EVENT_STATUS;
	ev->status.external_id = id;
	ev->status.status = status;
	ev->status.recipient = str_at(c, s, "recipient_id");
	if (!ev->status.recipient.len)
		ev->status.recipient = str_at(c, s, "recipient_user_id");
	ev->status.platform_ts = ts_ms(str_at(c, s, "timestamp"));
	int errors = hub_json_get(doc, s, "errors");
	int first = hub_json_is(doc, errors, HUB_JSON_ARRAY) ? hub_json_first(doc, errors) : -1;
	if (first >= 0) {
		struct hub_buf b = HUB_BUF_INIT;
		int64_t code = 0;
		if (hub_json_int64(doc, hub_json_get(doc, first, "code"), &code) < 0)
			code = 0;
		hub_buf_addf(&b, "%lld ", (long long)code);
		hub_buf_addstr(&b, str_at(c, first, "title"));
		ev->status.error = hub_pool_strcopy(c->pool, hub_buf_str(&b));
		hub_buf_release(&b);
	}
	return 0;
}

static void count(struct hub_event_list *out, int ret)
{
	if (ret < 0)
		out->bad++;
	else if (ret > 0)
		out->ignored++;
}

/* Every item of value[key] (absent: none; not an array: one bad item) while the change's
 * budget lasts; the items beyond it count as bad. */
static void walk(struct wa_ctx *c, int value, const char *key, int (*fn)(struct wa_ctx *, int))
{
	const struct hub_json_doc *doc = c->doc;
	int arr = hub_json_get(doc, value, key);
	size_t left;

	if (arr < 0 || hub_json_is_null(doc, arr))
		return;
	if (!hub_json_is(doc, arr, HUB_JSON_ARRAY)) {
		c->out->bad++;
		return;
	}
	left = (size_t)doc->tok[arr].size;
	for (int i = hub_json_first(doc, arr); i >= 0 && c->budget; i = hub_json_after(doc, i)) {
		c->budget--;
		left--;
		count(c->out, fn(c, i));
	}
	c->out->bad += left;
}

static int on_message(struct wa_ctx *c, int m)
{
	return parse_message(c, m, false);
}

static int on_echo(struct wa_ctx *c, int m)
{
	return parse_message(c, m, true);
}

/* One entry[].changes[] item: 0, or -EACCES when it names another account than ch's. */
static int parse_change(struct wa_ctx *c, int change, struct hub_err *err)
{
	const struct hub_json_doc *doc = c->doc;
	struct hub_str field = str_at(c, change, "field");
	int value = obj_at(c, change, "value");
	bool echoes = hub_str_eqs(field, "smb_message_echoes");

	if (!hub_json_is(doc, change, HUB_JSON_OBJECT)) {
		c->out->bad++;
		return 0;
	}
	if (!hub_str_eqs(field, "messages") && !echoes) {
		c->out->ignored++; /* account_update, templates, history, ... */
		return 0;
	}
	if (value < 0) {
		c->out->bad++;
		return 0;
	}
	if (c->ch && !hub_str_eqs(str_at(c, obj_at(c, value, "metadata"), "phone_number_id"),
				  c->ch->account_id))
		return hub_err_set(err, -EACCES,
				   "metadata.phone_number_id is not this channel's account");
	c->budget = WA_MAX_ITEMS;
	if (echoes) {
		walk(c, value, "message_echoes", on_echo);
	} else {
		index_contacts(c, value);
		walk(c, value, "messages", on_message);
		walk(c, value, "statuses", parse_status);
	}
	return 0;
}

static int wa_parse(struct hub_pool *pool, const struct hub_channel *ch, struct hub_str body,
		    struct hub_event_list *out, struct hub_err *err)
{
	struct hub_json_doc doc;
	struct wa_ctx c = { pool, ch, &doc, out, NULL, 0, 0 };
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

		if (!hub_json_is(&doc, changes, HUB_JSON_ARRAY)) {
			out->bad++;
			continue;
		}
		for (int k = hub_json_first(&doc, changes); k >= 0; k = hub_json_after(&doc, k)) {
			ret = parse_change(&c, k, err);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* What WhatsApp sends by link, and whether it takes a caption. */
static const struct {
	enum hub_msg_type type;
	const char *name;
	bool caption;
} send_types[] = {
	{ HUB_MSG_IMAGE, "image", true },       { HUB_MSG_VIDEO, "video", true },
	{ HUB_MSG_DOCUMENT, "document", true }, { HUB_MSG_AUDIO, "audio", false },
};

extern const struct hub_adapter hub_adapter_whatsapp;

/* {"messaging_product":"whatsapp","recipient_type":"individual","to":"<wa_id>",
 * "context":{"message_id":"<wamid>"},"type":"text","text":{"body":"..."}}; media by link:
 * "type":"image","image":{"link":"...","caption":"..."} (a document's also "filename"). */
static int wa_build_send(struct hub_pool *pool, const struct hub_channel *ch,
			 const char *api_version, const struct hub_send_msg *msg,
			 struct hub_send_req *out, struct hub_err *err)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_jw w;
	const char *name = msg->type == HUB_MSG_TEXT ? "text" : NULL;
	bool caption = false;
	int ret;

	for (size_t i = 0; i < HUB_ARRAY_SIZE(send_types); i++) {
		if (send_types[i].type == msg->type) {
			name = send_types[i].name;
			caption = send_types[i].caption;
		}
	}
	if (!name)
		return hub_err_set(err, -EINVAL, "whatsapp: cannot send %s",
				   hub_msg_type_name(msg->type));
	if (msg->type != HUB_MSG_TEXT && !caption && msg->text.len)
		return hub_err_set(err, -EINVAL,
				   "whatsapp: %s carries no caption: send the text apart", name);
	ret = hub_send_msg_check(msg, &hub_adapter_whatsapp, err);
	if (ret < 0)
		return ret;
	hub_jw_init(&w, &b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "messaging_product");
	hub_jw_cstr(&w, "whatsapp");
	hub_jw_key(&w, "recipient_type");
	hub_jw_cstr(&w, "individual");
	hub_jw_key(&w, "to");
	hub_jw_str(&w, msg->recipient);
	if (msg->reply_to.len) {
		hub_jw_key(&w, "context");
		hub_jw_obj_open(&w);
		hub_jw_key(&w, "message_id");
		hub_jw_str(&w, msg->reply_to);
		hub_jw_obj_close(&w);
	}
	hub_jw_key(&w, "type");
	hub_jw_cstr(&w, name);
	hub_jw_key(&w, name);
	hub_jw_obj_open(&w);
	if (msg->type == HUB_MSG_TEXT) {
		hub_jw_key(&w, "body");
		hub_jw_str(&w, msg->text);
	} else {
		hub_jw_key(&w, "link");
		hub_jw_str(&w, msg->media_url);
		if (msg->text.len) {
			hub_jw_key(&w, "caption");
			hub_jw_str(&w, msg->text);
		}
		if (msg->type == HUB_MSG_DOCUMENT && msg->filename.len) {
			hub_jw_key(&w, "filename");
			hub_jw_str(&w, msg->filename);
		}
	}
	hub_jw_obj_close(&w);
	hub_jw_obj_close(&w);
	ret = hub_meta_req(pool, ch, "POST", api_version, ch->account_id, "/messages",
			   hub_buf_str(&b), out, err);
	hub_buf_release(&b);
	return ret;
}

/* Accepted: {"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],
 * "messages":[{"id":"wamid..."}]}. */
static int wa_parse_send_result(struct hub_pool *pool, int http_status,
				struct hub_str retry_after_header, struct hub_str body,
				struct hub_send_result *out)
{
	struct hub_json_doc doc;
	struct hub_str id;
	int msgs;

	hub_meta_send_result(pool, http_status, retry_after_header, body, &doc, out);
	if (out->verdict != HUB_SEND_OK)
		return 0;
	msgs = hub_json_get(&doc, 0, "messages");
	if (hub_json_string(&doc, hub_json_get(&doc, hub_json_first(&doc, msgs), "id"), pool,
			    &id) == 0)
		out->external_id = id;
	return 0;
}

const struct hub_adapter hub_adapter_whatsapp = {
	.name = "whatsapp",
	.kind = HUB_CHANNEL_WHATSAPP,
	.verify = hub_meta_verify,
	.handshake = hub_meta_handshake,
	.parse_webhook = wa_parse,
	.build_send = wa_build_send,
	.parse_send_result = wa_parse_send_result,
	.text_max = 4096,
	.caption_max = 1024,
	.text_unit = HUB_TEXT_UTF16,
	.reply_window_ms = WA_DAY_MS,
	.rate_per_s = 80, /* throughput: 80 messages a second per number by default */
	.pair_interval_ms = 6000, /* pair rate: about one message per 6 s to one user, */
	.pair_burst = 10,         /* after a burst (Meta allows more; error 131056) */
};
