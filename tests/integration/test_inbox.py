"""tests/integration/test_inbox.py - the live inbox protocol on one hubd: the commands
(send with its idempotent client_id and outbox row, read, assign with roles, mode, typing),
every malformed command answered with its error and changing nothing, tenant isolation,
resume (also while events keep arriving), events that reach the hub out of id order or
never published at all, and the protections (rate limit, socket caps, a slow consumer
that catches up from the log instead of being closed, expired token).
"""
import json
import os
import sys
import socket
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, hubd, util, ws  # noqa: E402
from support.case import HubTestCase  # noqa: E402

EVENT_TABLES = ("messages", "conversations", "events", "outbox")


class InboxCase(HubTestCase):
    def webhook(self, h, cid="demo-whatsapp", **kw):
        body, wamid, sig = self.text_webhook(h, cid, **kw)
        r = self.post_webhook(h, cid, body, sig)
        self.assertEqual(r.status, 200, r)
        return wamid

    def concurrent_webhooks(self, sends):
        """Posts one text webhook per (hubd, kwargs) of sends, all at once, each in its own
        thread; as the platforms do, a 503 (a query that waited too long for a connection
        on a loaded machine) is sent again. Every one must end in 200."""
        statuses = []

        def deliver(h, kw):
            body, _, sig = self.text_webhook(h, "demo-whatsapp", **kw)
            for _ in range(5):
                r = self.post_webhook(h, "demo-whatsapp", body, sig)
                if r.status != 503:
                    break
                time.sleep(0.2)
            statuses.append(r.status)

        threads = [threading.Thread(target=deliver, args=s) for s in sends]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(statuses, [200] * len(sends))

    def conversation(self, h, agent, cid="demo-whatsapp", **kw):
        """A new conversation through a webhook; returns its id (seen by agent)."""
        self.webhook(h, cid, **kw)
        return agent.event("message.created")["data"]["conversation_id"]

    def state(self):
        return {t: self.count(t) for t in EVENT_TABLES}

    def last_event_id(self, tenant="demo"):
        return int(self.psql("SELECT coalesce(max(id), 0) FROM events WHERE tenant_id = '%s'"
                             % tenant))

    def replayed(self, c):
        """Events until "resumed"; returns (events, resumed message)."""
        evs = []
        while True:
            m = c.next()
            if m["type"] == "resumed":
                return evs, m
            if m["type"] == "event":
                evs.append(m)

    def collect(self, c):
        """Event ids until "resumed"; returns (ids, resumed message)."""
        evs, resumed = self.replayed(c)
        return [e["id"] for e in evs], resumed

    def metric(self, h, name):
        body = httpc.get(h.port, "/metrics").body.decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                   if line.startswith(name))


