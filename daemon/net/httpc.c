/* daemon/net/httpc.c - see httpc.h. One struct conn per TCP connection (a uv_tcp_t, and a
 * uv_timer_t for the connect, first-byte and idle deadlines; for https an SSL on two memory
 * BIOs; an llhttp parser), pooled per origin; one struct hub_httpc_call per request (its
 * uv_timer_t is the total deadline, and delivers the callbacks that must not run inside an
 * API call). Event handlers only record what happened (conn->err, conn->msg_done);
 * settle() acts on it and runs a user callback as its very last step. */
#include "daemon/net/httpc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "daemon/net/tcpwrite.h"
#include "lib/log.h"
#include "lib/mem.h"

#define TAG "httpc"
#define READ_BUF (64 * 1024)   /* one read, and one SSL_read, at a time: shared */
#define DNS_TTL_MS 60000       /* a host's addresses are used this long */
#define DNS_MAX_INFLIGHT 2     /* uv_getaddrinfo holds one of libuv's 4 pool threads */
#define DNS_MAX_ADDRS 8        /* addresses of a host tried in turn */
#define HOST_MAX 253
#define SSL_CHUNK (1 << 30)    /* SSL_write takes an int */

enum conn_state {
	CONN_RESOLVING,  /* waiting for the host's addresses */
	CONN_CONNECTING, /* TCP */
	CONN_HANDSHAKE,  /* TLS */
	CONN_BUSY,       /* a request sent or being answered */
	CONN_IDLE,       /* kept alive in the pool */
};

enum call_state {
	CALL_QUEUED,   /* in its origin's queue */
	CALL_ACTIVE,   /* on a connection: connecting, sending or reading */
	CALL_DEFERRED, /* ended inside an API call: the callback runs from the call's timer */
	CALL_DONE,     /* callback run or cancelled; freed when the timer is closed */
};

struct fieldpos {
	size_t name_off, name_len; /* into call->head */
	size_t val_off, val_len;
};

struct hub_httpc_call {
	struct hub_httpc *c;
	struct origin *o;
	struct conn *conn;                    /* while CALL_ACTIVE */
	struct hub_httpc_call *qprev, *qnext; /* o's queue while CALL_QUEUED */
	struct hub_httpc_call *prev, *next;   /* c->calls until the callback */
	uv_timer_t timer;                     /* total deadline, or a deferred callback */
	enum call_state state;
	hub_httpc_cb *cb;
	void *data;
	uint64_t id;
	uint64_t start;                       /* uv_hrtime() at hub_httpc_request() */
	struct hub_buf out;                   /* the request's bytes, for every attempt */
	int connect_ms, response_ms, total_ms;
	int deferred;                         /* the status of a CALL_DEFERRED call */
	bool retry_on_stale, retried, need_fresh, is_head, cancelled;
	bool got_byte;                        /* a response byte came on this attempt */
	hub_httpc_head_cb *on_head;           /* streamed: see hub_httpc_req */
	hub_httpc_body_cb *on_body;
	bool paused;                          /* streamed and not reading: backpressure */
	/* the response being read */
	int status;
	size_t resp_bytes;                    /* counted against max_response */
	bool in_value, in_trailers, interim;
	struct hub_buf head;                  /* header names and values */
	struct fieldpos *pos;
	size_t npos, cappos;
	struct hub_buf body;
	struct hub_httpc_field *fields;       /* built from pos when complete */
};

struct origin {
	struct hub_httpc *c;
	struct origin *next;                  /* c->origins */
	char host[HOST_MAX + 1];              /* lower case; a v6 address without brackets */
	char label[HOST_MAX + 16];            /* "host:port" ("[v6]:port"): for logs */
	char hostport[HOST_MAX + 16];         /* the Host header */
	int port;
	bool tls, ip_literal;
	struct sockaddr_storage lit;          /* the address, when ip_literal */
	struct conn *conns;                   /* every open connection */
	struct conn *idle;                    /* idle ones, most recently used first */
	size_t nconns, nidle;
	struct hub_httpc_call *qhead, *qtail;
	size_t nqueued;
	bool dispatching;
};

struct dns_entry {
	struct hub_httpc *c;
	struct dns_entry *next;               /* c->dns */
	struct dns_entry *wnext;              /* c->dns_whead: waiting for a lookup slot */
	char *host;
	uv_getaddrinfo_t req;
	bool resolving, waiting;
	struct sockaddr_storage addrs[DNS_MAX_ADDRS];
	int naddrs;
	uint64_t expires;                     /* uv_now(); the addresses are good before */
	struct conn *waiters;                 /* connections waiting for the answer */
};

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t connect;
	struct hub_httpc *c;
	struct origin *o;
	struct conn *prev, *next;             /* o->conns */
	struct conn *iprev, *inext;           /* o->idle */
	struct conn *dprev, *dnext;           /* dns->waiters */
	struct dns_entry *dns;                /* while CONN_RESOLVING */
	struct hub_httpc_call *call;
	uint64_t id;
	uint64_t nresp;                       /* responses read: > 0 means reused */
	enum conn_state state;
	int handles;                          /* open uv handles: freed at 0 */
	int wpending;                         /* uv_write()s not completed */
	struct sockaddr_storage addrs[DNS_MAX_ADDRS];
	int naddrs, addr_i;
	SSL *ssl;                             /* owns rbio and wbio */
	BIO *rbio, *wbio;                     /* network → SSL, SSL → network */
	llhttp_t parser;
	int err;                              /* what went wrong: settle() acts on it */
	bool msg_done, keep_alive;            /* the response is complete; may be reused */
	bool req_sent, awaiting_first;        /* the response timer runs while awaiting_first */
	bool closed, reopening, idle_listed, eof;
};

struct hub_httpc {
	uv_loop_t *loop;
	SSL_CTX *ctx;
	int max_conns, max_queue, idle_ms;
	size_t max_response;
	llhttp_settings_t settings;
	struct origin *origins;
	struct dns_entry *dns;
	struct dns_entry *dns_whead, *dns_wtail;
	int dns_inflight;
	struct hub_httpc_call *calls;         /* every call whose callback is due */
	size_t nalloc;                        /* conns and calls not freed yet */
	int depth;                            /* > 0: callbacks are deferred to the loop */
	uint64_t next_id;
	struct hub_httpc_stats stats;
	bool closing, in_close;
	void (*close_cb)(void *data);
	void *close_data;
	char rbuf[READ_BUF];
	char tbuf[READ_BUF];
};

static void origin_dispatch(struct origin *o);
static void conn_close(struct conn *k);
static void conn_connect(struct conn *k);
static void settle(struct conn *k);
static void on_call_timer(uv_timer_t *t);
static void on_conn_timer(uv_timer_t *t);

