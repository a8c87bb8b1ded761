/* daemon/admin/channels.c - see channels.h. Each request: authenticate (admin), validate
 * the body into a JSON object of the fields to store (secrets sealed, their hints beside),
 * one SQL function call, and the answer built around the JSON the database wrote. Log lines
 * carry ids and field names, never a value. */
#include "daemon/admin/channels.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assistant/settings.h"
#include "config/config.h"
#include "daemon/data/channels.h"
#include "daemon/data/store.h"
#include "daemon/inbox/api.h"
#include "daemon/net/http.h"
#include "daemon/net/httpc.h"
#include "lib/channel.h"
#include "lib/crypto.h"
#include "lib/json.h"
#include "lib/jwt.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/webcfg.h"

#define TAG "admin"
#define BODY_TOKENS 512 /* a channel and its assistant: a few dozen fields, 50 phrases */
#define NAME_MAX_BYTES 200

struct hub_admin_channels {
	struct hub_store *store;
	struct hub_api *api;
	struct hub_httpc *httpc;
	struct hub_config *cfg;
};

enum op { OP_LIST, OP_GET, OP_CREATE, OP_UPDATE, OP_ENABLE, OP_DISABLE, OP_DELETE,
	  OP_CHECK };

/* One request waiting for its query; allocated from the request's pool. */
struct admin_req {
	struct hub_admin_channels *ac;
	struct hub_http_req *req;
	enum op op;
	struct hub_jwt_claims claims;
	char addr[64];
	const char *id;           /* the channel's id (path or body) */
	const char *verify_token; /* create: the generated token, answered once */
	const char *identity_secret; /* create, web: the generated one, answered once */
	const char *sealed_verify;
	struct hub_buf set;       /* the fields to store, as JSON */
	struct hub_buf fields;    /* their names, as a SQL text[] literal's JSON twin */
	struct hub_buf errors;    /* field errors: "name":"why", ... */
	struct hub_buf ai;        /* the assistant's settings to set, without braces */
	bool has_ai;              /* the body has "ai" */
	const char *ai_key;       /* ... with this API key (clear, to seal) */
	bool ai_key_clear;        /* ... or "api_key": null */
	const char *kind;         /* update: the channel's kind (from the database) */
	bool has_access;          /* update: an access token is stored */
};

struct hub_admin_channels *hub_admin_channels_new(struct hub_store *store, struct hub_api *api,
						  struct hub_httpc *httpc)
{
	struct hub_admin_channels *ac = hub_xcalloc(1, sizeof(*ac));

	ac->store = store;
	ac->api = api;
	ac->httpc = httpc;
	return ac;
}

void hub_admin_channels_set_config(struct hub_admin_channels *ac, struct hub_config *cfg)
{
	if (cfg)
		hub_config_ref(cfg);
	hub_config_unref(ac->cfg);
	ac->cfg = cfg;
}

void hub_admin_channels_free(struct hub_admin_channels *ac)
{
	if (!ac)
		return;
	hub_config_unref(ac->cfg);
	free(ac);
}

/* ---- answers ---- */

static void on_release(struct admin_req *ar)
{
	hub_buf_release(&ar->set);
	hub_buf_release(&ar->fields);
	hub_buf_release(&ar->errors);
	hub_buf_release(&ar->ai);
}

/* The answers release ar's buffers first: ar lives in the request's pool, which the
 * answer frees. */
static void respond(struct admin_req *ar, int status, struct hub_str body)
{
	struct hub_http_req *req = ar->req;

	on_release(ar);
	hub_http_req_add_header(req, "Cache-Control", "no-store");
	hub_http_req_respond(req, status, "application/json", body);
}

static void fail(struct admin_req *ar, int status, const char *code, const char *msg)
{
	struct hub_http_req *req = ar->req;

	on_release(ar);
	hub_http_req_error(req, status, code, "%s", msg);
}

static void not_found(struct admin_req *ar)
{
	fail(ar, 404, "unknown_channel", "no such channel");
}

static void store_failed(struct admin_req *ar, int status)
{
	struct hub_http_req *req = ar->req;

	on_release(ar);
	hub_api_store_error(req, status);
}

/* 400 {"error":{"code":"invalid","message":..,"fields":{...}}}: nothing was stored. */
static void invalid(struct admin_req *ar)
{
	struct hub_buf b = HUB_BUF_INIT;

	hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 ": 400 invalid channel body",
		     hub_http_req_conn_id(ar->req), hub_http_req_id(ar->req));
	hub_buf_adds(&b, "{\"error\":{\"code\":\"invalid\",\"message\":\"some fields are not "
			 "valid: nothing was changed\",\"fields\":{");
	hub_buf_addstr(&b, hub_buf_str(&ar->errors));
	hub_buf_adds(&b, "}}}");
	respond(ar, 400, hub_buf_str(&b));
	hub_buf_release(&b);
}

static void field_error(struct admin_req *ar, const char *field, const char *why)
{
	if (ar->errors.len)
		hub_buf_addch(&ar->errors, ',');
	hub_json_add_str(&ar->errors, hub_str_from(field));
	hub_buf_addch(&ar->errors, ':');
	hub_json_add_str(&ar->errors, hub_str_from(why));
}

/* ---- requests ---- */

static struct admin_req *begin(struct hub_admin_channels *ac, struct hub_http_req *req, enum op op)
{
	struct admin_req *ar = hub_pool_calloc(hub_http_req_pool(req), 1, sizeof(*ar));

