/* daemon/net/httpc.h - the HTTP/1.1 client of hubd (platform send APIs, the AI provider):
 * https through OpenSSL 3 on memory BIOs (the socket stays a uv_tcp_t) with peer and host
 * name verification, plain http for local fakes, llhttp for responses, asynchronous DNS with
 * a small cache, a keep-alive pool per origin with a cap and a bounded FIFO of waiting
 * requests, and per-request timeouts. Runs on the daemon's loop: no threads of its own.
 * Knows nothing about what is sent: no platform, no JSON. Logs only host:port, statuses
 * and errors, never a path, a query, a header value or a body.
 * The process must ignore SIGPIPE (hubd does): libuv writes with write(2). */
#ifndef HUB_HTTPC_H
#define HUB_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"

struct hub_httpc;      /* the client: pools of connections, DNS cache, TLS context */
struct hub_httpc_call; /* one request in flight */

/* Defaults for the zero values of hub_httpc_opts and hub_httpc_req. */
#define HUB_HTTPC_MAX_CONNS 4                  /* per origin */
#define HUB_HTTPC_MAX_QUEUE 256                /* per origin */
#define HUB_HTTPC_IDLE_TIMEOUT_MS 30000
#define HUB_HTTPC_MAX_RESPONSE (8u << 20)      /* bytes */
#define HUB_HTTPC_CONNECT_TIMEOUT_MS 10000
#define HUB_HTTPC_RESPONSE_TIMEOUT_MS 30000
#define HUB_HTTPC_TOTAL_TIMEOUT_MS 60000

struct hub_httpc_opts {
	const char *ca_file;      /* PEM CAs to trust; NULL: the system store */
	int max_conns_per_origin; /* open connections per (scheme, host, port); 0: default */
	int max_queue;            /* requests waiting for one of them, per origin; 0: default */
	int idle_timeout_ms;      /* an unused keep-alive connection is closed after; 0: default */
	size_t max_response;      /* status line + header names and values + body; 0: default */
};

/* A request header: both NUL-terminated, no CR or LF. Host, Content-Length,
 * Transfer-Encoding and Connection are the client's own (-EINVAL); User-Agent is
 * "bayge-hub" unless given here. */
struct hub_httpc_header {
	const char *name;
	const char *value;
};

struct hub_httpc_resp;

/* Streaming (hub_httpc_req.on_body): the final response's status and headers, then its body
 * piece by piece as it arrives (data valid during the call only). Both run inside the
 * client's read, with the data of hub_httpc_request(): 0 goes on; a negative errno ends
 * the call with that status (cb gets it; the connection is closed). They may pause or
 * resume the call, never cancel it or close the client. */
typedef int hub_httpc_head_cb(const struct hub_httpc_resp *resp, void *data);
typedef int hub_httpc_body_cb(struct hub_str piece, void *data);

/* What to send: a value the caller fills; everything in it is copied by
 * hub_httpc_request(), so nothing needs to outlive that call. */
struct hub_httpc_req {
	const char *method;  /* "GET", "POST", ...; NULL: GET */
	/* "https://graph.example:8443/v21.0/123/messages?x=1": scheme http or https, host a
	 * name, an IPv4 address or a [v6] address, optional port; no user info; a fragment
	 * is dropped. */
	const char *url;
	const struct hub_httpc_header *headers;
	size_t nheaders;
	struct hub_str body; /* sent with Content-Length (also 0 for POST, PUT and PATCH) */
	/* 0: the HUB_HTTPC_*_TIMEOUT_MS default; expired → -ETIMEDOUT, connection closed. */
	int connect_timeout_ms;  /* DNS, TCP connect and TLS handshake of a new connection */
	int response_timeout_ms; /* from the request written to the first response byte */
	int total_timeout_ms;    /* from hub_httpc_request() to the end, queueing included */
	/* A reused keep-alive connection can turn out closed by the server when the request
	 * is sent on it. With this set, the request is then sent again, once, on a new
	 * connection, provided no byte of a response had arrived. Only for requests that are
	 * safe to repeat: the server may have acted on the first before closing. Without it,
	 * that case ends with -ECONNRESET and the caller decides. */
	bool retry_on_stale;
	/* With on_body set, the response is streamed, not kept: on_head (may be NULL) gets the
	 * final response without its body, on_body each piece of the body, and cb the end
	 * (resp->body empty). The body does not count against max_response (status line and
	 * headers still do): the caller bounds it, e.g. with the Content-Length on_head sees. */
	hub_httpc_head_cb *on_head;
	hub_httpc_body_cb *on_body;
};

