/* daemon/data/bus.c - see bus.h. Per tenant: the last id delivered and the highest id heard of.
 * An event with id last + 1 is delivered at once; a lower one is a duplicate; a higher one
 * means a gap (two transactions' results arrived out of order, an instance's Redis message
 * was lost, something wrote the log without publishing): the log is then read from the
 * database after last, which is complete up to any id seen because a tenant's ids commit
 * in order (transactions queue their events; a flush numbers the committed ones under the
 * tenant_stream row lock: db/migrations/0020_event_queue.sql). Centrifugo does the
 * same with its PostgreSQL broker (INTEGRATION.md, "Event ids that resume can trust").
 * Redis carries no event data (texts, phones and names stay in PostgreSQL) and nothing
 * unsigned is believed: whoever can PUBLISH or SUBSCRIBE there may be someone else. A
 * payload is "v1." HEX(HMAC-SHA256(redis.hmac_key, "hub:bus:v1" NUL channel NUL json)) "."
 * json (the MAC binds the channel, hence the tenant), json being one of
 *   {"instance":I,"tenant":T,"ts":MS,"id":N}              the log of T reaches N (published
 *                                                         for every event of instance I)
 *   {"instance":I,"tenant":T,"ts":MS,"id":N,"sync":true}  the same, about a second after a
 *       tenant's publishes, so that a lost PUBLISH costs a second, not the wait for the
 *       tenant's next event
 *   {"instance":I,"tenant":T,"ts":MS,"event":"typing","data":{"conversation_id":C,"user":U}}
 * A notice only makes the others read the log after their last id, once per tenant and turn
 * of the loop however many notices came (a burst is one query), so no payload, even an
 * authentic one, stands in for an event or makes the bus skip one. ts (wall clock, ms)
 * bounds the replay of a typing payload. Payloads are never logged. */
#include "daemon/data/bus.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/core/metrics.h"
#include "daemon/data/redis.h"
#include "daemon/data/store.h"
#include "lib/crypto.h"
#include "lib/json.h"
#include "lib/jwt.h"
#include "lib/log.h"
#include "lib/pool.h"

#define TAG "bus"
#define BUS_BUCKETS 1024
#define BUS_CHANNEL "hub:ev:"     /* + tenant id */
#define BUS_PATTERN "hub:ev:*"
#define BUS_TYPING "typing"       /* the one ephemeral event */
#define BUS_JSON_TOKENS 64        /* tokens of one Redis payload (typing has 15) */
#define BUS_PAYLOAD_MAX 4096      /* bytes of one Redis payload: ids, a user id, a MAC */
#define BUS_MAC_DOMAIN "hub:bus:v1" /* what the MAC is of: this NUL channel NUL json */
#define BUS_ENVELOPE "v1."        /* + 64 hex digits of the MAC + "." + json */
#define BUS_TYPING_AGE_MS 30000   /* a typing payload older (or newer) is a replay */
#define BUS_WARN_EVERY_MS 60000   /* forged or foreign payloads: one warning a minute */
#define BUS_MARKS_MAX 4096        /* tenants remembered for the next sync markers */
#define BUS_SYNC_MS 1000          /* sync markers go out this often (while there are any) */
#define BUS_READ_RETRY_MS 1000
#define BUS_PACE_MS 20            /* between pages of a catch-up cut by bytes */
#define BUS_FALLBACK_MS 500       /* while Redis does not deliver, the log is read this often */
#define BUS_FLUSH_LIMIT 1000      /* a flush takes whole appends while it has fewer events */
#define BUS_FLUSH_RETRY_MS 200    /* after a failed flush (the stale sweep also finds them) */
/* Flushes start at least this far apart, so that the commits of a busy spell share one
 * (one stream lock, one COMMIT for all): at 200 replies a second a flush right after each
 * commit made 1.5 flushes a reply. A commit after a quiet spell is flushed at once: a
 * flat 3 ms wait after every commit was 3 ms more for every event at 100 webhooks a
 * second, where commits come 10 ms apart. The outbox is woken at once all the same
 * (outbox_wake). */
#define BUS_FLUSH_GATHER_MS 3
#define BUS_WAKE_TOKENS 256       /* tokens of an event's data read for its status */
#define BUS_STALE_MS 1000         /* queued events older than this are any instance's to flush */

/* The page after $2, the stream's last id and how far retention pruned the log (the last
 * column); one row with NULL id when there is no event after $2, no row when the tenant has
 * no stream. The page holds at most $3 events and,
 * beyond its first, only those whose frames (name, data and the frame's own 64 bytes)
 * together fit $4 bytes; the LIMIT comes first so the sums read no more than $3 rows. */
static const char read_sql[] =
	"SELECT s.last_event_id, e.id, e.type, e.data, s.pruned_upto FROM tenant_stream s "
	"LEFT JOIN LATERAL (SELECT y.id, y.type, y.data FROM ("
	"SELECT z.id, z.type, z.data, row_number() OVER w AS n, "
	"sum(octet_length(z.type) + octet_length(z.data) + 64) OVER w AS upto FROM ("
	"SELECT x.id, x.type, x.data::text AS data FROM events x "
	"WHERE x.tenant_id = s.tenant_id AND x.id > $2::bigint ORDER BY x.id LIMIT $3::int) z "
	"WINDOW w AS (ORDER BY z.id)) y WHERE y.n = 1 OR y.upto <= $4::bigint) e "
	"ON true WHERE s.tenant_id = $1 ORDER BY e.id";

struct fetch {
	struct hub_bus_tenant *t; /* NULL once t is gone */
};

/* Numbers a tenant's queued events (db/migrations/0020_event_queue.sql): those of this
 * instance's commits right after them, those an instance left behind when found stale. */
static const char flush_sql[] =
	"SELECT tenant, event_id, event, data FROM hub_stream_flush($1, $2::integer)";
static const char stale_sql[] = "SELECT t FROM hub_stream_stale($1::integer) t";

/* A tenant whose queued events are to be numbered: at most one flush of it in flight here;
 * what is queued meanwhile is flushed by the next one. */
struct flush {
	struct flush *next;     /* hash chain */
	struct flush *due_next; /* in bus->due */
	struct hub_bus *bus;
	bool running;           /* its flush query is in flight */
	bool again;             /* queued while it ran: flush once more */
	bool due;               /* in bus->due */
	char tid[HUB_JWT_ID_MAX];
};

