/* daemon/data/redis.h - a small Redis client for hubd on the libuv loop (hiredis 0.14.1).
 * Two connections: one for PUBLISH and health PINGs, one for a pattern subscription. Both
 * reconnect on their own with backoff; nothing here blocks the loop (IP or unix socket only).
 * Knows nothing about what the channels and payloads mean. */
#ifndef HUB_REDIS_H
#define HUB_REDIS_H

#include <stdbool.h>

#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/mem.h"

struct hub_redis;

struct hub_redis_opts {
	/* redis://IP:PORT[/DB], redis://[USER]:PASSWORD@IP:PORT[/DB], unix:///path.sock,
	 * unix://[USER]:PASSWORD@/path.sock. IP is an IPv4 literal (no DNS; hiredis 0.14
	 * cannot be kept from resolving an IPv6 literal as a name); the port defaults to 6379;
	 * userinfo may be %-encoded ('@' must be); with it every connection starts with AUTH
	 * (Redis 6 ACL users: AUTH USER PASSWORD). No TLS: hiredis 0.14 has none. Copied. */
	const char *url;
	int connect_timeout_ms; /* TCP/unix connect; <= 0: 2000 */
	int command_timeout_ms; /* a reply not seen this long drops the connection; <= 0: 2000 */
	int ping_interval_ms;   /* health check; <= 0: 1000 */
};

struct hub_redis_stats {
	bool up;                           /* hub_redis_ready() */
	unsigned long long published;      /* PUBLISH commands queued */
	unsigned long long received;       /* messages handed to on_message */
	unsigned long long reconnects;     /* connections re-established after a loss */
	unsigned long long errors;         /* failed connects, timeouts, lost links, error replies */
};

/* Called for every message of the subscription, on the loop. channel and payload are
 * borrowed: valid only during the call. May call hub_redis_close(). */
typedef void hub_redis_message_cb(struct hub_str channel, struct hub_str payload, void *data);
/* Called, on the loop, after every successful (re)subscription: messages published while
 * the subscription was down are lost, so the caller re-reads from the database. */
typedef void hub_redis_resync_cb(void *data);

/* Parses and validates opts->url (a host name is -EINVAL: no blocking DNS; so is rediss://;
 * err never repeats the URL: it may hold a password), then starts connecting in the
 * background. Never fails because Redis is down or refuses the password (logged as an
 * error, once until it succeeds, in Redis's words, never the password): the command
 * connection retries with exponential backoff (100 ms .. 5 s). 0 and *out (to be closed with
 * hub_redis_close), or a negative errno with err filled (err may be NULL).
 * The process must ignore SIGPIPE (hiredis writes with write(2)). */
int hub_redis_new(uv_loop_t *loop, const struct hub_redis_opts *opts, struct hub_redis **out,
		  struct hub_err *err) HUB_MUSTCHECK;

/* True when the command connection is up (AUTH/SELECT done) and no PING has gone
 * unanswered for longer than command_timeout_ms. */
bool hub_redis_ready(const struct hub_redis *r);
/* hub_redis_ready(), and the subscription is up and its heartbeat not overdue: what is
 * published reaches the subscriber. */
bool hub_redis_receiving(const struct hub_redis *r);

/* Fire-and-forget PUBLISH of payload to channel on the command connection (both copied,
 * binary-safe, never logged). 0 when queued (the reply only feeds the stats); -ENOTCONN
 * while the command connection is down or r is closing; -ENOBUFS when too many commands
 * already await their replies. Delivery is at most once. */
int hub_redis_publish(struct hub_redis *r, struct hub_str channel, struct hub_str payload)
	HUB_MUSTCHECK;

/* Subscribes to pattern (PSUBSCRIBE; copied) on a second connection of its own, as a
 * subscribed connection can only (un)subscribe. on_message runs for every message whose
 * channel matches; on_resync after every (re)subscription succeeds. Both get data. The
 * subscription lives until hub_redis_close, reconnecting on its own.
 * 0; -EALREADY when r already has a subscription (at most one); -EINVAL for an empty
 * pattern or a NULL on_message; -ECANCELED while closing. On error no callback runs. */
int hub_redis_subscribe(struct hub_redis *r, const char *pattern,
			hub_redis_message_cb *on_message, hub_redis_resync_cb *on_resync,
			void *data) HUB_MUSTCHECK;

/* Counters since hub_redis_new. */
void hub_redis_stats(const struct hub_redis *r, struct hub_redis_stats *out);

/* Closes both connections (no callback of hub_redis_subscribe runs afterwards) and every
 * handle, frees r, then calls cb(data) on the loop (cb may be NULL). May be called from
 * on_message or on_resync. Idempotent until cb has run; NULL-safe. */
void hub_redis_close(struct hub_redis *r, void (*cb)(void *data), void *data);

#endif
