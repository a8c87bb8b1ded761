"""tests/integration/test_webhook.py - WhatsApp webhooks end to end: the GET handshake, a
signed message stored once and pushed to the agents of its tenant only, and every bad
input answered with its error while nothing changes; the database going away and back.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, hubd, whatsapp  # noqa: E402
from support.case import HubTestCase  # noqa: E402

MESSAGE_KEYS = {"id", "conversation_id", "contact_id", "channel_id", "direction", "author",
                "type", "text", "status", "platform_ts", "created_at"}


class Handshake(HubTestCase):
    def verify(self, h, cid, token, challenge="1158201444"):
        return httpc.get(h.port, "/webhooks/whatsapp/%s?hub.mode=subscribe&hub.challenge=%s"
                                 "&hub.verify_token=%s" % (cid, challenge, token))

    def test_right_token_echoes_the_challenge(self):
        h = self.start_hubd()
        r = self.verify(h, "demo-whatsapp", self.channel(h)["verify_token"])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"1158201444")
        self.assertTrue(r.headers["content-type"].startswith("text/plain"), r)

    def test_the_echo_is_not_sniffed(self):
        # security issue, finding 10: the echoed challenge is plain text to a browser too
        h = self.start_hubd()
        r = self.verify(h, "demo-whatsapp", self.channel(h)["verify_token"],
                        challenge="a-Z_0.9" + "7" * 57)
        self.assertEqual((r.status, r.body), (200, b"a-Z_0.9" + b"7" * 57), r)
        self.assertEqual(r.headers.get("x-content-type-options"), "nosniff", r)
        self.assertEqual(r.headers.get("content-type"), "text/plain; charset=utf-8", r)

    def test_only_what_a_challenge_can_be_is_echoed(self):
        # Meta's challenges are digits: 1 to 64 of [A-Za-z0-9_.-] are echoed, the rest is
        # 400 with nothing of it in the answer
        h = self.start_hubd()
        token = self.channel(h)["verify_token"]
        before = self.counts()
        for challenge, echoed in (("%3Cscript%3Ealert(1)%3C%2Fscript%3E", b"script"),
                                  ("1" * 65, b"1" * 65), ("", None),
                                  ("12%0D%0AX-Evil:%201", b"Evil"), ("caf%C3%A9", b"caf"),
                                  ("1+2", None), ("12%2034", None)):
            r = self.verify(h, "demo-whatsapp", token, challenge=challenge)
            self.assertEqual(r.status, 400, (challenge, r))
            self.assertIn(r.json()["error"]["code"], ("bad_challenge", "bad_handshake"), r)
            if echoed:
                self.assertNotIn(echoed, r.body)
                self.assertNotIn("x-evil", r.headers)
        self.assert_unchanged(before)
        h.assert_alive()

    def test_wrong_token_is_403(self):
        h = self.start_hubd()
        # acme's token is a real token, but not demo's
        r = self.verify(h, "demo-whatsapp", self.channel(h, "acme-whatsapp")["verify_token"])
        self.assertEqual(r.status, 403)
        self.assertNotIn(b"1158201444", r.body)

    def test_unknown_channel_is_404(self):
        h = self.start_hubd()
        r = self.verify(h, "nope-whatsapp", self.channel(h)["verify_token"])
        self.assertEqual(r.status, 404)
        self.assertNotIn(b"1158201444", r.body)


class Ingest(HubTestCase):
    def test_signed_message_is_stored_and_reaches_only_its_tenant(self):
        h = self.start_hubd()
        demo = self.agent(h, "demo")
        acme = self.agent(h, "acme", sub="agent-acme")
        text = self.unique_text()
        body, wamid, sig = self.text_webhook(h, text=text)
        r = self.post_webhook(h, "demo-whatsapp", body, sig)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.count("messages"), 1)
        self.assertEqual(self.psql("SELECT text FROM messages WHERE external_id = '%s'"
                                   % wamid), text)
        self.assertEqual(self.psql("SELECT direction FROM messages"), "in")

        # a new contact's first message: contact.updated, conversation.created, then it
        events = [demo.recv_json() for _ in range(3)]
        self.assertEqual([e["event"] for e in events],
                         ["contact.updated", "conversation.created", "message.created"], events)
        self.assertEqual([e["id"] for e in events], [events[0]["id"] + i for i in range(3)])
        ev = events[2]
        self.assertEqual(ev["type"], "event")
        self.assertIsInstance(ev["id"], int)
        self.assertLessEqual(MESSAGE_KEYS, set(ev["data"]), ev)
        self.assertEqual((ev["data"]["text"], ev["data"]["direction"], ev["data"]["type"]),
                         (text, "in", "text"))
        # acme's agent gets acme's message as its first event, never demo's
        text2 = self.unique_text()
        body2, _, sig2 = self.text_webhook(h, "acme-whatsapp", text=text2)
        self.assertEqual(self.post_webhook(h, "acme-whatsapp", body2, sig2).status, 200)
        first = [acme.recv_json() for _ in range(3)]
        self.assertEqual([e["event"] for e in first],
                         ["contact.updated", "conversation.created", "message.created"], first)
        self.assertEqual(first[1]["data"]["channel_id"], "acme-whatsapp")
        self.assertEqual(first[2]["data"]["text"], text2)
        # and demo's agent does not get acme's: its next event is demo's next message
        body3, _, sig3 = self.text_webhook(h)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body3, sig3).status, 200)
        later = [demo.recv_json() for _ in range(2)]
        self.assertEqual([e["event"] for e in later],
                         ["conversation.updated", "message.created"], later)
        self.assertEqual({e["data"]["channel_id"] for e in later}, {"demo-whatsapp"})
        self.assertNotEqual(later[1]["data"]["text"], text2)
        self.assertEqual(self.count("messages"), 3)

    def test_upper_case_hex_signature_is_accepted(self):
        h = self.start_hubd()
        body, wamid, _ = self.text_webhook(h)
        sig = whatsapp.sign(body, self.channel(h)["app_secret"], upper=True)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertEqual(self.count("messages", "external_id = '%s'" % wamid), 1)

    def test_retried_webhook_is_stored_once(self):
        h = self.start_hubd()
        body, wamid, sig = self.text_webhook(h)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        after_first = self.counts()
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertEqual(self.count("messages"), 1)
        self.assertEqual(self.counts(), after_first)

    def test_same_phone_is_one_contact(self):
        h = self.start_hubd()
        for _ in range(2):
            body, _, sig = self.text_webhook(h)
            self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertEqual(self.count("messages"), 2)
        self.assertEqual(self.count("contacts"), 1)
        self.assertEqual(self.count("conversations"), 1)


class BadInput(HubTestCase):
    """Every bad request gets its error, changes nothing, and hubd still answers."""

    def refused(self, h, status, cid, body, signature=None, headers=None):
        before = self.counts()
        r = self.post_webhook(h, cid, body, signature, headers)
        self.assertEqual(r.status, status, r)
        err = r.json()["error"]
        self.assertIsInstance(err["code"], str)
        self.assert_unchanged(before)
        h.assert_alive()
        return r

    def test_bad_signature_is_401(self):
        h = self.start_hubd()
        body, _, _ = self.text_webhook(h)
        self.refused(h, 401, "demo-whatsapp", body, "sha256=00")
        wrong = whatsapp.sign(body, self.channel(h, "acme-whatsapp")["app_secret"])
        self.refused(h, 401, "demo-whatsapp", body, wrong)
        self.refused(h, 401, "demo-whatsapp", body, "sha1=" + "0" * 40)

    def test_missing_signature_is_401(self):
        h = self.start_hubd()
        body, _, _ = self.text_webhook(h)
        self.refused(h, 401, "demo-whatsapp", body)

    def test_signature_of_other_bytes_is_401(self):
        h = self.start_hubd()
        body, _, sig = self.text_webhook(h)
        self.refused(h, 401, "demo-whatsapp", body.replace(b'"text"', b'"text" '), sig)

    def test_unknown_channel_is_404(self):
        h = self.start_hubd()
        body, _, sig = self.text_webhook(h)
        self.refused(h, 404, "nope-whatsapp", body, sig)

    def test_body_over_the_limit_is_413(self):
        h = self.start_hubd(overrides={"http.body_max": 65536})
        body, _, sig = self.text_webhook(h, text="z" * 70000 + os.urandom(4).hex())
        before = self.counts()
        req = httpc.format_request("POST", "/webhooks/whatsapp/demo-whatsapp", body,
                                   {"Content-Type": "application/json",
                                    "X-Hub-Signature-256": sig})
        with httpc.RawConn(h.port) as c:
            c.send(req)     # may be cut short once hubd has answered
            r = c.read_response()
        self.assertEqual(r.status, 413)
        self.assert_unchanged(before)
        h.assert_alive()

    def test_malformed_json_is_400(self):
        h = self.start_hubd()
        body = b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":['
        sig = whatsapp.sign(body, self.channel(h)["app_secret"])
        self.refused(h, 400, "demo-whatsapp", body, sig)


class DatabaseDown(HubTestCase):
    def test_503_while_down_and_the_retry_is_stored_after(self):
        server, url = self.own_pg()
        h = self.start_hubd(self.config(db_url=url))
        self.assertEqual(httpc.get(h.port, "/readyz").status, 200)
        body, wamid, sig = self.text_webhook(h)

        server.stop()
        r = self.post_webhook(h, "demo-whatsapp", body, sig)
        self.assertEqual(r.status, 503, r)
        self.assertIn("error", r.json())
        hubd.wait_http(h.port, "/readyz", 503, 30)
        h.assert_alive()

        server.start()
        hubd.wait_http(h.port, "/readyz", 200, 60)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertEqual(self.count("messages", "external_id = '%s'" % wamid,
                                    server=server, db="hub"), 1)


if __name__ == "__main__":
    import unittest
    unittest.main()
