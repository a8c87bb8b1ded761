/* tests/unit/test_send.c - the send side of the adapters: hub_utf8_split_next and the limits
 * it splits by, every platform's request (path, Authorization, exact body) for every type,
 * quoted replies and escaping, the refusals of build_send (never naming a token), and the
 * answers of realistic platform errors classified by parse_send_result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "adapters/adapter.h"
#include "lib/utf8.h"

static const struct hub_channel wa_channel = {
	.id = "demo-whatsapp",
	.tenant = "demo",
	.kind = HUB_CHANNEL_WHATSAPP,
	.account_id = "106540352242922",
	.access_token = "EAAG-wa-SECRET-token",
	.enabled = true,
};

static const struct hub_channel tg_channel = {
	.id = "demo-telegram",
	.tenant = "demo",
	.kind = HUB_CHANNEL_TELEGRAM,
	.account_id = "7712345678",
	.access_token = "7712345678:AAE-tg_SECRET-token",
	.enabled = true,
};

static const struct hub_channel ig_channel = {
	.id = "demo-instagram",
	.tenant = "demo",
	.kind = HUB_CHANNEL_INSTAGRAM,
	.account_id = "17841400000000000",
	.access_token = "IGAA-ig-SECRET-token",
	.enabled = true,
};

static void assert_str(struct hub_str got, const char *want)
{
	if (!hub_str_eqs(got, want))
		fail_msg("got  %.*s\nwant %s", HUB_STR_FMT(got), want);
}

static struct hub_str str_of(const char *s)
{
	return hub_str_from(s);
}

/* n copies of s. */
static void repeat(struct hub_buf *b, const char *s, int n)
{
	for (int i = 0; i < n; i++)
		hub_buf_adds(b, s);
}

/* ---- hub_utf8_split_next ---- */

static size_t split(const char *text, size_t limit, enum hub_text_unit unit)
{
	return hub_utf8_split_next(str_of(text), limit, unit);
}

/* Splits all of text: parts cover it exactly, each within limit and valid UTF-8. Returns
 * the number of parts. */
static int split_all(struct hub_str text, size_t limit, enum hub_text_unit unit)
{
	size_t off = 0;
	int parts = 0;

	while (off < text.len) {
		struct hub_str rest = { text.p + off, text.len - off };
		size_t n = hub_utf8_split_next(rest, limit, unit);
		struct hub_str part = { rest.p, n };

		assert_true(n > 0 && n <= rest.len);
		assert_true(hub_utf8_valid(part.p, part.len));
		if (hub_utf8_units(part, unit) > limit)
			fail_msg("part %d: %zu units over %zu", parts, hub_utf8_units(part, unit),
				 limit);
		off += n;
		parts++;
	}
	return parts;
}

static void test_units(void **state)
{
	(void)state;
	assert_int_equal(hub_utf8_units(str_of(""), HUB_TEXT_UTF16), 0);
	assert_int_equal(hub_utf8_units(str_of("abc"), HUB_TEXT_UTF16), 3);
	/* Kazakh and Russian letters: 2 bytes, 1 UTF-16 unit */
	assert_int_equal(hub_utf8_units(str_of("Сәлем"), HUB_TEXT_BYTES), 10);
	assert_int_equal(hub_utf8_units(str_of("Сәлем"), HUB_TEXT_UTF16), 5);
	/* € is 3 bytes and 1 unit; an emoji 4 bytes and a surrogate pair */
	assert_int_equal(hub_utf8_units(str_of("€"), HUB_TEXT_BYTES), 3);
	assert_int_equal(hub_utf8_units(str_of("€"), HUB_TEXT_UTF16), 1);
	assert_int_equal(hub_utf8_units(str_of("😀"), HUB_TEXT_BYTES), 4);
	assert_int_equal(hub_utf8_units(str_of("😀"), HUB_TEXT_UTF16), 2);
	/* an invalid byte counts as the U+FFFD the JSON writer sends for it */
	assert_int_equal(hub_utf8_units(str_of("a\xff"), HUB_TEXT_BYTES), 4);
	assert_int_equal(hub_utf8_units(str_of("a\xff"), HUB_TEXT_UTF16), 2);
}

static void test_split_whole_and_exact(void **state)
{
	struct hub_buf b = HUB_BUF_INIT;

	(void)state;
	assert_int_equal(split("", 10, HUB_TEXT_UTF16), 0);
	assert_int_equal(split("short", 10, HUB_TEXT_UTF16), 5);
	/* exactly at the limit: one part, in every unit */
	repeat(&b, "a", 4096);
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 4096, HUB_TEXT_UTF16), 4096);
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 4095, HUB_TEXT_UTF16), 4095);
	hub_buf_reset(&b);
	repeat(&b, "ж", 4096); /* 8192 bytes, 4096 units */
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 4096, HUB_TEXT_UTF16), 8192);
	hub_buf_reset(&b);
	repeat(&b, "😀", 2048); /* 4096 units */
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 4096, HUB_TEXT_UTF16), 8192);
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 4095, HUB_TEXT_UTF16), 8188);
	hub_buf_release(&b);
}

static void test_split_never_inside_a_character(void **state)
{
	struct hub_buf b = HUB_BUF_INIT;

	(void)state;
	/* an emoji at the boundary: 4095 + 2 units do not fit in 4096, it goes whole to the
	 * next part (never half a surrogate pair) */
	repeat(&b, "a", 4095);
	hub_buf_adds(&b, "😀");
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 4096, HUB_TEXT_UTF16), 4095);
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 4097, HUB_TEXT_UTF16), 4099);
	/* 2-byte letters under an odd byte limit: never half a letter */
	hub_buf_reset(&b);
	repeat(&b, "қ", 600);
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 1001, HUB_TEXT_BYTES), 1000);
	assert_int_equal(split_all(hub_buf_str(&b), 1001, HUB_TEXT_BYTES), 2);
	/* 3-byte € under a byte limit */
	assert_int_equal(split("€€€", 8, HUB_TEXT_BYTES), 6);
	/* limit 1: a character above it comes alone, so callers always progress */
	assert_int_equal(split("😀a", 1, HUB_TEXT_UTF16), 4);
	assert_int_equal(split("жa", 1, HUB_TEXT_BYTES), 2);
	assert_int_equal(split("ab", 1, HUB_TEXT_UTF16), 1);
	assert_int_equal(split("a😀", 1, HUB_TEXT_UTF16), 1);
	assert_int_equal(split_all(str_of("Сәлем 😀 әлем"), 2, HUB_TEXT_UTF16), 7);
	/* an invalid byte is a character of its own */
	assert_int_equal(split("ab\xff" "cd", 3, HUB_TEXT_UTF16), 3);
	hub_buf_release(&b);
}

