/* anonymizer/anon_vault.c - see anon_vault.h. Values are few per request: a vault is one
 * allocation holding its first entries, their index by hash, the name and phone sets the
 * detector asks and the first block of an arena for norms, values and markers. */
#include "anonymizer/anon_vault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "anonymizer/anon_internal.h"
#include "lib/utf8.h"

/* Looks at one text at most (the first and the second find nearly everything). */
#define HUB_ANON_LOOKS 4

/* What a vault holds in its own allocation before it takes more: a conversation of ten
 * chat lines has a dozen values (a third of those of the corpus more than sixteen). */
#define ENTRIES_FIRST 32
#define INDEX_FIRST 64 /* twice the entries: open addressing at most half full */
#define NAMES_FIRST 64
#define PHONES_FIRST 32 /* two keys a phone (its last 10 and 7 digits): 8 phones */
#define GOT_FIRST 32
#define LITERALS_FIRST 8
#define ARENA_FIRST 1024
#define ARENA_BLOCK 4096
/* Keys of the last names of a text kept for taking them again (pseudonymize). */
#define KEYS 8

/* A norm is at most this much longer than its value, except a name's key (in its key). */
#define NORM_EXTRA 8

struct entry {
	uint64_t hash;         /* of type and norm */
	struct hub_str norm;   /* the value everyone spells the same way */
	struct hub_str value;  /* its first spelling: what restore writes */
	struct hub_str marker; /* "[PHONE_1]" once asked for (kept_marker), else NULL */
	unsigned index;        /* the marker's number; 0 for a known value not seen yet */
	/* an enum hub_anon_type, in a byte: the entry in 64 bytes, a span's (e - v->e) a
	 * shift */
	uint8_t type;
	bool literal;          /* found as written: an e-mail or a username */
};
_Static_assert(HUB_ANON_NTYPES <= 256, "an entry's type is a byte");

/* An open-addressing set of 64-bit keys with flags (a key 0 is stored as 1), as
 * hub_anon_htab; its first slots are the vault's. */
struct set_slot {
	uint64_t key; /* 0: free */
	uint32_t val;
};

struct set {
	struct set_slot *slots;
	size_t mask; /* slots - 1, a power of two less one */
	size_t left; /* keys it takes before it grows (at most half full); 0 when empty */
	uint64_t bits; /* bit (key >> 58) of each key (none: empty): most keys asked are not in */
};

/* The key of a name: what intern keys it by (normalize), or takes as it is. */
struct name_key {
	/* its key with repeats collapsed (HUB_ANON_KEY_COLLAPSE): own, or the detector's (in
	 * its words: hub_anon__name_word); NULL: to be keyed into own (from fold when it is
	 * known: collapse_folded, else from the name) */
	const struct hub_anon_key *k;
	const struct hub_anon_key *fold; /* its key as spelled (folded) when known, or NULL */
	bool fixed; /* k is known to be a name of the gazetteer whole (hub_anon__name_norm_fixed) */
	struct hub_anon_key own;
};

/* Nothing known of a name's key yet: normalize keys the name. */
static inline void key_it(struct name_key *nk)
{
	nk->k = nk->fold = NULL;
	nk->fixed = false;
}

/* A block of the arena beyond the vault's first: norms, values and markers. */
struct block {
	struct block *next;
};

struct hub_anon_vault {
	const struct hub_anon *anon;
	const uint32_t *cps, *cyr; /* anon's tables, for keying names (hub_anon__key_tables) */
	struct entry *e;
	size_t n, cap;
	size_t room;       /* entries it takes before e or index grow (0 when empty) */
	uint32_t *index;   /* entry + 1 by hash, 0 free */
	size_t index_mask;
	uint32_t *literals; /* the entries with literal on, in order */
	size_t nliterals, cap_literals;
	unsigned count[HUB_ANON_NTYPES];
	struct set names;  /* name norms (hub_anon__name_norm) */
	struct hub_anon__name_starts name_starts; /* of the name keys in names */
	struct set phones; /* national numbers (10 digits) and local ones (7) */
	char *arena, *arena_end; /* the free part of the arena's current block */
	struct block *blocks;
	uint32_t *got;     /* the entry of each span, + 1 (pseudonymize) */
	size_t cap_got;
	/* the keys of the last names of the text pseudonymized, by span (keys[i % KEYS]
	 * is span i's when key_span[i % KEYS] is i + 1) */
	size_t key_span[KEYS];
	/* from here on not zeroed by hub_anon_vault_new */
	struct hub_anon__scratch scratch_detect; /* the detector's spans and words, reused */
	struct name_key keys[KEYS];
	struct name_key key; /* normalize's key of a name (add_known) */
	/* the first of each (a table zeroed when it takes its first key) */
	uint32_t index_first[INDEX_FIRST];
	struct set_slot names_first[NAMES_FIRST];
	struct set_slot phones_first[PHONES_FIRST];
	struct entry e_first[ENTRIES_FIRST];
	uint32_t got_first[GOT_FIRST];
	uint32_t literals_first[LITERALS_FIRST];
	char arena_first[ARENA_FIRST];
};

int hub_anon_vault_new(const struct hub_anon *anon, struct hub_anon_vault **out)
{
	struct hub_anon_vault *v = hub_xmalloc(sizeof(*v));

	/* the fields and the first slots of the tables, not the rest of the inline room */
	memset(v, 0, offsetof(struct hub_anon_vault, scratch_detect));
	v->anon = anon;
	v->cps = hub_anon__cp_table(anon);
	v->cyr = hub_anon__cyr_table(anon);
	v->e = v->e_first;
	v->cap = ENTRIES_FIRST;
	v->index = v->index_first;
	v->index_mask = INDEX_FIRST - 1;
	v->names = (struct set){ v->names_first, NAMES_FIRST - 1, 0, 0 };
	v->phones = (struct set){ v->phones_first, PHONES_FIRST - 1, 0, 0 };
	v->arena = v->arena_first;
	v->arena_end = v->arena_first + ARENA_FIRST;
	v->got = v->got_first;
	v->cap_got = GOT_FIRST;
	v->literals = v->literals_first;
	v->cap_literals = LITERALS_FIRST;
	hub_anon__scratch_init(&v->scratch_detect);
	*out = v;
	return 0;
}

