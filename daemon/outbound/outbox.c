/* daemon/outbound/outbox.c - the outbox sender: claim, build, send, classify, record.
 * A job is one claimed row; it owns a pool for its strings and request, a timer for its
 * waits, and the reference to the config snapshot its channel points into. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "daemon/outbound/outbox.h"
#include "adapters/adapter.h"
#include "config/config.h"
#include "daemon/core/metrics.h"
#include "daemon/data/store.h"
#include "daemon/net/httpc.h"
#include "lib/backoff.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/medialink.h"
#include "lib/pace.h"
#include "lib/pool.h"
#include "lib/utf8.h"

#define TAG "outbox"
#define IDLE_POLL_MS 5000   /* looked at even without a wake (a row of an instance that died) */
#define DB_RETRY_MS 1000    /* after a failed claim or a failed record of a result */
#define MAX_PARTS 64        /* a text that needs more parts is refused */
#define PACE_EXPIRE_US 10000000 /* pacing keys that limit nothing are dropped this often */
#define RECORD_BATCH 512    /* results recorded in one transaction, at most */
/* A result waits this long for others to share its record (one COMMIT, one numbering of
 * the events) when no record runs; while one runs, they wait for it anyway. */
#define RECORD_GATHER_MS 2

static const char claim_sql[] =
	"SELECT outbox_id, attempts, channel, recipient, type, text, reply_to, window_open, "
	"media_upload, media_filename, tenant_id FROM hub_outbox_claim($1::integer, $2::integer)";
static const char next_sql[] =
	"SELECT ceil(extract(epoch FROM hub_outbox_next() - clock_timestamp()) * 1000)::bigint";
static const char record_sql[] =
	"SELECT tenant, event_id, event, data FROM hub_outbox_record($1::jsonb)";
static const char split_sql[] =
	"SELECT tenant, event_id, event, data FROM hub_outbox_split($1, $2::bigint, $3::jsonb)";

enum col { C_ID, C_ATTEMPTS, C_CHANNEL, C_RECIPIENT, C_TYPE, C_TEXT, C_REPLY_TO, C_WINDOW,
	   C_MEDIA, C_MEDIA_FILENAME, C_TENANT };

struct job {
	struct hub_outbox *ob;
	struct job *prev, *next;       /* ob->jobs */
	uv_timer_t timer;              /* waits: pacing, a record of the result tried again */
	struct hub_config *cfg;        /* the snapshot the job was claimed with */
	struct hub_pool pool;          /* the row's strings, the request, the answer's slices */
	int64_t id;
	int attempts;
	bool window_open;
	struct hub_str tenant, channel, recipient, type, text, reply_to;
	int64_t media;                 /* an upload sent by its signed URL; 0: none */
	struct hub_str media_filename;
	struct hub_httpc_call *call;   /* while the platform is asked */
	/* the outcome to record, a JSON object for hub_outbox_record, kept to be tried again
	 * while the database is away */
	struct hub_str result;
	struct job *rnext;             /* ob->records, or the batch being recorded */
	uint64_t record_until;         /* uv_now() after which the lease may have run out */
	bool retry;                    /* result is a retry: pending again, due later */
	uint64_t send_by;              /* uv_now() after which no send starts (half the lease) */
};

struct hub_outbox {
	uv_loop_t *loop;
	struct hub_store *store;
	struct hub_httpc *httpc;
	struct hub_metrics *metrics;
	struct hub_config *cfg;
	hub_publish_fn *publish;
	void *data;
	uv_timer_t timer;              /* the next due row, or a retry of the claim */
	uv_timer_t record_timer;       /* the next record: gathering, or again after a failure */
	int closing;                   /* timers whose close has not run yet */
	struct job *jobs;
	/* group commit: the results waiting for the next record, and the batch in flight */
	struct job *records, **records_tail, *recording;
	bool claiming;                 /* a claim or next query runs */
	int claim_limit;               /* rows the claim in flight asked for */
	/* a claim was sent while a record ran: its snapshot may predate the record's COMMIT,
	 * so a row behind a recorded one may have been skipped; look again after the record */
	bool claimed_in_record;
	bool record_retry;             /* the batch being recorded holds a retry: next due */
	/* retries recorded; of them, the next query in flight and the timer know the first
	 * next_asked and timed: a retry recorded since the timer was set needs a next query */
	uint64_t retries, next_asked, timed;
	uint64_t claim_at;             /* uv_now() when the claim query was sent */
	uint64_t lease_warned_at;      /* uv_now() of the last "lease too short" warning */
	bool again;                    /* something woke us while it ran: claim once more */
	bool stopped;
	struct hub_pace *pace;         /* per account and per recipient (outbound.pacing) */
	uint64_t pace_expired;         /* µs: when hub_pace_expire last ran */
	int in_flight;                 /* jobs: claimed and not ended */
};

