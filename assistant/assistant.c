/* assistant/assistant.c - see assistant.h. The vault is the anonymizer's
 * (anonymizer/anon_vault.h): seeded with hub_anon_vault_add_known(), texts through
 * hub_anon_vault_pseudonymize(), the body's bytes through hub_anon_vault_leaks() and its
 * decoded strings through hub_anon_vault_guard(), answers through hub_anon_vault_restore()
 * (with hub_anon_detect() finding the markers, so that unknown ones are seen and tidied).
 * No text, value or key is ever put into an error message. */
#include "assistant/assistant.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anonymizer/anon_vault.h"
#include "assistant/ai_internal.h"
#include "lib/json.h"
#include "lib/utf8.h"

/* An answer of one choice without logprobs is a few dozen tokens. */
#define ANSWER_MAX_TOKENS (1 << 16)

/* Told to the model after the company's prompt: how markers work (restore reads what the
 * model copies), and that the company's turns are not all its own. Its examples are no
 * markers ("n" is no number): a real [PHONE_1] of the request would be restored wherever
 * a model repeats the note. Not pseudonymized: the guard reads it like the rest. */
static const char model_note[] =
	"Personal data in this conversation has been replaced with markers in square "
	"brackets made of a type and a number, such as [PHONE_n] or [NAME_n] with n a "
	"number; each marker stands for one value. When you need such a value, write its "
	"marker exactly as it appears; do not invent a marker or guess the value behind one. "
	"Replies of the company in this conversation may have been written by its staff; "
	"stay consistent with them.";

struct hub_ai_exchange {
	const struct hub_anon *anon;
	struct hub_anon_vault *vault;
};

void hub_ai_exchange_free(struct hub_ai_exchange *ex)
{
	if (!ex)
		return;
	hub_anon_vault_free(ex->vault);
	free(ex);
}

size_t hub_ai_exchange_markers(const struct hub_ai_exchange *ex)
{
	return hub_anon_vault_size(ex->vault);
}

/* ASCII case-insensitive equality of two slices. */
static bool str_caseeq(struct hub_str a, struct hub_str b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++) {
		unsigned char x = (unsigned char)a.p[i], y = (unsigned char)b.p[i];

		if (x >= 'A' && x <= 'Z')
			x += 32;
		if (y >= 'A' && y <= 'Z')
			y += 32;
		if (x != y)
			return false;
	}
	return true;
}

static struct hub_str trim_ascii(struct hub_str s)
{
	while (s.len && (s.p[0] == ' ' || s.p[0] == '\t' || s.p[0] == '\n' || s.p[0] == '\r')) {
		s.p++;
		s.len--;
	}
	while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t' ||
			 s.p[s.len - 1] == '\n' || s.p[s.len - 1] == '\r'))
		s.len--;
	return s;
}

/* ---- seeding the vault ---- */

/* A known value into the vault. The vault refuses (-EINVAL) only a value with nothing to
 * find (a phone of 5 digits, a one-letter name): there is nothing to hide then, and the
 * guard's detectors still read every text. */
static void seed(struct hub_anon_vault *v, enum hub_anon_type type, struct hub_str value,
		 struct hub_str skip)
{
	value = trim_ascii(value);
	if (!value.len || (skip.len && str_caseeq(value, skip)))
		return;
	if (hub_anon_vault_add_known(v, type, value) < 0)
		return; /* -EINVAL: nothing to find in it */
}

/* A name as the hub has it ("Айгерим 🌸", "Nurlan_88", "Иванова А. (VIP)"): as it is (a
 * literal when it holds more than letters), and its letters alone, so each word is also
 * found as a name, inflected and transliterated. */
static void seed_name(struct hub_anon_vault *v, struct hub_str value, struct hub_str skip)
{
	struct hub_buf b = HUB_BUF_INIT;
	bool other = false;

	seed(v, HUB_ANON_NAME, value, skip);
	for (size_t i = 0; i < value.len;) {
		uint32_t cp;
		size_t l = hub_utf8_decode((const unsigned char *)value.p + i, value.len - i, &cp);

		if (l && hub_ai__is_letter(cp)) {
			hub_buf_add(&b, value.p + i, l);
		} else {
			hub_buf_addch(&b, ' ');
			other |= !(l == 1 && (cp == ' ' || cp == '-' || cp == '\'' || cp == '.'));
		}
		i += l ? l : 1;
	}
	if (other)
		seed(v, HUB_ANON_NAME, hub_buf_str(&b), skip);
	hub_buf_release(&b);
}

