/* anonymizer/anon_internal.h - what anon.c, anon_key.c and anon_vault.c share: word keys
 * (a Latin skeleton of a name, so Нурлан, НҰРЛАН and Nurlan meet), a hash set of keys, the
 * marker grammar and the vault's answers to the detector. Not for other modules. */
#ifndef HUB_ANON_INTERNAL_H
#define HUB_ANON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "anonymizer/anon.h"
#include "lib/utf8.h"

/* Each type's name as markers spell it ("PHONE"), zero-padded: hub_anon_type_name, the
 * vault's markers and restore's parser read it (anon.c). */
struct hub_anon__type_name {
	char s[8];
	unsigned char len;
};
extern const struct hub_anon__type_name hub_anon__types[HUB_ANON_NTYPES];

/* memcpy of n bytes from s to d (apart), inline for what is short (a value, the text
 * between two spans, a group of digits): words that overlap, the last ending where the
 * bytes end, instead of a call that finds its way by the length. */
static inline void hub_anon__copy_short(char *d, const char *s, size_t n)
{
	if (n >= 16) {
		if (n > 64) {
			memcpy(d, s, n);
			return;
		}
		for (size_t i = 0; i + 16 < n; i += 16)
			memcpy(d + i, s + i, 16);
		memcpy(d + n - 16, s + n - 16, 16);
	} else if (n >= 8) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		memcpy(d, s, 4);
		memcpy(d + n - 4, s + n - 4, 4);
	} else if (n) {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

/* Longest key of a word; longer words are never names. A multiple of 8
 * (hub_anon__key_hash reads the key in words). */
#define HUB_ANON_KEY_MAX 48
/* Shortest stem a name lookup accepts, in key bytes. */
#define HUB_ANON_STEM_MIN 3

struct hub_anon_key {
	char s[HUB_ANON_KEY_MAX];
	size_t len;
	bool latin;  /* the word starts with a Latin letter */
	bool kazakh; /* it has letters of Kazakh only (ә ғ қ ң ө ұ ү һ і) */
	bool bad;    /* a character without a key, or too long */
	/* a collapsed key (HUB_ANON_KEY_COLLAPSE) that collapsed a repeat or has a ы: the
	 * folded key of the same word differs from it (else the two are the same) */
	bool unfolded;
	int mode;    /* enum hub_anon_key_mode */
};

/* Keys a word of letters (Cyrillic incl. Kazakh, Latin): lower case, transliterated
 * (ж→zh, ы/и/й/і→i, қ→k...), y→i, w→v, q→k, kh→h, j→zh, a leading "ie" as "e", and with
 * collapse repeated letters once (Alla as Алла). hub_anon__key collapses for Latin words
 * only: a Cyrillic word meets Cyrillic entries as they are spelled (дела is not Делла).
 * Returns false when some character has no key or the key is too long. */
enum hub_anon_key_mode {
	HUB_ANON_KEY_FOLD,     /* Kazakh letters as their Russian neighbours: Нұрлан = Нурлан */
	HUB_ANON_KEY_COLLAPSE, /* folded, and repeated letters once */
	HUB_ANON_KEY_STRICT,   /* Kazakh letters kept apart: ақша is not Акша */
};

bool hub_anon__key(const struct hub_anon *anon, const char *p, size_t n,
		   struct hub_anon_key *k);
bool hub_anon__key_mode(const struct hub_anon *anon, const char *p, size_t n,
			enum hub_anon_key_mode mode, struct hub_anon_key *k);
/* hub_anon__key_mode with anon's tables given (hub_anon__cp_table, hub_anon__cyr_table):
 * for a caller that keeps them (the vault keys each name it takes). */
bool hub_anon__key_tables(const uint32_t *cps, const uint32_t *cyr, const char *p, size_t n,
			  enum hub_anon_key_mode mode, struct hub_anon_key *k);
/* anon's table of hub_anon__cp_info for the code points below HUB_ANON_CP_TABLE. */
const uint32_t *hub_anon__cp_table(const struct hub_anon *anon);
/* ... and by the two bytes of a Cyrillic letter as they are (HUB_ANON_CYR_TABLE entries, at
 * hub_anon__cyr_at of the two): a lead byte 0xd0..0xd3 and a continuation byte after it;
 * 0 for any other two bytes. */
const uint32_t *hub_anon__cyr_table(const struct hub_anon *anon);
#define HUB_ANON_CYR_TABLE (1u << 16)

/* The index in hub_anon__cyr_table of the two bytes at p (both readable): the first one
 * low, so that a little-endian machine reads it in one load. */
static inline unsigned hub_anon__cyr_at(const unsigned char *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}
/* The same a character at a time (the detector keys words as it cuts them): start
 * (hub_anon__key_start), add each code point (hub_anon__key_add_info with its
 * hub_anon__cp_info), end (hub_anon__key_end: false as hub_anon__key_mode); inline below. */
/* The key's candidate stem lengths, longest first (the whole key first): the key without
 * one Russian or Kazakh case ending at a time (anon_key.c has the endings), each leaving a
 * stem of HUB_ANON_STEM_MIN bytes or more. At most four: the whole key, and without an
 * ending of three bytes, of two, of one. By tables of the key bytes (ASCII):
 * hub_anon__stem_last by the last, and hub_anon__stem_pairs by its row there (its low four
 * bits, 0: no ending ends so) and the byte before the last. */
#define HUB_ANON_STEMS_MAX 4
#define HUB_ANON_STEM_1 0x80u                  /* stem_last: an ending of one byte */
#define HUB_ANON_STEM_2 (1u << 31)             /* stem_pairs: the two are an ending */
#define HUB_ANON_STEM_3(c) (1u << ((c) - 'a')) /* ... with byte c before them, one of three */
extern const unsigned char hub_anon__stem_last[128];
extern const uint32_t hub_anon__stem_pairs[9][128];

/* Fills lens with the stems of k (inline: the detector asks it of a word in four). Returns
 * how many. */
static inline size_t hub_anon__key_stems(const struct hub_anon_key *k,
					 size_t lens[HUB_ANON_STEMS_MAX])
{
	const unsigned char *end = (const unsigned char *)k->s + k->len;
	size_t len = k->len, n = 1;
	unsigned last, third;
	uint32_t e;

	lens[0] = len;
	if (len < HUB_ANON_STEM_MIN + 1)
		return n;
	last = hub_anon__stem_last[end[-1] & 0x7f];
	if (!last)
		return n; /* most words */
	/* without a branch on the endings, which vary from word to word: each stem is
	 * written where the next one goes and counted if it is one */
	e = hub_anon__stem_pairs[last & 0xf][end[-2] & 0x7f];
	third = end[-3] - 'a'; /* a strict key's capitals end nothing */
	lens[n] = len - 3;
	n += (third < 26) & (e >> (third & 31)) & (len >= 3 + HUB_ANON_STEM_MIN);
	lens[n] = len - 2;
	n += !!(e & HUB_ANON_STEM_2) & (len >= 2 + HUB_ANON_STEM_MIN);
	lens[n] = len - 1;
	n += !!(last & HUB_ANON_STEM_1);
	return n;
}

/* The stem a vault compares names by: the key of len bytes without a final vowel
 * ("marina", "marine" -> "marin"). Returns its length. Inline: the detector and the
 * vault ask it of each stem they look up. */
static inline size_t hub_anon__key_norm(const char *s, size_t len)
{
	char c = len ? s[len - 1] : 0;

	if (len >= HUB_ANON_STEM_MIN + 2 && s[len - 2] == 'i' && c == 'a')
		return len - 2;
	if (len >= HUB_ANON_STEM_MIN + 1 &&
	    (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y'))
		return len - 1; /* a final vowel */
	return len;
}
/* The hash of the lexicon's and the vault's keys, and of the stems of a key (a prefix of
 * it: hub_anon__key_hash): eight bytes at a time, the last one to eight zero-padded, the
 * length mixed in. */
#define HUB_ANON_HASH_START 0xcbf29ce484222325ull
#define HUB_ANON_HASH_MUL 0x9e3779b97f4a7c15ull

/* n bytes (up to 8) as a little-endian number (whatever the machine's order). */
static inline uint64_t hub_anon__load(const void *p, size_t n)
{
	uint64_t w = 0;

	memcpy(&w, p, n);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

/* The last word w of a hash h so far: the high bits of the product, the best mixed, are
 * folded onto the low ones (which the tables index by). */
static inline uint64_t hub_anon__hash_end(uint64_t h, uint64_t w)
{
	h = (h ^ w) * HUB_ANON_HASH_MUL;
	return h ^ (h >> 32);
}

/* The hash of n bytes. */
static inline uint64_t hub_anon__hash(const void *p, size_t n)
{
	const unsigned char *u = p;
	uint64_t h = HUB_ANON_HASH_START ^ n, w = 0;
	bool more = n > 8; /* bytes before the last word, which it may read again */

	for (; n > 8; u += 8, n -= 8)
		h = (h ^ hub_anon__load(u, 8)) * HUB_ANON_HASH_MUL;
	/* the last 1 to 8 bytes as a number: read in words that end where they end (the
	 * bytes read twice fall on themselves) */
	if (more)
		w = hub_anon__load(u + n - 8, 8) >> (8 * (8 - n));
	else if (n >= 4)
		w = hub_anon__load(u, 4) | hub_anon__load(u + n - 4, 4) << (8 * (n - 4));
	else
		for (size_t i = 0; i < n; i++)
			w |= (uint64_t)u[i] << (8 * i);
	return hub_anon__hash_end(h, w);
}

/* The hash of the first n bytes of a key (hub_anon__hash of them): whole words of its
 * buffer read, the bytes from n on masked off. */
static inline uint64_t hub_anon__key_hash(const struct hub_anon_key *k, size_t n)
{
	static const uint64_t mask[9] = {
		0, 0xff, 0xffff, 0xffffff, 0xffffffff, 0xffffffffffull, 0xffffffffffffull,
		0xffffffffffffffull, ~0ull,
	};
	const char *s = k->s;
	uint64_t h = HUB_ANON_HASH_START ^ n;

	for (; n > 8; s += 8, n -= 8)
		h = (h ^ hub_anon__load(s, 8)) * HUB_ANON_HASH_MUL;
	return hub_anon__hash_end(h, hub_anon__load(s, 8) & mask[n]);
}

/* An open-addressing hash set of 64-bit keys with 32-bit flags: a key is stored with its low
 * bit set (no key is 0, the mark of a free slot; of two keys that differ only there, one). */
struct hub_anon_htab_slot {
	uint64_t key; /* 0: free */
	uint32_t val;
};

struct hub_anon_htab {
	struct hub_anon_htab_slot *slots; /* a key and its flags in one cache line */
	size_t mask;                      /* the number of slots (a power of two) - 1 */
	size_t n;
};

void hub_anon__htab_release(struct hub_anon_htab *t);
/* ORs flags into the entry of key. */
void hub_anon__htab_or(struct hub_anon_htab *t, uint64_t key, uint32_t flags);

/* The slot of key (its low bit set) in t (with slots): its entry's, or the free one it would
 * take. By the key's high bits: the lexicon's filter tests its low ones (filter_has), and a
 * key that passes it needlessly should not start where the key it met there is. */
static inline size_t hub_anon__htab_slot(const struct hub_anon_htab *t, uint64_t key)
{
	size_t mask = t->mask, i = (size_t)(key >> 32) & mask;

	while (t->slots[i].key && t->slots[i].key != key)
		i = (i + 1) & mask;
	return i;
}

/* Reads a marker at p[0..n) as restore accepts it; on success returns its length and
 * fills *type and *index (1..999999). before is the byte before p (0 at the start), or -1
 * to ignore what is around it: the detector vaults every text that restore could read as
 * a marker in any context. */
size_t hub_anon__marker_parse(const char *p, size_t n, int before, enum hub_anon_type *type,
			      unsigned *index);

/* The length of the stem a name is vaulted by: the longest stem the vault or the
 * gazetteer knows, else the whole key, each without a final vowel. */
size_t hub_anon__name_norm(const struct hub_anon *anon, const struct hub_anon_vault *vault,
			   const struct hub_anon_key *k);
/* Whether hub_anon__name_norm of k is the same whatever names the vault holds: the whole
 * key is a name of the gazetteer with repeats collapsed (then its norm is the whole key's). */
bool hub_anon__name_norm_fixed(const struct hub_anon *anon, const struct hub_anon_key *k);

/* The first marker in p[from..n) as restore reads it (loose: as the detector vaults it, with
 * -1 for before); its start, or SIZE_MAX, and its length in *len. Linear: only '[' and '_'
 * are looked at closely. */
size_t hub_anon__marker_find(const char *p, size_t n, size_t from, bool loose, size_t *len,
			     enum hub_anon_type *type, unsigned *index);

/* Vault answers for the detector (vault may be NULL: then false). */
#define HUB_ANON_KNOWN 1   /* a name the caller gave */
#define HUB_ANON_LEARNED 2 /* a name the vault found in a text */
#define HUB_ANON_KAZAKH 4  /* ... (one of them) written with Kazakh letters */
/* HUB_ANON_KNOWN and/or HUB_ANON_LEARNED, and HUB_ANON_KAZAKH, for a name norm; 0 when the
 * vault has none. */
uint32_t hub_anon__vault_name(const struct hub_anon_vault *v, uint64_t norm_hash);
/* What the key of a word must start with to be a name of the vault (a name key or a stem
 * of one): bit c & 63 of each first byte c of a name key (first), and bit
 * hub_anon__pair_bit of the first two bytes of each of two bytes or more (pairs). All 0
 * without a vault: no word need be looked up. */
struct hub_anon__name_starts {
	uint64_t first, pairs;
};

struct hub_anon__name_starts hub_anon__vault_name_starts(const struct hub_anon_vault *v);

static inline unsigned hub_anon__pair_bit(const char *s)
{
	return ((unsigned char)s[0] * 11u + (unsigned char)s[1]) & 63;
}

/* Whether k, or a stem of it, may be a name of the vault (false: no need to look). A key
 * of one byte is looked up as it is; the stems of a longer one keep its first two bytes
 * (the vault's hash of a key has its length in it: a key meets only one as long). */
static inline bool hub_anon__name_may(const struct hub_anon__name_starts *st,
				      const struct hub_anon_key *k)
{
	if (!(st->first >> (k->s[0] & 63) & 1))
		return false;
	return k->len < 2 || (st->pairs >> hub_anon__pair_bit(k->s) & 1);
}

/* A word of letters as the detector cuts it (anon.c reads and writes it; here for the
 * scratch, which holds the words of a text for the vault). */
struct hub_anon__word {
	size_t start, end;
	uint32_t lx; /* lexicon flags of the whole key (anon.c) */
	uint64_t w;  /* W_* (anon.c); W_KEYED: k is its key */
	char first;  /* the first byte of the key of its first letter (0: none) */
	/* keyed as it is cut: a Latin word with repeats collapsed (HUB_ANON_KEY_COLLAPSE, and
	 * unfolded set so), a Cyrillic word as spelled (HUB_ANON_KEY_FOLD) */
	struct hub_anon_key k;
};

/* What a second look at a text with a vault that has learned more needs of the first
 * (hub_anon__detect): the words it cut, which hub_anon__name_left reads only when the vault
 * learned a name there, and where the digits are, for when it learned a phone (most texts
 * need no second look: nothing is worked out before). */
struct hub_anon__left {
	bool unsure; /* the words are not kept (no scratch): look again */
	/* the ASCII digits of the text are in [digits_at, digits_end) (both 0 without one) */
	size_t digits_at, digits_end;
	/* the words of letters as the detector cut, keyed and marked them (in the scratch or
	 * the pool): what a second look reads names from, without cutting the text again */
	const struct hub_anon__word *words;
	size_t nwords;
};

/* A name of one word the detector found (a NAME span of [start, end)): the vault takes its
 * key from here instead of keying the word again. */
struct hub_anon__name_word {
	size_t start, end;
	const struct hub_anon_key *k; /* the word's (in the scratch's words or the pool) */
	/* k is the key the vault keys a name by (with repeats collapsed): a Latin word's, or a
	 * Cyrillic one's with nothing to collapse; else k is its folded key as spelled */
	bool collapsed;
	bool fixed; /* collapsed and hub_anon__name_norm_fixed(k): the gazetteer has it whole */
};

/* Memory a vault lends the detector for what lives until its next look at a text (the
 * spans, the words cut and its names of one word): kept from one call to the next, so that
 * pseudonymizing a message takes nothing from its pool but for a long text; the first of
 * each in the scratch itself, so that a conversation of chat lines allocates none. */
#define HUB_ANON_SCRATCH_SPANS 32
#define HUB_ANON_SCRATCH_WORDS 64
#define HUB_ANON_SCRATCH_NAMES 16 /* more names of a text: the vault keys them */

struct hub_anon__scratch {
	struct hub_anon_span *spans; /* spans_first, or from the heap */
	size_t cap_spans;
	/* the names of one word among the spans, in order (the first that fit) */
	size_t nnames;
	struct hub_anon__name_word names[HUB_ANON_SCRATCH_NAMES];
	struct hub_anon_span spans_first[HUB_ANON_SCRATCH_SPANS];
	/* the detector's first words (then from its pool): the names' keys are in them */
	struct hub_anon__word cut_first[HUB_ANON_SCRATCH_WORDS];
};

/* An empty scratch, with its first arrays. */
void hub_anon__scratch_init(struct hub_anon__scratch *sc);
/* NULL-safe; the scratch is empty and can be used again. */
void hub_anon__scratch_release(struct hub_anon__scratch *sc);

/* hub_anon_detect, and what a second look needs in *left. With scratch (not NULL),
 * out->items and left->words are the scratch's (or, for a long text, pool's), valid until
 * the next call with it, and nothing is taken from pool but for a long text. */
int hub_anon__detect(const struct hub_anon *anon, const struct hub_anon_vault *vault,
		     struct hub_pool *pool, struct hub_str text, struct hub_anon_spans *out,
		     struct hub_anon__left *left, struct hub_anon__scratch *scratch);

/* Whether the text of left (and spans, of the same look) may show the detector a name of the
 * vault outside the spans: a word that starts outside every span and that the vault finds
 * a name (first: bit c & 63 of the first key byte of each name to look for), or a word
 * partly inside a span (what it is depends on the rest). In anon.c. */
bool hub_anon__name_left(const struct hub_anon_vault *v, const struct hub_anon__left *left,
			 const struct hub_anon_spans *spans, uint64_t first);
/* What the detector finds a word it cut (hub_anon__left) to be in the vault: HUB_ANON_KNOWN
 * and/or HUB_ANON_LEARNED, or 0 (vault may be NULL). In anon.c. */
uint32_t hub_anon__word_in_vault(const struct hub_anon_vault *v, const struct hub_anon__word *w);
/* digits: the national significant number (10 digits) or a 7-digit local number. */
bool hub_anon__vault_has_phone(const struct hub_anon_vault *v, const char *digits, size_t n);
/* Calls cb for each e-mail and literal (username) value the vault knows. */
typedef void hub_anon__value_cb(struct hub_str value, enum hub_anon_type type, void *data);
void hub_anon__vault_each_literal(const struct hub_anon_vault *v, hub_anon__value_cb *cb,
				  void *data);

/* hub_utf8_decode with the one- and two-byte sequences (ASCII, Cyrillic) inline. */
static inline size_t hub_anon__decode(const unsigned char *p, size_t n, uint32_t *cp)
{
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] < 0xe0 && n >= 2 && (p[1] & 0xc0) == 0x80) {
		*cp = ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
		return 2;
	}
	return hub_utf8_decode(p, n, cp);
}

/* A letter of the scripts we read: Latin (with Latin-1 and Extended-A/B), Cyrillic. */
static inline bool hub_anon__cp_is_letter(uint32_t cp)
{
	return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') ||
	       (cp >= 0xc0 && cp <= 0x24f && cp != 0xd7 && cp != 0xf7) ||
	       (cp >= 0x400 && cp <= 0x4ff && !(cp >= 0x482 && cp <= 0x489));
}

static inline bool hub_anon__cp_is_upper(uint32_t cp)
{
	return (cp >= 'A' && cp <= 'Z') || (cp >= 0x400 && cp <= 0x42f) ||
	       (cp >= 0x490 && cp <= 0x4ff && !(cp & 1)) || (cp >= 0xc0 && cp <= 0xde);
}

/* ASCII-only case-insensitive search of needle in hay from offset; SIZE_MAX if absent. */
size_t hub_anon__find_ci(struct hub_str hay, size_t from, struct hub_str needle);

/* ---- keys a character at a time, inline: the detector keys every letter ---- */

/* The key of one lower-cased code point, NULL when it has none. */
static inline const char *hub_anon__cp_key(uint32_t cp)
{
	/* U+0430..U+044F, а..я */
	static const char *const cyr[32] = {
		"a", "b", "v", "g", "d", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o",
		"p", "r", "s", "t", "u", "f", "h", "ts", "ch", "sh", "sh", "", "i", "", "e",
		"iu", "ia",
	};

	if (cp >= 'A' && cp <= 'Z')
		cp += 'a' - 'A';
	if (cp >= 'a' && cp <= 'z') {
		static const char *const lat[26] = {
			"a", "b", "c", "d", "e", "f", "g", "h", "i", "zh", "k", "l", "m",
			"n", "o", "p", "k", "r", "s", "t", "u", "v", "v", "ks", "i", "z",
		};
		return lat[cp - 'a'];
	}
	if (cp >= 0x410 && cp <= 0x42f)
		cp += 0x20;
	else if (cp >= 0x400 && cp <= 0x40f)
		cp += 0x50;
	else if (cp >= 0x490 && cp <= 0x4ff && !(cp & 1))
		cp++; /* Ғ Қ Ң Ү Ұ Һ Ә Ө: upper case is the even one */
	if (cp >= 0x430 && cp <= 0x44f)
		return cyr[cp - 0x430];
	switch (cp) {
	case 0x450: case 0x451: case 0x454: return "e"; /* ѐ ё є */
	case 0x456: case 0x457: return "i";             /* і ї */
	case 0x45e: return "u";                          /* ў */
	case 0x493: return "g";                          /* ғ */
	case 0x49b: return "k";                          /* қ */
	case 0x4a3: return "n";                          /* ң */
	case 0x4af: case 0x4b1: return "u";              /* ү ұ */
	case 0x4bb: return "h";                          /* һ */
	case 0x4d9: return "a";                          /* ә */
	case 0x4e9: return "o";                          /* ө */
	}
	return NULL;
}

/* Strict keys of the Kazakh letters (upper case never occurs in other keys). */
static inline const char *hub_anon__kazakh_strict(uint32_t cp)
{
	if (cp >= 0x490 && cp <= 0x4ff && !(cp & 1))
		cp++;
	else if (cp == 0x406)
		cp = 0x456;
	switch (cp) {
	case 0x4d9: return "A"; /* ә */
	case 0x493: return "G"; /* ғ */
	case 0x49b: return "Q"; /* қ */
	case 0x4a3: return "N"; /* ң */
	case 0x4e9: return "O"; /* ө */
	case 0x4b1: return "U"; /* ұ */
	case 0x4af: return "Y"; /* ү */
	case 0x4bb: return "H"; /* һ */
	case 0x456: return "I"; /* і */
	}
	return NULL;
}

/* What keying and cutting words need of one code point, packed: the (up to two) bytes of
 * its key, its Kazakh strict key byte, and flags. The detector reads it from a table for
 * the code points below HUB_ANON_CP_TABLE (hub_anon__cp_info is the same, computed). */
#define HUB_ANON_CP_HASKEY (1u << 16) /* a key, maybe empty (ъ ь) */
#define HUB_ANON_CP_LETTER (1u << 17)
#define HUB_ANON_CP_UPPER (1u << 18)
#define HUB_ANON_CP_KAZAKH (1u << 19) /* a letter of Kazakh only; its strict byte on top */
#define HUB_ANON_CP_YERU (1u << 20)   /* ы: "y" as spelled, "i" collapsed */
#define HUB_ANON_CP_PLAIN (1u << 21)  /* a key of one byte that no rule of key_add changes */
#define HUB_ANON_CP_CYR (1u << 22)    /* a Cyrillic letter */
#define HUB_ANON_CP_TABLE 0x800 /* every one- and two-byte sequence */

static inline uint32_t hub_anon__cp_info(uint32_t cp)
{
	const char *s = hub_anon__cp_key(cp);
	uint32_t info = (hub_anon__cp_is_letter(cp) ? HUB_ANON_CP_LETTER : 0) |
			(hub_anon__cp_is_upper(cp) ? HUB_ANON_CP_UPPER : 0);

	if (s) {
		info |= HUB_ANON_CP_HASKEY;
		if (s[0])
			info |= (uint32_t)(unsigned char)s[0] | (uint32_t)(unsigned char)s[1] << 8;
	}
	if (s && s[0] && !s[1] && s[0] != 'h')
		info |= HUB_ANON_CP_PLAIN;
	if (cp >= 0x400 && (info & HUB_ANON_CP_LETTER))
		info |= HUB_ANON_CP_CYR;
	if (cp == 0x44b || cp == 0x42b)
		info = (info | HUB_ANON_CP_YERU) & ~HUB_ANON_CP_PLAIN;
	/* only і and the letters from U+0490 on are Kazakh */
	if (cp >= 0x490 || cp == 0x406 || cp == 0x456) {
		const char *k = hub_anon__kazakh_strict(cp);

		if (k)
			info = (info | HUB_ANON_CP_KAZAKH | (uint32_t)(unsigned char)k[0] << 24) &
			       ~HUB_ANON_CP_PLAIN;
	}
	return info;
}

static inline void hub_anon__key_start(struct hub_anon_key *k, enum hub_anon_key_mode mode,
				       bool latin)
{
	k->len = 0;
	k->mode = mode;
	k->latin = latin;
	k->kazakh = false;
	k->bad = false;
	k->unfolded = false;
}

static inline bool hub_anon__key_end(struct hub_anon_key *k)
{
	if (k->bad)
		return false;
	if (k->len >= 2 && k->s[0] == 'i' && k->s[1] == 'e')
		memmove(k->s, k->s + 1, --k->len); /* Yerlan as Ерлан */
	return k->len > 0;
}

/* Keys the run of letters at p[i..) (i <= n) whose keys are one plain byte each
 * (HUB_ANON_CP_PLAIN) in one script, as long as the key has room: Cyrillic letters when
 * cyr is given (hub_anon__cyr_table), else ASCII ones (table: hub_anon__cp_table). Their
 * key bytes go to k->s from *klen on (collapse: one equal to the byte before is left out,
 * and k->unfolded set), their flags are ANDed into *all. Returns where the run stops: the
 * letter after it is of another kind, or no letter. Most of a word is such a run: the
 * keying loops of the detector and of hub_anon__key_mode take it in a loop of its own. */
__attribute__((always_inline)) static inline size_t
hub_anon__key_run(const uint32_t *table, const uint32_t *cyr, const unsigned char *p,
		  size_t i, size_t n, struct hub_anon_key *k, size_t *klen, uint32_t *all,
		  bool collapse)
{
	size_t room = HUB_ANON_KEY_MAX - *klen, lim;
	char *q = k->s + *klen;
	uint32_t a = *all;

	if (cyr) {
		lim = i + 2 * room < n - 1 ? i + 2 * room : n - 1; /* two bytes a letter */
		while (i < lim) {
			uint32_t x = cyr[hub_anon__cyr_at(p + i)]; /* 0: no Cyrillic letter */

			if (!(x & HUB_ANON_CP_PLAIN))
				break;
			a &= x;
			if (collapse && q > k->s && q[-1] == (char)x)
				k->unfolded = true;
			else
				*q++ = (char)x;
			i += 2;
		}
	} else {
		/* the byte before q in a register (0: none; no key byte is 0) */
		char prev = q > k->s ? q[-1] : 0;

		lim = i + room < n ? i + room : n;
		while (i < lim && p[i] < 0x80) {
			uint32_t x = table[p[i]];

			if (!(x & HUB_ANON_CP_PLAIN))
				break;
			a &= x;
			if (collapse && prev == (char)x)
				k->unfolded = true;
			else
				*q++ = prev = (char)x;
			i++;
		}
	}
	*klen = (size_t)(q - k->s);
	*all = a;
	return i;
}

/* Adds a code point, given by its hub_anon__cp_info, to the key (inline wherever it is
 * used: it is the inner loop of keying). */
__attribute__((always_inline)) static inline void hub_anon__key_add_info(struct hub_anon_key *k, uint32_t info)
{
	char c[2] = { (char)(info & 0xff), (char)(info >> 8 & 0xff) };
	size_t len = k->len, n;

	if (k->bad)
		return;
	/* most letters, and a Kazakh letter but һ (whose "h" the rule of "kh" reads): one
	 * byte (a Kazakh letter's strict one in a strict key) that no other rule reads */
	if ((info & HUB_ANON_CP_PLAIN) || ((info & HUB_ANON_CP_KAZAKH) && c[0] != 'h')) {
		if (info & HUB_ANON_CP_KAZAKH) {
			k->kazakh = true;
			if (k->mode == HUB_ANON_KEY_STRICT)
				c[0] = (char)(info >> 24);
		}
		if (k->mode == HUB_ANON_KEY_COLLAPSE && len && k->s[len - 1] == c[0]) {
			k->unfolded = true;
			return;
		}
		if (len == HUB_ANON_KEY_MAX)
			k->bad = true;
		else
			k->s[k->len++] = c[0];
		return;
	}
	if (!(info & HUB_ANON_CP_HASKEY)) {
		k->bad = true;
		return;
	}
	if ((info & HUB_ANON_CP_YERU) && k->mode != HUB_ANON_KEY_COLLAPSE)
		c[0] = 'y', c[1] = 0; /* as spelled, ы is not и: розы is not Рози */
	else if (info & HUB_ANON_CP_YERU)
		k->unfolded = true;
	if (info & HUB_ANON_CP_KAZAKH) {
		k->kazakh = true;
		if (k->mode == HUB_ANON_KEY_STRICT)
			c[0] = (char)(info >> 24), c[1] = 0;
	}
	n = !c[0] ? 0 : !c[1] ? 1 : 2;
	for (size_t j = 0; j < n; j++) {
		char ch = c[j], last = len ? k->s[len - 1] : 0; /* no key byte is 0 */

		if (ch == 'h' && last == 'k') {
			k->s[len - 1] = 'h'; /* kh as х */
			continue;
		}
		if (ch == 'z' && last == 'd' && j + 1 < n && c[j + 1] == 'h')
			last = --len ? k->s[len - 1] : 0; /* dzh as j */
		if (k->mode == HUB_ANON_KEY_COLLAPSE && last == ch) {
			k->unfolded = true;
			continue; /* Анна/Ana, Асель/Assel */
		}
		if (len == HUB_ANON_KEY_MAX) {
			k->bad = true;
			return;
		}
		k->s[len++] = ch;
	}
	k->len = len;
}

#endif
