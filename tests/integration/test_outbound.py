"""tests/integration/test_outbound.py - agents' replies delivered by the outbox to fake
WhatsApp, Telegram and Instagram send APIs over HTTPS with a private CA: the exact body and
credentials each platform gets, the platform's id on the row, statuses and echoes moving it
forward (never a second bubble), every error the platforms answer (refused, token, window,
rate limit with its delay, 5xx, reset, stalled), the reply window checked before storing,
long texts split on character boundaries, order within a conversation, kill -9 with
replies in flight, and two instances draining one outbox.
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import fakeplat, httpc, hubd, testca, util, whatsapp  # noqa: E402
from support.case import HubTestCase  # noqa: E402

IG_ACCOUNT = "17841471550633446"
TG_BOT = "7000000001"


def compact(doc):
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def tg_text(update_id, user_id, message_id, text, name="Айгерим"):
    return compact({"update_id": update_id, "message": {
        "message_id": message_id, "date": int(time.time()), "text": text,
        "from": {"id": user_id, "is_bot": False, "first_name": name},
        "chat": {"id": user_id, "first_name": name, "type": "private"}}})


def ig_text(sender, mid, text):
    now = int(time.time() * 1000)
    return compact({"object": "instagram", "entry": [{"time": now, "id": IG_ACCOUNT,
                    "messaging": [{"sender": {"id": sender}, "recipient": {"id": IG_ACCOUNT},
                                   "timestamp": now, "message": {"mid": mid, "text": text}}]}]})


class OutboundCase(HubTestCase):
    def setUp(self):
        super().setUp()
        self.ca = testca.TestCA(os.path.join(self.out, "ca"))
        self.fakes = {}
        for kind in ("whatsapp", "telegram", "instagram"):
            f = fakeplat.FakePlatform(kind, self.ca)
            f.start()
            self.addCleanup(f.stop)
            self.fakes[kind] = f

    def start(self, overrides=None, callbacks=True, cfg=None, **kw):
        """hubd delivering to the fakes (and, callbacks: the fakes report statuses back)."""
        if cfg is None:
            o = {"outbound.enabled": True, "outbound.retry_base_ms": 100,
                 "outbound.retry_max_ms": 400, "outbound.lease_ms": 3000,
                 "platforms.ca_file": self.ca.ca,
                 "platforms.response_timeout_ms": 2000,
                 "ws.commands_per_s": 1000, "ws.command_burst": 1000}
            for kind, f in self.fakes.items():
                o["platforms.%s_url" % kind] = f.base_url
            o.update(overrides or {})
            cfg = self.config(o)
            cfg["channels"] += [
                {"id": "demo-telegram", "tenant": "demo", "kind": "telegram",
                 "account_id": TG_BOT, "app_secret": "tg-" + os.urandom(12).hex(),
                 "access_token": TG_BOT + ":AAH" + os.urandom(12).hex()},
                {"id": "demo-instagram", "tenant": "demo", "kind": "instagram",
                 "account_id": IG_ACCOUNT, "app_secret": hubd.secret("ig-app-secret"),
                 "verify_token": hubd.secret("ig-verify"),
                 "access_token": hubd.secret("ig-token")}]
        h = self.start_hubd(cfg, **kw)
        if callbacks:
            base = "http://127.0.0.1:%d" % h.port
            self.fakes["whatsapp"].callback(base, self.channel(h, "demo-whatsapp"))
            self.fakes["instagram"].callback(base, self.channel(h, "demo-instagram"))
        return h

    # --- conversations ---
    def wa_conversation(self, h, agent, wa_id="77011234567"):
        body, _, sig = self.text_webhook(h, wa_id=wa_id)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        return agent.event("message.created")["data"]["conversation_id"]

    def post(self, h, platform, body):
        ch = self.channel(h, "demo-" + platform)
        if platform == "telegram":
            hdr = {"X-Telegram-Bot-Api-Secret-Token": ch["app_secret"]}
        else:
            hdr = {"X-Hub-Signature-256": whatsapp.sign(body, ch["app_secret"])}
        hdr["Content-Type"] = "application/json"
        r = httpc.request(h.port, "POST", "/webhooks/%s/demo-%s" % (platform, platform),
                          body=body, headers=hdr)
        self.assertEqual(r.status, 200, r)

    def tg_conversation(self, h, agent, user=5127345680):
        self.post(h, "telegram", tg_text(int(time.time() * 1000) % 2**31, user,
                                         int.from_bytes(os.urandom(3), "big"), "Салем"))
        return agent.event("message.created")["data"]["conversation_id"]

    def ig_conversation(self, h, agent, sender="1254459154682919"):
        self.post(h, "instagram", ig_text(sender, "aWdfZ" + os.urandom(8).hex(), "Есть S?"))
        return agent.event("message.created")["data"]["conversation_id"]

    def send(self, agent, conv, text, client_id=None):
        self.no_leak(text)
        ack = agent.command({"type": "send", "conversation_id": conv, "text": text,
                             "client_id": client_id or os.urandom(6).hex()})
        self.assertEqual(ack["type"], "ack", ack)
        return ack["message_id"]

    def statuses(self, agent, mid, until, timeout=10):
        """The message.status values of message mid seen by agent, up to until."""
        seen = []
        end = time.monotonic() + timeout
        while until not in seen:
            ev = agent.event("message.status", timeout=max(0.1, end - time.monotonic()))
            if ev["data"]["id"] == mid:
                seen.append(ev["data"]["status"])
                if ev["data"]["status"] == "failed":
                    break
        return seen

    def row(self, mid):
        out = self.psql("SELECT json_build_array(m.status, m.external_id, m.error, o.status, "
                        "o.attempts, o.error_code) FROM messages m JOIN outbox o "
                        "ON o.message_id = m.id WHERE m.id = %d" % mid)
        return json.loads(out)

    def metric(self, h, line):
        """The value of the /metrics line that starts with line (name and labels)."""
        body = httpc.get(h.port, "/metrics").body.decode()
        return next((float(x.rsplit(" ", 1)[1]) for x in body.splitlines()
                     if x.startswith(line + " ")), None)

    def accepted(self, kind, op="send"):
        """The requests the fake answered with 2xx."""
        return [r for r in self.fakes[kind].requests
                if r.op == op and r.status and 200 <= r.status < 300]


class Delivery(OutboundCase):
    def test_whatsapp_reply_is_sent_once_then_delivered_and_read(self):
        h = self.start()
        agent = self.agent(h)
        conv = self.wa_conversation(h, agent)
        text = "Здравствуйте! Заказ №5521 будет у вас завтра. \"Спасибо\"\n— Bayge"
        mid = self.send(agent, conv, text, client_id="pending-1")
        created = agent.event("message.created")
        self.assertEqual((created["data"]["id"], created["data"]["client_id"]),
                         (mid, "pending-1"))
        self.assertEqual(self.statuses(agent, mid, "read"), ["sent", "delivered", "read"])
        reqs = self.accepted("whatsapp")
        self.assertEqual(len(reqs), 1)
        r = reqs[0]
        ch = self.channel(h, "demo-whatsapp")
        self.assertEqual(r.path, "/v21.0/%s/messages" % ch["account_id"])
        self.assertEqual(r.headers["authorization"], "Bearer " + ch["access_token"])
        self.assertEqual(r.json, {"messaging_product": "whatsapp",
                                  "recipient_type": "individual", "to": "77011234567",
                                  "type": "text", "text": {"body": text}})
        status, ext, error, ostatus, attempts, _ = self.row(mid)
        self.assertEqual((status, ext, error, ostatus, attempts),
                         ("read", r.result_id, None, "done", 1))
        self.assertEqual(self.count("messages", "direction = 'out'"), 1)
        self.assertEqual(self.metric(h, 'hub_outbound_sends_total{platform="whatsapp",'
                                        'result="sent"}'), 1)
        self.assertEqual(self.metric(h, "hub_outbound_in_flight"), 0)

    def test_telegram_reply_is_sent_with_the_token_in_the_path_only(self):
        h = self.start()
        agent = self.agent(h)
        conv = self.tg_conversation(h, agent, user=5127345680)
        mid = self.send(agent, conv, "Сәлем! 👋")
        self.assertEqual(self.statuses(agent, mid, "sent"), ["sent"])
        r = self.accepted("telegram", op="sendMessage")[0]
        ch = self.channel(h, "demo-telegram")
        self.assertEqual(r.path, "/bot%s/sendMessage" % ch["access_token"])
        self.assertNotIn("authorization", r.headers)
        self.assertEqual(r.json, {"chat_id": 5127345680, "text": "Сәлем! 👋"})
        self.assertEqual(self.row(mid)[1], "5127345680:%s" % r.result_id)
        self.no_leak(ch["access_token"].split(":")[1])

    def test_instagram_echo_is_folded_and_read_moves_it_forward(self):
        h = self.start()
        agent = self.agent(h)
        conv = self.ig_conversation(h, agent)
        mid = self.send(agent, conv, "Да, размер S есть")
        self.assertEqual(self.statuses(agent, mid, "read")[-1], "read")
        r = self.accepted("instagram")[0]
        self.assertEqual(r.path, "/v21.0/me/messages")
        self.assertEqual(r.json, {"recipient": {"id": "1254459154682919"},
                                  "message": {"text": "Да, размер S есть"}})
        self.fakes["instagram"].wait_callbacks(2)
        self.assertEqual(self.count("messages", "direction = 'out'"), 1, "a second bubble")
        self.assertEqual(self.row(mid)[1], r.result_id)


    def test_a_quoted_reply_carries_the_quote_on_each_platform(self):
        h = self.start(callbacks=False)
        agent = self.agent(h)
        body, wamid, sig = self.text_webhook(h)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        ev = agent.event("message.created")
        conv, quoted = ev["data"]["conversation_id"], ev["data"]["id"]
        ack = agent.command({"type": "send", "conversation_id": conv, "text": "Да",
                             "reply_to": quoted})
        self.assertEqual(ack["type"], "ack", ack)
        self.assertEqual(self.statuses(agent, ack["message_id"], "sent"), ["sent"])
        self.assertEqual(self.accepted("whatsapp")[0].json["context"], {"message_id": wamid})
        tconv = self.tg_conversation(h, agent, user=5127345680)
        tquoted = int(self.psql("SELECT id FROM messages WHERE conversation_id = %d" % tconv))
        msg_id = int(self.psql("SELECT split_part(external_id, ':', 2) FROM messages "
                               "WHERE id = %d" % tquoted))
        ack = agent.command({"type": "send", "conversation_id": tconv, "text": "Иә",
                             "reply_to": tquoted})
        self.assertEqual(self.statuses(agent, ack["message_id"], "sent"), ["sent"])
        r = self.accepted("telegram", op="sendMessage")[0]
        self.assertEqual(r.json["reply_parameters"]["message_id"], msg_id)
        # a quote that is not there, or not sent yet, or malformed: refused, nothing stored
        # every attempt stalls (each times out after 2 s and is tried again), so the
        # message stays unsent while the test looks, however slow the machine
        self.fakes["whatsapp"].fail_next("stall", count=100, seconds=30)
        pending = self.send(agent, conv, "в пути")
        before = self.counts()
        for quote, code in ((quoted + 1000, "not_found"), (tquoted, "not_found"),
                            (pending, "bad_request"), ("x", "bad_request"),
                            (-1, "bad_request")):
            ans = agent.command({"type": "send", "conversation_id": conv, "text": "?",
                                 "reply_to": quote})
            self.assertEqual((ans["type"], ans["code"]), ("error", code), (quote, ans))
        self.assert_unchanged(before)


class Profiles(OutboundCase):
    def test_an_instagram_sender_gets_the_name_of_their_profile(self):
        h = self.start(callbacks=False)
        agent = self.agent(h)
        ig = self.fakes["instagram"]
        ig.add_profile("1254459154682919", {"name": "Камила Ахметова",
                                            "username": "kamila.style"})
        self.ig_conversation(h, agent, sender="1254459154682919")   # not held back
        ev = agent.event("contact.updated", timeout=10)
        self.assertEqual(ev["data"]["display_name"], "Камила Ахметова")
        r = ig.wait_requests(1, op="profile")[0]
        self.assertEqual(r.path, "/v21.0/1254459154682919")
        self.assertEqual(r.query.get("fields"), "name,username")
        self.assertEqual(r.headers["authorization"],
                         "Bearer " + self.channel(h, "demo-instagram")["access_token"])
        self.assertEqual(self.psql("SELECT profile_name || ' ' || username FROM "
                                   "contact_identities"), "Камила Ахметова kamila.style")
        self.assertEqual(self.count("profile_requests"), 0)
        # a second message of the same sender asks nothing again
        self.ig_conversation(h, agent, sender="1254459154682919")
        time.sleep(0.5)
        self.assertEqual(len([x for x in ig.requests if x.op == "profile"]), 1)

    def test_a_refused_lookup_leaves_the_id_shown_and_the_message_stored(self):
        h = self.start(callbacks=False)
        agent = self.agent(h)
        self.ig_conversation(h, agent, sender="999000111")          # no such profile
        util.wait_for(lambda: self.count("profile_requests") == 0, 10, "the lookup ended")
        self.assertEqual(self.psql("SELECT coalesce(display_name, '-') FROM contacts"), "-")
        self.assertEqual(self.count("messages"), 1)
        self.assertGreaterEqual(h.count_log("the platform gives no profile"), 1)
        h.assert_alive()


class Errors(OutboundCase):
    def test_refused_message_fails_with_the_platforms_reason_and_is_not_retried(self):
        h = self.start()
        agent = self.agent(h)
        conv = self.wa_conversation(h, agent)
        self.fakes["whatsapp"].fail_next("invalid", message="(#100) Invalid parameter",
                                         details="Parameter value is not valid")
        mid = self.send(agent, conv, "Ответ")
        self.assertEqual(self.statuses(agent, mid, "failed"), ["failed"])
        ev_error = self.row(mid)[2]
        self.assertIn("100", ev_error)
        self.assertIn("Invalid parameter", ev_error)
        status, _, _, ostatus, attempts, code = self.row(mid)
        self.assertEqual((status, ostatus, attempts, code), ("failed", "failed", 1, "100"))
        time.sleep(0.5)
        self.assertEqual(len(self.fakes["whatsapp"].requests), 1)
        self.assertEqual(self.metric(h, 'hub_outbound_sends_total{platform="whatsapp",'
                                        'result="failed"}'), 1)

    def test_a_failed_reply_is_retried_by_the_agent_and_nothing_else_is(self):
        h = self.start()
        agent = self.agent(h)
        conv = self.wa_conversation(h, agent)
        self.fakes["whatsapp"].fail_next("invalid")
        mid = self.send(agent, conv, "Ответ")
        self.assertEqual(self.statuses(agent, mid, "failed"), ["failed"])
        ack = agent.command({"type": "retry", "conversation_id": conv, "message_id": mid})
        self.assertEqual((ack["type"], ack["message_id"]), ("ack", mid), ack)
        self.assertEqual(self.statuses(agent, mid, "read"), ["queued", "sent", "delivered",
                                                              "read"])
        self.assertEqual(len(self.accepted("whatsapp")), 1)
        # bad retries: answered, nothing changes
        inbound = int(self.psql("SELECT id FROM messages WHERE direction = 'in'"))
        before = self.counts()
        for cmd, code in (({"message_id": mid}, "bad_request"),          # not failed
                          ({"message_id": inbound}, "not_found"),        # not the hub's
                          ({"message_id": mid + 1000}, "not_found"),
                          ({"message_id": "x"}, "bad_request"),
                          ({}, "bad_request")):
            ans = agent.command(dict(cmd, type="retry", conversation_id=conv))
            self.assertEqual((ans["type"], ans["code"]), ("error", code), (cmd, ans))
        other = self.agent(h, tenant="acme")
        ans = other.command({"type": "retry", "conversation_id": conv, "message_id": mid})
        self.assertEqual(ans["code"], "not_found")
        self.assert_unchanged(before)

    def test_expired_token_fails_and_tells_the_operator(self):
        h = self.start()
        agent = self.agent(h)
        conv = self.wa_conversation(h, agent)
        self.fakes["whatsapp"].fail_next("token")
        mid = self.send(agent, conv, "Ответ")
        self.assertEqual(self.statuses(agent, mid, "failed"), ["failed"])
        self.assertTrue(self.row(mid)[5].startswith("190"), self.row(mid))
        util.wait_for(lambda: h.count_log("refused its access token"), 5, "the log line")

    def test_window_closed_at_the_platform_fails(self):
        h = self.start()
        agent = self.agent(h)
        conv = self.ig_conversation(h, agent)
        self.fakes["instagram"].fail_next("window")
        mid = self.send(agent, conv, "Ответ")
        self.assertEqual(self.statuses(agent, mid, "failed"), ["failed"])
        self.assertEqual(self.row(mid)[5], "10/2018278")

    def test_transient_errors_are_retried_until_accepted(self):
        h = self.start()
        agent = self.agent(h)
        conv = self.tg_conversation(h, agent)
        tg = self.fakes["telegram"]
        tg.fail_next("rate", retry_after=1)
        tg.fail_next("500")
        tg.fail_next("reset")
        tg.fail_next("stall", seconds=5)
        t0 = time.monotonic()
        mid = self.send(agent, conv, "Ответ после ошибок")
        self.assertEqual(self.statuses(agent, mid, "sent", timeout=30), ["sent"])
        sends = [r for r in tg.requests if r.op == "sendMessage"]
        self.assertEqual(len(sends), 5, sends)
        self.assertEqual(len(self.accepted("telegram", op="sendMessage")), 1)
        # retry_after 1 s was honoured between the first two attempts
        self.assertGreaterEqual(sends[1].t - sends[0].t, 0.9)
        self.assertGreater(time.monotonic() - t0, 1.0)
        self.assertEqual(self.row(mid)[4], 5)

    def test_retries_run_out_and_the_message_fails(self):
        h = self.start({"outbound.max_attempts": 3})
        agent = self.agent(h)
        conv = self.wa_conversation(h, agent)
        self.fakes["whatsapp"].fail_next("500", count=3)
        mid = self.send(agent, conv, "Ответ")
        self.assertEqual(self.statuses(agent, mid, "failed", timeout=20), ["failed"])
        self.assertIn("3 attempts", self.row(mid)[2])
        self.assertEqual(len(self.fakes["whatsapp"].requests), 3)

    def test_outside_the_window_nothing_is_stored_or_sent(self):
        h = self.start()
        agent = self.agent(h)
        conv = self.wa_conversation(h, agent)
        self.psql("UPDATE messages SET platform_ts = now() - interval '25 hours', "
                  "created_at = now() - interval '25 hours'")
        before = self.counts()
        ack = agent.command({"type": "send", "conversation_id": conv, "text": "Ответ",
                             "client_id": "late"})
        self.assertEqual((ack["type"], ack["code"]), ("error", "window_closed"), ack)
        self.assertIn("24 hours", ack["message"])
        self.assert_unchanged(before)
        self.assertEqual(self.count("outbox"), 0)
        time.sleep(0.3)
        self.assertEqual(self.fakes["whatsapp"].requests, [])


class Pacing(OutboundCase):
    def test_one_chat_is_paced_and_others_are_not_held_back(self):
        h = self.start()
        agent = self.agent(h)
        busy = self.tg_conversation(h, agent, user=5127345680)
        other = self.tg_conversation(h, agent, user=5127345681)
        for i in range(5):
            self.send(agent, busy, "part %d" % i)
        util.wait_for(lambda: len(self.accepted("telegram", op="sendMessage")) >= 3, 5,
                      "the burst")
        self.send(agent, other, "to another chat")
        util.wait_for(lambda: self.count("outbox", "status = 'done'") == 6, 15, "all sent")
        sends = self.accepted("telegram", op="sendMessage")
        busy_t = [r.t for r in sends if r.json["chat_id"] == 5127345680]
        other_t = [r.t for r in sends if r.json["chat_id"] == 5127345681][0]
        self.assertEqual([r.json["text"] for r in sends if r.json["chat_id"] == 5127345680],
                         ["part %d" % i for i in range(5)])
        # a burst of 3, then one a second (Telegram: about 1 message a second in a chat)
        self.assertGreaterEqual(busy_t[3] - busy_t[0], 0.9)
        self.assertGreaterEqual(busy_t[4] - busy_t[3], 0.9)
        # the other chat went while the busy one waited
        self.assertLess(other_t, busy_t[4])
        h.assert_alive()


    def test_a_lease_shorter_than_the_pacing_wait_sends_nothing_twice(self):
        # Telegram: a burst of 3 in one chat, then about one a second; with a 1 s lease
        # the 4th and 5th slots come after half of it: those sends are not started, the
        # rows come back when their leases end (claimed again by this instance), and go
        h = self.start({"outbound.lease_ms": 1000})
        agent = self.agent(h)
        conv = self.tg_conversation(h, agent, user=5127345680)
        for i in range(5):
            self.send(agent, conv, "part %d" % i)
        util.wait_for(lambda: self.count("outbox", "status = 'done'") == 5, 30, "all sent")
        sends = self.accepted("telegram", op="sendMessage")
        self.assertEqual([r.json["text"] for r in sends], ["part %d" % i for i in range(5)])
        self.assertGreaterEqual(self.metric(
            h, 'hub_outbound_lease_short_total{platform="telegram"}') or 0, 1)
        h.assert_alive()


class Splitting(OutboundCase):
    def test_long_instagram_text_becomes_messages_within_1000_bytes(self):
        h = self.start({"outbound.enabled": False})
        agent = self.agent(h)
        conv = self.ig_conversation(h, agent)
        words = ["Қазақстан", "доставка", "😀", "заказ"]
        text = " ".join(words[i % 4] for i in range(300))  # about 4,000 bytes
        self.assertGreater(len(text.encode()), 3000)
        self.send(agent, conv, text)
        self.send(agent, conv, "и ещё")         # written after: goes after every part
        h.cfg["outbound"]["enabled"] = True      # both queued before the text is cut
        h.reload(h.cfg)
        util.wait_for(lambda: self.count("outbox", "status = 'done'") >= 5, 20, "5 sends")
        util.wait_for(lambda: self.count("outbox", "status <> 'done'") == 0, 20, "all parts")
        reqs = self.accepted("instagram")
        self.assertEqual(reqs[-1].json["message"]["text"], "и ещё")
        parts = [r.json["message"]["text"] for r in reqs[:-1]]
        self.assertEqual("".join(parts).replace(" ", ""), text.replace(" ", ""))
        for p in parts:
            self.assertLessEqual(len(p.encode()), 1000)
        # each part is a message of its own, in order, each with its platform id
        rows = self.psql("SELECT text FROM messages WHERE direction = 'out' ORDER BY id")
        self.assertEqual(len(rows.splitlines()), len(parts) + 1)
        self.assertEqual(self.count("messages", "direction = 'out' AND external_id IS NULL"), 0)


class Wake(OutboundCase):
    def test_a_reply_queued_by_another_writer_notifies_and_one_of_hubds_own_does_not(self):
        # hubd's pooled connections say hub.local_wake=on and wake their own sender after
        # the COMMIT; any other writer (psql here, hubctl, hubd through a pooler) wakes
        # every instance's sender with NOTIFY hub_outbox
        h = self.start_hubd(self.config())
        conv = self.wa_conversation(h, self.agent(h))
        queue = ("WITH m AS (INSERT INTO messages (tenant_id, conversation_id, channel_id, "
                 "direction, author, type, text, status) SELECT tenant_id, id, channel_id, "
                 "'out', 'agent', 'text', %%s, 'queued' FROM conversations WHERE id = %d "
                 "RETURNING id, tenant_id, channel_id, conversation_id) INSERT INTO outbox "
                 "(tenant_id, message_id, channel_id, conversation_id) SELECT tenant_id, id, "
                 "channel_id, conversation_id FROM m" % conv)
        out = self.psql(["LISTEN hub_outbox", queue % "'from the CRM'",
                         "SET hub.local_wake = on", queue % "'as hubd queues it'",
                         "SELECT 'done'"])
        self.assertEqual(out.count('notification "hub_outbox"'), 1, out)
        self.assertLess(out.index('notification "hub_outbox"'), out.index("SET"), out)
        self.assertEqual(self.count("outbox", "status = 'pending'"), 2)


class Durability(OutboundCase):
    def conversations(self, h, agent, n):
        return [self.wa_conversation(h, agent, wa_id="7701%07d" % i) for i in range(n)]

    def queue(self, agent, convs, per, first=0):
        """per replies in each conversation (numbered from first), interleaved; returns
        their texts in order."""
        texts = []
        for k in range(first, first + per):
            for conv in convs:
                t = "reply %d to %d" % (k, conv)
                self.send(agent, conv, t)
                texts.append(t)
        return texts

    def assert_each_accepted_once_in_order(self, texts):
        got = [r.json["text"]["body"] for r in self.accepted("whatsapp")]
        self.assertEqual(sorted(got), sorted(texts), "lost or sent twice")
        by_conv = {}
        for t in got:
            by_conv.setdefault(t.split(" to ")[1], []).append(int(t.split()[1]))
        for conv, ks in by_conv.items():
            self.assertEqual(ks, sorted(ks), "conversation %s out of order" % conv)

    def test_kill_9_with_replies_in_flight_loses_none_and_sends_none_twice(self):
        h = self.start(callbacks=False)
        agent = self.agent(h)
        convs = self.conversations(h, agent, 20)
        wa = self.fakes["whatsapp"]
        first = self.queue(agent, convs, 5)                  # 100 replies delivered
        util.wait_for(lambda: self.count("outbox", "status = 'done'") == 100, 30, "100 sent")
        wa.fail_next("stall", count=1000, seconds=60)        # the next ones never answered
        rest = self.queue(agent, convs, 5, first=5)
        util.wait_for(lambda: len(wa.requests) >= 110, 10, "replies in flight")
        h.expected_rc = -signal.SIGKILL
        h.send_signal(signal.SIGKILL)
        h.proc.wait()
        wa.clear()                                           # the platform answers again
        self.start(cfg=h.cfg, callbacks=False, name="hubd-restarted")
        util.wait_for(lambda: self.count("outbox", "status = 'done'") == 200, 30, "all sent")
        self.assertEqual(self.count("messages", "direction = 'out' AND status = 'sent'"), 200)
        self.assert_each_accepted_once_in_order(rest)        # after the restart
        self.assertFalse(set(r.json["text"]["body"] for r in self.accepted("whatsapp"))
                         & set(first), "a reply sent before the kill was sent again")

    def test_two_instances_drain_one_outbox_without_sending_twice(self):
        h1 = self.start(callbacks=False)
        h2 = self.start(cfg=dict(h1.cfg, http=dict(h1.cfg["http"],
                                                    listen="127.0.0.1:%d" % util.free_port())),
                        callbacks=False, name="hubd2")
        self.fakes["whatsapp"].fail_next("delay", count=1000, seconds=0.02)
        agent = self.agent(h1)
        convs = self.conversations(h1, agent, 20)
        texts = self.queue(agent, convs, 10)
        util.wait_for(lambda: self.count("outbox", "status = 'done'") == 200, 60, "all sent")
        self.assert_each_accepted_once_in_order(texts)
        h2.assert_alive()
