/* daemon/ctl/ctl_revoke.c - see ctl_revoke.h. Validates before it connects, so bad input
 * changes nothing; the change is one SQL function call (hub_revoke_tokens, whose trigger
 * NOTIFYs hub_revocations at COMMIT). */
#include "daemon/ctl/ctl_revoke.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "daemon/ctl/ctl_db.h"
#include "lib/jwt.h"

#define WHAT "revoke"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hubctl [-c FILE] revoke --tenant T [--user U]\n"
		"Revokes every access token of tenant T (or only those of user U in it) issued\n"
		"until now: every running hubd refuses them from now on and closes the websockets\n"
		"that hold one (1008 \"token revoked\"). Tokens issued from the next second on are\n"
		"accepted; tokens without iat of that tenant or user are refused from now on.\n");
}

/* A tenant id as the config's: 1 to 64 of a-z, 0-9, '-' and '_'. */
static bool valid_tenant(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

/* A user id as tokens carry it (sub): 1 .. HUB_JWT_ID_MAX - 1 bytes, no control
 * characters. */
static bool valid_user(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= HUB_JWT_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

int hubctl_revoke_main(const struct hub_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "user", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *user = NULL;
	PGresult *res = NULL;
	PGconn *pg = NULL;
	char when[32];
	int opt, ret = 1;

	optind = 0; /* glibc: 0 re-initializes, so GNU permutation applies again */
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 't': tenant = optarg; break;
		case 'u': user = optarg; break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!tenant || optind != argc) {
		fprintf(stderr, "hubctl: " WHAT ": --tenant is required, and nothing else\n");
		usage(stderr);
		return 2;
	}
	if (!valid_tenant(tenant)) {
		fprintf(stderr, "hubctl: " WHAT ": --tenant must be 1 to 64 of a-z, 0-9, '-' "
			"and '_'\n");
		return 2;
	}
	if (user && !valid_user(user)) {
		fprintf(stderr, "hubctl: " WHAT ": --user must be 1 to %d bytes without control "
			"characters\n", HUB_JWT_ID_MAX - 1);
		return 2;
	}
	pg = hubctl_db_connect(cfg, WHAT);
	if (!pg)
		goto out;
	const char *params[] = { tenant, user };
	res = PQexecParams(pg, "SELECT extract(epoch FROM hub_revoke_tokens($1, $2))::bigint",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		hubctl_db_error(WHAT, res, pg);
		goto out;
	}
	time_t nb = (time_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&nb, &tm));
	if (user)
		printf("revoked the tokens of user %s of tenant %s issued before %s (%lld)\n",
		       user, tenant, when, (long long)nb);
	else
		printf("revoked every token of tenant %s issued before %s (%lld)\n", tenant, when,
		       (long long)nb);
	printf("every running hubd refuses them and closes the websockets holding one\n");
	ret = 0;
out:
	PQclear(res);
	PQfinish(pg);
	return ret;
}
