"""tests/integration/test_ingest.py - every inbound event kind of the three platforms through
the running hubd into PostgreSQL: every fixture (and its golden events) stored, a retry of
each changing nothing; statuses only moving forward (out of order, read without delivered,
failed final with its error, unknown ids counted); edits keeping the previous text;
deletions marking the message; reactions and their removal; echoes stored as outgoing
messages and reconciled with the outbound row; Telegram update ids; contact resolution
(a Telegram contact shared by its sender merging with the WhatsApp contact of that phone,
same-name suggestions, profile-name changes, WhatsApp user ids); a message after resolve
reopening the conversation; group commit (concurrent webhooks, one item refused by the
database while the others stay); and each bad input refused with nothing stored.
"""
import base64
import copy
import glob
import json
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, hubd, util, whatsapp  # noqa: E402
from support.case import HubTestCase  # noqa: E402

# Every table an inbound event may write.
ALL_TABLES = ("messages", "contacts", "contact_identities", "conversations", "events",
              "merge_suggestions", "message_statuses", "message_edits", "message_reactions",
              "ingest_keys")
IG_ACCOUNT = "17841471550633446"
TG_BOT = "7000000001"
# The order fixtures are posted in: targets before what refers to them.
KIND_RANK = {"message": 0, "echo": 0, "status": 1, "edit": 2, "reaction": 3, "delete": 4}


def fixture_doc(rel):
    return json.loads(util.fixture(rel))


def golden(path):
    with open(path[:-len(".json")] + ".expected.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def compact(doc):
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def tg_text(update_id, user_id, message_id, text, name="Айгерим", date=1764067200):
    return compact({"update_id": update_id, "message": {
        "message_id": message_id, "date": date, "text": text,
        "from": {"id": user_id, "is_bot": False, "first_name": name},
        "chat": {"id": user_id, "first_name": name, "type": "private"}}})


def wa_status(account, wamid, status, ts, error=None):
    st = {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": "77011234567"}
    if error:
        st["errors"] = [{"code": error[0], "title": error[1]}]
    return compact({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
                                       "metadata": {"phone_number_id": account},
                                       "statuses": [st]}}]}]})


class IngestCase(HubTestCase):
    def start(self, overrides=None):
        cfg = self.config(overrides)
        cfg["channels"] += [
            {"id": "demo-telegram", "tenant": "demo", "kind": "telegram", "account_id": TG_BOT,
             "app_secret": "tg-" + os.urandom(12).hex()},
            {"id": "demo-instagram", "tenant": "demo", "kind": "instagram",
             "account_id": IG_ACCOUNT, "app_secret": hubd.secret("ig-app-secret"),
             "verify_token": hubd.secret("ig-verify")}]
        return self.start_hubd(cfg)

    def post(self, h, platform, body, cid=None, signature=True, headers=None):
        """POSTs body to /webhooks/PLATFORM/CID (demo-PLATFORM), signed as the platform
        signs (signature=False: unsigned; a string: that header value)."""
        cid = cid or "demo-" + platform
        hdr = {"Content-Type": "application/json"}
        ch = next((c for c in h.cfg["channels"] if c["id"] == cid),
                  self.channel(h, "demo-" + platform))
        if signature is True:
            signature = (ch["app_secret"] if platform == "telegram"
                         else whatsapp.sign(body, ch["app_secret"]))
        if signature:
            hdr["X-Telegram-Bot-Api-Secret-Token" if platform == "telegram"
                else "X-Hub-Signature-256"] = signature
        hdr.update(headers or {})
        return httpc.request(h.port, "POST", "/webhooks/%s/%s" % (platform, cid), body=body,
                             headers=hdr)

    def ok(self, h, platform, body, **kw):
        r = self.post(h, platform, body, **kw)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def all_counts(self):
        return {t: self.count(t) for t in ALL_TABLES}

    def events(self, after=0):
        rows = self.psql("SELECT type || ' ' || data::text FROM events WHERE id > %d ORDER BY id"
                         % after)
        return [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1]))
                for line in rows.splitlines() if line]

    def last_event_id(self):
        return int(self.psql("SELECT coalesce(max(id), 0) FROM events"))

    def row(self, *columns, where="true", table="messages"):
        """The columns (SQL expressions) of the one matching row as a list, or None."""
        out = self.psql("SELECT json_build_array(%s) FROM %s WHERE %s"
                        % (", ".join(columns), table, where))
        return json.loads(out) if out else None

    def message(self, external_id):
        """[direction, author, type, text, status, error, deleted?, edited?, platform_ts ms,
        reply_to, raw_type] of the message with that external id, or None."""
        return self.row("direction", "author", "type", "text", "status", "error",
                        "deleted_at IS NOT NULL", "edited_at IS NOT NULL",
                        "(extract(epoch FROM platform_ts) * 1000)::bigint",
                        "reply_to_external_id", "raw_type",
                        where="external_id = '%s'" % external_id)

    def outbound(self, external_id, inbound_wamid=None, status="sent"):
        """An outgoing message row as the outbox would create it (after a customer's message
        made the conversation)."""
        if inbound_wamid is None:
            body, inbound_wamid, sig = self.text_webhook(self.h)
            self.assertEqual(self.post_webhook(self.h, "demo-whatsapp", body, sig).status, 200)
        self.psql("INSERT INTO messages (tenant_id, conversation_id, channel_id, external_id, "
                  "direction, author, type, text, status) SELECT tenant_id, conversation_id, "
                  "channel_id, '%s', 'out', 'agent', 'text', 'Our answer', '%s' FROM messages "
                  "WHERE external_id = '%s'" % (external_id, status, inbound_wamid))
        return int(self.psql("SELECT id FROM messages WHERE external_id = '%s'" % external_id))

    def to_instagram(self, where):
        """The conversations of the messages matching where moved to the Instagram channel,
        their messages with them (a message is on its conversation's channel)."""
        self.psql("UPDATE conversations SET channel_id = (SELECT id FROM channels WHERE "
                  "public_id = 'demo-instagram') WHERE id IN (SELECT conversation_id FROM "
                  "messages WHERE %s)" % where)


