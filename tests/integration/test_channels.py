"""tests/integration/test_channels.py - channels provisioned in the database with `hubctl
channel add|list|enable|disable`, live on every running hubd (NOTIFY hub_channels, also
after hubd's LISTEN connection was cut), the config file winning over the database, bad
input refused with nothing changed, secrets never printed or logged, and `hubctl simulate`
for Telegram and Instagram (200 once those adapters are merged, 404 unknown platform before).
"""
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, hubd, util, whatsapp  # noqa: E402
from support.case import HubTestCase  # noqa: E402

LIVE_TIMEOUT = 15  # "within a moment": a NOTIFY, one query, one pointer swap


def adapter_missing(platform):
    """True while `hubctl parse PLATFORM` says unknown platform (adapter not merged)."""
    fixture = os.path.join(util.FIXTURES, platform, "text.json")
    r = hubd.run_hubctl(["parse", platform, fixture])
    return r.returncode == 2 and "unknown platform" in r.stderr


class ChannelCase(HubTestCase):
    needs_hubctl = True

    def secret_file(self, value, name=None):
        path = os.path.join(self.out, name or "secret-%s" % os.urandom(4).hex())
        with open(path, "w") as f:
            f.write(value + "\n")
        return path

    def add(self, config_path, cid, kind="whatsapp", tenant="demo", account=None,
            tenant_name=None, app_secret=None, verify=True, access=True, extra=()):
        """hubctl channel add with fresh secrets in files; returns (CompletedProcess,
        secrets dict). The secrets are registered for the leak checks."""
        account = account or str(int.from_bytes(os.urandom(6), "big"))
        secrets = {"app_secret": app_secret or (os.urandom(16).hex() + "-app_secret"),
                   "verify_token": "verify-" + os.urandom(16).hex(),
                   "access_token": "access-" + os.urandom(16).hex(),
                   "account_id": account}
        self.no_leak(secrets["app_secret"], secrets["verify_token"], secrets["access_token"])
        args = ["-c", config_path, "channel", "add", "--id", cid, "--tenant", tenant,
                "--kind", kind, "--account", account,
                "--app-secret-file", self.secret_file(secrets["app_secret"])]
        if tenant_name:
            args += ["--tenant-name", tenant_name]
        if verify:
            args += ["--verify-token-file", self.secret_file(secrets["verify_token"])]
        if access:
            args += ["--access-token-file", self.secret_file(secrets["access_token"])]
        r = self.hubctl(*(args + list(extra)))
        self.assert_no_secret(r, secrets)
        return r, secrets

    def assert_no_secret(self, r, secrets):
        for k in ("app_secret", "verify_token", "access_token"):
            self.assertNotIn(secrets[k], r.stdout + r.stderr, "hubctl printed a secret")

    def ctl(self, config_path, *args):
        return self.hubctl("-c", config_path, *args)

    def listing(self, config_path):
        r = self.ctl(config_path, "channel", "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return {c["id"]: c for c in map(json.loads, r.stdout.splitlines())}

    def wa_post(self, h, cid, secrets):
        """A signed one-message WhatsApp webhook to cid; returns the status."""
        text = self.unique_text()
        self.no_leak(text)
        body, _ = whatsapp.text_body(secrets["account_id"], text)
        return httpc.request(h.port, "POST", "/webhooks/whatsapp/" + cid, body=body,
                             headers=whatsapp.headers(body, secrets["app_secret"])).status

    def wait_status(self, h, cid, secrets, want):
        """Posts until cid answers want (the change reaches hubd through NOTIFY)."""
        last = []

        def ok():
            last[:] = [self.wa_post(h, cid, secrets)]
            return last[0] == want
        util.wait_for(ok, LIVE_TIMEOUT, lambda: "%s on %s to answer %d (last %r)"
                      % (cid, h.name, want, last), interval=0.1)

    def db_state(self):
        """Channels (secrets hashed) and tenants, to compare before and after."""
        channels = self.psql("SELECT coalesce(string_agg(public_id || ':' || tenant_id || ':' "
                             "|| enabled || ':' || md5(coalesce(app_secret, '-')), ',' "
                             "ORDER BY public_id), '') FROM channels")
        tenants = self.psql("SELECT coalesce(string_agg(id || ':' || name, ',' ORDER BY id), "
                            "'') FROM tenants")
        return channels + "|" + tenants


class Live(ChannelCase):
    def test_added_after_start_then_disabled_then_enabled(self):
        h = self.start_hubd()
        r, sec = self.add(h.config_path, "demo-wa2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("demo-wa2", r.stdout)
        self.wait_status(h, "demo-wa2", sec, 200)
        self.assertEqual(self.count("messages", "channel_id = (SELECT id FROM channels WHERE "
                                                "public_id = 'demo-wa2')"), 1)
        # the GET handshake uses the verify token from the database
        ok = httpc.get(h.port, "/webhooks/whatsapp/demo-wa2?hub.mode=subscribe&"
                               "hub.challenge=42&hub.verify_token=" + sec["verify_token"])
        self.assertEqual((ok.status, ok.body), (200, b"42"))

        listed = self.listing(h.config_path)
        self.assertEqual(listed["demo-wa2"]["source"], "database")
        self.assertEqual(listed["demo-wa2"]["kind"], "whatsapp")
        self.assertEqual(listed["demo-wa2"]["account_id"], sec["account_id"])
        self.assertTrue(listed["demo-wa2"]["enabled"])
        self.assertEqual(listed["demo-whatsapp"]["source"], "config")

        r = self.ctl(h.config_path, "channel", "disable", "demo-wa2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_status(h, "demo-wa2", sec, 404)
        before = self.counts()
        self.assertEqual(self.wa_post(h, "demo-wa2", sec), 404)
        self.assert_unchanged(before)
        self.assertFalse(self.listing(h.config_path)["demo-wa2"]["enabled"])

        r = self.ctl(h.config_path, "channel", "enable", "demo-wa2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_status(h, "demo-wa2", sec, 200)
        h.assert_alive()
        self.assertGreaterEqual(h.count_log(r"channels: \d+ in the database"), 3)

    def test_database_channels_survive_a_reload(self):
        h = self.start_hubd()
        r, sec = self.add(h.config_path, "demo-wa4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_status(h, "demo-wa4", sec, 200)
        h.reload(hubd.merge(h.cfg, {"log.level": "debug"}))
        self.assertEqual(self.wa_post(h, "demo-wa4", sec), 200)
        self.assertEqual(self.wa_post(h, "demo-whatsapp",
                                      {"account_id": hubd.DEMO_ACCOUNT,
                                       "app_secret": self.channel(h)["app_secret"]}), 200)

    def test_two_instances_on_one_database_both_follow(self):
        h1 = self.start_hubd()
        cfg2 = hubd.merge(h1.cfg, {"http.listen": "127.0.0.1:%d" % util.free_port()})
        h2 = self.start_hubd(cfg2, name="hubd2")
        r, sec = self.add(h1.config_path, "shared-wa")
        self.assertEqual(r.returncode, 0, r.stderr)
        for h in (h1, h2):
            self.wait_status(h, "shared-wa", sec, 200)
        self.assertEqual(self.ctl(h2.config_path, "channel", "disable",
                                  "shared-wa").returncode, 0)
        for h in (h1, h2):
            self.wait_status(h, "shared-wa", sec, 404)
        self.assertEqual(self.ctl(h1.config_path, "channel", "enable",
                                  "shared-wa").returncode, 0)
        for h in (h1, h2):
            self.wait_status(h, "shared-wa", sec, 200)

    def test_change_while_the_listen_connection_is_down_is_seen_after_it(self):
        h = self.start_hubd()
        r, sec = self.add(h.config_path, "demo-wa3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_status(h, "demo-wa3", sec, 200)
        # one LISTEN connection for every channel hubd follows (PostgreSQL wakes every
        # listening session for each NOTIFY)
        self.assertEqual(self.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                   "current_database() AND query LIKE 'LISTEN%'"), "1")
        # cut hubd's LISTEN connection and disable at once: the NOTIFY finds no listener
        # (never replayed); hubd must re-read after it listens again
        out = self.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() "
                        "AND query LIKE 'LISTEN%hub_channels%'; "
                        "SELECT hub_channel_set_enabled('demo-wa3', false)")
        self.assertEqual(out.split(), ["1", "t"])
        self.wait_status(h, "demo-wa3", sec, 404)
        # (one connection listens on every channel)
        self.assertGreaterEqual(h.count_log(r"listen [a-z_, ]*hub_channels[a-z_, ]*: "
                                            r"connection lost"), 1)
        self.assertGreaterEqual(h.count_log(r"listening on hub_channels"), 2)
        # the other channels are listened on again too
        util.wait_for(lambda: h.count_log(r"listening on hub_revocations") >= 2, 10,
                      "revocations listened on again")
        self.assertEqual(self.ctl(h.config_path, "channel", "enable",
                                  "demo-wa3").returncode, 0)
        self.wait_status(h, "demo-wa3", sec, 200)
        h.assert_alive()

    def test_config_channel_wins_over_its_row_but_follows_enabled(self):
        h = self.start_hubd()
        own = self.channel(h)
        other = "dbsecret-" + os.urandom(12).hex()
        self.no_leak(other)
        self.psql("UPDATE channels SET app_secret = '%s' WHERE public_id = 'demo-whatsapp'"
                  % other)
        # the UPDATE notified hubd: after its read, the file's secret still signs
        util.wait_for(lambda: h.count_log(r"channels: \d+ in the database") >= 2,
                      LIVE_TIMEOUT, "hubd to re-read the channels")
        sec = {"account_id": own["account_id"], "app_secret": own["app_secret"]}
        self.assertEqual(self.wa_post(h, "demo-whatsapp", sec), 200)
        self.assertEqual(self.wa_post(h, "demo-whatsapp", dict(sec, app_secret=other)), 401)
        # enabled is the database's for every channel
        self.assertEqual(self.ctl(h.config_path, "channel", "disable",
                                  "demo-whatsapp").returncode, 0)
        self.wait_status(h, "demo-whatsapp", sec, 404)
        self.assertEqual(self.ctl(h.config_path, "channel", "enable",
                                  "demo-whatsapp").returncode, 0)
        self.wait_status(h, "demo-whatsapp", sec, 200)

    def test_channel_of_a_new_tenant_and_secret_from_stdin(self):
        h = self.start_hubd()
        app = os.urandom(16).hex() + "-stdin"
        self.no_leak(app)
        account = "555000111"
        r = self.hubctl("-c", h.config_path, "channel", "add", "--id", "newco-wa", "--tenant",
                        "newco", "--tenant-name", "New Co LLP", "--kind", "whatsapp",
                        "--account", account, "--app-secret-file", "-",
                        "--verify-token-file", self.secret_file("verify-" + os.urandom(8).hex()),
                        input="")
        self.assertEqual(r.returncode, 1, r.stderr)  # stdin was empty: refused
        self.assertEqual(self.count("tenants", "id = 'newco'"), 0)
        r = self.hubctl("-c", h.config_path, "channel", "add", "--id", "newco-wa", "--tenant",
                        "newco", "--tenant-name", "New Co LLP", "--kind", "whatsapp",
                        "--account", account, "--app-secret-file", "-",
                        "--verify-token-file", self.secret_file("verify-" + os.urandom(8).hex()),
                        input=app + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(app, r.stdout + r.stderr)
        self.assertEqual(self.psql("SELECT name FROM tenants WHERE id = 'newco'"), "New Co LLP")
        self.wait_status(h, "newco-wa", {"account_id": account, "app_secret": app}, 200)
        self.assertEqual(self.psql("SELECT tenant_id FROM messages"), "newco")
        listing = self.ctl(h.config_path, "channel", "list")
        self.assertEqual(listing.returncode, 0)
        self.assertIn("newco-wa", listing.stdout)
        self.assertNotIn(app, listing.stdout + listing.stderr)


class BadInput(ChannelCase):
    """Each bad command exits 1 or 2 with a clear message and changes nothing."""
    needs_hubd = False

    def setUp(self):
        super().setUp()
        self.path = self.write_config(self.config())
        r = self.ctl(self.path, "migrate")
        self.assertEqual(r.returncode, 0, r.stderr)
        r, _ = self.add(self.path, "taken-wa", tenant="demo", tenant_name="Demo company")
        self.assertEqual(r.returncode, 0, r.stderr)

    def refused(self, rc, fragment, fn):
        before = self.db_state()
        r = fn()
        self.assertEqual(r.returncode, rc, r.stdout + r.stderr)
        self.assertIn(fragment, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(self.db_state(), before, "a refused command changed the database")
        return r

    def test_unknown_kind(self):
        self.refused(2, "--kind must be one of", lambda: self.add(self.path, "x-fax",
                                                                  kind="fax")[0])

    def test_duplicate_id(self):
        self.refused(1, 'channel "taken-wa" already exists',
                     lambda: self.add(self.path, "taken-wa")[0])

    def test_id_of_a_config_channel(self):
        self.refused(1, "defined in", lambda: self.add(self.path, "demo-whatsapp")[0])

    def test_missing_secret_file(self):
        missing = os.path.join(self.out, "no-such-file")
        self.refused(1, missing, lambda: self.ctl(
            self.path, "channel", "add", "--id", "x-wa", "--tenant", "demo", "--kind",
            "whatsapp", "--account", "1", "--app-secret-file", missing,
            "--verify-token-file", self.secret_file("v" * 20)))

    def test_secret_file_not_utf8_or_empty(self):
        bad = os.path.join(self.out, "bad-secret")
        with open(bad, "wb") as f:
            f.write(b"\xff\xfe-not-utf8\n")
        self.refused(1, "not UTF-8", lambda: self.ctl(
            self.path, "channel", "add", "--id", "x-wa", "--tenant", "demo", "--kind",
            "whatsapp", "--account", "1", "--app-secret-file", bad,
            "--verify-token-file", self.secret_file("v" * 20)))
        empty = self.secret_file("")
        self.refused(1, "must hold 1 to", lambda: self.ctl(
            self.path, "channel", "add", "--id", "x-wa", "--tenant", "demo", "--kind",
            "whatsapp", "--account", "1", "--app-secret-file", empty,
            "--verify-token-file", self.secret_file("v" * 20)))

    def test_unknown_tenant_without_tenant_name(self):
        self.refused(1, 'unknown tenant "ghost"',
                     lambda: self.add(self.path, "ghost-wa", tenant="ghost")[0])

    def test_secret_on_the_command_line(self):
        self.refused(2, "never from the command line",
                     lambda: self.add(self.path, "x-wa", extra=["s3cr3t-on-argv"])[0])

    def test_missing_options_and_bad_ids(self):
        self.refused(2, "required", lambda: self.ctl(self.path, "channel", "add", "--id",
                                                     "x-wa"))
        self.refused(2, "--id and --tenant", lambda: self.add(self.path, "Bad Id")[0])
        self.refused(2, "--verify-token-file is required",
                     lambda: self.add(self.path, "x-ig", kind="instagram", verify=False)[0])
        self.refused(2, "--account", lambda: self.add(self.path, "x-wa", account="a b")[0])

    def test_bad_telegram_secret(self):
        self.refused(1, "secret_token", lambda: self.add(self.path, "x-tg", kind="telegram",
                                                         app_secret="has space!")[0])

    def test_enable_disable_unknown_channel(self):
        self.refused(1, 'no channel "nope"', lambda: self.ctl(self.path, "channel",
                                                              "disable", "nope"))
        self.refused(1, 'no channel "nope"', lambda: self.ctl(self.path, "channel", "enable",
                                                              "nope"))
        self.refused(2, "usage", lambda: self.ctl(self.path, "channel", "disable"))
        self.refused(2, "unknown subcommand", lambda: self.ctl(self.path, "channel", "drop"))

    def test_database_down(self):
        path = self.write_config(self.config(db_url="postgresql://nobody@127.0.0.1:1/none"),
                                 "down.json")
        self.refused(1, "database", lambda: self.add(path, "x-wa")[0])
        self.refused(1, "database", lambda: self.ctl(path, "channel", "list"))


class Simulate(ChannelCase):
    def test_simulate_whatsapp_on_a_database_channel(self):
        h = self.start_hubd()
        r, _ = self.add(h.config_path, "demo-wa-db")
        self.assertEqual(r.returncode, 0, r.stderr)
        text = self.unique_text()
        self.no_leak(text)

        def posted():
            r = self.ctl(h.config_path, "simulate", "whatsapp", "demo-wa-db", "--from",
                         "+77011234567", "--name", "Aigerim", text)
            return r if r.returncode == 0 else None
        r = util.wait_for(posted, LIVE_TIMEOUT, "hubd to serve demo-wa-db", interval=0.2)
        self.assertIn(" 200 ", r.stdout)
        self.assertNotIn(text, r.stdout + r.stderr)
        self.assertEqual(self.psql("SELECT text FROM messages"), text)

    def simulate(self, platform, account, sender, name, adapter_check):
        h = self.start_hubd()
        cid = "demo-" + platform
        r, sec = self.add(h.config_path, cid, kind=platform, account=account,
                          verify=platform != "telegram")
        self.assertEqual(r.returncode, 0, r.stderr)
        util.wait_for(lambda: self.listing(h.config_path)[cid]["enabled"], LIVE_TIMEOUT, cid)
        util.wait_for(lambda: h.count_log(r"channels: \d+ in the database") >= 2,
                      LIVE_TIMEOUT, "hubd to read the new channel")
        text = self.unique_text()
        self.no_leak(text)
        r = self.ctl(h.config_path, "simulate", platform, cid, "--from", sender, "--name",
                     name, text)
        self.assertNotIn(text, r.stdout + r.stderr)
        self.assert_no_secret(r, sec)
        if adapter_check:
            # the body reached hubd, which has no adapter for it yet
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn(" 404 ", r.stdout)
            self.assertIn("unknown_platform", r.stdout)
            self.assertEqual(self.count("messages"), 0)
            h.assert_alive()
            self.skipTest("the %s adapter is not merged yet: hubd answered 404 unknown "
                          "platform" % platform)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(" 200 ", r.stdout)
        ext = r.stdout.split(" ", 1)[0]
        self.assertEqual(self.psql("SELECT text FROM messages WHERE external_id = '%s'" % ext),
                         text)
        return h

    def test_simulate_telegram(self):
        self.simulate("telegram", "7000000001", "1111111", "Test Lastname",
                      adapter_missing("telegram"))

    def test_simulate_instagram(self):
        self.simulate("instagram", "17841471550633446", "1090651699462050", "Aigerim",
                      adapter_missing("instagram"))

    def test_simulate_bad_usage(self):
        h = self.start_hubd()
        r = self.ctl(h.config_path, "simulate", "fax", "demo-whatsapp", "--from", "1",
                     "--name", "A", "hi")
        self.assertEqual(r.returncode, 2)
        self.assertIn("not supported", r.stderr)
        r = self.ctl(h.config_path, "simulate", "telegram", "nope-tg", "--from", "1",
                     "--name", "A", "hi")
        self.assertEqual(r.returncode, 2)
        self.assertIn('no telegram channel "nope-tg"', r.stderr)
        r, _ = self.add(h.config_path, "demo-tg", kind="telegram", account="7000000002",
                        verify=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl(h.config_path, "simulate", "telegram", "demo-tg", "--from", "-5",
                     "--name", "A", "hi")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--from", r.stderr)
        self.assertEqual(self.count("messages"), 0)

    def test_simulate_sends_secrets_to_loopback_only(self):
        # security issue, finding 10: --url took any host, and the request carries the
        # channel's secret (Meta's signature of the body, Telegram's token as it is)
        h = self.start_hubd()
        ch = self.channel(h)
        text = self.unique_text()
        self.no_leak(text)
        # a listener on an address of this machine that is not loopback: nothing may
        # reach it
        own = None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(("192.0.2.1", 9))
                own = probe.getsockname()[0]
            except OSError:
                pass
        trap = None
        urls = ["http://203.0.113.7:8080", "http://example.com:80/", "http://[2001:db8::1]:80",
                "http://127.0.0.1.nip.io:%d" % h.port, "http://0.0.0.0:%d" % h.port]
        if own and not own.startswith("127."):
            trap = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.addCleanup(trap.close)
            trap.bind((own, 0))
            trap.listen(8)
            trap.setblocking(False)
            urls.insert(0, "http://%s:%d/" % (own, trap.getsockname()[1]))
        before = self.counts()

        def simulate(url):
            r = self.ctl(h.config_path, "simulate", "whatsapp", "demo-whatsapp", "--from",
                         "+77011234567", "--name", "Aigerim", "--url", url, text)
            self.assertNotIn(text, r.stdout + r.stderr)
            for k in ("app_secret", "verify_token", "access_token"):
                self.assertNotIn(ch[k], r.stdout + r.stderr)
            return r
        for url in urls:
            r = simulate(url)
            self.assertEqual(r.returncode, 2, (url, r.stdout, r.stderr))
            self.assertIn("loopback", r.stderr)
            self.assertIn("127.0.0.0/8, ::1 and localhost", r.stderr)
            self.assertEqual(r.stdout, "")
        for url in ("https://127.0.0.1:%d" % h.port, "HTTPS://localhost:443/"):
            r = simulate(url)
            self.assertEqual(r.returncode, 2, (url, r.stdout, r.stderr))
            self.assertIn("https is not supported", r.stderr)
        if trap:
            with self.assertRaises(BlockingIOError, msg="simulate connected to " + own):
                trap.accept()
        self.assert_unchanged(before)
        # this machine is fine, by name or address
        r = simulate("http://localhost:%d" % h.port)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(" 200 ", r.stdout)
        self.assertEqual(self.count("messages"), 1)
        h.assert_alive()


if __name__ == "__main__":
    import unittest
    unittest.main()
