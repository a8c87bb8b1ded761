/* tests/unit/test_whatsapp.c - the WhatsApp adapter over the platform's sample bodies:
 * signatures, the handshake, parsing, the account check; and phone normalization. */
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
		cmocka_unit_test(test_parse_status_fixture),
		cmocka_unit_test(test_batch_with_bad_item_and_unknown_type),
		cmocka_unit_test(test_wrong_account_and_bad_bodies),
		cmocka_unit_test(test_phone_normalize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
