/* tests/unit/test_router.c - lib/router: static and parameter routes, trailing slash,
 * percent-encoded parameters, 404 vs 405, HEAD on GET routes, bad paths. */
#include "lib/router.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

enum { R_HEALTH, R_WA, R_TG, R_MSGS_GET, R_MSGS_POST, R_CONV };

static int setup(void **state)
{
	struct hub_router *r = hub_router_new();
	struct hub_err err = HUB_ERR_INIT;

	assert_int_equal(hub_router_add(r, "GET", "/healthz", &err), R_HEALTH);
	assert_int_equal(hub_router_add(r, "POST", "/webhooks/whatsapp/{channel}", &err), R_WA);
	assert_int_equal(hub_router_add(r, "POST", "/webhooks/telegram/{channel}", &err), R_TG);
	assert_int_equal(hub_router_add(r, "GET", "/api/v1/conversations/{id}/messages", &err),
			 R_MSGS_GET);
	assert_int_equal(hub_router_add(r, "POST", "/api/v1/conversations/{id}/messages", &err),
			 R_MSGS_POST);
	assert_int_equal(hub_router_add(r, "GET", "/api/v1/conversations/{id}", &err), R_CONV);
	*state = r;
	return 0;
}

static int setup_special(void **state)
{
	struct hub_router *r = hub_router_new();
	struct hub_err err = HUB_ERR_INIT;

	/* the parameter route first: the literal must still win */
	assert_int_equal(hub_router_add(r, "GET", "/api/v1/conversations/{id}", &err), 0);
	assert_int_equal(hub_router_add(r, "GET", "/api/v1/conversations/unread", &err), 1);
	assert_int_equal(hub_router_add(r, "GET", "/", &err), 2);
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	hub_router_free(*state);
	return 0;
}

static int match(struct hub_router *r, const char *method, const char *path,
		 struct hub_router_match *m)
{
	return hub_router_match(r, hub_str_from(method), hub_str_from(path), m);
}

static void test_static(void **state)
{
	struct hub_router_match m;

	assert_int_equal(match(*state, "GET", "/healthz", &m), 0);
	assert_int_equal(m.route, R_HEALTH);
	assert_int_equal(m.nparams, 0);
	assert_int_equal(match(*state, "GET", "/healthzz", &m), -ENOENT);
	assert_int_equal(match(*state, "GET", "/health", &m), -ENOENT);
	assert_int_equal(match(*state, "GET", "/HEALTHZ", &m), -ENOENT);
	assert_int_equal(match(*state, "GET", "/", &m), -ENOENT);
	assert_int_equal(m.route, -1);
}

static void test_params(void **state)
{
	struct hub_router_match m;

	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp/demo-wa", &m), 0);
	assert_int_equal(m.route, R_WA);
	assert_int_equal(m.nparams, 1);
	assert_true(hub_str_eqs(m.params[0].name, "channel"));
	assert_true(hub_str_eqs(m.params[0].value, "demo-wa"));

	assert_int_equal(match(*state, "POST", "/webhooks/telegram/t1", &m), 0);
	assert_int_equal(m.route, R_TG);

	assert_int_equal(match(*state, "GET", "/api/v1/conversations/42/messages", &m), 0);
	assert_int_equal(m.route, R_MSGS_GET);
	assert_true(hub_str_eqs(m.params[0].name, "id"));
	assert_true(hub_str_eqs(m.params[0].value, "42"));
	assert_int_equal(match(*state, "POST", "/api/v1/conversations/42/messages", &m), 0);
	assert_int_equal(m.route, R_MSGS_POST);
	assert_int_equal(match(*state, "GET", "/api/v1/conversations/42", &m), 0);
	assert_int_equal(m.route, R_CONV);

	/* a parameter never matches an empty segment, nor several */
	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp//", &m), -ENOENT);
	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp", &m), -ENOENT);
	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp/a/b", &m), -ENOENT);
	assert_int_equal(match(*state, "GET", "/api/v1/conversations//messages", &m), -ENOENT);
}

static void test_literal_beats_param(void **state)
{
	struct hub_router_match m;

	assert_int_equal(match(*state, "GET", "/api/v1/conversations/unread", &m), 0);
	assert_int_equal(m.route, 1);
	assert_int_equal(match(*state, "GET", "/api/v1/conversations/7", &m), 0);
	assert_int_equal(m.route, 0);
	assert_int_equal(match(*state, "GET", "/", &m), 0);
	assert_int_equal(m.route, 2);
}

static void test_trailing_slash(void **state)
{
	struct hub_router_match m;

	assert_int_equal(match(*state, "GET", "/healthz/", &m), 0);
	assert_int_equal(m.route, R_HEALTH);
	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp/demo/", &m), 0);
	assert_true(hub_str_eqs(m.params[0].value, "demo"));
	assert_int_equal(match(*state, "GET", "/healthz//", &m), -ENOENT);
}

