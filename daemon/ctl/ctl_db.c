/* daemon/ctl/ctl_db.c - see ctl_db.h. */
#include "daemon/ctl/ctl_db.h"

#include <stdio.h>
#include <string.h>

#include "config/config.h"

PGconn *hubctl_db_connect(const struct hub_config *cfg, const char *what)
{
	const char *url = hub_config_direct_url(cfg);
	PGconn *pg = PQconnectdb(url ? url : "");

	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		const char *msg = pg ? PQerrorMessage(pg) : "out of memory";
		size_t n = strcspn(msg, "\n");

		fprintf(stderr, "hubctl: %s: database: %.*s\n", what, (int)n, msg);
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

void hubctl_db_error(const char *what, const PGresult *res, PGconn *pg)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (!msg)
		msg = PQerrorMessage(pg);
	fprintf(stderr, "hubctl: %s: %.*s\n", what, (int)strcspn(msg, "\n"), msg);
}