/* ---- the client's lifetime ---- */

static void maybe_free(struct hub_httpc *c)
{
	void (*cb)(void *data);
	void *data;

	if (!c->closing || c->nalloc || c->dns_inflight || c->in_close)
		return;
	while (c->origins) {
		struct origin *o = c->origins;

		c->origins = o->next;
		free(o);
	}
	while (c->dns) {
		struct dns_entry *e = c->dns;

		c->dns = e->next;
		free(e->host);
		free(e);
	}
	SSL_CTX_free(c->ctx);
	cb = c->close_cb;
	data = c->close_data;
	free(c);
	if (cb)
		cb(data);
}

/* ---- calls ---- */

static void on_call_close(uv_handle_t *handle)
{
	struct hub_httpc_call *call = handle->data;
	struct hub_httpc *c = call->c;

	hub_buf_release(&call->out);
	hub_buf_release(&call->head);
	hub_buf_release(&call->body);
	free(call->pos);
	free(call->fields);
	free(call);
	c->nalloc--;
	maybe_free(c);
}

static void queue_push(struct hub_httpc_call *call, bool front)
{
	struct origin *o = call->o;

	call->state = CALL_QUEUED;
	call->qprev = call->qnext = NULL;
	if (!o->qhead) {
		o->qhead = o->qtail = call;
	} else if (front) {
		call->qnext = o->qhead;
		o->qhead->qprev = call;
		o->qhead = call;
	} else {
		call->qprev = o->qtail;
		o->qtail->qnext = call;
		o->qtail = call;
	}
	o->nqueued++;
}

static void queue_remove(struct hub_httpc_call *call)
{
	struct origin *o = call->o;

	if (call->qprev)
		call->qprev->qnext = call->qnext;
	else
		o->qhead = call->qnext;
	if (call->qnext)
		call->qnext->qprev = call->qprev;
	else
		o->qtail = call->qprev;
	call->qprev = call->qnext = NULL;
	o->nqueued--;
}

/* Out of c->calls and done: the timer's close callback frees it. */
static void call_retire(struct hub_httpc_call *call)
{
	struct hub_httpc *c = call->c;

	if (call->prev)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	call->prev = call->next = NULL;
	call->state = CALL_DONE;
	uv_close((uv_handle_t *)&call->timer, on_call_close);
}

static void call_resp(struct hub_httpc_call *call, struct hub_httpc_resp *resp)
{
	if (!call->fields && call->npos) {
		call->fields = hub_xcalloc(call->npos, sizeof(*call->fields));
		for (size_t i = 0; i < call->npos; i++) {
			const struct fieldpos *fp = &call->pos[i];

			call->fields[i].name = (struct hub_str){ call->head.p + fp->name_off,
								 fp->name_len };
			call->fields[i].value = (struct hub_str){ call->head.p + fp->val_off,
								  fp->val_len };
		}
	}
	resp->status = call->status;
	resp->body = hub_buf_str(&call->body);
	resp->fields = call->fields;
	resp->nfields = call->npos;
}

/* Runs the callback: the last thing its caller does. */
static void call_deliver(struct hub_httpc_call *call, int status)
{
	struct hub_httpc *c = call->c;
	struct hub_httpc_resp resp;

	call_retire(call);
	if (status == 0) {
		c->stats.responses++;
		call_resp(call, &resp);
		call->cb(0, &resp, call->data);
	} else {
		c->stats.errors++;
		call->cb(status, NULL, call->data);
	}
}

/* The call has left its queue or connection: status 0 (its response is complete) or a
 * negative errno. Inside an API call or a loop over several calls, the callback is deferred
 * to the loop, so that it never runs where the caller does not expect it. */
static void call_end(struct hub_httpc_call *call, int status)
{
	struct hub_httpc *c = call->c;

	if (status < 0)
		hub_log_debug(TAG, "%s: call=%llu: %s", call->o->label, (unsigned long long)call->id,
			      strerror(-status));
	if (c->depth > 0) {
		call->state = CALL_DEFERRED;
		call->deferred = status;
		uv_timer_start(&call->timer, on_call_timer, 0, 0);
		return;
	}
	call_deliver(call, status);
}

static void call_reset_response(struct hub_httpc_call *call)
{
	call->status = 0;
	call->in_value = true; /* the first field starts a header */
	call->in_trailers = false;
	call->interim = false;
	call->npos = 0;
	hub_buf_reset(&call->head);
	hub_buf_reset(&call->body);
}

/* The total deadline, or a deferred callback. */
static void on_call_timer(uv_timer_t *t)
{
	struct hub_httpc_call *call = t->data;
	struct conn *k;

	if (call->state == CALL_DEFERRED) {
		call_deliver(call, call->deferred);
		return;
	}
	hub_log_debug(TAG, "%s: call=%llu: total timeout (%d ms)", call->o->label,
		      (unsigned long long)call->id, call->total_ms);
	if (call->state == CALL_QUEUED) {
		queue_remove(call);
	} else if (call->state == CALL_ACTIVE) {
		k = call->conn;
		k->call = NULL;
		call->conn = NULL;
		conn_close(k);
	}
	call_end(call, -ETIMEDOUT);
}

/* ---- connections: lifetime ---- */

static void on_conn_close(uv_handle_t *handle)
{
	struct conn *k = handle->data;
	struct hub_httpc *c = k->c;

	if (--k->handles)
		return;
	SSL_free(k->ssl);
	free(k);
	c->nalloc--;
	maybe_free(c);
}

static void idle_remove(struct conn *k)
{
	struct origin *o = k->o;

	if (!k->idle_listed)
		return;
	if (k->iprev)
		k->iprev->inext = k->inext;
	else
		o->idle = k->inext;
	if (k->inext)
		k->inext->iprev = k->iprev;
	k->iprev = k->inext = NULL;
	k->idle_listed = false;
	o->nidle--;
}

static void dns_unwait(struct conn *k)
{
	struct dns_entry *e = k->dns;

	if (!e)
		return;
	if (k->dprev)
		k->dprev->dnext = k->dnext;
	else
		e->waiters = k->dnext;
	if (k->dnext)
		k->dnext->dprev = k->dprev;
	k->dprev = k->dnext = NULL;
	k->dns = NULL;
}

/* Closes at once; the call must have been detached. Frees a slot of the origin, so the
 * next queued call may start. Idempotent. */
