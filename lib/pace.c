/* lib/pace.c - see pace.h. A chained hash table of (key, tat), FNV-1a, doubled at 3/4. */
#include "lib/pace.h"

#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"

struct entry {
	struct entry *next;
	uint64_t hash;
	uint64_t tat; /* theoretical arrival time: the earliest a send fits the rate alone */
	size_t len;
	char key[];
};

struct hub_pace {
	struct entry **slots;
	size_t cap, n; /* cap: a power of two */
};

static uint64_t fnv1a(struct hub_str s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < s.len; i++) {
		h ^= (unsigned char)s.p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

struct hub_pace *hub_pace_new(void)
{
	struct hub_pace *p = hub_xcalloc(1, sizeof(*p));

	p->cap = 64;
	p->slots = hub_xcalloc(p->cap, sizeof(*p->slots));
	return p;
}

void hub_pace_free(struct hub_pace *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->cap; i++) {
		struct entry *e = p->slots[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(p->slots);
	free(p);
}

static void grow(struct hub_pace *p)
{
	size_t cap = p->cap * 2;
	struct entry **slots = hub_xcalloc(cap, sizeof(*slots));

	for (size_t i = 0; i < p->cap; i++) {
		struct entry *e = p->slots[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = slots[e->hash & (cap - 1)];
			slots[e->hash & (cap - 1)] = e;
		}
	}
	free(p->slots);
	p->slots = slots;
	p->cap = cap;
}

static struct entry *lookup(struct hub_pace *p, struct hub_str key, uint64_t now)
{
	uint64_t h = fnv1a(key);
	struct entry *e;

	for (e = p->slots[h & (p->cap - 1)]; e; e = e->next)
		if (e->hash == h && e->len == key.len && memcmp(e->key, key.p, key.len) == 0)
			return e;
	if (p->n + 1 > p->cap / 4 * 3)
		grow(p);
	e = hub_xmalloc(sizeof(*e) + key.len);
	e->hash = h;
	e->tat = now;
	e->len = key.len;
	memcpy(e->key, key.p, key.len);
	e->next = p->slots[h & (p->cap - 1)];
	p->slots[h & (p->cap - 1)] = e;
	p->n++;
	return e;
}

/* The wait of a send of key at now; reserves it when reserve. */
static uint64_t pace(struct hub_pace *p, struct hub_str key, uint64_t now, uint64_t interval,
		     unsigned burst, bool reserve)
{
	uint64_t tolerance, start;
	struct entry *e;

	if (!interval)
		return 0;
	e = lookup(p, key, now);
	if (e->tat < now)
		e->tat = now;
	/* a burst of b sends may start b - 1 intervals ahead of the rate */
	tolerance = interval * (burst > 1 ? burst - 1 : 0);
	start = e->tat > now + tolerance ? e->tat - tolerance : now;
	if (reserve)
		e->tat += interval;
	return start - now;
}

uint64_t hub_pace_reserve(struct hub_pace *p, struct hub_str key, uint64_t now,
			  uint64_t interval, unsigned burst)
{
	return pace(p, key, now, interval, burst, true);
}

uint64_t hub_pace_wait(struct hub_pace *p, struct hub_str key, uint64_t now, uint64_t interval,
		       unsigned burst)
{
	return pace(p, key, now, interval, burst, false);
}

uint64_t hub_pace_admit(struct hub_pace *p, struct hub_str key, uint64_t now,
			uint64_t interval, unsigned burst)
{
	uint64_t tolerance;
	struct entry *e;

	if (!interval)
		return 0;
	e = lookup(p, key, now);
	if (e->tat < now)
		e->tat = now;
	tolerance = interval * (burst > 1 ? burst - 1 : 0);
	if (e->tat > now + tolerance)
		return e->tat - tolerance - now;
	e->tat += interval;
	return 0;
}

void hub_pace_expire(struct hub_pace *p, uint64_t now)
{
	for (size_t i = 0; i < p->cap; i++) {
		struct entry **link = &p->slots[i];

		while (*link) {
			struct entry *e = *link;

			if (e->tat <= now) {
				*link = e->next;
				free(e);
				p->n--;
			} else {
				link = &e->next;
			}
		}
	}
}

size_t hub_pace_size(const struct hub_pace *p)
{
	return p->n;
}
