/* tests/fuzz/fuzz_telegram.c - adapters/telegram.c's parse_webhook (one Update) on any body,
 * through hub_adapter_find("telegram") without a channel and with one, and verify() on
 * the headers of an optional first line "#name=value&..." (`make fuzz-telegram`); properties in event_check.h. */
#include "adapters/adapter.h"
#include "tests/fuzz/event_check.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "telegram";

/* the bot of tests/fixtures/telegram/ */
static const struct hub_channel channel = {
	.id = "fuzz-telegram",
	.tenant = "fuzz",
	.kind = HUB_CHANNEL_TELEGRAM,
	.account_id = "7712345678",
	.app_secret = "fuzz-secret_Token-1",
	.access_token = "7712345678:AAfuzz",
	.enabled = true,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	event_check_webhook("telegram", &channel, data, size);
	return 0;
}
