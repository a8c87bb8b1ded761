-- 0024: the set-based group commit (0019, 0021) with less work a batch (issue 18, point 2).
--
-- Measured with pg_stat_statements (track = all) and auto_explain (nested statements) over
-- bench/run's realistic batches (bench/ingest_ab), the batch SQL spent, besides the rows
-- that plain set-based INSERT writes too:
-- - about 15 % queueing its events (2.0 of 12.9 ms for 40 items, 7.6 of 49 for 200): one
--   event_queue row per event (78 for 40 items, 380 for 200), each with its foreign-key
--   check on tenants (an RI query and a key-share lock), its index entry and its tuple;
--   and the rows were deleted again one by one by the flush.
--   Now one row per append holds the append's events as two arrays (types, datas): one
--   tuple, one index entry, one RI check; hub_stream_flush unnests them in (seq, place)
--   order, so ids still follow commit order, and the events of one append stay together.
-- - a second read of every conversation of the run to write its event; the UPDATE and
--   INSERT of the conversations now return the JSON (hub_conversation_json) once per
--   conversation, and each message's event takes it with its channel and unread count.
-- - ON CONFLICT DO NOTHING on the messages (a speculative insertion, one more WAL record a
--   row) where the run has already looked each message up: a plain INSERT; a message that a
--   concurrent transaction stored meanwhile raises unique_violation and the batch goes item
--   by item, as the count check did before (both lead to hub_ingest_items).
-- - the contact search words (0015) by a row trigger, one PL/pgSQL call and statement per
--   new contact: now one statement-level trigger for the INSERT (the UPDATE keeps its row
--   trigger).
-- - hub_ingest_set and hub_ingest_batch copying the events of a run element by element in
--   PL/pgSQL loops, and a join per tenant to rebuild the rows from hub_stream_append's
--   answer (which is only zeros since 0020): whole arrays now.
-- Statements a batch (foreign-key checks included) 256 -> 179 for 40 items, 1,130 -> 752
-- for 200; the backend's CPU an item 545 -> 455 us and 212 -> 184 us (bench/ingest_ab
-- --before 3f9aa9e --sessions 100 --statements on the shared 2-core machine; README).
-- Every rule stays: each item's result and events are those of 0021 (test_ingest_set),
-- the lock order (contact -> conversation -> message, hub_stream_append last), ids in
-- commit order (hub_stream_flush), every statement names its tenant (test_schema).
--
-- Redefines hub_stream_append, hub_stream_flush (0021), hub_ingest_run (0021),
-- hub_ingest_set, hub_ingest_batch (0019); adds hub_contact_words_rows.

-- 1. The event queue: one row an append.
ALTER TABLE event_queue ADD COLUMN types text[], ADD COLUMN datas jsonb[];
UPDATE event_queue SET types = ARRAY[type], datas = ARRAY[data];
ALTER TABLE event_queue DROP COLUMN type, DROP COLUMN data,
	ALTER COLUMN types SET NOT NULL, ALTER COLUMN datas SET NOT NULL,
	ADD CONSTRAINT event_queue_events CHECK (
		cardinality(types) >= 1 AND cardinality(types) = cardinality(datas)
		AND array_position(types, NULL) IS NULL AND array_position(datas, NULL) IS NULL);
-- A batch's events are 20-200 KB of JSON: stored out of line as they are (pglz took 1.3 %
-- of the backend's profile; they are read once, by the flush).
ALTER TABLE event_queue ALTER COLUMN datas SET STORAGE EXTERNAL;

