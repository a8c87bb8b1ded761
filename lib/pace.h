/* lib/pace.h - keyed rate limits by the generic cell rate algorithm (GCRA, as in ATM and
 * redis-cell): per key one number, the theoretical arrival time of the next send. A send
 * reserves its slot when it asks, so sends that ask together leave one interval apart after
 * the first burst. Time comes from the caller, in any unit of a monotonic clock (the
 * outbox counts microseconds): no clock, no I/O. Knows nothing about what is sent. */
#ifndef HUB_PACE_H
#define HUB_PACE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

struct hub_pace;

struct hub_pace *hub_pace_new(void);
void hub_pace_free(struct hub_pace *p); /* NULL-safe */

/* Reserves one send for key at now under a limit of one send every interval with bursts of
 * up to burst sends; returns how long the send must wait (0: at once). interval 0 is no
 * limit (0, nothing kept). */
uint64_t hub_pace_reserve(struct hub_pace *p, struct hub_str key, uint64_t now,
			  uint64_t interval, unsigned burst);
/* What hub_pace_reserve would return, reserving nothing. */
uint64_t hub_pace_wait(struct hub_pace *p, struct hub_str key, uint64_t now, uint64_t interval,
		       unsigned burst);
/* A limit that refuses instead of delaying: when a request of key fits now (within burst),
 * reserves it and returns 0; else reserves nothing and returns how long until one would
 * fit (> 0). interval 0 is no limit. */
uint64_t hub_pace_admit(struct hub_pace *p, struct hub_str key, uint64_t now,
			uint64_t interval, unsigned burst);
/* Forgets the keys whose every reservation has passed by now (they limit nothing). */
void hub_pace_expire(struct hub_pace *p, uint64_t now);
/* Keys kept. */
size_t hub_pace_size(const struct hub_pace *p);

#endif
