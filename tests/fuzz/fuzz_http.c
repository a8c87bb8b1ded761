/* tests/fuzz/fuzz_http.c - daemon/net/http.c, the request assembly around llhttp (request
 * line, headers, trailers, chunked and sized bodies, pipelining, limits, upgrades), on any
 * byte stream (`make fuzz-http`). The real server runs on a libuv loop in this process,
 * listening on 127.0.0.1 (port 0); each input is one client connection on loopback that
 * writes the stream (in pieces, the loop running in between, when asked), half-closes, and
 * reads until the server closes. Nothing waits on a clock: the loop runs until the server
 * has nothing left to do.
 *
 * Input: byte 0 picks header_max (bits 0-1), body_max (bits 2-3) and whether the client
 * closes its socket at once after writing, without reading (bit 4); byte 1 the size of the
 * pieces (0: all at once); the rest is the stream.
 * Routes, with trivial handlers: GET /healthz (200), GET and POST
 * /webhooks/{platform}/{channel} (an echo of what the handler sees; the GET echoes
 * hub.challenge, also into an X-Echo header), GET and POST /later/{n} (answered from a
 * 0 ms timer, so later requests wait in the pipeline), GET /ws (upgrade: the handler gets
 * the fd and the bytes read), GET /api/v1/conversations/{id}/messages (204).
 *
 * Properties: what the client reads is a sequence of well-formed HTTP/1.1 responses
 * (status line, CRLF header lines, Content-Length bodies) carrying only the headers the
 * server and these handlers send (a CR or LF from a request never starts a header of its
 * own); the server closes the connection soon after the client's FIN and no connection is
 * left after the input; handlers see a method, a path without '?', a body within
 * body_max, header values and query values without CR, LF or NUL, decoded parameters
 * without NUL; an upgrade hands over at most 2048 bytes starting with the request's "GET".
 * Set FUZZ_HTTP_LOG=debug to run with hubd's debug log lines. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "daemon/net/conns.h"
#include "daemon/net/http.h"
#include "lib/json.h"
#include "lib/log.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "http";

#define UPGRADE_MAX 2048    /* http.c hands over at most this much */
#define CLOSE_WITHIN_MS 1500 /* after the client's FIN; the timeouts below are longer */

static const size_t header_maxes[4] = { 256, 1024, 8192, 65536 };
static const size_t body_maxes[4] = { 16, 1024, 65536, 1 << 20 };

static struct {
	uv_loop_t loop;
	struct hub_http *h;
	struct hub_conns *conns; /* lives as long as the process */
	struct hub_http_limits limits;
	int port;
	int pending;          /* deferred answers not sent yet */
	struct hub_buf resp;  /* what the client read */
	bool eof, reset;      /* the server closed (FIN), or reset, the connection */
	int fd;               /* the client's socket */
	uv_poll_t poll;       /* on fd, while the client waits for the end */
} fz = { .fd = -1 };

/* ---- handlers ---- */

static void check_value(struct hub_str v, const char *what)
{
	for (size_t i = 0; i < v.len; i++)
		fuzz_check(v.p[i] != '\r' && v.p[i] != '\n' && v.p[i] != '\0',
			   "%s holds byte %02x", what, (unsigned char)v.p[i]);
}

/* What every handler may rely on. */
static void check_req(struct hub_http_req *req)
{
	static const char *const names[] = { "host", "content-type", "content-length",
					     "transfer-encoding", "x-hub-signature-256",
					     "upgrade", "expect", "" };
	static const char *const queries[] = { "hub.challenge", "hub.mode", "a", "" };
	struct hub_str path = hub_http_req_path(req), body = hub_http_req_body(req);
	struct hub_str method = hub_http_req_method(req), v;

	fuzz_check(method.len > 0, "no method");
	fuzz_check(path.len > 0 && path.p[0] == '/' && !memchr(path.p, '?', path.len),
		   "path \"%.*s\"", HUB_STR_FMT(path));
	fuzz_check(path.len <= fz.limits.header_max, "path of %zu bytes", path.len);
	fuzz_check(body.len <= fz.limits.body_max, "body of %zu bytes over %zu", body.len,
		   fz.limits.body_max);
	for (size_t i = 0; i < HUB_ARRAY_SIZE(names); i++)
		check_value(hub_http_req_header(req, names[i]), "a header value");
	for (size_t i = 0; i < HUB_ARRAY_SIZE(queries); i++) {
		int r = hub_http_req_query_get(req, queries[i], &v);

		fuzz_check(r == 0 || r == -ENOENT || r == -EBADMSG, "query: %d", r);
		if (r == 0)
			fuzz_check(!memchr(v.p, '\0', v.len), "a NUL in a query value");
		else
			fuzz_check(v.p == NULL && v.len == 0, "query %d with a value", r);
	}
	v = hub_http_req_param(req, "channel");
	fuzz_check(!v.len || !memchr(v.p, '\0', v.len), "a NUL in a parameter");
	fuzz_check(hub_http_req_pool(req) != NULL && hub_http_req_id(req) > 0, "ids");
}

