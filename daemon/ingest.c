/* daemon/ingest.c - see ingest.h. The messages of one request are stored one after another
 * (in order: a conversation's messages keep the platform's order), each by one call of the
 * SQL function hub_ingest_inbound (one transaction; a known external id changes nothing).
 * Log lines carry ids and counts, never a text, a phone number or a secret. */
#include "daemon/ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "config/config.h"
#include "daemon/http.h"
#include "daemon/metrics.h"
#include "daemon/store.h"
#include "lib/log.h"

#define TAG "ingest"

static const char ingest_sql[] =
	"SELECT tenant_id, event_id, event, data FROM hub_ingest_inbound("
	"$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::bigint)";
#define INGEST_NPARAMS 11

struct hub_ingest {
	struct hub_store *store;
	struct hub_config *cfg;
	struct hub_metrics *metrics;
	hub_ingest_publish_fn *publish;
	void *data;
};

/* One POST in flight; allocated from the request's pool. */
struct ingest_req {
	struct hub_ingest *ing;
	struct hub_http_req *req;
	struct hub_config *cfg; /* the snapshot this request started with */
	const struct hub_channel *ch;
	struct hub_event_list events;
	size_t next; /* index of the event to store next */
	size_t stored, duplicates, ignored;
};

struct hub_ingest *hub_ingest_new(struct hub_store *store, struct hub_config *cfg,
				  struct hub_metrics *metrics, hub_ingest_publish_fn *publish,
				  void *data)
{
	struct hub_ingest *ing = hub_xcalloc(1, sizeof(*ing));

	ing->store = store;
	ing->cfg = hub_config_ref(cfg);
	ing->metrics = metrics;
	ing->publish = publish;
	ing->data = data;
	return ing;
}

void hub_ingest_set_config(struct hub_ingest *ing, struct hub_config *cfg)
{
	struct hub_config *old = ing->cfg;

	ing->cfg = hub_config_ref(cfg);
	hub_config_unref(old);
}

void hub_ingest_free(struct hub_ingest *ing)
{
	if (!ing)
		return;
	hub_config_unref(ing->cfg);
	free(ing);
}

static struct hub_str req_header(const void *req, const char *name)
{
	return hub_http_req_header(req, name);
}

static struct hub_str req_query(const void *req, const char *name)
{
	return hub_http_req_query(req, name);
}

static void count(struct hub_ingest *ing, const char *what, const char *platform, double n)
{
	char labels[96];

	if (!n)
		return;
	snprintf(labels, sizeof(labels), "platform=\"%s\",result=\"%s\"", platform, what);
	hub_metrics_count(ing->metrics, "webhook_items", "Webhook items by result", labels, n);
}

/* The channel named in the URL, of the platform named in the URL; answers 404 when not. */
static const struct hub_channel *route_channel(struct hub_http_req *req, struct hub_config *cfg,
					       const struct hub_adapter **adapter)
{
	struct hub_str platform = hub_http_req_param(req, "platform");
	struct hub_str id = hub_http_req_param(req, "channel");
	const struct hub_channel *ch = hub_config_channel(cfg, id);
	char name[16];

	*adapter = NULL;
	if (platform.len < sizeof(name)) {
		memcpy(name, platform.p, platform.len);
		name[platform.len] = '\0';
		*adapter = hub_adapter_find(name);
	}
	if (!*adapter) {
		hub_http_req_error(req, 404, "unknown_platform", "no such platform");
		return NULL;
	}
	if (!ch || !ch->enabled || ch->kind != (*adapter)->kind) {
		hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 ": 404 unknown %s channel",
			     hub_http_req_conn_id(req), hub_http_req_id(req), (*adapter)->name);
		hub_http_req_error(req, 404, "unknown_channel", "no such channel");
		return NULL;
	}
	return ch;
}

