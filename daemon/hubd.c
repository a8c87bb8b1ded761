/* daemon/hubd.c - main() of hubd: the process's state (struct hubd), start-up, the route
 * table, SIGHUP reload and SIGTERM drain. Fatal at start-up, forgiving at reload, clean at
 * exit (pgbouncer, kresd). The only file that knows every module: daemon/ holds the wiring
 * (this file, and sd_notify in notify.h), each subsystem a room below it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

#include "config/config.h"
#include "daemon/admin/contacts.h"
#include "daemon/admin/privacy.h"
#include "daemon/admin/audit.h"
#include "daemon/admin/channels.h"
#include "daemon/admin/openapi.h"
#include "daemon/ai/responder.h"
#include "daemon/core/metrics.h"
#include "daemon/data/channels.h"
#include "daemon/data/bus.h"
#include "daemon/data/redis.h"
#include "daemon/data/store.h"
#include "daemon/inbound/ingest.h"
#include "daemon/inbound/profiles.h"
#include "daemon/inbound/tgpoll.h"
#include "daemon/inbox/api.h"
#include "daemon/inbox/media.h"
#include "daemon/inbox/web.h"
#include "daemon/inbox/ws.h"
#include "daemon/net/conns.h"
#include "daemon/net/http.h"
#include "daemon/net/httpc.h"
#include "daemon/notify.h"
#include "daemon/outbound/outbox.h"
#include "daemon/webchat/webchat.h"
#include "lib/backoff.h"
#include "lib/crypto.h"
#include "lib/log.h"
#include "lib/pool.h"
#include "lib/revoke.h"

#define TAG "main"
/* A failed read of a mirrored table is tried again after this long. */
#define MIRROR_RETRY_MS 1000
#define DEFAULT_CONFIG "/etc/hubd/hubd.json"
/* At start-up a database that does not take connections yet is waited for as long as it
 * takes (hubd listens meanwhile, answering 503), tried again from 100 ms apart up to
 * DB_WAIT_MAX_MS apart (lib/backoff.h), so that it serves within a second of the database. */
#define DB_WAIT_MIN_MS 100
#define DB_WAIT_MAX_MS 1000
/* File descriptors for what own_fds() does not count: libuv's and lws' own, stdio, the
 * config and secret files, a hand-over's dup. */
#define FDS_SLACK 64

struct hubd;

/* A table of the database that every instance follows live: LISTEN on its NOTIFY channel,
 * read it whole on every notification (and each time the LISTEN is (re)established, since
 * notifications are not replayed), apply what was read. */
struct mirror {
	struct hubd *h;
	const char *notify; /* "hub_channels" */
	const char *sql;    /* reads the whole table */
	/* Applies a read: 0, or a negative errno when res cannot be read (read again). */
	int (*apply)(struct hubd *h, PGresult *res);
	uv_timer_t retry;
	bool loading; /* a read is running */
	bool again;   /* a NOTIFY came during it: read once more after */
	bool loaded;  /* read at least once (READY=1 waits for it) */
};

struct hubd {
	uv_loop_t loop;
	const char *config_path;
	struct hub_config *cfg;
	struct hub_metrics *metrics;
	struct hub_store *store;
	struct hub_redis *redis; /* NULL without redis.url */
	struct hub_bus *bus;     /* ordered live events: local, Redis, the event log */
	struct hub_http *http;
	struct hub_ws *ws;
	struct hub_webchat *webchat; /* the website chat's visitors */
	struct hub_ingest *ingest;
	struct hub_api *api;
	struct hub_admin_channels *admin_channels; /* the admin API's /api/v1/channels */
	struct hub_media *media;   /* messages' files, agents' uploads */
	struct hub_httpc *httpc;   /* the platforms' APIs */
	struct hub_outbox *outbox; /* delivers agents' replies */
	struct hub_tgpoll *tgpoll; /* Telegram channels in mode polling */
	struct hub_profiles *profiles; /* Instagram senders' names */
	struct hub_responder *responder; /* the channels' AI assistants */
	struct hub_contacts *contacts;   /* the admin API's contacts and privacy rights */
	struct hub_privacy *privacy;     /* tenant deletion, the purge and retention job */
	struct hub_conns *conns;   /* client connections, HTTP and websockets */
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t watchdog;
	/* The channels of the database (NOTIFY hub_channels); ingest gets h->cfg plus these
	 * (hub_config_with_channels). */
	struct mirror channels;
	struct hub_pool db_pool;         /* db_channels and their strings */
	struct hub_channel *db_channels;
	size_t db_nchannels;
	/* The revoked tokens (NOTIFY hub_revocations), for ws and api. */
	struct mirror revocations;
	/* Start-up: the migrations (on a worker thread: they block), then the channel sync,
	 * each tried again while the database cannot be reached. */
	uv_work_t migrate_req;
	char *migrate_url;       /* hub_config_direct_url(), copied for the worker */
	int migrate_ret;         /* hub_store_migrate()'s */
	struct hub_err migrate_err;
	bool migrating;          /* migrate_req is queued or running */
	unsigned db_waits;       /* attempts that did not reach the database, in a row */
	uv_timer_t db_retry;     /* the migrations or the sync again */
	int syncs_pending; /* channel upserts not answered yet */
	bool sync_failed;  /* one failed before the first READY=1 */
	bool sync_unreachable; /* ... because the database was not reached (yet) */
	bool ready;
	bool stopping;
	int exit_code;
};

static const struct hub_ws_opts *ws_opts(const struct hub_settings *s, struct hub_ws_opts *o)
{
	o->jwt_secret = hub_str_from(s->auth.jwt_secret);
	o->max_token_ttl_s = s->auth.max_token_ttl_s;
	o->auth_timeout_ms = s->ws.auth_timeout_ms;
	o->max_frame = s->ws.max_frame;
	o->send_queue_max = s->ws.send_queue_max;
	o->ping_interval_ms = s->ws.ping_interval_ms;
	o->commands_per_s = s->ws.commands_per_s;
	o->command_burst = s->ws.command_burst;
	o->max_sockets = s->ws.max_sockets;
	o->max_sockets_per_tenant = s->ws.max_sockets_per_tenant;
	o->text_max = (size_t)s->ws.text_max;
	o->resume_grace_ms = s->ws.resume_grace_ms;
	return o;
}

/* The descriptors hubd holds besides its client connections: the database pool and its
 * LISTEN connections, Redis' two, the platforms' pools (at most three origins), the
 * listener, and FDS_SLACK. */
