/* tests/unit/test_whatsapp.c - the WhatsApp adapter over the platform's sample bodies:
 * signatures, the handshake, parsing, the account check, the per-change caps and contacts
 * index on huge bodies; and phone normalization. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "adapters/adapter.h"
#include "lib/crypto.h"

static const struct hub_channel channel = {
	.id = "demo-whatsapp",
	.tenant = "demo",
	.kind = HUB_CHANNEL_WHATSAPP,
	.account_id = "106540352242922",
	.app_secret = "test-app-secret",
	.verify_token = "test-verify-token",
	.enabled = true,
};

/* A fake request: a few headers and query parameters. */
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

static struct hub_buf read_fixture(const char *name)
{
	struct hub_buf b = HUB_BUF_INIT;
	char path[256];

	snprintf(path, sizeof(path), "tests/fixtures/whatsapp/%s", name);
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

static int verify(struct hub_str body, const char *sig)
{
	const struct hub_adapter *wa = hub_adapter_find("whatsapp");
	struct fake_req req = { { "X-Hub-Signature-256" }, { sig } };
	struct hub_webhook wh = { body, fake_lookup, fake_lookup, &req };

	return wa->verify(&channel, &wh);
}

static void test_signature(void **state)
{
	struct hub_buf body = read_fixture("text.json");
	struct hub_buf sig = HUB_BUF_INIT;

	(void)state;
	sign(hub_buf_str(&body), channel.app_secret, &sig);
	assert_int_equal(verify(hub_buf_str(&body), sig.p), 0);
	/* upper-case hex is accepted */
	for (size_t i = 7; i < sig.len; i++)
		sig.p[i] = (char)toupper((unsigned char)sig.p[i]);
	assert_int_equal(verify(hub_buf_str(&body), sig.p), 0);
	/* one changed byte of the body */
	body.p[10] ^= 1;
	assert_int_equal(verify(hub_buf_str(&body), sig.p), -EPERM);
	body.p[10] ^= 1;
	/* wrong secret, missing, truncated, no prefix, garbage */
	hub_buf_reset(&sig);
	sign(hub_buf_str(&body), "another-secret", &sig);
	assert_int_equal(verify(hub_buf_str(&body), sig.p), -EPERM);
	assert_int_equal(verify(hub_buf_str(&body), NULL), -EPERM);
	hub_buf_truncate(&sig, sig.len - 2);
	assert_int_equal(verify(hub_buf_str(&body), sig.p), -EPERM);
	assert_int_equal(verify(hub_buf_str(&body), sig.p + 7), -EPERM);
	assert_int_equal(verify(hub_buf_str(&body), "sha256=zz"), -EPERM);
	assert_int_equal(verify(hub_buf_str(&body), "sha1=00"), -EPERM);
	hub_buf_release(&sig);
	hub_buf_release(&body);
}

static int handshake(const char *mode, const char *token, const char *challenge,
		     struct hub_str *reply)
{
	const struct hub_adapter *wa = hub_adapter_find("whatsapp");
	struct fake_req q = { { "hub.mode", "hub.verify_token", "hub.challenge" },
			      { mode, token, challenge } };
	struct hub_webhook wh = { HUB_STR_NULL, fake_lookup, fake_lookup, &q };

	return wa->handshake(&channel, &wh, reply);
}

static void test_handshake(void **state)
{
	struct hub_str reply = HUB_STR_NULL;

	(void)state;
	assert_int_equal(handshake("subscribe", "test-verify-token", "1158201444", &reply), 0);
	assert_true(hub_str_eqs(reply, "1158201444"));
	assert_int_equal(handshake("subscribe", "wrong", "1", &reply), -EPERM);
	assert_int_equal(handshake("subscribe", "test-verify-toke", "1", &reply), -EPERM);
	assert_int_equal(handshake("unsubscribe", "test-verify-token", "1", &reply), -EPERM);
	assert_int_equal(handshake("subscribe", "test-verify-token", NULL, &reply), -EBADMSG);
	assert_int_equal(handshake(NULL, NULL, NULL, &reply), -EBADMSG);
}

static int parse(const char *body, const struct hub_channel *ch, struct hub_pool *pool,
		 struct hub_event_list *out)
{
	struct hub_err err = HUB_ERR_INIT;

