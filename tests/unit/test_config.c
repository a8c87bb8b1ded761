/* tests/unit/test_config.c - the config table walker: values, defaults, every error with
 * file:line:col and key path, secrets from the environment and files, redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

#define BASE_DB "\"database\": {\"url\": \"postgresql:///hub\"},\n"
#define BASE_AUTH "\"auth\": {\"jwt_secret\": \"0123456789abcdef0123\"}"

static struct hub_config *parse_ok(const char *text)
{
	struct hub_buf errors = HUB_BUF_INIT;
	struct hub_config *cfg = NULL;
	int ret = hub_config_parse("t.json", hub_str_from(text), &cfg, &errors);

	if (ret < 0)
		fprintf(stderr, "%s", errors.p);
	assert_int_equal(ret, 0);
	hub_buf_release(&errors);
	return cfg;
}

/* Parses text, expects failure, returns the error text (caller frees). */
static char *parse_fail(const char *text)
{
	struct hub_buf errors = HUB_BUF_INIT;
	struct hub_config *cfg = NULL;

	assert_int_equal(hub_config_parse("t.json", hub_str_from(text), &cfg, &errors), -EINVAL);
	assert_null(cfg);
	return hub_buf_detach(&errors, NULL);
}

static void test_defaults_and_values(void **state)
{
	struct hub_config *cfg;
	const struct hub_settings *s;

	(void)state;
	cfg = parse_ok("{" BASE_DB "\"http\": {\"body_max\": 2048, \"listen\": \"[::1]:9000\"},\n"
		       BASE_AUTH ", \"log\": {\"level\": \"debug\"}}");
	s = hub_config_settings(cfg);
	assert_int_equal(s->http.body_max, 2048);
	assert_string_equal(s->http.listen, "[::1]:9000");
	assert_int_equal(s->http.header_max, 16 << 10);
	assert_int_equal(s->http.idle_timeout_ms, 60000);
	assert_int_equal(s->log.level, HUB_LOG_DEBUG);
	assert_string_equal(s->database.url, "postgresql:///hub");
	assert_int_equal(s->database.pool_size, 8);
	assert_null(s->redis.url);
	assert_int_equal(s->ws.auth_timeout_ms, 5000);
	assert_null(hub_config_channel_at(cfg, 0));
	hub_config_unref(cfg);
}

static void test_every_error_is_reported_with_position(void **state)
{
	char *errors;

	(void)state;
	errors = parse_fail("{\n"
			    "  \"http\": {\"body_max\": 10, \"bogus\": 1, \"listen\": \"host\"},\n"
			    "  \"log\": {\"level\": 3},\n"
			    "  \"database\": {\"pool_size\": \"8\"},\n"
			    "  \"extra\": true\n"
			    "}\n");
	assert_non_null(strstr(errors,
			       "t.json:2:24: http.body_max: must be between 1024 and 67108864\n"));
	assert_non_null(strstr(errors, "t.json:2:28: http.bogus: unknown key\n"));
	assert_non_null(strstr(errors, "t.json:2:50: http.listen: must be IP:PORT"));
	assert_non_null(strstr(errors, "t.json:3:20: log.level: must be a string\n"));
	assert_non_null(strstr(errors, "t.json:4:29: database.pool_size: must be an integer\n"));
	assert_non_null(strstr(errors, "t.json:5:3: extra: unknown key\n"));
	assert_non_null(strstr(errors, "database.url: required (or set HUB_DATABASE_URL)"));
	assert_non_null(strstr(errors, "auth.jwt_secret: required (or set HUB_JWT_SECRET)"));
	free(errors);
}

static void test_syntax_error_names_line_and_column(void **state)
{
	char *errors;

	(void)state;
	errors = parse_fail("{\n  \"http\": {\"listen\": \"127.0.0.1:1\",}\n}");
	assert_string_equal(errors, "t.json:2:36: expected a string key\n");
	free(errors);
}

static void test_environment_overrides_secrets(void **state)
{
	struct hub_config *cfg;

	(void)state;
	setenv("HUB_DATABASE_URL", "postgresql://env/hub", 1);
	setenv("HUB_JWT_SECRET", "from-the-environment-0123", 1);
	cfg = parse_ok("{" BASE_DB BASE_AUTH "}");
	assert_string_equal(hub_config_settings(cfg)->database.url, "postgresql://env/hub");
	assert_string_equal(hub_config_settings(cfg)->auth.jwt_secret,
			    "from-the-environment-0123");
	hub_config_unref(cfg);
	/* and they satisfy "required" */
	cfg = parse_ok("{}");
	hub_config_unref(cfg);
	unsetenv("HUB_DATABASE_URL");
	unsetenv("HUB_JWT_SECRET");
}