void hub_anon_vault_free(struct hub_anon_vault *vault)
{
	if (!vault)
		return;
	for (struct block *b = vault->blocks, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	if (vault->e != vault->e_first)
		free(vault->e);
	if (vault->index != vault->index_first)
		free(vault->index);
	if (vault->names.slots != vault->names_first)
		free(vault->names.slots);
	if (vault->phones.slots != vault->phones_first)
		free(vault->phones.slots);
	if (vault->got != vault->got_first)
		free(vault->got);
	if (vault->literals != vault->literals_first)
		free(vault->literals);
	hub_anon__scratch_release(&vault->scratch_detect);
	free(vault);
}

size_t hub_anon_vault_size(const struct hub_anon_vault *vault)
{
	size_t n = 0;

	for (size_t t = 0; t < HUB_ANON_NTYPES; t++)
		n += vault->count[t];
	return n;
}

static inline size_t set_first_slot(uint64_t key, size_t mask)
{
	return (size_t)(key ^ (key >> 29)) & mask;
}

static inline uint32_t set_get(const struct set *t, uint64_t key)
{
	if (!key)
		key = 1;
	if (!(t->bits >> (key >> 58) & 1))
		return 0; /* and when the set is empty */
	for (size_t i = set_first_slot(key, t->mask); t->slots[i].key; i = (i + 1) & t->mask)
		if (t->slots[i].key == key)
			return t->slots[i].val;
	return 0;
}

/* Room in t for one key more (none left): its first slots zeroed when it takes its first
 * key, or twice as many slots. */
static void set_room(struct set *t, struct set_slot *first)
{
	struct set old = *t;
	size_t i;

	if (!t->bits) {
		memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
		t->left = (t->mask + 1) / 2;
		return;
	}
	/* full: as many keys again */
	t->left = (old.mask + 1) / 2;
	t->mask = 2 * (old.mask + 1) - 1;
	t->slots = hub_xcalloc(t->mask + 1, sizeof(*t->slots));
	for (size_t j = 0; j <= old.mask; j++) {
		if (!old.slots[j].key)
			continue;
		for (i = set_first_slot(old.slots[j].key, t->mask); t->slots[i].key;
		     i = (i + 1) & t->mask)
			;
		t->slots[i] = old.slots[j];
	}
	if (old.slots != first)
		free(old.slots);
}

/* ORs flags into the entry of key; first: the set's slots in the vault. Inline: each new
 * entry puts a key or two in a set. */
__attribute__((always_inline)) static inline void
set_or(struct set *t, struct set_slot *first, uint64_t key, uint32_t flags)
{
	size_t i;

	if (!key)
		key = 1;
	if (!t->left)
		set_room(t, first);
	for (i = set_first_slot(key, t->mask); t->slots[i].key && t->slots[i].key != key;
	     i = (i + 1) & t->mask)
		;
	if (!t->slots[i].key) {
		t->slots[i].key = key;
		t->left--;
		t->bits |= 1ull << (key >> 58);
	}
	t->slots[i].val |= flags;
}

/* At least n bytes of the arena at v->arena (taken by moving it on). */
static char *arena_room(struct hub_anon_vault *v, size_t n)
{
	if ((size_t)(v->arena_end - v->arena) < n) {
		size_t size = sizeof(struct block) + (n > ARENA_BLOCK ? n : ARENA_BLOCK);
		struct block *b = hub_xmalloc(size);

		b->next = v->blocks;
		v->blocks = b;
		v->arena = (char *)(b + 1);
		v->arena_end = (char *)b + size;
	}
	return v->arena;
}

struct hub_anon__name_starts hub_anon__vault_name_starts(const struct hub_anon_vault *v)
{
	return v ? v->name_starts : (struct hub_anon__name_starts){ 0, 0 };
}

/* Notes the start of a name key of len bytes put in names. */
static void name_start(struct hub_anon_vault *v, const char *s, size_t len)
{
	v->name_starts.first |= 1ull << (s[0] & 63);
	if (len >= 2)
		v->name_starts.pairs |= 1ull << hub_anon__pair_bit(s);
}

uint32_t hub_anon__vault_name(const struct hub_anon_vault *v, uint64_t norm_hash)
{
	return v ? set_get(&v->names, norm_hash) : 0;
}

bool hub_anon__vault_has_phone(const struct hub_anon_vault *v, const char *digits, size_t n)
{
	/* most vaults hold no phone: no hash then */
	return v && v->phones.bits && set_get(&v->phones, hub_anon__hash(digits, n));
}

/* The calls of hub_anon__vault_each_literal, apart: most vaults have no literal, and the
 * detector asks each text (then nothing to save and restore). */
static __attribute__((noinline)) void each_literal(const struct hub_anon_vault *v,
						   hub_anon__value_cb *cb, void *data)
{
	for (size_t i = 0; i < v->nliterals; i++)
		cb(v->e[v->literals[i]].norm, v->e[v->literals[i]].type, data);
}

void hub_anon__vault_each_literal(const struct hub_anon_vault *v, hub_anon__value_cb *cb,
				  void *data)
{
	if (v && v->nliterals)
		each_literal(v, cb, data);
}

static bool is_letter_cp(uint32_t cp)
{
	return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') || (cp >= 0x400 && cp <= 0x4ff);
}

/* Eight bytes whose each byte has its high bit set where x's is in [lo, hi] (ASCII). */
static inline uint64_t bytes_in(uint64_t x, unsigned char lo, unsigned char hi)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t h = x & ~high; /* each byte's low 7 bits: no carry from one byte to the next */

	return ~x & high & ((h + ones * (0x80 - lo)) ^ (h + ones * (0x7f - hi)));
}

/* n bytes of p in lower case (ASCII) at out, eight at a time (an e-mail, a username). */
static void lower_ascii(char *out, const char *p, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x;

		memcpy(&x, p + i, 8);
		x ^= bytes_in(x, 'A', 'Z') >> 2; /* 0x20 in each upper-case letter */
		memcpy(out + i, &x, 8);
	}
	for (; i < n; i++)
		out[i] = p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i];
}

