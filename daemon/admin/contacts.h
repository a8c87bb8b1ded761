/* Room daemon/admin/: the admin API (token role admin) on top of the inbox's authentication
 * (daemon/inbox/api.h): channels (channels.h), the audit log (audit.h), the OpenAPI
 * description (openapi.h), contacts and their privacy rights (contacts.h), tenant deletion
 * and the purge and retention job (privacy.h). May call core/, net/, data/ and inbox/;
 * knows nothing of ingest, the outbox or the assistant. */
/* daemon/admin/contacts.h - contacts for admins and the privacy rights of one contact, under
 * /api/v1/contacts: search, get, rename and correct the phone, confirm or dismiss a merge
 * suggestion, export everything stored about a contact, erase it. Each request is one SQL
 * function of db/migrations/0015_privacy.sql in autocommit (one transaction, its audit
 * record inside it); the events it appended are published (hub_publish_fn) once it
 * committed. Errors are JSON: 401/403 (inbox/api.h), 404 for a contact of another tenant
 * (never 403), 400 invalid with field errors, 409 phone_taken, 503 database_unavailable.
 * Knows nothing about websockets. */
#ifndef HUB_ADMIN_CONTACTS_H
#define HUB_ADMIN_CONTACTS_H

#include "daemon/core/publish.h"

struct hub_contacts;
struct hub_store;
struct hub_api;
struct hub_http_req;

/* store and api must outlive it; publish(data, ...) gets every committed event. */
struct hub_contacts *hub_contacts_new(struct hub_store *store, struct hub_api *api,
				      hub_publish_fn *publish, void *data);
void hub_contacts_free(struct hub_contacts *c); /* NULL-safe; no request in flight */

/* GET /api/v1/contacts?q=&limit=&before= → {"contacts":[...], "next_cursor": "<id>"|null} */
void hub_contacts_handle_search(struct hub_contacts *c, struct hub_http_req *req);
/* GET /api/v1/contacts/{id} → the contact with identities, conversations, suggestions */
void hub_contacts_handle_get(struct hub_contacts *c, struct hub_http_req *req);
/* PATCH /api/v1/contacts/{id} {"display_name"?, "phone"?} → the contact */
void hub_contacts_handle_patch(struct hub_contacts *c, struct hub_http_req *req);
/* POST /api/v1/contacts/{id}/merge-suggestions/{sid}/{action} (confirm|dismiss) */
void hub_contacts_handle_merge(struct hub_contacts *c, struct hub_http_req *req);
/* GET /api/v1/contacts/{id}/export[?download=1] → the document (as an attachment) */
void hub_contacts_handle_export(struct hub_contacts *c, struct hub_http_req *req);
/* DELETE /api/v1/contacts/{id} → {"erased":{counts}} */
void hub_contacts_handle_erase(struct hub_contacts *c, struct hub_http_req *req);

/* For the other admin handlers: runs sql (a function returning rows (kind, event_id,
 * event, data) as 0015 describes) with params, then answers req: the first 'error' row as
 * its status (not_found 404, invalid 400, phone_taken/conflict 409) with its JSON, or 200
 * with the 'result' row's JSON after publishing the 'event' rows for tenant. */
void hub_contacts_run_change(struct hub_contacts *c, struct hub_http_req *req,
			     const char *tenant, const char *sql, int nparams,
			     const char *const *params);

#endif