-- Queues events for the tenant's log; the ids come later (hub_stream_flush). Returns
-- event_id 0 for each, in the order of the arrays: "queued, not numbered yet". A tenant
-- without its stream row raises P0002; arrays of different lengths or with a NULL raise
-- 23514 (nothing is queued).
CREATE OR REPLACE FUNCTION hub_stream_append(p_tenant text, p_types text[], p_datas jsonb[])
RETURNS TABLE (event_id bigint, ord bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_n integer := coalesce(cardinality(p_types), 0);
BEGIN
	IF v_n = 0 THEN
		RETURN;
	END IF;
	PERFORM 1 FROM tenant_stream s WHERE s.tenant_id = p_tenant;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant has no event stream' USING ERRCODE = 'P0002';
	END IF;
	INSERT INTO event_queue (tenant_id, types, datas) VALUES (p_tenant, p_types, p_datas);
	RETURN QUERY SELECT 0::bigint, g FROM generate_series(1, v_n::bigint) g;
END;
$$;

-- Numbers the tenant's queued events that are committed, oldest first, and returns them in
-- id order. Takes whole appends: those that start before p_limit events (so at least one,
-- and at most p_limit appends; a flush may return more than p_limit events, the caller
-- flushes again when it got p_limit or more). Holds the stream row lock to COMMIT: one
-- flush of a tenant at a time, in the order they take it.
CREATE OR REPLACE FUNCTION hub_stream_flush(p_tenant text, p_limit integer)
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
		-- (= ANY of an array: the rows by their key, not a hash of the whole queue)
		DELETE FROM event_queue e WHERE e.tenant_id = p_tenant AND e.seq = ANY (ARRAY(
			SELECT y.seq FROM (
				SELECT x.seq, sum(cardinality(x.types)) OVER (ORDER BY x.seq)
					      - cardinality(x.types) AS before
				FROM (SELECT z.seq, z.types FROM event_queue z
				      WHERE z.tenant_id = p_tenant ORDER BY z.seq LIMIT p_limit) x) y
			WHERE y.before < p_limit))
		RETURNING e.seq, e.types, e.datas),
	n AS (
		INSERT INTO events (tenant_id, id, type, data)
		SELECT p_tenant, v_last + row_number() OVER (ORDER BY q.seq, u.o), u.t, u.d
		FROM q, unnest(q.types, q.datas) WITH ORDINALITY AS u(t, d, o)
		RETURNING events.id, events.type, events.data)
	SELECT p_tenant, n.id, n.type, n.data::text FROM n ORDER BY n.id;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	IF v_n > 0 THEN
		UPDATE tenant_stream s SET last_event_id = v_last + v_n WHERE s.tenant_id = p_tenant;
	END IF;
END;
$$;

-- 2. A contact's search words (0015) once a statement for the contacts it inserted.
CREATE FUNCTION hub_contact_words_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO contact_name_words (tenant_id, word, contact_id)
	SELECT DISTINCT n.tenant_id, w, n.id
	FROM hub_new_contacts n, hub_name_words(n.display_name) w
	WHERE n.display_name IS NOT NULL
	ON CONFLICT DO NOTHING;
	RETURN NULL;
END;
$$;
DROP TRIGGER contacts_words_ins ON contacts;
CREATE TRIGGER contacts_words_ins AFTER INSERT ON contacts
	REFERENCING NEW TABLE AS hub_new_contacts
	FOR EACH STATEMENT EXECUTE FUNCTION hub_contact_words_rows();

-- 3. The set-based run (0021): the conversations' JSON from their UPDATE and INSERT, the
-- messages by a plain INSERT.
CREATE OR REPLACE FUNCTION hub_ingest_run(p_w hub_ingest_w[], OUT o_cut integer, OUT o_results text[], OUT o_ev_item integer[], OUT o_ev_type text[], OUT o_ev_data jsonb[])
 RETURNS record
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_base integer := p_w[1].ord - 1;  -- item ord = v_base + position in the arrays below
	v_s hub_ingest_w[];
	v_count bigint;
	v_want bigint;
	v_newc integer[];    -- ords of the first items of new senders, in order
	v_newid bigint[];    -- their contact ids (taken in that order)
	v_cid bigint[];      -- by position: the item's contact
	v_conv bigint[];     -- by position: the item's conversation
	v_cnew bigint[];     -- conversations created (ids)
	v_gconv bigint[];    -- conversations updated (ids, in order), their contacts, messages
	v_gcontact bigint[];
	v_gk integer[];
	v_st_new integer[];  -- ords of statuses recorded now (not duplicates)
	v_st_ord integer[];  -- statuses that moved their message: ord, event data
	v_st_data jsonb[];
	v_sg_ord integer[];  -- merge suggestions made: ord of the new sender, other contact
	v_sg_other bigint[];
	v_tenants text[] := ARRAY(SELECT DISTINCT w.tenant FROM unnest(p_w) w);
	v_jid bigint[];      -- conversations updated or created: id, JSON (channel_id null),
	v_jdata jsonb[];     -- unread count after the run
	v_junread integer[];
