"""tests/integration/test_webchat.py - the website chat (issue 15): a visitor's session
(token, signed-in user's hash, pre-chat form off), the Origin check at the session and at
the websocket upgrade, a visitor's message stored once as a conversation's message, the
agent's reply reaching the visitor's socket, resume after a reconnect, isolation between
visitors, and bad inputs answered with clear errors that change nothing.
"""
import hashlib
import hmac
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, util, ws  # noqa: E402
from support.case import HubTestCase  # noqa: E402

ORIGIN = "http://shop.localhost:8090"
SECRET = "webchat-identity-secret-" + os.urandom(8).hex()


class WebchatCase(HubTestCase):
    def start(self):
        cfg = self.config()
        cfg["channels"].append({
            "id": "demo-web", "tenant": "demo", "kind": "web", "account_id": "demo-web",
            "app_secret": SECRET,
            "web": {"origins": [ORIGIN], "title": {"en": "Shop", "ru": "Магазин"},
                    "color": "#0a7cff", "greeting": "Hello!", "prechat": False}})
        return self.start_hubd(cfg)

    def session(self, h, body, origin=ORIGIN, channel="demo-web"):
        hdr = {"Content-Type": "application/json"}
        if origin:
            hdr["Origin"] = origin
        return httpc.request(h.port, "POST", "/webchat/%s/session" % channel,
                             body=json.dumps(body).encode(), headers=hdr)

    def visitor(self, h, token, after=None, origin=ORIGIN):
        c = self.ws(h, path="/ws/visitor/demo-web", subprotocol="bayge.visitor.v1",
                    headers={"Origin": origin})
        m = {"type": "auth", "token": token}
        if after is not None:
            m["after"] = after
        c.send_json(m)
        return c

    def until(self, c, kind):
        seen = []
        while True:
            m = c.recv_json()
            seen.append(m)
            if m["type"] == kind:
                return m, seen

    def test_session_token_and_origin(self):
        h = self.start()
        r = self.session(h, {})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("access-control-allow-origin"), ORIGIN)
        body = json.loads(r.body)
        self.assertTrue(body["token"].startswith("wv1.demo-web."))
        self.assertEqual(body["settings"]["title"]["ru"], "Магазин")
        # the same token again: the same visitor
        r2 = self.session(h, {"token": body["token"]})
        self.assertEqual(r2.status, 200, r2)
        before = self.counts()
        # another origin: 403, no CORS header
        r = self.session(h, {}, origin="http://evil.localhost")
        self.assertEqual(r.status, 403, r)
        self.assertIn(b"origin_not_allowed", r.body)
        self.assertIsNone(r.headers.get("access-control-allow-origin"))
        # unknown channel, a forged token, a malformed body
        self.assertEqual(self.session(h, {}, channel="nope").status, 404)
        r = self.session(h, {"token": body["token"][:-4] + "AAAA"})
        self.assertEqual(r.status, 401, r)
        self.assertIn(b"bad_token", r.body)
        r = httpc.request(h.port, "POST", "/webchat/demo-web/session", body=b"{",
                          headers={"Origin": ORIGIN})
        self.assertEqual(r.status, 400, r)
        # the pre-chat form is off here
        r = self.session(h, {"name": "Aigerim", "phone": "+77011234567"})
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"prechat_off", r.body)
        self.assert_unchanged(before)
        h.assert_alive()

    def test_user_hash(self):
        h = self.start()
        good = hmac.new(SECRET.encode(), b"user-42", hashlib.sha256).hexdigest()
        r = self.session(h, {"user_id": "user-42", "user_hash": good})
        self.assertEqual(r.status, 200, r)
        r = self.session(h, {"user_id": "user-42", "user_hash": "0" * 64})
        self.assertEqual(r.status, 401, r)
        self.assertIn(b"bad_user_hash", r.body)
        r = self.session(h, {"user_id": "user 42", "user_hash": good})
        self.assertEqual(r.status, 400, r)

    def test_upgrade_origin_and_subprotocol(self):
        h = self.start()
        with self.assertRaises(ws.WsHandshakeError) as e:
            ws.WsClient(h.port, path="/ws/visitor/demo-web", subprotocol="bayge.visitor.v1",
                        headers={"Origin": "http://evil.localhost"})
        self.assertIn("403", e.exception.head.split("\r\n")[0])
        with self.assertRaises(ws.WsHandshakeError) as e:
            ws.WsClient(h.port, path="/ws/visitor/demo-web", subprotocol="bayge.v1",
                        headers={"Origin": ORIGIN})
        self.assertIn("400", e.exception.head.split("\r\n")[0])
        # a bad token closes the socket
        c = self.visitor(h, "wv1.demo-web.AAAA.1.AAAA")
        with self.assertRaises(ws.WsClosed) as e:
            c.recv_json()
        self.assertEqual(e.exception.code, 1008)
        h.assert_alive()

    def test_visitor_writes_agent_answers_resume(self):
        h = self.start()
        agent = self.agent(h)
        token = json.loads(self.session(h, {}).body)["token"]
        c = self.visitor(h, token)
        ready, _ = self.until(c, "ready")
        text = "<b>hi</b><script>alert(1)</script> " + os.urandom(4).hex()
        self.no_leak(text)
        c.send_json({"type": "send", "client_id": "c1", "text": text})
        ack, _ = self.until(c, "ack")
        self.assertEqual(ack["client_id"], "c1")
        mid = ack["id"]
        # the same client id again: stored once
        c.send_json({"type": "send", "client_id": "c1", "text": text})
        ack2, _ = self.until(c, "ack")
        self.assertEqual(ack2["id"], mid)
        self.assertEqual(self.count("messages", "text = '%s'" % text.replace("'", "''")), 1)
        ev = agent.event("message.created")
        self.assertEqual(ev["data"]["channel_id"], "demo-web")
        self.assertEqual(ev["data"]["text"], text)
        conv = ev["data"]["conversation_id"]
        # the agent answers; the visitor gets it live
        reply = "Thanks! " + os.urandom(4).hex()
        a = agent.command({"type": "send", "conversation_id": conv, "text": reply,
                           "client_id": "a1"})
        self.assertEqual(a["type"], "ack", a)
        while True:
            m = c.recv_json()
            if m["type"] == "message" and m["message"]["author"] == "agent":
                break
        self.assertEqual(m["message"]["text"], reply)
        cursor = m["cursor"]
        c.close()
        # another visitor sees nothing of it
        other = json.loads(self.session(h, {}).body)["token"]
        o = self.visitor(h, other)
        _, seen = self.until(o, "ready")
        self.assertEqual([x for x in seen if x["type"] == "message"], [])
        # a second reply while the visitor is away; resume gets it and nothing before
        reply2 = "Still there? " + os.urandom(4).hex()
        a = agent.command({"type": "send", "conversation_id": conv, "text": reply2,
                           "client_id": "a2"})
        self.assertEqual(a["type"], "ack", a)
        c2 = self.visitor(h, token, after=cursor)
        _, seen = self.until(c2, "ready")
        texts = [x["message"]["text"] for x in seen if x["type"] == "message"]
        # the reply's event is numbered just after its commit (0020), so the ack can come
        # first: then it arrives live after "ready", still once
        while not texts:
            m = c2.recv_json()
            if m["type"] == "message":
                texts.append(m["message"]["text"])
        self.assertEqual(texts, [reply2])
        # a fresh page: the whole history
        c3 = self.visitor(h, token)
        _, seen = self.until(c3, "ready")
        texts = [x["message"]["text"] for x in seen if x["type"] == "message"]
        self.assertEqual(texts, [text, reply, reply2])
        h.assert_alive()

    def test_bad_frames_and_limits(self):
        h = self.start()
        token = json.loads(self.session(h, {}).body)["token"]
        c = self.visitor(h, token)
        self.until(c, "ready")
        before = self.counts()
        c.send_json({"type": "send", "client_id": "bad id!", "text": "x"})
        self.assertEqual(self.until(c, "error")[0]["code"], "bad_request")
        c.send_json({"type": "send", "client_id": "c9", "text": "x" * 2001})
        self.assertEqual(self.until(c, "error")[0]["code"], "too_long")
        c.send_json({"type": "nope"})
        self.assertEqual(self.until(c, "error")[0]["code"], "bad_request")
        c.send_text("not json")
        self.assertEqual(self.until(c, "error")[0]["code"], "bad_request")
        self.assert_unchanged(before)
        h.assert_alive()

    def visitor_gone(self, c):
        """A round trip on c: the loop has seen what came before (a close)."""
        c.send_json({"type": "ping"})
        self.until(c, "pong")
        return True

    # --- more of the protocol ---
    def talk(self, h, agent, token):
        """A visitor socket that wrote once; returns (socket, conversation id, message id)."""
        c = self.visitor(h, token)
        self.until(c, "ready")
        c.send_json({"type": "send", "client_id": "hello-1", "text": "Hello " + os.urandom(3).hex()})
        ack, _ = self.until(c, "ack")
        conv = agent.event("message.created")["data"]["conversation_id"]
        return c, conv, ack["id"]

    def test_typing_delivered_read_and_seen(self):
        h = self.start()
        agent = self.agent(h)
        token = json.loads(self.session(h, {}).body)["token"]
        c, conv, _ = self.talk(h, agent, token)
        # the visitor types: the agents see it
        c.send_json({"type": "typing"})
        ev = agent.event("typing")
        self.assertEqual(ev["data"]["conversation_id"], conv)
        self.assertEqual(ev["data"]["user"], "visitor")
        # the agent types: the visitor sees it
        self.assertEqual(agent.command({"type": "typing", "conversation_id": conv})["type"],
                         "ack")
        self.until(c, "typing")
        # a reply: delivered once the visitor's socket took it, read once they say so
        a = agent.command({"type": "send", "conversation_id": conv, "text": "Hi!",
                           "client_id": "a1"})
        self.assertEqual(a["type"], "ack", a)
        m, _ = self.until(c, "message")
        while m["message"]["author"] != "agent":
            m, _ = self.until(c, "message")
        mid = m["message"]["id"]
        while True:
            ev = agent.event("message.status")
            if ev["data"]["id"] == mid and ev["data"]["status"] == "delivered":
                break
        c.send_json({"type": "read", "id": mid})
        while True:
            ev = agent.event("message.status")
            if ev["data"]["id"] == mid and ev["data"]["status"] == "read":
                break
        self.assertEqual(self.psql("SELECT status FROM messages WHERE id = %d" % mid), "read")
        # the agent reads the conversation: the visitor sees it
        self.assertEqual(agent.command({"type": "read", "conversation_id": conv})["type"],
                         "ack")
        self.until(c, "seen")
        # a read mark of a message that is not theirs changes nothing
        other = json.loads(self.session(h, {}).body)["token"]
        o, _, _ = self.talk(h, agent, other)
        a = agent.command({"type": "send", "conversation_id": conv, "text": "Second",
                           "client_id": "a2"})
        mid2 = int(self.psql("SELECT id FROM messages WHERE client_id = 'a2'"))
        o.send_json({"type": "read", "id": mid2})
        o.send_json({"type": "ping"})
        self.until(o, "pong")
        self.assertNotEqual(self.psql("SELECT status FROM messages WHERE id = %d" % mid2),
                            "read")

    def test_two_tabs_and_a_cursor_beyond_the_log(self):
        h = self.start()
        agent = self.agent(h)
        token = json.loads(self.session(h, {}).body)["token"]
        a = self.visitor(h, token)
        self.until(a, "ready")
        b = self.visitor(h, token)
        self.until(b, "ready")
        # the first message, from tab a: tab b (open before the visitor had an identity)
        # sees it too, once
        text = "From tab a " + os.urandom(3).hex()
        a.send_json({"type": "send", "client_id": "t1", "text": text})
        self.until(a, "ack")
        m, _ = self.until(b, "message")
        self.assertEqual(m["message"]["text"], text)
        self.assertEqual(m["message"]["author"], "visitor")
        conv = agent.event("message.created")["data"]["conversation_id"]
        # a cursor from nowhere (beyond the log) does not make the socket skip what follows
        c = self.visitor(h, token, after=10 ** 12)
        ready, _ = self.until(c, "ready")
        self.assertLess(ready["cursor"], 10 ** 12)
        reply = "Reply " + os.urandom(3).hex()
        self.assertEqual(agent.command({"type": "send", "conversation_id": conv,
                                        "text": reply, "client_id": "r1"})["type"], "ack")
        for sock in (a, b, c):
            while True:
                m, _ = self.until(sock, "message")
                if m["message"]["text"] == reply:
                    break
        b.send_json({"type": "ping"})
        _, seen = self.until(b, "pong")
        self.assertFalse([x for x in seen if x["type"] == "message"], "a duplicate")

    def test_a_flood_of_frames_is_cut_off(self):
        h = self.start()
        token = json.loads(self.session(h, {}).body)["token"]
        c = self.visitor(h, token)
        self.until(c, "ready")
        before = self.counts()
        errors = 0
        with self.assertRaises(ws.WsClosed) as e:
            for _ in range(200):
                c.send_text("garbage")
            while True:
                if c.recv_json()["type"] == "error":
                    errors += 1
        self.assertEqual((e.exception.code, e.exception.reason),
                         (1008, "rate limit exceeded"))
        self.assertLessEqual(errors, 60)  # the burst (ws.command_burst 40) and refills
        self.assert_unchanged(before)
        h.assert_alive()

    def test_token_of_another_channel(self):
        cfg = self.config()
        for cid, secret in (("demo-web", SECRET), ("demo-web2", SECRET + "-2")):
            cfg["channels"].append({
                "id": cid, "tenant": "demo", "kind": "web", "account_id": cid,
                "app_secret": secret, "web": {"origins": [ORIGIN]}})
        h = self.start_hubd(cfg)
        t2 = json.loads(self.session(h, {}, channel="demo-web2").body)["token"]
        r = self.session(h, {"token": t2})
        self.assertEqual(r.status, 403, r)
        self.assertIn(b"wrong_channel", r.body)
        c = self.visitor(h, t2)
        with self.assertRaises(ws.WsClosed) as e:
            c.recv_json()
        self.assertEqual((e.exception.code, e.exception.reason),
                         (1008, "token of another channel"))
        h.assert_alive()

    def test_limits_per_visitor_and_address(self):
        cfg = self.config({"webchat.messages_per_min": 2, "webchat.sockets_per_visitor": 1,
                           "webchat.sockets_per_address": 3})
        cfg["channels"].append({
            "id": "demo-web", "tenant": "demo", "kind": "web", "account_id": "demo-web",
            "app_secret": SECRET, "web": {"origins": [ORIGIN]}})
        h = self.start_hubd(cfg)
        token = json.loads(self.session(h, {}).body)["token"]
        c = self.visitor(h, token)
        self.until(c, "ready")
        for i in range(2):
            c.send_json({"type": "send", "client_id": "m%d" % i, "text": "hi %d" % i})
            self.until(c, "ack")
        before = self.counts()
        c.send_json({"type": "send", "client_id": "m9", "text": "one too many"})
        self.assertEqual(self.until(c, "error")[0]["code"], "rate_limited")
        self.assert_unchanged(before)
        # a second socket of the same visitor
        c2 = self.visitor(h, token)
        with self.assertRaises(ws.WsClosed) as e:
            c2.recv_json()
        self.assertEqual(e.exception.code, 1013)
        c2.close_socket()
        self.visitor_gone(c)
        # sockets of one address: c, a, b; the next one is over
        a = self.visitor(h, json.loads(self.session(h, {}).body)["token"])
        self.until(a, "ready")
        b = self.visitor(h, json.loads(self.session(h, {}).body)["token"])
        self.until(b, "ready")
        d = self.ws(h, path="/ws/visitor/demo-web", subprotocol="bayge.visitor.v1",
                    headers={"Origin": ORIGIN})
        with self.assertRaises(ws.WsClosed) as e:
            d.recv_json()
        self.assertEqual(e.exception.code, 1013)
        h.assert_alive()


