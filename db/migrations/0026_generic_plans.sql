-- 0026: generic plans for the hot functions whose statements PostgreSQL planned again on
-- every call.
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
-- A function's SET holds for the functions it calls: the batch's covers hub_ingest_set,
-- hub_ingest_run and hub_stream_append under it. CREATE OR REPLACE of one of these drops
-- the setting; test_schema.GenericPlans says so.

ALTER FUNCTION hub_ingest_batch(jsonb) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION hub_stream_append(text, text[], jsonb[]) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION hub_stream_flush(text, integer) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION hub_ai_claim(integer, integer) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION hub_ai_context(text, bigint, bigint) SET plan_cache_mode = force_generic_plan;
