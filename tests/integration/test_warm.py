"""tests/integration/test_warm.py - database.warm_up: each pooled connection runs hub_warm()
(0025) once, before it serves, so that the first replies and answers of a fresh hubd do not
wait for PostgreSQL to compile the hub's functions and plan their statements; the warm-up
leaves no row behind, /readyz says "warming" meanwhile, and a warm-up that fails costs
nothing but speed."""
import time

from support import httpc, hubd, util
from support.case import HubTestCase

POOL = 4


class Warm(HubTestCase):
    def snapshot(self):
        """Every table's row count, and the tenants' names."""
        tables = self.psql("SELECT string_agg(format('(SELECT count(*) FROM %I)', tablename), "
                           "' || '','' || ' ORDER BY tablename) FROM pg_tables "
                           "WHERE schemaname = 'public'")
        return self.psql("SELECT " + tables), self.psql("SELECT string_agg(id, ',' ORDER BY id) "
                                                        "FROM tenants")

    def warm_calls(self):
        out = self.psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions "
                        "WHERE funcname = 'hub_warm'")
        return int(out)

    def test_each_connection_warms_once_before_it_serves_and_leaves_nothing(self):
        h = self.start_hubd(overrides={"database.warm_up": False,
                                       "database.pool_size": POOL})
        h.stop()
        self.psql("ALTER DATABASE %s SET track_functions = 'pl'" % self.db)
        before = self.snapshot()
        self.assertEqual(self.warm_calls(), 0)

        h = self.start_hubd(overrides={"database.pool_size": POOL})
        r = httpc.get(h.port, "/readyz")
        self.assertEqual((r.status, r.json()["database"]), (200, "up"))
        self.assertIn("hub_db_pool_warming 0", httpc.get(h.port, "/metrics").text)
        # the statistics reach the view when each backend reports them (within a second)
        util.wait_for(lambda: self.warm_calls() == POOL, 15, "a warm-up on each connection")
        self.assertEqual(self.snapshot(), before, "the warm-up left something behind")
        # and the pool serves as before
        body, wamid, sig = self.text_webhook(h)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertEqual(self.count("messages", "external_id = '%s'" % wamid), 1)
        time.sleep(1.5)
        self.assertEqual(self.warm_calls(), POOL, "a connection warmed twice")

    def test_readyz_says_warming_until_every_connection_is_warm(self):
        self.start_hubd(overrides={"database.warm_up": False}).stop()  # migrated
        self.psql("CREATE OR REPLACE FUNCTION hub_warm() RETURNS void LANGUAGE sql "
                  "AS $$ SELECT pg_sleep(3) $$")
        h = self.start_hubd(wait=False)
        hubd.wait_http(h.port, "/healthz", 200, 30)
        # "down" while it migrates and connects, then "warming" for three seconds
        util.wait_for(lambda: httpc.get(h.port, "/readyz").json()["database"] != "down",
                      30, "the pool connected")
        r = httpc.get(h.port, "/readyz")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json(), {"status": "not_ready", "database": "warming",
                                    "redis": "off"})
        self.assertRegex(httpc.get(h.port, "/metrics").text, r"hub_db_pool_warming [1-9]")
        h.wait_ready(60)
        r = httpc.get(h.port, "/readyz")
        self.assertEqual((r.status, r.json()["database"]), (200, "up"))

    def test_a_failing_warm_up_is_logged_and_the_connection_serves(self):
        self.start_hubd(overrides={"database.warm_up": False}).stop()
        self.psql("CREATE OR REPLACE FUNCTION hub_warm() RETURNS void LANGUAGE plpgsql "
                  "AS $$ BEGIN RAISE EXCEPTION 'cold'; END $$")
        h = self.start_hubd()
        self.assertEqual(httpc.get(h.port, "/readyz").status, 200)
        body, wamid, sig = self.text_webhook(h)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body, sig).status, 200)
        self.assertEqual(self.count("messages", "external_id = '%s'" % wamid), 1)
        self.assertIn("SELECT hub_warm", h.log())
