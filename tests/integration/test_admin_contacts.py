"""tests/integration/test_admin_contacts.py - contacts in the admin API (issue 14, point 4):
search by phone in any written form and by inflected name, cursor-paged; a contact with its
identities, conversations and merge suggestions; rename (sticks over profile-name changes)
and phone correction (normalised, 409 with a merge suggestion when another contact has the
number); merge suggestions confirmed (identities and conversations move, the same events as
the phone merge) or dismissed. Every endpoint: 401 without a token, 403 for an agent, 404
for another tenant's contact; every bad input its error and nothing changed; audit records
without personal data.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc  # noqa: E402
from support.case import HubTestCase  # noqa: E402


class AdminCase(HubTestCase):
    def req(self, h, method, path, token=None, body=None):
        hdr = {}
        if token:
            hdr["Authorization"] = "Bearer " + token
        if body is not None:
            hdr["Content-Type"] = "application/json"
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
        return httpc.request(h.port, method, path, body=body, headers=hdr)

    def ok(self, h, method, path, token, body=None):
        r = self.req(h, method, path, token, body)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("application/json"), r)
        return r.json()

    def state(self):
        """Everything a contact request may change."""
        return self.psql("SELECT (SELECT json_agg(c ORDER BY id) FROM contacts c)::text || "
                         "(SELECT coalesce(json_agg(i ORDER BY id), '[]') FROM "
                         "contact_identities i)::text || (SELECT coalesce(json_agg(s ORDER "
                         "BY id), '[]') FROM merge_suggestions s)::text || (SELECT "
                         "coalesce(json_agg(v ORDER BY id), '[]') FROM conversations v)::text"
                         " || (SELECT count(*) FROM events)::text || (SELECT count(*) FROM "
                         "audit_log)::text")

    def error(self, h, method, path, token, status, code, body=None):
        before = self.state()
        r = self.req(h, method, path, token, body)
        self.assertEqual(r.status, status, r)
        err = r.json()["error"]
        self.assertEqual(err["code"], code, r)
        self.assertTrue(err["message"], r)
        self.assertEqual(self.state(), before, "a refused request changed the database")
        return err

    def say(self, h, wa_id, name, cid="demo-whatsapp"):
        body, _, sig = self.text_webhook(h, cid, wa_id=wa_id, name=name)
        r = self.post_webhook(h, cid, body, sig)
        self.assertEqual(r.status, 200, r)

    def contact_id(self, phone):
        return int(self.psql("SELECT id FROM contacts WHERE phone = '%s'" % phone))

    def admin(self, h, tenant="demo"):
        return self.token(h, tenant=tenant, sub="admin-1", role="admin")


class Isolation(AdminCase):
    def test_each_endpoint_by_role_and_tenant(self):
        h = self.start_hubd()
        self.say(h, "77011110001", "Айгуль")
        self.say(h, "77011110002", "Айгуль")
        cid = self.contact_id("+77011110001")
        sid = int(self.psql("SELECT id FROM merge_suggestions"))
        agent = self.token(h, role="agent")
        other = self.admin(h, tenant="acme")
        endpoints = [
            ("GET", "/api/v1/contacts?q=7701", None),
            ("GET", "/api/v1/contacts/%d" % cid, None),
            ("PATCH", "/api/v1/contacts/%d" % cid, {"display_name": "X"}),
            ("GET", "/api/v1/contacts/%d/export" % cid, None),
            ("POST", "/api/v1/contacts/%d/merge-suggestions/%d/confirm" % (cid, sid), None),
            ("POST", "/api/v1/contacts/%d/merge-suggestions/%d/dismiss" % (cid, sid), None),
            ("DELETE", "/api/v1/contacts/%d" % cid, None),
            ("DELETE", "/api/v1/tenant?confirm=demo", None),
        ]
        for method, path, body in endpoints:
            with self.subTest(method=method, path=path):
                self.error(h, method, path, None, 401, "missing_token", body)
                self.error(h, method, path, "x.y.z", 401, "bad_token", body)
                self.error(h, method, path, agent, 403, "forbidden", body)
                if "/contacts/" in path:
                    # another tenant's contact is one that does not exist
                    self.error(h, method, path, other, 404, "not_found", body)
        # another tenant's search finds nothing of demo's
        self.assertEqual(self.ok(h, "GET", "/api/v1/contacts?q=7701", other)["contacts"], [])
        self.assertEqual(self.ok(h, "GET", "/api/v1/contacts", other)["contacts"], [])
        self.assertIsNone(self.psql("SELECT deleted_at FROM tenants WHERE id = 'demo'") or None)


class Search(AdminCase):
    def test_phone_in_any_written_form(self):
        h = self.start_hubd()
        tok = self.admin(h)
        self.say(h, "77012345678", "Ерлан")
        self.say(h, "77019990000", "Марат")
        want = self.contact_id("+77012345678")
        for q in ("+7 701 234-56-78", "8 701 234 56 78", "87012345678", "77012345678",
                  "+7 (701) 234-56-78", "701 234 56 78", "7012345678", "+7701234",
                  "8 701 234", "701 23"):
            with self.subTest(q=q):
                found = self.ok(h, "GET", "/api/v1/contacts?q=" + httpc_quote(q),
                                tok)["contacts"]
                self.assertEqual([c["id"] for c in found], [want], q)
        both = self.ok(h, "GET", "/api/v1/contacts?q=%2B7701", tok)["contacts"]
        self.assertEqual(len(both), 2)
        self.assertEqual(self.ok(h, "GET", "/api/v1/contacts?q=87770000000", tok)["contacts"],
                         [])

    def test_name_case_and_inflection_insensitive_prefix(self):
        h = self.start_hubd()
        tok = self.admin(h)
        names = {"77020000001": "Айгуль Серикова", "77020000002": "Ерлан Абаев",
                 "77020000003": "Марат", "77020000004": "Айгүл Нұрланқызы",
                 "77020000005": "Asel Smith"}
        for wa, name in names.items():
            self.say(h, wa, name)
        ids = {name: self.contact_id("+" + wa) for wa, name in names.items()}
        cases = {
            "айгуль": ["Айгуль Серикова"],
            "АЙГУЛЕ": ["Айгуль Серикова"],        # dative
            "Айгулей": ["Айгуль Серикова"],
            "Айгүлге": ["Айгүл Нұрланқызы"],      # Kazakh dative
            "Айг": ["Айгуль Серикова", "Айгүл Нұрланқызы"],
            "Ерланом": ["Ерлан Абаев"],           # instrumental
            "ерланның": ["Ерлан Абаев"],          # Kazakh genitive
            "Абаеву": ["Ерлан Абаев"],            # a second word, inflected
            "Марата": ["Марат"],
            "серикову айгуль": ["Айгуль Серикова"],
            "ASEL": ["Asel Smith"],
            "smi": ["Asel Smith"],
            "Сергей": [],
            "айгуль абаев": [],
        }
        for q, want in cases.items():
            with self.subTest(q=q):
                found = self.ok(h, "GET", "/api/v1/contacts?q=" + httpc_quote(q),
                                tok)["contacts"]
                self.assertEqual(sorted(c["id"] for c in found), sorted(ids[n] for n in want))
        # a renamed contact is found by its new name, no longer by its old one
        self.ok(h, "PATCH", "/api/v1/contacts/%d" % ids["Марат"], tok,
                {"display_name": "Тимур Маратов"})
        self.assertEqual([c["id"] for c in self.ok(h, "GET", "/api/v1/contacts?q=" + httpc_quote("Тимуру"),
                                                   tok)["contacts"]], [ids["Марат"]])

    def test_cursor_pages_cover_everything_once(self):
        h = self.start_hubd()
        tok = self.admin(h)
        for i in range(7):
            self.say(h, "7703000000%d" % i, "Клиент %d" % i)
        seen, cursor, pages = [], None, 0
        while True:
            path = "/api/v1/contacts?q=%D0%BA%D0%BB%D0%B8%D0%B5%D0%BD%D1%82&limit=3"
            if cursor:
                path += "&before=" + cursor
            page = self.ok(h, "GET", path, tok)
            pages += 1
            seen += [c["id"] for c in page["contacts"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(pages, 3)
        self.assertEqual(len(seen), 7)
        self.assertEqual(seen, sorted(seen, reverse=True))
        listed = [c["id"] for c in self.ok(h, "GET", "/api/v1/contacts?limit=200",
                                           tok)["contacts"]]
        self.assertEqual(listed, seen)

    def test_bad_query_parameters(self):
        h = self.start_hubd()
        tok = self.admin(h)
        self.say(h, "77040000001", "Бота")
        for path, code in (("/api/v1/contacts?limit=0", "bad_limit"),
                           ("/api/v1/contacts?limit=201", "bad_limit"),
                           ("/api/v1/contacts?limit=x", "bad_limit"),
                           ("/api/v1/contacts?before=abc", "bad_cursor"),
                           ("/api/v1/contacts?before=-1", "bad_cursor"),
                           ("/api/v1/contacts?q=%ZZ", "bad_query"),
                           ("/api/v1/contacts?q=%FF%FE", "bad_query"),
                           ("/api/v1/contacts?q=" + "a" * 201, "bad_query")):
            with self.subTest(path=path):
                self.error(h, "GET", path, tok, 400, code)
        for path in ("/api/v1/contacts/abc", "/api/v1/contacts/0", "/api/v1/contacts/-1",
                     "/api/v1/contacts/99999999", "/api/v1/contacts/1234567890123456789012"):
            for method, suffix, body in (("GET", "", None), ("GET", "/export", None),
                                         ("PATCH", "", {"display_name": "X"}),
                                         ("DELETE", "", None),
                                         ("POST", "/merge-suggestions/1/confirm", None)):
                with self.subTest(path=path, method=method, suffix=suffix):
                    self.error(h, method, path + suffix, tok, 404, "not_found", body)


class Contact(AdminCase):
    def test_get_has_identities_conversations_and_suggestions(self):
        h = self.start_hubd()
        tok = self.admin(h)
        self.say(h, "77050000001", "Данияр")
        self.say(h, "77050000002", "Данияр")
        a, b = self.contact_id("+77050000001"), self.contact_id("+77050000002")
        doc = self.ok(h, "GET", "/api/v1/contacts/%d" % b, tok)
        self.assertEqual((doc["id"], doc["display_name"], doc["phone"], doc["name_locked"]),
                         (b, "Данияр", "+77050000002", False))
        self.assertEqual([(i["channel_id"], i["external_id"]) for i in doc["identities"]],
                         [("demo-whatsapp", "77050000002")])
        self.assertEqual(len(doc["conversations"]), 1)
        self.assertEqual(doc["conversations"][0]["contact_id"], b)
        self.assertEqual([(s["other_contact"]["id"], s["reason"])
                          for s in doc["merge_suggestions"]], [(a, "same_name")])
        # the other side sees the same suggestion
        other = self.ok(h, "GET", "/api/v1/contacts/%d" % a, tok)
        self.assertEqual([s["id"] for s in other["merge_suggestions"]],
                         [doc["merge_suggestions"][0]["id"]])

    def test_rename_sticks_over_profile_name_changes(self):
        h = self.start_hubd()
        tok = self.admin(h)
        self.say(h, "77060000001", "aika_97")
        cid = self.contact_id("+77060000001")
        agent = self.agent(h)
        doc = self.ok(h, "PATCH", "/api/v1/contacts/%d" % cid, tok,
                      {"display_name": "  Айгерим   Болатқызы "})
        self.assertEqual((doc["display_name"], doc["name_locked"]), ("Айгерим Болатқызы", True))
        ev = agent.event("contact.updated")
        self.assertEqual((ev["data"]["id"], ev["data"]["display_name"]),
                         (cid, "Айгерим Болатқызы"))
        self.say(h, "77060000001", "Aika New Profile")   # the customer's profile changes
        self.assertEqual(self.psql("SELECT display_name FROM contacts WHERE id = %d" % cid),
                         "Айгерим Болатқызы")
        self.assertEqual(self.psql("SELECT profile_name FROM contact_identities"),
                         "Aika New Profile")
        audit = self.psql("SELECT actor, role, action, target, detail::text FROM audit_log")
        self.assertEqual(audit, 'admin-1|admin|contact.update|contact:%d|{"fields": '
                         '["display_name"]}' % cid)
        self.assertNotIn("Айгерим", self.psql("SELECT json_agg(a)::text FROM audit_log a"))

    def test_phone_correction_normalised_and_taken_phone_409(self):
        h = self.start_hubd()
        tok = self.admin(h)
        self.say(h, "77070000001", "Нурлан")
        self.say(h, "77070000002", "Бекзат")
        a, b = self.contact_id("+77070000001"), self.contact_id("+77070000002")
        doc = self.ok(h, "PATCH", "/api/v1/contacts/%d" % a, tok, {"phone": "8 (701) 555-44-33"})
        self.assertEqual(doc["phone"], "+77015554433")
        # 409: the contact is unchanged, a merge suggestion is recorded for the admin
        before = self.psql("SELECT row_to_json(c)::text FROM contacts c WHERE id = %d" % a)
        r = self.req(h, "PATCH", "/api/v1/contacts/%d" % a, tok,
                     {"phone": "+7 707 000 00 02", "display_name": "New"})
        self.assertEqual(r.status, 409, r)
        err = r.json()["error"]
        self.assertEqual((err["code"], err["contact_id"]), ("phone_taken", b))
        self.assertIn("phone", err["fields"])
        self.assertEqual(self.psql("SELECT row_to_json(c)::text FROM contacts c WHERE id = %d"
                                   % a), before)
        self.assertEqual(self.psql("SELECT id, reason FROM merge_suggestions"),
                         "%d|same_phone" % err["merge_suggestion_id"])
        # clearing the phone
        self.assertIsNone(self.ok(h, "PATCH", "/api/v1/contacts/%d" % a, tok,
                                  {"phone": None})["phone"])
        audit = self.psql("SELECT json_agg(a ORDER BY id)::text FROM audit_log a")
        for secret in ("5554433", "0000002", "New", "Нурлан"):
            self.assertNotIn(secret, audit)

    def test_invalid_bodies_change_nothing(self):
        h = self.start_hubd()
        tok = self.admin(h)
        self.say(h, "77080000001", "Гульнара")
        path = "/api/v1/contacts/%d" % self.contact_id("+77080000001")
        for body, code, fields in (
                ("", "bad_json", None), ("{", "bad_json", None), ("[]", "bad_json", None), ("42", "bad_json", None),
                (b"\xff\xfe", "bad_json", None), ('{"display_name":"a\\u0000b"}', "bad_json",
                                                  None),
                ({}, "invalid", {"display_name", "phone"}),
                ({"display_name": ""}, "invalid", {"display_name"}),
                ({"display_name": "   "}, "invalid", {"display_name"}),
                ({"display_name": 5}, "invalid", {"display_name"}),
                ({"display_name": "x" * 201}, "invalid", {"display_name"}),
                ({"phone": "call me"}, "invalid", {"phone"}),
                ({"phone": "123"}, "invalid", {"phone"}),
                ({"phone": 77010000000}, "invalid", {"phone"}),
                ({"display_name": "Ok", "email": "a@b.kz"}, "invalid", {"email"}),
                ({"display_name": None, "phone": []}, "invalid", {"display_name", "phone"})):
            with self.subTest(body=body):
                err = self.error(h, "PATCH", path, tok, 400, code, body)
                if fields:
                    self.assertEqual(set(err["fields"]), fields, err)


class Merge(AdminCase):
    def test_confirm_moves_identities_and_conversations_with_events(self):
        h = self.start_hubd()
        tok = self.admin(h)
        agent = self.agent(h)
        self.say(h, "77090000001", "Сабина")
        self.say(h, "77090000002", "Сабина")
        a, b = self.contact_id("+77090000001"), self.contact_id("+77090000002")
        sid = int(self.psql("SELECT id FROM merge_suggestions"))
        agent.event("contact.merge_suggested")
        doc = self.ok(h, "POST", "/api/v1/contacts/%d/merge-suggestions/%d/confirm" % (a, sid),
                      tok)
        self.assertEqual(doc["id"], a)
        self.assertEqual(sorted(i["external_id"] for i in doc["identities"]),
                         ["77090000001", "77090000002"])
        self.assertEqual(len(doc["conversations"]), 2)
        self.assertEqual(doc["merge_suggestions"], [])
        self.assertEqual(self.count("contacts", "id = %d" % b), 0)
        self.assertEqual(self.count("conversations", "contact_id = %d" % a), 2)
        merged = agent.event("contact.merged")["data"]
        self.assertEqual((merged["contact_id"], merged["merged_contact_id"], merged["reason"]),
                         (a, b, "same_name"))
        conv = agent.event("conversation.updated")["data"]
        self.assertEqual(conv["contact_id"], a)
        self.assertEqual(agent.event("contact.updated")["data"]["id"], a)
        self.assertEqual(self.psql("SELECT action, detail->>'merged' FROM audit_log"),
                         "contact.merge|%d" % b)
        # the next message of the merged-away sender lands with the merged contact
        self.say(h, "77090000002", "Сабина")
        self.assertEqual(self.count("contacts"), 1)
        # the suggestion is gone: confirming again is 404, and changes nothing
        self.error(h, "POST", "/api/v1/contacts/%d/merge-suggestions/%d/confirm" % (a, sid),
                   tok, 404, "not_found")

    def test_dismiss_keeps_both_and_is_not_suggested_again(self):
        h = self.start_hubd()
        tok = self.admin(h)
        self.say(h, "77100000001", "Арман")
        self.say(h, "77100000002", "Арман")
        a = self.contact_id("+77100000001")
        b = self.contact_id("+77100000002")
        sid = int(self.psql("SELECT id FROM merge_suggestions"))
        for path in ("/api/v1/contacts/%d/merge-suggestions/%d/merge" % (a, sid),
                     "/api/v1/contacts/%d/merge-suggestions/%d/confirm" % (a, sid + 1),
                     "/api/v1/contacts/%d/merge-suggestions/x/confirm" % a):
            with self.subTest(path=path):
                self.error(h, "POST", path, tok, 404, "not_found")
        doc = self.ok(h, "POST", "/api/v1/contacts/%d/merge-suggestions/%d/dismiss" % (b, sid),
                      tok)
        self.assertEqual(doc["merge_suggestions"], [])
        self.assertEqual(self.count("contacts"), 2)
        self.assertEqual(self.ok(h, "GET", "/api/v1/contacts/%d" % a,
                                 tok)["merge_suggestions"], [])
        self.say(h, "77100000002", "Арман")
        self.assertEqual(self.count("merge_suggestions", "dismissed_at IS NULL"), 0)
        self.assertEqual(self.psql("SELECT action FROM audit_log"), "contact.merge_dismiss")


def httpc_quote(s):
    from urllib.parse import quote
    return quote(s, safe="")
