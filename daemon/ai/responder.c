/* daemon/ai/responder.c - see responder.h. A job is one claimed answer: claimed with its
 * context (hub_ai_take), it waits for a slot of its tenant and of its provider, asks, and
 * one query records how it ended (hub_ai_finish). It owns a pool for its strings and the
 * exchange (the vault), which is freed as soon as the answer is restored: nothing of it is
 * kept. */
#include "daemon/ai/responder.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "anonymizer/anon.h"
#include "assistant/assistant.h"
#include "config/config.h"
#include "daemon/core/metrics.h"
#include "daemon/data/channels.h"
#include "daemon/data/store.h"
#include "daemon/net/httpc.h"
#include "lib/backoff.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/pool.h"
#include "lib/secret.h"

#define TAG "ai"
#define IDLE_POLL_MS 60000   /* looked at even without a NOTIFY (one lost in a reconnect) */
#define DB_RETRY_MS 1000     /* after a failed claim */
#define CLAIM_BATCH 32       /* answers claimed per query, at most */
#define CONTEXT_TOKENS 65536 /* JSON tokens of one context, at most */

static const char claim_sql[] =
	"SELECT conversation_id, token, attempts, tenant_id, context, next_ms "
	"FROM hub_ai_take($1::integer, $2::integer)";
/* claim_sql's columns: a claimed job's first five; the last row has only next_ms */
enum { COL_CONV, COL_TOKEN, COL_ATTEMPTS, COL_TENANT, COL_CONTEXT, COL_NEXT_MS };
static const char next_sql[] =
	"SELECT ceil(extract(epoch FROM hub_ai_next() - clock_timestamp()) * 1000)::bigint";
static const char finish_sql[] =
	"SELECT tenant, event_id, event, data FROM hub_ai_finish($1, $2::bigint, $3::bigint, "
	"$4::bigint, $5, $6, $7, $8, $9::integer, $10::jsonb)";

/* The parts of the hub's own work on one answer (ai_exchanges.hub_parts, bench/ai). */
enum part {
	PART_CONTEXT, /* the context's JSON read into the job */
	PART_REQUEST, /* pseudonymized, built, its exact body guarded (hub_ai_exchange_new) */
	PART_PARSE,   /* the provider's answer parsed, counted in the metrics and breaker */
	PART_RESTORE, /* markers restored, shaped to the channel, the disclosure first */
	NPARTS
};
static const char *const part_names[NPARTS] = { "context", "request", "parse", "restore" };

/* One timed stretch of the hub's own work: wall time on the loop and the thread's CPU time
 * (which the machine's other load does not inflate). */
struct lap {
	uint64_t wall, cpu;
};

/* Requests in flight per tenant or per provider, and a provider's breaker. */
struct slot {
	struct slot *next;
	char *key;
	int in_flight;
	int failures;        /* in a row (providers) */
	uint64_t open_until; /* uv_now(): no request before (providers) */
};

struct job {
	struct hub_responder *r;
	struct job *prev, *next;  /* r->jobs */
	struct job *wnext;        /* r->waiting, for a slot */
	struct hub_pool pool;
	struct hub_config *cfg;   /* the snapshot it was claimed with */
	char conv[24], token[24];
	int attempts;             /* failed provider calls in a row before this one */
	/* the context */
	struct hub_json_doc doc;
	int64_t upto;
	struct hub_str channel, tenant, company, provider;
	struct hub_ai_settings settings;
	int reply_max_chars;
	struct hub_ai_texts disclosure, handoff;
	struct hub_str *phrases;
	size_t nphrases;
	bool disclosed;
	struct hub_ai_contact contact;
	struct hub_ai_turn *turns;
	size_t nturns;
	struct hub_str *pending;  /* the customer's texts since the company last wrote */
	size_t npending;
	/* the exchange */
	struct slot *tenant_slot, *provider_slot;
	struct hub_ai_exchange *ex;
	struct hub_ai_http_req req;
	struct hub_httpc_call *call;
	uint64_t hub_ns;          /* the hub's own work so far (wall time on the loop) */
	uint64_t cpu_ns;          /* the same, the loop thread's CPU time */
	uint64_t part_ns[NPARTS]; /* hub_ns by part */
	uint64_t asked_at;        /* uv_hrtime() when the request went */
	struct hub_jw x;          /* the exchange's record (ai_exchanges), being written */
	struct hub_buf xbuf;
	bool with_msg;            /* finishing with a message to send */
	bool settled;             /* its end recorded, its row gone or announced (no look) */
	const char *outcome, *reason;
};

struct hub_responder {
	uv_loop_t *loop;
	struct hub_store *store;
	struct hub_httpc *httpc;
	struct hub_metrics *metrics;
	struct hub_config *cfg;
	hub_publish_fn *publish;
	void *data;
	struct hub_anon *anon;
	uv_timer_t timer;
	struct job *jobs, *waiting, **waiting_tail;
	struct slot *tenants, *providers;
	int claimed;              /* jobs: claimed and not ended */
	int claim_limit;          /* rows the claim in flight asked for (fewer: none left due) */
	int asking;               /* provider requests in flight */
	bool claiming, again, stopped;
	bool running, rerun;      /* run_waiting is running; and was asked to again */
	/* TEST ONLY, from the environment (never set outside tests):
	 * HUBD_TEST_AI_LEAVE_CLEAR, a text pseudonymization leaves as it is (the guard must
	 * then block); HUBD_TEST_AI_KILL_BEFORE_STORE, hubd kills itself between a provider's
	 * answer and its record. */
	const char *test_leave_clear;
	bool test_kill_before_store;
};