struct hub_bus_tenant {
	struct hub_bus_tenant *next; /* hash chain */
	struct hub_bus *bus;
	unsigned refs;
	void *user;
	int64_t last;         /* delivered through this id; -1 until read */
	int64_t seen;         /* the highest id heard of */
	struct fetch *fetch;  /* the read in flight */
	bool again;           /* a gap was seen while it ran: read once more */
	bool later;           /* the later timer reads again (a failed read, a paced page) */
	bool soon;            /* in bus->soon: another instance's notice, read next turn */
	struct hub_bus_tenant *soon_next;
	char tid[HUB_JWT_ID_MAX];
};

/* A tenant this instance published events of (or failed to) since the last sync marker:
 * a PUBLISH that returned 0 can still be lost (the link to Redis breaks before it is
 * written or answered while the others' subscriptions stay up), so a marker a little
 * later tells the others how far the log reaches and they read what they missed. */
struct mark {
	struct mark *next; /* hash chain */
	int64_t id;
	char tid[HUB_JWT_ID_MAX];
};

struct hub_bus {
	uv_loop_t *loop;
	struct hub_store *store;
	struct hub_redis *redis;
	struct hub_metrics *metrics;
	struct hub_bus_sink sink;
	void *sink_data;
	char instance[17];
	struct hub_bus_tenant *buckets[BUS_BUCKETS];
	size_t ntenants;
	struct mark *marks[BUS_BUCKETS];
	size_t nmarks;
	size_t page_bytes;  /* of one page read from the log */
	struct hub_buf key_sign, key_accept; /* hub_bus_keys, copied */
	struct hub_bus_tenant *soon; /* tenants with notices of other instances to read */
	uint64_t rejected;           /* payloads failing the MAC since the last warning */
	uint64_t rejected_warned_at; /* uv_now of that warning; 0: none yet */
	uv_timer_t sync_timer;
	uv_timer_t later_timer; /* reads of the log put off: failed ones, paced pages */
	uv_timer_t soon_timer;  /* the reads the notices of one turn of the loop ask for */
	uv_timer_t fallback_timer; /* checks Redis; reads every tenant's log while it is away */
	struct flush *flushes[BUS_BUCKETS]; /* tenants with queued events to number */
	struct flush *due;         /* flushes to start at the next turn of the loop */
	uv_timer_t flush_timer;    /* starts them: one flush per tenant and turn */
	int flushes_running;       /* their queries in flight */
	uint64_t flush_started;    /* uv_now of the last start of flushes; 0: none yet */
	void (*drained)(void *);   /* hub_bus_drain's callback, until nothing is left */
	void *drained_data;
	uv_timer_t wake_timer;     /* wakes the outbox sender on the next turn of the loop */
	bool outbox_wake;          /* a commit of this turn queued an outgoing message */
	uv_timer_t stale_timer;    /* looks for queued events no one numbered */
	bool stale_running;        /* its query is in flight */
	bool fallback;      /* Redis is away: the fallback timer reads the log */
	bool timers_init;   /* the timers are initialized */
};

static void count(struct hub_bus *bus, const char *name, const char *help, const char *labels)
{
	if (bus->metrics)
		hub_metrics_count(bus->metrics, name, help, labels, 1);
}

static unsigned tid_hash(const char *tid)
{
	unsigned h = 2166136261u; /* FNV-1a */

	for (; *tid; tid++)
		h = (h ^ (unsigned char)*tid) * 16777619u;
	return h % BUS_BUCKETS;
}

/* tid NUL-terminated in key; false when it cannot be a tenant id (empty, too long, NUL). */
static bool tid_key(struct hub_str tid, char key[HUB_JWT_ID_MAX])
{
	if (tid.len == 0 || tid.len >= HUB_JWT_ID_MAX || memchr(tid.p, '\0', tid.len))
		return false;
	memcpy(key, tid.p, tid.len);
	key[tid.len] = '\0';
	return true;
}

static struct hub_bus_tenant *tenant_find(struct hub_bus *bus, struct hub_str tid)
{
	struct hub_bus_tenant *t;
	char key[HUB_JWT_ID_MAX];

	if (!tid_key(tid, key))
		return NULL;
	for (t = bus->buckets[tid_hash(key)]; t; t = t->next)
		if (strcmp(t->tid, key) == 0)
			return t;
	return NULL;
}

/* ---- reading the log ---- */

struct read_req {
	hub_bus_read_cb *cb;
	void *data;
};

static int64_t parse_id(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	return *s && *end == '\0' && v >= 0 ? v : -1;
}

static void on_read(int status, PGresult *res, void *data)
{
	struct read_req req = *(struct read_req *)data;
	struct hub_bus_event *evs = NULL;
	int64_t stream_last = 0, pruned = 0;
	size_t n = 0;
	int rows;

	free(data);
	if (status < 0) {
		req.cb(status, NULL, 0, 0, 0, req.data);
		return;
	}
	rows = PQntuples(res);
	if (rows > 0)
		evs = hub_xcalloc((size_t)rows, sizeof(*evs));
	for (int i = 0; i < rows; i++) {
		int64_t id;

		stream_last = parse_id(PQgetvalue(res, i, 0));
		if (PQnfields(res) > 4 && !PQgetisnull(res, i, 4))
			pruned = parse_id(PQgetvalue(res, i, 4));
		if (PQgetisnull(res, i, 1))
			continue;
		id = parse_id(PQgetvalue(res, i, 1));
		if (id <= 0)
			continue;
		evs[n].id = id;
		evs[n].event = (struct hub_str){ PQgetvalue(res, i, 2),
						 (size_t)PQgetlength(res, i, 2) };
		evs[n].data = (struct hub_str){ PQgetvalue(res, i, 3),
						(size_t)PQgetlength(res, i, 3) };
		n++;
	}
	req.cb(0, evs, n, stream_last < 0 ? 0 : stream_last, pruned < 0 ? 0 : pruned, req.data);
	free(evs);
}

