/* config/config.c - see config.h. One walker applies three tables of keys (settings,
 * tenants[], channels[]) to the JSON tree; defaults come from the same tables, so the
 * tables, config/hubd.example.json and the README's reference list the same keys. */
#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/pool.h"
#include "lib/webcfg.h"

#define CONFIG_MAX_TOKENS 65536
#define CONFIG_MAX_BYTES (4 << 20)
#define SECRET_MIN 16
#define HMAC_KEY_MIN 32 /* bytes of redis.hmac_key (`openssl rand -hex 32` gives 64) */

enum cfg_type {
	CFG_T_STR,    /* any non-empty string */
	CFG_T_ID,     /* [a-z0-9_-]{1,64} */
	CFG_T_SECRET, /* string, or NAME_file, or an environment variable */
	CFG_T_ADDR,   /* host:port with an IP literal */
	CFG_T_URL,    /* http:// or https:// and a host, no trailing '/' */
	CFG_T_INT,    /* integer within min..max */
	CFG_T_SIZE,   /* bytes within min..max */
	CFG_T_LEVEL,  /* log level name */
	CFG_T_BOOL,   /* true or false */
	CFG_T_MODE,   /* a channel's mode: "webhook" or "polling" (bool polling) */
	CFG_T_KIND,   /* channel kind name */
	CFG_T_WEB,    /* a web channel's settings: a JSON object (lib/webcfg.h), kept as text */
};

enum {
	CFG_LIVE = 1,     /* applied on SIGHUP */
	CFG_RESTART = 2,  /* needs a restart; reload says so */
	CFG_REQUIRED = 4, /* no default */
	CFG_NULLABLE = 8, /* may stay unset (NULL) */
};

struct cfg_key {
	const char *name; /* dotted path relative to the table's object */
	enum cfg_type type;
	size_t off; /* of the field in the table's struct */
	long long min, max;
	long long def_num;
	const char *def_str;
	const char *env; /* environment variable that overrides it */
	unsigned flags;
};

#define S(field) offsetof(struct hub_settings, field)
#define KEY_INT(n, f, lo, hi, d, fl) { n, CFG_T_INT, S(f), lo, hi, d, NULL, NULL, fl }
#define KEY_SIZE(n, f, lo, hi, d, fl) { n, CFG_T_SIZE, S(f), lo, hi, d, NULL, NULL, fl }
#define KEY_URL(n, f, d) { n, CFG_T_URL, S(f), 0, 0, 0, d, NULL, CFG_LIVE }