	ar->ac = ac;
	ar->req = req;
	ar->op = op;
	hub_buf_init(&ar->set);
	hub_buf_init(&ar->fields);
	hub_buf_init(&ar->errors);
	hub_buf_init(&ar->ai);
	if (hub_api_authenticate_admin(ac->api, req, &ar->claims) < 0)
		return NULL;
	hub_http_req_peer(req, ar->addr, sizeof(ar->addr));
	return ar;
}

/* The {id} of the path, NULL (answered 404) when it cannot be a channel's id. */
static const char *path_id(struct admin_req *ar)
{
	struct hub_str id = hub_http_req_param(ar->req, "id");

	if (!hub_channel_id_valid(id.p, id.len)) {
		not_found(ar);
		return NULL;
	}
	return hub_pool_strndup(hub_http_req_pool(ar->req), id.p, id.len);
}

/* The hub's public URL for webhook_url ("" when media.public_url is not set). */
static const char *base_url(const struct hub_admin_channels *ac)
{
	const char *u = ac->cfg ? hub_config_settings(ac->cfg)->media.public_url : NULL;

	return u ? u : "";
}

static struct hub_str value(PGresult *res, int col)
{
	return (struct hub_str){ PQgetvalue(res, 0, col), (size_t)PQgetlength(res, 0, col) };
}

/* Whether v is the database's {"error": "<code>"}. */
static bool is_error(struct hub_str v, const char *code)
{
	size_t n = strlen(code);

	return v.len == 13 + n && memcmp(v.p, "{\"error\": \"", 11) == 0 &&
	       memcmp(v.p + 11, code, n) == 0 && memcmp(v.p + 11 + n, "\"}", 2) == 0;
}

static void on_result(int status, PGresult *res, void *data)
{
	struct admin_req *ar = data;
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_str v;

	if (status < 0) {
		store_failed(ar, status);
		return;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 1) {
		store_failed(ar, -EPROTO);
		return;
	}
	if (PQgetisnull(res, 0, 0)) {
		not_found(ar);
		return;
	}
	v = value(res, 0);
	switch (ar->op) {
	case OP_LIST:
		hub_buf_adds(&b, "{\"channels\":");
		hub_buf_addstr(&b, v);
		hub_buf_addch(&b, '}');
		break;
	case OP_GET:
	case OP_ENABLE:
	case OP_DISABLE:
		hub_buf_adds(&b, "{\"channel\":");
		hub_buf_addstr(&b, v);
		hub_buf_addch(&b, '}');
		break;
	case OP_CREATE:
	case OP_UPDATE:
		if (v.len > 10 && strncmp(v.p, "{\"error\": {", 11) == 0) {
			hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 ": 400 invalid channel "
				     "body (refused by the database)", hub_http_req_conn_id(ar->req),
				     hub_http_req_id(ar->req));
			respond(ar, 400, v);
			return;
		}
		/* {"channel": ...} or {"error": "id_taken" | "unknown_tenant" |
		 * "managed_by_config"} (jsonb's text: a space after the colon) */
		if (is_error(v, "id_taken")) {
			field_error(ar, "id", "this id is taken: choose another (or leave it out)");
			invalid(ar);
			return;
		}
		if (is_error(v, "managed_by_config")) {
			fail(ar, 409, "managed_by_config", "this channel is defined in hubd's "
			     "configuration file, which wins: change it there (only enable, "
			     "disable and its assistant apply here)");
			return;
		}
		if (is_error(v, "unknown_tenant")) {
			fail(ar, 409, "unknown_tenant", "the token's tenant does not exist or is "
			     "deleted");
			return;
		}
		hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 ": channel %s %s by %s",
			     hub_http_req_conn_id(ar->req), hub_http_req_id(ar->req), ar->id,
			     ar->op == OP_CREATE ? "created" : "changed", ar->claims.sub);
		hub_buf_addstr(&b, (struct hub_str){ v.p, v.len - 1 }); /* without its '}' */
		if (ar->verify_token) {
			hub_buf_adds(&b, ",\"verify_token\":");
			hub_json_add_str(&b, hub_str_from(ar->verify_token));
		}
		if (ar->identity_secret) {
			hub_buf_adds(&b, ",\"identity_secret\":");
			hub_json_add_str(&b, hub_str_from(ar->identity_secret));
		}
		hub_buf_addch(&b, '}');
		respond(ar, ar->op == OP_CREATE ? 201 : 200, hub_buf_str(&b));
		hub_buf_release(&b);
		return;
	case OP_CHECK:
		break;
	case OP_DELETE:
		if (strcmp(PQgetvalue(res, 0, 0), "managed_by_config") == 0) {
			fail(ar, 409, "managed_by_config", "this channel is defined in hubd's "
			     "configuration file: remove it there");
			return;
		}
		hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 ": channel %s deleted by %s",
			     hub_http_req_conn_id(ar->req), hub_http_req_id(ar->req), ar->id,
			     ar->claims.sub);
		on_release(ar);
		hub_http_req_respond(ar->req, 204, NULL, HUB_STR(""));
		return;
	}
	respond(ar, 200, hub_buf_str(&b));
	hub_buf_release(&b);
}

static void run(struct admin_req *ar, const char *sql, int n, const char *const *params)
{
	int ret = hub_store_query(ar->ac->store, sql, n, params, on_result, ar);

	if (ret < 0)
		store_failed(ar, ret);
}

