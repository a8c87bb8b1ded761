/* bench/anon.c - `make bench-anon`: the anonymizer's speed on one core, in MB/s and
 * messages/s over 100-byte chat messages (Russian, Kazakh, English, mixed; about half with
 * personal data), with every detector on. Beside it, over the same bytes in the same run,
 * a reference pass (UTF-8 validation and case folding), and the ratio, since the machine is
 * noisy. Not part of `make test`; nothing here is asserted.
 * usage: anon [--seconds S]   (each measurement runs about S seconds, default 2) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anonymizer/anon.h"
#include "anonymizer/anon_vault.h"
#include "lib/utf8.h"

#define MSG_LEN 100

static const char *const templates[] = {
	"Здравствуйте, меня зовут Нурлан, мой номер +7 701 123 45 67, перезвоните пожалуйста.",
	"Сәлем! Менің атым Айгерім, тапсырыс 45871 бойынша жазып тұрмын, қашан жеткізесіздер?",
	"Hi, my name is John Smith, order #45821 has not arrived yet, my email is john@mail.com",
	"Цена 125 000 тг, доставка по Алматы 12.05 в 14:30, размер 42, два штуки, самовывоз?",
	"ИИН 900101300017, карта 4111 1111 1111 1111, IBAN KZ86125KZT5004100100, Иванова Анна",
	"можно оплатить kaspi рассрочкой на 12 месяцев? iphone 15 pro 256gb есть в наличии",
	"Передайте Марине что я перезвоню завтра после обеда, номер тот же 8 (777) 250-00-00",
	"ok рахмет, заказ 6977889 алдым, бәрі жақсы, келесі аптада тағы тапсырыс беремін",
	"please call me back at +44 20 7946 0958 or write to anna.k@company.kz, thanks a lot",
	"Добрый день! Подскажите, работаете ли вы в субботу и воскресенье? Адрес ул Абая 150",
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Messages of exactly MSG_LEN bytes where the template allows (cut at a character). */
static size_t make_messages(char msgs[][MSG_LEN + 1], size_t *lens)
{
	size_t n = HUB_ARRAY_SIZE(templates);

	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(templates[i]);

		if (l > MSG_LEN) {
			l = MSG_LEN;
			while (l && ((unsigned char)templates[i][l] & 0xc0) == 0x80)
				l--;
		}
		memcpy(msgs[i], templates[i], l);
		while (l < MSG_LEN)
			msgs[i][l++] = ' ';
		msgs[i][l] = 0;
		lens[i] = l;
	}
	return n;
}

/* The reference: validate and case-fold (ASCII and Cyrillic) into out. */
static size_t reference(const char *p, size_t n, char *out)
{
	size_t i = 0, o = 0;

	while (i < n) {
		uint32_t cp;
		size_t l = hub_utf8_decode((const unsigned char *)p + i, n - i, &cp);

		if (!l)
			return 0;
		i += l;
		if (cp >= 'A' && cp <= 'Z')
			cp += 32;
		else if (cp >= 0x410 && cp <= 0x42f)
			cp += 0x20;
		o += hub_utf8_encode(cp, out + o);
	}
	return o;
}

/* One conversation: every message pseudonymized with one vault; adds the output bytes to
 * *sink. 0 or -1. */
static int conversation(struct hub_anon *anon, char (*msgs)[MSG_LEN + 1], const size_t *lens,
			size_t nmsg, struct hub_buf *out, size_t *sink)
{
	struct hub_anon_vault *v;

	if (hub_anon_vault_new(anon, &v) < 0)
		return -1;
	for (size_t i = 0; i < nmsg; i++) {
		struct hub_pool pool = HUB_POOL_INIT;
		struct hub_str m = { msgs[i], lens[i] };
		int ret;

		hub_buf_reset(out);
		ret = hub_anon_vault_pseudonymize(v, &pool, m, out, NULL, NULL);
		hub_pool_release(&pool);
		if (ret < 0) {
			hub_anon_vault_free(v);
			return -1;
		}
		*sink += out->len;
	}
	hub_anon_vault_free(v);
	return 0;
}

int main(int argc, char **argv)
{
	char msgs[HUB_ARRAY_SIZE(templates)][MSG_LEN + 1], folded[4 * MSG_LEN];
	size_t lens[HUB_ARRAY_SIZE(templates)], nmsg, total = 0, sink = 0;
	double seconds = 2, t0, t_anon, t_detect, t_ref;
	long iters = 0, done;
	struct hub_anon *anon;
	struct hub_buf out = HUB_BUF_INIT;

	if (argc == 3 && strcmp(argv[1], "--seconds") == 0)
		seconds = atof(argv[2]);
	if (seconds <= 0 || (argc != 1 && argc != 3)) {
		fprintf(stderr, "usage: anon [--seconds S]\n");
		return 2;
	}
	t0 = now();
	if (hub_anon_new(&anon) < 0)
		return 1;
	printf("lexicon: %zu keys built in %.0f ms\n", hub_anon_size(anon), (now() - t0) * 1e3);
	nmsg = make_messages(msgs, lens);
	for (size_t i = 0; i < nmsg; i++)
		total += lens[i];

	/* calibrate: rounds of all messages for about `seconds` of pseudonymization */
	t0 = now();
	while (now() - t0 < seconds / 4) {
		if (conversation(anon, msgs, lens, nmsg, &out, &sink) < 0)
			return 1;
		iters++;
	}
	iters *= 4;

	/* pseudonymize: one vault per conversation of all the messages */
	t0 = now();
	for (done = 0; done < iters; done++)
		if (conversation(anon, msgs, lens, nmsg, &out, &sink) < 0)
			return 1;
	t_anon = now() - t0;

	/* detect only, no vault */
	t0 = now();
	for (done = 0; done < iters; done++) {
		for (size_t i = 0; i < nmsg; i++) {
			struct hub_pool pool = HUB_POOL_INIT;
			struct hub_anon_spans spans;

			if (hub_anon_detect(anon, NULL, &pool, (struct hub_str){ msgs[i], lens[i] },
					    &spans) < 0)
				return 1;
			sink += spans.n;
			hub_pool_release(&pool);
		}
	}
	t_detect = now() - t0;

	/* the reference over the same bytes */
	t0 = now();
	for (done = 0; done < iters; done++)
		for (size_t i = 0; i < nmsg; i++)
			sink += reference(msgs[i], lens[i], folded);
	t_ref = now() - t0;

	{
		double mb = (double)total * iters / 1e6, nm = (double)nmsg * iters;

		printf("messages: %zu distinct of %d bytes, %.0f processed (%.1f MB) each\n", nmsg,
		       MSG_LEN, nm, mb);
		printf("pseudonymize (all detectors, vault): %8.1f MB/s %10.0f messages/s\n",
		       mb / t_anon, nm / t_anon);
		printf("detect only (all detectors):         %8.1f MB/s %10.0f messages/s\n",
		       mb / t_detect, nm / t_detect);
		printf("reference (UTF-8 validate + fold):   %8.1f MB/s %10.0f messages/s\n",
		       mb / t_ref, nm / t_ref);
		printf("ratio reference/pseudonymize %.1f, reference/detect %.1f (checksum %zu)\n",
		       t_anon / t_ref, t_detect / t_ref, sink % 1000);
	}
	hub_buf_release(&out);
	hub_anon_free(anon);
	return 0;
}
