/* Room daemon/outbound/: what takes replies out to the customers: the outbox sender
 * (outbox.h). May call net/ (the HTTP client), data/, core/, adapters/ and config/; knows
 * nothing of inbound/ or inbox/ (it meets them only in the database and through publish). */
/* daemon/outbound/outbox.h - delivers the outbox: rows claimed under a lease with FOR
 * UPDATE SKIP LOCKED (db/migrations/0007_outbound.sql; several instances may drain one
 * outbox, one conversation's messages leave in order), woken by NOTIFY hub_outbox and by a
 * timer for the next due retry; each message built by its platform's adapter, sent with
 * the HTTP client, its answer classified by the adapter: accepted (the message takes the
 * platform's id), retried with exponential backoff and jitter (network errors, 5xx, 429,
 * the platform's Retry-After or retry_after), or failed with the platform's reason.
 * Texts over a platform's limit are split into messages of their own before sending; sends
 * are paced within each platform's rates per account and per recipient.
 * Knows nothing about HTTP servers or websockets: events go to the publish callback. */
#ifndef HUB_OUTBOX_H
#define HUB_OUTBOX_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "daemon/core/publish.h"
#include "lib/buf.h"
#include "lib/err.h"

struct hub_outbox;
struct hub_store;
struct hub_httpc;
struct hub_config;
struct hub_metrics;


/* store and httpc must outlive the outbox (close them before hub_outbox_free), metrics
 * too (it counts hub_outbound_sends_total{platform,result}, hub_outbound_paced_total
 * {platform} and reports the gauge hub_outbound_in_flight). Listens for NOTIFY hub_outbox;
 * claims nothing before the first hub_outbox_set_config. 0 or a negative errno with err
 * filled. */
int hub_outbox_new(uv_loop_t *loop, struct hub_store *store, struct hub_httpc *httpc,
		   struct hub_metrics *metrics, hub_publish_fn *publish, void *data,
		   struct hub_outbox **out, struct hub_err *err) HUB_MUSTCHECK;
/* The snapshot (settings and every channel, the database's too) for the messages claimed
 * from now on; referenced. The first one starts the claiming. */
void hub_outbox_set_config(struct hub_outbox *ob, struct hub_config *cfg);
/* Claims nothing more. The messages in flight go on until their HTTP call and their
 * record end; closing the HTTP client and then the store cancels them (a row whose result
 * was not recorded comes back when its lease ends). NULL-safe. */
void hub_outbox_stop(struct hub_outbox *ob);
/* After hub_outbox_stop and the close of the HTTP client and the store: frees ob once its
 * timer is closed (the loop must run after). NULL-safe. */
void hub_outbox_free(struct hub_outbox *ob);

#endif
