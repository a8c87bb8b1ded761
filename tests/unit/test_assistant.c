/* tests/unit/test_assistant.c - the AI responder's pure core: a 20-turn conversation full
 * of personal data through the privacy pipeline (nothing of it in the request body, in
 * any form; one marker per value), the guard refusing a request whose pseudonymization
 * was made to fail, restore, the request body's shape and escaping, the provider's
 * answers and errors, the customer's language, the disclosure, hand-off phrases and the
 * reply's shape. Prints (as TAP comments) the time the hub adds for a 20-turn history. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anonymizer/anon.h"
#include "assistant/assistant.h"
#include "assistant/dialog.h"
#include "lib/json.h"
#include "lib/utf8.h"

static int setup(void **state)
{
	struct hub_anon *anon;

	if (hub_anon_new(&anon) < 0)
		return -1;
	*state = anon;
	return 0;
}

static int teardown(void **state)
{
	hub_anon_free(*state);
	return 0;
}

/* ---- helpers ---- */

#define S(lit) HUB_STR(lit)

/* The messages of a request body, decoded. */
struct msgs {
	const char *role[64];
	struct hub_str content[64];
	size_t n;
	struct hub_json_doc doc;
};

static void decode_body(struct hub_pool *pool, struct hub_str body, struct msgs *m)
{
	int arr;

	memset(m, 0, sizeof(*m));
	assert_int_equal(hub_json_parse(pool, body, 100000, &m->doc, NULL), 0);
	arr = hub_json_get(&m->doc, 0, "messages");
	assert_true(hub_json_is(&m->doc, arr, HUB_JSON_ARRAY));
	for (int k = hub_json_first(&m->doc, arr); k >= 0; k = hub_json_after(&m->doc, k)) {
		struct hub_str role;

		assert_true(m->n < 64);
		assert_int_equal(hub_json_string(&m->doc, hub_json_get(&m->doc, k, "role"), pool,
						 &role), 0);
		m->role[m->n] = hub_pool_strndup(pool, role.p, role.len);
		assert_int_equal(hub_json_string(&m->doc, hub_json_get(&m->doc, k, "content"),
						 pool, &m->content[m->n]), 0);
		m->n++;
	}
}

/* s in lower case (ASCII and Cyrillic, ё as е), NUL-terminated, in pool. */
static char *lower(struct hub_pool *pool, struct hub_str s)
{
	struct hub_buf b = HUB_BUF_INIT;
	char *out;

	for (size_t i = 0; i < s.len;) {
		uint32_t cp;
		size_t l = hub_utf8_decode((const unsigned char *)s.p + i, s.len - i, &cp);
		char enc[4];

		if (!l) {
			hub_buf_addch(&b, s.p[i++]);
			continue;
		}
		i += l;
		if (cp >= 'A' && cp <= 'Z')
			cp += 32;
		else if (cp >= 0x410 && cp <= 0x42f)
			cp += 0x20;
		else if (cp >= 0x400 && cp <= 0x40f)
			cp += 0x50;
		else if (cp >= 0x490 && cp <= 0x4ff && !(cp & 1))
			cp++;
		if (cp == 0x451)
			cp = 0x435;
		hub_buf_add(&b, enc, hub_utf8_encode(cp, enc));
	}
	out = hub_pool_strdup(pool, b.p);
	hub_buf_release(&b);
	return out;
}

/* s with its digits only. */
static char *digits(struct hub_pool *pool, struct hub_str s)
{
	char *out = hub_pool_alloc(pool, s.len + 1);
	size_t n = 0;

	for (size_t i = 0; i < s.len; i++)
		if (s.p[i] >= '0' && s.p[i] <= '9')
			out[n++] = s.p[i];
	out[n] = 0;
	return out;
}

static char *cstr(struct hub_pool *pool, struct hub_str s)
{
	return hub_pool_strndup(pool, s.p, s.len);
}

static void assert_absent(const char *hay, const char *needle, const char *what)
{
	if (strstr(hay, needle))
		fail_msg("%s holds \"%s\"", what, needle);
}

/* Distinct markers "[TYPE_n]" of one type in s, written to list (at most max). */
static size_t markers_of(struct hub_str s, const char *type, char list[][32], size_t max)
{
	char pre[24];
	size_t n = 0, pl = (size_t)snprintf(pre, sizeof(pre), "[%s_", type);
	const char *p = s.p, *end = s.p + s.len;

	while ((p = memmem(p, (size_t)(end - p), pre, pl))) {
		const char *q = p + pl;
		size_t len;
		bool seen = false;

		while (q < end && *q >= '0' && *q <= '9')
			q++;
		if (q == p + pl || q >= end || *q != ']') {
			p++;
			continue;
		}
		len = (size_t)(q + 1 - p);
		for (size_t i = 0; i < n; i++)
			seen |= strlen(list[i]) == len && memcmp(list[i], p, len) == 0;
		if (!seen && n < max) {
			memcpy(list[n], p, len);
			list[n][len] = 0;
			n++;
		}
		p = q;
	}
	return n;
}

/* ---- the 20-turn conversation ---- */

static const struct hub_ai_turn history[20] = {
	{ HUB_AI_CUSTOMER, S("Здравствуйте! Меня зовут Айгерим Сапарова, хочу оформить "
			     "доставку букета.") },
	{ HUB_AI_ASSISTANT, S("Здравствуйте! Подскажите, пожалуйста, ваш номер телефона.") },
	{ HUB_AI_CUSTOMER, S("Мой номер +7 701 123 45 67") },
	{ HUB_AI_CUSTOMER, S("и ещё почта aigerim.saparova@mail.kz") },
	{ HUB_AI_ASSISTANT, S("Спасибо! Как вам удобнее оплатить?") },
	{ HUB_AI_CUSTOMER, S("Картой 4400 4301 2345 6789, если можно") },
	{ HUB_AI_AGENT, S("Добрый день, Айгерим! Меня зовут Алия, я менеджер. Картой можно.") },
	{ HUB_AI_CUSTOMER, S("Для чека мой ИИН 900515445014") },
	{ HUB_AI_ASSISTANT, S("Записала. Нужен ли счёт на юрлицо?") },
	{ HUB_AI_CUSTOMER, S("Нет. А перевод на IBAN KZ86125KZT5004100100 можно?") },
	{ HUB_AI_AGENT, S("Да, можно.") },
	{ HUB_AI_CUSTOMER, S("Если не дозвонитесь, звоните 87011234567 или сестре Динаре "
			     "Ахметовой") },
	{ HUB_AI_ASSISTANT, S("Хорошо, передам курьеру.") },
	{ HUB_AI_CUSTOMER, S("Курьеру скажите, что заказ для Aigerim Saparova") },
	{ HUB_AI_ASSISTANT, S("Конечно.") },
	{ HUB_AI_CUSTOMER, S("Номер для курьера тот же: 8(701)123-45-67") },
	{ HUB_AI_ASSISTANT, S("Принято.") },
	{ HUB_AI_CUSTOMER, S("Спасибо, у Сапаровой дома будут после 18:00") },
	{ HUB_AI_ASSISTANT, S("Отлично, доставим после 18:00.") },
	{ HUB_AI_CUSTOMER, S("А когда точно будет доставка?") },
};

