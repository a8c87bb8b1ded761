/* Room daemon/net/: the protocols, not the business: the HTTP server (http.h) and the
 * HTTP(S) client (httpc.h). May call core/ and the pure core; knows nothing of data/,
 * inbound/, inbox/ or what a request means. */
/* daemon/net/http.h - the HTTP/1.1 server of hubd: uv_tcp + llhttp, keep-alive and pipelining,
 * limits on header size, body size and header/body/idle time, a router with path
 * parameters, JSON error bodies, per-route metrics, and hand-over of websocket upgrades.
 * What another server could frame differently (RFC 9112: Content-Length with
 * Transfer-Encoding, obs-fold, space before a colon, codings other than chunked, no or
 * several Host lines) is refused before the body and the connection closed.
 * Knows nothing about webhooks, the database or libwebsockets (llhttp.h and
 * libwebsockets.h never meet: the ws module gets a plain fd). */
#ifndef HUB_HTTP_H
#define HUB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/pool.h"

struct hub_http;
struct hub_http_req;
struct hub_conns;
struct hub_metrics;

struct hub_http_limits {
	size_t header_max;     /* request line + headers, bytes → 431 */
	size_t body_max;       /* → 413 */
	int header_timeout_ms; /* from the first byte of a request to the end of its headers */
	int body_timeout_ms;   /* from the end of headers to the end of the body */
	int idle_timeout_ms;   /* keep-alive connection with no request in progress */
	int max_connections;   /* client connections in conns, handed-over websockets
				* included; beyond: accepted and closed at once */
	int max_per_address;   /* ... of one host (daemon/net/conns.h); beyond: 429 and
				* closed; 0: no cap */
	size_t large_body_max; /* the body bound of routes marked large_body (uploads) */
};

/* A request handler. It must eventually call hub_http_req_respond() (or _error, or
 * _upgrade) exactly once, now or later from the loop; until then req stays valid even if
 * the client goes away (responding to a gone client is then a no-op). */
typedef void hub_http_handler(struct hub_http_req *req, void *data);

struct hub_http_route {
	const char *method;  /* "GET", "POST"; GET routes also answer HEAD */
	const char *pattern; /* "/webhooks/whatsapp/{channel}": {name} matches one segment */
	const char *name;    /* the route's label in metrics, e.g. "webhook_whatsapp" */
	hub_http_handler *fn;
	bool large_body;     /* the body may reach limits.large_body_max, not body_max */
};

/* routes (with nroutes entries) must outlive the server; data is passed to handlers;
 * every connection is counted in conns (which must outlive the server) while it is open
 * here; metrics may be NULL. Does not listen yet. */
int hub_http_new(uv_loop_t *loop, const struct hub_http_limits *limits,
		 const struct hub_http_route *routes, size_t nroutes, void *data,
		 struct hub_conns *conns, struct hub_metrics *metrics,
		 struct hub_http **out) HUB_MUSTCHECK;
/* Binds and listens on "host:port" ("127.0.0.1:8080", "[::1]:8080", port 0 = any free).
 * 0 or a negative errno with err filled. */
/* With reuse_port, SO_REUSEPORT: processes of one user listening so on one port share
 * its connections (the kernel spreads them), for one process per core. */
int hub_http_listen(struct hub_http *h, const char *addr, bool reuse_port,
		    struct hub_err *err) HUB_MUSTCHECK;
/* The bound port (after listen), for tests with port 0. */
int hub_http_port(const struct hub_http *h);
/* Applies new limits to new requests (SIGHUP). */
void hub_http_set_limits(struct hub_http *h, const struct hub_http_limits *limits);
size_t hub_http_connections(const struct hub_http *h);
/* Stops accepting, closes idle keep-alive connections, answers new requests on open
 * connections with "Connection: close", and calls cb once no request is in flight (or when
 * deadline_ms passes: then the rest are cut). Idempotent. */
void hub_http_drain(struct hub_http *h, int deadline_ms, void (*cb)(void *data), void *data);
/* Closes every connection and handle, frees h, then calls cb (may be NULL). */
void hub_http_close(struct hub_http *h, void (*cb)(void *data), void *data);

/* Request accessors: slices valid until the response is sent. */
struct hub_str hub_http_req_method(const struct hub_http_req *req);
struct hub_str hub_http_req_path(const struct hub_http_req *req);   /* without the query */
struct hub_str hub_http_req_body(const struct hub_http_req *req);
/* Header value by case-insensitive name; HUB_STR_NULL when absent. */
struct hub_str hub_http_req_header(const struct hub_http_req *req, const char *name);
/* Path parameter of the matched route ("channel"); percent-decoded. */
struct hub_str hub_http_req_param(const struct hub_http_req *req, const char *name);
/* Query parameter ("hub.challenge"), percent-decoded: 0 and *value (the first of that
 * name), -ENOENT when absent, -EBADMSG when its value has a bad %-escape or an encoded NUL
 * (*value is HUB_STR_NULL for both). */