void hub_admin_channels_handle_list(struct hub_admin_channels *ac, struct hub_http_req *req)
{
	struct admin_req *ar = begin(ac, req, OP_LIST);

	if (!ar)
		return;
	const char *params[] = { ar->claims.tid, base_url(ac) };
	run(ar, "SELECT hub_admin_channels($1, $2)", 2, params);
}

void hub_admin_channels_handle_get(struct hub_admin_channels *ac, struct hub_http_req *req)
{
	struct admin_req *ar = begin(ac, req, OP_GET);

	if (!ar || !(ar->id = path_id(ar)))
		return;
	const char *params[] = { ar->claims.tid, ar->id, base_url(ac) };
	run(ar, "SELECT hub_admin_channel($1, $2, $3)", 3, params);
}

static void set_enabled(struct hub_admin_channels *ac, struct hub_http_req *req, bool on)
{
	struct admin_req *ar = begin(ac, req, on ? OP_ENABLE : OP_DISABLE);

	if (!ar || !(ar->id = path_id(ar)))
		return;
	const char *params[] = { ar->claims.tid, ar->claims.sub, "admin", ar->addr,
				 base_url(ac), ar->id, on ? "true" : "false" };
	run(ar, "SELECT hub_admin_channel_set_enabled($1, $2, $3, $4, $5, $6, $7)", 7, params);
}

void hub_admin_channels_handle_enable(struct hub_admin_channels *ac, struct hub_http_req *req)
{
	set_enabled(ac, req, true);
}

void hub_admin_channels_handle_disable(struct hub_admin_channels *ac, struct hub_http_req *req)
{
	set_enabled(ac, req, false);
}

void hub_admin_channels_handle_delete(struct hub_admin_channels *ac, struct hub_http_req *req)
{
	struct admin_req *ar = begin(ac, req, OP_DELETE);

	if (!ar || !(ar->id = path_id(ar)))
		return;
	const char *params[] = { ar->claims.tid, ar->claims.sub, "admin", ar->addr, ar->id };
	run(ar, "SELECT hub_admin_channel_delete($1, $2, $3, $4, $5)", 5, params);
}

/* ---- bodies ---- */

/* The fields a body may hold; anything else is an error of its own. */
static const char *const create_fields[] = { "id", "name", "kind", "account_id", "mode",
					     "app_secret", "access_token", "ai", "web", NULL };
static const char *const update_fields[] = { "name", "account_id", "mode", "app_secret",
					     "access_token", "ai", "web", NULL };

static bool known(const char *const *names, struct hub_str key)
{
	for (; *names; names++)
		if (hub_str_eqs(key, *names))
			return true;
	return false;
}

/* The string field name of the body's object, NULL when absent; a field that is there but
 * not a string gets its error (and *bad). */
static const char *string_field(struct admin_req *ar, const struct hub_json_doc *doc,
				const char *name, bool *bad)
{
	struct hub_pool *pool = hub_http_req_pool(ar->req);
	int i = hub_json_get(doc, 0, name);
	struct hub_str s;

	if (i < 0)
		return NULL;
	if (!hub_json_is(doc, i, HUB_JSON_STRING) || hub_json_string(doc, i, pool, &s) < 0 ||
	    memchr(s.p, '\0', s.len)) {
		field_error(ar, name, "must be a string");
		*bad = true;
		return NULL;
	}
	return hub_pool_strndup(pool, s.p, s.len);
}

static void set_str(struct admin_req *ar, const char *name, const char *v)
{
	hub_buf_addch(&ar->set, ar->set.len ? ',' : '{');
	hub_json_add_str(&ar->set, hub_str_from(name));
	hub_buf_addch(&ar->set, ':');
	hub_json_add_str(&ar->set, hub_str_from(v));
}

static void add_field_name(struct admin_req *ar, const char *name)
{
	hub_buf_addch(&ar->fields, ar->fields.len ? ',' : '{');
	hub_buf_adds(&ar->fields, name);
}

/* Seals secret column of the channel, adds it and its hint to set. false (answered 503)
 * without a master key. */
static bool add_secret(struct admin_req *ar, const char *column, const char *plain,
		       struct hub_buf *hints)
{
	const struct hub_keyring *kr = ar->ac->cfg ? hub_config_keyring(ar->ac->cfg) : NULL;
	struct hub_buf sealed = HUB_BUF_INIT;
	char hint[5];

	if (hub_channels_seal(kr, "channels", ar->id, column, hub_str_from(plain), &sealed) < 0) {
		hub_buf_release(&sealed);
		fail(ar, 503, "no_master_key", "secrets.master_key is not set on this hub: it "
		     "stores no secret unsealed");
		return false;
	}
	set_str(ar, column, sealed.p);
	hub_buf_release(&sealed);
	hub_channel_secret_hint(plain, strlen(plain), hint);
	hub_buf_addch(hints, hints->len ? ',' : '{');
	hub_json_add_str(hints, hub_str_from(column));
	hub_buf_addch(hints, ':');
	hub_json_add_str(hints, hub_str_from(hint));
	return true;
}

/* The body as an object: 0, or answered 400 (not JSON, not an object, unknown fields). */
static int parse_body(struct admin_req *ar, const char *const *allowed,
		      struct hub_json_doc *doc)
{
	struct hub_err err = HUB_ERR_INIT;
	struct hub_pool *pool = hub_http_req_pool(ar->req);

