/* daemon/core/metrics.c - see metrics.h. Small linked lists in registration order: a few dozen
 * series, looked up by name.
 * Knows nothing about HTTP beyond the labels of hub_metrics_http. */
#include "daemon/core/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Request latency buckets, seconds: 0.5 ms to 10 s. */
static const double buckets[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define NBUCKETS HUB_ARRAY_SIZE(buckets)

struct series {
	struct series *next;
	char *labels;    /* NULL: no labels */
	double value;
};

struct family {
	struct family *next;
	char *name; /* "hub_http_requests_total" */
	char *help;
	struct series *series, **tail;
};

struct code_count {
	int code;
	uint64_t n;
};

struct route_stat {
	struct route_stat *next;
	char *route;
	uint64_t bucket[NBUCKETS]; /* not cumulative; summed at render time */
	uint64_t count;
	double sum;
	struct code_count *codes;
	size_t ncodes;
};

struct gauge {
	struct gauge *next;
	char *name;
	char *help;
	hub_metrics_gauge_fn *fn;
	void *data;
};

struct hub_metrics {
	struct family *families, **ftail;
	struct route_stat *routes, **rtail;
	struct gauge *gauges, **gtail;
};

struct hub_metrics *hub_metrics_new(void)
{
	struct hub_metrics *m = hub_xcalloc(1, sizeof(*m));

	m->ftail = &m->families;
	m->rtail = &m->routes;
	m->gtail = &m->gauges;
	return m;
}

void hub_metrics_free(struct hub_metrics *m)
{
	if (!m)
		return;
	while (m->families) {
		struct family *f = m->families;

		m->families = f->next;
		while (f->series) {
			struct series *s = f->series;

			f->series = s->next;
			free(s->labels);
			free(s);
		}
		free(f->name);
		free(f->help);
		free(f);
	}
	while (m->routes) {
		struct route_stat *r = m->routes;

		m->routes = r->next;
		free(r->route);
		free(r->codes);
		free(r);
	}
	while (m->gauges) {
		struct gauge *g = m->gauges;

		m->gauges = g->next;
		free(g->name);
		free(g->help);
		free(g);
	}
	free(m);
}

/* By content, never by pointer: callers may reuse one buffer for different labels. */
static bool same(const char *copy, const char *s)
{
	if (!copy || !s)
		return copy == s;
	return strcmp(copy, s) == 0;
}

void hub_metrics_count(struct hub_metrics *m, const char *name, const char *help,
		       const char *labels, double by)
{
	struct family *f;
	struct series *s;

	if (!m)
		return;
	for (f = m->families; f; f = f->next) {
		size_t n = strlen(name);

		/* f->name is "hub_" name "_total" */
		if ((strncmp(f->name + 4, name, n) == 0 && strcmp(f->name + 4 + n, "_total") == 0))
			break;
	}
	if (!f) {
		struct hub_buf b = HUB_BUF_INIT;

		hub_buf_addf(&b, "hub_%s_total", name);
		f = hub_xcalloc(1, sizeof(*f));
		f->name = hub_buf_detach(&b, NULL);
		f->help = hub_xstrdup(help ? help : "");
		f->tail = &f->series;
		*m->ftail = f;
		m->ftail = &f->next;
	}
	for (s = f->series; s; s = s->next)
		if (same(s->labels, labels))
			break;
	if (!s) {
		s = hub_xcalloc(1, sizeof(*s));
		s->labels = labels ? hub_xstrdup(labels) : NULL;
		*f->tail = s;
		f->tail = &s->next;
	}
	s->value += by;
}

void hub_metrics_http(struct hub_metrics *m, const char *route, int status, double seconds)
{
	struct route_stat *r;
	size_t i;

	if (!m)
		return;
	if (!route)
		route = "unrouted";
	for (r = m->routes; r; r = r->next)
		if (same(r->route, route))
			break;
	if (!r) {
		r = hub_xcalloc(1, sizeof(*r));
		r->route = hub_xstrdup(route);
		*m->rtail = r;
		m->rtail = &r->next;
	}
	for (i = 0; i < r->ncodes; i++)
		if (r->codes[i].code == status)
			break;
	if (i == r->ncodes) {
		r->codes = hub_xrealloc(r->codes, (r->ncodes + 1) * sizeof(*r->codes));
		r->codes[i].code = status;
		r->codes[i].n = 0;
		r->ncodes++;
	}
	r->codes[i].n++;
	if (!(seconds >= 0)) /* NaN too */
		seconds = 0;
	for (i = 0; i < NBUCKETS; i++)
		if (seconds <= buckets[i])
			break;
	if (i < NBUCKETS)
		r->bucket[i]++;
	r->count++;
	r->sum += seconds;
}

void hub_metrics_gauge(struct hub_metrics *m, const char *name, const char *help,
		       hub_metrics_gauge_fn *fn, void *data)
{
	struct gauge *g;

	if (!m)
		return;
	g = hub_xcalloc(1, sizeof(*g));
	g->name = hub_xstrdup(name);
	g->help = hub_xstrdup(help ? help : "");
	g->fn = fn;
	g->data = data;
	*m->gtail = g;
	m->gtail = &g->next;
}

void hub_metrics_gauge_remove(struct hub_metrics *m, const char *name)
{
	struct gauge **pp;

	if (!m)
		return;
	for (pp = &m->gauges; *pp; pp = &(*pp)->next) {
		struct gauge *g = *pp;

		if (strcmp(g->name, name) != 0)
			continue;
		*pp = g->next;
		if (m->gtail == &g->next)
			m->gtail = pp;
		free(g->name);
		free(g->help);
		free(g);
		return;
	}
}

void hub_metrics_label_escape(struct hub_buf *out, const char *value)
{
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			hub_buf_adds(out, "\\\\");
		else if (*p == '"')
			hub_buf_adds(out, "\\\"");
		else if (*p == '\n')
			hub_buf_adds(out, "\\n");
		else
			hub_buf_addch(out, *p);
	}
}