static void poll_outbox(struct hub_outbox *ob);

/* hub_outbound_<name>_total{platform="...",result="..."} += 1 (result NULL: no label) */
static void count(struct job *job, const char *name, const char *help, const char *result)
{
	const struct hub_channel *ch = hub_config_channel(job->cfg, job->channel);
	char labels[96];

	snprintf(labels, sizeof(labels), "platform=\"%s\"%s%s%s",
		 ch ? hub_channel_kind_name(ch->kind) : "unknown", result ? ",result=\"" : "",
		 result ? result : "", result ? "\"" : "");
	hub_metrics_count(job->ob->metrics, name, help, labels, 1);
}

static void count_send(struct job *job, const char *result)
{
	count(job, "outbound_sends", "Outbox sends by result: sent, retry, failed", result);
}

/* ---- waking up ---- */

static void on_timer(uv_timer_t *t)
{
	poll_outbox(t->data);
}

static void wake_in(struct hub_outbox *ob, uint64_t ms)
{
	if (!ob->stopped)
		uv_timer_start(&ob->timer, on_timer, ms, 0);
}

static void on_notify(const char *payload, void *data)
{
	(void)payload; /* NULL when LISTEN (re)took effect: look, as after any NOTIFY */
	poll_outbox(data);
}

static void on_next(int status, PGresult *res, void *data)
{
	struct hub_outbox *ob = data;
	uint64_t ms = IDLE_POLL_MS;

	ob->claiming = false;
	if (status == 0)
		ob->timed = ob->next_asked; /* the timer is set for those retries */
	if (status == 0 && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		long long due = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		ms = due <= 0 ? 0 : due < IDLE_POLL_MS ? (uint64_t)due : IDLE_POLL_MS;
	} else if (status < 0) {
		ms = DB_RETRY_MS;
	}
	if (ob->again)
		poll_outbox(ob);
	else
		wake_in(ob, ms);
}

/* ---- one job ---- */

static void on_job_closed(uv_handle_t *h)
{
	struct job *job = h->data;

	hub_pool_release(&job->pool);
	free(job);
}

static void job_end(struct job *job)
{
	struct hub_outbox *ob = job->ob;

	if (job->prev)
		job->prev->next = job->next;
	else
		ob->jobs = job->next;
	if (job->next)
		job->next->prev = job->prev;
	ob->in_flight--;
	hub_config_unref(job->cfg);
	job->cfg = NULL;
	uv_close((uv_handle_t *)&job->timer, on_job_closed);
}

/* A job that ends outside a record (shut down, put off for the lease): its room may be
 * what a claim waits for. */
static void job_end_poll(struct job *job)
{
	struct hub_outbox *ob = job->ob;

	job_end(job);
	if (!ob->stopped && ob->again)
		poll_outbox(ob); /* room for one more */
}

static void record_flush(struct hub_outbox *ob);

static void on_record_timer(uv_timer_t *t)
{
	record_flush(t->data);
}

/* True when the record's result says that undelivered rows wait behind the rows it ended:
 * hub_outbox_record's row (NULL, NULL, 'outbox.waiting', NULL) (0022). */
static bool rows_waiting(PGresult *res)
{
	for (int i = PQntuples(res) - 1; i >= 0 && PQnfields(res) == 4; i--)
		if (PQgetisnull(res, i, 1) && strcmp(PQgetvalue(res, i, 2), "outbox.waiting") == 0)
			return true;
	return false;
}

