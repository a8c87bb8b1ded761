"""tests/integration/test_fakeai.py - the fake OpenAI-compatible provider (support/fakeai.py)
checked by itself, over HTTP and over HTTPS with the test CA: a chat completion and what was
recorded (and appended to the JSON-lines file), the answer in the customer's language, the
script's modes (markers echoed, an unknown marker, a reveal attempt, no content, refusal,
invalid JSON), OpenAI's error bodies and Retry-After, key checks, request validation,
keep-alive, stall, reset, delay, a slow trickle of bytes, and the command line.
Needs neither hubd nor PostgreSQL.
"""
import http.client
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

from support import fakeai, testca, util  # noqa: E402

CA = None
CA_DIR = None
KEY = "sk-test-" + os.urandom(12).hex()


def setUpModule():
    global CA, CA_DIR
    CA_DIR = tempfile.mkdtemp(prefix="hubt-fakeai-")
    CA = testca.TestCA(CA_DIR)


def tearDownModule():
    shutil.rmtree(CA_DIR, ignore_errors=True)


def chat(*turns, model="gpt-4o-mini", **extra):
    """A request body: ("system"|"user"|"assistant", text) pairs."""
    body = {"model": model, "messages": [{"role": r, "content": t} for r, t in turns],
            "temperature": 0.3, "max_tokens": 200, "stream": False}
    body.update(extra)
    return body


HISTORY = chat(("system", "You are helpful. Markers look like [PHONE_1] or [NAME_2]."),
               ("user", "Меня зовут [NAME_1], мой номер [PHONE_2]"),
               ("assistant", "Спасибо, [NAME_1]!"),
               ("user", "Почта [EMAIL_1], запасной [PHONE_3]. Когда доставка?"))


class Resp:
    def __init__(self, r):
        self.status = r.status
        self.headers = {k.lower(): v for k, v in r.getheaders()}
        self.body = r.read()

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Resp %d %r>" % (self.status, self.body[:300])


class FakeCase(unittest.TestCase):
    def fake(self, **kw):
        srv = fakeai.FakeAI(**kw).start()
        self.addCleanup(srv.stop)
        return srv

    def conn(self, srv, timeout=5):
        if srv.base_url.startswith("https"):
            c = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=timeout,
                                            context=ssl.create_default_context(cafile=CA.ca))
        else:
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
        self.addCleanup(c.close)
        return c

    def post(self, srv, body, key=KEY, path="/v1/chat/completions", conn=None, raw=False):
        c = conn or self.conn(srv)
        hdr = {"Content-Type": "application/json"}
        if key is not None:
            hdr["Authorization"] = "Bearer " + key
        if not raw:
            body = json.dumps(body, ensure_ascii=False).encode()
        c.request("POST", path, body=body, headers=hdr)
        return Resp(c.getresponse())

    def content(self, resp):
        self.assertEqual(resp.status, 200, resp)
        return resp.json()["choices"][0]["message"]["content"]

    def openai_error(self, resp, status):
        self.assertEqual(resp.status, status, resp)
        doc = resp.json()
        self.assertEqual(list(doc), ["error"], doc)
        self.assertEqual(set(doc["error"]), {"message", "type", "param", "code"}, doc)
        self.assertTrue(doc["error"]["message"])
        return doc["error"]


