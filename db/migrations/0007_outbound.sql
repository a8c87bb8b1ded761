-- db/migrations/0007_outbound.sql - delivery of the outbox (daemon/outbound/outbox.c): rows
-- claimed with FOR UPDATE SKIP LOCKED under a lease, one conversation's messages in order,
-- retries with a due time, failures with the platform's reason; the 24-hour reply window
-- checked when an agent sends; the client_id of an agent's message in its events.
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).
-- Lock order (as in 0005): conversation -> message -> outbox -> tenant_stream (last).

-- Every message object carries the agent's idempotency key (NULL for others), so the page
-- matches its pending bubble by id, not by text.
CREATE OR REPLACE FUNCTION hub_message_obj(m messages, p_contact bigint, p_channel text,
					   p_reactions jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', m.id, 'conversation_id', m.conversation_id,
		'contact_id', p_contact, 'channel_id', p_channel, 'direction', m.direction,
		'author', m.author, 'type', m.type, 'text', m.text, 'status', m.status,
		'error', m.error, 'platform_ts', hub_iso(m.platform_ts),
		'created_at', hub_iso(m.created_at), 'edited_at', hub_iso(m.edited_at),
		'deleted_at', hub_iso(m.deleted_at), 'reply_to_external_id', m.reply_to_external_id,
		'reactions', p_reactions, 'client_id', m.client_id)
$$;

-- status: pending (due at next_attempt_at) -> sending (claimed until lease_until by one
-- instance) -> done | failed, or back to pending for a retry. A 'sending' row whose lease
-- ran out belongs to an instance that died: it is claimed again (the one window in which
-- a message the platform accepted is sent twice: README "Outbound delivery").
ALTER TABLE outbox
	ADD COLUMN conversation_id bigint REFERENCES conversations (id) ON DELETE CASCADE,
	ADD COLUMN lease_until timestamptz,
	ADD COLUMN error_code text,
	-- a part of a long text goes right after the row it was cut from (its id here), before
	-- anything written after that text; a row's place is (coalesce(ord, id), id)
	ADD COLUMN ord bigint;
UPDATE outbox o SET conversation_id = m.conversation_id FROM messages m WHERE m.id = o.message_id;
ALTER TABLE outbox ALTER COLUMN conversation_id SET NOT NULL;
-- The rows still to deliver, per conversation in order: only the oldest of each may go.
CREATE INDEX outbox_open ON outbox (conversation_id, id) WHERE status IN ('pending', 'sending');
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_leased ON outbox (lease_until) WHERE status = 'sending';

-- Every new due row wakes the senders of every instance (NOTIFY is delivered at COMMIT).
CREATE FUNCTION hub_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('hub_outbox', '');
	RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
	FOR EACH STATEMENT EXECUTE FUNCTION hub_outbox_notify();

-- The platform time of the contact's last message on the conversation's channel (any of
-- their conversations there), NULL when they never wrote.
CREATE FUNCTION hub_last_inbound(v_conv conversations) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
	SELECT max(coalesce(m.platform_ts, m.created_at)) FROM messages m
	JOIN conversations v ON v.id = m.conversation_id
	WHERE v.contact_id = v_conv.contact_id AND v.channel_id = v_conv.channel_id
	      AND m.direction = 'in'
$$;

-- WhatsApp and Instagram take free-form messages only within 24 hours of the customer's
-- last message (PLATFORMS.md); Telegram has no window.
CREATE FUNCTION hub_window_open(v_conv conversations, p_kind text) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT p_kind NOT IN ('whatsapp', 'instagram')
	       OR hub_last_inbound(v_conv) > now() - interval '24 hours'
$$;

CREATE FUNCTION hub_cmd_window_closed(p_kind text) RETURNS TABLE (kind text, event_id bigint,
								 event text, data text)
LANGUAGE sql IMMUTABLE AS $$
	SELECT 'error'::text, NULL::bigint, 'window_closed'::text,
	       ('the customer last wrote more than 24 hours ago: ' || p_kind ||
		' accepts no free-form message until they write again')::text
$$;

