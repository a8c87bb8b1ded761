-- 0033: an answer's start is one round trip, and it asks the database when the next job is
-- due once, not three times.
--
-- hubd asked hub_ai_next() after each customer message's NOTIFY (the answer is due after
-- the quiet period), after each claim (the jobs it left may be due later) and after each
-- answer (its job may be due again), and read each claimed job's context in a query of its
-- own: five round trips an answer besides the webhook's and the answer's own, each waking a
-- backend and then hubd, where a woken process often waits for a CPU (bench/ai). Now:
-- - hub_ai_take claims as hub_ai_claim does, returns each claimed job with its context
--   (hub_ai_context, read after the claim so that it sees the job's token) and adds one
--   row without a conversation whose next_ms says when the next job it left is due
--   (hub_ai_next, read after the claim);
-- - a job whose lease is given back (hub_ai_finish keeps it for a message that came while
--   the provider answered, or retries it) NOTIFYs hub_ai (ai_jobs_released), so an
--   answer's end needs no question: a job is due again only then or when its lease runs
--   out (which the last hub_ai_next accounted for).
-- hub_ai_claim stays as it was, for a hubd of before this migration during an upgrade.

CREATE FUNCTION hub_ai_take(p_limit integer, p_lease_ms integer)
RETURNS TABLE (conversation_id bigint, token bigint, attempts integer, tenant_id text,
	       context jsonb, next_ms bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_conv bigint[];
	v_token bigint[];
	v_attempts integer[];
	v_tenant text[];
BEGIN
	SELECT array_agg(c.conversation_id), array_agg(c.token), array_agg(c.attempts),
	       array_agg(c.tenant_id)
	INTO v_conv, v_token, v_attempts, v_tenant
	FROM hub_ai_claim(p_limit, p_lease_ms) c;
	RETURN QUERY
	SELECT u.conv, u.token, u.attempts, u.tenant, hub_ai_context(u.tenant, u.conv, u.token),
	       NULL::bigint
	FROM unnest(v_conv, v_token, v_attempts, v_tenant) AS u(conv, token, attempts, tenant);
	RETURN QUERY
	SELECT NULL::bigint, NULL::bigint, NULL::integer, NULL::text, NULL::jsonb,
	       ceil(extract(epoch FROM hub_ai_next() - clock_timestamp()) * 1000)::bigint;
END;
$$;

ALTER FUNCTION hub_ai_take(integer, integer) SET plan_cache_mode = force_generic_plan;

-- A job whose lease its holder gave back (hub_ai_finish: kept for a newer message, or a
-- retry) is due again: the instances hear of it as of a new one
CREATE FUNCTION hub_ai_job_released() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('hub_ai', '');
	RETURN NULL;
END;
$$;

CREATE TRIGGER ai_jobs_released AFTER UPDATE OF token ON ai_jobs FOR EACH ROW
	WHEN (OLD.token IS NOT NULL AND NEW.token IS NULL)
	EXECUTE FUNCTION hub_ai_job_released();

-- 0025's, but for the claim hubd now runs
CREATE OR REPLACE FUNCTION hub_warm() RETURNS void
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
	PERFORM hub_ai_take(0, 1000);
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
