"""tests/integration/test_foundation.py - hubd as a process and an HTTP server: config
errors (hubctl check-config), start-up, health/readiness/metrics, slow and pipelining
clients, SIGTERM drain, SIGHUP reload, two instances migrating one database at once, and
a service manager that does not read its notify socket.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, hubd, util  # noqa: E402
from support.case import HubTestCase  # noqa: E402

NO_DB = "postgresql://nobody@127.0.0.1:1/none"


def line_of(text, needle):
    """1-based number of the first line of text containing needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in the config" % needle)


class CheckConfig(HubTestCase):
    needs_hubd = False
    needs_hubctl = True
    needs_pg = False

    def check(self, overrides):
        """Writes the test config with overrides; returns (path, text, CompletedProcess)."""
        path = self.write_config(self.config(overrides, db_url=NO_DB))
        with open(path) as f:
            text = f.read()
        return path, text, self.hubctl("check-config", path)

    def assert_error(self, r, path, line, key):
        self.assertEqual(r.returncode, 1, r.stderr)
        rx = r"^%s:%d:\d+: %s: \S" % (re.escape(path), line, re.escape(key))
        self.assertRegex(r.stderr, re.compile(rx, re.M))

    def test_valid_configs_pass(self):
        r = self.hubctl("check-config", os.path.join(util.ROOT, "config", "dev.json"))
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        path, _, r = self.check({})            # the harness's own config is valid too
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_unknown_key(self):
        path, text, r = self.check({"http.bodymax": 1024})
        self.assert_error(r, path, line_of(text, '"bodymax"'), "http.bodymax")

    def test_wrong_type(self):
        path, text, r = self.check({"http.body_max": "big"})
        self.assert_error(r, path, line_of(text, '"body_max"'), "http.body_max")

    def test_out_of_range(self):
        path, text, r = self.check({"http.body_max": 1})
        self.assert_error(r, path, line_of(text, '"body_max"'), "http.body_max")

    def test_every_error_is_reported(self):
        path, text, r = self.check({"http.body_max": 1, "ws.max_frame": "x",
                                    "database.pool": 3})
        self.assert_error(r, path, line_of(text, '"body_max"'), "http.body_max")
        self.assert_error(r, path, line_of(text, '"max_frame"'), "ws.max_frame")
        self.assert_error(r, path, line_of(text, '"pool"'), "database.pool")

    def test_bad_json_names_line_and_column(self):
        path = os.path.join(self.out, "broken.json")
        with open(path, "w") as f:
            f.write('{\n  "log": { "level": "info" },\n  "http": {,\n}\n')
        r = self.hubctl("check-config", path)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, re.compile(r"^%s:3:\d+: " % re.escape(path), re.M))

    def test_errors_do_not_echo_secrets(self):
        path, text, r = self.check({"auth.jwt_secret": ["not", "a", "string-secret-xyz"]})
        self.assertEqual(r.returncode, 1)
        self.assertIn("auth.jwt_secret", r.stderr)
        self.assertNotIn("string-secret-xyz", r.stderr)