void hub_ingest_handle_get(struct hub_ingest *ing, struct hub_http_req *req)
{
	const struct hub_adapter *adapter;
	const struct hub_channel *ch = route_channel(req, ing->cfg, &adapter);
	struct hub_webhook wh = { HUB_STR_NULL, req_header, req_query, req };
	struct hub_str reply;
	int ret;

	if (!ch)
		return;
	ret = adapter->handshake ? adapter->handshake(ch, &wh, &reply) : -ENOTSUP;
	switch (ret) {
	case 0:
		hub_log_info(TAG, "channel=%s: verification handshake answered", ch->id);
		hub_http_req_respond(req, 200, "text/plain", reply);
		return;
	case -EPERM:
		hub_log_warn(TAG, "channel=%s: 403 verification handshake with a wrong token",
			     ch->id);
		hub_http_req_error(req, 403, "bad_verify_token",
				   "hub.verify_token does not match or hub.mode is not subscribe");
		return;
	case -ENOTSUP:
		hub_http_req_error(req, 405, "no_handshake", "this platform has no GET handshake");
		return;
	default:
		hub_http_req_error(req, 400, "bad_handshake",
				   "hub.mode, hub.verify_token and hub.challenge are required");
		return;
	}
}

static void finish(struct ingest_req *ir, int status)
{
	struct hub_http_req *req = ir->req;
	const char *platform = hub_channel_kind_name(ir->ch->kind);
	struct hub_config *cfg = ir->cfg; /* ir lives in the request's pool: gone once answered */

	count(ir->ing, "stored", platform, (double)ir->stored);
	count(ir->ing, "duplicate", platform, (double)ir->duplicates);
	count(ir->ing, "ignored", platform, (double)ir->ignored);
	count(ir->ing, "bad", platform, (double)ir->events.bad);
	if (status < 0) {
		hub_log_warn(TAG, "conn=%" PRIu64 " req=%" PRIu64 " channel=%s: 503 after %zu of "
			     "%zu items (%s)", hub_http_req_conn_id(req), hub_http_req_id(req),
			     ir->ch->id, ir->next, ir->events.n, strerror(-status));
		hub_http_req_error(req, 503, "database_unavailable",
				   "the message store is unavailable; retry later");
	} else {
		struct hub_buf body = HUB_BUF_INIT;

		hub_log_debug(TAG, "conn=%" PRIu64 " req=%" PRIu64 " channel=%s: 200 stored=%zu "
			      "duplicates=%zu ignored=%zu bad=%zu", hub_http_req_conn_id(req),
			      hub_http_req_id(req), ir->ch->id, ir->stored, ir->duplicates,
			      ir->ignored, ir->events.bad);
		if (ir->events.bad)
			hub_log_warn(TAG, "channel=%s: %zu malformed items skipped", ir->ch->id,
				     ir->events.bad);
		hub_buf_addf(&body, "{\"ok\":true,\"stored\":%zu,\"duplicates\":%zu,"
			     "\"ignored\":%zu,\"bad\":%zu}", ir->stored, ir->duplicates,
			     ir->ignored, ir->events.bad);
		hub_http_req_respond(req, 200, "application/json", hub_buf_str(&body));
		hub_buf_release(&body);
	}
	hub_config_unref(cfg);
}

static void store_next(struct ingest_req *ir);

static void on_stored(int status, PGresult *res, void *data)
{
	struct ingest_req *ir = data;

	if (status < 0) {
		finish(ir, status);
		return;
	}
	int rows = PQntuples(res);
	if (rows == 0)
		ir->duplicates++;
	else
		ir->stored++;
	for (int i = 0; i < rows; i++) {
		struct hub_str tenant = { PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0) };
		struct hub_str event = { PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2) };
		struct hub_str json = { PQgetvalue(res, i, 3), (size_t)PQgetlength(res, i, 3) };
		int64_t id = strtoll(PQgetvalue(res, i, 1), NULL, 10);

		ir->ing->publish(ir->ing->data, tenant, id, event, json);
	}
	ir->next++;
	store_next(ir);
}

