/* adapters/adapter.c - the adapter registry and what every adapter shares: the event list,
 * names, the JSON form of an event, phone normalization. Pure. */
#include "adapters/adapter.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/json.h"

extern const struct hub_adapter hub_adapter_whatsapp;
extern const struct hub_adapter hub_adapter_telegram;
extern const struct hub_adapter hub_adapter_instagram;

static const struct hub_adapter *const adapters[] = {
	&hub_adapter_whatsapp,
	&hub_adapter_telegram,
	&hub_adapter_instagram,
};

const struct hub_adapter *hub_adapter_find(const char *name)
{
	for (size_t i = 0; i < HUB_ARRAY_SIZE(adapters); i++)
		if (strcmp(adapters[i]->name, name) == 0)
			return adapters[i];
	return NULL;
}

const struct hub_adapter *hub_adapter_for(enum hub_channel_kind kind)
{
	for (size_t i = 0; i < HUB_ARRAY_SIZE(adapters); i++)
		if (adapters[i]->kind == kind)
			return adapters[i];
	return NULL;
}

struct hub_event *hub_event_list_push(struct hub_event_list *list, struct hub_pool *pool)
{
	if (list->n == list->cap)
		list->items = hub_pool_grow(pool, list->items, &list->cap, 8,
					    sizeof(*list->items));
	return &list->items[list->n++];
}

const char *hub_event_kind_name(enum hub_event_kind kind)
{
	static const char *const names[] = {
		[HUB_EVENT_MESSAGE] = "message", [HUB_EVENT_STATUS] = "status",
		[HUB_EVENT_EDIT] = "edit",       [HUB_EVENT_DELETE] = "delete",
		[HUB_EVENT_REACTION] = "reaction", [HUB_EVENT_ECHO] = "echo",
	};
	if (kind < HUB_EVENT_MESSAGE || kind > HUB_EVENT_ECHO)
		return "?";
	return names[kind];
}

const char *hub_msg_type_name(enum hub_msg_type type)
{
	static const char *const names[] = {
		[HUB_MSG_TEXT] = "text",         [HUB_MSG_IMAGE] = "image",
		[HUB_MSG_AUDIO] = "audio",       [HUB_MSG_VIDEO] = "video",
		[HUB_MSG_DOCUMENT] = "document", [HUB_MSG_STICKER] = "sticker",
		[HUB_MSG_LOCATION] = "location", [HUB_MSG_CONTACT] = "contact",
		[HUB_MSG_REACTION] = "reaction", [HUB_MSG_INTERACTIVE] = "interactive",
		[HUB_MSG_UNSUPPORTED] = "unsupported",
	};
	if (type < HUB_MSG_TEXT || type > HUB_MSG_UNSUPPORTED)
		return "unsupported";
	return names[type];
}

static void jw_str_or_null(struct hub_jw *jw, const char *key, struct hub_str s)
{
	hub_jw_key(jw, key);
	if (s.p && s.len)
		hub_jw_str(jw, s);
	else
		hub_jw_null(jw);
}