static void test_split_prefers_newline_then_space(void **state)
{
	struct hub_buf b = HUB_BUF_INIT;

	(void)state;
	/* within the last fifth of a 100-unit window: the newline wins over a later space */
	repeat(&b, "a", 85);
	hub_buf_adds(&b, "\n");
	repeat(&b, "b", 5);
	hub_buf_adds(&b, " ");
	repeat(&b, "c", 50);
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 100, HUB_TEXT_UTF16), 86);
	/* a newline before the last fifth is too early: the last space */
	hub_buf_reset(&b);
	repeat(&b, "a", 50);
	hub_buf_adds(&b, "\n");
	repeat(&b, "b", 40);
	hub_buf_adds(&b, " ");
	repeat(&b, "c", 50);
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 100, HUB_TEXT_UTF16), 92);
	/* a space too early: a cut at the limit */
	hub_buf_reset(&b);
	repeat(&b, "a", 50);
	hub_buf_adds(&b, " ");
	repeat(&b, "b", 100);
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 100, HUB_TEXT_UTF16), 100);
	/* a space that is the 101st character still ends the part */
	hub_buf_reset(&b);
	repeat(&b, "a", 100);
	hub_buf_adds(&b, " b");
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 100, HUB_TEXT_UTF16), 100);
	/* Kazakh words: the cut follows the last space, counted in UTF-16 units */
	hub_buf_reset(&b);
	repeat(&b, "Қазақстан ", 12); /* 10 units a word */
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 105, HUB_TEXT_UTF16),
			 10 * strlen("Қазақстан "));
	assert_int_equal(split_all(hub_buf_str(&b), 105, HUB_TEXT_UTF16), 2);
	hub_buf_release(&b);
}

static void test_split_keeps_joined_characters(void **state)
{
	struct hub_buf b = HUB_BUF_INIT;

	(void)state;
	/* e + combining acute: not cut between them */
	repeat(&b, "a", 9);
	hub_buf_adds(&b, "e\xcc\x81" "b");
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 10, HUB_TEXT_UTF16), 9);
	/* ❤️ (U+2764 U+FE0F): the variation selector stays with its heart */
	hub_buf_reset(&b);
	repeat(&b, "a", 9);
	hub_buf_adds(&b, "\xe2\x9d\xa4\xef\xb8\x8f");
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 10, HUB_TEXT_UTF16), 9);
	/* a ZWJ family (man ZWJ woman ZWJ girl, 8 units) is not cut on either side of a ZWJ */
	hub_buf_reset(&b);
	repeat(&b, "a", 5);
	hub_buf_adds(&b, "👨\xe2\x80\x8d👩\xe2\x80\x8d👧");
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 10, HUB_TEXT_UTF16), 5);
	assert_int_equal(split_all(hub_buf_str(&b), 10, HUB_TEXT_UTF16), 2);
	/* nothing but joined characters: cut at a code point rather than not at all */
	hub_buf_reset(&b);
	hub_buf_adds(&b, "e");
	repeat(&b, "\xcc\x81", 20);
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), 10, HUB_TEXT_UTF16), 1 + 9 * 2);
	hub_buf_release(&b);
}

/* A long mixed text through every adapter's own limit. */
static void test_split_at_the_platforms_limits(void **state)
{
	const struct hub_adapter *ig = hub_adapter_find("instagram");
	const struct hub_adapter *wa = hub_adapter_find("whatsapp");
	struct hub_buf b = HUB_BUF_INIT;

	(void)state;
	assert_int_equal(ig->text_max, 1000);
	assert_int_equal(ig->text_unit, HUB_TEXT_BYTES);
	/* Instagram's 1000 bytes hold 500 Kazakh letters, never 501 nor half of one */
	repeat(&b, "ө", 700);
	assert_int_equal(hub_utf8_split_next(hub_buf_str(&b), ig->text_max, ig->text_unit), 1000);
	assert_int_equal(split_all(hub_buf_str(&b), ig->text_max, ig->text_unit), 2);
	hub_buf_reset(&b);
	for (int i = 0; i < 400; i++)
		hub_buf_adds(&b, i % 7 ? "Сәлеметсіз бе! " : "Заказ №42 готов 😀\n");
	assert_int_equal(split_all(hub_buf_str(&b), wa->text_max, wa->text_unit), 2);
	/* 11,148 bytes: 12 parts, as few as the bytes allow, each cut after a space or line */
	assert_int_equal(b.len, 11148);
	assert_int_equal(split_all(hub_buf_str(&b), ig->text_max, ig->text_unit), 12);
	for (struct hub_str rest = hub_buf_str(&b); rest.len;) {
		size_t n = hub_utf8_split_next(rest, ig->text_max, ig->text_unit);

		assert_true(n == rest.len || rest.p[n - 1] == ' ' || rest.p[n - 1] == '\n');
		rest.p += n;
		rest.len -= n;
	}
	assert_int_equal(split_all(hub_buf_str(&b), 7, HUB_TEXT_UTF16) > 100, 1);
	hub_buf_release(&b);
}

/* ---- build_send ---- */

static int build(const char *name, const struct hub_channel *ch, const struct hub_send_msg *msg,
		 struct hub_pool *pool, struct hub_send_req *req, struct hub_err *err)
{
	memset(req, 0, sizeof(*req));
	hub_err_clear(err);
	return hub_adapter_find(name)->build_send(pool, ch, "v21.0", msg, req, err);
}

