/* daemon/data/store.c - asynchronous PostgreSQL pool for hubd (see store.h): libpq in
 * non-blocking mode on uv_poll, one query per connection, a FIFO of waiting queries,
 * reconnection with backoff; and the blocking migration runner. Knows nothing about what
 * the queries mean. */
#include "daemon/data/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/core/embed.h"
#include "lib/backoff.h"
#include "lib/buf.h"
#include "lib/log.h"

#define TAG "store"
/* Reconnects: from 100 ms, doubling, at most a second apart (lib/backoff.h, jittered), so
 * that the service is back within a second of the database and the pool's connections do
 * not knock in lockstep. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
/* A running query with no answer this long after statement_timeout: the server or the
 * network is gone (statement_timeout itself answers 57014 on a live server). */
#define QUERY_GRACE_MS 2000
#define POOL_MAX 256
/* pg_advisory_lock() key of hub_store_migrate(): "baygehub" in ASCII. */
#define MIGRATE_LOCK_KEY "7089063281563252066"

struct query {
	struct query *next;
	hub_store_cb *cb;
	void *data;
	uint64_t deadline; /* uv_now() ms after which a waiting query fails -ETIMEDOUT */
	int nparams;
	char **params;     /* in the same allocation as the query; NULL entries are NULL */
	int *lengths;      /* likewise; NULL: all text */
	int *formats;      /* likewise: 1 for a binary parameter */
	int result_format; /* 1: binary results */
	char *sql;         /* likewise */
};

enum conn_state {
	CONN_DOWN,       /* waiting for the backoff timer to try again */
	CONN_CONNECTING, /* PQconnectPoll() steps */
	CONN_IDLE,       /* open, no query */
	CONN_BUSY,       /* running c->q */
	CONN_CLOSED,     /* the store is closing */
};

/* A uv_poll_t on a dup() of PQsocket(): libpq may close or replace its socket while we
 * still poll, so we poll our own descriptor, identified by the socket's inode. */
struct pollh {
	uv_poll_t h;
	struct hub_store *st;
	struct conn *c; /* NULL once detached (closing) */
	int fd;         /* ours, closed in the close callback */
	dev_t dev;
	ino_t ino;
};

struct conn {
	struct hub_store *st;
	int id;                /* for logs */
	enum conn_state state;
	PGconn *pg;            /* NULL while DOWN */
	struct pollh *poll;    /* NULL when not polling */
	int events;            /* what poll watches */
	uv_timer_t timer;      /* connect timeout, backoff, or the running query's deadline */
	unsigned failures;     /* connection attempts failed in a row; 0 after a success */
	unsigned backoff_ms;   /* the running backoff, for the log */
	struct query *q;       /* the running query */
	PGresult *res;         /* its last result so far */
	int qstatus;           /* 0, or the status of its first error result */
	bool flushing;         /* PQflush() said 1: wait for writable too */
	bool drop;             /* the running query's error says: not this server (below) */
	unsigned gen;          /* st->pool.gen when this attempt started */
	bool recycle;          /* hub_store_reconnect_current() during its callback */
};

/* What PQconnectStartParams() gets: the user's conninfo plus ours. */
struct params {
	PQconninfoOption *parsed; /* owns the user's keywords and values */
	const char **keys;        /* NULL-terminated */
	const char **vals;
	char *own_options;        /* values we built */
	char *own_tcp_timeout;
	/* A multi-host conninfo (host=a,b,c): the index in keys/vals of host, hostaddr and
	 * port (-1: absent), our rotated copies of their lists, and how often they were
	 * rotated (params_rotate()). */
	int list_idx[3];
	char *own_list[3];
	unsigned gen;
};

struct hub_store {
	uv_loop_t *loop;
	struct hub_store_opts opts;
	char *conninfo, *listen_conninfo, *warm_sql;
	struct params pool;       /* the pool's connections */
	struct params direct;     /* LISTEN's: PostgreSQL itself, never a pooler */
	struct conn *conns;
	struct query *head, *tail; /* waiting for a connection, FIFO */
	int waiting, connected, idle, busy, warming;
	/* The first warm-ups are over (or there are none): until then nothing is dispatched,
	 * so that the first webhooks and replies never meet a cold connection. */
	bool warmed;
	bool last_connect_failed;
	/* The last query to finish failed for want of a server (-ECONNRESET): through a
	 * pooler, hubd's connections stay up while the pooler has no PostgreSQL to give. */
	bool server_lost;
	uv_timer_t queue_timer;    /* the head's deadline */
	bool closing;
	bool open; /* hub_store_open() was called */
	int handles;               /* initialized and not yet closed */
	struct conn *finishing;    /* whose query's callback is running */
	void (*close_cb)(void *data);
	void *close_data;
	unsigned long long queries_total, errors_total;
	struct listener *listener; /* hub_store_listen()'s connection, once one is asked */
};

static void listeners_close(struct hub_store *st);
static void conn_start(struct conn *c);
static int conn_send(struct conn *c, struct query *q);
static void dispatch(struct hub_store *st);
static void on_poll(uv_poll_t *h, int status, int events);

/* --- queries ------------------------------------------------------------------------ */

/* lengths NULL: text parameters (NUL-terminated); else lengths[i] >= 0 makes params[i] a
 * binary one of that many bytes. */
static struct query *query_new(const char *sql, int nparams, const char *const *params,
			       const int *lengths)
{
	size_t size = sizeof(struct query) + (size_t)nparams * sizeof(char *) + strlen(sql) + 1;
	struct query *q;
	char *p;

	if (lengths)
		size += 2 * (size_t)nparams * sizeof(int);
	for (int i = 0; i < nparams; i++)
		if (params[i])
			size += (lengths && lengths[i] >= 0 ? (size_t)lengths[i] :
							      strlen(params[i])) + 1;
	q = hub_xmalloc(size);
	memset(q, 0, sizeof(*q));
	q->nparams = nparams;
	q->params = (char **)(q + 1);
	p = (char *)(q->params + nparams);
	if (lengths) {
		q->lengths = (int *)p;
		q->formats = q->lengths + nparams;
		p = (char *)(q->formats + nparams);
	}
	for (int i = 0; i < nparams; i++) {
		bool bin = lengths && lengths[i] >= 0;
		size_t n;

		if (q->lengths) {
			q->lengths[i] = bin ? lengths[i] : 0;
			q->formats[i] = bin;
		}
		if (!params[i]) {
			q->params[i] = NULL;
			continue;
		}
		n = bin ? (size_t)lengths[i] : strlen(params[i]);
		memcpy(p, params[i], n);
		p[n] = '\0';
		q->params[i] = p;
		p += n + 1;
	}
	memcpy(p, sql, strlen(sql) + 1);
	q->sql = p;
	return q;
}

