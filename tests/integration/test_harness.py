"""tests/integration/test_harness.py - the harness tests itself: real PostgreSQL and Redis
start, stop and restart; the websocket and raw HTTP clients against small Python servers;
the WhatsApp builder and signer against the fixture and openssl; the JWT minter; and the
hubd runner (notify socket, reload, stop, sanitizer and leak checks) against a fake hubd.
Needs no hubd build, so it runs today.
"""
import base64
import hashlib
import http.server
import json
import os
import socket
import socketserver
import struct
import subprocess
import sys
import textwrap
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, hubd, pg, tokens, util, whatsapp, ws  # noqa: E402
from support.case import HubTestCase  # noqa: E402

FAKE_HUBD = textwrap.dedent(r'''
    import http.server, json, os, signal, socket, sys, threading
    cfg_path = sys.argv[2]
    def load():
        with open(cfg_path) as f:
            return json.load(f)
    cfg = load()
    def notify(msg):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(msg.encode(), os.environ["NOTIFY_SOCKET"])
        s.close()
    def log(level, text):
        sys.stderr.write("2026-11-25T10:00:00.000Z <%d>[main  ] %s\n" % (level, text))
        sys.stderr.flush()
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            if cfg["log"]["level"] == "debug":
                log(7, "GET %s" % self.path)
            body = b"ok\n" if self.path == "/healthz" else b'{"error":{"code":"not_found"}}'
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    host, port = cfg["http"]["listen"].rsplit(":", 1)
    srv = http.server.ThreadingHTTPServer((host, int(port)), H)
    def on_hup(*a):
        global cfg
        notify("RELOADING=1")
        try:
            cfg = load()
            log(6, "reloaded")
        except ValueError:
            log(3, "%s: bad config, keeping the old one" % cfg_path)
        notify("READY=1")
    def on_term(*a):
        notify("STOPPING=1")
        threading.Thread(target=srv.shutdown).start()
    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    log(6, "ready on %s" % cfg["http"]["listen"])
    notify("READY=1")
    srv.serve_forever()
    if cfg.get("fake_leak"):
        log(6, "leaking %s" % cfg["auth"]["jwt_secret"])
    if cfg.get("fake_ubsan"):
        sys.stderr.write("daemon/x.c:1:2: runtime error: signed integer overflow\n")
    sys.exit(cfg.get("fake_exit", 0))
''')


class FakeHubd(HubTestCase):
    """The hubd runner and the cleanup checks, against a Python stand-in for hubd."""
    needs_hubd = False

    def fake(self):
        path = os.path.join(self.out, "fake-hubd")
        with open(path, "w") as f:
            f.write("#!/usr/bin/python3\n" + FAKE_HUBD)
        os.chmod(path, 0o755)
        return path

    def test_ready_reload_stop(self):
        h = self.start_hubd(binary=self.fake())
        h.assert_alive()
        self.assertEqual(h.count_log(r"<7>"), 0)
        h.reload(hubd.merge(h.cfg, {"log.level": "debug"}))
        h.assert_alive()
        self.assertGreater(h.count_log(r"<7>\[main  \] GET /healthz"), 0)
        h.reload(raw="{ not json")
        h.assert_alive()
        self.assertIn("bad config", h.log())
        self.assertEqual(h.stop(), 0)
        self.assertIn("STOPPING=1", h.notes)

    def test_not_ready_is_reported_with_the_log(self):
        h = self.start_hubd(binary="/bin/false", wait=False)
        with self.assertRaises(hubd.HubdError) as e:
            h.wait_ready(5)
        self.assertIn("exited with 1 before READY=1", str(e.exception))
        h.kill()
        self.hubds.remove(h)    # its failure was the point

    def test_a_port_taken_before_the_bind_is_exchanged_for_another(self):
        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        h = self.start_hubd(self.config(port=port), binary=self.fake())
        self.assertNotEqual(h.port, port)
        h.assert_alive()
        self.assertEqual(len(self.hubds), 1, "the one that found the port taken is not checked")

    def test_sanitizer_report_fails_stop(self):
        h = self.start_hubd(binary=self.fake(), overrides={"fake_ubsan": True})
        with self.assertRaises(hubd.HubdError) as e:
            h.stop()
        self.assertIn("runtime error:", str(e.exception))
        self.hubds.remove(h)

    def test_leak_check_catches_a_logged_secret(self):
        h = self.start_hubd(binary=self.fake(), overrides={"fake_leak": True})
        h.stop()
        with self.assertRaises(AssertionError) as e:
            self._finish()
        self.assertIn("contains a text/token/secret", str(e.exception))
        self.hubds = []     # already checked


