/* daemon/admin/contacts.c - see contacts.h. The database validates and answers (the
 * functions of 0015 return error rows, never raise for what the caller got wrong); here the
 * path, query and body are checked for shape, the query is run and its rows turned into the
 * answer. Log lines carry ids and statuses, never a name, phone or text. */
#include "daemon/admin/contacts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/data/store.h"
#include "daemon/inbox/api.h"
#include "daemon/net/http.h"
#include "lib/json.h"
#include "lib/jwt.h"
#include "lib/log.h"
#include "lib/utf8.h"

#define TAG "admin"
#define Q_MAX 200          /* bytes of ?q= */
#define BODY_TOKENS 64     /* JSON tokens of a PATCH body */

static const char search_sql[] =
	"SELECT items, next_before FROM hub_contact_search($1, $2, $3::integer, $4::bigint)";
static const char get_sql[] = "SELECT hub_contact_get($1, $2::bigint)";
/* The export is recorded in the audit log in the same statement (one transaction), only
 * when there is something to export (CASE evaluates in order). */
static const char export_sql[] =
	"SELECT CASE WHEN x.d IS NULL OR hub_audit($1, $3, $4, 'contact.export', 'contact:' || $2,"
	" $5, '{}') > 0 THEN x.d END FROM (SELECT hub_contact_export($1, $2::bigint) AS d) x";
static const char patch_sql[] =
	"SELECT kind, event_id, event, data FROM hub_contact_patch($1, $2::bigint, $3::jsonb, "
	"$4, $5, $6)";
static const char merge_sql[] =
	"SELECT kind, event_id, event, data FROM hub_contact_merge_decide($1, $2::bigint, "
	"$3::bigint, $4::boolean, $5, $6, $7)";
static const char erase_sql[] =
	"SELECT kind, event_id, event, data FROM hub_contact_erase($1, $2::bigint, $3, $4, $5)";

struct hub_contacts {
	struct hub_store *store;
	struct hub_api *api;
	hub_publish_fn *publish;
	void *publish_data;
};

/* One request waiting for its query; allocated from the request's pool. */
struct creq {
	struct hub_contacts *c;
	struct hub_http_req *req;
	const char *tenant; /* in the pool */
	const char *id;     /* the contact id, for 404s and file names */
	bool download;
};

struct hub_contacts *hub_contacts_new(struct hub_store *store, struct hub_api *api,
				      hub_publish_fn *publish, void *data)
{
	struct hub_contacts *c = hub_xcalloc(1, sizeof(*c));

	c->store = store;
	c->api = api;
	c->publish = publish;
	c->publish_data = data;
	return c;
}

void hub_contacts_free(struct hub_contacts *c)
{
	free(c);
}

static struct creq *creq_new(struct hub_contacts *c, struct hub_http_req *req,
			     const char *tenant)
{
	struct creq *r = hub_pool_alloc(hub_http_req_pool(req), sizeof(*r));

	memset(r, 0, sizeof(*r));
	r->c = c;
	r->req = req;
	r->tenant = hub_pool_strdup(hub_http_req_pool(req), tenant);
	return r;
}

/* A positive decimal id (at most 18 digits) into out; false when it is not one. */
static bool parse_id(struct hub_str s, char out[24])
{
	if (s.len == 0 || s.len > 18 || s.p[0] == '0')
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
	memcpy(out, s.p, s.len);
	out[s.len] = '\0';
	return true;
}

/* The path's {name} as an id, or 404 with what is missing. */
static bool path_id(struct hub_http_req *req, const char *name, const char *what, char out[24])
{
	if (parse_id(hub_http_req_param(req, name), out))
		return true;
	hub_http_req_error(req, 404, "not_found", "no such %s", what);
	return false;
}

static void respond_json(struct hub_http_req *req, int status, struct hub_str body)
{
	hub_http_req_add_header(req, "Cache-Control", "no-store");
	hub_http_req_respond(req, status, "application/json", body);
}

static struct hub_str cell(PGresult *res, int row, int col)
{
	return (struct hub_str){ PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col) };
}

