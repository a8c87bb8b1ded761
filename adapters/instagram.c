/* adapters/instagram.c - Instagram Messaging webhooks: Meta's signature and GET handshake
 * (adapters/meta.c), and entry[] x messaging[]/standby[] into normalized events; and the
 * send request (POST /{version}/me/messages) and its answer.
 * Pure: bytes in, events out; knows nothing about HTTP, the database or the User Profile
 * API (the webhook carries no name: sender_profile_name stays empty). */
#include "adapters/adapter.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "adapters/instagram.h"
#include "adapters/meta.h"
#include "lib/json.h"

#define IG_MAX_TOKENS 200000 /* a 4 MiB body of up to 1000 events stays well under */
#define IG_MAX_ID 512 /* IGSIDs and account ids are ~17 digits, mids ~170 bytes */
#define IG_DAY_MS (24 * 3600 * 1000LL)

struct ig_ctx {
	struct hub_pool *pool;
	const struct hub_channel *ch;
	const struct hub_json_doc *doc;
	struct hub_event_list *out;
};

/* A string field or an empty slice. */
static struct hub_str str_at(const struct ig_ctx *c, int obj, const char *key)
{
	struct hub_str s = HUB_STR_NULL;

	if (hub_json_string(c->doc, hub_json_get(c->doc, obj, key), c->pool, &s) < 0)
		return HUB_STR_NULL;
	return s;
}

static bool all_digits(struct hub_str s)
{
	if (!s.len)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
	return true;
}

/* An id: a non-empty string, or an integer number taken as its raw digits (never through
 * a double: account ids exceed 2^53). Empty when absent, not an id, or too long. */
static struct hub_str id_at(const struct ig_ctx *c, int obj, const char *key)
{
	int i = hub_json_get(c->doc, obj, key);
	struct hub_str s = HUB_STR_NULL;

	if (hub_json_is(c->doc, i, HUB_JSON_PRIMITIVE)) {
		s = hub_json_raw(c->doc, i);
		return all_digits(s) && s.len <= IG_MAX_ID ? s : HUB_STR_NULL;
	}
	s = str_at(c, obj, key);
	return s.len <= IG_MAX_ID ? s : HUB_STR_NULL;
}

static bool flag_at(const struct ig_ctx *c, int obj, const char *key)
{
	bool v = false;

	if (hub_json_bool(c->doc, hub_json_get(c->doc, obj, key), &v) < 0)
		return false;
	return v;
}

/* Instagram timestamps are integers of Unix milliseconds; a value that can only be seconds
 * (before 1973 in ms) is scaled. 0 when absent or not a positive integer. */
static int64_t ts_ms(const struct ig_ctx *c, int obj, const char *key)
{
	int64_t v = 0;

	if (hub_json_int64(c->doc, hub_json_get(c->doc, obj, key), &v) < 0 || v <= 0 ||
	    v > 100000000000000LL)
		return 0;
	return v < 100000000000LL ? v * 1000 : v;
}

static struct hub_str concat(struct hub_pool *pool, struct hub_str a, const char *sep,
			     struct hub_str b)
{
	size_t n = strlen(sep);
	char *p = hub_pool_alloc(pool, a.len + n + b.len + 1);

	if (a.len)
		memcpy(p, a.p, a.len);
	memcpy(p + a.len, sep, n);
	if (b.len)
		memcpy(p + a.len + n, b.p, b.len);
	p[a.len + n + b.len] = '\0';
	return (struct hub_str){ p, a.len + n + b.len };
}

/* Attachment types (message.attachments[].type) as the hub's types. Shared posts, reels and
 * story mentions keep their own name in raw_type; their payload.url is the media. */
static const struct {
	const char *name;
	enum hub_msg_type type;
} attachment_types[] = {
	{ "image", HUB_MSG_IMAGE },         { "animated_image", HUB_MSG_IMAGE },
	{ "video", HUB_MSG_VIDEO },         { "audio", HUB_MSG_AUDIO },
	{ "file", HUB_MSG_DOCUMENT },       { "sticker", HUB_MSG_STICKER },
	{ "like_heart", HUB_MSG_STICKER },  { "share", HUB_MSG_IMAGE },
	{ "ig_post", HUB_MSG_IMAGE },       { "story_mention", HUB_MSG_IMAGE },
	{ "ig_reel", HUB_MSG_VIDEO },       { "reel", HUB_MSG_VIDEO },
};

