/* anonymizer/anon.c - the lexicon and the detectors (see anon.h). One pass cuts the text
 * into words, keying and classifying each, and notes its runs of digits; numbers (phones,
 * IIN/BIN, cards) are read from those runs, and separate linear passes find IBANs, e-mails,
 * known literal values and marker-like text; names are decided over the words from the
 * gazetteer, morphology, context cues and capitalisation. Overlaps merge, the stronger
 * type winning, so nothing found is ever dropped. */
#include "anonymizer/anon.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anonymizer/anon_data.h"
#include "anonymizer/anon_internal.h"
#include "lib/utf8.h"

/* Lexicon flags of a key. */
#define LX_FIRST 0x0001       /* a first name */
#define LX_SUR 0x0002         /* a surname */
#define LX_STEM 0x0004        /* the stem of a name: its inflected forms */
#define LX_AMBIG 0x0008       /* a name that is also a common word */
#define LX_STOP 0x0010        /* never a name: month, weekday, city, brand */
#define LX_CUE_STRONG 0x0020  /* the next word is a name: "зовут", "name" */
#define LX_CUE_WEAK 0x0040    /* the next word may be a name: "это", "I'm", "привет" */
#define LX_FUNC 0x0080        /* a function word, never a name even after a cue */
#define LX_ORDER 0x0100       /* the number after it is an order, code or invoice */
#define LX_UNIT 0x0200        /* the number before it is an amount or a quantity */
#define LX_PLACE_BEFORE 0x1000 /* the next word is a street, district or company: ул, мкр */
#define LX_PLACE_AFTER 0x2000 /* the word before is a street: көшесі, street */
#define LX_CUE_AFTER 0x4000   /* the word before is a name: "Нұр деген" */
#define LX_LAT 0x8000         /* name bits from an entry written in Latin */
#define LX_C 0x0400           /* name bits from a Cyrillic entry as spelled */
#define LX_F 0x10000          /* name bits from a Kazakh entry in Russian letters */
#define LX_AT 0x20000         /* "на", "по": before an address when a house number follows */
#define LX_L 0x0800           /* name bits from an entry with repeats collapsed (any script) */
#define LX_ID_CUE 0x40000     /* "ИИН", "BIN": a 12-digit number after it is one, or an ID */
#define LX_INTRO 0x80000      /* "я", "мен", "это", "im": a self-introduction */
#define LX_GREET 0x100000     /* "привет", "салам", "hi" */
#define LX_AMBIG_LAT 0x200000 /* LX_AMBIG from an entry written in Latin (an English word) */
#define LX_AMBIG_CYR 0x400000 /* LX_AMBIG from an entry written in Cyrillic */
#define LX_TITLE 0x800000     /* "доктор", "Mr": a capitalised word after it is a name */
#define LX_PRICE 0x1000000    /* "қанша", "сколько", "price": the message asks about a product */
#define LX_PATRO 0x2000000    /* the key of улы or кызы: a patronymic's word ("Абен улы") */
#define LX_ID_LAT 0x4000000   /* the key of a Latin IIN/BIN cue (id_cue_word reads the word) */
#define LX_NAME (LX_FIRST | LX_SUR | LX_STEM)
#define LX_NEVER (LX_FUNC | LX_CUE_STRONG | LX_CUE_WEAK | LX_ORDER | LX_UNIT | LX_STOP | \
		  LX_PLACE_BEFORE | LX_PLACE_AFTER | LX_CUE_AFTER)

struct hub_anon {
	struct hub_anon_htab words;
	uint64_t *filter; /* a bit of each key (filter_set): most words miss it without a probe */
	uint32_t cp_info[HUB_ANON_CP_TABLE]; /* hub_anon__cp_info of each */
	/* the same of the two bytes of a Cyrillic letter as they are, by the two bytes as
	 * one index (hub_anon__cyr_at): a lead byte 0xd0..0xd3 and a continuation byte
	 * after it, else 0 (cut_words' inner loop: one load a letter, no range check) */
	uint32_t *cyr_info;
};

#define FILTER_BITS 21

const struct hub_anon__type_name hub_anon__types[HUB_ANON_NTYPES] = {
	[HUB_ANON_PHONE] = { "PHONE", 5 }, [HUB_ANON_EMAIL] = { "EMAIL", 5 },
	[HUB_ANON_IIN] = { "IIN", 3 },     [HUB_ANON_BIN] = { "BIN", 3 },
	[HUB_ANON_CARD] = { "CARD", 4 },   [HUB_ANON_IBAN] = { "IBAN", 4 },
	[HUB_ANON_NAME] = { "NAME", 4 },   [HUB_ANON_ID] = { "ID", 2 },
	[HUB_ANON_MARKER] = { "MARKER", 6 },
};

const char *hub_anon_type_name(enum hub_anon_type type)
{
	return (unsigned)type < HUB_ANON_NTYPES ? hub_anon__types[type].s : "?";
}

/* Words with a fixed role, in any script; written as people write them. */
static const char *const stop_words[] = {
	/* months and weekdays */
	"январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь",
	"октябрь", "ноябрь", "декабрь", "қаңтар", "ақпан", "наурыз", "сәуір", "мамыр",
	"маусым", "шілде", "тамыз", "қыркүйек", "қазан", "қараша", "желтоқсан", "january",
	"february", "march", "april", "may", "june", "july", "august", "september", "october",
	"november", "december", "понедельник", "вторник", "среда", "четверг", "пятница",
	"суббота", "воскресенье", "дүйсенбі", "сейсенбі", "сәрсенбі", "бейсенбі", "жұма",
	"сенбі", "жексенбі", "monday", "tuesday", "wednesday", "thursday", "friday",
	"saturday", "sunday",
	/* cities and regions */
	"алматы", "астана", "шымкент", "караганда", "қарағанды", "актобе",
	"ақтөбе", "тараз", "павлодар", "семей", "атырау", "костанай", "қостанай", "кызылорда",
	"қызылорда", "уральск", "орал", "петропавловск", "актау", "ақтау", "темиртау",
	"туркестан", "кокшетау", "талдыкорган", "экибастуз", "жезказган", "балхаш", "рудный",
	"каскелен", "конаев", "қонаев", "усть", "каменогорск", "өскемен", "москва", "питер",
	"петербург", "санкт", "новосибирск", "екатеринбург", "казань", "омск", "самара",
	"челябинск", "уфа", "пермь", "воронеж", "бишкек", "ташкент", "минск", "киев", "дубай",
	"стамбул", "пекин", "almaty", "astana", "shymkent", "karaganda", "moscow", "kazakhstan",
	"казахстан", "қазақстан", "россия", "кыргызстан", "узбекистан", "китай", "турция",
	"london", "paris", "dubai", "istanbul",
	/* brands, services and products people name in chats */
	"kaspi", "каспи", "halyk", "халык", "forte", "форте", "jusan", "жусан", "freedom",
	"samsung", "самсунг", "apple", "iphone", "айфон", "xiaomi", "сяоми", "huawei",
	"redmi", "honor", "google", "android", "whatsapp", "ватсап", "telegram", "телеграм",
	"instagram", "инстаграм", "wildberries", "ozon", "озон", "glovo", "wolt", "yandex",
	"яндекс", "kcell", "beeline", "билайн", "tele", "altel", "activ", "magnum", "small",
	"sulpak", "сулпак", "technodom", "технодом", "mechta", "мечта", "dns", "lg", "sony",
	"nike", "adidas", "zara", "toyota", "тойота", "lexus", "hyundai", "kia", "bmw",
	"mercedes", "visa", "mastercard", "dhl", "cdek", "сдэк", "казпочта", "kazpost",
};

static const char *const place_before[] = {
	"ул", "улица", "улицы", "пр", "проспект", "пр-т", "мкр", "микрорайон", "мкрн", "жк",
	"бц", "тц", "трц", "тоо", "ао", "ооо", "llp", "ltd", "inc", "jsc", "st", "street",
	"avenue", "ave", "бульвар", "переулок", "пер", "шоссе", "площадь", "пл", "көшесі",
	"даңғылы", "ықшамауданы", "район", "р-н", "село", "поселок", "пос", "аул", "город", "г",
	"қаласы", "област", "облысы", "школа", "гимназия", "лицей", "колледж", "университет",
	"больница", "клиника", "поликлиника", "магазин", "кафе", "ресторан", "отель", "hotel",
	"адрес", "address", "мекенжай", "мекенжайы",
};

static const char *const at_words[] = {
	"на", "по", "в", "во", "возле", "около", "напротив", "угол", "at", "on",
};

static const char *const place_after[] = {
	"көшесі", "даңғылы", "ықшамауданы", "street", "st", "avenue", "ave", "road", "rd",
	"boulevard", "square", "mall", "plaza", "center", "centre", "tower", "tau", "жол",
	"ауданы", "облысы", "қаласы", "ауылы", "район", "trade", "group", "company", "бульвар",
};

/* With the Kazakh honorifics that follow a name ("Бақыт аға", "Гүлнар апай"). */
static const char *const cue_after[] = {
	"деген", "есімді", "атты", "по имени", "зовут", "аға", "ага", "ағай", "агай", "апа",
	"апай", "әпке", "апке", "мырза", "ханым", "тәте", "жеңге", "женге",
};

static const char *const cue_strong[] = {
	"зовут", "звать", "зовусь", "имя", "фио", "атым", "есімім", "есімі", "аты", "name",
	"named", "called", "получатель", "recipient", "отправитель", "sender", "контакт",
};

/* Titles: also weak cues. */
static const char *const titles[] = {
	"доктор", "врач", "мастер", "господин", "госпожа", "mr", "mrs", "ms", "dr", "mister",
};

/* A question about a price: a Latin word after a greeting in it is a product ("сәлем Jetta
 * бар ма қанша тұрады"), in Latin letters too. */
static const char *const price_words[] = {
	"қанша", "канша", "сколько", "цена", "цену", "стоит", "стоимость", "баға", "бағасы",
	"price", "cost", "kansha", "qansha", "skolko", "tsena", "baga",
};

static const char *const cue_weak[] = {
	"это", "я", "мен", "менің", "am", "m", "is", "dear", "уважаемый", "уважаемая",
	"господин", "госпожа", "mr", "mrs", "ms", "miss", "менеджер", "manager", "курьер",
	"courier", "клиент", "client", "спасибо", "рахмет", "thanks", "thank", "уважением",
	"regards",
	"от", "from", "для", "for", "мастер", "оператор", "доктор", "dr", "сестра", "брат",
	"жена", "муж", "мама", "папа", "сын", "дочь", "коллега", "друг", "подруга", "ага",
	"апа", "апай", "аға", "әке", "ана", "қыз", "бала", "инд", "ип", "тоо",
};

static const char *const func_words[] = {
	"не", "а", "и", "в", "на", "с", "по", "к", "у", "о", "за", "из", "что", "как",
	"да", "нет", "the", "a", "an", "not", "and", "or", "to", "of", "in", "on", "at",
	"it", "so", "no", "yes", "ok", "ок", "жоқ", "иә", "және", "бұл", "сіз", "вы", "мы",
	"он", "она", "они", "ты", "тут", "там", "здесь", "here", "there", "very", "очень",
	"also", "тоже", "уже", "ещё", "еще", "just", "only", "всё", "все", "good", "fine",
	"меня", "мне", "мной", "вас", "вам", "вами", "нас", "нам", "его", "её", "ее", "ему",
	"ей", "им", "их", "тебя", "тебе", "себя", "себе", "маған", "менің", "мені", "сізге",
	"сіздің", "сізді", "біз", "бізге", "оған", "оның", "тел", "телефон", "номер", "нөмір",
	"нөмірім", "почта", "пошта", "поштам", "поштасы", "email", "mail", "адрес", "мекенжай",
	"me", "my", "you", "your", "he", "she", "we", "they", "him", "her", "us", "them",
	"i", "i'm", "im", "this", "that", "can", "would", "could", "should", "have",
	"has", "had", "was", "were", "be", "been", "do", "does", "did", "said", "say", "says",
	"рахмет", "спасибо", "салем", "сәлем", "привет", "здравствуйте", "пожалуйста",
	/* the words of our markers */
	"phone", "email", "iin", "bin", "card", "iban", "name", "marker",
};

static const char *const order_words[] = {
	"заказ", "заказа", "заказу", "order", "invoice", "inv", "счет", "счёт", "счета",
	"чек", "check", "receipt", "трек", "track", "tracking", "накладная", "накладной",
	"код", "code", "артикул", "арт", "sku", "тапсырыс", "посылка", "посылки",
	"отправление", "ref", "reference", "договор", "contract", "пин", "pin", "пароль",
	"password", "смс", "sms", "otp", "бронь", "booking", "рейс", "flight", "ттн", "id",
	"номер заказа", "модель", "model", "serial", "серийный", "imei", "лицевой", "account",
	"квитанция", "талон", "билет", "ticket", "кабинет", "офис", "квартира", "кв", "дом",
	"улица", "ул", "мкр", "микрорайон", "индекс", "postcode", "zip", "штрих", "barcode",
};

/* Greetings: weak cues, though not for a Latin word in Cyrillic text ("салам Octavia бар ма"
 * asks for a car). */
static const char *const greetings[] = {
	"привет", "здравствуйте", "сәлем", "салем", "салам", "саламатсызба", "сәлеметсіз",
	"сәлеметсіздер", "hi", "hello", "hey",
};

/* Before a name in lower case: a gazetteer name after one is a name ("я айдана", "im dana"). */
static const char *const intro_words[] = {
	"это", "я", "мен", "im", "am", "m", "its", "s",
};

/* In Cyrillic; Latin ones are compared as written (id_cue_word): collapsed, IIN is "in". */
static const char *const id_cues[] = {
	"иин", "бин", "жсн", "бсн",
};

/* The Latin cues id_cue_word takes: their keys tell the few words it need read. */
static const char *const id_cues_lat[] = { "iin", "bin", "bsn", "zhsn" };

static const char *const patro_keys[] = { "uli", "kizi" };

static const char *const unit_words[] = {
	"тг", "тнг", "тенге", "теңге", "kzt", "тыс", "млн", "руб", "рублей", "р", "usd",
	"eur", "долларов", "dollars", "шт", "штук", "pcs", "кг", "kg", "г", "гр", "g", "мм",
	"mm", "см", "cm", "м", "km", "км", "гб", "gb", "мб", "mb", "тб", "tb", "mah", "вт",
	"w", "мл", "ml", "л", "литр", "процентов", "раз", "мес", "месяцев", "лет", "years",
	"дней", "days", "минут", "min", "сек", "бонусов", "баллов", "points", "тиын",
};

/* The filter is a bitmap of the low FILTER_BITS bits of each key's hash: with about 93,000
 * keys a twentieth of the bits are set, so a word not in the lexicon goes on to the table
 * once in twenty, and the look is one load and a bit test (three bits a key, a blocked
 * Bloom filter, cost more to test than the probes they spare). */
static inline size_t filter_word(uint64_t h)
{
	return (size_t)(h & ((1u << FILTER_BITS) - 1)) >> 6;
}

static void filter_set(struct hub_anon *a, uint64_t h)
{
	a->filter[filter_word(h)] |= 1ull << (h & 63);
}

static inline bool filter_has(const struct hub_anon *a, uint64_t h)
{
	return a->filter[filter_word(h)] >> (h & 63) & 1;
}

/* The lexicon flags of the key of hash h, 0 when it has none (most words: the filter says
 * so without a probe; a key the filter has is in a table that is not empty). */
static inline uint32_t lexicon_get(const struct hub_anon *a, uint64_t h)
{
	const struct hub_anon_htab *t = &a->words;

	if (!filter_has(a, h))
		return 0;
	return t->slots[hub_anon__htab_slot(t, h | 1)].val;
}

/* Adds one word list with flags (each word keyed; words with no key are skipped). translit:
 * Cyrillic words also keyed as Latin ones are looked up (a strong cue: "atym", "zovut"). */
static void add_words_as(struct hub_anon *a, const char *const *w, size_t n, uint32_t flags,
			 bool translit)
{
	for (size_t i = 0; i < n; i++) {
		struct hub_anon_key k;

		bool latin = (w[i][0] | 0x20) >= 'a' && (w[i][0] | 0x20) <= 'z';

		/* Latin words are looked up collapsed, Cyrillic ones folded or strict: a list
		 * word is keyed only so, or ТОО would be "to" */
		static const enum hub_anon_key_mode cyr[] = { HUB_ANON_KEY_FOLD,
							      HUB_ANON_KEY_STRICT,
							      HUB_ANON_KEY_COLLAPSE };
		static const enum hub_anon_key_mode lat[] = { HUB_ANON_KEY_COLLAPSE };
		const enum hub_anon_key_mode *modes = latin ? lat : cyr;
		size_t nmodes = latin ? 1 : translit ? 3 : 2;

		for (size_t m = 0; m < nmodes; m++) {
			if (hub_anon__key_mode(a, w[i], strlen(w[i]), modes[m], &k)) {
				uint64_t h = hub_anon__key_hash(&k, k.len);

				hub_anon__htab_or(&a->words, h, flags);
				filter_set(a, h);
			}
		}
	}
}

