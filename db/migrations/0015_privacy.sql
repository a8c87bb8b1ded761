-- db/migrations/0015_privacy.sql - contacts managed by admins and the privacy rights (admin
-- issue 14, points 4 to 6): search, rename, phone correction, merge decisions, a contact's
-- export and erasure, a tenant's deletion and purge, and the retention of ingest_keys,
-- message_statuses and events (daemon/admin/contacts.c, daemon/admin/privacy.c).
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).
-- Lock order as in 0001: contact -> conversation -> message -> tenant_stream (last).
--
-- The admin functions that change something return rows (kind, event_id, event, data):
--   ('error', NULL, code, JSON {"message", "fields"?, ...})  nothing changed
--   ('event', id, name, data JSON)                         one appended event, in id order
--   ('result', NULL, NULL, JSON)                            the answer's body, always last
-- and write their audit record (hub_audit, 0013) in the same transaction: ids, field
-- names and counts only, never a name, phone or text.

-- ---- search ----

-- A phone number as hubd's adapters normalise it (adapters/adapter.c hub_phone_normalize):
-- '8 701 123 45 67', '+7 (701) 123-45-67', '77011234567', '701 123 45 67' → '+77011234567';
-- NULL for anything that is not a phone number.
CREATE FUNCTION hub_phone_normalize(p text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
	v_plus boolean := btrim(p) LIKE '+%';
	v_d text;
BEGIN
	IF p IS NULL OR p !~ '^\s*\+?[0-9 ()\t.-]+$' OR p ~ '.\+' THEN
		RETURN NULL;
	END IF;
	v_d := regexp_replace(p, '[^0-9]', '', 'g');
	IF NOT v_plus THEN
		IF length(v_d) = 11 AND v_d LIKE '8%' THEN
			v_d := '7' || substr(v_d, 2);
		ELSIF length(v_d) = 10 AND (v_d LIKE '7%' OR v_d LIKE '9%') THEN
			v_d := '7' || v_d;
		END IF;
	END IF;
	IF length(v_d) < 8 OR length(v_d) > 15 OR v_d LIKE '0%' THEN
		RETURN NULL;
	END IF;
	RETURN '+' || v_d;
END;
$$;

-- A word as names are compared: lower case (ICU's root locale: Cyrillic and Kazakh letters
-- too, whatever the database's locale), ё as е.
CREATE FUNCTION hub_name_fold(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT translate(lower(p COLLATE "und-x-icu"), 'ё', 'е')
$$;

-- The words of a name or a query, folded: split at white space and punctuation.
CREATE FUNCTION hub_name_words(p text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT w FROM regexp_split_to_table(hub_name_fold(p),
		'[[:space:],.;:!?()"''«»/\\_+*&@#<>|~^$%=-]+') w
	WHERE w <> ''
$$;

-- The stem of a searched word: one common Russian or Kazakh case ending taken off (the
-- longest that leaves at least three letters), so that "Айгуле", "Айгүлге", "Ерланның",
-- "Марата" find Айгуль, Айгүл, Ерлан, Марат by prefix. Deliberately small and general:
-- a prefix match of the stem may find a little more than the exact name, never less.
CREATE FUNCTION hub_name_stem(p text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
	v text := hub_name_fold(p);
	e text;
BEGIN
	FOREACH e IN ARRAY ARRAY['ның', 'нің', 'дың', 'дің', 'тың', 'тің', 'мен', 'бен', 'пен',
		'дан', 'ден', 'тан', 'тен', 'нан', 'нен', 'ами', 'ями', 'ого', 'его', 'ому', 'ему',
		'ым', 'им', 'ом', 'ем', 'ой', 'ей', 'ою', 'ею', 'ам', 'ям', 'ах', 'ях', 'ов', 'ев',
		'ға', 'ге', 'қа', 'ке', 'ды', 'ді', 'ты', 'ті', 'ны', 'ні', 'да', 'де', 'та', 'те',
		'на', 'не', 'ь', 'а', 'я', 'у', 'ю', 'е', 'ы', 'и', 'о'] LOOP
		IF char_length(v) - char_length(e) >= 3 AND right(v, char_length(e)) = e THEN
			RETURN left(v, char_length(v) - char_length(e));
		END IF;
	END LOOP;
	RETURN v;
END;
$$;

-- Each word of each contact's name, folded, for prefix search (text_pattern_ops: LIKE
-- 'stem%' uses the index whatever the database's collation). Kept by a trigger.
CREATE TABLE contact_name_words (
	tenant_id text NOT NULL,
	word text NOT NULL,
	contact_id bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	PRIMARY KEY (tenant_id, word, contact_id)
);
CREATE INDEX contact_name_words_prefix ON contact_name_words
	(tenant_id, word text_pattern_ops);
CREATE INDEX contact_name_words_contact ON contact_name_words (contact_id);
-- Phone prefixes ('+7701%').
CREATE INDEX contacts_tenant_phone_prefix ON contacts (tenant_id, phone text_pattern_ops);

CREATE FUNCTION hub_contact_words() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		DELETE FROM contact_name_words w WHERE w.contact_id = NEW.id;
	END IF;
	INSERT INTO contact_name_words (tenant_id, word, contact_id)
	SELECT DISTINCT NEW.tenant_id, w, NEW.id
	FROM hub_name_words(NEW.display_name) w
	ON CONFLICT DO NOTHING;
	RETURN NULL;
END;
$$;
CREATE TRIGGER contacts_words_ins AFTER INSERT ON contacts FOR EACH ROW
	WHEN (NEW.display_name IS NOT NULL) EXECUTE FUNCTION hub_contact_words();
CREATE TRIGGER contacts_words_upd AFTER UPDATE OF display_name ON contacts FOR EACH ROW
	WHEN (NEW.display_name IS DISTINCT FROM OLD.display_name)
	EXECUTE FUNCTION hub_contact_words();

INSERT INTO contact_name_words (tenant_id, word, contact_id)
SELECT DISTINCT c.tenant_id, w, c.id
FROM contacts c, hub_name_words(c.display_name) w
WHERE c.display_name IS NOT NULL
ON CONFLICT DO NOTHING;

-- A dismissed suggestion stays (dismissed_at) so that the same pair is not suggested again.
ALTER TABLE merge_suggestions ADD COLUMN dismissed_at timestamptz;

-- A contact in a list: hub_contact_json with name_set_by_agent.
CREATE FUNCTION hub_contact_item(c contacts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT hub_contact_json(c) || jsonb_build_object('name_locked', c.name_set_by_agent)
$$;

-- One page of a tenant's contacts matching p_q, newest first (ids below p_before).
-- p_q: a phone number in any written form (only digits, spaces, + - ( ) .), matched as a
-- prefix of the normalised number (also without the country code 7); else words, each of
-- which must be a prefix (after hub_name_stem) of a word of the name; empty: every contact.
-- One row: items (JSON array of hub_contact_item) and next_before (NULL on the last page).
CREATE FUNCTION hub_contact_search(p_tenant text, p_q text, p_limit integer, p_before bigint)
RETURNS TABLE (items text, next_before bigint)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
	v_q text := btrim(coalesce(p_q, ''));
	v_digits text := regexp_replace(v_q, '[^0-9]', '', 'g');
	v_alt text;
	v_stems text[];
	v_ids bigint[];
BEGIN
	IF v_q = '' THEN
		v_ids := ARRAY(SELECT c.id FROM contacts c
			       WHERE c.tenant_id = p_tenant AND (p_before IS NULL OR c.id < p_before)
			       ORDER BY c.id DESC LIMIT p_limit + 1);
	ELSIF v_q ~ '^\+?[0-9 ()\t.-]+$' AND length(v_digits) >= 3 THEN
		-- as typed ('+7701...', '7701...'), without the country code ('701...'), or
		-- with the trunk prefix 8 ('8 701 ...' is '+7701...'); a whole number normalised
		IF btrim(v_q) LIKE '+%' THEN
			v_alt := NULL;
		ELSIF v_digits LIKE '8%' AND length(v_digits) <= 11 THEN
			v_alt := '7' || substr(v_digits, 2);
		ELSIF length(v_digits) <= 10 THEN
			v_alt := '7' || v_digits;
		END IF;
		v_ids := ARRAY(SELECT c.id FROM contacts c
			       WHERE c.tenant_id = p_tenant
				     AND (c.phone LIKE '+' || v_digits || '%'
					  OR c.phone LIKE '+' || v_alt || '%'
					  OR c.phone = hub_phone_normalize(v_q))
				     AND (p_before IS NULL OR c.id < p_before)
			       ORDER BY c.id DESC LIMIT p_limit + 1);
	ELSE
		v_stems := ARRAY(SELECT replace(replace(hub_name_stem(w), '_', '\_'), '%', '\%')
				 FROM hub_name_words(v_q) w);
		IF cardinality(v_stems) = 0 THEN
			v_ids := '{}';
		ELSE
			v_ids := ARRAY(
				SELECT DISTINCT w.contact_id FROM contact_name_words w
				WHERE w.tenant_id = p_tenant AND w.word LIKE v_stems[1] || '%'
				      AND (p_before IS NULL OR w.contact_id < p_before)
				      AND NOT EXISTS (
					SELECT 1 FROM unnest(v_stems[2:]) s
					WHERE NOT EXISTS (
						SELECT 1 FROM contact_name_words x
						WHERE x.contact_id = w.contact_id
						      AND x.word LIKE s || '%'))
				ORDER BY w.contact_id DESC LIMIT p_limit + 1);
		END IF;
	END IF;
	RETURN QUERY
	SELECT (SELECT coalesce(jsonb_agg(hub_contact_item(c) ORDER BY c.id DESC), '[]')::text
		FROM contacts c WHERE c.id = ANY (v_ids[1:p_limit])),
	       CASE WHEN cardinality(v_ids) > p_limit THEN v_ids[p_limit] END;
END;
$$;

-- A contact with its identities, conversations (newest first) and open merge suggestions;
-- NULL when it is not the tenant's.
CREATE FUNCTION hub_contact_get(p_tenant text, p_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT (hub_contact_item(c) || jsonb_build_object(
		'identities', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', i.id,
				'channel_id', ch.public_id, 'channel_kind', ch.kind,
				'external_id', i.external_id, 'phone', i.phone,
				'profile_name', i.profile_name, 'username', i.username,
				'created_at', hub_iso(i.created_at)) ORDER BY i.id), '[]')
			FROM contact_identities i JOIN channels ch ON ch.id = i.channel_id
			WHERE i.contact_id = c.id),
		'conversations', (SELECT coalesce(jsonb_agg(hub_conversation_json(v, ch.public_id)
				|| jsonb_build_object('channel_kind', ch.kind,
					'created_at', hub_iso(v.created_at)) ORDER BY v.id DESC), '[]')
			FROM conversations v JOIN channels ch ON ch.id = v.channel_id
			WHERE v.contact_id = c.id),
		'merge_suggestions', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', s.id,
				'other_contact', jsonb_build_object('id', o.id,
					'display_name', o.display_name, 'phone', o.phone),
				'reason', s.reason, 'created_at', hub_iso(s.created_at))
				ORDER BY s.id), '[]')
			FROM merge_suggestions s
			JOIN contacts o ON o.id = CASE WHEN s.contact_id = c.id
						       THEN s.other_contact_id ELSE s.contact_id END
			WHERE c.id IN (s.contact_id, s.other_contact_id) AND s.dismissed_at IS NULL)
	))::text
	FROM contacts c WHERE c.id = p_id AND c.tenant_id = p_tenant
