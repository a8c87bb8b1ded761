/* daemon/data/redis.c - hiredis 0.14.1 driven by uv_poll and uv_timer on hubd's loop.
 * Our own adapter over ac->ev (hiredis's libuv adapter ignores poll errors and has no
 * timeouts), our own connect and command timeouts, reconnects with backoff, a heartbeat that
 * proves the subscriber still receives. Knows nothing about what channels and payloads mean. */
#include "daemon/data/redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "lib/backoff.h"
#include "lib/crypto.h"
#include "lib/log.h"

#define TAG "redis"
/* Reconnects: from 100 ms, doubling, at most a second apart, jittered. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
#define PENDING_MAX 100000 /* commands awaiting replies on one connection */
#define DB_MAX 1000000

/*
 * Freeing a hiredis context is safe only where hiredis is not on the stack (our timers, our
 * poll callback) or from inside a reply callback (hiredis defers it until the callback
 * returns). Never from onConnect or onDisconnect: there hiredis frees the context itself or
 * still uses it after we return. conn_fail() frees; conn_retry() only schedules.
 * A context that we free ourselves first gets ac->data = NULL, so its late callbacks (NULL
 * replies, onDisconnect) are ignored.
 */

enum conn_state {
	CONN_OFF,        /* not wanted yet (no subscription) or closed */
	CONN_WAIT,       /* the backoff timer runs */
	CONN_CONNECTING, /* connect(2) in progress; the connect timeout runs */
	CONN_HANDSHAKE,  /* AUTH/SELECT/PING or (P)SUBSCRIBE sent; the watchdog runs */
	CONN_UP,
};

struct conn {
	struct hub_redis *r;
	const char *name;       /* "commands" or "subscriber", for logs */
	bool sub;               /* the subscriber connection */
	enum conn_state state;
	redisAsyncContext *ac;  /* the live context or NULL; ac->data points back here */
	uv_timer_t timer;       /* backoff, connect timeout, then the watchdog tick */
	const char *fail_later; /* a failure noticed where the context must not be freed */
	unsigned failures;      /* attempts failed in a row, for the backoff (lib/backoff.h) */
	unsigned pending;       /* commands sent and not yet answered */
	uint64_t progress_at;   /* last reply, or the send that made pending non-zero */
	bool ever_up;           /* for the reconnects counter */
	bool warned;            /* a warning was logged since the last "connected" */
	bool wants_master;      /* CONN_WAIT until the sentinels named the master */
	bool ping_out;          /* commands: a health PING awaits its reply */
	uint64_t ping_at;       /* commands: when the last PING was sent */
	uint64_t hb_wait_since; /* subscriber: oldest heartbeat published and not seen yet */
};

/* Our event-library glue for one hiredis context; freed in its close callback. */
struct rpoll {
	uv_poll_t poll;
	struct hub_redis *r;
	redisAsyncContext *ac; /* NULL once hiredis called cleanup */
	int events;            /* UV_READABLE | UV_WRITABLE wanted by hiredis */
};

/* One Redis Sentinel of a redis-sentinel:// URL. */
struct sentinel {
	char ip[INET_ADDRSTRLEN];
	int port;
};

struct hub_redis {
	uv_loop_t *loop;
	char *ip;       /* IPv4 literal, or NULL with path; with sentinels the master found */
	int port;
	/* redis-sentinel://: the master is asked of the sentinels (on a worker thread, with
	 * hiredis's blocking API: only when a connection is to be made) and checked with ROLE */
	struct sentinel *sentinels;
	int nsentinels;
	char *master_name;
	bool master_known;   /* ip:port is the master the sentinels named; false after a loss */
	bool resolving;      /* resolve_req is queued or running */
	uv_work_t resolve_req;
	char found_ip[INET_ADDRSTRLEN]; /* the worker's answer */
	int found_port;
	char resolve_err[200];
	char *path;     /* unix socket, or NULL */
	char *user;     /* AUTH user (Redis 6 ACL), or NULL */
	char *password; /* AUTH password, or NULL; never logged */
	int db;
	char addr[128]; /* for logs: "127.0.0.1:6379" or the socket path */
	int connect_timeout_ms, command_timeout_ms, ping_interval_ms, tick_ms;
	struct conn cmd, sub;
	char *pattern;  /* the subscription, or NULL */
	hub_redis_message_cb *on_message;
	hub_redis_resync_cb *on_resync;
	void *data;
	char hb_channel[48]; /* private heartbeat channel of this client */
	unsigned long long published, received, reconnects, errors;
	unsigned handles; /* open libuv handles; r is freed when the last one closed */
	bool closing;
	void (*close_cb)(void *data);
	void *close_data;
};

static void conn_start(struct conn *c);
static void on_timer(uv_timer_t *t);

/* ---- URL ---------------------------------------------------------------------------- */

static int pct_decode(const char *s, size_t n, char **out)
{
	struct hub_buf b = HUB_BUF_INIT;
	unsigned char ch;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			hub_buf_addch(&b, s[i]);
			continue;
		}
		if (i + 2 >= n)
			goto bad;
		if (hub_hex_decode((struct hub_str){ s + i + 1, 2 }, &ch, 1) < 0 || ch == 0)
			goto bad;
		hub_buf_addch(&b, ch);
		i += 2;
	}
	*out = hub_buf_detach(&b, NULL);
	return 0;