static void poll_jobs(struct hub_responder *r);
static void look(struct hub_responder *r);
static void run_waiting(struct hub_responder *r);

static uint64_t cpu_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void lap_start(struct lap *l)
{
	l->wall = uv_hrtime();
	l->cpu = cpu_now();
}

/* The stretch since lap_start (or the last lap_end) counted for part; l starts again. */
static void lap_end(struct job *job, struct lap *l, enum part part)
{
	uint64_t wall = uv_hrtime(), cpu = cpu_now();

	job->hub_ns += wall - l->wall;
	job->part_ns[part] += wall - l->wall;
	job->cpu_ns += cpu - l->cpu;
	l->wall = wall;
	l->cpu = cpu;
}

static const struct hub_settings *settings_of(const struct job *job)
{
	return hub_config_settings(job->cfg);
}

static void count(struct hub_responder *r, const char *name, const char *help,
		  const char *labels, double by)
{
	hub_metrics_count(r->metrics, name, help, labels, by);
}

/* ---- slots ---- */

static struct slot *slot_get(struct slot **list, struct hub_str key)
{
	struct slot *s;

	for (s = *list; s; s = s->next)
		if (hub_str_eqs(key, s->key))
			return s;
	s = hub_xcalloc(1, sizeof(*s));
	s->key = hub_xcalloc(1, key.len + 1);
	memcpy(s->key, key.p, key.len);
	s->next = *list;
	*list = s;
	return s;
}

/* Forgets slots that hold nothing (no request, no failure, breaker closed). */
static void slots_prune(struct slot **list, uint64_t now)
{
	struct slot **link = list, *s;

	while ((s = *link) != NULL) {
		if (!s->in_flight && !s->failures && s->open_until <= now) {
			*link = s->next;
			free(s->key);
			free(s);
		} else {
			link = &s->next;
		}
	}
}

static void slots_free(struct slot *s)
{
	while (s) {
		struct slot *next = s->next;

		free(s->key);
		free(s);
		s = next;
	}
}

static void slots_release(struct job *job)
{
	struct hub_responder *r = job->r;

	if (!job->tenant_slot)
		return;
	job->tenant_slot->in_flight--;
	job->provider_slot->in_flight--;
	job->tenant_slot = job->provider_slot = NULL;
	r->asking--;
	slots_prune(&r->tenants, uv_now(r->loop));
	slots_prune(&r->providers, uv_now(r->loop));
}

/* A provider's answer for its breaker: a failure (no answer, 5xx, 429, a refused key) in
 * a row of breaker_failures opens it for breaker_open_ms. */
static void breaker_note(struct job *job, struct slot *p, bool failed)
{
	const struct hub_settings *s = settings_of(job);

	if (!failed) {
		p->failures = 0;
		return;
	}
	if (++p->failures >= s->assistant.breaker_failures && p->open_until <= uv_now(job->r->loop)) {
		p->open_until = uv_now(job->r->loop) + (uint64_t)s->assistant.breaker_open_ms;
		hub_log_warn(TAG, "provider %s failed %d times in a row: no request to it for %d ms "
			     "(conversations go to people)", p->key, p->failures,
			     s->assistant.breaker_open_ms);
		count(job->r, "ai_breaker_opened", "Times a provider's breaker opened", NULL, 1);
	}
}

/* ---- ending a job ---- */

static void job_end(struct job *job)
{
	struct hub_responder *r = job->r;
	bool settled = job->settled;

	slots_release(job);
	hub_ai_exchange_free(job->ex);
	if (job->prev)
		job->prev->next = job->next;
	else
		r->jobs = job->next;
	if (job->next)
		job->next->prev = job->prev;
	r->claimed--;
	hub_config_unref(job->cfg);
	hub_buf_release(&job->xbuf);
	hub_pool_release(&job->pool);
	free(job);
	if (!r->stopped) {
		run_waiting(r);
		/* its row may be due again (its end not recorded), or there is room for one more
		 * (a claim found the queue full); a job given back (kept for a newer message, or
		 * retried) is announced by a NOTIFY (ai_jobs_released) */
		if (!settled || r->again)
			look(r);
	}
}

static void on_finished(int status, PGresult *res, void *data)
{
	struct job *job = data;
	struct hub_responder *r = job->r;
	char labels[64];

	if (status == 0) {
		int n = PQntuples(res);

		job->settled = true;
		hub_publish_rows(r->publish, r->data, res);
		if (n > 0 && strcmp(job->outcome, "answered") == 0)
			count(r, "ai_answers", "Assistant answers stored for sending", NULL, 1);
		if (n > 0 && strcmp(job->outcome, "handoff") == 0) {
			snprintf(labels, sizeof(labels), "reason=\"%s\"", job->reason);
			count(r, "ai_handoffs", "Conversations the assistant handed to people, by "
			      "reason", labels, 1);
		}
		if (n > 0 && !job->disclosed && job->with_msg)
			count(r, "ai_disclosures", "First assistant messages to a contact, with the "
			      "disclosure", NULL, 1);
	} else if (status != -ECANCELED) {
		hub_log_warn(TAG, "conversation=%s: the outcome (%s) not recorded (%s): its lease "
			     "brings it back", job->conv, job->outcome, strerror(-status));
	}
	job_end(job);
}