class Postgres(HubTestCase):
    needs_hubd = False

    def test_fresh_database_and_psql(self):
        self.psql("CREATE TABLE messages (id bigint, text text)")
        self.psql("INSERT INTO messages VALUES (1, 'Сәлем')")
        self.assertEqual(self.count("messages"), 1)
        self.assertEqual(self.psql("SELECT text FROM messages"), "Сәлем")
        other = self.pg.create_db("other")
        self.addCleanup(self.pg.drop_db, other)
        with self.assertRaises(pg.PgError):
            self.psql("SELECT count(*) FROM messages", db=other)

    def test_own_server_stops_and_restarts_with_its_data(self):
        s, url = self.own_pg()
        self.assertTrue(url.endswith("/hub"))
        s.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (7)", db="hub")
        s.stop()
        with self.assertRaises(pg.PgError):
            s.psql("SELECT 1", db="hub")
        s.start()
        self.assertEqual(s.psql("SELECT x FROM t", db="hub"), "7")


class Redis(HubTestCase):
    needs_hubd = False
    needs_pg = False

    def test_start_stop_restart(self):
        from support import redisd
        r = self.own_redis()
        self.assertEqual(redisd.command(r.port, "PING"), "+PONG")
        self.assertEqual(redisd.command(r.port, "PUBLISH", "c", "x"), ":0")
        r.stop()
        with self.assertRaises(OSError):
            redisd.command(r.port, "PING")
        r.start()
        self.assertEqual(redisd.command(r.port, "PING"), "+PONG")


class Builders(unittest.TestCase):
    def shape(self, v):
        if isinstance(v, dict):
            return {k: self.shape(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.shape(x) for x in v]
        return type(v).__name__

    def test_webhook_body_has_the_fixture_shape(self):
        body, wamid = whatsapp.text_body("123", "Сәлем")
        doc = json.loads(body)
        self.assertEqual(self.shape(doc), self.shape(json.loads(util.fixture(
            "whatsapp/text.json"))))
        msg = doc["entry"][0]["changes"][0]["value"]["messages"][0]
        self.assertEqual((msg["id"], msg["text"]["body"]), (wamid, "Сәлем"))
        self.assertIn("Сәлем".encode(), body)       # raw UTF-8, as the wire carries it

    def test_signature_matches_openssl(self):
        body = util.fixture("whatsapp/text.json")
        r = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", "s3cret"], input=body,
                           stdout=subprocess.PIPE, check=True)
        hexmac = r.stdout.decode().split()[-1]
        self.assertEqual(whatsapp.sign(body, "s3cret"), "sha256=" + hexmac)
        self.assertEqual(whatsapp.sign(body, "s3cret", upper=True), "sha256=" + hexmac.upper())

    def test_tokens(self):
        t = tokens.mint("k", sub="u1", tid="demo", role="admin")
        self.assertEqual(tokens.verify(t, "k")["role"], "admin")
        for bad, why in ((tokens.mint("other"), "bad signature"),
                         (tokens.mint("k", ttl=-10), "expired"),
                         (tokens.mint("k", alg="none"), "alg"),
                         ("abc.def", "three")):
            with self.assertRaisesRegex(ValueError, why):
                tokens.verify(bad, "k")
        self.assertTrue(tokens.mint("k", alg="none").endswith("."))