/* build_send succeeds with this path and body (and the Authorization of the channel). */
static void expect(const char *name, const struct hub_channel *ch, const struct hub_send_msg *msg,
		   const char *path, const char *body)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_send_req req;
	struct hub_err err = HUB_ERR_INIT;
	char auth[128];

	if (build(name, ch, msg, &pool, &req, &err) != 0)
		fail_msg("%s: %s", name, err.msg);
	assert_string_equal(req.method, "POST");
	assert_str(req.path, path);
	assert_str(req.content_type, "application/json");
	assert_str(req.body, body);
	if (ch->kind == HUB_CHANNEL_TELEGRAM) {
		assert_int_equal(req.authorization.len, 0);
	} else {
		snprintf(auth, sizeof(auth), "Bearer %s", ch->access_token);
		assert_str(req.authorization, auth);
	}
	hub_pool_release(&pool);
}

static void test_whatsapp_requests(void **state)
{
	struct hub_send_msg m = { .type = HUB_MSG_TEXT, .recipient = HUB_STR("77011234567"),
				  .text = HUB_STR("Hello") };
	const char *path = "/v21.0/106540352242922/messages";

	(void)state;
	expect("whatsapp", &wa_channel, &m, path,
	       "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
	       "\"to\":\"77011234567\",\"type\":\"text\",\"text\":{\"body\":\"Hello\"}}");
	m.reply_to = HUB_STR("wamid.HBgLNzcwMTEyMzQ1NjcVAgASGBQzQTg0019RjM2MjQ4QUQ1QjQA");
	expect("whatsapp", &wa_channel, &m, path,
	       "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
	       "\"to\":\"77011234567\",\"context\":{\"message_id\":"
	       "\"wamid.HBgLNzcwMTEyMzQ1NjcVAgASGBQzQTg0019RjM2MjQ4QUQ1QjQA\"},"
	       "\"type\":\"text\",\"text\":{\"body\":\"Hello\"}}");
	m.reply_to = HUB_STR_NULL;
	m.type = HUB_MSG_IMAGE;
	m.media_url = HUB_STR("https://cdn.example.kz/p/1.jpg");
	m.text = HUB_STR("Каталог");
	expect("whatsapp", &wa_channel, &m, path,
	       "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
	       "\"to\":\"77011234567\",\"type\":\"image\",\"image\":{\"link\":"
	       "\"https://cdn.example.kz/p/1.jpg\",\"caption\":\"Каталог\"}}");
	m.type = HUB_MSG_DOCUMENT;
	m.media_url = HUB_STR("https://cdn.example.kz/invoice.pdf");
	m.text = HUB_STR("Invoice");
	m.filename = HUB_STR("Счёт №42.pdf");
	expect("whatsapp", &wa_channel, &m, path,
	       "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
	       "\"to\":\"77011234567\",\"type\":\"document\",\"document\":{\"link\":"
	       "\"https://cdn.example.kz/invoice.pdf\",\"caption\":\"Invoice\","
	       "\"filename\":\"Счёт №42.pdf\"}}");
	m.type = HUB_MSG_VIDEO;
	m.text = HUB_STR_NULL;
	m.filename = HUB_STR_NULL;
	m.media_url = HUB_STR("https://cdn.example.kz/v.mp4");
	expect("whatsapp", &wa_channel, &m, path,
	       "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
	       "\"to\":\"77011234567\",\"type\":\"video\",\"video\":{\"link\":"
	       "\"https://cdn.example.kz/v.mp4\"}}");
	m.type = HUB_MSG_AUDIO;
	m.media_url = HUB_STR("https://cdn.example.kz/a.ogg");
	m.recipient = HUB_STR("+77011234567");
	expect("whatsapp", &wa_channel, &m, path,
	       "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
	       "\"to\":\"+77011234567\",\"type\":\"audio\",\"audio\":{\"link\":"
	       "\"https://cdn.example.kz/a.ogg\"}}");
}

static void test_telegram_requests(void **state)
{
	struct hub_send_msg m = { .type = HUB_MSG_TEXT, .recipient = HUB_STR("23"),
				  .text = HUB_STR("Hello") };

	(void)state;
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendMessage",
	       "{\"chat_id\":23,\"text\":\"Hello\"}");
	/* a quoted reply names the message as the webhooks do: "<chat.id>:<message_id>" */
	m.reply_to = HUB_STR("23:1");
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendMessage",
	       "{\"chat_id\":23,\"text\":\"Hello\",\"reply_parameters\":{\"message_id\":1,"
	       "\"allow_sending_without_reply\":true}}");
	m.reply_to = HUB_STR("77");
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendMessage",
	       "{\"chat_id\":23,\"text\":\"Hello\",\"reply_parameters\":{\"message_id\":77,"
	       "\"allow_sending_without_reply\":true}}");
	/* negative and 52-bit chat ids stay exact numbers; anything else is a string */
	m.reply_to = HUB_STR_NULL;
	m.recipient = HUB_STR("-1001234567890");
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendMessage",
	       "{\"chat_id\":-1001234567890,\"text\":\"Hello\"}");
	m.recipient = HUB_STR("4503599627370495");
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendMessage",
	       "{\"chat_id\":4503599627370495,\"text\":\"Hello\"}");
	m.recipient = HUB_STR("@bayge_shop");
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendMessage",
	       "{\"chat_id\":\"@bayge_shop\",\"text\":\"Hello\"}");
	m.recipient = HUB_STR("0023");
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendMessage",
	       "{\"chat_id\":\"0023\",\"text\":\"Hello\"}");
	m.recipient = HUB_STR("99999999999999999999");
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendMessage",
	       "{\"chat_id\":\"99999999999999999999\",\"text\":\"Hello\"}");
	/* media by URL, with a caption and a reply */
	m.recipient = HUB_STR("23");
	m.type = HUB_MSG_IMAGE;
	m.media_url = HUB_STR("https://cdn.example.kz/p/1.jpg");
	m.text = HUB_STR("Каталог");
	m.reply_to = HUB_STR("23:5");
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendPhoto",
	       "{\"chat_id\":23,\"photo\":\"https://cdn.example.kz/p/1.jpg\",\"caption\":"
	       "\"Каталог\",\"reply_parameters\":{\"message_id\":5,"
	       "\"allow_sending_without_reply\":true}}");
	m.reply_to = HUB_STR_NULL;
	m.type = HUB_MSG_DOCUMENT;
	m.text = HUB_STR_NULL;
	m.filename = HUB_STR("ignored.pdf"); /* Telegram names a file sent by URL itself */
	m.media_url = HUB_STR("https://cdn.example.kz/invoice.pdf");
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendDocument",
	       "{\"chat_id\":23,\"document\":\"https://cdn.example.kz/invoice.pdf\"}");
	m.type = HUB_MSG_AUDIO;
	m.media_url = HUB_STR("https://cdn.example.kz/a.mp3");
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendAudio",
	       "{\"chat_id\":23,\"audio\":\"https://cdn.example.kz/a.mp3\"}");
	m.type = HUB_MSG_VIDEO;
	m.media_url = HUB_STR("https://cdn.example.kz/v.mp4");
	m.text = HUB_STR("v");
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendVideo",
	       "{\"chat_id\":23,\"video\":\"https://cdn.example.kz/v.mp4\",\"caption\":\"v\"}");
}

