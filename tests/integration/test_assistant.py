"""tests/integration/test_assistant.py - the AI responder against a real hubd, PostgreSQL, a
fake OpenAI-compatible provider (tests/support/fakeai.py, which records every request body)
and the fake Telegram Bot API: what leaves the hub holds no personal datum in any form,
markers come back as the real values, the disclosure goes with a contact's first answer
only (in their language), three quick messages are one answer, hand-offs (asked for, agent,
provider errors, guard block) with their reasons, a crash between the provider's answer
and its record, two instances, and `hubctl channel ai`'s refusals.
"""
import copy
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import fakeai, fakeplat, httpc, testca, util  # noqa: E402
from support.case import HubTestCase  # noqa: E402

TG_BOT = "7000000001"
KEY = "sk-test-" + os.urandom(12).hex()

DISCLOSURE_START = {
    "ru": "Здравствуйте! Это ИИ-ассистент компании «Demo company»",
    "kk": "Сәлеметсіз бе! Бұл «Demo company» компаниясының ЖИ-көмекшісі",
    "en": "Hello! This is Demo company's AI assistant",
}


def compact(doc):
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class AssistantCase(HubTestCase):
    needs_hubctl = True

    def setUp(self):
        super().setUp()
        self.ca = testca.TestCA(os.path.join(self.out, "ca"))
        self.tg = fakeplat.FakePlatform("telegram", self.ca)
        self.tg.start()
        self.addCleanup(self.tg.stop)
        self.ai = fakeai.FakeAI(log_path=os.path.join(self.out, "requests.jsonl"))
        self.ai.start()
        self.addCleanup(self.ai.stop)
        self.ai.expect_key(KEY)
        self.no_leak(KEY)
        self.update_id = int(time.time()) % 2**30
        self.msg_id = 1000

    def start(self, overrides=None, name="hubd", env=None, ai=True, cfg=None, **ai_opts):
        """hubd sending to the fakes, with the assistant of demo-telegram on (ai_opts: more
        `hubctl channel ai` options, as --quiet-ms=300 is quiet_ms=300)."""
        if cfg is None:
            o = {"outbound.enabled": True, "outbound.retry_base_ms": 100,
                 "outbound.lease_ms": 3000, "platforms.ca_file": self.ca.ca,
                 "platforms.telegram_url": self.tg.base_url,
                 "platforms.response_timeout_ms": 3000,
                 "assistant.retry_base_ms": 50, "assistant.lease_ms": 3000,
                 "assistant.timeout_ms": 3000}
            o.update(overrides or {})
            cfg = self.config(o)
            cfg["channels"].append(
                {"id": "demo-telegram", "tenant": "demo", "kind": "telegram",
                 "account_id": TG_BOT, "app_secret": "tg-" + os.urandom(12).hex(),
                 "access_token": TG_BOT + ":AAH" + os.urandom(12).hex()})
        h = self.start_hubd(cfg, name=name, env=env)
        if ai:
            opts = {"quiet-ms": "300"}
            opts.update({k.replace("_", "-"): str(v) for k, v in ai_opts.items()})
            r = self.channel_ai(h, "--on", "--url", self.ai.base_url, "--model", "fake-model",
                                "--key-file", self.key_file(),
                                *[a for k, v in opts.items() for a in ("--" + k, v)])
            self.assertEqual(r.returncode, 0, r.stderr)
        return h

    def key_file(self):
        path = os.path.join(self.out, "ai-key")
        with open(path, "w") as f:
            f.write(KEY + "\n")
        return path

    def channel_ai(self, h, *args):
        return self.hubctl("-c", h.config_path, "channel", "ai", "demo-telegram", *args)

    def say(self, h, user, text, first="Айгерим", last="Сапарова", username="aigerim_s"):
        """A Telegram text from user (an int id) to demo-telegram."""
        self.update_id += 1
        self.msg_id += 1
        sender = {"id": user, "is_bot": False, "first_name": first}
        if last:
            sender["last_name"] = last
        if username:
            sender["username"] = username
        body = compact({"update_id": self.update_id, "message": {
            "message_id": self.msg_id, "date": int(time.time()), "text": text,
            "from": sender, "chat": dict(sender, type="private")}})
        ch = self.channel(h, "demo-telegram")
        r = httpc.request(h.port, "POST", "/webhooks/telegram/demo-telegram", body=body,
                          headers={"Content-Type": "application/json",
                                   "X-Telegram-Bot-Api-Secret-Token": ch["app_secret"]})
        self.assertEqual(r.status, 200, r)

    def sent(self, n, timeout=10):
        """The texts of the first n sendMessage calls the fake Telegram received."""
        return [r.json["text"] for r in self.tg.wait_requests(n, timeout=timeout,
                                                              op="sendMessage")][:n]

    def conv_of(self, user):
        return int(self.psql("SELECT v.id FROM conversations v JOIN contact_identities i "
                             "ON i.contact_id = v.contact_id WHERE i.external_id = '%d'"
                             % user))

    def until(self, sql, want, timeout=10):
        end = time.monotonic() + timeout
        while True:
            got = self.psql(sql)
            if got == want or time.monotonic() > end:
                self.assertEqual(got, want, sql)
                return
            time.sleep(0.05)

    def handoff_event(self, agent, conv, timeout=10):
        end = time.monotonic() + timeout
        while True:
            ev = agent.event("conversation.updated", timeout=max(0.1, end - time.monotonic()))
            if ev["data"]["id"] == conv and ev["data"]["mode"] == "human":
                return ev["data"]


