/* tests/unit/test_backoff.c - retry delays: doubling from the base to the cap, each in the
 * upper half of its step, spread by the random value; edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/backoff.h"

static void test_doubles_to_the_cap_in_the_upper_half(void **state)
{
	(void)state;
	/* the top of each step (rnd picks the largest point) */
	assert_int_equal(hub_backoff_ms_with(100, 1000, 1, 50), 100);
	assert_int_equal(hub_backoff_ms_with(100, 1000, 2, 100), 200);
	assert_int_equal(hub_backoff_ms_with(100, 1000, 3, 200), 400);
	assert_int_equal(hub_backoff_ms_with(100, 1000, 4, 400), 800);
	assert_int_equal(hub_backoff_ms_with(100, 1000, 5, 500), 1000);
	assert_int_equal(hub_backoff_ms_with(100, 1000, 500, 500), 1000);
	/* the bottom of each step */
	assert_int_equal(hub_backoff_ms_with(100, 1000, 1, 0), 50);
	assert_int_equal(hub_backoff_ms_with(100, 1000, 9, 0), 500);
	/* attempt 0 is the first; a base above the cap is the cap */
	assert_int_equal(hub_backoff_ms_with(100, 1000, 0, 50), 100);
	assert_int_equal(hub_backoff_ms_with(5000, 1000, 1, 500), 1000);
	assert_int_equal(hub_backoff_ms_with(0, 1000, 3, 7), 0);
	/* no overflow near the top of the range */
	assert_true(hub_backoff_ms_with(UINT64_MAX / 2, UINT64_MAX, 70, 0) >= UINT64_MAX / 4);
}

static void test_random_delays_spread_over_the_upper_half(void **state)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	(void)state;
	for (int i = 0; i < 2000; i++) {
		uint64_t d = hub_backoff_ms(100, 1000, 4);

		assert_true(d >= 400 && d <= 800);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	/* 2000 draws over 401 values: both ends of the range are nearly reached */
	assert_true(lo < 420 && hi > 780);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doubles_to_the_cap_in_the_upper_half),
		cmocka_unit_test(test_random_delays_spread_over_the_upper_half),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
