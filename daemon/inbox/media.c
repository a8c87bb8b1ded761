/* daemon/inbox/media.c - see media.h. A download is one struct job: the row of the file
 * (hub_media_of), then the platform's lookups and the streamed download through the HTTP
 * client, or the large object read in pieces; the job ends when its response is finished
 * and no query or platform call is still running. */
#include "daemon/inbox/media.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "daemon/data/store.h"
#include "daemon/inbox/api.h"
#include "daemon/net/http.h"
#include "daemon/net/httpc.h"
#include "lib/json.h"
#include "lib/jwt.h"
#include "lib/log.h"
#include "lib/medialink.h"
#include "lib/utf8.h"

#define TAG "media"
#define HIGH_WATER (256 * 1024) /* queued to the browser: stop reading the platform */
#define LOW_WATER (64 * 1024)   /* ... and read on once it is down to this */
#define LO_CHUNK (256 * 1024)   /* one lo_get() of an upload */
#define IMAGE_MAX (5 << 20)     /* WhatsApp's and Telegram's (by URL) photo limit */
#define FILENAME_MAX_BYTES 200

/* (channel, kind, ref, mime, filename, size, upload_lo) */
static const char media_of_sql[] =
	"SELECT channel, kind, ref, mime, filename, size, upload_lo "
	"FROM hub_media_of($1, $2::bigint)";
static const char upload_of_sql[] =
	"SELECT NULL, NULL, NULL, mime, filename, size, lo FROM media_uploads WHERE id = $1::bigint";
static const char lo_get_sql[] = "SELECT lo_get($1::oid, $2::bigint, $3::integer)";
static const char upload_sql[] =
	"SELECT id, size, sha256 FROM hub_media_upload($1, $2, $3, $4, $5::bytea)";

enum col { C_CHANNEL, C_KIND, C_REF, C_MIME, C_FILENAME, C_SIZE, C_LO };

struct hub_media {
	struct hub_store *store;
	struct hub_httpc *httpc;
	struct hub_api *api;
	struct hub_config *cfg;
	struct hub_medialink_key key;
};

struct job {
	struct hub_media *m;
	struct hub_http_req *req;    /* NULL once answered */
	struct hub_config *cfg;      /* the snapshot the request started with */
	struct hub_pool pool;        /* the row's strings, URLs, headers */
	struct hub_httpc_call *call; /* a platform request in flight */
	bool querying;               /* a store query in flight */
	bool started;                /* the response's head is out */
	bool waiting;                /* for the browser to drain */
	int64_t id;                  /* the message's or the upload's */
	const struct hub_channel *ch;
	const char *platform;        /* "WhatsApp" ..., for error messages */
	const char *ref, *mime, *filename, *lo;
	int64_t size;                /* -1 when unknown */
	int64_t offset;              /* of the large object, read so far */
	uint64_t got;                /* body bytes passed on */
};

struct hub_media *hub_media_new(struct hub_store *store, struct hub_httpc *httpc,
				struct hub_api *api, struct hub_config *cfg)
{
	struct hub_media *m = hub_xcalloc(1, sizeof(*m));

	m->store = store;
	m->httpc = httpc;
	m->api = api;
	hub_media_set_config(m, cfg);
	return m;
}

void hub_media_set_config(struct hub_media *m, struct hub_config *cfg)
{
	hub_config_unref(m->cfg);
	m->cfg = hub_config_ref(cfg);
	hub_medialink_key_init(&m->key,
			       hub_str_from(hub_config_settings(cfg)->auth.jwt_secret));
}

void hub_media_free(struct hub_media *m)
{
	if (!m)
		return;
	hub_config_unref(m->cfg);
	free(m);
}

static int64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static const struct hub_settings *settings(const struct job *job)
{
	return hub_config_settings(job->cfg);
}

/* A decimal id in 1 .. INT64_MAX, else -1. */
static int64_t parse_id(struct hub_str s)
{
	int64_t v = 0;

	if (!s.len || s.len > 19)
		return -1;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9' || v > (INT64_MAX - (s.p[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s.p[i] - '0');
	}
	return v > 0 ? v : -1;
}

/* ---- jobs ---- */

static struct job *job_new(struct hub_media *m, struct hub_http_req *req, int64_t id)
{
	struct job *job = hub_xcalloc(1, sizeof(*job));

