"""tests/integration/test_fakeplat.py - the fake platform servers (support/fakeplat.py)
checked by themselves over real TLS with the test CA: a send per platform and what was
recorded, every error mode's exact status and body, keep-alive, chunked answers, stall and
reset, Telegram long polling (hold, release, acknowledgement, conflicts), media, the
status/echo webhooks to a stand-in hub, the certificate check, and the command line.
Needs neither hubd nor PostgreSQL.
"""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import fakeplat, testca, util  # noqa: E402

CA = None
CA_DIR = None
PNID = "106540352242922"
IG_ACCOUNT = "17841471550633446"
IGSID = "1090651699462050"
WA_TOKEN = "EAAGtest-" + os.urandom(8).hex()
IG_TOKEN = "IGAAtest-" + os.urandom(8).hex()
BOT = "7012345678:AAH" + os.urandom(8).hex()


def setUpModule():
    global CA, CA_DIR
    CA_DIR = tempfile.mkdtemp(prefix="hubt-fakeplat-")
    CA = testca.TestCA(CA_DIR)


def tearDownModule():
    shutil.rmtree(CA_DIR, ignore_errors=True)


def client_ctx():
    return ssl.create_default_context(cafile=CA.ca)


class Resp:
    def __init__(self, r):
        self.status = r.status
        self.headers = {k.lower(): v for k, v in r.getheaders()}
        self.body = r.read()

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Resp %d %r>" % (self.status, self.body[:300])


class HubStandIn:
    """A plain-HTTP stand-in for hubd's webhook endpoint: records every POST and answers
    the statuses queued in `answers` (then 200)."""

    def __init__(self):
        self.posts = []
        self.answers = []
        self.cond = threading.Condition()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.cond:
                    status = outer.answers.pop(0) if outer.answers else 200
                    outer.posts.append({"path": self.path, "body": body, "status": status,
                                        "headers": {k.lower(): v for k, v in
                                                    self.headers.items()}})
                    outer.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def wait(self, n, timeout=5):
        end = time.monotonic() + timeout
        with self.cond:
            while len([p for p in self.posts if p["status"] == 200]) < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError("hub stand-in: %d posts: %r" % (len(self.posts),
                                                                        self.posts))
                self.cond.wait(left)
            return [p for p in self.posts if p["status"] == 200]

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class FakeCase(unittest.TestCase):
    def fake(self, kind, **kw):
        srv = fakeplat.FakePlatform(kind, CA, **kw).start()
        self.addCleanup(srv.stop)
        return srv

    def conn(self, srv, timeout=5, ctx=None):
        c = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=timeout,
                                        context=ctx or client_ctx())
        self.addCleanup(c.close)
        return c

    def call(self, srv, method, path, body=None, headers=None, conn=None, raw=False):
        c = conn or self.conn(srv)
        hdr = dict(headers or {})
        if body is not None and not raw:
            body = json.dumps(body, ensure_ascii=False).encode()
            hdr.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=hdr)
        return Resp(c.getresponse())

    def wa_send(self, srv, text="Сәлем!", to="+77011234567", token=WA_TOKEN, **kw):
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                "type": "text", "text": {"body": text}}
        body.update(kw)
        hdr = {"Authorization": "Bearer " + token} if token else {}
        return self.call(srv, "POST", "/v23.0/%s/messages" % PNID, body, hdr)

    def tg(self, srv, method, body=None, token=BOT, conn=None):
        return self.call(srv, "POST", "/bot%s/%s" % (token, method), body or {}, conn=conn)

    def ig_send(self, srv, text="Hello!", token=IG_TOKEN, rid=IGSID):
        return self.call(srv, "POST", "/v23.0/me/messages",
                         {"recipient": {"id": rid}, "message": {"text": text}},
                         {"Authorization": "Bearer " + token})

    def meta_error(self, resp, status):
        """The error object of a Meta error answer, fbtrace_id checked and removed."""
        self.assertEqual(resp.status, status, resp)
        self.assertTrue(resp.headers["content-type"].startswith("application/json"), resp)
        doc = resp.json()
        self.assertEqual(list(doc), ["error"], doc)
        err = doc["error"]
        trace = err.pop("fbtrace_id")
        self.assertIsInstance(trace, str)
        self.assertGreaterEqual(len(trace), 8)
        return err