	if (hub_json_parse(pool, hub_http_req_body(ar->req), BODY_TOKENS, doc, &err) < 0 ||
	    !hub_json_is(doc, 0, HUB_JSON_OBJECT)) {
		fail(ar, 400, "bad_json", "the body must be one JSON object");
		return -EBADMSG;
	}
	for (int k = hub_json_first(doc, 0); k >= 0; k = hub_json_after(doc, k)) {
		struct hub_str key = hub_json_raw(doc, k);
		char *name = hub_pool_strndup(pool, key.p, key.len > 64 ? 64 : key.len);

		if (!known(allowed, key))
			field_error(ar, name, hub_str_eqs(key, "enabled")
				    ? "use POST /api/v1/channels/{id}/enable or /disable"
				    : hub_str_eqs(key, "verify_token")
				    ? "the hub generates it when the channel is created"
				    : "unknown field");
	}
	return 0;
}

/* Checks the fields common to create and update against kind (NULL: not known yet); adds
 * the valid ones to set. has_access: an access token is stored or given. */
static void check_fields(struct admin_req *ar, const struct hub_json_doc *doc, const char *kind,
			 bool has_access, bool creating)
{
	bool bad = false;
	const char *name = string_field(ar, doc, "name", &bad);
	const char *account = string_field(ar, doc, "account_id", &bad);
	const char *mode = string_field(ar, doc, "mode", &bad);

	if (name) {
		if (strlen(name) > NAME_MAX_BYTES || !hub_utf8_valid(name, strlen(name)) ||
		    (*name && !hub_channel_secret_valid(name, strlen(name))))
			field_error(ar, "name", "at most 200 bytes of text, no control characters");
		else
			set_str(ar, "name", name), add_field_name(ar, "name");
	}
	if (account) {
		if (!hub_channel_account_valid(account, strlen(account)))
			field_error(ar, "account_id", "1 to 128 printable characters without spaces "
				    "(the WhatsApp phone number id, the Instagram account id or the "
				    "Telegram bot's id)");
		else
			set_str(ar, "account_id", account), add_field_name(ar, "account_id");
	} else if (creating && !bad && !(kind && !strcmp(kind, "web"))) {
		field_error(ar, "account_id", "required"); /* a web channel's is its id */
	}
	if (mode) {
		if (strcmp(mode, "webhook") != 0 && strcmp(mode, "polling") != 0)
			field_error(ar, "mode", "webhook or polling");
		else if (!strcmp(mode, "polling") && kind &&
			 (strcmp(kind, "telegram") != 0 || !has_access))
			field_error(ar, "mode", "polling is for telegram channels with an access "
				    "token (the bot token)");
		else
			set_str(ar, "mode", mode), add_field_name(ar, "mode");
	}
}

/* The secrets given, checked (field errors for the bad ones); a secret absent or bad is
 * NULL. */
struct secrets {
	const char *app, *access;
};

static void check_secrets(struct admin_req *ar, const struct hub_json_doc *doc, const char *kind,
			  bool creating, struct secrets *out)
{
	bool bad = false;
	const char *app = string_field(ar, doc, "app_secret", &bad);
	const char *access = string_field(ar, doc, "access_token", &bad);

	if (app && !hub_channel_secret_valid(app, strlen(app))) {
		field_error(ar, "app_secret", "1 to 4096 bytes of text without control characters");
		app = NULL;
	} else if (app && kind && !strcmp(kind, "telegram") &&
		   !hub_channel_telegram_secret_valid(app, strlen(app))) {
		field_error(ar, "app_secret", "a telegram channel's app secret (the webhook's "
			    "secret_token) is 1 to 256 of A-Z, a-z, 0-9, '_' and '-'");
		app = NULL;
	} else if (!app && creating && hub_json_get(doc, 0, "app_secret") < 0 &&
		   !(kind && !strcmp(kind, "web"))) {
		field_error(ar, "app_secret", "required (Meta: the app secret; Telegram: the "
			    "webhook's secret_token)");
	}
	if (access && !hub_channel_secret_valid(access, strlen(access))) {
		field_error(ar, "access_token", "1 to 4096 bytes of text without control "
			    "characters");
		access = NULL;
	}
	out->app = app;
	out->access = access;
}

/* Seals the checked secrets (and a generated verify token) into set with their hints.
 * false when answered (no master key). */
static bool seal_secrets(struct admin_req *ar, const struct secrets *sec)
{
	struct hub_buf hints = HUB_BUF_INIT;
	bool ok = true;

	if (sec->app) {
		ok = add_secret(ar, "app_secret", sec->app, &hints);
		add_field_name(ar, "app_secret");
	}
	if (ok && sec->access) {
		ok = add_secret(ar, "access_token", sec->access, &hints);
		add_field_name(ar, "access_token");
	}
	if (ok && ar->verify_token)
		ok = add_secret(ar, "verify_token", ar->verify_token, &hints);
	if (ok && hints.len) {
		hub_buf_addch(&hints, '}');
		hub_buf_adds(&ar->set, ar->set.len ? ",\"hints\":" : "{\"hints\":");
		hub_buf_addstr(&ar->set, hub_buf_str(&hints));
	}
	hub_buf_release(&hints);
	return ok;
}

/* The body's "web" object (a web channel's settings, lib/webcfg.h) checked and added to
 * set as it is; required to create a web channel, refused for the others. */
