/* Room daemon/webchat/: the website chat (channel kind web): the widget's script, the
 * visitors' sessions and their websockets (subprotocol bayge.visitor.v1). May call core/,
 * net/, data/ and inbox/ (the websocket server, whose framing it shares); stores visitors'
 * messages through the ingest given by hubd (a function, so it knows nothing of inbound/).
 * daemon/webchat/webchat.h - a visitor is (channel, sender): "v:<32 hex>" for a browser,
 * "u:<user id>" for a site's verified user. A visitor's socket sees only that visitor's
 * conversations on the channel: their messages, the agents' and the assistant's replies,
 * the agents' typing and read marks; it sends texts, typing and read marks. */
#ifndef HUB_WEBCHAT_H
#define HUB_WEBCHAT_H

#include <uv.h>

#include "daemon/core/publish.h"
#include "lib/buf.h"

struct hub_webchat;
struct hub_store;
struct hub_bus;
struct hub_ws;
struct hub_config;
struct hub_http_req;
struct hub_channel;
struct hub_event_list;

/* Stores events of channel ch as the webhooks' are (hubd passes hub_ingest_events):
 * done(status, done_data) runs exactly once, after the events are published. */
typedef void hub_webchat_ingest_done(int status, void *data);
typedef void hub_webchat_ingest_fn(void *data, struct hub_config *cfg,
				   const struct hub_channel *ch,
				   const struct hub_event_list *events,
				   hub_webchat_ingest_done *done, void *done_data);

/* store, bus and ws outlive it; it becomes ws's handler and tap. cfg is referenced. */
struct hub_webchat *hub_webchat_new(uv_loop_t *loop, struct hub_store *store,
				    struct hub_bus *bus, struct hub_ws *ws,
				    struct hub_config *cfg, hub_webchat_ingest_fn *ingest,
				    hub_publish_fn *publish, void *data);
/* The snapshot (with the database's channels) for new requests and frames. */
void hub_webchat_set_config(struct hub_webchat *wc, struct hub_config *cfg);
/* After ws closed every socket: frees wc (NULL-safe). */
void hub_webchat_free(struct hub_webchat *wc);

/* GET /widget.js */
void hub_webchat_handle_widget(struct hub_webchat *wc, struct hub_http_req *req);
/* POST and OPTIONS /webchat/{channel}/session */
void hub_webchat_handle_session(struct hub_webchat *wc, struct hub_http_req *req);
/* GET /ws/visitor/{channel}: the Origin checked (403), then the upgrade. */
void hub_webchat_handle_upgrade(struct hub_webchat *wc, struct hub_http_req *req);

#endif