static void on_recorded(int status, PGresult *res, void *data)
{
	struct hub_outbox *ob = data;
	struct job *batch = ob->recording, *job, *next, *keep = NULL, **keep_tail = &keep;
	uint64_t now = uv_now(ob->loop);
	/* Claim again only when this record can have made rows due: rows of the conversations
	 * it ended wait behind them, a retry's due time is to be known, a claim that ran
	 * meanwhile may not have seen the COMMIT, or a claim waits for room (not after every
	 * record: most find nothing, and that cost a claim and a next query per reply). */
	bool look = status != 0 || ob->record_retry || ob->claimed_in_record || ob->again ||
		    rows_waiting(res);

	ob->recording = NULL;
	if (status == 0 && ob->record_retry)
		ob->retries++;
	ob->record_retry = false;
	ob->claimed_in_record = false;
	if (status == 0)
		hub_publish_rows(ob->publish, ob->data, res);
	else if (status != -ECANCELED)
		hub_log_warn(TAG, "cannot record %s results (%s): trying again",
			     batch && batch->rnext ? "some" : "a", strerror(-status));
	for (job = batch; job; job = next) {
		next = job->rnext;
		job->rnext = NULL;
		if (status == 0 || status == -ECANCELED || ob->stopped) {
			job_end(job);
		} else if (now < job->record_until) {
			/* the outcome is known here only: kept until the database is back */
			*keep_tail = job;
			keep_tail = &job->rnext;
		} else {
			hub_log_err(TAG, "outbox=%" PRId64 ": result not recorded (%s): the row's "
				    "lease ends and it is tried again", job->id, strerror(-status));
			job_end(job);
		}
	}
	if (keep) { /* ahead of what came meanwhile */
		*keep_tail = ob->records;
		if (!ob->records)
			ob->records_tail = keep_tail;
		ob->records = keep;
		uv_timer_start(&ob->record_timer, on_record_timer, DB_RETRY_MS, 0);
	} else {
		record_flush(ob);
	}
	if (look && !ob->stopped)
		poll_outbox(ob);
}

/* Records the waiting results, up to RECORD_BATCH, in one transaction (hub_outbox_record):
 * one COMMIT and one append to each tenant's log for them all, while results that come
 * meanwhile wait for the next (as ingest's group commit). One batch at a time. */
static void record_flush(struct hub_outbox *ob)
{
	struct hub_buf json = HUB_BUF_INIT;
	struct job **link = &ob->records;
	const char *params[1];
	int n = 0, ret;

	if (ob->recording || !ob->records || uv_is_active((uv_handle_t *)&ob->record_timer))
		return;
	hub_buf_addch(&json, '[');
	while (*link && n < RECORD_BATCH) {
		if (n++)
			hub_buf_addch(&json, ',');
		hub_buf_addstr(&json, (*link)->result);
		if ((*link)->retry)
			ob->record_retry = true;
		link = &(*link)->rnext;
	}
	hub_buf_addch(&json, ']');
	ob->recording = ob->records;
	ob->records = *link;
	*link = NULL;
	if (!ob->records)
		ob->records_tail = &ob->records;
	params[0] = json.p;
	ret = hub_store_query(ob->store, record_sql, 1, params, on_recorded, ob);
	hub_buf_release(&json);
	if (ret < 0)
		on_recorded(ret, NULL, ob);
}

/* Queues the job's outcome (a JSON object: its row's id and what became of it) for the
 * next record. */
static void job_finish(struct job *job, struct hub_buf *result)
{
	struct hub_outbox *ob = job->ob;
	const struct hub_settings *s = hub_config_settings(job->cfg);

	job->result = hub_pool_strcopy(&job->pool, hub_buf_str(result));
	hub_buf_release(result);
	job->record_until = uv_now(ob->loop) + (uint64_t)s->outbound.lease_ms / 2;
	*ob->records_tail = job;
	ob->records_tail = &job->rnext;
	if (!ob->recording && !uv_is_active((uv_handle_t *)&ob->record_timer))
		uv_timer_start(&ob->record_timer, on_record_timer, RECORD_GATHER_MS, 0);
}

/* {"id":N,"tenant":"..","<what>":<value>,"code":"..","error":".."} (value raw JSON, code
 * and error strings or omitted). */
static void result_json(struct hub_buf *b, const struct job *job, const char *what,
			const char *raw, const char *code, const char *error)
{
	hub_buf_addf(b, "{\"id\":%" PRId64 ",\"tenant\":", job->id);
	hub_json_add_str(b, job->tenant);
	hub_buf_addf(b, ",\"%s\":%s", what, raw);
	if (code) {
		hub_buf_adds(b, ",\"code\":");
		hub_json_add_str(b, hub_str_from(code));
	}
	if (error) {
		hub_buf_adds(b, ",\"error\":");
		hub_json_add_str(b, hub_str_from(error));
	}
	hub_buf_addch(b, '}');
}