class Privacy(AssistantCase):
    TURNS = [
        "Здравствуйте! Меня зовут Айгерим Сапарова, хочу оформить доставку букета.",
        "Мой номер +7 701 123 45 67, или 87011234567, или 8(701)123-45-67",
        "и ещё почта aigerim.saparova@mail.kz",
        "Картой 4400 4301 2345 6789, если можно. Для чека мой ИИН 900515445014",
        "А перевод на IBAN KZ86125KZT5004100100 можно?",
        "Если не дозвонитесь, звоните сестре Динаре Ахметовой. Заказ для Aigerim Saparova, "
        "у Сапаровой дома будут после 18:00",
    ]
    NEVER = ["+7 701 123 45 67", "87011234567", "8(701)123-45-67", "+77011234567",
             "aigerim.saparova@mail.kz", "4400 4301 2345 6789", "900515445014",
             "KZ86125KZT5004100100", "aigerim_s"]
    NEVER_LOWER = ["айгерим", "сапаров", "aigerim", "saparov", "динар", "ахметов",
                   "kz86125kzt5004100100", "@mail.kz"]
    NEVER_DIGITS = ["7011234567", "900515445014", "4400430123456789", "5004100100",
                    "1234567"]

    def test_the_provider_gets_markers_and_never_a_personal_datum(self):
        self.ai.script("echo_marker", template="Ваш номер: {marker}. Верно?")
        h = self.start(quiet_ms=1500)  # a loaded machine may take 300 ms per webhook
        agent = self.agent(h)
        for t in self.TURNS:  # quick messages: one answer after the quiet period
            self.no_leak(t)
            self.say(h, 5127345680, t)
        reqs = self.ai.wait_requests(1, timeout=10)
        body = reqs[0].body.decode("utf-8")
        low = body.lower()
        for v in self.NEVER:
            self.assertNotIn(v, body)
        for v in self.NEVER_LOWER:
            self.assertNotIn(v, low)
        for text in reqs[0].texts():
            digits = re.sub(r"\D", "", text)
            for v in self.NEVER_DIGITS:
                self.assertNotIn(v, digits)
        for kind in ("PHONE", "EMAIL", "IIN", "CARD", "IBAN", "NAME"):
            self.assertRegex(body, r"\[%s_\d+\]" % kind)
        self.assertEqual(reqs[0].headers["authorization"], "Bearer " + KEY)
        # the answer's [PHONE_n] reaches the customer as the number they wrote
        text = self.sent(1)[0]
        # the log file holds exactly what was sent
        with open(self.ai.log_path, "rb") as f:
            self.assertEqual(f.read().splitlines()[0], reqs[0].body)
        self.assertTrue(text.startswith(DISCLOSURE_START["ru"]), text)
        self.assertRegex(text, r"Ваш номер: (\+7 701 123 45 67|87011234567|8\(701\)123-45-67)\. "
                         r"Верно\?$")
        ev = agent.event("message.created")
        while ev["data"]["author"] != "ai":
            ev = agent.event("message.created")
        self.assertEqual(ev["data"]["direction"], "out")
        time.sleep(0.5)
        self.assertEqual(len(self.ai.requests), 1, "three quick messages are one answer")
        # what is stored of the exchange: ids, timings, counts, never a text
        row = self.psql("SELECT outcome, guard, markers >= 6, history, message_id IS NOT NULL "
                        "FROM ai_exchanges")
        self.assertEqual(row, "answered|passed|t|6|t")
        # the hub's own time, also as CPU time and by part: numbers only
        parts = json.loads(self.psql("SELECT hub_parts FROM ai_exchanges"))
        self.assertEqual(sorted(parts), ["context", "parse", "request", "restore"])
        self.assertTrue(all(isinstance(v, int) and v >= 0 for v in parts.values()), parts)
        self.assertEqual(self.psql("SELECT hub_cpu_us >= 0 AND hub_us >= 0 AND store_us >= 0 "
                                   "FROM ai_exchanges"), "t")

    def test_a_marker_the_vault_does_not_know_is_dropped(self):
        self.ai.script("unknown_marker", template="Позвоните нам: {marker}. Ждём!")
        h = self.start()
        self.say(h, 5127345681, "Как с вами связаться?")
        text = self.sent(1)[0]
        self.assertRegex(text, r"\n\nПозвоните нам\W*Ждём!$")
        self.assertNotIn("PHONE", text)
        self.assertEqual(self.psql("SELECT dropped_markers FROM ai_exchanges"), "1")

    def test_a_model_revealing_its_context_reveals_only_markers(self):
        self.ai.script("reveal")
        h = self.start()
        self.say(h, 5127345682, "Меня зовут Айгерим, мой номер +7 701 123 45 67. Повтори всё.")
        text = self.sent(1)[0]
        body = self.ai.requests[0].body.decode("utf-8")
        self.assertNotIn("+7 701 123 45 67", body)
        self.assertNotIn("Айгерим", body)
        self.assertRegex(body, r"\[PHONE_\d+\]")
        # the model repeats what it was given: the markers come back as the customer's own
        # values to the customer, and nothing else of the context was personal
        self.assertNotRegex(text, r"\[[A-Z]+_\d+\]")


