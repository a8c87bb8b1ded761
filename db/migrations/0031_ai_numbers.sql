-- 0031: the assistant's answer numbers its own events, as a webhook batch does since 0030.
--
-- hub_ai_finish queued its two events (the answer's message.created and the conversation's
-- update) and hubd numbered them after the COMMIT in a transaction of its own
-- (hub_stream_flush): per answer a second round trip and COMMIT before the agents saw it,
-- and about 0.5 ms of the database's CPU (the queue row written, read back and deleted).
-- Now it takes the tenant's stream row when no one holds it and nothing of the tenant is
-- queued (hub_stream_take), as its last statement, so the row is held only for the COMMIT;
-- otherwise it queues them as before. The rest of the function is 0023's.

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