/* The customer's language: that of their newest text with letters. */
static enum hub_ai_lang job_lang(const struct job *job)
{
	return hub_ai_turns_lang(job->turns, job->nturns);
}

/* The exchange's record so far, closed. */
static const char *record_json(struct job *job)
{
	hub_jw_key(&job->x, "hub_us");
	hub_jw_int(&job->x, (int64_t)(job->hub_ns / 1000));
	hub_jw_key(&job->x, "hub_cpu_us");
	hub_jw_int(&job->x, (int64_t)(job->cpu_ns / 1000));
	hub_jw_key(&job->x, "hub_parts");
	hub_jw_obj_open(&job->x);
	for (int p = 0; p < NPARTS; p++) {
		hub_jw_key(&job->x, part_names[p]);
		hub_jw_int(&job->x, (int64_t)(job->part_ns[p] / 1000));
	}
	hub_jw_obj_close(&job->x);
	hub_jw_obj_close(&job->x);
	return hub_pool_strndup(&job->pool, job->xbuf.p, job->xbuf.len);
}

/* One query ends the job: outcome "answered" (text), "handoff" (reason; text the hand-off
 * message or HUB_STR_NULL), "retry" (delay_ms) or "dropped". A text to send already
 * starts with the disclosure when the contact never had it (job_shape). */
static void job_finish(struct job *job, const char *outcome, const char *reason,
		       struct hub_str text, int64_t delay_ms)
{
	struct hub_responder *r = job->r;
	bool msg = text.p != NULL;
	const char *params[10] = {
		job->tenant.p,
		job->conv,
		job->token,
		hub_pool_sprintf(&job->pool, "%" PRId64, job->upto),
		outcome,
		reason,
		msg ? hub_pool_strndup(&job->pool, text.p, text.len) : NULL,
		msg && !job->disclosed ? hub_ai_lang_code(job_lang(job)) : NULL,
		hub_pool_sprintf(&job->pool, "%" PRId64, delay_ms),
		record_json(job),
	};

	/* the vault is not needed any more: gone before anything else waits */
	hub_ai_exchange_free(job->ex);
	job->ex = NULL;
	job->outcome = outcome;
	job->reason = reason;
	job->with_msg = msg;
	if (msg && strcmp(outcome, "answered") == 0 && r->test_kill_before_store)
		raise(SIGKILL); /* TEST ONLY: a crash between the answer and its record */
	if (hub_store_query(r->store, finish_sql, 10, params, on_finished, job) < 0)
		job_end(job); /* the lease brings it back */
}

/* The text to send, in pool: text (an answer, or the hand-off message) shaped to the
 * channel's length, after the disclosure when the contact never had it. */
static int job_shape(struct job *job, struct hub_str text, size_t max_units, struct hub_str *out)
{
	struct hub_str disclosure = HUB_STR_NULL;

	if (!job->disclosed)
		disclosure = hub_ai_disclosure_text(&job->pool, &job->disclosure, job_lang(job),
						    job->company);
	return hub_ai_reply_shape(&job->pool, text, max_units, disclosure, out);
}

/* The conversation goes to people for reason; the customer is told (with_message) in
 * their language. */
static void job_handoff(struct job *job, const char *reason, bool with_message)
{
	struct hub_str text = HUB_STR_NULL;

	if (with_message &&
	    job_shape(job, hub_ai_handoff_text(&job->pool, &job->handoff, job_lang(job),
					       job->company), 0, &text) < 0)
		text = HUB_STR_NULL;
	hub_log_info(TAG, "conversation=%s channel=%.*s: handed to people (%s)", job->conv,
		     HUB_STR_FMT(job->channel), reason);
	job_finish(job, "handoff", reason, text, 0);
}

static void record_error(struct job *job, struct hub_str code)
{
	hub_jw_key(&job->x, "error_code");
	hub_jw_str(&job->x, code);
}

/* Not answered this time: again after a backoff (at least retry_after_ms), or handed to
 * people once max_attempts calls in a row failed. */
static void job_retry(struct job *job, int64_t retry_after_ms)
{
	const struct hub_settings *s = settings_of(job);
	int64_t delay;

	if (job->attempts + 1 >= s->assistant.max_attempts) {
		job_handoff(job, "provider_failed", true);
		return;
	}
	delay = (int64_t)hub_backoff_ms((uint64_t)s->assistant.retry_base_ms, 600000,
					(unsigned)job->attempts + 1);
	if (retry_after_ms > delay)
		delay = retry_after_ms;
	if (delay > INT32_MAX)
		delay = INT32_MAX;
	job_finish(job, "retry", NULL, HUB_STR_NULL, delay);
}