class Answers(FakeCase):
    def test_plain_answer_recorded_and_logged(self):
        d = tempfile.mkdtemp(prefix="hubt-fakeai-log-")
        self.addCleanup(shutil.rmtree, d, True)
        log = os.path.join(d, "requests.jsonl")
        srv = self.fake(log_path=log)
        self.assertTrue(srv.base_url.startswith("http://127.0.0.1:"))
        body = json.dumps(HISTORY, ensure_ascii=False, separators=(",", ":")).encode()
        r = self.post(srv, body, raw=True)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        doc = r.json()
        self.assertEqual(doc["object"], "chat.completion")
        self.assertTrue(doc["id"].startswith("chatcmpl-"))
        self.assertEqual(doc["model"], "gpt-4o-mini")
        ch = doc["choices"][0]
        self.assertEqual(ch["finish_reason"], "stop")
        self.assertEqual(ch["message"]["role"], "assistant")
        self.assertEqual(ch["message"]["content"], fakeai.PLAIN["ru"])
        u = doc["usage"]
        self.assertGreater(u["prompt_tokens"], 0)
        self.assertGreater(u["completion_tokens"], 0)
        self.assertEqual(u["total_tokens"], u["prompt_tokens"] + u["completion_tokens"])
        req = srv.wait_requests(1)[0]
        self.assertEqual((req.method, req.path, req.status, req.mode), (
            "POST", "/v1/chat/completions", 200, "plain"))
        self.assertEqual(req.headers["authorization"], "Bearer " + KEY)
        self.assertEqual(req.body, body)
        self.assertEqual(req.json, HISTORY)
        self.assertEqual(req.texts("user")[1], "Почта [EMAIL_1], запасной [PHONE_3]. "
                                               "Когда доставка?")
        self.assertEqual(req.content, fakeai.PLAIN["ru"])
        self.assertTrue(req.done.wait(2))
        # the log holds the exact bytes, one line a request; not JSON is kept as text
        self.post(srv, b"{not json", raw=True)
        self.post(srv, b'{"model":"m",\n"messages":[{"role":"user","content":"x"}]}', raw=True)
        with open(log, "rb") as f:
            lines = f.read().split(b"\n")
        self.assertEqual(len(lines), 4)
        self.assertEqual(lines[0], body)
        self.assertEqual(json.loads(lines[1]), {"_invalid_body": "{not json"})
        self.assertEqual(json.loads(lines[2])["messages"][0]["content"], "x")
        self.assertEqual(lines[3], b"")

    def test_plain_answer_speaks_the_customers_language(self):
        srv = self.fake()
        for text, lang in (("Сәлеметсіз бе, қанша тұрады?", "kk"), ("Hello there", "en"),
                           ("Сколько стоит?", "ru")):
            self.assertEqual(self.content(self.post(srv, chat(("user", text)))),
                             fakeai.PLAIN[lang])
        srv.default("plain", text="Ответ по умолчанию")
        self.assertEqual(self.content(self.post(srv, chat(("user", "hi")))),
                         "Ответ по умолчанию")

    def test_markers_unknown_marker_and_reveal(self):
        srv = self.fake()
        srv.script("echo_marker")
        srv.script("echo_marker", type="EMAIL", template="Чек на {marker}")
        srv.script("echo_marker", type="IBAN")
        srv.script("echo_marker", roles=("system",))
        srv.script("echo_all")
        srv.script("unknown_marker")
        srv.script("text", text="Ваш номер [PHONE_2], [NAME_1].")
        srv.script("reveal")
        got = [self.content(self.post(srv, HISTORY)) for _ in range(8)]
        self.assertEqual(got[0], "Ваш номер: [PHONE_2]. Верно?")  # not the system's example
        self.assertEqual(got[1], "Чек на [EMAIL_1]")
        self.assertEqual(got[2], "Спасибо!")  # none of that type
        self.assertEqual(got[3], "Ваш номер: [PHONE_1]. Верно?")
        self.assertEqual(got[4], "[NAME_1] [PHONE_2] [EMAIL_1] [PHONE_3]")
        self.assertEqual(got[5], "Позвоните нам: [PHONE_99].")
        self.assertEqual(got[6], "Ваш номер [PHONE_2], [NAME_1].")
        self.assertIn("system: You are helpful.", got[7])
        self.assertIn("user: Меня зовут [NAME_1], мой номер [PHONE_2]", got[7])
        self.assertIn("assistant: Спасибо, [NAME_1]!", got[7])
        # the script is used up: plain again
        self.assertEqual(self.content(self.post(srv, HISTORY)), fakeai.PLAIN["ru"])
        self.assertEqual([r.mode for r in srv.requests],
                         ["echo_marker"] * 4 + ["echo_all", "unknown_marker", "text", "reveal",
                                                "plain"])

    def test_answers_without_text(self):
        srv = self.fake()
        srv.script("no_content")
        srv.script("refusal")
        srv.script("invalid_json")
        r = self.post(srv, HISTORY)
        ch = r.json()["choices"][0]
        self.assertEqual((ch["message"]["content"], ch["finish_reason"]), ("", "content_filter"))
        r = self.post(srv, HISTORY)
        msg = r.json()["choices"][0]["message"]
        self.assertIsNone(msg["content"])
        self.assertIn("can't help", msg["refusal"])
        r = self.post(srv, HISTORY)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/html"))
        with self.assertRaises(ValueError):
            r.json()


