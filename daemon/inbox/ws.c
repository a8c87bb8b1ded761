/* daemon/inbox/ws.c - the agents' websocket server: libwebsockets 4.1 on hubd's libuv loop
 * (foreign loop), fed with sockets the HTTP server already accepted; JWT auth as the first
 * frame, per-tenant fan-out of shared refcounted frames, bounded send queues, pings,
 * resume from the event log, command rate limits and socket caps.
 * Each socket keeps the last event id it was sent (its cursor): the bus hands over a
 * tenant's events in id order, a socket sends those above its cursor, and a resuming socket
 * reads the log in pages until it reaches what the bus delivered, then goes live. Right
 * after hello live events are held until the first command, in case it is a resume.
 * A socket's output goes out at the next loop iteration as one write (sendmsg of iovecs
 * pointing into the shared frames, headers included: no per-socket copy), the sockets of
 * a tenant taking turns at the front; a socket whose queue is full stops taking live
 * events and catches up from the log from its cursor as it drains (not closed). Every
 * socket's deadlines are in one heap of ours, not in lws' timer list (see there why).
 * Knows nothing about llhttp, webhooks or what events mean: data_json is passed through. */
#include "daemon/inbox/ws.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <uv.h> /* before libwebsockets.h: lws declares its libuv helpers only then */
#include <libwebsockets.h>

#include "daemon/core/metrics.h"
#include "daemon/data/bus.h"
#include "daemon/data/store.h"
#include "daemon/inbox/inbox.h"
#include "daemon/net/conns.h"
#include "lib/json.h"
#include "lib/jwt.h"
#include "lib/log.h"
#include "lib/pool.h"
#include "lib/revoke.h"

#define TAG "ws"
#define WS_PROTOCOL "bayge.v1"
#define WS_HANDLER_PROTOCOL "bayge.visitor.v1" /* the only handler's (hub_ws_set_handler) */
#define WS_ADOPT_MAX 2048       /* bytes lws replays from an adopted socket */
#define WS_RX_CHUNK 512         /* lws delivers a message in pieces of at most this (and
				 * keeps a buffer of this size for every socket) */
#define WS_TX_PACKET 65536      /* bytes lws hands to one send() */
#define WS_JSON_TOKENS 1024     /* tokens of one client message */
#define WS_WRITE_BUDGET 262144  /* bytes of frames in one write (one send) */
#define WS_WRITE_IOV 64         /* frames in one write */
/* Sockets written by one turn of on_flush before the loop polls again: the writes of a
 * fan-out to a thousand sockets took 5-20 ms in one piece (each send does the loopback
 * peer's receive too), and the webhook behind it waited that long to be read, committed
 * and numbered. 64 writes are a few hundred microseconds (hubd's CPU a write was 4-9 us
 * in bench/fanout on the 2-core build machine). */
#define WS_FLUSH_SLICE 64
#define WS_HEADER_MAX 10        /* RFC 6455 5.2: the longest server frame header */
#define WS_OP_TEXT 0x1          /* RFC 6455 5.2 opcodes */
#define WS_OP_PING 0x9
#define WS_HEAP_NONE SIZE_MAX   /* client->heap_idx when not in the deadline heap */
#define WS_DRAIN_MS 1000        /* at shutdown: wait this long for close handshakes */
#define WS_ABUSE_MAX 20         /* rate-limited commands in a row before the socket is closed */
#define WS_EXP_HORIZON_S (366 * 86400) /* a token's expiry further away is armed as this */
/* RFC 6455 11.7 registry: 1013 Try Again Later (not in lws 4.1's enum) */
#define WS_CLOSE_TRY_AGAIN ((enum lws_close_status)1013)

/* An intrusive doubly linked list (circular, with a head node). */
struct link {
	struct link *prev, *next;
};

static void link_init(struct link *h)
{
	h->prev = h->next = h;
}

static bool link_empty(const struct link *h)
{
	return h->next == h;
}