static struct hub_event *push(struct ig_ctx *c, enum hub_event_kind kind)
{
	struct hub_event *ev = hub_event_list_push(c->out, c->pool);

	ev->kind = kind;
	ev->msg.channel_kind = HUB_CHANNEL_INSTAGRAM;
	ev->msg.channel_id = c->ch ? c->ch->id : NULL;
	return ev;
}

/* The fields every event of one messaging[] item shares. */
struct ig_item {
	struct hub_str sender, recipient;
	int64_t ts;
};

static void fill_common(struct hub_inbound_msg *msg, const struct ig_item *it)
{
	msg->sender_external_id = it->sender;
	msg->platform_ts = it->ts;
}

/* One attachment into msg: its type, and payload.url as the media's platform id. */
static void fill_attachment(const struct ig_ctx *c, struct hub_inbound_msg *msg, int att)
{
	int payload = hub_json_get(c->doc, att, "payload");
	struct hub_str type = str_at(c, att, "type");

	msg->type = HUB_MSG_UNSUPPORTED;
	msg->raw_type = type.len ? type : HUB_STR("attachment");
	for (size_t i = 0; i < HUB_ARRAY_SIZE(attachment_types); i++) {
		if (hub_str_eqs(type, attachment_types[i].name)) {
			msg->type = attachment_types[i].type;
			break;
		}
	}
	msg->media.platform_id = str_at(c, payload, "url");
	/* a reel's or a shared post's caption; the customer's own words win (below) */
	msg->media.caption = str_at(c, payload, "title");
	if (!msg->media.platform_id.len && msg->type != HUB_MSG_UNSUPPORTED)
		msg->type = HUB_MSG_UNSUPPORTED; /* nothing to show: keep it, marked */
}

/* message{}: a customer's message (MESSAGE), ours from the app (is_echo: ECHO) or an
 * unsent one (is_deleted: DELETE). Several attachments become several events: the first
 * keeps the mid, the others get "<mid>:<n>" so that each is stored once. */
static int parse_message(struct ig_ctx *c, const struct ig_item *it, int m)
{
	const struct hub_json_doc *doc = c->doc;
	struct hub_str mid = id_at(c, m, "mid");
	bool echo = flag_at(c, m, "is_echo");
	struct hub_event *ev;
	struct hub_inbound_msg *msg;

	if (!mid.len || !hub_json_is(doc, m, HUB_JSON_OBJECT))
		return -EBADMSG;
	if (flag_at(c, m, "is_deleted")) {
		ev = push(c, HUB_EVENT_DELETE);
		fill_common(&ev->msg, it);
		ev->msg.external_id = mid;
		ev->msg.raw_type = HUB_STR("is_deleted");
		return 0;
	}

	struct hub_str text = str_at(c, m, "text");
	int reply_to = hub_json_get(doc, m, "reply_to");
	int story = hub_json_get(doc, reply_to, "story");
	int quick = hub_json_get(doc, m, "quick_reply");
	int atts = hub_json_get(doc, m, "attachments");
	int first = hub_json_first(doc, atts);
	enum hub_event_kind kind = echo ? HUB_EVENT_ECHO : HUB_EVENT_MESSAGE;

	ev = push(c, kind);
	msg = &ev->msg;
	fill_common(msg, it);
	msg->external_id = mid;
	if (echo)
		msg->recipient_external_id = it->recipient;
	msg->text = text;
	msg->type = HUB_MSG_TEXT;
	msg->raw_type = HUB_STR("text");
	if (flag_at(c, m, "is_unsupported")) {
		msg->type = HUB_MSG_UNSUPPORTED;
		msg->raw_type = HUB_STR("is_unsupported");
	} else if (first >= 0 && hub_json_is(doc, atts, HUB_JSON_ARRAY)) {
		fill_attachment(c, msg, first);
		if (text.len)
			msg->media.caption = text;
		else
			msg->text = msg->media.caption;
	} else if (hub_json_is(doc, quick, HUB_JSON_OBJECT)) {
		/* the text is the button's title; the payload only when there is none */
		msg->type = HUB_MSG_INTERACTIVE;
		msg->raw_type = HUB_STR("quick_reply");
		if (!text.len)
			msg->text = str_at(c, quick, "payload");
	} else if (!text.len) {
		msg->type = HUB_MSG_UNSUPPORTED; /* a message we cannot read: shown, marked */
		msg->raw_type = HUB_STR("message");
	}
	if (story >= 0) {
		msg->reply_to_external_id = id_at(c, story, "id");
		msg->raw_type = HUB_STR("story_reply");
	} else {
		msg->reply_to_external_id = id_at(c, reply_to, "mid");
	}
	if (first < 0 || !hub_json_is(doc, atts, HUB_JSON_ARRAY) || msg->type == HUB_MSG_TEXT)
		return 0;

	size_t base = c->out->n - 1; /* push may move the list: index, never a pointer */
	int n = 1;
	for (int a = hub_json_after(doc, first); a >= 0; a = hub_json_after(doc, a), n++) {
		struct hub_event *more = push(c, kind);
		const struct hub_inbound_msg *m0 = &c->out->items[base].msg;
		char num[16];
		int len = snprintf(num, sizeof(num), "%d", n);

		more->msg.sender_external_id = m0->sender_external_id;
		more->msg.recipient_external_id = m0->recipient_external_id;
		more->msg.platform_ts = m0->platform_ts;
		more->msg.reply_to_external_id = m0->reply_to_external_id;
		more->msg.external_id = concat(c->pool, mid, ":",
					       (struct hub_str){ num, (size_t)len });
		fill_attachment(c, &more->msg, a);
		more->msg.text = more->msg.media.caption;
	}
	return 0;
}