BEGIN
	-- Classify against what is stored (no writes yet). Lookups are scalar subqueries with
	-- LIMIT 1, not EXISTS: PostgreSQL planned those as hashed subplans that read the whole
	-- table (messages, contacts) for a batch of 200.
	v_s := ARRAY(
		WITH u AS (
			SELECT w.ord, w.kind, w.ch_id, w.tenant, w.ch_public, w.ch_kind, w.ext,
			       w.sender, w.phone, w.name, w.username, w.mtype, w.media, w.txt,
			       w.raw_type, w.reply_to, w.ts, w.status, w.error, w.upd, w.plain,
			       w.upd IS NOT NULL AND (
				row_number() OVER (PARTITION BY w.ch_id, w.upd ORDER BY w.ord) > 1
				OR coalesce((SELECT true FROM ingest_keys k WHERE k.channel_id = w.ch_id
					     AND k.kind = 'update' AND k.key = w.upd
					     AND k.tenant_id = w.tenant LIMIT 1), false))
				AS upd_dup
			FROM unnest(p_w) w),
		d AS (
			SELECT u.*, u.kind = 'message' AND NOT u.upd_dup AND (
				row_number() OVER (PARTITION BY u.kind = 'message' AND NOT u.upd_dup,
						   u.ch_id, u.ext ORDER BY u.ord) > 1
				OR coalesce((SELECT true FROM messages m WHERE m.channel_id = u.ch_id
					     AND m.external_id = u.ext AND m.tenant_id = u.tenant
					     LIMIT 1), false)) AS msg_dup,
			       u.kind = 'status' AND NOT u.upd_dup AS st,
			       row_number() OVER (PARTITION BY u.kind = 'status' AND NOT u.upd_dup,
						  u.ch_id, u.ext ORDER BY u.ord) AS st_n
			FROM u),
		r AS (
			SELECT d.*, d.kind = 'message' AND NOT d.upd_dup AND NOT d.msg_dup AS live,
			       i.id AS ident_id, i.contact_id AS known, i.profile_name AS i_name,
			       i.username AS i_username, i.phone AS i_phone,
			       c.display_name AS c_name, c.name_set_by_agent AS c_locked,
			       c.phone AS c_phone
			FROM d LEFT JOIN (contact_identities i
					  JOIN contacts c ON c.id = i.contact_id
							     AND c.tenant_id = i.tenant_id)
				ON d.kind = 'message' AND NOT d.upd_dup AND NOT d.msg_dup
				   AND i.channel_id = d.ch_id AND i.external_id = d.sender
				   AND i.tenant_id = d.tenant),
		f AS (
			SELECT r.*,
			       first_value(r.ord) OVER g AS g_ord, first_value(r.name) OVER g AS g_name,
			       first_value(r.username) OVER g AS g_username,
			       first_value(r.phone) OVER g AS g_phone,
			       first_value(jsonb_build_array(r.ch_id, r.sender)) OVER (
				PARTITION BY r.live AND r.ident_id IS NULL AND r.phone IS NOT NULL,
					     r.tenant, r.phone ORDER BY r.ord) AS phone_owner
			FROM r
			WINDOW g AS (PARTITION BY r.live, r.ch_id, r.sender ORDER BY r.ord))
		SELECT ROW(f.ord, f.kind, f.ch_id, f.tenant, f.ch_public, f.ch_kind, f.ext,
			   f.sender, f.phone, f.name, f.username, f.mtype, f.media, f.txt,
			   f.raw_type, f.reply_to, f.ts, f.status, f.error, f.upd, f.plain,
			   f.upd_dup, f.msg_dup, f.live, f.st, f.known,
			   f.live AND f.ident_id IS NULL, f.live AND f.ord = f.g_ord,
			   CASE
			   WHEN f.st THEN f.st_n > 1  -- a second status of one message
			   WHEN NOT f.live THEN false
			   -- a known sender: a rename, a phone learnt or merged, a changed identity
			   WHEN f.ident_id IS NOT NULL THEN
				(f.name IS NOT NULL AND (f.name IS DISTINCT FROM f.i_name
					OR (f.c_name IS NULL AND NOT f.c_locked)))
				OR (f.username IS NOT NULL AND f.username IS DISTINCT FROM f.i_username)
				OR (f.phone IS NOT NULL AND (f.c_phone IS NULL
							     OR f.phone IS DISTINCT FROM f.i_phone))
			   -- a new sender: its phone is a stored contact's or another new sender's
			   WHEN f.ord = f.g_ord THEN
				f.phone IS NOT NULL AND (
					f.phone_owner <> jsonb_build_array(f.ch_id, f.sender)
					OR coalesce((SELECT true FROM contacts c
						     WHERE c.tenant_id = f.tenant AND c.phone = f.phone
						     LIMIT 1), false))
			   -- its later items: what the first one stored changes
			   ELSE (f.name IS NOT NULL AND f.name IS DISTINCT FROM f.g_name)
				OR (f.username IS NOT NULL AND f.username IS DISTINCT FROM f.g_username)
				OR (f.phone IS NOT NULL AND f.phone IS DISTINCT FROM f.g_phone)
			   END)::hub_ingest_w
		FROM f ORDER BY f.ord);
	SELECT coalesce(min(s.ord), v_base + cardinality(p_w) + 1) INTO o_cut
	FROM unnest(v_s) s WHERE s.complex;
	o_results := '{}';
	o_ev_item := '{}';
	o_ev_type := '{}';
	o_ev_data := '{}';
	IF o_cut = v_base + 1 THEN
		RETURN;
	END IF;
	v_s := v_s[1:o_cut - v_base - 1];

	-- Telegram update ids: once per channel.
	INSERT INTO ingest_keys (channel_id, tenant_id, kind, key)
	SELECT s.ch_id, s.tenant, 'update', s.upd FROM unnest(v_s) s
	WHERE s.upd IS NOT NULL AND NOT s.upd_dup ORDER BY s.ord
	ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS v_count = ROW_COUNT;
	SELECT count(*) INTO v_want FROM unnest(v_s) s WHERE s.upd IS NOT NULL AND NOT s.upd_dup;
	IF v_count <> v_want THEN
		RAISE EXCEPTION 'update id stored meanwhile' USING ERRCODE = '40001';
	END IF;

	-- Statuses (0004 hub_ingest_status; one per message in the run): hub_outbound_lock in
	-- key order, recorded once per (channel, id, status), applied when they move the
	-- message forward.
	IF EXISTS (SELECT 1 FROM unnest(v_s) s WHERE s.st) THEN
		PERFORM hub_outbound_lock(s.ch_id, s.ext) FROM unnest(v_s) s WHERE s.st
		ORDER BY s.ch_id, s.ext;
		WITH ins AS (
			INSERT INTO message_statuses (channel_id, tenant_id, external_id, status,
						      error, platform_ts)
			SELECT s.ch_id, s.tenant, s.ext, s.status, nullif(s.error, ''),
			       hub_ms_ts(s.ts)
			FROM unnest(v_s) s WHERE s.st ORDER BY s.ord
			ON CONFLICT (channel_id, external_id, status, tenant_id) DO NOTHING
			RETURNING channel_id, external_id)
		SELECT coalesce(array_agg(s.ord), '{}') INTO v_st_new
		FROM unnest(v_s) s JOIN ins ON ins.channel_id = s.ch_id AND ins.external_id = s.ext
		WHERE s.st;
		PERFORM 1 FROM messages m
		WHERE (m.channel_id, m.external_id, m.tenant_id) IN (
			SELECT s.ch_id, s.ext, s.tenant FROM unnest(v_s) s WHERE s.ord = ANY (v_st_new))
		      AND m.direction = 'out'
		ORDER BY m.id FOR UPDATE OF m;
		WITH up AS (
			UPDATE messages m
			SET status = s.status,
			    error = CASE WHEN s.status = 'failed' THEN nullif(s.error, '')
					 ELSE m.error END
			FROM unnest(v_s) s
			WHERE s.ord = ANY (v_st_new) AND m.channel_id = s.ch_id
			      AND m.external_id = s.ext AND m.tenant_id = s.tenant
			      AND m.direction = 'out'
			      AND m.status <> 'failed'
			      AND hub_status_rank(s.status) > hub_status_rank(m.status)
			RETURNING s.ord, hub_status_json(m) AS data)
		SELECT coalesce(array_agg(up.ord ORDER BY up.ord), '{}'),
		       coalesce(array_agg(up.data ORDER BY up.ord), '{}')
		INTO v_st_ord, v_st_data FROM up;
	END IF;

	-- New senders: their contacts (ids taken in item order) and identities (a concurrent
	-- first message of one of them: 40001, the item-by-item path).
	v_newc := ARRAY(SELECT s.ord FROM unnest(v_s) s WHERE s.new_contact AND s.gfirst
			ORDER BY s.ord);
	IF cardinality(v_newc) > 0 THEN
		v_newid := ARRAY(SELECT nextval('contacts_id_seq')
				 FROM generate_series(1, cardinality(v_newc)));
		INSERT INTO contacts (id, tenant_id, display_name, phone)
		SELECT n.id, s.tenant, coalesce(s.name, s.username), s.phone
		FROM unnest(v_newc, v_newid) AS n(ord, id) JOIN unnest(v_s) s ON s.ord = n.ord
		ORDER BY n.ord;
		INSERT INTO contact_identities AS i (contact_id, tenant_id, channel_id, external_id,
						     phone, profile_name, username)
		SELECT n.id, s.tenant, s.ch_id, s.sender, s.phone, s.name, s.username
		FROM unnest(v_newc, v_newid) AS n(ord, id) JOIN unnest(v_s) s ON s.ord = n.ord
		ORDER BY n.ord
		ON CONFLICT (channel_id, external_id, tenant_id) DO NOTHING;
		GET DIAGNOSTICS v_count = ROW_COUNT;
		IF v_count <> cardinality(v_newc) THEN
			RAISE EXCEPTION 'identity stored meanwhile' USING ERRCODE = '40001';
		END IF;
		-- The same name as another contact: suggest, never merge (the other: the lowest
		-- id among the contacts stored when this one was made).
		WITH o AS (
			SELECT n.ord, n.id, s.tenant,
			       (SELECT c.id FROM contacts c WHERE c.tenant_id = s.tenant
				AND lower(c.display_name) = lower(s.name) AND c.id <> n.id
				AND (c.id < n.id OR NOT c.id = ANY (v_newid))
				ORDER BY c.id LIMIT 1) AS other
			FROM unnest(v_newc, v_newid) AS n(ord, id) JOIN unnest(v_s) s ON s.ord = n.ord
			WHERE s.name IS NOT NULL),
		ins AS (
			INSERT INTO merge_suggestions AS g (tenant_id, contact_id, other_contact_id,
							   reason)
			SELECT o.tenant, o.id, o.other, 'same_name' FROM o
			WHERE o.other IS NOT NULL ORDER BY o.ord
			ON CONFLICT (contact_id, other_contact_id, tenant_id) DO NOTHING
			RETURNING g.contact_id, g.other_contact_id)
		SELECT coalesce(array_agg(o.ord ORDER BY o.ord), '{}'),
		       coalesce(array_agg(ins.other_contact_id ORDER BY o.ord), '{}')
		INTO v_sg_ord, v_sg_other
		FROM ins JOIN o ON o.id = ins.contact_id;
	END IF;
	-- Each item's contact (a new sender's later items: the contact its first one made).
	v_cid := ARRAY(
		SELECT CASE WHEN s.new_contact THEN
			v_newid[array_position(v_newc, first_value(s.ord) OVER (
				PARTITION BY s.live, s.ch_id, s.sender ORDER BY s.ord))]
			ELSE s.contact_id END
		FROM unnest(v_s) s ORDER BY s.ord);

	-- Conversations (0004 hub_conversation_for): of each contact and channel, the open
	-- one, else the latest one reopened, locked in id order and updated once with the
	-- number of its messages; else a new one.
	v_conv := ARRAY(
		SELECT CASE WHEN s.live AND NOT s.new_contact THEN
			(SELECT v.id FROM conversations v
			 WHERE v.contact_id = v_cid[s.ord - v_base] AND v.channel_id = s.ch_id
			       AND v.tenant_id = s.tenant
			 ORDER BY v.status = 'open' DESC, v.id DESC LIMIT 1) END
		FROM unnest(v_s) s ORDER BY s.ord);
	-- (Rows by id = ANY and subscripts, not a join: a join with a 200-row array was
	-- planned as a hash join over the whole table.)
	SELECT coalesce(array_agg(g.conv ORDER BY g.conv), '{}'),
	       coalesce(array_agg(g.contact ORDER BY g.conv), '{}'),
	       coalesce(array_agg(g.k ORDER BY g.conv), '{}')
	INTO v_gconv, v_gcontact, v_gk
	FROM (SELECT v_conv[s.ord - v_base] AS conv, v_cid[s.ord - v_base] AS contact,
		     count(*)::integer AS k
	      FROM unnest(v_s) s WHERE s.live AND v_conv[s.ord - v_base] IS NOT NULL
	      GROUP BY 1, 2) g;
	PERFORM 1 FROM conversations v
	WHERE v.id = ANY (v_gconv) AND v.tenant_id = ANY (v_tenants) ORDER BY v.id
	FOR UPDATE OF v;
	WITH up AS (
		UPDATE conversations v
		SET status = 'open', unread = v.unread + v_gk[array_position(v_gconv, v.id)],
		    last_message_at = now(), updated_at = now()
		WHERE v.id = ANY (v_gconv) AND v.tenant_id = ANY (v_tenants)
		      AND v.contact_id = v_gcontact[array_position(v_gconv, v.id)]
		      AND (v.status = 'open' OR (SELECT x.id FROM conversations x
			   WHERE x.contact_id = v.contact_id AND x.channel_id = v.channel_id
				 AND x.tenant_id = v.tenant_id AND x.status = 'open' LIMIT 1) IS NULL)
		RETURNING v.id, hub_conversation_json(v, NULL) AS data, v.unread)
	SELECT count(*), coalesce(array_agg(up.id), '{}'), coalesce(array_agg(up.data), '{}'),
	       coalesce(array_agg(up.unread), '{}')
	INTO v_count, v_jid, v_jdata, v_junread FROM up;
	IF v_count <> cardinality(v_gconv) THEN
		RAISE EXCEPTION 'conversation race' USING ERRCODE = '40001';
	END IF;
	WITH g AS (
		SELECT v_cid[s.ord - v_base] AS contact, s.ch_id, s.tenant, count(*) AS k,
		       min(s.ord) AS f
		FROM unnest(v_s) s WHERE s.live AND v_conv[s.ord - v_base] IS NULL
		GROUP BY 1, 2, 3),
	ins AS (
		INSERT INTO conversations AS v (tenant_id, contact_id, channel_id,
						last_message_at, unread)
		SELECT g.tenant, g.contact, g.ch_id, now(), g.k FROM g ORDER BY g.f
		ON CONFLICT (contact_id, channel_id, tenant_id) WHERE status = 'open' DO NOTHING
		RETURNING v.id, v.contact_id, v.channel_id,
			  hub_conversation_json(v, NULL) AS data, v.unread)
	SELECT (SELECT count(*) FROM g), coalesce(array_agg(ins.id), '{}'),
	       ARRAY(SELECT CASE WHEN s.live THEN coalesce(v_conv[s.ord - v_base],
			(SELECT i2.id FROM ins i2 WHERE i2.contact_id = v_cid[s.ord - v_base]
			 AND i2.channel_id = s.ch_id)) END
		     FROM unnest(v_s) s ORDER BY s.ord),
	       v_jid || coalesce(array_agg(ins.id), '{}'),
	       v_jdata || coalesce(array_agg(ins.data), '{}'),
	       v_junread || coalesce(array_agg(ins.unread), '{}')
	INTO v_want, v_cnew, v_conv, v_jid, v_jdata, v_junread FROM ins;
	IF cardinality(v_cnew) <> v_want THEN
		RAISE EXCEPTION 'conversation race' USING ERRCODE = '40001';
	END IF;

	-- The messages (ids in item order; the AI trigger of 0010 fires for each), then every
	-- event of the run, each item's in the order hub_ingest_item gives them:
	-- contact.updated (a new contact), contact.merge_suggested, conversation.created or
	-- .updated (with the unread count after this item), message.created; message.status.
	WITH ins AS (
		INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, external_id,
					   direction, author, type, text, raw_type,
					   reply_to_external_id, status, platform_ts, media)
		SELECT s.tenant, v_conv[s.ord - v_base], s.ch_id, s.ext, 'in', 'contact', s.mtype,
		       s.txt, s.raw_type, s.reply_to, 'received', hub_ms_ts(s.ts), s.media
		FROM unnest(v_s) s WHERE s.live ORDER BY s.ord
		RETURNING m AS msg, m.channel_id, m.external_id),
	ev AS (
		SELECT n.ord, 1 AS sub, 'contact.updated' AS type, hub_contact_json(c) AS data
		FROM unnest(v_newc, v_newid) AS n(ord, id)
		JOIN contacts c ON c.id = n.id AND c.tenant_id = ANY (v_tenants)
		UNION ALL
		SELECT g.ord, 2, 'contact.merge_suggested', jsonb_build_object(
			'contact_id', v_cid[g.ord - v_base], 'other_contact_id', g.other,
			'reason', 'same_name')
		FROM unnest(v_sg_ord, v_sg_other) AS g(ord, other)
		UNION ALL
		SELECT q.ord, 3, CASE WHEN q.j = 1 AND q.conv = ANY (v_cnew)
				     THEN 'conversation.created' ELSE 'conversation.updated' END,
		       v.data || jsonb_build_object('channel_id', q.ch_public,
						    'unread', v.unread - (q.k - q.j))
		FROM (SELECT s.ord, s.ch_public, v_conv[s.ord - v_base] AS conv,
			     row_number() OVER w AS j,
			     count(*) OVER (PARTITION BY v_conv[s.ord - v_base]) AS k
		      FROM unnest(v_s) s WHERE s.live
		      WINDOW w AS (PARTITION BY v_conv[s.ord - v_base] ORDER BY s.ord)) q
		JOIN unnest(v_jid, v_jdata, v_junread) AS v(id, data, unread) ON v.id = q.conv
		UNION ALL
		SELECT s.ord, 4, 'message.created',
		       hub_message_obj(i.msg, v_cid[s.ord - v_base], s.ch_public, '[]')
		FROM ins i JOIN unnest(v_s) s ON s.live AND s.ch_id = i.channel_id
						 AND s.ext = i.external_id
		UNION ALL
		SELECT st.ord, 1, 'message.status', st.data
		FROM unnest(v_st_ord, v_st_data) AS st(ord, data))
	SELECT (SELECT count(*) FROM ins),
	       coalesce(array_agg(ev.ord ORDER BY ev.ord, ev.sub), '{}'),
	       coalesce(array_agg(ev.type ORDER BY ev.ord, ev.sub), '{}'),
	       coalesce(array_agg(ev.data ORDER BY ev.ord, ev.sub), '{}')
	INTO v_count, o_ev_item, o_ev_type, o_ev_data FROM ev;
	SELECT count(*) INTO v_want FROM unnest(v_s) s WHERE s.live;
	IF v_count <> v_want THEN
		RAISE EXCEPTION 'message stored meanwhile' USING ERRCODE = '40001';
	END IF;

	o_results := ARRAY(
		SELECT CASE WHEN s.upd_dup OR s.msg_dup THEN 'duplicate'
			    WHEN s.live THEN 'stored'
			    WHEN NOT s.ord = ANY (v_st_new) THEN 'duplicate'
			    WHEN s.ord = ANY (v_st_ord) THEN 'stored'
			    WHEN (SELECT true FROM messages m WHERE m.channel_id = s.ch_id
				  AND m.external_id = s.ext AND m.tenant_id = s.tenant
				  AND m.direction = 'out' LIMIT 1)
			    THEN 'stale' ELSE 'unknown' END
		FROM unnest(v_s) s ORDER BY s.ord);
