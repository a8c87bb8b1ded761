"""tests/integration/test_webchat_browser.py - the website chat in a real browser: Debian's
/usr/bin/chromium driven by npm playwright-core (tests/browser/webchat.mjs) against the ASan
hubd. The demo shop page (demo/shop.html, a strict CSP allowing only itself and the hub) is
served from another origin and embeds /widget.js; a visitor opens the chat with the
keyboard and writes a text of HTML and script, the agent's inbox page (a second browser
context) sees it live, as text, with the web badge, and answers; the visitor sees the
answer; the network goes (hubd stops) while the visitor writes and another instance takes
an agent's answer, and when hubd is back the widget resumes: both once; a reload keeps the
history, once; the panel is usable at 360 px (screenshot in tests/out/<test>/).
"""
import hashlib
import hmac
import http.server
import os
import shutil
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import util  # noqa: E402
from support.case import HubTestCase  # noqa: E402

import test_browser  # noqa: E402  (npm_ci, the driver process)

ROOT = os.path.dirname(util.TESTS)
SECRET = "webchat-browser-secret-" + os.urandom(8).hex()


class Shop:
    """The demo shop on 127.0.0.1:PORT: another origin than the hub's."""

    def __init__(self, hub):
        with open(os.path.join(ROOT, "demo", "shop.html"), encoding="utf-8") as f:
            page = f.read().replace("@HUBWS@", hub.replace("http://", "ws://"))
        page = page.replace("@HUB@", hub)
        good = hmac.new(SECRET.encode(), b"crm-42", hashlib.sha256).hexdigest()
        tag = 'data-channel="demo-web"'
        user_pages = {
            "/user-forged": page.replace(tag, tag + ' data-user-id="crm-42" data-user-hash="%s"'
                                         % ("0" * 64)).encode(),
            "/user": page.replace(tag, tag + ' data-user-id="crm-42" data-user-hash="%s"'
                                  % good).encode()}
        page = page.encode()
        with open(os.path.join(ROOT, "demo", "shop.css"), "rb") as f:
            css = f.read()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body, kind = (css, "text/css") if self.path == "/shop.css" else (
                    user_pages.get(self.path, page), "text/html; charset=utf-8")
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.port = util.free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/" % self.port

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Driver(test_browser.Driver):
    def __init__(self, out_dir):  # pylint: disable=super-init-not-called
        import subprocess
        import tempfile
        self.profile = tempfile.mkdtemp(prefix="hubt-chromium-")
        self.log = open(os.path.join(out_dir, "browser.stderr"), "wb")
        self.proc = subprocess.Popen(["node", os.path.join(test_browser.BROWSER_DIR,
                                                           "webchat.mjs")],
                                     cwd=test_browser.BROWSER_DIR, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log,
                                     start_new_session=True)
        self.buf = b""
        hello = self._read(60)
        if not hello.get("ready"):
            raise AssertionError("browser driver did not start: %r" % hello)


