/* tests/fuzz/fuzz_config.c - config/config.h's hub_config_parse on any text
 * (`make fuzz-config`). Properties: a refused text is a negative errno with every error on
 * a line of its own in compiler format ("fuzz.json:LINE:COL: "); an accepted one holds its
 * tenants and channels, names no restart key against itself, and dumps as JSON in which
 * every secret is "<redacted>" or null; adding its own
 * channels again leaves none out. The environment's HUB_* overrides are unset, and a text
 * naming a secret file that is not a small regular file under the current folder is skipped
 * (the reader would block on a FIFO or read /dev/zero for ever: that is the operator's
 * choice, not input). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "lib/json.h"
#include "lib/pool.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "config";

#define NAME "fuzz.json"

/* false when a "..._file" key names something the reader should not be pointed at here */
static bool files_ok(struct hub_str text)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	bool ok = true;

	if (hub_json_parse(&pool, text, 1 << 20, &doc, NULL) < 0)
		goto out;
	for (int i = 0; i + 1 < doc.n && ok; i++) {
		struct hub_str key, val;
		struct stat st;
		char *path;

		if (doc.tok[i].type != HUB_JSON_STRING || doc.tok[i].size != 1 ||
		    hub_json_string(&doc, i, &pool, &key) < 0 || key.len < 5 ||
		    memcmp(key.p + key.len - 5, "_file", 5) != 0 ||
		    hub_json_string(&doc, i + 1, &pool, &val) < 0)
			continue;
		path = hub_pool_strndup(&pool, val.p, val.len);
		ok = path[0] && path[0] != '/' && !strstr(path, "..") && stat(path, &st) == 0 &&
		     S_ISREG(st.st_mode) && st.st_size < (1 << 20);
	}
out:
	hub_pool_release(&pool);
	return ok;
}

/* Each line: NAME ":" LINE ":" COL ": " something. */
static void check_errors(struct hub_str e)
{
	size_t i = 0;

	fuzz_check(e.len > 0 && e.p[e.len - 1] == '\n', "errors not ended by a newline");
	while (i < e.len) {
		const char *nl = memchr(e.p + i, '\n', e.len - i);
		struct hub_str line = { e.p + i, (size_t)(nl - (e.p + i)) };
		size_t k = sizeof(NAME);
		int digits;

		fuzz_check(hub_str_startswith(line, NAME ":"), "error line \"%.*s\"",
			   HUB_STR_FMT(line));
		for (int part = 0; part < 2; part++) {
			for (digits = 0; k < line.len && line.p[k] >= '0' && line.p[k] <= '9';
			     k++)
				digits++;
			fuzz_check(digits > 0 && k < line.len && line.p[k] == ':',
				   "error line \"%.*s\"", HUB_STR_FMT(line));
			k++;
		}
		fuzz_check(k < line.len && line.p[k] == ' ', "error line \"%.*s\"",
			   HUB_STR_FMT(line));
		i += line.len + 1;
	}
}

/* The value at a secret key of the dump's object obj: "<redacted>" or null. */
static void check_redacted(const struct hub_json_doc *doc, int obj, const char *key)
{
	int i = hub_json_get(doc, obj, key);

	fuzz_check(i >= 0, "dump without %s", key);
	fuzz_check(hub_json_is_null(doc, i) ||
			   hub_str_eqs(hub_json_raw(doc, i), "<redacted>"),
		   "dump shows %s: %.*s", key, HUB_STR_FMT(hub_json_raw(doc, i)));
}

static void check_accepted(struct hub_config *cfg)
{
	const struct hub_settings *s = hub_config_settings(cfg);
	struct hub_buf dump = HUB_BUF_INIT, keys = HUB_BUF_INIT;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	struct hub_config *more = NULL;
	struct hub_channel *chans;
	size_t n = 0;
	int left, arr;

	fuzz_check(hub_config_restart_keys(cfg, cfg, &keys) == 0, "restart keys against itself");
	fuzz_check(s->http.listen && s->database.url && s->auth.jwt_secret &&
			   strlen(s->auth.jwt_secret) >= 16,
		   "a required setting is missing");
	fuzz_check(s->http.body_max >= 1024 && s->http.header_max >= 1024, "http limits");

	hub_config_dump(cfg, &dump);
	fuzz_check(hub_json_parse(&pool, hub_buf_str(&dump), 1 << 20, &doc, NULL) == 0 &&
			   hub_json_is(&doc, 0, HUB_JSON_OBJECT),
		   "the dump is not a JSON object");
	check_redacted(&doc, 0, "database.url");
	check_redacted(&doc, 0, "redis.url");
	check_redacted(&doc, 0, "auth.jwt_secret");
	arr = hub_json_get(&doc, 0, "channels");
	for (int k = hub_json_first(&doc, arr); k >= 0; k = hub_json_after(&doc, k)) {
		check_redacted(&doc, k, "app_secret");
		check_redacted(&doc, k, "verify_token");
		check_redacted(&doc, k, "access_token");
	}
	while (hub_config_channel_at(cfg, n))
		n++;
	chans = hub_xcalloc(n + 1, sizeof(*chans));
	for (size_t i = 0; i < n; i++) {
		const struct hub_channel *ch = hub_config_channel_at(cfg, i);

		fuzz_check(ch->id && ch->tenant && hub_config_tenant(cfg, ch->tenant) &&
				   ch->kind >= HUB_CHANNEL_WHATSAPP &&
				   ch->kind <= HUB_CHANNEL_INSTAGRAM && ch->account_id &&
				   ch->app_secret,
			   "channel %zu is incomplete", i);
		fuzz_check(hub_config_channel(cfg, hub_str_from(ch->id)) == ch,
			   "channel %zu is not found by its id", i);
		chans[i] = *ch;
	}
	for (size_t i = 0; hub_config_tenant_at(cfg, i); i++)
		fuzz_check(hub_config_tenant_at(cfg, i)->id && hub_config_tenant_at(cfg, i)->name,
			   "tenant %zu is incomplete", i);

	{
		left = hub_config_with_channels(cfg, chans, n, &more);
		fuzz_check(left == 0 && more, "its own channels: %d left out", left);
		for (size_t i = 0; i < n; i++)
			fuzz_check(hub_config_channel(more, hub_str_from(chans[i].id)) != NULL,
				   "channel %zu lost", i);
		hub_config_unref(more);
	}
	free(chans);
	hub_pool_release(&pool);
	hub_buf_release(&keys);
	hub_buf_release(&dump);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool env_done;
	struct hub_str text = { (const char *)data, size };
	struct hub_buf errors = HUB_BUF_INIT;
	struct hub_config *cfg = NULL;
	int ret;

	if (!env_done) {
		unsetenv("HUB_DATABASE_URL");
		unsetenv("HUB_REDIS_URL");
		unsetenv("HUB_JWT_SECRET");
		env_done = true;
	}
	if (!files_ok(text))
		return 0;
	ret = hub_config_parse(NAME, text, &cfg, &errors);
	if (ret == 0) {
		fuzz_check(cfg && errors.len == 0, "accepted with errors");
		check_accepted(cfg);
	} else {
		fuzz_check(ret < 0 && cfg == NULL, "refused: %d", ret);
		check_errors(hub_buf_str(&errors));
	}
	hub_config_unref(cfg);
	hub_buf_release(&errors);
	return 0;
}