/* The digits and Latin letters (in upper case) of the n bytes at p, at out; their count.
 * Four digits at a time while they come so (an IIN, a card's groups). */
static size_t upper_alnum(char *out, const char *p, size_t n)
{
	size_t i = 0, o = 0;

	while (i < n) {
		uint32_t x;
		char c;

		if (i + 4 <= n) {
			memcpy(&x, p + i, 4);
			/* each byte in '0'..'9': neither below '0' nor above '9' (no borrow or
			 * carry crosses a byte then; the first byte out of it shows) */
			if (!(((x - 0x30303030u) | (x + 0x46464646u)) & 0x80808080u)) {
				memcpy(out + o, &x, 4);
				o += 4;
				i += 4;
				continue;
			}
		}
		c = p[i++];
		if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))
			out[o++] = c;
		else if (c >= 'a' && c <= 'z')
			out[o++] = c - 32;
	}
	return o;
}

/* The key of a name with repeats collapsed (HUB_ANON_KEY_COLLAPSE) from its key as spelled
 * (HUB_ANON_KEY_FOLD, the detector's of a Cyrillic word), as keying the word again gives
 * it: the bytes with each equal to the one before left out, and a "y" (ы as spelled) as
 * "i" (unfolded set when either changed something). false where the rules that read the
 * byte before may have made the two keys differ otherwise (then key the word): "kh" or "hh"
 * ("ккх" as spelled is "kh", collapsed "h"; "хкх" "hh", collapsed still "hh"), "dz" ("ддж"
 * "dzh", collapsed "zh"), and a start the leading "ie" of hub_anon__key_end may be taken
 * from only when collapsed ("иие", "ые"). */
static bool collapse_folded(const struct hub_anon_key *f, struct hub_anon_key *c)
{
	char b = 0; /* the byte before in f */
	size_t n = 0;

	if (f->len >= 2 &&
	    (f->s[0] == 'y' || (f->s[0] == 'i' && (f->s[1] == 'i' || f->s[1] == 'y'))))
		return false;
	c->unfolded = false;
	for (size_t i = 0; i < f->len; b = f->s[i++]) {
		char x = f->s[i];

		if ((x == 'h' && (b == 'k' || b == 'h')) || (x == 'z' && b == 'd'))
			return false;
		if (x == 'y') {
			x = 'i';
			c->unfolded = true;
		}
		if (n && c->s[n - 1] == x)
			c->unfolded = true;
		else
			c->s[n++] = x;
	}
	c->len = n;
	c->latin = f->latin;
	c->kazakh = f->kazakh;
	c->bad = false;
	c->mode = HUB_ANON_KEY_COLLAPSE;
	return true;
}

/* A phone's norm (normalize): its digits, a national number with its country code, a local
 * one (7 digits) after "local:". Written in buf (room for value.len + NORM_EXTRA bytes). */
static inline struct hub_str phone_norm(struct hub_str value, char *buf)
{
	/* the digits after room for "local:" or a "7" before them */
	char *d = buf + 6;
	size_t n = 0, o = 0;

	/* each byte written where the next digit goes, kept when a digit: no branch (d[n],
	 * n <= i, is in the room); the first 64 digits stay as written */
	for (size_t i = 0; i < value.len; i++) {
		d[n] = value.p[i];
		n += (unsigned char)(value.p[i] - '0') < 10;
	}
	if (n > 64)
		n = 64;
	if (n == 7) {
		memcpy(buf, "local:", 6);
		return (struct hub_str){ buf, 13 };
	}
	if (value.len && value.p[0] == '+') {
		o = 0;
	} else if (n == 11 && (d[0] == '8' || d[0] == '7')) {
		d[0] = '7';
	} else if (n == 10) {
		*--d = '7';
		n++;
	} else if (n > 3 && d[0] == '0' && d[1] == '0') {
		o = 2;
	} else if (n > 3 && d[0] == '8' && d[1] == '1' && d[2] == '0') {
		o = 3;
	}
	return (struct hub_str){ d + o, n - o };
}

/* The norm of a value of type: what two spellings of one value share, and its hash in *h.
 * Written in buf (room for value.len + NORM_EXTRA bytes), or for a name (not literal) the
 * first bytes of its collapsed key nk->k (keyed into nk->own when it is NULL: from its key as
 * spelled when that is known and says all). */
__attribute__((always_inline)) static inline struct hub_str
normalize(const struct hub_anon_vault *v, enum hub_anon_type type, struct hub_str value,
	  char *buf, bool *literal, struct name_key *nk, uint64_t *h)
{
	struct hub_str norm;

	*literal = false;
	if (type == HUB_ANON_NAME) {
		if (!nk->k && ((nk->fold && collapse_folded(nk->fold, &nk->own)) ||
			       hub_anon__key_tables(v->cps, v->cyr, value.p, value.len,
						    HUB_ANON_KEY_COLLAPSE, &nk->own)))
			nk->k = &nk->own;
		if (nk->k) {
			/* a name of the gazetteer is its own norm, whatever the vault holds */
			size_t n = nk->fixed ? hub_anon__key_norm(nk->k->s, nk->k->len)
					     : hub_anon__name_norm(v->anon, v, nk->k);

			/* of its n first bytes */
			*h = hub_anon__key_hash(nk->k, n) ^ (uint64_t)type;
			return (struct hub_str){ nk->k->s, n };
		}
	}
	/* branches, the likeliest first, not a switch: its jump's target changes from one
	 * value to the next, and is mispredicted as often as not */
	if (type == HUB_ANON_PHONE) {
		norm = phone_norm(value, buf);
	} else if (type == HUB_ANON_NAME || type == HUB_ANON_EMAIL) {
		/* an e-mail, or a name without a key (a username) */
		*literal = true;
		lower_ascii(buf, value.p, value.len);
		norm = (struct hub_str){ buf, value.len };
	} else if (type == HUB_ANON_MARKER) {
		norm = value;
	} else { /* an IIN, BIN, ID, card or IBAN */
		norm = (struct hub_str){ buf, upper_alnum(buf, value.p, value.len) };
	}
	*h = hub_anon__hash(norm.p, norm.len) ^ (uint64_t)type;
	return norm;
}