class Prechat(HubTestCase):
    def test_prechat_phone_is_the_whatsapp_contact_once(self):
        cfg = self.config()
        cfg["channels"].append({
            "id": "demo-web", "tenant": "demo", "kind": "web", "account_id": "demo-web",
            "app_secret": SECRET, "web": {"origins": [ORIGIN], "prechat": True}})
        h = self.start_hubd(cfg)
        body, _, sig = self.text_webhook(h, "demo-whatsapp", wa_id="77011234567",
                                         name="Aigerim")
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        wa_contact = self.psql("SELECT contact_id FROM contact_identities "
                               "WHERE external_id = '77011234567'")
        hdr = {"Content-Type": "application/json", "Origin": ORIGIN}

        def session(b):
            return httpc.request(h.port, "POST", "/webchat/demo-web/session",
                                 body=json.dumps(b).encode(), headers=hdr)
        before = self.counts()
        r = session({"name": "Aigerim", "phone": "not a phone"})
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"bad_phone", r.body)
        self.assert_unchanged(before)
        r = session({"name": "Aigerim", "phone": "8 701 123 45 67"})
        self.assertEqual(r.status, 200, r)
        ids = self.psql("SELECT contact_id FROM contact_identities i JOIN channels c ON "
                        "c.id = i.channel_id WHERE c.public_id = 'demo-web'")
        self.assertEqual(ids, wa_contact)
        # another browser typing the same phone is not that contact (it would see its chat)
        r = session({"name": "Someone", "phone": "+77011234567"})
        self.assertEqual(r.status, 200, r)
        ids = self.psql("SELECT contact_id FROM contact_identities i JOIN channels c ON "
                        "c.id = i.channel_id WHERE c.public_id = 'demo-web' ORDER BY i.id")
        self.assertEqual(ids.split("\n")[0], wa_contact)
        self.assertNotIn(wa_contact, ids.split("\n")[1:])


