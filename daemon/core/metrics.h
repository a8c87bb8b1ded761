/* Room daemon/core/: what every other room of the daemon may use and that knows none of
 * them: the process's metrics (metrics.h) and the files compiled into the binaries
 * (embed.h). Includes only lib/. (scripts/check-layers keeps every room's includes.) */
/* daemon/core/metrics.h - the process's metrics in Prometheus text format (version 0.0.4):
 * counters with labels, one request-latency histogram, and gauges read at scrape time.
 * Knows nothing about who reports what. */
#ifndef HUB_METRICS_H
#define HUB_METRICS_H

#include "lib/buf.h"

struct hub_metrics;

struct hub_metrics *hub_metrics_new(void);
void hub_metrics_free(struct hub_metrics *m); /* NULL-safe */

/* hub_<name>_total{labels} += by. name: "http_requests"; labels: "route=\"healthz\",
 * code=\"200\"" or NULL. name and labels are copied on first use. */
void hub_metrics_count(struct hub_metrics *m, const char *name, const char *help,
		       const char *labels, double by);
/* One HTTP request: counts hub_http_requests_total{route,code} and observes
 * hub_http_request_duration_seconds{route}. */
void hub_metrics_http(struct hub_metrics *m, const char *route, int status, double seconds);
/* A gauge whose value fn(data) returns at scrape time. name is "hub_<...>". */
typedef double hub_metrics_gauge_fn(void *data);
void hub_metrics_gauge(struct hub_metrics *m, const char *name, const char *help,
		       hub_metrics_gauge_fn *fn, void *data);
/* Forgets the gauge called name (its data is going away); no-op when absent. */
void hub_metrics_gauge_remove(struct hub_metrics *m, const char *name);
/* Appends value escaped for a label value inside double quotes (\\, \", \n), for callers
 * of hub_metrics_count that build labels from data. */
void hub_metrics_label_escape(struct hub_buf *out, const char *value);
/* The whole exposition. */
void hub_metrics_render(struct hub_metrics *m, struct hub_buf *out);

#endif
