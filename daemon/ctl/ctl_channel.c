/* daemon/ctl/ctl_channel.c - see ctl_channel.h. Validates everything before it connects, so bad
 * input changes nothing; each change is one SQL function call (one transaction whose
 * trigger NOTIFYs hub_channels; add --register calls Telegram's setWebhook inside it, and
 * a refusal rolls the channel back). Prints ids, kinds and accounts, never a secret. */
#include "daemon/ctl/ctl_channel.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <uv.h>

#include "adapters/adapter.h"
#include "adapters/telegram.h"
#include "config/config.h"
#include "daemon/ctl/ctl_ai.h"
#include "daemon/ctl/ctl_db.h"
#include "daemon/data/channels.h"
#include "daemon/net/httpc.h"
#include "lib/buf.h"
#include "lib/channel.h"
#include "lib/json.h"
#include "lib/pool.h"
#include "lib/secret.h"
#include "lib/utf8.h"
#include "lib/webcfg.h"

#define SECRET_MAX HUB_CHANNEL_SECRET_MAX
#define WHAT_ADD "channel add"
#define NAME_MAX_LEN 200

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hubctl [-c FILE] channel add --id ID --tenant T [--tenant-name NAME]\n"
		"                 --kind whatsapp|telegram|instagram|web --account ACCOUNT\n"
		"                 --app-secret-file F [--verify-token-file F]\n"
		"                 [--access-token-file F] [--mode webhook|polling]\n"
		"                 [--register https://PUBLIC-URL-OF-THE-HUB] [--web-file F]\n"
		"       hubctl [-c FILE] channel list [--json]\n"
		"       hubctl [-c FILE] channel enable|disable ID\n"
		"       hubctl [-c FILE] channel ai ID [settings]  (hubctl channel ai --help)\n"
		"Secrets are read from files (\"-\" is stdin, for one of them), never from the\n"
		"command line. --verify-token-file is required for whatsapp and instagram.\n"
		"--tenant-name creates the tenant when it does not exist. --mode polling (telegram\n"
		"only, with the bot token as the access token): updates by getUpdates long\n"
		"polling instead of a webhook, for hubs without a public URL. --register (telegram\n"
		"in webhook mode) points the bot's webhook at URL/webhooks/telegram/ID with the\n"
		"app secret as its secret_token; when Telegram refuses, nothing is added.\n"
		"--kind web (the website chat): --web-file is the widget's settings (JSON:\n"
		"origins, title, color, greeting, offline, prechat; README), the app secret is\n"
		"the identity-verification secret of data-user-hash, --account is optional.\n");
}

bool hubctl_valid_id(const char *s)
{
	return hub_channel_id_valid(s, strlen(s));
}

/* Reads a secret from path ("-": stdin) without its trailing newlines. 0, or 1 (exit code)
 * with the reason printed (the file's name, never its content). */
int hubctl_read_secret(const char *what, const char *opt, const char *path,
		       struct hub_pool *pool, const char **out)
{
	struct hub_buf b = HUB_BUF_INIT;
	int ret = hub_buf_read_file(&b, strcmp(path, "-") == 0 ? "/dev/stdin" : path);

	if (ret < 0) {
		fprintf(stderr, "hubctl: %s: %s %s: %s\n", what, opt, path, strerror(-ret));
		ret = 1;
		goto out;
	}
	while (b.len && (b.p[b.len - 1] == '\n' || b.p[b.len - 1] == '\r'))
		hub_buf_truncate(&b, b.len - 1);
	if (b.len == 0 || b.len > SECRET_MAX || memchr(b.p, '\0', b.len)) {
		fprintf(stderr, "hubctl: %s: %s %s: must hold 1 to %d bytes, no NUL\n", what,
			opt, path, SECRET_MAX);
		ret = 1;
		goto out;
	}
	/* the server would quote invalid bytes in its error: refuse them here */
	if (!hub_utf8_valid(b.p, b.len)) {
		fprintf(stderr, "hubctl: %s: %s %s: not UTF-8\n", what, opt, path);
		ret = 1;
		goto out;
	}
	if (!hub_channel_secret_valid(b.p, b.len)) {
		fprintf(stderr, "hubctl: %s: %s %s: control characters in the secret\n", what,
			opt, path);
		ret = 1;
		goto out;
	}
	*out = hub_pool_strndup(pool, b.p, b.len);
	ret = 0;
out:
	hub_buf_release(&b);
	return ret;
}

