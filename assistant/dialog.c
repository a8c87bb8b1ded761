/* assistant/dialog.c - see dialog.h; also the letters of ai_internal.h. Letters are
 * lower-cased here for Latin, Cyrillic and the Kazakh letters only: lib/utf8 has no case
 * mapping, and the anonymizer's keys transliterate (оператор and operator would meet)
 * behind a header other modules may not include. */
#include "assistant/dialog.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "assistant/ai_internal.h"
#include "lib/utf8.h"

const char *hub_ai_lang_code(enum hub_ai_lang lang)
{
	switch (lang) {
	case HUB_AI_LANG_RU: return "ru";
	case HUB_AI_LANG_KK: return "kk";
	case HUB_AI_LANG_EN: return "en";
	default: return "";
	}
}

enum hub_ai_lang hub_ai_lang_from_code(struct hub_str code)
{
	for (int l = HUB_AI_LANG_RU; l < HUB_AI_NLANGS; l++)
		if (hub_str_caseeqs(code, hub_ai_lang_code((enum hub_ai_lang)l)))
			return (enum hub_ai_lang)l;
	return HUB_AI_LANG_NONE;
}

bool hub_ai__is_letter(uint32_t cp)
{
	return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') ||
	       (cp >= 0xc0 && cp <= 0x24f && cp != 0xd7 && cp != 0xf7) ||
	       (cp >= 0x400 && cp <= 0x4ff && !(cp >= 0x482 && cp <= 0x489));
}

static bool is_cyrillic(uint32_t cp)
{
	return cp >= 0x400 && cp <= 0x4ff;
}

/* Cyrillic: А-Я and Ѐ-Џ have fixed offsets; from U+0460 upper and lower case alternate,
 * the upper one even, except in U+04C1..U+04CE where it is odd. */
uint32_t hub_ai__lower_cp(uint32_t cp)
{
	if (cp >= 'A' && cp <= 'Z')
		return cp + 32;
	if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7)
		return cp + 32;
	if (cp >= 0x410 && cp <= 0x42f)
		return cp + 0x20;
	if (cp >= 0x400 && cp <= 0x40f)
		cp += 0x50;
	else if (cp >= 0x460 && cp <= 0x4bf && !(cp & 1))
		cp++;
	else if (cp >= 0x4c1 && cp <= 0x4ce && (cp & 1))
		cp++;
	else if (cp >= 0x4d0 && cp <= 0x4ff && !(cp & 1))
		cp++;
	return cp == 0x451 ? 0x435 : cp;
}

/* ә ғ қ ң ө ұ ү һ і, lower case. */
static bool is_kazakh_only(uint32_t lower)
{
	switch (lower) {
	case 0x4d9: case 0x493: case 0x49b: case 0x4a3: case 0x4e9:
	case 0x4b1: case 0x4af: case 0x4bb: case 0x456:
		return true;
	}
	return false;
}

/* The code point at t.p[*i], moving *i past it; an invalid byte is skipped as U+FFFD. */
static uint32_t next_cp(struct hub_str t, size_t *i)
{
	uint32_t cp;
	size_t l = hub_utf8_decode((const unsigned char *)t.p + *i, t.len - *i, &cp);

	if (!l) {
		(*i)++;
		return 0xfffd;
	}
	*i += l;
	return cp;
}

enum hub_ai_lang hub_ai_lang_detect(struct hub_str text)
{
	size_t cyr = 0, lat = 0, i = 0;
	bool kazakh = false;

	while (i < text.len) {
		uint32_t cp = next_cp(text, &i);

		if (!hub_ai__is_letter(cp))
			continue;
		if (is_cyrillic(cp)) {
			cyr++;
			kazakh |= is_kazakh_only(hub_ai__lower_cp(cp));
		} else {
			lat++;
		}
	}
	if (!cyr && !lat)
		return HUB_AI_LANG_NONE;
	if (cyr >= lat)
		return kazakh ? HUB_AI_LANG_KK : HUB_AI_LANG_RU;
	return HUB_AI_LANG_EN;
}

