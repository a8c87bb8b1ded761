/* tests/fuzz/fuzz_inbox.c - the agents' websocket commands: daemon/inbox/inbox.c's
 * hub_inbox_run on any frame, as daemon/inbox/ws.c gives it (a JSON object of at most 1024
 * tokens), then the database's answer (`make fuzz-inbox`). hub_inbox_run calls the store
 * only once a command is valid, and then hub_store_query(); this target links a fake of it
 * (and of hub_bus_publish/hub_bus_ephemeral, and libpq's accessors: fakepg.h) instead of
 * daemon/data/, so the validation and the answer's handling run without PostgreSQL.
 *
 * Input: the frame, then optionally a NUL byte and the database's part: its first byte
 * picks the caller (bit 0: admin; bits 1-2: text_max 1, 16, 4096, 65536), what the store
 * does (bits 3-5: refuses with -EAGAIN or -ENOTCONN, answers -ECONNRESET, answers rows, or
 * the command is cancelled first) and the rest is the rows: lines of tab-separated kind,
 * event_id, event, data ("\N" is NULL), as hub_cmd() returns them.
 * Properties: the reply callback runs exactly once (at once for a malformed command and a
 * refused query, after the answer otherwise, never after a cancel), with a JSON object
 * frame of type "ack" or "error" whose ref is the command's (a string of at most 256 bytes
 * or a number) and whose code is the error given (NULL for an ack); a command reaching the
 * store has a known type, the caller's tenant and user, a positive conversation id, and a
 * text (send) that is UTF-8 within text_max characters without NUL; events go to the bus
 * with the caller's tenant and a positive id; typing goes out with the socket's id. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/data/bus.h"
#include "daemon/data/store.h"
#include "daemon/inbox/inbox.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "tests/fuzz/fakepg.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "inbox";

#define WS_JSON_TOKENS 1024 /* as daemon/inbox/ws.c */
#define CONN_ID 7

static const size_t text_maxes[4] = { 1, 16, 4096, 65536 };

/* Only addresses: the fakes check that they get these. */
static char store_tag, bus_tag;
#define STORE ((struct hub_store *)&store_tag)
#define BUS ((struct hub_bus *)&bus_tag)

enum store_mode { REFUSE_AGAIN, REFUSE_DOWN, ANSWER_DOWN, ANSWER_ROWS, CANCEL };

static struct {
	enum store_mode mode;
	const struct hub_jwt_claims *claims;
	size_t text_max;
	/* the query in flight */
	hub_store_cb *cb;
	void *cb_data;
	int queries;
	/* replies */
	int replies;
	struct hub_buf frame;
	const char *error;
	int publishes, ephemerals;
} fz;

/* ---- fakes of daemon/data/ ---- */

static bool positive_int(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	return *s && !*end && v > 0;
}

static size_t code_points(struct hub_str s)
{
	size_t n = 0;

	for (size_t i = 0; i < s.len; i++)
		n += ((unsigned char)s.p[i] & 0xc0) != 0x80;
	return n;
}

void hub_store_wake(struct hub_store *st, const char *channel)
{
	fuzz_check(st == STORE && strcmp(channel, HUB_STORE_OUTBOX) == 0, "wake");
}

int hub_store_query(struct hub_store *st, const char *sql, int nparams,
		    const char *const *params, hub_store_cb *cb, void *data)
{
	fuzz_check(st == STORE && sql && cb, "query");
	fuzz_check(nparams == 2 || nparams == 9, "%d parameters", nparams);
	fuzz_check(params[0] && strcmp(params[0], fz.claims->tid) == 0, "not the tenant's");
	if (nparams == 2) {
		fuzz_check(params[1] && positive_int(params[1]), "typing: conversation");
	} else {
		static const char *const cmds[] = { "send", "unread", "assignee", "mode",
						    "retry" };
		bool known = false;

		fuzz_check(params[1] && strcmp(params[1], fz.claims->sub) == 0, "not the user's");
		fuzz_check(params[2] && (strcmp(params[2], "true") == 0) ==
						(fz.claims->role == HUB_ROLE_ADMIN),
			   "admin flag");
		fuzz_check(params[3] && positive_int(params[3]), "conversation");
		for (size_t i = 0; i < HUB_ARRAY_SIZE(cmds); i++)
			known |= params[4] && strcmp(params[4], cmds[i]) == 0;
		fuzz_check(known, "command %s", params[4] ? params[4] : "(null)");
		if (strcmp(params[4], "send") == 0) {
			struct hub_str t = hub_str_from(params[5]);

			/* with an upload (params[8]) the text is its caption: may be empty */
			fuzz_check((t.len || params[8]) && hub_utf8_valid(t.p, t.len) &&
					   code_points(t) <= fz.text_max,
				   "send: text of %zu characters over %zu", code_points(t),
				   fz.text_max);
			fuzz_check(params[8] == NULL || positive_int(params[8]), "media_id");
			fuzz_check(params[7] == NULL || positive_int(params[7]), "reply_to");
			fuzz_check(params[6] == NULL || (strlen(params[6]) >= 1 &&
							 strlen(params[6]) <= 128),
				   "client_id");
		} else {
			fuzz_check(params[6] == NULL && params[7] == NULL && params[8] == NULL,
				   "send's parameters");
		}
		if (strcmp(params[4], "retry") == 0)
			fuzz_check(params[5] && positive_int(params[5]), "retry: message id");
		if (strcmp(params[4], "mode") == 0)
			fuzz_check(params[5] && (strcmp(params[5], "ai") == 0 ||
						 strcmp(params[5], "human") == 0),
				   "mode");
		if (strcmp(params[4], "assignee") == 0)
			fuzz_check(!params[5] || (strlen(params[5]) >= 1 &&
						  strlen(params[5]) < HUB_JWT_ID_MAX),
				   "assignee");
	}
	fz.queries++;
	if (fz.mode == REFUSE_AGAIN)
		return -EAGAIN;
	if (fz.mode == REFUSE_DOWN)
		return -ENOTCONN;
	fz.cb = cb;
	fz.cb_data = data;
	return 0;
}

