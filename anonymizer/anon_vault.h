/* anonymizer/anon_vault.h - pseudonymization with a vault: each distinct value of one
 * request or conversation gets a marker ([PHONE_1], [EMAIL_2], [IIN_1], [BIN_1], [CARD_1],
 * [IBAN_1], [NAME_3], [ID_1]); restore puts the values back; the guard checks outgoing text.
 * Pure: no I/O. Not thread-safe: one vault belongs to one request. */
#ifndef HUB_ANON_VAULT_H
#define HUB_ANON_VAULT_H

#include <stdbool.h>
#include <stddef.h>

#include "anonymizer/anon.h"
#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/pool.h"

/* The vault keeps a pointer to anon, which must outlive it. */
int hub_anon_vault_new(const struct hub_anon *anon, struct hub_anon_vault **out) HUB_MUSTCHECK;
/* NULL-safe. */
void hub_anon_vault_free(struct hub_anon_vault *vault);

/* A value the caller knows (the contact's profile name, first name and surname, the
 * agents' names, the contact's phone, e-mail or username). It is then found in any letter
 * case and written form: names in Russian and Kazakh inflections and Latin spelling, phones
 * in any national or international format, e-mails in any case. A NAME of several words
 * is several names; a NAME with characters other than letters (a username) is found as
 * it is written, in any case. Returns 0, or -EINVAL for another type or a value with
 * nothing to find (e.g. a phone with fewer than 7 digits). */
int hub_anon_vault_add_known(struct hub_anon_vault *vault, enum hub_anon_type type,
			     struct hub_str value) HUB_MUSTCHECK;

struct hub_anon_entity {
	size_t start; /* byte offsets into the input text */
	size_t end;
	enum hub_anon_type type;
	struct hub_str marker; /* "[PHONE_1]": owned by the vault */
};

/* Replaces every span of text found by hub_anon_detect() with its marker, appending the
 * result to out. The same value gets the same marker in every text given to this vault,
 * and different spellings of one value are one value (phones by E.164, e-mails in lower
 * case, names by their lower-case stem). Marker-like text of the input becomes a
 * [MARKER_n] that restores to itself. When ents is not NULL, *ents (from pool) and *n get
 * the entities in input order. Returns 0 or -EMSGSIZE (text too long; out unchanged). */
int hub_anon_vault_pseudonymize(struct hub_anon_vault *vault, struct hub_pool *pool,
				struct hub_str text, struct hub_buf *out,
				struct hub_anon_entity **ents, size_t *n) HUB_MUSTCHECK;

/* Appends text to out with each marker replaced by the vault's value (its first spelling).
 * Accepts what language models write: any letter case, "_", " " or "-" before the number,
 * brackets or none ("[Phone_1]", "[PHONE 1]", "PHONE_1"; without brackets only with "_").
 * A marker the vault does not know is removed, never invented. */
void hub_anon_vault_restore(const struct hub_anon_vault *vault, struct hub_str text,
			    struct hub_buf *out);

/* True when text, about to leave, still contains a value of the vault (in any written
 * form) or anything the detectors find. Markers themselves do not count. */
bool hub_anon_vault_guard(const struct hub_anon_vault *vault, struct hub_str text);

/* True when text contains a value of the vault in any written form (the guard without
 * the values it has never seen). */
bool hub_anon_vault_leaks(const struct hub_anon_vault *vault, struct hub_str text);

/* Distinct values with a marker. */
size_t hub_anon_vault_size(const struct hub_anon_vault *vault);

#endif