$$;

-- ---- changes ----

CREATE FUNCTION hub_admin_error(p_code text, p_message text, p_extra jsonb DEFAULT '{}')
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE sql IMMUTABLE AS $$
	SELECT 'error'::text, NULL::bigint, p_code, (jsonb_build_object('message', p_message)
		|| coalesce(p_extra, '{}'))::text
$$;

-- Appends the events, then the result row.
CREATE FUNCTION hub_admin_done(p_tenant text, p_types text[], p_datas jsonb[], p_result jsonb)
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE sql AS $$
	SELECT 'event'::text, a.event_id, p_types[a.ord::int], p_datas[a.ord::int]::text
	FROM hub_stream_append(p_tenant, p_types, p_datas) a
	UNION ALL
	SELECT 'result', NULL, NULL, p_result::text
	ORDER BY 1, 2
$$;

-- PATCH a contact: p_body {"display_name": text, "phone": text|null}, any of the two.
-- A name set here sticks (name_set_by_agent: profile-name changes no longer rename the
-- contact). A phone is normalised as ingest does; one that another contact of the tenant
-- has is refused (409 phone_taken, nothing about the contact changes) and a merge
-- suggestion of the two (reason same_phone) is recorded for the admin to confirm.
-- Errors: not_found, invalid (fields), phone_taken.
CREATE FUNCTION hub_contact_patch(p_tenant text, p_id bigint, p_body jsonb, p_actor text,
				  p_role text, p_address text)
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_c contacts;
	v_fields jsonb := '{}';
	v_name text;
	v_phone text;
	v_set_phone boolean := false;
	v_other bigint;
	v_sid bigint;
	v_changed text[] := '{}';
	k text;
