/* daemon/ctl/ctl_ai.c - see ctl_ai.h. The options become one JSON object of the settings
 * to change, given to hub_channel_ai_set() in one transaction. */
#include "daemon/ctl/ctl_ai.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "assistant/dialog.h"
#include "assistant/settings.h"
#include "daemon/ctl/ctl_channel.h"
#include "daemon/ctl/ctl_db.h"
#include "lib/buf.h"
#include "lib/channel.h"
#include "lib/json.h"
#include "lib/pool.h"
#include "lib/utf8.h"

#define WHAT "channel ai"
#define MODEL_MAX HUB_AI_MODEL_MAX
#define PROMPT_MAX HUB_AI_PROMPT_MAX
#define KNOWLEDGE_MAX HUB_AI_KNOWLEDGE_MAX
#define TEXT_MAX HUB_AI_TEXT_MAX
#define PHRASES_MAX HUB_AI_PHRASES_MAX

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hubctl [-c FILE] channel ai ID [--json]      (shows the settings)\n"
		"       hubctl [-c FILE] channel ai ID [--on|--off] [--url URL] [--model NAME]\n"
		"           [--key-file F | --no-key] [--prompt-file F] [--knowledge-file F]\n"
		"           [--history N] [--reply-max N] [--max-tokens N]\n"
		"           [--temperature T | --no-temperature] [--quiet-ms N]\n"
		"           [--disclosure LANG=TEXT]... [--handoff-message LANG=TEXT]...\n"
		"           [--handoff-phrase PHRASE]... [--no-handoff-phrases]\n"
		"           [--hours 'DAYS HH:MM-HH:MM ZONE' | --no-hours] [--json]\n"
		"--url is the provider's OpenAI-compatible base URL (https://api.openai.com, or a\n"
		"local http://127.0.0.1:8080 for llama.cpp, vLLM, Ollama). The API key is read\n"
		"from a file (\"-\" is stdin), never from the command line, and shown only by its\n"
		"last four characters. LANG is ru, kk or en; an empty TEXT brings the built-in text\n"
		"back. --handoff-phrase replaces the channel's phrases (repeat it for several; a\n"
		"trailing * matches endings). --hours: outside them the assistant also answers\n"
		"conversations in human mode, e.g. 'mon-fri 09:00-18:00 Asia/Almaty'. --on needs a\n"
		"URL and a model. New conversations of the channel start in ai mode while it is on.\n");
}

