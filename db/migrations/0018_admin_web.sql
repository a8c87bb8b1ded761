-- db/migrations/0018_admin_web.sql - web channels (the website chat, 0017) through the admin
-- API (0014): a channel's resource shows its widget settings ("web"; a web channel has no
-- webhook URL), and create and PATCH store the "web" object the API checked
-- (lib/webcfg.h). Applied once by hub_store_migrate() inside one transaction (no
-- BEGIN/COMMIT here). The three functions are 0014's with the web column added.

CREATE OR REPLACE FUNCTION hub_admin_channel_json(c channels, p_base text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object(
		'id', c.public_id, 'name', c.name, 'kind', c.kind, 'account_id', c.account_id,
		'mode', c.mode, 'enabled', c.enabled,
		'source', CASE WHEN c.app_secret IS NULL THEN 'config' ELSE 'database' END,
		'webhook_url', CASE WHEN c.kind <> 'web' THEN
			coalesce(p_base, '') || '/webhooks/' || c.kind || '/' || c.public_id END,
		'web', c.web,
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

CREATE OR REPLACE FUNCTION hub_admin_channel_create(p_tenant text, p_actor text, p_role text,
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
		secret_hints = coalesce(p_set->'hints', '{}'), web = p_set->'web'
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

CREATE OR REPLACE FUNCTION hub_admin_channel_update(p_tenant text, p_actor text, p_role text,
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
	IF p_set ? 'web' THEN c.web := p_set->'web'; END IF;
	IF p_set <> '{}' THEN
		UPDATE channels x SET name = c.name, account_id = c.account_id, mode = c.mode,
			app_secret = c.app_secret, verify_token = c.verify_token,
			access_token = c.access_token, secret_hints = c.secret_hints,
			web = c.web, updated_at = now()
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