BEGIN
	SELECT c.* INTO v_c FROM contacts c WHERE c.id = p_id AND c.tenant_id = p_tenant
	FOR UPDATE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT * FROM hub_admin_error('not_found', 'no such contact');
		RETURN;
	END IF;
	IF jsonb_typeof(p_body) IS DISTINCT FROM 'object' THEN
		RETURN QUERY SELECT * FROM hub_admin_error('invalid',
			'the body must be a JSON object', '{"fields":{}}');
		RETURN;
	END IF;
	FOR k IN SELECT jsonb_object_keys(p_body) LOOP
		IF k NOT IN ('display_name', 'phone') THEN
			v_fields := v_fields || jsonb_build_object(k,
				'unknown field (display_name and phone can be changed)');
		END IF;
	END LOOP;
	IF p_body ? 'display_name' THEN
		v_name := hub_clean_name(CASE WHEN jsonb_typeof(p_body->'display_name') = 'string'
					      THEN p_body->>'display_name' END);
		IF jsonb_typeof(p_body->'display_name') <> 'string' THEN
			v_fields := v_fields || '{"display_name":"must be a string"}';
		ELSIF v_name IS NULL THEN
			v_fields := v_fields || '{"display_name":"must not be empty"}';
		ELSIF char_length(v_name) > 200 THEN
			v_fields := v_fields || '{"display_name":"at most 200 characters"}';
		END IF;
	END IF;
	IF p_body ? 'phone' THEN
		v_set_phone := true;
		IF jsonb_typeof(p_body->'phone') = 'null' THEN
			v_phone := NULL;
		ELSIF jsonb_typeof(p_body->'phone') <> 'string' THEN
			v_fields := v_fields || '{"phone":"must be a string or null"}';
		ELSE
			v_phone := hub_phone_normalize(p_body->>'phone');
			IF v_phone IS NULL THEN
				v_fields := v_fields || jsonb_build_object('phone',
					'not a phone number (e.g. +7 701 123 45 67 or 87011234567)');
			END IF;
		END IF;
	END IF;
	IF NOT (p_body ? 'display_name' OR p_body ? 'phone') AND v_fields = '{}' THEN
		v_fields := '{"display_name":"give display_name or phone","phone":"give display_name or phone"}';
	END IF;
	IF v_fields <> '{}' THEN
		RETURN QUERY SELECT * FROM hub_admin_error('invalid', 'the body has invalid fields',
			jsonb_build_object('fields', v_fields));
		RETURN;
	END IF;
	IF v_set_phone AND v_phone IS NOT NULL AND v_phone IS DISTINCT FROM v_c.phone THEN
		SELECT c.id INTO v_other FROM contacts c
		WHERE c.tenant_id = p_tenant AND c.phone = v_phone AND c.id <> p_id
		ORDER BY c.id LIMIT 1;
		IF v_other IS NOT NULL THEN
			SELECT s.id INTO v_sid FROM merge_suggestions s
			WHERE (s.contact_id, s.other_contact_id) IN ((p_id, v_other), (v_other, p_id));
			IF v_sid IS NULL THEN
				INSERT INTO merge_suggestions (tenant_id, contact_id, other_contact_id,
							       reason)
				VALUES (p_tenant, p_id, v_other, 'same_phone') RETURNING id INTO v_sid;
			ELSE
				UPDATE merge_suggestions s SET dismissed_at = NULL WHERE s.id = v_sid;
			END IF;
			PERFORM hub_audit(p_tenant, p_actor, p_role, 'contact.update_refused',
				'contact:' || p_id, p_address,
				jsonb_build_object('reason', 'phone_taken', 'other', v_other,
						   'merge_suggestion', v_sid));
			RETURN QUERY SELECT * FROM hub_admin_error('phone_taken',
				'another contact has this phone number: confirm the merge suggestion '
				'to make them one contact',
				jsonb_build_object('contact_id', v_other, 'merge_suggestion_id', v_sid,
						   'fields', jsonb_build_object('phone',
							'belongs to contact ' || v_other)));
			RETURN;
		END IF;
	END IF;
	IF p_body ? 'display_name' AND (v_name IS DISTINCT FROM v_c.display_name
					 OR NOT v_c.name_set_by_agent) THEN
		v_changed := v_changed || 'display_name'::text;
	END IF;
	IF v_set_phone AND v_phone IS DISTINCT FROM v_c.phone THEN
		v_changed := v_changed || 'phone'::text;
	END IF;
	IF cardinality(v_changed) > 0 THEN
		UPDATE contacts c
		SET display_name = CASE WHEN p_body ? 'display_name' THEN v_name
					ELSE c.display_name END,
		    name_set_by_agent = c.name_set_by_agent OR p_body ? 'display_name',
		    phone = CASE WHEN v_set_phone THEN v_phone ELSE c.phone END,
		    updated_at = now()
		WHERE c.id = p_id RETURNING c.* INTO v_c;
	END IF;
	PERFORM hub_audit(p_tenant, p_actor, p_role, 'contact.update', 'contact:' || p_id,
			  p_address, jsonb_build_object('fields', to_jsonb(v_changed)));
	RETURN QUERY SELECT * FROM hub_admin_done(p_tenant,
		CASE WHEN cardinality(v_changed) > 0 THEN ARRAY['contact.updated'] ELSE '{}' END,
		CASE WHEN cardinality(v_changed) > 0 THEN ARRAY[hub_contact_json(v_c)] ELSE '{}' END,
		hub_contact_get(p_tenant, p_id)::jsonb);