END;
$function$;

-- 4. 0019's driver: a run's results and events as whole arrays.
CREATE OR REPLACE FUNCTION hub_ingest_set(p_items jsonb[],
	OUT o_results text[], OUT o_ev_item integer[], OUT o_ev_tenant text[],
	OUT o_ev_type text[], OUT o_ev_data jsonb[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_w hub_ingest_w[];
	v_n integer := coalesce(cardinality(p_items), 0);
	v_p integer := 1;
	v_q integer;
	v_ch channels;
	v_res record;
	v_run record;
	v_nev integer := 0;
BEGIN
	o_results := '{}';
	o_ev_item := '{}';
	o_ev_tenant := '{}';
	o_ev_type := '{}';
	o_ev_data := '{}';
	-- The batch read once. plain: what hub_ingest_run stores; the rest, and what
	-- hub_ingest_item would refuse, goes alone.
	v_w := ARRAY(
		SELECT ROW(u.ord, u.p->>'kind', c.id, c.tenant_id, c.public_id, c.kind,
			   u.p->>'external_id', u.p->>'sender',
			   CASE WHEN u.p->>'phone' ~ '^\+[1-9][0-9]{6,14}$' THEN u.p->>'phone' END,
			   hub_clean_name(u.p->>'name'), nullif(u.p->>'username', ''), x.t,
			   CASE WHEN x.t IN ('image', 'audio', 'video', 'document', 'sticker')
				     AND coalesce(u.p->'media'->>'ref', '') <> ''
				THEN jsonb_strip_nulls(u.p->'media') END,
			   u.p->>'text', nullif(u.p->>'raw_type', ''), nullif(u.p->>'reply_to', ''),
			   (u.p->>'ts')::bigint, u.p->>'status', u.p->>'error', u.p->>'update_id',
			   c.id IS NOT NULL AND coalesce(u.p->>'external_id', '') <> ''
			   AND (NOT u.p ? 'update_id' OR u.p->>'update_id' IS NOT NULL)
			   AND ((u.p->>'kind' = 'message' AND coalesce(u.p->>'sender', '') <> '')
				OR (u.p->>'kind' = 'status' AND hub_status_rank(u.p->>'status') >= 1
				    AND NOT (c.kind = 'instagram' AND u.p->>'status' = 'read'))),
			   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::hub_ingest_w
		FROM unnest(p_items) WITH ORDINALITY AS u(p, ord)
		CROSS JOIN LATERAL (SELECT CASE WHEN u.p->>'type' IN ('text', 'image', 'audio',
			'video', 'document', 'sticker', 'location', 'contact', 'reaction',
			'interactive') THEN u.p->>'type' ELSE 'unsupported' END AS t) x
		LEFT JOIN (channels c JOIN tenants tn ON tn.id = c.tenant_id
						      AND tn.deleted_at IS NULL)
			ON c.public_id = u.p->>'channel' AND c.enabled
		ORDER BY u.ord);

	WHILE v_p <= v_n LOOP
		IF v_w[v_p].plain THEN
			v_q := v_p;
			WHILE v_q < v_n AND v_w[v_q + 1].plain LOOP
				v_q := v_q + 1;
			END LOOP;
			v_run := hub_ingest_run(v_w[v_p:v_q]);
			IF v_run.o_cut > v_p THEN
				-- whole arrays (o_results holds the items before v_p)
				o_results := o_results || v_run.o_results;
				o_ev_item := o_ev_item || v_run.o_ev_item;
				o_ev_tenant := o_ev_tenant || ARRAY(
					SELECT w.tenant FROM unnest(v_run.o_ev_item) WITH ORDINALITY
						AS e(i, k)
					JOIN unnest(v_w) w ON w.ord = e.i ORDER BY e.k);
				o_ev_type := o_ev_type || v_run.o_ev_type;
				o_ev_data := o_ev_data || v_run.o_ev_data;
				v_nev := cardinality(o_ev_item);
				v_p := v_run.o_cut;
				CONTINUE;
			END IF;
		END IF;
		-- alone, in its place
		v_res := hub_ingest_item(v_ch, p_items[v_p]);
		v_ch := v_res.p_ch;
		o_results[v_p] := v_res.o_result;
		FOR k IN 1..coalesce(cardinality(v_res.o_types), 0) LOOP
			v_nev := v_nev + 1;
			o_ev_item[v_nev] := v_p;
			o_ev_tenant[v_nev] := v_ch.tenant_id;
			o_ev_type[v_nev] := v_res.o_types[k];
			o_ev_data[v_nev] := v_res.o_datas[k];
		END LOOP;
		v_p := v_p + 1;
	END LOOP;
END;
$$;

-- 0019's group commit: hub_ingest_set in one subtransaction; when anything in it fails,
-- 0004's item-by-item path (hub_ingest_items, each item in a subtransaction of its own).
-- Then each tenant's events are queued (hub_stream_append, tenants in id order), last.
-- Rows as in 0004: one per item (event_id NULL), then one per event in the order queued
-- (event_id 0: numbered after COMMIT by hub_stream_flush).
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
	-- the events, each tenant's in the order queued, tenants in the order above
	RETURN QUERY SELECT u.i, NULL::text, u.tn, 0::bigint, u.t, u.d::text
		     FROM unnest(v_ev_item, v_ev_tenant, v_ev_type, v_ev_data)
			WITH ORDINALITY AS u(i, tn, t, d, o)
		     ORDER BY u.tn, u.o;
END;
$$;
