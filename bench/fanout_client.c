/* bench/fanout_client.c - the load client of bench/fanout: N websocket subscribers on one
 * libuv loop (hubd: subprotocol bayge.v1, an auth frame, "hello", then "resume" after hello's
 * last_event_id and its "resumed", as the inbox page does; nginx+nchan: a plain
 * websocket subscriber) and a paced HTTP/1.1 publisher, measuring the frames delivered and
 * the time from a POST sent to its message frame received.
 * A minimal RFC 6455 client: handshake, masked client frames, unmasked server frames.
 * Talks to 127.0.0.1 only (sources 127.0.0.2...); every phase has a deadline and the whole
 * run an alarm. One JSON line on stdout per phase ("ready", then "done").
 * Knows nothing of hubd beyond the wire: a message frame is a text frame containing
 * "event":"message.created" and the marker fo:<seq>. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <uv.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define READ_CHUNK 65536           /* the one read buffer, shared by every socket */
#define PEND_MAX (1 << 20)         /* bytes of an unfinished frame or handshake */
#define HEAD_MAX 8192              /* bytes of an HTTP response head */
/* Latency histogram: 10 us buckets up to 100 ms, then 1 ms buckets up to 600 s (beyond
 * counts in the last). */
#define HIST_FINE_US 100000
#define HIST_FINE 10000
#define HIST_BUCKETS (HIST_FINE + 600000)
#define PUB_MAX 256
#define MSG_EVENT "\"event\":\"message.created\""
#define MARKER "fo:"
#define LAST_ID "\"last_event_id\":"

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };
enum sock_state { S_IDLE, S_CONNECTING, S_HANDSHAKE, S_AUTH, S_RESUME, S_READY, S_DEAD };

struct sock {
	uv_tcp_t tcp;
	struct run *run;
	uint32_t idx;
	uint8_t state;
	char accept[32];     /* the Sec-WebSocket-Accept we expect */
	unsigned char *pend; /* bytes not consumed yet (an unfinished frame) */
	uint32_t plen, pcap;
	unsigned char *seen; /* bitmap of message sequence numbers */
};

struct pub {
	uv_tcp_t tcp;
	struct run *run;
	bool connected, busy, dead;
	char head[HEAD_MAX];
	size_t hlen;
	size_t body_left;  /* response body bytes still to skip */
	bool in_body;
	int seq;           /* the marker of the request in flight, -1 if none */
};

struct line {
	uv_buf_t req;  /* the whole HTTP request */
	int seq;       /* the marker's sequence number, -1 if none */
};

/* Latencies, bucketed as HIST_* says. */
struct hist {
	uint32_t *b;
	uint64_t n, max_ns;
};

struct opts {
	const char *mode;
	int port;
	const char *path;
	const char *protocol;
	int sockets;
	int sources;
	int concurrency;
	int pub_port;
	const char *pub_path;
	const char *bodies;
	double rate;
	int group;
	int publishers;
	int connect_timeout_s;
	int go_timeout_s;
	int drain_timeout_s;
	int go_after_ms;
};

struct run {
	uv_loop_t *loop;
	struct opts o;
	bool hub;
	const char *token;
	struct sock *socks;
	int next_sock;        /* the next socket to connect */
	int inflight;         /* connecting, in handshake, waiting for hello or resumed */
	int nready, nfailed;
	uint64_t t_start, t_ready;
	bool ready_reported, going, done;
	bool in_connect_more; /* a socket failing at once must not recurse */
	char error[256];      /* the first thing that went wrong */

	struct line *lines;
	int nlines, nmsgs;
	struct pub pubs[PUB_MAX];
	int pubs_connected;
	int next_line;        /* the next line to send */
	int sched_lines;      /* lines due so far */
	int answered;         /* responses read */
	int pub_errors;
	int bad_status;       /* the first non-2xx status */
	uint64_t t_go, t_last_send, t_last_frame, lag_max;
	uint64_t *t_send;     /* per message: uv_hrtime of its POST */
	uint64_t *t_ack;      /* its answer read (hubd: after its COMMIT) */
	uint64_t *t_first;    /* its message frame first received on any socket */
	uint64_t *t_last;     /* and last */
	int ready_at_go;

	uint64_t frames, msg_frames, bytes, dups, early, unknown_seq, closed, bad_frames;
	struct hist lat;      /* from the POST sent */
	struct hist lat_sched; /* from the time the POST was due (no coordinated omission) */

	uv_timer_t tick;      /* 1 ms: pacing, deadlines */
	uv_pipe_t in;         /* "go" from the driver */
	unsigned char inbuf[64];
	uint64_t rnd;
};

static unsigned char read_chunk[READ_CHUNK];

static void set_error(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "fanout_client: out of memory\n");
		abort();
	}
	return p;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p) {
		fprintf(stderr, "fanout_client: out of memory\n");
		abort();
	}
	return p;
}

