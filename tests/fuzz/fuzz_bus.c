/* tests/fuzz/fuzz_bus.c - daemon/data/bus.c's reader of Redis payloads (on_redis_message,
 * static, reached through the callback it gives hub_redis_subscribe: the signed envelope,
 * then the notice or typing JSON) and the ordering it feeds, on any sequence of messages
 * (`make fuzz-bus`). This target links fakes of daemon/data/redis.c (subscribe keeps the
 * callbacks, publish checks what is sent, ready says yes), of hub_store_query (queued,
 * answered from a model of the event log: gap-free ids 1..last per tenant) and of libpq's
 * accessors (fakepg.h) instead of the real ones, so the bus runs on a libuv loop without
 * Redis or PostgreSQL. Zero-delay timers run; longer ones are never waited for.
 *
 * Input: records separated by NUL bytes; a record's first byte (mod 11) is what happens,
 * the rest its bytes. 0-2: the rest is a payload's JSON, signed here with redis.hmac_key
 * for and sent on hub:ev:fuzz, hub:ev:t2 (both watched) or hub:ev:nobody; 3: the same on
 * hub:ev:fuzz signed with the old (accepted) key; 4: the rest as it is on hub:ev:fuzz (an
 * unsigned or forged payload); 5: the JSON signed for hub:ev:t2 but sent on hub:ev:fuzz;
 * 6: a re-subscription (resync); 7: a local publish to fuzz of the next id; 8: a local
 * typing event; 9: the next database read fails; 10: "CHANNEL|JSON", signed for and sent on
 * "hub:ev:" CHANNEL. "1700000000000" in a JSON becomes the wall clock's milliseconds (a
 * typing payload's ts must be recent). A notice whose id is beyond a tenant's log extends
 * the log to it (another instance committed it).
 * Properties: each tenant's events reach the sink with ids that increase by exactly one from
 * the last id on_ready reported (none before it, none twice, none beyond the log), with the
 * log's data; a payload signed for another channel has no effect; ephemeral events are
 * "typing" with a JSON object naming a positive conversation_id and a user; what the bus
 * publishes is an envelope whose MAC (checked with OpenSSL) is right for its channel around a
 * JSON notice or typing that carries no event data; what it asks the store has the tenant's
 * id and numbers.
 * Time stands still within one input: the monotonic clocks that libuv's loop reads are
 * frozen while an input runs (clock_gettime below), so no timer of a millisecond or more
 * comes due in the middle of a run however slow the machine is, and each input does the
 * same on every replay (a retry timer firing during record 5 was once taken for a forged
 * payload believed). */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "daemon/data/bus.h"
#include "daemon/data/redis.h"
#include "daemon/data/store.h"
#include "lib/json.h"
#include "lib/log.h"
#include "tests/fuzz/fakepg.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "bus";

#define NT 3 /* tenants of the model: fuzz, t2 (watched) and nobody */
#define MAX_QUERIES 64

static const char *const tenants[NT] = { "fuzz", "t2", "nobody" };
static const char key_sign[] = "fuzz-bus-hmac-key-0123456789";
static const char key_old[] = "fuzz-bus-old-key-9876543210";

static char store_tag, redis_tag;
#define STORE ((struct hub_store *)&store_tag)
#define REDIS ((struct hub_redis *)&redis_tag)

struct query {
	hub_store_cb *cb;
	void *data;
	int tenant;
	int64_t after, limit;
};

static struct {
	uv_loop_t loop;
	bool loop_init;
	hub_redis_message_cb *on_message;
	hub_redis_resync_cb *on_resync;
	void *redis_data;
	struct query q[MAX_QUERIES];
	int nq, queries, ephemerals;
	bool fail_next;
	int64_t log_last[NT];  /* the model's log: ids 1..log_last */
	int64_t delivered[NT]; /* the sink's view: -1 until on_ready */
	struct hub_bus_tenant *t[NT];
} fz;

/* ---- the clock ---- */

static struct {
	bool frozen;
	struct timespec at; /* what CLOCK_MONOTONIC* answer while frozen */
} clk;

static int real_clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "clock_gettime");
	fuzz_check(real != NULL, "no clock_gettime");
	return real(id, ts);
}