class Sends(FakeCase):
    def test_whatsapp_send_is_answered_and_recorded(self):
        srv = self.fake("whatsapp")
        srv.expect_token(WA_TOKEN)
        r = self.wa_send(srv, context={"message_id": "wamid.X"})
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(set(doc), {"messaging_product", "contacts", "messages"})
        self.assertEqual(doc["messaging_product"], "whatsapp")
        self.assertEqual(doc["contacts"], [{"input": "+77011234567", "wa_id": "77011234567"}])
        wamid = doc["messages"][0]["id"]
        self.assertTrue(wamid.startswith("wamid."), wamid)
        req = srv.wait_requests(1)[0]
        self.assertEqual((req.method, req.path, req.op, req.status), ("POST",
                         "/v23.0/%s/messages" % PNID, "send", 200))
        self.assertEqual(req.headers["authorization"], "Bearer " + WA_TOKEN)
        self.assertEqual(req.json["text"]["body"], "Сәлем!")
        self.assertEqual(json.loads(req.body), req.json)
        self.assertEqual(req.result_id, wamid)
        self.assertEqual(req.answer, doc)
        self.assertLessEqual(req.t, time.monotonic())
        self.assertTrue(req.done.wait(2))
        # ids are unique
        self.assertNotEqual(self.wa_send(srv).json()["messages"][0]["id"], wamid)

    def test_whatsapp_validates_like_the_platform(self):
        srv = self.fake("whatsapp")
        self.assertEqual(self.wa_send(srv, text="ж" * 4096).status, 200)
        err = self.meta_error(self.wa_send(srv, text="ж" * 4097), 400)
        self.assertEqual(err["code"], 100)
        self.assertIn("4096", err["error_data"]["details"])
        self.assertEqual(self.meta_error(self.wa_send(srv, text=""), 400)["code"], 100)
        bad = {"messaging_product": "whatsapp", "to": "77011234567", "text": {"body": "x"}}
        self.assertEqual(self.meta_error(self.call(
            srv, "POST", "/v23.0/%s/messages" % PNID, bad), 400)["code"], 100)
        bad = {"messaging_product": "sms", "to": "7701", "type": "text", "text": {"body": "x"}}
        self.meta_error(self.call(srv, "POST", "/v23.0/%s/messages" % PNID, bad), 400)
        self.meta_error(self.call(srv, "POST", "/v23.0/%s/messages" % PNID, b"{not json",
                                  raw=True), 400)
        # mark as read
        r = self.call(srv, "POST", "/v23.0/%s/messages" % PNID,
                      {"messaging_product": "whatsapp", "status": "read",
                       "message_id": "wamid.X"})
        self.assertEqual((r.status, r.json()), (200, {"success": True}))
        reqs = srv.requests
        self.assertEqual([q.status for q in reqs], [200, 400, 400, 400, 400, 400, 200])
        self.assertEqual(reqs[-1].op, "mark_read")
        self.assertIsNone(reqs[-2].json)
        self.assertEqual(reqs[-2].body, b"{not json")

    def test_whatsapp_token_is_checked_when_configured(self):
        srv = self.fake("whatsapp")
        self.assertEqual(self.wa_send(srv, token=None).status, 200)  # none configured
        srv.expect_token(WA_TOKEN)
        for tok in (None, "wrong"):
            err = self.meta_error(self.wa_send(srv, token=tok), 401)
            self.assertEqual(err["code"], 190)
            self.assertEqual(err["type"], "OAuthException")
        self.assertEqual(self.wa_send(srv).status, 200)
        self.assertEqual(len(srv.requests), 4)

    def test_telegram_send_message(self):
        srv = self.fake("telegram")
        ids = []
        for chat in (23, 23, "24", 23):
            r = self.tg(srv, "sendMessage", {"chat_id": chat, "text": "Сәлем 👋",
                                             "reply_parameters": {"message_id": 1}})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers["content-type"], "application/json")
            doc = r.json()
            self.assertIs(doc["ok"], True)
            res = doc["result"]
            self.assertEqual(res["chat"], {"id": int(chat), "first_name": "Aigerim",
                                           "type": "private"})
            self.assertEqual(res["text"], "Сәлем 👋")
            self.assertLess(abs(res["date"] - time.time()), 5)
            ids.append(res["message_id"])
        self.assertEqual(ids, [1, 2, 1, 3])
        req = srv.requests[0]
        self.assertEqual((req.path, req.op), ("/bot%s/sendMessage" % BOT, "sendMessage"))
        self.assertNotIn("authorization", req.headers)
        self.assertEqual(req.json["chat_id"], 23)
        # 4096 UTF-16 units: 2048 emoji fit, one more does not
        self.assertEqual(self.tg(srv, "sendMessage", {"chat_id": 5, "text": "😀" * 2048})
                         .status, 200)
        r = self.tg(srv, "sendMessage", {"chat_id": 5, "text": "😀" * 2048 + "a"})
        self.assertEqual((r.status, r.json()), (400, {
            "ok": False, "error_code": 400, "description": "Bad Request: message is too long"}))
        r = self.tg(srv, "sendMessage", {"text": "x"})
        self.assertEqual(r.json()["description"], "Bad Request: chat_id is empty")
        r = self.tg(srv, "sendMessage", {"chat_id": 5})
        self.assertEqual(r.json()["description"], "Bad Request: message text is empty")
        # form parameters work too
        r = self.call(srv, "POST", "/bot%s/sendMessage" % BOT, b"chat_id=5&text=hi",
                      {"Content-Type": "application/x-www-form-urlencoded"}, raw=True)
        self.assertEqual(r.json()["result"]["message_id"], 2)
        srv.expect_token(BOT)
        r = self.tg(srv, "sendMessage", {"chat_id": 5, "text": "x"}, token="1:wrong")
        self.assertEqual((r.status, r.json()), (401, {"ok": False, "error_code": 401,
                                                      "description": "Unauthorized"}))
        self.assertEqual(len(srv.requests), 10)

    def test_telegram_photo_document_and_get_file(self):
        srv = self.fake("telegram")
        r = self.tg(srv, "sendPhoto", {"chat_id": 23, "photo": "https://example.com/a.jpg",
                                       "caption": "look"})
        res = r.json()["result"]
        self.assertEqual(res["caption"], "look")
        self.assertNotIn("text", res)
        self.assertEqual(len(res["photo"]), 3)
        self.assertTrue(all({"file_id", "file_unique_id", "file_size", "width", "height"}
                            <= set(p) for p in res["photo"]))
        # a multipart upload, then getFile and the download
        data = b"%PDF-1.4\r\n" + os.urandom(300) + b"\r\n%%EOF"
        boundary = "b0undary" + os.urandom(4).hex()
        mp = ("--%s\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n23\r\n"
              "--%s\r\nContent-Disposition: form-data; name=\"document\"; "
              "filename=\"price.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
              % (boundary, boundary)).encode() + data + ("\r\n--%s--\r\n" % boundary).encode()
        r = self.call(srv, "POST", "/bot%s/sendDocument" % BOT, mp,
                      {"Content-Type": "multipart/form-data; boundary=" + boundary}, raw=True)
        self.assertEqual(r.status, 200, r)
        doc = r.json()["result"]["document"]
        self.assertEqual((doc["file_name"], doc["mime_type"], doc["file_size"]),
                         ("price.pdf", "application/pdf", len(data)))
        self.assertEqual(srv.requests[-1].files["document"][2], data)
        r = self.tg(srv, "getFile", {"file_id": doc["file_id"]})
        f = r.json()["result"]
        self.assertEqual(f["file_size"], len(data))
        c = self.conn(srv)
        r = self.call(srv, "GET", "/file/bot%s/%s" % (BOT, f["file_path"]), conn=c)
        self.assertEqual((r.status, r.body, r.headers["content-type"]),
                         (200, data, "application/pdf"))
        # getFile with a query string, for media added by the test
        srv.add_media("AgACphoto1", b"\xff\xd8jpeg", "image/jpeg")
        r = self.call(srv, "GET", "/bot%s/getFile?file_id=AgACphoto1" % BOT, conn=c)
        f = r.json()["result"]
        self.assertTrue(f["file_path"].startswith("photos/") and
                        f["file_path"].endswith(".jpg"), f)
        self.assertEqual(self.call(srv, "GET", srv.media_url("AgACphoto1", BOT)[
            len(srv.base_url):], conn=c).body, b"\xff\xd8jpeg")
        r = self.tg(srv, "getFile", {"file_id": "nope"})
        self.assertEqual((r.status, r.json()["description"]),
                         (400, "Bad Request: invalid file_id"))

    def test_instagram_send(self):
        srv = self.fake("instagram")
        srv.expect_token(IG_TOKEN)
        r = self.ig_send(srv)
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(set(doc), {"recipient_id", "message_id"})
        self.assertEqual(doc["recipient_id"], IGSID)
        req = srv.wait_requests(1)[0]
        self.assertEqual((req.path, req.op, req.result_id),
                         ("/v23.0/me/messages", "send", doc["message_id"]))
        self.assertEqual(req.json, {"recipient": {"id": IGSID}, "message": {"text": "Hello!"}})
        self.assertNotEqual(self.ig_send(srv).json()["message_id"], doc["message_id"])
        # 1000 bytes of UTF-8 fit, 1001 do not
        self.assertEqual(self.ig_send(srv, text="ж" * 500).status, 200)
        err = self.meta_error(self.ig_send(srv, text="ж" * 500 + "a"), 400)
        self.assertEqual(err["code"], 100)
        self.assertIn("1000", err["message"])
        r = self.call(srv, "POST", "/v23.0/me/messages",
                      {"message": {"text": "x"}}, {"Authorization": "Bearer " + IG_TOKEN})
        self.assertEqual(self.meta_error(r, 400)["code"], 100)
        r = self.call(srv, "POST", "/v23.0/me/messages",
                      {"recipient": {"id": IGSID}, "sender_action": "typing_on"},
                      {"Authorization": "Bearer " + IG_TOKEN})
        self.assertEqual((r.status, r.json()), (200, {"recipient_id": IGSID}))
        self.assertEqual(self.meta_error(self.ig_send(srv, token="x"), 401)["code"], 190)

    def test_unknown_paths_are_404_in_the_platforms_shape(self):
        for kind, path in (("whatsapp", "/v23.0/%s/nothing" % PNID),
                           ("instagram", "/graph/me"), ("telegram", "/bot%s/sendPoll" % BOT),
                           ("telegram", "/nothing")):
            srv = self.fake(kind)
            r = self.call(srv, "POST", path, {})
            self.assertEqual(r.status, 404, (kind, r))
            if kind == "telegram":
                self.assertEqual(r.json(), {"ok": False, "error_code": 404,
                                            "description": "Not Found"})
            else:
                self.assertEqual(self.meta_error(r, 404)["type"], "OAuthException")
            self.assertEqual(srv.requests[0].path, path)


