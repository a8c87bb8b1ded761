/* daemon/ctl/ctl_revoke.h - `hubctl revoke --tenant T [--user U]`: revokes the access tokens
 * of a tenant or of one user issued until now (token_revocations, blocking libpq; hubctl
 * only). Every running hubd refuses them from then on and closes the sockets holding one
 * (NOTIFY hub_revocations). */
#ifndef HUB_CTL_REVOKE_H
#define HUB_CTL_REVOKE_H

struct hub_config;

/* argv[0] is "revoke"; cfg gives database.url. Returns the exit code: 0 done, 1 refused or
 * failed (nothing changed), 2 bad usage. */
int hubctl_revoke_main(const struct hub_config *cfg, int argc, char **argv);

#endif
