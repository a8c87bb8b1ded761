"""tests/integration/test_revoke.py - revocation of access tokens and their lifetime cap
(security issue 10, finding 3): `hubctl revoke --tenant T [--user U]` refuses the tokens
issued until then for new websockets and REST requests and closes the open sockets that
hold one (1008 "token revoked") on every hubd sharing the database (NOTIFY
hub_revocations); tokens without iat are refused once a not-before is set for them; bad
input is refused with nothing changed; tokens living longer than auth.max_token_ttl_s are
refused (also after a reload lowered it), and hubctl token does not mint one.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, hubd, util  # noqa: E402
from support.case import HubTestCase  # noqa: E402

LIVE_TIMEOUT = 15  # a NOTIFY, one query, the sockets closed


class RevokeCase(HubTestCase):
    needs_hubctl = True

    def ctl(self, h, *args):
        return self.hubctl("-c", h.config_path, *args)

    def rest(self, h, token):
        return httpc.get(h.port, "/api/v1/conversations",
                         headers={"Authorization": "Bearer " + token})

    def refused_ws(self, h, token, reason):
        c = self.ws(h)
        c.send_json({"type": "auth", "token": token})
        self.assertEqual(c.wait_close(10), (1008, reason))

    def alive(self, c):
        """c still answers a command (no such conversation: an error, but an answer)."""
        self.assertEqual(c.command({"type": "typing", "conversation_id": 1})["type"], "error")

    def revocations(self):
        return self.psql("SELECT coalesce(string_agg(tenant_id || '/' || user_id || '@' || "
                         "extract(epoch FROM not_before)::bigint, ',' ORDER BY 1), '') "
                         "FROM token_revocations")

    def revoke(self, h, *args):
        """hubctl revoke ARGS; returns the not-before it printed (Unix seconds)."""
        r = self.ctl(h, "revoke", *args)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"issued before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \((\d+)\)", r.stdout)
        self.assertTrue(m, r.stdout)
        return int(m.group(1))


class Revoke(RevokeCase):
    def test_user_revoked_live_for_sockets_and_rest(self):
        h = self.start_hubd()
        old = int(time.time()) - 5
        t1 = self.token(h, sub="agent-1", iat=old)
        t1_no_iat = self.token(h, sub="agent-1")
        t2 = self.token(h, sub="agent-2", iat=old)
        t2_no_iat = self.token(h, sub="agent-2")
        a1 = self.agent(h, sub="agent-1", iat=old)
        a2 = self.agent(h, sub="agent-2", iat=old)
        self.assertEqual(self.rest(h, t1).status, 200)

        nb = self.revoke(h, "--tenant", "demo", "--user", "agent-1")
        self.assertGreaterEqual(nb, old + 5)
        self.assertEqual(a1.wait_close(LIVE_TIMEOUT), (1008, "token revoked"))
        self.alive(a2)                                  # another user: untouched
        self.refused_ws(h, t1, "token revoked")
        self.refused_ws(h, t1_no_iat, "token revoked")  # no iat: its age is unknown
        r = self.rest(h, t1)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["error"]["code"], "bad_token")
        self.assertIn("revoked", r.json()["error"]["message"])
        self.assertEqual(self.rest(h, t1_no_iat).status, 401)
        # the others of the tenant, with or without iat, still in
        self.assertEqual(self.rest(h, t2).status, 200)
        self.assertEqual(self.rest(h, t2_no_iat).status, 200)
        self.agent(h, sub="agent-2")
        # a token issued from the not-before on is accepted
        self.agent(h, sub="agent-1", iat=nb)
        self.assertEqual(self.rest(h, self.token(h, sub="agent-1", iat=nb)).status, 200)
        self.assertEqual(self.revocations(), "demo/agent-1@%d" % nb)
        self.assertGreaterEqual(h.count_log(r"token revocations: 1 in the database"), 1)
        h.assert_alive()

    def test_tenant_revoked_on_every_instance(self):
        h1 = self.start_hubd()
        cfg2 = hubd.merge(h1.cfg, {"http.listen": "127.0.0.1:%d" % util.free_port()})
        h2 = self.start_hubd(cfg2, name="hubd2")
        old = int(time.time()) - 5
        demo = [self.agent(h, sub=sub, iat=old) for h in (h1, h2)
                for sub in ("agent-1", "admin-1")]
        acme = self.agent(h2, tenant="acme", iat=old)
        nb = self.revoke(h1, "--tenant", "demo")
        for c in demo:
            self.assertEqual(c.wait_close(LIVE_TIMEOUT), (1008, "token revoked"))
        self.alive(acme)
        for h in (h1, h2):
            self.refused_ws(h, self.token(h, sub="agent-9", iat=old), "token revoked")
            self.assertEqual(self.rest(h, self.token(h, sub="agent-9", iat=old)).status, 401)
            self.agent(h, sub="agent-9", iat=nb)
        # a second revocation never moves the not-before back
        nb2 = self.revoke(h2, "--tenant", "demo")
        self.assertGreaterEqual(nb2, nb)
        self.assertEqual(self.revocations(), "demo/@%d" % nb2)

    def test_hubctl_token_is_accepted_after_a_revocation(self):
        h = self.start_hubd()
        self.revoke(h, "--tenant", "demo")
        time.sleep(1.1)   # tokens issued in the revocation's second are revoked too
        r = self.ctl(h, "token", "--tenant", "demo", "--user", "u1", "--role", "agent")
        self.assertEqual(r.returncode, 0, r.stderr)
        token = r.stdout.strip()
        self.no_leak(token)
        self.assertEqual(self.ws(h).auth(token)["type"], "hello")


class BadInput(RevokeCase):
    def refused(self, h, rc, fragment, *args):
        before = self.revocations()
        r = self.ctl(h, "revoke", *args)
        self.assertEqual(r.returncode, rc, r.stdout + r.stderr)
        self.assertIn(fragment, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(self.revocations(), before, "a refused command changed the database")

    def test_bad_input_changes_nothing(self):
        h = self.start_hubd()
        agent = self.agent(h, iat=int(time.time()) - 5)
        self.refused(h, 1, 'unknown tenant "ghost"', "--tenant", "ghost")
        self.refused(h, 2, "--tenant is required", "--user", "agent-1")
        self.refused(h, 2, "--tenant is required")
        self.refused(h, 2, "--tenant is required", "--tenant", "demo", "extra")
        self.refused(h, 2, "--tenant must be", "--tenant", "Demo Co")
        self.refused(h, 2, "--user must be", "--tenant", "demo", "--user", "a\nb")
        self.refused(h, 2, "--user must be", "--tenant", "demo", "--user", "")
        self.refused(h, 2, "--user must be", "--tenant", "demo", "--user", "u" * 128)
        self.refused(h, 2, "usage", "--tenant", "demo", "--everyone")
        self.assertEqual(self.revocations(), "")
        self.alive(agent)
        # the database down: refused, nothing done
        path = self.write_config(self.config(db_url="postgresql://nobody@127.0.0.1:1/none"),
                                 "down.json")
        r = self.hubctl("-c", path, "revoke", "--tenant", "demo")
        self.assertEqual(r.returncode, 1)
        self.assertIn("database", r.stderr)
        self.assertEqual(self.revocations(), "")
        self.alive(agent)


class Lifetime(RevokeCase):
    def test_tokens_over_the_cap_are_refused(self):
        h = self.start_hubd(overrides={"auth.max_token_ttl_s": 3600})
        now = int(time.time())
        reason = "token lifetime over the server's cap"
        long_iat = self.token(h, iat=now, exp=now + 7200)
        long_no_iat = self.token(h, exp=now + 7200)
        # issued long ago, still within exp: exp - iat counts, not what is left
        old_long = self.token(h, iat=now - 6000, exp=now + 1800)
        for t in (long_iat, long_no_iat, old_long):
            self.refused_ws(h, t, reason)
            r = self.rest(h, t)
            self.assertEqual(r.status, 401, r)
            self.assertIn("auth.max_token_ttl_s", r.json()["error"]["message"])
        ok = self.agent(h, iat=now, exp=now + 3600)
        keep = self.agent(h, exp=now + 500)            # no iat: exp - now
        self.assertEqual(self.rest(h, self.token(h, iat=now, exp=now + 3600)).status, 200)
        # a lower cap closes the sockets whose token it refuses now
        h.reload(hubd.merge(h.cfg, {"auth.max_token_ttl_s": 1000}))
        self.assertEqual(ok.wait_close(10), (1008, reason))
        self.alive(keep)
        # hubctl token does not mint what hubd would refuse
        r = self.ctl(h, "token", "--tenant", "demo", "--user", "u1", "--role", "agent",
                     "--ttl", "2000")
        self.assertEqual(r.returncode, 2)
        self.assertIn("over auth.max_token_ttl_s (1000)", r.stderr)
        self.assertEqual(r.stdout, "")
        h.assert_alive()

    def test_bad_iat_is_malformed(self):
        h = self.start_hubd()
        now = int(time.time())
        self.refused_ws(h, self.token(h, iat=now + 7200, exp=now + 3600), "malformed token")
        self.refused_ws(h, self.token(h, extra={"iat": "yesterday"}), "malformed token")