-- send (0005) with the reply window checked first (outside it nothing is stored and the
-- agent gets the error window_closed), and an optional quote: p_reply_to, a message of the
-- conversation that has its platform id (the platform shows the reply under it).
DROP FUNCTION hub_cmd_send(conversations, text, text, text, text);
CREATE FUNCTION hub_cmd_send(v_conv conversations, v_channel text, p_user text, p_text text,
			     p_client_id text, p_reply_to bigint)
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_msg messages;
	v_kind text;
	v_quote text;
BEGIN
	IF p_client_id IS NOT NULL THEN
		SELECT m.* INTO v_msg FROM messages m
		WHERE m.conversation_id = v_conv.id AND m.client_id = p_client_id;
		IF FOUND THEN
			RETURN QUERY SELECT * FROM hub_cmd_ack(jsonb_build_object(
				'message_id', v_msg.id, 'duplicate', true));
			RETURN;
		END IF;
	END IF;
	IF p_reply_to IS NOT NULL THEN
		SELECT m.external_id INTO v_quote FROM messages m
		WHERE m.id = p_reply_to AND m.conversation_id = v_conv.id;
		IF NOT FOUND THEN
			RETURN QUERY SELECT 'error'::text, NULL::bigint, 'not_found'::text,
					    'no such message to quote in this conversation'::text;
			RETURN;
		END IF;
		IF v_quote IS NULL THEN
			RETURN QUERY SELECT 'error'::text, NULL::bigint, 'bad_request'::text,
				'the quoted message has no platform id yet (not sent)'::text;
			RETURN;
		END IF;
	END IF;
	SELECT c.kind INTO STRICT v_kind FROM channels c WHERE c.id = v_conv.channel_id;
	IF NOT hub_window_open(v_conv, v_kind) THEN
		RETURN QUERY SELECT * FROM hub_cmd_window_closed(v_kind);
		RETURN;
	END IF;
	INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, direction, author,
				   type, text, status, client_id, reply_to_external_id)
	VALUES (v_conv.tenant_id, v_conv.id, v_conv.channel_id, 'out', 'agent', 'text', p_text,
		'queued', p_client_id, v_quote)
	RETURNING m.* INTO v_msg;
	INSERT INTO outbox (tenant_id, message_id, channel_id, conversation_id)
	VALUES (v_conv.tenant_id, v_msg.id, v_conv.channel_id, v_conv.id);
	UPDATE conversations v SET mode = 'human', last_message_at = now(), updated_at = now()
	WHERE v.id = v_conv.id RETURNING v.* INTO v_conv;
	RETURN QUERY SELECT * FROM hub_emit_events(v_conv.tenant_id,
		ARRAY['message.created', 'conversation.updated'],
		ARRAY[hub_message_json(v_msg, v_conv.contact_id, v_channel),
		      hub_conversation_json(v_conv, v_channel)]);
	RETURN QUERY SELECT * FROM hub_cmd_ack(jsonb_build_object('message_id', v_msg.id,
								  'duplicate', false));
END;
$$;

-- True while an undelivered row of o's conversation is ahead of o: o must wait for it.
CREATE FUNCTION hub_outbox_behind(o outbox) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT EXISTS (SELECT 1 FROM outbox p
		       WHERE p.conversation_id = o.conversation_id
			     AND p.status IN ('pending', 'sending')
			     AND (coalesce(p.ord, p.id), p.id) < (coalesce(o.ord, o.id), o.id))
$$;

