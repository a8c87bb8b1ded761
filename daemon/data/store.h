/* Room daemon/data/: where state lives and travels: the PostgreSQL pool (store.h), the
 * Redis client (redis.h) and the live event bus over both (bus.h). May call core/ and the
 * pure core; knows nothing of net/ or of the rooms that use it. */
/* daemon/data/store.h - asynchronous PostgreSQL access for hubd.
 * A pool of libpq connections driven by uv_poll with a FIFO of waiting queries; nothing
 * here blocks the loop. Connections that break are re-opened with backoff.
 * Knows nothing about HTTP, websockets or what the queries mean. */
#ifndef HUB_STORE_H
#define HUB_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>
#include <uv.h>

#include "lib/err.h"
#include "lib/mem.h"

struct hub_store;

struct hub_store_opts {
	const char *conninfo;     /* libpq URL or key=value string; copied */
	/* LISTEN's connections: PostgreSQL itself (notifications do not cross a
	 * transaction-pooling pooler); NULL: conninfo. Copied. */
	const char *listen_conninfo;
	/* conninfo goes through a transaction-pooling pooler (PgBouncer): no session settings
	 * are sent on it (statement_timeout then comes from the role or the pooler) */
	bool transaction_pooling;
	int pool_size;            /* connections, >= 1 */
	int connect_timeout_ms;   /* one connection attempt */
	int statement_timeout_ms; /* sent as the server-side statement_timeout */
	int queue_max;            /* queries waiting for a connection; beyond: -EAGAIN */
	int queue_timeout_ms;     /* a query that waited this long for a connection: -ETIMEDOUT */
	/* Run on each new connection of the pool, once the store is open, before it serves
	 * anything (an error is logged and the connection serves all the same). Nothing is
	 * dispatched, and the store is not ready, until the first ones are over. NULL: none.
	 * Copied. */
	const char *warm_sql;
};

struct hub_store_stats {
	int size;      /* configured connections */
	int connected; /* open and usable */
	int busy;      /* running a query */
	int waiting;   /* queries queued for a connection */
	int warming;   /* connections running warm_sql */
	unsigned long long queries_total, errors_total;
};

/* The result of one query: res is the last PGresult of the command (a tuples or command
 * result), owned by the store and valid only during the callback; NULL when status < 0.
 * status: 0; -EIO the server answered with an error (logged with its SQLSTATE, never the
 * parameters); -ENOTCONN/-ECONNRESET the database is unavailable; -ETIMEDOUT; -EAGAIN the
 * queue is full; -ECANCELED the store is closing. */
typedef void hub_store_cb(int status, PGresult *res, void *data);
/* Also: -ENOENT when the server raised SQLSTATE P0002 (no_data_found, as our SQL functions
 * do for an unknown or disabled channel); -ETIMEDOUT for statement_timeout (57014) and for
 * a running query with no answer; -ECONNRESET for SQLSTATE class 08 and 57P0x. A running
 * query that fails with -ECONNRESET, -ETIMEDOUT or -ECANCELED may still have committed:
 * callers rely on idempotent SQL (e.g. hub_ingest_inbound), never on the store retrying. */

/* Creates the pool and starts connecting (asynchronously). 0 or a negative errno. The
 * store is shut until hub_store_open(): queries are refused with -ENOTCONN, as when the
 * database is down (hubd opens it once the migrations are applied). */
int hub_store_new(uv_loop_t *loop, const struct hub_store_opts *opts, struct hub_store **out,
		  struct hub_err *err) HUB_MUSTCHECK;
void hub_store_open(struct hub_store *st);
/* Runs sql with nparams text parameters (NULL entries are SQL NULL; copied, so the caller
 * may free them on return) on a pooled connection, in autocommit (one statement is one
 * transaction). Returns 0 and later calls cb exactly once, on the loop; or returns a
 * negative errno (-ENOTCONN when no connection is up and the last attempt failed or the
 * store is not open yet,
 * -EAGAIN when the queue is full, -ECANCELED while closing) and never calls cb. */
int hub_store_query(struct hub_store *st, const char *sql, int nparams,
		    const char *const *params, hub_store_cb *cb, void *data) HUB_MUSTCHECK;
/* The same with binary parameters and results: lengths NULL, or lengths[i] >= 0 sends
 * params[i] as that many raw bytes (a bytea, which may hold NUL) and -1 as text;
 * binary_result asks for every column in binary (a bytea's raw bytes). */
int hub_store_query_bin(struct hub_store *st, const char *sql, int nparams,
			const char *const *params, const int *lengths, bool binary_result,
			hub_store_cb *cb, void *data) HUB_MUSTCHECK;
/* From inside a query's callback: the connection that ran it is not to be used again
 * (its result says the server is read-only: a standby or a demoted primary, e.g. a
 * function that caught SQLSTATE 25006). It is re-opened, which re-resolves the primary
 * (target_session_attrs=read-write). Errors the store sees itself (25006, 57P0x, 08xxx)
 * drop the connection without this. No effect outside a callback. */
void hub_store_reconnect_current(struct hub_store *st);
/* True while the store is open, at least one connection is open and answered its last
 * query, and the last query to finish did not fail for want of a server (through
 * PgBouncer, when PostgreSQL behind it is gone, until a query succeeds again). */
bool hub_store_ready(const struct hub_store *st);
void hub_store_stats(const struct hub_store *st, struct hub_store_stats *out);
/* Fails waiting and running queries with -ECANCELED (their callbacks run), closes every
 * connection and handle, frees st, then calls cb (may be NULL). Idempotent. */
void hub_store_close(struct hub_store *st, void (*cb)(void *data), void *data);

/* LISTEN on the store's LISTEN connection, one for every channel (a pooled one would miss
 * notifications between queries; PostgreSQL wakes each listening session for every NOTIFY,
 * whatever its channel). Called on the loop with payload NULL each time LISTEN has taken
 * effect (the first connect and every reconnect: notifications sent while no LISTEN was in
 * effect are lost, so re-read whatever they stand for), then with each notification's
 * payload ("" for none; valid during the call). A broken connection is re-opened with
 * backoff. Never called
 * after hub_store_close(). channel is copied (quoted as an identifier). Returns 0 and
 * starts connecting, or a negative errno (-EINVAL, -ECANCELED while closing). */
typedef void hub_store_notify_cb(const char *payload, void *data);
int hub_store_listen(struct hub_store *st, const char *channel, hub_store_notify_cb *cb,
		     void *data) HUB_MUSTCHECK;

/* Calls this instance's listeners of channel as a NOTIFY would, at once. For a commit whose
 * SQL left its NOTIFY out because the connection said hub.local_wake=on (every pooled
 * connection of a store that is not behind a transaction pooler): a NOTIFY holds a
 * server-wide lock through its COMMIT's flush, one notifying transaction after the other. */
void hub_store_wake(struct hub_store *st, const char *channel);
#define HUB_STORE_OUTBOX "hub_outbox" /* NOTIFY channel: outbox rows are due */

/* Applies the embedded migrations (daemon/embed.h) that conninfo's database has not
 * recorded yet, each in its own transaction, under a PostgreSQL advisory lock so that
 * instances starting together are safe. Blocking: for hubd's worker thread at start-up
 * and hubctl. A database that cannot be reached is -ENOTCONN.
 * Returns the number applied (>= 0) or a negative errno with err filled. */
int hub_store_migrate(const char *conninfo, struct hub_err *err) HUB_MUSTCHECK;

#endif
