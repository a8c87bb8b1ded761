/* daemon/admin/privacy.c - see privacy.h. A round walks the steps below in order; each step
 * repeats its statement while the last one removed a full batch (more may be due), then the
 * next step; after the last step the timer waits privacy.interval_ms. At most one statement
 * of this job is running at any time, so the job holds one pooled connection at most. */
#include "daemon/admin/privacy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/admin/contacts.h"
#include "daemon/data/store.h"
#include "daemon/inbox/api.h"
#include "daemon/net/http.h"
#include "lib/jwt.h"
#include "lib/log.h"
#include "lib/mem.h"

#define TAG "privacy"
/* Statements of one step in one round, at most: a backlog is worked off over rounds. */
#define STEP_MAX 1000

static const char purge_sql[] =
	"SELECT o_tenant, o_what, o_rows FROM hub_privacy_purge($1::bigint, $2::integer)";
static const char prune_sql[] = "SELECT hub_privacy_prune($1, $2::bigint, $3::integer)";
static const char delete_sql[] =
	"SELECT kind, event_id, event, data FROM hub_tenant_delete($1, $2::bigint, $3, $4, $5)";

enum step { STEP_PURGE, STEP_EVENTS, STEP_INGEST_KEYS, STEP_STATUSES, STEP_DONE };
static const char *const step_name[] = { "purge", "events", "ingest_keys",
					 "message_statuses" };

struct hub_privacy {
	uv_loop_t *loop;
	struct hub_store *store;
	struct hub_api *api;
	struct hub_contacts *contacts;
	struct hub_privacy_opts opts;
	uv_timer_t timer;
	enum step step;
	int runs;             /* statements of this step in this round */
	long long removed[4]; /* rows removed this round, per step */
	bool busy;            /* a statement is running */
	bool stopping;
};

static void round_next(struct hub_privacy *p);

static void on_timer(uv_timer_t *t)
{
	struct hub_privacy *p = t->data;

	if (p->busy || p->stopping)
		return;
	p->step = STEP_PURGE;
	p->runs = 0;
	memset(p->removed, 0, sizeof(p->removed));
	round_next(p);
}

static void round_end(struct hub_privacy *p)
{
	if (p->removed[0] || p->removed[1] || p->removed[2] || p->removed[3])
		hub_log_info(TAG, "removed %lld rows of deleted tenants, %lld events, %lld "
			     "ingest keys, %lld statuses", p->removed[0], p->removed[1],
			     p->removed[2], p->removed[3]);
	if (!p->stopping)
		uv_timer_start(&p->timer, on_timer, (uint64_t)p->opts.interval_ms, 0);
}

static void on_done(int status, PGresult *res, void *data)
{
	struct hub_privacy *p = data;
	long long n = 0;
	bool more;

	p->busy = false;
	if (p->stopping || status == -ECANCELED)
		return;
	if (status < 0 || PQntuples(res) != 1) {
		hub_log_warn(TAG, "%s: %s; again in %d ms", step_name[p->step],
			     status < 0 ? strerror(-status) : "no row", p->opts.interval_ms);
		round_end(p);
		return;
	}
	if (p->step == STEP_PURGE) {
		n = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
		if (n > 0 && strcmp(PQgetvalue(res, 0, 1), "tenant") == 0)
			hub_log_info(TAG, "tenant=%s: purged (deleted %d s ago or more)",
				     PQgetvalue(res, 0, 0), p->opts.purge_after_s);
		more = n > 0; /* a step of another table, or the next tenant */
	} else {
		n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		more = n >= p->opts.batch;
	}
	p->removed[p->step] += n;
	if (more && ++p->runs < STEP_MAX) {
		round_next(p);
		return;
	}
	p->step++;
	p->runs = 0;
	round_next(p);
}

