/* Room daemon/ctl/: hubctl, the operator's tool: this main() and one file a command
 * (ctl_*.c). May call data/, net/, core/ and the pure core; hubd links none of it. */
/* daemon/ctl/hubctl.c - main() of hubctl, the operator's tool: check-config, migrate, token,
 * parse, channel, revoke, simulate, anonymize. It may block (it runs no event loop). Never prints a
 * secret. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/adapter.h"
#include "config/config.h"
#include "daemon/ctl/ctl_anonymize.h"
#include "daemon/ctl/ctl_channel.h"
#include "daemon/ctl/ctl_contact.h"
#include "daemon/ctl/ctl_db.h"
#include "daemon/ctl/ctl_revoke.h"
#include "daemon/ctl/ctl_rotate.h"
#include "daemon/ctl/ctl_simulate.h"
#include "daemon/data/store.h"
#include "lib/jwt.h"
#include "lib/log.h"

#define DEFAULT_CONFIG "/etc/hubd/hubd.json"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hubctl [-c FILE] COMMAND [ARGS]\n"
		"  -c FILE    configuration (default $HUB_CONFIG or " DEFAULT_CONFIG ")\n"
		"commands:\n"
		"  check-config [FILE]              validate a configuration; errors as\n"
		"                                   FILE:LINE:COL: key: message\n"
		"  migrate                          apply database migrations and exit\n"
		"  check-schema                     check that the database's schema can be\n"
		"                                   distributed by tenant_id (Citus); exit 1\n"
		"                                   with each table's problem if not\n"
		"  token --tenant T --user U --role agent|admin [--ttl SECONDS]\n"
		"                                   mint an access token (development, tests);\n"
		"                                   --ttl at most auth.max_token_ttl_s\n"
		"  revoke --tenant T [--user U]     refuse the tenant's (the user's) tokens issued\n"
		"                                   until now, on every hubd, open sockets too\n"
		"  contact export|erase ID --tenant T\n"
		"                                   print everything stored about a contact, or\n"
		"                                   erase it (privacy rights)\n"
		"  parse whatsapp FILE              print the normalized events of a webhook body,\n"
		"                                   one JSON object a line\n"
		"  channel add --id ID --tenant T [--tenant-name NAME] --kind KIND --account A\n"
		"      --app-secret-file F [--verify-token-file F] [--access-token-file F]\n"
		"                                   provision a channel in the database (secrets\n"
		"                                   from files, \"-\" is stdin), live everywhere\n"
		"  channel list [--json]            the database's channels (never their secrets)\n"
		"  channel enable|disable ID        a disabled channel's webhooks get 404\n"
		"  channel ai ID [--on|--off] [--url URL] [--model M] [--key-file F] ...\n"
		"                                   show or set the channel's AI assistant\n"
		"  rotate-key                       seal every secret in the database again under\n"
		"                                   secrets.master_key (the previous key opens)\n"
		"  simulate whatsapp CHANNEL --from PHONE --name NAME [--url URL] TEXT\n"
		"  simulate telegram CHANNEL --from USER_ID --name NAME [--url URL] TEXT\n"
		"  simulate instagram CHANNEL --from IGSID [--name NAME] [--url URL] TEXT\n"
		"                                   post a signed webhook as the platform would\n"
		"  anonymize [--json] [--known-name NAME]... [--known-phone P]...\n"
		"      [--known-email E]...\n"
		"                                   pseudonymize stdin, one message a line, with one\n"
		"                                   vault for the run; --json adds the entities\n");
}

/* Loads the configuration or prints why not. */
static struct hub_config *load(const char *path)
{
	struct hub_buf errors = HUB_BUF_INIT;
	struct hub_config *cfg = NULL;

	if (hub_config_load(path, &cfg, &errors) < 0)
		fputs(errors.p, stderr);
	hub_buf_release(&errors);
	return cfg;
}

static int cmd_check_config(const char *path, int argc, char **argv)
{
	struct hub_config *cfg;

	if (argc > 2) {
		usage(stderr);
		return 2;
	}
	cfg = load(argc == 2 ? argv[1] : path);
	if (!cfg)
		return 1;
	printf("%s: ok\n", hub_config_path(cfg));
	hub_config_unref(cfg);
	return 0;
}