/* The entry of norm, or NULL with the free slot of the index where it would go in *slot
 * (intern puts it there without a second probe). */
__attribute__((always_inline)) static inline struct entry *
find(const struct hub_anon_vault *v, enum hub_anon_type type, struct hub_str norm, uint64_t h,
     size_t *slot)
{
	size_t i = 0;

	if (!v->n)
		goto none; /* its index is not zeroed yet (intern zeroes it: entry_room) */
	for (i = set_first_slot(h, v->index_mask); v->index[i]; i = (i + 1) & v->index_mask) {
		struct entry *e = &v->e[v->index[i] - 1];

		if (e->hash == h && e->type == type && e->norm.len == norm.len &&
		    memcmp(e->norm.p, norm.p, norm.len) == 0)
			return e;
	}
none:
	*slot = i;
	return NULL;
}

/* A phone's norm is "local:" and 7 digits, or digits. */
static inline bool is_local(struct hub_str norm)
{
	return norm.len && norm.p[0] == 'l';
}

/* A 7-digit local number is the phone of the vault that ends with it, if any. */
static struct entry *find_local(const struct hub_anon_vault *v, struct hub_str norm)
{
	for (size_t i = 0; i < v->n; i++) {
		struct entry *e = &v->e[i];

		if (e->type == HUB_ANON_PHONE && e->norm.len > 7 &&
		    memcmp(e->norm.p + e->norm.len - 7, norm.p + 6, 7) == 0)
			return e;
	}
	return NULL;
}

static void index_phone(struct hub_anon_vault *v, struct hub_str norm)
{
	const char *d = norm.p;
	size_t n = norm.len;

	if (is_local(norm)) {
		d += 6;
		n -= 6;
	}
	if (n >= 10)
		set_or(&v->phones, v->phones_first, hub_anon__hash(d + n - 10, 10), 1);
	if (n >= 7)
		set_or(&v->phones, v->phones_first, hub_anon__hash(d + n - 7, 7), 1);
}

/* A name is looked for by its key both with repeats collapsed (how Latin words are
 * keyed) and as spelled (Cyrillic words): the norm, and the same stem of the other key.
 * nk: its keys (normalize's), h the entry's hash (of the norm, and the type). Inline in
 * intern: each new name takes it. */
__attribute__((always_inline)) static inline void
index_name(struct hub_anon_vault *v, struct hub_str value, const struct name_key *nk,
	   size_t norm_len, uint64_t h, uint32_t how)
{
	const struct hub_anon_key *c = nk->k, *fold = nk->fold;
	struct hub_anon_key own;

	if (c->kazakh)
		how |= HUB_ANON_KAZAKH;
	/* the collapsed key (the entry's norm) whatever the folded one gives: a word too
	 * long to fold ("Aqqq...qsy") is still an entry, and a name the text finds */
	set_or(&v->names, v->names_first, h ^ (uint64_t)HUB_ANON_NAME, how);
	name_start(v, c->s, norm_len);
	/* the folded key is the collapsed one unless that collapsed something (then its
	 * stem is the norm again, already in) */
	if (!c->unfolded)
		return;
	if (!fold) {
		if (!hub_anon__key_tables(v->cps, v->cyr, value.p, value.len, HUB_ANON_KEY_FOLD,
					  &own))
			return;
		fold = &own;
	}
	if (fold->len >= c->len - norm_len) {
		size_t len = fold->len - (c->len - norm_len);

		set_or(&v->names, v->names_first, hub_anon__key_hash(fold, len), how);
		name_start(v, fold->s, len);
	}
}

/* The entry of value, or NULL; its norm in *norm (written in buf, room for value.len +
 * NORM_EXTRA bytes, or a name's key in nk), and where it goes in the index in *slot (find).
 * Inline, with normalize and find: each entry of a text is looked up once, and the norm
 * then stays in registers. */
__attribute__((always_inline)) static inline struct entry *
lookup(const struct hub_anon_vault *v, enum hub_anon_type type, struct hub_str value, char *buf,
       struct hub_str *norm, bool *literal, uint64_t *h, struct name_key *nk, size_t *slot)
{
	struct entry *e;

	*norm = normalize(v, type, value, buf, literal, nk, h);
	e = find(v, type, *norm, *h, slot);
	if (!e && type == HUB_ANON_PHONE && is_local(*norm))
		e = find_local(v, *norm);
	return e;
}

static void index_entry(struct hub_anon_vault *v, uint64_t h, size_t at)
{
	size_t i;

	for (i = set_first_slot(h, v->index_mask); v->index[i]; i = (i + 1) & v->index_mask)
		;
	v->index[i] = (uint32_t)at + 1;
}

/* Room for entries, in e and in index (none left): the index zeroed for the first entry, or
 * twice as many. */
static void entry_room(struct hub_anon_vault *v)
{
	size_t most;

	if (!v->n)
		memset(v->index_first, 0, sizeof(v->index_first));
	if (v->n == v->cap) {
		struct entry *e = hub_xmalloc(2 * v->cap * sizeof(*e));

		memcpy(e, v->e, v->n * sizeof(*e));
		if (v->e != v->e_first)
			free(v->e);
		v->e = e;
		v->cap *= 2;
	}
	if ((v->n + 1) * 2 > v->index_mask + 1) {
		if (v->index != v->index_first)
			free(v->index);
		v->index_mask = 2 * (v->index_mask + 1) - 1;
		v->index = hub_xcalloc(v->index_mask + 1, sizeof(*v->index));
		for (size_t i = 0; i < v->n; i++)
			index_entry(v, v->e[i].hash, i);
	}
	most = (v->index_mask + 1) / 2; /* the index at most half full */
	v->room = (v->cap < most ? v->cap : most) - v->n;
}

/* The entry of value, added if new; known: the caller gave it. A name is keyed in nk, or
 * keyed already (by the detector, or the key of a name found in a text, which is the same
 * at each look). */
static struct entry *intern(struct hub_anon_vault *v, enum hub_anon_type type,
			    struct hub_str value, bool known, struct name_key *nk)
{
	uint32_t how = known ? HUB_ANON_KNOWN : HUB_ANON_LEARNED;
	/* the norm then the value, each NUL-terminated, where the norm is written */
	size_t room = value.len + NORM_EXTRA + HUB_ANON_KEY_MAX + value.len + 2;
	char *buf = arena_room(v, room), *p;
	struct hub_str norm;
	struct entry *e;
	bool literal;
	uint64_t h;
	size_t slot;