bad:
	hub_buf_release(&b);
	return -EINVAL;
}

static int parse_uint(const char *s, size_t n, long max, long *out)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 9)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* The userinfo [USER]:PASSWORD or PASSWORD (as redis-cli reads it) between p and at. */
static int parse_userinfo(struct hub_redis *r, const char *p, const char *at)
{
	const char *colon = memchr(p, ':', (size_t)(at - p));

	if (colon) {
		if (colon > p && pct_decode(p, (size_t)(colon - p), &r->user) < 0)
			return -EINVAL;
		if (pct_decode(colon + 1, (size_t)(at - colon - 1), &r->password) < 0)
			return -EINVAL;
	} else if (pct_decode(p, (size_t)(at - p), &r->password) < 0) {
		return -EINVAL;
	}
	if (r->password && !*r->password) {
		free(r->password);
		r->password = NULL;
	}
	return 0;
}

/* "IP[:PORT]" between host and end: an IPv4 literal (no DNS lookups on the loop), the port
 * defaulting to defport. */
static int parse_hostport(const char *host, const char *end, int defport,
			  char ip[INET_ADDRSTRLEN], int *port, struct hub_err *err)
{
	const char *colon = memchr(host, ':', (size_t)(end - host));
	struct in_addr a4;
	long v;

	if (host[0] == '[')
		return hub_err_set(err, -EINVAL,
				   "redis url: IPv6 is not supported (use IPv4 or unix://)");
	if ((size_t)((colon ? colon : end) - host) >= INET_ADDRSTRLEN)
		return hub_err_set(err, -EINVAL, "redis url: host must be an IPv4 address "
				   "(no DNS lookups on the loop)");
	memcpy(ip, host, (size_t)((colon ? colon : end) - host));
	ip[(colon ? colon : end) - host] = 0;
	if (inet_pton(AF_INET, ip, &a4) != 1)
		return hub_err_set(err, -EINVAL, "redis url: host must be an IPv4 address "
				   "(no DNS lookups on the loop)");
	*port = defport;
	if (colon) {
		if (parse_uint(colon + 1, (size_t)(end - colon - 1), 65535, &v) < 0 || v == 0)
			return hub_err_set(err, -EINVAL, "redis url: bad port");
		*port = (int)v;
	}
	return 0;
}

/* redis-sentinel://[USER:PASSWORD@]IP:PORT[,IP:PORT...]/MASTER[/DB], after the scheme:
 * the sentinels (port 26379 by default), the master's name, the db. */
static int parse_sentinels(struct hub_redis *r, const char *auth, struct hub_err *err)
{
	const char *slash = strchr(auth, '/'), *host = auth, *at = NULL, *name, *db;
	int ret;
	long v;

	if (!slash || !slash[1])
		return hub_err_set(err, -EINVAL, "redis url: redis-sentinel:// needs /MASTER_NAME "
				   "after the sentinels");
	for (const char *p = auth; p < slash; p++)
		if (*p == '@')
			at = p;
	if (at) {
		if (parse_userinfo(r, auth, at) < 0)
			return hub_err_set(err, -EINVAL, "redis url: bad %%-encoding in the "
					   "credentials");
		host = at + 1;
	}
	while (host < slash) {
		const char *comma = memchr(host, ',', (size_t)(slash - host));
		const char *end = comma ? comma : slash;
		struct sentinel *sn;

		if (r->nsentinels == 16)
			return hub_err_set(err, -EINVAL, "redis url: at most 16 sentinels");
		r->sentinels = hub_xrealloc(r->sentinels, (size_t)(r->nsentinels + 1) *
							  sizeof(*r->sentinels));
		sn = &r->sentinels[r->nsentinels++];
		ret = parse_hostport(host, end, 26379, sn->ip, &sn->port, err);
		if (ret < 0)
			return ret;
		host = end + (comma != NULL);
	}
	if (!r->nsentinels)
		return hub_err_set(err, -EINVAL, "redis url: no sentinel before the master name");
	name = slash + 1;
	db = strchr(name, '/');
	r->master_name = db ? hub_xmemdup(name, (size_t)(db - name)) : hub_xstrdup(name);
	for (const char *p = r->master_name; *p; p++)
		if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
		      ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')))
			return hub_err_set(err, -EINVAL, "redis url: the master name is letters, "
					   "digits, '-', '_' and '.'");
	if (!*r->master_name)
		return hub_err_set(err, -EINVAL, "redis url: empty master name");
	if (db && db[1]) {
		if (parse_uint(db + 1, strlen(db + 1), DB_MAX, &v) < 0)
			return hub_err_set(err, -EINVAL, "redis url: the path after the master name "
					   "must be a db number");
		r->db = (int)v;
	}
	snprintf(r->addr, sizeof(r->addr), "master %.64s (sentinels)", r->master_name);
	return 0;
}