void hub_bus_publish(struct hub_bus *bus, struct hub_str tenant, int64_t event_id,
		     struct hub_str event, struct hub_str data_json)
{
	(void)event;
	(void)data_json;
	/* event_id 0: queued, numbered by the bus */
	fuzz_check(bus == BUS && hub_str_eqs(tenant, fz.claims->tid) && event_id >= 0,
		   "publish: tenant or id %lld", (long long)event_id);
	fz.publishes++;
}

void hub_bus_ephemeral(struct hub_bus *bus, struct hub_str tenant, uint64_t origin,
		       struct hub_str event, struct hub_str data_json)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;

	fuzz_check(bus == BUS && hub_str_eqs(tenant, fz.claims->tid) && origin == CONN_ID &&
			   hub_str_eqs(event, "typing"),
		   "ephemeral");
	fuzz_check(hub_json_parse(&pool, data_json, 64, &doc, NULL) == 0 &&
			   hub_json_is(&doc, 0, HUB_JSON_OBJECT),
		   "typing's data is not a JSON object");
	hub_pool_release(&pool);
	fz.ephemerals++;
}

/* ---- the reply ---- */

static void on_reply(void *data, struct hub_str frame, const char *error)
{
	fuzz_check(data == &fz, "reply data");
	fz.replies++;
	hub_buf_reset(&fz.frame);
	hub_buf_addstr(&fz.frame, frame);
	fz.error = error;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s >= 0x7f)
			return false;
	return true;
}

/* The frame is {"type":"ack"|"error","ref":<the command's>,...}. */
static void check_frame(const struct hub_json_doc *cmd, struct hub_pool *pool, bool rows_json)
{
	struct hub_json_doc doc;
	struct hub_str type, s, want;
	int ref, cref;

	if (hub_json_parse(pool, hub_buf_str(&fz.frame), 1 << 16, &doc, NULL) < 0) {
		/* an ack carries the database's fields as they are */
		fuzz_check(!rows_json && !fz.error, "the reply is not JSON: %s", fz.frame.p);
		return;
	}
	fuzz_check(hub_json_is(&doc, 0, HUB_JSON_OBJECT) &&
			   hub_json_string(&doc, hub_json_get(&doc, 0, "type"), pool, &type) == 0,
		   "reply: %s", fz.frame.p);
	if (fz.error) {
		/* the database's codes are ASCII words; others come out as the JSON writer
		 * makes them (invalid UTF-8 as U+FFFD) */
		fuzz_check(hub_str_eqs(type, "error") &&
				   hub_json_string(&doc, hub_json_get(&doc, 0, "code"), pool, &s) ==
					   0 &&
				   (hub_str_eqs(s, fz.error) || !printable(fz.error)) &&
				   hub_json_is(&doc, hub_json_get(&doc, 0, "message"),
					       HUB_JSON_STRING),
			   "error reply: %s", fz.frame.p);
	} else {
		fuzz_check(hub_str_eqs(type, "ack"), "ack reply: %s", fz.frame.p);
	}
	ref = hub_json_get(&doc, 0, "ref");
	cref = hub_json_get(cmd, 0, "ref");
	fuzz_check(ref >= 0, "reply without a ref");
	if (hub_json_is(cmd, cref, HUB_JSON_STRING) && hub_json_string(cmd, cref, pool, &want) == 0 &&
	    want.len <= 256)
		fuzz_check(hub_json_string(&doc, ref, pool, &s) == 0 && hub_str_eq(s, want),
			   "ref not echoed: %s", fz.frame.p);
	else if (cref < 0 || !hub_json_is(cmd, cref, HUB_JSON_PRIMITIVE))
		fuzz_check(hub_json_is_null(&doc, ref), "ref %s", fz.frame.p);
}