int hub_http_req_query_get(const struct hub_http_req *req, const char *name,
			   struct hub_str *value) HUB_MUSTCHECK;
/* The same as a slice: HUB_STR_NULL when absent or malformed (for callers that treat a
 * malformed value like a missing one). */
struct hub_str hub_http_req_query(const struct hub_http_req *req, const char *name);
/* The request's arena, released after the response is sent. */
struct hub_pool *hub_http_req_pool(struct hub_http_req *req);
/* The client's address ("192.0.2.7", "2001:db8::1") in buf (len at least 46), for the
 * audit log; "" when the connection is gone or the address unknown. Returns buf. */
const char *hub_http_req_peer(const struct hub_http_req *req, char *buf, size_t len);
/* Ids for log lines: "conn=42 req=7". */
uint64_t hub_http_req_conn_id(const struct hub_http_req *req);
uint64_t hub_http_req_id(const struct hub_http_req *req);

/* Adds a response header (before respond). name and value are copied. */
void hub_http_req_add_header(struct hub_http_req *req, const char *name, const char *value);
/* Sends the response (body copied) and finishes req. */
void hub_http_req_respond(struct hub_http_req *req, int status, const char *content_type,
			  struct hub_str body);
/* {"error":{"code":"bad_signature","message":"..."}} with status. */
void hub_http_req_error(struct hub_http_req *req, int status, const char *code,
			const char *fmt, ...) HUB_PRINTF(4, 5);
/* A streamed response (a file passed on as it arrives), instead of _respond: the head
 * now, then the body in pieces. length >= 0 is sent as Content-Length (the pieces must add
 * up to it); -1 streams with chunked coding (HTTP/1.0: until the connection closes).
 * Then only _write, _queued, _on_drain and _end may be called. */
void hub_http_req_start(struct hub_http_req *req, int status, const char *content_type,
			int64_t length);
/* Queues data (copied only when the kernel does not take it at once). 0, or -EPIPE when
 * the client is gone (then call _end). Nothing is sent for HEAD. */
int hub_http_req_write(struct hub_http_req *req, struct hub_str data) HUB_MUSTCHECK;
/* Bytes of the connection still waiting for the kernel: the producer pauses above its
 * high-water mark (backpressure) and waits for _on_drain. */
size_t hub_http_req_queued(const struct hub_http_req *req);
/* cb runs once, on the loop (never inside _write), when the queued bytes drop to at most
 * low or the client goes away (then _write answers -EPIPE). Replaces an earlier one. */
typedef void hub_http_drain_cb(struct hub_http_req *req, void *data);
void hub_http_req_on_drain(struct hub_http_req *req, size_t low, hub_http_drain_cb *cb,
			   void *data);
/* Finishes a streamed response: ok, the last chunk (or nothing more with a length);
 * not ok, the response is cut and the connection closed, so that the client sees it
 * incomplete. req is released. */
void hub_http_req_end(struct hub_http_req *req, bool ok);

/* The status that an errno of the one error space maps to (-EBADMSG 400, -EPERM 401,
 * -ENOENT 404, -EMSGSIZE 413, -ENOTCONN/-ECONNRESET/-ETIMEDOUT/-EAGAIN 503, else 500). */
int hub_http_status_for(int err);

/* Hands the connection over (websocket upgrade): cb gets a dup()ed fd that it owns and
 * the bytes of this request (and anything after it) read so far; the server forgets the
 * connection. A handshake that breaks RFC 6455 4.2.1 (no Connection: upgrade, a version
 * other than 13, no or a bad Sec-WebSocket-Key, a subprotocol list that is not tokens, a
 * body, HTTP/1.0) is answered here instead, with a JSON error: 426 with
 * "Sec-WebSocket-Version: 13" for the version, else 400 (logged at debug only), and cb
 * does not run. Returns 0 (cb has run, or the request is answered) or a negative errno
 * (then respond normally). */
typedef void hub_http_upgrade_cb(int fd, const char *buf, size_t len, void *data);
int hub_http_req_upgrade(struct hub_http_req *req, hub_http_upgrade_cb *cb,
			 void *data) HUB_MUSTCHECK;

#endif
