/* daemon/inbound/ingest.c - see ingest.h. Group commit: a request's events go to a FIFO; while
 * fewer than ingest.batches_in_flight statements run, the waiting requests' events (whole
 * requests, up to ingest.batch_max_items) become one call of the SQL function
 * hub_ingest_batch: one transaction (all items in one subtransaction, else each in one of
 * its own), every event kind (message, echo, status, edit, delete, reaction), in order. A
 * request is answered after the COMMIT that holds its items: 200 with counts (an item the
 * database refuses for its content is counted bad), 503 when the statement failed or one
 * of its items failed for another reason (hub_ingest_items in 0004_ingest.sql).
 * Log lines carry ids and counts, never a text, a phone number or a secret. */
#include "daemon/inbound/ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "config/config.h"
#include "daemon/core/metrics.h"
#include "daemon/data/store.h"
#include "daemon/net/http.h"
#include "lib/json.h"
#include "lib/log.h"

#define TAG "ingest"

/* Group commit: the items of every request waiting when a batch starts, in one statement
 * (one transaction; each item in a subtransaction of its own, see 0004_ingest.sql). */
static const char batch_sql[] =
	"SELECT item, result, tenant_id, event_id, event, data FROM hub_ingest_batch($1::jsonb)";

struct hub_ingest {
	struct hub_store *store;
	struct hub_config *cfg;
	struct hub_metrics *metrics;
	hub_publish_fn *publish;
	void *data;
	struct ingest_req *head, *tail; /* waiting for a batch, FIFO */
	int in_flight;
};

/* What one item's store came to. */
enum item_result { R_STORED, R_DUPLICATE, R_STALE, R_UNKNOWN, R_IGNORED, R_BAD, R_N };
static const char *const result_name[R_N] = {
	"stored", "duplicate", "stale", "unknown", "ignored", "bad",
};

/* One POST in flight, allocated from the request's pool; or one hub_ingest_events() call
 * (req NULL), allocated on the heap. */
struct ingest_req {
	struct hub_ingest *ing;
	struct hub_http_req *req;
	hub_ingest_done_cb *done; /* req NULL: told the outcome, then ir is freed */
	void *done_data;
	struct hub_config *cfg; /* the snapshot this request started with */
	const struct hub_channel *ch;
	struct hub_event_list events;
	struct ingest_req *next;
	size_t first;           /* 1-based number of its first item in its batch */
	size_t n[R_N];
	bool retry;             /* an item failed, not for its content: answer 503 */
};

/* One statement in flight. With one batch in flight (the default) a tenant's events are
 * published in id order; with more, in the order the batches complete. */
struct batch {
	struct hub_ingest *ing;
	struct ingest_req **reqs;
	size_t nreqs, nitems;
};

struct hub_ingest *hub_ingest_new(struct hub_store *store, struct hub_config *cfg,
				  struct hub_metrics *metrics, hub_publish_fn *publish,
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

/* What a verification challenge can be: Meta sends digits; 1 to 64 of [A-Za-z0-9_.-] leave
 * room for other platforms and nothing a browser could take for markup or script. */
static bool challenge_ok(struct hub_str s)
{
	if (s.len < 1 || s.len > 64)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char ch = (unsigned char)s.p[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '-' || ch == '.'))
			return false;
	}
	return true;
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
		/* The reply echoes the query: only what a challenge can be, and never to be
		 * sniffed as HTML by a browser sent here (security issue, finding 10). */
		if (!challenge_ok(reply)) {
			hub_log_debug(TAG, "channel=%s: 400 verification handshake with a "
				      "malformed challenge (%zu bytes)", ch->id, reply.len);
			hub_http_req_error(req, 400, "bad_challenge",
					   "hub.challenge must be 1 to 64 of A-Z a-z 0-9 _ - .");
			return;
		}
		hub_log_info(TAG, "channel=%s: verification handshake answered", ch->id);
		hub_http_req_add_header(req, "X-Content-Type-Options", "nosniff");
		hub_http_req_add_header(req, "Cache-Control", "no-store");
		hub_http_req_respond(req, 200, "text/plain; charset=utf-8", reply);
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

