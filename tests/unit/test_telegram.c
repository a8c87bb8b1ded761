/* tests/unit/test_telegram.c - the Telegram adapter: the secret token, no handshake, every
 * fixture against its golden file, and the fields hubctl parse does not print (update_id,
 * dedupe_key, shared contacts, venue address); bad items, bad bodies, huge ids; long
 * polling (the getUpdates request and answer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapters/adapter.h"
#include "adapters/telegram.h"

#define FIXTURES "tests/fixtures/telegram"

static const struct hub_channel channel = {
	.id = "demo-telegram",
	.tenant = "demo",
	.kind = HUB_CHANNEL_TELEGRAM,
	.account_id = "7712345678",
	.app_secret = "tg-secret_Token-1",
	.enabled = true,
};

/* A fake request: a few headers. */
struct fake_req {
	const char *names[4];
	const char *values[4];
};

static struct hub_str fake_lookup(const void *req, const char *name)
{
	const struct fake_req *r = req;

	for (int i = 0; i < 4 && r->names[i]; i++)
		if (strcasecmp(r->names[i], name) == 0)
			return hub_str_from(r->values[i]);
	return HUB_STR_NULL;
}

static const struct hub_adapter *tg(void)
{
	const struct hub_adapter *a = hub_adapter_find("telegram");

	assert_non_null(a);
	return a;
}

static int verify_with(const struct hub_channel *ch, const char *header, const char *token)
{
	struct fake_req req = { { header }, { token } };
	struct hub_webhook wh = { HUB_STR("{\"update_id\":1}"), fake_lookup, fake_lookup, &req };

	return tg()->verify(ch, &wh);
}

static void test_verify(void **state)
{
	const char *h = "X-Telegram-Bot-Api-Secret-Token";
	struct hub_channel no_secret = channel, empty_secret = channel;

	(void)state;
	assert_ptr_equal(hub_adapter_for(HUB_CHANNEL_TELEGRAM), tg());
	assert_int_equal(tg()->kind, HUB_CHANNEL_TELEGRAM);
	assert_int_equal(verify_with(&channel, h, "tg-secret_Token-1"), 0);
	/* header names are case-insensitive (the HTTP layer's lookup) */
	assert_int_equal(verify_with(&channel, "x-telegram-bot-api-secret-token",
				     "tg-secret_Token-1"), 0);
	/* the token itself is case-sensitive, whole, exact */
	assert_int_equal(verify_with(&channel, h, "tg-secret_token-1"), -EPERM);
	assert_int_equal(verify_with(&channel, h, "tg-secret_Token-"), -EPERM);
	assert_int_equal(verify_with(&channel, h, "tg-secret_Token-12"), -EPERM);
	assert_int_equal(verify_with(&channel, h, " tg-secret_Token-1"), -EPERM);
	assert_int_equal(verify_with(&channel, h, ""), -EPERM);
	assert_int_equal(verify_with(&channel, h, NULL), -EPERM);
	/* another header does not count */
	assert_int_equal(verify_with(&channel, "X-Hub-Signature-256", "tg-secret_Token-1"),
			 -EPERM);
	/* a channel without a secret accepts nothing */
	no_secret.app_secret = NULL;
	empty_secret.app_secret = "";
	assert_int_equal(verify_with(&no_secret, h, "tg-secret_Token-1"), -EPERM);
	assert_int_equal(verify_with(&empty_secret, h, ""), -EPERM);
	assert_int_equal(verify_with(&empty_secret, h, "x"), -EPERM);
}

static void test_no_handshake(void **state)
{
	struct fake_req q = { { "hub.mode", "hub.verify_token", "hub.challenge" },
			      { "subscribe", "tg-secret_Token-1", "123" } };
	struct hub_webhook wh = { HUB_STR_NULL, fake_lookup, fake_lookup, &q };
	struct hub_str reply = HUB_STR_NULL;

	(void)state;
	assert_int_equal(tg()->handshake(&channel, &wh, &reply), -ENOTSUP);
	assert_null(reply.p);
}

static int parse(const char *body, const struct hub_channel *ch, struct hub_pool *pool,
		 struct hub_event_list *out)
{
	struct hub_err err = HUB_ERR_INIT;

	memset(out, 0, sizeof(*out));
	return tg()->parse_webhook(pool, ch, hub_str_from(body), out, &err);
}

static int parse_fixture(const char *name, struct hub_pool *pool, struct hub_buf *body,
			 struct hub_event_list *out)
{
	char path[512];

	snprintf(path, sizeof(path), FIXTURES "/%s", name);
	assert_int_equal(hub_buf_read_file(body, path), 0);
	return parse(body->p, &channel, pool, out);
}

