"""tests/integration/test_browser.py - the inbox page in a real browser: Debian's
/usr/bin/chromium driven by npm playwright-core (tests/browser/inbox.mjs, installed by
`npm ci` from the lockfile and cached in tests/browser/node_modules) against the ASan hubd
and a real PostgreSQL. An agent signs in, a WhatsApp webhook arrives live, the agent
replies (stored with its outbox row), hubd restarts on the same port while another
instance takes a message, and the page reconnects and resumes without a reload. The
screenshots stay in tests/out/<test>/.
"""
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import fakeplat, testca, util  # noqa: E402
from support.case import HubTestCase  # noqa: E402

BROWSER_DIR = os.path.join(util.TESTS, "browser")
CHROMIUM = "/usr/bin/chromium"
# What a page logs while its server is away on purpose (reconnect attempts): not a fault.
EXPECTED_NOISE = ("WebSocket connection to", "ERR_CONNECTION_REFUSED", "ERR_CONNECTION_RESET",
                  "ERR_EMPTY_RESPONSE")


def npm_ci():
    """Installs playwright-core as the lockfile pins it, unless node_modules has it."""
    with open(os.path.join(BROWSER_DIR, "package-lock.json"), encoding="utf-8") as f:
        want = json.load(f)["packages"]["node_modules/playwright-core"]["version"]
    have = os.path.join(BROWSER_DIR, "node_modules", "playwright-core", "package.json")
    try:
        with open(have, encoding="utf-8") as f:
            if json.load(f)["version"] == want:
                return
    except (OSError, ValueError, KeyError):
        pass
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300)
    if r.returncode != 0:
        raise AssertionError("npm ci in tests/browser failed:\n"
                             + r.stdout.decode("utf-8", "replace")[-3000:])


class Driver:
    """The node script: one JSON command a line in, one JSON answer a line out."""

    def __init__(self, out_dir):
        self.profile = tempfile.mkdtemp(prefix="hubt-chromium-")
        self.log = open(os.path.join(out_dir, "browser.stderr"), "wb")
        self.proc = subprocess.Popen(["node", os.path.join(BROWSER_DIR, "inbox.mjs"),
                                      self.profile], cwd=BROWSER_DIR, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log,
                                     start_new_session=True)
        self.buf = b""
        hello = self._read(60)
        if not hello.get("ready"):
            raise AssertionError("browser driver did not start: %r" % hello)
        self.version = hello.get("version")

    def _read(self, timeout):
        d = util.Deadline(timeout)
        while b"\n" not in self.buf:
            if d.expired():
                raise AssertionError("browser driver: no answer within %.0f s" % timeout)
            r, _, _ = select.select([self.proc.stdout], [], [], min(1.0, d.remaining()))
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("browser driver exited (%r); see browser.stderr"
                                         % self.proc.poll())
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, action, timeout=60, **kw):
        """Runs one action; returns its answer, raises AssertionError with its error."""
        kw["do"] = action
        self.proc.stdin.write((json.dumps(kw) + "\n").encode())
        self.proc.stdin.flush()
        r = self._read(timeout)
        if not r.get("ok"):
            raise AssertionError("browser: %s %s: %s"
                                 % (action, {k: v for k, v in kw.items() if k != "token"},
                                    r.get("error")))
        return r

    def try_call(self, action, **kw):
        try:
            return self.call(action, **kw)
        except AssertionError:
            return None

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("quit", timeout=20)
                self.proc.wait(20)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class BrowserCase(HubTestCase):
    def setUp(self):
        super().setUp()
        for tool in (CHROMIUM, shutil.which("node"), shutil.which("npm")):
            if not tool or not os.access(tool, os.X_OK):
                self.skipTest("chromium, node and npm are needed (apt-get install chromium "
                              "nodejs npm)")
        npm_ci()

    def browser(self):
        d = Driver(self.out)
        self.addCleanup(d.close)
        return d

    def open_inbox(self, h, sub="agent-1", ttl=None, viewport=None):
        """A browser on /inbox signed in by a link with a token in the fragment, online."""
        b = self.browser()
        if viewport:
            b.call("viewport", width=viewport[0], height=viewport[1])
        kw = {"sub": sub} if ttl is None else {"sub": sub, "ttl": ttl}
        b.call("open", url=h.base_url + "/inbox#token=" + self.token(h, **kw))
        b.call("wait_conn", state="online")
        return b

    def assert_no_page_problems(self, b):
        problems = [p for p in b.call("problems")["problems"]
                    if not any(n in p for n in EXPECTED_NOISE)]
        self.assertEqual(problems, [], "the page logged errors (CSP violations show here)")

    def say(self, h, text, wa_id="77011234567", name="Aigerim", cid="demo-whatsapp"):
        body, wamid, sig = self.text_webhook(h, cid, text=text, wa_id=wa_id, name=name)
        r = self.post_webhook(h, cid, body, sig)
        self.assertEqual(r.status, 200, r)
        return wamid


