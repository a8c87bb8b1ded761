/* lib/revoke.c - see revoke.h. A sorted array of (tenant, user, not_before), user "" for
 * the whole tenant, searched by bisection: a token costs two lookups. */
#include "lib/revoke.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"

struct entry {
	char *tenant;
	char *user; /* "": every user of the tenant */
	int64_t not_before;
};

struct hub_revocations {
	unsigned refs;
	bool sealed;
	struct entry *v;
	size_t n, cap;
};

struct hub_revocations *hub_revocations_new(void)
{
	struct hub_revocations *rv = hub_xcalloc(1, sizeof(*rv));

	rv->refs = 1;
	return rv;
}

void hub_revocations_add(struct hub_revocations *rv, const char *tenant, const char *user,
			 int64_t not_before)
{
	hub_assert(!rv->sealed);
	if (rv->n == rv->cap) {
		rv->cap = rv->cap ? 2 * rv->cap : 16;
		rv->v = hub_xrealloc(rv->v, rv->cap * sizeof(*rv->v));
	}
	rv->v[rv->n++] = (struct entry){ hub_xstrdup(tenant), hub_xstrdup(user ? user : ""),
					 not_before };
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int r = strcmp(x->tenant, y->tenant);

	return r ? r : strcmp(x->user, y->user);
}

void hub_revocations_seal(struct hub_revocations *rv)
{
	size_t out = 0;

	if (rv->sealed)
		return;
	rv->sealed = true;
	if (rv->n)
		qsort(rv->v, rv->n, sizeof(*rv->v), entry_cmp);
	/* one entry a key: the latest not-before */
	for (size_t i = 0; i < rv->n; i++) {
		if (out && entry_cmp(&rv->v[out - 1], &rv->v[i]) == 0) {
			if (rv->v[i].not_before > rv->v[out - 1].not_before)
				rv->v[out - 1].not_before = rv->v[i].not_before;
			free(rv->v[i].tenant);
			free(rv->v[i].user);
			continue;
		}
		rv->v[out++] = rv->v[i];
	}
	rv->n = out;
}

struct hub_revocations *hub_revocations_ref(struct hub_revocations *rv)
{
	rv->refs++;
	return rv;
}

void hub_revocations_unref(struct hub_revocations *rv)
{
	if (!rv || --rv->refs)
		return;
	for (size_t i = 0; i < rv->n; i++) {
		free(rv->v[i].tenant);
		free(rv->v[i].user);
	}
	free(rv->v);
	free(rv);
}

size_t hub_revocations_count(const struct hub_revocations *rv)
{
	return rv->n;
}

static int64_t lookup(const struct hub_revocations *rv, const char *tenant, const char *user)
{
	struct entry key = { (char *)tenant, (char *)user, 0 };
	const struct entry *e;

	if (!rv->n)
		return 0;
	e = bsearch(&key, rv->v, rv->n, sizeof(*rv->v), entry_cmp);
	return e ? e->not_before : 0;
}

int64_t hub_revocations_not_before(const struct hub_revocations *rv,
				   const struct hub_jwt_claims *c)
{
	int64_t t, u;

	hub_assert(rv->sealed);
	t = lookup(rv, c->tid, "");
	u = lookup(rv, c->tid, c->sub);
	return t > u ? t : u;
}

int hub_revocations_check(const struct hub_revocations *rv, const struct hub_jwt_claims *c,
			  struct hub_err *err)
{
	int64_t nb = rv ? hub_revocations_not_before(rv, c) : 0;

	if (nb == 0)
		return 0;
	if (c->iat == 0)
		return hub_err_set(err, -EKEYREVOKED, "token revoked: it has no iat and tokens "
				   "of its user or tenant were revoked");
	if (c->iat < nb)
		return hub_err_set(err, -EKEYREVOKED, "token revoked: issued before its user's "
				   "or tenant's not-before");
	return 0;
}