/* Runs the query's callback once and frees it. res is passed only on success. */
static void query_finish(struct hub_store *st, struct query *q, int status, PGresult *res)
{
	if (status < 0)
		st->errors_total++;
	if (status >= 0 || status == -ECONNRESET)
		st->server_lost = status == -ECONNRESET;
	q->cb(status, status < 0 ? NULL : res, q->data);
	free(q);
}

static void queue_push(struct hub_store *st, struct query *q)
{
	q->next = NULL;
	if (st->tail)
		st->tail->next = q;
	else
		st->head = q;
	st->tail = q;
	st->waiting++;
}

static void queue_push_front(struct hub_store *st, struct query *q)
{
	q->next = st->head;
	st->head = q;
	if (!st->tail)
		st->tail = q;
	st->waiting++;
}

static struct query *queue_pop(struct hub_store *st)
{
	struct query *q = st->head;

	if (!q)
		return NULL;
	st->head = q->next;
	if (!st->head)
		st->tail = NULL;
	st->waiting--;
	q->next = NULL;
	return q;
}

static void on_queue_timer(uv_timer_t *t);

static void queue_arm(struct hub_store *st)
{
	uint64_t now = uv_now(st->loop);

	if (st->closing)
		return;
	if (!st->head) {
		uv_timer_stop(&st->queue_timer);
		return;
	}
	uv_timer_start(&st->queue_timer, on_queue_timer,
		       st->head->deadline > now ? st->head->deadline - now : 0, 0);
}

/* Fails every waiting query with status; callbacks may re-enter the store. */
static void queue_fail_all(struct hub_store *st, int status)
{
	struct query *q;

	while ((q = queue_pop(st)))
		query_finish(st, q, status, NULL);
	queue_arm(st);
}

static void on_queue_timer(uv_timer_t *t)
{
	struct hub_store *st = hub_container_of(t, struct hub_store, queue_timer);
	uint64_t now = uv_now(st->loop);

	while (st->head && st->head->deadline <= now && !st->closing) {
		struct query *q = queue_pop(st);

		hub_log_warn(TAG, "query waited %d ms for a connection: timed out",
			     st->opts.queue_timeout_ms);
		query_finish(st, q, -ETIMEDOUT, NULL);
	}
	queue_arm(st);
}

/* --- logging ------------------------------------------------------------------------ */

/* The statement's first words ("SELECT * FROM hub_ingest_inbound"), never its parameters. */
static void first_words(const char *sql, char *out, size_t size)
{
	size_t n = 0;
	int words = 0;
	bool space = true;

	for (const char *p = sql; *p && n + 1 < size && *p != '(' && *p != ';'; p++) {
		bool ws = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r';

		if (ws) {
			if (!space && ++words == 4)
				break;
			space = true;
			continue;
		}
		if (space && n > 0) {
			if (n + 2 >= size)
				break;
			out[n++] = ' ';
		}
		space = false;
		out[n++] = *p;
	}
	out[n] = '\0';
}

/* libpq's messages end with a newline and may span lines: one line for our log. */
static void one_line(const char *msg, char *out, size_t size)
{
	size_t n = 0;

	for (const char *p = msg ? msg : ""; *p && n + 1 < size; p++)
		out[n++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

static void on_notice(void *arg, const char *message)
{
	struct conn *c = arg;

	/* A notice may quote data: its size only. */
	hub_log_debug(TAG, "conn=%d server notice (%zu bytes)", c->id, strlen(message));
}

/* An error after which the connection must not be used again: a connection exception
 * (08...), an administrator's or a crash's shutdown (57P01-57P03: a failover stops the old
 * primary), or read_only_sql_transaction (25006): the server is a standby, or a demoted
 * primary. Reconnecting re-resolves the primary (a multi-host conninfo with
 * target_session_attrs=read-write), so the next attempt lands on the new one. */
static bool error_drops_connection(const char *state)
{
	return state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
			 strcmp(state, "25006") == 0);
}

/* -EIO for a server error, with the exceptions that mean something to callers. */
static int map_error(PGconn *pg, const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (!state)
		return PQstatus(pg) == CONNECTION_BAD ? -ECONNRESET : -EIO;
	if (strcmp(state, "57014") == 0) /* query_canceled: statement_timeout */
		return -ETIMEDOUT;
	if (error_drops_connection(state))
		return -ECONNRESET; /* not this server: nothing was done, try again */
	if (strcmp(state, "P0002") == 0) /* no_data_found: our functions' "unknown ..." */
		return -ENOENT;
	return -EIO;
}

static void log_query_error(struct conn *c, const PGresult *res, int status)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
	char words[64];

	first_words(c->q->sql, words, sizeof(words));
	hub_log(status == -EIO ? HUB_LOG_ERROR : HUB_LOG_WARNING, TAG,
		"conn=%d %s: server error SQLSTATE %s%s%s", c->id, words, state ? state : "-",
		cons ? " constraint " : "", cons ? cons : "");
}

/* --- polling ------------------------------------------------------------------------ */

static void params_free(struct params *pa)
{
	free(pa->keys);
	free(pa->vals);
	PQconninfoFree(pa->parsed);
	free(pa->own_options);
	free(pa->own_tcp_timeout);
	for (int i = 0; i < 3; i++)
		free(pa->own_list[i]);
}

/* libpq's PQconnectPoll() has no per-host timeout (connect_timeout applies only to the
 * blocking calls), so with host=a,b,c an attempt that hangs on a (a dead machine that
 * drops packets, a stalled server) is ended by our connect timer before b is tried, and
 * the next attempt starts at a again. After such a timeout the lists start at the next
 * host ("a,b,c" becomes "b,c,a"), once for the attempts that started with one order
 * (gen). A single port applies to every host and stays. */
static void params_rotate(struct params *pa, unsigned gen)
{
	if (gen != pa->gen)
		return;
	pa->gen++;
	for (int i = 0; i < 3; i++) {
		int k = pa->list_idx[i];
		const char *v, *comma;
		struct hub_buf b = HUB_BUF_INIT;

		if (k < 0)
			continue;
		v = pa->vals[k];
		comma = strchr(v, ',');
		if (!comma)
			continue;
		hub_buf_addf(&b, "%s,%.*s", comma + 1, (int)(comma - v), v);
		free(pa->own_list[i]);
		pa->own_list[i] = hub_buf_detach(&b, NULL);
		pa->vals[k] = pa->own_list[i];
	}
}

static void store_free(struct hub_store *st)
{
	void (*cb)(void *data) = st->close_cb;
	void *data = st->close_data;

	free(st->conns);
	params_free(&st->pool);
	params_free(&st->direct);
	free(st->conninfo);
	free(st->listen_conninfo);
	free(st->warm_sql);
	free(st);
	if (cb)
		cb(data);
}

static void handle_closed(struct hub_store *st)
{
	hub_assert(st->handles > 0);
	if (--st->handles == 0 && st->closing)
		store_free(st);
}

static void on_poll_close(uv_handle_t *h)
{
	struct pollh *p = h->data;
	struct hub_store *st = p->st;

	close(p->fd);
	free(p);
	handle_closed(st);
}

