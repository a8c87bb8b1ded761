/* daemon/inbox/ws.h - the agents' websocket server: libwebsockets 4.1 on hubd's own libuv loop,
 * taking over upgraded connections from the HTTP server (same port), subprotocol
 * bayge.v1 (README "Live inbox websocket"): JWT authentication as the first frame, hello,
 * resume from the event log, the bus's ordered events to that tenant's sockets only, and
 * the agents' commands (daemon/inbox/inbox.h).
 * Knows nothing about llhttp or webhooks; it only sees fds and frames. */
#ifndef HUB_WS_H
#define HUB_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"

struct hub_ws;
struct hub_store;
struct hub_bus;
struct hub_conns;
struct hub_metrics;
struct hub_revocations;

struct hub_ws_opts {
	struct hub_str jwt_secret; /* copied */
	int max_token_ttl_s;       /* longer-lived tokens are refused (lib/jwt.h); 0: no cap */
	int auth_timeout_ms;       /* no valid auth frame by then: closed (1008) */
	size_t max_frame;          /* bytes of one incoming message; beyond: closed (1009) */
	size_t send_queue_max;     /* bytes queued for one socket; an event beyond: the socket
				    * catches up from the log; an answer beyond: closed (1008) */
	int ping_interval_ms;      /* keepalive ping; nothing heard for two intervals: closed */
	int commands_per_s;        /* command rate limit (token bucket refill per second) */
	int command_burst;         /* ... and its size; a socket that keeps going is closed */
	int max_sockets;           /* open sockets in total; beyond: closed (1013) */
	int max_sockets_per_tenant; /* authenticated sockets of one tenant; beyond: closed */
	size_t text_max;           /* code points of a text sent with "send" */
	int resume_grace_ms;       /* after hello, live events wait this long for a resume */
};

/* Creates the lws context on loop (foreign loop) and its vhost, and becomes bus's sink.
 * store runs the commands; bus (outliving ws) gives hello's last id, the events and
 * resume's pages; every socket is counted in conns (outliving ws) by its peer while it is
 * open; metrics may be NULL. */
int hub_ws_new(uv_loop_t *loop, const struct hub_ws_opts *opts, struct hub_store *store,
	       struct hub_bus *bus, struct hub_conns *conns, struct hub_metrics *metrics,
	       struct hub_ws **out, struct hub_err *err) HUB_MUSTCHECK;
/* Live reload of timeouts, limits and the secret (new sockets and new frames). A new
 * secret closes every authenticated socket (1008 "token revoked: the signing key
 * changed"); a lower max_token_ttl_s those whose token it refuses now. */
void hub_ws_set_opts(struct hub_ws *ws, const struct hub_ws_opts *opts);
/* The revoked tokens (lib/revoke.h; referenced, NULL: none) for new sockets, and every
 * authenticated socket whose token they revoke is closed (1008 "token revoked"). */
void hub_ws_set_revocations(struct hub_ws *ws, struct hub_revocations *rv);
/* Takes over an accepted connection whose HTTP upgrade request (len bytes at buf, at most
 * 2048) was already read: fd is owned by ws from now on, even on error. A client that
 * offers subprotocols, none of them bayge.v1, gets a 400 with a JSON error body and the
 * connection is closed (logged at debug; that is a 0 too). 0 or -errno. */
int hub_ws_adopt(struct hub_ws *ws, int fd, const char *buf, size_t len) HUB_MUSTCHECK;
size_t hub_ws_clients(const struct hub_ws *ws);

/* Sockets of a second subprotocol (the website chat's visitors, daemon/webchat/) handed to
 * a handler: ws keeps the framing, the send queues (ws.send_queue_max), the pings, the
 * frame bound (ws.max_frame), ws.max_sockets and http.max_per_address, and the auth
 * deadline (ws.auth_timeout_ms) until the handler calls hub_ws_peer_ready(); the handler
 * reads the messages and decides everything else. A peer is valid from open() until
 * closed() returns. */
struct hub_ws_peer;
struct hub_bus_sink;
struct hub_ws_handler {
	const char *protocol; /* the subprotocol: "bayge.visitor.v1" */
	/* A socket is open; path and origin are the upgrade request's (path with its query,
	 * origin "" when absent). Returns the handler's state for it, or NULL to refuse it
	 * (closed 1008 "refused"). */
	void *(*open)(void *data, struct hub_ws_peer *p, const char *path, const char *origin);
	/* One whole message (binary true for a binary one). */
	void (*message)(void *state, struct hub_str msg, bool binary);
	/* The socket is gone; state is the handler's to free. */
	void (*closed)(void *state);
	void *data;
};
/* Sets the handler (h must outlive ws; NULL: its subprotocol is refused). */
void hub_ws_set_handler(struct hub_ws *ws, const struct hub_ws_handler *h);
/* As hub_ws_adopt for the handler's subprotocol, which the client must offer. */
int hub_ws_adopt_handler(struct hub_ws *ws, int fd, const char *buf, size_t len) HUB_MUSTCHECK;
/* Queues a text frame (copied); nothing when the socket is closing. */
void hub_ws_peer_send(struct hub_ws_peer *p, struct hub_str json);
/* Closes with code and reason (at most 123 bytes); closed() follows later. */
void hub_ws_peer_close(struct hub_ws_peer *p, int code, const char *reason);
/* The peer authenticated: the auth deadline no longer applies. */
void hub_ws_peer_ready(struct hub_ws_peer *p);
uint64_t hub_ws_peer_id(const struct hub_ws_peer *p); /* for logs and typing's origin */
/* The peer's address as http.max_per_address counts it (IPv4, IPv6 /64): 0, or -ENOENT when
 * unknown. */
struct hub_conns_key;
int hub_ws_peer_addr(const struct hub_ws_peer *p, struct hub_conns_key *out) HUB_MUSTCHECK;
/* Another listener of the bus's events (ws is the bus's sink): each event, ready and
 * ephemeral of every tenant that anyone holds a reference to goes to tap too, before the
 * agents' sockets get it (tap and data outlive ws; NULL: none). */
void hub_ws_set_tap(struct hub_ws *ws, const struct hub_bus_sink *tap, void *data);
/* Closes every socket with 1001 "going away" and tears lws down on the loop (two-phase, see
 * INTEGRATION.md); cb runs once everything is closed. hub_ws_finish() must then be called
 * after uv_run() returns, before uv_loop_close(). */
void hub_ws_close(struct hub_ws *ws, void (*cb)(void *data), void *data);
void hub_ws_finish(struct hub_ws *ws);

#endif