static const char *cstr(struct hub_pool *pool, struct hub_str s)
{
	return s.p && s.len ? hub_pool_strndup(pool, s.p, s.len) : NULL;
}

static void store_next(struct ingest_req *ir)
{
	struct hub_pool *pool = hub_http_req_pool(ir->req);

	/* Only customers' messages are stored for now; statuses, reactions, edits and echoes
	 * are answered 200 and counted as ignored until outbound delivery exists. */
	while (ir->next < ir->events.n && ir->events.items[ir->next].kind != HUB_EVENT_MESSAGE) {
		ir->ignored++;
		ir->next++;
	}
	if (ir->next == ir->events.n) {
		finish(ir, 0);
		return;
	}
	const struct hub_inbound_msg *m = &ir->events.items[ir->next].msg;
	char ts[24];
	const char *params[INGEST_NPARAMS] = {
		ir->ch->id,
		cstr(pool, m->external_id),
		cstr(pool, m->sender_external_id),
		cstr(pool, m->sender_phone),
		cstr(pool, m->sender_profile_name),
		cstr(pool, m->sender_username),
		hub_msg_type_name(m->type),
		cstr(pool, m->text),
		cstr(pool, m->raw_type),
		cstr(pool, m->reply_to_external_id),
		m->platform_ts ? ts : NULL,
	};
	snprintf(ts, sizeof(ts), "%" PRId64, m->platform_ts);
	int ret = hub_store_query(ir->ing->store, ingest_sql, INGEST_NPARAMS, params, on_stored,
				  ir);
	if (ret < 0)
		finish(ir, ret);
}

void hub_ingest_handle_post(struct hub_ingest *ing, struct hub_http_req *req)
{
	struct hub_pool *pool = hub_http_req_pool(req);
	struct hub_err err = HUB_ERR_INIT;
	const struct hub_adapter *adapter;
	const struct hub_channel *ch = route_channel(req, ing->cfg, &adapter);
	struct hub_webhook wh = { hub_http_req_body(req), req_header, req_query, req };
	struct ingest_req *ir;
	int ret;

	if (!ch)
		return;
	if (adapter->verify(ch, &wh) < 0) {
		hub_log_warn(TAG, "conn=%" PRIu64 " req=%" PRIu64 " channel=%s: 401 bad signature "
			     "(body %zu bytes)", hub_http_req_conn_id(req), hub_http_req_id(req),
			     ch->id, wh.body.len);
		hub_metrics_count(ing->metrics, "webhook_rejected", "Webhooks refused",
				  "reason=\"bad_signature\"", 1);
		hub_http_req_error(req, 401, "bad_signature",
				   "the request signature is missing or does not match");
		return;
	}
	ir = hub_pool_alloc(pool, sizeof(*ir));
	ir->ing = ing;
	ir->req = req;
	ir->ch = ch;
	ret = adapter->parse_webhook(pool, ch, wh.body, &ir->events, &err);
	if (ret < 0) {
		int status = ret == -EACCES ? 403 : 400;
		const char *code = ret == -EACCES ? "wrong_account" : "bad_json";

		hub_log_warn(TAG, "conn=%" PRIu64 " req=%" PRIu64 " channel=%s: %d %s",
			     hub_http_req_conn_id(req), hub_http_req_id(req), ch->id, status,
			     err.msg);
		hub_metrics_count(ing->metrics, "webhook_rejected", "Webhooks refused",
				  ret == -EACCES ? "reason=\"wrong_account\"" : "reason=\"bad_json\"",
				  1);
		hub_http_req_error(req, status, code, "%s", err.msg);
		return;
	}
	ir->ignored = ir->events.ignored;
	ir->cfg = hub_config_ref(ing->cfg); /* ch points into it */
	store_next(ir);
}
