"""tests/integration/test_secrets.py - secrets at rest (the admin issue, point 2): the
channels' secrets and the assistants' API keys are stored sealed with AES-256-GCM under
secrets.master_key, so a dump of the database holds none of them; a missing or wrong key,
or a value moved to another row, is a clear start-up error naming the channel; `hubctl
rotate-key` seals everything again under a new key while the previous one still opens, and
the channels keep working; values stored in clear before are sealed by it.
"""
import copy
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import util  # noqa: E402
from test_channels import ChannelCase  # noqa: E402

PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"


class Secrets(ChannelCase):
    def setUp(self):
        super().setUp()
        self.h = self.start_hubd()
        self.no_leak(self.h.cfg["secrets"]["master_key"])

    def stored(self, where="true"):
        return self.psql("SELECT app_secret || ' ' || verify_token || ' ' || access_token "
                         "FROM channels WHERE %s ORDER BY id" % where).split()

    def dump(self):
        r = subprocess.run([PG_DUMP, "--data-only", self.pg.url(self.db)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.decode("utf-8", "replace")

    def config_with(self, **secrets):
        cfg = copy.deepcopy(self.h.cfg)
        cfg["http"]["listen"] = "127.0.0.1:%d" % util.free_port()
        cfg["secrets"] = {k: v for k, v in secrets.items() if v}
        for v in cfg["secrets"].values():
            self.no_leak(v)
        return cfg

    def refused_start(self, cfg, *want):
        h = self.start_hubd(cfg, wait=False, name="refused-%s" % os.urandom(2).hex())
        h.expected_rc = 1
        self.assertEqual(h.wait_exit(), 1)
        for w in want:
            self.assertIn(w, h.log())
        return h

    def test_a_dump_holds_no_secret_and_the_channel_works(self):
        r, secrets = self.add(self.h.config_path, "sealed-wa")
        self.assertEqual(r.returncode, 0, r.stderr)
        values = self.stored("public_id = 'sealed-wa'")
        self.assertEqual(len(values), 3)
        key_id = values[0].split(":")[1]
        for v in values:
            self.assertRegex(v, r"^hs1:%s:[A-Za-z0-9_-]+$" % key_id)
        dump = self.dump()
        for k in ("app_secret", "verify_token", "access_token"):
            self.assertNotIn(secrets[k], dump)
        self.assertIn(values[0], dump)
        self.wait_status(self.h, "sealed-wa", secrets, 200)

    def test_a_missing_or_wrong_key_is_a_start_up_error_naming_the_channel(self):
        r, _ = self.add(self.h.config_path, "sealed-wa")
        self.assertEqual(r.returncode, 0, r.stderr)
        key_id = self.stored("public_id = 'sealed-wa'")[0].split(":")[1]
        self.refused_start(self.config_with(), "channel sealed-wa: app_secret sealed under "
                           "key %s, which is neither secrets.master_key" % key_id,
                           "cannot start")
        self.refused_start(self.config_with(master_key=os.urandom(32).hex()),
                           "channel sealed-wa: app_secret sealed under key %s" % key_id)
        # a value moved to another channel's row does not open there
        r, _ = self.add(self.h.config_path, "other-wa")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.psql("UPDATE channels SET access_token = (SELECT access_token FROM channels "
                  "WHERE public_id = 'sealed-wa') WHERE public_id = 'other-wa'")
        self.refused_start(self.config_with(master_key=self.h.cfg["secrets"]["master_key"]),
                           "channel other-wa: access_token does not open with its key")

    def test_adding_without_a_key_is_refused_and_stores_nothing(self):
        cfg = self.config_with()
        path = self.write_config(cfg, "nokey.json")
        before = self.count("channels")
        r, _ = self.add(path, "plain-wa")
        self.assertEqual(r.returncode, 1)
        self.assertIn("secrets.master_key is not set", r.stderr)
        self.assertEqual(self.count("channels"), before)
        r = self.hubctl("-c", path, "rotate-key")
        self.assertEqual(r.returncode, 1)
        self.assertIn("secrets.master_key is not set", r.stderr)

    def test_a_bad_master_key_is_refused_by_the_config_check(self):
        for bad in ("short", "z" * 64, os.urandom(33).hex()):
            path = self.write_config(self.config_with(master_key=bad), "bad.json")
            r = self.hubctl("check-config", path)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("secrets.master_key: the master key must be 64 hex digits",
                          r.stderr + r.stdout)
            self.assertNotIn(bad, r.stderr + r.stdout)

    def test_rotation_keeps_the_channels_working(self):
        r, secrets = self.add(self.h.config_path, "rot-wa")
        self.assertEqual(r.returncode, 0, r.stderr)
        key = self.write_config({"unused": True}, "unused.json")  # a file to hold the AI key
        with open(key, "w") as f:
            f.write("sk-rotation-0123456789abcdef\n")
        self.no_leak("sk-rotation-0123456789abcdef")
        r = self.hubctl("-c", self.h.config_path, "channel", "ai", "rot-wa", "--url",
                        "http://127.0.0.1:9", "--model", "m", "--key-file", key)
        self.assertEqual(r.returncode, 0, r.stderr)
        # a value stored in clear before sealing existed
        self.psql("UPDATE channels SET verify_token = 'legacy-verify-token' "
                  "WHERE public_id = 'rot-wa'")
        self.no_leak("legacy-verify-token")
        old = self.h.cfg["secrets"]["master_key"]
        new = os.urandom(32).hex()
        both = self.config_with(master_key=new, previous_master_key=old)
        both_path = self.write_config(both, "both.json")
        # the running hubd holds the old key only: it goes on serving what it loaded
        r = self.hubctl("-c", both_path, "rotate-key")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sealed 4 secrets under key", r.stdout)
        self.assertIn("(1 of them were in clear)", r.stdout)
        self.assertNotIn("legacy-verify-token", self.dump())
        r = self.hubctl("-c", both_path, "rotate-key")
        self.assertIn("sealed 0 secrets", r.stdout)
        self.assertIn("4 were under it already", r.stdout)
        # a hubd with the new key alone serves the channel
        only_new = self.config_with(master_key=new)
        h2 = self.start_hubd(only_new, name="hubd2")
        self.wait_status(h2, "rot-wa", secrets, 200)
        r = self.hubctl("-c", self.write_config(only_new, "new.json"), "channel", "ai",
                        "rot-wa", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('"api_key": "…cdef"', r.stdout)
        # and the old key alone no longer opens them
        self.refused_start(self.config_with(master_key=old), "channel rot-wa")
        h2.assert_alive()
