"""tests/integration/test_inbox_redis.py - several hubd instances sharing one PostgreSQL and
one Redis: a webhook received by one reaches agents on the other, commands too, tenants
stay apart, and Redis killed and restarted loses nothing (local agents keep working, the
others re-sync from the event log when the subscription is back). Whoever else can reach
Redis is an attacker: what crosses it is signed with redis.hmac_key (forgeries are never
shown and never hide the real event), carries ids but no text, phone or name, and Redis
itself asks for a password (AUTH, ACL users, a unix socket).
"""
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, hubd, redisd, util  # noqa: E402
from test_inbox import InboxCase  # noqa: E402


class RedisCase(InboxCase):
    def setUp(self):
        super().setUp()
        self.key = self.secret("redis-hmac-key")

    def secret(self, prefix):
        """A random secret that hubd must never print."""
        s = hubd.secret(prefix)
        self.no_leak(s)
        return s

    def redis_config(self, url, key=None, overrides=None):
        """The test config with redis.url and redis.hmac_key (self.key unless given)."""
        return self.config(dict({"redis.hmac_key": key or self.key}, **(overrides or {})),
                           redis_url=url)

    def other_port(self, cfg, **more):
        return hubd.merge(cfg, dict({"http.listen": "127.0.0.1:%d" % util.free_port()},
                                    **more))

    def publish(self, r, channel, payload, key=None):
        """PUBLISH payload: a str as it is, else signed (with self.key unless given)."""
        if not isinstance(payload, str):
            payload = redisd.sign(key or self.key, channel, payload)
        return r.command("PUBLISH", channel, payload)

    def notice(self, tenant, event_id, instance="other", **more):
        """What an instance publishes for an event of its own: ids only."""
        return dict({"instance": instance, "tenant": tenant, "ts": redisd.now_ms(),
                     "id": event_id}, **more)


