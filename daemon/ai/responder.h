/* Room daemon/ai/: the AI responder's I/O (responder.h): when to answer, the provider's
 * HTTP call and the answer's record. The privacy pipeline and the dialog rules live in the
 * pure assistant/ room; this one may call net/ (the HTTP client), data/, core/, assistant/,
 * anonymizer/ and config/, and knows nothing of inbound/, inbox/ or outbound/ (it meets
 * them in the database: customer messages queue answers from a trigger, answers go out
 * through the outbox). */
/* daemon/ai/responder.h - answers customers for the channels whose assistant is on
 * (db/migrations/0010_assistant.sql). A customer's message in such a conversation queues an
 * answer, due after the channel's quiet period (later messages move it: three quick
 * messages are one answer). Due answers are claimed under a lease and a token (SKIP
 * LOCKED: several instances share them; only the current token's holder may store an
 * answer), woken by NOTIFY hub_ai. For each: the context (settings, contact, history) is
 * read; a customer asking for a person hands the conversation over at once; else the
 * request is built by assistant/ (pseudonymized with one vault seeded with the contact,
 * guarded), the exact body is checked once more and sent to the provider; the answer's
 * markers are restored, it is cut to the channel's length, the disclosure goes first when
 * the contact never had it, and one transaction stores the message (author ai) with its
 * outbox row, the disclosure record and the exchange's record. Failures are retried with
 * backoff and then hand the conversation over, as a guard block does.
 * Limits: requests per tenant and per provider at once, a bounded number of claimed
 * answers, and a breaker per provider (failures in a row stop requests to it for a while:
 * the conversations go to people). Nothing here waits on a provider but its own jobs. */
#ifndef HUB_AI_RESPONDER_H
#define HUB_AI_RESPONDER_H

#include <uv.h>

#include "daemon/core/publish.h"
#include "lib/err.h"

struct hub_responder;
struct hub_store;
struct hub_httpc;
struct hub_config;
struct hub_metrics;

/* store, httpc and metrics must outlive the responder (close the first two before
 * hub_responder_free). Listens for NOTIFY hub_ai; claims nothing before the first
 * hub_responder_set_config. 0 or a negative errno with err filled. */
int hub_responder_new(uv_loop_t *loop, struct hub_store *store, struct hub_httpc *httpc,
		      struct hub_metrics *metrics, hub_publish_fn *publish, void *data,
		      struct hub_responder **out, struct hub_err *err) HUB_MUSTCHECK;
/* The settings (assistant.*) for what is claimed from now on; referenced. */
void hub_responder_set_config(struct hub_responder *r, struct hub_config *cfg);
/* Claims nothing more; answers being made end with the close of the HTTP client and the
 * store (their rows come back when their leases end). NULL-safe. */
void hub_responder_stop(struct hub_responder *r);
/* After hub_responder_stop and the close of the HTTP client and the store: frees r once
 * its timer is closed (the loop must run after). NULL-safe. */
void hub_responder_free(struct hub_responder *r);

#endif