static void poll_drop(struct conn *c)
{
	struct pollh *p = c->poll;

	if (!p)
		return;
	p->c = NULL;
	c->poll = NULL;
	c->events = 0;
	uv_close((uv_handle_t *)&p->h, on_poll_close);
}

/* Polls PQsocket() for events, re-creating the handle when libpq changed its socket. */
static int poll_watch(struct conn *c, int events)
{
	struct hub_store *st = c->st;
	int fd = PQsocket(c->pg);
	struct pollh *p;
	struct stat sb;
	int ret;

	if (fd < 0 || fstat(fd, &sb) < 0)
		return -EBADF;
	if (c->poll && (c->poll->dev != sb.st_dev || c->poll->ino != sb.st_ino))
		poll_drop(c);
	if (!c->poll) {
		p = hub_xcalloc(1, sizeof(*p));
		p->st = st;
		p->c = c;
		p->dev = sb.st_dev;
		p->ino = sb.st_ino;
		p->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (p->fd < 0) {
			ret = -errno;
			free(p);
			return ret;
		}
		ret = uv_poll_init(st->loop, &p->h, p->fd);
		if (ret < 0) {
			close(p->fd);
			free(p);
			return ret;
		}
		p->h.data = p;
		st->handles++;
		c->poll = p;
		c->events = 0;
	}
	if (events != c->events) {
		ret = uv_poll_start(&c->poll->h, events, on_poll);
		if (ret < 0)
			return ret;
		c->events = events;
	}
	return 0;
}

/* --- connections -------------------------------------------------------------------- */

static void on_conn_timer(uv_timer_t *t);

static void conn_drop_pg(struct conn *c)
{
	uv_timer_stop(&c->timer);
	poll_drop(c);
	PQfinish(c->pg);
	c->pg = NULL;
	c->flushing = false;
}

static void conn_schedule(struct conn *c)
{
	c->backoff_ms = (unsigned)hub_backoff_ms(BACKOFF_MIN_MS, BACKOFF_MAX_MS, ++c->failures);
	c->state = CONN_DOWN;
	uv_timer_start(&c->timer, on_conn_timer, c->backoff_ms, 0);
}

/* A connection attempt failed: retry later; with no connection up, the waiting queries
 * fail at once (-ENOTCONN) so that callers answer 503 fast. */
static void conn_attempt_failed(struct conn *c, const char *why)
{
	struct hub_store *st = c->st;
	char line[256];

	one_line(why, line, sizeof(line));
	conn_drop_pg(c);
	st->last_connect_failed = true;
	conn_schedule(c);
	hub_log_warn(TAG, "conn=%d connect failed (retry in %u ms): %s", c->id, c->backoff_ms,
		     line);
	if (st->connected == 0)
		queue_fail_all(st, -ENOTCONN);
}

/* An open connection broke (or must be dropped): its running query, if any, fails with
 * status; the connection is re-opened after the shortest backoff. */
static void conn_broken(struct conn *c, int status, const char *why)
{
	struct hub_store *st = c->st;
	struct query *q = c->q;
	PGresult *res = c->res;
	char line[256];

	one_line(why, line, sizeof(line));
	hub_assert(c->state == CONN_IDLE || c->state == CONN_BUSY);
	if (c->state == CONN_IDLE)
		st->idle--;
	else
		st->busy--;
	st->connected--;
	c->q = NULL;
	c->res = NULL;
	c->qstatus = 0;
	c->drop = false;
	c->recycle = false;
	conn_drop_pg(c);
	c->failures = 0;
	conn_schedule(c);
	hub_log_warn(TAG, "conn=%d connection lost%s: %s", c->id, q ? " during a query" : "",
		     line);
	PQclear(res);
	if (q)
		query_finish(st, q, status, NULL);
}

static void on_warmed(int status, PGresult *res, void *data)
{
	struct hub_store *st = data;

	(void)res;
	st->warming--;
	/* the error itself is logged with the query; the connection serves, only colder */
	if (st->warming == 0 && !st->warmed) {
		st->warmed = true;
		hub_log_debug(TAG, "the pool's connections are warm (%s)",
			      status == 0 ? "ok" : "failed");
	}
}

/* Runs warm_sql on the idle connection c before anything else (see store.h). */
static void conn_warm(struct conn *c)
{
	struct hub_store *st = c->st;
	struct query *q;

	if (!st->warm_sql || c->state != CONN_IDLE)
		return;
	q = query_new(st->warm_sql, 0, NULL, NULL);
	q->cb = on_warmed;
	q->data = st;
	if (conn_send(c, q) < 0) {
		free(q);
		conn_broken(c, -ECONNRESET, "cannot send the warm-up");
		return;
	}
	st->warming++;
	st->queries_total++;
}

static void conn_ready(struct conn *c)
{
	struct hub_store *st = c->st;

	if (PQsetnonblocking(c->pg, 1) != 0) {
		conn_attempt_failed(c, PQerrorMessage(c->pg));
		return;
	}
	uv_timer_stop(&c->timer);
	PQsetNoticeProcessor(c->pg, on_notice, c);
	c->state = CONN_IDLE;
	c->failures = 0;
	/* the database is back: the others waiting out a longer backoff try now (spread) */
	for (int i = 0; i < st->opts.pool_size; i++) {
		struct conn *o = &st->conns[i];

		if (o->state == CONN_DOWN && o->failures > 1) {
			o->failures = 0;
			conn_schedule(o);
		}
	}
	st->connected++;
	st->idle++;
	st->last_connect_failed = false;
	if (poll_watch(c, UV_READABLE) < 0) {
		conn_broken(c, -ECONNRESET, "cannot poll the socket");
		return;
	}
	hub_log_info(TAG, "conn=%d connected (%d of %d up)", c->id, st->connected,
		     st->opts.pool_size);
	if (st->open)
		conn_warm(c);
	dispatch(st);
}

static void conn_connect_step(struct conn *c)
{
	int events;

	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		events = UV_READABLE;
		break;
	case PGRES_POLLING_WRITING:
		events = UV_WRITABLE;
		break;
	case PGRES_POLLING_OK:
		conn_ready(c);
		return;
	default:
		conn_attempt_failed(c, PQerrorMessage(c->pg));
		return;
	}
	if (poll_watch(c, events) < 0)
		conn_attempt_failed(c, "cannot poll the socket");
}

static void conn_start(struct conn *c)
{
	struct hub_store *st = c->st;

	c->pg = PQconnectStartParams(st->pool.keys, st->pool.vals, 0);
	hub_assert(c->pg); /* NULL only when out of memory */
	c->state = CONN_CONNECTING;
	c->gen = st->pool.gen;
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		conn_attempt_failed(c, PQerrorMessage(c->pg));
		return;
	}
	uv_timer_start(&c->timer, on_conn_timer, (uint64_t)st->opts.connect_timeout_ms, 0);
	/* After PQconnectStart*: as if PQconnectPoll() had said PGRES_POLLING_WRITING. */
	if (poll_watch(c, UV_WRITABLE) < 0)
		conn_attempt_failed(c, "cannot poll the socket");
}

