/* daemon/webchat/webchat.c - see webchat.h. A visitor's socket: auth frame (the visitor
 * token) -> the bus's tenant referenced -> one sync query (history, or the log after the
 * client's cursor, and the tenant's last event id from the same snapshot) while live events
 * are held -> the held ones above that id -> live. Each frame carrying a cursor lets the
 * widget resume after it without a gap or a duplicate. Never logs a text, token or id of a
 * visitor beyond the socket number. */
#include "daemon/webchat/webchat.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "adapters/adapter.h"
#include "config/config.h"
#include "daemon/core/embed.h"
#include "daemon/core/publish.h"
#include "daemon/data/bus.h"
#include "daemon/data/store.h"
#include "daemon/inbox/ws.h"
#include "daemon/net/conns.h"
#include "daemon/net/http.h"
#include "lib/crypto.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/pool.h"
#include "lib/webcfg.h"

#define TAG "webchat"
#define PROTOCOL "bayge.visitor.v1"
#define WS_PATH "/ws/visitor/"
#define SYNC_PAGE 500      /* events of one resume query */
#define HELD_MAX 2000      /* live events held during a sync; beyond: closed (1013) */
#define CLIENT_ID_MAX 64
#define NAME_MAX_CP 100
#define TYPING_EVERY_MS 2000
#define CONVS_MAX 64
#define JSON_TOKENS 64
#define ADDR_BUCKETS 1024
#define ABUSE_MAX 20       /* frames over the rate in a row before the socket is closed */

static const char sync_sql[] =
	"SELECT contact_id, conversations, last_event_id, event_id, event, data "
	"FROM hub_webchat_sync($1, $2, $3::bigint, $4::integer)";
static const char mark_sql[] =
	"SELECT tenant_id, event_id, event, data FROM hub_webchat_mark($1, $2, $3::bigint, $4)";
static const char prechat_sql[] =
	"SELECT tenant_id, event_id, event, data FROM hub_webchat_prechat($1, $2, $3, $4)";
static const char msgid_sql[] = "SELECT hub_webchat_message_id($1, $2)";

enum vstate { V_AUTH, V_WAIT_BUS, V_SYNC, V_LIVE };

struct held {
	struct held *next;
	int64_t id;
	char *event, *data;
};

struct vtenant;
struct send_req;

/* A minute's message count, of one visitor (all their sockets) or one address. */
struct rate {
	int refs;
	uint64_t minute_start;
	int minute_count;
};

/* Counts one more message now: false when it is over max a minute. */
static bool rate_take(struct rate *r, uint64_t now, int max)
{
	if (now - r->minute_start >= 60000) {
		r->minute_start = now;
		r->minute_count = 0;
	}
	return ++r->minute_count <= max;
}

/* One client address's visitors (http.max_per_address's key): sockets and messages. */
struct addr {
	struct addr *next;        /* in its bucket */
	struct hub_conns_key key;
	int sockets;
	struct rate rate;
};

struct visitor {
	struct visitor *prev, *next; /* in its vtenant, or wc->unauthed */
	struct hub_webchat *wc;
	struct hub_ws_peer *peer;
	struct vtenant *vt;
	enum vstate state;
	char channel[65];
	char *sender;
	int64_t contact;          /* 0: no identity yet */
	int64_t *convs;           /* the visitor's conversations on the channel (heap) */
	size_t nconvs, capconvs;
	int64_t cursor;           /* the last event id the socket was brought past */
	int64_t after;            /* the client's cursor (-1: none: history) */
	bool syncing;             /* a sync query runs */
	bool resync;              /* sync again when it ends (the contact appeared) */
	struct held *held, *held_tail;
	size_t nheld;
	struct rate *rate;        /* messages per minute: shared by the visitor's sockets */
	uint64_t typing_at;
	double tokens;            /* frames: a token bucket (ws.commands_per_s, ws.command_burst) */
	uint64_t tokens_at;
	unsigned dropped;         /* frames dropped in a row */
	int64_t read_up_to;       /* the last read mark recorded */
	struct send_req *sends;   /* in flight; told when the visitor goes */
	struct query *syncq;      /* the sync in flight */
	struct addr *addr;        /* NULL: unknown address */
	bool closed;
};

struct vtenant {
	struct vtenant *next;
	char tid[128];
	struct hub_bus_tenant *bt;
	struct visitor *visitors;
};

struct hub_webchat {
	uv_loop_t *loop;
	struct hub_store *store;
	struct hub_bus *bus;
	struct hub_ws *ws;
	struct hub_config *cfg;
	hub_webchat_ingest_fn *ingest;
	hub_publish_fn *publish;
	void *data;
	struct vtenant *tenants;
	struct hub_ws_handler handler;
	struct hub_bus_sink tap;
	struct addr *addrs[ADDR_BUCKETS];
};

static size_t addr_hash(const struct hub_conns_key *k)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (size_t i = 0; i < sizeof(k->b); i++)
		h = (h ^ k->b[i]) * 1099511628211ULL;
	return (size_t)(h % ADDR_BUCKETS);
}

static struct addr *addr_ref(struct hub_webchat *wc, const struct hub_conns_key *k)
{
	struct addr **b = &wc->addrs[addr_hash(k)], *a;

	for (a = *b; a; a = a->next)
		if (memcmp(a->key.b, k->b, sizeof(k->b)) == 0)
			break;
	if (!a) {
		a = hub_xcalloc(1, sizeof(*a));
		a->key = *k;
		a->next = *b;
		*b = a;
	}
	a->sockets++;
	return a;
}

static void addr_unref(struct hub_webchat *wc, struct addr *a)
{
	struct addr **pp;

	if (!a || --a->sockets > 0)
		return;
	for (pp = &wc->addrs[addr_hash(&a->key)]; *pp != a; pp = &(*pp)->next)
		;
	*pp = a->next;
	free(a);
}

static uint64_t now_ms(struct hub_webchat *wc)
{
	return uv_now(wc->loop);
}

static void send_buf(struct visitor *v, struct hub_buf *b)
{
	if (!v->closed)
		hub_ws_peer_send(v->peer, hub_buf_str(b));
	hub_buf_release(b);
}

