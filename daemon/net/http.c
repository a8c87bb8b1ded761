/* daemon/net/http.c - see http.h. One struct conn per TCP connection (a uv_tcp_t and one
 * uv_timer_t for the header, body, idle and linger deadlines) with one llhttp parser that
 * is paused after each request until it is answered, so pipelined requests are answered in
 * order. Knows nothing about what the routes do, nor about websockets beyond handing over
 * an fd. */
#include "daemon/net/http.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <llhttp.h>

#include "daemon/core/metrics.h"
#include "daemon/net/conns.h"
#include "daemon/net/tcpwrite.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/router.h"

#define TAG "http"
#define READ_CHUNK 16384           /* room offered to each read */
#define PIPELINE_MAX (64 * 1024)   /* bytes buffered while a request is being handled */
#define UPGRADE_MAX 2048           /* bytes handed over with an upgraded connection */
#define MAX_HEADERS 64             /* more: 431 */
#define LINGER_MS 2000             /* after "Connection: close": wait for the client's FIN */
#define BACKLOG 511
#define KEEP_BUF_MAX (64 * 1024)   /* a recycled request keeps buffers up to this size */
#define BODY_FIRST_MAX (64 * 1024) /* reserved for an announced body before any of it came */

enum conn_state {
	CONN_IDLE,     /* between requests: idle timeout */
	CONN_HEADERS,  /* request line and headers: header timeout */
	CONN_BODY,     /* body: body timeout */
	CONN_HANDLING, /* handed to its handler: no timer, later bytes are buffered */
	CONN_CLOSING,  /* final response queued: then shutdown, discard input, linger */
};

struct hdr {
	uint32_t name_off, name_len; /* into req->head */
	uint32_t val_off, val_len;
};

struct conn;

struct hub_http_req {
	struct hub_http *h;                /* NULL once the server is closed */
	struct conn *conn;                 /* NULL once the connection is gone */
	struct hub_http_req *prev, *next;  /* h->inflight while dispatched */
	struct hub_pool pool;
	uint64_t conn_id, id;
	uint64_t start;                    /* uv_hrtime() at the first byte */
	struct hub_buf head;               /* URL, then header names and values */
	struct hdr hdrs[MAX_HEADERS];
	int nhdrs;
	uint32_t url_len;
	uint32_t path_off, path_len;       /* head[path_off, +path_len) is the path */
	bool has_query;                    /* from there to url_len, after '?', the query */
	bool in_value;                     /* the last header callback was a value */
	bool in_trailers;                  /* headers complete: fields are trailers */
	uint32_t trailer_len;              /* trailer bytes seen (ignored, but bounded) */
	bool method_seen;
	struct hub_buf body;
	struct hub_buf extra;              /* response headers added by the handler */
	const char *method;
	int route_err;                     /* 0 or the router's error */
	struct hub_router_match match;
	struct hub_str params[HUB_ROUTER_MAX_PARAMS]; /* decoded, in pool */
	bool keep_alive, head_only, upgrade, dispatched, done;
	uint8_t http_minor;
	/* a streamed response (hub_http_req_start) */
	bool streaming, chunked, close, in_write;
	int status;
	uint64_t sent;                     /* body bytes queued */
	hub_http_drain_cb *drain_cb;
	void *drain_data;
	size_t drain_low;
};

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdown;
	struct hub_http *h;
	struct conn *prev, *next;          /* h->conns while open */
	uint64_t id, nreq;
	llhttp_t parser;
	enum conn_state state;
	struct hub_buf in;                 /* bytes read; [off, len) not parsed yet */
	size_t off;
	size_t req_start;                  /* in.p offset of the current request's first byte */
	bool raw_ok;                       /* in still holds the current request from req_start */
	const char *exec_base;             /* what llhttp_execute() got, for positions */
	uint64_t exec_pos;                 /* stream offset of exec_base */
	uint64_t req_pos;                  /* stream offset of the request's first byte */
	struct hub_http_req *req;          /* being parsed or handled */
	struct hub_http_req *spare;        /* a finished request kept for reuse */
	struct hub_buf out;                /* response being built */
	int err_status;                    /* set by a parser callback that fails ... */
	const char *err_code, *err_msg;    /* ... with the answer's code and message */
	int handles;                       /* open uv handles; freed at 0 */
	int wpending;                      /* uv_write()s not completed */
	struct hub_conns_key peer;         /* whom it is counted for in h->counts */
	bool counted;                      /* ... once it is */
	bool reading, in_process, ready, eof, closed, close_after_write, shutting;
};

struct hub_http {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_timer_t drain_timer;
	struct hub_http_limits limits;
	const struct hub_http_route *routes;
	size_t nroutes;
	void *data;
	struct hub_metrics *metrics;
	struct hub_router *router;
	struct hub_conns *counts;          /* shared with the websocket server */
	llhttp_settings_t settings;
	struct conn *conns;                /* open connections */
	size_t nconns;                     /* open: the gauge and max_connections */
	size_t nalloc;                     /* allocated, open or closing */
	struct hub_http_req *inflight;     /* dispatched requests */
	size_t ninflight;
	uint64_t next_conn_id;
	int port;
	int hpending;                      /* own handles being closed */
	bool listener_init, draining, drain_done, closing;
	void (*drain_cb)(void *data);
	void *drain_data;
	void (*close_cb)(void *data);
	void *close_data;
};

static void process_input(struct conn *c);
static void conn_close(struct conn *c);
static void respond(struct hub_http_req *req, int status, const char *ctype,
		    struct hub_str body, bool close);

static const char *reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

int hub_http_status_for(int err)
{
	switch (err) {
	case 0: return 200;
	case -EBADMSG: return 400;
	case -EPERM: return 401;
	case -ENOENT: return 404;
	case -EMSGSIZE: return 413;
	case -ENOTCONN:
	case -ECONNRESET:
	case -ETIMEDOUT:
	case -EAGAIN: return 503;
	default: return 500;
	}
}

/* ---- requests ---- */

static struct hub_http_req *req_new(struct conn *c)
{
	struct hub_http_req *req = c->spare;

	if (req) {
		c->spare = NULL;
	} else {
		req = hub_xcalloc(1, sizeof(*req));
		hub_pool_init(&req->pool);
		hub_buf_init(&req->head);
		hub_buf_init(&req->body);
		hub_buf_init(&req->extra);
	}
	req->h = c->h;
	req->conn = c;
	req->conn_id = c->id;
	req->id = ++c->nreq;
	req->start = uv_hrtime();
	req->in_value = true; /* the first field starts a new header */
	req->route_err = -ENOENT;
	req->match.route = -1;
	return req;
}

static void req_free(struct hub_http_req *req)
{
	hub_pool_release(&req->pool);
	hub_buf_release(&req->head);
	hub_buf_release(&req->body);
	hub_buf_release(&req->extra);
	free(req);
}

/* Empties req for reuse by c, or frees it. */
static void req_recycle(struct hub_http_req *req, struct conn *c)
{
	if (!c || c->closed || c->spare) {
		req_free(req);
		return;
	}
	hub_pool_release(&req->pool);
	if (req->head.cap > KEEP_BUF_MAX)
		hub_buf_release(&req->head);
	if (req->body.cap > KEEP_BUF_MAX)
		hub_buf_release(&req->body);
	if (req->extra.cap > KEEP_BUF_MAX)
		hub_buf_release(&req->extra);
	hub_buf_reset(&req->head);
	hub_buf_reset(&req->body);
	hub_buf_reset(&req->extra);
	struct hub_pool pool = req->pool;
	struct hub_buf head = req->head, body = req->body, extra = req->extra;

	memset(req, 0, sizeof(*req));
	req->pool = pool;
	req->head = head;
	req->body = body;
	req->extra = extra;
	c->spare = req;
}

