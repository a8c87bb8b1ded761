/* lib/backoff.c - see backoff.h. */
#include "lib/backoff.h"

#include "lib/crypto.h"

uint64_t hub_backoff_ms_with(uint64_t base_ms, uint64_t max_ms, unsigned attempt,
			     uint32_t rnd)
{
	uint64_t d = base_ms < max_ms ? base_ms : max_ms;

	for (unsigned i = 1; i < attempt && d < max_ms; i++)
		d = d > max_ms / 2 ? max_ms : d * 2;
	return d / 2 + rnd % (d - d / 2 + 1);
}

uint64_t hub_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned attempt)
{
	uint32_t rnd = 0;

	if (hub_random_bytes(&rnd, sizeof(rnd)) < 0)
		rnd = 0; /* no jitter then: the upper half's start */
	return hub_backoff_ms_with(base_ms, max_ms, attempt, rnd);
}
