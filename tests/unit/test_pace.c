/* tests/unit/test_pace.c - keyed GCRA limits: bursts, then one send per interval; keys
 * apart; no limit; expiry of keys that limit nothing; many keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "lib/pace.h"

static void test_burst_then_one_per_interval(void **state)
{
	struct hub_pace *p = hub_pace_new();
	struct hub_str k = HUB_STR("wa|77011234567");

	(void)state;
	/* a burst of 3 at once, then 6 s apart, reserved when asked */
	for (int i = 0; i < 3; i++)
		assert_int_equal(hub_pace_reserve(p, k, 1000, 6000, 3), 0);
	assert_int_equal(hub_pace_reserve(p, k, 1000, 6000, 3), 6000);
	assert_int_equal(hub_pace_reserve(p, k, 1000, 6000, 3), 12000);
	/* later, the reservations made count: the next slot is 18 s after the start */
	assert_int_equal(hub_pace_reserve(p, k, 10000, 6000, 3), 9000);
	/* after a long pause the burst is whole again */
	for (int i = 0; i < 3; i++)
		assert_int_equal(hub_pace_reserve(p, k, 100000, 6000, 3), 0);
	assert_int_equal(hub_pace_reserve(p, k, 100000, 6000, 3), 6000);
	hub_pace_free(p);
}

static void test_wait_tells_without_reserving(void **state)
{
	struct hub_pace *p = hub_pace_new();
	struct hub_str k = HUB_STR("r|demo-telegram|5127345680");

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(hub_pace_reserve(p, k, 1000, 1000, 3), 0);
	/* asked as often as one likes, the wait stays that of the next slot */
	assert_int_equal(hub_pace_wait(p, k, 1000, 1000, 3), 1000);
	assert_int_equal(hub_pace_wait(p, k, 1000, 1000, 3), 1000);
	assert_int_equal(hub_pace_wait(p, k, 1600, 1000, 3), 400);
	assert_int_equal(hub_pace_reserve(p, k, 1600, 1000, 3), 400);
	assert_int_equal(hub_pace_wait(p, k, 1600, 1000, 3), 1400);
	assert_int_equal(hub_pace_wait(p, k, 1600, 0, 3), 0);
	hub_pace_free(p);
}

static void test_admit_refuses_without_reserving(void **state)
{
	struct hub_pace *p = hub_pace_new();
	struct hub_str k = HUB_STR("demo\nadmin-1");

	(void)state;
	/* a burst of 3, then refused with the wait until one fits; refusals reserve nothing */
	for (int i = 0; i < 3; i++)
		assert_int_equal(hub_pace_admit(p, k, 1000, 500, 3), 0);
	assert_int_equal(hub_pace_admit(p, k, 1000, 500, 3), 500);
	assert_int_equal(hub_pace_admit(p, k, 1200, 500, 3), 300);
	assert_int_equal(hub_pace_admit(p, k, 1500, 500, 3), 0);
	assert_int_equal(hub_pace_admit(p, k, 1500, 500, 3), 500);
	assert_int_equal(hub_pace_admit(p, k, 1500, 0, 3), 0);
	hub_pace_free(p);
}

static void test_keys_are_apart_and_zero_is_no_limit(void **state)
{
	struct hub_pace *p = hub_pace_new();

	(void)state;
	assert_int_equal(hub_pace_reserve(p, HUB_STR("a"), 0, 1000, 1), 0);
	assert_int_equal(hub_pace_reserve(p, HUB_STR("a"), 0, 1000, 1), 1000);
	assert_int_equal(hub_pace_reserve(p, HUB_STR("b"), 0, 1000, 1), 0);
	assert_int_equal(hub_pace_reserve(p, HUB_STR("ab"), 0, 1000, 1), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(hub_pace_reserve(p, HUB_STR("c"), 0, 0, 1), 0);
	assert_int_equal(hub_pace_size(p), 3);
	hub_pace_free(p);
}

static void test_expire_forgets_what_limits_nothing(void **state)
{
	struct hub_pace *p = hub_pace_new();
	char key[32];

	(void)state;
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "tg|%d", i);
		assert_int_equal(hub_pace_reserve(p, hub_str_from(key), 0, 1000, 5), 0);
	}
	assert_int_equal(hub_pace_size(p), 10000);
	/* a second send to each within the burst still goes at once */
	for (int i = 0; i < 10000; i += 7) {
		snprintf(key, sizeof(key), "tg|%d", i);
		assert_int_equal(hub_pace_reserve(p, hub_str_from(key), 500, 1000, 5), 0);
	}
	hub_pace_expire(p, 1000);
	assert_int_equal(hub_pace_size(p), 1429); /* those with a second send: tat 2000 */
	hub_pace_expire(p, 2000);
	assert_int_equal(hub_pace_size(p), 0);
	hub_pace_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_one_per_interval),
		cmocka_unit_test(test_wait_tells_without_reserving),
		cmocka_unit_test(test_admit_refuses_without_reserving),
		cmocka_unit_test(test_keys_are_apart_and_zero_is_no_limit),
		cmocka_unit_test(test_expire_forgets_what_limits_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