class ErrorModes(FakeCase):
    def test_meta_modes(self):
        wa_data = lambda d: {"messaging_product": "whatsapp", "details": d}  # noqa: E731
        cases = [
            ("whatsapp", "invalid", {}, 400, {
                "message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100,
                "error_data": wa_data("Param to is not a valid WhatsApp phone number")}),
            ("whatsapp", "window", {}, 400, {
                "message": "(#131047) Re-engagement message", "type": "OAuthException",
                "code": 131047, "error_data": wa_data(
                    "Message failed to send because more than 24 hours have passed since the "
                    "customer last replied to this number.")}),
            ("whatsapp", "rate", {}, 429, {
                "message": "(#130429) Rate limit hit", "type": "OAuthException",
                "code": 130429,
                "error_data": wa_data("Cloud API message throughput has been reached.")}),
            ("whatsapp", "rate", {"code": 131056, "retry_after": 7}, 429, {
                "message": "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                "type": "OAuthException", "code": 131056, "error_data": wa_data(
                    "Message failed to send because there were too many messages sent from "
                    "this phone number to the same phone number in a short period of time.")}),
            ("whatsapp", "500", {}, 500, {
                "message": "(#131000) Something went wrong", "type": "OAuthException",
                "code": 131000, "error_data": wa_data(
                    "Message failed to send due to an unknown error. When you get this error, "
                    "try again later.")}),
            ("instagram", "invalid", {}, 400, {
                "message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100,
                "error_data": {"details": "No matching user found"},
                "error_subcode": 2018001}),
            ("instagram", "window", {}, 400, {
                "message": "(#10) This message is sent outside of allowed window.",
                "type": "OAuthException", "code": 10, "error_subcode": 2018278}),
            ("instagram", "rate", {}, 429, {
                "message": "(#4) Application request limit reached", "type": "OAuthException",
                "code": 4, "is_transient": True}),
            ("instagram", "500", {}, 500, {
                "message": "An unexpected error has occurred. Please retry your request later.",
                "type": "OAuthException", "code": 2, "is_transient": True}),
        ]
        srvs = {k: self.fake(k) for k in ("whatsapp", "instagram")}
        for kind, mode, kw, status, want in cases:
            with self.subTest(kind=kind, mode=mode, kw=kw):
                srv = srvs[kind]
                srv.fail_next(mode, **kw)
                r = self.wa_send(srv) if kind == "whatsapp" else self.ig_send(srv)
                self.assertEqual(self.meta_error(r, status), want)
                if mode == "rate":
                    self.assertEqual(r.headers["retry-after"], str(kw.get("retry_after", 1)))
                else:
                    self.assertNotIn("retry-after", r.headers)
                self.assertEqual(srv.requests[-1].status, status)
                self.assertIsNotNone(srv.requests[-1].json)  # recorded either way
                # the failure was used up: the next send succeeds
                r = self.wa_send(srv) if kind == "whatsapp" else self.ig_send(srv)
                self.assertEqual(r.status, 200, r)
        for kind, srv in srvs.items():
            srv.fail_next("token")
            r = self.wa_send(srv) if kind == "whatsapp" else self.ig_send(srv)
            err = self.meta_error(r, 401)
            self.assertTrue(err.pop("message").startswith(
                "Error validating access token: Session has expired on "), err)
            self.assertEqual(err, {"type": "OAuthException", "code": 190,
                                   "error_subcode": 463})
            self.assertIn("invalid_token", r.headers["www-authenticate"])

    def test_telegram_modes(self):
        srv = self.fake("telegram")
        cases = [("invalid", {}, 400, "Bad Request: chat not found", None),
                 ("token", {}, 401, "Unauthorized", None),
                 ("blocked", {}, 403, "Forbidden: bot was blocked by the user", None),
                 ("rate", {}, 429, "Too Many Requests: retry after 1", {"retry_after": 1}),
                 ("rate", {"retry_after": 3}, 429, "Too Many Requests: retry after 3",
                  {"retry_after": 3}),
                 ("500", {}, 500, "Internal Server Error", None)]
        for mode, kw, status, desc, params in cases:
            with self.subTest(mode=mode, kw=kw):
                srv.fail_next(mode, **kw)
                r = self.tg(srv, "sendMessage", {"chat_id": 23, "text": "x"})
                want = {"ok": False, "error_code": status, "description": desc}
                if params:
                    want["parameters"] = params
                self.assertEqual((r.status, r.json()), (status, want))
                self.assertNotIn("retry-after", r.headers)
        srv.fail_next("conflict")
        self.assertEqual(self.tg(srv, "sendMessage", {"chat_id": 23, "text": "x"}).status,
                         200)  # conflict waits for getUpdates
        r = self.tg(srv, "getUpdates", {"offset": 0, "timeout": 0})
        self.assertEqual((r.status, r.json()), (409, {
            "ok": False, "error_code": 409,
            "description": "Conflict: terminated by other getUpdates request; make sure "
                           "that only one bot instance is running"}))

    def test_count_scope_and_not_applicable_modes(self):
        srv = self.fake("telegram")
        srv.fail_next("500", count=2)
        self.assertEqual(self.tg(srv, "getMe").status, 200)  # default scope: sends
        self.assertEqual(self.tg(srv, "sendPhoto", {"chat_id": 1, "photo": "x.jpg"}).status,
                         500)
        self.assertEqual(self.tg(srv, "sendMessage", {"chat_id": 1, "text": "x"}).status,
                         500)
        self.assertEqual(self.tg(srv, "sendMessage", {"chat_id": 1, "text": "x"}).status,
                         200)
        srv.fail_next("500", on="getMe")
        srv.fail_next("blocked", on="any")
        self.assertEqual(self.tg(srv, "getMe").status, 500)
        self.assertEqual(self.tg(srv, "getMe").status, 403)
        r = self.tg(srv, "getMe")
        self.assertEqual(r.json()["result"]["username"], "bayge_test_bot")
        with self.assertRaises(ValueError):
            srv.fail_next("window")
        wa = self.fake("whatsapp")
        for mode in ("blocked", "conflict", "nonsense"):
            with self.assertRaises(ValueError):
                wa.fail_next(mode)
        wa.fail_next("custom", status=503, body={"x": 1}, headers={"X-Test": "1"})
        r = self.wa_send(wa)
        self.assertEqual((r.status, r.json(), r.headers["x-test"]), (503, {"x": 1}, "1"))


