/* daemon/inbound/tgpoll.c - see tgpoll.h. One poller a channel runs the cycle
 *   lease (take or renew the bot's poll) -> getUpdates -> store (ingest) -> advance
 * one step at a time; a failed step waits (backoff, or what Telegram asked for) and starts
 * the cycle again from the lease, so an update whose store failed is fetched again.
 * A poller is freed only when no query, call or store of it is in flight. */
#include "daemon/inbound/tgpoll.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "adapters/adapter.h"
#include "adapters/telegram.h"
#include "config/config.h"
#include "daemon/data/store.h"
#include "daemon/inbound/ingest.h"
#include "daemon/net/httpc.h"
#include "lib/backoff.h"
#include "lib/crypto.h"
#include "lib/log.h"
#include "lib/pool.h"

#define TAG "tgpoll"
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define CONFLICT_WAIT_MS 10000 /* 409: a webhook is set, or another program polls the bot */

static const char lease_sql[] = "SELECT hub_tgpoll_lease($1, $2, $3::integer)";
static const char advance_sql[] = "SELECT hub_tgpoll_advance($1, $2, $3::bigint)";
static const char release_sql[] = "SELECT hub_tgpoll_release($1, $2)";

struct poller;
typedef void step_fn(struct poller *p);

struct poller {
	struct hub_tgpoll *tp;
	struct poller *prev, *next;      /* tp->pollers */
	char *id;                        /* the channel's public id */
	uv_timer_t timer;                /* a wait between steps */
	step_fn *after_wait;
	struct hub_config *cfg;          /* the snapshot of the poll in flight (ch is in it) */
	const struct hub_channel *ch;
	struct hub_pool pool;            /* one answer: its request and events */
	struct hub_event_list events;
	struct hub_httpc_call *call;
	int64_t offset, next_offset;
	int busy;                        /* a query, a call or a store of it in flight */
	int failures;                    /* in a row: the backoff */
	bool leased, gone;
};

struct hub_tgpoll {
	uv_loop_t *loop;
	struct hub_store *store;
	struct hub_httpc *httpc;
	struct hub_ingest *ingest;
	struct hub_config *cfg;
	struct poller *pollers;
	int closing;                     /* pollers whose timer is closing */
	bool stopped, freeing;
	char owner[64];                  /* this instance, as the leases name it */
};

static void lease(struct poller *p);

static int poll_timeout_s(const struct hub_tgpoll *tp)
{
	return hub_config_settings(tp->cfg)->platforms.telegram_poll_timeout_s;
}

/* The lease outlasts two polls: renewed once a cycle, it lapses only when the instance
 * stops cycling. */
static int lease_ms(const struct hub_tgpoll *tp)
{
	return (2 * poll_timeout_s(tp) + 2) * 1000;
}

/* ---- ending ---- */

static void on_poller_closed(uv_handle_t *h)
{
	struct poller *p = h->data;
	struct hub_tgpoll *tp = p->tp;

	hub_pool_release(&p->pool);
	free(p->id);
	free(p);
	if (--tp->closing == 0 && tp->freeing) {
		hub_config_unref(tp->cfg);
		free(tp);
	}
}

static void on_released(int status, PGresult *res, void *data);

/* A poller that is gone ends once nothing of it is in flight: its lease released first. */
static void finish(struct poller *p)
{
	struct hub_tgpoll *tp = p->tp;
	const char *params[2] = { p->id, tp->owner };

	if (p->busy)
		return;
	uv_timer_stop(&p->timer);
	if (p->leased) {
		p->leased = false;
		if (hub_store_query(tp->store, release_sql, 2, params, on_released, p) == 0) {
			p->busy++;
			return;
		}
	}
	if (p->prev)
		p->prev->next = p->next;
	else
		tp->pollers = p->next;
	if (p->next)
		p->next->prev = p->prev;
	hub_config_unref(p->cfg);
	p->cfg = NULL;
	tp->closing++;
	uv_close((uv_handle_t *)&p->timer, on_poller_closed);
}

static void on_released(int status, PGresult *res, void *data)
{
	struct poller *p = data;

	(void)status;
	(void)res;
	p->busy--;
	finish(p);
}

/* ---- waiting ---- */

static void on_wait(uv_timer_t *t)
{
	struct poller *p = t->data;

	if (p->gone)
		finish(p);
	else
		p->after_wait(p);
}

static void wait_then(struct poller *p, uint64_t ms, step_fn *fn)
{
	p->after_wait = fn;
	uv_timer_start(&p->timer, on_wait, ms, 0);
}

/* After a failure: 1 s, doubling to a minute, jittered; at least what Telegram asked. */
static void retry_later(struct poller *p, int64_t at_least_ms)
{
	uint64_t ms = hub_backoff_ms(BACKOFF_MIN_MS, BACKOFF_MAX_MS, (unsigned)++p->failures);

	if (at_least_ms > 0 && (uint64_t)at_least_ms > ms)
		ms = (uint64_t)at_least_ms;
	wait_then(p, ms, lease);
}

/* ---- the cycle ---- */