static void conn_close(struct conn *k)
{
	struct origin *o = k->o;

	if (k->closed)
		return;
	hub_assert(!k->call);
	k->closed = true;
	dns_unwait(k);
	idle_remove(k);
	if (k->prev)
		k->prev->next = k->next;
	else
		o->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	o->nconns--;
	if (!k->reopening) /* else on_tcp_reopen() sees closed */
		uv_close((uv_handle_t *)&k->tcp, on_conn_close);
	uv_close((uv_handle_t *)&k->timer, on_conn_close);
	origin_dispatch(o);
}

static void conn_timer(struct conn *k, int ms)
{
	uv_timer_start(&k->timer, on_conn_timer, (uint64_t)ms, 0);
}

/* ---- connections: writing ---- */

static void on_write(uv_write_t *w, int status)
{
	struct hub_tcpwrite *wr = hub_tcpwrite_of(w);
	struct conn *k = wr->owner;

	free(wr);
	k->wpending--;
	if (k->closed)
		return;
	if (status < 0) {
		if (!k->err)
			k->err = status;
		settle(k);
		return;
	}
	/* the request is on the wire: the response timer starts */
	if (!k->wpending && k->req_sent && k->state == CONN_BUSY && k->call &&
	    !k->call->got_byte && !k->awaiting_first) {
		k->awaiting_first = true;
		conn_timer(k, k->call->response_ms);
	}
}

/* Bytes in order; copies only what the kernel did not take at once. */
static void conn_write(struct conn *k, const char *p, size_t len)
{
	int r;

	if (k->err)
		return;
	r = hub_tcpwrite((uv_stream_t *)&k->tcp, p, len, &k->wpending, k, on_write);
	if (r < 0)
		k->err = r;
}

/* ---- TLS ---- */

/* Moves what OpenSSL wrote into the network BIO to the socket. */
static void tls_flush(struct conn *k)
{
	char buf[16384];
	int n;

	while (!k->err && BIO_ctrl_pending(k->wbio) > 0 &&
	       (n = BIO_read(k->wbio, buf, sizeof(buf))) > 0)
		conn_write(k, buf, (size_t)n);
}

/* The errno for a failed SSL call, logged with OpenSSL's reason (never any data). */
static int tls_error(struct conn *k, const char *what)
{
	long v = SSL_get_verify_result(k->ssl);
	unsigned long e;
	const char *reason;

	if (v != X509_V_OK) {
		hub_log_warn(TAG, "%s: conn=%llu: certificate verify failed: %s", k->o->label,
			     (unsigned long long)k->id, X509_verify_cert_error_string(v));
		return -EPERM;
	}
	e = ERR_peek_last_error();
	reason = e ? ERR_reason_error_string(e) : NULL;
	hub_log_warn(TAG, "%s: conn=%llu: TLS %s failed: %s", k->o->label,
		     (unsigned long long)k->id, what, reason ? reason : "unknown error");
	return -EPROTO;
}

static void conn_ready(struct conn *k);
static void http_input(struct conn *k, const char *p, size_t len);
static void conn_eof(struct conn *k, int status);

static void tls_handshake(struct conn *k)
{
	int r, e;

	ERR_clear_error();
	r = SSL_do_handshake(k->ssl);
	e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(k->ssl, r);
	tls_flush(k);
	if (e == SSL_ERROR_NONE) {
		hub_log_debug(TAG, "%s: conn=%llu: %s", k->o->label, (unsigned long long)k->id,
			      SSL_get_version(k->ssl));
		conn_ready(k);
		return;
	}
	if (e == SSL_ERROR_WANT_READ)
		return;
	if (!k->err)
		k->err = tls_error(k, "handshake");
}

static void tls_start(struct conn *k)
{
	struct origin *o = k->o;
	int ok;

	ERR_clear_error();
	k->ssl = SSL_new(k->c->ctx);
	k->rbio = BIO_new(BIO_s_mem());
	k->wbio = BIO_new(BIO_s_mem());
	if (!k->ssl || !k->rbio || !k->wbio) {
		BIO_free(k->rbio);
		BIO_free(k->wbio);
		k->rbio = k->wbio = NULL;
		k->err = -ENOMEM;
		return;
	}
	SSL_set_bio(k->ssl, k->rbio, k->wbio);
	SSL_set_connect_state(k->ssl);
	if (o->ip_literal) {
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(k->ssl), o->host);
	} else {
		ERR_clear_error();
		ok = SSL_set_tlsext_host_name(k->ssl, o->host) == 1;
		ERR_clear_error();
		ok = ok && SSL_set1_host(k->ssl, o->host) == 1;
	}
	if (!ok) {
		k->err = tls_error(k, "setup");
		return;
	}
	k->state = CONN_HANDSHAKE;
	tls_handshake(k);
}

/* Decrypts everything available; called on every read, also when no answer is due
 * (session tickets, key updates), and moves what SSL_read wrote to the socket. */
static void tls_read(struct conn *k)
{
	struct hub_httpc *c = k->c;
	int r, e;

	while (!k->err) {
		ERR_clear_error();
		r = SSL_read(k->ssl, c->tbuf, (int)sizeof(c->tbuf));
		if (r > 0) {
			http_input(k, c->tbuf, (size_t)r);
			continue;
		}
		e = SSL_get_error(k->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			break;
		if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
			conn_eof(k, UV_EOF);
			break;
		}
		k->err = tls_error(k, "read");
	}
	tls_flush(k);
}

static void tls_input(struct conn *k, const char *p, size_t len)
{
	if (k->err)
		return;
	if (BIO_write(k->rbio, p, (int)len) != (int)len) {
		k->err = -ENOMEM;
		return;
	}
	if (k->state == CONN_HANDSHAKE) {
		tls_handshake(k);
		if (k->err || k->state == CONN_HANDSHAKE)
			return;
	}
	tls_read(k);
}

static void tls_write(struct conn *k, const char *p, size_t len)
{
	while (len > 0 && !k->err) {
		int chunk = len > SSL_CHUNK ? SSL_CHUNK : (int)len;
		int r;

		ERR_clear_error();
		r = SSL_write(k->ssl, p, chunk);
		if (r <= 0) {
			k->err = tls_error(k, "write");
			break;
		}
		p += r;
		len -= (size_t)r;
	}
	tls_flush(k);
}

/* ---- connections: the request and its response ---- */

static void conn_send_request(struct conn *k)
{
	struct hub_httpc_call *call = k->call;

	llhttp_init(&k->parser, HTTP_RESPONSE, &k->c->settings);
	k->parser.data = k;
	k->msg_done = false;
	k->keep_alive = false;
	k->req_sent = false;
	k->awaiting_first = false;
	call->got_byte = false;
	call->resp_bytes = 0;
	call_reset_response(call);
	if (k->ssl)
		tls_write(k, call->out.p, call->out.len);
	else
		conn_write(k, call->out.p, call->out.len);
	if (k->err)
		return;
	k->req_sent = true;
	if (!k->wpending) {
		k->awaiting_first = true;
		conn_timer(k, call->response_ms);
	}
}