static void job_failed(struct job *job, const char *code, const char *why)
{
	hub_log_info(TAG, "outbox=%" PRId64 " channel=%.*s: failed (%s)", job->id,
		     HUB_STR_FMT(job->channel), code);
	struct hub_buf r = HUB_BUF_INIT;

	count_send(job, "failed");
	result_json(&r, job, "failed", "true", code, why);
	job_finish(job, &r);
}

/* Not sent this time: again after the backoff of this attempt, or at least after
 * retry_after_ms when the platform asked for it; failed once the attempts are used up. */
static void job_retry(struct job *job, const char *code, const char *why, int64_t retry_after_ms)
{
	const struct hub_settings *s = hub_config_settings(job->cfg);
	int64_t delay;
	struct hub_buf r = HUB_BUF_INIT;

	if (job->attempts >= s->outbound.max_attempts) {
		job_failed(job, code, hub_pool_sprintf(&job->pool, "not accepted after %d attempts: %s",
						       job->attempts, why));
		return;
	}
	delay = (int64_t)hub_backoff_ms((uint64_t)s->outbound.retry_base_ms,
					(uint64_t)s->outbound.retry_max_ms, (unsigned)job->attempts);
	if (retry_after_ms > delay)
		delay = retry_after_ms;
	if (delay > INT32_MAX)
		delay = INT32_MAX;
	hub_log_debug(TAG, "outbox=%" PRId64 " channel=%.*s: attempt %d not accepted (%s), "
		      "again in %" PRId64 " ms", job->id, HUB_STR_FMT(job->channel),
		      job->attempts, code, delay);
	count_send(job, "retry");
	job->retry = true;
	result_json(&r, job, "retry", hub_pool_sprintf(&job->pool, "%" PRId64, delay), code, why);
	job_finish(job, &r);
}

static void on_sent(int status, const struct hub_httpc_resp *resp, void *data)
{
	struct job *job = data;
	const struct hub_channel *ch = hub_config_channel(job->cfg, job->channel);
	const struct hub_adapter *a = hub_adapter_for(ch->kind);
	struct hub_send_result r;

	job->call = NULL;
	if (status == -ECANCELED) { /* shutting down: the lease brings the row back */
		job_end_poll(job);
		return;
	}
	(void)a->parse_send_result(&job->pool, resp ? resp->status : 0,
				   resp ? hub_httpc_resp_header(resp, "retry-after") : HUB_STR_NULL,
				   resp ? resp->body : HUB_STR_NULL, &r);
	if (status < 0)
		r.error = hub_str_from(hub_pool_sprintf(&job->pool, "no answer from %s: %s",
							a->name, strerror(-status)));
	const char *code = hub_pool_strndup(&job->pool, r.error_code.p, r.error_code.len);
	const char *why = hub_pool_strndup(&job->pool, r.error.p, r.error.len);

	switch (r.verdict) {
	case HUB_SEND_OK: {
		struct hub_buf id = HUB_BUF_INIT, rec = HUB_BUF_INIT;

		count_send(job, "sent");
		hub_json_add_str(&id, r.external_id);
		result_json(&rec, job, "sent", id.p, NULL, NULL);
		hub_buf_release(&id);
		job_finish(job, &rec);
		break;
	}
	case HUB_SEND_RETRY:
		job_retry(job, status < 0 ? "network" : code, why, r.retry_after_ms);
		break;
	case HUB_SEND_TOKEN:
		hub_log_warn(TAG, "channel=%s: the platform refused its access token (%s): the "
			     "admin must set a new one", ch->id, code);
		job_failed(job, code, why);
		break;
	case HUB_SEND_WINDOW:
	case HUB_SEND_PERMANENT:
		job_failed(job, code, why);
		break;
	}
}