/* Prints the problem and returns 2 (bad usage: nothing changed). */
static int bad(const char *fmt, ...) HUB_PRINTF(1, 2);
static int bad(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hubctl: " WHAT ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

/* A whole number in [lo, hi]. */
static bool int_arg(const char *s, long lo, long hi, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return *s && !*end && !errno && *out >= lo && *out <= hi;
}

/* Reads a text file ("-": stdin) of at most max bytes of UTF-8 into *out. 0, or 1. */
static int read_text(const char *opt, const char *path, size_t max, struct hub_pool *pool,
		     struct hub_str *out)
{
	struct hub_buf b = HUB_BUF_INIT;
	int ret = hub_buf_read_file(&b, strcmp(path, "-") == 0 ? "/dev/stdin" : path);

	if (ret < 0) {
		fprintf(stderr, "hubctl: " WHAT ": %s %s: %s\n", opt, path, strerror(-ret));
		ret = 1;
	} else if (b.len > max || !hub_ai_printable(b.p, b.len, true)) {
		fprintf(stderr, "hubctl: " WHAT ": %s %s: must be UTF-8 text of at most %zu bytes "
				"without control characters\n", opt, path, max);
		ret = 1;
	} else {
		*out = hub_pool_strcopy(pool, hub_buf_str(&b));
	}
	hub_buf_release(&b);
	return ret;
}

/* "LANG=TEXT" into the object key of w's open object: {"ru": "..."} merged by the server. */
static int lang_text(const char *opt, const char *arg, struct hub_buf *obj)
{
	const char *eq = strchr(arg, '=');
	char lang[3];

	if (!eq || eq - arg != 2)
		return bad("%s wants LANG=TEXT with LANG ru, kk or en", opt);
	memcpy(lang, arg, 2);
	lang[2] = '\0';
	if (hub_ai_lang_from_code(hub_str_from(lang)) == HUB_AI_LANG_NONE)
		return bad("%s: the language must be ru, kk or en", opt);
	if (strlen(eq + 1) > TEXT_MAX || !hub_ai_printable(eq + 1, strlen(eq + 1), true))
		return bad("%s: the text must be UTF-8 of at most 1000 bytes, no control "
			   "characters", opt);
	hub_buf_adds(obj, obj->len ? "," : "{");
	hub_json_add_str(obj, hub_str_from(hub_ai_lang_code(hub_ai_lang_from_code(
		hub_str_from(lang)))));
	hub_buf_addch(obj, ':');
	hub_json_add_str(obj, hub_str_from(eq + 1));
	return 0;
}

/* "mon-fri,sun 09:00-18:00 Asia/Almaty" -> {"tz":..,"days":[..],"from":..,"to":..}. */
static int hours_arg(const char *arg, struct hub_buf *out)
{
	char days[64], times[16], tz[64], from[6], to[6], extra;
	bool on[8] = { false };
	int a, b, fmin, tmin;

	if (sscanf(arg, "%63s %15s %63s %c", days, times, tz, &extra) != 3 ||
	    sscanf(times, "%5[0-9:]-%5[0-9:]", from, to) != 2 ||
	    !hub_ai_hhmm(from, strlen(from), &fmin) || !hub_ai_hhmm(to, strlen(to), &tmin) ||
	    fmin >= tmin)
		return bad("--hours wants 'DAYS HH:MM-HH:MM ZONE' with the end after the start, "
			   "e.g. 'mon-fri 09:00-18:00 Asia/Almaty' (got \"%s\")", arg);
	for (char *tok = strtok(days, ","); tok; tok = strtok(NULL, ",")) {
		char *dash = strchr(tok, '-');

		a = hub_ai_day_of(tok, dash ? (size_t)(dash - tok) : strlen(tok));
		b = dash ? hub_ai_day_of(dash + 1, strlen(dash + 1)) : a;
		if (!a || !b || b < a)
			return bad("--hours: days are mon..sun (or 1..7), as a list or ranges like "
				   "mon-fri (got \"%s\")", arg);
		for (int d = a; d <= b; d++)
			on[d] = true;
	}
	if (!hub_ai_tz_valid(tz, strlen(tz)))
		return bad("--hours: \"%s\" is no time zone name (like Asia/Almaty)", tz);
	hub_buf_adds(out, "{\"tz\":");
	hub_json_add_str(out, hub_str_from(tz));
	hub_buf_adds(out, ",\"days\":[");
	for (int d = 1, n = 0; d <= 7; d++)
		if (on[d])
			hub_buf_addf(out, "%s%d", n++ ? "," : "", d);
	hub_buf_addf(out, "],\"from\":\"%s\",\"to\":\"%s\"}", from, to);
	return 0;
}

/* Prints the settings (the server's JSON object) as "key: value" lines, or as they are. */
static void print_settings(const char *json, bool as_json)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;

	if (as_json || hub_json_parse(&pool, hub_str_from(json), 4096, &doc, NULL) < 0) {
		printf("%s\n", json);
		hub_pool_release(&pool);
		return;
	}
	for (int k = hub_json_first(&doc, 0); k >= 0; k = hub_json_after(&doc, k)) {
		struct hub_str key = hub_json_raw(&doc, k), v;

		if (hub_json_is(&doc, k + 1, HUB_JSON_STRING) &&
		    hub_json_string(&doc, k + 1, &pool, &v) == 0)
			printf("%.*s: %.*s\n", HUB_STR_FMT(key), v.len > 120 ? 120 : (int)v.len, v.p);
		else
			printf("%.*s: %.*s\n", HUB_STR_FMT(key), HUB_STR_FMT(hub_json_raw(&doc, k + 1)));
	}
	hub_pool_release(&pool);
}