class Fixtures(IngestCase):
    def fixtures(self):
        out = []
        for platform in ("whatsapp", "telegram", "instagram"):
            for path in sorted(glob.glob(os.path.join(util.FIXTURES, platform, "*.json"))):
                if os.path.basename(path) == "huge_ids.json":
                    continue  # another account: refused 403 (BadInput)
                events = golden(path)
                rank = max([KIND_RANK[e["kind"]] for e in events] or [0])
                out.append((rank, platform, path, events))
        out.sort(key=lambda f: (f[0], f[1], f[2]))
        return out

    def test_every_fixture_is_stored_and_a_retry_of_each_changes_nothing(self):
        self.h = h = self.start()
        fixtures = self.fixtures()
        expected = {}   # external_id -> [direction, type, text, deleted, edited, ts, reply, raw]
        statuses = set()
        for _, platform, path, events in fixtures:
            with open(path, "rb") as f:
                body = f.read()
            res = self.ok(h, platform, body)
            self.assertEqual(res["stored"] + res["duplicates"] + res["stale"] + res["unknown"],
                             len(events), (path, res))
            for e in events:
                self.no_leak(*(t for t in [e.get("text")] if t and len(t) >= 12))
                ext = e.get("external_id")
                if e["kind"] in ("message", "echo"):
                    expected.setdefault(ext, ["in" if e["kind"] == "message" else "out",
                                              e["type"], e["text"], False, False,
                                              e["platform_ts"] or 0,
                                              e["reply_to_external_id"] or "", e["raw_type"]])
                elif e["kind"] == "edit" and ext in expected:
                    expected[ext][2], expected[ext][4] = e["text"], True
                elif e["kind"] == "delete" and ext in expected:
                    expected[ext][3] = True
                elif e["kind"] == "status":
                    statuses.add((ext, e["status"]))
        self.assertEqual(self.count("messages"), len(expected))
        for ext, (direction, typ, text, deleted, edited, ts, reply, raw) in expected.items():
            got = self.message(ext)
            self.assertIsNotNone(got, ext)
            self.assertEqual(got[0], direction, ext)
            self.assertEqual(got[1], "contact" if direction == "in" else "agent", ext)
            self.assertEqual(got[2], typ, ext)
            self.assertEqual(got[3], text, ext)
            self.assertEqual(got[4], "received" if direction == "in" else "sent", ext)
            self.assertEqual((got[6], got[7]), (deleted, edited), ext)
            self.assertEqual(got[8] or 0, ts, ext)
            self.assertEqual((got[9], got[10]), (reply or None, raw), ext)
        self.assertEqual(self.count("message_statuses"), len(statuses))
        # every Telegram update is recorded once
        tg_updates = {e["update_id"] for _, p, _, evs in fixtures if p == "telegram"
                      for e in evs}
        self.assertEqual(self.count("ingest_keys", "kind = 'update'"), len(tg_updates))
        # the tenant's events have contiguous ids
        self.assertEqual(self.psql("SELECT max(id) = count(*) FROM events WHERE tenant_id = "
                                   "'demo'"), "t")

        before = self.all_counts()
        for _, platform, path, events in fixtures:
            with open(path, "rb") as f:
                res = self.ok(h, platform, f.read())
            self.assertEqual(res["stored"], 0, (path, res))
        self.assertEqual(self.all_counts(), before)