static rlim_t own_fds(const struct hub_settings *s)
{
	return (rlim_t)s->database.pool_size + 2 + 2 + 3 * (rlim_t)s->platforms.conns_per_origin +
	       1 + FDS_SLACK;
}

/* http.max_connections (every client connection, websockets included) within
 * RLIMIT_NOFILE: the soft limit is raised as far as the hard one allows; beyond that the
 * cap is lowered to what fits, with a warning that says what to change. Accepting past the
 * limit would fail the database, Redis and the platforms first (EMFILE). */
static int fit_max_connections(const struct hub_settings *s)
{
	rlim_t own = own_fds(s), need = (rlim_t)s->http.max_connections + own;
	struct rlimit rl;
	int fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= need)
		return s->http.max_connections;
	{
		struct rlimit want = rl;

		want.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need
										    : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
	}
	if (rl.rlim_cur >= need)
		return s->http.max_connections;
	fit = rl.rlim_cur > own ? (int)(rl.rlim_cur - own) : 1;
	hub_log_warn(TAG, "http.max_connections %d needs %llu file descriptors (%llu more for "
		     "the database, Redis, the platforms and hubd itself) but RLIMIT_NOFILE "
		     "allows %llu: serving at most %d connections; raise LimitNOFILE (systemd) "
		     "or ulimit -n, or lower http.max_connections", s->http.max_connections,
		     (unsigned long long)need, (unsigned long long)own,
		     (unsigned long long)rl.rlim_cur, fit);
	return fit;
}

static const struct hub_http_limits *http_limits(const struct hub_settings *s,
						 struct hub_http_limits *l)
{
	l->header_max = s->http.header_max;
	l->body_max = s->http.body_max;
	l->header_timeout_ms = s->http.header_timeout_ms;
	l->body_timeout_ms = s->http.body_timeout_ms;
	l->idle_timeout_ms = s->http.idle_timeout_ms;
	l->max_connections = fit_max_connections(s);
	l->max_per_address = s->http.max_per_address;
	l->large_body_max = s->media.upload_max;
	return l;
}

/* ---- routes ---- */

static void on_healthz(struct hub_http_req *req, void *data)
{
	(void)data;
	hub_http_req_respond(req, 200, "application/json", HUB_STR("{\"status\":\"ok\"}"));
}

static void on_readyz(struct hub_http_req *req, void *data)
{
	struct hubd *h = data;
	bool db = hub_store_ready(h->store);
	struct hub_store_stats ss;
	/* Redis away is no reason to take the instance out: webhooks are stored, and its
	 * agents get the other instances' events from the log (the bus's fallback) */
	const char *redis = !h->redis ? "off" : hub_redis_receiving(h->redis) ? "up" : "down";
	bool ok = h->ready && !h->stopping && db;
	struct hub_buf body = HUB_BUF_INIT;

	hub_store_stats(h->store, &ss);
	hub_buf_addf(&body, "{\"status\":\"%s\",\"database\":\"%s\",\"redis\":\"%s\"}",
		     h->stopping ? "stopping" : ok ? "ready" : "not_ready",
		     db ? "up" : ss.warming > 0 ? "warming" : "down", redis);
	hub_http_req_respond(req, ok ? 200 : 503, "application/json", hub_buf_str(&body));
	hub_buf_release(&body);
}

/* With metrics.token (read per request: SIGHUP changes it), Authorization: Bearer <token>
 * (RFC 6750), compared in constant time; without it /metrics is open, for development. */
static void on_metrics(struct hub_http_req *req, void *data)
{
	struct hubd *h = data;
	const char *token = hub_config_settings(h->cfg)->metrics.token;
	struct hub_str auth = hub_http_req_header(req, "Authorization"), given = HUB_STR_NULL;
	struct hub_buf body = HUB_BUF_INIT;

	if (token && auth.len >= 7 && hub_str_caseeqs((struct hub_str){ auth.p, 7 }, "Bearer ")) {
		given = (struct hub_str){ auth.p + 7, auth.len - 7 };
		while (given.len && given.p[0] == ' ') {
			given.p++;
			given.len--;
		}
	}
	if (token && !given.len) {
		hub_http_req_add_header(req, "WWW-Authenticate", "Bearer realm=\"metrics\"");
		hub_http_req_error(req, 401, "missing_token",
				   "send metrics.token as Authorization: Bearer <token>");
		return;
	}
	if (token && !hub_secret_equal(given, token)) {
		hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 ": /metrics: 401 wrong token",
			     hub_http_req_conn_id(req), hub_http_req_id(req));
		hub_http_req_add_header(req, "WWW-Authenticate",
					"Bearer realm=\"metrics\", error=\"invalid_token\"");
		hub_http_req_error(req, 401, "bad_token", "the token is not metrics.token");
		return;
	}
	hub_metrics_render(h->metrics, &body);
	hub_http_req_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8",
			     hub_buf_str(&body));
	hub_buf_release(&body);
}

/* Before serving() the channels are not known yet: 503, which the platforms retry (a 404
 * would tell them the webhook is gone), and agents reconnect. True when it answered. */
static bool not_yet(struct hubd *h, struct hub_http_req *req)
{
	if (h->ready)
		return false;
	hub_http_req_add_header(req, "Retry-After", "1");
	hub_http_req_error(req, 503, "starting", "the server is starting (waiting for the "
			   "database)");
	return true;
}

static void on_upgraded(int fd, const char *buf, size_t len, void *data)
{
	struct hubd *h = data;

	if (hub_ws_adopt(h->ws, fd, buf, len) < 0)
		hub_log_warn("ws", "could not adopt an upgraded connection");
}

static void on_ws(struct hub_http_req *req, void *data)
{
	struct hubd *h = data;

	if (!hub_str_caseeqs(hub_http_req_header(req, "Upgrade"), "websocket")) {
		hub_http_req_error(req, 426, "upgrade_required",
				   "this endpoint speaks websocket (subprotocol bayge.v1)");
		return;
	}
	if (h->stopping) {
		hub_http_req_error(req, 503, "stopping", "the server is shutting down");
		return;
	}
	if (not_yet(h, req))
		return;
	if (hub_http_req_upgrade(req, on_upgraded, h) < 0)
		hub_http_req_error(req, 400, "bad_upgrade", "the upgrade request is too large");
}

static void on_webhook_get(struct hub_http_req *req, void *data)
{
	if (!not_yet(data, req))
		hub_ingest_handle_get(((struct hubd *)data)->ingest, req);
}

