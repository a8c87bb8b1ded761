/* anonymizer/anon.h - finds personal data in chat text (Russian, Kazakh, English): phone
 * numbers, e-mail addresses, IIN/BIN (and mistyped ones after their cue), payment cards,
 * IBANs and names, as byte spans.
 * Pure: no I/O; UTF-8 throughout (a span never splits a character, invalid bytes are
 * boundaries), linear in the input, no allocation per character. The vault that turns the
 * spans into markers is anonymizer/anon_vault.h. */
#ifndef HUB_ANON_H
#define HUB_ANON_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/pool.h"

enum hub_anon_type {
	HUB_ANON_PHONE,
	HUB_ANON_EMAIL,
	HUB_ANON_IIN,
	HUB_ANON_BIN,
	HUB_ANON_CARD,
	HUB_ANON_IBAN,
	HUB_ANON_NAME,
	/* 12 digits after an IIN/BIN cue whose check digit or structure fails: a mistyped
	 * IIN or BIN, still the customer's. */
	HUB_ANON_ID,
	/* Text of the input that restore would read as a marker ("[PHONE_1]", "name_2"): it is
	 * vaulted verbatim, so restore(pseudonymize(x)) gives x back. Not personal data. */
	HUB_ANON_MARKER,
	HUB_ANON_NTYPES
};

/* "PHONE", "EMAIL", "IIN", "BIN", "CARD", "IBAN", "NAME", "ID", "MARKER". */
const char *hub_anon_type_name(enum hub_anon_type type);

struct hub_anon_span {
	size_t start; /* byte offsets into the text: [start, end) */
	size_t end;
	enum hub_anon_type type;
};

/* Sorted by start, never overlapping. Items are allocated from the pool given to detect. */
struct hub_anon_spans {
	struct hub_anon_span *items;
	size_t n;
	size_t cap;
};

/* Texts longer than this are refused (-EMSGSIZE): a chat message is far shorter. */
#define HUB_ANON_TEXT_MAX (4u << 20)

/* The immutable lexicon: the gazetteer of first names and surnames (anonymizer/data/,
 * compiled in), the names that are also common words, and the words that are never names
 * (months, weekdays, cities, brands). Built once, shared read-only by any number of vaults
 * and threads. */
struct hub_anon;

/* From the compiled-in lists. */
int hub_anon_new(struct hub_anon **out) HUB_MUSTCHECK;
/* From lists in the same format as anonymizer/data/NAME.txt ('#' comment lines, then one
 * lower-case entry a line); for tests. The strings are only read during the call. */
int hub_anon_new_lists(struct hub_str first_names, struct hub_str surnames,
		       struct hub_str ambiguous, struct hub_anon **out) HUB_MUSTCHECK;
/* NULL-safe. */
void hub_anon_free(struct hub_anon *anon);
/* Number of distinct lookup keys (for tests and the benchmark). */
size_t hub_anon_size(const struct hub_anon *anon);

struct hub_anon_vault;

/* Finds every span of personal data in text. vault may be NULL; when given, its known
 * values and every value it has seen are found in any of their written forms. Marker-like
 * text comes back as HUB_ANON_MARKER. out->items is allocated from pool. Returns 0, or
 * -EMSGSIZE when text is longer than HUB_ANON_TEXT_MAX (out is then empty). */
int hub_anon_detect(const struct hub_anon *anon, const struct hub_anon_vault *vault,
		    struct hub_pool *pool, struct hub_str text,
		    struct hub_anon_spans *out) HUB_MUSTCHECK;

/* The Kazakh IIN/BIN check digit of 12 ASCII digits: weights 1..11, and on a remainder of
 * 10 a second pass with weights 3..11,1,2 (a second 10 is never valid). */
bool hub_anon_kz_checksum_ok(const char d[12]);
/* Luhn over n ASCII digits. */
bool hub_anon_luhn_ok(const char *d, size_t n);
/* ISO 13616 mod-97 over n upper-case letters and digits (country, check, BBAN). */
bool hub_anon_iban_ok(const char *s, size_t n);

#endif
