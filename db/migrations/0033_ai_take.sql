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
-- - hub_ai_finish NOTIFYs hub_ai when it keeps the job for a message that came while the
--   provider answered (the job is due again), so an answer's end needs no question: a job
--   is due again only then, after a retry (hubd knows) or when its lease runs out (which
--   the last hub_ai_next accounted for).
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

-- 0031's, but for the NOTIFY when the job is kept
CREATE OR REPLACE FUNCTION hub_ai_finish(p_tenant text, p_conv bigint, p_token bigint, p_upto bigint,
			      p_outcome text, p_reason text, p_text text,
			      p_disclosed_lang text, p_delay_ms integer, p_x jsonb)
RETURNS TABLE (tenant text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_started timestamptz := clock_timestamp();
	r record;
	v conversations;
	a channel_ai;
	v_ch text;
	v_msg_id bigint;
	v_msg jsonb;
	v_conv jsonb;
	v_types text[];
	v_datas jsonb[];
BEGIN
	-- the conversation, locked first as everywhere, with its channel and its settings
	SELECT x AS v, s AS a, c.public_id AS ch INTO r
	FROM conversations x JOIN channels c ON c.id = x.channel_id
	     LEFT JOIN channel_ai s ON s.channel_id = x.channel_id
	WHERE x.id = p_conv AND x.tenant_id = p_tenant FOR UPDATE OF x;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	v := r.v;
	a := r.a;
	v_ch := r.ch;
	-- the claim, if it is still the caller's: done, kept for a newer message, or retried
	IF p_outcome = 'retry' THEN
		UPDATE ai_jobs j SET lease_until = NULL, token = NULL, attempts = j.attempts + 1,
			due_at = greatest(j.due_at, now() + make_interval(secs => p_delay_ms / 1000.0))
		WHERE j.conversation_id = p_conv AND j.tenant_id = v.tenant_id AND j.token = p_token;
	ELSE
		DELETE FROM ai_jobs j
		WHERE j.conversation_id = p_conv AND j.tenant_id = v.tenant_id AND j.token = p_token
		      AND (j.upto_message_id <= p_upto OR p_outcome = 'handoff');
		IF NOT FOUND THEN
			UPDATE ai_jobs j SET lease_until = NULL, token = NULL, attempts = 0
			WHERE j.conversation_id = p_conv AND j.tenant_id = v.tenant_id
			      AND j.token = p_token;
			IF FOUND THEN
				PERFORM pg_notify('hub_ai', ''); -- kept: due again at its due_at
			END IF;
		END IF;
	END IF;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	IF p_outcome IN ('answered', 'handoff') AND NOT hub_ai_answers(v, a) THEN
		p_outcome := 'dropped';
	END IF;
	IF p_outcome IN ('answered', 'handoff') AND p_text IS NOT NULL THEN
		-- the message, its outbox row, the contact's disclosure (when it went with this
		-- one) and the conversation, in one statement
		WITH m AS (
			INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, direction,
						   author, type, text, status)
			VALUES (v.tenant_id, v.id, v.channel_id, 'out', 'ai', 'text', p_text, 'queued')
			RETURNING m.id, hub_message_obj(m, v.contact_id, v_ch, '[]'::jsonb) AS obj),
		o AS (
			INSERT INTO outbox (tenant_id, message_id, channel_id, conversation_id)
			SELECT v.tenant_id, m.id, v.channel_id, v.id FROM m),
		d AS (
			INSERT INTO ai_disclosures (contact_id, tenant_id, message_id, lang)
			SELECT v.contact_id, v.tenant_id, m.id, p_disclosed_lang FROM m
			WHERE p_disclosed_lang IS NOT NULL
			ON CONFLICT (contact_id, tenant_id) DO NOTHING),
		u AS (
			UPDATE conversations x
			SET last_message_at = now(),
			    mode = CASE WHEN p_outcome = 'handoff' THEN 'human' ELSE x.mode END,
			    handoff_reason = CASE WHEN p_outcome = 'handoff' THEN p_reason
						  ELSE x.handoff_reason END,
			    updated_at = now()
			WHERE x.id = p_conv AND x.tenant_id = v.tenant_id
			RETURNING hub_conversation_json(x, v_ch) AS obj)
		SELECT m.id, m.obj, u.obj INTO v_msg_id, v_msg, v_conv FROM m, u;
		v_types := ARRAY['message.created', 'conversation.updated'];
		v_datas := ARRAY[v_msg, v_conv];
	ELSIF p_outcome = 'handoff' THEN
		UPDATE conversations x
		SET mode = 'human', handoff_reason = p_reason, updated_at = now()
		WHERE x.id = p_conv AND x.tenant_id = v.tenant_id
		RETURNING hub_conversation_json(x, v_ch) INTO v_conv;
		v_types := ARRAY['conversation.updated'];
		v_datas := ARRAY[v_conv];
	END IF;
	INSERT INTO ai_exchanges (tenant_id, conversation_id, message_id, outcome, guard,
				  error_code, provider_ms, hub_us, hub_cpu_us, hub_parts, store_us,
				  prompt_tokens, completion_tokens, markers, dropped_markers, history)
	SELECT v.tenant_id, p_conv, v_msg_id, p_outcome, coalesce(x.guard, 'none'), x.error_code,
	       x.provider_ms, x.hub_us, x.hub_cpu_us, x.hub_parts,
	       (extract(epoch FROM clock_timestamp() - v_started) * 1000000)::integer,
	       x.prompt_tokens, x.completion_tokens, x.markers, x.dropped_markers, x.history
	FROM jsonb_populate_record(NULL::ai_exchanges, p_x) x;
	IF v_types IS NOT NULL THEN
		-- numbered now when the tenant's stream row is free (0030), else queued (id 0)
		RETURN QUERY
		SELECT v.tenant_id, q.event_id, v_types[q.ord::int], v_datas[q.ord::int]::text
		FROM hub_stream_take(v.tenant_id, v_types, v_datas) q ORDER BY q.ord;
	END IF;
END;
$$;

-- CREATE OR REPLACE resets the function's settings: 0028's again
ALTER FUNCTION hub_ai_finish(text, bigint, bigint, bigint, text, text, text, text, integer, jsonb)
	SET plan_cache_mode = force_generic_plan;

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
