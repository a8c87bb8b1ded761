/* tests/fuzz/event_check.c - see event_check.h. */
#include "tests/fuzz/event_check.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lib/err.h"
#include "lib/json.h"
#include "lib/pool.h"
#include "lib/utf8.h"
#include "tests/fuzz/fuzz.h"

static void check_str(struct hub_str s, const char *what, size_t i)
{
	fuzz_check(s.len == 0 || s.p != NULL, "event %zu: %s has %zu bytes at NULL", i, what,
		   s.len);
	fuzz_check(hub_utf8_valid(s.p, s.len), "event %zu: %s is not UTF-8", i, what);
}

static void check_msg(const struct hub_event *ev, const struct hub_channel *ch, size_t i)
{
	const struct hub_inbound_msg *m = &ev->msg;

	/* a deletion names a message and has no type (hub_event_to_json) */
	fuzz_check((ev->kind == HUB_EVENT_DELETE && m->type == 0) ||
			   (m->type >= HUB_MSG_TEXT && m->type <= HUB_MSG_UNSUPPORTED),
		   "event %zu: type %d", i, (int)m->type);
	if (ch) {
		fuzz_check(m->channel_kind == ch->kind, "event %zu: channel kind %d", i,
			   (int)m->channel_kind);
		fuzz_check(m->channel_id && strcmp(m->channel_id, ch->id) == 0,
			   "event %zu: not the channel's", i);
	} else {
		fuzz_check(m->channel_id == NULL, "event %zu: a channel id without a channel", i);
	}
	fuzz_check(m->platform_ts >= 0, "event %zu: platform_ts %lld", i,
		   (long long)m->platform_ts);
	check_str(m->external_id, "external_id", i);
	check_str(m->sender_external_id, "sender_external_id", i);
	check_str(m->sender_phone, "sender_phone", i);
	check_str(m->sender_profile_name, "sender_profile_name", i);
	check_str(m->sender_username, "sender_username", i);
	check_str(m->text, "text", i);
	check_str(m->media.platform_id, "media.platform_id", i);
	check_str(m->media.mime, "media.mime", i);
	check_str(m->media.caption, "media.caption", i);
	check_str(m->media.filename, "media.filename", i);
	check_str(m->location.name, "location.name", i);
	check_str(m->location.address, "location.address", i);
	if (m->location.present)
		fuzz_check(isfinite(m->location.lat) && isfinite(m->location.lon),
			   "event %zu: location not finite", i);
	check_str(m->reply_to_external_id, "reply_to_external_id", i);
	check_str(m->raw_type, "raw_type", i);
	check_str(m->dedupe_key, "dedupe_key", i);
	check_str(m->recipient_external_id, "recipient_external_id", i);
	check_str(m->update_id, "update_id", i);
	check_str(m->contact.name, "contact.name", i);
	check_str(m->contact.phone, "contact.phone", i);
	check_str(m->contact.user_id, "contact.user_id", i);
	if (m->sender_phone.len) {
		/* hub_phone_normalize's form: '+' and digits */
		fuzz_check(m->sender_phone.p[0] == '+', "event %zu: sender_phone", i);
		for (size_t k = 1; k < m->sender_phone.len; k++)
			fuzz_check(m->sender_phone.p[k] >= '0' && m->sender_phone.p[k] <= '9',
				   "event %zu: sender_phone", i);
	}
}

void event_check_list(const struct hub_event_list *list, const struct hub_channel *ch,
		      struct hub_str body)
{
	fuzz_check(list->n <= list->cap && (list->n == 0 || list->items),
		   "%zu events, room for %zu", list->n, list->cap);
	fuzz_check(list->n <= body.len, "%zu events from %zu bytes", list->n, body.len);
	for (size_t i = 0; i < list->n; i++) {
		const struct hub_event *ev = &list->items[i];
		struct hub_buf json = HUB_BUF_INIT;
		struct hub_pool pool = HUB_POOL_INIT;
		struct hub_json_doc doc;
		struct hub_err err = HUB_ERR_INIT;

		fuzz_check(ev->kind >= HUB_EVENT_MESSAGE && ev->kind <= HUB_EVENT_ECHO,
			   "event %zu: kind %d", i, (int)ev->kind);
		if (ev->kind == HUB_EVENT_STATUS) {
			check_str(ev->status.external_id, "status.external_id", i);
			check_str(ev->status.recipient, "status.recipient", i);
			check_str(ev->status.status, "status.status", i);
			check_str(ev->status.error, "status.error", i);
			fuzz_check(ev->status.platform_ts >= 0, "event %zu: status platform_ts", i);
		} else {
			check_msg(ev, ch, i);
		}
		hub_event_to_json(ev, &json);
		fuzz_check(hub_json_parse(&pool, hub_buf_str(&json), 1 << 16, &doc, &err) == 0 &&
				   hub_json_is(&doc, 0, HUB_JSON_OBJECT),
			   "event %zu: hub_event_to_json is not a JSON object: %s", i, err.msg);
		hub_pool_release(&pool);
		hub_buf_release(&json);
	}
}

/* "#name=value&name=value..." before the body: what the request's headers and query hold */
struct fake_req {
	struct hub_str names[8], values[8];
	int n;
};

static struct hub_str lookup(const void *req, const char *name)
{
	const struct fake_req *r = req;

	for (int i = 0; i < r->n; i++)
		if (r->names[i].len == strlen(name) &&
		    strncasecmp(r->names[i].p, name, r->names[i].len) == 0)
			return r->values[i];
	return HUB_STR_NULL;
}

