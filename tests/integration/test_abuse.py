"""tests/integration/test_abuse.py - HTTP edge cases thrown at the running (ASan) hubd:
each gets its answer, nothing changes, and hubd serves the next client.
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
