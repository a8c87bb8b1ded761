/* tests/fuzz/fuzz_whatsapp.c - adapters/whatsapp.c's parse_webhook on any body, through
 * hub_adapter_find("whatsapp") without a channel and with one, and verify() and handshake() on
 * the headers and query of an optional first line "#name=value&..." (`make fuzz-whatsapp`);
 * properties in event_check.h. A slow input (worse than linear in the body) is a -timeout
 * failure. */
#include "adapters/adapter.h"
#include "tests/fuzz/event_check.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "whatsapp";

/* the account of tests/fixtures/whatsapp/ */
static const struct hub_channel channel = {
	.id = "fuzz-whatsapp",
	.tenant = "fuzz",
	.kind = HUB_CHANNEL_WHATSAPP,
	.account_id = "106540352242922",
	.app_secret = "fuzz-app-secret",
	.verify_token = "fuzz-verify-token",
	.enabled = true,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	event_check_webhook("whatsapp", &channel, data, size);
	return 0;
}