/* Interposes libc's for the whole process (libuv's loop time among its callers). */
int clock_gettime(clockid_t id, struct timespec *ts)
{
	if (clk.frozen && (id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_COARSE ||
			   id == CLOCK_MONOTONIC_RAW || id == CLOCK_BOOTTIME)) {
		*ts = clk.at;
		return 0;
	}
	return real_clock_gettime(id, ts);
}

static void clock_freeze(bool on)
{
	if (on)
		real_clock_gettime(CLOCK_MONOTONIC, &clk.at);
	clk.frozen = on;
}

static int tenant_index(const char *tid)
{
	for (int i = 0; i < NT; i++)
		if (strcmp(tid, tenants[i]) == 0)
			return i;
	return -1;
}

/* "v1." HEX(HMAC-SHA256(key, "hub:bus:v1" NUL channel NUL json)) "." json, as bus.c says */
static void envelope(struct hub_buf *out, const char *key, struct hub_str channel,
		     struct hub_str json)
{
	static const char hex[] = "0123456789abcdef";
	struct hub_buf in = HUB_BUF_INIT;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	hub_buf_add(&in, "hub:bus:v1", sizeof("hub:bus:v1"));
	hub_buf_addstr(&in, channel);
	hub_buf_addch(&in, '\0');
	hub_buf_addstr(&in, json);
	fuzz_check(HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)in.p, in.len,
			md, &mdlen) != NULL,
		   "HMAC");
	hub_buf_adds(out, "v1.");
	for (unsigned int i = 0; i < mdlen; i++) {
		hub_buf_addch(out, hex[md[i] >> 4]);
		hub_buf_addch(out, hex[md[i] & 15]);
	}
	hub_buf_addch(out, '.');
	hub_buf_addstr(out, json);
	hub_buf_release(&in);
}

/* ---- fakes of daemon/data/redis.c and store.c ---- */

int hub_redis_subscribe(struct hub_redis *r, const char *pattern,
			hub_redis_message_cb *on_message, hub_redis_resync_cb *on_resync,
			void *data)
{
	fuzz_check(r == REDIS && strcmp(pattern, "hub:ev:*") == 0, "subscribe %s", pattern);
	fz.on_message = on_message;
	fz.on_resync = on_resync;
	fz.redis_data = data;
	return 0;
}

bool hub_redis_ready(const struct hub_redis *r)
{
	fuzz_check(r == REDIS, "ready");
	return true;
}

bool hub_redis_receiving(const struct hub_redis *r)
{
	fuzz_check(r == REDIS, "receiving");
	return true;
}

/* What goes out: signed for its channel, a notice or typing, never an event's data. */
int hub_redis_publish(struct hub_redis *r, struct hub_str channel, struct hub_str payload)
{
	static const char *const notice_keys[] = { "instance", "tenant", "ts", "id", "sync" };
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf want = HUB_BUF_INIT;
	struct hub_json_doc doc;
	struct hub_str json;
	const char *dot;

	fuzz_check(r == REDIS && hub_str_startswith(channel, "hub:ev:"), "publish");
	fuzz_check(payload.len > 68 && (dot = memchr(payload.p + 3, '.', payload.len - 3)) &&
			   dot == payload.p + 67,
		   "published something that is not an envelope");
	json = (struct hub_str){ dot + 1, (size_t)(payload.p + payload.len - dot - 1) };
	envelope(&want, key_sign, channel, json);
	fuzz_check(hub_str_eq(hub_buf_str(&want), payload), "published with a wrong MAC");
	fuzz_check(hub_json_parse(&pool, json, 8192, &doc, NULL) == 0 &&
			   hub_json_is(&doc, 0, HUB_JSON_OBJECT),
		   "published JSON that is not an object");
	fuzz_check(hub_str_eq(hub_json_raw(&doc, hub_json_get(&doc, 0, "tenant")),
			      (struct hub_str){ channel.p + 7, channel.len - 7 }),
		   "published to another tenant's channel");
	if (hub_json_get(&doc, 0, "id") >= 0) {
		for (int k = hub_json_first(&doc, 0); k >= 0; k = hub_json_after(&doc, k)) {
			bool known = false;

			for (size_t i = 0; i < HUB_ARRAY_SIZE(notice_keys); i++)
				known |= hub_str_eqs(hub_json_raw(&doc, k), notice_keys[i]);
			fuzz_check(known, "a notice carries \"%.*s\"",
				   HUB_STR_FMT(hub_json_raw(&doc, k)));
		}
	} else {
		fuzz_check(hub_str_eqs(hub_json_raw(&doc, hub_json_get(&doc, 0, "event")),
				       "typing"),
			   "published an ephemeral event that is not typing");
	}
	hub_buf_release(&want);
	hub_pool_release(&pool);
	return 0;
}

