/* daemon/inbox/web.c - see web.h. The page's URLs are not versioned, so browsers revalidate
 * every time (no-cache) and get 304 while the build is the same. */
#include "daemon/inbox/web.h"

#include <string.h>

#include "daemon/core/embed.h"
#include "daemon/net/http.h"
#include "lib/buf.h"

/* No inline script or style, nothing from elsewhere; the websocket is same-origin; no
 * form is ever submitted (the page's forms are handled by its script). */
#define WEB_CSP                                                                  \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " \
	"connect-src 'self'; base-uri 'none'; form-action 'none'; "                 \
	"frame-ancestors 'none'"

static const struct {
	const char *ext;
	const char *type;
} types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
};

static const char *content_type(const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < HUB_ARRAY_SIZE(types); i++) {
		size_t e = strlen(types[i].ext);

		if (n > e && strcmp(name + n - e, types[i].ext) == 0)
			return types[i].type;
	}
	return "application/octet-stream";
}

static const struct hub_embed_file *find(struct hub_str name)
{
	for (const struct hub_embed_file *f = hub_embedded_web; f->name; f++)
		if (hub_str_eqs(name, f->name))
			return f;
	return NULL;
}

/* If-None-Match: "*", or a list of (possibly weak, W/"...") tags; ours has no commas. */
static bool etag_matches(struct hub_str inm, const char *etag)
{
	size_t n = strlen(etag);

	if (hub_str_eqs(inm, "*"))
		return true;
	for (size_t i = 0; inm.p && i + n <= inm.len; i++)
		if (memcmp(inm.p + i, etag, n) == 0)
			return true;
	return false;
}

void hub_web_handle(struct hub_http_req *req)
{
	struct hub_str name = hub_http_req_param(req, "file");
	const struct hub_embed_file *f = find(name.p ? name : HUB_STR("index.html"));

	if (!f) {
		hub_http_req_error(req, 404, "not_found", "no such file");
		return;
	}
	hub_http_req_add_header(req, "ETag", f->etag);
	hub_http_req_add_header(req, "Cache-Control", "no-cache");
	hub_http_req_add_header(req, "X-Content-Type-Options", "nosniff");
	hub_http_req_add_header(req, "Referrer-Policy", "no-referrer");
	hub_http_req_add_header(req, "Content-Security-Policy", WEB_CSP);
	if (etag_matches(hub_http_req_header(req, "If-None-Match"), f->etag)) {
		hub_http_req_respond(req, 304, NULL, HUB_STR_NULL);
		return;
	}
	hub_http_req_respond(req, 200, content_type(f->name), (struct hub_str){ f->data, f->len });
}
