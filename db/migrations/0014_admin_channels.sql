-- db/migrations/0014_admin_channels.sql - the admin API's channels (admin issue 14, points
-- 1, 3 and 7): a tenant's admin creates, reads, changes, disables, enables and deletes its
-- channels through /api/v1/channels (daemon/admin/channels.c), each change one call of a
-- function below: the change and its audit record (hub_audit, 0013) in one transaction, whose
-- trigger (0003) NOTIFYs hub_channels so that every hubd serves the change at once.
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).
-- Secrets arrive sealed (lib/secret.h, by hubd); what people see of them is secret_hints,
-- their last four characters at most. Every function is scoped to the caller's tenant: a
-- channel of another tenant is answered exactly as one that does not exist.

ALTER TABLE channels
	ADD COLUMN name text NOT NULL DEFAULT '',  -- the admin's label ("Sales WhatsApp")
	ADD COLUMN secret_hints jsonb NOT NULL DEFAULT '{}', -- {"app_secret": "…abcd", ...}
	-- deleted through the API: never served again, its secrets wiped, its history kept
	-- (its conversations name it) until the tenant's data is purged; its id stays taken
	ADD COLUMN deleted_at timestamptz;

-- A channel as the admin API shows it: never a secret, only whether each is set and its
-- hint. p_base is the hub's public URL (media.public_url, '' when unset: then webhook_url
-- is the path alone). source: "config" for a channel of hubd's file (its kind, account and
-- secrets come from the file; only enable/disable apply), else "database".
CREATE FUNCTION hub_admin_channel_json(c channels, p_base text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object(
		'id', c.public_id, 'name', c.name, 'kind', c.kind, 'account_id', c.account_id,
		'mode', c.mode, 'enabled', c.enabled,
		'source', CASE WHEN c.app_secret IS NULL THEN 'config' ELSE 'database' END,
		'webhook_url', coalesce(p_base, '') || '/webhooks/' || c.kind || '/' || c.public_id,
		'secrets', jsonb_build_object(
			'app_secret', jsonb_build_object('set', c.app_secret IS NOT NULL,
							 'hint', c.secret_hints->>'app_secret'),
			'verify_token', jsonb_build_object('set', c.verify_token IS NOT NULL,
							   'hint', c.secret_hints->>'verify_token'),
			'access_token', jsonb_build_object('set', c.access_token IS NOT NULL,
							   'hint', c.secret_hints->>'access_token')),
		'ai', (SELECT hub_channel_ai_json(a) FROM channel_ai a WHERE a.channel_id = c.id),
		'created_at', c.created_at, 'updated_at', c.updated_at)
$$;

-- The live (not deleted) channel p_id of tenant p_tenant, locked for a change; NULL row
-- when there is none.
CREATE FUNCTION hub_admin_channel_lock(p_tenant text, p_id text) RETURNS channels
LANGUAGE sql AS $$
	SELECT c.* FROM channels c
	WHERE c.public_id = p_id AND c.tenant_id = p_tenant AND c.deleted_at IS NULL
	FOR UPDATE
$$;

-- GET /api/v1/channels: the tenant's channels by id.
CREATE FUNCTION hub_admin_channels(p_tenant text, p_base text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT coalesce(jsonb_agg(hub_admin_channel_json(c, p_base) ORDER BY c.public_id), '[]')
	FROM channels c WHERE c.tenant_id = p_tenant AND c.deleted_at IS NULL
$$;

-- GET /api/v1/channels/{id}: the channel, or NULL.
CREATE FUNCTION hub_admin_channel(p_tenant text, p_id text, p_base text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT hub_admin_channel_json(c, p_base) FROM channels c
	WHERE c.public_id = p_id AND c.tenant_id = p_tenant AND c.deleted_at IS NULL
$$;

-- The answer to a body the database refused: {"error": {"code": "invalid", "message",
-- "fields": {p_field: p_why}}}, the shape of the API's field errors.
CREATE FUNCTION hub_admin_invalid(p_field text, p_why text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('error', jsonb_build_object('code', 'invalid',
		'message', 'some fields are not valid: nothing was changed',
		'fields', jsonb_build_object(p_field, p_why)))
$$;

-- POST /api/v1/channels: p_set holds the validated fields (id, name, kind, account_id,
-- mode, and the sealed app_secret, verify_token, access_token) and "hints"; p_ai the
-- assistant's settings (hub_channel_ai_set's form) or NULL; p_fields the names the admin
-- gave, for the audit record. Returns {"channel": ...} or {"error": "id_taken"} (any tenant's
-- channel, deleted ones too) or {"error": "unknown_tenant"}; nothing changes on an error.
CREATE FUNCTION hub_admin_channel_create(p_tenant text, p_actor text, p_role text,
					 p_address text, p_base text, p_set jsonb, p_ai jsonb,
					 p_fields text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	v_id text := p_set->>'id';
	c channels;
BEGIN
	IF EXISTS (SELECT 1 FROM channels x WHERE x.public_id = v_id) THEN
		RETURN jsonb_build_object('error', 'id_taken');
	END IF;
	IF NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = p_tenant AND t.deleted_at IS NULL) THEN
		RETURN jsonb_build_object('error', 'unknown_tenant');
	END IF;
	PERFORM hub_channel_add(v_id, p_tenant, NULL, p_set->>'kind', p_set->>'account_id',
				p_set->>'app_secret', p_set->>'verify_token',
				p_set->>'access_token', coalesce(p_set->>'mode', 'webhook'));
	UPDATE channels x SET name = coalesce(p_set->>'name', ''),
		secret_hints = coalesce(p_set->'hints', '{}')
	WHERE x.public_id = v_id;
	IF p_ai IS NOT NULL THEN
		PERFORM hub_channel_ai_set(v_id, p_ai);
	END IF;
	PERFORM hub_audit(p_tenant, p_actor, p_role, 'channel.create', 'channel:' || v_id,
			  p_address, jsonb_build_object('fields', to_jsonb(p_fields)));
	SELECT x.* INTO c FROM channels x WHERE x.public_id = v_id;
	RETURN jsonb_build_object('channel', hub_admin_channel_json(c, p_base));
EXCEPTION
	-- the assistant's settings the table refuses (0010's checks): nothing is kept
	WHEN check_violation THEN
		RETURN hub_admin_invalid('ai.enabled', 'the assistant needs a base_url and a '
					 'model before it is enabled');
	WHEN invalid_parameter_value THEN
		RETURN hub_admin_invalid('ai.hours', 'unknown time zone');
END;
$$;

-- PATCH /api/v1/channels/{id}: p_set holds the fields to change (name, account_id, mode,
-- sealed secrets, "hints" for the secrets given), p_ai the assistant's settings to change
-- or NULL (they apply to a channel of hubd's file too). Returns {"channel": ...},
-- {"error": "managed_by_config"} (a channel of hubd's file: its other fields are the
-- file's), a field error of the assistant's settings, or NULL for no such channel.
CREATE FUNCTION hub_admin_channel_update(p_tenant text, p_actor text, p_role text,
					 p_address text, p_base text, p_id text, p_set jsonb,
					 p_ai jsonb, p_fields text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	c channels := hub_admin_channel_lock(p_tenant, p_id);
BEGIN
	IF c.id IS NULL THEN
		RETURN NULL;
	END IF;
	IF c.app_secret IS NULL AND p_set <> '{}' THEN
		RETURN jsonb_build_object('error', 'managed_by_config');
	END IF;
	IF p_set ? 'name' THEN c.name := p_set->>'name'; END IF;
	IF p_set ? 'account_id' THEN c.account_id := p_set->>'account_id'; END IF;
	IF p_set ? 'mode' THEN c.mode := p_set->>'mode'; END IF;
	IF p_set ? 'app_secret' THEN c.app_secret := p_set->>'app_secret'; END IF;
	IF p_set ? 'verify_token' THEN c.verify_token := p_set->>'verify_token'; END IF;
	IF p_set ? 'access_token' THEN c.access_token := p_set->>'access_token'; END IF;
	IF p_set ? 'hints' THEN c.secret_hints := c.secret_hints || (p_set->'hints'); END IF;
	IF p_set <> '{}' THEN
		UPDATE channels x SET name = c.name, account_id = c.account_id, mode = c.mode,
			app_secret = c.app_secret, verify_token = c.verify_token,
			access_token = c.access_token, secret_hints = c.secret_hints,
			updated_at = now()
		WHERE x.id = c.id;
	END IF;
	IF p_ai IS NOT NULL THEN
		PERFORM hub_channel_ai_set(p_id, p_ai);
	END IF;
	PERFORM hub_audit(p_tenant, p_actor, p_role, 'channel.update', 'channel:' || p_id,
			  p_address, jsonb_build_object('fields', to_jsonb(p_fields)));
	SELECT x.* INTO c FROM channels x WHERE x.id = c.id;
	RETURN jsonb_build_object('channel', hub_admin_channel_json(c, p_base));
EXCEPTION
	-- the assistant's settings the table refuses (0010's checks): nothing is kept
	WHEN check_violation THEN
		RETURN hub_admin_invalid('ai.enabled', 'the assistant needs a base_url and a '
					 'model before it is enabled');
	WHEN invalid_parameter_value THEN
		RETURN hub_admin_invalid('ai.hours', 'unknown time zone');
END;
$$;

-- POST /api/v1/channels/{id}/enable|disable: the channel as it is now, or NULL.
CREATE FUNCTION hub_admin_channel_set_enabled(p_tenant text, p_actor text, p_role text,
					      p_address text, p_base text, p_id text,
					      p_enabled boolean) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	c channels := hub_admin_channel_lock(p_tenant, p_id);
BEGIN
	IF c.id IS NULL THEN
		RETURN NULL;
	END IF;
	IF c.enabled IS DISTINCT FROM p_enabled THEN
		UPDATE channels x SET enabled = p_enabled, updated_at = now() WHERE x.id = c.id;
	END IF;
	PERFORM hub_audit(p_tenant, p_actor, p_role,
			  CASE WHEN p_enabled THEN 'channel.enable' ELSE 'channel.disable' END,
			  'channel:' || p_id, p_address, jsonb_build_object('changed',
			  c.enabled IS DISTINCT FROM p_enabled));
	SELECT x.* INTO c FROM channels x WHERE x.id = c.id;
	RETURN hub_admin_channel_json(c, p_base);
END;
$$;

-- DELETE /api/v1/channels/{id}: the channel stops at once (disabled, marked deleted), its
-- secrets and its assistant's API key are wiped; its conversations and messages stay (the
-- tenant's erasure and purge remove them). 'deleted', 'managed_by_config' (remove it from
-- hubd's file instead) or NULL for no such channel.
CREATE FUNCTION hub_admin_channel_delete(p_tenant text, p_actor text, p_role text,
					 p_address text, p_id text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	c channels := hub_admin_channel_lock(p_tenant, p_id);
BEGIN
	IF c.id IS NULL THEN
		RETURN NULL;
	END IF;
	IF c.app_secret IS NULL THEN
		RETURN 'managed_by_config';
	END IF;
	UPDATE channels x SET enabled = false, deleted_at = now(), app_secret = NULL,
		verify_token = NULL, access_token = NULL, secret_hints = '{}', updated_at = now()
	WHERE x.id = c.id;
	UPDATE channel_ai a SET enabled = false, api_key = NULL, api_key_hint = NULL,
		updated_at = now()
	WHERE a.channel_id = c.id;
	PERFORM hub_audit(p_tenant, p_actor, p_role, 'channel.delete', 'channel:' || p_id,
			  p_address, '{}');
	RETURN 'deleted';
END;
$$;

-- POST /api/v1/channels/{id}/check: records that an admin tried a channel's credentials and
-- the verdict's code (never the platform's words, which may quote what was sent).
CREATE FUNCTION hub_admin_channel_checked(p_tenant text, p_actor text, p_role text,
					  p_address text, p_id text, p_result text) RETURNS void
LANGUAGE sql AS $$
	SELECT hub_audit(p_tenant, p_actor, p_role, 'channel.check', 'channel:' || p_id,
			 p_address, jsonb_build_object('result', p_result))
$$;

-- GET /api/v1/audit?limit=&before=: the tenant's records newest first, and the before= of
-- the next (older) page, NULL at the end.
CREATE FUNCTION hub_admin_audit(p_tenant text, p_limit integer, p_before bigint,
				OUT items jsonb, OUT next_before bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_ids bigint[];
BEGIN
	SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'at', a.at, 'actor', a.actor,
			'role', a.role, 'action', a.action, 'target', a.target,
			'address', a.address, 'detail', a.detail) ORDER BY a.id DESC), '[]'),
	       array_agg(a.id ORDER BY a.id DESC)
	INTO items, v_ids
	FROM (SELECT * FROM audit_log x
	      WHERE x.tenant_id = p_tenant AND (p_before IS NULL OR x.id < p_before)
	      ORDER BY x.id DESC LIMIT p_limit + 1) a;
	IF cardinality(v_ids) > p_limit THEN
		items := items - p_limit;
		next_before := v_ids[p_limit];
	END IF;
END;
$$;

-- hubctl's changes of a channel (channel add, enable, disable, ai) are audited too, in their
-- transaction: actor "hubctl", role operator, no address. p_detail as the API's. true when
-- the channel exists (a record was written).
CREATE FUNCTION hub_ctl_audit(p_public_id text, p_action text, p_detail jsonb)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	v_tenant text;
BEGIN
	SELECT c.tenant_id INTO v_tenant FROM channels c WHERE c.public_id = p_public_id;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM hub_audit(v_tenant, 'hubctl', 'operator', p_action, 'channel:' || p_public_id,
			  '', p_detail);
	RETURN true;
END;
$$;
