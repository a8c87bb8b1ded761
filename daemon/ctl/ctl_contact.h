/* daemon/ctl/ctl_contact.h - `hubctl contact export|erase ID --tenant T`: a contact's privacy
 * rights from the command line, through the SQL functions the admin API uses
 * (hub_contact_export, hub_contact_erase of db/migrations/0015_privacy.sql; blocking libpq,
 * hubctl only). */
#ifndef HUB_CTL_CONTACT_H
#define HUB_CTL_CONTACT_H

struct hub_config;

/* argv[0] is "contact"; cfg gives database.url. export prints the JSON document on stdout;
 * erase prints the counts. Returns the exit code: 0 done, 1 no such contact of the tenant
 * or failed (nothing changed), 2 bad usage. */
int hubctl_contact_main(const struct hub_config *cfg, int argc, char **argv);

#endif
