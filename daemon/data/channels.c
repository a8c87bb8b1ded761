/* daemon/data/channels.c - see channels.h. */
#include "daemon/data/channels.h"

#include <errno.h>
#include <string.h>

const char hub_channels_sql[] =
	"SELECT " HUB_CHANNELS_COLUMNS "FROM channels c JOIN tenants t ON t.id = c.tenant_id ORDER BY c.public_id";

enum { C_ID, C_TENANT, C_KIND, C_ACCOUNT, C_APP_SECRET, C_VERIFY, C_ACCESS, C_MODE, C_ENABLED,
       C_WEB, C_N };

static const char *cell(PGresult *res, int row, int col, struct hub_pool *pool)
{
	return PQgetisnull(res, row, col) ? NULL
					   : hub_pool_strdup(pool, PQgetvalue(res, row, col));
}

void hub_channels_secret_error(struct hub_buf *b, int ret, struct hub_str value)
{
	if (ret == -ENOKEY && value.len >= 4 + HUB_SECRET_ID_LEN)
		hub_buf_addf(b, "sealed under key %.*s, which is neither secrets.master_key nor "
			     "secrets.previous_master_key", HUB_SECRET_ID_LEN, value.p + 4);
	else if (ret == -ENOKEY)
		hub_buf_adds(b, "sealed, and no secrets.master_key is set");
	else
		hub_buf_adds(b, "does not open with its key (altered, or copied from elsewhere)");
}

int hub_channels_seal(const struct hub_keyring *kr, const char *table, const char *id,
		      const char *column, struct hub_str plain, struct hub_buf *out)
{
	struct hub_buf where = HUB_BUF_INIT;
	int ret;

	hub_buf_addf(&where, "%s/%s/%s", table, id, column);
	ret = hub_secret_seal(kr, hub_buf_str(&where), plain, out);
	hub_buf_release(&where);
	return ret;
}

/* The secret in column col of row, opened (in pool), or NULL when the cell is NULL. false
 * (with the line appended to errors) when it does not open. */
static bool secret(PGresult *res, int row, int col, const struct hub_keyring *kr,
		   struct hub_pool *pool, struct hub_buf *errors, size_t *in_clear,
		   const char **out)
{
	struct hub_str v = { PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col) };
	struct hub_buf where = HUB_BUF_INIT, plain = HUB_BUF_INIT;
	int ret;

	*out = NULL;
	if (PQgetisnull(res, row, col))
		return true;
	if (!hub_secret_sealed(v)) {
		(*in_clear)++;
		*out = hub_pool_strndup(pool, v.p, v.len);
		return true;
	}
	hub_buf_addf(&where, "channels/%s/%s", PQgetvalue(res, row, C_ID), PQfname(res, col));
	ret = hub_secret_open(kr, hub_buf_str(&where), v, &plain);
	if (ret == 0) {
		*out = hub_pool_strndup(pool, plain.p, plain.len);
	} else {
		hub_buf_addf(errors, "channel %s: %s ", PQgetvalue(res, row, C_ID),
			     PQfname(res, col));
		hub_channels_secret_error(errors, ret, v);
		hub_buf_addch(errors, '\n');
	}
	hub_buf_release(&where);
	hub_buf_release(&plain);
	return ret == 0;
}

struct hub_channel *hub_channels_from_result(PGresult *res, const struct hub_keyring *kr,
					     struct hub_pool *pool, size_t *n,
					     struct hub_buf *errors, size_t *in_clear)
{
	struct hub_channel *chs;
	int rows;
	size_t k = 0;

	*in_clear = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != C_N)
		return NULL;
	rows = PQntuples(res);
	chs = hub_pool_calloc(pool, (size_t)rows + 1, sizeof(*chs));
	for (int r = 0; r < rows; r++) {
		const char *kind = cell(res, r, C_KIND, pool);
		struct hub_channel *ch = &chs[k];
		bool ok;

		ch->id = cell(res, r, C_ID, pool);
		ch->tenant = cell(res, r, C_TENANT, pool);
		ch->kind = kind ? hub_channel_kind_parse(kind) : 0;
		ch->account_id = cell(res, r, C_ACCOUNT, pool);
		ok = secret(res, r, C_APP_SECRET, kr, pool, errors, in_clear, &ch->app_secret);
		ok &= secret(res, r, C_VERIFY, kr, pool, errors, in_clear, &ch->verify_token);
		ok &= secret(res, r, C_ACCESS, kr, pool, errors, in_clear, &ch->access_token);
		ch->web = cell(res, r, C_WEB, pool);
		ch->polling = strcmp(PQgetvalue(res, r, C_MODE), "polling") == 0;
		ch->enabled = strcmp(PQgetvalue(res, r, C_ENABLED), "t") == 0;
		if (ok)
			k++;
		else
			memset(ch, 0, sizeof(*ch));
	}
	*n = k;
	return chs;
}
