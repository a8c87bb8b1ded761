/* daemon/ctl/ctl_db.h - what hubctl's database commands share: a blocking libpq connection
 * to the configured database and the server's one-line error, printed as hubctl's. */
#ifndef HUB_CTL_DB_H
#define HUB_CTL_DB_H

#include <libpq-fe.h>

struct hub_config;

/* A blocking connection to cfg's database.url, or NULL with the reason printed
 * ("hubctl: WHAT: database: ..."). */
PGconn *hubctl_db_connect(const struct hub_config *cfg, const char *what);
/* Prints the server's one-line message of res (never the DETAIL, which may quote a row). */
void hubctl_db_error(const char *what, const PGresult *res, PGconn *pg);

#endif