static void on_webhook_post(struct hub_http_req *req, void *data)
{
	if (!not_yet(data, req))
		hub_ingest_handle_post(((struct hubd *)data)->ingest, req);
}

static void on_api_conversations(struct hub_http_req *req, void *data)
{
	hub_api_handle_conversations(((struct hubd *)data)->api, req);
}

static void on_api_messages(struct hub_http_req *req, void *data)
{
	hub_api_handle_messages(((struct hubd *)data)->api, req);
}

static void on_api_media(struct hub_http_req *req, void *data)
{
	hub_media_handle_get(((struct hubd *)data)->media, req);
}

static void on_api_media_link(struct hub_http_req *req, void *data)
{
	hub_media_handle_link(((struct hubd *)data)->media, req);
}

static void on_api_upload(struct hub_http_req *req, void *data)
{
	hub_media_handle_upload(((struct hubd *)data)->media, req);
}

static void on_media_public(struct hub_http_req *req, void *data)
{
	hub_media_handle_public(((struct hubd *)data)->media, req);
}

static void on_contacts_search(struct hub_http_req *req, void *data)
{
	hub_contacts_handle_search(((struct hubd *)data)->contacts, req);
}

static void on_contact_get(struct hub_http_req *req, void *data)
{
	hub_contacts_handle_get(((struct hubd *)data)->contacts, req);
}

static void on_contact_patch(struct hub_http_req *req, void *data)
{
	hub_contacts_handle_patch(((struct hubd *)data)->contacts, req);
}

static void on_contact_merge(struct hub_http_req *req, void *data)
{
	hub_contacts_handle_merge(((struct hubd *)data)->contacts, req);
}

static void on_contact_export(struct hub_http_req *req, void *data)
{
	hub_contacts_handle_export(((struct hubd *)data)->contacts, req);
}

static void on_contact_erase(struct hub_http_req *req, void *data)
{
	hub_contacts_handle_erase(((struct hubd *)data)->contacts, req);
}

static void on_tenant_delete(struct hub_http_req *req, void *data)
{
	hub_privacy_handle_tenant_delete(((struct hubd *)data)->privacy, req);
}

static void on_channels_list(struct hub_http_req *req, void *data)
{
	hub_admin_channels_handle_list(((struct hubd *)data)->admin_channels, req);
}

static void on_channels_create(struct hub_http_req *req, void *data)
{
	hub_admin_channels_handle_create(((struct hubd *)data)->admin_channels, req);
}

static void on_channel_get(struct hub_http_req *req, void *data)
{
	hub_admin_channels_handle_get(((struct hubd *)data)->admin_channels, req);
}

static void on_channel_update(struct hub_http_req *req, void *data)
{
	hub_admin_channels_handle_update(((struct hubd *)data)->admin_channels, req);
}

static void on_channel_delete(struct hub_http_req *req, void *data)
{
	hub_admin_channels_handle_delete(((struct hubd *)data)->admin_channels, req);
}

static void on_channel_enable(struct hub_http_req *req, void *data)
{
	hub_admin_channels_handle_enable(((struct hubd *)data)->admin_channels, req);
}

static void on_channel_disable(struct hub_http_req *req, void *data)
{
	hub_admin_channels_handle_disable(((struct hubd *)data)->admin_channels, req);
}

static void on_channel_check(struct hub_http_req *req, void *data)
{
	hub_admin_channels_handle_check(((struct hubd *)data)->admin_channels, req);
}

static void on_audit(struct hub_http_req *req, void *data)
{
	struct hubd *h = data;

	hub_admin_audit_handle(h->store, h->api, req);
}

static void on_openapi(struct hub_http_req *req, void *data)
{
	(void)data;
	hub_admin_openapi_handle(req);
}

static void on_inbox(struct hub_http_req *req, void *data)
{
	(void)data;
	hub_web_handle(req);
}

static void on_widget(struct hub_http_req *req, void *data)
{
	hub_webchat_handle_widget(((struct hubd *)data)->webchat, req);
}

static void on_webchat_session(struct hub_http_req *req, void *data)
{
	if (!not_yet(data, req))
		hub_webchat_handle_session(((struct hubd *)data)->webchat, req);
}

static void on_ws_visitor(struct hub_http_req *req, void *data)
{
	struct hubd *h = data;

	if (h->stopping) {
		hub_http_req_error(req, 503, "stopping", "the server is shutting down");
		return;
	}
	if (!not_yet(h, req))
		hub_webchat_handle_upgrade(h->webchat, req);
}

static void webchat_ingest(void *data, struct hub_config *cfg, const struct hub_channel *ch,
			   const struct hub_event_list *events, hub_webchat_ingest_done *done,
			   void *done_data)
{
	hub_ingest_events(((struct hubd *)data)->ingest, cfg, ch, events, done, done_data);
}

