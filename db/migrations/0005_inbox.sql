-- db/migrations/0005_inbox.sql - the live inbox's commands (send, read, assign, mode) and
-- the outbox rows that queue agents' messages for delivery.
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).
-- Every command is one function call in autocommit (one transaction) and never raises for
-- what the caller got wrong: it returns rows (kind, event_id, event, data):
--   ('error', NULL, code, message)  nothing changed; code: not_found|forbidden|bad_request
--   ('event', id, name, data JSON)  one appended event, in id order
--   ('ack', NULL, NULL, JSON object) the fields the ack carries, always the last row
-- Lock order (as in 0001): conversation -> message -> outbox -> tenant_stream (last).

-- send's idempotency key: the same client_id in one conversation is one message.
ALTER TABLE messages ADD COLUMN client_id text;
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_id)
	WHERE client_id IS NOT NULL;

-- One row per outgoing message to deliver (the sender comes in a later issue). Claimed
-- with FOR UPDATE SKIP LOCKED by whichever instance delivers.
CREATE TABLE outbox (
	id bigserial PRIMARY KEY,
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	message_id bigint NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
	channel_id bigint NOT NULL REFERENCES channels (id),
	status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'done',
		'failed')),
	attempts integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	last_error text,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';

-- Appends events (types[i], datas[i]) to the tenant's log (hub_stream_append, 0004) and
-- returns them as command rows. Call it last in a transaction: the stream row stays locked
-- to COMMIT.
CREATE FUNCTION hub_emit_events(p_tenant text, p_types text[], p_datas jsonb[])
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE sql AS $$
	SELECT 'event'::text, a.event_id, p_types[a.ord::int], p_datas[a.ord::int]::text
	FROM hub_stream_append(p_tenant, p_types, p_datas) a ORDER BY a.ord
$$;

CREATE FUNCTION hub_cmd_not_found() RETURNS TABLE (kind text, event_id bigint, event text,
						   data text)
LANGUAGE sql IMMUTABLE AS $$
	SELECT 'error'::text, NULL::bigint, 'not_found'::text, 'no such conversation'::text
$$;

CREATE FUNCTION hub_cmd_ack(p_fields jsonb) RETURNS TABLE (kind text, event_id bigint,
							   event text, data text)
LANGUAGE sql IMMUTABLE AS $$
	SELECT 'ack'::text, NULL::bigint, NULL::text, p_fields::text
$$;

-- send: an outgoing text message by agent p_user in v_conv (locked by hub_cmd), queued in
-- the outbox; the conversation switches to human mode. The same p_client_id again in the
-- conversation returns the first message's id and changes nothing (also under a race: the
-- conversation lock orders them, and each statement here sees what committed before it).
CREATE FUNCTION hub_cmd_send(v_conv conversations, v_channel text, p_user text, p_text text,
			     p_client_id text)
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_msg messages;
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
	INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, direction, author,
				   type, text, status, client_id)
	VALUES (v_conv.tenant_id, v_conv.id, v_conv.channel_id, 'out', 'agent', 'text', p_text,
		'queued', p_client_id)
	RETURNING m.* INTO v_msg;
	INSERT INTO outbox (tenant_id, message_id, channel_id)
	VALUES (v_conv.tenant_id, v_msg.id, v_conv.channel_id);
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

-- read, assign, mode: one change of v_conv (locked by hub_cmd). p_set names it ('unread',
-- 'assignee', 'mode'), p_value is the new value. conversation.updated only when something
-- changed; the ack always carries the conversation as it is now.
-- assign: an agent (p_admin false) may take a conversation for themselves (p_value =
-- p_user), and release it (NULL) only when it is theirs or nobody's; anything else is
-- admin-only (forbidden).
CREATE FUNCTION hub_cmd_update(v_conv conversations, v_channel text, p_user text,
			       p_admin boolean, p_set text, p_value text)
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_new conversations := v_conv;
BEGIN
	IF p_set = 'assignee' AND NOT p_admin AND p_value IS DISTINCT FROM p_user
	   AND NOT (p_value IS NULL AND coalesce(v_conv.assignee, p_user) = p_user) THEN
		RETURN QUERY SELECT 'error'::text, NULL::bigint, 'forbidden'::text,
			CASE WHEN p_value IS NULL
			THEN 'only an admin may unassign a conversation of another user'
			ELSE 'only an admin may assign a conversation to another user' END;
		RETURN;
	END IF;
	CASE p_set
	WHEN 'unread' THEN v_new.unread := 0;
	WHEN 'assignee' THEN v_new.assignee := p_value;
	WHEN 'mode' THEN v_new.mode := p_value;
	ELSE
		RETURN QUERY SELECT 'error'::text, NULL::bigint, 'bad_request'::text,
			'unknown field'::text;
		RETURN;
	END CASE;
	IF v_new IS DISTINCT FROM v_conv THEN
		UPDATE conversations v
		SET unread = v_new.unread, assignee = v_new.assignee, mode = v_new.mode,
		    updated_at = now()
		WHERE v.id = v_conv.id RETURNING v.* INTO v_new;
		RETURN QUERY SELECT * FROM hub_emit_events(v_conv.tenant_id,
			ARRAY['conversation.updated'],
			ARRAY[hub_conversation_json(v_new, v_channel)]);
	END IF;
	RETURN QUERY SELECT * FROM hub_cmd_ack(jsonb_build_object(
		'conversation', hub_conversation_json(v_new, v_channel)));
END;
$$;

-- A command on one conversation of the tenant: 'send' (p_value the text, p_client_id its
-- idempotency key) or a change ('unread', 'assignee', 'mode': p_value the new value). The
-- conversation is locked to COMMIT; one of another tenant is "not found" (its existence is
-- never revealed).
CREATE FUNCTION hub_cmd(p_tenant text, p_user text, p_admin boolean, p_conversation bigint,
			p_cmd text, p_value text, p_client_id text)
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
							p_client_id);
	ELSE
		RETURN QUERY SELECT * FROM hub_cmd_update(v_conv, v_channel, p_user, p_admin,
							  p_cmd, p_value);
	END IF;
END;
$$;

-- typing: only checks that the conversation is the tenant's (nothing is written).
CREATE FUNCTION hub_cmd_typing(p_tenant text, p_conversation bigint)
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE sql STABLE AS $$
	SELECT * FROM hub_cmd_ack('{}'::jsonb)
	WHERE EXISTS (SELECT 1 FROM conversations v
		      WHERE v.id = p_conversation AND v.tenant_id = p_tenant)
	UNION ALL
	SELECT * FROM hub_cmd_not_found()
	WHERE NOT EXISTS (SELECT 1 FROM conversations v
			  WHERE v.id = p_conversation AND v.tenant_id = p_tenant)
$$;