int hubctl_seal(const struct hub_config *cfg, const char *what, const char *table,
		const char *id, const char *column, const char *plain, struct hub_pool *pool,
		const char **out)
{
	struct hub_buf b = HUB_BUF_INIT;
	int ret;

	*out = NULL;
	if (!plain)
		return 0;
	ret = hub_channels_seal(hub_config_keyring(cfg), table, id, column, hub_str_from(plain),
				&b);
	if (ret < 0) {
		fprintf(stderr, "hubctl: %s: secrets.master_key is not set: secrets are stored "
				"sealed with it (make one with: openssl rand -hex 32)\n", what);
		hub_buf_release(&b);
		return 1;
	}
	*out = hub_pool_strndup(pool, b.p, b.len);
	hub_buf_release(&b);
	return 0;
}

struct registration {
	bool done;
	int status;         /* 0, or the HTTP client's negative errno */
	struct hub_pool *pool;
	struct hub_send_result result;
};

static void on_registered(int status, const struct hub_httpc_resp *resp, void *data)
{
	struct registration *r = data;

	r->done = true;
	r->status = status;
	if (status == 0)
		(void)hub_adapter_for(HUB_CHANNEL_TELEGRAM)
			->parse_send_result(r->pool, resp->status,
					    hub_httpc_resp_header(resp, "retry-after"), resp->body,
					    &r->result);
}

/* Telegram's setWebhook for ch, to base/webhooks/telegram/<id>, through the hub's HTTP
 * client on a loop of its own (platforms.telegram_url, platforms.ca_file). 0, or 1 with
 * the reason printed. */
static int register_webhook(const struct hub_config *cfg, const struct hub_channel *ch,
			    const char *base, struct hub_pool *pool)
{
	const struct hub_settings *s = hub_config_settings(cfg);
	struct hub_httpc_opts o = { .ca_file = s->platforms.ca_file };
	struct registration r = { .pool = pool };
	struct hub_err err = HUB_ERR_INIT;
	struct hub_httpc *c = NULL;
	struct hub_send_req sr;
	uv_loop_t loop;
	size_t blen = strlen(base);
	int ret = 1;

	while (blen && base[blen - 1] == '/')
		blen--;
	if (hub_telegram_webhook_req(pool, ch, hub_str_from(hub_pool_sprintf(pool,
				"%.*s/webhooks/telegram/%s", (int)blen, base, ch->id)), &sr, &err) < 0) {
		fprintf(stderr, "hubctl: channel add: --register: %s\n", err.msg);
		return 1;
	}
	if (uv_loop_init(&loop) < 0) {
		fprintf(stderr, "hubctl: channel add: --register: no event loop\n");
		return 1;
	}
	struct hub_httpc_header hdr = { "Content-Type", "application/json" };
	struct hub_httpc_req req = {
		.method = sr.method,
		.url = hub_pool_sprintf(pool, "%s%.*s", s->platforms.url[HUB_CHANNEL_TELEGRAM],
					HUB_STR_FMT(sr.path)),
		.headers = &hdr,
		.nheaders = 1,
		.body = sr.body,
		.connect_timeout_ms = s->platforms.connect_timeout_ms,
		.response_timeout_ms = s->platforms.response_timeout_ms,
	};
	if (hub_httpc_new(&loop, &o, &c, &err) < 0) {
		fprintf(stderr, "hubctl: channel add: --register: %s\n", err.msg);
	} else if ((ret = hub_httpc_request(c, &req, on_registered, &r, NULL)) < 0) {
		fprintf(stderr, "hubctl: channel add: --register: %s\n", strerror(-ret));
		ret = 1;
	} else {
		while (!r.done)
			uv_run(&loop, UV_RUN_ONCE);
		if (r.status < 0)
			fprintf(stderr, "hubctl: channel add: --register: Telegram did not answer: "
					"%s\n", strerror(-r.status));
		else if (r.result.verdict != HUB_SEND_OK)
			fprintf(stderr, "hubctl: channel add: --register: Telegram refused: %.*s\n",
				HUB_STR_FMT(r.result.error));
		ret = r.status == 0 && r.result.verdict == HUB_SEND_OK ? 0 : 1;
	}
	hub_httpc_close(c, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) < 0)
		fprintf(stderr, "hubctl: channel add: --register: event loop not empty\n");
	return ret;
}

