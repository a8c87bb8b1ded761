-- db/migrations/0012_media.sql - media (issue 12, point 6): the platform's reference of an
-- inbound attachment kept with its message (the file stays at the platform and is fetched
-- when an agent opens it, daemon/inbox/media.c), and the files agents upload to send,
-- stored as PostgreSQL large objects (README "Media").
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).
-- Redefines hub_ingest_message and hub_ingest_item (0004), hub_message_obj (0007),
-- hub_cmd_send, hub_cmd and hub_outbox_claim (0007), each with its media.

-- An uploaded file: its bytes in a large object (lo_from_bytea), unlinked with the row.
CREATE TABLE media_uploads (
	id bigserial PRIMARY KEY,
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	lo oid NOT NULL,
	mime text NOT NULL,
	filename text NOT NULL,
	size bigint NOT NULL CHECK (size > 0),
	sha256 text NOT NULL,
	uploaded_by text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_uploads_age ON media_uploads (tenant_id, created_at);

CREATE FUNCTION hub_media_unlink() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM lo_unlink(OLD.lo);
	RETURN NULL;
END;
$$;
CREATE TRIGGER media_uploads_unlink AFTER DELETE ON media_uploads
	FOR EACH ROW EXECUTE FUNCTION hub_media_unlink();

-- messages.media: inbound {"ref": the platform's reference (WhatsApp media id, Telegram
-- file_id, Instagram CDN URL), "mime", "filename", "size"}; outbound {"upload": id, "mime",
-- "filename", "size"}. The reference never leaves the hub: the message object shows only
-- what hub_media_obj() picks.
ALTER TABLE messages
	ADD COLUMN media jsonb,
	ADD COLUMN media_upload_id bigint REFERENCES media_uploads (id) ON DELETE SET NULL;
CREATE INDEX messages_media_upload ON messages (media_upload_id)
	WHERE media_upload_id IS NOT NULL;

-- What agents see of a message's file: {kind, mime, filename, size} (nulls when unknown),
-- or NULL for a message without one.
CREATE FUNCTION hub_media_obj(m messages) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN m.media IS NOT NULL THEN jsonb_build_object('kind', m.type,
		'mime', m.media->'mime', 'filename', m.media->'filename', 'size', m.media->'size')
	END
$$;

CREATE OR REPLACE FUNCTION hub_message_obj(m messages, p_contact bigint, p_channel text,
					   p_reactions jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', m.id, 'conversation_id', m.conversation_id,
		'contact_id', p_contact, 'channel_id', p_channel, 'direction', m.direction,
		'author', m.author, 'type', m.type, 'text', m.text, 'status', m.status,
		'error', m.error, 'platform_ts', hub_iso(m.platform_ts),
		'created_at', hub_iso(m.created_at), 'edited_at', hub_iso(m.edited_at),
		'deleted_at', hub_iso(m.deleted_at), 'reply_to_external_id', m.reply_to_external_id,
		'reactions', p_reactions, 'client_id', m.client_id, 'media', hub_media_obj(m))
$$;

-- 0004's hub_ingest_message with p_media: the attachment's reference as ingest.c writes it
-- ({"ref","mime","filename","size"}), kept for the media types only.
DROP FUNCTION hub_ingest_message(channels, boolean, text, text, text, text, text, text, text,
				 text, text, bigint);
