-- db/migrations/0004_ingest.sql - every inbound event kind (statuses, edits, deletions,
-- reactions, echoes) stored exactly once, and group commit: hub_ingest_batch() stores the
-- items of many webhooks in one transaction (all in one subtransaction, else each item in
-- a subtransaction of its own).
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).
-- Lock order as in 0001: contact -> conversation -> message -> tenant_stream (last).
--
-- Every per-kind function below returns the result of the item ('stored', 'duplicate',
-- 'stale', 'unknown', 'ignored') and the events it produces (o_types, o_datas), without
-- event ids (edits, deletions and reactions: hub_ingest_item makes their one event). The
-- caller appends the events to the tenant's log as the last step of its transaction
-- (hub_stream_append), so the tenant_stream row lock is held only from there to COMMIT.

ALTER TABLE messages
	ADD COLUMN edited_at timestamptz,   -- platform time of the latest edit applied
	ADD COLUMN deleted_at timestamptz;  -- deleted or revoked by its author; the row stays
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check CHECK (status IN ('received',
	'queued', 'sent', 'delivered', 'read', 'played', 'failed'));

-- Every status webhook once, also for messages the hub does not know (yet): the dedupe
-- key (channel, external_id, status) of PLATFORMS.md rule 5, and the history.
CREATE TABLE message_statuses (
	id bigserial PRIMARY KEY,
	channel_id bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
	external_id text NOT NULL,
	status text NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'played', 'failed')),
	error text,
	platform_ts timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (channel_id, external_id, status)
);

-- Each edit: its text and the text before it (previous_text; NULL, not known, for an edit
-- that arrived after a newer one). edit_key: the platform's key of the edit (Telegram
-- edit_date, Instagram num_edit, WhatsApp the edit's own message id).
CREATE TABLE message_edits (
	id bigserial PRIMARY KEY,
	message_id bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	edit_key text NOT NULL,
	previous_text text,
	text text,
	platform_ts timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (message_id, edit_key)
);

-- The current reaction of each reactor to a message; emoji NULL once removed (the row stays
-- so that an older reaction arriving late does not come back).
CREATE TABLE message_reactions (
	message_id bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	reactor_external_id text NOT NULL,
	author text NOT NULL CHECK (author IN ('contact', 'agent')),
	emoji text,
	platform_ts timestamptz,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (message_id, reactor_external_id)
);

-- Keys of events that have no row of their own to be unique in: Telegram (bot, update_id)
-- ('update'), reactions ('reaction': WhatsApp the reaction's message id, Instagram
-- (mid, sender, action, timestamp), Telegram (user, date, emoji)).
CREATE TABLE ingest_keys (
	channel_id bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
	kind text NOT NULL,
	key text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (channel_id, kind, key)
);

