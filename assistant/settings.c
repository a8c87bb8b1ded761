/* assistant/settings.c - see settings.h. */
#include "assistant/settings.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "assistant/dialog.h"
#include "lib/utf8.h"

bool hub_ai_printable(const char *s, size_t n, bool newlines)
{
	if (!hub_utf8_valid(s, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < ' ' && !(newlines && (c == '\n' || c == '\t' || c == '\r'))) || c == 0x7f)
			return false;
	}
	return true;
}

bool hub_ai_url_valid(const char *u, size_t n)
{
	const char *host;

	if (n > HUB_AI_URL_MAX || memchr(u, '\0', n))
		return false;
	if (n >= 8 && strncmp(u, "https://", 8) == 0)
		host = u + 8;
	else if (n >= 7 && strncmp(u, "http://", 7) == 0)
		host = u + 7;
	else
		return false;
	if (host == u + n || *host == '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if (strchr("?#@ \"<>\\", u[i]))
			return false;
	return hub_ai_printable(u, n, false);
}

bool hub_ai_int_bounds(const char *name, long *lo, long *hi)
{
	static const struct {
		const char *name;
		long lo, hi;
	} ints[] = {
		{ "history_turns", 1, 100 },
		{ "reply_max_chars", 20, 4096 },
		{ "max_tokens", 0, 32768 },
		{ "quiet_ms", 0, 600000 },
	};

	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		if (strcmp(ints[i].name, name) == 0) {
			*lo = ints[i].lo;
			*hi = ints[i].hi;
			return true;
		}
	}
	return false;
}

int hub_ai_day_of(const char *s, size_t n)
{
	static const char *const names[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };

	if (n == 1 && *s >= '1' && *s <= '7')
		return *s - '0';
	for (int i = 0; i < 7; i++)
		if (n == 3 && strncasecmp(s, names[i], 3) == 0)
			return i + 1;
	return 0;
}

bool hub_ai_hhmm(const char *s, size_t n, int *min)
{
	if (n != 5 || s[2] != ':' || s[0] < '0' || s[0] > '2' || s[1] < '0' || s[1] > '9' ||
	    s[3] < '0' || s[3] > '5' || s[4] < '0' || s[4] > '9')
		return false;
	*min = ((s[0] - '0') * 10 + s[1] - '0') * 60 + (s[3] - '0') * 10 + s[4] - '0';
	return *min < 24 * 60;
}

bool hub_ai_tz_valid(const char *s, size_t n)
{
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || strchr("/_+-", s[i])))
			return false;
	return true;
}

/* ---- the admin API's "ai" object ---- */

struct walk {
	const struct hub_json_doc *doc;
	struct hub_pool *pool;
	struct hub_buf *set, *errors, *names;
};

static void error(struct walk *w, const char *name, const char *why)
{
	if (w->errors->len)
		hub_buf_addch(w->errors, ',');
	hub_buf_adds(w->errors, "\"ai.");
	hub_buf_adds(w->errors, name);
	hub_buf_adds(w->errors, "\":");
	hub_json_add_str(w->errors, hub_str_from(why));
}

static void key(struct walk *w, const char *name)
{
	if (w->set->len)
		hub_buf_addch(w->set, ',');
	hub_json_add_str(w->set, hub_str_from(name));
	hub_buf_addch(w->set, ':');
	if (w->names->len)
		hub_buf_addch(w->names, ',');
	hub_buf_adds(w->names, "ai.");
	hub_buf_adds(w->names, name);
}

/* The string at i (unescaped), or false. */
static bool string_at(struct walk *w, int i, struct hub_str *s)
{
	return hub_json_is(w->doc, i, HUB_JSON_STRING) &&
	       hub_json_string(w->doc, i, w->pool, s) == 0;
}