class WsEcho(socketserver.BaseRequestHandler):
    """A minimal RFC 6455 server: echoes text; 'frag' → a fragmented reply; 'ping' → sends
    a ping and echoes the pong's payload; 'close' → close 1008 'go away'."""

    def read_frame(self, f):
        head = f.read(2)
        if len(head) < 2:
            return ws.OP_CLOSE, b""
        b0, b1 = head
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", f.read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", f.read(8))[0]
        assert b1 & 0x80, "client frames must be masked"
        key = f.read(4)
        data = bytes(b ^ key[i % 4] for i, b in enumerate(f.read(n)))
        return b0 & 0x0F, data

    def frame(self, op, data, fin=True):
        return bytes([(0x80 if fin else 0) | op, len(data)]) + data

    def handle(self):
        f = self.request.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += f.readline()
        hdr = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if line)
        acc = base64.b64encode(hashlib.sha1((hdr["Sec-WebSocket-Key"] + ws.GUID).encode())
                               .digest()).decode()
        self.request.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                              "Sec-WebSocket-Protocol: %s\r\n\r\n"
                              % (acc, hdr["Sec-WebSocket-Protocol"])).encode())
        while True:
            op, data = self.read_frame(f)
            if op == ws.OP_PONG:
                continue
            if op == ws.OP_CLOSE:
                self.request.sendall(self.frame(ws.OP_CLOSE, data[:2]))
                return
            if data == b"frag":
                self.request.sendall(self.frame(ws.OP_TEXT, b"fr", fin=False) +
                                     self.frame(ws.OP_PING, b"p") +
                                     self.frame(ws.OP_CONT, b"ag"))
            elif data == b"ping":
                self.request.sendall(self.frame(ws.OP_PING, b"abc"))
                op, data = self.read_frame(f)
                self.request.sendall(self.frame(ws.OP_TEXT, b"pong:" + data))
            elif data == b"close":
                self.request.sendall(self.frame(ws.OP_CLOSE, struct.pack("!H", 1008) +
                                                b"go away"))
                return
            else:
                self.request.sendall(self.frame(ws.OP_TEXT, data))


class HttpEcho(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Clients(unittest.TestCase):
    def serve(self, server_cls, handler):
        srv = server_cls(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        return srv.server_address[1]

    def test_websocket_client(self):
        port = self.serve(socketserver.ThreadingTCPServer, WsEcho)
        with ws.WsClient(port) as c:
            self.assertEqual(c.headers["sec-websocket-protocol"], "bayge.v1")
            c.send_json({"type": "auth", "token": "x"})
            self.assertEqual(c.recv_json(), {"type": "auth", "token": "x"})
            c.send_text("frag")
            self.assertEqual(c.recv(), (ws.OP_TEXT, b"frag"))
            self.assertEqual(c.pings, [b"p"])
            c.send_text("ping")
            self.assertEqual(c.recv(), (ws.OP_TEXT, b"pong:abc"))
            c.send_text("close")
            self.assertEqual(c.wait_close(), (1008, "go away"))
        with ws.WsClient(port) as c:
            c.close(1000)
            self.assertEqual(c.wait_close(), (1000, ""))

    def test_raw_http_pipelining(self):
        port = self.serve(http.server.ThreadingHTTPServer, HttpEcho)
        with httpc.RawConn(port) as c:
            c.send(httpc.format_request("GET", "/a") + httpc.format_request("GET", "/b"))
            self.assertEqual(c.read_response().body, b"/a")
            self.assertEqual(c.read_response().body, b"/b")
            self.assertFalse(c.peer_closed(0.05))
        r = httpc.get(port, "/c")
        self.assertEqual((r.status, r.text), (200, "/c"))


if __name__ == "__main__":
    unittest.main()