END;
$$;

-- Confirms (p_confirm) or dismisses merge suggestion p_sid of contact p_id. Confirmed: the
-- other contact merges into p_id as the phone merge does (hub_merge_contacts, 0004: its
-- identities and conversations move, the same events), p_id takes its phone when it has
-- none. Dismissed: the suggestion is kept as dismissed (never suggested again).
-- Errors: not_found (contact or suggestion).
CREATE FUNCTION hub_contact_merge_decide(p_tenant text, p_id bigint, p_sid bigint,
	p_confirm boolean, p_actor text, p_role text, p_address text)
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_s merge_suggestions;
	v_other bigint;
	v_from contacts;
	v_into contacts;
	v_res record;
	v_datas jsonb[];
BEGIN
	SELECT s.* INTO v_s FROM merge_suggestions s
	WHERE s.id = p_sid AND s.tenant_id = p_tenant AND p_id IN (s.contact_id, s.other_contact_id)
	      AND s.dismissed_at IS NULL;
	IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM contacts c
				    WHERE c.id = p_id AND c.tenant_id = p_tenant) THEN
		RETURN QUERY SELECT * FROM hub_admin_error('not_found',
			'no such merge suggestion of this contact');
		RETURN;
	END IF;
	v_other := CASE WHEN v_s.contact_id = p_id THEN v_s.other_contact_id ELSE v_s.contact_id END;
	IF NOT p_confirm THEN
		UPDATE merge_suggestions s SET dismissed_at = now() WHERE s.id = p_sid;
		PERFORM hub_audit(p_tenant, p_actor, p_role, 'contact.merge_dismiss',
			'contact:' || p_id, p_address,
			jsonb_build_object('merge_suggestion', p_sid, 'other', v_other));
		RETURN QUERY SELECT * FROM hub_admin_done(p_tenant, '{}', '{}',
			hub_contact_get(p_tenant, p_id)::jsonb);
		RETURN;
	END IF;
	-- lock order: contacts (lower id first), then conversations in hub_merge_contacts
	PERFORM 1 FROM contacts c WHERE c.id IN (p_id, v_other) ORDER BY c.id FOR UPDATE;
	SELECT c.* INTO STRICT v_from FROM contacts c WHERE c.id = v_other;
	v_res := hub_merge_contacts(p_id, v_other);
	UPDATE contacts c SET phone = coalesce(c.phone, v_from.phone), updated_at = now()
	WHERE c.id = p_id RETURNING c.* INTO v_into;
	PERFORM hub_audit(p_tenant, p_actor, p_role, 'contact.merge', 'contact:' || p_id,
		p_address, jsonb_build_object('merge_suggestion', p_sid, 'merged', v_other,
					      'reason', v_s.reason));
	v_datas := v_res.o_datas;
	v_datas[1] := v_datas[1] || jsonb_build_object('reason', v_s.reason);
	RETURN QUERY SELECT * FROM hub_admin_done(p_tenant,
		v_res.o_types || 'contact.updated'::text,
		v_datas || hub_contact_json(v_into),
		hub_contact_get(p_tenant, p_id)::jsonb);