static const char *route_name(const struct hub_http_req *req, int status)
{
	if (req->h && req->match.route >= 0)
		return req->h->routes[req->match.route].name;
	return status == 404 ? "not_found" : "unrouted";
}

/* ---- writing ---- */

static void begin_shutdown(struct conn *c);
static void drain_check(struct hub_http_req *req);

static void on_write(uv_write_t *w, int status)
{
	struct hub_tcpwrite *wr = hub_tcpwrite_of(w);
	struct conn *c = wr->owner;

	free(wr);
	c->wpending--;
	if (c->closed)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	if (!c->wpending && c->close_after_write)
		begin_shutdown(c);
	if (c->req && c->req->streaming)
		drain_check(c->req);
}

/* Queues bytes in order; copies only what the kernel did not take at once. */
static void conn_send(struct conn *c, const char *p, size_t len)
{
	if (!c->closed &&
	    hub_tcpwrite((uv_stream_t *)&c->tcp, p, len, &c->wpending, c, on_write) < 0)
		conn_close(c);
}

/* ---- connection lifecycle ---- */

static void maybe_free_server(struct hub_http *h)
{
	void (*cb)(void *data);
	void *data;

	if (!h->closing || h->hpending || h->nalloc)
		return;
	cb = h->close_cb;
	data = h->close_data;
	hub_router_free(h->router);
	free(h);
	if (cb)
		cb(data);
}

static void on_conn_close(uv_handle_t *handle)
{
	struct conn *c = handle->data;
	struct hub_http *h = c->h;

	if (--c->handles)
		return;
	hub_buf_release(&c->in);
	hub_buf_release(&c->out);
	if (c->spare)
		req_free(c->spare);
	free(c);
	h->nalloc--;
	maybe_free_server(h);
}

static void check_drain(struct hub_http *h);

/* Closes at once; a dispatched request stays valid for its handler (its response is then
 * dropped). Idempotent. */
static void conn_close(struct conn *c)
{
	struct hub_http *h = c->h;
	struct hub_http_req *streaming = NULL;

	if (c->closed)
		return;
	c->closed = true;
	if (c->req) {
		struct hub_http_req *req = c->req;

		c->req = NULL;
		if (req->dispatched) {
			req->conn = NULL;
			if (req->streaming)
				streaming = req;
		} else {
			req_free(req);
		}
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->nconns--;
	if (c->counted)
		hub_conns_remove(h->counts, &c->peer);
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_close((uv_handle_t *)&c->tcp, on_conn_close);
	uv_close((uv_handle_t *)&c->timer, on_conn_close);
	check_drain(h);
	if (streaming)
		drain_check(streaming); /* the producer learns that the client is gone */
}

static void on_timer(uv_timer_t *t);

static void timer_start(struct conn *c, int ms)
{
	if (ms <= 0) {
		uv_timer_stop(&c->timer);
		return;
	}
	uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
	struct conn *c = sr->data;

	c->shutting = false;
	if (c->closed)
		return;
	if (status < 0 || c->eof) {
		conn_close(c);
		return;
	}
	/* Read and drop what the client still sends until its FIN or the linger deadline:
	 * closing with unread bytes would reset the connection and lose our response. */
	timer_start(c, LINGER_MS);
}

static void begin_shutdown(struct conn *c)
{
	if (c->shutting || c->closed)
		return;
	c->shutdown.data = c;
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
		conn_close(c);
		return;
	}
	c->shutting = true;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void update_reading(struct conn *c)
{
	bool want;

	if (c->closed)
		return;
	if (c->state == CONN_CLOSING)
		want = !c->eof;
	else
		want = !c->eof && (c->state != CONN_HANDLING || c->in.len - c->off < PIPELINE_MAX);
	if (want && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
			conn_close(c);
			return;
		}
		c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

/* After the final response: no more requests; close once it is written. */
static void conn_close_after_write(struct conn *c)
{
	if (c->closed)
		return;
	c->state = CONN_CLOSING;
	c->close_after_write = true;
	uv_timer_stop(&c->timer);
	hub_buf_reset(&c->in);
	c->off = 0;
	c->raw_ok = false;
	timer_start(c, 10000); /* bounds a client that does not read our answer */
	if (!c->wpending)
		begin_shutdown(c);
	update_reading(c);
}

/* The current request is answered and released: go on with the next one. */
static void after_response(struct conn *c, bool close)
{
	if (c->closed)
		return;
	if (close) {
		conn_close_after_write(c);
		return;
	}
	llhttp_resume(&c->parser);
	c->state = CONN_IDLE;
	c->ready = false;
	c->raw_ok = false;
	timer_start(c, c->h->limits.idle_timeout_ms);
	if (!c->in_process)
		process_input(c);
	update_reading(c);
}

/* Answers a request that never reached a handler (timeout, limits, malformed) and closes. */
/* {"error":{"code":...,"message":...}} */
static void error_body(struct hub_buf *b, const char *code, const char *msg)
{
	struct hub_jw w;

	hub_jw_init(&w, b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "error");
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "code");
	hub_jw_cstr(&w, code);
	hub_jw_key(&w, "message");
	hub_jw_cstr(&w, msg);
	hub_jw_obj_close(&w);
	hub_jw_obj_close(&w);
}

static void conn_fail(struct conn *c, int status, const char *code, const char *msg)
{
	struct hub_http_req *req = c->req;
	struct hub_buf b = HUB_BUF_INIT;

	if (c->closed || c->state == CONN_CLOSING || c->state == CONN_HANDLING)
		return;
	if (!req)
		req = c->req = req_new(c);
	error_body(&b, code, msg);
	req->head_only = false;
	respond(req, status, "application/json", hub_buf_str(&b), true);
	hub_buf_release(&b);
}

static void on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;

	switch (c->state) {
	case CONN_IDLE:
		hub_log_debug(TAG, "conn=%llu: idle timeout", (unsigned long long)c->id);
		conn_close(c);
		break;
	case CONN_HEADERS:
	case CONN_BODY:
		hub_log_debug(TAG, "conn=%llu: %s timeout", (unsigned long long)c->id,
			      c->state == CONN_HEADERS ? "header" : "body");
		conn_fail(c, 408, "timeout", "request not received in time");
		break;
	case CONN_CLOSING:
		conn_close(c);
		break;
	case CONN_HANDLING:
		break;
	}
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = handle->data;
	size_t keep = c->off;
	bool hold;

	(void)suggested;
	/* Drop parsed bytes, but keep the current request from its first byte while it is
	 * small enough to be handed over by an upgrade, and while its head is being read
	 * (head_has_obs_fold() reads it whole; header_max bounds it). */
	if (c->req && c->raw_ok && c->in.len - c->req_start > UPGRADE_MAX)
		c->raw_ok = false;
	hold = c->req && (c->raw_ok || (c->state == CONN_HEADERS && c->req->method_seen));
	if (hold)
		keep = c->req_start;
	if (c->state == CONN_CLOSING) {
		keep = c->in.len;
		hold = false;
	}
	if (keep) {
		hub_buf_consume(&c->in, keep);
		c->off -= keep < c->off ? keep : c->off;
		if (hold)
			c->req_start -= keep;
	}
	hub_buf_grow(&c->in, READ_CHUNK);
	buf->base = c->in.p + c->in.len;
	buf->len = c->in.cap - c->in.len - 1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	if (c->closed)
		return;
	if (nread > 0) {
		if (c->state == CONN_CLOSING)
			return; /* lingering: dropped */
		c->in.len += (size_t)nread;
		c->in.p[c->in.len] = '\0';
		process_input(c);
		update_reading(c);
		return;
	}
	if (nread == 0)
		return;
	if (nread == UV_EOF) {
		c->eof = true;
		/* A half-closed client may still wait for the answer it asked for, or for the
		 * rest of one being written. */
		if (c->state == CONN_HANDLING) {
			update_reading(c);
			return;
		}
		if (c->wpending || c->shutting) {
			if (c->state != CONN_CLOSING)
				conn_close_after_write(c);
			else
				update_reading(c);
			return;
		}
	}
	conn_close(c);
}