	job->m = m;
	job->req = req;
	job->cfg = hub_config_ref(m->cfg);
	job->id = id;
	job->size = -1;
	hub_pool_init(&job->pool);
	return job;
}

static void job_maybe_free(struct job *job)
{
	if (job->req || job->call || job->querying)
		return;
	hub_pool_release(&job->pool);
	hub_config_unref(job->cfg);
	free(job);
}

/* Ends the response: before its head an error answer, after it a cut connection (the
 * browser sees the file incomplete). Logged without anything the platform said. */
static void job_fail(struct job *job, int status, const char *code, const char *fmt, ...)
	HUB_PRINTF(4, 5);
static void job_fail(struct job *job, int status, const char *code, const char *fmt, ...)
{
	struct hub_http_req *req = job->req;
	char msg[256];
	va_list ap;

	if (!req)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 " id=%" PRId64 ": %d %s after %" PRIu64
		     " bytes", hub_http_req_conn_id(req), hub_http_req_id(req), job->id, status,
		     code, job->got);
	job->req = NULL;
	if (job->started) {
		hub_http_req_end(req, false);
		return;
	}
	hub_http_req_error(req, status, code, "%s", msg);
}

static void job_done(struct job *job)
{
	struct hub_http_req *req = job->req;

	hub_log_debug(TAG, "conn=%" PRIu64 " req=%" PRIu64 " id=%" PRId64 ": %" PRIu64 " bytes",
		      hub_http_req_conn_id(req), hub_http_req_id(req), job->id, job->got);
	job->req = NULL;
	hub_http_req_end(req, true);
}

/* ---- the response ---- */

/* The type to send: the platform's when it is a plain "type/subtype", else the stored
 * one, else application/octet-stream. Lower case, without parameters. */
static const char *safe_type(struct job *job, struct hub_str given)
{
	const char *stored = job->mime;
	size_t n = 0;
	bool slash = false;
	char *out;

	while (n < given.len && given.p[n] != ';' && given.p[n] != ' ')
		n++;
	if (n == 0 || n > 100)
		return stored && *stored ? stored : "application/octet-stream";
	out = hub_pool_alloc(&job->pool, n + 1);
	for (size_t i = 0; i < n; i++) {
		char c = given.p[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '/' && !slash && i > 0 && i + 1 < n) {
			slash = true;
		} else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
			     c == '+' || c == '-')) {
			return stored && *stored ? stored : "application/octet-stream";
		}
		out[i] = c;
	}
	out[n] = '\0';
	return slash ? out : (stored && *stored ? stored : "application/octet-stream");
}

/* Shown in the page (an <img>); anything else is only downloaded: a file of a customer's
 * (HTML, SVG ...) must never run as a page of the hub's origin. */
static bool inline_type(const char *t)
{
	return !strcmp(t, "image/jpeg") || !strcmp(t, "image/png") || !strcmp(t, "image/gif") ||
	       !strcmp(t, "image/webp");
}

/* RFC 6266: an ASCII fallback name and the UTF-8 one (RFC 8187). */
static const char *disposition(struct job *job, const char *type)
{
	const char *name = job->filename && *job->filename ? job->filename : "file";
	struct hub_buf b = HUB_BUF_INIT;
	const char *out;

	hub_buf_adds(&b, inline_type(type) ? "inline" : "attachment");
	hub_buf_adds(&b, "; filename=\"");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		hub_buf_addch(&b, (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' &&
				   *p != '%') ? *p : '_');
	hub_buf_adds(&b, "\"; filename*=UTF-8''");
	hub_buf_addpct(&b, name, "!#$&+^`|"); /* RFC 8187 attr-char */
	out = hub_pool_strndup(&job->pool, b.p, b.len);
	hub_buf_release(&b);
	return out;
}

static void job_start(struct job *job, const char *type, int64_t length)
{
	struct hub_http_req *req = job->req;

	hub_http_req_add_header(req, "Content-Disposition", disposition(job, type));
	hub_http_req_add_header(req, "X-Content-Type-Options", "nosniff");
	hub_http_req_add_header(req, "Content-Security-Policy", "default-src 'none'; sandbox");
	hub_http_req_add_header(req, "Cache-Control", "private, no-store");
	hub_http_req_start(req, 200, type, length);
	job->started = true;
}

static void lo_next(struct job *job);

