"""tests/integration/test_api.py - the REST API of the inbox page (/api/v1): conversations
newest activity first and messages oldest first within a page, both cursor-paged (stable
while new messages arrive), the Bearer token's tenant only (another tenant's conversation
is 404, exactly like one that does not exist), and every bad token, limit or cursor
answered with its error while nothing changes.
"""
import base64
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, util  # noqa: E402
from support.case import HubTestCase  # noqa: E402

MESSAGE_KEYS = {"id", "conversation_id", "contact_id", "channel_id", "direction", "author",
                "type", "text", "status", "platform_ts", "created_at"}
CONVERSATION_KEYS = {"id", "contact_id", "channel_id", "status", "mode", "assignee",
                     "last_message_at", "unread", "channel_kind", "created_at", "contact",
                     "last_message"}


class ApiCase(HubTestCase):
    def get(self, h, path, token=None, headers=None):
        hdr = dict(headers or {})
        if token:
            hdr["Authorization"] = "Bearer " + token
        return httpc.get(h.port, path, headers=hdr)

    def ok(self, h, path, token):
        r = self.get(h, path, token)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("application/json"), r)
        self.assertEqual(r.headers.get("cache-control"), "no-store", r)
        return r.json()

    def error(self, h, path, token, status, code):
        before = self.counts()
        r = self.get(h, path, token)
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body["error"]["code"], code, body)
        self.assertTrue(body["error"]["message"], body)
        self.assert_unchanged(before)
        return r

    def say(self, h, wa_id, name, text=None, cid="demo-whatsapp"):
        """One inbound text message from wa_id; returns its text."""
        text = text or self.unique_text()
        body, _, sig = self.text_webhook(h, cid, text=text, wa_id=wa_id, name=name)
        r = self.post_webhook(h, cid, body, sig)
        self.assertEqual(r.status, 200, r)
        return text

    def paths(self, h, token, wa_id):
        """One message from wa_id; the two list paths (conversations, its messages)."""
        self.say(h, wa_id, "Paths")
        conv = self.ok(h, "/api/v1/conversations", token)["conversations"][0]
        return ("/api/v1/conversations", "/api/v1/conversations/%d/messages" % conv["id"])

    def items(self, h, path, token):
        """The list of one page: path's last segment is its key."""
        return self.ok(h, path, token)[path.split("?")[0].split("/")[-1]]

    def all_conversations(self, h, token, limit):
        """Every conversation, page by page; returns (pages, items)."""
        pages, items, cursor = [], [], None
        while True:
            path = "/api/v1/conversations?limit=%d" % limit
            if cursor:
                path += "&before=" + cursor
            page = self.ok(h, path, token)
            pages.append(page)
            items += page["conversations"]
            cursor = page["next_cursor"]
            if cursor is None:
                return pages, items
            self.assertLessEqual(len(pages), 50, "paging does not end")


