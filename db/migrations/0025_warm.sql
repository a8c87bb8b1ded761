-- hub_warm(): what each of hubd's pooled connections runs once, right after it connects and
-- before it serves (daemon/data/store.c, database.warm_up): the hot paths of the hub on a
-- scratch tenant, then rolled back. A new backend compiles each PL/pgSQL function on its
-- first call, plans each statement (and each foreign key's check) the first time it runs
-- and fills its catalog caches as it goes: 20-55 ms for the first reply or answer a fresh
-- connection handles, which a webhook or an agent would otherwise wait out.
--
-- Everything it writes is undone (the block ends with its own error, caught below); NOTIFY
-- is transactional, so no listener hears of it. What stays: the session's caches, and the
-- sequence values it drew (ids are never dense anyway). Nothing is locked for others: the
-- scratch tenant is this backend's own, and the cross-tenant claims run with a limit of 0,
-- which plans their statements and touches no row.
CREATE FUNCTION hub_warm() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	t text := 'hub-warm-' || pg_backend_pid();
	v_ch bigint;
	v_conv bigint;
	v_job ai_jobs;
	v_sent jsonb;
BEGIN
	INSERT INTO tenants (id, name) VALUES (t, t);
	INSERT INTO tenant_stream (tenant_id) VALUES (t);
	INSERT INTO channels (tenant_id, public_id, kind, account_id)
	VALUES (t, t, 'whatsapp', t) RETURNING id INTO v_ch;
	INSERT INTO channel_ai (channel_id, tenant_id, enabled, base_url, model, quiet_ms)
	VALUES (v_ch, t, true, 'http://127.0.0.1/', 'warm', 0);

	-- Webhooks: two senders' messages in one batch, a retry of one, a status.
	PERFORM hub_ingest_batch(jsonb_build_array(
		jsonb_build_object('kind', 'message', 'channel', t, 'external_id', 'w1',
				   'sender', '70000000001', 'phone', '+70000000001', 'name', 'W',
				   'type', 'text', 'text', 'w', 'ts', 0),
		jsonb_build_object('kind', 'message', 'channel', t, 'external_id', 'w2',
				   'sender', '70000000002', 'phone', '+70000000002', 'name', 'W',
				   'type', 'text', 'text', 'w', 'ts', 0),
		jsonb_build_object('kind', 'message', 'channel', t, 'external_id', 'w1',
				   'sender', '70000000001', 'type', 'text', 'text', 'w', 'ts', 0),
		jsonb_build_object('kind', 'status', 'channel', t, 'external_id', 'w0',
				   'status', 'read', 'ts', 0)));

	-- The assistant: its claim, the context it reads, the answer it stores.
	PERFORM hub_ai_claim(0, 1000);
	UPDATE ai_jobs j SET token = nextval('ai_job_tokens'),
		lease_until = now() + interval '1 minute'
	WHERE j.tenant_id = t AND j.conversation_id = (SELECT min(k.conversation_id) FROM ai_jobs k
						      WHERE k.tenant_id = t)
	RETURNING j.* INTO v_job;
	IF v_job.conversation_id IS NULL THEN
		RAISE EXCEPTION 'hub_warm: no assistant job';
	END IF;
	v_conv := v_job.conversation_id;
	PERFORM hub_ai_context(t, v_conv, v_job.token);
	PERFORM hub_ai_finish(t, v_conv, v_job.token, v_job.upto_message_id, 'answered', NULL,
			      'w', 'en', 0, '{}'::jsonb);

	-- An agent's reply, its events numbered, the sender's claim and its record.
	PERFORM hub_cmd(t, 'hub-warm', true, v_conv, 'send', 'w', 'w', NULL);
	PERFORM hub_stream_flush(t, 1000);
	PERFORM hub_outbox_claim(0, 1000);
	WITH s AS (UPDATE outbox o SET status = 'sending',
			  lease_until = now() + interval '1 minute'
		   WHERE o.tenant_id = t AND o.status = 'pending' RETURNING o.id)
	SELECT jsonb_agg(jsonb_build_object('id', s.id, 'tenant', t, 'sent', 'w-out' || s.id))
	INTO v_sent FROM s;
	PERFORM hub_outbox_record(v_sent);
	PERFORM hub_ingest_batch(jsonb_build_array(
		jsonb_build_object('kind', 'status', 'channel', t,
				   'external_id', v_sent->0->>'sent', 'status', 'delivered',
				   'ts', 0)));
	PERFORM hub_stream_flush(t, 1000);

	-- The inbox's pages.
	PERFORM hub_api_conversations(t, 50, NULL, NULL);
	PERFORM hub_api_messages(t, v_conv, 50, NULL);

	RAISE EXCEPTION USING ERRCODE = 'HUBWM', MESSAGE = 'hub_warm: undone';
EXCEPTION WHEN SQLSTATE 'HUBWM' THEN
	NULL;
END;
$$;
