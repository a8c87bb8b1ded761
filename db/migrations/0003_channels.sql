-- db/migrations/0003_channels.sql - channels provisioned in the database (hubctl channel,
-- later the admin API) beside those of the config file, and live reload on every instance.
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).
-- A channel of the config file keeps its row (hub_upsert_channel at start-up) but its kind,
-- account and secrets come from the file, which wins over the row; its enabled flag is the
-- row's on every instance (hubctl channel disable works on every channel).

ALTER TABLE channels
	ADD COLUMN app_secret text,   -- Meta app secret (X-Hub-Signature-256), Telegram secret_token
	ADD COLUMN verify_token text, -- Meta's GET handshake
	ADD COLUMN access_token text; -- the send API

-- Every change of a channel (or of a tenant's deletion) tells each hubd to re-read the
-- channels: NOTIFY is delivered at COMMIT, so in the same transaction as the change.
-- The payload is empty: listeners re-read everything (there are few channels).
CREATE FUNCTION hub_channels_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('hub_channels', '');
	RETURN NULL;
END;
$$;

CREATE TRIGGER channels_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON channels
	FOR EACH STATEMENT EXECUTE FUNCTION hub_channels_notify();
CREATE TRIGGER tenants_notify AFTER UPDATE OF deleted_at OR DELETE ON tenants
	FOR EACH STATEMENT EXECUTE FUNCTION hub_channels_notify();

-- hubctl channel add: one new channel with its secrets, in one transaction. A missing
-- tenant is created when p_tenant_name is given, else SQLSTATE P0002 'unknown tenant';
-- an id already taken raises 23505 (unique_violation); nothing changes on an error.
CREATE FUNCTION hub_channel_add(p_public_id text, p_tenant text, p_tenant_name text,
				p_kind text, p_account_id text, p_app_secret text,
				p_verify_token text, p_access_token text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_id bigint;
	v_deleted boolean;
BEGIN
	SELECT t.deleted_at IS NOT NULL INTO v_deleted FROM tenants t WHERE t.id = p_tenant;
	IF NOT FOUND THEN
		IF p_tenant_name IS NULL THEN
			RAISE EXCEPTION 'unknown tenant %', p_tenant USING ERRCODE = 'P0002';
		END IF;
		INSERT INTO tenants (id, name) VALUES (p_tenant, p_tenant_name);
	ELSIF v_deleted THEN
		RAISE EXCEPTION 'tenant % is deleted', p_tenant USING ERRCODE = 'P0002';
	END IF;
	INSERT INTO tenant_stream (tenant_id) VALUES (p_tenant) ON CONFLICT DO NOTHING;
	INSERT INTO channels (tenant_id, public_id, kind, account_id, app_secret, verify_token,
			      access_token)
	VALUES (p_tenant, p_public_id, p_kind, p_account_id, p_app_secret, p_verify_token,
		p_access_token)
	RETURNING id INTO v_id;
	RETURN v_id;
END;
$$;

-- hubctl channel enable|disable: true when the channel exists (changed or already so).
CREATE FUNCTION hub_channel_set_enabled(p_public_id text, p_enabled boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE channels SET enabled = p_enabled, updated_at = now()
	WHERE public_id = p_public_id AND enabled IS DISTINCT FROM p_enabled;
	IF FOUND THEN
		RETURN true;
	END IF;
	RETURN EXISTS (SELECT 1 FROM channels WHERE public_id = p_public_id);
END;
$$;