/* reaction{mid, action, reaction, emoji}: REACTION on the message mid. Instagram gives the
 * reaction no id of its own: dedupe_key = mid:sender:action:timestamp (PLATFORMS rule 5). */
static int parse_reaction(struct ig_ctx *c, const struct ig_item *it, int r)
{
	struct hub_str mid = id_at(c, r, "mid");
	struct hub_str action = str_at(c, r, "action");
	struct hub_str emoji = str_at(c, r, "emoji");
	struct hub_event *ev;
	char ts[24];
	int len;

	if (!mid.len || (!hub_str_eqs(action, "react") && !hub_str_eqs(action, "unreact")))
		return -EBADMSG;
	ev = push(c, HUB_EVENT_REACTION);
	fill_common(&ev->msg, it);
	ev->msg.type = HUB_MSG_REACTION;
	ev->msg.raw_type = HUB_STR("reaction");
	ev->msg.reply_to_external_id = mid;
	if (hub_str_eqs(action, "react"))
		/* "love", "like" ... when an old client sends no emoji: never read as removed */
		ev->msg.text = emoji.len ? emoji : str_at(c, r, "reaction");
	len = snprintf(ts, sizeof(ts), "%lld", (long long)it->ts);
	ev->msg.dedupe_key = concat(c->pool, concat(c->pool, mid, ":", it->sender), ":", action);
	ev->msg.dedupe_key = concat(c->pool, ev->msg.dedupe_key, ":",
				    (struct hub_str){ ts, (size_t)len });
	return 0;
}

/* message_edit{mid, text, num_edit}: EDIT of mid; dedupe_key = num_edit (rule 5). */
static int parse_edit(struct ig_ctx *c, const struct ig_item *it, int e)
{
	struct hub_str mid = id_at(c, e, "mid");
	struct hub_str num = id_at(c, e, "num_edit");
	struct hub_event *ev;

	if (!mid.len || !num.len || !all_digits(num))
		return -EBADMSG;
	ev = push(c, HUB_EVENT_EDIT);
	fill_common(&ev->msg, it);
	ev->msg.type = HUB_MSG_TEXT;
	ev->msg.raw_type = HUB_STR("message_edit");
	ev->msg.external_id = mid;
	ev->msg.text = str_at(c, e, "text");
	ev->msg.dedupe_key = num;
	return 0;
}

