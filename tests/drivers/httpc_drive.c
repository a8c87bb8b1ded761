/* tests/drivers/httpc_drive.c - runs daemon/net/httpc on a loop from a script, for
 * tests/integration/test_httpc.py. Not part of hubd.
 *
 * stdin: one request a line, a JSON object (blank lines and lines starting with # skipped):
 *   {"method": "POST", "url": "https://127.0.0.1:8443/echo", "headers": {"X-A": "b"},
 *    "body": "text", "repeat": 10, "after": true, "delay_ms": 500, "retry": true,
 *    "connect_ms": 500, "response_ms": 500, "total_ms": 2000, "cancel_ms": 0}
 * "repeat" sends that many copies at once. "after" starts the line once every earlier
 * request has ended, from inside the last callback (so a kept-alive connection is reused
 * before anything else happens on the loop), or "delay_ms" after that. "cancel_ms" cancels
 * the request that long after sending it (0: at once).
 *
 * stdout: one JSON line per request as it ends, "i" counting requests from 0:
 *   {"i":0,"status":200,"ms":12,"body_len":5,"sha256":"...","body":"hello",
 *    "content_type":"text/plain","retry_after":"7","fields":4}
 *   {"i":1,"error":"ETIMEDOUT","ms":503}   (with "sync":true when the request was refused)
 *   {"i":2,"cancelled":true}
 * then {"stats":{...}} (hub_httpc_stats, taken before the client is closed).
 *
 * Options: --ca FILE, --max-conns N, --max-queue N, --idle-ms N, --max-response N,
 * --close-after-ms N (closes the client then: pending requests end with ECANCELED), --debug.
 * Exit 0 when the script ran and the loop closed empty; 1 when it did not; 2 bad usage. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <uv.h>

#include "daemon/net/httpc.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/pool.h"

#define BODY_PRINT_MAX 65536

struct line {
	char *method, *url, *body;
	size_t body_len;
	struct hub_httpc_header *headers;
	size_t nheaders;
	int connect_ms, response_ms, total_ms, cancel_ms; /* cancel_ms < 0: never */
	bool retry;
};

struct drive;

struct job {
	struct drive *d;
	const struct line *l;
	size_t line, index, group;
	uint64_t start;                /* uv_hrtime() */
	struct hub_httpc_call *call;
	uv_timer_t cancel_timer;
	bool timer_init, ended;
};

struct group {
	size_t first, count;
	int delay_ms;
	bool delayed;
	size_t left;                   /* jobs not ended, + 1 while starting */
};

struct drive {
	uv_loop_t loop;
	struct hub_httpc *client;
	struct line *lines;
	size_t nlines;
	struct job *jobs;
	size_t njobs;
	struct group *groups;
	size_t ngroups;
	uv_timer_t delay_timer;        /* runs for groups[delay_group] */
	size_t delay_group;
	uv_timer_t close_timer;
	int close_after_ms;
	bool closed, finished;
	struct hub_httpc_stats stats;
};

static void start_group(struct drive *d, size_t g);

static void print_line(struct hub_buf *b)
{
	hub_buf_addch(b, '\n');
	fwrite(b->p, 1, b->len, stdout);
	fflush(stdout);
	hub_buf_release(b);
}

static const char *errname(int status)
{
	const char *n = strerrorname_np(-status);

	return n ? n : "E?";
}

static double ms_since(uint64_t start)
{
	return (double)(uv_hrtime() - start) / 1e6;
}

static void print_error(const struct job *j, int status, bool sync)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_jw w;

	hub_jw_init(&w, &b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "i");
	hub_jw_int(&w, (int64_t)j->index);
	hub_jw_key(&w, "error");
	hub_jw_cstr(&w, errname(status));
	hub_jw_key(&w, "ms");
	hub_jw_int(&w, (int64_t)ms_since(j->start));
	if (sync) {
		hub_jw_key(&w, "sync");
		hub_jw_bool(&w, true);
	}
	hub_jw_obj_close(&w);
	print_line(&b);
}

static void print_cancelled(const struct job *j)
{
	struct hub_buf b = HUB_BUF_INIT;

	hub_buf_addf(&b, "{\"i\":%zu,\"cancelled\":true}", j->index);
	print_line(&b);
}

