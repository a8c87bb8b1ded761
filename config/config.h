/* config/config.h - hubd's configuration: a JSON file walked by one table of keys into an
 * immutable, reference-counted snapshot (nginx builds a new cycle on reload; so do we).
 * Every error is collected in compiler format (FILE:LINE:COL: key.path: message).
 * Secrets may come from the environment or from files. Knows nothing about the daemon. */
#ifndef HUB_CONFIG_H
#define HUB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/channel.h"
#include "lib/secret.h"
#include "lib/log.h"

struct hub_config;

/* The settings: public values, owned by the snapshot, read-only. */
struct hub_settings {
	struct {
		enum hub_log_level level;
	} log;
	struct {
		const char *listen; /* "127.0.0.1:8080" */
		bool reuse_port;    /* SO_REUSEPORT: several processes on one port */
		size_t body_max;
		size_t header_max;
		int header_timeout_ms;
		int body_timeout_ms;
		int idle_timeout_ms;
		int max_connections;  /* client connections, websockets included */
		int max_per_address;  /* ... of one IPv4 address or IPv6 /64; 0: no cap */
		int drain_timeout_ms;
	} http;
	struct {
		const char *url; /* libpq URL or key=value conninfo (secret) */
		/* PostgreSQL itself when url goes through a transaction-pooling pooler: LISTEN,
		 * migrations and hubctl use it; NULL: url (secret) */
		const char *direct_url;
		int pool_size;
		int connect_timeout_ms;
		int statement_timeout_ms;
		int queue_max;
		int queue_timeout_ms;
		bool warm_up; /* each new connection runs hub_warm() before it serves */
	} database;
	struct {
		const char *url; /* NULL: no Redis, the instance runs alone (secret) */
		/* signs and checks what crosses Redis; set (the same on every instance)
		 * whenever url is (secret) */
		const char *hmac_key;
		const char *hmac_key_accepted; /* also accepted, never signs: rotation (secret) */
		int connect_timeout_ms;
		int command_timeout_ms;
		int ping_interval_ms;
	} redis;
	struct {
		const char *jwt_secret; /* secret */
		int max_token_ttl_s;    /* longest exp - iat accepted; 0: no cap */
	} auth;
	struct {
		const char *token; /* NULL: /metrics is open; else Bearer <token> (secret) */
	} metrics;
	struct {
		int rate_per_s; /* /api/v1 requests per second of one token (tenant + sub); 0: no limit */
		int rate_burst; /* ... in a burst, beyond the rate */
	} api;
	struct {
		/* 64 hex digits each (secrets): the key that seals the secrets stored in the
		 * database, and during a rotation the one they may still be sealed with */
		const char *master_key, *previous_master_key;
	} secrets;
	struct {
		int auth_timeout_ms;
		size_t max_frame;
		size_t send_queue_max;
		int ping_interval_ms;
		int commands_per_s;         /* command rate limit per socket */
		int command_burst;
		int max_sockets;            /* open websockets in total */
		int max_sockets_per_tenant; /* authenticated websockets of one tenant */
		int text_max;               /* code points of a text sent by an agent */
		int resume_grace_ms;        /* after hello, live events wait for a resume */
	} ws;
	struct {
		int text_max;            /* code points of a visitor's text */
		int messages_per_min;    /* a visitor's messages per minute */
		int sockets_per_visitor; /* open sockets of one visitor */
		int history;             /* messages a new socket of a visitor gets */
		int sockets_per_address; /* visitors' open sockets of one address (IPv6 /64) */
		int messages_per_min_per_address; /* visitors' messages per minute of one address */
	} webchat;
	struct {
		int batch_max_items;   /* webhook items committed in one transaction, at most */
		int batches_in_flight; /* transactions running at once; later items wait */
	} ingest;
	struct {
		/* base URL of each platform's API by channel kind ([0] unused): tests and
		 * `make run` point them at local fakes */
		const char *url[HUB_CHANNEL_INSTAGRAM + 1];
		const char *meta_api_version; /* "v21.0": in WhatsApp's and Instagram's paths */
		const char *ca_file;          /* PEM CAs to trust; NULL: the system store */
		int connect_timeout_ms;       /* DNS, TCP and TLS of a new connection */
		int response_timeout_ms;      /* request written to the first response byte */
		int conns_per_origin;         /* keep-alive connections to one API, at most */
		int telegram_poll_timeout_s;  /* getUpdates' long-poll wait (mode polling) */
	} platforms;
	struct {
		bool enabled;     /* this instance delivers the outbox */
		bool pacing;      /* within the platforms' rates (off: benchmarks only) */
		int batch;        /* outbox rows claimed per query */
		int in_flight;    /* messages being sent at once, at most */
		int lease_ms;     /* a claimed row is this instance's for so long */
		int max_attempts; /* a message still not accepted after so many fails */
		int retry_base_ms, retry_max_ms; /* backoff: base * 2^attempt, capped, jittered */
	} outbound;
	struct {
		bool enabled;         /* this instance answers for the channels' assistants */
		int queue_max;        /* answers claimed here and not ended, at most */
		int per_tenant;       /* provider requests of one tenant at once, at most */
		int per_provider;     /* requests to one provider (origin) at once, at most */
		int lease_ms;         /* a claimed answer is this instance's for so long */
		int timeout_ms;       /* the provider's whole answer, at most */
		int max_attempts;     /* failed provider calls in a row before a hand-off */
		int retry_base_ms;    /* backoff after a failed call: base * 2^attempt */
		int breaker_failures; /* failures in a row that open a provider's breaker */
		int breaker_open_ms;  /* requests to it are not made for so long then */
	} assistant;
	struct {
		size_t max_bytes;       /* a platform's file passed on to an agent, at most */
		size_t upload_max;      /* an agent's upload, at most */
		const char *public_url; /* the hub as the platforms reach it; NULL: no media out */
		int link_ttl_s;         /* a signed media link lives so long */
		int timeout_ms;         /* one download from a platform, in total */
	} media;
	struct {
		int purge_after_s;  /* a deleted tenant's data is removed so long after */
		int interval_ms;    /* the purge and retention job runs so often */
		int batch;          /* rows one statement removes, at most */
	} privacy;
	struct {
		int events_s;       /* the event log keeps so long (0: for ever) */
		int ingest_keys_s;  /* dedupe keys of updates and reactions (0: for ever) */
		int statuses_s;     /* the platforms' status history (0: for ever) */
	} retention;
};

