/* adapters/telegram.c - Telegram Bot API webhooks: the secret-token header and one Update
 * per POST (message, edited_message, message_reaction) into normalized events; the same
 * Updates from getUpdates (long polling); the send request (POST /bot<token>/sendMessage
 * ...) and its answer. Pure: bytes in, events out; knows nothing about HTTP or the database;
 * the bot token only goes into request paths. */
#include "adapters/telegram.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/json.h"

/* One Update: a message with a quoted message and a few hundred entities fits easily. */
#define TG_MAX_TOKENS 50000
/* getUpdates returns at most 100 Updates (the tokens allocated follow the answer's size,
 * which the HTTP client bounds). */
#define TG_POLL_MAX_TOKENS (100 * TG_MAX_TOKENS)

/* setWebhook secret_token comes back as X-Telegram-Bot-Api-Secret-Token on every POST. */
static int tg_verify(const struct hub_channel *ch, const struct hub_webhook *wh)
{
	struct hub_str token = wh->header(wh->req, "X-Telegram-Bot-Api-Secret-Token");

	if (!ch->app_secret || !ch->app_secret[0] || !token.p || !token.len)
		return -EPERM;
	return hub_secret_equal(token, ch->app_secret) ? 0 : -EPERM;
}

/* setWebhook registers the URL: there is no GET handshake. */
static int tg_handshake(const struct hub_channel *ch, const struct hub_webhook *wh,
			struct hub_str *reply)
{
	(void)ch;
	(void)wh;
	(void)reply;
	return -ENOTSUP;
}

struct tg_ctx {
	struct hub_pool *pool;
	const struct hub_channel *ch;
	const struct hub_json_doc *doc;
	struct hub_event_list *out;
	struct hub_str update_id;
};

/* A string field or an empty slice. */
static struct hub_str str_at(const struct tg_ctx *c, int obj, const char *key)
{
	struct hub_str s = HUB_STR_NULL;

	if (hub_json_string(c->doc, hub_json_get(c->doc, obj, key), c->pool, &s) < 0)
		return HUB_STR_NULL;
	return s;
}

/* An integer field as its raw digits (ids never pass through a double), or empty. */
static struct hub_str int_at(const struct tg_ctx *c, int obj, const char *key)
{
	int i = hub_json_get(c->doc, obj, key);
	int64_t v;

	if (hub_json_int64(c->doc, i, &v) < 0)
		return HUB_STR_NULL;
	return hub_json_raw(c->doc, i);
}

/* Telegram dates are integers of Unix seconds; 0 when missing or absurd. */
/* A file's file_size, 0 when absent or not a positive integer. */
static int64_t size_at(const struct tg_ctx *c, int obj)
{
	int64_t v;

	if (hub_json_int64(c->doc, hub_json_get(c->doc, obj, "file_size"), &v) < 0 || v < 0)
		return 0;
	return v;
}

static int64_t ms_at(const struct tg_ctx *c, int obj, const char *key)
{
	int64_t v;

	if (hub_json_int64(c->doc, hub_json_get(c->doc, obj, key), &v) < 0 || v <= 0 ||
	    v > 100000000000LL)
		return 0;
	return v * 1000;
}

static struct hub_str join(struct hub_pool *pool, struct hub_str a, const char *sep,
			   struct hub_str b)
{
	size_t seplen = strlen(sep);
	char *p = hub_pool_alloc(pool, a.len + seplen + b.len + 1);

	memcpy(p, a.p, a.len);
	memcpy(p + a.len, sep, seplen);
	if (b.len)
		memcpy(p + a.len + seplen, b.p, b.len);
	return (struct hub_str){ p, a.len + seplen + b.len };
}

/* Telegram message ids are per chat: "<chat.id>:<message_id>" is unique per bot. */
static struct hub_str message_key(const struct tg_ctx *c, struct hub_str chat_id,
				  struct hub_str message_id)
{
	return join(c->pool, chat_id, ":", message_id);
}

/* Only one-to-one chats with the bot are served; groups, supergroups and channels are not.
 * Old payloads carry no chat.type: private chats are the ones with positive ids. */
