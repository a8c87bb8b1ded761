/* tests/fuzz/fuzz_instagram.c - adapters/instagram.c's parse_webhook on any body, through
 * hub_adapter_find("instagram") without a channel and with one, and verify() and handshake() on
 * the headers and query of an optional first line "#name=value&..." (`make fuzz-instagram`);
 * properties in event_check.h. */
#include "adapters/adapter.h"
#include "tests/fuzz/event_check.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "instagram";

/* the account of tests/fixtures/instagram/ */
static const struct hub_channel channel = {
	.id = "fuzz-instagram",
	.tenant = "fuzz",
	.kind = HUB_CHANNEL_INSTAGRAM,
	.account_id = "17841471550633446",
	.app_secret = "fuzz-app-secret",
	.verify_token = "fuzz-verify-token",
	.enabled = true,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	event_check_webhook("instagram", &channel, data, size);
	return 0;
}
