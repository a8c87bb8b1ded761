/* bench/anon.c - `make bench-anon`: the anonymizer's speed on one core, in MB/s and
 * messages/s, with every detector on, over two sets: the chat lines of the evaluation
 * corpora (tests/anon/corpus.jsonl and hard.jsonl: what customers write, most with personal
 * data, conversations of 10 lines through one vault), and 10 distinct 100-byte messages
 * (Russian, Kazakh, English, mixed; about half with personal data). Beside each, over the
 * same bytes in the same run, a reference pass (UTF-8 validation and case folding), and the
 * ratio, since the machine is noisy (the three are interleaved round by round, so the load
 * weighs on each alike, and timed in the thread's CPU time). Not part of `make test`;
 * nothing here is asserted.
 * usage: anon [--seconds S] [CORPUS.jsonl ...]   (each measurement runs about S seconds,
 * default 2; the corpora default to tests/anon/corpus.jsonl and tests/anon/hard.jsonl)
 *        anon --rounds N [CORPUS.jsonl ...]      (a fixed work for a profiler or an
 * instruction count, whatever the load: N rounds of pseudonymization over the corpus lines
 * alone, no timing; e.g. `valgrind --tool=callgrind --toggle-collect=round_anon`
 * build/bench/anon --rounds 3` gives instructions per byte) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anonymizer/anon.h"
#include "anonymizer/anon_vault.h"
#include "lib/json.h"
#include "lib/utf8.h"

#define MSG_LEN 100
#define CONV_LEN 10 /* corpus lines per conversation (one vault) */

/* Messages measured together. */
struct set {
	const char *name;
	struct hub_str *msgs;
	size_t n, bytes;
	size_t conv; /* messages per vault */
};

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

/* The CPU time of this thread: on a shared machine the time spent waiting for a core is
 * not the anonymizer's, and it falls unevenly on short rounds. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void set_add(struct set *s, struct hub_pool *pool, struct hub_str m)
{
	if ((s->n & (s->n - 1)) == 0 || s->n == 0) {
		size_t cap = s->n ? 2 * s->n : 16;
		struct hub_str *grown = hub_pool_alloc(pool, cap * sizeof(*grown));

		if (s->n)
			memcpy(grown, s->msgs, s->n * sizeof(*grown));
		s->msgs = grown;
	}
	s->msgs[s->n++] = m;
	s->bytes += m.len;
}

/* The templates as messages of exactly MSG_LEN bytes where they allow (cut at a
 * character, padded with spaces). */
static void templates_set(struct set *s, struct hub_pool *pool)
{
	*s = (struct set){ .name = "10 distinct 100-byte messages", .conv = 10 };
	for (size_t i = 0; i < HUB_ARRAY_SIZE(templates); i++) {
		size_t l = strlen(templates[i]);
		char *m = hub_pool_alloc(pool, MSG_LEN + 1);

		if (l > MSG_LEN) {
			l = MSG_LEN;
			while (l && ((unsigned char)templates[i][l] & 0xc0) == 0x80)
				l--;
		}
		memcpy(m, templates[i], l);
		memset(m + l, ' ', MSG_LEN - l);
		set_add(s, pool, (struct hub_str){ m, MSG_LEN });
	}
}

