-- 0020: events are numbered after their transaction commits, not inside it; hubd wakes its
-- own outbox sender instead of a NOTIFY from every send.
--
-- Until now hub_stream_append took the tenant's tenant_stream row lock and held it to
-- COMMIT, so a tenant's event ids were in commit order; but that lock was held through the
-- COMMIT's flush to disk, so every transaction of one tenant that appended events (an
-- agent's send, a delivery's record, an answer of the assistant, an ingest batch) waited
-- for the previous one's flush: a tenant committed at most one such transaction per flush.
--
-- Now a transaction appends its events to event_queue (no lock: the order is the global
-- sequence seq) and hubd numbers them once it has committed: hub_stream_flush takes the
-- stream row lock, moves the tenant's committed queue rows into events with the next ids in
-- seq order, and returns them to publish, many transactions' events in one flush. The
-- promises stay: ids have no holes and follow commit order (a flush numbers only committed
-- rows, and a row committed after a flush's snapshot gets a larger id in the next one); a
-- transaction that read another's committed rows took its seq values after that one's,
-- so their events keep their cause before their effect. hubd flushes right after its own
-- commits; every instance also flushes what an instance left queued when it died
-- (hub_stream_stale).

CREATE TABLE event_queue (
	seq bigserial PRIMARY KEY,
	tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	type text NOT NULL,
	data jsonb NOT NULL,
	queued_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_queue_tenant ON event_queue (tenant_id, seq);

-- Queues events for the tenant's log; the ids come later (hub_stream_flush). Returns
-- event_id 0 for each, in the order of the arrays: "queued, not numbered yet". A tenant
-- without its stream row raises P0002.
CREATE OR REPLACE FUNCTION hub_stream_append(p_tenant text, p_types text[], p_datas jsonb[])
RETURNS TABLE (event_id bigint, ord bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_n integer := cardinality(p_types);
BEGIN
	IF v_n = 0 THEN
		RETURN;
	END IF;
	PERFORM 1 FROM tenant_stream s WHERE s.tenant_id = p_tenant;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant has no event stream' USING ERRCODE = 'P0002';
	END IF;
	INSERT INTO event_queue (tenant_id, type, data)
	SELECT p_tenant, u.t, u.d
	FROM unnest(p_types, p_datas) WITH ORDINALITY AS u(t, d, o) ORDER BY u.o;
	RETURN QUERY SELECT 0::bigint, g FROM generate_series(1, v_n::bigint) g;
END;
$$;

-- Numbers the tenant's queued events that are committed (at most p_limit, oldest first) and
-- returns them in id order. Holds the stream row lock to COMMIT: one flush of a tenant at a
-- time, in the order they take it.
CREATE FUNCTION hub_stream_flush(p_tenant text, p_limit integer)
RETURNS TABLE (tenant text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_last bigint;
	v_n bigint;
BEGIN
	SELECT s.last_event_id INTO v_last FROM tenant_stream s
	WHERE s.tenant_id = p_tenant FOR UPDATE;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	RETURN QUERY
	WITH q AS (
		DELETE FROM event_queue e WHERE e.seq IN (
			SELECT x.seq FROM event_queue x WHERE x.tenant_id = p_tenant
			ORDER BY x.seq LIMIT p_limit)
		RETURNING e.seq, e.type, e.data),
	n AS (
		INSERT INTO events (tenant_id, id, type, data)
		SELECT p_tenant, v_last + row_number() OVER (ORDER BY q.seq), q.type, q.data FROM q
		RETURNING events.id, events.type, events.data)
	SELECT p_tenant, n.id, n.type, n.data::text FROM n ORDER BY n.id;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	IF v_n > 0 THEN
		UPDATE tenant_stream s SET last_event_id = v_last + v_n WHERE s.tenant_id = p_tenant;
	END IF;
END;
$$;

-- Tenants with events queued for longer than p_ms: an instance committed them and died (or
-- lost its database connection) before it numbered them.
CREATE FUNCTION hub_stream_stale(p_ms integer) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
	SELECT e.tenant_id FROM event_queue e
	GROUP BY e.tenant_id
	HAVING min(e.queued_at) < now() - make_interval(secs => p_ms / 1000.0)
$$;

-- 0001's one-event append for tests: queued and numbered in this transaction (the stream
-- row then stays locked to COMMIT, as all appends did before), so it returns the real id.
CREATE OR REPLACE FUNCTION hub_emit_event(p_tenant text, p_type text, p_data jsonb)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_id bigint;
BEGIN
	PERFORM hub_stream_append(p_tenant, ARRAY[p_type], ARRAY[p_data]);
	SELECT max(f.event_id) INTO v_id FROM hub_stream_flush(p_tenant, 2147483647) f;
	RETURN v_id;
END;
$$;

-- A NOTIFY takes a lock that every notifying transaction of the server holds through its
-- COMMIT's flush (PostgreSQL queues notifications in commit order), so a NOTIFY from every
-- agent's send made all sends commit one after the other. hubd's own pooled connections say
-- hub.local_wake=on (set at connect, never through a transaction pooler): hubd then wakes
-- its own sender after the commit and NOTIFY is left out; everyone else (hubctl, psql,
-- hubd through PgBouncer) still wakes every instance with it.
CREATE FUNCTION hub_outbox_wake() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF current_setting('hub.local_wake', true) IS DISTINCT FROM 'on' THEN
		PERFORM pg_notify('hub_outbox', '');
	END IF;
END;
$$;

CREATE OR REPLACE FUNCTION hub_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM hub_outbox_wake();
	RETURN NULL;
END;
$$;