static void job_send_now(struct job *job)
{
	const struct hub_settings *s = hub_config_settings(job->cfg);
	const struct hub_channel *ch = hub_config_channel(job->cfg, job->channel);
	const struct hub_adapter *a = hub_adapter_for(ch->kind);
	struct hub_send_msg msg = { .type = HUB_MSG_TEXT, .recipient = job->recipient,
				    .text = job->text, .reply_to = job->reply_to };
	struct hub_buf url = HUB_BUF_INIT;
	struct hub_send_req sr;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_httpc_header hdrs[2];
	size_t nh = 0;
	int ret;

	if (job->media) {
		/* the platform fetches the upload from the hub (PLATFORMS.md: by link / URL) */
		struct hub_medialink_key key;

		hub_medialink_key_init(&key, hub_str_from(s->auth.jwt_secret));
		hub_medialink_upload_url(&key, s->media.public_url, job->media,
					 job->media_filename.p, time(NULL) + s->media.link_ttl_s,
					 &url);
		msg.type = hub_str_eqs(job->type, "image") ? HUB_MSG_IMAGE : HUB_MSG_DOCUMENT;
		msg.media_url = hub_pool_strcopy(&job->pool, hub_buf_str(&url));
		msg.filename = job->media_filename;
		hub_buf_release(&url);
	}
	if (a->build_send(&job->pool, ch, s->platforms.meta_api_version, &msg, &sr, &err) < 0) {
		job_failed(job, "invalid", hub_pool_strdup(&job->pool, err.msg));
		return;
	}
	if (sr.authorization.len)
		hdrs[nh++] = (struct hub_httpc_header){
			"Authorization",
			hub_pool_strndup(&job->pool, sr.authorization.p, sr.authorization.len) };
	hdrs[nh++] = (struct hub_httpc_header){
		"Content-Type", hub_pool_strndup(&job->pool, sr.content_type.p, sr.content_type.len) };
	struct hub_httpc_req req = {
		.method = sr.method,
		.url = hub_pool_sprintf(&job->pool, "%s%.*s", s->platforms.url[ch->kind],
					HUB_STR_FMT(sr.path)),
		.headers = hdrs,
		.nheaders = nh,
		.body = sr.body,
		.connect_timeout_ms = s->platforms.connect_timeout_ms,
		.response_timeout_ms = s->platforms.response_timeout_ms,
		.total_timeout_ms = s->platforms.connect_timeout_ms + s->platforms.response_timeout_ms,
	};
	ret = hub_httpc_request(job->ob->httpc, &req, on_sent, job, &job->call);
	if (ret < 0)
		job_retry(job, "busy", hub_pool_sprintf(&job->pool, "not sent: %s", strerror(-ret)),
			  0);
}

static void on_paced(uv_timer_t *t)
{
	job_send_now(t->data);
}

/* Within the platform's limits (adapter rate_per_s, pair_*): a send that would pass one
 * waits on the job's timer for its reserved slot; other conversations are not held back. */
static void job_send(struct job *job)
{
	struct hub_outbox *ob = job->ob;
	const struct hub_channel *ch = hub_config_channel(job->cfg, job->channel);
	const struct hub_adapter *a = hub_adapter_for(ch->kind);
	uint64_t now = uv_hrtime() / 1000, wait = 0;

	if (!hub_config_settings(job->cfg)->outbound.pacing) {
		job_send_now(job);
		return;
	}
	if (now - ob->pace_expired > PACE_EXPIRE_US) {
		hub_pace_expire(ob->pace, now);
		ob->pace_expired = now;
	}
	/* the account's rate, the recipient's pair rate */
	struct {
		struct hub_str key;
		uint64_t interval;
		unsigned burst;
	} lim[2] = {
		{ hub_str_from(hub_pool_sprintf(&job->pool, "a|%s", ch->id)),
		  a->rate_per_s ? 1000000 / a->rate_per_s : 0, a->rate_per_s },
		{ hub_str_from(hub_pool_sprintf(&job->pool, "r|%s|%.*s", ch->id,
						HUB_STR_FMT(job->recipient))),
		  (uint64_t)a->pair_interval_ms * 1000, a->pair_burst },
	};
	for (size_t i = 0; i < HUB_ARRAY_SIZE(lim); i++) {
		uint64_t w = hub_pace_wait(ob->pace, lim[i].key, now, lim[i].interval,
					   lim[i].burst);

		if (w > wait)
			wait = w;
	}
	if (uv_now(ob->loop) + (wait + 999) / 1000 > job->send_by) {
		/* Its slot comes after half of the lease: sent then, it could still be in flight
		 * when the lease ends and another sender (of any instance) claims and sends it
		 * again. Left to the lease, its slot not taken: never sent twice. */
		count(job, "outbound_lease_short",
		      "Sends put off because their pacing wait would outlast the lease", NULL);
		if (!ob->lease_warned_at || uv_now(ob->loop) - ob->lease_warned_at > 60000) {
			ob->lease_warned_at = uv_now(ob->loop);
			hub_log_warn(TAG, "outbox row %lld: its pacing slot comes after half of "
				     "outbound.lease_ms: left for the lease to bring back; raise "
				     "outbound.lease_ms", (long long)job->id);
		}
		job_end_poll(job);
		return;
	}
	for (size_t i = 0; i < HUB_ARRAY_SIZE(lim); i++)
		hub_pace_reserve(ob->pace, lim[i].key, now, lim[i].interval, lim[i].burst);
	if (!wait) {
		job_send_now(job);
		return;
	}
	count(job, "outbound_paced", "Sends that waited for a platform's rate limit", NULL);
	uv_timer_start(&job->timer, on_paced, (wait + 999) / 1000, 0);
}