static uint64_t rnd64(struct run *r)
{
	/* xorshift64*: mask keys and handshake keys need not be secret here. */
	r->rnd ^= r->rnd >> 12;
	r->rnd ^= r->rnd << 25;
	r->rnd ^= r->rnd >> 27;
	return r->rnd * 2685821657736338717ull;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* ---- writes ---- */

struct wreq {
	uv_write_t req;
	unsigned char data[];
};

static void on_written(uv_write_t *req, int status)
{
	(void)status; /* a failed write shows up as a read error or EOF */
	free(req);
}

static int write_copy(uv_stream_t *s, const void *data, size_t len)
{
	struct wreq *w = xmalloc(sizeof(*w) + len);
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
	int ret;

	memcpy(w->data, data, len);
	ret = uv_write(&w->req, s, &b, 1, on_written);
	if (ret < 0)
		free(w);
	return ret;
}

/* RFC 6455 5.2: a client frame, FIN set, masked with a fresh key. */
static int ws_send(struct sock *s, int opcode, const void *payload, size_t len)
{
	struct wreq *w = xmalloc(sizeof(*w) + 14 + len);
	unsigned char *p = w->data, key[4];
	uint64_t k = rnd64(s->run);
	uv_buf_t b;
	size_t n = 0;
	int ret;

	p[n++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		p[n++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		p[n++] = 0x80 | 126;
		p[n++] = (unsigned char)(len >> 8);
		p[n++] = (unsigned char)len;
	} else {
		p[n++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			p[n++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	memcpy(key, &k, 4);
	memcpy(p + n, key, 4);
	n += 4;
	for (size_t i = 0; i < len; i++)
		p[n + i] = ((const unsigned char *)payload)[i] ^ key[i & 3];
	n += len;
	b = uv_buf_init((char *)p, (unsigned)n);
	ret = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_written);
	if (ret < 0)
		free(w);
	return ret;
}

/* ---- subscribers ---- */

static void connect_more(struct run *r);
static void check_ready(struct run *r);

static void on_sock_closed(uv_handle_t *h)
{
	struct sock *s = h->data;

	free(s->pend);
	s->pend = NULL;
	s->plen = s->pcap = 0;
}

/* Ends s: counted as failed while connecting, as closed once it was ready. */
static void sock_kill(struct sock *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sock_kill(struct sock *s, const char *fmt, ...)
{
	struct run *r = s->run;
	char why[200];
	va_list ap;

	if (s->state == S_DEAD)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	set_error(r, "socket %u: %s", s->idx, why);
	if (s->state == S_READY) {
		r->closed++;
	} else {
		r->nfailed++;
		r->inflight--;
	}
	s->state = S_DEAD;
	if (!uv_is_closing((uv_handle_t *)&s->tcp))
		uv_close((uv_handle_t *)&s->tcp, on_sock_closed);
	connect_more(r);
}

static void sock_ready(struct sock *s)
{
	struct run *r = s->run;

	s->state = S_READY;
	r->nready++;
	r->inflight--;
	connect_more(r);
}

static int parse_seq(const unsigned char *p, size_t len)
{
	const unsigned char *m = memmem(p, len, MARKER, strlen(MARKER));
	size_t i;
	long v = 0;

	if (!m)
		return -1;
	i = (size_t)(m - p) + strlen(MARKER);
	if (i >= len || !isdigit(p[i]))
		return -1;
	for (; i < len && isdigit(p[i]) && v < 100000000; i++)
		v = v * 10 + (p[i] - '0');
	return (int)v;
}

static void hist_add(struct hist *h, uint64_t ns)
{
	uint64_t us = ns / 1000;
	uint64_t i = us < HIST_FINE_US ? us / 10 : HIST_FINE + (us - HIST_FINE_US) / 1000;

	h->b[i < HIST_BUCKETS ? i : HIST_BUCKETS - 1]++;
	h->n++;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

/* The pct percentile in ms (the top of its bucket), -1 when empty. */
static double hist_pct(const struct hist *h, double pct)
{
	uint64_t want, acc = 0;

	if (!h->n)
		return -1;
	want = (uint64_t)(pct / 100.0 * (double)h->n + 0.999999);
	if (want < 1)
		want = 1;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		acc += h->b[i];
		if (acc >= want)
			return i < HIST_FINE ? (double)(i + 1) / 100.0
					     : (double)(i - HIST_FINE + 1) + HIST_FINE_US / 1000.0;
	}
	return (double)h->max_ns / 1e6;
}

static void on_text(struct sock *s, const unsigned char *p, size_t len, uint64_t now)
{
	struct run *r = s->run;
	uint64_t due;
	int seq;

	if (s->state == S_AUTH) {
		const unsigned char *last = memmem(p, len, LAST_ID, strlen(LAST_ID));
		char resume[64];
		int n;

		if (!memmem(p, len, "\"type\":\"hello\"", 14) || !last) {
			sock_kill(s, "first frame after auth is not hello (%zu bytes)", len);
			return;
		}
		/* What a page does: resume from what it has, so that hubd goes live at once
		 * instead of holding events for ws.resume_grace_ms. */
		n = snprintf(resume, sizeof(resume), "{\"type\":\"resume\",\"after\":%ld}",
			     strtol((const char *)last + strlen(LAST_ID), NULL, 10));
		s->state = S_RESUME;
		if (ws_send(s, OP_TEXT, resume, (size_t)n) < 0)
			sock_kill(s, "cannot send resume");
		return;
	}
	if (s->state == S_RESUME) {
		if (memmem(p, len, "\"type\":\"resumed\"", 16))
			sock_ready(s);
		return; /* nothing is published before go */
	}
	if (s->state != S_READY)
		return;
	if (!r->going)
		return; /* nothing is published before go: a stray frame is ignored */
	r->frames++;
	r->bytes += len;
	r->t_last_frame = now;
	if (!memmem(p, len, MSG_EVENT, strlen(MSG_EVENT)))
		return;
	seq = parse_seq(p, len);
	if (seq < 0 || seq >= r->nmsgs) {
		r->unknown_seq++;
		return;
	}
	if (s->seen[seq >> 3] & (1u << (seq & 7))) {
		r->dups++;
		return;
	}
	s->seen[seq >> 3] |= (unsigned char)(1u << (seq & 7));
	r->msg_frames++;
	if (!r->t_first[seq])
		r->t_first[seq] = now;
	r->t_last[seq] = now;
	if (!r->t_send[seq]) {
		r->early++;
		return;
	}
	hist_add(&r->lat, now > r->t_send[seq] ? now - r->t_send[seq] : 0);
	due = r->t_go + (uint64_t)((double)seq * 1e9 / r->o.rate);
	hist_add(&r->lat_sched, now > due ? now - due : 0);
}

/* Frames in p: the bytes consumed, or -1 after killing s. */
static long parse_frames(struct sock *s, const unsigned char *p, size_t len, uint64_t now)
{
	size_t off = 0;

	while (len - off >= 2 && s->state != S_DEAD) {
		const unsigned char *f = p + off;
		size_t avail = len - off, hl = 2;
		uint64_t n = f[1] & 0x7f;
		int op = f[0] & 0x0f;

		if (f[1] & 0x80) {
			sock_kill(s, "server frame is masked");
			return -1;
		}
		if (n == 126) {
			if (avail < 4)
				break;
			n = (uint64_t)f[2] << 8 | f[3];
			hl = 4;
		} else if (n == 127) {
			if (avail < 10)
				break;
			n = 0;
			for (int i = 2; i < 10; i++)
				n = n << 8 | f[i];
			hl = 10;
		}
		if (n > PEND_MAX) {
			sock_kill(s, "frame of %" PRIu64 " bytes", n);
			return -1;
		}
		if (avail < hl + n)
			break;
		off += hl + n;
		if (!(f[0] & 0x80) || op == OP_CONT) {
			s->run->bad_frames++;
			sock_kill(s, "fragmented frame (opcode %d)", op);
			return -1;
		}
		switch (op) {
		case OP_TEXT:
			on_text(s, f + hl, n, now);
			break;
		case OP_PING:
			if (ws_send(s, OP_PONG, f + hl, n) < 0) {
				sock_kill(s, "cannot send pong");
				return -1;
			}
			break;
		case OP_PONG:
			break;
		case OP_CLOSE: {
			int code = n >= 2 ? (f[hl] << 8 | f[hl + 1]) : 0;
			int rl = n > 2 ? (int)(n - 2) : 0;

			sock_kill(s, "closed by the server: %d %.*s", code, rl,
				  (const char *)f + hl + 2);
			return -1;
		}
		default:
			s->run->bad_frames++;
			sock_kill(s, "unexpected opcode %d", op);
			return -1;
		}
	}
	return s->state == S_DEAD ? -1 : (long)off;
}

/* Finds header name (case-insensitive) in an HTTP head; its value, NUL-terminated, in out. */
static bool head_value(const char *head, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *l = strstr(head, "\r\n");

	while (l && l[2] && !(l[2] == '\r' && l[3] == '\n')) {
		const char *line = l + 2, *end = strstr(line, "\r\n");
		size_t k = 0;

		if (!end)
			break;
		if ((size_t)(end - line) > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
			const char *v = line + nl + 1;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			while (v + k < end && k + 1 < cap) {
				out[k] = v[k];
				k++;
			}
			while (k && (out[k - 1] == ' ' || out[k - 1] == '\t'))
				k--;
			out[k] = '\0';
			return true;
		}
		l = end;
	}
	return false;
}

/* The 101 response in p (NUL-terminated head of hl bytes): true if it is right. */
static bool check_upgrade(struct sock *s, char *head)
{
	struct run *r = s->run;
	char v[128];

	if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
		char *eol = strstr(head, "\r\n");

		if (eol)
			*eol = '\0';
		sock_kill(s, "handshake answered: %.80s", head);
		return false;
	}
	if (!head_value(head, "Sec-WebSocket-Accept", v, sizeof(v)) || strcmp(v, s->accept)) {
		sock_kill(s, "bad Sec-WebSocket-Accept");
		return false;
	}
	if (r->o.protocol && (!head_value(head, "Sec-WebSocket-Protocol", v, sizeof(v)) ||
			      strcmp(v, r->o.protocol))) {
		sock_kill(s, "subprotocol %s not echoed", r->o.protocol);
		return false;
	}
	return true;
}

static void sock_after_upgrade(struct sock *s)
{
	struct run *r = s->run;
	char auth[4096];
	int n;

	if (!r->hub) {
		sock_ready(s);
		return;
	}
	/* bayge.v1: the first frame authenticates. */
	n = snprintf(auth, sizeof(auth), "{\"type\":\"auth\",\"token\":\"%s\"}", r->token);
	if (n < 0 || (size_t)n >= sizeof(auth)) {
		sock_kill(s, "token too long");
		return;
	}
	s->state = S_AUTH;
	if (ws_send(s, OP_TEXT, auth, (size_t)n) < 0)
		sock_kill(s, "cannot send auth");
}

/* Bytes p[0..len) for s: a handshake, then frames. 0 or -1 (s is dead). */
static long sock_consume(struct sock *s, unsigned char *p, size_t len, uint64_t now)
{
	if (s->state == S_HANDSHAKE) {
		unsigned char *e = memmem(p, len, "\r\n\r\n", 4);
		char head[HEAD_MAX];
		size_t hl;

		if (!e) {
			if (len > HEAD_MAX) {
				sock_kill(s, "handshake response over %d bytes", HEAD_MAX);
				return -1;
			}
			return 0;
		}
		hl = (size_t)(e - p) + 4;
		if (hl >= sizeof(head)) {
			sock_kill(s, "handshake response over %d bytes", HEAD_MAX);
			return -1;
		}
		memcpy(head, p, hl);
		head[hl] = '\0';
		if (!check_upgrade(s, head))
			return -1;
		sock_after_upgrade(s);
		if (s->state == S_DEAD)
			return -1;
		{
			long m = parse_frames(s, p + hl, len - hl, now);

			return m < 0 ? -1 : (long)hl + m;
		}
	}
	return parse_frames(s, p, len, now);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	*buf = uv_buf_init((char *)read_chunk, sizeof(read_chunk));
}

static void on_sock_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct sock *s = st->data;
	uint64_t now;
	unsigned char *p;
	size_t len;
	long used;

	if (nread == 0 || s->state == S_DEAD)
		return;
	if (nread < 0) {
		sock_kill(s, "%s", nread == UV_EOF ? "connection closed by the server"
						   : uv_strerror((int)nread));
		return;
	}
	now = uv_hrtime();
	if (s->plen) {
		if (s->plen + (size_t)nread > PEND_MAX) {
			sock_kill(s, "over %d bytes pending", PEND_MAX);
			return;
		}
		if (s->plen + (size_t)nread > s->pcap) {
			s->pcap = s->plen + (uint32_t)nread;
			s->pend = realloc(s->pend, s->pcap);
			if (!s->pend)
				abort();
		}
		memcpy(s->pend + s->plen, buf->base, (size_t)nread);
		s->plen += (uint32_t)nread;
		p = s->pend;
		len = s->plen;
	} else {
		p = (unsigned char *)buf->base;
		len = (size_t)nread;
	}
	used = sock_consume(s, p, len, now);
	if (used < 0)
		return;
	len -= (size_t)used;
	if (len > PEND_MAX) {
		sock_kill(s, "over %d bytes pending", PEND_MAX);
		return;
	}
	if (p == s->pend) {
		memmove(s->pend, s->pend + used, len);
	} else if (len) {
		if (len > s->pcap) {
			free(s->pend);
			s->pend = xmalloc(len);
			s->pcap = (uint32_t)len;
		}
		memcpy(s->pend, p + used, len);
	}
	s->plen = (uint32_t)len;
	/* A socket that has nothing pending gives its buffer back: idle memory stays small. */
	if (!s->plen && s->pcap > 4096) {
		free(s->pend);
		s->pend = NULL;
		s->pcap = 0;
	}
}

static void b64(const unsigned char *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static void on_sock_connected(uv_connect_t *req, int status)
{
	struct sock *s = req->data;
	struct run *r = s->run;
	unsigned char raw[16], sha[SHA_DIGEST_LENGTH];
	char key[32], cat[96], hs[1024];
	uint64_t a = rnd64(r), b = rnd64(r);
	int n, ret;

	free(req);
	if (s->state == S_DEAD)
		return;
	if (status < 0) {
		sock_kill(s, "connect: %s", uv_strerror(status));
		return;
	}
	memcpy(raw, &a, 8);
	memcpy(raw + 8, &b, 8);
	b64(raw, sizeof(raw), key);
	snprintf(cat, sizeof(cat), "%s%s", key, WS_GUID);
	SHA1((unsigned char *)cat, strlen(cat), sha);
	b64(sha, sizeof(sha), s->accept);
	n = snprintf(hs, sizeof(hs),
		     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
		     r->o.path, r->o.port, key, r->o.protocol ? "Sec-WebSocket-Protocol: " : "",
		     r->o.protocol ? r->o.protocol : "", r->o.protocol ? "\r\n" : "");
	s->state = S_HANDSHAKE;
	ret = write_copy((uv_stream_t *)&s->tcp, hs, (size_t)n);
	if (ret == 0)
		ret = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_sock_read);
	if (ret < 0)
		sock_kill(s, "handshake: %s", uv_strerror(ret));
}

/* A TCP socket bound to 127.0.0.<2 + i % sources>, port chosen at connect time
 * (IP_BIND_ADDRESS_NO_PORT), so each source address has its own ephemeral ports. */
static int bound_socket(int i, int sources, int *out)
{
	struct sockaddr_in src;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % sources));
	if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	*out = fd;
	return 0;
}

static void sock_start(struct run *r, struct sock *s)
{
	struct sockaddr_in dst;
	uv_connect_t *req;
	int fd = -1, ret;

	s->state = S_CONNECTING;
	r->inflight++;
	ret = bound_socket((int)s->idx, r->o.sources, &fd);
	if (ret < 0) {
		/* counted as failed; there is no handle to close */
		set_error(r, "socket %u: bind: %s", s->idx, strerror(-ret));
		s->state = S_DEAD;
		r->nfailed++;
		r->inflight--;
		return;
	}
	uv_tcp_init(r->loop, &s->tcp);
	s->tcp.data = s;
	ret = uv_tcp_open(&s->tcp, fd);
	if (ret < 0) {
		close(fd);
		sock_kill(s, "uv_tcp_open: %s", uv_strerror(ret));
		return;
	}
	uv_ip4_addr("127.0.0.1", r->o.port, &dst);
	req = xmalloc(sizeof(*req));
	req->data = s;
	ret = uv_tcp_connect(req, &s->tcp, (struct sockaddr *)&dst, on_sock_connected);
	if (ret < 0) {
		free(req);
		sock_kill(s, "connect: %s", uv_strerror(ret));
	}
}

/* Keeps at most concurrency sockets between connect() and ready. */
static void connect_more(struct run *r)
{
	if (r->in_connect_more)
		return;
	r->in_connect_more = true;
	while (r->inflight < r->o.concurrency && r->next_sock < r->o.sockets && !r->done)
		sock_start(r, &r->socks[r->next_sock++]);
	r->in_connect_more = false;
	check_ready(r);
}

static void report_ready(struct run *r)
{
	r->ready_reported = true;
	r->t_ready = uv_hrtime();
	printf("{\"phase\":\"ready\",\"mode\":\"%s\",\"sockets\":%d,\"ready\":%d,\"failed\":%d,"
	       "\"connect_s\":%.3f,\"error\":", r->o.mode, r->o.sockets, r->nready, r->nfailed,
	       (double)(r->t_ready - r->t_start) / 1e9);
	json_str(stdout, r->error);
	printf("}\n");
	fflush(stdout);
}

static void start_go(struct run *r);

static void check_ready(struct run *r)
{
	if (r->ready_reported || r->nready + r->nfailed < r->o.sockets)
		return;
	report_ready(r);
	if (r->o.go_after_ms == 0)
		start_go(r);
}

/* ---- publisher ---- */

static void pub_dispatch(struct run *r);

static void pub_kill(struct pub *p, const char *why)
{
	struct run *r = p->run;

	if (p->dead)
		return;
	if (p->busy)
		r->pub_errors++;
	set_error(r, "publisher: %s", why);
	p->dead = true;
	p->busy = false;
	if (p->connected)
		r->pubs_connected--;
	p->connected = false;
	if (!uv_is_closing((uv_handle_t *)&p->tcp))
		uv_close((uv_handle_t *)&p->tcp, NULL);
}

/* One HTTP/1.1 response on a keep-alive connection: head, then Content-Length bytes. */
static void on_pub_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct pub *p = st->data;
	struct run *r = p->run;
	const char *d = buf->base;
	size_t n = nread > 0 ? (size_t)nread : 0;

	if (nread < 0) {
		pub_kill(p, nread == UV_EOF ? "connection closed" : uv_strerror((int)nread));
		return;
	}
	while (n > 0 && !p->dead) {
		if (p->in_body) {
			size_t k = n < p->body_left ? n : p->body_left;

			p->body_left -= k;
			d += k;
			n -= k;
		} else {
			size_t k = n < HEAD_MAX - 1 - p->hlen ? n : HEAD_MAX - 1 - p->hlen;
			char *e, v[32];
			int status = 0;
			size_t hl;

			memcpy(p->head + p->hlen, d, k);
			p->hlen += k;
			p->head[p->hlen] = '\0';
			e = strstr(p->head, "\r\n\r\n");
			if (!e) {
				if (p->hlen >= HEAD_MAX - 1)
					pub_kill(p, "response head too long");
				return;
			}
			hl = (size_t)(e - p->head) + 4;
			/* bytes after the head belong to the body: give them back */
			d += k - (p->hlen - hl);
			n -= k - (p->hlen - hl);
			e[2] = '\0';
			if (sscanf(p->head, "HTTP/1.%*d %d", &status) != 1) {
				pub_kill(p, "not an HTTP response");
				return;
			}
			if (head_value(p->head, "Transfer-Encoding", v, sizeof(v))) {
				pub_kill(p, "chunked response");
				return;
			}
			p->body_left = head_value(p->head, "Content-Length", v, sizeof(v))
					       ? strtoul(v, NULL, 10) : 0;
			p->in_body = true;
			p->hlen = 0;
			if (status < 200 || status > 299) {
				r->pub_errors++;
				if (!r->bad_status)
					r->bad_status = status;
			}
		}
		if (p->in_body && p->body_left == 0) {
			p->in_body = false;
			p->busy = false;
			r->answered++;
			if (p->seq >= 0)
				r->t_ack[p->seq] = uv_hrtime();
		}
	}
	pub_dispatch(r);
}