static const struct cfg_key settings_keys[] = {
	{ "log.level", CFG_T_LEVEL, S(log.level), 0, 0, HUB_LOG_INFO, NULL, NULL, CFG_LIVE },
	{ "http.listen", CFG_T_ADDR, S(http.listen), 0, 0, 0, "127.0.0.1:8080", NULL,
	  CFG_RESTART },
	{ "http.reuse_port", CFG_T_BOOL, S(http.reuse_port), 0, 0, 0, NULL, NULL, CFG_RESTART },
	KEY_SIZE("http.body_max", http.body_max, 1024, 64 << 20, 4 << 20, CFG_LIVE),
	KEY_SIZE("http.header_max", http.header_max, 1024, 1 << 20, 16 << 10, CFG_LIVE),
	KEY_INT("http.header_timeout_ms", http.header_timeout_ms, 100, 3600000, 10000, CFG_LIVE),
	KEY_INT("http.body_timeout_ms", http.body_timeout_ms, 100, 3600000, 30000, CFG_LIVE),
	KEY_INT("http.idle_timeout_ms", http.idle_timeout_ms, 100, 3600000, 60000, CFG_LIVE),
	KEY_INT("http.max_connections", http.max_connections, 1, 1000000, 60000, CFG_LIVE),
	KEY_INT("http.max_per_address", http.max_per_address, 0, 1000000, 2000, CFG_LIVE),
	KEY_INT("http.drain_timeout_ms", http.drain_timeout_ms, 0, 600000, 10000, CFG_LIVE),
	{ "database.url", CFG_T_SECRET, S(database.url), 0, 0, 0, NULL, "HUB_DATABASE_URL",
	  CFG_RESTART | CFG_REQUIRED },
	{ "database.direct_url", CFG_T_SECRET, S(database.direct_url), 0, 0, 0, NULL,
	  "HUB_DATABASE_DIRECT_URL", CFG_RESTART | CFG_NULLABLE },
	KEY_INT("database.pool_size", database.pool_size, 1, 256, 8, CFG_RESTART),
	KEY_INT("database.connect_timeout_ms", database.connect_timeout_ms, 100, 600000, 5000,
		CFG_RESTART),
	KEY_INT("database.statement_timeout_ms", database.statement_timeout_ms, 100, 3600000,
		5000, CFG_RESTART),
	KEY_INT("database.queue_max", database.queue_max, 1, 1000000, 10000, CFG_RESTART),
	KEY_INT("database.queue_timeout_ms", database.queue_timeout_ms, 10, 600000, 5000,
		CFG_RESTART),
	{ "database.warm_up", CFG_T_BOOL, S(database.warm_up), 0, 0, 1, NULL, NULL,
	  CFG_RESTART },
	{ "redis.url", CFG_T_SECRET, S(redis.url), 0, 0, 0, NULL, "HUB_REDIS_URL",
	  CFG_RESTART | CFG_NULLABLE },
	{ "redis.hmac_key", CFG_T_SECRET, S(redis.hmac_key), 0, 0, 0, NULL, "HUB_REDIS_HMAC_KEY",
	  CFG_RESTART | CFG_NULLABLE },
	{ "redis.hmac_key_accepted", CFG_T_SECRET, S(redis.hmac_key_accepted), 0, 0, 0, NULL,
	  "HUB_REDIS_HMAC_KEY_ACCEPTED", CFG_RESTART | CFG_NULLABLE },
	KEY_INT("redis.connect_timeout_ms", redis.connect_timeout_ms, 100, 600000, 2000,
		CFG_RESTART),
	KEY_INT("redis.command_timeout_ms", redis.command_timeout_ms, 100, 600000, 2000,
		CFG_RESTART),
	KEY_INT("redis.ping_interval_ms", redis.ping_interval_ms, 100, 600000, 1000, CFG_RESTART),
	{ "auth.jwt_secret", CFG_T_SECRET, S(auth.jwt_secret), 0, 0, 0, NULL, "HUB_JWT_SECRET",
	  CFG_LIVE | CFG_REQUIRED },
	KEY_INT("auth.max_token_ttl_s", auth.max_token_ttl_s, 0, 366 * 86400, 86400, CFG_LIVE),
	KEY_INT("ws.auth_timeout_ms", ws.auth_timeout_ms, 100, 600000, 5000, CFG_LIVE),
	KEY_SIZE("ws.max_frame", ws.max_frame, 1024, 16 << 20, 64 << 10, CFG_LIVE),
	KEY_SIZE("ws.send_queue_max", ws.send_queue_max, 4096, 256 << 20, 1 << 20, CFG_LIVE),
	KEY_INT("ws.ping_interval_ms", ws.ping_interval_ms, 1000, 3600000, 30000, CFG_LIVE),
	KEY_INT("ws.commands_per_s", ws.commands_per_s, 1, 100000, 20, CFG_LIVE),
	KEY_INT("ws.command_burst", ws.command_burst, 1, 100000, 40, CFG_LIVE),
	KEY_INT("ws.max_sockets", ws.max_sockets, 1, 10000000, 50000, CFG_LIVE),
	KEY_INT("ws.max_sockets_per_tenant", ws.max_sockets_per_tenant, 1, 10000000, 50000,
		CFG_LIVE),
	KEY_INT("ws.text_max", ws.text_max, 1, 1 << 20, 4096, CFG_LIVE),
	KEY_INT("webchat.text_max", webchat.text_max, 1, 65536, 2000, CFG_LIVE),
	KEY_INT("webchat.messages_per_min", webchat.messages_per_min, 1, 100000, 30, CFG_LIVE),
	KEY_INT("webchat.sockets_per_visitor", webchat.sockets_per_visitor, 1, 1000, 5,
		CFG_LIVE),
	KEY_INT("webchat.history", webchat.history, 1, 1000, 100, CFG_LIVE),
	KEY_INT("webchat.sockets_per_address", webchat.sockets_per_address, 0, 1000000, 200,
		CFG_LIVE),
	KEY_INT("webchat.messages_per_min_per_address", webchat.messages_per_min_per_address, 0,
		1000000, 300, CFG_LIVE),
	KEY_INT("ws.resume_grace_ms", ws.resume_grace_ms, 0, 60000, 1000, CFG_LIVE),
	KEY_INT("ingest.batch_max_items", ingest.batch_max_items, 1, 100000, 256, CFG_LIVE),
	KEY_INT("ingest.batches_in_flight", ingest.batches_in_flight, 1, 256, 1, CFG_LIVE),
	KEY_URL("platforms.whatsapp_url", platforms.url[HUB_CHANNEL_WHATSAPP],
		"https://graph.facebook.com"),
	KEY_URL("platforms.telegram_url", platforms.url[HUB_CHANNEL_TELEGRAM],
		"https://api.telegram.org"),
	KEY_URL("platforms.instagram_url", platforms.url[HUB_CHANNEL_INSTAGRAM],
		"https://graph.facebook.com"),
	{ "platforms.meta_api_version", CFG_T_STR, S(platforms.meta_api_version), 0, 0, 0,
	  "v21.0", NULL, CFG_LIVE },
	{ "platforms.ca_file", CFG_T_STR, S(platforms.ca_file), 0, 0, 0, NULL, NULL,
	  CFG_RESTART | CFG_NULLABLE },
	KEY_INT("platforms.connect_timeout_ms", platforms.connect_timeout_ms, 100, 600000, 10000,
		CFG_LIVE),
	KEY_INT("platforms.response_timeout_ms", platforms.response_timeout_ms, 100, 600000,
		30000, CFG_LIVE),
	KEY_INT("platforms.conns_per_origin", platforms.conns_per_origin, 1, 1024, 16,
		CFG_RESTART),
	KEY_INT("platforms.telegram_poll_timeout_s", platforms.telegram_poll_timeout_s, 1, 50, 50,
		CFG_LIVE),
	{ "outbound.enabled", CFG_T_BOOL, S(outbound.enabled), 0, 0, 1, NULL, NULL, CFG_LIVE },
	{ "outbound.pacing", CFG_T_BOOL, S(outbound.pacing), 0, 0, 1, NULL, NULL, CFG_LIVE },
	KEY_INT("outbound.batch", outbound.batch, 1, 10000, 64, CFG_LIVE),
	KEY_INT("outbound.in_flight", outbound.in_flight, 1, 100000, 256, CFG_LIVE),
	KEY_INT("outbound.lease_ms", outbound.lease_ms, 1000, 86400000, 120000, CFG_LIVE),
	KEY_INT("outbound.max_attempts", outbound.max_attempts, 1, 1000, 12, CFG_LIVE),
	KEY_INT("outbound.retry_base_ms", outbound.retry_base_ms, 10, 3600000, 1000, CFG_LIVE),
	KEY_INT("outbound.retry_max_ms", outbound.retry_max_ms, 10, 86400000, 300000, CFG_LIVE),
	{ "assistant.enabled", CFG_T_BOOL, S(assistant.enabled), 0, 0, 1, NULL, NULL, CFG_LIVE },
	KEY_INT("assistant.queue_max", assistant.queue_max, 1, 100000, 256, CFG_LIVE),
	KEY_INT("assistant.per_tenant", assistant.per_tenant, 1, 10000, 8, CFG_LIVE),
	KEY_INT("assistant.per_provider", assistant.per_provider, 1, 10000, 32, CFG_LIVE),
	KEY_INT("assistant.lease_ms", assistant.lease_ms, 1000, 3600000, 180000, CFG_LIVE),
	KEY_INT("assistant.timeout_ms", assistant.timeout_ms, 100, 600000, 60000, CFG_LIVE),
	KEY_INT("assistant.max_attempts", assistant.max_attempts, 1, 100, 3, CFG_LIVE),
	KEY_INT("assistant.retry_base_ms", assistant.retry_base_ms, 10, 600000, 2000, CFG_LIVE),
	KEY_INT("assistant.breaker_failures", assistant.breaker_failures, 1, 1000, 5, CFG_LIVE),
	KEY_INT("assistant.breaker_open_ms", assistant.breaker_open_ms, 100, 3600000, 30000,
		CFG_LIVE),
	{ "secrets.master_key", CFG_T_SECRET, S(secrets.master_key), 0, 0, 0, NULL,
	  "HUB_MASTER_KEY", CFG_RESTART | CFG_NULLABLE },
	{ "secrets.previous_master_key", CFG_T_SECRET, S(secrets.previous_master_key), 0, 0, 0,
	  NULL, "HUB_PREVIOUS_MASTER_KEY", CFG_RESTART | CFG_NULLABLE },
	KEY_SIZE("media.max_bytes", media.max_bytes, 1024, 1 << 30, 25 << 20, CFG_LIVE),
	KEY_SIZE("media.upload_max", media.upload_max, 1024, 256 << 20, 16 << 20, CFG_LIVE),
	{ "media.public_url", CFG_T_URL, S(media.public_url), 0, 0, 0, NULL, NULL,
	  CFG_LIVE | CFG_NULLABLE },
	KEY_INT("media.link_ttl_s", media.link_ttl_s, 10, 86400, 600, CFG_LIVE),
	KEY_INT("media.timeout_ms", media.timeout_ms, 1000, 3600000, 300000, CFG_LIVE),
	KEY_INT("privacy.purge_after_s", privacy.purge_after_s, 0, 366 * 86400, 30 * 86400,
		CFG_LIVE),
	KEY_INT("privacy.interval_ms", privacy.interval_ms, 100, 86400000, 60000, CFG_LIVE),
	KEY_INT("privacy.batch", privacy.batch, 1, 100000, 1000, CFG_LIVE),
	KEY_INT("retention.events_s", retention.events_s, 0, 3650 * 86400, 90 * 86400, CFG_LIVE),
	KEY_INT("retention.ingest_keys_s", retention.ingest_keys_s, 0, 3650 * 86400, 30 * 86400,
		CFG_LIVE),
	KEY_INT("retention.statuses_s", retention.statuses_s, 0, 3650 * 86400, 90 * 86400,
		CFG_LIVE),
	KEY_INT("api.rate_per_s", api.rate_per_s, 0, 100000, 20, CFG_LIVE),
	KEY_INT("api.rate_burst", api.rate_burst, 1, 100000, 60, CFG_LIVE),
	{ "metrics.token", CFG_T_SECRET, S(metrics.token), 0, 0, 0, NULL, "HUB_METRICS_TOKEN",
	  CFG_LIVE | CFG_NULLABLE },
};
#undef S