class Inbox(BrowserCase):
    def test_live_message_reply_and_resume_across_a_restart(self):
        cfg = self.config()
        h = self.start_hubd(cfg)
        b = self.browser()
        token = self.token(h, sub="agent-1")

        # sign in through the form; the token stays in this tab only
        b.call("open", url=h.base_url + "/inbox")
        b.call("wait_visible", selector="#signin-form")
        b.call("signin", token=token)
        b.call("wait_conn", state="online")
        st = b.call("storage")
        self.assertEqual((st["token"], st["local"], st["search"]), (token, 0, ""))

        # a WhatsApp message arrives live
        first = "Сәлеметсіз бе! Заказ №4471 қашан келеді? " + os.urandom(3).hex()
        self.say(h, first)
        b.call("wait_conversation", name="Aigerim")
        b.call("select", name="Aigerim")
        b.call("wait_message", text=first, direction="in")

        # the agent replies: the reply is stored, queued in the outbox, shown as sent
        reply = "Добрый день, Айгерим! Заказ уже в пути, будет завтра. " + os.urandom(3).hex()
        self.no_leak(reply)
        b.call("watch", text=reply)
        b.call("reply", text=reply)
        b.call("wait_stored", text=reply)
        self.assertEqual(b.call("watched")["most"], 1, "the reply showed twice at once")
        mid = util.wait_for(lambda: self.psql(
            "SELECT id FROM messages WHERE direction = 'out' AND text = '%s'" % reply), 20,
            "the reply in the database")
        self.assertEqual(self.psql("SELECT author FROM messages WHERE id = %s" % mid), "agent")
        self.assertEqual(self.count("outbox", "message_id = %s" % mid), 1)

        # hubd goes away; another instance takes a message meanwhile; hubd comes back on
        # the same port and the page resumes after the last event it saw, without a reload
        b.call("mark")
        h.stop()
        b.call("wait_visible", selector="#offline")
        other = self.start_hubd(cfg=dict(cfg, http=dict(cfg["http"], listen="127.0.0.1:%d"
                                                          % util.free_port())), name="other")
        during = "Ещё вопрос: можно оплатить картой? " + os.urandom(3).hex()
        self.say(other, during)
        other.stop()
        h.start()
        b.call("wait_conn", state="online", timeout=90)
        b.call("wait_message", text=during, direction="in", timeout=60)
        self.assertTrue(b.call("marked")["marked"], "the page reloaded")
        frames = b.call("frames")["received"]
        self.assertIn("resumed", [f.get("type") for f in frames], frames)
        replayed = [f for f in frames if f.get("event") == "message.created"
                    and f.get("data", {}).get("text") == during]
        self.assertEqual(len(replayed), 1, "the message came once, by replay")

        # and live again after the resume
        after = "Спасибо! " + os.urandom(3).hex()
        self.say(h, after)
        b.call("wait_message", text=after, direction="in")
        texts = [m["text"] for m in b.call("messages")["items"]]
        self.assertEqual(texts, [first, reply, during, after])
        b.call("screenshot", path=os.path.join(self.out, "inbox.png"))
        self.assert_no_page_problems(b)

    def test_link_with_token_in_the_fragment(self):
        h = self.start_hubd()
        token = self.token(h, sub="agent-2")
        b = self.browser()
        b.call("open", url=h.base_url + "/inbox#token=" + token)
        b.call("wait_conn", state="online")
        st = b.call("storage")
        self.assertEqual(st["token"], token)
        self.assertNotIn(token, st["hash"])        # taken out of the address bar at once
        self.assertEqual(st["search"], "")
        b.call("wait_text", selector="#me", text="agent-2")
        self.assert_no_page_problems(b)

    def test_token_expiring_returns_to_the_sign_in_form(self):
        h = self.start_hubd()
        # long enough to come online on a loaded machine, then it expires while open
        b = self.open_inbox(h, ttl=8)
        b.call("wait_visible", selector="#signin-error", timeout=60)
        b.call("wait_text", selector="#signin-error", text="истёк")
        self.assertIsNone(b.call("storage")["token"])
        self.assert_no_page_problems(b)

    def test_bad_token_is_refused_with_a_message(self):
        h = self.start_hubd()
        b = self.browser()
        b.call("open", url=h.base_url + "/inbox")
        b.call("signin_expect_error", token="not-a-token")
        b.call("signin_expect_error", token=self.token(h, secret="x" * 32))
        self.assert_no_page_problems(b)


    def test_read_assign_mode_and_typing(self):
        h = self.start_hubd()
        self.say(h, "Здравствуйте, нужна помощь с заказом", wa_id="77017770000", name="Ерлан")
        self.say(h, "Алло?", wa_id="77017770000", name="Ерлан")
        conv = self.psql("SELECT id FROM conversations")
        self.assertEqual(self.psql("SELECT unread FROM conversations"), "2")
        colleague = self.agent(h, sub="agent-2")
        b = self.open_inbox(h)
        self.assertEqual(b.call("wait_conversation", name="Ерлан")["text"].split()[-1], "2")
        # opening it reads it, for everyone
        b.call("select", name="Ерлан")
        util.wait_for(lambda: self.psql("SELECT unread FROM conversations") == "0", 20,
                      "unread reset by the read command")
        self.assertEqual(colleague.event("conversation.updated")["data"]["unread"], 0)
        # assign to me
        b.call("click", selector="#assign")
        b.call("wait_text", selector="#conv-assignee", text="Диалог ведёте вы")
        self.assertEqual(self.psql("SELECT assignee FROM conversations"), "agent-1")
        b.call("wait_visible", selector="#list li .tag-mine")
        # AI and back to a human
        b.call("click", selector='#mode button[data-mode="ai"]')
        b.call("wait_visible", selector='#mode button[data-mode="ai"].on')
        util.wait_for(lambda: self.psql("SELECT mode FROM conversations") == "ai", 20, "mode ai")
        b.call("wait_visible", selector="#list li .tag-ai")
        b.call("click", selector='#mode button[data-mode="human"]')
        util.wait_for(lambda: self.psql("SELECT mode FROM conversations") == "human", 20,
                      "mode human")
        # typing goes both ways, never to oneself
        b.call("type", selector="#reply", text="Сейчас проверю")
        self.assertEqual(colleague.event("typing")["data"],
                         {"conversation_id": int(conv), "user": "agent-1"})
        self.assertEqual(colleague.command({"type": "typing", "conversation_id": int(conv)})
                         ["type"], "ack")
        b.call("wait_text", selector="#typing", text="agent-2 печатает")
        # a colleague takes it over: the page shows who has it now
        ack = colleague.command({"type": "assign", "conversation_id": int(conv)})
        self.assertEqual(ack["type"], "ack", ack)
        b.call("wait_text", selector="#conv-assignee", text="Ведёт: agent-2")
        b.call("wait_text", selector="#assign", text="Забрать себе")
        b.call("screenshot", path=os.path.join(self.out, "assigned.png"))
        self.assert_no_page_problems(b)

    def test_reply_written_offline_is_sent_once_after_the_reconnect(self):
        cfg = self.config()
        h = self.start_hubd(cfg)
        self.say(h, "Вы работаете в выходные?", wa_id="77018880000", name="Гульнара")
        b = self.open_inbox(h)
        b.call("select", name="Гульнара")
        h.stop()
        b.call("wait_visible", selector="#offline")
        reply = "Да, с 10 до 18. " + os.urandom(3).hex()
        self.no_leak(reply)
        b.call("reply", text=reply)
        b.call("wait_visible", selector="#messages li.msg.out.pending .tick.st-queued")
        b.call("screenshot", path=os.path.join(self.out, "offline.png"))
        h.start()
        b.call("wait_conn", state="online", timeout=90)
        b.call("wait_stored", text=reply)
        self.assertEqual(self.count("messages", "direction = 'out'"), 1)
        self.assertEqual(self.count("outbox"), 1)
        sends = [f for f in b.call("frames")["sent"] if f.get("type") == "send"]
        self.assertEqual(len({f["client_id"] for f in sends}), 1, sends)
        self.assertEqual([m["text"] for m in b.call("messages")["items"]],
                         ["Вы работаете в выходные?", reply])
        self.assert_no_page_problems(b)

    def test_an_event_while_the_list_loads_is_not_undone_by_the_older_page(self):
        """The list's REST page is read, then a message arrives live before the page
        reaches the browser: the older page must neither undo the live state nor swallow
        the refresh the event asked for."""
        h = self.start_hubd()
        self.say(h, "Первый вопрос", wa_id="77013330000", name="Тимур")
        b = self.browser()
        b.call("hold", path="/api/v1/conversations")
        b.call("open", url=h.base_url + "/inbox#token=" + self.token(h))
        b.call("wait_conn", state="online")
        b.call("wait_held", n=1)
        self.say(h, "Второй вопрос", wa_id="77013330000", name="Тимур")
        b.call("wait_text", selector="#list li .badge", text="2")    # applied live
        b.call("release")
        b.call("wait_conversation", name="Тимур")                     # the older page
        self.assertEqual([(i["last"], i["unread"]) for i in b.call("list")["items"]],
                         [("Второй вопрос", "2")])
        b.call("wait_held", n=1)          # the refresh the unknown contact asked for
        b.call("release", stop=True)
        b.call("select", name="Тимур")
        b.call("wait_message", text="Второй вопрос", direction="in")
        self.assertEqual([m["text"] for m in b.call("messages")["items"]],
                         ["Первый вопрос", "Второй вопрос"])
        self.assert_no_page_problems(b)