static void on_pub_connected(uv_connect_t *req, int status)
{
	struct pub *p = req->data;
	int ret;

	free(req);
	if (status < 0) {
		pub_kill(p, uv_strerror(status));
		return;
	}
	ret = uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_pub_read);
	if (ret < 0) {
		pub_kill(p, uv_strerror(ret));
		return;
	}
	p->connected = true;
	p->run->pubs_connected++;
}

static void on_pub_written(uv_write_t *req, int status)
{
	struct pub *p = req->data;

	free(req);
	if (status < 0)
		pub_kill(p, uv_strerror(status));
}

/* Sends every due line there is an idle connection for. */
static void pub_dispatch(struct run *r)
{
	for (int i = 0; i < r->o.publishers && r->next_line < r->sched_lines; i++) {
		struct pub *p = &r->pubs[i];
		struct line *l = &r->lines[r->next_line];
		uint64_t now, due;
		uv_write_t *w;
		int msg = r->next_line / r->o.group;

		if (!p->connected || p->busy || p->dead)
			continue;
		w = xmalloc(sizeof(*w));
		w->data = p;
		p->busy = true;
		now = uv_hrtime();
		if (uv_write(w, (uv_stream_t *)&p->tcp, &l->req, 1, on_pub_written) < 0) {
			free(w);
			pub_kill(p, "write failed");
			continue;
		}
		r->next_line++;
		due = r->t_go + (uint64_t)((double)msg * 1e9 / r->o.rate);
		if (now > due && now - due > r->lag_max)
			r->lag_max = now - due;
		if (l->seq >= 0)
			r->t_send[l->seq] = now;
		p->seq = l->seq;
		r->t_last_send = now;
	}
}