/* ---- asking the provider ---- */

static void on_answer(int status, const struct hub_httpc_resp *resp, void *data)
{
	struct job *job = data;
	struct hub_responder *r = job->r;
	struct slot *provider = job->provider_slot;
	struct hub_ai_answer a;
	struct hub_str restored, text;
	uint64_t t0 = uv_hrtime();
	struct lap lap;
	size_t dropped = 0;
	char labels[48];

	lap_start(&lap);
	job->call = NULL;
	if (status == -ECANCELED) { /* shutting down: the lease brings it back */
		job_end(job);
		return;
	}
	hub_jw_key(&job->x, "provider_ms");
	hub_jw_int(&job->x, (int64_t)((t0 - job->asked_at) / 1000000));
	count(r, "ai_provider_seconds", "Time spent waiting for providers' answers", NULL,
	      (double)(t0 - job->asked_at) / 1e9);
	hub_ai_answer_parse(&job->pool, resp ? resp->status : 0,
			    resp ? hub_httpc_resp_header(resp, "retry-after") : HUB_STR_NULL,
			    resp ? resp->body : HUB_STR_NULL, job->settings.api_key, &a);
	if (a.prompt_tokens >= 0) {
		count(r, "ai_tokens", "Tokens the providers reported", "kind=\"prompt\"",
		      (double)a.prompt_tokens);
		hub_jw_key(&job->x, "prompt_tokens");
		hub_jw_int(&job->x, a.prompt_tokens);
	}
	if (a.completion_tokens >= 0) {
		count(r, "ai_tokens", "Tokens the providers reported", "kind=\"completion\"",
		      (double)a.completion_tokens);
		hub_jw_key(&job->x, "completion_tokens");
		hub_jw_int(&job->x, a.completion_tokens);
	}
	if (a.verdict != HUB_AI_OK)
		record_error(job, a.error_code.len ? a.error_code : hub_str_from("0"));
	snprintf(labels, sizeof(labels), "result=\"%s\"",
		 a.verdict == HUB_AI_OK ? "ok" : a.verdict == HUB_AI_RETRY ? "retry" :
		 a.verdict == HUB_AI_KEY ? "key" : a.verdict == HUB_AI_PERMANENT ? "permanent" :
		 "bad_answer");
	count(r, "ai_provider_requests", "Provider requests by result: ok, retry, key, "
	      "permanent, bad_answer", labels, 1);
	breaker_note(job, provider, a.verdict == HUB_AI_RETRY || a.verdict == HUB_AI_KEY);
	slots_release(job);
	lap_end(job, &lap, PART_PARSE); /* the answer parsed and counted */
	run_waiting(r); /* other jobs' requests: not this answer's work */
	switch (a.verdict) {
	case HUB_AI_OK:
		lap_start(&lap);
		hub_ai_exchange_restore(job->ex, &job->pool, a.content, &restored, &dropped);
		hub_jw_key(&job->x, "dropped_markers");
		hub_jw_int(&job->x, (int64_t)dropped);
		if (job_shape(job, restored, (size_t)job->reply_max_chars, &text) < 0) {
			record_error(job, hub_str_from("200 empty"));
			lap_end(job, &lap, PART_RESTORE);
			job_retry(job, 0);
			return;
		}
		lap_end(job, &lap, PART_RESTORE);
		job_finish(job, "answered", NULL, text, 0);
		return;
	case HUB_AI_RETRY:
	case HUB_AI_BAD_ANSWER:
		hub_log_info(TAG, "conversation=%s channel=%.*s: provider gave no answer (%.*s)",
			     job->conv, HUB_STR_FMT(job->channel), HUB_STR_FMT(a.error_code));
		job_retry(job, a.retry_after_ms);
		return;
	case HUB_AI_KEY:
		hub_log_warn(TAG, "channel=%.*s: the provider refused the API key (%.*s): an admin "
			     "must set a new one (hubctl channel ai)", HUB_STR_FMT(job->channel),
			     HUB_STR_FMT(a.error_code));
		job_handoff(job, "provider_failed", true);
		return;
	case HUB_AI_PERMANENT:
		hub_log_warn(TAG, "channel=%.*s: the provider refused the request (%.*s)",
			     HUB_STR_FMT(job->channel), HUB_STR_FMT(a.error_code));
		job_handoff(job, "provider_failed", true);
		return;
	}
}

/* Builds the request (pseudonymized, its exact bytes guarded) and sends it; the job holds
 * its slots. */
