"""tests/integration/test_ingest_set.py - the set-based group commit (db/migrations/0019)
against the item-by-item path it replaces, in the database alone (no hubd): two copies of
one database get the same batches, one through hub_ingest_set (0019), the other through
0004's hub_ingest_items one item after another; every batch must give the same results,
the same events (item, tenant, type and JSON) and leave the same rows in every table an
item writes (ids included; times masked). The batches are random but seeded: messages of
known and new senders on four channels of two tenants (renames, phones learnt and merged,
one phone for two senders, same-name suggestions, duplicates in and across batches, media,
Telegram update ids, a channel whose assistant is on), statuses (several of one message,
failed, unknown ids, an Instagram read), echoes, edits, reactions, deletions, and items the
database refuses. Also: a realistic batch (many senders, 10 % new, statuses) is stored by
the set-based path itself, not by its fallback, and the dropped index is gone.
"""
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import pg, util  # noqa: E402
from support.case import HubTestCase  # noqa: E402

TABLES = {  # table: its order
    "contacts": "id", "contact_identities": "id", "conversations": "id", "messages": "id",
    "message_statuses": "id", "merge_suggestions": "id", "ingest_keys": "channel_id, key",
    "message_edits": "id", "message_reactions": "message_id, reactor_external_id",
    "ai_jobs": "conversation_id", "profile_requests": "id",
}
TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d(:\d\d)?)?")
CHANNELS = [("demo-whatsapp", "demo", "whatsapp"), ("demo-telegram", "demo", "telegram"),
            ("demo-instagram", "demo", "instagram"), ("acme-whatsapp", "acme", "whatsapp")]
NAMES = ["Aigerim Bekova", "Dana Li", "Marat Kim", "Olga", None, "  Dana   Li ", "Asel"]


def items_sql(items):
    return "ARRAY(SELECT x FROM jsonb_array_elements($J$%s$J$::jsonb) x)" % json.dumps(
        items, ensure_ascii=False)