static void on_health(struct hub_http_req *req, void *data)
{
	(void)data;
	check_req(req);
	hub_http_req_respond(req, 200, "text/plain", HUB_STR("ok"));
}

static void on_webhook(struct hub_http_req *req, void *data)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_jw w;
	struct hub_str challenge;

	(void)data;
	check_req(req);
	if (hub_str_eqs(hub_http_req_method(req), "GET") ||
	    hub_str_eqs(hub_http_req_method(req), "HEAD")) {
		if (hub_http_req_query_get(req, "hub.challenge", &challenge) < 0) {
			hub_http_req_error(req, 400, "bad_request", "no hub.challenge");
			return;
		}
		/* a decoded value: %0d%0a must not become a header line of its own */
		hub_http_req_add_header(req, "X-Echo",
					hub_pool_strndup(hub_http_req_pool(req), challenge.p,
							 challenge.len));
		hub_http_req_add_header(req, "X-Content-Type-Options", "nosniff");
		hub_buf_adds(&b, "challenge=");
		hub_buf_addstr(&b, challenge);
		hub_http_req_respond(req, 200, "text/plain", hub_buf_str(&b));
		hub_buf_release(&b);
		return;
	}
	hub_jw_init(&w, &b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "path");
	hub_jw_str(&w, hub_http_req_path(req));
	hub_jw_key(&w, "platform");
	hub_jw_str(&w, hub_http_req_param(req, "platform"));
	hub_jw_key(&w, "channel");
	hub_jw_str(&w, hub_http_req_param(req, "channel"));
	hub_jw_key(&w, "body");
	hub_jw_int(&w, (int64_t)hub_http_req_body(req).len);
	hub_jw_key(&w, "signature");
	hub_jw_str(&w, hub_http_req_header(req, "X-Hub-Signature-256"));
	hub_jw_obj_close(&w);
	hub_http_req_respond(req, 200, "application/json", hub_buf_str(&b));
	hub_buf_release(&b);
}

struct later {
	uv_timer_t timer;
	struct hub_http_req *req;
};

static void on_later_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_later_timer(uv_timer_t *t)
{
	struct later *l = t->data;

	fz.pending--;
	hub_http_req_respond(l->req, 202, "text/plain", HUB_STR("later"));
	uv_close((uv_handle_t *)&l->timer, on_later_closed);
}

static void on_later(struct hub_http_req *req, void *data)
{
	struct later *l = hub_xcalloc(1, sizeof(*l));

	(void)data;
	check_req(req);
	l->req = req;
	fuzz_check(uv_timer_init(&fz.loop, &l->timer) == 0, "timer");
	l->timer.data = l;
	fuzz_check(uv_timer_start(&l->timer, on_later_timer, 0, 0) == 0, "timer");
	fz.pending++;
}

static void on_handover(int fd, const char *buf, size_t len, void *data)
{
	static const char answer[] = "HTTP/1.1 101 Switching Protocols\r\n"
				     "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
	ssize_t n;

	(void)data;
	fuzz_check(len >= 4 && len <= UPGRADE_MAX && memcmp(buf, "GET ", 4) == 0,
		   "handed over %zu bytes: \"%.*s\"", len, (int)(len < 16 ? len : 16), buf);
	n = send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n; /* the client may be gone */
	close(fd);
}

static void on_ws(struct hub_http_req *req, void *data)
{
	(void)data;
	check_req(req);
	if (hub_http_req_upgrade(req, on_handover, NULL) < 0)
		hub_http_req_error(req, 400, "bad_upgrade", "not an upgrade this server takes");
}

static void on_messages(struct hub_http_req *req, void *data)
{
	(void)data;
	check_req(req);
	hub_http_req_respond(req, 204, NULL, HUB_STR_NULL);
}

static const struct hub_http_route routes[] = {
	{ "GET", "/healthz", "healthz", on_health, false },
	{ "GET", "/webhooks/{platform}/{channel}", "webhook_handshake", on_webhook, false },
	{ "POST", "/webhooks/{platform}/{channel}", "webhook", on_webhook, false },
	{ "GET", "/later/{n}", "later", on_later, false },
	{ "POST", "/later/{n}", "later_post", on_later, false },
	{ "GET", "/ws", "ws", on_ws, false },
	{ "GET", "/api/v1/conversations/{id}/messages", "api_messages", on_messages, false },
};