/* The browser took enough (or went away): read on. */
static void on_drained(struct hub_http_req *req, void *data)
{
	struct job *job = data;

	job->waiting = false;
	if (hub_http_req_write(req, HUB_STR_NULL) < 0) {
		if (job->call) {
			hub_httpc_call_cancel(job->call);
			job->call = NULL;
		}
		job_fail(job, 499, "client_gone", "the client went away");
		job_maybe_free(job);
		return;
	}
	if (job->lo)
		lo_next(job);
	else if (job->call)
		hub_httpc_call_resume(job->call);
}

/* Passes piece on; -EPIPE when the browser is gone. Above the high-water mark the source
 * waits (the platform's call paused, or the next lo_get not sent) until on_drained. */
static int job_write(struct job *job, struct hub_str piece)
{
	if (hub_http_req_write(job->req, piece) < 0)
		return -EPIPE;
	job->got += piece.len;
	if (hub_http_req_queued(job->req) > HIGH_WATER) {
		job->waiting = true;
		if (job->call)
			hub_httpc_call_pause(job->call);
		hub_http_req_on_drain(job->req, LOW_WATER, on_drained, job);
	}
	return 0;
}

/* ---- an upload, from its large object ---- */

static void on_lo_chunk(int status, PGresult *res, void *data)
{
	struct job *job = data;
	struct hub_str piece;

	job->querying = false;
	if (!job->req) {
		job_maybe_free(job);
		return;
	}
	if (status < 0 || PQntuples(res) != 1 || PQgetlength(res, 0, 0) == 0) {
		hub_log_warn(TAG, "id=%" PRId64 ": reading the upload failed: %s", job->id,
			     status < 0 ? strerror(-status) : "short large object");
		job_fail(job, 503, "database_unavailable", "the file could not be read");
		job_maybe_free(job);
		return;
	}
	piece = (struct hub_str){ PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0) };
	job->offset += (int64_t)piece.len;
	if (job_write(job, piece) < 0) {
		job_fail(job, 499, "client_gone", "the client went away");
	} else if (!job->waiting) {
		lo_next(job);
		return;
	}
	job_maybe_free(job);
}

static void lo_next(struct job *job)
{
	char off[24], len[16];
	const char *params[3] = { job->lo, off, len };
	int64_t left = job->size - job->offset;
	int ret;

	if (left <= 0) {
		job_done(job);
		job_maybe_free(job);
		return;
	}
	snprintf(off, sizeof(off), "%" PRId64, job->offset);
	snprintf(len, sizeof(len), "%d", left < LO_CHUNK ? (int)left : LO_CHUNK);
	ret = hub_store_query_bin(job->m->store, lo_get_sql, 3, params, NULL, true, on_lo_chunk,
				  job);
	if (ret < 0) {
		job_fail(job, 503, "database_unavailable", "the file could not be read");
		job_maybe_free(job);
		return;
	}
	job->querying = true;
}

/* ---- a file at the platform ---- */

/* A call that ended without the file. */
static void platform_failed(struct job *job, int status)
{
	if (status == -ETIMEDOUT)
		job_fail(job, 504, "platform_timeout", "%s did not send the file in time",
			 job->platform);
	else if (status == -EMSGSIZE)
		job_fail(job, 502, "too_large", "the file is larger than media.max_bytes (%zu)",
			 settings(job)->media.max_bytes);
	else
		job_fail(job, 502, "platform_unreachable", "could not fetch the file from %s: %s",
			 job->platform, strerror(-status));
}

static int on_file_head(const struct hub_httpc_resp *resp, void *data)
{
	struct job *job = data;
	struct hub_str cl = hub_httpc_resp_header(resp, "Content-Length");
	int64_t length = cl.p ? parse_id(cl) : -1;
	size_t max = settings(job)->media.max_bytes;

	if (!job->req)
		return -ECANCELED;
	if (resp->status != 200) {
		job_fail(job, 502, "platform_error", "%s answered %d for the file", job->platform,
			 resp->status);
		return -EPROTO;
	}
	if (cl.p && cl.len == 1 && cl.p[0] == '0')
		length = 0;
	if (length > 0 && (uint64_t)length > max) {
		job_fail(job, 502, "too_large", "the file is %" PRId64 " bytes, over media.max_bytes "
			 "(%zu)", length, max);
		return -EMSGSIZE;
	}
	job_start(job, safe_type(job, hub_httpc_resp_header(resp, "Content-Type")), length);
	return 0;
}

