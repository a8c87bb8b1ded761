/* daemon/ctl/ctl_rotate.h - `hubctl rotate-key`: every secret stored in the database (the
 * channels' app secrets, verify tokens and access tokens, the assistants' API keys) sealed
 * again under secrets.master_key, in one transaction; values sealed under
 * secrets.previous_master_key, and values still in clear from before sealing, open as they
 * are. Running hubds that hold both keys keep serving throughout (the channels' change
 * reaches them through NOTIFY hub_channels). */
#ifndef HUB_CTL_ROTATE_H
#define HUB_CTL_ROTATE_H

struct hub_config;

/* argv[0] is "rotate-key". Returns the exit code: 0 done, 1 refused or failed (nothing
 * changed), 2 bad usage. */
int hubctl_rotate_key_main(const struct hub_config *cfg, int argc, char **argv);

#endif