class Conversations(ApiCase):
    def test_newest_activity_first_with_contact_and_last_message(self):
        h = self.start_hubd()
        tok = self.token(h)
        texts = {}
        for i in range(5):
            wa = "7701000000%d" % i
            texts[wa] = self.say(h, wa, "Клиент %d" % i)
        # the first contact writes again: its conversation is now the newest
        texts["77010000000"] = self.say(h, "77010000000", "Клиент 0")
        page = self.ok(h, "/api/v1/conversations", tok)
        convs = page["conversations"]
        self.assertIsNone(page["next_cursor"])
        self.assertEqual(len(convs), 5)
        phones = [c["contact"]["phone"] for c in convs]
        self.assertEqual(phones, ["+77010000000", "+77010000004", "+77010000003",
                                  "+77010000002", "+77010000001"])
        acts = [c["last_message_at"] for c in convs]
        self.assertEqual(acts, sorted(acts, reverse=True))
        for c in convs:
            self.assertLessEqual(CONVERSATION_KEYS, set(c), c)
            self.assertEqual((c["channel_id"], c["channel_kind"]), ("demo-whatsapp", "whatsapp"))
            self.assertEqual((c["status"], c["mode"]), ("open", "human"))
            self.assertEqual(set(c["contact"]), {"id", "display_name", "phone"})
            self.assertEqual(c["contact"]["id"], c["contact_id"])
            self.assertLessEqual(MESSAGE_KEYS, set(c["last_message"]), c)
            self.assertEqual(c["last_message"]["conversation_id"], c["id"])
            self.assertEqual(c["last_message"]["text"], texts[c["contact"]["phone"][1:]])
        self.assertEqual(convs[0]["unread"], 2)
        self.assertEqual(convs[0]["contact"]["display_name"], "Клиент 0")

    def test_cursor_pages_cover_everything_once(self):
        h = self.start_hubd()
        tok = self.token(h)
        for i in range(7):
            self.say(h, "7702000000%d" % i, "Page %d" % i)
        pages, items = self.all_conversations(h, tok, 3)
        self.assertEqual([len(p["conversations"]) for p in pages], [3, 3, 1])
        ids = [c["id"] for c in items]
        self.assertEqual(len(set(ids)), 7)
        self.assertEqual(ids, sorted(ids, reverse=True))   # created in activity order
        # an exact multiple: the last full page says there is no more
        pages, _ = self.all_conversations(h, tok, 7)
        self.assertEqual([len(p["conversations"]) for p in pages], [7])
        self.assertIsNone(pages[0]["next_cursor"])

    def test_cursor_is_stable_while_messages_arrive(self):
        h = self.start_hubd()
        tok = self.token(h)
        for i in range(6):
            self.say(h, "7703000000%d" % i, "Stable %d" % i)
        _, before = self.all_conversations(h, tok, 6)
        first = self.ok(h, "/api/v1/conversations?limit=2", tok)
        # new activity on top (a new contact, and the oldest conversation writing again)
        self.say(h, "77039999999", "Новый")
        self.say(h, "77030000000", "Stable 0")
        second = self.ok(h, "/api/v1/conversations?limit=2&before=" + first["next_cursor"],
                         tok)
        self.assertEqual([c["id"] for c in second["conversations"]],
                         [c["id"] for c in before[2:4]])
        third = self.ok(h, "/api/v1/conversations?limit=2&before=" + second["next_cursor"],
                        tok)
        # the oldest one moved to the top: it is no longer below the cursor
        self.assertEqual([c["id"] for c in third["conversations"]], [before[4]["id"]])
        self.assertIsNone(third["next_cursor"])
        top = self.ok(h, "/api/v1/conversations?limit=2", tok)["conversations"]
        self.assertEqual([c["contact"]["phone"] for c in top], ["+77030000000",
                                                               "+77039999999"])

    def test_conversation_without_messages_sorts_by_creation(self):
        h = self.start_hubd()
        tok = self.token(h)
        self.say(h, "77016667788", "С сообщением")
        # a conversation opened without a message (no last_message_at): its creation counts
        self.psql("INSERT INTO contacts (tenant_id, display_name) VALUES ('demo', 'Пустой')")
        self.psql("INSERT INTO conversations (tenant_id, contact_id, channel_id, created_at) "
                  "SELECT 'demo', c.id, ch.id, now() + interval '1 hour' FROM contacts c, "
                  "channels ch WHERE c.display_name = 'Пустой' "
                  "AND ch.public_id = 'demo-whatsapp'")
        pages, items = self.all_conversations(h, tok, 1)
        self.assertEqual([c["contact"]["display_name"] for c in items],
                         ["Пустой", "С сообщением"])
        self.assertIsNone(items[0]["last_message"])
        self.assertIsNone(items[0]["last_message_at"])
        self.assertEqual(len(pages), 2)

    def test_empty_tenant(self):
        h = self.start_hubd()
        page = self.ok(h, "/api/v1/conversations", self.token(h, "acme", sub="a"))
        self.assertEqual(page, {"conversations": [], "next_cursor": None})


class Messages(ApiCase):
    def conversation(self, h, tok):
        return self.ok(h, "/api/v1/conversations", tok)["conversations"][0]

    def test_history_pages_oldest_first(self):
        h = self.start_hubd()
        tok = self.token(h)
        texts = [self.say(h, "77011112233", "История") for _ in range(7)]
        conv = self.conversation(h, tok)
        path = "/api/v1/conversations/%d/messages" % conv["id"]
        newest = self.ok(h, path + "?limit=3", tok)
        self.assertEqual([m["text"] for m in newest["messages"]], texts[4:])
        for m in newest["messages"]:
            self.assertLessEqual(MESSAGE_KEYS, set(m), m)
            self.assertEqual((m["conversation_id"], m["contact_id"], m["channel_id"]),
                             (conv["id"], conv["contact_id"], "demo-whatsapp"))
            self.assertEqual((m["direction"], m["author"], m["type"], m["status"]),
                             ("in", "contact", "text", "received"))
        self.assertEqual(newest["next_cursor"], str(newest["messages"][0]["id"]))
        older = self.ok(h, path + "?limit=3&before=" + newest["next_cursor"], tok)
        self.assertEqual([m["text"] for m in older["messages"]], texts[1:4])
        oldest = self.ok(h, path + "?limit=3&before=" + older["next_cursor"], tok)
        self.assertEqual([m["text"] for m in oldest["messages"]], texts[:1])
        self.assertIsNone(oldest["next_cursor"])
        # the default page holds them all, and a new message does not move older pages
        everything = self.ok(h, path, tok)
        self.assertEqual([m["text"] for m in everything["messages"]], texts)
        self.assertIsNone(everything["next_cursor"])
        self.say(h, "77011112233", "История")
        again = self.ok(h, path + "?limit=3&before=" + newest["next_cursor"], tok)
        self.assertEqual(again, older)

    def test_conversation_without_older_messages(self):
        h = self.start_hubd()
        tok = self.token(h)
        self.say(h, "77011112244", "One")
        conv = self.conversation(h, tok)
        page = self.ok(h, "/api/v1/conversations/%d/messages?before=%d"
                       % (conv["id"], conv["last_message"]["id"]), tok)
        self.assertEqual(page, {"messages": [], "next_cursor": None})