int hub_bus_read(struct hub_bus *bus, const char *tid, int64_t after, hub_bus_read_cb *cb,
		 void *data)
{
	struct read_req *req = hub_xmalloc(sizeof(*req));
	char after_s[24], limit_s[16], bytes_s[24];
	const char *params[4] = { tid, after_s, limit_s, bytes_s };
	int ret;

	snprintf(after_s, sizeof(after_s), "%" PRId64, after);
	snprintf(limit_s, sizeof(limit_s), "%d", HUB_BUS_PAGE);
	snprintf(bytes_s, sizeof(bytes_s), "%zu", bus->page_bytes);
	req->cb = cb;
	req->data = data;
	ret = hub_store_query(bus->store, read_sql, 4, params, on_read, req);
	if (ret < 0)
		free(req);
	return ret;
}

/* ---- ordering ---- */

static void deliver(struct hub_bus_tenant *t, const struct hub_bus_event *ev)
{
	struct hub_bus *bus = t->bus;

	t->last = ev->id;
	if (ev->id > t->seen)
		t->seen = ev->id;
	if (bus->sink.on_event)
		bus->sink.on_event(bus->sink_data, t, ev);
}

static void fetch_start(struct hub_bus_tenant *t);

static void on_later_timer(uv_timer_t *timer)
{
	struct hub_bus *bus = timer->data;

	for (size_t i = 0; i < BUS_BUCKETS; i++) {
		for (struct hub_bus_tenant *t = bus->buckets[i]; t; t = t->next) {
			if (t->later && t->last >= 0) {
				t->later = false;
				fetch_start(t);
			}
		}
	}
}

/* Reads t's log again in ms (or sooner, with another tenant's earlier turn): a gap stays
 * open until the log is read, even if no event comes. */
static void read_later(struct hub_bus_tenant *t, uint64_t ms)
{
	struct hub_bus *bus = t->bus;
	uv_timer_t *timer = &bus->later_timer;

	t->later = true;
	if (bus->timers_init &&
	    (!uv_is_active((uv_handle_t *)timer) || uv_timer_get_due_in(timer) > ms)) {
		int r = uv_timer_start(timer, on_later_timer, ms, 0);

		hub_assert(r == 0);
	}
}

static void on_fetched(int status, const struct hub_bus_event *evs, size_t n,
		       int64_t stream_last, int64_t pruned, void *data)
{
	struct fetch *f = data;
	struct hub_bus_tenant *t = f->t;
	struct hub_bus *bus;
	bool initial;

	(void)pruned; /* live delivery reads only after what it delivered */
	free(f);
	if (!t)
		return; /* the tenant's last watcher left meanwhile */
	bus = t->bus;
	t->fetch = NULL;
	initial = t->last < 0;
	if (status < 0) {
		hub_log_warn(TAG, "tenant=%s: reading the event log: %s", t->tid,
			     strerror(-status));
		count(bus, "bus_read_errors", "Failed reads of the event log", NULL);
		if (initial && bus->sink.on_ready)
			bus->sink.on_ready(bus->sink_data, t, status);
		else if (!initial)
			read_later(t, BUS_READ_RETRY_MS);
		return;
	}
	if (initial) {
		t->last = stream_last;
		if (stream_last > t->seen)
			t->seen = stream_last;
		if (bus->sink.on_ready)
			bus->sink.on_ready(bus->sink_data, t, 0);
		if (t->seen > t->last)
			fetch_start(t);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (evs[i].id <= t->last)
			continue;

		if (evs[i].id != t->last + 1) {
			/* Cannot happen with a gap-free log; kept visible if it ever does. */
			hub_log_warn(TAG, "tenant=%s: event ids %" PRId64 "..%" PRId64
				     " are not in the log", t->tid, t->last + 1, evs[i].id - 1);
			count(bus, "bus_holes", "Event ids missing from the log", NULL);
		}
		count(bus, "bus_events", "Events delivered in order, by where they came from",
		      "source=\"database\"");
		deliver(t, &evs[i]);
	}
	/* n > 0: t->last moved past the read's start, so this cannot spin on a hole. */
	if (n > 0 && t->last < stream_last) {
		/* The page was cut (HUB_BUS_PAGE events or page_bytes): the sockets write it
		 * out before the next one, so that a catch-up of long messages does not pile
		 * up past ws.send_queue_max and close healthy sockets. */
		t->again = false;
		read_later(t, BUS_PACE_MS);
	} else if (t->again) {
		t->again = false;
		fetch_start(t);
	} else if (t->seen > t->last) {
		hub_log_warn(TAG, "tenant=%s: ids up to %" PRId64 " heard of but not in the log",
			     t->tid, t->seen);
		t->seen = t->last;
	}
}

/* Reads the log after t->last (or t's last id while unknown); one read at a time. */
static void fetch_start(struct hub_bus_tenant *t)
{
	struct fetch *f;
	int ret;

	if (t->fetch) {
		t->again = true;
		return;
	}
	f = hub_xmalloc(sizeof(*f));
	f->t = t;
	t->again = false;
	ret = hub_bus_read(t->bus, t->tid, t->last < 0 ? INT64_MAX : t->last, on_fetched, f);
	if (ret < 0) {
		free(f);
		hub_log_warn(TAG, "tenant=%s: cannot read the event log: %s", t->tid,
			     strerror(-ret));
		count(t->bus, "bus_read_errors", "Failed reads of the event log", NULL);
		if (t->last >= 0)
			read_later(t, BUS_READ_RETRY_MS);
		return; /* never a callback from here: hub_bus_tenant_reading() says so */
	}
	t->fetch = f;
	t->later = false; /* this read is the one put off */
	count(t->bus, "bus_reads", "Reads of the event log: initial, gaps, other instances' "
	      "notices, re-syncs", NULL);
}

/* One live event for t (from this instance or Redis). */
static void offer(struct hub_bus_tenant *t, const struct hub_bus_event *ev, const char *source)
{
	struct hub_bus *bus = t->bus;
	char labels[32];

	if (t->last < 0) {
		/* The initial read runs: anything after its answer is read next. */
		if (ev->id > t->seen)
			t->seen = ev->id;
		return;
	}
	if (ev->id <= t->last) {
		count(bus, "bus_duplicates", "Events dropped as already delivered", NULL);
		return;
	}
	if (ev->id == t->last + 1) {
		snprintf(labels, sizeof(labels), "source=\"%s\"", source);
		count(bus, "bus_events", "Events delivered in order, by where they came from",
		      labels);
		deliver(t, ev);
		return;
	}
	if (ev->id > t->seen)
		t->seen = ev->id;
	hub_log_debug(TAG, "tenant=%s: gap before %" PRId64 " (last %" PRId64 "): reading the "
		      "log", t->tid, ev->id, t->last);
	count(bus, "bus_gaps", "Gaps in live events filled from the database", NULL);
	if (!t->later)
		fetch_start(t); /* else the later timer reads it (a paced catch-up, a retry) */
}

