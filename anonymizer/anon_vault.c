/* anonymizer/anon_vault.c - see anon_vault.h. Values are few per request, so they are a
 * plain array searched by hash; names and phones also go into hash sets the detector asks. */
#include "anonymizer/anon_vault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "anonymizer/anon_internal.h"
#include "lib/utf8.h"

/* Looks at one text at most (the first and the second find nearly everything). */
#define HUB_ANON_LOOKS 4

struct entry {
	enum hub_anon_type type;
	unsigned index;        /* the marker's number; 0 for a known value not seen yet */
	bool literal;          /* found as written: an e-mail or a username */
	uint64_t hash;         /* of type and norm */
	struct hub_str norm;   /* the value everyone spells the same way */
	struct hub_str value;  /* its first spelling: what restore writes */
	struct hub_str marker; /* "[PHONE_1]" once index is set */
};

struct hub_anon_vault {
	const struct hub_anon *anon;
	struct hub_pool pool;
	struct entry *e;
	size_t n, cap;
	unsigned count[HUB_ANON_NTYPES];
	struct hub_anon_htab names;  /* name norms (hub_anon__name_norm) */
	uint64_t name_first;         /* bit c & 63 for each first byte c of a name key */
	struct hub_anon_htab phones; /* national numbers (10 digits) and local ones (7) */
	struct hub_buf scratch;      /* intern's norm, kept for its allocation */
	struct hub_anon_key key;     /* normalize's key of the last name */
	struct hub_anon__scratch scratch_detect; /* the detector's spans and words, reused */
};

int hub_anon_vault_new(const struct hub_anon *anon, struct hub_anon_vault **out)
{
	struct hub_anon_vault *v = hub_xcalloc(1, sizeof(*v));

	v->anon = anon;
	hub_pool_init(&v->pool);
	hub_buf_init(&v->scratch);
	*out = v;
	return 0;
}

void hub_anon_vault_free(struct hub_anon_vault *vault)
{
	if (!vault)
		return;
	hub_pool_release(&vault->pool);
	hub_anon__htab_release(&vault->names);
	hub_anon__htab_release(&vault->phones);
	hub_buf_release(&vault->scratch);
	hub_anon__scratch_release(&vault->scratch_detect);
	free(vault->e);
	free(vault);
}

size_t hub_anon_vault_size(const struct hub_anon_vault *vault)
{
	size_t n = 0;

	for (size_t i = 0; i < vault->n; i++)
		n += vault->e[i].index > 0;
	return n;
}

bool hub_anon__vault_name_may(const struct hub_anon_vault *v, char c)
{
	return v && (v->name_first >> (c & 63) & 1);
}

uint32_t hub_anon__vault_name(const struct hub_anon_vault *v, uint64_t norm_hash)
{
	return v ? hub_anon__htab_get(&v->names, norm_hash) : 0;
}

bool hub_anon__vault_has_phone(const struct hub_anon_vault *v, const char *digits, size_t n)
{
	/* most vaults hold no phone: no hash then */
	return v && v->phones.n && hub_anon__htab_get(&v->phones, hub_anon__hash(digits, n));
}

void hub_anon__vault_each_literal(const struct hub_anon_vault *v, hub_anon__value_cb *cb,
				  void *data)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++)
		if (v->e[i].literal)
			cb(v->e[i].norm, v->e[i].type, data);
}

static bool is_letter_cp(uint32_t cp)
{
	return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') || (cp >= 0x400 && cp <= 0x4ff);
}

/* The norm of a value of type: what two spellings of one value share. Written to b; for a
 * name (not literal), its collapsed key is left in *k. */
