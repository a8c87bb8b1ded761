/* tests/unit/test_ai_settings.c - the shared rules of channels and their assistants (what
 * hubctl and the admin API both accept): ids, accounts, secrets and their hints, and the
 * admin API's "ai" object turned into hub_channel_ai_set()'s, each bad setting named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "assistant/settings.h"
#include "lib/channel.h"
#include "lib/json.h"

static void test_channel_fields(void **state)
{
	char hint[5];

	(void)state;
	assert_true(hub_channel_id_valid("demo-wa_2", 9));
	assert_false(hub_channel_id_valid("Demo", 4));
	assert_false(hub_channel_id_valid("", 0));
	assert_true(hub_channel_account_valid("106540352242922", 15));
	assert_false(hub_channel_account_valid("1 2", 3));
	assert_true(hub_channel_secret_valid("sk-ünïcode", strlen("sk-ünïcode")));
	assert_false(hub_channel_secret_valid("a\x01z", 3));
	assert_false(hub_channel_secret_valid("\xff\xfe", 2));
	assert_true(hub_channel_telegram_secret_valid("tg_Secret-1", 11));
	assert_false(hub_channel_telegram_secret_valid("not a token!", 12));
	hub_channel_secret_hint("0123456789abcdefWXYZ", 20, hint);
	assert_string_equal(hint, "WXYZ");
	hub_channel_secret_hint("short-secret", 12, hint);
	assert_string_equal(hint, "");
}

static void test_rules(void **state)
{
	long lo, hi;
	int min;

	(void)state;
	assert_true(hub_ai_url_valid("https://api.openai.com", 22));
	assert_true(hub_ai_url_valid("http://127.0.0.1:8080/v1", 24));
	assert_false(hub_ai_url_valid("ftp://x", 7));
	assert_false(hub_ai_url_valid("https://u@h", 11));
	assert_false(hub_ai_url_valid("https://", 8));
	assert_true(hub_ai_int_bounds("history_turns", &lo, &hi));
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 100);
	assert_false(hub_ai_int_bounds("colour", &lo, &hi));
	assert_int_equal(hub_ai_day_of("Sun", 3), 7);
	assert_int_equal(hub_ai_day_of("8", 1), 0);
	assert_true(hub_ai_hhmm("09:30", 5, &min));
	assert_int_equal(min, 570);
	assert_false(hub_ai_hhmm("24:00", 5, &min));
	assert_true(hub_ai_tz_valid("Asia/Almaty", 11));
	assert_false(hub_ai_tz_valid("Asia Almaty", 11));
}

/* The "ai" object of body into set, errors and names. */
static void convert(const char *body, struct hub_buf *set, struct hub_buf *errors,
		    struct hub_buf *names, const char **key, bool *clear)
{
	struct hub_pool *pool = test_malloc(sizeof(*pool));
	struct hub_json_doc doc;

	hub_pool_init(pool);
	assert_int_equal(hub_json_parse(pool, hub_str_from(body), 256, &doc, NULL), 0);
	hub_ai_settings_from_json(&doc, hub_json_get(&doc, 0, "ai"), pool, set, errors, names,
				  key, clear);
	if (*key)
		*key = strcmp(*key, "sk-0123456789abcdef") == 0 ? "sk-0123456789abcdef" : "?";
	hub_pool_release(pool);
	test_free(pool);
}

static void test_ai_object(void **state)
{
	struct hub_buf set = HUB_BUF_INIT, errors = HUB_BUF_INIT, names = HUB_BUF_INIT;
	const char *key;
	bool clear;

	(void)state;
	convert("{\"ai\":{\"enabled\":true,\"model\":\"m\",\"quiet_ms\":1500,\"temperature\":null,"
		"\"api_key\":\"sk-0123456789abcdef\",\"handoff_phrases\":[\"оператор\"],"
		"\"disclosure\":{\"RU\":\"Я бот\"},\"hours\":{\"tz\":\"Asia/Almaty\","
		"\"days\":[5,1,1],\"from\":\"09:00\",\"to\":\"18:00\"}}}",
		&set, &errors, &names, &key, &clear);
	assert_string_equal(errors.p, "");
	assert_string_equal(set.p, "\"enabled\":true,\"model\":\"m\",\"quiet_ms\":1500,"
			    "\"temperature\":null,\"handoff_phrases\":[\"оператор\"],"
			    "\"disclosure\":{\"ru\":\"Я бот\"},\"hours\":{\"tz\":\"Asia/Almaty\","
			    "\"days\":[1,5],\"from\":\"09:00\",\"to\":\"18:00\"}");
	assert_string_equal(names.p, "ai.enabled,ai.model,ai.quiet_ms,ai.temperature,"
			    "ai.api_key,ai.handoff_phrases,ai.disclosure,ai.hours");
	assert_string_equal(key, "sk-0123456789abcdef");
	assert_false(clear);

	hub_buf_reset(&set);
	hub_buf_reset(&errors);
	hub_buf_reset(&names);
	convert("{\"ai\":{\"base_url\":\"ftp://x\",\"history_turns\":0,\"temperature\":3,"
		"\"api_key\":null,\"disclosure\":{\"de\":\"x\"},\"hours\":{\"tz\":\"X\","
		"\"days\":[],\"from\":\"09:00\",\"to\":\"18:00\"},\"x\\\"y\":1}}",
		&set, &errors, &names, &key, &clear);
	assert_string_equal(set.p, "");
	assert_true(clear);
	assert_null(key);
	for (const char *f = "ai.base_url\0ai.history_turns\0ai.temperature\0ai.disclosure\0"
			     "ai.hours\0ai.x__y\0"; *f; f += strlen(f) + 1)
		assert_non_null(strstr(errors.p, f));
	hub_buf_release(&set);
	hub_buf_release(&errors);
	hub_buf_release(&names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_channel_fields),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_ai_object),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