static bool number(const char *s, int64_t *v)
{
	char *end;

	*v = strtoll(s, &end, 10);
	return *s && !*end;
}

void hub_store_wake(struct hub_store *st, const char *channel)
{
	fuzz_check(st == STORE && strcmp(channel, HUB_STORE_OUTBOX) == 0, "wake");
}

int hub_store_query(struct hub_store *st, const char *sql, int nparams,
		    const char *const *params, hub_store_cb *cb, void *data)
{
	struct query *q;
	int64_t bytes;

	fuzz_check(st == STORE && sql && cb && nparams == 4, "query");
	fuzz_check(fz.nq < MAX_QUERIES, "more than %d reads at once", MAX_QUERIES);
	q = &fz.q[fz.nq];
	q->tenant = tenant_index(params[0]);
	fuzz_check(q->tenant >= 0 && q->tenant < 2, "a read for tenant %s", params[0]);
	fuzz_check(number(params[1], &q->after) && q->after >= 0, "after %s", params[1]);
	fuzz_check(number(params[2], &q->limit) && q->limit > 0, "limit %s", params[2]);
	fuzz_check(number(params[3], &bytes) && bytes > 0, "bytes %s", params[3]);
	q->cb = cb;
	q->data = data;
	fz.nq++;
	fz.queries++;
	return 0;
}

/* The model log's answer to q: the page after q->after and the last id (read_sql). */
static void answer(const struct query *q)
{
	int64_t last = fz.log_last[q->tenant];
	PGresult *res;
	char s[32];
	int row;

	if (fz.fail_next) {
		fz.fail_next = false;
		q->cb(-ECONNRESET, NULL, q->data);
		return;
	}
	res = fakepg_new(4);
	snprintf(s, sizeof(s), "%lld", (long long)last);
	if (q->after >= last) {
		row = fakepg_add_row(res);
		fakepg_set(res, row, 0, s, strlen(s));
	}
	for (int64_t k = 1; q->after < last && k <= q->limit && k <= last - q->after; k++) {
		char ids[32];

		row = fakepg_add_row(res);
		fakepg_set(res, row, 0, s, strlen(s));
		snprintf(ids, sizeof(ids), "%lld", (long long)(q->after + k));
		fakepg_set(res, row, 1, ids, strlen(ids));
		fakepg_set(res, row, 2, "message.created", 15);
		fakepg_set(res, row, 3, "{\"id\":1}", 8);
	}
	q->cb(0, res, q->data);
	fakepg_free(res);
}

/* Runs zero-delay timers and answers reads (and those they start) until none is left. */
static void settle(void)
{
	for (int rounds = 0;; rounds++) {
		fuzz_check(rounds < 10000, "reads never end");
		uv_run(&fz.loop, UV_RUN_NOWAIT);
		if (fz.nq == 0)
			break;
		struct query q = fz.q[0];

		memmove(fz.q, fz.q + 1, (size_t)(fz.nq - 1) * sizeof(*fz.q));
		fz.nq--;
		answer(&q);
	}
}

/* ---- the sink ---- */

