/* tests/unit/test_medialink.c - lib/medialink: a signed link verifies until it expires, and
 * not for another purpose, id, expiry, key or a tampered signature. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/medialink.h"

#define NOW 1700000000

/* Splits "exp=E&sig=S" into E and S (slices of q). */
static void split(struct hub_str q, struct hub_str *exp, struct hub_str *sig)
{
	const char *amp = memchr(q.p, '&', q.len);

	assert_non_null(amp);
	assert_true(hub_str_startswith(q, "exp="));
	*exp = (struct hub_str){ q.p + 4, (size_t)(amp - q.p) - 4 };
	assert_true(hub_str_startswith((struct hub_str){ amp + 1, 4 }, "sig="));
	*sig = (struct hub_str){ amp + 5, (size_t)(q.p + q.len - amp - 5) };
}

static void test_round_trip_and_refusals(void **state)
{
	struct hub_medialink_key key, other;
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_str exp, sig;
	char bad[65];

	(void)state;
	hub_medialink_key_init(&key, HUB_STR("jwt-secret-0123456789"));
	hub_medialink_key_init(&other, HUB_STR("jwt-secret-9876543210"));
	hub_medialink_sign(&key, "msg", 42, NOW + 60, &b);
	split(hub_buf_str(&b), &exp, &sig);
	assert_int_equal(sig.len, 64);
	assert_int_equal(hub_medialink_verify(&key, "msg", 42, exp, sig, NOW), 0);
	assert_int_equal(hub_medialink_verify(&key, "msg", 42, exp, sig, NOW + 60), 0);
	assert_int_equal(hub_medialink_verify(&key, "msg", 42, exp, sig, NOW + 61), -ETIMEDOUT);
	assert_int_equal(hub_medialink_verify(&key, "upload", 42, exp, sig, NOW), -EPERM);
	assert_int_equal(hub_medialink_verify(&key, "msg", 43, exp, sig, NOW), -EPERM);
	assert_int_equal(hub_medialink_verify(&other, "msg", 42, exp, sig, NOW), -EPERM);
	assert_int_equal(hub_medialink_verify(&key, "msg", 42, HUB_STR("1700000061"), sig, NOW),
			 -EPERM);
	memcpy(bad, sig.p, 64);
	bad[64] = '\0';
	bad[10] = bad[10] == '0' ? '1' : '0';
	assert_int_equal(hub_medialink_verify(&key, "msg", 42, exp, hub_str_from(bad), NOW),
			 -EPERM);
	assert_int_equal(hub_medialink_verify(&key, "msg", 42, exp, HUB_STR_NULL, NOW), -EPERM);
	assert_int_equal(hub_medialink_verify(&key, "msg", 42, HUB_STR_NULL, sig, NOW), -EPERM);
	assert_int_equal(hub_medialink_verify(&key, "msg", 42, HUB_STR("-1"), sig, NOW), -EPERM);
	hub_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