/* ---- parser callbacks (inside llhttp_execute) ---- */

static uint64_t stream_pos(const struct conn *c, const char *at)
{
	return c->exec_pos + (uint64_t)(at - c->exec_base);
}

/* A callback refuses the request: process_input() answers status with code and message
 * and closes. Returns -1 for llhttp. */
static int parse_fail(struct conn *c, int status, const char *code, const char *msg)
{
	c->err_status = status;
	c->err_code = code;
	c->err_msg = msg;
	return -1;
}

static int header_overflow(struct conn *c, const char *end)
{
	if (stream_pos(c, end) - c->req_pos > c->h->limits.header_max)
		return parse_fail(c, 431, "header_too_large", "request headers too large");
	return 0;
}

static int on_message_begin(llhttp_t *p)
{
	struct conn *c = p->data;

	if (c->closed)
		return -1;

	if (!c->req)
		c->req = req_new(c);
	c->state = CONN_HEADERS;
	c->req_pos = c->exec_pos; /* corrected by the first on_method */
	c->raw_ok = false;
	timer_start(c, c->h->limits.header_timeout_ms);
	return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (c->closed)
		return -1;

	if (!c->req->method_seen) {
		c->req->method_seen = true;
		c->req_pos = stream_pos(c, at);
		c->req_start = (size_t)(at - c->in.p);
		c->raw_ok = true;
	}
	return header_overflow(c, at + len);
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (c->closed)
		return -1;

	hub_buf_add(&c->req->head, at, len);
	c->req->url_len += (uint32_t)len;
	return header_overflow(c, at + len);
}

/* A chunked body's trailers come through the header callbacks after the head was parsed
 * and routed. They are ignored (no handler reads them) and never appended to the head,
 * which path, query and the header slices index; only their size is bounded. */
static int trailer_overflow(struct conn *c, size_t len)
{
	struct hub_http_req *req = c->req;

	req->trailer_len += (uint32_t)len;
	if (req->trailer_len > c->h->limits.header_max)
		return parse_fail(c, 431, "header_too_large", "request headers too large");
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct hub_http_req *req = c->req;

	if (c->closed)
		return -1;
	if (req->in_trailers)
		return trailer_overflow(c, len);

	if (header_overflow(c, at + len))
		return -1;
	/* RFC 9112 5.1: whitespace between a field name and its colon must be refused with
	 * 400 (llhttp 8.1 passes "Host :" as the name "Host "): another server might read
	 * the same line as a different field. */
	if (memchr(at, ' ', len) || memchr(at, '\t', len))
		return parse_fail(c, 400, "bad_request", "whitespace in a header field name");
	if (req->in_value) {
		if (req->nhdrs == MAX_HEADERS)
			return parse_fail(c, 431, "header_too_large", "too many request headers");
		req->hdrs[req->nhdrs].name_off = (uint32_t)req->head.len;
		req->hdrs[req->nhdrs].name_len = 0;
		req->hdrs[req->nhdrs].val_off = (uint32_t)req->head.len;
		req->hdrs[req->nhdrs].val_len = 0;
		req->nhdrs++;
		req->in_value = false;
	}
	hub_buf_add(&req->head, at, len);
	req->hdrs[req->nhdrs - 1].name_len += (uint32_t)len;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct hub_http_req *req = c->req;

	if (c->closed)
		return -1;
	if (req->in_trailers)
		return trailer_overflow(c, len);

	if (header_overflow(c, at + len))
		return -1;
	if (!req->nhdrs)
		return 0;
	if (!req->in_value) {
		req->hdrs[req->nhdrs - 1].val_off = (uint32_t)req->head.len;
		req->in_value = true;
	}
	hub_buf_add(&req->head, at, len);
	req->hdrs[req->nhdrs - 1].val_len += (uint32_t)len;
	return 0;
}

static void route_request(struct hub_http_req *req)
{
	struct hub_http *h = req->h;
	struct hub_str method = hub_str_from(req->method);

	req->route_err = hub_router_match(h->router, method, hub_http_req_path(req), &req->match);
	if (req->route_err)
		return;
	for (int i = 0; i < req->match.nparams; i++) {
		struct hub_str v = req->match.params[i].value;
		char *out = hub_pool_alloc(&req->pool, v.len + 1);
		size_t n;

		if (hub_router_decode(v, false, out, &n) < 0) {
			req->route_err = -EBADMSG;
			req->match.route = -1;
			return;
		}
		out[n] = '\0';
		req->params[i] = (struct hub_str){ out, n };
	}
}

/* RFC 9112 3.2.2: a server must accept the absolute form ("http://host/path?q"): its
 * path is routed and its authority ignored (one site here, as for Host). The offset of
 * the path in url (0 for the origin form). */
static uint32_t absolute_form_path(const char *url, uint32_t len)
{
	uint32_t i;

	if (len >= 7 && strncasecmp(url, "http://", 7) == 0)
		i = 7;
	else if (len >= 8 && strncasecmp(url, "https://", 8) == 0)
		i = 8;
	else
		return 0;
	while (i < len && url[i] != '/' && url[i] != '?')
		i++;
	return i;
}

/* RFC 9112 5.2: obs-fold (a header line that starts with SP or HTAB) must be refused with
 * 400 or replaced by spaces; llhttp 8.1 accepts it and reports the continuation as more
 * of the value (even of an empty value: "Transfer-Encoding:\r\n chunked"), so a server
 * in front that reads the lines otherwise would frame the body differently. The callbacks
 * cannot tell a fold from a value split between two reads: the raw head is read instead,
 * kept whole in c->in from req_start until here (on_alloc). llhttp already refused bare
 * CR and LF, so the head ends at the first empty line. */
static bool head_has_obs_fold(const struct conn *c)
{
	const char *s = c->in.p + c->req_start, *end = c->in.p + c->in.len;

	if (!c->req->method_seen)
		return false;
	for (; s + 1 < end; s++) {
		if (*s != '\n')
			continue;
		if (s[1] == ' ' || s[1] == '\t')
			return true;
		if (s[1] == '\r' || s[1] == '\n')
			break;
	}
	return false;
}

