/* tests/fuzz/fuzz_webchat.c - lib/webcfg.h on any input (`make fuzz-webchat`): a web
 * channel's settings and the visitor tokens. Byte 0 picks the mode. Mode 0: the rest is a
 * settings JSON: parsed or refused with a message naming a web key; when parsed, every
 * origin is matched by itself, nothing else of the input is an origin by accident, the
 * widget's JSON of it parses. Mode 1: the rest is a token as a visitor sent it: accepted
 * only when re-signing its channel, sender and time gives a token that verifies to the
 * same sender; refused with a known code otherwise; the same token under another secret
 * or for another channel is refused. Mode 2: the rest is a sender: its token verifies. */
#include <errno.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/pool.h"
#include "lib/webcfg.h"
#include "tests/fuzz/fuzz.h"

const char fuzz_target[] = "webchat";

#define SECRET HUB_STR("fuzz-webchat-secret-0123456789")
#define CHANNEL "acme-web"

static void settings(struct hub_str in)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_webcfg c;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_json_doc doc;
	int ret = hub_webcfg_parse(&pool, in, &c, &err);

	fuzz_check(ret == 0 || ret == -EINVAL, "result %d", ret);
	if (ret < 0) {
		fuzz_check(strncmp(err.msg, "web", 3) == 0, "message %s", err.msg);
		goto out;
	}
	fuzz_check(c.norigins >= 1 && c.norigins <= HUB_WEBCFG_ORIGINS_MAX, "%zu", c.norigins);
	for (size_t i = 0; i < c.norigins; i++)
		fuzz_check(hub_webcfg_origin_allowed(&c, hub_str_from(c.origins[i])), "origin %zu",
			   i);
	fuzz_check(!hub_webcfg_origin_allowed(&c, HUB_STR("https://")), "an empty host");
	hub_webcfg_public_json(&c, &b);
	fuzz_check(hub_json_parse(&pool, hub_buf_str(&b), 256, &doc, NULL) == 0,
		   "public json %s", b.p);
out:
	hub_buf_release(&b);
	hub_pool_release(&pool);
}

static void token(struct hub_str in)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_str sender, ch;
	int ret = hub_visitor_token_verify(&pool, in, SECRET, CHANNEL, &sender);

	fuzz_check(ret == 0 || ret == -EBADMSG || ret == -EXDEV || ret == -EPERM, "result %d",
		   ret);
	if (ret == 0) {
		struct hub_buf again = HUB_BUF_INIT;
		struct hub_str s2;
		const char *dot;
		long long iat;

		fuzz_check(hub_visitor_token_channel(in, &ch) == 0 && hub_str_eqs(ch, CHANNEL),
			   "channel");
		dot = memrchr(in.p, '.', in.len);
		fuzz_check(dot != NULL, "shape");
		/* the time is the part before the signature */
		{
			const char *p = dot - 1;

			while (p > in.p && p[-1] != '.')
				p--;
			iat = strtoll(p, NULL, 10);
		}
		hub_visitor_token_sign(&again, SECRET, CHANNEL, sender, iat);
		fuzz_check(hub_visitor_token_verify(&pool, hub_buf_str(&again), SECRET, CHANNEL,
						    &s2) == 0 && s2.len == sender.len &&
			   memcmp(s2.p, sender.p, sender.len) == 0, "re-signed");
		fuzz_check(hub_visitor_token_verify(&pool, in, HUB_STR("another-secret"), CHANNEL,
						    &s2) == -EPERM, "another secret");
		fuzz_check(hub_visitor_token_verify(&pool, in, SECRET, "other-web", &s2) == -EXDEV,
			   "another channel");
		hub_buf_release(&again);
	}
	hub_pool_release(&pool);
}

static void sender(struct hub_str in)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf t = HUB_BUF_INIT;
	struct hub_str s;
	int ret;

	if (in.len < 3 || in.len > 2 + HUB_WEBCFG_USER_ID_MAX)
		return;
	hub_visitor_token_sign(&t, SECRET, CHANNEL, in, 1700000000);
	ret = hub_visitor_token_verify(&pool, hub_buf_str(&t), SECRET, CHANNEL, &s);
	fuzz_check(ret == 0 && s.len == in.len && memcmp(s.p, in.p, in.len) == 0, "%d", ret);
	hub_buf_release(&t);
	hub_pool_release(&pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hub_str in;

	if (size < 1)
		return 0;
	in = (struct hub_str){ (const char *)data + 1, size - 1 };
	switch (data[0] % 3) {
	case 0:
		settings(in);
		break;
	case 1:
		token(in);
		break;
	default:
		sender(in);
		break;
	}
	return 0;
}