class Disclosure(AssistantCase):
    def test_first_answer_discloses_in_the_customers_language_and_the_second_does_not(self):
        h = self.start()
        for lang, user, first, second in (
                ("ru", 6100000001, "Здравствуйте, есть розы?", "А тюльпаны?"),
                ("kk", 6100000002, "Сәлеметсіз бе, раушан гүлі бар ма?", "Қызғалдақ ше?"),
                ("en", 6100000003, "Hi, do you have roses?", "And tulips?")):
            self.tg.clear()
            self.say(h, user, first, first="Test", last=None, username=None)
            text = self.sent(1)[0]
            self.assertTrue(text.startswith(DISCLOSURE_START[lang]), (lang, text))
            self.assertIn(fakeai.PLAIN[lang], text)
            self.tg.clear()
            self.say(h, user, second, first="Test", last=None, username=None)
            text = self.sent(1)[0]
            self.assertEqual(text, fakeai.PLAIN[lang], lang)
        self.assertEqual(self.count("ai_disclosures"), 3)

    def test_a_new_conversation_later_does_not_repeat_it(self):
        h = self.start()
        self.say(h, 6100000004, "Добрый день")
        self.assertTrue(self.sent(1)[0].startswith(DISCLOSURE_START["ru"]))
        # months later: that conversation is closed and a new one is open
        self.psql("UPDATE conversations SET status = 'resolved'")
        self.psql("INSERT INTO conversations (tenant_id, contact_id, channel_id) "
                  "SELECT tenant_id, contact_id, channel_id FROM conversations")
        self.tg.clear()
        self.say(h, 6100000004, "Снова я")
        self.assertEqual(self.sent(1)[0], fakeai.PLAIN["ru"])
        self.assertEqual(self.psql("SELECT count(*) FROM messages m JOIN conversations v ON "
                                   "v.id = m.conversation_id WHERE v.status = 'open' AND "
                                   "m.author = 'ai'"), "1")

    def test_a_crash_between_the_answer_and_its_record_sends_once_with_the_disclosure(self):
        h = self.start(env={"HUBD_TEST_AI_KILL_BEFORE_STORE": "1"})
        h.expected_rc = -signal.SIGKILL
        self.say(h, 6100000005, "Здравствуйте, сколько стоит доставка?")
        self.ai.wait_requests(1, timeout=10)
        self.assertEqual(h.wait_exit(timeout=10), -signal.SIGKILL)
        self.assertEqual(self.count("messages", "author = 'ai'"), 0)
        h2 = self.start(ai=False, cfg=h.cfg, name="hubd2")  # and its lease ran out
        text = self.sent(1, timeout=15)[0]
        self.assertTrue(text.startswith(DISCLOSURE_START["ru"]), text)
        time.sleep(1)
        self.assertEqual(len([r for r in self.tg.requests if r.op == "sendMessage"]), 1)
        self.assertEqual(len(self.ai.requests), 2)
        self.assertEqual(self.count("messages", "author = 'ai'"), 1)
        h2.assert_alive()


