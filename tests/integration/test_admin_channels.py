"""tests/integration/test_admin_channels.py - the admin API's channels (admin issue 14, points
1, 3, 7 and 9): /api/v1/channels create, list, get, update, disable, enable and delete for
the admin's tenant only (a table of endpoint x role x tenant), field errors that change
nothing, secrets never in a response, the log or the audit log, every change live on a
second hubd through NOTIFY hub_channels, a disabled channel's webhooks answered 404 and
its queued replies failed, the audit log paged newest first, the per-token rate limit, and
the OpenAPI description checked against the running server's routes.
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, hubd, util, whatsapp  # noqa: E402
from support.case import HubTestCase  # noqa: E402
from test_outbound import OutboundCase  # noqa: E402

LIVE_DEADLINE = 1.0  # the issue: "within a second" on every instance
WAIT = 15            # anything else that has no event to wait on


class AdminCase(HubTestCase):
    needs_hubctl = True

    def api(self, h, method, path, token=None, body=None, raw=None, headers=None):
        hdr = dict(headers or {})
        if token:
            hdr["Authorization"] = "Bearer " + token
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            hdr["Content-Type"] = "application/json"
        r = httpc.request(h.port, method, path, body=data, headers=hdr)
        self.responses.append(r)
        return r

    def setUp(self):
        super().setUp()
        self.responses = []
        self.secrets = []

    def admin(self, h, tenant="demo", sub="admin-1"):
        return self.token(h, tenant=tenant, sub=sub, role="admin")

    def new_secret(self, prefix):
        s = "%s-%s" % (prefix, os.urandom(16).hex())
        self.secrets.append(s)
        self.no_leak(s)
        return s

    def create(self, h, token, **fields):
        body = {"kind": "whatsapp", "account_id": str(int.from_bytes(os.urandom(6), "big")),
                "app_secret": self.new_secret("app"), "access_token": self.new_secret("acc")}
        body.update(fields)
        body = {k: v for k, v in body.items() if v is not None}
        r = self.api(h, "POST", "/api/v1/channels", token, body)
        self.assertEqual(r.status, 201, r)
        out = r.json()
        self.no_leak(out.get("verify_token"))
        return body, out

    def table(self):
        """The channels, their assistants and the audit log, to compare before and after."""
        return self.psql("SELECT (SELECT coalesce(string_agg(c::text, '|' ORDER BY c.id), '') "
                         "FROM channels c) || '#' || (SELECT coalesce(string_agg(a::text, '|' "
                         "ORDER BY a.channel_id), '') FROM channel_ai a) || '#' || "
                         "(SELECT count(*) FROM audit_log)")

    def wa_post(self, h, cid, account, app_secret):
        text = self.unique_text()
        self.no_leak(text)
        body, _ = whatsapp.text_body(account, text)
        return httpc.request(h.port, "POST", "/webhooks/whatsapp/" + cid, body=body,
                             headers=whatsapp.headers(body, app_secret)).status

    def wait_webhook(self, h, cid, account, app_secret, want, timeout=WAIT):
        """Posts until cid answers want; returns the seconds it took."""
        t0 = time.monotonic()
        last = []

        def ok():
            last[:] = [self.wa_post(h, cid, account, app_secret)]
            return last[0] == want
        util.wait_for(ok, timeout, lambda: "%s on %s to answer %d (last %r)"
                      % (cid, h.name, want, last), interval=0.02)
        return time.monotonic() - t0

    def tearDown(self):
        # no response ever held a secret the test gave (the generated verify token is the
        # one exception, answered once by create and checked apart)
        for r in self.responses:
            for s in self.secrets:
                self.assertNotIn(s.encode(), r.body, "a response holds a secret: %r" % r)
        super().tearDown()


class Channels(AdminCase):
    def test_create_list_get_and_the_channel_serves(self):
        h = self.start_hubd()
        adm = self.admin(h)
        body, out = self.create(h, adm, id="demo-sales", name="Sales WhatsApp")
        ch = out["channel"]
        self.assertEqual((ch["id"], ch["name"], ch["kind"], ch["account_id"], ch["mode"],
                          ch["enabled"], ch["source"]),
                         ("demo-sales", "Sales WhatsApp", "whatsapp", body["account_id"],
                          "webhook", True, "database"))
        self.assertEqual(ch["webhook_url"], "/webhooks/whatsapp/demo-sales")
        self.assertEqual(ch["secrets"]["app_secret"],
                         {"set": True, "hint": body["app_secret"][-4:]})
        self.assertEqual(ch["secrets"]["access_token"]["hint"], body["access_token"][-4:])
        self.assertTrue(ch["secrets"]["verify_token"]["set"])
        self.assertIsNone(ch["ai"])
        verify = out["verify_token"]
        self.assertRegex(verify, r"^[0-9a-f]{32}$")
        # stored sealed, never in clear
        stored = self.psql("SELECT app_secret || ' ' || verify_token || ' ' || access_token "
                           "FROM channels WHERE public_id = 'demo-sales'")
        for s in (body["app_secret"], body["access_token"], verify):
            self.assertNotIn(s, stored)
        self.assertTrue(all(v.startswith("hs1:") for v in stored.split()))

        # it serves: the webhook with its app secret, Meta's handshake with the token
        self.wait_webhook(h, "demo-sales", body["account_id"], body["app_secret"], 200)
        r = httpc.get(h.port, "/webhooks/whatsapp/demo-sales?hub.mode=subscribe&"
                               "hub.challenge=42&hub.verify_token=" + verify)
        self.assertEqual((r.status, r.body), (200, b"42"))

        r = self.api(h, "GET", "/api/v1/channels", adm)
        self.assertEqual(r.status, 200, r)
        listed = {c["id"]: c for c in r.json()["channels"]}
        self.assertEqual(sorted(listed), ["demo-sales", "demo-whatsapp"])
        self.assertEqual(listed["demo-whatsapp"]["source"], "config")
        self.assertEqual(listed["demo-sales"], ch | {"updated_at": listed["demo-sales"]
                                                     ["updated_at"]})
        r = self.api(h, "GET", "/api/v1/channels/demo-sales", adm)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["channel"]["id"], "demo-sales")
        self.assertNotIn(verify.encode(), r.body)
        # a generated id when none is given; telegram gets no verify token
        body2, out2 = self.create(h, adm, kind="telegram", app_secret="tg_" + os.urandom(8).hex())
        self.assertRegex(out2["channel"]["id"], r"^telegram-[0-9a-f]{12}$")
        self.assertNotIn("verify_token", out2)
        self.assertFalse(out2["channel"]["secrets"]["verify_token"]["set"])

        # the audit log names the fields, never their values
        rows = self.psql("SELECT actor, role, action, target, address, detail FROM audit_log "
                         "ORDER BY id").splitlines()
        self.assertEqual(len(rows), 2, rows)
        actor, role, action, target, address, detail = rows[0].split("|")
        self.assertEqual((actor, role, action, target, address),
                         ("admin-1", "admin", "channel.create", "channel:demo-sales",
                          "127.0.0.1"))
        self.assertEqual(sorted(json.loads(detail)["fields"]),
                         ["access_token", "account_id", "app_secret", "id", "kind", "name"])
        dump = self.psql("SELECT string_agg(a::text, ' ') FROM audit_log a")
        for s in self.secrets + [verify]:
            self.assertNotIn(s, dump)
        self.assertNotIn(verify, h.log())

    def test_update_disable_enable_delete(self):
        h = self.start_hubd()
        adm = self.admin(h)
        body, out = self.create(h, adm, id="demo-upd")
        acc = body["account_id"]
        self.wait_webhook(h, "demo-upd", acc, body["app_secret"], 200)
        new_app = self.new_secret("app2")
        r = self.api(h, "PATCH", "/api/v1/channels/demo-upd", adm,
                     {"name": "Renamed", "app_secret": new_app})
        self.assertEqual(r.status, 200, r)
        ch = r.json()["channel"]
        self.assertEqual((ch["name"], ch["secrets"]["app_secret"]["hint"]),
                         ("Renamed", new_app[-4:]))
        # the new secret signs from now on, the old one no longer
        self.wait_webhook(h, "demo-upd", acc, new_app, 200)
        self.assertEqual(self.wa_post(h, "demo-upd", acc, body["app_secret"]), 401)

        r = self.api(h, "POST", "/api/v1/channels/demo-upd/disable", adm)
        self.assertEqual((r.status, r.json()["channel"]["enabled"]), (200, False), r)
        self.wait_webhook(h, "demo-upd", acc, new_app, 404)
        before = self.counts()
        self.assertEqual(self.wa_post(h, "demo-upd", acc, new_app), 404)
        self.assert_unchanged(before)
        r = self.api(h, "POST", "/api/v1/channels/demo-upd/enable", adm)
        self.assertEqual((r.status, r.json()["channel"]["enabled"]), (200, True), r)
        self.wait_webhook(h, "demo-upd", acc, new_app, 200)

        r = self.api(h, "DELETE", "/api/v1/channels/demo-upd", adm)
        self.assertEqual((r.status, r.body), (204, b""), r)
        self.wait_webhook(h, "demo-upd", acc, new_app, 404)
        self.assertEqual(self.api(h, "GET", "/api/v1/channels/demo-upd", adm).status, 404)
        self.assertEqual(self.api(h, "DELETE", "/api/v1/channels/demo-upd", adm).status, 404)
        self.assertNotIn("demo-upd", self.api(h, "GET", "/api/v1/channels", adm).text)
        self.assertEqual(self.psql("SELECT coalesce(app_secret, 'none') || coalesce("
                                   "access_token, 'none') || enabled FROM channels WHERE "
                                   "public_id = 'demo-upd'"), "nonenonefalse")
        # its id stays taken: its history still names it
        r = self.api(h, "POST", "/api/v1/channels", adm,
                     {"id": "demo-upd", "kind": "whatsapp", "account_id": "1",
                      "app_secret": self.new_secret("x")})
        self.assertEqual((r.status, list(r.json()["error"]["fields"])), (400, ["id"]), r)

        # a channel of the config file: enable/disable apply, the rest is the file's
        r = self.api(h, "PATCH", "/api/v1/channels/demo-whatsapp", adm, {"name": "x"})
        self.assertEqual((r.status, r.json()["error"]["code"]), (409, "managed_by_config"))
        r = self.api(h, "DELETE", "/api/v1/channels/demo-whatsapp", adm)
        self.assertEqual((r.status, r.json()["error"]["code"]), (409, "managed_by_config"))
        actions = self.psql("SELECT string_agg(action, ',' ORDER BY id) FROM audit_log")
        self.assertEqual(actions, "channel.create,channel.update,channel.disable,"
                                  "channel.enable,channel.delete")
        detail = self.psql("SELECT detail FROM audit_log WHERE action = 'channel.update'")
        self.assertEqual(sorted(json.loads(detail)["fields"]), ["app_secret", "name"])
        for s in self.secrets:
            self.assertNotIn(s, h.log())

    def test_endpoint_role_tenant_table(self):
        h = self.start_hubd()
        demo_admin = self.admin(h)
        _, out = self.create(h, demo_admin, id="demo-iso")
        tokens = {
            "none": None,
            "demo agent": self.token(h, tenant="demo", sub="agent-1", role="agent"),
            "acme admin": self.admin(h, tenant="acme", sub="acme-admin"),
            "demo admin": demo_admin,
        }
        good = {"kind": "whatsapp", "account_id": "123", "app_secret": self.new_secret("t")}
        # (method, path, body, {token: expected status}); the acme admin never sees demo's
        endpoints = [
            ("GET", "/api/v1/channels", None, {"acme admin": 200, "demo admin": 200}),
            ("GET", "/api/v1/channels/demo-iso", None, {"acme admin": 404, "demo admin": 200}),
            ("PATCH", "/api/v1/channels/demo-iso", {"name": "n"},
             {"acme admin": 404, "demo admin": 200}),
            ("POST", "/api/v1/channels/demo-iso/disable", None,
             {"acme admin": 404, "demo admin": 200}),
            ("POST", "/api/v1/channels/demo-iso/enable", None,
             {"acme admin": 404, "demo admin": 200}),
            ("GET", "/api/v1/audit", None, {"acme admin": 200, "demo admin": 200}),
            ("DELETE", "/api/v1/channels/demo-iso", None, {"acme admin": 404,
                                                           "demo admin": 204}),
            ("POST", "/api/v1/channels", good, {"acme admin": 201, "demo admin": None}),
        ]
        for method, path, body, want in endpoints:
            for who, tok in tokens.items():
                expected = want.get(who, 401 if who == "none" else 403)
                if expected is None:
                    continue
                before = self.table()
                r = self.api(h, method, path, tok, body)
                self.assertEqual(r.status, expected, "%s %s as %s: %r" % (method, path, who, r))
                if expected in (401, 403, 404):
                    self.assertEqual(self.table(), before, "%s %s as %s changed something"
                                     % (method, path, who))
                    self.assertIn("error", r.json())
        # what acme's admin read holds nothing of demo's
        r = self.api(h, "GET", "/api/v1/channels", tokens["acme admin"])
        self.assertNotIn(b"demo", r.body)
        r = self.api(h, "GET", "/api/v1/audit", tokens["acme admin"])
        self.assertEqual([x["target"][:8] for x in r.json()["records"]], ["channel:"])
        self.assertNotIn(b"demo-iso", r.body)

    def test_invalid_bodies_get_field_errors_and_change_nothing(self):
        h = self.start_hubd()
        adm = self.admin(h)
        self.create(h, adm, id="demo-inv")
        long = "x" * 201
        cases = [
            ("POST", "/api/v1/channels", {}, ["account_id", "app_secret", "kind"]),
            ("POST", "/api/v1/channels", {"kind": "sms", "account_id": "1",
                                          "app_secret": "s"}, ["kind"]),
            ("POST", "/api/v1/channels", {"id": "Bad Id!", "kind": "whatsapp",
                                          "account_id": "1", "app_secret": "s"}, ["id"]),
            ("POST", "/api/v1/channels", {"kind": "whatsapp", "account_id": "1 2",
                                          "app_secret": "s"}, ["account_id"]),
            ("POST", "/api/v1/channels", {"kind": "telegram", "account_id": "1",
                                          "app_secret": "not a token!"}, ["app_secret"]),
            ("POST", "/api/v1/channels", {"kind": "whatsapp", "account_id": "1",
                                          "app_secret": "s", "mode": "polling"}, ["mode"]),
            ("POST", "/api/v1/channels", {"kind": "whatsapp", "account_id": 1,
                                          "app_secret": "s", "name": long},
             ["account_id", "name"]),
            ("POST", "/api/v1/channels", {"kind": "whatsapp", "account_id": "1",
                                          "app_secret": "a\u0001b", "enabled": True,
                                          "colour": "red"},
             ["app_secret", "colour", "enabled"]),
            ("POST", "/api/v1/channels", {"kind": "whatsapp", "account_id": "1",
                                          "app_secret": "s", "id": "demo-inv"}, ["id"]),
            ("PATCH", "/api/v1/channels/demo-inv", {"mode": "polling"}, ["mode"]),
            ("PATCH", "/api/v1/channels/demo-inv", {"account_id": "", "name": 5,
                                                    "verify_token": "x"},
             ["account_id", "name", "verify_token"]),
            ("PATCH", "/api/v1/channels/demo-inv", {"access_token": "",
                                                    "app_secret": "x" * 4097},
             ["access_token", "app_secret"]),
        ]
        for method, path, body, fields in cases:
            before = self.table()
            r = self.api(h, method, path, adm, body)
            self.assertEqual(r.status, 400, "%s %r: %r" % (method, body, r))
            err = r.json()["error"]
            self.assertEqual(err["code"], "invalid")
            self.assertEqual(sorted(err["fields"]), fields, "%s %r: %r" % (method, body, err))
            for why in err["fields"].values():
                self.assertTrue(why and isinstance(why, str))
            self.assertEqual(self.table(), before, "%s %r changed something" % (method, body))
        for raw in ("", "[1]", "{", '{"kind":"whatsapp"} x'):
            before = self.table()
            r = self.api(h, "POST", "/api/v1/channels", adm, raw=raw)
            self.assertEqual((r.status, r.json()["error"]["code"]), (400, "bad_json"), raw)
            self.assertEqual(self.table(), before)
        h.assert_alive()


class WebChannels(AdminCase):
    ORIGIN = "https://shop.example.kz"

    def session(self, h, cid, origin):
        return httpc.request(h.port, "POST", "/webchat/%s/session" % cid, body=b"{}",
                             headers={"Content-Type": "application/json", "Origin": origin})

    def test_a_web_channel_is_created_changed_and_served(self):
        h = self.start_hubd()
        adm = self.admin(h)
        web = {"origins": [self.ORIGIN], "title": {"ru": "Магазин", "en": "Shop"},
               "color": "#0a7cff", "prechat": False}
        # mistakes first: field errors, nothing changed
        before = self.table()
        for body, field in (({"kind": "web"}, "web"),
                            ({"kind": "web", "web": {"origins": ["not an origin"]}}, "web"),
                            ({"kind": "web", "web": "x"}, "web"),
                            ({"kind": "whatsapp", "account_id": "1", "app_secret": "s",
                              "web": web}, "web")):
            r = self.api(h, "POST", "/api/v1/channels", adm, body)
            self.assertEqual((r.status, r.json()["error"]["code"]), (400, "invalid"), r)
            self.assertIn(field, r.json()["error"]["fields"], r)
        self.assertEqual(self.table(), before)
        # then a web channel: no account, no secret given; the identity secret answered once
        r = self.api(h, "POST", "/api/v1/channels", adm, {"kind": "web", "id": "demo-site",
                                                          "name": "Site", "web": web})
        self.assertEqual(r.status, 201, r)
        out = r.json()
        secret = out["identity_secret"]
        self.no_leak(secret)
        self.assertRegex(secret, r"^[0-9a-f]{64}$")
        ch = out["channel"]
        self.assertEqual((ch["kind"], ch["account_id"], ch["webhook_url"], ch["web"]),
                         ("web", "demo-site", None, web))
        got = self.api(h, "GET", "/api/v1/channels/demo-site", adm).json()["channel"]
        self.assertNotIn(secret, json.dumps(got))
        self.assertEqual(got["web"], web)
        # served at once: the widget's session for its origin, refused for another
        util.wait_for(lambda: self.session(h, "demo-site", self.ORIGIN).status == 200, WAIT,
                      "the new web channel to serve sessions")
        self.assertEqual(self.session(h, "demo-site", "https://other.example.kz").status, 403)
        # another origin added by PATCH; web settings on PATCH are checked too
        r = self.api(h, "PATCH", "/api/v1/channels/demo-site", adm,
                     {"web": dict(web, origins=[self.ORIGIN, "https://other.example.kz"])})
        self.assertEqual(r.status, 200, r)
        util.wait_for(lambda: self.session(h, "demo-site", "https://other.example.kz").status
                      == 200, WAIT, "the new origin to be served")
        before = self.table()
        r = self.api(h, "PATCH", "/api/v1/channels/demo-site", adm, {"web": {"color": "red"}})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.table(), before)
        r = self.api(h, "PATCH", "/api/v1/channels/demo-whatsapp", adm, {"web": web})
        self.assertEqual((r.status, list(r.json()["error"]["fields"])), (400, ["web"]), r)
        # the check has no platform to ask
        r = self.api(h, "POST", "/api/v1/channels/demo-site/check", adm)
        self.assertEqual((r.status, r.json()["ok"], r.json()["result"]), (200, True, "ok"), r)


class Assistant(AdminCase):
    def test_the_assistants_settings_are_part_of_the_channel(self):
        h = self.start_hubd()
        adm = self.admin(h)
        key = self.new_secret("sk-provider")
        _, out = self.create(h, adm, id="demo-ai", ai={
            "base_url": "http://127.0.0.1:9", "model": "qwen2.5-7b", "api_key": key,
            "quiet_ms": 1500, "handoff_phrases": ["оператор", "manager*"],
            "disclosure": {"ru": "Я бот."},
            "hours": {"tz": "Asia/Almaty", "days": [1, 2, 3, 4, 5], "from": "09:00",
                      "to": "18:00"}})
        ai = out["channel"]["ai"]
        self.assertEqual((ai["model"], ai["quiet_ms"], ai["api_key"], ai["enabled"]),
                         ("qwen2.5-7b", 1500, "…" + key[-4:], False))
        self.assertEqual(ai["hours"], {"tz": "Asia/Almaty", "days": [1, 2, 3, 4, 5],
                                       "from": "09:00", "to": "18:00"})
        self.assertEqual(ai["handoff_phrases"], ["оператор", "manager*"])
        stored = self.psql("SELECT api_key FROM channel_ai")
        self.assertTrue(stored.startswith("hs1:") and key not in stored)
        # the key is sealed where the responder opens it: hubctl shows the same settings
        r = self.hubctl("-c", h.config_path, "channel", "ai", "demo-ai", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["model"], "qwen2.5-7b")

        r = self.api(h, "PATCH", "/api/v1/channels/demo-ai", adm,
                     {"ai": {"enabled": True, "temperature": 0.3, "api_key": None}})
        self.assertEqual(r.status, 200, r)
        ai = r.json()["channel"]["ai"]
        self.assertEqual((ai["enabled"], ai["temperature"], ai["api_key"]), (True, 0.3, None))
        detail = json.loads(self.psql("SELECT detail FROM audit_log ORDER BY id DESC LIMIT 1"))
        self.assertEqual(sorted(detail["fields"]), ["ai.api_key", "ai.enabled",
                                                    "ai.temperature"])
        # the config file's channel: its assistant is the admin's too
        r = self.api(h, "PATCH", "/api/v1/channels/demo-whatsapp", adm,
                     {"ai": {"model": "m", "base_url": "https://api.example.com"}})
        self.assertEqual((r.status, r.json()["channel"]["ai"]["model"]), (200, "m"), r)

        bad = [
            ({"ai": {"enabled": True}}, "demo-whatsapp", []),  # fine: url and model set
            ({"ai": {"base_url": "ftp://x", "model": "", "history_turns": 0,
                     "temperature": 3, "colour": 1}}, "demo-ai",
             ["ai.base_url", "ai.colour", "ai.history_turns", "ai.model", "ai.temperature"]),
            ({"ai": {"disclosure": {"de": "Hallo"}, "handoff_phrases": "x",
                     "hours": {"tz": "Asia/Almaty", "days": [8], "from": "18:00",
                               "to": "09:00"}}}, "demo-ai",
             ["ai.disclosure", "ai.handoff_phrases", "ai.hours"]),
            ({"ai": []}, "demo-ai", ["ai"]),
        ]
        for body, cid, fields in bad[1:]:
            before = self.table()
            r = self.api(h, "PATCH", "/api/v1/channels/" + cid, adm, body)
            self.assertEqual(r.status, 400, r)
            self.assertEqual(sorted(r.json()["error"]["fields"]), fields, r)
            self.assertEqual(self.table(), before)
        # what only the database knows: a zone it does not have, on without url and model
        _, out = self.create(h, adm, id="demo-ai2")
        for body, field in (({"name": "x", "ai": {"hours": {"tz": "Mars/Olympus", "days": [1],
                                                             "from": "09:00", "to": "10:00"}}},
                             "ai.hours"),
                            ({"name": "x", "ai": {"enabled": True}}, "ai.enabled")):
            before = self.table()
            r = self.api(h, "PATCH", "/api/v1/channels/demo-ai2", adm, body)
            self.assertEqual((r.status, list(r.json()["error"]["fields"])), (400, [field]), r)
            self.assertEqual(self.table(), before)
        self.assertNotIn(key, h.log())


class Live(AdminCase):
    def test_a_second_instance_follows_within_a_second(self):
        h1 = self.start_hubd()
        cfg2 = hubd.merge(h1.cfg, {"http.listen": "127.0.0.1:%d" % util.free_port()})
        h2 = self.start_hubd(cfg2, name="hubd2")
        adm = self.admin(h1)
        body, _ = self.create(h1, adm, id="demo-live")
        acc, app = body["account_id"], body["app_secret"]
        took = {}
        took["create"] = self.wait_webhook(h2, "demo-live", acc, app, 200, LIVE_DEADLINE)
        r = self.api(h1, "POST", "/api/v1/channels/demo-live/disable", adm)
        self.assertEqual(r.status, 200, r)
        took["disable"] = self.wait_webhook(h2, "demo-live", acc, app, 404, LIVE_DEADLINE)
        r = self.api(h1, "POST", "/api/v1/channels/demo-live/enable", adm)
        took["enable"] = self.wait_webhook(h2, "demo-live", acc, app, 200, LIVE_DEADLINE)
        app2 = self.new_secret("app-live")
        r = self.api(h1, "PATCH", "/api/v1/channels/demo-live", adm, {"app_secret": app2})
        self.assertEqual(r.status, 200, r)
        took["update"] = self.wait_webhook(h2, "demo-live", acc, app2, 200, LIVE_DEADLINE)
        r = self.api(h1, "DELETE", "/api/v1/channels/demo-live", adm)
        self.assertEqual(r.status, 204, r)
        took["delete"] = self.wait_webhook(h2, "demo-live", acc, app2, 404, LIVE_DEADLINE)
        print("seen by the second instance after (s): %s" % ", ".join(
            "%s %.3f" % kv for kv in took.items()), file=sys.stderr)


class Outbox(OutboundCase, AdminCase):
    def test_a_disabled_channels_queued_replies_fail_with_a_clear_reason(self):
        # replies queued while nothing delivers, then the channel is disabled, then the
        # outbox runs: they fail at once, nothing reaches the platform
        h = self.start(overrides={"outbound.enabled": False}, callbacks=False)
        agent = self.agent(h)
        conv = self.wa_conversation(h, agent)
        mids = [self.send(agent, conv, "Ответ %d" % i) for i in range(2)]
        adm = self.admin(h)
        r = self.api(h, "POST", "/api/v1/channels/demo-whatsapp/disable", adm)
        self.assertEqual((r.status, r.json()["channel"]["enabled"]), (200, False), r)
        ch = self.channel(h)
        self.wait_webhook(h, "demo-whatsapp", ch["account_id"], ch["app_secret"], 404)
        h.reload(hubd.merge(h.cfg, {"outbound.enabled": True}))
        for mid in mids:
            self.assertEqual(self.statuses(agent, mid, "failed")[-1], "failed")
            status, _, error, ostatus, attempts, code = self.row(mid)
            self.assertEqual((status, ostatus, attempts, code),
                             ("failed", "failed", 1, "channel_disabled"))
            self.assertIn("disabled", error)
        self.assertEqual(self.fakes["whatsapp"].requests, [])

    def test_a_deleted_channels_queued_replies_fail_too(self):
        # a channel of the database, deleted: its secrets are gone, yet every hubd still
        # knows it as off (not as a channel it has not heard of, which would be retried)
        h = self.start(overrides={"outbound.enabled": False}, callbacks=False)
        agent = self.agent(h)
        adm = self.admin(h)
        body, _ = self.create(h, adm, id="demo-gone")
        self.wait_webhook(h, "demo-gone", body["account_id"], body["app_secret"], 200)
        conv = agent.event("message.created")["data"]["conversation_id"]
        mid = self.send(agent, conv, "Ответ")
        self.assertEqual(self.api(h, "DELETE", "/api/v1/channels/demo-gone", adm).status, 204)
        self.wait_webhook(h, "demo-gone", body["account_id"], body["app_secret"], 404)
        h.reload(hubd.merge(h.cfg, {"outbound.enabled": True}))
        self.assertEqual(self.statuses(agent, mid, "failed")[-1], "failed")
        self.assertEqual(self.row(mid)[3:], ["failed", 1, "channel_disabled"])
        self.assertEqual(self.fakes["whatsapp"].requests, [])


class Check(OutboundCase, AdminCase):
    def check(self, h, token, cid):
        r = self.api(h, "POST", "/api/v1/channels/%s/check" % cid, token)
        self.assertEqual(r.status, 200, r)
        out = r.json()
        self.assertEqual(out["channel"], cid)
        self.assertTrue(out["message"])
        return out

    def test_the_credentials_are_tried_against_the_platform(self):
        h = self.start(callbacks=False)
        adm = self.admin(h)
        wa, tg = self.fakes["whatsapp"], self.fakes["telegram"]
        wa_body, _ = self.create(h, adm, id="demo-chk")
        wa.phone_numbers[wa_body["account_id"]] = {"display_phone_number": "+7 701 000 0000",
                                                   "verified_name": "Demo LLP"}
        out = self.check(h, adm, "demo-chk")
        self.assertEqual((out["ok"], out["result"]), (True, "ok"), out)
        self.assertEqual(out["details"], {"display_phone_number": "+7 701 000 0000",
                                          "verified_name": "Demo LLP"})
        req = wa.requests[-1]
        self.assertEqual((req.method, req.path, req.headers["authorization"]),
                         ("GET", "/v21.0/" + wa_body["account_id"],
                          "Bearer " + wa_body["access_token"]))
        # a token the platform no longer takes
        wa.expect_token("another-token")
        out = self.check(h, adm, "demo-chk")
        self.assertEqual((out["ok"], out["result"]), (False, "token_refused"), out)
        self.assertIn("access_token", out["message"])
        wa.expect_token()
        # an account id the platform does not know with this token
        r = self.api(h, "PATCH", "/api/v1/channels/demo-chk", adm, {"account_id": "999"})
        self.assertEqual(r.status, 200, r)
        util.wait_for(lambda: self.check(h, adm, "demo-chk")["result"] == "wrong_account",
                      WAIT, "the changed account to be checked")
        # Telegram: getMe, and the bot's id against account_id
        bot = str(tg.bot["id"])
        self.create(h, adm, id="demo-tgchk", kind="telegram", account_id=bot,
                    app_secret="tg_" + os.urandom(8).hex(),
                    access_token=self.new_secret(bot + ":AAH"))
        out = self.check(h, adm, "demo-tgchk")
        self.assertEqual((out["result"], out["details"]["username"]), ("ok", "bayge_test_bot"),
                         out)
        self.create(h, adm, id="demo-tgbad", kind="telegram", account_id="123",
                    app_secret="tg_" + os.urandom(8).hex(),
                    access_token=self.new_secret("123:AAH"))
        out = self.check(h, adm, "demo-tgbad")
        self.assertEqual(out["result"], "wrong_account", out)
        # no token stored, and a platform that does not answer
        self.create(h, adm, id="demo-notok", access_token=None)
        self.assertEqual(self.check(h, adm, "demo-notok")["result"], "no_access_token")
        tg.stop()
        self.assertEqual(self.check(h, adm, "demo-tgchk")["result"], "unreachable")
        # admins of the tenant only; every check audited by its verdict's code
        self.assertEqual(self.api(h, "POST", "/api/v1/channels/demo-chk/check",
                                  self.admin(h, tenant="acme")).status, 404)
        self.assertEqual(self.api(h, "POST", "/api/v1/channels/demo-chk/check",
                                  self.token(h, role="agent")).status, 403)
        self.assertEqual(self.api(h, "POST", "/api/v1/channels/nope/check", adm).status, 404)
        results = self.psql("SELECT string_agg(detail->>'result', ',' ORDER BY id) FROM "
                            "audit_log WHERE action = 'channel.check'").split(",")
        self.assertEqual(results[:2] + results[-3:], ["ok", "token_refused", "wrong_account",
                                                      "no_access_token", "unreachable"])


class Audit(AdminCase):
    def test_hubctls_changes_are_audited_too(self):
        h = self.start_hubd()
        path = self.write_config(h.cfg, "ctl.json")
        for args in (("disable", "demo-whatsapp"), ("enable", "demo-whatsapp"),
                     ("ai", "demo-whatsapp", "--model", "m", "--quiet-ms", "100")):
            r = self.hubctl("-c", path, "channel", *args)
            self.assertEqual(r.returncode, 0, r.stderr)
        r = self.api(h, "GET", "/api/v1/audit", self.admin(h))
        recs = r.json()["records"]
        self.assertEqual([(x["actor"], x["role"], x["action"], x["target"], x["address"])
                          for x in recs],
                         [("hubctl", "operator", "channel.update", "channel:demo-whatsapp", ""),
                          ("hubctl", "operator", "channel.enable", "channel:demo-whatsapp", ""),
                          ("hubctl", "operator", "channel.disable", "channel:demo-whatsapp",
                           "")])
        self.assertEqual(sorted(recs[0]["detail"]["fields"]), ["ai.model", "ai.quiet_ms"])
        # a change hubctl refuses writes nothing
        r = self.hubctl("-c", path, "channel", "disable", "no-such-channel")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(self.count("audit_log"), 3)

    def test_paged_newest_first_admins_only(self):
        h = self.start_hubd()
        adm = self.admin(h)
        self.create(h, adm, id="demo-aud")
        for i in range(4):
            on = "enable" if i % 2 else "disable"
            self.assertEqual(self.api(h, "POST", "/api/v1/channels/demo-aud/" + on,
                                      adm).status, 200)
        ids, cursor, pages = [], None, 0
        while True:
            r = self.api(h, "GET", "/api/v1/audit?limit=2" +
                         ("&before=" + cursor if cursor else ""), adm)
            self.assertEqual(r.status, 200, r)
            page = r.json()
            ids += [x["id"] for x in page["records"]]
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual((len(ids), pages), (5, 3))
        self.assertEqual(ids, sorted(ids, reverse=True))
        r = self.api(h, "GET", "/api/v1/audit?limit=50", adm)
        recs = r.json()["records"]
        self.assertEqual([x["action"] for x in recs],
                         ["channel.enable", "channel.disable", "channel.enable",
                          "channel.disable", "channel.create"])
        self.assertEqual({x["actor"] for x in recs}, {"admin-1"})
        self.assertEqual({x["address"] for x in recs}, {"127.0.0.1"})
        for bad in ("limit=0", "limit=201", "limit=x", "before=abc", "before=-1"):
            r = self.api(h, "GET", "/api/v1/audit?" + bad, adm)
            self.assertEqual(r.status, 400, bad)
        agent = self.token(h, role="agent")
        self.assertEqual(self.api(h, "GET", "/api/v1/audit", agent).status, 403)


class RateLimit(AdminCase):
    def test_each_token_has_its_bucket(self):
        h = self.start_hubd(overrides={"api.rate_per_s": 1, "api.rate_burst": 3})
        a1 = self.admin(h, sub="admin-1")
        a2 = self.admin(h, sub="admin-2")
        statuses = [self.api(h, "GET", "/api/v1/channels", a1).status for _ in range(3)]
        self.assertEqual(statuses, [200, 200, 200])
        r = self.api(h, "GET", "/api/v1/channels", a1)
        self.assertEqual((r.status, r.json()["error"]["code"]), (429, "rate_limited"), r)
        self.assertIn(r.headers.get("retry-after"), ("1", "2"))
        # another token of the same tenant is not held back, nor are the inbox endpoints
        # of another (they share the one limit per token)
        self.assertEqual(self.api(h, "GET", "/api/v1/channels", a2).status, 200)
        agent = self.token(h, role="agent")
        self.assertEqual(self.api(h, "GET", "/api/v1/conversations", agent).status, 200)
        # a bad token is refused before it could use anyone's bucket
        self.assertEqual(self.api(h, "GET", "/api/v1/channels", "x.y.z").status, 401)
        # the limit is live: SIGHUP with 0 lifts it
        h.reload(hubd.merge(h.cfg, {"api.rate_per_s": 0}))
        statuses = {self.api(h, "GET", "/api/v1/channels", a1).status for _ in range(10)}
        self.assertEqual(statuses, {200})


ROUTE_RE = re.compile(r'\{ "(GET|POST|PATCH|DELETE|PUT)", "(/api/v1/[^"]*)"')


class OpenApi(AdminCase):
    def test_the_description_matches_the_running_server(self):
        h = self.start_hubd()
        adm = self.admin(h)
        self.create(h, adm, id="demo-doc")
        r = self.api(h, "GET", "/api/v1/openapi.json")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        doc = r.json()
        self.assertTrue(doc["openapi"].startswith("3."))
        documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
        with open(os.path.join(util.ROOT, "daemon", "hubd.c")) as f:
            routes = set(ROUTE_RE.findall(f.read()))
        self.assertEqual(documented, routes, "api/openapi.json and hubd.c's routes differ")
        # every documented path and method answers (its handler, never the router's 404
        # or 405); {id} is a real channel, or a number
        for method, path in sorted(documented):
            real = (path.replace("/channels/{id}", "/channels/demo-doc").replace("{id}", "1")
                    .replace("{sid}", "1").replace("{action}", "confirm"))
            body = "{}" if method in ("POST", "PATCH") else None
            if method == "DELETE":
                continue  # answered below, last (the tenant's is not tried at all)
            r = self.api(h, method, real, adm, raw=body)
            self.assertNotEqual(r.status, 405, (method, real, r))
            if r.status == 404:  # the handler's (no such thing), not the router's
                self.assertNotEqual(r.json()["error"]["message"], "no such path",
                                    (method, real, r))
        r = self.api(h, "DELETE", "/api/v1/channels/demo-doc", adm)
        self.assertEqual(r.status, 204, r)
        etag = self.api(h, "GET", "/api/v1/openapi.json").headers["etag"]
        r = self.api(h, "GET", "/api/v1/openapi.json", headers={"If-None-Match": etag})
        self.assertEqual(r.status, 304)
