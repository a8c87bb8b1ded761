/* daemon/inbox/inbox.c - see inbox.h. The SQL functions never raise for what a caller got wrong:
 * they return rows (kind, event_id, event, data) - 'error' rows (code, message), 'event'
 * rows to publish, and one 'ack' row whose JSON object fields go into the ack - so the
 * store's status only ever means "the database is unavailable". Texts, tokens and client
 * ids are never logged. */
#include "daemon/inbox/inbox.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/data/bus.h"
#include "daemon/data/store.h"
#include "lib/log.h"
#include "lib/utf8.h"

#define TAG "inbox"
#define INBOX_REF_MAX 256       /* bytes of a string ref */
#define INBOX_ID_MAX 128        /* bytes of a client_id or an assignee */
#define INBOX_MAX_PARAMS 9

/* send, read, assign, mode, retry: (tenant, user, admin, conversation, command, value,
 * client_id, reply_to, media) */
static const char cmd_sql[] =
	"SELECT kind, event_id, event, data FROM hub_cmd($1, $2, $3::boolean, $4::bigint, $5, "
	"$6, $7, $8::bigint, $9::bigint)";
static const char typing_sql[] =
	"SELECT kind, event_id, event, data FROM hub_cmd_typing($1, $2::bigint)";

struct hub_inbox_cmd {
	struct hub_bus *bus;
	struct hub_store *store;
	hub_inbox_reply_cb *cb; /* NULL once cancelled */
	void *data;
	struct hub_buf ref;     /* the ref as JSON ("null" when none) */
	char tenant[HUB_JWT_ID_MAX];
	char user[HUB_JWT_ID_MAX];
	uint64_t conn;
	int64_t conversation;
	bool typing;
	bool queues; /* send, retry: wakes this instance's outbox sender when acknowledged */
};

/* ---- frames ---- */

/* The ref as JSON: a string re-encoded, a number as written, anything else null. */
static void add_ref(struct hub_buf *out, const struct hub_json_doc *doc, struct hub_pool *pool)
{
	int i = doc && doc->n > 0 ? hub_json_get(doc, 0, "ref") : -1;
	struct hub_str s;
	double d;

	if (i >= 0 && hub_json_is(doc, i, HUB_JSON_STRING) &&
	    hub_json_string(doc, i, pool, &s) == 0 && s.len <= INBOX_REF_MAX)
		hub_json_add_str(out, s);
	else if (i >= 0 && hub_json_is(doc, i, HUB_JSON_PRIMITIVE) &&
		 hub_json_double(doc, i, &d) == 0 && hub_json_raw(doc, i).len <= 64)
		hub_buf_addstr(out, hub_json_raw(doc, i));
	else
		hub_buf_adds(out, "null");
}

static void error_frame(struct hub_buf *out, struct hub_str ref_json, const char *code,
			struct hub_str message)
{
	hub_buf_adds(out, "{\"type\":\"error\",\"ref\":");
	hub_buf_addstr(out, ref_json);
	hub_buf_adds(out, ",\"code\":");
	hub_json_add_str(out, hub_str_from(code));
	hub_buf_adds(out, ",\"message\":");
	hub_json_add_str(out, message);
	hub_buf_addch(out, '}');
}

void hub_inbox_error(struct hub_buf *out, const struct hub_json_doc *doc, struct hub_pool *pool,
		     const char *code, const char *message)
{
	struct hub_buf ref = HUB_BUF_INIT;

	add_ref(&ref, doc, pool);
	error_frame(out, hub_buf_str(&ref), code, hub_str_from(message));
	hub_buf_release(&ref);
}

/* {"type":"ack","ref":R, <the fields of the JSON object fields>} */
static void ack_frame(struct hub_buf *out, struct hub_str ref_json, struct hub_str fields)
{
	const char *open = fields.len ? memchr(fields.p, '{', fields.len) : NULL;
	const char *close = open ? fields.p + fields.len - 1 : NULL; /* never before open */

	hub_buf_adds(out, "{\"type\":\"ack\",\"ref\":");
	hub_buf_addstr(out, ref_json);
	while (close && close > open && *close != '}')
		close--;
	if (open && close > open) {
		struct hub_str inner = { open + 1, (size_t)(close - open - 1) };

		while (inner.len && (*inner.p == ' ' || *inner.p == '\n')) {
			inner.p++;
			inner.len--;
		}
		if (inner.len) {
			hub_buf_addch(out, ',');
			hub_buf_addstr(out, inner);
		}
	}
	hub_buf_addch(out, '}');
}