/* ---- the client's view ---- */

static bool allowed_header(struct hub_str name)
{
	static const char *const sent[] = { "Content-Type", "Content-Length", "Connection",
					    "Allow", "X-Echo", "X-Content-Type-Options",
					    "Upgrade", "Sec-WebSocket-Version" };

	for (size_t i = 0; i < HUB_ARRAY_SIZE(sent); i++)
		if (hub_str_eqs(name, sent[i]))
			return true;
	return false;
}

/* Checks r as responses; a cut last one is fine when the connection was reset. */
static void check_responses(struct hub_str r, bool complete)
{
	size_t at = 0;

	while (at < r.len) {
		struct hub_str rest = { r.p + at, r.len - at };
		const char *end = memmem(rest.p, rest.len, "\r\n\r\n", 4);
		const char *line, *eol;
		long long clen = -1;
		int status;

		if (!end) {
			fuzz_check(!complete, "a response head without its end: \"%.*s\"",
				   (int)(rest.len < 64 ? rest.len : 64), rest.p);
			return;
		}
		fuzz_check(rest.len >= 13 && memcmp(rest.p, "HTTP/1.1 ", 9) == 0 &&
				   rest.p[9] >= '1' && rest.p[9] <= '5' && rest.p[12] == ' ',
			   "not a status line: \"%.*s\"", (int)(rest.len < 64 ? rest.len : 64),
			   rest.p);
		status = atoi(rest.p + 9);
		eol = memmem(rest.p, (size_t)(end - rest.p) + 2, "\r\n", 2);
		for (line = eol + 2; line < end + 2; line = eol + 2) {
			struct hub_str name;
			const char *colon;

			eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
			colon = memchr(line, ':', (size_t)(eol - line));
			fuzz_check(colon && colon[1] == ' ', "a header line without \": \": \"%.*s\"",
				   (int)(eol - line), line);
			name = (struct hub_str){ line, (size_t)(colon - line) };
			fuzz_check(allowed_header(name), "a header the server never sends: \"%.*s\"",
				   (int)(eol - line), line);
			fuzz_check(!memchr(line, '\n', (size_t)(eol - line)) &&
					   !memchr(line, '\r', (size_t)(eol - line)),
				   "a bare CR or LF in a header line");
			if (hub_str_eqs(name, "Content-Length"))
				clen = strtoll(colon + 2, NULL, 10);
		}
		at += (size_t)(end + 4 - rest.p);
		if (status < 200 || status == 204 || status == 304) {
			fuzz_check(clen <= 0, "%d with a body", status);
			if (status == 101)
				fuzz_check(at == r.len || !complete, "bytes after a 101");
			continue;
		}
		fuzz_check(clen >= 0, "%d without Content-Length", status);
		/* A HEAD's answer has the length but not the body: what follows is the next
		 * status line or the end (no body here starts with "HTTP/"). */
		if (at == r.len || (r.len - at >= 5 && memcmp(r.p + at, "HTTP/", 5) == 0))
			continue;
		if ((size_t)clen > r.len - at) {
			fuzz_check(!complete, "a body cut at %zu of %lld bytes", r.len - at, clen);
			return;
		}
		at += (size_t)clen;
	}
}

/* Reads what the server sent so far; notes its FIN or reset. */
static void drain(void)
{
	char buf[65536];

	while (!fz.eof) {
		ssize_t n = read(fz.fd, buf, sizeof(buf));

		if (n > 0) {
			hub_buf_add(&fz.resp, buf, (size_t)n);
			continue;
		}
		if (n == 0) {
			fz.eof = true;
		} else if (errno == EINTR) {
			continue;
		} else if (errno != EAGAIN) {
			fz.eof = fz.reset = true;
		}
		break;
	}
}

static void on_client_readable(uv_poll_t *p, int status, int events)
{
	(void)p;
	(void)status;
	(void)events;
	drain();
}

/* Runs the loop until neither the server nor a deferred handler has anything to do. */
static void pump(bool read)
{
	int quiet = 0;

	for (int i = 0; quiet < 2 && i < 10000; i++) {
		size_t before = fz.resp.len;
		int pend = fz.pending;

		uv_run(&fz.loop, UV_RUN_NOWAIT);
		if (read)
			drain();
		quiet = fz.resp.len == before && pend == 0 && fz.pending == 0 ? quiet + 1 : 0;
	}
}

