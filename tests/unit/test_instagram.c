/* tests/unit/test_instagram.c - the Instagram adapter: Meta's signature and handshake,
 * every messaging event kind, the fields the golden files do not show (dedupe_key,
 * recipient_external_id), the account check, bad items, wrong types and huge ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "adapters/adapter.h"
#include "adapters/instagram.h"
#include "lib/crypto.h"

#define ACC "17841471550633446"

static const struct hub_channel channel = {
	.id = "demo-instagram",
	.tenant = "demo",
	.kind = HUB_CHANNEL_INSTAGRAM,
	.account_id = ACC,
	.app_secret = "ig-app-secret",
	.verify_token = "ig-verify-token",
	.enabled = true,
};

struct fake_req {
	const char *names[4];
	const char *values[4];
};

static struct hub_str fake_lookup(const void *req, const char *name)
{
	const struct fake_req *r = req;

	for (int i = 0; i < 4 && r->names[i]; i++)
		if (strcasecmp(r->names[i], name) == 0)
			return hub_str_from(r->values[i]);
	return HUB_STR_NULL;
}

static const struct hub_adapter *ig(void)
{
	const struct hub_adapter *a = hub_adapter_find("instagram");

	assert_non_null(a);
	return a;
}

static struct hub_buf read_fixture(const char *name)
{
	struct hub_buf b = HUB_BUF_INIT;
	char path[256];

	snprintf(path, sizeof(path), "tests/fixtures/instagram/%s", name);
	assert_int_equal(hub_buf_read_file(&b, path), 0);
	return b;
}

static void sign(struct hub_str body, const char *secret, struct hub_buf *header)
{
	unsigned char mac[HUB_SHA256_LEN];

	hub_hmac_sha256(hub_str_from(secret), body, mac);
	hub_buf_adds(header, "sha256=");
	hub_buf_addhex(header, mac, sizeof(mac));
}

static int verify_ch(const struct hub_channel *ch, struct hub_str body, const char *name,
		     const char *sig)
{
	struct fake_req req = { { name }, { sig } };
	struct hub_webhook wh = { body, fake_lookup, fake_lookup, &req };

	return ig()->verify(ch, &wh);
}

static int verify(struct hub_str body, const char *sig)
{
	return verify_ch(&channel, body, "X-Hub-Signature-256", sig);
}

static void test_registry(void **state)
{
	(void)state;
	assert_ptr_equal(hub_adapter_for(HUB_CHANNEL_INSTAGRAM), ig());
	assert_int_equal(ig()->kind, HUB_CHANNEL_INSTAGRAM);
	assert_non_null(hub_adapter_find("whatsapp"));
}

static void test_signature(void **state)
{
	struct hub_buf body = read_fixture("text.json");
	struct hub_buf sig = HUB_BUF_INIT;
	struct hub_channel nosecret = channel;

	(void)state;
	sign(hub_buf_str(&body), channel.app_secret, &sig);
	assert_int_equal(verify(hub_buf_str(&body), sig.p), 0);
	/* the header name in any case (the lookup is case-insensitive) */
	assert_int_equal(verify_ch(&channel, hub_buf_str(&body), "x-hub-signature-256", sig.p), 0);
	/* upper-case hex */
	for (size_t i = 7; i < sig.len; i++)
		sig.p[i] = (char)toupper((unsigned char)sig.p[i]);
	assert_int_equal(verify(hub_buf_str(&body), sig.p), 0);
	/* one flipped byte of the body, one byte more */
	body.p[10] ^= 1;
	assert_int_equal(verify(hub_buf_str(&body), sig.p), -EPERM);
	body.p[10] ^= 1;
	assert_int_equal(verify((struct hub_str){ body.p, body.len - 1 }, sig.p), -EPERM);
	/* the legacy SHA-1 header alone is not enough */
	assert_int_equal(verify_ch(&channel, hub_buf_str(&body), "X-Hub-Signature", sig.p),
			 -EPERM);
	/* a channel without a secret accepts nothing */
	nosecret.app_secret = NULL;
	assert_int_equal(verify_ch(&nosecret, hub_buf_str(&body), "X-Hub-Signature-256", sig.p),
			 -EPERM);
	nosecret.app_secret = "";
	assert_int_equal(verify_ch(&nosecret, hub_buf_str(&body), "X-Hub-Signature-256", sig.p),
			 -EPERM);
	/* wrong secret, missing, truncated, no prefix, garbage, empty, too long */
	hub_buf_reset(&sig);
	sign(hub_buf_str(&body), "another-secret", &sig);
	assert_int_equal(verify(hub_buf_str(&body), sig.p), -EPERM);
	assert_int_equal(verify(hub_buf_str(&body), NULL), -EPERM);
	hub_buf_reset(&sig);
	sign(hub_buf_str(&body), channel.app_secret, &sig);
	assert_int_equal(verify(hub_buf_str(&body), sig.p + 7), -EPERM);
	hub_buf_adds(&sig, "00");
	assert_int_equal(verify(hub_buf_str(&body), sig.p), -EPERM);
	hub_buf_truncate(&sig, sig.len - 4);
	assert_int_equal(verify(hub_buf_str(&body), sig.p), -EPERM);
	assert_int_equal(verify(hub_buf_str(&body), "sha256=zz"), -EPERM);
	assert_int_equal(verify(hub_buf_str(&body), "sha256="), -EPERM);
	assert_int_equal(verify(hub_buf_str(&body), ""), -EPERM);
	assert_int_equal(verify(hub_buf_str(&body), "sha1=00"), -EPERM);
	hub_buf_release(&sig);
	hub_buf_release(&body);
}

