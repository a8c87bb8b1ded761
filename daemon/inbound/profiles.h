/* daemon/inbound/profiles.h - names for Instagram senders: the lookups that a new
 * Instagram identity queues (db/migrations/0009_profiles.sql) are claimed under a lease
 * (several instances share them), asked of the User Profile API through the HTTP client
 * with the channel's token, and applied as a profile name from a webhook would be
 * (contact.updated to the agents). Woken by NOTIFY hub_profiles and by a timer for the next
 * retry. A failure never touches the message, stored before: the IGSID stays shown. A
 * channel without an access token is never asked. Knows nothing about websockets. */
#ifndef HUB_PROFILES_H
#define HUB_PROFILES_H

#include <stdint.h>

#include <uv.h>

#include "daemon/core/publish.h"
#include "lib/buf.h"
#include "lib/err.h"

struct hub_profiles;
struct hub_store;
struct hub_httpc;
struct hub_config;


/* store and httpc must outlive it (close them before hub_profiles_free). Claims nothing
 * before the first hub_profiles_set_config. */
int hub_profiles_new(uv_loop_t *loop, struct hub_store *store, struct hub_httpc *httpc,
		     hub_publish_fn *publish, void *data, struct hub_profiles **out,
		     struct hub_err *err) HUB_MUSTCHECK;
/* The snapshot (every channel) for the lookups claimed from now on; referenced. */
void hub_profiles_set_config(struct hub_profiles *pr, struct hub_config *cfg);
/* Claims nothing more (lookups in flight are cancelled with the client and the store; their
 * leases bring them back). NULL-safe. */
void hub_profiles_stop(struct hub_profiles *pr);
/* After hub_profiles_stop and the close of the client and the store; the loop must run
 * once more. NULL-safe. */
void hub_profiles_free(struct hub_profiles *pr);

#endif