static void send_error(struct visitor *v, struct hub_str client_id, const char *code,
		       const char *msg)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_jw w;

	hub_jw_init(&w, &b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "type");
	hub_jw_cstr(&w, "error");
	if (client_id.len) {
		hub_jw_key(&w, "client_id");
		hub_jw_str(&w, client_id);
	}
	hub_jw_key(&w, "code");
	hub_jw_cstr(&w, code);
	hub_jw_key(&w, "message");
	hub_jw_cstr(&w, msg);
	hub_jw_obj_close(&w);
	send_buf(v, &b);
}

static const struct hub_channel *web_channel(struct hub_config *cfg, struct hub_str id)
{
	const struct hub_channel *ch = hub_config_channel(cfg, id);

	return ch && ch->kind == HUB_CHANNEL_WEB && ch->enabled && ch->web && ch->app_secret
		       ? ch : NULL;
}

/* ---- tenants ---- */

static struct vtenant *vtenant_find(struct hub_webchat *wc, struct hub_bus_tenant *bt)
{
	for (struct vtenant *t = wc->tenants; t; t = t->next)
		if (t->bt == bt)
			return t;
	return NULL;
}

static void vtenant_join(struct hub_webchat *wc, struct visitor *v, const char *tid)
{
	struct vtenant *t;

	for (t = wc->tenants; t; t = t->next)
		if (strcmp(t->tid, tid) == 0)
			break;
	if (!t) {
		t = hub_xcalloc(1, sizeof(*t));
		snprintf(t->tid, sizeof(t->tid), "%s", tid);
		t->bt = hub_bus_tenant_ref(wc->bus, tid);
		t->next = wc->tenants;
		wc->tenants = t;
	}
	v->vt = t;
	v->prev = NULL;
	v->next = t->visitors;
	if (t->visitors)
		t->visitors->prev = v;
	t->visitors = v;
}

static void vtenant_leave(struct visitor *v)
{
	struct vtenant *t = v->vt, **pp;

	if (!t)
		return;
	if (v->prev)
		v->prev->next = v->next;
	else
		t->visitors = v->next;
	if (v->next)
		v->next->prev = v->prev;
	v->vt = NULL;
	if (t->visitors)
		return;
	for (pp = &v->wc->tenants; *pp != t; pp = &(*pp)->next)
		;
	*pp = t->next;
	hub_bus_tenant_unref(t->bt);
	free(t);
}

/* ---- what a visitor sees ---- */

static bool has_conv(const struct visitor *v, int64_t id)
{
	for (size_t i = 0; i < v->nconvs; i++)
		if (v->convs[i] == id)
			return true;
	return false;
}

static void add_conv(struct visitor *v, int64_t id)
{
	if (has_conv(v, id) || v->nconvs >= CONVS_MAX)
		return;
	if (v->nconvs == v->capconvs) {
		v->capconvs = v->capconvs ? 2 * v->capconvs : 2;
		v->convs = hub_xrealloc(v->convs, v->capconvs * sizeof(*v->convs));
	}
	v->convs[v->nconvs++] = id;
}

static struct hub_str field(const struct hub_json_doc *doc, struct hub_pool *pool,
			    const char *key)
{
	struct hub_str s = HUB_STR_NULL;
	int i = hub_json_get(doc, 0, key);

	if (i >= 0 && hub_json_is(doc, i, HUB_JSON_STRING) &&
	    hub_json_string(doc, i, pool, &s) < 0)
		s = HUB_STR_NULL;
	return s;
}

static int64_t field_int(const struct hub_json_doc *doc, const char *key)
{
	int64_t v = 0;
	int i = hub_json_get(doc, 0, key);

	if (i < 0 || !hub_json_is(doc, i, HUB_JSON_PRIMITIVE) || hub_json_int64(doc, i, &v) < 0)
		return 0;
	return v;
}


/* What an event of the tenant is to visitors, read once for all of them: the frame it
 * gives (the same for everyone it concerns: the cursor is the event's id) and whom it
 * concerns. */
enum evkind { EV_NONE, EV_MESSAGE, EV_STATUS, EV_SEEN };

struct evinfo {
	enum evkind kind;
	char channel[65];      /* EV_MESSAGE (live): the message's channel */
	int64_t contact;       /* EV_MESSAGE (live): its contact */
	int64_t conv;          /* its conversation */
	int64_t delivered;     /* EV_MESSAGE: a reply that the socket taking it delivers */
	int64_t mid;           /* EV_MESSAGE: the message */
	bool from_visitor;     /* ... a visitor's: its text, to find the send it acks */
	struct hub_buf text;
	struct hub_buf frame;
};

/* Reads event id (data JSON) into info. from_log: the message data is already the
 * visitor's shape (hub_webchat_msg) and filtered by the database. */
