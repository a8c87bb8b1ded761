-- db/migrations/0010_assistant.sql - the AI responder (daemon/ai/responder.c): each
-- channel's assistant settings, the answers waiting for their quiet period, the disclosure
-- remembered per contact, hand-offs to people, and a record of each exchange with the
-- provider (ids, timings, token counts, the guard's result: never a text).
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).
-- Lock order (as in 0005): conversation -> message -> ai_jobs -> outbox -> tenant_stream
-- (a customer's message queues its answer from a trigger, under the conversation's lock).

-- One row per channel whose assistant was ever set (hubctl channel ai). api_key is a
-- secret, sealed (lib/secret.h): opened only by the responder, never returned to a browser;
-- people see api_key_hint, its last four characters (none for a short key).
CREATE TABLE channel_ai (
	channel_id bigint PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
	enabled boolean NOT NULL DEFAULT false,
	base_url text NOT NULL DEFAULT '',
	model text NOT NULL DEFAULT '',
	api_key text,
	api_key_hint text,
	system_prompt text NOT NULL DEFAULT '',
	knowledge text NOT NULL DEFAULT '',
	history_turns integer NOT NULL DEFAULT 20 CHECK (history_turns BETWEEN 1 AND 100),
	reply_max_chars integer NOT NULL DEFAULT 1000 CHECK (reply_max_chars BETWEEN 20 AND 4096),
	max_tokens integer NOT NULL DEFAULT 512 CHECK (max_tokens BETWEEN 0 AND 32768),
	temperature real CHECK (temperature BETWEEN 0 AND 2),
	disclosure jsonb NOT NULL DEFAULT '{}',      -- {"ru": "...", "kk": "...", "en": "..."}
	handoff_phrases text[] NOT NULL DEFAULT '{}',
	handoff_message jsonb NOT NULL DEFAULT '{}', -- per language, as disclosure
	quiet_ms integer NOT NULL DEFAULT 3000 CHECK (quiet_ms BETWEEN 0 AND 600000),
	-- working hours (optional): outside them the assistant also answers conversations in
	-- human mode; days are ISO (1 Monday .. 7 Sunday), times local to hours_tz
	hours_tz text,
	hours_days integer[],
	hours_from time,
	hours_to time,
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (NOT enabled OR (base_url <> '' AND model <> '')),
	CHECK ((hours_tz IS NULL) = (hours_from IS NULL) AND (hours_tz IS NULL) = (hours_to IS NULL)
	       AND (hours_tz IS NULL) = (hours_days IS NULL))
);

-- Why a conversation left the assistant (NULL while it is in ai mode, or never was):
-- customer_asked, agent (an agent wrote or switched the mode), assigned (an agent took it),
-- provider_failed, guard_blocked.
ALTER TABLE conversations ADD COLUMN handoff_reason text, ADD COLUMN handoff_at timestamptz;

CREATE OR REPLACE FUNCTION hub_conversation_json(v conversations, p_channel text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', v.id, 'contact_id', v.contact_id, 'channel_id', p_channel,
		'status', v.status, 'mode', v.mode, 'assignee', v.assignee,
		'last_message_at', hub_iso(v.last_message_at), 'unread', v.unread,
		'handoff_reason', v.handoff_reason, 'handoff_at', hub_iso(v.handoff_at))
$$;

-- Whether now is outside the channel's working hours (false when it has none).
CREATE FUNCTION hub_ai_off_hours(a channel_ai) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT a.hours_tz IS NOT NULL AND NOT (
		extract(isodow FROM now() AT TIME ZONE a.hours_tz)::integer = ANY (a.hours_days)
		AND (now() AT TIME ZONE a.hours_tz)::time >= a.hours_from
		AND (now() AT TIME ZONE a.hours_tz)::time < a.hours_to)
$$;

