"""tests/integration/test_hubctl.py - the operator's tool against real databases and a
real hubd: migrate, token (verified in Python and accepted by hubd), simulate (the message
reaches hubd and is stored).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import tokens  # noqa: E402
from support.case import HubTestCase  # noqa: E402


class Token(HubTestCase):
    needs_hubd = False
    needs_hubctl = True
    needs_pg = False

    def test_token_is_a_valid_jwt(self):
        cfg = self.config(db_url="postgresql://nobody@127.0.0.1:1/none")
        path = self.write_config(cfg)
        r = self.hubctl("-c", path, "token", "--tenant", "demo", "--user", "u-7", "--role",
                        "agent", "--ttl", "600")
        self.assertEqual(r.returncode, 0, r.stderr)
        claims = tokens.verify(r.stdout.strip(), cfg["auth"]["jwt_secret"])
        self.assertEqual((claims["tid"], claims["sub"], claims["role"]), ("demo", "u-7",
                                                                           "agent"))
        self.assertAlmostEqual(claims["exp"], time.time() + 600, delta=60)

    def test_bad_role_is_refused(self):
        path = self.write_config(self.config(db_url="postgresql://nobody@127.0.0.1:1/none"))
        r = self.hubctl("-c", path, "token", "--tenant", "demo", "--user", "u", "--role",
                        "root")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("role", r.stderr)
        self.assertEqual(r.stdout, "")


class Migrate(HubTestCase):
    needs_hubd = False
    needs_hubctl = True

    def test_migrate_is_idempotent(self):
        path = self.write_config(self.config())
        for _ in range(2):
            r = self.hubctl("-c", path, "migrate")
            self.assertEqual(r.returncode, 0, r.stderr)
        for table in ("tenants", "channels", "contacts", "contact_identities",
                      "conversations", "messages", "events"):
            self.assertEqual(self.psql("SELECT to_regclass('%s') IS NOT NULL" % table), "t",
                             table)


class WithHubd(HubTestCase):
    needs_hubctl = True

    def test_token_accepted_by_hubd(self):
        h = self.start_hubd()
        r = self.hubctl("-c", h.config_path, "token", "--tenant", "acme", "--user", "u-1",
                        "--role", "admin")
        self.assertEqual(r.returncode, 0, r.stderr)
        token = r.stdout.strip()
        self.no_leak(token)
        hello = self.ws(h).auth(token)
        self.assertEqual(hello["type"], "hello")

    def test_simulate_reaches_hubd_and_is_stored(self):
        h = self.start_hubd()
        text = self.unique_text()
        self.no_leak(text)
        r = self.hubctl("-c", h.config_path, "simulate", "whatsapp", "demo-whatsapp",
                        "--from", "+77011234567", "--name", "Aigerim", text)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("200", r.stdout)
        self.assertEqual(self.psql("SELECT text FROM messages"), text)
        self.assertEqual(self.psql("SELECT direction FROM messages"), "in")