static bool chat_is_private(const struct tg_ctx *c, int chat)
{
	struct hub_str type = str_at(c, chat, "type");
	int64_t id;

	if (type.p)
		return hub_str_eqs(type, "private");
	return hub_json_int64(c->doc, hub_json_get(c->doc, chat, "id"), &id) == 0 && id > 0;
}

/* from.id, "first_name last_name", username. -EBADMSG without an id. */
static int fill_sender(const struct tg_ctx *c, int user, struct hub_inbound_msg *msg)
{
	struct hub_str first = str_at(c, user, "first_name");
	struct hub_str last = str_at(c, user, "last_name");

	msg->sender_external_id = int_at(c, user, "id");
	if (!msg->sender_external_id.len)
		return -EBADMSG;
	if (first.len && last.len)
		msg->sender_profile_name = join(c->pool, first, " ", last);
	else
		msg->sender_profile_name = first.len ? first : last;
	msg->sender_username = str_at(c, user, "username");
	return 0;
}

/* Keys every Message may carry besides its content: the content is the first other key. */
static const char *const common_fields[] = {
	"message_id", "message_thread_id", "from", "sender_chat", "sender_boost_count",
	"sender_business_bot", "date", "business_connection_id", "chat", "forward_origin",
	"forward_from", "forward_from_chat", "forward_from_message_id", "forward_signature",
	"forward_sender_name", "forward_date", "is_topic_message", "is_automatic_forward",
	"reply_to_message", "external_reply", "quote", "reply_to_story",
	"reply_to_checklist_task_id",
	"via_bot", "edit_date", "has_protected_content", "is_from_offline", "is_paid_post",
	"media_group_id", "author_signature", "paid_star_count", "entities", "caption",
	"caption_entities", "link_preview_options", "suggested_post_info", "effect_id",
	"show_caption_above_media", "has_media_spoiler", "reply_markup",
};

static struct hub_str content_key(const struct tg_ctx *c, int m)
{
	for (int k = hub_json_first(c->doc, m); k >= 0; k = hub_json_after(c->doc, k)) {
		struct hub_str key = hub_json_raw(c->doc, k);
		bool common = false;

		for (size_t i = 0; i < HUB_ARRAY_SIZE(common_fields) && !common; i++)
			common = hub_str_eqs(key, common_fields[i]);
		if (!common)
			return key;
	}
	return HUB_STR_NULL;
}

static const struct {
	const char *name;
	enum hub_msg_type type;
} media_types[] = {
	/* animation first: Telegram also sets document on animations */
	{ "animation", HUB_MSG_VIDEO }, { "voice", HUB_MSG_AUDIO },
	{ "audio", HUB_MSG_AUDIO },     { "video", HUB_MSG_VIDEO },
	{ "video_note", HUB_MSG_VIDEO }, { "document", HUB_MSG_DOCUMENT },
	{ "sticker", HUB_MSG_STICKER },
};

/* The largest PhotoSize of message.photo (sizes come smallest first; trust pixels). */
static int largest_photo(const struct tg_ctx *c, int sizes)
{
	int best = -1;
	int64_t best_area = -1;

	for (int s = hub_json_first(c->doc, sizes); s >= 0; s = hub_json_after(c->doc, s)) {
		int64_t w = 0, h = 0;

		if (hub_json_int64(c->doc, hub_json_get(c->doc, s, "width"), &w) < 0 ||
		    hub_json_int64(c->doc, hub_json_get(c->doc, s, "height"), &h) < 0 || w < 0 ||
		    h < 0 || w > 1000000 || h > 1000000)
			w = h = 0;
		if (w * h >= best_area && str_at(c, s, "file_id").len) {
			best = s;
			best_area = w * h;
		}
	}
	return best;
}

static int location_at(const struct tg_ctx *c, int loc, struct hub_inbound_msg *msg)
{
	if (hub_json_double(c->doc, hub_json_get(c->doc, loc, "latitude"), &msg->location.lat) <
		    0 ||
	    hub_json_double(c->doc, hub_json_get(c->doc, loc, "longitude"),
			    &msg->location.lon) < 0)
		return -EBADMSG;
	msg->location.present = true;
	return 0;
}