class Statuses(IngestCase):
    def test_statuses_move_forward_only_and_failed_is_final(self):
        self.h = h = self.start()
        acc = hubd.DEMO_ACCOUNT
        wamid = whatsapp.new_wamid()
        mid = self.outbound(wamid)
        after = self.last_event_id()
        self.assertEqual(self.ok(h, "whatsapp", wa_status(acc, wamid, "delivered", 1764064801))
                         ["stored"], 1)
        # late (sent after delivered) and repeated (delivered again): ignored
        self.assertEqual(self.ok(h, "whatsapp", wa_status(acc, wamid, "sent", 1764064800))
                         ["stale"], 1)
        self.assertEqual(self.ok(h, "whatsapp", wa_status(acc, wamid, "delivered", 1764064801))
                         ["duplicates"], 1)
        self.assertEqual(self.message(wamid)[4], "delivered")
        self.ok(h, "whatsapp", wa_status(acc, wamid, "read", 1764064900))
        self.ok(h, "whatsapp", wa_status(acc, wamid, "played", 1764064901))
        self.assertEqual(self.message(wamid)[4], "played")
        evs = self.events(after)
        self.assertEqual([e[0] for e in evs], ["message.status"] * 3)
        self.assertEqual([e[1]["status"] for e in evs], ["delivered", "read", "played"])
        conv = int(self.psql("SELECT conversation_id FROM messages WHERE id = %d" % mid))
        self.assertEqual(evs[0][1], {"id": mid, "conversation_id": conv, "status": "delivered",
                                     "error": None})

        # failed keeps the platform's error and is final
        other = whatsapp.new_wamid()
        oid = self.outbound(other, inbound_wamid=self.psql(
            "SELECT external_id FROM messages WHERE direction = 'in' LIMIT 1"))
        after = self.last_event_id()
        self.ok(h, "whatsapp", wa_status(acc, other, "failed", 1764064999,
                                         (131026, "Message undeliverable")))
        self.assertEqual(self.ok(h, "whatsapp", wa_status(acc, other, "delivered", 1764065000))
                         ["stale"], 1)
        got = self.message(other)
        self.assertEqual(got[4:6], ["failed", "131026 Message undeliverable"])
        self.assertEqual(self.events(after), [("message.status", {
            "id": oid, "conversation_id": conv, "status": "failed",
            "error": "131026 Message undeliverable"})])

    def test_out_of_order_batch_and_read_without_delivered(self):
        self.h = h = self.start()
        doc = fixture_doc("whatsapp/status_batch_out_of_order.json")
        golden_ev = golden(os.path.join(util.FIXTURES, "whatsapp/status_batch_out_of_order.json"))
        first, failed = golden_ev[0]["external_id"], golden_ev[3]["external_id"]
        self.outbound(first)
        self.outbound(failed, inbound_wamid=self.psql(
            "SELECT external_id FROM messages WHERE direction = 'in' LIMIT 1"))
        res = self.ok(h, "whatsapp", compact(doc))
        # read (first in the body) wins; the delivered and sent behind it are stale
        self.assertEqual((res["stored"], res["stale"]), (2, 2), res)
        self.assertEqual(self.message(first)[4], "read")
        self.assertEqual(self.message(failed)[4], "failed")
        self.assertEqual(self.count("message_statuses"), 4)

        # read straight after sent
        wamid = whatsapp.new_wamid()
        self.outbound(wamid, inbound_wamid=self.psql(
            "SELECT external_id FROM messages WHERE direction = 'in' LIMIT 1"))
        self.ok(h, "whatsapp", wa_status(hubd.DEMO_ACCOUNT, wamid, "read", 1764065100))
        self.assertEqual(self.message(wamid)[4], "read")
        self.assertEqual(self.ok(h, "whatsapp", wa_status(hubd.DEMO_ACCOUNT, wamid, "delivered",
                                                         1764065000))["stale"], 1)
        self.assertEqual(self.message(wamid)[4], "read")

    def test_status_of_an_unknown_message_is_200_and_counted(self):
        self.h = h = self.start()
        before = self.all_counts()
        res = self.ok(h, "whatsapp", wa_status(hubd.DEMO_ACCOUNT, whatsapp.new_wamid(), "read",
                                               1764065100))
        self.assertEqual((res["unknown"], res["stored"]), (1, 0), res)
        after = self.all_counts()
        self.assertEqual(after.pop("message_statuses"), before.pop("message_statuses") + 1)
        self.assertEqual(after, before)

    def test_instagram_read_reads_the_earlier_messages_too(self):
        self.h = h = self.start()
        mid = golden(os.path.join(util.FIXTURES, "instagram/read.json"))[0]["external_id"]
        earlier = self.outbound("m_earlier")
        inbound = self.psql("SELECT external_id FROM messages WHERE direction = 'in'")
        # still waiting in the outbox: the platform has not got it, so it is not read
        self.outbound("m_queued", inbound_wamid=inbound, status="queued")
        self.outbound(mid, inbound_wamid=inbound)
        self.to_instagram("direction = 'out'")
        after = self.last_event_id()
        self.ok(h, "instagram", util.fixture("instagram/read.json"))
        self.assertEqual(self.message(mid)[4], "read")
        self.assertEqual(self.message("m_earlier")[4], "read")
        self.assertEqual(self.message("m_queued")[4], "queued")
        self.assertEqual(sorted(e[1]["id"] for e in self.events(after)),
                         sorted([earlier, int(self.psql("SELECT id FROM messages WHERE "
                                                        "external_id = '%s'" % mid))]))