static void seed_contact(struct hub_anon_vault *v, const struct hub_ai_prompt *p)
{
	const struct hub_ai_contact *c = p->contact;
	struct hub_str skip = p->test_leave_clear;

	for (size_t i = 0; i < p->nagent_names; i++)
		seed_name(v, p->agent_names[i], skip);
	if (!c)
		return;
	seed_name(v, c->display_name, skip);
	for (size_t i = 0; i < c->nprofile_names; i++)
		seed_name(v, c->profile_names[i], skip);
	for (size_t i = 0; i < c->nusernames; i++) {
		struct hub_str u = trim_ascii(c->usernames[i]);

		if (u.len && u.p[0] == '@') {
			u.p++;
			u.len--;
		}
		seed(v, HUB_ANON_NAME, u, skip);
	}
	for (size_t i = 0; i < c->nphones; i++)
		seed(v, HUB_ANON_PHONE, c->phones[i], skip);
	for (size_t i = 0; i < c->nemails; i++)
		seed(v, HUB_ANON_EMAIL, c->emails[i], skip);
}

/* ---- pseudonymizing ---- */

/* text pseudonymized with the exchange's vault, appended to out. With the test hook set,
 * the spans whose text is the hook's keep their text. */
static int pseudonymize(struct hub_ai_exchange *ex, struct hub_pool *pool,
			const struct hub_ai_prompt *p, struct hub_str text, struct hub_buf *out)
{
	struct hub_str hook = p->test_leave_clear;
	struct hub_anon_entity *ents = NULL;
	size_t n = 0, start = out->len, at = 0;
	int ret;

	ret = hub_anon_vault_pseudonymize(ex->vault, pool, text, out, hook.len ? &ents : NULL,
					  &n);
	if (ret < 0 || !hook.len)
		return ret;
	/* TEST ONLY: the same text again from the entities, the hook's spans in clear */
	hub_buf_truncate(out, start);
	for (size_t i = 0; i < n; i++) {
		struct hub_str span = { text.p + ents[i].start, ents[i].end - ents[i].start };

		hub_buf_add(out, text.p + at, ents[i].start - at);
		hub_buf_addstr(out, str_caseeq(span, hook) ? span : ents[i].marker);
		at = ents[i].end;
	}
	hub_buf_add(out, text.p + at, text.len - at);
	return 0;
}

static const char *role_name(enum hub_ai_role role)
{
	return role == HUB_AI_CUSTOMER ? "user" : "assistant";
}

static void add_message(struct hub_jw *w, const char *role, struct hub_str content)
{
	hub_jw_obj_open(w);
	hub_jw_key(w, "role");
	hub_jw_cstr(w, role);
	hub_jw_key(w, "content");
	hub_jw_str(w, content);
	hub_jw_obj_close(w);
}

/* The messages array's items: the system message, then the turns, those of one role in a
 * row joined. */
