"""tests/integration/test_patroni.py - hubd through a PostgreSQL failover (scale-out issue
17, point 2).

PatroniFailover: three PostgreSQL nodes managed by Patroni with etcd (tests/support/
patroni.py), synchronous replication, hubd on the libpq multi-host URL with
target_session_attrs=read-write. A stream of signed webhooks runs while the primary's
PostgreSQL is killed with -9; Patroni promotes the synchronous standby; hubd reconnects to
it. Every webhook that got 200 is on the new primary exactly once, 503s came only between
the kill and the first 200 after it, and the LISTEN connection follows too (a hubctl revoke
made on the new primary reaches the agent's socket). The time to recover is printed.

NotThisServer: the errors that say "not this server" (57P01 admin_shutdown of a failover,
25006 read_only_sql_transaction of a standby or a demoted primary) drop the connection
and hubd reconnects; the webhook meanwhile gets 503, never 200 for something unstored.

ThroughPgBouncer: the chain an operator following Patroni's documentation deploys: hubd's
pool through PgBouncer (transaction pooling), whose [databases] entry leads to HAProxy,
which checks each node on Patroni's REST API (GET /primary) and cuts the sessions of a node
that stops passing it; hubd's direct connection (LISTEN, migrations, hubctl) on the same
HAProxy port. kill -9 of the primary's postmaster: hubd answers 503 while there is no
primary, 200 again after the promotion (neither hubd nor PgBouncer restarted), every 200
is on the new primary once, and the LISTEN path works (an agent's reply reaches the fake
WhatsApp, a revoke reaches the agent's socket).

HungHost: with host=a,b a host that takes the connection and never answers does not keep
hubd from the next one (its connect timer ends the attempt, the next starts at b).
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support import fakeplat, haproxy, patroni, pgbouncer, stream, testca, util  # noqa: E402
from support.case import HubTestCase  # noqa: E402


def stored_once(t, server_psql, db, hooks):
    """{wamid: rows} for the webhooks that are not stored exactly once."""
    rows = server_psql("SELECT external_id, count(*) FROM messages WHERE direction = 'in' "
                       "GROUP BY external_id", db=db)
    have = dict(line.split("|") for line in rows.splitlines() if line)
    return {h.wamid: int(have.get(h.wamid, 0)) for h in hooks
            if int(have.get(h.wamid, 0)) != 1}


class PatroniFailover(HubTestCase):
    needs_pg = False
    needs_hubctl = True

    def setUp(self):
        super().setUp()
        why = patroni.available()
        if why:
            self.skipTest(why)
        self.cluster = patroni.PatroniCluster()
        self.addCleanup(self.cluster.destroy)
        t = time.monotonic()
        self.cluster.start()
        self.cluster.psql("CREATE DATABASE hub")
        print("\n  patroni: three nodes up in %.1f s" % (time.monotonic() - t), file=sys.stderr)

    def test_acknowledged_webhooks_survive_the_primary_s_death(self):
        c = self.cluster
        redis = self.own_redis()
        url = c.url("hub")
        h = self.start_hubd(self.config({"database.pool_size": 4}, db_url=url,
                                        redis_url=redis.url))
        agent = self.agent(h)
        s = stream.WebhookStream([h.port], self.channel(h), senders=3)
        s.start()
        try:
            s.wait_acked(20, 30)
            old = c.leader()
            t_kill = time.monotonic()
            old.kill_postgres()
            new = c.wait_leader(60, other_than=old)
            t_promoted = time.monotonic()
            s.wait_acked(30, 60)        # served by the new primary
        finally:
            s.stop()
        f = s.figures()
        # hubd is back at the first 200 to a request sent after Patroni's promotion (one
        # sent just after the kill may still get 200: its commit had reached the standby)
        back = s.recovered_after(t_promoted)
        self.assertIsNotNone(back)
        t_back = t_promoted + back
        print("\n  patroni failover: %s; primary %s -> %s promoted %.1f s after the kill, "
              "hubd's first 200 after that at %.1f s" % (f, old.name, new.name,
                                                        t_promoted - t_kill, t_back - t_kill),
              file=sys.stderr)

        # every webhook was acknowledged in the end (the platform's retries), each is on
        # the new primary exactly once
        self.assertEqual([x.wamid for x in s.hooks if not x.acked], [])
        self.assertEqual(stored_once(self, lambda sql, db: c.psql(sql, db=db, node=new),
                                     "hub", s.hooks), {})
        # only 200 or 503 (never a 500, never a dropped connection), and the 503s only
        # in the gap: answered after the kill, asked before hubd was back
        self.assertEqual(f["other"] + f["502"] + f["no_answer"], 0, f)
        for t0, t1, status in s.failed_attempts():
            self.assertEqual(status, 503)
            self.assertGreaterEqual(t1, t_kill, "a 503 before the primary died")
            self.assertLessEqual(t0, t_back, "a 503 after hubd was back")
        self.assertGreater(f["503"], 0, "the stream never noticed the failover: %s" % f)
        self.assertGreater(h.count_log(r"conn=\d+ (connection lost|connect failed)"), 0)

        # the LISTEN connection reconnected to the new primary: a revoke made there
        # (hubctl on the same multi-host URL) closes the agent's socket
        r = self.hubctl("-c", h.config_path, "revoke", "--tenant", "demo")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(agent.wait_close(15), (1008, "token revoked"))



class ThroughPgBouncer(HubTestCase):
    needs_pg = False
    needs_hubctl = True

    def setUp(self):
        super().setUp()
        for why in (patroni.available(), pgbouncer.available(), haproxy.available()):
            if why:
                self.skipTest(why)
        t = time.monotonic()
        self.cluster = patroni.PatroniCluster()
        self.addCleanup(self.cluster.destroy)
        self.cluster.start()
        self.cluster.psql("CREATE DATABASE hub")
        self.proxy = haproxy.PatroniHAProxy(self.cluster)
        self.addCleanup(self.proxy.destroy)
        self.proxy.start()
        self.bouncer = pgbouncer.PgBouncer(self.proxy.port, "hub",
                                           settings=pgbouncer.FOLLOW_PRIMARY)
        self.addCleanup(self.bouncer.destroy)
        self.bouncer.start()
        self.addCleanup(self.keep_logs)     # runs before the destroys above
        self.ca = testca.TestCA(os.path.join(self.out, "ca"))
        self.wa = fakeplat.FakePlatform("whatsapp", self.ca)
        self.wa.start()
        self.addCleanup(self.wa.stop)
        print("\n  patroni + HAProxy + PgBouncer up in %.1f s" % (time.monotonic() - t),
              file=sys.stderr)

    def keep_logs(self):
        for name, text in (("pgbouncer.log", self.bouncer.log()),
                           ("haproxy.log", self.proxy.log())):
            with open(os.path.join(self.out, name), "w") as f:
                f.write(text)

    def test_pgbouncer_follows_the_primary_through_haproxy(self):
        c = self.cluster
        cfg = self.config({"database.pool_size": 4,
                           "database.direct_url": self.proxy.url("hub"),
                           "outbound.enabled": True, "platforms.ca_file": self.ca.ca,
                           "platforms.whatsapp_url": self.wa.base_url,
                           "ws.commands_per_s": 1000, "ws.command_burst": 1000},
                          db_url=self.bouncer.url())
        h = self.start_hubd(cfg)
        agent = self.agent(h)
        # a platform waits longer for an answer than hubd holds a query (its statement
        # deadline, 7 s): a request is answered, 200 or 503, never left without an answer
        s = stream.WebhookStream([h.port], self.channel(h), senders=3, timeout=15)
        s.start()
        try:
            s.wait_acked(20, 30)
            conv = agent.event("message.created")["data"]["conversation_id"]
            old = c.leader()
            pids = (h.proc.pid, self.bouncer.proc.pid)
            t_kill = time.monotonic()
            old.kill_postgres()
            new = c.wait_leader(60, other_than=old)
            t_promoted = time.monotonic()
            s.wait_acked(30, 60)        # served by the new primary, through the same chain
        finally:
            s.stop()
        f = s.figures()
        with open(os.path.join(self.out, "attempts.json"), "w") as out:
            # every attempt, seconds from the kill: what the platform saw
            json.dump({"promoted": t_promoted - t_kill, "attempts": sorted(
                (round(a[0] - t_kill, 3), round(a[1] - t_kill, 3), a[2])
                for x in s.hooks for a in x.attempts)}, out)
        first = s.recovered_after(t_kill)
        back = s.recovered_after(t_promoted)
        self.assertIsNotNone(back)
        t_back = t_promoted + back
        # requests PgBouncer held in its queue while there was no primary (200 late)
        held = [a for x in s.hooks for a in x.attempts
                if a[0] < t_promoted and a[2] == 200 and a[1] >= t_promoted]
        print("\n  pgbouncer failover: %s, %d held across the promotion; primary %s -> %s "
              "promoted %.1f s after the kill; hubd's first 200 %.1f s after the kill, the "
              "first to a request sent after the promotion %.1f s"
              % (f, len(held), old.name, new.name, t_promoted - t_kill, first,
                 t_back - t_kill), file=sys.stderr)

        # nobody was restarted: the same hubd and PgBouncer, HAProxy's check moved
        self.assertEqual((h.proc.poll(), self.bouncer.proc.poll()), (None, None))
        self.assertEqual(pids, (h.proc.pid, self.bouncer.proc.pid))
        util.wait_for(lambda: self.proxy.servers().get(new.name) == "UP" and
                      self.proxy.servers().get(old.name, "").startswith("DOWN"), 10,
                      lambda: "HAProxy on the new primary only: %s" % self.proxy.servers())
        # every webhook was acknowledged in the end (the platform's retries), each is on
        # the new primary exactly once
        self.assertEqual([x.wamid for x in s.hooks if not x.acked], [])
        self.assertEqual(stored_once(self, lambda sql, db: c.psql(sql, db=db, node=new),
                                     "hub", s.hooks), {})
        # only 200 or 503 (never a 500, never a dropped request), and the 503s only in the
        # gap: answered after the kill, asked before hubd was back
        self.assertEqual(f["other"] + f["502"] + f["no_answer"], 0, f)
        for t0, t1, status in s.failed_attempts():
            self.assertEqual(status, 503)
            self.assertGreaterEqual(t1, t_kill, "a 503 before the primary died")
            self.assertLessEqual(t0, t_back, "a 503 after hubd was back")
        # while there was no primary a webhook got 503 (its query was on a server
        # connection that broke, or PgBouncer's login had just failed), or PgBouncer held
        # it until the new primary was reachable (within hubd's statement deadline) and it
        # got 200 then: never an answer without the row
        self.assertGreater(f["503"] + len(held), 0,
                           "the stream never noticed the failover: %s" % f)
        # PgBouncer lost its server connections and made new ones through HAProxy
        self.assertRegex(self.bouncer.log(), r"closing because: (server conn crashed\?|"
                         r"(SV_IDLE|idle) server got dirty)")

        # the outbox path after the failover: its LISTEN connection (direct, through
        # HAProxy) was cut and is back on the new primary; a reply is stored through
        # PgBouncer, its NOTIFY wakes the outbox and the fake WhatsApp gets it
        util.wait_for(lambda: h.count_log(r"listening on hub_outbox") >= 2, 15,
                      "the outbox's LISTEN back")
        text = "Рахмет, жазып алдық " + os.urandom(4).hex()
        self.no_leak(text)
        ack = agent.command({"type": "send", "conversation_id": conv, "text": text,
                             "client_id": os.urandom(6).hex()}, timeout=15)
        self.assertEqual(ack["type"], "ack", ack)
        sent = self.wa.wait_requests(1, 15, op="send")
        self.assertEqual(sent[0].json["text"]["body"], text)
        # and the revocations' LISTEN: a hubctl revoke (direct, through HAProxy) closes the
        # agent's socket
        r = self.hubctl("-c", h.config_path, "revoke", "--tenant", "demo")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(agent.wait_close(15), (1008, "token revoked"))


class NotThisServer(HubTestCase):
    def test_read_only_and_admin_shutdown_drop_the_connection(self):
        # the warm-up off: each statement of the pool may be the first to meet the server
        h = self.start_hubd(self.config({"database.pool_size": 2,
                                         "database.warm_up": False}))
        body, wamid, sig = self.text_webhook(h)
        before = self.read_only()
        statuses = set()
        deadline = time.monotonic() + 20
        # until the webhook's own statement (hub_ingest_batch) met the read-only server:
        # the function catches 25006 per item ("retry:25006"), answers 503, and ingest
        # has the store drop that connection
        while time.monotonic() < deadline:
            r = self.post_webhook(h, "demo-whatsapp", body, sig)
            statuses.add(r.status)
            if h.count_log(r"item 1 of 1: retry:25006"):
                break
            time.sleep(0.1)
        self.assertEqual(statuses, {503})
        self.assert_unchanged(before)
        self.assertGreater(h.count_log(r"item 1 of 1: retry:25006"), 0, h.log())
        util.wait_for(lambda: h.count_log(r"conn=\d+ connection lost: the server is "
                                          r"read-only: reconnecting"), 10,
                      "the ingest connection dropped")
        # the pool's own queries that meet 25006 drop their connection too (the assistant's
        # claim, run when its LISTEN is back: it may come after the webhook's 503)
        util.wait_for(lambda: h.count_log(r"read-only or shutting down: reconnecting"), 10,
                      "a pool query's connection dropped")
        self.writable_again(h, body, sig, wamid)

    def test_the_warm_up_meets_a_read_only_server_first(self):
        # each new connection's warm-up writes (rolled back): on a read-only server it
        # fails with 25006 and the connection is dropped before it serves anything
        h = self.start_hubd(self.config({"database.pool_size": 2}))
        body, wamid, sig = self.text_webhook(h)
        before = self.read_only()
        util.wait_for(lambda: h.count_log(r"read-only or shutting down: reconnecting") >= 2,
                      20, "the warmed-up connections dropped")
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 503)
        self.assert_unchanged(before)
        self.writable_again(h, body, sig, wamid)

    def read_only(self):
        """hubd's connections are ended by the server (57P01, as a failover's shutdown),
        and the new ones find a read-only database (25006, as on a standby)."""
        self.psql('ALTER DATABASE "%s" SET default_transaction_read_only = on' % self.db)
        self.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = '%s' AND pid <> pg_backend_pid()" % self.db)
        return self.counts()

    def writable_again(self, h, body, sig, wamid):
        """Writable again: new connections store the webhook, once."""
        self.psql('ALTER DATABASE "%s" RESET default_transaction_read_only' % self.db,
                  db="postgres")
        self.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = '%s' AND pid <> pg_backend_pid()" % self.db)
        deadline = time.monotonic() + 20
        while True:
            r = self.post_webhook(h, "demo-whatsapp", body, sig)
            if r.status == 200 or time.monotonic() > deadline:
                break
            self.assertEqual(r.status, 503, r)
            time.sleep(0.1)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.count("messages", "external_id = '%s'" % wamid), 1)


class HungHost(HubTestCase):
    def test_a_host_that_never_answers_is_passed_over(self):
        # the first host of the list takes the connection and never answers (a stalled
        # server, or a dead machine's packets dropped): libpq's non-blocking connect has no
        # per-host timeout, so hubd's own timer ends the attempt and the next one starts at
        # the next host
        hung = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(hung.close)
        hung.bind(("127.0.0.1", 0))
        hung.listen(128)
        url = ("postgresql://postgres@127.0.0.1:%d,127.0.0.1:%d/%s?connect_timeout=2"
               % (hung.getsockname()[1], self.pg.port, self.db))
        h = self.start_hubd(self.config({"database.connect_timeout_ms": 1000,
                                         "database.pool_size": 2}, db_url=url))
        body, wamid, sig = self.text_webhook(h)
        deadline = time.monotonic() + 30
        while True:
            r = self.post_webhook(h, "demo-whatsapp", body, sig)
            if r.status == 200 or time.monotonic() > deadline:
                break
            self.assertEqual(r.status, 503, r)
            time.sleep(0.2)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.count("messages", "external_id = '%s'" % wamid), 1)
        self.assertGreater(h.count_log(r"conn=\d+ connect failed .*timed out"), 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