class Errors(FakeCase):
    def test_openai_error_bodies(self):
        srv = self.fake()
        for mode in ("400", "401", "403", "404", "429", "500", "503", "quota"):
            srv.script(mode)
        srv.script("error", status=429, retry_after=None, message="slow down", code="x")
        srv.script("error", status=502)
        srv.script("custom", status=418, body={"detail": "teapot"}, headers={"X-A": "b"})
        e = self.openai_error(self.post(srv, HISTORY), 400)
        self.assertEqual(e["type"], "invalid_request_error")
        e = self.openai_error(self.post(srv, HISTORY), 401)
        self.assertEqual(e["code"], "invalid_api_key")
        self.assertNotIn(KEY, e["message"])  # masked, as OpenAI does
        self.assertIn(KEY[-4:], e["message"])
        e = self.openai_error(self.post(srv, HISTORY), 403)
        self.assertIn("gpt-4o-mini", e["message"])
        e = self.openai_error(self.post(srv, HISTORY), 404)
        self.assertEqual(e["code"], "model_not_found")
        r = self.post(srv, HISTORY)
        e = self.openai_error(r, 429)
        self.assertEqual((e["code"], e["type"]), ("rate_limit_exceeded", "requests"))
        self.assertEqual(r.headers["retry-after"], "1")
        e = self.openai_error(self.post(srv, HISTORY), 500)
        self.assertEqual((e["type"], e["code"]), ("server_error", None))
        r = self.post(srv, HISTORY)
        self.openai_error(r, 503)
        self.assertEqual(r.headers["retry-after"], "1")
        r = self.post(srv, HISTORY)
        e = self.openai_error(r, 429)
        self.assertEqual((e["type"], e["code"]), ("insufficient_quota", "insufficient_quota"))
        self.assertNotIn("retry-after", r.headers)
        r = self.post(srv, HISTORY)
        e = self.openai_error(r, 429)
        self.assertEqual((e["message"], e["code"]), ("slow down", "x"))
        self.assertNotIn("retry-after", r.headers)
        self.openai_error(self.post(srv, HISTORY), 502)
        r = self.post(srv, HISTORY)
        self.assertEqual((r.status, r.json(), r.headers["x-a"]), (418, {"detail": "teapot"}, "b"))
        self.assertEqual(self.post(srv, HISTORY).status, 200)
        with self.assertRaises(ValueError):
            srv.script("nonsense")

    def test_key_checked_when_configured(self):
        srv = self.fake()
        srv.expect_key(KEY)
        e = self.openai_error(self.post(srv, HISTORY, key="sk-wrong-key-000000001234"), 401)
        self.assertEqual(e["code"], "invalid_api_key")
        self.assertIn("1234", e["message"])
        self.assertNotIn("sk-wrong-key-000000001234", e["message"])
        e = self.openai_error(self.post(srv, HISTORY, key=None), 401)
        self.assertIn("didn't provide an API key", e["message"])
        self.assertEqual(self.post(srv, HISTORY).status, 200)
        srv.model = "gpt-4o-mini"
        e = self.openai_error(self.post(srv, chat(("user", "x"), model="other")), 404)
        self.assertEqual(e["code"], "model_not_found")
        self.assertEqual(len(srv.requests), 4)  # refused ones are recorded too

    def test_requests_are_validated_like_openai(self):
        srv = self.fake()
        cases = [
            (b"{not json", None),
            (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), None),
            (json.dumps(chat()).encode(), "messages"),
            (json.dumps({"model": "m", "messages": [{"role": "robot", "content": "x"}]})
             .encode(), "messages[0].role"),
            (json.dumps({"model": "m", "messages": [{"role": "user", "content": 5}]})
             .encode(), "messages[0].content"),
            (json.dumps(chat(("user", "x"), stream=True)).encode(), "stream"),
            (json.dumps(chat(("user", "x"), temperature=3)).encode(), "temperature"),
            (json.dumps(chat(("user", "x"), max_tokens=0)).encode(), "max_tokens"),
        ]
        for body, param in cases:
            e = self.openai_error(self.post(srv, body, raw=True), 400)
            self.assertEqual(e["param"], param, body)
        e = self.openai_error(self.post(srv, HISTORY, path="/v1/completions"), 404)
        self.assertIn("Invalid URL (POST /v1/completions)", e["message"])
        # an assistant turn without content (a tool call) is valid
        ok = chat(("user", "x"))
        ok["messages"].append({"role": "assistant", "content": None})
        ok["messages"].append({"role": "user", "content": [{"type": "text", "text": "y"}]})
        self.assertEqual(self.post(srv, ok).status, 200)
        c = self.conn(srv)
        c.request("GET", "/v1/models")
        r = Resp(c.getresponse())
        self.assertEqual(r.json()["data"][0]["id"], "fake-model")


