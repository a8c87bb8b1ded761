-- 0030: a webhook batch numbers its own events when it can, rather than queueing them for
-- a second transaction.
--
-- Since 0020 every batch queued its events (event_queue) and hubd numbered them after the
-- COMMIT in a transaction of its own (hub_stream_flush): a second round trip, a second
-- COMMIT to wait for before the agents' sockets see the message, and the events written
-- twice (queued, then numbered), about a quarter of the database's CPU a webhook item.
-- Now the batch takes the tenant's stream row if no one holds it (SKIP LOCKED) and nothing
-- of the tenant is queued, and numbers its events itself; the row stays locked to its
-- COMMIT, so the ids become visible in the order they were given, as a flush's do.
-- Otherwise (another batch, a flush or another instance holds the row, or older events
-- wait in the queue) it queues them as before, and they are numbered after the ones
-- queued before them: each process's batches, one after another, keep their commit order.
-- Other writers (an agent's reply, the assistant's answer) still queue (hub_stream_append).

-- Numbers the events now when the tenant's stream row is free and nothing of the tenant is
-- queued, else queues them (hub_stream_append: event_id 0). Returns each event's id, in
-- the order of the arrays.
CREATE FUNCTION hub_stream_take(p_tenant text, p_types text[], p_datas jsonb[])
RETURNS TABLE (event_id bigint, ord bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_last bigint;
	v_n integer := coalesce(cardinality(p_types), 0);
BEGIN
	IF v_n = 0 THEN
		RETURN;
	END IF;
	SELECT s.last_event_id INTO v_last FROM tenant_stream s
	WHERE s.tenant_id = p_tenant FOR UPDATE SKIP LOCKED;
	IF NOT FOUND OR EXISTS (SELECT 1 FROM event_queue q WHERE q.tenant_id = p_tenant) THEN
		RETURN QUERY SELECT a.event_id, a.ord FROM hub_stream_append(p_tenant, p_types, p_datas) a;
		RETURN;
	END IF;
	INSERT INTO events (tenant_id, id, type, data)
	SELECT p_tenant, v_last + u.o, u.t, u.d
	FROM unnest(p_types, p_datas) WITH ORDINALITY AS u(t, d, o);
	UPDATE tenant_stream s SET last_event_id = v_last + v_n WHERE s.tenant_id = p_tenant;
	RETURN QUERY SELECT v_last + g, g FROM generate_series(1, v_n::bigint) g;
END;
$$;

-- Whether an event queues an outgoing message (what hubd wakes the outbox for).
CREATE FUNCTION hub_queues_outgoing(p_type text, p_data jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT p_type IN ('message.created', 'message.status') AND p_data->>'status' = 'queued'
$$;

-- 0024's batch, its events numbered or queued by hub_stream_take. Rows: one per item
-- (event_id NULL); then for each tenant, in tenant order, its numbered events in id order
-- (hubd publishes them), or one row with event_id 0 when they were queued; and the events
-- that queue an outgoing message, with event_id 0. hubd reads an unnumbered event for two
-- things only: that its tenant has events to number, and whether it queued an outgoing
-- message (the outbox is then woken at once); 0024 sent every queued event's JSON back for
-- it, which the numbering then sent again.
CREATE OR REPLACE FUNCTION hub_ingest_batch(p_items jsonb)
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
	v_tenants text[];
	v_i integer[];
	v_t text[];
	v_d jsonb[];
	v_ids bigint[];
BEGIN
	BEGIN
		v_run := hub_ingest_set(v_items);
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
	v_tenants := ARRAY(SELECT DISTINCT t FROM unnest(v_ev_tenant) t ORDER BY 1);
	-- last: each tenant's events numbered or queued (hub_stream_take), tenants in order
	-- (no deadlock between batches); then, for each, its numbered events (hubd publishes
	-- them after the COMMIT), or a row that says its tenant has events queued, and the
	-- events that queue an outgoing message (hubd wakes the outbox: event_id 0)
	FOR k IN 1..coalesce(cardinality(v_tenants), 0) LOOP
		IF cardinality(v_tenants) = 1 THEN
			-- one tenant (the common case): the arrays as they are
			v_i := v_ev_item;
			v_t := v_ev_type;
			v_d := v_ev_data;
		ELSE
			SELECT array_agg(u.i ORDER BY u.o), array_agg(u.t ORDER BY u.o),
			       array_agg(u.d ORDER BY u.o)
			INTO v_i, v_t, v_d
			FROM unnest(v_ev_item, v_ev_tenant, v_ev_type, v_ev_data)
				WITH ORDINALITY AS u(i, tn, t, d, o)
			WHERE u.tn = v_tenants[k];
		END IF;
		v_ids := ARRAY(SELECT q.event_id FROM hub_stream_take(v_tenants[k], v_t, v_d) q
			       ORDER BY q.ord);
		RETURN QUERY SELECT v_i[u.o::int], NULL::text, v_tenants[k], u.id, v_t[u.o::int],
				    v_d[u.o::int]::text
			     FROM unnest(v_ids) WITH ORDINALITY AS u(id, o)
			     WHERE u.id > 0 OR u.o = 1 OR hub_queues_outgoing(v_t[u.o::int], v_d[u.o::int])
			     ORDER BY u.o;
		RETURN QUERY SELECT v_i[u.o::int], NULL::text, v_tenants[k], 0::bigint,
				    v_t[u.o::int], v_d[u.o::int]::text
			     FROM unnest(v_ids) WITH ORDINALITY AS u(id, o)
			     WHERE u.id > 0 AND hub_queues_outgoing(v_t[u.o::int], v_d[u.o::int])
			     ORDER BY u.o;
	END LOOP;
END;
$$;

ALTER FUNCTION hub_ingest_batch(jsonb) SET plan_cache_mode = force_generic_plan;