/* The content of a Message: type, text or caption, media, location, contact. */
static int parse_content(const struct tg_ctx *c, int m, struct hub_inbound_msg *msg)
{
	const struct hub_json_doc *doc = c->doc;
	struct hub_str caption = str_at(c, m, "caption");
	int body;

	if (hub_json_get(doc, m, "text") >= 0) {
		msg->type = HUB_MSG_TEXT;
		msg->raw_type = HUB_STR("text");
		msg->text = str_at(c, m, "text");
		return 0;
	}
	body = hub_json_get(doc, m, "photo");
	if (body >= 0) {
		int best = largest_photo(c, body);
		if (best < 0)
			return -EBADMSG;
		msg->type = HUB_MSG_IMAGE;
		msg->raw_type = HUB_STR("photo");
		msg->media.platform_id = str_at(c, best, "file_id");
		msg->media.mime = HUB_STR("image/jpeg"); /* Telegram re-encodes photos as JPEG */
		msg->media.size = size_at(c, best);
		msg->media.caption = caption;
		msg->text = caption;
		return 0;
	}
	for (size_t i = 0; i < HUB_ARRAY_SIZE(media_types); i++) {
		body = hub_json_get(doc, m, media_types[i].name);
		if (body < 0)
			continue;
		msg->type = media_types[i].type;
		msg->raw_type = hub_str_from(media_types[i].name);
		msg->media.platform_id = str_at(c, body, "file_id");
		if (!msg->media.platform_id.len)
			return -EBADMSG;
		msg->media.mime = str_at(c, body, "mime_type");
		msg->media.filename = str_at(c, body, "file_name");
		msg->media.size = size_at(c, body);
		msg->media.caption = caption;
		msg->text = caption;
		if (msg->type == HUB_MSG_STICKER)
			msg->text = str_at(c, body, "emoji");
		return 0;
	}
	body = hub_json_get(doc, m, "venue");
	if (body >= 0) {
		msg->type = HUB_MSG_LOCATION;
		msg->raw_type = HUB_STR("venue");
		msg->location.name = str_at(c, body, "title");
		msg->location.address = str_at(c, body, "address");
		msg->text = msg->location.name;
		return location_at(c, hub_json_get(doc, body, "location"), msg);
	}
	body = hub_json_get(doc, m, "location");
	if (body >= 0) {
		msg->type = HUB_MSG_LOCATION;
		msg->raw_type = HUB_STR("location");
		return location_at(c, body, msg);
	}
	body = hub_json_get(doc, m, "contact");
	if (body >= 0) {
		struct hub_str first = str_at(c, body, "first_name");
		struct hub_str last = str_at(c, body, "last_name");

		msg->type = HUB_MSG_CONTACT;
		msg->raw_type = HUB_STR("contact");
		msg->contact.phone = str_at(c, body, "phone_number");
		if (!msg->contact.phone.len)
			return -EBADMSG;
		msg->contact.name = first.len && last.len ? join(c->pool, first, " ", last)
							 : first.len ? first : last;
		msg->contact.user_id = int_at(c, body, "user_id");
		/* The sender shared their own number: that is the sender's phone. */
		if (msg->contact.user_id.len &&
		    hub_str_eq(msg->contact.user_id, msg->sender_external_id) &&
		    hub_phone_normalize(c->pool, msg->contact.phone, &msg->sender_phone) < 0)
			msg->sender_phone = HUB_STR_NULL;
		return 0;
	}
	msg->type = HUB_MSG_UNSUPPORTED;
	msg->raw_type = content_key(c, m);
	msg->text = caption;
	return 0;
}