class Connections(FakeCase):
    def test_https_and_keep_alive(self):
        srv = self.fake(ca=CA)
        self.assertTrue(srv.base_url.startswith("https://127.0.0.1:"))
        c = self.conn(srv)
        for _ in range(3):
            self.assertEqual(self.post(srv, HISTORY, conn=c).status, 200)
        other = self.post(srv, HISTORY)
        self.assertEqual(other.status, 200)
        conns = [r.conn for r in srv.wait_requests(4)]
        self.assertEqual(conns[0], conns[1])
        self.assertEqual(conns[1], conns[2])
        self.assertNotEqual(conns[2], conns[3])
        # a client that does not trust the CA fails
        bad = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=5,
                                          context=ssl.create_default_context())
        self.addCleanup(bad.close)
        with self.assertRaises(ssl.SSLError):
            bad.request("GET", "/v1/models")
            bad.getresponse()

    def test_stall_holds_the_connection_without_an_answer(self):
        srv = self.fake()
        srv.script("stall")
        c = self.conn(srv, timeout=0.3)
        t = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.post(srv, HISTORY, conn=c)
        self.assertGreaterEqual(time.monotonic() - t, 0.25)
        req = srv.wait_requests(1)[0]
        self.assertEqual((req.status, req.mode), (None, "stall"))
        self.assertEqual(req.json, HISTORY)  # read whole
        self.assertEqual(self.post(srv, HISTORY).status, 200)  # others are served meanwhile
        srv.script("stall", seconds=0.2)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.post(srv, HISTORY)
        # stop() releases a stalled connection at once
        srv.script("stall")
        got = []

        def client():
            try:
                self.post(srv, HISTORY)
                got.append("answered")
            except (OSError, http.client.HTTPException) as e:
                got.append(e)
        th = threading.Thread(target=client)
        th.start()
        srv.wait_requests(4)
        t = time.monotonic()
        srv.stop()
        th.join(3)
        self.assertFalse(th.is_alive())
        self.assertLess(time.monotonic() - t, 2)
        self.assertNotEqual(got, ["answered"])

    def test_reset_and_delay(self):
        srv = self.fake()
        srv.script("reset")
        with self.assertRaises(ConnectionResetError):
            self.post(srv, HISTORY)
        self.assertIsNone(srv.wait_requests(1)[0].status)
        srv.script("delay", seconds=0.3, then="unknown_marker")
        t = time.monotonic()
        self.assertEqual(self.content(self.post(srv, HISTORY)), "Позвоните нам: [PHONE_99].")
        self.assertGreaterEqual(time.monotonic() - t, 0.25)

    def test_slow_trickles_one_byte_at_a_time(self):
        srv = self.fake()
        srv.script("slow", interval_ms=2, then="text", text="ok")
        c = self.conn(srv)
        c.request("POST", "/v1/chat/completions", body=json.dumps(HISTORY).encode(),
                  headers={"Content-Type": "application/json"})
        t = time.monotonic()
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("transfer-encoding"), "chunked")
        self.assertIsNone(r.getheader("content-length"))
        first = r.read(1)
        t_first = time.monotonic() - t
        rest = r.read()
        total = time.monotonic() - t
        doc = json.loads(first + rest)
        self.assertEqual(doc["choices"][0]["message"]["content"], "ok")
        n = len(first + rest)
        self.assertGreater(n, 100)
        # a byte every 2 ms: the whole takes at least n * 2 ms, the first byte far less
        self.assertGreaterEqual(total, n * 0.002 * 0.9)
        self.assertLess(t_first, total / 4)
        # and the connection is kept
        self.assertEqual(self.post(srv, HISTORY, conn=c).status, 200)
        reqs = srv.wait_requests(2)
        self.assertEqual(reqs[0].conn, reqs[1].conn)

    def test_stop_ends_a_trickle(self):
        srv = self.fake()
        srv.script("slow", interval_ms=200)
        c = self.conn(srv)
        got = []

        def client():
            try:
                self.post(srv, HISTORY, conn=c).body
                got.append("whole")
            except (OSError, http.client.HTTPException) as e:
                got.append(e)
        th = threading.Thread(target=client)
        th.start()
        srv.wait_requests(1)
        time.sleep(0.3)
        t = time.monotonic()
        srv.stop()
        th.join(3)
        self.assertFalse(th.is_alive())
        self.assertLess(time.monotonic() - t, 2)
        self.assertNotEqual(got, ["whole"])