class Startup(HubTestCase):
    def test_ready_health_and_metrics(self):
        h = self.start_hubd()
        self.assertRegex(h.log(), r"<6>\[\w+ *\] ready on 127\.0\.0\.1:%d" % h.port)
        r = httpc.get(h.port, "/healthz")
        self.assertEqual(r.status, 200)
        r = httpc.get(h.port, "/readyz")
        self.assertEqual(r.status, 200)
        r = httpc.get(h.port, "/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r)
        m = r.text
        self.assertIn("# TYPE hub_http_requests_total counter", m)
        self.assertRegex(m, r'hub_http_requests_total\{[^}]*route="healthz"[^}]*'
                            r'code="200"[^}]*\} [1-9]')
        self.assertRegex(m, r"hub_http_request_duration_seconds_bucket\{")
        for gauge in ("hub_http_connections", "hub_ws_clients", "hub_db_pool_"):
            self.assertIn(gauge, m)
        # the config's tenants and channels are upserted at start
        self.assertEqual(self.count("channels", "public_id IN ('demo-whatsapp', "
                                                "'acme-whatsapp')"), 2)

    def test_unknown_route_is_json_404(self):
        h = self.start_hubd()
        r = httpc.get(h.port, "/no/such/thing")
        self.assertEqual(r.status, 404)
        err = r.json()["error"]
        self.assertIsInstance(err["code"], str)
        self.assertIsInstance(err["message"], str)
        h.assert_alive()

    def test_bad_config_at_start_exits_1_with_a_message(self):
        cfg = self.config({"http.no_such_key": 1})
        h = self.start_hubd(cfg, wait=False)
        h.expected_rc = 1
        self.assertEqual(h.wait_exit(60), 1)
        self.assertIn(h.config_path, h.log())
        self.assertIn("http.no_such_key", h.log())

    def test_a_port_in_use_exits_1_cleanly(self):
        # start-up fails once the websocket server exists: everything is torn down and
        # hubd exits 1 (on a loaded machine the database may time out first: the same)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            h = self.start_hubd(self.config(port=busy.getsockname()[1]), wait=False)
            h.expected_rc = 1
            self.assertEqual(h.wait_exit(60), 1, h.log())
        self.assertRegex(h.log(), r"address already in use|could not sync a channel")

    def test_env_overrides_database_url(self):
        cfg = self.config({"database.url": NO_DB})
        h = self.start_hubd(cfg, env={"HUB_DATABASE_URL": self.pg.url(self.db)})
        self.assertEqual(httpc.get(h.port, "/readyz").status, 200)

    def test_starts_before_the_database_answering_503_then_migrates_and_serves(self):
        server, url = self.own_pg()
        server.stop()
        h = self.start_hubd(self.config(db_url=url), wait=False)
        util.wait_for(lambda: self._answers(h), 30, "hubd listening")
        r = httpc.get(h.port, "/readyz")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["database"], "down")
        body, _, sig = self.text_webhook(h)
        r = self.post_webhook(h, "demo-whatsapp", body, sig)
        # 503, never 404 (a platform would drop the webhook) nor 200 (nothing is stored)
        self.assertEqual((r.status, r.json()["error"]["code"]), (503, "starting"))
        self.assertEqual(r.headers.get("retry-after"), "1")
        r = httpc.get(h.port, "/ws", headers={"Upgrade": "websocket"})
        self.assertEqual(r.status, 503)
        # it keeps waiting (tried again about every second), and says so once
        util.wait_for(lambda: "not reachable yet" in h.log(), 30, "the warning")
        time.sleep(3)
        h.assert_alive()
        h._drain_notes()
        self.assertNotIn("READY=1", h.notes)
        self.assertIn("STATUS=waiting for the database", h.notes)
        self.assertEqual(h.log().count("not reachable yet"), 1, h.log())
        server.start()
        h.wait_ready(60)
        self.assertEqual(httpc.get(h.port, "/readyz").status, 200)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertEqual(self.psql("SELECT count(*) FROM messages", server=server, db="hub"),
                         "1")

    @staticmethod
    def _answers(h):
        try:
            return httpc.get(h.port, "/healthz").status == 200
        except OSError:
            return False

    def test_two_instances_migrate_one_fresh_database_at_once(self):
        a = self.start_hubd(name="hubd-a", wait=False)
        b = self.start_hubd(hubd.merge(a.cfg, {"http.listen": "127.0.0.1:%d"
                                               % util.free_port()}),
                            name="hubd-b", wait=False)
        a.wait_ready(60)
        b.wait_ready(60)
        for h in (a, b):
            h.assert_alive()
            body, _, sig = self.text_webhook(h)
            self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertEqual(self.count("messages"), 2)


