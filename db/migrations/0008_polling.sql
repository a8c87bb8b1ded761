-- db/migrations/0008_polling.sql - Telegram long polling (daemon/inbound/tgpoll.c) for hubs
-- without a public URL: a channel's mode, and per polled bot the offset (the next
-- update_id to fetch: advancing it acknowledges the updates before it) and a lease, so
-- that one instance at a time polls a bot and another takes over when it dies.
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).

ALTER TABLE channels ADD COLUMN mode text NOT NULL DEFAULT 'webhook'
	CHECK (mode IN ('webhook', 'polling'));

CREATE TABLE telegram_polls (
	channel_id bigint PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
	next_offset bigint NOT NULL DEFAULT 0,
	owner text,                              -- the instance polling it, while leased
	lease_until timestamptz,
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- hubctl channel add (0003) with the channel's mode.
DROP FUNCTION hub_channel_add(text, text, text, text, text, text, text, text);
CREATE FUNCTION hub_channel_add(p_public_id text, p_tenant text, p_tenant_name text,
				p_kind text, p_account_id text, p_app_secret text,
				p_verify_token text, p_access_token text,
				p_mode text DEFAULT 'webhook') RETURNS bigint
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
			      access_token, mode)
	VALUES (p_tenant, p_public_id, p_kind, p_account_id, p_app_secret, p_verify_token,
		p_access_token, p_mode)
	RETURNING id INTO v_id;
	RETURN v_id;
END;
$$;

-- Takes or renews the poll of channel p_channel (public id) for instance p_owner until
-- p_lease_ms from now, when it is free, expired or already p_owner's. Returns the offset
-- to poll from, NULL when another instance holds it (or no such channel).
CREATE FUNCTION hub_tgpoll_lease(p_channel text, p_owner text, p_lease_ms integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_channel bigint;
	v_offset bigint;
BEGIN
	SELECT c.id INTO v_channel FROM channels c WHERE c.public_id = p_channel;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	INSERT INTO telegram_polls (channel_id) VALUES (v_channel) ON CONFLICT DO NOTHING;
	UPDATE telegram_polls t SET owner = p_owner,
		lease_until = now() + make_interval(secs => p_lease_ms / 1000.0), updated_at = now()
	WHERE t.channel_id = v_channel
	      AND (t.owner IS NULL OR t.owner = p_owner OR t.lease_until < now())
	RETURNING t.next_offset INTO v_offset;
	RETURN v_offset;
END;
$$;

-- The updates before p_offset are stored: the poll moves on (never back). False when the
-- poll is no longer p_owner's (its lease ran out and another instance took it).
CREATE FUNCTION hub_tgpoll_advance(p_channel text, p_owner text, p_offset bigint)
RETURNS boolean
LANGUAGE sql AS $$
	WITH moved AS (
		UPDATE telegram_polls t SET next_offset = greatest(t.next_offset, p_offset),
			updated_at = now()
		FROM channels c
		WHERE c.id = t.channel_id AND c.public_id = p_channel AND t.owner = p_owner
		RETURNING 1)
	SELECT EXISTS (SELECT 1 FROM moved)
$$;

-- The instance stops polling the channel (shutdown, the channel disabled or in webhook
-- mode): another may take it at once.
CREATE FUNCTION hub_tgpoll_release(p_channel text, p_owner text) RETURNS void
LANGUAGE sql AS $$
	UPDATE telegram_polls t SET owner = NULL, lease_until = NULL, updated_at = now()
	FROM channels c
	WHERE c.id = t.channel_id AND c.public_id = p_channel AND t.owner = p_owner
$$;
