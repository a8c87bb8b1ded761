/* daemon/ctl/ctl_contact.c - see ctl_contact.h. Validates before it connects, so bad input
 * changes nothing. The erase is one SQL function call (one transaction, its audit record
 * inside, actor "hubctl", role operator); its contact.erased event is in the log, and a
 * NOTIFY hub_events after it makes the running hubds read the tenant's log at once. */
#include "daemon/ctl/ctl_contact.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "daemon/ctl/ctl_db.h"

#define WHAT "contact"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hubctl [-c FILE] contact export ID --tenant T\n"
		"       hubctl [-c FILE] contact erase ID --tenant T\n"
		"export prints everything stored about contact ID of tenant T as one JSON\n"
		"document; erase deletes the contact and all of it (identities, conversations,\n"
		"messages, edits, reactions, statuses, outbox rows, AI records, its events),\n"
		"leaving an audit record without personal data.\n");
}

static bool valid_tenant(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static bool valid_id(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 18 && s[0] != '0' && strspn(s, "0123456789") == n;
}

int hubctl_contact_main(const struct hub_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *action, *id;
	PGresult *res = NULL;
	PGconn *pg = NULL;
	int opt, ret = 1;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 't': tenant = optarg; break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2 || !tenant) {
		fprintf(stderr, "hubctl: " WHAT ": want export|erase ID --tenant T\n");
		usage(stderr);
		return 2;
	}
	/* argv[0] is "contact" (getopt's program name); the options may come anywhere */
	action = argv[optind];
	id = argv[optind + 1];
	if (strcmp(action, "export") != 0 && strcmp(action, "erase") != 0) {
		fprintf(stderr, "hubctl: " WHAT ": unknown action \"%s\" (export or erase)\n",
			action);
		return 2;
	}
	if (!valid_tenant(tenant)) {
		fprintf(stderr, "hubctl: " WHAT ": --tenant must be 1 to 64 of a-z, 0-9, '-' "
			"and '_'\n");
		return 2;
	}
	if (!valid_id(id)) {
		fprintf(stderr, "hubctl: " WHAT ": ID must be a contact id (a positive integer)\n");
		return 2;
	}
	pg = hubctl_db_connect(cfg, WHAT);
	if (!pg)
		goto out;
	const char *params[] = { tenant, id };
	if (strcmp(action, "export") == 0) {
		res = PQexecParams(pg, "SELECT CASE WHEN x.d IS NULL OR hub_audit($1, 'hubctl', "
				   "'operator', 'contact.export', 'contact:' || $2, '', '{}') > 0 "
				   "THEN x.d END FROM (SELECT hub_contact_export($1, $2::bigint) AS d) x",
				   2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			hubctl_db_error(WHAT, res, pg);
			goto out;
		}
		if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
			fprintf(stderr, "hubctl: " WHAT ": no contact %s of tenant %s\n", id, tenant);
			goto out;
		}
		fwrite(PQgetvalue(res, 0, 0), 1, (size_t)PQgetlength(res, 0, 0), stdout);
		fputc('\n', stdout);
		ret = 0;
		goto out;
	}
	res = PQexecParams(pg, "SELECT kind, event, data FROM hub_contact_erase($1, $2::bigint, "
			   "'hubctl', 'operator', '')", 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		hubctl_db_error(WHAT, res, pg);
		goto out;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		if (strcmp(PQgetvalue(res, i, 0), "error") == 0) {
			fprintf(stderr, "hubctl: " WHAT ": no contact %s of tenant %s\n", id, tenant);
			goto out;
		}
		if (strcmp(PQgetvalue(res, i, 0), "result") == 0) {
			printf("%s\n", PQgetvalue(res, i, 2));
			ret = 0;
		}
	}
	if (ret == 0) {
		/* the running hubds read the log now: open inboxes drop the contact at once */
		PQclear(res);
		res = PQexecParams(pg, "SELECT pg_notify('hub_events', $1)", 1, NULL,
				   (const char *const[]){ tenant }, NULL, NULL, 0);
	}
out:
	PQclear(res);
	PQfinish(pg);
	return ret;
}
