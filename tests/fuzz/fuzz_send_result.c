/* tests/fuzz/fuzz_send_result.c - each adapter's parse_send_result (the platform's answer to
 * a send) on any answer (`make fuzz-send_result`). Input: byte 0 picks the adapter
 * (whatsapp, telegram, instagram), bytes 1-2 the HTTP status (big-endian, mod 1000), byte 3
 * the length of the Retry-After header (255: none) that follows, then the body. Properties:
 * always 0 and a known verdict; OK carries no error, anything else an error code; the error
 * is valid UTF-8 within HUB_SEND_ERROR_MAX bytes and starts with the code; a failure has no
 * message id; waits are not negative; no answer, 408, 429 and 5xx are never taken for an
 * acceptance; every slice is readable. */
#include <string.h>

#include "adapters/adapter.h"
#include "lib/json.h"
#include "lib/pool.h"
#include "lib/utf8.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "send_result";

static const char *const adapters[] = { "whatsapp", "telegram", "instagram" };

static void check_str(struct hub_str s, const char *what)
{
	fuzz_check(s.len == 0 || s.p != NULL, "%s: %zu bytes at NULL", what, s.len);
	fuzz_check(hub_utf8_valid(s.p, s.len), "%s is not UTF-8", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct hub_adapter *a;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_send_result r;
	struct hub_str retry_after = HUB_STR_NULL, body;
	int status;
	size_t at = 4;

	if (size < 4)
		return 0;
	a = hub_adapter_find(adapters[data[0] % 3]);
	status = ((data[1] << 8) | data[2]) % 1000;
	if (data[3] != 255) {
		if ((size_t)data[3] > size - 4)
			return 0;
		retry_after = (struct hub_str){ (const char *)data + 4, data[3] };
		at += data[3];
	}
	body = (struct hub_str){ (const char *)data + at, size - at };

	memset(&r, 0xa5, sizeof(r)); /* always filled */
	fuzz_check(a->parse_send_result(&pool, status, retry_after, body, &r) == 0, "status %d",
		   status);
	fuzz_check(r.verdict >= HUB_SEND_OK && r.verdict <= HUB_SEND_WINDOW, "verdict %d",
		   (int)r.verdict);
	check_str(r.external_id, "external_id");
	check_str(r.error_code, "error_code");
	check_str(r.error, "error");
	fuzz_check(r.retry_after_ms >= 0, "retry_after_ms %lld", (long long)r.retry_after_ms);
	fuzz_check(r.error.len <= HUB_SEND_ERROR_MAX, "error of %zu bytes", r.error.len);
	if (r.verdict == HUB_SEND_OK) {
		fuzz_check(r.error.len == 0 && r.error_code.len == 0, "OK with an error");
	} else {
		fuzz_check(r.error_code.len > 0 && r.error.len > 0, "%d without an error",
			   (int)r.verdict);
		fuzz_check(r.external_id.len == 0, "a failure with a message id");
		/* "<code> <what>", cut on a character boundary */
		fuzz_check(r.error.len >= r.error_code.len &&
				   memcmp(r.error.p, r.error_code.p, r.error_code.len) == 0,
			   "error \"%.*s\" does not start with its code \"%.*s\"",
			   HUB_STR_FMT(r.error), HUB_STR_FMT(r.error_code));
	}
	if (status == 0 || status == 408 || status == 429 || status >= 500)
		fuzz_check(r.verdict != HUB_SEND_OK, "status %d accepted", status);
	hub_pool_release(&pool);
	return 0;
}
