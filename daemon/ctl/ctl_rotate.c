/* daemon/ctl/ctl_rotate.c - see ctl_rotate.h. */
#include "daemon/ctl/ctl_rotate.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "config/config.h"
#include "daemon/ctl/ctl_channel.h"
#include "daemon/ctl/ctl_db.h"
#include "daemon/data/channels.h"
#include "lib/buf.h"
#include "lib/secret.h"

#define WHAT "rotate-key"

/* Where each stored secret lives: the rows (public id, then the secrets' columns) are read
 * with its select and written back one column at a time with its update. */
static const struct table {
	const char *prefix; /* of the place a value is sealed for: "<prefix>/<id>/<column>" */
	const char *select;
	/* ... SET <column> = $2 <where_id>: $1 is the public id */
	const char *update, *where_id;
} tables[] = {
	{ "channels",
	  "SELECT public_id, app_secret, verify_token, access_token FROM channels ORDER BY id "
	  "FOR UPDATE",
	  "UPDATE channels", "WHERE public_id = $1" },
	{ "channel_ai",
	  "SELECT c.public_id, a.api_key FROM channel_ai a JOIN channels c ON c.id = a.channel_id "
	  "ORDER BY c.id FOR UPDATE OF a",
	  "UPDATE channel_ai a", "FROM channels c WHERE c.id = a.channel_id AND c.public_id = $1" },
};

struct counts {
	int resealed, in_clear, current;
};

/* Seals one stored value again; 0, or 1 with the reason printed. */
static int reseal(PGconn *pg, const struct hub_keyring *kr, const struct table *t,
		  const char *id, const char *col, struct hub_str v, struct counts *n)
{
	struct hub_buf where = HUB_BUF_INIT, plain = HUB_BUF_INIT, sealed = HUB_BUF_INIT;
	char sql[192];
	int ret = 0;

	if (hub_secret_sealed(v) && v.len > 4 + HUB_SECRET_ID_LEN &&
	    memcmp(v.p + 4, hub_keyring_id(kr), HUB_SECRET_ID_LEN) == 0) {
		n->current++;
		return 0;
	}
	hub_buf_addf(&where, "%s/%s/%s", t->prefix, id, col);
	if (!hub_secret_sealed(v)) {
		hub_buf_addstr(&plain, v);
		n->in_clear++;
	} else if ((ret = hub_secret_open(kr, hub_buf_str(&where), v, &plain)) < 0) {
		struct hub_buf why = HUB_BUF_INIT;

		hub_channels_secret_error(&why, ret, v);
		fprintf(stderr, "hubctl: " WHAT ": %s %s: %s %.*s: nothing changed\n",
			strcmp(t->prefix, "channels") ? "the assistant of channel" : "channel", id,
			col, (int)why.len, why.p);
		hub_buf_release(&why);
		ret = 1;
		goto out;
	}
	if (hub_secret_seal(kr, hub_buf_str(&where), hub_buf_str(&plain), &sealed) < 0)
		hub_assert(!"a keyring with a current key seals");
	hub_buf_addch(&sealed, '\0');
	snprintf(sql, sizeof(sql), "%s SET %s = $2 %s", t->update, col, t->where_id);
	const char *params[] = { id, sealed.p };
	PGresult *res = PQexecParams(pg, sql, 2, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		hubctl_db_error(WHAT, res, pg);
		ret = 1;
	} else {
		n->resealed++;
	}
	PQclear(res);
out:
	hub_buf_release(&where);
	hub_buf_release(&plain);
	hub_buf_release(&sealed);
	return ret;
}

int hubctl_rotate_key_main(const struct hub_config *cfg, int argc, char **argv)
{
	const struct hub_keyring *kr = hub_config_keyring(cfg);
	struct counts n = { 0, 0, 0 };
	PGconn *pg;
	PGresult *res = NULL;
	int ret = 1;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: hubctl [-c FILE] rotate-key\n");
		return 2;
	}
	if (!hub_keyring_id(kr)) {
		fprintf(stderr, "hubctl: " WHAT ": secrets.master_key is not set: it is the key to "
				"seal under (make one with: openssl rand -hex 32)\n");
		return 1;
	}
	pg = hubctl_db_connect(cfg, WHAT);
	if (!pg)
		return 1;
	PQclear(PQexec(pg, "BEGIN"));
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		res = PQexec(pg, tables[t].select);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			hubctl_db_error(WHAT, res, pg);
			goto out;
		}
		for (int r = 0; r < PQntuples(res); r++) {
			for (int c = 1; c < PQnfields(res); c++) {
				if (PQgetisnull(res, r, c))
					continue;
				if (reseal(pg, kr, &tables[t], PQgetvalue(res, r, 0), PQfname(res, c),
					   (struct hub_str){ PQgetvalue(res, r, c),
							     (size_t)PQgetlength(res, r, c) },
					   &n))
					goto out;
			}
		}
		PQclear(res);
		res = NULL;
	}
	res = PQexec(pg, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		hubctl_db_error(WHAT, res, pg);
		goto out;
	}
	printf("sealed %d secrets under key %s (%d of them were in clear); %d were under it "
	       "already\n", n.resealed, hub_keyring_id(kr), n.in_clear, n.current);
	ret = 0;
out:
	PQclear(res);
	PQfinish(pg); /* without COMMIT: rolled back */
	return ret;
}
