/* assistant/dialog.h - the AI responder's rules around the provider's answer: the
 * customer's language, the assistant's disclosure, a customer asking for a person, and the
 * reply as it is sent. Pure text in, text out (UTF-8); knows nothing about the provider,
 * the anonymizer, the database or when a disclosure is due (the daemon remembers that). */
#ifndef HUB_AI_DIALOG_H
#define HUB_AI_DIALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/pool.h"

enum hub_ai_lang {
	HUB_AI_LANG_NONE = 0, /* no letters to tell by */
	HUB_AI_LANG_RU,
	HUB_AI_LANG_KK,
	HUB_AI_LANG_EN,
	HUB_AI_NLANGS
};

/* "ru", "kk", "en"; "" for HUB_AI_LANG_NONE and anything else. */
const char *hub_ai_lang_code(enum hub_ai_lang lang);
/* The language of a code ("ru", "kk", "en", in any case), HUB_AI_LANG_NONE for another. */
enum hub_ai_lang hub_ai_lang_from_code(struct hub_str code);

/* The language a customer's text is written in: Kazakh when it holds a letter only Kazakh
 * has among the Cyrillic alphabets used here (ә ғ қ ң ө ұ ү һ і, either case), else Russian
 * when it has more Cyrillic letters than Latin ones (ties go to Cyrillic), else English
 * when it has Latin letters; HUB_AI_LANG_NONE when it has no letter at all ("87011234567",
 * an emoji, a sticker's empty text). Invalid UTF-8 bytes are skipped. Kazakh written
 * without its own letters reads as Russian; a Russian text holding one Kazakh name
 * (Нұрлан) reads as Kazakh: both are greeted in a language they read. */
enum hub_ai_lang hub_ai_lang_detect(struct hub_str text);

/* The language of the newest of texts (oldest first) that has letters; HUB_AI_LANG_EN
 * when none has. Give it the customer's recent texts only (not the company's). */
enum hub_ai_lang hub_ai_lang_of_texts(const struct hub_str *texts, size_t n);

/* Configured texts (the disclosure, the hand-off message), by language (index enum
 * hub_ai_lang); an empty or missing one takes the default. "{company}" in a text stands
 * for the company's name. */
struct hub_ai_texts {
	struct hub_str text[HUB_AI_NLANGS];
};

/* Longest company name put into a disclosure, in bytes (cut on a character boundary). */
#define HUB_AI_COMPANY_MAX 120

/* The built-in disclosure of lang (HUB_AI_LANG_NONE: English), with the "{company}"
 * placeholder; static. */
const char *hub_ai_disclosure_default(enum hub_ai_lang lang);

/* The disclosure to send in lang (HUB_AI_LANG_NONE: English): cfg's text for lang (cfg may
 * be NULL) or the default, with every "{company}" replaced by company. The name is put in
 * as data, never read as a format: control characters become spaces, surrounding spaces
 * go, it is cut to HUB_AI_COMPANY_MAX bytes. With an empty company name the defaults use
 * a sentence without it, and a configured text loses the placeholder. The result is in
 * pool, NUL-terminated. */
struct hub_str hub_ai_disclosure_text(struct hub_pool *pool, const struct hub_ai_texts *cfg,
				      enum hub_ai_lang lang, struct hub_str company);

/* The message that tells the customer a person takes over, in lang, as
 * hub_ai_disclosure_text() makes the disclosure (cfg's text or the built-in one). */
struct hub_str hub_ai_handoff_text(struct hub_pool *pool, const struct hub_ai_texts *cfg,
				   enum hub_ai_lang lang, struct hub_str company);

/* Longest configured hand-off phrase, in bytes; longer ones never match. */
#define HUB_AI_PHRASE_MAX 200

/* Whether a customer's text asks for a person. Words are compared in lower case
 * (Cyrillic, Kazakh and Latin letters; ё as е), whole: a word matches a built-in stem
 * when the rest of it is an ending of the stem's language:
 *   оператор, менеджер, маман: Russian noun endings (оператора, менеджером) or up to
 *     three Kazakh suffixes (маманға, операторлармен);
 *   человек, адам: the same, but not after a number or a numeral word ("столик на 4
 *     человека", "неше адам", "5 адамға" count people);
 *   живой: its Russian adjective endings (живого, живым);
 *   operator, human, agent: as written or with a plural "s" (Operator!, HUMAN please,
 *     agents), never inside another word (agenda, agency, humanity).
 * A word that merely contains a stem does not match (человечество, менеджмент,
 * операционный, адамант). The name Адам (Adam) does match: a needless hand-off costs an
 * agent a look, a missed one leaves a customer talking to a machine. phrases (n of them,
 * may be NULL) are the channel's own: each matches as whole words anywhere in the text
 * (case-insensitively, any run of spaces and punctuation between words being one space);
 * a phrase ending in "*" also matches words that go on after its last word ("сотрудник*"
 * matches "сотрудника"). Empty phrases never match. */
bool hub_ai_handoff_asked(struct hub_str text, const struct hub_str *phrases, size_t n);

/* Longest reply text the shaper accepts, in bytes (an answer of the provider is far
 * shorter; max_tokens bounds it). */
#define HUB_AI_REPLY_MAX (256u << 10)

/* The text to send for an answer: the answer without surrounding white space (Unicode
 * spaces, a BOM, zero-width spaces included), cut when longer than max_units UTF-16 units
 * (as the platforms count; 0: no cap) by hub_utf8_split_next (never inside a character,
 * at a line or word end when one is near), moved back to the last space when that keeps
 * at least half, and then ending in "…" within max_units; then, when disclosure is not
 * empty, "<disclosure>\n\n<answer>" (the disclosure is not counted in max_units). *out
 * is in pool, NUL-terminated. -ENODATA when the answer is empty or
 * only white space (nothing is sent then), -EMSGSIZE when it is longer than
 * HUB_AI_REPLY_MAX bytes; *out is then empty. */
int hub_ai_reply_shape(struct hub_pool *pool, struct hub_str answer, size_t max_units,
		       struct hub_str disclosure, struct hub_str *out) HUB_MUSTCHECK;

#endif
