/* assistant/settings.h - the rules of a channel's assistant settings (db/migrations/
 * 0010_assistant.sql, channel_ai), in one place for `hubctl channel ai` and the admin API's
 * "ai" object of a channel: each setting's bounds and checks, and the admin API's JSON
 * turned into the object hub_channel_ai_set() takes. Pure: no I/O; the API key is handed
 * back in clear for the caller to seal (lib/secret.h). */
#ifndef HUB_AI_SETTINGS_H
#define HUB_AI_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/json.h"
#include "lib/pool.h"

#define HUB_AI_URL_MAX 500
#define HUB_AI_MODEL_MAX 200
#define HUB_AI_PROMPT_MAX (32u << 10)
#define HUB_AI_KNOWLEDGE_MAX (256u << 10)
#define HUB_AI_TEXT_MAX 1000 /* a disclosure or hand-off message, bytes */
#define HUB_AI_PHRASES_MAX 50

/* UTF-8 without control characters (newlines allows \n, \r and \t). */
bool hub_ai_printable(const char *s, size_t n, bool newlines);
/* A provider's base URL: http:// or https://, a host, no query, user or spaces, at most
 * HUB_AI_URL_MAX bytes. */
bool hub_ai_url_valid(const char *u, size_t n);
/* The bounds of a whole-number setting ("history_turns", "reply_max_chars", "max_tokens",
 * "quiet_ms"): true with *lo and *hi, false for another name. */
bool hub_ai_int_bounds(const char *name, long *lo, long *hi);
/* ISO day of "mon".."sun" or "1".."7" (n bytes); 0 for anything else. */
int hub_ai_day_of(const char *s, size_t n);
/* "HH:MM" (exactly) into minutes of the day. */
bool hub_ai_hhmm(const char *s, size_t n, int *min);
/* A time zone name's characters (Asia/Almaty): 1 to 63 of letters, digits and "/_+-". */
bool hub_ai_tz_valid(const char *s, size_t n);

/* The admin API's "ai" object at obj of doc into set (hub_channel_ai_set()'s object, without
 * its braces; appended after a ',' when set is not empty): enabled, base_url, model,
 * system_prompt, knowledge, history_turns, reply_max_chars, max_tokens, temperature (or
 * null), quiet_ms, disclosure and handoff_message ({"ru"|"kk"|"en": text}), handoff_phrases
 * ([text]), hours (null or {"tz","days":[1..7],"from":"HH:MM","to":"HH:MM"}), api_key (text,
 * or null to clear). Each bad field appends "ai.<name>":"why" to errors (JSON object
 * members, comma-separated) and its name to names ("ai.<name>", comma-separated, for the
 * audit). *api_key is the key given (in pool, NULL when none; *api_key_clear when null was
 * given): the caller seals it and adds "api_key" and "api_key_hint". */
void hub_ai_settings_from_json(const struct hub_json_doc *doc, int obj, struct hub_pool *pool,
			       struct hub_buf *set, struct hub_buf *errors, struct hub_buf *names,
			       const char **api_key, bool *api_key_clear);

#endif