static void link_add_tail(struct link *h, struct link *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static void link_del(struct link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/* One encoded text frame, shared by every socket that sends it: its RFC 6455 header (the
 * same bytes for every socket: a server does not mask) sits right before the JSON. */
struct frame {
	unsigned refs;
	unsigned hlen;    /* bytes of header before the JSON */
	size_t len;       /* bytes of JSON after the LWS_PRE headroom */
	unsigned char data[]; /* LWS_PRE headroom ending with the header, then the JSON */
};

struct qent {
	struct qent *next;
	struct frame *f;
};

/* The sockets of one tenant here; lives in the bus tenant's user slot. */
struct tenant {
	struct link clients;         /* authenticated clients of this tenant */
	size_t n;
	struct hub_bus_tenant *bt;   /* one reference per client */
};

struct replay_req;

/* A command whose answer is still to come. */
struct cmd_slot {
	struct link link;           /* in client->cmds */
	struct client *c;
	struct hub_inbox_cmd *cmd;
};

struct client {
	struct link all;    /* in ws->clients */
	struct link dirty;  /* in ws->dirty while output waits for the next flush */
	struct link peers;  /* in tenant->clients once authenticated */
	struct hub_ws *ws;
	struct lws *wsi;
	struct tenant *tenant;     /* NULL until authenticated */
	struct replay_req *replay; /* the log read in flight, if any */
	struct link cmds;          /* struct cmd_slot: commands in flight */
	uint64_t id;               /* for logs; typing skips its sender by it */
	int64_t cursor;            /* the last event id sent (or skipped by hello/resume) */
	int64_t resume_after;      /* a resume that came before hello; -1: none */
	double tokens;             /* command rate limit: a token bucket */
	uint64_t tokens_at;        /* uv_now ms of the last refill */
	unsigned limited;          /* rate-limited commands in a row */
	struct hub_buf rx;         /* the message being assembled */
	struct qent *head, *tail;  /* send queue */
	struct qent *held, *held_tail; /* live events held after hello (see holding) */
	size_t queued;             /* bytes of JSON in both */
	struct hub_jwt_claims claims;
	struct hub_conns_key peer; /* whom it is counted for in ws->conns */
	bool in_conns;       /* ... once it is */
	bool authed;         /* a valid token was presented */
	bool hello_pending;  /* authed, "hello" not queued yet: hold the queue */
	bool replaying;      /* resume reads the log: live events wait in the log */
	bool replay_wait;    /* ... and waits for the queue to drain before the next page */
	bool catchup;        /* ... because its queue was full (not a resume: no "resumed") */
	bool holding;        /* after hello, until the first command or hold_until: live
			      * events wait in held, so that a resume coming right after
			      * hello gets everything in order (they are dropped then) */
	bool ping_pending;
	bool closing;        /* close_code/close_reason go out from the timer */
	bool counted;        /* the close is in the metrics already */
	int close_code;
	char close_reason[124]; /* RFC 6455 5.5: a control payload is at most 125 bytes */
	const char *close_kind; /* metrics label */
	uint64_t auth_deadline; /* uv_now ms */
	uint64_t last_seen;     /* uv_now ms of the last pong or frame */
	uint64_t next_ping;     /* uv_now ms */
	uint64_t hold_until;    /* uv_now ms */
	uint64_t due;           /* uv_now ms: the earliest of the above (client_arm_timer) */
	size_t heap_idx;        /* in ws->heap; WS_HEAP_NONE: not there */
	const struct hub_ws_handler *h; /* a socket of the handler's subprotocol; NULL: ours */
	void *hstate;           /* the handler's state (NULL once it refused or was told) */
	bool h_ready;           /* the handler's peer authenticated: no auth deadline */
};

/* The store callback may run after the socket closed: it finds c == NULL then. */
struct replay_req {
	struct client *c;
};

/* lws' per-session data: just where our client lives. */
struct pss {
	struct client *c;
};

struct hub_ws {
	uv_loop_t *loop;
	struct lws_context *ctx; /* set to NULL by lws when fully destroyed */
	struct lws_vhost *vh;
	struct hub_store *store;
	struct hub_bus *bus;
	struct hub_conns *conns;
	struct hub_metrics *metrics;
	struct hub_revocations *revoked; /* NULL: none */
	struct hub_ws_opts opts;
	struct hub_buf secret;   /* opts.jwt_secret points here */
	struct link clients;
	size_t nclients, nauthed;
	uint64_t next_id;
	uv_timer_t timer;        /* shutdown: drain deadline, then context destroy */
	uv_timer_t tick;         /* the top of heap is due */
	uint64_t tick_due;       /* uv_now ms tick is started for; UINT64_MAX: stopped */
	struct client **heap;    /* min-heap of clients by due: every socket's deadlines */
	size_t heap_n, heap_cap;
	uv_idle_t flush;         /* next loop iteration: writes what dirty clients queued */
	struct link dirty;       /* clients with output queued since the last flush */
	uint64_t writes, written; /* sendmsg() calls and whole frames they sent, not counted
				   * in the metrics yet (on_flush adds them) */
	unsigned char *scratch;  /* LWS_PRE + WS_WRITE_BUDGET: frames of one write */
	unsigned handles;        /* timer, tick, flush: open until the teardown */
	bool closing, destroyed;
	void (*close_cb)(void *data);
	void *close_data;
	struct lws_protocols protocols[3]; /* bayge.v1, the handler's, the terminator */
	const struct hub_ws_handler *handler; /* NULL: none */
	const struct hub_bus_sink *tap;       /* NULL: none */
	void *tap_data;
};

static void on_drain_timer(uv_timer_t *t);
static void client_replay_start(struct client *c, int64_t after);
static void client_arm_timer(struct client *c);

/* lws logs go into ours: errors and warnings as warnings, the rest at debug. lws at these
 * levels logs states and pointers, never frame payloads. */
static void on_lws_log(int level, const char *line)
{
	size_t n = strlen(line);

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	/* 4.1.6 logs every readbuf adoption at error level: it is the normal path for us. */
	if ((level & (LLL_ERR | LLL_WARN)) && !strstr(line, "adopt_socket_readbuf"))
		hub_log_warn("lws", "%.*s", (int)n, line);
	else
		hub_log_debug("lws", "%.*s", (int)n, line);
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void count_close(struct hub_ws *ws, const char *kind)
{
	char labels[64];

	if (!ws->metrics)
		return;
	snprintf(labels, sizeof(labels), "reason=\"%s\"", kind);
	hub_metrics_count(ws->metrics, "ws_closes", "Websocket connections closed, by reason",
			  labels, 1);
}

static double on_gauge_clients(void *data)
{
	return (double)((struct hub_ws *)data)->nclients;
}

static double on_gauge_queued(void *data)
{
	struct hub_ws *ws = data;
	size_t n = 0;

	for (struct link *l = ws->clients.next; l != &ws->clients; l = l->next)
		n += hub_container_of(l, struct client, all)->queued;
	return (double)n;
}

static double on_gauge_authed(void *data)
{
	return (double)((struct hub_ws *)data)->nauthed;
}

/* Frames */

static size_t frame_header(unsigned char *h, unsigned opcode, size_t len);

static struct frame *frame_new(struct hub_str json)
{
	struct frame *f = hub_xmalloc(sizeof(*f) + LWS_PRE + json.len);
	unsigned char h[WS_HEADER_MAX];

	f->refs = 1;
	f->len = json.len;
	f->hlen = (unsigned)frame_header(h, WS_OP_TEXT, json.len);
	memcpy(f->data + LWS_PRE - f->hlen, h, f->hlen);
	memcpy(f->data + LWS_PRE, json.p, json.len);
	return f;
}

static void frame_unref(struct frame *f)
{
	if (f && --f->refs == 0)
		free(f);
}

/* Clients */

static void queue_free(struct qent *q)
{
	while (q) {
		struct qent *next = q->next;

		frame_unref(q->f);
		free(q);
		q = next;
	}
}

static void queue_drop(struct client *c)
{
	queue_free(c->head);
	queue_free(c->held);
	c->head = c->tail = c->held = c->held_tail = NULL;
	c->queued = 0;
}

/* ---- deadlines: one min-heap of clients by due, one uv timer for its top ----
 * Not lws_set_timer_usecs(): lws 4.1 keeps its timers in one sorted list that every
 * insertion walks, and a socket's timer moves on connect, auth and every ping: at 10,000
 * sockets that walk was most of the CPU. Here a move is O(log n). */

static void heap_put(struct hub_ws *ws, size_t i, struct client *c)
{
	ws->heap[i] = c;
	c->heap_idx = i;
}

static void heap_up(struct hub_ws *ws, size_t i)
{
	struct client *c = ws->heap[i];

	while (i > 0 && ws->heap[(i - 1) / 2]->due > c->due) {
		heap_put(ws, i, ws->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_put(ws, i, c);
}

static void heap_down(struct hub_ws *ws, size_t i)
{
	struct client *c = ws->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, m = l;

		if (l >= ws->heap_n)
			break;
		if (l + 1 < ws->heap_n && ws->heap[l + 1]->due < ws->heap[l]->due)
			m = l + 1;
		if (ws->heap[m]->due >= c->due)
			break;
		heap_put(ws, i, ws->heap[m]);
		i = m;
	}
	heap_put(ws, i, c);
}

static void heap_remove(struct client *c)
{
	struct hub_ws *ws = c->ws;
	size_t i = c->heap_idx;
	struct client *last;

	if (i == WS_HEAP_NONE)
		return;
	c->heap_idx = WS_HEAP_NONE;
	last = ws->heap[--ws->heap_n];
	if (last == c)
		return;
	heap_put(ws, i, last);
	heap_up(ws, i);
	heap_down(ws, last->heap_idx);
}

static void on_tick(uv_timer_t *t);

/* Starts the tick for the top of the heap unless it is started for that time already. */
static void tick_arm(struct hub_ws *ws)
{
	uint64_t now = uv_now(ws->loop), due;
	int r;

	if (ws->destroyed || ws->heap_n == 0 || ws->heap[0]->due >= ws->tick_due)
		return;
	due = ws->heap[0]->due;
	r = uv_timer_start(&ws->tick, on_tick, due > now ? due - now : 0, 0);
	hub_assert(r == 0);
	ws->tick_due = due;
}

/* c's next deadline is due (uv_now ms). */
static void client_set_due(struct client *c, uint64_t due)
{
	struct hub_ws *ws = c->ws;
	uint64_t old = c->due;

	c->due = due;
	if (c->heap_idx == WS_HEAP_NONE) {
		if (ws->heap_n == ws->heap_cap) {
			ws->heap_cap = ws->heap_cap ? 2 * ws->heap_cap : 64;
			ws->heap = hub_xrealloc(ws->heap, ws->heap_cap * sizeof(*ws->heap));
		}
		heap_put(ws, ws->heap_n++, c);
		heap_up(ws, c->heap_idx);
	} else if (due < old) {
		heap_up(ws, c->heap_idx);
	} else {
		heap_down(ws, c->heap_idx);
	}
	tick_arm(ws);
}

static void client_due(struct client *c);

static void on_tick(uv_timer_t *t)
{
	struct hub_ws *ws = t->data;
	uint64_t now = uv_now(ws->loop);

	ws->tick_due = UINT64_MAX; /* one-shot: stopped now */
	/* client_due() moves c to a later time or out of the heap: the loop ends. */
	while (ws->heap_n && ws->heap[0]->due <= now) {
		struct client *c = ws->heap[0];

		heap_remove(c);
		client_due(c);
	}
	tick_arm(ws);
}

/* ---- output: frames go out after the loop iteration that queued them ---- */

static void on_flush(uv_idle_t *h);

/* c has output (a ping, or frames unless held for "hello"): on_flush() writes it at the
 * start of the next loop iteration, all of it in one send, with no POLLOUT round trip
 * (lws_callback_on_writable() costs two epoll_ctl calls on lws 4.1's libuv glue).
 * An idle handle, not a check: an active idle handle keeps the poll from blocking, so
 * output queued from a timer goes out at once too. */
static void want_flush(struct client *c)
{
	struct hub_ws *ws = c->ws;
	int r;

	if (c->closing || ws->destroyed)
		return;
	if (link_empty(&c->dirty))
		link_add_tail(&ws->dirty, &c->dirty);
	if (!uv_is_active((uv_handle_t *)&ws->flush)) {
		r = uv_idle_start(&ws->flush, on_flush);
		hub_assert(r == 0);
	}
}

static void want_write(struct client *c)
{
	if (c->ping_pending || (c->head && !c->hello_pending))
		want_flush(c);
}

/* lws closes c (or is about to): nothing more goes out from us, its queue is freed and
 * its deadlines are gone. */
static void client_quiet(struct client *c)
{
	c->closing = true;
	queue_drop(c);
	heap_remove(c);
	link_del(&c->dirty);
}

/* Closes c with code and reason: the queue is freed now (memory must not grow while the
 * close handshake runs) and the close starts from c's lws timer, which fires at once.
 * Why the timer: in lws 4.1.6 a WRITEABLE callback returning -1 counts as a failed write
 * and drops the socket without a close frame, while a TIMER callback returning -1 goes
 * through the ws close handshake with the reason set by lws_close_reason(); lws then
 * kills a peer that does not take the close frame within 5 s. */
static void client_close(struct client *c, int code, const char *reason, const char *kind)
{
	if (c->closing)
		return;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
	c->close_kind = kind;
	c->counted = true;
	count_close(c->ws, kind); /* now: the close handshake may take seconds */
	client_quiet(c);
	hub_log_debug(TAG, "conn=%llu: closing %d %s", (unsigned long long)c->id, code, kind);
	/* lws' own timer list holds little now: inserting at its head is cheap. Outside an
	 * lws callback (our tick, a bus event) lws 4.1 does not re-arm its libuv timer for a
	 * new head; the WRITEABLE request brings lws round to it. */
	lws_set_timer_usecs(c->wsi, 1);
	lws_callback_on_writable(c->wsi);
}

/* Appends f (taking a reference) to c's queue, or to its held events; over
 * send_queue_max (both together), closes c instead. */
static void client_queue(struct client *c, struct frame *f, bool held)
{
	struct qent *q;

	if (c->closing)
		return;
	if (c->queued + f->len > c->ws->opts.send_queue_max) {
		hub_log_warn(TAG, "conn=%llu tenant=%s: send queue over %zu bytes: closing",
			     (unsigned long long)c->id, c->claims.tid, c->ws->opts.send_queue_max);
		client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue overflow",
			     "queue_overflow");
		return;
	}
	q = hub_xmalloc(sizeof(*q));
	q->next = NULL;
	q->f = f;
	f->refs++;
	c->queued += f->len;
	if (held) {
		if (c->held_tail)
			c->held_tail->next = q;
		else
			c->held = q;
		c->held_tail = q;
		return;
	}
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	want_write(c);
}

static void client_send(struct client *c, struct frame *f)
{
	client_queue(c, f, false);
}

static void client_send_json(struct client *c, struct hub_str json)
{
	struct frame *f = frame_new(json);

	client_send(c, f);
	frame_unref(f);
}

static void count_error(struct hub_ws *ws, const char *code)
{
	char labels[64];

	if (!ws->metrics)
		return;
	snprintf(labels, sizeof(labels), "code=\"%s\"", code);
	hub_metrics_count(ws->metrics, "ws_command_errors",
			  "Websocket commands answered with an error, by code", labels, 1);
}

static void client_send_error(struct client *c, const struct hub_json_doc *doc,
			      struct hub_pool *pool, const char *code, const char *message)
{
	struct hub_buf b = HUB_BUF_INIT;

	count_error(c->ws, code);
	hub_inbox_error(&b, doc, pool, code, message);
	client_send_json(c, hub_buf_str(&b));
	hub_buf_release(&b);
}

/* {"type":"event","id":N,"event":E,"data":D}; id 0 (ephemeral) has no "id". */
static struct frame *event_frame(int64_t id, struct hub_str event, struct hub_str data)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_jw w;
	struct frame *f;

	hub_jw_init(&w, &b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "type");
	hub_jw_cstr(&w, "event");
	if (id > 0) {
		hub_jw_key(&w, "id");
		hub_jw_int(&w, id);
	}
	hub_jw_key(&w, "event");
	hub_jw_str(&w, event);
	hub_jw_key(&w, "data");
	hub_jw_raw(&w, data.len ? data : HUB_STR("null"));
	hub_jw_obj_close(&w);
	f = frame_new(hub_buf_str(&b));
	hub_buf_release(&b);
	return f;
}

/* Sends hello ahead of whatever was queued meanwhile (acks, errors), and from now on the
 * events after last. */
static void client_hello(struct client *c, int64_t last)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_jw w;
	struct qent *q;
	struct frame *f;

	c->hello_pending = false;
	c->cursor = last;
	if (c->closing)
		return;
	hub_jw_init(&w, &b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "type");
	hub_jw_cstr(&w, "hello");
	hub_jw_key(&w, "last_event_id");
	hub_jw_int(&w, last);
	hub_jw_key(&w, "user");
	hub_jw_cstr(&w, c->claims.sub);
	hub_jw_key(&w, "role");
	hub_jw_cstr(&w, hub_role_name(c->claims.role));
	hub_jw_key(&w, "tenant");
	hub_jw_cstr(&w, c->claims.tid);
	hub_jw_obj_close(&w);
	f = frame_new(hub_buf_str(&b));
	q = hub_xmalloc(sizeof(*q));
	q->f = f; /* the reference of frame_new moves to the queue */
	q->next = c->head;
	c->head = q;
	if (!c->tail)
		c->tail = q;
	c->queued += f->len;
	hub_buf_release(&b);
	want_write(c);
	if (c->resume_after >= 0) {
		int64_t after = c->resume_after;

		c->resume_after = -1;
		client_replay_start(c, after);
	} else if (c->ws->opts.resume_grace_ms > 0) {
		c->holding = true;
		c->hold_until = uv_now(c->ws->loop) + (uint64_t)c->ws->opts.resume_grace_ms;
		client_arm_timer(c);
	}
}

/* ---- tenants: the bus's streams and our sockets of each ---- */

static void tenant_join(struct hub_ws *ws, struct client *c)
{
	struct hub_bus_tenant *bt = hub_bus_tenant_ref(ws->bus, c->claims.tid);
	void **slot = hub_bus_tenant_user(bt);
	struct tenant *t = *slot;

	if (!t) {
		t = hub_xcalloc(1, sizeof(*t));
		link_init(&t->clients);
		t->bt = bt;
		*slot = t;
	}
	link_add_tail(&t->clients, &c->peers);
	t->n++;
	c->tenant = t;
}

static void tenant_leave(struct client *c)
{
	struct tenant *t = c->tenant;
	struct hub_bus_tenant *bt;

	if (!t)
		return;
	bt = t->bt;
	link_del(&c->peers);
	c->tenant = NULL;
	if (--t->n == 0) {
		*hub_bus_tenant_user(bt) = NULL;
		free(t);
	}
	hub_bus_tenant_unref(bt);
}

static struct tenant *tenant_of(struct hub_bus_tenant *bt)
{
	return *hub_bus_tenant_user(bt);
}

static void client_catch_up(struct client *c);

static size_t gcd(size_t a, size_t b)
{
	while (b) {
		size_t r = a % b;

		a = b;
		b = r;
	}
	return a;
}

/* How far a list of n rotates after each event: 0 for n < 2, else in [1, n) and prime
 * to n. */
static size_t rotation(size_t n)
{
	size_t s;

	if (n < 2)
		return 0;
	s = n * 618034 / 1000000;
	if (s == 0)
		s = 1;
	while (gcd(s, n) != 1)
		s++; /* ends at n - 1 at the latest */
	return s;
}

#define for_each_peer(t, c, l, next)                                                     \
	for ((l) = (t)->clients.next; (l) != &(t)->clients &&                              \
	     ((c) = hub_container_of(l, struct client, peers), (next) = (l)->next, 1);      \
	     (l) = (next))

/* bus sink: the tenant's next event. Sockets that resume take it from the log instead. */
static void on_bus_event(void *data, struct hub_bus_tenant *bt, const struct hub_bus_event *ev)
{
	struct tenant *t = tenant_of(bt);
	struct frame *f;
	struct client *c;
	struct link *l, *next, *first = NULL;
	struct hub_ws *ws = data;
	size_t i = 0, turn;

	if (ws->tap)
		ws->tap->on_event(ws->tap_data, bt, ev);
	if (!t)
		return;
	f = event_frame(ev->id, ev->event, ev->data);
	/* The list starts somewhere else after each event: the order of on_flush's writes
	 * is the order in which sockets got output, and the first of the list would always
	 * be the first served. A stride near the golden ratio of n, prime to n, takes every
	 * socket through every position, spread evenly. */
	turn = rotation(t->n);
	/* client_queue may close (never free) a client: the list stays intact. */
	for_each_peer(t, c, l, next) {
		if (i++ == turn)
			first = l;
		if (c->hello_pending || c->replaying || ev->id <= c->cursor)
			continue;
		if (!c->holding && c->queued + f->len > ws->opts.send_queue_max) {
			client_catch_up(c);
			continue;
		}
		c->cursor = ev->id;
		client_queue(c, f, c->holding);
	}
	frame_unref(f);
	if (first && first != t->clients.next) {
		link_del(&t->clients);
		link_add_tail(first, &t->clients); /* the head node just before first */
	}
}

/* bus sink: the tenant's last id is known: hello to those who wait for it. */
static void on_bus_ready(void *data, struct hub_bus_tenant *bt, int status)
{
	struct tenant *t = tenant_of(bt);
	struct client *c;
	struct link *l, *next;
	struct hub_ws *ws = data;

	if (ws->tap)
		ws->tap->on_ready(ws->tap_data, bt, status);
	if (!t)
		return;
	for_each_peer(t, c, l, next) {
		if (!c->hello_pending)
			continue;
		if (status < 0) {
			c->hello_pending = false;
			client_close(c, WS_CLOSE_TRY_AGAIN, "try again later", "store_error");
		} else {
			client_hello(c, hub_bus_tenant_last(bt));
		}
	}
}

/* bus sink: typing, to the tenant's sockets but the one it came from. */
static void on_bus_ephemeral(void *data, struct hub_bus_tenant *bt, uint64_t origin,
			     struct hub_str event, struct hub_str data_json)
{
	struct tenant *t = tenant_of(bt);
	struct frame *f = NULL;
	struct client *c;
	struct link *l, *next;
	struct hub_ws *ws = data;

	if (ws->tap)
		ws->tap->on_ephemeral(ws->tap_data, bt, origin, event, data_json);
	if (!t)
		return;
	for_each_peer(t, c, l, next) {
		if (c->hello_pending || c->id == origin)
			continue;
		if (!f)
			f = event_frame(0, event, data_json);
		/* Not in the log and stale soon: a socket with no room goes without. */
		if (c->queued + f->len > ws->opts.send_queue_max)
			continue;
		client_send(c, f);
	}
	frame_unref(f);
}

/* ---- resume ---- */

static void client_replay_next(struct client *c);

/* c's queue has no room for the next live event: rather than closing a socket that is
 * only slow (a long burst, a phone on a bad network), it takes no more live events and,
 * once its queue drained to half, reads the log from its cursor (the last event queued)
 * in pages, as a resume does, until it has what the bus delivered: then live again. */
static void client_catch_up(struct client *c)
{
	struct hub_ws *ws = c->ws;

	hub_log_info(TAG, "conn=%llu tenant=%s: send queue over %zu bytes: catching up from "
		     "the log after %lld", (unsigned long long)c->id, c->claims.tid,
		     ws->opts.send_queue_max, (long long)c->cursor);
	if (ws->metrics)
		hub_metrics_count(ws->metrics, "ws_catch_ups", "Websockets whose send queue "
				  "filled: they went on from the event log", NULL, 1);
	c->replaying = true;
	c->catchup = true;
	c->replay_wait = true;
	/* Normally the drain (client_flush) starts the read; a queue already at most half
	 * full (one long event did not fit) starts it from the next flush. */
	if (c->queued <= ws->opts.send_queue_max / 2)
		want_flush(c);
}

/* The log is read up to what the bus delivered: the bus carries on from here. */
static void replay_done(struct client *c)
{
	struct hub_buf b = HUB_BUF_INIT;

	c->replaying = false;
	if (c->catchup) {
		/* Caught up after a full queue: live again, as if nothing happened. */
		c->catchup = false;
		hub_log_info(TAG, "conn=%llu tenant=%s: caught up at %lld: live again",
			     (unsigned long long)c->id, c->claims.tid, (long long)c->cursor);
		return;
	}
	hub_buf_addf(&b, "{\"type\":\"resumed\",\"last_event_id\":%lld}", (long long)c->cursor);
	client_send_json(c, hub_buf_str(&b));
	hub_buf_release(&b);
}

/* The log no longer holds what follows the client's cursor (retention pruned it): the
 * client is told to reload its lists from the REST API and goes on live from the last id
 * the bus delivered ({"type":"resync","last_event_id":N}, instead of "resumed"). */
static void client_resync(struct client *c, int64_t pruned)
{
	struct hub_buf b = HUB_BUF_INIT;

	hub_log_info(TAG, "conn=%llu tenant=%s: resume after %lld: the log starts after %lld: "
		     "resync", (unsigned long long)c->id, c->claims.tid, (long long)c->cursor,
		     (long long)pruned);
	c->replaying = false;
	c->catchup = false; /* a resync ends a catch-up as well */
	c->cursor = hub_bus_tenant_last(c->tenant->bt);
	hub_buf_addf(&b, "{\"type\":\"resync\",\"last_event_id\":%lld,\"reason\":\"the event "
		     "log no longer holds the events after your cursor: reload the lists and go "
		     "on from last_event_id\"}", (long long)c->cursor);
	client_send_json(c, hub_buf_str(&b));
	hub_buf_release(&b);
}

static void on_replay_page(int status, const struct hub_bus_event *evs, size_t n,
			   int64_t stream_last, int64_t pruned, void *data)
{
	struct replay_req *req = data;
	struct client *c = req->c;
	bool full = false;
	int64_t live;

	free(req);
	if (!c)
		return; /* the socket closed meanwhile */
	c->replay = NULL;
	if (c->closing)
		return;
	if (status < 0) {
		/* Going live now would skip what the page held: the client resumes again. */
		hub_log_warn(TAG, "conn=%llu tenant=%s: resume: reading the log: %s",
			     (unsigned long long)c->id, c->claims.tid, strerror(-status));
		client_close(c, WS_CLOSE_TRY_AGAIN, "try again later", "store_error");
		return;
	}
	if (c->cursor < pruned) {
		client_resync(c, pruned);
		return;
	}
	/* An id beyond the log (a database restored from a backup): start from its end. */
	if (n == 0 && c->cursor > stream_last)
		c->cursor = stream_last;
	/* Three quarters of the queue at most (the rest is room for answers to commands):
	 * the rest of the page is read again after the cursor once the queue drained to
	 * half (a page of long messages may not fit ws.send_queue_max). One event always
	 * goes, however long, into a queue at most half full. */
	for (size_t i = 0; i < n && !c->closing; i++) {
		struct frame *f;

		if (evs[i].id <= c->cursor)
			continue;
		if (c->queued > c->ws->opts.send_queue_max / 2 &&
		    c->queued + evs[i].data.len > c->ws->opts.send_queue_max / 4 * 3) {
			full = true;
			break;
		}
		f = event_frame(evs[i].id, evs[i].event, evs[i].data);
		c->cursor = evs[i].id;
		client_send(c, f);
		frame_unref(f);
	}
	if (c->closing)
		return;
	live = hub_bus_tenant_last(c->tenant->bt);
	if (full || c->cursor < stream_last || c->cursor < live) {
		/* More in the log (a page may end early: HUB_BUS_PAGE events or its bytes):
		 * next page once the queue has drained to half. */
		if (c->queued > c->ws->opts.send_queue_max / 2)
			c->replay_wait = true;
		else
			client_replay_next(c);
		return;
	}
	replay_done(c);
}

static void client_replay_next(struct client *c)
{
	struct replay_req *req = hub_xmalloc(sizeof(*req));
	int ret;

	c->replay_wait = false;
	req->c = c;
	ret = hub_bus_read(c->ws->bus, c->claims.tid, c->cursor, on_replay_page, req);
	if (ret < 0) {
		free(req);
		hub_log_warn(TAG, "conn=%llu tenant=%s: resume: %s", (unsigned long long)c->id,
			     c->claims.tid, strerror(-ret));
		client_close(c, WS_CLOSE_TRY_AGAIN, "try again later", "store_error");
		return;
	}
	c->replay = req;
}

/* Replays the log after after; the events held since hello are in it too. */
static void client_replay_start(struct client *c, int64_t after)
{
	size_t bytes = 0;

	for (struct qent *q = c->held; q; q = q->next)
		bytes += q->f->len;
	queue_free(c->held);
	c->held = c->held_tail = NULL;
	c->queued -= bytes;
	c->holding = false;
	c->cursor = after;
	/* The bus delivered every event up to its last id in order and delivers the next
	 * ones: a client that has them all (what a page sends right after hello) needs no
	 * read of the log. */
	if (after == hub_bus_tenant_last(c->tenant->bt)) {
		replay_done(c);
		return;
	}
	c->replaying = true;
	client_replay_next(c);
}

/* The hold after hello ends without a resume: the held events go out. */
static void client_hold_end(struct client *c)
{
	if (!c->holding)
		return;
	c->holding = false;
	if (!c->held)
		return;
	if (c->tail)
		c->tail->next = c->held;
	else
		c->head = c->held;
	c->tail = c->held_tail;
	c->held = c->held_tail = NULL;
	want_write(c);
}

/* The next time something is due for c: auth deadline, token expiry, ping. */
static void client_arm_timer(struct client *c)
{
	struct hub_ws *ws = c->ws;
	uint64_t now = uv_now(ws->loop), due = c->next_ping;

	if (c->closing)
		return;
	if (!c->authed && !c->h_ready) {
		if (c->auth_deadline < due)
			due = c->auth_deadline;
	} else if (c->authed) {
		uint64_t w = wall_ms(), exp_due = now;

		/* In seconds first: exp * 1000 overflowed for exp >= 2^64 / 1000, made the
		 * token look expired here but not in client_due(), and re-armed the socket
		 * every millisecond (security issue, finding 9). A deadline further than the
		 * next ping does not matter: the ping re-arms. */
		if (c->claims.exp > 0 && (uint64_t)c->claims.exp > w / 1000) {
			uint64_t left_s = (uint64_t)c->claims.exp - w / 1000;

			if (left_s > WS_EXP_HORIZON_S)
				left_s = WS_EXP_HORIZON_S;
			exp_due = now + left_s * 1000 - w % 1000;
		}
		if (exp_due < due)
			due = exp_due;
		if (c->holding && c->hold_until < due)
			due = c->hold_until;
	}
	client_set_due(c, due > now ? due : now + 1);
}

/* Something of c is due (from on_tick): closes c or arms its next deadline. */
static void client_due(struct client *c)
{
	struct hub_ws *ws = c->ws;
	uint64_t now = uv_now(ws->loop);
	uint64_t interval = (uint64_t)ws->opts.ping_interval_ms;

	if (!c->authed && !c->h_ready && now >= c->auth_deadline) {
		hub_log_debug(TAG, "conn=%llu: auth timeout", (unsigned long long)c->id);
		client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "auth timeout", "auth_timeout");
		return;
	}
	if (c->authed && (int64_t)(wall_ms() / 1000) >= c->claims.exp) {
		hub_log_debug(TAG, "conn=%llu tenant=%s: token expired", (unsigned long long)c->id,
			      c->claims.tid);
		client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "token expired",
			     "token_expired");
		return;
	}
	if (c->holding && now >= c->hold_until)
		client_hold_end(c);
	if (now - c->last_seen >= 2 * interval) {
		hub_log_debug(TAG, "conn=%llu: no pong for two intervals",
			      (unsigned long long)c->id);
		client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "ping timeout", "ping_timeout");
		return;
	}
	if (now >= c->next_ping) {
		c->ping_pending = true;
		c->next_ping = now + interval;
		want_write(c);
	}
	client_arm_timer(c);
}

