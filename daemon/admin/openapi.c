/* daemon/admin/openapi.c - see openapi.h. */
#include "daemon/admin/openapi.h"

#include "daemon/core/embed.h"
#include "daemon/net/http.h"

void hub_admin_openapi_handle(struct hub_http_req *req)
{
	const struct hub_embed_file *f = &hub_embedded_api[0];

	if (!f->name) {
		hub_http_req_error(req, 404, "not_found", "no description compiled in");
		return;
	}
	if (hub_str_eqs(hub_http_req_header(req, "If-None-Match"), f->etag)) {
		hub_http_req_add_header(req, "ETag", f->etag);
		hub_http_req_respond(req, 304, NULL, HUB_STR(""));
		return;
	}
	hub_http_req_add_header(req, "ETag", f->etag);
	hub_http_req_add_header(req, "Cache-Control", "no-cache");
	hub_http_req_respond(req, 200, "application/json",
			     (struct hub_str){ f->data, f->len });
}