static void normalize(const struct hub_anon_vault *v, enum hub_anon_type type,
		      struct hub_str value, struct hub_buf *b, bool *literal,
		      struct hub_anon_key *k)
{
	*literal = false;
	switch (type) {
	case HUB_ANON_PHONE: {
		char d[64];
		size_t n = 0, o = 0;

		for (size_t i = 0; i < value.len && n < sizeof(d); i++)
			if (value.p[i] >= '0' && value.p[i] <= '9')
				d[n++] = value.p[i];
		if (n == 7) {
			hub_buf_adds(b, "local:");
			hub_buf_add(b, d, n);
			return;
		}
		if (value.len && value.p[0] == '+')
			o = 0;
		else if (n == 11 && (d[0] == '8' || d[0] == '7'))
			o = 1, hub_buf_adds(b, "7");
		else if (n == 10)
			hub_buf_adds(b, "7");
		else if (n > 3 && d[0] == '0' && d[1] == '0')
			o = 2;
		else if (n > 3 && d[0] == '8' && d[1] == '1' && d[2] == '0')
			o = 3;
		hub_buf_add(b, d + o, n - o);
		return;
	}
	case HUB_ANON_NAME:
		if (hub_anon__key_mode(v->anon, value.p, value.len, HUB_ANON_KEY_COLLAPSE, k)) {
			hub_buf_add(b, k->s, hub_anon__name_norm(v->anon, v, k));
			return;
		}
		*literal = true;
		/* fall through */
	case HUB_ANON_EMAIL:
		*literal = true;
		hub_buf_grow(b, value.len);
		for (size_t i = 0; i < value.len; i++) {
			char c = value.p[i];

			b->p[b->len++] = c >= 'A' && c <= 'Z' ? c + 32 : c;
		}
		b->p[b->len] = 0;
		return;
	case HUB_ANON_IIN: case HUB_ANON_BIN: case HUB_ANON_ID: case HUB_ANON_CARD:
	case HUB_ANON_IBAN:
		hub_buf_grow(b, value.len);
		for (size_t i = 0; i < value.len; i++) {
			char c = value.p[i];

			if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))
				b->p[b->len++] = c;
			else if (c >= 'a' && c <= 'z')
				b->p[b->len++] = c - 32;
		}
		b->p[b->len] = 0;
		return;
	default:
		hub_buf_addstr(b, value);
	}
}

static struct entry *find(const struct hub_anon_vault *v, enum hub_anon_type type,
			  struct hub_str norm, uint64_t h)
{
	for (size_t i = 0; i < v->n; i++) {
		struct entry *e = &v->e[i];

		if (e->hash == h && e->type == type && hub_str_eq(e->norm, norm))
			return e;
	}
	return NULL;
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

	if (hub_str_startswith(norm, "local:")) {
		d += 6;
		n -= 6;
	}
	if (n >= 10)
		hub_anon__htab_or(&v->phones, hub_anon__hash(d + n - 10, 10), 1);
	if (n >= 7)
		hub_anon__htab_or(&v->phones, hub_anon__hash(d + n - 7, 7), 1);
}

/* A name is looked for by its key both with repeats collapsed (how Latin words are
 * keyed) and as spelled (Cyrillic words): the norm, and the same stem of the other key.
 * c is its collapsed key (normalize's). */
static void index_name(struct hub_anon_vault *v, struct hub_str value,
		       const struct hub_anon_key *c, size_t norm_len, uint32_t how)
{
	struct hub_anon_key own;
	const struct hub_anon_key *nc = c;

	if (c->kazakh)
		how |= HUB_ANON_KAZAKH;
	/* the collapsed key (the entry's norm) whatever the folded one gives: a word too
	 * long to fold ("Aqqq...qsy") is still an entry, and a name the text finds */
	hub_anon__htab_or(&v->names, c->h[norm_len], how);
	v->name_first |= 1ull << (c->s[0] & 63);
	/* the folded key is the collapsed one unless that collapsed something */
	if (c->unfolded) {
		if (!hub_anon__key_mode(v->anon, value.p, value.len, HUB_ANON_KEY_FOLD, &own))
			return;
		nc = &own;
	}
	v->name_first |= 1ull << (nc->s[0] & 63);
	if (nc->len >= c->len - norm_len)
		hub_anon__htab_or(&v->names, nc->h[nc->len - (c->len - norm_len)], how);
}

/* The entry of value, or NULL; its norm is left in b (and a name's key in *k). */
static struct entry *lookup(const struct hub_anon_vault *v, enum hub_anon_type type,
			    struct hub_str value, struct hub_buf *b, bool *literal, uint64_t *h,
			    struct hub_anon_key *k)
{
	struct hub_str norm;
	struct entry *e;

	normalize(v, type, value, b, literal, k);
	norm = hub_buf_str(b);
	*h = hub_anon__hash(norm.p, norm.len) ^ (uint64_t)type;
	e = find(v, type, norm, *h);
	if (!e && type == HUB_ANON_PHONE && hub_str_startswith(norm, "local:"))
		e = find_local(v, norm);
	return e;
}

