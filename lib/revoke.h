/* lib/revoke.h - revoked access tokens: each tenant's and each user's "not before" (Unix
 * seconds; a token issued before it is refused), kept in PostgreSQL (token_revocations,
 * set by hubctl revoke) and read into an immutable, reference-counted snapshot that hubd
 * swaps on every change. Pure: no I/O, no clock; knows tokens only through their claims. */
#ifndef HUB_REVOKE_H
#define HUB_REVOKE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/jwt.h"

struct hub_revocations;

/* An empty set (one reference): built with _add, then _seal, then only read. */
struct hub_revocations *hub_revocations_new(void);
/* Tokens of tenant (of user in it; NULL or "": every user) issued before not_before are
 * revoked. The later of two for one key wins. Only before _seal. */
void hub_revocations_add(struct hub_revocations *rv, const char *tenant, const char *user,
			 int64_t not_before);
/* Ends the building: from now on rv is immutable and may be shared. */
void hub_revocations_seal(struct hub_revocations *rv);
struct hub_revocations *hub_revocations_ref(struct hub_revocations *rv);
void hub_revocations_unref(struct hub_revocations *rv); /* NULL-safe */
size_t hub_revocations_count(const struct hub_revocations *rv);

/* The not-before of c: the later of its tenant's and its user's; 0 when none. */
int64_t hub_revocations_not_before(const struct hub_revocations *rv,
				   const struct hub_jwt_claims *c);
/* 0 when c is not revoked by rv (NULL: nothing is); else -EKEYREVOKED with err saying why:
 * issued before the not-before, or without iat while a not-before is set (its age is
 * unknown, so it is refused). */
int hub_revocations_check(const struct hub_revocations *rv, const struct hub_jwt_claims *c,
			  struct hub_err *err) HUB_MUSTCHECK;

#endif