-- Whether the assistant answers in v now: its channel's assistant is on, v is open, and v
-- is in ai mode, or it is outside working hours and neither did the customer ask for a
-- person nor did an agent write in the last hour.
CREATE FUNCTION hub_ai_answers(v conversations, a channel_ai) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT a.enabled AND v.status = 'open' AND (v.mode = 'ai' OR (
		hub_ai_off_hours(a) AND v.handoff_reason IS DISTINCT FROM 'customer_asked'
		AND NOT EXISTS (SELECT 1 FROM messages m
				WHERE m.conversation_id = v.id AND m.author = 'agent'
				      AND m.created_at > now() - interval '1 hour')))
$$;

-- A new conversation on a channel whose assistant is on starts in ai mode.
CREATE FUNCTION hub_ai_conversation_mode() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM channel_ai a WHERE a.channel_id = NEW.channel_id AND a.enabled)
	THEN
		NEW.mode := 'ai';
	END IF;
	RETURN NEW;
END;
$$;
CREATE TRIGGER conversations_ai_mode BEFORE INSERT ON conversations
	FOR EACH ROW EXECUTE FUNCTION hub_ai_conversation_mode();

-- Hand-offs by people: an agent switching the mode or sending a message in an ai
-- conversation (hub_cmd_send sets mode human) is 'agent', an agent taking an ai
-- conversation switches it to human ('assigned'); back in ai mode the reason goes.
CREATE FUNCTION hub_ai_conversation_handoff() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.mode = 'ai' AND NEW.assignee IS NOT NULL
	   AND NEW.assignee IS DISTINCT FROM OLD.assignee THEN
		NEW.mode := 'human';
		NEW.handoff_reason := 'assigned';
	END IF;
	IF NEW.mode = 'ai' THEN
		NEW.handoff_reason := NULL;
		NEW.handoff_at := NULL;
	ELSIF OLD.mode = 'ai' THEN
		NEW.handoff_reason := coalesce(NEW.handoff_reason, 'agent');
		NEW.handoff_at := now();
	END IF;
	RETURN NEW;
END;
$$;
CREATE TRIGGER conversations_ai_handoff BEFORE UPDATE OF mode, assignee ON conversations
	FOR EACH ROW EXECUTE FUNCTION hub_ai_conversation_handoff();