static void job_ask(struct job *job)
{
	struct hub_responder *r = job->r;
	const struct hub_settings *s = settings_of(job);
	struct hub_ai_prompt prompt = {
		.settings = &job->settings,
		.contact = &job->contact,
		.turns = job->turns,
		.nturns = job->nturns,
		.test_leave_clear = hub_str_from(r->test_leave_clear),
	};
	struct hub_err err = HUB_ERR_INIT;
	struct hub_httpc_header hdrs[2];
	size_t nh = 0;
	struct lap lap;
	int ret;

	lap_start(&lap);
	/* guarded over the exact bytes of job->req.body, which go out as they are */
	ret = hub_ai_exchange_new(r->anon, &job->pool, &prompt, &job->ex, &job->req, &err);
	lap_end(job, &lap, PART_REQUEST);
	hub_jw_key(&job->x, "history");
	hub_jw_int(&job->x, (int64_t)job->nturns);
	hub_jw_key(&job->x, "guard");
	hub_jw_cstr(&job->x, ret == -EACCES ? "blocked" : ret == 0 ? "passed" : "none");
	if (ret == -EACCES) {
		/* err names the kind of data, never the value */
		hub_log_warn(TAG, "conversation=%s channel=%.*s: the guard blocked the request: %s",
			     job->conv, HUB_STR_FMT(job->channel), err.msg);
		count(r, "ai_guard_blocks", "Provider requests the guard refused to send", NULL, 1);
		record_error(job, hub_str_from("guard"));
		slots_release(job);
		job_handoff(job, "guard_blocked", true);
		return;
	}
	if (ret < 0) {
		hub_log_warn(TAG, "conversation=%s channel=%.*s: no request can be made: %s",
			     job->conv, HUB_STR_FMT(job->channel), err.msg);
		record_error(job, hub_str_from("invalid"));
		slots_release(job);
		job_handoff(job, "provider_failed", true);
		return;
	}
	hub_jw_key(&job->x, "markers");
	hub_jw_int(&job->x, (int64_t)hub_ai_exchange_markers(job->ex));
	if (job->req.authorization.len)
		hdrs[nh++] = (struct hub_httpc_header){
			"Authorization", hub_pool_strndup(&job->pool, job->req.authorization.p,
							  job->req.authorization.len) };
	hdrs[nh++] = (struct hub_httpc_header){ "Content-Type", "application/json" };
	struct hub_httpc_req req = {
		.method = job->req.method,
		.url = job->req.url,
		.headers = hdrs,
		.nheaders = nh,
		.body = job->req.body,
		.connect_timeout_ms = s->platforms.connect_timeout_ms,
		.response_timeout_ms = s->assistant.timeout_ms,
		.total_timeout_ms = s->platforms.connect_timeout_ms + s->assistant.timeout_ms,
	};
	job->asked_at = uv_hrtime();
	ret = hub_httpc_request(r->httpc, &req, on_answer, job, &job->call);
	if (ret < 0) {
		record_error(job, hub_str_from("busy"));
		slots_release(job);
		job_retry(job, 0);
	}
}

/* Starts the waiting jobs whose tenant and provider have room, in order; a job whose
 * provider's breaker is open goes to people at once. */
static void run_waiting(struct hub_responder *r)
{
	struct job **link, *job;
	uint64_t now = uv_now(r->loop);

	/* a job that ends at once (its query refused) comes back here: the running loop goes
	 * round once more instead */
	if (r->running) {
		r->rerun = true;
		return;
	}
	r->running = true;
again:
	r->rerun = false;
	link = &r->waiting;
	while ((job = *link) != NULL) {
		const struct hub_settings *s = settings_of(job);
		struct slot *t = slot_get(&r->tenants, job->tenant);
		struct slot *p = slot_get(&r->providers, job->provider);

		if (p->open_until <= now && (t->in_flight >= s->assistant.per_tenant ||
					     p->in_flight >= s->assistant.per_provider)) {
			link = &job->wnext;
			continue;
		}
		*link = job->wnext;
		if (!*link)
			r->waiting_tail = link;
		job->wnext = NULL;
		if (p->open_until > now) {
			hub_jw_key(&job->x, "error_code");
			hub_jw_cstr(&job->x, "breaker_open");
			job_handoff(job, "provider_failed", true);
			if (r->rerun)
				goto again;
			continue;
		}
		t->in_flight++;
		p->in_flight++;
		r->asking++;
		job->tenant_slot = t;
		job->provider_slot = p;
		job_ask(job);
		if (r->rerun)
			goto again;
	}
	r->running = false;
	slots_prune(&r->tenants, now);
	slots_prune(&r->providers, now);
}

/* ---- the context ---- */

static struct hub_str ctx_str(struct job *job, int obj, const char *key)
{
	struct hub_str v = HUB_STR_NULL;

	if (hub_json_string(&job->doc, hub_json_get(&job->doc, obj, key), &job->pool, &v) < 0)
		return (struct hub_str){ "", 0 };
	return v;
}

static int64_t ctx_int(struct job *job, int obj, const char *key, int64_t dflt)
{
	int64_t v;

	return hub_json_int64(&job->doc, hub_json_get(&job->doc, obj, key), &v) < 0 ? dflt : v;
}

/* The strings of the array at obj.key, in pool; *n their count. */
static struct hub_str *ctx_strs(struct job *job, int obj, const char *key, size_t *n)
{
	int arr = hub_json_get(&job->doc, obj, key);
	size_t cap = arr >= 0 ? (size_t)job->doc.tok[arr].size : 0;
	struct hub_str *v = hub_pool_calloc(&job->pool, cap + 1, sizeof(*v));

	*n = 0;
	for (int k = arr >= 0 ? hub_json_first(&job->doc, arr) : -1; k >= 0;
	     k = hub_json_after(&job->doc, k))
		if (hub_json_string(&job->doc, k, &job->pool, &v[*n]) == 0 && v[*n].len)
			(*n)++;
	return v;
}

