/* daemon/admin/audit.c - see audit.h. One read-only query; the page comes back as JSON. */
#include "daemon/admin/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/data/store.h"
#include "daemon/inbox/api.h"
#include "daemon/net/http.h"
#include "lib/jwt.h"

/* A decimal integer in [min, max] with nothing around it. */
static int parse_int(struct hub_str s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (s.len == 0 || s.len > 19)
		return -EINVAL;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -EINVAL;
		v = v * 10 + (s.p[i] - '0');
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static void on_page(int status, PGresult *res, void *data)
{
	struct hub_http_req *req = data;
	struct hub_buf body = HUB_BUF_INIT;

	if (status < 0) {
		hub_api_store_error(req, status);
		return;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 2) {
		hub_api_store_error(req, -EPROTO);
		return;
	}
	hub_buf_adds(&body, "{\"records\":");
	hub_buf_add(&body, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
	hub_buf_adds(&body, ",\"next_cursor\":");
	if (PQgetisnull(res, 0, 1))
		hub_buf_adds(&body, "null");
	else
		hub_buf_addf(&body, "\"%s\"", PQgetvalue(res, 0, 1));
	hub_buf_addch(&body, '}');
	hub_http_req_add_header(req, "Cache-Control", "no-store");
	hub_http_req_respond(req, 200, "application/json", hub_buf_str(&body));
	hub_buf_release(&body);
}

void hub_admin_audit_handle(struct hub_store *store, struct hub_api *api,
			    struct hub_http_req *req)
{
	struct hub_jwt_claims *claims = hub_pool_calloc(hub_http_req_pool(req), 1, sizeof(*claims));
	struct hub_str limit_s, before_s;
	int64_t limit = HUB_ADMIN_AUDIT_LIMIT_DEFAULT, before = 0;
	char limit_v[24], before_v[24];
	int ret;

	if (hub_api_authenticate_admin(api, req, claims) < 0)
		return;
	if (hub_http_req_query_get(req, "limit", &limit_s) == -EBADMSG ||
	    (limit_s.p && parse_int(limit_s, 1, HUB_ADMIN_AUDIT_LIMIT_MAX, &limit) < 0)) {
		hub_http_req_error(req, 400, "bad_limit", "limit must be an integer from 1 to %d",
				   HUB_ADMIN_AUDIT_LIMIT_MAX);
		return;
	}
	if (hub_http_req_query_get(req, "before", &before_s) == -EBADMSG ||
	    (before_s.p && parse_int(before_s, 1, INT64_MAX / 10, &before) < 0)) {
		hub_http_req_error(req, 400, "bad_cursor",
				   "before must be a next_cursor of this API, unchanged");
		return;
	}
	snprintf(limit_v, sizeof(limit_v), "%" PRId64, limit);
	snprintf(before_v, sizeof(before_v), "%" PRId64, before);
	const char *params[] = { claims->tid, limit_v, before_s.p ? before_v : NULL };
	ret = hub_store_query(store, "SELECT items, next_before FROM hub_admin_audit($1, "
			      "$2::integer, $3::bigint)", 3, params, on_page, req);
	if (ret < 0)
		hub_api_store_error(req, ret);
}