static int add_messages(struct hub_ai_exchange *ex, struct hub_pool *pool,
			const struct hub_ai_prompt *p, struct hub_jw *w, struct hub_err *err)
{
	const struct hub_ai_settings *s = p->settings;
	struct hub_buf sys = HUB_BUF_INIT, msg = HUB_BUF_INIT;
	const char *role = NULL;
	int ret;

	ret = pseudonymize(ex, pool, p, trim_ascii(s->system_prompt), &sys);
	if (ret < 0)
		goto fail;
	if (sys.len)
		hub_buf_adds(&sys, "\n\n");
	hub_buf_adds(&sys, model_note);
	if (trim_ascii(s->knowledge).len) {
		hub_buf_adds(&sys, "\n\nCompany information:\n");
		ret = pseudonymize(ex, pool, p, trim_ascii(s->knowledge), &sys);
		if (ret < 0)
			goto fail;
	}
	add_message(w, "system", hub_buf_str(&sys));
	for (size_t i = 0; i < p->nturns; i++) {
		const struct hub_ai_turn *t = &p->turns[i];
		const char *r = role_name(t->role);
		struct hub_str text = trim_ascii(t->text);

		if (!text.len)
			continue;
		if (role && strcmp(role, r) != 0) {
			add_message(w, role, hub_buf_str(&msg));
			hub_buf_reset(&msg);
		}
		if (msg.len)
			hub_buf_adds(&msg, "\n\n");
		role = r;
		ret = pseudonymize(ex, pool, p, text, &msg);
		if (ret < 0)
			goto fail;
	}
	if (role)
		add_message(w, role, hub_buf_str(&msg));
	ret = 0;
	goto out;
fail:
	ret = hub_err_set(err, ret, "a text of the request is too long to pseudonymize");
out:
	hub_buf_release(&sys);
	hub_buf_release(&msg);
	return ret;
}

/* ---- the guard ---- */

/* The kind of personal data the detectors see in text, for an error message. */
static const char *kind_in(const struct hub_ai_exchange *ex, struct hub_str text)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_anon_spans spans;
	const char *kind = "personal data";

	if (hub_anon_detect(ex->anon, ex->vault, &pool, text, &spans) == 0) {
		for (size_t i = 0; i < spans.n; i++) {
			if (spans.items[i].type != HUB_ANON_MARKER) {
				kind = hub_anon_type_name(spans.items[i].type);
				break;
			}
		}
	}
	hub_pool_release(&pool);
	return kind;
}

static int refuse(const struct hub_ai_exchange *ex, struct hub_str text, struct hub_err *err)
{
	return hub_err_set(err, -EACCES, "guard: the request still holds personal data (%s); "
			   "nothing may be sent", kind_in(ex, text));
}

/* The short strings a check already passed: a body repeats its keys and roles ("role",
 * "content", "user", "assistant") in every message, and the guard's answer for a string
 * depends on the string and the vault only. */
#define PASSED_MAX 16
#define PASSED_LEN 32

struct passed {
	struct hub_str s[PASSED_MAX];
	size_t n;
};

static bool passed_before(const struct passed *p, struct hub_str s)
{
	for (size_t i = 0; i < p->n; i++)
		if (hub_str_eq(p->s[i], s))
			return true;
	return false;
}

static void passed_add(struct passed *p, struct hub_str s)
{
	if (s.len <= PASSED_LEN && p->n < PASSED_MAX)
		p->s[p->n++] = s;
}

int hub_ai_exchange_check(const struct hub_ai_exchange *ex, struct hub_str bytes,
			  struct hub_err *err)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_json_doc doc;
	struct passed passed = { .n = 0 };
	int ret = 0;

	/* The exact bytes, as they leave: no value of the vault in any written form. Not the
	 * detectors: they read context, and JSON's (a quote and a colon before a capitalised
	 * word) makes names of words that are none. */
	if (hub_anon_vault_leaks(ex->vault, bytes)) {
		ret = refuse(ex, bytes, err);
		goto out;
	}
	/* What the provider reads from them, each string decoded: the vault's values and
	 * everything the detectors find. JSON escapes ("\n", "\"", "\u0041") would hide
	 * words from a reader of the bytes. */
	if (hub_json_parse(&pool, bytes, INT32_MAX, &doc, NULL) < 0) {
		/* not JSON: the bytes are all there is to read */
		if (hub_anon_vault_guard(ex->vault, bytes))
			ret = refuse(ex, bytes, err);
		goto out;
	}
	for (int i = 0; i < doc.n; i++) {
		struct hub_str s;

		if (doc.tok[i].type != HUB_JSON_STRING || hub_json_string(&doc, i, &pool, &s) < 0 ||
		    passed_before(&passed, s))
			continue;
		if (hub_anon_vault_guard(ex->vault, s)) {
			ret = refuse(ex, s, err);
			goto out;
		}
		passed_add(&passed, s);
	}
out:
	hub_pool_release(&pool);
	return ret;
}

/* ---- the request ---- */