/* Per-language texts of the object at obj.key ({"ru": "...", ...}). */
static void ctx_texts(struct job *job, int obj, const char *key, struct hub_ai_texts *out)
{
	int o = hub_json_get(&job->doc, obj, key);

	memset(out, 0, sizeof(*out));
	for (int l = HUB_AI_LANG_RU; l < HUB_AI_NLANGS; l++)
		out->text[l] = o >= 0 ? ctx_str(job, o, hub_ai_lang_code(l)) : HUB_STR_NULL;
}

/* "scheme://host[:port]" of a URL: the provider it names. */
static struct hub_str origin_of(struct hub_str url)
{
	const char *sep = memmem(url.p, url.len, "://", 3);
	size_t at = sep ? (size_t)(sep - url.p) + 3 : 0;

	while (at < url.len && url.p[at] != '/' && url.p[at] != '?' && url.p[at] != '#')
		at++;
	return (struct hub_str){ url.p, at };
}

/* The API key as stored (sealed, lib/secret.h; in clear from before sealing, or empty)
 * opened into settings.api_key. -1 (logged) when it does not open. */
static int job_open_key(struct job *job, struct hub_str stored)
{
	struct hub_buf where = HUB_BUF_INIT, key = HUB_BUF_INIT;
	int ret = 0;

	job->settings.api_key = stored;
	if (!hub_secret_sealed(stored))
		return 0;
	hub_buf_addf(&where, "channel_ai/%.*s/api_key", HUB_STR_FMT(job->channel));
	ret = hub_secret_open(hub_config_keyring(job->cfg), hub_buf_str(&where), stored, &key);
	if (ret == 0) {
		job->settings.api_key = hub_pool_strcopy(&job->pool, hub_buf_str(&key));
	} else {
		struct hub_buf why = HUB_BUF_INIT;

		hub_channels_secret_error(&why, ret, stored);
		hub_log_err(TAG, "channel=%.*s: the assistant's API key %.*s",
			    HUB_STR_FMT(job->channel), (int)why.len, why.p);
		hub_buf_release(&why);
	}
	OPENSSL_cleanse(key.p, key.len);
	hub_buf_release(&key);
	hub_buf_release(&where);
	return ret < 0 ? -1 : 0;
}

/* Reads the context (hub_ai_context's JSON) into the job. -1 when it is not one, -2 when
 * the API key does not open. */
static int job_read_context(struct job *job, struct hub_str json)
{
	struct hub_json_doc *d = &job->doc;
	int set, contact, hist, pend;
	double temp;

	if (hub_json_parse(&job->pool, json, CONTEXT_TOKENS, d, NULL) < 0 ||
	    !hub_json_is(d, 0, HUB_JSON_OBJECT))
		return -1;
	set = hub_json_get(d, 0, "settings");
	contact = hub_json_get(d, 0, "contact");
	hist = hub_json_get(d, 0, "history");
	pend = hub_json_get(d, 0, "pending");
	if (set < 0 || contact < 0 || hist < 0 || pend < 0)
		return -1;
	job->upto = ctx_int(job, 0, "upto", 0);
	job->channel = ctx_str(job, 0, "channel");
	job->company = ctx_str(job, 0, "company");
	if (hub_json_bool(d, hub_json_get(d, 0, "disclosed"), &job->disclosed) < 0)
		job->disclosed = false;
	job->settings.base_url = ctx_str(job, set, "base_url");
	job->settings.model = ctx_str(job, set, "model");
	job->settings.api_key = ctx_str(job, set, "api_key"); /* as stored: opened last */
	job->settings.system_prompt = ctx_str(job, set, "system_prompt");
	job->settings.knowledge = ctx_str(job, set, "knowledge");
	job->settings.max_tokens = (int)ctx_int(job, set, "max_tokens", 0);
	job->settings.temperature = -1;
	if (hub_json_double(d, hub_json_get(d, set, "temperature"), &temp) == 0)
		job->settings.temperature = temp;
	job->reply_max_chars = (int)ctx_int(job, set, "reply_max_chars", 1000);
	ctx_texts(job, set, "disclosure", &job->disclosure);
	ctx_texts(job, set, "handoff_message", &job->handoff);
	job->phrases = ctx_strs(job, set, "handoff_phrases", &job->nphrases);
	job->provider = origin_of(job->settings.base_url);
	job->contact.display_name = ctx_str(job, contact, "display_name");
	job->contact.phones = ctx_strs(job, contact, "phones", &job->contact.nphones);
	job->contact.profile_names = ctx_strs(job, contact, "profile_names",
					      &job->contact.nprofile_names);
	job->contact.usernames = ctx_strs(job, contact, "usernames", &job->contact.nusernames);
	job->turns = hub_pool_calloc(&job->pool, (size_t)d->tok[hist].size + 1,
				     sizeof(*job->turns));
	job->pending = hub_pool_calloc(&job->pool, (size_t)d->tok[hist].size + 1,
				       sizeof(*job->pending));
	for (int k = hub_json_first(d, hist); k >= 0; k = hub_json_after(d, k)) {
		struct hub_str role = ctx_str(job, k, "role");
		struct hub_ai_turn *t = &job->turns[job->nturns];
		int64_t id = ctx_int(job, k, "id", -1);

		t->role = hub_str_eqs(role, "customer") ? HUB_AI_CUSTOMER :
			  hub_str_eqs(role, "assistant") ? HUB_AI_ASSISTANT : HUB_AI_AGENT;
		t->text = ctx_str(job, k, "text");
		if (!t->text.len)
			continue;
		job->nturns++;
		for (int p = hub_json_first(d, pend); p >= 0; p = hub_json_after(d, p)) {
			int64_t pid;

			if (hub_json_int64(d, p, &pid) == 0 && pid == id) {
				job->pending[job->npending++] = t->text;
				break;
			}
		}
	}
	return job_open_key(job, job->settings.api_key) < 0 ? -2 : 0;
}