/* Every fixture: its hubctl parse output equals NAME.expected.jsonl, with and without a
 * channel (the payload names no bot, so there is no account to refuse). */
static void test_golden_files(void **state)
{
	DIR *dir = opendir(FIXTURES);
	struct dirent *de;
	int checked = 0;

	(void)state;
	assert_non_null(dir);
	while ((de = readdir(dir))) {
		size_t len = strlen(de->d_name);
		char path[512];
		struct hub_buf body = HUB_BUF_INIT, want = HUB_BUF_INIT, got = HUB_BUF_INIT;
		struct hub_buf line = HUB_BUF_INIT;
		struct hub_pool pool = HUB_POOL_INIT;
		struct hub_event_list ev;

		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), FIXTURES "/%s", de->d_name);
		assert_int_equal(hub_buf_read_file(&body, path), 0);
		snprintf(path, sizeof(path), FIXTURES "/%.*s.expected.jsonl", (int)(len - 5),
			 de->d_name);
		if (hub_buf_read_file(&want, path) < 0)
			fail_msg("%s: no golden file", de->d_name);
		assert_int_equal(parse(body.p, NULL, &pool, &ev), 0);
		for (size_t i = 0; i < ev.n; i++) {
			hub_buf_reset(&line);
			hub_event_to_json(&ev.items[i], &line);
			hub_buf_addstr(&got, hub_buf_str(&line));
			hub_buf_addch(&got, '\n');
		}
		if (strcmp(got.p, want.p) != 0)
			fail_msg("%s: output differs from its golden file:\n%s", de->d_name, got.p);
		/* every update is exactly one event, or ignored, or one bad item */
		assert_int_equal(ev.n + ev.ignored + ev.bad, 1);
		assert_int_equal(ev.bad != 0, strncmp(de->d_name, "bad_", 4) == 0);
		assert_int_equal(ev.ignored != 0, strncmp(de->d_name, "ignored_", 8) == 0);
		if (strncmp(de->d_name, "unsupported_", 12) == 0) {
			assert_int_equal(ev.items[0].msg.type, HUB_MSG_UNSUPPORTED);
			assert_true(ev.items[0].msg.raw_type.len > 0);
		}
		/* with the channel: the same events, named after it */
		assert_int_equal(parse(body.p, &channel, &pool, &ev), 0);
		for (size_t i = 0; i < ev.n; i++) {
			assert_string_equal(ev.items[i].msg.channel_id, "demo-telegram");
			assert_int_equal(ev.items[i].msg.channel_kind, HUB_CHANNEL_TELEGRAM);
			assert_true(ev.items[i].msg.update_id.len > 0);
		}
		checked++;
		hub_pool_release(&pool);
		hub_buf_release(&line);
		hub_buf_release(&got);
		hub_buf_release(&want);
		hub_buf_release(&body);
	}
	closedir(dir);
	assert_true(checked >= 40);
}

static void test_text_fields(void **state)
{
	struct hub_buf body = HUB_BUF_INIT;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	assert_int_equal(parse_fixture("text.json", &pool, &body, &ev), 0);
	assert_int_equal(ev.n, 1);
	m = &ev.items[0].msg;
	assert_int_equal(ev.items[0].kind, HUB_EVENT_MESSAGE);
	assert_true(hub_str_eqs(m->update_id, "10000"));
	assert_true(hub_str_eqs(m->external_id, "1111111:1365"));
	assert_true(hub_str_eqs(m->sender_external_id, "1111111"));
	assert_true(hub_str_eqs(m->sender_profile_name, "Test Test Lastname"));
	assert_true(hub_str_eqs(m->sender_username, "Test"));
	assert_true(hub_str_eqs(m->text, "/start"));
	assert_int_equal(m->type, HUB_MSG_TEXT);
	assert_true(m->platform_ts == 1441645532000LL);
	assert_null(m->sender_phone.p);
	assert_int_equal(m->dedupe_key.len, 0);
	assert_int_equal(m->reply_to_external_id.len, 0);
	hub_pool_release(&pool);
	hub_buf_release(&body);
}