	memset(out, 0, sizeof(*out));
	return hub_adapter_find("whatsapp")->parse_webhook(pool, ch, hub_str_from(body), out,
							     &err);
}

static void test_parse_text_fixture(void **state)
{
	struct hub_buf body = read_fixture("text.json");
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	assert_int_equal(parse(body.p, &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.bad, 0);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_MESSAGE);
	m = &ev.items[0].msg;
	assert_true(hub_str_eqs(m->external_id,
				"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="));
	assert_true(hub_str_eqs(m->sender_external_id, "16505551234"));
	assert_true(hub_str_eqs(m->sender_phone, "+16505551234"));
	assert_true(hub_str_eqs(m->sender_profile_name, "Sheena Nelson"));
	assert_true(hub_str_eqs(m->text, "Does it come in another color?"));
	assert_int_equal(m->type, HUB_MSG_TEXT);
	assert_true(m->platform_ts == 1749416383000LL);
	assert_string_equal(m->channel_id, "demo-whatsapp");
	hub_pool_release(&pool);
	hub_buf_release(&body);
}

/* An attachment keeps the platform's media id, mime type, caption and file name: the
 * file stays at WhatsApp until an agent opens it. */
static void test_parse_media_refs(void **state)
{
	struct hub_buf body = read_fixture("image.json");
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	assert_int_equal(parse(body.p, &channel, &pool, &ev), 0);
	m = &ev.items[0].msg;
	assert_int_equal(m->type, HUB_MSG_IMAGE);
	assert_true(m->media.platform_id.len > 0);
	assert_true(hub_str_startswith(m->media.mime, "image/"));
	assert_int_equal(m->media.size, 0); /* the webhook does not say */
	hub_buf_release(&body);
	body = read_fixture("document.json");
	assert_int_equal(parse(body.p, &channel, &pool, &ev), 0);
	m = &ev.items[0].msg;
	assert_int_equal(m->type, HUB_MSG_DOCUMENT);
	assert_true(hub_str_eqs(m->media.platform_id, "1003383421387256"));
	assert_true(hub_str_eqs(m->media.mime, "application/pdf"));
	assert_true(hub_str_eqs(m->media.filename, "dogovor-2026.pdf"));
	assert_true(hub_str_eqs(m->media.caption, "Договор"));
	assert_true(hub_str_eqs(m->text, "Договор"));
	hub_pool_release(&pool);
	hub_buf_release(&body);
}

static void test_parse_status_fixture(void **state)
{
	struct hub_buf body = read_fixture("status_failed.json");
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;

	(void)state;
	assert_int_equal(parse(body.p, &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_STATUS);
	assert_true(hub_str_eqs(ev.items[0].status.status, "failed"));
	assert_true(hub_str_startswith(ev.items[0].status.error, "131049 "));
	hub_pool_release(&pool);
	hub_buf_release(&body);
}

#define WRAP(account, inner)                                                              \
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{" \
	"\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","            \
	"\"metadata\":{\"phone_number_id\":\"" account "\"}," inner "}}]}]}"

static void test_batch_with_bad_item_and_unknown_type(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;

	(void)state;
	assert_int_equal(parse(WRAP("106540352242922",
				    "\"contacts\":[{\"profile\":{\"name\":\"Айгерим\"},"
				    "\"wa_id\":\"77011234567\"}],\"messages\":["
				    "{\"from\":\"77011234567\",\"id\":\"w1\",\"timestamp\":\"1\","
				    "\"type\":\"text\",\"text\":{\"body\":\"a\"}},"
				    "{\"from\":\"77011234567\",\"timestamp\":\"2\",\"type\":\"text\"},"
				    "{\"from\":\"77011234567\",\"id\":\"w3\",\"timestamp\":\"3\","
				    "\"type\":\"hologram\",\"hologram\":{}}]"),
			       &channel, &pool, &ev),
			 0);
	assert_int_equal(ev.n, 2);
	assert_int_equal(ev.bad, 1);
	assert_true(hub_str_eqs(ev.items[0].msg.sender_phone, "+77011234567"));
	assert_true(hub_str_eqs(ev.items[0].msg.sender_profile_name, "Айгерим"));
	assert_int_equal(ev.items[1].msg.type, HUB_MSG_UNSUPPORTED);
	assert_true(hub_str_eqs(ev.items[1].msg.raw_type, "hologram"));
	hub_pool_release(&pool);
}

static void test_wrong_account_and_bad_bodies(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;

	(void)state;
	assert_int_equal(parse(WRAP("999", "\"messages\":[]"), &channel, &pool, &ev), -EACCES);
	/* without a channel (hubctl parse) the account is not checked */
	assert_int_equal(parse(WRAP("999", "\"messages\":[]"), NULL, &pool, &ev), 0);
	assert_int_equal(parse("{\"object\":", &channel, &pool, &ev), -EBADMSG);
	assert_int_equal(parse("[]", &channel, &pool, &ev), -EBADMSG);
	assert_int_equal(parse("{\"object\":\"whatsapp_business_account\",\"entry\":5}", &channel,
			       &pool, &ev), -EBADMSG);
	/* other objects and fields are valid but not ours: ignored, not an error */
	assert_int_equal(parse("{\"object\":\"page\",\"entry\":[]}", &channel, &pool, &ev), 0);
	assert_int_equal(ev.ignored, 1);
	assert_int_equal(parse("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":"
			       "[{\"field\":\"account_update\",\"value\":{}}]}]}",
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 0);
	assert_int_equal(ev.ignored, 1);
	hub_pool_release(&pool);
}

static void test_verify_edge_cases(void **state)
{
	const struct hub_adapter *wa = hub_adapter_find("whatsapp");
	struct hub_buf body = read_fixture("text.json");
	struct hub_buf sig = HUB_BUF_INIT;
	struct hub_channel no_secret = channel;
	struct fake_req req = { { "x-hub-signature-256" }, { NULL } };
	struct hub_webhook wh = { hub_buf_str(&body), fake_lookup, fake_lookup, &req };

	(void)state;
	sign(hub_buf_str(&body), channel.app_secret, &sig);
	req.values[0] = sig.p;
	/* the header name is looked up case-insensitively by the HTTP layer */
	assert_int_equal(wa->verify(&channel, &wh), 0);
	/* a channel without a secret accepts nothing, not even a "valid" signature */
	no_secret.app_secret = NULL;
	assert_int_equal(wa->verify(&no_secret, &wh), -EPERM);
	req.values[0] = "";
	assert_int_equal(wa->verify(&channel, &wh), -EPERM);
	req.values[0] = "sha256=";
	assert_int_equal(wa->verify(&channel, &wh), -EPERM);
	/* the right signature with one trailing byte too many */
	hub_buf_adds(&sig, "0");
	req.values[0] = sig.p;
	assert_int_equal(wa->verify(&channel, &wh), -EPERM);
	/* the legacy SHA-1 header alone is not enough */
	req.names[0] = "X-Hub-Signature";
	assert_int_equal(wa->verify(&channel, &wh), -EPERM);
	hub_buf_release(&sig);
	hub_buf_release(&body);
}

static void test_handshake_edge_cases(void **state)
{
	const struct hub_adapter *wa = hub_adapter_find("whatsapp");
	struct hub_channel no_token = channel;
	struct hub_str reply = HUB_STR_NULL;
	char long_challenge[300];
	struct fake_req q = { { "hub.mode", "hub.verify_token", "hub.challenge" },
			      { "subscribe", "test-verify-token", long_challenge } };
	struct hub_webhook wh = { HUB_STR_NULL, fake_lookup, fake_lookup, &q };

	(void)state;
	memset(long_challenge, '7', sizeof(long_challenge) - 1);
	long_challenge[sizeof(long_challenge) - 1] = '\0';
	assert_int_equal(wa->handshake(&channel, &wh, &reply), -EBADMSG);
	q.values[2] = "";
	assert_int_equal(wa->handshake(&channel, &wh, &reply), -EBADMSG);
	q.values[2] = "42";
	no_token.verify_token = NULL;
	assert_int_equal(wa->handshake(&no_token, &wh, &reply), -EPERM);
	q.values[1] = "";
	assert_int_equal(wa->handshake(&channel, &wh, &reply), -EPERM);
	q.values[1] = "TEST-VERIFY-TOKEN";
	assert_int_equal(wa->handshake(&channel, &wh, &reply), -EPERM);
}

/* One fixture through the adapter with the demo channel. */
static void parse_fixture(const char *name, struct hub_pool *pool, struct hub_buf *body,
			  struct hub_event_list *ev)
{
	*body = read_fixture(name);
	assert_int_equal(parse(body->p, &channel, pool, ev), 0);
}

static void test_fields_beyond_the_json_line(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf b[8];
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	parse_fixture("location.json", &pool, &b[0], &ev);
	m = &ev.items[0].msg;
	assert_true(m->location.present);
	assert_true(m->location.lat > 43.25 && m->location.lat < 43.26);
	assert_true(hub_str_eqs(m->location.address, "Dostyk Ave 5, Almaty 050010"));

	parse_fixture("contacts.json", &pool, &b[1], &ev);
	assert_int_equal(ev.n, 1);
	m = &ev.items[0].msg;
	assert_int_equal(m->type, HUB_MSG_CONTACT);
	assert_true(hub_str_eqs(m->contact.name, "Daniyar Seitkali"));
	assert_true(hub_str_eqs(m->contact.phone, "+7 701 555 12 34"));

	parse_fixture("echo_text.json", &pool, &b[2], &ev);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_ECHO);
	m = &ev.items[0].msg;
	assert_true(hub_str_eqs(m->recipient_external_id, "77011234567"));
	assert_true(hub_str_eqs(m->sender_external_id, "15550783881"));
	assert_int_equal(m->sender_phone.len, 0);

	parse_fixture("echo_user_id.json", &pool, &b[3], &ev);
	assert_true(hub_str_eqs(ev.items[0].msg.recipient_external_id, "KZ.1502576394655843"));

	parse_fixture("edit.json", &pool, &b[4], &ev);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_EDIT);
	m = &ev.items[0].msg;
	assert_true(hub_str_eqs(m->external_id,
				"wamid.HBgLNzcwMTEyMzQ1NjcVAgASGBQzQTg0019RjM2MjQ4QUQ1QjQA"));
	assert_true(hub_str_eqs(m->dedupe_key,
				"wamid.HBgLNzcwMTEyMzQ1NjcVAgASGBQzQTg0025RjM2MjQ4QUQ1QjQA"));
	assert_true(hub_str_eqs(m->text, "And in dark blue?"));

	parse_fixture("revoke.json", &pool, &b[5], &ev);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_DELETE);
	m = &ev.items[0].msg;
	assert_true(hub_str_eqs(m->external_id,
				"wamid.HBgLNzcwMTEyMzQ1NjcVAgASGBQzQTg0019RjM2MjQ4QUQ1QjQA"));
	assert_true(hub_str_eqs(m->dedupe_key,
				"wamid.HBgLNzcwMTEyMzQ1NjcVAgASGBQzQTg0027RjM2MjQ4QUQ1QjQA"));

	parse_fixture("reaction_removed.json", &pool, &b[6], &ev);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_REACTION);
	m = &ev.items[0].msg;
	assert_int_equal(m->text.len, 0);
	assert_true(hub_str_eqs(m->reply_to_external_id,
				"wamid.HBgLNzcwMTEyMzQ1NjcVAgASGBQzQTg0904RjM2MjQ4QUQ1QjQA"));
	assert_true(hub_str_eqs(m->external_id,
				"wamid.HBgLNzcwMTEyMzQ1NjcVAgASGBQzQTg0017RjM2MjQ4QUQ1QjQA"));