class Delivery(BrowserCase):
    def test_reply_goes_queued_sent_delivered_read_and_a_failed_one_is_retried(self):
        wa = fakeplat.FakePlatform("whatsapp", testca.TestCA(os.path.join(self.out, "ca")))
        wa.start()
        self.addCleanup(wa.stop)
        h = self.start_hubd(overrides={"outbound.enabled": True,
                                       "platforms.whatsapp_url": wa.base_url,
                                       "platforms.ca_file": wa.ca.ca})
        # statuses come well after the (slow) answer, one by one, so each tick shows
        wa.callback(h.base_url, self.channel(h, "demo-whatsapp"), delay=0.7, first_delay=2.5)
        self.say(h, "Когда доставка?", wa_id="77018880001", name="Ерлан")
        b = self.open_inbox(h)
        b.call("select", name="Ерлан")
        wa.fail_next("delay", seconds=1.5)      # the platform takes its time: queued shows
        reply = "Завтра до обеда. " + os.urandom(3).hex()
        self.no_leak(reply)
        b.call("reply", text=reply)
        for status in ("queued", "sent", "delivered", "read"):
            b.call("wait_stored", text=reply, status=status)
        b.call("screenshot", path=os.path.join(self.out, "read.png"))
        wa.fail_next("invalid", message="(#100) Invalid parameter")
        second = "И ещё вопрос: " + os.urandom(3).hex()
        self.no_leak(second)
        b.call("reply", text=second)
        b.call("wait_stored", text=second, status="failed")
        b.call("wait_text", selector="#messages li.msg.out.failed .fail-why",
               text="Invalid parameter")
        b.call("screenshot", path=os.path.join(self.out, "failed.png"))
        b.call("click", selector="#messages li.msg.out.failed .fail-why button")
        b.call("wait_stored", text=second, status="read")
        self.assertEqual(b.call("count", selector="#messages li.msg.out.failed")["n"], 0)
        self.assertEqual(len([r for r in wa.requests if r.op == "send"]), 3)
        self.assert_no_page_problems(b)