static const struct hub_str profile_names[] = { S("Aigerim S.") };
static const struct hub_str usernames[] = { S("@aigerim_s") };
static const struct hub_str phones[] = { S("+77011234567") };
static const struct hub_str emails[] = { S("aigerim.saparova@mail.kz") };
static const struct hub_str agents[] = { S("Алия Нурланова") };

static const struct hub_ai_contact contact = {
	.display_name = S("Айгерим Сапарова"),
	.profile_names = profile_names,
	.nprofile_names = 1,
	.usernames = usernames,
	.nusernames = 1,
	.phones = phones,
	.nphones = 1,
	.emails = emails,
	.nemails = 1,
};

static const struct hub_ai_settings settings = {
	.base_url = S("https://api.openai.com"),
	.model = S("gpt-4o-mini"),
	.api_key = S("sk-test-0123456789abcdef"),
	.system_prompt = S("Ты — вежливый ассистент цветочного магазина «Цветы Алматы». "
			   "Отвечай кратко."),
	.knowledge = S("Доставка по Алматы 1 500 ₸, бесплатно от 20 000 ₸. Работаем с 9:00 "
		       "до 21:00. Телефон офиса: +7 727 355 00 00."),
	.temperature = 0.3,
	.max_tokens = 400,
};

static struct hub_ai_prompt conversation(void)
{
	return (struct hub_ai_prompt){
		.settings = &settings,
		.contact = &contact,
		.agent_names = agents,
		.nagent_names = 1,
		.turns = history,
		.nturns = HUB_ARRAY_SIZE(history),
	};
}

/* Forms of the conversation's personal data that must not appear anywhere in the body:
 * checked in the body as it is, in lower case and, for numbers, among its digits. */
static const char *const never_as_written[] = {
	"+7 701 123 45 67", "87011234567", "8(701)123-45-67", "+77011234567", "123 45 67",
	"123-45-67", "aigerim.saparova@mail.kz", "4400 4301 2345 6789", "900515445014",
	"KZ86125KZT5004100100", "aigerim_s", "Aigerim S.",
};
static const char *const never_lower[] = {
	"айгерим", "сапаров", "aigerim", "saparov", "динар", "ахметов", "алия", "нурланов",
	"aigerim.saparova@mail.kz", "kz86125kzt5004100100", "@mail.kz",
};
static const char *const never_digits[] = {
	"7011234567", "900515445014", "4400430123456789", "5004100100", "1234567",
};

static void test_conversation_leaves_nothing_personal(void **state)
{
	struct hub_anon *anon = *state;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_ai_prompt p = conversation();
	struct hub_ai_exchange *ex = NULL;
	struct hub_ai_http_req req;
	struct hub_err err = HUB_ERR_INIT;
	struct msgs m;
	char list[16][32], *low;
	size_t n;

	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), 0);
	assert_non_null(ex);
	assert_string_equal(req.method, "POST");
	assert_string_equal(req.url, "https://api.openai.com/v1/chat/completions");
	assert_true(hub_str_eqs(req.authorization, "Bearer sk-test-0123456789abcdef"));
	assert_true(hub_str_eqs(req.content_type, "application/json"));

	/* none of the values, in any form */
	low = lower(&pool, req.body);
	for (size_t i = 0; i < HUB_ARRAY_SIZE(never_as_written); i++)
		assert_absent(cstr(&pool, req.body), never_as_written[i], "the body");
	for (size_t i = 0; i < HUB_ARRAY_SIZE(never_lower); i++)
		assert_absent(low, never_lower[i], "the body in lower case");
	decode_body(&pool, req.body, &m);
	for (size_t k = 0; k < m.n; k++) {
		char *d = digits(&pool, m.content[k]);
		char *lc = lower(&pool, m.content[k]);

		for (size_t i = 0; i < HUB_ARRAY_SIZE(never_digits); i++)
			assert_absent(d, never_digits[i], "a message's digits");
		for (size_t i = 0; i < HUB_ARRAY_SIZE(never_lower); i++)
			assert_absent(lc, never_lower[i], "a decoded message");
		for (size_t i = 0; i < HUB_ARRAY_SIZE(never_as_written); i++)
			assert_absent(cstr(&pool, m.content[k]), never_as_written[i],
				      "a decoded message");
	}
	/* and the markers instead */
	for (size_t i = 0; i < 6; i++) {
		static const char *const types[] = { "PHONE", "EMAIL", "IIN", "CARD", "IBAN",
						     "NAME" };

		if (!markers_of(req.body, types[i], list, 16))
			fail_msg("no [%s_n] marker in the body", types[i]);
	}
	/* one marker per value: the customer's three spellings of a phone and the office's */
	n = markers_of(req.body, "PHONE", list, 16);
	assert_int_equal(n, 2);
	assert_int_equal(markers_of(req.body, "EMAIL", list, 16), 1);
	assert_int_equal(markers_of(req.body, "IIN", list, 16), 1);
	assert_int_equal(markers_of(req.body, "CARD", list, 16), 1);
	assert_int_equal(markers_of(req.body, "IBAN", list, 16), 1);
	assert_true(hub_ai_exchange_markers(ex) >= 10);
	hub_ai_exchange_free(ex);
	hub_pool_release(&pool);
}

/* The message whose decoded content contains needle; its index or fails. */
static size_t message_with(const struct msgs *m, const char *needle)
{
	for (size_t k = 0; k < m->n; k++)
		if (memmem(m->content[k].p, m->content[k].len, needle, strlen(needle)))
			return k;
	fail_msg("no message holds \"%s\"", needle);
	return 0;
}

/* The marker right after prefix in s (as "[NAME_3]"), in out. */
static void marker_after(struct hub_str s, const char *prefix, char out[32])
{
	const char *p = memmem(s.p, s.len, prefix, strlen(prefix));
	const char *q;

	assert_non_null(p);
	p += strlen(prefix);
	assert_int_equal(*p, '[');
	q = memchr(p, ']', (size_t)(s.p + s.len - p));
	assert_non_null(q);
	assert_true(q - p + 1 < 32);
	memcpy(out, p, (size_t)(q - p + 1));
	out[q - p + 1] = 0;
}