static void run_query(struct hub_contacts *c, struct hub_http_req *req, struct creq *r,
		      const char *sql, int n, const char *const *params, hub_store_cb *cb)
{
	int ret = hub_store_query(c->store, sql, n, params, cb, r);

	if (ret < 0)
		hub_api_store_error(req, ret);
}

/* ---- search ---- */

static void on_search(int status, PGresult *res, void *data)
{
	struct creq *r = data;
	struct hub_buf body = HUB_BUF_INIT;

	if (status < 0) {
		hub_api_store_error(r->req, status);
		return;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 2) {
		hub_api_store_error(r->req, -EPROTO);
		return;
	}
	hub_buf_adds(&body, "{\"contacts\":");
	hub_buf_addstr(&body, cell(res, 0, 0));
	hub_buf_adds(&body, ",\"next_cursor\":");
	if (PQgetisnull(res, 0, 1))
		hub_buf_adds(&body, "null");
	else
		hub_buf_addf(&body, "\"%s\"", PQgetvalue(res, 0, 1));
	hub_buf_addch(&body, '}');
	respond_json(r->req, 200, hub_buf_str(&body));
	hub_buf_release(&body);
}

void hub_contacts_handle_search(struct hub_contacts *c, struct hub_http_req *req)
{
	struct hub_jwt_claims claims;
	struct hub_str q = HUB_STR_NULL, limit = HUB_STR_NULL, before = HUB_STR_NULL;
	char qbuf[Q_MAX + 1], lim[24] = "50", bef[24];
	int64_t v = 0;
	const char *params[4];

	if (hub_api_authenticate_admin(c->api, req, &claims) < 0)
		return;
	if (hub_http_req_query_get(req, "q", &q) == -EBADMSG ||
	    hub_http_req_query_get(req, "limit", &limit) == -EBADMSG ||
	    hub_http_req_query_get(req, "before", &before) == -EBADMSG) {
		hub_http_req_error(req, 400, "bad_query",
				   "a query parameter has a bad %%-escape (a %%XX of two hex digits, "
				   "never %%00)");
		return;
	}
	if (q.len > Q_MAX || (q.len && !hub_utf8_valid(q.p, q.len))) {
		hub_http_req_error(req, 400, "bad_query", "q must be UTF-8 text of at most %d bytes",
				   Q_MAX);
		return;
	}
	if (limit.p) {
		char tmp[24];

		if (!parse_id(limit, tmp) || (v = strtoll(tmp, NULL, 10)) > HUB_API_LIMIT_MAX) {
			hub_http_req_error(req, 400, "bad_limit",
					   "limit must be an integer from 1 to %d", HUB_API_LIMIT_MAX);
			return;
		}
		snprintf(lim, sizeof(lim), "%" PRId64, v);
	}
	if (before.p && !parse_id(before, bef)) {
		hub_http_req_error(req, 400, "bad_cursor",
				   "before must be a next_cursor of this API, unchanged");
		return;
	}
	if (q.len)
		memcpy(qbuf, q.p, q.len);
	qbuf[q.len] = '\0';
	params[0] = claims.tid;
	params[1] = qbuf;
	params[2] = lim;
	params[3] = before.p ? bef : NULL;
	run_query(c, req, creq_new(c, req, claims.tid), search_sql, 4, params, on_search);
}

/* ---- get, export ---- */

static void on_document(int status, PGresult *res, void *data)
{
	struct creq *r = data;

	if (status < 0) {
		hub_api_store_error(r->req, status);
		return;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 1) {
		hub_api_store_error(r->req, -EPROTO);
		return;
	}
	if (PQgetisnull(res, 0, 0)) {
		hub_http_req_error(r->req, 404, "not_found", "no such contact");
		return;
	}
	if (r->download) {
		char disp[96];

		snprintf(disp, sizeof(disp), "attachment; filename=\"contact-%s.json\"", r->id);
		hub_http_req_add_header(r->req, "Content-Disposition", disp);
	}
	respond_json(r->req, 200, cell(res, 0, 0));
}