/* Fills r's address, credentials and db; messages never repeat the URL (it may hold a
 * password). */
static int parse_url(struct hub_redis *r, const char *url, struct hub_err *err)
{
	const char *auth, *host, *end, *at, *slash;
	char ip[INET_ADDRSTRLEN];
	long v;
	int ret;

	if (!url || !*url)
		return hub_err_set(err, -EINVAL, "redis url: empty");
	if (!strncmp(url, "unix://", 7)) {
		const char *path = url + 7;
		size_t len;

		if (path[0] != '/') {
			/* unix://[USER]:PASSWORD@/path.sock: the userinfo ends at the first '@'
			 * (one in a password is written %40) */
			at = strchr(path, '@');
			if (at && at[1] == '/') {
				if (parse_userinfo(r, path, at) < 0)
					goto bad_auth;
				path = at + 1;
			}
		}
		len = strlen(path);
		if (path[0] != '/' || len >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return hub_err_set(err, -EINVAL,
					   "redis url: unix:// needs an absolute socket path "
					   "shorter than 108 bytes");
		r->path = hub_xstrdup(path);
		snprintf(r->addr, sizeof(r->addr), "%.100s", path);
		return 0;
	}
	/* hiredis 0.14 has no TLS (1.0 added it) and our loop drives its plain fds. */
	if (!strncmp(url, "rediss://", 9))
		return hub_err_set(err, -EINVAL,
				   "redis url: TLS (rediss://) is not supported: use unix:// on "
				   "the Redis host, or a private network (see the README)");
	if (!strncmp(url, "redis-sentinel://", 17))
		return parse_sentinels(r, url + 17, err);
	if (strncmp(url, "redis://", 8))
		return hub_err_set(err, -EINVAL, "redis url: must start with redis://, "
				   "redis-sentinel:// or unix://");

	auth = url + 8;
	slash = strchr(auth, '/');
	end = slash ? slash : auth + strlen(auth);
	at = NULL;
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	host = auth;
	if (at) {
		if (parse_userinfo(r, auth, at) < 0)
			goto bad_auth;
		host = at + 1;
	}

	ret = parse_hostport(host, end, 6379, ip, &r->port, err);
	if (ret < 0)
		return ret;
	r->ip = hub_xstrdup(ip);
	if (slash && slash[1]) {
		if (parse_uint(slash + 1, strlen(slash + 1), DB_MAX, &v) < 0)
			return hub_err_set(err, -EINVAL, "redis url: the path must be a db number");
		r->db = (int)v;
	}
	snprintf(r->addr, sizeof(r->addr), "%s:%d", r->ip, r->port);
	return 0;
bad_auth:
	return hub_err_set(err, -EINVAL, "redis url: bad %%-encoding in the credentials");
}

/* ---- handles and the adapter -------------------------------------------------------- */

static void free_redis(struct hub_redis *r)
{
	void (*cb)(void *data) = r->close_cb;
	void *data = r->close_data;

	free(r->ip);
	free(r->path);
	free(r->user);
	free(r->password);
	free(r->pattern);
	free(r->sentinels);
	free(r->master_name);
	free(r);
	if (cb)
		cb(data);
}

static void handle_closed(struct hub_redis *r)
{
	hub_assert(r->handles > 0);
	if (--r->handles == 0 && r->closing)
		free_redis(r);
}

static void on_timer_close(uv_handle_t *h)
{
	struct conn *c = hub_container_of((uv_timer_t *)h, struct conn, timer);

	handle_closed(c->r);
}

static void on_rpoll_close(uv_handle_t *h)
{
	struct rpoll *p = hub_container_of((uv_poll_t *)h, struct rpoll, poll);
	struct hub_redis *r = p->r;

	free(p);
	handle_closed(r);
}

static void conn_fail(struct conn *c, const char *reason);

/* Fails c from the next loop turn: for places where the context must not be freed. */
static void conn_fail_later(struct conn *c, const char *reason)
{
	if (c->r->closing)
		return;
	c->fail_later = reason;
	uv_timer_start(&c->timer, on_timer, 0, 0);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct rpoll *p = hub_container_of(h, struct rpoll, poll);
	struct conn *c;

	if (status < 0) {
		/* libuv stopped the handle (EPOLLERR). Let hiredis find the cause: while
		 * connecting a write event reads SO_ERROR and reports the refusal (the case
		 * that hiredis's own libuv adapter loses, hiredis #508); connected, a read
		 * fails with the socket's error. */
		if (p->ac && !(p->ac->c.flags & REDIS_CONNECTED))
			redisAsyncHandleWrite(p->ac);
		else if (p->ac)
			redisAsyncHandleRead(p->ac);
		if (p->ac && (c = p->ac->data))
			conn_fail(c, uv_strerror(status));
		return;
	}
	if ((events & UV_READABLE) && p->ac)
		redisAsyncHandleRead(p->ac);
	if ((events & UV_WRITABLE) && p->ac)
		redisAsyncHandleWrite(p->ac);
}

static void rpoll_update(struct rpoll *p)
{
	int rc;

	if (!p->ac)
		return;
	if (p->events)
		rc = uv_poll_start(&p->poll, p->events, on_poll);
	else
		rc = uv_poll_stop(&p->poll);
	if (rc < 0 && p->ac->data) {
		hub_log_err(TAG, "uv_poll_start: %s", uv_strerror(rc));
		conn_fail_later(p->ac->data, "poll error");
	}
}

static void ev_add_read(void *priv)
{
	struct rpoll *p = priv;

	p->events |= UV_READABLE;
	rpoll_update(p);
}

static void ev_del_read(void *priv)
{
	struct rpoll *p = priv;

	p->events &= ~UV_READABLE;
	rpoll_update(p);
}

static void ev_add_write(void *priv)
{
	struct rpoll *p = priv;

	p->events |= UV_WRITABLE;
	rpoll_update(p);
}

static void ev_del_write(void *priv)
{
	struct rpoll *p = priv;

	p->events &= ~UV_WRITABLE;
	rpoll_update(p);
}

/* hiredis calls this just before it closes the fd and frees the context. uv_close() takes
 * the fd out of epoll at once, so the close(2) that follows is safe. */
static void ev_cleanup(void *priv)
{
	struct rpoll *p = priv;
	redisAsyncContext *ac = p->ac;

	if (!ac)
		return;
	ac->ev.addRead = ac->ev.delRead = NULL;
	ac->ev.addWrite = ac->ev.delWrite = NULL;
	ac->ev.cleanup = NULL;
	ac->ev.data = NULL;
	p->ac = NULL;
	uv_close((uv_handle_t *)&p->poll, on_rpoll_close);
}

/* ---- connection state --------------------------------------------------------------- */

static uint64_t now_ms(const struct hub_redis *r)
{
	return uv_now(r->loop);
}

static void conn_sent(struct conn *c)
{
	if (c->pending++ == 0)
		c->progress_at = now_ms(c->r);
}

static void conn_got(struct conn *c)
{
	if (c->pending)
		c->pending--;
	c->progress_at = now_ms(c->r);
}

/* The context is gone (or hiredis is freeing it): count, log once, retry after backoff. */
static void conn_retry(struct conn *c, const char *reason)
{
	struct hub_redis *r = c->r;
	bool was_up = c->state == CONN_UP;
	uint64_t delay = hub_backoff_ms(BACKOFF_MIN_MS, BACKOFF_MAX_MS, ++c->failures);

	c->pending = 0;
	c->ping_out = false;
	c->hb_wait_since = 0;
	c->fail_later = NULL;
	if (r->closing) {
		c->state = CONN_OFF;
		return;
	}
	c->state = CONN_WAIT;
	r->errors++;
	if (r->sentinels)
		r->master_known = false; /* failed over, maybe: ask again before the next try */
	if (!c->warned) {
		if (was_up)
			hub_log_warn(TAG, "connection lost (%s, %s: %s); reconnecting", c->name,
				     r->addr, reason);
		else
			hub_log_warn(TAG, "cannot connect (%s, %s: %s); retrying", c->name,
				     r->addr, reason);
		c->warned = true;
	} else {
		hub_log_debug(TAG, "%s: %s: %s; retry in %" PRIu64 " ms", c->name, r->addr, reason,
			      delay);
	}
	uv_timer_start(&c->timer, on_timer, delay, 0);
}

/* Drops c's context (if any) and retries. Not from onConnect/onDisconnect. */
static void conn_fail(struct conn *c, const char *reason)
{
	redisAsyncContext *ac = c->ac;

	if (ac) {
		c->ac = NULL;
		ac->data = NULL;
		redisAsyncFree(ac);
	}
	conn_retry(c, reason);
}

/* Frees c's context for good (hub_redis_close). */
static void conn_drop(struct conn *c)
{
	redisAsyncContext *ac = c->ac;

	c->state = CONN_OFF;
	c->fail_later = NULL;
	if (ac) {
		c->ac = NULL;
		ac->data = NULL;
		redisAsyncFree(ac);
	}
}

static void conn_up(struct conn *c)
{
	struct hub_redis *r = c->r;

	c->state = CONN_UP;
	c->failures = 0;
	if (c->ever_up)
		r->reconnects++;
	c->ever_up = true;
	c->warned = false;
	c->ping_at = now_ms(r);
	hub_log_info(TAG, "connected (%s, %s)", c->name, r->addr);
}

/* Sends argv on c; the reply goes to fn(ac, reply, c). 0 or -ENOTCONN. */
static int conn_send(struct conn *c, redisCallbackFn *fn, int argc, const char **argv,
		     const size_t *lens)
{
	if (!c->ac || redisAsyncCommandArgv(c->ac, fn, c, argc, argv, lens) != REDIS_OK)
		return -ENOTCONN;
	conn_sent(c);
	return 0;
}

static const char *reply_error(const redisReply *reply)
{
	return reply->str ? reply->str : "error reply";
}

/* A reply of the context that c currently owns (not a NULL of a context being freed). */
static bool live_reply(struct conn *c, redisAsyncContext *ac, const redisReply *reply)
{
	return reply && c->ac == ac && !c->r->closing;
}

static void on_handshake_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = priv;
	const redisReply *rep = reply;

	if (!live_reply(c, ac, rep))
		return;
	conn_got(c);
	if (rep->type == REDIS_REPLY_ERROR) {
		/* Redis's words ("WRONGPASS ...") never repeat the password. Once, like
		 * conn_retry's warning. */
		if (!c->warned)
			hub_log_err(TAG, "%s: %s refused AUTH/SELECT: %.120s", c->name,
				    c->r->addr, reply_error(rep));
		conn_fail(c, "AUTH/SELECT refused");
	}
}