static void on_advanced(int status, PGresult *res, void *data)
{
	struct poller *p = data;

	p->busy--;
	if (p->gone) {
		finish(p);
		return;
	}
	if (status < 0) {
		hub_log_warn(TAG, "channel=%s: cannot save the offset: %s", p->id, strerror(-status));
		retry_later(p, 0); /* the updates are stored: fetched again, they are duplicates */
		return;
	}
	if (PQgetvalue(res, 0, 0)[0] != 't')
		p->leased = false; /* another instance took the poll: lease() finds out */
	else
		p->offset = p->next_offset;
	p->failures = 0;
	lease(p);
}

static void on_stored(int status, void *data)
{
	struct poller *p = data;
	const char *params[3];

	p->busy--;
	if (p->gone) {
		finish(p);
		return;
	}
	if (status < 0) {
		hub_log_warn(TAG, "channel=%s: %zu updates not stored (%s): fetched again later",
			     p->id, p->events.n, strerror(-status));
		retry_later(p, 0);
		return;
	}
	params[0] = p->id;
	params[1] = p->tp->owner;
	params[2] = hub_pool_sprintf(&p->pool, "%" PRId64, p->next_offset);
	if (hub_store_query(p->tp->store, advance_sql, 3, params, on_advanced, p) < 0) {
		retry_later(p, 0);
		return;
	}
	p->busy++;
}

/* A non-2xx answer: what Telegram says to do. */
static void refused(struct poller *p, const struct hub_httpc_resp *resp)
{
	const struct hub_adapter *a = hub_adapter_for(HUB_CHANNEL_TELEGRAM);
	struct hub_send_result r;

	(void)a->parse_send_result(&p->pool, resp->status,
				   hub_httpc_resp_header(resp, "retry-after"), resp->body, &r);
	if (resp->status == 409) {
		hub_log_warn(TAG, "channel=%s: getUpdates refused (409): a webhook is set for this "
			     "bot, or another program polls it; trying again", p->id);
		retry_later(p, CONFLICT_WAIT_MS);
	} else if (r.verdict == HUB_SEND_TOKEN) {
		hub_log_err(TAG, "channel=%s: getUpdates refused: the bot token is not valid (%d)",
			    p->id, resp->status);
		retry_later(p, BACKOFF_MAX_MS);
	} else {
		hub_log_warn(TAG, "channel=%s: getUpdates answered %d%s", p->id, resp->status,
			     r.retry_after_ms ? " (waiting as asked)" : "");
		retry_later(p, r.retry_after_ms);
	}
}

static void on_polled(int status, const struct hub_httpc_resp *resp, void *data)
{
	struct poller *p = data;
	struct hub_err err = HUB_ERR_INIT;

	p->busy--;
	p->call = NULL;
	if (p->gone || status == -ECANCELED) {
		finish(p);
		return;
	}
	if (status < 0) {
		hub_log_warn(TAG, "channel=%s: getUpdates failed: %s", p->id, strerror(-status));
		retry_later(p, 0);
		return;
	}
	if (resp->status < 200 || resp->status > 299) {
		refused(p, resp);
		return;
	}
	memset(&p->events, 0, sizeof(p->events));
	p->next_offset = p->offset;
	if (hub_telegram_parse_updates(&p->pool, p->ch, resp->body, &p->events, &p->next_offset,
				       &err) < 0) {
		hub_log_warn(TAG, "channel=%s: getUpdates: %s", p->id, err.msg);
		retry_later(p, 0);
		return;
	}
	if (p->next_offset == p->offset) { /* the wait ended without an update */
		p->failures = 0;
		lease(p);
		return;
	}
	p->busy++;
	hub_ingest_events(p->tp->ingest, p->cfg, p->ch, &p->events, on_stored, p);
}

static void poll_updates(struct poller *p)
{
	struct hub_tgpoll *tp = p->tp;
	const struct hub_settings *s = hub_config_settings(tp->cfg);
	struct hub_err err = HUB_ERR_INIT;
	struct hub_send_req sr;
	int ret;

	hub_pool_release(&p->pool);
	hub_config_unref(p->cfg);
	p->cfg = hub_config_ref(tp->cfg);
	p->ch = hub_config_channel(p->cfg, hub_str_from(p->id));
	if (!p->ch || hub_telegram_poll_req(&p->pool, p->ch, p->offset, poll_timeout_s(tp), &sr,
					    &err) < 0) {
		hub_log_err(TAG, "channel=%s: cannot poll: %s", p->id,
			    p->ch ? err.msg : "no such channel");
		retry_later(p, BACKOFF_MAX_MS);
		return;
	}
	struct hub_httpc_header hdr = { "Content-Type", "application/json" };
	struct hub_httpc_req req = {
		.method = sr.method,
		.url = hub_pool_sprintf(&p->pool, "%s%.*s", s->platforms.url[HUB_CHANNEL_TELEGRAM],
					HUB_STR_FMT(sr.path)),
		.headers = &hdr,
		.nheaders = 1,
		.body = sr.body,
		.connect_timeout_ms = s->platforms.connect_timeout_ms,
		.response_timeout_ms = poll_timeout_s(tp) * 1000 + s->platforms.response_timeout_ms,
		.total_timeout_ms = poll_timeout_s(tp) * 1000 + s->platforms.connect_timeout_ms +
				    s->platforms.response_timeout_ms,
		.retry_on_stale = true, /* getUpdates with an offset may be asked again */
	};
	ret = hub_httpc_request(tp->httpc, &req, on_polled, p, &p->call);
	if (ret < 0) {
		hub_log_warn(TAG, "channel=%s: getUpdates not sent: %s", p->id, strerror(-ret));
		retry_later(p, 0);
		return;
	}
	p->busy++;
}