static int handshake(const struct hub_channel *ch, const char *mode, const char *token,
		     const char *challenge, struct hub_str *reply)
{
	struct fake_req q = { { "hub.mode", "hub.verify_token", "hub.challenge" },
			      { mode, token, challenge } };
	struct hub_webhook wh = { HUB_STR_NULL, fake_lookup, fake_lookup, &q };

	return ig()->handshake(ch, &wh, reply);
}

static void test_handshake(void **state)
{
	struct hub_str reply = HUB_STR_NULL;
	struct hub_channel notoken = channel;
	char big[300];

	(void)state;
	assert_int_equal(handshake(&channel, "subscribe", "ig-verify-token", "1158201444", &reply),
			 0);
	assert_true(hub_str_eqs(reply, "1158201444"));
	assert_int_equal(handshake(&channel, "subscribe", "wrong", "1", &reply), -EPERM);
	assert_int_equal(handshake(&channel, "subscribe", "ig-verify-toke", "1", &reply), -EPERM);
	assert_int_equal(handshake(&channel, "subscribe", "ig-verify-tokenX", "1", &reply), -EPERM);
	assert_int_equal(handshake(&channel, "subscribe", "", "1", &reply), -EPERM);
	assert_int_equal(handshake(&channel, "unsubscribe", "ig-verify-token", "1", &reply),
			 -EPERM);
	assert_int_equal(handshake(&channel, "subscribe", "ig-verify-token", NULL, &reply),
			 -EBADMSG);
	assert_int_equal(handshake(&channel, "subscribe", "ig-verify-token", "", &reply),
			 -EBADMSG);
	memset(big, '7', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(handshake(&channel, "subscribe", "ig-verify-token", big, &reply),
			 -EBADMSG);
	assert_int_equal(handshake(&channel, NULL, NULL, NULL, &reply), -EBADMSG);
	notoken.verify_token = NULL;
	assert_int_equal(handshake(&notoken, "subscribe", "", "1", &reply), -EPERM);
	notoken.verify_token = "";
	assert_int_equal(handshake(&notoken, "subscribe", "", "1", &reply), -EPERM);
}

static int parse(const char *body, const struct hub_channel *ch, struct hub_pool *pool,
		 struct hub_event_list *out)
{
	struct hub_err err = HUB_ERR_INIT;

	memset(out, 0, sizeof(*out));
	return ig()->parse_webhook(pool, ch, hub_str_from(body), out, &err);
}

static int parse_fixture(const char *name, struct hub_pool *pool, struct hub_event_list *out,
			 struct hub_buf *body)
{
	*body = read_fixture(name);
	return parse(body->p, &channel, pool, out);
}

#define MID                                                                          \
	"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDcxNTUwNjMzNDQ2OjM0MDI4MjM2Njg0MTcx" \
	"MDMwMTI0NDI3NjAxNzM1NDQ3NjQ3MTk5ODozMTk4NjcwMTk0MTM3NTg1MTA1MTMxNzc4NDc5MjI2ODgw"

static void test_text_fixture(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf body;
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	assert_int_equal(parse_fixture("text.json", &pool, &ev, &body), 0);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.bad, 0);
	assert_int_equal(ev.ignored, 0);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_MESSAGE);
	m = &ev.items[0].msg;
	assert_int_equal(m->channel_kind, HUB_CHANNEL_INSTAGRAM);
	assert_string_equal(m->channel_id, "demo-instagram");
	assert_true(hub_str_startswith(m->external_id, "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3"));
	assert_true(hub_str_eqs(m->sender_external_id, "1090651699462050"));
	assert_int_equal(m->sender_profile_name.len, 0); /* not in the webhook */
	assert_int_equal(m->sender_phone.len, 0);
	assert_int_equal(m->type, HUB_MSG_TEXT);
	assert_true(hub_str_eqs(m->text, "Nj"));
	assert_true(m->platform_ts == 1734002586774LL);
	assert_int_equal(m->dedupe_key.len, 0);
	hub_pool_release(&pool);
	hub_buf_release(&body);
}

