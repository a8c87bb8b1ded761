"""tests/integration/test_pgbouncer.py - hubd through PgBouncer in transaction pooling
(scale-out issue 17): queries go through the pooler with no session settings, while
LISTEN, the migrations and hubctl use database.direct_url (PostgreSQL itself), so live
changes still reach hubd."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support import httpc, pgbouncer, util  # noqa: E402
from test_inbox import InboxCase  # noqa: E402


class ThroughPgBouncer(InboxCase):
    needs_hubctl = True

    def setUp(self):
        super().setUp()
        why = pgbouncer.available()
        if why:
            self.skipTest(why)
        self.bouncer = pgbouncer.PgBouncer(self.pg.port, self.db)
        self.addCleanup(self.bouncer.destroy)
        self.bouncer.start()

    def test_queries_through_the_pooler_and_notifications_direct(self):
        cfg = self.config({"database.direct_url": self.pg.url(self.db)},
                          db_url=self.bouncer.url())
        h = self.start_hubd(cfg)
        agent = self.agent(h)
        self.webhook(h)
        ev = agent.event("message.created")
        self.assertEqual(ev["data"]["direction"], "in")
        ack = agent.command({"type": "send", "conversation_id": ev["data"]["conversation_id"],
                             "text": "Сәлем!"})
        self.assertEqual(ack["type"], "ack", ack)
        self.assertEqual(self.count("messages"), 2)
        # the pool's connections went through PgBouncer, with no startup options (it
        # would refuse them: "unsupported startup parameter: options")
        log = self.bouncer.log()
        self.assertIn("login attempt: db=%s user=postgres" % self.db, log)
        self.assertNotIn("unsupported startup parameter", log)
        # a change made with hubctl (on the direct connection) reaches hubd through
        # LISTEN on the direct connection (through the pooler an idle LISTEN's server
        # connection goes back to the pool and hears nothing): the agent's socket closes
        r = self.hubctl("-c", h.config_path, "revoke", "--tenant", "demo")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(agent.wait_close(10), (1008, "token revoked"))


class PostgresqlBehindTheBouncerGone(InboxCase):
    """hubd's connections to PgBouncer stay up when PostgreSQL behind it goes: /readyz
    says so (503, database down) from the first query that finds no server until one
    succeeds again, so a load balancer takes out only the instances that cannot store."""

    def setUp(self):
        super().setUp()
        why = pgbouncer.available()
        if why:
            self.skipTest(why)

    def ready(self, h):
        r = httpc.get(h.port, "/readyz")
        return r.status, r.json()["database"]

    def test_readyz_is_503_while_no_server_answers_behind_the_pooler(self):
        server, url = self.own_pg()
        bouncer = pgbouncer.PgBouncer(server.port, "hub", settings=pgbouncer.FOLLOW_PRIMARY)
        self.addCleanup(bouncer.destroy)
        bouncer.start()
        h = self.start_hubd(self.config({"database.direct_url": url}, db_url=bouncer.url()))
        self.assertEqual(self.ready(h), (200, "up"))
        server.stop()
        body, _, sig = self.text_webhook(h)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 503)
        util.wait_for(lambda: self.ready(h) == (503, "down"), 10, "/readyz 503")
        server.start()
        util.wait_for(lambda: self.ready(h) == (200, "up"), 30, "/readyz 200 again")
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertEqual(self.psql("SELECT count(*) FROM messages", server=server, db="hub"),
                         "1")


if __name__ == "__main__":
    import unittest
    unittest.main()