static void on_split(int status, PGresult *res, void *data)
{
	struct job *job = data;

	if (status < 0) {
		job_retry(job, "database", "the long text could not be split", 0);
		return;
	}
	hub_publish_rows(job->ob->publish, job->ob->data, res);
	job_send(job);
}

/* A text over the platform's limit: the first part stays this job's; the others become
 * messages of their own (hub_outbox_split), sent after it. */
static void job_split(struct job *job, const struct hub_adapter *a)
{
	struct hub_buf parts = HUB_BUF_INIT;
	struct hub_str rest = job->text;
	const char *params[3];
	int n = 0, ret;

	hub_buf_addch(&parts, '[');
	while (rest.len && n < MAX_PARTS) {
		size_t len = hub_utf8_split_next(rest, a->text_max, a->text_unit);

		if (n == 0)
			job->text = (struct hub_str){ rest.p, len };
		if (n++)
			hub_buf_addch(&parts, ',');
		hub_json_add_str(&parts, (struct hub_str){ rest.p, len });
		rest.p += len;
		rest.len -= len;
	}
	hub_buf_addch(&parts, ']');
	if (rest.len) {
		hub_buf_release(&parts);
		job_failed(job, "too_long", hub_pool_sprintf(&job->pool, "the text needs more than "
							     "%d messages", MAX_PARTS));
		return;
	}
	params[0] = job->tenant.p;
	params[1] = hub_pool_sprintf(&job->pool, "%" PRId64, job->id);
	params[2] = hub_pool_strndup(&job->pool, parts.p, parts.len);
	hub_buf_release(&parts);
	ret = hub_store_query(job->ob->store, split_sql, 3, params, on_split, job);
	if (ret < 0)
		on_split(ret, NULL, job);
}

/* The website chat: the hub is the platform. The reply is stored, and the visitor's socket
 * (daemon/webchat/) sends it now or when the visitor comes back (its resume reads the
 * log); so it is sent once it is recorded, with a platform id of the hub's own, and the
 * visitor's socket records delivered and read. Text only. */
static void job_web(struct job *job)
{
	struct hub_buf id = HUB_BUF_INIT, rec = HUB_BUF_INIT;

	if (job->media || !hub_str_eqs(job->type, "text")) {
		job_failed(job, "type", "the website chat carries texts only");
		return;
	}
	count_send(job, "sent");
	hub_buf_addf(&id, "\"web-o%" PRId64 "\"", job->id);
	result_json(&rec, job, "sent", id.p, NULL, NULL);
	hub_buf_release(&id);
	job_finish(job, &rec);
}

static void job_start(struct job *job)
{
	const struct hub_channel *ch = hub_config_channel(job->cfg, job->channel);
	const struct hub_adapter *a = ch ? hub_adapter_for(ch->kind) : NULL;

	if (ch && !ch->enabled) {
		/* disabled or deleted by its admin: nothing goes out through it any more */
		job_failed(job, "channel_disabled", "the channel is disabled or deleted: the "
			   "message was not sent");
		return;
	}
	if (ch && ch->kind == HUB_CHANNEL_WEB) {
		job_web(job);
		return;
	}
	if (!a || !a->build_send) {
		job_retry(job, "channel", "the channel is not configured here", 0);
		return;
	}
	if (!job->window_open) {
		job_failed(job, "window", "the customer last wrote more than 24 hours ago: the "
			   "platform accepts no free-form message until they write again");
		return;
	}
	if (!job->recipient.len) {
		job_failed(job, "recipient", "the contact has no id on this channel");
		return;
	}
	if (job->media && !hub_config_settings(job->cfg)->media.public_url) {
		job_failed(job, "media", "media.public_url is not set: the platform cannot fetch "
			   "the file from the hub");
		return;
	}
	if (!job->media && !hub_str_eqs(job->type, "text")) {
		job_failed(job, "type", "only texts and uploads can be sent");
		return;
	}
	if (hub_utf8_units(job->text, a->text_unit) > a->text_max)
		job_split(job, a);
	else
		job_send(job);
}