static const struct hub_http_route routes[] = {
	{ "GET", "/widget.js", "widget", on_widget, false },
	{ "POST", "/webchat/{channel}/session", "webchat_session", on_webchat_session, false },
	{ "OPTIONS", "/webchat/{channel}/session", "webchat_session", on_webchat_session, false },
	{ "GET", "/ws/visitor/{channel}", "ws_visitor", on_ws_visitor, false },
	{ "GET", "/healthz", "healthz", on_healthz, false },
	{ "GET", "/readyz", "readyz", on_readyz, false },
	{ "GET", "/metrics", "metrics", on_metrics, false },
	{ "GET", "/ws", "ws", on_ws, false },
	{ "GET", "/webhooks/{platform}/{channel}", "webhook_handshake", on_webhook_get, false },
	{ "POST", "/webhooks/{platform}/{channel}", "webhook", on_webhook_post, false },
	{ "GET", "/api/v1/conversations", "api_conversations", on_api_conversations, false },
	{ "GET", "/api/v1/conversations/{id}/messages", "api_messages", on_api_messages, false },
	{ "GET", "/api/v1/messages/{id}/media", "api_media", on_api_media, false },
	{ "POST", "/api/v1/messages/{id}/media/link", "api_media_link", on_api_media_link, false },
	{ "POST", "/api/v1/media", "api_upload", on_api_upload, true },
	{ "GET", "/api/v1/channels", "api_channels", on_channels_list, false },
	{ "POST", "/api/v1/channels", "api_channel_create", on_channels_create, false },
	{ "GET", "/api/v1/channels/{id}", "api_channel", on_channel_get, false },
	{ "PATCH", "/api/v1/channels/{id}", "api_channel_update", on_channel_update, false },
	{ "DELETE", "/api/v1/channels/{id}", "api_channel_delete", on_channel_delete, false },
	{ "POST", "/api/v1/channels/{id}/enable", "api_channel_enable", on_channel_enable, false },
	{ "POST", "/api/v1/channels/{id}/disable", "api_channel_disable", on_channel_disable,
	  false },
	{ "POST", "/api/v1/channels/{id}/check", "api_channel_check", on_channel_check, false },
	{ "GET", "/api/v1/audit", "api_audit", on_audit, false },
	{ "GET", "/api/v1/openapi.json", "api_openapi", on_openapi, false },
	{ "GET", "/media/{id}/{name}", "media", on_media_public, false },
	{ "GET", "/api/v1/contacts", "admin_contacts", on_contacts_search, false },
	{ "GET", "/api/v1/contacts/{id}", "admin_contact", on_contact_get, false },
	{ "PATCH", "/api/v1/contacts/{id}", "admin_contact_patch", on_contact_patch, false },
	{ "DELETE", "/api/v1/contacts/{id}", "admin_contact_erase", on_contact_erase, false },
	{ "GET", "/api/v1/contacts/{id}/export", "admin_contact_export", on_contact_export, false },
	{ "POST", "/api/v1/contacts/{id}/merge-suggestions/{sid}/{action}", "admin_contact_merge",
	  on_contact_merge, false },
	{ "DELETE", "/api/v1/tenant", "admin_tenant_delete", on_tenant_delete, false },
	{ "GET", "/inbox", "inbox", on_inbox, false },
	{ "GET", "/inbox/{file}", "inbox", on_inbox, false },
};

/* ---- events ---- */

static const struct hub_privacy_opts *privacy_opts(const struct hub_settings *s,
						   struct hub_privacy_opts *o)
{
	o->purge_after_s = s->privacy.purge_after_s;
	o->interval_ms = s->privacy.interval_ms;
	o->batch = s->privacy.batch;
	o->events_s = s->retention.events_s;
	o->ingest_keys_s = s->retention.ingest_keys_s;
	o->statuses_s = s->retention.statuses_s;
	return o;
}

/* A page of gap fill goes to every socket at once: an eighth of a socket's queue. */
static size_t bus_page_bytes(const struct hub_settings *s)
{
	return s->ws.send_queue_max / 8;
}

static void on_publish(void *data, struct hub_str tenant, int64_t event_id, struct hub_str event,
		       struct hub_str data_json)
{
	struct hubd *h = data;

	hub_bus_publish(h->bus, tenant, event_id, event, data_json);
}

/* NOTIFY hub_events, payload a tenant id: hubctl committed events of it (a contact's
 * erasure); NULL when the LISTEN was (re)established. */
static void on_events_grew(const char *payload, void *data)
{
	struct hubd *h = data;

	if (payload && *payload)
		hub_bus_log_grew(h->bus, hub_str_from(payload));
}

/* ---- gauges ---- */

static double gauge_db(void *data, int which)
{
	struct hub_store_stats st;

	hub_store_stats(((struct hubd *)data)->store, &st);
	switch (which) {
	case 0: return st.size;
	case 1: return st.connected;
	case 2: return st.busy;
	case 3: return st.waiting;
	default: return st.warming;
	}
}

static double gauge_db_size(void *data) { return gauge_db(data, 0); }
static double gauge_db_connected(void *data) { return gauge_db(data, 1); }
static double gauge_db_busy(void *data) { return gauge_db(data, 2); }
static double gauge_db_waiting(void *data) { return gauge_db(data, 3); }
static double gauge_db_warming(void *data) { return gauge_db(data, 4); }

static double gauge_redis_up(void *data)
{
	struct hubd *h = data;

	return h->redis && hub_redis_ready(h->redis);
}

/* ---- channel sync: the config's tenants and channels exist in the database ---- */

static void serving(struct hubd *h);
static void mirror_watch(struct mirror *m);

static void on_sync_retry(uv_timer_t *t);

/* The database was not reached: fn again after the backoff; STATUS says so, and systemd's
 * start timeout is extended meanwhile (hubd is up and answering 503, not stuck). */
static void db_wait(struct hubd *h, uv_timer_cb fn, const char *what)
{
	uint64_t ms = hub_backoff_ms(DB_WAIT_MIN_MS, DB_WAIT_MAX_MS, ++h->db_waits);

	if (h->db_waits == 1 || h->db_waits % 60 == 0)
		hub_log_warn(TAG, "the database is not reachable yet (%s): trying again every "
			     "second or so", what);
	hub_notify("EXTEND_TIMEOUT_USEC=10000000\nSTATUS=waiting for the database");
	uv_timer_start(&h->db_retry, fn, ms, 0);
}

static void on_channel_synced(int status, PGresult *res, void *data)
{
	struct hubd *h = data;

	(void)res;
	if (status < 0 && status != -ECANCELED) {
		bool unreachable = status == -ENOTCONN || status == -ECONNRESET ||
				   status == -ETIMEDOUT || status == -EAGAIN;

		if (h->ready || !unreachable)
			hub_log_err(TAG, "could not sync a channel to the database: %s",
				    strerror(-status));
		h->sync_failed |= !h->ready && !unreachable;
		h->sync_unreachable |= !h->ready && unreachable;
	}
	if (h->syncs_pending > 0 && --h->syncs_pending == 0 && !h->ready && !h->stopping) {
		if (h->sync_failed) {
			h->exit_code = 1;
			uv_stop(&h->loop);
			return;
		}
		if (h->sync_unreachable) {
			/* gone again since the migrations, or slow to take connections */
			h->sync_unreachable = false;
			db_wait(h, on_sync_retry, "syncing the channels");
			return;
		}
		h->db_waits = 0;
		mirror_watch(&h->channels);
		mirror_watch(&h->revocations);
	}
}

static int sync_channels(struct hubd *h, struct hub_config *cfg);

/* The start-up sync once more (the database was not reached). */
static void on_sync_retry(uv_timer_t *t)
{
	struct hubd *h = hub_container_of(t, struct hubd, db_retry);
	int ret;

	if (h->stopping)
		return;
	ret = sync_channels(h, h->cfg);
	if (ret == -ENOTCONN) {
		db_wait(h, on_sync_retry, "syncing the channels");
	} else if (ret < 0) {
		h->exit_code = 1;
		uv_stop(&h->loop);
	} else if (ret == 0) {
		mirror_watch(&h->channels);
		mirror_watch(&h->revocations);
	}
}

