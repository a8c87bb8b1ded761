/* tests/fuzz/fuzz_router.c - lib/router.h: match, allow and decode on any method and path
 * (`make fuzz-router`), against hubd's routes (daemon/hubd.c) and, when byte 0 has bit 7
 * set, one more pattern taken from the input ("pattern\npath"). Byte 0's low bits pick the
 * method and the Allow buffer's size. Properties: a known result; a match names a route of
 * that method whose literal segments are the path's and whose parameters are the path's
 * non-empty segments in order; a matched path has no control byte, '?', '#', ".." nor "."
 * segment; Allow lists the method when it matches, is empty when no route has the path,
 * lacks the method on 405, and always fits its buffer; decode never grows, never makes a
 * NUL of an escape, and leaves a string without '%' or '+' as it is. */
#include <errno.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/router.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "router";

struct route {
	const char *method, *pattern;
};

static const struct route routes[] = {
	{ "GET", "/healthz" },
	{ "GET", "/readyz" },
	{ "GET", "/metrics" },
	{ "GET", "/ws" },
	{ "GET", "/webhooks/{platform}/{channel}" },
	{ "POST", "/webhooks/{platform}/{channel}" },
	{ "GET", "/api/v1/conversations" },
	{ "GET", "/api/v1/conversations/{id}/messages" },
	{ "GET", "/inbox" },
	{ "GET", "/inbox/{file}" },
	{ "POST", "/webhooks/whatsapp/test" },
	{ "DELETE", "/api/v1/conversations/{id}" },
};

static const char *const methods[8] = { "GET", "HEAD", "POST", "PUT",
					"DELETE", "OPTIONS", "get", "" };

struct seg {
	const char *p;
	size_t len;
};

/* The segments after the leading '/', one trailing '/' ignored, as router.h says. */
static int split(struct hub_str s, struct seg *out, int max)
{
	size_t len = s.len;
	int n = 0;

	if (len > 1 && s.p[len - 1] == '/')
		len--;
	if (len <= 1)
		return 0;
	for (size_t i = 1; i <= len && n < max;) {
		size_t j = i;

		while (j < len && s.p[j] != '/')
			j++;
		out[n].p = s.p + i;
		out[n].len = j - i;
		n++;
		i = j + 1;
	}
	return n;
}

static void check_match(const struct hub_router_match *m, const struct route *rt,
			struct hub_str method, struct hub_str path)
{
	struct seg ps[HUB_ROUTER_MAX_SEGS + 1], ss[HUB_ROUTER_MAX_SEGS + 1];
	struct hub_str pat = hub_str_from(rt->pattern);
	int np = split(pat, ps, HUB_ROUTER_MAX_SEGS + 1);
	int ns = split(path, ss, HUB_ROUTER_MAX_SEGS + 1);
	int k = 0;

	fuzz_check(hub_str_eqs(method, rt->method) ||
			   (hub_str_eqs(method, "HEAD") && strcmp(rt->method, "GET") == 0),
		   "%.*s matched a %s route", HUB_STR_FMT(method), rt->method);
	fuzz_check(np == ns, "%d segments matched %d", ns, np);
	for (int i = 0; i < np; i++) {
		if (ps[i].len >= 2 && ps[i].p[0] == '{') {
			fuzz_check(k < m->nparams, "parameter %d missing", k);
			fuzz_check(m->params[k].name.len == ps[i].len - 2 &&
					   memcmp(m->params[k].name.p, ps[i].p + 1, ps[i].len - 2) ==
						   0,
				   "parameter %d's name", k);
			fuzz_check(m->params[k].value.p == ss[i].p &&
					   m->params[k].value.len == ss[i].len && ss[i].len > 0,
				   "parameter %d is not segment %d", k, i);
			k++;
		} else {
			fuzz_check(ps[i].len == ss[i].len && memcmp(ps[i].p, ss[i].p, ss[i].len) == 0,
				   "literal segment %d differs", i);
		}
	}
	fuzz_check(k == m->nparams, "%d parameters, pattern has %d", m->nparams, k);
	for (size_t i = 0; i < path.len; i++) {
		unsigned char c = (unsigned char)path.p[i];

		fuzz_check(c > 0x20 && c < 0x7f && c != '?' && c != '#', "byte %zu: %02x", i, c);
		fuzz_check(!(c == '.' && i + 1 < path.len && path.p[i + 1] == '.'), "'..'");
	}
	for (int i = 0; i < ns; i++) {
		char tmp[HUB_ROUTER_PATH_MAX];
		size_t n;

		if (hub_router_decode((struct hub_str){ ss[i].p, ss[i].len }, false, tmp, &n) == 0)
			fuzz_check(!(n == 1 && tmp[0] == '.') &&
					   !(n == 2 && tmp[0] == '.' && tmp[1] == '.'),
				   "a dot segment matched");
	}
}

