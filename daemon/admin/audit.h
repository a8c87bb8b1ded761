/* daemon/admin/audit.h - GET /api/v1/audit?limit=N&before=ID: the tenant's audit log for its
 * admins (403 for agents), newest first, cursor-paged (db/migrations/0013_audit.sql, read by
 * hub_admin_audit of 0014). Records name who (the token's sub), the role, the action
 * (channel.create ...), the target (channel:ID), when, the client's address and the names of
 * what changed: never a value, a secret or a message text. The records themselves are
 * written by the SQL function of each change, in its transaction.
 * Knows nothing about what the actions do. */
#ifndef HUB_ADMIN_AUDIT_H
#define HUB_ADMIN_AUDIT_H

struct hub_api;
struct hub_http_req;
struct hub_store;

#define HUB_ADMIN_AUDIT_LIMIT_DEFAULT 50
#define HUB_ADMIN_AUDIT_LIMIT_MAX 200

/* → {"records":[{"id","at","actor","role","action","target","address","detail"}...],
 * "next_cursor":"<id>"|null}; next_cursor is the before= of the older page. 400 bad_limit or
 * bad_cursor. */
void hub_admin_audit_handle(struct hub_store *store, struct hub_api *api,
			    struct hub_http_req *req);

#endif
