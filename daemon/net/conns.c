/* daemon/net/conns.c - see conns.h. A chained hash table of keys with a count each; a key
 * whose count drops to 0 goes, so the table holds only hosts with open connections. */
#include "daemon/net/conns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"

struct node {
	struct node *next;
	struct hub_conns_key key;
	size_t n;
};

struct hub_conns {
	struct node **buckets;
	size_t nbuckets; /* a power of two */
	size_t nkeys;
	size_t total;
};

struct hub_conns *hub_conns_new(void)
{
	struct hub_conns *cs = hub_xcalloc(1, sizeof(*cs));

	cs->nbuckets = 64;
	cs->buckets = hub_xcalloc(cs->nbuckets, sizeof(*cs->buckets));
	return cs;
}

void hub_conns_free(struct hub_conns *cs)
{
	if (!cs)
		return;
	hub_assert(cs->total == 0);
	free(cs->buckets);
	free(cs);
}

int hub_conns_key_of(const struct sockaddr *sa, struct hub_conns_key *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		out->b[10] = out->b[11] = 0xff;
		memcpy(out->b + 12, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		/* an IPv4-mapped address is that IPv4 address, not a /64 */
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			memcpy(out->b, &in6->sin6_addr, 16);
		else
			memcpy(out->b, &in6->sin6_addr, 8);
		return 0;
	}
	return -EAFNOSUPPORT;
}

int hub_conns_key_of_fd(int fd, struct hub_conns_key *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	return hub_conns_key_of((const struct sockaddr *)&ss, out);
}

/* FNV-1a */
static size_t hash(const struct hub_conns_key *key)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < sizeof(key->b); i++) {
		h ^= key->b[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 32));
}

static struct node **find(const struct hub_conns *cs, const struct hub_conns_key *key)
{
	struct node **p = &cs->buckets[hash(key) & (cs->nbuckets - 1)];

	while (*p && memcmp((*p)->key.b, key->b, sizeof(key->b)) != 0)
		p = &(*p)->next;
	return p;
}

static void grow(struct hub_conns *cs)
{
	struct node **old = cs->buckets;
	size_t n = cs->nbuckets;

	cs->nbuckets *= 2;
	cs->buckets = hub_xcalloc(cs->nbuckets, sizeof(*cs->buckets));
	for (size_t i = 0; i < n; i++) {
		while (old[i]) {
			struct node *e = old[i];
			struct node **b = &cs->buckets[hash(&e->key) & (cs->nbuckets - 1)];

			old[i] = e->next;
			e->next = *b;
			*b = e;
		}
	}
	free(old);
}

void hub_conns_add(struct hub_conns *cs, const struct hub_conns_key *key)
{
	struct node **p = find(cs, key);

	if (!*p) {
		if (cs->nkeys >= cs->nbuckets) {
			grow(cs);
			p = find(cs, key);
		}
		*p = hub_xcalloc(1, sizeof(**p));
		(*p)->key = *key;
		cs->nkeys++;
	}
	(*p)->n++;
	cs->total++;
}

void hub_conns_remove(struct hub_conns *cs, const struct hub_conns_key *key)
{
	struct node **p = find(cs, key);
	struct node *e = *p;

	hub_assert(e && e->n > 0 && cs->total > 0);
	cs->total--;
	if (--e->n)
		return;
	*p = e->next;
	free(e);
	cs->nkeys--;
}

size_t hub_conns_total(const struct hub_conns *cs)
{
	return cs->total;
}

size_t hub_conns_of(const struct hub_conns *cs, const struct hub_conns_key *key)
{
	struct node *e = *find(cs, key);

	return e ? e->n : 0;
}

const char *hub_conns_key_str(const struct hub_conns_key *key, char *buf, size_t len)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char a[INET6_ADDRSTRLEN];

	if (memcmp(key->b, mapped, sizeof(mapped)) == 0) {
		inet_ntop(AF_INET, key->b + 12, a, sizeof(a));
		snprintf(buf, len, "%s", a);
	} else {
		inet_ntop(AF_INET6, key->b, a, sizeof(a));
		snprintf(buf, len, "%s/64", a);
	}
	return buf;
}