static void test_instagram_requests(void **state)
{
	struct hub_send_msg m = { .type = HUB_MSG_TEXT, .recipient = HUB_STR("1254459154682919"),
				  .text = HUB_STR("Hello") };
	const char *path = "/v21.0/me/messages";

	(void)state;
	expect("instagram", &ig_channel, &m, path,
	       "{\"recipient\":{\"id\":\"1254459154682919\"},\"message\":{\"text\":\"Hello\"}}");
	m.reply_to = HUB_STR("aWdfZAG1faXRlbToxOklHTWVzc2FnZA");
	expect("instagram", &ig_channel, &m, path,
	       "{\"recipient\":{\"id\":\"1254459154682919\"},\"message\":{\"text\":\"Hello\","
	       "\"reply_to\":{\"mid\":\"aWdfZAG1faXRlbToxOklHTWVzc2FnZA\"}}}");
	/* the second attachment of a message is stored as "<mid>:1": quoted as mid */
	m.reply_to = HUB_STR("aWdfZAG1faXRlbToxOklHTWVzc2FnZA:1");
	expect("instagram", &ig_channel, &m, path,
	       "{\"recipient\":{\"id\":\"1254459154682919\"},\"message\":{\"text\":\"Hello\","
	       "\"reply_to\":{\"mid\":\"aWdfZAG1faXRlbToxOklHTWVzc2FnZA\"}}}");
	m.reply_to = HUB_STR_NULL;
	m.type = HUB_MSG_IMAGE;
	m.text = HUB_STR_NULL;
	m.media_url = HUB_STR("https://cdn.example.kz/p/1.jpg");
	expect("instagram", &ig_channel, &m, path,
	       "{\"recipient\":{\"id\":\"1254459154682919\"},\"message\":{\"attachment\":"
	       "{\"type\":\"image\",\"payload\":{\"url\":\"https://cdn.example.kz/p/1.jpg\"}}}}");
	m.type = HUB_MSG_DOCUMENT;
	m.media_url = HUB_STR("https://cdn.example.kz/invoice.pdf");
	expect("instagram", &ig_channel, &m, path,
	       "{\"recipient\":{\"id\":\"1254459154682919\"},\"message\":{\"attachment\":"
	       "{\"type\":\"file\",\"payload\":{\"url\":"
	       "\"https://cdn.example.kz/invoice.pdf\"}}}}");
	m.type = HUB_MSG_AUDIO;
	m.media_url = HUB_STR("https://cdn.example.kz/a.mp3");
	m.reply_to = HUB_STR("m1");
	expect("instagram", &ig_channel, &m, path,
	       "{\"recipient\":{\"id\":\"1254459154682919\"},\"message\":{\"attachment\":"
	       "{\"type\":\"audio\",\"payload\":{\"url\":\"https://cdn.example.kz/a.mp3\"}},"
	       "\"reply_to\":{\"mid\":\"m1\"}}}");
	m.reply_to = HUB_STR_NULL;
	m.type = HUB_MSG_VIDEO;
	m.media_url = HUB_STR("https://cdn.example.kz/v.mp4");
	expect("instagram", &ig_channel, &m, path,
	       "{\"recipient\":{\"id\":\"1254459154682919\"},\"message\":{\"attachment\":"
	       "{\"type\":\"video\",\"payload\":{\"url\":\"https://cdn.example.kz/v.mp4\"}}}}");
}

/* Quotes, backslashes, newlines, tabs, control characters and every script reach the
 * platform as the same string, in valid JSON. */
static void test_escaping(void **state)
{
	struct hub_send_msg m = {
		.type = HUB_MSG_TEXT,
		.recipient = HUB_STR("77011234567"),
		.text = HUB_STR("Say \"hi\"\\\n\tСәлем 😀\x01</script>"),
		.reply_to = HUB_STR("wamid.\"x\""),
	};
	const char *wa_text = "\"Say \\\"hi\\\"\\\\\\n\\tСәлем 😀\\u0001</script>\"";
	char want[512];

	(void)state;
	snprintf(want, sizeof(want),
		 "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
		 "\"to\":\"77011234567\",\"context\":{\"message_id\":\"wamid.\\\"x\\\"\"},"
		 "\"type\":\"text\",\"text\":{\"body\":%s}}", wa_text);
	expect("whatsapp", &wa_channel, &m, "/v21.0/106540352242922/messages", want);
	m.reply_to = HUB_STR_NULL;
	m.recipient = HUB_STR("23");
	snprintf(want, sizeof(want), "{\"chat_id\":23,\"text\":%s}", wa_text);
	expect("telegram", &tg_channel, &m, "/bot7712345678:AAE-tg_SECRET-token/sendMessage",
	       want);
	m.recipient = HUB_STR("12\"}");
	snprintf(want, sizeof(want),
		 "{\"recipient\":{\"id\":\"12\\\"}\"},\"message\":{\"text\":%s}}", wa_text);
	expect("instagram", &ig_channel, &m, "/v21.0/me/messages", want);
	/* invalid UTF-8 becomes U+FFFD, never raw bytes */
	m.text = HUB_STR("a\xff");
	expect("instagram", &ig_channel, &m, "/v21.0/me/messages",
	       "{\"recipient\":{\"id\":\"12\\\"}\"},\"message\":{\"text\":\"a\xef\xbf\xbd\"}}");
}