	e = lookup(v, type, value, buf, &norm, &literal, &h, nk, &slot);
	if (e) {
		if (known && type == HUB_ANON_NAME && !literal)
			index_name(v, value, nk, e->norm.len, e->hash, how);
		return e;
	}
	/* a norm written in buf stays where it is */
	p = (char *)norm.p;
	if (type == HUB_ANON_NAME && !literal) {
		/* a name's key: its whole buffer in one copy of a fixed size (room has it) */
		p = buf;
		memcpy(p, nk->k->s, sizeof(nk->k->s));
	} else if (norm.p == value.p) {
		p = buf;
		if (norm.len)
			memcpy(p, norm.p, norm.len);
	}
	p[norm.len] = '\0';
	hub_anon__copy_short(p + norm.len + 1, value.p, value.len);
	p[norm.len + 1 + value.len] = '\0';
	v->arena = p + norm.len + value.len + 2;
	if (v->room) {
		v->index[slot] = (uint32_t)v->n + 1;
	} else {
		entry_room(v); /* the index zeroed or grown: looked for again */
		index_entry(v, h, v->n);
	}
	v->room--;
	e = &v->e[v->n++];
	*e = (struct entry){ .hash = h,
			     .norm = { p, norm.len },
			     .value = { p + norm.len + 1, value.len },
			     .type = type,
			     .literal = literal };
	if (literal) {
		if (v->nliterals == v->cap_literals) {
			uint32_t *l = hub_xmalloc(2 * v->cap_literals * sizeof(*l));

			memcpy(l, v->literals, v->nliterals * sizeof(*l));
			if (v->literals != v->literals_first)
				free(v->literals);
			v->literals = l;
			v->cap_literals *= 2;
		}
		v->literals[v->nliterals++] = (uint32_t)(e - v->e);
	}
	if (type == HUB_ANON_NAME && !literal)
		index_name(v, value, nk, norm.len, h, how);
	if (type == HUB_ANON_PHONE)
		index_phone(v, e->norm);
	return e;
}

/* Longer than any marker: "[", a type's name (hub_anon__types, copied whole), "_", an
 * unsigned in decimal, "]". */
#define MARKER_ROOM 32

/* In pseudonymize's got[i]: the entry of span i was numbered for this look. */
#define FRESH 0x80000000u

/* Gives e the next number of its type (it has none). */
static inline void number(struct hub_anon_vault *v, struct entry *e)
{
	e->index = ++v->count[e->type];
}

/* Takes back the numbers given to the entries of the spans where got has FRESH (in the order
 * they were given: the last of each type has its count), for the text to be numbered again. */
static void unnumber(struct hub_anon_vault *v, uint32_t *got, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (got[i] & FRESH) {
			got[i] &= ~FRESH;
			v->count[v->e[got[i] - 1].type]--;
			v->e[got[i] - 1].index = 0;
		}
	}
}

/* Writes the marker of e (numbered) at o (room for MARKER_ROOM bytes); returns its length.
 * Written where it goes: the entry keeps it only for whoever asks the entities
 * (kept_marker). Inline: each span of a text takes it. */
__attribute__((always_inline)) static inline size_t put_marker(const struct entry *e, char *o)
{
	unsigned idx = e->index;
	size_t n = 1 + hub_anon__types[e->type].len;
	char d[12];

	o[0] = '[';
	memcpy(o + 1, hub_anon__types[e->type].s, sizeof(hub_anon__types[0].s)); /* whole */
	o[n++] = '_';
	if (idx < 10) {
		o[n++] = (char)('0' + idx);
	} else if (idx < 100) {
		o[n++] = (char)('0' + idx / 10);
		o[n++] = (char)('0' + idx % 10);
	} else {
		size_t nd = 0;

		do
			d[nd++] = (char)('0' + idx % 10);
		while (idx /= 10);
		while (nd)
			o[n++] = d[--nd];
	}
	o[n++] = ']';
	return n;
}

/* The marker of e (numbered), kept in the vault's arena. */
static struct hub_str kept_marker(struct hub_anon_vault *v, struct entry *e)
{
	if (!e->marker.p) {
		char *k = arena_room(v, MARKER_ROOM);
		size_t len = put_marker(e, k);

		k[len] = '\0';
		v->arena = k + len + 1;
		e->marker = (struct hub_str){ k, len };
	}
	return e->marker;
}

/* The entry of a value the caller gave (a name keyed from it). */
static struct entry *known_value(struct hub_anon_vault *v, enum hub_anon_type type,
				 struct hub_str value)
{
	key_it(&v->key);
	return intern(v, type, value, true, &v->key);
}

int hub_anon_vault_add_known(struct hub_anon_vault *vault, enum hub_anon_type type,
			     struct hub_str value)
{
	size_t digits = 0, i = 0, added = 0;

	if (!value.len || !hub_utf8_valid(value.p, value.len))
		return -EINVAL;
	switch (type) {
	case HUB_ANON_PHONE:
		for (size_t j = 0; j < value.len; j++)
			digits += value.p[j] >= '0' && value.p[j] <= '9';
		if (digits < 7 || digits > 15)
			return -EINVAL;
		(void)known_value(vault, type, value);
		return 0;
	case HUB_ANON_EMAIL:
		if (!memchr(value.p, '@', value.len) || value.len < 3)
			return -EINVAL;
		(void)known_value(vault, type, value);
		return 0;
	case HUB_ANON_NAME:
		break;
	default:
		return -EINVAL;
	}
	/* words of letters; anything else makes the whole value a literal (a username) */
	while (i < value.len) {
		uint32_t cp;
		size_t l = hub_utf8_decode((const unsigned char *)value.p + i, value.len - i, &cp);

		if (!l)
			return -EINVAL;
		if (!is_letter_cp(cp) && cp != ' ' && cp != '-' && cp != '\'' && cp != '.') {
			if (value.len < 3)
				return -EINVAL;
			(void)known_value(vault, type, value);
			return 0;
		}
		i += l;
	}
	for (i = 0; i < value.len;) {
		size_t s = i;
		struct hub_anon_key k;

		while (i < value.len && value.p[i] != ' ' && value.p[i] != '-' &&
		       value.p[i] != '\'' && value.p[i] != '.')
			i++;
		if (i > s && hub_anon__key(vault->anon, value.p + s, i - s, &k) && k.len >= 2) {
			(void)known_value(vault, type, (struct hub_str){ value.p + s, i - s });
			added++;
		}
		i++;
	}
	return added ? 0 : -EINVAL;
}