-- Claims up to p_limit due rows for p_lease_ms: pending rows whose time has come and
-- 'sending' rows whose lease ran out, each the oldest undelivered row of its conversation
-- (so one conversation's messages leave in order, also across instances), skipping rows
-- that another instance holds. Returns what the sender needs: the channel (public id), the
-- recipient (the contact's id on the channel, the most recently seen identity), the text,
-- the quoted message's platform id and whether the reply window is still open.
CREATE FUNCTION hub_outbox_claim(p_limit integer, p_lease_ms integer)
RETURNS TABLE (outbox_id bigint, attempts integer, channel text, recipient text, type text,
	       text text, reply_to text, window_open boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH pending AS ( -- in due order along outbox_due: stops at the limit
		SELECT o.id FROM outbox o
		WHERE o.status = 'pending' AND o.next_attempt_at <= now()
		      AND NOT hub_outbox_behind(o)
		ORDER BY o.next_attempt_at, o.id
		LIMIT p_limit
		FOR UPDATE SKIP LOCKED
	), lapsed AS ( -- rows of an instance that died
		SELECT o.id FROM outbox o
		WHERE o.status = 'sending' AND o.lease_until < now() AND NOT hub_outbox_behind(o)
		ORDER BY o.lease_until
		LIMIT p_limit
		FOR UPDATE SKIP LOCKED
	), due AS (
		SELECT id FROM pending UNION ALL SELECT id FROM lapsed
	), claimed AS (
		UPDATE outbox o SET status = 'sending', attempts = o.attempts + 1,
			lease_until = now() + make_interval(secs => p_lease_ms / 1000.0),
			updated_at = now()
		FROM due WHERE o.id = due.id
		RETURNING o.*
	)
	SELECT c.id, c.attempts, ch.public_id,
	       (SELECT coalesce(CASE WHEN ch.kind = 'whatsapp' AND i.external_id !~ '^[0-9]+$'
				     THEN ltrim(i.phone, '+') END, i.external_id)
		FROM contact_identities i
		WHERE i.contact_id = v.contact_id AND i.channel_id = v.channel_id
		ORDER BY i.updated_at DESC, i.id DESC LIMIT 1),
	       m.type, m.text, m.reply_to_external_id, hub_window_open(v, ch.kind)
	FROM claimed c
	JOIN messages m ON m.id = c.message_id
	JOIN conversations v ON v.id = c.conversation_id
	JOIN channels ch ON ch.id = c.channel_id
	ORDER BY c.id;
END;
$$;

-- When the sender should look again without a NOTIFY: the earliest due time of a pending
-- row that could be claimed (the oldest undelivered of its conversation: one behind a row
-- being sent goes when that one ends, claimed by the instance that ends it) or end of a
-- lease; NULL when the outbox holds nothing undelivered.
CREATE FUNCTION hub_outbox_next() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
	SELECT least((SELECT min(o.next_attempt_at) FROM outbox o
		      WHERE o.status = 'pending' AND NOT hub_outbox_behind(o)),
		     (SELECT min(lease_until) FROM outbox WHERE status = 'sending'))
$$;

-- Appends events (hub_stream_append, 0004) and returns them as the rows a worker publishes
-- (the outbox, the profile lookups): (tenant, event_id, event, data). Call it last in a
-- transaction.
CREATE FUNCTION hub_append_events(p_tenant text, p_types text[], p_datas jsonb[])
RETURNS TABLE (tenant text, event_id bigint, event text, data text)
LANGUAGE sql AS $$
	SELECT p_tenant, a.event_id, p_types[a.ord::int], p_datas[a.ord::int]::text
	FROM hub_stream_append(p_tenant, p_types, p_datas) a ORDER BY a.ord
$$;

-- One result of the sender applied to its row; the events it makes are returned, for the
-- caller to append last. r: {"id":N,"sent":"<platform id>"} the platform accepted it (the
-- message takes the id and what arrived for it already, hub_message_sent; "" when the
-- answer had none: sent, no status can follow); {"id":N,"retry":MS,"code":..,"error":..}
-- not this time: pending again, due in MS, the reason kept for the operator (the message
-- stays queued for the agents); {"id":N,"failed":true,"code":..,"error":..} failed for
-- good: the message too, with the reason the agents see. Nothing when the row is no longer
-- this sender's (its lease ran out and another took it, or it was erased).
CREATE FUNCTION hub_outbox_result(r jsonb, OUT o_tenant text, OUT o_types text[],
				  OUT o_datas jsonb[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_row outbox;
	v_msg messages;
	v_sent record;
BEGIN
	o_types := '{}';
	o_datas := '{}';
	SELECT o.* INTO v_row FROM outbox o
	WHERE o.id = (r->>'id')::bigint AND o.status = 'sending' FOR UPDATE;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	o_tenant := v_row.tenant_id;
	IF r ? 'retry' THEN
		UPDATE outbox o SET status = 'pending', lease_until = NULL,
			next_attempt_at = now() + make_interval(secs => (r->>'retry')::bigint / 1000.0),
			error_code = r->>'code', last_error = r->>'error', updated_at = now()
		WHERE o.id = v_row.id;
		RETURN;
	END IF;
	IF r ? 'failed' THEN
		UPDATE outbox o SET status = 'failed', lease_until = NULL, error_code = r->>'code',
			last_error = r->>'error', updated_at = now()
		WHERE o.id = v_row.id;
		UPDATE messages m SET status = 'failed', error = r->>'error'
		WHERE m.id = v_row.message_id AND m.status <> 'failed' RETURNING m.* INTO v_msg;
	ELSE
		UPDATE outbox o SET status = 'done', lease_until = NULL, last_error = NULL,
			error_code = NULL, updated_at = now()
		WHERE o.id = v_row.id;
		IF coalesce(r->>'sent', '') <> '' THEN
			SELECT * INTO v_sent FROM hub_message_sent(v_row.message_id, r->>'sent');
			o_types := v_sent.o_types;
			o_datas := v_sent.o_datas;
			RETURN;
		END IF;
		UPDATE messages m SET status = 'sent' WHERE m.id = v_row.message_id
		AND hub_status_rank(m.status) < 1 RETURNING m.* INTO v_msg;
	END IF;
	IF v_msg.id IS NOT NULL THEN
		o_types := ARRAY['message.status'];
		o_datas := ARRAY[hub_status_json(v_msg)];
	END IF;
END;
$$;

-- The sender's results of a moment (a JSON array of hub_outbox_result's objects) in one
-- transaction: group commit, one COMMIT and one append to each tenant's log for them all.
-- Rows are taken in id order and tenants' logs in tenant order, so that two instances
-- recording at once never deadlock. Returns the events to publish.
CREATE FUNCTION hub_outbox_record(p_results jsonb)
RETURNS TABLE (tenant text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_e jsonb;
	v_res record;
	v_tenants text[] := '{}';
	v_types text[] := '{}';
	v_datas jsonb[] := '{}';
	v_tenant text;
BEGIN
	FOR v_e IN SELECT e FROM jsonb_array_elements(p_results) e ORDER BY (e->>'id')::bigint
	LOOP
		SELECT * INTO v_res FROM hub_outbox_result(v_e);
		IF cardinality(v_res.o_types) > 0 THEN
			v_tenants := v_tenants || array_fill(v_res.o_tenant,
						ARRAY[cardinality(v_res.o_types)]);
			v_types := v_types || v_res.o_types;
			v_datas := v_datas || v_res.o_datas;
		END IF;
	END LOOP;
	FOR v_tenant IN SELECT DISTINCT t FROM unnest(v_tenants) t ORDER BY 1 LOOP
		RETURN QUERY SELECT * FROM hub_append_events(v_tenant,
			ARRAY(SELECT u.ty FROM unnest(v_tenants, v_types) WITH ORDINALITY u(te, ty, n)
			      WHERE u.te = v_tenant ORDER BY u.n),
			ARRAY(SELECT u.da FROM unnest(v_tenants, v_datas) WITH ORDINALITY u(te, da, n)
			      WHERE u.te = v_tenant ORDER BY u.n));
	END LOOP;
END;
$$;

-- A claimed row whose text is over its platform's limit, cut by the sender into p_parts (a
-- JSON array of strings, in order): the message keeps the first part (message.updated),
-- each further part becomes a message and an outbox row of its own, queued right behind
-- it and before anything written after it (message.created), so every bubble the customer gets is one message here, with its
-- own platform id, statuses and echo. Returns the events to publish.
CREATE FUNCTION hub_outbox_split(p_outbox bigint, p_parts jsonb)
RETURNS TABLE (tenant text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_row outbox;
	v_msg messages;
	v_part messages;
	v_conv conversations;
	v_ch channels;
	v_types text[] := '{}';
	v_datas jsonb[] := '{}';
	v_text text;
BEGIN
	SELECT o.* INTO v_row FROM outbox o WHERE o.id = p_outbox AND o.status = 'sending';
	IF NOT FOUND OR jsonb_array_length(p_parts) < 2 THEN
		RETURN;
	END IF;
	SELECT v.* INTO STRICT v_conv FROM conversations v WHERE v.id = v_row.conversation_id
	FOR UPDATE;
	SELECT c.* INTO STRICT v_ch FROM channels c WHERE c.id = v_row.channel_id;
	UPDATE messages m SET text = p_parts->>0 WHERE m.id = v_row.message_id
	RETURNING m.* INTO v_msg;
	v_types := v_types || 'message.updated'::text;
	v_datas := v_datas || hub_message_updated(v_msg, v_ch);
	FOR v_text IN SELECT e FROM jsonb_array_elements_text(p_parts) WITH ORDINALITY AS a(e, n)
		      WHERE n > 1 ORDER BY n
	LOOP
		INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, direction,
					   author, type, text, status)
		VALUES (v_msg.tenant_id, v_msg.conversation_id, v_msg.channel_id, 'out',
			v_msg.author, 'text', v_text, 'queued')
		RETURNING m.* INTO v_part;
		INSERT INTO outbox (tenant_id, message_id, channel_id, conversation_id, ord)
		VALUES (v_part.tenant_id, v_part.id, v_part.channel_id, v_part.conversation_id,
			coalesce(v_row.ord, v_row.id));
		v_types := v_types || 'message.created'::text;
		v_datas := v_datas || hub_message_json(v_part, v_conv.contact_id, v_ch.public_id);
	END LOOP;
	RETURN QUERY SELECT * FROM hub_append_events(v_row.tenant_id, v_types, v_datas);
END;
$$;

-- retry: a failed outgoing message of v_conv (locked by hub_cmd) queued again, as new:
-- message.status queued, the outbox row pending with its attempts reset, the senders woken.
CREATE FUNCTION hub_cmd_retry(v_conv conversations, p_message text)
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_msg messages;
	v_kind text;
BEGIN
	SELECT m.* INTO v_msg FROM messages m
	WHERE m.id = p_message::bigint AND m.conversation_id = v_conv.id AND m.direction = 'out'
	      AND EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id)
	FOR UPDATE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT 'error'::text, NULL::bigint, 'not_found'::text,
				    'no such message of the hub in this conversation'::text;
		RETURN;
	END IF;
	IF v_msg.status <> 'failed' THEN
		RETURN QUERY SELECT 'error'::text, NULL::bigint, 'bad_request'::text,
				    'only a failed message can be sent again'::text;
		RETURN;
	END IF;
	SELECT c.kind INTO STRICT v_kind FROM channels c WHERE c.id = v_conv.channel_id;
	IF NOT hub_window_open(v_conv, v_kind) THEN
		RETURN QUERY SELECT * FROM hub_cmd_window_closed(v_kind);
		RETURN;
	END IF;
	UPDATE messages m SET status = 'queued', error = NULL WHERE m.id = v_msg.id
	RETURNING m.* INTO v_msg;
	UPDATE outbox o SET status = 'pending', attempts = 0, next_attempt_at = now(),
		lease_until = NULL, last_error = NULL, error_code = NULL, updated_at = now()
	WHERE o.message_id = v_msg.id;
	PERFORM pg_notify('hub_outbox', '');
	RETURN QUERY SELECT * FROM hub_emit_events(v_conv.tenant_id, ARRAY['message.status'],
						   ARRAY[hub_status_json(v_msg)]);
	RETURN QUERY SELECT * FROM hub_cmd_ack(jsonb_build_object('message_id', v_msg.id));
END;
$$;

-- hub_cmd (0005) with retry (p_value: the message id) and send's quote (p_reply_to).
DROP FUNCTION hub_cmd(text, text, boolean, bigint, text, text, text);
CREATE FUNCTION hub_cmd(p_tenant text, p_user text, p_admin boolean, p_conversation bigint,
			p_cmd text, p_value text, p_client_id text, p_reply_to bigint)
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_conv conversations;
	v_channel text;
BEGIN
	SELECT v.* INTO v_conv FROM conversations v
	WHERE v.id = p_conversation AND v.tenant_id = p_tenant FOR UPDATE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT * FROM hub_cmd_not_found();
		RETURN;
	END IF;
	SELECT c.public_id INTO STRICT v_channel FROM channels c WHERE c.id = v_conv.channel_id;
	IF p_cmd = 'send' THEN
		RETURN QUERY SELECT * FROM hub_cmd_send(v_conv, v_channel, p_user, p_value,
							p_client_id, p_reply_to);
	ELSIF p_cmd = 'retry' THEN
		RETURN QUERY SELECT * FROM hub_cmd_retry(v_conv, p_value);
	ELSE
		RETURN QUERY SELECT * FROM hub_cmd_update(v_conv, v_channel, p_user, p_admin,
							  p_cmd, p_value);
	END IF;
END;
$$;