/* ---- the migrations, on a worker thread ---- */

static void migrate_begin(struct hubd *h);

static void on_migrate_retry(uv_timer_t *t)
{
	migrate_begin(hub_container_of(t, struct hubd, db_retry));
}

static void migrate_work(uv_work_t *req)
{
	struct hubd *h = req->data;

	hub_err_clear(&h->migrate_err);
	h->migrate_ret = hub_store_migrate(h->migrate_url, &h->migrate_err);
}

static void migrate_done(uv_work_t *req, int status)
{
	struct hubd *h = req->data;

	h->migrating = false;
	if (status == UV_ECANCELED || h->stopping)
		return;
	if (h->migrate_ret == -ENOTCONN) {
		hub_log_debug(TAG, "%s", h->migrate_err.msg);
		db_wait(h, on_migrate_retry, "migrations");
		return;
	}
	if (h->migrate_ret < 0) {
		hub_log_err(TAG, "database migrations failed: %s", h->migrate_err.msg);
		h->exit_code = 1;
		uv_stop(&h->loop);
		return;
	}
	if (h->migrate_ret > 0)
		hub_log_info(TAG, "applied %d database migrations", h->migrate_ret);
	h->db_waits = 0;
	hub_store_open(h->store);
	on_sync_retry(&h->db_retry);
}

static void migrate_begin(struct hubd *h)
{
	int ret;

	if (h->stopping)
		return;
	h->migrate_req.data = h;
	ret = uv_queue_work(&h->loop, &h->migrate_req, migrate_work, migrate_done);
	hub_assert(ret == 0); /* libuv: only an invalid callback fails */
	h->migrating = true;
}

/* Upserts every tenant and channel of cfg (at start-up READY waits for them; on reload new
 * channels reach the database before their first webhook can). Returns how many queries
 * were queued, or the first error. */
static int sync_channels(struct hubd *h, struct hub_config *cfg)
{
	static const char sql[] = "SELECT hub_upsert_channel($1, $2, $3, $4, $5)";
	const struct hub_channel *ch;
	int n = 0;

	for (size_t i = 0; (ch = hub_config_channel_at(cfg, i)) != NULL; i++) {
		const struct hub_tenant *t = hub_config_tenant(cfg, ch->tenant);
		const char *params[] = { ch->tenant, t->name, ch->id,
					 hub_channel_kind_name(ch->kind), ch->account_id };
		int ret = hub_store_query(h->store, sql, 5, params, on_channel_synced, h);
		if (ret < 0) {
			hub_log_err(TAG, "channel=%s: cannot sync to the database: %s", ch->id,
				    strerror(-ret));
			return ret;
		}
		n++;
	}
	h->syncs_pending += n;
	return n;
}

/* ---- tables of the database followed live on every instance ---- */

static void mirror_load(struct mirror *m);

static void on_mirror_retry(uv_timer_t *t)
{
	mirror_load(hub_container_of(t, struct mirror, retry));
}

static void on_mirror_loaded(int status, PGresult *res, void *data)
{
	struct mirror *m = data;
	struct hubd *h = m->h;

	m->loading = false;
	if (status == -ECANCELED || h->stopping)
		return;
	if (status == 0)
		status = m->apply(h, res);
	if (h->exit_code)
		return; /* the read refused to start */
	if (status < 0) {
		hub_log_warn(TAG, "cannot read %s from the database (%s): retrying", m->notify,
			     strerror(-status));
		uv_timer_start(&m->retry, on_mirror_retry, MIRROR_RETRY_MS, 0);
		return;
	}
	m->loaded = true;
	if (!h->ready && h->channels.loaded && h->revocations.loaded)
		serving(h);
	if (m->again) {
		m->again = false;
		mirror_load(m);
	}
}

/* Reads the whole table (one read at a time; a change during it reads again after it). */
static void mirror_load(struct mirror *m)
{
	int ret;

	if (m->h->stopping)
		return;
	if (m->loading) {
		m->again = true;
		return;
	}
	uv_timer_stop(&m->retry);
	ret = hub_store_query(m->h->store, m->sql, 0, NULL, on_mirror_loaded, m);
	if (ret < 0) {
		hub_log_warn(TAG, "cannot read %s from the database (%s): retrying", m->notify,
			     strerror(-ret));
		uv_timer_start(&m->retry, on_mirror_retry, MIRROR_RETRY_MS, 0);
		return;
	}
	m->loading = true;
}

/* NOTIFY (payload "") or LISTEN (re)established (payload NULL). */
static void on_mirror_changed(const char *payload, void *data)
{
	struct mirror *m = data;

	hub_log_debug(TAG, "%s %s: reading", m->notify, payload ? "notified" : "listening");
	mirror_load(m);
}

/* After the config's channels are in the database: LISTEN, then the first read; READY=1
 * once every mirror has been read. */
static void mirror_watch(struct mirror *m)
{
	int ret = hub_store_listen(m->h->store, m->notify, on_mirror_changed, m);

	if (ret < 0) {
		hub_log_err(TAG, "cannot listen on %s: %s", m->notify, strerror(-ret));
		m->h->exit_code = 1;
		uv_stop(&m->h->loop);
	}
}

static void mirror_init(struct hubd *h, struct mirror *m, const char *notify, const char *sql,
			int (*apply)(struct hubd *h, PGresult *res))
{
	m->h = h;
	m->notify = notify;
	m->sql = sql;
	m->apply = apply;
	uv_timer_init(&h->loop, &m->retry);
}

/* What ingest serves: the file's snapshot plus the database's channels. */
static void apply_channels(struct hubd *h)
{
	struct hub_config *snap = NULL;
	int skipped = hub_config_with_channels(h->cfg, h->db_channels, h->db_nchannels, &snap);

	if (skipped > 0)
		hub_log_debug(TAG, "%d channels of the database have no secrets or kind we serve",
			      skipped);
	hub_ingest_set_config(h->ingest, snap);
	hub_outbox_set_config(h->outbox, snap);
	hub_tgpoll_set_config(h->tgpoll, snap);
	hub_profiles_set_config(h->profiles, snap);
	hub_responder_set_config(h->responder, snap);
	hub_media_set_config(h->media, snap);
	hub_admin_channels_set_config(h->admin_channels, snap);
	hub_webchat_set_config(h->webchat, snap);
	hub_config_unref(snap);
}