/* The entry of value, added if new; known: the caller gave it. */
static struct entry *intern(struct hub_anon_vault *v, enum hub_anon_type type,
			    struct hub_str value, bool known)
{
	uint32_t how = known ? HUB_ANON_KNOWN : HUB_ANON_LEARNED;
	struct hub_buf *b = &v->scratch;
	struct hub_str norm;
	struct entry *e;
	bool literal;
	uint64_t h;
	char *copy;

	hub_buf_reset(b);
	e = lookup(v, type, value, b, &literal, &h, &v->key);
	if (e) {
		if (known && type == HUB_ANON_NAME && !literal)
			index_name(v, value, &v->key, e->norm.len, how);
		return e;
	}
	norm = hub_buf_str(b);
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 16;
		v->e = hub_xrealloc(v->e, v->cap * sizeof(*v->e));
	}
	e = &v->e[v->n++];
	*e = (struct entry){ .type = type, .literal = literal, .hash = h };
	/* the norm and the value, each NUL-terminated, in one allocation (zeroed) */
	copy = hub_pool_alloc(&v->pool, norm.len + value.len + 2);
	if (norm.len)
		memcpy(copy, norm.p, norm.len);
	if (value.len)
		memcpy(copy + norm.len + 1, value.p, value.len);
	e->norm = (struct hub_str){ copy, norm.len };
	e->value = (struct hub_str){ copy + norm.len + 1, value.len };
	if (type == HUB_ANON_NAME && !literal)
		index_name(v, value, &v->key, norm.len, how);
	if (type == HUB_ANON_PHONE)
		index_phone(v, e->norm);
	return e;
}

/* Longer than any marker: "[", a type, "_", an unsigned in decimal, "]". */
#define MARKER_ROOM 32