class Handoff(AssistantCase):
    def test_asking_for_a_person_hands_over_without_asking_the_provider(self):
        h = self.start(handoff_phrase="позовите сотрудника")
        agent = self.agent(h)
        for i, text in enumerate(("Можно ОПЕРАТОРА?", "Хочу с менеджером поговорить",
                                  "Адаммен сөйлескім келеді", "human please",
                                  "Позовите сотрудника, пожалуйста!")):
            user = 6200000001 + i
            self.say(h, user, text, first="Test", last=None, username=None)
            data = self.handoff_event(agent, self.conv_of(user))
            self.assertEqual(data["handoff_reason"], "customer_asked", text)
        self.assertEqual(self.ai.requests, [])
        # by chat: replies to different chats may reach the platform in any order
        by_chat = {int(r.json["chat_id"]): r.json["text"]
                   for r in self.tg.wait_requests(5, timeout=10, op="sendMessage")[:5]}
        texts = list(by_chat.values())
        self.assertTrue(all(DISCLOSURE_START["ru"] in t or DISCLOSURE_START["kk"] in t or
                            DISCLOSURE_START["en"] in t for t in texts), texts)
        self.assertIn("Передаю ваш вопрос сотруднику", by_chat[6200000001])
        self.assertIn("I am passing your question", by_chat[6200000004])
        self.assertEqual(self.psql("SELECT DISTINCT mode FROM conversations"), "human")

    def test_provider_errors_hand_over_and_the_agents_are_told(self):
        self.ai.default("500")
        # a lease far longer than the wait: the retry is claimed again on the NOTIFY of its
        # job given back, not when its lease runs out
        h = self.start({"assistant.max_attempts": 2, "assistant.lease_ms": 120000})
        agent = self.agent(h)
        self.say(h, 6200000010, "Здравствуйте, есть доставка?")
        data = self.handoff_event(agent, self.conv_of(6200000010))
        self.assertEqual(data["handoff_reason"], "provider_failed")
        self.assertEqual(len(self.ai.requests), 2)
        self.assertIn("Передаю ваш вопрос сотруднику", self.sent(1)[0])
        self.assertEqual(self.psql("SELECT string_agg(outcome || ':' || coalesce(error_code, "
                                   "''), ',' ORDER BY id) FROM ai_exchanges"),
                         "retry:500 server_error,handoff:500 server_error")

    def test_a_refused_key_hands_over_at_once(self):
        self.ai.expect_key("sk-other")
        h = self.start()
        agent = self.agent(h)
        self.say(h, 6200000011, "Здравствуйте")
        self.assertEqual(self.handoff_event(agent, self.conv_of(6200000011))["handoff_reason"],
                         "provider_failed")
        self.assertEqual(len(self.ai.requests), 1)

    def test_the_guard_blocks_a_request_whose_pseudonymization_failed(self):
        h = self.start(env={"HUBD_TEST_AI_LEAVE_CLEAR": "Сапарова"})
        agent = self.agent(h)
        self.say(h, 6200000012, "Меня зовут Айгерим Сапарова")
        data = self.handoff_event(agent, self.conv_of(6200000012))
        self.assertEqual(data["handoff_reason"], "guard_blocked")
        time.sleep(0.3)
        self.assertEqual(self.ai.requests, [], "nothing may leave")
        self.assertEqual(self.psql("SELECT outcome, guard FROM ai_exchanges"), "handoff|blocked")
        self.assertRegex(httpc.request(h.port, "GET", "/metrics").body.decode(),
                         r"hub_ai_guard_blocks_total 1\b")

    def test_an_agent_writing_takes_over_and_mode_ai_gives_it_back(self):
        h = self.start()
        agent = self.agent(h)
        self.say(h, 6200000013, "Здравствуйте")
        self.sent(1)
        conv = self.conv_of(6200000013)
        ack = agent.command({"type": "send", "conversation_id": conv, "text": "Я здесь!",
                             "client_id": "c1"})
        self.assertEqual(ack["type"], "ack", ack)
        self.assertEqual(self.handoff_event(agent, conv)["handoff_reason"], "agent")
        self.say(h, 6200000013, "Спасибо")
        time.sleep(1)
        self.assertEqual(len(self.ai.requests), 1, "no answer in human mode")
        ack = agent.command({"type": "mode", "conversation_id": conv, "mode": "ai"})
        self.assertEqual(ack["conversation"]["mode"], "ai", ack)
        self.assertIsNone(ack["conversation"]["handoff_reason"])
        self.say(h, 6200000013, "А ещё вопрос")
        self.ai.wait_requests(2)

    def test_taking_the_conversation_hands_it_over(self):
        h = self.start()
        agent = self.agent(h)
        self.say(h, 6200000014, "Здравствуйте")
        self.sent(1)
        conv = self.conv_of(6200000014)
        ack = agent.command({"type": "assign", "conversation_id": conv, "assignee": "agent-1"})
        self.assertEqual(ack["conversation"]["mode"], "human", ack)
        self.assertEqual(ack["conversation"]["handoff_reason"], "assigned")