void hub_event_to_json(const struct hub_event *ev, struct hub_buf *out)
{
	struct hub_jw jw;

	hub_jw_init(&jw, out);
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "kind");
	hub_jw_cstr(&jw, hub_event_kind_name(ev->kind));
	if (ev->kind == HUB_EVENT_STATUS) {
		const struct hub_status_update *st = &ev->status;
		jw_str_or_null(&jw, "external_id", st->external_id);
		jw_str_or_null(&jw, "recipient", st->recipient);
		jw_str_or_null(&jw, "status", st->status);
		hub_jw_key(&jw, "platform_ts");
		hub_jw_int(&jw, st->platform_ts);
		jw_str_or_null(&jw, "error", st->error);
		hub_jw_obj_close(&jw);
		return;
	}
	const struct hub_inbound_msg *m = &ev->msg;
	hub_jw_key(&jw, "channel_kind");
	hub_jw_cstr(&jw, hub_channel_kind_name(m->channel_kind));
	hub_jw_key(&jw, "channel_id");
	hub_jw_cstr(&jw, m->channel_id);
	jw_str_or_null(&jw, "external_id", m->external_id);
	jw_str_or_null(&jw, "sender_external_id", m->sender_external_id);
	jw_str_or_null(&jw, "sender_phone", m->sender_phone);
	jw_str_or_null(&jw, "sender_profile_name", m->sender_profile_name);
	jw_str_or_null(&jw, "sender_username", m->sender_username);
	hub_jw_key(&jw, "platform_ts");
	hub_jw_int(&jw, m->platform_ts);
	if (ev->kind != HUB_EVENT_DELETE) { /* a deletion names a message, it has no type */
		hub_jw_key(&jw, "type");
		hub_jw_cstr(&jw, hub_msg_type_name(m->type));
	}
	jw_str_or_null(&jw, "text", m->text);
	if (m->media.platform_id.len) {
		hub_jw_key(&jw, "media");
		hub_jw_obj_open(&jw);
		jw_str_or_null(&jw, "platform_id", m->media.platform_id);
		jw_str_or_null(&jw, "mime", m->media.mime);
		jw_str_or_null(&jw, "caption", m->media.caption);
		jw_str_or_null(&jw, "filename", m->media.filename);
		if (m->media.size > 0) {
			hub_jw_key(&jw, "size");
			hub_jw_int(&jw, m->media.size);
		}
		hub_jw_obj_close(&jw);
	}
	if (m->location.present) {
		hub_jw_key(&jw, "location");
		hub_jw_obj_open(&jw);
		hub_jw_key(&jw, "lat");
		hub_jw_double(&jw, m->location.lat);
		hub_jw_key(&jw, "lon");
		hub_jw_double(&jw, m->location.lon);
		jw_str_or_null(&jw, "name", m->location.name);
		jw_str_or_null(&jw, "address", m->location.address);
		hub_jw_obj_close(&jw);
	}
	if (m->contact.name.len || m->contact.phone.len || m->contact.user_id.len) {
		hub_jw_key(&jw, "contact");
		hub_jw_obj_open(&jw);
		jw_str_or_null(&jw, "name", m->contact.name);
		jw_str_or_null(&jw, "phone", m->contact.phone);
		jw_str_or_null(&jw, "user_id", m->contact.user_id);
		hub_jw_obj_close(&jw);
	}
	jw_str_or_null(&jw, "reply_to_external_id", m->reply_to_external_id);
	jw_str_or_null(&jw, "raw_type", m->raw_type);
	if (m->dedupe_key.len)
		jw_str_or_null(&jw, "dedupe_key", m->dedupe_key);
	if (m->recipient_external_id.len)
		jw_str_or_null(&jw, "recipient_external_id", m->recipient_external_id);
	if (m->update_id.len)
		jw_str_or_null(&jw, "update_id", m->update_id);
	hub_jw_obj_close(&jw);
}

int hub_phone_normalize(struct hub_pool *pool, struct hub_str in, struct hub_str *out)
{
	char digits[32];
	size_t n = 0;
	bool plus = false;

	for (size_t i = 0; i < in.len; i++) {
		char c = in.p[i];
		if (c >= '0' && c <= '9') {
			if (n >= sizeof(digits) - 1)
				return -EINVAL;
			digits[n++] = c;
		} else if (c == '+' && n == 0 && !plus) {
			plus = true;
		} else if (c == ' ' || c == '-' || c == '(' || c == ')' || c == '.' ||
			   c == '\t') {
			continue;
		} else {
			return -EINVAL;
		}
	}
	digits[n] = '\0';
	if (!plus) {
		if (n == 11 && digits[0] == '8') {
			/* Kazakh and Russian national form: 8 701 123 45 67 */
			digits[0] = '7';
		} else if (n == 10 && (digits[0] == '7' || digits[0] == '9')) {
			/* without the trunk prefix: 701 123 45 67, 912 345 67 89 */
			memmove(digits + 1, digits, n + 1);
			digits[0] = '7';
			n++;
		}
	}
	/* E.164: at most 15 digits; shorter than 8 is no mobile or landline number */
	if (n < 8 || n > 15 || digits[0] == '0')
		return -EINVAL;
	char *e = hub_pool_alloc(pool, n + 2);
	e[0] = '+';
	memcpy(e + 1, digits, n + 1);
	*out = (struct hub_str){ e, n + 1 };
	return 0;
}