static int on_channels_read(struct hubd *h, PGresult *res)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_channel *chs;
	struct hub_buf errors = HUB_BUF_INIT;
	size_t n, disabled = 0, in_clear = 0;

	chs = hub_channels_from_result(res, hub_config_keyring(h->cfg), &pool, &n, &errors,
				       &in_clear);
	if (errors.len) {
		/* never started with a channel it cannot serve; once running, the others go on */
		for (char *line = strtok(errors.p, "\n"); line; line = strtok(NULL, "\n"))
			hub_log_err(TAG, "%s", line);
		hub_buf_release(&errors);
		if (!h->ready) {
			hub_log_err(TAG, "cannot start: the database holds secrets this configuration "
				    "cannot open (secrets.master_key)");
			hub_pool_release(&pool);
			h->exit_code = 1;
			uv_stop(&h->loop);
			return 0;
		}
	}
	if (in_clear)
		hub_log_warn(TAG, "%zu channel secrets are stored in clear: run hubctl rotate-key "
			     "to seal them", in_clear);
	if (!chs) {
		hub_pool_release(&pool);
		return -EPROTO;
	}
	for (size_t i = 0; i < n; i++)
		disabled += !chs[i].enabled;
	hub_pool_release(&h->db_pool);
	h->db_pool = pool;
	h->db_channels = chs;
	h->db_nchannels = n;
	apply_channels(h);
	hub_log_info(TAG, "channels: %zu in the database (%zu disabled)", n, disabled);
	return 0;
}

static const char revocations_sql[] =
	"SELECT tenant_id, user_id, extract(epoch FROM not_before)::bigint "
	"FROM token_revocations";

/* A new snapshot of the revoked tokens for ws (which closes the sockets it revokes) and
 * api. */
static int on_revocations_read(struct hubd *h, PGresult *res)
{
	struct hub_revocations *rv;
	int n = PQntuples(res);

	if (PQnfields(res) != 3)
		return -EPROTO;
	rv = hub_revocations_new();
	for (int i = 0; i < n; i++)
		hub_revocations_add(rv, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
				    strtoll(PQgetvalue(res, i, 2), NULL, 10));
	hub_revocations_seal(rv);
	hub_ws_set_revocations(h->ws, rv);
	hub_api_set_revocations(h->api, rv);
	hub_log_info(TAG, "token revocations: %d in the database", n);
	hub_revocations_unref(rv);
	return 0;
}

/* ---- lifecycle ---- */

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	hub_notify("WATCHDOG=1");
}

/* The database is migrated and the channels are read: READY=1. */
static void serving(struct hubd *h)
{
	const struct hub_settings *s = hub_config_settings(h->cfg);
	char status[160];

	h->ready = true;
	hub_log_info(TAG, "ready on %s (pid %d)", s->http.listen, (int)getpid());
	snprintf(status, sizeof(status), "READY=1\nSTATUS=serving on %s\nMAINPID=%d",
		 s->http.listen, (int)getpid());
	hub_notify(status);
}

static void reload(struct hubd *h)
{
	struct hub_buf errors = HUB_BUF_INIT, restart = HUB_BUF_INIT;
	struct hub_config *cfg = NULL;
	struct hub_http_limits limits;
	struct hub_ws_opts wo;
	struct hub_privacy_opts po;

	hub_notify("RELOADING=1");
	hub_log_info(TAG, "reloading %s", h->config_path);
	if (hub_config_load(h->config_path, &cfg, &errors) < 0) {
		/* errors name file:line:col and the key; they never contain secret values */
		hub_log_err(TAG, "reload failed, keeping the running configuration:\n%s",
			    errors.p);
		goto out;
	}
	if (hub_config_restart_keys(h->cfg, cfg, &restart))
		hub_log_warn(TAG, "reload: changes to %s take effect after a restart", restart.p);
	const struct hub_settings *s = hub_config_settings(cfg);
	hub_log_set_level(s->log.level);
	hub_http_set_limits(h->http, http_limits(s, &limits));
	hub_ws_set_opts(h->ws, ws_opts(s, &wo));
	hub_bus_set_page_bytes(h->bus, bus_page_bytes(s));
	hub_api_set_auth(h->api, hub_str_from(s->auth.jwt_secret), s->auth.max_token_ttl_s);
	hub_privacy_set_opts(h->privacy, privacy_opts(s, &po));
	hub_api_set_rate(h->api, s->api.rate_per_s, s->api.rate_burst);
	if (sync_channels(h, cfg) < 0)
		hub_log_err(TAG, "reload: some channels are not in the database yet");
	hub_config_unref(h->cfg);
	h->cfg = cfg;
	cfg = NULL;
	apply_channels(h);
	hub_log_info(TAG, "reloaded (log level %s)", hub_log_level_name(s->log.level));
out:
	hub_config_unref(cfg);
	hub_buf_release(&errors);
	hub_buf_release(&restart);
	hub_notify("READY=1");
}

static void on_closed_handle(uv_handle_t *handle)
{
	(void)handle;
}

static void on_bus_drained(void *data)
{
	struct hubd *h = data;

	hub_bus_stop(h->bus);
	/* replies being sent are cancelled: their rows come back when their lease ends */
	hub_httpc_close(h->httpc, NULL, NULL);
	h->httpc = NULL;
	hub_store_close(h->store, NULL, NULL);
	h->store = NULL;
	hub_outbox_free(h->outbox);
	h->outbox = NULL;
	hub_tgpoll_free(h->tgpoll);
	h->tgpoll = NULL;
	hub_profiles_free(h->profiles);
	h->profiles = NULL;
	hub_responder_free(h->responder);
	h->responder = NULL;
	if (h->redis)
		hub_redis_close(h->redis, NULL, NULL);
	h->redis = NULL;
	/* the signal handlers go last: a second SIGTERM while closing must not kill us */
	uv_close((uv_handle_t *)&h->sig_term, on_closed_handle);
	uv_close((uv_handle_t *)&h->sig_int, on_closed_handle);
	uv_close((uv_handle_t *)&h->sig_hup, on_closed_handle);
}

/* The websockets are closed: the events committed meanwhile are numbered before the
 * store closes. */
static void on_ws_closed(void *data)
{
	struct hubd *h = data;

	hub_bus_drain(h->bus, on_bus_drained, h);
}