int hubctl_channel_ai_main(const struct hub_config *cfg, int argc, char **argv)
{
	enum { O_ON = 256, O_OFF, O_URL, O_MODEL, O_KEY, O_NOKEY, O_PROMPT, O_KNOW, O_HIST,
	       O_REPLY, O_TOKENS, O_TEMP, O_NOTEMP, O_QUIET, O_DISC, O_HMSG, O_PHRASE,
	       O_NOPHRASES, O_HOURS, O_NOHOURS, O_JSON };
	static const struct option opts[] = {
		{ "on", no_argument, NULL, O_ON },
		{ "off", no_argument, NULL, O_OFF },
		{ "url", required_argument, NULL, O_URL },
		{ "model", required_argument, NULL, O_MODEL },
		{ "key-file", required_argument, NULL, O_KEY },
		{ "no-key", no_argument, NULL, O_NOKEY },
		{ "prompt-file", required_argument, NULL, O_PROMPT },
		{ "knowledge-file", required_argument, NULL, O_KNOW },
		{ "history", required_argument, NULL, O_HIST },
		{ "reply-max", required_argument, NULL, O_REPLY },
		{ "max-tokens", required_argument, NULL, O_TOKENS },
		{ "temperature", required_argument, NULL, O_TEMP },
		{ "no-temperature", no_argument, NULL, O_NOTEMP },
		{ "quiet-ms", required_argument, NULL, O_QUIET },
		{ "disclosure", required_argument, NULL, O_DISC },
		{ "handoff-message", required_argument, NULL, O_HMSG },
		{ "handoff-phrase", required_argument, NULL, O_PHRASE },
		{ "no-handoff-phrases", no_argument, NULL, O_NOPHRASES },
		{ "hours", required_argument, NULL, O_HOURS },
		{ "no-hours", no_argument, NULL, O_NOHOURS },
		{ "json", no_argument, NULL, O_JSON },
		{ NULL, 0, NULL, 0 },
	};
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf set = HUB_BUF_INIT, disc = HUB_BUF_INIT, hmsg = HUB_BUF_INIT;
	struct hub_buf phrases = HUB_BUF_INIT, hours = HUB_BUF_INIT;
	const char *key_file = NULL, *prompt_file = NULL, *know_file = NULL, *key = NULL;
	struct hub_str text;
	bool as_json = false, no_phrases = false, changes = false;
	int opt, nphrases = 0, ret = 2;
	long n;
	PGconn *pg = NULL;
	PGresult *res = NULL;

/* appends ,"k":<raw> to the settings (opens the object first) */
#define SET_RAW(k, raw) (hub_buf_adds(&set, set.len ? ",\"" k "\":" : "{\"" k "\":"), \
			 hub_buf_adds(&set, raw), changes = true)
#define SET_STR(k, s) (hub_buf_adds(&set, set.len ? ",\"" k "\":" : "{\"" k "\":"), \
		       hub_json_add_str(&set, s), changes = true)

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case O_ON: SET_RAW("enabled", "true"); break;
		case O_OFF: SET_RAW("enabled", "false"); break;
		case O_URL:
			if (!hub_ai_url_valid(optarg, strlen(optarg))) {
				ret = bad("--url must be an http:// or https:// URL without query, "
					  "user or spaces, at most 500 bytes (got \"%s\")", optarg);
				goto out;
			}
			SET_STR("base_url", hub_str_from(optarg));
			break;
		case O_MODEL:
			if (!*optarg || strlen(optarg) > MODEL_MAX ||
			    !hub_ai_printable(optarg, strlen(optarg), false)) {
				ret = bad("--model must be 1 to %d bytes of printable UTF-8", MODEL_MAX);
				goto out;
			}
			SET_STR("model", hub_str_from(optarg));
			break;
		case O_KEY: key_file = optarg; break;
		case O_NOKEY:
			SET_RAW("api_key", "null");
			SET_RAW("api_key_hint", "null");
			break;
		case O_PROMPT: prompt_file = optarg; break;
		case O_KNOW: know_file = optarg; break;
		case O_HIST:
		case O_REPLY:
		case O_TOKENS:
		case O_QUIET: {
			const char *name = opt == O_HIST ? "history_turns" :
					   opt == O_REPLY ? "reply_max_chars" :
					   opt == O_TOKENS ? "max_tokens" : "quiet_ms";
			long lo = 0, hi = 0;

			(void)hub_ai_int_bounds(name, &lo, &hi);

			if (!int_arg(optarg, lo, hi, &n)) {
				fprintf(stderr, "hubctl: " WHAT ": --%s must be a whole number from %ld "
						"to %ld (got \"%s\")\n", opts[opt - O_ON].name, lo, hi,
					optarg);
				goto out;
			}
			hub_buf_adds(&set, set.len ? ",\"" : "{\"");
			hub_buf_adds(&set, name);
			hub_buf_addf(&set, "\":%ld", n);
			changes = true;
			break;
		}
		case O_TEMP: {
			char *end;
			double t = strtod(optarg, &end);

			if (!*optarg || *end || !(t >= 0 && t <= 2)) {
				ret = bad("--temperature must be a number from 0 to 2 (got \"%s\")",
					  optarg);
				goto out;
			}
			hub_buf_adds(&set, set.len ? ",\"temperature\":" : "{\"temperature\":");
			hub_buf_addf(&set, "%g", t);
			changes = true;
			break;
		}
		case O_NOTEMP: SET_RAW("temperature", "null"); break;
		case O_DISC:
			if ((ret = lang_text("--disclosure", optarg, &disc)) != 0)
				goto out;
			break;
		case O_HMSG:
			if ((ret = lang_text("--handoff-message", optarg, &hmsg)) != 0)
				goto out;
			break;
		case O_PHRASE:
			if (!*optarg || strlen(optarg) > HUB_AI_PHRASE_MAX ||
			    !hub_ai_printable(optarg, strlen(optarg), false) || ++nphrases > PHRASES_MAX) {
				ret = bad("--handoff-phrase: 1 to 200 bytes of printable UTF-8 each, at "
					  "most 50 phrases (got \"%s\")", optarg);
				goto out;
			}
			hub_buf_addch(&phrases, phrases.len ? ',' : '[');
			hub_json_add_str(&phrases, hub_str_from(optarg));
			break;
		case O_NOPHRASES: no_phrases = true; break;
		case O_HOURS:
			hub_buf_truncate(&hours, 0);
			if ((ret = hours_arg(optarg, &hours)) != 0)
				goto out;
			break;
		case O_NOHOURS:
			hub_buf_truncate(&hours, 0);
			hub_buf_adds(&hours, "null");
			break;
		case O_JSON: as_json = true; break;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		goto out;
	}
	if (!hubctl_valid_id(argv[optind])) {
		ret = bad("ID must be 1 to 64 of a-z, 0-9, '-' and '_' (got \"%s\")", argv[optind]);
		goto out;
	}
	if (nphrases && no_phrases) {
		ret = bad("%s", "--handoff-phrase and --no-handoff-phrases exclude each other");
		goto out;
	}
	ret = 1;
	if (key_file) {
		const char *sealed;

		if (hubctl_read_secret(WHAT, "--key-file", key_file, &pool, &key) != 0 ||
		    hubctl_seal(cfg, WHAT, "channel_ai", argv[optind], "api_key", key, &pool,
				&sealed) != 0)
			goto out;
		SET_STR("api_key", hub_str_from(sealed));
		/* people see the last four characters of a key long enough to spare them */
		char hint[5];

		hub_channel_secret_hint(key, strlen(key), hint);
		SET_STR("api_key_hint", hub_str_from(hint));
	}
	if (prompt_file) {
		if (read_text("--prompt-file", prompt_file, PROMPT_MAX, &pool, &text) != 0)
			goto out;
		SET_STR("system_prompt", text);
	}
	if (know_file) {
		if (read_text("--knowledge-file", know_file, KNOWLEDGE_MAX, &pool, &text) != 0)
			goto out;
		SET_STR("knowledge", text);
	}
	if (disc.len) {
		hub_buf_addch(&disc, '}');
		SET_RAW("disclosure", disc.p);
	}
	if (hmsg.len) {
		hub_buf_addch(&hmsg, '}');
		SET_RAW("handoff_message", hmsg.p);
	}
	if (nphrases) {
		hub_buf_addch(&phrases, ']');
		SET_RAW("handoff_phrases", phrases.p);
	}
	if (no_phrases)
		SET_RAW("handoff_phrases", "[]");
	if (hours.len)
		SET_RAW("hours", hours.p);
	hub_buf_addch(&set, set.len ? '}' : '{');
	if (set.len == 1)
		hub_buf_addch(&set, '}');
