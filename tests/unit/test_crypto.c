/* tests/unit/test_crypto.c - the secret comparison (equal only when equal, whatever the
 * lengths) and HMAC-SHA256 against RFC 4231's vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/crypto.h"

static void test_a_secret_equals_only_itself(void **state)
{
	(void)state;
	assert_true(hub_secret_equal(HUB_STR("tg-0123456789abcdef"), "tg-0123456789abcdef"));
	assert_true(hub_secret_equal(HUB_STR(""), ""));
	assert_true(hub_secret_equal(HUB_STR_NULL, ""));
	/* one byte off, at either end; a prefix; a longer one; empty against not */
	assert_false(hub_secret_equal(HUB_STR("tg-0123456789abcdeF"), "tg-0123456789abcdef"));
	assert_false(hub_secret_equal(HUB_STR("Tg-0123456789abcdef"), "tg-0123456789abcdef"));
	assert_false(hub_secret_equal(HUB_STR("tg-0123456789abcde"), "tg-0123456789abcdef"));
	assert_false(hub_secret_equal(HUB_STR("tg-0123456789abcdef0"), "tg-0123456789abcdef"));
	assert_false(hub_secret_equal(HUB_STR(""), "tg-0123456789abcdef"));
	assert_false(hub_secret_equal(HUB_STR_NULL, "x"));
	assert_false(hub_secret_equal(HUB_STR("x"), ""));
	/* a NUL inside what was given is not the end of it */
	assert_false(hub_secret_equal((struct hub_str){ "ab\0c", 4 }, "ab"));
}

static void test_hmac_sha256_gives_rfc_4231s_digests(void **state)
{
	static const unsigned char key1[20] = {
		0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
		0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
	};
	unsigned char out[HUB_SHA256_LEN], want[HUB_SHA256_LEN];

	(void)state;
	/* test case 1 */
	hub_hmac_sha256((struct hub_str){ (const char *)key1, sizeof(key1) }, HUB_STR("Hi There"),
			out);
	assert_int_equal(hub_hex_decode(HUB_STR("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da7"
						"26e9376c2e32cff7"), want, sizeof(want)), 0);
	assert_memory_equal(out, want, sizeof(out));
	/* test case 2: a key shorter than the data */
	hub_hmac_sha256(HUB_STR("Jefe"), HUB_STR("what do ya want for nothing?"), out);
	assert_int_equal(hub_hex_decode(HUB_STR("5bdcc146bf60754e6a042426089575c75a003f089d273983"
						"9dec58b964ec3843"), want, sizeof(want)), 0);
	assert_memory_equal(out, want, sizeof(out));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_secret_equals_only_itself),
		cmocka_unit_test(test_hmac_sha256_gives_rfc_4231s_digests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