static struct client *client_new(struct hub_ws *ws, struct lws *wsi)
{
	struct client *c = hub_xcalloc(1, sizeof(*c));
	uint64_t now = uv_now(ws->loop);

	c->ws = ws;
	c->wsi = wsi;
	c->id = ++ws->next_id;
	hub_buf_init(&c->rx);
	link_init(&c->peers);
	link_init(&c->cmds);
	link_init(&c->dirty);
	c->heap_idx = WS_HEAP_NONE;
	link_add_tail(&ws->clients, &c->all);
	c->auth_deadline = now + (uint64_t)ws->opts.auth_timeout_ms;
	c->last_seen = now;
	c->next_ping = now + (uint64_t)ws->opts.ping_interval_ms;
	c->close_kind = "peer";
	c->resume_after = -1;
	c->tokens = ws->opts.command_burst;
	c->tokens_at = now;
	/* Counted toward http.max_connections and http.max_per_address as long as it is
	 * open (the HTTP server stopped counting it at the hand-over). */
	if (hub_conns_key_of_fd(lws_get_socket_fd(wsi), &c->peer) == 0) {
		hub_conns_add(ws->conns, &c->peer);
		c->in_conns = true;
	}
	ws->nclients++;
	client_arm_timer(c);
	if (ws->nclients > (size_t)ws->opts.max_sockets) {
		hub_log_warn(TAG, "conn=%llu: over ws.max_sockets (%d): closing",
			     (unsigned long long)c->id, ws->opts.max_sockets);
		client_close(c, WS_CLOSE_TRY_AGAIN, "too many sockets on this server",
			     "max_sockets");
	}
	return c;
}