/* The "text" of each line of a JSONL corpus. 0, or -1 with a message. */
static int corpus_add(struct set *s, struct hub_pool *pool, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0;

	if (!f) {
		fprintf(stderr, "anon: %s: cannot open\n", path);
		return -1;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		char *copy = hub_pool_alloc(pool, (size_t)len);
		struct hub_str text = { copy, (size_t)len };
		struct hub_json_doc doc;
		struct hub_err err = HUB_ERR_INIT;
		struct hub_str t;

		lineno++;
		memcpy(copy, line, (size_t)len);
		if (hub_json_parse(pool, text, 4096, &doc, &err) < 0 ||
		    hub_json_string(&doc, hub_json_get(&doc, 0, "text"), pool, &t) < 0) {
			fprintf(stderr, "anon: %s:%d: no \"text\"\n", path, lineno);
			free(line);
			fclose(f);
			return -1;
		}
		set_add(s, pool, t);
	}
	free(line);
	fclose(f);
	return 0;
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

/* One conversation: messages [from, to) of s pseudonymized with one vault; adds the output
 * bytes to *sink. 0 or -1. */
static int conversation(struct hub_anon *anon, const struct set *s, size_t from, size_t to,
			struct hub_buf *out, size_t *sink)
{
	struct hub_anon_vault *v;

	if (hub_anon_vault_new(anon, &v) < 0)
		return -1;
	for (size_t i = from; i < to; i++) {
		struct hub_pool pool = HUB_POOL_INIT;
		int ret;

		hub_buf_reset(out);
		ret = hub_anon_vault_pseudonymize(v, &pool, s->msgs[i], out, NULL, NULL);
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

/* One round over s: its conversations. */
__attribute__((noinline)) static int round_anon(struct hub_anon *anon, const struct set *s,
						 struct hub_buf *out,
		      size_t *sink)
{
	for (size_t i = 0; i < s->n; i += s->conv)
		if (conversation(anon, s, i, i + s->conv < s->n ? i + s->conv : s->n, out, sink) < 0)
			return -1;
	return 0;
}

static int round_detect(struct hub_anon *anon, const struct set *s, size_t *sink)
{
	for (size_t i = 0; i < s->n; i++) {
		struct hub_pool pool = HUB_POOL_INIT;
		struct hub_anon_spans spans;

		if (hub_anon_detect(anon, NULL, &pool, s->msgs[i], &spans) < 0)
			return -1;
		*sink += spans.n;
		hub_pool_release(&pool);
	}
	return 0;
}

static void round_reference(const struct set *s, char *folded, size_t *sink)
{
	for (size_t i = 0; i < s->n; i++)
		*sink += reference(s->msgs[i].p, s->msgs[i].len, folded);
}

/* Measures s: rounds for about `seconds` each of pseudonymization, detection and the
 * reference; prints them. 0 or -1. */
static int measure(struct hub_anon *anon, const struct set *s, double seconds, char *folded)
{
	struct hub_buf out = HUB_BUF_INIT;
	double t0, t_anon, t_detect, t_ref;
	long iters = 0, done;
	size_t sink = 0;
	int ret = -1;

	t0 = now();
	while (now() - t0 < seconds / 4) {
		if (round_anon(anon, s, &out, &sink) < 0)
			goto out;
		iters++;
	}
	iters *= 4;
	/* The three interleaved round by round, so that the load of a shared machine weighs
	 * on each alike and their ratios cancel it (measured one after the other, seconds
	 * apart, the ratios moved with the load by a factor of two). */
	t_anon = t_detect = t_ref = 0;
	for (done = 0; done < iters; done++) {
		double t1, t2, t3;

		t0 = now();
		if (round_anon(anon, s, &out, &sink) < 0)
			goto out;
		t1 = now();
		if (round_detect(anon, s, &sink) < 0)
			goto out;
		t2 = now();
		round_reference(s, folded, &sink);
		t3 = now();
		t_anon += t1 - t0;
		t_detect += t2 - t1;
		t_ref += t3 - t2;
	}

	double mb = (double)s->bytes * (double)iters / 1e6, nm = (double)s->n * (double)iters;

	printf("%s: %zu messages, %.0f bytes on average, %zu a vault; %.0f processed (%.1f MB)\n",
	       s->name, s->n, (double)s->bytes / (double)s->n, s->conv, nm, mb);
	printf("  pseudonymize (all detectors, vault): %8.1f MB/s %10.0f messages/s\n",
	       mb / t_anon, nm / t_anon);
	printf("  detect only (all detectors):         %8.1f MB/s %10.0f messages/s\n",
	       mb / t_detect, nm / t_detect);
	printf("  reference (UTF-8 validate + fold):   %8.1f MB/s %10.0f messages/s\n",
	       mb / t_ref, nm / t_ref);
	printf("  ratio reference/pseudonymize %.1f, reference/detect %.1f (checksum %zu)\n",
	       t_anon / t_ref, t_detect / t_ref, sink % 1000);
	ret = 0;
out:
	hub_buf_release(&out);
	return ret;
}

int main(int argc, char **argv)
{
	static const char *const corpora[] = { "tests/anon/corpus.jsonl",
					       "tests/anon/hard.jsonl" };
	struct hub_pool pool = HUB_POOL_INIT;
	struct set lines = { .name = "corpus chat lines", .conv = CONV_LEN }, tpl;
	double seconds = 2, t0;
	long rounds = 0;
	struct hub_anon *anon;
	char *folded;
	int i = 1, ret = 1;
	size_t longest = MSG_LEN;

	if (argc >= 3 && strcmp(argv[1], "--seconds") == 0) {
		seconds = atof(argv[2]);
		i = 3;
	} else if (argc >= 3 && strcmp(argv[1], "--rounds") == 0) {
		rounds = atol(argv[2]);
		i = rounds > 0 ? 3 : argc + 1;
	}
	if (seconds <= 0 || i > argc || (i < argc && argv[i][0] == '-')) {
		fprintf(stderr, "usage: anon [--seconds S | --rounds N] [CORPUS.jsonl ...]\n");
		return 2;
	}
	if (i == argc) {
		argv = (char **)corpora;
		argc = HUB_ARRAY_SIZE(corpora);
		i = 0;
	}
	for (; i < argc; i++)
		if (corpus_add(&lines, &pool, argv[i]) < 0)
			goto out;
	if (!lines.n) {
		fprintf(stderr, "anon: the corpora hold no line\n");
		goto out;
	}
	for (size_t k = 0; k < lines.n; k++)
		longest = lines.msgs[k].len > longest ? lines.msgs[k].len : longest;
	folded = hub_pool_alloc(&pool, 4 * longest);
	templates_set(&tpl, &pool);
	t0 = now();
	if (hub_anon_new(&anon) < 0)
		goto out;
	printf("lexicon: %zu keys built in %.0f ms\n", hub_anon_size(anon), (now() - t0) * 1e3);
	if (rounds) {
		struct hub_buf out = HUB_BUF_INIT;
		size_t sink = 0;

		ret = 0;
		for (long r = 0; r < rounds && !ret; r++)
			ret = round_anon(anon, &lines, &out, &sink) < 0;
		printf("%s: %ld rounds of pseudonymization, %zu bytes (checksum %zu)\n",
		       lines.name, rounds, lines.bytes * (size_t)rounds, sink % 1000);
		hub_buf_release(&out);
	} else {
		ret = measure(anon, &lines, seconds, folded) < 0 ||
		      measure(anon, &tpl, seconds, folded) < 0;
	}
	hub_anon_free(anon);
out:
	hub_pool_release(&pool);
	return ret;
}