static void print_response(const struct job *j, const struct hub_httpc_resp *resp)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct hub_buf b = HUB_BUF_INIT, hex = HUB_BUF_INIT;
	struct hub_str v;
	struct hub_jw w;

	EVP_Digest(resp->body.p ? resp->body.p : "", resp->body.len, md, &mdlen, EVP_sha256(),
		   NULL);
	hub_buf_addhex(&hex, md, mdlen);
	hub_jw_init(&w, &b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "i");
	hub_jw_int(&w, (int64_t)j->index);
	hub_jw_key(&w, "status");
	hub_jw_int(&w, resp->status);
	hub_jw_key(&w, "ms");
	hub_jw_int(&w, (int64_t)ms_since(j->start));
	hub_jw_key(&w, "body_len");
	hub_jw_int(&w, (int64_t)resp->body.len);
	hub_jw_key(&w, "sha256");
	hub_jw_str(&w, hub_buf_str(&hex));
	if (resp->body.len <= BODY_PRINT_MAX) {
		hub_jw_key(&w, "body");
		hub_jw_str(&w, resp->body);
	}
	v = hub_httpc_resp_header(resp, "content-type");
	if (v.p) {
		hub_jw_key(&w, "content_type");
		hub_jw_str(&w, v);
	}
	v = hub_httpc_resp_header(resp, "Retry-After");
	if (v.p) {
		hub_jw_key(&w, "retry_after");
		hub_jw_str(&w, v);
	}
	hub_jw_key(&w, "fields");
	hub_jw_int(&w, (int64_t)resp->nfields);
	hub_jw_obj_close(&w);
	print_line(&b);
	hub_buf_release(&hex);
}

static void print_stats(const struct hub_httpc_stats *s)
{
	struct hub_buf b = HUB_BUF_INIT;

	hub_buf_addf(&b,
		     "{\"stats\":{\"requests\":%llu,\"responses\":%llu,\"errors\":%llu,"
		     "\"conns_opened\":%llu,\"conns_reused\":%llu,\"stale_retries\":%llu,"
		     "\"dns_lookups\":%llu,\"dns_cache_hits\":%llu,\"conns_open\":%zu,"
		     "\"conns_idle\":%zu,\"queued\":%zu}}",
		     (unsigned long long)s->requests, (unsigned long long)s->responses,
		     (unsigned long long)s->errors, (unsigned long long)s->conns_opened,
		     (unsigned long long)s->conns_reused, (unsigned long long)s->stale_retries,
		     (unsigned long long)s->dns_lookups, (unsigned long long)s->dns_cache_hits,
		     s->conns_open, s->conns_idle, s->queued);
	print_line(&b);
}

/* ---- running ---- */

static void close_client(struct drive *d)
{
	if (d->closed)
		return;
	hub_httpc_get_stats(d->client, &d->stats);
	d->closed = true;
	hub_httpc_close(d->client, NULL, NULL); /* runs pending callbacks: ECANCELED */
}

static void finish(struct drive *d)
{
	if (d->finished)
		return;
	d->finished = true;
	if (!d->closed)
		hub_httpc_get_stats(d->client, &d->stats);
	print_stats(&d->stats);
	close_client(d);
	uv_close((uv_handle_t *)&d->delay_timer, NULL);
	uv_close((uv_handle_t *)&d->close_timer, NULL);
}

static void group_left(struct drive *d, size_t g)
{
	if (--d->groups[g].left == 0)
		start_group(d, g + 1);
}

static void job_ended(struct job *j)
{
	j->ended = true;
	if (j->timer_init)
		uv_close((uv_handle_t *)&j->cancel_timer, NULL);
	group_left(j->d, j->group);
}

static void on_result(int status, const struct hub_httpc_resp *resp, void *data)
{
	struct job *j = data;

	if (status == 0)
		print_response(j, resp);
	else
		print_error(j, status, false);
	job_ended(j);
}

static void on_cancel_timer(uv_timer_t *t)
{
	struct job *j = t->data;

	if (j->ended)
		return;
	hub_httpc_call_cancel(j->call);
	print_cancelled(j);
	job_ended(j);
}

static void job_start(struct job *j)
{
	struct drive *d = j->d;
	const struct line *l = j->l;
	struct hub_httpc_req r = {
		.method = l->method,
		.url = l->url,
		.headers = l->headers,
		.nheaders = l->nheaders,
		.body = { l->body, l->body_len },
		.connect_timeout_ms = l->connect_ms,
		.response_timeout_ms = l->response_ms,
		.total_timeout_ms = l->total_ms,
		.retry_on_stale = l->retry,
	};
	int ret;

	j->start = uv_hrtime();
	ret = d->closed ? -ECANCELED : hub_httpc_request(d->client, &r, on_result, j, &j->call);
	if (ret < 0) {
		print_error(j, ret, true);
		job_ended(j);
		return;
	}
	if (l->cancel_ms == 0) {
		hub_httpc_call_cancel(j->call);
		print_cancelled(j);
		job_ended(j);
	} else if (l->cancel_ms > 0) {
		uv_timer_init(&d->loop, &j->cancel_timer);
		j->cancel_timer.data = j;
		j->timer_init = true;
		uv_timer_start(&j->cancel_timer, on_cancel_timer, (uint64_t)l->cancel_ms, 0);
	}
}