int hub_send_msg_check(const struct hub_send_msg *msg, const struct hub_adapter *a,
		       struct hub_err *err)
{
	const char *what = hub_msg_type_name(msg->type);
	bool media = msg->type != HUB_MSG_TEXT;
	size_t max = media ? a->caption_max : a->text_max;
	size_t n;

	if (!msg->recipient.len)
		return hub_err_set(err, -EINVAL, "%s: a message without a recipient", a->name);
	if (!media && !msg->text.len)
		return hub_err_set(err, -EINVAL, "%s: a text message without text", a->name);
	if (media && !msg->media_url.len)
		return hub_err_set(err, -EINVAL, "%s: %s without a media URL", a->name, what);
	if (media && !max && msg->text.len)
		return hub_err_set(err, -EINVAL, "%s: %s carries no caption: send the text apart",
				   a->name, what);
	n = hub_utf8_units(msg->text, a->text_unit);
	if (n > max)
		return hub_err_set(err, -EINVAL, "%s: %s of %zu %s, the limit is %zu", a->name,
				   media ? "a caption" : "a text", n,
				   a->text_unit == HUB_TEXT_BYTES ? "bytes" : "UTF-16 units", max);
	return 0;
}

/* Retry-After: <seconds> (an HTTP-date is not worth reading here): milliseconds, or 0. */
static int64_t retry_after_ms(struct hub_str h)
{
	int64_t s = 0;
	size_t i = 0, digits = 0;

	while (i < h.len && (h.p[i] == ' ' || h.p[i] == '\t'))
		i++;
	for (; i < h.len && h.p[i] >= '0' && h.p[i] <= '9' && digits < 9; i++, digits++)
		s = s * 10 + (h.p[i] - '0');
	while (i < h.len && (h.p[i] == ' ' || h.p[i] == '\t'))
		i++;
	return digits && i == h.len ? s * 1000 : 0;
}

void hub_send_result_from_status(struct hub_send_result *out, struct hub_pool *pool,
				 int http_status, struct hub_str retry_after_header)
{
	char code[16];
	int len = snprintf(code, sizeof(code), "%d", http_status);

	memset(out, 0, sizeof(*out));
	if (http_status >= 200 && http_status < 300)
		return; /* HUB_SEND_OK */
	if (http_status == 401)
		out->verdict = HUB_SEND_TOKEN;
	else if (http_status < 100 || http_status == 408 || http_status == 429 ||
		 http_status >= 500)
		out->verdict = HUB_SEND_RETRY;
	else
		out->verdict = HUB_SEND_PERMANENT;
	out->retry_after_ms = retry_after_ms(retry_after_header);
	hub_send_result_set_error(out, pool, (struct hub_str){ code, (size_t)len },
				  http_status ? HUB_STR("(HTTP status)") : HUB_STR("(no answer)"));
}

void hub_send_result_set_error(struct hub_send_result *out, struct hub_pool *pool,
			       struct hub_str code, struct hub_str what)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_str all;

	hub_buf_addstr(&b, code);
	if (what.len) {
		hub_buf_addch(&b, ' ');
		hub_buf_addstr(&b, what);
	}
	all = hub_buf_str(&b);
	all.len = hub_utf8_split_next(all, HUB_SEND_ERROR_MAX, HUB_TEXT_BYTES);
	out->error_code = hub_pool_strcopy(pool, code);
	out->error = hub_pool_strcopy(pool, all);
	hub_buf_release(&b);
}