/* at is inside a span; *i moves along the sorted spans as at grows. */
static bool inside(const struct hub_anon_spans *spans, size_t at, size_t *i)
{
	while (*i < spans->n && spans->items[*i].end <= at)
		(*i)++;
	return *i < spans->n && spans->items[*i].start <= at;
}

/* Whether an ASCII digit is in text.p[at, end): eight bytes at a time. */
static bool has_digit(struct hub_str text, size_t at, size_t end)
{
	for (; at + 8 <= end; at += 8)
		if (bytes_in(hub_anon__load(text.p + at, 8), '0', '9'))
			return true;
	if (at == end)
		return false;
	if (end >= 8) /* the 8 bytes that end with the rest, those before shifted out */
		return bytes_in(hub_anon__load(text.p + end - 8, 8) >> (8 * (8 - (end - at))), '0',
				'9') != 0;
	for (; at < end; at++)
		if (text.p[at] >= '0' && text.p[at] <= '9')
			return true;
	return false;
}

/* Whether a digit of text is outside every span (sorted, none overlapping): the gaps
 * between them, from the first digit to the last (left). */
static bool digit_outside(struct hub_str text, const struct hub_anon_spans *spans,
			  const struct hub_anon__left *left)
{
	const struct hub_anon_span *sp = spans->items, *send = sp + spans->n;
	size_t at = left->digits_at, to = left->digits_end;

	for (;; sp++) {
		/* the gap before sp, or the rest */
		size_t end = sp < send && sp->start < to ? sp->start : to;

		if (at < end && has_digit(text, at, end))
			return true;
		if (end == to)
			return false;
		if (sp->end > at)
			at = sp->end;
	}
}

/* Whether the digits from at on may be joined to digits before at in one run of the
 * detector (its separators, a '+', and what is before the first digit from at). Keep in
 * step with find_numbers and is_sep in anon.c: any separator they come to join groups
 * with must be one here. */
static bool run_before(struct hub_str text, size_t at)
{
	while (at < text.len && (text.p[at] < '0' || text.p[at] > '9'))
		at++;
	while (at > 0) {
		unsigned char c = (unsigned char)text.p[at - 1];

		if (c >= '0' && c <= '9')
			return true;
		if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')' && c != '+' &&
		    c != 0xc2 && c != 0xa0)
			return false;
		at--;
	}
	return false;
}

/* Whether a phone the vault learned from text (entries from was on) may make the detector
 * find more in it. The detector takes a number for a phone of the vault when its last 10
 * or its 7 digits are one of the vault's (hub_anon__vault_has_phone): the number then ends
 * with the phone's last 7 digits, and its digits follow one another in the digits of the
 * text, in one run of digit groups joined by separators. Found already: a phone span
 * ending with them whose run starts in it (any such number is then inside the span).
 * Anything else: look again. Keep in step with phone_ok and match_groups in anon.c. */
static bool phone_again(const struct hub_anon_vault *v, struct hub_str text,
			const struct hub_anon_spans *spans, size_t was)
{
	uint32_t tails[8], last = 0; /* 7 digits, 4 bits each */
	size_t nt = 0, si = 0, seen = 0;

	for (size_t i = was; i < v->n; i++) {
		const struct entry *e = &v->e[i];
		uint32_t t = 0;

		if (e->type != HUB_ANON_PHONE || e->norm.len < 7)
			continue;
		if (nt == HUB_ARRAY_SIZE(tails))
			return true; /* many: look again */
		for (size_t j = e->norm.len - 7; j < e->norm.len; j++)
			t = t << 4 | (uint32_t)(e->norm.p[j] - '0');
		tails[nt++] = t;
	}
	if (!nt)
		return false;
	/* the digits of the text, eight bytes at a time: most bytes are none */
	for (size_t at = 0; at < text.len; at += 8) {
		/* the last bytes of the text padded with zeros (no digit) */
		uint64_t x = at + 8 <= text.len ? hub_anon__load(text.p + at, 8)
						: hub_anon__load(text.p + at, text.len - at);
		uint64_t digits = bytes_in(x, '0', '9');

		for (; digits; digits &= digits - 1) {
			size_t p = at + (size_t)__builtin_ctzll(digits) / 8;
			bool in = inside(spans, p, &si);
			const struct hub_anon_span *sp;

			last = (last << 4 | (uint32_t)(text.p[p] - '0')) & 0xfffffff;
			if (++seen < 7)
				continue;
			for (size_t j = 0; j < nt; j++) {
				if (tails[j] != last)
					continue;
				if (!in)
					return true;
				sp = &spans->items[si];
				if (sp->type != HUB_ANON_PHONE || run_before(text, sp->start))
					return true;
				for (size_t q = p + 1; q < sp->end; q++)
					if (text.p[q] >= '0' && text.p[q] <= '9')
						return true; /* not the span's last digits */
			}
		}
	}
	return false;
}

/* What the entries a look at a text added are, for look_again. */
struct learned {
	uint64_t first; /* bit c & 63 of the first key byte of each name to look for */
	bool phone;
	bool literal;
};

/* Notes the new entry e in *l. Inline: each new entry of a text takes it. */
static inline void learn(struct learned *l, const struct entry *e)
{
	if (e->type == HUB_ANON_PHONE) {
		l->phone = true;
	} else if (e->literal) {
		l->literal = true;
	} else if (e->type == HUB_ANON_NAME && e->norm.len) {
		char c = e->norm.p[0];

		/* the key may start otherwise than its first letter: Yerlan "erlan", Khan
		 * "han", Джамал "zhamal" */
		l->first |= 1ull << (c & 63);
		if (c == 'e')
			l->first |= 1ull << ('i' & 63);
		if (c == 'h')
			l->first |= 1ull << ('k' & 63);
		if (c == 'z')
			l->first |= 1ull << ('d' & 63);
	}
}