static void on_soon_timer(uv_timer_t *timer)
{
	struct hub_bus *bus = timer->data;
	struct hub_bus_tenant *t;

	while ((t = bus->soon) != NULL) {
		bus->soon = t->soon_next;
		t->soon_next = NULL;
		t->soon = false;
		/* else read already: by the later timer (a paced catch-up, a retry), or by a
		 * read of this turn that reached the notice's id */
		if (t->seen > t->last && !t->later)
			fetch_start(t);
	}
}

/* Another instance says that t's log reaches id. Its events are read from the database,
 * never taken from Redis; the read starts on the next turn of the loop, so the notices of a
 * burst (hiredis hands over all that one read(2) brought) cost one query, not one each. */
static void notice(struct hub_bus_tenant *t, int64_t id)
{
	struct hub_bus *bus = t->bus;

	if (id > t->seen)
		t->seen = id;
	/* While the initial read runs, on_fetched compares seen with its answer. */
	if (t->last < 0 || id <= t->last || t->soon)
		return;
	t->soon = true;
	t->soon_next = bus->soon;
	bus->soon = t;
	if (bus->timers_init && !uv_is_active((uv_handle_t *)&bus->soon_timer)) {
		int r = uv_timer_start(&bus->soon_timer, on_soon_timer, 0, 0);

		hub_assert(r == 0);
	}
}

/* ---- tenants ---- */

struct hub_bus_tenant *hub_bus_tenant_ref(struct hub_bus *bus, const char *tid)
{
	struct hub_bus_tenant *t = tenant_find(bus, hub_str_from(tid));
	size_t len;
	unsigned h;

	if (t) {
		t->refs++;
		if (t->last < 0 && !t->fetch)
			fetch_start(t); /* the last read failed: try again */
		return t;
	}
	len = strlen(tid);
	hub_assert(len < sizeof(t->tid));
	t = hub_xcalloc(1, sizeof(*t));
	t->bus = bus;
	t->refs = 1;
	t->last = -1;
	memcpy(t->tid, tid, len + 1);
	h = tid_hash(t->tid);
	t->next = bus->buckets[h];
	bus->buckets[h] = t;
	bus->ntenants++;
	fetch_start(t);
	return t;
}

