/* daemon/core/publish.h - how a worker hands on the events its transaction committed
 * (ingest, the outbox, the profile lookups): hubd gives them to the bus. */
#ifndef HUB_PUBLISH_H
#define HUB_PUBLISH_H

#include <stdint.h>

#include <libpq-fe.h>

#include "lib/buf.h"

/* A committed event: tenant, its per-tenant id, name ("message.created") and data JSON,
 * all borrowed for the call. Id 0: committed to the tenant's queue, not numbered yet
 * (db/migrations/0020_event_queue.sql; the bus numbers and publishes it). */
typedef void hub_publish_fn(void *data, struct hub_str tenant, int64_t event_id,
			    struct hub_str event, struct hub_str data_json);

/* Publishes the rows (tenant, event_id, event, data) of a worker's SQL function; a result
 * of another shape carries none. */
void hub_publish_rows(hub_publish_fn *publish, void *data, PGresult *res);

#endif