/* A header value carries visible ASCII only: a CR or LF would start another header. */
static bool header_safe(struct hub_str s)
{
	for (size_t i = 0; i < s.len; i++)
		if ((unsigned char)s.p[i] <= 0x20 || (unsigned char)s.p[i] >= 0x7f)
			return false;
	return true;
}

static bool ends_with(struct hub_str s, const char *suf)
{
	size_t n = strlen(suf);

	return s.len >= n && memcmp(s.p + s.len - n, suf, n) == 0;
}

/* {base}/v1/chat/completions, from a base with or without /v1 or the whole path. */
static int endpoint(struct hub_pool *pool, struct hub_str base, const char **url,
		    struct hub_err *err)
{
	size_t scheme;
	const char *tail;

	base = trim_ascii(base);
	while (base.len && base.p[base.len - 1] == '/')
		base.len--;
	scheme = hub_str_startswith(base, "https://") ? 8 :
		 hub_str_startswith(base, "http://") ? 7 : 0;
	if (!scheme || base.len == scheme || !header_safe(base) ||
	    memchr(base.p, '?', base.len) || memchr(base.p, '#', base.len) ||
	    base.p[scheme] == '/')
		return hub_err_set(err, -EINVAL, "settings: the provider's base URL must be "
				   "http:// or https:// with a host and no query");
	if (ends_with(base, "/chat/completions"))
		tail = "";
	else if (ends_with(base, "/v1"))
		tail = "/chat/completions";
	else
		tail = "/v1/chat/completions";
	*url = hub_pool_sprintf(pool, "%.*s%s", HUB_STR_FMT(base), tail);
	return 0;
}

static int check_prompt(const struct hub_ai_prompt *p, struct hub_err *err)
{
	const struct hub_ai_settings *s = p->settings;
	size_t total = 0;
	bool customer = false;

	if (!s || !trim_ascii(s->model).len)
		return hub_err_set(err, -EINVAL, "settings: no model");
	if (!header_safe(s->api_key))
		return hub_err_set(err, -EINVAL, "settings: the API key holds characters a "
				   "header cannot carry");
	if (p->nturns > HUB_AI_TURNS_MAX)
		return hub_err_set(err, -EMSGSIZE, "%zu turns, at most %u", p->nturns,
				   HUB_AI_TURNS_MAX);
	total = s->system_prompt.len + s->knowledge.len;
	for (size_t i = 0; i < p->nturns; i++) {
		const struct hub_ai_turn *t = &p->turns[i];

		if (t->role != HUB_AI_CUSTOMER && t->role != HUB_AI_AGENT &&
		    t->role != HUB_AI_ASSISTANT)
			return hub_err_set(err, -EINVAL, "turn %zu: unknown role", i);
		customer |= t->role == HUB_AI_CUSTOMER && trim_ascii(t->text).len;
		total += t->text.len;
	}
	if (!customer)
		return hub_err_set(err, -EINVAL, "no customer turn to answer");
	if (total > HUB_AI_BODY_MAX)
		return hub_err_set(err, -EMSGSIZE, "the texts are over %u bytes", HUB_AI_BODY_MAX);
	return 0;
}

int hub_ai_exchange_new(const struct hub_anon *anon, struct hub_pool *pool,
			const struct hub_ai_prompt *p, struct hub_ai_exchange **out,
			struct hub_ai_http_req *req, struct hub_err *err)
{
	const struct hub_ai_settings *s = p->settings;
	struct hub_ai_exchange *ex = NULL;
	struct hub_buf body = HUB_BUF_INIT;
	const char *url = NULL;
	struct hub_jw w;
	int ret;

	*out = NULL;
	memset(req, 0, sizeof(*req));
	ret = check_prompt(p, err);
	if (ret < 0)
		goto out;
	ret = endpoint(pool, s->base_url, &url, err);
	if (ret < 0)
		goto out;
	ex = hub_xcalloc(1, sizeof(*ex));
	ex->anon = anon;
	ret = hub_anon_vault_new(anon, &ex->vault);
	if (ret < 0) {
		ret = hub_err_set(err, ret, "no vault");
		goto out;
	}
	seed_contact(ex->vault, p);