class TwoInstances(RedisCase):
    def pair(self):
        r = self.own_redis()
        cfg1 = self.redis_config(r.url)
        cfg2 = self.other_port(cfg1)
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
            util.wait_for(lambda: httpc.get(h.port, "/readyz").json()["redis"] == "down",
                          30, "readyz saying redis down")
            # still ready: a balancer must not take every instance out for Redis alone
            self.assertEqual(httpc.get(h.port, "/readyz").status, 200)
        # agents keep working while Redis is away, on both instances: the other
        # instance's events are read from the log (the bus's fallback)
        self.webhook(h1)
        ev = read_until(a1, created)
        read_until(a2, lambda m: m["id"] == ev["id"])
        ack = a2.command({"type": "send", "conversation_id": conv, "text": "while down"})
        self.assertEqual(ack["type"], "ack", ack)
        read_until(a2, lambda m: created(m) and m["data"]["id"] == ack["message_id"])
        read_until(a1, lambda m: created(m) and m["data"]["id"] == ack["message_id"])
        for h in (h1, h2):
            self.assertGreaterEqual(self.metric(h, "hub_bus_fallback_reads_total"), 1)

        during = self.last_event_id()

        r.start()
        # what the other instance committed meanwhile has arrived (through the fallback's
        # reads, or the re-sync from the log once subscribed again)
        read_until(a1, lambda m: m["id"] == during)
        read_until(a2, lambda m: m["id"] == during)
        for h in (h1, h2):
            util.wait_for(lambda: self.metric(h, "hub_bus_resyncs_total") >= 2, 30,
                          "the re-subscription and its re-sync")
            util.wait_for(lambda: httpc.get(h.port, "/readyz").json()["redis"] == "up", 30,
                          "readyz saying redis up")
        # and live again
        self.webhook(h1)
        final = self.last_event_id()
        for c in (a1, a2):
            read_until(c, lambda m: m["id"] == final)
            self.assertEqual(got[c], list(range(1, final + 1)), "a gap or a duplicate")


    def test_forged_events_are_never_shown_and_the_real_one_arrives(self):
        # an attacker who can PUBLISH offers the next id first, in every way we can think
        # of; the agent on the other instance then sees the real event of that id
        r, h1, h2 = self.pair()
        agent = self.agent(h2)
        self.webhook(h1)
        base, at = self.last_event_id(), 0
        while at < base:
            at = agent.event()["id"]
        forged_text = "FORGED " + os.urandom(4).hex()
        self.no_leak(forged_text)
        data = {"id": 999, "conversation_id": 1, "direction": "in", "author": "contact",
                "type": "text", "text": forged_text, "status": "received"}
        old = {"instance": "x", "tenant": "demo", "id": base + 1,
               "event": "message.created", "data": data}
        signed = dict(old, ts=redisd.now_ms())
        genuine = redisd.sign(self.key, "hub:ev:demo", self.notice("demo", base + 1))
        forgeries = [
            json.dumps(old),                                        # unsigned (the old format)
            redisd.sign(self.secret("guessed-key"), "hub:ev:demo", signed),  # another key
            "v1.%s.%s" % ("0" * 64, json.dumps(signed)),           # a made-up MAC
            genuine[:68] + json.dumps(signed),                     # a real MAC, other json
            "v1." + genuine[3:67].upper() + genuine[67:].replace('"id":%d' % (base + 1),
                                                                 '"id":%d' % (base + 2)),
        ]
        for f in forgeries:
            self.assertEqual(self.publish(r, "hub:ev:demo", f), ":2")  # both instances
        util.wait_for(lambda: self.metric(h2, "hub_bus_bad_payloads_total") >= len(forgeries),
                      30, "the forgeries to be dropped")
        text = self.unique_text()
        self.webhook(h1, text=text)
        evs = [agent.event()]
        while evs[-1]["event"] != "message.created":
            evs.append(agent.event())
        self.assertEqual([e["id"] for e in evs], list(range(base + 1, base + 1 + len(evs))))
        self.assertEqual(evs[-1]["data"]["text"], text)
        resume = self.agent(h2, sub="agent-later")
        resume.send_json({"type": "resume", "after": base})
        replayed, _ = self.replayed(resume)
        self.assertEqual(replayed[:len(evs)], evs)
        self.assertNotIn(forged_text, json.dumps(replayed, ensure_ascii=False))
        # even a signed notice of an id beyond the log makes the bus read, never skip
        last, at = self.last_event_id(), evs[-1]["id"]
        while at < last:
            at = agent.event()["id"]
        n = h2.count_log("heard of but not in the log")
        self.publish(r, "hub:ev:demo", self.notice("demo", last + 5))
        util.wait_for(lambda: h2.count_log("heard of but not in the log") > n, 30,
                      "the read of the log after the notice")
        self.webhook(h1)
        self.assertEqual(agent.event()["id"], last + 1)
        self.assertIn("not signed with redis.hmac_key", h2.log())
        self.assertNotIn(self.key, h2.log())

    def test_a_subscriber_reads_ids_but_no_text_phone_or_name(self):
        r, h1, h2 = self.pair()
        a1 = self.agent(h1, sub="agent-1")
        a2 = self.agent(h2, sub="agent-2")
        with socket.create_connection(("127.0.0.1", r.port), timeout=20) as sub:
            sub.sendall(redisd.encode("PSUBSCRIBE", "hub:ev:*"))
            while redisd.read_line(sub) != ":1":
                pass
            text, reply, phone = self.unique_text(), self.unique_text(), "77015550123"
            name = "Privacy Person " + os.urandom(3).hex()
            self.no_leak(name)
            self.webhook(h1, text=text, wa_id=phone, name=name)
            conv = a2.event("message.created")["data"]["conversation_id"]
            ack = a2.command({"type": "send", "conversation_id": conv, "text": reply,
                              "client_id": "p1"})
            self.assertEqual(ack["type"], "ack", ack)
            while a1.event("message.created")["data"]["id"] != ack["message_id"]:
                pass
            a2.command({"type": "typing", "conversation_id": conv})
            self.assertEqual(a1.event("typing")["data"]["user"], "agent-2")
            last = self.last_event_id()
            raw, seen = b"", []
            deadline = time.monotonic() + 30
            while not any(m.get("sync") and m["id"] == last for m in seen):
                self.assertLess(time.monotonic(), deadline, "no sync marker for %d" % last)
                chunk = sub.recv(65536)
                self.assertTrue(chunk, "redis closed the subscription")
                raw += chunk
                seen = [redisd.unsign(self.key, "hub:ev:demo", line.decode())
                        for line in raw.split(b"\r\n") if line.startswith(b"v1.")]
                self.assertNotIn(None, seen, "a payload that the key does not verify")
        for secret in (text, reply, phone, "+" + phone, name):
            self.assertNotIn(secret.encode(), raw)
        for m in seen:
            self.assertEqual(m["tenant"], "demo")
            if "event" in m:
                self.assertEqual((m["event"], sorted(m["data"])),
                                 ("typing", ["conversation_id", "user"]), m)
            else:
                self.assertLessEqual(set(m), {"instance", "tenant", "ts", "id", "sync"}, m)
        self.assertEqual(sorted({m["id"] for m in seen if "id" in m}),
                         list(range(1, last + 1)))

    def test_rotation_accepts_the_other_key_and_different_keys_say_so(self):
        r = self.own_redis()
        new = self.secret("redis-hmac-key-new")
        # mid-rotation: one instance signs with the old key, the other with the new one,
        # each accepts both
        cfg1 = self.redis_config(r.url, overrides={"redis.hmac_key_accepted": new})
        cfg2 = self.other_port(cfg1, **{"redis.hmac_key": new,
                                        "redis.hmac_key_accepted": self.key})
        h1 = self.start_hubd(cfg1, name="hubd1")
        h2 = self.start_hubd(cfg2, name="hubd2")
        for h in (h1, h2):
            hubd.wait_http(h.port, "/readyz", 200, 30)
        a1, a2 = self.agent(h1, sub="agent-1"), self.agent(h2, sub="agent-2")
        self.webhook(h1)
        first = a2.event("message.created")["data"]["id"]
        self.webhook(h2)
        got = [a1.event("message.created")["data"]["id"] for _ in (1, 2)]
        self.assertEqual(got[0], first)
        self.assertGreater(got[1], first)
        # a third instance with a key of its own is not believed, and says why
        cfg3 = self.redis_config(r.url, key=self.secret("redis-hmac-key-stray"))
        h3 = self.start_hubd(self.other_port(cfg3), name="hubd3")
        hubd.wait_http(h3.port, "/readyz", 200, 30)
        self.webhook(h1)
        util.wait_for(lambda: "not signed with redis.hmac_key" in h3.log(), 30,
                      "the stray instance's warning")
        while a2.event("message.created")["data"]["id"] <= got[1]:
            pass  # its own (the second webhook), then the third one, from hubd1


