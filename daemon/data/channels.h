/* daemon/data/channels.h - the channels provisioned in the database (hubctl channel, later
 * the admin API), read the same way by hubd (live, on NOTIFY hub_channels) and by hubctl.
 * Knows nothing about how the query is run. */
#ifndef HUB_CHANNELS_H
#define HUB_CHANNELS_H

#include <stddef.h>

#include <libpq-fe.h>

#include "lib/channel.h"
#include "lib/pool.h"
#include "lib/secret.h"

/* The columns hub_channels_from_result() reads, of channels c joined with tenants t: for
 * a query of some channels only. */
#define HUB_CHANNELS_COLUMNS                                                              \
	"c.public_id, c.tenant_id, c.kind, c.account_id, c.app_secret, c.verify_token, "  \
	"c.access_token, c.mode, c.enabled AND t.deleted_at IS NULL AND c.deleted_at IS NULL, " \
	"c.web::text "
/* Every channel; one is served when enabled and its tenant not deleted. Secrets stay in
 * memory, never in a log. */
extern const char hub_channels_sql[];

/* The rows of hub_channels_sql as channels (strings in pool, n + 1 zeroed entries), or NULL
 * when res is not its result. Secrets are stored sealed (lib/secret.h, where
 * "channels/<id>/<column>") and opened with kr; a channel one of whose secrets does not open
 * is left out, with a line naming it, the column and why (never a value) appended to
 * errors. *in_clear counts secrets stored unsealed (from before sealing: they are used as
 * they are until `hubctl rotate-key` seals them). */
struct hub_channel *hub_channels_from_result(PGresult *res, const struct hub_keyring *kr,
					     struct hub_pool *pool, size_t *n,
					     struct hub_buf *errors, size_t *in_clear);

/* Seals the secret plain of column of row id of table ("channels" or "channel_ai") for the
 * database under kr's current key (lib/secret.h, where "<table>/<id>/<column>", the place
 * hub_channels_from_result() and the assistant open it from), appending it to out. 0, or
 * -ENOKEY when kr (may be NULL) has no current key. hubctl and the admin API both seal
 * through this. */
int hub_channels_seal(const struct hub_keyring *kr, const char *table, const char *id,
		      const char *column, struct hub_str plain, struct hub_buf *out) HUB_MUSTCHECK;

/* Appends why a secret did not open (hub_secret_open()'s ret) for an error message. */
void hub_channels_secret_error(struct hub_buf *b, int ret, struct hub_str value);

#endif