/* HELP text: backslash and line feed escaped (text format 0.0.4). */
static void add_help(struct hub_buf *out, const char *name, const char *help, const char *type)
{
	hub_buf_addf(out, "# HELP %s ", name);
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			hub_buf_adds(out, "\\\\");
		else if (*p == '\n')
			hub_buf_adds(out, "\\n");
		else
			hub_buf_addch(out, *p);
	}
	hub_buf_addf(out, "\n# TYPE %s %s\n", name, type);
}

static void add_value(struct hub_buf *out, double v)
{
	if (isnan(v))
		hub_buf_adds(out, " NaN\n");
	else if (isinf(v))
		hub_buf_adds(out, v > 0 ? " +Inf\n" : " -Inf\n");
	else if (v == (double)(int64_t)v && fabs(v) < 9e15)
		hub_buf_addf(out, " %lld\n", (long long)v);
	else
		hub_buf_addf(out, " %.15g\n", v);
}

static void render_http(struct hub_metrics *m, struct hub_buf *out)
{
	struct route_stat *r;

	if (!m->routes)
		return;
	add_help(out, "hub_http_requests_total", "HTTP requests answered, by route and status.",
		 "counter");
	for (r = m->routes; r; r = r->next) {
		for (size_t i = 0; i < r->ncodes; i++) {
			hub_buf_adds(out, "hub_http_requests_total{route=\"");
			hub_metrics_label_escape(out, r->route);
			hub_buf_addf(out, "\",code=\"%d\"}", r->codes[i].code);
			add_value(out, (double)r->codes[i].n);
		}
	}
	add_help(out, "hub_http_request_duration_seconds",
		 "Time from the first byte of a request to its response, by route.", "histogram");
	for (r = m->routes; r; r = r->next) {
		uint64_t cum = 0;

		for (size_t i = 0; i <= NBUCKETS; i++) {
			hub_buf_adds(out, "hub_http_request_duration_seconds_bucket{route=\"");
			hub_metrics_label_escape(out, r->route);
			if (i < NBUCKETS) {
				cum += r->bucket[i];
				hub_buf_addf(out, "\",le=\"%g\"}", buckets[i]);
				add_value(out, (double)cum);
			} else {
				hub_buf_adds(out, "\",le=\"+Inf\"}");
				add_value(out, (double)r->count);
			}
		}
		hub_buf_adds(out, "hub_http_request_duration_seconds_sum{route=\"");
		hub_metrics_label_escape(out, r->route);
		hub_buf_adds(out, "\"}");
		add_value(out, r->sum);
		hub_buf_adds(out, "hub_http_request_duration_seconds_count{route=\"");
		hub_metrics_label_escape(out, r->route);
		hub_buf_adds(out, "\"}");
		add_value(out, (double)r->count);
	}
}

void hub_metrics_render(struct hub_metrics *m, struct hub_buf *out)
{
	for (struct family *f = m->families; f; f = f->next) {
		add_help(out, f->name, f->help, "counter");
		for (struct series *s = f->series; s; s = s->next) {
			hub_buf_adds(out, f->name);
			if (s->labels)
				hub_buf_addf(out, "{%s}", s->labels);
			add_value(out, s->value);
		}
	}
	render_http(m, out);
	for (struct gauge *g = m->gauges; g; g = g->next) {
		add_help(out, g->name, g->help, "gauge");
		hub_buf_adds(out, g->name);
		add_value(out, g->fn(g->data));
	}
}
