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

/* The Russian case endings and the Kazakh case and possessive endings that a name's stem is
 * found without, as keys (in the order hub_anon__key_stems tries them: longest first):
 *   -a: ga ka na da ta ia a;  -e: ge ke ne de te e;  -h: ah;  -i: ami di ti ni si oi ei yi i;
 *   -m: om em am ym im;  -u: oiu eiu iu u;  -y: dy ty ny sy y;
 *   -n: nin din tin dan den tan ten nan nen men ben pen dyn tyn nyn in yn.
 * By the last byte: its row of hub_anon__stem_pairs, and HUB_ANON_STEM_1 when it is an
 * ending of one byte. */
enum { R_A = 1, R_E, R_H, R_I, R_M, R_N, R_U, R_Y }; /* 0: no ending ends so */
const unsigned char hub_anon__stem_last[128] = {
	['a'] = R_A | HUB_ANON_STEM_1, ['e'] = R_E | HUB_ANON_STEM_1, ['h'] = R_H,
	['i'] = R_I | HUB_ANON_STEM_1, ['m'] = R_M, ['n'] = R_N, ['u'] = R_U | HUB_ANON_STEM_1,
	['y'] = R_Y | HUB_ANON_STEM_1,
};

/* By a row and the byte before the last: HUB_ANON_STEM_2 when the two bytes are an ending,
 * HUB_ANON_STEM_3 of each third byte before them that makes an ending of three. */
#define S2 HUB_ANON_STEM_2
#define S3(c) HUB_ANON_STEM_3(c)
const uint32_t hub_anon__stem_pairs[9][128] = {
	[R_A] = { ['g'] = S2, ['k'] = S2, ['n'] = S2, ['d'] = S2, ['t'] = S2, ['i'] = S2 },
	[R_E] = { ['g'] = S2, ['k'] = S2, ['n'] = S2, ['d'] = S2, ['t'] = S2 },
	[R_H] = { ['a'] = S2 },
	[R_I] = { ['m'] = S3('a'), ['d'] = S2, ['t'] = S2, ['n'] = S2, ['s'] = S2, ['o'] = S2,
		  ['e'] = S2, ['y'] = S2 },
	[R_M] = { ['o'] = S2, ['e'] = S2, ['a'] = S2, ['y'] = S2, ['i'] = S2 },
	[R_N] = {
		['i'] = S3('n') | S3('d') | S3('t') | S2,
		['a'] = S3('d') | S3('t') | S3('n'),
		['e'] = S3('d') | S3('t') | S3('n') | S3('m') | S3('b') | S3('p'),
		['y'] = S3('d') | S3('t') | S3('n') | S2,
	},
	[R_U] = { ['i'] = S3('o') | S3('e') | S2 },
	[R_Y] = { ['d'] = S2, ['t'] = S2, ['n'] = S2, ['s'] = S2 },
};
#undef S2
#undef S3

void hub_anon__htab_release(struct hub_anon_htab *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

void hub_anon__htab_or(struct hub_anon_htab *t, uint64_t key, uint32_t flags)
{
	size_t i;

	key |= 1;
	if (!t->slots || (t->n + 1) * 2 > t->mask + 1) {
		struct hub_anon_htab old = *t;
		size_t cap = old.slots ? 2 * (old.mask + 1) : 64;

		t->mask = cap - 1;
		t->slots = hub_xcalloc(cap, sizeof(*t->slots));
		for (size_t j = 0; old.slots && j <= old.mask; j++) {
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

/* Eight bytes with their ASCII capitals in lower case. */
static inline uint64_t lower8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t h = x & ~high; /* each byte's low 7 bits: no carry from one byte to the next */

	/* 0x20 in each byte in 'A'..'Z': high bit clear, low bits from 'A' up and not past 'Z' */
	return x | (~x & high & ((h + ones * (0x80 - 'A')) ^ (h + ones * (0x7f - 'Z')))) >> 2;
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
	size_t q = 0;
	char lo, up;

	if (!needle.len || hay.len < needle.len || from > hay.len - needle.len)
		return SIZE_MAX;
	/* looked for by its first byte that is no ASCII letter (byte q), the same in any case:
	 * one search instead of two, and for a byte rarer than a letter ('.', '@', a digit) */
	while (q < needle.len && ((needle.p[q] | 0x20) >= 'a' && (needle.p[q] | 0x20) <= 'z'))
		q++;
	if (q == needle.len)
		q = 0;
	lo = (char)lower((unsigned char)needle.p[q]);
	up = lo >= 'a' && lo <= 'z' ? (char)(lo - 32) : lo;
	end = hay.p + hay.len - needle.len + 1 + q; /* where byte q of a match may be */
	for (at = find_either(hay.p + from + q, end, lo, up); at;
	     at = find_either(at + 1, end, lo, up)) {
		size_t j = 0;
		uint64_t x, y;

		at -= q; /* where the match would start */

		/* eight bytes at a time while they match (most that start alike match whole: the
		 * value again), then byte by byte */
		for (; j + 8 <= needle.len; j += 8) {
			memcpy(&x, at + j, 8);
			memcpy(&y, needle.p + j, 8);
			if (lower8(x) != lower8(y))
				break;
		}
		while (j < needle.len && lower((unsigned char)at[j]) ==
					 lower((unsigned char)needle.p[j]))
			j++;
		if (j == needle.len)
			return (size_t)(at - hay.p);
		at += q;
	}
	return SIZE_MAX;
}