static void client_free(struct client *c)
{
	struct hub_ws *ws = c->ws;

	hub_log_debug(TAG, "conn=%llu: closed (%s)", (unsigned long long)c->id, c->close_kind);
	if (!c->counted)
		count_close(ws, c->close_kind);
	if (c->replay)
		c->replay->c = NULL;
	if (c->h && c->hstate) {
		void *st = c->hstate;

		c->hstate = NULL;
		c->h->closed(st);
	}
	while (!link_empty(&c->cmds)) {
		struct cmd_slot *s = hub_container_of(c->cmds.next, struct cmd_slot, link);

		hub_inbox_cancel(s->cmd);
		link_del(&s->link);
		free(s);
	}
	if (c->authed)
		ws->nauthed--;
	tenant_leave(c);
	link_del(&c->all);
	ws->nclients--;
	if (c->in_conns)
		hub_conns_remove(ws->conns, &c->peer);
	client_quiet(c);
	hub_buf_release(&c->rx);
	free(c);
	/* At shutdown the last socket gone ends the drain early. */
	if (ws->closing && ws->nclients == 0 && !ws->destroyed) {
		int r = uv_timer_start(&ws->timer, on_drain_timer, 0, 0);

		hub_assert(r == 0);
	}
}

/* Messages */

/* What the rules refuse of a verified token now: 0; or -EKEYREVOKED (hubctl revoke) or
 * -EKEYREJECTED (over auth.max_token_ttl_s) with err, the close reason and the metrics
 * label. For new sockets and, on every change of the rules, for open ones. */