struct hub_tenant {
	const char *id;   /* "demo": [a-z0-9_-], as in tokens' tid */
	const char *name; /* the company's name */
};

/* Reads and validates path. On success 0 and *out (one reference). On failure a negative
 * errno (-ENOENT, -EINVAL ...) and every problem appended to errors, one per line. */
int hub_config_load(const char *path, struct hub_config **out,
		    struct hub_buf *errors) HUB_MUSTCHECK;
/* The same from text; name is used in messages only. */
int hub_config_parse(const char *name, struct hub_str text, struct hub_config **out,
		     struct hub_buf *errors) HUB_MUSTCHECK;

/* A new snapshot (one reference in *out) with base's settings, tenants and channels plus
 * the n channels given (e.g. read from the database; copied, the caller keeps them). A
 * channel whose id base already has only lends its enabled flag: the file's kind, account
 * and secrets win. One with no app_secret, no account_id or an unknown kind (0) is left out.
 * base is referenced, not copied. Returns how many of the n were left out (>= 0). */
int hub_config_with_channels(struct hub_config *base, const struct hub_channel *channels,
			     size_t n, struct hub_config **out) HUB_MUSTCHECK;

struct hub_config *hub_config_ref(struct hub_config *cfg);
void hub_config_unref(struct hub_config *cfg); /* NULL-safe */

const char *hub_config_path(const struct hub_config *cfg);
const struct hub_settings *hub_config_settings(const struct hub_config *cfg);
/* database.direct_url, else database.url: what LISTEN, migrations and hubctl connect to. */
const char *hub_config_direct_url(const struct hub_config *cfg);
/* The keyring of secrets.master_key and secrets.previous_master_key (empty without them). */
const struct hub_keyring *hub_config_keyring(const struct hub_config *cfg);
/* The channel with that public id, or NULL. */
const struct hub_channel *hub_config_channel(const struct hub_config *cfg, struct hub_str id);
/* i-th channel or tenant, NULL past the end. */
const struct hub_channel *hub_config_channel_at(const struct hub_config *cfg, size_t i);
const struct hub_tenant *hub_config_tenant_at(const struct hub_config *cfg, size_t i);
const struct hub_tenant *hub_config_tenant(const struct hub_config *cfg, const char *id);

/* Appends to out the names of keys that differ between old and new and only take effect
 * after a restart (one ", "-separated list); returns how many. */
size_t hub_config_restart_keys(const struct hub_config *old, const struct hub_config *new_cfg,
			       struct hub_buf *out);
/* Appends the effective configuration as JSON with every secret replaced by "<redacted>". */
void hub_config_dump(const struct hub_config *cfg, struct hub_buf *out);

#endif
