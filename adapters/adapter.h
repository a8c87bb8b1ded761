/* adapters/adapter.h - one interface, one file per platform (redis ConnectionType, kresd
 * kr_layer_api). Adapters are pure: they turn bytes into normalized events and events into
 * bytes, allocating only from the pool they are given; no I/O, no libuv, no clock.
 * A new platform is one file and one line in hub_adapter_find(). */
#ifndef HUB_ADAPTER_H
#define HUB_ADAPTER_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/channel.h"
#include "lib/err.h"
#include "lib/pool.h"

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
		struct hub_str platform_id, mime, caption, filename;
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

#endif
