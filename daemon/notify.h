/* daemon/notify.h - the systemd notification protocol, written directly to $NOTIFY_SOCKET
 * (a unix datagram socket; "@" for the abstract namespace). Without it, calls are no-ops.
 * Knows nothing about what hubd is doing: the caller says READY=1, RELOADING=1 ... */
#ifndef HUB_NOTIFY_H
#define HUB_NOTIFY_H

#include <stdint.h>

/* Sends state ("READY=1\nSTATUS=..."); 0, or a negative errno (logged by the caller). */
int hub_notify(const char *state);
/* The watchdog interval systemd asked for (WATCHDOG_USEC, checked against WATCHDOG_PID),
 * in milliseconds; 0 when none. */
uint64_t hub_notify_watchdog_ms(void);

#endif