/* The next element of a comma-separated header list (RFC 9110 5.6.1) with its optional
 * whitespace trimmed (possibly empty); false at the end. */
static bool list_next(struct hub_str *rest, struct hub_str *el)
{
	const char *p = rest->p, *end, *comma;

	if (!rest->p)
		return false;
	end = rest->p + rest->len;
	comma = memchr(p, ',', (size_t)(end - p));
	if (comma) {
		*rest = (struct hub_str){ comma + 1, (size_t)(end - comma - 1) };
		end = comma;
	} else {
		*rest = HUB_STR_NULL;
	}
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*el = (struct hub_str){ p, (size_t)(end - p) };
	return true;
}

/* Header line i: is it named name (case-insensitive)? */
static bool hdr_is(const struct hub_http_req *req, int i, const char *name)
{
	const struct hdr *hd = &req->hdrs[i];

	return hub_str_caseeqs((struct hub_str){ req->head.p + hd->name_off, hd->name_len }, name);
}

static struct hub_str hdr_value(const struct hub_http_req *req, int i)
{
	const struct hdr *hd = &req->hdrs[i];

	return (struct hub_str){ req->head.p + hd->val_off, hd->val_len };
}

/* How many header lines are named name; *last is the value of the last one. */
static int header_count(const struct hub_http_req *req, const char *name, struct hub_str *last)
{
	int n = 0;

	for (int i = 0; i < req->nhdrs; i++) {
		if (!hdr_is(req, i, name))
			continue;
		n++;
		if (last)
			*last = hdr_value(req, i);
	}
	return n;
}

/* True when the header lines named name list the token tok (case-insensitive). */
static bool header_has_token(const struct hub_http_req *req, const char *name, const char *tok)
{
	for (int i = 0; i < req->nhdrs; i++) {
		struct hub_str rest = hdr_value(req, i), el;

		if (!hdr_is(req, i, name))
			continue;
		while (list_next(&rest, &el))
			if (hub_str_caseeqs(el, tok))
				return true;
	}
	return false;
}

/* RFC 9112 6.1 and 6.3: the codings listed on every Transfer-Encoding line. 0 when they
 * are exactly "chunked", the only one decoded here; 400 when chunked is not the last
 * (the body's length cannot be known); 501 when other codings come before it (a handler
 * would be given coded bytes as the body, and a signature checked over them). */
static int te_check(const struct hub_http_req *req)
{
	struct hub_str last = HUB_STR_NULL;
	int n = 0;

	for (int i = 0; i < req->nhdrs; i++) {
		struct hub_str rest = hdr_value(req, i), el;

		if (!hdr_is(req, i, "transfer-encoding"))
			continue;
		while (list_next(&rest, &el)) {
			if (!el.len)
				continue;
			last = el;
			n++;
		}
	}
	if (!hub_str_caseeqs(last, "chunked"))
		return 400;
	return n == 1 ? 0 : 501;
}

/* RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, for any request with more than
 * one, and for a Host that is not uri-host[:port] (RFC 3986 characters only). NULL when
 * it is fine, else why. */
static const char *host_problem(const struct hub_http_req *req)
{
	struct hub_str v = HUB_STR_NULL;
	int n = header_count(req, "host", &v);

	if (n == 0)
		return req->http_minor >= 1 ? "the Host header is missing" : NULL;
	if (n > 1)
		return "more than one Host header";
	for (size_t i = 0; i < v.len; i++) {
		unsigned char ch = (unsigned char)v.p[i];

		if (!(ch < 0x80 && (isalnum(ch) || strchr("-._~%!$&'()*+,;=:[]", ch))))
			return "the Host header is not a host[:port]";
	}
	return NULL;
}

/* The body bound of the request being read: its route's. */
static size_t body_max(const struct conn *c)
{
	const struct hub_http_req *req = c->req;

	const struct hub_http_limits *l = &c->h->limits;

	if (req && req->match.route >= 0 && c->h->routes[req->match.route].large_body &&
	    l->large_body_max > l->body_max)
		return l->large_body_max;
	return l->body_max;
}

static int on_headers_complete(llhttp_t *p)
{
	struct conn *c = p->data;
	struct hub_http *h = c->h;
	struct hub_http_req *req = c->req;
	const char *url, *q, *why;
	bool has_body;

	if (c->closed)
		return -1;
	req->in_trailers = true; /* the head is complete: nothing appends to it now */
	req->method = llhttp_method_name((llhttp_method_t)p->method);
	req->head_only = p->method == HTTP_HEAD;
	req->http_minor = p->http_minor;
	req->path_off = absolute_form_path(req->head.p, req->url_len);
	url = req->head.p + req->path_off;
	q = memchr(url, '?', req->url_len - req->path_off);
	req->path_len = q ? (uint32_t)(q - url) : req->url_len - req->path_off;
	req->has_query = q != NULL;
	route_request(req);

	/* Refused before any of the body is read, and the connection closed: what follows
	 * the head cannot be framed with confidence (RFC 9112 6.3, 11.2). */
	if (p->http_major != 1)
		return parse_fail(c, 505, "http_version_not_supported",
				  "only HTTP/1.1 and HTTP/1.0 are served here");
	if (head_has_obs_fold(c))
		return parse_fail(c, 400, "bad_request",
				  "obsolete line folding in a header is not accepted");
	why = host_problem(req);
	if (why)
		return parse_fail(c, 400, "bad_request", why);
	/* RFC 9110 15.6.2: a method that no resource here implements */
	if (p->method == HTTP_CONNECT)
		return parse_fail(c, 501, "not_implemented",
				  "CONNECT is not supported: this is not a proxy");
	if (p->flags & F_TRANSFER_ENCODING) {
		/* RFC 9112 6.1: HTTP/1.0 has no Transfer-Encoding: the framing is faulty */
		if (p->http_minor == 0)
			return parse_fail(c, 400, "bad_request",
					  "Transfer-Encoding in an HTTP/1.0 request");
		switch (te_check(req)) {
		case 400:
			return parse_fail(c, 400, "bad_request",
					  "Transfer-Encoding must end with chunked");
		case 501:
			return parse_fail(c, 501, "not_implemented",
					  "only the chunked transfer coding is supported");
		}
	}
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length > body_max(c))
		return parse_fail(c, 413, "body_too_large", "request body too large");
	/* Only a bounded first reservation for an announced body: a client that announces
	 * body_max and sends nothing must not make us hold body_max (300 such connections
	 * took 39 GB of address space: security issue, finding 5). The buffer grows with
	 * the bytes that arrive. */
	if (p->flags & F_CONTENT_LENGTH)
		hub_buf_grow(&req->body, p->content_length < BODY_FIRST_MAX ?
					 (size_t)p->content_length : BODY_FIRST_MAX);
	has_body = (p->flags & F_CHUNKED) ||
		   ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
	/* RFC 9110 10.1.1: only HTTP/1.1 clients wait for it, and only for a body */
	if (has_body && p->http_minor >= 1 &&
	    hub_str_caseeqs(hub_http_req_header(req, "expect"), "100-continue")) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		conn_send(c, cont, sizeof(cont) - 1);
	}
	c->state = CONN_BODY;
	timer_start(c, h->limits.body_timeout_ms);
	return 0;
}

/* A chunk larger than what body_max still allows is refused when its size line arrives,
 * not after body_max bytes of it. */