END;
$$;

-- ---- export and erasure ----

-- Is event e about contact p_contact (or one of its conversations p_convs)? Every event
-- that names them: message.*, conversation.*, contact.* (also as the other side of a
-- merge or suggestion).
CREATE FUNCTION hub_event_about(e events, p_contact bigint, p_convs bigint[]) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT (e.data->>'contact_id') = p_contact::text
	    OR (e.data->>'merged_contact_id') = p_contact::text
	    OR (e.data->>'other_contact_id') = p_contact::text
	    OR (e.type LIKE 'contact.%' AND (e.data->>'id') = p_contact::text)
	    OR (e.data->>'conversation_id') = ANY (p_convs::text[])
	    OR (e.type LIKE 'conversation.%' AND (e.data->>'id') = ANY (p_convs::text[]))
$$;

-- Everything stored about a contact of the tenant as one document; NULL when it is not the
-- tenant's. Messages with their media's metadata (the platform's reference too: it is
-- data about the contact), edits, reactions, outbox rows and the platform's statuses;
-- the AI disclosure and exchanges (never a text there); the events of the log about it.
-- PL/pgSQL: the log's events are matched against the conversation ids as a known array
-- (a plan with its values), not a per-row subquery: 0.6 s instead of 2.9 s over a log of
-- 200,000 events.
CREATE FUNCTION hub_contact_export(p_tenant text, p_id bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_convs bigint[];
	v_events jsonb;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = p_id AND c.tenant_id = p_tenant) THEN
		RETURN NULL;
	END IF;
	v_convs := ARRAY(SELECT v.id FROM conversations v WHERE v.contact_id = p_id);
	SELECT coalesce(jsonb_agg(jsonb_build_object('id', e.id, 'type', e.type,
			'data', e.data, 'created_at', hub_iso(e.created_at)) ORDER BY e.id), '[]')
	INTO v_events
	FROM events e WHERE e.tenant_id = p_tenant AND hub_event_about(e, p_id, v_convs);
	RETURN (SELECT jsonb_build_object(
		'format', 'bayge-hub.contact-export.v1',
		'exported_at', hub_iso(now()),
		'tenant', p_tenant,
		'contact', hub_contact_item(c) || jsonb_build_object(
			'created_at', hub_iso(c.created_at), 'updated_at', hub_iso(c.updated_at)),
		'identities', (SELECT coalesce(jsonb_agg(to_jsonb(i) - 'contact_id'
				|| jsonb_build_object('channel_id', ch.public_id, 'channel_kind', ch.kind)
				ORDER BY i.id), '[]')
			FROM contact_identities i JOIN channels ch ON ch.id = i.channel_id
			WHERE i.contact_id = c.id),
		'merge_suggestions', (SELECT coalesce(jsonb_agg(to_jsonb(s) - 'tenant_id'
				ORDER BY s.id), '[]')
			FROM merge_suggestions s WHERE c.id IN (s.contact_id, s.other_contact_id)),
		'conversations', (SELECT coalesce(jsonb_agg(to_jsonb(v) - 'tenant_id'
				|| jsonb_build_object('channel_id', ch.public_id, 'channel_kind', ch.kind,
					'messages', (SELECT coalesce(jsonb_agg(to_jsonb(m) - 'tenant_id'
							- 'channel_id'
						|| jsonb_build_object(
						'edits', (SELECT coalesce(jsonb_agg(to_jsonb(x)
								- 'message_id' ORDER BY x.id), '[]')
							FROM message_edits x WHERE x.message_id = m.id),
						'reactions', (SELECT coalesce(jsonb_agg(to_jsonb(r)
								- 'message_id'
								ORDER BY r.platform_ts), '[]')
							FROM message_reactions r WHERE r.message_id = m.id),
						'statuses', (SELECT coalesce(jsonb_agg(to_jsonb(st)
								- 'channel_id' ORDER BY st.id), '[]')
							FROM message_statuses st
							WHERE st.channel_id = m.channel_id
							      AND st.external_id = m.external_id),
						'outbox', (SELECT coalesce(jsonb_agg(to_jsonb(o)
								- 'tenant_id' - 'channel_id'
								ORDER BY o.id), '[]')
							FROM outbox o WHERE o.message_id = m.id),
						'upload', (SELECT to_jsonb(u) - 'tenant_id' - 'lo'
							FROM media_uploads u
							WHERE u.id = m.media_upload_id))
						ORDER BY m.id), '[]')
						FROM messages m WHERE m.conversation_id = v.id),
					'ai_exchanges', (SELECT coalesce(jsonb_agg(to_jsonb(a) - 'tenant_id'
							ORDER BY a.id), '[]')
						FROM ai_exchanges a WHERE a.conversation_id = v.id))
				ORDER BY v.id), '[]')
			FROM conversations v JOIN channels ch ON ch.id = v.channel_id
			WHERE v.contact_id = c.id),
		'ai_disclosure', (SELECT to_jsonb(d) - 'tenant_id' - 'contact_id'
			FROM ai_disclosures d WHERE d.contact_id = c.id),
		'events', v_events
	)::text
	FROM contacts c WHERE c.id = p_id AND c.tenant_id = p_tenant);