/* Runs the current step's statement, skipping retention that is off. */
static void round_next(struct hub_privacy *p)
{
	char a[24], b[24];
	const char *params[3];
	int ret, age = 0;

	while (p->step != STEP_PURGE && p->step < STEP_DONE) {
		age = p->step == STEP_EVENTS	   ? p->opts.events_s
		      : p->step == STEP_INGEST_KEYS ? p->opts.ingest_keys_s
						    : p->opts.statuses_s;
		if (age > 0)
			break;
		p->step++;
	}
	if (p->step == STEP_DONE) {
		round_end(p);
		return;
	}
	if (p->step == STEP_PURGE) {
		snprintf(a, sizeof(a), "%d", p->opts.purge_after_s);
		snprintf(b, sizeof(b), "%d", p->opts.batch);
		params[0] = a;
		params[1] = b;
		ret = hub_store_query(p->store, purge_sql, 2, params, on_done, p);
	} else {
		snprintf(a, sizeof(a), "%d", age);
		snprintf(b, sizeof(b), "%d", p->opts.batch);
		params[0] = step_name[p->step];
		params[1] = a;
		params[2] = b;
		ret = hub_store_query(p->store, prune_sql, 3, params, on_done, p);
	}
	if (ret < 0) {
		hub_log_warn(TAG, "%s: %s; again in %d ms", step_name[p->step], strerror(-ret),
			     p->opts.interval_ms);
		round_end(p);
		return;
	}
	p->busy = true;
}

int hub_privacy_new(uv_loop_t *loop, struct hub_store *store, struct hub_api *api,
		    struct hub_contacts *contacts, const struct hub_privacy_opts *opts,
		    struct hub_privacy **out)
{
	struct hub_privacy *p = hub_xcalloc(1, sizeof(*p));
	int ret;

	p->loop = loop;
	p->store = store;
	p->api = api;
	p->contacts = contacts;
	p->opts = *opts;
	ret = uv_timer_init(loop, &p->timer);
	if (ret < 0) {
		free(p);
		return ret;
	}
	p->timer.data = p;
	uv_timer_start(&p->timer, on_timer, (uint64_t)p->opts.interval_ms, 0);
	*out = p;
	return 0;
}

void hub_privacy_set_opts(struct hub_privacy *p, const struct hub_privacy_opts *opts)
{
	bool sooner = opts->interval_ms < p->opts.interval_ms;

	p->opts = *opts;
	/* a shorter interval applies now, not after the long wait already armed */
	if (sooner && !p->busy && !p->stopping)
		uv_timer_start(&p->timer, on_timer, (uint64_t)p->opts.interval_ms, 0);
}

void hub_privacy_stop(struct hub_privacy *p)
{
	if (!p || p->stopping)
		return;
	p->stopping = true;
	uv_close((uv_handle_t *)&p->timer, NULL);
}

void hub_privacy_free(struct hub_privacy *p)
{
	free(p);
}

void hub_privacy_handle_tenant_delete(struct hub_privacy *p, struct hub_http_req *req)
{
	struct hub_jwt_claims claims;
	char after[24], addr[64];
	const char *params[5];

	if (hub_api_authenticate_admin(p->api, req, &claims) < 0)
		return;
	if (hub_str_eqs(hub_http_req_query(req, "confirm"), claims.tid) == false) {
		hub_http_req_error(req, 400, "confirm",
				   "deleting the company's account stops its channels now and "
				   "removes all its data later: repeat with ?confirm=<tenant id>");
		return;
	}
	hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 " tenant=%s user=%s: deleting the tenant",
		     hub_http_req_conn_id(req), hub_http_req_id(req), claims.tid, claims.sub);
	snprintf(after, sizeof(after), "%d", p->opts.purge_after_s);
	params[0] = claims.tid;
	params[1] = after;
	params[2] = claims.sub;
	params[3] = hub_role_name(claims.role);
	params[4] = hub_http_req_peer(req, addr, sizeof(addr));
	hub_contacts_run_change(p->contacts, req, claims.tid, delete_sql, 5, params);
}