static void setup(void)
{
	struct hub_err err = HUB_ERR_INIT;
	const char *lv = getenv("FUZZ_HTTP_LOG");
	enum hub_log_level level = HUB_LOG_ERROR;

	if (lv && hub_log_level_parse(lv, &level) < 0)
		level = HUB_LOG_ERROR;
	hub_log_set_level(level);
	fuzz_check(uv_loop_init(&fz.loop) == 0, "loop");
	fz.limits = (struct hub_http_limits){
		.header_max = 8192,
		.body_max = 65536,
		.header_timeout_ms = 3000,
		.body_timeout_ms = 3000,
		.idle_timeout_ms = 3000,
		.max_connections = 8,
	};
	fz.conns = hub_conns_new();
	fuzz_check(hub_http_new(&fz.loop, &fz.limits, routes, HUB_ARRAY_SIZE(routes), NULL,
				fz.conns, NULL, &fz.h) == 0,
		   "hub_http_new");
	fuzz_check(hub_http_listen(fz.h, "127.0.0.1:0", false, &err) == 0, "listen: %s", err.msg);
	fz.port = hub_http_port(fz.h);
}

static int client_connect(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)fz.port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	fuzz_check(fd >= 0, "socket: %s", strerror(errno));
	/* blocking: the kernel completes it while the server's loop is not running; a signal
	 * (libFuzzer's timer) leaves it to complete on its own */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int err = 0;
		socklen_t elen = sizeof(err);

		fuzz_check(errno == EINTR, "connect: %s", strerror(errno));
		while (poll(&pfd, 1, -1) < 0)
			fuzz_check(errno == EINTR, "poll: %s", strerror(errno));
		fuzz_check(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0,
			   "connect: %s", strerror(err));
	}
	fuzz_check(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0, "O_NONBLOCK");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Writes all of p unless the server is gone; false then. */
static bool client_send(const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fz.fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			pump(true);
			continue;
		}
		return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *stream = (const char *)data + 2;
	size_t len, piece;
	bool rude;
	uint64_t t0;

	if (size < 2)
		return 0;
	if (!fz.h)
		setup();
	fz.limits.header_max = header_maxes[data[0] & 3];
	fz.limits.body_max = body_maxes[(data[0] >> 2) & 3];
	hub_http_set_limits(fz.h, &fz.limits);
	rude = data[0] & 16;
	len = size - 2;
	piece = data[1] ? data[1] : len ? len : 1;
	if (len / piece > 256) /* bounds the time an input takes */
		piece = len / 256 + 1;

	hub_buf_reset(&fz.resp);
	fz.eof = fz.reset = false;
	fz.fd = client_connect();
	for (size_t at = 0; at < len; at += piece) {
		size_t n = len - at < piece ? len - at : piece;

		if (!client_send(stream + at, n))
			break;
		if (len > piece)
			pump(!rude);
	}
	pump(!rude);

	if (rude) {
		/* gone without reading: deferred answers go to a closed connection */
		close(fz.fd);
		fz.fd = -1;
	} else {
		fuzz_check(uv_poll_init_socket(&fz.loop, &fz.poll, fz.fd) == 0, "poll");
		fuzz_check(uv_poll_start(&fz.poll, UV_READABLE | UV_DISCONNECT, on_client_readable) ==
				   0,
			   "poll");
		shutdown(fz.fd, SHUT_WR);
		uv_update_time(&fz.loop);
		t0 = uv_now(&fz.loop);
		drain();
		while (!fz.eof) {
			uv_run(&fz.loop, UV_RUN_ONCE);
			fuzz_check(uv_now(&fz.loop) - t0 < CLOSE_WITHIN_MS,
				   "the server kept the connection %llu ms after the client's FIN "
				   "(%d answers pending)",
				   (unsigned long long)(uv_now(&fz.loop) - t0), fz.pending);
		}
		uv_poll_stop(&fz.poll);
		uv_close((uv_handle_t *)&fz.poll, NULL);
		close(fz.fd);
		fz.fd = -1;
		if (getenv("FUZZ_HTTP_SHOW"))
			fprintf(stderr, "---- %zu bytes read%s ----\n%s\n----\n", fz.resp.len,
				fz.reset ? " (reset)" : "", fz.resp.p);
		check_responses(hub_buf_str(&fz.resp), !fz.reset);
	}

	/* the server forgets the connection (and the deferred answers are sent or dropped) */
	uv_update_time(&fz.loop);
	t0 = uv_now(&fz.loop);
	while (hub_http_connections(fz.h) > 0 || fz.pending > 0) {
		uv_run(&fz.loop, UV_RUN_ONCE);
		fuzz_check(uv_now(&fz.loop) - t0 < CLOSE_WITHIN_MS,
			   "%zu connections left after the client closed",
			   hub_http_connections(fz.h));
	}
	pump(false); /* close callbacks */
	return 0;
}