class EditsDeletesReactions(IngestCase):
    def test_whatsapp_edit_keeps_the_previous_text_then_revoke_marks_deleted(self):
        self.h = h = self.start()
        reply = golden(os.path.join(util.FIXTURES, "whatsapp/reply.json"))[0]
        edit = golden(os.path.join(util.FIXTURES, "whatsapp/edit.json"))[0]
        self.ok(h, "whatsapp", util.fixture("whatsapp/reply.json"))
        after = self.last_event_id()
        self.assertEqual(self.ok(h, "whatsapp", util.fixture("whatsapp/edit.json"))
                         ["stored"], 1)
        ext = reply["external_id"]
        self.assertEqual(self.message(ext)[3], edit["text"])
        self.assertEqual(self.row("previous_text", "text", "edit_key", table="message_edits"),
                         [reply["text"], edit["text"], edit["dedupe_key"]])
        evs = self.events(after)
        self.assertEqual([e[0] for e in evs], ["message.updated"])
        data = evs[0][1]
        self.assertEqual((data["text"], data["deleted_at"], data["reactions"],
                          data["reply_to_external_id"]),
                         (edit["text"], None, [], reply["reply_to_external_id"]))
        self.assertIsNotNone(data["edited_at"])
        # a retried edit: nothing changes
        before = self.all_counts()
        self.assertEqual(self.ok(h, "whatsapp", util.fixture("whatsapp/edit.json"))
                         ["duplicates"], 1)
        self.assertEqual(self.all_counts(), before)

        after = self.last_event_id()
        self.assertEqual(self.ok(h, "whatsapp", util.fixture("whatsapp/revoke.json"))
                         ["stored"], 1)
        got = self.message(ext)
        self.assertEqual((got[3], got[6]), (edit["text"], True))  # kept, marked deleted
        evs = self.events(after)
        self.assertEqual([e[0] for e in evs], ["message.updated"])
        self.assertIsNotNone(evs[0][1]["deleted_at"])
        before = self.all_counts()
        self.assertEqual(self.ok(h, "whatsapp", util.fixture("whatsapp/revoke.json"))
                         ["duplicates"], 1)
        self.assertEqual(self.all_counts(), before)

    def test_telegram_edits_dedupe_by_edit_date_and_an_older_edit_does_not_win(self):
        self.h = h = self.start()
        self.ok(h, "telegram", tg_text(500, 5127345680, 201, "first version"))
        doc = fixture_doc("telegram/edited_text.json")
        self.assertEqual(self.ok(h, "telegram", compact(doc))["stored"], 1)
        newest = doc["edited_message"]["text"]
        older = copy.deepcopy(doc)
        older["update_id"] += 100
        older["edited_message"]["edit_date"] -= 30
        older["edited_message"]["text"] = "an older edit that arrives late"
        self.assertEqual(self.ok(h, "telegram", compact(older))["stale"], 1)
        self.assertEqual(self.message("5127345680:201")[3], newest)
        self.assertEqual(self.count("message_edits"), 2)  # both kept as history
        # the late one's text before it is not known (not the newer text it came after)
        self.assertEqual(self.psql("SELECT coalesce(previous_text, '-') || '|' || text FROM "
                                   "message_edits ORDER BY platform_ts"),
                         "-|an older edit that arrives late\nfirst version|" + newest)
        # the same edit again under a new update id: deduped by (chat, message_id, edit_date)
        again = copy.deepcopy(doc)
        again["update_id"] += 200
        self.assertEqual(self.ok(h, "telegram", compact(again))["duplicates"], 1)
        self.assertEqual(self.count("message_edits"), 2)

    def test_instagram_edit_and_delete(self):
        self.h = h = self.start()
        self.ok(h, "instagram", util.fixture("instagram/reply.json"))
        edit = golden(os.path.join(util.FIXTURES, "instagram/edit.json"))[0]
        self.assertEqual(self.ok(h, "instagram", util.fixture("instagram/edit.json"))
                         ["stored"], 1)
        self.assertEqual(self.message(edit["external_id"])[3], edit["text"])
        self.assertEqual(self.psql("SELECT edit_key FROM message_edits"), "1")  # num_edit
        # an edit and a deletion of a message the hub never got: 200, counted unknown
        before = self.all_counts()
        self.assertEqual(self.ok(h, "instagram", util.fixture("instagram/deleted.json"))
                         ["unknown"], 1)
        self.assertEqual(self.all_counts(), before)

    def test_reactions_and_their_removal(self):
        self.h = h = self.start()
        target = golden(os.path.join(util.FIXTURES, "whatsapp/reaction.json"))[0][
            "reply_to_external_id"]
        self.outbound(target)
        after = self.last_event_id()
        self.assertEqual(self.ok(h, "whatsapp", util.fixture("whatsapp/reaction.json"))
                         ["stored"], 1)
        evs = self.events(after)
        self.assertEqual([e[0] for e in evs], ["message.updated"])
        self.assertEqual(evs[0][1]["reactions"], [{"emoji": "👍", "author": "contact"}])
        # a retry: nothing new
        before = self.all_counts()
        self.assertEqual(self.ok(h, "whatsapp", util.fixture("whatsapp/reaction.json"))
                         ["duplicates"], 1)
        self.assertEqual(self.all_counts(), before)
        after = self.last_event_id()
        self.ok(h, "whatsapp", util.fixture("whatsapp/reaction_removed.json"))
        evs = self.events(after)
        self.assertEqual(evs[0][1]["reactions"], [])
        self.assertEqual(self.count("message_reactions", "emoji IS NULL"), 1)

    def test_telegram_reaction_changed_then_removed(self):
        self.h = h = self.start()
        self.ok(h, "telegram", tg_text(1, 5127345680, 190, "a message to react to"))
        for name, want in (("reaction_add", ["❤"]), ("reaction_change", ["👍"]),
                           ("reaction_removed", [])):
            after = self.last_event_id()
            self.assertEqual(self.ok(h, "telegram", util.fixture("telegram/%s.json" % name))
                             ["stored"], 1, name)
            evs = self.events(after)
            self.assertEqual([r["emoji"] for r in evs[0][1]["reactions"]], want, name)
        self.assertEqual(self.count("message_reactions"), 1)
        # a retry of the change: its update id is known
        before = self.all_counts()
        self.assertEqual(self.ok(h, "telegram", util.fixture("telegram/reaction_change.json"))
                         ["duplicates"], 1)
        self.assertEqual(self.all_counts(), before)

    def test_instagram_unreact_before_react_leaves_no_reaction(self):
        self.h = h = self.start()
        target = golden(os.path.join(util.FIXTURES, "instagram/reaction.json"))[0][
            "reply_to_external_id"]
        self.outbound(target)
        self.to_instagram("external_id = '%s'" % target)
        self.ok(h, "instagram", util.fixture("instagram/unreact.json"))
        # the reaction (older) arrives after its removal: it does not come back
        self.assertEqual(self.ok(h, "instagram", util.fixture("instagram/reaction.json")
                                 )["stale"], 1)
        self.assertEqual(self.count("message_reactions", "emoji IS NOT NULL"), 0)


