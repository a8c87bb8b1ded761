/* daemon/data/channels.h - the channels provisioned in the database (hubctl channel, later
 * the admin API), read the same way by hubd (live, on NOTIFY hub_channels) and by hubctl.
 * Knows nothing about how the query is run. */
#ifndef HUB_CHANNELS_H
#define HUB_CHANNELS_H

#include <stddef.h>

#include <libpq-fe.h>

#include "lib/channel.h"
#include "lib/pool.h"

/* Every channel; one is served when enabled and its tenant not deleted. Secrets stay in
 * memory, never in a log. */
extern const char hub_channels_sql[];

/* The rows of hub_channels_sql as channels (strings in pool, n + 1 zeroed entries), or NULL
 * when res is not its result. */
struct hub_channel *hub_channels_from_result(PGresult *res, struct hub_pool *pool, size_t *n);

#endif