enum hub_ai_lang hub_ai_lang_of_texts(const struct hub_str *texts, size_t n)
{
	while (n--) {
		enum hub_ai_lang l = hub_ai_lang_detect(texts[n]);

		if (l != HUB_AI_LANG_NONE)
			return l;
	}
	return HUB_AI_LANG_EN;
}

/* ---- disclosure ---- */

static const char *const defaults[HUB_AI_NLANGS] = {
	[HUB_AI_LANG_RU] = "Здравствуйте! Это ИИ-ассистент компании «{company}». Я отвечаю "
			   "автоматически и могу ошибаться. Если захотите поговорить с "
			   "сотрудником, напишите «оператор» — вам ответит живой человек.",
	[HUB_AI_LANG_KK] = "Сәлеметсіз бе! Бұл «{company}» компаниясының ЖИ-көмекшісі. Мен "
			   "автоматты түрде жауап беремін, сондықтан қателесуім мүмкін. "
			   "Қызметкермен сөйлескіңіз келсе, «оператор» деп жазыңыз — сізге "
			   "маман жауап береді.",
	[HUB_AI_LANG_EN] = "Hello! This is {company}'s AI assistant. I answer automatically "
			   "and can make mistakes. If you would like to talk to a person, write "
			   "\"operator\" and a member of our team will take over.",
};

/* The same without a company name. */
static const char *const anonymous[HUB_AI_NLANGS] = {
	[HUB_AI_LANG_RU] = "Здравствуйте! Это ИИ-ассистент компании. Я отвечаю "
			   "автоматически и могу ошибаться. Если захотите поговорить с "
			   "сотрудником, напишите «оператор» — вам ответит живой человек.",
	[HUB_AI_LANG_KK] = "Сәлеметсіз бе! Бұл компанияның ЖИ-көмекшісі. Мен "
			   "автоматты түрде жауап беремін, сондықтан қателесуім мүмкін. "
			   "Қызметкермен сөйлескіңіз келсе, «оператор» деп жазыңыз — сізге "
			   "маман жауап береді.",
	[HUB_AI_LANG_EN] = "Hello! This is the company's AI assistant. I answer automatically "
			   "and can make mistakes. If you would like to talk to a person, write "
			   "\"operator\" and a member of our team will take over.",
};

static enum hub_ai_lang or_english(enum hub_ai_lang lang)
{
	return lang > HUB_AI_LANG_NONE && lang < HUB_AI_NLANGS ? lang : HUB_AI_LANG_EN;
}

const char *hub_ai_disclosure_default(enum hub_ai_lang lang)
{
	return defaults[or_english(lang)];
}

#define PLACEHOLDER "{company}"

/* The company's name as it goes into a text: control characters (and invalid bytes, as
 * U+FFFD) as spaces, trimmed, cut on a character boundary. Appended to b. */
static void add_company(struct hub_buf *b, struct hub_str company)
{
	struct hub_buf t = HUB_BUF_INIT;
	struct hub_str s;
	size_t from = 0, cut;

	for (size_t i = 0; i < company.len;) {
		size_t at = i;
		uint32_t cp = next_cp(company, &i);

		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0x2028 ||
		    cp == 0x2029 || (cp == 0xfffd && i == at + 1))
			hub_buf_addch(&t, ' ');
		else
			hub_buf_add(&t, company.p + at, i - at);
	}
	while (from < t.len && t.p[from] == ' ')
		from++;
	s = (struct hub_str){ t.p + from, t.len - from };
	cut = hub_utf8_split_next(s, HUB_AI_COMPANY_MAX, HUB_TEXT_BYTES);
	while (cut && s.p[cut - 1] == ' ')
		cut--;
	hub_buf_add(b, s.p, cut);
	hub_buf_release(&t);
}

/* Whether company has anything left to show once cleaned. */
static bool company_shown(struct hub_str company)
{
	struct hub_buf b = HUB_BUF_INIT;
	bool shown;

	add_company(&b, company);
	shown = b.len > 0;
	hub_buf_release(&b);
	return shown;
}