static struct hub_str col(struct job *job, PGresult *res, int row, enum col c)
{
	return hub_pool_strcopy(&job->pool, (struct hub_str){ PQgetvalue(res, row, c),
							      (size_t)PQgetlength(res, row, c) });
}

static void on_claimed(int status, PGresult *res, void *data)
{
	struct hub_outbox *ob = data;
	int rows, ret;

	if (status < 0) {
		ob->claiming = false;
		if (status != -ECANCELED) {
			hub_log_warn(TAG, "cannot claim from the outbox: %s", strerror(-status));
			wake_in(ob, DB_RETRY_MS);
		}
		return;
	}
	rows = PQntuples(res);
	for (int i = 0; i < rows; i++) {
		struct job *job = hub_xcalloc(1, sizeof(*job));

		job->ob = ob;
		hub_pool_init(&job->pool);
		uv_timer_init(ob->loop, &job->timer);
		job->timer.data = job;
		job->cfg = hub_config_ref(ob->cfg);
		/* the lease counts from the database's now(), after claim_at: half of it for
		 * waiting and asking the platform (as for recording, job->record_until) */
		job->send_by = ob->claim_at +
			       (uint64_t)hub_config_settings(ob->cfg)->outbound.lease_ms / 2;
		job->id = strtoll(PQgetvalue(res, i, C_ID), NULL, 10);
		job->attempts = atoi(PQgetvalue(res, i, C_ATTEMPTS));
		job->tenant = col(job, res, i, C_TENANT);
		job->channel = col(job, res, i, C_CHANNEL);
		job->recipient = col(job, res, i, C_RECIPIENT);
		job->type = col(job, res, i, C_TYPE);
		job->text = col(job, res, i, C_TEXT);
		job->reply_to = col(job, res, i, C_REPLY_TO);
		job->window_open = PQgetvalue(res, i, C_WINDOW)[0] == 't';
		if (!PQgetisnull(res, i, C_MEDIA)) {
			job->media = strtoll(PQgetvalue(res, i, C_MEDIA), NULL, 10);
			job->media_filename = col(job, res, i, C_MEDIA_FILENAME);
		}
		job->next = ob->jobs;
		if (ob->jobs)
			ob->jobs->prev = job;
		ob->jobs = job;
		ob->in_flight++;
	}
	ob->claiming = false;
	/* the new jobs are the first rows of ob->jobs; taken out before any starts, as a job
	 * may end (and leave the list) at once */
	struct job **fresh = hub_xcalloc((size_t)rows + 1, sizeof(*fresh));
	struct job *j = ob->jobs;
	for (int i = 0; i < rows; i++, j = j->next)
		fresh[i] = j;
	for (int i = 0; i < rows; i++)
		job_start(fresh[i]);
	free(fresh);
	if (ob->again || (rows > 0 && rows >= ob->claim_limit)) {
		poll_outbox(ob); /* there may be more due */
	} else if (ob->timed == ob->retries &&
		   (rows > 0 || uv_is_active((uv_handle_t *)&ob->timer))) {
		/* All that was due at the claim's snapshot is taken; what is queued later wakes
		 * us, and the timer set by the last next query still runs (or the idle poll): no
		 * next query now, unless a retry was recorded since the timer was set, or the
		 * timer ran out (it is what looks for leases that ended and retries now due). */
		if (!uv_is_active((uv_handle_t *)&ob->timer))
			wake_in(ob, IDLE_POLL_MS);
	} else {
		ob->next_asked = ob->retries;
		ret = hub_store_query(ob->store, next_sql, 0, NULL, on_next, ob);
		if (ret == 0)
			ob->claiming = true;
		else
			wake_in(ob, DB_RETRY_MS);
	}
}