static void pub_connect_all(struct run *r)
{
	struct sockaddr_in dst;

	uv_ip4_addr("127.0.0.1", r->o.pub_port, &dst);
	for (int i = 0; i < r->o.publishers; i++) {
		struct pub *p = &r->pubs[i];
		uv_connect_t *req = xmalloc(sizeof(*req));

		p->run = r;
		uv_tcp_init(r->loop, &p->tcp);
		uv_tcp_nodelay(&p->tcp, 1);
		p->tcp.data = p;
		req->data = p;
		if (uv_tcp_connect(req, &p->tcp, (struct sockaddr *)&dst, on_pub_connected) < 0) {
			free(req);
			pub_kill(p, "connect failed");
		}
	}
}

/* ---- phases ---- */

static void finish(struct run *r)
{
	uint64_t expected = (uint64_t)r->ready_at_go * (uint64_t)r->nmsgs;
	uint64_t end = r->t_last_frame > r->t_last_send ? r->t_last_frame : r->t_last_send;
	double span = r->going && end > r->t_go ? (double)(end - r->t_go) / 1e9 : 0;
	double pub_s = r->going && r->t_last_send > r->t_go
			       ? (double)(r->t_last_send - r->t_go) / 1e9 : 0;

	struct hist parts[4]; /* send->answer, answer->first frame, first->last, send->first */
	double pct[4][2];

	/* Where the time of a message goes, per message (not per frame): its POST answered
	 * (hubd: ingest and COMMIT), its first frame on any socket after that (hubd: the
	 * numbering of its events), and the spread from its first to its last socket (the
	 * fan-out's writes and this client's reads). */
	for (int k = 0; k < 4; k++) {
		memset(&parts[k], 0, sizeof(parts[k]));
		parts[k].b = xcalloc(HIST_BUCKETS, sizeof(*parts[k].b));
	}
	for (int i = 0; i < r->nmsgs; i++) {
		uint64_t s0 = r->t_send[i], a = r->t_ack[i], f = r->t_first[i], l = r->t_last[i];

		if (!s0 || !f)
			continue;
		if (a) {
			hist_add(&parts[0], a > s0 ? a - s0 : 0);
			hist_add(&parts[1], f > a ? f - a : 0);
		}
		hist_add(&parts[2], l - f);
		hist_add(&parts[3], f > s0 ? f - s0 : 0);
	}
	for (int k = 0; k < 4; k++) {
		pct[k][0] = hist_pct(&parts[k], 50);
		pct[k][1] = hist_pct(&parts[k], 99);
		free(parts[k].b);
	}
	r->done = true;
	printf("{\"phase\":\"done\",\"mode\":\"%s\",\"sockets\":%d,\"ready_at_go\":%d,"
	       "\"messages\":%d,\"requests\":%d,\"sent\":%d,\"answered\":%d,"
	       "\"publish_errors\":%d,\"bad_status\":%d,\"publish_s\":%.3f,"
	       "\"pub_lag_max_ms\":%.3f,\"frames\":%" PRIu64 ",\"msg_frames\":%" PRIu64 ","
	       "\"expected\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"dups\":%" PRIu64 ","
	       "\"early\":%" PRIu64 ",\"unknown_seq\":%" PRIu64 ",\"closed\":%" PRIu64 ","
	       "\"bad_frames\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"span_s\":%.3f,"
	       "\"frames_per_s\":%.1f,\"msg_frames_per_s\":%.1f,\"p50_ms\":%.3f,"
	       "\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"sched_p50_ms\":%.3f,"
	       "\"sched_p99_ms\":%.3f,\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f,"
	       "\"ack_first_p50_ms\":%.3f,\"ack_first_p99_ms\":%.3f,\"spread_p50_ms\":%.3f,"
	       "\"spread_p99_ms\":%.3f,\"first_p50_ms\":%.3f,\"first_p99_ms\":%.3f,"
	       "\"error\":",
	       r->o.mode, r->o.sockets, r->ready_at_go, r->nmsgs, r->nlines, r->next_line,
	       r->answered, r->pub_errors, r->bad_status, pub_s, (double)r->lag_max / 1e6,
	       r->frames, r->msg_frames, expected,
	       expected > r->msg_frames ? expected - r->msg_frames : 0, r->dups, r->early,
	       r->unknown_seq, r->closed, r->bad_frames, r->bytes, span,
	       span > 0 ? (double)r->frames / span : 0, span > 0 ? (double)r->msg_frames / span : 0,
	       hist_pct(&r->lat, 50), hist_pct(&r->lat, 90), hist_pct(&r->lat, 99),
	       (double)r->lat.max_ns / 1e6, hist_pct(&r->lat_sched, 50),
	       hist_pct(&r->lat_sched, 99), pct[0][0], pct[0][1], pct[1][0], pct[1][1],
	       pct[2][0], pct[2][1], pct[3][0], pct[3][1]);
	json_str(stdout, r->error);
	printf("}\n");
	fflush(stdout);
	uv_stop(r->loop);
}