/* build_send refuses with -EINVAL and this in err (and never the token). */
static void refuse(const char *name, const struct hub_channel *ch, const struct hub_send_msg *msg,
		   const char *why)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_send_req req;
	struct hub_err err = HUB_ERR_INIT;

	assert_int_equal(build(name, ch, msg, &pool, &req, &err), -EINVAL);
	if (!strstr(err.msg, why))
		fail_msg("%s: \"%s\" lacks \"%s\"", name, err.msg, why);
	assert_null(strstr(err.msg, "SECRET"));
	hub_pool_release(&pool);
}

static void test_refusals(void **state)
{
	struct hub_buf big = HUB_BUF_INIT;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_send_req req;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_send_msg m = { .type = HUB_MSG_TEXT, .recipient = HUB_STR("23"),
				  .text = HUB_STR("Hello") };
	struct hub_channel ch;
	const char *const names[] = { "whatsapp", "telegram", "instagram" };
	const struct hub_channel *const channels[] = { &wa_channel, &tg_channel, &ig_channel };

	(void)state;
	for (size_t i = 0; i < HUB_ARRAY_SIZE(names); i++) {
		struct hub_send_msg bad = m;

		bad.recipient = HUB_STR_NULL;
		refuse(names[i], channels[i], &bad, "without a recipient");
		bad = m;
		bad.text = HUB_STR_NULL;
		refuse(names[i], channels[i], &bad, "without text");
		bad.type = HUB_MSG_STICKER;
		bad.media_url = HUB_STR("https://cdn.example.kz/s.webp");
		refuse(names[i], channels[i], &bad, "cannot send sticker");
		bad.type = HUB_MSG_LOCATION;
		refuse(names[i], channels[i], &bad, "cannot send location");
		bad.type = HUB_MSG_IMAGE;
		bad.media_url = HUB_STR_NULL;
		refuse(names[i], channels[i], &bad, "image without a media URL");
		/* a channel without a token, or one a path or header cannot carry */
		ch = *channels[i];
		ch.access_token = NULL;
		refuse(names[i], &ch, &m, "no usable");
		ch.access_token = "";
		refuse(names[i], &ch, &m, "no usable");
		ch.access_token = "SECRET\r\nX-Evil: 1";
		refuse(names[i], &ch, &m, "no usable");
		ch.access_token = "SECRET/../x token";
		refuse(names[i], &ch, &m, "no usable");
	}
	/* texts over the limit, as each platform counts */
	repeat(&big, "😀", 2049); /* 4098 UTF-16 units */
	m.text = hub_buf_str(&big);
	refuse("whatsapp", &wa_channel, &m, "a text of 4098 UTF-16 units, the limit is 4096");
	refuse("telegram", &tg_channel, &m, "a text of 4098 UTF-16 units, the limit is 4096");
	hub_buf_reset(&big);
	repeat(&big, "қ", 501);
	m.text = hub_buf_str(&big);
	refuse("instagram", &ig_channel, &m, "a text of 1002 bytes, the limit is 1000");
	m.text = (struct hub_str){ big.p, 1000 }; /* 500 letters: at the limit */
	assert_int_equal(build("instagram", &ig_channel, &m, &pool, &req, &err), 0);
	hub_buf_release(&big);
	hub_pool_release(&pool);
}

/* The cases above that are not about one platform's rules. */
static void test_refusals_per_platform(void **state)
{
	struct hub_buf big = HUB_BUF_INIT;
	struct hub_send_msg m = { .type = HUB_MSG_IMAGE, .recipient = HUB_STR("23"),
				  .media_url = HUB_STR("https://cdn.example.kz/p/1.jpg"),
				  .text = HUB_STR("caption") };
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_send_req req;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_channel ch = wa_channel;

	(void)state;
	/* Instagram attachments carry no caption; WhatsApp audio neither */
	refuse("instagram", &ig_channel, &m, "image carries no caption");
	m.type = HUB_MSG_AUDIO;
	refuse("whatsapp", &wa_channel, &m, "audio carries no caption");
	/* captions have their own limit: 1024 units */
	repeat(&big, "a", 1025);
	m.type = HUB_MSG_IMAGE;
	m.text = hub_buf_str(&big);
	refuse("whatsapp", &wa_channel, &m, "a caption of 1025 UTF-16 units, the limit is 1024");
	refuse("telegram", &tg_channel, &m, "a caption of 1025 UTF-16 units, the limit is 1024");
	/* Telegram quotes only a message of the recipient's chat, by a positive id */
	m.type = HUB_MSG_TEXT;
	m.text = HUB_STR("Hello");
	m.reply_to = HUB_STR("24:5");
	refuse("telegram", &tg_channel, &m, "reply_to");
	m.reply_to = HUB_STR("23:x");
	refuse("telegram", &tg_channel, &m, "reply_to");
	m.reply_to = HUB_STR("23:0");
	refuse("telegram", &tg_channel, &m, "reply_to");
	m.reply_to = HUB_STR("23:");
	refuse("telegram", &tg_channel, &m, "reply_to");
	/* Meta paths: the API version and the account id are path segments */
	m.reply_to = HUB_STR_NULL;
	assert_int_equal(hub_adapter_find("whatsapp")->build_send(&pool, &wa_channel, "../v1", &m,
								  &req, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "Graph API version"));
	assert_int_equal(hub_adapter_find("instagram")->build_send(&pool, &ig_channel, NULL, &m,
								   &req, &err),
			 -EINVAL);
	ch.account_id = "1065/../x";
	refuse("whatsapp", &ch, &m, "bad account id");
	ch.account_id = NULL;
	refuse("whatsapp", &ch, &m, "bad account id");
	/* Telegram has no API version in its paths */
	assert_int_equal(hub_adapter_find("telegram")->build_send(&pool, &tg_channel, NULL, &m,
								  &req, &err),
			 0);
	hub_buf_release(&big);
	hub_pool_release(&pool);
}

