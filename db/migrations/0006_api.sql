-- db/migrations/0006_api.sql - reading for the REST API of the inbox page (daemon/inbox/api.c):
-- a tenant's conversations by activity and a conversation's history, both keyset-paged.
-- Only indexes and read-only functions: the tables and the JSON shapes are 0001's.

-- The inbox list: newest activity (the last message, else the creation: never NULL, so it
-- can be half of a cursor) first, ties by id: the keyset of the cursor.
CREATE INDEX conversations_activity ON conversations
	(tenant_id, (coalesce(last_message_at, created_at)) DESC, id DESC);

-- A message as the API shows it: hub_message_json() and, for a failed delivery, "error"
-- (the platform's reason, as message.status carries it).
CREATE FUNCTION hub_api_message_json(m messages, p_contact bigint, p_channel text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT hub_message_json(m, p_contact, p_channel)
		|| jsonb_strip_nulls(jsonb_build_object('error', m.error))
$$;

-- One page of a tenant's conversations, older than the cursor (p_before_us: activity in
-- microseconds since the epoch, p_before_id; both NULL for the first page). One row:
-- items, a JSON array of hub_conversation_json() objects each with "channel_kind"
-- ('whatsapp' ...), "created_at", "contact" {id, display_name, phone} and "last_message"
-- (hub_api_message_json() or null); next_us and next_id, the cursor of the next page, NULL on
-- the last one.
CREATE FUNCTION hub_api_conversations(p_tenant text, p_limit integer, p_before_us bigint,
				      p_before_id bigint)
RETURNS TABLE (items text, next_us bigint, next_id bigint)
LANGUAGE sql STABLE AS $$
	WITH page AS (
		SELECT v, coalesce(v.last_message_at, v.created_at) AS act,
		       row_number() OVER (ORDER BY coalesce(v.last_message_at, v.created_at) DESC,
					  v.id DESC) AS rn
		FROM conversations v
		WHERE v.tenant_id = p_tenant
		      AND (p_before_id IS NULL
			   OR (coalesce(v.last_message_at, v.created_at), v.id)
			      < (timestamptz 'epoch' + p_before_us * interval '1 microsecond',
				 p_before_id))
		ORDER BY coalesce(v.last_message_at, v.created_at) DESC, v.id DESC
		LIMIT p_limit + 1
	), shown AS (
		SELECT p.rn, hub_conversation_json(p.v, ch.public_id)
			|| jsonb_build_object(
				'channel_kind', ch.kind, 'created_at', hub_iso((p.v).created_at),
				'contact', jsonb_build_object('id', c.id,
					'display_name', c.display_name, 'phone', c.phone),
				'last_message', CASE WHEN lm.id IS NOT NULL THEN hub_api_message_json(
					lm.m, (p.v).contact_id, ch.public_id) END)
			AS doc
		FROM page p
		JOIN channels ch ON ch.id = (p.v).channel_id
		JOIN contacts c ON c.id = (p.v).contact_id
		LEFT JOIN LATERAL (
			SELECT m.id, m FROM messages m WHERE m.conversation_id = (p.v).id
			ORDER BY m.id DESC LIMIT 1) lm ON true
		WHERE p.rn <= p_limit
	)
	SELECT (SELECT coalesce(jsonb_agg(s.doc ORDER BY s.rn), '[]'::jsonb)::text FROM shown s),
	       (SELECT (extract(epoch FROM p.act) * 1000000)::bigint FROM page p
		WHERE p.rn = p_limit AND EXISTS (SELECT 1 FROM page x WHERE x.rn > p_limit)),
	       (SELECT (p.v).id FROM page p
		WHERE p.rn = p_limit AND EXISTS (SELECT 1 FROM page x WHERE x.rn > p_limit))
$$;

-- One page of a conversation's history, older than message p_before (NULL: the newest),
-- oldest first. One row: items (a JSON array of hub_api_message_json() objects) and
-- next_before (the oldest id shown, when older messages exist; else NULL); no row when
-- the conversation is not the tenant's.
CREATE FUNCTION hub_api_messages(p_tenant text, p_conversation bigint, p_limit integer,
				 p_before bigint)
RETURNS TABLE (items text, next_before bigint)
LANGUAGE sql STABLE AS $$
	WITH conv AS (
		SELECT v.id, v.contact_id, ch.public_id
		FROM conversations v JOIN channels ch ON ch.id = v.channel_id
		WHERE v.id = p_conversation AND v.tenant_id = p_tenant
	), page AS (
		SELECT m, m.id, row_number() OVER (ORDER BY m.id DESC) AS rn
		FROM messages m
		WHERE m.conversation_id = p_conversation AND m.tenant_id = p_tenant
		      AND (p_before IS NULL OR m.id < p_before)
		ORDER BY m.id DESC
		LIMIT p_limit + 1
	)
	SELECT (SELECT coalesce(jsonb_agg(hub_api_message_json(p.m, conv.contact_id, conv.public_id)
					      ORDER BY p.id), '[]'::jsonb)::text
		FROM page p WHERE p.rn <= p_limit),
	       (SELECT min(p.id) FROM page p
		WHERE p.rn <= p_limit AND EXISTS (SELECT 1 FROM page x WHERE x.rn > p_limit))
	FROM conv
$$;