static void on_ping_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = priv;
	const redisReply *rep = reply;

	if (!live_reply(c, ac, rep))
		return;
	conn_got(c);
	c->ping_out = false;
	if (rep->type == REDIS_REPLY_ERROR) {
		/* In the handshake: "NOAUTH Authentication required." when Redis wants a
		 * password that the URL does not give. Once, like conn_retry's warning. */
		if (c->state == CONN_HANDSHAKE && !c->warned)
			hub_log_err(TAG, "%s: %s refused PING: %.120s", c->name, c->r->addr,
				    reply_error(rep));
		else
			hub_log_debug(TAG, "%s: PING: %.120s", c->name, reply_error(rep));
		conn_fail(c, "PING refused");
		return;
	}
	if (c->state == CONN_HANDSHAKE)
		conn_up(c);
}

static void on_publish_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = priv;
	const redisReply *rep = reply;

	if (!live_reply(c, ac, rep))
		return;
	conn_got(c);
	if (rep->type == REDIS_REPLY_ERROR)
		c->r->errors++;
}

static void on_heartbeat_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = priv;

	if (!live_reply(c, ac, reply))
		return;
	conn_got(c);
}

static bool elem_str(const redisReply *rep, size_t i, struct hub_str *out)
{
	if (rep->type != REDIS_REPLY_ARRAY || i >= rep->elements ||
	    rep->element[i]->type != REDIS_REPLY_STRING)
		return false;
	out->p = rep->element[i]->str;
	out->len = rep->element[i]->len;
	return true;
}