static int on_file_body(struct hub_str piece, void *data)
{
	struct job *job = data;

	if (!job->req)
		return -ECANCELED;
	if (job->got + piece.len > settings(job)->media.max_bytes) {
		job_fail(job, 502, "too_large", "the file is over media.max_bytes");
		return -EMSGSIZE;
	}
	if (job_write(job, piece) < 0) {
		job_fail(job, 499, "client_gone", "the client went away");
		return -EPIPE;
	}
	return 0;
}

static void on_file_done(int status, const struct hub_httpc_resp *resp, void *data)
{
	struct job *job = data;

	(void)resp;
	job->call = NULL;
	if (job->req && status < 0)
		platform_failed(job, status);
	else if (job->req)
		job_done(job);
	job_maybe_free(job);
}

/* GET url (with the channel's bearer token when bearer) through the client: streamed to
 * the browser when stream, else cb gets the answer whole (a lookup). */
static void platform_get(struct job *job, const char *url, bool bearer, bool stream,
			 hub_httpc_cb *cb)
{
	const struct hub_settings *s = settings(job);
	struct hub_httpc_header auth = {
		"Authorization", hub_pool_sprintf(&job->pool, "Bearer %s", job->ch->access_token)
	};
	struct hub_httpc_req r = {
		.method = "GET",
		.url = url,
		.headers = &auth,
		.nheaders = bearer,
		.connect_timeout_ms = s->platforms.connect_timeout_ms,
		.response_timeout_ms = s->platforms.response_timeout_ms,
		.total_timeout_ms = s->media.timeout_ms,
		.retry_on_stale = true,
		.on_head = stream ? on_file_head : NULL,
		.on_body = stream ? on_file_body : NULL,
	};
	int ret = hub_httpc_request(job->m->httpc, &r, cb, job, &job->call);

	if (ret < 0) {
		job->call = NULL;
		platform_failed(job, ret == -EINVAL ? -EBADMSG : ret);
	}
}

/* A lookup's JSON answer (WhatsApp's media URL, Telegram's getFile), or NULL after
 * answering the browser. */
static struct hub_json_doc *lookup_answer(struct job *job, int status,
					  const struct hub_httpc_resp *resp, const char *what)
{
	struct hub_json_doc *doc = hub_pool_alloc(&job->pool, sizeof(*doc));
	struct hub_err err = HUB_ERR_INIT;

	if (status < 0) {
		platform_failed(job, status);
		return NULL;
	}
	if (resp->status != 200) {
		job_fail(job, 502, "platform_error", "%s answered %d to %s", job->platform,
			 resp->status, what);
		return NULL;
	}
	if (hub_json_parse(&job->pool, resp->body, 256, doc, &err) < 0) {
		job_fail(job, 502, "platform_error", "%s answered %s with malformed JSON",
			 job->platform, what);
		return NULL;
	}
	return doc;
}

/* A string member copied into the pool, or NULL. */
static const char *json_cstr(struct job *job, const struct hub_json_doc *doc, int obj,
			     const char *key)
{
	struct hub_str s;

	if (hub_json_string(doc, hub_json_get(doc, obj, key), &job->pool, &s) < 0 || !s.len ||
	    memchr(s.p, '\0', s.len))
		return NULL;
	return hub_pool_strndup(&job->pool, s.p, s.len);
}

/* A file size the platform gave is checked before the download. */
static bool size_ok(struct job *job, const struct hub_json_doc *doc, int obj)
{
	int64_t size;

	if (hub_json_int64(doc, hub_json_get(doc, obj, "file_size"), &size) == 0 && size > 0 &&
	    (uint64_t)size > settings(job)->media.max_bytes) {
		job_fail(job, 502, "too_large", "the file is %" PRId64 " bytes, over "
			 "media.max_bytes (%zu)", size, settings(job)->media.max_bytes);
		return false;
	}
	return true;
}

/* WhatsApp: GET /{version}/{media id} -> {"url","mime_type","file_size"}; the url is
 * fetched with the same bearer token (it is valid for 5 minutes). */