class SlowAndPipelined(HubTestCase):
    def test_slowloris_is_cut_off_while_others_are_served(self):
        h = self.start_hubd(overrides={"http.header_timeout_ms": 500})
        head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 400
        with httpc.RawConn(h.port) as slow:
            deadline = util.Deadline(15)
            sent = 0
            while not slow.peer_closed(0.1):        # one byte every 100 ms
                self.assertFalse(deadline.expired(), "slow client never cut off")
                self.assertLess(sent, len(head), "slow client sent all its bytes")
                if not slow.send(head[sent:sent + 1]):
                    break
                sent += 1
                if sent == 3:                       # meanwhile another client is served
                    self.assertEqual(httpc.get(h.port, "/healthz").status, 200)
            if slow.buf:
                self.assertTrue(slow.buf.startswith(b"HTTP/1.1 408"), slow.buf[:100])
        h.assert_alive()

    def test_pipelined_requests_answered_in_order(self):
        h = self.start_hubd()
        with httpc.RawConn(h.port) as c:
            c.send(httpc.format_request("GET", "/healthz") +
                   httpc.format_request("GET", "/no/such/route") +
                   httpc.format_request("GET", "/metrics"))
            self.assertEqual(c.read_response().status, 200)
            self.assertEqual(c.read_response().status, 404)
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertIn(b"hub_http_requests_total", r.body)
        h.assert_alive()

    def test_oversized_headers_refused_and_still_serving(self):
        h = self.start_hubd(overrides={"http.header_max": 8192})
        with httpc.RawConn(h.port) as c:
            c.send(httpc.format_request("GET", "/healthz", headers={"X-Big": "b" * 9000}))
            r = c.read_response()
            self.assertIn(r.status, (431, 400))
        h.assert_alive()


class Signals(HubTestCase):
    def test_sigterm_drains_in_flight_requests_and_exits_0(self):
        h = self.start_hubd()
        body, wamid, sig = self.text_webhook(h)
        agent = self.agent(h)
        req = httpc.format_request("POST", "/webhooks/whatsapp/demo-whatsapp", body,
                                   {"Content-Type": "application/json",
                                    "X-Hub-Signature-256": sig})
        cut = len(req) - len(body) // 2
        with httpc.RawConn(h.port) as inflight:
            inflight.send(req[:cut])                # headers and half the body
            ping = httpc.RawConn(h.port)            # and an idle keep-alive connection
            ping.send(httpc.format_request("GET", "/healthz"))
            self.assertEqual(ping.read_response().status, 200)
            h.send_signal(signal.SIGTERM)
            h.wait_notify("STOPPING=1")
            inflight.send(req[cut:])
            self.assertEqual(inflight.read_response().status, 200)
            ping.close()
        self.assertEqual(agent.wait_close(15)[0], 1001)
        self.assertEqual(h.wait_exit(30), 0)
        self.assertEqual(self.psql("SELECT external_id FROM messages"), wamid)

    def test_sighup_changes_log_level_and_a_bad_config_keeps_the_old(self):
        h = self.start_hubd()
        httpc.get(h.port, "/healthz")
        self.assertEqual(h.count_log(r"<7>"), 0)
        h.reload(hubd.merge(h.cfg, {"log.level": "debug"}))
        httpc.get(h.port, "/healthz")
        # the request's line is written once its answer went out: it may come just after
        util.wait_for(lambda: h.count_log(r"<7>") > 0, 5, "a debug line after the reload")

        h.reload(hubd.merge(h.cfg, {"http.no_such_key": 1}))     # refused, kept running
        self.assertIn("http.no_such_key", h.log())
        h.assert_alive()
        before = h.count_log(r"<7>.*GET healthz")
        httpc.get(h.port, "/healthz")
        util.wait_for(lambda: h.count_log(r"<7>.*GET healthz") > before, 5,
                      "the request's debug line: the old (debug) config was lost")

    def test_sighup_applies_body_max_live(self):
        h = self.start_hubd()
        body, _, sig = self.text_webhook(h, text="x" * 3000 + os.urandom(4).hex())
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        h.reload(hubd.merge(h.cfg, {"http.body_max": 2048}))
        body, _, sig = self.text_webhook(h, text="y" * 3000 + os.urandom(4).hex())
        before = self.counts()
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 413)
        self.assert_unchanged(before)
        h.assert_alive()


