-- db/migrations/0017_webchat.sql - the website chat (channel kind 'web', daemon/webchat/):
-- the widget's settings of a channel, the visitor's identity (resolved like a messenger's
-- sender, through hub_resolve_contact), what a visitor may see of the history (their own
-- conversations on that channel, nothing else), and the delivery and read marks of the
-- replies they got. A visitor is the identity (channel, sender) where sender is
-- 'v:<random id>' (an anonymous visitor's browser) or 'u:<user id>' (a site's signed-in
-- user, verified with the channel's identity secret). A visitor's message is stored by the
-- ingest as any platform's, with the platform id 'web/<sender>/<client id>' (exactly once).
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).

-- The widget's settings (origins, title, colour, texts, pre-chat form), as hubctl channel
-- add --web-file and the config file give them (lib/webcfg.h); the identity secret is the
-- channel's app_secret (sealed like every channel secret).
ALTER TABLE channels ADD COLUMN web jsonb;

-- The web channel of a public id, enabled and of a live tenant; else SQLSTATE P0002.
CREATE FUNCTION hub_webchat_channel(p_public_id text) RETURNS channels
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_ch channels := hub_live_channel(p_public_id);
BEGIN
	IF v_ch.kind <> 'web' THEN
		RAISE EXCEPTION 'not a website chat channel' USING ERRCODE = 'P0002';
	END IF;
	RETURN v_ch;
END;
$$;

-- The pre-chat form of a new visitor: name and phone (E.164 or NULL) resolve the visitor's
-- identity now, as a messenger's first message would (the same contact as their WhatsApp
-- when the phone matches). A phone whose contact already has another visitor on this
-- channel is not linked (that visitor's history is theirs: a typed phone number proves
-- nothing), nor is anything changed for a visitor already known. Rows: the events to
-- publish.
CREATE FUNCTION hub_webchat_prechat(p_channel text, p_sender text, p_name text, p_phone text)
RETURNS TABLE (tenant_id text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_ch channels := hub_webchat_channel(p_channel);
	v_phone text := CASE WHEN p_phone ~ '^\+[1-9][0-9]{6,14}$' THEN p_phone END;
	v_res record;
BEGIN
	IF EXISTS (SELECT 1 FROM contact_identities i
		   WHERE i.channel_id = v_ch.id AND i.external_id = p_sender) THEN
		RETURN;
	END IF;
	IF v_phone IS NOT NULL AND EXISTS (
		SELECT 1 FROM contact_identities i JOIN contacts c ON c.id = i.contact_id
		WHERE i.channel_id = v_ch.id AND c.phone = v_phone) THEN
		v_phone := NULL;
	END IF;
	IF hub_clean_name(p_name) IS NULL AND v_phone IS NULL THEN
		RETURN;
	END IF;
	v_res := hub_resolve_contact(v_ch, p_sender, v_phone, p_name, NULL);
	RETURN QUERY
	SELECT v_ch.tenant_id, a.event_id, v_res.o_types[a.ord], v_res.o_datas[a.ord]::text
	FROM hub_stream_append(v_ch.tenant_id, v_res.o_types, v_res.o_datas) a ORDER BY a.ord;
END;
$$;

-- A message as its visitor sees it: no contact, channel or agent data; the client id of
-- the visitor's own messages (from the platform id 'web/<sender>/<client id>'); text only.
CREATE FUNCTION hub_webchat_msg(m messages) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', m.id, 'conversation_id', m.conversation_id,
		'author', CASE WHEN m.direction = 'in' THEN 'visitor' ELSE m.author END,
		'type', m.type, 'text', CASE WHEN m.deleted_at IS NULL THEN m.text END,
		'status', m.status, 'created_at', hub_iso(m.created_at),
		'client_id', CASE WHEN m.direction = 'in' AND m.external_id LIKE 'web/%'
				  THEN substr(m.external_id, length(split_part(m.external_id, '/', 1))
					      + length(split_part(m.external_id, '/', 2)) + 3) END)
$$;

-- What a visitor's socket starts from: their contact (NULL before their first message or
-- pre-chat form), their conversations on the channel, the tenant's last event id and, when
-- p_after is NULL, their last p_limit messages (visitor shape, in id order); else the
-- tenant's events after p_after that concern those conversations (at most p_limit; more
-- may follow: read again after the last; a cursor more than 100,000 events behind gets the
-- history instead). One statement: the history and the last id come from one snapshot, so
-- live events above it complete it without a gap.
CREATE FUNCTION hub_webchat_sync(p_channel text, p_sender text, p_after bigint,
				 p_limit integer)
