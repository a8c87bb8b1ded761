-- db/migrations/0001_init.sql - the hub's schema and the ingest functions.
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).
-- Tenants are text slugs ('demo'); every row of a tenant's data carries tenant_id.
-- Lock order used by every function here (keep it in new code to avoid deadlocks):
-- contact -> conversation -> message -> tenant_stream (always last, held to COMMIT).

CREATE TABLE tenants (
	id text PRIMARY KEY,
	name text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);

-- One row per tenant: the last event id handed out. Its row lock, taken by
-- hub_emit_event() and held to COMMIT, makes a tenant's event ids commit in order.
CREATE TABLE tenant_stream (
	tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
	last_event_id bigint NOT NULL DEFAULT 0
);

CREATE TABLE channels (
	id bigserial PRIMARY KEY,
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	public_id text NOT NULL UNIQUE,          -- 'demo-whatsapp': in URLs and config
	kind text NOT NULL CHECK (kind IN ('whatsapp', 'telegram', 'instagram', 'web')),
	account_id text,                         -- WhatsApp phone_number_id, IG account, bot id
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX channels_tenant ON channels (tenant_id);

CREATE TABLE contacts (
	id bigserial PRIMARY KEY,
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	display_name text,
	name_set_by_agent boolean NOT NULL DEFAULT false,
	phone text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),  -- E.164
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_tenant_phone ON contacts (tenant_id, phone);
CREATE INDEX contacts_tenant_name ON contacts (tenant_id, lower(display_name), id);

CREATE TABLE contact_identities (
	id bigserial PRIMARY KEY,
	contact_id bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	channel_id bigint NOT NULL REFERENCES channels (id),
	external_id text NOT NULL,               -- wa_id, Telegram user id, IG scoped id
	phone text,
	profile_name text,
	username text,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (channel_id, external_id)
);
CREATE INDEX contact_identities_contact ON contact_identities (contact_id);

-- Never merged on a name alone: agents confirm through the API.
CREATE TABLE merge_suggestions (
	id bigserial PRIMARY KEY,
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	contact_id bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	other_contact_id bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	reason text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (contact_id, other_contact_id),
	CHECK (contact_id <> other_contact_id)
);
CREATE INDEX merge_suggestions_other ON merge_suggestions (other_contact_id);
CREATE INDEX merge_suggestions_tenant ON merge_suggestions (tenant_id, id);

CREATE TABLE conversations (
	id bigserial PRIMARY KEY,
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	contact_id bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	channel_id bigint NOT NULL REFERENCES channels (id),
	status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
	mode text NOT NULL DEFAULT 'human' CHECK (mode IN ('human', 'ai')),
	assignee text,
	last_message_at timestamptz,
	unread integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
-- At most one open conversation per contact and channel.
CREATE UNIQUE INDEX conversations_one_open ON conversations (contact_id, channel_id)
	WHERE status = 'open';
-- The latest conversation of a contact on a channel (reopen), and the contact's list.
CREATE INDEX conversations_contact ON conversations (contact_id, channel_id, id);
-- The inbox: a tenant's conversations by recent activity.
CREATE INDEX conversations_inbox ON conversations (tenant_id, last_message_at DESC);
CREATE INDEX conversations_channel ON conversations (channel_id);

CREATE TABLE messages (
	id bigserial PRIMARY KEY,
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	conversation_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	channel_id bigint NOT NULL REFERENCES channels (id),
	external_id text,                        -- the platform's message id; NULL until sent
	direction text NOT NULL CHECK (direction IN ('in', 'out')),
	author text NOT NULL CHECK (author IN ('contact', 'agent', 'ai', 'system')),
	type text NOT NULL CHECK (type IN ('text', 'image', 'audio', 'video', 'document',
		'sticker', 'location', 'contact', 'reaction', 'interactive', 'unsupported')),
	text text,
	raw_type text,
	reply_to_external_id text,
	status text NOT NULL CHECK (status IN ('received', 'queued', 'sent', 'delivered',
		'read', 'failed')),
	error text,
	platform_ts timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (channel_id, external_id)         -- a retried webhook is never stored twice
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);

-- The ordered log that websockets replay on resume.
CREATE TABLE events (
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	id bigint NOT NULL,
	type text NOT NULL,
	data jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id)
);

-- ISO 8601 UTC with milliseconds ('2024-05-01T10:20:30.123Z'), NULL stays NULL.
CREATE FUNCTION hub_iso(p timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT to_char(p AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- A display name as stored: trimmed, inner runs of white space made one space, '' is NULL.
-- Names are then compared by lower(display_name) (index contacts_tenant_name).
CREATE FUNCTION hub_clean_name(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT nullif(regexp_replace(btrim(p, E' \t\r\n'), E'\\s+', ' ', 'g'), '')
$$;

CREATE FUNCTION hub_contact_json(c contacts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', c.id, 'display_name', c.display_name, 'phone', c.phone,
		'created_at', hub_iso(c.created_at), 'updated_at', hub_iso(c.updated_at))
$$;

CREATE FUNCTION hub_conversation_json(v conversations, p_channel text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', v.id, 'contact_id', v.contact_id, 'channel_id', p_channel,
		'status', v.status, 'mode', v.mode, 'assignee', v.assignee,
		'last_message_at', hub_iso(v.last_message_at), 'unread', v.unread)
$$;

CREATE FUNCTION hub_message_json(m messages, p_contact bigint, p_channel text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', m.id, 'conversation_id', m.conversation_id,
		'contact_id', p_contact, 'channel_id', p_channel, 'direction', m.direction,
		'author', m.author, 'type', m.type, 'text', m.text, 'status', m.status,
		'platform_ts', hub_iso(m.platform_ts), 'created_at', hub_iso(m.created_at))
$$;

-- Config-defined channels are synced at start-up and reload: upserts the tenant (and its
-- stream row) and the channel; returns channels.id. Leaves enabled alone (admin API's).
-- A channel never moves to another tenant (its history would leak): that raises.
CREATE FUNCTION hub_upsert_channel(p_tenant text, p_tenant_name text, p_public_id text,
				   p_kind text, p_account_id text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_id bigint;
BEGIN
	INSERT INTO tenants (id, name) VALUES (p_tenant, coalesce(p_tenant_name, p_tenant))
	ON CONFLICT (id) DO UPDATE SET name = excluded.name
		WHERE tenants.name IS DISTINCT FROM excluded.name;
	INSERT INTO tenant_stream (tenant_id) VALUES (p_tenant) ON CONFLICT DO NOTHING;
	INSERT INTO channels AS c (tenant_id, public_id, kind, account_id)
	VALUES (p_tenant, p_public_id, p_kind, p_account_id)
	ON CONFLICT (public_id) DO UPDATE
		SET kind = excluded.kind, account_id = excluded.account_id, updated_at = now()
		WHERE c.tenant_id = excluded.tenant_id
	RETURNING c.id INTO v_id;
	IF v_id IS NULL THEN
		RAISE EXCEPTION 'channel % belongs to another tenant', p_public_id
			USING ERRCODE = 'P0001';
	END IF;
	RETURN v_id;
END;
$$;

-- Appends one event to the tenant's log and returns its id. The UPDATE's row lock is held
-- to COMMIT: a tenant's events commit in id order (resume after N never skips one).
-- Call it last in a transaction, after every other lock.
CREATE FUNCTION hub_emit_event(p_tenant text, p_type text, p_data jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_id bigint;
BEGIN
	UPDATE tenant_stream SET last_event_id = last_event_id + 1 WHERE tenant_id = p_tenant
	RETURNING last_event_id INTO v_id;
	IF NOT FOUND THEN
		INSERT INTO tenant_stream AS s (tenant_id, last_event_id) VALUES (p_tenant, 1)
		ON CONFLICT (tenant_id) DO UPDATE SET last_event_id = s.last_event_id + 1
		RETURNING s.last_event_id INTO v_id;
	END IF;
	INSERT INTO events (tenant_id, id, type, data) VALUES (p_tenant, v_id, p_type, p_data);
	RETURN v_id;
END;
$$;

-- One received message, in one transaction (the caller runs it in autocommit):
-- resolve the contact, find, reopen or create the conversation, store the message and
-- append its events. Returns one row per event in id order, or no rows (and changes
-- nothing) when (channel, external_id) is already stored, also under a race of identical
-- calls. An unknown or disabled channel raises SQLSTATE P0002.
CREATE FUNCTION hub_ingest_inbound(p_channel text, p_external_id text,
	p_sender_external_id text, p_sender_phone text, p_profile_name text, p_username text,
	p_type text, p_text text, p_raw_type text, p_reply_to text, p_platform_ts_ms bigint)
RETURNS TABLE (tenant_id text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_ch channels;
	v_phone text := CASE WHEN p_sender_phone ~ '^\+[1-9][0-9]{6,14}$' THEN p_sender_phone END;
	v_name text := hub_clean_name(p_profile_name);
	v_username text := nullif(p_username, '');
	v_type text := CASE WHEN p_type IN ('text', 'image', 'audio', 'video', 'document',
		'sticker', 'location', 'contact', 'reaction', 'interactive') THEN p_type
		ELSE 'unsupported' END;
	v_ts timestamptz;
	v_ident contact_identities;
	v_contact contacts;
	v_new_contact boolean := false;
	v_contact_changed boolean := false;
	v_renamed boolean := false;
	v_other bigint;
	v_conv conversations;
	v_conv_event text;
	v_msg messages;
	v_types text[] := '{}';
	v_datas jsonb[] := '{}';
	v_n integer;
	v_last bigint;
BEGIN
	IF coalesce(p_external_id, '') = '' OR coalesce(p_sender_external_id, '') = '' THEN
		RAISE EXCEPTION 'message and sender ids are required' USING ERRCODE = '22004';
	END IF;
	SELECT c.* INTO v_ch FROM channels c JOIN tenants t ON t.id = c.tenant_id
	WHERE c.public_id = p_channel AND c.enabled AND t.deleted_at IS NULL;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown or disabled channel' USING ERRCODE = 'P0002';
	END IF;
	-- A retried webhook: answered without the subtransaction below.
	PERFORM 1 FROM messages m WHERE m.channel_id = v_ch.id AND m.external_id = p_external_id;
	IF FOUND THEN
		RETURN;
	END IF;
	IF p_platform_ts_ms BETWEEN 1 AND 253402300799999 THEN  -- up to the year 9999
		v_ts := timestamptz 'epoch' + p_platform_ts_ms * interval '1 millisecond';
	END IF;

	-- Every change below is undone if the message turns out to be a duplicate (HB409).
	BEGIN
		-- 1. An identity already known gives its contact.
		SELECT i.* INTO v_ident FROM contact_identities i
		WHERE i.channel_id = v_ch.id AND i.external_id = p_sender_external_id;
		IF NOT FOUND THEN
			-- 2. Else a contact of the tenant with the same phone.
			IF v_phone IS NOT NULL THEN
				SELECT c.* INTO v_contact FROM contacts c
				WHERE c.tenant_id = v_ch.tenant_id AND c.phone = v_phone
				ORDER BY c.id LIMIT 1;
			END IF;
			-- 3. Else a new contact named by the profile name.
			IF v_contact.id IS NULL THEN
				INSERT INTO contacts AS c (tenant_id, display_name, phone)
				VALUES (v_ch.tenant_id, coalesce(v_name, v_username), v_phone)
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
			VALUES (v_contact.id, v_ch.id, p_sender_external_id, v_phone, v_name,
				v_username)
			ON CONFLICT (channel_id, external_id) DO NOTHING
			RETURNING i.* INTO v_ident;
			IF NOT FOUND THEN
				-- A concurrent first message of this sender committed the identity
				-- first (ON CONFLICT waited for it): use its contact instead.
				IF v_new_contact THEN
					DELETE FROM contacts c WHERE c.id = v_contact.id;
				END IF;
				v_new_contact := false;
				v_renamed := false;
				SELECT i.* INTO STRICT v_ident FROM contact_identities i
				WHERE i.channel_id = v_ch.id AND i.external_id = p_sender_external_id;
				SELECT c.* INTO STRICT v_contact FROM contacts c
				WHERE c.id = v_ident.contact_id;
			END IF;
		ELSE
			SELECT c.* INTO STRICT v_contact FROM contacts c WHERE c.id = v_ident.contact_id;
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
				v_contact_changed := true;
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
		v_contact_changed := v_contact_changed OR v_new_contact OR v_renamed;

		-- The same name as another contact of the tenant: suggest, never merge.
		IF (v_new_contact OR v_renamed) AND v_name IS NOT NULL
		   AND lower(v_contact.display_name) = lower(v_name) THEN
			SELECT c.id INTO v_other FROM contacts c
			WHERE c.tenant_id = v_ch.tenant_id AND lower(c.display_name) = lower(v_name)
			      AND c.id <> v_contact.id
			ORDER BY c.id LIMIT 1;
			IF v_other IS NOT NULL AND NOT EXISTS (
				SELECT 1 FROM merge_suggestions s
				WHERE s.contact_id = v_other AND s.other_contact_id = v_contact.id) THEN
				INSERT INTO merge_suggestions AS s (tenant_id, contact_id,
								   other_contact_id, reason)
				VALUES (v_ch.tenant_id, v_contact.id, v_other, 'same_name')
				ON CONFLICT (contact_id, other_contact_id) DO NOTHING;
				IF NOT FOUND THEN
					v_other := NULL;
				END IF;
			ELSE
				v_other := NULL;
			END IF;
		END IF;

		-- The open conversation, else reopen the latest resolved one, else a new one.
		-- Concurrent messages of one sender race here: each step is one atomic
		-- statement and the loop takes whatever the winner left.
		FOR attempt IN 1..3 LOOP
			UPDATE conversations v
			SET unread = v.unread + 1, last_message_at = now(), updated_at = now()
			WHERE v.contact_id = v_contact.id AND v.channel_id = v_ch.id
			      AND v.status = 'open'
			RETURNING v.* INTO v_conv;
			IF FOUND THEN
				v_conv_event := 'conversation.updated';
				EXIT;
			END IF;
			UPDATE conversations v
			SET status = 'open', unread = v.unread + 1, last_message_at = now(),
			    updated_at = now()
			WHERE v.id = (SELECT max(x.id) FROM conversations x
				      WHERE x.contact_id = v_contact.id AND x.channel_id = v_ch.id)
			      AND v.status = 'resolved'
			RETURNING v.* INTO v_conv;
			IF FOUND THEN
				v_conv_event := 'conversation.updated';
				EXIT;
			END IF;
			INSERT INTO conversations AS v (tenant_id, contact_id, channel_id,
							last_message_at, unread)
			VALUES (v_ch.tenant_id, v_contact.id, v_ch.id, now(), 1)
			ON CONFLICT (contact_id, channel_id) WHERE status = 'open' DO NOTHING
			RETURNING v.* INTO v_conv;
			IF FOUND THEN
				v_conv_event := 'conversation.created';
				EXIT;
			END IF;
		END LOOP;
		IF v_conv_event IS NULL THEN
			RAISE EXCEPTION 'conversation race, retry' USING ERRCODE = '40001';
		END IF;

		INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, external_id,
					   direction, author, type, text, raw_type,
					   reply_to_external_id, status, platform_ts)
		VALUES (v_ch.tenant_id, v_conv.id, v_ch.id, p_external_id, 'in', 'contact', v_type,
			p_text, nullif(p_raw_type, ''), nullif(p_reply_to, ''), 'received', v_ts)
		ON CONFLICT (channel_id, external_id) DO NOTHING
		RETURNING m.* INTO v_msg;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'duplicate message' USING ERRCODE = 'HB409';
		END IF;
	EXCEPTION WHEN SQLSTATE 'HB409' THEN
		RETURN;  -- a concurrent identical call stored it: no rows, nothing changed
	END;

	IF v_contact_changed THEN
		v_types := v_types || 'contact.updated'::text;
		v_datas := v_datas || hub_contact_json(v_contact);
	END IF;
	IF v_other IS NOT NULL THEN
		v_types := v_types || 'contact.merge_suggested'::text;
		v_datas := v_datas || jsonb_build_object('contact_id', v_contact.id,
			'other_contact_id', v_other, 'reason', 'same_name');
	END IF;
	v_types := v_types || v_conv_event || 'message.created'::text;
	v_datas := v_datas || hub_conversation_json(v_conv, v_ch.public_id)
			   || hub_message_json(v_msg, v_contact.id, v_ch.public_id);

	-- Last, so the tenant's stream row stays locked only from here to COMMIT.
	v_n := cardinality(v_types);
	UPDATE tenant_stream s SET last_event_id = s.last_event_id + v_n
	WHERE s.tenant_id = v_ch.tenant_id RETURNING s.last_event_id INTO v_last;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant has no event stream' USING ERRCODE = 'P0002';
	END IF;
	INSERT INTO events (tenant_id, id, type, data)
	SELECT v_ch.tenant_id, v_last - v_n + u.ord, u.t, u.d
	FROM unnest(v_types, v_datas) WITH ORDINALITY AS u(t, d, ord);
	RETURN QUERY
	SELECT v_ch.tenant_id, v_last - v_n + u.ord, u.t, u.d::text
	FROM unnest(v_types, v_datas) WITH ORDINALITY AS u(t, d, ord) ORDER BY u.ord;
END;
$$;