#define T(field) offsetof(struct hub_tenant, field)
static const struct cfg_key tenant_keys[] = {
	{ "id", CFG_T_ID, T(id), 0, 0, 0, NULL, NULL, CFG_REQUIRED },
	{ "name", CFG_T_STR, T(name), 0, 0, 0, NULL, NULL, CFG_REQUIRED },
};
#undef T

#define C(field) offsetof(struct hub_channel, field)
static const struct cfg_key channel_keys[] = {
	{ "id", CFG_T_ID, C(id), 0, 0, 0, NULL, NULL, CFG_REQUIRED },
	{ "tenant", CFG_T_ID, C(tenant), 0, 0, 0, NULL, NULL, CFG_REQUIRED },
	{ "kind", CFG_T_KIND, C(kind), 0, 0, 0, NULL, NULL, CFG_REQUIRED },
	{ "account_id", CFG_T_STR, C(account_id), 0, 0, 0, NULL, NULL, CFG_REQUIRED },
	{ "app_secret", CFG_T_SECRET, C(app_secret), 0, 0, 0, NULL, NULL, CFG_REQUIRED },
	{ "verify_token", CFG_T_SECRET, C(verify_token), 0, 0, 0, NULL, NULL, CFG_NULLABLE },
	{ "access_token", CFG_T_SECRET, C(access_token), 0, 0, 0, NULL, NULL, CFG_NULLABLE },
	{ "mode", CFG_T_MODE, C(polling), 0, 0, 0, NULL, NULL, 0 },
	{ "web", CFG_T_WEB, C(web), 0, 0, 0, NULL, NULL, CFG_NULLABLE },
};
#undef C

struct hub_config {
	int refs;
	struct hub_config *base; /* hub_config_with_channels(): owns what we share of it */
	struct hub_pool pool; /* every string and array below (but base's) */
	const char *path;
	struct hub_settings settings;
	struct hub_tenant *tenants;
	size_t ntenants;
	struct hub_channel *channels;
	size_t nchannels;
	struct hub_keyring *keyring; /* NULL in a with_channels snapshot: base's */
};

struct walk {
	const char *name; /* file name for messages */
	struct hub_str text;
	struct hub_json_doc doc;
	struct hub_pool *pool;
	struct hub_buf *errors;
	int nerrors;
};

