-- db/migrations/0023_ai_speed.sql - the assistant's SQL made cheaper (issue 13, point 10: the
-- hub's part of one answer under 2 ms at p99). Same results and the same promises as 0010;
-- fewer statements, and no statement planned again on every call.
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).
-- Redefines (CREATE OR REPLACE, same signatures): hub_ai_answers, hub_ai_turn, hub_ai_next
-- (all of 0010), hub_media_obj (0012), hub_ai_wanted_rows (0021); with the claim's tenant
-- (0021's rule: each statement names its tenant): hub_ai_claim returns it, hub_ai_context
-- and hub_ai_finish take it first.
-- Adds ai_exchanges.hub_cpu_us and hub_parts. Locks in the order 0010's hub_ai_finish took
-- them: conversation -> ai_jobs -> message -> outbox (hub_stream_append last).
--
-- Where the time went (bench/ai --detail: pg_stat_statements with track=all and
-- track_functions=all over 300 answers): a LANGUAGE sql function that is not inlined is
-- planned again on every call from PL/pgSQL (PL/pgSQL caches its own statements' plans, not
-- those of the SQL functions it calls). hub_ai_answers (a sub-select keeps it from being
-- inlined) cost about 0.29 ms of planning for each of its three calls per answer (the
-- customer's message, the context, the answer's transaction), hub_ai_claim 0.17 ms a claim;
-- hub_ai_turn, declared IMMUTABLE around jsonb_build_object (STABLE), was never inlined: a
-- function call per turn of the history; so was hub_media_obj (0012), once in every message
-- object. hub_ai_finish ran a dozen statements through three more PL/pgSQL functions
-- (hub_ai_message, hub_message_json, hub_append_events); now five in the common case (the
-- conversation with its channel and settings; the claim; the message, its outbox row, the
-- disclosure and the conversation's update together; the exchange's record; the events).

-- The hub's own work on an answer also as the loop thread's CPU time (the wall time,
-- hub_us, grows with the machine's other load; this much less), and by part: microseconds
-- of {"context", "request", "check", "parse", "restore"} (daemon/ai/responder.c). Timings,
-- never a text.
ALTER TABLE ai_exchanges ADD COLUMN hub_cpu_us integer, ADD COLUMN hub_parts jsonb;

-- Whether the assistant answers in v now (0010's rules, unchanged). PL/pgSQL so that its one
-- query (an agent's message within the hour, asked only outside working hours of a
-- conversation in human mode) keeps a cached plan; false (not NULL) without settings.
CREATE OR REPLACE FUNCTION hub_ai_answers(v conversations, a channel_ai) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF a.enabled IS NOT TRUE OR v.status IS DISTINCT FROM 'open' THEN
		RETURN false;
	END IF;
	IF v.mode = 'ai' THEN
		RETURN true;
	END IF;
	IF NOT coalesce(hub_ai_off_hours(a), false)
	   OR v.handoff_reason IS NOT DISTINCT FROM 'customer_asked' THEN
		RETURN false;
	END IF;
	RETURN NOT EXISTS (SELECT 1 FROM messages m
			   WHERE m.conversation_id = v.id AND m.tenant_id = v.tenant_id
				 AND m.author = 'agent' AND m.created_at > now() - interval '1 hour');
END;
$$;

-- A message as a turn of the history (as 0010); STABLE like the jsonb_build_object it uses,
-- so that hub_ai_context's query inlines it instead of calling it once a turn.
CREATE OR REPLACE FUNCTION hub_ai_turn(m messages) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', m.id,
		'role', CASE WHEN m.direction = 'in' THEN 'customer'
			     WHEN m.author = 'ai' THEN 'assistant' ELSE 'agent' END,
		'text', CASE WHEN m.type = 'text' THEN coalesce(m.text, '')
			     ELSE '(' || m.type || ')' ||
				  coalesce(' ' || nullif(m.text, ''), '') END)
$$;

-- 0012's media object of a message (unchanged), STABLE like the jsonb_build_object it
-- uses: declared IMMUTABLE it was never inlined, so every message object (every
-- message.created, the assistant's too) called it as a function planned once per query.
CREATE OR REPLACE FUNCTION hub_media_obj(m messages) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN m.media IS NOT NULL THEN jsonb_build_object('kind', m.type,
		'mime', m.media->'mime', 'filename', m.media->'filename', 'size', m.media->'size')
	END
$$;

-- 0021's statement trigger of messages (unchanged in what it does), leaving at once when the
-- statement inserted no customer message: the assistant's and the agents' messages paid
-- for the whole INSERT ... ON CONFLICT with its joins.
CREATE OR REPLACE FUNCTION hub_ai_wanted_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM hub_new_messages n
		       WHERE n.direction = 'in' AND n.author = 'contact') THEN
		RETURN NULL;
	END IF;
	INSERT INTO ai_jobs AS j (conversation_id, tenant_id, upto_message_id, due_at)
	SELECT n.conversation_id, n.tenant_id, max(n.id),
	       now() + make_interval(secs => min(a.quiet_ms) / 1000.0)
	FROM hub_new_messages n JOIN channel_ai a ON a.channel_id = n.channel_id AND a.enabled
	WHERE n.direction = 'in' AND n.author = 'contact' AND n.type <> 'reaction'
	      AND (SELECT hub_ai_answers(v, a) FROM conversations v
		   WHERE v.id = n.conversation_id AND v.tenant_id = n.tenant_id
			 AND v.channel_id = a.channel_id)
	GROUP BY n.conversation_id, n.tenant_id ORDER BY n.conversation_id
	ON CONFLICT (conversation_id, tenant_id) DO UPDATE
	SET upto_message_id = greatest(j.upto_message_id, excluded.upto_message_id),
	    due_at = excluded.due_at;
	IF FOUND THEN
		PERFORM pg_notify('hub_ai', '');
	END IF;
	RETURN NULL;
END;
$$;

-- As 0010 (up to p_limit due rows, each this instance's for p_lease_ms under a new token),
-- with the plan kept from call to call, and each row's tenant, which the steps of its answer
-- (hub_ai_context, hub_ai_finish) name (0021: a schema distributed by tenant). The one
-- statement of the assistant that reads every tenant's rows: picking due work.
DROP FUNCTION hub_ai_claim(integer, integer);
CREATE FUNCTION hub_ai_claim(p_limit integer, p_lease_ms integer)
RETURNS TABLE (conversation_id bigint, token bigint, attempts integer, tenant_id text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH due AS (
		SELECT j.conversation_id, j.tenant_id FROM ai_jobs j
		WHERE j.due_at <= now() AND (j.lease_until IS NULL OR j.lease_until < now())
		ORDER BY j.due_at
		LIMIT p_limit
		FOR UPDATE SKIP LOCKED
	)
	UPDATE ai_jobs j SET token = nextval('ai_job_tokens'),
		lease_until = now() + make_interval(secs => p_lease_ms / 1000.0)
	FROM due WHERE j.conversation_id = due.conversation_id AND j.tenant_id = due.tenant_id
	RETURNING j.conversation_id, j.token, j.attempts, j.tenant_id;
END;
$$;

-- As 0010 (when to look again without a NOTIFY), with the plan kept.
CREATE OR REPLACE FUNCTION hub_ai_next() RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN (SELECT min(greatest(j.due_at, coalesce(j.lease_until, j.due_at))) FROM ai_jobs j);
END;
$$;

-- 0010's context of a claimed answer, with the claim's tenant named in each statement (and
-- no longer returned: the caller has it from the claim).
DROP FUNCTION hub_ai_context(bigint, bigint);
CREATE FUNCTION hub_ai_context(p_tenant text, p_conv bigint, p_token bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	v_job ai_jobs;
	v conversations;
	a channel_ai;
	v_ch channels;
	v_last_out bigint;
BEGIN
	SELECT j.* INTO v_job FROM ai_jobs j
	WHERE j.conversation_id = p_conv AND j.tenant_id = p_tenant AND j.token = p_token;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	SELECT x.* INTO v FROM conversations x WHERE x.id = p_conv AND x.tenant_id = p_tenant;
	SELECT x.* INTO a FROM channel_ai x WHERE x.channel_id = v.channel_id;
	IF NOT FOUND OR NOT hub_ai_answers(v, a) THEN
		DELETE FROM ai_jobs j
		WHERE j.conversation_id = p_conv AND j.tenant_id = p_tenant AND j.token = p_token;
		RETURN NULL;
	END IF;
	SELECT x.* INTO STRICT v_ch FROM channels x WHERE x.id = v.channel_id;
	SELECT max(m.id) INTO v_last_out FROM messages m
	WHERE m.conversation_id = p_conv AND m.tenant_id = p_tenant AND m.direction = 'out';
	RETURN jsonb_build_object(
		'upto', v_job.upto_message_id,
		'channel', v_ch.public_id,
		'company', (SELECT t.name FROM tenants t WHERE t.id = v.tenant_id),
		'settings', jsonb_build_object('base_url', a.base_url, 'model', a.model,
			'api_key', coalesce(a.api_key, ''), 'system_prompt', a.system_prompt,
			'knowledge', a.knowledge, 'reply_max_chars', a.reply_max_chars,
			'max_tokens', a.max_tokens, 'temperature', coalesce(a.temperature, -1),
			'disclosure', a.disclosure, 'handoff_phrases', to_jsonb(a.handoff_phrases),
			'handoff_message', a.handoff_message),
		'disclosed', EXISTS (SELECT 1 FROM ai_disclosures d
				     WHERE d.contact_id = v.contact_id AND d.tenant_id = p_tenant),
		'contact', (SELECT jsonb_build_object(
			'display_name', coalesce(c.display_name, ''),
			'phones', coalesce((SELECT jsonb_agg(DISTINCT p) FROM (
				SELECT c.phone AS p UNION SELECT i.phone FROM contact_identities i
				WHERE i.contact_id = c.id AND i.tenant_id = p_tenant) q
				WHERE p IS NOT NULL), '[]'),
			'profile_names', coalesce((SELECT jsonb_agg(DISTINCT i.profile_name)
				FROM contact_identities i
				WHERE i.contact_id = c.id AND i.tenant_id = p_tenant
				      AND i.profile_name IS NOT NULL), '[]'),
			'usernames', coalesce((SELECT jsonb_agg(DISTINCT i.username)
				FROM contact_identities i
				WHERE i.contact_id = c.id AND i.tenant_id = p_tenant
				      AND i.username IS NOT NULL), '[]'))
			FROM contacts c WHERE c.id = v.contact_id AND c.tenant_id = p_tenant),
		'history', coalesce((SELECT jsonb_agg(t.turn ORDER BY t.id) FROM (
			SELECT m.id, hub_ai_turn(m) AS turn FROM messages m
			WHERE m.conversation_id = p_conv AND m.tenant_id = p_tenant
			      AND m.id <= v_job.upto_message_id
			      AND m.type <> 'reaction' AND m.deleted_at IS NULL
			      AND NOT (m.direction = 'out' AND m.status = 'failed')
			ORDER BY m.id DESC LIMIT a.history_turns) t), '[]'),
		'pending', coalesce((SELECT jsonb_agg(m.id ORDER BY m.id) FROM messages m
			WHERE m.conversation_id = p_conv AND m.tenant_id = p_tenant
			      AND m.direction = 'in'
			      AND m.id > coalesce(v_last_out, 0) AND m.id <= v_job.upto_message_id),
			'[]'));
END;
$$;

-- The end of one claim, in one transaction (0010's contract, unchanged): p_outcome
-- 'answered' (p_text is the answer), 'handoff' (the conversation goes to human mode for
-- p_reason; p_text is the hand-off message or NULL), 'retry' (nothing sent; due again in
-- p_delay_ms, one more failure counted) or 'dropped' (nothing to send). p_x is the
-- exchange's record (ai_exchanges' columns as JSON). Nothing happens when the claim is no
-- longer the caller's, or when the assistant no longer answers there (an agent took over
-- meanwhile: the answer is not sent). The row is done unless a newer customer message came
-- meanwhile (then it stays, due at its own time). Returns the events to publish.
-- store_us is, as before, the time from the start to the exchange's record.
DROP FUNCTION hub_ai_finish(bigint, bigint, bigint, text, text, text, text, integer, jsonb);
CREATE FUNCTION hub_ai_finish(p_tenant text, p_conv bigint, p_token bigint, p_upto bigint,
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
		-- hub_append_events' rows, without its wrapper's planning on every call
		RETURN QUERY
		SELECT v.tenant_id, q.event_id, v_types[q.ord::int], v_datas[q.ord::int]::text
		FROM hub_stream_append(v.tenant_id, v_types, v_datas) q ORDER BY q.ord;
	END IF;
END;
$$;