/* ---- results ---- */

static void cmd_free(struct hub_inbox_cmd *cmd)
{
	hub_buf_release(&cmd->ref);
	free(cmd);
}

static void reply(struct hub_inbox_cmd *cmd, const struct hub_buf *frame, const char *error)
{
	if (cmd->cb)
		cmd->cb(cmd->data, hub_buf_str(frame), error);
}

static struct hub_str cell(PGresult *res, int row, int col)
{
	return (struct hub_str){ PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col) };
}

static void on_result(int status, PGresult *res, void *data)
{
	struct hub_inbox_cmd *cmd = data;
	struct hub_buf out = HUB_BUF_INIT;
	const char *error = NULL;
	int rows;

	if (status < 0) {
		hub_log_warn(TAG, "tenant=%s user=%s: command failed in the database: %s",
			     cmd->tenant, cmd->user, strerror(-status));
		error = "unavailable";
		error_frame(&out, hub_buf_str(&cmd->ref), error,
			    HUB_STR("the database is unavailable; try again"));
		goto out;
	}
	rows = PQntuples(res);
	for (int i = 0; i < rows; i++) {
		struct hub_str kind = cell(res, i, 0);

		if (hub_str_eqs(kind, "event")) {
			const char *v = PQgetvalue(res, i, 1);
			char *end;
			long long id = strtoll(v, &end, 10);

			/* Published even when the socket is gone: the events are committed (id
			 * 0: queued, the bus numbers them). */
			if (end != v && *end == '\0' && id >= 0)
				hub_bus_publish(cmd->bus, hub_str_from(cmd->tenant), id,
						cell(res, i, 2), cell(res, i, 3));
		} else if (hub_str_eqs(kind, "error")) {
			hub_buf_reset(&out);
			error = PQgetvalue(res, i, 2);
			error_frame(&out, hub_buf_str(&cmd->ref), error, cell(res, i, 3));
		} else if (hub_str_eqs(kind, "ack")) {
			hub_buf_reset(&out);
			error = NULL;
			ack_frame(&out, hub_buf_str(&cmd->ref), cell(res, i, 3));
			if (cmd->queues)
				hub_store_wake(cmd->store, HUB_STORE_OUTBOX);
			if (cmd->typing) {
				struct hub_buf d = HUB_BUF_INIT;

				hub_buf_addf(&d, "{\"conversation_id\":%" PRId64 ",\"user\":",
					     cmd->conversation);
				hub_json_add_str(&d, hub_str_from(cmd->user));
				hub_buf_addch(&d, '}');
				hub_bus_ephemeral(cmd->bus, hub_str_from(cmd->tenant), cmd->conn,
						  HUB_STR("typing"), hub_buf_str(&d));
				hub_buf_release(&d);
			}
		}
	}
	if (out.len == 0) {
		hub_log_err(TAG, "tenant=%s: command returned no ack row", cmd->tenant);
		error = "unavailable";
		error_frame(&out, hub_buf_str(&cmd->ref), error,
			    HUB_STR("the command gave no answer"));
	}
out:
	reply(cmd, &out, error);
	hub_buf_release(&out);
	cmd_free(cmd);
}

/* ---- validation ---- */

struct parsed {
	const char *error; /* the bad_request message, or NULL */
	const char *params[INBOX_MAX_PARAMS];
	int nparams;
	const char *sql;
};

/* A copy of the string field key in pool (NUL-terminated), NULL when absent. 0 or -1 (bad
 * type, empty, too long, NUL inside). */
static int str_field(const struct hub_json_doc *doc, struct hub_pool *pool, const char *key,
		     size_t max, const char **out)
{
	int i = hub_json_get(doc, 0, key);
	struct hub_str s;

	*out = NULL;
	if (i < 0)
		return 0;
	if (hub_json_string(doc, i, pool, &s) < 0 || s.len == 0 || s.len > max ||
	    memchr(s.p, '\0', s.len))
		return -1;
	*out = hub_pool_strndup(pool, s.p, s.len);
	return 0;
}