static void HUB_PRINTF(4, 5) walk_error(struct walk *w, int tok, const char *path,
					const char *fmt, ...)
{
	int line = 1, col = 1;
	va_list ap;

	if (tok >= 0 && tok < w->doc.n) {
		/* point at a string's opening quote, as editors do */
		size_t off = (size_t)w->doc.tok[tok].start;
		if (w->doc.tok[tok].type == HUB_JSON_STRING && off > 0)
			off--;
		hub_json_linecol(w->text, off, &line, &col);
	}
	w->nerrors++;
	if (!w->errors)
		return;
	hub_buf_addf(w->errors, "%s:%d:%d: ", w->name, line, col);
	/* a key's name comes from the file: no control character may forge another line */
	for (const char *c = path; *c; c++)
		hub_buf_addch(w->errors, (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c);
	hub_buf_adds(w->errors, ": ");
	va_start(ap, fmt);
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hub_buf_adds(w->errors, msg);
	hub_buf_addch(w->errors, '\n');
}

static const char *type_name(enum cfg_type t)
{
	switch (t) {
	case CFG_T_INT:
	case CFG_T_SIZE:
		return "an integer";
	default:
		return "a string";
	}
}

static bool valid_id(struct hub_str s)
{
	if (s.len == 0 || s.len > 64)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* "https://graph.facebook.com", "http://127.0.0.1:8443/prefix": a scheme, a host, nothing
 * the client would have to guess at (user info, query, fragment, a trailing '/', spaces). */
static bool valid_base_url(struct hub_str s)
{
	size_t start;

	if (hub_str_startswith(s, "https://"))
		start = 8;
	else if (hub_str_startswith(s, "http://"))
		start = 7;
	else
		return false;
	if (s.len == start || s.p[start] == '/' || s.p[s.len - 1] == '/')
		return false;
	for (size_t i = start; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '@' || c == '\\')
			return false;
	}
	return true;
}

static bool valid_addr(const char *s)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	unsigned char tmp[16];
	size_t hlen;
	char *end;
	long port;

	if (!colon || colon == s)
		return false;
	hlen = (size_t)(colon - s);
	if (hlen >= sizeof(host))
		return false;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || colon[1] == '\0' || port < 0 || port > 65535)
		return false;
	if (host[0] == '[') {
		if (hlen < 3 || host[hlen - 1] != ']')
			return false;
		host[hlen - 1] = '\0';
		return inet_pton(AF_INET6, host + 1, tmp) == 1;
	}
	return inet_pton(AF_INET, host, tmp) == 1;
}

/* Reads a secret file: the whole content, without trailing newlines. */
static int read_secret_file(struct walk *w, const char *file, const char **out)
{
	struct hub_buf b = HUB_BUF_INIT;
	int ret = hub_buf_read_file(&b, file);

	if (ret < 0)
		return ret;
	while (b.len && (b.p[b.len - 1] == '\n' || b.p[b.len - 1] == '\r'))
		hub_buf_truncate(&b, b.len - 1);
	*out = hub_pool_strndup(w->pool, b.p, b.len);
	hub_buf_release(&b);
	return 0;
}

static void set_default(const struct cfg_key *k, void *base)
{
	char *field = (char *)base + k->off;

	switch (k->type) {
	case CFG_T_INT:
		*(int *)field = (int)k->def_num;
		break;
	case CFG_T_SIZE:
		*(size_t *)field = (size_t)k->def_num;
		break;
	case CFG_T_LEVEL:
		*(enum hub_log_level *)field = (enum hub_log_level)k->def_num;
		break;
	case CFG_T_BOOL:
	case CFG_T_MODE:
		*(bool *)field = k->def_num != 0;
		break;
	case CFG_T_KIND:
		*(enum hub_channel_kind *)field = 0;
		break;
	default:
		*(const char **)field = k->def_str;
		break;
	}
}

/* Applies the value at tok to key k of base. */
static void apply(struct walk *w, const struct cfg_key *k, const char *path, int tok, void *base,
		  bool from_file)
{
	char *field = (char *)base + k->off;
	struct hub_str s;
	int64_t v;

	if (k->type == CFG_T_INT || k->type == CFG_T_SIZE) {
		int r = hub_json_int64(&w->doc, tok, &v);
		if (r == -ERANGE || (r == 0 && (v < k->min || v > k->max))) {
			walk_error(w, tok, path, "must be between %lld and %lld", k->min, k->max);
			return;
		}
		if (r < 0) {
			walk_error(w, tok, path, "must be %s", type_name(k->type));
			return;
		}
		if (k->type == CFG_T_INT)
			*(int *)field = (int)v;
		else
			*(size_t *)field = (size_t)v;
		return;
	}
	if (k->type == CFG_T_BOOL) {
		bool b;
		if (hub_json_bool(&w->doc, tok, &b) < 0) {
			walk_error(w, tok, path, "must be true or false");
			return;
		}
		*(bool *)field = b;
		return;
	}
	if (hub_json_is_null(&w->doc, tok) && (k->flags & CFG_NULLABLE)) {
		*(const char **)field = NULL;
		return;
	}
	if (k->type == CFG_T_WEB) {
		struct hub_str raw = hub_json_raw(&w->doc, tok);
		struct hub_webcfg wc;
		struct hub_err err = HUB_ERR_INIT;

		if (!hub_json_is(&w->doc, tok, HUB_JSON_OBJECT)) {
			walk_error(w, tok, path, "must be an object");
			return;
		}
		if (hub_webcfg_parse(w->pool, raw, &wc, &err) < 0) {
			walk_error(w, tok, path, "%s", err.msg);
			return;
		}
		*(const char **)field = hub_pool_strndup(w->pool, raw.p, raw.len);
		return;
	}
	if (hub_json_string(&w->doc, tok, w->pool, &s) < 0) {
		walk_error(w, tok, path, "must be %s", type_name(k->type));
		return;
	}
	if (memchr(s.p, '\0', s.len)) {
		walk_error(w, tok, path, "must not contain NUL");
		return;
	}
	const char *cs = hub_pool_strndup(w->pool, s.p, s.len);
	switch (k->type) {
	case CFG_T_LEVEL: {
		enum hub_log_level level;
		if (hub_log_level_parse(cs, &level) < 0) {
			walk_error(w, tok, path, "must be one of error, warning, info, debug");
			return;
		}
		*(enum hub_log_level *)field = level;
		return;
	}
	case CFG_T_MODE:
		if (strcmp(cs, "webhook") != 0 && strcmp(cs, "polling") != 0) {
			walk_error(w, tok, path, "must be webhook or polling");
			return;
		}
		*(bool *)field = strcmp(cs, "polling") == 0;
		return;
	case CFG_T_KIND: {
		enum hub_channel_kind kind = hub_channel_kind_parse(cs);
		if (!kind) {
			walk_error(w, tok, path, "must be one of whatsapp, telegram, instagram, web");
			return;
		}
		*(enum hub_channel_kind *)field = kind;
		return;
	}
	case CFG_T_ID:
		if (!valid_id(s)) {
			walk_error(w, tok, path, "must be 1 to 64 of a-z, 0-9, '-' and '_'");
			return;
		}
		break;
	case CFG_T_ADDR:
		if (!valid_addr(cs)) {
			walk_error(w, tok, path, "must be IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");
			return;
		}
		break;
	case CFG_T_URL:
		if (!valid_base_url(s)) {
			walk_error(w, tok, path, "must be a base URL: http:// or https://, a host and "
				   "an optional port and path, without a trailing '/', query or "
				   "spaces");
			return;
		}
		break;
	case CFG_T_SECRET:
		if (from_file) {
			int r = read_secret_file(w, cs, &cs);
			if (r < 0) {
				walk_error(w, tok, path, "cannot read %s: %s", cs, strerror(-r));
				return;
			}
		}
		if (!*cs) {
			walk_error(w, tok, path, "must not be empty");
			return;
		}
		break;
	default:
		if (!*cs) {
			walk_error(w, tok, path, "must not be empty");
			return;
		}
		break;
	}
	*(const char **)field = cs;
}