static int token_refused(const struct hub_ws *ws, const struct hub_jwt_claims *claims,
			 struct hub_err *err, const char **reason, const char **kind)
{
	int ret = hub_revocations_check(ws->revoked, claims, err);

	if (ret < 0) {
		*reason = "token revoked";
		*kind = "token_revoked";
		return ret;
	}
	ret = hub_jwt_check_ttl(claims, ws->opts.max_token_ttl_s, (int64_t)(wall_ms() / 1000),
				err);
	if (ret < 0) {
		*reason = "token lifetime over the server's cap";
		*kind = "token_ttl";
	}
	return ret;
}

/* Closes every authenticated socket whose token the rules refuse now (1008). */
static void recheck_tokens(struct hub_ws *ws)
{
	size_t n = 0;

	for (struct link *l = ws->clients.next; l != &ws->clients; l = l->next) {
		struct client *c = hub_container_of(l, struct client, all);
		struct hub_err err = HUB_ERR_INIT;
		const char *reason, *kind;

		if (!c->authed || c->closing ||
		    token_refused(ws, &c->claims, &err, &reason, &kind) == 0)
			continue;
		hub_log_debug(TAG, "conn=%llu tenant=%s user=%s: %s", (unsigned long long)c->id,
			      c->claims.tid, c->claims.sub, err.msg);
		client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, reason, kind);
		n++;
	}
	if (n)
		hub_log_info(TAG, "%zu authenticated sockets closed: their tokens are refused now",
			     n);
}

/* The first frame: {"type":"auth","token":"<JWT>"}. 0, or -1 after choosing a close. */
static int client_auth(struct client *c, struct hub_pool *pool, const struct hub_json_doc *doc)
{
	struct hub_ws *ws = c->ws;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_str type, token;
	const char *reason = "malformed token";
	int i, ret;

	i = hub_json_get(doc, 0, "type");
	if (i < 0 || hub_json_string(doc, i, pool, &type) < 0 || !hub_str_eqs(type, "auth")) {
		c->close_kind = "auth_required";
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				 (unsigned char *)"auth required", 13);
		return -1;
	}
	i = hub_json_get(doc, 0, "token");
	if (i < 0 || hub_json_string(doc, i, pool, &token) < 0) {
		ret = hub_err_set(&err, -EBADMSG, "malformed token: no token string");
	} else {
		ret = hub_jwt_verify(token, hub_buf_str(&ws->secret), (int64_t)(wall_ms() / 1000),
				     &c->claims, &err);
		if (ret == 0)
			ret = token_refused(ws, &c->claims, &err, &reason, &c->close_kind);
	}
	if (ret < 0) {
		if (ret == -EKEYREVOKED || ret == -EKEYREJECTED)
			; /* token_refused() chose the reason */
		else if (ret == -EKEYEXPIRED)
			reason = "token expired";
		else if (ret == -EPERM && hub_str_startswith(hub_str_from(err.msg),
							     "unsupported token algorithm"))
			reason = "unsupported token algorithm";
		else if (ret == -EPERM)
			reason = "bad token signature";
		else
			reason = "malformed token";
		/* err says why without the token; still only the short reason goes to the wire. */
		hub_log_info(TAG, "conn=%llu: auth refused: %s", (unsigned long long)c->id,
			     err.msg);
		if (ret != -EKEYREVOKED && ret != -EKEYREJECTED)
			c->close_kind = "bad_token";
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)reason,
				 strlen(reason));
		return -1;
	}

	/* "after" in the auth frame: resume as one step with it (no hold, nothing between). */
	i = hub_json_get(doc, 0, "after");
	if (i >= 0 && (!hub_json_is(doc, i, HUB_JSON_PRIMITIVE) ||
		       hub_json_int64(doc, i, &c->resume_after) < 0 || c->resume_after < 0)) {
		c->close_kind = "bad_auth";
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				 (unsigned char *)"after must be an event id", 25);
		return -1;
	}

	c->authed = true;
	c->hello_pending = true;
	ws->nauthed++;
	tenant_join(ws, c);
	hub_log_debug(TAG, "conn=%llu tenant=%s user=%s role=%s: authenticated",
		      (unsigned long long)c->id, c->claims.tid, c->claims.sub,
		      hub_role_name(c->claims.role));
	client_arm_timer(c);
	if (c->tenant->n > (size_t)ws->opts.max_sockets_per_tenant) {
		hub_log_warn(TAG, "conn=%llu tenant=%s: over ws.max_sockets_per_tenant (%d): "
			     "closing", (unsigned long long)c->id, c->claims.tid,
			     ws->opts.max_sockets_per_tenant);
		c->hello_pending = false;
		client_close(c, WS_CLOSE_TRY_AGAIN, "too many sockets for this tenant",
			     "max_sockets_per_tenant");
		return 0;
	}
	/* Known: hello now; else the bus reads it and on_bus_ready says hello. */
	if (hub_bus_tenant_last(c->tenant->bt) >= 0) {
		client_hello(c, hub_bus_tenant_last(c->tenant->bt));
	} else if (!hub_bus_tenant_reading(c->tenant->bt)) {
		hub_log_warn(TAG, "conn=%llu tenant=%s: cannot read the last event id",
			     (unsigned long long)c->id, c->claims.tid);
		c->hello_pending = false;
		client_close(c, WS_CLOSE_TRY_AGAIN, "try again later", "store_error");
	}
	return 0;
}

/* The token bucket: true when c may run one more command now. */
static bool client_take_token(struct client *c)
{
	const struct hub_ws_opts *o = &c->ws->opts;
	uint64_t now = uv_now(c->ws->loop);

	c->tokens += (double)(now - c->tokens_at) * o->commands_per_s / 1000.0;
	c->tokens_at = now;
	if (c->tokens > o->command_burst)
		c->tokens = o->command_burst;
	if (c->tokens < 1.0)
		return false;
	c->tokens -= 1.0;
	return true;
}

static void on_command_reply(void *data, struct hub_str frame, const char *error)
{
	struct cmd_slot *s = data;

	if (error)
		count_error(s->c->ws, error);
	client_send_json(s->c, frame);
	link_del(&s->link);
	free(s);
}

/* The inbox module answers at once (invalid) or later; either way through the slot. */
static void client_command(struct client *c, const struct hub_json_doc *doc,
			   struct hub_pool *pool)
{
	struct hub_inbox_caller who = { &c->claims, c->id, c->ws->opts.text_max };
	struct cmd_slot *s = hub_xcalloc(1, sizeof(*s));
	struct hub_inbox_cmd *cmd;