END;
$$;

-- Erases a contact of the tenant and everything about it: identities (and their profile
-- lookups), conversations, messages with their edits, reactions, outbox rows, the
-- platform's statuses of its messages, the reaction keys naming it, uploads sent only to
-- it, AI disclosure and exchanges, merge suggestions, and every event of the log about it.
-- Then one event contact.erased {contact_id, conversation_ids} tells the open inboxes to
-- drop them, and an audit record with counts only remains. Errors: not_found.
CREATE FUNCTION hub_contact_erase(p_tenant text, p_id bigint, p_actor text, p_role text,
				  p_address text)
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_convs bigint[];
	v_msgs bigint[];
	v_ext text[];
	v_senders text[];
	v_uploads bigint[];
	v_counts jsonb;
	v_n bigint;
BEGIN
	PERFORM 1 FROM contacts c WHERE c.id = p_id AND c.tenant_id = p_tenant FOR UPDATE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT * FROM hub_admin_error('not_found', 'no such contact');
		RETURN;
	END IF;
	v_convs := ARRAY(SELECT v.id FROM conversations v WHERE v.contact_id = p_id ORDER BY v.id
			 FOR UPDATE);
	v_msgs := ARRAY(SELECT m.id FROM messages m WHERE m.conversation_id = ANY (v_convs));
	v_ext := ARRAY(SELECT m.external_id FROM messages m
		       WHERE m.id = ANY (v_msgs) AND m.external_id IS NOT NULL);
	v_senders := ARRAY(SELECT i.external_id FROM contact_identities i
			   WHERE i.contact_id = p_id);
	v_uploads := ARRAY(SELECT DISTINCT m.media_upload_id FROM messages m
			   WHERE m.id = ANY (v_msgs) AND m.media_upload_id IS NOT NULL);
	v_counts := jsonb_build_object('conversations', cardinality(v_convs),
				       'messages', cardinality(v_msgs),
				       'identities', cardinality(v_senders));
	DELETE FROM message_statuses st
	USING messages m
	WHERE m.id = ANY (v_msgs) AND st.channel_id = m.channel_id
	      AND st.external_id = m.external_id;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	v_counts := v_counts || jsonb_build_object('statuses', v_n);
	-- reaction keys hold the reacted message's id or the reactor's (ingest_keys, 0004)
	DELETE FROM ingest_keys k
	USING channels ch
	WHERE ch.tenant_id = p_tenant AND k.channel_id = ch.id AND k.kind = 'reaction'
	      AND EXISTS (SELECT 1 FROM unnest(v_ext || v_senders) x
			  WHERE strpos(k.key, x) > 0);
	DELETE FROM events e
	WHERE e.tenant_id = p_tenant AND hub_event_about(e, p_id, v_convs);
	GET DIAGNOSTICS v_n = ROW_COUNT;
	v_counts := v_counts || jsonb_build_object('events', v_n);
	-- cascades: conversations → messages → edits, reactions, outbox, ai_jobs,
	-- ai_exchanges; identities → profile_requests; suggestions; ai_disclosures; words
	DELETE FROM contacts c WHERE c.id = p_id;
	DELETE FROM media_uploads u
	WHERE u.id = ANY (v_uploads)
	      AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.media_upload_id = u.id);
	PERFORM hub_audit(p_tenant, p_actor, p_role, 'contact.erase', 'contact:' || p_id,
			  p_address, v_counts);
	RETURN QUERY SELECT * FROM hub_admin_done(p_tenant, ARRAY['contact.erased'],
		ARRAY[jsonb_build_object('contact_id', p_id, 'conversation_ids', to_jsonb(v_convs))],
		jsonb_build_object('erased', jsonb_build_object('contact_id', p_id) || v_counts));
