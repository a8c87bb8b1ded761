/* adapters/telegram.h - what only the Telegram adapter has: long polling (getUpdates) for
 * hubs without a public URL. This builds the request and reads the answer; the daemon
 * makes the call, waits and persists the offset. Pure, as every adapter. */
#ifndef HUB_TELEGRAM_H
#define HUB_TELEGRAM_H

#include <stdint.h>

#include "adapters/adapter.h"

/* The getUpdates request, from pool: POST /bot<token>/getUpdates with {"offset":O,
 * "timeout":T,"allowed_updates":["message","edited_message","message_reaction"]} (what
 * parse_webhook serves; reactions come only when asked for). The path holds the token:
 * never log it. timeout_s is the long poll's wait (Telegram holds the request so long when
 * no update comes; the HTTP client's timeout must exceed it). -EINVAL when the channel has
 * no usable token (err never names it). */
int hub_telegram_poll_req(struct hub_pool *pool, const struct hub_channel *ch, int64_t offset,
			  int timeout_s, struct hub_send_req *out, struct hub_err *err)
	HUB_MUSTCHECK;

/* The setWebhook request, from pool: POST /bot<token>/setWebhook with {"url":URL,
 * "secret_token":<the channel's app_secret>,"allowed_updates":[...as getUpdates]}, so that
 * Telegram posts the bot's updates to URL signed with X-Telegram-Bot-Api-Secret-Token.
 * Classify the answer with parse_send_result. -EINVAL for a URL that is not https:// (as
 * Telegram requires) or a channel without a usable token. */
int hub_telegram_webhook_req(struct hub_pool *pool, const struct hub_channel *ch,
			     struct hub_str url, struct hub_send_req *out, struct hub_err *err)
	HUB_MUSTCHECK;

/* A getUpdates answer {"ok":true,"result":[Update, ...]} into events from pool: each Update
 * read as parse_webhook reads a webhook's (a bad one counts in out->bad, the others are
 * kept), and *next_offset = the largest update_id + 1, never lowered (unchanged when there
 * is none). Store the events before persisting it: advancing the offset acknowledges them.
 * -EBADMSG for a body that is not such an answer, {"ok":false,...} too (err carries its
 * description), -EMSGSIZE for one of more than 100 Updates' worth of JSON; classify a
 * non-2xx answer with parse_send_result (429 retry_after, 401). */
int hub_telegram_parse_updates(struct hub_pool *pool, const struct hub_channel *ch,
			       struct hub_str body, struct hub_event_list *out,
			       int64_t *next_offset, struct hub_err *err) HUB_MUSTCHECK;

#endif