static void start_go(struct run *r)
{
	if (r->going || r->done)
		return;
	r->going = true;
	r->ready_at_go = 0;
	for (int i = 0; i < r->o.sockets; i++)
		r->ready_at_go += r->socks[i].state == S_READY;
	pub_connect_all(r);
	r->t_go = 0; /* set when the publishers are connected */
}

static void on_tick(uv_timer_t *t)
{
	struct run *r = t->data;
	uint64_t now = uv_hrtime(), expected;

	if (r->done)
		return;
	if (!r->ready_reported) {
		if (now - r->t_start > (uint64_t)r->o.connect_timeout_s * 1000000000ull) {
			set_error(r, "connect phase over %d s: %d of %d ready", r->o.connect_timeout_s,
				  r->nready, r->o.sockets);
			report_ready(r);
			if (r->o.go_after_ms == 0)
				start_go(r);
		}
		return;
	}
	if (!r->going) {
		if (r->o.go_after_ms > 0 &&
		    now - r->t_ready >= (uint64_t)r->o.go_after_ms * 1000000ull)
			start_go(r);
		else if (now - r->t_ready > (uint64_t)r->o.go_timeout_s * 1000000000ull) {
			set_error(r, "no go within %d s", r->o.go_timeout_s);
			finish(r);
		}
		return;
	}
	if (!r->t_go) {
		int live = 0;

		for (int i = 0; i < r->o.publishers; i++)
			live += !r->pubs[i].dead;
		if (live == 0) {
			set_error(r, "no publisher connection");
			finish(r);
		} else if (r->pubs_connected == live) {
			r->t_go = now;
		}
		return;
	}
	{
		uint64_t due = (uint64_t)((double)(now - r->t_go) * r->o.rate / 1e9) + 1;

		if (due > (uint64_t)r->nmsgs)
			due = (uint64_t)r->nmsgs;
		r->sched_lines = (int)due * r->o.group;
	}
	pub_dispatch(r);
	expected = (uint64_t)r->ready_at_go * (uint64_t)r->nmsgs;
	if (r->next_line == r->nlines && r->answered + r->pub_errors >= r->nlines &&
	    r->msg_frames + r->closed * (uint64_t)r->nmsgs >= expected) {
		finish(r);
		return;
	}
	if (r->pubs_connected == 0) {
		set_error(r, "every publisher connection is gone");
		finish(r);
		return;
	}
	/* The drain deadline runs from the last send (or from go if sending stalls). */
	{
		uint64_t from = r->next_line == r->nlines ? r->t_last_send : r->t_go;
		uint64_t limit = (uint64_t)r->o.drain_timeout_s * 1000000000ull;

		if (r->next_line < r->nlines)
			limit += (uint64_t)((double)r->nmsgs * 1e9 / r->o.rate);
		if (now > from && now - from > limit) {
			set_error(r, "drain deadline: %" PRIu64 " of %" PRIu64 " message frames",
				  r->msg_frames, expected);
			finish(r);
		}
	}
}