static void evinfo_read(struct evinfo *info, int64_t id, struct hub_str event,
			struct hub_str data, bool from_log)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	struct hub_jw w;
	bool msg = hub_str_eqs(event, "message.created") || hub_str_eqs(event, "message.updated");

	memset(info, 0, sizeof(*info));
	hub_buf_init(&info->frame);
	hub_buf_init(&info->text);
	if (!msg && !hub_str_eqs(event, "message.status") &&
	    !(hub_str_eqs(event, "conversation.updated") && !from_log))
		return;
	if (hub_json_parse(&pool, data, 512, &doc, NULL) < 0 ||
	    !hub_json_is(&doc, 0, HUB_JSON_OBJECT))
		goto out;
	hub_jw_init(&w, &info->frame);
	if (msg) {
		struct hub_str author = field(&doc, &pool, "author");
		struct hub_str status = field(&doc, &pool, "status");
		struct hub_str channel = field(&doc, &pool, "channel_id");
		int64_t mid = field_int(&doc, "id");
		int del = hub_json_get(&doc, 0, "deleted_at");

		info->conv = field_int(&doc, "conversation_id");
		if (!from_log) {
			if (channel.len >= sizeof(info->channel))
				goto out;
			memcpy(info->channel, channel.p, channel.len);
			info->contact = field_int(&doc, "contact_id");
			if (hub_str_eqs(field(&doc, &pool, "direction"), "in"))
				author = HUB_STR("visitor");
		}
		hub_jw_obj_open(&w);
		hub_jw_key(&w, "type");
		hub_jw_cstr(&w, "message");
		hub_jw_key(&w, "cursor");
		hub_jw_int(&w, id);
		hub_jw_key(&w, "message");
		hub_jw_obj_open(&w);
		hub_jw_key(&w, "id");
		hub_jw_int(&w, mid);
		hub_jw_key(&w, "author");
		hub_jw_str(&w, author);
		hub_jw_key(&w, "type");
		hub_jw_str(&w, field(&doc, &pool, "type"));
		hub_jw_key(&w, "text");
		if (del < 0 || hub_json_is_null(&doc, del))
			hub_jw_str(&w, field(&doc, &pool, "text"));
		else
			hub_jw_null(&w); /* deleted: its text is gone for the visitor too */
		hub_jw_key(&w, "status");
		hub_jw_str(&w, status);
		hub_jw_key(&w, "created_at");
		hub_jw_str(&w, field(&doc, &pool, "created_at"));
		if (from_log) {
			hub_jw_key(&w, "client_id");
			hub_jw_str(&w, field(&doc, &pool, "client_id"));
		}
		hub_jw_obj_close(&w);
		hub_jw_obj_close(&w);
		if (!hub_str_eqs(author, "visitor") &&
		    (hub_str_eqs(status, "queued") || hub_str_eqs(status, "sent")))
			info->delivered = mid;
		info->mid = mid;
		info->from_visitor = hub_str_eqs(author, "visitor");
		if (info->from_visitor)
			hub_buf_addstr(&info->text, field(&doc, &pool, "text"));
		info->kind = EV_MESSAGE;
	} else if (hub_str_eqs(event, "message.status")) {
		info->conv = field_int(&doc, "conversation_id");
		hub_jw_obj_open(&w);
		hub_jw_key(&w, "type");
		hub_jw_cstr(&w, "status");
		hub_jw_key(&w, "cursor");
		hub_jw_int(&w, id);
		hub_jw_key(&w, "id");
		hub_jw_int(&w, field_int(&doc, "id"));
		hub_jw_key(&w, "status");
		hub_jw_str(&w, field(&doc, &pool, "status"));
		hub_jw_obj_close(&w);
		info->kind = EV_STATUS;
	} else {
		int u = hub_json_get(&doc, 0, "unread");
		int64_t unread = -1;

		if (u < 0 || hub_json_int64(&doc, u, &unread) < 0 || unread != 0)
			goto out;
		info->conv = field_int(&doc, "id");
		hub_jw_obj_open(&w);
		hub_jw_key(&w, "type");
		hub_jw_cstr(&w, "seen");
		hub_jw_key(&w, "cursor");
		hub_jw_int(&w, id);
		hub_jw_obj_close(&w);
		info->kind = EV_SEEN;
	}
out:
	hub_pool_release(&pool);
}

static void evinfo_release(struct evinfo *info)
{
	hub_buf_release(&info->frame);
	hub_buf_release(&info->text);
}

static void bind_send(struct visitor *v, const struct evinfo *info);

static void mark(struct visitor *v, int64_t id, const char *status);

/* Sends info to v if it concerns them (from_log: the database chose it for them). */
static void deliver(struct visitor *v, const struct evinfo *info, bool from_log,
		    int64_t *delivered_up_to)
{
	switch (info->kind) {
	case EV_NONE:
		return;
	case EV_MESSAGE:
		if (!from_log) {
			if (strcmp(info->channel, v->channel) != 0 || info->contact != v->contact)
				return;
			add_conv(v, info->conv);
		}
		if (info->delivered > *delivered_up_to)
			*delivered_up_to = info->delivered;
		if (info->from_visitor)
			bind_send(v, info);
		break;
	case EV_STATUS:
	case EV_SEEN:
		if (!from_log && !has_conv(v, info->conv))
			return;
		break;
	}
	if (!v->closed)
		hub_ws_peer_send(v->peer, hub_buf_str(&info->frame));
}

/* A live event for v; info is read once per event by the caller (read: whether it is). */
static void live_event(struct visitor *v, int64_t id, struct hub_str event, struct hub_str data,
		       struct evinfo *info, bool *read)
{
	int64_t delivered = 0;

	if (id <= v->cursor || !v->contact)
		return; /* no identity yet: the sync after the first message reads the log */
	v->cursor = id;
	if (!*read) {
		evinfo_read(info, id, event, data, false);
		*read = true;
	}
	deliver(v, info, false, &delivered);
	if (delivered)
		mark(v, delivered, "delivered");
}

/* ---- database ---- */

struct query {
	struct visitor *v; /* NULL once the visitor is gone */
	struct query **slot;
	struct hub_webchat *wc;
};

static void on_marked(int status, PGresult *res, void *data)
{
	struct hub_webchat *wc = data;

	if (status == 0)
		hub_publish_rows(wc->publish, wc->data, res);
}

static void mark(struct visitor *v, int64_t id, const char *status)
{
	char ids[24];
	const char *params[4] = { v->channel, v->sender, ids, status };

	snprintf(ids, sizeof(ids), "%" PRId64, id);
	if (hub_store_query(v->wc->store, mark_sql, 4, params, on_marked, v->wc) < 0)
		hub_log_debug(TAG, "conn=%llu: a %s mark was not recorded",
			      (unsigned long long)hub_ws_peer_id(v->peer), status);
}

static void start_sync(struct visitor *v);
static void siblings_learn(struct visitor *v);

static void held_free(struct visitor *v)
{
	while (v->held) {
		struct held *h = v->held;

		v->held = h->next;
		free(h->event);
		free(h->data);
		free(h);
	}
	v->held_tail = NULL;
	v->nheld = 0;
}

static void send_ready(struct visitor *v)
{
	struct hub_buf b = HUB_BUF_INIT;

	hub_buf_addf(&b, "{\"type\":\"ready\",\"cursor\":%" PRId64 "}", v->cursor);
	send_buf(v, &b);
}

