-- 0028: the assistant's storing transaction gets generic plans, as 0026 gave the others.
--
-- hub_ai_finish's statements did get a generic plan in the end, but only at their sixth
-- run in a session: the first five each planned the storing statement again (0.8 ms, its
-- JSON functions inlined) and the locking read (0.7 ms). hub_warm() runs the function once
-- on each new connection, so with eight pooled connections about forty answers after a
-- start paid 1.5 ms more than the others. With the setting the warm-up's run plans them
-- once for good; each reads its rows by their keys, as the generic plan does.

ALTER FUNCTION hub_ai_finish(text, bigint, bigint, bigint, text, text, text, text, integer, jsonb)
	SET plan_cache_mode = force_generic_plan;