static void test_huge_ids(void **state)
{
	struct hub_buf body = HUB_BUF_INIT;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	assert_int_equal(parse_fixture("text_huge_ids.json", &pool, &body, &ev), 0);
	assert_int_equal(ev.n, 1);
	m = &ev.items[0].msg;
	/* byte for byte: a double would give ...992 and ...996 */
	assert_true(hub_str_eqs(m->update_id, "9223372036854775806"));
	assert_true(hub_str_eqs(m->sender_external_id, "9007199254740993"));
	assert_true(hub_str_eqs(m->external_id, "9007199254740993:9007199254740995"));
	/* beyond int64: not an id we can trust, the item is bad (the update itself fine) */
	assert_int_equal(parse("{\"update_id\":5,\"message\":{\"message_id\":1,\"date\":1,"
			       "\"chat\":{\"id\":9223372036854775808,\"type\":\"private\"},"
			       "\"from\":{\"id\":9223372036854775808,\"first_name\":\"A\"},"
			       "\"text\":\"x\"}}",
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 0);
	assert_int_equal(ev.bad, 1);
	assert_int_equal(parse("{\"update_id\":9223372036854775808,\"message\":{}}", &channel,
			       &pool, &ev), -EBADMSG);
	hub_pool_release(&pool);
	hub_buf_release(&body);
}

static void test_shared_contacts(void **state)
{
	struct hub_buf body = HUB_BUF_INIT;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	/* the sender's own number: it becomes the sender's phone, normalized */
	assert_int_equal(parse_fixture("contact_self.json", &pool, &body, &ev), 0);
	m = &ev.items[0].msg;
	assert_int_equal(m->type, HUB_MSG_CONTACT);
	assert_true(hub_str_eqs(m->contact.phone, "77011234567"));
	assert_true(hub_str_eqs(m->contact.user_id, "5127345680"));
	assert_true(hub_str_eqs(m->contact.name, "Айгерим Нурланова"));
	assert_true(hub_str_eqs(m->sender_phone, "+77011234567"));
	assert_true(hub_str_eqs(m->reply_to_external_id, "5127345680:214"));
	hub_buf_reset(&body);
	assert_int_equal(parse_fixture("contact_self_plus.json", &pool, &body, &ev), 0);
	assert_true(hub_str_eqs(ev.items[0].msg.sender_phone, "+16505551234"));
	/* someone else's number: a card, not the sender's phone */
	hub_buf_reset(&body);
	assert_int_equal(parse_fixture("contact_other.json", &pool, &body, &ev), 0);
	m = &ev.items[0].msg;
	assert_true(hub_str_eqs(m->contact.phone, "+7 (705) 765-43-21"));
	assert_true(hub_str_eqs(m->contact.user_id, "6011223344"));
	assert_true(hub_str_eqs(m->contact.name, "Данияр"));
	assert_int_equal(m->sender_phone.len, 0);
	/* a contact from the address book, no Telegram account */
	hub_buf_reset(&body);
	assert_int_equal(parse_fixture("contact_vcard.json", &pool, &body, &ev), 0);
	m = &ev.items[0].msg;
	assert_true(hub_str_eqs(m->contact.phone, "8 727 255 00 11"));
	assert_true(hub_str_eqs(m->contact.name, "Офис Алматы"));
	assert_int_equal(m->contact.user_id.len, 0);
	assert_int_equal(m->sender_phone.len, 0);
	/* the sender's own card with a number that is no phone: kept, no sender_phone */
	assert_int_equal(parse("{\"update_id\":5,\"message\":{\"message_id\":1,\"date\":1,"
			       "\"chat\":{\"id\":42,\"type\":\"private\"},"
			       "\"from\":{\"id\":42,\"first_name\":\"A\"},"
			       "\"contact\":{\"phone_number\":\"12\",\"first_name\":\"A\","
			       "\"user_id\":42}}}",
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.items[0].msg.sender_phone.len, 0);
	assert_true(hub_str_eqs(ev.items[0].msg.contact.phone, "12"));
	hub_pool_release(&pool);
	hub_buf_release(&body);
}

static void test_media_and_places(void **state)
{
	struct hub_buf body = HUB_BUF_INIT;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	/* the largest size, even when the sizes are not in order */
	assert_int_equal(parse_fixture("photo.json", &pool, &body, &ev), 0);
	m = &ev.items[0].msg;
	assert_int_equal(m->type, HUB_MSG_IMAGE);
	assert_true(hub_str_eqs(m->media.platform_id, "AgACAgIAAxkBAAIBY2VhbGFyZ2VfMTI4MA"));
	assert_true(hub_str_eqs(m->media.mime, "image/jpeg")); /* photos are JPEG */
	assert_true(m->media.size == 145024);                  /* of the largest size */
	assert_true(hub_str_eqs(m->text, "Вот такой размер нужен"));
	hub_buf_reset(&body);
	/* a document: file_id, mime type, name and size, never a download URL */
	assert_int_equal(parse_fixture("document.json", &pool, &body, &ev), 0);
	m = &ev.items[0].msg;
	assert_int_equal(m->type, HUB_MSG_DOCUMENT);
	assert_true(hub_str_eqs(m->media.platform_id, "BQACAgIAAxkBAAIBaWVkb2N1bWVudA"));
	assert_true(hub_str_eqs(m->media.mime, "application/pdf"));
	assert_true(hub_str_eqs(m->media.filename, "Счёт на оплату №118.pdf"));
	assert_true(m->media.size == 84213);
	hub_buf_reset(&body);
	assert_int_equal(parse_fixture("voice.json", &pool, &body, &ev), 0);
	m = &ev.items[0].msg;
	assert_int_equal(m->type, HUB_MSG_AUDIO);
	assert_true(hub_str_eqs(m->raw_type, "voice"));
	assert_true(hub_str_eqs(m->media.mime, "audio/ogg"));
	hub_buf_reset(&body);
	assert_int_equal(parse_fixture("animation.json", &pool, &body, &ev), 0);
	assert_true(hub_str_eqs(ev.items[0].msg.raw_type, "animation"));
	assert_int_equal(ev.items[0].msg.type, HUB_MSG_VIDEO);
	hub_buf_reset(&body);
	assert_int_equal(parse_fixture("venue.json", &pool, &body, &ev), 0);
	m = &ev.items[0].msg;
	assert_int_equal(m->type, HUB_MSG_LOCATION);
	assert_true(m->location.present);
	assert_true(m->location.lat > 51.08 && m->location.lat < 51.09);
	assert_true(m->location.lon > 71.41 && m->location.lon < 71.42);
	assert_true(hub_str_eqs(m->location.name, "Хан Шатыр"));
	assert_true(hub_str_eqs(m->location.address, "проспект Туран, 37, Астана"));
	hub_buf_reset(&body);
	assert_int_equal(parse_fixture("location.json", &pool, &body, &ev), 0);
	m = &ev.items[0].msg;
	assert_true(m->location.present);
	assert_int_equal(m->location.name.len, 0);
	assert_int_equal(m->location.address.len, 0);
	hub_pool_release(&pool);
	hub_buf_release(&body);
}

static void test_edits(void **state)
{
	struct hub_buf body = HUB_BUF_INIT;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	assert_int_equal(parse_fixture("edited_text.json", &pool, &body, &ev), 0);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_EDIT);
	m = &ev.items[0].msg;
	/* the edited message's id, the new text, unique by edit_date, at edit time */
	assert_true(hub_str_eqs(m->external_id, "5127345680:201"));
	assert_true(hub_str_eqs(m->text, "Здравствуйте! Есть ли доставка в Астану и Караганду?"));
	assert_true(hub_str_eqs(m->dedupe_key, "1764067320"));
	assert_true(m->platform_ts == 1764067320000LL);
	hub_buf_reset(&body);
	assert_int_equal(parse_fixture("location_live_edit.json", &pool, &body, &ev), 0);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_EDIT);
	assert_true(hub_str_eqs(ev.items[0].msg.dedupe_key, "1764067230"));
	assert_true(ev.items[0].msg.location.present);
	/* an edit without edit_date cannot be deduplicated: bad */
	assert_int_equal(parse("{\"update_id\":5,\"edited_message\":{\"message_id\":1,\"date\":1,"
			       "\"chat\":{\"id\":42,\"type\":\"private\"},"
			       "\"from\":{\"id\":42,\"first_name\":\"A\"},\"text\":\"x\"}}",
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 0);
	assert_int_equal(ev.bad, 1);
	hub_pool_release(&pool);
	hub_buf_release(&body);
}

static void test_reactions(void **state)
{
	struct hub_buf body = HUB_BUF_INIT;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;
	const struct hub_inbound_msg *m;

	(void)state;
	assert_int_equal(parse_fixture("reaction_add.json", &pool, &body, &ev), 0);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_REACTION);
	m = &ev.items[0].msg;
	assert_int_equal(m->type, HUB_MSG_REACTION);
	assert_int_equal(m->external_id.len, 0);
	assert_true(hub_str_eqs(m->reply_to_external_id, "5127345680:190"));
	assert_true(hub_str_eqs(m->text, "❤"));
	assert_true(hub_str_eqs(m->dedupe_key, "5127345680:1764067600:❤"));
	assert_true(hub_str_eqs(m->sender_external_id, "5127345680"));
	assert_true(m->platform_ts == 1764067600000LL);
	hub_buf_reset(&body);
	assert_int_equal(parse_fixture("reaction_removed.json", &pool, &body, &ev), 0);
	m = &ev.items[0].msg;
	assert_int_equal(m->text.len, 0);
	assert_true(hub_str_eqs(m->dedupe_key, "5127345680:1764067700:"));
	hub_buf_reset(&body);
	assert_int_equal(parse_fixture("reaction_custom_emoji.json", &pool, &body, &ev), 0);
	assert_true(hub_str_eqs(ev.items[0].msg.text, "5368324170671202286"));
	/* an anonymous reaction (actor_chat, no user) has no sender: bad */
	assert_int_equal(parse("{\"update_id\":5,\"message_reaction\":{\"chat\":{\"id\":42,"
			       "\"type\":\"private\"},\"message_id\":3,\"date\":7,"
			       "\"actor_chat\":{\"id\":42},\"old_reaction\":[],"
			       "\"new_reaction\":[{\"type\":\"emoji\",\"emoji\":\"👍\"}]}}",
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 0);
	assert_int_equal(ev.bad, 1);
	/* an emoji reaction without its emoji: bad */
	assert_int_equal(parse("{\"update_id\":5,\"message_reaction\":{\"chat\":{\"id\":42,"
			       "\"type\":\"private\"},\"message_id\":3,\"date\":7,"
			       "\"user\":{\"id\":42,\"first_name\":\"A\"},\"old_reaction\":[],"
			       "\"new_reaction\":[{\"type\":\"emoji\"}]}}",
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.bad, 1);
	hub_pool_release(&pool);
	hub_buf_release(&body);
}

#define PRIVATE_MSG(inner)                                                                 \
	"{\"update_id\":7,\"message\":{\"message_id\":11,\"date\":1700000000,"             \
	"\"chat\":{\"id\":42,\"type\":\"private\"},\"from\":{\"id\":42,\"first_name\":\"A\"}" \
	inner "}}"

static void test_bad_items(void **state)
{
	static const char *const bad[] = {
		/* ids and dates missing or of the wrong type */
		"{\"update_id\":7,\"message\":{\"date\":1,"
		"\"chat\":{\"id\":42,\"type\":\"private\"},"
		"\"from\":{\"id\":42},\"text\":\"x\"}}",
		"{\"update_id\":7,\"message\":{\"message_id\":1,\"date\":1,\"from\":{\"id\":42},"
		"\"text\":\"x\"}}",
		"{\"update_id\":7,\"message\":{\"message_id\":1,\"date\":1,\"chat\":{\"id\":42,"
		"\"type\":\"private\"},\"text\":\"x\"}}",
		"{\"update_id\":7,\"message\":{\"message_id\":1,\"chat\":{\"id\":42,"
		"\"type\":\"private\"},\"from\":{\"id\":42},\"text\":\"x\"}}",
		"{\"update_id\":7,\"message\":{\"message_id\":\"1\",\"date\":1,\"chat\":{\"id\":42,"
		"\"type\":\"private\"},\"from\":{\"id\":42},\"text\":\"x\"}}",
		"{\"update_id\":7,\"message\":{\"message_id\":1,\"date\":1,\"chat\":{\"id\":\"42\","
		"\"type\":\"private\"},\"from\":{\"id\":42},\"text\":\"x\"}}",
		"{\"update_id\":7,\"message\":{\"message_id\":1.5,\"date\":1,\"chat\":{\"id\":42,"
		"\"type\":\"private\"},\"from\":{\"id\":42},\"text\":\"x\"}}",
		"{\"update_id\":7,\"message\":{\"message_id\":1,\"date\":1,\"chat\":{\"id\":42,"
		"\"type\":\"private\"},\"from\":{\"id\":4.2e1},\"text\":\"x\"}}",
		"{\"update_id\":7,\"message\":{\"message_id\":1,\"date\":\"1700000000\","
		"\"chat\":{\"id\":42,\"type\":\"private\"},\"from\":{\"id\":42},\"text\":\"x\"}}",
		/* the update's payload is not an object */
		"{\"update_id\":7,\"message\":5}",
		"{\"update_id\":7,\"message\":[]}",
		"{\"update_id\":7,\"message_reaction\":null}",
		/* content without what makes it content */
		PRIVATE_MSG(",\"photo\":[]"),
		PRIVATE_MSG(",\"photo\":[{\"width\":90,\"height\":90}]"),
		PRIVATE_MSG(",\"voice\":{\"duration\":3}"),
		PRIVATE_MSG(",\"document\":5"),
		PRIVATE_MSG(",\"location\":{\"latitude\":1}"),
		PRIVATE_MSG(",\"location\":{\"latitude\":\"1\",\"longitude\":2}"),
		PRIVATE_MSG(",\"venue\":{\"title\":\"x\"}"),
		PRIVATE_MSG(",\"contact\":{\"first_name\":\"B\",\"user_id\":9}"),
	};
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;

	(void)state;
	for (size_t i = 0; i < HUB_ARRAY_SIZE(bad); i++) {
		if (parse(bad[i], &channel, &pool, &ev) != 0 || ev.n != 0 || ev.bad != 1)
			fail_msg("bad item %zu: n=%zu bad=%zu", i, ev.n, ev.bad);
	}
	/* the same shapes, well formed, are events */
	assert_int_equal(parse(PRIVATE_MSG(",\"location\":{\"latitude\":1,\"longitude\":2}"),
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 1);
	assert_int_equal(parse(PRIVATE_MSG(",\"text\":\"a\\n\\u00e9\\ud83d\\ude00\""), &channel,
			       &pool, &ev), 0);
	assert_int_equal(ev.n, 1);
	assert_true(hub_str_eqs(ev.items[0].msg.text, "a\né😀"));
	/* a lone surrogate escape is valid JSON: the reader makes it U+FFFD */
	assert_int_equal(parse(PRIVATE_MSG(",\"text\":\"\\ud800\""), &channel, &pool, &ev), 0);
	assert_true(hub_str_eqs(ev.items[0].msg.text, "\xef\xbf\xbd"));
	assert_true(hub_str_eqs(ev.items[0].msg.external_id, "42:11"));
	assert_true(ev.items[0].msg.platform_ts == 1700000000000LL);
	hub_pool_release(&pool);
}

static void test_unsupported_and_ignored(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;

	(void)state;
	/* the content is the first key that is not a common field */
	assert_int_equal(parse(PRIVATE_MSG(",\"has_protected_content\":true,\"caption\":\"c\","
					   "\"hologram\":{\"depth\":3},\"giveaway\":{}"),
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.items[0].msg.type, HUB_MSG_UNSUPPORTED);
	assert_true(hub_str_eqs(ev.items[0].msg.raw_type, "hologram"));
	assert_true(hub_str_eqs(ev.items[0].msg.text, "c"));
	/* a message of common fields only: still stored, unsupported without a raw type */
	assert_int_equal(parse(PRIVATE_MSG(""), &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.items[0].msg.type, HUB_MSG_UNSUPPORTED);
	assert_int_equal(ev.items[0].msg.raw_type.len, 0);
	/* chats without a type (old payloads): private when the id is positive */
	assert_int_equal(parse("{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
			       "\"chat\":{\"id\":-42},\"from\":{\"id\":42},\"text\":\"x\"}}",
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 0);
	assert_int_equal(ev.ignored, 1);
	assert_int_equal(parse("{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
			       "\"chat\":{\"id\":42},\"from\":{\"id\":42},\"text\":\"x\"}}",
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 1);
	/* a group's malformed message is still a group's message: ignored before checked */
	assert_int_equal(parse("{\"update_id\":1,\"message\":{\"message_id\":1,"
			       "\"chat\":{\"id\":-42,\"type\":\"group\"}}}",
			       &channel, &pool, &ev), 0);
	assert_int_equal(ev.ignored, 1);
	assert_int_equal(ev.bad, 0);
	/* updates of kinds the hub does not serve, and an update carrying nothing */
	assert_int_equal(parse("{\"update_id\":1,\"inline_query\":{\"id\":\"1\"}}", &channel,
			       &pool, &ev), 0);
	assert_int_equal(ev.ignored, 1);
	assert_int_equal(parse("{\"update_id\":1}", &channel, &pool, &ev), 0);
	assert_int_equal(ev.n, 0);
	assert_int_equal(ev.ignored, 1);
	hub_pool_release(&pool);
}

static void test_bad_bodies(void **state)
{
	static const char *const bad[] = {
		"",
		"{\"update_id\":",
		"[]",
		"\"update\"",
		"{}",
		"{\"message\":{}}",
		"{\"update_id\":\"7\",\"message\":{}}",
		"{\"update_id\":-7,\"message\":{}}",
		"{\"update_id\":7.5,\"message\":{}}",
		"{\"update_id\":1e3,\"message\":{}}",
		"{\"update_id\":null}",
		"{\"update_id\":7} {\"update_id\":8}",
		"{\"update_id\":7,\"message\":{\"text\":\"\xc3\x28\"}}", /* invalid UTF-8 */
	};
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_event_list ev;
	struct hub_buf big = HUB_BUF_INIT;

	(void)state;
	for (size_t i = 0; i < HUB_ARRAY_SIZE(bad); i++) {
		int ret = parse(bad[i], &channel, &pool, &ev);
		if (ret != -EBADMSG || ev.n != 0)
			fail_msg("bad body %zu: ret=%d n=%zu", i, ret, ev.n);
	}
	/* far more tokens than any one update has */
	hub_buf_adds(&big, "{\"update_id\":1,\"message\":{\"entities\":[");
	for (int i = 0; i < 60000; i++)
		hub_buf_adds(&big, i ? ",0" : "0");
	hub_buf_adds(&big, "]}}");
	assert_true(parse(big.p, &channel, &pool, &ev) < 0);
	assert_int_equal(ev.n, 0);
	hub_buf_release(&big);
	hub_pool_release(&pool);
}

#define TG_MESSAGE(update_id, kind, text)                                                  \
	"{\"update_id\":" update_id ",\"" kind "\":{\"message_id\":1,\"from\":{\"id\":23,"    \
	"\"is_bot\":false,\"first_name\":\"Aigerim\"},\"chat\":{\"id\":23,\"type\":"         \
	"\"private\"},\"date\":1749416383,\"edit_date\":1749416390,\"text\":\"" text "\"}}"

static void test_long_polling_request(void **state)
{
	struct hub_channel ch = channel;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_send_req req;
	struct hub_err err = HUB_ERR_INIT;

	(void)state;
	ch.access_token = "7712345678:AAE-tg_SECRET-token";
	assert_int_equal(hub_telegram_poll_req(&pool, &ch, 0, 50, &req, &err), 0);
	assert_string_equal(req.method, "POST");
	assert_true(hub_str_eqs(req.path, "/bot7712345678:AAE-tg_SECRET-token/getUpdates"));
	assert_int_equal(req.authorization.len, 0);
	assert_true(hub_str_eqs(req.content_type, "application/json"));
	assert_true(hub_str_eqs(req.body, "{\"offset\":0,\"timeout\":50,\"allowed_updates\":["
					  "\"message\",\"edited_message\",\"message_reaction\"]}"));
	assert_int_equal(hub_telegram_poll_req(&pool, &ch, 4503599627370496LL, 50,
					       &req, &err), 0);
	assert_true(hub_str_startswith(req.body, "{\"offset\":4503599627370496,"));
	/* no token, or one that a path cannot carry: refused, never named */
	ch.access_token = NULL;
	assert_int_equal(hub_telegram_poll_req(&pool, &ch, 0, 50, &req, &err), -EINVAL);
	ch.access_token = "1:SECRET/../sendMessage?x=";
	assert_int_equal(hub_telegram_poll_req(&pool, &ch, 0, 50, &req, &err), -EINVAL);
	assert_null(strstr(err.msg, "SECRET"));
	hub_pool_release(&pool);
}

static void test_set_webhook_request(void **state)
{
	struct hub_channel ch = channel;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_send_req req;
	struct hub_err err = HUB_ERR_INIT;

	(void)state;
	ch.access_token = "7712345678:AAE-tg_SECRET-token";
	ch.app_secret = "tg-secret_1";
	assert_int_equal(hub_telegram_webhook_req(&pool, &ch,
		HUB_STR("https://hub.example.kz/webhooks/telegram/demo-telegram"), &req, &err), 0);
	assert_true(hub_str_eqs(req.path, "/bot7712345678:AAE-tg_SECRET-token/setWebhook"));
	assert_true(hub_str_eqs(req.body, "{\"url\":\"https://hub.example.kz/webhooks/telegram/"
					  "demo-telegram\",\"secret_token\":\"tg-secret_1\","
					  "\"allowed_updates\":[\"message\",\"edited_message\","
					  "\"message_reaction\"]}"));
	/* Telegram calls https only; a token a path cannot carry is refused, never named */
	assert_int_equal(hub_telegram_webhook_req(&pool, &ch, HUB_STR("http://hub.example.kz/x"),
						  &req, &err), -EINVAL);
	ch.access_token = "1:SECRET/x";
	assert_int_equal(hub_telegram_webhook_req(&pool, &ch, HUB_STR("https://hub.example.kz/x"),
						  &req, &err), -EINVAL);
	assert_null(strstr(err.msg, "SECRET"));
	hub_pool_release(&pool);
}

static int poll_parse(const char *body, struct hub_pool *pool, struct hub_event_list *ev,
		      int64_t *offset, struct hub_err *err)
{
	memset(ev, 0, sizeof(*ev));
	return hub_telegram_parse_updates(pool, &channel, hub_str_from(body), ev, offset, err);
}

static void test_long_polling_answers(void **state)
{
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_err err = HUB_ERR_INIT;
	struct hub_event_list ev;
	struct hub_send_result r;
	int64_t offset = 3;

	(void)state;
	/* a message, a callback (not served), an edit, an Update without update_id and one
	 * whose message has no chat: the bad ones count, the offset passes them all */
	assert_int_equal(poll_parse("{\"ok\":true,\"result\":[" TG_MESSAGE("10", "message", "Сәлем")
				    ",{\"update_id\":11,\"callback_query\":{\"id\":\"1\"}},"
				    TG_MESSAGE("12", "edited_message", "Сәлеметсіз бе") ","
				    "{\"message\":{}},{\"update_id\":13,\"message\":"
				    "{\"message_id\":2}}]}",
				    &pool, &ev, &offset, &err),
			 0);
	assert_int_equal(ev.n, 2);
	assert_int_equal(ev.bad, 2);
	assert_int_equal(ev.ignored, 1);
	assert_true(offset == 14);
	assert_int_equal(ev.items[0].kind, HUB_EVENT_MESSAGE);
	assert_true(hub_str_eqs(ev.items[0].msg.update_id, "10"));
	assert_true(hub_str_eqs(ev.items[0].msg.external_id, "23:1"));
	assert_true(hub_str_eqs(ev.items[0].msg.text, "Сәлем"));
	assert_int_equal(ev.items[1].kind, HUB_EVENT_EDIT);
	assert_true(hub_str_eqs(ev.items[1].msg.update_id, "12"));
	/* nothing new: the offset stays */
	assert_int_equal(poll_parse("{\"ok\":true,\"result\":[]}", &pool, &ev, &offset, &err), 0);
	assert_int_equal(ev.n, 0);
	assert_true(offset == 14);
	/* an update_id below the offset is read (the store dedupes) but never moves it back */
	assert_int_equal(poll_parse("{\"ok\":true,\"result\":[" TG_MESSAGE("5", "message", "x")
				    "]}", &pool, &ev, &offset, &err),
			 0);
	assert_int_equal(ev.n, 1);
	assert_true(offset == 14);
	/* refusals: -EBADMSG with Telegram's description, the offset unchanged */
	assert_int_equal(poll_parse("{\"ok\":false,\"error_code\":409,\"description\":\"Conflict: "
				    "terminated by other getUpdates request\"}",
				    &pool, &ev, &offset, &err),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "Conflict: terminated by other getUpdates request"));
	assert_int_equal(poll_parse("<html>", &pool, &ev, &offset, &err), -EBADMSG);
	assert_int_equal(poll_parse("{\"ok\":true}", &pool, &ev, &offset, &err), -EBADMSG);
	assert_int_equal(poll_parse("{\"ok\":true,\"result\":{}}", &pool, &ev, &offset, &err),
			 -EBADMSG);
	assert_int_equal(poll_parse("[]", &pool, &ev, &offset, &err), -EBADMSG);
	assert_true(offset == 14);
	/* a refused getUpdates is classified as a send's answer: wait, or the token is gone */
	assert_int_equal(tg()->parse_send_result(&pool, 429, HUB_STR_NULL,
						 HUB_STR("{\"ok\":false,\"error_code\":429,"
							 "\"description\":\"Too Many Requests\","
							 "\"parameters\":{\"retry_after\":5}}"),
						 &r),
			 0);
	assert_int_equal(r.verdict, HUB_SEND_RETRY);
	assert_true(r.retry_after_ms == 5000);
	assert_int_equal(tg()->parse_send_result(&pool, 401, HUB_STR_NULL,
						 HUB_STR("{\"ok\":false,\"error_code\":401,"
							 "\"description\":\"Unauthorized\"}"),
						 &r),
			 0);
	assert_int_equal(r.verdict, HUB_SEND_TOKEN);
	hub_pool_release(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_no_handshake),
		cmocka_unit_test(test_golden_files),
		cmocka_unit_test(test_text_fields),
		cmocka_unit_test(test_huge_ids),
		cmocka_unit_test(test_shared_contacts),
		cmocka_unit_test(test_media_and_places),
		cmocka_unit_test(test_edits),
		cmocka_unit_test(test_reactions),
		cmocka_unit_test(test_bad_items),
		cmocka_unit_test(test_unsupported_and_ignored),
		cmocka_unit_test(test_bad_bodies),
		cmocka_unit_test(test_long_polling_request),
		cmocka_unit_test(test_set_webhook_request),
		cmocka_unit_test(test_long_polling_answers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
