/* tests/unit/test_webcfg.c - lib/webcfg: a web channel's settings (every key, each refusal
 * naming its key), the Origin match, the signed-in user's hash (as a site computes it),
 * and the visitor tokens (round trip, another channel, forged, malformed). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/err.h"
#include "lib/pool.h"
#include "lib/webcfg.h"

#define SECRET HUB_STR("identity-secret-0123456789")

static int parse(struct hub_pool *pool, const char *json, struct hub_webcfg *c,
		 struct hub_err *err)
{
	return hub_webcfg_parse(pool, hub_str_from(json), c, err);
}

static void test_settings(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_webcfg c;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_buf b = HUB_BUF_INIT;

	(void)state;
	assert_int_equal(parse(&pool, "{\"origins\":[\"https://shop.kz\",\"http://127.0.0.1:8090\"],"
			       "\"title\":\"Shop\",\"color\":\"#0a7cff\",\"greeting\":{\"ru\":"
			       "\"Здравствуйте\",\"kk\":\"Сәлем\"},\"prechat\":true}", &c, &err), 0);
	assert_int_equal(c.norigins, 2);
	assert_string_equal(c.title[0], "Shop");
	assert_string_equal(c.title[2], "Shop");
	assert_string_equal(c.greeting[1], "Сәлем");
	assert_null(c.greeting[2]);
	assert_true(c.prechat);
	assert_true(hub_webcfg_origin_allowed(&c, HUB_STR("http://127.0.0.1:8090")));
	assert_false(hub_webcfg_origin_allowed(&c, HUB_STR("http://127.0.0.1:8091")));
	assert_false(hub_webcfg_origin_allowed(&c, HUB_STR("https://shop.kz.evil.kz")));
	assert_false(hub_webcfg_origin_allowed(&c, HUB_STR_NULL));
	hub_webcfg_public_json(&c, &b);
	assert_non_null(strstr(b.p, "\"prechat\":true"));
	assert_null(strstr(b.p, "origins")); /* not the widget's business */
	hub_buf_release(&b);
	hub_pool_release(&pool);
}

static void test_settings_refused(void **state)
{
	static const struct { const char *json, *names; } bad[] = {
		{ "[]", "web" },
		{ "{}", "web.origins" },
		{ "{\"origins\":[]}", "web.origins" },
		{ "{\"origins\":[\"shop.kz\"]}", "web.origins[0]" },
		{ "{\"origins\":[\"https://shop.kz/\"]}", "web.origins[0]" },
		{ "{\"origins\":[\"https://Shop.kz\"]}", "web.origins[0]" },
		{ "{\"origins\":[\"https://shop.kz\"],\"color\":\"red\"}", "web.color" },
		{ "{\"origins\":[\"https://shop.kz\"],\"title\":{\"de\":\"x\"}}", "web.title.de" },
		{ "{\"origins\":[\"https://shop.kz\"],\"title\":\"\"}", "web.title" },
		{ "{\"origins\":[\"https://shop.kz\"],\"greeting\":{\"ru\":\"a\\u0001\"}}",
		  "web.greeting.ru" },
		{ "{\"origins\":[\"https://shop.kz\"],\"prechat\":\"yes\"}", "web.prechat" },
		{ "{\"origins\":[\"https://shop.kz\"],\"other\":1}", "web.other" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hub_pool pool = HUB_POOL_INIT;
		struct hub_webcfg c;
		struct hub_err err = HUB_ERR_INIT;

		assert_int_equal(parse(&pool, bad[i].json, &c, &err), -EINVAL);
		if (strncmp(err.msg, bad[i].names, strlen(bad[i].names)) != 0)
			fail_msg("%s: \"%s\" does not start with %s", bad[i].json, err.msg,
				 bad[i].names);
		hub_pool_release(&pool);
	}
}

static void test_user_hash(void **state)
{
	/* printf -n user-42 | openssl dgst -sha256 -hmac identity-secret-0123456789 */
	unsigned char mac[HUB_SHA256_LEN];
	char hex[2 * HUB_SHA256_LEN + 1];

	(void)state;
	hub_hmac_sha256(SECRET, HUB_STR("user-42"), mac);
	for (size_t i = 0; i < sizeof(mac); i++)
		snprintf(hex + 2 * i, 3, "%02X", mac[i]);
	assert_true(hub_webcfg_user_hash_ok(SECRET, HUB_STR("user-42"), hub_str_from(hex)));
	hex[0] = hex[0] == '0' ? '1' : '0';
	assert_false(hub_webcfg_user_hash_ok(SECRET, HUB_STR("user-42"), hub_str_from(hex)));
	assert_false(hub_webcfg_user_hash_ok(SECRET, HUB_STR("user-42"), HUB_STR("zz")));
	assert_false(hub_webcfg_user_id_valid(HUB_STR("a b")));
	assert_false(hub_webcfg_user_id_valid(HUB_STR("")));
	assert_true(hub_webcfg_user_id_valid(HUB_STR("crm:42@shop")));
}

static void test_tokens(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf t = HUB_BUF_INIT;
	struct hub_str sender, ch;

	(void)state;
	hub_visitor_token_sign(&t, SECRET, "acme-web", HUB_STR("v:0123456789abcdef"), 1700000000);
	assert_int_equal(hub_visitor_token_verify(&pool, hub_buf_str(&t), SECRET, "acme-web",
						  &sender), 0);
	assert_true(hub_str_eqs(sender, "v:0123456789abcdef"));
	assert_int_equal(hub_visitor_token_channel(hub_buf_str(&t), &ch), 0);
	assert_true(hub_str_eqs(ch, "acme-web"));
	/* another channel's, another secret's, altered, malformed */
	assert_int_equal(hub_visitor_token_verify(&pool, hub_buf_str(&t), SECRET, "other-web",
						  &sender), -EXDEV);
	assert_int_equal(hub_visitor_token_verify(&pool, hub_buf_str(&t), HUB_STR("x"),
						  "acme-web", &sender), -EPERM);
	t.p[t.len - 2] = t.p[t.len - 2] == 'A' ? 'B' : 'A';
	assert_int_equal(hub_visitor_token_verify(&pool, hub_buf_str(&t), SECRET, "acme-web",
						  &sender), -EPERM);
	assert_int_equal(hub_visitor_token_verify(&pool, HUB_STR("wv1.acme-web..1.AAAA"),
						  SECRET, "acme-web", &sender), -EBADMSG);
	assert_int_equal(hub_visitor_token_verify(&pool, HUB_STR("eyJhbGciOi.x.y"), SECRET,
						  "acme-web", &sender), -EBADMSG);
	assert_int_equal(hub_visitor_token_verify(&pool, HUB_STR("wv1.acme-web.djox.1x.AAAA"),
						  SECRET, "acme-web", &sender), -EBADMSG);
	hub_buf_release(&t);
	hub_pool_release(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_settings_refused),
		cmocka_unit_test(test_user_hash),
		cmocka_unit_test(test_tokens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