static void test_conversation_shape_and_same_markers(void **state)
{
	struct hub_anon *anon = *state;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_ai_prompt p = conversation();
	struct hub_ai_exchange *ex = NULL;
	struct hub_ai_http_req req;
	struct hub_err err = HUB_ERR_INIT;
	struct msgs m;
	char phone_a[32], phone_b[32], phone_c[32], first[32], last[32], latin1[32], latin2[32];
	char want[80];
	size_t k;
	double t;
	int64_t mt;
	bool stream = true;

	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), 0);
	decode_body(&pool, req.body, &m);
	/* the system message first, then roles alternate: turns 3 and 4 joined, the agent's
	 * turn with the assistant's ones */
	assert_string_equal(m.role[0], "system");
	assert_int_equal(m.n, 1 + 19);
	for (k = 1; k < m.n; k++)
		assert_string_equal(m.role[k], k % 2 ? "user" : "assistant");
	assert_non_null(memmem(m.content[0].p, m.content[0].len, "Отвечай кратко.", 26));
	assert_non_null(memmem(m.content[0].p, m.content[0].len, "[PHONE_1]", 9));
	assert_non_null(memmem(m.content[0].p, m.content[0].len, "Company information:\n", 21));
	/* the office's phone is in the knowledge text, hidden too */
	assert_null(memmem(m.content[0].p, m.content[0].len, "355", 3));
	k = message_with(&m, "\n\nи ещё почта [EMAIL_");
	assert_string_equal(m.role[k], "user");
	k = message_with(&m, "я менеджер. Картой можно.");
	assert_string_equal(m.role[k], "assistant");
	/* the same value, the same marker, in every turn */
	marker_after(m.content[message_with(&m, "Мой номер ")], "Мой номер ", phone_a);
	marker_after(m.content[message_with(&m, "звоните ")], "звоните ", phone_b);
	marker_after(m.content[message_with(&m, "тот же: ")], "тот же: ", phone_c);
	assert_string_equal(phone_a, phone_b);
	assert_string_equal(phone_a, phone_c);
	marker_after(m.content[message_with(&m, "зовут ")], "зовут ", first);
	snprintf(want, sizeof(want), "Добрый день, %s!", first); /* the agent's "Айгерим" */
	message_with(&m, want);
	snprintf(want, sizeof(want), "зовут %s ", first);
	marker_after(m.content[message_with(&m, want)], want, last);
	assert_string_not_equal(first, last);
	marker_after(m.content[message_with(&m, "заказ для ")], "заказ для ", latin1);
	assert_string_equal(latin1, first); /* Aigerim is Айгерим */
	snprintf(want, sizeof(want), "заказ для %s ", first);
	marker_after(m.content[message_with(&m, want)], want, latin2);
	assert_string_equal(latin2, last); /* Saparova is Сапарова */
	snprintf(want, sizeof(want), "у %s дома", last); /* Сапаровой, inflected */
	message_with(&m, want);
	/* the other fields */
	assert_int_equal(hub_json_double(&m.doc, hub_json_get(&m.doc, 0, "temperature"), &t), 0);
	assert_true(t > 0.29 && t < 0.31);
	assert_int_equal(hub_json_int64(&m.doc, hub_json_get(&m.doc, 0, "max_tokens"), &mt), 0);
	assert_int_equal(mt, 400);
	assert_int_equal(hub_json_bool(&m.doc, hub_json_get(&m.doc, 0, "stream"), &stream), 0);
	assert_false(stream);
	hub_ai_exchange_free(ex);
	hub_pool_release(&pool);
}

static void test_restore_known_and_unknown(void **state)
{
	struct hub_anon *anon = *state;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_ai_prompt p = conversation();
	struct hub_ai_exchange *ex = NULL;
	struct hub_ai_http_req req;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_str out;
	struct msgs m;
	char phone[32], name[32], answer[300], want[300];
	size_t dropped = 9;

	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), 0);
	decode_body(&pool, req.body, &m);
	marker_after(m.content[message_with(&m, "Мой номер ")], "Мой номер ", phone);
	marker_after(m.content[message_with(&m, "зовут ")], "зовут ", name);

	snprintf(answer, sizeof(answer), "%s, курьер позвонит на %s. Запасной номер "
		 "[PHONE_99] не нужен.", name, phone);
	hub_ai_exchange_restore(ex, &pool, hub_str_from(answer), &out, &dropped);
	/* a value comes back as the vault first had it: the contact's own spelling */
	snprintf(want, sizeof(want), "Айгерим, курьер позвонит на +77011234567. Запасной номер "
		 "не нужен.");
	assert_string_equal(out.p, want);
	assert_int_equal(dropped, 1);

	/* what models write: other case, a space, no brackets */
	/* [PHONE_1] is the office's phone: the knowledge text is read before the turns */
	hub_ai_exchange_restore(ex, &pool, S("Ваш телефон: phone_1? Нет, [Phone 1]."), &out,
				&dropped);
	assert_string_equal(out.p, "Ваш телефон: +7 727 355 00 00? Нет, +7 727 355 00 00.");
	assert_int_equal(dropped, 0);

	/* unknown markers go with their brackets and a space, never guessed */
	static const struct {
		const char *in, *want;
	} rows[] = {
		{ "Позвоните [PHONE_99].", "Позвоните." },
		{ "Напишите ([EMAIL_7]) или позвоните", "Напишите или позвоните" },
		{ "Имя «[NAME_42]» записано", "Имя записано" },
		{ "[IIN_5] — ваш ИИН", "— ваш ИИН" },
		{ "строка\n[CARD_3] вторая", "строка\nвторая" },
		{ "[PHONE_99]", "" },
		{ "текст без маркеров", "текст без маркеров" },
	};
	for (size_t i = 0; i < HUB_ARRAY_SIZE(rows); i++) {
		hub_ai_exchange_restore(ex, &pool, hub_str_from(rows[i].in), &out, &dropped);
		if (strcmp(out.p, rows[i].want) != 0)
			fail_msg("\"%s\": got \"%s\", want \"%s\"", rows[i].in, out.p,
				 rows[i].want);
	}
	hub_ai_exchange_free(ex);
	hub_pool_release(&pool);
}

static void test_guard_blocks_failed_pseudonymization(void **state)
{
	struct hub_anon *anon = *state;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_ai_prompt p = conversation();
	struct hub_ai_exchange *ex = (void *)1;
	struct hub_ai_http_req req;
	struct hub_err err = HUB_ERR_INIT;

	/* the hook leaves the phone of turn 3 in clear: the guard must refuse */
	p.test_leave_clear = S("+7 701 123 45 67");
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), -EACCES);
	assert_null(ex);
	assert_null(req.url);
	assert_null(req.body.p);
	assert_int_equal(req.body.len, 0);
	assert_int_equal(req.authorization.len, 0);
	assert_non_null(strstr(err.msg, "PHONE"));
	assert_null(strstr(err.msg, "701"));
	assert_null(strstr(err.msg, "sk-test"));

	/* a name, left in clear where it is written in Latin letters */
	p.test_leave_clear = S("Aigerim");
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), -EACCES);
	assert_null(ex);
	assert_non_null(strstr(err.msg, "NAME"));
	assert_null(strstr(err.msg, "Aigerim"));

	/* an e-mail that the contact also has (not seeded then) */
	p.test_leave_clear = S("aigerim.saparova@mail.kz");
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), -EACCES);
	assert_non_null(strstr(err.msg, "EMAIL"));

	/* a hook matching nothing changes nothing */
	p.test_leave_clear = S("nothing like this");
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), 0);
	hub_ai_exchange_free(ex);
	hub_pool_release(&pool);
}