/* Code points of s (valid UTF-8: the JSON reader checked it), 0 for white space only. */
static size_t text_length(struct hub_str s, bool *blank)
{
	size_t n = 0;

	*blank = true;
	for (size_t i = 0; i < s.len;) {
		uint32_t cp;
		size_t len = hub_utf8_decode((const unsigned char *)s.p + i, s.len - i, &cp);

		if (len == 0)
			return SIZE_MAX;
		if (cp != ' ' && cp != '\t' && cp != '\n' && cp != '\r' && cp != 0xA0 &&
		    cp != 0x3000 && !(cp >= 0x2000 && cp <= 0x200B))
			*blank = false;
		i += len;
		n++;
	}
	return n;
}

static void parse(const struct hub_inbox_caller *who, const struct hub_json_doc *doc,
		  struct hub_pool *pool, struct hub_str type, struct parsed *p,
		  struct hub_inbox_cmd *cmd)
{
	const struct hub_jwt_claims *cl = who->claims;
	char *conv_s = hub_pool_alloc(pool, 24);
	int i = hub_json_get(doc, 0, "conversation_id");
	int64_t conv;

	if (i < 0) {
		p->error = "conversation_id is required";
		return;
	}
	if (!hub_json_is(doc, i, HUB_JSON_PRIMITIVE) || hub_json_int64(doc, i, &conv) < 0 ||
	    conv <= 0) {
		p->error = "conversation_id must be a positive integer";
		return;
	}
	cmd->conversation = conv;
	snprintf(conv_s, 24, "%" PRId64, conv);
	p->params[0] = cl->tid;
	if (hub_str_eqs(type, "typing")) {
		p->sql = typing_sql;
		p->params[1] = conv_s;
		p->nparams = 2;
		cmd->typing = true;
		return;
	}
	p->sql = cmd_sql;
	p->params[1] = cl->sub;
	p->params[2] = cl->role == HUB_ROLE_ADMIN ? "true" : "false";
	p->params[3] = conv_s;
	p->params[6] = NULL; /* client_id, reply_to and media_id: send's only */
	p->params[7] = NULL;
	p->params[8] = NULL;
	p->nparams = 9;

	if (hub_str_eqs(type, "send")) {
		const char *text, *client_id;
		struct hub_str s = HUB_STR("");
		int64_t media = 0;
		bool blank;
		size_t n;

		/* media_id: an upload (POST /api/v1/media) sent as an image or a document, with
		 * the text, optional then, as its caption */
		i = hub_json_get(doc, 0, "media_id");
		if (i >= 0 && !hub_json_is_null(doc, i)) {
			if (!hub_json_is(doc, i, HUB_JSON_PRIMITIVE) ||
			    hub_json_int64(doc, i, &media) < 0 || media <= 0) {
				p->error = "media_id must be an upload's id (a positive integer) or null";
				return;
			}
			p->params[8] = hub_pool_sprintf(pool, "%" PRId64, media);
		}
		i = hub_json_get(doc, 0, "text");
		if ((i >= 0 || !media) && (i < 0 || hub_json_string(doc, i, pool, &s) < 0)) {
			p->error = "text must be a string";
			return;
		}
		n = text_length(s, &blank);
		if (!media && (n == 0 || blank)) {
			p->error = "text is empty";
			return;
		}
		if (n > who->text_max) {
			p->error = "text is too long";
			return;
		}
		if (memchr(s.p, '\0', s.len)) {
			p->error = "text must not contain NUL characters";
			return;
		}
		text = hub_pool_strndup(pool, s.p, s.len);
		if (str_field(doc, pool, "client_id", INBOX_ID_MAX, &client_id) < 0) {
			p->error = "client_id must be a string of 1 to 128 bytes";
			return;
		}
		i = hub_json_get(doc, 0, "reply_to");
		if (i >= 0 && !hub_json_is_null(doc, i)) {
			int64_t quote;

			if (!hub_json_is(doc, i, HUB_JSON_PRIMITIVE) ||
			    hub_json_int64(doc, i, &quote) < 0 || quote <= 0) {
				p->error = "reply_to must be a message id (a positive integer) or null";
				return;
			}
			p->params[7] = hub_pool_sprintf(pool, "%" PRId64, quote);
		}
		p->params[4] = "send";
		p->params[5] = text;
		p->params[6] = client_id;
		return;
	}
	if (hub_str_eqs(type, "retry")) {
		int64_t mid;

		i = hub_json_get(doc, 0, "message_id");
		if (i < 0 || !hub_json_is(doc, i, HUB_JSON_PRIMITIVE) ||
		    hub_json_int64(doc, i, &mid) < 0 || mid <= 0) {
			p->error = "message_id must be a positive integer";
			return;
		}
		p->params[4] = "retry";
		p->params[5] = hub_pool_sprintf(pool, "%" PRId64, mid);
	} else if (hub_str_eqs(type, "read")) {
		p->params[4] = "unread";
		p->params[5] = NULL;
	} else if (hub_str_eqs(type, "assign")) {
		const char *assignee = cl->sub;

		i = hub_json_get(doc, 0, "assignee");
		if (i >= 0 && hub_json_is_null(doc, i))
			assignee = NULL;
		else if (i >= 0 && str_field(doc, pool, "assignee", HUB_JWT_ID_MAX - 1,
					     &assignee) < 0) {
			p->error = "assignee must be a user id (1 to 127 bytes) or null";
			return;
		}
		p->params[4] = "assignee";
		p->params[5] = assignee;
	} else { /* mode */
		struct hub_str m;

		i = hub_json_get(doc, 0, "mode");
		if (i < 0 || hub_json_string(doc, i, pool, &m) < 0 ||
		    !(hub_str_eqs(m, "ai") || hub_str_eqs(m, "human"))) {
			p->error = "mode must be \"ai\" or \"human\"";
			return;
		}
		p->params[4] = "mode";
		p->params[5] = hub_str_eqs(m, "ai") ? "ai" : "human";
	}
}

