/* daemon/inbox/api.c - see api.h. Each request is one query (one SQL function call in
 * autocommit, read only); the page and its cursor come back in one row, and the body is
 * assembled here around the JSON the database wrote. Log lines carry ids and counts, never
 * a token or a text. */
#include "daemon/inbox/api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "daemon/data/store.h"
#include "daemon/net/http.h"
#include "lib/crypto.h"
#include "lib/jwt.h"
#include "lib/log.h"
#include "lib/pace.h"
#include "lib/revoke.h"

#define TAG "api"
/* Tokens remembered by the rate limit beyond which those that limit nothing are forgotten. */
#define PACE_KEYS_EXPIRE 4096
#define CURSOR_MAX 64 /* characters of a conversations cursor; longer: 400 */
/* Activity in a cursor: from the epoch to the end of the year 9999, in microseconds (what
 * PostgreSQL's timestamptz holds; beyond it the query would fail, not answer 400). */
#define CURSOR_US_MAX INT64_C(253402300799999999)

static const char conversations_sql[] =
	"SELECT items, next_us, next_id FROM hub_api_conversations($1, $2::integer, "
	"$3::bigint, $4::bigint)";
static const char messages_sql[] =
	"SELECT items, next_before FROM hub_api_messages($1, $2::bigint, $3::integer, "
	"$4::bigint)";

struct hub_api {
	struct hub_store *store;
	struct hub_pace *pace;     /* api.rate_per_s per token: key "<tid>\n<sub>" */
	uint64_t interval_us;      /* 0: no limit */
	unsigned burst;
	struct hub_buf secret;
	int max_token_ttl_s;
	struct hub_revocations *revoked; /* NULL: none */
};

/* One request waiting for its query; allocated from the request's pool. */
struct api_req {
	struct hub_http_req *req;
	const char *list; /* "conversations" or "messages": the key of the array */
};

struct hub_api *hub_api_new(struct hub_store *store, struct hub_str jwt_secret,
			    int max_token_ttl_s)
{
	struct hub_api *api = hub_xcalloc(1, sizeof(*api));

	api->store = store;
	api->pace = hub_pace_new();
	hub_buf_init(&api->secret);
	hub_api_set_auth(api, jwt_secret, max_token_ttl_s);
	return api;
}

void hub_api_set_auth(struct hub_api *api, struct hub_str jwt_secret, int max_token_ttl_s)
{
	hub_buf_reset(&api->secret);
	hub_buf_addstr(&api->secret, jwt_secret);
	api->max_token_ttl_s = max_token_ttl_s;
}

void hub_api_set_rate(struct hub_api *api, int per_s, int burst)
{
	api->interval_us = per_s > 0 ? 1000000u / (unsigned)per_s : 0;
	api->burst = burst > 0 ? (unsigned)burst : 1;
}

/* The token's share of api.rate_per_s: 0, or answers 429 with Retry-After and -EAGAIN. */
static int rate_limit(struct hub_api *api, struct hub_http_req *req,
		      const struct hub_jwt_claims *claims)
{
	struct hub_buf key = HUB_BUF_INIT;
	uint64_t now = uv_hrtime() / 1000, wait;
	char secs[24];

	if (!api->interval_us)
		return 0;
	if (hub_pace_size(api->pace) > PACE_KEYS_EXPIRE)
		hub_pace_expire(api->pace, now);
	hub_buf_addf(&key, "%s\n%s", claims->tid, claims->sub);
	wait = hub_pace_admit(api->pace, hub_buf_str(&key), now, api->interval_us, api->burst);
	hub_buf_release(&key);
	if (!wait)
		return 0;
	snprintf(secs, sizeof(secs), "%" PRIu64, (wait + 999999) / 1000000);
	hub_log_debug(TAG, "conn=%" PRIu64 " req=%" PRIu64 ": 429 rate limited",
		      hub_http_req_conn_id(req), hub_http_req_id(req));
	hub_http_req_add_header(req, "Retry-After", secs);
	hub_http_req_error(req, 429, "rate_limited",
			   "too many requests with this token: retry after %s s", secs);
	return -EAGAIN;
}

void hub_api_set_revocations(struct hub_api *api, struct hub_revocations *rv)
{
	if (rv)
		hub_revocations_ref(rv);
	hub_revocations_unref(api->revoked);
	api->revoked = rv;
}

void hub_api_free(struct hub_api *api)
{
	if (!api)
		return;
	hub_revocations_unref(api->revoked);
	hub_pace_free(api->pace);
	hub_buf_release(&api->secret);
	free(api);
}

int hub_api_authenticate(struct hub_api *api, struct hub_http_req *req,
			 struct hub_jwt_claims *claims)
{
	struct hub_str h = hub_http_req_header(req, "Authorization");
	struct hub_err err = HUB_ERR_INIT;
	struct timespec now;

