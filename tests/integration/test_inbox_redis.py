"""tests/integration/test_inbox_redis.py - several hubd instances sharing one PostgreSQL and
one Redis: a webhook received by one reaches agents on the other, commands too, tenants
stay apart, and Redis killed and restarted loses nothing (local agents keep working, the
others re-sync from the event log when the subscription is back).
"""
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import hubd, redisd, util  # noqa: E402
from test_inbox import InboxCase  # noqa: E402


class TwoInstances(InboxCase):
    def pair(self):
        r = self.own_redis()
        cfg1 = self.config(redis_url=r.url)
        cfg2 = hubd.merge(cfg1, {"http.listen": "127.0.0.1:%d" % util.free_port()})
        h1 = self.start_hubd(cfg1, name="hubd1")
        h2 = self.start_hubd(cfg2, name="hubd2")
        for h in (h1, h2):
            hubd.wait_http(h.port, "/readyz", 200, 30)
        return r, h1, h2

    def test_webhook_on_one_reaches_agents_on_the_other(self):
        r, h1, h2 = self.pair()
        a1 = self.agent(h1, sub="agent-1")
        a2 = self.agent(h2, sub="agent-2")
        acme2 = self.agent(h2, tenant="acme", sub="acme-1")
        wamid = self.webhook(h1)
        ev = a2.event("message.created")
        self.assertEqual(ev["data"]["direction"], "in")
        self.assertEqual(ev, a1.event("message.created"))
        conv = ev["data"]["conversation_id"]
        # a command on the second instance reaches the agent on the first
        ack = a2.command({"type": "send", "conversation_id": conv, "text": "Сәлем!",
                          "client_id": "k1"})
        self.assertEqual(ack["type"], "ack", ack)
        self.assertEqual(a1.event("message.created")["data"]["id"], ack["message_id"])
        a2.command({"type": "typing", "conversation_id": conv})
        self.assertEqual(a1.event("typing")["data"]["user"], "agent-2")
        # every event exactly once, in order, on both
        last = self.last_event_id()
        for c in (a1, a2):
            c.backlog.clear()
        resume = self.agent(h2)
        resume.send_json({"type": "resume", "after": 0})
        ids, _ = self.collect(resume)
        self.assertEqual(ids, list(range(1, last + 1)))
        # acme's agent on the second instance saw nothing of demo's: its first event is
        # its own
        self.webhook(h1, "acme-whatsapp", name="Acme customer")
        ev = acme2.event()
        self.assertEqual(ev["data"].get("display_name"), "Acme customer", ev)
        self.assertEqual(ev["id"], 1)
        self.assertIsNotNone(wamid)

    def test_concurrent_webhooks_on_both_reach_every_agent_in_order_once(self):
        r, h1, h2 = self.pair()
        agents = [self.agent(h, sub="agent-%d" % i) for i, h in enumerate((h1, h2, h1, h2))]
        for a in agents:
            a.command({"type": "read", "conversation_id": 1})  # live at once
        self.concurrent_webhooks([((h1, h2)[i % 2], {"wa_id": "7701555%04d" % (i % 3)})
                                  for i in range(12)])
        final = self.last_event_id()
        for a in agents:
            ids = []
            while not ids or ids[-1] < final:
                ids.append(a.event()["id"])
            self.assertEqual(ids, list(range(1, final + 1)), "a gap or a duplicate")

    def test_redis_killed_and_restarted_loses_nothing(self):
        r, h1, h2 = self.pair()
        a1 = self.agent(h1, sub="agent-1")
        a2 = self.agent(h2, sub="agent-2")
        got = {a1: [], a2: []}

        def read_until(c, pred):
            while True:
                m = c.next()
                if m["type"] == "event":
                    got[c].append(m["id"])
                    if pred(m):
                        return m

        created = lambda m: m["event"] == "message.created"  # noqa: E731
        self.webhook(h1)
        conv = read_until(a1, created)["data"]["conversation_id"]
        read_until(a2, created)

        r.stop()
        for h in (h1, h2):
            hubd.wait_http(h.port, "/readyz", 503, 30)
        # local agents keep working while Redis is away
        self.webhook(h1)
        read_until(a1, created)
        ack = a2.command({"type": "send", "conversation_id": conv, "text": "while down"})
        self.assertEqual(ack["type"], "ack", ack)
        read_until(a2, lambda m: created(m) and m["data"]["id"] == ack["message_id"])

        during = self.last_event_id()

        r.start()
        # what the other instance committed meanwhile arrives through the re-sync from
        # the log, with no new event to reveal the gap
        read_until(a1, lambda m: m["id"] == during)
        read_until(a2, lambda m: m["id"] == during)
        for h in (h1, h2):
            hubd.wait_http(h.port, "/readyz", 200, 30)
        # and live again
        self.webhook(h1)
        final = self.last_event_id()
        for c in (a1, a2):
            read_until(c, lambda m: m["id"] == final)
            self.assertEqual(got[c], list(range(1, final + 1)), "a gap or a duplicate")
        for h in (h1, h2):
            self.assertGreaterEqual(self.metric(h, "hub_bus_resyncs_total"), 2)


