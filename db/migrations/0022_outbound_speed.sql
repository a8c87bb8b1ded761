-- 0022: the SQL of an agent's reply (send, claim, record) without planning on every call.
--
-- A SQL-language function that PostgreSQL cannot inline (its body has a FROM, a subquery or
-- returns a set) is parsed and planned again in every query, and in every transaction when
-- PL/pgSQL calls it in an expression; a PL/pgSQL function plans its statements once per
-- connection. Measured with track_functions = all (bench/outbound --pg-stats), these were
-- most of the PL/pgSQL time of one reply: hub_last_inbound 0.33 ms a call (twice a reply:
-- the window check of send and of the claim) where its query ran 0.04 ms,
-- hub_outbox_behind 0.2 ms a claim, hub_emit_events and hub_append_events 0.12 ms each.
-- Same signatures, same results, same locks: only the language changes.
-- hub_media_obj was IMMUTABLE over jsonb_build_object, which is STABLE: such a function is
-- never inlined (0.1 ms a message object); declared STABLE it is.
--
-- And the sender claims after a record only when the record can have made a row due:
-- hub_outbox_record says when rows wait behind the ones it ended (before, every record was
-- followed by a claim and a next query, most of them finding nothing).
--
-- Functions redefined here: hub_last_inbound, hub_outbox_behind, hub_outbox_next,
-- hub_emit_events, hub_append_events, hub_media_obj, hub_outbox_record.

-- 0021: the platform time of the contact's last message on the conversation's channel.
CREATE OR REPLACE FUNCTION hub_last_inbound(v_conv conversations) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN (SELECT max(coalesce(m.platform_ts, m.created_at)) FROM messages m
		JOIN conversations v ON v.id = m.conversation_id AND v.tenant_id = m.tenant_id
		WHERE v.contact_id = v_conv.contact_id AND v.channel_id = v_conv.channel_id
		      AND v.tenant_id = v_conv.tenant_id AND m.direction = 'in');
END;
$$;

-- 0007: true while an undelivered row of o's conversation is ahead of o.
CREATE OR REPLACE FUNCTION hub_outbox_behind(o outbox) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN EXISTS (SELECT 1 FROM outbox p
		       WHERE p.conversation_id = o.conversation_id AND p.tenant_id = o.tenant_id
			     AND p.status IN ('pending', 'sending')
			     AND (coalesce(p.ord, p.id), p.id) < (coalesce(o.ord, o.id), o.id));
END;
$$;

-- 0007: when the sender should look again without a wake (NULL: nothing undelivered).
CREATE OR REPLACE FUNCTION hub_outbox_next() RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN least((SELECT min(o.next_attempt_at) FROM outbox o
		      WHERE o.status = 'pending' AND NOT hub_outbox_behind(o)),
		     (SELECT min(lease_until) FROM outbox WHERE status = 'sending'));
END;
$$;

-- 0005: events appended (hub_stream_append) and returned as command rows.
CREATE OR REPLACE FUNCTION hub_emit_events(p_tenant text, p_types text[], p_datas jsonb[])
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT 'event'::text, a.event_id, p_types[a.ord::int], p_datas[a.ord::int]::text
	FROM hub_stream_append(p_tenant, p_types, p_datas) a ORDER BY a.ord;
END;
$$;

-- 0007: events appended (hub_stream_append) and returned as the rows a worker publishes.
CREATE OR REPLACE FUNCTION hub_append_events(p_tenant text, p_types text[], p_datas jsonb[])
RETURNS TABLE (tenant text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT p_tenant, a.event_id, p_types[a.ord::int], p_datas[a.ord::int]::text
	FROM hub_stream_append(p_tenant, p_types, p_datas) a ORDER BY a.ord;
END;
$$;

-- 0012: the media object of a message (NULL for none). STABLE, as jsonb_build_object is, so
-- that hub_message_obj inlines it.
CREATE OR REPLACE FUNCTION hub_media_obj(m messages) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN m.media IS NOT NULL THEN jsonb_build_object('kind', m.type,
		'mime', m.media->'mime', 'filename', m.media->'filename', 'size', m.media->'size')
	END
$$;

-- 0007's group commit of the sender's results, and one more row last, (NULL, NULL,
-- 'outbox.waiting', NULL), when undelivered rows of the conversations of the rows it ended
-- (done or failed) are pending: they were behind those and may go now, so the sender claims
-- again (daemon/outbound/outbox.c); without that row it does not. The row has no event id:
-- hub_publish_rows passes it over.
CREATE OR REPLACE FUNCTION hub_outbox_record(p_results jsonb)
RETURNS TABLE (tenant text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_e jsonb;
	v_res record;
	v_ids bigint[] := '{}';
	v_id_tenants text[] := '{}';
	v_tenants text[] := '{}';
	v_types text[] := '{}';
	v_datas jsonb[] := '{}';
	v_tenant text;
BEGIN
	FOR v_e IN SELECT e FROM jsonb_array_elements(p_results) e ORDER BY (e->>'id')::bigint
	LOOP
		SELECT * INTO v_res FROM hub_outbox_result(v_e);
		IF NOT v_e ? 'retry' THEN
			v_ids := v_ids || (v_e->>'id')::bigint;
			v_id_tenants := v_id_tenants || (v_e->>'tenant');
		END IF;
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
	IF EXISTS (SELECT 1 FROM outbox o
		   JOIN outbox p ON p.conversation_id = o.conversation_id
				    AND p.tenant_id = o.tenant_id
		   WHERE o.id = ANY (v_ids) AND o.tenant_id = ANY (v_id_tenants)
			 AND p.status = 'pending') THEN
		RETURN QUERY SELECT NULL::text, NULL::bigint, 'outbox.waiting'::text, NULL::text;
	END IF;
END;
$$;
