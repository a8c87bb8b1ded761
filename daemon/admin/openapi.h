/* daemon/admin/openapi.h - GET /api/v1/openapi.json: the OpenAPI 3 description of every
 * /api/v1 endpoint, api/openapi.json compiled in (daemon/core/embed.h). Public (no token:
 * it describes, it reveals nothing), with an ETag. One file: an endpoint added later is
 * added to it, and tests/integration/test_admin_channels.py checks it against the routes. */
#ifndef HUB_ADMIN_OPENAPI_H
#define HUB_ADMIN_OPENAPI_H

struct hub_http_req;

void hub_admin_openapi_handle(struct hub_http_req *req);

#endif