END;
$$;

-- ---- tenant deletion, purge, retention ----

-- The highest event id that retention removed from the tenant's log: a resume from an
-- older cursor cannot be answered from the log (the websocket says resync).
ALTER TABLE tenant_stream ADD COLUMN pruned_upto bigint NOT NULL DEFAULT 0;

-- DELETE /api/v1/tenant: the tenant's channels stop at once (tenants.deleted_at: every
-- hubd re-reads its channels, NOTIFY hub_channels of 0003) and all its data is removed
-- p_purge_after_s later by the purge job. Again on a deleted tenant: the same answer.
CREATE FUNCTION hub_tenant_delete(p_tenant text, p_purge_after_s bigint, p_actor text,
				  p_role text, p_address text)
RETURNS TABLE (kind text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_t tenants;
	v_first boolean := false;
BEGIN
	UPDATE tenants t SET deleted_at = now() WHERE t.id = p_tenant AND t.deleted_at IS NULL
	RETURNING t.* INTO v_t;
	IF FOUND THEN
		v_first := true;
	ELSE
		SELECT t.* INTO v_t FROM tenants t WHERE t.id = p_tenant;
		IF NOT FOUND THEN
			RETURN QUERY SELECT * FROM hub_admin_error('not_found', 'no such tenant');
			RETURN;
		END IF;
	END IF;
	IF v_first THEN
		PERFORM hub_audit(p_tenant, p_actor, p_role, 'tenant.delete', 'tenant:' || p_tenant,
				  p_address, jsonb_build_object('purge_after_s', p_purge_after_s));
	END IF;
	RETURN QUERY SELECT 'result'::text, NULL::bigint, NULL::text,
		jsonb_build_object('tenant', p_tenant, 'deleted_at', hub_iso(v_t.deleted_at),
			'purge_at', hub_iso(v_t.deleted_at + make_interval(secs => p_purge_after_s)),
			'channels', (SELECT count(*) FROM channels c WHERE c.tenant_id = p_tenant))::text;
END;
$$;

-- Every batch names its rows as an array (= ANY (ARRAY(...))): an index or TID lookup per
-- row, where IN (subquery) may be planned as a scan of the whole table.
-- One step of the purge: the first deleted tenant due (deleted_at older than
-- p_after_s), up to p_batch rows of the first of its tables that still has some, leaves
-- first; the tenant's row last (with its stream, channels and their settings). One row:
-- the tenant ('' when none is due), what was purged and how many rows (0: nothing due).
-- The audit log stays (it holds no personal data; 0013).
CREATE FUNCTION hub_privacy_purge(p_after_s bigint, p_batch integer,
	OUT o_tenant text, OUT o_what text, OUT o_rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
	v_t text;
BEGIN
	o_tenant := '';
	o_what := '';
	o_rows := 0;
	SELECT t.id INTO v_t FROM tenants t
	WHERE t.deleted_at IS NOT NULL
	      AND t.deleted_at <= now() - make_interval(secs => p_after_s)
	ORDER BY t.deleted_at, t.id LIMIT 1
	-- NO KEY: the rows that still reference the tenant (FOR KEY SHARE) are not blocked
	FOR NO KEY UPDATE SKIP LOCKED;
	IF v_t IS NULL THEN
		RETURN;
	END IF;
	o_tenant := v_t;
	o_what := 'events';
	DELETE FROM events e WHERE e.tenant_id = v_t AND e.id = ANY (ARRAY(
		SELECT x.id FROM events x WHERE x.tenant_id = v_t ORDER BY x.id LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'message_statuses';
	DELETE FROM message_statuses s WHERE s.id = ANY (ARRAY(
		SELECT x.id FROM message_statuses x JOIN channels c ON c.id = x.channel_id
		WHERE c.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'ingest_keys';
	DELETE FROM ingest_keys k WHERE k.ctid = ANY (ARRAY(
		SELECT x.ctid FROM ingest_keys x
		JOIN channels c ON c.id = x.channel_id WHERE c.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'ai_exchanges';
	DELETE FROM ai_exchanges a WHERE a.id = ANY (ARRAY(
		SELECT x.id FROM ai_exchanges x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'ai_disclosures';
	DELETE FROM ai_disclosures d WHERE d.contact_id = ANY (ARRAY(
		SELECT x.contact_id FROM ai_disclosures x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	-- with their edits, reactions and outbox rows (cascade)
	o_what := 'messages';
	DELETE FROM messages m WHERE m.id = ANY (ARRAY(
		SELECT x.id FROM messages x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'conversations';
	DELETE FROM conversations v WHERE v.id = ANY (ARRAY(
		SELECT x.id FROM conversations x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'merge_suggestions';
	DELETE FROM merge_suggestions s WHERE s.id = ANY (ARRAY(
		SELECT x.id FROM merge_suggestions x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	-- with their identities and name words (cascade)
	o_what := 'contacts';
	DELETE FROM contacts c WHERE c.id = ANY (ARRAY(
		SELECT x.id FROM contacts x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'media_uploads';
	DELETE FROM media_uploads u WHERE u.id = ANY (ARRAY(
		SELECT x.id FROM media_uploads x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'tenant';
	DELETE FROM tenants t WHERE t.id = v_t;
	GET DIAGNOSTICS o_rows = ROW_COUNT;
END;
$$;

-- Messages by tenant, for the purge; and the foreign keys that deleting messages and
-- conversations checks (without these, each deleted row would scan the whole table).
CREATE INDEX messages_tenant ON messages (tenant_id, id);
CREATE INDEX ai_exchanges_message ON ai_exchanges (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX ai_disclosures_message ON ai_disclosures (message_id)
	WHERE message_id IS NOT NULL;
CREATE INDEX outbox_conversation ON outbox (conversation_id);
CREATE INDEX ai_disclosures_tenant ON ai_disclosures (tenant_id);

-- One step of retention: up to p_batch rows of p_what ('ingest_keys', 'message_statuses',
-- 'events') older than p_age_s removed; returns how many. Events go oldest first per
-- tenant (the primary key's order) and tenant_stream.pruned_upto records how far.
CREATE FUNCTION hub_privacy_prune(p_what text, p_age_s bigint, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_cut timestamptz := now() - make_interval(secs => p_age_s);
	v_n bigint := 0;
BEGIN
	CASE p_what
	WHEN 'ingest_keys' THEN
		DELETE FROM ingest_keys k WHERE k.ctid = ANY (ARRAY(
			SELECT x.ctid FROM ingest_keys x WHERE x.created_at < v_cut LIMIT p_batch));
		GET DIAGNOSTICS v_n = ROW_COUNT;
	WHEN 'message_statuses' THEN
		DELETE FROM message_statuses s WHERE s.id = ANY (ARRAY(
			SELECT x.id FROM message_statuses x WHERE x.created_at < v_cut
			LIMIT p_batch));
		GET DIAGNOSTICS v_n = ROW_COUNT;
	WHEN 'events' THEN
		WITH gone AS (
			DELETE FROM events e USING (
				SELECT y.tenant_id, y.id FROM tenant_stream s
				CROSS JOIN LATERAL (
					SELECT x.tenant_id, x.id, x.created_at FROM events x
					WHERE x.tenant_id = s.tenant_id ORDER BY x.id LIMIT p_batch) y
				WHERE y.created_at < v_cut LIMIT p_batch) d
			WHERE e.tenant_id = d.tenant_id AND e.id = d.id
			RETURNING e.tenant_id, e.id
		), upto AS (
			UPDATE tenant_stream s SET pruned_upto = greatest(s.pruned_upto, g.top)
			FROM (SELECT tenant_id, max(id) AS top FROM gone GROUP BY 1) g
			WHERE s.tenant_id = g.tenant_id
			RETURNING 1
		)
		SELECT count(*) INTO v_n FROM gone;
	ELSE
		RAISE EXCEPTION 'unknown retention %', p_what USING ERRCODE = '22023';
	END CASE;
	RETURN v_n;
END;
$$;