static void test_limits(void **state)
{
	const struct hub_adapter *wa = hub_adapter_find("whatsapp");
	const struct hub_adapter *tg = hub_adapter_find("telegram");
	const struct hub_adapter *ig = hub_adapter_find("instagram");

	(void)state;
	assert_int_equal(wa->text_max, 4096);
	assert_int_equal(wa->text_unit, HUB_TEXT_UTF16);
	assert_true(wa->reply_window_ms == 24 * 3600 * 1000LL);
	assert_int_equal(tg->text_max, 4096);
	assert_int_equal(tg->text_unit, HUB_TEXT_UTF16);
	assert_true(tg->reply_window_ms == 0);
	assert_int_equal(ig->text_max, 1000);
	assert_int_equal(ig->caption_max, 0);
	assert_int_equal(ig->text_unit, HUB_TEXT_BYTES);
	assert_true(ig->reply_window_ms == 24 * 3600 * 1000LL);
	for (enum hub_channel_kind k = HUB_CHANNEL_WHATSAPP; k <= HUB_CHANNEL_INSTAGRAM; k++) {
		assert_non_null(hub_adapter_for(k)->build_send);
		assert_non_null(hub_adapter_for(k)->parse_send_result);
	}
}

/* ---- parse_send_result ---- */

struct answer {
	int status;
	const char *retry_after; /* the header, or NULL */
	const char *body;
	enum hub_send_verdict verdict;
	const char *external_id;
	int64_t retry_after_ms;
	const char *error_code, *error;
};

static void check_answers(const char *name, const struct answer *a, size_t n)
{
	const struct hub_adapter *ad = hub_adapter_find(name);

	for (size_t i = 0; i < n; i++) {
		struct hub_pool pool = HUB_POOL_INIT;
		struct hub_send_result r;

		memset(&r, 0xa5, sizeof(r)); /* always filled */
		assert_int_equal(ad->parse_send_result(&pool, a[i].status,
						       hub_str_from(a[i].retry_after),
						       hub_str_from(a[i].body), &r),
				 0);
		if (r.verdict != a[i].verdict || !hub_str_eqs(r.external_id, a[i].external_id) ||
		    r.retry_after_ms != a[i].retry_after_ms ||
		    !hub_str_eqs(r.error_code, a[i].error_code) ||
		    !hub_str_eqs(r.error, a[i].error))
			fail_msg("%s case %zu: verdict %d id \"%.*s\" wait %lld code \"%.*s\" "
				 "error \"%.*s\"", name, i, (int)r.verdict,
				 HUB_STR_FMT(r.external_id), (long long)r.retry_after_ms,
				 HUB_STR_FMT(r.error_code), HUB_STR_FMT(r.error));
		hub_pool_release(&pool);
	}
}