/* Known values the detectors alone would miss: a made-up name with an emoji in the
 * profile name, a username, a phone of the contact in an unusual spelling. */
static void test_seeded_values_are_hidden(void **state)
{
	struct hub_anon *anon = *state;
	struct hub_pool pool = HUB_POOL_INIT;
	static const struct hub_str names[] = { S("Qwertyna 🌸 (VIP)") };
	static const struct hub_str users[] = { S("@zzkop_77") };
	static const struct hub_str tel[] = { S("+7 (705) 555 12 34") };
	static const struct hub_ai_contact c = { .profile_names = names, .nprofile_names = 1,
						 .usernames = users, .nusernames = 1,
						 .phones = tel, .nphones = 1 };
	static const struct hub_ai_turn turns[] = {
		{ HUB_AI_CUSTOMER, S("это qwertyna, мой ник zzkop_77, звоните 705.555.1234") },
		{ HUB_AI_CUSTOMER, S("QWERTYNA ещё раз: ZZKOP_77") },
	};
	struct hub_ai_settings s = settings;
	struct hub_ai_prompt p = { .settings = &s, .contact = &c, .turns = turns, .nturns = 2 };
	struct hub_ai_exchange *ex = NULL;
	struct hub_ai_http_req req;
	struct hub_err err = HUB_ERR_INIT;
	char *low;

	s.knowledge = HUB_STR_NULL;
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), 0);
	low = lower(&pool, req.body);
	assert_absent(low, "qwertyna", "the body");
	assert_absent(low, "zzkop", "the body");
	assert_absent(digits(&pool, req.body), "7055551234", "the body's digits");
	assert_absent(digits(&pool, req.body), "5551234", "the body's digits");
	hub_ai_exchange_free(ex);
	hub_pool_release(&pool);
}

static void test_check_reads_escapes(void **state)
{
	struct hub_anon *anon = *state;
	struct hub_pool pool = HUB_POOL_INIT;
	static const struct hub_ai_turn turns[] = { { HUB_AI_CUSTOMER, S("Привет") } };
	struct hub_ai_settings s = settings;
	struct hub_ai_prompt p = { .settings = &s, .contact = &contact, .turns = turns,
				   .nturns = 1 };
	struct hub_ai_exchange *ex = NULL;
	struct hub_ai_http_req req;
	struct hub_err err = HUB_ERR_INIT;

	s.knowledge = HUB_STR_NULL;
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), 0);
	assert_int_equal(hub_ai_exchange_check(ex, req.body, &err), 0);
	assert_int_equal(hub_ai_exchange_check(ex, S("звоните +7 701 123 45 67"), &err),
			 -EACCES);
	/* a value of the vault behind a JSON escape: the bytes alone would pass */
	assert_int_equal(hub_ai_exchange_check(ex, S("{\"c\":\"Меня зовут\\nАйгерим\"}"), &err),
			 -EACCES);
	assert_non_null(strstr(err.msg, "NAME"));
	assert_int_equal(hub_ai_exchange_check(ex, S("{\"c\":\"\\u0041igerim Saparova\"}"),
					       &err), -EACCES);
	/* not in the vault, but personal data */
	assert_int_equal(hub_ai_exchange_check(ex, S("{\"c\":\"пишите ivan@mail.ru\"}"), &err),
			 -EACCES);
	assert_int_equal(hub_ai_exchange_check(ex, S("{\"c\":\"[PHONE_1] и [NAME_2]\"}"), &err),
			 0);
	hub_ai_exchange_free(ex);
	hub_pool_release(&pool);
}

static void test_body_escaping(void **state)
{
	struct hub_anon *anon = *state;
	struct hub_pool pool = HUB_POOL_INIT;
	static const char text[] = "Он сказал: \"привет\"\nи ушёл\t\\ 🌷 Рақмет! \x01 \xff end";
	static const struct hub_ai_turn turns[] = { { HUB_AI_CUSTOMER, S(text) } };
	struct hub_ai_settings s = settings;
	struct hub_ai_prompt p = { .settings = &s, .turns = turns, .nturns = 1 };
	struct hub_ai_exchange *ex = NULL;
	struct hub_ai_http_req req;
	struct hub_err err = HUB_ERR_INIT;
	struct msgs m;
	const char *body;

	s.system_prompt = S("Say \"hi\"\nin «quotes»");
	s.knowledge = HUB_STR_NULL;
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), 0);
	body = cstr(&pool, req.body);
	assert_non_null(strstr(body, "\\\"привет\\\"\\nи ушёл\\t\\\\ 🌷 Рақмет! \\u0001 "
				     "\xef\xbf\xbd end"));
	assert_non_null(strstr(body, "\"content\":\"Say \\\"hi\\\"\\nin «quotes»\\n\\n"));
	assert_null(strstr(body, "Company information"));
	decode_body(&pool, req.body, &m);
	assert_int_equal(m.n, 2);
	assert_true(hub_str_eqs(m.content[1],
				"Он сказал: \"привет\"\nи ушёл\t\\ 🌷 Рақмет! \x01 "
				"\xef\xbf\xbd end"));
	hub_ai_exchange_free(ex);
	hub_pool_release(&pool);
}