/* Rows "kind\tevent_id\tevent\tdata\n..."; true when every ack row's data is a JSON
 * object (what hub_cmd() returns), so the ack must be JSON too. */
static PGresult *make_rows(struct hub_str s, struct hub_pool *pool, bool *json)
{
	PGresult *res = fakepg_new(4);

	*json = true;
	while (s.len) {
		const char *nl = memchr(s.p, '\n', s.len);
		size_t llen = nl ? (size_t)(nl - s.p) : s.len;
		struct hub_str line = { s.p, llen };
		int row = fakepg_add_row(res);

		for (int col = 0; col < 4; col++) {
			const char *tab = col < 3 ? memchr(line.p, '\t', line.len) : NULL;
			struct hub_str v = { line.p, tab ? (size_t)(tab - line.p) : line.len };

			if (!hub_str_eqs(v, "\\N"))
				fakepg_set(res, row, col, v.p, v.len);
			if (!tab)
				break;
			line.p += v.len + 1;
			line.len -= v.len + 1;
		}
		if (hub_str_eqs((struct hub_str){ PQgetvalue(res, row, 0),
						  (size_t)PQgetlength(res, row, 0) },
				"ack")) {
			struct hub_json_doc d;
			struct hub_str data = { PQgetvalue(res, row, 3),
						(size_t)PQgetlength(res, row, 3) };

			if (hub_json_parse(pool, data, 1 << 16, &d, NULL) < 0 ||
			    !hub_json_is(&d, 0, HUB_JSON_OBJECT))
				*json = false;
		}
		if (!nl)
			break;
		s.p += llen + 1;
		s.len -= llen + 1;
	}
	return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct hub_jwt_claims agent = { "agent-7", "fuzz", HUB_ROLE_AGENT, 0, 0 };
	static const struct hub_jwt_claims admin = { "admin-1", "fuzz", HUB_ROLE_ADMIN, 0, 0 };
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	struct hub_inbox_caller who;
	struct hub_inbox_cmd *cmd;
	const char *nul = memchr(data, '\0', size);
	struct hub_str frame = { (const char *)data, nul ? (size_t)(nul - (const char *)data) : size };
	struct hub_str db = HUB_STR_NULL;
	uint8_t ctl = 0;

	hub_log_set_level(HUB_LOG_ERROR);
	if (nul && nul + 1 < (const char *)data + size) {
		ctl = (uint8_t)nul[1];
		db = (struct hub_str){ nul + 2, (size_t)((const char *)data + size - nul - 2) };
	}
	fz.cb = NULL;
	fz.cb_data = NULL;
	fz.queries = fz.replies = fz.publishes = fz.ephemerals = 0;
	fz.error = NULL;
	hub_buf_init(&fz.frame);
	fz.claims = ctl & 1 ? &admin : &agent;
	fz.text_max = text_maxes[(ctl >> 1) & 3];
	fz.mode = (enum store_mode)(((ctl >> 3) & 7) % 5);
	if (!nul)
		fz.mode = ANSWER_ROWS;

	/* ws.c answers what is not a JSON object itself */
	if (hub_json_parse(&pool, frame, WS_JSON_TOKENS, &doc, NULL) < 0 ||
	    !hub_json_is(&doc, 0, HUB_JSON_OBJECT))
		goto out;
	who = (struct hub_inbox_caller){ fz.claims, CONN_ID, fz.text_max };
	cmd = hub_inbox_run(STORE, BUS, &who, &doc, &pool, on_reply, &fz);
	if (!cmd) {
		fuzz_check(fz.replies == 1 && fz.error && !fz.cb,
			   "answered at once: %d replies, error %s", fz.replies,
			   fz.error ? fz.error : "(none)");
		fuzz_check(fz.queries == 0 || fz.mode == REFUSE_AGAIN || fz.mode == REFUSE_DOWN,
			   "a query ran for a command answered at once");
		check_frame(&doc, &pool, true);
		goto out;
	}
	fuzz_check(fz.replies == 0 && fz.cb && fz.queries == 1, "a command in flight replied");
	if (fz.mode == CANCEL) {
		hub_inbox_cancel(cmd);
		fz.cb(-ECANCELED, NULL, fz.cb_data);
		fuzz_check(fz.replies == 0, "a cancelled command replied");
	} else if (fz.mode == ANSWER_DOWN) {
		fz.cb(-ECONNRESET, NULL, fz.cb_data);
		fuzz_check(fz.replies == 1 && fz.error, "no reply after a failed query");
		check_frame(&doc, &pool, true);
	} else {
		bool json;
		PGresult *res = make_rows(db, &pool, &json);

		fz.cb(0, res, fz.cb_data);
		fuzz_check(fz.replies == 1, "%d replies after the answer", fz.replies);
		check_frame(&doc, &pool, json);
		fakepg_free(res);
	}
out:
	hub_buf_release(&fz.frame);
	hub_pool_release(&pool);
	return 0;
}