-- One row per conversation with a customer message the assistant has not answered yet.
-- Each new customer message moves due_at to now + the quiet period (three quick messages
-- are one answer) and upto_message_id to itself. A claim gives the row a new token; only
-- the holder of the current token may store an answer (never two answers to one message,
-- also when a lease ran out and another instance took the row).
CREATE SEQUENCE ai_job_tokens;
CREATE TABLE ai_jobs (
	conversation_id bigint PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	upto_message_id bigint NOT NULL,
	due_at timestamptz NOT NULL,
	attempts integer NOT NULL DEFAULT 0,  -- provider calls that failed in a row
	token bigint,
	lease_until timestamptz,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_jobs_due ON ai_jobs (due_at);

CREATE FUNCTION hub_ai_wanted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	v_quiet integer;
BEGIN
	SELECT a.quiet_ms INTO v_quiet
	FROM conversations v JOIN channel_ai a ON a.channel_id = v.channel_id
	WHERE v.id = NEW.conversation_id AND hub_ai_answers(v, a);
	IF FOUND THEN
		INSERT INTO ai_jobs AS j (conversation_id, tenant_id, upto_message_id, due_at)
		VALUES (NEW.conversation_id, NEW.tenant_id, NEW.id,
			now() + make_interval(secs => v_quiet / 1000.0))
		ON CONFLICT (conversation_id) DO UPDATE
		SET upto_message_id = greatest(j.upto_message_id, excluded.upto_message_id),
		    due_at = excluded.due_at;
		PERFORM pg_notify('hub_ai', '');
	END IF;
	RETURN NULL;
END;
$$;
CREATE TRIGGER messages_ai AFTER INSERT ON messages FOR EACH ROW
	WHEN (NEW.direction = 'in' AND NEW.author = 'contact' AND NEW.type <> 'reaction')
	EXECUTE FUNCTION hub_ai_wanted();

-- The first assistant message a contact received (the disclosure went with it).
CREATE TABLE ai_disclosures (
	contact_id bigint PRIMARY KEY REFERENCES contacts (id) ON DELETE CASCADE,
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	message_id bigint REFERENCES messages (id) ON DELETE SET NULL,
	lang text NOT NULL,
	disclosed_at timestamptz NOT NULL DEFAULT now()
);

-- An identity moving to another contact (hub_merge_contacts) brings its contact's
-- disclosure along: the merged contact keeps the earlier one.
CREATE FUNCTION hub_ai_disclosure_moves() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO ai_disclosures AS d (contact_id, tenant_id, message_id, lang, disclosed_at)
	SELECT NEW.contact_id, o.tenant_id, o.message_id, o.lang, o.disclosed_at
	FROM ai_disclosures o WHERE o.contact_id = OLD.contact_id
	ON CONFLICT (contact_id) DO UPDATE
	SET message_id = excluded.message_id, lang = excluded.lang,
	    disclosed_at = excluded.disclosed_at
	WHERE excluded.disclosed_at < d.disclosed_at;
	RETURN NULL;
END;
$$;
CREATE TRIGGER contact_identities_ai_disclosure AFTER UPDATE OF contact_id
	ON contact_identities FOR EACH ROW WHEN (NEW.contact_id <> OLD.contact_id)
	EXECUTE FUNCTION hub_ai_disclosure_moves();

-- One row per exchange with a provider, and per hand-off without one. Never a text.
CREATE TABLE ai_exchanges (
	id bigserial PRIMARY KEY,
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	conversation_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	message_id bigint REFERENCES messages (id) ON DELETE SET NULL, -- what was sent, if any
	outcome text NOT NULL CHECK (outcome IN ('answered', 'retry', 'handoff', 'dropped')),
	guard text NOT NULL CHECK (guard IN ('passed', 'blocked', 'none')),
	error_code text,          -- the provider's status and error code, e.g. '429 rate_limit'
	provider_ms integer,      -- request written to answer read
	hub_us integer,           -- the hub's own work: pseudonymize, guard, restore, shape
	store_us integer,         -- the transaction that stored the answer, in the server
	prompt_tokens integer,
	completion_tokens integer,
	markers integer,          -- distinct values replaced by a marker
	dropped_markers integer,  -- markers of the answer the vault did not know
	history integer,          -- turns sent
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_exchanges_conversation ON ai_exchanges (conversation_id, id);
CREATE INDEX ai_exchanges_tenant ON ai_exchanges (tenant_id, id);

-- Up to p_limit due rows, each this instance's for p_lease_ms under a new token.
CREATE FUNCTION hub_ai_claim(p_limit integer, p_lease_ms integer)
RETURNS TABLE (conversation_id bigint, token bigint, attempts integer)
LANGUAGE sql AS $$
	WITH due AS (
		SELECT j.conversation_id FROM ai_jobs j
		WHERE j.due_at <= now() AND (j.lease_until IS NULL OR j.lease_until < now())
		ORDER BY j.due_at
		LIMIT p_limit
		FOR UPDATE SKIP LOCKED
	)
	UPDATE ai_jobs j SET token = nextval('ai_job_tokens'),
		lease_until = now() + make_interval(secs => p_lease_ms / 1000.0)
	FROM due WHERE j.conversation_id = due.conversation_id
	RETURNING j.conversation_id, j.token, j.attempts
$$;

-- When to look again without a NOTIFY: the earliest due row or end of a lease.
CREATE FUNCTION hub_ai_next() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
	SELECT min(greatest(j.due_at, coalesce(j.lease_until, j.due_at))) FROM ai_jobs j
$$;

-- A message as a turn of the history.
CREATE FUNCTION hub_ai_turn(m messages) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('id', m.id,
		'role', CASE WHEN m.direction = 'in' THEN 'customer'
			     WHEN m.author = 'ai' THEN 'assistant' ELSE 'agent' END,
		'text', CASE WHEN m.type = 'text' THEN coalesce(m.text, '')
			     ELSE '(' || m.type || ')' ||
				  coalesce(' ' || nullif(m.text, ''), '') END)
$$;

-- What one answer needs, as one JSON object, or NULL when the claim is no longer the
-- caller's (another token) or the assistant no longer answers there (the row is then
-- deleted): the channel and its settings (the API key too), the company's name, what the
-- hub knows about the contact, whether the contact had the disclosure, the history window
-- (oldest first) and the ids of the customer's messages since the company last wrote.
CREATE FUNCTION hub_ai_context(p_conv bigint, p_token bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	v_job ai_jobs;
	v conversations;
	a channel_ai;
	v_ch channels;
	v_last_out bigint;
BEGIN
	SELECT j.* INTO v_job FROM ai_jobs j WHERE j.conversation_id = p_conv AND j.token = p_token;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	SELECT x.* INTO v FROM conversations x WHERE x.id = p_conv;
	SELECT x.* INTO a FROM channel_ai x WHERE x.channel_id = v.channel_id;
	IF NOT FOUND OR NOT hub_ai_answers(v, a) THEN
		DELETE FROM ai_jobs j WHERE j.conversation_id = p_conv AND j.token = p_token;
		RETURN NULL;
	END IF;
	SELECT x.* INTO STRICT v_ch FROM channels x WHERE x.id = v.channel_id;
	SELECT max(m.id) INTO v_last_out FROM messages m
	WHERE m.conversation_id = p_conv AND m.direction = 'out';
	RETURN jsonb_build_object(
		'upto', v_job.upto_message_id,
		'channel', v_ch.public_id,
		'tenant', v.tenant_id,
		'company', (SELECT t.name FROM tenants t WHERE t.id = v.tenant_id),
		'settings', jsonb_build_object('base_url', a.base_url, 'model', a.model,
			'api_key', coalesce(a.api_key, ''), 'system_prompt', a.system_prompt,
			'knowledge', a.knowledge, 'reply_max_chars', a.reply_max_chars,
			'max_tokens', a.max_tokens, 'temperature', coalesce(a.temperature, -1),
			'disclosure', a.disclosure, 'handoff_phrases', to_jsonb(a.handoff_phrases),
			'handoff_message', a.handoff_message),
		'disclosed', EXISTS (SELECT 1 FROM ai_disclosures d WHERE d.contact_id = v.contact_id),
		'contact', (SELECT jsonb_build_object(
			'display_name', coalesce(c.display_name, ''),
			'phones', coalesce((SELECT jsonb_agg(DISTINCT p) FROM (
				SELECT c.phone AS p UNION SELECT i.phone FROM contact_identities i
				WHERE i.contact_id = c.id) q WHERE p IS NOT NULL), '[]'),
			'profile_names', coalesce((SELECT jsonb_agg(DISTINCT i.profile_name)
				FROM contact_identities i
				WHERE i.contact_id = c.id AND i.profile_name IS NOT NULL), '[]'),
			'usernames', coalesce((SELECT jsonb_agg(DISTINCT i.username)
				FROM contact_identities i
				WHERE i.contact_id = c.id AND i.username IS NOT NULL), '[]'))
			FROM contacts c WHERE c.id = v.contact_id),
		'history', coalesce((SELECT jsonb_agg(t.turn ORDER BY t.id) FROM (
			SELECT m.id, hub_ai_turn(m) AS turn FROM messages m
			WHERE m.conversation_id = p_conv AND m.id <= v_job.upto_message_id
			      AND m.type <> 'reaction' AND m.deleted_at IS NULL
			      AND NOT (m.direction = 'out' AND m.status = 'failed')
			ORDER BY m.id DESC LIMIT a.history_turns) t), '[]'),
		'pending', coalesce((SELECT jsonb_agg(m.id ORDER BY m.id) FROM messages m
			WHERE m.conversation_id = p_conv AND m.direction = 'in'
			      AND m.id > coalesce(v_last_out, 0) AND m.id <= v_job.upto_message_id),
			'[]'));
END;
$$;

-- The assistant's message p_text (may be NULL: none) in v, through the outbox, with the
-- contact's disclosure recorded when p_disclosed_lang is set; returns the message (or
-- NULL). The conversation is locked by the caller.
CREATE FUNCTION hub_ai_message(v conversations, p_text text, p_disclosed_lang text)
RETURNS messages
LANGUAGE plpgsql AS $$
DECLARE
	v_msg messages;
BEGIN
	IF p_text IS NULL THEN
		RETURN NULL;
	END IF;
	INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, direction, author,
				   type, text, status)
	VALUES (v.tenant_id, v.id, v.channel_id, 'out', 'ai', 'text', p_text, 'queued')
	RETURNING m.* INTO v_msg;
	INSERT INTO outbox (tenant_id, message_id, channel_id, conversation_id)
	VALUES (v.tenant_id, v_msg.id, v.channel_id, v.id);
	IF p_disclosed_lang IS NOT NULL THEN
		INSERT INTO ai_disclosures (contact_id, tenant_id, message_id, lang)
		VALUES (v.contact_id, v.tenant_id, v_msg.id, p_disclosed_lang)
		ON CONFLICT (contact_id) DO NOTHING;
	END IF;
	RETURN v_msg;
