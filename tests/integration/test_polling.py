"""tests/integration/test_polling.py - Telegram long polling (channels in mode polling)
against the fake Bot API over HTTPS: updates stored and pushed to agents, the offset moved
on only after they are stored and kept in PostgreSQL across a restart (no loss, no
duplicate), 409 and 429 waited out, one instance polling a bot at a time and another
taking over when it dies, and a channel added with `hubctl channel add --mode polling`.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import fakeplat, testca, util  # noqa: E402
from support.case import HubTestCase  # noqa: E402

TG_BOT = "7000000001"


def update(user, message_id, text, update_id=None):
    u = {"message": {"message_id": message_id, "date": int(time.time()), "text": text,
                     "from": {"id": user, "is_bot": False, "first_name": "Айгерим"},
                     "chat": {"id": user, "first_name": "Айгерим", "type": "private"}}}
    if update_id is not None:
        u["update_id"] = update_id
    return u


class PollingCase(HubTestCase):
    def setUp(self):
        super().setUp()
        self.tg = fakeplat.FakePlatform("telegram", testca.TestCA(os.path.join(self.out, "ca")))
        self.tg.start()
        self.addCleanup(self.tg.stop)
        self.bot_token = TG_BOT + ":AAH" + os.urandom(12).hex()
        self.no_leak(self.bot_token.split(":")[1])

    def cfg(self, overrides=None):
        o = {"platforms.telegram_url": self.tg.base_url, "platforms.ca_file": self.tg.ca.ca,
             "platforms.telegram_poll_timeout_s": 1}
        o.update(overrides or {})
        cfg = self.config(o)
        cfg["channels"].append({"id": "demo-telegram", "tenant": "demo", "kind": "telegram",
                                "account_id": TG_BOT, "app_secret": "tg-" + os.urandom(8).hex(),
                                "access_token": self.bot_token, "mode": "polling"})
        return cfg

    def polls(self):
        return [r for r in self.tg.requests if r.op == "getUpdates"]

    def messages(self):
        return self.psql("SELECT text FROM messages WHERE direction = 'in' ORDER BY id")\
            .splitlines()

    def offset(self):
        return int(self.psql("SELECT next_offset FROM telegram_polls") or 0)


class Polling(PollingCase):
    def test_updates_are_stored_pushed_and_acknowledged_after(self):
        h = self.start_hubd(self.cfg())
        agent = self.agent(h)
        uid = self.tg.push_update(update(5127345680, 1, "Салем, бот!"))
        ev = agent.event("message.created", timeout=10)
        self.assertEqual(ev["data"]["text"], "Салем, бот!")
        # the offset moves on after the store, and the next poll asks for what follows
        util.wait_for(lambda: self.offset() == uid + 1, 10, "the offset saved")
        util.wait_for(lambda: any(r.json.get("offset") == uid + 1 for r in self.polls()), 10,
                      "a poll from the next offset")
        first = self.polls()[0]
        self.assertEqual(first.path, "/bot%s/getUpdates" % self.bot_token)
        self.assertEqual(first.json["timeout"], 1)
        self.assertEqual(self.tg.pending_updates(), [])
        self.assertEqual(self.messages(), ["Салем, бот!"])

    def test_a_restart_loses_nothing_and_stores_nothing_twice(self):
        cfg = self.cfg()
        h = self.start_hubd(cfg)
        for i in range(3):
            self.tg.push_update(update(5127345680, 10 + i, "до %d" % i))
        util.wait_for(lambda: len(self.messages()) == 3, 10, "three stored")
        h.stop()
        for i in range(2):                      # while hubd is away
            self.tg.push_update(update(5127345680, 20 + i, "после %d" % i))
        h2 = self.start_hubd(cfg, name="hubd-again")
        util.wait_for(lambda: len(self.messages()) == 5, 10, "all five stored")
        time.sleep(1.5)                         # a few more polls: nothing again
        self.assertEqual(self.messages(), ["до 0", "до 1", "до 2", "после 0", "после 1"])
        self.assertEqual(self.count("ingest_keys"), 5)
        h2.assert_alive()

    def test_conflict_and_rate_limit_are_waited_out(self):
        h = self.start_hubd(self.cfg())
        util.wait_for(lambda: self.polls(), 10, "a poll")
        self.tg.fail_next("conflict")
        self.tg.fail_next("rate", on="getUpdates", retry_after=2)
        util.wait_for(lambda: len([r for r in self.polls() if r.status == 429]) == 1, 30,
                      "the 429")
        t429 = [r.t for r in self.polls() if r.status == 429][0]
        self.tg.push_update(update(5127345680, 30, "после ошибок"))
        util.wait_for(lambda: self.messages() == ["после ошибок"], 20, "the update")
        after = [r.t for r in self.polls() if r.t > t429]
        self.assertGreaterEqual(after[0] - t429, 1.9, "retry_after was not honoured")
        self.assertGreaterEqual(h.count_log(r"getUpdates refused \(409\)"), 1)
        h.assert_alive()


class Instances(PollingCase):
    def test_one_instance_polls_and_another_takes_over_when_it_dies(self):
        cfg = self.cfg()
        h1 = self.start_hubd(cfg)
        cfg2 = dict(cfg, http=dict(cfg["http"], listen="127.0.0.1:%d" % util.free_port()))
        h2 = self.start_hubd(cfg2, name="hubd2")
        util.wait_for(lambda: h1.count_log("polling \\(this instance\\)") +
                      h2.count_log("polling \\(this instance\\)") == 1, 10, "one poller")
        time.sleep(2)
        owners = [h for h in (h1, h2) if h.count_log("polling \\(this instance\\)")]
        self.assertEqual(len(owners), 1, "both instances polled")
        owner, other = owners[0], (h2 if owners[0] is h1 else h1)
        self.tg.push_update(update(5127345680, 40, "первое"))
        util.wait_for(lambda: self.messages() == ["первое"], 10, "stored by the owner")
        owner.expected_rc = -signal.SIGKILL
        owner.send_signal(signal.SIGKILL)
        owner.proc.wait()
        self.tg.push_update(update(5127345680, 41, "второе"))
        util.wait_for(lambda: self.messages() == ["первое", "второе"], 20, "the takeover")
        self.assertEqual(other.count_log("polling \\(this instance\\)"), 1)

    def test_a_channel_added_by_hubctl_in_mode_polling_is_polled(self):
        cfg = self.cfg()
        cfg["channels"].pop()                   # only the database has it
        h = self.start_hubd(cfg)
        secret = os.path.join(self.out, "secret")
        token = os.path.join(self.out, "token")
        with open(secret, "w") as f:
            f.write("tg-" + os.urandom(8).hex())
        with open(token, "w") as f:
            f.write(self.bot_token)
        r = self.hubctl("-c", h.config_path, "channel", "add", "--id", "db-telegram",
                        "--tenant", "demo", "--kind", "telegram", "--account", TG_BOT,
                        "--app-secret-file", secret, "--access-token-file", token,
                        "--mode", "polling")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.tg.push_update(update(5127345680, 50, "через базу"))
        util.wait_for(lambda: self.messages() == ["через базу"], 10, "the update")
        # bad modes: refused, nothing added
        before = self.count("channels")
        for extra, want in ((["--mode", "sometimes"], "--mode must be webhook or polling"),
                            (["--kind", "whatsapp", "--verify-token-file", secret],
                             "--mode polling is for telegram")):
            args = ["-c", h.config_path, "channel", "add", "--id", "db-bad", "--tenant",
                    "demo", "--kind", "telegram", "--account", TG_BOT, "--app-secret-file",
                    secret, "--access-token-file", token, "--mode", "polling"] + extra
            r = self.hubctl(*args)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(want, r.stderr)
        self.assertEqual(self.count("channels"), before)


class Register(PollingCase):
    def test_add_register_sets_the_webhook_or_adds_nothing(self):
        cfg = self.cfg()
        cfg["channels"].pop()
        h = self.start_hubd(cfg)
        secret = os.path.join(self.out, "secret")
        token = os.path.join(self.out, "token")
        app_secret = "tg-" + os.urandom(8).hex()
        with open(secret, "w") as f:
            f.write(app_secret)
        with open(token, "w") as f:
            f.write(self.bot_token)
        self.no_leak(app_secret)

        def add(cid, *extra):
            return self.hubctl("-c", h.config_path, "channel", "add", "--id", cid,
                               "--tenant", "demo", "--kind", "telegram", "--account", TG_BOT,
                               "--app-secret-file", secret, "--access-token-file", token,
                               *extra)
        r = add("tg-hook", "--register", "https://hub.example.kz/")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("webhook registered", r.stdout)
        req = self.tg.wait_requests(1, op="setWebhook")[0]
        self.assertEqual(req.path, "/bot%s/setWebhook" % self.bot_token)
        self.assertEqual(req.json["url"], "https://hub.example.kz/webhooks/telegram/tg-hook")
        self.assertEqual(req.json["secret_token"], app_secret)
        self.assertEqual(self.count("channels", "public_id = 'tg-hook'"), 1)
        # Telegram refuses: the channel is not added
        before = self.count("channels")
        self.tg.fail_next("token", on="setWebhook")
        r = add("tg-refused", "--register", "https://hub.example.kz")
        self.assertEqual(r.returncode, 1)
        self.assertIn("Telegram refused", r.stderr)
        self.assertNotIn(self.bot_token.split(":")[1], r.stderr)
        # and what --register cannot do is refused before anything happens
        for extra, code in ((["--register", "http://hub.example.kz"], 1),
                            (["--register", "https://hub.example.kz", "--mode", "polling"],
                             2)):
            r = add("tg-bad", *extra)
            self.assertEqual(r.returncode, code, r.stderr)
        self.assertEqual(self.count("channels"), before)