/* A web channel's settings from path, checked (lib/webcfg.h). 0, or 1 with the reason. */
static int read_web(const char *path, struct hub_pool *pool, const char **out)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_webcfg wc;
	struct hub_err err = HUB_ERR_INIT;
	int ret = hub_buf_read_file(&b, path);

	if (ret < 0) {
		fprintf(stderr, "hubctl: channel add: --web-file %s: %s\n", path, strerror(-ret));
		ret = 1;
	} else if (hub_webcfg_parse(pool, hub_buf_str(&b), &wc, &err) < 0) {
		fprintf(stderr, "hubctl: channel add: --web-file %s: %s\n", path, err.msg);
		ret = 1;
	} else {
		*out = hub_pool_strndup(pool, b.p, b.len);
		ret = 0;
	}
	hub_buf_release(&b);
	return ret;
}

static int cmd_add(const struct hub_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "tenant", required_argument, NULL, 't' },
		{ "tenant-name", required_argument, NULL, 'n' },
		{ "kind", required_argument, NULL, 'k' },
		{ "account", required_argument, NULL, 'a' },
		{ "app-secret-file", required_argument, NULL, 's' },
		{ "verify-token-file", required_argument, NULL, 'v' },
		{ "access-token-file", required_argument, NULL, 'x' },
		{ "mode", required_argument, NULL, 'm' },
		{ "register", required_argument, NULL, 'r' },
		{ "web-file", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	struct hub_pool pool = HUB_POOL_INIT;
	const char *id = NULL, *tenant = NULL, *tenant_name = NULL, *kind_name = NULL;
	const char *account = NULL, *app_file = NULL, *verify_file = NULL, *access_file = NULL;
	const char *app = NULL, *verify = NULL, *access = NULL, *mode = "webhook";
	const char *register_url = NULL, *web_file = NULL, *web = NULL;
	enum hub_channel_kind kind;
	PGconn *pg = NULL;
	PGresult *res = NULL;
	int opt, stdin_uses = 0, ret = 2;

	optind = 0; /* glibc: 0 re-initializes, so GNU permutation applies again */
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'i': id = optarg; break;
		case 't': tenant = optarg; break;
		case 'n': tenant_name = optarg; break;
		case 'k': kind_name = optarg; break;
		case 'a': account = optarg; break;
		case 's': app_file = optarg; break;
		case 'v': verify_file = optarg; break;
		case 'x': access_file = optarg; break;
		case 'm': mode = optarg; break;
		case 'r': register_url = optarg; break;
		case 'w': web_file = optarg; break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "hubctl: channel add: unexpected argument \"%s\" (secrets are read "
				"from files, never from the command line)\n", argv[optind]);
		return 2;
	}
	if (kind_name && !strcmp(kind_name, "web") && !account)
		account = id; /* no platform account: the channel is its own */
	if (!id || !tenant || !kind_name || !account || !app_file) {
		fprintf(stderr, "hubctl: channel add: --id, --tenant, --kind, --account and "
				"--app-secret-file are required\n");
		return 2;
	}
	if (!hubctl_valid_id(id) || !hubctl_valid_id(tenant)) {
		fprintf(stderr, "hubctl: channel add: --id and --tenant must be 1 to 64 of a-z, "
				"0-9, '-' and '_'\n");
		return 2;
	}
	kind = hub_channel_kind_parse(kind_name);
	if (!kind) {
		fprintf(stderr, "hubctl: channel add: --kind must be one of whatsapp, telegram, "
				"instagram, web (not \"%s\")\n", kind_name);
		return 2;
	}
	if ((kind == HUB_CHANNEL_WEB) != (web_file != NULL)) {
		fprintf(stderr, "hubctl: channel add: --web-file (the widget's settings) is "
				"required for web channels, and only for them\n");
		return 2;
	}
	if (web_file && read_web(web_file, &pool, &web)) {
		ret = 1;
		goto out;
	}
	if (!hub_channel_account_valid(account, strlen(account))) {
		fprintf(stderr, "hubctl: channel add: --account must be 1 to 128 printable "
				"characters without spaces\n");
		return 2;
	}
	if (tenant_name && (!*tenant_name || strlen(tenant_name) > NAME_MAX_LEN)) {
		fprintf(stderr, "hubctl: channel add: --tenant-name must be 1 to %d bytes\n",
			NAME_MAX_LEN);
		return 2;
	}
	if (kind != HUB_CHANNEL_TELEGRAM && kind != HUB_CHANNEL_WEB && !verify_file) {
		fprintf(stderr, "hubctl: channel add: --verify-token-file is required for %s "
				"channels\n", kind_name);
		return 2;
	}
	if (strcmp(mode, "webhook") != 0 && strcmp(mode, "polling") != 0) {
		fprintf(stderr, "hubctl: channel add: --mode must be webhook or polling\n");
		return 2;
	}
	if (!strcmp(mode, "polling") && (kind != HUB_CHANNEL_TELEGRAM || !access_file)) {
		fprintf(stderr, "hubctl: channel add: --mode polling is for telegram channels, "
				"with --access-token-file (the bot token)\n");
		return 2;
	}
	if (register_url && (kind != HUB_CHANNEL_TELEGRAM || strcmp(mode, "webhook") != 0 ||
			     !access_file)) {
		fprintf(stderr, "hubctl: channel add: --register is for telegram channels in "
				"webhook mode, with --access-token-file (Meta's webhooks are set in "
				"the app's dashboard)\n");
		return 2;
	}
	stdin_uses = !strcmp(app_file, "-") + (verify_file && !strcmp(verify_file, "-")) +
		     (access_file && !strcmp(access_file, "-"));
	if (stdin_uses > 1) {
		fprintf(stderr, "hubctl: channel add: only one secret can come from stdin (-)\n");
		return 2;
	}
	if (hub_config_channel(cfg, hub_str_from(id))) {
		fprintf(stderr, "hubctl: channel add: channel \"%s\" is defined in %s (the file "
				"wins): choose another id\n", id, hub_config_path(cfg));
		ret = 1;
		goto out;
	}
	ret = hubctl_read_secret(WHAT_ADD, "--app-secret-file", app_file, &pool, &app);
	if (ret == 0 && verify_file)
		ret = hubctl_read_secret(WHAT_ADD, "--verify-token-file", verify_file, &pool,
					 &verify);
	if (ret == 0 && access_file)
		ret = hubctl_read_secret(WHAT_ADD, "--access-token-file", access_file, &pool,
					 &access);
	if (ret)
		goto out;
	if (kind == HUB_CHANNEL_TELEGRAM && !hub_channel_telegram_secret_valid(app, strlen(app))) {
		fprintf(stderr, "hubctl: channel add: a telegram app secret (the webhook's "
				"secret_token) must be 1 to 256 of A-Z, a-z, 0-9, '_' and '-'\n");
		ret = 1;
		goto out;
	}
	const char *sealed[3];

	ret = hubctl_seal(cfg, WHAT_ADD, "channels", id, "app_secret", app, &pool, &sealed[0]);
	if (ret == 0)
		ret = hubctl_seal(cfg, WHAT_ADD, "channels", id, "verify_token", verify, &pool,
				  &sealed[1]);
	if (ret == 0)
		ret = hubctl_seal(cfg, WHAT_ADD, "channels", id, "access_token", access, &pool,
				  &sealed[2]);
	if (ret)
		goto out;
	pg = hubctl_db_connect(cfg, "channel add");
	if (!pg) {
		ret = 1;
		goto out;
	}
	const char *params[] = { id,	    tenant,    tenant_name, kind_name, account,
				 sealed[0], sealed[1], sealed[2],   mode };
	PQclear(PQexec(pg, "BEGIN"));
	res = PQexecParams(pg, "SELECT hub_channel_add($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9,
			   NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (state && strcmp(state, "23505") == 0)
			fprintf(stderr, "hubctl: channel add: channel \"%s\" already exists\n", id);
		else if (state && strcmp(state, "P0002") == 0 && !tenant_name)
			fprintf(stderr, "hubctl: channel add: unknown tenant \"%s\" (--tenant-name "
					"NAME creates it)\n", tenant);
		else
			hubctl_db_error("channel add", res, pg);
		ret = 1;
		goto out;
	}
	if (web) {
		const char *wp[] = { id, web };

		PQclear(res);
		res = PQexecParams(pg, "UPDATE channels SET web = $2::jsonb WHERE public_id = $1",
				   2, NULL, wp, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			hubctl_db_error("channel add", res, pg);
			ret = 1;
			goto out;
		}
	}
	if (register_url) {
		struct hub_channel ch = { .id = id, .tenant = tenant, .kind = kind,
					  .account_id = account, .app_secret = app,
					  .access_token = access, .enabled = true };

		ret = register_webhook(cfg, &ch, register_url, &pool);
		if (ret)
			goto out; /* PQfinish rolls the channel back */
	}
	PQclear(res);
	/* the audit record (names of what was given, never values), in the same transaction */
	{
		const char *audit[] = { id, hub_pool_sprintf(&pool, "{\"fields\":[\"id\",\"kind\","
			"\"account_id\",\"mode\",\"app_secret\"%s%s]}",
			verify ? ",\"verify_token\"" : "", access ? ",\"access_token\"" : "") };

		res = PQexecParams(pg, "SELECT hub_ctl_audit($1, 'channel.create', $2::jsonb)", 2,
				   NULL, audit, NULL, NULL, 0);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		hubctl_db_error("channel add", res, pg);
		ret = 1;
		goto out;
	}
	PQclear(res);
	res = PQexec(pg, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		hubctl_db_error("channel add", res, pg);
		ret = 1;
		goto out;
	}
	printf("added %s channel %s of tenant %s%s\n", kind_name, id, tenant,
	       register_url ? ", its webhook registered with Telegram" : "");
	ret = 0;