static void on_conn_timer(uv_timer_t *t)
{
	struct conn *c = hub_container_of(t, struct conn, timer);

	switch (c->state) {
	case CONN_DOWN:
		conn_start(c);
		break;
	case CONN_CONNECTING:
		params_rotate(&c->st->pool, c->gen);
		conn_attempt_failed(c, "timed out");
		break;
	case CONN_BUSY:
		conn_broken(c, -ETIMEDOUT, "no answer within statement_timeout");
		break;
	default:
		break;
	}
}

/* Sends q on the idle connection c. Never runs a callback: on failure (the connection
 * is broken and nothing reached the server complete) it returns a negative errno. */
static int conn_send(struct conn *c, struct query *q)
{
	struct hub_store *st = c->st;
	int r;

	hub_assert(c->state == CONN_IDLE);
	if (!PQsendQueryParams(c->pg, q->sql, q->nparams, NULL, (const char *const *)q->params,
			       q->lengths, q->formats, q->result_format))
		return -ECONNRESET;
	/* A failed flush never sent the final Sync: the server runs nothing. */
	r = PQflush(c->pg);
	if (r < 0)
		return -ECONNRESET;
	c->flushing = r == 1;
	c->q = q;
	c->res = NULL;
	c->qstatus = 0;
	c->state = CONN_BUSY;
	st->idle--;
	st->busy++;
	uv_timer_start(&c->timer, on_conn_timer,
		       (uint64_t)st->opts.statement_timeout_ms + QUERY_GRACE_MS, 0);
	/* On failure the deadline above fails the query; a callback cannot run from here. */
	if (poll_watch(c, c->flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE) < 0)
		hub_log_err(TAG, "conn=%d cannot poll the socket", c->id);
	return 0;
}

static void conn_query_done(struct conn *c)
{
	struct hub_store *st = c->st;
	struct query *q = c->q;
	PGresult *res = c->res;
	int status = c->qstatus;
	bool drop = c->drop;

	c->q = NULL;
	c->res = NULL;
	c->qstatus = 0;
	c->drop = false;
	uv_timer_stop(&c->timer);
	c->state = CONN_IDLE;
	st->busy--;
	st->idle++;
	if (PQstatus(c->pg) == CONNECTION_BAD)
		conn_broken(c, 0, PQerrorMessage(c->pg));
	else if (drop)
		conn_broken(c, 0, "the server is read-only or shutting down: reconnecting");
	else if (poll_watch(c, UV_READABLE) < 0)
		conn_broken(c, 0, "cannot poll the socket");
	if (!res && status == 0)
		status = -EIO; /* no result at all: cannot happen for one statement */
	st->finishing = c;
	query_finish(st, q, status, res);
	st->finishing = NULL;
	PQclear(res);
	if (c->recycle && !st->closing) {
		/* idle: drop it now; busy with a query the callback sent: after that one */
		c->recycle = false;
		if (c->state == CONN_IDLE)
			conn_broken(c, 0, "the server is read-only: reconnecting");
		else if (c->state == CONN_BUSY)
			c->drop = true;
	}
	if (!st->closing)
		dispatch(st);
}

/* Keeps the last result of the running query, or its first error. 0, or -EPROTO for a
 * result that we cannot drive (COPY). */
static int conn_take_result(struct conn *c, PGresult *res)
{
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_EMPTY_QUERY:
		if (c->qstatus == 0) {
			PQclear(c->res);
			c->res = res;
		} else {
			PQclear(res);
		}
		return 0;
	case PGRES_COPY_IN:
	case PGRES_COPY_OUT:
	case PGRES_COPY_BOTH:
		PQclear(res);
		return -EPROTO;
	default:
		if (c->qstatus == 0) {
			c->qstatus = map_error(c->pg, res);
			c->drop |= error_drops_connection(PQresultErrorField(res,
									    PG_DIAG_SQLSTATE));
			log_query_error(c, res, c->qstatus);
			PQclear(c->res);
			c->res = res;
		} else {
			PQclear(res);
		}
		return 0;
	}
}

static void conn_busy_io(struct conn *c, int events)
{
	PGnotify *n;

	if ((events & UV_READABLE) && !PQconsumeInput(c->pg)) {
		conn_broken(c, -ECONNRESET, PQerrorMessage(c->pg));
		return;
	}
	if (c->flushing) {
		int r = PQflush(c->pg);

		if (r < 0) {
			conn_broken(c, -ECONNRESET, PQerrorMessage(c->pg));
			return;
		}
		c->flushing = r == 1;
		if (poll_watch(c, c->flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE) < 0) {
			conn_broken(c, -ECONNRESET, "cannot poll the socket");
			return;
		}
	}
	while ((n = PQnotifies(c->pg)))
		PQfreemem(n);
	while (!PQisBusy(c->pg)) {
		PGresult *res = PQgetResult(c->pg);

		if (!res) {
			conn_query_done(c);
			return;
		}
		if (conn_take_result(c, res) < 0) {
			conn_broken(c, -EIO, "unexpected COPY");
			return;
		}
	}
}

static void conn_idle_input(struct conn *c)
{
	PGnotify *n;

	if (!PQconsumeInput(c->pg) || PQstatus(c->pg) == CONNECTION_BAD) {
		conn_broken(c, 0, PQerrorMessage(c->pg));
		return;
	}
	while ((n = PQnotifies(c->pg)))
		PQfreemem(n);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct pollh *p = h->data;
	struct conn *c = p->c;

	if (!c)
		return;
	/* On a poll error let libpq look at the socket: it reports what broke. */
	if (status < 0)
		events = UV_READABLE | UV_WRITABLE;
	switch (c->state) {
	case CONN_CONNECTING:
		conn_connect_step(c);
		break;
	case CONN_IDLE:
		conn_idle_input(c);
		break;
	case CONN_BUSY:
		conn_busy_io(c, events);
		break;
	default:
		break;
	}
}

/* Hands waiting queries to idle connections. Never runs a callback. */
static void dispatch(struct hub_store *st)
{
	if (!st->warmed && st->warming > 0)
		return;
	while (st->head && st->idle > 0 && !st->closing) {
		struct conn *c = NULL;
		struct query *q;

		for (int i = 0; i < st->opts.pool_size; i++) {
			if (st->conns[i].state == CONN_IDLE) {
				c = &st->conns[i];
				break;
			}
		}
		hub_assert(c);
		q = queue_pop(st);
		if (conn_send(c, q) < 0) {
			queue_push_front(st, q);
			conn_broken(c, 0, PQerrorMessage(c->pg)); /* no query on c: no callback */
		}
	}
	queue_arm(st);
}

/* --- public ------------------------------------------------------------------------- */