class MetricsToken(HubTestCase):
    def get_metrics(self, h, authorization=None):
        headers = {"Authorization": authorization} if authorization is not None else {}
        return httpc.get(h.port, "/metrics", headers=headers)

    def assert_refused(self, r, code):
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["error"]["code"], code, r)
        self.assertTrue(r.headers.get("www-authenticate", "").startswith("Bearer "), r)
        self.assertNotIn(b"hub_", r.body)

    def test_metrics_token_is_asked_for_and_checked(self):
        token = hubd.secret("metrics-token")
        self.no_leak(token)
        h = self.start_hubd(overrides={"metrics.token": token})
        # no header: 401, and the body says what to send
        r = self.get_metrics(h)
        self.assert_refused(r, "missing_token")
        self.assertIn("Authorization: Bearer", r.json()["error"]["message"])
        for wrong in (token, "Basic " + token, "Bearer", "Bearer "):
            self.assert_refused(self.get_metrics(h, wrong), "missing_token")
        for wrong in ("Bearer " + token[:-1], "Bearer " + token + "0", "Bearer x",
                      "Bearer " + hubd.secret("metrics-token")):
            self.assert_refused(self.get_metrics(h, wrong), "bad_token")
        r = self.get_metrics(h, "Bearer " + token)
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.text, r'hub_http_requests_total\{[^}]*route="metrics"[^}]*'
                                 r'code="401"[^}]*\} 9')
        self.assertEqual(self.get_metrics(h, "bearer  " + token).status, 200)
        # live: SIGHUP takes a new token, and without one /metrics is open again
        new = hubd.secret("metrics-token-new")
        self.no_leak(new)
        h.reload(hubd.merge(h.cfg, {"metrics.token": new}))
        self.assert_refused(self.get_metrics(h, "Bearer " + token), "bad_token")
        self.assertEqual(self.get_metrics(h, "Bearer " + new).status, 200)
        h.reload(hubd.merge(h.cfg, {"metrics": None}))
        self.assertEqual(self.get_metrics(h).status, 200)
        for secret in (token, new):
            self.assertNotIn(secret, h.log())

    def test_metrics_token_from_the_environment(self):
        token = hubd.secret("metrics-token")
        self.no_leak(token)
        h = self.start_hubd(env={"HUB_METRICS_TOKEN": token})
        self.assert_refused(self.get_metrics(h), "missing_token")
        self.assertEqual(self.get_metrics(h, "Bearer " + token).status, 200)


if __name__ == "__main__":
    import unittest
    unittest.main()


class DeafManagerHubd(hubd.Hubd):
    """hubd notifying to a socket of the test's (path), which nobody reads."""

    def __init__(self, cfg, directory, path):
        super().__init__(cfg, directory)
        self.notify_path = path

    def spawn(self):
        env = hubd.child_env(dict(self.env, NOTIFY_SOCKET=self.notify_path))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)


class Notify(HubTestCase):
    def test_a_full_notify_socket_does_not_freeze_hubd(self):
        # security issue, finding 10: hub_notify blocked in sendto() while the manager's
        # socket was full, and with it the whole loop
        d = tempfile.mkdtemp(prefix="hubt-n-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "notify")
        deaf = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        deaf.bind(path)
        self.addCleanup(deaf.close)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as filler:
            filler.setblocking(False)
            try:
                for _ in range(100000):
                    filler.sendto(b"STATUS=filler", path)
            except BlockingIOError:
                pass
            else:
                self.fail("the notify socket never filled up")
        h = DeafManagerHubd(self.config(), self.out, path)
        self.hubds.append(h)  # stopped by the cleanup: SIGTERM, exit 0, no sanitizer report
        self.no_leak(*hubd.secrets_of(h.cfg))
        h.spawn()
        hubd.wait_http(h.port, "/readyz", 200, 30)  # READY=1 cannot be seen here
        h.assert_alive()
        body, _, sig = self.text_webhook(h)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        h.send_signal(signal.SIGHUP)   # RELOADING=1, READY=1: dropped too
        h.assert_alive()
        self.assertEqual(h.stop(30), 0)