	if (h.len < 7 || !hub_str_caseeqs((struct hub_str){ h.p, 7 }, "Bearer ")) {
		hub_http_req_add_header(req, "WWW-Authenticate", "Bearer realm=\"bayge\"");
		hub_http_req_error(req, 401, "missing_token",
				   "send the access token as Authorization: Bearer <token>");
		return -EPERM;
	}
	struct hub_str token = { h.p + 7, h.len - 7 };
	while (token.len && token.p[0] == ' ') {
		token.p++;
		token.len--;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if (hub_jwt_verify(token, hub_buf_str(&api->secret), (int64_t)now.tv_sec, claims,
			   &err) < 0 ||
	    hub_jwt_check_ttl(claims, api->max_token_ttl_s, (int64_t)now.tv_sec, &err) < 0 ||
	    hub_revocations_check(api->revoked, claims, &err) < 0) {
		hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 ": 401 %s",
			     hub_http_req_conn_id(req), hub_http_req_id(req), err.msg);
		hub_http_req_add_header(req, "WWW-Authenticate",
					"Bearer realm=\"bayge\", error=\"invalid_token\"");
		hub_http_req_error(req, 401, "bad_token", "%s", err.msg);
		return -EPERM;
	}
	if (rate_limit(api, req, claims) < 0)
		return -EPERM;
	return 0;
}

int hub_api_authenticate_admin(struct hub_api *api, struct hub_http_req *req,
			       struct hub_jwt_claims *claims)
{
	if (hub_api_authenticate(api, req, claims) < 0)
		return -EPERM;
	if (claims->role != HUB_ROLE_ADMIN) {
		hub_http_req_error(req, 403, "forbidden", "this needs an admin's token");
		return -EPERM;
	}
	return 0;
}