/* conninfo plus our session settings (statement_timeout,
 * idle_in_transaction_session_timeout and hub.local_wake, see hub_store_wake, in "options";
 * not through a transaction pooler, which refuses or drops them), TCP timeouts,
 * keepalives. */
static int build_params(const struct hub_store *st, struct params *pa, const char *conninfo,
			bool session_settings, struct hub_err *err)
{
	char *errmsg = NULL;
	const char *user_options = NULL;
	bool has_tcp = false, has_ka_idle = false;
	struct hub_buf b = HUB_BUF_INIT;
	size_t n = 0, cap = 8;
	int timeout;

	pa->list_idx[0] = pa->list_idx[1] = pa->list_idx[2] = -1;
	pa->parsed = PQconninfoParse(conninfo, &errmsg);
	if (!pa->parsed) {
		char line[256];
		int ret;

		one_line(errmsg ? errmsg : "out of memory", line, sizeof(line));
		ret = hub_err_set(err, -EINVAL, "database conninfo: %s", line);
		PQfreemem(errmsg);
		return ret;
	}
	for (PQconninfoOption *o = pa->parsed; o->keyword; o++)
		if (o->val)
			cap++;
	pa->keys = hub_xcalloc(cap, sizeof(*pa->keys));
	pa->vals = hub_xcalloc(cap, sizeof(*pa->vals));
	for (PQconninfoOption *o = pa->parsed; o->keyword; o++) {
		if (!o->val)
			continue;
		if (strcmp(o->keyword, "options") == 0) {
			user_options = o->val;
			continue;
		}
		has_tcp |= strcmp(o->keyword, "tcp_user_timeout") == 0;
		has_ka_idle |= strcmp(o->keyword, "keepalives_idle") == 0;
		if (strcmp(o->keyword, "host") == 0)
			pa->list_idx[0] = (int)n;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			pa->list_idx[1] = (int)n;
		else if (strcmp(o->keyword, "port") == 0)
			pa->list_idx[2] = (int)n;
		pa->keys[n] = o->keyword;
		pa->vals[n++] = o->val;
	}
	/* idle in a transaction cannot happen in autocommit: the bound is a safety net. */
	timeout = st->opts.statement_timeout_ms;
	if (user_options && *user_options)
		hub_buf_addf(&b, "%s%s", user_options, session_settings ? " " : "");
	if (session_settings)
		hub_buf_addf(&b, "-c statement_timeout=%d "
			     "-c idle_in_transaction_session_timeout=%d -c hub.local_wake=on",
			     timeout, timeout > INT32_MAX / 2 ? timeout : timeout * 2);
	if (b.len) {
		pa->own_options = hub_buf_detach(&b, NULL);
		pa->keys[n] = "options";
		pa->vals[n++] = pa->own_options;
	}
	if (!has_tcp) {
		/* Unacknowledged data this long means the server is gone. */
		int t = st->opts.statement_timeout_ms > st->opts.connect_timeout_ms
				? st->opts.statement_timeout_ms
				: st->opts.connect_timeout_ms;

		hub_buf_addf(&b, "%d", t);
		pa->own_tcp_timeout = hub_buf_detach(&b, NULL);
		pa->keys[n] = "tcp_user_timeout";
		pa->vals[n++] = pa->own_tcp_timeout;
	}
	if (!has_ka_idle) {
		pa->keys[n] = "keepalives_idle";
		pa->vals[n++] = "30";
		pa->keys[n] = "keepalives_interval";
		pa->vals[n++] = "10";
		pa->keys[n] = "keepalives_count";
		pa->vals[n++] = "3";
	}
	pa->keys[n] = "fallback_application_name";
	pa->vals[n++] = "hubd";
	hub_assert(n < cap);
	pa->keys[n] = NULL;
	pa->vals[n] = NULL;
	return 0;
}

int hub_store_new(uv_loop_t *loop, const struct hub_store_opts *opts, struct hub_store **out,
		  struct hub_err *err)
{
	struct hub_store *st;
	int ret;

	if (!opts->conninfo)
		return hub_err_set(err, -EINVAL, "database: no conninfo");
	if (opts->pool_size < 1 || opts->pool_size > POOL_MAX)
		return hub_err_set(err, -EINVAL, "database pool_size: must be between 1 and %d",
				   POOL_MAX);
	if (opts->connect_timeout_ms <= 0 || opts->statement_timeout_ms <= 0 ||
	    opts->queue_timeout_ms <= 0 || opts->queue_max < 0)
		return hub_err_set(err, -EINVAL, "database: timeouts must be > 0, queue_max >= 0");

	st = hub_xcalloc(1, sizeof(*st));
	st->loop = loop;
	st->opts = *opts;
	st->conninfo = hub_xstrdup(opts->conninfo);
	st->opts.conninfo = st->conninfo;
	st->listen_conninfo = hub_xstrdup(opts->listen_conninfo ? opts->listen_conninfo
							       : opts->conninfo);
	st->opts.listen_conninfo = st->listen_conninfo;
	st->warm_sql = opts->warm_sql ? hub_xstrdup(opts->warm_sql) : NULL;
	st->opts.warm_sql = st->warm_sql;
	st->warmed = !st->warm_sql;
	ret = build_params(st, &st->pool, st->conninfo, !opts->transaction_pooling, err);
	if (ret == 0)
		ret = build_params(st, &st->direct, st->listen_conninfo, true, err);
	if (ret < 0) {
		store_free(st);
		return ret;
	}
	st->conns = hub_xcalloc((size_t)opts->pool_size, sizeof(*st->conns));
	ret = uv_timer_init(loop, &st->queue_timer);
	hub_assert(ret == 0); /* uv_timer_init cannot fail */
	st->handles++;
	for (int i = 0; i < opts->pool_size; i++) {
		struct conn *c = &st->conns[i];

		c->st = st;
		c->id = i;
		c->state = CONN_DOWN;
		ret = uv_timer_init(loop, &c->timer);
		hub_assert(ret == 0);
		st->handles++;
	}
	for (int i = 0; i < opts->pool_size; i++)
		conn_start(&st->conns[i]);
	*out = st;
	return 0;
}

int hub_store_query_bin(struct hub_store *st, const char *sql, int nparams,
			const char *const *params, const int *lengths, bool binary_result,
			hub_store_cb *cb, void *data)
{
	struct query *q;

	if (st->closing)
		return -ECANCELED;
	if (!sql || !cb || nparams < 0 || (nparams > 0 && !params))
		return -EINVAL;
	if (!st->open || (st->connected == 0 && st->last_connect_failed))
		return -ENOTCONN;
	if (st->idle == 0 && st->waiting >= st->opts.queue_max)
		return -EAGAIN;
	q = query_new(sql, nparams, params, lengths);
	q->result_format = binary_result;
	q->cb = cb;
	q->data = data;
	q->deadline = uv_now(st->loop) + (uint64_t)st->opts.queue_timeout_ms;
	queue_push(st, q);
	st->queries_total++;
	dispatch(st);
	return 0;
}

