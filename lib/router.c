/* lib/router.c - see router.h. Routes are a flat array scanned in order: hubd has a few
 * dozen of them, and a scan of short segments beats a trie at that size. */
#include "lib/router.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct seg {
	const char *p; /* into the route's pattern copy, or into the matched path */
	size_t len;
	bool param;    /* "{name}": p/len is the name without braces */
};

struct route {
	char *method;
	char *pattern;
	int nsegs;
	struct seg segs[HUB_ROUTER_MAX_SEGS];
};

struct hub_router {
	struct route *routes;
	size_t n, cap;
};

struct hub_router *hub_router_new(void)
{
	return hub_xcalloc(1, sizeof(struct hub_router));
}

void hub_router_free(struct hub_router *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->routes[i].method);
		free(r->routes[i].pattern);
	}
	free(r->routes);
	free(r);
}

int hub_router_decode(struct hub_str s, bool form, char *out, size_t *outlen)
{
	size_t n = 0;

	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= s.len)
				return -EBADMSG;
			hi = hub_hexval((unsigned char)s.p[i + 1]);
			lo = hub_hexval((unsigned char)s.p[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EBADMSG;
			out[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && form) {
			out[n++] = ' ';
		} else {
			out[n++] = (char)c;
		}
	}
	*outlen = n;
	return 0;
}

/* Splits a path or pattern after its leading '/' into segments; one trailing '/' is
 * ignored. Returns the number of segments or -ENAMETOOLONG. */
static int split(struct hub_str path, struct seg *segs)
{
	size_t len = path.len;
	int n = 0;

	if (len > 1 && path.p[len - 1] == '/')
		len--;
	if (len <= 1)
		return 0;
	for (size_t i = 1; i <= len;) {
		size_t j = i;

		while (j < len && path.p[j] != '/')
			j++;
		if (n == HUB_ROUTER_MAX_SEGS)
			return -ENAMETOOLONG;
		segs[n].p = path.p + i;
		segs[n].len = j - i;
		segs[n].param = false;
		n++;
		i = j + 1;
	}
	return n;
}

int hub_router_add(struct hub_router *r, const char *method, const char *pattern,
		   struct hub_err *err)
{
	struct route rt;
	int nparams = 0;

	if (!method || !*method || !pattern || pattern[0] != '/')
		return hub_err_set(err, -EINVAL, "route %s: must start with '/'",
				   pattern ? pattern : "(null)");
	memset(&rt, 0, sizeof(rt));
	rt.pattern = hub_xstrdup(pattern);
	rt.nsegs = split(hub_str_from(rt.pattern), rt.segs);
	if (rt.nsegs < 0 || strlen(pattern) > HUB_ROUTER_PATH_MAX) {
		free(rt.pattern);
		return hub_err_set(err, -EINVAL, "route %s: too long", pattern);
	}
	for (int i = 0; i < rt.nsegs; i++) {
		struct seg *s = &rt.segs[i];
		const char *open = memchr(s->p, '{', s->len);
		const char *close = memchr(s->p, '}', s->len);

		if (!open && !close && s->len)
			continue;
		if (open != s->p || close != s->p + s->len - 1 || s->len < 3 ||
		    memchr(s->p + 1, '{', s->len - 1) || ++nparams > HUB_ROUTER_MAX_PARAMS) {
			free(rt.pattern);
			return hub_err_set(err, -EINVAL,
					   "route %s: bad segment %d (want literal or {name})",
					   pattern, i + 1);
		}
		s->param = true;
		s->p++;
		s->len -= 2;
	}
	rt.method = hub_xstrdup(method);
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->routes = hub_xrealloc(r->routes, r->cap * sizeof(*r->routes));
	}
	r->routes[r->n] = rt;
	return (int)r->n++;
}

static bool valid_escapes(struct hub_str s)
{
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] != '%')
			continue;
		if (i + 2 >= s.len || hub_hexval((unsigned char)s.p[i + 1]) < 0 ||
		    hub_hexval((unsigned char)s.p[i + 2]) < 0 ||
		    (s.p[i + 1] == '0' && s.p[i + 2] == '0'))
			return false;
		i += 2;
	}
	return true;
}