static void on_delay(uv_timer_t *t)
{
	struct drive *d = t->data;

	start_group(d, d->delay_group);
}

static void start_group(struct drive *d, size_t g)
{
	struct group *grp;

	if (g >= d->ngroups) {
		finish(d);
		return;
	}
	grp = &d->groups[g];
	if (grp->delay_ms > 0 && !grp->delayed) {
		grp->delayed = true;
		d->delay_group = g;
		uv_timer_start(&d->delay_timer, on_delay, (uint64_t)grp->delay_ms, 0);
		return;
	}
	grp->left = grp->count + 1; /* the last job may end while the others start */
	for (size_t i = 0; i < grp->count; i++)
		job_start(&d->jobs[grp->first + i]);
	group_left(d, g);
}

static void on_close_timer(uv_timer_t *t)
{
	close_client(t->data);
}

/* ---- the script ---- */

static char *json_cstr(const struct hub_json_doc *doc, int i, struct hub_pool *pool,
		       size_t *len)
{
	struct hub_str s;

	if (hub_json_string(doc, i, pool, &s) < 0)
		return NULL;
	if (len)
		*len = s.len;
	return hub_xmemdup(s.p, s.len);
}

static int json_int_or(const struct hub_json_doc *doc, int obj, const char *key, int dflt)
{
	int i = hub_json_get(doc, obj, key);
	int64_t v;

	if (i < 0 || hub_json_int64(doc, i, &v) < 0)
		return dflt;
	return (int)v;
}

static bool json_bool_or(const struct hub_json_doc *doc, int obj, const char *key)
{
	int i = hub_json_get(doc, obj, key);
	bool v = false;

	if (i < 0 || hub_json_bool(doc, i, &v) < 0)
		return false;
	return v;
}

static int parse_line(struct drive *d, struct hub_str text, size_t lineno)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_json_doc doc;
	struct line *l;
	int repeat, h, ret = -EINVAL;
	bool after;

	if (hub_json_parse(&pool, text, 1024, &doc, &err) < 0 ||
	    !hub_json_is(&doc, 0, HUB_JSON_OBJECT)) {
		fprintf(stderr, "httpc_drive: line %zu: %s\n", lineno,
			err.msg[0] ? err.msg : "not an object");
		goto out;
	}
	d->lines = hub_xrealloc(d->lines, (d->nlines + 1) * sizeof(*d->lines));
	l = &d->lines[d->nlines++];
	memset(l, 0, sizeof(*l));
	l->url = json_cstr(&doc, hub_json_get(&doc, 0, "url"), &pool, NULL);
	if (!l->url) {
		fprintf(stderr, "httpc_drive: line %zu: no url\n", lineno);
		goto out;
	}
	l->method = json_cstr(&doc, hub_json_get(&doc, 0, "method"), &pool, NULL);
	l->body = json_cstr(&doc, hub_json_get(&doc, 0, "body"), &pool, &l->body_len);
	h = hub_json_get(&doc, 0, "headers");
	if (h >= 0 && hub_json_is(&doc, h, HUB_JSON_OBJECT)) {
		l->headers = hub_xcalloc((size_t)doc.tok[h].size + 1, sizeof(*l->headers));
		for (int k = hub_json_first(&doc, h); k >= 0; k = hub_json_after(&doc, k)) {
			struct hub_httpc_header *hd = &l->headers[l->nheaders++];

			hd->name = json_cstr(&doc, k, &pool, NULL);
			hd->value = json_cstr(&doc, k + 1, &pool, NULL);
		}
	}
	l->connect_ms = json_int_or(&doc, 0, "connect_ms", 0);
	l->response_ms = json_int_or(&doc, 0, "response_ms", 0);
	l->total_ms = json_int_or(&doc, 0, "total_ms", 0);
	l->cancel_ms = json_int_or(&doc, 0, "cancel_ms", -1);
	l->retry = json_bool_or(&doc, 0, "retry");
	repeat = json_int_or(&doc, 0, "repeat", 1);
	after = json_bool_or(&doc, 0, "after");

	if (!d->ngroups || after || hub_json_get(&doc, 0, "delay_ms") >= 0) {
		d->groups = hub_xrealloc(d->groups, (d->ngroups + 1) * sizeof(*d->groups));
		memset(&d->groups[d->ngroups], 0, sizeof(*d->groups));
		d->groups[d->ngroups].first = d->njobs;
		d->groups[d->ngroups].delay_ms = json_int_or(&doc, 0, "delay_ms", 0);
		d->ngroups++;
	}
	for (int r = 0; r < repeat; r++) {
		struct job *j;

		d->jobs = hub_xrealloc(d->jobs, (d->njobs + 1) * sizeof(*d->jobs));
		j = &d->jobs[d->njobs];
		memset(j, 0, sizeof(*j));
		j->line = d->nlines - 1;
		j->index = d->njobs++;
		j->group = d->ngroups - 1;
		d->groups[d->ngroups - 1].count++;
	}
	ret = 0;
