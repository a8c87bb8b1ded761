"""tests/integration/test_schema.py - the schema can be distributed by tenant_id (Citus):
`hubctl check-schema` finds nothing on the migrated database and names each kind of
problem on tables made to break the rule; the composite foreign keys refuse a row whose
tenant differs from its parent's; 0021 fills tenant_id on rows stored before it; every
statement of the hub's SQL functions names the tenant of each tenant table it reads or
writes, but for the few that pick work across tenants, named below.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import util  # noqa: E402
from support.case import HubTestCase  # noqa: E402
from support.pg import PgError  # noqa: E402

MIGRATIONS = os.path.join(util.ROOT, "db", "migrations")
REFERENCE = ("tenants", "channels", "channel_ai")

# The statements that read every tenant's rows on purpose, by function: each is a queue's
# "when is the next one due" or a retention sweep by age (README, Distributing by tenant
# with Citus: what would change). Their claims pick due rows of any tenant and hand each
# row's tenant to the steps that follow, which name it.
ACROSS_TENANTS = {
    "hub_ai_next": "when the assistant's next job is due",
    "hub_profile_next": "when the next profile lookup is due",
    "hub_outbox_next": "when the next reply is due",
    "hub_privacy_prune": "ingest keys and statuses older than their retention",
}


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


def statements_without_tenant(functions, tables):
    """(function, table, alias) of each statement of the PL/pgSQL and SQL function bodies
    that reads or writes one of tables without naming its tenant_id: a read or change
    needs alias.tenant_id somewhere in its statement (the table's name when it has no
    alias), an INSERT the tenant_id column. A check of the text, not of the plan: it
    catches the statement that forgot the tenant, not a wrong tenant (the foreign keys
    catch that)."""
    found = []
    keywords = {"where", "on", "set", "using", "join", "left", "inner", "order", "group",
                "limit", "returning", "values", "select", "as", "for", "union", "and", "or",
                "not", "lateral", "window", "cross", "natural", "full", "right", "having"}
    ref = re.compile(r"\b(from|join|update|into|delete\s+from)\s+(%s)\b(?:\s+(?:as\s+)?(\w+))?"
                     % "|".join(tables), re.I)
    for name, src in functions:
        src = re.sub(r"--[^\n]*", " ", src)
        src = re.sub(r"'(?:[^']|'')*'", "''", src)
        for stmt in src.split(";"):
            for m in ref.finditer(stmt):
                kind, table, alias = m.group(1).lower(), m.group(2), m.group(3)
                if alias and alias.lower() in keywords:
                    alias = None
                if kind == "into":
                    ok = re.search(r"\btenant_id\b", stmt[m.end():m.end() + 400], re.I)
                else:
                    ok = re.search(r"\b%s\.tenant_id\b" % re.escape(alias or table), stmt,
                                   re.I) or (not alias and re.search(
                                       r"(?<!\.)\btenant_id\s*(=|in\b)", stmt, re.I))
                if not ok:
                    found.append((name, table, alias))
    return found


class Statements(HubTestCase):
    needs_hubd = False
    needs_hubctl = True

    def test_every_statement_names_its_tenant(self):
        path = self.write_config(self.config())
        r = self.hubctl("-c", path, "migrate")
        self.assertEqual(r.returncode, 0, r.stderr)
        tables = [t for t in self.psql("""
            SELECT string_agg(c.relname, ' ') FROM pg_class c
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
                  AND c.relname <> 'schema_migrations'""").split() if t not in REFERENCE]
        self.assertIn("messages", tables)
        rows = self.psql("SELECT proname || chr(1) || prosrc FROM pg_proc "
                         "WHERE pronamespace = 'public'::regnamespace "
                         "AND prolang IN (SELECT oid FROM pg_language "
                         "WHERE lanname IN ('sql', 'plpgsql')) ORDER BY 1")
        # psql -At prints one row a line: a body's own newlines start lines without the
        # separator, which belong to the row before
        functions = []
        for line in rows.split("\n"):
            if "\x01" in line and re.match(r"^hub_\w+\x01", line):
                functions.append(line.split("\x01", 1))
            elif functions:
                functions[-1][1] += "\n" + line
        self.assertGreater(len(functions), 100)
        missing = [f for f in statements_without_tenant(functions, tables)
                   if f[0] not in ACROSS_TENANTS]
        self.assertEqual(missing, [])
        # the check finds what it is for
        self.assertEqual(statements_without_tenant(
            [("f", "SELECT m.id FROM messages m WHERE m.id = 1; "
                   "INSERT INTO outbox (message_id) VALUES (1)")], tables),
            [("f", "messages", "m"), ("f", "outbox", None)])


class GenericPlans(HubTestCase):
    """0026 and later migrations give the hot functions generic plans; a later CREATE OR
    REPLACE of one drops that silently, and this names it."""
    needs_hubd = False
    needs_hubctl = True

    def test_the_hot_functions_keep_their_generic_plans(self):
        wanted = []
        for name in sorted(os.listdir(MIGRATIONS)):
            with open(os.path.join(MIGRATIONS, name)) as f:
                wanted += re.findall(r"^ALTER FUNCTION (hub_\w+)\(([^)]*)\)\s+SET "
                                     r"plan_cache_mode = force_generic_plan;", f.read(), re.M)
        self.assertGreaterEqual(len(set(wanted)), 6)
        path = self.write_config(self.config())
        r = self.hubctl("-c", path, "migrate")
        self.assertEqual(r.returncode, 0, r.stderr)
        for name, args in wanted:
            config = self.psql("SELECT coalesce(array_to_string(proconfig, ','), '') FROM "
                               "pg_proc WHERE oid = '%s(%s)'::regprocedure" % (name, args))
            self.assertEqual(config, "plan_cache_mode=force_generic_plan", name)


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