static void test_secret_from_file(void **state)
{
	char path[] = "/tmp/hub-test-secret-XXXXXX";
	int fd = mkstemp(path);
	struct hub_buf text = HUB_BUF_INIT;
	struct hub_config *cfg;
	char *errors;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "file-secret-0123456789\n", 23), 23);
	close(fd);
	hub_buf_addf(&text, "{" BASE_DB "\"auth\": {\"jwt_secret_file\": \"%s\"}}", path);
	cfg = parse_ok(text.p);
	assert_string_equal(hub_config_settings(cfg)->auth.jwt_secret, "file-secret-0123456789");
	hub_config_unref(cfg);
	unlink(path);
	hub_buf_reset(&text);
	hub_buf_addf(&text, "{" BASE_DB "\"auth\": {\"jwt_secret_file\": \"%s\"}}", path);
	errors = parse_fail(text.p);
	assert_non_null(strstr(errors, "auth.jwt_secret_file: cannot read"));
	free(errors);
	errors = parse_fail("{" BASE_DB "\"auth\": {\"jwt_secret\": \"short\"}}");
	assert_non_null(strstr(errors, "auth.jwt_secret: must be at least 16 bytes"));
	free(errors);
	hub_buf_release(&text);
}

static void test_channels_and_tenants(void **state)
{
	struct hub_config *cfg;
	const struct hub_channel *ch;
	char *errors;

	(void)state;
	cfg = parse_ok("{" BASE_DB BASE_AUTH ",\n"
		       "\"tenants\": [{\"id\": \"demo\", \"name\": \"Demo\"}],\n"
		       "\"channels\": [{\"id\": \"demo-whatsapp\", \"tenant\": \"demo\", "
		       "\"kind\": \"whatsapp\", \"account_id\": \"1065\", \"app_secret\": \"s\", "
		       "\"verify_token\": \"v\"}]}");
	ch = hub_config_channel(cfg, HUB_STR("demo-whatsapp"));
	assert_non_null(ch);
	assert_int_equal(ch->kind, HUB_CHANNEL_WHATSAPP);
	assert_string_equal(ch->account_id, "1065");
	assert_true(ch->enabled);
	assert_null(ch->access_token);
	assert_null(hub_config_channel(cfg, HUB_STR("nope")));
	assert_string_equal(hub_config_tenant(cfg, "demo")->name, "Demo");
	hub_config_unref(cfg);

	errors = parse_fail("{" BASE_DB BASE_AUTH ",\n"
			    "\"tenants\": [{\"id\": \"Demo!\", \"name\": \"D\"}],\n"
			    "\"channels\": [{\"id\": \"c\", \"tenant\": \"other\", \"kind\": \"fax\", "
			    "\"account_id\": \"1\", \"app_secret\": \"s\"}, 5]}");
	assert_non_null(strstr(errors, "tenants[0].id: must be 1 to 64 of a-z"));
	assert_non_null(strstr(errors, "channels[0].kind: must be one of whatsapp"));
	assert_non_null(strstr(errors, "channels[0].tenant: no tenant \"other\" in tenants"));
	assert_non_null(strstr(errors, "channels[1]: must be an object"));
	free(errors);
}