/* The job's context, claimed with it (hub_ai_take's column col of row). */
static void job_context(struct job *job, PGresult *res, int row, int col)
{
	struct hub_responder *r = job->r;

	if (PQgetisnull(res, row, col)) {
		job_end(job); /* nothing to answer any more */
		return;
	}
	struct lap lap;

	lap_start(&lap);
	/* the document's slices must outlive res */
	int ret = job_read_context(job, hub_pool_strcopy(&job->pool, (struct hub_str){
		PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col) }));
	lap_end(job, &lap, PART_CONTEXT);
	if (ret == -2) {
		record_error(job, hub_str_from("key"));
		job_handoff(job, "provider_failed", true);
		return;
	}
	if (ret < 0) {
		hub_log_err(TAG, "conversation=%s: unreadable context", job->conv);
		job_finish(job, "dropped", NULL, HUB_STR_NULL, 0);
		return;
	}
	for (size_t i = 0; i < job->npending; i++) {
		if (hub_ai_handoff_asked(job->pending[i], job->phrases, job->nphrases)) {
			lap_end(job, &lap, PART_CONTEXT);
			job_handoff(job, "customer_asked", true);
			return;
		}
	}
	lap_end(job, &lap, PART_CONTEXT);
	*r->waiting_tail = job;
	r->waiting_tail = &job->wnext;
	run_waiting(r);
}

/* ---- claiming ---- */

static void on_timer(uv_timer_t *t)
{
	poll_jobs(t->data);
}

static void wake_in(struct hub_responder *r, uint64_t ms)
{
	if (!r->stopped)
		uv_timer_start(&r->timer, on_timer, ms, 0);
}

static void on_next(int status, PGresult *res, void *data);

/* Asks when the next answer is due (hub_ai_next), to wake then. */
static void ask_next(struct hub_responder *r)
{
	if (hub_store_query(r->store, next_sql, 0, NULL, on_next, r) == 0)
		r->claiming = true;
	else
		wake_in(r, DB_RETRY_MS);
}

/* Something changed what is due (a customer message, whose answer is due after the quiet
 * period; a job's end, which may leave its row due): ask when the next answer is due
 * rather than claim now, which would mostly find nothing (when it is due already, the
 * claim follows at once). A claim or question in flight may not see the change: it looks
 * again when it ends, and so does a claim that found the queue full. */
static void look(struct hub_responder *r)
{
	if (r->claiming)
		r->again = true;
	else if (r->again)
		poll_jobs(r);
	else if (!r->stopped && r->cfg && hub_config_settings(r->cfg)->assistant.enabled)
		ask_next(r);
}

static void on_notify(const char *payload, void *data)
{
	(void)payload;
	look(data);
}

/* How long until the next job is due, from the milliseconds in row's column col (NULL:
 * none is queued). */
static uint64_t due_in(PGresult *res, int row, int col)
{
	long long due;

	if (row < 0 || row >= PQntuples(res) || PQgetisnull(res, row, col))
		return IDLE_POLL_MS;
	due = strtoll(PQgetvalue(res, row, col), NULL, 10);
	return due <= 0 ? 0 : due < IDLE_POLL_MS ? (uint64_t)due : IDLE_POLL_MS;
}

static void on_next(int status, PGresult *res, void *data)
{
	struct hub_responder *r = data;

	r->claiming = false;
	if (r->again)
		poll_jobs(r);
	else
		wake_in(r, status < 0 ? DB_RETRY_MS : due_in(res, 0, 0));
}

static void job_start(struct hub_responder *r, PGresult *res, int row)
{
	struct job *job = hub_xcalloc(1, sizeof(*job));

	job->r = r;
	hub_pool_init(&job->pool);
	job->cfg = hub_config_ref(r->cfg);
	snprintf(job->conv, sizeof(job->conv), "%s", PQgetvalue(res, row, COL_CONV));
	snprintf(job->token, sizeof(job->token), "%s", PQgetvalue(res, row, COL_TOKEN));
	job->attempts = atoi(PQgetvalue(res, row, COL_ATTEMPTS));
	job->tenant = hub_str_from(hub_pool_strdup(&job->pool, PQgetvalue(res, row, COL_TENANT)));
	hub_jw_init(&job->x, &job->xbuf);
	hub_jw_obj_open(&job->x);
	job->next = r->jobs;
	if (r->jobs)
		r->jobs->prev = job;
	r->jobs = job;
	r->claimed++;
	job_context(job, res, row, COL_CONTEXT);
}