static void on_wa_info(int status, const struct hub_httpc_resp *resp, void *data)
{
	struct job *job = data;
	struct hub_json_doc *doc;
	const char *url, *mime;

	job->call = NULL;
	if (job->req && (doc = lookup_answer(job, status, resp, "the media lookup"))) {
		url = json_cstr(job, doc, 0, "url");
		mime = json_cstr(job, doc, 0, "mime_type");
		if (mime)
			job->mime = mime;
		if (!url)
			job_fail(job, 502, "platform_error", "WhatsApp gave no URL for the media");
		else if (size_ok(job, doc, 0))
			platform_get(job, url, true, true, on_file_done);
	}
	job_maybe_free(job);
}

/* s %-encoded (and '/' kept when keep_slash), in the pool. */
static const char *pct(struct job *job, const char *s, bool keep_slash)
{
	struct hub_buf b = HUB_BUF_INIT;
	const char *out;

	hub_buf_addpct(&b, s, keep_slash ? "/" : "");
	out = hub_pool_strndup(&job->pool, b.p ? b.p : "", b.len);
	hub_buf_release(&b);
	return out;
}

/* Telegram: getFile -> {"ok":true,"result":{"file_path","file_size"}}, then
 * /file/bot<token>/<file_path> (bots may download up to 20 MB). */
static void on_tg_file(int status, const struct hub_httpc_resp *resp, void *data)
{
	struct job *job = data;
	struct hub_json_doc *doc;
	const char *path;
	int result;

	job->call = NULL;
	if (job->req && (doc = lookup_answer(job, status, resp, "getFile"))) {
		result = hub_json_get(doc, 0, "result");
		path = json_cstr(job, doc, result, "file_path");
		if (!path || strstr(path, ".."))
			job_fail(job, 502, "platform_error", "Telegram gave no file path");
		else if (size_ok(job, doc, result))
			platform_get(job, hub_pool_sprintf(&job->pool, "%s/file/bot%s/%s",
							   settings(job)->platforms.url[job->ch->kind],
							   job->ch->access_token, pct(job, path, true)),
				     false, true, on_file_done);
	}
	job_maybe_free(job);
}

static void fetch_from_platform(struct job *job, const char *channel)
{
	const struct hub_settings *s = settings(job);

	job->ch = hub_config_channel(job->cfg, hub_str_from(channel));
	if (!job->ch || !job->ch->enabled) {
		job_fail(job, 502, "channel_unavailable",
			 "the message's channel is not served here (removed or disabled)");
		return;
	}
	if (job->ch->kind == HUB_CHANNEL_WEB) { /* the website chat is text only */
		job_fail(job, 502, "channel_unavailable", "the website chat carries no files");
		return;
	}
	job->platform = job->ch->kind == HUB_CHANNEL_WHATSAPP ? "WhatsApp" :
			job->ch->kind == HUB_CHANNEL_TELEGRAM ? "Telegram" : "Instagram";
	if (job->ch->kind != HUB_CHANNEL_INSTAGRAM &&
	    (!job->ch->access_token || !*job->ch->access_token)) {
		job_fail(job, 502, "channel_unavailable",
			 "the channel has no access token to fetch files with");
		return;
	}
	switch (job->ch->kind) {
	case HUB_CHANNEL_WHATSAPP:
		platform_get(job, hub_pool_sprintf(&job->pool, "%s/%s/%s",
						   s->platforms.url[HUB_CHANNEL_WHATSAPP],
						   s->platforms.meta_api_version,
						   pct(job, job->ref, false)),
			     true, false, on_wa_info);
		break;
	case HUB_CHANNEL_TELEGRAM:
		platform_get(job, hub_pool_sprintf(&job->pool, "%s/bot%s/getFile?file_id=%s",
						   s->platforms.url[HUB_CHANNEL_TELEGRAM],
						   job->ch->access_token, pct(job, job->ref, false)),
			     false, false, on_tg_file);
		break;
	case HUB_CHANNEL_INSTAGRAM:
		/* the CDN URL of the webhook (signed by Meta, expiring): no token */
		platform_get(job, job->ref, false, true, on_file_done);
		break;
	case HUB_CHANNEL_WEB:
		break;
	}
}

