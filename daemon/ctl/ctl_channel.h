/* daemon/ctl/ctl_channel.h - `hubctl channel add|list|enable|disable`: channels provisioned in
 * the database (blocking libpq; hubctl only). Every running hubd picks a change up through
 * NOTIFY hub_channels. Secrets come from files or stdin and are never printed. */
#ifndef HUB_CTL_CHANNEL_H
#define HUB_CTL_CHANNEL_H

#include <stdbool.h>

#include "lib/err.h"
#include "lib/mem.h"
#include "lib/pool.h"

struct hub_config;

/* argv[0] is "channel"; cfg is the file's configuration (database.url, its channels).
 * Returns the exit code: 0 done, 1 refused or failed (nothing changed), 2 bad usage. */
int hubctl_channel_main(const struct hub_config *cfg, int argc, char **argv);

/* The file's snapshot plus the database's channels, as hubd serves them (blocking). 0 and
 * *out (one reference), or a negative errno with err filled (also when a channel's secret
 * does not open). */
int hubctl_channel_snapshot(struct hub_config *cfg, struct hub_config **out,
			    struct hub_err *err) HUB_MUSTCHECK;

/* For the channel commands of other files (ctl_ai.c). what names the command in messages
 * ("channel add"). */
/* A channel's or tenant's id: 1 to 64 of a-z, 0-9, '-' and '_'. */
bool hubctl_valid_id(const char *s);
/* Reads a secret from path ("-": stdin) into *out (pool): 1 to 4096 bytes of UTF-8 without
 * control characters, trailing newlines dropped. 0, or 1 with the reason printed. */
int hubctl_read_secret(const char *what, const char *opt, const char *path,
		       struct hub_pool *pool, const char **out);
/* plain (NULL: *out NULL) sealed for column of row id of table under the config's master
 * key (hub_channels_seal()), into *out (pool). 0, or 1 with the reason printed (no
 * secrets.master_key). */
int hubctl_seal(const struct hub_config *cfg, const char *what, const char *table,
		const char *id, const char *column, const char *plain, struct hub_pool *pool,
		const char **out);

#endif