static void poll_outbox(struct hub_outbox *ob)
{
	const struct hub_settings *s;
	const char *params[2];
	char limit[16], lease[16];
	int room, ret;

	if (ob->stopped || !ob->cfg)
		return;
	s = hub_config_settings(ob->cfg);
	if (!s->outbound.enabled)
		return;
	room = s->outbound.in_flight - ob->in_flight;
	if (ob->claiming || room <= 0) {
		ob->again = true; /* the claim's end, or a job's, looks again */
		return;
	}
	ob->again = false;
	ob->claim_limit = room < s->outbound.batch ? room : s->outbound.batch;
	snprintf(limit, sizeof(limit), "%d", ob->claim_limit);
	snprintf(lease, sizeof(lease), "%d", s->outbound.lease_ms);
	params[0] = limit;
	params[1] = lease;
	ret = hub_store_query(ob->store, claim_sql, 2, params, on_claimed, ob);
	if (ret < 0) {
		if (ret != -ECANCELED)
			wake_in(ob, DB_RETRY_MS);
		return;
	}
	ob->claiming = true;
	ob->claim_at = uv_now(ob->loop);
	if (ob->recording)
		ob->claimed_in_record = true;
}

/* ---- the service ---- */

static double gauge_in_flight(void *data)
{
	return ((struct hub_outbox *)data)->in_flight;
}

int hub_outbox_new(uv_loop_t *loop, struct hub_store *store, struct hub_httpc *httpc,
		   struct hub_metrics *metrics, hub_publish_fn *publish, void *data,
		   struct hub_outbox **out, struct hub_err *err)
{
	struct hub_outbox *ob = hub_xcalloc(1, sizeof(*ob));
	int ret;

	ob->loop = loop;
	ob->store = store;
	ob->httpc = httpc;
	ob->metrics = metrics;
	ob->publish = publish;
	ob->data = data;
	uv_timer_init(loop, &ob->timer);
	ob->timer.data = ob;
	uv_timer_init(loop, &ob->record_timer);
	ob->record_timer.data = ob;
	ob->records_tail = &ob->records;
	ob->pace = hub_pace_new();
	ret = hub_store_listen(store, HUB_STORE_OUTBOX, on_notify, ob);
	if (ret < 0) {
		hub_outbox_free(ob);
		return hub_err_set(err, ret, "cannot listen for the outbox: %s", strerror(-ret));
	}
	hub_metrics_gauge(metrics, "hub_outbound_in_flight", "Outbox rows being sent here",
			  gauge_in_flight, ob);
	*out = ob;
	return 0;
}

void hub_outbox_set_config(struct hub_outbox *ob, struct hub_config *cfg)
{
	struct hub_config *old = ob->cfg;

	ob->cfg = hub_config_ref(cfg);
	hub_config_unref(old);
	poll_outbox(ob); /* the first snapshot, or outbound.enabled may have changed */
}

void hub_outbox_stop(struct hub_outbox *ob)
{
	struct job *job, *next;

	if (!ob)
		return;
	ob->stopped = true;
	uv_timer_stop(&ob->timer);
	uv_timer_stop(&ob->record_timer);
	while ((job = ob->records) != NULL) { /* the lease brings their rows back */
		ob->records = job->rnext;
		job->rnext = NULL;
		job_end(job);
	}
	ob->records_tail = &ob->records;
	/* a job waiting (for its pacing slot, or to record its result again) gives up: the
	 * lease brings its row back */
	for (job = ob->jobs; job; job = next) {
		next = job->next;
		if (uv_is_active((uv_handle_t *)&job->timer)) {
			uv_timer_stop(&job->timer);
			job_end(job);
		}
	}
}

static void on_outbox_closed(uv_handle_t *h)
{
	struct hub_outbox *ob = h->data;

	if (--ob->closing)
		return;
	hub_config_unref(ob->cfg);
	hub_pace_free(ob->pace);
	free(ob);
}

void hub_outbox_free(struct hub_outbox *ob)
{
	if (!ob)
		return;
	ob->stopped = true;
	hub_metrics_gauge_remove(ob->metrics, "hub_outbound_in_flight");
	ob->closing = 2;
	uv_close((uv_handle_t *)&ob->timer, on_outbox_closed);
	uv_close((uv_handle_t *)&ob->record_timer, on_outbox_closed);
}