/* SUBSCRIBE of the heartbeat channel: its confirmation and the heartbeats. */
static void on_heartbeat(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = priv;
	struct hub_str kind;

	if (!live_reply(c, ac, reply) || !elem_str(reply, 0, &kind))
		return;
	if (hub_str_eqs(kind, "subscribe")) {
		conn_got(c);
	} else if (hub_str_eqs(kind, "message")) {
		c->hb_wait_since = 0;
		c->progress_at = now_ms(c->r);
	}
}

/* PSUBSCRIBE of the caller's pattern: its confirmation and the messages. */
static void on_pmessage(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = priv;
	struct hub_redis *r = c->r;
	struct hub_str kind, channel, payload;

	if (!live_reply(c, ac, reply) || !elem_str(reply, 0, &kind))
		return;
	if (hub_str_eqs(kind, "psubscribe")) {
		conn_got(c);
		if (c->state != CONN_HANDSHAKE)
			return;
		conn_up(c);
		if (r->on_resync)
			r->on_resync(r->data);
		return;
	}
	if (!hub_str_eqs(kind, "pmessage") || !elem_str(reply, 2, &channel) ||
	    !elem_str(reply, 3, &payload))
		return;
	if (hub_str_eqs(channel, r->hb_channel))
		return; /* our heartbeat, matched by the caller's pattern too */
	r->received++;
	r->on_message(channel, payload, r->data);
}

static int handshake(struct conn *c)
{
	struct hub_redis *r = c->r;
	const char *argv[3];
	size_t lens[3];
	char db[16];
	int argc = 0;

	if (r->password) {
		argv[argc++] = "AUTH";
		if (r->user)
			argv[argc++] = r->user;
		argv[argc++] = r->password;
		for (int i = 0; i < argc; i++)
			lens[i] = strlen(argv[i]);
		if (conn_send(c, on_handshake_reply, argc, argv, lens) < 0)
			return -ENOTCONN;
	}
	if (c->sub) {
		argv[0] = "SUBSCRIBE";
		argv[1] = r->hb_channel;
		lens[0] = 9;
		lens[1] = strlen(argv[1]);
		if (conn_send(c, on_heartbeat, 2, argv, lens) < 0)
			return -ENOTCONN;
		argv[0] = "PSUBSCRIBE";
		argv[1] = r->pattern;
		lens[0] = 10;
		lens[1] = strlen(argv[1]);
		return conn_send(c, on_pmessage, 2, argv, lens);
	}
	if (r->db) {
		snprintf(db, sizeof(db), "%d", r->db);
		argv[0] = "SELECT";
		argv[1] = db;
		lens[0] = 6;
		lens[1] = strlen(db);
		if (conn_send(c, on_handshake_reply, 2, argv, lens) < 0)
			return -ENOTCONN;
	}
	argv[0] = "PING";
	lens[0] = 4;
	if (conn_send(c, on_ping_reply, 1, argv, lens) < 0)
		return -ENOTCONN;
	c->ping_out = true;
	c->ping_at = now_ms(r);
	return 0;
}