class Finish(AssistantCase):
    """How an answer's transaction (hub_ai_finish) ends when things moved while the provider
    was asked."""

    def test_a_message_during_the_answer_gets_an_answer_of_its_own(self):
        self.ai.default("delay", seconds=1.5)
        # a lease far longer than the wait below: the kept job is claimed again on the
        # NOTIFY of the answer's end, not when its lease runs out
        h = self.start({"assistant.lease_ms": 120000})
        self.say(h, 6250000001, "Здравствуйте, есть розы?", first="T", last=None,
                 username=None)
        self.ai.wait_requests(1, timeout=10)
        self.say(h, 6250000001, "И тюльпаны?", first="T", last=None, username=None)
        texts = self.sent(2, timeout=20)
        self.assertTrue(texts[0].startswith(DISCLOSURE_START["ru"]), texts)
        self.assertEqual(texts[1], fakeai.PLAIN["ru"], "the disclosure goes once")
        self.assertEqual(len(self.ai.requests), 2)
        self.assertEqual(self.psql("SELECT string_agg(outcome, ',' ORDER BY id) FROM "
                                   "ai_exchanges"), "answered,answered")
        self.assertEqual(self.count("messages", "author = 'ai'"), 2)
        self.assertEqual(self.count("outbox"), 2)
        self.assertEqual(self.count("ai_disclosures"), 1)
        self.assertEqual(self.count("ai_jobs"), 0)

    def test_the_answer_numbers_its_own_events_and_agents_get_them_in_order(self):
        h = self.start()
        agent = self.agent(h)
        self.keep_queued()
        self.say(h, 6250000003, "Здравствуйте, есть розы?", first="T", last=None,
                 username=None)
        self.assertTrue(self.sent(1)[0].startswith(DISCLOSURE_START["ru"]))
        answer = int(self.psql("SELECT id FROM messages WHERE author = 'ai'"))
        ev = agent.event("message.created")
        self.assertEqual(ev["data"]["author"], "contact")
        ev = agent.event("message.created")
        self.assertEqual((ev["data"]["id"], ev["data"]["author"]), (answer, "ai"))
        up = agent.event("conversation.updated")
        self.assertEqual(up["id"], ev["id"] + 1, "the answer's two events, one after the other")
        # numbered in the answer's own transaction (and the webhook's in its own): only the
        # delivery's status went through the queue
        self.assertEqual(self.psql("SELECT e.id FROM events e WHERE e.type = "
                                   "'message.created' AND (e.data->>'id')::bigint = %d"
                                   % answer), str(ev["id"]))
        self.assertEqual(self.count("queued", "'message.created' = ANY (types) OR "
                                    "'conversation.updated' = ANY (types)"), 0)

    def test_an_agent_taking_over_meanwhile_drops_the_answer(self):
        self.ai.default("delay", seconds=1.5)
        h = self.start()
        agent = self.agent(h)
        self.say(h, 6250000002, "Здравствуйте", first="T", last=None, username=None)
        self.ai.wait_requests(1, timeout=10)
        conv = self.conv_of(6250000002)
        ack = agent.command({"type": "assign", "conversation_id": conv, "assignee": "agent-1"})
        self.assertEqual(ack["conversation"]["mode"], "human", ack)
        self.until("SELECT count(*) FROM ai_exchanges", "1", timeout=15)
        self.assertEqual(self.psql("SELECT outcome, message_id IS NULL FROM ai_exchanges"),
                         "dropped|t")
        self.assertEqual(self.count("messages", "author = 'ai'"), 0)
        self.assertEqual(self.count("outbox"), 0)
        self.assertEqual(self.count("ai_disclosures"), 0, "nothing went: nothing disclosed")
        self.assertEqual(self.count("ai_jobs"), 0)
        self.assertEqual(self.psql("SELECT mode, handoff_reason FROM conversations WHERE id = "
                                   "%d" % conv), "human|assigned")
        time.sleep(0.5)
        self.assertEqual([r for r in self.tg.requests if r.op == "sendMessage"], [])


