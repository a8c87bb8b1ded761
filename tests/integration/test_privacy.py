"""tests/integration/test_privacy.py - the privacy rights (issue 14, points 5 and 6): a
contact's export holds everything stored about it and nothing of another contact (also as a
download and through hubctl); erasure removes it table by table, its events too, tells the
open inboxes (contact.erased) and leaves an audit record without personal data, and the
contact's next message starts a fresh contact; a deleted tenant's webhooks get 404 at once
and its data is purged after privacy.purge_after_s; retention prunes ingest_keys, status
history and events, and a resume from a pruned cursor is answered "resync".
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import util  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_admin_contacts import AdminCase  # noqa: E402

# every table with a tenant_id column, and how the others are reached
TENANT_TABLES = ("contacts", "conversations", "messages", "events", "merge_suggestions",
                 "outbox", "ai_jobs", "ai_disclosures", "ai_exchanges", "media_uploads",
                 "token_revocations", "tenant_stream", "channels", "contact_name_words")


def wait_for(pred, what, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class PrivacyCase(AdminCase):
    def conversation_of(self, cid):
        return int(self.psql("SELECT id FROM conversations WHERE contact_id = %d" % cid))

    def rich_contact(self, h, agent, wa_id, name):
        """A contact with an inbound message, an agent's reply (outbox), an edit, a reaction,
        statuses, an AI disclosure and exchange, a reaction key; returns (id, texts)."""
        body, wamid, sig = self.text_webhook(h, "demo-whatsapp", wa_id=wa_id, name=name)
        text = json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["text"][
            "body"]
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        cid = self.contact_id("+" + wa_id)
        conv = self.conversation_of(cid)
        reply = "Ответ агента " + os.urandom(4).hex()
        self.no_leak(reply)
        ack = agent.command({"type": "send", "conversation_id": conv, "text": reply,
                             "client_id": os.urandom(4).hex()})
        self.assertEqual(ack["type"], "ack", ack)
        edit = "edited " + os.urandom(4).hex()
        self.psql("""
            INSERT INTO message_edits (message_id, tenant_id, edit_key, previous_text, text)
            SELECT id, tenant_id, 'e1', text, '%(edit)s' FROM messages WHERE conversation_id = %(conv)d
                AND direction = 'in';
            INSERT INTO message_reactions (message_id, tenant_id, reactor_external_id, author,
                                           emoji)
            SELECT id, tenant_id, '%(wa)s', 'contact', '👍' FROM messages WHERE conversation_id = %(conv)d
                AND direction = 'in';
            UPDATE messages SET external_id = 'wamid.out-%(wa)s' WHERE conversation_id = %(conv)d
                AND direction = 'out';
            INSERT INTO message_statuses (channel_id, tenant_id, external_id, status)
            SELECT id, tenant_id, 'wamid.out-%(wa)s', 'delivered' FROM channels
                WHERE public_id = 'demo-whatsapp';
            INSERT INTO ingest_keys (channel_id, tenant_id, kind, key)
            SELECT id, tenant_id, 'reaction', '%(wamid)s:%(wa)s:1:x' FROM channels
                WHERE public_id = 'demo-whatsapp';
            INSERT INTO ai_disclosures (contact_id, tenant_id, lang) VALUES (%(cid)d, 'demo', 'ru');
            INSERT INTO ai_exchanges (tenant_id, conversation_id, outcome, guard)
                VALUES ('demo', %(conv)d, 'answered', 'passed');
            """ % {"edit": edit, "conv": conv, "wa": wa_id, "cid": cid, "wamid": wamid})
        return cid, [text, reply, edit, "+" + wa_id]


class Export(PrivacyCase):
    def test_export_holds_everything_about_the_contact_and_nothing_else(self):
        h = self.start_hubd()
        tok = self.admin(h)
        agent = self.agent(h)
        a, mine = self.rich_contact(h, agent, "77110000001", "Айнур")
        b, theirs = self.rich_contact(h, agent, "77110000002", "Болат")
        r = self.req(h, "GET", "/api/v1/contacts/%d/export" % a, tok)
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("content-disposition", r.headers)
        doc = r.json()
        raw = json.dumps(doc, ensure_ascii=False)
        for s in mine:
            self.assertIn(s, raw)
        for s in theirs:
            self.assertNotIn(s, raw)
        self.assertEqual(doc["contact"]["id"], a)
        self.assertEqual([i["external_id"] for i in doc["identities"]], ["77110000001"])
        [conv] = doc["conversations"]
        msgs = conv["messages"]
        self.assertEqual(sorted(m["direction"] for m in msgs), ["in", "out"])
        inbound = next(m for m in msgs if m["direction"] == "in")
        outbound = next(m for m in msgs if m["direction"] == "out")
        self.assertEqual(len(inbound["edits"]), 1)
        self.assertEqual(inbound["reactions"][0]["emoji"], "👍")
        self.assertEqual(outbound["statuses"][0]["status"], "delivered")
        self.assertEqual(len(outbound["outbox"]), 1)
        self.assertEqual(conv["ai_exchanges"][0]["outcome"], "answered")
        self.assertEqual(doc["ai_disclosure"]["lang"], "ru")
        self.assertTrue(doc["events"])
        self.assertTrue(all(e["type"].split(".")[0] in ("message", "conversation", "contact")
                            for e in doc["events"]))
        # as a download
        r = self.req(h, "GET", "/api/v1/contacts/%d/export?download=1" % a, tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-disposition"],
                         'attachment; filename="contact-%d.json"' % a)
        self.assertEqual(r.json()["contact"], doc["contact"])
        # the export is in the audit log (ids only), once per answered request
        self.assertEqual(self.psql("SELECT action, target, detail::text FROM audit_log"),
                         "contact.export|contact:%d|{}\ncontact.export|contact:%d|{}" % (a, a))
        self.error(h, "GET", "/api/v1/contacts/%d/export" % (b + 100), tok, 404, "not_found")


class Erase(PrivacyCase):
    def test_erase_removes_everything_and_the_inboxes_drop_it(self):
        h = self.start_hubd()
        tok = self.admin(h)
        agent = self.agent(h)
        a, mine = self.rich_contact(h, agent, "77120000001", "Дана")
        b, theirs = self.rich_contact(h, agent, "77120000002", "Дана")   # a suggestion too
        self.assertEqual(self.count("merge_suggestions"), 1)
        conv = self.conversation_of(a)
        msgs = self.psql("SELECT string_agg(id::text, ',') FROM messages WHERE "
                         "conversation_id = %d" % conv)
        others = {t: self.count(t, "tenant_id = 'acme'") for t in ("contacts", "events")}
        listener = self.agent(h)
        r = self.req(h, "DELETE", "/api/v1/contacts/%d" % a, tok)
        self.assertEqual(r.status, 200, r)
        erased = r.json()["erased"]
        self.assertEqual((erased["contact_id"], erased["messages"], erased["conversations"],
                          erased["identities"]), (a, 2, 1, 1))
        ev = listener.event("contact.erased")
        self.assertEqual(ev["data"], {"contact_id": a, "conversation_ids": [conv]})
        # table by table
        checks = {
            "contacts": "id = %d" % a,
            "contact_identities": "contact_id = %d OR external_id = '77120000001'" % a,
            "contact_name_words": "contact_id = %d" % a,
            "conversations": "contact_id = %d OR id = %d" % (a, conv),
            "messages": "conversation_id = %d OR id IN (%s)" % (conv, msgs),
            "message_edits": "message_id IN (%s)" % msgs,
            "message_reactions": "message_id IN (%s)" % msgs,
            "message_statuses": "external_id = 'wamid.out-77120000001'",
            "outbox": "message_id IN (%s) OR conversation_id = %d" % (msgs, conv),
            "ingest_keys": "key LIKE '%%77120000001%%'",
            "ai_disclosures": "contact_id = %d" % a,
            "ai_exchanges": "conversation_id = %d" % conv,
            "ai_jobs": "conversation_id = %d" % conv,
            "merge_suggestions": "contact_id = %d OR other_contact_id = %d" % (a, a),
            "profile_requests": "true",
        }
        for table, where in checks.items():
            with self.subTest(table=table):
                self.assertEqual(self.count(table, where), 0)
        everything = self.psql("SELECT concat_ws(' ', (SELECT json_agg(e)::text FROM events e),"
                               " (SELECT json_agg(c)::text FROM contacts c),"
                               " (SELECT json_agg(m)::text FROM messages m),"
                               " (SELECT json_agg(i)::text FROM contact_identities i),"
                               " (SELECT json_agg(x)::text FROM message_edits x),"
                               " (SELECT json_agg(s)::text FROM message_statuses s),"
                               " (SELECT json_agg(k)::text FROM ingest_keys k))")
        for s in mine:
            self.assertNotIn(s, everything)
        for s in theirs[:2] + theirs[3:]:
            self.assertIn(s, everything)     # the other contact is untouched
        self.assertEqual(self.count("contacts", "id = %d" % b), 1)
        self.assertEqual({t: self.count(t, "tenant_id = 'acme'") for t in others}, others)
        # the events of the log about it went, one contact.erased with ids only remains
        self.assertEqual(self.psql("SELECT count(*) FROM events WHERE data::text LIKE "
                                   "'%%\"contact_id\": %d%%'" % a), "1")
        audit = self.psql("SELECT actor, role, action, target, address FROM audit_log")
        self.assertEqual(audit, "admin-1|admin|contact.erase|contact:%d|127.0.0.1" % a)
        detail = self.psql("SELECT detail::text FROM audit_log")
        for s in mine:
            self.assertNotIn(s, detail)
        # the contact's next message starts a fresh contact
        self.say(h, "77120000001", "Дана")
        fresh = self.contact_id("+77120000001")
        self.assertGreater(fresh, b)
        self.assertEqual(self.count("conversations", "contact_id = %d" % fresh), 1)
        # erased: 404, nothing changes
        self.error(h, "DELETE", "/api/v1/contacts/%d" % a, tok, 404, "not_found")
        self.error(h, "GET", "/api/v1/contacts/%d/export" % a, tok, 404, "not_found")

    def test_hubctl_contact_export_and_erase(self):
        h = self.start_hubd()
        agent = self.agent(h)
        a, mine = self.rich_contact(h, agent, "77130000001", "Ерболат")
        r = self.hubctl("-c", h.config_path, "contact", "export", str(a), "--tenant", "demo")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["contact"]["id"], a)
        for s in mine:
            self.assertIn(s, r.stdout)
        for args, code in ((("contact", "export", str(a), "--tenant", "acme"), 1),
                           (("contact", "erase", str(a), "--tenant", "acme"), 1),
                           (("contact", "export", "x", "--tenant", "demo"), 2),
                           (("contact", "erase", str(a)), 2),
                           (("contact", "wipe", str(a), "--tenant", "demo"), 2),
                           (("contact", "erase", str(a), "--tenant", "Bad Tenant"), 2)):
            with self.subTest(args=args):
                before = self.state()
                r = self.hubctl("-c", h.config_path, *args)
                self.assertEqual(r.returncode, code, r)
                self.assertTrue(r.stderr.strip())
                self.assertEqual(self.state(), before)
        r = self.hubctl("-c", h.config_path, "contact", "erase", str(a), "--tenant", "demo")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["erased"]["contact_id"], a)
        # the open inbox drops the contact at once (hubctl tells hubd through NOTIFY)
        self.assertEqual(agent.event("contact.erased")["data"]["contact_id"], a)
        self.assertEqual(self.count("contacts"), 0)
        self.assertEqual(self.count("messages"), 0)
        self.assertEqual(self.psql("SELECT actor, role, action FROM audit_log ORDER BY id"),
                         "hubctl|operator|contact.export\nhubctl|operator|contact.erase")


    def test_a_message_arriving_during_the_erasure_is_stored_under_a_fresh_contact(self):
        # the ingest waits on the erasing transaction's rows; once that commits, the message
        # is stored under a fresh contact, never answered 200 and dropped
        h = self.start_hubd()
        self.say(h, "77120000009", "Дана")
        a = self.contact_id("+77120000009")
        erasing = threading.Thread(target=self.psql, args=(
            "BEGIN; SELECT count(*) FROM hub_contact_erase('demo', %d, 'test', 'operator', "
            "''); SELECT pg_sleep(1.5); COMMIT;" % a,))
        erasing.start()
        self.addCleanup(erasing.join)
        time.sleep(0.5)  # the erasure holds its locks now; the webhook waits on them
        body, wamid, sig = self.text_webhook(h, wa_id="77120000009", name="Дана")
        r = self.post_webhook(h, "demo-whatsapp", body, sig)
        erasing.join()
        self.assertIn(r.status, (200, 503), r)
        if r.status == 503:  # stored nothing: the platform sends it again
            r = self.post_webhook(h, "demo-whatsapp", body, sig)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(self.psql("SELECT count(*) FROM messages m JOIN conversations c "
                                   "ON c.id = m.conversation_id WHERE m.external_id = '%s' "
                                   "AND c.contact_id <> %d" % (wamid, a)), "1")
        self.assertEqual(self.count("contacts", "id = %d" % a), 0)


class Tenant(PrivacyCase):
    def test_deleted_tenant_stops_at_once_and_is_purged(self):
        h = self.start_hubd(overrides={"privacy.purge_after_s": 3, "privacy.interval_ms": 200,
                                       "privacy.batch": 2})
        tok = self.admin(h)
        agent = self.agent(h)
        for i in range(3):
            self.rich_contact(h, agent, "7714000000%d" % i, "Клиент %d" % i)
        self.say(h, "77140000009", "Acme client", cid="acme-whatsapp")
        acme = {t: self.count(t, "tenant_id = 'acme'") for t in TENANT_TABLES}
        acme_ids = self.count("contact_identities")  - self.count(
            "contact_identities i JOIN contacts c ON c.id = i.contact_id", "c.tenant_id = 'demo'")
        self.error(h, "DELETE", "/api/v1/tenant", tok, 400, "confirm")
        self.error(h, "DELETE", "/api/v1/tenant?confirm=acme", tok, 400, "confirm")
        r = self.req(h, "DELETE", "/api/v1/tenant?confirm=demo", tok)
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual((doc["tenant"], doc["channels"]), ("demo", 1))
        self.assertLess(doc["deleted_at"], doc["purge_at"])
        self.assertEqual(self.psql("SELECT action, target FROM audit_log"),
                         "tenant.delete|tenant:demo")

        # every webhook of the tenant: 404 as soon as hubd re-read its channels (NOTIFY)
        def refused():
            body, _, sig = self.text_webhook(h, "demo-whatsapp", wa_id="77140000005")
            return self.post_webhook(h, "demo-whatsapp", body, sig).status == 404
        wait_for(refused, "the deleted tenant's webhook to get 404")
        self.assertEqual(self.count("contact_identities", "external_id = '77140000005'"), 0)
        # the other tenant goes on
        self.say(h, "77140000009", "Acme client", cid="acme-whatsapp")
        # the purge, in batches of 2, after purge_after_s
        wait_for(lambda: self.count("tenants", "id = 'demo'") == 0, "the purge")
        for t in TENANT_TABLES:
            with self.subTest(table=t):
                self.assertEqual(self.count(t, "tenant_id = 'demo'"), 0)
        for t in ("contact_identities", "message_edits", "message_reactions",
                  "message_statuses", "ingest_keys", "profile_requests"):
            with self.subTest(table=t):
                n = self.count(t)
                self.assertEqual(n, acme_ids if t == "contact_identities" else 0, t)
        # acme kept all its rows (one message more)
        self.assertEqual(self.count("contacts", "tenant_id = 'acme'"), acme["contacts"])
        self.assertEqual(self.count("messages", "tenant_id = 'acme'"), acme["messages"] + 1)
        # only the audit record stays, without personal data
        self.assertEqual(self.count("audit_log", "tenant_id = 'demo'"), 1)
        self.assertRegex(h.log(), r"tenant=demo: purged")


class Retention(PrivacyCase):
    def test_pruned_by_age_and_resume_from_a_pruned_cursor_resyncs(self):
        h = self.start_hubd(overrides={"privacy.interval_ms": 200, "privacy.batch": 3,
                                       "retention.events_s": 3600,
                                       "retention.ingest_keys_s": 3600,
                                       "retention.statuses_s": 3600})
        agent = self.agent(h)
        for i in range(4):
            self.say(h, "7715000000%d" % i, "Old %d" % i)
        old_last = int(self.psql("SELECT last_event_id FROM tenant_stream WHERE tenant_id = "
                                 "'demo'"))
        self.psql("""
            INSERT INTO ingest_keys (channel_id, tenant_id, kind, key, created_at)
            SELECT id, tenant_id, 'update', g::text, now() - interval '2 hours' FROM channels,
                generate_series(1, 7) g WHERE public_id = 'demo-whatsapp';
            INSERT INTO ingest_keys (channel_id, tenant_id, kind, key)
            SELECT id, tenant_id, 'update', 'new' FROM channels WHERE public_id = 'demo-whatsapp';
            INSERT INTO message_statuses (channel_id, tenant_id, external_id, status, created_at)
            SELECT id, tenant_id, 'wamid.' || g, 'read', now() - interval '2 hours' FROM channels,
                generate_series(1, 5) g WHERE public_id = 'demo-whatsapp';
            INSERT INTO message_statuses (channel_id, tenant_id, external_id, status)
            SELECT id, tenant_id, 'wamid.new', 'read' FROM channels WHERE public_id = 'demo-whatsapp';
            UPDATE events SET created_at = now() - interval '2 hours' WHERE tenant_id = 'demo';
            """)
        self.say(h, "77150000009", "New")        # newer events stay
        last = int(self.psql("SELECT last_event_id FROM tenant_stream WHERE tenant_id = "
                             "'demo'"))
        wait_for(lambda: self.count("events", "tenant_id = 'demo' AND id <= %d" % old_last) == 0
                 and self.count("ingest_keys", "key <> 'new'") == 0
                 and self.count("message_statuses", "external_id <> 'wamid.new'") == 0,
                 "retention")
        self.assertEqual(self.count("events", "tenant_id = 'demo'"), last - old_last)
        self.assertEqual(self.count("ingest_keys"), 1)
        self.assertEqual(self.count("message_statuses"), 1)
        self.assertEqual(self.psql("SELECT pruned_upto FROM tenant_stream WHERE tenant_id = "
                                   "'demo'"), str(old_last))
        # acme's log is not touched
        self.assertGreater(self.count("events", "tenant_id = 'acme'"), -1)
        # resume from a pruned cursor: resync, then live events go on after it
        c = self.ws(h)
        hello = c.auth(self.token(h))
        self.assertEqual(hello["last_event_id"], last)
        c.send_json({"type": "resume", "after": 1})
        m = c.next()
        self.assertEqual((m["type"], m["last_event_id"]), ("resync", last), m)
        self.assertTrue(m["reason"])
        self.say(h, "77150000009", "New")
        self.assertEqual(c.event("message.created")["id"], last + 2)
        # a cursor the log still holds: replayed, then resumed
        c2 = self.ws(h)
        c2.auth(self.token(h))
        c2.send_json({"type": "resume", "after": old_last})
        ids = []
        while True:
            m = c2.next()
            if m["type"] == "resumed":
                break
            ids.append(m["id"])
        self.assertEqual(ids, list(range(old_last + 1, last + 3)))
        agent.close_socket()



from test_browser import BrowserCase  # noqa: E402


class Page(BrowserCase):
    """The inbox page follows an erasure live and reloads its lists on resync."""

    def test_erased_contact_leaves_the_open_page_and_resync_reloads_it(self):
        cfg = self.config({"retention.events_s": 3600})
        h = self.start_hubd(cfg)
        admin = self.token(h, sub="admin-1", role="admin")
        self.say(h, "Первый " + os.urandom(3).hex(), wa_id="77160000001", name="Стираемый")
        self.say(h, "Второй " + os.urandom(3).hex(), wa_id="77160000002", name="Остаётся")
        b = self.open_inbox(h)
        b.call("wait_conversation", name="Стираемый")
        b.call("wait_conversation", name="Остаётся")
        b.call("select", name="Стираемый")
        b.call("mark")
        cid = int(self.psql("SELECT id FROM contacts WHERE phone = '+77160000001'"))
        r = AdminCase.req(self, h, "DELETE", "/api/v1/contacts/%d" % cid, admin)
        self.assertEqual(r.status, 200, r)
        util.wait_for(lambda: [i["name"] for i in b.call("list")["items"]] == ["Остаётся"],
                      20, "the erased conversation to leave the list")
        self.assertEqual(b.call("count", selector="#conv:not([hidden])")["n"], 0)

        # hubd goes away; meanwhile another instance takes a message and retention prunes
        # the log past the page's cursor: on its return the page is told to resync and
        # reloads its lists, without a reload of the page
        h.stop()
        b.call("wait_visible", selector="#offline")
        other = self.start_hubd(cfg=dict(cfg, http=dict(cfg["http"], listen="127.0.0.1:%d"
                                                          % util.free_port())), name="other")
        self.say(other, "Новый " + os.urandom(3).hex(), wa_id="77160000003", name="Новенький")
        other.stop()
        self.psql("UPDATE events SET created_at = now() - interval '2 hours';"
                  "SELECT hub_privacy_prune('events', 3600, 1000)")
        h.start()
        b.call("wait_conn", state="online", timeout=90)
        b.call("wait_conversation", name="Новенький", timeout=60)
        self.assertTrue(b.call("marked")["marked"], "the page reloaded")
        frames = b.call("frames")["received"]
        self.assertIn("resync", [f.get("type") for f in frames], frames)
        self.assertEqual(sorted(i["name"] for i in b.call("list")["items"]),
                         ["Новенький", "Остаётся"])
        b.call("screenshot", path=os.path.join(self.out, "after-resync.png"))
        self.assert_no_page_problems(b)


del BrowserCase