class Credentials(RedisCase):
    ACL = ("resetchannels &hub:ev:* &__hubd_redis_hb:* -@all +ping +publish +subscribe "
           "+psubscribe")

    def test_password_acl_user_and_unix_socket(self):
        # the least a hubd needs: its channels and four commands, no keys
        pw, upw = self.secret("redis-password"), self.secret("redis-user-password")
        r = redisd.RedisServer(password=pw, users={"hubd": (upw, self.ACL)}, unixsocket=True)
        self.addCleanup(r.destroy)
        r.start()
        cfg1 = self.redis_config(r.url_for(password=pw, unix=True))
        cfg2 = self.other_port(self.redis_config(r.url_for("hubd", upw)))
        h1 = self.start_hubd(cfg1, name="hubd1")
        h2 = self.start_hubd(cfg2, name="hubd2")
        for h in (h1, h2):
            hubd.wait_http(h.port, "/readyz", 200, 30)
        self.assertIn("connected (subscriber, %s)" % r.socket_path, h1.log())
        a1, a2 = self.agent(h1, sub="agent-1"), self.agent(h2, sub="agent-2")
        self.webhook(h1)
        conv = a2.event("message.created")["data"]["conversation_id"]
        ack = a2.command({"type": "send", "conversation_id": conv, "text": "over ACL",
                          "client_id": "c1"})
        self.assertEqual(ack["type"], "ack", ack)
        while a1.event("message.created")["data"]["id"] != ack["message_id"]:
            pass
        a1.command({"type": "typing", "conversation_id": conv})
        self.assertEqual(a2.event("typing")["data"]["user"], "agent-1")

    def test_wrong_or_missing_password_is_a_clear_error_without_the_secret(self):
        pw, upw = self.secret("redis-password"), self.secret("redis-user-password")
        r = redisd.RedisServer(password=pw, users={"hubd": (upw, self.ACL)})
        self.addCleanup(r.destroy)
        r.start()
        wrong = self.secret("wrong-password")
        cases = [(r.url_for(password=wrong), "refused AUTH/SELECT: WRONGPASS"),
                 (r.url_for("hubd", wrong), "refused AUTH/SELECT: WRONGPASS"),
                 (r.url_for("hubd", upw), None),  # the right one, for comparison
                 ("redis://127.0.0.1:%d" % r.port, "refused PING: NOAUTH")]
        for i, (url, error) in enumerate(cases):
            h = self.start_hubd(self.redis_config(url), name="hubd%d" % i)
            if error is None:
                hubd.wait_http(h.port, "/readyz", 200, 30)
                continue
            # hubd serves (local agents work) while Redis refuses it, and says why
            util.wait_for(lambda: error in h.log(), 30, "the error %r" % error)
            self.assertRegex(h.log(), r"<3>\[redis *\] commands: 127\.0\.0\.1:%d "
                             % r.port + "refused")
            r_ready = httpc.get(h.port, "/readyz")
            self.assertEqual((r_ready.status, r_ready.json()["redis"]), (200, "down"))
            agent = self.agent(h)
            self.webhook(h)
            self.assertEqual(agent.event("message.created")["data"]["author"], "contact")
            h.stop()
            for s in (pw, upw, wrong):
                self.assertNotIn(s, h.log())