static void test_request_settings(void **state)
{
	struct hub_anon *anon = *state;
	struct hub_pool pool = HUB_POOL_INIT;
	static const struct hub_ai_turn turns[] = {
		{ HUB_AI_AGENT, S("Здравствуйте!") },
		{ HUB_AI_ASSISTANT, S("Чем помочь?") },
		{ HUB_AI_CUSTOMER, S("  ") },
		{ HUB_AI_CUSTOMER, S("Сколько стоит доставка?") },
	};
	struct hub_ai_settings s = {
		.base_url = S("http://127.0.0.1:11434/v1/"),
		.model = S(" llama3.1:8b "),
		.temperature = -1,
	};
	struct hub_ai_prompt p = { .settings = &s, .turns = turns, .nturns = 4 };
	struct hub_ai_exchange *ex = NULL;
	struct hub_ai_http_req req;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_ai_turn many[HUB_AI_TURNS_MAX + 1];
	struct hub_str restored;
	size_t dropped = 1;
	struct msgs m;

	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), 0);
	assert_string_equal(req.url, "http://127.0.0.1:11434/v1/chat/completions");
	assert_int_equal(req.authorization.len, 0); /* no key: no header */
	assert_non_null(strstr(cstr(&pool, req.body), "{\"model\":\"llama3.1:8b\",\"messages\":"));
	assert_null(strstr(cstr(&pool, req.body), "temperature"));
	assert_null(strstr(cstr(&pool, req.body), "max_tokens"));
	decode_body(&pool, req.body, &m);
	/* the agent's and the assistant's turns are one assistant message, the blank turn
	 * is left out; no prompt: the note alone */
	assert_int_equal(m.n, 3);
	assert_string_equal(m.role[1], "assistant");
	assert_true(hub_str_eqs(m.content[1], "Здравствуйте!\n\nЧем помочь?"));
	assert_string_equal(m.role[2], "user");
	assert_true(hub_str_startswith(m.content[0], "Personal data in this conversation"));
	/* the note's examples are no markers: a model repeating it restores nothing */
	hub_ai_exchange_restore(ex, &pool, m.content[0], &restored, &dropped);
	assert_true(hub_str_eq(restored, m.content[0]));
	assert_int_equal(dropped, 0);
	hub_ai_exchange_free(ex);

	s.base_url = S("https://llm.example/v1/chat/completions");
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), 0);
	assert_string_equal(req.url, "https://llm.example/v1/chat/completions");
	hub_ai_exchange_free(ex);
	s.base_url = S("https://llm.example/openai");
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), 0);
	assert_string_equal(req.url, "https://llm.example/openai/v1/chat/completions");
	hub_ai_exchange_free(ex);

	static const char *const bad_urls[] = { "ftp://x", "https://", "https://x/?a=1",
						"x.example", "https:///v1", "https://a b" };
	for (size_t i = 0; i < HUB_ARRAY_SIZE(bad_urls); i++) {
		s.base_url = hub_str_from(bad_urls[i]);
		assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), -EINVAL);
		assert_null(ex);
	}
	s.base_url = S("https://x");
	s.api_key = S("sk-secret-value\r\nX-Evil: 1");
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), -EINVAL);
	assert_null(strstr(err.msg, "secret"));
	s.api_key = HUB_STR_NULL;
	s.model = S(" ");
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), -EINVAL);
	s.model = S("m");

	p.nturns = 2; /* no customer turn: nothing to answer */
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), -EINVAL);
	for (size_t i = 0; i < HUB_ARRAY_SIZE(many); i++)
		many[i] = (struct hub_ai_turn){ HUB_AI_CUSTOMER, S("да") };
	p.turns = many;
	p.nturns = HUB_ARRAY_SIZE(many);
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), -EMSGSIZE);
	p.nturns = HUB_AI_TURNS_MAX;
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), 0);
	hub_ai_exchange_free(ex);
	many[0].role = (enum hub_ai_role)7;
	assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, &err), -EINVAL);
	hub_ai_exchange_free(NULL);
	hub_pool_release(&pool);
}

/* ---- the provider's answers ---- */