class Isolation(ApiCase):
    def test_another_tenants_conversation_is_404_like_a_missing_one(self):
        h = self.start_hubd()
        demo, acme = self.token(h, "demo"), self.token(h, "acme", sub="agent-acme")
        self.say(h, "77012223344", "Demo")
        acme_text = self.say(h, "77012223355", "Acme", cid="acme-whatsapp")
        demo_convs = self.ok(h, "/api/v1/conversations", demo)["conversations"]
        acme_convs = self.ok(h, "/api/v1/conversations", acme)["conversations"]
        self.assertEqual([c["channel_id"] for c in demo_convs], ["demo-whatsapp"])
        self.assertEqual([c["channel_id"] for c in acme_convs], ["acme-whatsapp"])
        acme_id = acme_convs[0]["id"]
        missing = max(acme_id, demo_convs[0]["id"]) + 1000
        theirs = self.error(h, "/api/v1/conversations/%d/messages" % acme_id, demo, 404,
                            "unknown_conversation")
        nothing = self.error(h, "/api/v1/conversations/%d/messages" % missing, demo, 404,
                             "unknown_conversation")
        self.assertEqual(theirs.body, nothing.body)
        self.assertNotIn(acme_text.encode(), theirs.body)
        # with a cursor too, and the owner still reads it
        self.error(h, "/api/v1/conversations/%d/messages?before=999999" % acme_id, demo, 404,
                   "unknown_conversation")
        mine = self.ok(h, "/api/v1/conversations/%d/messages" % acme_id, acme)
        self.assertEqual([m["text"] for m in mine["messages"]], [acme_text])

    def test_a_cursor_does_not_cross_tenants(self):
        h = self.start_hubd()
        demo, acme = self.token(h, "demo"), self.token(h, "acme", sub="agent-acme")
        self.say(h, "77013330009", "A", cid="acme-whatsapp")   # older than demo's
        for i in range(3):
            self.say(h, "7701333000%d" % i, "D%d" % i)
        cursor = self.ok(h, "/api/v1/conversations?limit=1", demo)["next_cursor"]
        page = self.ok(h, "/api/v1/conversations?before=" + cursor, acme)
        self.assertEqual([c["channel_id"] for c in page["conversations"]], ["acme-whatsapp"])


class Auth(ApiCase):
    PATHS = ("/api/v1/conversations", "/api/v1/conversations/1/messages")

    def test_missing_or_bad_tokens_are_401(self):
        h = self.start_hubd()
        self.say(h, "77014445566", "Auth")
        bad = {
            "missing_token": [None],
            "bad_token": [self.token(h, exp=int(time.time()) - 60),
                          self.token(h, secret="not-the-secret-" + os.urandom(8).hex()),
                          self.token(h, alg="none"),
                          "not-a-jwt-" + os.urandom(4).hex()],
        }
        for path in self.PATHS:
            for code, toks in bad.items():
                for t in toks:
                    r = self.error(h, path, t, 401, code)
                    self.assertTrue(r.headers.get("www-authenticate", "").startswith("Bearer"),
                                    r)
                    if t:
                        self.assertNotIn(t.encode(), r.body)
            for scheme in ("Basic " + base64.b64encode(b"agent:pw").decode(), "Bearer",
                           "bearer", "Token abc"):
                before = self.counts()
                r = self.get(h, path, headers={"Authorization": scheme})
                self.assertEqual(r.status, 401, (scheme, r))
                self.assertIn(r.json()["error"]["code"], ("missing_token", "bad_token"))
                self.assert_unchanged(before)
        self.assertEqual(h.count_log(r"\[api *\] .*: 401 "), 8)
        h.assert_alive()

    def test_token_in_the_query_is_not_accepted(self):
        h = self.start_hubd()
        t = self.token(h)
        self.error(h, "/api/v1/conversations?token=" + t, None, 401, "missing_token")
        self.error(h, "/api/v1/conversations?access_token=" + t, None, 401, "missing_token")

    def test_admin_token_reads_its_tenant(self):
        h = self.start_hubd()
        self.say(h, "77014445577", "Admin")
        page = self.ok(h, "/api/v1/conversations", self.token(h, role="admin", sub="boss"))
        self.assertEqual(len(page["conversations"]), 1)

    def test_new_secret_applies_on_reload(self):
        h = self.start_hubd()
        old = self.token(h)
        self.ok(h, "/api/v1/conversations", old)
        cfg = json.loads(json.dumps(h.cfg))
        cfg["auth"]["jwt_secret"] = "reloaded-secret-" + os.urandom(12).hex()
        self.no_leak(cfg["auth"]["jwt_secret"])
        h.reload(cfg)
        self.error(h, "/api/v1/conversations", old, 401, "bad_token")
        self.ok(h, "/api/v1/conversations", self.token(h))


