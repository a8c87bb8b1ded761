/* tests/fuzz/fuzz_tg_updates.c - adapters/telegram.h's hub_telegram_parse_updates (a
 * getUpdates answer) on any body (`make fuzz-tg_updates`). The first byte picks the offset
 * the poller holds; the rest is the body. Besides event_check.h's properties: the offset is
 * never lowered, and ends at the largest update_id (of the Updates with a valid one) + 1,
 * as the header says; with or without a channel the same. */
#include <errno.h>
#include <stdint.h>

#include "adapters/telegram.h"
#include "lib/json.h"
#include "lib/pool.h"
#include "tests/fuzz/event_check.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "tg_updates";

static const struct hub_channel channel = {
	.id = "fuzz-telegram",
	.tenant = "fuzz",
	.kind = HUB_CHANNEL_TELEGRAM,
	.account_id = "7712345678",
	.app_secret = "fuzz-secret_Token-1",
	.access_token = "7712345678:AAfuzz",
	.polling = true,
	.enabled = true,
};

static const int64_t offsets[8] = {
	0, 1, 725000000, 725000001, 1000000000000, INT64_MAX - 1, INT64_MAX, -1,
};

/* What the offset must become: the header's contract, computed without the adapter. */
static int64_t expected_offset(struct hub_str body, int64_t offset)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	int result;

	if (hub_json_parse(&pool, body, 1 << 24, &doc, NULL) < 0)
		goto out;
	result = hub_json_get(&doc, 0, "result");
	for (int u = hub_json_first(&doc, result); u >= 0; u = hub_json_after(&doc, u)) {
		int i = hub_json_get(&doc, u, "update_id");
		int64_t id;

		if (hub_json_int64(&doc, i, &id) == 0 && hub_json_raw(&doc, i).p[0] != '-' &&
		    id >= offset && id < INT64_MAX)
			offset = id + 1;
	}
out:
	hub_pool_release(&pool);
	return offset;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list none = { 0 }, with = { 0 };
	struct hub_err err = HUB_ERR_INIT;
	struct hub_str body;
	int64_t start, off_none, off_with;
	int r_none, r_with;

	if (size < 1)
		return 0;
	start = off_none = off_with = offsets[data[0] % 8];
	body = (struct hub_str){ (const char *)data + 1, size - 1 };

	r_none = hub_telegram_parse_updates(&pool, NULL, body, &none, &off_none, &err);
	fuzz_check(r_none == 0 || r_none == -EBADMSG || r_none == -EMSGSIZE, "%d (%s)", r_none,
		   err.msg);
	fuzz_check(off_none >= start, "offset lowered: %lld -> %lld", (long long)start,
		   (long long)off_none);
	r_with = hub_telegram_parse_updates(&pool, &channel, body, &with, &off_with, &err);
	fuzz_check(r_with == r_none && off_with == off_none && with.n == none.n &&
			   with.bad == none.bad && with.ignored == none.ignored,
		   "a channel changes the parse: %d/%d, %zu/%zu events", r_with, r_none, with.n,
		   none.n);
	if (r_none == 0) {
		event_check_list(&none, NULL, body);
		event_check_list(&with, &channel, body);
		fuzz_check(off_none == expected_offset(body, start),
			   "offset %lld, the largest update_id + 1 is %lld", (long long)off_none,
			   (long long)expected_offset(body, start));
	} else {
		fuzz_check(off_none == start, "a refused answer moved the offset");
	}
	hub_pool_release(&pool);
	return 0;
}