/* An attachment keeps its CDN URL (the file stays at Instagram) and its kind. */
static void test_attachment_ref(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf body;
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	assert_int_equal(parse_fixture("image.json", &pool, &ev, &body), 0);
	m = &ev.items[0].msg;
	assert_int_equal(m->type, HUB_MSG_IMAGE);
	assert_true(hub_str_startswith(m->media.platform_id,
				       "https://lookaside.fbsbx.com/ig_messaging_cdn/"));
	assert_int_equal(m->media.mime.len, 0); /* the CDN's answer says */
	hub_buf_release(&body);
	assert_int_equal(parse_fixture("file.json", &pool, &ev, &body), 0);
	assert_int_equal(ev.items[0].msg.type, HUB_MSG_DOCUMENT);
	assert_true(ev.items[0].msg.media.platform_id.len > 0);
	hub_pool_release(&pool);
	hub_buf_release(&body);
}

static void test_echo_edit_reaction_read(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf body;
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	assert_int_equal(parse_fixture("echo.json", &pool, &ev, &body), 0);
	assert_int_equal(ev.n, 1);
	m = &ev.items[0].msg;
	assert_int_equal(ev.items[0].kind, HUB_EVENT_ECHO);
	assert_true(hub_str_eqs(m->sender_external_id, ACC));
	assert_true(hub_str_eqs(m->recipient_external_id, "1090651699462050"));
	assert_true(hub_str_eqs(m->external_id, MID "11ZDZD"));
	hub_buf_release(&body);

	assert_int_equal(parse_fixture("edit.json", &pool, &ev, &body), 0);
	assert_int_equal(ev.n, 1);
	m = &ev.items[0].msg;
	assert_int_equal(ev.items[0].kind, HUB_EVENT_EDIT);
	assert_true(hub_str_eqs(m->external_id, MID "09ZDZD"));
	assert_true(hub_str_eqs(m->text, "Yes, size L please"));
	assert_true(hub_str_eqs(m->dedupe_key, "1"));
	hub_buf_release(&body);

	assert_int_equal(parse_fixture("reaction.json", &pool, &ev, &body), 0);
	assert_int_equal(ev.n, 1);
	m = &ev.items[0].msg;
	assert_int_equal(ev.items[0].kind, HUB_EVENT_REACTION);
	assert_int_equal(m->external_id.len, 0);
	assert_true(hub_str_eqs(m->reply_to_external_id, MID "90ZDZD"));
	assert_true(hub_str_eqs(m->text, "\u2764\ufe0f"));
	assert_true(hub_str_eqs(m->dedupe_key,
				MID "90ZDZD:1090651699462050:react:1734002901234"));
	hub_buf_release(&body);

	assert_int_equal(parse_fixture("unreact.json", &pool, &ev, &body), 0);
	m = &ev.items[0].msg;
	assert_int_equal(ev.items[0].kind, HUB_EVENT_REACTION);
	assert_int_equal(m->text.len, 0); /* removed */
	assert_true(hub_str_eqs(m->dedupe_key,
				MID "90ZDZD:1090651699462050:unreact:1734002955555"));
	hub_buf_release(&body);

	assert_int_equal(parse_fixture("read.json", &pool, &ev, &body), 0);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_STATUS);
	assert_true(hub_str_eqs(ev.items[0].status.status, "read"));
	assert_true(hub_str_eqs(ev.items[0].status.external_id, MID "91ZDZD"));
	assert_true(hub_str_eqs(ev.items[0].status.recipient, "1090651699462050"));
	assert_true(ev.items[0].status.platform_ts == 1734003100000LL);
	hub_buf_release(&body);

	assert_int_equal(parse_fixture("deleted.json", &pool, &ev, &body), 0);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_DELETE);
	assert_true(hub_str_eqs(ev.items[0].msg.external_id, MID "13ZDZD"));
	hub_buf_release(&body);
	hub_pool_release(&pool);
}

