"""tests/integration/test_httpc.py - daemon/net/httpc, hubd's HTTP client (the outbox's send
APIs, the AI provider), run by tests/drivers/httpc_drive (of the build under test: the ASan
one unless HUBT_BUILD says otherwise) against small servers of this file on 127.0.0.1,
socket-level so that the bytes are exactly ours, with TLS certificates from a private CA
(support/testca.py). Covers: GET and POST over https with a CA file, SNI and name checks;
bodies by Content-Length, chunked and read until close (with and without close_notify);
1xx skipped; keep-alive reuse and the per-origin cap seen from both sides; the queue bound;
response, connect (full backlog) and TLS-handshake timeouts; the size limit; certificates
for another name or from another CA; resets, truncation and garbage; stale keep-alive
connections with and without retry; idle timeout and the DNS cache; cancel and close; bad
requests refused at once; and no path, query, header value or body in the log.
Every run of the driver must exit 0 with no sanitizer report (leaks included).
"""
import hashlib
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import testca, util  # noqa: E402

SANITIZER = re.compile(r"Sanitizer|runtime error:")


def drive_path():
    return os.path.join(util.build_dir(), "tests", "drivers", "httpc_drive")


def payload(n):
    """n bytes that are not all alike (so a lost or repeated piece changes the hash)."""
    pattern = bytes(range(256)) * 2
    out = bytearray()
    i = 0
    while len(out) < n:
        out += pattern[i % 251:i % 251 + 256]
        i += 1
    return bytes(out[:n])


def sha(b):
    return hashlib.sha256(b).hexdigest()


def run(script, args=(), timeout=30):
    """Runs the driver on script (a list of dicts); returns (results by index, stats,
    stderr text). Fails on a sanitizer report or an exit code other than 0."""
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    text = "".join(json.dumps(x) + "\n" for x in script)
    r = subprocess.run([drive_path()] + [str(a) for a in args], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env=env)
    err = r.stderr.decode("utf-8", "replace")
    if SANITIZER.search(err):
        raise AssertionError("httpc_drive: sanitizer report:\n" + err[-8000:])
    if r.returncode != 0:
        raise AssertionError("httpc_drive exited %d:\n%s" % (r.returncode, err[-4000:]))
    results, stats = {}, None
    for line in r.stdout.decode("utf-8").splitlines():
        o = json.loads(line)
        if "stats" in o:
            stats = o["stats"]
        else:
            results[o["i"]] = o
    return results, stats, err


# ---- servers ----

