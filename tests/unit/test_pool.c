/* tests/unit/test_pool.c - the memory pool: aligned, zeroed allocations that small and
 * large requests share; arrays grown by doubling keep their items and get zeroed room. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/pool.h"

/* The pool's memory is reused by the allocator: dirty it first, so that a zeroing left out
 * shows. */
static void dirty_heap(void)
{
	for (size_t n = 16; n <= 1 << 16; n *= 2) {
		struct hub_pool pool = HUB_POOL_INIT;

		memset(hub_pool_alloc(&pool, n), 0xa5, n);
		hub_pool_release(&pool);
	}
}

static bool all_zero(const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((const unsigned char *)p)[i])
			return false;
	return true;
}

static void test_allocations_are_aligned_and_zeroed(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;

	(void)state;
	dirty_heap();
	for (size_t n = 0; n < 10000; n = n * 3 + 1) {
		unsigned char *p = hub_pool_alloc(&pool, n);

		assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
		assert_true(all_zero(p, n));
		memset(p, 0xff, n);
	}
	assert_true(all_zero(hub_pool_calloc(&pool, 300, 24), 300 * 24));
	hub_pool_release(&pool);
}

static void test_a_grown_array_keeps_its_items_and_zeroes_the_room(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	uint64_t *items = NULL;
	size_t cap = 0, n = 0;

	(void)state;
	dirty_heap();
	for (uint64_t v = 1; v <= 5000; v++) {
		if (n == cap) {
			items = hub_pool_grow(&pool, items, &cap, 8, sizeof(*items));
			assert_int_equal(cap, n ? 2 * n : 8);
			assert_true(all_zero(items + n, (cap - n) * sizeof(*items)));
		}
		items[n++] = v * 0x9e3779b97f4a7c15u;
	}
	for (size_t i = 0; i < n; i++)
		assert_true(items[i] == (i + 1) * 0x9e3779b97f4a7c15u);
	hub_pool_release(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allocations_are_aligned_and_zeroed),
		cmocka_unit_test(test_a_grown_array_keeps_its_items_and_zeroes_the_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
