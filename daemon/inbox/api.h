/* daemon/inbox/api.h - the REST API of the inbox page, under /api/v1: a tenant's conversations
 * by activity and a conversation's history, both cursor-paged, read through the
 * asynchronous store (SQL functions of db/migrations/0006_api.sql).
 * Every request carries "Authorization: Bearer <JWT>" (the websocket's HS256 tokens,
 * lib/jwt.h; within the lifetime cap and not revoked, lib/revoke.h); the tenant comes
 * from the token only; each token is held to api.rate_per_s (429 beyond). Errors are JSON:
 * 401 without or with a bad token, 400 for a bad limit or cursor, 404 for a conversation of
 * another tenant (never 403: its existence is not revealed), 503 while the database is
 * unavailable.
 * Knows nothing about websockets or the page itself. */
#ifndef HUB_API_H
#define HUB_API_H

#include "lib/buf.h"

struct hub_api;
struct hub_store;
struct hub_http_req;
struct hub_revocations;
struct hub_jwt_claims;

#define HUB_API_LIMIT_DEFAULT 50 /* items per page without ?limit= */
#define HUB_API_LIMIT_MAX 200    /* ?limit= is 1 .. this */

/* store must outlive the api; jwt_secret is copied; tokens living longer than
 * max_token_ttl_s are refused (0: no cap). */
struct hub_api *hub_api_new(struct hub_store *store, struct hub_str jwt_secret,
			    int max_token_ttl_s);
/* The secret and the cap for new requests (SIGHUP); copied. */
void hub_api_set_auth(struct hub_api *api, struct hub_str jwt_secret, int max_token_ttl_s);
/* api.rate_per_s and api.rate_burst for new requests (SIGHUP): each token (tenant and sub)
 * gets per_s requests a second with bursts of burst; beyond, 429 rate_limited with
 * Retry-After. per_s 0: no limit. */
void hub_api_set_rate(struct hub_api *api, int per_s, int burst);
/* The revoked tokens for new requests (lib/revoke.h; referenced, NULL: none). */
void hub_api_set_revocations(struct hub_api *api, struct hub_revocations *rv);
/* Frees api (NULL-safe). No request may be in flight (the HTTP server has drained). */
void hub_api_free(struct hub_api *api);

/* GET /api/v1/conversations?limit=N&before=CURSOR →
 * {"conversations":[conversation + "contact" + "last_message"], "next_cursor": C|null},
 * newest activity first; CURSOR is opaque (the keyset (activity, id) of the last one). */
void hub_api_handle_conversations(struct hub_api *api, struct hub_http_req *req);
/* GET /api/v1/conversations/{id}/messages?limit=N&before=MESSAGE_ID →
 * {"messages":[...oldest first], "next_cursor": "<id>"|null}: the page before MESSAGE_ID
 * (the newest without it); next_cursor is the before= of the older page. */
void hub_api_handle_messages(struct hub_api *api, struct hub_http_req *req);

/* For the other handlers of the API (media.h, daemon/admin/): "Authorization: Bearer
 * <token>" (RFC 6750) verified now into *claims, then the token's share of api.rate_per_s
 * taken: 0; or answers 401 (missing_token, bad_token) or 429 (rate_limited, Retry-After)
 * and returns -EPERM. */
int hub_api_authenticate(struct hub_api *api, struct hub_http_req *req,
			 struct hub_jwt_claims *claims) HUB_MUSTCHECK;
/* hub_api_authenticate(), then the token's role must be admin: else answers 403
 * (forbidden) and returns -EPERM. For the admin API (daemon/admin/). */
int hub_api_authenticate_admin(struct hub_api *api, struct hub_http_req *req,
			       struct hub_jwt_claims *claims) HUB_MUSTCHECK;
/* Answers a failed query: 503 database_unavailable, or 500 for a query the database
 * refused (-EIO) or a result of the wrong shape (-EPROTO); logged with its ids. */
void hub_api_store_error(struct hub_http_req *req, int status);

#endif