class Echoes(IngestCase):
    def test_echo_is_an_outgoing_message_in_the_customers_conversation(self):
        self.h = h = self.start()
        body, wamid, sig = self.text_webhook(h)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        echo = golden(os.path.join(util.FIXTURES, "whatsapp/echo_text.json"))[0]
        after = self.last_event_id()
        self.assertEqual(self.ok(h, "whatsapp", util.fixture("whatsapp/echo_text.json")
                                 )["stored"], 1)
        got = self.message(echo["external_id"])
        self.assertEqual(got[:5], ["out", "agent", "text", echo["text"], "sent"])
        self.assertEqual(self.count("conversations"), 1)
        self.assertEqual(self.count("contacts"), 1)
        self.assertEqual(self.psql("SELECT unread FROM conversations"), "1")  # not ours
        self.assertEqual([e[0] for e in self.events(after)],
                         ["conversation.updated", "message.created"])
        # the business edits, then revokes it from the app
        self.ok(h, "whatsapp", util.fixture("whatsapp/echo_edit.json"))
        self.ok(h, "whatsapp", util.fixture("whatsapp/echo_revoke.json"))
        got = self.message(echo["external_id"])
        self.assertEqual((got[6], got[7]), (True, True))

    def test_echo_of_a_message_the_hub_sent_is_not_a_second_bubble(self):
        self.h = h = self.start()
        echo = golden(os.path.join(util.FIXTURES, "instagram/echo.json"))[0]
        self.outbound(echo["external_id"])
        self.to_instagram("external_id = '%s'" % echo["external_id"])
        before = self.all_counts()
        self.assertEqual(self.ok(h, "instagram", util.fixture("instagram/echo.json"))
                         ["duplicates"], 1)
        self.assertEqual(self.all_counts(), before)

    def sending(self):
        """hubd, and the id of an outgoing message the outbox created (queued) after a
        customer's message, and the WhatsApp id the platform will answer for it (that of the
        echo_text.json fixture)."""
        self.h = h = self.start()
        body, _, sig = self.text_webhook(h)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.psql("INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, "
                  "author, type, text, status) SELECT tenant_id, conversation_id, channel_id, "
                  "'out', 'agent', 'text', 'Our answer', 'queued' FROM messages")
        mid = int(self.psql("SELECT id FROM messages WHERE direction = 'out'"))
        echo = golden(os.path.join(util.FIXTURES, "whatsapp/echo_text.json"))[0]["external_id"]
        return h, mid, echo

    def test_echo_and_status_before_the_send_answer_fold_into_the_outbound_row(self):
        h, mid, echo = self.sending()
        # the outbox created its row, the platform has not answered yet, but its echo and
        # its delivered status arrive first
        self.assertEqual(self.ok(h, "whatsapp", wa_status(hubd.DEMO_ACCOUNT, echo, "delivered",
                                                         1764065101))["unknown"], 1)
        self.ok(h, "whatsapp", util.fixture("whatsapp/echo_text.json"))
        self.assertEqual(self.count("messages", "direction = 'out'"), 2)
        # the send answer: one bubble, delivered
        self.assertEqual(self.psql("SELECT o_result || ' ' || array_to_string(o_types, ',') "
                                   "FROM hub_message_sent('demo', %d, '%s')" % (mid, echo)),
                         "stored message.merged,message.status")
        self.assertEqual(self.row("id", "status", table="messages",
                                  where="direction = 'out'"), [mid, "delivered"])
        self.assertEqual(self.message(echo)[4], "delivered")
        self.assertEqual(self.psql("SELECT o_result FROM hub_message_sent('demo', %d, '%s')"
                                   % (mid, echo)), "duplicate")

    def test_a_status_during_the_send_answer_is_not_lost(self):
        h, mid, echo = self.sending()
        # the outbox's transaction has stored the answer but not committed yet...
        sess = subprocess.Popen([os.path.join(util.PG_BIN, "psql"), "-X", "-At", "-v",
                                 "ON_ERROR_STOP=1", self.pg.url(self.db)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(sess.wait)
        self.addCleanup(sess.kill)
        sess.stdin.write("BEGIN;\nSELECT o_result FROM hub_message_sent('demo', %d, '%s');\n"
                         % (mid, echo))
        sess.stdin.flush()
        self.assertEqual(sess.stdout.readline().strip(), "BEGIN")
        self.assertEqual(sess.stdout.readline().strip(), "stored")
        # ...when the delivered status arrives: it waits for that COMMIT, then finds the row
        result = []
        t = threading.Thread(target=lambda: result.append(self.post(h, "whatsapp", wa_status(
            hubd.DEMO_ACCOUNT, echo, "delivered", 1764065101))))
        t.start()
        util.wait_for(lambda: result or self.count("pg_locks", "locktype = 'advisory' AND "
                                                   "NOT granted"),
                      30, "the status waiting for the send's transaction (or answered)")
        sess.stdin.write("COMMIT;\n")
        sess.stdin.close()
        t.join()
        self.assertEqual(sess.wait(), 0)
        self.assertEqual(result[0].status, 200, result[0])
        self.assertEqual(result[0].json()["stored"], 1, result[0])
        self.assertEqual(self.row("id", "status", table="messages",
                                  where="direction = 'out'"), [mid, "delivered"])

    def test_echo_to_a_new_customer_creates_the_contact(self):
        self.h = h = self.start()
        self.ok(h, "whatsapp", util.fixture("whatsapp/echo_text.json"))
        self.assertEqual(self.psql("SELECT phone FROM contacts"), "+77011234567")
        self.assertEqual(self.psql("SELECT status FROM conversations"), "open")


class Telegram(IngestCase):
    def test_update_id_is_stored_once(self):
        self.h = h = self.start()
        self.ok(h, "telegram", tg_text(42, 5127345680, 1, "first"))
        before = self.all_counts()
        # the same update id again, even with another message in it: a retry
        self.assertEqual(self.ok(h, "telegram", tg_text(42, 5127345680, 2, "other"))
                         ["duplicates"], 1)
        self.assertEqual(self.all_counts(), before)
        self.ok(h, "telegram", tg_text(43, 5127345680, 2, "other"))
        self.assertEqual(self.count("messages"), 2)


class Contacts(IngestCase):
    def test_telegram_contact_shared_by_its_sender_merges_with_the_whatsapp_contact(self):
        self.h = h = self.start()
        body, _, sig = self.text_webhook(h, name="Aigerim Bekova")  # wa_id 77011234567
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        wa_contact = int(self.psql("SELECT id FROM contacts"))
        self.ok(h, "telegram", tg_text(1, 5127345680, 190, "hello from telegram",
                                       name="Айгерим"))
        self.assertEqual(self.count("contacts"), 2)
        tg_contact = int(self.psql("SELECT contact_id FROM contact_identities i JOIN channels c "
                                   "ON c.id = i.channel_id WHERE c.kind = 'telegram'"))
        after = self.last_event_id()
        # contact_self.json: the sender shares their own contact, +77011234567
        self.ok(h, "telegram", util.fixture("telegram/contact_self.json"))
        self.assertEqual(self.count("contacts"), 1)
        self.assertEqual(self.psql("SELECT DISTINCT contact_id FROM contact_identities"),
                         str(wa_contact))
        self.assertEqual(self.psql("SELECT DISTINCT contact_id FROM conversations"),
                         str(wa_contact))
        self.assertEqual(self.count("conversations"), 2)  # one per channel
        self.assertEqual(self.psql("SELECT phone FROM contact_identities i JOIN channels c ON "
                                   "c.id = i.channel_id WHERE c.kind = 'telegram'"),
                         "+77011234567")
        evs = self.events(after)
        types = [e[0] for e in evs]
        self.assertEqual(types[:3], ["contact.merged", "conversation.updated",
                                     "contact.updated"], types)
        self.assertEqual(evs[0][1], {"contact_id": wa_contact, "merged_contact_id": tg_contact,
                                     "reason": "phone"})
        self.assertEqual(evs[1][1]["contact_id"], wa_contact)
        self.assertEqual(types[-1], "message.created")

    def test_same_name_is_a_suggestion_never_a_merge(self):
        self.h = h = self.start()
        body, _, sig = self.text_webhook(h, name="Aigerim Bekova")
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        after = self.last_event_id()
        self.ok(h, "telegram", tg_text(1, 5127345680, 1, "hi", name="aigerim  BEKOVA"))
        self.assertEqual(self.count("contacts"), 2)
        self.assertEqual(self.count("merge_suggestions", "reason = 'same_name'"), 1)
        types = [e[0] for e in self.events(after)]
        self.assertIn("contact.merge_suggested", types)

    def test_profile_name_change_renames_unless_an_agent_named_the_contact(self):
        self.h = h = self.start()
        for name in ("Aigerim", "Aigerim B."):
            after = self.last_event_id()
            body, _, sig = self.text_webhook(h, name=name)
            self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        evs = self.events(after)
        self.assertEqual(evs[0][0], "contact.updated")
        self.assertEqual(evs[0][1]["display_name"], "Aigerim B.")
        self.assertEqual(self.psql("SELECT display_name FROM contacts"), "Aigerim B.")
        self.assertEqual(self.psql("SELECT profile_name FROM contact_identities"), "Aigerim B.")
        self.psql("UPDATE contacts SET display_name = 'VIP client', name_set_by_agent = true")
        body, _, sig = self.text_webhook(h, name="Aika")
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertEqual(self.psql("SELECT display_name FROM contacts"), "VIP client")
        self.assertEqual(self.psql("SELECT profile_name FROM contact_identities"), "Aika")

    def test_whatsapp_user_id_is_an_identity_without_a_phone(self):
        self.h = h = self.start()
        self.ok(h, "whatsapp", util.fixture("whatsapp/user_id_only.json"))
        self.assertEqual(self.row("external_id", "phone", "username",
                                  table="contact_identities"),
                         ["KZ.1502576394655843", None, "@kaz.rider"])
        self.assertEqual(self.psql("SELECT coalesce(phone, '-') FROM contacts"), "-")

    def test_whatsapp_user_id_keeps_the_contact_when_the_phone_goes(self):
        self.h = h = self.start()
        body, _, sig = self.text_webhook(h)     # wa_id 77011234567 only (before 2026)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        # the user id and the phone: a new identity, linked by the phone
        self.ok(h, "whatsapp", util.fixture("whatsapp/user_id_and_phone.json"))
        # then the user id alone (the phone hidden behind a username): the same contact
        self.ok(h, "whatsapp", util.fixture("whatsapp/user_id_only.json"))
        self.assertEqual(self.count("contacts"), 1)
        self.assertEqual(self.count("conversations"), 1)
        self.assertEqual(self.psql("SELECT string_agg(external_id || ' ' || coalesce(phone, '-'),"
                                   " ', ' ORDER BY id) FROM contact_identities"),
                         "77011234567 +77011234567, KZ.1502576394655843 +77011234567")


class Conversations(IngestCase):
    def test_a_message_after_resolve_reopens_the_latest_conversation(self):
        self.h = h = self.start()
        body, _, sig = self.text_webhook(h)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        conv = self.psql("SELECT id FROM conversations")
        self.psql("UPDATE conversations SET status = 'resolved', unread = 0")
        after = self.last_event_id()
        body, _, sig = self.text_webhook(h)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertEqual(self.row("id::text", "status", "unread", table="conversations"),
                         [conv, "open", 1])
        evs = self.events(after)
        self.assertEqual([e[0] for e in evs], ["conversation.updated", "message.created"])
        self.assertEqual((evs[0][1]["id"], evs[0][1]["status"]), (int(conv), "open"))


class GroupCommit(IngestCase):
    def test_concurrent_webhooks_are_all_stored_and_published_in_order(self):
        self.h = h = self.start(overrides={"ingest.batch_max_items": 7})
        agent = self.agent(h)
        n = 40
        bodies = [self.text_webhook(h, wa_id="7701%07d" % (i % 5)) for i in range(n)]
        # one of them has an item the database refuses (an id too long for its index):
        # that request gets 200 with bad 1, the others of its transaction are stored
        bodies[7] = self.text_webhook(h, wamid="wamid." + base64.b64encode(
            os.urandom(2400)).decode())
        results = [None] * n

        def send(i):
            body, _, sig = bodies[i]
            r = self.post_webhook(h, "demo-whatsapp", body, sig)
            results[i] = (r.status, r.json().get("bad"))

        threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [(200, 0)] * 7 + [(200, 1)] + [(200, 0)] * (n - 8))
        self.assertEqual(self.count("messages"), n - 1)
        self.assertEqual(self.count("contacts"), 5)
        total = self.count("events")
        self.assertEqual(self.psql("SELECT max(id) FROM events"), str(total))
        ids = [agent.recv_json()["id"] for _ in range(total)]
        self.assertEqual(ids, list(range(1, total + 1)))

    def test_an_item_the_database_refuses_is_counted_bad_and_the_others_stay(self):
        self.h = h = self.start()
        doc = fixture_doc("whatsapp/batch_messages.json")
        msgs = doc["entry"][0]["changes"][0]["value"]["messages"]
        # an id too long for the unique index (btree rows are at most 2704 bytes)
        msgs[1]["id"] = "wamid." + base64.b64encode(os.urandom(2400)).decode()
        res = self.ok(h, "whatsapp", compact(doc))
        self.assertEqual((res["stored"], res["bad"]), (2, 1), res)
        self.assertEqual(self.count("messages"), 2)
        self.assertEqual(self.count("messages", "length(external_id) > 100"), 0)

    def test_a_database_failure_of_one_item_is_503_not_a_lost_message(self):
        self.h = h = self.start()
        # an I/O error (class 58) on one message: not the item's fault, so the platform
        # must send it again (503); the items beside it are committed, nothing else changes
        self.psql("CREATE FUNCTION t_io() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  "IF NEW.external_id = 'wamid.io' THEN RAISE EXCEPTION 'io' USING "
                  "ERRCODE = '58030'; END IF; RETURN NEW; END $$; CREATE TRIGGER t_io "
                  "BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION t_io()")
        doc = fixture_doc("whatsapp/batch_messages.json")
        msgs = doc["entry"][0]["changes"][0]["value"]["messages"]
        msgs[1]["id"] = "wamid.io"
        r = self.post(h, "whatsapp", compact(doc))
        self.assertEqual(r.status, 503, r)
        self.assertEqual(self.count("messages"), 2)
        self.assertEqual(self.count("messages", "external_id = 'wamid.io'"), 0)
        self.psql("DROP TRIGGER t_io ON messages")
        # the platform's retry stores the missing one; the others are duplicates
        res = self.ok(h, "whatsapp", compact(doc))
        self.assertEqual((res["stored"], res["duplicates"], res["bad"]), (1, 2, 0), res)


class Handshake(IngestCase):
    def test_instagram_answers_the_challenge_and_telegram_has_no_handshake(self):
        h = self.start()
        token = self.channel(h, "demo-instagram")["verify_token"]
        path = "/webhooks/instagram/demo-instagram?hub.mode=subscribe&hub.challenge=42&" \
               "hub.verify_token="
        r = httpc.get(h.port, path + token)
        self.assertEqual((r.status, r.body), (200, b"42"))
        self.assertEqual(httpc.get(h.port, path + "wrong").status, 403)
        r = httpc.get(h.port, "/webhooks/telegram/demo-telegram?hub.challenge=42")
        self.assertEqual(r.status, 405)
        self.assertNotIn(b"42", r.body)


class BadInput(IngestCase):
    """Each bad input gets its error and stores nothing, in any table."""

    def refused(self, h, status, platform, body, code=None, **kw):
        before = self.all_counts()
        r = self.post(h, platform, body, **kw)
        self.assertEqual(r.status, status, r)
        if code:
            self.assertEqual(r.json()["error"]["code"], code, r)
        self.assertEqual(self.all_counts(), before)
        h.assert_alive()
        return r

    def test_bad_signatures_are_401(self):
        h = self.start()
        ig = util.fixture("instagram/text.json")
        self.refused(h, 401, "instagram", ig, "bad_signature", signature="sha256=" + "0" * 64)
        self.refused(h, 401, "instagram", ig, "bad_signature", signature=False)
        tg = tg_text(1, 5127345680, 1, "signed wrong")
        self.refused(h, 401, "telegram", tg, "bad_signature", signature="tg-wrong-secret")
        self.refused(h, 401, "telegram", tg, "bad_signature", signature=False)
        wa = util.fixture("whatsapp/text.json")
        self.refused(h, 401, "whatsapp", wa, "bad_signature",
                     signature=whatsapp.sign(wa, self.channel(h, "acme-whatsapp")["app_secret"]))

    def test_unknown_channel_is_404(self):
        h = self.start()
        for platform in ("whatsapp", "telegram", "instagram"):
            body = util.fixture(platform + "/text.json")
            self.refused(h, 404, platform, body, "unknown_channel", cid="nope-" + platform,
                         signature="x")
        # a channel of another platform
        self.refused(h, 404, "telegram", util.fixture("telegram/text.json"),
                     "unknown_channel", cid="demo-whatsapp", signature="x")

    def test_wrong_account_is_403(self):
        h = self.start()
        self.refused(h, 403, "whatsapp", util.fixture("whatsapp/huge_ids.json"),
                     "wrong_account")
        doc = fixture_doc("instagram/text.json")
        doc["entry"][0]["id"] = "17841400000000000"
        self.refused(h, 403, "instagram", compact(doc), "wrong_account")
        body, _, _ = self.text_webhook(h, "acme-whatsapp")
        self.refused(h, 403, "whatsapp", body, "wrong_account")

    def test_malformed_json_is_400(self):
        h = self.start()
        for platform in ("whatsapp", "telegram", "instagram"):
            body = util.fixture(platform + "/text.json")
            self.refused(h, 400, platform, body[:len(body) // 2], "bad_json")
            self.refused(h, 400, platform, b"[]", "bad_json")

    def test_ids_that_overflow(self):
        h = self.start()
        # an update_id beyond int64: the body is refused
        body = tg_text(18446744073709551617, 5127345680, 1, "overflowing update")
        self.refused(h, 400, "telegram", body, "bad_json")
        # a sender id beyond int64: the item is bad, nothing is stored, still 200
        r = self.refused(h, 200, "telegram", tg_text(7, 18446744073709551617, 1, "big sender"))
        self.assertEqual(r.json()["bad"], 1)
        # ids above 2^53 are kept exactly, as strings
        self.ok(h, "telegram", util.fixture("telegram/text_huge_ids.json"))
        self.assertEqual(self.psql("SELECT external_id FROM contact_identities"),
                         "9007199254740993")

    def test_invalid_utf8_is_400(self):
        h = self.start()
        body = tg_text(1, 5127345680, 1, "XX").replace(b"XX", b"\xff\xfe")
        self.refused(h, 400, "telegram", body, "bad_json")
        wa = util.fixture("whatsapp/text.json").replace(b'"text"', b'"te\xc3xt"', 1)
        self.refused(h, 400, "whatsapp", wa, "bad_json")

    def test_5_mb_body_is_413(self):
        h = self.start(overrides={"http.body_max": 4 << 20})
        body = tg_text(1, 5127345680, 1, "z" * (5 << 20))
        before = self.all_counts()
        req = httpc.format_request("POST", "/webhooks/telegram/demo-telegram", body,
                                   {"Content-Type": "application/json",
                                    "X-Telegram-Bot-Api-Secret-Token":
                                    self.channel(h, "demo-telegram")["app_secret"]})
        with httpc.RawConn(h.port) as c:
            c.send(req)     # may be cut short once hubd has answered
            r = c.read_response()
        self.assertEqual(r.status, 413)
        self.assertEqual(self.all_counts(), before)
        h.assert_alive()

    def test_nul_bytes_in_text_are_dropped_not_fatal(self):
        h = self.start()
        body = tg_text(1, 5127345680, 1, "a\u0000b")
        self.assertEqual(self.ok(h, "telegram", body)["stored"], 1)
        self.assertEqual(self.psql("SELECT text FROM messages"), "ab")


if __name__ == "__main__":
    import unittest
    unittest.main()