RETURNS TABLE (contact_id bigint, conversations text, last_event_id bigint, event_id bigint,
	       event text, data text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
	v_ch channels := hub_webchat_channel(p_channel);
	v_contact bigint;
	v_convs bigint[];
	v_last bigint;
BEGIN
	SELECT i.contact_id INTO v_contact FROM contact_identities i
	WHERE i.channel_id = v_ch.id AND i.external_id = p_sender;
	v_convs := ARRAY(SELECT v.id FROM conversations v
			 WHERE v.channel_id = v_ch.id AND v.contact_id = v_contact ORDER BY v.id);
	SELECT s.last_event_id INTO v_last FROM tenant_stream s WHERE s.tenant_id = v_ch.tenant_id;
	-- a cursor that far behind (a tab left open for weeks on a busy tenant) would scan the
	-- tenant's whole log since: the history instead (the widget replaces by message id)
	IF p_after IS NOT NULL AND v_last - p_after > 100000 THEN
		p_after := NULL;
	END IF;
	RETURN QUERY SELECT v_contact, array_to_string(v_convs, ','), v_last, NULL::bigint,
			    NULL::text, NULL::text;
	IF v_contact IS NULL THEN
		RETURN;
	END IF;
	IF p_after IS NULL THEN
		RETURN QUERY
		SELECT NULL::bigint, NULL::text, NULL::bigint, NULL::bigint, 'message'::text,
		       hub_webchat_msg(x)::text
		FROM (SELECT m.* FROM messages m WHERE m.conversation_id = ANY (v_convs)
		      ORDER BY m.id DESC LIMIT p_limit) x ORDER BY x.id;
		RETURN;
	END IF;
	RETURN QUERY
	SELECT NULL::bigint, NULL::text, NULL::bigint, e.id, e.type,
	       CASE WHEN e.type IN ('message.created', 'message.updated')
		    THEN (SELECT hub_webchat_msg(m) FROM messages m
			  WHERE m.id = (e.data->>'id')::bigint)::text
		    ELSE e.data::text END
	FROM events e
	WHERE e.tenant_id = v_ch.tenant_id AND e.id > p_after AND e.id <= v_last
	      AND e.type IN ('message.created', 'message.updated', 'message.status')
	      AND (e.data->>'conversation_id')::bigint = ANY (v_convs)
	ORDER BY e.id LIMIT p_limit;
END;
$$;

-- A visitor's mark on the replies they got: 'delivered' (their socket took message
-- p_message) or 'read' (they saw everything up to p_message). Only the visitor's own
-- conversations' outgoing messages move, and only forward. Rows: the events to publish
-- (message.status, as a platform's status webhook gives them).
CREATE FUNCTION hub_webchat_mark(p_channel text, p_sender text, p_message bigint,
				 p_status text)
RETURNS TABLE (tenant_id text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_ch channels := hub_webchat_channel(p_channel);
	v_types text[] := '{}';
	v_datas jsonb[] := '{}';
	v_msg messages;
BEGIN
	IF p_status NOT IN ('delivered', 'read') THEN
		RAISE EXCEPTION 'delivered or read' USING ERRCODE = '22023';
	END IF;
	FOR v_msg IN
		UPDATE messages m SET status = p_status
		FROM conversations v, contact_identities i
		WHERE i.channel_id = v_ch.id AND i.external_id = p_sender
		      AND v.channel_id = v_ch.id AND v.contact_id = i.contact_id
		      AND m.conversation_id = v.id AND m.direction = 'out'
		      AND CASE WHEN p_status = 'read' THEN m.id <= p_message
			       ELSE m.id = p_message END
		      AND hub_status_rank(m.status) BETWEEN 0 AND hub_status_rank(p_status) - 1
		RETURNING m.*
	LOOP
		v_types := v_types || 'message.status'::text;
		v_datas := v_datas || hub_status_json(v_msg);
	END LOOP;
	RETURN QUERY
	SELECT v_ch.tenant_id, a.event_id, v_types[a.ord], v_datas[a.ord]::text
	FROM hub_stream_append(v_ch.tenant_id, v_types, v_datas) a ORDER BY a.ord;
END;
$$;

-- The visitor's message by its platform id, for the ack of a send (NULL: not stored).
CREATE FUNCTION hub_webchat_message_id(p_channel text, p_external_id text) RETURNS bigint
LANGUAGE sql STABLE AS $$
	SELECT m.id FROM messages m JOIN channels c ON c.id = m.channel_id
	WHERE c.public_id = p_channel AND m.external_id = p_external_id
$$;