def read_request(s, buf):
    """(method, path, [(name, value)], body), rest; or None, rest at EOF."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = [tuple(x.split(": ", 1)) for x in lines[1:]]
    n = int(dict((k.lower(), v) for k, v in headers).get("content-length", "0"))
    if path.startswith("/sha-slow"):
        time.sleep(0.3)  # the client's socket buffer fills: it must queue the rest
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    return (method, path, headers, buf[:n]), buf[n:]


def send(s, status, body, extra=(), reason="OK"):
    head = "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n" % (status, reason, len(body))
    head += "".join("%s: %s\r\n" % kv for kv in extra)
    s.sendall(head.encode() + b"\r\n" + body)


def wait_closed(s, stop, seconds=15):
    """Reads and drops until the client closes (or the server stops)."""
    s.settimeout(0.1)
    end = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < end:
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


class Server:
    """A server on 127.0.0.1, TLS when ctx is given; a thread per connection. HTTP by the
    first path segment (see answer()), or raw(sock, server) instead of HTTP. Records
    connections, the most open at once, requests (conn number, method, path, headers,
    body), connections the client closed, TLS handshake failures and SNI names."""

    def __init__(self, ctx=None, raw=None, v6=False):
        self.ctx = ctx
        self.v6 = v6
        self.raw = raw
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.conns = self.active = self.max_active = 0
        self.requests = []
        self.closed_by_peer = []
        self.handshake_errors = []
        self.snis = []
        if ctx is not None:
            ctx.sni_callback = lambda sslobj, name, c: self.snis.append(name)
        self.sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("::1" if v6 else "127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def url(self, path, host=None):
        host = host or ("[::1]" if self.v6 else "127.0.0.1")
        return "%s://%s:%d%s" % ("https" if self.ctx else "http", host, self.port, path)

    def close(self):
        self.stop.set()
        self.sock.close()
        for t in list(self.threads):
            t.join(2)

    def _accept(self):
        while not self.stop.is_set():
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.conns += 1
                n = self.conns
            t = threading.Thread(target=self._conn, args=(s, n), daemon=True)
            self.threads.append(t)
            t.start()

    def _conn(self, s, n):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            s.settimeout(15)
            if self.ctx is not None:
                try:
                    s = self.ctx.wrap_socket(s, server_side=True)
                except (OSError, ValueError) as e:
                    self.handshake_errors.append(str(e))
                    return
            if self.raw:
                self.raw(s, self)
                return
            buf = b""
            while not self.stop.is_set():
                req, buf = read_request(s, buf)
                if req is None:
                    with self.lock:
                        self.closed_by_peer.append(n)
                    return
                with self.lock:
                    self.requests.append((n,) + req)
                if not self.answer(s, n, *req):
                    return
        except OSError:
            pass
        finally:
            with self.lock:
                self.active -= 1
            try:
                s.close()
            except OSError:
                pass

    def answer(self, s, n, method, path, headers, body):
        """Answers one request; False closes the connection."""
        segs = path.split("?")[0].split("/")[1:] + [""]
        what, arg = segs[0], segs[1]
        if what == "hello":
            send(s, 200, b"hello", [("Content-Type", "text/plain")])
        elif what in ("sha", "sha-slow"):
            send(s, 200, ("%d %s" % (len(body), sha(body))).encode())
        elif what == "echo":
            send(s, 200, json.dumps({"method": method, "path": path, "headers": headers,
                                     "body": body.decode("latin-1"), "conn": n}).encode(),
                 [("Content-Type", "application/json")])
        elif what == "cl":
            send(s, 200, payload(int(arg)))
        elif what == "chunked":
            data = payload(int(arg))
            out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            for i in range(0, len(data), 1000):
                piece = data[i:i + 1000]
                out += b"%x\r\n" % len(piece) + piece + b"\r\n"
            s.sendall(out + b"0\r\nX-Trailer: t\r\n\r\n")
        elif what in ("close", "close-notify"):
            s.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + payload(int(arg)))
            if what == "close-notify" and self.ctx is not None:
                s.unwrap()
            return False
        elif what == "http10":
            s.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + payload(int(arg)))
            return False
        elif what == "continue":
            s.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
                      b"Link: </x.css>\r\n\r\n")
            send(s, 200, b"after-100")
        elif what == "retry-after":
            send(s, 429, b'{"error":"slow down"}', [("Retry-After", "7"),
                                                    ("content-type", "application/json")],
                 "Too Many Requests")
        elif what == "bye":  # Connection: close, but the server would read on
            send(s, 200, b"bye", [("Connection", "close")])
        elif what == "slow":
            time.sleep(int(arg) / 1000)
            send(s, 200, b"slow")
        elif what == "stall":
            wait_closed(s, self.stop)
            with self.lock:
                self.closed_by_peer.append(n)
            return False
        elif what == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            return False
        elif what == "then-close":  # looks kept alive, but closes right after
            send(s, 200, b"first")
            return False
        elif what == "partial":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
            return False
        elif what == "extra":  # a second answer nobody asked for, in the same packet
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextraHTTP/1.1 200 OK\r\n")
        elif what == "late-junk":  # something unasked while the connection is idle
            send(s, 200, b"late")
            time.sleep(0.2)
            s.sendall(b"junk")
        elif what == "upgrade":
            s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\n\r\n")
            return False
        elif what == "tls-junk":  # bytes that are no TLS record, under the TLS layer
            raw = socket.socket(fileno=os.dup(s.fileno()))
            raw.sendall(b"\x17\x03\x03\x00\x05junk!")
            raw.close()
            wait_closed(s, self.stop, 5)
            return False
        elif what == "garbage":
            s.sendall(b"SPDY/9 what\r\n\r\n")
            return False
        elif what == "headers":
            send(s, 200, b"h", [("X-H%d" % i, "v" * 100) for i in range(int(arg))])
        else:
            send(s, 404, b"no")
        return True


def never_speaks(s, server):
    wait_closed(s, server.stop)


def speaks_plain_http(s, server):
    s.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    wait_closed(s, server.stop, 5)


def blackhole():
    """(listener, fillers, port) of a listening socket whose backlog is full, so that a
    connect to it hangs (Linux drops the SYN); None when that cannot be arranged here."""
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fillers = []
    for _ in range(16):
        f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        f.setblocking(False)
        fillers.append(f)
        try:
            f.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        _, w, _ = select.select([], [f], [], 0.3)
        if not w:
            return lst, fillers, port
    for f in fillers:
        f.close()
    lst.close()
    return None


class HttpcCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hubt-httpc-")
        cls.ca = testca.TestCA(os.path.join(cls.tmp, "ca"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        if not os.access(drive_path(), os.X_OK):
            self.skipTest("%s not built yet (make; make asan)"
                          % os.path.relpath(drive_path(), util.ROOT))

    def server(self, tls=False, ctx=None, raw=None, v6=False):
        if tls and ctx is None:
            ctx = self.ca.ssl_context()
        s = Server(ctx, raw, v6)
        self.addCleanup(s.close)
        return s

    def ca_args(self, *more):
        return ["--ca", self.ca.ca] + list(more)


class Basics(HttpcCase):
    def test_get_and_post_over_https_with_the_ca_file(self):
        srv = self.server(tls=True)
        res, stats, _ = run([
            {"url": srv.url("/hello")},
            {"method": "POST", "url": srv.url("/echo?x=1", host="localhost"), "after": True,
             "headers": {"Content-Type": "application/json", "Authorization": "Bearer abc"},
             "body": '{"a":1}'},
        ], self.ca_args())
        self.assertEqual(res[0]["status"], 200, res)
        self.assertEqual(res[0]["body"], "hello")
        self.assertEqual(res[0]["content_type"], "text/plain")
        self.assertEqual(res[1]["status"], 200, res)
        echo = json.loads(res[1]["body"])
        self.assertEqual(echo["method"], "POST")
        self.assertEqual(echo["path"], "/echo?x=1")
        self.assertEqual(echo["body"], '{"a":1}')
        h = dict((k.lower(), v) for k, v in echo["headers"])
        self.assertEqual(h["host"], "localhost:%d" % srv.port)
        self.assertEqual(h["user-agent"], "bayge-hub")
        self.assertEqual(h["content-length"], "7")
        self.assertEqual(h["connection"], "keep-alive")
        self.assertEqual(h["content-type"], "application/json")
        self.assertEqual(h["authorization"], "Bearer abc")
        # no SNI for an IP address; the name for a name (which went through DNS)
        self.assertEqual(srv.snis, [None, "localhost"])
        self.assertEqual(stats["dns_lookups"], 1)
        self.assertEqual(stats["responses"], 2)

    def test_plain_http(self):
        srv = self.server()
        res, stats, _ = run([
            {"url": srv.url("/hello")},
            {"method": "PUT", "url": srv.url("/echo"), "after": True,
             "headers": {"user-agent": "probe/1"}},
            {"url": srv.url("").upper().replace("HTTP://", "http://") + "?q=1#frag",
             "after": True},
        ])
        self.assertEqual(res[0]["body"], "hello")
        echo = json.loads(res[1]["body"])
        h = dict((k.lower(), v) for k, v in echo["headers"])
        self.assertEqual(echo["method"], "PUT")
        self.assertEqual(h["content-length"], "0")
        self.assertEqual(h["host"], "127.0.0.1:%d" % srv.port)
        self.assertEqual([v for k, v in echo["headers"] if k.lower() == "user-agent"],
                         ["probe/1"])
        self.assertEqual(res[2].get("status"), 404, res)  # no path: "/?q=1", no fragment
        self.assertEqual(srv.requests[-1][2], "/?q=1")

    def test_large_request_bodies(self):
        body = "".join(chr(32 + i % 90) for i in range(1000000))
        for tls in (False, True):
            with self.subTest(tls=tls):
                srv = self.server(tls=tls)
                res, _, _ = run([{"method": "POST", "url": srv.url("/sha-slow"), "body": body},
                                 {"method": "POST", "url": srv.url("/sha"), "body": "x",
                                  "after": True}], self.ca_args())
                self.assertEqual(res[0].get("body"), "%d %s" % (len(body), sha(body.encode())))
                self.assertEqual(res[1].get("body"), "1 %s" % sha(b"x"))

    def test_ipv6_literal(self):
        try:
            srv = self.server(tls=True, v6=True)
        except OSError as e:
            self.skipTest("no IPv6 loopback here: %s" % e)
        res, _, _ = run([{"url": srv.url("/echo")}], self.ca_args())
        self.assertEqual(res[0].get("status"), 200, res)
        h = dict((k.lower(), v) for k, v in json.loads(res[0]["body"])["headers"])
        self.assertEqual(h["host"], "[::1]:%d" % srv.port)
        self.assertEqual(srv.snis, [None])

    def test_bodies_by_length_chunked_and_until_close(self):
        for tls in (False, True):
            with self.subTest(tls=tls):
                srv = self.server(tls=tls)
                sizes = {"cl": 70000, "chunked": 70001, "close": 50000, "close-notify": 3000,
                         "http10": 5000}
                script = [{"url": srv.url("/%s/%d" % kv)} for kv in sizes.items()]
                script += [{"url": srv.url("/continue")}, {"url": srv.url("/retry-after")},
                           {"url": srv.url("/cl/0")}]
                res, _, _ = run(script, self.ca_args())
                for i, (what, n) in enumerate(sizes.items()):
                    self.assertEqual(res[i].get("status"), 200, (what, res[i]))
                    self.assertEqual(res[i]["body_len"], n, what)
                    self.assertEqual(res[i]["sha256"], sha(payload(n)), what)
                self.assertEqual(res[5]["status"], 200, res[5])
                self.assertEqual(res[5]["body"], "after-100")
                self.assertEqual(res[6]["status"], 429)
                self.assertEqual(res[6]["retry_after"], "7")
                self.assertEqual(res[6]["content_type"], "application/json")
                self.assertEqual((res[7]["status"], res[7]["body_len"]), (200, 0))

    def test_bad_requests_are_refused_at_once(self):
        bad = [{"url": "ftp://127.0.0.1/x"}, {"url": "http://user@127.0.0.1/"},
               {"url": "http://[::1/"}, {"url": "http://127.0.0.1:99999/"},
               {"url": "http://127.0.0.1:0/"}, {"url": "http://127.0.0.1/a b"},
               {"url": "http:///x"}, {"url": "http://exa mple/"},
               {"url": "http://127.0.0.1/", "method": "GE T"},
               {"url": "http://127.0.0.1/", "headers": {"Host": "x"}},
               {"url": "http://127.0.0.1/", "headers": {"X-A": "b\r\nX-B: c"}},
               {"url": "http://127.0.0.1/", "headers": {"Content-Length": "3"}}]
        res, stats, _ = run(bad)
        for i in range(len(bad)):
            self.assertEqual((res[i]["error"], res[i].get("sync")), ("EINVAL", True),
                             (bad[i], res[i]))
        self.assertEqual(stats["requests"], 0)


class Pool(HttpcCase):
    def test_keep_alive_reuses_one_connection(self):
        for tls in (False, True):
            with self.subTest(tls=tls):
                srv = self.server(tls=tls)
                res, stats, _ = run([{"url": srv.url("/hello")},
                                     {"url": srv.url("/cl/3000"), "after": True},
                                     {"url": srv.url("/chunked/5000"), "after": True}],
                                    self.ca_args())
                self.assertEqual([res[i]["status"] for i in range(3)], [200] * 3)
                self.assertEqual(stats["conns_opened"], 1, stats)
                self.assertEqual(stats["conns_reused"], 2, stats)
                self.assertEqual(srv.conns, 1)
                self.assertEqual([r[0] for r in srv.requests], [1, 1, 1])

    def test_connection_close_is_not_reused(self):
        srv = self.server()
        res, stats, _ = run([{"url": srv.url("/bye")}, {"url": srv.url("/hello"), "after": True}])
        self.assertEqual([res[0].get("body"), res[1].get("body")], ["bye", "hello"])
        self.assertEqual((stats["conns_opened"], stats["conns_reused"]), (2, 0), stats)
        self.assertEqual([r[0] for r in srv.requests], [1, 2])
        util.wait_for(lambda: 1 in srv.closed_by_peer, 5, "the client closing connection 1")

    def test_per_origin_cap(self):
        srv = self.server()
        res, stats, _ = run([{"url": srv.url("/slow/100"), "repeat": 10}],
                            ["--max-conns", 2])
        self.assertEqual(sorted(r.get("status") for r in res.values()), [200] * 10)
        self.assertLessEqual(srv.max_active, 2)
        self.assertEqual(srv.conns, 2)
        self.assertEqual(stats["conns_opened"], 2, stats)
        self.assertEqual(stats["conns_reused"], 8, stats)

    def test_queue_bound_refuses_at_once(self):
        srv = self.server()
        res, stats, _ = run([{"url": srv.url("/slow/100"), "repeat": 5}],
                            ["--max-conns", 1, "--max-queue", 2])
        self.assertEqual([res[i].get("status") for i in range(3)], [200] * 3)
        self.assertEqual([(res[i]["error"], res[i]["sync"]) for i in (3, 4)],
                         [("EAGAIN", True)] * 2)
        self.assertEqual(stats["requests"], 3)

    def test_idle_connections_are_closed_and_dns_is_cached(self):
        srv = self.server()
        res, stats, _ = run([{"url": srv.url("/hello", host="localhost")},
                             {"url": srv.url("/hello", host="localhost"), "delay_ms": 600}],
                            ["--idle-ms", 150])
        self.assertEqual([res[0]["status"], res[1]["status"]], [200, 200])
        self.assertEqual(stats["conns_opened"], 2, stats)
        self.assertEqual(stats["conns_reused"], 0, stats)
        self.assertEqual((stats["dns_lookups"], stats["dns_cache_hits"]), (1, 1), stats)
        util.wait_for(lambda: 1 in srv.closed_by_peer, 5, "the idle connection closed")

    def test_stale_connection_is_retried_only_when_allowed(self):
        srv = self.server()
        res, stats, _ = run([{"url": srv.url("/then-close")},
                             {"url": srv.url("/hello"), "after": True, "retry": True}])
        self.assertEqual((res[0]["body"], res[1].get("status")), ("first", 200), res)
        self.assertEqual(stats["stale_retries"], 1, stats)
        self.assertEqual(stats["conns_reused"], 1, stats)
        self.assertEqual(stats["conns_opened"], 2, stats)

        srv = self.server()
        res, stats, _ = run([{"url": srv.url("/then-close")},
                             {"method": "POST", "url": srv.url("/echo"), "after": True,
                              "body": "send once"},
                             {"url": srv.url("/hello"), "after": True}])
        self.assertEqual(res[0]["body"], "first")
        self.assertEqual(res[1].get("error"), "ECONNRESET", res)
        self.assertEqual(res[2].get("status"), 200, res)
        self.assertEqual(stats["stale_retries"], 0, stats)
        self.assertNotIn("/echo", [r[2] for r in srv.requests])

        # the retried request goes first, before those that queued behind it
        srv = self.server()
        res, stats, _ = run([{"url": srv.url("/then-close")},
                             {"url": srv.url("/echo"), "after": True, "retry": True},
                             {"url": srv.url("/hello"), "repeat": 2}],
                            ["--max-conns", 1])
        self.assertEqual([res[i].get("status") for i in range(4)], [200] * 4, res)
        self.assertEqual([r[2] for r in srv.requests], ["/then-close", "/echo", "/hello",
                                                        "/hello"])
        self.assertEqual(stats["stale_retries"], 1, stats)

    def test_unasked_bytes_end_the_connection(self):
        srv = self.server()
        res, stats, _ = run([{"url": srv.url("/extra")},
                             {"url": srv.url("/late-junk"), "after": True},
                             {"url": srv.url("/hello"), "after": True, "delay_ms": 500}])
        self.assertEqual([res[i].get("body") for i in range(3)], ["extra", "late", "hello"])
        self.assertEqual(stats["conns_opened"], 3, stats)
        self.assertEqual(stats["conns_reused"], 0, stats)


class Failures(HttpcCase):
    def test_response_timeout_on_a_stalled_server(self):
        srv = self.server()
        res, _, _ = run([{"url": srv.url("/stall"), "response_ms": 500},
                         {"url": srv.url("/hello"), "after": True}])
        self.assertEqual(res[0].get("error"), "ETIMEDOUT", res)
        self.assertGreaterEqual(res[0]["ms"], 450)
        self.assertLess(res[0]["ms"], 5000)
        self.assertEqual(res[1].get("status"), 200)
        util.wait_for(lambda: 1 in srv.closed_by_peer, 5, "the stalled connection closed")

    def test_total_timeout(self):
        srv = self.server()
        res, _, _ = run([{"url": srv.url("/stall"), "response_ms": 5000, "total_ms": 300}])
        self.assertEqual(res[0].get("error"), "ETIMEDOUT", res)
        self.assertLess(res[0]["ms"], 4000)

    def test_connect_timeout_against_a_full_backlog(self):
        bh = blackhole()
        if not bh:
            self.skipTest("no way to make a connect hang here")
        lst, fillers, port = bh
        try:
            res, _, _ = run([{"url": "http://127.0.0.1:%d/x" % port, "connect_ms": 500}])
        finally:
            for f in fillers:
                f.close()
            lst.close()
        self.assertEqual(res[0].get("error"), "ETIMEDOUT", res)
        self.assertGreaterEqual(res[0]["ms"], 450)
        self.assertLess(res[0]["ms"], 5000)

    def test_tls_handshake_stall_is_a_connect_timeout(self):
        srv = self.server(raw=never_speaks)
        res, _, _ = run([{"url": "https://127.0.0.1:%d/x" % srv.port, "connect_ms": 500}],
                        self.ca_args())
        self.assertEqual(res[0].get("error"), "ETIMEDOUT", res)
        self.assertGreaterEqual(res[0]["ms"], 450)
        self.assertLess(res[0]["ms"], 5000)

    def test_refused_and_unknown_hosts(self):
        port = util.free_port()
        srv = self.server()
        # more names than lookups allowed at once: the rest wait their turn
        res, stats, _ = run([{"url": "http://127.0.0.1:%d/" % port}]
                            + [{"url": "http://no-such-host-%d.invalid/" % i, "connect_ms": 5000}
                               for i in range(3)]
                            + [{"url": srv.url("/hello", host="localhost"), "repeat": 3}])
        self.assertEqual(res[0].get("error"), "ECONNREFUSED", res)
        for i in (1, 2, 3):
            self.assertIn(res[i].get("error"), ("EHOSTUNREACH", "ETIMEDOUT"), res)
        self.assertEqual([res[i].get("status") for i in (4, 5, 6)], [200] * 3, res)
        # three connections waited for one lookup of localhost
        self.assertEqual((stats["dns_lookups"], stats["dns_cache_hits"]), (4, 0), stats)

    def test_unreadable_ca_file(self):
        r = subprocess.run([drive_path(), "--ca", os.path.join(self.tmp, "missing.pem")],
                           input=b"", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 2, err)
        self.assertIn("missing.pem", err)
        self.assertNotRegex(err, SANITIZER)

    def test_size_limit(self):
        for tls in (False, True):
            with self.subTest(tls=tls):
                srv = self.server(tls=tls)
                res, _, _ = run([{"url": srv.url("/cl/50000")},
                                 {"url": srv.url("/chunked/50000")},
                                 {"url": srv.url("/close/50000")},
                                 {"url": srv.url("/headers/200")},
                                 {"url": srv.url("/cl/9000"), "after": True}],
                                self.ca_args("--max-response", 10000))
                for i in range(4):
                    self.assertEqual(res[i].get("error"), "EMSGSIZE", res[i])
                self.assertEqual(res[4].get("status"), 200, res[4])
                self.assertEqual(res[4]["sha256"], sha(payload(9000)))

    def test_certificate_for_another_name(self):
        ctx = self.ca.ssl_context("other", san="subjectAltName=DNS:other.example")
        srv = self.server(tls=True, ctx=ctx)
        res, stats, err = run([{"url": srv.url("/hello")},
                               {"url": srv.url("/hello", host="localhost")}], self.ca_args())
        self.assertEqual([res[0].get("error"), res[1].get("error")], ["EPERM", "EPERM"], res)
        self.assertIn("certificate verify failed", err)
        self.assertEqual(srv.requests, [])

    def test_certificate_from_another_ca(self):
        other = testca.TestCA(os.path.join(self.tmp, "other-ca"))
        srv = self.server(tls=True, ctx=other.ssl_context())
        res, _, err = run([{"url": srv.url("/hello")}], self.ca_args())
        self.assertEqual(res[0].get("error"), "EPERM", res)
        self.assertIn("unable to get local issuer certificate", err)
        # and our own CA is not in the system store
        srv2 = self.server(tls=True)
        res, _, _ = run([{"url": srv2.url("/hello")}])
        self.assertEqual(res[0].get("error"), "EPERM", res)
        self.assertEqual(srv.requests + srv2.requests, [])

    def test_tls_protocol_errors(self):
        plain = self.server(raw=speaks_plain_http)
        srv = self.server(tls=True)
        res, _, err = run([{"url": "https://127.0.0.1:%d/" % plain.port},
                           {"url": srv.url("/tls-junk")}], self.ca_args())
        self.assertEqual([res[0].get("error"), res[1].get("error")], ["EPROTO", "EPROTO"], res)
        self.assertIn("TLS handshake failed", err)
        self.assertIn("TLS read failed", err)

    def test_reset_truncated_and_malformed(self):
        srv = self.server()
        res, _, _ = run([{"url": srv.url("/reset")}, {"url": srv.url("/partial")},
                         {"url": srv.url("/garbage")}, {"url": srv.url("/upgrade")}])
        self.assertEqual([res[i].get("error") for i in range(4)],
                         ["ECONNRESET", "ECONNRESET", "EBADMSG", "EPROTO"], res)

    def test_cancel_and_close(self):
        srv = self.server()
        res, stats, _ = run([{"url": srv.url("/stall"), "cancel_ms": 200},
                             {"url": srv.url("/hello"), "cancel_ms": 0},
                             {"url": srv.url("/hello"), "after": True}])
        self.assertTrue(res[0].get("cancelled"), res)
        self.assertTrue(res[1].get("cancelled"), res)
        self.assertEqual(res[2].get("status"), 200, res)
        util.wait_for(lambda: 1 in srv.closed_by_peer, 5, "the cancelled connection closed")

        # queued requests can be cancelled too, wherever they are in the queue
        srv = self.server()
        res, stats, _ = run([{"url": srv.url("/stall"), "cancel_ms": 300},
                             {"url": srv.url("/echo")},
                             {"url": srv.url("/hello"), "cancel_ms": 100},
                             {"url": srv.url("/hello"), "total_ms": 150}],
                            ["--max-conns", 1])
        self.assertTrue(res[0].get("cancelled"), res)
        self.assertEqual(res[1].get("status"), 200, res)
        self.assertTrue(res[2].get("cancelled"), res)
        self.assertEqual(res[3].get("error"), "ETIMEDOUT", res)
        self.assertEqual([r[2] for r in srv.requests], ["/stall", "/echo"])

        # closing the client ends what is pending, on a connection or queued
        res, stats, _ = run([{"url": srv.url("/stall"), "repeat": 2},
                             {"url": srv.url("/stall", host="localhost")}],
                            ["--max-conns", 1, "--close-after-ms", 300])
        self.assertEqual([res[i].get("error") for i in range(3)], ["ECANCELED"] * 3, res)
        self.assertEqual(stats["queued"], 1, stats)


class Privacy(HttpcCase):
    def test_no_path_query_header_value_or_body_in_the_log(self):
        srv = self.server(tls=True)
        secrets = ["SECRET-TOKEN", "SECRET-QUERY", "SECRET-HEADER", "SECRET-BODY"]
        path = "/echo/bot123456:SECRET-TOKEN/sendMessage?chat_id=SECRET-QUERY"
        res, _, err = run([
            {"method": "POST", "url": srv.url(path), "body": "SECRET-BODY",
             "headers": {"Authorization": "Bearer SECRET-HEADER"}},
            {"url": srv.url("/stall/SECRET-TOKEN?q=SECRET-QUERY"), "response_ms": 200,
             "headers": {"Authorization": "Bearer SECRET-HEADER"}},
            {"url": srv.url("/reset/SECRET-TOKEN")},
        ], self.ca_args("--debug"))
        self.assertEqual(res[0].get("status"), 200, res)
        self.assertIn("SECRET-BODY", res[0]["body"])
        self.assertEqual(res[1].get("error"), "ETIMEDOUT", res)
        self.assertIn("127.0.0.1:%d" % srv.port, err)
        for s in secrets:
            self.assertNotIn(s, err)


if __name__ == "__main__":
    unittest.main()
