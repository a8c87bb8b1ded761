/* daemon/data/bus.h - the live events of the tenants that have sockets here, in id order and
 * exactly once: committed events of this instance, events of the other instances announced
 * through Redis (one channel per tenant; a signed notice "the log reaches id N", never the
 * event's data) and read from the database's event log, which also fills gaps, duplicates
 * dropped, and a re-sync from the database whenever the Redis subscription was down.
 * Without Redis the instance runs alone.
 * Knows nothing about websockets: a sink (ws) sees tenants and ordered events. */
#ifndef HUB_BUS_H
#define HUB_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/mem.h"

struct hub_bus;
struct hub_bus_tenant; /* one tenant with watchers here; refcounted */
struct hub_store;
struct hub_redis;
struct hub_metrics;

#define HUB_BUS_PAGE 500             /* events read from the database per query, at most */
#define HUB_BUS_PAGE_BYTES (128 << 10) /* their frames' bytes, unless set otherwise */

/* One event of a tenant's log; the strings are borrowed (valid during the call). */
struct hub_bus_event {
	int64_t id;           /* > 0 */
	struct hub_str event; /* "message.created" */
	struct hub_str data;  /* JSON */
};

/* Where the bus delivers, on the loop. None of these may call hub_bus_tenant_unref. */
struct hub_bus_sink {
	/* The next event of t: ids strictly increase by one per call (the log has no holes),
	 * each id at most once, all ids > the last id reported by on_ready. */
	void (*on_event)(void *data, struct hub_bus_tenant *t, const struct hub_bus_event *ev);
	/* t's last event id is known (status 0: hub_bus_tenant_last) or could not be read
	 * (status < 0; the next hub_bus_tenant_ref tries again). */
	void (*on_ready)(void *data, struct hub_bus_tenant *t, int status);
	/* An ephemeral event (typing: no id, not in the log) for t; origin is the sink's id
	 * given to hub_bus_ephemeral on this instance, 0 when it came from another one. */
	void (*on_ephemeral)(void *data, struct hub_bus_tenant *t, uint64_t origin,
			     struct hub_str event, struct hub_str data_json);
};

/* The secret that every instance sharing one Redis holds alike (redis.hmac_key): whoever
 * can PUBLISH or SUBSCRIBE on Redis without it can neither forge what the bus acts upon nor
 * read more than tenant ids, event ids and who types in which conversation. */
struct hub_bus_keys {
	struct hub_str sign;   /* HMAC-SHA256 key of every payload sent, and received */
	struct hub_str accept; /* also accepted on payloads received, never used to sign (a
				* rolling key rotation); empty: none */
};

/* store must outlive the bus; redis may be NULL (alone) and must be closed before
 * hub_bus_free. With redis, keys->sign must not be empty (-EINVAL otherwise); the keys are
 * copied (keys may be NULL without redis). The bus subscribes to Redis here. */
int hub_bus_new(uv_loop_t *loop, struct hub_store *store, struct hub_redis *redis,
		const struct hub_bus_keys *keys, struct hub_metrics *metrics, struct hub_bus **out,
		struct hub_err *err) HUB_MUSTCHECK;
void hub_bus_set_sink(struct hub_bus *bus, const struct hub_bus_sink *sink, void *data);
/* Bounds the bytes of one page read from the log (0: HUB_BUS_PAGE_BYTES): a page of gap
 * fill reaches every socket of the tenant at once, so it must fit a socket's send queue
 * with room to spare. A page holds at least one event whatever its size. */
void hub_bus_set_page_bytes(struct hub_bus *bus, size_t bytes);
/* At shutdown, while the store is open: numbers this instance's queued events now (the
 * flushes due, without waiting to gather) and calls cb(data) once none is due or running
 * (at once when none is; NULL-safe). A flush that fails is left to hub_stream_stale of any
 * instance. So a stopped instance leaves nothing for the next to number. */
void hub_bus_drain(struct hub_bus *bus, void (*cb)(void *), void *data);
/* At shutdown, before Redis is closed: forgets Redis and closes the bus's timers (the loop
 * must run once more before hub_bus_free). NULL-safe, idempotent. */
void hub_bus_stop(struct hub_bus *bus);
/* Frees bus (NULL-safe): every tenant must have been unreferenced. */
void hub_bus_free(struct hub_bus *bus);

/* A committed event of this instance: in order to the sink, and its id (only) to Redis for
 * the others, who read the event from the database. event_id 0: events of tenant were
 * committed to the queue (hub_stream_append returns 0 for them): the bus numbers the
 * tenant's queue (hub_stream_flush, one flush of a tenant at a time, a few milliseconds
 * later so that the commits that follow share it) and publishes what it numbered; when
 * the event announces an outgoing message queued (message.created or message.status with
 * status "queued"), the bus also wakes this instance's outbox sender on the next turn of
 * the loop (its SQL left the NOTIFY out: hub.local_wake). Every instance also numbers
 * queued events left for a second (their instance died after its COMMIT). */
void hub_bus_publish(struct hub_bus *bus, struct hub_str tenant, int64_t event_id,
		     struct hub_str event, struct hub_str data_json);
/* Events of tenant were committed by someone who is no instance (hubctl, through NOTIFY
 * hub_events): they are numbered if still queued, and its watchers here read the log after
 * what they have. */
void hub_bus_log_grew(struct hub_bus *bus, struct hub_str tenant);
/* An ephemeral event for every watcher of tenant on every instance; typing (data
 * {"conversation_id":N,"user":U}) is the only one the others accept. */
void hub_bus_ephemeral(struct hub_bus *bus, struct hub_str tenant, uint64_t origin,
		       struct hub_str event, struct hub_str data_json);

/* The tenant's stream, created on first use or one more reference. tid: at most
 * HUB_JWT_ID_MAX - 1 bytes. While its last id is unknown a read of it is started (unless
 * one runs) and on_ready follows; when none could be started (hub_bus_tenant_reading()
 * false) no on_ready comes: the caller gives up and may try again later. */
struct hub_bus_tenant *hub_bus_tenant_ref(struct hub_bus *bus, const char *tid);
bool hub_bus_tenant_reading(const struct hub_bus_tenant *t);
void hub_bus_tenant_unref(struct hub_bus_tenant *t); /* NULL-safe */
/* The last id delivered (or known when there were no events yet); -1 while unknown. */
int64_t hub_bus_tenant_last(const struct hub_bus_tenant *t);
const char *hub_bus_tenant_id(const struct hub_bus_tenant *t);
/* A slot for the sink's own per-tenant state (NULL when created). */
void **hub_bus_tenant_user(struct hub_bus_tenant *t);

/* Reads up to HUB_BUS_PAGE events (and about page_bytes of frames) of tenant tid with
 * id > after from the database, in id order; fewer than HUB_BUS_PAGE does not mean the
 * log ends there: compare with stream_last. cb gets status (0 or a negative errno from the store), the events (borrowed, valid
 * during the call), how many, the tenant's last event id at that moment, and pruned: the
 * last id that retention removed from the log (events up to it are gone: a reader whose
 * after is below it cannot be answered from the log). Returns 0 and later calls cb exactly
 * once, or a negative errno and never calls cb. */
typedef void hub_bus_read_cb(int status, const struct hub_bus_event *evs, size_t n,
			     int64_t stream_last, int64_t pruned, void *data);
int hub_bus_read(struct hub_bus *bus, const char *tid, int64_t after, hub_bus_read_cb *cb,
		 void *data) HUB_MUSTCHECK;

#endif
