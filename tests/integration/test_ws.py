"""tests/integration/test_ws.py - the live inbox websocket: subprotocol bayge.v1, the auth
frame (valid → hello; expired, forged, alg none, malformed → close 1008 with a reason),
and a socket that never authenticates is closed after ws.auth_timeout_ms.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import ws  # noqa: E402
from support.case import HubTestCase  # noqa: E402


class Auth(HubTestCase):
    def refused(self, h, token, reason_re):
        c = self.ws(h)
        c.send_json({"type": "auth", "token": token})
        code, reason = c.wait_close(10)
        self.assertEqual(code, 1008, reason)
        self.assertRegex(reason.lower(), reason_re)
        self.assertNotIn(token, reason)
        self.assertFalse([m for m in c.skipped if b"hello" in m[1]], "hello before refusal")
        h.assert_alive()

    def test_valid_token_gets_hello(self):
        h = self.start_hubd()
        c = self.ws(h)
        self.assertEqual(c.headers.get("sec-websocket-protocol"), "bayge.v1")
        hello = c.auth(self.token(h, "demo"))
        self.assertEqual(hello["type"], "hello")
        self.assertIsInstance(hello["last_event_id"], int)

    def test_expired_token(self):
        h = self.start_hubd()
        self.refused(h, self.token(h, exp=int(time.time()) - 60), r"expired")

    def test_forged_token(self):
        h = self.start_hubd()
        self.refused(h, self.token(h, secret="not-the-secret-" + os.urandom(8).hex()),
                     r"signature")

    def test_alg_none_token(self):
        h = self.start_hubd()
        self.refused(h, self.token(h, alg="none"), r"alg|none|signature")

    def test_malformed_tokens(self):
        h = self.start_hubd()
        self.refused(h, "not-a-jwt-" + os.urandom(4).hex(), r"malformed|invalid")
        self.refused(h, "e30.e30." + os.urandom(4).hex(), r"malformed|invalid|alg|signature")

    def test_silent_socket_closed_after_auth_timeout(self):
        h = self.start_hubd(overrides={"ws.auth_timeout_ms": 500})
        c = self.ws(h)
        code, _ = c.wait_close(10)
        self.assertIn(code, (1008, 1001, 1000, None))
        self.assertEqual(c.skipped, [])
        h.assert_alive()

    def test_wrong_subprotocol_refused(self):
        h = self.start_hubd()
        with self.assertRaises((ws.WsHandshakeError, ws.WsClosed, ConnectionError)):
            c = ws.WsClient(h.port, subprotocol="chat.v9")
            self.addCleanup(c.close_socket)
        h.assert_alive()
