/* daemon/inbound/profiles.c - see profiles.h. A lookup is one claimed request: ask the
 * platform, then one query records the outcome (apply, later, or never). */
#include "daemon/inbound/profiles.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "adapters/instagram.h"
#include "config/config.h"
#include "daemon/data/store.h"
#include "daemon/net/httpc.h"
#include "lib/log.h"
#include "lib/pool.h"

#define TAG "profiles"
#define BATCH 16             /* lookups claimed at once (and in flight, at most) */
#define LEASE_MS 60000       /* a claimed lookup is this instance's for so long */
#define IDLE_POLL_MS 60000   /* looked at even without a NOTIFY */
#define RETRY_MS 60000       /* a lookup that could not be made now: again after */
#define MAX_ATTEMPTS 5       /* then the IGSID stays */

static const char claim_sql[] =
	"SELECT request_id, attempts, channel, external_id, tenant_id "
	"FROM hub_profile_claim($1::integer, $2::integer)";
static const char next_sql[] =
	"SELECT ceil(extract(epoch FROM hub_profile_next() - clock_timestamp()) * 1000)::bigint";
static const char apply_sql[] =
	"SELECT tenant, event_id, event, data FROM hub_profile_apply($1, $2::bigint, $3, $4)";
static const char later_sql[] = "SELECT hub_profile_later($1, $2::bigint, $3::integer)";

struct lookup {
	struct hub_profiles *pr;
	struct hub_pool pool;
	struct hub_config *cfg;  /* the snapshot it was claimed with (ch in it) */
	char *tenant;            /* the request's tenant */
	char *request;           /* the request's id, as text */
	int attempts;
	char *channel;
	struct hub_httpc_call *call;
};

struct hub_profiles {
	uv_loop_t *loop;
	struct hub_store *store;
	struct hub_httpc *httpc;
	struct hub_config *cfg;
	hub_publish_fn *publish;
	void *data;
	uv_timer_t timer;
	int in_flight;           /* lookups claimed and not recorded */
	bool querying, again, stopped;
};

static void poll_requests(struct hub_profiles *pr);

static void lookup_free(struct lookup *lk)
{
	struct hub_profiles *pr = lk->pr;

	hub_config_unref(lk->cfg);
	hub_pool_release(&lk->pool);
	free(lk);
	if (--pr->in_flight == 0)
		poll_requests(pr);
}

static void on_recorded(int status, PGresult *res, void *data)
{
	struct lookup *lk = data;

	if (status == 0) {
		hub_publish_rows(lk->pr->publish, lk->pr->data, res);
	} else if (status != -ECANCELED) {
		hub_log_warn(TAG, "channel=%s: a lookup's outcome not recorded (%s): its lease "
			     "brings it back", lk->channel, strerror(-status));
	}
	lookup_free(lk);
}

static void record(struct lookup *lk, const char *sql, const char *a, const char *b)
{
	const char *params[4] = { lk->tenant, lk->request, a, b };

	if (hub_store_query(lk->pr->store, sql, sql == apply_sql ? 4 : 3, params, on_recorded,
			    lk) < 0)
		lookup_free(lk); /* the lease brings it back */
}

/* Not now: again later, or never once the attempts are spent (delay NULL). */
static void later(struct lookup *lk, int64_t delay_ms)
{
	if (lk->attempts >= MAX_ATTEMPTS)
		record(lk, later_sql, NULL, NULL);
	else
		record(lk, later_sql, hub_pool_sprintf(&lk->pool, "%" PRId64,
						       delay_ms > RETRY_MS ? delay_ms : RETRY_MS),
		       NULL);
}

static void on_answer(int status, const struct hub_httpc_resp *resp, void *data)
{
	struct lookup *lk = data;
	struct hub_str name, username, why;
	int64_t wait;
	int ret;

	lk->call = NULL;
	if (status == -ECANCELED) {
		lookup_free(lk);
		return;
	}
	ret = hub_instagram_parse_profile(&lk->pool, resp ? resp->status : 0,
					  resp ? hub_httpc_resp_header(resp, "retry-after")
					       : HUB_STR_NULL,
					  resp ? resp->body : HUB_STR_NULL, &name, &username, &wait,
					  &why);
	if (ret == 0) {
		record(lk, apply_sql, hub_pool_strndup(&lk->pool, name.p, name.len),
		       hub_pool_strndup(&lk->pool, username.p, username.len));
	} else if (ret == -EAGAIN) {
		hub_log_debug(TAG, "channel=%s: profile lookup not answered (%s): later",
			      lk->channel, status < 0 ? strerror(-status) : "temporary");
		later(lk, wait);
	} else {
		hub_log_info(TAG, "channel=%s: the platform gives no profile (%.*s): the sender "
			     "stays shown by id", lk->channel, HUB_STR_FMT(why));
		record(lk, later_sql, NULL, NULL);
	}
}