static void on_in_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct run *r = st->data;

	if (nread < 0) {
		uv_read_stop(st);
		if (!r->going && !r->done) {
			set_error(r, "stdin closed before go");
			finish(r);
		}
		return;
	}
	if (nread > 0 && memmem(buf->base, (size_t)nread, "go", 2))
		start_go(r);
}

static void on_in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct run *r = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)r->inbuf, sizeof(r->inbuf));
}

/* ---- start-up ---- */

/* The bodies file: one request per line, "<X-Hub-Signature-256 value or empty>\t<body>". */
static int load_bodies(struct run *r)
{
	FILE *f = fopen(r->o.bodies, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int count = 0, ret = 0;

	if (!f) {
		fprintf(stderr, "fanout_client: %s: %s\n", r->o.bodies, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		char *tab = memchr(line, '\t', (size_t)n), *body, *req;
		size_t blen, rl;
		int hl;

		if (count >= 10000000) {
			fprintf(stderr, "fanout_client: too many lines in %s\n", r->o.bodies);
			ret = -1;
			break;
		}
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (!tab) {
			fprintf(stderr, "fanout_client: %s:%d: no tab\n", r->o.bodies, count + 1);
			ret = -1;
			break;
		}
		*tab = '\0';
		body = tab + 1;
		blen = strlen(body);
		r->lines = realloc(r->lines, sizeof(*r->lines) * (size_t)(count + 1));
		if (!r->lines)
			abort();
		rl = blen + strlen(line) + strlen(r->o.pub_path) + 256;
		req = xmalloc(rl);
		hl = snprintf(req, rl, "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
			      "Content-Type: application/json\r\n%s%s%sContent-Length: %zu\r\n\r\n",
			      r->o.pub_path, r->o.pub_port, line[0] ? "X-Hub-Signature-256: " : "",
			      line, line[0] ? "\r\n" : "", blen);
		memcpy(req + hl, body, blen);
		r->lines[count].req = uv_buf_init(req, (unsigned)(hl + (int)blen));
		r->lines[count].seq = parse_seq((unsigned char *)body, blen);
		count++;
	}
	free(line);
	fclose(f);
	if (ret < 0)
		return ret;
	if (count == 0 || count % r->o.group) {
		fprintf(stderr, "fanout_client: %s: %d lines, not a multiple of --group %d\n",
			r->o.bodies, count, r->o.group);
		return -1;
	}
	r->nlines = count;
	r->nmsgs = count / r->o.group;
	for (int i = 0; i < count; i++) {
		if (r->lines[i].seq >= r->nmsgs) {
			fprintf(stderr, "fanout_client: %s:%d: marker %d beyond %d messages\n",
				r->o.bodies, i + 1, r->lines[i].seq, r->nmsgs);
			return -1;
		}
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fanout_client --mode hub|nchan --port P --path /ws [--protocol bayge.v1]\n"
		"         --sockets N [--sources 8] [--concurrency 200]\n"
		"         --pub-port P --pub-path PATH --bodies FILE --rate R [--group 1]\n"
		"         [--publishers 8] [--connect-timeout 120] [--go-timeout 300]\n"
		"         [--drain-timeout 30] [--go-after-ms -1|0|MS]\n"
		"  hub mode reads the token from FANOUT_TOKEN; with --go-after-ms -1 (default)\n"
		"  publishing starts when a line \"go\" arrives on stdin.\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "mode", 1, NULL, 'm' },         { "port", 1, NULL, 'p' },
		{ "path", 1, NULL, 'P' },         { "protocol", 1, NULL, 'x' },
		{ "sockets", 1, NULL, 'n' },      { "sources", 1, NULL, 's' },
		{ "concurrency", 1, NULL, 'c' },  { "pub-port", 1, NULL, 'q' },
		{ "pub-path", 1, NULL, 'Q' },     { "bodies", 1, NULL, 'b' },
		{ "rate", 1, NULL, 'r' },         { "group", 1, NULL, 'g' },
		{ "publishers", 1, NULL, 'k' },   { "connect-timeout", 1, NULL, 'C' },
		{ "go-timeout", 1, NULL, 'G' },   { "drain-timeout", 1, NULL, 'D' },
		{ "go-after-ms", 1, NULL, 'a' },  { NULL, 0, NULL, 0 },
	};
	int ch;

	*o = (struct opts){ .sources = 8, .concurrency = 200, .group = 1, .publishers = 8,
			    .connect_timeout_s = 120, .go_timeout_s = 300, .drain_timeout_s = 30,
			    .go_after_ms = -1 };
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'm': o->mode = optarg; break;
		case 'p': o->port = atoi(optarg); break;
		case 'P': o->path = optarg; break;
		case 'x': o->protocol = optarg; break;
		case 'n': o->sockets = atoi(optarg); break;
		case 's': o->sources = atoi(optarg); break;
		case 'c': o->concurrency = atoi(optarg); break;
		case 'q': o->pub_port = atoi(optarg); break;
		case 'Q': o->pub_path = optarg; break;
		case 'b': o->bodies = optarg; break;
		case 'r': o->rate = atof(optarg); break;
		case 'g': o->group = atoi(optarg); break;
		case 'k': o->publishers = atoi(optarg); break;
		case 'C': o->connect_timeout_s = atoi(optarg); break;
		case 'G': o->go_timeout_s = atoi(optarg); break;
		case 'D': o->drain_timeout_s = atoi(optarg); break;
		case 'a': o->go_after_ms = atoi(optarg); break;
		default: return -1;
		}
	}
	if (optind != argc || !o->mode || (strcmp(o->mode, "hub") && strcmp(o->mode, "nchan")) ||
	    o->port < 1 || o->port > 65535 || !o->path || o->sockets < 1 ||
	    o->sockets > 200000 || o->sources < 1 || o->sources > 250 || o->concurrency < 1 ||
	    o->pub_port < 1 || o->pub_port > 65535 || !o->pub_path || !o->bodies ||
	    o->rate <= 0 || o->rate > 100000 || o->group < 1 || o->group > 16 ||
	    o->publishers < 1 || o->publishers > PUB_MAX || o->connect_timeout_s < 1 ||
	    o->go_timeout_s < 1 || o->drain_timeout_s < 1 || o->go_after_ms < -1)
		return -1;
	return 0;
}