/* Connected (and, for https, the handshake done): the call's request goes out. */
static void conn_ready(struct conn *k)
{
	uv_timer_stop(&k->timer);
	k->state = CONN_BUSY;
	conn_send_request(k);
}

/* An idle connection takes a queued call. */
static void conn_attach(struct conn *k, struct hub_httpc_call *call)
{
	idle_remove(k);
	uv_timer_stop(&k->timer);
	k->call = call;
	call->conn = k;
	call->state = CALL_ACTIVE;
	k->state = CONN_BUSY;
	k->c->stats.conns_reused++;
	hub_log_debug(TAG, "%s: call=%llu conn=%llu: reused", k->o->label,
		      (unsigned long long)call->id, (unsigned long long)k->id);
	conn_send_request(k);
}

static void http_input(struct conn *k, const char *p, size_t len)
{
	struct hub_httpc_call *call = k->call;
	llhttp_errno_t e;

	if (k->err)
		return;
	if (!call || k->state != CONN_BUSY || k->msg_done) {
		/* bytes nobody asked for: this connection is not used again */
		if (!call)
			k->err = -EBADMSG;
		k->keep_alive = false;
		return;
	}
	if (!call->got_byte) {
		call->got_byte = true;
		if (k->awaiting_first) {
			k->awaiting_first = false;
			uv_timer_stop(&k->timer);
		}
	}
	e = llhttp_execute(&k->parser, p, len);
	if (e == HPE_OK)
		return;
	if (e == HPE_PAUSED && k->msg_done) {
		const char *pos = llhttp_get_error_pos(&k->parser);

		if (pos && pos < p + len) /* more than one response */
			k->keep_alive = false;
		return;
	}
	if (!k->err) {
		hub_log_debug(TAG, "%s: conn=%llu: malformed response: %s", k->o->label,
			      (unsigned long long)k->id, llhttp_errno_name(e));
		k->err = -EBADMSG;
	}
}

