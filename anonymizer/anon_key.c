/* anonymizer/anon_key.c - word keys, stems, the hash set and the marker grammar shared by
 * the detector and the vault (anon_internal.h). */
#include "anonymizer/anon_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"

bool hub_anon__key(const struct hub_anon *anon, const char *p, size_t n,
		   struct hub_anon_key *k)
{
	bool latin = n && ((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z');

	return hub_anon__key_mode(anon, p, n, latin ? HUB_ANON_KEY_COLLAPSE : HUB_ANON_KEY_FOLD,
				  k);
}

char hub_anon__key_first(uint32_t cp)
{
	const char *s = hub_anon__cp_key(cp);

	return s ? s[0] : 0;
}

/* hub_anon__key_mode with anon's tables; inline in it and in hub_anon__key_tables. */
__attribute__((always_inline)) static inline bool
key_mode(const uint32_t *cps, const uint32_t *cyr, const char *p, size_t n,
	 enum hub_anon_key_mode mode, struct hub_anon_key *k)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, len = 0;

	hub_anon__key_start(k, mode, n && ((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z'));
	/* the length in a register: most letters have a plain key of one byte
	 * (HUB_ANON_CP_PLAIN), the others go through key_add_info */
	while (i < n) {
		uint32_t cp, info, all = 0; /* all: not needed here */
		size_t l;

		/* runs of plain letters, then a character at a time: ASCII and Cyrillic letters
		 * from the tables, the rest decoded */
		i = hub_anon__key_run(cps, u[i] < 0x80 ? NULL : cyr, u, i, n, k, &len, &all,
				      mode == HUB_ANON_KEY_COLLAPSE);
		if (i >= n)
			break;
		if (u[i] < 0x80) {
			info = cps[u[i]];
			l = 1;
		} else if (i + 1 < n && (info = cyr[hub_anon__cyr_at(u + i)])) {
			l = 2;
		} else {
			l = hub_anon__decode(u + i, n - i, &cp);
			if (!l) {
				k->len = len;
				return false;
			}
			info = cp < HUB_ANON_CP_TABLE ? cps[cp] : hub_anon__cp_info(cp);
		}
		if (info & HUB_ANON_CP_PLAIN) {
			char c = (char)info;

			if (mode == HUB_ANON_KEY_COLLAPSE && len && k->s[len - 1] == c) {
				k->unfolded = true;
			} else {
				if (len == HUB_ANON_KEY_MAX) {
					k->bad = true;
					break;
				}
				k->s[len++] = c;
			}
		} else {
			k->len = len;
			hub_anon__key_add_info(k, info);
			len = k->len;
			if (k->bad)
				break;
		}
		i += l;
	}
	k->len = len;
	return hub_anon__key_end(k);
}

bool hub_anon__key_mode(const struct hub_anon *anon, const char *p, size_t n,
			enum hub_anon_key_mode mode, struct hub_anon_key *k)
{
	return key_mode(hub_anon__cp_table(anon), hub_anon__cyr_table(anon), p, n, mode, k);
}

bool hub_anon__key_tables(const uint32_t *cps, const uint32_t *cyr, const char *p, size_t n,
			  enum hub_anon_key_mode mode, struct hub_anon_key *k)
{
	return key_mode(cps, cyr, p, n, mode, k);
}

struct ending {
	uint32_t want, mask; /* the two key bytes before the last, as key_stems packs them */
	unsigned char len;
};

/* The key bytes before the last of an ending of n bytes (x a string literal), packed as
 * key_stems packs a key's, and the mask of those it has. */
#define E_B(x, i) ((uint32_t)(unsigned char)(x)[i])
#define E(x) { sizeof(x) - 1 == 3 ? E_B(x, 0) << 16 | E_B(x, 1) << 8 :		\
	       sizeof(x) - 1 == 2 ? E_B(x, 0) << 8 : 0,				\
	       sizeof(x) - 1 == 3 ? 0xffff00u : sizeof(x) - 1 == 2 ? 0xff00u : 0,	\
	       sizeof(x) - 1 }

/* Russian case endings and Kazakh case and possessive endings, as keys, by their last
 * letter (in the order the stems are tried). */
static const struct ending end_a[] = { E("ga"), E("ka"), E("na"), E("da"), E("ta"), E("ia"),
				       E("a") },
	end_e[] = { E("ge"), E("ke"), E("ne"), E("de"), E("te"), E("e") },
	end_h[] = { E("ah") },
	end_i[] = { E("ami"), E("di"), E("ti"), E("ni"), E("si"), E("oi"), E("ei"), E("yi"),
		    E("i") },
	end_m[] = { E("om"), E("em"), E("am"), E("ym"), E("im") },
	end_n[] = { E("nin"), E("din"), E("tin"), E("dan"), E("den"), E("tan"), E("ten"),
		    E("nan"), E("nen"), E("men"), E("ben"), E("pen"), E("dyn"), E("tyn"),
		    E("nyn"), E("in"), E("yn") },
	end_u[] = { E("oiu"), E("eiu"), E("iu"), E("u") },
	end_y[] = { E("dy"), E("ty"), E("ny"), E("sy"), E("y") };

/* The endings of one last letter; by_y[y - 'a']: bit i for each ending e[i] that a key
 * whose byte before the last is y may have (the one-byte ending, and those of two bytes
 * or more with y there), checked against e by hub_anon__key_stems_ok. */
struct endings {
	const struct ending *e;
	size_t n;
	uint32_t by_y[26];
};

#define ENDINGS(t, ...) { t, HUB_ARRAY_SIZE(t), { __VA_ARGS__ } }
static const struct endings endings_a = ENDINGS(end_a,
	0x40, 0x40, 0x40, 0x48, 0x40, 0x40, 0x41, 0x40, 0x60, 0x40, 0x42, 0x40, 0x40, 0x44,
	0x40, 0x40, 0x40, 0x40, 0x40, 0x50, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40),
	endings_e = ENDINGS(end_e,
	0x20, 0x20, 0x20, 0x28, 0x20, 0x20, 0x21, 0x20, 0x20, 0x20, 0x22, 0x20, 0x20, 0x24,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x30, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20),
	endings_h = ENDINGS(end_h, 0x1),
	endings_i = ENDINGS(end_i,
	0x100, 0x100, 0x100, 0x102, 0x140, 0x100, 0x100, 0x100, 0x100, 0x100, 0x100, 0x100,
	0x101, 0x108, 0x120, 0x100, 0x100, 0x100, 0x110, 0x104, 0x100, 0x100, 0x100, 0x100,
	0x180, 0x100),
	endings_m = ENDINGS(end_m, 0x4, 0, 0, 0, 0x2, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x1, 0, 0,
			    0, 0, 0, 0, 0, 0, 0, 0x8, 0),
	endings_n = ENDINGS(end_n, 0xa8, 0, 0, 0, 0xf50, 0, 0, 0, 0x8007, 0, 0, 0, 0, 0, 0, 0,
			    0, 0, 0, 0, 0, 0, 0, 0, 0x17000, 0),
	endings_u = ENDINGS(end_u, 0x8, 0x8, 0x8, 0x8, 0x8, 0x8, 0x8, 0x8, 0xf, 0x8, 0x8, 0x8,
			    0x8, 0x8, 0x8, 0x8, 0x8, 0x8, 0x8, 0x8, 0x8, 0x8, 0x8, 0x8, 0x8, 0x8),
	endings_y = ENDINGS(end_y,
	0x10, 0x10, 0x10, 0x11, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x14,
	0x10, 0x10, 0x10, 0x10, 0x18, 0x12, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);

/* The endings of each last key byte 'a'..'z'. */
static const struct endings *const by_last[26] = {
	['a' - 'a'] = &endings_a, ['e' - 'a'] = &endings_e, ['h' - 'a'] = &endings_h,
	['i' - 'a'] = &endings_i, ['m' - 'a'] = &endings_m, ['n' - 'a'] = &endings_n,
	['u' - 'a'] = &endings_u, ['y' - 'a'] = &endings_y,
};

bool hub_anon__key_stems_ok(void)
{
	static const struct endings *const all[] = {
		&endings_a, &endings_e, &endings_h, &endings_i, &endings_m, &endings_n,
		&endings_u, &endings_y,
	};

	for (size_t t = 0; t < HUB_ARRAY_SIZE(all); t++) {
		bool one = false;

		if (all[t]->n > 32)
			return false;
		for (size_t i = 0; i < all[t]->n; i++) {
			if (all[t]->e[i].len == 1)
				one = true;
			else if (one)
				return false; /* a one-byte ending is not last */
		}
		for (unsigned y = 0; y < 26; y++) {
			uint32_t want = 0;

			for (size_t i = 0; i < all[t]->n; i++) {
				const struct ending *e = &all[t]->e[i];

				if (e->len == 1 || (e->want >> 8 & 0xff) == 'a' + y)
					want |= 1u << i;
			}
			if (all[t]->by_y[y] != want)
				return false;
		}
	}
	return true;
}

size_t hub_anon__key_stems(const struct hub_anon_key *k, size_t lens[], size_t max)
{
	const struct endings *t;
	const struct ending *e;
	size_t n = 0, len = k->len;
	unsigned char y;
	uint32_t sig, m;

	if (!max)
		return 0;
	lens[n++] = len;
	if (len < HUB_ANON_STEM_MIN + 1)
		return n;
	y = (unsigned char)k->s[len - 1]; /* the last byte first */
	if (y < 'a' || y > 'z' || !(t = by_last[y - 'a']))
		return n;
	e = t->e;
	y = (unsigned char)k->s[len - 2];
	if (y < 'a' || y > 'z') {
		/* no ending of two bytes or more: the one-byte one, if any (last) */
		if (e[t->n - 1].len == 1 && n < max)
			lens[n++] = len - 1; /* len >= 4 */
		return n;
	}
	/* the endings whose last two bytes match, in order; a third compared with it (len
	 * >= 4 > 3) */
	sig = (uint32_t)(unsigned char)k->s[len - 3] << 16 | (uint32_t)y << 8;
	for (m = t->by_y[y - 'a']; m && n < max; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctz(m);

		if ((sig & e[i].mask) != e[i].want || len < (size_t)e[i].len + HUB_ANON_STEM_MIN)
			continue;
		lens[n++] = len - e[i].len;
	}
	return n;
}

void hub_anon__htab_release(struct hub_anon_htab *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

void hub_anon__htab_or(struct hub_anon_htab *t, uint64_t key, uint32_t flags)
{
	size_t i;

	key |= 1;
	if ((t->n + 1) * 2 > t->cap) {
		struct hub_anon_htab old = *t;

		t->cap = old.cap ? old.cap * 2 : 64;
		t->slots = hub_xcalloc(t->cap, sizeof(*t->slots));
		for (size_t j = 0; j < old.cap; j++) {
			if (old.slots[j].key) {
				i = hub_anon__htab_slot(t, old.slots[j].key);
				t->slots[i] = old.slots[j];
			}
		}
		free(old.slots);
	}
	i = hub_anon__htab_slot(t, key);
	if (!t->slots[i].key) {
		t->slots[i].key = key;
		t->n++;
	}
	t->slots[i].val |= flags;
}

static bool is_alnum(int c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_' ||
	       c >= 0x80;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* The marker type whose name is at p (any case), or -1; *len its length. */
static int type_at(const char *p, size_t n, size_t *len)
{
	const struct hub_anon__type_name *names = hub_anon__types;
	int c = lower((unsigned char)*p);

	/* the names are capital letters: lower case by their 0x20 bit */
	for (int t = 0; t < HUB_ANON_NTYPES; t++) {
		size_t j = 0;

		if ((names[t].s[0] | 0x20) != c || n <= names[t].len)
			continue;
		while (j < names[t].len && lower((unsigned char)p[j]) == (names[t].s[j] | 0x20))
			j++;
		if (j == names[t].len) {
			*len = j;
			return t;
		}
	}
	return -1;
}

size_t hub_anon__marker_parse(const char *p, size_t n, int before, enum hub_anon_type *type,
			      unsigned *index)
{
	size_t i = 0, tl = 0;
	bool open = false;
	unsigned v = 0;
	int t, sep;

	if (n && p[0] == '[') {
		open = true;
		i = 1;
	} else if (before >= 0 && is_alnum(before)) {
		return 0;
	}
	if (i >= n)
		return 0;
	t = type_at(p + i, n - i, &tl);
	if (t < 0)
		return 0;
	i += tl;
	sep = (unsigned char)p[i];
	if (sep != '_' && !(open && (sep == ' ' || sep == '-')))
		return 0;
	i++;
	if (i >= n || p[i] < '1' || p[i] > '9')
		return 0;
	for (int d = 0; i < n && p[i] >= '0' && p[i] <= '9'; i++, d++) {
		if (d == 6)
			return 0;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (i < n && p[i] == ']')
		i++;
	else if (before >= 0 && i < n && is_alnum((unsigned char)p[i]))
		return 0;
	*type = (enum hub_anon_type)t;
	*index = v;
	return i;
}

/* The next byte at or after p before end that is a or b (a and b may be equal). */
static const char *find_either(const char *p, const char *end, char a, char b)
{
	const char *x = p < end ? memchr(p, a, (size_t)(end - p)) : NULL;
	const char *y = a != b && p < end ? memchr(p, b, (size_t)(x ? x - p : end - p)) : NULL;

	return y ? y : x;
}

size_t hub_anon__marker_find(const char *p, size_t n, size_t from, bool loose, size_t *len,
			     enum hub_anon_type *type, unsigned *index)
{
	for (size_t i = from; i < n; i++) {
		size_t start, l;
		const char *next;

		/* a marker starts with '[' or has a '_' after its name: look only there */
		next = find_either(p + i, p + n, '[', '_');
		if (!next)
			break;
		i = (size_t)(next - p);
		if (p[i] == '[') {
			start = i;
		} else if (p[i] == '_') {
			size_t tl = 0;

			start = SIZE_MAX;
			for (size_t back = 3; back <= 6 && back <= i; back++) {
				if (type_at(p + i - back, n - (i - back), &tl) >= 0 && tl == back) {
					start = i - back;
					break;
				}
			}
			if (start == SIZE_MAX || (start > from && p[start - 1] == '[' && !loose))
				continue; /* "[NAME_1" was tried at its '[' */
		} else {
			continue;
		}
		l = hub_anon__marker_parse(p + start, n - start,
					   loose ? -1 : start ? (unsigned char)p[start - 1] : 0,
					   type, index);
		if (l) {
			*len = l;
			return start;
		}
	}
	return SIZE_MAX;
}

void hub_anon__scratch_init(struct hub_anon__scratch *sc)
{
	sc->spans = sc->spans_first;
	sc->cap_spans = HUB_ARRAY_SIZE(sc->spans_first);
	sc->nnames = 0;
}

void hub_anon__scratch_release(struct hub_anon__scratch *sc)
{
	if (!sc)
		return;
	if (sc->spans != sc->spans_first)
		free(sc->spans);
	hub_anon__scratch_init(sc);
}

size_t hub_anon__find_ci(struct hub_str hay, size_t from, struct hub_str needle)
{
	const char *end, *at;
	char lo, up;

	if (!needle.len || hay.len < needle.len || from > hay.len - needle.len)
		return SIZE_MAX;
	lo = (char)lower((unsigned char)needle.p[0]);
	up = lo >= 'a' && lo <= 'z' ? (char)(lo - 32) : lo;
	end = hay.p + hay.len - needle.len + 1; /* where a match may start */
	for (at = find_either(hay.p + from, end, lo, up); at;
	     at = find_either(at + 1, end, lo, up)) {
		size_t j = 1;

		while (j < needle.len && lower((unsigned char)at[j]) ==
					 lower((unsigned char)needle.p[j]))
			j++;
		if (j == needle.len)
			return (size_t)(at - hay.p);
	}
	return SIZE_MAX;
}