static void check_web(struct admin_req *ar, const struct hub_json_doc *doc, const char *kind,
		      bool creating)
{
	int i = hub_json_get(doc, 0, "web");
	bool web = kind && !strcmp(kind, "web");
	struct hub_err err = HUB_ERR_INIT;
	struct hub_webcfg cfg;

	if (i < 0) {
		if (web && creating)
			field_error(ar, "web", "required: the widget's settings (origins, title, "
				    "color, greeting, offline, prechat)");
		return;
	}
	if (kind && !web) {
		field_error(ar, "web", "only web channels have widget settings");
		return;
	}
	struct hub_str raw = hub_json_raw(doc, i);

	if (!hub_json_is(doc, i, HUB_JSON_OBJECT) ||
	    hub_webcfg_parse(hub_http_req_pool(ar->req), raw, &cfg, &err) < 0) {
		field_error(ar, "web", err.msg[0] ? err.msg : "must be an object");
		return;
	}
	hub_buf_adds(&ar->set, ar->set.len ? ",\"web\":" : "{\"web\":");
	hub_buf_addstr(&ar->set, raw);
	add_field_name(ar, "web");
}

/* The body's "ai" object (the assistant's settings, assistant/settings.h) checked into
 * ar->ai; its errors join the others. */
static void check_ai(struct admin_req *ar, const struct hub_json_doc *doc)
{
	int i = hub_json_get(doc, 0, "ai");
	struct hub_buf names = HUB_BUF_INIT;

	if (i < 0)
		return;
	hub_ai_settings_from_json(doc, i, hub_http_req_pool(ar->req), &ar->ai, &ar->errors,
				  &names, &ar->ai_key, &ar->ai_key_clear);
	ar->has_ai = true;
	if (names.len)
		add_field_name(ar, names.p);
	hub_buf_release(&names);
}

/* ar->ai as hub_channel_ai_set()'s object, the API key sealed; NULL without "ai", or when
 * answered (no master key). */
static const char *ai_object(struct admin_req *ar, bool *answered)
{
	const struct hub_keyring *kr = ar->ac->cfg ? hub_config_keyring(ar->ac->cfg) : NULL;
	struct hub_buf sealed = HUB_BUF_INIT;
	char hint[5];

	*answered = false;
	if (!ar->has_ai)
		return NULL;
	if (ar->ai_key) {
		if (hub_channels_seal(kr, "channel_ai", ar->id, "api_key", hub_str_from(ar->ai_key),
				      &sealed) < 0) {
			hub_buf_release(&sealed);
			fail(ar, 503, "no_master_key", "secrets.master_key is not set on this hub: "
			     "it stores no secret unsealed");
			*answered = true;
			return NULL;
		}
		hub_channel_secret_hint(ar->ai_key, strlen(ar->ai_key), hint);
		hub_buf_adds(&ar->ai, ar->ai.len ? ",\"api_key\":" : "\"api_key\":");
		hub_json_add_str(&ar->ai, hub_buf_str(&sealed));
		hub_buf_adds(&ar->ai, ",\"api_key_hint\":");
		hub_json_add_str(&ar->ai, hub_str_from(hint));
		hub_buf_release(&sealed);
	} else if (ar->ai_key_clear) {
		hub_buf_adds(&ar->ai, ar->ai.len ? ",\"api_key\":null,\"api_key_hint\":null"
						 : "\"api_key\":null,\"api_key_hint\":null");
	}
	return hub_pool_sprintf(hub_http_req_pool(ar->req), "{%s}", ar->ai.len ? ar->ai.p : "");
}

/* A fresh id or token: prefix and 12 (id) or 32 random hex digits. */
static const char *random_text(struct hub_pool *pool, const char *prefix, size_t bytes)
{
	unsigned char r[32];
	struct hub_buf b = HUB_BUF_INIT;
	const char *s;

	if (hub_random_bytes(r, bytes) < 0)
		return NULL;
	hub_buf_adds(&b, prefix);
	for (size_t i = 0; i < bytes; i++)
		hub_buf_addf(&b, "%02x", r[i]);
	s = hub_pool_strndup(pool, b.p, b.len);
	hub_buf_release(&b);
	return s;
}

/* "{name,...}": the fields given, as a SQL array literal. */
static const char *fields_array(struct admin_req *ar)
{
	hub_buf_addch(&ar->fields, ar->fields.len ? '}' : '{');
	if (ar->fields.len == 1)
		hub_buf_addch(&ar->fields, '}');
	return ar->fields.p;
}