	parse_fixture("voice.json", &pool, &b[7], &ev);
	assert_int_equal(ev.items[0].msg.type, HUB_MSG_AUDIO);
	assert_true(hub_str_eqs(ev.items[0].msg.raw_type, "voice"));
	for (size_t i = 0; i < HUB_ARRAY_SIZE(b); i++)
		hub_buf_release(&b[i]);
	hub_pool_release(&pool);
}

static void test_business_scoped_user_ids(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	/* no phone: the user id is the sender, no phone, name and username from the card */
	assert_int_equal(parse(WRAP("106540352242922",
				    "\"contacts\":[{\"profile\":{\"name\":\"K\",\"username\":"
				    "\"@k.r\"},\"user_id\":\"US.13491208655302741918\"}],"
				    "\"messages\":[{\"from_user_id\":\"US.13491208655302741918\","
				    "\"id\":\"w1\",\"timestamp\":\"1\",\"type\":\"text\","
				    "\"text\":{\"body\":\"a\"}}]"),
			       &channel, &pool, &ev),
			 0);
	assert_int_equal(ev.n, 1);
	m = &ev.items[0].msg;
	assert_true(hub_str_eqs(m->sender_external_id, "US.13491208655302741918"));
	assert_int_equal(m->sender_phone.len, 0);
	assert_true(hub_str_eqs(m->sender_profile_name, "K"));
	assert_true(hub_str_eqs(m->sender_username, "@k.r"));
	/* both: the user id is the identity, the phone an attribute; the card matches either */
	assert_int_equal(parse(WRAP("106540352242922",
				    "\"contacts\":[{\"profile\":{\"name\":\"Other\"},"
				    "\"wa_id\":\"16505550000\"},{\"profile\":{\"name\":\"Me\"},"
				    "\"user_id\":\"US.1\"}],"
				    "\"messages\":[{\"from\":\"77011234567\",\"from_user_id\":\"US.1\","
				    "\"id\":\"w1\",\"timestamp\":\"1\",\"type\":\"text\","
				    "\"text\":{\"body\":\"a\"}}]"),
			       &channel, &pool, &ev),
			 0);
	m = &ev.items[0].msg;
	assert_true(hub_str_eqs(m->sender_external_id, "US.1"));
	assert_true(hub_str_eqs(m->sender_phone, "+77011234567"));
	assert_true(hub_str_eqs(m->sender_profile_name, "Me"));
	/* neither id: malformed, even with a single card */
	assert_int_equal(parse(WRAP("106540352242922",
				    "\"contacts\":[{\"profile\":{\"name\":\"Me\"},\"wa_id\":\"7701\"}],"
				    "\"messages\":[{\"id\":\"w1\",\"timestamp\":\"1\",\"type\":\"text\","
				    "\"text\":{\"body\":\"a\"}}]"),
			       &channel, &pool, &ev),
			 0);
	assert_int_equal(ev.n, 0);
	assert_int_equal(ev.bad, 1);
	/* a status to a user without a phone */
	assert_int_equal(parse(WRAP("106540352242922",
				    "\"statuses\":[{\"id\":\"s1\",\"status\":\"read\",\"timestamp\":"
				    "\"2\",\"recipient_user_id\":\"US.1\"}]"),
			       &channel, &pool, &ev),
			 0);
	assert_true(hub_str_eqs(ev.items[0].status.recipient, "US.1"));
	assert_true(ev.items[0].status.platform_ts == 2000);
	hub_pool_release(&pool);
}