/* Does any key of the table live under prefix ("http")? */
static bool table_has_prefix(const struct cfg_key *keys, size_t n, const char *prefix)
{
	size_t len = strlen(prefix);

	for (size_t i = 0; i < n; i++)
		if (strncmp(keys[i].name, prefix, len) == 0 && keys[i].name[len] == '.')
			return true;
	return false;
}

/* Walks the object at obj, whose keys are relative to rel ("" or "http"), applying the
 * table to base; seen[] marks the keys set. where names the object in messages
 * ("channels[1]"). */
static void walk_object(struct walk *w, int obj, const char *where, const char *rel,
			const struct cfg_key *keys, size_t nkeys, void *base, bool *seen)
{
	for (int k = hub_json_first(&w->doc, obj); k >= 0; k = hub_json_after(&w->doc, k)) {
		struct hub_str key;
		char relname[256], path[320];
		bool matched = false;

		if (hub_json_string(&w->doc, k, w->pool, &key) < 0)
			continue;
		/* the root's arrays have tables of their own (walk_array) */
		if (!*where && !*rel && (hub_str_eqs(key, "tenants") || hub_str_eqs(key, "channels")))
			continue;
		snprintf(relname, sizeof(relname), "%s%s%.*s", rel, *rel ? "." : "",
			 HUB_STR_FMT(key));
		snprintf(path, sizeof(path), "%s%s%s", where, *where ? "." : "", relname);
		for (size_t i = 0; i < nkeys; i++) {
			const struct cfg_key *ck = &keys[i];
			size_t nlen = strlen(ck->name);
			bool file = ck->type == CFG_T_SECRET &&
				    strncmp(relname, ck->name, nlen) == 0 &&
				    strcmp(relname + nlen, "_file") == 0;

			if (strcmp(ck->name, relname) != 0 && !file)
				continue;
			matched = true;
			if (seen[i]) {
				walk_error(w, k, path, "set twice (%s and %s_file are one key)",
					   ck->name, ck->name);
				break;
			}
			seen[i] = true;
			apply(w, ck, path, k + 1, base, file);
			break;
		}
		if (matched)
			continue;
		if (table_has_prefix(keys, nkeys, relname)) {
			if (!hub_json_is(&w->doc, k + 1, HUB_JSON_OBJECT))
				walk_error(w, k + 1, path, "must be an object");
			else
				walk_object(w, k + 1, where, relname, keys, nkeys, base, seen);
			continue;
		}
		walk_error(w, k, path, "unknown key");
	}
}

/* Fills defaults, environment overrides and required-key errors after a walk. */
static void finish_object(struct walk *w, int obj, const char *where, const struct cfg_key *keys,
			  size_t nkeys, void *base, const bool *seen)
{
	for (size_t i = 0; i < nkeys; i++) {
		const struct cfg_key *k = &keys[i];
		const char *env = k->env ? getenv(k->env) : NULL;
		char path[320];

		snprintf(path, sizeof(path), "%s%s%s", where, *where ? "." : "", k->name);
		if (env && *env) {
			*(const char **)((char *)base + k->off) = hub_pool_strdup(w->pool, env);
			continue;
		}
		if (seen[i])
			continue;
		if (k->flags & CFG_REQUIRED) {
			if (k->env)
				walk_error(w, obj, path, "required (or set %s)", k->env);
			else
				walk_error(w, obj, path, "required");
			continue;
		}
		set_default(k, base);
	}
}

static void walk_array(struct walk *w, int arr, const char *name, const struct cfg_key *keys,
		       size_t nkeys, size_t elem_size, void **out, size_t *count)
{
	size_t n = 0;
	char *items;

	if (!hub_json_is(&w->doc, arr, HUB_JSON_ARRAY)) {
		walk_error(w, arr, name, "must be an array of objects");
		return;
	}
	items = hub_pool_calloc(w->pool, (size_t)w->doc.tok[arr].size + 1, elem_size);
	for (int k = hub_json_first(&w->doc, arr); k >= 0; k = hub_json_after(&w->doc, k)) {
		char where[64];
		bool seen[16] = { false };

		hub_assert(nkeys <= HUB_ARRAY_SIZE(seen));
		snprintf(where, sizeof(where), "%s[%zu]", name, n);
		if (!hub_json_is(&w->doc, k, HUB_JSON_OBJECT)) {
			walk_error(w, k, where, "must be an object");
			n++;
			continue;
		}
		walk_object(w, k, where, "", keys, nkeys, items + n * elem_size, seen);
		finish_object(w, k, where, keys, nkeys, items + n * elem_size, seen);
		n++;
	}
	*out = items;
	*count = n;
}

