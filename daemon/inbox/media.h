/* daemon/inbox/media.h - the files of messages, for the inbox page and the platforms.
 * Inbound attachments stay at the platform: an agent's GET fetches the file with the
 * channel's credentials (WhatsApp media id -> URL -> bytes with the bearer token; Telegram
 * getFile -> /file/bot<token>/<path>; Instagram the CDN URL) through the HTTP client and
 * streams it on as it arrives, never buffered whole (the platform is not read while the
 * browser is slow), within media.max_bytes. Agents' uploads are kept in PostgreSQL large
 * objects (db/migrations/0012_media.sql) and read from there in pieces.
 * Tokens never reach the browser or the log: log lines carry ids, sizes and statuses.
 * Knows nothing about websockets or the outbox (which links the platforms to uploads with
 * hub_medialink_upload_url). */
#ifndef HUB_MEDIA_H
#define HUB_MEDIA_H

struct hub_api;
struct hub_config;
struct hub_http_req;
struct hub_httpc;
struct hub_media;
struct hub_store;

/* store, httpc and api must outlive m; cfg is referenced (its channels' tokens, media.*,
 * and the links' key from auth.jwt_secret). */
struct hub_media *hub_media_new(struct hub_store *store, struct hub_httpc *httpc,
				struct hub_api *api, struct hub_config *cfg);
/* The snapshot for new requests (reload, channels changed); requests in flight keep
 * theirs. */
void hub_media_set_config(struct hub_media *m, struct hub_config *cfg);
/* Frees m (NULL-safe) once the store and the client have ended every call (their
 * callbacks free the requests). */
void hub_media_free(struct hub_media *m);

/* GET /api/v1/messages/{id}/media, with "Authorization: Bearer <token>" or a link of
 * POST .../media/link (?exp=&sig=): the file, streamed with its type, Content-Disposition
 * (inline for jpeg/png/gif/webp, else attachment), X-Content-Type-Options: nosniff and a
 * sandboxing Content-Security-Policy. 401 without a token, 404 for a message of another
 * tenant or without a file, 502 when the platform fails or the file is over
 * media.max_bytes, 504 when it does not answer in time. */
void hub_media_handle_get(struct hub_media *m, struct hub_http_req *req);
/* POST /api/v1/messages/{id}/media/link (Bearer): {"url":"/api/v1/messages/ID/media?exp=
 * E&sig=S","expires_at":E}, valid media.link_ttl_s: what an <img src> can use. */
void hub_media_handle_link(struct hub_media *m, struct hub_http_req *req);
/* POST /api/v1/media?filename=NAME (Bearer), the file as the raw body with its
 * Content-Type: 201 {"id","mime","filename","size","sha256"}. 400 empty or not what its
 * type says, 413 over media.upload_max (images over 5 MiB), 415 a type not sent. */
void hub_media_handle_upload(struct hub_media *m, struct hub_http_req *req);
/* GET /media/{id}/{name}?exp=&sig=: an upload, for the platform that sends it (the link
 * of hub_medialink_upload_url); 403 for a bad or expired link. */
void hub_media_handle_public(struct hub_media *m, struct hub_http_req *req);

#endif