static void lookup_start(struct lookup *lk, const char *igsid)
{
	const struct hub_settings *s = hub_config_settings(lk->cfg);
	const struct hub_channel *ch = hub_config_channel(lk->cfg, hub_str_from(lk->channel));
	struct hub_err err = HUB_ERR_INIT;
	struct hub_send_req sr;
	struct hub_httpc_header auth;

	if (!ch || !ch->enabled || !ch->access_token) { /* nothing to ask with */
		record(lk, later_sql, NULL, NULL);
		return;
	}
	if (hub_instagram_profile_req(&lk->pool, ch, s->platforms.meta_api_version,
				      hub_str_from(igsid), &sr, &err) < 0) {
		hub_log_info(TAG, "channel=%s: no profile lookup: %s", lk->channel, err.msg);
		record(lk, later_sql, NULL, NULL);
		return;
	}
	auth = (struct hub_httpc_header){
		"Authorization", hub_pool_strndup(&lk->pool, sr.authorization.p, sr.authorization.len)
	};
	struct hub_httpc_req req = {
		.method = sr.method,
		.url = hub_pool_sprintf(&lk->pool, "%s%.*s", s->platforms.url[ch->kind],
					HUB_STR_FMT(sr.path)),
		.headers = &auth,
		.nheaders = 1,
		.connect_timeout_ms = s->platforms.connect_timeout_ms,
		.response_timeout_ms = s->platforms.response_timeout_ms,
		.retry_on_stale = true, /* a GET */
	};
	if (hub_httpc_request(lk->pr->httpc, &req, on_answer, lk, &lk->call) < 0)
		later(lk, RETRY_MS);
}

/* ---- claiming ---- */

static void on_timer(uv_timer_t *t)
{
	poll_requests(t->data);
}

static void wake_in(struct hub_profiles *pr, uint64_t ms)
{
	if (!pr->stopped)
		uv_timer_start(&pr->timer, on_timer, ms, 0);
}

static void on_next(int status, PGresult *res, void *data)
{
	struct hub_profiles *pr = data;
	uint64_t ms = status < 0 ? RETRY_MS : IDLE_POLL_MS;

	pr->querying = false;
	if (status == 0 && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		long long due = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		ms = due <= 0 ? 0 : due < IDLE_POLL_MS ? (uint64_t)due : IDLE_POLL_MS;
	}
	if (pr->again)
		poll_requests(pr);
	else
		wake_in(pr, ms);
}

static void on_claimed(int status, PGresult *res, void *data)
{
	struct hub_profiles *pr = data;
	int rows = status < 0 ? 0 : PQntuples(res);

	pr->querying = false;
	if (status < 0) {
		if (status != -ECANCELED)
			wake_in(pr, RETRY_MS);
		return;
	}
	pr->in_flight += rows;
	for (int i = 0; i < rows; i++) {
		struct lookup *lk = hub_xcalloc(1, sizeof(*lk));

		lk->pr = pr;
		hub_pool_init(&lk->pool);
		lk->cfg = hub_config_ref(pr->cfg);
		lk->tenant = hub_pool_strdup(&lk->pool, PQgetvalue(res, i, 4));
		lk->request = hub_pool_strdup(&lk->pool, PQgetvalue(res, i, 0));
		lk->attempts = atoi(PQgetvalue(res, i, 1));
		lk->channel = hub_pool_strdup(&lk->pool, PQgetvalue(res, i, 2));
		lookup_start(lk, PQgetvalue(res, i, 3));
	}
	if (rows == 0) {
		if (hub_store_query(pr->store, next_sql, 0, NULL, on_next, pr) == 0)
			pr->querying = true;
		else
			wake_in(pr, RETRY_MS);
	}
}

/* Claims a batch when none is in flight; the last lookup of a batch claims the next. */
static void poll_requests(struct hub_profiles *pr)
{
	char limit[16], lease[16];
	const char *params[2] = { limit, lease };

	if (pr->stopped || !pr->cfg)
		return;
	if (pr->querying || pr->in_flight) {
		pr->again = true;
		return;
	}
	pr->again = false;
	uv_timer_stop(&pr->timer);
	snprintf(limit, sizeof(limit), "%d", BATCH);
	snprintf(lease, sizeof(lease), "%d", LEASE_MS);
	if (hub_store_query(pr->store, claim_sql, 2, params, on_claimed, pr) < 0)
		wake_in(pr, RETRY_MS);
	else
		pr->querying = true;
}

static void on_notify(const char *payload, void *data)
{
	(void)payload;
	poll_requests(data);
}

/* ---- the service ---- */

int hub_profiles_new(uv_loop_t *loop, struct hub_store *store, struct hub_httpc *httpc,
		     hub_publish_fn *publish, void *data, struct hub_profiles **out,
		     struct hub_err *err)
{
	struct hub_profiles *pr = hub_xcalloc(1, sizeof(*pr));
	int ret;

	pr->loop = loop;
	pr->store = store;
	pr->httpc = httpc;
	pr->publish = publish;
	pr->data = data;
	uv_timer_init(loop, &pr->timer);
	pr->timer.data = pr;
	ret = hub_store_listen(store, "hub_profiles", on_notify, pr);
	if (ret < 0) {
		hub_profiles_free(pr);
		return hub_err_set(err, ret, "cannot listen for profile lookups: %s",
				   strerror(-ret));
	}
	*out = pr;
	return 0;
}

void hub_profiles_set_config(struct hub_profiles *pr, struct hub_config *cfg)
{
	struct hub_config *old = pr->cfg;

	pr->cfg = hub_config_ref(cfg);
	hub_config_unref(old);
	if (!old)
		poll_requests(pr);
}

void hub_profiles_stop(struct hub_profiles *pr)
{
	if (!pr)
		return;
	pr->stopped = true;
	uv_timer_stop(&pr->timer);
}

static void on_closed(uv_handle_t *h)
{
	struct hub_profiles *pr = h->data;

	hub_config_unref(pr->cfg);
	free(pr);
}

void hub_profiles_free(struct hub_profiles *pr)
{
	if (!pr)
		return;
	pr->stopped = true;
	uv_close((uv_handle_t *)&pr->timer, on_closed);
}