static void on_sync(int status, PGresult *res, void *data)
{
	struct query *q = data;
	struct visitor *v = q->v;
	int64_t delivered = 0, last = 0, lastrow = -1;
	struct evinfo info;
	int rows;

	if (v)
		*q->slot = NULL;
	free(q);
	if (!v)
		return;
	v->syncing = false;
	if (status < 0 || PQntuples(res) < 1) {
		hub_ws_peer_close(v->peer, 1013, "try again later");
		return;
	}
	rows = PQntuples(res);
	v->contact = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	for (const char *p = PQgetvalue(res, 0, 1); *p;) {
		char *end;

		add_conv(v, strtoll(p, &end, 10));
		p = *end == ',' ? end + 1 : end;
	}
	last = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	for (int r = 1; r < rows; r++) {
		struct hub_str ev = { PQgetvalue(res, r, 4), (size_t)PQgetlength(res, r, 4) };
		struct hub_str d = { PQgetvalue(res, r, 5), (size_t)PQgetlength(res, r, 5) };
		int64_t id = PQgetisnull(res, r, 3) ? 0 : strtoll(PQgetvalue(res, r, 3), NULL, 10);

		if (hub_str_eqs(ev, "message"))
			ev = HUB_STR("message.created");
		if (PQgetisnull(res, r, 5))
			continue;
		evinfo_read(&info, id ? id : last, ev, d, true);
		deliver(v, &info, true, &delivered);
		evinfo_release(&info);
		lastrow = id;
	}
	if (delivered)
		mark(v, delivered, "delivered");
	if (v->after >= 0 && rows - 1 >= SYNC_PAGE && lastrow > 0) {
		v->after = lastrow; /* more of the log: the next page */
		start_sync(v);
		return;
	}
	/* the log up to last is read: live events above it complete it (a client's cursor
	 * beyond the log is brought back to it, or it would skip what comes next) */
	v->cursor = last;
	if (v->state != V_LIVE)
		send_ready(v);
	v->state = V_LIVE;
	for (struct held *h = v->held; h; h = h->next) {
		bool read = false;

		live_event(v, h->id, hub_str_from(h->event), hub_str_from(h->data), &info, &read);
		if (read)
			evinfo_release(&info);
	}
	held_free(v);
	if (v->resync) {
		v->resync = false;
		v->after = v->cursor;
		start_sync(v);
	}
	if (v->contact)
		siblings_learn(v);
}

/* v's identity is known now: its other sockets that did not know it yet (a tab open before
 * the visitor's first message) read the log after their cursor, which finds it. */
static void siblings_learn(struct visitor *v)
{
	for (struct visitor *o = v->vt ? v->vt->visitors : NULL; o; o = o->next) {
		if (o == v || o->contact || o->state != V_LIVE || !o->sender ||
		    strcmp(o->sender, v->sender) != 0 || strcmp(o->channel, v->channel) != 0)
			continue;
		o->after = o->cursor;
		start_sync(o);
	}
}

/* Reads the history (after < 0) or the log after v->after; live events are held meanwhile. */
static void start_sync(struct visitor *v)
{
	const struct hub_settings *s = hub_config_settings(v->wc->cfg);
	char after[24], limit[16];
	const char *params[4] = { v->channel, v->sender, NULL, limit };
	struct query *q;

	if (v->syncing) {
		v->resync = true;
		return;
	}
	if (v->after >= 0) {
		snprintf(after, sizeof(after), "%" PRId64, v->after);
		params[2] = after;
		snprintf(limit, sizeof(limit), "%d", SYNC_PAGE);
	} else {
		snprintf(limit, sizeof(limit), "%d", s->webchat.history);
	}
	v->state = V_SYNC;
	q = hub_xcalloc(1, sizeof(*q));
	q->v = v;
	q->wc = v->wc;
	v->syncing = true;
	if (hub_store_query(v->wc->store, sync_sql, 4, params, on_sync, q) < 0) {
		free(q);
		v->syncing = false;
		hub_ws_peer_close(v->peer, 1013, "try again later");
		return;
	}
	q->slot = &v->syncq;
	v->syncq = q;
}

/* ---- a visitor's send ---- */

struct send_req {
	struct send_req *next;     /* in v->sends */
	struct visitor *v;         /* NULL once the visitor is gone */
	struct hub_webchat *wc;
	struct hub_config *cfg;    /* the channel points into it */
	struct hub_pool pool;
	struct hub_event_list events;
	char *channel, *external_id, *client_id, *text;
	int64_t id;                /* the stored message, once its event was seen; 0: not yet */
};

/* The visitor's message of info is one of their sends in flight (the same text): its id
 * for the ack, without asking the database (the event comes before the ingest's answer). */
static void bind_send(struct visitor *v, const struct evinfo *info)
{
	for (struct send_req *sr = v->sends; sr; sr = sr->next) {
		if (sr->id == info->mid)
			return;
	}
	for (struct send_req *sr = v->sends; sr; sr = sr->next) {
		if (!sr->id && info->text.len && strcmp(sr->text, info->text.p) == 0) {
			sr->id = info->mid;
			return;
		}
	}
}

static void send_req_done(struct send_req *sr)
{
	struct visitor *v = sr->v;

	if (v) {
		struct send_req **pp = &v->sends;

		while (*pp != sr)
			pp = &(*pp)->next;
		*pp = sr->next;
	}
	hub_config_unref(sr->cfg);
	hub_pool_release(&sr->pool);
	free(sr->channel);
	free(sr->external_id);
	free(sr->client_id);
	free(sr->text);
	free(sr);
}