static void test_web_channels(void **state)
{
	struct hub_config *cfg;
	const struct hub_channel *ch;
	char *errors;

	(void)state;
	cfg = parse_ok("{" BASE_DB BASE_AUTH ",\n"
		       "\"tenants\": [{\"id\": \"demo\", \"name\": \"Demo\"}],\n"
		       "\"channels\": [{\"id\": \"demo-web\", \"tenant\": \"demo\", "
		       "\"kind\": \"web\", \"account_id\": \"demo-web\", \"app_secret\": \"s\", "
		       "\"web\": {\"origins\": [\"https://shop.kz\"], \"prechat\": true}}],\n"
		       "\"webchat\": {\"text_max\": 500}}");
	ch = hub_config_channel(cfg, HUB_STR("demo-web"));
	assert_non_null(ch);
	assert_int_equal(ch->kind, HUB_CHANNEL_WEB);
	assert_non_null(strstr(ch->web, "https://shop.kz"));
	assert_int_equal(hub_config_settings(cfg)->webchat.text_max, 500);
	assert_int_equal(hub_config_settings(cfg)->webchat.messages_per_min, 30);
	hub_config_unref(cfg);

	errors = parse_fail("{" BASE_DB BASE_AUTH ",\n"
			    "\"tenants\": [{\"id\": \"demo\", \"name\": \"Demo\"}],\n"
			    "\"channels\": [{\"id\": \"a\", \"tenant\": \"demo\", \"kind\": \"web\", "
			    "\"account_id\": \"a\", \"app_secret\": \"s\"},\n"
			    "{\"id\": \"b\", \"tenant\": \"demo\", \"kind\": \"web\", "
			    "\"account_id\": \"b\", \"app_secret\": \"s\", "
			    "\"web\": {\"origins\": [\"https://shop.kz/path\"]}},\n"
			    "{\"id\": \"c\", \"tenant\": \"demo\", \"kind\": \"telegram\", "
			    "\"account_id\": \"1\", \"app_secret\": \"s\", "
			    "\"web\": {\"origins\": [\"https://shop.kz\"]}}]}");
	assert_non_null(strstr(errors, "channels[0].web: required for web channels"));
	assert_non_null(strstr(errors, "channels[1].web: web.origins[0]: must be an origin"));
	assert_non_null(strstr(errors, "channels[2].web: only for web channels"));
	free(errors);
}

static void test_restart_keys_and_redacted_dump(void **state)
{
	struct hub_config *a, *b;
	struct hub_buf out = HUB_BUF_INIT;

	(void)state;
	a = parse_ok("{" BASE_DB BASE_AUTH "}");
	b = parse_ok("{\"database\": {\"url\": \"postgresql:///other\", \"pool_size\": 2},"
		     "\"http\": {\"body_max\": 4096}," BASE_AUTH "}");
	assert_int_equal(hub_config_restart_keys(a, b, &out), 2);
	assert_string_equal(out.p, "database.url, database.pool_size");
	hub_buf_reset(&out);
	hub_config_dump(b, &out);
	assert_null(strstr(out.p, "0123456789abcdef0123"));
	assert_null(strstr(out.p, "postgresql:///other"));
	assert_non_null(strstr(out.p, "\"auth.jwt_secret\":\"<redacted>\""));
	assert_non_null(strstr(out.p, "\"http.body_max\":4096"));
	hub_buf_release(&out);
	hub_config_unref(a);
	hub_config_unref(b);
}

static void test_example_configs_are_valid(void **state)
{
	struct hub_buf errors = HUB_BUF_INIT;
	struct hub_config *cfg = NULL;

	(void)state;
	assert_int_equal(hub_config_load("config/dev.json", &cfg, &errors), 0);
	hub_config_unref(cfg);
	/* The example reads its secrets from files under /etc/hubd; every other key is
	 * valid, so the only complaints are about those files (and what they would fill). */
	assert_int_equal(hub_config_load("config/hubd.example.json", &cfg, &errors), -EINVAL);
	for (char *line = strtok(errors.p, "\n"); line; line = strtok(NULL, "\n"))
		assert_true(strstr(line, "_file: cannot read /etc/hubd/") ||
			    strstr(line, "verify_token: required"));
	hub_buf_release(&errors);
}

static void test_platforms_and_outbound(void **state)
{
	struct hub_config *cfg;
	const struct hub_settings *s;
	char *errors;

	(void)state;
	cfg = parse_ok("{" BASE_DB BASE_AUTH ", \"outbound\": {\"enabled\": false},\n"
		       "\"platforms\": {\"telegram_url\": \"http://127.0.0.1:8442/tg\"}}");
	s = hub_config_settings(cfg);
	assert_false(s->outbound.enabled);
	assert_string_equal(s->platforms.url[HUB_CHANNEL_TELEGRAM], "http://127.0.0.1:8442/tg");
	assert_string_equal(s->platforms.url[HUB_CHANNEL_WHATSAPP], "https://graph.facebook.com");
	assert_null(s->platforms.ca_file);
	hub_config_unref(cfg);
	cfg = parse_ok("{" BASE_DB BASE_AUTH "}");
	assert_true(hub_config_settings(cfg)->outbound.enabled);
	hub_config_unref(cfg);

	errors = parse_fail("{" BASE_DB BASE_AUTH ",\n"
			    "\"outbound\": {\"enabled\": \"yes\"},\n"
			    "\"platforms\": {\"whatsapp_url\": \"ftp://x\", \"telegram_url\": "
			    "\"https://api.telegram.org/\",\n \"instagram_url\": \"https://a b\"}}");
	assert_non_null(strstr(errors, "t.json:3:25: outbound.enabled: must be true or false\n"));
	assert_non_null(strstr(errors, "platforms.whatsapp_url: must be a base URL"));
	assert_non_null(strstr(errors, "platforms.telegram_url: must be a base URL"));
	assert_non_null(strstr(errors, "platforms.instagram_url: must be a base URL"));
	free(errors);
}