/* {"ru"|"kk"|"en": text of at most HUB_AI_TEXT_MAX bytes}. */
static void lang_texts(struct walk *w, const char *name, int i)
{
	struct hub_buf obj = HUB_BUF_INIT;
	struct hub_str s;

	if (!hub_json_is(w->doc, i, HUB_JSON_OBJECT)) {
		error(w, name, "an object of texts by language: {\"ru\": \"...\", \"kk\": \"...\", "
		      "\"en\": \"...\"}");
		goto out;
	}
	hub_buf_addch(&obj, '{');
	for (int k = hub_json_first(w->doc, i); k >= 0; k = hub_json_after(w->doc, k)) {
		enum hub_ai_lang lang = hub_ai_lang_from_code(hub_json_raw(w->doc, k));

		if (lang == HUB_AI_LANG_NONE || hub_json_raw(w->doc, k).len != 2) {
			error(w, name, "the languages are ru, kk and en");
			goto out;
		}
		if (!string_at(w, k + 1, &s) || s.len > HUB_AI_TEXT_MAX ||
		    !hub_ai_printable(s.p, s.len, true)) {
			error(w, name, "each text is at most 1000 bytes, no control characters (an "
			      "empty one brings the built-in text back)");
			goto out;
		}
		if (obj.len > 1)
			hub_buf_addch(&obj, ',');
		hub_json_add_str(&obj, hub_str_from(hub_ai_lang_code(lang)));
		hub_buf_addch(&obj, ':');
		hub_json_add_str(&obj, s);
	}
	hub_buf_addch(&obj, '}');
	key(w, name);
	hub_buf_addstr(w->set, hub_buf_str(&obj));
out:
	hub_buf_release(&obj);
}

static void phrases(struct walk *w, int i)
{
	struct hub_buf arr = HUB_BUF_INIT;
	struct hub_str s;
	int n = 0;

	if (!hub_json_is(w->doc, i, HUB_JSON_ARRAY)) {
		error(w, "handoff_phrases", "an array of phrases");
		goto out;
	}
	hub_buf_addch(&arr, '[');
	for (int k = hub_json_first(w->doc, i); k >= 0; k = hub_json_after(w->doc, k)) {
		if (!string_at(w, k, &s) || !s.len || s.len > HUB_AI_PHRASE_MAX ||
		    !hub_ai_printable(s.p, s.len, false) || ++n > HUB_AI_PHRASES_MAX) {
			error(w, "handoff_phrases", "at most 50 phrases of 1 to 200 bytes of "
			      "printable text each");
			goto out;
		}
		if (n > 1)
			hub_buf_addch(&arr, ',');
		hub_json_add_str(&arr, s);
	}
	hub_buf_addch(&arr, ']');
	key(w, "handoff_phrases");
	hub_buf_addstr(w->set, hub_buf_str(&arr));
out:
	hub_buf_release(&arr);
}

static void hours(struct walk *w, int i)
{
	static const char why[] = "null, or {\"tz\": \"Asia/Almaty\", \"days\": [1, 2, 3, 4, 5], "
				  "\"from\": \"09:00\", \"to\": \"18:00\"} with the end after the "
				  "start (days 1 Monday .. 7 Sunday)";
	struct hub_buf days = HUB_BUF_INIT;
	struct hub_str tz, from, to;
	bool on[8] = { false };
	int fmin, tmin, d, di;
	int64_t day;

	if (hub_json_is_null(w->doc, i)) {
		key(w, "hours");
		hub_buf_adds(w->set, "null");
		return;
	}
	di = hub_json_get(w->doc, i, "days");
	if (!hub_json_is(w->doc, i, HUB_JSON_OBJECT) ||
	    !string_at(w, hub_json_get(w->doc, i, "tz"), &tz) || !hub_ai_tz_valid(tz.p, tz.len) ||
	    !string_at(w, hub_json_get(w->doc, i, "from"), &from) ||
	    !string_at(w, hub_json_get(w->doc, i, "to"), &to) ||
	    !hub_ai_hhmm(from.p, from.len, &fmin) || !hub_ai_hhmm(to.p, to.len, &tmin) ||
	    fmin >= tmin || !hub_json_is(w->doc, di, HUB_JSON_ARRAY) ||
	    w->doc->tok[i].size != 4) {
		error(w, "hours", why);
		goto out;
	}
	for (int k = hub_json_first(w->doc, di); k >= 0; k = hub_json_after(w->doc, k)) {
		if (hub_json_int64(w->doc, k, &day) < 0 || day < 1 || day > 7) {
			error(w, "hours", why);
			goto out;
		}
		on[day] = true;
	}
	hub_buf_addch(&days, '[');
	for (d = 1; d <= 7; d++)
		if (on[d])
			hub_buf_addf(&days, "%s%d", days.len > 1 ? "," : "", d);
	hub_buf_addch(&days, ']');
	if (days.len == 2) {
		error(w, "hours", why);
		goto out;
	}
	key(w, "hours");
	hub_buf_adds(w->set, "{\"tz\":");
	hub_json_add_str(w->set, tz);
	hub_buf_addf(w->set, ",\"days\":%s,\"from\":\"%.5s\",\"to\":\"%.5s\"}", days.p, from.p,
		     to.p);
out:
	hub_buf_release(&days);
}