class Commands(InboxCase):
    def test_hello_names_user_role_tenant(self):
        h = self.start_hubd()
        c = self.ws(h)
        hello = c.auth(self.token(h, sub="aigerim", role="admin"))
        self.assertEqual((hello["type"], hello["user"], hello["role"], hello["tenant"]),
                         ("hello", "aigerim", "admin", "demo"))
        self.assertEqual(hello["last_event_id"], 0)

    def test_send_is_stored_queued_and_idempotent(self):
        h = self.start_hubd()
        agent = self.agent(h)
        conv = self.conversation(h, agent)
        self.psql("UPDATE conversations SET mode = 'ai' WHERE id = %d" % conv)
        text = self.unique_text()
        self.no_leak(text)
        ack = agent.command({"type": "send", "ref": 7, "conversation_id": conv,
                             "text": text, "client_id": "c-1"})
        self.assertEqual((ack["type"], ack["ref"]), ("ack", 7), ack)
        mid = ack["message_id"]
        ev = agent.event("message.created")
        self.assertEqual(ev["data"]["id"], mid)
        self.assertEqual((ev["data"]["direction"], ev["data"]["author"], ev["data"]["status"],
                          ev["data"]["text"]), ("out", "agent", "queued", text))
        upd = agent.event("conversation.updated")
        self.assertEqual(upd["data"]["mode"], "human")
        self.assertEqual(upd["id"], ev["id"] + 1)
        self.assertEqual(self.psql("SELECT status FROM outbox WHERE message_id = %d" % mid),
                         "pending")
        # the same client_id again: the same message, nothing new
        before = self.state()
        again = agent.command({"type": "send", "ref": "x", "conversation_id": conv,
                               "text": text, "client_id": "c-1"})
        self.assertEqual((again["type"], again["ref"], again["message_id"]), ("ack", "x", mid))
        self.assertTrue(again["duplicate"])
        self.assertEqual(self.state(), before)
        # another client_id is another message
        other = agent.command({"type": "send", "conversation_id": conv, "text": text,
                               "client_id": "c-2"})
        self.assertNotEqual(other["message_id"], mid)
        self.assertEqual(self.count("outbox"), 2)

    def test_concurrent_sends_with_one_client_id_store_one_message(self):
        h = self.start_hubd()
        agents = [self.agent(h, sub="agent-%d" % i) for i in range(4)]
        conv = self.conversation(h, agents[0])
        before = self.count("messages")
        cmd = {"type": "send", "ref": "same", "conversation_id": conv, "text": "one reply",
               "client_id": "retry-me"}
        for a in agents:
            a.send_json(cmd)
        acks = [a.answer("same") for a in agents]
        self.assertEqual(len({a["message_id"] for a in acks}), 1, acks)
        self.assertEqual(sorted(a["duplicate"] for a in acks), [False, True, True, True])
        self.assertEqual(self.count("messages"), before + 1)
        self.assertEqual(self.count("outbox"), 1)

    def test_database_away_answers_unavailable(self):
        server, url = self.own_pg()
        h = self.start_hubd(self.config(db_url=url))
        agent = self.agent(h)
        conv = self.conversation(h, agent)
        server.stop()
        err = agent.command({"type": "send", "conversation_id": conv, "text": "later",
                             "client_id": "k"}, timeout=30)
        self.assertEqual((err["type"], err["code"]), ("error", "unavailable"), err)
        server.start()
        hubd.wait_http(h.port, "/readyz", 200, 30)
        ack = agent.command({"type": "send", "conversation_id": conv, "text": "later",
                             "client_id": "k"})
        self.assertEqual(ack["type"], "ack", ack)
        self.assertEqual(server.psql("SELECT count(*) FROM messages WHERE direction = 'out'",
                                     db="hub"), "1")

    def test_read_assign_mode(self):
        h = self.start_hubd()
        agent = self.agent(h, sub="agent-1")
        admin = self.agent(h, sub="boss", role="admin")
        conv = self.conversation(h, agent)
        self.webhook(h)  # a second message: unread 2
        agent.event("message.created")
        ack = agent.command({"type": "read", "conversation_id": conv})
        self.assertEqual(ack["conversation"]["unread"], 0, ack)
        self.assertEqual(agent.event("conversation.updated")["data"]["unread"], 0)
        # read again: nothing changes, no event
        n = self.count("events")
        self.assertEqual(agent.command({"type": "read", "conversation_id": conv})["type"], "ack")
        self.assertEqual(self.count("events"), n)

        ack = agent.command({"type": "assign", "conversation_id": conv})
        self.assertEqual(ack["conversation"]["assignee"], "agent-1", ack)
        self.assertEqual(agent.event("conversation.updated")["data"]["assignee"], "agent-1")
        # an agent cannot give it to someone else, nor take it from them
        before = self.state()
        err = agent.command({"type": "assign", "conversation_id": conv, "assignee": "agent-2"})
        self.assertEqual((err["type"], err["code"]), ("error", "forbidden"), err)
        self.assertEqual(self.state(), before)
        ack = admin.command({"type": "assign", "conversation_id": conv, "assignee": "agent-2"})
        self.assertEqual(ack["conversation"]["assignee"], "agent-2")
        err = agent.command({"type": "assign", "conversation_id": conv, "assignee": None})
        self.assertEqual(err["code"], "forbidden", err)
        # taking it for oneself is allowed; releasing one's own too
        self.assertEqual(agent.command({"type": "assign", "conversation_id": conv})
                         ["conversation"]["assignee"], "agent-1")
        self.assertIsNone(agent.command({"type": "assign", "conversation_id": conv,
                                         "assignee": None})["conversation"]["assignee"])
        self.assertEqual(self.psql("SELECT coalesce(assignee, '-') FROM conversations "
                                   "WHERE id = %d" % conv), "-")

        # the events of the commands above (numbered after their commits, so they may come
        # before or after their acks), through the last one: released
        while agent.event("conversation.updated")["data"]["assignee"] is not None:
            pass
        ack = agent.command({"type": "mode", "conversation_id": conv, "mode": "ai"})
        self.assertEqual(ack["conversation"]["mode"], "ai")
        self.assertEqual(agent.event("conversation.updated")["data"]["mode"], "ai")
        self.assertEqual(self.psql("SELECT mode FROM conversations WHERE id = %d" % conv), "ai")

    def test_typing_reaches_the_others_of_the_tenant_only(self):
        h = self.start_hubd()
        a1 = self.agent(h, sub="agent-1")
        a2 = self.agent(h, sub="agent-2")
        other = self.agent(h, tenant="acme", sub="acme-1")
        conv = self.conversation(h, a1)
        a2.event("message.created")
        n = self.count("events")
        ack = a1.command({"type": "typing", "conversation_id": conv})
        self.assertEqual(ack["type"], "ack", ack)
        ev = a2.event("typing")
        self.assertEqual(ev["data"], {"conversation_id": conv, "user": "agent-1"})
        self.assertNotIn("id", ev)
        self.assertEqual(self.count("events"), n)  # not in the log
        # the sender did not get its own typing (it would come before the next ack)
        a1.command({"type": "read", "conversation_id": conv})
        self.assertFalse([m for m in a1.backlog if m.get("event") == "typing"], a1.backlog)
        # acme's agent sees its own tenant's next event first, nothing of demo's
        self.conversation(h, other, cid="acme-whatsapp")
        self.assertFalse([m for m in other.backlog if m.get("event") == "typing"])

    def test_other_tenant_conversation_is_not_found(self):
        h = self.start_hubd()
        demo = self.agent(h)
        acme = self.agent(h, tenant="acme", sub="acme-1", role="admin")
        conv = self.conversation(h, demo)
        before = self.state()
        for cmd in ({"type": "send", "conversation_id": conv, "text": "hi"},
                    {"type": "read", "conversation_id": conv},
                    {"type": "assign", "conversation_id": conv},
                    {"type": "mode", "conversation_id": conv, "mode": "ai"},
                    {"type": "typing", "conversation_id": conv},
                    {"type": "send", "conversation_id": 987654321, "text": "hi"}):
            err = acme.command(cmd)
            self.assertEqual((err["type"], err["code"]), ("error", "not_found"), (cmd, err))
            self.assertNotIn(str(conv), err["message"])
        self.assertEqual(self.state(), before)
        # nothing of demo reached acme: its next event is its own
        self.webhook(h, "acme-whatsapp", name="Acme customer")
        ev = acme.event()
        self.assertEqual((ev["event"], ev["data"]["display_name"]),
                         ("contact.updated", "Acme customer"), ev)

    def test_malformed_commands_get_errors_and_change_nothing(self):
        h = self.start_hubd(overrides={"ws.text_max": 50, "ws.command_burst": 1000})
        agent = self.agent(h)
        conv = self.conversation(h, agent)
        before = self.state()
        last = self.last_event_id()
        bad = [
            ({"type": "launch", "conversation_id": conv}, "bad_request"),
            ({"type": 5}, "bad_request"),
            ({"conversation_id": conv}, "bad_request"),
            ({"type": "send", "text": "no conversation"}, "bad_request"),
            ({"type": "send", "conversation_id": "1", "text": "string id"}, "bad_request"),
            ({"type": "send", "conversation_id": -1, "text": "negative"}, "bad_request"),
            ({"type": "send", "conversation_id": 0, "text": "zero"}, "bad_request"),
            ({"type": "send", "conversation_id": 1.5, "text": "fraction"}, "bad_request"),
            ({"type": "send", "conversation_id": 10 ** 30, "text": "huge"}, "bad_request"),
            ({"type": "send", "conversation_id": True, "text": "bool"}, "bad_request"),
            ({"type": "send", "conversation_id": conv}, "bad_request"),
            ({"type": "send", "conversation_id": conv, "text": ""}, "bad_request"),
            ({"type": "send", "conversation_id": conv, "text": " \n\t "}, "bad_request"),
            ({"type": "send", "conversation_id": conv, "text": 42}, "bad_request"),
            ({"type": "send", "conversation_id": conv, "text": "ж" * 51}, "bad_request"),
            ({"type": "send", "conversation_id": conv, "text": "a\u0000b"}, "bad_request"),
            ({"type": "send", "conversation_id": conv, "text": "ok", "client_id": 5},
             "bad_request"),
            ({"type": "send", "conversation_id": conv, "text": "ok", "client_id": ""},
             "bad_request"),
            ({"type": "send", "conversation_id": conv, "text": "ok", "client_id": "x" * 129},
             "bad_request"),
            ({"type": "assign", "conversation_id": conv, "assignee": 12}, "bad_request"),
            ({"type": "assign", "conversation_id": conv, "assignee": ""}, "bad_request"),
            ({"type": "mode", "conversation_id": conv, "mode": "robot"}, "bad_request"),
            ({"type": "mode", "conversation_id": conv}, "bad_request"),
            ({"type": "resume", "after": -1}, "bad_request"),
            ({"type": "resume", "after": "3"}, "bad_request"),
            ({"type": "resume"}, "bad_request"),
            ({"type": "resume", "after": 10 ** 25}, "bad_request"),
            ({"type": "auth", "token": "x"}, "bad_request"),
        ]
        for i, (cmd, code) in enumerate(bad):
            cmd = dict(cmd, ref="bad-%d" % i)
            err = agent.command(cmd)
            self.assertEqual((err["type"], err["code"], err["ref"]), ("error", code, cmd["ref"]),
                             (cmd, err))
            self.assertTrue(err["message"], err)
        # refs: a number is echoed as given; a bad ref is refused and answered with null
        agent.send_json({"type": "launch", "ref": 12345678901234567890})
        self.assertEqual(agent.next()["ref"], 12345678901234567890)
        for ref in ({"a": 1}, [1], True, "r" * 300):
            agent.send_json({"type": "read", "conversation_id": conv, "ref": ref})
            err = agent.next()
            self.assertEqual((err["type"], err["code"], err["ref"]), ("error", "bad_request",
                                                                      None), err)
        # frames that are not commands at all
        for raw in ("{not json", "[1,2]", "\"text\"", "{\"type\":\"send\",}"):
            agent.send_text(raw)
            err = agent.next()
            self.assertEqual((err["type"], err["code"], err["ref"]), ("error", "bad_request",
                                                                      None), (raw, err))
        agent.send_frame(ws.OP_BINARY, b"\x00\x01")
        self.assertEqual(agent.next()["code"], "bad_request")
        self.assertEqual(self.state(), before)
        self.assertEqual(self.last_event_id(), last)
        self.assertGreaterEqual(
            self.metric(h, 'hub_ws_command_errors_total{code="bad_request"}'), len(bad))
        # and the socket still works
        self.assertEqual(agent.command({"type": "read", "conversation_id": conv})["type"],
                         "ack")
        h.assert_alive()