static int on_chunk_header(llhttp_t *p)
{
	struct conn *c = p->data;
	size_t have = c->req->body.len, max = body_max(c);

	if (c->closed)
		return -1;
	if (have > max || p->content_length > max - have)
		return parse_fail(c, 413, "body_too_large", "request body too large");
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct hub_http_req *req = c->req;

	if (c->closed)
		return -1;

	if (req->body.len + len > body_max(c))
		return parse_fail(c, 413, "body_too_large", "request body too large");
	hub_buf_add(&req->body, at, len);
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct conn *c = p->data;

	if (c->closed)
		return -1;

	c->req->keep_alive = llhttp_should_keep_alive(p);
	c->req->upgrade = p->upgrade;
	c->ready = true;
	return HPE_PAUSED;
}

/* ---- dispatch ---- */

static void dispatch(struct conn *c)
{
	struct hub_http *h = c->h;
	struct hub_http_req *req = c->req;
	char allow[128];

	c->state = CONN_HANDLING;
	uv_timer_stop(&c->timer);
	req->dispatched = true;
	req->prev = NULL;
	req->next = h->inflight;
	if (h->inflight)
		h->inflight->prev = req;
	h->inflight = req;
	h->ninflight++;

	switch (req->route_err) {
	case 0:
		h->routes[req->match.route].fn(req, h->data);
		break;
	case -ENOENT:
		hub_http_req_error(req, 404, "not_found", "no such path");
		break;
	case -EOPNOTSUPP:
		hub_router_allow(h->router, hub_http_req_path(req), allow, sizeof(allow));
		hub_http_req_add_header(req, "Allow", allow);
		hub_http_req_error(req, 405, "method_not_allowed", "method not allowed here");
		break;
	case -ENAMETOOLONG:
		hub_http_req_error(req, 414, "uri_too_long", "path too long");
		break;
	default:
		hub_http_req_error(req, 400, "bad_path", "malformed path");
		break;
	}
}

static void process_input(struct conn *c)
{
	struct hub_http *h = c->h;

	if (c->in_process)
		return;
	c->in_process = true;
	while (!c->closed && c->state != CONN_HANDLING && c->state != CONN_CLOSING) {
		size_t avail = c->in.len - c->off;
		const char *base = c->in.p + c->off;
		llhttp_errno_t err;
		size_t used;

		if (!avail)
			break;
		c->exec_base = base;
		err = llhttp_execute(&c->parser, base, avail);
		used = err == HPE_OK ? avail : (size_t)(llhttp_get_error_pos(&c->parser) - base);
		if (used > avail) /* no position for some errors */
			used = avail;
		c->off += used;
		c->exec_pos += used;
		if (err == HPE_OK) {
			if (c->state == CONN_HEADERS &&
			    c->exec_pos - c->req_pos > h->limits.header_max)
				conn_fail(c, 431, "header_too_large", "request headers too large");
			break;
		}
		if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && c->ready) {
			c->ready = false;
			dispatch(c);
			continue;
		}
		if (c->err_status) {
			conn_fail(c, c->err_status, c->err_code, c->err_msg);
		} else {
			/* llhttp's reasons are constant strings, never bytes of the request */
			const char *why = llhttp_get_error_reason(&c->parser);
			char msg[160];

			snprintf(msg, sizeof(msg), "malformed HTTP request%s%s", why ? ": " : "",
				 why ? why : "");
			conn_fail(c, 400, "bad_request", msg);
		}
		break;
	}
	c->in_process = false;
}

/* ---- responding ---- */

/* The status line and headers into c->out (reset first). */
static void head_build(struct hub_http_req *req, struct conn *c, int status, const char *ctype,
		       int64_t length, bool close)
{
	struct hub_buf *o = &c->out;
	bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);

	hub_buf_reset(o);
	hub_buf_addf(o, "HTTP/1.1 %d %s\r\n", status, reason(status));
	if (ctype && !no_body)
		hub_buf_addf(o, "Content-Type: %s\r\n", ctype);
	if (!no_body && length >= 0)
		hub_buf_addf(o, "Content-Length: %lld\r\n", (long long)length);
	else if (!no_body && req->http_minor >= 1)
		hub_buf_adds(o, "Transfer-Encoding: chunked\r\n");
	hub_buf_addstr(o, hub_buf_str(&req->extra));
	if (close)
		hub_buf_adds(o, "Connection: close\r\n");
	else if (req->http_minor == 0)
		hub_buf_adds(o, "Connection: keep-alive\r\n");
	hub_buf_adds(o, "\r\n");
}

/* Whether the connection closes after this response. */
static bool must_close(const struct hub_http_req *req, const struct conn *c, bool close)
{
	return close || !req->keep_alive || req->upgrade || c->eof ||
	       (req->h && req->h->draining);
}

/* The response is out (or cut) and req detached from its connection: metrics, log, and
 * on with the connection's next request. */
static void finish(struct hub_http_req *req, int status, size_t out_len, bool close)
{
	struct hub_http *h = req->h;
	struct conn *c = req->conn;
	double secs = (double)(uv_hrtime() - req->start) / 1e9;

	if (h) {
		hub_metrics_http(h->metrics, route_name(req, status), status, secs);
		hub_log_debug(TAG, "conn=%llu req=%llu %s %s %d in=%zu out=%zu %.3fms%s",
			      (unsigned long long)req->conn_id, (unsigned long long)req->id,
			      req->method ? req->method : "-", route_name(req, status), status,
			      req->body.len, out_len, secs * 1e3, c ? "" : " (client gone)");
	}
	if (req->dispatched && h) {
		if (req->prev)
			req->prev->next = req->next;
		else
			h->inflight = req->next;
		if (req->next)
			req->next->prev = req->prev;
		h->ninflight--;
	}
	req_recycle(req, c);
	if (c)
		after_response(c, close);
	if (h)
		check_drain(h);
}

static void respond(struct hub_http_req *req, int status, const char *ctype,
		    struct hub_str body, bool close)
{
	struct conn *c = req->conn;

	hub_assert(!req->done && !req->streaming);
	req->done = true;
	/* detached first: a failing send closes c, which must not free req under us */
	if (c && c->req == req)
		c->req = NULL;
	if (c && !c->closed && c->state != CONN_CLOSING) {
		struct hub_buf *o = &c->out;
		bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);

		close = must_close(req, c, close);
		head_build(req, c, status, ctype, (int64_t)body.len, close);
		if (!req->head_only && !no_body)
			hub_buf_addstr(o, body);
		conn_send(c, o->p, o->len);
		if (o->cap > KEEP_BUF_MAX)
			hub_buf_release(o);
	}
	finish(req, status, body.len, close);
}

void hub_http_req_start(struct hub_http_req *req, int status, const char *content_type,
			int64_t length)
{
	struct conn *c = req->conn;

	hub_assert(!req->done && !req->streaming);
	req->streaming = true;
	req->status = status;
	req->chunked = length < 0 && req->http_minor >= 1 && !req->head_only;
	/* HTTP/1.0 without a length: the end of the body is the end of the connection */
	req->close = length < 0 && req->http_minor == 0;
	if (!c || c->closed || c->state == CONN_CLOSING)
		return;
	req->close = must_close(req, c, req->close);
	head_build(req, c, status, content_type, length, req->close);
	req->in_write = true;
	conn_send(c, c->out.p, c->out.len);
	req->in_write = false;
}