class Payloads(InboxCase):
    def publish(self, r, channel, payload):
        raw = payload if isinstance(payload, str) else json.dumps(payload)
        return redisd.command(r.port, "PUBLISH", channel, raw)

    def test_foreign_payloads_are_checked_and_sync_markers_fill_gaps(self):
        r = self.own_redis()
        h = self.start_hubd(self.config(redis_url=r.url))
        hubd.wait_http(h.port, "/readyz", 200, 30)
        agent = self.agent(h)
        acme = self.agent(h, tenant="acme", sub="acme-1")
        self.webhook(h)
        base = agent.event("message.created")["id"]
        util.wait_for(lambda: self.metric(h, "hub_bus_resyncs_total") >= 1, 30,
                      "the subscription")
        # an event written elsewhere, announced only by another instance's sync marker
        hidden = int(self.psql("SELECT hub_emit_event('demo', 'contact.updated', "
                               "'{\"id\": 0, \"note\": \"elsewhere\"}')"))
        self.assertEqual(hidden, base + 1)
        bad = [
            ("hub:ev:demo", "{not json"),
            ("hub:ev:demo", ["a", "list"]),
            ("hub:ev:demo", {"tenant": "demo", "id": 99}),               # no instance
            ("hub:ev:acme", {"instance": "x", "tenant": "demo", "id": 99,  # channel differs
                             "event": "contact.updated", "data": {}}),
            ("hub:ev:demo", {"instance": "x", "tenant": "demo", "id": "99",
                             "event": "contact.updated", "data": {}}),
            ("hub:ev:demo", {"instance": "x", "tenant": "demo", "id": 10 ** 30,
                             "event": "contact.updated", "data": {}}),
            ("hub:ev:demo", {"instance": "x", "tenant": "demo", "id": -4,
                             "event": "contact.updated", "data": {}}),
            ("hub:ev:demo", {"instance": "x", "tenant": "demo", "id": 99,
                             "event": "contact.updated", "data": "not an object"}),
            # no id: ephemeral, and typing is the only ephemeral event there is
            ("hub:ev:demo", {"instance": "x", "tenant": "demo", "event": "message.created",
                             "data": {"id": 1, "text": "forged"}}),
            ("hub:ev:demo", {"instance": "x", "tenant": "demo", "event": "typing",
                             "data": {"user": "no conversation"}}),
        ]
        for channel, payload in bad:
            self.assertEqual(self.publish(r, channel, payload), ":1")
        typing = {"instance": "other", "tenant": "demo", "event": "typing",
                  "data": {"conversation_id": 1, "user": "agent-elsewhere"}}
        self.publish(r, "hub:ev:demo", typing)
        ev = agent.event()
        self.assertEqual((ev["event"], ev["data"]), ("typing", typing["data"]), ev)
        self.publish(r, "hub:ev:demo", {"instance": "other", "tenant": "demo", "id": hidden,
                                        "sync": True})
        ev = agent.event()
        self.assertEqual((ev["id"], ev["data"].get("note")), (hidden, "elsewhere"), ev)
        self.assertGreaterEqual(self.metric(h, "hub_bus_bad_payloads_total"), len(bad) - 1)
        # a well-formed event of another instance is delivered in order, once
        n = {"instance": "other", "tenant": "demo", "id": hidden + 1,
             "event": "contact.updated", "data": {"id": 0, "note": "relayed"}}
        self.psql("SELECT hub_emit_event('demo', 'contact.updated', "
                  "'{\"id\": 0, \"note\": \"relayed\"}')")
        self.publish(r, "hub:ev:demo", n)
        self.publish(r, "hub:ev:demo", n)  # again: a duplicate
        self.webhook(h)
        ids = []
        while not ids or ids[-1] < self.last_event_id():
            ids.append(agent.event()["id"])
        self.assertEqual(ids, list(range(hidden + 1, self.last_event_id() + 1)))
        # acme saw none of it: its first event is its own
        self.webhook(h, "acme-whatsapp", name="Acme customer")
        self.assertEqual(acme.event()["data"]["display_name"], "Acme customer")


    def test_published_events_are_followed_by_a_sync_marker(self):
        # a PUBLISH can be lost while the others stay subscribed: a marker a second later
        # tells them how far the log reaches
        r = self.own_redis()
        h = self.start_hubd(self.config(redis_url=r.url))
        hubd.wait_http(h.port, "/readyz", 200, 30)
        with socket.create_connection(("127.0.0.1", r.port), timeout=20) as sub:
            sub.sendall(redisd.encode("SUBSCRIBE", "hub:ev:demo"))
            while redisd.read_line(sub) != ":1":
                pass
            self.webhook(h)
            last = self.last_event_id()
            seen = []
            while True:
                line = redisd.read_line(sub)
                if line.startswith("{"):
                    seen.append(json.loads(line))
                    if seen[-1].get("sync"):
                        break
        events = [m["id"] for m in seen if "event" in m]
        self.assertEqual(events, list(range(1, last + 1)))
        self.assertEqual(seen[-1]["id"], last)
        self.assertEqual(seen[-1]["instance"], seen[0]["instance"])


class Alone(InboxCase):
    def test_no_redis_runs_alone(self):
        h = self.start_hubd()
        self.assertIn("alone (no redis.url)", h.log())
        agent = self.agent(h)
        self.webhook(h)
        self.assertEqual(agent.event("message.created")["data"]["author"], "contact")
