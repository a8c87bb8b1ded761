/* daemon/inbox/web.h - the agents' inbox page: the files of web/, compiled into the binary at
 * build time (hub_embedded_web, scripts/embed.c), served under /inbox with their content
 * type, an ETag (304 for If-None-Match), Cache-Control: no-cache and a strict
 * Content-Security-Policy (scripts and styles only from the files themselves).
 * Stateless; knows nothing about the API or websockets the page talks to. */
#ifndef HUB_WEB_H
#define HUB_WEB_H

struct hub_http_req;

/* GET /inbox (index.html) and GET /inbox/{file}: answers 200, 304, or 404 for a file that
 * is not embedded. */
void hub_web_handle(struct hub_http_req *req);

#endif