	s->c = c;
	link_add_tail(&c->cmds, &s->link);
	cmd = hub_inbox_run(c->ws->store, c->ws->bus, &who, doc, pool, on_command_reply,
			    s);
	if (cmd)
		s->cmd = cmd; /* else on_command_reply ran and freed s */
}

/* {"type":"resume","after":N}: answered by the events after N, then "resumed". */
static void client_resume(struct client *c, const struct hub_json_doc *doc,
			  struct hub_pool *pool)
{
	int i = hub_json_get(doc, 0, "after");
	int64_t after;

	if (i < 0 || !hub_json_is(doc, i, HUB_JSON_PRIMITIVE) ||
	    hub_json_int64(doc, i, &after) < 0 || after < 0) {
		client_send_error(c, doc, pool, "bad_request",
				  "after must be an event id (an integer >= 0)");
		return;
	}
	if (c->replaying || c->resume_after >= 0) {
		client_send_error(c, doc, pool, "conflict", "a resume is already running");
		return;
	}
	if (c->hello_pending) {
		c->resume_after = after; /* starts with hello */
		return;
	}
	client_replay_start(c, after);
}

/* One whole message in c->rx. 0, or -1 to close (the reason is set). */
static int client_message(struct client *c, bool binary)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	struct hub_str type = HUB_STR_NULL;
	bool allowed = true, parsed, object;
	int ret = 0;

	if (c->h) { /* the handler's subprotocol: its messages are its own */
		if (c->hstate)
			c->h->message(c->hstate, hub_buf_str(&c->rx), binary);
		return 0;
	}

	/* An authenticated socket pays for every frame before it is parsed, valid or not:
	 * garbage answered for free let a client have errors written back as fast as it
	 * sent (security issue, finding 7). */
	if (c->authed) {
		allowed = client_take_token(c);
		if (!allowed && ++c->limited > WS_ABUSE_MAX) {
			hub_log_info(TAG, "conn=%llu tenant=%s: commands over the rate limit: "
				     "closing", (unsigned long long)c->id, c->claims.tid);
			client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "rate limit exceeded",
				     "rate_limited");
			goto out;
		}
	}
	parsed = !binary &&
		 hub_json_parse(&pool, hub_buf_str(&c->rx), WS_JSON_TOKENS, &doc, NULL) == 0;
	if (!c->authed) {
		if (!parsed) {
			c->close_kind = "auth_required";
			lws_close_reason(c->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
					 (unsigned char *)"auth required", 13);
			ret = -1;
			goto out;
		}
		ret = client_auth(c, &pool, &doc);
		goto out;
	}
	object = parsed && hub_json_is(&doc, 0, HUB_JSON_OBJECT);
	if (object && hub_json_string(&doc, hub_json_get(&doc, 0, "type"), &pool, &type) < 0)
		type = HUB_STR_NULL; /* inbox answers what is wrong */
	if (!hub_str_eqs(type, "resume"))
		client_hold_end(c); /* the client has spoken: it does not resume */
	if (!allowed) {
		/* the ref is echoed when there is one, so the client can match the refusal */
		client_send_error(c, object ? &doc : NULL, &pool, "rate_limited",
				  "too many commands; slow down");
		goto out;
	}
	c->limited = 0;
	if (!parsed) {
		client_send_error(c, NULL, &pool, "bad_request",
				  binary ? "binary frames are not supported"
					 : "the frame is not valid JSON");
		goto out;
	}
	if (!object) {
		client_send_error(c, NULL, &pool, "bad_request", "a command is a JSON object");
		goto out;
	}
	if (hub_str_eqs(type, "auth"))
		client_send_error(c, &doc, &pool, "bad_request",
				  "this socket is already authenticated");
	else if (hub_str_eqs(type, "resume"))
		client_resume(c, &doc, &pool);
	else
		client_command(c, &doc, &pool);
out:
	hub_pool_release(&pool);
	return ret;
}

static int client_receive(struct client *c, const void *in, size_t len)
{
	struct hub_ws *ws = c->ws;
	int ret;

	c->last_seen = uv_now(ws->loop);
	if (c->closing)
		return 0;
	if (lws_is_first_fragment(c->wsi))
		hub_buf_reset(&c->rx);
	if (c->rx.len + len > ws->opts.max_frame) {
		hub_log_info(TAG, "conn=%llu: message over %zu bytes", (unsigned long long)c->id,
			     ws->opts.max_frame);
		c->close_kind = "too_big";
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 (unsigned char *)"message too big", 15);
		return -1;
	}
	hub_buf_add(&c->rx, in, len);
	if (!lws_is_final_fragment(c->wsi))
		return 0;
	ret = client_message(c, lws_frame_is_binary(c->wsi));
	/* Released, not kept: an idle socket holds no buffer (its auth frame was the
	 * largest thing it sent). */
	hub_buf_release(&c->rx);
	return ret;
}

/* RFC 6455 5.2: the header of an unmasked, final server frame of len bytes (no extension
 * is negotiated); its length. */
static size_t frame_header(unsigned char *h, unsigned opcode, size_t len)
{
	h[0] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		h[1] = (unsigned char)len;
		return 2;
	}
	if (len < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		return 4;
	}
	h[1] = 127;
	for (int i = 0; i < 8; i++)
		h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	return WS_HEADER_MAX;
}

/* Drops the queue's first frame (all of it was written or handed to lws). */
static void client_pop(struct client *c)
{
	struct qent *q = c->head;

	c->head = q->next;
	if (!c->head)
		c->tail = NULL;
	c->queued -= q->f->len;
	frame_unref(q->f);
	free(q);
}

/* Writes a pending ping and the queued frames as one sendmsg() of at most WS_WRITE_IOV
 * frames and WS_WRITE_BUDGET bytes, straight from the shared frames (header and JSON are
 * one piece of each: nothing is copied per socket). Legal outside WRITEABLE on lws 4.1 as
 * long as lws holds no unsent bytes of c (lws_partial_buffered), and a plain socket needs
 * no lws state to send on. What the kernel does not take: the frames not begun stay in our
 * queue; the rest of a frame begun goes to one raw lws_write(), which copies it and sends
 * it first on the next POLLOUT before any WRITEABLE (writing again before that would be
 * out of order, hence the lws_partial_buffered check). So frames stay whole and in order.
 * Asks for WRITEABLE while anything is left (lws 4.1.6 otherwise stalls a burst until the
 * next I/O). 0, or -1 when the socket failed. */
static int client_flush(struct client *c)
{
	/* A ping with a payload: lws 4.1.6 never reports a pong with an empty one. */
	static const unsigned char ping[] = { 0x80 | WS_OP_PING, 4, 'p', 'i', 'n', 'g' };
	struct iovec iov[WS_WRITE_IOV + 1];
	struct msghdr mh;
	size_t n = 0, bytes = 0, sent, skip = 0;
	bool with_ping = false;
	ssize_t r;

	if (c->closing || lws_partial_buffered(c->wsi))
		return 0;
	if (c->ping_pending) {
		with_ping = true;
		iov[n].iov_base = (void *)ping;
		iov[n].iov_len = sizeof(ping);
		bytes += sizeof(ping);
		n++;
	}
	if (!c->hello_pending) {
		for (struct qent *q = c->head; q && n < WS_WRITE_IOV + (size_t)with_ping;
		     q = q->next) {
			size_t len = q->f->hlen + q->f->len;

			if (bytes && bytes + len > WS_WRITE_BUDGET)
				break;
			iov[n].iov_base = q->f->data + LWS_PRE - q->f->hlen;
			iov[n].iov_len = len;
			bytes += len;
			n++;
		}
	}
	if (!n)
		goto out;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = n;
	do
		r = sendmsg(lws_get_socket_fd(c->wsi), &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	c->ws->writes++;
	if (r < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		r = 0;
	}
	sent = (size_t)r;
	if (with_ping) {
		if (sent < sizeof(ping)) {
			/* Not even the ping went whole: it is small, lws takes its rest. */
			if (sent == 0)
				goto out;
			c->ping_pending = false;
			if (lws_write(c->wsi, (unsigned char *)ping + sent, sizeof(ping) - sent,
				      LWS_WRITE_RAW) < (int)(sizeof(ping) - sent))
				return -1;
			goto out;
		}
		c->ping_pending = false;
		sent -= sizeof(ping);
		skip = 1;
	}
	for (size_t i = skip; i < n && sent; i++) {
		size_t len = iov[i].iov_len;

		if (sent < len) {
			size_t rest = len - sent;

			/* The frame's rest (lws copies it), then nothing more until it is out. */
			if (lws_write(c->wsi, (unsigned char *)iov[i].iov_base + sent, rest,
				      LWS_WRITE_RAW) < (int)rest)
				return -1;
			client_pop(c);
			break;
		}
		sent -= len;
		client_pop(c);
		c->ws->written++;
	}
out:
	if (c->replay_wait && c->queued <= c->ws->opts.send_queue_max / 2)
		client_replay_next(c);
	if ((c->ping_pending || (c->head && !c->hello_pending)) && !c->closing)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* The clients that got output since the last flush write it, in the order they got it,
 * WS_FLUSH_SLICE of them a turn of the loop: the handle stays active while some wait, so
 * the loop polls (without blocking) between slices and what arrived meanwhile (a webhook,
 * a query's result) is not held up by the rest of a fan-out. A client that gets more
 * output before its turn sends it all in its one write. */
static void on_flush(uv_idle_t *h)
{
	struct hub_ws *ws = h->data;
	size_t n = 0;

	while (!link_empty(&ws->dirty) && n++ < WS_FLUSH_SLICE) {
		struct client *c = hub_container_of(ws->dirty.next, struct client, dirty);

		link_del(&c->dirty);
		if (client_flush(c) < 0) {
			hub_log_debug(TAG, "conn=%llu: write failed", (unsigned long long)c->id);
			client_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "write failed",
				     "write_error");
		}
	}
	if (link_empty(&ws->dirty))
		uv_idle_stop(h);
	if (ws->metrics && ws->writes) {
		/* frames a write: what one send carried (bench/fanout divides them) */
		hub_metrics_count(ws->metrics, "ws_writes", "Writes (sendmsg calls) to "
				  "websockets", NULL, (double)ws->writes);
		hub_metrics_count(ws->metrics, "ws_frames_written", "Whole frames those "
				  "writes sent", NULL, (double)ws->written);
		ws->writes = ws->written = 0;
	}
}

/* A socket of the handler's subprotocol: the handler takes it, or it is closed. */
static void client_open_handler(struct hub_ws *ws, struct client *c)
{
	char path[512] = "", origin[256] = "";

	c->h = ws->handler;
	if (!c->h) {
		client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "refused", "refused");
		return;
	}
	if (lws_hdr_copy(c->wsi, path, sizeof(path), WSI_TOKEN_GET_URI) < 0)
		path[0] = '\0';
	if (lws_hdr_copy(c->wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) < 0)
		origin[0] = '\0';
	c->hstate = c->h->open(c->h->data, (struct hub_ws_peer *)c, path, origin);
	if (!c->hstate)
		client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "refused", "refused");
}