/* Checks what one key cannot: references, uniqueness, secret strength. */
static void validate(struct walk *w, struct hub_config *cfg, int tenants_tok, int channels_tok)
{
	const struct hub_settings *s = &cfg->settings;

	if (s->auth.jwt_secret && strlen(s->auth.jwt_secret) < SECRET_MIN)
		walk_error(w, 0, "auth.jwt_secret", "must be at least %d bytes", SECRET_MIN);
	for (size_t i = 0; i < cfg->ntenants; i++) {
		for (size_t j = 0; j < i; j++) {
			if (cfg->tenants[i].id && cfg->tenants[j].id &&
			    strcmp(cfg->tenants[i].id, cfg->tenants[j].id) == 0) {
				char where[64];
				snprintf(where, sizeof(where), "tenants[%zu].id", i);
				walk_error(w, tenants_tok, where, "duplicate tenant id \"%s\"",
					   cfg->tenants[i].id);
			}
		}
	}
	for (size_t i = 0; i < cfg->nchannels; i++) {
		struct hub_channel *ch = &cfg->channels[i];
		char where[64];

		ch->enabled = true;
		if (ch->tenant && !hub_config_tenant(cfg, ch->tenant)) {
			snprintf(where, sizeof(where), "channels[%zu].tenant", i);
			walk_error(w, channels_tok, where, "no tenant \"%s\" in tenants", ch->tenant);
		}
		for (size_t j = 0; j < i; j++) {
			if (ch->id && cfg->channels[j].id && strcmp(ch->id, cfg->channels[j].id) == 0) {
				snprintf(where, sizeof(where), "channels[%zu].id", i);
				walk_error(w, channels_tok, where, "duplicate channel id \"%s\"",
					   ch->id);
			}
		}
		if ((ch->kind == HUB_CHANNEL_WHATSAPP || ch->kind == HUB_CHANNEL_INSTAGRAM) &&
		    !ch->verify_token) {
			snprintf(where, sizeof(where), "channels[%zu].verify_token", i);
			walk_error(w, channels_tok, where, "required for %s channels",
				   hub_channel_kind_name(ch->kind));
		}
		if (ch->kind == HUB_CHANNEL_WEB && !ch->web) {
			snprintf(where, sizeof(where), "channels[%zu].web", i);
			walk_error(w, channels_tok, where, "required for web channels (the widget's "
				   "origins, title, colour and texts)");
		}
		if (ch->kind != HUB_CHANNEL_WEB && ch->kind && ch->web) {
			snprintf(where, sizeof(where), "channels[%zu].web", i);
			walk_error(w, channels_tok, where, "only for web channels");
		}
		if (ch->polling && (ch->kind != HUB_CHANNEL_TELEGRAM || !ch->access_token)) {
			snprintf(where, sizeof(where), "channels[%zu].mode", i);
			walk_error(w, channels_tok, where, "polling is for telegram channels with an "
				   "access_token (the bot token)");
		}
	}
}

static size_t settings_key(const char *name)
{
	for (size_t i = 0; i < HUB_ARRAY_SIZE(settings_keys); i++)
		if (strcmp(settings_keys[i].name, name) == 0)
			return i;
	hub_assert(!"no such settings key");
	return 0;
}

/* The token of the settings key section.name's value (nested or dotted; name_file's too),
 * else of its section, else the root's: where its errors point. */
static int key_tok(struct walk *w, const char *section, const char *name)
{
	char dotted[128], file[128];
	int obj = hub_json_get(&w->doc, 0, section), tok;

	snprintf(dotted, sizeof(dotted), "%s.%s", section, name);
	snprintf(file, sizeof(file), "%s_file", name);
	if ((tok = hub_json_get(&w->doc, obj, name)) >= 0 ||
	    (tok = hub_json_get(&w->doc, obj, file)) >= 0 ||
	    (tok = hub_json_get(&w->doc, 0, dotted)) >= 0)
		return tok;
	snprintf(dotted, sizeof(dotted), "%s.%s_file", section, name);
	tok = hub_json_get(&w->doc, 0, dotted);
	return tok >= 0 ? tok : obj >= 0 ? obj : 0;
}

/* Checks the keys under redis. and metrics. that one key alone cannot. seen: the settings
 * keys set in the file (one whose value was refused has its own error already). */
static void validate_redis_metrics(struct walk *w, const struct hub_config *cfg,
				   const bool *seen)
{
	const struct hub_settings *s = &cfg->settings;
	int tok = key_tok(w, "redis", "hmac_key");

	/* Every instance signs what it publishes and drops what it cannot check: a key made
	 * up here would differ from the other instances' and silently cut them apart. */
	if (s->redis.url && !s->redis.hmac_key &&
	    (!seen[settings_key("redis.hmac_key")] || hub_json_is_null(&w->doc, tok)))
		walk_error(w, tok, "redis.hmac_key", "required with redis.url (or set "
			   "HUB_REDIS_HMAC_KEY): one secret of at least %d bytes, the same on "
			   "every instance (e.g. openssl rand -hex 32)", HMAC_KEY_MIN);
	if (s->redis.hmac_key && strlen(s->redis.hmac_key) < HMAC_KEY_MIN)
		walk_error(w, tok, "redis.hmac_key", "must be at least %d bytes", HMAC_KEY_MIN);
	if (s->redis.hmac_key_accepted && strlen(s->redis.hmac_key_accepted) < HMAC_KEY_MIN)
		walk_error(w, key_tok(w, "redis", "hmac_key_accepted"), "redis.hmac_key_accepted",
			   "must be at least %d bytes", HMAC_KEY_MIN);
	if (s->metrics.token && strlen(s->metrics.token) < SECRET_MIN)
		walk_error(w, key_tok(w, "metrics", "token"), "metrics.token",
			   "must be at least %d bytes", SECRET_MIN);
}

int hub_config_parse(const char *name, struct hub_str text, struct hub_config **out,
		     struct hub_buf *errors)
{
	struct hub_config *cfg = hub_xcalloc(1, sizeof(*cfg));
	struct hub_err jerr = HUB_ERR_INIT;
	struct walk w = { .name = name, .text = text, .errors = errors };
	bool seen[HUB_ARRAY_SIZE(settings_keys)] = { false };
	int tenants_tok = -1, channels_tok = -1;
	int ret;