static void add_words(struct hub_anon *a, const char *const *w, size_t n, uint32_t flags)
{
	add_words_as(a, w, n, flags, false);
}

/* What the stem of an entry keeps of the entry's flags. */
#define LX_STEM_KEEP (LX_AMBIG | LX_AMBIG_LAT | LX_AMBIG_CYR | LX_C | LX_F | LX_L | LX_LAT)

static void add_name(struct hub_anon *a, const struct hub_anon_key *k, uint32_t flags)
{
	size_t norm = hub_anon__key_norm(k->s, k->len);
	uint64_t h = hub_anon__key_hash(k, k->len);

	hub_anon__htab_or(&a->words, h, flags);
	filter_set(a, h);
	if (norm < k->len) {
		/* Марина -> "marin": Марине, Мариной, Марину */
		h = hub_anon__key_hash(k, norm);
		hub_anon__htab_or(&a->words, h, (flags & LX_STEM_KEEP) | LX_STEM);
		filter_set(a, h);
	} else if (k->len >= HUB_ANON_STEM_MIN + 2 && (k->s[k->len - 2] == 'e' ||
						       k->s[k->len - 2] == 'o')) {
		/* a fleeting vowel: Павел -> Павла, Лев -> Льва */
		struct hub_anon_key f = *k;

		f.s[f.len - 2] = f.s[f.len - 1];
		f.len--;
		h = hub_anon__key_hash(&f, f.len);
		hub_anon__htab_or(&a->words, h, (flags & LX_STEM_KEEP) | LX_STEM);
		filter_set(a, h);
	}
}

/* One list: '#' comment lines, then one entry a line. */
static void add_list(struct hub_anon *a, struct hub_str text, uint32_t flags)
{
	size_t i = 0;

	while (i < text.len) {
		const char *nl = memchr(text.p + i, '\n', text.len - i);
		size_t end = nl ? (size_t)(nl - text.p) : text.len, e = end;
		struct hub_anon_key k;

		while (e > i && (text.p[e - 1] == '\r' || text.p[e - 1] == ' '))
			e--;
		if (e > i && text.p[i] != '#') {
			bool latin = (text.p[i] | 0x20) >= 'a' && (text.p[i] | 0x20) <= 'z';
			/* an ambiguous entry says in which script it is a word */
			uint32_t f = flags | (!(flags & LX_AMBIG) ? 0 :
					      latin ? LX_AMBIG_LAT : LX_AMBIG_CYR);

			if (hub_anon__key_mode(a, text.p + i, e - i, HUB_ANON_KEY_COLLAPSE, &k) &&
			    k.len >= HUB_ANON_STEM_MIN)
				add_name(a, &k, f | LX_L | (k.latin ? LX_LAT : 0));
			if (!latin &&
			    hub_anon__key_mode(a, text.p + i, e - i, HUB_ANON_KEY_STRICT, &k) &&
			    k.len >= HUB_ANON_STEM_MIN)
				add_name(a, &k, f | LX_C);
			if (!latin && k.kazakh &&
			    hub_anon__key_mode(a, text.p + i, e - i, HUB_ANON_KEY_FOLD, &k) &&
			    k.len >= HUB_ANON_STEM_MIN)
				add_name(a, &k, f | LX_F); /* Гүлнар met as Гульнар */
		}
		i = end + 1;
	}
}

int hub_anon_new_lists(struct hub_str first_names, struct hub_str surnames,
		       struct hub_str ambiguous, struct hub_anon **out)
{
	struct hub_anon *a = hub_xcalloc(1, sizeof(*a));

	a->filter = hub_xcalloc((1u << FILTER_BITS) / 64, sizeof(*a->filter));
	a->cyr_info = hub_xcalloc(HUB_ANON_CYR_TABLE, sizeof(*a->cyr_info));
	for (uint32_t cp = 0; cp < HUB_ANON_CP_TABLE; cp++)
		a->cp_info[cp] = hub_anon__cp_info(cp);
	for (unsigned lead = 0xd0; lead <= 0xd3; lead++) {
		for (unsigned next = 0x80; next < 0xc0; next++) {
			const unsigned char b[2] = { (unsigned char)lead, (unsigned char)next };

			a->cyr_info[hub_anon__cyr_at(b)] =
				a->cp_info[(lead & 0x1f) << 6 | (next & 0x3f)];
		}
	}
	add_list(a, first_names, LX_FIRST);
	add_list(a, surnames, LX_SUR);
	add_list(a, ambiguous, LX_FIRST | LX_AMBIG);
	add_words(a, stop_words, HUB_ARRAY_SIZE(stop_words), LX_STOP);
	add_words_as(a, cue_strong, HUB_ARRAY_SIZE(cue_strong), LX_CUE_STRONG, true);
	add_words(a, titles, HUB_ARRAY_SIZE(titles), LX_TITLE | LX_CUE_WEAK);
	add_words(a, price_words, HUB_ARRAY_SIZE(price_words), LX_PRICE);
	add_words(a, cue_weak, HUB_ARRAY_SIZE(cue_weak), LX_CUE_WEAK);
	add_words(a, func_words, HUB_ARRAY_SIZE(func_words), LX_FUNC);
	add_words(a, order_words, HUB_ARRAY_SIZE(order_words), LX_ORDER);
	add_words(a, unit_words, HUB_ARRAY_SIZE(unit_words), LX_UNIT);
	add_words(a, place_before, HUB_ARRAY_SIZE(place_before), LX_PLACE_BEFORE);
	add_words(a, place_after, HUB_ARRAY_SIZE(place_after), LX_PLACE_AFTER);
	add_words(a, at_words, HUB_ARRAY_SIZE(at_words), LX_AT);
	add_words(a, cue_after, HUB_ARRAY_SIZE(cue_after), LX_CUE_AFTER);
	add_words(a, id_cues, HUB_ARRAY_SIZE(id_cues), LX_ID_CUE);
	add_words(a, id_cues_lat, HUB_ARRAY_SIZE(id_cues_lat), LX_ID_LAT);
	add_words(a, intro_words, HUB_ARRAY_SIZE(intro_words), LX_INTRO | LX_CUE_WEAK);
	add_words(a, greetings, HUB_ARRAY_SIZE(greetings), LX_GREET | LX_CUE_WEAK);
	/* keys as they are (улы, ұлы, uly; кызы, қызы) */
	for (size_t i = 0; i < HUB_ARRAY_SIZE(patro_keys); i++) {
		uint64_t h = hub_anon__hash(patro_keys[i], strlen(patro_keys[i]));

		hub_anon__htab_or(&a->words, h, LX_PATRO);
		filter_set(a, h);
	}
	*out = a;
	return 0;
}

static struct hub_str data_file(const char *name)
{
	for (const struct hub_embed_file *f = hub_anon_data; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return (struct hub_str){ f->data, f->len };
	return HUB_STR_NULL;
}

int hub_anon_new(struct hub_anon **out)
{
	return hub_anon_new_lists(data_file("first_names.txt"), data_file("surnames.txt"),
				  data_file("ambiguous.txt"), out);
}

void hub_anon_free(struct hub_anon *anon)
{
	if (!anon)
		return;
	hub_anon__htab_release(&anon->words);
	free(anon->filter);
	free(anon->cyr_info);
	free(anon);
}

const uint32_t *hub_anon__cp_table(const struct hub_anon *anon)
{
	return anon->cp_info;
}

const uint32_t *hub_anon__cyr_table(const struct hub_anon *anon)
{
	return anon->cyr_info;
}

size_t hub_anon_size(const struct hub_anon *anon)
{
	return anon->words.n;
}

/* ---- checksums ---- */

bool hub_anon_kz_checksum_ok(const char d[12])
{
	static const int w2[11] = { 3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2 };
	int s = 0, r;

	for (int i = 0; i < 11; i++)
		s += (i + 1) * (d[i] - '0');
	r = s % 11;
	if (r == 10) {
		s = 0;
		for (int i = 0; i < 11; i++)
			s += w2[i] * (d[i] - '0');
		r = s % 11;
		if (r == 10)
			return false;
	}
	return r == d[11] - '0';
}

bool hub_anon_luhn_ok(const char *d, size_t n)
{
	/* a doubled digit's digits summed */
	static const unsigned char twice[10] = { 0, 2, 4, 6, 8, 1, 3, 5, 7, 9 };
	int s = n & 1 ? d[0] - '0' : 0;

	/* from the end by pairs: the last digit as it is, the one before it doubled */
	for (size_t i = n; i >= 2; i -= 2)
		s += d[i - 1] - '0' + twice[d[i - 2] - '0'];
	return n && s % 10 == 0;
}

static int iban_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	return -1;
}

/* The remainder mod 97 of a number read so far (r) and one character more (v: a digit, or
 * a letter as the two digits 10..35). */
static unsigned iban_step(unsigned r, int v)
{
	return v >= 10 ? (r * 100 + (unsigned)v) % 97 : (r * 10 + (unsigned)v) % 97;
}

bool hub_anon_iban_ok(const char *s, size_t n)
{
	unsigned r = 0;

	if (n < 15 || n > 34 || iban_val(s[0]) < 10 || iban_val(s[1]) < 10 ||
	    iban_val(s[2]) < 0 || iban_val(s[2]) > 9 || iban_val(s[3]) < 0 || iban_val(s[3]) > 9)
		return false;
	for (size_t i = 0; i < n; i++) {
		int v = iban_val(s[(i + 4) % n]);

		if (v < 0)
			return false;
		r = iban_step(r, v);
	}
	return r == 1;
}

/* The longest l from n down to 15 for which hub_anon_iban_ok(buf, l), or 0, from the
 * remainders of every length in one pass (buf: n <= 34 upper-case letters and digits, two
 * letters and two digits first, as iban_at reads them). */
static size_t iban_longest(const char *buf, size_t n)
{
	unsigned rest[35], r = 0, tail = 0, want; /* rest[l]: the remainder of buf[4..l) */

	if (n < 15)
		return 0; /* a code: "ABC12" */
	for (size_t l = 4; l < n; l++)
		rest[l + 1] = r = iban_step(r, iban_val(buf[l]));
	/* the country and check digits last: two letters and two digits are six digits, so
	 * the steps over them take r to (r * 10^6 + tail) mod 97, and 10^6 mod 97 is 27. That
	 * is 1 for the r that is (1 - tail) / 27, and 1 / 27 is 18 (mod 97) */
	for (size_t j = 0; j < 4; j++)
		tail = iban_step(tail, iban_val(buf[j]));
	want = (1 + 97 - tail) * 18 % 97;
	for (size_t l = n; l >= 15; l--)
		if (rest[l] == want)
			return l;
	return 0;
}

/* ---- the text: characters and words ---- */

#define W_CAP 0x0001      /* first letter upper case */
#define W_ALLCAPS 0x0002  /* every letter upper case, two or more */
#define W_SENT 0x0004     /* first word of a sentence */
#define W_ADJ 0x0008      /* only spaces or a hyphen since the previous word */
#define W_SOFT 0x0010     /* at most a comma, colon or dash since the previous word */
#define W_KEYED 0x0020    /* has a key */
#define W_NAME 0x0040     /* decided: a name */
#define W_GAZ 0x0080      /* in the gazetteer */
#define W_INFL 0x0100     /* ... through an inflection */
#define W_AMBIG 0x0200    /* ... as a name that is also a word */
#define W_KNOWN 0x0400    /* a name the vault knows */
#define W_SURNAME 0x0800  /* surname morphology */
#define W_PATRO 0x1000    /* patronymic morphology */
#define W_PATRO_WORD 0x2000 /* улы / кызы as a word of its own */
#define W_FIRST 0x4000    /* a first name of the gazetteer or known */
#define W_LONGSTEM 0x8000 /* ... an entry of 6 or more key bytes, not just a stem */
#define W_MIDSTEM 0x10000 /* ... a stem of 5 key bytes */
#define W_SHORT 0x20000   /* ... a word of 3 key bytes: only capitalised */
#define W_INTR 0x40000    /* a name by the text alone, not because the vault knows it */
#define W_TRANSLIT 0x80000 /* in the gazetteer only as a transliteration */
#define W_LEARNED 0x100000 /* a name the vault found before (not the caller's), where that
			    * makes it one (vault_learned) */
#define W_HYPHEN 0x200000 /* joined to the previous word by a hyphen: аты-жөні */
#define W_FOLDED 0x400000 /* Kazakh letters, in the gazetteer only in Russian spelling */
#define W_CYR 0x800000    /* has Cyrillic letters */
#define W_SPANNED 0x1000000 /* inside what another detector found: it becomes a marker */
#define W_SURSHAPE 0x2000000 /* surname or patronymic morphology in any case, or W_KAZSUR */
#define W_INITIAL 0x4000000 /* one letter: an initial ("Айгерим С."), never a name */
#define W_LATIN 0x8000000 /* starts with a Latin letter */
#define W_KAZSUR 0x10000000 /* a Kazakh surname's ending (-бай, -бек, -қали): beside a name */
#define W_IDCUE 0x20000000 /* "ИИН", "BIN" (LX_ID_CUE, or Latin as written) */
#define W_STREET_DONE 0x40000000u /* street_word_after has looked at it: */
#define W_STREET 0x80000000u      /* ... and it names what a street's name comes before */
#define W_KAZCASE (1ull << 32) /* a gazetteer name's stem of 4 key bytes or more and a Kazakh
				* case or possessive ending: Әселдің, Әсемге, Айгеримді */
#define W_AMBIG_CYR (1ull << 33) /* a Latin word whose W_AMBIG comes only from Cyrillic
				  * entries ("dana": дана is a word, dana is no English one) */
#define W_CUE_INFL (1ull << 34) /* a cue word through a case ending: "Доктору", "мастеру" */
#define W_INITDOT (1ull << 35) /* after an initial and its full stop ("Е. Т."): no sentence
				* ends there */