/* "conn=C req=R" of a webhook, "poll" for events of another source: for logs. */
static const char *source(const struct ingest_req *ir, char *buf, size_t size)
{
	if (!ir->req)
		return "poll";
	snprintf(buf, size, "conn=%" PRIu64 " req=%" PRIu64, hub_http_req_conn_id(ir->req),
		 hub_http_req_id(ir->req));
	return buf;
}

/* Counts and logs what became of ir, then answers its request (ir lives in the request's
 * pool: gone once answered) or tells its source (and frees ir). */
static void finish(struct ingest_req *ir, int status)
{
	struct hub_http_req *req = ir->req;
	const char *platform = hub_channel_kind_name(ir->ch->kind);
	struct hub_config *cfg = ir->cfg;
	int outcome = status < 0 ? status : ir->retry ? -EAGAIN : 0;
	char src[64];

	for (int r = 0; r < R_N; r++)
		count(ir->ing, result_name[r], platform, (double)ir->n[r]);
	if (outcome < 0) {
		hub_log_warn(TAG, "%s channel=%s: %s with %zu items (%s)",
			     source(ir, src, sizeof(src)), ir->ch->id, req ? "503" : "not stored",
			     ir->events.n, status < 0 ? strerror(-status) : "an item failed");
	} else {
		hub_log_debug(TAG, "%s channel=%s: stored=%zu duplicates=%zu stale=%zu "
			      "unknown=%zu ignored=%zu bad=%zu", source(ir, src, sizeof(src)),
			      ir->ch->id, ir->n[R_STORED], ir->n[R_DUPLICATE], ir->n[R_STALE],
			      ir->n[R_UNKNOWN], ir->n[R_IGNORED], ir->n[R_BAD]);
		if (ir->n[R_BAD])
			hub_log_warn(TAG, "channel=%s: %zu bad items skipped", ir->ch->id,
				     ir->n[R_BAD]);
	}
	if (!req) {
		ir->done(outcome, ir->done_data);
		free(ir);
	} else if (outcome < 0) {
		hub_http_req_error(req, 503, "database_unavailable",
				   "the message store is unavailable; retry later");
	} else {
		struct hub_buf body = HUB_BUF_INIT;

		hub_buf_addf(&body, "{\"ok\":true,\"stored\":%zu,\"duplicates\":%zu,\"stale\":%zu,"
			     "\"unknown\":%zu,\"ignored\":%zu,\"bad\":%zu}", ir->n[R_STORED],
			     ir->n[R_DUPLICATE], ir->n[R_STALE], ir->n[R_UNKNOWN], ir->n[R_IGNORED],
			     ir->n[R_BAD]);
		hub_http_req_respond(req, 200, "application/json", hub_buf_str(&body));
		hub_buf_release(&body);
	}
	hub_config_unref(cfg);
}

/* A string value without NUL bytes (jsonb refuses \u0000; a C parameter would end there). */
static void put_str(struct hub_jw *w, const char *key, struct hub_str s)
{
	struct hub_buf tmp = HUB_BUF_INIT;

	if (!s.p || !s.len)
		return;
	hub_jw_key(w, key);
	if (!memchr(s.p, '\0', s.len)) {
		hub_jw_str(w, s);
		return;
	}
	for (size_t i = 0; i < s.len; i++)
		if (s.p[i])
			hub_buf_addch(&tmp, s.p[i]);
	hub_jw_str(w, hub_buf_str(&tmp));
	hub_buf_release(&tmp);
}

static void put_ts(struct hub_jw *w, int64_t ms)
{
	if (ms) {
		hub_jw_key(w, "ts");
		hub_jw_int(w, ms);
	}
}