/* hiredis: the first write event came. On error hiredis frees ac when we return. */
static void on_connect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	struct conn *c = ac->data;

	if (!c)
		return;
	if (status != REDIS_OK) {
		c->ac = NULL;
		ac->data = NULL;
		conn_retry(c, ac->errstr[0] ? ac->errstr : "connect failed");
		return;
	}
	c->state = CONN_HANDSHAKE;
	uv_timer_start(&c->timer, on_timer, c->r->tick_ms, c->r->tick_ms);
	if (handshake(c) < 0)
		conn_fail_later(c, "cannot queue the handshake");
}

/* hiredis: a connected context is going away; it frees ac when we return. */
static void on_disconnect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	struct conn *c = ac->data;

	(void)status;
	if (!c)
		return; /* we freed it ourselves */
	c->ac = NULL;
	ac->data = NULL;
	conn_retry(c, ac->err && ac->errstr[0] ? ac->errstr : "connection closed");
}

/* ---- Sentinel: which node is the master ------------------------------------------------ */

/* A reply's element i as a string, or NULL. */
static const char *reply_elem(const redisReply *rep, size_t i)
{
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements <= i ||
	    rep->element[i]->type != REDIS_REPLY_STRING)
		return NULL;
	return rep->element[i]->str;
}

/* On the worker thread (blocking hiredis, its own connections): ask each sentinel in turn
 * for the master's address and check with ROLE that the node is a master now. Fills
 * found_ip/found_port, or resolve_err (never a password). */
static void resolve_work(uv_work_t *req)
{
	struct hub_redis *r = req->data;
	struct timeval tv = { r->connect_timeout_ms / 1000, (r->connect_timeout_ms % 1000) * 1000 };

	r->found_port = 0;
	snprintf(r->resolve_err, sizeof(r->resolve_err), "no sentinel answered");
	for (int i = 0; i < r->nsentinels && !r->found_port; i++) {
		const struct sentinel *sn = &r->sentinels[i];
		redisContext *c = redisConnectWithTimeout(sn->ip, sn->port, tv);
		redisReply *rep = NULL;
		const char *ip, *port;
		struct in_addr a4;
		long v;

		if (!c || c->err) {
			snprintf(r->resolve_err, sizeof(r->resolve_err), "sentinel %s:%d: %s",
				 sn->ip, sn->port, c ? c->errstr : "out of memory");
			goto next;
		}
		redisSetTimeout(c, tv);
		rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s", r->master_name);
		ip = reply_elem(rep, 0);
		port = reply_elem(rep, 1);
		if (!ip || !port || inet_pton(AF_INET, ip, &a4) != 1 ||
		    parse_uint(port, strlen(port), 65535, &v) < 0 || v == 0) {
			snprintf(r->resolve_err, sizeof(r->resolve_err),
				 "sentinel %s:%d does not know master %s (or named no IPv4 address)",
				 sn->ip, sn->port, r->master_name);
			goto next;
		}
		snprintf(r->found_ip, sizeof(r->found_ip), "%s", ip);
		freeReplyObject(rep);
		rep = NULL;
		redisFree(c);
		/* a sentinel may lag behind a failover: the node itself says what it is */
		c = redisConnectWithTimeout(r->found_ip, (int)v, tv);
		if (!c || c->err) {
			snprintf(r->resolve_err, sizeof(r->resolve_err), "master %s at %s:%ld: %s",
				 r->master_name, r->found_ip, v, c ? c->errstr : "out of memory");
			goto next;
		}
		redisSetTimeout(c, tv);
		if (r->password) {
			rep = r->user ? redisCommand(c, "AUTH %s %s", r->user, r->password)
				      : redisCommand(c, "AUTH %s", r->password);
			if (!rep || rep->type == REDIS_REPLY_ERROR) {
				snprintf(r->resolve_err, sizeof(r->resolve_err),
					 "master %s at %s:%ld refused AUTH", r->master_name,
					 r->found_ip, v);
				goto next;
			}
			freeReplyObject(rep);
		}
		rep = redisCommand(c, "ROLE");
		if (!reply_elem(rep, 0) || strcmp(reply_elem(rep, 0), "master") != 0) {
			snprintf(r->resolve_err, sizeof(r->resolve_err),
				 "%s:%ld, named master %s, is not a master (yet)", r->found_ip, v,
				 r->master_name);
			goto next;
		}
		r->found_port = (int)v;
next:
		if (rep)
			freeReplyObject(rep);
		if (c)
			redisFree(c);
	}
}