static void test_whatsapp_answers(void **state)
{
	static const struct answer a[] = {
		{ 200, NULL,
		  "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"+77011234567\","
		  "\"wa_id\":\"77011234567\"}],\"messages\":[{\"id\":"
		  "\"wamid.HBgLNzcwMTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA\"}]}",
		  HUB_SEND_OK, "wamid.HBgLNzcwMTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", 0, "",
		  "" },
		/* accepted without a readable id: still accepted (a resend would duplicate) */
		{ 200, NULL, "{\"messaging_product\":\"whatsapp\"}", HUB_SEND_OK, "", 0, "", "" },
		{ 201, NULL, "not json", HUB_SEND_OK, "", 0, "", "" },
		{ 400, NULL,
		  "{\"error\":{\"message\":\"(#131047) Re-engagement message\",\"type\":"
		  "\"OAuthException\",\"code\":131047,\"error_data\":{\"messaging_product\":"
		  "\"whatsapp\",\"details\":\"Message failed to send because more than 24 hours "
		  "have passed since the customer last replied to this number.\"},\"fbtrace_id\":"
		  "\"AzQbOiS9C3dQ2mXb5nB6Jqq\"}}",
		  HUB_SEND_WINDOW, "", 0, "131047",
		  "131047 (#131047) Re-engagement message: Message failed to send because more "
		  "than 24 hours have passed since the customer last replied to this number." },
		{ 400, NULL,
		  "{\"error\":{\"message\":\"(#131056) (Business Account, Consumer Account) pair "
		  "rate limit hit\",\"type\":\"OAuthException\",\"code\":131056,\"error_data\":{"
		  "\"messaging_product\":\"whatsapp\",\"details\":\"Message failed to send because "
		  "there were too many messages sent from this phone number to the same phone "
		  "number in a short period of time.\"},\"fbtrace_id\":\"A1\"}}",
		  HUB_SEND_RETRY, "", 0, "131056",
		  "131056 (#131056) (Business Account, Consumer Account) pair rate limit hit: "
		  "Message failed to send because there were too many messages sent from this "
		  "phone number to the same phone number in a short period of time." },
		{ 400, "6",
		  "{\"error\":{\"message\":\"(#130429) Rate limit hit\",\"type\":"
		  "\"OAuthException\",\"code\":130429,\"error_data\":{\"messaging_product\":"
		  "\"whatsapp\",\"details\":\"Cloud API message throughput has been reached.\"},"
		  "\"fbtrace_id\":\"A2\"}}",
		  HUB_SEND_RETRY, "", 6000, "130429",
		  "130429 (#130429) Rate limit hit: Cloud API message throughput has been "
		  "reached." },
		{ 400, NULL,
		  "{\"error\":{\"message\":\"(#80007) Rate limit issues\",\"type\":"
		  "\"OAuthException\",\"code\":80007,\"fbtrace_id\":\"A3\"}}",
		  HUB_SEND_RETRY, "", 0, "80007", "80007 (#80007) Rate limit issues" },
		{ 400, NULL,
		  "{\"error\":{\"message\":\"(#131048) Spam rate limit hit\",\"code\":131048}}",
		  HUB_SEND_RETRY, "", 0, "131048", "131048 (#131048) Spam rate limit hit" },
		{ 400, NULL,
		  "{\"error\":{\"message\":\"(#4) Application request limit reached\",\"type\":"
		  "\"OAuthException\",\"is_transient\":true,\"code\":4,\"fbtrace_id\":\"A4\"}}",
		  HUB_SEND_RETRY, "", 0, "4", "4 (#4) Application request limit reached" },
		{ 500, NULL,
		  "{\"error\":{\"message\":\"An unknown error has occurred.\",\"type\":"
		  "\"OAuthException\",\"is_transient\":true,\"code\":1,\"fbtrace_id\":\"A5\"}}",
		  HUB_SEND_RETRY, "", 0, "1", "1 An unknown error has occurred." },
		{ 503, NULL,
		  "{\"error\":{\"message\":\"Service temporarily unavailable\",\"code\":2,"
		  "\"is_transient\":true}}",
		  HUB_SEND_RETRY, "", 0, "2", "2 Service temporarily unavailable" },
		/* an unknown code marked transient */
		{ 400, NULL,
		  "{\"error\":{\"message\":\"Try later\",\"code\":777777,\"is_transient\":true}}",
		  HUB_SEND_RETRY, "", 0, "777777", "777777 Try later" },
		{ 401, NULL,
		  "{\"error\":{\"message\":\"Error validating access token: Session has expired on "
		  "Friday, 12-Jun-26 10:00:00 PDT.\",\"type\":\"OAuthException\",\"code\":190,"
		  "\"error_subcode\":463,\"fbtrace_id\":\"A6\"}}",
		  HUB_SEND_TOKEN, "", 0, "190/463",
		  "190/463 Error validating access token: Session has expired on Friday, "
		  "12-Jun-26 10:00:00 PDT." },
		/* 190 decides even on a 400 */
		{ 400, NULL,
		  "{\"error\":{\"message\":\"Invalid OAuth access token - Cannot parse access "
		  "token\",\"type\":\"OAuthException\",\"code\":190,\"fbtrace_id\":\"A7\"}}",
		  HUB_SEND_TOKEN, "", 0, "190",
		  "190 Invalid OAuth access token - Cannot parse access token" },
		{ 400, NULL,
		  "{\"error\":{\"message\":\"(#100) Invalid parameter\",\"type\":"
		  "\"OAuthException\",\"code\":100,\"error_data\":{\"messaging_product\":"
		  "\"whatsapp\",\"details\":\"Parameter value is not valid\"},\"fbtrace_id\":"
		  "\"A8\"}}",
		  HUB_SEND_PERMANENT, "", 0, "100",
		  "100 (#100) Invalid parameter: Parameter value is not valid" },
		{ 400, NULL,
		  "{\"error\":{\"message\":\"(#131026) Message Undeliverable.\",\"code\":131026,"
		  "\"error_data\":{\"details\":\"(#131026) Message Undeliverable.\"}}}",
		  HUB_SEND_PERMANENT, "", 0, "131026", "131026 (#131026) Message Undeliverable." },
		/* without the platform's JSON: the status decides, the body is not copied */
		{ 502, "30", "<html><body>Bad Gateway 77011234567</body></html>", HUB_SEND_RETRY,
		  "", 30000, "502", "502 (HTTP status)" },
		{ 429, "Wed, 21 Oct 2026 07:28:00 GMT", "", HUB_SEND_RETRY, "", 0, "429",
		  "429 (HTTP status)" },
		{ 408, " 2 ", "", HUB_SEND_RETRY, "", 2000, "408", "408 (HTTP status)" },
		{ 0, NULL, "", HUB_SEND_RETRY, "", 0, "0", "0 (no answer)" },
		{ 401, NULL, "", HUB_SEND_TOKEN, "", 0, "401", "401 (HTTP status)" },
		{ 404, NULL, "{\"error\":\"not an object\"}", HUB_SEND_PERMANENT, "", 0, "404",
		  "404 (HTTP status)" },
		/* a 5xx with a permanent-looking code is still worth retrying */
		{ 500, NULL, "{\"error\":{\"message\":\"x\",\"code\":100}}", HUB_SEND_RETRY, "", 0,
		  "100", "100 x" },
	};

	(void)state;
	check_answers("whatsapp", a, HUB_ARRAY_SIZE(a));
}

