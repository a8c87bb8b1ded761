/* assistant/assistant.h - one exchange with an OpenAI-compatible chat completions provider
 * (POST {base}/v1/chat/completions), with the privacy pipeline around it: every text that
 * goes into the request is pseudonymized with one vault seeded with what the hub knows
 * about the contact, the request body is guarded (nothing personal may remain, or there is
 * no body), the provider's answer is read and classified, and its markers are restored
 * from the same vault. Pure: no I/O, no clock; knows nothing about HTTP connections, the
 * database, channels or when to answer. The vault lives in the exchange, in memory only. */
#ifndef HUB_AI_ASSISTANT_H
#define HUB_AI_ASSISTANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anonymizer/anon.h"
#include "assistant/dialog.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/mem.h"
#include "lib/pool.h"

/* Bounds of one request: more turns or a longer body is -EMSGSIZE. */
#define HUB_AI_TURNS_MAX 200
#define HUB_AI_BODY_MAX (1u << 20)

enum hub_ai_role {
	HUB_AI_CUSTOMER = 1, /* the contact: sent as "user" */
	HUB_AI_AGENT,        /* a person of the company: sent as "assistant" */
	HUB_AI_ASSISTANT,    /* an earlier answer of the assistant: "assistant" */
};

/* One message of the conversation, as stored (not pseudonymized). A message without text
 * (a photo) may be given as a short description ("(photo)"); empty turns are left out. */
struct hub_ai_turn {
	enum hub_ai_role role;
	struct hub_str text;
};

/* What the hub knows about the contact (borrowed; any field may be empty). Each value is
 * given to the vault before any text is read, so it is hidden in every written form even
 * where the detectors would not see it: names (each word, inflected, in Latin letters),
 * phones (any format), e-mails (any case), usernames (as written, without a leading "@";
 * one of letters only is also looked for as a name). */
struct hub_ai_contact {
	struct hub_str display_name;        /* the CRM's name of the contact */
	const struct hub_str *profile_names; /* the messengers' profile names */
	size_t nprofile_names;
	const struct hub_str *usernames; /* Telegram/Instagram usernames */
	size_t nusernames;
	const struct hub_str *phones; /* E.164 or as written */
	size_t nphones;
	const struct hub_str *emails;
	size_t nemails;
};

/* One channel's assistant settings (borrowed). */
struct hub_ai_settings {
	/* "https://api.openai.com", ".../v1" or the whole ".../v1/chat/completions"; http or
	 * https, no query. */
	struct hub_str base_url;
	struct hub_str model;   /* "gpt-4o-mini"; required */
	struct hub_str api_key; /* a secret: only ever in hub_ai_http_req.authorization; empty:
				 * no Authorization header (a local server) */
	struct hub_str system_prompt; /* the company's instructions */
	struct hub_str knowledge;     /* the company's FAQ, prices, hours; may be empty */
	double temperature;           /* 0..2; sent when >= 0 */
	int max_tokens;               /* sent when > 0 */
};

/* Everything one request is made of (borrowed for the call). */
struct hub_ai_prompt {
	const struct hub_ai_settings *settings;
	const struct hub_ai_contact *contact; /* may be NULL */
	/* The names of the company's people who wrote turns of the history (their own names
	 * are not sent either). May be NULL. */
	const struct hub_str *agent_names;
	size_t nagent_names;
	const struct hub_ai_turn *turns; /* the history window, oldest first */
	size_t nturns;
	/* TEST ONLY - never set outside tests. A text that pseudonymization leaves as it is:
	 * each span of the history and the settings' texts whose text equals it (ASCII
	 * case-insensitively) keeps its text instead of its marker, and a known value of the
	 * contact equal to it is not given to the vault. It lets a test prove that the guard
	 * refuses a request in which pseudonymization failed: hub_ai_exchange_new() must then
	 * return -EACCES. */
	struct hub_str test_leave_clear;
};

/* The HTTP request to send. Strings are in the pool given to hub_ai_exchange_new(). */
struct hub_ai_http_req {
	const char *method;           /* "POST" */
	const char *url;              /* base_url + "/v1/chat/completions" */
	struct hub_str authorization; /* "Bearer <key>", or empty: a secret, never log it */
	struct hub_str content_type;  /* "application/json" */
	/* The exact bytes the guard passed: send them as they are (hub_ai_exchange_check()
	 * re-checks any bytes against the exchange's vault). */
	struct hub_str body;
};

/* One request's privacy state (opaque): the vault, from the request's building to the
 * restoring of its answer. Not thread-safe; never stored, never logged. */
struct hub_ai_exchange;

