/* Room daemon/inbox/: the agents' side: the websocket server and its sessions (ws.h: the
 * server lives here, not in net/, because a socket's life is an agent's session: its
 * token, its tenant, resume, the bus's events), the commands (inbox.h), the REST API
 * (api.h) and the page (web.h). May call net/, data/, core/; knows nothing of inbound/. */
/* daemon/inbox/inbox.h - the agents' commands of the live inbox protocol (send, read, assign,
 * mode, typing, retry): validation of every field, roles, one SQL function call each
 * (db/migrations/0005_inbox.sql, one transaction whose events take the tenant's next ids),
 * and the committed events handed to the bus. Answers each command with one frame:
 * {"type":"ack","ref":R,...} or {"type":"error","ref":R,"code":C,"message":M}.
 * Knows nothing about websockets: it gets a parsed JSON object and returns frames. */
#ifndef HUB_INBOX_H
#define HUB_INBOX_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/json.h"
#include "lib/jwt.h"
#include "lib/pool.h"

struct hub_store;
struct hub_bus;

struct hub_inbox_caller {
	const struct hub_jwt_claims *claims; /* tenant, user and role: from the token */
	uint64_t conn;                       /* the socket (typing skips it) */
	size_t text_max;                     /* code points of a sent text */
};

/* The answer to one command (borrowed: valid during the call); error is its code
 * ("bad_request" ...), NULL for an ack. */
typedef void hub_inbox_reply_cb(void *data, struct hub_str frame, const char *error);

/* Appends {"type":"error","ref":<doc's ref or null>,"code":code,"message":message}. */
void hub_inbox_error(struct hub_buf *out, const struct hub_json_doc *doc, struct hub_pool *pool,
		     const char *code, const char *message);

/* Runs the command in doc (an object; its "type" one of send, read, assign, mode, typing,
 * retry).
 * A malformed command is answered at once (cb runs before the return) and changes nothing;
 * otherwise cb runs exactly once later, on the loop, after the events were published.
 * Returns a handle that hub_inbox_cancel() detaches (cb then never runs), NULL when cb
 * already ran. */
struct hub_inbox_cmd;
struct hub_inbox_cmd *hub_inbox_run(struct hub_store *store, struct hub_bus *bus,
				    const struct hub_inbox_caller *who,
				    const struct hub_json_doc *doc, struct hub_pool *pool,
				    hub_inbox_reply_cb *cb, void *data);
void hub_inbox_cancel(struct hub_inbox_cmd *cmd); /* NULL-safe */

#endif