static void test_instagram_answers(void **state)
{
	static const struct answer a[] = {
		{ 200, NULL,
		  "{\"recipient_id\":\"1254459154682919\",\"message_id\":"
		  "\"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAyNjg4NTk2MjY0\"}",
		  HUB_SEND_OK, "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAyNjg4NTk2MjY0", 0, "",
		  "" },
		{ 400, NULL,
		  "{\"error\":{\"message\":\"(#10) This message is sent outside of allowed window."
		  "\",\"type\":\"OAuthException\",\"code\":10,\"error_subcode\":2018278,"
		  "\"fbtrace_id\":\"B1\"}}",
		  HUB_SEND_WINDOW, "", 0, "10/2018278",
		  "10/2018278 (#10) This message is sent outside of allowed window." },
		/* code 10 alone is a permission error */
		{ 403, NULL,
		  "{\"error\":{\"message\":\"(#10) Application does not have permission for this "
		  "action\",\"type\":\"OAuthException\",\"code\":10,\"fbtrace_id\":\"B2\"}}",
		  HUB_SEND_PERMANENT, "", 0, "10",
		  "10 (#10) Application does not have permission for this action" },
		{ 400, NULL,
		  "{\"error\":{\"message\":\"Error validating access token: The user has not "
		  "authorized application 1.\",\"type\":\"OAuthException\",\"code\":190,"
		  "\"error_subcode\":458,\"fbtrace_id\":\"B3\"}}",
		  HUB_SEND_TOKEN, "", 0, "190/458",
		  "190/458 Error validating access token: The user has not authorized application "
		  "1." },
		{ 400, NULL,
		  "{\"error\":{\"message\":\"(#551) This person isn't available right now.\","
		  "\"type\":\"OAuthException\",\"code\":551,\"error_subcode\":1545041,"
		  "\"fbtrace_id\":\"B4\"}}",
		  HUB_SEND_PERMANENT, "", 0, "551/1545041",
		  "551/1545041 (#551) This person isn't available right now." },
		{ 400, NULL,
		  "{\"error\":{\"message\":\"(#613) Calls to this api have exceeded the rate "
		  "limit.\",\"type\":\"OAuthException\",\"code\":613,\"fbtrace_id\":\"B5\"}}",
		  HUB_SEND_RETRY, "", 0, "613",
		  "613 (#613) Calls to this api have exceeded the rate limit." },
		{ 500, NULL,
		  "{\"error\":{\"message\":\"An unexpected error has occurred. Please retry your "
		  "request later.\",\"type\":\"OAuthException\",\"is_transient\":true,\"code\":2,"
		  "\"fbtrace_id\":\"B6\"}}",
		  HUB_SEND_RETRY, "", 0, "2",
		  "2 An unexpected error has occurred. Please retry your request later." },
	};

	(void)state;
	check_answers("instagram", a, HUB_ARRAY_SIZE(a));
}

static void test_telegram_answers(void **state)
{
	static const struct answer a[] = {
		{ 200, NULL,
		  "{\"ok\":true,\"result\":{\"message_id\":4242,\"from\":{\"id\":7712345678,"
		  "\"is_bot\":true,\"first_name\":\"Shop\"},\"chat\":{\"id\":23,\"first_name\":"
		  "\"Aigerim\",\"type\":\"private\"},\"date\":1749416383,\"text\":\"Hello\"}}",
		  HUB_SEND_OK, "23:4242", 0, "", "" },
		{ 200, NULL, "{\"ok\":true,\"result\":true}", HUB_SEND_OK, "", 0, "", "" },
		{ 429, "99",
		  "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: retry "
		  "after 7\",\"parameters\":{\"retry_after\":7}}",
		  HUB_SEND_RETRY, "", 7000, "429", "429 Too Many Requests: retry after 7" },
		/* without parameters the header tells the wait */
		{ 429, "3",
		  "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests\"}",
		  HUB_SEND_RETRY, "", 3000, "429", "429 Too Many Requests" },
		{ 401, NULL, "{\"ok\":false,\"error_code\":401,\"description\":\"Unauthorized\"}",
		  HUB_SEND_TOKEN, "", 0, "401", "401 Unauthorized" },
		{ 403, NULL,
		  "{\"ok\":false,\"error_code\":403,\"description\":\"Forbidden: bot was "
		  "blocked by the user\"}",
		  HUB_SEND_PERMANENT, "", 0, "403", "403 Forbidden: bot was blocked by the user" },
		{ 400, NULL,
		  "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: chat not "
		  "found\"}",
		  HUB_SEND_PERMANENT, "", 0, "400", "400 Bad Request: chat not found" },
		{ 400, NULL,
		  "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: message is too "
		  "long\"}",
		  HUB_SEND_PERMANENT, "", 0, "400", "400 Bad Request: message is too long" },
		{ 502, NULL, "<html>Bad Gateway</html>", HUB_SEND_RETRY, "", 0, "502",
		  "502 (HTTP status)" },
		{ 500, NULL,
		  "{\"ok\":false,\"error_code\":500,\"description\":\"Internal Server Error\"}",
		  HUB_SEND_RETRY, "", 0, "500", "500 Internal Server Error" },
		{ 0, NULL, "", HUB_SEND_RETRY, "", 0, "0", "0 (no answer)" },
		/* an absurd error_code: the HTTP status decides */
		{ 403, NULL, "{\"ok\":false,\"error_code\":7,\"description\":\"x\"}",
		  HUB_SEND_PERMANENT, "", 0, "403", "403 x" },
	};

	(void)state;
	check_answers("telegram", a, HUB_ARRAY_SIZE(a));
}

/* A long platform message is cut on a character boundary. */
static void test_long_error_is_cut(void **state)
{
	struct hub_buf body = HUB_BUF_INIT;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_send_result r;

	(void)state;
	hub_buf_adds(&body, "{\"ok\":false,\"error_code\":400,\"description\":\"");
	repeat(&body, "ы", 400);
	hub_buf_adds(&body, "\"}");
	assert_int_equal(hub_adapter_find("telegram")->parse_send_result(&pool, 400, HUB_STR_NULL,
									 hub_buf_str(&body), &r),
			 0);
	assert_int_equal(r.error.len, HUB_SEND_ERROR_MAX);
	assert_true(hub_utf8_valid(r.error.p, r.error.len));
	assert_true(hub_str_startswith(r.error, "400 ыы"));
	hub_buf_release(&body);
	hub_pool_release(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_split_whole_and_exact),
		cmocka_unit_test(test_split_never_inside_a_character),
		cmocka_unit_test(test_split_prefers_newline_then_space),
		cmocka_unit_test(test_split_keeps_joined_characters),
		cmocka_unit_test(test_split_at_the_platforms_limits),
		cmocka_unit_test(test_whatsapp_requests),
		cmocka_unit_test(test_telegram_requests),
		cmocka_unit_test(test_instagram_requests),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_refusals_per_platform),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_whatsapp_answers),
		cmocka_unit_test(test_instagram_answers),
		cmocka_unit_test(test_telegram_answers),
		cmocka_unit_test(test_long_error_is_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