static void document(struct hub_contacts *c, struct hub_http_req *req, const char *sql,
		     bool export)
{
	struct hub_jwt_claims claims;
	char id[24], addr[64];
	struct creq *r;
	const char *params[5];

	if (hub_api_authenticate_admin(c->api, req, &claims) < 0 ||
	    !path_id(req, "id", "contact", id))
		return;
	r = creq_new(c, req, claims.tid);
	r->id = hub_pool_strdup(hub_http_req_pool(req), id);
	if (export) {
		struct hub_str d = hub_http_req_query(req, "download");

		r->download = d.p && (hub_str_eqs(d, "1") || hub_str_eqs(d, "true"));
		hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 " tenant=%s user=%s: export of "
			     "contact %s", hub_http_req_conn_id(req), hub_http_req_id(req),
			     claims.tid, claims.sub, id);
	}
	params[0] = claims.tid;
	params[1] = id;
	params[2] = claims.sub;
	params[3] = hub_role_name(claims.role);
	params[4] = hub_http_req_peer(req, addr, sizeof(addr));
	run_query(c, req, r, sql, export ? 5 : 2, params, on_document);
}

void hub_contacts_handle_get(struct hub_contacts *c, struct hub_http_req *req)
{
	document(c, req, get_sql, false);
}

void hub_contacts_handle_export(struct hub_contacts *c, struct hub_http_req *req)
{
	document(c, req, export_sql, true);
}

/* ---- changes ---- */

static int error_status(struct hub_str code)
{
	if (hub_str_eqs(code, "not_found"))
		return 404;
	if (hub_str_eqs(code, "invalid"))
		return 400;
	if (hub_str_eqs(code, "phone_taken") || hub_str_eqs(code, "conflict"))
		return 409;
	return 500;
}

static void on_change(int status, PGresult *res, void *data)
{
	struct creq *r = data;
	struct hub_contacts *c = r->c;
	struct hub_buf body = HUB_BUF_INIT;
	int n, result = -1;

	if (status < 0) {
		hub_api_store_error(r->req, status);
		return;
	}
	n = PQntuples(res);
	if (PQnfields(res) != 4) {
		hub_api_store_error(r->req, -EPROTO);
		return;
	}
	for (int i = 0; i < n; i++) {
		if (strcmp(PQgetvalue(res, i, 0), "error") == 0) {
			/* {"error":{"code":..., "message":..., "fields"?...}} */
			struct hub_str code = cell(res, i, 2), extra = cell(res, i, 3);

			hub_buf_adds(&body, "{\"error\":{\"code\":");
			hub_json_add_str(&body, code);
			if (extra.len > 2 && extra.p[0] == '{') {
				hub_buf_addch(&body, ',');
				hub_buf_add(&body, extra.p + 1, extra.len - 1);
			} else {
				hub_buf_addch(&body, '}');
			}
			hub_buf_addch(&body, '}');
			hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 " tenant=%s: %d %.*s",
				     hub_http_req_conn_id(r->req), hub_http_req_id(r->req), r->tenant,
				     error_status(code), HUB_STR_FMT(code));
			respond_json(r->req, error_status(code), hub_buf_str(&body));
			hub_buf_release(&body);
			return;
		}
		if (strcmp(PQgetvalue(res, i, 0), "result") == 0)
			result = i;
	}
	if (result < 0) {
		hub_api_store_error(r->req, -EPROTO);
		return;
	}
	/* committed: the events go to the open inboxes, in id order */
	for (int i = 0; i < n; i++) {
		long long id;

		if (strcmp(PQgetvalue(res, i, 0), "event") != 0)
			continue;
		id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		if (!PQgetisnull(res, i, 1) && id >= 0 && c->publish) /* 0: queued */
			c->publish(c->publish_data, hub_str_from(r->tenant), id, cell(res, i, 2),
				   cell(res, i, 3));
	}
	respond_json(r->req, 200, cell(res, result, 3));
}

void hub_contacts_run_change(struct hub_contacts *c, struct hub_http_req *req,
			     const char *tenant, const char *sql, int nparams,
			     const char *const *params)
{
	run_query(c, req, creq_new(c, req, tenant), sql, nparams, params, on_change);
}

/* The body of a PATCH: a JSON object of valid UTF-8 without NUL (PostgreSQL's jsonb
 * refuses \u0000). Answers 400 and returns false otherwise. */
