"""tests/integration/test_schema.py - the schema can be distributed by tenant_id (Citus):
`hubctl check-schema` finds nothing on the migrated database and names each kind of
problem on tables made to break the rule; the composite foreign keys refuse a row whose
tenant differs from its parent's; 0021 fills tenant_id on rows stored before it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import util  # noqa: E402
from support.case import HubTestCase  # noqa: E402
from support.pg import PgError  # noqa: E402

MIGRATIONS = os.path.join(util.ROOT, "db", "migrations")
REFERENCE = ("tenants", "channels", "channel_ai")


class CheckSchema(HubTestCase):
    needs_hubd = False
    needs_hubctl = True

    def migrate(self):
        self.path = self.write_config(self.config())
        r = self.hubctl("-c", self.path, "migrate")
        self.assertEqual(r.returncode, 0, r.stderr)

    def check(self):
        return self.hubctl("-c", self.path, "check-schema")

    def catalog(self):
        """Every constraint and index of the schema, to show that a check changed none."""
        return self.psql("SELECT string_agg(x, ',' ORDER BY x) FROM ("
                         " SELECT conname::text AS x FROM pg_constraint"
                         " WHERE connamespace = 'public'::regnamespace UNION ALL"
                         " SELECT indexrelid::regclass::text FROM pg_index i"
                         " JOIN pg_class c ON c.oid = i.indrelid"
                         " WHERE c.relnamespace = 'public'::regnamespace) y")

    def test_the_migrated_schema_is_ready(self):
        self.migrate()
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "schema ready to be distributed by tenant_id")
        # what the check relies on, read here without it: every table but the reference
        # ones has a NOT NULL tenant_id in its primary key
        rows = self.psql("""
            SELECT c.relname, a.attnotnull,
                   a.attnum = ANY (i.indkey::int2[])
            FROM pg_class c
            LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
            LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
                  AND c.relname <> 'schema_migrations'
            ORDER BY 1""").splitlines()
        self.assertGreaterEqual(len(rows), 20)
        for row in rows:
            name, notnull, in_pk = row.split("|")
            if name in REFERENCE:
                continue
            self.assertEqual((notnull, in_pk), ("t", "t"), name)

    def test_each_broken_rule_is_named_and_nothing_changes(self):
        self.migrate()
        self.psql("""
            CREATE TABLE notes_no_tenant (id bigint PRIMARY KEY, body text);
            CREATE TABLE notes_id_key (id bigint PRIMARY KEY, tenant_id text NOT NULL);
            CREATE TABLE notes_unique (id bigint, tenant_id text NOT NULL, code text UNIQUE,
                                       PRIMARY KEY (id, tenant_id));
            CREATE TABLE notes_fk (id bigint, tenant_id text NOT NULL, contact_id bigint,
                                   other_tenant text,
                                   PRIMARY KEY (id, tenant_id),
                                   FOREIGN KEY (contact_id, other_tenant)
                                       REFERENCES contacts (id, tenant_id));
            ALTER TABLE channels ADD COLUMN pinned_contact bigint, ADD COLUMN pinned_tenant text,
                ADD CONSTRAINT channels_pinned FOREIGN KEY (pinned_contact, pinned_tenant)
                    REFERENCES contacts (id, tenant_id);
            """)
        before = self.catalog()
        r = self.check()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.strip().splitlines()
        self.assertEqual(lines[-1], "hubctl: check-schema: 5 problems: not ready to be "
                         "distributed by tenant_id")
        want = [
            "channels: reference table has foreign key channels_pinned to the distributed "
            "table contacts",
            "notes_fk: foreign key notes_fk_contact_id_other_tenant_fkey to contacts does "
            "not match tenant_id to tenant_id",
            "notes_id_key: primary key notes_id_key_pkey does not include tenant_id",
            "notes_no_tenant: has no NOT NULL tenant_id column",
            "notes_unique: unique index notes_unique_code_key does not include tenant_id",
        ]
        for w in want:
            self.assertIn("hubctl: check-schema: " + w, lines)
        # a table without tenant_id cannot have it in a key: one line, not two
        self.assertEqual(sum("notes_no_tenant" in x for x in lines), 1)
        self.assertEqual(self.catalog(), before)

    def test_no_database_is_a_clear_error(self):
        self.path = self.write_config(self.config(
            db_url="postgresql://nobody@127.0.0.1:1/none"))
        r = self.check()
        self.assertEqual(r.returncode, 1)
        self.assertIn("hubctl: check-schema: database:", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_a_row_of_another_tenant_than_its_parent_is_refused(self):
        self.migrate()
        self.psql("""
            SELECT hub_upsert_channel('t1', 'One', 'one-wa', 'whatsapp', '100');
            SELECT hub_upsert_channel('t2', 'Two', 'two-wa', 'whatsapp', '200');
            INSERT INTO contacts (id, tenant_id, display_name) VALUES (1, 't1', 'Aigerim');
            """)
        before = self.counts()
        cases = {
            "an identity of another tenant's contact":
                "INSERT INTO contact_identities (contact_id, tenant_id, channel_id, "
                "external_id) SELECT 1, 't2', id, '77010000001' FROM channels "
                "WHERE public_id = 'two-wa'",
            "an identity on another tenant's channel":
                "INSERT INTO contact_identities (contact_id, tenant_id, channel_id, "
                "external_id) SELECT 1, 't1', id, '77010000001' FROM channels "
                "WHERE public_id = 'two-wa'",
            "a conversation of another tenant's contact":
                "INSERT INTO conversations (tenant_id, contact_id, channel_id) "
                "SELECT 't2', 1, id FROM channels WHERE public_id = 'two-wa'",
        }
        for what, sql in cases.items():
            with self.subTest(what):
                with self.assertRaises(PgError) as cm:
                    self.psql(sql)
                self.assertIn("violates foreign key constraint", str(cm.exception))
        self.assertEqual(self.counts(), before)


class Backfill(HubTestCase):
    """0021 on a database that already holds rows: each gets its parent's tenant."""
    needs_hubd = False
    needs_hubctl = True

    def test_rows_stored_before_0021_get_their_tenant(self):
        self.psql("CREATE TABLE schema_migrations (version text PRIMARY KEY, "
                  "applied_at timestamptz NOT NULL DEFAULT now())")
        for name in sorted(os.listdir(MIGRATIONS)):
            if name >= "0021":
                break
            with open(os.path.join(MIGRATIONS, name), encoding="utf-8") as f:
                self.psql(f.read() + "; INSERT INTO schema_migrations (version) VALUES ('%s')"
                          % name[:-4])
        self.psql("""
            SELECT hub_upsert_channel('t1', 'One', 'one-ig', 'instagram', '100');
            SELECT hub_upsert_channel('t2', 'Two', 'two-tg', 'telegram', '200');
            INSERT INTO contacts (id, tenant_id, display_name) VALUES (1, 't1', 'Aigerim');
            INSERT INTO contact_identities (id, contact_id, channel_id, external_id)
                SELECT 1, 1, id, 'igsid-1' FROM channels WHERE public_id = 'one-ig';
            INSERT INTO conversations (id, tenant_id, contact_id, channel_id)
                SELECT 1, 't1', 1, id FROM channels WHERE public_id = 'one-ig';
            INSERT INTO messages (id, tenant_id, conversation_id, channel_id, external_id,
                                  direction, author, type, text, status)
                SELECT 1, 't1', 1, id, 'mid-1', 'in', 'contact', 'text', 'x', 'received'
                FROM channels WHERE public_id = 'one-ig';
            INSERT INTO message_edits (message_id, edit_key, text) VALUES (1, 'e', 'y');
            INSERT INTO message_reactions (message_id, reactor_external_id, author)
                VALUES (1, 'igsid-1', 'contact');
            INSERT INTO message_statuses (channel_id, external_id, status)
                SELECT id, 'mid-9', 'read' FROM channels WHERE public_id = 'one-ig';
            INSERT INTO ingest_keys (channel_id, kind, key)
                SELECT id, 'update', '7' FROM channels WHERE public_id = 'two-tg';
            INSERT INTO telegram_polls (channel_id)
                SELECT id FROM channels WHERE public_id = 'two-tg';
            INSERT INTO channel_ai (channel_id)
                SELECT id FROM channels WHERE public_id = 'two-tg';
            """)
        path = self.write_config(self.config())
        r = self.hubctl("-c", path, "migrate")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = {}
        for table in ("contact_identities", "profile_requests", "message_edits",
                      "message_reactions", "message_statuses", "ingest_keys",
                      "telegram_polls", "channel_ai"):
            got[table] = self.psql("SELECT string_agg(tenant_id, ',') FROM " + table)
        self.assertEqual(got, {
            "contact_identities": "t1", "profile_requests": "t1", "message_edits": "t1",
            "message_reactions": "t1", "message_statuses": "t1", "ingest_keys": "t2",
            "telegram_polls": "t2", "channel_ai": "t2"})
        r = self.hubctl("-c", path, "check-schema")
        self.assertEqual(r.returncode, 0, r.stderr)
