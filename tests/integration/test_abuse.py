"""tests/integration/test_abuse.py - HTTP edge cases thrown at the running (ASan) hubd:
each gets its answer, nothing changes, and hubd serves the next client. Trailers (security
issue, finding 1), announced bodies that never come (finding 5), and the review's list
(finding 12): CL+TE, duplicate Content-Length, bare LF, obs-fold, huge chunk sizes, 65
headers, absolute form, CONNECT, %00 and %2e%2e, h2c, Expect: 100-continue, NUL in a
header, slow headers and bodies, and the rest of RFC 9112's musts for a server (Host,
space before a colon, transfer codings, versions).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, whatsapp  # noqa: E402
from support.case import HubTestCase  # noqa: E402


def chunked(method, path, trailers, body=b"", host="127.0.0.1"):
    """A chunked request whose body is body (one chunk) followed by trailers."""
    head = "%s %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % (
        method, path, host)
    out = head.encode()
    if body:
        out += b"%x\r\n%s\r\n" % (len(body), body)
    out += b"0\r\n" + b"".join(b"%s: %s\r\n" % (k, v) for k, v in trailers) + b"\r\n"
    return out


class Trailers(HubTestCase):
    """Security issue, finding 1: trailers once grew the request's head after path and
    query had been taken as pointers into it (a use-after-free before authentication)."""

    def trailers(self, n, size=300):
        return [(b"X-T%d" % i, b"v" * size) for i in range(n)]

    def test_trailers_do_not_touch_the_routed_path(self):
        h = self.start_hubd()
        with httpc.RawConn(h.port) as c:
            c.send(chunked("POST", "/healthz", self.trailers(15)))
            r = c.read_response()
            self.assertEqual(r.status, 405, r)
            self.assertIn("GET", r.headers.get("allow", ""), r)
            # the connection goes on: the next request on it is served
            c.send(httpc.format_request("GET", "/healthz"))
            self.assertEqual(c.read_response().status, 200)
        h.assert_alive()

    def test_trailers_do_not_touch_the_query_of_a_handshake(self):
        h = self.start_hubd()
        token = self.channel(h)["verify_token"]
        path = ("/webhooks/whatsapp/demo-whatsapp?hub.mode=subscribe&hub.challenge=1158201444"
                "&hub.verify_token=" + token)
        with httpc.RawConn(h.port) as c:
            c.send(chunked("GET", path, self.trailers(15)))
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b"1158201444")
        h.assert_alive()

    def test_trailers_after_a_body_are_not_counted_as_headers(self):
        # a body larger than header_max followed by a small trailer is a fine request
        h = self.start_hubd(overrides={"http.header_max": 4096})
        body, wamid, _ = self.text_webhook(h)
        body = body + b" " * 5000
        sig = whatsapp.sign(body, self.channel(h)["app_secret"])
        req = chunked("POST", "/webhooks/whatsapp/demo-whatsapp", [(b"X-After", b"1")],
                      body=body)
        req = req.replace(b"Transfer-Encoding", b"Content-Type: application/json\r\n"
                          b"X-Hub-Signature-256: " + sig.encode() + b"\r\nTransfer-Encoding", 1)
        with httpc.RawConn(h.port) as c:
            c.send(req)
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.count("messages", "external_id = '%s'" % wamid), 1)
        h.assert_alive()

    def test_too_many_trailer_bytes_are_refused(self):
        h = self.start_hubd(overrides={"http.header_max": 4096})
        before = self.counts()
        with httpc.RawConn(h.port) as c:
            c.send(chunked("POST", "/webhooks/whatsapp/demo-whatsapp", self.trailers(40)))
            r = c.read_response()
            self.assertEqual(r.status, 431, r)
        self.assert_unchanged(before)
        self.assertEqual(httpc.get(h.port, "/healthz").status, 200)
        h.assert_alive()


def head(path, headers, method="POST", version="HTTP/1.1"):
    """The bytes of a request head: headers is a list of (name, value) bytes, sent as
    they are (duplicates, odd spacing and all)."""
    return (("%s %s %s\r\n" % (method, path, version)).encode("latin-1") +
            b"".join(k + b": " + v + b"\r\n" for k, v in headers) + b"\r\n")


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def signed_webhook(case, h):
    """(signed body, wamid, the webhook's headers without framing) for demo-whatsapp."""
    body, wamid, sig = case.text_webhook(h)
    return body, wamid, [(b"Host", b"127.0.0.1"), (b"Content-Type", b"application/json"),
                         (b"X-Hub-Signature-256", sig.encode())]


class Edges(HubTestCase):
    """The review's HTTP edge cases (security issue, finding 12), each answered as RFC 9112
    says a server should, with nothing stored and hubd serving the next client. Bodies are
    real signed webhooks: a bad framing around a good signature must not store it."""

    def webhook(self, h):
        return signed_webhook(self, h)

    def refused(self, h, data, status, code, message=None, closed=True):
        """Sends data on a fresh connection: exactly one answer, status with a JSON error
        of code (and message in its text); with closed, "Connection: close" and the
        connection then closed, nothing more answered (no request smuggled behind it).
        Then: nothing stored, hubd serves."""
        before = self.counts()
        with httpc.RawConn(h.port, timeout=10) as c:
            c.send(data)
            r = c.read_response()
            self.assertEqual(r.status, status, r)
            self.assertEqual(r.headers.get("content-type"), "application/json", r)
            err = r.json()["error"]
            self.assertEqual(err["code"], code, r)
            if message:
                self.assertIn(message, err["message"], r)
            if closed:
                self.assertEqual(r.headers.get("connection"), "close", r)
                self.assertTrue(c.peer_closed(10), "the connection was left open")
                self.assertEqual(c.buf, b"", "a second answer followed the refusal")
            else:
                self.assertNotIn("connection", r.headers, r)
                c.send(httpc.format_request("GET", "/healthz"))
                self.assertEqual(c.read_response().status, 200)
        self.assert_unchanged(before)
        h.assert_alive()
        return r

    def test_content_length_with_transfer_encoding_is_400_and_closed(self):
        # RFC 9112 6.1: a server may refuse it and must close after answering; a
        # request hidden behind the body is never answered
        h = self.start_hubd()
        body, _, hdrs = self.webhook(h)
        smuggled = b"POST /webhooks/whatsapp/demo-whatsapp HTTP/1.1\r\nHost: x\r\n\r\n"
        framed = chunk(body) + b"0\r\n\r\n"
        for order in ((b"Content-Length", str(len(framed)).encode()),
                      (b"Transfer-Encoding", b"chunked")), \
                     ((b"Transfer-Encoding", b"chunked"),
                      (b"Content-Length", str(len(framed)).encode())):
            self.refused(h, head("/webhooks/whatsapp/demo-whatsapp", hdrs + list(order)) +
                         framed + smuggled, 400, "bad_request",
                         "Content-Length can't be present with Transfer-Encoding")

    def test_duplicate_content_length_is_400_and_closed(self):
        # RFC 9110 8.6: the same value twice may be refused, different values must be
        h = self.start_hubd()
        body, _, hdrs = self.webhook(h)
        n = str(len(body)).encode()
        for cl in ([(b"Content-Length", n), (b"Content-Length", n)],
                   [(b"Content-Length", n), (b"Content-Length", str(len(body) - 10).encode())],
                   [(b"Content-Length", n + b", " + n)]):
            self.refused(h, head("/webhooks/whatsapp/demo-whatsapp", hdrs + cl) + body,
                         400, "bad_request", "Content-Length")

    def test_bare_lf_line_endings_are_400(self):
        # RFC 9112 2.2: a recipient may take LF alone as a line end; hubd does not, so
        # no server in front can read the lines differently
        h = self.start_hubd()
        body, _, hdrs = self.webhook(h)
        req = head("/webhooks/whatsapp/demo-whatsapp",
                   hdrs + [(b"Content-Length", str(len(body)).encode())]) + body
        self.refused(h, req.replace(b"\r\n", b"\n"), 400, "bad_request",
                     "malformed HTTP request")
        self.refused(h, req.replace(b"application/json\r\n", b"application/json\n", 1), 400,
                     "bad_request", "malformed HTTP request")

    def test_obs_fold_is_400(self):
        # RFC 9112 5.2: obs-fold is refused with 400 (or replaced by spaces); llhttp
        # accepts it, even to continue an empty Transfer-Encoding line
        h = self.start_hubd()
        body, _, hdrs = self.webhook(h)
        n = str(len(body)).encode()
        self.refused(h, head("/webhooks/whatsapp/demo-whatsapp",
                             hdrs + [(b"X-Note", b"a\r\n b"), (b"Content-Length", n)]) + body,
                     400, "bad_request", "obsolete line folding")
        self.refused(h, head("/webhooks/whatsapp/demo-whatsapp",
                             hdrs + [(b"X-Note", b"a\r\n\tb"), (b"Content-Length", n)]) + body,
                     400, "bad_request", "obsolete line folding")
        self.refused(h, head("/webhooks/whatsapp/demo-whatsapp",
                             hdrs + [(b"Transfer-Encoding", b"\r\n chunked")]) +
                     chunk(body) + b"0\r\n\r\n", 400, "bad_request", "obsolete line folding")

    def test_huge_chunk_sizes_are_refused_at_once(self):
        h = self.start_hubd()
        _, _, hdrs = self.webhook(h)
        te = hdrs + [(b"Transfer-Encoding", b"chunked")]
        # more than 64 bits
        self.refused(h, head("/webhooks/whatsapp/demo-whatsapp", te) +
                     b"ffffffffffffffffff\r\nabc", 400, "bad_request", "Chunk size overflow")
        # fits in 64 bits, or just over body_max (64 KiB here): 413 when the size line
        # arrives, not after the body timeout or body_max bytes
        for size in (b"7fffffffffffffff", b"10001"):
            self.refused(h, head("/webhooks/whatsapp/demo-whatsapp", te) + size +
                         b"\r\nabc", 413, "body_too_large")
        # several chunks that together pass body_max
        self.refused(h, head("/webhooks/whatsapp/demo-whatsapp", te) + chunk(b"x" * 40000) +
                     b"8000\r\n", 413, "body_too_large")

    def test_64_headers_pass_65_are_431(self):
        # MAX_HEADERS in daemon/net/http.c is 64 (Host counts)
        h = self.start_hubd()
        for n, status in ((64, 200), (65, 431)):
            hdrs = [(b"Host", b"127.0.0.1")] + [(b"X-H%d" % i, b"v") for i in range(n - 1)]
            data = head("/healthz", hdrs, method="GET")
            if status == 200:
                with httpc.RawConn(h.port) as c:
                    c.send(data)
                    r = c.read_response()
                    self.assertEqual((r.status, r.body), (200, b'{"status":"ok"}'), r)
            else:
                self.refused(h, data, 431, "header_too_large", "too many request headers")

    def test_absolute_form_is_routed_by_its_path(self):
        # RFC 9112 3.2.2: a server must accept the absolute form; the authority is
        # ignored (one site here, as Host is)
        h = self.start_hubd()
        token = self.channel(h)["verify_token"]
        with httpc.RawConn(h.port) as c:
            c.send(head("http://other.example/healthz", [(b"Host", b"127.0.0.1")], "GET"))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b'{"status":"ok"}'), r)
            c.send(head("HTTPS://other.example:8443/webhooks/whatsapp/demo-whatsapp?hub.mode="
                        "subscribe&hub.challenge=42&hub.verify_token=" + token,
                        [(b"Host", b"127.0.0.1")], "GET"))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b"42"), r)
        # another scheme is no absolute form here: its path does not start with "/"
        self.refused(h, head("ftp://other.example/healthz", [(b"Host", b"x")], "GET"), 400,
                     "bad_path", closed=False)

    def test_connect_is_501_and_closed(self):
        # RFC 9110 9.3.6: CONNECT asks for a tunnel; no resource here implements it
        h = self.start_hubd()
        self.refused(h, head("127.0.0.1:5432", [(b"Host", b"127.0.0.1:5432")], "CONNECT") +
                     b"\x00\x00\x00\x08\x04\xd2\x16\x2f", 501, "not_implemented", "CONNECT")

    def test_encoded_nul_and_dot_segments_are_400(self):
        h = self.start_hubd()
        body, _, hdrs = self.webhook(h)
        n = [(b"Content-Length", str(len(body)).encode())]
        for path in ("/webhooks/whatsapp/demo-whatsapp%00", "/webhooks/whatsapp/demo%00x",
                     "/webhooks/whatsapp/%2e%2e/demo-whatsapp",
                     "/webhooks/%2E%2E/whatsapp/demo-whatsapp",
                     "/webhooks/whatsapp/../whatsapp/demo-whatsapp",
                     "/webhooks/whatsapp/%2e"):
            # a malformed path is the request's problem, not the connection's
            self.refused(h, head(path, hdrs + n) + body, 400, "bad_path", closed=False)

    def test_h2c_upgrade_is_ignored(self):
        # RFC 9110 7.8: a server may ignore Upgrade and answer in HTTP/1.1 (never 101 to
        # a protocol it does not speak); bytes after it are not read as requests
        h = self.start_hubd()
        with httpc.RawConn(h.port) as c:
            c.send(head("/healthz", [(b"Host", b"127.0.0.1"),
                                     (b"Connection", b"Upgrade, HTTP2-Settings"),
                                     (b"Upgrade", b"h2c"),
                                     (b"HTTP2-Settings", b"AAMAAABkAARAAAAAAAIAAAAA")], "GET") +
                   head("/nope", [(b"Host", b"127.0.0.1")], "GET"))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b'{"status":"ok"}'), r)
            self.assertEqual(r.headers.get("connection"), "close", r)
            self.assertNotIn("upgrade", r.headers)
            self.assertTrue(c.peer_closed(10))
            self.assertEqual(c.buf, b"")
        # HTTP/2 with prior knowledge is no HTTP/1.x request
        self.refused(h, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "bad_request")
        h.assert_alive()

    def test_expect_100_continue(self):
        h = self.start_hubd()
        body, wamid, hdrs = self.webhook(h)
        with httpc.RawConn(h.port) as c:
            c.send(head("/webhooks/whatsapp/demo-whatsapp",
                        hdrs + [(b"Content-Length", str(len(body)).encode()),
                                (b"Expect", b"100-continue")]))
            r = c.read_response()
            self.assertEqual(r.status, 100, r)
            c.send(body)
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
        self.assertEqual(self.count("messages", "external_id = '%s'" % wamid), 1)
        # a body over body_max: the final answer at once, no 100
        self.refused(h, head("/webhooks/whatsapp/demo-whatsapp",
                             hdrs + [(b"Content-Length", b"70000"),
                                     (b"Expect", b"100-continue")]), 413, "body_too_large")
        # no body to wait for: no 100
        with httpc.RawConn(h.port) as c:
            c.send(head("/healthz", [(b"Host", b"127.0.0.1"), (b"Expect", b"100-continue")],
                        "GET"))
            self.assertEqual(c.read_response().status, 200)

    def test_nul_in_a_header_value_is_400(self):
        h = self.start_hubd()
        body, _, hdrs = self.webhook(h)
        self.refused(h, head("/webhooks/whatsapp/demo-whatsapp",
                             hdrs + [(b"X-Note", b"a\x00b"),
                                     (b"Content-Length", str(len(body)).encode())]) + body,
                     400, "bad_request", "Invalid header value char")

    def test_slow_headers_and_slow_body_are_408(self):
        h = self.start_hubd(overrides={"http.header_timeout_ms": 600,
                                       "http.body_timeout_ms": 600})
        body, _, hdrs = self.webhook(h)
        before = self.counts()
        req = head("/webhooks/whatsapp/demo-whatsapp",
                   hdrs + [(b"Content-Length", str(len(body)).encode())])
        cut = req.index(b"sha256=") + 10  # inside the signature's value
        slow_head = httpc.RawConn(h.port)
        slow_body = httpc.RawConn(h.port)
        try:
            slow_head.send(req[:cut])
            slow_body.send(req + body[:10])
            # others are served meanwhile
            for _ in range(3):
                self.assertEqual(httpc.get(h.port, "/healthz").status, 200)
            # a trickle does not extend the deadline
            for c, what, more in ((slow_head, "headers", req[cut:cut + 1]),
                                  (slow_body, "body", body[10:11])):
                c.send(more)
                r = c.read_response(timeout=10)
                self.assertEqual(r.status, 408, (what, r))
                self.assertEqual(r.json()["error"]["code"], "timeout", r)
                self.assertEqual(r.headers.get("connection"), "close", r)
                self.assertTrue(c.peer_closed(10), what)
        finally:
            slow_head.close()
            slow_body.close()
        self.assert_unchanged(before)
        h.assert_alive()

    def test_host_is_required_once(self):
        # RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, with two, or with a
        # value that is no host[:port]
        h = self.start_hubd()
        body, _, hdrs = self.webhook(h)
        rest = [x for x in hdrs if x[0] != b"Host"] + [(b"Content-Length",
                                                        str(len(body)).encode())]
        for hosts, why in (([], "missing"), ([(b"Host", b"a"), (b"Host", b"b")], "more than one"),
                           ([(b"Host", b"a b")], "not a host"),
                           ([(b"Host", b"a/b")], "not a host")):
            self.refused(h, head("/webhooks/whatsapp/demo-whatsapp", hosts + rest) + body,
                         400, "bad_request", why)
        # HTTP/1.0 may omit it
        with httpc.RawConn(h.port) as c:
            c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)

    def test_whitespace_before_a_colon_is_400(self):
        # RFC 9112 5.1: must be refused (llhttp 8.1 takes "Transfer-Encoding " for a name,
        # which a server in front may read as Transfer-Encoding)
        h = self.start_hubd()
        body, _, hdrs = self.webhook(h)
        n = [(b"Content-Length", str(len(body)).encode())]
        self.refused(h, head("/webhooks/whatsapp/demo-whatsapp",
                             hdrs + [(b"X-Note ", b"x")] + n) + body,
                     400, "bad_request", "whitespace in a header field name")
        # llhttp refuses these by itself
        self.refused(h, head("/webhooks/whatsapp/demo-whatsapp",
                             hdrs + [(b"Transfer-Encoding ", b"chunked")] + n) + body,
                     400, "bad_request", "Invalid header field char")
        self.refused(h, head("/webhooks/whatsapp/demo-whatsapp",
                             hdrs + [(b"X-Note\t", b"x")] + n) + body,
                     400, "bad_request", "Invalid header token")

    def test_transfer_codings_other_than_chunked(self):
        # RFC 9112 6.1: an unknown coding is 501; a coding in HTTP/1.0 is faulty framing
        h = self.start_hubd()
        body, _, hdrs = self.webhook(h)
        framed = chunk(body) + b"0\r\n\r\n"
        # ("identity" is no coding since RFC 7230)
        for te in (b"gzip, chunked", b"deflate,chunked", b"identity, chunked"):
            self.refused(h, head("/webhooks/whatsapp/demo-whatsapp",
                                 hdrs + [(b"Transfer-Encoding", te)]) + framed,
                         501, "not_implemented", "chunked")
        # RFC 9112 6.3: chunked not last, the length of the body is unknown: 400
        for te in (b"chunked, gzip", b"gzip", b"chunked;x=1"):
            self.refused(h, head("/webhooks/whatsapp/demo-whatsapp",
                                 hdrs + [(b"Transfer-Encoding", te)]) + framed,
                         400, "bad_request", "Transfer-Encoding")
        self.refused(h, head("/webhooks/whatsapp/demo-whatsapp",
                             hdrs + [(b"Transfer-Encoding", b"chunked"),
                                     (b"Transfer-Encoding", b"chunked")]) + framed,
                     400, "bad_request", "Transfer-Encoding")
        self.refused(h, head("/webhooks/whatsapp/demo-whatsapp",
                             hdrs + [(b"Transfer-Encoding", b"chunked")], version="HTTP/1.0") +
                     framed, 400, "bad_request", "HTTP/1.0")

    def test_other_http_versions_are_505(self):
        h = self.start_hubd()
        for line in (b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", b"GET /healthz\r\n\r\n"):
            self.refused(h, line, 505, "http_version_not_supported")


class AnnouncedBodies(HubTestCase):
    """Security issue, finding 5: a Content-Length made hubd reserve the whole announced
    body (rounded up to a power of two) before a byte of it came."""

    N = 100

    @staticmethod
    def vm_kib(pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1])
        raise AssertionError("no VmSize for %d" % pid)

    def test_announced_bodies_take_memory_as_they_arrive(self):
        big = 64 << 20
        # a body timeout long enough that no connection is cut while they are counted
        h = self.start_hubd(overrides={"http.body_max": big, "http.body_timeout_ms": 10000,
                                       "http.max_connections": self.N + 20})
        _, _, hdrs = signed_webhook(self, h)
        before = self.counts()
        vm0 = peak = self.vm_kib(h.proc.pid)
        conns = []
        try:
            for _ in range(self.N):
                c = httpc.RawConn(h.port, timeout=30)
                conns.append(c)
                # Expect: the 100 says the head was read (and the body reserved)
                c.send(head("/webhooks/whatsapp/demo-whatsapp",
                            hdrs + [(b"Content-Length", str(big).encode()),
                                    (b"Expect", b"100-continue")]))
            for c in conns:
                self.assertEqual(c.read_response().status, 100)
                c.send(b'{"object":')
                peak = max(peak, self.vm_kib(h.proc.pid))
            self.assertEqual(httpc.get(h.port, "/healthz").status, 200)
            peak = max(peak, self.vm_kib(h.proc.pid))
            grown = (peak - vm0) * 1024
            announced = self.N * big
            # before the fix: N x 128 MiB; now about N x 64 KiB (and the read buffers)
            self.assertLess(grown, announced // 32,
                            "VmSize grew by %d MiB for %d MiB announced"
                            % (grown >> 20, announced >> 20))
            h.assert_alive()
            for c in conns:
                r = c.read_response(timeout=30)
                self.assertEqual(r.status, 408, r)
                self.assertEqual(r.json()["error"]["code"], "timeout")
        finally:
            for c in conns:
                c.close()
        self.assert_unchanged(before)
        h.assert_alive()