static void check_decode(struct hub_str s, bool form)
{
	char *out = hub_xmalloc(s.len + 1);
	size_t n = 0;
	int ret = hub_router_decode(s, form, out, &n);

	fuzz_check(ret == 0 || ret == -EBADMSG, "decode: %d", ret);
	if (ret == 0) {
		fuzz_check(n <= s.len, "decoded %zu from %zu", n, s.len);
		/* %00 is refused; a raw NUL (which llhttp never passes) is copied */
		fuzz_check(!memchr(out, '\0', n) || memchr(s.p, '\0', s.len), "decoded a NUL");
		if (!memchr(s.p, '%', s.len) && (!form || !memchr(s.p, '+', s.len)))
			fuzz_check(n == s.len && memcmp(out, s.p, n) == 0, "changed without escapes");
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct route all[HUB_ARRAY_SIZE(routes) + 1];
	size_t nroutes = HUB_ARRAY_SIZE(routes);
	struct hub_router *r = hub_router_new();
	struct hub_router_match m;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_str method, path;
	char *pattern = NULL;
	char allow[128];
	size_t cap;
	int ret;

	if (size < 1)
		goto out;
	method = hub_str_from(methods[data[0] & 7]);
	cap = 1 + ((data[0] >> 3) & 15) * 8; /* 1 .. 121 */
	path = (struct hub_str){ (const char *)data + 1, size - 1 };
	memcpy(all, routes, sizeof(routes));
	for (size_t i = 0; i < nroutes; i++)
		fuzz_check(hub_router_add(r, routes[i].method, routes[i].pattern, &err) == (int)i,
			   "route %zu: %s", i, err.msg);
	if (data[0] & 0x80) {
		const char *nl = memchr(path.p, '\n', path.len);

		if (!nl)
			goto out;
		pattern = hub_xmemdup(path.p, (size_t)(nl - path.p));
		path = (struct hub_str){ nl + 1, (size_t)(path.p + path.len - nl - 1) };
		ret = hub_router_add(r, "PATCH", pattern, &err);
		fuzz_check(ret == (int)nroutes || ret == -EINVAL, "add: %d", ret);
		if (ret < 0) {
			fuzz_check(err.code == -EINVAL && err.msg[0], "add: no message");
		} else {
			all[nroutes].method = "PATCH";
			all[nroutes].pattern = pattern;
			nroutes++;
		}
		method = HUB_STR("PATCH");
	}

	ret = hub_router_match(r, method, path, &m);
	fuzz_check(ret == 0 || ret == -ENOENT || ret == -EOPNOTSUPP || ret == -EBADMSG ||
			   ret == -ENAMETOOLONG,
		   "match: %d", ret);
	fuzz_check(ret == 0 ? m.route >= 0 && (size_t)m.route < nroutes &&
				      m.nparams <= HUB_ROUTER_MAX_PARAMS
			    : m.route == -1 && m.nparams == 0,
		   "match %d: route %d, %d params", ret, m.route, m.nparams);
	if (ret == 0)
		check_match(&m, &all[m.route], method, path);

	memset(allow, 'x', sizeof(allow));
	hub_router_allow(r, path, allow, cap);
	fuzz_check(strnlen(allow, cap) < cap, "Allow overflows %zu bytes", cap);
	if (ret == -ENOENT || ret == -EBADMSG || ret == -ENAMETOOLONG)
		fuzz_check(allow[0] == '\0', "Allow \"%s\" for a path without routes", allow);
	if (cap >= sizeof(allow) - 7 && method.len) {
		/* room for every method: the list is complete */
		bool listed = strstr(allow, method.p) != NULL;

		if (ret == 0)
			fuzz_check(listed || strcmp(method.p, "get") == 0, "Allow \"%s\" lacks %s",
				   allow, method.p);
		if (ret == -EOPNOTSUPP)
			fuzz_check(allow[0] && (strcmp(method.p, "HEAD") != 0 ? !listed : 1),
				   "405 with Allow \"%s\" for %s", allow, method.p);
	}

	check_decode(path, false);
	check_decode(path, true);
out:
	free(pattern);
	hub_router_free(r);
	return 0;
}