void hub_bus_tenant_unref(struct hub_bus_tenant *t)
{
	struct hub_bus_tenant **pp;

	if (!t || --t->refs)
		return;
	if (t->fetch)
		t->fetch->t = NULL;
	for (pp = &t->bus->soon; t->soon && *pp; pp = &(*pp)->soon_next) {
		if (*pp == t) {
			*pp = t->soon_next;
			break;
		}
	}
	for (pp = &t->bus->buckets[tid_hash(t->tid)]; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	t->bus->ntenants--;
	free(t);
}

bool hub_bus_tenant_reading(const struct hub_bus_tenant *t)
{
	return t->fetch != NULL;
}

int64_t hub_bus_tenant_last(const struct hub_bus_tenant *t)
{
	return t->last;
}

const char *hub_bus_tenant_id(const struct hub_bus_tenant *t)
{
	return t->tid;
}

void **hub_bus_tenant_user(struct hub_bus_tenant *t)
{
	return &t->user;
}

/* ---- Redis ---- */

static void on_sync_timer(uv_timer_t *timer);

static void mark_published(struct hub_bus *bus, struct hub_str tenant, int64_t id)
{
	char key[HUB_JWT_ID_MAX];
	struct mark **head, *m;

	if (!tid_key(tenant, key))
		return;
	head = &bus->marks[tid_hash(key)];
	for (m = *head; m; m = m->next) {
		if (strcmp(m->tid, key) == 0) {
			if (id > m->id)
				m->id = id;
			return;
		}
	}
	if (bus->nmarks >= BUS_MARKS_MAX) {
		/* the others still find the gap at the tenant's next event */
		count(bus, "bus_marks_dropped", "Sync markers not sent: too many tenants", NULL);
		return;
	}
	m = hub_xcalloc(1, sizeof(*m));
	memcpy(m->tid, key, tenant.len + 1);
	m->id = id;
	m->next = *head;
	*head = m;
	bus->nmarks++;
	if (bus->timers_init && !uv_is_active((uv_handle_t *)&bus->sync_timer)) {
		int r = uv_timer_start(&bus->sync_timer, on_sync_timer, BUS_SYNC_MS, 0);

		hub_assert(r == 0);
	}
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* HMAC-SHA256(key, BUS_MAC_DOMAIN NUL channel NUL json): the channel is part of it, so a
 * payload signed for one tenant's channel is no use on another's. */
static void mac(struct hub_str key, struct hub_str channel, struct hub_str json,
		unsigned char out[HUB_SHA256_LEN])
{
	struct hub_buf in = HUB_BUF_INIT;

	hub_buf_add(&in, BUS_MAC_DOMAIN, sizeof(BUS_MAC_DOMAIN)); /* with its NUL */
	hub_buf_addstr(&in, channel);
	hub_buf_addch(&in, '\0');
	hub_buf_addstr(&in, json);
	hub_hmac_sha256(key, hub_buf_str(&in), out);
	hub_buf_release(&in);
}

/* The json of an envelope that one of our keys signed for channel: 0, -EBADMSG when it is
 * not an envelope at all, -EPERM when the MAC is wrong (forged, or another key). */
static int open_envelope(const struct hub_bus *bus, struct hub_str channel,
			 struct hub_str payload, struct hub_str *json)
{
	const size_t head = sizeof(BUS_ENVELOPE) - 1 + 2 * HUB_SHA256_LEN + 1;
	unsigned char given[HUB_SHA256_LEN], want[HUB_SHA256_LEN];
	struct hub_str body;

	if (payload.len <= head || payload.len > BUS_PAYLOAD_MAX ||
	    memcmp(payload.p, BUS_ENVELOPE, sizeof(BUS_ENVELOPE) - 1) != 0 ||
	    payload.p[head - 1] != '.' ||
	    hub_hex_decode((struct hub_str){ payload.p + sizeof(BUS_ENVELOPE) - 1,
					     2 * HUB_SHA256_LEN },
			   given, sizeof(given)) < 0)
		return -EBADMSG;
	body = (struct hub_str){ payload.p + head, payload.len - head };
	mac(hub_buf_str(&bus->key_sign), channel, body, want);
	if (!hub_ct_equal(given, want, sizeof(want))) {
		if (!bus->key_accept.len)
			return -EPERM;
		mac(hub_buf_str(&bus->key_accept), channel, body, want);
		if (!hub_ct_equal(given, want, sizeof(want)))
			return -EPERM;
	}
	*json = body;
	return 0;
}

/* Publishes to T's channel, signed: with an id, a notice ("the log reaches N"; sync for the
 * markers); without, typing with data_json. */
static int publish(struct hub_bus *bus, struct hub_str tenant, int64_t id, bool sync,
		   struct hub_str data_json)
{
	struct hub_buf ch = HUB_BUF_INIT, b = HUB_BUF_INIT, msg = HUB_BUF_INIT;
	unsigned char sum[HUB_SHA256_LEN];
	struct hub_jw w;
	int ret;

	hub_jw_init(&w, &b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "instance");
	hub_jw_cstr(&w, bus->instance);
	hub_jw_key(&w, "tenant");
	hub_jw_str(&w, tenant);
	hub_jw_key(&w, "ts");
	hub_jw_int(&w, wall_ms());
	if (id > 0) {
		hub_jw_key(&w, "id");
		hub_jw_int(&w, id);
		if (sync) {
			hub_jw_key(&w, "sync");
			hub_jw_bool(&w, true);
		}
	} else {
		hub_jw_key(&w, "event");
		hub_jw_cstr(&w, BUS_TYPING);
		hub_jw_key(&w, "data");
		hub_jw_raw(&w, data_json.len ? data_json : HUB_STR("null"));
	}
	hub_jw_obj_close(&w);
	hub_buf_adds(&ch, BUS_CHANNEL);
	hub_buf_addstr(&ch, tenant);
	mac(hub_buf_str(&bus->key_sign), hub_buf_str(&ch), hub_buf_str(&b), sum);
	hub_buf_adds(&msg, BUS_ENVELOPE);
	hub_buf_addhex(&msg, sum, sizeof(sum));
	hub_buf_addch(&msg, '.');
	hub_buf_addstr(&msg, hub_buf_str(&b));
	ret = hub_redis_publish(bus->redis, hub_buf_str(&ch), hub_buf_str(&msg));
	hub_buf_release(&ch);
	hub_buf_release(&b);
	hub_buf_release(&msg);
	return ret;
}

/* Tells the others how far the log of each tenant published since the last markers
 * reaches; what cannot be sent now stays for the next turn. */
static void on_sync_timer(uv_timer_t *timer)
{
	struct hub_bus *bus = timer->data;
	bool up;

	if (!bus->redis)
		return;
	up = hub_redis_ready(bus->redis);
	for (size_t i = 0; up && i < BUS_BUCKETS; i++) {
		struct mark **pp = &bus->marks[i], *m;

		while (up && (m = *pp) != NULL) {
			if (publish(bus, hub_str_from(m->tid), m->id, true, HUB_STR_NULL) < 0) {
				up = false;
				break;
			}
			*pp = m->next;
			bus->nmarks--;
			free(m);
		}
	}
	if (bus->nmarks) {
		int r = uv_timer_start(&bus->sync_timer, on_sync_timer, BUS_SYNC_MS, 0);

		hub_assert(r == 0);
	}
}

/* ---- numbering the queue ---- */

static void on_flush_timer(uv_timer_t *timer);

static void flush_due(struct hub_bus *bus, struct hub_str tenant, uint64_t delay_ms)
{
	char key[HUB_JWT_ID_MAX];
	struct flush **head, *f;

	if (!bus->timers_init || !tid_key(tenant, key))
		return;
	head = &bus->flushes[tid_hash(key)];
	for (f = *head; f && strcmp(f->tid, key) != 0; f = f->next)
		;
	if (!f) {
		f = hub_xcalloc(1, sizeof(*f));
		f->bus = bus;
		memcpy(f->tid, key, tenant.len + 1);
		f->next = *head;
		*head = f;
	}
	if (f->running) {
		f->again = true;
		return;
	}
	if (!f->due) {
		f->due = true;
		f->due_next = bus->due;
		bus->due = f;
	}
	if (!uv_is_active((uv_handle_t *)&bus->flush_timer) ||
	    uv_timer_get_due_in(&bus->flush_timer) > delay_ms) {
		int r = uv_timer_start(&bus->flush_timer, on_flush_timer, delay_ms, 0);

		hub_assert(r == 0);
	}
}

/* How long a flush due now waits: what is left of BUS_FLUSH_GATHER_MS since flushes last
 * started. */
static uint64_t flush_gather(const struct hub_bus *bus)
{
	uint64_t since = uv_now(bus->loop) - bus->flush_started;

	return bus->flush_started && since < BUS_FLUSH_GATHER_MS ? BUS_FLUSH_GATHER_MS - since
								  : 0;
}

static void flush_forget(struct flush *f)
{
	struct flush **pp = &f->bus->flushes[tid_hash(f->tid)];

	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
	free(f);
}

/* Shutting down (hub_bus_drain): once no flush is due or running, the callback. */
static void drain_check(struct hub_bus *bus)
{
	void (*cb)(void *) = bus->drained;

	if (!cb || bus->due || bus->flushes_running > 0)
		return;
	bus->drained = NULL;
	cb(bus->drained_data);
}

static void on_flushed(int status, PGresult *res, void *data)
{
	struct flush *f = data;
	struct hub_bus *bus = f->bus;
	int rows = status < 0 ? 0 : PQntuples(res);

	f->running = false;
	bus->flushes_running--;
	for (int i = 0; i < rows; i++) {
		struct hub_str ev = { PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2) };
		struct hub_str js = { PQgetvalue(res, i, 3), (size_t)PQgetlength(res, i, 3) };

		hub_bus_publish(bus, hub_str_from(f->tid), strtoll(PQgetvalue(res, i, 1), NULL, 10),
				ev, js);
	}
	if (status < 0 && status != -ECANCELED) {
		count(bus, "bus_flush_failures",
		      "Flushes of queued events that failed (tried again)", NULL);
		/* shutting down: left to hub_stream_stale of any instance */
		f->again = !bus->drained;
	}
	if ((f->again || rows >= BUS_FLUSH_LIMIT) && bus->timers_init) {
		f->again = false;
		flush_due(bus, hub_str_from(f->tid), status < 0 ? BUS_FLUSH_RETRY_MS :
			  rows >= BUS_FLUSH_LIMIT ? 0 : flush_gather(bus));
	} else {
		flush_forget(f);
	}
	drain_check(bus);
}

static void on_flush_timer(uv_timer_t *timer)
{
	struct hub_bus *bus = timer->data;
	struct flush *f, *failed = NULL;
	char limit[16];

	snprintf(limit, sizeof(limit), "%d", BUS_FLUSH_LIMIT);
	bus->flush_started = uv_now(bus->loop);
	while ((f = bus->due) != NULL) {
		const char *params[2] = { f->tid, limit };

		bus->due = f->due_next;
		f->due = false;
		f->running = true;
		bus->flushes_running++;
		if (hub_store_query(bus->store, flush_sql, 2, params, on_flushed, f) < 0) {
			f->running = false;
			bus->flushes_running--;
			f->due_next = failed;
			failed = f;
		}
	}
	while ((f = failed) != NULL) { /* no database now: in a while */
		failed = f->due_next;
		count(bus, "bus_flush_failures",
		      "Flushes of queued events that failed (tried again)", NULL);
		if (bus->drained)
			flush_forget(f); /* shutting down: left to hub_stream_stale */
		else
			flush_due(bus, hub_str_from(f->tid), BUS_FLUSH_RETRY_MS);
	}
	drain_check(bus);
}

static void on_stale(int status, PGresult *res, void *data)
{
	struct hub_bus *bus = data;

	bus->stale_running = false;
	if (status < 0)
		return;
	for (int i = 0; i < PQntuples(res); i++)
		flush_due(bus, hub_str_from(PQgetvalue(res, i, 0)), 0);
}

static void on_stale_timer(uv_timer_t *timer)
{
	struct hub_bus *bus = timer->data;
	char ms[16];
	const char *params[1] = { ms };

	if (bus->stale_running)
		return;
	snprintf(ms, sizeof(ms), "%d", BUS_STALE_MS);
	if (hub_store_query(bus->store, stale_sql, 1, params, on_stale, bus) == 0)
		bus->stale_running = true;
}

static void on_wake_timer(uv_timer_t *timer)
{
	struct hub_bus *bus = timer->data;

	bus->outbox_wake = false;
	hub_store_wake(bus->store, HUB_STORE_OUTBOX);
}

/* True for the event of a commit that queued an outgoing message for the outbox: the
 * message.created of a reply (an agent's send, the assistant's answer, a part of a long
 * text) or the message.status of a retry, both with status "queued"; also when the data
 * cannot be read (a wake too many costs one claim, one too few a reply waits for the
 * sender's idle poll). A record of the sender itself (sent, delivered, failed) is none. */
static bool queues_outgoing(struct hub_str event, struct hub_str data_json)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	struct hub_str status;
	bool yes;

	if (!hub_str_eqs(event, "message.created") && !hub_str_eqs(event, "message.status"))
		return false;
	/* most are not: an inbound message's, a status's (jsonb writes "queued" unescaped) */
	if (!memmem(data_json.p, data_json.len, "\"queued\"", 8))
		return false;
	yes = hub_json_parse(&pool, data_json, BUS_WAKE_TOKENS, &doc, NULL) < 0 ||
	      !hub_json_is(&doc, 0, HUB_JSON_OBJECT) ||
	      hub_json_string(&doc, hub_json_get(&doc, 0, "status"), &pool, &status) < 0 ||
	      hub_str_eqs(status, "queued");
	hub_pool_release(&pool);
	return yes;
}