static void on_drained(void *data)
{
	struct hubd *h = data;

	hub_log_info(TAG, "drained; closing");
	hub_outbox_stop(h->outbox);
	hub_tgpoll_stop(h->tgpoll);
	hub_profiles_stop(h->profiles);
	hub_responder_stop(h->responder);
	hub_privacy_stop(h->privacy);
	hub_http_close(h->http, NULL, NULL);
	h->http = NULL;
	hub_ws_close(h->ws, on_ws_closed, h);
	uv_close((uv_handle_t *)&h->watchdog, on_closed_handle);
	uv_close((uv_handle_t *)&h->db_retry, on_closed_handle);
	uv_close((uv_handle_t *)&h->channels.retry, on_closed_handle);
	uv_close((uv_handle_t *)&h->revocations.retry, on_closed_handle);
}

static void stop(struct hubd *h)
{
	const struct hub_settings *s = hub_config_settings(h->cfg);

	if (h->stopping)
		return;
	h->stopping = true;
	hub_notify("STOPPING=1");
	hub_log_info(TAG, "stopping: draining for up to %d ms", s->http.drain_timeout_ms);
	hub_http_drain(h->http, s->http.drain_timeout_ms, on_drained, h);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct hubd *h = sig->data;

	if (signum == SIGHUP) {
		if (!h->stopping)
			reload(h);
		return;
	}
	if (h->stopping) {
		hub_log_info(TAG, "already stopping");
		return;
	}
	hub_log_info(TAG, "%s received", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	stop(h);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: hubd [-c FILE]\n"
		   "  -c FILE   configuration (default " DEFAULT_CONFIG ")\n"
		   "  -h        this help\n"
		   "SIGHUP reloads the configuration, SIGTERM drains and exits.\n");
}

static int start(struct hubd *h)
{
	const struct hub_settings *s = hub_config_settings(h->cfg);
	struct hub_err err = HUB_ERR_INIT;
	struct hub_http_limits limits;
	struct hub_ws_opts wo;
	int ret;

	h->metrics = hub_metrics_new();
	struct hub_store_opts so = {
		.conninfo = s->database.url,
		.listen_conninfo = hub_config_direct_url(h->cfg),
		.transaction_pooling = s->database.direct_url != NULL,
		.pool_size = s->database.pool_size,
		.connect_timeout_ms = s->database.connect_timeout_ms,
		.statement_timeout_ms = s->database.statement_timeout_ms,
		.queue_max = s->database.queue_max,
		.queue_timeout_ms = s->database.queue_timeout_ms,
		.warm_sql = s->database.warm_up ? "SELECT hub_warm()" : NULL,
	};
	ret = hub_store_new(&h->loop, &so, &h->store, &err);
	if (ret < 0) {
		hub_log_err(TAG, "database: %s", err.msg);
		return ret;
	}
	if (s->redis.url) {
		struct hub_redis_opts ro = {
			.url = s->redis.url,
			.connect_timeout_ms = s->redis.connect_timeout_ms,
			.command_timeout_ms = s->redis.command_timeout_ms,
			.ping_interval_ms = s->redis.ping_interval_ms,
		};
		ret = hub_redis_new(&h->loop, &ro, &h->redis, &err);
		if (ret < 0) {
			hub_log_err(TAG, "redis: %s", err.msg);
			return ret;
		}
	}
	/* the config refuses redis.url without redis.hmac_key */
	struct hub_bus_keys keys = {
		.sign = hub_str_from(s->redis.hmac_key),
		.accept = hub_str_from(s->redis.hmac_key_accepted),
	};
	ret = hub_bus_new(&h->loop, h->store, h->redis, &keys, h->metrics, &h->bus, &err);
	if (ret < 0) {
		hub_log_err(TAG, "%s", err.msg);
		return ret;
	}
	hub_bus_set_page_bytes(h->bus, bus_page_bytes(s));
	h->conns = hub_conns_new();
	ret = hub_ws_new(&h->loop, ws_opts(s, &wo), h->store, h->bus, h->conns, h->metrics,
			 &h->ws, &err);
	if (ret < 0) {
		hub_log_err(TAG, "websockets: %s", err.msg);
		return ret;
	}
	h->ingest = hub_ingest_new(h->store, h->cfg, h->metrics, on_publish, h);
	h->webchat = hub_webchat_new(&h->loop, h->store, h->bus, h->ws, h->cfg, webchat_ingest,
				     on_publish, h);
	struct hub_httpc_opts co = {
		.ca_file = s->platforms.ca_file,
		.max_conns_per_origin = s->platforms.conns_per_origin,
	};
	ret = hub_httpc_new(&h->loop, &co, &h->httpc, &err);
	if (ret < 0) {
		hub_log_err(TAG, "platforms: %s", err.msg);
		return ret;
	}
	ret = hub_outbox_new(&h->loop, h->store, h->httpc, h->metrics, on_publish, h, &h->outbox,
			     &err);
	if (ret == 0)
		ret = hub_tgpoll_new(&h->loop, h->store, h->httpc, h->ingest, &h->tgpoll, &err);
	if (ret == 0)
		ret = hub_profiles_new(&h->loop, h->store, h->httpc, on_publish, h, &h->profiles,
				       &err);
	if (ret == 0)
		ret = hub_responder_new(&h->loop, h->store, h->httpc, h->metrics, on_publish, h,
					&h->responder, &err);
	if (ret < 0) {
		hub_log_err(TAG, "%s", err.msg);
		return ret;
	}
	h->api = hub_api_new(h->store, hub_str_from(s->auth.jwt_secret), s->auth.max_token_ttl_s);
	hub_api_set_rate(h->api, s->api.rate_per_s, s->api.rate_burst);
	h->media = hub_media_new(h->store, h->httpc, h->api, h->cfg);
	h->contacts = hub_contacts_new(h->store, h->api, on_publish, h);
	{
		struct hub_privacy_opts po;

		ret = hub_privacy_new(&h->loop, h->store, h->api, h->contacts,
				      privacy_opts(s, &po), &h->privacy);
		if (ret < 0) {
			hub_log_err(TAG, "privacy job: %s", uv_strerror(ret));
			return ret;
		}
	}
	h->admin_channels = hub_admin_channels_new(h->store, h->api, h->httpc);
	hub_admin_channels_set_config(h->admin_channels, h->cfg);
	ret = hub_http_new(&h->loop, http_limits(s, &limits), routes, HUB_ARRAY_SIZE(routes), h,
			   h->conns, h->metrics, &h->http);
	if (ret < 0) {
		hub_log_err(TAG, "http: %s", strerror(-ret));
		return ret;
	}
	hub_metrics_gauge(h->metrics, "hub_db_pool_size", "Configured database connections",
			  gauge_db_size, h);
	hub_metrics_gauge(h->metrics, "hub_db_pool_connected", "Open database connections",
			  gauge_db_connected, h);
	hub_metrics_gauge(h->metrics, "hub_db_pool_busy", "Database connections running a query",
			  gauge_db_busy, h);
	hub_metrics_gauge(h->metrics, "hub_db_pool_waiting", "Queries waiting for a connection",
			  gauge_db_waiting, h);
	hub_metrics_gauge(h->metrics, "hub_db_pool_warming",
			  "Database connections running hub_warm() before they serve",
			  gauge_db_warming, h);
	hub_metrics_gauge(h->metrics, "hub_redis_up", "1 while Redis answers", gauge_redis_up, h);

	uv_signal_init(&h->loop, &h->sig_term);
	uv_signal_init(&h->loop, &h->sig_int);
	uv_signal_init(&h->loop, &h->sig_hup);
	h->sig_term.data = h->sig_int.data = h->sig_hup.data = h;
	uv_signal_start(&h->sig_term, on_signal, SIGTERM);
	uv_signal_start(&h->sig_int, on_signal, SIGINT);
	uv_signal_start(&h->sig_hup, on_signal, SIGHUP);
	uv_timer_init(&h->loop, &h->watchdog);
	uv_timer_init(&h->loop, &h->db_retry);
	mirror_init(h, &h->channels, "hub_channels", hub_channels_sql, on_channels_read);
	mirror_init(h, &h->revocations, "hub_revocations", revocations_sql, on_revocations_read);
	ret = hub_store_listen(h->store, "hub_events", on_events_grew, h);
	if (ret < 0) {
		hub_log_err(TAG, "listen hub_events: %s", strerror(-ret));
		return ret;
	}
	uint64_t wd = hub_notify_watchdog_ms();
	if (wd)
		uv_timer_start(&h->watchdog, on_watchdog, wd / 2, wd / 2);

	/* listening before the database is there: /healthz answers, /readyz and the rest 503
	 * until the migrations are applied and the channels read (serving()) */
	if (hub_http_listen(h->http, s->http.listen, s->http.reuse_port, &err) < 0) {
		hub_log_err(TAG, "cannot listen on %s: %s", s->http.listen, err.msg);
		return -EADDRINUSE;
	}
	hub_log_info(TAG, "listening on %s; migrating the database", s->http.listen);
	h->migrate_url = hub_xstrdup(hub_config_direct_url(h->cfg)); /* url is required */
	migrate_begin(h);
	return 0;
}