/* The file's row: (channel, kind, ref, mime, filename, size, upload_lo). */
static void on_media_row(int status, PGresult *res, void *data)
{
	struct job *job = data;
	const char *channel;

	job->querying = false;
	if (!job->req) {
		job_maybe_free(job);
		return;
	}
	if (status < 0) {
		struct hub_http_req *req = job->req;

		job->req = NULL;
		hub_api_store_error(req, status);
		job_maybe_free(job);
		return;
	}
	if (PQntuples(res) != 1) {
		job_fail(job, 404, "no_media", "no such message with a file");
		job_maybe_free(job);
		return;
	}
#define COL(c) (PQgetisnull(res, 0, (c)) ? NULL : hub_pool_strdup(&job->pool, \
								  PQgetvalue(res, 0, (c))))
	channel = COL(C_CHANNEL);
	job->ref = COL(C_REF);
	job->mime = COL(C_MIME);
	job->filename = COL(C_FILENAME);
	job->lo = COL(C_LO);
	if (!PQgetisnull(res, 0, C_SIZE))
		job->size = strtoll(PQgetvalue(res, 0, C_SIZE), NULL, 10);
#undef COL
	if (job->lo) {
		job_start(job, safe_type(job, HUB_STR_NULL), job->size);
		lo_next(job);
		return;
	}
	if (job->size > 0 && (uint64_t)job->size > settings(job)->media.max_bytes)
		job_fail(job, 502, "too_large", "the file is %" PRId64 " bytes, over "
			 "media.max_bytes (%zu)", job->size, settings(job)->media.max_bytes);
	else if (channel && job->ref)
		fetch_from_platform(job, channel);
	else
		job_fail(job, 404, "no_media", "no such message with a file");
	job_maybe_free(job);
}

static void job_query(struct job *job, const char *sql, int n, const char *const *params)
{
	int ret = hub_store_query(job->m->store, sql, n, params, on_media_row, job);

	if (ret < 0) {
		struct hub_http_req *req = job->req;

		job->req = NULL;
		hub_api_store_error(req, ret);
		job_maybe_free(job);
		return;
	}
	job->querying = true;
}

/* A signed link in the query (?exp=&sig=): 0 when present and good; 1 when absent; or
 * answers 403 and returns -EPERM. */
static int check_link(struct hub_media *m, struct hub_http_req *req, const char *purpose,
		      int64_t id)
{
	struct hub_str exp = hub_http_req_query(req, "exp"), sig = hub_http_req_query(req, "sig");
	int ret;

	if (!exp.p && !sig.p)
		return 1;
	ret = hub_medialink_verify(&m->key, purpose, id, exp, sig, now_s());
	if (ret == -ETIMEDOUT)
		hub_http_req_error(req, 403, "link_expired", "the link has expired: ask for a new one");
	else if (ret < 0)
		hub_http_req_error(req, 403, "bad_link", "the link's signature does not match");
	return ret < 0 ? -EPERM : 0;
}

void hub_media_handle_get(struct hub_media *m, struct hub_http_req *req)
{
	int64_t id = parse_id(hub_http_req_param(req, "id"));
	struct hub_jwt_claims claims = { 0 };
	const char *params[2];
	char id_s[24];
	int ret = check_link(m, req, "msg", id);

	if (ret < 0 || (ret == 1 && hub_api_authenticate(m->api, req, &claims) < 0))
		return;
	if (id < 0) {
		hub_http_req_error(req, 404, "no_media", "no such message with a file");
		return;
	}
	snprintf(id_s, sizeof(id_s), "%" PRId64, id);
	params[0] = ret == 1 ? claims.tid : NULL; /* a link was issued to the tenant's agent */
	params[1] = id_s;
	job_query(job_new(m, req, id), media_of_sql, 2, params);
}

void hub_media_handle_public(struct hub_media *m, struct hub_http_req *req)
{
	int64_t id = parse_id(hub_http_req_param(req, "id"));
	const char *params[1];
	char id_s[24];
	int ret = check_link(m, req, "upload", id);

	if (ret < 0)
		return;
	if (ret == 1 || id < 0) {
		hub_http_req_error(req, 403, "bad_link", "a signed link is required");
		return;
	}
	snprintf(id_s, sizeof(id_s), "%" PRId64, id);
	params[0] = id_s;
	job_query(job_new(m, req, id), upload_of_sql, 1, params);
}

/* ---- links ---- */

struct link_req {
	struct hub_media *m;
	struct hub_http_req *req;
	int64_t id;
};

