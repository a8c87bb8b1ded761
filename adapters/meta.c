/* adapters/meta.c - what the WhatsApp and Instagram adapters share: the X-Hub-Signature-256
 * HMAC, the GET verification handshake, the Graph API send request and its error answers.
 * Pure: knows nothing about HTTP beyond the header and query lookups of struct hub_webhook. */
#include "adapters/meta.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/crypto.h"

#define META_SIG_PREFIX "sha256="

int hub_meta_verify(const struct hub_channel *ch, const struct hub_webhook *wh)
{
	struct hub_str sig = wh->header(wh->req, "X-Hub-Signature-256");
	unsigned char want[HUB_SHA256_LEN], got[HUB_SHA256_LEN];

	if (!ch->app_secret || !*ch->app_secret || !sig.p ||
	    !hub_str_startswith(sig, META_SIG_PREFIX))
		return -EPERM;
	sig.p += sizeof(META_SIG_PREFIX) - 1;
	sig.len -= sizeof(META_SIG_PREFIX) - 1;
	if (hub_hex_decode(sig, got, sizeof(got)) < 0)
		return -EPERM;
	hub_hmac_sha256(hub_str_from(ch->app_secret), wh->body, want);
	return hub_ct_equal(want, got, sizeof(want)) ? 0 : -EPERM;
}

int hub_meta_handshake(const struct hub_channel *ch, const struct hub_webhook *wh,
		       struct hub_str *reply)
{
	struct hub_str mode = wh->query(wh->req, "hub.mode");
	struct hub_str token = wh->query(wh->req, "hub.verify_token");
	struct hub_str challenge = wh->query(wh->req, "hub.challenge");

	if (!mode.p || !token.p || !challenge.p || !challenge.len || challenge.len > 256)
		return -EBADMSG;
	if (!hub_str_eqs(mode, "subscribe") || !ch->verify_token || !*ch->verify_token ||
	    !hub_secret_equal(token, ch->verify_token))
		return -EPERM;
	*reply = challenge;
	return 0;
}

/* A path segment: letters, digits, '.', '_', '-', starting with a letter or digit (so
 * never "." or ".."). */
static bool path_segment(const char *s)
{
	if (!s || !((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= 'A' && *s <= 'Z')))
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* A token for a header: visible ASCII, no space. */
static bool header_token(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e)
			return false;
	return true;
}

int hub_meta_req(struct hub_pool *pool, const struct hub_channel *ch, const char *method,
		 const char *api_version, const char *node, const char *tail, struct hub_str body,
		 struct hub_send_req *out, struct hub_err *err)
{
	struct hub_buf b = HUB_BUF_INIT;

	if (!path_segment(api_version))
		return hub_err_set(err, -EINVAL, "channel %s: bad Graph API version", ch->id);
	if (!path_segment(node))
		return hub_err_set(err, -EINVAL, "channel %s: bad account id", ch->id);
	if (!header_token(ch->access_token))
		return hub_err_set(err, -EINVAL, "channel %s: no usable access token", ch->id);
	memset(out, 0, sizeof(*out));
	out->method = method;
	hub_buf_addf(&b, "/%s/%s%s", api_version, node, tail);
	out->path = hub_pool_strcopy(pool, hub_buf_str(&b));
	hub_buf_reset(&b);
	hub_buf_addf(&b, "Bearer %s", ch->access_token);
	out->authorization = hub_pool_strcopy(pool, hub_buf_str(&b));
	if (body.len) {
		out->content_type = HUB_STR("application/json");
		out->body = hub_pool_strcopy(pool, body);
	}
	hub_buf_release(&b);
	return 0;
}

/* Graph API codes that mean "later": rate limits and temporary failures. */
static const int64_t retry_codes[] = {
	1,      /* API Unknown: possibly a server error */
	2,      /* API Service: temporarily unavailable */
	4,      /* the app's call rate limit */
	17,     /* the user's call rate limit */
	32,     /* the page's call rate limit */
	341,    /* the application's limit */
	613,    /* a call rate limit */
	80007,  /* the WhatsApp Business Account's rate limit */
	130429, /* the number's throughput (80 messages/s by default) */
	131000, /* something went wrong: try again */
	131016, /* service unavailable */
	131048, /* spam rate limit */
	131056, /* pair rate limit: too many messages to one user */
	131057, /* the account is in maintenance */
	133004, /* server temporarily unavailable */
};

#define META_RESULT_MAX_TOKENS 2000 /* an answer is a few dozen tokens */

void hub_meta_send_result(struct hub_pool *pool, int http_status, struct hub_str retry_after_header,
			  struct hub_str body, struct hub_json_doc *doc,
			  struct hub_send_result *out)
{
	struct hub_str message = HUB_STR_NULL, details = HUB_STR_NULL;
	struct hub_buf b = HUB_BUF_INIT;
	int64_t code = 0, subcode = 0;
	bool transient = false;
	char num[48];
	int e, len;

	hub_send_result_from_status(out, pool, http_status, retry_after_header);
	if (hub_json_parse(pool, body, META_RESULT_MAX_TOKENS, doc, NULL) < 0)
		return; /* not JSON (a proxy's error page): the status says it all */
	e = hub_json_get(doc, 0, "error");
	if (out->verdict == HUB_SEND_OK || !hub_json_is(doc, e, HUB_JSON_OBJECT) ||
	    hub_json_int64(doc, hub_json_get(doc, e, "code"), &code) < 0)
		return;
	if (hub_json_int64(doc, hub_json_get(doc, e, "error_subcode"), &subcode) < 0)
		subcode = 0;
	if (hub_json_bool(doc, hub_json_get(doc, e, "is_transient"), &transient) < 0)
		transient = false;
	if (code == 190) {
		out->verdict = HUB_SEND_TOKEN; /* expired or revoked, whatever the subcode */
	} else if (code == 131047 || (code == 10 && subcode == 2018278)) {
		out->verdict = HUB_SEND_WINDOW; /* WhatsApp's; Instagram's */
	} else {
		for (size_t i = 0; i < HUB_ARRAY_SIZE(retry_codes); i++)
			transient = transient || code == retry_codes[i];
		if (transient)
			out->verdict = HUB_SEND_RETRY;
	}
	if (hub_json_string(doc, hub_json_get(doc, e, "message"), pool, &message) < 0)
		message = HUB_STR_NULL;
	if (hub_json_string(doc, hub_json_path(doc, e, "error_data", "details", NULL), pool,
			    &details) < 0)
		details = HUB_STR_NULL;
	hub_buf_addstr(&b, message);
	if (details.len && !hub_str_eq(details, message)) {
		hub_buf_adds(&b, b.len ? ": " : "");
		hub_buf_addstr(&b, details);
	}
	if (subcode)
		len = snprintf(num, sizeof(num), "%lld/%lld", (long long)code, (long long)subcode);
	else
		len = snprintf(num, sizeof(num), "%lld", (long long)code);
	hub_send_result_set_error(out, pool, (struct hub_str){ num, (size_t)len }, hub_buf_str(&b));
	hub_buf_release(&b);
}
