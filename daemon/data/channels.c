/* daemon/data/channels.c - see channels.h. */
#include "daemon/data/channels.h"

#include <string.h>

const char hub_channels_sql[] =
	"SELECT c.public_id, c.tenant_id, c.kind, c.account_id, c.app_secret, c.verify_token, "
	"c.access_token, c.mode, c.enabled AND t.deleted_at IS NULL "
	"FROM channels c JOIN tenants t ON t.id = c.tenant_id ORDER BY c.public_id";

enum { C_ID, C_TENANT, C_KIND, C_ACCOUNT, C_APP_SECRET, C_VERIFY, C_ACCESS, C_MODE, C_ENABLED,
       C_N };

static const char *cell(PGresult *res, int row, int col, struct hub_pool *pool)
{
	return PQgetisnull(res, row, col) ? NULL
					   : hub_pool_strdup(pool, PQgetvalue(res, row, col));
}

struct hub_channel *hub_channels_from_result(PGresult *res, struct hub_pool *pool, size_t *n)
{
	struct hub_channel *chs;
	int rows;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != C_N)
		return NULL;
	rows = PQntuples(res);
	chs = hub_pool_calloc(pool, (size_t)rows + 1, sizeof(*chs));
	for (int r = 0; r < rows; r++) {
		const char *kind = cell(res, r, C_KIND, pool);

		chs[r].id = cell(res, r, C_ID, pool);
		chs[r].tenant = cell(res, r, C_TENANT, pool);
		chs[r].kind = kind ? hub_channel_kind_parse(kind) : 0;
		chs[r].account_id = cell(res, r, C_ACCOUNT, pool);
		chs[r].app_secret = cell(res, r, C_APP_SECRET, pool);
		chs[r].verify_token = cell(res, r, C_VERIFY, pool);
		chs[r].access_token = cell(res, r, C_ACCESS, pool);
		chs[r].polling = strcmp(PQgetvalue(res, r, C_MODE), "polling") == 0;
		chs[r].enabled = strcmp(PQgetvalue(res, r, C_ENABLED), "t") == 0;
	}
	*n = (size_t)rows;
	return chs;
}