/* A commit of this instance queued an outgoing message: its SQL left the NOTIFY out
 * (hub_outbox_wake, 0020), so this instance wakes its own sender, on the next turn of the
 * loop (once however many came), not after the flush that numbers the events. */
static void outbox_wake(struct hub_bus *bus)
{
	int r;

	if (bus->outbox_wake || !bus->timers_init)
		return;
	bus->outbox_wake = true;
	r = uv_timer_start(&bus->wake_timer, on_wake_timer, 0, 0);
	hub_assert(r == 0);
}

void hub_bus_publish(struct hub_bus *bus, struct hub_str tenant, int64_t event_id,
		     struct hub_str event, struct hub_str data_json)
{
	struct hub_bus_event ev = { event_id, event, data_json };
	struct hub_bus_tenant *t;

	if (event_id == 0) {
		if (!bus->outbox_wake && queues_outgoing(event, data_json))
			outbox_wake(bus);
		/* queued: numbered by a flush, published then */
		flush_due(bus, tenant, flush_gather(bus));
		return;
	}
	if (event_id < 0)
		return; /* not an event of the log */
	if (bus->redis) {
		if (publish(bus, tenant, event_id, false, HUB_STR_NULL) < 0)
			count(bus, "bus_publish_failures",
			      "Events not published to Redis (the others re-sync)", NULL);
		mark_published(bus, tenant, event_id);
	}
	t = tenant_find(bus, tenant);
	if (t)
		offer(t, &ev, "local");
}

void hub_bus_ephemeral(struct hub_bus *bus, struct hub_str tenant, uint64_t origin,
		       struct hub_str event, struct hub_str data_json)
{
	struct hub_bus_tenant *t;

	if (bus->redis && hub_str_eqs(event, BUS_TYPING) &&
	    publish(bus, tenant, 0, false, data_json) < 0)
		count(bus, "bus_ephemeral_lost", "Ephemeral events (typing) not published to Redis",
		      NULL);
	t = tenant_find(bus, tenant);
	if (t && bus->sink.on_ephemeral)
		bus->sink.on_ephemeral(bus->sink_data, t, origin, event, data_json);
}

