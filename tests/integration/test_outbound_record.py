"""tests/integration/test_outbound_record.py - when the outbox sender claims again after a
record (db/migrations/0022_outbound_speed.sql, daemon/outbound/outbox.c): hub_outbox_record
ends with the row (NULL, NULL, 'outbox.waiting', NULL) exactly when undelivered rows of the
conversations of the rows it ended are pending, which then go in order; and the sender,
claiming only then, still delivers a conversation's queued replies one after the other
(each waits behind the one before) and replies in many conversations exactly once.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import fakeplat, testca, util  # noqa: E402
from support.case import HubTestCase  # noqa: E402


class RecordSaysWhatWaits(HubTestCase):
    """The SQL contract, driven by hand with delivery off (nothing but this test claims)."""

    def conversation(self, h, agent, wa_id):
        body, _, sig = self.text_webhook(h, wa_id=wa_id)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        return agent.event("message.created")["data"]["conversation_id"]

    def send(self, agent, conv, text):
        ack = agent.command({"type": "send", "conversation_id": conv, "text": text,
                             "client_id": os.urandom(6).hex()})
        self.assertEqual(ack["type"], "ack", ack)
        return ack["message_id"]

    def claim(self):
        """The ids hub_outbox_claim gives now, in order."""
        out = self.psql("SELECT outbox_id FROM hub_outbox_claim(10, 60000)")
        return [int(x) for x in out.split()]

    def record(self, results):
        """hub_outbox_record's rows as [tenant, event_id, event] lists ('' for NULL); each
        result names its row's tenant, as the sender's do."""
        results = [dict(r, tenant="demo") for r in results]
        out = self.psql("SELECT json_agg(json_build_array(tenant, event_id, event)) FROM "
                        "hub_outbox_record('%s'::jsonb)" % json.dumps(results))
        return json.loads(out or "null") or []

    def box(self, mid):
        return int(self.psql("SELECT id FROM outbox WHERE message_id = %d" % mid))

    def test_waiting_row_only_when_a_row_of_the_conversation_is_pending(self):
        h = self.start_hubd()
        agent = self.agent(h)
        a = self.conversation(h, agent, "77011230001")
        b = self.conversation(h, agent, "77011230002")
        a1, a2 = self.send(agent, a, "first to a"), self.send(agent, a, "second to a")
        b1 = self.send(agent, b, "only to b")
        a1, a2, b1 = self.box(a1), self.box(a2), self.box(b1)
        self.assertEqual(self.claim(), [a1, b1])            # a2 waits behind a1
        # b1 ended: nothing of b is pending, no waiting row
        rows = self.record([{"id": b1, "sent": "wamid.b1"}])
        self.assertEqual([r[2] for r in rows], ["message.status"])
        # a1 retried: it stays ahead of a2, no waiting row (the sender looks again for the
        # retry's due time all the same)
        rows = self.record([{"id": a1, "retry": 60000, "code": "500", "error": "x"}])
        self.assertEqual(rows, [])
        self.assertEqual(self.claim(), [])
        self.psql("UPDATE outbox SET next_attempt_at = now() WHERE id = %d" % a1)
        self.assertEqual(self.claim(), [a1])
        # a1 sent: a2 was behind it and may go now
        rows = self.record([{"id": a1, "sent": "wamid.a1"}])
        self.assertEqual(rows[-1], [None, None, "outbox.waiting"])
        self.assertEqual([r[2] for r in rows[:-1]], ["message.status"])
        self.assertEqual(self.claim(), [a2])
        # a failure ends a row too; a2 was the last of a: no waiting row
        rows = self.record([{"id": a2, "failed": True, "code": "131047", "error": "y"}])
        self.assertNotIn("outbox.waiting", [r[2] for r in rows])
        # a row no longer this sender's changes nothing and says nothing
        self.assertEqual(self.record([{"id": a2, "sent": "wamid.late"}]), [])
        self.assertEqual(self.psql("SELECT string_agg(status, ',' ORDER BY id) FROM outbox"),
                         "done,failed,done")
        h.assert_alive()


class SenderClaimsWhenDue(HubTestCase):
    def setUp(self):
        super().setUp()
        self.ca = testca.TestCA(os.path.join(self.out, "ca"))
        self.wa = fakeplat.FakePlatform("whatsapp", self.ca)
        self.wa.start()
        self.addCleanup(self.wa.stop)

    def test_queued_replies_of_one_chat_go_one_after_the_other_exactly_once(self):
        h = self.start_hubd(overrides={
            "outbound.enabled": True, "outbound.lease_ms": 30000,
            "platforms.ca_file": self.ca.ca, "platforms.whatsapp_url": self.wa.base_url,
            "ws.commands_per_s": 1000, "ws.command_burst": 1000})
        agent = self.agent(h)
        convs = []
        for i in range(3):
            body, _, sig = self.text_webhook(h, wa_id="7701999000%d" % i)
            self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
            convs.append(agent.event("message.created")["data"]["conversation_id"])
        texts = []
        for k in range(8):                # each chat's replies queue behind one another
            for conv in convs:
                t = "reply %d to %d" % (k, conv)
                ack = agent.command({"type": "send", "conversation_id": conv, "text": t,
                                     "client_id": "c%d-%d" % (k, conv)})
                self.assertEqual(ack["type"], "ack", ack)
                texts.append(t)
        util.wait_for(lambda: self.count("outbox", "status = 'done'") == len(texts), 60,
                      "every reply sent")
        got = [r.json["text"]["body"] for r in self.wa.requests
               if r.op == "send" and r.status == 200]
        self.assertEqual(sorted(got), sorted(texts), "lost or sent twice")
        for conv in convs:
            ks = [int(t.split()[1]) for t in got if t.endswith(" to %d" % conv)]
            self.assertEqual(ks, list(range(8)), "chat %d out of order" % conv)
        self.assertEqual(self.count("outbox", "attempts <> 1"), 0)
        h.assert_alive()