class Resume(InboxCase):
    def test_resume_replays_from_the_log_then_goes_live(self):
        h = self.start_hubd()
        first = self.agent(h)
        for _ in range(3):
            self.webhook(h)
        last = self.last_event_id()
        self.assertGreater(last, 3)
        c = self.agent(h)
        c.send_json({"type": "resume", "after": 2})
        ids, resumed = self.collect(c)
        self.assertEqual(ids, list(range(3, last + 1)))
        self.assertEqual(resumed["last_event_id"], last)
        self.webhook(h)
        live = [c.event()["id"] for _ in range(self.last_event_id() - last)]
        self.assertEqual(live, list(range(last + 1, self.last_event_id() + 1)))
        # beyond the log: resumed at its end
        c2 = self.agent(h)
        c2.send_json({"type": "resume", "after": 10 ** 9})
        self.assertEqual(self.collect(c2), ([], {"type": "resumed",
                                                 "last_event_id": self.last_event_id()}))
        self.assertIsNotNone(first)

    def test_resume_sent_with_auth_before_hello(self):
        h = self.start_hubd()
        first = self.agent(h, tenant="acme")
        self.webhook(h)
        self.webhook(h, "acme-whatsapp", name="Acme customer")
        first.event("message.created")
        # the tenant's first socket here: hello waits for the database, resume with it
        c = self.ws(h)
        c.send_json({"type": "auth", "token": self.token(h)})
        c.send_json({"type": "resume", "after": 0})
        hello = c.next()
        self.assertEqual(hello["type"], "hello", hello)
        ids, resumed = self.collect(c)
        self.assertEqual(ids, list(range(1, self.last_event_id() + 1)))
        self.assertEqual(resumed["last_event_id"], self.last_event_id())
        # a second resume on the same socket while the first still runs is a conflict
        c.send_json_together({"type": "resume", "after": 0, "ref": 1},
                             {"type": "resume", "after": 0, "ref": 2})
        msgs = [c.next() for _ in range(self.last_event_id() + 2)]
        self.assertIn({"type": "error", "ref": 2, "code": "conflict",
                       "message": "a resume is already running"}, msgs)
        # acme's resume never shows demo's events
        acme = self.agent(h, tenant="acme", sub="acme-2")
        acme.send_json({"type": "resume", "after": 0})
        evs, _ = self.replayed(acme)
        self.assertEqual([e["id"] for e in evs], list(range(1, self.last_event_id("acme") + 1)))
        self.assertEqual(evs[0]["data"]["display_name"], "Acme customer")

    def test_resume_of_more_than_the_send_queue_is_paced_not_closed(self):
        h = self.start_hubd(overrides={"ws.send_queue_max": 65536})
        for i in range(30):
            self.webhook(h, text="ж" * 3000 + str(i))  # 6 kB each: 180 kB to replay
        last = self.last_event_id()
        c = self.agent(h)
        c.send_json({"type": "resume", "after": 0})
        ids, resumed = self.collect(c)
        self.assertEqual(ids, list(range(1, last + 1)))
        self.assertEqual(resumed["last_event_id"], last)
        self.assertEqual(self.metric(h, 'hub_ws_closes_total{reason="queue_overflow"}'), 0)

    def test_gap_fill_of_more_than_the_send_queue_is_paced_not_closed(self):
        h = self.start_hubd(overrides={"ws.send_queue_max": 65536})
        agent = self.agent(h)
        self.webhook(h)
        for _ in range(self.last_event_id()):
            agent.event()
        # 30 long events that nobody published (as after a Redis outage): 180 kB to fill
        # in, far more than the 64 kB queue of a socket that reads everything
        hidden = self.psql("SELECT max(hub_emit_event('demo', 'contact.updated', "
                           "jsonb_build_object('id', 0, 'note', repeat('ж', 3000) || g))) "
                           "FROM generate_series(1, 30) g")
        self.webhook(h)  # its event reveals the gap
        final = self.last_event_id()
        self.assertGreater(final, int(hidden))
        first = int(hidden) - 29
        ids = [agent.event()["id"] for _ in range(final - first + 1)]
        self.assertEqual(ids, list(range(first, final + 1)))
        self.assertEqual(self.metric(h, 'hub_ws_closes_total{reason="queue_overflow"}'), 0)
        self.assertGreaterEqual(self.metric(h, "hub_bus_gaps_total"), 1)

    def test_after_in_the_auth_frame_resumes_in_one_step(self):
        h = self.start_hubd()
        self.agent(h)
        for _ in range(2):
            self.webhook(h)
        last = self.last_event_id()
        c = self.ws(h)
        c.send_json({"type": "auth", "token": self.token(h), "after": 1})
        self.assertEqual(c.next()["type"], "hello")
        self.assertEqual(self.collect(c), (list(range(2, last + 1)),
                                           {"type": "resumed", "last_event_id": last}))
        bad = self.ws(h)
        bad.send_json({"type": "auth", "token": self.token(h), "after": "1"})
        self.assertEqual(bad.wait_close(10), (1008, "after must be an event id"))
        self.assertFalse([m for m in bad.skipped if b"hello" in m[1]])

    def test_resume_from_hellos_id_goes_live_at_once(self):
        # what a fresh page sends: nothing to replay, the next events come live
        h = self.start_hubd()
        first = self.agent(h)
        self.webhook(h)
        first.event("message.created")
        c = self.ws(h)
        hello = c.auth(self.token(h))
        last = hello["last_event_id"]
        self.assertEqual(last, self.last_event_id())
        c.send_json({"type": "resume", "after": last})
        self.assertEqual(self.collect(c), ([], {"type": "resumed", "last_event_id": last}))
        self.webhook(h)
        live = [c.event()["id"] for _ in range(self.last_event_id() - last)]
        self.assertEqual(live, list(range(last + 1, self.last_event_id() + 1)))

    def test_resume_after_a_drop_while_events_keep_arriving(self):
        h = self.start_hubd()
        agent = self.agent(h)
        self.webhook(h)
        seen = [agent.event()["id"]]
        agent.close_socket()  # the drop
        stop = threading.Event()
        errors = []

        def traffic():
            try:
                while not stop.is_set():
                    self.webhook(h)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        t = threading.Thread(target=traffic)
        t.start()
        try:
            while self.last_event_id() < 20:
                time.sleep(0.01)
            c = self.agent(h)
            c.send_json({"type": "resume", "after": seen[0]})
            ids, resumed = self.collect(c)
            while self.last_event_id() < resumed["last_event_id"] + 20:
                time.sleep(0.01)
        finally:
            stop.set()
            t.join()
        self.assertFalse(errors, errors)
        final = self.last_event_id()
        while not ids or ids[-1] < final:
            ids.append(c.event()["id"])
        self.assertEqual(ids, list(range(seen[0] + 1, final + 1)), "a gap or a duplicate")

    def test_unpublished_and_out_of_order_events_arrive_in_order_once(self):
        h = self.start_hubd()
        agent = self.agent(h)
        self.webhook(h)
        base = [agent.event()["id"] for _ in range(self.last_event_id())]
        # written by something that never publishes
        hidden = int(self.psql("SELECT hub_emit_event('demo', 'contact.updated', "
                               "'{\"id\": 0, \"note\": \"from psql\"}')"))
        self.assertEqual(hidden, base[-1] + 1)
        self.webhook(h)
        got = []
        while not got or got[-1]["id"] < self.last_event_id():
            got.append(agent.event())
        self.assertEqual([e["id"] for e in got], list(range(hidden, self.last_event_id() + 1)))
        self.assertEqual(got[0]["data"]["note"], "from psql")
        # concurrent webhooks: their results come back on different connections, in any
        # order; every event still arrives once, in order
        self.concurrent_webhooks([(h, {})] * 8)
        final = self.last_event_id()
        start = got[-1]["id"]
        ids = [agent.event()["id"] for _ in range(final - start)]
        self.assertEqual(ids, list(range(start + 1, final + 1)))
        self.assertGreaterEqual(self.metric(h, "hub_bus_gaps_total"), 1)


