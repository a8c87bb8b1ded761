-- db/migrations/0011_revocation.sql - revoked access tokens (security issue 10, finding 3).
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).
-- A tenant's or a user's "not before": a token of theirs whose iat is earlier (or that has
-- no iat) is refused for new websockets and REST requests, and every hubd closes the open
-- sockets holding one. Set by hubctl revoke (later the admin API); never moved back.

CREATE TABLE token_revocations (
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	user_id text NOT NULL DEFAULT '',  -- '': every user of the tenant
	not_before timestamptz NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, user_id)
);

-- Every change tells each hubd to re-read the table (delivered at COMMIT); the payload is
-- empty: listeners re-read everything, as for hub_channels.
CREATE FUNCTION hub_revocations_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('hub_revocations', '');
	RETURN NULL;
END;
$$;

CREATE TRIGGER token_revocations_notify
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON token_revocations
	FOR EACH STATEMENT EXECUTE FUNCTION hub_revocations_notify();

-- hubctl revoke: the tokens of p_tenant (of p_user in it; NULL: every user) issued before
-- the next whole second are revoked, so also one issued in this very second (iat has whole
-- seconds); tokens issued from then on are accepted. Returns the not-before in effect (a
-- later one already set stays). An unknown or deleted tenant raises P0002 and changes
-- nothing.
CREATE FUNCTION hub_revoke_tokens(p_tenant text, p_user text) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
	v_not_before timestamptz := to_timestamp(ceil(extract(epoch FROM clock_timestamp())));
	v_out timestamptz;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = p_tenant AND t.deleted_at IS NULL)
	THEN
		RAISE EXCEPTION 'unknown tenant "%"', p_tenant USING ERRCODE = 'P0002';
	END IF;
	INSERT INTO token_revocations AS r (tenant_id, user_id, not_before)
	VALUES (p_tenant, coalesce(p_user, ''), v_not_before)
	ON CONFLICT (tenant_id, user_id) DO UPDATE
		SET not_before = greatest(r.not_before, excluded.not_before), updated_at = now()
	RETURNING r.not_before INTO v_out;
	RETURN v_out;
END;
$$;