class CommandLine(FakeCase):
    def test_serves_logs_and_stops_on_sigterm(self):
        d = tempfile.mkdtemp(prefix="hubt-fakeai-cli-")
        self.addCleanup(shutil.rmtree, d, True)
        port = util.free_port()
        proc = subprocess.Popen(
            [sys.executable, os.path.join(util.TESTS, "support", "fakeai.py"), "--dir", d,
             "--port", str(port), "--https"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        info_path = os.path.join(d, "fakeai.json")
        util.wait_for(lambda: os.path.exists(info_path) or proc.poll() is not None, 15,
                      "fakeai.json")
        self.assertIsNone(proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
        with open(info_path) as f:
            info = json.load(f)
        log = os.path.join(os.path.abspath(d), "requests.jsonl")
        self.assertEqual(info, {"base_url": "https://127.0.0.1:%d" % port, "requests": log,
                                "ca": os.path.join(os.path.abspath(d), "ca.pem"),
                                "pid": proc.pid})
        ctx = ssl.create_default_context(cafile=info["ca"])

        def call(method, path, body=None):
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
            try:
                c.request(method, path, body=body and json.dumps(body).encode(),
                          headers={"Content-Type": "application/json",
                                   "Authorization": "Bearer whatever"})
                r = c.getresponse()
                return r.status, json.loads(r.read())
            finally:
                c.close()

        st, doc = call("POST", "/v1/chat/completions", HISTORY)
        self.assertEqual((st, doc["choices"][0]["message"]["content"]),
                         (200, fakeai.PLAIN["ru"]))
        # the development helper scripts the next answer, and is not recorded
        st, _ = call("POST", "/_fake/script", {"mode": "echo_marker", "count": 1})
        self.assertEqual(st, 200)
        st, doc = call("POST", "/v1/chat/completions", HISTORY)
        self.assertEqual(doc["choices"][0]["message"]["content"], "Ваш номер: [PHONE_2]. Верно?")
        st, doc = call("POST", "/_fake/script", {"mode": "bogus"})
        self.assertEqual(st, 400)
        st, doc = call("GET", "/_fake/requests")
        self.assertEqual([r["mode"] for r in doc], ["plain", "echo_marker"])
        with open(log) as f:
            lines = [json.loads(x) for x in f.read().splitlines()]
        self.assertEqual(lines, [HISTORY, HISTORY])
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual((out, err), (b"", b""))  # quiet
        self.assertFalse(os.path.exists(info_path))
        self.assertTrue(os.path.exists(log))  # kept for anyone to read


if __name__ == "__main__":
    unittest.main()
