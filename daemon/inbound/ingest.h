/* Room daemon/inbound/: what brings customers' messages in: webhook ingest (ingest.h),
 * Telegram long polling (tgpoll.h) and Instagram senders' names (profiles.h). May call net/,
 * data/, core/, adapters/ and config/; knows nothing of inbox/. */
/* daemon/inbound/ingest.h - the webhook endpoints: /webhooks/{platform}/{channel}.
 * GET answers the platform's verification handshake; POST verifies the signature on the raw
 * body, parses it through the platform's adapter, stores every event (messages, echoes,
 * statuses, edits, deletions, reactions) in PostgreSQL with group commit (the requests that
 * arrive while a transaction runs are committed together, config ingest.*), answers 200
 * only after that COMMIT (503 while the database is unavailable or an item failed for a
 * reason other than its content, so the platform retries), then hands the committed events
 * to the publish callback (in each tenant's id order while one batch runs at a time, the
 * default; with ingest.batches_in_flight > 1 in the order the batches complete).
 * Knows nothing about websockets or Redis: it only calls publish. */
#ifndef HUB_INGEST_H
#define HUB_INGEST_H

#include <stdint.h>

#include "daemon/core/publish.h"
#include "lib/buf.h"

struct hub_ingest;
struct hub_store;
struct hub_config;
struct hub_metrics;
struct hub_http_req;


/* store and metrics must outlive the ingest; cfg is referenced (hub_ingest_set_config
 * replaces it). */
struct hub_ingest *hub_ingest_new(struct hub_store *store, struct hub_config *cfg,
				  struct hub_metrics *metrics, hub_publish_fn *publish,
				  void *data);
/* The snapshot for new requests; requests in flight keep the one they started with. */
void hub_ingest_set_config(struct hub_ingest *ing, struct hub_config *cfg);
/* Frees ing (NULL-safe). No request may be in flight (the HTTP server has drained). */
void hub_ingest_free(struct hub_ingest *ing);

/* What became of hub_ingest_events(): 0 when every item is stored (or was already, or is
 * ignored or refused for its content, as a webhook's would be); a negative errno when they
 * could not all be stored (-EAGAIN: an item failed for another reason): fetch them again. */
typedef void hub_ingest_done_cb(int status, void *data);
/* Stores the events of a source without an HTTP request (Telegram long polling) in the
 * same group commit as the webhooks', publishes what was stored, then calls done exactly
 * once: on the loop, or before this returns when there is nothing to store. events'
 * items, and ch, which points into cfg (referenced here), must stay valid until then. */
struct hub_event_list;
struct hub_channel;
void hub_ingest_events(struct hub_ingest *ing, struct hub_config *cfg,
		       const struct hub_channel *ch, const struct hub_event_list *events,
		       hub_ingest_done_cb *done, void *data);

/* HTTP handlers; route parameters "platform" and "channel". */
void hub_ingest_handle_get(struct hub_ingest *ing, struct hub_http_req *req);
void hub_ingest_handle_post(struct hub_ingest *ing, struct hub_http_req *req);

#endif
