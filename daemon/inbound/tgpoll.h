/* daemon/inbound/tgpoll.h - Telegram long polling for the channels in mode polling (hubs
 * without a public URL): per bot, getUpdates through the HTTP client, the updates stored by
 * ingest (the same group commit, dedupe and events as webhooks), then the offset moved on
 * in PostgreSQL, so an update is acknowledged only once stored; a lease in the database
 * (db/migrations/0008_polling.sql) lets one instance poll a bot at a time and another take
 * over when it dies. 409 (a webhook is set, or another poller) and 429 (retry_after) wait
 * as PLATFORMS.md says. Knows nothing about websockets or the outbox. */
#ifndef HUB_TGPOLL_H
#define HUB_TGPOLL_H

#include <uv.h>

#include "lib/err.h"

struct hub_tgpoll;
struct hub_store;
struct hub_httpc;
struct hub_ingest;
struct hub_config;

/* store, httpc and ingest must outlive it (close the client and the store before
 * hub_tgpoll_free). Polls nothing before the first hub_tgpoll_set_config. */
int hub_tgpoll_new(uv_loop_t *loop, struct hub_store *store, struct hub_httpc *httpc,
		   struct hub_ingest *ingest, struct hub_tgpoll **out,
		   struct hub_err *err) HUB_MUSTCHECK;
/* The snapshot (every channel, the database's too): a poller starts for each enabled
 * Telegram channel in mode polling and stops (its lease released) for one that is no
 * longer. */
void hub_tgpoll_set_config(struct hub_tgpoll *tp, struct hub_config *cfg);
/* Polls nothing more: releases the leases it holds; the polls in flight are cancelled when
 * the HTTP client closes. NULL-safe. */
void hub_tgpoll_stop(struct hub_tgpoll *tp);
/* After hub_tgpoll_stop and the close of the HTTP client and the store: frees tp once its
 * timers are closed (the loop must run after). NULL-safe. */
void hub_tgpoll_free(struct hub_tgpoll *tp);

#endif