/* message or edited_message: MESSAGE or EDIT of a private chat. */
static int parse_message(struct tg_ctx *c, int m, enum hub_event_kind kind)
{
	const struct hub_json_doc *doc = c->doc;
	struct hub_inbound_msg msg = { 0 };
	struct hub_event *ev;
	int chat = hub_json_get(doc, m, "chat");
	struct hub_str chat_id = int_at(c, chat, "id");
	struct hub_str message_id = int_at(c, m, "message_id");
	int reply;

	if (!hub_json_is(doc, m, HUB_JSON_OBJECT) || !chat_id.len || !message_id.len)
		return -EBADMSG;
	if (!chat_is_private(c, chat)) {
		c->out->ignored++;
		return 0;
	}
	msg.channel_kind = HUB_CHANNEL_TELEGRAM;
	msg.channel_id = c->ch ? c->ch->id : NULL;
	msg.update_id = c->update_id;
	msg.external_id = message_key(c, chat_id, message_id);
	if (fill_sender(c, hub_json_get(doc, m, "from"), &msg) < 0)
		return -EBADMSG;
	msg.platform_ts = ms_at(c, m, "date");
	if (!msg.platform_ts)
		return -EBADMSG;
	if (kind == HUB_EVENT_EDIT) {
		/* An edit is unique by its date; its time is when it was made. */
		msg.dedupe_key = int_at(c, m, "edit_date");
		msg.platform_ts = ms_at(c, m, "edit_date");
		if (!msg.dedupe_key.len || !msg.platform_ts)
			return -EBADMSG;
	}
	reply = hub_json_get(doc, m, "reply_to_message");
	if (reply >= 0) {
		struct hub_str reply_chat = int_at(c, hub_json_get(doc, reply, "chat"), "id");
		struct hub_str reply_id = int_at(c, reply, "message_id");

		if (reply_id.len)
			msg.reply_to_external_id =
				message_key(c, reply_chat.len ? reply_chat : chat_id, reply_id);
	}
	if (parse_content(c, m, &msg) < 0)
		return -EBADMSG;
	ev = hub_event_list_push(c->out, c->pool);
	ev->kind = kind;
	ev->msg = msg;
	return 0;
}

/* message_reaction: the user's reactions to a message changed; new_reaction empty means
 * removed. No id of its own: unique by (user, date, emoji). */
static int parse_reaction(struct tg_ctx *c, int r)
{
	const struct hub_json_doc *doc = c->doc;
	struct hub_inbound_msg msg = { 0 };
	struct hub_event *ev;
	int chat = hub_json_get(doc, r, "chat");
	struct hub_str chat_id = int_at(c, chat, "id");
	struct hub_str message_id = int_at(c, r, "message_id");
	struct hub_str date = int_at(c, r, "date");
	int first;

	if (!hub_json_is(doc, r, HUB_JSON_OBJECT) || !chat_id.len || !message_id.len)
		return -EBADMSG;
	if (!chat_is_private(c, chat)) {
		c->out->ignored++;
		return 0;
	}
	msg.channel_kind = HUB_CHANNEL_TELEGRAM;
	msg.channel_id = c->ch ? c->ch->id : NULL;
	msg.update_id = c->update_id;
	msg.type = HUB_MSG_REACTION;
	msg.raw_type = HUB_STR("message_reaction");
	msg.reply_to_external_id = message_key(c, chat_id, message_id);
	if (fill_sender(c, hub_json_get(doc, r, "user"), &msg) < 0)
		return -EBADMSG;
	msg.platform_ts = ms_at(c, r, "date");
	if (!msg.platform_ts)
		return -EBADMSG;
	first = hub_json_first(doc, hub_json_get(doc, r, "new_reaction"));
	if (first >= 0) {
		struct hub_str type = str_at(c, first, "type");

		if (hub_str_eqs(type, "emoji"))
			msg.text = str_at(c, first, "emoji");
		else if (hub_str_eqs(type, "custom_emoji"))
			msg.text = str_at(c, first, "custom_emoji_id");
		else
			msg.text = type; /* "paid": a star */
		if (!msg.text.len)
			return -EBADMSG;
	}
	msg.dedupe_key = join(c->pool, join(c->pool, msg.sender_external_id, ":", date), ":",
			      msg.text);
	ev = hub_event_list_push(c->out, c->pool);
	ev->kind = HUB_EVENT_REACTION;
	ev->msg = msg;
	return 0;
}

/* One Update: update_id and at most one kind of payload, into c->out. -EBADMSG without a
 * valid update_id. */
static int parse_update(struct tg_ctx *c, int u)
{
	const struct hub_json_doc *doc = c->doc;
	bool found = false;
	int ret;

	c->update_id = int_at(c, u, "update_id");
	if (!c->update_id.len || c->update_id.p[0] == '-')
		return -EBADMSG;
	for (int k = hub_json_first(doc, u); k >= 0; k = hub_json_after(doc, k)) {
		struct hub_str key = hub_json_raw(doc, k);

		if (hub_str_eqs(key, "update_id"))
			continue;
		found = true;
		ret = 0;
		if (hub_str_eqs(key, "message"))
			ret = parse_message(c, k + 1, HUB_EVENT_MESSAGE);
		else if (hub_str_eqs(key, "edited_message"))
			ret = parse_message(c, k + 1, HUB_EVENT_EDIT);
		else if (hub_str_eqs(key, "message_reaction"))
			ret = parse_reaction(c, k + 1);
		else
			c->out->ignored++; /* channel posts, callbacks, member updates ... */
		if (ret < 0)
			c->out->bad++;
	}
	if (!found)
		c->out->ignored++;
	return 0;
}

