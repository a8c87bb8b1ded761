/* daemon/ctl/ctl_simulate.h - `hubctl simulate`: builds a webhook body exactly as the platform
 * sends it (WhatsApp, Telegram, Instagram), authenticates it with the channel's secret and
 * posts it to a running hubd (blocking; hubctl only). For demos, manual tests, benchmarks. */
#ifndef HUB_CTL_SIMULATE_H
#define HUB_CTL_SIMULATE_H

struct hub_config;

/* argv[0] is "simulate": `simulate whatsapp|telegram|instagram CHANNEL --from ID
 * [--name NAME] [--url URL] TEXT`. CHANNEL is looked up in cfg (the file), then in the
 * database (hubctl channel add). Prints "<external id> <status> <body>". Returns the exit
 * code: 0 when hubd answered 2xx, 1 otherwise, 2 bad usage. */
int hubctl_simulate_main(struct hub_config *cfg, int argc, char **argv);

#endif