static void take_request(struct hub_str *body, struct fake_req *r)
{
	const char *nl;
	struct hub_str line;

	r->n = 0;
	if (!body->len || body->p[0] != '#' || !(nl = memchr(body->p, '\n', body->len)))
		return;
	line = (struct hub_str){ body->p + 1, (size_t)(nl - body->p - 1) };
	body->len -= (size_t)(nl + 1 - body->p);
	body->p = nl + 1;
	while (line.len && r->n < 8) {
		const char *amp = memchr(line.p, '&', line.len);
		size_t len = amp ? (size_t)(amp - line.p) : line.len;
		const char *eq = memchr(line.p, '=', len);

		r->names[r->n] = (struct hub_str){ line.p, eq ? (size_t)(eq - line.p) : len };
		r->values[r->n] = eq ? (struct hub_str){ eq + 1, len - (size_t)(eq + 1 - line.p) }
				     : HUB_STR("");
		r->n++;
		line.p += len + (amp ? 1 : 0);
		line.len -= len + (amp ? 1 : 0);
	}
}

/* Meta: X-Hub-Signature-256 is "sha256=" and the hex of HMAC-SHA256(app_secret, body). */
static bool meta_signed(const struct hub_channel *ch, struct hub_str sig, struct hub_str body)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!hub_str_startswith(sig, "sha256=") || sig.len != 7 + 64 ||
	    !HMAC(EVP_sha256(), ch->app_secret, (int)strlen(ch->app_secret),
		  (const unsigned char *)body.p, body.len, md, &mdlen))
		return false;
	for (unsigned int i = 0; i < mdlen; i++)
		if (hub_hexval((unsigned char)sig.p[7 + 2 * i]) != md[i] >> 4 ||
		    hub_hexval((unsigned char)sig.p[8 + 2 * i]) != (md[i] & 15))
			return false;
	return true;
}

/* verify() and handshake() on the request's headers and query. */
static void check_auth(const struct hub_adapter *a, const struct hub_channel *ch,
		       const struct fake_req *r, struct hub_str body)
{
	struct hub_webhook wh = { body, lookup, lookup, r };
	struct hub_str sig = lookup(r, "X-Hub-Signature-256"), reply = HUB_STR_NULL;
	int ret;

	ret = a->verify(ch, &wh);
	fuzz_check(ret == 0 || ret == -EPERM, "verify: %d", ret);
	if (ret == 0) {
		if (ch->kind == HUB_CHANNEL_TELEGRAM)
			fuzz_check(hub_str_eqs(lookup(r, "X-Telegram-Bot-Api-Secret-Token"),
					       ch->app_secret),
				   "verified without the secret token");
		else
			fuzz_check(meta_signed(ch, sig, body), "verified without the signature");
	}
	ret = a->handshake(ch, &wh, &reply);
	fuzz_check(ret == 0 || ret == -EPERM || ret == -EBADMSG || ret == -ENOTSUP,
		   "handshake: %d", ret);
	if (ret == 0)
		fuzz_check(ch->kind != HUB_CHANNEL_TELEGRAM &&
				   hub_str_eqs(lookup(r, "hub.mode"), "subscribe") &&
				   hub_str_eqs(lookup(r, "hub.verify_token"), ch->verify_token) &&
				   hub_str_eq(reply, lookup(r, "hub.challenge")) && reply.len > 0 &&
				   reply.len <= 256,
			   "a handshake passed without the verify token");
}

void event_check_webhook(const char *adapter, const struct hub_channel *ch, const uint8_t *data,
			 size_t size)
{
	const struct hub_adapter *a = hub_adapter_find(adapter);
	struct hub_str body = { (const char *)data, size };
	struct fake_req req;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list none = { 0 }, with = { 0 };
	struct hub_err err = HUB_ERR_INIT;
	int r_none, r_with;

	fuzz_check(a && a->parse_webhook && a->kind == ch->kind, "adapter %s", adapter);
	take_request(&body, &req);
	check_auth(a, ch, &req, body);
	r_none = a->parse_webhook(&pool, NULL, body, &none, &err);
	fuzz_check(r_none == 0 || r_none == -EBADMSG || r_none == -EMSGSIZE,
		   "without a channel: %d (%s)", r_none, err.msg);
	fuzz_check(r_none == 0 || err.msg[0], "an error without a message");
	if (r_none == 0)
		event_check_list(&none, NULL, body);

	hub_err_clear(&err);
	r_with = a->parse_webhook(&pool, ch, body, &with, &err);
	fuzz_check(r_with == 0 || r_with == -EBADMSG || r_with == -EMSGSIZE || r_with == -EACCES,
		   "with a channel: %d (%s)", r_with, err.msg);
	if (r_with != 0)
		goto out;
	event_check_list(&with, ch, body);
	fuzz_check(r_none == 0 && none.n == with.n && none.bad == with.bad &&
			   none.ignored == with.ignored,
		   "with a channel: %d, %zu events (%zu bad, %zu ignored); without: %d, %zu (%zu, "
		   "%zu)",
		   r_with, with.n, with.bad, with.ignored, r_none, none.n, none.bad, none.ignored);
	for (size_t i = 0; i < with.n; i++) {
		const struct hub_event *x = &none.items[i], *y = &with.items[i];

		fuzz_check(x->kind == y->kind && hub_str_eq(x->msg.external_id, y->msg.external_id) &&
				   hub_str_eq(x->status.external_id, y->status.external_id),
			   "event %zu differs with a channel", i);
	}
out:
	hub_pool_release(&pool);
}