static void on_ws_gone(void *data)
{
	*(bool *)data = true;
}

/* Closes whatever start() left open after a start-up failure. */
static void on_walk_close(uv_handle_t *handle, void *arg)
{
	(void)arg;
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

int main(int argc, char **argv)
{
	struct hubd h = { .config_path = DEFAULT_CONFIG, .db_pool = HUB_POOL_INIT };
	struct hub_buf errors = HUB_BUF_INIT;
	bool ws_closed = false;
	int opt, ret;

	while ((opt = getopt(argc, argv, "c:h")) != -1) {
		switch (opt) {
		case 'c':
			h.config_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (hub_config_load(h.config_path, &h.cfg, &errors) < 0) {
		fprintf(stderr, "%s", errors.p);
		hub_log_err(TAG, "invalid configuration, not starting");
		hub_buf_release(&errors);
		return 1;
	}
	hub_buf_release(&errors);
	hub_log_set_level(hub_config_settings(h.cfg)->log.level);
	hub_log_info(TAG, "hubd starting (config %s)", h.config_path);
	ret = uv_loop_init(&h.loop);
	if (ret < 0) {
		hub_log_err(TAG, "uv_loop_init: %s", uv_strerror(ret));
		return 1;
	}
	ret = start(&h);
	if (ret < 0)
		h.exit_code = 1;
	else
		uv_run(&h.loop, UV_RUN_DEFAULT);

	if (h.exit_code && !h.stopping) {
		/* start-up failed: tear down what exists, quietly */
		h.stopping = true;
		if (h.http)
			hub_http_close(h.http, NULL, NULL);
		if (h.ws)
			hub_ws_close(h.ws, on_ws_gone, &ws_closed);
		hub_bus_stop(h.bus);
		hub_outbox_stop(h.outbox);
		hub_tgpoll_stop(h.tgpoll);
		hub_profiles_stop(h.profiles);
		hub_responder_stop(h.responder);
		hub_privacy_stop(h.privacy);
		hub_httpc_close(h.httpc, NULL, NULL);
		if (h.store)
			hub_store_close(h.store, NULL, NULL);
		hub_outbox_free(h.outbox);
		hub_tgpoll_free(h.tgpoll);
		hub_profiles_free(h.profiles);
		hub_responder_free(h.responder);
		if (h.redis)
			hub_redis_close(h.redis, NULL, NULL);
		/* the websocket server closes its own handles (hub_ws_finish counts them): give
		 * it a moment before the walk closes whatever else is left */
		for (int i = 0; h.ws && !ws_closed && i < 100; i++)
			if (!uv_run(&h.loop, UV_RUN_NOWAIT))
				break;
		uv_walk(&h.loop, on_walk_close, NULL);
		uv_run(&h.loop, UV_RUN_DEFAULT);
	}
	/* libwebsockets is destroyed in two phases on a foreign loop (INTEGRATION.md) */
	if (h.ws) {
		hub_ws_finish(h.ws);
		uv_run(&h.loop, UV_RUN_DEFAULT);
	}
	hub_bus_free(h.bus);
	hub_webchat_free(h.webchat);
	hub_ingest_free(h.ingest);
	hub_media_free(h.media);
	hub_privacy_free(h.privacy);
	hub_contacts_free(h.contacts);
	hub_admin_channels_free(h.admin_channels);
	hub_api_free(h.api);
	hub_conns_free(h.conns);
	hub_metrics_free(h.metrics);
	hub_pool_release(&h.db_pool);
	ret = uv_loop_close(&h.loop);
	if (ret < 0) {
		hub_log_err(TAG, "event loop not empty at exit: %s", uv_strerror(ret));
		h.exit_code = 1;
	}
	if (!h.exit_code)
		hub_log_info(TAG, "stopped");
	hub_config_unref(h.cfg);
	free(h.migrate_url);
	return h.exit_code;
}