/* tmpl with every "{company}" replaced by company, in pool. */
static struct hub_str fill(struct hub_pool *pool, struct hub_str tmpl, struct hub_str company)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_str out;
	size_t at = 0;

	while (at < tmpl.len) {
		const char *ph = memmem(tmpl.p + at, tmpl.len - at, PLACEHOLDER,
					sizeof(PLACEHOLDER) - 1);
		size_t end = ph ? (size_t)(ph - tmpl.p) : tmpl.len;

		hub_buf_add(&b, tmpl.p + at, end - at);
		if (!ph)
			break;
		add_company(&b, company);
		at = end + sizeof(PLACEHOLDER) - 1;
	}
	out = hub_pool_strcopy(pool, hub_buf_str(&b));
	hub_buf_release(&b);
	return out;
}

struct hub_str hub_ai_disclosure_text(struct hub_pool *pool, const struct hub_ai_texts *cfg,
				      enum hub_ai_lang lang, struct hub_str company)
{
	lang = or_english(lang);
	return fill(pool, cfg && cfg->text[lang].len ? cfg->text[lang] :
		    hub_str_from(company_shown(company) ? defaults[lang] : anonymous[lang]),
		    company);
}

static const char *const handoffs[HUB_AI_NLANGS] = {
	[HUB_AI_LANG_RU] = "Передаю ваш вопрос сотруднику компании: он ответит вам здесь, "
			   "как только сможет.",
	[HUB_AI_LANG_KK] = "Сұрағыңызды компания қызметкеріне жіберемін: ол сізге осында "
			   "мүмкіндігінше тез жауап береді.",
	[HUB_AI_LANG_EN] = "I am passing your question to a member of our team: they will "
			   "answer you here as soon as they can.",
};

struct hub_str hub_ai_handoff_text(struct hub_pool *pool, const struct hub_ai_texts *cfg,
				   enum hub_ai_lang lang, struct hub_str company)
{
	lang = or_english(lang);
	return fill(pool, cfg && cfg->text[lang].len ? cfg->text[lang] :
		    hub_str_from(handoffs[lang]), company);
}

/* ---- hand-off ---- */

/* The words of text, lower case, each run of letters and each run of digits one word,
 * written to b as " w1 w2 ... wn " (one space between, one at each end); a lone "*" at the
 * end is kept when star is given (a phrase's wildcard). */
static void words_of(struct hub_str text, struct hub_buf *b, bool *star)
{
	int in = 0; /* 0 between words, 1 in letters, 2 in digits */

	if (star) {
		size_t n = text.len;

		while (n && (text.p[n - 1] == ' ' || text.p[n - 1] == '\t'))
			n--;
		*star = n && text.p[n - 1] == '*';
		text.len = n - *star;
	}
	hub_buf_addch(b, ' ');
	for (size_t i = 0; i < text.len;) {
		uint32_t cp = next_cp(text, &i);
		int kind = hub_ai__is_letter(cp) ? 1 : cp >= '0' && cp <= '9' ? 2 : 0;
		char enc[4];

		if (in && kind != in)
			hub_buf_addch(b, ' ');
		in = kind;
		if (kind)
			hub_buf_add(b, enc, hub_utf8_encode(hub_ai__lower_cp(cp), enc));
	}
	if (in)
		hub_buf_addch(b, ' ');
}

enum stem_kind {
	STEM_NOUN,    /* Russian noun endings, or up to three Kazakh suffixes */
	STEM_COUNTED, /* the same, but not after a number: people counted */
	STEM_ADJ,     /* Russian adjective endings (never none) */
	STEM_EN,      /* none or a plural "s" */
};

static const struct {
	const char *stem;
	enum stem_kind kind;
} stems[] = {
	{ "оператор", STEM_NOUN }, { "менеджер", STEM_NOUN }, { "маман", STEM_NOUN },
	{ "человек", STEM_COUNTED }, { "адам", STEM_COUNTED }, { "жив", STEM_ADJ },
	{ "operator", STEM_EN }, { "human", STEM_EN }, { "agent", STEM_EN },
};

static const char *const ru_noun[] = {
	"", "а", "у", "ом", "е", "ы", "ов", "ам", "ами", "ах",
};

static const char *const ru_adj[] = {
	"ой", "ого", "ому", "ым", "ом", "ая", "ую", "ою", "ое", "ые", "ых", "ыми",
};

/* Kazakh suffixes after a noun: plural, possessive, case endings (with their vowel and
 * consonant variants). */