static int cmd_migrate(const char *path)
{
	struct hub_config *cfg = load(path);
	struct hub_err err = HUB_ERR_INIT;
	int n;

	if (!cfg)
		return 1;
	n = hub_store_migrate(hub_config_direct_url(cfg), &err);
	hub_config_unref(cfg);
	if (n < 0) {
		fprintf(stderr, "hubctl: migrate: %s\n", err.msg);
		return 1;
	}
	printf("applied %d migrations\n", n);
	return 0;
}

/* hub_schema_problems() (0021) and one line for each problem it finds. */
static int cmd_check_schema(const char *path)
{
	struct hub_config *cfg = load(path);
	PGconn *pg = cfg ? hubctl_db_connect(cfg, "check-schema") : NULL;
	PGresult *res;
	int ret = 1;

	hub_config_unref(cfg);
	if (!pg)
		return 1;
	res = PQexec(pg, "SELECT table_name, problem FROM hub_schema_problems()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		hubctl_db_error("check-schema", res, pg);
	} else if (PQntuples(res) > 0) {
		for (int i = 0; i < PQntuples(res); i++)
			fprintf(stderr, "hubctl: check-schema: %s: %s\n", PQgetvalue(res, i, 0),
				PQgetvalue(res, i, 1));
		fprintf(stderr, "hubctl: check-schema: %d problems: not ready to be distributed "
			"by tenant_id\n", PQntuples(res));
	} else {
		printf("schema ready to be distributed by tenant_id\n");
		ret = 0;
	}
	PQclear(res);
	PQfinish(pg);
	return ret;
}

static int cmd_token(const char *path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "user", required_argument, NULL, 'u' },
		{ "role", required_argument, NULL, 'r' },
		{ "ttl", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	struct hub_jwt_claims claims = { .role = 0 };
	struct hub_buf token = HUB_BUF_INIT;
	struct hub_config *cfg = NULL;
	long long ttl = 12 * 3600;
	const char *tenant = NULL, *user = NULL, *role = NULL;
	char *end;
	int opt, ret = 1;

	optind = 0; /* glibc: 0 re-initializes, so GNU permutation applies again */
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 't': tenant = optarg; break;
		case 'u': user = optarg; break;
		case 'r': role = optarg; break;
		case 'l':
			ttl = strtoll(optarg, &end, 10);
			if (*end || ttl < 1 || ttl > 366LL * 86400) {
				fprintf(stderr, "hubctl: token: --ttl must be 1..31622400 seconds\n");
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!tenant || !user || !role || optind != argc) {
		fprintf(stderr, "hubctl: token: --tenant, --user and --role are required\n");
		return 2;
	}
	if (hub_role_parse(role, &claims.role) < 0) {
		fprintf(stderr, "hubctl: token: --role must be agent or admin\n");
		return 2;
	}
	if (strlen(tenant) >= sizeof(claims.tid) || strlen(user) >= sizeof(claims.sub) ||
	    !*tenant || !*user) {
		fprintf(stderr, "hubctl: token: --tenant and --user must be 1..%d bytes\n",
			HUB_JWT_ID_MAX - 1);
		return 2;
	}
	memcpy(claims.tid, tenant, strlen(tenant) + 1);
	memcpy(claims.sub, user, strlen(user) + 1);
	claims.iat = (int64_t)time(NULL);
	claims.exp = claims.iat + ttl;
	cfg = load(path);
	if (!cfg)
		goto out;
	int cap = hub_config_settings(cfg)->auth.max_token_ttl_s;
	if (cap > 0 && ttl > cap) {
		fprintf(stderr, "hubctl: token: --ttl %lld is over auth.max_token_ttl_s (%d): hubd "
			"would refuse the token\n", ttl, cap);
		ret = 2;
		goto out;
	}
	if (hub_jwt_sign(&token, hub_str_from(hub_config_settings(cfg)->auth.jwt_secret),
			 &claims) < 0) {
		fprintf(stderr, "hubctl: token: cannot sign\n");
		goto out;
	}
	printf("%s\n", token.p);
	ret = 0;
out:
	hub_buf_release(&token);
	hub_config_unref(cfg);
	return ret;
}

