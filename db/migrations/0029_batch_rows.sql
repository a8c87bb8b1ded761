-- 0029: hub_ingest_batch no longer sends back every event it queued.
--
-- hubd reads an unnumbered event (event_id 0) for two things only: that its tenant has
-- events to number (one row a tenant says it), and whether it queued an outgoing message
-- (the outbox is then woken at once). The event's JSON went back for each one all the same,
-- as text, and the numbering (hub_stream_flush) sends it again, numbered, for the
-- websockets. Now: the items' rows, then one row a tenant, then the events that queue an
-- outgoing message, if any. Otherwise as 0024.
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
	IF cardinality(v_tenants) = 1 THEN
		-- one tenant (the common case): the arrays as they are
		PERFORM hub_stream_append(v_tenants[1], v_ev_type, v_ev_data);
	ELSE
		-- last: each tenant's stream row, in tenant order (no deadlock between batches)
		FOR k IN 1..cardinality(v_tenants) LOOP
			PERFORM hub_stream_append(v_tenants[k],
				ARRAY(SELECT u.t FROM unnest(v_ev_tenant, v_ev_type)
					WITH ORDINALITY AS u(tn, t, o)
				      WHERE u.tn = v_tenants[k] ORDER BY u.o),
				ARRAY(SELECT u.d FROM unnest(v_ev_tenant, v_ev_data)
					WITH ORDINALITY AS u(tn, d, o)
				      WHERE u.tn = v_tenants[k] ORDER BY u.o));
		END LOOP;
	END IF;
	-- one row a tenant with events to number, then the events that queue an outgoing
	-- message (what hubd looks for in an event's JSON)
	RETURN QUERY SELECT min(u.i), NULL::text, u.tn, 0::bigint, NULL::text, NULL::text
		     FROM unnest(v_ev_item, v_ev_tenant) AS u(i, tn)
		     GROUP BY u.tn ORDER BY u.tn;
	RETURN QUERY SELECT u.i, NULL::text, u.tn, 0::bigint, u.t, u.d::text
		     FROM unnest(v_ev_item, v_ev_tenant, v_ev_type, v_ev_data)
			WITH ORDINALITY AS u(i, tn, t, d, o)
		     WHERE u.t IN ('message.created', 'message.status')
			   AND u.d->>'status' = 'queued'
		     ORDER BY u.tn, u.o;
END;
$$;

ALTER FUNCTION hub_ingest_batch(jsonb) SET plan_cache_mode = force_generic_plan;