static const char *const kk_suffix[] = {
	"лар", "лер", "дар", "дер", "тар", "тер",
	"ым", "ім", "м", "ың", "ің", "ң", "ыңыз", "іңіз", "ңыз", "ңіз", "ы", "і", "сы", "сі",
	"ымыз", "іміз", "мыз", "міз",
	"ға", "ге", "қа", "ке", "а", "е", "на", "не",
	"ны", "ні", "ды", "ді", "ты", "ті", "н",
	"ның", "нің", "дың", "дің", "тың", "тің",
	"да", "де", "та", "те", "нда", "нде",
	"дан", "ден", "тан", "тен", "нан", "нен",
	"мен", "бен", "пен",
};

static bool is_one_of(const char *s, size_t n, const char *const *list, size_t nlist)
{
	for (size_t i = 0; i < nlist; i++)
		if (strlen(list[i]) == n && memcmp(list[i], s, n) == 0)
			return true;
	return false;
}

/* s[0..n) is made of 1..left Kazakh suffixes. */
static bool kazakh_suffixes(const char *s, size_t n, int left)
{
	if (!left)
		return false;
	for (size_t i = 0; i < HUB_ARRAY_SIZE(kk_suffix); i++) {
		size_t l = strlen(kk_suffix[i]);

		if (l <= n && memcmp(s, kk_suffix[i], l) == 0 &&
		    (l == n || kazakh_suffixes(s + l, n - l, left - 1)))
			return true;
	}
	return false;
}

/* Numerals that count people: "на двух человек", "неше адам". */
static const char *const numerals[] = {
	"один", "одного", "одному", "два", "двух", "двум", "двоих", "три", "трех", "трем",
	"троих", "четыре", "четырех", "четверых", "пять", "пяти", "шесть", "шести", "семь",
	"семи", "восемь", "восьми", "девять", "девяти", "десять", "десяти", "сто", "ста",
	"сколько", "скольких", "несколько", "нескольких", "много", "многих", "пару", "пара",
	"бір", "екі", "үш", "төрт", "бес", "алты", "жеті", "сегіз", "тоғыз", "он", "жиырма",
	"отыз", "қырық", "елу", "жүз", "неше", "бірнеше", "көп",
};

static bool ends_with(const char *s, size_t n, const char *suf)
{
	size_t l = strlen(suf);

	return n >= l && memcmp(s + n - l, suf, l) == 0;
}

static bool is_numeral(struct hub_str w)
{
	if (!w.len)
		return false;
	if (w.p[0] >= '0' && w.p[0] <= '9')
		return true;
	/* одиннадцать ... двадцать, тридцать */
	return is_one_of(w.p, w.len, numerals, HUB_ARRAY_SIZE(numerals)) ||
	       ends_with(w.p, w.len, "дцать") || ends_with(w.p, w.len, "дцати");
}

/* Whether word w (lower case), after the word prev (or empty), asks for a person. */
static bool word_asks(struct hub_str w, struct hub_str prev)
{
	for (size_t i = 0; i < HUB_ARRAY_SIZE(stems); i++) {
		size_t l = strlen(stems[i].stem);
		const char *rest = w.p + l;
		size_t n = w.len - l;

		if (w.len < l || memcmp(w.p, stems[i].stem, l) != 0)
			continue;
		switch (stems[i].kind) {
		case STEM_COUNTED:
			if (is_numeral(prev))
				break;
			/* fall through */
		case STEM_NOUN:
			if (is_one_of(rest, n, ru_noun, HUB_ARRAY_SIZE(ru_noun)) ||
			    kazakh_suffixes(rest, n, 3))
				return true;
			break;
		case STEM_ADJ:
			if (is_one_of(rest, n, ru_adj, HUB_ARRAY_SIZE(ru_adj)))
				return true;
			break;
		case STEM_EN:
			if (n == 0 || (n == 1 && rest[0] == 's'))
				return true;
			break;
		}
	}
	return false;
}