class Connections(FakeCase):
    def test_keep_alive_serves_many_requests_on_one_connection(self):
        srv = self.fake("telegram")
        c = self.conn(srv)
        r1 = self.tg(srv, "sendMessage", {"chat_id": 1, "text": "a"}, conn=c)
        sock = c.sock
        r2 = self.tg(srv, "sendMessage", {"chat_id": 1, "text": "b"}, conn=c)
        r3 = self.tg(srv, "getMe", conn=c)
        self.assertIs(c.sock, sock)
        self.assertEqual([r1.status, r2.status, r3.status], [200, 200, 200])
        self.assertEqual(r1.headers["content-length"], str(len(r1.body)))
        conns = {q.conn for q in srv.requests}
        self.assertEqual(len(conns), 1)
        self.tg(srv, "getMe")  # a new connection gets a new number
        self.assertEqual(len({q.conn for q in srv.requests}), 2)

    def raw_exchange(self, srv, request):
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        tls = client_ctx().wrap_socket(raw, server_hostname="127.0.0.1")
        try:
            tls.sendall(request)
            data = b""
            while True:
                piece = tls.recv(65536)
                if not piece:
                    return data
                data += piece
        finally:
            tls.close()

    def test_chunked_answers(self):
        srv = self.fake("whatsapp")
        body = json.dumps({"messaging_product": "whatsapp", "to": "77011234567",
                           "type": "text", "text": {"body": "hi"}}).encode()
        srv.fail_next("chunked")
        data = self.raw_exchange(srv, (
            "POST /v23.0/%s/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            "application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (PNID, len(body))).encode() + body)
        head, _, rest = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        hl = head.lower()
        self.assertIn(b"\r\ntransfer-encoding: chunked", hl)
        self.assertNotIn(b"content-length", hl)
        out, chunks = b"", 0
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line, 16)
            if n == 0:
                self.assertEqual(rest, b"\r\n")
                break
            out += rest[:n]
            self.assertEqual(rest[n:n + 2], b"\r\n")
            rest = rest[n + 2:]
            chunks += 1
        self.assertGreater(chunks, 3)
        self.assertEqual(json.loads(out)["messaging_product"], "whatsapp")
        # every answer chunked, through http.client, keep-alive still working
        srv.chunked = True
        srv.chunk_size = 5
        c = self.conn(srv)
        for _ in range(2):
            r = self.call(srv, "POST", "/v23.0/%s/messages" % PNID, json.loads(body),
                          conn=c)
            self.assertEqual((r.status, r.headers.get("transfer-encoding")), (200, "chunked"))
            self.assertIn("wamid.", r.json()["messages"][0]["id"])
        srv.fail_next("invalid", chunked=True)
        srv.chunked = False
        r = self.call(srv, "POST", "/v23.0/%s/messages" % PNID, json.loads(body), conn=c)
        self.assertEqual((r.status, r.headers.get("transfer-encoding")), (400, "chunked"))
        self.assertEqual(r.json()["error"]["code"], 100)
        self.assertEqual(len({q.conn for q in srv.requests}), 2)

    def test_stall_holds_the_connection_without_an_answer(self):
        srv = self.fake("instagram")
        srv.fail_next("stall")
        c = self.conn(srv, timeout=0.3)
        t = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.call(srv, "POST", "/v23.0/me/messages",
                      {"recipient": {"id": IGSID}, "message": {"text": "x"}}, conn=c)
        self.assertGreaterEqual(time.monotonic() - t, 0.25)
        req = srv.wait_requests(1)[0]
        self.assertIsNone(req.status)
        self.assertFalse(req.done.is_set())
        # the fake still serves others meanwhile
        self.assertEqual(self.ig_send(srv).status, 200)
        # a stall with seconds closes without an answer
        srv.fail_next("stall", seconds=0.2)
        t = time.monotonic()
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError,
                                ssl.SSLError)):
            self.ig_send(srv)
        self.assertGreaterEqual(time.monotonic() - t, 0.15)
        # stop() releases a stalled connection at once
        srv.fail_next("stall")
        got = []

        def client():
            try:
                self.ig_send(srv)
                got.append("answered")
            except (OSError, http.client.HTTPException, ssl.SSLError) as e:
                got.append(e)
        th = threading.Thread(target=client)
        th.start()
        srv.wait_requests(4)
        t = time.monotonic()
        srv.stop()
        th.join(3)
        self.assertFalse(th.is_alive())
        self.assertLess(time.monotonic() - t, 2)
        self.assertEqual(len(got), 1)
        self.assertNotEqual(got[0], "answered")
        self.assertTrue(req.done.is_set())

    def test_reset_closes_with_rst_after_reading_the_request(self):
        srv = self.fake("whatsapp")
        srv.fail_next("reset")
        with self.assertRaises(ConnectionResetError):
            self.wa_send(srv)
        req = srv.wait_requests(1)[0]
        self.assertEqual(req.json["to"], "+77011234567")  # the whole request was read
        self.assertIsNone(req.status)
        self.assertEqual(self.wa_send(srv).status, 200)

    def test_delay_answers_late(self):
        srv = self.fake("telegram")
        srv.fail_next("delay", seconds=0.3)
        t = time.monotonic()
        r = self.tg(srv, "sendMessage", {"chat_id": 1, "text": "x"})
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.25)

    def test_a_client_that_does_not_trust_the_ca_fails(self):
        srv = self.fake("whatsapp")
        ctx = ssl.create_default_context()  # the system store only
        c = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=5, context=ctx)
        self.addCleanup(c.close)
        with self.assertRaises(ssl.SSLCertVerificationError):
            c.request("GET", "/v23.0/x")
        util.wait_for(lambda: srv.tls_errors, 3, "the fake's handshake error")
        self.assertEqual(srv.requests, [])
        # the certificate names localhost and 127.0.0.1, and TLS is 1.2 or newer
        c = http.client.HTTPSConnection("localhost", srv.port, timeout=5,
                                        context=client_ctx())
        self.addCleanup(c.close)
        c.request("POST", "/v23.0/%s/messages" % PNID, body=b"{}")
        self.assertEqual(c.getresponse().status, 400)
        self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))


