/* adapters/adapter.h - one interface, one file per platform (redis ConnectionType, kresd
 * kr_layer_api). Adapters are pure: they turn bytes into normalized events and events into
 * bytes, allocating only from the pool they are given; no I/O, no libuv, no clock.
 * The platform specifics of sending (building a request's body, reading the answer,
 * classifying errors) live here beside the parsing; only the I/O lives in daemon/.
 * A new platform is one file and one line in hub_adapter_find(). */
#ifndef HUB_ADAPTER_H
#define HUB_ADAPTER_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/channel.h"
#include "lib/err.h"
#include "lib/pool.h"
#include "lib/utf8.h"

enum hub_event_kind {
	HUB_EVENT_MESSAGE = 1, /* a customer's message */
	HUB_EVENT_STATUS,      /* sent/delivered/read/failed of one of ours */
	HUB_EVENT_EDIT,
	HUB_EVENT_DELETE,
	HUB_EVENT_REACTION,
	HUB_EVENT_ECHO, /* the business's own message, sent from the platform's app */
};

enum hub_msg_type {
	HUB_MSG_TEXT = 1,
	HUB_MSG_IMAGE,
	HUB_MSG_AUDIO,
	HUB_MSG_VIDEO,
	HUB_MSG_DOCUMENT,
	HUB_MSG_STICKER,
	HUB_MSG_LOCATION,
	HUB_MSG_CONTACT,
	HUB_MSG_REACTION,
	HUB_MSG_INTERACTIVE,
	HUB_MSG_UNSUPPORTED, /* stored with raw_type, never dropped */
};

/* The normalized inbound message of DESIGN.md: field names are the contract between
 * adapters and the store. Slices point into the body or the parse pool. */
struct hub_inbound_msg {
	enum hub_channel_kind channel_kind;
	const char *channel_id;             /* public id */
	struct hub_str external_id;         /* the platform's message id (wamid ...) */
	struct hub_str sender_external_id;  /* wa_id / user_id, Telegram from.id, IGSID */
	struct hub_str sender_phone;        /* E.164 or empty */
	struct hub_str sender_profile_name;
	struct hub_str sender_username;
	int64_t platform_ts;                /* Unix milliseconds; 0 when unknown */
	enum hub_msg_type type;
	struct hub_str text;                /* text, caption or button title */
	struct {
		/* the platform's reference: WhatsApp media id, Telegram file_id (of the largest
		 * photo size), Instagram CDN URL; with what the webhook says of the file */
		struct hub_str platform_id, mime, caption, filename;
		int64_t size; /* bytes; 0 when the webhook does not say */
	} media;
	struct {
		bool present;
		double lat, lon;
		struct hub_str name, address;
	} location;
	struct hub_str reply_to_external_id; /* quoted message, or the story replied to */
	struct hub_str raw_type; /* the platform's own type name */
	/* Uniqueness beyond external_id (PLATFORMS.md rule 5): an edit's number or date, a
	 * reaction's (sender, action, timestamp); empty for plain messages. */
	struct hub_str dedupe_key;
	/* ECHO: the customer the business wrote to (the sender is the business). */
	struct hub_str recipient_external_id;
	/* Telegram: the update's update_id, unique per bot; empty elsewhere. */
	struct hub_str update_id;
	struct {
		struct hub_str name, phone; /* a shared contact card (phone as written) */
		struct hub_str user_id;     /* Telegram: the shared contact's user id */
	} contact;
};

struct hub_status_update {
	struct hub_str external_id; /* of our outbound message */
	struct hub_str recipient;
	struct hub_str status; /* sent, delivered, read, failed */
	int64_t platform_ts;   /* Unix milliseconds */
	struct hub_str error;  /* platform error code and title, for failed */
};

struct hub_event {
	enum hub_event_kind kind;
	struct hub_inbound_msg msg;       /* MESSAGE, EDIT, DELETE, REACTION, ECHO */
	struct hub_status_update status;  /* STATUS */
};