	hub_jw_init(&w, &body);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "model");
	hub_jw_str(&w, trim_ascii(s->model));
	hub_jw_key(&w, "messages");
	hub_jw_arr_open(&w);
	ret = add_messages(ex, pool, p, &w, err);
	if (ret < 0)
		goto out;
	hub_jw_arr_close(&w);
	if (s->temperature >= 0) {
		hub_jw_key(&w, "temperature");
		hub_jw_double(&w, s->temperature > 2 ? 2 : s->temperature);
	}
	if (s->max_tokens > 0) {
		hub_jw_key(&w, "max_tokens");
		hub_jw_int(&w, s->max_tokens);
	}
	hub_jw_key(&w, "stream");
	hub_jw_bool(&w, false);
	hub_jw_obj_close(&w);
	if (body.len > HUB_AI_BODY_MAX) {
		ret = hub_err_set(err, -EMSGSIZE, "the request body is over %u bytes",
				  HUB_AI_BODY_MAX);
		goto out;
	}
	/* the guard, over the very bytes the caller sends */
	req->body = hub_pool_strcopy(pool, hub_buf_str(&body));
	ret = hub_ai_exchange_check(ex, req->body, err);
	if (ret < 0) {
		memset(req, 0, sizeof(*req));
		goto out;
	}
	req->method = "POST";
	req->url = url;
	if (s->api_key.len) {
		char *a = hub_pool_alloc(pool, 7 + s->api_key.len + 1);

		memcpy(a, "Bearer ", 7);
		memcpy(a + 7, s->api_key.p, s->api_key.len);
		req->authorization = (struct hub_str){ a, 7 + s->api_key.len };
	}
	req->content_type = HUB_STR("application/json");
	*out = ex;
	ex = NULL; /* ownership moved */
	ret = 0;
out:
	hub_ai_exchange_free(ex);
	hub_buf_release(&body);
	return ret;
}

/* ---- restoring ---- */

static const char *const pairs[][2] = {
	{ "(", ")" }, { "[", "]" }, { "{", "}" }, { "<", ">" }, { "\"", "\"" }, { "'", "'" },
	{ "\xc2\xab", "\xc2\xbb" },         /* « » */
	{ "\xe2\x80\x9c", "\xe2\x80\x9d" }, /* “ ” */
	{ "\xe2\x80\x9e", "\xe2\x80\x9c" }, /* „ “ */
};

static bool buf_ends(const struct hub_buf *b, const char *s)
{
	return ends_with(hub_buf_str(b), s);
}

/* What follows a removed marker that takes the space before it along. */
static bool space_goes(struct hub_str rest)
{
	return !rest.len || strchr(" \t\n\r.,!?;:)]}\xc2\xbb", rest.p[0]) ||
	       hub_str_startswith(rest, "\xe2\x80\xa6"); /* … */
}

/* A marker the vault does not know was removed at the end of b; *rest is what follows it
 * in the text. Brackets or quotes directly around it go, and one of the spaces that
 * surrounded it. */
static void tidy(struct hub_buf *b, struct hub_str *rest)
{
	for (size_t i = 0; i < HUB_ARRAY_SIZE(pairs); i++) {
		size_t lo = strlen(pairs[i][0]), lc = strlen(pairs[i][1]);

		if (buf_ends(b, pairs[i][0]) && hub_str_startswith(*rest, pairs[i][1])) {
			hub_buf_truncate(b, b->len - lo);
			rest->p += lc;
			rest->len -= lc;
			break;
		}
	}
	if (b->len && (b->p[b->len - 1] == ' ' || b->p[b->len - 1] == '\t') && space_goes(*rest)) {
		while (b->len && (b->p[b->len - 1] == ' ' || b->p[b->len - 1] == '\t'))
			hub_buf_truncate(b, b->len - 1);
	} else if (!b->len || b->p[b->len - 1] == '\n') {
		while (rest->len && (rest->p[0] == ' ' || rest->p[0] == '\t')) {
			rest->p++;
			rest->len--;
		}
	}
}