class Polling(FakeCase):
    def test_updates_are_answered_at_once_and_forgotten_when_acknowledged(self):
        srv = self.fake("telegram")
        u1 = srv.push_update({"message": {"message_id": 1, "text": "a"}})
        u2 = srv.push_update({"message": {"message_id": 2, "text": "b"}})
        self.assertEqual(u2, u1 + 1)
        self.assertEqual(srv.push_update({"update_id": u2 + 10, "message": {}}), u2 + 10)
        self.assertEqual(srv.push_update({"message": {}}), u2 + 11)
        r = self.tg(srv, "getUpdates", {"offset": 0, "timeout": 30})
        res = r.json()["result"]
        self.assertEqual([u["update_id"] for u in res], [u1, u2, u2 + 10, u2 + 11])
        self.assertEqual(res[0]["message"]["text"], "a")
        # not acknowledged yet: answered again
        r = self.tg(srv, "getUpdates", {"timeout": 0, "limit": 2})
        self.assertEqual([u["update_id"] for u in r.json()["result"]], [u1, u2])
        # offset acknowledges everything below it
        r = self.tg(srv, "getUpdates", {"offset": u2 + 1, "timeout": 0})
        self.assertEqual([u["update_id"] for u in r.json()["result"]], [u2 + 10, u2 + 11])
        self.assertEqual([u["update_id"] for u in srv.pending_updates()], [u2 + 10, u2 + 11])
        r = self.tg(srv, "getUpdates", {"offset": u2 + 12, "timeout": 0})
        self.assertEqual(r.json(), {"ok": True, "result": []})
        r = self.tg(srv, "getUpdates", {"offset": 0, "timeout": 0})
        self.assertEqual(r.json()["result"], [])  # forgotten
        offsets = [q.json.get("offset") for q in srv.requests if q.op == "getUpdates"]
        self.assertEqual(offsets, [0, None, u2 + 1, u2 + 12, 0])

    def test_a_poll_is_held_then_answered_empty(self):
        srv = self.fake("telegram")
        srv.max_poll_hold = 0.4
        t = time.monotonic()
        r = self.tg(srv, "getUpdates", {"offset": 5, "timeout": 50})
        took = time.monotonic() - t
        self.assertEqual((r.status, r.json()), (200, {"ok": True, "result": []}))
        self.assertGreaterEqual(took, 0.35)
        self.assertLess(took, 1.5)
        t = time.monotonic()
        self.tg(srv, "getUpdates", {"offset": 5, "timeout": 0})
        self.assertLess(time.monotonic() - t, 0.3)

    def test_a_held_poll_is_released_by_a_new_update(self):
        srv = self.fake("telegram")
        srv.max_poll_hold = 5
        timer = threading.Timer(0.2, lambda: srv.push_update({"message": {"text": "hi"}}))
        timer.start()
        self.addCleanup(timer.cancel)
        t = time.monotonic()
        r = self.tg(srv, "getUpdates", {"offset": 0, "timeout": 50})
        took = time.monotonic() - t
        self.assertEqual([u["message"]["text"] for u in r.json()["result"]], ["hi"])
        self.assertGreaterEqual(took, 0.15)
        self.assertLess(took, 2)

    def test_conflicts(self):
        srv = self.fake("telegram")
        srv.max_poll_hold = 5
        # a second poller terminates the held one
        got = []
        th = threading.Thread(target=lambda: got.append(
            self.tg(srv, "getUpdates", {"timeout": 50})))
        th.start()
        util.wait_for(lambda: srv.polls_waiting == 1, 3, "a held getUpdates")
        r2 = [None]
        th2 = threading.Thread(target=lambda: r2.__setitem__(0, self.tg(
            srv, "getUpdates", {"timeout": 0})))
        th2.start()
        th.join(3)
        th2.join(3)
        self.assertEqual((got[0].status, got[0].json()["description"]),
                         (409, fakeplat.TG_CONFLICT_POLL))
        self.assertEqual(r2[0].status, 200)
        # a webhook excludes polling
        r = self.tg(srv, "setWebhook", {"url": "https://hub.example/webhooks/telegram/t1",
                                        "secret_token": "s3cr3t_-x"})
        self.assertEqual(r.json(), {"ok": True, "result": True,
                                    "description": "Webhook was set"})
        self.assertEqual(srv.webhook["secret_token"], "s3cr3t_-x")
        self.assertEqual(srv.requests[-1].json["url"],
                         "https://hub.example/webhooks/telegram/t1")
        r = self.tg(srv, "getUpdates", {"timeout": 0})
        self.assertEqual((r.status, r.json()["description"]),
                         (409, fakeplat.TG_CONFLICT_WEBHOOK))
        r = self.tg(srv, "setWebhook", {"url": "https://x", "secret_token": "bad token!"})
        self.assertEqual(r.status, 400)
        r = self.tg(srv, "deleteWebhook")
        self.assertEqual(r.json()["description"], "Webhook was deleted")
        self.assertIsNone(srv.webhook)
        self.assertEqual(self.tg(srv, "getUpdates", {"timeout": 0}).status, 200)