class ReusePort(RedisCase):
    def test_processes_on_one_port_share_its_connections_and_their_events(self):
        # one process per core (issue 18): the same config, http.reuse_port, one port
        r = self.own_redis()
        cfg = self.redis_config(r.url, overrides={"http.reuse_port": True,
                                                  "log.level": "debug"})
        hs = [self.start_hubd(cfg, name="hubd%d" % i) for i in range(2)]
        # the kernel spreads new connections over both
        def served():
            return [len(re.findall(r"GET readyz 200", h.log())) for h in hs]
        before = served()
        for _ in range(60):
            self.assertEqual(httpc.get(hs[0].port, "/readyz").status, 200)
        # (each line is written once its answer went out)
        delta = lambda: [n - b for n, b in zip(served(), before)]  # noqa: E731
        util.wait_for(lambda: sum(delta()) == 60, 30, "60 requests logged")
        self.assertTrue(all(delta()), delta())
        # agents connected wherever the kernel put them all see a webhook that went to
        # either, once and in order
        agents = [self.agent(hs[0], sub="agent-%d" % i) for i in range(6)]
        for _ in range(4):
            self.webhook(hs[0])
        final = self.last_event_id()
        for a in agents:
            ids = []
            while not ids or ids[-1] < final:
                ids.append(a.event()["id"])
            self.assertEqual(ids, list(range(ids[0], final + 1)))
        # without reuse_port the port stays taken
        other = self.start_hubd(hubd.merge(cfg, {"http.reuse_port": False}), name="plain",
                                wait=False)
        other.expected_rc = 1
        self.assertEqual(other.wait_exit(60), 1)
        self.assertIn("address already in use", other.log())