/* One item of hub_ingest_batch()'s array: {"kind", "channel", ...}. */
static void write_item(struct hub_jw *w, const struct hub_channel *ch, const struct hub_event *ev)
{
	const struct hub_inbound_msg *m = &ev->msg;

	hub_jw_obj_open(w);
	hub_jw_key(w, "kind");
	hub_jw_cstr(w, hub_event_kind_name(ev->kind));
	hub_jw_key(w, "channel");
	hub_jw_cstr(w, ch->id);
	if (ev->kind == HUB_EVENT_STATUS) {
		put_str(w, "external_id", ev->status.external_id);
		put_str(w, "status", ev->status.status);
		put_str(w, "error", ev->status.error);
		put_ts(w, ev->status.platform_ts);
		hub_jw_obj_close(w);
		return;
	}
	put_str(w, "external_id", m->external_id);
	put_str(w, "sender", m->sender_external_id);
	put_str(w, "phone", m->sender_phone);
	put_str(w, "name", m->sender_profile_name);
	put_str(w, "username", m->sender_username);
	if (ev->kind != HUB_EVENT_DELETE) {
		hub_jw_key(w, "type");
		hub_jw_cstr(w, hub_msg_type_name(m->type));
	}
	put_str(w, "text", m->text);
	put_str(w, "raw_type", m->raw_type);
	put_str(w, "reply_to", m->reply_to_external_id);
	put_str(w, "key", m->dedupe_key);
	put_str(w, "recipient", m->recipient_external_id);
	put_str(w, "update_id", m->update_id);
	if (m->media.platform_id.len) {
		hub_jw_key(w, "media");
		hub_jw_obj_open(w);
		put_str(w, "ref", m->media.platform_id);
		put_str(w, "mime", m->media.mime);
		put_str(w, "filename", m->media.filename);
		if (m->media.size > 0) {
			hub_jw_key(w, "size");
			hub_jw_int(w, m->media.size);
		}
		hub_jw_obj_close(w);
	}
	put_ts(w, m->platform_ts);
	hub_jw_obj_close(w);
}

static void kick(struct hub_ingest *ing);

/* The request whose items include the 1-based item number k (reqs are in item order). */
static struct ingest_req *batch_req(const struct batch *b, size_t k)
{
	size_t lo = 0, hi = b->nreqs;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->reqs[mid]->first <= k)
			lo = mid;
		else
			hi = mid;
	}
	return b->reqs[lo];
}

static void item_result(struct ingest_req *ir, size_t k, const char *result)
{
	static const struct { const char *prefix; enum item_result r; } map[] = {
		{ "stored", R_STORED }, { "duplicate", R_DUPLICATE }, { "stale", R_STALE },
		{ "unknown", R_UNKNOWN }, { "ignored", R_IGNORED },
	};

	for (size_t i = 0; i < HUB_ARRAY_SIZE(map); i++) {
		if (strcmp(result, map[i].prefix) == 0) {
			ir->n[map[i].r]++;
			return;
		}
	}
	/* "bad:SQLSTATE": the database refused this item for its content; "retry:SQLSTATE":
	 * it failed for another reason (deadlock, resources, I/O...) */
	char src[64];

	hub_log_warn(TAG, "%s channel=%s: item %zu of %zu: %s", source(ir, src, sizeof(src)),
		     ir->ch->id, k - ir->first + 1, ir->events.n, result);
	if (strncmp(result, "retry:", 6) == 0) {
		ir->retry = true;
		/* read_only_sql_transaction: the connection reached a standby or a demoted
		 * primary (the function caught the error itself): reconnect to the primary */
		if (strcmp(result + 6, "25006") == 0)
			hub_store_reconnect_current(ir->ing->store);
	} else {
		ir->n[R_BAD]++;
	}
}

/* Publishes the events of a completed batch, answers its requests and frees it. */
static void batch_finish(struct batch *b, int status, PGresult *res)
{
	struct hub_ingest *ing = b->ing;
	int rows = status < 0 ? 0 : PQntuples(res);

	for (int i = 0; i < rows; i++) {
		size_t k = (size_t)strtoull(PQgetvalue(res, i, 0), NULL, 10);
		struct ingest_req *ir;

		if (k < 1 || k > b->nitems)
			continue;
		ir = batch_req(b, k);
		if (PQgetisnull(res, i, 3)) {
			item_result(ir, k, PQgetvalue(res, i, 1));
			continue;
		}
		struct hub_str tenant = { PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2) };
		struct hub_str event = { PQgetvalue(res, i, 4), (size_t)PQgetlength(res, i, 4) };
		struct hub_str json = { PQgetvalue(res, i, 5), (size_t)PQgetlength(res, i, 5) };
		int64_t id = strtoll(PQgetvalue(res, i, 3), NULL, 10);

		ing->publish(ing->data, tenant, id, event, json);
	}
	for (size_t r = 0; r < b->nreqs; r++)
		finish(b->reqs[r], status);
	free(b->reqs);
	free(b);
}