/* Whether the values the vault learned from text (entries from was on, l what they are)
 * may be written again, another way, outside what was found (spans, and left outside
 * them): a digit outside the spans that a number ending as a phone of the vault may take (a
 * number of the vault may also take digits beside what was found: phone_again), the value
 * itself for an e-mail or username, a word the detector would find as a name of the vault
 * (in any case: a learned name is one in lower case too). Most texts need no second look. */
static bool look_again(const struct hub_anon_vault *v, struct hub_str text,
		       const struct hub_anon_spans *spans, const struct hub_anon__left *left,
		       size_t was, const struct learned *l)
{
	for (size_t i = was; l->literal && i < v->n; i++) {
		const struct entry *e = &v->e[i];
		size_t si = 0;

		if (e->type == HUB_ANON_PHONE || !e->literal)
			continue;
		for (size_t at = 0; (at = hub_anon__find_ci(text, at, e->norm)) != SIZE_MAX; at++)
			if (!inside(spans, at, &si))
				return true;
	}
	/* with every digit in the spans, a second look finds what the first did */
	if (l->phone && digit_outside(text, spans, left) && phone_again(v, text, spans, was))
		return true;
	return l->first && hub_anon__name_left(v, left, spans, l->first);
}

/* The norm of the name of span i (a name taken this look) is the same whatever names the
 * vault learns: its key is still in keys (key_span) and the gazetteer has it whole
 * (hub_anon__name_norm_fixed). Else a new name may change it: it is taken again. */
static bool norm_fixed(const struct hub_anon_vault *v, size_t i)
{
	const struct name_key *nk = &v->keys[i % KEYS];

	return v->key_span[i % KEYS] == i + 1 &&
	       (nk->fixed || hub_anon__name_norm_fixed(v->anon, nk->k));
}

/* The keys of the name of span sp in *nk: the detector's (a name of one word: its key as
 * the vault keys it, or as spelled), else to be keyed. *w: the next name of the scratch to
 * look at, as sp moves on. Inline: each name of a text asks it. */
__attribute__((always_inline)) static inline void
span_key(const struct hub_anon_vault *v, const struct hub_anon_span *sp, size_t *w,
	 struct name_key *nk)
{
	const struct hub_anon__scratch *sc = &v->scratch_detect;
	const struct hub_anon__name_word *nw;

	key_it(nk);
	while (*w < sc->nnames && sc->names[*w].start < sp->start)
		(*w)++;
	if (*w == sc->nnames)
		return;
	nw = &sc->names[*w];
	if (nw->start != sp->start || nw->end != sp->end)
		return; /* a name of several words, or merged with another span */
	if (nw->collapsed) {
		nk->k = nw->k;
		nk->fixed = nw->fixed;
		/* as spelled, a Cyrillic word's is the same (unfolded off: not asked) */
	} else {
		nk->fold = nw->k;
	}
}

/* Room for the entries of n spans (each set before it is read). */
static uint32_t *got_room(struct hub_anon_vault *v, size_t n)
{
	if (n > v->cap_got) {
		if (v->got != v->got_first)
			free(v->got);
		v->cap_got = 2 * n;
		v->got = hub_xmalloc(v->cap_got * sizeof(*v->got));
	}
	return v->got;
}

/* The text of span sp of text. */
static inline struct hub_str span_text(struct hub_str text, const struct hub_anon_span *sp)
{
	return (struct hub_str){ text.p + sp->start, sp->end - sp->start };
}

/* Room in out for n bytes more and the NUL: an output buffer used again has it (no call). */
static inline void buf_room(struct hub_buf *out, size_t n)
{
	if (n >= out->cap - out->len) /* cap 0 (no buffer yet): grows */
		hub_buf_grow(out, n);
}

/* pseudonymize's output, written after its looks when the last one's did not stand: the
 * spans with got[i] 0 interned (names taken again, or each span of a last look); the
 * text's part after the last span is left (from *at on). Apart: most texts never take it. */
static __attribute__((noinline)) char *
write_again(struct hub_anon_vault *vault, struct hub_str text, struct hub_buf *out,
	    const struct hub_anon_spans *spans, uint32_t *got, size_t *at)
{
	char *o;

	buf_room(out, text.len + spans->n * MARKER_ROOM);
	o = out->p + out->len;
	*at = 0;
	for (size_t i = 0, w = 0; i < spans->n; i++) {
		const struct hub_anon_span *sp = &spans->items[i];
		struct entry *e;

		if (got[i]) {
			e = &vault->e[got[i] - 1];
		} else {
			size_t j = i % KEYS;

			/* keyed already, or by the detector */
			if (vault->key_span[j] != i + 1 && sp->type == HUB_ANON_NAME)
				span_key(vault, sp, &w, &vault->keys[j]);
			vault->key_span[j] = 0;
			e = intern(vault, sp->type, span_text(text, sp), false, &vault->keys[j]);
			got[i] = (uint32_t)(e - vault->e) + 1;
		}
		if (!e->index)
			number(vault, e);
		hub_anon__copy_short(o, text.p + *at, sp->start - *at);
		o += sp->start - *at;
		o += put_marker(e, o);
		*at = sp->end;
	}
	return o;
}

int hub_anon_vault_pseudonymize(struct hub_anon_vault *vault, struct hub_pool *pool,
				struct hub_str text, struct hub_buf *out,
				struct hub_anon_entity **ents, size_t *n)
{
	struct hub_anon_spans spans;
	struct hub_anon__left left;
	size_t at = 0, was;
	/* got[i]: the entry of span i, + 1, and FRESH; 0 to intern */
	uint32_t *got = NULL;
	bool written = false; /* the output of the last look stands */
	char *o;
	int ret;