void hub_ai_exchange_restore(const struct hub_ai_exchange *ex, struct hub_pool *pool,
			     struct hub_str text, struct hub_str *out, size_t *dropped)
{
	struct hub_buf b = HUB_BUF_INIT, one = HUB_BUF_INIT;
	struct hub_anon_spans spans = { NULL, 0, 0 };
	struct hub_str rest = text;
	size_t n = 0;

	/* The detector finds what restore reads as a marker (and looser spellings); each
	 * is restored alone, so a removed one is seen and tidied. */
	if (hub_anon_detect(ex->anon, NULL, pool, text, &spans) < 0)
		spans.n = 0; /* too long to look at: restored in one piece, not tidied */
	for (size_t i = 0; i < spans.n; i++) {
		const struct hub_anon_span *sp = &spans.items[i];
		size_t at = (size_t)(rest.p - text.p);
		struct hub_str m = { text.p + sp->start, sp->end - sp->start };

		if (sp->type != HUB_ANON_MARKER || sp->start < at)
			continue;
		hub_anon_vault_restore(ex->vault, (struct hub_str){ rest.p, sp->start - at }, &b);
		hub_buf_reset(&one);
		hub_anon_vault_restore(ex->vault, m, &one);
		rest = (struct hub_str){ text.p + sp->end, text.len - sp->end };
		if (one.len) {
			hub_buf_addstr(&b, hub_buf_str(&one));
			continue;
		}
		n++;
		tidy(&b, &rest);
	}
	hub_anon_vault_restore(ex->vault, rest, &b);
	*out = hub_pool_strcopy(pool, hub_buf_str(&b));
	if (dropped)
		*dropped = n;
	hub_buf_release(&b);
	hub_buf_release(&one);
}

enum hub_ai_lang hub_ai_turns_lang(const struct hub_ai_turn *turns, size_t n)
{
	while (n--) {
		enum hub_ai_lang l;

		if (turns[n].role != HUB_AI_CUSTOMER)
			continue;
		l = hub_ai_lang_detect(turns[n].text);
		if (l != HUB_AI_LANG_NONE)
			return l;
	}
	return HUB_AI_LANG_EN;
}

/* ---- the answer ---- */

/* Retry-After: seconds (a fraction is read too; an HTTP-date is not worth reading here),
 * at most a day; 0 when unreadable. */
static int64_t retry_after_ms(struct hub_str h)
{
	int64_t ms = 0;
	size_t i = 0, digits = 0, frac = 0;

	h = trim_ascii(h);
	for (; i < h.len && h.p[i] >= '0' && h.p[i] <= '9'; i++, digits++)
		if (ms <= 86400000)
			ms = ms * 10 + (h.p[i] - '0') * 1000;
	if (i < h.len && h.p[i] == '.') {
		int64_t scale = 100;

		for (i++; i < h.len && h.p[i] >= '0' && h.p[i] <= '9'; i++, frac++) {
			ms += (h.p[i] - '0') * scale;
			scale /= 10;
		}
		if (!frac)
			return 0;
	}
	if (!digits || i != h.len)
		return 0;
	return ms > 86400000 ? 86400000 : ms;
}

/* A string field of the object at obj, or empty. */
static struct hub_str str_at(const struct hub_json_doc *doc, struct hub_pool *pool, int obj,
			     const char *key)
{
	struct hub_str s = HUB_STR_NULL;

	if (hub_json_string(doc, hub_json_get(doc, obj, key), pool, &s) < 0)
		return HUB_STR_NULL;
	return s;
}

static int64_t count_at(const struct hub_json_doc *doc, int obj, const char *key)
{
	int64_t v;

	if (hub_json_int64(doc, hub_json_get(doc, obj, key), &v) < 0 || v < 0)
		return -1;
	return v;
}

/* A provider's code or type as it goes into error_code: [A-Za-z0-9_.-], at most 64. */
static void add_code(struct hub_buf *b, struct hub_str code)
{
	size_t start = b->len;

	hub_buf_addch(b, ' ');
	for (size_t i = 0; i < code.len && b->len - start <= 64; i++) {
		char c = code.p[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '.' || c == '-')
			hub_buf_addch(b, c);
	}
	if (b->len == start + 1)
		hub_buf_truncate(b, start);
}

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '*';
}

