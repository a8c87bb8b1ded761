/* tests/unit/test_anon_props.c - the fuzz target's properties (tests/fuzz/anon_check.h) over
 * conversations built from the pieces the detectors decide by: names and their inflections,
 * cues, street and brand words, house numbers, phones, IIN, cards, IBANs, e-mails, markers,
 * glued together or apart, in any case. Where libFuzzer mutates bytes, this puts the
 * pieces next to each other that make a detector change its mind; a seeded generator, so
 * a failure prints the text that shows it again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "anonymizer/anon.h"
#include "lib/buf.h"
#include "tests/fuzz/anon_check.h"

/* more, or another seed, by hand: -DCONVERSATIONS=1000000 -DSEED=7 */
#ifndef CONVERSATIONS
#define CONVERSATIONS 200000
#endif
#ifndef SEED
#define SEED 0x9e3779b97f4a7c15ull
#endif

static const char *const pieces[] = {
	/* names, inflected, transliterated, Kazakh */
	"Нурлан", "нурлан", "Нурлана", "Нурланом", "НУРЛАН", "Nurlan", "Марина", "Марине",
	"марину", "Айгерим", "Айгерімге", "Aigerim", "Иванов", "Иванова", "Ivanov", "John",
	"Smith", "Анна", "Роза", "роза", "Ерлан", "Yerlan", "Абая", "Абай", "Бухар", "жырау",
	"Петрович", "Сергеевна", "улы", "Қанат", "Nur", "Асель", "Assel", "Жанна", "Zhanna",
	/* cues and function words */
	"меня зовут", "это", "я", "my name is", "I'm", "менің атым", "деген", "Здравствуйте",
	"спасибо", "для", "от", "и", "на", "в", "ул", "пл", "мкр", "көшесі", "street", "ТОО",
	/* places, brands, months, units */
	"Алматы", "Астана", "Samsung", "Galaxy", "Lada", "Granta", "Kaspi", "мая", "May",
	"тг", "шт", "kg", "заказ", "order", "#", "№", "код",
	/* numbers */
	"15", "150", "86/4", "6a", "6а", "12", "45871", "125 000", "+7 701 123 45 67",
	"87011234567", "8 (701) 123-45-67", "701 123 45 67", "7011234567", "+7(701)1234567",
	"123-45-67", "+44 20 7946 0958", "900101300017", "9001 0130 0017", "900101300018",
	"4111 1111 1111 1111", "4111111111111111", "KZ86125KZT5004100100",
	"KZ86 125K ZT50 0410 0100", "12.05", "14:30",
	/* e-mails and usernames */
	"ivan@mail.ru", "Nurlan@mail.kz", "anna.k@company.kz", "a@b.kz", "@nurlan_77",
	/* more context: Kazakh, after-cues, titles, order and unit words */
	"ауданы", "облысы", "по имени", "Mr", "доктор", "ИИН", "IBAN", "тел", "карта",
	"ne", "а", "кв", "дом", "Абая көшесі", "ТОО Нурлан", "Samsung Galaxy",
	/* marker-like text */
	"[NAME_1]", "[PHONE_1]", "PHONE_2", "[Name 1]", "[EMAIL_1]", "name_3",
};

static const char *const glue[] = { " ", " ", " ", ", ", ". ", " - ", "-", "", "\n", ": ",
				    "  ", "(", ")", "!" };

/* xorshift64*: the same conversations on every run */
static uint64_t next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void add_piece(struct hub_buf *b, const char *p, uint64_t r)
{
	size_t at = b->len;

	hub_buf_adds(b, p);
	if (r % 7 > 1)
		return;
	/* now and then its ASCII letters all upper or all lower case, as people type */
	for (size_t i = at; i < b->len; i++)
		if ((b->p[i] | 0x20) >= 'a' && (b->p[i] | 0x20) <= 'z')
			b->p[i] = r % 7 ? (char)(b->p[i] | 0x20) : (char)(b->p[i] & ~0x20);
}

/* A conversation of 1-4 messages of 1-10 pieces; maybe a known name on the first line. */
static void conversation(struct hub_buf *b, uint64_t *seed)
{
	unsigned msgs = 1 + next(seed) % 4;

	hub_buf_reset(b);
	if (next(seed) % 3 == 0) {
		add_piece(b, pieces[next(seed) % HUB_ARRAY_SIZE(pieces)], next(seed));
		hub_buf_adds(b, "\n");
	}
	for (unsigned m = 0; m < msgs; m++) {
		unsigned n = 1 + next(seed) % 10;

		if (m)
			hub_buf_adds(b, "\f");
		for (unsigned i = 0; i < n; i++) {
			if (i)
				hub_buf_adds(b, glue[next(seed) % HUB_ARRAY_SIZE(glue)]);
			add_piece(b, pieces[next(seed) % HUB_ARRAY_SIZE(pieces)], next(seed));
		}
	}
}

static void test_generated_conversations_keep_the_properties(void **state)
{
	struct hub_anon *anon;
	struct hub_buf b = HUB_BUF_INIT;
	uint64_t seed = SEED;

	(void)state;
	assert_int_equal(hub_anon_new(&anon), 0);
	for (int i = 0; i < CONVERSATIONS; i++) {
		const char *why;

		conversation(&b, &seed);
		why = anon_check(anon, b.p, b.len);
		if (why) {
			for (size_t j = 0; j < b.len; j++)
				if (b.p[j] == '\f')
					b.p[j] = '|';
			fail_msg("conversation %d: %s:\n%s", i, why, b.p);
		}
	}
	hub_buf_release(&b);
	hub_anon_free(anon);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generated_conversations_keep_the_properties),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