out:
	PQclear(res);
	PQfinish(pg);
	hub_pool_release(&pool);
	return ret;
}

static int cmd_list(const struct hub_config *cfg, int argc, char **argv)
{
	struct hub_buf line = HUB_BUF_INIT;
	PGresult *res = NULL;
	PGconn *pg = NULL;
	bool json = false;
	int ret = 1;

	if (argc == 2 && strcmp(argv[1], "--json") == 0)
		json = true;
	else if (argc != 1) {
		usage(stderr);
		return 2;
	}
	pg = hubctl_db_connect(cfg, "channel list");
	if (!pg)
		goto out;
	res = PQexec(pg, "SELECT c.public_id, c.tenant_id, c.kind, coalesce(c.account_id, ''), "
			 "c.enabled, t.deleted_at IS NOT NULL, c.app_secret IS NOT NULL, c.mode "
			 "FROM channels c JOIN tenants t ON t.id = c.tenant_id ORDER BY 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		hubctl_db_error("channel list", res, pg);
		goto out;
	}
	if (!json)
		printf("%-24s %-16s %-10s %-22s %-9s %s\n", "ID", "TENANT", "KIND", "ACCOUNT",
		       "STATE", "SOURCE");
	for (int i = 0; i < PQntuples(res); i++) {
		const char *id = PQgetvalue(res, i, 0);
		bool enabled = strcmp(PQgetvalue(res, i, 4), "t") == 0;
		bool deleted = strcmp(PQgetvalue(res, i, 5), "t") == 0;
		bool secrets = strcmp(PQgetvalue(res, i, 6), "t") == 0;
		/* the file wins; a row without secrets (a channel removed from the file) is not
		 * served */
		const char *source = hub_config_channel(cfg, hub_str_from(id)) ? "config"
				     : secrets ? "database" : "none";
		const char *state = deleted ? "tenant-deleted" : enabled ? "enabled" : "disabled";

		if (!json) {
			printf("%-24s %-16s %-10s %-22s %-9s %s\n", id, PQgetvalue(res, i, 1),
			       PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), state, source);
			continue;
		}
		struct hub_jw jw;

		hub_buf_reset(&line);
		hub_jw_init(&jw, &line);
		hub_jw_obj_open(&jw);
		hub_jw_key(&jw, "id");
		hub_jw_cstr(&jw, id);
		hub_jw_key(&jw, "tenant");
		hub_jw_cstr(&jw, PQgetvalue(res, i, 1));
		hub_jw_key(&jw, "kind");
		hub_jw_cstr(&jw, PQgetvalue(res, i, 2));
		hub_jw_key(&jw, "account_id");
		hub_jw_cstr(&jw, PQgetvalue(res, i, 3));
		hub_jw_key(&jw, "enabled");
		hub_jw_bool(&jw, enabled && !deleted);
		hub_jw_key(&jw, "state");
		hub_jw_cstr(&jw, state);
		hub_jw_key(&jw, "source");
		hub_jw_cstr(&jw, source);
		hub_jw_key(&jw, "mode");
		hub_jw_cstr(&jw, PQgetvalue(res, i, 7));
		hub_jw_obj_close(&jw);
		printf("%s\n", line.p);
	}
	ret = 0;