out:
	hub_pool_release(&pool);
	return ret;
}

static int read_script(struct drive *d)
{
	struct hub_buf in = HUB_BUF_INIT;
	char tmp[16384];
	size_t n, lineno = 0;
	int ret = 0;

	while ((n = fread(tmp, 1, sizeof(tmp), stdin)) > 0)
		hub_buf_add(&in, tmp, n);
	for (char *p = in.p, *e; ret == 0 && p < in.p + in.len; p = e + 1) {
		e = memchr(p, '\n', (size_t)(in.p + in.len - p));
		if (!e)
			e = in.p + in.len;
		lineno++;
		while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		if (p == e || *p == '#')
			continue;
		ret = parse_line(d, (struct hub_str){ p, (size_t)(e - p) }, lineno);
	}
	hub_buf_release(&in);
	/* jobs point to their lines only now that the arrays stop moving */
	for (size_t i = 0; ret == 0 && i < d->njobs; i++) {
		d->jobs[i].d = d;
		d->jobs[i].l = &d->lines[d->jobs[i].line];
	}
	return ret;
}

static void free_script(struct drive *d)
{
	for (size_t i = 0; i < d->nlines; i++) {
		struct line *l = &d->lines[i];

		free(l->method);
		free(l->url);
		free(l->body);
		for (size_t k = 0; k < l->nheaders; k++) {
			free((char *)l->headers[k].name);
			free((char *)l->headers[k].value);
		}
		free(l->headers);
	}
	free(d->lines);
	free(d->jobs);
	free(d->groups);
}

static int usage(void)
{
	fprintf(stderr, "usage: httpc_drive [--ca FILE] [--max-conns N] [--max-queue N] "
			"[--idle-ms N] [--max-response N] [--close-after-ms N] [--debug] "
			"< script\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct hub_httpc_opts opts = { 0 };
	struct hub_err err = HUB_ERR_INIT;
	struct drive d;
	int rc = 0;

	memset(&d, 0, sizeof(d));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--debug") == 0) {
			hub_log_set_level(HUB_LOG_DEBUG);
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (strcmp(a, "--ca") == 0)
			opts.ca_file = v;
		else if (strcmp(a, "--max-conns") == 0)
			opts.max_conns_per_origin = atoi(v);
		else if (strcmp(a, "--max-queue") == 0)
			opts.max_queue = atoi(v);
		else if (strcmp(a, "--idle-ms") == 0)
			opts.idle_timeout_ms = atoi(v);
		else if (strcmp(a, "--max-response") == 0)
			opts.max_response = strtoul(v, NULL, 10);
		else if (strcmp(a, "--close-after-ms") == 0)
			d.close_after_ms = atoi(v);
		else
			return usage();
	}
	signal(SIGPIPE, SIG_IGN);
	if (read_script(&d) < 0) {
		free_script(&d);
		return 2;
	}
	uv_loop_init(&d.loop);
	if (hub_httpc_new(&d.loop, &opts, &d.client, &err) < 0) {
		fprintf(stderr, "httpc_drive: %s\n", err.msg);
		free_script(&d);
		uv_loop_close(&d.loop);
		return 2;
	}
	uv_timer_init(&d.loop, &d.delay_timer);
	uv_timer_init(&d.loop, &d.close_timer);
	d.delay_timer.data = &d;
	d.close_timer.data = &d;
	if (d.close_after_ms > 0)
		uv_timer_start(&d.close_timer, on_close_timer, (uint64_t)d.close_after_ms, 0);
	if (d.ngroups)
		start_group(&d, 0);
	else
		finish(&d);
	uv_run(&d.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&d.loop) != 0) {
		fprintf(stderr, "httpc_drive: the loop still has handles\n");
		rc = 1;
	}
	free_script(&d);
	return rc;
}