/* A decimal integer in [min, max] with nothing around it. */
static int parse_int(struct hub_str s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;
	bool neg = s.len && s.p[0] == '-';
	size_t i = neg;

	if (i == s.len || s.len > 20)
		return -EINVAL;
	for (; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -EINVAL;
		if (v > (INT64_MAX - (s.p[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (s.p[i] - '0');
	}
	if (neg)
		v = -v;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* Query parameter name into *s (HUB_STR_NULL when absent); answers 400 and returns
 * -EINVAL when its value has a bad %-escape (never taken for an absent one). */
static int query(struct hub_http_req *req, const char *name, struct hub_str *s)
{
	int ret = hub_http_req_query_get(req, name, s);

	if (ret == -EBADMSG) {
		hub_http_req_error(req, 400, "bad_query",
				   "%s has a bad %%-escape (a %%XX of two hex digits, never %%00)",
				   name);
		return -EINVAL;
	}
	return 0;
}

/* ?limit=: HUB_API_LIMIT_DEFAULT when absent; answers 400 and returns -EINVAL when bad. */
static int parse_limit(struct hub_http_req *req, char out[8])
{
	struct hub_str s;
	int64_t v = HUB_API_LIMIT_DEFAULT;

	if (query(req, "limit", &s) < 0)
		return -EINVAL;
	if (s.p && parse_int(s, 1, HUB_API_LIMIT_MAX, &v) < 0) {
		hub_http_req_error(req, 400, "bad_limit", "limit must be an integer from 1 to %d",
				   HUB_API_LIMIT_MAX);
		return -EINVAL;
	}
	snprintf(out, 8, "%" PRId64, v);
	return 0;
}

/* The conversations cursor: base64url of "<activity in microseconds>.<id>". */
static void cursor_encode(struct hub_buf *out, const char *us, const char *id)
{
	struct hub_buf raw = HUB_BUF_INIT;

	hub_buf_addf(&raw, "%s.%s", us, id);
	hub_base64url_add(out, raw.p, raw.len);
	hub_buf_release(&raw);
}

static int cursor_decode(struct hub_str cursor, char us[24], char id[24])
{
	struct hub_buf raw = HUB_BUF_INIT;
	int64_t v_us, v_id;
	const char *dot;
	int ret = -EINVAL;

	if (cursor.len == 0 || cursor.len > CURSOR_MAX ||
	    hub_base64url_decode(&raw, cursor) < 0)
		goto out;
	dot = memchr(raw.p, '.', raw.len);
	if (!dot || parse_int((struct hub_str){ raw.p, (size_t)(dot - raw.p) }, 0,
			      CURSOR_US_MAX, &v_us) < 0 ||
	    parse_int((struct hub_str){ dot + 1, raw.len - (size_t)(dot + 1 - raw.p) }, 1,
		      INT64_MAX, &v_id) < 0)
		goto out;
	snprintf(us, 24, "%" PRId64, v_us);
	snprintf(id, 24, "%" PRId64, v_id);
	ret = 0;
out:
	hub_buf_release(&raw);
	return ret;
}

void hub_api_store_error(struct hub_http_req *req, int status)
{
	hub_log_warn(TAG, "conn=%" PRIu64 " req=%" PRIu64 ": query failed: %s",
		     hub_http_req_conn_id(req), hub_http_req_id(req), strerror(-status));
	if (status == -EIO || status == -EPROTO)
		hub_http_req_error(req, 500, "internal", "the query failed");
	else
		hub_http_req_error(req, 503, "database_unavailable",
				   "the message store is unavailable; retry later");
}

static struct hub_str value(PGresult *res, int col)
{
	return (struct hub_str){ PQgetvalue(res, 0, col), (size_t)PQgetlength(res, 0, col) };
}

/* Both queries answer one row (items, cursor parts); none for an unknown conversation. */
static void on_page(int status, PGresult *res, void *data)
{
	struct api_req *ar = data;
	bool convs = strcmp(ar->list, "conversations") == 0;
	struct hub_buf body = HUB_BUF_INIT;

	if (status < 0) {
		hub_api_store_error(ar->req, status);
		return;
	}
	if (PQntuples(res) == 0 && !convs) {
		hub_http_req_error(ar->req, 404, "unknown_conversation", "no such conversation");
		return;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != (convs ? 3 : 2)) {
		hub_api_store_error(ar->req, -EPROTO);
		return;
	}
	hub_buf_addf(&body, "{\"%s\":", ar->list);
	hub_buf_addstr(&body, value(res, 0));
	hub_buf_adds(&body, ",\"next_cursor\":");
	if (PQgetisnull(res, 0, 1)) {
		hub_buf_adds(&body, "null");
	} else {
		hub_buf_addch(&body, '"');
		if (convs)
			cursor_encode(&body, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
		else
			hub_buf_addstr(&body, value(res, 1));
		hub_buf_addch(&body, '"');
	}
	hub_buf_addch(&body, '}');
	hub_http_req_add_header(ar->req, "Cache-Control", "no-store");
	hub_http_req_respond(ar->req, 200, "application/json", hub_buf_str(&body));
	hub_buf_release(&body);
}

static void run(struct hub_api *api, struct hub_http_req *req, const char *list,
		const char *sql, const char *const params[4])
{
	struct api_req *ar = hub_pool_alloc(hub_http_req_pool(req), sizeof(*ar));
	int ret;

	ar->req = req;
	ar->list = list;
	ret = hub_store_query(api->store, sql, 4, params, on_page, ar);
	if (ret < 0)
		hub_api_store_error(req, ret);
}

void hub_api_handle_conversations(struct hub_api *api, struct hub_http_req *req)
{
	struct hub_jwt_claims claims;
	struct hub_str before;
	char limit[8], us[24], id[24];
	const char *params[4];

	if (hub_api_authenticate(api, req, &claims) < 0 || parse_limit(req, limit) < 0 ||
	    query(req, "before", &before) < 0)
		return;
	if (before.p && cursor_decode(before, us, id) < 0) {
		hub_http_req_error(req, 400, "bad_cursor",
				   "before must be a next_cursor of this API, unchanged");
		return;
	}
	params[0] = claims.tid;
	params[1] = limit;
	params[2] = before.p ? us : NULL;
	params[3] = before.p ? id : NULL;
	run(api, req, "conversations", conversations_sql, params);
}

void hub_api_handle_messages(struct hub_api *api, struct hub_http_req *req)
{
	struct hub_jwt_claims claims;
	struct hub_str before;
	char limit[8], conv[24], msg[24];
	int64_t v;
	const char *params[4];

	if (hub_api_authenticate(api, req, &claims) < 0 || parse_limit(req, limit) < 0)
		return;
	if (parse_int(hub_http_req_param(req, "id"), 1, INT64_MAX, &v) < 0) {
		hub_http_req_error(req, 404, "unknown_conversation", "no such conversation");
		return;
	}
	snprintf(conv, sizeof(conv), "%" PRId64, v);
	if (query(req, "before", &before) < 0)
		return;
	if (before.p && parse_int(before, 1, INT64_MAX, &v) < 0) {
		hub_http_req_error(req, 400, "bad_cursor",
				   "before must be a message id (a next_cursor of this API)");
		return;
	}
	snprintf(msg, sizeof(msg), "%" PRId64, v);
	params[0] = claims.tid;
	params[1] = conv;
	params[2] = limit;
	params[3] = before.p ? msg : NULL;
	run(api, req, "messages", messages_sql, params);
}
