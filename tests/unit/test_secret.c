/* tests/unit/test_secret.c - secrets at rest: sealed and opened again; a value opens only
 * for its place and key (another place, an altered or truncated value, an unknown key id);
 * the previous key of a rotation opens its values; bad keys refused without their value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "lib/secret.h"

#define K1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define K2 "f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100"

static struct hub_keyring *ring(const char *cur, const char *prev)
{
	struct hub_keyring *kr = NULL;
	struct hub_err err = HUB_ERR_INIT;

	assert_int_equal(hub_keyring_new(cur, prev, &kr, &err), 0);
	return kr;
}

static void test_seal_then_open(void **state)
{
	struct hub_keyring *kr = ring(K1, NULL);
	struct hub_str where = HUB_STR("channels/acme-wa/app_secret");
	struct hub_buf sealed = HUB_BUF_INIT, plain = HUB_BUF_INIT, again = HUB_BUF_INIT;

	(void)state;
	assert_int_equal(hub_secret_seal(kr, where, HUB_STR("EAAG-secret-token"), &sealed), 0);
	assert_true(hub_secret_sealed(hub_buf_str(&sealed)));
	assert_memory_equal(sealed.p + 4, hub_keyring_id(kr), HUB_SECRET_ID_LEN);
	assert_null(memmem(sealed.p, sealed.len, "secret-token", 12));
	assert_int_equal(hub_secret_open(kr, where, hub_buf_str(&sealed), &plain), 0);
	assert_int_equal(plain.len, 17);
	assert_memory_equal(plain.p, "EAAG-secret-token", 17);
	/* a fresh nonce every time */
	assert_int_equal(hub_secret_seal(kr, where, HUB_STR("EAAG-secret-token"), &again), 0);
	assert_false(sealed.len == again.len && memcmp(sealed.p, again.p, sealed.len) == 0);
	/* an empty value too */
	hub_buf_truncate(&again, 0);
	hub_buf_truncate(&plain, 0);
	assert_int_equal(hub_secret_seal(kr, where, HUB_STR(""), &again), 0);
	assert_int_equal(hub_secret_open(kr, where, hub_buf_str(&again), &plain), 0);
	assert_int_equal(plain.len, 0);
	hub_buf_release(&sealed);
	hub_buf_release(&plain);
	hub_buf_release(&again);
	hub_keyring_free(kr);
}

static void test_opens_only_for_its_place_and_key(void **state)
{
	struct hub_keyring *kr = ring(K1, NULL), *other = ring(K2, NULL), *none = ring(NULL, NULL);
	struct hub_str where = HUB_STR("channels/acme-wa/access_token");
	struct hub_buf s = HUB_BUF_INIT, out = HUB_BUF_INIT;

	(void)state;
	assert_int_equal(hub_secret_seal(kr, where, HUB_STR("token-1234"), &s), 0);
	assert_int_equal(hub_secret_open(kr, HUB_STR("channels/other/access_token"),
					 hub_buf_str(&s), &out), -EBADMSG);
	assert_int_equal(hub_secret_open(other, where, hub_buf_str(&s), &out), -ENOKEY);
	assert_int_equal(hub_secret_open(none, where, hub_buf_str(&s), &out), -ENOKEY);
	assert_int_equal(hub_secret_open(NULL, where, hub_buf_str(&s), &out), -ENOKEY);
	assert_int_equal(hub_secret_seal(none, where, HUB_STR("x"), &out), -ENOKEY);
	/* altered anywhere in the ciphertext or tag, truncated, or not sealed at all */
	for (size_t i = 13; i < s.len; i++) {
		char c = s.p[i];

		s.p[i] = c == 'A' ? 'B' : 'A';
		assert_int_equal(hub_secret_open(kr, where, hub_buf_str(&s), &out), -EBADMSG);
		s.p[i] = c;
	}
	assert_int_equal(hub_secret_open(kr, where, (struct hub_str){ s.p, s.len - 4 }, &out),
			 -EBADMSG);
	assert_int_equal(hub_secret_open(kr, where, (struct hub_str){ s.p, 13 }, &out), -EBADMSG);
	assert_int_equal(hub_secret_open(kr, where, HUB_STR("token-1234"), &out), -EBADMSG);
	assert_false(hub_secret_sealed(HUB_STR("token-1234")));
	assert_int_equal(out.len, 0);
	hub_buf_release(&s);
	hub_keyring_free(kr);
	hub_keyring_free(other);
	hub_keyring_free(none);
}

static void test_rotation_and_bad_keys(void **state)
{
	struct hub_keyring *old = ring(K1, NULL), *both = ring(K2, K1), *kr = NULL;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_str where = HUB_STR("channel_ai/acme-tg/api_key");
	struct hub_buf s = HUB_BUF_INIT, out = HUB_BUF_INIT;

	(void)state;
	assert_int_equal(hub_secret_seal(old, where, HUB_STR("sk-abc"), &s), 0);
	assert_int_equal(hub_secret_open(both, where, hub_buf_str(&s), &out), 0);
	assert_memory_equal(out.p, "sk-abc", 6);
	assert_string_not_equal(hub_keyring_id(both), hub_keyring_id(old));
	assert_int_equal(hub_keyring_new("abc", NULL, &kr, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "64 hex digits"));
	assert_null(strstr(err.msg, "abc"));
	assert_int_equal(hub_keyring_new(K1, K1 "00", &kr, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "previous"));
	assert_int_equal(hub_keyring_new(NULL, K1, &kr, &err), -EINVAL);
	assert_null(kr);
	hub_buf_release(&s);
	hub_buf_release(&out);
	hub_keyring_free(old);
	hub_keyring_free(both);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_then_open),
		cmocka_unit_test(test_opens_only_for_its_place_and_key),
		cmocka_unit_test(test_rotation_and_bad_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