static void on_event(void *data, struct hub_bus_tenant *t, const struct hub_bus_event *ev)
{
	int i = tenant_index(hub_bus_tenant_id(t));

	(void)data;
	fuzz_check(i >= 0 && i < 2 && fz.t[i] == t, "an event for %s", hub_bus_tenant_id(t));
	fuzz_check(fz.delivered[i] >= 0, "%s: an event before on_ready", tenants[i]);
	fuzz_check(ev->id == fz.delivered[i] + 1, "%s: event %lld after %lld", tenants[i],
		   (long long)ev->id, (long long)fz.delivered[i]);
	fuzz_check(ev->id <= fz.log_last[i], "%s: event %lld beyond the log (%lld)", tenants[i],
		   (long long)ev->id, (long long)fz.log_last[i]);
	fuzz_check(hub_bus_tenant_last(t) == ev->id, "last %lld, event %lld",
		   (long long)hub_bus_tenant_last(t), (long long)ev->id);
	fuzz_check(hub_str_eqs(ev->data, "{\"id\":1}"), "event data not the log's");
	fz.delivered[i] = ev->id;
}

static void on_ready(void *data, struct hub_bus_tenant *t, int status)
{
	int i = tenant_index(hub_bus_tenant_id(t));

	(void)data;
	fuzz_check(i >= 0 && i < 2, "ready: %s", hub_bus_tenant_id(t));
	if (status == 0) {
		fuzz_check(hub_bus_tenant_last(t) >= 0, "ready without a last id");
		fz.delivered[i] = hub_bus_tenant_last(t);
	}
}

static void on_ephemeral(void *data, struct hub_bus_tenant *t, uint64_t origin,
			 struct hub_str event, struct hub_str data_json)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	int64_t conv;

	(void)data;
	(void)origin;
	fuzz_check(tenant_index(hub_bus_tenant_id(t)) >= 0, "ephemeral for %s",
		   hub_bus_tenant_id(t));
	fuzz_check(hub_str_eqs(event, "typing"), "ephemeral %.*s", HUB_STR_FMT(event));
	fuzz_check(hub_json_parse(&pool, data_json, 1 << 16, &doc, NULL) == 0 &&
			   hub_json_is(&doc, 0, HUB_JSON_OBJECT) &&
			   hub_json_int64(&doc, hub_json_get(&doc, 0, "conversation_id"), &conv) ==
				   0 &&
			   conv > 0 &&
			   hub_json_is(&doc, hub_json_get(&doc, 0, "user"), HUB_JSON_STRING),
		   "typing's data: %.*s", HUB_STR_FMT(data_json));
	hub_pool_release(&pool);
	fz.ephemerals++;
}

/* ---- one input ---- */

/* A notice beyond the log: another instance committed it. */
static void extend_log(int tenant, struct hub_str json)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	int64_t id;

	if (tenant >= 0 && hub_json_parse(&pool, json, 8192, &doc, NULL) == 0 &&
	    hub_json_int64(&doc, hub_json_get(&doc, 0, "id"), &id) == 0 &&
	    id > fz.log_last[tenant])
		fz.log_last[tenant] = id;
	hub_pool_release(&pool);
}

/* json with "1700000000000" made the wall clock's milliseconds (13 digits as well) */
static void with_now(struct hub_buf *out, struct hub_str json)
{
	struct timespec ts;
	char now[32];
	char *at;

	hub_buf_addstr(out, json);
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(now, sizeof(now), "%013lld",
		 (long long)ts.tv_sec * 1000 + (long long)(ts.tv_nsec / 1000000));
	while ((at = memmem(out->p, out->len, "1700000000000", 13)) != NULL)
		memcpy(at, now, 13);
}

static void send_signed(const char *key, const char *sign_for, const char *send_on,
			struct hub_str json)
{
	struct hub_buf ch = HUB_BUF_INIT, on = HUB_BUF_INIT, msg = HUB_BUF_INIT, j = HUB_BUF_INIT;

	with_now(&j, json);
	hub_buf_addf(&ch, "hub:ev:%s", sign_for);
	hub_buf_addf(&on, "hub:ev:%s", send_on);
	envelope(&msg, key, hub_buf_str(&ch), hub_buf_str(&j));
	fz.on_message(hub_buf_str(&on), hub_buf_str(&msg), fz.redis_data);
	hub_buf_release(&j);
	hub_buf_release(&msg);
	hub_buf_release(&on);
	hub_buf_release(&ch);
}