static void bad_payload(struct hub_bus *bus, const char *reason)
{
	char labels[48];

	snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
	count(bus, "bus_bad_payloads", "Redis messages dropped: not signed with redis.hmac_key "
	      "(unsigned, forged), malformed or stale", labels);
}

/* A payload that no key of ours signed: forged, or an instance with another redis.hmac_key
 * (then live events between the two stop: say so, but not once per message). */
static void rejected(struct hub_bus *bus, const char *reason)
{
	uint64_t now = uv_now(bus->loop);

	bad_payload(bus, reason);
	bus->rejected++;
	if (bus->rejected_warned_at && now - bus->rejected_warned_at < BUS_WARN_EVERY_MS)
		return;
	hub_log_warn(TAG, "dropped %" PRIu64 " Redis message%s not signed with redis.hmac_key "
		     "(forged, or an instance with another key)", bus->rejected,
		     bus->rejected == 1 ? "" : "s");
	bus->rejected = 0;
	bus->rejected_warned_at = now ? now : 1;
}

static void on_redis_message(struct hub_str channel, struct hub_str payload, void *data)
{
	struct hub_bus *bus = data;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	struct hub_str json, instance, tenant, event;
	struct hub_bus_tenant *t;
	int64_t id, ts;
	int i, ret;

	ret = open_envelope(bus, channel, payload, &json);
	if (ret < 0) {
		rejected(bus, ret == -EPERM ? "forged" : "unsigned");
		return;
	}
	/* Signed by an instance: what follows failing is a bug or a version apart. */
	if (hub_json_parse(&pool, json, BUS_JSON_TOKENS, &doc, NULL) < 0 ||
	    !hub_json_is(&doc, 0, HUB_JSON_OBJECT) ||
	    hub_json_string(&doc, hub_json_get(&doc, 0, "instance"), &pool, &instance) < 0 ||
	    hub_json_string(&doc, hub_json_get(&doc, 0, "tenant"), &pool, &tenant) < 0 ||
	    hub_json_int64(&doc, hub_json_get(&doc, 0, "ts"), &ts) < 0 || ts <= 0) {
		bad_payload(bus, "malformed");
		goto out;
	}
	if (hub_str_eqs(instance, bus->instance))
		goto out; /* our own: delivered locally already */
	/* The channel names the tenant too: both must agree. */
	if (channel.len != sizeof(BUS_CHANNEL) - 1 + tenant.len ||
	    memcmp(channel.p + sizeof(BUS_CHANNEL) - 1, tenant.p, tenant.len) != 0) {
		bad_payload(bus, "malformed");
		goto out;
	}
	t = tenant_find(bus, tenant);
	if (!t)
		goto out; /* nobody of that tenant here */
	i = hub_json_get(&doc, 0, "id");
	if (i < 0) {
		/* Ephemeral: typing is the only kind there is. */
		int d = hub_json_get(&doc, 0, "data");
		int64_t conv, age = wall_ms() - ts;

		if (hub_json_string(&doc, hub_json_get(&doc, 0, "event"), &pool, &event) < 0 ||
		    !hub_str_eqs(event, BUS_TYPING) || d < 0 ||
		    !hub_json_is(&doc, d, HUB_JSON_OBJECT) ||
		    hub_json_int64(&doc, hub_json_get(&doc, d, "conversation_id"), &conv) < 0 ||
		    conv <= 0 || !hub_json_is(&doc, hub_json_get(&doc, d, "user"),
					      HUB_JSON_STRING)) {
			bad_payload(bus, "malformed");
			goto out;
		}
		if (age > BUS_TYPING_AGE_MS || age < -BUS_TYPING_AGE_MS) {
			bad_payload(bus, "stale"); /* a replay, or clocks far apart */
			goto out;
		}
		if (bus->sink.on_ephemeral)
			bus->sink.on_ephemeral(bus->sink_data, t, 0, event, hub_json_raw(&doc, d));
		goto out;
	}
	if (hub_json_int64(&doc, i, &id) < 0 || id <= 0) {
		bad_payload(bus, "malformed");
		goto out;
	}
	count(bus, "bus_notices", "Events of other instances announced through Redis", NULL);
	notice(t, id);
out:
	hub_pool_release(&pool);
}

/* The subscription is (again) in effect: whatever was published while it was down is
 * lost, so every tenant with watchers reads the log after its last id. */
static void on_redis_resync(void *data)
{
	struct hub_bus *bus = data;
	size_t n = 0;

	for (size_t i = 0; i < BUS_BUCKETS; i++) {
		for (struct hub_bus_tenant *t = bus->buckets[i]; t; t = t->next) {
			if (t->last < 0)
				continue; /* its initial read comes after anyway */
			fetch_start(t);
			n++;
		}
	}
	count(bus, "bus_resyncs", "Re-syncs from the database after Redis (re)subscribed",
	      NULL);
	hub_log_info(TAG, "redis subscription up: re-syncing %zu tenants", n);
}

/* While Redis does not deliver (down, failing over, the subscription lost), the other
 * instances' events are read from the log every BUS_FALLBACK_MS, so agents everywhere stay
 * within a second; once it delivers again, on_redis_resync has read everything. */
static void on_fallback_timer(uv_timer_t *timer)
{
	struct hub_bus *bus = timer->data;
	size_t n = 0;

	if (!bus->redis)
		return;
	if (hub_redis_receiving(bus->redis)) {
		if (bus->fallback)
			hub_log_info(TAG, "redis delivers again: reading the event log on notices");
		bus->fallback = false;
		return;
	}
	for (size_t i = 0; i < BUS_BUCKETS; i++) {
		for (struct hub_bus_tenant *t = bus->buckets[i]; t; t = t->next) {
			if (t->last < 0 || t->fetch)
				continue; /* being read anyway */
			fetch_start(t);
			n++;
		}
	}
	if (!bus->fallback && n)
		hub_log_warn(TAG, "redis does not deliver: reading the event log of %zu tenants "
			     "every %d ms until it does", n, BUS_FALLBACK_MS);
	bus->fallback = n > 0 || bus->fallback; /* (nothing to read: nothing to say yet) */
	if (n && bus->metrics)
		hub_metrics_count(bus->metrics, "bus_fallback_reads",
				  "Reads of the event log while Redis did not deliver", NULL, n);
}

