/* lib/backoff.h - how long to wait before trying again: exponential from a base to a cap,
 * jittered so that many retriers (a pool's connections, several instances) spread out
 * instead of retrying in lockstep. Shared by every retry loop of the daemon. No I/O
 * besides the kernel's RNG. */
#ifndef HUB_BACKOFF_H
#define HUB_BACKOFF_H

#include <stdint.h>

/* The delay before retry number `attempt` (1: the first): base_ms doubled attempt-1 times,
 * at most max_ms, then a random point of its upper half [d/2, d]. attempt 0 is read as 1;
 * base_ms 0 gives 0. */
uint64_t hub_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned attempt);

/* The same with the random value given (for tests): rnd picks the point in [d/2, d]. */
uint64_t hub_backoff_ms_with(uint64_t base_ms, uint64_t max_ms, unsigned attempt,
			     uint32_t rnd);

#endif
