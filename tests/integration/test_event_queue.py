"""tests/integration/test_event_queue.py - a tenant's events are numbered after their
transactions commit (db/migrations/0020_event_queue.sql): in commit order, without holes,
also when two transactions of one tenant run side by side; events an instance queued and
never numbered (it died after its COMMIT) are numbered and delivered by hubd; a tenant
without an event stream is refused and nothing is queued. A webhook batch numbers its own
events in its transaction when the stream row is free and nothing is queued (0030), and
queues them, in order, when it is not.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import pg, util  # noqa: E402
from support.case import HubTestCase  # noqa: E402

APPEND = ("SELECT count(*) FROM hub_stream_append('demo', ARRAY['contact.updated'], "
          "ARRAY['{\"id\": 0, \"note\": \"%s\"}'::jsonb])")


class EventQueue(HubTestCase):
    def events(self):
        return self.psql("SELECT id || ' ' || (data->>'note') FROM events WHERE tenant_id = "
                         "'demo' AND data ? 'note' ORDER BY id").splitlines()

    def test_numbered_in_commit_order_while_another_transaction_is_open(self):
        h = self.start_hubd()
        h.stop()  # the schema is there; no instance numbers anything now
        last = int(self.psql("SELECT last_event_id FROM tenant_stream WHERE tenant_id = 'demo'"))
        # a transaction queues first and stays open...
        first = subprocess.Popen(
            [os.path.join(util.PG_BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
             self.pg.url(self.db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: first.poll() is None and first.kill())
        first.stdin.write("BEGIN;\n" + APPEND % "first" + ";\n")
        first.stdin.flush()
        util.wait_for(lambda: self.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                                        "c.oid = l.relation WHERE c.relname = 'event_queue' "
                                        "AND l.mode = 'RowExclusiveLock'") == "1",
                      10, "the first transaction's append")
        # ...while a second one queues and commits
        self.assertEqual(self.psql(APPEND % "second"), "1")
        self.assertEqual(self.psql("SELECT string_agg(event_id || ' ' || event, ',') FROM "
                                   "hub_stream_flush('demo', 1000)"),
                         "%d contact.updated" % (last + 1))
        self.assertEqual(self.events(), ["%d second" % (last + 1)])
        # the first commits: its event comes after, although it queued first
        out, err = first.communicate("COMMIT;\n", timeout=30)
        self.assertEqual(first.returncode, 0, err)
        self.assertEqual(self.psql("SELECT string_agg(event_id::text, ',') FROM "
                                   "hub_stream_flush('demo', 1000)"), str(last + 2))
        self.assertEqual(self.events(), ["%d second" % (last + 1), "%d first" % (last + 2)])
        self.assertEqual(self.count("event_queue"), 0)
        self.assertEqual(self.psql("SELECT last_event_id FROM tenant_stream WHERE tenant_id = "
                                   "'demo'"), str(last + 2))
        # nothing queued: a flush numbers nothing and moves nothing
        self.assertEqual(self.psql("SELECT count(*) FROM hub_stream_flush('demo', 1000)"), "0")
        self.assertEqual(self.psql("SELECT last_event_id FROM tenant_stream WHERE tenant_id = "
                                   "'demo'"), str(last + 2))

    def test_events_left_queued_are_numbered_and_delivered(self):
        h = self.start_hubd()
        agent = self.agent(h)
        body, _, sig = self.text_webhook(h, "demo-whatsapp")
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        before = agent.event("message.created")["id"]
        # committed to the queue by someone who numbers nothing (an instance that died)
        self.psql(APPEND % "left behind")
        ev = agent.event("contact.updated", timeout=15)
        self.assertEqual(ev["data"]["note"], "left behind")
        self.assertGreater(ev["id"], before)
        util.wait_for(lambda: self.count("event_queue") == 0, 10, "the queue emptied")
        self.assertEqual(self.events(), ["%d left behind" % ev["id"]])

    def holder(self):
        """A psql session holding the tenant's stream row (as a flush does), and its
        release."""
        p = subprocess.Popen(
            [os.path.join(util.PG_BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
             self.pg.url(self.db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        p.stdin.write("BEGIN;\nSELECT 1 FROM tenant_stream WHERE tenant_id = 'demo' FOR "
                      "UPDATE;\n")
        p.stdin.flush()
        util.wait_for(lambda: self.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                                        "c.oid = l.relation WHERE c.relname = "
                                        "'tenant_stream' AND l.mode = 'RowShareLock'") == "1",
                      10, "the stream row held")

        def release():
            out, err = p.communicate("COMMIT;\n", timeout=30)
            self.assertEqual(p.returncode, 0, err)
        return release

    def wamid_event(self, wamid):
        return self.psql("SELECT e.id FROM events e JOIN messages m ON m.id = "
                         "(e.data->>'id')::bigint WHERE e.type = 'message.created' AND "
                         "m.external_id = '%s'" % wamid)

    def test_a_webhook_numbers_its_own_events_in_its_transaction(self):
        h = self.start_hubd()
        agent = self.agent(h)
        self.keep_queued()
        body, wamid, sig = self.text_webhook(h, "demo-whatsapp")
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        # numbered by the time the webhook is answered: nothing queued, no second transaction
        numbered = self.wamid_event(wamid)
        self.assertNotEqual(numbered, "")
        self.assertEqual(self.count("queued"), 0)
        self.assertEqual(agent.event("message.created")["id"], int(numbered))

    def test_webhooks_queue_while_the_stream_row_is_held_and_keep_their_order(self):
        h = self.start_hubd()
        agent = self.agent(h)
        release = self.holder()
        wamids = []
        for _ in range(2):
            body, wamid, sig = self.text_webhook(h, "demo-whatsapp")
            # not held up by the row: queued, answered
            self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
            wamids.append(wamid)
        self.assertEqual(self.count("event_queue"), 2)
        self.assertEqual([self.wamid_event(w) for w in wamids], ["", ""])
        release()
        ids = [agent.event("message.created", timeout=15)["id"] for _ in wamids]
        util.wait_for(lambda: self.count("event_queue") == 0, 10, "the queue emptied")
        self.assertEqual(ids, [int(self.wamid_event(w)) for w in wamids])
        self.assertLess(ids[0], ids[1])
        # the row free and the queue empty again: the next webhook numbers its own
        body, wamid, sig = self.text_webhook(h, "demo-whatsapp")
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertGreater(int(self.wamid_event(wamid)), ids[1])
        self.assertEqual(self.count("event_queue"), 0)

    def test_a_stopped_instance_leaves_nothing_to_number(self):
        h = self.start_hubd()
        for _ in range(5):
            body, _, sig = self.text_webhook(h, "demo-whatsapp")
            self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        # stopped at once (its numbering waits a few ms to gather commits): the events
        # are numbered before the store closes
        self.assertEqual(h.stop(), 0)
        self.assertEqual(self.count("event_queue"), 0)
        self.assertEqual(self.count("events", "type = 'message.created'"), 5)

    def test_a_tenant_without_a_stream_queues_nothing(self):
        self.start_hubd().stop()
        before = self.count("event_queue")
        with self.assertRaises(pg.PgError) as e:
            self.psql(APPEND.replace("'demo'", "'nobody'") % "x")
        self.assertIn("tenant has no event stream", str(e.exception))
        self.assertEqual(self.count("event_queue"), before)