#define REDIS_URL "\"url\": \"redis://127.0.0.1:6379\""
#define HMAC_KEY "0123456789abcdef0123456789abcdef-key"

static void test_redis_hmac_key_required_with_url(void **state)
{
	struct hub_config *a, *b;
	struct hub_buf out = HUB_BUF_INIT;
	char *errors;

	(void)state;
	unsetenv("HUB_REDIS_HMAC_KEY");
	unsetenv("HUB_REDIS_HMAC_KEY_ACCEPTED");
	/* no Redis, no key */
	a = parse_ok("{" BASE_DB BASE_AUTH "}");
	assert_null(hub_config_settings(a)->redis.hmac_key);
	assert_null(hub_config_settings(a)->redis.hmac_key_accepted);
	hub_config_unref(a);
	/* Redis without a key, with null, with a short one */
	errors = parse_fail("{" BASE_DB BASE_AUTH ",\n\"redis\": {" REDIS_URL "}}");
	assert_non_null(strstr(errors, "t.json:3:10: redis.hmac_key: required with redis.url "
				       "(or set HUB_REDIS_HMAC_KEY)"));
	free(errors);
	errors = parse_fail("{" BASE_DB BASE_AUTH ",\n\"redis\": {" REDIS_URL
			    ", \"hmac_key\": null}}");
	assert_non_null(strstr(errors, "redis.hmac_key: required with redis.url"));
	free(errors);
	errors = parse_fail("{" BASE_DB BASE_AUTH ",\n\"redis\": {" REDIS_URL ", \"hmac_key\": "
			    "\"short-but-16-bytes\",\n"
			    "\"hmac_key_accepted\": \"0123456789abcdef\"}}");
	assert_non_null(strstr(errors, "redis.hmac_key: must be at least 32 bytes\n"));
	assert_non_null(strstr(errors, "redis.hmac_key_accepted: must be at least 32 bytes\n"));
	assert_null(strstr(errors, "short-but-16-bytes"));
	free(errors);
	/* a file that cannot be read is its own error, not also "required" */
	errors = parse_fail("{" BASE_DB BASE_AUTH ",\n\"redis\": {" REDIS_URL
			    ", \"hmac_key_file\": \"/nonexistent/redis-hmac-key\"}}");
	assert_non_null(strstr(errors, "redis.hmac_key_file: cannot read"));
	assert_null(strstr(errors, "required"));
	free(errors);
	/* given: in the file or the environment; a restart key; redacted */
	a = parse_ok("{" BASE_DB BASE_AUTH ", \"redis\": {" REDIS_URL ", \"hmac_key\": \""
		     HMAC_KEY "\"}}");
	assert_string_equal(hub_config_settings(a)->redis.hmac_key, HMAC_KEY);
	setenv("HUB_REDIS_HMAC_KEY", "from-the-environment-0123456789abcdef", 1);
	setenv("HUB_REDIS_HMAC_KEY_ACCEPTED", "accepted-from-the-environment-0123456789", 1);
	b = parse_ok("{" BASE_DB BASE_AUTH ", \"redis\": {" REDIS_URL "}}");
	unsetenv("HUB_REDIS_HMAC_KEY");
	unsetenv("HUB_REDIS_HMAC_KEY_ACCEPTED");
	assert_string_equal(hub_config_settings(b)->redis.hmac_key,
			    "from-the-environment-0123456789abcdef");
	assert_string_equal(hub_config_settings(b)->redis.hmac_key_accepted,
			    "accepted-from-the-environment-0123456789");
	assert_int_equal(hub_config_restart_keys(a, b, &out), 2);
	assert_string_equal(out.p, "redis.hmac_key, redis.hmac_key_accepted");
	hub_buf_reset(&out);
	hub_config_dump(b, &out);
	assert_null(strstr(out.p, "from-the-environment"));
	assert_non_null(strstr(out.p, "\"redis.hmac_key\":\"<redacted>\""));
	assert_non_null(strstr(out.p, "\"redis.hmac_key_accepted\":\"<redacted>\""));
	hub_buf_release(&out);
	hub_config_unref(a);
	hub_config_unref(b);
}