static void test_batch_fixture(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf body;
	struct hub_event_list ev;

	(void)state;
	assert_int_equal(parse_fixture("batch.json", &pool, &ev, &body), 0);
	/* 3 messages and a read in messaging[], 1 message in standby[]; 3 bad items */
	assert_int_equal(ev.n, 5);
	assert_int_equal(ev.bad, 3);
	assert_int_equal(ev.items[3].kind, HUB_EVENT_STATUS);
	assert_true(hub_str_eqs(ev.items[4].msg.text, "standby in a batch"));
	hub_buf_release(&body);

	assert_int_equal(parse_fixture("multi_image.json", &pool, &ev, &body), 0);
	assert_int_equal(ev.n, 3);
	assert_true(hub_str_eqs(ev.items[0].msg.external_id, MID "05ZDZD"));
	assert_true(hub_str_eqs(ev.items[1].msg.external_id, MID "05ZDZD:1"));
	assert_true(hub_str_eqs(ev.items[2].msg.external_id, MID "05ZDZD:2"));
	assert_int_equal(ev.items[2].msg.type, HUB_MSG_VIDEO);
	assert_true(hub_str_eqs(ev.items[1].msg.sender_external_id, "1090651699462050"));
	hub_buf_release(&body);

	assert_int_equal(parse_fixture("ignored_events.json", &pool, &ev, &body), 0);
	assert_int_equal(ev.n, 0);
	assert_int_equal(ev.bad, 0);
	assert_int_equal(ev.ignored, 3);
	hub_buf_release(&body);

	assert_int_equal(parse_fixture("comments_ignored.json", &pool, &ev, &body), 0);
	assert_int_equal(ev.n, 0);
	assert_int_equal(ev.ignored, 2);
	hub_buf_release(&body);
	hub_pool_release(&pool);
}

#define WRAP(account, items)                                                         \
	"{\"object\":\"instagram\",\"entry\":[{\"time\":1734002587325,\"id\":" account \
	",\"messaging\":[" items "]}]}"
#define ITEM(sender, inner)                                                            \
	"{\"sender\":{\"id\":" sender "},\"recipient\":{\"id\":\"" ACC "\"},"       \
	"\"timestamp\":1734002586774," inner "}"