int hub_store_query(struct hub_store *st, const char *sql, int nparams,
		    const char *const *params, hub_store_cb *cb, void *data)
{
	return hub_store_query_bin(st, sql, nparams, params, NULL, false, cb, data);
}

void hub_store_reconnect_current(struct hub_store *st)
{
	if (st->finishing)
		st->finishing->recycle = true;
}

void hub_store_open(struct hub_store *st)
{
	st->open = true;
	for (int i = 0; i < st->opts.pool_size; i++)
		conn_warm(&st->conns[i]);
}

bool hub_store_ready(const struct hub_store *st)
{
	return st->open && !st->closing && st->connected > 0 && st->warmed && !st->server_lost;
}

void hub_store_stats(const struct hub_store *st, struct hub_store_stats *out)
{
	out->size = st->opts.pool_size;
	out->connected = st->connected;
	out->busy = st->busy;
	out->waiting = st->waiting;
	out->warming = st->warming;
	out->queries_total = st->queries_total;
	out->errors_total = st->errors_total;
}

static void on_store_timer_close(uv_handle_t *h)
{
	handle_closed(hub_container_of((uv_timer_t *)h, struct hub_store, queue_timer));
}

static void on_conn_timer_close(uv_handle_t *h)
{
	handle_closed(hub_container_of((uv_timer_t *)h, struct conn, timer)->st);
}

void hub_store_close(struct hub_store *st, void (*cb)(void *data), void *data)
{
	struct query *running = NULL;

	if (!st || st->closing)
		return;
	st->closing = true;
	st->close_cb = cb;
	st->close_data = data;
	uv_timer_stop(&st->queue_timer);
	listeners_close(st);
	/* Everything is torn down before any callback runs, so a callback that comes back
	 * into the store finds it closed. */
	for (int i = 0; i < st->opts.pool_size; i++) {
		struct conn *c = &st->conns[i];

		if (c->q) {
			c->q->next = running;
			running = c->q;
		}
		PQclear(c->res);
		c->q = NULL;
		c->res = NULL;
		conn_drop_pg(c);
		c->state = CONN_CLOSED;
		uv_close((uv_handle_t *)&c->timer, on_conn_timer_close);
	}
	st->connected = st->idle = st->busy = 0;
	uv_close((uv_handle_t *)&st->queue_timer, on_store_timer_close);
	while (running) {
		struct query *q = running;

		running = q->next;
		query_finish(st, q, -ECANCELED, NULL);
	}
	queue_fail_all(st, -ECANCELED);
}

/* --- migrations (blocking) ---------------------------------------------------------- */

static void on_migrate_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message; /* "relation already exists, skipping" and the like */
}

/* Runs sql (no parameters); 0, or -EIO with err filled. */
static int migrate_exec(PGconn *pg, const char *what, const char *sql, struct hub_err *err)
{
	PGresult *res = PQexec(pg, sql);
	ExecStatusType s = PQresultStatus(res);
	int ret = 0;

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_EMPTY_QUERY) {
		char line[400];

		one_line(PQerrorMessage(pg), line, sizeof(line));
		ret = hub_err_set(err, PQstatus(pg) == CONNECTION_BAD ? -ECONNRESET : -EIO,
				  "migrate: %s: %s", what, line);
	}
	PQclear(res);
	return ret;
}

/* 1 if version is recorded, 0 if not, or a negative errno. */
static int migrate_recorded(PGconn *pg, const char *version, struct hub_err *err)
{
	const char *params[1] = { version };
	PGresult *res = PQexecParams(pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1,
				     NULL, params, NULL, NULL, 0);
	int ret;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char line[400];

		one_line(PQerrorMessage(pg), line, sizeof(line));
		ret = hub_err_set(err, -EIO, "migrate: schema_migrations: %s", line);
	} else {
		ret = PQntuples(res) > 0;
	}
	PQclear(res);
	return ret;
}

static int migrate_one(PGconn *pg, const struct hub_embed_file *f, const char *version,
		       struct hub_err *err)
{
	const char *params[1] = { version };
	PGresult *res;
	int ret;

	ret = migrate_exec(pg, "BEGIN", "BEGIN", err);
	if (ret < 0)
		return ret;
	ret = migrate_exec(pg, f->name, f->data, err);
	if (ret < 0)
		goto rollback;
	res = PQexecParams(pg, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, NULL,
			   params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		char line[400];

		one_line(PQerrorMessage(pg), line, sizeof(line));
		ret = hub_err_set(err, -EIO, "migrate: %s: recording: %s", f->name, line);
		PQclear(res);
		goto rollback;
	}
	PQclear(res);
	return migrate_exec(pg, "COMMIT", "COMMIT", err);
rollback:
	PQclear(PQexec(pg, "ROLLBACK"));
	return ret;
}

int hub_store_migrate(const char *conninfo, struct hub_err *err)
{
	PGconn *pg = NULL;
	bool locked = false;
	int applied = 0;
	int ret;

	/* a host that does not answer is given up after 10 s unless conninfo says otherwise
	 * (hubd tries again; its loop does not wait for this thread) */
	static const char *const keys[] = { "connect_timeout", "dbname", NULL };
	const char *values[] = { "10", conninfo ? conninfo : "", NULL };

	pg = PQconnectdbParams(keys, values, 1);
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		char line[400];

		one_line(pg ? PQerrorMessage(pg) : "out of memory", line, sizeof(line));
		ret = hub_err_set(err, -ENOTCONN, "migrate: database: %s", line);
		goto out;
	}
	PQsetNoticeProcessor(pg, on_migrate_notice, NULL);
	ret = migrate_exec(pg, "lock", "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", err);
	if (ret < 0)
		goto out;
	locked = true;
	ret = migrate_exec(pg, "schema_migrations",
			   "CREATE TABLE IF NOT EXISTS schema_migrations ("
			   "version text PRIMARY KEY, "
			   "applied_at timestamptz NOT NULL DEFAULT now())",
			   err);
	if (ret < 0)
		goto out;
	for (const struct hub_embed_file *f = hub_embedded_migrations; f->name; f++) {
		size_t len = strlen(f->name);
		char *version;

		if (len > 4 && strcmp(f->name + len - 4, ".sql") == 0)
			len -= 4;
		version = hub_xmemdup(f->name, len);
		ret = migrate_recorded(pg, version, err);
		if (ret == 0)
			ret = migrate_one(pg, f, version, err);
		if (ret == 0) {
			hub_log_info(TAG, "applied migration %s", version);
			applied++;
		}
		free(version);
		if (ret < 0)
			goto out;
	}
	ret = applied;