/* A path's segments; -EBADMSG or -ENAMETOOLONG when it is not acceptable. */
static int parse_path(struct hub_str path, struct seg *segs)
{
	int n;

	if (path.len > HUB_ROUTER_PATH_MAX)
		return -ENAMETOOLONG;
	if (!path.len || path.p[0] != '/')
		return -EBADMSG;
	for (size_t i = 0; i < path.len; i++) {
		unsigned char c = (unsigned char)path.p[i];

		if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
			return -EBADMSG;
		if (c == '.' && i + 1 < path.len && path.p[i + 1] == '.')
			return -EBADMSG;
	}
	n = split(path, segs);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		struct hub_str s = { segs[i].p, segs[i].len };
		char tmp[16];
		size_t tlen;

		if (!valid_escapes(s))
			return -EBADMSG;
		if (s.len > sizeof(tmp) || hub_router_decode(s, false, tmp, &tlen) < 0)
			continue;
		if ((tlen == 1 && tmp[0] == '.') || (tlen == 2 && tmp[0] == '.' && tmp[1] == '.'))
			return -EBADMSG;
	}
	return n;
}

static bool path_matches(const struct route *rt, const struct seg *segs, int n,
			 uint32_t *score)
{
	uint32_t sc = 0;

	if (rt->nsegs != n)
		return false;
	for (int i = 0; i < n; i++) {
		const struct seg *p = &rt->segs[i];

		if (p->param) {
			if (!segs[i].len)
				return false;
		} else {
			if (p->len != segs[i].len || memcmp(p->p, segs[i].p, p->len))
				return false;
			sc |= 1u << (31 - i);
		}
	}
	*score = sc;
	return true;
}

static bool method_matches(const struct route *rt, struct hub_str method)
{
	return hub_str_eqs(method, rt->method) ||
	       (hub_str_eqs(method, "HEAD") && strcmp(rt->method, "GET") == 0);
}

int hub_router_match(const struct hub_router *r, struct hub_str method, struct hub_str path,
		     struct hub_router_match *m)
{
	struct seg segs[HUB_ROUTER_MAX_SEGS];
	bool any_path = false;
	uint32_t best_score = 0;
	int n, best = -1;

	m->route = -1;
	m->nparams = 0;
	n = parse_path(path, segs);
	if (n < 0)
		return n;
	for (size_t i = 0; i < r->n; i++) {
		uint32_t sc;

		if (!path_matches(&r->routes[i], segs, n, &sc))
			continue;
		any_path = true;
		if (method_matches(&r->routes[i], method) && (best < 0 || sc > best_score)) {
			best = (int)i;
			best_score = sc;
		}
	}
	if (best < 0)
		return any_path ? -EOPNOTSUPP : -ENOENT;
	m->route = best;
	for (int i = 0; i < n; i++) {
		const struct seg *p = &r->routes[best].segs[i];

		if (!p->param)
			continue;
		m->params[m->nparams].name = (struct hub_str){ p->p, p->len };
		m->params[m->nparams].value = (struct hub_str){ segs[i].p, segs[i].len };
		m->nparams++;
	}
	return 0;
}

static void add_allow(char *out, size_t cap, size_t *len, const char *method)
{
	size_t ml = strlen(method);
	size_t at = 0;

	/* already listed? */
	while (at < *len) {
		size_t e = at;

		while (e < *len && out[e] != ',')
			e++;
		if (e - at == ml && memcmp(out + at, method, ml) == 0)
			return;
		at = e + 2;
	}
	if (*len + (*len ? 2 : 0) + ml + 1 > cap)
		return;
	if (*len) {
		out[(*len)++] = ',';
		out[(*len)++] = ' ';
	}
	memcpy(out + *len, method, ml);
	*len += ml;
	out[*len] = '\0';
}

void hub_router_allow(const struct hub_router *r, struct hub_str path, char *out, size_t cap)
{
	struct seg segs[HUB_ROUTER_MAX_SEGS];
	size_t len = 0;
	int n;

	if (!cap)
		return;
	out[0] = '\0';
	n = parse_path(path, segs);
	if (n < 0)
		return;
	for (size_t i = 0; i < r->n; i++) {
		uint32_t sc;

		if (!path_matches(&r->routes[i], segs, n, &sc))
			continue;
		add_allow(out, cap, &len, r->routes[i].method);
		if (strcmp(r->routes[i].method, "GET") == 0)
			add_allow(out, cap, &len, "HEAD");
	}
}