struct hub_event_list {
	struct hub_event *items; /* from the parse pool */
	size_t n, cap;
	size_t bad;     /* items that could not be parsed (logged by count, others kept) */
	size_t ignored; /* valid but not served (other fields, groups ...) */
};

/* What a request carries besides its body, looked up by the daemon's HTTP layer. */
struct hub_webhook {
	struct hub_str body;
	/* Header value by case-insensitive name, HUB_STR_NULL when absent. */
	struct hub_str (*header)(const void *req, const char *name);
	/* Query parameter, percent-decoded, HUB_STR_NULL when absent. */
	struct hub_str (*query)(const void *req, const char *name);
	const void *req;
};

/* An outgoing message as the outbox hands it to an adapter: one part, already within the
 * platform's limits (hub_utf8_split_next). Slices are borrowed for the call. */
struct hub_send_msg {
	enum hub_msg_type type;   /* TEXT, IMAGE, AUDIO, VIDEO or DOCUMENT */
	struct hub_str recipient; /* WhatsApp wa_id (digits, or a phone), Telegram chat id, IGSID */
	struct hub_str text;      /* the text, or a media's caption (empty: none) */
	struct hub_str reply_to;  /* external_id of the quoted message, or empty */
	struct hub_str media_url; /* media sent by link: a URL the platform fetches */
	struct hub_str filename;  /* a WhatsApp document's name; others take the URL's */
};

/* The HTTP request that sends a message, relative to the platform's configured base URL. */
struct hub_send_req {
	const char *method;           /* "POST" */
	struct hub_str path;          /* from pool; Telegram's holds the bot token: never log it */
	struct hub_str authorization; /* the Authorization header's value, or empty (Telegram) */
	struct hub_str content_type;  /* "application/json" */
	struct hub_str body;          /* from pool */
};

enum hub_send_verdict {
	HUB_SEND_OK = 0,    /* accepted (not yet delivered): external_id is the new message's */
	HUB_SEND_RETRY,     /* no answer, 408, 429, 5xx, a rate limit or a temporary error */
	HUB_SEND_PERMANENT, /* any other refusal: failed for good, error kept */
	HUB_SEND_TOKEN,     /* the channel's token expired or was revoked: the admin must act */
	HUB_SEND_WINDOW,    /* outside the reply window (templates only): failed */
};

/* What a send's answer means. Slices are in the answer's body or the pool. */
struct hub_send_result {
	enum hub_send_verdict verdict;
	/* OK: the new message's id, in the form the webhooks give it (Telegram
	 * "<chat.id>:<message_id>"); empty when a 2xx answer lacks it: the platform took the
	 * message, so sending again would duplicate it. */
	struct hub_str external_id;
	int64_t retry_after_ms; /* RETRY: the wait the platform asked for; 0 when unknown */
	/* The platform's code as text ("131047", "10/2018278" with Meta's subcode, "403"), or
	 * the HTTP status when the body has none ("0": no answer); empty on OK. */
	struct hub_str error_code;
	/* "<code> <the platform's message>", at most HUB_SEND_ERROR_MAX bytes, for agents: no
	 * token and no message text (a body that is not the platform's JSON is not copied). */
	struct hub_str error;
};

#define HUB_SEND_ERROR_MAX 300