int hub_http_req_write(struct hub_http_req *req, struct hub_str data)
{
	struct conn *c = req->conn;
	char size[24];

	hub_assert(req->streaming && !req->done);
	if (!c || c->closed)
		return -EPIPE;
	if (req->head_only || !data.len)
		return 0;
	req->sent += data.len;
	req->in_write = true;
	if (req->chunked) {
		int n = snprintf(size, sizeof(size), "%zx\r\n", data.len);

		conn_send(c, size, (size_t)n);
	}
	conn_send(c, data.p, data.len);
	if (req->chunked)
		conn_send(c, "\r\n", 2);
	req->in_write = false;
	return req->conn && !c->closed ? 0 : -EPIPE;
}

size_t hub_http_req_queued(const struct hub_http_req *req)
{
	struct conn *c = req->conn;

	return c && !c->closed ? uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) : 0;
}

void hub_http_req_on_drain(struct hub_http_req *req, size_t low, hub_http_drain_cb *cb,
			   void *data)
{
	req->drain_cb = cb;
	req->drain_data = data;
	req->drain_low = low;
}

/* Runs a streamed request's drain callback when its condition holds. */
static void drain_check(struct hub_http_req *req)
{
	hub_http_drain_cb *cb = req->drain_cb;
	struct conn *c = req->conn;

	if (!cb || req->in_write)
		return;
	if (c && !c->closed &&
	    uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) > req->drain_low)
		return;
	req->drain_cb = NULL;
	cb(req, req->drain_data);
}

void hub_http_req_end(struct hub_http_req *req, bool ok)
{
	struct conn *c = req->conn;

	hub_assert(req->streaming && !req->done);
	req->done = true;
	req->drain_cb = NULL;
	if (c && c->req == req)
		c->req = NULL;
	if (c && !c->closed && !ok) {
		hub_log_debug(TAG, "conn=%llu req=%llu: response cut after %llu bytes",
			      (unsigned long long)req->conn_id, (unsigned long long)req->id,
			      (unsigned long long)req->sent);
		conn_close(c);
	} else if (c && !c->closed && req->chunked) {
		conn_send(c, "0\r\n\r\n", 5);
	}
	finish(req, req->status, (size_t)req->sent, req->close || !ok);
}

void hub_http_req_respond(struct hub_http_req *req, int status, const char *content_type,
			  struct hub_str body)
{
	respond(req, status, content_type, body, false);
}

void hub_http_req_error(struct hub_http_req *req, int status, const char *code,
			const char *fmt, ...)
{
	struct hub_buf b = HUB_BUF_INIT;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error_body(&b, code, msg);
	respond(req, status, "application/json", hub_buf_str(&b), false);
	hub_buf_release(&b);
}

void hub_http_req_add_header(struct hub_http_req *req, const char *name, const char *value)
{
	if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) {
		hub_log_warn(TAG, "conn=%llu req=%llu: header with CR/LF dropped",
			     (unsigned long long)req->conn_id, (unsigned long long)req->id);
		return;
	}
	hub_buf_adds(&req->extra, name);
	hub_buf_adds(&req->extra, ": ");
	hub_buf_adds(&req->extra, value);
	hub_buf_adds(&req->extra, "\r\n");
}

/* ---- accessors ---- */

struct hub_str hub_http_req_method(const struct hub_http_req *req)
{
	return hub_str_from(req->method);
}

/* Path and query are computed from offsets into the head on every call, so no stored
 * pointer can outlive a reallocation of it. */
struct hub_str hub_http_req_path(const struct hub_http_req *req)
{
	/* the absolute form "http://host" (or "http://host?q") has the path "/" */
	if (req->path_off && !req->path_len)
		return HUB_STR("/");
	return (struct hub_str){ req->head.p ? req->head.p + req->path_off : "", req->path_len };
}

static struct hub_str req_query(const struct hub_http_req *req)
{
	uint32_t start = req->path_off + req->path_len + 1;

	if (!req->has_query)
		return HUB_STR_NULL;
	return (struct hub_str){ req->head.p + start, req->url_len - start };
}

struct hub_str hub_http_req_body(const struct hub_http_req *req)
{
	return hub_buf_str(&req->body);
}

struct hub_str hub_http_req_header(const struct hub_http_req *req, const char *name)
{
	for (int i = 0; i < req->nhdrs; i++)
		if (hdr_is(req, i, name))
			return hdr_value(req, i);
	return HUB_STR_NULL;
}

struct hub_str hub_http_req_param(const struct hub_http_req *req, const char *name)
{
	for (int i = 0; i < req->match.nparams; i++)
		if (hub_str_eqs(req->match.params[i].name, name))
			return req->params[i];
	return HUB_STR_NULL;
}

int hub_http_req_query_get(const struct hub_http_req *req, const char *name,
			   struct hub_str *value)
{
	struct hub_http_req *r = (struct hub_http_req *)req; /* the pool is ours to use */
	struct hub_str q = req_query(req);
	size_t nlen = strlen(name);
	size_t i = 0;

	*value = HUB_STR_NULL;
	while (q.p && i <= q.len) {
		size_t e = i, eq;
		char key[128];
		size_t klen;

		while (e < q.len && q.p[e] != '&')
			e++;
		eq = i;
		while (eq < e && q.p[eq] != '=')
			eq++;
		if (eq - i <= sizeof(key) &&
		    hub_router_decode((struct hub_str){ q.p + i, eq - i }, true, key, &klen) == 0 &&
		    klen == nlen && memcmp(key, name, nlen) == 0) {
			struct hub_str v = { q.p + (eq < e ? eq + 1 : e), eq < e ? e - eq - 1 : 0 };
			char *out = hub_pool_alloc(&r->pool, v.len + 1);
			size_t n;

			if (hub_router_decode(v, true, out, &n) < 0)
				return -EBADMSG;
			out[n] = '\0';
			*value = (struct hub_str){ out, n };
			return 0;
		}
		i = e + 1;
	}
	return -ENOENT;
}

struct hub_str hub_http_req_query(const struct hub_http_req *req, const char *name)
{
	struct hub_str v;

	return hub_http_req_query_get(req, name, &v) == 0 ? v : HUB_STR_NULL;
}

struct hub_pool *hub_http_req_pool(struct hub_http_req *req)
{
	return &req->pool;
}

uint64_t hub_http_req_conn_id(const struct hub_http_req *req)
{
	return req->conn_id;
}

uint64_t hub_http_req_id(const struct hub_http_req *req)
{
	return req->id;
}

const char *hub_http_req_peer(const struct hub_http_req *req, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	int n = sizeof(ss);

	if (len)
		buf[0] = '\0';
	if (!req->conn || req->conn->closed ||
	    uv_tcp_getpeername(&req->conn->tcp, (struct sockaddr *)&ss, &n) < 0)
		return buf;
	if (ss.ss_family == AF_INET)
		uv_ip4_name((const struct sockaddr_in *)&ss, buf, len);
	else if (ss.ss_family == AF_INET6)
		uv_ip6_name((const struct sockaddr_in6 *)&ss, buf, len);
	return buf;
}

/* ---- upgrade ---- */