class Rendering(BrowserCase):
    def test_list_statuses_and_untrusted_text(self):
        """A busy inbox: order by activity, unread counts, channel and mode, ticks for
        each delivery status, and message text that looks like HTML shown as text."""
        h = self.start_hubd()
        people = [("77015550001", "Нурлан Абенов", "Добрый день! Подскажите, есть ли доставка"
                   " в Караганду?"),
                  ("77015550002", "Мария Ким", "Спасибо, всё получила 👍"),
                  ("77015550003", "Данияр", "Қашан жеткізесіздер?"),
                  ("77015550004", "Алия С.", '<img src=x onerror="document.title=1">'
                   '<script>alert(1)</script>'),
                  ("77015550005", '<b onmouseover="x()">Жанна</b>', "Здравствуйте")]
        for wa, name, text in people:
            self.say(h, text, wa_id=wa, name=name)
        conv = self.psql("SELECT v.id FROM conversations v JOIN contacts c "
                         "ON c.id = v.contact_id WHERE c.phone = '+77015550001'")
        for status, text in (("read", "Да, доставляем за 2 дня."),
                             ("delivered", "Стоимость — 1 500 ₸."),
                             ("sent", "Оформить заказ?"),
                             ("failed", "Номер недоступен для сообщений")):
            self.psql("INSERT INTO messages (tenant_id, conversation_id, channel_id, "
                      "direction, author, type, text, status, error) SELECT tenant_id, id, "
                      "channel_id, 'out', 'agent', 'text', '%s', '%s', %s FROM conversations "
                      "WHERE id = %s" % (text, status, "'131026 undeliverable'"
                                         if status == "failed" else "NULL", conv))
        self.psql("UPDATE conversations SET mode = 'ai' WHERE id = %s" % conv)
        b = self.open_inbox(h)
        b.call("wait_conversation", name="Алия")
        names = [i["name"] for i in b.call("list")["items"]]
        self.assertEqual(names, ['<b onmouseover="x()">Жанна</b>', "Алия С.", "Данияр",
                                 "Мария Ким", "Нурлан Абенов"])
        b.call("select", name="Жанна")
        b.call("wait_text", selector="#conv-name", text='<b onmouseover="x()">Жанна</b>')
        self.assertEqual(b.call("count", selector="#app b, #app img, #app script")["n"], 0)
        b.call("select", name="Алия")
        b.call("wait_message", text="<script>alert(1)</script>", direction="in")
        self.assertEqual(b.call("count", selector="#messages img, #messages script")["n"], 0)
        b.call("select", name="Нурлан")
        for status in ("read", "delivered", "sent", "failed"):
            b.call("wait_visible", selector="#messages .tick.st-" + status)
        b.call("wait_text", selector=".fail-why", text="131026")
        b.call("wait_visible", selector='#mode button[data-mode="ai"].on')
        b.call("screenshot", path=os.path.join(self.out, "statuses.png"))
        self.assert_no_page_problems(b)

    def test_older_messages_and_more_conversations_load_on_scroll(self):
        h = self.start_hubd()
        self.say(h, "Первое сообщение", wa_id="77016660000", name="Длинная История")
        # 60 more conversations, and 120 older messages in the first one
        self.psql("INSERT INTO contacts (tenant_id, display_name, phone) SELECT 'demo', "
                  "'Клиент ' || g, '+7702' || lpad(g::text, 7, '0') "
                  "FROM generate_series(1, 60) g")
        self.psql("INSERT INTO conversations (tenant_id, contact_id, channel_id, "
                  "last_message_at) SELECT 'demo', c.id, ch.id, now() - c.id * interval "
                  "'1 minute' FROM contacts c, channels ch WHERE c.display_name LIKE "
                  "'Клиент %' AND ch.public_id = 'demo-whatsapp'")
        self.psql("INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, "
                  "author, type, text, status) SELECT v.tenant_id, v.id, "
                  "v.channel_id, CASE WHEN g % 3 = 0 THEN 'out' ELSE 'in' END, CASE WHEN "
                  "g % 3 = 0 THEN 'agent' ELSE 'contact' END, 'text', 'Старое ' || g, CASE "
                  "WHEN g % 3 = 0 THEN 'read' ELSE 'received' END "
                  "FROM conversations v, generate_series(1, 120) g "
                  "WHERE v.id = (SELECT min(id) FROM conversations)")
        self.say(h, "Последнее сообщение", wa_id="77016660000", name="Длинная История")
        b = self.open_inbox(h)
        b.call("select", name="Длинная История")
        b.call("wait_message", text="Последнее сообщение", direction="in")
        self.assertEqual(b.call("count", selector="#messages li.msg:not(.who)")["n"], 50)
        b.call("scroll_until", box="#thread", to="top",
               selector="#messages li.msg:not(.who)", n=122)
        b.call("wait_text", selector="#older", text="Начало переписки")
        texts = [m["text"] for m in b.call("messages")["items"]]
        self.assertEqual(texts, ["Первое сообщение"] + ["Старое %d" % g for g in range(1, 121)]
                         + ["Последнее сообщение"])
        self.assertEqual(b.call("count", selector="#list li")["n"], 50)
        b.call("scroll_until", box="#list", to="bottom", selector="#list li", n=61)
        names = [i["name"] for i in b.call("list")["items"]]
        self.assertEqual(len(set(names)), 61)
        self.assertEqual(names[:3], ["Длинная История", "Клиент 1", "Клиент 2"])
        b.call("screenshot", path=os.path.join(self.out, "history.png"))
        self.assert_no_page_problems(b)

    def test_channels_modes_and_assignees_in_the_list(self):
        h = self.start_hubd()
        self.say(h, "Здравствуйте! Можно записаться на завтра на 15:00?", wa_id="77019990001",
                 name="Айгерим Нурланова")
        self.say(h, "Сәлеметсіз бе, бағасы қанша?", wa_id="77019990002", name="Бауыржан")
        for kind in ("telegram", "instagram"):
            self.psql("SELECT hub_upsert_channel('demo', 'Demo company', 'demo-%s', '%s', "
                      "'1')" % (kind, kind))
        rows = (("demo-telegram", "Олжас", "Добрый вечер, заказ 5521 пришёл без чека", 2,
                 "agent-1", "human"),
                ("demo-instagram", "kamila.style", "Есть размер S?", 1, None, "ai"),
                ("demo-telegram", "Светлана Петрова", "Спасибо за помощь!", 0, "agent-7",
                 "human"))
        for i, (ch, name, text, unread, assignee, mode) in enumerate(rows):
            self.psql("WITH c AS (INSERT INTO contacts (tenant_id, display_name) VALUES "
                      "('demo', '%s') RETURNING id), v AS (INSERT INTO conversations "
                      "(tenant_id, contact_id, channel_id, last_message_at, unread, assignee, "
                      "mode) SELECT 'demo', c.id, ch.id, now() - interval '%d minutes', %d, "
                      "%s, '%s' FROM c, channels ch WHERE ch.public_id = '%s' RETURNING *) "
                      "INSERT INTO messages (tenant_id, conversation_id, channel_id, "
                      "direction, author, type, text, status, created_at) SELECT 'demo', v.id, "
                      "v.channel_id, 'in', 'contact', 'text', '%s', 'received', "
                      "v.last_message_at FROM v"
                      % (name, 5 + 40 * i, unread, "'%s'" % assignee if assignee else "NULL",
                         mode, ch, text))
        b = self.open_inbox(h)
        b.call("wait_conversation", name="Светлана")
        items = b.call("list")["items"]
        self.assertEqual([i["name"] for i in items],
                         ["Бауыржан", "Айгерим Нурланова", "Олжас", "kamila.style",
                          "Светлана Петрова"])
        self.assertEqual([i["unread"] for i in items], ["1", "1", "2", "1", ""])
        for tag in ("WA", "TG", "IG", "ИИ", "мой", "agent-7"):
            b.call("wait_text", selector="#list li .tag", text=tag)
        b.call("click", selector='#filters button[data-filter="mine"]')
        self.assertEqual([i["name"] for i in b.call("list")["items"]], ["Олжас"])
        b.call("click", selector='#filters button[data-filter="all"]')
        b.call("type", selector="#search", text="7701999")
        self.assertEqual([i["name"] for i in b.call("list")["items"]],
                         ["Бауыржан", "Айгерим Нурланова"])
        b.call("clear", selector="#search")
        b.call("select", name="Айгерим")
        b.call("reply", text="Да, записала вас на 15:00. До встречи!")
        b.call("wait_stored", text="Да, записала вас на 15:00")
        b.call("screenshot", path=os.path.join(self.out, "inbox.png"))
        self.assert_no_page_problems(b)

    def test_keyboard_only_and_focus_kept_through_live_updates(self):
        h = self.start_hubd()
        self.say(h, "Добрый день!", wa_id="77012220001", name="Бекзат")
        self.say(h, "Здравствуйте", wa_id="77012220002", name="Камила")
        b = self.open_inbox(h)
        b.call("wait_conversation", name="Бекзат")
        b.call("focus", selector="#list li")
        b.call("press", key="ArrowDown")
        self.assertIn("Бекзат", b.call("active")["text"])
        # a message arrives: the list is drawn again, the focus stays on the same row
        self.say(h, "Алло, вы тут?", wa_id="77012220002", name="Камила")
        b.call("wait_text", selector="#list li .li-last", text="Алло, вы тут?")
        self.assertIn("Бекзат", b.call("active")["text"])
        b.call("press", key="Enter")
        b.call("wait_text", selector="#conv-name", text="Бекзат")
        self.assertEqual(b.call("active")["id"], "reply")     # ready to type
        reply = "Добрый! Чем помочь? " + os.urandom(3).hex()
        self.no_leak(reply)
        b.call("type", selector="#reply", text=reply)
        b.call("press", key="Enter")
        b.call("wait_stored", text=reply)
        self.assertEqual(self.count("messages", "direction = 'out'"), 1)
        self.assert_no_page_problems(b)

    def test_narrow_screen_shows_the_list_or_the_conversation(self):
        h = self.start_hubd()
        self.say(h, "Добрый день! Можно вернуть товар?", wa_id="77012220000", name="Асель")
        b = self.open_inbox(h, viewport=(420, 800))
        b.call("select", name="Асель")
        b.call("wait_message", text="Можно вернуть товар?", direction="in")
        b.call("wait_visible", selector="#back")
        self.assertEqual(b.call("count", selector=".side:visible")["n"], 0)
        b.call("screenshot", path=os.path.join(self.out, "narrow.png"))
        b.call("click", selector="#back")
        b.call("wait_conversation", name="Асель")
        self.assertEqual(b.call("count", selector="#conv:visible")["n"], 0)
        self.assert_no_page_problems(b)


