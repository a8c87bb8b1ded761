/* daemon/admin/channels.h - the admin API's channels, /api/v1/channels: a tenant's admin
 * lists, reads, creates, changes (PATCH), disables, enables and deletes its channels. Every
 * request needs an admin's token of the tenant (hub_api_authenticate_admin: 401, 403 for an
 * agent); another tenant's channel is answered 404 like one that does not exist. A body is
 * validated field by field before anything is stored: 400 {"error":{"code":"invalid",
 * "fields":{"account_id":"..."}}} and nothing changes. Secrets are sealed here
 * (hub_channels_seal, as hubctl does) and never returned: a response shows whether each is
 * set and its last four characters at most; the one exception is the verify token the hub
 * generates at creation, returned once to be pasted into the platform's dashboard. Each
 * change is one SQL function call (db/migrations/0014_admin_channels.sql) that also writes
 * its audit record; its NOTIFY hub_channels brings it to every running hubd.
 * Knows nothing about websockets or how the channels are served. */
#ifndef HUB_ADMIN_CHANNELS_H
#define HUB_ADMIN_CHANNELS_H

struct hub_admin_channels;
struct hub_api;
struct hub_config;
struct hub_http_req;
struct hub_httpc;
struct hub_store;

/* store, api and httpc (the platforms' client, for checks) must outlive it. */
struct hub_admin_channels *hub_admin_channels_new(struct hub_store *store, struct hub_api *api,
						  struct hub_httpc *httpc);
/* The configuration for new requests (secrets.master_key, media.public_url): referenced. */
void hub_admin_channels_set_config(struct hub_admin_channels *ac, struct hub_config *cfg);
/* NULL-safe; no request may be in flight. */
void hub_admin_channels_free(struct hub_admin_channels *ac);

/* GET /api/v1/channels → {"channels":[channel...]} */
void hub_admin_channels_handle_list(struct hub_admin_channels *ac, struct hub_http_req *req);
/* GET /api/v1/channels/{id} → {"channel":{...}} */
void hub_admin_channels_handle_get(struct hub_admin_channels *ac, struct hub_http_req *req);
/* POST /api/v1/channels {"kind","account_id","app_secret", optional "id","name","mode",
 * "access_token"} → 201 {"channel":{...},"verify_token":"<generated>"} */
void hub_admin_channels_handle_create(struct hub_admin_channels *ac, struct hub_http_req *req);
/* PATCH /api/v1/channels/{id} {"name","account_id","mode","app_secret","access_token"}
 * (any of them) → {"channel":{...}}; 409 managed_by_config for a channel of hubd's file. */
void hub_admin_channels_handle_update(struct hub_admin_channels *ac, struct hub_http_req *req);
/* POST /api/v1/channels/{id}/enable and /disable → {"channel":{...}} */
void hub_admin_channels_handle_enable(struct hub_admin_channels *ac, struct hub_http_req *req);
void hub_admin_channels_handle_disable(struct hub_admin_channels *ac, struct hub_http_req *req);
/* DELETE /api/v1/channels/{id} → 204 */
void hub_admin_channels_handle_delete(struct hub_admin_channels *ac, struct hub_http_req *req);
/* POST /api/v1/channels/{id}/check: tries the stored access token against the platform
 * (platforms.*_url through the hub's client: WhatsApp GET /{version}/{phone number id},
 * Instagram GET /{version}/me, Telegram getMe) and answers 200 {"channel","ok","result",
 * "message","details"}: result ok, no_access_token, token_refused, missing_permission,
 * wrong_account, unreachable or platform_error, message what to do in plain words, details
 * what the platform said of the account (its number's display name, username). Audited
 * (channel.check, the result's code). 404 for a channel this hub does not serve (another
 * tenant's, deleted). */
void hub_admin_channels_handle_check(struct hub_admin_channels *ac, struct hub_http_req *req);

#endif
