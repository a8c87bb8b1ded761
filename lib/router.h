/* lib/router.h - HTTP request routing: patterns such as "/webhooks/whatsapp/{channel}"
 * compiled once, then method + path matched to a route index and path parameters.
 * Pure: no I/O, no allocation while matching. Knows nothing about sockets or handlers. */
#ifndef HUB_ROUTER_H
#define HUB_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/err.h"

#define HUB_ROUTER_PATH_MAX 2048 /* longer paths: -ENAMETOOLONG (414) */
#define HUB_ROUTER_MAX_SEGS 32   /* segments in a pattern or a path */
#define HUB_ROUTER_MAX_PARAMS 8  /* {name} segments in one pattern */

struct hub_router;

struct hub_router_param {
	struct hub_str name;  /* "channel": a slice of the router's copy of the pattern */
	struct hub_str value; /* a raw (still percent-encoded) slice of the matched path */
};

struct hub_router_match {
	int route;   /* index in the order of hub_router_add(); -1 when none */
	int nparams;
	struct hub_router_param params[HUB_ROUTER_MAX_PARAMS];
};

struct hub_router *hub_router_new(void);
void hub_router_free(struct hub_router *r); /* NULL-safe */

/* Adds a route; method ("GET", "POST", ...) and pattern are copied. A pattern starts with
 * '/', its segments are literal or "{name}" (one whole, non-empty segment). GET routes also
 * answer HEAD. Returns the route's index (0, 1, ...) or -EINVAL with err filled. */
int hub_router_add(struct hub_router *r, const char *method, const char *pattern,
		   struct hub_err *err) HUB_MUSTCHECK;

/* Matches method and path (without the query string). A single trailing slash is ignored
 * ("/healthz/" is "/healthz"); a parameter never matches an empty segment; a literal
 * segment beats a parameter at the same place. Returns 0 and fills m; -ENOENT when no
 * route has this path (404); -EOPNOTSUPP when routes have this path but not this method
 * (405, see hub_router_allow); -EBADMSG for a bad path (not starting with '/', a "." or
 * ".." segment, even percent-encoded, "..", control bytes or a bad %-escape: 400);
 * -ENAMETOOLONG when over HUB_ROUTER_PATH_MAX or HUB_ROUTER_MAX_SEGS (414). */
int hub_router_match(const struct hub_router *r, struct hub_str method, struct hub_str path,
		     struct hub_router_match *m) HUB_MUSTCHECK;

/* The Allow header value for path ("GET, HEAD, POST"), NUL-terminated in out (truncated
 * to cap); empty when no route has this path. */
void hub_router_allow(const struct hub_router *r, struct hub_str path, char *out, size_t cap);

/* Percent-decodes s into out (which has room for s.len bytes); with form, '+' is a space
 * (query strings). Returns 0 and *outlen, or -EBADMSG for a bad escape or an encoded NUL. */
int hub_router_decode(struct hub_str s, bool form, char *out, size_t *outlen) HUB_MUSTCHECK;

#endif