/* The body of a webhook is one Update. The payload names no bot, so there is no account to
 * check: the secret token is the check. */
static int tg_parse(struct hub_pool *pool, const struct hub_channel *ch, struct hub_str body,
		    struct hub_event_list *out, struct hub_err *err)
{
	struct hub_json_doc doc;
	struct tg_ctx c = { pool, ch, &doc, out, HUB_STR_NULL };
	int ret;

	ret = hub_json_parse(pool, body, TG_MAX_TOKENS, &doc, err);
	if (ret < 0)
		return ret;
	if (!hub_json_is(&doc, 0, HUB_JSON_OBJECT))
		return hub_err_set(err, -EBADMSG, "body is not a JSON object");
	if (parse_update(&c, 0) < 0)
		return hub_err_set(err, -EBADMSG, "update_id: must be a non-negative integer");
	return 0;
}

int hub_telegram_parse_updates(struct hub_pool *pool, const struct hub_channel *ch,
			       struct hub_str body, struct hub_event_list *out,
			       int64_t *next_offset, struct hub_err *err)
{
	struct hub_json_doc doc;
	struct tg_ctx c = { pool, ch, &doc, out, HUB_STR_NULL };
	bool ok = false;
	int64_t id;
	int ret, result;

	ret = hub_json_parse(pool, body, TG_POLL_MAX_TOKENS, &doc, err);
	if (ret < 0)
		return ret;
	if (hub_json_bool(&doc, hub_json_get(&doc, 0, "ok"), &ok) < 0 || !ok) {
		struct hub_str why = str_at(&c, 0, "description");

		return hub_err_set(err, -EBADMSG, "getUpdates: %.*s",
				   HUB_STR_FMT(why.len ? why : HUB_STR("the answer is not ok")));
	}
	result = hub_json_get(&doc, 0, "result");
	if (!hub_json_is(&doc, result, HUB_JSON_ARRAY))
		return hub_err_set(err, -EBADMSG, "getUpdates: result: must be an array");
	for (int u = hub_json_first(&doc, result); u >= 0; u = hub_json_after(&doc, u)) {
		if (parse_update(&c, u) < 0) {
			out->bad++;
			continue;
		}
		if (hub_json_int64(&doc, hub_json_get(&doc, u, "update_id"), &id) == 0 &&
		    id >= *next_offset && id < INT64_MAX)
			*next_offset = id + 1;
	}
	return 0;
}

/* A bot token as BotFather issues it ("123456:AA..."): characters a path carries as is. */
static bool bot_token(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || *s == ':' || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* POST /bot<token>/<method> with the JSON body, from pool. */
static int bot_req(struct hub_pool *pool, const struct hub_channel *ch, const char *method,
		   const struct hub_buf *body, struct hub_send_req *out, struct hub_err *err)
{
	struct hub_buf b = HUB_BUF_INIT;

	if (!bot_token(ch->access_token))
		return hub_err_set(err, -EINVAL, "channel %s: no usable bot token", ch->id);
	hub_buf_addf(&b, "/bot%s/%s", ch->access_token, method);
	memset(out, 0, sizeof(*out));
	out->method = "POST";
	out->path = hub_pool_strcopy(pool, hub_buf_str(&b));
	out->content_type = HUB_STR("application/json");
	out->body = hub_pool_strcopy(pool, hub_buf_str(body));
	hub_buf_release(&b);
	return 0;
}

/* "allowed_updates": what parse_update serves (reactions come only when asked for). */
static void allowed_updates(struct hub_jw *w)
{
	hub_jw_key(w, "allowed_updates");
	hub_jw_arr_open(w);
	hub_jw_cstr(w, "message");
	hub_jw_cstr(w, "edited_message");
	hub_jw_cstr(w, "message_reaction");
	hub_jw_arr_close(w);
}

int hub_telegram_poll_req(struct hub_pool *pool, const struct hub_channel *ch, int64_t offset,
			  int timeout_s, struct hub_send_req *out, struct hub_err *err)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_jw w;
	int ret;

	hub_jw_init(&w, &b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "offset");
	hub_jw_int(&w, offset);
	hub_jw_key(&w, "timeout");
	hub_jw_int(&w, timeout_s);
	allowed_updates(&w);
	hub_jw_obj_close(&w);
	ret = bot_req(pool, ch, "getUpdates", &b, out, err);
	hub_buf_release(&b);
	return ret;
}