/* RFC 6455 4.2.1: Sec-WebSocket-Key is the base64 of a 16-byte nonce. */
static bool ws_key_ok(struct hub_str k)
{
	if (k.len != 24 || k.p[22] != '=' || k.p[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++)
		if (!isalnum((unsigned char)k.p[i]) && k.p[i] != '+' && k.p[i] != '/')
			return false;
	return true;
}

/* RFC 9110 5.6.2: a token */
static bool is_token(struct hub_str s)
{
	if (!s.len)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char ch = (unsigned char)s.p[i];

		if (ch >= 0x80 || !(isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch)))
			return false;
	}
	return true;
}

/* RFC 6455 4.2.1 and 4.4: what libwebsockets would drop without an answer (or accept:
 * lws 4.1 does not check the version or the key) is answered here. NULL when the
 * handshake is acceptable, else why, with *status 400, or 426 when the version is not 13
 * (the answer then says which one is). Which subprotocols are known is the websocket
 * server's business; here only their syntax. */
static const char *ws_handshake_problem(const struct hub_http_req *req, int *status)
{
	struct hub_str v = HUB_STR_NULL, rest, el;
	int n;

	*status = 400;
	if (req->http_minor < 1)
		return "a websocket handshake needs HTTP/1.1";
	if (req->body.len || header_count(req, "transfer-encoding", NULL))
		return "a websocket handshake has no body";
	if (!header_has_token(req, "connection", "upgrade"))
		return "Connection must list upgrade";
	n = header_count(req, "sec-websocket-version", &v);
	if (n != 1 || !hub_str_eqs(v, "13")) {
		*status = 426;
		return "Sec-WebSocket-Version must be 13";
	}
	n = header_count(req, "sec-websocket-key", &v);
	if (n != 1 || !ws_key_ok(v))
		return "Sec-WebSocket-Key must be one base64-encoded 16-byte nonce";
	for (int i = 0; i < req->nhdrs; i++) {
		if (!hdr_is(req, i, "sec-websocket-protocol"))
			continue;
		rest = hdr_value(req, i);
		while (list_next(&rest, &el))
			if (!is_token(el))
				return "Sec-WebSocket-Protocol must be a list of tokens";
	}
	return NULL;
}

int hub_http_req_upgrade(struct hub_http_req *req, hub_http_upgrade_cb *cb, void *data)
{
	struct conn *c = req->conn;
	struct hub_http *h = req->h;
	uv_os_fd_t osfd;
	const char *why;
	size_t len;
	int fd, status;

	hub_assert(!req->done);
	if (!c || c->closed || c->state != CONN_HANDLING || !h)
		return -ENOTCONN;
	if (!req->method || strcmp(req->method, "GET") != 0 ||
	    !header_has_token(req, "upgrade", "websocket"))
		return -EINVAL;
	why = ws_handshake_problem(req, &status);
	if (why) {
		/* a client's mistake, answered: not worth more than a debug line */
		hub_log_debug(TAG, "conn=%llu req=%llu: websocket handshake refused: %s",
			      (unsigned long long)req->conn_id, (unsigned long long)req->id, why);
		if (status == 426)
			hub_http_req_add_header(req, "Sec-WebSocket-Version", "13");
		hub_http_req_error(req, status,
				   status == 426 ? "upgrade_required" : "bad_handshake", "%s", why);
		return 0;
	}
	len = c->in.len - c->req_start;
	if (!c->raw_ok || len > UPGRADE_MAX)
		return -EMSGSIZE;
	if (c->wpending) /* an earlier pipelined answer is still being written */
		return -EBUSY;
	if (uv_fileno((uv_handle_t *)&c->tcp, &osfd) < 0)
		return -EBADF;
	fd = fcntl(osfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	req->done = true;
	hub_metrics_http(h->metrics, route_name(req, 101), 101,
			 (double)(uv_hrtime() - req->start) / 1e9);
	hub_log_debug(TAG, "conn=%llu req=%llu GET %s 101 upgrade handed over (%zu bytes)",
		      (unsigned long long)req->conn_id, (unsigned long long)req->id,
		      route_name(req, 101), len);
	cb(fd, c->in.p + c->req_start, len, data);

	/* forget the connection: our fd closes, the dup lives on */
	if (req->prev)
		req->prev->next = req->next;
	else
		h->inflight = req->next;
	if (req->next)
		req->next->prev = req->prev;
	h->ninflight--;
	c->req = NULL;
	conn_close(c);
	req_free(req);
	return 0;
}

/* ---- the server ---- */

static void count_refused(struct hub_http *h, const char *why)
{
	char labels[64];

	if (!h->metrics)
		return;
	snprintf(labels, sizeof(labels), "reason=\"%s\"", why);
	hub_metrics_count(h->metrics, "http_refused_connections",
			  "Connections refused at accept, by limit", labels, 1);
}

/* http.max_connections counts every client connection, also those handed over to the
 * websocket server (they stay in h->counts until they close): over it, a connection is
 * closed at once, unanswered (the cap protects the process's descriptors). Over
 * http.max_per_address, it is answered 429 with a JSON error and closed, so one host
 * cannot take every slot. A handed-over connection is counted again by the websocket
 * server once its handshake is done: until then (within a loop iteration or two) its host
 * may get one more in. */
static void on_connection(uv_stream_t *server, int status)
{
	struct hub_http *h = server->data;
	struct conn *c;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char addr[64];

	if (status < 0) {
		hub_log_warn(TAG, "accept: %s", uv_strerror(status));
		return;
	}
	if (h->closing)
		return;
	c = hub_xcalloc(1, sizeof(*c));
	c->h = h;
	c->id = ++h->next_conn_id;
	hub_buf_init(&c->in);
	hub_buf_init(&c->out);
	uv_tcp_init(h->loop, &c->tcp);
	uv_timer_init(h->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->handles = 2;
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	h->nconns++;
	h->nalloc++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		conn_close(c);
		return;
	}
	if (h->limits.max_connections > 0 &&
	    hub_conns_total(h->counts) >= (size_t)h->limits.max_connections) {
		hub_log_debug(TAG, "over http.max_connections (%d): closed at once",
			      h->limits.max_connections);
		count_refused(h, "max_connections");
		conn_close(c);
		return;
	}
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) < 0 ||
	    hub_conns_key_of((struct sockaddr *)&ss, &c->peer) < 0) {
		conn_close(c);
		return;
	}
	hub_conns_add(h->counts, &c->peer);
	c->counted = true;
	uv_tcp_nodelay(&c->tcp, 1);
	llhttp_init(&c->parser, HTTP_REQUEST, &h->settings);
	c->parser.data = c;
	c->state = CONN_IDLE;
	timer_start(c, h->limits.idle_timeout_ms);
	update_reading(c);
	if (h->limits.max_per_address > 0 &&
	    hub_conns_of(h->counts, &c->peer) > (size_t)h->limits.max_per_address) {
		hub_log_debug(TAG, "conn=%llu: over http.max_per_address (%d) for %s: 429",
			      (unsigned long long)c->id, h->limits.max_per_address,
			      hub_conns_key_str(&c->peer, addr, sizeof(addr)));
		count_refused(h, "max_per_address");
		conn_fail(c, 429, "too_many_connections",
			  "too many connections from your address; close some and try again");
	}
}

static double on_gauge_connections(void *data)
{
	return (double)hub_http_connections(data);
}

