/* daemon/ctl_simulate.h - `hubctl simulate`: builds a webhook body exactly as the platform
 * sends it, signs it with the channel's secret and posts it to a running hubd (blocking;
 * hubctl only). For demos, manual tests and benchmarks. */
#ifndef HUB_CTL_SIMULATE_H
#define HUB_CTL_SIMULATE_H

struct hub_config;

/* argv[0] is "simulate". Returns the exit code: 0 when hubd answered 2xx. */
int hubctl_simulate_main(const struct hub_config *cfg, int argc, char **argv);

#endif