bool hub_ai_handoff_asked(struct hub_str text, const struct hub_str *phrases, size_t n)
{
	struct hub_buf t = HUB_BUF_INIT, ph = HUB_BUF_INIT;
	struct hub_str prev = HUB_STR_NULL;
	bool asked = false;

	words_of(text, &t, NULL);
	/* t is " w1 w2 ... ": each word starts after a space and ends before one */
	for (size_t i = 1; i < t.len && !asked;) {
		const char *sp = memchr(t.p + i, ' ', t.len - i);
		struct hub_str w = { t.p + i, (size_t)(sp - (t.p + i)) };

		asked = word_asks(w, prev);
		prev = w;
		i += w.len + 1;
	}
	for (size_t k = 0; k < n && !asked; k++) {
		bool star;

		if (!phrases[k].len || phrases[k].len > HUB_AI_PHRASE_MAX)
			continue;
		hub_buf_reset(&ph);
		words_of(phrases[k], &ph, &star);
		if (ph.len < 3)
			continue; /* no word in it */
		if (star)
			hub_buf_truncate(&ph, ph.len - 1); /* " w1 w2": the last word may go on */
		asked = memmem(t.p, t.len, ph.p, ph.len) != NULL;
	}
	hub_buf_release(&t);
	hub_buf_release(&ph);
	return asked;
}

/* ---- the reply ---- */

static bool is_space(uint32_t cp)
{
	return (cp >= 9 && cp <= 13) || cp == ' ' || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
	       (cp >= 0x2000 && cp <= 0x200b) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

/* s without the white space at both ends. */
static struct hub_str trim(struct hub_str s)
{
	size_t i = 0;
	uint32_t cp;

	while (i < s.len) {
		size_t l = hub_utf8_decode((const unsigned char *)s.p + i, s.len - i, &cp);

		if (!l || !is_space(cp))
			break;
		i += l;
	}
	s.p += i;
	s.len -= i;
	while (s.len) {
		size_t at = s.len - 1, l;

		while (at > 0 && s.len - at < 4 && ((unsigned char)s.p[at] & 0xc0) == 0x80)
			at--;
		l = hub_utf8_decode((const unsigned char *)s.p + at, s.len - at, &cp);
		if (l != s.len - at || !is_space(cp))
			break;
		s.len = at;
	}
	return s;
}

/* Whether s has white space at byte i. */
static bool is_space_at(struct hub_str s, size_t i)
{
	uint32_t cp;

	return hub_utf8_decode((const unsigned char *)s.p + i, s.len - i, &cp) && is_space(cp);
}

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, one UTF-16 unit */

int hub_ai_reply_shape(struct hub_pool *pool, struct hub_str answer, size_t max_units,
		       struct hub_str disclosure, struct hub_str *out)
{
	struct hub_buf b = HUB_BUF_INIT;
	struct hub_str a;
	bool cut = false;

	*out = (struct hub_str){ "", 0 };
	if (answer.len > HUB_AI_REPLY_MAX)
		return -EMSGSIZE;
	a = trim(answer);
	if (!a.len)
		return -ENODATA;
	if (max_units && hub_utf8_units(a, HUB_TEXT_UTF16) > max_units) {
		size_t keep = max_units > 1 ?
			hub_utf8_split_next(a, max_units - 1, HUB_TEXT_UTF16) : 0;
		struct hub_str k = { a.p, keep };

		/* a first character wider than the room is sent alone by split_next */
		if (hub_utf8_units(k, HUB_TEXT_UTF16) > max_units - 1)
			k.len = 0;
		/* split_next looks for a word end in the last fifth only; a cut word reads
		 * worse than a shorter text, while at least half of it stays */
		if (k.len < a.len && !is_space_at(a, k.len)) {
			size_t sp = k.len;

			while (sp > k.len / 2 && k.p[sp - 1] != ' ' && k.p[sp - 1] != '\n')
				sp--;
			if (sp > k.len / 2)
				k.len = sp;
		}
		a = trim(k);
		cut = true;
	}
	disclosure = trim(disclosure);
	if (disclosure.len) {
		hub_buf_addstr(&b, disclosure);
		hub_buf_adds(&b, "\n\n");
	}
	hub_buf_addstr(&b, a);
	if (cut)
		hub_buf_adds(&b, ELLIPSIS);
	*out = hub_pool_strcopy(pool, hub_buf_str(&b));
	hub_buf_release(&b);
	return 0;
}