static int cmd_parse(int argc, char **argv)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf body = HUB_BUF_INIT, line = HUB_BUF_INIT;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_event_list events = { 0 };
	const struct hub_adapter *adapter;
	int ret = 1;

	if (argc != 3) {
		usage(stderr);
		return 2;
	}
	adapter = hub_adapter_find(argv[1]);
	if (!adapter) {
		fprintf(stderr, "hubctl: parse: unknown platform \"%s\"\n", argv[1]);
		return 2;
	}
	ret = hub_buf_read_file(&body, argv[2]);
	if (ret < 0) {
		fprintf(stderr, "hubctl: parse: %s: %s\n", argv[2], strerror(-ret));
		ret = 1;
		goto out;
	}
	ret = adapter->parse_webhook(&pool, NULL, hub_buf_str(&body), &events, &err);
	if (ret < 0) {
		fprintf(stderr, "hubctl: parse: %s: %s\n", argv[2], err.msg);
		ret = 1;
		goto out;
	}
	for (size_t i = 0; i < events.n; i++) {
		hub_buf_reset(&line);
		hub_event_to_json(&events.items[i], &line);
		printf("%s\n", line.p);
	}
	if (events.bad)
		fprintf(stderr, "hubctl: parse: %zu malformed items skipped\n", events.bad);
	ret = 0;
out:
	hub_buf_release(&line);
	hub_buf_release(&body);
	hub_pool_release(&pool);
	return ret;
}

int main(int argc, char **argv)
{
	const char *path = getenv("HUB_CONFIG");
	int opt;

	if (!path || !*path)
		path = DEFAULT_CONFIG;
	/* options before the command only; the command parses its own */
	while ((opt = getopt(argc, argv, "+c:h")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	hub_log_set_level(HUB_LOG_WARNING);
	argc -= optind;
	argv += optind;
	if (strcmp(argv[0], "check-config") == 0)
		return cmd_check_config(path, argc, argv);
	if (strcmp(argv[0], "migrate") == 0 && argc == 1)
		return cmd_migrate(path);
	if (strcmp(argv[0], "check-schema") == 0 && argc == 1)
		return cmd_check_schema(path);
	if (strcmp(argv[0], "token") == 0)
		return cmd_token(path, argc, argv);
	if (strcmp(argv[0], "parse") == 0)
		return cmd_parse(argc, argv);
	if (strcmp(argv[0], "anonymize") == 0)
		return hubctl_anonymize_main(argc, argv);
	if (strcmp(argv[0], "channel") == 0) {
		struct hub_config *cfg = load(path);
		int ret;

		if (!cfg)
			return 1;
		ret = hubctl_channel_main(cfg, argc, argv);
		hub_config_unref(cfg);
		return ret;
	}
	if (strcmp(argv[0], "rotate-key") == 0) {
		struct hub_config *cfg = load(path);
		int ret;

		if (!cfg)
			return 1;
		ret = hubctl_rotate_key_main(cfg, argc, argv);
		hub_config_unref(cfg);
		return ret;
	}
	if (strcmp(argv[0], "revoke") == 0) {
		struct hub_config *cfg = load(path);
		int ret;

		if (!cfg)
			return 1;
		ret = hubctl_revoke_main(cfg, argc, argv);
		hub_config_unref(cfg);
		return ret;
	}
	if (strcmp(argv[0], "contact") == 0) {
		struct hub_config *cfg = load(path);
		int ret;

		if (!cfg)
			return 1;
		ret = hubctl_contact_main(cfg, argc, argv);
		hub_config_unref(cfg);
		return ret;
	}
	if (strcmp(argv[0], "simulate") == 0) {
		struct hub_config *cfg = load(path);
		int ret;

		if (!cfg)
			return 1;
		ret = hubctl_simulate_main(cfg, argc, argv);
		hub_config_unref(cfg);
		return ret;
	}
	fprintf(stderr, "hubctl: unknown command \"%s\"\n", argv[0]);
	usage(stderr);
	return 2;
}