	cfg->refs = 1;
	hub_pool_init(&cfg->pool);
	w.pool = &cfg->pool;
	cfg->path = hub_pool_strdup(&cfg->pool, name);
	if (text.len > CONFIG_MAX_BYTES) {
		walk_error(&w, -1, "(file)", "larger than %d bytes", CONFIG_MAX_BYTES);
		ret = -EFBIG;
		goto out;
	}
	ret = hub_json_parse(&cfg->pool, text, CONFIG_MAX_TOKENS, &w.doc, &jerr);
	if (ret < 0) {
		/* jerr is "LINE:COL: problem" */
		if (errors)
			hub_buf_addf(errors, "%s:%s\n", name, jerr.msg);
		ret = -EINVAL;
		goto out;
	}
	if (!hub_json_is(&w.doc, 0, HUB_JSON_OBJECT)) {
		walk_error(&w, 0, "(top)", "must be a JSON object");
		ret = -EINVAL;
		goto out;
	}
	for (int k = hub_json_first(&w.doc, 0); k >= 0; k = hub_json_after(&w.doc, k)) {
		struct hub_str key = hub_json_raw(&w.doc, k);
		if (hub_str_eqs(key, "tenants"))
			tenants_tok = k + 1;
		else if (hub_str_eqs(key, "channels"))
			channels_tok = k + 1;
	}
	walk_object(&w, 0, "", "", settings_keys, HUB_ARRAY_SIZE(settings_keys), &cfg->settings,
		    seen);
	finish_object(&w, 0, "", settings_keys, HUB_ARRAY_SIZE(settings_keys), &cfg->settings,
		      seen);
	if (tenants_tok >= 0)
		walk_array(&w, tenants_tok, "tenants", tenant_keys, HUB_ARRAY_SIZE(tenant_keys),
			   sizeof(struct hub_tenant), (void **)&cfg->tenants, &cfg->ntenants);
	if (channels_tok >= 0)
		walk_array(&w, channels_tok, "channels", channel_keys,
			   HUB_ARRAY_SIZE(channel_keys), sizeof(struct hub_channel),
			   (void **)&cfg->channels, &cfg->nchannels);
	validate(&w, cfg, tenants_tok, channels_tok);
	validate_redis_metrics(&w, cfg, seen);
	ret = hub_keyring_new(cfg->settings.secrets.master_key,
			      cfg->settings.secrets.previous_master_key, &cfg->keyring, &jerr);
	if (ret < 0) {
		bool prev = strstr(jerr.msg, "previous") != NULL;

		walk_error(&w, key_tok(&w, "secrets", prev ? "previous_master_key" : "master_key"),
			   prev ? "secrets.previous_master_key" : "secrets.master_key", "%s",
			   jerr.msg);
	}
	if (w.nerrors) {
		ret = -EINVAL;
		goto out;
	}
	*out = cfg;
	cfg = NULL;
	ret = 0;
out:
	hub_config_unref(cfg);
	return ret;
}

int hub_config_load(const char *path, struct hub_config **out, struct hub_buf *errors)
{
	struct hub_buf text = HUB_BUF_INIT;
	int ret;

	ret = hub_buf_read_file(&text, path);
	if (ret < 0) {
		if (errors)
			hub_buf_addf(errors, "%s: %s\n", path, strerror(-ret));
		goto out;
	}
	ret = hub_config_parse(path, hub_buf_str(&text), out, errors);
out:
	hub_buf_release(&text);
	return ret;
}

struct hub_config *hub_config_ref(struct hub_config *cfg)
{
	cfg->refs++;
	return cfg;
}

void hub_config_unref(struct hub_config *cfg)
{
	if (!cfg || --cfg->refs > 0)
		return;
	hub_pool_release(&cfg->pool);
	hub_keyring_free(cfg->keyring);
	hub_config_unref(cfg->base);
	free(cfg);
}

static const char *pool_strdup0(struct hub_pool *pool, const char *s)
{
	return s ? hub_pool_strdup(pool, s) : NULL;
}

int hub_config_with_channels(struct hub_config *base, const struct hub_channel *channels,
			     size_t n, struct hub_config **out)
{
	struct hub_config *cfg = hub_xcalloc(1, sizeof(*cfg));
	int skipped = 0;

	cfg->refs = 1;
	cfg->base = hub_config_ref(base);
	hub_pool_init(&cfg->pool);
	cfg->path = base->path;
	cfg->settings = base->settings;
	cfg->tenants = base->tenants;
	cfg->ntenants = base->ntenants;
	cfg->channels = hub_pool_calloc(&cfg->pool, base->nchannels + n + 1,
					sizeof(*cfg->channels));
	if (base->nchannels) /* memcpy from NULL is undefined even for 0 bytes */
		memcpy(cfg->channels, base->channels, base->nchannels * sizeof(*cfg->channels));
	cfg->nchannels = base->nchannels;
	for (size_t i = 0; i < n; i++) {
		const struct hub_channel *c = &channels[i];
		struct hub_channel *dup = NULL;

		for (size_t j = 0; j < base->nchannels && c->id; j++)
			if (strcmp(cfg->channels[j].id, c->id) == 0)
				dup = &cfg->channels[j];
		if (dup) {
			dup->enabled = c->enabled;
			continue;
		}
		/* a disabled channel is kept without its secrets (a deleted one has none): the
		 * webhooks of a channel known to be off answer 404 and its outbox fails at once */
		if (!c->id || !c->tenant || !c->account_id || c->kind < HUB_CHANNEL_WHATSAPP ||
		    c->kind > HUB_CHANNEL_WEB ||
		    (c->enabled && (!*c->account_id || !c->app_secret || !*c->app_secret ||
				    (c->kind == HUB_CHANNEL_WEB && !c->web)))) {
			skipped++;
			continue;
		}
		struct hub_channel *to = &cfg->channels[cfg->nchannels++];
		to->id = hub_pool_strdup(&cfg->pool, c->id);
		to->tenant = hub_pool_strdup(&cfg->pool, c->tenant);
		to->kind = c->kind;
		to->account_id = hub_pool_strdup(&cfg->pool, c->account_id);
		to->app_secret = hub_pool_strdup(&cfg->pool, c->app_secret ? c->app_secret : "");
		to->verify_token = pool_strdup0(&cfg->pool, c->verify_token);
		to->access_token = pool_strdup0(&cfg->pool, c->access_token);
		to->web = pool_strdup0(&cfg->pool, c->web);
		to->polling = c->polling;
		to->enabled = c->enabled;
	}
	*out = cfg;
	return skipped;
}