END;
$$;

-- The end of one claim, in one transaction: p_outcome 'answered' (p_text is the answer),
-- 'handoff' (the conversation goes to human mode for p_reason; p_text is the hand-off
-- message or NULL), 'retry' (nothing sent; due again in p_delay_ms, one more failure
-- counted) or 'dropped' (nothing to send). p_x is the exchange's record (ai_exchanges'
-- columns as JSON). Nothing happens when the claim is no longer the caller's, or when the
-- assistant no longer answers there (an agent took over meanwhile: the answer is not sent).
-- The row is done unless a newer customer message came meanwhile (then it stays, due at
-- its own time). Returns the events to publish.
CREATE FUNCTION hub_ai_finish(p_conv bigint, p_token bigint, p_upto bigint, p_outcome text,
			      p_reason text, p_text text, p_disclosed_lang text,
			      p_delay_ms integer, p_x jsonb)
RETURNS TABLE (tenant text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_started timestamptz := clock_timestamp();
	v_job ai_jobs;
	v conversations;
	a channel_ai;
	v_ch text;
	v_msg messages;
	v_types text[] := '{}';
	v_datas jsonb[] := '{}';
BEGIN
	SELECT x.* INTO v FROM conversations x WHERE x.id = p_conv FOR UPDATE;
	SELECT j.* INTO v_job FROM ai_jobs j
	WHERE j.conversation_id = p_conv AND j.token = p_token FOR UPDATE;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	SELECT x.* INTO a FROM channel_ai x WHERE x.channel_id = v.channel_id;
	IF p_outcome = 'retry' THEN
		UPDATE ai_jobs j SET lease_until = NULL, token = NULL, attempts = j.attempts + 1,
			due_at = greatest(j.due_at, now() + make_interval(secs => p_delay_ms / 1000.0))
		WHERE j.conversation_id = p_conv;
	ELSIF v_job.upto_message_id > p_upto AND p_outcome <> 'handoff' THEN
		UPDATE ai_jobs j SET lease_until = NULL, token = NULL, attempts = 0
		WHERE j.conversation_id = p_conv;
	ELSE
		DELETE FROM ai_jobs j WHERE j.conversation_id = p_conv;
	END IF;
	IF p_outcome IN ('answered', 'handoff') AND NOT coalesce(hub_ai_answers(v, a), false) THEN
		p_outcome := 'dropped';
	END IF;
	SELECT c.public_id INTO STRICT v_ch FROM channels c WHERE c.id = v.channel_id;
	IF p_outcome IN ('answered', 'handoff') THEN
		v_msg := hub_ai_message(v, p_text, p_disclosed_lang);
		IF v_msg.id IS NOT NULL THEN
			v_types := v_types || 'message.created'::text;
			v_datas := v_datas || hub_message_json(v_msg, v.contact_id, v_ch);
		END IF;
		UPDATE conversations x
		SET last_message_at = CASE WHEN v_msg.id IS NULL THEN x.last_message_at ELSE now() END,
		    mode = CASE WHEN p_outcome = 'handoff' THEN 'human' ELSE x.mode END,
		    handoff_reason = CASE WHEN p_outcome = 'handoff' THEN p_reason
					  ELSE x.handoff_reason END,
		    updated_at = now()
		WHERE x.id = p_conv RETURNING x.* INTO v;
		v_types := v_types || 'conversation.updated'::text;
		v_datas := v_datas || hub_conversation_json(v, v_ch);
	END IF;
	INSERT INTO ai_exchanges (tenant_id, conversation_id, message_id, outcome, guard,
				  error_code, provider_ms, hub_us, store_us, prompt_tokens,
				  completion_tokens, markers, dropped_markers, history)
	SELECT v.tenant_id, p_conv, v_msg.id, p_outcome, coalesce(x.guard, 'none'), x.error_code,
	       x.provider_ms, x.hub_us,
	       (extract(epoch FROM clock_timestamp() - v_started) * 1000000)::integer,
	       x.prompt_tokens, x.completion_tokens, x.markers, x.dropped_markers, x.history
	FROM jsonb_populate_record(NULL::ai_exchanges, p_x) x;
	IF cardinality(v_types) > 0 THEN
		RETURN QUERY SELECT * FROM hub_append_events(v.tenant_id, v_types, v_datas);
	END IF;
END;
$$;

-- hubctl channel ai: p_set holds the settings to change (keys as channel_ai's columns;
-- "hours": null or {"tz","days","from","to"}; "api_key": sealed, null clears it, with
-- "api_key_hint"). Creates the row
-- on first use. Raises P0002 for an unknown channel; the table's checks refuse the rest.
-- Returns the settings as they are now, the key shown by its last four characters.
CREATE FUNCTION hub_channel_ai_set(p_public_id text, p_set jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	v_ch channels;
	a channel_ai;
BEGIN
	SELECT c.* INTO v_ch FROM channels c WHERE c.public_id = p_public_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no channel "%" in the database', p_public_id USING ERRCODE = 'P0002';
	END IF;
	INSERT INTO channel_ai (channel_id) VALUES (v_ch.id) ON CONFLICT DO NOTHING;
	SELECT x.* INTO STRICT a FROM channel_ai x WHERE x.channel_id = v_ch.id FOR UPDATE;
	IF p_set ? 'enabled' THEN a.enabled := (p_set->>'enabled')::boolean; END IF;
	IF p_set ? 'base_url' THEN a.base_url := p_set->>'base_url'; END IF;
	IF p_set ? 'model' THEN a.model := p_set->>'model'; END IF;
	IF p_set ? 'api_key' THEN
		a.api_key := p_set->>'api_key';
		a.api_key_hint := p_set->>'api_key_hint';
	END IF;
	IF p_set ? 'system_prompt' THEN a.system_prompt := p_set->>'system_prompt'; END IF;
	IF p_set ? 'knowledge' THEN a.knowledge := p_set->>'knowledge'; END IF;
	IF p_set ? 'history_turns' THEN a.history_turns := (p_set->>'history_turns')::integer; END IF;
	IF p_set ? 'reply_max_chars' THEN
		a.reply_max_chars := (p_set->>'reply_max_chars')::integer;
	END IF;
	IF p_set ? 'max_tokens' THEN a.max_tokens := (p_set->>'max_tokens')::integer; END IF;
	IF p_set ? 'temperature' THEN a.temperature := (p_set->>'temperature')::real; END IF;
	IF p_set ? 'disclosure' THEN a.disclosure := a.disclosure || (p_set->'disclosure'); END IF;
	IF p_set ? 'handoff_phrases' THEN
		a.handoff_phrases := ARRAY(SELECT jsonb_array_elements_text(p_set->'handoff_phrases'));
	END IF;
	IF p_set ? 'handoff_message' THEN
		a.handoff_message := a.handoff_message || (p_set->'handoff_message');
	END IF;
	IF p_set ? 'quiet_ms' THEN a.quiet_ms := (p_set->>'quiet_ms')::integer; END IF;
	IF p_set ? 'hours' THEN
		a.hours_tz := p_set->'hours'->>'tz';
		a.hours_days := CASE WHEN jsonb_typeof(p_set->'hours') = 'object' THEN ARRAY(
			SELECT jsonb_array_elements_text(p_set->'hours'->'days')::integer) END;
		a.hours_from := (p_set->'hours'->>'from')::time;
		a.hours_to := (p_set->'hours'->>'to')::time;
		IF a.hours_tz IS NOT NULL THEN
			PERFORM now() AT TIME ZONE a.hours_tz; -- an unknown zone raises here
		END IF;
	END IF;
	a.updated_at := now();
	UPDATE channel_ai x SET enabled = a.enabled, base_url = a.base_url, model = a.model,
		api_key = a.api_key, api_key_hint = a.api_key_hint, system_prompt = a.system_prompt, knowledge = a.knowledge,
		history_turns = a.history_turns, reply_max_chars = a.reply_max_chars,
		max_tokens = a.max_tokens, temperature = a.temperature, disclosure = a.disclosure,
		handoff_phrases = a.handoff_phrases, handoff_message = a.handoff_message,
		quiet_ms = a.quiet_ms, hours_tz = a.hours_tz, hours_days = a.hours_days,
		hours_from = a.hours_from, hours_to = a.hours_to, updated_at = a.updated_at
	WHERE x.channel_id = v_ch.id;
	RETURN hub_channel_ai_json(a);
END;
$$;

-- A channel's assistant settings for people: the API key by its last four characters.
CREATE FUNCTION hub_channel_ai_json(a channel_ai) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT to_jsonb(a) - 'api_key' - 'api_key_hint' - 'channel_id' - 'hours_tz' - 'hours_days' - 'hours_from'
		- 'hours_to' || jsonb_build_object(
		'channel', (SELECT c.public_id FROM channels c WHERE c.id = a.channel_id),
		'api_key', CASE WHEN a.api_key IS NULL THEN NULL
				ELSE '…' || coalesce(a.api_key_hint, '') END,
		'hours', CASE WHEN a.hours_tz IS NULL THEN NULL ELSE jsonb_build_object(
			'tz', a.hours_tz, 'days', to_jsonb(a.hours_days),
			'from', to_char(a.hours_from, 'HH24:MI'), 'to', to_char(a.hours_to, 'HH24:MI'))
			END)
$$;

-- The settings of a channel (NULL when never set); P0002 for an unknown channel.
CREATE FUNCTION hub_channel_ai_get(p_public_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_ch channels;
BEGIN
	SELECT c.* INTO v_ch FROM channels c WHERE c.public_id = p_public_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no channel "%" in the database', p_public_id USING ERRCODE = 'P0002';
	END IF;
	RETURN (SELECT hub_channel_ai_json(a) FROM channel_ai a WHERE a.channel_id = v_ch.id);
END;
$$;