static void give_marker(struct hub_anon_vault *v, struct entry *e)
{
	const char *name;
	char m[MARKER_ROOM], d[12];
	size_t n = 0, nd = 0;
	unsigned idx;

	if (e->index)
		return;
	idx = e->index = ++v->count[e->type];
	m[n++] = '[';
	for (name = hub_anon_type_name(e->type); *name; name++)
		m[n++] = *name;
	m[n++] = '_';
	do
		d[nd++] = (char)('0' + idx % 10);
	while (idx /= 10);
	while (nd)
		m[n++] = d[--nd];
	m[n++] = ']';
	e->marker = hub_pool_strcopy(&v->pool, (struct hub_str){ m, n });
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
		(void)intern(vault, type, value, true);
		return 0;
	case HUB_ANON_EMAIL:
		if (!memchr(value.p, '@', value.len) || value.len < 3)
			return -EINVAL;
		(void)intern(vault, type, value, true);
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
			(void)intern(vault, type, value, true);
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
			(void)intern(vault, type, (struct hub_str){ value.p + s, i - s }, true);
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

/* A word of the vault's names among the words of letters of text outside every span, as the
 * detector left them (first: bit c & 63 of the first key byte of each name to look for). */
static bool name_left(const struct hub_anon_vault *v, struct hub_str text,
		      const struct hub_anon__left *left, uint64_t first)
{
	for (size_t i = 0; i < left->nwords; i++) {
		const struct hub_anon__left_word *w = &left->words[i];

		/* the detector keys the word and looks it up so */
		if ((!w->first || (first >> (w->first & 63) & 1)) &&
		    hub_anon__word_in_vault(v->anon, v, text.p + w->start, w->end - w->start))
			return true;
	}
	return false;
}

/* Whether the values the vault learned from text (entries from was on) may be written
 * again, another way, outside what was found (spans, and left outside them): any digit
 * for a phone (a number of the vault may also take digits beside what was found), the
 * value itself for an e-mail or username, a word the detector would find as a name of the
 * vault (in any case: a learned name is one in lower case too). Most texts need no second
 * look. */
static bool look_again(const struct hub_anon_vault *v, struct hub_str text,
		       const struct hub_anon_spans *spans, const struct hub_anon__left *left,
		       size_t was)
{
	uint64_t first = 0;
	bool phone = false;

	for (size_t i = was; i < v->n; i++) {
		const struct entry *e = &v->e[i];

		if (e->type == HUB_ANON_PHONE) {
			phone = true;
		} else if (e->literal) {
			size_t si = 0;

			for (size_t at = 0; (at = hub_anon__find_ci(text, at, e->norm)) != SIZE_MAX;
			     at++)
				if (!inside(spans, at, &si))
					return true;
		} else if (e->type == HUB_ANON_NAME && e->norm.len) {
			char c = e->norm.p[0];

			/* the key may start otherwise than its first letter: Yerlan "erlan",
			 * Khan "han", Джамал "zhamal" */
			first |= 1ull << (c & 63);
			if (c == 'e')
				first |= 1ull << ('i' & 63);
			if (c == 'h')
				first |= 1ull << ('k' & 63);
			if (c == 'z')
				first |= 1ull << ('d' & 63);
		}
	}
	if (phone && left->digits)
		return true;
	if (!first)
		return false;
	return left->unsure || name_left(v, text, left, first);
}

int hub_anon_vault_pseudonymize(struct hub_anon_vault *vault, struct hub_pool *pool,
				struct hub_str text, struct hub_buf *out,
				struct hub_anon_entity **ents, size_t *n)
{
	struct hub_anon_spans spans;
	struct hub_anon__left left;
	struct hub_anon_entity *list = NULL;
	size_t at = 0, was, *got = NULL; /* got[i]: the entry of span i, + 1; 0 to intern */
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
	/* A value first seen here may also be written another way earlier in the text
	 * ("701-123-4567 ... +7 701 123 45 67"): once the vault knows it, look again (and
	 * again, a few times at most, for what that look finds). */
	for (int look = 1; look < HUB_ANON_LOOKS; look++) {
		size_t stale = 0; /* names before span stale are taken again */

		was = vault->n;
		got = spans.n ? hub_anon__scratch_got(&vault->scratch_detect, spans.n) : NULL;
		for (size_t i = 0; i < spans.n; i++) {
			size_t before = vault->n;
			struct entry *e = intern(vault, spans.items[i].type,
						 (struct hub_str){ text.p + spans.items[i].start,
								   spans.items[i].end -
									   spans.items[i].start },
						 false);

			got[i] = (size_t)(e - vault->e) + 1;
			/* a name's norm depends on the names the vault has: a new name may
			 * change the norm of the names before it */
			if (vault->n > before && e->type == HUB_ANON_NAME)
				stale = i;
		}
		for (size_t i = 0; i < stale; i++)
			if (spans.items[i].type == HUB_ANON_NAME)
				got[i] = 0;
		if (vault->n == was || !look_again(vault, text, &spans, &left, was))
			break;
		got = NULL;
		ret = hub_anon__detect(vault->anon, vault, pool, text, &spans, &left,
				       &vault->scratch_detect);
		if (ret < 0)
			return ret;
	}
	if (ents && spans.n)
		list = hub_pool_calloc(pool, spans.n, sizeof(*list));
	/* room for it all at once: the text, and a marker (shorter than MARKER_ROOM) in
	 * place of each span */
	hub_buf_grow(out, text.len + spans.n * MARKER_ROOM);
	o = out->p + out->len;
	for (size_t i = 0; i < spans.n; i++) {
		const struct hub_anon_span *sp = &spans.items[i];
		struct entry *e = got && got[i] ? &vault->e[got[i] - 1] :
			intern(vault, sp->type,
			       (struct hub_str){ text.p + sp->start, sp->end - sp->start }, false);

		give_marker(vault, e);
		if (sp->start > at)
			memcpy(o, text.p + at, sp->start - at);
		o += sp->start - at;
		memcpy(o, e->marker.p, e->marker.len);
		o += e->marker.len;
		at = sp->end;
		if (list)
			list[i] = (struct hub_anon_entity){ sp->start, sp->end, sp->type,
							    e->marker };
	}
	if (text.len > at)
		memcpy(o, text.p + at, text.len - at);
	o += text.len - at;
	out->len = (size_t)(o - out->p);
	out->p[out->len] = '\0';
	if (ents) {
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
	struct hub_anon_key k;
	int hit = 0;

	if (hub_anon_detect(v->anon, v, &pool, text, &spans) < 0) {
		hit = 2; /* too long to check: it does not leave */
		goto out;
	}
	for (size_t i = 0; i < spans.n && hit != 1; i++) {
		const struct hub_anon_span *sp = &spans.items[i];
		bool literal;
		uint64_t h;

		if (sp->type == HUB_ANON_MARKER)
			continue;
		hub_buf_reset(&b);
		if (lookup(v, sp->type, (struct hub_str){ text.p + sp->start, sp->end - sp->start },
			   &b, &literal, &h, &k))
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