/* The peer closed (UV_EOF, or close_notify) or the socket failed (a negative errno). */
static void conn_eof(struct conn *k, int status)
{
	k->eof = true;
	if (k->err || !k->call || k->msg_done)
		return; /* an idle connection is closed by settle() */
	if (k->state == CONN_BUSY && status == UV_EOF && k->call->got_byte) {
		/* a body without length ends at EOF (close_notify or not: its end is the
		 * connection's end); anything else is truncated */
		llhttp_finish(&k->parser);
		if (k->msg_done)
			return;
	}
	k->err = status;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct conn *k = handle->data;

	(void)suggested;
	buf->base = k->c->rbuf;
	buf->len = sizeof(k->c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *k = s->data;

	if (k->closed || nread == 0)
		return;
	if (nread > 0) {
		if (k->ssl)
			tls_input(k, buf->base, (size_t)nread);
		else
			http_input(k, buf->base, (size_t)nread);
	} else {
		conn_eof(k, (int)nread);
	}
	settle(k);
}

/* ---- llhttp callbacks (inside llhttp_execute, for k->call) ---- */

static int resp_count(struct conn *k, size_t len)
{
	struct hub_httpc_call *call = k->call;

	call->resp_bytes += len;
	if (call->resp_bytes > k->c->max_response) {
		hub_log_debug(TAG, "%s: conn=%llu: response over %zu bytes", k->o->label,
			      (unsigned long long)k->id, k->c->max_response);
		k->err = -EMSGSIZE;
		return -1;
	}
	return 0;
}

static int on_message_begin(llhttp_t *p)
{
	struct conn *k = p->data;

	call_reset_response(k->call);
	return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
	(void)at;
	return resp_count(p->data, len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct conn *k = p->data;
	struct hub_httpc_call *call = k->call;

	if (resp_count(k, len))
		return -1;
	if (call->in_trailers)
		return 0;
	if (call->in_value) {
		if (call->npos == call->cappos) {
			call->cappos = call->cappos ? 2 * call->cappos : 16;
			call->pos = hub_xrealloc(call->pos, call->cappos * sizeof(*call->pos));
		}
		call->pos[call->npos] = (struct fieldpos){ call->head.len, 0, call->head.len, 0 };
		call->npos++;
		call->in_value = false;
	}
	hub_buf_add(&call->head, at, len);
	call->pos[call->npos - 1].name_len += len;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct conn *k = p->data;
	struct hub_httpc_call *call = k->call;

	if (resp_count(k, len))
		return -1;
	if (call->in_trailers || !call->npos)
		return 0;
	if (!call->in_value) {
		call->pos[call->npos - 1].val_off = call->head.len;
		call->in_value = true;
	}
	hub_buf_add(&call->head, at, len);
	call->pos[call->npos - 1].val_len += len;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct conn *k = p->data;
	struct hub_httpc_call *call = k->call;
	size_t max = k->c->max_response;

	call->status = p->status_code;
	call->in_trailers = true; /* later fields are trailers: counted, not kept */
	if (p->status_code == 101) {
		hub_log_debug(TAG, "%s: conn=%llu: unexpected 101", k->o->label,
			      (unsigned long long)k->id);
		k->err = -EPROTO;
		return -1;
	}
	if (p->status_code >= 100 && p->status_code < 200) {
		call->interim = true; /* 1xx: skipped, the final response follows */
		return 1;
	}
	if (call->on_body) {
		struct hub_httpc_resp resp;
		int r = 0;

		if (call->on_head) {
			call_resp(call, &resp);
			r = call->on_head(&resp, call->data);
		}
		if (r < 0) {
			k->err = r;
			return -1;
		}
		return call->is_head ? 1 : 0;
	}
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length > max - call->resp_bytes) {
		hub_log_debug(TAG, "%s: conn=%llu: response over %zu bytes", k->o->label,
			      (unsigned long long)k->id, max);
		k->err = -EMSGSIZE;
		return -1;
	}
	if (call->is_head)
		return 1;
	if (p->flags & F_CONTENT_LENGTH)
		hub_buf_grow(&call->body, (size_t)p->content_length);
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct conn *k = p->data;
	struct hub_httpc_call *call = k->call;

	if (call->on_body && !call->interim) {
		int r = call->on_body((struct hub_str){ at, len }, call->data);

		if (r < 0) {
			k->err = r;
			return -1;
		}
		return 0;
	}
	if (resp_count(k, len))
		return -1;
	hub_buf_add(&k->call->body, at, len);
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct conn *k = p->data;

	if (k->call->interim)
		return 0;
	k->keep_alive = llhttp_should_keep_alive(p);
	k->msg_done = true;
	return HPE_PAUSED;
}

/* ---- settling: acting on what an event left ---- */

/* The call's request failed on k. A request that found a reused connection closed before
 * any byte of its response may go again, once, on a new connection. */
static void conn_fail(struct conn *k)
{
	struct hub_httpc_call *call = k->call;
	struct hub_httpc *c = k->c;
	int err = k->err;
	bool stale = k->nresp > 0 && !call->got_byte &&
		     (err == UV_EOF || err == UV_ECONNRESET || err == UV_EPIPE);

	if (err == UV_EOF || stale)
		err = -ECONNRESET;
	k->call = NULL;
	call->conn = NULL;
	if (stale)
		hub_log_debug(TAG, "%s: call=%llu conn=%llu: closed by the server while idle%s",
			      k->o->label, (unsigned long long)call->id, (unsigned long long)k->id,
			      call->retry_on_stale && !call->retried ? ": sent again" : "");
	if (stale && call->retry_on_stale && !call->retried) {
		call->retried = true;
		call->need_fresh = true;
		c->stats.stale_retries++;
		queue_push(call, true); /* first in line for the slot conn_close() frees */
		conn_close(k);
		return;
	}
	conn_close(k);
	call_end(call, err);
}

/* The response is complete. */
static void conn_done(struct conn *k)
{
	struct hub_httpc_call *call = k->call;
	struct hub_httpc *c = k->c;
	/* a paused stream left the socket not reading: not reused */
	bool reuse = k->keep_alive && !k->eof && !k->err && !c->closing && !call->paused;

	k->call = NULL;
	call->conn = NULL;
	k->nresp++;
	hub_log_debug(TAG, "%s: call=%llu conn=%llu: %d, %zu body bytes, %llu ms%s", k->o->label,
		      (unsigned long long)call->id, (unsigned long long)k->id, call->status,
		      call->body.len, (unsigned long long)((uv_hrtime() - call->start) / 1000000),
		      reuse ? "" : ", connection closed");
	if (reuse) {
		k->state = CONN_IDLE;
		k->req_sent = false;
		k->awaiting_first = false;
		k->iprev = NULL;
		k->inext = k->o->idle;
		if (k->inext)
			k->inext->iprev = k;
		k->o->idle = k;
		k->o->nidle++;
		k->idle_listed = true;
		conn_timer(k, c->idle_ms);
		origin_dispatch(k->o);
	} else {
		conn_close(k);
	}
	call_end(call, 0);
}

/* Every event handler ends here; whatever callback this runs is run last. */
static void settle(struct conn *k)
{
	if (k->closed)
		return;
	if (!k->call) {
		if (k->err || k->eof)
			conn_close(k);
		return;
	}
	if (k->msg_done)
		conn_done(k);
	else if (k->err)
		conn_fail(k);
}

static void on_conn_timer(uv_timer_t *t)
{
	struct conn *k = t->data;

	if (k->closed)
		return;
	switch (k->state) {
	case CONN_IDLE:
		hub_log_debug(TAG, "%s: conn=%llu: idle timeout", k->o->label,
			      (unsigned long long)k->id);
		conn_close(k);
		return;
	case CONN_BUSY:
		if (!k->awaiting_first)
			return;
		hub_log_debug(TAG, "%s: conn=%llu: response timeout", k->o->label,
			      (unsigned long long)k->id);
		break;
	default:
		hub_log_debug(TAG, "%s: conn=%llu: connect timeout", k->o->label,
			      (unsigned long long)k->id);
		break;
	}
	if (!k->err)
		k->err = -ETIMEDOUT;
	settle(k);
}

/* ---- connecting ---- */

static void on_tcp_reopen(uv_handle_t *handle);

/* Tries the next address, or gives up with err. */
static void conn_connect_failed(struct conn *k, int err)
{
	hub_log_debug(TAG, "%s: conn=%llu: connect: %s", k->o->label, (unsigned long long)k->id,
		      uv_strerror(err));
	if (k->addr_i + 1 < k->naddrs) {
		/* the next address may be of another family: a new socket */
		k->addr_i++;
		k->reopening = true;
		uv_close((uv_handle_t *)&k->tcp, on_tcp_reopen);
		return;
	}
	if (!k->err)
		k->err = err;
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *k = req->data;
	int r;

	if (k->closed)
		return;
	if (status < 0) {
		conn_connect_failed(k, status);
		settle(k);
		return;
	}
	uv_tcp_nodelay(&k->tcp, 1);
	r = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
	if (r < 0)
		k->err = r;
	else if (k->o->tls)
		tls_start(k);
	else
		conn_ready(k);
	settle(k);
}

static void on_tcp_reopen(uv_handle_t *handle)
{
	struct conn *k = handle->data;

	if (k->closed) { /* closed meanwhile: this was its last close of the socket */
		on_conn_close(handle);
		return;
	}
	k->reopening = false;
	hub_assert(uv_tcp_init(k->c->loop, &k->tcp) == 0);
	k->tcp.data = k;
	conn_connect(k);
	settle(k);
}

static void conn_connect(struct conn *k)
{
	int r;

	k->state = CONN_CONNECTING;
	k->connect.data = k;
	r = uv_tcp_connect(&k->connect, &k->tcp, (const struct sockaddr *)&k->addrs[k->addr_i],
			   on_connect);
	if (r < 0)
		conn_connect_failed(k, r);
}

static void set_port(struct sockaddr_storage *sa, int port)
{
	if (sa->ss_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
	else if (sa->ss_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

static void conn_use_addrs(struct conn *k, const struct dns_entry *e)
{
	k->naddrs = e->naddrs;
	k->addr_i = 0;
	for (int i = 0; i < e->naddrs; i++) {
		k->addrs[i] = e->addrs[i];
		set_port(&k->addrs[i], k->o->port);
	}
}

/* ---- DNS ---- */

static void dns_start(struct dns_entry *e);

/* The lookup ended: every waiting connection connects or fails. */
static void dns_finish(struct dns_entry *e, int status)
{
	struct hub_httpc *c = e->c;
	struct conn *k;

	if (status == 0) {
		e->expires = uv_now(c->loop) + DNS_TTL_MS;
	} else {
		e->naddrs = 0;
		hub_log_warn(TAG, "%s: cannot resolve: %s", e->host, uv_strerror(status));
	}
	c->depth++; /* one callback per waiter: all deferred */
	while ((k = e->waiters)) {
		dns_unwait(k);
		if (status == 0) {
			conn_use_addrs(k, e);
			conn_connect(k);
		} else if (!k->err) {
			k->err = -EHOSTUNREACH;
		}
		settle(k);
	}
	c->depth--;
}

static void dns_next(struct hub_httpc *c)
{
	while (c->dns_whead && c->dns_inflight < DNS_MAX_INFLIGHT && !c->closing) {
		struct dns_entry *e = c->dns_whead;

		c->dns_whead = e->wnext;
		if (!c->dns_whead)
			c->dns_wtail = NULL;
		e->wnext = NULL;
		e->waiting = false;
		dns_start(e);
	}
}

static void on_dns(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct dns_entry *e = req->data;
	struct hub_httpc *c = e->c;

	e->resolving = false;
	c->dns_inflight--;
	if (c->closing) {
		uv_freeaddrinfo(res);
		maybe_free(c);
		return;
	}
	e->naddrs = 0;
	for (struct addrinfo *ai = status == 0 ? res : NULL; ai && e->naddrs < DNS_MAX_ADDRS;
	     ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(e->addrs[0]))
			continue;
		memset(&e->addrs[e->naddrs], 0, sizeof(e->addrs[0]));
		memcpy(&e->addrs[e->naddrs], ai->ai_addr, ai->ai_addrlen);
		e->naddrs++;
	}
	uv_freeaddrinfo(res);
	if (status == 0 && !e->naddrs)
		status = UV_EAI_NODATA;
	c->depth++;
	dns_next(c);
	c->depth--;
	dns_finish(e, status);
}

static void dns_start(struct dns_entry *e)
{
	struct hub_httpc *c = e->c;
	struct addrinfo hints;
	int r;

	if (c->dns_inflight >= DNS_MAX_INFLIGHT) {
		e->waiting = true;
		if (c->dns_wtail)
			c->dns_wtail->wnext = e;
		else
			c->dns_whead = e;
		c->dns_wtail = e;
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	e->req.data = e;
	c->stats.dns_lookups++;
	r = uv_getaddrinfo(c->loop, &e->req, on_dns, e->host, NULL, &hints);
	if (r < 0) {
		dns_finish(e, r);
		return;
	}
	e->resolving = true;
	c->dns_inflight++;
}

/* Addresses for a new connection: the literal, the cache, or a lookup to wait for. */
static void conn_resolve(struct conn *k)
{
	struct hub_httpc *c = k->c;
	struct origin *o = k->o;
	struct dns_entry *e;

	if (o->ip_literal) {
		k->addrs[0] = o->lit;
		k->naddrs = 1;
		conn_connect(k);
		return;
	}
	for (e = c->dns; e; e = e->next)
		if (strcmp(e->host, o->host) == 0)
			break;
	if (!e) {
		e = hub_xcalloc(1, sizeof(*e));
		e->c = c;
		e->host = hub_xstrdup(o->host);
		e->next = c->dns;
		c->dns = e;
	}
	if (e->naddrs && uv_now(c->loop) < e->expires) {
		c->stats.dns_cache_hits++;
		conn_use_addrs(k, e);
		conn_connect(k);
		return;
	}
	k->state = CONN_RESOLVING;
	k->dns = e;
	k->dprev = NULL;
	k->dnext = e->waiters;
	if (e->waiters)
		e->waiters->dprev = k;
	e->waiters = k;
	if (!e->resolving && !e->waiting)
		dns_start(e);
}

/* A new connection for call. The caller settles it. */
static struct conn *conn_new(struct origin *o, struct hub_httpc_call *call)
{
	struct hub_httpc *c = o->c;
	struct conn *k = hub_xcalloc(1, sizeof(*k));

	k->c = c;
	k->o = o;
	k->id = ++c->next_id;
	hub_assert(uv_tcp_init(c->loop, &k->tcp) == 0);
	hub_assert(uv_timer_init(c->loop, &k->timer) == 0);
	k->tcp.data = k;
	k->timer.data = k;
	k->handles = 2;
	c->nalloc++;
	k->next = o->conns;
	if (o->conns)
		o->conns->prev = k;
	o->conns = k;
	o->nconns++;
	c->stats.conns_opened++;
	k->call = call;
	call->conn = k;
	call->state = CALL_ACTIVE;
	hub_log_debug(TAG, "%s: call=%llu conn=%llu: connecting", o->label,
		      (unsigned long long)call->id, (unsigned long long)k->id);
	conn_timer(k, call->connect_ms); /* DNS, TCP and TLS */
	conn_resolve(k);
	return k;
}

/* Gives queued calls an idle connection, or a new one while under the cap. */
static void origin_dispatch(struct origin *o)
{
	struct hub_httpc *c = o->c;
	struct hub_httpc_call *call;
	struct conn *k;

	if (o->dispatching || c->closing)
		return;
	o->dispatching = true;
	c->depth++;
	while ((call = o->qhead) && !c->closing) {
		if (!call->need_fresh && o->idle) {
			k = o->idle;
			queue_remove(call);
			conn_attach(k, call);
			settle(k);
			continue;
		}
		if (o->nconns >= (size_t)c->max_conns) {
			if (!o->idle)
				break;
			/* a retry wants a new connection: the oldest idle one makes room */
			for (k = o->idle; k->inext; k = k->inext)
				;
			conn_close(k);
			continue;
		}
		queue_remove(call);
		k = conn_new(o, call);
		settle(k);
	}
	c->depth--;
	o->dispatching = false;
}

/* ---- URLs and requests ---- */

struct url {
	bool tls, v6;
	char host[HOST_MAX + 1];
	int port;
	struct hub_str path; /* path and query as given: may be empty or start with '?' */
};

static int url_parse(const char *s, struct url *u)
{
	const char *p, *auth_end, *h, *h_end, *port_s = NULL, *end;
	size_t hl;

	memset(u, 0, sizeof(*u));
	if (!s)
		return -EINVAL;
	if (strncasecmp(s, "https://", 8) == 0) {
		u->tls = true;
		u->port = 443;
		p = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		u->port = 80;
		p = s + 7;
	} else {
		return -EINVAL;
	}
	auth_end = p + strcspn(p, "/?#");
	if (memchr(p, '@', (size_t)(auth_end - p)))
		return -EINVAL; /* user info: not for us */
	if (*p == '[') {
		h = p + 1;
		h_end = memchr(h, ']', (size_t)(auth_end - h));
		if (!h_end)
			return -EINVAL;
		if (h_end + 1 < auth_end) {
			if (h_end[1] != ':')
				return -EINVAL;
			port_s = h_end + 2;
		}
		u->v6 = true;
	} else {
		h = p;
		h_end = memchr(p, ':', (size_t)(auth_end - p));
		if (h_end)
			port_s = h_end + 1;
		else
			h_end = auth_end;
	}
	hl = (size_t)(h_end - h);
	if (!hl || hl > HOST_MAX)
		return -EINVAL;
	for (size_t i = 0; i < hl; i++) {
		unsigned char ch = (unsigned char)h[i];
		bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
			  (ch >= 'A' && ch <= 'Z') || ch == '.' ||
			  (u->v6 ? ch == ':' : (ch == '-' || ch == '_'));

		if (!ok)
			return -EINVAL;
		u->host[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	u->host[hl] = '\0';
	if (u->v6) {
		unsigned char a[16];

		if (uv_inet_pton(AF_INET6, u->host, a) != 0)
			return -EINVAL;
	}
	if (port_s) {
		long v = 0;

		if (port_s == auth_end)
			return -EINVAL;
		for (const char *q = port_s; q < auth_end; q++) {
			if (*q < '0' || *q > '9')
				return -EINVAL;
			v = v * 10 + (*q - '0');
			if (v > 65535)
				return -EINVAL;
		}
		if (v == 0)
			return -EINVAL;
		u->port = (int)v;
	}
	end = auth_end + strcspn(auth_end, "#");
	for (const char *q = auth_end; q < end; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return -EINVAL; /* must be percent-encoded */
	u->path = (struct hub_str){ auth_end, (size_t)(end - auth_end) };
	return 0;
}

static struct origin *origin_get(struct hub_httpc *c, const struct url *u)
{
	struct origin *o;
	unsigned char a[16];
	bool dflt = u->port == (u->tls ? 443 : 80);

	for (o = c->origins; o; o = o->next)
		if (o->tls == u->tls && o->port == u->port && strcmp(o->host, u->host) == 0)
			return o;
	o = hub_xcalloc(1, sizeof(*o));
	o->c = c;
	o->tls = u->tls;
	o->port = u->port;
	memcpy(o->host, u->host, sizeof(o->host));
	if (u->v6) {
		o->ip_literal = uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&o->lit) == 0;
		snprintf(o->label, sizeof(o->label), "[%s]:%d", o->host, o->port);
		if (dflt)
			snprintf(o->hostport, sizeof(o->hostport), "[%s]", o->host);
	} else {
		if (uv_inet_pton(AF_INET, o->host, a) == 0)
			o->ip_literal = uv_ip4_addr(o->host, o->port,
						    (struct sockaddr_in *)&o->lit) == 0;
		snprintf(o->label, sizeof(o->label), "%s:%d", o->host, o->port);
		if (dflt)
			snprintf(o->hostport, sizeof(o->hostport), "%s", o->host);
	}
	if (!dflt)
		memcpy(o->hostport, o->label, sizeof(o->hostport));
	o->next = c->origins;
	c->origins = o;
	return o;
}

/* RFC 9110 token: a method or a header name. */
static bool is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch <= 0x20 || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch))
			return false;
	}
	return true;
}

static bool is_field_value(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return false;
	return true;
}

static bool method_has_body(const char *m)
{
	return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

static int timeout_or(int ms, int dflt)
{
	return ms > 0 ? ms : dflt;
}

int hub_httpc_request(struct hub_httpc *c, const struct hub_httpc_req *r, hub_httpc_cb *cb,
		      void *data, struct hub_httpc_call **out)
{
	struct hub_httpc_call *call;
	struct origin *o;
	const char *method;
	struct url u;
	bool ua = false;
	int ret;

	if (out)
		*out = NULL;
	if (c->closing)
		return -ECANCELED;
	if (!r || !cb)
		return -EINVAL;
	method = r->method ? r->method : "GET";
	if (!is_token(method) || r->connect_timeout_ms < 0 || r->response_timeout_ms < 0 ||
	    r->total_timeout_ms < 0 || (!r->body.p && r->body.len) ||
	    (r->nheaders && !r->headers))
		return -EINVAL;
	for (size_t i = 0; i < r->nheaders; i++) {
		const struct hub_httpc_header *hd = &r->headers[i];

		if (!hd->name || !hd->value || !is_token(hd->name) || !is_field_value(hd->value) ||
		    strcasecmp(hd->name, "host") == 0 ||
		    strcasecmp(hd->name, "content-length") == 0 ||
		    strcasecmp(hd->name, "transfer-encoding") == 0 ||
		    strcasecmp(hd->name, "connection") == 0)
			return -EINVAL;
		if (strcasecmp(hd->name, "user-agent") == 0)
			ua = true;
	}
	ret = url_parse(r->url, &u);
	if (ret < 0)
		return ret;
	o = origin_get(c, &u);
	if ((o->qhead || (!o->idle && o->nconns >= (size_t)c->max_conns)) &&
	    o->nqueued >= (size_t)c->max_queue) {
		hub_log_debug(TAG, "%s: queue full (%zu waiting)", o->label, o->nqueued);
		return -EAGAIN;
	}

	/* the deadlines count from now, not from when the loop last looked at the clock */
	uv_update_time(c->loop);
	call = hub_xcalloc(1, sizeof(*call));
	call->c = c;
	call->o = o;
	call->cb = cb;
	call->data = data;
	call->id = ++c->next_id;
	call->start = uv_hrtime();
	call->connect_ms = timeout_or(r->connect_timeout_ms, HUB_HTTPC_CONNECT_TIMEOUT_MS);
	call->response_ms = timeout_or(r->response_timeout_ms, HUB_HTTPC_RESPONSE_TIMEOUT_MS);
	call->total_ms = timeout_or(r->total_timeout_ms, HUB_HTTPC_TOTAL_TIMEOUT_MS);
	call->retry_on_stale = r->retry_on_stale;
	call->is_head = strcmp(method, "HEAD") == 0;
	call->on_head = r->on_head;
	call->on_body = r->on_body;
	hub_buf_init(&call->out);
	hub_buf_init(&call->head);
	hub_buf_init(&call->body);

	hub_buf_adds(&call->out, method);
	hub_buf_addch(&call->out, ' ');
	if (!u.path.len || u.path.p[0] != '/')
		hub_buf_addch(&call->out, '/');
	hub_buf_addstr(&call->out, u.path);
	hub_buf_adds(&call->out, " HTTP/1.1\r\nHost: ");
	hub_buf_adds(&call->out, o->hostport);
	hub_buf_adds(&call->out, "\r\n");
	if (!ua)
		hub_buf_adds(&call->out, "User-Agent: bayge-hub\r\n");
	for (size_t i = 0; i < r->nheaders; i++) {
		hub_buf_adds(&call->out, r->headers[i].name);
		hub_buf_adds(&call->out, ": ");
		hub_buf_adds(&call->out, r->headers[i].value);
		hub_buf_adds(&call->out, "\r\n");
	}
	if (r->body.len || method_has_body(method))
		hub_buf_addf(&call->out, "Content-Length: %zu\r\n", r->body.len);
	hub_buf_adds(&call->out, "Connection: keep-alive\r\n\r\n");
	if (r->body.len)
		hub_buf_add(&call->out, r->body.p, r->body.len);

	hub_assert(uv_timer_init(c->loop, &call->timer) == 0);
	call->timer.data = call;
	c->nalloc++;
	call->next = c->calls;
	if (c->calls)
		c->calls->prev = call;
	c->calls = call;
	c->stats.requests++;
	uv_timer_start(&call->timer, on_call_timer, (uint64_t)call->total_ms, 0);
	queue_push(call, false);
	if (out)
		*out = call;
	origin_dispatch(o); /* raises depth: nothing calls cb from here */
	return 0;
}

void hub_httpc_call_cancel(struct hub_httpc_call *call)
{
	struct conn *k;

	if (!call)
		return;
	call->cancelled = true;
	switch (call->state) {
	case CALL_DONE: /* its -ECANCELED from hub_httpc_close() is still due: skipped */
		return;
	case CALL_QUEUED:
		queue_remove(call);
		break;
	case CALL_ACTIVE:
		k = call->conn;
		k->call = NULL;
		call->conn = NULL;
		conn_close(k); /* its response would come unasked */
		break;
	case CALL_DEFERRED:
		break;
	}
	hub_log_debug(TAG, "%s: call=%llu: cancelled", call->o->label,
		      (unsigned long long)call->id);
	call_retire(call);
}

void hub_httpc_call_pause(struct hub_httpc_call *call)
{
	struct conn *k = call->state == CALL_ACTIVE ? call->conn : NULL;

	if (call->paused || !k || k->closed || k->state != CONN_BUSY)
		return;
	call->paused = true;
	uv_read_stop((uv_stream_t *)&k->tcp);
}

void hub_httpc_call_resume(struct hub_httpc_call *call)
{
	struct conn *k = call->state == CALL_ACTIVE ? call->conn : NULL;

	if (!call->paused)
		return;
	call->paused = false;
	if (!k || k->closed)
		return;
	if (uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read) < 0) {
		k->err = -EIO;
		settle(k);
	}
}

struct hub_str hub_httpc_resp_header(const struct hub_httpc_resp *resp, const char *name)
{
	for (size_t i = 0; i < resp->nfields; i++)
		if (hub_str_caseeqs(resp->fields[i].name, name))
			return resp->fields[i].value;
	return HUB_STR_NULL;
}

void hub_httpc_get_stats(const struct hub_httpc *c, struct hub_httpc_stats *out)
{
	*out = c->stats;
	out->conns_open = out->conns_idle = out->queued = 0;
	for (const struct origin *o = c->origins; o; o = o->next) {
		out->conns_open += o->nconns;
		out->conns_idle += o->nidle;
		out->queued += o->nqueued;
	}
}

/* ---- the client ---- */

int hub_httpc_new(uv_loop_t *loop, const struct hub_httpc_opts *o, struct hub_httpc **out,
		  struct hub_err *err)
{
	static const unsigned char alpn[] = "\x08http/1.1";
	const struct hub_httpc_opts dflt = { 0 };
	struct hub_httpc *c;
	SSL_CTX *ctx;
	char why[256];
	int ok;

	*out = NULL;
	if (!o)
		o = &dflt;
	if (o->max_conns_per_origin < 0 || o->max_queue < 0 || o->idle_timeout_ms < 0)
		return hub_err_set(err, -EINVAL, "httpc: options must not be negative");
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return hub_err_set(err, -ENOMEM, "httpc: SSL_CTX_new failed");
	ok = SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (ok && o->ca_file)
		ok = SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL);
	else if (ok)
		ok = SSL_CTX_set_default_verify_paths(ctx);
	/* ALPN: a server that speaks h2 must not pick it for us (0 is success here) */
	if (ok)
		ok = SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) == 0;
	if (!ok) {
		ERR_error_string_n(ERR_peek_last_error(), why, sizeof(why));
		SSL_CTX_free(ctx);
		return hub_err_set(err, -EPROTO, "httpc: %s: %s",
				   o->ca_file ? o->ca_file : "system CA store", why);
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

	c = hub_xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->ctx = ctx;
	c->max_conns = o->max_conns_per_origin ? o->max_conns_per_origin : HUB_HTTPC_MAX_CONNS;
	c->max_queue = o->max_queue ? o->max_queue : HUB_HTTPC_MAX_QUEUE;
	c->idle_ms = o->idle_timeout_ms ? o->idle_timeout_ms : HUB_HTTPC_IDLE_TIMEOUT_MS;
	c->max_response = o->max_response ? o->max_response : HUB_HTTPC_MAX_RESPONSE;
	llhttp_settings_init(&c->settings);
	c->settings.on_message_begin = on_message_begin;
	c->settings.on_status = on_status;
	c->settings.on_header_field = on_header_field;
	c->settings.on_header_value = on_header_value;
	c->settings.on_headers_complete = on_headers_complete;
	c->settings.on_body = on_body;
	c->settings.on_message_complete = on_message_complete;
	*out = c;
	return 0;
}

void hub_httpc_close(struct hub_httpc *c, void (*cb)(void *data), void *data)
{
	struct hub_httpc_call *call, *done = NULL, *last = NULL;

	if (!c || c->closing)
		return;
	c->closing = true;
	c->close_cb = cb;
	c->close_data = data;
	/* every pending call leaves its queue or connection; their callbacks come last */
	while ((call = c->calls)) {
		if (call->state == CALL_QUEUED) {
			queue_remove(call);
		} else if (call->state == CALL_ACTIVE) {
			call->conn->call = NULL;
			call->conn = NULL;
		}
		call_retire(call);
		if (last)
			last->next = call;
		else
			done = call;
		last = call;
	}
	for (struct origin *o = c->origins; o; o = o->next)
		while (o->conns)
			conn_close(o->conns);
	for (struct dns_entry *e = c->dns; e; e = e->next) {
		if (e->resolving)
			uv_cancel((uv_req_t *)&e->req); /* else it runs to its end */
		e->waiting = false;
		e->wnext = NULL;
	}
	c->dns_whead = c->dns_wtail = NULL;
	if (done)
		hub_log_debug(TAG, "closing: pending requests cancelled");
	c->in_close = true;
	while ((call = done)) {
		done = call->next;
		call->next = NULL;
		if (!call->cancelled) {
			c->stats.errors++;
			call->cb(-ECANCELED, NULL, call->data);
		}
	}
	c->in_close = false;
	maybe_free(c);
}