/* A response header, as received (a repeated header appears once per line). */
struct hub_httpc_field {
	struct hub_str name;
	struct hub_str value;
};

/* The final response (1xx interim responses are skipped). Everything in it is valid only
 * during the callback: copy what you keep. */
struct hub_httpc_resp {
	int status;                           /* as sent: 200..999 */
	struct hub_str body;                  /* chunked framing removed; NUL after the end */
	const struct hub_httpc_field *fields; /* the headers, in order */
	size_t nfields;
};

/* status: 0 with resp, or a negative errno with resp NULL:
 *   -ETIMEDOUT     a timeout of the request expired
 *   -ECONNREFUSED, -ENETUNREACH, ...  from connect(2) (the last address tried)
 *   -EHOSTUNREACH  the host name did not resolve
 *   -EPERM         the server's certificate failed verification (chain or host name)
 *   -EPROTO        another TLS failure, or an unexpected 101 response
 *   -EBADMSG       a malformed HTTP response
 *   -EMSGSIZE      the response is larger than max_response
 *   -ECONNRESET    the connection ended before the response did (also a stale keep-alive
 *                  connection when the request was not marked retry_on_stale)
 *   -ECANCELED     the client was closed first
 * An HTTP error status (4xx, 5xx) is a response: status 0, resp->status 404. */
typedef void hub_httpc_cb(int status, const struct hub_httpc_resp *resp, void *data);

struct hub_httpc_stats {
	uint64_t requests;       /* accepted by hub_httpc_request() */
	uint64_t responses;      /* ended with a response (any HTTP status) */
	uint64_t errors;         /* ended with a negative errno (not hub_httpc_call_cancel) */
	uint64_t conns_opened;   /* connections started */
	uint64_t conns_reused;   /* requests sent on an idle keep-alive connection */
	uint64_t stale_retries;  /* requests sent again after a stale connection */
	uint64_t dns_lookups;    /* uv_getaddrinfo() calls */
	uint64_t dns_cache_hits; /* connections that found their host's addresses cached */
	size_t conns_open;       /* now: connecting, busy or idle */
	size_t conns_idle;       /* now: idle in a pool */
	size_t queued;           /* now: requests waiting for a connection */
};

/* A client on loop; o may be NULL (all defaults). Loads the CA file or the system store.
 * 0, or a negative errno with err filled (-EINVAL for a bad option, -EPROTO when OpenSSL
 * refuses the CA file). */
int hub_httpc_new(uv_loop_t *loop, const struct hub_httpc_opts *o, struct hub_httpc **out,
		  struct hub_err *err) HUB_MUSTCHECK;

/* Closes the client: every request still pending gets its callback with -ECANCELED before
 * this returns, connections are closed, DNS lookups cancelled; c is freed once its last
 * handle is closed, and then cb (may be NULL) runs, from the loop or at once when nothing
 * was open. NULL-safe and idempotent. */
void hub_httpc_close(struct hub_httpc *c, void (*cb)(void *data), void *data);

/* Sends r. Returns 0 and later calls cb exactly once, from the loop (never from inside
 * this call), with the response or an error; or returns a negative errno and never calls
 * cb: -EINVAL (bad URL, method or header), -EAGAIN (the origin's queue is full), -ECANCELED
 * (the client is closing). When out is not NULL, *out is a handle for
 * hub_httpc_call_cancel(), valid until cb starts. */
int hub_httpc_request(struct hub_httpc *c, const struct hub_httpc_req *r, hub_httpc_cb *cb,
		      void *data, struct hub_httpc_call **out) HUB_MUSTCHECK;

/* Abandons a request whose callback has not started: cb is then never called (so the
 * caller may free data right away). A connection it was using is closed, not reused. Must
 * not be called for a call whose callback has started or returned. */
void hub_httpc_call_cancel(struct hub_httpc_call *call);

/* Backpressure for a streamed call: stops reading its response (a few more pieces already
 * read may still come to on_body), and reads on. Its timeouts keep running. Only before
 * cb runs; no-ops while the call is not reading a response. */
void hub_httpc_call_pause(struct hub_httpc_call *call);
void hub_httpc_call_resume(struct hub_httpc_call *call);

/* The first value of response header name (ASCII case-insensitive), or HUB_STR_NULL. */
struct hub_str hub_httpc_resp_header(const struct hub_httpc_resp *resp, const char *name);

void hub_httpc_get_stats(const struct hub_httpc *c, struct hub_httpc_stats *out);

#endif