static void on_claimed(int status, PGresult *res, void *data)
{
	struct hub_responder *r = data;
	int last; /* the row without a conversation: when the next job is due (hub_ai_take) */

	r->claiming = false;
	if (status < 0) {
		if (status != -ECANCELED) {
			hub_log_warn(TAG, "cannot claim answers: %s", strerror(-status));
			wake_in(r, DB_RETRY_MS);
		}
		return;
	}
	last = PQntuples(res) - 1;
	for (int i = 0; i < last && !r->stopped; i++)
		job_start(r, res, i);
	if (r->stopped)
		return;
	if (last == r->claim_limit || r->again)
		poll_jobs(r); /* there may be more due */
	else
		wake_in(r, due_in(res, last, COL_NEXT_MS));
}

static void poll_jobs(struct hub_responder *r)
{
	const struct hub_settings *s;
	const char *params[2];
	char limit[16], lease[16];
	int room;

	if (r->stopped || !r->cfg)
		return;
	s = hub_config_settings(r->cfg);
	if (!s->assistant.enabled)
		return;
	room = s->assistant.queue_max - r->claimed;
	if (r->claiming || room <= 0) {
		if (room <= 0 && !r->again)
			count(r, "ai_queue_full", "Times answers were due but assistant.queue_max "
			      "were claimed here already", NULL, 1);
		r->again = true; /* the claim's end, or a job's, looks again */
		return;
	}
	r->again = false;
	uv_timer_stop(&r->timer);
	r->claim_limit = room < CLAIM_BATCH ? room : CLAIM_BATCH;
	snprintf(limit, sizeof(limit), "%d", r->claim_limit);
	snprintf(lease, sizeof(lease), "%d", s->assistant.lease_ms);
	params[0] = limit;
	params[1] = lease;
	if (hub_store_query(r->store, claim_sql, 2, params, on_claimed, r) < 0) {
		wake_in(r, DB_RETRY_MS);
		return;
	}
	r->claiming = true;
}

/* ---- the service ---- */

static double gauge_claimed(void *data)
{
	return ((struct hub_responder *)data)->claimed;
}

static double gauge_asking(void *data)
{
	return ((struct hub_responder *)data)->asking;
}

int hub_responder_new(uv_loop_t *loop, struct hub_store *store, struct hub_httpc *httpc,
		      struct hub_metrics *metrics, hub_publish_fn *publish, void *data,
		      struct hub_responder **out, struct hub_err *err)
{
	struct hub_responder *r = hub_xcalloc(1, sizeof(*r));
	const char *kill = getenv("HUBD_TEST_AI_KILL_BEFORE_STORE");
	int ret;

	r->loop = loop;
	r->store = store;
	r->httpc = httpc;
	r->metrics = metrics;
	r->publish = publish;
	r->data = data;
	r->waiting_tail = &r->waiting;
	r->test_leave_clear = getenv("HUBD_TEST_AI_LEAVE_CLEAR");
	r->test_kill_before_store = kill && *kill;
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	ret = hub_anon_new(&r->anon);
	if (ret < 0) {
		hub_responder_free(r);
		return hub_err_set(err, ret, "the anonymizer did not load: %s", strerror(-ret));
	}
	ret = hub_store_listen(store, "hub_ai", on_notify, r);
	if (ret < 0) {
		hub_responder_free(r);
		return hub_err_set(err, ret, "cannot listen for answers: %s", strerror(-ret));
	}
	hub_metrics_gauge(metrics, "hub_ai_claimed", "Answers claimed here and not ended "
			  "(at most assistant.queue_max)", gauge_claimed, r);
	hub_metrics_gauge(metrics, "hub_ai_requests_in_flight", "Provider requests in flight",
			  gauge_asking, r);
	*out = r;
	return 0;
}

void hub_responder_set_config(struct hub_responder *r, struct hub_config *cfg)
{
	struct hub_config *old = r->cfg;

	r->cfg = hub_config_ref(cfg);
	hub_config_unref(old);
	poll_jobs(r);
}

void hub_responder_stop(struct hub_responder *r)
{
	struct job *job;

	if (!r)
		return;
	r->stopped = true;
	uv_timer_stop(&r->timer);
	/* the waiting give up: their leases bring them back */
	while ((job = r->waiting) != NULL) {
		r->waiting = job->wnext;
		job_end(job);
	}
	r->waiting_tail = &r->waiting;
}

static void on_responder_closed(uv_handle_t *h)
{
	struct hub_responder *r = h->data;

	hub_config_unref(r->cfg);
	hub_anon_free(r->anon);
	slots_free(r->tenants);
	slots_free(r->providers);
	free(r);
}

void hub_responder_free(struct hub_responder *r)
{
	if (!r)
		return;
	r->stopped = true;
	hub_metrics_gauge_remove(r->metrics, "hub_ai_claimed");
	hub_metrics_gauge_remove(r->metrics, "hub_ai_requests_in_flight");
	uv_close((uv_handle_t *)&r->timer, on_responder_closed);
}