static void test_metrics_token(void **state)
{
	struct hub_config *a, *b;
	struct hub_buf out = HUB_BUF_INIT;
	char *errors;

	(void)state;
	unsetenv("HUB_METRICS_TOKEN");
	a = parse_ok("{" BASE_DB BASE_AUTH "}");
	assert_null(hub_config_settings(a)->metrics.token); /* open, as for development */
	b = parse_ok("{" BASE_DB BASE_AUTH ", \"metrics\": {\"token\": \"scrape-me-0123456789\"}}");
	assert_string_equal(hub_config_settings(b)->metrics.token, "scrape-me-0123456789");
	/* live: a reload applies it */
	assert_int_equal(hub_config_restart_keys(a, b, &out), 0);
	hub_config_dump(b, &out);
	assert_null(strstr(out.p, "scrape-me"));
	assert_non_null(strstr(out.p, "\"metrics.token\":\"<redacted>\""));
	hub_buf_release(&out);
	hub_config_unref(a);
	hub_config_unref(b);
	setenv("HUB_METRICS_TOKEN", "token-from-the-environment", 1);
	a = parse_ok("{" BASE_DB BASE_AUTH "}");
	unsetenv("HUB_METRICS_TOKEN");
	assert_string_equal(hub_config_settings(a)->metrics.token, "token-from-the-environment");
	hub_config_unref(a);
	errors = parse_fail("{" BASE_DB BASE_AUTH ",\n\"metrics\": {\"token\": \"short\"}}");
	assert_non_null(strstr(errors, "t.json:3:22: metrics.token: must be at least 16 bytes\n"));
	free(errors);
	errors = parse_fail("{" BASE_DB BASE_AUTH ",\n\"metrics\": {\"tokens\": \"x\"}}");
	assert_non_null(strstr(errors, "metrics.tokens: unknown key"));
	free(errors);
}

/* The database's channels beside the file's: a disabled one is kept without its secrets
 * (a deleted channel has none), so that it is known as off; an enabled one without them
 * is not served. */
static void test_with_channels_keeps_disabled_ones(void **state)
{
	struct hub_config *cfg, *snap = NULL;
	const struct hub_channel *ch;
	struct hub_channel db[] = {
		{ .id = "db-on", .tenant = "demo", .kind = HUB_CHANNEL_WHATSAPP,
		  .account_id = "1", .app_secret = "s", .enabled = true },
		{ .id = "db-gone", .tenant = "demo", .kind = HUB_CHANNEL_WHATSAPP,
		  .account_id = "2", .enabled = false },
		{ .id = "db-nosecret", .tenant = "demo", .kind = HUB_CHANNEL_WHATSAPP,
		  .account_id = "3", .enabled = true },
	};

	(void)state;
	cfg = parse_ok("{" BASE_DB BASE_AUTH "}");
	assert_int_equal(hub_config_with_channels(cfg, db, 3, &snap), 1);
	assert_true(hub_config_channel(snap, HUB_STR("db-on"))->enabled);
	ch = hub_config_channel(snap, HUB_STR("db-gone"));
	assert_non_null(ch);
	assert_false(ch->enabled);
	assert_string_equal(ch->app_secret, "");
	assert_null(hub_config_channel(snap, HUB_STR("db-nosecret")));
	hub_config_unref(snap);
	hub_config_unref(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_values),
		cmocka_unit_test(test_platforms_and_outbound),
		cmocka_unit_test(test_every_error_is_reported_with_position),
		cmocka_unit_test(test_syntax_error_names_line_and_column),
		cmocka_unit_test(test_environment_overrides_secrets),
		cmocka_unit_test(test_secret_from_file),
		cmocka_unit_test(test_channels_and_tenants),
		cmocka_unit_test(test_web_channels),
		cmocka_unit_test(test_restart_keys_and_redacted_dump),
		cmocka_unit_test(test_example_configs_are_valid),
		cmocka_unit_test(test_redis_hmac_key_required_with_url),
		cmocka_unit_test(test_metrics_token),
		cmocka_unit_test(test_with_channels_keeps_disabled_ones),
	};
	unsetenv("HUB_DATABASE_URL");
	unsetenv("HUB_JWT_SECRET");
	unsetenv("HUB_REDIS_URL");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