static int on_lws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		  size_t len)
{
	struct lws_context *ctx = lws_get_context(wsi);
	struct hub_ws *ws = ctx ? lws_context_user(ctx) : NULL;
	struct pss *pss = user;
	struct client *c = pss ? pss->c : NULL;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		if (!ws || ws->closing || !pss)
			return -1;
		pss->c = client_new(ws, wsi);
		hub_log_debug(TAG, "conn=%llu: websocket established", (unsigned long long)
			      pss->c->id);
		/* lws keeps a copy of the table: the protocol by its name */
		if (lws_get_protocol(wsi) &&
		    strcmp(lws_get_protocol(wsi)->name, WS_HANDLER_PROTOCOL) == 0)
			client_open_handler(ws, pss->c);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (!c)
			return -1;
		if (client_receive(c, in, len) < 0) {
			/* Counted now, as client_close() does: the close handshake may take
			 * a while, and the peer has the close frame before it ends. */
			if (!c->counted) {
				c->counted = true;
				count_close(ws, c->close_kind);
			}
			client_quiet(c); /* lws closes it with the reason set */
			return -1;
		}
		return 0;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (c)
			c->last_seen = uv_now(ws->loop);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return c && client_flush(c) < 0 ? -1 : 0;
	case LWS_CALLBACK_TIMER:
		/* Only client_close() sets c's lws timer: see there. */
		if (!c || !c->close_code)
			return 0;
		lws_close_reason(wsi, (enum lws_close_status)c->close_code,
				 (unsigned char *)c->close_reason, strlen(c->close_reason));
		return -1;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (c && !c->closing) {
			c->close_kind = "peer";
			client_quiet(c); /* lws answers the close: nothing may follow it */
		}
		return 0;
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		if (c) {
			pss->c = NULL;
			client_free(c);
		}
		return 0;
	case LWS_CALLBACK_HTTP:
		/* The HTTP server hands us upgrades only; anything else is closed. */
		return -1;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* Public API */

static void set_opts(struct hub_ws *ws, const struct hub_ws_opts *opts)
{
	hub_buf_reset(&ws->secret);
	hub_buf_addstr(&ws->secret, opts->jwt_secret);
	ws->opts = *opts;
	ws->opts.jwt_secret = hub_buf_str(&ws->secret);
	/* Timeouts, rates and caps come from the config, whose table keeps each of them >= 1. */
}

int hub_ws_new(uv_loop_t *loop, const struct hub_ws_opts *opts, struct hub_store *store,
	       struct hub_bus *bus, struct hub_conns *conns, struct hub_metrics *metrics,
	       struct hub_ws **out, struct hub_err *err)
{
	static const struct hub_bus_sink sink = {
		.on_event = on_bus_event,
		.on_ready = on_bus_ready,
		.on_ephemeral = on_bus_ephemeral,
	};
	/* No lws validity (idle) timer per connection: hubd pings on its own, and lws 4.1
	 * would move that timer in its sorted list on every frame read. */
	static const lws_retry_bo_t no_idle_check = { .secs_since_valid_hangup = 0 };
	struct lws_context_creation_info info;
	void *foreign_loops[1] = { loop };
	struct hub_ws *ws;
	int ret;

	if (opts->jwt_secret.len == 0)
		return hub_err_set(err, -EINVAL, "ws: empty jwt secret");
	if (opts->max_frame == 0 || opts->send_queue_max == 0)
		return hub_err_set(err, -EINVAL, "ws: max_frame and send_queue_max must be > 0");

	ws = hub_xcalloc(1, sizeof(*ws));
	ws->loop = loop;
	ws->store = store;
	ws->bus = bus;
	ws->conns = conns;
	ws->metrics = metrics;
	hub_buf_init(&ws->secret);
	set_opts(ws, opts);
	link_init(&ws->clients);
	link_init(&ws->dirty);
	ws->tick_due = UINT64_MAX;
	ws->scratch = hub_xmalloc(LWS_PRE + WS_WRITE_BUDGET);

	lws_set_log_level(LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_USER, on_lws_log);

	ws->protocols[0] = (struct lws_protocols){
		.name = WS_PROTOCOL,
		.callback = on_lws,
		.per_session_data_size = sizeof(struct pss),
		.rx_buffer_size = WS_RX_CHUNK,
		.tx_packet_size = WS_TX_PACKET,
	};
	/* the handler's (hub_ws_set_handler); lws picks it when the client offers it */
	ws->protocols[1] = ws->protocols[0];
	ws->protocols[1].name = WS_HANDLER_PROTOCOL;

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.foreign_loops = foreign_loops;
	info.pcontext = &ws->ctx;
	info.user = ws;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.gid = -1;
	info.uid = -1;
	ws->ctx = lws_create_context(&info);
	if (!ws->ctx) {
		ret = hub_err_set(err, -EIO, "ws: cannot create the libwebsockets context "
				  "(is libwebsockets-evlib-uv installed?)");
		goto fail;
	}

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = ws->protocols;
	info.vhost_name = "hub-ws";
	info.retry_and_idle_policy = &no_idle_check;
	info.options = LWS_SERVER_OPTION_LIBUV;
	ws->vh = lws_create_vhost(ws->ctx, &info);
	/* A context on a foreign loop may come back already being torn down: the vhost is the
	 * real test (lws issues #2129, #2171). */
	if (!ws->vh) {
		ret = hub_err_set(err, -EIO, "ws: cannot create the libwebsockets vhost");
		goto fail;
	}

	if (uv_timer_init(loop, &ws->timer) < 0 || uv_timer_init(loop, &ws->tick) < 0 ||
	    uv_idle_init(loop, &ws->flush) < 0) {
		ret = hub_err_set(err, -EIO, "ws: cannot initialize the loop handles");
		goto fail;
	}
	ws->timer.data = ws->tick.data = ws->flush.data = ws;
	ws->handles = 3;

	if (metrics) {
		hub_metrics_gauge(metrics, "hub_ws_clients", "Open agent websockets",
				  on_gauge_clients, ws);
		hub_metrics_gauge(metrics, "hub_ws_authenticated",
				  "Authenticated agent websockets", on_gauge_authed, ws);
		hub_metrics_gauge(metrics, "hub_ws_queued_bytes",
				  "Bytes queued for all websockets (each within ws.send_queue_max)",
				  on_gauge_queued, ws);
	}
	hub_bus_set_sink(bus, &sink, ws);
	*out = ws;
	return 0;
fail:
	/* Start-up failure: tear lws down as far as possible without running the caller's
	 * loop; the caller exits anyway. */
	if (ws->ctx)
		lws_context_destroy(ws->ctx);
	if (ws->ctx)
		lws_context_destroy(ws->ctx);
	hub_buf_release(&ws->secret);
	if (!ws->ctx) {
		free(ws->scratch);
		free(ws);
	}
	return ret;
}

void hub_ws_set_opts(struct hub_ws *ws, const struct hub_ws_opts *opts)
{
	struct hub_buf keep = HUB_BUF_INIT;
	struct hub_ws_opts o = *opts;
	bool new_key;

	if (o.jwt_secret.len == 0) {
		hub_log_warn(TAG, "empty jwt secret in reload: keeping the previous one");
		hub_buf_addstr(&keep, hub_buf_str(&ws->secret));
		o.jwt_secret = hub_buf_str(&keep);
	}
	new_key = !hub_str_eq(o.jwt_secret, hub_buf_str(&ws->secret));
	set_opts(ws, &o);
	hub_buf_release(&keep);
	/* Every token was signed with the one key: a new key revokes them all, also those of
	 * sockets that authenticated before (security issue, finding 3). */
	if (!new_key) {
		recheck_tokens(ws); /* a lower auth.max_token_ttl_s */
		return;
	}
	size_t n = 0;

	for (struct link *l = ws->clients.next; l != &ws->clients; l = l->next) {
		struct client *c = hub_container_of(l, struct client, all);

		if (c->authed && !c->closing) {
			client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				     "token revoked: the signing key changed", "key_changed");
			n++;
		}
	}
	if (n)
		hub_log_info(TAG, "the token key changed: %zu authenticated sockets closed", n);
}