static void on_link_row(int status, PGresult *res, void *data)
{
	struct link_req *lr = data;
	const struct hub_settings *s = hub_config_settings(lr->m->cfg);
	int64_t exp = now_s() + s->media.link_ttl_s;
	struct hub_buf body = HUB_BUF_INIT;

	if (status < 0) {
		hub_api_store_error(lr->req, status);
		return;
	}
	if (PQntuples(res) != 1) {
		hub_http_req_error(lr->req, 404, "no_media", "no such message with a file");
		return;
	}
	hub_buf_addf(&body, "{\"url\":\"/api/v1/messages/%" PRId64 "/media?", lr->id);
	hub_medialink_sign(&lr->m->key, "msg", lr->id, exp, &body);
	hub_buf_addf(&body, "\",\"expires_at\":%" PRId64 "}", exp);
	hub_http_req_add_header(lr->req, "Cache-Control", "no-store");
	hub_http_req_respond(lr->req, 200, "application/json", hub_buf_str(&body));
	hub_buf_release(&body);
}

void hub_media_handle_link(struct hub_media *m, struct hub_http_req *req)
{
	struct link_req *lr = hub_pool_alloc(hub_http_req_pool(req), sizeof(*lr));
	struct hub_jwt_claims claims;
	const char *params[2];
	char id_s[24];
	int ret;

	if (hub_api_authenticate(m->api, req, &claims) < 0)
		return;
	lr->m = m;
	lr->req = req;
	lr->id = parse_id(hub_http_req_param(req, "id"));
	if (lr->id < 0) {
		hub_http_req_error(req, 404, "no_media", "no such message with a file");
		return;
	}
	snprintf(id_s, sizeof(id_s), "%" PRId64, lr->id);
	params[0] = claims.tid;
	params[1] = id_s;
	ret = hub_store_query(m->store, media_of_sql, 2, params, on_link_row, lr);
	if (ret < 0)
		hub_api_store_error(req, ret);
}

/* ---- uploads ---- */