const char *hub_config_path(const struct hub_config *cfg)
{
	return cfg->path;
}

const struct hub_settings *hub_config_settings(const struct hub_config *cfg)
{
	return &cfg->settings;
}

const char *hub_config_direct_url(const struct hub_config *cfg)
{
	return cfg->settings.database.direct_url ? cfg->settings.database.direct_url
						 : cfg->settings.database.url;
}

const struct hub_keyring *hub_config_keyring(const struct hub_config *cfg)
{
	return cfg->base ? cfg->base->keyring : cfg->keyring;
}

const struct hub_channel *hub_config_channel(const struct hub_config *cfg, struct hub_str id)
{
	for (size_t i = 0; i < cfg->nchannels; i++)
		if (hub_str_eqs(id, cfg->channels[i].id))
			return &cfg->channels[i];
	return NULL;
}

const struct hub_channel *hub_config_channel_at(const struct hub_config *cfg, size_t i)
{
	return i < cfg->nchannels ? &cfg->channels[i] : NULL;
}

const struct hub_tenant *hub_config_tenant_at(const struct hub_config *cfg, size_t i)
{
	return i < cfg->ntenants ? &cfg->tenants[i] : NULL;
}

const struct hub_tenant *hub_config_tenant(const struct hub_config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->ntenants; i++)
		if (cfg->tenants[i].id && strcmp(cfg->tenants[i].id, id) == 0)
			return &cfg->tenants[i];
	return NULL;
}

static bool field_equal(const struct cfg_key *k, const void *a, const void *b)
{
	const char *fa = (const char *)a + k->off, *fb = (const char *)b + k->off;

	switch (k->type) {
	case CFG_T_INT:
		return *(const int *)fa == *(const int *)fb;
	case CFG_T_SIZE:
		return *(const size_t *)fa == *(const size_t *)fb;
	case CFG_T_LEVEL:
		return *(const enum hub_log_level *)fa == *(const enum hub_log_level *)fb;
	case CFG_T_BOOL:
	case CFG_T_MODE:
		return *(const bool *)fa == *(const bool *)fb;
	case CFG_T_KIND:
		return *(const enum hub_channel_kind *)fa == *(const enum hub_channel_kind *)fb;
	default: {
		const char *sa = *(const char *const *)fa, *sb = *(const char *const *)fb;
		return sa == sb || (sa && sb && strcmp(sa, sb) == 0);
	}
	}
}

size_t hub_config_restart_keys(const struct hub_config *old, const struct hub_config *new_cfg,
			       struct hub_buf *out)
{
	size_t n = 0;

	for (size_t i = 0; i < HUB_ARRAY_SIZE(settings_keys); i++) {
		const struct cfg_key *k = &settings_keys[i];
		if (!(k->flags & CFG_RESTART) ||
		    field_equal(k, &old->settings, &new_cfg->settings))
			continue;
		hub_buf_addf(out, "%s%s", n ? ", " : "", k->name);
		n++;
	}
	return n;
}

static void dump_fields(struct hub_jw *jw, const struct cfg_key *keys, size_t n, const void *base)
{
	for (size_t i = 0; i < n; i++) {
		const struct cfg_key *k = &keys[i];
		const char *f = (const char *)base + k->off;

		hub_jw_key(jw, k->name);
		switch (k->type) {
		case CFG_T_INT:
			hub_jw_int(jw, *(const int *)f);
			break;
		case CFG_T_SIZE:
			hub_jw_int(jw, (int64_t)*(const size_t *)f);
			break;
		case CFG_T_LEVEL:
			hub_jw_cstr(jw, hub_log_level_name(*(const enum hub_log_level *)f));
			break;
		case CFG_T_BOOL:
			hub_jw_bool(jw, *(const bool *)f);
			break;
		case CFG_T_MODE:
			hub_jw_cstr(jw, *(const bool *)f ? "polling" : "webhook");
			break;
		case CFG_T_KIND:
			hub_jw_cstr(jw, hub_channel_kind_name(*(const enum hub_channel_kind *)f));
			break;
		case CFG_T_SECRET:
			hub_jw_cstr(jw, *(const char *const *)f ? "<redacted>" : NULL);
			break;
		default:
			hub_jw_cstr(jw, *(const char *const *)f);
			break;
		}
	}
}

void hub_config_dump(const struct hub_config *cfg, struct hub_buf *out)
{
	struct hub_jw jw;

	hub_jw_init(&jw, out);
	hub_jw_obj_open(&jw);
	dump_fields(&jw, settings_keys, HUB_ARRAY_SIZE(settings_keys), &cfg->settings);
	hub_jw_key(&jw, "tenants");
	hub_jw_arr_open(&jw);
	for (size_t i = 0; i < cfg->ntenants; i++) {
		hub_jw_obj_open(&jw);
		dump_fields(&jw, tenant_keys, HUB_ARRAY_SIZE(tenant_keys), &cfg->tenants[i]);
		hub_jw_obj_close(&jw);
	}
	hub_jw_arr_close(&jw);
	hub_jw_key(&jw, "channels");
	hub_jw_arr_open(&jw);
	for (size_t i = 0; i < cfg->nchannels; i++) {
		hub_jw_obj_open(&jw);
		dump_fields(&jw, channel_keys, HUB_ARRAY_SIZE(channel_keys), &cfg->channels[i]);
		hub_jw_obj_close(&jw);
	}
	hub_jw_arr_close(&jw);
	hub_jw_obj_close(&jw);
}