struct hub_inbox_cmd *hub_inbox_run(struct hub_store *store, struct hub_bus *bus,
				    const struct hub_inbox_caller *who,
				    const struct hub_json_doc *doc, struct hub_pool *pool,
				    hub_inbox_reply_cb *cb, void *data)
{
	struct hub_buf out = HUB_BUF_INIT;
	struct hub_inbox_cmd *cmd = hub_xcalloc(1, sizeof(*cmd));
	struct parsed p = { 0 };
	struct hub_str type = HUB_STR_NULL;
	const char *error = "bad_request";
	int ret;

	cmd->bus = bus;
	cmd->store = store;
	cmd->cb = cb;
	cmd->data = data;
	cmd->conn = who->conn;
	hub_buf_init(&cmd->ref);
	add_ref(&cmd->ref, doc, pool);
	snprintf(cmd->tenant, sizeof(cmd->tenant), "%s", who->claims->tid);
	snprintf(cmd->user, sizeof(cmd->user), "%s", who->claims->sub);

	if (hub_json_string(doc, hub_json_get(doc, 0, "type"), pool, &type) < 0) {
		p.error = "type must be a string";
	} else if (!(hub_str_eqs(type, "send") || hub_str_eqs(type, "read") ||
		     hub_str_eqs(type, "assign") || hub_str_eqs(type, "mode") ||
		     hub_str_eqs(type, "typing") || hub_str_eqs(type, "retry"))) {
		error_frame(&out, hub_buf_str(&cmd->ref), "bad_request",
			    HUB_STR("unknown command type"));
		goto answer;
	} else {
		int r = hub_json_get(doc, 0, "ref");

		if (r >= 0 && strcmp(cmd->ref.p, "null") == 0 && !hub_json_is_null(doc, r))
			p.error = "ref must be a string (at most 256 bytes) or a number";
		else
			parse(who, doc, pool, type, &p, cmd);
		cmd->queues = hub_str_eqs(type, "send") || hub_str_eqs(type, "retry");
	}
	if (p.error) {
		error_frame(&out, hub_buf_str(&cmd->ref), "bad_request", hub_str_from(p.error));
		goto answer;
	}
	ret = hub_store_query(store, p.sql, p.nparams, p.params, on_result, cmd);
	if (ret == 0)
		return cmd;
	hub_log_warn(TAG, "tenant=%s: command not run: %s", cmd->tenant, strerror(-ret));
	error = "unavailable";
	error_frame(&out, hub_buf_str(&cmd->ref), error,
		    ret == -EAGAIN ? HUB_STR("the server is busy; try again")
				   : HUB_STR("the database is unavailable; try again"));
answer:
	cb(data, hub_buf_str(&out), error);
	hub_buf_release(&out);
	cmd_free(cmd);
	return NULL;
}

void hub_inbox_cancel(struct hub_inbox_cmd *cmd)
{
	if (cmd)
		cmd->cb = NULL;
}