static void test_bad_items_are_counted_and_others_kept(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf body;
	struct hub_event_list ev;

	(void)state;
	parse_fixture("batch_bad_items.json", &pool, &body, &ev);
	/* kept: two texts and one status; bad: no id, body 42, a string item, no sender, a
	 * reaction without message_id, a status without id; ignored: status "deleted" */
	assert_int_equal(ev.n, 3);
	assert_int_equal(ev.bad, 6);
	assert_int_equal(ev.ignored, 1);
	assert_true(hub_str_eqs(ev.items[0].msg.text, "kept"));
	assert_true(hub_str_eqs(ev.items[1].msg.text, "also kept"));
	assert_int_equal(ev.items[2].kind, HUB_EVENT_STATUS);
	hub_buf_release(&body);

	parse_fixture("group_message.json", &pool, &body, &ev);
	assert_int_equal(ev.n, 0);
	assert_int_equal(ev.bad, 0);
	assert_int_equal(ev.ignored, 1);
	hub_buf_release(&body);

	parse_fixture("other_fields.json", &pool, &body, &ev);
	assert_int_equal(ev.n, 0);
	assert_int_equal(ev.ignored, 2);
	hub_buf_release(&body);
	hub_pool_release(&pool);
}

static void test_wrong_shapes(void **state)
{
	static const struct {
		const char *body;
		size_t n, bad;
	} cases[] = {
		/* messages is not an array: one bad item */
		{ WRAP("106540352242922", "\"messages\":{}"), 0, 1 },
		{ WRAP("106540352242922", "\"messages\":null,\"statuses\":[]"), 0, 0 },
		/* from as a number (ids are strings on WhatsApp) */
		{ WRAP("106540352242922", "\"messages\":[{\"from\":77011234567,\"id\":\"w\","
					  "\"type\":\"text\",\"text\":{\"body\":\"a\"}}]"), 0, 1 },
		/* text of the wrong type, missing body, text missing */
		{ WRAP("106540352242922", "\"messages\":[{\"from\":\"7701\",\"id\":\"w\","
					  "\"type\":\"text\",\"text\":\"a\"},{\"from\":\"7701\","
					  "\"id\":\"w2\",\"type\":\"text\",\"text\":{}},{\"from\":"
					  "\"7701\",\"id\":\"w3\",\"type\":\"text\"}]"), 0, 3 },
		/* media without its object still shows as media; a huge type name is
		 * unsupported */
		{ WRAP("106540352242922", "\"messages\":[{\"from\":\"7701\",\"id\":\"w\","
					  "\"type\":\"image\"},{\"from\":\"7701\",\"id\":\"w2\","
					  "\"type\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
					  "aaaaaaaaaaaaaaaaaaaaaa\"}]"), 2, 0 },
		/* edits and revokes without their original id, an edit of an edit, an edit
		 * without message */
		{ WRAP("106540352242922",
		       "\"messages\":[{\"from\":\"7701\",\"id\":\"w\",\"type\":\"revoke\","
		       "\"revoke\":{}},{\"from\":\"7701\",\"id\":\"w2\",\"type\":\"edit\","
		       "\"edit\":{\"message\":{\"type\":\"text\",\"text\":{\"body\":\"x\"}}}},"
		       "{\"from\":\"7701\",\"id\":\"w3\",\"type\":\"edit\",\"edit\":{"
		       "\"original_message_id\":\"w\",\"message\":{\"type\":\"edit\",\"edit\":{}}}},"
		       "{\"from\":\"7701\",\"id\":\"w4\",\"type\":\"edit\",\"edit\":{"
		       "\"original_message_id\":\"w\"}}]"), 0, 4 },
		/* an edit whose message has no type but a text */
		{ WRAP("106540352242922",
		       "\"messages\":[{\"from\":\"7701\",\"id\":\"w\",\"type\":\"edit\","
		       "\"edit\":{\"original_message_id\":\"w0\",\"message\":{\"text\":"
		       "{\"body\":\"x\"}}}}]"), 1, 0 },
		/* statuses: no status, a number id, an unknown status (ignored, not bad) */
		{ WRAP("106540352242922", "\"statuses\":[{\"id\":\"s\"},{\"id\":5,\"status\":"
					  "\"read\"},{\"id\":\"s\",\"status\":\"warning\"}]"), 0, 2 },
		/* changes not an array, an entry that is not an object */
		{ "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":5},7]}", 0,
		  2 },
		/* a messages change whose value is not an object */
		{ "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
		  "\"messages\",\"value\":[]},3]}]}", 0, 2 },
	};
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;

	(void)state;
	for (size_t i = 0; i < HUB_ARRAY_SIZE(cases); i++) {
		assert_int_equal(parse(cases[i].body, &channel, &pool, &ev), 0);
		if (ev.n != cases[i].n || ev.bad != cases[i].bad)
			fail_msg("case %zu: %zu events, %zu bad", i, ev.n, ev.bad);
	}
	hub_pool_release(&pool);
}