static void test_answer_ok(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_ai_answer a;

	(void)state;
	hub_ai_answer_parse(&pool, 200, HUB_STR_NULL,
			    S("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":[{"
			      "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
			      "\"Доставка сегодня, [NAME_1]!\\nДо 21:00.\",\"refusal\":null},"
			      "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":812,"
			      "\"completion_tokens\":17,\"total_tokens\":829}}"),
			    HUB_STR_NULL, &a);
	assert_int_equal(a.verdict, HUB_AI_OK);
	assert_true(hub_str_eqs(a.content, "Доставка сегодня, [NAME_1]!\nДо 21:00."));
	assert_true(hub_str_eqs(a.finish_reason, "stop"));
	assert_int_equal(a.prompt_tokens, 812);
	assert_int_equal(a.completion_tokens, 17);
	assert_int_equal(a.error_code.len, 0);
	assert_int_equal(a.error.len, 0);

	/* no usage (llama.cpp, some proxies) */
	hub_ai_answer_parse(&pool, 200, HUB_STR_NULL,
			    S("{\"choices\":[{\"message\":{\"content\":\"Да\"},"
			      "\"finish_reason\":\"length\"}]}"), HUB_STR_NULL, &a);
	assert_int_equal(a.verdict, HUB_AI_OK);
	assert_true(hub_str_eqs(a.content, "Да"));
	assert_true(hub_str_eqs(a.finish_reason, "length"));
	assert_int_equal(a.prompt_tokens, -1);
	assert_int_equal(a.completion_tokens, -1);

	/* content as parts */
	hub_ai_answer_parse(&pool, 200, HUB_STR_NULL,
			    S("{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\","
			      "\"text\":\"Раз, \"},{\"type\":\"image_url\",\"image_url\":{}},"
			      "{\"type\":\"text\",\"text\":\"два\"}]}}]}"), HUB_STR_NULL, &a);
	assert_int_equal(a.verdict, HUB_AI_OK);
	assert_true(hub_str_eqs(a.content, "Раз, два"));

	/* a reasoning model's thoughts are not the answer */
	hub_ai_answer_parse(&pool, 200, HUB_STR_NULL,
			    S("{\"choices\":[{\"message\":{\"content\":\"<think>the user wants "
			      "x</think>\\n\\nОтвет\"}}]}"), HUB_STR_NULL, &a);
	assert_int_equal(a.verdict, HUB_AI_OK);
	assert_true(hub_str_eqs(a.content, "\n\nОтвет"));
	hub_ai_answer_parse(&pool, 200, HUB_STR_NULL,
			    S("{\"choices\":[{\"message\":{\"content\":\"<think>never ends\"}}]}"),
			    HUB_STR_NULL, &a);
	assert_int_equal(a.verdict, HUB_AI_BAD_ANSWER);
	hub_pool_release(&pool);
}

static void test_answer_without_text(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_ai_answer a;
	static const struct {
		const char *body, *code;
	} rows[] = {
		{ "not json at all", "200 not_json" },
		{ "[1,2]", "200 not_json" },
		{ "{\"choices\":[]}", "200 no_choices" },
		{ "{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"I can't help\"}}]}",
		  "200 refusal" },
		{ "{\"choices\":[{\"message\":{\"content\":\"  \\n\"},\"finish_reason\":"
		  "\"content_filter\"}]}", "200 no_content" },
		{ "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[]},"
		  "\"finish_reason\":\"tool_calls\"}]}", "200 no_content" },
		{ "{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}",
		  "200 server_error" },
	};

	(void)state;
	for (size_t i = 0; i < HUB_ARRAY_SIZE(rows); i++) {
		hub_ai_answer_parse(&pool, 200, HUB_STR_NULL, hub_str_from(rows[i].body),
				    HUB_STR_NULL, &a);
		assert_int_equal(a.verdict, HUB_AI_BAD_ANSWER);
		if (!hub_str_eqs(a.error_code, rows[i].code))
			fail_msg("%s: code \"%.*s\", want \"%s\"", rows[i].body,
				 HUB_STR_FMT(a.error_code), rows[i].code);
		assert_int_equal(a.content.len, 0);
		assert_true(a.error.len > 4);
	}
	hub_ai_answer_parse(&pool, 200, HUB_STR_NULL, hub_str_from(rows[4].body), HUB_STR_NULL,
			    &a);
	assert_true(hub_str_eqs(a.error, "200 content_filter"));
	hub_pool_release(&pool);
}

static void test_answer_errors(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_ai_answer a;
	static const struct {
		int status;
		const char *retry_after, *body;
		enum hub_ai_verdict verdict;
		int64_t wait;
		const char *code, *error;
	} rows[] = {
		{ 429, "7", "{\"error\":{\"message\":\"Rate limit reached for gpt-4o-mini\","
		  "\"type\":\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}",
		  HUB_AI_RETRY, 7000, "429 rate_limit_exceeded",
		  "429 Rate limit reached for gpt-4o-mini" },
		{ 429, "20", "{\"error\":{\"message\":\"You exceeded your current quota\","
		  "\"type\":\"insufficient_quota\",\"param\":null,"
		  "\"code\":\"insufficient_quota\"}}", HUB_AI_PERMANENT, 0, "429 insufficient_quota",
		  "429 You exceeded your current quota" },
		{ 500, NULL, "<html>Internal Server Error</html>", HUB_AI_RETRY, 0, "500",
		  "500 (HTTP status)" },
		{ 503, " 1.5 ", "{\"error\":{\"message\":\"The server is overloaded\","
		  "\"type\":\"server_error\",\"param\":null,\"code\":null}}", HUB_AI_RETRY, 1500,
		  "503 server_error", "503 The server is overloaded" },
		{ 502, "Wed, 21 Oct 2015 07:28:00 GMT", "", HUB_AI_RETRY, 0, "502",
		  "502 (HTTP status)" },
		{ 0, NULL, "", HUB_AI_RETRY, 0, "0", "0 (no answer)" },
		{ 408, NULL, "", HUB_AI_RETRY, 0, "408", "408 (HTTP status)" },
		{ 400, NULL, "{\"error\":{\"message\":\"'messages' must contain at least one "
		  "message\",\"type\":\"invalid_request_error\",\"param\":\"messages\","
		  "\"code\":null}}",
		  HUB_AI_PERMANENT, 0, "400 invalid_request_error",
		  "400 'messages' must contain at least one message" },
		{ 404, NULL, "{\"detail\":\"Not Found\"}", HUB_AI_PERMANENT, 0, "404",
		  "404 Not Found" },
		{ 404, NULL, "{\"error\":\"model 'llama9' not found\"}", HUB_AI_PERMANENT, 0, "404",
		  "404 model 'llama9' not found" },
		{ 413, "5", "", HUB_AI_PERMANENT, 0, "413", "413 (HTTP status)" },
		{ 401, NULL, "{\"error\":{\"message\":\"Incorrect API key provided: "
		  "sk-proj-abc*********************xyz9. You can find your API key at "
		  "https://platform.openai.com/account/api-keys.\","
		  "\"type\":\"invalid_request_error\","
		  "\"param\":null,\"code\":\"invalid_api_key\"}}", HUB_AI_KEY, 0,
		  "401 invalid_api_key", "401 Incorrect API key provided: sk-***. You can find "
		  "your API key at https://platform.openai.com/account/api-keys." },
		{ 403, NULL, "{\"error\":{\"message\":\"key Zx9-secret-key-77 has no access\","
		  "\"code\":403}}", HUB_AI_PERMANENT, 0, "403 403", "403 key *** has no access" },
		{ 401, NULL, "{\"error\":{\"message\":\"Invalid key 'Zx9-s*******y-77'.\"}}",
		  HUB_AI_KEY, 0, "401", "401 Invalid key '***'." },
	};

	(void)state;
	for (size_t i = 0; i < HUB_ARRAY_SIZE(rows); i++) {
		hub_ai_answer_parse(&pool, rows[i].status, hub_str_from(rows[i].retry_after),
				    hub_str_from(rows[i].body), S("Zx9-secret-key-77"), &a);
		if (a.verdict != rows[i].verdict || a.retry_after_ms != rows[i].wait ||
		    !hub_str_eqs(a.error_code, rows[i].code) ||
		    !hub_str_eqs(a.error, rows[i].error))
			fail_msg("row %zu: verdict %d wait %lld code \"%.*s\" error \"%.*s\"", i,
				 a.verdict, (long long)a.retry_after_ms, HUB_STR_FMT(a.error_code),
				 HUB_STR_FMT(a.error));
		assert_int_equal(a.content.len, 0);
	}

	/* a long message is cut on a character boundary */
	{
		struct hub_buf b = HUB_BUF_INIT;

		hub_buf_adds(&b, "{\"error\":{\"message\":\"");
		for (int i = 0; i < 400; i++)
			hub_buf_adds(&b, "ж");
		hub_buf_adds(&b, "\"}}");
		hub_ai_answer_parse(&pool, 400, HUB_STR_NULL, hub_buf_str(&b), HUB_STR_NULL, &a);
		assert_true(a.error.len <= HUB_AI_ERROR_MAX);
		assert_true(a.error.len > HUB_AI_ERROR_MAX - 4);
		assert_true(hub_utf8_valid(a.error.p, a.error.len));
		hub_buf_release(&b);
	}
	hub_pool_release(&pool);
}

/* ---- language, disclosure, hand-off, the reply ---- */

static void test_language(void **state)
{
	static const struct {
		const char *text;
		enum hub_ai_lang lang;
	} rows[] = {
		{ "Здравствуйте, сколько стоит доставка?", HUB_AI_LANG_RU },
		{ "Сәлеметсіз бе, жеткізу қанша тұрады?", HUB_AI_LANG_KK },
		{ "САЛЕМ, ҚАЛАЙСЫЗ", HUB_AI_LANG_KK },
		{ "Рахмет", HUB_AI_LANG_RU }, /* Kazakh without its letters reads as Russian */
		{ "Рақмет", HUB_AI_LANG_KK },
		{ "Бiз", HUB_AI_LANG_RU },  /* a Latin i among Cyrillic: no Kazakh letter */
		{ "Біз", HUB_AI_LANG_KK },
		{ "Hello, how much is delivery?", HUB_AI_LANG_EN },
		{ "ok спасибо большое", HUB_AI_LANG_RU },
		{ "Hi, I am Дима", HUB_AI_LANG_EN },
		{ "87011234567", HUB_AI_LANG_NONE },
		{ "👍🌷", HUB_AI_LANG_NONE },
		{ "", HUB_AI_LANG_NONE },
		{ "\xff\xfe!", HUB_AI_LANG_NONE },
	};
	static const struct hub_str recent[] = { S("Сәлем!"), S("Hello"), S("+7 701"), S("👍") };
	static const struct hub_ai_turn turns[] = {
		{ HUB_AI_CUSTOMER, S("Сәлем!") },
		{ HUB_AI_ASSISTANT, S("Hello! How can I help?") },
		{ HUB_AI_CUSTOMER, S("👍") },
	};

	(void)state;
	for (size_t i = 0; i < HUB_ARRAY_SIZE(rows); i++)
		if (hub_ai_lang_detect(hub_str_from(rows[i].text)) != rows[i].lang)
			fail_msg("\"%s\": got %s", rows[i].text,
				 hub_ai_lang_code(hub_ai_lang_detect(hub_str_from(rows[i].text))));
	assert_int_equal(hub_ai_lang_of_texts(recent, 4), HUB_AI_LANG_EN);
	assert_int_equal(hub_ai_lang_of_texts(recent, 1), HUB_AI_LANG_KK);
	assert_int_equal(hub_ai_lang_of_texts(recent + 2, 2), HUB_AI_LANG_EN);
	assert_int_equal(hub_ai_lang_of_texts(NULL, 0), HUB_AI_LANG_EN);
	/* the company's turns do not count */
	assert_int_equal(hub_ai_turns_lang(turns, 3), HUB_AI_LANG_KK);
	assert_string_equal(hub_ai_lang_code(HUB_AI_LANG_KK), "kk");
	assert_string_equal(hub_ai_lang_code(HUB_AI_LANG_NONE), "");
	assert_int_equal(hub_ai_lang_from_code(S("RU")), HUB_AI_LANG_RU);
	assert_int_equal(hub_ai_lang_from_code(S("de")), HUB_AI_LANG_NONE);
}

static void test_disclosure(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_ai_texts cfg = { 0 };
	struct hub_str d;

	(void)state;
	d = hub_ai_disclosure_text(&pool, NULL, HUB_AI_LANG_RU, S("Цветы Алматы"));
	assert_true(hub_str_startswith(d, "Здравствуйте! Это ИИ-ассистент компании "
					  "«Цветы Алматы»."));
	assert_non_null(strstr(d.p, "«оператор»"));
	assert_true(hub_ai_handoff_asked(S("оператор"), NULL, 0)); /* what it tells to write */
	d = hub_ai_disclosure_text(&pool, NULL, HUB_AI_LANG_KK, S("Цветы Алматы"));
	assert_true(hub_str_startswith(d, "Сәлеметсіз бе! Бұл «Цветы Алматы» компаниясының "
					  "ЖИ-көмекшісі."));
	assert_int_equal(hub_ai_lang_detect(d), HUB_AI_LANG_KK);
	d = hub_ai_disclosure_text(&pool, NULL, HUB_AI_LANG_EN, S("Bayge Flowers"));
	assert_true(hub_str_startswith(d, "Hello! This is Bayge Flowers's AI assistant."));
	assert_non_null(strstr(d.p, "talk to a person"));
	d = hub_ai_disclosure_text(&pool, NULL, HUB_AI_LANG_NONE, S("X"));
	assert_true(hub_str_startswith(d, "Hello! This is X's AI assistant."));
	assert_int_equal(strlen(d.p), d.len);

	/* no name: a sentence without one */
	d = hub_ai_disclosure_text(&pool, NULL, HUB_AI_LANG_RU, S(" \n "));
	assert_true(hub_str_startswith(d, "Здравствуйте! Это ИИ-ассистент компании. Я"));
	assert_null(strstr(d.p, "{company}"));
	assert_null(strstr(d.p, "«»"));

	/* the name is data, never a format */
	d = hub_ai_disclosure_text(&pool, NULL, HUB_AI_LANG_EN, S("  %s%n\r\nEvil\x01" "Co  "));
	assert_true(hub_str_startswith(d, "Hello! This is %s%n  Evil Co's AI assistant."));

	/* configured texts, the placeholder wherever it is; the others keep the default */
	cfg.text[HUB_AI_LANG_RU] = S("{company}: с вами говорит бот. {company} на связи. 100%");
	d = hub_ai_disclosure_text(&pool, &cfg, HUB_AI_LANG_RU, S("ТОО «Ромашка»"));
	assert_string_equal(d.p, "ТОО «Ромашка»: с вами говорит бот. ТОО «Ромашка» на связи. "
				 "100%");
	d = hub_ai_disclosure_text(&pool, &cfg, HUB_AI_LANG_RU, HUB_STR_NULL);
	assert_string_equal(d.p, ": с вами говорит бот.  на связи. 100%");
	d = hub_ai_disclosure_text(&pool, &cfg, HUB_AI_LANG_KK, S("Ромашка"));
	assert_true(hub_str_startswith(d, "Сәлеметсіз бе! Бұл «Ромашка»"));

	/* a long name is cut on a character boundary */
	{
		char name[400] = { 0 };

		for (int i = 0; i < 150; i++)
			strcat(name, "ж");
		d = hub_ai_disclosure_text(&pool, NULL, HUB_AI_LANG_EN, hub_str_from(name));
		assert_true(hub_utf8_valid(d.p, d.len));
		assert_non_null(strstr(d.p, "жж's AI assistant"));
		assert_true(d.len < strlen(hub_ai_disclosure_default(HUB_AI_LANG_EN)) +
					     HUB_AI_COMPANY_MAX);
	}
	assert_non_null(strstr(hub_ai_disclosure_default(HUB_AI_LANG_KK), "{company}"));
	hub_pool_release(&pool);
}

static void test_handoff(void **state)
{
	static const char *const yes[] = {
		"оператор", "Позовите оператора", "дайте оператору трубку", "с менеджером",
		"МЕНЕДЖЕРА!!!", "хочу поговорить с человеком", "нужен живой человек",
		"Дайте живого", "Маманға қосыңызшы", "адаммен сөйлескім келеді",
		"Операторға жалғаңыз", "менеджерлермен", "Operator!", "HUMAN please",
		"I want to talk to an agent", "real humans?", "оператор-консультант",
		"Ёперный оператор", "Адам керек", "человека позовите",
	};
	static const char *const no[] = {
		"человечество", "человечный подход", "agenda for today", "travel agency",
		"humanity", "the humane society", "менеджмент", "операционная", "оперативно",
		"столик на 4 человека", "нас будет пять человек", "неше адам сыяды?",
		"5 адамға", "я живу в Алматы", "адамант", "hello", "маманя", "оператив",
		"Номер 8 701 123 45 67", "", "человеческий фактор", "reagent", "agentic",
	};
	static const struct hub_str phrases[] = { S("позовите сотрудника"), S("сотрудник*"),
						  S("  Колл-центр  "), S(""), S("*") };

	(void)state;
	for (size_t i = 0; i < HUB_ARRAY_SIZE(yes); i++)
		if (!hub_ai_handoff_asked(hub_str_from(yes[i]), NULL, 0))
			fail_msg("\"%s\" should ask for a person", yes[i]);
	for (size_t i = 0; i < HUB_ARRAY_SIZE(no); i++)
		if (hub_ai_handoff_asked(hub_str_from(no[i]), NULL, 0))
			fail_msg("\"%s\" should not ask for a person", no[i]);
	/* configured phrases: whole words; "*" lets the last one go on */
	assert_true(hub_ai_handoff_asked(S("Позовите, сотрудника!"), phrases, 1));
	assert_false(hub_ai_handoff_asked(S("позовите сотрудникам"), phrases, 1));
	assert_true(hub_ai_handoff_asked(S("Где СОТРУДНИКИ?"), phrases, 2));
	assert_false(hub_ai_handoff_asked(S("сотрудничество"), phrases + 1, 1));
	assert_false(hub_ai_handoff_asked(S("соедините с колл центром"), phrases + 2, 1));
	assert_true(hub_ai_handoff_asked(S("соедините с колл-центр"), phrases + 2, 1));
	assert_true(hub_ai_handoff_asked(S("КОЛЛ ЦЕНТР"), phrases + 2, 1));
	assert_false(hub_ai_handoff_asked(S("что угодно"), phrases + 3, 2)); /* empty, lone * */
	assert_false(hub_ai_handoff_asked(S("привет"), phrases, HUB_ARRAY_SIZE(phrases)));
}

static void test_reply_shape(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_str out;

	(void)state;
	assert_int_equal(hub_ai_reply_shape(&pool, S("\n  Доставка завтра.\xc2\xa0\n"), 0,
					    HUB_STR_NULL, &out), 0);
	assert_string_equal(out.p, "Доставка завтра.");
	assert_int_equal(hub_ai_reply_shape(&pool, S("\xef\xbb\xbfОтвет\xe2\x80\x8b"), 0,
					    S("Здравствуйте! Это ИИ-ассистент.\n"), &out), 0);
	assert_string_equal(out.p, "Здравствуйте! Это ИИ-ассистент.\n\nОтвет");
	/* a cap: at a word end, with an ellipsis, within the cap */
	assert_int_equal(hub_ai_reply_shape(&pool, S("Доставка будет завтра утром до десяти"),
					    20, HUB_STR_NULL, &out), 0);
	assert_string_equal(out.p, "Доставка будет…");
	assert_true(hub_utf8_units(out, HUB_TEXT_UTF16) <= 20);
	/* never inside a character: an emoji is two units */
	assert_int_equal(hub_ai_reply_shape(&pool, S("🌷🌷🌷🌷🌷"), 6, HUB_STR_NULL, &out), 0);
	assert_string_equal(out.p, "🌷🌷…");
	assert_int_equal(hub_ai_reply_shape(&pool, S("🌷🌷"), 2, HUB_STR_NULL, &out), 0);
	assert_string_equal(out.p, "…");
	/* exactly at the cap: whole */
	assert_int_equal(hub_ai_reply_shape(&pool, S("абвгд"), 5, S("D"), &out), 0);
	assert_string_equal(out.p, "D\n\nабвгд");
	assert_int_equal(hub_ai_reply_shape(&pool, S(" \n\t\xe3\x80\x80"), 0, S("D"), &out),
			 -ENODATA);
	assert_int_equal(out.len, 0);
	assert_int_equal(hub_ai_reply_shape(&pool, HUB_STR_NULL, 0, HUB_STR_NULL, &out),
			 -ENODATA);
	hub_pool_release(&pool);
}

/* ---- what the hub adds: seed + pseudonymize + guard, restore (no assertion) ---- */

static int cmp_ns(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void test_time_for_20_turns(void **state)
{
	struct hub_anon *anon = *state;
	struct hub_ai_prompt p = conversation();
	enum { RUNS = 300 };
	static int64_t total[RUNS], build[RUNS];
	const char *answer = "[NAME_1], доставим сегодня после 18:00 на [PHONE_2]. Чек придёт "
			     "на [EMAIL_1]. Спасибо, что выбрали нас!";

	for (int i = 0; i < RUNS; i++) {
		struct hub_pool pool = HUB_POOL_INIT;
		struct hub_ai_exchange *ex = NULL;
		struct hub_ai_http_req req;
		struct hub_ai_answer a;
		struct hub_str out;
		struct hub_buf body = HUB_BUF_INIT;
		int64_t t0, t1;

		/* the answer as the provider sends it */
		hub_buf_adds(&body, "{\"choices\":[{\"message\":{\"content\":");
		hub_json_add_str(&body, hub_str_from(answer));
		hub_buf_adds(&body, "},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":"
				    "900,\"completion_tokens\":30}}");
		t0 = now_ns();
		assert_int_equal(hub_ai_exchange_new(anon, &pool, &p, &ex, &req, NULL), 0);
		t1 = now_ns();
		hub_ai_answer_parse(&pool, 200, HUB_STR_NULL, hub_buf_str(&body), HUB_STR_NULL, &a);
		hub_ai_exchange_restore(ex, &pool, a.content, &out, NULL);
		assert_int_equal(hub_ai_reply_shape(&pool, out, 1000, HUB_STR_NULL, &out), 0);
		total[i] = now_ns() - t0;
		build[i] = t1 - t0;
		hub_ai_exchange_free(ex);
		hub_buf_release(&body);
		hub_pool_release(&pool);
	}
	qsort(total, RUNS, sizeof(total[0]), cmp_ns);
	qsort(build, RUNS, sizeof(build[0]), cmp_ns);
	printf("# 20-turn history, %d runs: pseudonymize+guard p50 %.3f ms p99 %.3f ms; "
	       "with parse+restore+shape p50 %.3f ms p99 %.3f ms (information only)\n", RUNS,
	       build[RUNS / 2] / 1e6, build[RUNS * 99 / 100] / 1e6, total[RUNS / 2] / 1e6,
	       total[RUNS * 99 / 100] / 1e6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conversation_leaves_nothing_personal),
		cmocka_unit_test(test_conversation_shape_and_same_markers),
		cmocka_unit_test(test_restore_known_and_unknown),
		cmocka_unit_test(test_guard_blocks_failed_pseudonymization),
		cmocka_unit_test(test_seeded_values_are_hidden),
		cmocka_unit_test(test_check_reads_escapes),
		cmocka_unit_test(test_body_escaping),
		cmocka_unit_test(test_request_settings),
		cmocka_unit_test(test_answer_ok),
		cmocka_unit_test(test_answer_without_text),
		cmocka_unit_test(test_answer_errors),
		cmocka_unit_test(test_language),
		cmocka_unit_test(test_disclosure),
		cmocka_unit_test(test_handoff),
		cmocka_unit_test(test_reply_shape),
		cmocka_unit_test(test_time_for_20_turns),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