/* postback{mid, title, payload}: an icebreaker or template button, stored as the message
 * mid with the button's title as text. */
static int parse_postback(struct ig_ctx *c, const struct ig_item *it, int p)
{
	struct hub_str mid = id_at(c, p, "mid");
	struct hub_event *ev;

	if (!mid.len)
		return -EBADMSG;
	ev = push(c, HUB_EVENT_MESSAGE);
	fill_common(&ev->msg, it);
	ev->msg.external_id = mid;
	ev->msg.type = HUB_MSG_INTERACTIVE;
	ev->msg.raw_type = HUB_STR("postback");
	ev->msg.text = str_at(c, p, "title");
	if (!ev->msg.text.len)
		ev->msg.text = str_at(c, p, "payload");
	return 0;
}

/* read{mid}: the customer (sender) has seen our message mid. A Messenger-style watermark
 * alone names no message: ignored. */
static int parse_read(struct ig_ctx *c, const struct ig_item *it, int r)
{
	struct hub_str mid = id_at(c, r, "mid");
	struct hub_event *ev;

	if (!mid.len) {
		if (!hub_json_is(c->doc, hub_json_get(c->doc, r, "watermark"), HUB_JSON_PRIMITIVE))
			return -EBADMSG;
		c->out->ignored++;
		return 0;
	}
	ev = push(c, HUB_EVENT_STATUS);
	ev->status.external_id = mid;
	ev->status.recipient = it->sender;
	ev->status.status = HUB_STR("read");
	ev->status.platform_ts = it->ts;
	return 0;
}

/* One messaging[] or standby[] item. */
static int parse_item(struct ig_ctx *c, int obj)
{
	const struct hub_json_doc *doc = c->doc;
	struct ig_item it = { 0 };
	int v;

	if (!hub_json_is(doc, obj, HUB_JSON_OBJECT))
		return -EBADMSG;
	it.sender = id_at(c, hub_json_get(doc, obj, "sender"), "id");
	it.recipient = id_at(c, hub_json_get(doc, obj, "recipient"), "id");
	it.ts = ts_ms(c, obj, "timestamp");
	if ((v = hub_json_get(doc, obj, "message")) >= 0 ||
	    (v = hub_json_get(doc, obj, "reaction")) >= 0 ||
	    (v = hub_json_get(doc, obj, "message_edit")) >= 0 ||
	    (v = hub_json_get(doc, obj, "postback")) >= 0) {
		if (!it.sender.len || !hub_json_is(doc, v, HUB_JSON_OBJECT))
			return -EBADMSG;
	}
	if ((v = hub_json_get(doc, obj, "message")) >= 0)
		return parse_message(c, &it, v);
	if ((v = hub_json_get(doc, obj, "reaction")) >= 0)
		return parse_reaction(c, &it, v);
	if ((v = hub_json_get(doc, obj, "message_edit")) >= 0)
		return parse_edit(c, &it, v);
	if ((v = hub_json_get(doc, obj, "postback")) >= 0)
		return parse_postback(c, &it, v);
	if ((v = hub_json_get(doc, obj, "read")) >= 0) {
		if (!it.sender.len || !hub_json_is(doc, v, HUB_JSON_OBJECT))
			return -EBADMSG;
		return parse_read(c, &it, v);
	}
	/* referral, optin(s), handover events, and whatever Meta adds: valid, not served */
	c->out->ignored++;
	return 0;
}

static int walk(struct ig_ctx *c, int arr)
{
	const struct hub_json_doc *doc = c->doc;

	if (arr < 0)
		return 0;
	if (!hub_json_is(doc, arr, HUB_JSON_ARRAY)) {
		c->out->bad++;
		return 1;
	}
	for (int i = hub_json_first(doc, arr); i >= 0; i = hub_json_after(doc, i))
		if (parse_item(c, i) < 0)
			c->out->bad++;
	return 1;
}

static int ig_parse(struct hub_pool *pool, const struct hub_channel *ch, struct hub_str body,
		    struct hub_event_list *out, struct hub_err *err)
{
	struct hub_json_doc doc;
	struct ig_ctx c = { pool, ch, &doc, out };
	int entries, ret;