static void on_batch(int status, PGresult *res, void *data)
{
	struct batch *b = data;
	struct hub_ingest *ing = b->ing;

	ing->in_flight--;
	batch_finish(b, status, res);
	kick(ing);
}

/* Sends the waiting requests' items as batches while fewer than batches_in_flight run.
 * Re-entrant: answering a request may run the next one of its connection at once. */
static void kick(struct hub_ingest *ing)
{
	const struct hub_settings *s = hub_config_settings(ing->cfg);

	while (ing->head && ing->in_flight < s->ingest.batches_in_flight) {
		struct batch *b = hub_xcalloc(1, sizeof(*b));
		struct hub_buf json = HUB_BUF_INIT;
		struct hub_jw w;
		size_t cap = 0;
		int ret;

		b->ing = ing;
		hub_jw_init(&w, &json);
		hub_jw_arr_open(&w);
		/* whole requests, at least one, up to batch_max_items */
		while (ing->head && (!b->nitems || b->nitems + ing->head->events.n <=
					      (size_t)s->ingest.batch_max_items)) {
			struct ingest_req *ir = ing->head;

			ing->head = ir->next;
			if (!ing->head)
				ing->tail = NULL;
			if (b->nreqs == cap) {
				cap = cap ? 2 * cap : 16;
				b->reqs = hub_xrealloc(b->reqs, cap * sizeof(*b->reqs));
			}
			b->reqs[b->nreqs++] = ir;
			ir->first = b->nitems + 1;
			for (size_t i = 0; i < ir->events.n; i++)
				write_item(&w, ir->ch, &ir->events.items[i]);
			b->nitems += ir->events.n;
		}
		hub_jw_arr_close(&w);
		/* the batch size group commit reached: bench/run reads it for its reference */
		hub_metrics_count(ing->metrics, "ingest_batches", "Ingest batches (statements)",
				  NULL, 1);
		hub_metrics_count(ing->metrics, "ingest_batch_items", "Items in ingest batches",
				  NULL, (double)b->nitems);
		const char *params[1] = { hub_buf_str(&json).p };
		ret = hub_store_query(ing->store, batch_sql, 1, params, on_batch, b);
		hub_buf_release(&json);
		if (ret < 0) {
			/* may re-enter kick(): the state is consistent */
			batch_finish(b, ret, NULL);
			continue;
		}
		ing->in_flight++;
	}
}

/* Counts what the parser left out, then queues ir's items for the next batch. */
static void enqueue(struct ingest_req *ir)
{
	struct hub_ingest *ing = ir->ing;

	ir->n[R_IGNORED] = ir->events.ignored;
	ir->n[R_BAD] = ir->events.bad;
	if (!ir->events.n) {
		finish(ir, 0);
		return;
	}
	if (ing->tail)
		ing->tail->next = ir;
	else
		ing->head = ir;
	ing->tail = ir;
	kick(ing);
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
	ir = hub_pool_calloc(pool, 1, sizeof(*ir));
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
	ir->cfg = hub_config_ref(ing->cfg); /* ch points into it */
	enqueue(ir);
}

void hub_ingest_events(struct hub_ingest *ing, struct hub_config *cfg,
		       const struct hub_channel *ch, const struct hub_event_list *events,
		       hub_ingest_done_cb *done, void *data)
{
	struct ingest_req *ir = hub_xcalloc(1, sizeof(*ir));

	ir->ing = ing;
	ir->ch = ch;
	ir->events = *events;
	ir->done = done;
	ir->done_data = data;
	ir->cfg = hub_config_ref(cfg);
	enqueue(ir);
}