static bool body_object(struct hub_http_req *req)
{
	struct hub_str b = hub_http_req_body(req);
	struct hub_err err = HUB_ERR_INIT;
	struct hub_json_doc doc;

	if (b.len == 0 || !hub_utf8_valid(b.p, b.len) || memchr(b.p, '\0', b.len)) {
		hub_http_req_error(req, 400, "bad_json", "the body must be UTF-8 JSON");
		return false;
	}
	if (hub_json_parse(hub_http_req_pool(req), b, BODY_TOKENS, &doc, &err) < 0) {
		hub_http_req_error(req, 400, "bad_json", "the body is not JSON: %s", err.msg);
		return false;
	}
	if (!hub_json_is(&doc, 0, HUB_JSON_OBJECT)) {
		hub_http_req_error(req, 400, "bad_json", "the body must be a JSON object");
		return false;
	}
	for (size_t i = 0; i + 6 <= b.len; i++) {
		if (b.p[i] == '\\' && b.p[i + 1] == 'u' && memcmp(b.p + i + 2, "0000", 4) == 0) {
			hub_http_req_error(req, 400, "bad_json", "the body must not hold \\u0000");
			return false;
		}
		if (b.p[i] == '\\')
			i++; /* an escaped backslash is not the start of an escape */
	}
	return true;
}

void hub_contacts_handle_patch(struct hub_contacts *c, struct hub_http_req *req)
{
	struct hub_jwt_claims claims;
	char id[24], addr[64];
	struct hub_str body;
	char *json;
	const char *params[6];

	if (hub_api_authenticate_admin(c->api, req, &claims) < 0 ||
	    !path_id(req, "id", "contact", id) || !body_object(req))
		return;
	body = hub_http_req_body(req);
	json = hub_pool_strndup(hub_http_req_pool(req), body.p, body.len);
	params[0] = claims.tid;
	params[1] = id;
	params[2] = json;
	params[3] = claims.sub;
	params[4] = hub_role_name(claims.role);
	params[5] = hub_http_req_peer(req, addr, sizeof(addr));
	hub_contacts_run_change(c, req, claims.tid, patch_sql, 6, params);
}

void hub_contacts_handle_merge(struct hub_contacts *c, struct hub_http_req *req)
{
	struct hub_jwt_claims claims;
	char id[24], sid[24], addr[64];
	struct hub_str action;
	const char *params[7];

	if (hub_api_authenticate_admin(c->api, req, &claims) < 0 ||
	    !path_id(req, "id", "contact", id) || !path_id(req, "sid", "merge suggestion", sid))
		return;
	action = hub_http_req_param(req, "action");
	if (!hub_str_eqs(action, "confirm") && !hub_str_eqs(action, "dismiss")) {
		hub_http_req_error(req, 404, "not_found",
				   "a merge suggestion is confirmed or dismissed: .../confirm or "
				   ".../dismiss");
		return;
	}
	params[0] = claims.tid;
	params[1] = id;
	params[2] = sid;
	params[3] = hub_str_eqs(action, "confirm") ? "true" : "false";
	params[4] = claims.sub;
	params[5] = hub_role_name(claims.role);
	params[6] = hub_http_req_peer(req, addr, sizeof(addr));
	hub_contacts_run_change(c, req, claims.tid, merge_sql, 7, params);
}

void hub_contacts_handle_erase(struct hub_contacts *c, struct hub_http_req *req)
{
	struct hub_jwt_claims claims;
	char id[24], addr[64];
	const char *params[5];

	if (hub_api_authenticate_admin(c->api, req, &claims) < 0 ||
	    !path_id(req, "id", "contact", id))
		return;
	hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 " tenant=%s user=%s: erasing contact %s",
		     hub_http_req_conn_id(req), hub_http_req_id(req), claims.tid, claims.sub, id);
	params[0] = claims.tid;
	params[1] = id;
	params[2] = claims.sub;
	params[3] = hub_role_name(claims.role);
	params[4] = hub_http_req_peer(req, addr, sizeof(addr));
	hub_contacts_run_change(c, req, claims.tid, erase_sql, 5, params);
}