/* msg with the key and anything shaped like one blanked out, appended to b. */
static void add_scrubbed(struct hub_buf *b, struct hub_str msg, struct hub_str key)
{
	for (size_t i = 0; i < msg.len;) {
		if (key.len >= 4 && msg.len - i >= key.len &&
		    memcmp(msg.p + i, key.p, key.len) == 0) {
			hub_buf_adds(b, "***");
			i += key.len;
			continue;
		}
		/* "sk-proj-abc***xyz": OpenAI names a wrong key by its ends; other providers
		 * mask keys with asterisks too */
		if (key_char(msg.p[i]) && (i == 0 || !key_char(msg.p[i - 1]))) {
			size_t j = i;

			while (j < msg.len && key_char(msg.p[j]))
				j++;
			if (j - i >= 9 && memcmp(msg.p + i, "sk-", 3) == 0) {
				hub_buf_adds(b, "sk-***");
				i = j;
				continue;
			}
			if (j - i >= 8 && memmem(msg.p + i, j - i, "***", 3)) {
				hub_buf_adds(b, "***");
				i = j;
				continue;
			}
		}
		hub_buf_addch(b, msg.p[i++]);
	}
}

static void set_error(struct hub_ai_answer *out, struct hub_pool *pool, int status,
		      struct hub_str code, struct hub_str what, struct hub_str key)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_str all;

	hub_buf_addf(&b, "%d", status);
	add_code(&b, code);
	out->error_code = hub_pool_strcopy(pool, hub_buf_str(&b));
	hub_buf_reset(&b);
	hub_buf_addf(&b, "%d ", status);
	add_scrubbed(&b, what, key);
	all = hub_buf_str(&b);
	all.len = hub_utf8_split_next(all, HUB_AI_ERROR_MAX, HUB_TEXT_BYTES);
	out->error = hub_pool_strcopy(pool, trim_ascii(all));
	hub_buf_release(&b);
}

/* The provider's error in a parsed body: {"error":{"message","type","code"}},
 * {"error":"..."}, {"detail":"..."} or {"message":"..."}. */
static void error_of(const struct hub_json_doc *doc, struct hub_pool *pool,
		     struct hub_str *code, struct hub_str *type, struct hub_str *message)
{
	int e = hub_json_get(doc, 0, "error");

	*code = *type = *message = HUB_STR_NULL;
	if (hub_json_is(doc, e, HUB_JSON_OBJECT)) {
		int c = hub_json_get(doc, e, "code");

		*message = str_at(doc, pool, e, "message");
		*type = str_at(doc, pool, e, "type");
		if (hub_json_is(doc, c, HUB_JSON_STRING))
			*code = str_at(doc, pool, e, "code");
		else if (hub_json_is(doc, c, HUB_JSON_PRIMITIVE) && !hub_json_is_null(doc, c))
			*code = hub_json_raw(doc, c);
		if (!code->len)
			*code = *type;
		return;
	}
	*message = str_at(doc, pool, 0, "error");
	if (!message->len)
		*message = str_at(doc, pool, 0, "detail");
	if (!message->len)
		*message = str_at(doc, pool, 0, "message");
}

/* content: a string, or an array of parts of which the "text" ones count. */
static struct hub_str content_of(const struct hub_json_doc *doc, struct hub_pool *pool, int c)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_str s = HUB_STR_NULL;

	if (hub_json_is(doc, c, HUB_JSON_STRING)) {
		if (hub_json_string(doc, c, pool, &s) < 0)
			return HUB_STR_NULL;
		return s;
	}
	if (!hub_json_is(doc, c, HUB_JSON_ARRAY))
		return HUB_STR_NULL;
	for (int k = hub_json_first(doc, c); k >= 0; k = hub_json_after(doc, k)) {
		struct hub_str type = str_at(doc, pool, k, "type");

		if (type.len && !hub_str_eqs(type, "text") && !hub_str_eqs(type, "output_text"))
			continue;
		hub_buf_addstr(&b, str_at(doc, pool, k, "text"));
	}
	s = hub_pool_strcopy(pool, hub_buf_str(&b));
	hub_buf_release(&b);
	return s;
}