class Instances(AssistantCase):
    def test_two_instances_never_answer_one_message_twice(self):
        self.ai.default("delay", seconds=0.3)
        h1 = self.start()
        cfg = copy.deepcopy(h1.cfg)
        cfg["http"]["listen"] = "127.0.0.1:%d" % util.free_port()
        h2 = self.start(ai=False, cfg=cfg, name="hubd2")
        users = [6300000001 + i for i in range(8)]
        for u in users:
            self.say(h1 if u % 2 else h2, u, "Здравствуйте", first="T", last=None, username=None)
        self.sent(8, timeout=15)
        time.sleep(1)
        self.assertEqual(len([r for r in self.tg.requests if r.op == "sendMessage"]), 8)
        self.assertEqual(len(self.ai.requests), 8)
        self.assertEqual(self.count("messages", "author = 'ai'"), 8)


class Settings(AssistantCase):
    def test_bad_settings_are_refused_and_change_nothing(self):
        h = self.start(ai=False)
        r = self.channel_ai(h, "--url", self.ai.base_url, "--model", "m")
        self.assertEqual(r.returncode, 0, r.stderr)
        before = self.psql("SELECT row_to_json(a)::text FROM channel_ai a")
        for args, code, msg in (
                (["--url", "ftp://x"], 2, "--url must be"),
                (["--url", "https://h/?q=1"], 2, "--url must be"),
                (["--model", ""], 2, "--model must be"),
                (["--history", "0"], 2, "--history must be"),
                (["--reply-max", "9999"], 2, "--reply-max must be"),
                (["--temperature", "3"], 2, "--temperature must be"),
                (["--quiet-ms", "-1"], 2, "--quiet-ms must be"),
                (["--disclosure", "de=Hallo"], 2, "ru, kk or en"),
                (["--disclosure", "ru"], 2, "LANG=TEXT"),
                (["--hours", "mon-fri 18:00-09:00 Asia/Almaty"], 2, "--hours wants"),
                (["--hours", "xyz 09:00-18:00 Asia/Almaty"], 2, "days are"),
                (["--hours", "mon-fri 09:00-18:00 Mars/Olympus"], 1, "unknown time zone"),
                (["--key-file", "/nonexistent"], 1, "--key-file"),
                (["--handoff-phrase", "x", "--no-handoff-phrases"], 2, "exclude"),
                (["--api-key", "sk-123"], 2, "usage"),
                (["--on", "--no-key", "--url", ""], 2, "--url must be")):
            r = self.channel_ai(h, *args)
            self.assertEqual(r.returncode, code, (args, r.stderr))
            self.assertIn(msg, r.stderr, args)
            self.assertEqual(self.psql("SELECT row_to_json(a)::text FROM channel_ai a"), before,
                             args)
        r = self.hubctl("-c", h.config_path, "channel", "ai", "no-such-channel")
        self.assertEqual(r.returncode, 1)
        self.assertIn('no channel "no-such-channel"', r.stderr)
        # on without a model or URL set: refused
        self.psql("DELETE FROM channel_ai")
        r = self.channel_ai(h, "--on")
        self.assertEqual(r.returncode, 1)
        self.assertIn("needs --url and --model", r.stderr)
        self.assertEqual(self.count("channel_ai"), 0)

    def test_the_key_is_shown_by_its_last_four_characters_only(self):
        h = self.start()
        r = self.channel_ai(h, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        shown = json.loads(r.stdout)
        self.assertEqual(shown["api_key"], "…" + KEY[-4:])
        self.assertNotIn(KEY, r.stdout)
        self.assertTrue(shown["enabled"])
        self.assertEqual(shown["quiet_ms"], 300)


class Hours(AssistantCase):
    def test_outside_working_hours_it_answers_human_conversations_too(self):
        h = self.start(ai=False)
        self.say(h, 6400000001, "Здравствуйте")  # before the assistant: human mode
        conv = self.conv_of(6400000001)
        self.assertEqual(self.psql("SELECT mode FROM conversations"), "human")
        # working hours that are not now (UTC): the hour after the next one, every day
        now = time.gmtime()
        start = (now.tm_hour + 2) % 24
        r = self.channel_ai(h, "--on", "--url", self.ai.base_url, "--model", "fake-model",
                            "--key-file", self.key_file(), "--quiet-ms", "0", "--hours",
                            "mon-sun %02d:00-%02d:59 UTC" % (start, start))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.say(h, 6400000001, "Вы работаете?")
        self.assertTrue(self.sent(1)[0].startswith(DISCLOSURE_START["ru"]))
        self.assertEqual(self.psql("SELECT mode FROM conversations WHERE id = %d" % conv),
                         "human")
        # within working hours the people answer
        r = self.channel_ai(h, "--hours", "mon-sun 00:00-23:59 UTC")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.tg.clear()
        self.say(h, 6400000001, "Алло?")
        time.sleep(1)
        self.assertEqual(len(self.ai.requests), 1)


class Robustness(AssistantCase):
    def test_an_open_breaker_hands_over_without_asking(self):
        self.ai.default("500")
        h = self.start({"assistant.max_attempts": 1, "assistant.breaker_failures": 2,
                        "assistant.breaker_open_ms": 60000})
        agent = self.agent(h)
        for i in range(4):
            user = 6500000001 + i
            self.say(h, user, "Здравствуйте", first="T", last=None, username=None)
            data = self.handoff_event(agent, self.conv_of(user))
            self.assertEqual(data["handoff_reason"], "provider_failed")
        self.assertEqual(len(self.ai.requests), 2, "the breaker opened after two failures")
        self.assertEqual(self.count("ai_exchanges", "error_code = 'breaker_open'"), 2)
        self.assertRegex(httpc.request(h.port, "GET", "/metrics").body.decode(),
                         r"hub_ai_breaker_opened_total 1\b")

    def test_a_stalled_provider_delays_nothing_else_and_the_queue_is_bounded(self):
        self.ai.default("stall", seconds=30)
        h = self.start({"assistant.queue_max": 3, "assistant.per_tenant": 2,
                        "assistant.timeout_ms": 60000, "assistant.lease_ms": 120000})
        agent = self.agent(h)
        for i in range(5):
            self.say(h, 6500000101 + i, "Здравствуйте", first="T", last=None, username=None)
        self.ai.wait_requests(2, timeout=10)
        # webhooks, the inbox and health go on while the provider holds its requests
        body, _, sig = self.text_webhook(h)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertEqual(agent.command({"type": "read", "conversation_id":
                                        self.conv_of(6500000101)})["type"], "ack")
        self.assertEqual(httpc.request(h.port, "GET", "/healthz").status, 200)
        time.sleep(0.5)
        metrics = httpc.request(h.port, "GET", "/metrics").body.decode()
        # three claimed (the queue's bound), two of them asking (the tenant's bound)
        self.assertRegex(metrics, r"hub_ai_claimed 3\b")
        self.assertRegex(metrics, r"hub_ai_requests_in_flight 2\b")
        self.assertRegex(metrics, r"hub_ai_queue_full_total [1-9]")
        self.assertEqual(len(self.ai.requests), 2)
        self.assertEqual(self.count("ai_jobs"), 5, "the others wait in the database")

    def test_a_merged_contact_keeps_the_earlier_disclosure(self):
        h = self.start()
        self.say(h, 6500000201, "Здравствуйте", first="T", last=None, username=None)
        self.assertTrue(self.sent(1)[0].startswith(DISCLOSURE_START["ru"]))
        self.psql("UPDATE channel_ai SET enabled = false")
        self.say(h, 6500000202, "Добрый день", first="T", last=None, username=None)
        into = self.psql("SELECT contact_id FROM contact_identities WHERE external_id = "
                         "'6500000202'")
        frm = self.psql("SELECT contact_id FROM contact_identities WHERE external_id = "
                        "'6500000201'")
        self.psql("SELECT hub_merge_contacts('demo', %s, %s)" % (into, frm))
        self.assertEqual(self.count("ai_disclosures", "contact_id = %s" % into), 1)
        self.psql("UPDATE channel_ai SET enabled = true")
        self.psql("UPDATE conversations SET mode = 'ai'")
        self.tg.clear()
        self.say(h, 6500000202, "Есть розы?", first="T", last=None, username=None)
        self.assertEqual(self.sent(1)[0], fakeai.PLAIN["ru"])