static void test_account_checked_per_change(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;
	struct hub_err err = HUB_ERR_INIT;
	const char *two =
		"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":["
		"{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":"
		"\"106540352242922\"},\"statuses\":[]}},"
		"{\"field\":\"smb_message_echoes\",\"value\":{\"metadata\":{\"phone_number_id\":"
		"\"1065403522429220\"},\"message_echoes\":[]}}]}]}";

	(void)state;
	assert_int_equal(parse(two, &channel, &pool, &ev), -EACCES);
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(hub_adapter_find("whatsapp")->parse_webhook(&pool, &channel,
								    hub_str_from(two), &ev, &err),
			 -EACCES);
	assert_non_null(strstr(err.msg, "phone_number_id"));
	/* no metadata at all: not provably ours */
	assert_int_equal(parse("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":"
			       "[{\"field\":\"messages\",\"value\":{\"messages\":[]}}]}]}",
			       &channel, &pool, &ev),
			 -EACCES);
	/* the second entry of a batch names another account */
	assert_int_equal(parse("{\"object\":\"whatsapp_business_account\",\"entry\":["
			       "{\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":"
			       "{\"phone_number_id\":\"106540352242922\"}}}]},"
			       "{\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":"
			       "{\"phone_number_id\":\"5\"}}}]}]}",
			       &channel, &pool, &ev),
			 -EACCES);
	/* other fields carry no metadata and are not checked */
	assert_int_equal(parse("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":"
			       "[{\"field\":\"account_update\",\"value\":{}}]}]}",
			       &channel, &pool, &ev),
			 0);
	hub_pool_release(&pool);
}

static void test_huge_ids_survive(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf body;
	struct hub_event_list ev;
	struct hub_channel big = channel;

	(void)state;
	big.account_id = "18446744073709551617";
	body = read_fixture("huge_ids.json");
	assert_int_equal(parse(body.p, &channel, &pool, &ev), -EACCES);
	assert_int_equal(parse(body.p, &big, &pool, &ev), 0);
	assert_int_equal(ev.n, 2);
	assert_true(hub_str_eqs(ev.items[0].msg.sender_external_id, "9007199254740993"));
	/* 16 digits are no E.164 number: the id stays, the phone is empty */
	assert_int_equal(ev.items[0].msg.sender_phone.len, 0);
	assert_true(hub_str_eqs(ev.items[1].status.error, "9007199254740993 Huge code"));
	hub_buf_release(&body);
	hub_pool_release(&pool);
}

static void test_echo_needs_a_recipient(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;

	(void)state;
	assert_int_equal(parse("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":"
			       "[{\"field\":\"smb_message_echoes\",\"value\":{\"metadata\":"
			       "{\"phone_number_id\":\"106540352242922\"},\"message_echoes\":["
			       "{\"from\":\"15550783881\",\"id\":\"e1\",\"type\":\"text\","
			       "\"text\":{\"body\":\"x\"}},"
			       "{\"from\":\"15550783881\",\"to\":\"77011234567\",\"id\":\"e2\","
			       "\"type\":\"reaction\",\"reaction\":{\"message_id\":\"w9\","
			       "\"emoji\":\"\\u2764\"}},"
			       "{\"from\":\"15550783881\",\"to\":\"77011234567\",\"to_user_id\":"
			       "\"KZ.1\",\"id\":\"e3\",\"type\":\"text\","
			       "\"text\":{\"body\":\"x\"}}]}}]}]}",
			       &channel, &pool, &ev),
			 0);
	assert_int_equal(ev.bad, 1);
	assert_int_equal(ev.n, 2);
	/* the business's reaction from the app: a reaction with a recipient */
	assert_int_equal(ev.items[0].kind, HUB_EVENT_REACTION);
	assert_true(hub_str_eqs(ev.items[0].msg.recipient_external_id, "77011234567"));
	assert_true(hub_str_eqs(ev.items[0].msg.text, "\xe2\x9d\xa4"));
	/* both ids: the BSUID is the customer, as for the customer's own messages */
	assert_int_equal(ev.items[1].kind, HUB_EVENT_ECHO);
	assert_true(hub_str_eqs(ev.items[1].msg.recipient_external_id, "KZ.1"));
	hub_pool_release(&pool);
}

/* The opening of one messages change, for bodies built in a test. */
static void change_open(struct hub_buf *b)
{
	hub_buf_adds(b, "{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
		     "\"metadata\":{\"phone_number_id\":\"106540352242922\"},");
}

/* A text message from phone (and from_user_id uid when not NULL). */
static void add_message(struct hub_buf *b, int i, long long phone, const char *uid)
{
	hub_buf_addf(b, "%s{\"from\":\"%lld\",", i ? "," : "", phone);
	if (uid)
		hub_buf_addf(b, "\"from_user_id\":\"%s\",", uid);
	hub_buf_addf(b, "\"id\":\"w%d\",\"type\":\"text\",\"text\":{\"body\":"
		     "\"Is it in stock?\"}}", i);
}

/*
 * A signed 1.1 MB body of one change with 8,000 messages and 95,000 contacts took 12-18 s
 * when every message scanned every contact. One change now holds 1,000 items and 1,000
 * contacts (Meta sends up to 1,000 updates per POST): the rest count as bad, the first
 * 1,000 messages are kept with their senders' names found through the index.
 */
static void test_huge_change_is_capped_and_quick(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf body = HUB_BUF_INIT;
	struct hub_event_list ev;
	clock_t start;
	double secs;

	(void)state;
	hub_buf_adds(&body, "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
			    "\"changes\":[");
	change_open(&body);
	/* 1,000 real cards in reverse order, then 94,000 empty ones (an object costs one
	 * token: the body stays under the parser's token limit, as the attack's did) */
	hub_buf_adds(&body, "\"contacts\":[");
	for (int k = 0; k < 95000; k++) {
		if (k < 1000)
			hub_buf_addf(&body, "%s{\"profile\":{\"name\":\"N%d\"},\"wa_id\":\"%lld\"}",
				     k ? "," : "", 999 - k, 77010000000LL + 999 - k);
		else
			hub_buf_adds(&body, ",{}");
	}
	/* message i comes from phone i * 7 % 1200: a card when below 1,000 */
	hub_buf_adds(&body, "],\"messages\":[");
	for (int i = 0; i < 8000; i++)
		add_message(&body, i, 77010000000LL + i * 7 % 1200, NULL);
	hub_buf_adds(&body, "]}}]}]}");
	assert_true(body.len > 1000000);

	start = clock();
	assert_int_equal(parse(body.p, &channel, &pool, &ev), 0);
	secs = (double)(clock() - start) / CLOCKS_PER_SEC;
	assert_int_equal(ev.n, 1000);
	assert_int_equal(ev.bad, 7000 + 94000);
	for (int i = 0; i < 1000; i++) {
		const struct hub_inbound_msg *m = &ev.items[i].msg;
		char id[16], name[16];
		int k = i * 7 % 1200;

		snprintf(id, sizeof(id), "w%d", i);
		snprintf(name, sizeof(name), "N%d", k);
		assert_true(hub_str_eqs(m->external_id, id));
		if (k < 1000 ? !hub_str_eqs(m->sender_profile_name, name)
			     : m->sender_profile_name.len != 0)
			fail_msg("message %d: sender name \"%.*s\"", i,
				 HUB_STR_FMT(m->sender_profile_name));
	}
	/* loosely: it took 12-18 s before; about a millisecond now */
	if (secs > 2.0)
		fail_msg("parsing took %.1f s", secs);
	hub_buf_release(&body);
	hub_pool_release(&pool);
}

/* 8 changes of 1,000 messages and 1,000 cards each (the most a change holds): every
 * sender is found by wa_id or by user_id, as the scan found them. */
static void test_contacts_index_finds_every_sender(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf body = HUB_BUF_INIT;
	struct hub_event_list ev;

	(void)state;
	hub_buf_adds(&body, "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
			    "\"changes\":[");
	for (int ch = 0; ch < 8; ch++) {
		hub_buf_adds(&body, ch ? "," : "");
		change_open(&body);
		/* card k: phone k, user id "KZ.<change>.<k>" for odd k */
		hub_buf_adds(&body, "\"contacts\":[");
		for (int k = 0; k < 1000; k++) {
			hub_buf_addf(&body, "%s{\"profile\":{\"name\":\"C%d.%d\"},\"wa_id\":"
				     "\"%lld\"", k ? "," : "", ch, k, 77010000000LL + k);
			if (k % 2)
				hub_buf_addf(&body, ",\"user_id\":\"KZ.%d.%d\"", ch, k);
			hub_buf_adds(&body, "}");
		}
		/* message i: from card (i * 13 + ch) % 1000, by user id when it has one */
		hub_buf_adds(&body, "],\"messages\":[");
		for (int i = 0; i < 1000; i++) {
			int k = (i * 13 + ch) % 1000;
			char uid[24];

			snprintf(uid, sizeof(uid), "KZ.%d.%d", ch, k);
			add_message(&body, i, 77010000000LL + k, k % 2 ? uid : NULL);
		}
		hub_buf_adds(&body, "]}}");
	}
	hub_buf_adds(&body, "]}]}");
	assert_int_equal(parse(body.p, &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 8000);
	assert_int_equal(ev.bad, 0);
	for (int ch = 0; ch < 8; ch++) {
		for (int i = 0; i < 1000; i++) {
			const struct hub_inbound_msg *m = &ev.items[ch * 1000 + i].msg;
			int k = (i * 13 + ch) % 1000;
			char name[24];

			snprintf(name, sizeof(name), "C%d.%d", ch, k);
			if (!hub_str_eqs(m->sender_profile_name, name))
				fail_msg("change %d message %d: \"%.*s\", not %s", ch, i,
					 HUB_STR_FMT(m->sender_profile_name), name);
		}
	}
	hub_buf_release(&body);
	hub_pool_release(&pool);
}

/* The first card in contacts[] order that matches by wa_id or by user_id wins, as before
 * the index; messages, statuses and echoes share one change's 1,000 items. */
static void test_contacts_first_match_and_item_cap(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf body = HUB_BUF_INIT;
	struct hub_event_list ev;

	(void)state;
	assert_int_equal(parse(WRAP("106540352242922",
				    "\"contacts\":[{\"profile\":{\"name\":\"ByUid\"},"
				    "\"user_id\":\"US.1\"},{\"profile\":{\"name\":"
				    "\"First\"},\"wa_id\":\"7701\"},{\"profile\":"
				    "{\"name\":\"Second\"},\"wa_id\":\"7701\"},{\"profile\":"
				    "{\"name\":\"Esc\"},\"wa_id\":\"\\u0037702\"}],"
				    "\"messages\":[{\"from\":\"7701\",\"id\":\"w1\","
				    "\"type\":\"text\",\"text\":{\"body\":\"a\"}},"
				    "{\"from\":\"7701\",\"from_user_id\":\"US.1\",\"id\":"
				    "\"w2\",\"type\":\"text\",\"text\":{\"body\":\"a\"}},"
				    "{\"from\":\"7702\",\"id\":\"w3\",\"type\":\"text\","
				    "\"text\":{\"body\":\"a\"}},{\"from\":\"7703\",\"id\":"
				    "\"w4\",\"type\":\"text\",\"text\":{\"body\":\"a\"}}]"),
			       &channel, &pool, &ev),
			 0);
	assert_int_equal(ev.n, 4);
	assert_true(hub_str_eqs(ev.items[0].msg.sender_profile_name, "First"));
	assert_true(hub_str_eqs(ev.items[1].msg.sender_profile_name, "ByUid"));
	assert_true(hub_str_eqs(ev.items[2].msg.sender_profile_name, "Esc"));
	assert_int_equal(ev.items[3].msg.sender_profile_name.len, 0);

	/* 600 messages and 600 statuses in one change: the last 200 statuses are bad */
	hub_buf_adds(&body, "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[");
	change_open(&body);
	hub_buf_adds(&body, "\"messages\":[");
	for (int i = 0; i < 600; i++)
		add_message(&body, i, 77011234567LL, NULL);
	hub_buf_adds(&body, "],\"statuses\":[");
	for (int i = 0; i < 600; i++)
		hub_buf_addf(&body, "%s{\"id\":\"s%d\",\"status\":\"read\"}", i ? "," : "", i);
	hub_buf_adds(&body, "]}}]}]}");
	assert_int_equal(parse(body.p, &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 1000);
	assert_int_equal(ev.bad, 200);
	assert_true(hub_str_eqs(ev.items[999].status.external_id, "s399"));
	hub_buf_release(&body);
	hub_pool_release(&pool);
}

static void test_phone_normalize(void **state)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "8 701 123 45 67", "+77011234567" },  { "+7 (701) 123-45-67", "+77011234567" },
		{ "77011234567", "+77011234567" },      { "87011234567", "+77011234567" },
		{ "701 123 45 67", "+77011234567" },    { "+16505551234", "+16505551234" },
		{ "16505551234", "+16505551234" },      { "+44 20 7946 0958", "+442079460958" },
		{ "8 (7172) 55-12-34", "+77172551234" },
	};
	static const char *const bad[] = { "", "12345", "+7 701 abc", "0701123456",
					   "+1234567890123456", "++77011234567", "7701-12345-67x" };
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_str out;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(hub_phone_normalize(&pool, hub_str_from(ok[i].in), &out), 0);
		assert_true(hub_str_eqs(out, ok[i].out));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hub_phone_normalize(&pool, hub_str_from(bad[i]), &out), -EINVAL);
	hub_pool_release(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_parse_text_fixture),
		cmocka_unit_test(test_parse_media_refs),
		cmocka_unit_test(test_parse_status_fixture),
		cmocka_unit_test(test_batch_with_bad_item_and_unknown_type),
		cmocka_unit_test(test_wrong_account_and_bad_bodies),
		cmocka_unit_test(test_verify_edge_cases),
		cmocka_unit_test(test_handshake_edge_cases),
		cmocka_unit_test(test_fields_beyond_the_json_line),
		cmocka_unit_test(test_business_scoped_user_ids),
		cmocka_unit_test(test_bad_items_are_counted_and_others_kept),
		cmocka_unit_test(test_wrong_shapes),
		cmocka_unit_test(test_account_checked_per_change),
		cmocka_unit_test(test_huge_ids_survive),
		cmocka_unit_test(test_echo_needs_a_recipient),
		cmocka_unit_test(test_huge_change_is_capped_and_quick),
		cmocka_unit_test(test_contacts_index_finds_every_sender),
		cmocka_unit_test(test_contacts_first_match_and_item_cap),
		cmocka_unit_test(test_phone_normalize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
