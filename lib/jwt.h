/* lib/jwt.h - the access tokens of agents and admins: HS256 JSON Web Tokens (RFC 7519)
 * with claims sub (user), tid (tenant), role, exp and iat. Only HS256 is accepted: alg none,
 * other algorithms, bad signatures, malformed or expired tokens are refused.
 * Pure: no I/O, the caller gives the time. */
#ifndef HUB_JWT_H
#define HUB_JWT_H

#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"

enum hub_role {
	HUB_ROLE_AGENT = 1,
	HUB_ROLE_ADMIN,
};

#define HUB_JWT_ID_MAX 128 /* bytes of sub and tid, NUL included */
/* 9999-12-31T23:59:59Z: a later exp is read as this one, so that no caller computing with
 * it (milliseconds, deadlines) can overflow */
#define HUB_JWT_EXP_MAX INT64_C(253402300799)

struct hub_jwt_claims {
	char sub[HUB_JWT_ID_MAX]; /* the user id */
	char tid[HUB_JWT_ID_MAX]; /* the tenant id */
	enum hub_role role;
	int64_t exp; /* Unix seconds, at most HUB_JWT_EXP_MAX */
	int64_t iat; /* Unix seconds when issued; 0: the token has no iat */
};

/* "agent"/"admin" → 0; else -EINVAL. */
int hub_role_parse(const char *name, enum hub_role *out) HUB_MUSTCHECK;
const char *hub_role_name(enum hub_role role);

/* Appends the signed token to out (with iat when claims->iat > 0). -EINVAL for an empty
 * secret or bad claims (an exp beyond HUB_JWT_EXP_MAX, an iat after exp among them). */
int hub_jwt_sign(struct hub_buf *out, struct hub_str secret,
		 const struct hub_jwt_claims *claims) HUB_MUSTCHECK;
/* Verifies token against secret at time now (Unix seconds) and fills out; an exp beyond
 * HUB_JWT_EXP_MAX comes out as HUB_JWT_EXP_MAX. iat is optional (0 when absent); one that
 * is not an integer in 1 .. exp is malformed.
 * -EBADMSG malformed; -EPERM wrong algorithm or bad signature; -EKEYEXPIRED expired.
 * err says which, without echoing the token. */
int hub_jwt_verify(struct hub_str token, struct hub_str secret, int64_t now,
		   struct hub_jwt_claims *out, struct hub_err *err) HUB_MUSTCHECK;
/* The lifetime cap (auth.max_token_ttl_s): 0 when c lives at most max_ttl_s seconds
 * (exp - iat, or exp - now for a token without iat) or max_ttl_s is 0 (no cap); else
 * -EKEYREJECTED with err saying so. */
int hub_jwt_check_ttl(const struct hub_jwt_claims *c, int64_t max_ttl_s, int64_t now,
		      struct hub_err *err) HUB_MUSTCHECK;

#endif