static void raise_nofile(int want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < (rlim_t)want) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct run *r = xcalloc(1, sizeof(*r));
	uint64_t seed = uv_hrtime() ^ ((uint64_t)getpid() << 32);
	unsigned total_s;

	if (parse_args(argc, argv, &r->o) < 0) {
		usage();
		return 2;
	}
	r->hub = strcmp(r->o.mode, "hub") == 0;
	r->token = getenv("FANOUT_TOKEN");
	if (r->hub && (!r->token || !r->token[0])) {
		fprintf(stderr, "fanout_client: hub mode needs FANOUT_TOKEN\n");
		return 2;
	}
	if (load_bodies(r) < 0)
		return 2;
	/* Dies with the driver, and never outlives its own deadlines. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	total_s = (unsigned)(r->o.connect_timeout_s + r->o.go_timeout_s + r->o.drain_timeout_s +
			     (double)r->nmsgs / r->o.rate + 30);
	alarm(total_s);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(r->o.sockets + r->o.publishers + 64);

	r->rnd = seed ? seed : 1;
	r->loop = uv_default_loop();
	r->t_send = xcalloc((size_t)r->nmsgs, sizeof(*r->t_send));
	r->t_ack = xcalloc((size_t)r->nmsgs, sizeof(*r->t_ack));
	r->t_first = xcalloc((size_t)r->nmsgs, sizeof(*r->t_first));
	r->t_last = xcalloc((size_t)r->nmsgs, sizeof(*r->t_last));
	r->lat.b = xcalloc(HIST_BUCKETS, sizeof(*r->lat.b));
	r->lat_sched.b = xcalloc(HIST_BUCKETS, sizeof(*r->lat_sched.b));
	r->socks = xcalloc((size_t)r->o.sockets, sizeof(*r->socks));
	for (int i = 0; i < r->o.sockets; i++) {
		r->socks[i].run = r;
		r->socks[i].idx = (uint32_t)i;
		r->socks[i].seen = xcalloc(((size_t)r->nmsgs + 7) / 8, 1);
	}
	uv_timer_init(r->loop, &r->tick);
	r->tick.data = r;
	uv_timer_start(&r->tick, on_tick, 1, 1);
	if (r->o.go_after_ms < 0) {
		uv_pipe_init(r->loop, &r->in, 0);
		r->in.data = r;
		if (uv_pipe_open(&r->in, 0) < 0 ||
		    uv_read_start((uv_stream_t *)&r->in, on_in_alloc, on_in_read) < 0) {
			fprintf(stderr, "fanout_client: stdin is not a pipe (use --go-after-ms)\n");
			return 2;
		}
	}
	r->t_start = uv_hrtime();
	connect_more(r);
	uv_run(r->loop, UV_RUN_DEFAULT);
	/* The OS closes the sockets: tearing down 10,000 handles one by one adds nothing. */
	return r->done ? 0 : 1;
}
