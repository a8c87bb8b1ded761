/* daemon/admin/privacy.h - a tenant's deletion (DELETE /api/v1/tenant) and the background
 * job that keeps the privacy promises: the data of a tenant deleted privacy.purge_after_s
 * ago is removed, and the event log, ingest_keys and the platforms' status history are
 * pruned past their retention (config retention.*). The job runs every privacy.interval_ms
 * on a libuv timer, one asynchronous statement at a time (db/migrations/0015_privacy.sql:
 * hub_privacy_purge, hub_privacy_prune), each removing at most privacy.batch rows in its own
 * short transaction, and never blocks the loop. Knows nothing about websockets. */
#ifndef HUB_ADMIN_PRIVACY_H
#define HUB_ADMIN_PRIVACY_H

#include <uv.h>

#include "lib/err.h"

struct hub_privacy;
struct hub_store;
struct hub_api;
struct hub_contacts;
struct hub_http_req;

struct hub_privacy_opts {
	int purge_after_s; /* privacy.purge_after_s */
	int interval_ms;   /* privacy.interval_ms */
	int batch;         /* privacy.batch */
	int events_s;      /* retention.events_s; 0: kept */
	int ingest_keys_s; /* retention.ingest_keys_s; 0: kept */
	int statuses_s;    /* retention.statuses_s; 0: kept */
};

/* store, api and contacts must outlive it. The first round starts after one interval. */
int hub_privacy_new(uv_loop_t *loop, struct hub_store *store, struct hub_api *api,
		    struct hub_contacts *contacts, const struct hub_privacy_opts *opts,
		    struct hub_privacy **out) HUB_MUSTCHECK;
/* New options for the next round (SIGHUP). */
void hub_privacy_set_opts(struct hub_privacy *p, const struct hub_privacy_opts *opts);
/* Stops the timer and starts no more statements (a running one ends by itself); the loop
 * must run once more before hub_privacy_free. Idempotent, NULL-safe. */
void hub_privacy_stop(struct hub_privacy *p);
void hub_privacy_free(struct hub_privacy *p); /* NULL-safe; after stop and a loop run */

/* DELETE /api/v1/tenant (admin): the token's tenant is deleted now (its channels stop
 * answering webhooks on every instance) and purged after privacy.purge_after_s →
 * {"tenant","deleted_at","purge_at","channels"}. */
void hub_privacy_handle_tenant_delete(struct hub_privacy *p, struct hub_http_req *req);

#endif
