"""tests/support/case.py - HubTestCase, the base class of the integration tests.

Each test gets its own output folder (tests/out/<test id>/: configs, hubd's stderr), its
own fresh database in the run's shared PostgreSQL, and cleanups that stop every hubd it
started (exit code 0, no sanitizer report) and check that nothing the test sent as text,
token or secret appears in hubd's output. Tests skip with a clear message when the
binaries they need are not built yet.
"""
import os
import re
import shutil
import unittest

from . import httpc, hubd, pg, redisd, tokens, util, whatsapp, ws

COUNTED_TABLES = ("messages", "contacts", "contact_identities", "conversations", "events")


class HubTestCase(unittest.TestCase):
    needs_hubd = True     # skip unless $HUBT_BUILD/hubd exists
    needs_hubctl = False  # skip unless $HUBT_BUILD/hubctl exists
    needs_pg = True       # a fresh database in the shared cluster (self.db)

    def setUp(self):
        if self.needs_hubd and not os.access(hubd.hubd_path(), os.X_OK):
            self.skipTest("%s not built yet (make asan)" % os.path.relpath(hubd.hubd_path(),
                                                                          util.ROOT))
        if self.needs_hubctl and not os.access(hubd.hubctl_path(), os.X_OK):
            self.skipTest("%s not built yet (make asan)"
                          % os.path.relpath(hubd.hubctl_path(), util.ROOT))
        self.out = os.path.join(util.OUT, re.sub(r"[^A-Za-z0-9_.-]+", "_", self.id()))
        shutil.rmtree(self.out, ignore_errors=True)
        os.makedirs(self.out)
        self.hubds = []
        self.leak_checked = []      # strings that must never appear in hubd's output
        self.pg = None
        self.db = None
        if self.needs_pg:
            why = pg.available()
            if why:
                self.skipTest(why)
            self.pg = pg.shared()
            self.db = self.pg.create_db(self._testMethodName)
            self.addCleanup(self._drop_db, self.pg, self.db)
        self.addCleanup(self._finish)   # cleanups run LIFO: this one runs first

    # --- servers ---
    def own_pg(self):
        """A private PostgreSQL that this test may stop() and start(), with a database `hub`;
        returns (server, url). Destroyed after the test."""
        s = pg.PgServer("own")
        self.addCleanup(s.destroy)
        s.start()
        s.psql("CREATE DATABASE hub")
        return s, s.url("hub")

    def own_redis(self):
        """A private redis-server (started); destroyed after the test."""
        why = redisd.available()
        if why:
            self.skipTest(why)
        r = redisd.RedisServer()
        self.addCleanup(r.destroy)
        r.start()
        return r

    def config(self, overrides=None, db_url=None, redis_url=None, port=None):
        """A fresh test config (support.hubd.base_config) for this test's database, a free
        port, with dotted-path overrides."""
        cfg = hubd.base_config(port or util.free_port(), db_url or self.pg.url(self.db),
                               redis_url)
        return hubd.merge(cfg, overrides)

    def start_hubd(self, cfg=None, overrides=None, name="hubd", wait=True, env=None,
                   binary=None):
        """Starts hubd (waits for READY=1 unless wait=False). Stopped after the test, which
        then fails unless it exits 0 without a sanitizer report. A port on 127.0.0.1 that
        another process took between free_port and hubd's bind (a browser's, a client's) is
        a race of the machine, not of the test: hubd starts again on another one."""
        cfg = cfg or self.config(overrides)
        for attempt in range(3):
            h = hubd.Hubd(cfg, self.out, name=name, env=env, binary=binary)
            self.hubds.append(h)
            self.no_leak(*hubd.secrets_of(cfg))
            if not wait:
                h.spawn()
                return h
            try:
                h.start()
                return h
            except hubd.HubdError as e:
                if attempt == 2 or "address already in use" not in str(e).lower() or \
                        not cfg["http"]["listen"].startswith("127.0.0.1:"):
                    raise
                self.hubds.remove(h)
                cfg = hubd.merge(cfg, {"http.listen": "127.0.0.1:%d" % util.free_port()})

    def write_config(self, cfg, name="config.json"):
        path = os.path.join(self.out, name)
        hubd.write_json(path, cfg)
        return path

    def hubctl(self, *args, **kw):
        return hubd.run_hubctl(args, **kw)

    # --- the database ---
    def psql(self, sql, server=None, db=None):
        """psql -At on this test's database (or another server/db); returns the output."""
        return (server or self.pg).psql(sql, db=db or self.db)

    def count(self, table, where=None, **kw):
        return int(self.psql("SELECT count(*) FROM %s%s" % (table, " WHERE " + where
                                                           if where else ""), **kw))

    def keep_queued(self):
        """From now on every row queued for numbering (event_queue) is kept, its event
        types, in table `queued`: a numbering deletes the rows it numbered."""
        self.psql("CREATE TABLE queued (types text[]); CREATE FUNCTION keep_queued() "
                  "RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO queued VALUES "
                  "(NEW.types); RETURN NULL; END $$; CREATE TRIGGER keep_queued AFTER "
                  "INSERT ON event_queue FOR EACH ROW EXECUTE FUNCTION keep_queued()")

    def counts(self, **kw):
        """Row counts of the tables an inbound message touches (one psql, one snapshot)."""
        row = self.psql("SELECT " + ", ".join("(SELECT count(*) FROM %s)" % t
                                              for t in COUNTED_TABLES), **kw)
        return {t: int(n) for t, n in zip(COUNTED_TABLES, row.split("|"), strict=True)}

    def assert_unchanged(self, before, **kw):
        self.assertEqual(self.counts(**kw), before, "the request changed the database")

    # --- clients ---
    def no_leak(self, *strings):
        """Registers strings that must not appear in any hubd output of this test."""
        self.leak_checked += [s for s in strings if s and len(s) >= 4]

    def channel(self, h, cid="demo-whatsapp"):
        return next(c for c in h.cfg["channels"] if c["id"] == cid)

    def unique_text(self):
        return "Сәлеметсіз бе! Does it come in another color? " + os.urandom(6).hex()

    def text_webhook(self, h, cid="demo-whatsapp", text=None, **kw):
        """(body, wamid, signature) of a one-message text webhook for channel cid, signed
        with its app secret. The text (unique_text() by default) is checked for leaks."""
        ch = self.channel(h, cid)
        text = text or self.unique_text()
        body, wamid = whatsapp.text_body(ch["account_id"], text, **kw)
        self.no_leak(text, kw.get("wa_id", "77011234567"))
        return body, wamid, whatsapp.sign(body, ch["app_secret"])

    def post_webhook(self, h, cid, body, signature=None, headers=None):
        hdr = {"Content-Type": "application/json"}
        if signature is not None:
            hdr["X-Hub-Signature-256"] = signature
        hdr.update(headers or {})
        return httpc.request(h.port, "POST", "/webhooks/whatsapp/" + cid, body=body,
                             headers=hdr)

    def token(self, h, tenant="demo", sub="agent-1", role="agent", **kw):
        """An HS256 token signed with h's jwt_secret (kw: ttl, exp, alg, extra)."""
        secret = kw.pop("secret", h.cfg["auth"]["jwt_secret"])
        t = tokens.mint(secret, sub=sub, tid=tenant, role=role, **kw)
        self.no_leak(t, t.split(".")[-1])
        return t

    def ws(self, h, **kw):
        c = ws.WsClient(h.port, **kw)
        self.addCleanup(c.close_socket)
        return c

    def agent(self, h, tenant="demo", **kw):
        """An authenticated agent websocket of tenant; asserts the hello."""
        c = self.ws(h)
        hello = c.auth(self.token(h, tenant=tenant, **kw))
        self.assertEqual(hello.get("type"), "hello", hello)
        self.assertIsInstance(hello.get("last_event_id"), int, hello)
        return c

    # --- cleanup ---
    def _drop_db(self, server, db):
        if server.running():
            server.drop_db(db)

    def _finish(self):
        problems = []
        for h in self.hubds:
            try:
                rc = h.stop()
                if rc not in (h.expected_rc, None):
                    problems.append("%s exited with %d; log: %s" % (h.name, rc, h.log_path))
            except hubd.HubdError as e:
                h.kill()
                problems.append(str(e))
        for h in self.hubds:
            log = h.log()
            for s in self.leak_checked:
                if s in log:
                    problems.append("%s's output contains a text/token/secret the test sent "
                                    "(%r...): see %s" % (h.name, s[:12], h.log_path))
        if problems:
            self.fail("\n".join(problems))