class Callbacks(FakeCase):
    def hub(self):
        h = HubStandIn()
        self.addCleanup(h.stop)
        return h

    def channel(self, cid, kind, account):
        return {"id": cid, "tenant": "demo", "kind": kind, "account_id": account,
                "app_secret": "app-secret-" + os.urandom(8).hex(),
                "access_token": IG_TOKEN if kind == "instagram" else WA_TOKEN}

    def check_signed(self, post, secret):
        want = "sha256=" + hmac.new(secret.encode(), post["body"], hashlib.sha256).hexdigest()
        self.assertEqual(post["headers"]["x-hub-signature-256"], want)
        self.assertEqual(post["headers"]["content-type"], "application/json")
        return json.loads(post["body"])

    def test_whatsapp_statuses_sent_delivered_read(self):
        hub = self.hub()
        hub.answers = [503]  # the first delivery is retried
        srv = self.fake("whatsapp")
        ch = self.channel("demo-whatsapp", "whatsapp", PNID)
        other = self.channel("acme-whatsapp", "whatsapp", "999")
        srv.callback(hub.url, ch, delay=0.05)
        srv.callback(hub.url, other, delay=0.05)
        t0 = time.monotonic()
        r = self.wa_send(srv, to="+7 701 123-45-67")
        wamid = r.json()["messages"][0]["id"]
        posts = hub.wait(3)
        self.assertGreaterEqual(time.monotonic() - t0, 0.1)
        statuses = []
        for p in posts:
            self.assertEqual(p["path"], "/webhooks/whatsapp/demo-whatsapp")
            doc = self.check_signed(p, ch["app_secret"])
            self.assertEqual(doc["object"], "whatsapp_business_account")
            value = doc["entry"][0]["changes"][0]["value"]
            self.assertEqual(doc["entry"][0]["changes"][0]["field"], "messages")
            self.assertEqual(value["messaging_product"], "whatsapp")
            self.assertEqual(value["metadata"]["phone_number_id"], PNID)
            st = value["statuses"][0]
            self.assertEqual((st["id"], st["recipient_id"]), (wamid, "77011234567"))
            self.assertIsInstance(st["timestamp"], str)
            self.assertLess(abs(int(st["timestamp"]) - time.time()), 5)
            statuses.append(st)
        self.assertEqual([s["status"] for s in statuses], ["sent", "delivered", "read"])
        self.assertEqual(set(statuses[0]), {"id", "status", "timestamp", "recipient_id",
                                            "conversation", "pricing"})
        self.assertIn("expiration_timestamp", statuses[0]["conversation"])
        self.assertEqual(statuses[0]["pricing"]["pricing_model"], "PMP")
        self.assertEqual(set(statuses[2]), {"id", "status", "timestamp", "recipient_id"})
        cbs = srv.wait_callbacks(3)
        self.assertEqual([c["attempts"] for c in cbs], [2, 1, 1])
        self.assertEqual([c["status"] for c in cbs], [200, 200, 200])
        self.assertEqual(srv.callback_errors, [])
        # a failed send calls nothing back
        srv.fail_next("invalid")
        self.assertEqual(self.wa_send(srv).status, 400)
        time.sleep(0.2)
        self.assertEqual(len(hub.posts), 4)

    def test_instagram_echo_then_read(self):
        hub = self.hub()
        srv = self.fake("instagram")
        ch = self.channel("demo-instagram", "instagram", IG_ACCOUNT)
        srv.callback(hub.url, ch, delay=0.03, first_delay=0)
        mid = self.ig_send(srv, text="Жеткізу бар").json()["message_id"]
        posts = hub.wait(2)
        docs = [self.check_signed(p, ch["app_secret"]) for p in posts]
        self.assertEqual([p["path"] for p in posts], ["/webhooks/instagram/demo-instagram"] * 2)
        echo, read = (d["entry"][0] for d in docs)
        self.assertEqual(docs[0]["object"], "instagram")
        self.assertEqual(echo["id"], IG_ACCOUNT)
        self.assertIsInstance(echo["time"], int)
        e = echo["messaging"][0]
        self.assertEqual((e["sender"], e["recipient"]), ({"id": IG_ACCOUNT}, {"id": IGSID}))
        self.assertEqual(e["message"], {"mid": mid, "text": "Жеткізу бар", "is_echo": True})
        self.assertGreater(e["timestamp"], 10 ** 12)  # milliseconds
        rd = read["messaging"][0]
        self.assertEqual((rd["sender"], rd["recipient"], rd["read"]),
                         ({"id": IGSID}, {"id": IG_ACCOUNT}, {"mid": mid}))

    def test_callback_failures_are_recorded_not_raised(self):
        hub = self.hub()
        hub.answers = [401]
        srv = self.fake("whatsapp")
        ch = self.channel("demo-whatsapp", "whatsapp", PNID)
        srv.callback(hub.url, ch, statuses=("sent",), delay=0.01, retries=1)
        self.wa_send(srv)
        cbs = srv.wait_callbacks(1)
        self.assertEqual((cbs[0]["status"], cbs[0]["attempts"]), (401, 1))
        self.assertEqual(srv.callback_errors, cbs)
        # a hub that is down: retried, then recorded
        dead = "http://127.0.0.1:%d" % util.free_port()
        srv.callback(dead, ch, statuses=("delivered",), delay=0.01, retries=2)
        self.wa_send(srv)
        cbs = srv.wait_callbacks(2)
        self.assertEqual(cbs[1]["attempts"], 3)
        self.assertIn("ConnectionRefused", cbs[1]["error"])
        self.assertEqual(len(srv.callback_errors), 2)
        self.assertEqual(self.wa_send(srv).status, 200)  # the server goes on
        with self.assertRaises(ValueError):
            self.fake("telegram").callback(hub.url, ch)