class Gen:
    """Random batches of items as daemon/inbound/ingest.c writes them."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.n = 0
        self.msgs = []      # (channel, external_id, sender) of messages sent so far
        self.update = 0

    def sender(self, kind):
        r = self.rng
        k = r.randrange(30)
        if kind == "whatsapp":
            return "7701%07d" % k, k
        return "%d" % (900000 + k), k

    def message(self):
        r = self.rng
        ch, _, kind = r.choice(CHANNELS[:2] * 3 + CHANNELS[2:])
        if r.random() < 0.1 and self.msgs:
            c, ext, snd = r.choice(self.msgs)   # a retry
            return {"kind": "message", "channel": c, "external_id": ext, "sender": snd,
                    "type": "text", "text": "again", "ts": 1764064800000}
        snd, k = self.sender(kind)
        self.n += 1
        it = {"kind": "message", "channel": ch, "external_id": "m%d" % self.n, "sender": snd,
              "type": r.choice(["text"] * 6 + ["image", "sticker", "weird"]),
              "text": "hello %d" % self.n, "ts": 1764064800000 + self.n}
        name = NAMES[k % len(NAMES)] if r.random() < 0.85 else r.choice(NAMES)
        if name is not None:
            it["name"] = name
        if kind == "whatsapp":
            if r.random() < 0.9:
                it["phone"] = "+" + snd
            elif r.random() < 0.5:
                it["phone"] = "+7701%07d" % r.randrange(30)  # someone else's phone
        elif kind == "telegram":
            if r.random() < 0.2:
                it["username"] = r.choice(["dana", "marat", "olga"])
            if r.random() < 0.1:
                it["phone"] = "+7701%07d" % r.randrange(30)  # a shared contact
            self.update += 1
            it["update_id"] = self.update if r.random() < 0.9 else max(1, self.update - 3)
        if it["type"] == "image":
            it["media"] = {"ref": "r%d" % self.n, "mime": "image/jpeg", "size": 10}
        if r.random() < 0.1:
            it["reply_to"] = "m%d" % r.randrange(1, self.n + 1)
        self.msgs.append((ch, it["external_id"], snd))
        return it

    def item(self):
        r = self.rng
        x = r.random()
        if x < 0.6:
            return self.message()
        if x < 0.85:
            ch = r.choice(["demo-whatsapp"] * 4 + ["demo-instagram", "acme-whatsapp"])
            it = {"kind": "status", "channel": ch,
                  "external_id": "out%d" % r.randrange(1, 9) if r.random() < 0.85
                  else "nope%d" % r.randrange(3),
                  "status": r.choice(["sent", "delivered", "read", "read", "failed",
                                      "played", "queued"]),
                  "ts": 1764064800000 + r.randrange(100)}
            if it["status"] == "failed":
                it["error"] = "131047: Re-engagement message"
            return it
        if not self.msgs or x > 0.99:
            return {"kind": "message", "channel": "no-such-channel", "external_id": "z",
                    "sender": "1", "type": "text", "text": "x"}
        ch, ext, snd = r.choice(self.msgs)
        if x < 0.88:
            self.n += 1
            return {"kind": "echo", "channel": ch, "external_id": r.choice(
                ["e%d" % self.n, "out%d" % r.randrange(1, 9)]), "recipient": snd,
                "type": "text", "text": "from the app", "ts": 1764064800000}
        if x < 0.92:
            return {"kind": "edit", "channel": ch, "external_id": ext, "key": str(
                r.randrange(3)), "text": "edited", "ts": 1764064800000 + r.randrange(9)}
        if x < 0.96:
            return {"kind": "reaction", "channel": ch, "reply_to": ext, "sender": snd,
                    "text": r.choice(["👍", "", "❤"]), "key": "k%d" % r.randrange(40),
                    "ts": 1764064800000 + r.randrange(9)}
        if x < 0.98:
            return {"kind": "delete", "channel": ch, "external_id": ext,
                    "ts": 1764064800000}
        return {"kind": "read_receipt", "channel": ch}

    def batch(self, size):
        return [self.item() for _ in range(size)]


class IngestSet(HubTestCase):
    needs_hubd = False

    def setUp(self):
        super().setUp()
        for path in sorted(os.listdir(os.path.join(util.ROOT, "db", "migrations"))):
            with open(os.path.join(util.ROOT, "db", "migrations", path)) as f:
                self.psql("BEGIN;\n" + f.read() + "\nCOMMIT;")
        for cid, tenant, kind in CHANNELS:
            self.psql("SELECT hub_channel_add('%s', '%s', '%s', '%s', 'acc-%s', 's', NULL, "
                      "NULL)" % (cid, tenant, tenant, kind, cid))
        self.psql("SELECT hub_channel_add('off-whatsapp', 'demo', NULL, 'whatsapp', 'x', 's', "
                  "NULL, NULL); UPDATE channels SET enabled = false "
                  "WHERE public_id = 'off-whatsapp'")
        self.psql("SELECT hub_channel_ai_set('demo-telegram', '{\"enabled\": true, "
                  "\"base_url\": \"http://127.0.0.1:9\", \"model\": \"m\"}')")

    def twin(self):
        """A copy of this test's database (dropped after the test)."""
        name = self.db + "_twin"
        self.psql('CREATE DATABASE "%s" TEMPLATE "%s"' % (name, self.db), db="postgres")
        self.addCleanup(self.pg.drop_db, name)
        return name

    def seed(self, gen):
        """Known senders (through the item-by-item path), resolved conversations, a name an
        agent set, and outgoing messages out1..out8 for statuses (one failed)."""
        items = []
        for ch, _, kind in CHANNELS:
            for k in range(0, 30, 2):
                snd = ("7701%07d" % k) if kind == "whatsapp" else "%d" % (900000 + k)
                it = {"kind": "message", "channel": ch, "external_id": "seed-%s-%d" % (ch, k),
                      "sender": snd, "type": "text", "text": "seed", "ts": 1764060000000}
                if NAMES[k % len(NAMES)]:
                    it["name"] = NAMES[k % len(NAMES)]
                if kind == "whatsapp" and k % 4 == 0:
                    it["phone"] = "+" + snd
                items.append(it)
        self.psql("SELECT count(*) FROM hub_ingest_items(%s, true)" % items_sql(items))
        self.psql("UPDATE conversations SET status = 'resolved' WHERE id % 3 = 0; "
                  "UPDATE contacts SET display_name = 'Set by agent', name_set_by_agent = true "
                  "WHERE id = 5; "
                  "INSERT INTO messages (tenant_id, conversation_id, channel_id, external_id, "
                  "direction, author, type, text, status) SELECT v.tenant_id, v.id, "
                  "v.channel_id, 'out' || g, 'out', 'agent', 'text', 'answer', "
                  "CASE WHEN g = 8 THEN 'failed' WHEN g = 7 THEN 'queued' ELSE 'sent' END "
                  "FROM generate_series(1, 8) g JOIN conversations v ON v.id = g "
                  "WHERE v.channel_id IN (SELECT id FROM channels WHERE public_id IN "
                  "('demo-whatsapp', 'demo-instagram'))")
        for ch, ext, snd in (("demo-whatsapp", "seed-demo-whatsapp-%d" % k, "7701%07d" % k)
                             for k in range(0, 30, 2)):
            gen.msgs.append((ch, ext, snd))

    def state_sql(self):
        return " UNION ALL ".join(
            "SELECT '%s' || '|' || coalesce((SELECT string_agg(to_jsonb(t)::text, E'\\n' "
            "ORDER BY %s) FROM %s t), '')"
            % (t, ", ".join("t." + c.strip() for c in order.split(",")), t)
            for t, order in TABLES.items())

    def ingest(self, db, items, call):
        """call (hub_ingest_set(%s) or hub_ingest_items(%s, ...)) on db, then the rows of
        every table, in one transaction: ((results, events), rows), or None when it raised
        (nothing changed then)."""
        try:
            out = self.psql("SELECT to_jsonb(r)::text FROM %s r; %s"
                            % (call % items_sql(items), self.state_sql()), db=db)
        except pg.PgError:
            return None
        first, _, rows = out.partition("\n")
        return self.decode(first), TIME.sub("T", rows).split("\n")

    def run_set(self, db, items):
        got = self.ingest(db, items, "hub_ingest_set(%s)")
        return got and got[0]

    def decode(self, out):
        r = json.loads(out)
        events = list(zip(r["o_ev_item"], r["o_ev_tenant"], r["o_ev_type"],
                          [TIME.sub("T", json.dumps(d, sort_keys=True))
                           for d in r["o_ev_data"]]))
        return r["o_results"], events

    def align_sequences(self, a, b):
        """After a failed first attempt on both copies (which takes different numbers of
        ids), both sequences continue from the same value."""
        q = "SELECT schemaname || '.' || sequencename, coalesce(last_value, 0) FROM pg_sequences"
        va = dict(line.split("|") for line in self.psql(q, db=a).splitlines())
        vb = dict(line.split("|") for line in self.psql(q, db=b).splitlines())
        sql = ";".join("SELECT setval('%s', %d, true)" % (k, max(int(va[k]), int(vb[k]), 1))
                       for k in va)
        self.psql(sql, db=a)
        self.psql(sql, db=b)

    def test_random_batches_give_what_one_item_after_another_gives(self):
        gen = Gen(int(os.environ.get("HUBT_INGEST_SEED", "18")))
        self.seed(gen)
        a, b = self.db, self.twin()
        fast = slow = 0
        for i in range(25):
            items = gen.batch(gen.rng.choice([1, 2, 5, 12, 30, 60]))
            got = self.ingest(a, items, "hub_ingest_set(%s)")
            want = self.ingest(b, items, "hub_ingest_items(%s, false)")
            self.assertEqual(got is None, want is None,
                             "batch %d: one path failed, the other did not: %s"
                             % (i, json.dumps(items, ensure_ascii=False)))
            if got is None:
                slow += 1
                self.align_sequences(a, b)
                got = self.ingest(a, items, "hub_ingest_items(%s, true)")
                want = self.ingest(b, items, "hub_ingest_items(%s, true)")
            else:
                fast += 1
            self.assertEqual(got[0], want[0], "batch %d: %s"
                             % (i, json.dumps(items, ensure_ascii=False)))
            self.assertEqual(got[1], want[1], "batch %d" % i)
        self.assertGreater(fast, 10)
        self.assertGreater(slow, 0)

    def test_a_realistic_batch_is_stored_by_the_set_based_path(self):
        # many senders (a tenth new), a fifth statuses: no item goes alone, nothing falls
        # back (hub_ingest_set would raise), and each item's events are there
        gen = Gen(7)
        self.seed(gen)
        rng = random.Random(3)
        items = []
        for i in range(200):
            if rng.random() < 0.2:
                items.append({"kind": "status", "channel": "demo-whatsapp",
                              "external_id": "out%d" % (1 + i % 8), "status": "delivered",
                              "ts": 1764064800000})
                continue
            k = 2 * rng.randrange(15) if rng.random() >= 0.1 else 1000 + i
            items.append({"kind": "message", "channel": "demo-whatsapp",
                          "external_id": "r%d" % i, "sender": "7701%07d" % k,
                          "phone": "+7701%07d" % k if k % 4 == 0 or k >= 1000 else None,
                          "name": NAMES[k % len(NAMES)], "type": "text", "text": "hi",
                          "ts": 1764064800000})
        for it in items:
            if it.get("phone", 1) is None:
                del it["phone"]
            if it.get("name", 1) is None:
                del it["name"]
        got = self.run_set(self.db, items)
        self.assertIsNotNone(got, "the set-based path raised")
        results, events = got
        msgs = [i for i, it in enumerate(items) if it["kind"] == "message"]
        self.assertEqual([results[i] for i in msgs], ["stored"] * len(msgs))
        self.assertEqual([e[0] for e in events if e[2] == "message.created"],
                         [i + 1 for i in msgs])
        self.assertEqual(self.count("messages", "external_id LIKE 'r%'"), len(msgs))
        # out1..out8: delivered once each (out8 failed: stale), the repeats duplicates
        self.assertEqual(sorted(set(results[i] for i in range(200) if i not in msgs)),
                         ["duplicate", "stale", "stored"])

    def test_an_item_alone_keeps_its_place_among_the_set_based_ones(self):
        # a rename in the middle: stored alone between the two runs, events in item order
        self.seed(Gen(1))
        items = [{"kind": "message", "channel": "demo-whatsapp", "external_id": "a%d" % i,
                  "sender": "7701%07d" % k, "type": "text", "text": "x", "name": name,
                  "ts": 1764064800000}
                 for i, (k, name) in enumerate([(2, "Marat Kim"), (4, "New Name"),
                                                (6, "Asel")])]
        results, events = self.run_set(self.db, items)
        self.assertEqual(results, ["stored"] * 3)
        self.assertEqual([(e[0], e[2]) for e in events], [
            (1, "conversation.updated"), (1, "message.created"),
            (2, "contact.updated"), (2, "conversation.updated"), (2, "message.created"),
            (3, "conversation.updated"), (3, "message.created")])
        self.assertEqual(self.psql("SELECT display_name FROM contacts c JOIN "
                                   "contact_identities i ON i.contact_id = c.id "
                                   "WHERE i.external_id = '77010000004' AND c.tenant_id = "
                                   "'demo'"), "New Name")

    def test_the_unread_index_nobody_reads_is_gone(self):
        self.assertEqual(self.psql("SELECT count(*) FROM pg_indexes WHERE indexname = "
                                   "'conversations_inbox'"), "0")
        self.assertEqual(self.psql("SELECT count(*) FROM pg_indexes WHERE indexname = "
                                   "'conversations_activity'"), "1")