static void on_lease(int status, PGresult *res, void *data)
{
	struct poller *p = data;

	p->busy--;
	if (p->gone) {
		finish(p);
		return;
	}
	if (status < 0) {
		hub_log_warn(TAG, "channel=%s: cannot take the poll: %s", p->id, strerror(-status));
		retry_later(p, 0);
		return;
	}
	if (PQgetisnull(res, 0, 0)) {
		if (p->leased)
			hub_log_info(TAG, "channel=%s: another instance polls this bot now", p->id);
		p->leased = false;
		wait_then(p, (uint64_t)lease_ms(p->tp) / 2, lease);
		return;
	}
	if (!p->leased)
		hub_log_info(TAG, "channel=%s: polling (this instance)", p->id);
	p->leased = true;
	p->offset = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	poll_updates(p);
}

static void lease(struct poller *p)
{
	struct hub_tgpoll *tp = p->tp;
	char ms[16];
	const char *params[3] = { p->id, tp->owner, ms };

	snprintf(ms, sizeof(ms), "%d", lease_ms(tp));
	if (hub_store_query(tp->store, lease_sql, 3, params, on_lease, p) < 0) {
		retry_later(p, 0);
		return;
	}
	p->busy++;
}

/* ---- the service ---- */

static bool polled(const struct hub_channel *ch)
{
	return ch && ch->kind == HUB_CHANNEL_TELEGRAM && ch->polling && ch->enabled;
}

static void poller_start(struct hub_tgpoll *tp, const char *id)
{
	struct poller *p = hub_xcalloc(1, sizeof(*p));

	p->tp = tp;
	p->id = hub_xstrdup(id);
	hub_pool_init(&p->pool);
	uv_timer_init(tp->loop, &p->timer);
	p->timer.data = p;
	p->next = tp->pollers;
	if (tp->pollers)
		tp->pollers->prev = p;
	tp->pollers = p;
	lease(p);
}

static void poller_stop(struct poller *p)
{
	p->gone = true;
	if (p->call) { /* a long poll can wait a minute: abandon it */
		hub_httpc_call_cancel(p->call);
		p->call = NULL;
		p->busy--;
	}
	finish(p);
}

int hub_tgpoll_new(uv_loop_t *loop, struct hub_store *store, struct hub_httpc *httpc,
		   struct hub_ingest *ingest, struct hub_tgpoll **out, struct hub_err *err)
{
	struct hub_tgpoll *tp = hub_xcalloc(1, sizeof(*tp));
	unsigned char rnd[6];
	char host[32] = "";

	if (hub_random_bytes(rnd, sizeof(rnd)) < 0) {
		free(tp);
		return hub_err_set(err, -EIO, "no random bytes for the poller's name");
	}
	gethostname(host, sizeof(host) - 1);
	snprintf(tp->owner, sizeof(tp->owner), "%.31s/%d/%02x%02x%02x%02x%02x%02x", host,
		 (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	tp->loop = loop;
	tp->store = store;
	tp->httpc = httpc;
	tp->ingest = ingest;
	*out = tp;
	return 0;
}

void hub_tgpoll_set_config(struct hub_tgpoll *tp, struct hub_config *cfg)
{
	struct hub_config *old = tp->cfg;
	const struct hub_channel *ch;
	struct poller *p, *next;

	tp->cfg = hub_config_ref(cfg);
	hub_config_unref(old);
	if (tp->stopped)
		return;
	for (p = tp->pollers; p; p = next) {
		next = p->next;
		if (!p->gone && !polled(hub_config_channel(cfg, hub_str_from(p->id))))
			poller_stop(p);
	}
	for (size_t i = 0; (ch = hub_config_channel_at(cfg, i)) != NULL; i++) {
		if (!polled(ch))
			continue;
		for (p = tp->pollers; p && (p->gone || strcmp(p->id, ch->id) != 0); p = p->next)
			;
		if (!p)
			poller_start(tp, ch->id);
	}
}

void hub_tgpoll_stop(struct hub_tgpoll *tp)
{
	struct poller *p, *next;

	if (!tp)
		return;
	tp->stopped = true;
	for (p = tp->pollers; p; p = next) {
		next = p->next;
		if (!p->gone)
			poller_stop(p);
	}
}

void hub_tgpoll_free(struct hub_tgpoll *tp)
{
	if (!tp)
		return;
	hub_tgpoll_stop(tp);
	if (tp->closing || tp->pollers) {
		tp->freeing = true; /* the last poller's close frees tp */
		return;
	}
	hub_config_unref(tp->cfg);
	free(tp);
}