/* Builds one request from prompt, guarded. The body is
 *   {"model":M,"messages":[{"role":"system","content":S},{"role":"user"|"assistant",
 *   "content":T}...],"temperature":F,"max_tokens":N,"stream":false}
 * S is the system prompt, then a fixed note for the model (personal data appears as
 * markers like [PHONE_n], to be copied as they are; replies of the company in the
 * history may be its staff's), then "Company information:" and the knowledge text: one
 * system message, first, since several chat templates (llama.cpp, vLLM, Ollama) refuse a
 * second or a later one. Customer turns are "user"; the agents' and the assistant's turns
 * are both "assistant", without a prefix: to the customer both are the company speaking,
 * and a model copies a prefix of its own turns into its answers. Consecutive turns of one
 * role are joined into one message (with a blank line), as strict templates want roles to
 * alternate. temperature and max_tokens are left out when not set.
 * Before anything is read, the vault is seeded with the contact and agent_names; then
 * the system prompt, the knowledge text and every turn are pseudonymized with that one
 * vault (the same value has the same marker everywhere). Then the guard
 * (hub_ai_exchange_check()) reads the exact bytes of req->body, which the caller sends as
 * they are, for the vault's values, and each of its strings, decoded as the provider reads
 * it, for the vault's values and anything the detectors find: when something remains, the
 * request is refused.
 * anon must outlive the exchange. Returns 0 with *out (free it with
 * hub_ai_exchange_free()) and *req (from pool); or, with *out NULL and *req zeroed,
 * -EINVAL (no customer turn; no model; a base URL that is not http(s) or has a query; an
 * API key with characters a header cannot carry; an unknown role), -EMSGSIZE (over
 * HUB_AI_TURNS_MAX turns or HUB_AI_BODY_MAX bytes, or a text over HUB_ANON_TEXT_MAX), or
 * -EACCES when the guard refused: err then names what kind of data remained (never the
 * value) and nothing may be sent. err never holds the key or any text. */
int hub_ai_exchange_new(const struct hub_anon *anon, struct hub_pool *pool,
			const struct hub_ai_prompt *prompt, struct hub_ai_exchange **out,
			struct hub_ai_http_req *req, struct hub_err *err) HUB_MUSTCHECK;

/* NULL-safe. */
void hub_ai_exchange_free(struct hub_ai_exchange *ex);

/* The guard, over bytes about to leave (the body, right before it is written): 0 when
 * nothing personal is in them, else -EACCES (err names the kind of data, never the
 * value). Personal means a value of the vault, in any written form, in the bytes or in a
 * decoded JSON string of them, or anything the anonymizer's detectors find in a decoded
 * string (in the bytes themselves when they are not JSON). The detectors do not read the
 * raw JSON: its quotes and colons are context they take names from ("content":"Добрый). */
int hub_ai_exchange_check(const struct hub_ai_exchange *ex, struct hub_str bytes,
			  struct hub_err *err) HUB_MUSTCHECK;

/* Distinct values that got a marker in this exchange (for metrics). */
size_t hub_ai_exchange_markers(const struct hub_ai_exchange *ex);

/* The provider's text (content of hub_ai_answer) with its markers restored from the
 * exchange's vault ("[PHONE_1]", "[phone 1]", "PHONE_1" as the anonymizer reads them) into
 * *out (pool, NUL-terminated). A marker the vault does not know is removed, never guessed:
 * with brackets, parentheses or quotes directly around it, and with the space before it
 * when what follows is punctuation or space ("звоните [PHONE_9]." -> "звоните."). *dropped
 * (may be NULL) gets how many were removed. */
void hub_ai_exchange_restore(const struct hub_ai_exchange *ex, struct hub_pool *pool,
			     struct hub_str text, struct hub_str *out, size_t *dropped);

/* The language to greet the customer in: hub_ai_lang_of_texts() over the customer turns. */
enum hub_ai_lang hub_ai_turns_lang(const struct hub_ai_turn *turns, size_t n);

enum hub_ai_verdict {
	HUB_AI_OK = 0,     /* content holds the answer */
	HUB_AI_RETRY,      /* no answer (timeout, reset), 408, 429 (not over quota), 5xx:
			    * try again after retry_after_ms when set, else after a backoff */
	HUB_AI_PERMANENT,  /* another 4xx, or 429 insufficient_quota: the same request will
			    * fail again */
	HUB_AI_KEY,        /* 401: the API key is wrong or revoked; an admin must act */
	HUB_AI_BAD_ANSWER, /* 2xx that is not the API's JSON, or holds no text (empty content,
			    * a refusal, a content filter, a tool call): nothing to send */
};

/* The provider's answer. Slices are in the body or the pool. */
struct hub_ai_answer {
	enum hub_ai_verdict verdict;
	/* OK: choices[0].message.content (a string, or the text parts of an array), without
	 * a leading <think>...</think> section; still with markers. */
	struct hub_str content;
	struct hub_str finish_reason;             /* "stop", "length", ... or empty */
	int64_t prompt_tokens, completion_tokens; /* usage; -1 when not reported */
	int64_t retry_after_ms;                   /* RETRY: the Retry-After asked for, or 0 */
	/* Safe to log: the status and the provider's error code or type ("429
	 * rate_limit_exceeded", "0" for no answer, "200 no_content"); empty on OK. */
	struct hub_str error_code;
	/* For admins: "<status> <the provider's message>" (at most HUB_AI_ERROR_MAX bytes),
	 * with the API key and anything shaped like a key ("sk-...") blanked out. It may quote
	 * the (pseudonymized) request: show it, do not log it. Empty on OK. */
	struct hub_str error;
};

#define HUB_AI_ERROR_MAX 300

/* Reads the answer to a request: http_status (0 when none came: connection failed or
 * timed out), the Retry-After header (seconds) or HUB_STR_NULL, the body, and the API
 * key that went with the request (only to blank it out of error messages). OpenAI's
 * errors are {"error":{"message","type","param","code"}}; a bare {"error":"..."} and
 * {"detail":"..."} are read too. Always fills out (slices of body or pool). */
void hub_ai_answer_parse(struct hub_pool *pool, int http_status, struct hub_str retry_after,
			 struct hub_str body, struct hub_str api_key, struct hub_ai_answer *out);

#endif