	ret = hub_json_parse(pool, body, IG_MAX_TOKENS, &doc, err);
	if (ret < 0)
		return ret;
	if (!hub_json_is(&doc, 0, HUB_JSON_OBJECT))
		return hub_err_set(err, -EBADMSG, "body is not a JSON object");
	if (!hub_str_eqs(str_at(&c, 0, "object"), "instagram")) {
		out->ignored++;
		return 0;
	}
	entries = hub_json_get(&doc, 0, "entry");
	if (!hub_json_is(&doc, entries, HUB_JSON_ARRAY))
		return hub_err_set(err, -EBADMSG, "entry: must be an array");
	/* the account first, for every entry: a body naming another account stores nothing */
	for (int e = hub_json_first(&doc, entries); e >= 0; e = hub_json_after(&doc, e)) {
		struct hub_str account = id_at(&c, e, "id");

		if (ch && account.len && !hub_str_eqs(account, ch->account_id))
			return hub_err_set(err, -EACCES,
					   "entry.id is not this channel's Instagram account");
	}
	for (int e = hub_json_first(&doc, entries); e >= 0; e = hub_json_after(&doc, e)) {
		if (!hub_json_is(&doc, e, HUB_JSON_OBJECT) || !id_at(&c, e, "id").len) {
			out->bad++;
			continue;
		}
		/* standby[]: another app of the account's owns the thread; the message is still
		 * the customer's and the inbox shows it, stored as any other (by mid, once). */
		int served = walk(&c, hub_json_get(&doc, e, "messaging")) +
			     walk(&c, hub_json_get(&doc, e, "standby"));
		if (!served) {
			/* changes[] (comments, mentions ...): valid, not served */
			int changes = hub_json_get(&doc, e, "changes");
			int n = hub_json_is(&doc, changes, HUB_JSON_ARRAY) ?
					doc.tok[changes].size : 0;
			out->ignored += n > 0 ? (size_t)n : 1;
		}
	}
	return 0;
}

/* What Instagram sends by link: attachment.type. */
static const struct {
	enum hub_msg_type type;
	const char *name;
} send_types[] = {
	{ HUB_MSG_IMAGE, "image" }, { HUB_MSG_VIDEO, "video" },
	{ HUB_MSG_AUDIO, "audio" }, { HUB_MSG_DOCUMENT, "file" },
};

extern const struct hub_adapter hub_adapter_instagram;

/* The platform's mid of a quoted message: parse_message names a message's second and
 * later attachments "<mid>:<n>" (mids are base64: no ':'). */
static struct hub_str platform_mid(struct hub_str id)
{
	const char *colon = memrchr(id.p, ':', id.len);

	if (colon && all_digits((struct hub_str){ colon + 1, (size_t)(id.p + id.len - colon - 1) }))
		id.len = (size_t)(colon - id.p);
	return id;
}

/* {"recipient":{"id":"<IGSID>"},"message":{"text":"...","reply_to":{"mid":"..."}}}; media
 * by link: "message":{"attachment":{"type":"image","payload":{"url":"..."}}}, no caption. */