out:
	if (locked && PQstatus(pg) == CONNECTION_OK)
		PQclear(PQexec(pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	PQfinish(pg);
	return ret;
}

/* --- LISTEN (hub_store_listen) ------------------------------------------------------ */

enum listener_state {
	LSN_DOWN,       /* waiting for the backoff timer */
	LSN_CONNECTING, /* PQconnectPoll() steps */
	LSN_SUBSCRIBING, /* LISTEN sent, its result not yet read */
	LSN_LISTENING,  /* notifications arrive */
	LSN_CLOSED,
};

/* Like struct pollh, for a listener's connection. */
struct lpollh {
	uv_poll_t h;
	struct hub_store *st;
	struct listener *l; /* NULL once detached */
	int fd;
	dev_t dev;
	ino_t ino;
};

/* A channel a caller listens on (hub_store_listen). */
struct subscription {
	struct subscription *next;
	char *channel;
	hub_store_notify_cb *cb;
	void *data;
	bool sent; /* in the LISTEN in flight or taken, on this connection */
	bool on;   /* its LISTEN took effect on this connection */
	bool told; /* on just now: cb is to have NULL */
};

/* The store's one LISTEN connection, for every subscription: PostgreSQL wakes each
 * listening session of the database for every NOTIFY, whatever its channel, so a
 * connection a channel would cost as many wake-ups a notification. */
struct listener {
	struct hub_store *st;
	struct subscription *subs, **subs_tail;
	enum listener_state state;
	PGconn *pg;
	struct lpollh *poll;
	int events;
	uv_timer_t timer;  /* connect timeout, backoff, LISTEN's answer */
	unsigned failures; /* attempts failed in a row */
	unsigned gen;      /* st->direct.gen when this attempt started */
	bool flushing;
};

static void on_lpoll(uv_poll_t *h, int status, int events);
static void lsn_start(struct listener *l);

static void on_lpoll_close(uv_handle_t *h)
{
	struct lpollh *p = h->data;
	struct hub_store *st = p->st;

	close(p->fd);
	free(p);
	handle_closed(st);
}

static void lsn_poll_drop(struct listener *l)
{
	struct lpollh *p = l->poll;

	if (!p)
		return;
	p->l = NULL;
	l->poll = NULL;
	l->events = 0;
	uv_close((uv_handle_t *)&p->h, on_lpoll_close);
}

/* poll_watch() for a listener: polls a dup() of PQsocket(), re-created when it changed. */
static int lsn_watch(struct listener *l, int events)
{
	struct hub_store *st = l->st;
	int fd = PQsocket(l->pg);
	struct lpollh *p;
	struct stat sb;
	int ret;

	if (fd < 0 || fstat(fd, &sb) < 0)
		return -EBADF;
	if (l->poll && (l->poll->dev != sb.st_dev || l->poll->ino != sb.st_ino))
		lsn_poll_drop(l);
	if (!l->poll) {
		p = hub_xcalloc(1, sizeof(*p));
		p->st = st;
		p->l = l;
		p->dev = sb.st_dev;
		p->ino = sb.st_ino;
		p->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (p->fd < 0) {
			ret = -errno;
			free(p);
			return ret;
		}
		ret = uv_poll_init(st->loop, &p->h, p->fd);
		if (ret < 0) {
			close(p->fd);
			free(p);
			return ret;
		}
		p->h.data = p;
		st->handles++;
		l->poll = p;
		l->events = 0;
	}
	if (events != l->events) {
		ret = uv_poll_start(&l->poll->h, events, on_lpoll);
		if (ret < 0)
			return ret;
		l->events = events;
	}
	return 0;
}

/* The channels, for the log: "hub_channels, hub_ai" (cut when long). */
static const char *lsn_names(const struct listener *l, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (const struct subscription *s = l->subs; s && n < size; s = s->next) {
		int w = snprintf(buf + n, size - n, "%s%s", n ? ", " : "", s->channel);

		if (w < 0)
			break;
		n += (size_t)w;
	}
	return buf;
}

static void on_lsn_timer(uv_timer_t *t);

/* The connection failed or broke: drop it and try again after the backoff. */
static void lsn_fail(struct listener *l, const char *why)
{
	char line[256], names[256];

	one_line(why, line, sizeof(line));
	uv_timer_stop(&l->timer);
	lsn_poll_drop(l);
	PQfinish(l->pg);
	l->pg = NULL;
	l->flushing = false;
	for (struct subscription *s = l->subs; s; s = s->next)
		s->sent = s->on = false;
	if (l->state == LSN_LISTENING)
		l->failures = 0; /* it worked until now: retry soon */
	uint64_t delay = hub_backoff_ms(BACKOFF_MIN_MS, BACKOFF_MAX_MS, ++l->failures);
	hub_log_warn(TAG, "listen %s: connection %s (retry in %" PRIu64 " ms): %s",
		     lsn_names(l, names, sizeof(names)),
		     l->state == LSN_LISTENING ? "lost" : "failed", delay, line);
	l->state = LSN_DOWN;
	uv_timer_start(&l->timer, on_lsn_timer, delay, 0);
}

/* Connected, or a channel came: LISTEN on every channel in one query (again on those
 * already taken, which changes nothing for them). */
static void lsn_subscribe(struct listener *l)
{
	struct hub_store *st = l->st;
	struct hub_buf sql = HUB_BUF_INIT;
	int r;

	for (struct subscription *s = l->subs; s; s = s->next) {
		char *ident = PQescapeIdentifier(l->pg, s->channel, strlen(s->channel));

		if (!ident) {
			hub_buf_release(&sql);
			lsn_fail(l, PQerrorMessage(l->pg));
			return;
		}
		hub_buf_addf(&sql, "%sLISTEN %s", sql.len ? "; " : "", ident);
		PQfreemem(ident);
		s->sent = true;
	}
	r = PQsendQuery(l->pg, sql.p);
	hub_buf_release(&sql);
	if (!r || (r = PQflush(l->pg)) < 0) {
		lsn_fail(l, PQerrorMessage(l->pg));
		return;
	}
	l->flushing = r == 1;
	l->state = LSN_SUBSCRIBING;
	uv_timer_start(&l->timer, on_lsn_timer,
		       (uint64_t)st->opts.statement_timeout_ms + QUERY_GRACE_MS, 0);
	if (lsn_watch(l, l->flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE) < 0)
		lsn_fail(l, "cannot poll the socket");
}

static void lsn_connected(struct listener *l)
{
	if (PQsetnonblocking(l->pg, 1) != 0) {
		lsn_fail(l, PQerrorMessage(l->pg));
		return;
	}
	PQsetNoticeProcessor(l->pg, on_migrate_notice, NULL);
	lsn_subscribe(l);
}

static void lsn_connect_step(struct listener *l)
{
	int events;

	switch (PQconnectPoll(l->pg)) {
	case PGRES_POLLING_READING:
		events = UV_READABLE;
		break;
	case PGRES_POLLING_WRITING:
		events = UV_WRITABLE;
		break;
	case PGRES_POLLING_OK:
		lsn_connected(l);
		return;
	default:
		lsn_fail(l, PQerrorMessage(l->pg));
		return;
	}
	if (lsn_watch(l, events) < 0)
		lsn_fail(l, "cannot poll the socket");
}

static void lsn_start(struct listener *l)
{
	struct hub_store *st = l->st;

	l->pg = PQconnectStartParams(st->direct.keys, st->direct.vals, 0);
	hub_assert(l->pg); /* NULL only when out of memory */
	l->state = LSN_CONNECTING;
	l->gen = st->direct.gen;
	if (PQstatus(l->pg) == CONNECTION_BAD) {
		lsn_fail(l, PQerrorMessage(l->pg));
		return;
	}
	uv_timer_start(&l->timer, on_lsn_timer, (uint64_t)st->opts.connect_timeout_ms, 0);
	if (lsn_watch(l, UV_WRITABLE) < 0)
		lsn_fail(l, "cannot poll the socket");
}

static void on_lsn_timer(uv_timer_t *t)
{
	struct listener *l = hub_container_of(t, struct listener, timer);

	switch (l->state) {
	case LSN_DOWN:
		lsn_start(l);
		break;
	case LSN_CONNECTING:
		params_rotate(&l->st->direct, l->gen);
		lsn_fail(l, "timed out");
		break;
	case LSN_SUBSCRIBING:
		lsn_fail(l, "no answer to LISTEN");
		break;
	default:
		break;
	}
}

/* Hands every queued notification to the callbacks of its channel; false when the store
 * closed meanwhile. */
static bool lsn_deliver(struct listener *l)
{
	struct hub_store *st = l->st;
	PGnotify *n;

	while (!st->closing && l->pg && (n = PQnotifies(l->pg))) {
		for (struct subscription *s = l->subs; s && !st->closing; s = s->next)
			if (s->on && strcmp(s->channel, n->relname) == 0)
				s->cb(n->extra ? n->extra : "", s->data);
		PQfreemem(n);
	}
	return !st->closing;
}

/* The LISTEN took effect: each channel new to it is told (payload NULL); a channel that
 * came meanwhile is subscribed in turn. False when the store closed meanwhile. */
static bool lsn_listening(struct listener *l)
{
	struct hub_store *st = l->st;
	struct subscription *s;
	bool more = false;

	uv_timer_stop(&l->timer);
	l->state = LSN_LISTENING;
	l->failures = 0;
	/* first which ones this LISTEN made take effect: a callback may add a channel */
	for (s = l->subs; s; s = s->next) {
		s->told = s->sent && !s->on;
		s->on |= s->sent;
		more |= !s->sent;
	}
	for (s = l->subs; s && !st->closing; s = s->next) {
		if (s->told) {
			s->told = false;
			hub_log_info(TAG, "listening on %s", s->channel);
			/* the state may have changed while nobody listened */
			s->cb(NULL, s->data);
		}
	}
	if (st->closing)
		return false;
	if (more && l->state == LSN_LISTENING)
		lsn_subscribe(l);
	return true;
}

static void lsn_io(struct listener *l, int events)
{
	if ((events & UV_READABLE) && !PQconsumeInput(l->pg)) {
		lsn_fail(l, PQerrorMessage(l->pg));
		return;
	}
	if (l->flushing) {
		int r = PQflush(l->pg);

		if (r < 0) {
			lsn_fail(l, PQerrorMessage(l->pg));
			return;
		}
		l->flushing = r == 1;
		if (lsn_watch(l, l->flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE) < 0) {
			lsn_fail(l, "cannot poll the socket");
			return;
		}
	}
	if (l->state == LSN_SUBSCRIBING) {
		bool failed = false;

		while (!PQisBusy(l->pg)) {
			PGresult *res = PQgetResult(l->pg);

			if (!res) {
				if (failed) {
					lsn_fail(l, "LISTEN failed");
					return;
				}
				if (!lsn_listening(l))
					return;
				break;
			}
			failed |= PQresultStatus(res) != PGRES_COMMAND_OK;
			PQclear(res);
		}
		if (l->state != LSN_LISTENING)
			return;
	}
	if (!lsn_deliver(l))
		return;
	if (PQstatus(l->pg) == CONNECTION_BAD)
		lsn_fail(l, PQerrorMessage(l->pg));
}

static void on_lpoll(uv_poll_t *h, int status, int events)
{
	struct lpollh *p = h->data;
	struct listener *l = p->l;

	if (!l)
		return;
	if (status < 0)
		events = UV_READABLE | UV_WRITABLE;
	switch (l->state) {
	case LSN_CONNECTING:
		lsn_connect_step(l);
		break;
	case LSN_SUBSCRIBING:
	case LSN_LISTENING:
		lsn_io(l, events);
		break;
	default:
		break;
	}
}

int hub_store_listen(struct hub_store *st, const char *channel, hub_store_notify_cb *cb,
		     void *data)
{
	struct listener *l = st->listener;
	struct subscription *s;
	bool first = !l;
	int ret;

	if (st->closing)
		return -ECANCELED;
	if (!channel || !*channel || strlen(channel) > 63 || !cb)
		return -EINVAL;
	s = hub_xcalloc(1, sizeof(*s));
	s->channel = hub_xstrdup(channel);
	s->cb = cb;
	s->data = data;
	if (!l) {
		l = hub_xcalloc(1, sizeof(*l));
		l->st = st;
		l->subs_tail = &l->subs;
		ret = uv_timer_init(st->loop, &l->timer);
		hub_assert(ret == 0); /* uv_timer_init cannot fail */
		st->handles++;
		st->listener = l;
	}
	*l->subs_tail = s;
	l->subs_tail = &s->next;
	if (first)
		lsn_start(l);
	else if (l->state == LSN_LISTENING)
		lsn_subscribe(l);
	/* else connecting, or subscribing (it is subscribed once that ends), or waiting for
	 * the backoff */
	return 0;
}

static void on_lsn_timer_close(uv_handle_t *h)
{
	struct listener *l = hub_container_of((uv_timer_t *)h, struct listener, timer);
	struct hub_store *st = l->st;

	while (l->subs) {
		struct subscription *s = l->subs;

		l->subs = s->next;
		free(s->channel);
		free(s);
	}
	free(l);
	handle_closed(st);
}

/* From hub_store_close(): no callback runs after this. */
static void listeners_close(struct hub_store *st)
{
	struct listener *l = st->listener;

	if (!l)
		return;
	st->listener = NULL;
	uv_timer_stop(&l->timer);
	lsn_poll_drop(l);
	PQfinish(l->pg);
	l->pg = NULL;
	l->state = LSN_CLOSED;
	uv_close((uv_handle_t *)&l->timer, on_lsn_timer_close);
}

void hub_store_wake(struct hub_store *st, const char *channel)
{
	if (!st->listener)
		return;
	for (struct subscription *s = st->listener->subs; s && !st->closing; s = s->next)
		if (strcmp(s->channel, channel) == 0)
			s->cb("", s->data);
}