void hub_ai_settings_from_json(const struct hub_json_doc *doc, int obj, struct hub_pool *pool,
			       struct hub_buf *set, struct hub_buf *errors, struct hub_buf *names,
			       const char **api_key, bool *api_key_clear)
{
	struct walk w = { doc, pool, set, errors, names };
	struct hub_str s;
	char name[32];

	*api_key = NULL;
	*api_key_clear = false;
	if (!hub_json_is(doc, obj, HUB_JSON_OBJECT)) {
		if (errors->len)
			hub_buf_addch(errors, ',');
		hub_buf_adds(errors, "\"ai\":\"an object of the assistant's settings\"");
		return;
	}
	for (int k = hub_json_first(doc, obj); k >= 0; k = hub_json_after(doc, k)) {
		struct hub_str kr = hub_json_raw(doc, k);
		int v = k + 1;
		long lo, hi;
		int64_t n;
		double t;
		bool b;

		snprintf(name, sizeof(name), "%.*s", kr.len > 24 ? 24 : (int)kr.len, kr.p);
		for (char *p = name; *p; p++)
			if (!(isalnum((unsigned char)*p) || *p == '_'))
				*p = '_';
		if (!strcmp(name, "enabled")) {
			if (hub_json_bool(doc, v, &b) < 0) {
				error(&w, name, "true or false");
				continue;
			}
			key(&w, name);
			hub_buf_adds(set, b ? "true" : "false");
		} else if (!strcmp(name, "base_url")) {
			if (!string_at(&w, v, &s) || !hub_ai_url_valid(s.p, s.len)) {
				error(&w, name, "an http:// or https:// URL without query, user or "
				      "spaces, at most 500 bytes (the provider's OpenAI-compatible "
				      "base URL)");
				continue;
			}
			key(&w, name);
			hub_json_add_str(set, s);
		} else if (!strcmp(name, "model")) {
			if (!string_at(&w, v, &s) || !s.len || s.len > HUB_AI_MODEL_MAX ||
			    !hub_ai_printable(s.p, s.len, false)) {
				error(&w, name, "1 to 200 bytes of printable text");
				continue;
			}
			key(&w, name);
			hub_json_add_str(set, s);
		} else if (!strcmp(name, "system_prompt") || !strcmp(name, "knowledge")) {
			size_t max = name[0] == 's' ? HUB_AI_PROMPT_MAX : HUB_AI_KNOWLEDGE_MAX;

			if (!string_at(&w, v, &s) || s.len > max ||
			    !hub_ai_printable(s.p, s.len, true)) {
				error(&w, name, name[0] == 's' ? "text of at most 32 KiB, no control "
				      "characters" : "text of at most 256 KiB, no control characters");
				continue;
			}
			key(&w, name);
			hub_json_add_str(set, s);
		} else if (hub_ai_int_bounds(name, &lo, &hi)) {
			if (hub_json_int64(doc, v, &n) < 0 || n < lo || n > hi) {
				char why[80];

				snprintf(why, sizeof(why), "a whole number from %ld to %ld", lo, hi);
				error(&w, name, why);
				continue;
			}
			key(&w, name);
			hub_buf_addf(set, "%lld", (long long)n);
		} else if (!strcmp(name, "temperature")) {
			if (hub_json_is_null(doc, v)) {
				key(&w, name);
				hub_buf_adds(set, "null");
				continue;
			}
			if (hub_json_double(doc, v, &t) < 0 || !(t >= 0 && t <= 2)) {
				error(&w, name, "a number from 0 to 2, or null");
				continue;
			}
			key(&w, name);
			hub_buf_addf(set, "%g", t);
		} else if (!strcmp(name, "disclosure") || !strcmp(name, "handoff_message")) {
			lang_texts(&w, name, v);
		} else if (!strcmp(name, "handoff_phrases")) {
			phrases(&w, v);
		} else if (!strcmp(name, "hours")) {
			hours(&w, v);
		} else if (!strcmp(name, "api_key")) {
			if (hub_json_is_null(doc, v)) {
				*api_key_clear = true;
			} else if (!string_at(&w, v, &s) || !s.len || s.len > 4096 ||
				   !hub_ai_printable(s.p, s.len, false)) {
				error(&w, name, "the provider's API key: 1 to 4096 bytes of printable "
				      "text, or null to remove it");
				continue;
			} else {
				*api_key = hub_pool_strndup(pool, s.p, s.len);
			}
			if (names->len)
				hub_buf_addch(names, ',');
			hub_buf_adds(names, "ai.api_key");
		} else {
			error(&w, name, "unknown setting");
		}
	}
}