class Media(FakeCase):
    def test_whatsapp_media(self):
        srv = self.fake("whatsapp")
        srv.expect_token(WA_TOKEN)
        data = os.urandom(1000)
        srv.add_media("1234567890", data, "image/jpeg")
        auth = {"Authorization": "Bearer " + WA_TOKEN}
        r = self.call(srv, "GET", "/v23.0/1234567890", headers=auth)
        info = r.json()
        self.assertEqual(info, {"messaging_product": "whatsapp",
                                "url": srv.base_url + "/media-bytes/1234567890",
                                "mime_type": "image/jpeg",
                                "sha256": hashlib.sha256(data).hexdigest(),
                                "file_size": 1000, "id": "1234567890"})
        path = info["url"][len(srv.base_url):]
        r = self.call(srv, "GET", path, headers=auth)
        self.assertEqual((r.status, r.body, r.headers["content-type"]),
                         (200, data, "image/jpeg"))
        self.assertEqual(self.meta_error(self.call(srv, "GET", path), 401)["code"], 190)
        err = self.meta_error(self.call(srv, "GET", "/v23.0/404404", headers=auth), 400)
        self.assertEqual((err["code"], err["error_subcode"]), (100, 33))
        self.assertEqual([q.op for q in srv.requests],
                         ["media_info", "media", "media", "media_info"])

    def test_instagram_cdn(self):
        srv = self.fake("instagram")
        srv.add_media("asset1", b"RIFFwebp", "image/webp")
        url = srv.media_url("asset1")
        self.assertTrue(url.startswith(srv.base_url + "/cdn/asset1?"), url)
        r = self.call(srv, "GET", url[len(srv.base_url):])
        self.assertEqual((r.status, r.body, r.headers["content-type"]),
                         (200, b"RIFFwebp", "image/webp"))
        srv.add_profile(IGSID, {"name": "Aigerim", "username": "aigerim.kz"})
        r = self.call(srv, "GET", "/v23.0/%s?fields=name,username" % IGSID)
        self.assertEqual(r.json(), {"name": "Aigerim", "username": "aigerim.kz",
                                    "id": IGSID})