static void test_huge_ids(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;

	(void)state;
	/* numbers above 2^53 keep every digit; strings too; a double is refused */
	assert_int_equal(parse(WRAP(ACC,
				    ITEM("9007199254740993123",
					 "\"message\":{\"mid\":\"m1\",\"text\":\"a\"}") ","
				    ITEM("\"99999999999999999999999999\"",
					 "\"message\":{\"mid\":\"m2\",\"text\":\"b\"}") ","
				    ITEM("1.5e17",
					 "\"message\":{\"mid\":\"m3\",\"text\":\"c\"}") ","
				    ITEM("-5", "\"message\":{\"mid\":\"m4\",\"text\":\"d\"}")),
			       &channel, &pool, &ev),
			 0);
	assert_int_equal(ev.n, 2);
	assert_int_equal(ev.bad, 2);
	assert_true(hub_str_eqs(ev.items[0].msg.sender_external_id, "9007199254740993123"));
	assert_true(hub_str_eqs(ev.items[1].msg.sender_external_id,
				"99999999999999999999999999"));
	/* the account as a string, and another account as a number */
	assert_int_equal(parse(WRAP("\"" ACC "\"", ITEM("\"1\"",
			       "\"message\":{\"mid\":\"m1\",\"text\":\"a\"}")),
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 1);
	assert_int_equal(parse(WRAP("17841471550633447", ITEM("\"1\"",
			       "\"message\":{\"mid\":\"m1\",\"text\":\"a\"}")),
			       &channel, &pool, &ev), -EACCES);
	hub_pool_release(&pool);
}

static void test_bad_items_and_wrong_types(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;

	(void)state;
	assert_int_equal(
		parse(WRAP("\"" ACC "\"",
			   /* no sender */
			   "{\"recipient\":{\"id\":\"1\"},"
			   "\"message\":{\"mid\":\"x\",\"text\":\"a\"}},"
			   /* message not an object, mid a number-like bool */
			   ITEM("\"1\"", "\"message\":\"hi\"") ","
			   ITEM("\"1\"", "\"message\":{\"mid\":true,\"text\":\"a\"}") ","
			   /* reaction without mid, edit without num_edit or with a fraction */
			   ITEM("\"1\"", "\"reaction\":{\"action\":\"react\",\"emoji\":\"x\"}") ","
			   ITEM("\"1\"", "\"message_edit\":{\"mid\":\"m\",\"text\":\"t\"}") ","
			   ITEM("\"1\"", "\"message_edit\":{\"mid\":\"m\",\"num_edit\":1.5}") ","
			   /* read without mid or watermark; postback without mid */
			   ITEM("\"1\"", "\"read\":{}") ","
			   ITEM("\"1\"", "\"postback\":{\"title\":\"t\"}") ","
			   /* and one good item, kept */
			   ITEM("\"1\"", "\"message\":{\"mid\":\"ok\",\"text\":\"kept\"}") ","
			   /* an empty message: shown as unsupported, never dropped */
			   ITEM("\"1\"", "\"message\":{\"mid\":\"empty\"}") ","
			   /* an unknown event: ignored */
			   ITEM("\"1\"", "\"pass_thread_control\":{\"new_owner_app_id\":\"1\"}")),
		      &channel, &pool, &ev),
		0);
	assert_int_equal(ev.bad, 8);
	assert_int_equal(ev.ignored, 1);
	assert_int_equal(ev.n, 2);
	assert_true(hub_str_eqs(ev.items[0].msg.text, "kept"));
	assert_int_equal(ev.items[1].msg.type, HUB_MSG_UNSUPPORTED);
	assert_true(hub_str_eqs(ev.items[1].msg.raw_type, "message"));

	/* timestamps: seconds are scaled, strings and negatives give 0 */
#define TS_ITEM(ts, mid) \
	"{\"sender\":{\"id\":\"1\"},\"timestamp\":" ts ","                            \
	"\"message\":{\"mid\":\"" mid "\",\"text\":\"x\"}}"
	assert_int_equal(parse(WRAP("\"" ACC "\"", TS_ITEM("1734002586", "a") ","
				    TS_ITEM("\"1734002586774\"", "b") "," TS_ITEM("-1", "c")),
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 3);
	assert_true(ev.items[0].msg.platform_ts == 1734002586000LL);
	assert_true(ev.items[1].msg.platform_ts == 0);
	assert_true(ev.items[2].msg.platform_ts == 0);

	/* a quick reply without text keeps its payload; an echo with a reply */
	assert_int_equal(parse(WRAP("\"" ACC "\"",
		ITEM("\"1\"", "\"message\":{\"mid\":\"q\",\"quick_reply\":{\"payload\":\"P\"}}") ","
		"{\"sender\":{\"id\":\"" ACC "\"},\"recipient\":{\"id\":\"42\"},"
		"\"message\":{\"mid\":\"e\","
		"\"text\":\"t\",\"is_echo\":true,\"reply_to\":{\"mid\":\"q\"}}}"),
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 2);
	assert_int_equal(ev.items[0].msg.type, HUB_MSG_INTERACTIVE);
	assert_true(hub_str_eqs(ev.items[0].msg.text, "P"));
	assert_int_equal(ev.items[1].kind, HUB_EVENT_ECHO);
	assert_true(hub_str_eqs(ev.items[1].msg.recipient_external_id, "42"));
	assert_true(hub_str_eqs(ev.items[1].msg.reply_to_external_id, "q"));
	hub_pool_release(&pool);
}

static void test_bodies(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;

	(void)state;
	/* another account: nothing, even when an earlier entry is ours */
	assert_int_equal(parse("{\"object\":\"instagram\",\"entry\":[{\"id\":\"" ACC "\","
			       "\"messaging\":[" ITEM("\"1\"", "\"message\":{\"mid\":\"a\"}") "]},"
			       "{\"id\":\"1\",\"messaging\":[]}]}", &channel, &pool, &ev),
			 -EACCES);
	assert_int_equal(ev.n, 0);
	/* hubctl parse: no channel, no check */
	assert_int_equal(parse(WRAP("\"1\"", ""), NULL, &pool, &ev), 0);
	assert_int_equal(parse("{\"object\":", &channel, &pool, &ev), -EBADMSG);
	assert_int_equal(parse("[]", &channel, &pool, &ev), -EBADMSG);
	assert_int_equal(parse("", &channel, &pool, &ev), -EBADMSG);
	assert_int_equal(parse("{\"object\":\"instagram\"}", &channel, &pool, &ev), -EBADMSG);
	assert_int_equal(parse("{\"object\":\"instagram\",\"entry\":{}}", &channel, &pool, &ev),
			 -EBADMSG);
	/* invalid UTF-8 is refused by the reader */
	assert_int_equal(parse(WRAP("\"" ACC "\"", ITEM("\"1\"",
			       "\"message\":{\"mid\":\"a\",\"text\":\"\xff\"}")),
			       &channel, &pool, &ev),
			 -EBADMSG);
	/* other objects: valid, not ours */
	assert_int_equal(parse("{\"object\":\"page\",\"entry\":[]}", &channel, &pool, &ev), 0);
	assert_int_equal(ev.ignored, 1);
	/* entries that are not objects, or have no id, or a messaging that is no array */
	assert_int_equal(parse("{\"object\":\"instagram\",\"entry\":[5,{\"messaging\":[]},"
			       "{\"id\":\"" ACC "\",\"messaging\":{}}]}", &channel, &pool, &ev), 0);
	assert_int_equal(ev.bad, 3);
	assert_int_equal(ev.n, 0);
	hub_pool_release(&pool);
}

static void test_user_profile(void **state)
{
	struct hub_channel ch = channel;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_send_req req;
	struct hub_str name, username, why;
	int64_t wait;

	(void)state;
	ch.access_token = "IGAA-SECRET-token";
	assert_int_equal(hub_instagram_profile_req(&pool, &ch, "v21.0",
						   HUB_STR("1254459154682919"), &req, &err), 0);
	assert_string_equal(req.method, "GET");
	assert_true(hub_str_eqs(req.path, "/v21.0/1254459154682919?fields=name,username"));
	assert_true(hub_str_eqs(req.authorization, "Bearer IGAA-SECRET-token"));
	assert_int_equal(req.body.len, 0);
	/* only digits go into the path; a token is never named */
	assert_int_equal(hub_instagram_profile_req(&pool, &ch, "v21.0", HUB_STR("12/../me"),
						   &req, &err), -EINVAL);
	ch.access_token = "bad token";
	assert_int_equal(hub_instagram_profile_req(&pool, &ch, "v21.0", HUB_STR("1"), &req,
						   &err), -EINVAL);
	assert_null(strstr(err.msg, "token\""));

	assert_int_equal(hub_instagram_parse_profile(&pool, 200, HUB_STR_NULL,
		HUB_STR("{\"name\":\"Камила Ахметова\",\"username\":\"kamila.style\","
			"\"id\":\"1254459154682919\"}"), &name, &username, &wait, &why), 0);
	assert_true(hub_str_eqs(name, "Камила Ахметова"));
	assert_true(hub_str_eqs(username, "kamila.style"));
	assert_int_equal(hub_instagram_parse_profile(&pool, 200, HUB_STR_NULL,
		HUB_STR("{\"id\":\"1\"}"), &name, &username, &wait, &why), 0);
	assert_int_equal(name.len + username.len, 0);
	/* later: a rate limit (with its wait) or a server error; never: no consent, token */
	assert_int_equal(hub_instagram_parse_profile(&pool, 429, HUB_STR("7"),
		HUB_STR("{\"error\":{\"message\":\"(#4) Application request limit reached\","
			"\"code\":4}}"), &name, &username, &wait, &why), -EAGAIN);
	assert_int_equal(wait, 7000);
	assert_int_equal(hub_instagram_parse_profile(&pool, 0, HUB_STR_NULL, HUB_STR_NULL, &name,
						     &username, &wait, &why), -EAGAIN);
	assert_int_equal(hub_instagram_parse_profile(&pool, 400, HUB_STR_NULL,
		HUB_STR("{\"error\":{\"message\":\"(#230) User consent is required to access "
			"user profile\",\"code\":230}}"), &name, &username, &wait, &why), -EPERM);
	assert_non_null(memmem(why.p, why.len, "230", 3));
	assert_int_equal(hub_instagram_parse_profile(&pool, 200, HUB_STR_NULL, HUB_STR("[]"),
						     &name, &username, &wait, &why), -EPERM);
	hub_pool_release(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_user_profile),
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_text_fixture),
		cmocka_unit_test(test_attachment_ref),
		cmocka_unit_test(test_echo_edit_reaction_read),
		cmocka_unit_test(test_batch_fixture),
		cmocka_unit_test(test_huge_ids),
		cmocka_unit_test(test_bad_items_and_wrong_types),
		cmocka_unit_test(test_bodies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