static void resolve_done(uv_work_t *req, int status)
{
	struct hub_redis *r = req->data;
	struct conn *conns[2] = { &r->cmd, &r->sub };

	r->resolving = false;
	if (r->closing || status == UV_ECANCELED) {
		handle_closed(r);
		return;
	}
	if (r->found_port) {
		if (!r->ip || strcmp(r->ip, r->found_ip) != 0 || r->port != r->found_port)
			hub_log_info(TAG, "sentinels: master %s is %s:%d", r->master_name,
				     r->found_ip, r->found_port);
		free(r->ip);
		r->ip = hub_xstrdup(r->found_ip);
		r->port = r->found_port;
		r->master_known = true;
		snprintf(r->addr, sizeof(r->addr), "%s:%d (master %.64s)", r->ip, r->port,
			 r->master_name);
	}
	for (int i = 0; i < 2; i++) {
		struct conn *c = conns[i];

		if (c->state != CONN_WAIT || !c->wants_master)
			continue;
		c->wants_master = false;
		if (r->master_known)
			conn_start(c);
		else
			conn_retry(c, r->resolve_err);
	}
	handle_closed(r);
}

/* c waits (CONN_WAIT) until the sentinels are asked; one question at a time. */
static void resolve_master(struct conn *c)
{
	struct hub_redis *r = c->r;
	int rc;

	c->state = CONN_WAIT;
	c->wants_master = true;
	if (r->resolving)
		return;
	r->resolve_req.data = r;
	rc = uv_queue_work(r->loop, &r->resolve_req, resolve_work, resolve_done);
	hub_assert(rc == 0); /* libuv: only without a callback */
	r->resolving = true;
	r->handles++; /* r outlives the question */
}

static void conn_start(struct conn *c)
{
	struct hub_redis *r = c->r;
	redisAsyncContext *ac;
	struct rpoll *p;
	char reason[128];
	int rc;

	if (r->sentinels && !r->master_known) {
		resolve_master(c);
		return;
	}
	c->state = CONN_CONNECTING;
	c->pending = 0;
	c->ping_out = false;
	c->hb_wait_since = 0;
	c->fail_later = NULL;
	/* IPv4 literal or unix path: hiredis's getaddrinfo() does no DNS lookup. */
	ac = r->path ? redisAsyncConnectUnix(r->path) : redisAsyncConnect(r->ip, r->port);
	if (!ac) {
		conn_retry(c, "out of memory");
		return;
	}
	if (ac->err) {
		snprintf(reason, sizeof(reason), "%s", ac->errstr);
		redisAsyncFree(ac);
		conn_retry(c, reason);
		return;
	}
	p = hub_xcalloc(1, sizeof(*p));
	rc = uv_poll_init(r->loop, &p->poll, ac->c.fd);
	if (rc < 0) {
		free(p);
		redisAsyncFree(ac);
		conn_retry(c, uv_strerror(rc));
		return;
	}
	r->handles++;
	p->r = r;
	p->ac = ac;
	ac->ev.data = p;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	ac->data = c;
	c->ac = ac;
	/* Setting the connect callback asks for the first write event. */
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	uv_timer_start(&c->timer, on_timer, (uint64_t)r->connect_timeout_ms, 0);
}

static void send_health_ping(struct conn *c)
{
	struct hub_redis *r = c->r;
	const char *argv[3] = { "PING" };
	size_t lens[3] = { 4 };

	if (conn_send(c, on_ping_reply, 1, argv, lens) < 0)
		return;
	c->ping_out = true;
	c->ping_at = now_ms(r);
	if (r->sub.state != CONN_UP)
		return;
	/* The subscriber can only (un)subscribe, so we prove it still receives by publishing
	 * to its private channel; not seeing it within command_timeout drops it. */
	argv[0] = "PUBLISH";
	argv[1] = r->hb_channel;
	argv[2] = "";
	lens[0] = 7;
	lens[1] = strlen(r->hb_channel);
	lens[2] = 0;
	if (conn_send(c, on_heartbeat_reply, 3, argv, lens) == 0 && !r->sub.hb_wait_since)
		r->sub.hb_wait_since = now_ms(r);
}

static void conn_tick(struct conn *c)
{
	struct hub_redis *r = c->r;
	uint64_t now = now_ms(r);
	uint64_t limit = (uint64_t)r->command_timeout_ms;

	if (c->pending && now - c->progress_at >= limit) {
		conn_fail(c, "command timeout");
		return;
	}
	if (c->state != CONN_UP)
		return;
	if (c->sub) {
		if (c->hb_wait_since && now - c->hb_wait_since >= limit)
			conn_fail(c, "heartbeat timeout");
		return;
	}
	if (!c->ping_out && now - c->ping_at >= (uint64_t)r->ping_interval_ms)
		send_health_ping(c);
}

static void on_timer(uv_timer_t *t)
{
	struct conn *c = hub_container_of(t, struct conn, timer);
	const char *reason = c->fail_later;

	if (c->r->closing)
		return;
	if (reason) {
		c->fail_later = NULL;
		conn_fail(c, reason);
		return;
	}
	switch (c->state) {
	case CONN_WAIT:
		conn_start(c);
		break;
	case CONN_CONNECTING:
		conn_fail(c, "connect timeout");
		break;
	case CONN_HANDSHAKE:
	case CONN_UP:
		conn_tick(c);
		break;
	case CONN_OFF:
		break;
	}
}

/* ---- API ------------------------------------------------------------------------------ */