void hub_admin_channels_handle_create(struct hub_admin_channels *ac, struct hub_http_req *req)
{
	struct admin_req *ar = begin(ac, req, OP_CREATE);
	struct hub_pool *pool = hub_http_req_pool(req);
	struct hub_json_doc doc;
	struct secrets sec;
	const char *kind, *ai = NULL;
	bool bad = false, answered;

	if (!ar || parse_body(ar, create_fields, &doc) < 0)
		return;
	ar->id = string_field(ar, &doc, "id", &bad);
	kind = string_field(ar, &doc, "kind", &bad);
	if (ar->id && !hub_channel_id_valid(ar->id, strlen(ar->id))) {
		field_error(ar, "id", "1 to 64 of a-z, 0-9, '-' and '_'");
		ar->id = NULL;
	}
	if (kind && !hub_channel_kind_parse(kind)) {
		field_error(ar, "kind", "whatsapp, telegram, instagram or web");
		kind = NULL;
	} else if (!kind && hub_json_get(&doc, 0, "kind") < 0) {
		field_error(ar, "kind", "required: whatsapp, telegram, instagram or web");
	}
	if (kind)
		set_str(ar, "kind", kind), add_field_name(ar, "kind");
	{
		int at = hub_json_get(&doc, 0, "access_token");

		check_fields(ar, &doc, kind, at >= 0 && hub_json_is(&doc, at, HUB_JSON_STRING),
			     true);
	}
	check_secrets(ar, &doc, kind, true, &sec);
	check_web(ar, &doc, kind, true);
	check_ai(ar, &doc);
	if (ar->errors.len) {
		invalid(ar);
		return;
	}
	bool web = !strcmp(kind, "web");

	if (!ar->id)
		ar->id = random_text(pool, hub_pool_sprintf(pool, "%s-", kind), 6);
	else
		add_field_name(ar, "id");
	/* Meta's GET handshake: the hub makes the token the admin pastes in the dashboard;
	 * a web channel's identity secret (the signed-in users' hash) the hub makes unless
	 * given, answered once for the site's back end */
	if (!web && strcmp(kind, "telegram") != 0)
		ar->verify_token = random_text(pool, "", 16);
	if (web && !sec.app)
		sec.app = ar->identity_secret = random_text(pool, "", 32);
	if (!ar->id || (!web && strcmp(kind, "telegram") != 0 && !ar->verify_token) ||
	    (web && !sec.app)) {
		fail(ar, 500, "internal", "no random bytes");
		return;
	}
	set_str(ar, "id", ar->id);
	if (web && hub_json_get(&doc, 0, "account_id") < 0)
		set_str(ar, "account_id", ar->id);
	if (!seal_secrets(ar, &sec) || (!(ai = ai_object(ar, &answered)) && answered))
		return;
	hub_buf_addch(&ar->set, '}');
	const char *params[] = { ar->claims.tid, ar->claims.sub, "admin", ar->addr, base_url(ac),
				 ar->set.p, ai, fields_array(ar) };
	run(ar, "SELECT hub_admin_channel_create($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, "
		"$8::text[])", 8, params);
}

/* PATCH: the channel's kind first (a field's rules depend on it), then the change. */
static void on_kind(int status, PGresult *res, void *data)
{
	struct admin_req *ar = data;
	struct hub_json_doc doc;
	struct secrets sec;
	const char *ai = NULL;
	bool answered;

	if (status < 0) {
		store_failed(ar, status);
		return;
	}
	if (PQntuples(res) != 1) {
		not_found(ar);
		return;
	}
	ar->kind = hub_pool_strdup(hub_http_req_pool(ar->req), PQgetvalue(res, 0, 0));
	ar->has_access = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	if (parse_body(ar, update_fields, &doc) < 0)
		return;
	{
		int at = hub_json_get(&doc, 0, "access_token");

		check_fields(ar, &doc, ar->kind, ar->has_access ||
			     (at >= 0 && hub_json_is(&doc, at, HUB_JSON_STRING)), false);
	}
	check_secrets(ar, &doc, ar->kind, false, &sec);
	check_web(ar, &doc, ar->kind, false);
	check_ai(ar, &doc);
	if (ar->errors.len) {
		invalid(ar);
		return;
	}
	if (!seal_secrets(ar, &sec) || (!(ai = ai_object(ar, &answered)) && answered))
		return;
	if (!ar->set.len)
		hub_buf_addch(&ar->set, '{');
	hub_buf_addch(&ar->set, '}');
	const char *params[] = { ar->claims.tid, ar->claims.sub, "admin", ar->addr,
				 base_url(ar->ac), ar->id, ar->set.p, ai, fields_array(ar) };
	run(ar, "SELECT hub_admin_channel_update($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, "
		"$9::text[])", 9, params);
}

void hub_admin_channels_handle_update(struct hub_admin_channels *ac, struct hub_http_req *req)
{
	struct admin_req *ar = begin(ac, req, OP_UPDATE);
	int ret;

	if (!ar || !(ar->id = path_id(ar)))
		return;
	const char *params[] = { ar->claims.tid, ar->id };
	ret = hub_store_query(ac->store, "SELECT kind, access_token IS NOT NULL FROM channels "
				"WHERE tenant_id = $1 AND public_id = $2 AND deleted_at IS NULL",
			      2, params, on_kind, ar);
	if (ret < 0)
		store_failed(ar, ret);
}

/* ---- POST /api/v1/channels/{id}/check ---- */

/* One check: the channel as this hubd serves it (its snapshot held), the platform's call,
 * then the audit record, then the answer. In the request's pool. */
struct check {
	struct admin_req *ar;
	struct hub_config *cfg;          /* the snapshot ch points into (a reference) */
	const struct hub_channel *ch;
	const char *result;              /* ok, no_access_token, token_refused, ... */
	struct hub_buf message;          /* the verdict in plain words */
	struct hub_buf details;          /* what the platform said of the account, JSON */
};

static void check_done(struct check *c)
{
	hub_config_unref(c->cfg);
	c->cfg = NULL;
	hub_buf_release(&c->message);
	hub_buf_release(&c->details);
}