struct hub_adapter {
	const char *name; /* "whatsapp": as in URLs, config and hubctl */
	enum hub_channel_kind kind;
	/* 0 when the request is authentic, -EPERM when not (missing or wrong signature);
	 * compares in constant time, over the raw body bytes. */
	int (*verify)(const struct hub_channel *ch, const struct hub_webhook *wh);
	/* The GET verification handshake: 0 and *reply (the challenge to echo), -EPERM on a
	 * wrong token or mode, -EBADMSG when parameters are missing, -ENOTSUP for platforms
	 * that have none. */
	int (*handshake)(const struct hub_channel *ch, const struct hub_webhook *wh,
			 struct hub_str *reply);
	/* One body into events allocated from pool. ch may be NULL (hubctl parse): then the
	 * account is not checked. -EBADMSG for a body that is not the platform's JSON,
	 * -EACCES when it names another account than ch's; one bad item only counts in
	 * out->bad. Unknown message types become HUB_MSG_UNSUPPORTED. */
	int (*parse_webhook)(struct hub_pool *pool, const struct hub_channel *ch,
			     struct hub_str body, struct hub_event_list *out,
			     struct hub_err *err);
	/* One message's request, allocated from pool. api_version ("v21.0") goes into Meta's
	 * paths; Telegram ignores it. -EINVAL with err (never naming the token) for what cannot
	 * be sent: a type the platform lacks, an empty recipient, text or media URL, a text or
	 * caption over the limits below, a channel without a usable token or account. */
	int (*build_send)(struct hub_pool *pool, const struct hub_channel *ch,
			  const char *api_version, const struct hub_send_msg *msg,
			  struct hub_send_req *out, struct hub_err *err);
	/* Classifies the answer to build_send's request: http_status (0 when there was none:
	 * connection failed or timed out), the Retry-After header (seconds) or HUB_STR_NULL,
	 * and the body. Always fills out (slices from body or pool) and returns 0. */
	int (*parse_send_result)(struct hub_pool *pool, int http_status,
				 struct hub_str retry_after_header, struct hub_str body,
				 struct hub_send_result *out);
	size_t text_max;              /* a text's length limit, in text_unit */
	size_t caption_max;           /* a media caption's, in text_unit; 0: media carry none */
	enum hub_text_unit text_unit; /* as the platform counts */
	int64_t reply_window_ms;      /* after the customer's last message; 0: no window */
	/* Pacing within the platform's limits (0: none): sends per second to one account (a
	 * number, a bot), and to one recipient one send every pair_interval_ms once a burst of
	 * pair_burst has gone. */
	unsigned rate_per_s;
	unsigned pair_interval_ms, pair_burst;
};

/* The adapter by name ("whatsapp") or NULL. */
const struct hub_adapter *hub_adapter_find(const char *name);
const struct hub_adapter *hub_adapter_for(enum hub_channel_kind kind);

/* Appends a zeroed event to list (from pool) and returns it. */
struct hub_event *hub_event_list_push(struct hub_event_list *list, struct hub_pool *pool);
const char *hub_event_kind_name(enum hub_event_kind kind);
const char *hub_msg_type_name(enum hub_msg_type type);
/* The normalized event as one JSON object (hubctl parse, golden files). */
void hub_event_to_json(const struct hub_event *ev, struct hub_buf *out);

/* Shared by adapters: "8 701 123 45 67", "+7 (701) 123-45-67", "77011234567" →
 * "+77011234567" in pool. -EINVAL when it is not a plausible phone number. */
int hub_phone_normalize(struct hub_pool *pool, struct hub_str in, struct hub_str *out) HUB_MUSTCHECK;

/* Shared by adapters' build_send: -EINVAL (err names the adapter) unless msg has a
 * recipient, a text (TEXT) or media URL (media), and a text or caption within a's limits.
 * The type is the adapter's to check. */
int hub_send_msg_check(const struct hub_send_msg *msg, const struct hub_adapter *a,
		       struct hub_err *err) HUB_MUSTCHECK;
/* Shared by adapters' parse_send_result: out as the HTTP status alone fills it: the verdict
 * (2xx OK; 401 TOKEN; 0, 408, 429 and 5xx RETRY; any other PERMANENT), retry_after_ms from
 * a Retry-After of seconds, error_code the status as text and error "502 (HTTP status)" or
 * "0 (no answer)"; empty on OK. The adapter refines it from the body. */
void hub_send_result_from_status(struct hub_send_result *out, struct hub_pool *pool,
				 int http_status, struct hub_str retry_after_header);
/* error_code = code, error = "<code> <what>" cut to HUB_SEND_ERROR_MAX bytes on a
 * character boundary, in pool. */
void hub_send_result_set_error(struct hub_send_result *out, struct hub_pool *pool,
			       struct hub_str code, struct hub_str what);

#endif