#undef SET_RAW
#undef SET_STR

	pg = hubctl_db_connect(cfg, WHAT);
	if (!pg)
		goto out;
	const char *params[] = { argv[optind], set.p };
	/* a change is audited in its statement: the names of the settings, never values */
	res = changes ? PQexecParams(pg, "SELECT hub_channel_ai_set($1, $2::jsonb), hub_ctl_audit("
				     "$1, 'channel.update', jsonb_build_object('fields', (SELECT "
				     "jsonb_agg('ai.' || k) FROM jsonb_object_keys($2::jsonb) k "
				     "WHERE k <> 'api_key_hint')))", 2, NULL, params, NULL, NULL, 0)
		      : PQexecParams(pg, "SELECT hub_channel_ai_get($1)", 1, NULL, params, NULL,
				     NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (state && strcmp(state, "23514") == 0)
			fprintf(stderr, "hubctl: " WHAT ": the assistant needs --url and --model "
					"before --on\n");
		else if (state && strcmp(state, "22023") == 0)
			fprintf(stderr, "hubctl: " WHAT ": --hours: unknown time zone\n");
		else
			hubctl_db_error(WHAT, res, pg);
		goto out;
	}
	if (PQgetisnull(res, 0, 0))
		printf("channel %s: no assistant settings (off)\n", argv[optind]);
	else
		print_settings(PQgetvalue(res, 0, 0), as_json);
	ret = 0;
out:
	PQclear(res);
	PQfinish(pg);
	hub_buf_release(&set);
	hub_buf_release(&disc);
	hub_buf_release(&hmsg);
	hub_buf_release(&phrases);
	hub_buf_release(&hours);
	hub_pool_release(&pool);
	return ret;
}