static void on_check_audited(int status, PGresult *res, void *data)
{
	struct check *c = data;
	struct admin_req *ar = c->ar;
	struct hub_buf b = HUB_BUF_INIT;

	(void)res;
	if (status < 0) {
		check_done(c);
		store_failed(ar, status);
		return;
	}
	hub_log_info(TAG, "conn=%" PRIu64 " req=%" PRIu64 ": channel %s checked by %s: %s",
		     hub_http_req_conn_id(ar->req), hub_http_req_id(ar->req), ar->id,
		     ar->claims.sub, c->result);
	hub_buf_addf(&b, "{\"channel\":\"%s\",\"ok\":%s,\"result\":\"%s\",\"message\":", ar->id,
		     strcmp(c->result, "ok") == 0 ? "true" : "false", c->result);
	hub_json_add_str(&b, hub_buf_str(&c->message));
	hub_buf_adds(&b, ",\"details\":");
	hub_buf_adds(&b, c->details.len ? c->details.p : "{}");
	hub_buf_addch(&b, '}');
	check_done(c);
	respond(ar, 200, hub_buf_str(&b));
	hub_buf_release(&b);
}

/* The verdict is in: the audit record (the verdict's code, never the platform's words). */
static void check_audit(struct check *c)
{
	struct admin_req *ar = c->ar;
	const char *params[] = { ar->claims.tid, ar->claims.sub, "admin", ar->addr, ar->id,
				 c->result };
	int ret = hub_store_query(ar->ac->store, "SELECT hub_admin_channel_checked($1, $2, $3, "
				  "$4, $5, $6)", 6, params, on_check_audited, c);

	if (ret < 0) {
		check_done(c);
		store_failed(ar, ret);
	}
}

static void verdict(struct check *c, const char *result, const char *fmt, ...) HUB_PRINTF(3, 4);
static void verdict(struct check *c, const char *result, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	c->result = result;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hub_buf_adds(&c->message, msg);
}

/* A string member of the object at obj into details (as "as"), when there. */
static void detail(struct check *c, const struct hub_json_doc *doc, int obj, const char *name,
		   const char *as, struct hub_pool *pool)
{
	int i = hub_json_get(doc, obj, name);
	struct hub_str v;

	if (hub_json_is(doc, i, HUB_JSON_STRING)) {
		if (hub_json_string(doc, i, pool, &v) < 0)
			return;
	} else if (hub_json_is(doc, i, HUB_JSON_PRIMITIVE) && !hub_json_is_null(doc, i)) {
		v = hub_json_raw(doc, i); /* a number: the bot's id */
	} else {
		return;
	}
	hub_buf_addch(&c->details, c->details.len ? ',' : '{');
	hub_json_add_str(&c->details, hub_str_from(as));
	hub_buf_addch(&c->details, ':');
	hub_json_add_str(&c->details, v);
}

static void on_checked(int status, const struct hub_httpc_resp *resp, void *data)
{
	struct check *c = data;
	struct hub_pool *pool = hub_http_req_pool(c->ar->req);
	const char *platform = c->ch->kind == HUB_CHANNEL_WHATSAPP ? "WhatsApp"
			       : c->ch->kind == HUB_CHANNEL_TELEGRAM ? "Telegram" : "Instagram";
	struct hub_json_doc doc;
	int64_t code = 0;
	bool parsed;

	if (status < 0) {
		verdict(c, "unreachable", "%s could not be reached (%s): check platforms.%s_url "
			"and this hub's network", platform, status == -ETIMEDOUT ? "no answer in "
			"time" : strerror(-status), hub_channel_kind_name(c->ch->kind));
		check_audit(c);
		return;
	}
	parsed = hub_json_parse(pool, resp->body, 256, &doc, NULL) == 0 &&
		 hub_json_is(&doc, 0, HUB_JSON_OBJECT);
	if (parsed && c->ch->kind != HUB_CHANNEL_TELEGRAM)
		if (hub_json_int64(&doc, hub_json_path(&doc, 0, "error", "code", NULL), &code) < 0)
			code = 0;
	if (resp->status == 401 || code == 190) {
		verdict(c, "token_refused", "%s refused the access token: it is wrong, expired or "
			"revoked. Make a new one in the platform's dashboard and save it as the "
			"channel's access_token", platform);
	} else if (c->ch->kind != HUB_CHANNEL_TELEGRAM && (code == 10 || code == 200 ||
							    resp->status == 403)) {
		verdict(c, "missing_permission", "%s accepts the access token but it lacks a "
			"permission this channel needs (messaging and the account's management): "
			"grant it to the app and make a new token", platform);
	} else if (resp->status == 404 || (resp->status == 400 && code == 100)) {
		verdict(c, "wrong_account", "%s does not know the account %s with this token: "
			"check account_id (%s) and that the token belongs to that account",
			platform, c->ch->account_id, c->ch->kind == HUB_CHANNEL_WHATSAPP
			? "the phone number id of the WhatsApp Manager, not the phone number"
			: c->ch->kind == HUB_CHANNEL_INSTAGRAM ? "the Instagram account's id"
			: "the bot's id, the digits before ':' in its token");
	} else if (resp->status != 200 || !parsed) {
		verdict(c, "platform_error", "%s answered HTTP %d: try again later", platform,
			resp->status);
	} else if (c->ch->kind == HUB_CHANNEL_TELEGRAM) {
		int r = hub_json_get(&doc, 0, "result");
		struct hub_str id = hub_json_raw(&doc, hub_json_get(&doc, r, "id"));

		detail(c, &doc, r, "username", "username", pool);
		detail(c, &doc, r, "id", "bot_id", pool);
		if (!hub_str_eqs(id, c->ch->account_id))
			verdict(c, "wrong_account", "the token belongs to bot %.*s, not to the "
				"channel's account_id %s: save the bot's id as account_id, or the "
				"token of that bot", HUB_STR_FMT(id), c->ch->account_id);
		else
			verdict(c, "ok", "Telegram accepts the bot token");
	} else {
		if (c->ch->kind == HUB_CHANNEL_WHATSAPP) {
			detail(c, &doc, 0, "display_phone_number", "display_phone_number", pool);
			detail(c, &doc, 0, "verified_name", "verified_name", pool);
		} else {
			detail(c, &doc, 0, "username", "username", pool);
		}
		verdict(c, "ok", "%s accepts the access token for this account", platform);
	}
	if (c->details.len)
		hub_buf_addch(&c->details, '}');
	check_audit(c);
}