-- 0001 declared hub_iso IMMUTABLE over to_char, which is STABLE: such a function is never
-- inlined, and each of its calls costs a function call (five per message event). STABLE,
-- it is inlined.
CREATE OR REPLACE FUNCTION hub_iso(p timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT to_char(p AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- Milliseconds since the epoch to a timestamp; NULL for 0, negatives and past the year 9999.
-- (STABLE like the timestamptz + interval it uses, so that it is inlined.)
CREATE FUNCTION hub_ms_ts(p_ms bigint) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN p_ms BETWEEN 1 AND 253402300799999
		THEN timestamptz 'epoch' + p_ms * interval '1 millisecond' END
$$;

-- The message object of every message.* event (DESIGN.md), with edits, deletion, quoted
-- reply and its reactions (a JSON array).
CREATE FUNCTION hub_message_obj(m messages, p_contact bigint, p_channel text,
				p_reactions jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', m.id, 'conversation_id', m.conversation_id,
		'contact_id', p_contact, 'channel_id', p_channel, 'direction', m.direction,
		'author', m.author, 'type', m.type, 'text', m.text, 'status', m.status,
		'error', m.error, 'platform_ts', hub_iso(m.platform_ts),
		'created_at', hub_iso(m.created_at), 'edited_at', hub_iso(m.edited_at),
		'deleted_at', hub_iso(m.deleted_at), 'reply_to_external_id', m.reply_to_external_id,
		'reactions', p_reactions)
$$;

-- The message object with its current reactions [{"emoji","author"}] in the order they
-- were given. PL/pgSQL, not SQL: the reactions query makes a SQL function uninlinable,
-- and an uninlined SQL function is planned again on every call.
CREATE OR REPLACE FUNCTION hub_message_json(m messages, p_contact bigint, p_channel text)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_reactions jsonb;
BEGIN
	SELECT jsonb_agg(jsonb_build_object('emoji', r.emoji, 'author', r.author)
			 ORDER BY r.updated_at, r.reactor_external_id)
	INTO v_reactions
	FROM message_reactions r WHERE r.message_id = m.id AND r.emoji IS NOT NULL;
	RETURN hub_message_obj(m, p_contact, p_channel, coalesce(v_reactions, '[]'::jsonb));
END;
$$;

-- The message of a channel by its platform id, locked to COMMIT (edit, deletion, reaction);
-- NULL fields when it is not stored.
CREATE FUNCTION hub_message_lock(p_ch channels, p_external_id text) RETURNS messages
LANGUAGE sql AS $$
	SELECT m.* FROM messages m
	WHERE m.channel_id = p_ch.id AND m.external_id = p_external_id FOR UPDATE
$$;

-- Serializes what concerns one outgoing message's platform id: its echo, its statuses and
-- hub_message_sent, which may run at the same time (PLATFORMS.md: "the echo or status may
-- arrive before the response does"); each then sees what the other committed (without it,
-- a status read before the send's COMMIT was lost, and an echo committed after the send's
-- DELETE made it fail). A transaction-level advisory lock, held to COMMIT.
CREATE FUNCTION hub_outbound_lock(p_channel bigint, p_external_id text) RETURNS void
LANGUAGE sql AS $$
	SELECT pg_advisory_xact_lock(hashtextextended(p_channel || ':' || p_external_id, 0))
$$;

-- The message's event after a change (edit, deletion, reaction).
CREATE FUNCTION hub_message_updated(m messages, p_ch channels) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT hub_message_json(m, (SELECT v.contact_id FROM conversations v
				    WHERE v.id = m.conversation_id), p_ch.public_id)
$$;

-- Contact resolution (DESIGN.md): the identity, else a contact with the same phone, else a
-- new contact; profile-name changes; the same-name suggestion; and a phone learnt by a
-- known identity (a Telegram contact shared by its own sender) that belongs to another
-- contact merges this identity's contact into that one (hub_merge_contacts).
-- Returns the contact and the events (contact.updated, contact.merged,
-- contact.merge_suggested, conversation.updated of moved conversations).
CREATE FUNCTION hub_resolve_contact(p_ch channels, p_sender text, p_phone text,
	p_profile_name text, p_username text,
	OUT o_contact contacts, OUT o_types text[], OUT o_datas jsonb[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_phone text := CASE WHEN p_phone ~ '^\+[1-9][0-9]{6,14}$' THEN p_phone END;
	v_name text := hub_clean_name(p_profile_name);
	v_username text := nullif(p_username, '');
	v_ident contact_identities;
	v_contact contacts;
	v_new_contact boolean := false;
	v_changed boolean := false;
	v_renamed boolean := false;
	v_other bigint;
	v_merge contacts;
	v_res record;
BEGIN
	o_types := '{}';
	o_datas := '{}';
	SELECT i.* INTO v_ident FROM contact_identities i
	WHERE i.channel_id = p_ch.id AND i.external_id = p_sender;
	IF NOT FOUND THEN
		IF v_phone IS NOT NULL THEN
			SELECT c.* INTO v_contact FROM contacts c
			WHERE c.tenant_id = p_ch.tenant_id AND c.phone = v_phone
			ORDER BY c.id LIMIT 1;
		END IF;
		IF v_contact.id IS NULL THEN
			INSERT INTO contacts AS c (tenant_id, display_name, phone)
			VALUES (p_ch.tenant_id, coalesce(v_name, v_username), v_phone)
			RETURNING c.* INTO v_contact;
			v_new_contact := true;
		ELSIF v_contact.display_name IS NULL AND v_name IS NOT NULL
		      AND NOT v_contact.name_set_by_agent THEN
			UPDATE contacts c SET display_name = v_name, updated_at = now()
			WHERE c.id = v_contact.id RETURNING c.* INTO v_contact;
			v_renamed := true;
		END IF;
		INSERT INTO contact_identities AS i (contact_id, channel_id, external_id, phone,
						     profile_name, username)
		VALUES (v_contact.id, p_ch.id, p_sender, v_phone, v_name, v_username)
		ON CONFLICT (channel_id, external_id) DO NOTHING
		RETURNING i.* INTO v_ident;
		IF NOT FOUND THEN
			-- A concurrent first event of this sender committed the identity first
			-- (ON CONFLICT waited for it): use its contact instead.
			IF v_new_contact THEN
				DELETE FROM contacts c WHERE c.id = v_contact.id;
			END IF;
			v_new_contact := false;
			v_renamed := false;
			SELECT i.* INTO STRICT v_ident FROM contact_identities i
			WHERE i.channel_id = p_ch.id AND i.external_id = p_sender;
			SELECT c.* INTO STRICT v_contact FROM contacts c
			WHERE c.id = v_ident.contact_id;
		END IF;
	ELSE
		SELECT c.* INTO STRICT v_contact FROM contacts c WHERE c.id = v_ident.contact_id;
		-- A phone this contact lacks that another contact has: one person, merge.
		IF v_phone IS NOT NULL AND v_contact.phone IS NULL THEN
			SELECT c.* INTO v_merge FROM contacts c
			WHERE c.tenant_id = p_ch.tenant_id AND c.phone = v_phone
			      AND c.id <> v_contact.id
			ORDER BY c.id LIMIT 1;
			IF v_merge.id IS NOT NULL THEN
				v_res := hub_merge_contacts(v_merge.id, v_contact.id);
				o_types := v_res.o_types;
				o_datas := v_res.o_datas;
				SELECT c.* INTO STRICT v_contact FROM contacts c
				WHERE c.id = v_merge.id;
				v_changed := true;
			END IF;
		END IF;
		-- A changed profile name renames the contact, unless an agent named it.
		IF v_name IS NOT NULL AND NOT v_contact.name_set_by_agent
		   AND (v_name IS DISTINCT FROM v_ident.profile_name
			OR v_contact.display_name IS NULL)
		   AND v_name IS DISTINCT FROM v_contact.display_name THEN
			v_renamed := true;
		END IF;
		IF v_renamed OR (v_phone IS NOT NULL AND v_contact.phone IS NULL) THEN
			UPDATE contacts c
			SET display_name = CASE WHEN v_renamed THEN v_name ELSE c.display_name END,
			    phone = coalesce(c.phone, v_phone), updated_at = now()
			WHERE c.id = v_contact.id RETURNING c.* INTO v_contact;
			v_changed := true;
		END IF;
		IF (v_name IS NOT NULL AND v_name IS DISTINCT FROM v_ident.profile_name)
		   OR (v_username IS NOT NULL AND v_username IS DISTINCT FROM v_ident.username)
		   OR (v_phone IS NOT NULL AND v_phone IS DISTINCT FROM v_ident.phone) THEN
			UPDATE contact_identities i
			SET profile_name = coalesce(v_name, i.profile_name),
			    username = coalesce(v_username, i.username),
			    phone = coalesce(v_phone, i.phone), updated_at = now()
			WHERE i.id = v_ident.id;
		END IF;
	END IF;
	v_changed := v_changed OR v_new_contact OR v_renamed;

	-- The same name as another contact of the tenant: suggest, never merge.
	IF (v_new_contact OR v_renamed) AND v_name IS NOT NULL
	   AND lower(v_contact.display_name) = lower(v_name) THEN
		SELECT c.id INTO v_other FROM contacts c
		WHERE c.tenant_id = p_ch.tenant_id AND lower(c.display_name) = lower(v_name)
		      AND c.id <> v_contact.id
		ORDER BY c.id LIMIT 1;
		IF v_other IS NOT NULL AND NOT EXISTS (
			SELECT 1 FROM merge_suggestions s
			WHERE s.contact_id = v_other AND s.other_contact_id = v_contact.id) THEN
			INSERT INTO merge_suggestions AS s (tenant_id, contact_id, other_contact_id,
							   reason)
			VALUES (p_ch.tenant_id, v_contact.id, v_other, 'same_name')
			ON CONFLICT (contact_id, other_contact_id) DO NOTHING;
			IF NOT FOUND THEN
				v_other := NULL;
			END IF;
		ELSE
			v_other := NULL;
		END IF;
	END IF;

	IF v_changed THEN
		o_types := o_types || 'contact.updated'::text;
		o_datas := o_datas || hub_contact_json(v_contact);
	END IF;
	IF v_other IS NOT NULL THEN
		o_types := o_types || 'contact.merge_suggested'::text;
		o_datas := o_datas || jsonb_build_object('contact_id', v_contact.id,
			'other_contact_id', v_other, 'reason', 'same_name');
	END IF;
	o_contact := v_contact;
END;
$$;

-- Merges contact p_from into p_into (one person: the same phone, e.g. a Telegram contact
-- shared by its sender and a WhatsApp contact): p_from's identities and conversations move
-- to p_into (an open conversation of p_from on a channel where p_into has one open too is
-- resolved first: one open conversation per contact and channel), p_into takes p_from's
-- name when it has none, p_from's merge suggestions go, and p_from is deleted. Events:
-- contact.merged {contact_id, merged_contact_id, reason}, then conversation.updated of
-- every moved conversation (contact.updated of p_into is the caller's).
CREATE FUNCTION hub_merge_contacts(p_into bigint, p_from bigint,
	OUT o_types text[], OUT o_datas jsonb[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_from contacts;
	v_conv conversations;
BEGIN
	o_types := ARRAY['contact.merged'];
	o_datas := ARRAY[jsonb_build_object('contact_id', p_into, 'merged_contact_id', p_from,
					    'reason', 'phone')];
	SELECT c.* INTO STRICT v_from FROM contacts c WHERE c.id = p_from FOR UPDATE;
	UPDATE contacts c
	SET display_name = coalesce(c.display_name, v_from.display_name),
	    name_set_by_agent = c.name_set_by_agent OR
		(c.display_name IS NULL AND v_from.name_set_by_agent),
	    updated_at = now()
	WHERE c.id = p_into;
	UPDATE conversations v SET status = 'resolved', updated_at = now()
	WHERE v.contact_id = p_from AND v.status = 'open' AND EXISTS (
		SELECT 1 FROM conversations x
		WHERE x.contact_id = p_into AND x.channel_id = v.channel_id AND x.status = 'open');
	FOR v_conv IN
		UPDATE conversations v SET contact_id = p_into, updated_at = now()
		WHERE v.contact_id = p_from RETURNING v.*
	LOOP
		o_types := o_types || 'conversation.updated'::text;
		o_datas := o_datas || hub_conversation_json(v_conv,
			(SELECT c.public_id FROM channels c WHERE c.id = v_conv.channel_id));
	END LOOP;
	UPDATE contact_identities i SET contact_id = p_into, updated_at = now()
	WHERE i.contact_id = p_from;
	DELETE FROM merge_suggestions s WHERE p_from IN (s.contact_id, s.other_contact_id);
	DELETE FROM contacts c WHERE c.id = p_from;
END;
$$;

-- The conversation of a contact on a channel: the open one, else the latest one reopened
-- (p_reopen: a customer's message; an echo of the business's own message lands in the
-- latest conversation as it is), else a new open one. p_unread adds to its unread count.
CREATE FUNCTION hub_conversation_for(p_ch channels, p_contact bigint, p_reopen boolean,
	p_unread integer, OUT o_conv conversations, OUT o_event text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	-- Concurrent messages of one sender race here: each step is one atomic statement and
	-- the loop takes whatever the winner left.
	FOR attempt IN 1..3 LOOP
		UPDATE conversations v
		SET unread = v.unread + p_unread, last_message_at = now(), updated_at = now()
		WHERE v.contact_id = p_contact AND v.channel_id = p_ch.id AND v.status = 'open'
		RETURNING v.* INTO o_conv;
		IF FOUND THEN
			o_event := 'conversation.updated';
			RETURN;
		END IF;
		UPDATE conversations v
		SET status = CASE WHEN p_reopen THEN 'open' ELSE v.status END,
		    unread = v.unread + p_unread, last_message_at = now(), updated_at = now()
		WHERE v.id = (SELECT max(x.id) FROM conversations x
			      WHERE x.contact_id = p_contact AND x.channel_id = p_ch.id)
		      AND v.status = 'resolved'
		RETURNING v.* INTO o_conv;
		IF FOUND THEN
			o_event := 'conversation.updated';
			RETURN;
		END IF;
		INSERT INTO conversations AS v (tenant_id, contact_id, channel_id, last_message_at,
						unread)
		VALUES (p_ch.tenant_id, p_contact, p_ch.id, now(), p_unread)
		ON CONFLICT (contact_id, channel_id) WHERE status = 'open' DO NOTHING
		RETURNING v.* INTO o_conv;
		IF FOUND THEN
			o_event := 'conversation.created';
			RETURN;
		END IF;
	END LOOP;
	RAISE EXCEPTION 'conversation race, retry' USING ERRCODE = '40001';
END;
$$;

-- A customer's message (p_out false) or an echo of the business's own message sent from the
-- platform's app (p_out true: p_sender is then the customer it went to; stored as direction
-- 'out', author 'agent', status 'sent'). 'duplicate' when (channel, external_id) is stored,
-- which also reconciles an echo with the outbound row the hub created for it. A concurrent
-- identical call raises HB409: the caller's subtransaction undoes everything.
CREATE FUNCTION hub_ingest_message(p_ch channels, p_out boolean, p_external_id text,
	p_sender text, p_phone text, p_profile_name text, p_username text, p_type text,
	p_text text, p_raw_type text, p_reply_to text, p_ts_ms bigint,
	OUT o_result text, OUT o_types text[], OUT o_datas jsonb[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_type text := CASE WHEN p_type IN ('text', 'image', 'audio', 'video', 'document',
		'sticker', 'location', 'contact', 'reaction', 'interactive') THEN p_type
		ELSE 'unsupported' END;
	v_contact contacts;
	v_conv conversations;
	v_conv_event text;
	v_msg messages;
	v_res record;
BEGIN
	IF coalesce(p_external_id, '') = '' OR coalesce(p_sender, '') = '' THEN
		RAISE EXCEPTION 'message and sender ids are required' USING ERRCODE = '22004';
	END IF;
	o_result := 'duplicate';
	o_types := '{}';
	o_datas := '{}';
	IF p_out THEN
		PERFORM hub_outbound_lock(p_ch.id, p_external_id);
	END IF;
	PERFORM 1 FROM messages m WHERE m.channel_id = p_ch.id AND m.external_id = p_external_id;
	IF FOUND THEN
		RETURN;
	END IF;
	v_res := hub_resolve_contact(p_ch, p_sender, p_phone,
				     CASE WHEN NOT p_out THEN p_profile_name END,
				     CASE WHEN NOT p_out THEN p_username END);
	v_contact := v_res.o_contact;
	o_types := v_res.o_types;
	o_datas := v_res.o_datas;
	v_res := hub_conversation_for(p_ch, v_contact.id, NOT p_out,
				      CASE WHEN p_out THEN 0 ELSE 1 END);
	v_conv := v_res.o_conv;
	v_conv_event := v_res.o_event;
	INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, external_id, direction,
				   author, type, text, raw_type, reply_to_external_id, status,
				   platform_ts)
	VALUES (p_ch.tenant_id, v_conv.id, p_ch.id, p_external_id,
		CASE WHEN p_out THEN 'out' ELSE 'in' END,
		CASE WHEN p_out THEN 'agent' ELSE 'contact' END, v_type, p_text,
		nullif(p_raw_type, ''), nullif(p_reply_to, ''),
		CASE WHEN p_out THEN 'sent' ELSE 'received' END, hub_ms_ts(p_ts_ms))
	ON CONFLICT (channel_id, external_id) DO NOTHING
	RETURNING m.* INTO v_msg;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'duplicate message' USING ERRCODE = 'HB409';
	END IF;
	o_result := 'stored';
	o_types := o_types || v_conv_event || 'message.created'::text;
	o_datas := o_datas || hub_conversation_json(v_conv, p_ch.public_id)
			   || hub_message_obj(v_msg, v_contact.id, p_ch.public_id, '[]');  -- new
END;
$$;

-- The order of statuses (PLATFORMS.md rule 6); failed is final.
CREATE FUNCTION hub_status_rank(p_status text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE p_status WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2
		WHEN 'read' THEN 3 WHEN 'played' THEN 4 WHEN 'failed' THEN 5 ELSE -1 END
$$;

-- The data of a message.status event.
CREATE FUNCTION hub_status_json(m messages) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', m.id, 'conversation_id', m.conversation_id,
		'status', m.status, 'error', m.error)
$$;

-- A status of one of the business's messages: recorded once per (channel, external_id,
-- status) ('duplicate' else), applied when it moves the message forward ('stale' when it
-- does not: late, repeated, or after failed), 'unknown' for a message the hub does not have.
-- An Instagram read also reads the conversation's earlier outgoing messages.
-- failed keeps the platform's error. Event: message.status {id, conversation_id, status,
-- error}.
CREATE FUNCTION hub_ingest_status(p_ch channels, p_external_id text, p_status text,
	p_error text, p_ts_ms bigint, OUT o_result text, OUT o_types text[], OUT o_datas jsonb[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_msg messages;
BEGIN
	o_types := '{}';
	o_datas := '{}';
	IF coalesce(p_external_id, '') = '' OR hub_status_rank(p_status) < 1 THEN
		RAISE EXCEPTION 'a message id and a known status are required'
			USING ERRCODE = '22023';
	END IF;
	PERFORM hub_outbound_lock(p_ch.id, p_external_id);
	INSERT INTO message_statuses (channel_id, external_id, status, error, platform_ts)
	VALUES (p_ch.id, p_external_id, p_status, nullif(p_error, ''), hub_ms_ts(p_ts_ms))
	ON CONFLICT (channel_id, external_id, status) DO NOTHING;
	IF NOT FOUND THEN
		o_result := 'duplicate';
		RETURN;
	END IF;
	SELECT m.* INTO v_msg FROM messages m
	WHERE m.channel_id = p_ch.id AND m.external_id = p_external_id AND m.direction = 'out'
	FOR UPDATE;
	IF NOT FOUND THEN
		o_result := 'unknown';
		RETURN;
	END IF;
	IF v_msg.status = 'failed'
	   OR hub_status_rank(p_status) <= hub_status_rank(v_msg.status) THEN
		o_result := 'stale';
		RETURN;
	END IF;
	o_result := 'stored';
	-- Instagram's read names the last message read: the earlier ones are read too.
	FOR v_msg IN
		UPDATE messages m
		SET status = p_status,
		    error = CASE WHEN p_status = 'failed' THEN nullif(p_error, '') ELSE m.error END
		WHERE m.id = v_msg.id
		   OR (p_ch.kind = 'instagram' AND p_status = 'read'
		       AND m.conversation_id = v_msg.conversation_id AND m.direction = 'out'
		       AND m.id < v_msg.id AND hub_status_rank(m.status) BETWEEN 1 AND 2)
		RETURNING m.*
	LOOP
		o_types := o_types || 'message.status'::text;
		o_datas := o_datas || hub_status_json(v_msg);
	END LOOP;
END;
$$;

-- Edits, deletions and reactions change a stored message: hub_ingest_item locks it
-- (hub_message_lock; 'unknown' when it is not stored), one of the three functions below
-- applies the change and returns its result with the message as it is now, and a 'stored'
-- change is one message.updated event.

-- An edit of a stored message (a customer's, or the business's own from the platform's
-- app): the previous text goes to message_edits, once per (message, edit key); the newest
-- edit by platform time wins ('stale' for an older one arriving late: kept as history).
CREATE FUNCTION hub_ingest_edit(INOUT p_msg messages, p_key text, p_text text,
	p_ts_ms bigint, OUT o_result text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_ts timestamptz := coalesce(hub_ms_ts(p_ts_ms), now());
BEGIN
	INSERT INTO message_edits (message_id, edit_key, previous_text, text, platform_ts)
	VALUES (p_msg.id, coalesce(nullif(p_key, ''), p_ts_ms::text, md5(coalesce(p_text, ''))),
		CASE WHEN p_msg.edited_at > v_ts THEN NULL ELSE p_msg.text END, p_text,
		hub_ms_ts(p_ts_ms))
	ON CONFLICT (message_id, edit_key) DO NOTHING;
	IF NOT FOUND THEN
		o_result := 'duplicate';
	ELSIF p_msg.edited_at > v_ts THEN
		o_result := 'stale';
	ELSE
		UPDATE messages m SET text = p_text, edited_at = v_ts
		WHERE m.id = p_msg.id RETURNING m.* INTO p_msg;
		o_result := 'stored';
	END IF;
END;
$$;

-- A deletion (Instagram is_deleted, WhatsApp revoke): the message is marked deleted and
-- kept, text included (the history; agents see deleted_at).
CREATE FUNCTION hub_ingest_delete(INOUT p_msg messages, p_ts_ms bigint, OUT o_result text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	IF p_msg.deleted_at IS NOT NULL THEN
		o_result := 'duplicate';
		RETURN;
	END IF;
	UPDATE messages m SET deleted_at = coalesce(hub_ms_ts(p_ts_ms), now())
	WHERE m.id = p_msg.id RETURNING m.* INTO p_msg;
	o_result := 'stored';
END;
$$;

-- A reaction to a stored message, or its removal (p_emoji NULL): once per key
-- (ingest_keys 'reaction'), and the newest per reactor by platform time ('stale' for an
-- older one). p_author: 'contact', or 'agent' for the business's own (echo).
CREATE FUNCTION hub_ingest_reaction(p_ch channels, INOUT p_msg messages, p_reactor text,
	p_author text, p_emoji text, p_key text, p_ts_ms bigint, OUT o_result text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	IF coalesce(p_reactor, '') = '' THEN
		RAISE EXCEPTION 'a reactor is required' USING ERRCODE = '22004';
	END IF;
	INSERT INTO ingest_keys (channel_id, kind, key)
	VALUES (p_ch.id, 'reaction', coalesce(nullif(p_key, ''),
		concat_ws(':', p_msg.external_id, p_reactor, p_ts_ms, p_emoji)))
	ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		o_result := 'duplicate';
		RETURN;
	END IF;
	INSERT INTO message_reactions AS r (message_id, reactor_external_id, author, emoji,
					    platform_ts)
	VALUES (p_msg.id, p_reactor, p_author, nullif(p_emoji, ''),
		coalesce(hub_ms_ts(p_ts_ms), now()))
	ON CONFLICT (message_id, reactor_external_id) DO UPDATE
		SET emoji = excluded.emoji, platform_ts = excluded.platform_ts, updated_at = now()
		WHERE r.platform_ts <= excluded.platform_ts;
	o_result := CASE WHEN FOUND THEN 'stored' ELSE 'stale' END;
END;
$$;

-- Appends events to a tenant's log: the tenant_stream row lock is taken here and held to
-- COMMIT, so call it last. Returns the ids in the order of the arrays.
CREATE FUNCTION hub_stream_append(p_tenant text, p_types text[], p_datas jsonb[])
RETURNS TABLE (event_id bigint, ord bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_n integer := cardinality(p_types);
	v_last bigint;
BEGIN
	IF v_n = 0 THEN
		RETURN;
	END IF;
	UPDATE tenant_stream s SET last_event_id = s.last_event_id + v_n
	WHERE s.tenant_id = p_tenant RETURNING s.last_event_id INTO v_last;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant has no event stream' USING ERRCODE = 'P0002';
	END IF;
	INSERT INTO events (tenant_id, id, type, data)
	SELECT p_tenant, v_last - v_n + u.ord, u.t, u.d
	FROM unnest(p_types, p_datas) WITH ORDINALITY AS u(t, d, ord);
	RETURN QUERY SELECT v_last - v_n + g, g FROM generate_series(1, v_n::bigint) g;
END;
$$;

-- 0001's one-event append (no longer called by hubd; tests inject events with it), now
-- through hub_stream_append: a tenant without its stream row raises P0002.
CREATE OR REPLACE FUNCTION hub_emit_event(p_tenant text, p_type text, p_data jsonb)
RETURNS bigint
LANGUAGE sql AS $$
	SELECT a.event_id FROM hub_stream_append(p_tenant, ARRAY[p_type], ARRAY[p_data]) a
$$;

-- The channel of a public id, enabled and of a live tenant; else SQLSTATE P0002.
CREATE FUNCTION hub_live_channel(p_public_id text) RETURNS channels
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_ch channels;
BEGIN
	SELECT c.* INTO v_ch FROM channels c JOIN tenants t ON t.id = c.tenant_id
	WHERE c.public_id = p_public_id AND c.enabled AND t.deleted_at IS NULL;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown or disabled channel' USING ERRCODE = 'P0002';
	END IF;
	RETURN v_ch;
END;
$$;

-- 0001's one-message-one-transaction entry point (pgbench's reference), now through
-- hub_ingest_message: same arguments, same rows.
CREATE OR REPLACE FUNCTION hub_ingest_inbound(p_channel text, p_external_id text,
	p_sender_external_id text, p_sender_phone text, p_profile_name text, p_username text,
	p_type text, p_text text, p_raw_type text, p_reply_to text, p_platform_ts_ms bigint)
RETURNS TABLE (tenant_id text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_ch channels;
	v_result text;
	v_types text[];
	v_datas jsonb[];
BEGIN
	v_ch := hub_live_channel(p_channel);
	BEGIN
		SELECT r.o_result, r.o_types, r.o_datas INTO v_result, v_types, v_datas
		FROM hub_ingest_message(v_ch, false, p_external_id, p_sender_external_id,
					p_sender_phone, p_profile_name, p_username, p_type, p_text,
					p_raw_type, p_reply_to, p_platform_ts_ms) r;
	EXCEPTION WHEN SQLSTATE 'HB409' THEN
		RETURN;
	END;
	RETURN QUERY
	SELECT v_ch.tenant_id, a.event_id, v_types[a.ord], v_datas[a.ord]::text
	FROM hub_stream_append(v_ch.tenant_id, v_types, v_datas) a ORDER BY a.ord;
END;
$$;

-- For the outbox: the platform accepted outbound message p_message_id as p_external_id.
-- What arrived for that id before this answer (PLATFORMS.md: "the echo or status may arrive
-- before the response does") is folded in: an echo stored for it as a message of its own
-- is removed (event message.merged {id, conversation_id, into}), and the most advanced
-- status recorded in message_statuses applies (at least 'sent'; failed keeps its error).
-- Events: message.merged, message.status. 'unknown' for no such outgoing message,
-- 'duplicate' when it already has this id. The caller appends the events
-- (hub_stream_append) last in its transaction.
CREATE FUNCTION hub_message_sent(p_message_id bigint, p_external_id text,
	OUT o_result text, OUT o_types text[], OUT o_datas jsonb[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_msg messages;
	v_echo messages;
	v_st message_statuses;
BEGIN
	o_types := '{}';
	o_datas := '{}';
	-- a message's channel never changes: read unlocked, to take hub_outbound_lock first
	PERFORM hub_outbound_lock(m.channel_id, p_external_id) FROM messages m
	WHERE m.id = p_message_id;
	SELECT m.* INTO v_msg FROM messages m
	WHERE m.id = p_message_id AND m.direction = 'out' FOR UPDATE;
	IF NOT FOUND THEN
		o_result := 'unknown';
		RETURN;
	END IF;
	IF v_msg.external_id IS NOT DISTINCT FROM p_external_id THEN
		o_result := 'duplicate';
		RETURN;
	END IF;
	DELETE FROM messages m
	WHERE m.channel_id = v_msg.channel_id AND m.external_id = p_external_id
	      AND m.direction = 'out' AND m.id <> v_msg.id
	RETURNING m.* INTO v_echo;
	IF FOUND THEN
		o_types := o_types || 'message.merged'::text;
		o_datas := o_datas || jsonb_build_object('id', v_echo.id,
			'conversation_id', v_echo.conversation_id, 'into', v_msg.id);
	END IF;
	SELECT s.* INTO v_st FROM message_statuses s
	WHERE s.channel_id = v_msg.channel_id AND s.external_id = p_external_id
	ORDER BY hub_status_rank(s.status) DESC LIMIT 1;
	UPDATE messages m
	SET external_id = p_external_id,
	    status = CASE WHEN m.status = 'failed' THEN m.status
			  WHEN hub_status_rank(v_st.status) > greatest(hub_status_rank(m.status), 1)
			  THEN v_st.status
			  WHEN hub_status_rank(m.status) < 1 THEN 'sent' ELSE m.status END,
	    error = CASE WHEN m.status <> 'failed' AND v_st.status = 'failed' THEN v_st.error
			 ELSE m.error END
	WHERE m.id = v_msg.id RETURNING m.* INTO v_msg;
	o_result := 'stored';
	o_types := o_types || 'message.status'::text;
	o_datas := o_datas || hub_status_json(v_msg);
END;
$$;

-- One item of hub_ingest_batch() (a JSON object as daemon/inbound/ingest.c writes it), dispatched by
-- kind. p_ch: the previous item's channel, looked up again (hub_live_channel) when this item
-- names another one; returned for the next item. Telegram items carry update_id: each is
-- stored once per (channel, update_id) (ingest_keys 'update').
CREATE FUNCTION hub_ingest_item(INOUT p_ch channels, p jsonb,
	OUT o_result text, OUT o_types text[], OUT o_datas jsonb[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_kind text := p->>'kind';
	v_ts bigint := (p->>'ts')::bigint;
	v_echo boolean := v_kind = 'echo';
	v_to text := p->>'recipient';
	r record;
	v_msg messages;
BEGIN
	o_types := '{}';
	o_datas := '{}';
	IF p_ch.public_id IS DISTINCT FROM p->>'channel' THEN
		p_ch := hub_live_channel(p->>'channel');
	END IF;
	IF p ? 'update_id' THEN
		INSERT INTO ingest_keys (channel_id, kind, key)
		VALUES (p_ch.id, 'update', p->>'update_id') ON CONFLICT DO NOTHING;
		IF NOT FOUND THEN
			o_result := 'duplicate';
			RETURN;
		END IF;
	END IF;
	CASE v_kind
	WHEN 'message', 'echo' THEN
		-- an echo's customer is its recipient; a WhatsApp recipient is a phone number
		r := hub_ingest_message(p_ch, v_echo, p->>'external_id',
			CASE WHEN v_echo THEN v_to ELSE p->>'sender' END,
			CASE WHEN NOT v_echo THEN p->>'phone'
			     WHEN p_ch.kind = 'whatsapp' AND v_to ~ '^[1-9][0-9]{6,14}$'
			     THEN '+' || v_to END,
			p->>'name', p->>'username', p->>'type', p->>'text', p->>'raw_type',
			p->>'reply_to', v_ts);
	WHEN 'status' THEN
		r := hub_ingest_status(p_ch, p->>'external_id', p->>'status', p->>'error', v_ts);
	WHEN 'edit', 'delete', 'reaction' THEN
		v_msg := hub_message_lock(p_ch, CASE WHEN v_kind = 'reaction' THEN p->>'reply_to'
						     ELSE p->>'external_id' END);
		IF v_msg.id IS NULL THEN
			o_result := 'unknown';
			RETURN;
		END IF;
		CASE v_kind
		WHEN 'edit' THEN
			r := hub_ingest_edit(v_msg, p->>'key', p->>'text', v_ts);
		WHEN 'delete' THEN
			r := hub_ingest_delete(v_msg, v_ts);
		ELSE
			r := hub_ingest_reaction(p_ch, v_msg, p->>'sender',
				CASE WHEN v_to IS NOT NULL THEN 'agent' ELSE 'contact' END,
				p->>'text', coalesce(p->>'key', p->>'external_id'), v_ts);
		END CASE;
		o_result := r.o_result;
		IF o_result = 'stored' THEN
			o_types := ARRAY['message.updated'];
			o_datas := ARRAY[hub_message_updated(r.p_msg, p_ch)];
		END IF;
		RETURN;
	ELSE
		o_result := 'ignored';
		RETURN;
	END CASE;
	o_result := r.o_result;
	o_types := r.o_types;
	o_datas := r.o_datas;
END;
$$;

-- The items of a batch in order: their results, and their events (o_ev_*: the item, tenant,
-- type and data of each). p_each false: one after another (the caller holds them all in one
-- subtransaction, rolled back whole when one fails); true: each in a subtransaction of its
-- own (a savepoint per item: one that fails is rolled back alone), a deadlock, serialization
-- failure or lock timeout tried again, up to 3 times. Results: stored, duplicate, stale,
-- unknown, ignored; bad:SQLSTATE for an item the database refuses for what it holds (data
-- exception 22, integrity 23, program limit 54, its channel gone P0002): answered 200 and
-- counted; retry:SQLSTATE for any other failure (transient, resources, I/O, internal): its
-- request gets 503 so that the platform sends it again.
CREATE FUNCTION hub_ingest_items(p_items jsonb[], p_each boolean,
	OUT o_results text[], OUT o_ev_item integer[], OUT o_ev_tenant text[],
	OUT o_ev_type text[], OUT o_ev_data jsonb[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_ch channels;
	v_res record;
	v_state text;
	v_nev integer := 0;
BEGIN
	o_results := '{}';
	o_ev_item := '{}';
	o_ev_tenant := '{}';
	o_ev_type := '{}';
	o_ev_data := '{}';
	FOR i IN 1..coalesce(cardinality(p_items), 0) LOOP
		v_state := NULL;
		FOR attempt IN 1..3 LOOP
			IF NOT p_each THEN
				v_res := hub_ingest_item(v_ch, p_items[i]);
				EXIT;
			END IF;
			BEGIN
				v_res := hub_ingest_item(v_ch, p_items[i]);
				v_state := NULL;
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE;
			END;
			EXIT WHEN v_state IS NULL OR v_state NOT IN ('40001', '40P01', '55P03');
		END LOOP;
		IF v_state IS NOT NULL THEN
			o_results[i] := CASE WHEN v_state = 'HB409' THEN 'duplicate'
				WHEN left(v_state, 2) IN ('22', '23', '54') OR v_state = 'P0002'
				THEN 'bad:' || v_state ELSE 'retry:' || v_state END;
			CONTINUE;
		END IF;
		v_ch := v_res.p_ch;
		o_results[i] := v_res.o_result;
		-- Element assignment appends in place (|| would copy the arrays each time).
		FOR k IN 1..coalesce(cardinality(v_res.o_types), 0) LOOP
			v_nev := v_nev + 1;
			o_ev_item[v_nev] := i;
			o_ev_tenant[v_nev] := v_ch.tenant_id;
			o_ev_type[v_nev] := v_res.o_types[k];
			o_ev_data[v_nev] := v_res.o_datas[k];
		END LOOP;
	END LOOP;
END;
$$;

-- Group commit: the items of many webhooks (p_items: a JSON array of
-- {"kind", "channel", "external_id", ...} as daemon/inbound/ingest.c writes them) in the one
-- transaction of the calling statement (hub_ingest_items). Fast path: every item in one
-- subtransaction; when any item fails, that is rolled back and the slow path runs every
-- item in a subtransaction of its own. A subtransaction per item costs about as much as the
-- item itself, hence the fast path. Then the events of all items are appended to their
-- tenants' logs (tenants in id order), last.
-- Rows: one per item (event_id NULL, result as hub_ingest_items gives it), then one per
-- event in id order (result NULL).
CREATE FUNCTION hub_ingest_batch(p_items jsonb)
RETURNS TABLE (item integer, result text, tenant_id text, event_id bigint, event text,
	       data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_items jsonb[] := ARRAY(SELECT x FROM jsonb_array_elements(p_items) x);
	v_run record;
	v_ev_item integer[];
	v_ev_tenant text[];
	v_ev_type text[];
	v_ev_data jsonb[];
	v_tenant text;
BEGIN
	BEGIN
		v_run := hub_ingest_items(v_items, false);
	EXCEPTION WHEN OTHERS THEN
		-- runs after the rollback of the block, in the calling transaction
		v_run := hub_ingest_items(v_items, true);
	END;
	v_ev_item := v_run.o_ev_item;
	v_ev_tenant := v_run.o_ev_tenant;
	v_ev_type := v_run.o_ev_type;
	v_ev_data := v_run.o_ev_data;
	RETURN QUERY SELECT u.i::integer, u.r, NULL::text, NULL::bigint, NULL::text, NULL::text
		     FROM unnest(v_run.o_results) WITH ORDINALITY AS u(r, i) ORDER BY u.i;
	-- Last: each tenant's stream row, in tenant order (no deadlock between batches).
	FOR v_tenant IN SELECT DISTINCT t FROM unnest(v_ev_tenant) t ORDER BY 1 LOOP
		RETURN QUERY
		WITH mine AS (
			SELECT u.i, u.t, u.d, row_number() OVER (ORDER BY u.ord) AS k
			FROM unnest(v_ev_item, v_ev_tenant, v_ev_type, v_ev_data)
				WITH ORDINALITY AS u(i, tn, t, d, ord)
			WHERE u.tn = v_tenant)
		SELECT m.i, NULL::text, v_tenant, a.event_id, m.t, m.d::text
		FROM hub_stream_append(v_tenant,
			ARRAY(SELECT m2.t FROM mine m2 ORDER BY m2.k),
			ARRAY(SELECT m2.d FROM mine m2 ORDER BY m2.k)) a
		JOIN mine m ON m.k = a.ord
		ORDER BY a.ord;
	END LOOP;
END;
$$;