class WidgetInBrowser(HubTestCase):
    def setUp(self):
        super().setUp()
        for tool in (test_browser.CHROMIUM, shutil.which("node"), shutil.which("npm")):
            if not tool or not os.access(tool, os.X_OK):
                self.skipTest("chromium, node and npm are needed")
        test_browser.npm_ci()

    def test_visitor_and_agent_talk(self):
        port = util.free_port()
        shop_port_holder = []
        cfg = self.config(port=port)
        hub = "http://127.0.0.1:%d" % port
        shop = Shop(hub)
        self.addCleanup(shop.stop)
        shop_port_holder.append(shop.port)
        cfg["channels"].append({
            "id": "demo-web", "tenant": "demo", "kind": "web", "account_id": "demo-web",
            "app_secret": SECRET,
            "web": {"origins": ["http://127.0.0.1:%d" % shop.port],
                    "title": {"ru": "Демо-магазин", "en": "Demo shop"},
                    "color": "#0a6e5c", "greeting": {"ru": "Здравствуйте!"},
                    "prechat": False}})
        h = self.start_hubd(cfg)
        b = Driver(self.out)
        self.addCleanup(b.close)

        b.call("shop", url=shop.url)
        opened = b.call("launcher")
        self.assertEqual(opened["expanded"], "true")
        self.assertEqual(opened["title"], "Демо-магазин")
        text = "<b>жирный</b><script>alert('x')</script> " + os.urandom(3).hex()
        self.no_leak(text)
        b.call("vsend", text=text)
        b.call("vwait", text=text, author="visitor")

        b.call("inbox", url=h.base_url + "/inbox#token=" + self.token(h))
        row = b.call("aselect", tag="WEB")
        self.assertIn("WEB", row["text"])
        shown = b.call("await_msg", text=text)
        self.assertNotIn("<script>", shown["html"])  # escaped: shown as text
        self.assertIn("&lt;script&gt;", shown["html"])

        reply = "Здравствуйте! Чем помочь? " + os.urandom(3).hex()
        b.call("areply", text=reply)
        b.call("vwait", text=reply, author="agent")

        # the network goes: hubd stops; the visitor writes meanwhile; another instance
        # (the same database) takes an agent's answer; hubd comes back on its port and the
        # widget resumes: the visitor's text is stored once, the answer shows once
        h.stop()
        b.call("vwait_status", visible=True)
        offline = "Пока без сети " + os.urandom(3).hex()
        b.call("vsend", text=offline)
        other = self.start_hubd(cfg=dict(cfg, http=dict(cfg["http"], listen="127.0.0.1:%d"
                                                          % util.free_port())), name="other")
        conv = int(self.psql("SELECT v.id FROM conversations v JOIN channels c ON "
                             "c.id = v.channel_id WHERE c.public_id = 'demo-web'"))
        a = self.agent(other)
        meanwhile = "<i>Ответ</i> пока вас не было " + os.urandom(3).hex()
        self.assertEqual(a.command({"type": "send", "conversation_id": conv,
                                    "text": meanwhile, "client_id": "m1"})["type"], "ack")
        a.close()
        other.stop()
        h.start()
        b.call("vwait", text=meanwhile, author="agent", timeout=60000)
        b.call("vwait_status", visible=False, timeout=60000)
        util.wait_for(lambda: self.count("messages", "text = '%s'" % offline) == 1, 30,
                      "the text written offline stored")
        msgs = b.call("vmessages")["texts"]
        texts = [m["text"] for m in msgs]
        self.assertEqual(texts.count(meanwhile), 1, msgs)
        self.assertEqual(texts.count(offline), 1, msgs)
        self.assertEqual(texts.count(reply), 1, msgs)
        self.assertEqual(self.count("messages", "text = '%s'" % offline), 1)

        b.call("vreload")
        b.call("launcher")
        b.call("vwait", text=reply, author="agent")
        msgs = b.call("vmessages")["texts"]
        texts = [m["text"] for m in msgs]
        self.assertEqual(texts.count(text), 1, msgs)
        self.assertEqual(texts.count(reply), 1, msgs)
        self.assertEqual(texts.count(meanwhile), 1, msgs)
        self.assertEqual(texts.count(offline), 1, msgs)
        self.assertFalse(any(m["html"] for m in msgs), "markup in the widget")

        b.call("shop", url=shop.url, width=360, height=740)
        b.call("launcher")
        b.call("vwait", text=reply, author="agent")
        box = b.call("vpanel_box")
        self.assertLessEqual(box["box"]["width"], 360)
        self.assertTrue(box["send"])
        b.call("vscreenshot", path=os.path.join(self.out, "widget-360.png"))
        # a signed-in user: a forged hash is refused (the panel says so, nothing stored),
        # the right one chats as that user
        before = self.count("contact_identities")
        b.call("shop", url=shop.url + "user-forged", width=1280, height=800)
        b.call("launcher")
        b.call("vwait_status", visible=True)
        self.assertIn("недоступен", b.call("vstatus")["text"])
        self.assertEqual(self.count("contact_identities"), before)
        b.call("shop", url=shop.url + "user")
        b.call("launcher")
        mine = "Я вошёл в аккаунт " + os.urandom(3).hex()
        b.call("vsend", text=mine)
        b.call("vwait", text=mine, author="visitor")
        util.wait_for(lambda: self.count("contact_identities", "external_id = 'u:crm-42'")
                      == 1, 20, "the user's identity")
        problems = [p for p in b.call("problems")["problems"]
                    if not any(n in p for n in test_browser.EXPECTED_NOISE +
                               ("status of 401",))]  # the forged hash's answer
        self.assertEqual(problems, [], "the pages logged errors (CSP violations show here)")
        h.assert_alive()
