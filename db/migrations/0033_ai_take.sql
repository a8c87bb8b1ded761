-- 0033: an answer's start is one round trip, and it asks the database when the next job is
-- due once, not three times.
--
-- hubd asked hub_ai_next() after each customer message's NOTIFY (the answer is due after
-- the quiet period), after each claim (the jobs it left may be due later) and after each
-- answer (its job may be due again), and read each claimed job's context in a query of its
-- own: five round trips an answer besides the webhook's and the answer's own, each waking a
-- backend and then hubd, where a woken process often waits for a CPU (bench/ai). Now:
-- - hub_ai_take claims as hub_ai_claim does, returns each claimed job with its context
--   (hub_ai_context, read after the claim so that it sees the job's token) and adds one
--   row without a conversation whose next_ms says when the next job it left is due
--   (hub_ai_next, read after the claim);
-- - a job whose lease is given back (hub_ai_finish keeps it for a message that came while
--   the provider answered, or retries it) NOTIFYs hub_ai (ai_jobs_released), so an
--   answer's end needs no question: a job is due again only then or when its lease runs
--   out (which the last hub_ai_next accounted for).
-- hub_ai_claim stays as it was, for a hubd of before this migration during an upgrade.

CREATE FUNCTION hub_ai_take(p_limit integer, p_lease_ms integer)
RETURNS TABLE (conversation_id bigint, token bigint, attempts integer, tenant_id text,
	       context jsonb, next_ms bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_conv bigint[];
	v_token bigint[];
	v_attempts integer[];
	v_tenant text[];
BEGIN
	SELECT array_agg(c.conversation_id), array_agg(c.token), array_agg(c.attempts),
	       array_agg(c.tenant_id)
	INTO v_conv, v_token, v_attempts, v_tenant
	FROM hub_ai_claim(p_limit, p_lease_ms) c;
	RETURN QUERY
	SELECT u.conv, u.token, u.attempts, u.tenant, hub_ai_context(u.tenant, u.conv, u.token),
	       NULL::bigint
	FROM unnest(v_conv, v_token, v_attempts, v_tenant) AS u(conv, token, attempts, tenant);
	RETURN QUERY
	SELECT NULL::bigint, NULL::bigint, NULL::integer, NULL::text, NULL::jsonb,
	       ceil(extract(epoch FROM hub_ai_next() - clock_timestamp()) * 1000)::bigint;
END;
$$;

ALTER FUNCTION hub_ai_take(integer, integer) SET plan_cache_mode = force_generic_plan;

-- A job whose lease its holder gave back (hub_ai_finish: kept for a newer message, or a
-- retry) is due again: the instances hear of it as of a new one
CREATE FUNCTION hub_ai_job_released() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('hub_ai', '');
	RETURN NULL;
END;
$$;

CREATE TRIGGER ai_jobs_released AFTER UPDATE OF token ON ai_jobs FOR EACH ROW
	WHEN (OLD.token IS NOT NULL AND NEW.token IS NULL)
	EXECUTE FUNCTION hub_ai_job_released();

-- The warm-up (0025) also compiles the claim hubd now runs: 0025's flows as they are (their
-- hub_ai_claim is hub_ai_take's first statement), then hub_ai_take itself, which claims
-- nothing with a limit of 0.
ALTER FUNCTION hub_warm() RENAME TO hub_warm_flows;

CREATE FUNCTION hub_warm() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM hub_warm_flows();
	PERFORM hub_ai_take(0, 1000);
END;
$$;
