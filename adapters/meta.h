/* adapters/meta.h - what Meta's platforms (WhatsApp Cloud API, Instagram Messaging) share:
 * the X-Hub-Signature-256 check, the GET verification handshake, and the Graph API's send
 * request and error answers. Pure; knows nothing about either platform's bodies. */
#ifndef HUB_META_H
#define HUB_META_H

#include "adapters/adapter.h"
#include "lib/json.h"

/* X-Hub-Signature-256: sha256=<hex HMAC-SHA256(ch->app_secret, raw body)>, hex of either
 * case, compared in constant time. 0, or -EPERM when the header, the secret or the match
 * is missing. The legacy SHA-1 X-Hub-Signature is never looked at. */
int hub_meta_verify(const struct hub_channel *ch, const struct hub_webhook *wh);

/* GET ?hub.mode=subscribe&hub.challenge=C&hub.verify_token=T: 0 and *reply = C (a slice of
 * the request's query value) when T equals ch->verify_token (compared in constant time);
 * -EPERM for a wrong token or mode, -EBADMSG when a parameter is missing or C is empty or
 * longer than 256 bytes. */
int hub_meta_handshake(const struct hub_channel *ch, const struct hub_webhook *wh,
		       struct hub_str *reply);

/* METHOD /<api_version>/<node><tail> ("/messages", "?fields=name") with "Authorization:
 * Bearer <ch->access_token>" and body (JSON, copied into pool; none when empty). -EINVAL
 * (err never names the token) when api_version, node or the token is missing or has
 * characters that a path or a header cannot carry. */
int hub_meta_req(struct hub_pool *pool, const struct hub_channel *ch, const char *method,
		 const char *api_version, const char *node, const char *tail, struct hub_str body,
		 struct hub_send_req *out, struct hub_err *err) HUB_MUSTCHECK;

/* A Graph API send's answer: the HTTP status's verdict (hub_send_result_from_status)
 * refined by {"error":{"message","code","error_subcode","is_transient","error_data":
 * {"details"}}}: 190 TOKEN; 131047 and 10/2018278 WINDOW; rate limits, temporary errors
 * and is_transient RETRY. The body is left parsed in doc (doc->n is 0 when it is not JSON):
 * on HUB_SEND_OK the adapter reads the new message's id from it. */
void hub_meta_send_result(struct hub_pool *pool, int http_status, struct hub_str retry_after_header,
			  struct hub_str body, struct hub_json_doc *doc,
			  struct hub_send_result *out);

#endif