class Protection(InboxCase):
    def test_rate_limit_then_close(self):
        h = self.start_hubd(overrides={"ws.commands_per_s": 1, "ws.command_burst": 3})
        agent = self.agent(h)
        codes = []
        for i in range(6):
            codes.append(agent.command({"type": "read", "conversation_id": 1})["code"])
        self.assertEqual(codes[:3], ["not_found"] * 3)
        self.assertIn("rate_limited", codes[3:])
        self.assertEqual(self.count("events"), 0)
        code = None
        try:
            for i in range(100):
                agent.send_json({"type": "read", "conversation_id": 1, "ref": i})
        except OSError:
            pass
        code, reason = agent.wait_close(10)
        self.assertEqual((code, reason), (1008, "rate limit exceeded"))
        self.assertGreaterEqual(
            self.metric(h, 'hub_ws_command_errors_total{code="rate_limited"}'), 1)
        self.assertGreaterEqual(self.metric(h, 'hub_ws_closes_total{reason="rate_limited"}'), 1)
        self.agent(h)  # others still welcome

    def test_socket_caps(self):
        h = self.start_hubd(overrides={"ws.max_sockets_per_tenant": 2, "ws.max_sockets": 4})
        self.agent(h)
        self.agent(h)
        c = self.ws(h)
        c.send_json({"type": "auth", "token": self.token(h)})
        self.assertEqual(c.wait_close(10), (1013, "too many sockets for this tenant"))
        c.close_socket()
        util.wait_for(lambda: self.metric(h, "hub_ws_clients ") == 2, 10, "the socket gone")
        self.agent(h, tenant="acme", sub="acme-1")
        self.agent(h, tenant="acme", sub="acme-2")
        c = self.ws(h)
        self.assertEqual(c.wait_close(10), (1013, "too many sockets on this server"))
        self.assertGreaterEqual(
            self.metric(h, 'hub_ws_closes_total{reason="max_sockets_per_tenant"}'), 1)
        self.assertGreaterEqual(self.metric(h, 'hub_ws_closes_total{reason="max_sockets"}'), 1)

    def test_limits_apply_on_reload(self):
        h = self.start_hubd(overrides={"ws.max_sockets_per_tenant": 1})
        self.agent(h)
        c = self.ws(h)
        c.send_json({"type": "auth", "token": self.token(h)})
        self.assertEqual(c.wait_close(10), (1013, "too many sockets for this tenant"))
        h.reload(hubd.merge(h.cfg, {"ws.max_sockets_per_tenant": 3,
                                    "ws.commands_per_s": 1, "ws.command_burst": 1}))
        second = self.agent(h)
        self.assertEqual(second.command({"type": "read", "conversation_id": 1})["code"],
                         "not_found")
        self.assertEqual(second.command({"type": "read", "conversation_id": 1})["code"],
                         "rate_limited")

    def test_slow_consumer_catches_up_from_the_log_and_is_not_closed(self):
        h = self.start_hubd(overrides={"ws.send_queue_max": 262144,
                                       "http.body_max": 4 << 20})
        slow = self.ws(h)
        hello = slow.auth(self.token(h, sub="slow"))
        self.assertEqual(hello["type"], "hello")
        # a command: it will not resume, so it is live at once (no hold), then reads no more
        self.assertEqual(slow.command({"type": "read", "conversation_id": 1})["code"],
                         "not_found")
        fast = self.agent(h, sub="fast")
        big = "ы" * 30000  # 60 kB frames: the kernel's buffers fill after a few hundred
        n = 0
        while self.metric(h, "hub_ws_catch_ups_total") < 1:
            self.webhook(h, text=big + str(n))
            n += 1
            fast.event("message.created")
            # what hubd holds stays bounded while the slow one reads nothing
            self.assertLessEqual(self.metric(h, "hub_ws_queued_bytes"), 2 * 262144)
            self.assertLess(n, 2000, "the slow socket's queue never filled")
        # more while it is behind: these reach it only through the log
        for i in range(20):
            self.webhook(h, text=big + "late" + str(i))
            fast.event("message.created")
            self.assertLessEqual(self.metric(h, "hub_ws_queued_bytes"), 2 * 262144)
        self.assertEqual(h.count_log(r"catching up from the log"), 1)
        # now it reads: every event once, in order, from hello's id on, and it stays open
        last = self.last_event_id()
        ids = []
        while not ids or ids[-1] < last:
            m = slow.next(30)
            self.assertEqual(m["type"], "event", m)
            ids.append(m["id"])
        self.assertEqual(ids, list(range(hello["last_event_id"] + 1, last + 1)))
        self.assertEqual(h.count_log(r"caught up at %d: live again" % last), 1)
        # live again: the next webhook's events come as they happen, answers too
        self.webhook(h, text="after the catch-up")
        self.assertEqual(slow.event("message.created")["data"]["text"], "after the catch-up")
        self.assertEqual(slow.command({"type": "read", "conversation_id": 10 ** 9})["code"],
                         "not_found")
        self.assertIsNone(slow.closed)
        # the fast one got everything, in order
        ids = []
        while not ids or ids[-1] < self.last_event_id():
            ids.append(fast.event()["id"])
        self.assertEqual(ids, sorted(set(ids)))
        self.assertEqual(self.metric(h, 'hub_ws_closes_total{reason="queue_overflow"}'), 0)
        self.assertEqual(self.metric(h, "hub_ws_queued_bytes"), 0)
        h.assert_alive()

    def test_frame_over_max_frame_closes_1009(self):
        h = self.start_hubd(overrides={"ws.max_frame": 1024})
        other = self.agent(h, sub="other")
        c = self.agent(h)
        c.send_json({"type": "send", "conversation_id": 1, "text": "x" * 2000})
        self.assertEqual(c.wait_close(10), (1009, "message too big"))
        self.assertEqual(self.count("messages"), 0)
        self.assertGreaterEqual(self.metric(h, 'hub_ws_closes_total{reason="too_big"}'), 1)
        self.assertEqual(other.command({"type": "read", "conversation_id": 1})["code"],
                         "not_found")
        h.assert_alive()

    def test_long_message_in_fragments_is_assembled(self):
        # hubd reads in 512-byte pieces: a message of many pieces and three fragments is
        # one command, whole
        h = self.start_hubd()
        agent = self.agent(h)
        conv = self.conversation(h, agent)
        text = self.unique_text() + " " + "жаз" * 1300
        self.no_leak(text)
        data = json.dumps({"type": "send", "ref": "long", "conversation_id": conv,
                           "text": text, "client_id": "c-long"}).encode("utf-8")
        third = len(data) // 3
        agent.send_frame(ws.OP_TEXT, data[:third], fin=False)
        agent.send_frame(ws.OP_CONT, data[third:2 * third], fin=False)
        agent.send_frame(ws.OP_CONT, data[2 * third:])
        ack = agent.answer("long")
        self.assertEqual(ack["type"], "ack", ack)
        self.assertEqual(agent.event("message.created")["data"]["text"], text)
        self.assertEqual(self.psql("SELECT length(text) FROM messages WHERE id = %d"
                                   % ack["message_id"]), str(len(text)))

    def test_token_expiry_closes_the_socket(self):
        h = self.start_hubd()
        c = self.ws(h)
        hello = c.auth(self.token(h, ttl=2))
        self.assertEqual(hello["type"], "hello")
        self.assertEqual(c.wait_close(15), (1008, "token expired"))
        self.assertGreaterEqual(self.metric(h, 'hub_ws_closes_total{reason="token_expired"}'),
                                1)

    def test_a_new_token_key_closes_the_sockets_it_no_longer_trusts(self):
        h = self.start_hubd()
        agent = self.agent(h)
        pending = self.ws(h)                    # not authenticated yet: stays
        cfg = dict(h.cfg, auth={"jwt_secret": hubd.secret("jwt-secret-2")})
        self.no_leak(cfg["auth"]["jwt_secret"])
        h.reload(cfg)
        self.assertEqual(agent.wait_close(10), (1008, "token revoked: the signing key changed"))
        self.assertGreaterEqual(
            self.metric(h, 'hub_ws_closes_total{reason="key_changed"}'), 1)
        hello = pending.auth(self.token(h, secret=cfg["auth"]["jwt_secret"]))
        self.assertEqual(hello["type"], "hello", hello)
        # a reload that keeps the key closes nothing
        h.reload(cfg)
        self.assertEqual(pending.command({"type": "typing", "conversation_id": 1})["type"],
                         "error")           # answered: still open (no such conversation)
        h.assert_alive()

    def test_idle_socket_that_never_pongs_is_closed(self):
        h = self.start_hubd(overrides={"ws.ping_interval_ms": 1000})
        c = self.ws(h)
        c.auth(self.token(h))
        # read raw frames without answering pings
        end = time.monotonic() + 15
        code = None
        while time.monotonic() < end:
            fin, op, payload = c.read_frame(15)
            if op == ws.OP_CLOSE:
                code = int.from_bytes(payload[:2], "big")
                reason = payload[2:].decode()
                break
        self.assertEqual((code, reason), (1008, "ping timeout"))