static void record(const uint8_t *p, size_t n)
{
	struct hub_str rest = { (const char *)p + 1, n - 1 };
	int op = p[0] % 11;
	int queries = fz.queries, ephemerals = fz.ephemerals;

	switch (op) {
	case 0:
	case 1:
	case 2:
		extend_log(op, rest);
		send_signed(key_sign, tenants[op], tenants[op], rest);
		break;
	case 3:
		extend_log(0, rest);
		send_signed(key_old, "fuzz", "fuzz", rest);
		break;
	case 4:
		fz.on_message(HUB_STR("hub:ev:fuzz"), rest, fz.redis_data);
		break;
	case 5:
		send_signed(key_sign, "t2", "fuzz", rest);
		settle();
		fuzz_check(fz.queries == queries && fz.ephemerals == ephemerals,
			   "a payload signed for another channel was believed");
		break;
	case 6:
		fz.on_resync(fz.redis_data);
		break;
	case 7:
		fz.log_last[0]++;
		hub_bus_publish(fz.redis_data, HUB_STR("fuzz"), fz.log_last[0],
				HUB_STR("message.created"), HUB_STR("{\"id\":1}"));
		break;
	case 8:
		hub_bus_ephemeral(fz.redis_data, HUB_STR("t2"), 9, HUB_STR("typing"),
				  HUB_STR("{\"conversation_id\":3,\"user\":\"u\"}"));
		break;
	case 9:
		fz.fail_next = true;
		break;
	case 10: {
		const char *bar = memchr(rest.p, '|', rest.len);
		char *tenant;

		if (!bar)
			break;
		tenant = hub_xmemdup(rest.p, (size_t)(bar - rest.p));
		if (!memchr(rest.p, '\0', (size_t)(bar - rest.p))) {
			struct hub_str json = { bar + 1, (size_t)(rest.p + rest.len - bar - 1) };

			extend_log(tenant_index(tenant), json);
			send_signed(key_sign, tenant, tenant, json);
		}
		free(tenant);
		break;
	}
	}
	settle();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct hub_bus_sink sink = { on_event, on_ready, on_ephemeral };
	const struct hub_bus_keys keys = { HUB_STR(key_sign), HUB_STR(key_old) };
	struct hub_err err = HUB_ERR_INIT;
	struct hub_bus *bus;
	size_t at = 0;

	if (!fz.loop_init) {
		hub_log_set_level(HUB_LOG_ERROR);
		fuzz_check(uv_loop_init(&fz.loop) == 0, "loop");
		fz.loop_init = true;
	}
	clock_freeze(true);
	uv_update_time(&fz.loop); /* timers started now count from the frozen time */
	fz.nq = fz.queries = fz.ephemerals = 0;
	fz.fail_next = false;
	fz.log_last[0] = 5;
	fz.log_last[1] = 0;
	fz.log_last[2] = 40;
	fuzz_check(hub_bus_new(&fz.loop, STORE, REDIS, &keys, NULL, &bus, &err) == 0, "bus: %s",
		   err.msg);
	fuzz_check(fz.redis_data == bus && fz.on_message && fz.on_resync, "not subscribed");
	hub_bus_set_sink(bus, &sink, NULL);
	for (int i = 0; i < 2; i++) {
		fz.delivered[i] = -1;
		fz.t[i] = hub_bus_tenant_ref(bus, tenants[i]);
		fuzz_check(hub_bus_tenant_reading(fz.t[i]), "%s: no initial read", tenants[i]);
	}
	settle();
	for (int i = 0; i < 2; i++)
		fuzz_check(fz.delivered[i] == fz.log_last[i], "%s: ready at %lld, log at %lld",
			   tenants[i], (long long)fz.delivered[i], (long long)fz.log_last[i]);

	while (at < size) {
		const uint8_t *nul = memchr(data + at, '\0', size - at);
		size_t n = nul ? (size_t)(nul - (data + at)) : size - at;

		if (n)
			record(data + at, n);
		at += n + 1;
	}
	for (int i = 0; i < 2; i++) {
		hub_bus_tenant_unref(fz.t[i]);
		fz.t[i] = NULL;
	}
	settle();
	hub_bus_stop(bus);
	uv_run(&fz.loop, UV_RUN_NOWAIT); /* the timers' close callbacks */
	hub_bus_free(bus);
	fz.on_message = NULL;
	fz.on_resync = NULL;
	fz.redis_data = NULL;
	clock_freeze(false);
	return 0;
}
