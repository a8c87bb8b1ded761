/* tests/fuzz/anon_check.c - see anon_check.h. */
#include "tests/fuzz/anon_check.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "anonymizer/anon.h"
#include "anonymizer/anon_vault.h"
#include "lib/utf8.h"

/* boundary[i]: a character starts at byte i (an invalid byte is a character). */
static bool *boundaries(const char *p, size_t n)
{
	bool *b = hub_xcalloc(n + 1, sizeof(*b));
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t l = hub_utf8_decode((const unsigned char *)p + i, n - i, &cp);

		b[i] = true;
		i += l ? l : 1;
	}
	b[n] = true;
	return b;
}

static const char *check_spans(const struct hub_anon_entity *e, size_t ne, const bool *bd,
			       size_t n)
{
	for (size_t i = 0; i < ne; i++) {
		if (e[i].start >= e[i].end || e[i].end > n)
			return "span outside the text or empty";
		if (i && e[i].start < e[i - 1].end)
			return "spans overlap or are not sorted";
		if (!bd[e[i].start] || !bd[e[i].end])
			return "span splits a UTF-8 character";
	}
	return NULL;
}

/* The properties of one text given to vault v. */
static const char *check_text(struct hub_anon_vault *v, const char *data, size_t n)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_buf pseudo = HUB_BUF_INIT, back = HUB_BUF_INIT, want = HUB_BUF_INIT;
	struct hub_anon_entity *e = NULL;
	struct hub_str x = { data, n };
	const char *why = NULL;
	bool *bd = NULL, one_spelling = true;
	size_t ne = 0, at = 0;

	if (hub_anon_vault_pseudonymize(v, &pool, x, &pseudo, &e, &ne) < 0) {
		why = n > HUB_ANON_TEXT_MAX ? NULL : "pseudonymize failed";
		goto out;
	}
	bd = boundaries(data, n);
	why = check_spans(e, ne, bd, n);
	if (why)
		goto out;
	for (size_t i = 0; i < ne; i++) {
		size_t before;

		hub_buf_add(&want, data + at, e[i].start - at);
		before = want.len;
		hub_anon_vault_restore(v, e[i].marker, &want);
		if (want.len - before != e[i].end - e[i].start ||
		    memcmp(want.p + before, data + e[i].start, want.len - before) != 0)
			one_spelling = false;
		if (want.len == before) {
			why = "a marker of the vault restores to nothing";
			goto out;
		}
		at = e[i].end;
	}
	hub_buf_add(&want, data + at, n - at);
	hub_anon_vault_restore(v, hub_buf_str(&pseudo), &back);
	if (!hub_str_eq(hub_buf_str(&back), hub_buf_str(&want))) {
		why = "restore(pseudonymize(x)) is not x with the vault's spellings";
		goto out;
	}
	if (one_spelling && !hub_str_eq(hub_buf_str(&back), x)) {
		why = "restore(pseudonymize(x)) != x";
		goto out;
	}
	if (hub_anon_vault_leaks(v, hub_buf_str(&pseudo))) {
		why = "a value of the vault survives pseudonymization";
		goto out;
	}
out:
	free(bd);
	hub_buf_release(&want);
	hub_buf_release(&back);
	hub_buf_release(&pseudo);
	hub_pool_release(&pool);
	return why;
}

const char *anon_check(const struct hub_anon *anon, const char *data, size_t n)
{
	struct hub_anon_vault *v = NULL;
	const char *nl = memchr(data, '\n', n), *why = NULL;
	size_t at = 0;

	if (hub_anon_vault_new(anon, &v) < 0)
		return "vault_new failed";
	if (nl && nl > data) {
		struct hub_str first = { data, (size_t)(nl - data) };

		/* either may be refused as unusable: that is fine */
		if (hub_anon_vault_add_known(v, HUB_ANON_NAME, first) < 0 &&
		    hub_anon_vault_add_known(v, HUB_ANON_PHONE, first) < 0)
			(void)0;
	}
	/* the messages of one conversation, one vault */
	do {
		const char *ff = memchr(data + at, '\f', n - at);
		size_t end = ff ? (size_t)(ff - data) : n;

		why = check_text(v, data + at, end - at);
		at = end + 1;
	} while (!why && at <= n);
	hub_anon_vault_free(v);
	return why;
}