static int ig_build_send(struct hub_pool *pool, const struct hub_channel *ch,
			 const char *api_version, const struct hub_send_msg *msg,
			 struct hub_send_req *out, struct hub_err *err)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_jw w;
	const char *name = NULL;
	int ret;

	for (size_t i = 0; i < HUB_ARRAY_SIZE(send_types); i++)
		if (send_types[i].type == msg->type)
			name = send_types[i].name;
	if (!name && msg->type != HUB_MSG_TEXT)
		return hub_err_set(err, -EINVAL, "instagram: cannot send %s",
				   hub_msg_type_name(msg->type));
	ret = hub_send_msg_check(msg, &hub_adapter_instagram, err);
	if (ret < 0)
		return ret;
	hub_jw_init(&w, &b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "recipient");
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "id");
	hub_jw_str(&w, msg->recipient);
	hub_jw_obj_close(&w);
	hub_jw_key(&w, "message");
	hub_jw_obj_open(&w);
	if (msg->type == HUB_MSG_TEXT) {
		hub_jw_key(&w, "text");
		hub_jw_str(&w, msg->text);
	} else {
		hub_jw_key(&w, "attachment");
		hub_jw_obj_open(&w);
		hub_jw_key(&w, "type");
		hub_jw_cstr(&w, name);
		hub_jw_key(&w, "payload");
		hub_jw_obj_open(&w);
		hub_jw_key(&w, "url");
		hub_jw_str(&w, msg->media_url);
		hub_jw_obj_close(&w);
		hub_jw_obj_close(&w);
	}
	if (msg->reply_to.len) {
		hub_jw_key(&w, "reply_to");
		hub_jw_obj_open(&w);
		hub_jw_key(&w, "mid");
		hub_jw_str(&w, platform_mid(msg->reply_to));
		hub_jw_obj_close(&w);
	}
	hub_jw_obj_close(&w);
	hub_jw_obj_close(&w);
	ret = hub_meta_req(pool, ch, "POST", api_version, "me", "/messages",
			   hub_buf_str(&b), out, err);
	hub_buf_release(&b);
	return ret;
}

/* Accepted: {"recipient_id":"<IGSID>","message_id":"<mid>"}. */
static int ig_parse_send_result(struct hub_pool *pool, int http_status,
				struct hub_str retry_after_header, struct hub_str body,
				struct hub_send_result *out)
{
	struct hub_json_doc doc;
	struct hub_str id;

	hub_meta_send_result(pool, http_status, retry_after_header, body, &doc, out);
	if (out->verdict == HUB_SEND_OK &&
	    hub_json_string(&doc, hub_json_get(&doc, 0, "message_id"), pool, &id) == 0)
		out->external_id = id;
	return 0;
}

int hub_instagram_profile_req(struct hub_pool *pool, const struct hub_channel *ch,
			      const char *api_version, struct hub_str igsid,
			      struct hub_send_req *out, struct hub_err *err)
{
	if (!all_digits(igsid) || igsid.len > 32)
		return hub_err_set(err, -EINVAL, "instagram: a sender id is digits");
	return hub_meta_req(pool, ch, "GET", api_version,
			    hub_pool_strndup(pool, igsid.p, igsid.len), "?fields=name,username",
			    HUB_STR_NULL, out, err);
}

int hub_instagram_parse_profile(struct hub_pool *pool, int http_status,
				struct hub_str retry_after_header, struct hub_str body,
				struct hub_str *name, struct hub_str *username,
				int64_t *retry_after_ms, struct hub_str *why)
{
	struct hub_json_doc doc;
	struct hub_send_result r;

	*name = *username = *why = HUB_STR_NULL;
	*retry_after_ms = 0;
	hub_meta_send_result(pool, http_status, retry_after_header, body, &doc, &r);
	if (r.verdict == HUB_SEND_RETRY) {
		*retry_after_ms = r.retry_after_ms;
		*why = r.error;
		return -EAGAIN;
	}
	if (r.verdict != HUB_SEND_OK || doc.n == 0 || !hub_json_is(&doc, 0, HUB_JSON_OBJECT)) {
		*why = r.verdict == HUB_SEND_OK ? HUB_STR("not a profile") : r.error;
		return -EPERM;
	}
	if (hub_json_string(&doc, hub_json_get(&doc, 0, "name"), pool, name) < 0)
		*name = HUB_STR_NULL;
	if (hub_json_string(&doc, hub_json_get(&doc, 0, "username"), pool, username) < 0)
		*username = HUB_STR_NULL;
	return 0;
}

const struct hub_adapter hub_adapter_instagram = {
	.name = "instagram",
	.kind = HUB_CHANNEL_INSTAGRAM,
	.verify = hub_meta_verify,
	.handshake = hub_meta_handshake,
	.parse_webhook = ig_parse,
	.build_send = ig_build_send,
	.parse_send_result = ig_parse_send_result,
	.text_max = 1000,
	.caption_max = 0,
	.text_unit = HUB_TEXT_BYTES,
	.reply_window_ms = IG_DAY_MS,
	.rate_per_s = 100, /* the Send API: 100 calls a second per professional account */
};