struct scan {
	const struct hub_anon *anon;
	const struct hub_anon_vault *vault;
	struct hub_anon__name_starts name_starts; /* the vault's */
	struct hub_pool *pool;
	struct hub_anon__scratch *scratch; /* NULL: out->items from pool */
	struct hub_str text;
	/* first the 64 of the scratch's words or of first_words, then from pool */
	struct hub_anon__word *words;
	size_t nwords, capwords;
	struct hub_anon__word first_words[HUB_ANON_SCRATCH_WORDS];
	struct hub_anon_spans *out;
	/* Latin text (decide_names): Latin words may be transliterated Cyrillic names, and a
	 * Latin name needs no cue (in Cyrillic text, alone, it is a brand or a product) */
	bool translit_ok;
	/* where an IBAN may start: two ASCII letters before a digit ("KZ86..."), as cut_words
	 * finds them; more than fit: every byte is a candidate */
	size_t iban_at[8];
	size_t niban;
	size_t end_digit; /* after the last digit (0 without one) */
	/* the runs of digits, [start, end) each, every one in order as cut_words finds them
	 * (first the 16 of first_runs, then from pool): find_numbers reads the text only
	 * between them */
	struct digit_run {
		size_t start, end;
		/* the words before it: s->words[word] is the first after it (no word has a
		 * digit), which word_before and followed_by_unit need not look for */
		size_t word;
	} *runs, first_runs[16];
	size_t nruns, capruns;
	size_t id_cue; /* where the first IIN/BIN cue word ends; SIZE_MAX without one */
	bool has_at;     /* an '@' is in the text (cut_words): e-mails need one */
	bool has_marker; /* a '[' or a '_' is in the text (cut_words): markers need one */
	bool price;      /* a word asks a price (LX_PRICE) */
	/* a Latin word is capitalised or has a name's look (W_CAP, W_GAZ, W_SURNAME,
	 * W_PATRO): the text may be Latin (decide_names); cut_words notes it */
	bool latin_name;
	uint64_t word_flags; /* the W_* of every word ORed (cut_words) */
};

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_ascii_letter(int c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static bool is_ascii_alnum(int c)
{
	return is_digit(c) || is_ascii_letter(c);
}

#define cp_is_letter hub_anon__cp_is_letter
#define cp_is_upper hub_anon__cp_is_upper

/* One character at p[i]: its length (1 for an invalid byte, *cp then 0xfffd). */
static inline size_t next_cp(struct hub_str t, size_t i, uint32_t *cp)
{
	unsigned char c = (unsigned char)t.p[i];
	size_t l;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	l = hub_anon__decode((const unsigned char *)t.p + i, t.len - i, cp);
	if (!l) {
		*cp = 0xfffd;
		return 1;
	}
	return l;
}

/* out->items with room for twice as many (16 at first), from the scratch or the pool. */
static struct hub_anon_span *grow_spans(struct scan *s, struct hub_anon_spans *o)
{
	struct hub_anon__scratch *sc = s->scratch;

	if (!sc)
		return hub_pool_grow(s->pool, o->items, &o->cap, 16, sizeof(*o->items));
	o->cap = o->cap ? 2 * o->cap : 16;
	if (o->cap > sc->cap_spans) {
		if (sc->spans == sc->spans_first) {
			sc->spans = hub_xmalloc(o->cap * sizeof(*sc->spans));
			memcpy(sc->spans, sc->spans_first, o->n * sizeof(*sc->spans));
		} else {
			sc->spans = hub_xrealloc(sc->spans, o->cap * sizeof(*sc->spans));
		}
		sc->cap_spans = o->cap;
	}
	return sc->spans; /* the items so far are in it already */
}

static inline void add_span(struct scan *s, size_t start, size_t end, enum hub_anon_type type)
{
	struct hub_anon_spans *o = s->out;

	if (o->n == o->cap)
		o->items = grow_spans(s, o);
	o->items[o->n++] = (struct hub_anon_span){ start, end, type };
}

/* A window of a number (match_groups): one that overlaps the last span and is of its type
 * (the windows of one number overlap, and most are the same thing) grows that span to
 * their union instead, which merge_spans makes of the two anyway. Until the merge only
 * markers are read (id_cue_end, in_marker), and a window is never one. */
static void add_window(struct scan *s, size_t start, size_t end, enum hub_anon_type type)
{
	struct hub_anon_spans *o = s->out;
	struct hub_anon_span *last = o->n ? &o->items[o->n - 1] : NULL;

	if (last && last->type == type && start < last->end && last->start < end) {
		if (start < last->start)
			last->start = start;
		if (end > last->end)
			last->end = end;
		return;
	}
	add_span(s, start, end, type);
}

/* Inline in cut_words, its one caller, whatever cut_words' size: a call would cost about 25
 * instructions a word (GCC leaves it out of line once cut_words grows past its limits). */
static inline __attribute__((always_inline)) void classify(struct scan *s,
							   struct hub_anon__word *wd,
							   struct hub_anon_key *ks);

/* What a character that is no letter does between words (cut_words). */
enum sep_class {
	SEP_OTHER, /* the next word is neither adjacent nor soft */
	SEP_SPACE, /* a space or a hyphen: changes nothing */
	SEP_SOFT,  /* a comma, colon, dash, bracket or quote: not adjacent */
	SEP_SENT,  /* the end of a sentence */
	SEP_DIGIT,
	SEP_AT,
	SEP_MARK, /* '[' or '_': a marker may start */
};

static const unsigned char ascii_sep[128] = {
	[' '] = SEP_SPACE, ['\t'] = SEP_SPACE, ['-'] = SEP_SPACE,
	[','] = SEP_SOFT, [':'] = SEP_SOFT, ['('] = SEP_SOFT, [')'] = SEP_SOFT,
	['"'] = SEP_SOFT, ['\''] = SEP_SOFT,
	['.'] = SEP_SENT, ['!'] = SEP_SENT, ['?'] = SEP_SENT, ['\n'] = SEP_SENT,
	['\r'] = SEP_SENT, [';'] = SEP_SENT,
	['0'] = SEP_DIGIT, ['1'] = SEP_DIGIT, ['2'] = SEP_DIGIT, ['3'] = SEP_DIGIT,
	['4'] = SEP_DIGIT, ['5'] = SEP_DIGIT, ['6'] = SEP_DIGIT, ['7'] = SEP_DIGIT,
	['8'] = SEP_DIGIT, ['9'] = SEP_DIGIT,
	['@'] = SEP_AT, ['['] = SEP_MARK, ['_'] = SEP_MARK,
};

static inline enum sep_class sep_of(uint32_t cp)
{
	if (cp < 0x80)
		return (enum sep_class)ascii_sep[cp];
	switch (cp) {
	case 0xa0: /* no-break space */
		return SEP_SPACE;
	case 0x2013: case 0x2014: case 0xab: case 0xbb: case 0x2019: /* – — « » ’ */
		return SEP_SOFT;
	case 0x2026: /* … */
		return SEP_SENT;
	}
	return SEP_OTHER;
}

/* Appends c, the byte of a Kazakh letter, to a key as hub_anon__key_add_info does (a key
 * gone bad stays as it is). */
static inline void kazakh_push(struct hub_anon_key *k, char c)
{
	if (k->bad)
		return;
	k->kazakh = true;
	if (k->len == HUB_ANON_KEY_MAX)
		k->bad = true;
	else
		k->s[k->len++] = c;
}

/* Appends c to the key being cut (its length *klen); false when the key is full. */
static inline bool key_push(struct hub_anon_key *k, size_t *klen, char c)
{
	if (*klen >= HUB_ANON_KEY_MAX)
		return false;
	k->s[(*klen)++] = c;
	return true;
}

/* Where the run of ASCII digits at p[i..n) ends: eight bytes at a time while eight are
 * left (most runs are phone numbers, dates, amounts), then byte by byte. */
static inline size_t digits_end(const unsigned char *p, size_t i, size_t n)
{
	for (; i + 8 <= n; i += 8) {
		/* each byte less '0': a digit is below 10; bit 7 of each byte of m is set for a
		 * byte that is no digit (either its low seven bits reach 10, or it is >= 0x80
		 * after the xor; the sums stay within their bytes) */
		uint64_t x = hub_anon__load(p + i, 8) ^ 0x3030303030303030ull;
		uint64_t m = (((x & 0x7f7f7f7f7f7f7f7full) + 0x7676767676767676ull) | x) &
			     0x8080808080808080ull;

		if (m)
			return i + (size_t)__builtin_ctzll(m) / 8;
	}
	while (i < n && is_digit(p[i]))
		i++;
	return i;
}

/* hub_anon__key_run of Cyrillic letters for a word keyed as it is spelled
 * (HUB_ANON_KEY_FOLD: nothing collapses), that takes in the letters whose key is of two
 * bytes or none as well (ж ш щ ч ц ю я х ы ъ ь, in many words), with key_add_info's rules
 * for them: kh as х, dzh as j, ы as y. A Kazakh letter, or what is no Cyrillic letter,
 * ends it (cut_words keys it letter by letter). */
static __attribute__((always_inline)) inline size_t
cyr_run(const uint32_t *cyr, const unsigned char *p, size_t i, size_t n,
	struct hub_anon_key *k, size_t *klen, uint32_t *all)
{
	/* a letter (two bytes) keys to two bytes at most: room for the letters below lim */
	size_t room = (HUB_ANON_KEY_MAX - *klen) & ~(size_t)1;
	size_t lim = i + room < n - 1 ? i + room : n - 1;
	char *q = k->s + *klen;
	uint32_t a = *all;

	while (i < lim) {
		uint32_t x = cyr[hub_anon__cyr_at(p + i)]; /* 0: no Cyrillic letter */

		if (x & HUB_ANON_CP_PLAIN) {
			*q++ = (char)x;
		} else if ((x & (HUB_ANON_CP_KAZAKH | HUB_ANON_CP_HASKEY)) ==
			   HUB_ANON_CP_HASKEY) {
			char c0 = (char)x, prev = q > k->s ? q[-1] : 0; /* no key byte is 0 */

			if (x & HUB_ANON_CP_YERU) {
				*q++ = 'y'; /* as spelled, ы is not и */
			} else if (c0 == 'h') { /* х */
				if (prev == 'k')
					q[-1] = 'h'; /* kh as х */
				else
					*q++ = 'h';
			} else if (c0) { /* two bytes; ъ and ь have none */
				/* its two key bytes stored from x: two byte stores GCC merges
				 * into a load of the table entry again, in every letter's step */
				uint16_t two = (uint16_t)x;

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
				two = __builtin_bswap16(two);
#endif
				if (c0 == 'z' && prev == 'd')
					q--; /* ж ("zh"): dzh as j */
				memcpy(q, &two, 2);
				q += 2;
			}
		} else {
			break;
		}
		a &= x;
		i += 2;
	}
	*klen = (size_t)(q - k->s);
	*all = a;
	return i;
}

/* A character of three bytes or more, or an invalid byte (U+FFFD of length 1): rare, out of
 * line and by value, so that cut_next's callers keep *cp in a register (its address never
 * goes to hub_utf8_decode). */
struct cp_len {
	uint32_t cp, len;
};

static __attribute__((noinline)) struct cp_len decode_rest(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t l = hub_utf8_decode(p, n, &cp);

	if (!l)
		return (struct cp_len){ 0xfffd, 1 };
	return (struct cp_len){ cp, (uint32_t)l };
}

/* The character at p[i] (i < n) of a word or between words: its length, *cp and its
 * hub_anon__cp_info (0 from U+0800 on: no letter is there). One- and two-byte sequences
 * (ASCII, Cyrillic) inline; an invalid byte is U+FFFD of length 1. */
static inline size_t cut_next(const unsigned char *p, size_t i, size_t n, const uint32_t *table,
			      uint32_t *cp, uint32_t *info)
{
	unsigned c0 = p[i];
	struct cp_len r;

	if (c0 < 0x80) {
		*cp = c0;
		*info = table[c0];
		return 1;
	}
	if (c0 - 0xc2 < 0x1e && i + 1 < n && (unsigned)(p[i + 1] ^ 0x80) < 0x40) {
		*cp = (c0 & 0x1f) << 6 | (p[i + 1] ^ 0x80);
		*info = table[*cp];
		return 2;
	}
	r = decode_rest(p + i, n - i);
	*cp = r.cp;
	*info = r.cp < HUB_ANON_CP_TABLE ? table[r.cp] : 0;
	return r.len;
}

/* The character at p[i] of a word being cut (cut_next; *cp 0 at the end of the text):
 * false when it ends the word, else its flags are ANDed into *all and ORed into *any. */
static inline bool next_letter(const unsigned char *p, size_t i, size_t n,
			       const uint32_t *table, size_t *l, uint32_t *cp, uint32_t *info,
			       uint32_t *all, uint32_t *any)
{
	if (i >= n) {
		*cp = 0;
		return false;
	}
	*l = cut_next(p, i, n, table, cp, info);
	if (!(*info & HUB_ANON_CP_LETTER))
		return false;
	*all &= *info;
	*any |= *info;
	return true;
}

/* The character at p[i] of a word being cut, as next_letter, but ASCII and Cyrillic (lead
 * byte 0xd0..0xd3) from the tables without its code point (the word goes on); the rest, and
 * a character that is not ASCII and ends the word, decoded in full. */
static inline bool peek_letter(const struct hub_anon *anon, const unsigned char *p, size_t i,
			       size_t n, size_t *l, uint32_t *cp, uint32_t *info, uint32_t *all,
			       uint32_t *any)
{
	if (i + 1 < n) {
		unsigned b0 = p[i];

		if (b0 < 0x80) {
			*info = anon->cp_info[b0];
			*l = 1;
			*cp = b0;
		} else {
			/* 0 but for a Cyrillic letter */
			*info = anon->cyr_info[hub_anon__cyr_at(p + i)];
			*l = 2;
		}
		if (*info & HUB_ANON_CP_LETTER) {
			*all &= *info;
			*any |= *info;
			return true;
		}
		if (b0 < 0x80)
			return false; /* decoded in full already */
	}
	return next_letter(p, i, n, anon->cp_info, l, cp, info, all, any);
}

/* Keys the word of letters at p[i..) into k (its first letter's *info and *l: latin, an
 * ASCII one), as cut_words cuts it; *strict: ks is its strict key too (a Cyrillic word with
 * Kazakh letters). Returns where the word ends, with the character there in *l, *cp and
 * *info (*cp 0 at the end of the text); the flags of its letters ANDed into *all, ORed
 * into *any. Inline with latin a constant: a copy for each script. */
static __attribute__((always_inline)) inline size_t
key_word(const struct hub_anon *anon, const unsigned char *p, size_t i, size_t n,
	 struct hub_anon_key *k, struct hub_anon_key *ks, bool *strict, size_t *lp,
	 uint32_t *cpp, uint32_t *infop, uint32_t *allp, uint32_t *anyp, bool latin)
{
	size_t l = *lp;
	/* cp: what ends the word (peek_letter sets it when it ends one) */
	uint32_t cp, info = *infop, all = *allp, any = *anyp;
	size_t klen = 0;
	/* the last key byte of a Latin word (0: none), whose repeats collapse; a Cyrillic
	 * word's stays 0 (no key byte is 0) */
	char last = 0, lmask = latin ? (char)0xff : 0;

	/* the key's state in it from the start (one store of constants): k->bad is set where
	 * the key goes bad, and read only at the end */
	k->latin = latin;
	k->kazakh = false;
	k->bad = false;
	k->unfolded = false;
	k->mode = latin ? HUB_ANON_KEY_COLLAPSE : HUB_ANON_KEY_FOLD;
	*strict = false;
	/* a Cyrillic first letter is keyed in the run that starts with it (cyr_run keys
	 * what a word's first letter may be; a Kazakh one stops it, and peek_letter gives it
	 * to the loop's body then) */
	if (!latin && (info & HUB_ANON_CP_CYR)) {
		/* a copy of the run below without its any |= HUB_ANON_CP_CYR: any has it */
		i = cyr_run(anon->cyr_info, p, i, n, k, &klen, &all);
		goto peek;
	}
	/* the key's length in a register: most letters have a plain key of one byte
	 * (HUB_ANON_CP_PLAIN), the others go through key_add_info (a key gone bad is never
	 * read: what is added after does not matter) */
	for (;;) {
		if (info & HUB_ANON_CP_PLAIN) {
			char c = (char)info;

			if (c != last) {
				if (!key_push(k, &klen, c))
					k->bad = true;
				last = c & lmask;
			} else {
				k->unfolded = true; /* a Latin word's repeat */
			}
		} else if ((info & (HUB_ANON_CP_KAZAKH | HUB_ANON_CP_HASKEY)) ==
			   HUB_ANON_CP_HASKEY) {
			/* key_add_info's rules for a key of up to two bytes: ж ш ч ю я
			 * х ы ъ ь (the first letter of a word), Latin h j x */
			char c0 = (char)info, c1 = (char)(info >> 8);

			if ((info & HUB_ANON_CP_YERU) && !latin)
				c0 = 'y', c1 = 0; /* as spelled, ы is not и */
			else if (info & HUB_ANON_CP_YERU)
				k->unfolded = true; /* collapsed, it is */
			for (char ch = c0; ch; ch = ch == c0 ? c1 : 0) {
				char lb = klen ? k->s[klen - 1] : 0;

				if (ch == 'h' && lb == 'k') {
					k->s[klen - 1] = 'h'; /* kh as х */
					continue;
				}
				/* dzh as j */
				if (ch == 'z' && lb == 'd' && c1 == 'h')
					lb = --klen ? k->s[klen - 1] : 0;
				if (latin && lb == ch) {
					k->unfolded = true;
					continue; /* Анна/Ana, Асель/Assel */
				}
				if (!key_push(k, &klen, ch))
					k->bad = true;
			}
			last = klen ? k->s[klen - 1] & lmask : 0;
		} else {
			k->len = klen;
			if ((info & HUB_ANON_CP_KAZAKH) && !latin)
				goto kazakh;
			hub_anon__key_add_info(k, info);
			klen = k->len;
			last = klen ? k->s[klen - 1] & lmask : 0;
		}
		i += l;
		/* a run of letters with a plain key in the word's script (most of it) */
		if (!latin) {
			size_t i0 = i;

			i = cyr_run(anon->cyr_info, p, i, n, k, &klen, &all);
			if (i > i0)
				any |= HUB_ANON_CP_CYR;
		} else {
			i = hub_anon__key_run(anon->cp_info, NULL, p, i, n, k,
					      &klen, &all, true);
			last = klen ? k->s[klen - 1] : 0;
		}
peek:
		if (!peek_letter(anon, p, i, n, &l, &cp, &info, &all, &any))
			break;
	}
	if (0) {
kazakh:
		/* a Cyrillic word's strict key (classify's second look) is its folded one
		 * up to its first Kazakh letter: from there on, both */
		hub_anon__key_start(ks, HUB_ANON_KEY_STRICT, false);
		memcpy(ks->s, k->s, sizeof(ks->s)); /* whole: a copy without a call */
		ks->len = k->len;
		ks->bad = k->bad;
		*strict = true;
		for (;;) {
			size_t i0, from;

			if ((info & HUB_ANON_CP_KAZAKH) && (char)info != 'h') {
				/* a Kazakh letter but һ, as key_add_info keys it: its
				 * Russian neighbour's byte in k, its own in ks */
				kazakh_push(k, (char)info);
				kazakh_push(ks, (char)(info >> 24));
			} else {
				hub_anon__key_add_info(k, info);
				hub_anon__key_add_info(ks, info);
			}
			i += l;
			/* a run of plain Cyrillic letters: keyed once, the same bytes in
			 * both keys (no rule changes them; a key gone bad, or without room
			 * for them, is never read) */
			i0 = i;
			klen = from = k->len;
			i = hub_anon__key_run(NULL, anon->cyr_info, p, i, n, k,
					      &klen, &all, false);
			k->len = klen;
			if (i > i0) {
				size_t m = klen - from; /* the run's bytes */

				any |= HUB_ANON_CP_CYR;
				if (ks->len + m > HUB_ANON_KEY_MAX) {
					ks->bad = true;
				} else {
					memcpy(ks->s + ks->len, k->s + from, m);
					ks->len += m;
				}
			}
			if (!peek_letter(anon, p, i, n, &l, &cp, &info, &all, &any))
				break;
		}
		klen = k->len;
	}
	k->len = klen;
	*lp = l;
	*cpp = cp;
	*infop = info;
	*allp = all;
	*anyp = any;
	return i;
}

/* Cuts the text into words of letters, noting case, sentence starts and what separates
 * each word from the previous one; keys each word as it reads it (one decoding of each
 * character) and classifies it. */
static void cut_words(struct scan *s)
{
	const unsigned char *p = (const unsigned char *)s->text.p;
	const size_t n = s->text.len;
	const struct hub_anon *anon = s->anon;
	const uint32_t *cyr = anon->cyr_info; /* one load less a word start */
	/* what the separators since the last word make of the next one: W_SENT, W_ADJ,
	 * W_SOFT, W_INITDOT, W_HYPHEN */
	uint64_t ctx = W_SENT;
	size_t i = 0, seps = 0;
	struct hub_anon_key *k, ks;

	/* s->end_digit, has_at and has_marker start false (hub_anon__detect) */
	while (i < n) {
		uint32_t cp, info;
		size_t l;

		/* most words start with a Cyrillic letter: its two bytes as they are, without
		 * its code point (a word's first letter needs none) */
		if (p[i] >= 0x80 && i + 1 < n &&
		    ((info = cyr[hub_anon__cyr_at(p + i)]) & HUB_ANON_CP_LETTER))
			l = 2;
		else
			l = cut_next(p, i, n, anon->cp_info, &cp, &info);
		if (info & HUB_ANON_CP_LETTER) { /* a word: its letters in one go */
			struct hub_anon__word *wd;
			size_t start = i, l0 = l;
			/* the flags of every letter ANDed (HUB_ANON_CP_UPPER: all capitals) and
			 * ORed (HUB_ANON_CP_CYR: a Cyrillic letter) */
			uint32_t all = info, any = info, info0 = info;
			bool latin = l == 1; /* the one letter of one byte is ASCII */
			bool strict; /* ks is the strict key (classify's second look) */
			/* the word's flags known at its first letter */
			uint64_t wflags = ctx | (info & HUB_ANON_CP_UPPER ? W_CAP : 0) |
					  (latin ? W_LATIN : 0);

			/* keyed in its word, where it stays (classify, the vault) */
			if (s->nwords == s->capwords)
				s->words = hub_pool_grow(s->pool, s->words, &s->capwords, 32,
							 sizeof(*s->words));
			wd = &s->words[s->nwords];
			k = &wd->k;
			/* in the word now: fewer values live across keying it */
			wd->start = start;
			wd->lx = 0;
			wd->first = (char)(info0 & 0xff);
			wd->w = wflags;
			/* a copy of the loop for each script: latin a constant in each */
			if (latin)
				i = key_word(anon, p, i, n, k, &ks, &strict, &l, &cp, &info, &all,
					     &any, true);
			else
				i = key_word(anon, p, i, n, k, &ks, &strict, &l, &cp, &info, &all,
					     &any, false);
			s->nwords++;
			wd->end = i;
			if (i - wd->start == l0)
				wd->w |= W_INITIAL; /* a single letter */
			else if (all & HUB_ANON_CP_UPPER)
				wd->w |= W_ALLCAPS;
			if (any & HUB_ANON_CP_CYR)
				wd->w |= W_CYR;
			/* (cp is 0 at the end of the text) */
			if (is_digit((int)cp) && i - start >= 2 &&
			    is_ascii_letter(p[i - 1]) && is_ascii_letter(p[i - 2]) &&
			    s->niban++ < HUB_ARRAY_SIZE(s->iban_at))
				s->iban_at[s->niban - 1] = i - 2;
			if (hub_anon__key_end(k))
				classify(s, wd, strict ? &ks : NULL);
			if ((wd->w & W_LATIN) && (wd->w & (W_CAP | W_GAZ | W_SURNAME | W_PATRO)))
				s->latin_name = true;
			s->word_flags |= wd->w;
			i = wd->end; /* from memory: one value less live across classify */
			ctx = W_ADJ | W_SOFT;
			seps = 0;
			/* a space after the word (most separators, and it changes nothing) is
			 * passed without a branch on it; what is not one is read again above:
			 * one unforeseeable branch, on the next word starting there, not two */
			i += cp == ' ';
			continue;
		}
		ctx &= ~(uint64_t)W_HYPHEN; /* set again by a hyphen */
		if (cp == ' ') { /* most separators: changes nothing, as SEP_SPACE */
			i++;
			continue;
		}
		switch (sep_of(cp)) {
		case SEP_SPACE:
			if (cp == '-' && !seps++ && i > 0)
				ctx |= W_HYPHEN;
			break;
		case SEP_SOFT:
			ctx &= ~(uint64_t)W_ADJ;
			break;
		case SEP_SENT:
			ctx &= ~(uint64_t)W_ADJ;
			if (cp == '.' && !seps && s->nwords && s->words[s->nwords - 1].end == i &&
			    (s->words[s->nwords - 1].w & (W_INITIAL | W_CAP)) ==
				    (W_INITIAL | W_CAP)) {
				ctx |= W_INITDOT; /* "Е. Т. Тен", "Тен Е. Т. просил" */
				break;
			}
			ctx = (ctx | W_SENT) & ~(uint64_t)W_SOFT;
			break;
		case SEP_DIGIT: /* the whole run of digits */
			l = digits_end(p, i + 1, n) - i;
			s->end_digit = i + l;
			if (s->nruns == s->capruns)
				s->runs = hub_pool_grow(s->pool, s->runs, &s->capruns, 32,
							sizeof(*s->runs));
			s->runs[s->nruns++] = (struct digit_run){ i, i + l, s->nwords };
			ctx &= ~(uint64_t)(W_SENT | W_ADJ | W_SOFT);
			break;
		case SEP_AT:
			s->has_at = true;
			ctx &= ~(uint64_t)(W_ADJ | W_SOFT);
			break;
		case SEP_MARK:
			s->has_marker = true;
			ctx &= ~(uint64_t)(W_ADJ | W_SOFT);
			break;
		case SEP_OTHER:
			ctx &= ~(uint64_t)(W_ADJ | W_SOFT);
		}
		i += l;
		/* and a space after it (", ", "12 "), as after a word: without a branch on it
		 * (a space clears W_HYPHEN, and does nothing else) */
		if (i < n) {
			bool space = p[i] == ' ';

			i += space;
			ctx &= ~((uint64_t)space * W_HYPHEN);
		}
	}
}

static inline bool key_ends(const struct hub_anon_key *k, const char *suf, size_t n,
			    size_t min_stem)
{
	if (k->len < n + min_stem)
		return false;
	for (size_t i = 1; i <= n; i++) /* from the end: most differ there (n is a constant) */
		if (k->s[k->len - i] != suf[n - i])
			return false;
	return true;
}

/* Surname and patronymic morphology on a key: W_SURNAME, W_PATRO, or W_KAZSUR for the
 * endings of Kazakh surnames that given names and words share too. */
static uint32_t name_shape(const struct hub_anon_key *k)
{
	/* by the last key byte (k->len >= 3); an ending that contains another one is left
	 * out ("bekov" is an "ov", "inichna" an "ichna") */
#define ENDS(x) key_ends(k, x, sizeof(x) - 1, 3)
	switch (k->s[k->len - 1]) {
	case 'h':
		return ENDS("ovich") || ENDS("evich") ? W_PATRO : 0;
	case 'a': /* and by the byte before it */
		switch (k->s[k->len - 2]) {
		case 'n':
			if (ENDS("ovna") || ENDS("evna") || ENDS("ichna"))
				return W_PATRO;
			return ENDS("ina") ? W_SURNAME : 0;
		case 'v':
			return ENDS("ova") || ENDS("eva") ? W_SURNAME : 0;
		case 'i':
			return ENDS("skaia") ? W_SURNAME : 0;
		}
		return 0;
	case 'v':
		return ENDS("ov") || ENDS("ev") ? W_SURNAME : 0;
	case 'n':
		return ENDS("in") || ENDS("ian") ? W_SURNAME : 0;
	case 'i':
		switch (k->s[k->len - 2]) {
		case 'i':
			return ENDS("skii") ? W_SURNAME : 0;
		case 'l':
			if (ENDS("uli") || ENDS("shvili"))
				return W_SURNAME;
			return ENDS("kali") || ENDS("gali") ? W_KAZSUR : 0;
		case 'z':
			return ENDS("kizi") ? W_SURNAME : 0;
		case 'a':
			return ENDS("bai") ? W_KAZSUR : 0;
		}
		return 0;
	case 'o':
		return ENDS("enko") ? W_SURNAME : 0;
	case 'k':
		if (ENDS("iuk") || ENDS("chuk"))
			return W_SURNAME;
		return ENDS("bek") ? W_KAZSUR : 0;
	case 'e':
		return ENDS("dze") ? W_SURNAME : 0;
	}
	return 0;
#undef ENDS
}

/* Whether k (of two bytes or more) may end as an ending of name_shape: by its last two
 * bytes, which few words end with (a table by the low five bits of each, the key's bytes
 * being 'a'..'z'), before a call that finds most keys end otherwise. */
static inline bool shape_may(const struct hub_anon_key *k)
{
#define B(c) (1u << ((c) & 31))
	static const uint32_t before_last[32] = {
		['h' & 31] = B('c'),
		['a' & 31] = B('n') | B('v') | B('i'),
		['v' & 31] = B('o') | B('e'),
		['n' & 31] = B('i') | B('a'),
		['i' & 31] = B('i') | B('l') | B('z') | B('a'),
		['o' & 31] = B('k'),
		['k' & 31] = B('u') | B('e'),
		['e' & 31] = B('z'),
	};
#undef B
	const char *end = k->s + k->len;

	return before_last[end[-1] & 31] >> (end[-2] & 31) & 1;
}

/* A word in lower case shorter than 14 bytes: its shape (morphology) is at most W_SURSHAPE
 * and W_KAZSUR, which only lower_pair reads, for a word beside a name. It is found there
 * (lower_shape), not for every word classify sees. */
static bool shape_later(const struct hub_anon__word *wd)
{
	return !(wd->w & (W_CAP | W_ALLCAPS)) && wd->end - wd->start < 14;
}

/* The shape of a word: W_SURNAME and W_PATRO only where the rules take them alone
 * (capitalised words, long ones), W_SURSHAPE in any case. */
static uint32_t morphology(const struct hub_anon__word *wd, const struct hub_anon_key *k)
{
	/* no ending fits a shorter key, nor most keys' last two bytes */
	uint32_t m = k->len >= 5 && shape_may(k) ? name_shape(k) : 0;

	if (!m)
		return 0;
	if (shape_later(wd))
		return (m & W_KAZSUR) | W_SURSHAPE;
	return m | W_SURSHAPE;
}

/* morphology of a word (keyed) whose shape classify left for later (shape_later). */
static uint32_t lower_shape(const struct hub_anon__word *wd)
{
	return morphology(wd, &wd->k);
}

/* The word being classified, wd (the last one cut), follows a strong cue (most words follow
 * no cue at all: that is asked first). */
static bool after_strong_cue(const struct scan *s, const struct hub_anon__word *wd)
{
	const struct hub_anon__word *p;

	if (wd == s->words)
		return false;
	p = wd - 1;
	if (!(p->lx & (LX_CUE_STRONG | LX_CUE_WEAK)) || !(wd->w & (W_SOFT | W_ADJ)))
		return false;
	return (p->lx & LX_CUE_STRONG) ||
	       (p != s->words && (p->w & (W_SOFT | W_ADJ)) && (p[-1].lx & LX_CUE_STRONG));
}

/* HUB_ANON_KNOWN and/or HUB_ANON_LEARNED (and HUB_ANON_KAZAKH) when one of the stems (lens[0..n)) of key k is a
 * name of the vault; else 0. */
static uint32_t vault_name_of(const struct hub_anon_vault *v, const struct hub_anon_key *k,
			      const size_t *lens, size_t n)
{
	uint64_t asked = 0; /* bit l: the prefix of l bytes was looked up (and is none) */

	for (size_t i = 0; i < n; i++) {
		size_t norm = hub_anon__key_norm(k->s, lens[i]);
		uint32_t f = 0;

		if (i && lens[i] <= HUB_ANON_STEM_MIN)
			continue; /* Тен is not in тенге */
		if (!(asked >> norm & 1))
			f = hub_anon__vault_name(v, hub_anon__key_hash(k, norm));
		if (!(asked >> lens[i] & 1) && lens[i] != norm)
			f |= hub_anon__vault_name(v, hub_anon__key_hash(k, lens[i]));
		if (f)
			return f;
		asked |= 1ull << norm | 1ull << lens[i];
	}
	return 0;
}

uint32_t hub_anon__word_in_vault(const struct hub_anon_vault *v, const struct hub_anon__word *w)
{
	struct hub_anon__name_starts starts = hub_anon__vault_name_starts(v);
	const struct hub_anon_key *k = &w->k;
	size_t lens[HUB_ANON_STEMS_MAX], nl;

	/* by the key cut_words gave it, looked up as classify looks it up: a word of one key
	 * byte too ("T" after the vault learned "TT", whose key is "t") */
	if (!(w->w & W_KEYED) || !hub_anon__name_may(&starts, k))
		return 0;
	if (k->len < HUB_ANON_STEM_MIN)
		lens[0] = k->len, nl = 1;
	else
		nl = hub_anon__key_stems(k, lens);
	return vault_name_of(v, k, lens, nl);
}

/* A Latin IIN/BIN cue: "IIN", "bin", "BSN", "zhsn" in any case (id_cues_lat; asked only of a
 * word whose key is one of theirs, LX_ID_LAT). */
static bool id_cue_word(const struct scan *s, const struct hub_anon__word *wd)
{
	const char *p = s->text.p + wd->start;
	char c[4];

	if (wd->end - wd->start == 4) {
		for (size_t i = 0; i < 4; i++)
			c[i] = (char)(p[i] | 0x20); /* a Latin word: a non-ASCII byte meets no cue */
		return !memcmp(c, "zhsn", 4);
	}
	if (wd->end - wd->start != 3)
		return false; /* no cue is shorter or longer */
	for (size_t i = 0; i < 3; i++)
		c[i] = (char)(p[i] | 0x20);
	return !memcmp(c, "iin", 3) || !memcmp(c, "bin", 3) || !memcmp(c, "bsn", 3);
}

/* Whether a word the vault has learned as a name (in this text or an earlier one of the
 * conversation) is that name here: capitalised always; in lower case unless the gazetteer,
 * reading it as classify does (its stems lens[0..n) of key k, the first that is a name in
 * its script), takes it for a name that is also a common word: "роза" the flower and
 * "will" stay words though the vault learned Роза and Will; "айгерімге", "жетпісбай" and
 * "arman" are the customer again. A word of three key bytes or fewer ("ли", "ай", "нұр")
 * only capitalised, as the gazetteer takes its short names (W_SHORT): too short to tell
 * from a word. A word with Kazakh letters in lower case meets only a name learned with
 * Kazakh letters, as the gazetteer reads it (ақша is money, not Акша): "дәрі" is medicine,
 * though Дария's stem is "dari". f is the vault's answer (vault_name_of). */
static bool vault_learned(const struct scan *s, const struct hub_anon__word *wd,
			  const struct hub_anon_key *k, const size_t *lens, size_t n, uint32_t f)
{
	if (wd->w & (W_CAP | W_ALLCAPS))
		return true;
	if (k->len < 4 || (k->kazakh && !(f & HUB_ANON_KAZAKH)))
		return false;
	for (size_t i = 0; i < n; i++) {
		uint64_t h = hub_anon__key_hash(k, lens[i]);
		uint32_t lx = lexicon_get(s->anon, h);

		if ((lx & LX_NAME) && (lx & (k->latin ? LX_L : LX_C | LX_F)))
			return !(lx & (k->latin ? LX_AMBIG : LX_AMBIG_CYR));
	}
	return true;
}

/* Whether the key k without its stem of len bytes is a case or possessive ending of Kazakh
 * (of two key bytes or more, none that a Russian case ending also is): -ға/-ге/-қа/-ке/-на/
 * -не, -ны/-ні/-ды/-ді/-ты/-ті, -ның/-нің/-дың/-дің/-тың/-тің, -да/-де/-та/-те, -дан/-ден/
 * -тан/-тен/-нан/-нен, -мен/-бен/-пен, -сы/-сі. */
static bool kazakh_ending(const struct hub_anon_key *k, size_t len)
{
	static const char ends2[][2] = {
		"ga", "ge", "ka", "ke", "na", "ne", "ny", "ni", "dy", "di", "ty", "ti", "da", "de",
		"ta", "te", "sy", "si",
	};
	static const char ends3[][3] = {
		"nyn", "nin", "dyn", "din", "tyn", "tin", "dan", "den", "tan", "ten", "nan", "nen",
		"men", "ben", "pen",
	};
	size_t el = k->len - len;

	if (el == 2) {
		for (size_t i = 0; i < HUB_ARRAY_SIZE(ends2); i++)
			if (k->s[len] == ends2[i][0] && k->s[len + 1] == ends2[i][1])
				return true;
	} else if (el == 3) {
		for (size_t i = 0; i < HUB_ARRAY_SIZE(ends3); i++)
			if (!memcmp(k->s + len, ends3[i], 3))
				return true;
	}
	return false;
}

/* The number of stems of k (hub_anon__key_stems) in lens: n when found already (not
 * 0), else found now. */
static size_t stems_of(const struct hub_anon_key *k, size_t lens[HUB_ANON_STEMS_MAX], size_t n)
{
	return n ? n : hub_anon__key_stems(k, lens);
}

/* Whether lexicon flags f of a key of k (or a stem of it) are a name's that k meets: a
 * Latin word an entry with repeats collapsed, a Cyrillic one an entry as spelled or
 * folded. */
static inline bool name_of_script(const struct hub_anon_key *k, uint32_t f)
{
	return (f & LX_NAME) && (f & (k->latin ? LX_L : LX_C | LX_F));
}

/* Looks a word up by its key (wd->k): lexicon flags of its key, the gazetteer through its
 * inflections, the vault's names, morphology. Its flags are kept in w and lx until the end
 * (nothing it calls reads them but for the case and the words before it). */
static void classify(struct scan *s, struct hub_anon__word *wd, struct hub_anon_key *ks)
{
	const struct hub_anon_key *k = &wd->k;
	size_t lens[HUB_ANON_STEMS_MAX], n = 0, i = 0;
	uint32_t lx, f;
	uint64_t w = wd->w | W_KEYED;

	lx = lexicon_get(s->anon, hub_anon__key_hash(k, k->len));
	if (lx & (LX_PRICE | LX_PATRO | LX_ID_CUE | LX_ID_LAT)) {
		if (lx & LX_PRICE)
			s->price = true;
		if (lx & LX_PATRO)
			w |= W_PATRO_WORD; /* Абен улы */
		if ((lx & LX_ID_CUE) || ((lx & LX_ID_LAT) && k->latin && id_cue_word(s, wd))) {
			w |= W_IDCUE;
			s->id_cue = 0; /* id_cue_end says where */
		}
	}
	lens[0] = k->len; /* the whole key; the other stems once stems_of finds them (n 0) */
	if (k->len < HUB_ANON_STEM_MIN) {
		/* too short for the lexicon's rules, but a name the vault holds (it keeps words
		 * of two letters and more) is one wherever it stands */
		if (hub_anon__name_may(&s->name_starts, k)) {
			f = vault_name_of(s->vault, k, lens, 1);
			if (f & HUB_ANON_KNOWN)
				w |= W_KNOWN;
			else if (f && vault_learned(s, wd, k, lens, 1, f))
				w |= W_LEARNED;
		}
		goto done;
	}
	if (hub_anon__name_may(&s->name_starts, k)) {
		n = stems_of(k, lens, n);
		f = vault_name_of(s->vault, k, lens, n);
		if (f & HUB_ANON_KNOWN)
			w |= W_KNOWN;
		else if (f && vault_learned(s, wd, k, lens, n, f))
			w |= W_LEARNED;
	}
	if (k->kazakh) {
		/* written with Kazakh letters: as spelled first (Айгерім), else only as a
		 * capitalised name (Ақша is an Акша, ақша is money) */
		struct hub_anon_key own;

		f = 0;
		/* cut_words keyed a Cyrillic word strictly as it went (ks) */
		if (ks ? hub_anon__key_end(ks)
		       : hub_anon__key_mode(s->anon, s->text.p + wd->start, wd->end - wd->start,
					    HUB_ANON_KEY_STRICT, ks = &own))
			f = lexicon_get(s->anon, hub_anon__key_hash(ks, ks->len));
		if ((f & (LX_FIRST | LX_SUR)) && (f & LX_C)) {
			w |= W_GAZ | (f & LX_AMBIG_CYR ? W_AMBIG : 0) |
			     (f & LX_FIRST ? W_FIRST : 0);
			if (!shape_later(wd))
				w |= morphology(wd, k);
			goto done;
		}
		w |= W_FOLDED;
	}
	/* the whole key first; then, where the rules use them, its inflections, whatever the
	 * vault holds: what is a name by the text alone must not depend on the vault */
	f = lx;
	if (f & LX_STOP)
		goto done;
	if (!name_of_script(k, f)) {
		/* inflections only matter for a capitalised word, a long one (a stem of 6 and
		 * an ending), or one after a cue: most words need the one lookup */
		bool lex_alone = (w & (W_CAP | W_ALLCAPS)) || k->len >= 7;
		uint32_t cue = 0;

		if (!lex_alone && !after_strong_cue(s, wd))
			goto shape;
		n = stems_of(k, lens, n);
		for (i = 1;; i++) {
			if (i >= n) {
				/* no stem is a name: a cue's, if one is */
				if (cue) {
					lx |= cue;
					w |= W_CUE_INFL;
				}
				goto shape;
			}
			f = lexicon_get(s->anon, hub_anon__key_hash(k, lens[i]));
			if (f & LX_STOP) {
				if (!lex_alone)
					continue; /* a stop word by its cue alone: the cue may
						   * become a marker */
				lx |= LX_STOP;
				goto done;
			}
			if (lens[i] >= 5 && (f & (LX_CUE_WEAK | LX_CUE_STRONG)) && !(f & LX_NAME))
				cue = f & (LX_CUE_WEAK | LX_CUE_STRONG | LX_TITLE); /* Доктору */
			if (name_of_script(k, f))
				break;
		}
	}
	/* a name of the gazetteer, the whole key (i 0) or its stem lens[i] */
	if (!k->latin && !(f & LX_C))
		w |= W_FOLDED;
	w |= W_GAZ;
	if (i || !(f & (LX_FIRST | LX_SUR)))
		w |= W_INFL;
	/* a Cyrillic word is a common word by a Cyrillic entry only ("Тен" is no "ten"); a
	 * Latin one by either, transliterated Russian and Kazakh being words too */
	if (f & (k->latin ? LX_AMBIG : LX_AMBIG_CYR))
		w |= W_AMBIG;
	if (k->latin && (f & LX_AMBIG) && !(f & LX_AMBIG_LAT))
		w |= W_AMBIG_CYR;
	if (f & LX_FIRST)
		w |= W_FIRST;
	if (k->latin && !(f & LX_LAT))
		w |= W_TRANSLIT; /* a Latin word meeting a Cyrillic name */
	if (k->len < 4)
		w |= W_SHORT;
	if (lens[i] >= 6 && (f & (LX_FIRST | LX_SUR)))
		w |= W_LONGSTEM;
	else if (lens[i] >= 5)
		w |= W_MIDSTEM;
	if (i && lens[i] >= 4 && (f & (LX_FIRST | LX_SUR)) && kazakh_ending(k, lens[i]))
		w |= W_KAZCASE;
shape:
	/* no ending fits a shorter key (morphology), nor most keys' last two bytes */
	if (k->len >= 5 && !shape_later(wd) && shape_may(k))
		w |= morphology(wd, k);
done:
	wd->w = w;
	wd->lx = lx;
}

/* The cue before word i: 2 strong, 1 weak, 0 none. */
static inline int cue_before(const struct scan *s, size_t i)
{
	const struct hub_anon__word *p;

	/* most words follow no cue: that first */
	if (!i || !(s->words[i - 1].lx & (LX_CUE_STRONG | LX_CUE_WEAK)) ||
	    !(s->words[i].w & (W_SOFT | W_ADJ)) || (s->words[i].w & W_HYPHEN))
		return 0;
	p = &s->words[i - 1];
	if (p->lx & LX_CUE_STRONG)
		return 2;
	/* "my name is X", "меня зовут - X" */
	if (i >= 2 && (p->lx & LX_CUE_WEAK) && (s->words[i - 2].lx & LX_CUE_STRONG) &&
	    (p->w & (W_ADJ | W_SOFT)))
		return 2;
	if (p->lx & LX_CUE_WEAK)
		return 1;
	return 0;
}

/* contact_after where the text has an '@', or a digit after pos. Not inline: the test in
 * contact_after answers the others without a call. */
__attribute__((noinline)) static bool contact_at(const struct scan *s, size_t pos)
{
	struct hub_str t = s->text;
	size_t digits = 0;

	while (pos < t.len && (t.p[pos] == ' ' || t.p[pos] == ','))
		pos++;
	for (size_t p = pos; s->has_at && p < t.len && p - pos < 64 && t.p[p] != ' ' &&
			     t.p[p] != '\n'; p++)
		if (t.p[p] == '@')
			return p > pos; /* 64: an e-mail's local part is shorter */
	if (pos < t.len && t.p[pos] == '+')
		pos++;
	for (; pos < t.len && digits < 10 && (is_digit(t.p[pos]) || t.p[pos] == ' ' ||
					      t.p[pos] == '-' || t.p[pos] == '(' || t.p[pos] == ')');
	     pos++)
		digits += is_digit(t.p[pos]);
	return digits >= 10;
}

/* What looks like a phone number (ten digits or more) or an e-mail address follows pos.
 * From the text alone, not from what was detected: that depends on the vault. */
static inline bool contact_after(const struct scan *s, size_t pos)
{
	if (!s->has_at && s->end_digit <= pos)
		return false; /* no '@' in the text, nor a digit from pos on */
	return contact_at(s, pos);
}

/* Word i and a neighbour are capitalised Latin words of the gazetteer: "Aigerim Saparova". */
static bool latin_pair(const struct scan *s, size_t i)
{
	const struct hub_anon__word *w = &s->words[i];
	const uint32_t want = W_LATIN | W_CAP | W_GAZ;

	return (i && (w->w & W_ADJ) && (w[-1].w & want) == want) ||
	       (i + 1 < s->nwords && (w[1].w & W_ADJ) && (w[1].w & want) == want);
}

/* How many initials follow word i: capitalised single letters, each with its full stop
 * ("Тен Е. Т.", "Aigerim К."). */
static int initials_after(const struct scan *s, size_t i)
{
	int n = 0;

	for (size_t j = i + 1; j < s->nwords && n < 2; j++) {
		const struct hub_anon__word *w = &s->words[j];

		if ((w->w & (W_INITIAL | W_CAP)) != (W_INITIAL | W_CAP) ||
		    !(w->w & (W_ADJ | W_INITDOT)) || w->end >= s->text.len ||
		    s->text.p[w->end] != '.')
			break;
		n++;
	}
	return n;
}

/* Word flags w are a name of the gazetteer as intrinsic takes one: a Latin word that only a
 * Cyrillic name explains only capitalised in Latin text (tok: s->translit_ok; in Cyrillic
 * text, a brand: Lada), a word of Kazakh letters in Russian spelling only capitalised. */
static inline bool name_gaz(uint64_t w, bool tok)
{
	return (w & W_GAZ) &&
	       ((w & (W_CAP | W_ALLCAPS)) == W_CAP || !(w & (W_TRANSLIT | W_FOLDED))) &&
	       (tok || !(w & W_TRANSLIT));
}

/* ... and as it is written: no inflection, no common word, not short but capitalised. */
static inline bool name_exact(uint64_t w, bool tok)
{
	return name_gaz(w, tok) && !(w & (W_INFL | W_AMBIG)) &&
	       ((w & (W_CAP | W_ALLCAPS)) || !(w & W_SHORT));
}

/* Word flags w make a name by the word alone, whatever its neighbours are (intrinsic, where
 * no cue makes it one): an exact name of the gazetteer; an inflected one when capitalised
 * mid-sentence, of a long stem, or capitalised with a Kazakh case ending ("Әселдің
 * телефоны": no Russian word ends so); a patronymic (morphology finds one only capitalised
 * or long); a surname or a name that is also a word, capitalised mid-sentence. */
static inline bool named_alone(uint64_t w, bool tok)
{
	bool cap = (w & (W_CAP | W_ALLCAPS)) == W_CAP;

	if (name_gaz(w, tok)) {
		if (!(w & (W_INFL | W_AMBIG)) && ((w & (W_CAP | W_ALLCAPS)) || !(w & W_SHORT)))
			return true;
		if ((w & (W_AMBIG | W_INFL)) == W_INFL &&
		    ((w & W_LONGSTEM) || (cap && (w & (W_SENT | W_MIDSTEM | W_KAZCASE)) != W_SENT)))
			return true;
	}
	return (w & W_PATRO) ||
	       ((w & (W_SURNAME | W_AMBIG)) && (w & (W_CAP | W_ALLCAPS | W_SENT)) == W_CAP);
}

/* A name by itself: the gazetteer, morphology, case, cues. Inline in mark_names, which
 * asks it of every candidate name. */
__attribute__((always_inline)) static inline bool intrinsic(const struct scan *s, size_t i)
{
	const struct hub_anon__word *w = &s->words[i];
	const bool tok = s->translit_ok;
	bool cap = (w->w & W_CAP) && !(w->w & W_ALLCAPS);
	bool upper = w->w & (W_CAP | W_ALLCAPS);
	int cue;

	if (w->w & W_INITIAL)
		return false;
	/* by the word alone (most names); without a cue, a Latin word in Cyrillic text is a
	 * product or a brand (Octavia, Venus) unless a Latin name stands beside it */
	if (named_alone(w->w, tok) && (!(w->w & W_LATIN) || tok || latin_pair(s, i)))
		return true;
	/* else by its neighbours: a cue before it (most words follow none) */
	cue = cue_before(s, i);
	if (cue) {
		const struct hub_anon__word *p = &s->words[i - 1];
		bool gaz = name_gaz(w->w, tok);

		if (cue == 2 && (upper || gaz))
			return true;
		/* "я айдана"; "im dana": дана is a Kazakh word, not an English one */
		if (cue == 1 && (p->lx & LX_INTRO) && !upper && gaz &&
		    (!(w->w & W_AMBIG) || ((w->w & W_AMBIG_CYR) && (p->w & W_LATIN))))
			return true;
		/* "Доктору Ли", "Mr Tan": a title wants a name, known or not (not "MS Office") */
		if (cue == 1 && cap && (p->lx & LX_TITLE) && !(p->w & W_ALLCAPS))
			return true;
		/* after a greeting, a Latin word in Cyrillic text is a product ("салам Octavia бар
		 * ма") when the message asks a price, or when only a Cyrillic name explains it;
		 * else the one greeted ("салем Aigerim ертен келем") */
		if (cue == 1 && upper && (gaz || (w->w & (W_SURNAME | W_PATRO))) &&
		    !((p->lx & LX_GREET) && (w->w & W_LATIN) && !tok &&
		      (s->price || !name_exact(w->w, tok) || (w->w & W_TRANSLIT))))
			return true;
	}
	/* "Нұр деген", "Бақыт аға", "гүлнар апай" */
	if (i + 1 < s->nwords && (s->words[i + 1].lx & LX_CUE_AFTER) &&
	    (s->words[i + 1].w & W_ADJ) && (upper || (w->w & W_GAZ)))
		return true;
	/* "Тен Е. Т.", "Aigerim К.": a surname or a name before initials (a text without an
	 * initial has none to count) */
	if (cap && (s->word_flags & W_INITIAL) &&
	    initials_after(s, i) >= (name_gaz(w->w, tok) ? 1 : 2))
		return true;
	/* a capitalised name-word right before a phone or an e-mail: "Arman +7 771..." */
	return cap && (w->w & W_GAZ) && contact_after(s, w->end);
}

/* The word becomes a marker whatever its neighbours are: inside what another detector
 * found, or a name of the vault. Such a word is no context for its neighbours: it is gone
 * from the text the detectors see again (a second look, the guard). */
static bool becomes_marker(const struct hub_anon__word *w)
{
	return (w->w & (W_SPANNED | W_KNOWN)) || ((w->w & W_LEARNED) && !(w->lx & LX_NEVER));
}

/* A house number follows pos after one space: 1-3 digits, then a letter, '/', or the end
 * of a clause ("150,", "26а", "86/4?"), not more digits and not a unit ("100тг"). */
static bool house_number(const struct scan *s, size_t pos)
{
	struct hub_str t = s->text;
	size_t d = 0;

	if (pos >= t.len || t.p[pos] != ' ')
		return false;
	/* a number found as something else ("6a@mail.kz") becomes a marker: no house */
	for (size_t i = 0; i < s->out->n; i++)
		if (s->out->items[i].start <= pos + 1 && pos + 1 < s->out->items[i].end)
			return false;
	for (pos++; pos < t.len && is_digit(t.p[pos]) && d < 4; pos++)
		d++;
	if (!d || d > 3)
		return false;
	if (pos == t.len || t.p[pos] == '/' || t.p[pos] == ',' || t.p[pos] == '?' ||
	    t.p[pos] == '.' || t.p[pos] == '!')
		return true;
	if (t.p[pos] == ' ') {
		/* "на Абая 150 кв 12"; but "на Айгерим 15 мая" is a booking with Айгерим */
		for (size_t i = 0; i < s->nwords; i++)
			if (s->words[i].start == pos + 1)
				return (s->words[i].lx & LX_ORDER) && !becomes_marker(&s->words[i]);
		return false;
	}
	/* a letter glued to it: 26а, but 100тг is money; a name of the vault ("6Ай") no
	 * letter */
	for (size_t i = 0; i < s->nwords; i++)
		if (s->words[i].start == pos)
			return !(s->words[i].lx & LX_UNIT) && !becomes_marker(&s->words[i]) &&
			       s->words[i].end - s->words[i].start <= 2;
	return false;
}

/* A name the vault learned, where it is one (vault_learned). */
static bool learned_name(const struct hub_anon__word *w)
{
	return w->w & W_LEARNED;
}

/* Word i is a name whatever its neighbours are: the vault's, or by itself. */
static bool name_alone(const struct scan *s, size_t i)
{
	const struct hub_anon__word *w = &s->words[i];

	/* as mark_names decides it */
	if (!(w->w & W_KEYED))
		return false;
	if (w->w & W_KNOWN)
		return true;
	if (w->lx & LX_NEVER)
		return false;
	return learned_name(w) || intrinsic(s, i);
}

/* street_word_after of a word keyed in lower case, looked at the first time: its stems but
 * the whole key (a key of 3 bytes or fewer has none). Not inline: place, inline in
 * mark_names, stays small. */
__attribute__((noinline)) static bool street_stems(const struct scan *s,
						  struct hub_anon__word *w)
{
	size_t lens[HUB_ANON_STEMS_MAX], n;

	w->w |= W_STREET_DONE;
	n = hub_anon__key_stems(&w->k, lens);
	for (size_t i = 1; i < n; i++) {
		uint64_t h = hub_anon__key_hash(&w->k, lens[i]);

		if (lexicon_get(s->anon, h) & LX_PLACE_AFTER) {
			w->w |= W_STREET;
			return true;
		}
	}
	return false;
}

/* The word names what a street's name comes before ("көшесі", "street"), in any case ending
 * ("Абай көшесіне"). */
static inline bool street_word_after(const struct scan *s, size_t wi)
{
	struct hub_anon__word *w = &s->words[wi]; /* the answer is kept in it */

	if (w->lx & LX_PLACE_AFTER)
		return true;
	if (!(w->w & W_KEYED) || (w->w & (W_CAP | W_ALLCAPS)))
		return false;
	if (w->w & W_STREET_DONE)
		return w->w & W_STREET;
	return street_stems(s, w);
}

/* Word i after "на" (prev) is a street named after someone: "на Абая 150", "на Бухар жырау
 * 86/4"; "в ТЦ на Абая" (place). Not inline, as street_stems. */
__attribute__((noinline)) static bool street_at(const struct scan *s, size_t i,
					       const struct hub_anon__word *prev,
					       const struct hub_anon__word *next)
{
	const struct hub_anon__word *w = &s->words[i];
	size_t e = w->end;

	if (i >= 2 && (prev->w & W_ADJ) && (w[-2].lx & LX_PLACE_BEFORE) &&
	    !becomes_marker(&w[-2]))
		return true;
	/* not over a name of its own: that becomes a marker, and the street is gone */
	if (next && (next->w & W_ADJ) && !(next->w & W_CAP) && !house_number(s, e) &&
	    !name_alone(s, i + 1))
		e = next->end;
	return house_number(s, e);
}

/* The word is a place or a product, not a person: after "ул", "мкр", "ТОО" or a brand,
 * before "көшесі" or "street". */
__attribute__((always_inline)) static inline bool place(const struct scan *s, size_t i)
{
	const struct hub_anon__word *w = &s->words[i];
	/* a neighbour that becomes a marker (another detector's, or a name of the vault:
	 * becomes_marker) is no context: it is gone from the text the detectors see again */
	const struct hub_anon__word *prev = i && !becomes_marker(&w[-1]) ? &w[-1] : NULL;
	const struct hub_anon__word *next =
		i + 1 < s->nwords && !becomes_marker(&w[1]) ? &w[1] : NULL;

	if (prev && (w->w & (W_ADJ | W_SOFT)) && (prev->lx & LX_PLACE_BEFORE))
		return true;
	if (prev && (w->w & W_ADJ) && (prev->lx & LX_STOP))
		return true; /* Samsung Galaxy, Lada Granta */
	if (prev && (w->w & W_ADJ) && (prev->lx & LX_AT) && street_at(s, i, prev, next))
		return true;
	return next && (next->w & W_ADJ) && street_word_after(s, i + 1);
}

/* What intrinsic needs before it can say yes: the gazetteer, morphology or a cue. */
static bool may_be_intrinsic(const struct scan *s, size_t i)
{
	return (s->words[i].w & (W_GAZ | W_SURNAME | W_PATRO)) ||
	       (i && (s->words[i - 1].lx & (LX_CUE_STRONG | LX_CUE_WEAK))) ||
	       (i + 1 < s->nwords && (s->words[i + 1].lx & LX_CUE_AFTER));
}

static bool same_script(const struct hub_anon__word *a, const struct hub_anon__word *b)
{
	return (a->w & W_CYR) == (b->w & W_CYR) && (a->w & W_LATIN) == (b->w & W_LATIN);
}

/* A word in lower case beside a name in lower case ("мен айдос мырзабек"): a name when it
 * has a name's shape or is in the gazetteer (not as a common word); in Latin letters only
 * with a Kazakh surname's ending ("atym aigerim kunanbay"): a Latin skeleton meets too
 * many English words ("need" is Ned, "again" ends as Russian surnames do). Right after a
 * name that an introduction or a strong cue brought ("я гульмира омар", "atym kamila
 * yerzhigit"), any word of the gazetteer: the customer is saying their full name. */
static bool lower_pair(const struct scan *s, size_t i, size_t ni)
{
	const struct hub_anon__word *w = &s->words[i], *name = &s->words[ni];
	uint64_t shape;

	if ((name->w & (W_CAP | W_ALLCAPS)) || !same_script(w, name))
		return false;
	if (ni + 1 == i && (w->w & W_GAZ) && !(w->w & W_SHORT) && ni &&
	    (cue_before(s, ni) == 2 || (s->words[ni - 1].lx & LX_INTRO)))
		return true;
	/* a word classify left its shape to (not a stop word: those never come here) */
	shape = shape_later(w) ? lower_shape(w) : w->w;
	if (w->w & W_CYR)
		return (shape & W_SURSHAPE) || (w->w & (W_GAZ | W_AMBIG)) == W_GAZ;
	return shape & W_KAZSUR;
}

/* Notes word i as one a pair may start from (a name of the text, an улы), or as one a pass
 * over the pairs changed: lo and hi are the first and the last (mark_names). */
static void pair_from(size_t i, size_t *lo, size_t *hi)
{
	if (i < *lo)
		*lo = i;
	if (i > *hi)
		*hi = i;
}

/* Word i of a pass over the pairs (mark_names): a name when a name beside it makes it one.
 * Returns the first word it made a name (i, or i - 1 before an улы), else SIZE_MAX. What
 * it decides reads only the words' W_INTR that a pass changes (but for the word's own and
 * its neighbours'): the same word with the same neighbours comes out the same. */
static __attribute__((always_inline)) inline size_t pair_word(const struct scan *s, size_t i)
{
	struct hub_anon__word *ws = s->words, *w = &ws[i];
	const size_t nw = s->nwords;
	const struct hub_anon__word *prev, *next;
	bool upper, prev_name, next_name;

	if ((w->w & (W_INTR | W_KEYED)) != W_KEYED || (w->lx & LX_NEVER))
		return SIZE_MAX;
	prev = i ? &ws[i - 1] : NULL;
	if ((w->w & W_PATRO_WORD) && prev && (w->w & W_ADJ) && (prev->w & W_CAP) &&
	    !(prev->lx & LX_NEVER)) {
		ws[i - 1].w |= W_INTR; /* Абен улы */
		w->w |= W_INTR;
		return i - 1;
	}
	next = i + 1 < nw ? &ws[i + 1] : NULL;
	prev_name = prev && (w->w & W_ADJ) && (prev->w & W_INTR);
	next_name = next && (next->w & W_ADJ) && (next->w & W_INTR);
	if ((!prev_name && !next_name) || (w->w & W_INITIAL))
		return SIZE_MAX;
	upper = (w->w & W_CAP) && !(w->w & W_ALLCAPS);
	/* a capitalised word mid-sentence right before a first name is its surname ("примет
	 * Шалкар Бекзат", "ип Смайыл Айдос"); place last, the dearest (neither reads what
	 * the other finds) */
	if ((upper ? (w->w & (W_GAZ | W_SURNAME | W_PATRO | W_SURSHAPE)) ||
			     (prev_name && (prev->w & W_FIRST) && same_script(w, prev)) ||
			     (next_name && (next->w & W_FIRST) && !(w->w & W_SENT) &&
			      same_script(w, next))
		   : lower_pair(s, i, prev_name ? i - 1 : i + 1)) &&
	    !place(s, i)) {
		w->w |= W_INTR;
		return i;
	}
	return SIZE_MAX;
}

/* Whether word w may become a name beside a name (pair_word): keyed, not one yet, no initial,
 * not a word that is never one. */
static inline bool may_pair(const struct hub_anon__word *w)
{
	return (w->w & (W_KEYED | W_INTR | W_INITIAL)) == W_KEYED && !(w->lx & LX_NEVER);
}

/* Marks the names of the text: the vault's (W_NAME) and those by the text (W_INTR). Returns
 * the words up to the last one marked (0: none). */
static size_t mark_names(struct scan *s)
{
	struct hub_anon__word *ws = s->words;
	const size_t nw = s->nwords; /* (a local: the stores to the words do not reload it) */
	size_t lo = SIZE_MAX, hi = 0; /* the first and the last word a pass may change */
	size_t upto = 0; /* the words up to the last marked W_NAME or W_INTR */

	for (struct hub_anon__word *w = ws; w < ws + nw; w++) {
		size_t i;
		bool learned, intr;

		/* most words: nothing below takes a word without one of these */
		if (!(w->w & (W_PATRO_WORD | W_KNOWN | W_LEARNED | W_GAZ | W_SURNAME | W_PATRO |
			      W_CAP | W_ALLCAPS)) || !(w->w & W_KEYED))
			continue;
		i = (size_t)(w - ws);
		learned = learned_name(w);
		if (w->w & W_PATRO_WORD)
			pair_from(i, &lo, &hi);
		if (w->w & W_KNOWN) {
			w->w |= W_NAME;
			upto = i + 1;
		}
		/* every yes of intrinsic has the gazetteer, morphology or a capital
		 * (W_AMBIG comes with W_GAZ) */
		intr = w->w & (W_GAZ | W_SURNAME | W_PATRO | W_CAP | W_ALLCAPS);
		if ((!learned && (!intr || !may_be_intrinsic(s, i))) || (w->lx & LX_NEVER))
			continue;
		/* intrinsic before place (neither changes what the other reads): place is
		 * asked only of a word that would become a name */
		intr = intr && intrinsic(s, i);
		if (!learned && !intr)
			continue;
		if (place(s, i)) {
			/* a street or a product by its context, unless the vault holds it: a
			 * value of the vault is hidden wherever it stands, as a known one is */
			if (learned) {
				w->w |= W_NAME;
				upto = i + 1;
			}
			continue;
		}
		if (learned)
			w->w |= W_NAME;
		if (intr)
			w->w |= W_INTR;
		upto = i + 1;
		if (intr) {
			/* its neighbours may pair with it (pair_word) */
			if (i && (w->w & W_ADJ) && may_pair(w - 1))
				pair_from(i - 1, &lo, &hi);
			if (i + 1 < nw && (w[1].w & W_ADJ) && may_pair(w + 1))
				pair_from(i + 1, &lo, &hi);
		}
	}
	/* Names come in pairs: a capitalised neighbour of a name is a name when it could be
	 * one, and a capitalised word after a first name is its surname. Forwards, backwards
	 * and forwards again, to carry it along a row of names. Each pass only over the words
	 * that may change, lo to hi: at first those beside a name and the улы; then those
	 * beside one the pass before changed, or beside one this pass changes, ahead of it.
	 * The others come out as they did (pair_word), and a pass that changes nothing leaves
	 * nothing for the next one. */
	for (int pass = 0; pass < 3 && lo != SIZE_MAX; pass++) {
		size_t from = lo, to = hi, c;

		lo = SIZE_MAX;
		hi = 0;
		if (pass != 1) {
			for (size_t i = from; i <= to; i++)
				if ((c = pair_word(s, i)) != SIZE_MAX) {
					pair_from(c ? c - 1 : 0, &lo, &hi);
					pair_from(i + 1 < nw ? i + 1 : i, &lo, &hi);
					if (i + 1 < nw && i + 1 > to)
						to = i + 1;
					upto = i + 1 > upto ? i + 1 : upto;
				}
		} else {
			/* word i - 1: i from one after the last */
			for (size_t i = to + 1; i > from; i--)
				if ((c = pair_word(s, i - 1)) != SIZE_MAX) {
					pair_from(c ? c - 1 : 0, &lo, &hi);
					pair_from(i < nw ? i : i - 1, &lo, &hi);
					if (c && c - 1 < from)
						from = c - 1;
					upto = i > upto ? i : upto;
				}
		}
	}
	return upto;
}

static void merge_more(struct hub_anon_spans *o);

/* Sorts and merges overlapping spans into their union, typed by the strongest. */
static inline void merge_spans(struct hub_anon_spans *o)
{
	if (o->n >= 2)
		merge_more(o); /* (fewer are merged already) */
}

/* Some Cyrillic word is left that no span covers (W_SPANNED: none overlaps it), nor a name
 * when names is W_INTR | W_NAME (0: before mark_names, whatever it finds). */
static bool cyrillic_left(const struct scan *s, uint64_t names)
{
	if (!(s->word_flags & W_CYR))
		return false; /* no Cyrillic word at all (Latin text) */
	for (const struct hub_anon__word *w = s->words, *end = w + s->nwords; w < end; w++) {
		/* what becomes a marker is not left: a name by the text or of the vault (a
		 * name the vault learns later in the text is the vault's second look) */
		if ((w->w & (W_CYR | W_SPANNED | names)) == W_CYR &&
		    (w->w & (W_INITIAL | W_CAP)) != (W_INITIAL | W_CAP))
			return true; /* an initial is no text in a script: "Aigerim К." */
	}
	return false;
}

/* 0x80 in each byte of v that is 0, else 0 (exactly: no borrow runs from byte to byte). */
static inline uint64_t zero_bytes(uint64_t v)
{
	const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;

	return ~(((v & low7) + low7) | v) & ~low7;
}

/* Whether a key as spelled differs from it with repeats collapsed: a ы ("y" as spelled, "i"
 * collapsed), two equal bytes side by side, or what a repeat leaves when kh or dzh is folded
 * after it ("ккх" as spelled is "kh", "ддж" "dzh"). Eight bytes at a time, each beside the
 * one before it (the key's buffer is whole words). */
static bool key_would_collapse(const struct hub_anon_key *k)
{
	const uint64_t ones = 0x0101010101010101ull;
	uint64_t before = 0; /* the byte before the word (none before the first) */

	for (size_t o = 0; o < k->len; o += 8) {
		uint64_t x = hub_anon__load(k->s + o, 8), b = x << 8 | before;
		uint64_t hit = zero_bytes(x ^ ('y' * ones)) | zero_bytes(x ^ b) |
			       zero_bytes((x ^ ('h' * ones)) | (b ^ ('k' * ones))) |
			       zero_bytes((x ^ ('z' * ones)) | (b ^ ('d' * ones)));

		if (k->len - o < 8)
			hit &= (1ull << 8 * (k->len - o)) - 1; /* the bytes of the key only */
		if (hit)
			return true;
		before = x >> 56;
	}
	return false;
}

/* Hands the vault the key of a name of one word w (keyed: every name is): its key as the
 * vault keys a name (with repeats collapsed) when it is that, else its key as spelled. A
 * Latin word is keyed with repeats collapsed; a Cyrillic word's key as spelled is that one
 * when nothing in it would collapse (key_would_collapse). */
static void name_word(struct hub_anon__scratch *sc, const struct hub_anon__word *w)
{
	struct hub_anon__name_word *nw;
	bool collapsed;

	if (sc->nnames == HUB_ARRAY_SIZE(sc->names))
		return; /* the vault keys it */
	collapsed = (w->w & W_LATIN) || !key_would_collapse(&w->k);
	nw = &sc->names[sc->nnames++];
	nw->start = w->start;
	nw->end = w->end;
	nw->k = &w->k;
	nw->collapsed = collapsed;
	/* as hub_anon__name_norm_fixed asks the lexicon: of the same key */
	nw->fixed = collapsed && (w->lx & LX_NAME) && (w->lx & LX_L);
}

/* Marks W_SPANNED the words that overlap a span (the spans sorted and merged: none
 * overlaps another): for cyrillic_left and hub_anon__name_left. */
static void mark_spanned(struct scan *s)
{
	struct hub_anon__word *w = s->words, *end = w + s->nwords;

	/* from the first that ends after a span's start, as long as they start before its
	 * end (the words are sorted, and so are their ends) */
	for (size_t j = 0, n = s->out->n; j < n; j++) {
		const struct hub_anon_span *sp = &s->out->items[j];

		while (w < end && w->end <= sp->start)
			w++;
		for (; w < end && w->start < sp->end; w++)
			w->w |= W_SPANNED;
		if (w > s->words)
			w--; /* the last one may overlap the next span too */
	}
}

/* Latin words that only a transliterated Cyrillic name explains are names in Latin text
 * only (in Cyrillic text they are brands: Lada), and so are Latin names without a cue or a
 * Latin name beside them (Octavia). Latin text: no Cyrillic word is left outside what was
 * found, which stays so when what was found is replaced by markers. Merges the spans found
 * before; returns whether it added names after them (else they are merged still). */
static bool decide_names(struct scan *s)
{
	struct hub_anon__word *ws = s->words;
	const struct hub_anon__word *last;
	size_t upto; /* the words up to the last name (mark_names) */

	merge_spans(s->out); /* sorted, and no two overlap */
	mark_spanned(s);
	/* no word mark_names could take for a name: each it finds is the vault's, has one of
	 * these (intrinsic's), or is paired with such a name or an улы. Nothing to decide
	 * then, nor Latin text to look for (latin_name needs W_CAP or W_GAZ...) */
	if (!(s->word_flags & (W_KNOWN | W_LEARNED | W_PATRO_WORD | W_GAZ | W_SURNAME | W_PATRO |
			       W_CAP | W_ALLCAPS)))
		return false;
	/* Latin text whatever the names are (no Cyrillic word outside the spans): one look,
	 * as Latin text (the look as Cyrillic text would find it so, and mark_names changes
	 * nothing else that the second look reads: W_NAME is the same in both) */
	s->translit_ok = s->latin_name && !cyrillic_left(s, 0);
	upto = mark_names(s);
	if (s->latin_name && !s->translit_ok && !cyrillic_left(s, W_INTR | W_NAME)) {
		for (size_t i = 0; i < s->nwords; i++)
			ws[i].w &= ~(uint64_t)W_INTR;
		s->translit_ok = true;
		upto = mark_names(s);
	}
	if (!upto)
		return false; /* no name to add */
	/* the last word marked: the names are before it */
	last = ws + upto - 1;
	/* A known value never makes its neighbours names: what the vault learns from one
	 * text would change what the next look at it finds. */
	for (const struct hub_anon__word *w = ws; w <= last; w++) {
		const struct hub_anon__word *name = w;

		if (!(w->w & (W_NAME | W_INTR)))
			continue;
		/* Анна-Мария, Петров-Водкин: one name */
		while (w < last && (w[1].w & W_HYPHEN) && (w[1].w & (W_NAME | W_INTR)))
			w++;
		add_span(s, name->start, w->end, HUB_ANON_NAME);
		if (w == name && s->scratch)
			name_word(s->scratch, w);
	}
	return true;
}

/* ---- numbers: phones, IIN/BIN, cards ---- */

#define MAX_GROUPS 24
#define MAX_DIGITS 19

struct group {
	size_t start, end; /* bytes of the digits */
	size_t word;       /* the words before it (digit_run.word) */
	unsigned nd;       /* digits */
	char sep;          /* the separator after it: ' ', '-', '.', '(' or ')' (last wins) */
	/* a currency or unit follows it: 1 or 0, -1 until a candidate asks (group_unit) */
	signed char unit;
};

/* The word that ends at or before byte pos, skipping only spaces, '#', '№' and ':';
 * NULL when something else is in between or it is farther than 24 bytes. The words
 * before pos are i: the last of them is the only one that may end there. */
static const struct hub_anon__word *word_before(const struct scan *s, size_t pos, size_t i,
						 bool *hash)
{
	*hash = false;
	for (size_t p = pos; p > 0 && pos - p < 24; p--) {
		unsigned char c = (unsigned char)s->text.p[p - 1];

		if (c == '#' || (c == 0x96 && p >= 3 && (unsigned char)s->text.p[p - 2] == 0x84 &&
				 (unsigned char)s->text.p[p - 3] == 0xe2)) {
			*hash = true;
			if (c == 0x96)
				p -= 2;
			continue;
		}
		if (c == ' ' || c == ':' || c == '.' || c == '-')
			continue;
		if (i && s->words[i - 1].end == p)
			return &s->words[i - 1];
		return NULL;
	}
	return NULL;
}

/* A currency or unit follows the digits that end at pos, s->words[wi] the first word after
 * them. */
static bool followed_by_unit(const struct scan *s, size_t pos, size_t wi)
{
	struct hub_str t = s->text;
	size_t p = pos;

	/* a size: 1200x800, 1200х800 */
	if (p + 1 < t.len && t.p[p] == 'x' && is_digit(t.p[p + 1]))
		return true;
	if (p + 2 < t.len && (unsigned char)t.p[p] == 0xd1 && (unsigned char)t.p[p + 1] == 0x85 &&
	    is_digit(t.p[p + 2]))
		return true;
	while (p < t.len && p - pos < 2 && t.p[p] == ' ')
		p++;
	if (p < t.len && (t.p[p] == '$' || t.p[p] == '%'))
		return true;
	if (p + 2 < t.len && (unsigned char)t.p[p] == 0xe2 && (unsigned char)t.p[p + 1] == 0x82)
		return true; /* ₸ ₽ € */
	/* no word starts in the spaces skipped: the first word after the digits is the first
	 * that starts at p or after it */
	return wi < s->nwords && s->words[wi].start == p && (s->words[wi].lx & LX_UNIT);
}

/* followed_by_unit of a group, found the first time a candidate asks it (phone_ok): most
 * groups are never asked. */
static bool group_unit(const struct scan *s, struct group *g)
{
	if (g->unit < 0)
		g->unit = followed_by_unit(s, g->end, g->word);
	return g->unit;
}

static bool all_same(const char *d, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (d[i] != d[0])
			return false;
	return true;
}

static bool iin_date_ok(const char *d)
{
	int m = (d[2] - '0') * 10 + d[3] - '0', day = (d[4] - '0') * 10 + d[5] - '0';
	static const int mdays[13] = { 0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m >= 1 && m <= 12 && day >= 1 && day <= mdays[m] && d[6] >= '0' && d[6] <= '6';
}

static bool bin_ok(const char *d)
{
	int m = (d[2] - '0') * 10 + d[3] - '0';

	return m >= 1 && m <= 12 && d[4] >= '4' && d[4] <= '6' && d[5] >= '0' && d[5] <= '3';
}

struct cand {
	const char *d; /* digits */
	size_t n;
	struct group *g; /* the groups it spans (the last one followed by a unit: group_unit) */
	size_t ng;
	bool plus;  /* written with a leading '+' */
	bool order; /* after an order, code or address word, or '#'/'№' */
};

/* Cards and IINs are written in blocks separated by spaces or dashes only; the last
 * block may be short (4455-4864-6183-5). */
static bool blocks_ok(const struct cand *c, unsigned min_block)
{
	for (size_t i = 0; i < c->ng; i++) {
		if (c->ng > 1 && i + 1 < c->ng && c->g[i].nd < min_block)
			return false;
		if (i + 1 < c->ng && c->g[i].sep != ' ' && c->g[i].sep != '-')
			return false;
	}
	return true;
}

/* A group of the candidate but its last is followed by a parenthesis: "(777) 250 00 00". */
static bool cand_paren(const struct cand *c)
{
	for (size_t i = 0; i + 1 < c->ng; i++)
		if (c->g[i].sep == ')' || c->g[i].sep == '(')
			return true;
	return false;
}

/* A phone by how it is written (phone_ok without the vault). */
static bool phone_shape(const struct scan *s, const struct cand *c)
{
	const char *d = c->d;
	size_t n = c->n;
	bool shape;

	if (c->ng > 7)
		return false;
	if (c->plus)
		return (n == 11 && d[0] == '7') || (n >= 8 && n <= 15 && d[0] != '0');
	shape = (n == 11 && (d[0] == '8' || d[0] == '7') && d[1] >= '3') ||
		(n == 10 &&
		 (d[0] == '3' || d[0] == '4' || d[0] == '7' || d[0] == '8' || d[0] == '9') &&
		 (c->ng == 1 || c->g[0].nd >= 3 || cand_paren(c))) ||
		(n >= 12 && n <= 17 && d[0] == '0' && d[1] == '0' && d[2] != '0') ||
		(n >= 13 && n <= 17 && d[0] == '8' && d[1] == '1' && d[2] == '0') ||
		/* a local number: 250-00-00 or 250 00 00 */
		(n == 7 && c->ng == 3 && c->g[0].nd == 3 && c->g[1].nd == 2 && c->g[2].nd == 2 &&
		 c->g[0].sep == c->g[1].sep && (c->g[0].sep == '-' || c->g[0].sep == ' '));
	/* the shape first: the unit after it is looked for only then */
	return shape && !c->order && !group_unit(s, &c->g[c->ng - 1]);
}

/* A phone by how it is written or one the vault holds, however written (the shape first:
 * no call, and most phones have it). */
static bool phone_ok(const struct scan *s, const struct cand *c)
{
	const char *d = c->d;
	size_t n = c->n;

	if (phone_shape(s, c))
		return true;
	if (n >= 10 && hub_anon__vault_has_phone(s->vault, d + n - 10, 10))
		return true;
	return n == 7 && hub_anon__vault_has_phone(s->vault, d, 7);
}

/* Where the first IIN/BIN cue outside a marker ends, SIZE_MAX without one: "[IIN_1]" in a
 * text is no cue (the same text with a marker in place of an IIN must find what the first
 * look found). Found when a number asks (classify_number): few do. The spans so far are
 * markers and what other detectors found, and the windows of numbers, none a marker. */
static size_t id_cue_end(struct scan *s)
{
	if (s->id_cue != 0)
		return s->id_cue; /* none, or found */
	s->id_cue = SIZE_MAX;
	for (size_t i = 0; i < s->nwords && s->id_cue == SIZE_MAX; i++) {
		const struct hub_anon__word *w = &s->words[i];
		bool marker = false;

		for (size_t j = 0; j < s->out->n && (w->w & W_IDCUE) && !marker; j++)
			marker = s->out->items[j].type == HUB_ANON_MARKER &&
				 s->out->items[j].start < w->end && w->start < s->out->items[j].end;
		if ((w->w & W_IDCUE) && !marker)
			s->id_cue = w->end;
	}
	return s->id_cue;
}

/* The type of a candidate, or -1. */
static int classify_number(struct scan *s, const struct cand *c)
{
	if (!c->plus && c->n >= 13 && c->n <= MAX_DIGITS && c->d[0] != '0' && blocks_ok(c, 3) &&
	    !all_same(c->d, c->n) && hub_anon_luhn_ok(c->d, c->n))
		return HUB_ANON_CARD;
	if (!c->plus && c->n == 12 && blocks_ok(c, 2)) {
		/* the date first: the checksum is the dearer */
		if ((iin_date_ok(c->d) || bin_ok(c->d)) && hub_anon_kz_checksum_ok(c->d))
			return iin_date_ok(c->d) ? HUB_ANON_IIN : HUB_ANON_BIN;
		/* customers mistype their number: after its cue it is theirs all the same */
		if (!c->order && id_cue_end(s) <= c->g[0].start)
			return HUB_ANON_ID;
	}
	if (phone_ok(s, c))
		return HUB_ANON_PHONE;
	return -1;
}

static bool is_sep(struct hub_str t, size_t i, size_t *len)
{
	unsigned char c = (unsigned char)t.p[i];

	*len = 1;
	if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')')
		return true;
	if (c == 0xc2 && i + 1 < t.len && (unsigned char)t.p[i + 1] == 0xa0) {
		*len = 2; /* no-break space */
		return true;
	}
	return false;
}

/* The longest window of groups anything is written in (a phone in 7, a card in 6). */
#define MAX_WINDOW 8

struct run {
	struct group g[MAX_GROUPS];
	size_t doff[MAX_GROUPS + 1]; /* where each group's digits start in digits */
	/* the digits of the groups, from digits[16] on: run_digits writes 16 bytes before a
	 * group's last digit */
	char digits[16 + MAX_GROUPS * MAX_DIGITS];
	size_t ng;
	size_t first;   /* index in the whole run of g[0] */
	bool plus;      /* the run starts with '+' */
	size_t plus_at;
};

/* Copies the digits of the groups into r->digits + 16, and returns where they are. From the
 * last group to the first, each as the 16 bytes of the text that end with its last digit:
 * what they bring before its digits is written over by the groups before it (or lies in the
 * 16 bytes before the first), and the text's end need not be 16 bytes farther. */
static const char *run_digits(const struct scan *s, struct run *r)
{
	char *digits = r->digits + 16;

	for (size_t i = r->ng; i-- > 0;) {
		size_t end = r->g[i].end, nd = r->g[i].nd;

		if (end >= 16 && nd <= 16)
			memcpy(digits + r->doff[i + 1] - 16, s->text.p + end - 16, 16);
		else
			hub_anon__copy_short(digits + r->doff[i], s->text.p + r->g[i].start, nd);
	}
	return digits;
}

/* Matches every window of groups that starts at g[0..upto) and is something. Every one,
 * not the longest from the left only: then what is found would depend on what was found
 * before, and a marker put in the middle of a run would bring out a new number. The run
 * has 7 digits or more (fewer are nothing: below; most runs). */
static void match_groups(struct scan *s, struct run *r, size_t upto)
{
	struct group *g = r->g;
	const size_t *doff = r->doff;
	const char *digits = run_digits(s, r);

	for (size_t i = 0; i < upto; i++) {
		bool hash = false;
		const struct hub_anon__word *before;
		size_t last = i + MAX_WINDOW < r->ng ? i + MAX_WINDOW : r->ng, j = i;
		struct cand c;

		if (doff[last] - doff[i] < 7)
			continue; /* no window from here has 7 digits */
		while (doff[j + 1] - doff[i] < 7)
			j++; /* the windows of fewer than 7 digits are nothing */
		/* before a group after the run's first there are only separators (no '#' or
		 * '№') back to a digit, where no word ends: no word, no hash */
		before = r->first + i == 0 ? word_before(s, g[i].start, g[i].word, &hash) : NULL;
		c = (struct cand){
			.d = digits + doff[i], .g = g + i,
			.plus = r->plus && r->first + i == 0,
			.order = hash || (before && (before->lx & LX_ORDER)),
		};

		for (; j < last && doff[j + 1] - doff[i] <= MAX_DIGITS; j++) {
			size_t n = doff[j + 1] - doff[i], start;
			int t;

			if (n < 10 && n != 7 && !c.plus)
				continue; /* 8 or 9 digits only after a '+' (phone_ok) */
			c.n = n;
			c.ng = j - i + 1;
			t = classify_number(s, &c);
			if (t < 0)
				continue;
			start = c.plus ? r->plus_at : g[i].start;
			if (start > 0 && s->text.p[start - 1] == '(' && i < j && g[i].sep == ')')
				start--;
			add_window(s, start, g[j].end, (enum hub_anon_type)t);
		}
	}
}

/* Keeps the last MAX_WINDOW groups of a full buffer (their windows are not done; their
 * digits are copied again). */
static void run_shift(struct run *r)
{
	size_t keep = MAX_WINDOW, drop = r->ng - keep, dd = r->doff[drop];

	memmove(r->g, r->g + drop, keep * sizeof(r->g[0]));
	for (size_t i = 0; i <= keep; i++)
		r->doff[i] = r->doff[drop + i] - dd;
	r->ng = keep;
	r->first += drop;
}

/* Runs of digit groups joined by at most three separators, from the runs of digits
 * cut_words found; each run's windows matched as it is read, however long it is. */
static void find_numbers(struct scan *s)
{
	struct hub_str t = s->text;
	struct run r;
	size_t k = 0;

	if (!s->nruns)
		return;
	while (k < s->nruns) {
		size_t i = s->runs[k].start;

		r.ng = 0;
		r.first = 0;
		r.doff[0] = 0;
		r.plus = false;
		if (i >= 1 && t.p[i - 1] == '+') {
			r.plus = true, r.plus_at = i - 1;
		} else if (i >= 2 && t.p[i - 2] == '+' &&
			   (t.p[i - 1] == ' ' || t.p[i - 1] == '(')) {
			r.plus = true, r.plus_at = i - 2;
		}
		for (;;) {
			const struct digit_run *d = &s->runs[k++];
			size_t e = d->end, next, nsep = 0, sl;
			struct group *g;

			if (d->end - d->start > MAX_DIGITS)
				break; /* too long to be anything: the run ends before it */
			if (r.ng == MAX_GROUPS) { /* (24 digits or more) */
				match_groups(s, &r, r.ng - MAX_WINDOW);
				run_shift(&r);
			}
			g = &r.g[r.ng];
			*g = (struct group){ d->start, d->end, d->word,
					     (unsigned)(d->end - d->start), 0, -1 };
			r.doff[r.ng + 1] = r.doff[r.ng] + g->nd;
			r.ng++;
			/* the next run of digits after one to three separators (of 2 bytes at
			 * most) goes on with this one */
			if (k == s->nruns || (next = s->runs[k].start) - e > 6)
				break;
			while (e < next && nsep < 3 && is_sep(t, e, &sl)) {
				if (t.p[e] != ' ' || !g->sep)
					g->sep = t.p[e];
				e += sl;
				nsep++;
			}
			if (e != next)
				break;
		}
		if (r.doff[r.ng] >= 7)
			match_groups(s, &r, r.ng);
	}
}

/* A non-ASCII character that ends at e (exclusive) is a letter. */
static size_t letter_before(struct hub_str t, size_t lo, size_t e)
{
	size_t b = e;
	uint32_t cp;

	while (b > lo && e - b < 4 && ((unsigned char)t.p[b - 1] & 0xc0) == 0x80)
		b--;
	if (b == lo || b == e)
		return 0;
	b--;
	if (hub_utf8_decode((const unsigned char *)t.p + b, e - b, &cp) != e - b ||
	    !cp_is_letter(cp))
		return 0;
	return e - b;
}

/* Where the word of letters (and digits, when digits) around byte i starts (i when none
 * is glued before it). */
static size_t word_start(struct hub_str t, size_t i, bool digits)
{
	size_t b;

	while (i > 0) {
		if (((t.p[i - 1] | 0x20) >= 'a' && (t.p[i - 1] | 0x20) <= 'z') ||
		    (digits && is_digit(t.p[i - 1])))
			i--;
		else if ((b = letter_before(t, 0, i)) > 0)
			i -= b;
		else
			break;
	}
	return i;
}

/* Where the word of letters (and digits, when digits) around byte i ends (i when none is
 * glued after it). */
static size_t word_end(struct hub_str t, size_t i, bool digits)
{
	while (i < t.len) {
		uint32_t cp;
		size_t l = next_cp(t, i, &cp);

		if (!cp_is_letter(cp) && !(digits && is_digit((int)cp)))
			break;
		i += l;
	}
	return i;
}

/* ---- IBAN ---- */

/* An IBAN that starts at byte i: its span added, and the byte after it returned; else i. */
static size_t iban_at(struct scan *s, size_t i)
{
	struct hub_str t = s->text;
	char buf[34];
	size_t ends[34], n = 0, k = i;

	if (i + 4 >= t.len || !is_ascii_letter(t.p[i]) || !is_ascii_letter(t.p[i + 1]) ||
	    !is_digit(t.p[i + 2]) || !is_digit(t.p[i + 3]))
		return i; /* even glued to other letters: what surrounds it may change */
	while (k < t.len && n < 34) {
		if (is_ascii_alnum(t.p[k])) {
			char c = t.p[k];

			buf[n] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
			ends[n++] = ++k;
		} else if ((t.p[k] == ' ' || t.p[k] == '-') && k + 1 < t.len &&
			   is_ascii_alnum(t.p[k + 1]) && n >= 4) {
			k++;
		} else {
			break;
		}
	}
	n = iban_longest(buf, n);
	if (n) {
		size_t e = ends[n - 1];

		/* inside a word or a number, all of it: a piece left would be new */
		while (e < t.len && is_ascii_alnum(t.p[e]))
			e++;
		add_span(s, word_start(t, i, false), word_end(t, e, false), HUB_ANON_IBAN);
		return e;
	}
	return i;
}

static void find_ibans(struct scan *s)
{
	size_t next = 0; /* an IBAN found ends there: none starts inside it */

	if (s->niban > HUB_ARRAY_SIZE(s->iban_at)) {
		for (size_t i = 0; i + 4 < s->text.len; i++)
			if (i >= next && (next = iban_at(s, i)) == i)
				next = 0;
		return;
	}
	for (size_t j = 0; j < s->niban; j++)
		if (s->iban_at[j] >= next && (next = iban_at(s, s->iban_at[j])) == s->iban_at[j])
			next = 0;
}

/* ---- e-mail ---- */

static inline bool email_byte(struct hub_str t, size_t i, bool local)
{
	unsigned char c = (unsigned char)t.p[i];

	if (is_ascii_alnum(c) || c == '.' || c == '-')
		return true;
	if (local && (c == '_' || c == '+' || c == '%' || c == '\''))
		return true;
	return c >= 0x80;
}

static void find_emails(struct scan *s)
{
	struct hub_str t = s->text;
	size_t lo = 0;

	for (size_t a = 0; s->has_at && a < t.len; a++) {
		const char *at = memchr(t.p + a, '@', t.len - a);
		size_t j, k, dot = 0;

		if (!at)
			break;
		a = (size_t)(at - t.p);
		j = a, k = a + 1;
		while (j > lo) {
			if ((unsigned char)t.p[j - 1] >= 0x80) {
				size_t l = letter_before(t, lo, j);

				if (!l)
					break;
				j -= l;
			} else if (email_byte(t, j - 1, true)) {
				j--;
			} else {
				break;
			}
		}
		while (k < t.len) {
			uint32_t cp;
			size_t l = next_cp(t, k, &cp);

			if (cp >= 0x80 ? !cp_is_letter(cp) : !email_byte(t, k, false))
				break;
			k += l;
		}
		while (j < a && (t.p[j] == '.' || t.p[j] == '-' || t.p[j] == '\''))
			j++;
		while (k > a + 1 && (t.p[k - 1] == '.' || t.p[k - 1] == '-'))
			k--;
		for (size_t p = a + 2; p + 2 <= k; p++)
			if (t.p[p] == '.' && t.p[p - 1] != '.')
				dot = p;
		if (j == a || !dot || k - dot < 3)
			continue;
		add_span(s, j, k, HUB_ANON_EMAIL);
		lo = k;
		a = k - 1;
	}
}

/* ---- known literal values and marker-like text ---- */

struct literal_ctx {
	struct scan *s;
};

/* [start, end) lies inside marker-like text (find_markers has run). */
static bool in_marker(const struct scan *s, size_t start, size_t end)
{
	for (size_t i = 0; i < s->out->n; i++)
		if (s->out->items[i].type == HUB_ANON_MARKER && s->out->items[i].start <= start &&
		    end <= s->out->items[i].end)
			return true;
	return false;
}

static void on_literal(struct hub_str value, enum hub_anon_type type, void *data)
{
	struct scan *s = ((struct literal_ctx *)data)->s;
	struct hub_str t = s->text;
	size_t at = 0;

	if (!s->has_at && memchr(value.p, '@', value.len))
		return; /* an e-mail needs its '@' */
	/* wherever it is, even inside a longer word, and then with the whole word of letters
	 * and digits: a piece left behind would be a new word next to the marker, and digits
	 * glued to a value ("a@b.kz12345678") a new number the detectors would find there */
	while ((at = hub_anon__find_ci(t, at, value)) != SIZE_MAX) {
		size_t end = word_end(t, at + value.len, true);

		/* not inside marker-like text ("[PHONE_1]" as a username): the vault's own
		 * markers would bring out new ones in the pseudonymized text */
		if (in_marker(s, at, at + value.len)) {
			at++;
			continue;
		}
		add_span(s, word_start(t, at, true), end, type);
		at = end;
	}
}

static void find_markers(struct scan *s)
{
	struct hub_str t = s->text;
	enum hub_anon_type type;
	unsigned idx;
	size_t at = 0, l;

	if (!s->has_marker)
		return; /* a marker has a '[' or a '_' */
	while ((at = hub_anon__marker_find(t.p, t.len, at, true, &l, &type, &idx)) != SIZE_MAX) {
		/* glued to a word ("ИванPHONE_1"): the word goes with it, or replacing it
		 * would leave a new word behind */
		add_span(s, t.p[at] == '[' ? at : word_start(t, at, false), at + l,
			 HUB_ANON_MARKER);
		at += l;
	}
}

/* ---- putting it together ---- */

/* Which type wins when spans overlap. */
static int rank(enum hub_anon_type t)
{
	static const int r[HUB_ANON_NTYPES] = {
		[HUB_ANON_MARKER] = 7, [HUB_ANON_EMAIL] = 6, [HUB_ANON_IBAN] = 5,
		[HUB_ANON_CARD] = 4, [HUB_ANON_IIN] = 3, [HUB_ANON_BIN] = 3,
		[HUB_ANON_ID] = 3,
		[HUB_ANON_PHONE] = 2, [HUB_ANON_NAME] = 1,
	};
	return r[t];
}

static int cmp_span(const void *a, const void *b)
{
	const struct hub_anon_span *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end > y->end ? -1 : 1;
	return rank(y->type) - rank(x->type);
}

/* merge_spans of two spans or more. */
__attribute__((noinline)) static void merge_more(struct hub_anon_spans *o)
{
	size_t n;

	/* in order, each after the one before (often: each detector finds what it finds in
	 * order): merged already */
	for (n = 1; n < o->n && o->items[n].start > o->items[n - 1].start &&
		    o->items[n].start >= o->items[n - 1].end; n++)
		;
	if (n == o->n)
		return;
	n = 0;
	if (o->n > 16) {
		qsort(o->items, o->n, sizeof(*o->items), cmp_span);
	} else {
		/* a few, mostly in order already: insertion (equal spans are the same span) */
		for (size_t i = 1; i < o->n; i++) {
			struct hub_anon_span x = o->items[i];
			size_t j = i;

			for (; j > 0 && cmp_span(&o->items[j - 1], &x) > 0; j--)
				o->items[j] = o->items[j - 1];
			o->items[j] = x;
		}
	}
	for (size_t i = 1; i < o->n; i++) {
		struct hub_anon_span *last = &o->items[n], *x = &o->items[i];

		if (x->start < last->end) {
			if (x->end > last->end)
				last->end = x->end;
			if (rank(x->type) > rank(last->type))
				last->type = x->type;
			continue;
		}
		o->items[++n] = *x;
	}
	o->n = n + 1;
}

/* What a second look needs (hub_anon__left), for the vault to work out only when it learned
 * something there: the words, which hub_anon__name_left reads, and where the digits are. */
static inline void what_is_left(const struct scan *s, struct hub_anon__left *left)
{
	/* the words live in the scratch (or the pool): without one, look again */
	left->unsure = !s->scratch;
	left->words = s->words;
	left->nwords = s->nwords;
	/* every ASCII digit is in a run (cut_words) */
	left->digits_at = s->nruns ? s->runs[0].start : 0;
	left->digits_end = s->end_digit;
}

bool hub_anon__name_left(const struct hub_anon_vault *v, const struct hub_anon__left *left,
			 const struct hub_anon_spans *spans, uint64_t first)
{
	const struct hub_anon_span *sp = spans->items, *end = sp + spans->n;

	if (left->unsure)
		return true;
	/* a word without a first key byte (0) is looked at too: bit 0, which no key byte
	 * (a lower-case letter) has */
	first |= 1;
	/* A span is a name's (its words, whole) or has what another detector found in it
	 * (W_SPANNED words, and the names it was merged with): the others are outside,
	 * without a look at the spans */
	for (const struct hub_anon__word *w = left->words, *wend = w + left->nwords; w < wend;
	     w++) {
		bool spanned = w->w & W_SPANNED, wanted = first >> (w->first & 63) & 1;

		/* neither, or inside its name: most words, in one branch (bits, not one
		 * branch each) */
		if (!((spanned | wanted) & !(w->w & (W_NAME | W_INTR))))
			continue;
		if (spanned) {
			while (sp < end && sp->end <= w->start)
				sp++;
			if (sp < end && sp->start < w->end) {
				if (w->start < sp->start || w->end > sp->end)
					return true; /* what it is depends on the rest */
				continue; /* inside the span */
			}
		}
		/* by the key the detector gave it, looked up as the detector looks it up */
		if (wanted && hub_anon__word_in_vault(v, w))
			return true;
	}
	return false;
}

int hub_anon_detect(const struct hub_anon *anon, const struct hub_anon_vault *vault,
		    struct hub_pool *pool, struct hub_str text, struct hub_anon_spans *out)
{
	return hub_anon__detect(anon, vault, pool, text, out, NULL, NULL);
}

int hub_anon__detect(const struct hub_anon *anon, const struct hub_anon_vault *vault,
		     struct hub_pool *pool, struct hub_str text, struct hub_anon_spans *out,
		     struct hub_anon__left *left, struct hub_anon__scratch *scratch)
{
	struct scan s;
	struct literal_ctx lc = { &s };

	/* field by field: the inline arrays need no zeroing */
	s.anon = anon;
	s.vault = vault;
	s.name_starts = hub_anon__vault_name_starts(vault);
	s.pool = pool;
	s.scratch = scratch;
	s.text = text;
	s.out = out;
	s.words = scratch ? scratch->cut_first : s.first_words;
	s.nwords = 0;
	s.capwords = HUB_ARRAY_SIZE(s.first_words); /* as many as the scratch's */
	s.translit_ok = false;
	s.latin_name = false;
	s.word_flags = 0;
	s.niban = 0;
	s.end_digit = 0;
	s.id_cue = SIZE_MAX;
	s.runs = s.first_runs;
	s.nruns = 0;
	s.capruns = HUB_ARRAY_SIZE(s.first_runs);
	s.has_at = false;
	s.has_marker = false;
	s.price = false;

	if (scratch)
		scratch->nnames = 0;
	out->items = scratch ? scratch->spans : NULL;
	out->cap = scratch ? scratch->cap_spans : 0;
	out->n = 0;
	if (text.len > HUB_ANON_TEXT_MAX)
		return -EMSGSIZE;
	cut_words(&s);
	find_markers(&s);
	find_emails(&s);
	find_ibans(&s);
	find_numbers(&s);
	hub_anon__vault_each_literal(vault, on_literal, &lc);
	/* decide_names merges the spans the others found: again only when it adds names */
	if (decide_names(&s))
		merge_spans(out);
	if (left)
		what_is_left(&s, left);
	return 0;
}

/* Whether the stem of len bytes of k is a name of the vault (may: one may be) or of the
 * gazetteer with repeats collapsed (hub_anon__name_norm). */
static inline bool name_stem(const struct hub_anon *anon, const struct hub_anon_vault *vault,
			     bool may, const struct hub_anon_key *k, size_t len, size_t norm)
{
	/* the gazetteer first: inline, and most names are there */
	uint32_t f = lexicon_get(anon, hub_anon__key_hash(k, len));

	if ((f & LX_NAME) && (f & LX_L))
		return true;
	return may && hub_anon__vault_name(vault, hub_anon__key_hash(k, norm));
}

bool hub_anon__name_norm_fixed(const struct hub_anon *anon, const struct hub_anon_key *k)
{
	return name_stem(anon, NULL, false, k, k->len, 0);
}

size_t hub_anon__name_norm(const struct hub_anon *anon, const struct hub_anon_vault *vault,
			   const struct hub_anon_key *k)
{
	struct hub_anon__name_starts starts = hub_anon__vault_name_starts(vault);
	bool may = hub_anon__name_may(&starts, k); /* a stem of k may be a name of the vault */
	size_t lens[HUB_ANON_STEMS_MAX], n, norm = hub_anon__key_norm(k->s, k->len);

	/* the whole key (the first of its stems) before the others are found: most names are
	 * in the gazetteer as they are written */
	if (name_stem(anon, vault, may, k, k->len, norm))
		return norm;
	n = hub_anon__key_stems(k, lens);
	for (size_t i = 1; i < n; i++) {
		if (lens[i] <= HUB_ANON_STEM_MIN)
			continue; /* as the detector: Тен is not in тенге */
		if (name_stem(anon, vault, may, k, lens[i], hub_anon__key_norm(k->s, lens[i])))
			return hub_anon__key_norm(k->s, lens[i]);
	}
	return norm;
}