out:
	PQclear(res);
	PQfinish(pg);
	hub_buf_release(&line);
	return ret;
}

static int cmd_set_enabled(const struct hub_config *cfg, int argc, char **argv, bool enabled)
{
	const char *what = enabled ? "channel enable" : "channel disable";
	PGresult *res = NULL;
	PGconn *pg = NULL;
	int ret = 1;

	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	if (!hubctl_valid_id(argv[1])) {
		fprintf(stderr, "hubctl: %s: ID must be 1 to 64 of a-z, 0-9, '-' and '_'\n", what);
		return 2;
	}
	pg = hubctl_db_connect(cfg, what);
	if (!pg)
		goto out;
	const char *params[] = { argv[1], enabled ? "true" : "false" };
	/* audited in the same statement (one transaction), when the channel exists */
	res = PQexecParams(pg, "SELECT hub_channel_set_enabled($1, $2::boolean) AND hub_ctl_audit("
			   "$1, CASE WHEN $2::boolean THEN 'channel.enable' ELSE 'channel.disable' "
			   "END, '{}')", 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		hubctl_db_error(what, res, pg);
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		fprintf(stderr, "hubctl: %s: no channel \"%s\" in the database\n", what, argv[1]);
		goto out;
	}
	printf("channel %s %s\n", argv[1], enabled ? "enabled" : "disabled");
	ret = 0;
out:
	PQclear(res);
	PQfinish(pg);
	return ret;
}

