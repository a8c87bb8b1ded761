"""tests/integration/test_pgbouncer.py - hubd through PgBouncer in transaction pooling
(scale-out issue 17): queries go through the pooler with no session settings, while
LISTEN, the migrations and hubctl use database.direct_url (PostgreSQL itself), so live
changes still reach hubd."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support import pgbouncer  # noqa: E402
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

if __name__ == "__main__":
    import unittest
    unittest.main()
