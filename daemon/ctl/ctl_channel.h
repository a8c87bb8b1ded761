/* daemon/ctl/ctl_channel.h - `hubctl channel add|list|enable|disable`: channels provisioned in
 * the database (blocking libpq; hubctl only). Every running hubd picks a change up through
 * NOTIFY hub_channels. Secrets come from files or stdin and are never printed. */
#ifndef HUB_CTL_CHANNEL_H
#define HUB_CTL_CHANNEL_H

#include "lib/err.h"
#include "lib/mem.h"

struct hub_config;

/* argv[0] is "channel"; cfg is the file's configuration (database.url, its channels).
 * Returns the exit code: 0 done, 1 refused or failed (nothing changed), 2 bad usage. */
int hubctl_channel_main(const struct hub_config *cfg, int argc, char **argv);

/* The file's snapshot plus the database's channels, as hubd serves them (blocking). 0 and
 * *out (one reference), or a negative errno with err filled. */
int hubctl_channel_snapshot(struct hub_config *cfg, struct hub_config **out,
			    struct hub_err *err) HUB_MUSTCHECK;

#endif
