/* tests/fuzz/event_check.h - the properties of what an adapter makes of any webhook body,
 * shared by the adapters' fuzz targets (fuzz_whatsapp.c, fuzz_telegram.c, fuzz_instagram.c,
 * fuzz_tg_updates.c). A broken property aborts (tests/fuzz/fuzz.h). */
#ifndef HUB_EVENT_CHECK_H
#define HUB_EVENT_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/adapter.h"
#include "lib/buf.h"
#include "lib/channel.h"

/* The events of list, made from body for ch (NULL: no channel): kinds and types known,
 * every slice readable and valid UTF-8, timestamps not negative, locations finite, the
 * channel named as given, no more events than bytes, and each event's hub_event_to_json()
 * a JSON object. */
void event_check_list(const struct hub_event_list *list, const struct hub_channel *ch,
		      struct hub_str body);

/* One request through adapter: data is an optional first line "#name=value&..." (the
 * request's headers and query parameters, names matched without case) and the body.
 * verify() passes only with the right signature (Meta: HMAC-SHA256 of the body with
 * app_secret, checked with OpenSSL) or secret token (Telegram), handshake() only with
 * hub.mode=subscribe and the verify token, echoing hub.challenge (1..256 bytes). The body
 * goes through parse_webhook without a channel and with ch, each list checked; a channel
 * only adds the account check: when it passes, both parses agree (result, number of
 * events, bad and ignored items). */
void event_check_webhook(const char *adapter, const struct hub_channel *ch, const uint8_t *data,
			 size_t size);

#endif
