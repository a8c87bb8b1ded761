-- 0026: less work on the hot paths: generic plans for the statements PostgreSQL planned
-- again on every call, and one-item webhooks stored item by item.
--
-- A PL/pgSQL statement with parameters gets a custom plan for its first five runs in a
-- session, then the generic one only if its estimated cost is not much above theirs. For
-- these statements it never was (an array parameter, a LIMIT parameter or a tenant the
-- statistics do not know look cheaper with their values in), so every call planned them
-- again: per call (pg_stat_statements, track_planning, over hub_warm()) 0.6 ms for the
-- numbering's DELETE, 0.9 ms for the assistant's claim, 0.6 ms for its context's last reply,
-- and most of a one-item webhook batch (its CPU: 3.2-6.5 ms with custom plans, 1.1-1.9 ms
-- with generic ones; 40- and 200-item batches alike either way). Each statement here reads
-- rows by their keys (= ANY of an array, an equality on an index's leading columns), which
-- the generic plan does as well; run with it, their execution times were unchanged.
--
-- A webhook of one item (most of them, below a few a second) is stored item by item:
-- the set-based statements' fixed cost made it 1.0-1.3 ms of backend CPU against
-- 0.3-0.7 ms (hub_ingest_batch on a one-item array, generic plans, alternating runs); at
-- two items both cost the same, from four on the set-based one is cheaper.
--
-- A function's SET holds for the functions it calls: the batch's covers hub_ingest_set,
-- hub_ingest_run and hub_stream_append under it. CREATE OR REPLACE of one of these drops
-- the setting; test_schema.GenericPlans says so.

-- 0024's, with one-item arrays stored item by item.
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
	IF cardinality(v_items) = 1 THEN
		v_run := hub_ingest_items(v_items, true);
	ELSE
		BEGIN
			v_run := hub_ingest_set(v_items);
		EXCEPTION WHEN OTHERS THEN
			-- runs after the rollback of the block, in the calling transaction
			v_run := hub_ingest_items(v_items, true);
		END;
	END IF;
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
	-- the events, each tenant's in the order queued, tenants in the order above
	RETURN QUERY SELECT u.i, NULL::text, u.tn, 0::bigint, u.t, u.d::text
		     FROM unnest(v_ev_item, v_ev_tenant, v_ev_type, v_ev_data)
			WITH ORDINALITY AS u(i, tn, t, d, o)
		     ORDER BY u.tn, u.o;
END;
$$;

ALTER FUNCTION hub_ingest_batch(jsonb) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION hub_stream_append(text, text[], jsonb[]) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION hub_stream_flush(text, integer) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION hub_ai_claim(integer, integer) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION hub_ai_context(text, bigint, bigint) SET plan_cache_mode = force_generic_plan;