class CommandLine(FakeCase):
    def test_starts_three_fakes_calls_back_and_stops_on_sigterm(self):
        hub = HubStandIn()
        self.addCleanup(hub.stop)
        d = tempfile.mkdtemp(prefix="hubt-fakeplat-cli-")
        self.addCleanup(shutil.rmtree, d, True)
        secret_file = os.path.join(d, "wa-secret")
        with open(secret_file, "w") as f:
            f.write("wa-secret-from-file\n")
        cfg = {"http": {"listen": "127.0.0.1:1"}, "channels": [
            {"id": "demo-whatsapp", "tenant": "demo", "kind": "whatsapp",
             "account_id": PNID, "app_secret_file": secret_file, "access_token": "t"},
            {"id": "demo-instagram", "tenant": "demo", "kind": "instagram",
             "account_id": IG_ACCOUNT, "app_secret": "ig-secret", "access_token": IG_TOKEN}]}
        cfg_path = os.path.join(d, "hubd.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        proc = subprocess.Popen(
            [sys.executable, os.path.join(util.TESTS, "support", "fakeplat.py"), "--dir", d,
             "--hub", hub.url, "--config", cfg_path, "--delay", "0.02"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        info_path = os.path.join(d, "fakeplat.json")
        util.wait_for(lambda: os.path.exists(info_path) or proc.poll() is not None, 15,
                      "fakeplat.json")
        self.assertIsNone(proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
        with open(info_path) as f:
            info = json.load(f)
        self.assertEqual(set(info), {"whatsapp", "telegram", "instagram", "ca", "pid"})
        self.assertEqual(info["ca"], os.path.join(os.path.abspath(d), "ca.pem"))
        self.assertEqual(info["pid"], proc.pid)
        ctx = ssl.create_default_context(cafile=info["ca"])
        ports = {}
        for kind in ("whatsapp", "telegram", "instagram"):
            self.assertTrue(info[kind].startswith("https://127.0.0.1:"), info)
            ports[kind] = int(info[kind].rsplit(":", 1)[1])

        def post(kind, path, body):
            c = http.client.HTTPSConnection("127.0.0.1", ports[kind], timeout=5, context=ctx)
            try:
                c.request("POST", path, body=json.dumps(body),
                          headers={"Content-Type": "application/json",
                                   "Authorization": "Bearer whatever"})
                r = c.getresponse()
                return r.status, json.loads(r.read())
            finally:
                c.close()

        st, doc = post("whatsapp", "/v23.0/%s/messages" % PNID,
                       {"messaging_product": "whatsapp", "to": "77011234567", "type": "text",
                        "text": {"body": "hi"}})
        self.assertEqual(st, 200)
        st, _ = post("telegram", "/bot1:x/sendMessage", {"chat_id": 1, "text": "hi"})
        self.assertEqual(st, 200)
        st, _ = post("instagram", "/v23.0/me/messages",
                     {"recipient": {"id": IGSID}, "message": {"text": "hi"}})
        self.assertEqual(st, 200)
        posts = hub.wait(5)
        wa = [p for p in posts if p["path"] == "/webhooks/whatsapp/demo-whatsapp"]
        ig = [p for p in posts if p["path"] == "/webhooks/instagram/demo-instagram"]
        self.assertEqual((len(wa), len(ig)), (3, 2))
        for p in wa:
            self.assertEqual(p["headers"]["x-hub-signature-256"], fakeplat.sign(
                p["body"], "wa-secret-from-file"))
        for p in ig:
            self.assertEqual(p["headers"]["x-hub-signature-256"],
                             fakeplat.sign(p["body"], "ig-secret"))
        # the development helper queues Telegram updates
        st, doc = post("telegram", "/_fake/update", {"message": {"text": "from dev"}})
        self.assertEqual(st, 200)
        st, doc = post("telegram", "/bot1:x/getUpdates", {"timeout": 0})
        self.assertEqual(doc["result"][0]["message"]["text"], "from dev")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual((out, err), (b"", b""))  # quiet
        self.assertFalse(os.path.exists(info_path))


if __name__ == "__main__":
    unittest.main()