int hub_telegram_webhook_req(struct hub_pool *pool, const struct hub_channel *ch,
			     struct hub_str url, struct hub_send_req *out, struct hub_err *err)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_jw w;
	int ret;

	if (!hub_str_startswith(url, "https://"))
		return hub_err_set(err, -EINVAL, "channel %s: a webhook URL must be https://",
				   ch->id);
	hub_jw_init(&w, &b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "url");
	hub_jw_str(&w, url);
	hub_jw_key(&w, "secret_token");
	hub_jw_cstr(&w, ch->app_secret);
	allowed_updates(&w);
	hub_jw_obj_close(&w);
	ret = bot_req(pool, ch, "setWebhook", &b, out, err);
	hub_buf_release(&b);
	return ret;
}

/* An integer of the int64 range written as digits (no leading zero, an optional '-'). */
static bool int64_of(struct hub_str s, int64_t *out)
{
	char tmp[24];
	char *end;
	size_t neg = s.len && s.p[0] == '-';

	if (s.len <= neg || s.len >= sizeof(tmp) || (s.p[neg] == '0' && s.len > neg + 1))
		return false;
	for (size_t i = neg; i < s.len; i++)
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
	memcpy(tmp, s.p, s.len);
	tmp[s.len] = '\0';
	errno = 0;
	*out = strtoll(tmp, &end, 10);
	return errno == 0;
}

/* The Bot API method of each type and the field that carries the text or the media URL. */
static const struct {
	enum hub_msg_type type;
	const char *method, *field;
} send_methods[] = {
	{ HUB_MSG_TEXT, "sendMessage", "text" },   { HUB_MSG_IMAGE, "sendPhoto", "photo" },
	{ HUB_MSG_AUDIO, "sendAudio", "audio" },   { HUB_MSG_VIDEO, "sendVideo", "video" },
	{ HUB_MSG_DOCUMENT, "sendDocument", "document" },
};

extern const struct hub_adapter hub_adapter_telegram;

/* {"chat_id":23,"text":"...","reply_parameters":{"message_id":1,
 * "allow_sending_without_reply":true}}; media by URL:
 * sendPhoto {"chat_id":23,"photo":"<url>","caption":"..."} ... chat_id is a number when the
 * recipient is an integer (ids may be negative and exceed 32 bits), else a string. reply_to
 * is a message's external_id, "<chat.id>:<message_id>", in the recipient's chat. */