int hub_http_new(uv_loop_t *loop, const struct hub_http_limits *limits,
		 const struct hub_http_route *routes, size_t nroutes, void *data,
		 struct hub_conns *conns, struct hub_metrics *metrics, struct hub_http **out)
{
	struct hub_http *h = hub_xcalloc(1, sizeof(*h));
	struct hub_err err = HUB_ERR_INIT;

	h->loop = loop;
	h->counts = conns;
	h->limits = *limits;
	h->routes = routes;
	h->nroutes = nroutes;
	h->data = data;
	h->metrics = metrics;
	h->router = hub_router_new();
	for (size_t i = 0; i < nroutes; i++) {
		if (hub_router_add(h->router, routes[i].method, routes[i].pattern, &err) < 0) {
			hub_log_err(TAG, "%s", err.msg);
			hub_router_free(h->router);
			free(h);
			return -EINVAL;
		}
	}
	llhttp_settings_init(&h->settings);
	h->settings.on_message_begin = on_message_begin;
	h->settings.on_method = on_method;
	h->settings.on_url = on_url;
	h->settings.on_header_field = on_header_field;
	h->settings.on_header_value = on_header_value;
	h->settings.on_headers_complete = on_headers_complete;
	h->settings.on_chunk_header = on_chunk_header;
	h->settings.on_body = on_body;
	h->settings.on_message_complete = on_message_complete;
	uv_timer_init(loop, &h->drain_timer);
	h->drain_timer.data = h;
	h->port = -1;
	if (metrics)
		hub_metrics_gauge(metrics, "hub_http_connections", "Open HTTP connections.",
				  on_gauge_connections, h);
	*out = h;
	return 0;
}

/* A listening-to-be socket with SO_REUSEADDR and SO_REUSEPORT, bound to sa, for
 * uv_tcp_open (libuv 1.44 has no flag for SO_REUSEPORT). The fd, or a negative errno. */
static int reuse_port_socket(const struct sockaddr *sa)
{
	socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	int one = 1, fd, r;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, sa, len) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int hub_http_listen(struct hub_http *h, const char *addr, bool reuse_port, struct hub_err *err)
{
	struct sockaddr_storage ss;
	struct sockaddr_storage bound;
	int blen = sizeof(bound);
	char host[64];
	const char *colon, *hs = addr;
	size_t hl;
	long port;
	char *end;
	int r;

	if (h->listener_init || h->closing)
		return hub_err_set(err, -EALREADY, "http: already listening");
	colon = strrchr(addr, ':');
	if (!colon)
		return hub_err_set(err, -EINVAL, "http.listen %s: want host:port", addr);
	hl = (size_t)(colon - addr);
	if (addr[0] == '[') {
		if (hl < 2 || addr[hl - 1] != ']')
			return hub_err_set(err, -EINVAL, "http.listen %s: want [v6]:port", addr);
		hs = addr + 1;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return hub_err_set(err, -EINVAL, "http.listen %s: host too long", addr);
	memcpy(host, hs, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		return hub_err_set(err, -EINVAL, "http.listen %s: bad port", addr);
	if (addr[0] == '[')
		r = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss);
	else
		r = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss);
	if (r < 0)
		return hub_err_set(err, -EINVAL, "http.listen %s: bad address", addr);

	uv_tcp_init(h->loop, &h->listener);
	h->listener.data = h;
	h->listener_init = true;
	if (reuse_port) {
		int fd = reuse_port_socket((struct sockaddr *)&ss);

		r = fd < 0 ? fd : uv_tcp_open(&h->listener, fd);
		if (fd >= 0 && r < 0)
			close(fd);
	} else {
		/* libuv sets SO_REUSEADDR on bind */
		r = uv_tcp_bind(&h->listener, (struct sockaddr *)&ss, 0);
	}
	if (r == 0)
		r = uv_listen((uv_stream_t *)&h->listener, BACKLOG, on_connection);
	if (r == 0)
		r = uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &blen);
	if (r < 0)
		return hub_err_set(err, r, "http.listen %s: %s", addr, uv_strerror(r));
	if (bound.ss_family == AF_INET6)
		h->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
	else
		h->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	hub_log_info(TAG, "listening on %s (port %d%s)", addr, h->port,
		     reuse_port ? ", shared with SO_REUSEPORT" : "");
	return 0;
}

int hub_http_port(const struct hub_http *h)
{
	return h->port;
}

void hub_http_set_limits(struct hub_http *h, const struct hub_http_limits *limits)
{
	h->limits = *limits;
}

size_t hub_http_connections(const struct hub_http *h)
{
	return h->nconns;
}

static void on_own_close(uv_handle_t *handle)
{
	struct hub_http *h = handle->data;

	h->hpending--;
	maybe_free_server(h);
}

static void on_drain_timer(uv_timer_t *t)
{
	struct hub_http *h = t->data;

	if (h->drain_done || h->closing)
		return;
	h->drain_done = true;
	if (h->ninflight) {
		hub_log_warn(TAG, "drain deadline: cutting %zu requests in flight", h->ninflight);
		while (h->conns)
			conn_close(h->conns);
	}
	if (h->drain_cb)
		h->drain_cb(h->drain_data);
}

/* Drained: no request with a handler, and none still arriving (a webhook whose body is on
 * its way is in flight too; its header or body timeout bounds the wait). */
static void check_drain(struct hub_http *h)
{
	if (!h->draining || h->drain_done || h->closing || h->ninflight)
		return;
	for (struct conn *c = h->conns; c; c = c->next)
		if (c->state == CONN_HEADERS || c->state == CONN_BODY)
			return;
	uv_timer_start(&h->drain_timer, on_drain_timer, 0, 0);
}

void hub_http_drain(struct hub_http *h, int deadline_ms, void (*cb)(void *data), void *data)
{
	struct conn *c, *next;

	if (h->draining || h->closing)
		return;
	h->draining = true;
	h->drain_cb = cb;
	h->drain_data = data;
	if (h->listener_init && !uv_is_closing((uv_handle_t *)&h->listener)) {
		h->hpending++;
		uv_close((uv_handle_t *)&h->listener, on_own_close);
	}
	for (c = h->conns; c; c = next) {
		next = c->next;
		if (c->state == CONN_IDLE && c->in.len == c->off)
			conn_close(c);
	}
	uv_timer_start(&h->drain_timer, on_drain_timer, deadline_ms > 0 ? (uint64_t)deadline_ms : 0,
		       0);
	check_drain(h);
}

void hub_http_close(struct hub_http *h, void (*cb)(void *data), void *data)
{
	if (!h || h->closing)
		return;
	h->closing = true;
	h->close_cb = cb;
	h->close_data = data;
	hub_metrics_gauge_remove(h->metrics, "hub_http_connections");
	if (h->listener_init && !uv_is_closing((uv_handle_t *)&h->listener)) {
		h->hpending++;
		uv_close((uv_handle_t *)&h->listener, on_own_close);
	}
	h->hpending++;
	uv_close((uv_handle_t *)&h->drain_timer, on_own_close);
	while (h->conns)
		conn_close(h->conns);
	/* handlers still holding requests answer into the void */
	while (h->inflight) {
		struct hub_http_req *req = h->inflight;

		h->inflight = req->next;
		req->h = NULL;
		req->conn = NULL;
		req->prev = req->next = NULL;
	}
	h->ninflight = 0;
}