class Sentinel(RedisCase):
    def test_hubd_follows_the_master_the_sentinels_promote(self):
        master = redisd.RedisServer()
        self.addCleanup(master.destroy)
        master.start()
        replica = redisd.RedisServer(replicaof=master.port)
        self.addCleanup(replica.destroy)
        replica.start()
        sentinels = redisd.Sentinels(master.port)
        self.addCleanup(sentinels.destroy)
        util.wait_for(lambda: sentinels.replicas_known() >= 1, 30, "the sentinels to see "
                      "the replica")
        cfg = self.redis_config(sentinels.url())
        h1 = self.start_hubd(cfg, name="hubd1")
        h2 = self.start_hubd(self.other_port(cfg), name="hubd2")
        for h in (h1, h2):
            util.wait_for(lambda: httpc.get(h.port, "/readyz").json()["redis"] == "up", 30,
                          "redis up through the sentinels")
            self.assertIn("sentinels: master hubmaster is 127.0.0.1:%d" % master.port,
                          h.log())
        agent = self.agent(h2)
        self.webhook(h1)
        first = agent.event("message.created")["id"]
        master.stop()
        util.wait_for(lambda: sentinels.master_port() == replica.port, 60,
                      "the sentinels to promote the replica")
        for h in (h1, h2):
            util.wait_for(lambda: "sentinels: master hubmaster is 127.0.0.1:%d"
                          % replica.port in h.log(), 30, "hubd to follow the new master")
            util.wait_for(lambda: httpc.get(h.port, "/readyz").json()["redis"] == "up", 30,
                          "redis up again")
        # live again through the new master, nothing lost or doubled on the way
        self.webhook(h1)
        final = self.last_event_id()
        ids = [first]
        while ids[-1] < final:
            ids.append(agent.event()["id"])
        self.assertEqual(ids, list(range(first, final + 1)))
        for h in (h1, h2):
            self.assertEqual(self.metric(h, "hub_redis_up"), 1)


    def test_bad_redis_urls_refuse_the_start_with_a_clear_error(self):
        pw = self.secret("redis-password")
        cases = [("rediss://127.0.0.1:6379", "TLS (rediss://) is not supported"),
                 ("redis-sentinel://127.0.0.1:26379", "needs /MASTER_NAME"),
                 ("redis-sentinel://sentinel.example:26379/m", "IPv4 address"),
                 ("redis-sentinel://127.0.0.1:26379/bad%20name", "the master name is"),
                 ("redis-sentinel://:%s@127.0.0.1:0/m" % pw, "bad port"),
                 ("redis-sentinel:///m", "no sentinel"),
                 ("http://127.0.0.1:6379", "must start with redis://")]
        for i, (url, error) in enumerate(cases):
            h = self.start_hubd(self.redis_config(url), name="bad%d" % i, wait=False)
            h.expected_rc = 1
            self.assertEqual(h.wait_exit(60), 1, url)
            self.assertIn(error, h.log(), url)
            self.assertNotIn(pw, h.log())
        # refused before anything touched the database
        self.assertEqual(self.psql("SELECT count(*) FROM pg_tables "
                                   "WHERE schemaname = 'public'"), "0")