static int tg_build_send(struct hub_pool *pool, const struct hub_channel *ch,
			 const char *api_version, const struct hub_send_msg *msg,
			 struct hub_send_req *out, struct hub_err *err)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_jw w;
	const char *method = NULL, *field = NULL;
	int64_t chat_id = 0, reply_id = 0;
	int ret;

	(void)api_version;
	for (size_t i = 0; i < HUB_ARRAY_SIZE(send_methods); i++) {
		if (send_methods[i].type == msg->type) {
			method = send_methods[i].method;
			field = send_methods[i].field;
		}
	}
	if (!method)
		return hub_err_set(err, -EINVAL, "telegram: cannot send %s",
				   hub_msg_type_name(msg->type));
	ret = hub_send_msg_check(msg, &hub_adapter_telegram, err);
	if (ret < 0)
		return ret;
	if (msg->reply_to.len) {
		const char *colon = memrchr(msg->reply_to.p, ':', msg->reply_to.len);
		struct hub_str chat = HUB_STR_NULL, id = msg->reply_to;

		if (colon) {
			chat = (struct hub_str){ id.p, (size_t)(colon - id.p) };
			id = (struct hub_str){ colon + 1, (size_t)(id.p + id.len - colon - 1) };
		}
		if (!int64_of(id, &reply_id) || reply_id <= 0 ||
		    (colon && !hub_str_eq(chat, msg->recipient)))
			return hub_err_set(err, -EINVAL, "telegram: reply_to is no message "
					   "of the recipient's chat");
	}
	hub_jw_init(&w, &b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "chat_id");
	if (int64_of(msg->recipient, &chat_id))
		hub_jw_int(&w, chat_id);
	else
		hub_jw_str(&w, msg->recipient);
	hub_jw_key(&w, field);
	hub_jw_str(&w, msg->type == HUB_MSG_TEXT ? msg->text : msg->media_url);
	if (msg->type != HUB_MSG_TEXT && msg->text.len) {
		hub_jw_key(&w, "caption");
		hub_jw_str(&w, msg->text);
	}
	if (reply_id) {
		hub_jw_key(&w, "reply_parameters");
		hub_jw_obj_open(&w);
		hub_jw_key(&w, "message_id");
		hub_jw_int(&w, reply_id);
		/* a quote the customer deleted meanwhile: the answer still goes, unquoted */
		hub_jw_key(&w, "allow_sending_without_reply");
		hub_jw_bool(&w, true);
		hub_jw_obj_close(&w);
	}
	hub_jw_obj_close(&w);
	ret = bot_req(pool, ch, method, &b, out, err);
	hub_buf_release(&b);
	return ret;
}

/* Accepted: {"ok":true,"result":Message}: external_id "<chat.id>:<message_id>", as the
 * webhooks name it. Refused: {"ok":false,"error_code":403,"description":"Forbidden: bot was
 * blocked by the user","parameters":{"retry_after":S}}: error_code decides as an HTTP status
 * would (401 TOKEN, 429 RETRY, other 4xx PERMANENT); the wait from parameters.retry_after,
 * else from the header. */
static int tg_parse_send_result(struct hub_pool *pool, int http_status,
				struct hub_str retry_after_header, struct hub_str body,
				struct hub_send_result *out)
{
	struct hub_json_doc doc;
	struct tg_ctx c = { pool, NULL, &doc, NULL, HUB_STR_NULL };
	struct hub_str why;
	int64_t code, wait;
	int result;

	if (hub_json_parse(pool, body, TG_MAX_TOKENS, &doc, NULL) < 0) {
		/* not JSON (a proxy's error page): the status decides */
		hub_send_result_from_status(out, pool, http_status, retry_after_header);
		return 0;
	}
	/* the body's error_code refines a refusal; it never turns one into a success */
	if ((http_status >= 200 && http_status < 300) ||
	    hub_json_int64(&doc, hub_json_get(&doc, 0, "error_code"), &code) < 0 || code < 400 ||
	    code > 599)
		code = http_status;
	hub_send_result_from_status(out, pool, (int)code, retry_after_header);
	if (out->verdict == HUB_SEND_OK) {
		struct hub_str chat, id;

		result = hub_json_get(&doc, 0, "result");
		chat = int_at(&c, hub_json_get(&doc, result, "chat"), "id");
		id = int_at(&c, result, "message_id");
		if (chat.len && id.len)
			out->external_id = message_key(&c, chat, id);
		return 0;
	}
	if (hub_json_int64(&doc, hub_json_path(&doc, 0, "parameters", "retry_after", NULL),
			   &wait) == 0 && wait > 0 && wait < 1000000000)
		out->retry_after_ms = wait * 1000;
	why = str_at(&c, 0, "description");
	if (why.len)
		hub_send_result_set_error(out, pool, out->error_code, why);
	return 0;
}

const struct hub_adapter hub_adapter_telegram = {
	.name = "telegram",
	.kind = HUB_CHANNEL_TELEGRAM,
	.verify = tg_verify,
	.handshake = tg_handshake,
	.parse_webhook = tg_parse,
	.build_send = tg_build_send,
	.parse_send_result = tg_parse_send_result,
	.text_max = 4096,
	.caption_max = 1024,
	.text_unit = HUB_TEXT_UTF16,
	.reply_window_ms = 0,
	.rate_per_s = 30, /* about 30 messages a second per bot */
	.pair_interval_ms = 1000, /* about one a second in one chat, short bursts allowed */
	.pair_burst = 3,
};