static void test_percent_encoded(void **state)
{
	struct hub_router_match m;
	char out[64];
	size_t n;

	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp/demo%20wa%2Fx", &m), 0);
	assert_true(hub_str_eqs(m.params[0].value, "demo%20wa%2Fx"));
	assert_int_equal(hub_router_decode(m.params[0].value, false, out, &n), 0);
	assert_int_equal(n, 9);
	assert_memory_equal(out, "demo wa/x", 9);

	assert_int_equal(hub_router_decode(HUB_STR("a+b%2B%c3%a9"), true, out, &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(out, "a b+\xc3\xa9", 6);
	assert_int_equal(hub_router_decode(HUB_STR("a+b"), false, out, &n), 0);
	assert_memory_equal(out, "a+b", 3);
	assert_int_equal(hub_router_decode(HUB_STR("%"), false, out, &n), -EBADMSG);
	assert_int_equal(hub_router_decode(HUB_STR("%4"), false, out, &n), -EBADMSG);
	assert_int_equal(hub_router_decode(HUB_STR("%zz"), false, out, &n), -EBADMSG);
	assert_int_equal(hub_router_decode(HUB_STR("a%00b"), false, out, &n), -EBADMSG);

	/* bad escapes in the path itself are a bad request */
	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp/demo%2", &m), -EBADMSG);
	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp/a%00", &m), -EBADMSG);
	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp/%gg", &m), -EBADMSG);
}

static void test_404_vs_405(void **state)
{
	struct hub_router_match m;
	char allow[64];

	assert_int_equal(match(*state, "GET", "/webhooks/whatsapp/demo", &m), -EOPNOTSUPP);
	hub_router_allow(*state, HUB_STR("/webhooks/whatsapp/demo"), allow, sizeof(allow));
	assert_string_equal(allow, "POST");
	assert_int_equal(match(*state, "POST", "/healthz", &m), -EOPNOTSUPP);
	hub_router_allow(*state, HUB_STR("/healthz"), allow, sizeof(allow));
	assert_string_equal(allow, "GET, HEAD");
	assert_int_equal(match(*state, "DELETE", "/api/v1/conversations/1/messages", &m),
			 -EOPNOTSUPP);
	hub_router_allow(*state, HUB_STR("/api/v1/conversations/1/messages"), allow,
			 sizeof(allow));
	assert_string_equal(allow, "GET, HEAD, POST");
	hub_router_allow(*state, HUB_STR("/nope"), allow, sizeof(allow));
	assert_string_equal(allow, "");
	assert_int_equal(match(*state, "GET", "/nope", &m), -ENOENT);
	/* truncated, still NUL-terminated */
	hub_router_allow(*state, HUB_STR("/api/v1/conversations/1/messages"), allow, 6);
	assert_string_equal(allow, "GET");
}

static void test_head_on_get(void **state)
{
	struct hub_router_match m;

	assert_int_equal(match(*state, "HEAD", "/healthz", &m), 0);
	assert_int_equal(m.route, R_HEALTH);
	assert_int_equal(match(*state, "HEAD", "/api/v1/conversations/9/messages", &m), 0);
	assert_int_equal(m.route, R_MSGS_GET);
	assert_int_equal(match(*state, "HEAD", "/webhooks/whatsapp/x", &m), -EOPNOTSUPP);
}

static void test_bad_paths(void **state)
{
	struct hub_router_match m;
	char longp[HUB_ROUTER_PATH_MAX + 16];
	char many[200];
	size_t n = 0;

	assert_int_equal(match(*state, "GET", "", &m), -EBADMSG);
	assert_int_equal(match(*state, "GET", "healthz", &m), -EBADMSG);
	assert_int_equal(match(*state, "GET", "*", &m), -EBADMSG);
	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp/..", &m), -EBADMSG);
	assert_int_equal(match(*state, "POST", "/webhooks/../healthz", &m), -EBADMSG);
	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp/a..b", &m), -EBADMSG);
	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp/%2e%2E", &m), -EBADMSG);
	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp/%2e", &m), -EBADMSG);
	assert_int_equal(match(*state, "POST", "/webhooks/whatsapp/.", &m), -EBADMSG);
	assert_int_equal(match(*state, "GET", "/healthz\x01", &m), -EBADMSG);
	assert_int_equal(match(*state, "GET", "/health z", &m), -EBADMSG);
	assert_int_equal(match(*state, "GET", "/healthz?x=1", &m), -EBADMSG);

	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(match(*state, "GET", longp, &m), -ENAMETOOLONG);
	for (int i = 0; i < HUB_ROUTER_MAX_SEGS + 1; i++) {
		many[n++] = '/';
		many[n++] = 'x';
	}
	many[n] = '\0';
	assert_int_equal(match(*state, "GET", many, &m), -ENAMETOOLONG);
}

static void test_bad_patterns(void **state)
{
	struct hub_router *r = hub_router_new();
	struct hub_err err = HUB_ERR_INIT;

	(void)state;
	assert_int_equal(hub_router_add(r, "GET", "healthz", &err), -EINVAL);
	assert_int_equal(hub_router_add(r, "GET", "/a/{x", &err), -EINVAL);
	assert_int_equal(hub_router_add(r, "GET", "/a/x}", &err), -EINVAL);
	assert_int_equal(hub_router_add(r, "GET", "/a/{}", &err), -EINVAL);
	assert_int_equal(hub_router_add(r, "GET", "/a/pre{x}", &err), -EINVAL);
	assert_int_equal(hub_router_add(r, "GET", "/a//b", &err), -EINVAL);
	assert_int_equal(err.code, -EINVAL);
	assert_int_equal(hub_router_add(r, "GET", "/a/{x}/{y}", &err), 0);
	hub_router_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_static, setup, teardown),
		cmocka_unit_test_setup_teardown(test_params, setup, teardown),
		cmocka_unit_test_setup_teardown(test_literal_beats_param, setup_special, teardown),
		cmocka_unit_test_setup_teardown(test_trailing_slash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_percent_encoded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_404_vs_405, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_on_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
		cmocka_unit_test(test_bad_patterns),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