void hub_ws_set_revocations(struct hub_ws *ws, struct hub_revocations *rv)
{
	if (rv)
		hub_revocations_ref(rv);
	hub_revocations_unref(ws->revoked);
	ws->revoked = rv;
	recheck_tokens(ws);
}

/* The elements of a comma-separated header value, trimmed: true when one is tok. */
static bool list_has(const char *p, const char *end, const char *tok)
{
	size_t tl = strlen(tok);

	while (p < end) {
		const char *e = memchr(p, ',', (size_t)(end - p)), *t;

		if (!e)
			e = end;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == tl && memcmp(p, tok, tl) == 0)
			return true;
		p = e + 1;
	}
	return false;
}

/* RFC 6455 4.2.1: true unless the client offers subprotocols and bayge.v1 is not among
 * them (none offered: lws answers with its first protocol, ours, and names none). The
 * head was parsed and checked by the HTTP server (lines end in CRLF, no obs-fold, no
 * space before a colon), so its lines can be read as they are. */
static bool offers_protocol(const char *buf, size_t len, const char *proto, bool none_ok)
{
	const char *p = buf, *end = buf + len;
	bool offered = false;

	/* the request line, then header lines up to the empty one */
	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2), *colon;
		static const char name[] = "sec-websocket-protocol";

		if (!eol || eol == p)
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (p != buf && colon && (size_t)(colon - p) == sizeof(name) - 1 &&
		    strncasecmp(p, name, sizeof(name) - 1) == 0) {
			offered = true;
			if (list_has(colon + 1, eol, proto))
				return true;
		}
		p = eol + 2;
	}
	return !offered && none_ok;
}

/* Refuses a handshake with an HTTP answer shaped as the HTTP server's errors, then
 * closes fd. The answer is small and nothing else was ever queued on the socket (the HTTP
 * server hands over only when all it wrote is written), so one non-blocking send takes
 * it. What the client sent after its request is read away first, so that the close is a
 * FIN after the answer and not a reset that could discard it. */
static void refuse_handshake(int fd, const char *code, const char *msg)
{
	struct hub_buf body = HUB_BUF_INIT, out = HUB_BUF_INIT;
	struct hub_jw w;
	char sink[4096];

	hub_jw_init(&w, &body);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "error");
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "code");
	hub_jw_cstr(&w, code);
	hub_jw_key(&w, "message");
	hub_jw_cstr(&w, msg);
	hub_jw_obj_close(&w);
	hub_jw_obj_close(&w);
	hub_buf_addf(&out, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n", body.len);
	hub_buf_addstr(&out, hub_buf_str(&body));
	for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	if (send(fd, out.p, out.len, MSG_DONTWAIT | MSG_NOSIGNAL) < (ssize_t)out.len)
		hub_log_debug(TAG, "fd=%d: the handshake refusal was not sent whole", fd);
	shutdown(fd, SHUT_WR);
	close(fd);
	hub_buf_release(&body);
	hub_buf_release(&out);
}

/* Adopts fd for the subprotocol mine (WS_PROTOCOL or WS_HANDLER_PROTOCOL), which the client
 * must offer (none_ok: or name none) without offering the other (lws would pick whichever
 * comes first). */
static int adopt(struct hub_ws *ws, int fd, const char *buf, size_t len, const char *mine,
		 bool none_ok, const char *other)
{
	struct lws *wsi;

	if (ws->closing || !ws->vh) {
		close(fd);
		return -ECANCELED;
	}
	if (len > WS_ADOPT_MAX) {
		close(fd);
		return -EMSGSIZE;
	}
	/* lws would drop it without an answer and a warning: a client's mistake is answered
	 * and logged at debug (security issue, finding 6) */
	if (!offers_protocol(buf, len, mine, none_ok) ||
	    offers_protocol(buf, len, other, false)) {
		char msg[128];

		snprintf(msg, sizeof(msg), "no supported websocket subprotocol: this endpoint "
			 "speaks %s", mine);
		hub_log_debug(TAG, "fd=%d: handshake refused: no supported subprotocol", fd);
		refuse_handshake(fd, "bad_subprotocol", msg);
		return 0;
	}
	/* lws closes fd itself when adoption fails. */
	wsi = lws_adopt_socket_vhost_readbuf(ws->vh, fd, buf, len);
	if (!wsi) {
		hub_log_debug(TAG, "fd=%d: adoption failed or closed at once", fd);
		return -EIO;
	}
	return 0;
}

int hub_ws_adopt(struct hub_ws *ws, int fd, const char *buf, size_t len)
{
	return adopt(ws, fd, buf, len, WS_PROTOCOL, true, WS_HANDLER_PROTOCOL);
}

int hub_ws_adopt_handler(struct hub_ws *ws, int fd, const char *buf, size_t len)
{
	return adopt(ws, fd, buf, len, WS_HANDLER_PROTOCOL, false, WS_PROTOCOL);
}

void hub_ws_set_handler(struct hub_ws *ws, const struct hub_ws_handler *h)
{
	hub_assert(!h || strcmp(h->protocol, WS_HANDLER_PROTOCOL) == 0);
	ws->handler = h;
}

void hub_ws_set_tap(struct hub_ws *ws, const struct hub_bus_sink *tap, void *data)
{
	ws->tap = tap;
	ws->tap_data = data;
}

void hub_ws_peer_send(struct hub_ws_peer *p, struct hub_str json)
{
	client_send_json((struct client *)p, json);
}

void hub_ws_peer_close(struct hub_ws_peer *p, int code, const char *reason)
{
	client_close((struct client *)p, code, reason, "handler");
}

void hub_ws_peer_ready(struct hub_ws_peer *p)
{
	struct client *c = (struct client *)p;

	c->h_ready = true;
	client_arm_timer(c);
}

uint64_t hub_ws_peer_id(const struct hub_ws_peer *p)
{
	return ((const struct client *)p)->id;
}

int hub_ws_peer_addr(const struct hub_ws_peer *p, struct hub_conns_key *out)
{
	const struct client *c = (const struct client *)p;

	if (!c->in_conns)
		return -ENOENT;
	*out = c->peer;
	return 0;
}

size_t hub_ws_clients(const struct hub_ws *ws)
{
	return ws->nclients;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct hub_ws *ws = h->data;

	if (--ws->handles == 0 && ws->close_cb)
		ws->close_cb(ws->close_data);
}

/* Phase one of the teardown, from a loop callback (never a signal handler, never inside an
 * lws callback): lws closes what is left and its handles; uv_run() can then return. */
static void on_drain_timer(uv_timer_t *t)
{
	struct hub_ws *ws = t->data;

	if (ws->destroyed)
		return;
	ws->destroyed = true;
	if (ws->nclients)
		hub_log_info(TAG, "%zu sockets did not finish closing: dropping them",
			     ws->nclients);
	if (ws->ctx)
		lws_context_destroy(ws->ctx);
	uv_close((uv_handle_t *)&ws->timer, on_handle_closed);
	uv_close((uv_handle_t *)&ws->tick, on_handle_closed);
	uv_close((uv_handle_t *)&ws->flush, on_handle_closed);
}

void hub_ws_close(struct hub_ws *ws, void (*cb)(void *data), void *data)
{
	struct link *l;
	int r;

	if (ws->closing)
		return;
	ws->closing = true;
	ws->close_cb = cb;
	ws->close_data = data;
	hub_log_info(TAG, "closing %zu sockets", ws->nclients);
	for (l = ws->clients.next; l != &ws->clients; l = l->next)
		client_close(hub_container_of(l, struct client, all), LWS_CLOSE_STATUS_GOINGAWAY,
			     "going away", "shutdown");
	r = uv_timer_start(&ws->timer, on_drain_timer, ws->nclients ? WS_DRAIN_MS : 0, 0);
	hub_assert(r == 0);
}

void hub_ws_finish(struct hub_ws *ws)
{
	if (!ws)
		return;
	hub_assert(ws->handles == 0);
	/* Phase two (lws issues #1969, #2595): the loop has stopped, lws can free itself. */
	for (int i = 0; ws->ctx && i < 4; i++) {
		lws_context_destroy(ws->ctx);
		uv_run(ws->loop, UV_RUN_NOWAIT);
	}
	if (ws->ctx)
		hub_log_err(TAG, "libwebsockets context not fully destroyed");
	hub_assert(link_empty(&ws->clients));
	hub_revocations_unref(ws->revoked);
	hub_buf_release(&ws->secret);
	free(ws->heap);
	free(ws->scratch);
	free(ws);
}