class HubctlWeb(HubTestCase):
    needs_hubctl = True

    def file(self, name, text):
        path = os.path.join(self.out, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_channel_add_web(self):
        h = self.start_hubd()
        secret = "web-secret-" + os.urandom(8).hex()
        self.no_leak(secret)
        sfile = self.file("secret", secret + "\n")
        before = self.count("channels")
        # a bad settings file: the key is named, nothing is added
        bad = self.file("bad.json", json.dumps({"origins": ["shop.kz"]}))
        r = self.hubctl("-c", h.config_path, "channel", "add", "--id", "shop-web",
                        "--tenant", "demo", "--kind", "web", "--app-secret-file", sfile,
                        "--web-file", bad)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("web.origins[0]", r.stderr)
        # no settings at all
        r = self.hubctl("-c", h.config_path, "channel", "add", "--id", "shop-web",
                        "--tenant", "demo", "--kind", "web", "--app-secret-file", sfile)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--web-file", r.stderr)
        self.assertEqual(self.count("channels"), before)
        good = self.file("web.json", json.dumps({"origins": [ORIGIN], "title": "Shop"}))
        r = self.hubctl("-c", h.config_path, "channel", "add", "--id", "shop-web",
                        "--tenant", "demo", "--kind", "web", "--app-secret-file", sfile,
                        "--web-file", good)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(secret, r.stdout + r.stderr)
        # sealed at rest
        stored = self.psql("SELECT app_secret FROM channels WHERE public_id = 'shop-web'")
        self.assertTrue(stored.startswith("hs1:"), "the identity secret is not sealed")
        # served live (NOTIFY): a session with a user hash under that secret
        good_hash = hmac.new(secret.encode(), b"u1", hashlib.sha256).hexdigest()
        hdr = {"Content-Type": "application/json", "Origin": ORIGIN}
        body = json.dumps({"user_id": "u1", "user_hash": good_hash}).encode()

        def served():
            r = httpc.request(h.port, "POST", "/webchat/shop-web/session", body=body,
                              headers=hdr)
            return r if r.status == 200 else None
        r = util.wait_for(served, 10, "the new channel served")
        self.assertIn(b"wv1.shop-web.", r.body)


class Assistant(HubTestCase):
    needs_hubctl = True

    def test_assistant_answers_a_visitor_with_its_disclosure(self):
        from support import fakeai
        ai = fakeai.FakeAI(log_path=os.path.join(self.out, "requests.jsonl"))
        ai.start()
        self.addCleanup(ai.stop)
        cfg = self.config({"outbound.enabled": True, "assistant.retry_base_ms": 50,
                           "assistant.timeout_ms": 3000})
        cfg["channels"].append({
            "id": "demo-web", "tenant": "demo", "kind": "web", "account_id": "demo-web",
            "app_secret": SECRET, "web": {"origins": [ORIGIN]}})
        h = self.start_hubd(cfg)
        r = self.hubctl("-c", h.config_path, "channel", "ai", "demo-web", "--on", "--url",
                        ai.base_url, "--model", "fake-model", "--quiet-ms", "300")
        self.assertEqual(r.returncode, 0, r.stderr)
        hdr = {"Content-Type": "application/json", "Origin": ORIGIN}
        token = json.loads(httpc.request(h.port, "POST", "/webchat/demo-web/session",
                                         body=b"{}", headers=hdr).body)["token"]
        c = self.ws(h, path="/ws/visitor/demo-web", subprotocol="bayge.visitor.v1",
                    headers={"Origin": ORIGIN})
        c.send_json({"type": "auth", "token": token})
        while c.recv_json()["type"] != "ready":
            pass
        c.send_json({"type": "send", "client_id": "q1", "text": "Здравствуйте, есть розы?"})
        while True:
            m = c.recv_json(timeout=30)
            if m["type"] == "message" and m["message"]["author"] == "ai":
                break
        self.assertIn(fakeai.PLAIN["ru"], m["message"]["text"])
        self.assertNotEqual(m["message"]["text"], fakeai.PLAIN["ru"], "no disclosure")
        self.assertEqual(self.count("ai_disclosures"), 1)
        # stored, then sent through the outbox as every platform's reply
        util.wait_for(lambda: self.psql("SELECT status FROM messages WHERE author = 'ai'")
                      in ("sent", "delivered"), 10, "the answer sent")