	if (ents)
		*ents = NULL;
	if (n)
		*n = 0;
	ret = hub_anon__detect(vault->anon, vault, pool, text, &spans, &left,
			       &vault->scratch_detect);
	if (ret < 0)
		return ret;
	if (!spans.n) {
		/* nothing found: the vault learns nothing (hub_buf_add, without its calls) */
		if (text.len) {
			buf_room(out, text.len);
			memcpy(out->p + out->len, text.p, text.len);
			out->len += text.len;
			out->p[out->len] = '\0';
		}
		return 0;
	}
	/* A value first seen here may also be written another way earlier in the text
	 * ("701-123-4567 ... +7 701 123 45 67"): once the vault knows it, look again (and
	 * again, a few times at most, for what that look finds). Each look writes the output
	 * as it goes (most texts need one): a look that does not stand takes back the numbers
	 * it gave. */
	for (int look = 1; look < HUB_ANON_LOOKS; look++) {
		size_t stale = 0; /* names before span stale are taken again */
		struct learned learned = { 0, false, false };
		bool taken = false; /* a span is to be taken again: the numbers taken back */

		was = vault->n;
		got = got_room(vault, spans.n);
		memset(vault->key_span, 0, sizeof(vault->key_span));
		/* room for it all at once: the text, and a marker (shorter than MARKER_ROOM)
		 * in place of each span */
		buf_room(out, text.len + spans.n * MARKER_ROOM);
		o = out->p + out->len;
		at = 0;
		for (size_t i = 0, w = 0; i < spans.n; i++) {
			const struct hub_anon_span *sp = &spans.items[i];
			struct name_key *nk = &vault->keys[i % KEYS];
			size_t before = vault->n;
			struct entry *e;

			if (sp->type == HUB_ANON_NAME)
				span_key(vault, sp, &w, nk);
			e = intern(vault, sp->type, span_text(text, sp), false, nk);

			got[i] = (uint32_t)(e - vault->e) + 1;
			/* a name keyed (not a literal): its key serves again */
			if (spans.items[i].type == HUB_ANON_NAME)
				vault->key_span[i % KEYS] = e->literal ? 0 : i + 1;
			/* a name's norm depends on the names the vault has: a new name may
			 * change the norm of the names before it */
			if (vault->n > before) {
				learn(&learned, e);
				if (e->type == HUB_ANON_NAME)
					stale = i;
			}
			if (!e->index) {
				number(vault, e);
				got[i] |= FRESH;
			}
			hub_anon__copy_short(o, text.p + at, sp->start - at);
			o += sp->start - at;
			o += put_marker(e, o);
			at = sp->end;
		}
		for (size_t i = 0; i < stale; i++) {
			if (spans.items[i].type == HUB_ANON_NAME && !norm_fixed(vault, i)) {
				if (!taken)
					unnumber(vault, got, spans.n);
				taken = true;
				got[i] = 0;
			}
		}
		if (!(learned.first || learned.phone || learned.literal) ||
		    !look_again(vault, text, &spans, &left, was, &learned)) {
			written = !taken;
			break;
		}
		if (!taken)
			unnumber(vault, got, spans.n);
		got = NULL;
		memset(vault->key_span, 0, sizeof(vault->key_span));
		ret = hub_anon__detect(vault->anon, vault, pool, text, &spans, &left,
				       &vault->scratch_detect);
		if (ret < 0)
			return ret;
	}
	if (!written) {
		if (!got) {
			got = got_room(vault, spans.n);
			memset(got, 0, spans.n * sizeof(*got));
		}
		o = write_again(vault, text, out, &spans, got, &at);
	}
	hub_anon__copy_short(o, text.p + at, text.len - at);
	o += text.len - at;
	out->len = (size_t)(o - out->p);
	out->p[out->len] = '\0';
	if (ents && spans.n) {
		struct hub_anon_entity *list = hub_pool_calloc(pool, spans.n, sizeof(*list));

		for (size_t i = 0; i < spans.n; i++) {
			const struct hub_anon_span *sp = &spans.items[i];
			struct entry *e = &vault->e[(got[i] & ~FRESH) - 1];

			list[i] = (struct hub_anon_entity){ sp->start, sp->end, sp->type,
							    kept_marker(vault, e) };
		}
		*ents = list;
		*n = spans.n;
	}
	return 0;
}

void hub_anon_vault_restore(const struct hub_anon_vault *vault, struct hub_str text,
			    struct hub_buf *out)
{
	enum hub_anon_type type;
	unsigned idx;
	size_t at = 0, m, l;

	while ((m = hub_anon__marker_find(text.p, text.len, at, false, &l, &type, &idx)) !=
	       SIZE_MAX) {
		hub_buf_add(out, text.p + at, m - at);
		for (size_t j = 0; j < vault->n; j++) {
			if (vault->e[j].type == type && vault->e[j].index == idx) {
				hub_buf_addstr(out, vault->e[j].value);
				break;
			}
		}
		at = m + l;
	}
	hub_buf_add(out, text.p + at, text.len - at);
}

/* What the detector finds in text: 1 a value of the vault, 2 something else, 0 nothing. */
static int scan_out(const struct hub_anon_vault *v, struct hub_str text, bool values_only)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_anon_spans spans;
	struct name_key nk;
	struct hub_str norm;
	int hit = 0;

	if (hub_anon_detect(v->anon, v, &pool, text, &spans) < 0) {
		hit = 2; /* too long to check: it does not leave */
		goto out;
	}
	for (size_t i = 0; i < spans.n && hit != 1; i++) {
		const struct hub_anon_span *sp = &spans.items[i];
		bool literal;
		uint64_t h;
		size_t slot;

		if (sp->type == HUB_ANON_MARKER)
			continue;
		hub_buf_reset(&b);
		hub_buf_grow(&b, sp->end - sp->start + NORM_EXTRA);
		key_it(&nk);
		if (lookup(v, sp->type, span_text(text, sp), b.p, &norm, &literal, &h, &nk, &slot))
			hit = 1;
		else if (!values_only)
			hit = 2;
	}
out:
	hub_buf_release(&b);
	hub_pool_release(&pool);
	return hit;
}

bool hub_anon_vault_guard(const struct hub_anon_vault *vault, struct hub_str text)
{
	return scan_out(vault, text, false) != 0;
}

bool hub_anon_vault_leaks(const struct hub_anon_vault *vault, struct hub_str text)
{
	return scan_out(vault, text, true) == 1;
}