CREATE FUNCTION hub_ingest_message(p_ch channels, p_out boolean, p_external_id text,
	p_sender text, p_phone text, p_profile_name text, p_username text, p_type text,
	p_text text, p_raw_type text, p_reply_to text, p_ts_ms bigint, p_media jsonb DEFAULT NULL,
	OUT o_result text, OUT o_types text[], OUT o_datas jsonb[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_type text := CASE WHEN p_type IN ('text', 'image', 'audio', 'video', 'document',
		'sticker', 'location', 'contact', 'reaction', 'interactive') THEN p_type
		ELSE 'unsupported' END;
	v_media jsonb := CASE WHEN v_type IN ('image', 'audio', 'video', 'document', 'sticker')
		AND coalesce(p_media->>'ref', '') <> '' THEN jsonb_strip_nulls(p_media) END;
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
				   platform_ts, media)
	VALUES (p_ch.tenant_id, v_conv.id, p_ch.id, p_external_id,
		CASE WHEN p_out THEN 'out' ELSE 'in' END,
		CASE WHEN p_out THEN 'agent' ELSE 'contact' END, v_type, p_text,
		nullif(p_raw_type, ''), nullif(p_reply_to, ''),
		CASE WHEN p_out THEN 'sent' ELSE 'received' END, hub_ms_ts(p_ts_ms), v_media)
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

-- 0004's hub_ingest_item, passing a message's or an echo's media.
CREATE OR REPLACE FUNCTION hub_ingest_item(INOUT p_ch channels, p jsonb,
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
			p->>'reply_to', v_ts, p->'media');
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

-- An agent's upload (daemon/inbox/media.c has checked its type and size). Uploads that no
-- message took within a day are removed (with their large objects) on the way.
CREATE FUNCTION hub_media_upload(p_tenant text, p_user text, p_mime text, p_filename text,
				 p_data bytea)
RETURNS TABLE (id bigint, size bigint, sha256 text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	DELETE FROM media_uploads u
	WHERE u.tenant_id = p_tenant AND u.created_at < now() - interval '1 day'
	      AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.media_upload_id = u.id);
	RETURN QUERY
	INSERT INTO media_uploads AS u (tenant_id, lo, mime, filename, size, sha256, uploaded_by)
	VALUES (p_tenant, lo_from_bytea(0, p_data), p_mime, p_filename, length(p_data),
		encode(sha256(p_data), 'hex'), p_user)
	RETURNING u.id, u.size, u.sha256;
END;
$$;

-- The file of message p_message for an agent of p_tenant (NULL: for a signed link, which
-- was issued to one): no row when the message is another tenant's, unknown or has no file. upload_lo is set for an agent's upload (read
-- it with lo_get), else ref is the platform's reference, fetched with the channel's token.
CREATE FUNCTION hub_media_of(p_tenant text, p_message bigint)
RETURNS TABLE (channel text, kind text, ref text, mime text, filename text, size bigint,
	       upload_lo oid)
LANGUAGE sql STABLE AS $$
	SELECT ch.public_id, ch.kind, m.media->>'ref', coalesce(u.mime, m.media->>'mime'),
	       coalesce(u.filename, m.media->>'filename'),
	       coalesce(u.size, (m.media->>'size')::bigint), u.lo
	FROM messages m
	JOIN channels ch ON ch.id = m.channel_id
	LEFT JOIN media_uploads u ON u.id = m.media_upload_id
	WHERE m.id = p_message AND (p_tenant IS NULL OR m.tenant_id = p_tenant)
	      AND m.media IS NOT NULL
	      AND (m.media ? 'ref' OR u.id IS NOT NULL)
$$;

-- send (0007) with an upload: p_media, an upload of the tenant, makes the message an image
-- (JPEG or PNG, what every platform shows as a photo) or a document (any other type, WebP
-- too), with p_text as its caption (may be empty).
DROP FUNCTION hub_cmd_send(conversations, text, text, text, text, bigint);
CREATE FUNCTION hub_cmd_send(v_conv conversations, v_channel text, p_user text, p_text text,
			     p_client_id text, p_reply_to bigint, p_media bigint)
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_msg messages;
	v_kind text;
	v_quote text;
	v_up media_uploads;
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
	IF p_media IS NOT NULL THEN
		SELECT u.* INTO v_up FROM media_uploads u
		WHERE u.id = p_media AND u.tenant_id = v_conv.tenant_id;
		IF NOT FOUND THEN
			RETURN QUERY SELECT 'error'::text, NULL::bigint, 'not_found'::text,
					    'no such upload'::text;
			RETURN;
		END IF;
		IF v_kind = 'instagram' AND coalesce(p_text, '') <> '' THEN
			RETURN QUERY SELECT 'error'::text, NULL::bigint, 'bad_request'::text,
				'an Instagram attachment carries no caption: send the text as a '
				'message of its own'::text;
			RETURN;
		END IF;
		IF char_length(p_text) > 1024 THEN
			RETURN QUERY SELECT 'error'::text, NULL::bigint, 'bad_request'::text,
				'a caption is at most 1024 characters'::text;
			RETURN;
		END IF;
	END IF;
	IF NOT hub_window_open(v_conv, v_kind) THEN
		RETURN QUERY SELECT * FROM hub_cmd_window_closed(v_kind);
		RETURN;
	END IF;
	INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, direction, author,
				   type, text, status, client_id, reply_to_external_id, media,
				   media_upload_id)
	VALUES (v_conv.tenant_id, v_conv.id, v_conv.channel_id, 'out', 'agent',
		CASE WHEN v_up.id IS NULL THEN 'text'
		     WHEN v_up.mime IN ('image/jpeg', 'image/png') THEN 'image' ELSE 'document' END,
		nullif(p_text, ''), 'queued', p_client_id, v_quote,
		CASE WHEN v_up.id IS NOT NULL THEN jsonb_build_object('upload', v_up.id,
			'mime', v_up.mime, 'filename', v_up.filename, 'size', v_up.size) END,
		v_up.id)
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

-- hub_cmd (0007) with send's upload (p_media).
DROP FUNCTION hub_cmd(text, text, boolean, bigint, text, text, text, bigint);
CREATE FUNCTION hub_cmd(p_tenant text, p_user text, p_admin boolean, p_conversation bigint,
			p_cmd text, p_value text, p_client_id text, p_reply_to bigint,
			p_media bigint DEFAULT NULL)
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
							p_client_id, p_reply_to, p_media);
	ELSIF p_cmd = 'retry' THEN
		RETURN QUERY SELECT * FROM hub_cmd_retry(v_conv, p_value);
	ELSE
		RETURN QUERY SELECT * FROM hub_cmd_update(v_conv, v_channel, p_user, p_admin,
							  p_cmd, p_value);
	END IF;
END;
$$;

-- hub_outbox_claim (0007) with the message's upload: media_upload (its id: the sender
-- passes the platform a signed URL of it) and media_filename.
DROP FUNCTION hub_outbox_claim(integer, integer);
CREATE FUNCTION hub_outbox_claim(p_limit integer, p_lease_ms integer)
RETURNS TABLE (outbox_id bigint, attempts integer, channel text, recipient text, type text,
	       text text, reply_to text, window_open boolean, media_upload bigint,
	       media_filename text)
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
	       m.type, m.text, m.reply_to_external_id, hub_window_open(v, ch.kind),
	       u.id, u.filename
	FROM claimed c
	JOIN messages m ON m.id = c.message_id
	JOIN conversations v ON v.id = c.conversation_id
	JOIN channels ch ON ch.id = c.channel_id
	LEFT JOIN media_uploads u ON u.id = m.media_upload_id
	ORDER BY c.id;
END;
$$;