static void conn_init(struct hub_redis *r, struct conn *c, const char *name, bool sub)
{
	int rc;

	c->r = r;
	c->name = name;
	c->sub = sub;
	c->state = CONN_OFF;
	rc = uv_timer_init(r->loop, &c->timer);
	hub_assert(rc == 0); /* libuv: timers cannot fail to initialize */
	r->handles++;
}

int hub_redis_new(uv_loop_t *loop, const struct hub_redis_opts *opts, struct hub_redis **out,
		  struct hub_err *err)
{
	struct hub_redis *r = hub_xcalloc(1, sizeof(*r));
	unsigned char rnd[8];
	struct hub_buf hb = HUB_BUF_INIT;
	int ret, tick;

	*out = NULL;
	ret = parse_url(r, opts->url, err);
	if (ret < 0)
		goto out;
	ret = hub_random_bytes(rnd, sizeof(rnd));
	if (ret < 0) {
		ret = hub_err_set(err, ret, "redis: no random bytes: %s", strerror(-ret));
		goto out;
	}
	hub_buf_adds(&hb, "__hubd_redis_hb:");
	hub_buf_addhex(&hb, rnd, sizeof(rnd));
	hub_assert(hb.len < sizeof(r->hb_channel));
	memcpy(r->hb_channel, hb.p, hb.len + 1);

	r->loop = loop;
	r->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 2000;
	r->command_timeout_ms = opts->command_timeout_ms > 0 ? opts->command_timeout_ms : 2000;
	r->ping_interval_ms = opts->ping_interval_ms > 0 ? opts->ping_interval_ms : 1000;
	tick = (r->ping_interval_ms < r->command_timeout_ms ? r->ping_interval_ms
							   : r->command_timeout_ms) / 2;
	r->tick_ms = tick < 10 ? 10 : tick;
	conn_init(r, &r->cmd, "commands", false);
	conn_init(r, &r->sub, "subscriber", true);
	r->cmd.state = CONN_WAIT;
	uv_timer_start(&r->cmd.timer, on_timer, 0, 0);
	*out = r;
	r = NULL;
	ret = 0;
out:
	hub_buf_release(&hb);
	if (r) {
		free(r->ip);
		free(r->path);
		free(r->user);
		free(r->password);
		free(r->sentinels);
		free(r->master_name);
		free(r);
	}
	return ret;
}

bool hub_redis_ready(const struct hub_redis *r)
{
	if (!r || r->closing || r->cmd.state != CONN_UP)
		return false;
	return !r->cmd.ping_out ||
	       now_ms(r) - r->cmd.ping_at <= (uint64_t)r->command_timeout_ms;
}

bool hub_redis_receiving(const struct hub_redis *r)
{
	if (!hub_redis_ready(r) || r->sub.state != CONN_UP)
		return false;
	return !r->sub.hb_wait_since ||
	       now_ms(r) - r->sub.hb_wait_since <= (uint64_t)r->command_timeout_ms;
}

int hub_redis_publish(struct hub_redis *r, struct hub_str channel, struct hub_str payload)
{
	const char *argv[3];
	size_t lens[3];
	int ret;

	if (r->closing || r->cmd.state != CONN_UP)
		return -ENOTCONN;
	if (r->cmd.pending >= PENDING_MAX)
		return -ENOBUFS;
	argv[0] = "PUBLISH";
	argv[1] = channel.p ? channel.p : "";
	argv[2] = payload.p ? payload.p : "";
	lens[0] = 7;
	lens[1] = channel.len;
	lens[2] = payload.len;
	ret = conn_send(&r->cmd, on_publish_reply, 3, argv, lens);
	if (ret < 0)
		return ret;
	r->published++;
	return 0;
}

int hub_redis_subscribe(struct hub_redis *r, const char *pattern,
			hub_redis_message_cb *on_message, hub_redis_resync_cb *on_resync,
			void *data)
{
	if (r->closing)
		return -ECANCELED;
	if (r->pattern)
		return -EALREADY;
	if (!pattern || !*pattern || !on_message)
		return -EINVAL;
	r->pattern = hub_xstrdup(pattern);
	r->on_message = on_message;
	r->on_resync = on_resync;
	r->data = data;
	r->sub.state = CONN_WAIT;
	uv_timer_start(&r->sub.timer, on_timer, 0, 0);
	return 0;
}

void hub_redis_stats(const struct hub_redis *r, struct hub_redis_stats *out)
{
	out->up = hub_redis_ready(r);
	out->published = r->published;
	out->received = r->received;
	out->reconnects = r->reconnects;
	out->errors = r->errors;
}

void hub_redis_close(struct hub_redis *r, void (*cb)(void *data), void *data)
{
	if (!r || r->closing)
		return;
	r->closing = true;
	r->close_cb = cb;
	r->close_data = data;
	/* From inside a reply callback hiredis defers the free until it returns; the rpoll
	 * handle is counted, so r outlives it either way. */
	conn_drop(&r->cmd);
	conn_drop(&r->sub);
	uv_close((uv_handle_t *)&r->cmd.timer, on_timer_close);
	uv_close((uv_handle_t *)&r->sub.timer, on_timer_close);
}