class Settings(BrowserCase):
    def test_an_admin_connects_a_channel_exports_and_erases_a_customer(self):
        h = self.start_hubd()
        text = "Здравствуйте, удалите мои данные " + os.urandom(3).hex()
        self.no_leak(text)
        self.say(h, text, wa_id="77012220009", name="Дана")
        # an agent has no Settings
        agent = self.open_inbox(h)
        self.assertEqual(agent.call("count", selector="#open-settings:visible")["n"], 0)
        b = self.browser()
        b.call("open", url=h.base_url + "/inbox#token=" +
               self.token(h, sub="admin-1", role="admin"))
        b.call("wait_conn", state="online")
        b.call("click", selector="#open-settings")
        b.call("wait_text", selector="#channels tr", text="demo-whatsapp")
        # a channel with mistakes: the server's field errors, nothing stored
        before = self.count("channels")
        b.call("fill", selector="#ch-account", value="1 2")
        b.call("click", selector="#channel-form button[type=submit]")
        b.call("wait_visible", selector="#channel-errors")
        self.assertIn("account_id", b.call("text", selector="#channel-errors")["text"])
        self.assertEqual(b.call("count", selector="#ch-account[aria-invalid=true]")["n"], 1)
        self.assertEqual(self.count("channels"), before)
        # then right: the webhook URL and the verify token, shown this once
        secret = "app-secret-" + os.urandom(8).hex()
        self.no_leak(secret)
        b.call("fill", selector="#ch-id", value="demo-sales")
        b.call("fill", selector="#ch-account", value="106540352249999")
        b.call("fill", selector="#ch-secret", value=secret)
        b.call("click", selector="#channel-form button[type=submit]")
        b.call("wait_visible", selector="#channel-created")
        self.assertIn("/webhooks/whatsapp/demo-sales",
                      b.call("text", selector="#created-url")["text"])
        self.assertRegex(b.call("text", selector="#created-token")["text"], r"^\w{16,}$")
        row = '#channels tr[data-channel="demo-sales"]'
        b.call("wait_visible", selector=row)
        # checking it says in words what is wrong: no access token was given
        b.call("click", selector=row + ' button:text("Проверить")')
        b.call("wait_text", selector="#channel-note", text="access token")
        b.call("click", selector=row + ' button:text("Отключить")')
        b.call("wait_text", selector=row, text="Отключён")
        self.assertEqual(self.psql("SELECT enabled FROM channels WHERE public_id = "
                                   "'demo-sales'"), "f")
        # a customer: found by the phone as they would say it, exported, erased
        b.call("click", selector='#settings-tabs button[data-tab="contacts"]')
        b.call("fill", selector="#contact-q", value="+7 701 222 00 09")
        b.call("click", selector="#contact-search button")
        b.call("wait_text", selector="#contacts li", text="Дана")
        d = b.call("download", selector='#contacts li button:text("Выгрузить данные")')
        self.assertRegex(d["name"], r"^contact-\d+\.json$")
        self.assertIn(text, d["body"])
        b.call("confirm_next")
        b.call("click", selector='#contacts li button:text("Удалить данные")')
        b.call("wait_text", selector="#contact-note", text="удалены")
        self.assertEqual(self.count("messages"), 0)
        self.assertEqual(self.count("contacts"), 0)
        # and the audit log shows both, newest first
        b.call("click", selector='#settings-tabs button[data-tab="audit"]')
        b.call("wait_text", selector="#audit li", text="contact.erase")
        self.assertIn("channel.create", b.call("text", selector="#audit")["text"])
        b.call("screenshot", path=os.path.join(self.out, "settings.png"))
        # the one refused request (the channel with mistakes) is the only error logged
        problems = b.call("problems")["problems"]
        self.assertEqual([p for p in problems if "status of 400" not in p], [], problems)
        self.assertEqual(len(problems), 1, problems)
        self.assert_no_page_problems(agent)