/* hub_channels_sql's columns, for one channel of the tenant. */
static const char check_sql[] =
	"SELECT " HUB_CHANNELS_COLUMNS "FROM channels c JOIN tenants t ON t.id = c.tenant_id "
	"WHERE c.tenant_id = $1 AND c.public_id = $2 AND c.deleted_at IS NULL";

/* The channel as stored (its secrets opened), or the file's for a channel of hubd's file:
 * read from the database, so that a channel just created is checked before every hubd
 * serves it. */
static void on_check_channel(int status, PGresult *res, void *data)
{
	struct check *c = data;
	struct admin_req *ar = c->ar;
	struct hub_admin_channels *ac = ar->ac;
	struct hub_pool *pool = hub_http_req_pool(ar->req);
	struct hub_buf errors = HUB_BUF_INIT;
	const struct hub_settings *s;
	struct hub_channel *chs;
	size_t n = 0, in_clear;
	int ret;

	if (status < 0) {
		check_done(c);
		store_failed(ar, status);
		return;
	}
	chs = hub_channels_from_result(res, c->cfg ? hub_config_keyring(c->cfg) : NULL, pool, &n,
				       &errors, &in_clear);
	if (errors.len) {
		hub_buf_release(&errors);
		check_done(c);
		fail(ar, 500, "secret_unreadable", "a secret of this channel does not open with "
		     "this hub's secrets.master_key");
		return;
	}
	if (chs && n == 1 && !chs[0].app_secret && c->cfg)
		c->ch = hub_config_channel(c->cfg, hub_str_from(ar->id)); /* the file's */
	else if (chs && n == 1)
		c->ch = &chs[0];
	if (!c->cfg || !c->ch || !c->ch->kind || !c->ch->account_id || !*c->ch->account_id) {
		check_done(c);
		not_found(ar);
		return;
	}
	if (c->ch->kind == HUB_CHANNEL_WEB) {
		/* no platform to ask: the widget's settings were checked when stored */
		verdict(c, c->ch->web ? "ok" : "web_settings_missing", c->ch->web
			? "a website chat has no platform to try: its widget answers on the "
			  "origins of its settings"
			: "the channel has no widget settings: save its \"web\" object");
		check_audit(c);
		return;
	}
	if (!c->ch->access_token || !*c->ch->access_token) {
		verdict(c, "no_access_token", "no access token is stored: the channel receives "
			"messages but cannot answer; save one as the channel's access_token");
		check_audit(c);
		return;
	}
	s = hub_config_settings(c->cfg);
	struct hub_httpc_header hdr = { "Authorization", NULL };
	struct hub_httpc_req hr = {
		.method = "GET",
		.connect_timeout_ms = s->platforms.connect_timeout_ms,
		.response_timeout_ms = s->platforms.response_timeout_ms,
		.retry_on_stale = true,
	};
	const char *base = s->platforms.url[c->ch->kind];

	switch (c->ch->kind) {
	case HUB_CHANNEL_TELEGRAM:
		hr.url = hub_pool_sprintf(pool, "%s/bot%s/getMe", base, c->ch->access_token);
		break;
	case HUB_CHANNEL_WHATSAPP:
		hr.url = hub_pool_sprintf(pool, "%s/%s/%s?fields=display_phone_number,"
					  "verified_name", base, s->platforms.meta_api_version,
					  c->ch->account_id);
		break;
	default:
		hr.url = hub_pool_sprintf(pool, "%s/%s/me?fields=user_id,username", base,
					  s->platforms.meta_api_version);
		break;
	}
	if (c->ch->kind != HUB_CHANNEL_TELEGRAM) {
		hdr.value = hub_pool_sprintf(pool, "Bearer %s", c->ch->access_token);
		hr.headers = &hdr;
		hr.nheaders = 1;
	}
	ret = hub_httpc_request(ac->httpc, &hr, on_checked, c, NULL);
	if (ret < 0)
		on_checked(ret, NULL, c);
}

void hub_admin_channels_handle_check(struct hub_admin_channels *ac, struct hub_http_req *req)
{
	struct admin_req *ar = begin(ac, req, OP_CHECK);
	struct check *c;
	int ret;

	if (!ar || !(ar->id = path_id(ar)))
		return;
	c = hub_pool_calloc(hub_http_req_pool(req), 1, sizeof(*c));
	c->ar = ar;
	hub_buf_init(&c->message);
	hub_buf_init(&c->details);
	c->cfg = ac->cfg ? hub_config_ref(ac->cfg) : NULL;
	const char *params[] = { ar->claims.tid, ar->id };
	ret = hub_store_query(ac->store, check_sql, 2, params, on_check_channel, c);
	if (ret < 0) {
		check_done(c);
		store_failed(ar, ret);
	}
}