void hub_bus_log_grew(struct hub_bus *bus, struct hub_str tenant)
{
	struct hub_bus_tenant *t = tenant_find(bus, tenant);

	flush_due(bus, tenant, 0); /* hubctl queues its events; they are numbered here */
	if (t && t->last >= 0)
		fetch_start(t);
}

/* ---- lifecycle ---- */

int hub_bus_new(uv_loop_t *loop, struct hub_store *store, struct hub_redis *redis,
		const struct hub_bus_keys *keys, struct hub_metrics *metrics, struct hub_bus **out,
		struct hub_err *err)
{
	struct hub_bus *bus = hub_xcalloc(1, sizeof(*bus));
	unsigned char rnd[8];
	int ret;

	hub_buf_init(&bus->key_sign);
	hub_buf_init(&bus->key_accept);
	if (redis && (!keys || !keys->sign.len)) {
		ret = hub_err_set(err, -EINVAL, "bus: Redis needs redis.hmac_key");
		goto fail;
	}
	if (keys) {
		hub_buf_addstr(&bus->key_sign, keys->sign);
		hub_buf_addstr(&bus->key_accept, keys->accept);
	}
	bus->loop = loop;
	bus->store = store;
	bus->redis = redis;
	bus->metrics = metrics;
	bus->page_bytes = HUB_BUS_PAGE_BYTES;
	ret = hub_random_bytes(rnd, sizeof(rnd));
	if (ret < 0) {
		ret = hub_err_set(err, ret, "bus: no random bytes for the instance id");
		goto fail;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(bus->instance + 2 * i, 3, "%02x", rnd[i]);
	if (redis) {
		ret = hub_redis_subscribe(redis, BUS_PATTERN, on_redis_message, on_redis_resync,
					  bus);
		if (ret < 0) {
			ret = hub_err_set(err, ret, "bus: redis subscription: %s", strerror(-ret));
			goto fail;
		}
	}
	ret = uv_timer_init(loop, &bus->sync_timer);
	hub_assert(ret == 0); /* cannot fail on a live loop */
	ret = uv_timer_init(loop, &bus->later_timer);
	hub_assert(ret == 0);
	ret = uv_timer_init(loop, &bus->soon_timer);
	hub_assert(ret == 0);
	ret = uv_timer_init(loop, &bus->fallback_timer);
	hub_assert(ret == 0);
	ret = uv_timer_init(loop, &bus->flush_timer);
	hub_assert(ret == 0);
	ret = uv_timer_init(loop, &bus->stale_timer);
	hub_assert(ret == 0);
	ret = uv_timer_init(loop, &bus->wake_timer);
	hub_assert(ret == 0);
	bus->sync_timer.data = bus;
	bus->later_timer.data = bus;
	bus->soon_timer.data = bus;
	bus->fallback_timer.data = bus;
	bus->flush_timer.data = bus;
	bus->stale_timer.data = bus;
	bus->wake_timer.data = bus;
	bus->timers_init = true;
	ret = uv_timer_start(&bus->stale_timer, on_stale_timer, BUS_STALE_MS, BUS_STALE_MS);
	hub_assert(ret == 0);
	if (redis) {
		ret = uv_timer_start(&bus->fallback_timer, on_fallback_timer, BUS_FALLBACK_MS,
				     BUS_FALLBACK_MS);
		hub_assert(ret == 0);
	}
	hub_log_info(TAG, "instance %s, %s", bus->instance,
		     redis ? "event ids shared through Redis, signed" : "alone (no redis.url)");
	*out = bus;
	return 0;
fail:
	hub_buf_release(&bus->key_sign);
	hub_buf_release(&bus->key_accept);
	free(bus);
	return ret;
}

void hub_bus_set_sink(struct hub_bus *bus, const struct hub_bus_sink *sink, void *data)
{
	bus->sink = *sink;
	bus->sink_data = data;
}

void hub_bus_set_page_bytes(struct hub_bus *bus, size_t bytes)
{
	bus->page_bytes = bytes ? bytes : HUB_BUS_PAGE_BYTES;
}

void hub_bus_drain(struct hub_bus *bus, void (*cb)(void *), void *data)
{
	int r;

	if (!bus || !bus->timers_init) {
		cb(data);
		return;
	}
	bus->drained = cb;
	bus->drained_data = data;
	if (bus->due) {
		r = uv_timer_start(&bus->flush_timer, on_flush_timer, 0, 0);
		hub_assert(r == 0);
		return;
	}
	drain_check(bus);
}

void hub_bus_stop(struct hub_bus *bus)
{
	if (!bus)
		return;
	bus->redis = NULL;
	if (bus->timers_init) {
		uv_close((uv_handle_t *)&bus->sync_timer, NULL);
		uv_close((uv_handle_t *)&bus->later_timer, NULL);
		uv_close((uv_handle_t *)&bus->soon_timer, NULL);
		uv_close((uv_handle_t *)&bus->fallback_timer, NULL);
		uv_close((uv_handle_t *)&bus->flush_timer, NULL);
		uv_close((uv_handle_t *)&bus->stale_timer, NULL);
		uv_close((uv_handle_t *)&bus->wake_timer, NULL);
		bus->timers_init = false;
	}
}

void hub_bus_free(struct hub_bus *bus)
{
	if (!bus)
		return;
	hub_assert(bus->ntenants == 0);
	hub_assert(!bus->timers_init);
	for (size_t i = 0; i < BUS_BUCKETS; i++) {
		while (bus->flushes[i]) {
			struct flush *f = bus->flushes[i];

			hub_assert(!f->running); /* the store is closed first */
			bus->flushes[i] = f->next;
			free(f);
		}
	}
	for (size_t i = 0; i < BUS_BUCKETS; i++) {
		while (bus->marks[i]) {
			struct mark *m = bus->marks[i];

			bus->marks[i] = m->next;
			free(m);
		}
	}
	hub_buf_release(&bus->key_sign);
	hub_buf_release(&bus->key_accept);
	free(bus);
}