class BadInput(ApiCase):
    def test_bad_limits(self):
        h = self.start_hubd()
        tok = self.token(h)
        for path in self.paths(h, tok, "77015556677"):
            for limit in ("0", "201", "-1", "abc", "", "1.5", "1e2", "%2B5", "%205",
                          "99999999999999999999"):
                r = self.error(h, path + "?limit=" + limit, tok, 400, "bad_limit")
                self.assertIn("1 to 200", r.json()["error"]["message"])
            self.assertEqual(len(self.items(h, path + "?limit=200", tok)), 1)
            self.assertEqual(len(self.items(h, path + "?limit=1", tok)), 1)
        h.assert_alive()

    def test_bad_escapes_are_400_never_the_default(self):
        h = self.start_hubd()
        tok = self.token(h)
        for path in self.paths(h, tok, "77015556680"):
            for name in ("limit", "before"):
                for value in ("5%00", "%zz", "%", "5%4", "%0", "%g1", "1%00"):
                    r = self.error(h, "%s?%s=%s" % (path, name, value), tok, 400,
                                   "bad_query")
                    self.assertIn(name, r.json()["error"]["message"])
            self.assertEqual(len(self.items(h, path + "?limit=%31", tok)), 1)   # "1"
        h.assert_alive()

    def test_bad_cursors(self):
        h = self.start_hubd()
        tok = self.token(h)
        for i in range(2):
            self.say(h, "7701666777%d" % i, "Cursor")
        good = self.ok(h, "/api/v1/conversations?limit=1", tok)["next_cursor"]

        def b64(raw):
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        self.ok(h, "/api/v1/conversations?before=" + b64(b"253402300799999999.5"), tok)
        for cursor in ("", "not%20base64!", good + "==", good[:-1] + "*", "A" * 65,
                       b64(b"1700000000000000"), b64(b"x.y"), b64(b"1.0"), b64(b"1.-5"),
                       b64(b".5"), b64(b"5."), b64(b"1.2.3"),
                       b64(b"99999999999999999999.1"), b64(b"-1.5"),
                       b64(b"-4611686018427387904.5"), b64(b"253402300800000000.5")):
            self.error(h, "/api/v1/conversations?before=" + cursor, tok, 400, "bad_cursor")
        conv = self.ok(h, "/api/v1/conversations", tok)["conversations"][0]
        path = "/api/v1/conversations/%d/messages?before=" % conv["id"]
        for cursor in ("", "abc", "0", "-1", "1.5", "99999999999999999999", good):
            self.error(h, path + cursor, tok, 400, "bad_cursor")
        for cid in ("abc", "0", "-1", "1.5", "99999999999999999999"):
            self.error(h, "/api/v1/conversations/%s/messages" % cid, tok, 404,
                       "unknown_conversation")
        h.assert_alive()

    def test_wrong_method_is_405(self):
        h = self.start_hubd()
        before = self.counts()
        r = httpc.request(h.port, "POST", "/api/v1/conversations", body=b"{}",
                          headers={"Authorization": "Bearer " + self.token(h)})
        self.assertEqual(r.status, 405, r)
        self.assert_unchanged(before)


class DatabaseDown(ApiCase):
    def test_503_while_the_database_is_away(self):
        server, url = self.own_pg()
        h = self.start_hubd(cfg=self.config(db_url=url))
        tok = self.token(h)
        self.ok(h, "/api/v1/conversations", tok)
        server.stop()
        r = self.get(h, "/api/v1/conversations", tok)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"]["code"], "database_unavailable")
        h.assert_alive()
        server.start()
        util.wait_for(lambda: self.get(h, "/api/v1/conversations", tok).status == 200, 30,
                      "the API answering again")
