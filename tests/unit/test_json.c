/* tests/unit/test_json.c - the validating JSON reader and the writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "lib/json.h"

static int parse(const char *text, struct hub_pool *pool, struct hub_json_doc *doc,
		 struct hub_err *err)
{
	return hub_json_parse(pool, hub_str_from(text), 1000, doc, err);
}

static void test_valid_documents(void **state)
{
	static const char *const good[] = {
		"{}", "[]", "0", "-1.5e+3", "\"x\"", "true", "null",
		"{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\"}", " { \"k\" : \"v\" } ",
		"\"Сәлем, Нұрлан\"", "\"ы\xc2\x80\xdf\xbf € 𝄞 ы\"",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct hub_pool pool = HUB_POOL_INIT;
		struct hub_json_doc doc;
		struct hub_err err = HUB_ERR_INIT;
		assert_int_equal(parse(good[i], &pool, &doc, &err), 0);
		hub_pool_release(&pool);
	}
}

static void test_invalid_documents_name_position(void **state)
{
	static const struct {
		const char *text;
		const char *msg;
	} bad[] = {
		{ "", "1:1: unexpected end of input" },
		{ "{\"a\" 1}", "1:6: expected ':'" },
		{ "{\"a\":1,}", "1:8: expected a string key" },
		{ "[1,]", "1:4: unexpected character" },
		{ "{\"a\":1}x", "1:8: trailing characters after the value" },
		{ "\"\\x\"", "1:2: bad escape in string" },
		{ "\"\xff\"", "1:2: invalid UTF-8 in string" },
		{ "\"\xed\xa0\x80\"", "1:2: invalid UTF-8 in string" },
		/* after a run of two-byte characters: an overlong lead, a lead without its
		 * continuation, a lone continuation */
		{ "\"ы\xc1\xbf\"", "1:4: invalid UTF-8 in string" },
		{ "\"ыы\xd1\"", "1:6: invalid UTF-8 in string" },
		{ "\"ы\x80ы\"", "1:4: invalid UTF-8 in string" },
		{ "01", "1:2: trailing characters after the value" },
		{ "tru", "1:1: unexpected character" },
		{ "{\n  \"a\": nul\n}", "2:8: unexpected character" },
		{ "\"a\nb\"", "1:3: control character in string" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hub_pool pool = HUB_POOL_INIT;
		struct hub_json_doc doc;
		struct hub_err err = HUB_ERR_INIT;
		assert_int_equal(parse(bad[i].text, &pool, &doc, &err), -EBADMSG);
		assert_string_equal(err.msg, bad[i].msg);
		hub_pool_release(&pool);
	}
}

static void test_deep_nesting_is_refused(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_json_doc doc;
	struct hub_err err = HUB_ERR_INIT;

	(void)state;
	for (int i = 0; i < 100; i++)
		hub_buf_addch(&b, '[');
	for (int i = 0; i < 100; i++)
		hub_buf_addch(&b, ']');
	assert_int_equal(hub_json_parse(&pool, hub_buf_str(&b), 1000, &doc, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "nested too deeply"));
	hub_buf_release(&b);
	hub_pool_release(&pool);
}

static void test_token_limit(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	struct hub_err err = HUB_ERR_INIT;

	(void)state;
	assert_int_equal(hub_json_parse(&pool, HUB_STR("[1,2,3,4]"), 3, &doc, &err), -EMSGSIZE);
	hub_pool_release(&pool);
}

static void test_lookup_and_values(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_str s;
	int64_t v;
	bool b;
	int n = 0;

	(void)state;
	assert_int_equal(parse("{\"a\":{\"b\":[10,20,30]},\"s\":\"x\\\"y\\ud83d\\ude00\","
			       "\"big\":9223372036854775807,\"over\":9223372036854775808,"
			       "\"f\":1.5,\"t\":true}", &pool, &doc, &err), 0);
	int arr = hub_json_path(&doc, 0, "a", "b", NULL);
	assert_true(hub_json_is(&doc, arr, HUB_JSON_ARRAY));
	for (int k = hub_json_first(&doc, arr); k >= 0; k = hub_json_after(&doc, k)) {
		assert_int_equal(hub_json_int64(&doc, k, &v), 0);
		assert_int_equal(v, 10 * ++n);
	}
	assert_int_equal(n, 3);
	assert_int_equal(hub_json_string(&doc, hub_json_get(&doc, 0, "s"), &pool, &s), 0);
	assert_int_equal(s.len, strlen("x\"y\xf0\x9f\x98\x80"));
	assert_memory_equal(s.p, "x\"y\xf0\x9f\x98\x80", s.len);
	assert_int_equal(hub_json_int64(&doc, hub_json_get(&doc, 0, "big"), &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(hub_json_int64(&doc, hub_json_get(&doc, 0, "over"), &v), -ERANGE);
	assert_int_equal(hub_json_int64(&doc, hub_json_get(&doc, 0, "f"), &v), -EINVAL);
	assert_int_equal(hub_json_bool(&doc, hub_json_get(&doc, 0, "t"), &b), 0);
	assert_true(b);
	assert_int_equal(hub_json_get(&doc, 0, "missing"), -1);
	assert_int_equal(hub_json_get(&doc, arr, "x"), -1);
	hub_pool_release(&pool);
}

static void test_writer_escapes(void **state)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_jw jw;

	(void)state;
	hub_jw_init(&jw, &b);
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "t");
	hub_jw_cstr(&jw, "a\"b\\c\n\x01\xff Ә");
	hub_jw_key(&jw, "n");
	hub_jw_int(&jw, -42);
	hub_jw_key(&jw, "l");
	hub_jw_arr_open(&jw);
	hub_jw_bool(&jw, true);
	hub_jw_null(&jw);
	hub_jw_arr_close(&jw);
	hub_jw_obj_close(&jw);
	assert_string_equal(b.p, "{\"t\":\"a\\\"b\\\\c\\n\\u0001\xef\xbf\xbd Ә\",\"n\":-42,"
				 "\"l\":[true,null]}");
	/* two-byte characters copied in runs; a lead byte without its continuation, an
	 * overlong lead (0xc0, 0xc1), a lone continuation and a surrogate replaced; three-
	 * and four-byte characters kept */
	hub_buf_reset(&b);
	hub_json_add_str(&b, hub_str_from("Сәлем\xd0\xc1\xbf\x80 €𝄞\xed\xa0\x80ы\xd1"));
	assert_string_equal(b.p, "\"Сәлем\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd €𝄞"
				 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdы\xef\xbf\xbd\"");
	hub_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_documents),
		cmocka_unit_test(test_invalid_documents_name_position),
		cmocka_unit_test(test_deep_nesting_is_refused),
		cmocka_unit_test(test_token_limit),
		cmocka_unit_test(test_lookup_and_values),
		cmocka_unit_test(test_writer_escapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