/* Reasoning models served by vLLM, Ollama or llama.cpp may start with their thoughts. */
static struct hub_str without_thoughts(struct hub_str s)
{
	struct hub_str t = trim_ascii(s);
	const char *end;

	if (!hub_str_startswith(t, "<think>"))
		return s;
	end = memmem(t.p, t.len, "</think>", 8);
	if (!end)
		return HUB_STR_NULL;
	end += 8;
	return (struct hub_str){ end, (size_t)(t.p + t.len - end) };
}

static void parse_ok(struct hub_ai_answer *out, struct hub_pool *pool, int status,
		     const struct hub_json_doc *doc, struct hub_str key)
{
	int choice = hub_json_first(doc, hub_json_get(doc, 0, "choices"));
	int message = hub_json_get(doc, choice, "message");
	struct hub_str code, type, why, content;

	error_of(doc, pool, &code, &type, &why);
	if (why.len || code.len) {
		out->verdict = HUB_AI_BAD_ANSWER;
		set_error(out, pool, status, code.len ? code : HUB_STR("error"), why, key);
		return;
	}
	out->finish_reason = str_at(doc, pool, choice, "finish_reason");
	content = without_thoughts(content_of(doc, pool, hub_json_get(doc, message, "content")));
	if (trim_ascii(content).len) {
		out->verdict = HUB_AI_OK;
		out->content = content;
		return;
	}
	out->verdict = HUB_AI_BAD_ANSWER;
	why = str_at(doc, pool, message, "refusal");
	if (why.len) {
		set_error(out, pool, status, HUB_STR("refusal"), why, key);
		return;
	}
	if (choice < 0) {
		set_error(out, pool, status, HUB_STR("no_choices"), HUB_STR("the answer has no "
			  "choices"), key);
		return;
	}
	set_error(out, pool, status, HUB_STR("no_content"),
		  out->finish_reason.len ? out->finish_reason : HUB_STR("the answer has no text"),
		  key);
}

void hub_ai_answer_parse(struct hub_pool *pool, int status, struct hub_str retry_after,
			 struct hub_str body, struct hub_str api_key, struct hub_ai_answer *out)
{
	struct hub_json_doc doc;
	struct hub_str code, type, why;
	bool json;
	int usage;

	memset(out, 0, sizeof(*out));
	out->prompt_tokens = out->completion_tokens = -1;
	json = hub_json_parse(pool, body, ANSWER_MAX_TOKENS, &doc, NULL) == 0 &&
	       hub_json_is(&doc, 0, HUB_JSON_OBJECT);
	if (json) {
		usage = hub_json_get(&doc, 0, "usage");
		out->prompt_tokens = count_at(&doc, usage, "prompt_tokens");
		out->completion_tokens = count_at(&doc, usage, "completion_tokens");
	}
	if (status >= 200 && status < 300) {
		if (json) {
			parse_ok(out, pool, status, &doc, api_key);
			return;
		}
		out->verdict = HUB_AI_BAD_ANSWER;
		set_error(out, pool, status, HUB_STR("not_json"),
			  HUB_STR("the answer is not the API's JSON"), api_key);
		return;
	}
	if (status == 401)
		out->verdict = HUB_AI_KEY;
	else if (status < 100 || status == 408 || status == 429 || status >= 500)
		out->verdict = HUB_AI_RETRY;
	else
		out->verdict = HUB_AI_PERMANENT;
	code = type = why = HUB_STR_NULL;
	if (json)
		error_of(&doc, pool, &code, &type, &why);
	/* OpenAI: 429 "You exceeded your current quota": not before someone pays */
	if (status == 429 && (hub_str_eqs(code, "insufficient_quota") ||
			      hub_str_eqs(type, "insufficient_quota")))
		out->verdict = HUB_AI_PERMANENT;
	if (out->verdict == HUB_AI_RETRY)
		out->retry_after_ms = retry_after_ms(retry_after);
	if (!why.len)
		why = status ? HUB_STR("(HTTP status)") : HUB_STR("(no answer)");
	set_error(out, pool, status, code, why, api_key);
}