/* What agents may send: the type, a name's extension, and what its bytes start with. */
static const struct upload_type {
	const char *mime, *ext;
	const char *magic; /* NULL: UTF-8 text without NUL */
	size_t magic_len, magic_off;
	bool image;        /* sent as a photo: at most IMAGE_MAX */
} upload_types[] = {
	{ "image/jpeg", "jpg", "\xff\xd8\xff", 3, 0, true },
	{ "image/png", "png", "\x89PNG\r\n\x1a\n", 8, 0, true },
	{ "image/webp", "webp", "WEBP", 4, 8, false },
	{ "application/pdf", "pdf", "%PDF-", 5, 0, false },
	{ "application/msword", "doc", "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8, 0, false },
	{ "application/vnd.ms-excel", "xls", "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8, 0, false },
	{ "application/vnd.ms-powerpoint", "ppt", "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8, 0,
	  false },
	{ "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx",
	  "PK\x03\x04", 4, 0, false },
	{ "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx",
	  "PK\x03\x04", 4, 0, false },
	{ "application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx",
	  "PK\x03\x04", 4, 0, false },
	{ "text/plain", "txt", NULL, 0, 0, false },
	{ "text/csv", "csv", NULL, 0, 0, false },
};

static const struct upload_type *upload_type_of(struct hub_str ctype)
{
	size_t n = 0;

	while (n < ctype.len && ctype.p[n] != ';' && ctype.p[n] != ' ')
		n++;
	for (size_t i = 0; i < HUB_ARRAY_SIZE(upload_types); i++)
		if (hub_str_caseeqs((struct hub_str){ ctype.p, n }, upload_types[i].mime))
			return &upload_types[i];
	return NULL;
}

static bool bytes_match(const struct upload_type *t, struct hub_str body)
{
	if (!t->magic)
		return hub_utf8_valid(body.p, body.len) && !memchr(body.p, '\0', body.len);
	if (t->magic_off && (body.len < 4 || memcmp(body.p, "RIFF", 4)))
		return false;
	return body.len >= t->magic_off + t->magic_len &&
	       !memcmp(body.p + t->magic_off, t->magic, t->magic_len);
}

/* The name as given, without any folder, control character or quote: NULL when it is not
 * UTF-8 or too long; "file.<ext>" when nothing is left. */
static const char *clean_filename(struct hub_pool *pool, struct hub_str given,
				  const struct upload_type *t)
{
	const char *slash;
	char *out;
	size_t n = 0;

	if (given.len > FILENAME_MAX_BYTES || !hub_utf8_valid(given.p, given.len))
		return NULL;
	while ((slash = memchr(given.p, '/', given.len)) ||
	       (slash = memchr(given.p, '\\', given.len))) {
		given.len -= (size_t)(slash + 1 - given.p);
		given.p = slash + 1;
	}
	out = hub_pool_alloc(pool, given.len + 1);
	for (size_t i = 0; i < given.len; i++)
		if ((unsigned char)given.p[i] >= 0x20 && given.p[i] != 0x7f && given.p[i] != '"')
			out[n++] = given.p[i];
	out[n] = '\0';
	while (n && (out[0] == '.' || out[0] == ' ')) { /* no hidden or blank names */
		out++;
		n--;
	}
	return n ? out : hub_pool_sprintf(pool, "file.%s", t->ext);
}

struct upload_req {
	struct hub_http_req *req;
	const char *mime, *filename;
};

static void on_uploaded(int status, PGresult *res, void *data)
{
	struct upload_req *ur = data;
	struct hub_buf body = HUB_BUF_INIT;
	struct hub_jw w;

	if (status < 0 || PQntuples(res) != 1) {
		hub_api_store_error(ur->req, status < 0 ? status : -EPROTO);
		return;
	}
	hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 ": upload %s stored, %s bytes",
		     hub_http_req_conn_id(ur->req), hub_http_req_id(ur->req), PQgetvalue(res, 0, 0),
		     PQgetvalue(res, 0, 1));
	hub_jw_init(&w, &body);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "id");
	hub_jw_int(&w, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
	hub_jw_key(&w, "mime");
	hub_jw_cstr(&w, ur->mime);
	hub_jw_key(&w, "filename");
	hub_jw_cstr(&w, ur->filename);
	hub_jw_key(&w, "size");
	hub_jw_int(&w, strtoll(PQgetvalue(res, 0, 1), NULL, 10));
	hub_jw_key(&w, "sha256");
	hub_jw_cstr(&w, PQgetvalue(res, 0, 2));
	hub_jw_obj_close(&w);
	hub_http_req_add_header(ur->req, "Cache-Control", "no-store");
	hub_http_req_respond(ur->req, 201, "application/json", hub_buf_str(&body));
	hub_buf_release(&body);
}

void hub_media_handle_upload(struct hub_media *m, struct hub_http_req *req)
{
	const struct hub_settings *s = hub_config_settings(m->cfg);
	struct upload_req *ur = hub_pool_alloc(hub_http_req_pool(req), sizeof(*ur));
	struct hub_str body = hub_http_req_body(req), name;
	const struct upload_type *t;
	struct hub_jwt_claims claims;
	const char *params[5];
	int lengths[5] = { -1, -1, -1, -1, (int)body.len };
	int ret;

	if (hub_api_authenticate(m->api, req, &claims) < 0)
		return;
	t = upload_type_of(hub_http_req_header(req, "Content-Type"));
	if (!t) {
		hub_http_req_error(req, 415, "unsupported_type", "send a JPEG, PNG or WebP image, "
				   "a PDF, Word, Excel or PowerPoint document, or plain text or "
				   "CSV, with its Content-Type");
		return;
	}
	if (!body.len) {
		hub_http_req_error(req, 400, "empty_file", "the file is empty");
		return;
	}
	if (body.len > s->media.upload_max || (t->image && body.len > IMAGE_MAX)) {
		hub_http_req_error(req, 413, "too_large", "the file is %zu bytes; at most %zu%s",
				   body.len, t->image ? (size_t)IMAGE_MAX : s->media.upload_max,
				   t->image ? " for a photo (send it as a document)" : "");
		return;
	}
	if (!bytes_match(t, body)) {
		hub_http_req_error(req, 400, "type_mismatch", "the bytes are not a %s file", t->mime);
		return;
	}
	if (hub_http_req_query_get(req, "filename", &name) == -EBADMSG ||
	    !(ur->filename = clean_filename(hub_http_req_pool(req), name, t))) {
		hub_http_req_error(req, 400, "bad_filename", "filename must be UTF-8 of at most %d "
				   "bytes, %%-encoded in the query", FILENAME_MAX_BYTES);
		return;
	}
	ur->req = req;
	ur->mime = t->mime;
	params[0] = claims.tid;
	params[1] = claims.sub;
	params[2] = t->mime;
	params[3] = ur->filename;
	params[4] = body.p;
	ret = hub_store_query_bin(m->store, upload_sql, 5, params, lengths, false, on_uploaded, ur);
	if (ret < 0)
		hub_api_store_error(req, ret);
}