static void on_msgid(int status, PGresult *res, void *data)
{
	struct send_req *sr = data;
	struct visitor *v = sr->v;

	if (status == 0 && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		sr->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (v) {
		struct hub_buf b = HUB_BUF_INIT;
		struct hub_jw w;

		hub_jw_init(&w, &b);
		hub_jw_obj_open(&w);
		hub_jw_key(&w, "type");
		hub_jw_cstr(&w, "ack");
		hub_jw_key(&w, "client_id");
		hub_jw_cstr(&w, sr->client_id);
		hub_jw_key(&w, "id");
		if (sr->id)
			hub_jw_int(&w, sr->id);
		else
			hub_jw_null(&w);
		hub_jw_obj_close(&w);
		send_buf(v, &b);
		if (!v->contact) { /* the first message made the identity: read it */
			v->after = v->cursor;
			start_sync(v);
		}
	}
	send_req_done(sr);
}

static void on_ingested(int status, void *data)
{
	struct send_req *sr = data;
	const char *params[2] = { sr->channel, sr->external_id };

	if (!sr->v) {
		send_req_done(sr);
		return;
	}
	if (status < 0) {
		send_error(sr->v, hub_str_from(sr->client_id), "unavailable",
			   "the message could not be stored now: send it again");
		send_req_done(sr);
		return;
	}
	if (sr->id) { /* its event came first (the usual case): no query */
		on_msgid(-ENOENT, NULL, sr);
		return;
	}
	if (hub_store_query(sr->wc->store, msgid_sql, 2, params, on_msgid, sr) < 0)
		on_msgid(-EAGAIN, NULL, sr);
}

static bool valid_client_id(struct hub_str s)
{
	if (!s.len || s.len > CLIENT_ID_MAX)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

static size_t code_points(struct hub_str s)
{
	size_t n = 0;

	for (size_t i = 0; i < s.len; i++)
		n += ((unsigned char)s.p[i] & 0xc0) != 0x80;
	return n;
}

static void cmd_send(struct visitor *v, const struct hub_json_doc *doc, struct hub_pool *pool)
{
	struct hub_webchat *wc = v->wc;
	const struct hub_settings *s = hub_config_settings(wc->cfg);
	struct hub_str cid = field(doc, pool, "client_id"), text = field(doc, pool, "text");
	const struct hub_channel *ch = web_channel(wc->cfg, hub_str_from(v->channel));
	uint64_t now = now_ms(wc);
	struct send_req *sr;
	struct hub_event *ev;
	size_t cp;

	if (!valid_client_id(cid)) {
		send_error(v, HUB_STR_NULL, "bad_request", "client_id must be 1 to 64 of A-Z, "
			   "a-z, 0-9, '-' and '_'");
		return;
	}
	cp = code_points(text);
	if (!text.p || cp == 0) {
		send_error(v, cid, "bad_request", "text must be a non-empty string");
		return;
	}
	if (cp > (size_t)s->webchat.text_max) {
		char msg[80];

		snprintf(msg, sizeof(msg), "text is over %d characters", s->webchat.text_max);
		send_error(v, cid, "too_long", msg);
		return;
	}
	if (!rate_take(v->rate, now, s->webchat.messages_per_min)) {
		send_error(v, cid, "rate_limited", "too many messages; wait a minute");
		return;
	}
	if (v->addr && s->webchat.messages_per_min_per_address) {
		struct addr *a = v->addr;

		if (!rate_take(&a->rate, now, s->webchat.messages_per_min_per_address)) {
			send_error(v, cid, "rate_limited", "too many messages from this network; "
				   "wait a minute");
			return;
		}
	}
	if (!ch) {
		send_error(v, cid, "unavailable", "this chat is closed now");
		return;
	}
	sr = hub_xcalloc(1, sizeof(*sr));
	sr->v = v;
	sr->wc = wc;
	sr->cfg = hub_config_ref(wc->cfg);
	hub_pool_init(&sr->pool);
	sr->channel = strdup(v->channel);
	sr->client_id = strndup(cid.p, cid.len);
	sr->text = strndup(text.p, text.len);
	if (asprintf(&sr->external_id, "web/%s/%.*s", v->sender, (int)cid.len, cid.p) < 0)
		abort();
	ev = hub_event_list_push(&sr->events, &sr->pool);
	memset(ev, 0, sizeof(*ev));
	ev->kind = HUB_EVENT_MESSAGE;
	ev->msg.channel_kind = HUB_CHANNEL_WEB;
	ev->msg.channel_id = ch->id;
	ev->msg.external_id = hub_str_from(sr->external_id);
	ev->msg.sender_external_id = hub_pool_strcopy(&sr->pool, hub_str_from(v->sender));
	ev->msg.platform_ts = (int64_t)time(NULL) * 1000;
	ev->msg.type = HUB_MSG_TEXT;
	ev->msg.text = hub_pool_strcopy(&sr->pool, text);
	ev->msg.raw_type = HUB_STR("text");
	sr->next = v->sends;
	v->sends = sr;
	wc->ingest(wc->data, sr->cfg, ch, &sr->events, on_ingested, sr);
}

static void cmd_typing(struct visitor *v)
{
	struct hub_buf b = HUB_BUF_INIT;
	uint64_t now = now_ms(v->wc);

	if (!v->nconvs || now - v->typing_at < TYPING_EVERY_MS)
		return;
	v->typing_at = now;
	hub_buf_addf(&b, "{\"conversation_id\":%" PRId64 ",\"user\":\"visitor\"}",
		     v->convs[v->nconvs - 1]);
	hub_bus_ephemeral(v->wc->bus, hub_str_from(v->vt->tid), hub_ws_peer_id(v->peer),
			  HUB_STR("typing"), hub_buf_str(&b));
	hub_buf_release(&b);
}

/* {"type":"auth","token":T[,"after":N]} */
static void cmd_auth(struct visitor *v, const struct hub_json_doc *doc, struct hub_pool *pool)
{
	struct hub_webchat *wc = v->wc;
	const struct hub_channel *ch = web_channel(wc->cfg, hub_str_from(v->channel));
	struct hub_str type = field(doc, pool, "type"), token = field(doc, pool, "token"), sender;
	int i = hub_json_get(doc, 0, "after"), n = 0, ret;

	if (!hub_str_eqs(type, "auth")) {
		hub_ws_peer_close(v->peer, 1008, "auth required");
		return;
	}
	if (!ch) {
		hub_ws_peer_close(v->peer, 1008, "unknown channel");
		return;
	}
	ret = hub_visitor_token_verify(pool, token, hub_str_from(ch->app_secret), ch->id,
				       &sender);
	if (ret < 0) {
		hub_log_info(TAG, "conn=%llu channel=%s: visitor auth refused (%s)",
			     (unsigned long long)hub_ws_peer_id(v->peer), v->channel,
			     ret == -EXDEV ? "another channel's token" :
			     ret == -EPERM ? "bad signature" : "malformed");
		hub_ws_peer_close(v->peer, 1008, ret == -EXDEV ? "token of another channel"
							       : "bad token");
		return;
	}
	v->after = -1;
	if (i >= 0 && (!hub_json_is(doc, i, HUB_JSON_PRIMITIVE) ||
		       hub_json_int64(doc, i, &v->after) < 0 || v->after < 0)) {
		hub_ws_peer_close(v->peer, 1008, "after must be a cursor (an integer >= 0)");
		return;
	}
	v->sender = strndup(sender.p, sender.len);
	hub_ws_peer_ready(v->peer);
	vtenant_join(wc, v, ch->tenant);
	for (struct visitor *o = v->vt->visitors; o; o = o->next) {
		if (!o->sender || strcmp(o->sender, v->sender) != 0 ||
		    strcmp(o->channel, v->channel) != 0)
			continue;
		n++;
		if (o->rate && !v->rate) {
			v->rate = o->rate;
			v->rate->refs++;
		}
	}
	if (!v->rate) {
		v->rate = hub_xcalloc(1, sizeof(*v->rate));
		v->rate->refs = 1;
	}
	if (n > hub_config_settings(wc->cfg)->webchat.sockets_per_visitor) {
		hub_ws_peer_close(v->peer, 1013, "too many sockets for this visitor");
		return;
	}
	if (v->after >= 0)
		v->cursor = v->after;
	v->state = V_WAIT_BUS;
	if (hub_bus_tenant_last(v->vt->bt) >= 0)
		start_sync(v);
	else if (!hub_bus_tenant_reading(v->vt->bt))
		hub_ws_peer_close(v->peer, 1013, "try again later");
}

/* ---- the ws handler ---- */

static void *on_open(void *data, struct hub_ws_peer *p, const char *path, const char *origin)
{
	struct hub_webchat *wc = data;
	struct hub_pool pool = HUB_POOL_INIT;
	const struct hub_channel *ch;
	struct hub_webcfg cfg;
	struct hub_err err = HUB_ERR_INIT;
	struct visitor *v = NULL;
	struct hub_conns_key key;
	size_t n = strlen(WS_PATH), len;

	if (strncmp(path, WS_PATH, n) != 0)
		goto out;
	len = strcspn(path + n, "?/");
	if (!len || len > 64)
		goto out;
	ch = web_channel(wc->cfg, (struct hub_str){ path + n, len });
	if (!ch || hub_webcfg_parse(&pool, hub_str_from(ch->web), &cfg, &err) < 0 ||
	    !hub_webcfg_origin_allowed(&cfg, hub_str_from(origin)))
		goto out;
	v = hub_xcalloc(1, sizeof(*v));
	v->wc = wc;
	v->peer = p;
	if (hub_ws_peer_addr(p, &key) == 0) {
		int max = hub_config_settings(wc->cfg)->webchat.sockets_per_address;

		v->addr = addr_ref(wc, &key);
		if (max && v->addr->sockets > max) {
			char where[64];

			hub_log_info(TAG, "conn=%llu: over webchat.sockets_per_address (%d) from %s",
				     (unsigned long long)hub_ws_peer_id(p), max,
				     hub_conns_key_str(&key, where, sizeof(where)));
			hub_ws_peer_close(p, 1013, "too many chat sockets from this address");
		}
	}
	v->state = V_AUTH;
	v->after = -1;
	v->tokens = hub_config_settings(wc->cfg)->ws.command_burst;
	v->tokens_at = now_ms(wc);
	memcpy(v->channel, path + n, len);
out:
	hub_pool_release(&pool);
	return v;
}

/* Every frame pays, valid or not (an error answered for free would let a client have
 * errors written back as fast as it sends). */
static bool take_frame(struct visitor *v)
{
	const struct hub_settings *s = hub_config_settings(v->wc->cfg);
	uint64_t now = now_ms(v->wc);

	v->tokens += (double)(now - v->tokens_at) * s->ws.commands_per_s / 1000.0;
	v->tokens_at = now;
	if (v->tokens > s->ws.command_burst)
		v->tokens = s->ws.command_burst;
	if (v->tokens < 1.0) {
		if (++v->dropped > ABUSE_MAX)
			hub_ws_peer_close(v->peer, 1008, "rate limit exceeded");
		return false;
	}
	v->tokens -= 1.0;
	v->dropped = 0;
	return true;
}

static void on_message(void *state, struct hub_str msg, bool binary)
{
	struct visitor *v = state;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	struct hub_str type;

	if (!take_frame(v))
		return;

	if (binary || hub_json_parse(&pool, msg, JSON_TOKENS, &doc, NULL) < 0 ||
	    !hub_json_is(&doc, 0, HUB_JSON_OBJECT)) {
		if (v->state == V_AUTH)
			hub_ws_peer_close(v->peer, 1008, "auth required");
		else
			send_error(v, HUB_STR_NULL, "bad_request",
				   binary ? "binary frames are not supported"
					  : "a frame is a JSON object");
		goto out;
	}
	if (v->state == V_AUTH) {
		cmd_auth(v, &doc, &pool);
		goto out;
	}
	type = field(&doc, &pool, "type");
	if (hub_str_eqs(type, "send")) {
		cmd_send(v, &doc, &pool);
	} else if (hub_str_eqs(type, "typing")) {
		cmd_typing(v);
	} else if (hub_str_eqs(type, "read")) {
		int64_t id = field_int(&doc, "id");

		if (id > v->read_up_to && v->contact) {
			v->read_up_to = id;
			mark(v, id, "read");
		}
		else if (id <= 0)
			send_error(v, HUB_STR_NULL, "bad_request", "id must be a message id");
	} else if (hub_str_eqs(type, "ping")) {
		struct hub_buf b = HUB_BUF_INIT;

		hub_buf_adds(&b, "{\"type\":\"pong\"}");
		send_buf(v, &b);
	} else {
		send_error(v, HUB_STR_NULL, "bad_request",
			   "type must be send, typing, read or ping");
	}
out:
	hub_pool_release(&pool);
}

static void on_closed(void *state)
{
	struct visitor *v = state;

	v->closed = true;
	vtenant_leave(v);
	addr_unref(v->wc, v->addr);
	if (v->syncq)
		v->syncq->v = NULL;
	for (struct send_req *sr = v->sends; sr; sr = sr->next)
		sr->v = NULL;
	held_free(v);
	if (v->rate && --v->rate->refs == 0)
		free(v->rate);
	free(v->convs);
	free(v->sender);
	free(v);
}

/* ---- the bus ---- */

static void on_tap_event(void *data, struct hub_bus_tenant *bt, const struct hub_bus_event *ev)
{
	struct vtenant *t = vtenant_find(data, bt);
	struct evinfo info;
	bool read = false;

	if (!t)
		return;
	for (struct visitor *v = t->visitors; v; v = v->next) {
		if (v->state == V_LIVE) {
			live_event(v, ev->id, ev->event, ev->data, &info, &read);
		} else if (v->state == V_SYNC) {
			struct held *h;

			if (v->nheld >= HELD_MAX) {
				hub_ws_peer_close(v->peer, 1013, "try again later");
				continue;
			}
			h = hub_xcalloc(1, sizeof(*h));
			h->id = ev->id;
			h->event = strndup(ev->event.p, ev->event.len);
			h->data = strndup(ev->data.p, ev->data.len);
			if (v->held_tail)
				v->held_tail->next = h;
			else
				v->held = h;
			v->held_tail = h;
			v->nheld++;
		}
	}
	if (read)
		evinfo_release(&info);
}

static void on_tap_ready(void *data, struct hub_bus_tenant *bt, int status)
{
	struct vtenant *t = vtenant_find(data, bt);
	struct visitor *v, *next;

	if (!t)
		return;
	for (v = t->visitors; v; v = next) {
		next = v->next;
		if (v->state != V_WAIT_BUS || v->syncing)
			continue;
		if (status < 0)
			hub_ws_peer_close(v->peer, 1013, "try again later");
		else
			start_sync(v);
	}
}

static void on_tap_ephemeral(void *data, struct hub_bus_tenant *bt, uint64_t origin,
			     struct hub_str event, struct hub_str data_json)
{
	struct vtenant *t = vtenant_find(data, bt);
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	int64_t conv;

	if (!t || !hub_str_eqs(event, "typing") ||
	    hub_json_parse(&pool, data_json, JSON_TOKENS, &doc, NULL) < 0 ||
	    !hub_json_is(&doc, 0, HUB_JSON_OBJECT) ||
	    hub_str_eqs(field(&doc, &pool, "user"), "visitor"))
		goto out;
	conv = field_int(&doc, "conversation_id");
	for (struct visitor *v = t->visitors; v; v = v->next) {
		struct hub_buf b = HUB_BUF_INIT;

		if (v->state != V_LIVE || !has_conv(v, conv) || hub_ws_peer_id(v->peer) == origin)
			continue;
		hub_buf_adds(&b, "{\"type\":\"typing\"}");
		send_buf(v, &b);
	}
out:
	hub_pool_release(&pool);
}

/* ---- HTTP ---- */

void hub_webchat_handle_widget(struct hub_webchat *wc, struct hub_http_req *req)
{
	(void)wc;
	for (const struct hub_embed_file *f = hub_embedded_web; f->name; f++) {
		if (strcmp(f->name, "widget.js") != 0)
			continue;
		hub_http_req_add_header(req, "Access-Control-Allow-Origin", "*");
		hub_http_req_add_header(req, "Cross-Origin-Resource-Policy", "cross-origin");
		hub_http_req_add_header(req, "Cache-Control", "public, max-age=300");
		hub_http_req_add_header(req, "X-Content-Type-Options", "nosniff");
		hub_http_req_respond(req, 200, "text/javascript; charset=utf-8",
				     (struct hub_str){ f->data, f->len });
		return;
	}
	hub_http_req_error(req, 404, "not_found", "no widget in this build");
}

/* The channel of the route and its settings; answers 404 or 403 (an Origin that is not
 * the channel's) itself and returns NULL then. */
static const struct hub_channel *route_channel(struct hub_webchat *wc, struct hub_http_req *req,
					       struct hub_webcfg *cfg)
{
	struct hub_err err = HUB_ERR_INIT;
	const struct hub_channel *ch = web_channel(wc->cfg, hub_http_req_param(req, "channel"));

	if (!ch || hub_webcfg_parse(hub_http_req_pool(req), hub_str_from(ch->web), cfg, &err) < 0) {
		hub_http_req_error(req, 404, "unknown_channel", "no website chat of that id");
		return NULL;
	}
	if (!hub_webcfg_origin_allowed(cfg, hub_http_req_header(req, "Origin"))) {
		hub_http_req_error(req, 403, "origin_not_allowed",
				   "this page's origin is not one of the channel's origins");
		return NULL;
	}
	return ch;
}

struct session {
	struct hub_http_req *req;
	struct hub_webchat *wc;
	struct hub_buf answer;
};

static void on_prechat(int status, PGresult *res, void *data)
{
	struct session *se = data;

	if (status < 0) {
		hub_http_req_error(se->req, 503, "unavailable", "the database is unavailable");
	} else {
		hub_publish_rows(se->wc->publish, se->wc->data, res);
		hub_http_req_respond(se->req, 200, "application/json", hub_buf_str(&se->answer));
	}
	hub_buf_release(&se->answer);
	free(se);
}

void hub_webchat_handle_session(struct hub_webchat *wc, struct hub_http_req *req)
{
	struct hub_pool *pool = hub_http_req_pool(req);
	struct hub_webcfg cfg;
	const struct hub_channel *ch = route_channel(wc, req, &cfg);
	struct hub_json_doc doc;
	struct hub_str token, uid, hash, name, phone = HUB_STR_NULL, sender;
	struct hub_str origin = hub_http_req_header(req, "Origin");
	struct hub_buf tok = HUB_BUF_INIT, set = HUB_BUF_INIT;
	struct session *se;
	struct hub_jw w;
	bool fresh = false;
	int ret;

	if (!ch)
		return;
	hub_http_req_add_header(req, "Access-Control-Allow-Origin",
				hub_pool_strndup(pool, origin.p, origin.len));
	hub_http_req_add_header(req, "Vary", "Origin");
	if (hub_str_eqs(hub_http_req_method(req), "OPTIONS")) {
		hub_http_req_add_header(req, "Access-Control-Allow-Methods", "POST");
		hub_http_req_add_header(req, "Access-Control-Allow-Headers", "Content-Type");
		hub_http_req_add_header(req, "Access-Control-Max-Age", "600");
		hub_http_req_respond(req, 204, NULL, HUB_STR_NULL);
		return;
	}
	if (hub_json_parse(pool, hub_http_req_body(req), JSON_TOKENS, &doc, NULL) < 0 ||
	    !hub_json_is(&doc, 0, HUB_JSON_OBJECT)) {
		hub_http_req_error(req, 400, "bad_request", "the body must be a JSON object");
		return;
	}
	token = field(&doc, pool, "token");
	uid = field(&doc, pool, "user_id");
	hash = field(&doc, pool, "user_hash");
	name = field(&doc, pool, "name");
	if (uid.p || hash.p) {
		if (!uid.p || !hub_webcfg_user_id_valid(uid)) {
			hub_http_req_error(req, 400, "bad_user_id", "user_id must be 1 to 128 "
					   "printable characters without spaces");
			return;
		}
		if (!hub_webcfg_user_hash_ok(hub_str_from(ch->app_secret), uid, hash)) {
			hub_log_info(TAG, "channel=%s: a user hash refused", ch->id);
			hub_http_req_error(req, 401, "bad_user_hash", "user_hash is not the "
					   "HMAC-SHA256 of user_id with the channel's secret");
			return;
		}
		sender = hub_str_from(hub_pool_sprintf(pool, "u:%.*s", HUB_STR_FMT(uid)));
	} else if (token.p) {
		ret = hub_visitor_token_verify(pool, token, hub_str_from(ch->app_secret), ch->id,
					       &sender);
		if (ret == -EXDEV) {
			hub_http_req_error(req, 403, "wrong_channel", "the token is another "
					   "channel's");
			return;
		}
		if (ret < 0) {
			hub_http_req_error(req, 401, "bad_token", "the visitor token is not valid");
			return;
		}
		/* a verified user's token stays the user's: a page without the user's hash
		 * cannot keep it (a shared computer, a logout) */
		if (hub_str_eqs((struct hub_str){ sender.p, 2 }, "u:")) {
			hub_http_req_error(req, 401, "bad_token", "a signed-in user's token needs "
					   "user_id and user_hash");
			return;
		}
	} else {
		unsigned char rnd[16];
		char hex[33];

		if (hub_random_bytes(rnd, sizeof(rnd)) < 0) {
			hub_http_req_error(req, 503, "unavailable", "no randomness");
			return;
		}
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
		sender = hub_str_from(hub_pool_sprintf(pool, "v:%s", hex));
		fresh = true;
	}
	if (name.p || hub_json_get(&doc, 0, "phone") >= 0) {
		struct hub_str raw = field(&doc, pool, "phone");

		if (!cfg.prechat) {
			hub_http_req_error(req, 400, "prechat_off", "this chat asks no name or "
					   "phone");
			return;
		}
		if (name.p && (code_points(name) > NAME_MAX_CP || !name.len)) {
			hub_http_req_error(req, 400, "bad_name", "name must be 1 to 100 characters");
			return;
		}
		if (raw.len && hub_phone_normalize(pool, raw, &phone) < 0) {
			hub_http_req_error(req, 400, "bad_phone", "phone is not a phone number");
			return;
		}
	}
	(void)fresh;
	hub_visitor_token_sign(&tok, hub_str_from(ch->app_secret), ch->id, sender, time(NULL));
	hub_webcfg_public_json(&cfg, &set);
	se = hub_xcalloc(1, sizeof(*se));
	se->req = req;
	se->wc = wc;
	hub_jw_init(&w, &se->answer);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "token");
	hub_jw_str(&w, hub_buf_str(&tok));
	hub_jw_key(&w, "channel");
	hub_jw_cstr(&w, ch->id);
	hub_jw_key(&w, "settings");
	hub_jw_raw(&w, hub_buf_str(&set));
	hub_jw_obj_close(&w);
	hub_buf_release(&tok);
	hub_buf_release(&set);
	if (name.len || phone.len) {
		const char *params[4] = {
			ch->id, hub_pool_strndup(pool, sender.p, sender.len),
			name.len ? hub_pool_strndup(pool, name.p, name.len) : NULL,
			phone.len ? hub_pool_strndup(pool, phone.p, phone.len) : NULL };

		if (hub_store_query(wc->store, prechat_sql, 4, params, on_prechat, se) == 0)
			return;
		on_prechat(-EAGAIN, NULL, se);
		return;
	}
	on_prechat(0, NULL, se);
}

static void on_upgraded(int fd, const char *buf, size_t len, void *data)
{
	struct hub_webchat *wc = data;

	if (hub_ws_adopt_handler(wc->ws, fd, buf, len) < 0)
		hub_log_warn(TAG, "could not adopt an upgraded connection");
}

void hub_webchat_handle_upgrade(struct hub_webchat *wc, struct hub_http_req *req)
{
	struct hub_webcfg cfg;

	if (!route_channel(wc, req, &cfg))
		return;
	if (!hub_str_caseeqs(hub_http_req_header(req, "Upgrade"), "websocket")) {
		hub_http_req_error(req, 426, "upgrade_required",
				   "this endpoint speaks websocket (subprotocol " PROTOCOL ")");
		return;
	}
	if (hub_http_req_upgrade(req, on_upgraded, wc) < 0)
		hub_http_req_error(req, 400, "bad_upgrade", "the upgrade request is too large");
}

/* ---- lifecycle ---- */

struct hub_webchat *hub_webchat_new(uv_loop_t *loop, struct hub_store *store,
				    struct hub_bus *bus, struct hub_ws *ws,
				    struct hub_config *cfg, hub_webchat_ingest_fn *ingest,
				    hub_publish_fn *publish, void *data)
{
	struct hub_webchat *wc = hub_xcalloc(1, sizeof(*wc));

	wc->loop = loop;
	wc->store = store;
	wc->bus = bus;
	wc->ws = ws;
	wc->cfg = hub_config_ref(cfg);
	wc->ingest = ingest;
	wc->publish = publish;
	wc->data = data;
	wc->handler = (struct hub_ws_handler){ PROTOCOL, on_open, on_message, on_closed, wc };
	wc->tap = (struct hub_bus_sink){ on_tap_event, on_tap_ready, on_tap_ephemeral };
	hub_ws_set_handler(ws, &wc->handler);
	hub_ws_set_tap(ws, &wc->tap, wc);
	return wc;
}

void hub_webchat_set_config(struct hub_webchat *wc, struct hub_config *cfg)
{
	hub_config_unref(wc->cfg);
	wc->cfg = hub_config_ref(cfg);
}

void hub_webchat_free(struct hub_webchat *wc)
{
	if (!wc)
		return;
	hub_config_unref(wc->cfg);
	free(wc);
}