class Payloads(RedisCase):
    def test_foreign_payloads_are_checked_and_sync_markers_fill_gaps(self):
        r = self.own_redis()
        h = self.start_hubd(self.redis_config(r.url))
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
        now = redisd.now_ms()
        typing = {"instance": "other", "tenant": "demo", "ts": now, "event": "typing",
                  "data": {"conversation_id": 1, "user": "agent-elsewhere"}}
        bad = [
            # not signed with our key: dropped before anything is read
            ("hub:ev:demo", "{not json"),
            ("hub:ev:demo", json.dumps(self.notice("demo", hidden, sync=True))),
            ("hub:ev:demo", "v1.%s.{}" % ("ab" * 31)),                    # a short MAC
            ("hub:ev:demo", redisd.sign(self.key, "hub:ev:acme",         # acme's channel
                                        self.notice("demo", hidden, sync=True))),
            ("hub:ev:demo", redisd.sign(self.key, "hub:ev:demo", typing)[:-1] + ' }'),
            ("hub:ev:demo", "v1.%s.%s" % ("0" * 64, "x" * 5000)),          # too long
            # signed, but not what an instance sends
            ("hub:ev:demo", ["a", "list"]),
            ("hub:ev:demo", {"tenant": "demo", "ts": now, "id": 99}),     # no instance
            ("hub:ev:demo", {"instance": "x", "tenant": "demo", "id": 99}),  # no ts
            ("hub:ev:acme", self.notice("demo", 99)),                     # channel differs
            ("hub:ev:demo", self.notice("demo", "99")),
            ("hub:ev:demo", self.notice("demo", 10 ** 30)),
            ("hub:ev:demo", self.notice("demo", -4)),
            # no id: ephemeral, and typing is the only ephemeral event there is
            ("hub:ev:demo", dict(typing, event="message.created",
                                 data={"id": 1, "text": "forged"})),
            ("hub:ev:demo", dict(typing, data={"user": "no conversation"})),
            # a typing payload replayed a minute later
            ("hub:ev:demo", dict(typing, ts=now - 60000)),
        ]
        for channel, payload in bad:
            self.assertEqual(self.publish(r, channel, payload), ":1")
        self.publish(r, "hub:ev:demo", typing)
        ev = agent.event()
        self.assertEqual((ev["event"], ev["data"]), ("typing", typing["data"]), ev)
        self.publish(r, "hub:ev:demo", self.notice("demo", hidden, sync=True))
        ev = agent.event()
        self.assertEqual((ev["id"], ev["data"].get("note")), (hidden, "elsewhere"), ev)
        self.assertGreaterEqual(self.metric(h, "hub_bus_bad_payloads_total"), len(bad))
        # an event of another instance, announced by its id, is read from the log and
        # delivered in order, once
        self.psql("SELECT hub_emit_event('demo', 'contact.updated', "
                  "'{\"id\": 0, \"note\": \"relayed\"}')")
        self.publish(r, "hub:ev:demo", self.notice("demo", hidden + 1))
        self.publish(r, "hub:ev:demo", self.notice("demo", hidden + 1))  # again
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
        h = self.start_hubd(self.redis_config(r.url))
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
                if line.startswith("v1."):
                    seen.append(redisd.unsign(self.key, "hub:ev:demo", line))
                    self.assertIsNotNone(seen[-1], "not signed with redis.hmac_key")
                    if seen[-1].get("sync"):
                        break
        notices = [m["id"] for m in seen if not m.get("sync")]
        self.assertEqual(notices, list(range(1, last + 1)))
        self.assertEqual(seen[-1]["id"], last)
        self.assertEqual(seen[-1]["instance"], seen[0]["instance"])


class Alone(InboxCase):
    def test_no_redis_runs_alone(self):
        h = self.start_hubd()
        self.assertIn("alone (no redis.url)", h.log())
        agent = self.agent(h)
        self.webhook(h)
        self.assertEqual(agent.event("message.created")["data"]["author"], "contact")

    def test_redis_without_hmac_key_does_not_start(self):
        # a key made up here would differ from the other instances' and cut them apart
        h = self.start_hubd(self.config({"redis.hmac_key": None},
                                        redis_url="redis://127.0.0.1:1"), wait=False)
        h.expected_rc = 1
        self.assertEqual(h.wait_exit(60), 1)
        self.assertIn("redis.hmac_key: required with redis.url", h.log())