int hubctl_channel_main(const struct hub_config *cfg, int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "add") == 0)
		return cmd_add(cfg, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return cmd_list(cfg, argc - 1, argv + 1);
	if (strcmp(argv[1], "ai") == 0)
		return hubctl_channel_ai_main(cfg, argc - 1, argv + 1);
	if (strcmp(argv[1], "enable") == 0)
		return cmd_set_enabled(cfg, argc - 1, argv + 1, true);
	if (strcmp(argv[1], "disable") == 0)
		return cmd_set_enabled(cfg, argc - 1, argv + 1, false);
	fprintf(stderr, "hubctl: channel: unknown subcommand \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}

int hubctl_channel_snapshot(struct hub_config *cfg, struct hub_config **out,
			    struct hub_err *err)
{
	struct hub_buf errors = HUB_BUF_INIT;
	size_t in_clear;
	const char *url = hub_config_direct_url(cfg);
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_channel *chs = NULL;
	PGresult *res = NULL;
	PGconn *pg = NULL;
	size_t n = 0;
	int ret;

	pg = PQconnectdb(url ? url : "");
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		const char *msg = pg ? PQerrorMessage(pg) : "out of memory";

		ret = hub_err_set(err, -ENOTCONN, "database: %.*s", (int)strcspn(msg, "\n"), msg);
		goto out;
	}
	res = PQexec(pg, hub_channels_sql);
	chs = hub_channels_from_result(res, hub_config_keyring(cfg), &pool, &n, &errors,
				       &in_clear);
	if (errors.len) {
		ret = hub_err_set(err, -ENOKEY, "%.*s", (int)strcspn(errors.p, "\n"), errors.p);
		goto out;
	}
	if (!chs) {
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		ret = hub_err_set(err, -EIO, "database: %s", msg ? msg : "unexpected result");
		goto out;
	}
	ret = hub_config_with_channels(cfg, chs, n, out);
	ret = ret < 0 ? ret : 0;
out:
	PQclear(res);
	hub_buf_release(&errors);
	PQfinish(pg);
	hub_pool_release(&pool);
	return ret;
}
