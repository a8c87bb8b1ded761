-- 0021: a schema that Citus can distribute by tenant_id (issue 17, point 5).
--
-- Every table a tenant owns carries tenant_id, has it in its primary key and in every
-- unique key, and every foreign key between such tables includes it on both sides, so
-- that a deployment outgrowing one primary can run create_distributed_table(t,
-- 'tenant_id') on each of them with tenants, channels and channel_ai as reference tables
-- (README, Scaling out). hub_schema_problems() below says what breaks that rule;
-- `hubctl check-schema` and test_schema run it.
--
-- tenant_id comes LAST in each key: (id, tenant_id) is as unique as (id), and the index
-- still serves every lookup by id alone, so no key needs a second index and no query
-- got slower on one PostgreSQL.

-- 1. tenant_id where a table reached its tenant only through a parent row.
ALTER TABLE contact_identities ADD COLUMN tenant_id text;
UPDATE contact_identities i SET tenant_id = c.tenant_id FROM contacts c WHERE c.id = i.contact_id;
ALTER TABLE profile_requests ADD COLUMN tenant_id text;
UPDATE profile_requests r SET tenant_id = i.tenant_id
FROM contact_identities i WHERE i.id = r.identity_id;
ALTER TABLE message_edits ADD COLUMN tenant_id text;
UPDATE message_edits e SET tenant_id = m.tenant_id FROM messages m WHERE m.id = e.message_id;
ALTER TABLE message_reactions ADD COLUMN tenant_id text;
UPDATE message_reactions r SET tenant_id = m.tenant_id FROM messages m WHERE m.id = r.message_id;
ALTER TABLE message_statuses ADD COLUMN tenant_id text;
UPDATE message_statuses s SET tenant_id = ch.tenant_id FROM channels ch WHERE ch.id = s.channel_id;
ALTER TABLE ingest_keys ADD COLUMN tenant_id text;
UPDATE ingest_keys k SET tenant_id = ch.tenant_id FROM channels ch WHERE ch.id = k.channel_id;
ALTER TABLE telegram_polls ADD COLUMN tenant_id text;
UPDATE telegram_polls p SET tenant_id = ch.tenant_id FROM channels ch WHERE ch.id = p.channel_id;
ALTER TABLE channel_ai ADD COLUMN tenant_id text;
UPDATE channel_ai a SET tenant_id = ch.tenant_id FROM channels ch WHERE ch.id = a.channel_id;
ALTER TABLE contact_identities ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE profile_requests ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE message_edits ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE message_reactions ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE message_statuses ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE ingest_keys ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE telegram_polls ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE channel_ai ALTER COLUMN tenant_id SET NOT NULL;

-- 2. The foreign keys between tenant tables go, the keys they point at are rebuilt with
-- tenant_id, and the foreign keys come back with tenant_id on both sides.
ALTER TABLE contact_identities DROP CONSTRAINT contact_identities_contact_id_fkey;
ALTER TABLE merge_suggestions DROP CONSTRAINT merge_suggestions_contact_id_fkey,
	DROP CONSTRAINT merge_suggestions_other_contact_id_fkey;
ALTER TABLE conversations DROP CONSTRAINT conversations_contact_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_conversation_id_fkey,
	DROP CONSTRAINT messages_media_upload_id_fkey;
ALTER TABLE message_edits DROP CONSTRAINT message_edits_message_id_fkey;
ALTER TABLE message_reactions DROP CONSTRAINT message_reactions_message_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_conversation_id_fkey,
	DROP CONSTRAINT outbox_message_id_fkey;
ALTER TABLE profile_requests DROP CONSTRAINT profile_requests_identity_id_fkey;
ALTER TABLE ai_jobs DROP CONSTRAINT ai_jobs_conversation_id_fkey;
ALTER TABLE ai_disclosures DROP CONSTRAINT ai_disclosures_contact_id_fkey,
	DROP CONSTRAINT ai_disclosures_message_id_fkey;
ALTER TABLE ai_exchanges DROP CONSTRAINT ai_exchanges_conversation_id_fkey,
	DROP CONSTRAINT ai_exchanges_message_id_fkey;
ALTER TABLE contact_name_words DROP CONSTRAINT contact_name_words_contact_id_fkey;
-- the channel of a row that only now says its tenant must be that tenant's
ALTER TABLE contact_identities DROP CONSTRAINT contact_identities_channel_id_fkey;
ALTER TABLE message_statuses DROP CONSTRAINT message_statuses_channel_id_fkey;
ALTER TABLE ingest_keys DROP CONSTRAINT ingest_keys_channel_id_fkey;
ALTER TABLE telegram_polls DROP CONSTRAINT telegram_polls_channel_id_fkey;
ALTER TABLE channel_ai DROP CONSTRAINT channel_ai_channel_id_fkey;

ALTER TABLE channels ADD CONSTRAINT channels_id_tenant UNIQUE (id, tenant_id);
ALTER TABLE contacts DROP CONSTRAINT contacts_pkey, ADD PRIMARY KEY (id, tenant_id);
ALTER TABLE contact_identities DROP CONSTRAINT contact_identities_pkey,
	ADD PRIMARY KEY (id, tenant_id),
	DROP CONSTRAINT contact_identities_channel_id_external_id_key,
	ADD UNIQUE (channel_id, external_id, tenant_id);
ALTER TABLE merge_suggestions DROP CONSTRAINT merge_suggestions_pkey,
	ADD PRIMARY KEY (id, tenant_id),
	DROP CONSTRAINT merge_suggestions_contact_id_other_contact_id_key,
	ADD UNIQUE (contact_id, other_contact_id, tenant_id);
ALTER TABLE conversations DROP CONSTRAINT conversations_pkey, ADD PRIMARY KEY (id, tenant_id);
DROP INDEX conversations_one_open;
CREATE UNIQUE INDEX conversations_one_open ON conversations (contact_id, channel_id, tenant_id)
	WHERE status = 'open';
ALTER TABLE messages DROP CONSTRAINT messages_pkey, ADD PRIMARY KEY (id, tenant_id),
	DROP CONSTRAINT messages_channel_id_external_id_key,
	ADD UNIQUE (channel_id, external_id, tenant_id);
DROP INDEX messages_client_id;
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_id, tenant_id)
	WHERE client_id IS NOT NULL;
ALTER TABLE message_statuses DROP CONSTRAINT message_statuses_pkey,
	ADD PRIMARY KEY (id, tenant_id),
	DROP CONSTRAINT message_statuses_channel_id_external_id_status_key,
	ADD UNIQUE (channel_id, external_id, status, tenant_id);
ALTER TABLE message_edits DROP CONSTRAINT message_edits_pkey, ADD PRIMARY KEY (id, tenant_id),
	DROP CONSTRAINT message_edits_message_id_edit_key_key,
	ADD UNIQUE (message_id, edit_key, tenant_id);
ALTER TABLE message_reactions DROP CONSTRAINT message_reactions_pkey,
	ADD PRIMARY KEY (message_id, reactor_external_id, tenant_id);
ALTER TABLE ingest_keys DROP CONSTRAINT ingest_keys_pkey,
	ADD PRIMARY KEY (channel_id, kind, key, tenant_id);
ALTER TABLE outbox DROP CONSTRAINT outbox_pkey, ADD PRIMARY KEY (id, tenant_id),
	DROP CONSTRAINT outbox_message_id_key, ADD UNIQUE (message_id, tenant_id);
ALTER TABLE telegram_polls DROP CONSTRAINT telegram_polls_pkey,
	ADD PRIMARY KEY (channel_id, tenant_id);
ALTER TABLE profile_requests DROP CONSTRAINT profile_requests_pkey,
	ADD PRIMARY KEY (id, tenant_id),
	DROP CONSTRAINT profile_requests_identity_id_key, ADD UNIQUE (identity_id, tenant_id);
ALTER TABLE ai_jobs DROP CONSTRAINT ai_jobs_pkey, ADD PRIMARY KEY (conversation_id, tenant_id);
ALTER TABLE ai_disclosures DROP CONSTRAINT ai_disclosures_pkey,
	ADD PRIMARY KEY (contact_id, tenant_id);
ALTER TABLE ai_exchanges DROP CONSTRAINT ai_exchanges_pkey, ADD PRIMARY KEY (id, tenant_id);
ALTER TABLE media_uploads DROP CONSTRAINT media_uploads_pkey, ADD PRIMARY KEY (id, tenant_id);
-- the queue is read per tenant in seq order, which its old second index served
ALTER TABLE event_queue DROP CONSTRAINT event_queue_pkey, ADD PRIMARY KEY (tenant_id, seq);
DROP INDEX event_queue_tenant;

ALTER TABLE contact_identities
	ADD FOREIGN KEY (contact_id, tenant_id) REFERENCES contacts (id, tenant_id) ON DELETE CASCADE,
	ADD FOREIGN KEY (channel_id, tenant_id) REFERENCES channels (id, tenant_id);
ALTER TABLE merge_suggestions
	ADD FOREIGN KEY (contact_id, tenant_id) REFERENCES contacts (id, tenant_id) ON DELETE CASCADE,
	ADD FOREIGN KEY (other_contact_id, tenant_id) REFERENCES contacts (id, tenant_id)
		ON DELETE CASCADE;
ALTER TABLE conversations
	ADD FOREIGN KEY (contact_id, tenant_id) REFERENCES contacts (id, tenant_id) ON DELETE CASCADE;
ALTER TABLE messages
	ADD FOREIGN KEY (conversation_id, tenant_id) REFERENCES conversations (id, tenant_id)
		ON DELETE CASCADE,
	ADD FOREIGN KEY (media_upload_id, tenant_id) REFERENCES media_uploads (id, tenant_id)
		ON DELETE SET NULL (media_upload_id);
ALTER TABLE message_statuses
	ADD FOREIGN KEY (channel_id, tenant_id) REFERENCES channels (id, tenant_id) ON DELETE CASCADE;
ALTER TABLE message_edits
	ADD FOREIGN KEY (message_id, tenant_id) REFERENCES messages (id, tenant_id) ON DELETE CASCADE;
ALTER TABLE message_reactions
	ADD FOREIGN KEY (message_id, tenant_id) REFERENCES messages (id, tenant_id) ON DELETE CASCADE;
ALTER TABLE ingest_keys
	ADD FOREIGN KEY (channel_id, tenant_id) REFERENCES channels (id, tenant_id) ON DELETE CASCADE;
ALTER TABLE outbox
	ADD FOREIGN KEY (conversation_id, tenant_id) REFERENCES conversations (id, tenant_id)
		ON DELETE CASCADE,
	ADD FOREIGN KEY (message_id, tenant_id) REFERENCES messages (id, tenant_id) ON DELETE CASCADE;
ALTER TABLE telegram_polls
	ADD FOREIGN KEY (channel_id, tenant_id) REFERENCES channels (id, tenant_id) ON DELETE CASCADE;
ALTER TABLE profile_requests
	ADD FOREIGN KEY (identity_id, tenant_id) REFERENCES contact_identities (id, tenant_id)
		ON DELETE CASCADE;
ALTER TABLE channel_ai
	ADD FOREIGN KEY (channel_id, tenant_id) REFERENCES channels (id, tenant_id) ON DELETE CASCADE;
ALTER TABLE ai_jobs
	ADD FOREIGN KEY (conversation_id, tenant_id) REFERENCES conversations (id, tenant_id)
		ON DELETE CASCADE;
ALTER TABLE ai_disclosures
	ADD FOREIGN KEY (contact_id, tenant_id) REFERENCES contacts (id, tenant_id) ON DELETE CASCADE,
	ADD FOREIGN KEY (message_id, tenant_id) REFERENCES messages (id, tenant_id)
		ON DELETE SET NULL (message_id);
ALTER TABLE ai_exchanges
	ADD FOREIGN KEY (conversation_id, tenant_id) REFERENCES conversations (id, tenant_id)
		ON DELETE CASCADE,
	ADD FOREIGN KEY (message_id, tenant_id) REFERENCES messages (id, tenant_id)
		ON DELETE SET NULL (message_id);
ALTER TABLE contact_name_words
	ADD FOREIGN KEY (contact_id, tenant_id) REFERENCES contacts (id, tenant_id) ON DELETE CASCADE;

-- 3. The rule, from the catalog: one row per table and what breaks it (none: ready).
-- Reference tables (copied to every node by Citus) are tenants and the channels'
-- configuration, read on every request and rarely written; schema_migrations is this
-- hub's own bookkeeping. Every other table, including any added later, is checked as a
-- table distributed by tenant_id.
CREATE FUNCTION hub_schema_problems(OUT table_name text, OUT problem text)
RETURNS SETOF record LANGUAGE sql STABLE AS $$
WITH tabs AS (
	SELECT c.oid, c.relname::text AS name,
	       c.relname IN ('tenants', 'channels', 'channel_ai') AS reference
	FROM pg_class c
	WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
	      AND c.relname <> 'schema_migrations'),
dist AS (
	SELECT t.oid, t.name,
	       (SELECT a.attnum FROM pg_attribute a
		WHERE a.attrelid = t.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		      AND a.attnotnull) AS tcol
	FROM tabs t WHERE NOT t.reference)
SELECT d.name, 'has no NOT NULL tenant_id column' FROM dist d WHERE d.tcol IS NULL
UNION ALL
SELECT d.name, 'has no primary key' FROM dist d
WHERE NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = d.oid AND i.indisprimary)
UNION ALL
SELECT d.name, format('%s %s does not include tenant_id',
		      CASE WHEN i.indisprimary THEN 'primary key' ELSE 'unique index' END,
		      i.indexrelid::regclass)
FROM dist d JOIN pg_index i ON i.indrelid = d.oid AND i.indisunique
WHERE d.tcol IS NOT NULL AND NOT d.tcol = ANY (i.indkey::int2[])
UNION ALL
SELECT d.name, format('foreign key %s to %s does not match tenant_id to tenant_id',
		      k.conname, k.confrelid::regclass)
FROM dist d JOIN pg_constraint k ON k.conrelid = d.oid AND k.contype = 'f'
JOIN dist r ON r.oid = k.confrelid
WHERE NOT EXISTS (
	SELECT 1 FROM unnest(k.conkey, k.confkey) AS u(a, b)
	WHERE u.a = d.tcol AND u.b = r.tcol)
UNION ALL
SELECT t.name, format('reference table has foreign key %s to the distributed table %s',
		      k.conname, k.confrelid::regclass)
FROM tabs t JOIN pg_constraint k ON k.conrelid = t.oid AND k.contype = 'f'
JOIN dist r ON r.oid = k.confrelid
WHERE t.reference
ORDER BY 1, 2
$$;

-- 4. Every write that names a row of these tables now says its tenant, and every ON
-- CONFLICT names the keys above.
CREATE OR REPLACE FUNCTION hub_profile_wanted()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	IF EXISTS (SELECT 1 FROM channels c WHERE c.id = NEW.channel_id AND c.kind = 'instagram')
	THEN
		INSERT INTO profile_requests (identity_id, tenant_id) VALUES (NEW.id, NEW.tenant_id)
		ON CONFLICT DO NOTHING;
		PERFORM pg_notify('hub_profiles', '');
	END IF;
	RETURN NULL;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_ai_disclosure_moves()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	INSERT INTO ai_disclosures AS d (contact_id, tenant_id, message_id, lang, disclosed_at)
	SELECT NEW.contact_id, o.tenant_id, o.message_id, o.lang, o.disclosed_at
	FROM ai_disclosures o WHERE o.contact_id = OLD.contact_id AND o.tenant_id = OLD.tenant_id
	ON CONFLICT (contact_id, tenant_id) DO UPDATE
	SET message_id = excluded.message_id, lang = excluded.lang,
	    disclosed_at = excluded.disclosed_at
	WHERE excluded.disclosed_at < d.disclosed_at;
	RETURN NULL;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_resolve_contact(p_ch channels, p_sender text, p_phone text, p_profile_name text, p_username text, OUT o_contact contacts, OUT o_types text[], OUT o_datas jsonb[])
 RETURNS record
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_phone text := CASE WHEN p_phone ~ '^\+[1-9][0-9]{6,14}$' THEN p_phone END;
	v_name text := hub_clean_name(p_profile_name);
	v_username text := nullif(p_username, '');
	v_ident contact_identities;
	v_contact contacts;
	v_new_contact boolean := false;
	v_changed boolean := false;
	v_renamed boolean := false;
	v_other bigint;
	v_merge contacts;
	v_res record;
BEGIN
	o_types := '{}';
	o_datas := '{}';
	SELECT i.* INTO v_ident FROM contact_identities i
	WHERE i.channel_id = p_ch.id AND i.external_id = p_sender AND i.tenant_id = p_ch.tenant_id;
	IF NOT FOUND THEN
		IF v_phone IS NOT NULL THEN
			SELECT c.* INTO v_contact FROM contacts c
			WHERE c.tenant_id = p_ch.tenant_id AND c.phone = v_phone
			ORDER BY c.id LIMIT 1;
		END IF;
		IF v_contact.id IS NULL THEN
			INSERT INTO contacts AS c (tenant_id, display_name, phone)
			VALUES (p_ch.tenant_id, coalesce(v_name, v_username), v_phone)
			RETURNING c.* INTO v_contact;
			v_new_contact := true;
		ELSIF v_contact.display_name IS NULL AND v_name IS NOT NULL
		      AND NOT v_contact.name_set_by_agent THEN
			UPDATE contacts c SET display_name = v_name, updated_at = now()
			WHERE c.id = v_contact.id AND c.tenant_id = p_ch.tenant_id
			RETURNING c.* INTO v_contact;
			v_renamed := true;
		END IF;
		INSERT INTO contact_identities AS i (contact_id, tenant_id, channel_id, external_id,
						     phone, profile_name, username)
		VALUES (v_contact.id, p_ch.tenant_id, p_ch.id, p_sender, v_phone, v_name, v_username)
		ON CONFLICT (channel_id, external_id, tenant_id) DO NOTHING
		RETURNING i.* INTO v_ident;
		IF NOT FOUND THEN
			-- A concurrent first event of this sender committed the identity first
			-- (ON CONFLICT waited for it): use its contact instead.
			IF v_new_contact THEN
				DELETE FROM contacts c
				WHERE c.id = v_contact.id AND c.tenant_id = p_ch.tenant_id;
			END IF;
			v_new_contact := false;
			v_renamed := false;
			SELECT i.* INTO STRICT v_ident FROM contact_identities i
			WHERE i.channel_id = p_ch.id AND i.external_id = p_sender
			      AND i.tenant_id = p_ch.tenant_id;
			SELECT c.* INTO STRICT v_contact FROM contacts c
			WHERE c.id = v_ident.contact_id AND c.tenant_id = p_ch.tenant_id;
		END IF;
	ELSE
		SELECT c.* INTO STRICT v_contact FROM contacts c
		WHERE c.id = v_ident.contact_id AND c.tenant_id = p_ch.tenant_id;
		-- A phone this contact lacks that another contact has: one person, merge.
		IF v_phone IS NOT NULL AND v_contact.phone IS NULL THEN
			SELECT c.* INTO v_merge FROM contacts c
			WHERE c.tenant_id = p_ch.tenant_id AND c.phone = v_phone
			      AND c.id <> v_contact.id
			ORDER BY c.id LIMIT 1;
			IF v_merge.id IS NOT NULL THEN
				v_res := hub_merge_contacts(p_ch.tenant_id, v_merge.id, v_contact.id);
				o_types := v_res.o_types;
				o_datas := v_res.o_datas;
				SELECT c.* INTO STRICT v_contact FROM contacts c
				WHERE c.id = v_merge.id AND c.tenant_id = p_ch.tenant_id;
				v_changed := true;
			END IF;
		END IF;
		-- A changed profile name renames the contact, unless an agent named it.
		IF v_name IS NOT NULL AND NOT v_contact.name_set_by_agent
		   AND (v_name IS DISTINCT FROM v_ident.profile_name
			OR v_contact.display_name IS NULL)
		   AND v_name IS DISTINCT FROM v_contact.display_name THEN
			v_renamed := true;
		END IF;
		IF v_renamed OR (v_phone IS NOT NULL AND v_contact.phone IS NULL) THEN
			UPDATE contacts c
			SET display_name = CASE WHEN v_renamed THEN v_name ELSE c.display_name END,
			    phone = coalesce(c.phone, v_phone), updated_at = now()
			WHERE c.id = v_contact.id AND c.tenant_id = p_ch.tenant_id
			RETURNING c.* INTO v_contact;
			v_changed := true;
		END IF;
		IF (v_name IS NOT NULL AND v_name IS DISTINCT FROM v_ident.profile_name)
		   OR (v_username IS NOT NULL AND v_username IS DISTINCT FROM v_ident.username)
		   OR (v_phone IS NOT NULL AND v_phone IS DISTINCT FROM v_ident.phone) THEN
			UPDATE contact_identities i
			SET profile_name = coalesce(v_name, i.profile_name),
			    username = coalesce(v_username, i.username),
			    phone = coalesce(v_phone, i.phone), updated_at = now()
			WHERE i.id = v_ident.id AND i.tenant_id = p_ch.tenant_id;
		END IF;
	END IF;
	v_changed := v_changed OR v_new_contact OR v_renamed;

	-- The same name as another contact of the tenant: suggest, never merge.
	IF (v_new_contact OR v_renamed) AND v_name IS NOT NULL
	   AND lower(v_contact.display_name) = lower(v_name) THEN
		SELECT c.id INTO v_other FROM contacts c
		WHERE c.tenant_id = p_ch.tenant_id AND lower(c.display_name) = lower(v_name)
		      AND c.id <> v_contact.id
		ORDER BY c.id LIMIT 1;
		IF v_other IS NOT NULL AND NOT EXISTS (
			SELECT 1 FROM merge_suggestions s
			WHERE s.contact_id = v_other AND s.other_contact_id = v_contact.id
			      AND s.tenant_id = p_ch.tenant_id) THEN
			INSERT INTO merge_suggestions AS s (tenant_id, contact_id, other_contact_id,
							   reason)
			VALUES (p_ch.tenant_id, v_contact.id, v_other, 'same_name')
			ON CONFLICT (contact_id, other_contact_id, tenant_id) DO NOTHING;
			IF NOT FOUND THEN
				v_other := NULL;
			END IF;
		ELSE
			v_other := NULL;
		END IF;
	END IF;

	IF v_changed THEN
		o_types := o_types || 'contact.updated'::text;
		o_datas := o_datas || hub_contact_json(v_contact);
	END IF;
	IF v_other IS NOT NULL THEN
		o_types := o_types || 'contact.merge_suggested'::text;
		o_datas := o_datas || jsonb_build_object('contact_id', v_contact.id,
			'other_contact_id', v_other, 'reason', 'same_name');
	END IF;
	o_contact := v_contact;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_ingest_edit(INOUT p_msg messages, p_key text, p_text text, p_ts_ms bigint, OUT o_result text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_ts timestamptz := coalesce(hub_ms_ts(p_ts_ms), now());
BEGIN
	INSERT INTO message_edits (message_id, tenant_id, edit_key, previous_text, text,
				   platform_ts)
	VALUES (p_msg.id, p_msg.tenant_id, coalesce(nullif(p_key, ''), p_ts_ms::text, md5(coalesce(p_text, ''))),
		CASE WHEN p_msg.edited_at > v_ts THEN NULL ELSE p_msg.text END, p_text,
		hub_ms_ts(p_ts_ms))
	ON CONFLICT (message_id, edit_key, tenant_id) DO NOTHING;
	IF NOT FOUND THEN
		o_result := 'duplicate';
	ELSIF p_msg.edited_at > v_ts THEN
		o_result := 'stale';
	ELSE
		UPDATE messages m SET text = p_text, edited_at = v_ts
		WHERE m.id = p_msg.id AND m.tenant_id = p_msg.tenant_id RETURNING m.* INTO p_msg;
		o_result := 'stored';
	END IF;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_conversation_for(p_ch channels, p_contact bigint, p_reopen boolean, p_unread integer, OUT o_conv conversations, OUT o_event text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
BEGIN
	-- Concurrent messages of one sender race here: each step is one atomic statement and
	-- the loop takes whatever the winner left.
	FOR attempt IN 1..3 LOOP
		UPDATE conversations v
		SET unread = v.unread + p_unread, last_message_at = now(), updated_at = now()
		WHERE v.contact_id = p_contact AND v.channel_id = p_ch.id AND v.status = 'open'
		      AND v.tenant_id = p_ch.tenant_id
		RETURNING v.* INTO o_conv;
		IF FOUND THEN
			o_event := 'conversation.updated';
			RETURN;
		END IF;
		UPDATE conversations v
		SET status = CASE WHEN p_reopen THEN 'open' ELSE v.status END,
		    unread = v.unread + p_unread, last_message_at = now(), updated_at = now()
		WHERE v.id = (SELECT max(x.id) FROM conversations x
			      WHERE x.contact_id = p_contact AND x.channel_id = p_ch.id
				    AND x.tenant_id = p_ch.tenant_id)
		      AND v.status = 'resolved' AND v.tenant_id = p_ch.tenant_id
		RETURNING v.* INTO o_conv;
		IF FOUND THEN
			o_event := 'conversation.updated';
			RETURN;
		END IF;
		INSERT INTO conversations AS v (tenant_id, contact_id, channel_id, last_message_at,
						unread)
		VALUES (p_ch.tenant_id, p_contact, p_ch.id, now(), p_unread)
		ON CONFLICT (contact_id, channel_id, tenant_id) WHERE status = 'open' DO NOTHING
		RETURNING v.* INTO o_conv;
		IF FOUND THEN
			o_event := 'conversation.created';
			RETURN;
		END IF;
	END LOOP;
	RAISE EXCEPTION 'conversation race, retry' USING ERRCODE = '40001';
END;
$function$;

CREATE OR REPLACE FUNCTION hub_ingest_status(p_ch channels, p_external_id text, p_status text, p_error text, p_ts_ms bigint, OUT o_result text, OUT o_types text[], OUT o_datas jsonb[])
 RETURNS record
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_msg messages;
BEGIN
	o_types := '{}';
	o_datas := '{}';
	IF coalesce(p_external_id, '') = '' OR hub_status_rank(p_status) < 1 THEN
		RAISE EXCEPTION 'a message id and a known status are required'
			USING ERRCODE = '22023';
	END IF;
	PERFORM hub_outbound_lock(p_ch.id, p_external_id);
	INSERT INTO message_statuses (channel_id, tenant_id, external_id, status, error,
				      platform_ts)
	VALUES (p_ch.id, p_ch.tenant_id, p_external_id, p_status, nullif(p_error, ''),
		hub_ms_ts(p_ts_ms))
	ON CONFLICT (channel_id, external_id, status, tenant_id) DO NOTHING;
	IF NOT FOUND THEN
		o_result := 'duplicate';
		RETURN;
	END IF;
	SELECT m.* INTO v_msg FROM messages m
	WHERE m.channel_id = p_ch.id AND m.external_id = p_external_id AND m.direction = 'out'
	      AND m.tenant_id = p_ch.tenant_id
	FOR UPDATE;
	IF NOT FOUND THEN
		o_result := 'unknown';
		RETURN;
	END IF;
	IF v_msg.status = 'failed'
	   OR hub_status_rank(p_status) <= hub_status_rank(v_msg.status) THEN
		o_result := 'stale';
		RETURN;
	END IF;
	o_result := 'stored';
	-- Instagram's read names the last message read: the earlier ones are read too.
	FOR v_msg IN
		UPDATE messages m
		SET status = p_status,
		    error = CASE WHEN p_status = 'failed' THEN nullif(p_error, '') ELSE m.error END
		WHERE m.tenant_id = p_ch.tenant_id AND (m.id = v_msg.id
		   OR (p_ch.kind = 'instagram' AND p_status = 'read'
		       AND m.conversation_id = v_msg.conversation_id AND m.direction = 'out'
		       AND m.id < v_msg.id AND hub_status_rank(m.status) BETWEEN 1 AND 2))
		RETURNING m.*
	LOOP
		o_types := o_types || 'message.status'::text;
		o_datas := o_datas || hub_status_json(v_msg);
	END LOOP;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_ingest_reaction(p_ch channels, INOUT p_msg messages, p_reactor text, p_author text, p_emoji text, p_key text, p_ts_ms bigint, OUT o_result text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
BEGIN
	IF coalesce(p_reactor, '') = '' THEN
		RAISE EXCEPTION 'a reactor is required' USING ERRCODE = '22004';
	END IF;
	INSERT INTO ingest_keys (channel_id, tenant_id, kind, key)
	VALUES (p_ch.id, p_ch.tenant_id, 'reaction', coalesce(nullif(p_key, ''),
		concat_ws(':', p_msg.external_id, p_reactor, p_ts_ms, p_emoji)))
	ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		o_result := 'duplicate';
		RETURN;
	END IF;
	INSERT INTO message_reactions AS r (message_id, tenant_id, reactor_external_id, author,
					    emoji, platform_ts)
	VALUES (p_msg.id, p_msg.tenant_id, p_reactor, p_author, nullif(p_emoji, ''),
		coalesce(hub_ms_ts(p_ts_ms), now()))
	ON CONFLICT (message_id, reactor_external_id, tenant_id) DO UPDATE
		SET emoji = excluded.emoji, platform_ts = excluded.platform_ts, updated_at = now()
		WHERE r.platform_ts <= excluded.platform_ts;
	o_result := CASE WHEN FOUND THEN 'stored' ELSE 'stale' END;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_ai_wanted()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_quiet integer;
BEGIN
	SELECT a.quiet_ms INTO v_quiet
	FROM conversations v JOIN channel_ai a ON a.channel_id = v.channel_id
	WHERE v.id = NEW.conversation_id AND v.tenant_id = NEW.tenant_id AND hub_ai_answers(v, a);
	IF FOUND THEN
		INSERT INTO ai_jobs AS j (conversation_id, tenant_id, upto_message_id, due_at)
		VALUES (NEW.conversation_id, NEW.tenant_id, NEW.id,
			now() + make_interval(secs => v_quiet / 1000.0))
		ON CONFLICT (conversation_id, tenant_id) DO UPDATE
		SET upto_message_id = greatest(j.upto_message_id, excluded.upto_message_id),
		    due_at = excluded.due_at;
		PERFORM pg_notify('hub_ai', '');
	END IF;
	RETURN NULL;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_ai_wanted_rows()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	INSERT INTO ai_jobs AS j (conversation_id, tenant_id, upto_message_id, due_at)
	SELECT n.conversation_id, n.tenant_id, max(n.id),
	       now() + make_interval(secs => min(a.quiet_ms) / 1000.0)
	FROM hub_new_messages n JOIN channel_ai a ON a.channel_id = n.channel_id AND a.enabled
	WHERE n.direction = 'in' AND n.author = 'contact' AND n.type <> 'reaction'
	      AND (SELECT hub_ai_answers(v, a) FROM conversations v
		   WHERE v.id = n.conversation_id AND v.tenant_id = n.tenant_id
			 AND v.channel_id = a.channel_id)
	GROUP BY n.conversation_id, n.tenant_id ORDER BY n.conversation_id
	ON CONFLICT (conversation_id, tenant_id) DO UPDATE
	SET upto_message_id = greatest(j.upto_message_id, excluded.upto_message_id),
	    due_at = excluded.due_at;
	IF FOUND THEN
		PERFORM pg_notify('hub_ai', '');
	END IF;
	RETURN NULL;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_tgpoll_lease(p_channel text, p_owner text, p_lease_ms integer)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_channel bigint;
	v_tenant text;
	v_offset bigint;
BEGIN
	SELECT c.id, c.tenant_id INTO v_channel, v_tenant FROM channels c
	WHERE c.public_id = p_channel;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	INSERT INTO telegram_polls (channel_id, tenant_id) VALUES (v_channel, v_tenant)
	ON CONFLICT DO NOTHING;
	UPDATE telegram_polls t SET owner = p_owner,
		lease_until = now() + make_interval(secs => p_lease_ms / 1000.0), updated_at = now()
	WHERE t.channel_id = v_channel AND t.tenant_id = v_tenant
	      AND (t.owner IS NULL OR t.owner = p_owner OR t.lease_until < now())
	RETURNING t.next_offset INTO v_offset;
	RETURN v_offset;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_ai_message(v conversations, p_text text, p_disclosed_lang text)
 RETURNS messages
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_msg messages;
BEGIN
	IF p_text IS NULL THEN
		RETURN NULL;
	END IF;
	INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, direction, author,
				   type, text, status)
	VALUES (v.tenant_id, v.id, v.channel_id, 'out', 'ai', 'text', p_text, 'queued')
	RETURNING m.* INTO v_msg;
	INSERT INTO outbox (tenant_id, message_id, channel_id, conversation_id)
	VALUES (v.tenant_id, v_msg.id, v.channel_id, v.id);
	IF p_disclosed_lang IS NOT NULL THEN
		INSERT INTO ai_disclosures (contact_id, tenant_id, message_id, lang)
		VALUES (v.contact_id, v.tenant_id, v_msg.id, p_disclosed_lang)
		ON CONFLICT (contact_id, tenant_id) DO NOTHING;
	END IF;
	RETURN v_msg;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_channel_ai_set(p_public_id text, p_set jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
DECLARE
	v_ch channels;
	a channel_ai;
BEGIN
	SELECT c.* INTO v_ch FROM channels c WHERE c.public_id = p_public_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no channel "%" in the database', p_public_id USING ERRCODE = 'P0002';
	END IF;
	INSERT INTO channel_ai (channel_id, tenant_id) VALUES (v_ch.id, v_ch.tenant_id)
	ON CONFLICT DO NOTHING;
	SELECT x.* INTO STRICT a FROM channel_ai x WHERE x.channel_id = v_ch.id FOR UPDATE;
	IF p_set ? 'enabled' THEN a.enabled := (p_set->>'enabled')::boolean; END IF;
	IF p_set ? 'base_url' THEN a.base_url := p_set->>'base_url'; END IF;
	IF p_set ? 'model' THEN a.model := p_set->>'model'; END IF;
	IF p_set ? 'api_key' THEN
		a.api_key := p_set->>'api_key';
		a.api_key_hint := p_set->>'api_key_hint';
	END IF;
	IF p_set ? 'system_prompt' THEN a.system_prompt := p_set->>'system_prompt'; END IF;
	IF p_set ? 'knowledge' THEN a.knowledge := p_set->>'knowledge'; END IF;
	IF p_set ? 'history_turns' THEN a.history_turns := (p_set->>'history_turns')::integer; END IF;
	IF p_set ? 'reply_max_chars' THEN
		a.reply_max_chars := (p_set->>'reply_max_chars')::integer;
	END IF;
	IF p_set ? 'max_tokens' THEN a.max_tokens := (p_set->>'max_tokens')::integer; END IF;
	IF p_set ? 'temperature' THEN a.temperature := (p_set->>'temperature')::real; END IF;
	IF p_set ? 'disclosure' THEN a.disclosure := a.disclosure || (p_set->'disclosure'); END IF;
	IF p_set ? 'handoff_phrases' THEN
		a.handoff_phrases := ARRAY(SELECT jsonb_array_elements_text(p_set->'handoff_phrases'));
	END IF;
	IF p_set ? 'handoff_message' THEN
		a.handoff_message := a.handoff_message || (p_set->'handoff_message');
	END IF;
	IF p_set ? 'quiet_ms' THEN a.quiet_ms := (p_set->>'quiet_ms')::integer; END IF;
	IF p_set ? 'hours' THEN
		a.hours_tz := p_set->'hours'->>'tz';
		a.hours_days := CASE WHEN jsonb_typeof(p_set->'hours') = 'object' THEN ARRAY(
			SELECT jsonb_array_elements_text(p_set->'hours'->'days')::integer) END;
		a.hours_from := (p_set->'hours'->>'from')::time;
		a.hours_to := (p_set->'hours'->>'to')::time;
		IF a.hours_tz IS NOT NULL THEN
			PERFORM now() AT TIME ZONE a.hours_tz; -- an unknown zone raises here
		END IF;
	END IF;
	a.updated_at := now();
	UPDATE channel_ai x SET enabled = a.enabled, base_url = a.base_url, model = a.model,
		api_key = a.api_key, api_key_hint = a.api_key_hint, system_prompt = a.system_prompt, knowledge = a.knowledge,
		history_turns = a.history_turns, reply_max_chars = a.reply_max_chars,
		max_tokens = a.max_tokens, temperature = a.temperature, disclosure = a.disclosure,
		handoff_phrases = a.handoff_phrases, handoff_message = a.handoff_message,
		quiet_ms = a.quiet_ms, hours_tz = a.hours_tz, hours_days = a.hours_days,
		hours_from = a.hours_from, hours_to = a.hours_to, updated_at = a.updated_at
	WHERE x.channel_id = v_ch.id;
	RETURN hub_channel_ai_json(a);
END;
$function$;

CREATE OR REPLACE FUNCTION hub_ingest_message(p_ch channels, p_out boolean, p_external_id text, p_sender text, p_phone text, p_profile_name text, p_username text, p_type text, p_text text, p_raw_type text, p_reply_to text, p_ts_ms bigint, p_media jsonb DEFAULT NULL::jsonb, OUT o_result text, OUT o_types text[], OUT o_datas jsonb[])
 RETURNS record
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_type text := CASE WHEN p_type IN ('text', 'image', 'audio', 'video', 'document',
		'sticker', 'location', 'contact', 'reaction', 'interactive') THEN p_type
		ELSE 'unsupported' END;
	v_media jsonb := CASE WHEN v_type IN ('image', 'audio', 'video', 'document', 'sticker')
		AND coalesce(p_media->>'ref', '') <> '' THEN jsonb_strip_nulls(p_media) END;
	v_contact contacts;
	v_conv conversations;
	v_conv_event text;
	v_msg messages;
	v_res record;
BEGIN
	IF coalesce(p_external_id, '') = '' OR coalesce(p_sender, '') = '' THEN
		RAISE EXCEPTION 'message and sender ids are required' USING ERRCODE = '22004';
	END IF;
	o_result := 'duplicate';
	o_types := '{}';
	o_datas := '{}';
	IF p_out THEN
		PERFORM hub_outbound_lock(p_ch.id, p_external_id);
	END IF;
	PERFORM 1 FROM messages m
	WHERE m.channel_id = p_ch.id AND m.external_id = p_external_id
	      AND m.tenant_id = p_ch.tenant_id;
	IF FOUND THEN
		RETURN;
	END IF;
	v_res := hub_resolve_contact(p_ch, p_sender, p_phone,
				     CASE WHEN NOT p_out THEN p_profile_name END,
				     CASE WHEN NOT p_out THEN p_username END);
	v_contact := v_res.o_contact;
	o_types := v_res.o_types;
	o_datas := v_res.o_datas;
	v_res := hub_conversation_for(p_ch, v_contact.id, NOT p_out,
				      CASE WHEN p_out THEN 0 ELSE 1 END);
	v_conv := v_res.o_conv;
	v_conv_event := v_res.o_event;
	INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, external_id, direction,
				   author, type, text, raw_type, reply_to_external_id, status,
				   platform_ts, media)
	VALUES (p_ch.tenant_id, v_conv.id, p_ch.id, p_external_id,
		CASE WHEN p_out THEN 'out' ELSE 'in' END,
		CASE WHEN p_out THEN 'agent' ELSE 'contact' END, v_type, p_text,
		nullif(p_raw_type, ''), nullif(p_reply_to, ''),
		CASE WHEN p_out THEN 'sent' ELSE 'received' END, hub_ms_ts(p_ts_ms), v_media)
	ON CONFLICT (channel_id, external_id, tenant_id) DO NOTHING
	RETURNING m.* INTO v_msg;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'duplicate message' USING ERRCODE = 'HB409';
	END IF;
	o_result := 'stored';
	o_types := o_types || v_conv_event || 'message.created'::text;
	o_datas := o_datas || hub_conversation_json(v_conv, p_ch.public_id)
			   || hub_message_obj(v_msg, v_contact.id, p_ch.public_id, '[]');  -- new
END;
$function$;

CREATE OR REPLACE FUNCTION hub_ingest_item(INOUT p_ch channels, p jsonb, OUT o_result text, OUT o_types text[], OUT o_datas jsonb[])
 RETURNS record
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_kind text := p->>'kind';
	v_ts bigint := (p->>'ts')::bigint;
	v_echo boolean := v_kind = 'echo';
	v_to text := p->>'recipient';
	r record;
	v_msg messages;
BEGIN
	o_types := '{}';
	o_datas := '{}';
	IF p_ch.public_id IS DISTINCT FROM p->>'channel' THEN
		p_ch := hub_live_channel(p->>'channel');
	END IF;
	IF p ? 'update_id' THEN
		INSERT INTO ingest_keys (channel_id, tenant_id, kind, key)
		VALUES (p_ch.id, p_ch.tenant_id, 'update', p->>'update_id') ON CONFLICT DO NOTHING;
		IF NOT FOUND THEN
			o_result := 'duplicate';
			RETURN;
		END IF;
	END IF;
	CASE v_kind
	WHEN 'message', 'echo' THEN
		-- an echo's customer is its recipient; a WhatsApp recipient is a phone number
		r := hub_ingest_message(p_ch, v_echo, p->>'external_id',
			CASE WHEN v_echo THEN v_to ELSE p->>'sender' END,
			CASE WHEN NOT v_echo THEN p->>'phone'
			     WHEN p_ch.kind = 'whatsapp' AND v_to ~ '^[1-9][0-9]{6,14}$'
			     THEN '+' || v_to END,
			p->>'name', p->>'username', p->>'type', p->>'text', p->>'raw_type',
			p->>'reply_to', v_ts, p->'media');
	WHEN 'status' THEN
		r := hub_ingest_status(p_ch, p->>'external_id', p->>'status', p->>'error', v_ts);
	WHEN 'edit', 'delete', 'reaction' THEN
		v_msg := hub_message_lock(p_ch, CASE WHEN v_kind = 'reaction' THEN p->>'reply_to'
						     ELSE p->>'external_id' END);
		IF v_msg.id IS NULL THEN
			o_result := 'unknown';
			RETURN;
		END IF;
		CASE v_kind
		WHEN 'edit' THEN
			r := hub_ingest_edit(v_msg, p->>'key', p->>'text', v_ts);
		WHEN 'delete' THEN
			r := hub_ingest_delete(v_msg, v_ts);
		ELSE
			r := hub_ingest_reaction(p_ch, v_msg, p->>'sender',
				CASE WHEN v_to IS NOT NULL THEN 'agent' ELSE 'contact' END,
				p->>'text', coalesce(p->>'key', p->>'external_id'), v_ts);
		END CASE;
		o_result := r.o_result;
		IF o_result = 'stored' THEN
			o_types := ARRAY['message.updated'];
			o_datas := ARRAY[hub_message_updated(r.p_msg, p_ch)];
		END IF;
		RETURN;
	ELSE
		o_result := 'ignored';
		RETURN;
	END CASE;
	o_result := r.o_result;
	o_types := r.o_types;
	o_datas := r.o_datas;
END;
$function$;

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
	UPDATE conversations v
	SET status = 'open', unread = v.unread + v_gk[array_position(v_gconv, v.id)],
	    last_message_at = now(), updated_at = now()
	WHERE v.id = ANY (v_gconv) AND v.tenant_id = ANY (v_tenants)
	      AND v.contact_id = v_gcontact[array_position(v_gconv, v.id)]
	      AND (v.status = 'open' OR (SELECT x.id FROM conversations x
		   WHERE x.contact_id = v.contact_id AND x.channel_id = v.channel_id
			 AND x.tenant_id = v.tenant_id AND x.status = 'open' LIMIT 1) IS NULL);
	GET DIAGNOSTICS v_count = ROW_COUNT;
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
		RETURNING v.id, v.contact_id, v.channel_id)
	SELECT (SELECT count(*) FROM g), coalesce(array_agg(ins.id), '{}'),
	       ARRAY(SELECT CASE WHEN s.live THEN coalesce(v_conv[s.ord - v_base],
			(SELECT i2.id FROM ins i2 WHERE i2.contact_id = v_cid[s.ord - v_base]
			 AND i2.channel_id = s.ch_id)) END
		     FROM unnest(v_s) s ORDER BY s.ord)
	INTO v_want, v_cnew, v_conv FROM ins;
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
		ON CONFLICT (channel_id, external_id, tenant_id) DO NOTHING
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
		SELECT q.ord, 3, CASE WHEN q.j = 1 AND v.id = ANY (v_cnew)
				     THEN 'conversation.created' ELSE 'conversation.updated' END,
		       hub_conversation_json(v, q.ch_public)
			|| jsonb_build_object('unread', v.unread - (q.k - q.j))
		FROM (SELECT s.ord, s.ch_public, s.tenant, v_conv[s.ord - v_base] AS conv,
			     row_number() OVER w AS j,
			     count(*) OVER (PARTITION BY v_conv[s.ord - v_base]) AS k
		      FROM unnest(v_s) s WHERE s.live
		      WINDOW w AS (PARTITION BY v_conv[s.ord - v_base] ORDER BY s.ord)) q
		JOIN conversations v ON v.id = q.conv AND v.tenant_id = q.tenant
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

-- 5. The inbox, admin, web chat, media, Telegram poll and profile functions name the tenant in
-- each statement too (a tenant table found by id alone is a query on every shard under
-- Citus), and the contact export leaves the new tenant_id columns out as it did the others.
-- hub_merge_contacts takes the tenant.
CREATE OR REPLACE FUNCTION hub_api_conversations(p_tenant text, p_limit integer, p_before_us bigint, p_before_id bigint)
 RETURNS TABLE(items text, next_us bigint, next_id bigint)
 LANGUAGE sql
 STABLE
AS $function$
	WITH page AS (
		SELECT v, coalesce(v.last_message_at, v.created_at) AS act,
		       row_number() OVER (ORDER BY coalesce(v.last_message_at, v.created_at) DESC,
					  v.id DESC) AS rn
		FROM conversations v
		WHERE v.tenant_id = p_tenant
		      AND (p_before_id IS NULL
			   OR (coalesce(v.last_message_at, v.created_at), v.id)
			      < (timestamptz 'epoch' + p_before_us * interval '1 microsecond',
				 p_before_id))
		ORDER BY coalesce(v.last_message_at, v.created_at) DESC, v.id DESC
		LIMIT p_limit + 1
	), shown AS (
		SELECT p.rn, hub_conversation_json(p.v, ch.public_id)
			|| jsonb_build_object(
				'channel_kind', ch.kind, 'created_at', hub_iso((p.v).created_at),
				'contact', jsonb_build_object('id', c.id,
					'display_name', c.display_name, 'phone', c.phone),
				'last_message', CASE WHEN lm.id IS NOT NULL THEN hub_api_message_json(
					lm.m, (p.v).contact_id, ch.public_id) END)
			AS doc
		FROM page p
		JOIN channels ch ON ch.id = (p.v).channel_id
		JOIN contacts c ON c.id = (p.v).contact_id AND c.tenant_id = p_tenant
		LEFT JOIN LATERAL (
			SELECT m.id, m FROM messages m
			WHERE m.conversation_id = (p.v).id AND m.tenant_id = p_tenant
			ORDER BY m.id DESC LIMIT 1) lm ON true
		WHERE p.rn <= p_limit
	)
	SELECT (SELECT coalesce(jsonb_agg(s.doc ORDER BY s.rn), '[]'::jsonb)::text FROM shown s),
	       (SELECT (extract(epoch FROM p.act) * 1000000)::bigint FROM page p
		WHERE p.rn = p_limit AND EXISTS (SELECT 1 FROM page x WHERE x.rn > p_limit)),
	       (SELECT (p.v).id FROM page p
		WHERE p.rn = p_limit AND EXISTS (SELECT 1 FROM page x WHERE x.rn > p_limit))
$function$;

CREATE OR REPLACE FUNCTION hub_contact_erase(p_tenant text, p_id bigint, p_actor text, p_role text, p_address text)
 RETURNS TABLE(kind text, event_id bigint, event text, data text)
 LANGUAGE plpgsql
AS $function$
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
	v_convs := ARRAY(SELECT v.id FROM conversations v
			 WHERE v.contact_id = p_id AND v.tenant_id = p_tenant ORDER BY v.id
			 FOR UPDATE);
	v_msgs := ARRAY(SELECT m.id FROM messages m
			WHERE m.conversation_id = ANY (v_convs) AND m.tenant_id = p_tenant);
	v_ext := ARRAY(SELECT m.external_id FROM messages m
		       WHERE m.id = ANY (v_msgs) AND m.tenant_id = p_tenant
			     AND m.external_id IS NOT NULL);
	v_senders := ARRAY(SELECT i.external_id FROM contact_identities i
			   WHERE i.contact_id = p_id AND i.tenant_id = p_tenant);
	v_uploads := ARRAY(SELECT DISTINCT m.media_upload_id FROM messages m
			   WHERE m.id = ANY (v_msgs) AND m.tenant_id = p_tenant
				 AND m.media_upload_id IS NOT NULL);
	v_counts := jsonb_build_object('conversations', cardinality(v_convs),
				       'messages', cardinality(v_msgs),
				       'identities', cardinality(v_senders));
	DELETE FROM message_statuses st
	USING messages m
	WHERE m.id = ANY (v_msgs) AND m.tenant_id = p_tenant AND st.tenant_id = p_tenant
	      AND st.channel_id = m.channel_id AND st.external_id = m.external_id;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	v_counts := v_counts || jsonb_build_object('statuses', v_n);
	-- reaction keys hold the reacted message's id or the reactor's (ingest_keys, 0004)
	DELETE FROM ingest_keys k
	USING channels ch
	WHERE ch.tenant_id = p_tenant AND k.tenant_id = p_tenant AND k.channel_id = ch.id
	      AND k.kind = 'reaction'
	      AND EXISTS (SELECT 1 FROM unnest(v_ext || v_senders) x
			  WHERE strpos(k.key, x) > 0);
	DELETE FROM events e
	WHERE e.tenant_id = p_tenant AND hub_event_about(e, p_id, v_convs);
	GET DIAGNOSTICS v_n = ROW_COUNT;
	v_counts := v_counts || jsonb_build_object('events', v_n);
	-- cascades: conversations → messages → edits, reactions, outbox, ai_jobs,
	-- ai_exchanges; identities → profile_requests; suggestions; ai_disclosures; words
	DELETE FROM contacts c WHERE c.id = p_id AND c.tenant_id = p_tenant;
	DELETE FROM media_uploads u
	WHERE u.id = ANY (v_uploads) AND u.tenant_id = p_tenant
	      AND NOT EXISTS (SELECT 1 FROM messages m
			      WHERE m.media_upload_id = u.id AND m.tenant_id = p_tenant);
	PERFORM hub_audit(p_tenant, p_actor, p_role, 'contact.erase', 'contact:' || p_id,
			  p_address, v_counts);
	RETURN QUERY SELECT * FROM hub_admin_done(p_tenant, ARRAY['contact.erased'],
		ARRAY[jsonb_build_object('contact_id', p_id, 'conversation_ids', to_jsonb(v_convs))],
		jsonb_build_object('erased', jsonb_build_object('contact_id', p_id) || v_counts));
END;
$function$;

CREATE OR REPLACE FUNCTION hub_contact_export(p_tenant text, p_id bigint)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
	v_convs bigint[];
	v_events jsonb;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = p_id AND c.tenant_id = p_tenant) THEN
		RETURN NULL;
	END IF;
	v_convs := ARRAY(SELECT v.id FROM conversations v
			 WHERE v.contact_id = p_id AND v.tenant_id = p_tenant);
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
		'identities', (SELECT coalesce(jsonb_agg(to_jsonb(i) - 'contact_id' - 'tenant_id'
				|| jsonb_build_object('channel_id', ch.public_id, 'channel_kind', ch.kind)
				ORDER BY i.id), '[]')
			FROM contact_identities i JOIN channels ch ON ch.id = i.channel_id
			WHERE i.contact_id = c.id AND i.tenant_id = p_tenant),
		'merge_suggestions', (SELECT coalesce(jsonb_agg(to_jsonb(s) - 'tenant_id'
				ORDER BY s.id), '[]')
			FROM merge_suggestions s
			WHERE c.id IN (s.contact_id, s.other_contact_id) AND s.tenant_id = p_tenant),
		'conversations', (SELECT coalesce(jsonb_agg(to_jsonb(v) - 'tenant_id'
				|| jsonb_build_object('channel_id', ch.public_id, 'channel_kind', ch.kind,
					'messages', (SELECT coalesce(jsonb_agg(to_jsonb(m) - 'tenant_id'
							- 'channel_id'
						|| jsonb_build_object(
						'edits', (SELECT coalesce(jsonb_agg(to_jsonb(x)
								- 'message_id' - 'tenant_id'
								ORDER BY x.id), '[]')
							FROM message_edits x
							WHERE x.message_id = m.id AND x.tenant_id = p_tenant),
						'reactions', (SELECT coalesce(jsonb_agg(to_jsonb(r)
								- 'message_id' - 'tenant_id'
								ORDER BY r.platform_ts), '[]')
							FROM message_reactions r
							WHERE r.message_id = m.id AND r.tenant_id = p_tenant),
						'statuses', (SELECT coalesce(jsonb_agg(to_jsonb(st)
								- 'channel_id' - 'tenant_id'
								ORDER BY st.id), '[]')
							FROM message_statuses st
							WHERE st.channel_id = m.channel_id
							      AND st.external_id = m.external_id
							      AND st.tenant_id = p_tenant),
						'outbox', (SELECT coalesce(jsonb_agg(to_jsonb(o)
								- 'tenant_id' - 'channel_id'
								ORDER BY o.id), '[]')
							FROM outbox o
							WHERE o.message_id = m.id AND o.tenant_id = p_tenant),
						'upload', (SELECT to_jsonb(u) - 'tenant_id' - 'lo'
							FROM media_uploads u
							WHERE u.id = m.media_upload_id
							      AND u.tenant_id = p_tenant))
						ORDER BY m.id), '[]')
						FROM messages m
						WHERE m.conversation_id = v.id AND m.tenant_id = p_tenant),
					'ai_exchanges', (SELECT coalesce(jsonb_agg(to_jsonb(a) - 'tenant_id'
							ORDER BY a.id), '[]')
						FROM ai_exchanges a
						WHERE a.conversation_id = v.id AND a.tenant_id = p_tenant))
				ORDER BY v.id), '[]')
			FROM conversations v JOIN channels ch ON ch.id = v.channel_id
			WHERE v.contact_id = c.id AND v.tenant_id = p_tenant),
		'ai_disclosure', (SELECT to_jsonb(d) - 'tenant_id' - 'contact_id'
			FROM ai_disclosures d WHERE d.contact_id = c.id AND d.tenant_id = p_tenant),
		'events', v_events
	)::text
	FROM contacts c WHERE c.id = p_id AND c.tenant_id = p_tenant);
END;
$function$;

CREATE OR REPLACE FUNCTION hub_contact_get(p_tenant text, p_id bigint)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
	SELECT (hub_contact_item(c) || jsonb_build_object(
		'identities', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', i.id,
				'channel_id', ch.public_id, 'channel_kind', ch.kind,
				'external_id', i.external_id, 'phone', i.phone,
				'profile_name', i.profile_name, 'username', i.username,
				'created_at', hub_iso(i.created_at)) ORDER BY i.id), '[]')
			FROM contact_identities i JOIN channels ch ON ch.id = i.channel_id
			WHERE i.contact_id = c.id AND i.tenant_id = p_tenant),
		'conversations', (SELECT coalesce(jsonb_agg(hub_conversation_json(v, ch.public_id)
				|| jsonb_build_object('channel_kind', ch.kind,
					'created_at', hub_iso(v.created_at)) ORDER BY v.id DESC), '[]')
			FROM conversations v JOIN channels ch ON ch.id = v.channel_id
			WHERE v.contact_id = c.id AND v.tenant_id = p_tenant),
		'merge_suggestions', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', s.id,
				'other_contact', jsonb_build_object('id', o.id,
					'display_name', o.display_name, 'phone', o.phone),
				'reason', s.reason, 'created_at', hub_iso(s.created_at))
				ORDER BY s.id), '[]')
			FROM merge_suggestions s
			JOIN contacts o ON o.id = CASE WHEN s.contact_id = c.id
						       THEN s.other_contact_id ELSE s.contact_id END
					   AND o.tenant_id = p_tenant
			WHERE c.id IN (s.contact_id, s.other_contact_id) AND s.tenant_id = p_tenant
			      AND s.dismissed_at IS NULL)
	))::text
	FROM contacts c WHERE c.id = p_id AND c.tenant_id = p_tenant
$function$;

CREATE OR REPLACE FUNCTION hub_contact_merge_decide(p_tenant text, p_id bigint, p_sid bigint, p_confirm boolean, p_actor text, p_role text, p_address text)
 RETURNS TABLE(kind text, event_id bigint, event text, data text)
 LANGUAGE plpgsql
AS $function$
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
		UPDATE merge_suggestions s SET dismissed_at = now()
		WHERE s.id = p_sid AND s.tenant_id = p_tenant;
		PERFORM hub_audit(p_tenant, p_actor, p_role, 'contact.merge_dismiss',
			'contact:' || p_id, p_address,
			jsonb_build_object('merge_suggestion', p_sid, 'other', v_other));
		RETURN QUERY SELECT * FROM hub_admin_done(p_tenant, '{}', '{}',
			hub_contact_get(p_tenant, p_id)::jsonb);
		RETURN;
	END IF;
	-- lock order: contacts (lower id first), then conversations in hub_merge_contacts
	PERFORM 1 FROM contacts c WHERE c.id IN (p_id, v_other) AND c.tenant_id = p_tenant
	ORDER BY c.id FOR UPDATE;
	SELECT c.* INTO STRICT v_from FROM contacts c
	WHERE c.id = v_other AND c.tenant_id = p_tenant;
	v_res := hub_merge_contacts(p_tenant, p_id, v_other);
	UPDATE contacts c SET phone = coalesce(c.phone, v_from.phone), updated_at = now()
	WHERE c.id = p_id AND c.tenant_id = p_tenant RETURNING c.* INTO v_into;
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
$function$;

CREATE OR REPLACE FUNCTION hub_contact_patch(p_tenant text, p_id bigint, p_body jsonb, p_actor text, p_role text, p_address text)
 RETURNS TABLE(kind text, event_id bigint, event text, data text)
 LANGUAGE plpgsql
AS $function$
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
			WHERE (s.contact_id, s.other_contact_id) IN ((p_id, v_other), (v_other, p_id))
			      AND s.tenant_id = p_tenant;
			IF v_sid IS NULL THEN
				INSERT INTO merge_suggestions (tenant_id, contact_id, other_contact_id,
							       reason)
				VALUES (p_tenant, p_id, v_other, 'same_phone') RETURNING id INTO v_sid;
			ELSE
				UPDATE merge_suggestions s SET dismissed_at = NULL
				WHERE s.id = v_sid AND s.tenant_id = p_tenant;
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
		WHERE c.id = p_id AND c.tenant_id = p_tenant RETURNING c.* INTO v_c;
	END IF;
	PERFORM hub_audit(p_tenant, p_actor, p_role, 'contact.update', 'contact:' || p_id,
			  p_address, jsonb_build_object('fields', to_jsonb(v_changed)));
	RETURN QUERY SELECT * FROM hub_admin_done(p_tenant,
		CASE WHEN cardinality(v_changed) > 0 THEN ARRAY['contact.updated'] ELSE '{}' END,
		CASE WHEN cardinality(v_changed) > 0 THEN ARRAY[hub_contact_json(v_c)] ELSE '{}' END,
		hub_contact_get(p_tenant, p_id)::jsonb);
END;
$function$;

CREATE OR REPLACE FUNCTION hub_contact_search(p_tenant text, p_q text, p_limit integer, p_before bigint)
 RETURNS TABLE(items text, next_before bigint)
 LANGUAGE plpgsql
 STABLE
AS $function$
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
						WHERE x.tenant_id = p_tenant
						      AND x.contact_id = w.contact_id
						      AND x.word LIKE s || '%'))
				ORDER BY w.contact_id DESC LIMIT p_limit + 1);
		END IF;
	END IF;
	RETURN QUERY
	SELECT (SELECT coalesce(jsonb_agg(hub_contact_item(c) ORDER BY c.id DESC), '[]')::text
		FROM contacts c WHERE c.id = ANY (v_ids[1:p_limit]) AND c.tenant_id = p_tenant),
	       CASE WHEN cardinality(v_ids) > p_limit THEN v_ids[p_limit] END;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_contact_words()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		DELETE FROM contact_name_words w
		WHERE w.contact_id = NEW.id AND w.tenant_id = NEW.tenant_id;
	END IF;
	INSERT INTO contact_name_words (tenant_id, word, contact_id)
	SELECT DISTINCT NEW.tenant_id, w, NEW.id
	FROM hub_name_words(NEW.display_name) w
	ON CONFLICT DO NOTHING;
	RETURN NULL;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_ingest_delete(INOUT p_msg messages, p_ts_ms bigint, OUT o_result text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
BEGIN
	IF p_msg.deleted_at IS NOT NULL THEN
		o_result := 'duplicate';
		RETURN;
	END IF;
	UPDATE messages m SET deleted_at = coalesce(hub_ms_ts(p_ts_ms), now())
	WHERE m.id = p_msg.id AND m.tenant_id = p_msg.tenant_id RETURNING m.* INTO p_msg;
	o_result := 'stored';
END;
$function$;

CREATE OR REPLACE FUNCTION hub_last_inbound(v_conv conversations)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE
AS $function$
	SELECT max(coalesce(m.platform_ts, m.created_at)) FROM messages m
	JOIN conversations v ON v.id = m.conversation_id AND v.tenant_id = m.tenant_id
	WHERE v.contact_id = v_conv.contact_id AND v.channel_id = v_conv.channel_id
	      AND v.tenant_id = v_conv.tenant_id AND m.direction = 'in'
$function$;

CREATE OR REPLACE FUNCTION hub_media_of(p_tenant text, p_message bigint)
 RETURNS TABLE(channel text, kind text, ref text, mime text, filename text, size bigint, upload_lo oid)
 LANGUAGE sql
 STABLE
AS $function$
	SELECT ch.public_id, ch.kind, m.media->>'ref', coalesce(u.mime, m.media->>'mime'),
	       coalesce(u.filename, m.media->>'filename'),
	       coalesce(u.size, (m.media->>'size')::bigint), u.lo
	FROM messages m
	JOIN channels ch ON ch.id = m.channel_id
	LEFT JOIN media_uploads u ON u.id = m.media_upload_id AND u.tenant_id = m.tenant_id
	WHERE m.id = p_message AND (p_tenant IS NULL OR m.tenant_id = p_tenant)
	      AND m.media IS NOT NULL
	      AND (m.media ? 'ref' OR u.id IS NOT NULL)
$function$;

CREATE OR REPLACE FUNCTION hub_media_upload(p_tenant text, p_user text, p_mime text, p_filename text, p_data bytea)
 RETURNS TABLE(id bigint, size bigint, sha256 text)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
BEGIN
	DELETE FROM media_uploads u
	WHERE u.tenant_id = p_tenant AND u.created_at < now() - interval '1 day'
	      AND NOT EXISTS (SELECT 1 FROM messages m
			      WHERE m.media_upload_id = u.id AND m.tenant_id = p_tenant);
	RETURN QUERY
	INSERT INTO media_uploads AS u (tenant_id, lo, mime, filename, size, sha256, uploaded_by)
	VALUES (p_tenant, lo_from_bytea(0, p_data), p_mime, p_filename, length(p_data),
		encode(sha256(p_data), 'hex'), p_user)
	RETURNING u.id, u.size, u.sha256;
END;
$function$;

DROP FUNCTION hub_merge_contacts(bigint, bigint);
CREATE OR REPLACE FUNCTION hub_merge_contacts(p_tenant text, p_into bigint, p_from bigint, OUT o_types text[], OUT o_datas jsonb[])
 RETURNS record
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_from contacts;
	v_conv conversations;
BEGIN
	o_types := ARRAY['contact.merged'];
	o_datas := ARRAY[jsonb_build_object('contact_id', p_into, 'merged_contact_id', p_from,
					    'reason', 'phone')];
	SELECT c.* INTO STRICT v_from FROM contacts c
	WHERE c.id = p_from AND c.tenant_id = p_tenant FOR UPDATE;
	UPDATE contacts c
	SET display_name = coalesce(c.display_name, v_from.display_name),
	    name_set_by_agent = c.name_set_by_agent OR
		(c.display_name IS NULL AND v_from.name_set_by_agent),
	    updated_at = now()
	WHERE c.id = p_into AND c.tenant_id = p_tenant;
	UPDATE conversations v SET status = 'resolved', updated_at = now()
	WHERE v.contact_id = p_from AND v.tenant_id = p_tenant AND v.status = 'open' AND EXISTS (
		SELECT 1 FROM conversations x
		WHERE x.contact_id = p_into AND x.tenant_id = p_tenant
		      AND x.channel_id = v.channel_id AND x.status = 'open');
	FOR v_conv IN
		UPDATE conversations v SET contact_id = p_into, updated_at = now()
		WHERE v.contact_id = p_from AND v.tenant_id = p_tenant RETURNING v.*
	LOOP
		o_types := o_types || 'conversation.updated'::text;
		o_datas := o_datas || hub_conversation_json(v_conv,
			(SELECT c.public_id FROM channels c WHERE c.id = v_conv.channel_id));
	END LOOP;
	UPDATE contact_identities i SET contact_id = p_into, updated_at = now()
	WHERE i.contact_id = p_from AND i.tenant_id = p_tenant;
	DELETE FROM merge_suggestions s
	WHERE p_from IN (s.contact_id, s.other_contact_id) AND s.tenant_id = p_tenant;
	DELETE FROM contacts c WHERE c.id = p_from AND c.tenant_id = p_tenant;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_message_json(m messages, p_contact bigint, p_channel text)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
	v_reactions jsonb;
BEGIN
	SELECT jsonb_agg(jsonb_build_object('emoji', r.emoji, 'author', r.author)
			 ORDER BY r.updated_at, r.reactor_external_id)
	INTO v_reactions
	FROM message_reactions r
	WHERE r.message_id = m.id AND r.tenant_id = m.tenant_id AND r.emoji IS NOT NULL;
	RETURN hub_message_obj(m, p_contact, p_channel, coalesce(v_reactions, '[]'::jsonb));
END;
$function$;

CREATE OR REPLACE FUNCTION hub_message_lock(p_ch channels, p_external_id text)
 RETURNS messages
 LANGUAGE sql
AS $function$
	SELECT m.* FROM messages m
	WHERE m.channel_id = p_ch.id AND m.external_id = p_external_id
	      AND m.tenant_id = p_ch.tenant_id FOR UPDATE
$function$;

CREATE OR REPLACE FUNCTION hub_message_updated(m messages, p_ch channels)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
AS $function$
	SELECT hub_message_json(m, (SELECT v.contact_id FROM conversations v
				    WHERE v.id = m.conversation_id AND v.tenant_id = m.tenant_id),
		p_ch.public_id)
$function$;

-- The profile requests' queue: the claim picks due rows of every tenant (as the outbox's
-- and the assistant's do) and returns each one's tenant; applying and postponing name it.
DROP FUNCTION hub_profile_claim(integer, integer);
CREATE FUNCTION hub_profile_claim(p_limit integer, p_lease_ms integer)
RETURNS TABLE (request_id bigint, attempts integer, channel text, external_id text,
	       tenant_id text)
LANGUAGE sql AS $$
	WITH due AS (
		SELECT r.id, r.tenant_id FROM profile_requests r
		WHERE r.next_attempt_at <= now() AND (r.lease_until IS NULL OR r.lease_until < now())
		ORDER BY r.next_attempt_at, r.id
		LIMIT p_limit
		FOR UPDATE SKIP LOCKED
	), claimed AS (
		UPDATE profile_requests r SET attempts = r.attempts + 1,
			lease_until = now() + make_interval(secs => p_lease_ms / 1000.0)
		FROM due WHERE r.id = due.id AND r.tenant_id = due.tenant_id
		RETURNING r.*
	)
	SELECT c.id, c.attempts, ch.public_id, i.external_id, c.tenant_id
	FROM claimed c
	JOIN contact_identities i ON i.id = c.identity_id AND i.tenant_id = c.tenant_id
	JOIN channels ch ON ch.id = i.channel_id
	ORDER BY c.id
$$;

DROP FUNCTION hub_profile_later(bigint, integer);
CREATE FUNCTION hub_profile_later(p_tenant text, p_request bigint, p_delay_ms integer)
RETURNS void LANGUAGE sql AS $$
	DELETE FROM profile_requests r
	WHERE r.id = p_request AND r.tenant_id = p_tenant AND p_delay_ms IS NULL;
	UPDATE profile_requests r SET lease_until = NULL,
		next_attempt_at = now() + make_interval(secs => p_delay_ms / 1000.0)
	WHERE r.id = p_request AND r.tenant_id = p_tenant;
$$;

DROP FUNCTION hub_profile_apply(bigint, text, text);
CREATE FUNCTION hub_profile_apply(p_tenant text, p_request bigint, p_name text, p_username text)
 RETURNS TABLE(tenant text, event_id bigint, event text, data text)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_identity bigint;
	v_ident contact_identities;
	v_ch channels;
	v_res record;
BEGIN
	DELETE FROM profile_requests r WHERE r.id = p_request AND r.tenant_id = p_tenant
	RETURNING r.identity_id INTO v_identity;
	SELECT i.* INTO v_ident FROM contact_identities i
	WHERE i.id = v_identity AND i.tenant_id = p_tenant;
	IF NOT FOUND OR (nullif(p_name, '') IS NULL AND nullif(p_username, '') IS NULL) THEN
		RETURN;
	END IF;
	SELECT c.* INTO STRICT v_ch FROM channels c WHERE c.id = v_ident.channel_id;
	SELECT * INTO v_res FROM hub_resolve_contact(v_ch, v_ident.external_id, NULL,
		coalesce(nullif(p_name, ''), p_username), nullif(p_username, ''));
	RETURN QUERY SELECT * FROM hub_append_events(v_ch.tenant_id, v_res.o_types, v_res.o_datas);
END;
$function$;

CREATE OR REPLACE FUNCTION hub_tgpoll_advance(p_channel text, p_owner text, p_offset bigint)
 RETURNS boolean
 LANGUAGE sql
AS $function$
	WITH moved AS (
		UPDATE telegram_polls t SET next_offset = greatest(t.next_offset, p_offset),
			updated_at = now()
		FROM channels c
		WHERE c.id = t.channel_id AND c.tenant_id = t.tenant_id AND c.public_id = p_channel
		      AND t.owner = p_owner
		RETURNING 1)
	SELECT EXISTS (SELECT 1 FROM moved)
$function$;

CREATE OR REPLACE FUNCTION hub_tgpoll_release(p_channel text, p_owner text)
 RETURNS void
 LANGUAGE sql
AS $function$
	UPDATE telegram_polls t SET owner = NULL, lease_until = NULL, updated_at = now()
	FROM channels c
	WHERE c.id = t.channel_id AND c.tenant_id = t.tenant_id AND c.public_id = p_channel
	      AND t.owner = p_owner
$function$;

CREATE OR REPLACE FUNCTION hub_webchat_mark(p_channel text, p_sender text, p_message bigint, p_status text)
 RETURNS TABLE(tenant_id text, event_id bigint, event text, data text)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_ch channels := hub_webchat_channel(p_channel);
	v_types text[] := '{}';
	v_datas jsonb[] := '{}';
	v_msg messages;
BEGIN
	IF p_status NOT IN ('delivered', 'read') THEN
		RAISE EXCEPTION 'delivered or read' USING ERRCODE = '22023';
	END IF;
	FOR v_msg IN
		UPDATE messages m SET status = p_status
		FROM conversations v, contact_identities i
		WHERE i.channel_id = v_ch.id AND i.external_id = p_sender
		      AND i.tenant_id = v_ch.tenant_id
		      AND v.channel_id = v_ch.id AND v.contact_id = i.contact_id
		      AND v.tenant_id = v_ch.tenant_id
		      AND m.conversation_id = v.id AND m.tenant_id = v_ch.tenant_id
		      AND m.direction = 'out'
		      AND CASE WHEN p_status = 'read' THEN m.id <= p_message
			       ELSE m.id = p_message END
		      AND hub_status_rank(m.status) BETWEEN 0 AND hub_status_rank(p_status) - 1
		RETURNING m.*
	LOOP
		v_types := v_types || 'message.status'::text;
		v_datas := v_datas || hub_status_json(v_msg);
	END LOOP;
	RETURN QUERY
	SELECT v_ch.tenant_id, a.event_id, v_types[a.ord], v_datas[a.ord]::text
	FROM hub_stream_append(v_ch.tenant_id, v_types, v_datas) a ORDER BY a.ord;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_webchat_message_id(p_channel text, p_external_id text)
 RETURNS bigint
 LANGUAGE sql
 STABLE
AS $function$
	SELECT m.id FROM messages m JOIN channels c ON c.id = m.channel_id
	WHERE c.public_id = p_channel AND m.external_id = p_external_id
	      AND m.tenant_id = c.tenant_id
$function$;

CREATE OR REPLACE FUNCTION hub_webchat_prechat(p_channel text, p_sender text, p_name text, p_phone text)
 RETURNS TABLE(tenant_id text, event_id bigint, event text, data text)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_ch channels := hub_webchat_channel(p_channel);
	v_phone text := CASE WHEN p_phone ~ '^\+[1-9][0-9]{6,14}$' THEN p_phone END;
	v_res record;
BEGIN
	IF EXISTS (SELECT 1 FROM contact_identities i
		   WHERE i.channel_id = v_ch.id AND i.external_id = p_sender
			 AND i.tenant_id = v_ch.tenant_id) THEN
		RETURN;
	END IF;
	IF v_phone IS NOT NULL AND EXISTS (
		SELECT 1 FROM contact_identities i
		JOIN contacts c ON c.id = i.contact_id AND c.tenant_id = i.tenant_id
		WHERE i.channel_id = v_ch.id AND i.tenant_id = v_ch.tenant_id
		      AND c.phone = v_phone) THEN
		v_phone := NULL;
	END IF;
	IF hub_clean_name(p_name) IS NULL AND v_phone IS NULL THEN
		RETURN;
	END IF;
	v_res := hub_resolve_contact(v_ch, p_sender, v_phone, p_name, NULL);
	RETURN QUERY
	SELECT v_ch.tenant_id, a.event_id, v_res.o_types[a.ord], v_res.o_datas[a.ord]::text
	FROM hub_stream_append(v_ch.tenant_id, v_res.o_types, v_res.o_datas) a ORDER BY a.ord;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_webchat_sync(p_channel text, p_sender text, p_after bigint, p_limit integer)
 RETURNS TABLE(contact_id bigint, conversations text, last_event_id bigint, event_id bigint, event text, data text)
 LANGUAGE plpgsql
 STABLE
AS $function$
#variable_conflict use_column
DECLARE
	v_ch channels := hub_webchat_channel(p_channel);
	v_contact bigint;
	v_convs bigint[];
	v_last bigint;
BEGIN
	SELECT i.contact_id INTO v_contact FROM contact_identities i
	WHERE i.channel_id = v_ch.id AND i.external_id = p_sender
	      AND i.tenant_id = v_ch.tenant_id;
	v_convs := ARRAY(SELECT v.id FROM conversations v
			 WHERE v.channel_id = v_ch.id AND v.contact_id = v_contact
			       AND v.tenant_id = v_ch.tenant_id ORDER BY v.id);
	SELECT s.last_event_id INTO v_last FROM tenant_stream s WHERE s.tenant_id = v_ch.tenant_id;
	-- a cursor that far behind (a tab left open for weeks on a busy tenant) would scan the
	-- tenant's whole log since: the history instead (the widget replaces by message id)
	IF p_after IS NOT NULL AND v_last - p_after > 100000 THEN
		p_after := NULL;
	END IF;
	RETURN QUERY SELECT v_contact, array_to_string(v_convs, ','), v_last, NULL::bigint,
			    NULL::text, NULL::text;
	IF v_contact IS NULL THEN
		RETURN;
	END IF;
	IF p_after IS NULL THEN
		RETURN QUERY
		SELECT NULL::bigint, NULL::text, NULL::bigint, NULL::bigint, 'message'::text,
		       hub_webchat_msg(x)::text
		FROM (SELECT m.* FROM messages m
		      WHERE m.conversation_id = ANY (v_convs) AND m.tenant_id = v_ch.tenant_id
		      ORDER BY m.id DESC LIMIT p_limit) x ORDER BY x.id;
		RETURN;
	END IF;
	RETURN QUERY
	SELECT NULL::bigint, NULL::text, NULL::bigint, e.id, e.type,
	       CASE WHEN e.type IN ('message.created', 'message.updated')
		    THEN (SELECT hub_webchat_msg(m) FROM messages m
			  WHERE m.id = (e.data->>'id')::bigint AND m.tenant_id = e.tenant_id)::text
		    ELSE e.data::text END
	FROM events e
	WHERE e.tenant_id = v_ch.tenant_id AND e.id > p_after AND e.id <= v_last
	      AND e.type IN ('message.created', 'message.updated', 'message.status')
	      AND (e.data->>'conversation_id')::bigint = ANY (v_convs)
	ORDER BY e.id LIMIT p_limit;
END;
$function$;

-- A deleted tenant's rows, purged in batches (0015): each DELETE names the tenant too.
CREATE OR REPLACE FUNCTION hub_privacy_purge(p_after_s bigint, p_batch integer, OUT o_tenant text, OUT o_what text, OUT o_rows bigint)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
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
	DELETE FROM message_statuses s WHERE s.tenant_id = v_t AND s.id = ANY (ARRAY(
		SELECT x.id FROM message_statuses x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'ingest_keys';
	DELETE FROM ingest_keys k WHERE k.tenant_id = v_t AND k.ctid = ANY (ARRAY(
		SELECT x.ctid FROM ingest_keys x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'ai_exchanges';
	DELETE FROM ai_exchanges a WHERE a.tenant_id = v_t AND a.id = ANY (ARRAY(
		SELECT x.id FROM ai_exchanges x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'ai_disclosures';
	DELETE FROM ai_disclosures d WHERE d.tenant_id = v_t AND d.contact_id = ANY (ARRAY(
		SELECT x.contact_id FROM ai_disclosures x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	-- with their edits, reactions and outbox rows (cascade)
	o_what := 'messages';
	DELETE FROM messages m WHERE m.tenant_id = v_t AND m.id = ANY (ARRAY(
		SELECT x.id FROM messages x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'conversations';
	DELETE FROM conversations v WHERE v.tenant_id = v_t AND v.id = ANY (ARRAY(
		SELECT x.id FROM conversations x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'merge_suggestions';
	DELETE FROM merge_suggestions s WHERE s.tenant_id = v_t AND s.id = ANY (ARRAY(
		SELECT x.id FROM merge_suggestions x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	-- with their identities and name words (cascade)
	o_what := 'contacts';
	DELETE FROM contacts c WHERE c.tenant_id = v_t AND c.id = ANY (ARRAY(
		SELECT x.id FROM contacts x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'media_uploads';
	DELETE FROM media_uploads u WHERE u.tenant_id = v_t AND u.id = ANY (ARRAY(
		SELECT x.id FROM media_uploads x WHERE x.tenant_id = v_t LIMIT p_batch));
	GET DIAGNOSTICS o_rows = ROW_COUNT;
	IF o_rows > 0 THEN RETURN; END IF;
	o_what := 'tenant';
	DELETE FROM tenants t WHERE t.id = v_t;
	GET DIAGNOSTICS o_rows = ROW_COUNT;
END;
$function$;

-- 6. An agent's commands and the outbox: the commands name the conversation's tenant; the
-- claim picks due rows of every tenant and returns each one's tenant, which the sender
-- passes back with its result ({"id", "tenant", ...}) and to the split; hub_message_sent
-- takes it.
CREATE OR REPLACE FUNCTION hub_cmd_retry(v_conv conversations, p_message text)
 RETURNS TABLE(kind text, event_id bigint, event text, data text)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_msg messages;
	v_kind text;
BEGIN
	SELECT m.* INTO v_msg FROM messages m
	WHERE m.id = p_message::bigint AND m.conversation_id = v_conv.id
	      AND m.tenant_id = v_conv.tenant_id AND m.direction = 'out'
	      AND EXISTS (SELECT 1 FROM outbox o
			  WHERE o.message_id = m.id AND o.tenant_id = v_conv.tenant_id)
	FOR UPDATE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT 'error'::text, NULL::bigint, 'not_found'::text,
				    'no such message of the hub in this conversation'::text;
		RETURN;
	END IF;
	IF v_msg.status <> 'failed' THEN
		RETURN QUERY SELECT 'error'::text, NULL::bigint, 'bad_request'::text,
				    'only a failed message can be sent again'::text;
		RETURN;
	END IF;
	SELECT c.kind INTO STRICT v_kind FROM channels c WHERE c.id = v_conv.channel_id;
	IF NOT hub_window_open(v_conv, v_kind) THEN
		RETURN QUERY SELECT * FROM hub_cmd_window_closed(v_kind);
		RETURN;
	END IF;
	UPDATE messages m SET status = 'queued', error = NULL
	WHERE m.id = v_msg.id AND m.tenant_id = v_conv.tenant_id RETURNING m.* INTO v_msg;
	UPDATE outbox o SET status = 'pending', attempts = 0, next_attempt_at = now(),
		lease_until = NULL, last_error = NULL, error_code = NULL, updated_at = now()
	WHERE o.message_id = v_msg.id AND o.tenant_id = v_conv.tenant_id;
	PERFORM pg_notify('hub_outbox', '');
	RETURN QUERY SELECT * FROM hub_emit_events(v_conv.tenant_id, ARRAY['message.status'],
						   ARRAY[hub_status_json(v_msg)]);
	RETURN QUERY SELECT * FROM hub_cmd_ack(jsonb_build_object('message_id', v_msg.id));
END;
$function$;

CREATE OR REPLACE FUNCTION hub_cmd_send(v_conv conversations, v_channel text, p_user text, p_text text, p_client_id text, p_reply_to bigint, p_media bigint)
 RETURNS TABLE(kind text, event_id bigint, event text, data text)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_msg messages;
	v_kind text;
	v_quote text;
	v_up media_uploads;
BEGIN
	IF p_client_id IS NOT NULL THEN
		SELECT m.* INTO v_msg FROM messages m
		WHERE m.conversation_id = v_conv.id AND m.client_id = p_client_id
		      AND m.tenant_id = v_conv.tenant_id;
		IF FOUND THEN
			RETURN QUERY SELECT * FROM hub_cmd_ack(jsonb_build_object(
				'message_id', v_msg.id, 'duplicate', true));
			RETURN;
		END IF;
	END IF;
	IF p_reply_to IS NOT NULL THEN
		SELECT m.external_id INTO v_quote FROM messages m
		WHERE m.id = p_reply_to AND m.conversation_id = v_conv.id
		      AND m.tenant_id = v_conv.tenant_id;
		IF NOT FOUND THEN
			RETURN QUERY SELECT 'error'::text, NULL::bigint, 'not_found'::text,
					    'no such message to quote in this conversation'::text;
			RETURN;
		END IF;
		IF v_quote IS NULL THEN
			RETURN QUERY SELECT 'error'::text, NULL::bigint, 'bad_request'::text,
				'the quoted message has no platform id yet (not sent)'::text;
			RETURN;
		END IF;
	END IF;
	SELECT c.kind INTO STRICT v_kind FROM channels c WHERE c.id = v_conv.channel_id;
	IF p_media IS NOT NULL THEN
		SELECT u.* INTO v_up FROM media_uploads u
		WHERE u.id = p_media AND u.tenant_id = v_conv.tenant_id;
		IF NOT FOUND THEN
			RETURN QUERY SELECT 'error'::text, NULL::bigint, 'not_found'::text,
					    'no such upload'::text;
			RETURN;
		END IF;
		IF v_kind = 'instagram' AND coalesce(p_text, '') <> '' THEN
			RETURN QUERY SELECT 'error'::text, NULL::bigint, 'bad_request'::text,
				'an Instagram attachment carries no caption: send the text as a '
				'message of its own'::text;
			RETURN;
		END IF;
		IF char_length(p_text) > 1024 THEN
			RETURN QUERY SELECT 'error'::text, NULL::bigint, 'bad_request'::text,
				'a caption is at most 1024 characters'::text;
			RETURN;
		END IF;
	END IF;
	IF NOT hub_window_open(v_conv, v_kind) THEN
		RETURN QUERY SELECT * FROM hub_cmd_window_closed(v_kind);
		RETURN;
	END IF;
	INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, direction, author,
				   type, text, status, client_id, reply_to_external_id, media,
				   media_upload_id)
	VALUES (v_conv.tenant_id, v_conv.id, v_conv.channel_id, 'out', 'agent',
		CASE WHEN v_up.id IS NULL THEN 'text'
		     WHEN v_up.mime IN ('image/jpeg', 'image/png') THEN 'image' ELSE 'document' END,
		nullif(p_text, ''), 'queued', p_client_id, v_quote,
		CASE WHEN v_up.id IS NOT NULL THEN jsonb_build_object('upload', v_up.id,
			'mime', v_up.mime, 'filename', v_up.filename, 'size', v_up.size) END,
		v_up.id)
	RETURNING m.* INTO v_msg;
	INSERT INTO outbox (tenant_id, message_id, channel_id, conversation_id)
	VALUES (v_conv.tenant_id, v_msg.id, v_conv.channel_id, v_conv.id);
	UPDATE conversations v SET mode = 'human', last_message_at = now(), updated_at = now()
	WHERE v.id = v_conv.id AND v.tenant_id = v_conv.tenant_id RETURNING v.* INTO v_conv;
	RETURN QUERY SELECT * FROM hub_emit_events(v_conv.tenant_id,
		ARRAY['message.created', 'conversation.updated'],
		ARRAY[hub_message_json(v_msg, v_conv.contact_id, v_channel),
		      hub_conversation_json(v_conv, v_channel)]);
	RETURN QUERY SELECT * FROM hub_cmd_ack(jsonb_build_object('message_id', v_msg.id,
								  'duplicate', false));
END;
$function$;

CREATE OR REPLACE FUNCTION hub_cmd_update(v_conv conversations, v_channel text, p_user text, p_admin boolean, p_set text, p_value text)
 RETURNS TABLE(kind text, event_id bigint, event text, data text)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_new conversations := v_conv;
BEGIN
	IF p_set = 'assignee' AND NOT p_admin AND p_value IS DISTINCT FROM p_user
	   AND NOT (p_value IS NULL AND coalesce(v_conv.assignee, p_user) = p_user) THEN
		RETURN QUERY SELECT 'error'::text, NULL::bigint, 'forbidden'::text,
			CASE WHEN p_value IS NULL
			THEN 'only an admin may unassign a conversation of another user'
			ELSE 'only an admin may assign a conversation to another user' END;
		RETURN;
	END IF;
	CASE p_set
	WHEN 'unread' THEN v_new.unread := 0;
	WHEN 'assignee' THEN v_new.assignee := p_value;
	WHEN 'mode' THEN v_new.mode := p_value;
	ELSE
		RETURN QUERY SELECT 'error'::text, NULL::bigint, 'bad_request'::text,
			'unknown field'::text;
		RETURN;
	END CASE;
	IF v_new IS DISTINCT FROM v_conv THEN
		UPDATE conversations v
		SET unread = v_new.unread, assignee = v_new.assignee, mode = v_new.mode,
		    updated_at = now()
		WHERE v.id = v_conv.id AND v.tenant_id = v_conv.tenant_id RETURNING v.* INTO v_new;
		RETURN QUERY SELECT * FROM hub_emit_events(v_conv.tenant_id,
			ARRAY['conversation.updated'],
			ARRAY[hub_conversation_json(v_new, v_channel)]);
	END IF;
	RETURN QUERY SELECT * FROM hub_cmd_ack(jsonb_build_object(
		'conversation', hub_conversation_json(v_new, v_channel)));
END;
$function$;

DROP FUNCTION hub_message_sent(bigint, text);
CREATE OR REPLACE FUNCTION hub_message_sent(p_tenant text, p_message_id bigint, p_external_id text, OUT o_result text, OUT o_types text[], OUT o_datas jsonb[])
 RETURNS record
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_msg messages;
	v_echo messages;
	v_st message_statuses;
BEGIN
	o_types := '{}';
	o_datas := '{}';
	-- a message's channel never changes: read unlocked, to take hub_outbound_lock first
	PERFORM hub_outbound_lock(m.channel_id, p_external_id) FROM messages m
	WHERE m.id = p_message_id AND m.tenant_id = p_tenant;
	SELECT m.* INTO v_msg FROM messages m
	WHERE m.id = p_message_id AND m.tenant_id = p_tenant AND m.direction = 'out' FOR UPDATE;
	IF NOT FOUND THEN
		o_result := 'unknown';
		RETURN;
	END IF;
	IF v_msg.external_id IS NOT DISTINCT FROM p_external_id THEN
		o_result := 'duplicate';
		RETURN;
	END IF;
	DELETE FROM messages m
	WHERE m.channel_id = v_msg.channel_id AND m.external_id = p_external_id
	      AND m.tenant_id = p_tenant AND m.direction = 'out' AND m.id <> v_msg.id
	RETURNING m.* INTO v_echo;
	IF FOUND THEN
		o_types := o_types || 'message.merged'::text;
		o_datas := o_datas || jsonb_build_object('id', v_echo.id,
			'conversation_id', v_echo.conversation_id, 'into', v_msg.id);
	END IF;
	SELECT s.* INTO v_st FROM message_statuses s
	WHERE s.channel_id = v_msg.channel_id AND s.external_id = p_external_id
	      AND s.tenant_id = p_tenant
	ORDER BY hub_status_rank(s.status) DESC LIMIT 1;
	UPDATE messages m
	SET external_id = p_external_id,
	    status = CASE WHEN m.status = 'failed' THEN m.status
			  WHEN hub_status_rank(v_st.status) > greatest(hub_status_rank(m.status), 1)
			  THEN v_st.status
			  WHEN hub_status_rank(m.status) < 1 THEN 'sent' ELSE m.status END,
	    error = CASE WHEN m.status <> 'failed' AND v_st.status = 'failed' THEN v_st.error
			 ELSE m.error END
	WHERE m.id = v_msg.id AND m.tenant_id = p_tenant RETURNING m.* INTO v_msg;
	o_result := 'stored';
	o_types := o_types || 'message.status'::text;
	o_datas := o_datas || hub_status_json(v_msg);
END;
$function$;

DROP FUNCTION hub_outbox_claim(integer, integer);
CREATE OR REPLACE FUNCTION hub_outbox_claim(p_limit integer, p_lease_ms integer)
 RETURNS TABLE(outbox_id bigint, attempts integer, channel text, recipient text, type text, text text, reply_to text, window_open boolean, media_upload bigint, media_filename text, tenant_id text)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH pending AS ( -- in due order along outbox_due: stops at the limit
		SELECT o.id, o.tenant_id FROM outbox o
		WHERE o.status = 'pending' AND o.next_attempt_at <= now()
		      AND NOT hub_outbox_behind(o)
		ORDER BY o.next_attempt_at, o.id
		LIMIT p_limit
		FOR UPDATE SKIP LOCKED
	), lapsed AS ( -- rows of an instance that died
		SELECT o.id, o.tenant_id FROM outbox o
		WHERE o.status = 'sending' AND o.lease_until < now() AND NOT hub_outbox_behind(o)
		ORDER BY o.lease_until
		LIMIT p_limit
		FOR UPDATE SKIP LOCKED
	), due AS (
		SELECT id, tenant_id FROM pending UNION ALL SELECT id, tenant_id FROM lapsed
	), claimed AS (
		UPDATE outbox o SET status = 'sending', attempts = o.attempts + 1,
			lease_until = now() + make_interval(secs => p_lease_ms / 1000.0),
			updated_at = now()
		FROM due WHERE o.id = due.id AND o.tenant_id = due.tenant_id
		RETURNING o.*
	)
	SELECT c.id, c.attempts, ch.public_id,
	       (SELECT coalesce(CASE WHEN ch.kind = 'whatsapp' AND i.external_id !~ '^[0-9]+$'
				     THEN ltrim(i.phone, '+') END, i.external_id)
		FROM contact_identities i
		WHERE i.contact_id = v.contact_id AND i.channel_id = v.channel_id
		      AND i.tenant_id = v.tenant_id
		ORDER BY i.updated_at DESC, i.id DESC LIMIT 1),
	       m.type, m.text, m.reply_to_external_id, hub_window_open(v, ch.kind),
	       u.id, u.filename, c.tenant_id
	FROM claimed c
	JOIN messages m ON m.id = c.message_id AND m.tenant_id = c.tenant_id
	JOIN conversations v ON v.id = c.conversation_id AND v.tenant_id = c.tenant_id
	JOIN channels ch ON ch.id = c.channel_id
	LEFT JOIN media_uploads u ON u.id = m.media_upload_id AND u.tenant_id = c.tenant_id
	ORDER BY c.id;
END;
$function$;

CREATE OR REPLACE FUNCTION hub_outbox_result(r jsonb, OUT o_tenant text, OUT o_types text[], OUT o_datas jsonb[])
 RETURNS record
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_row outbox;
	v_msg messages;
	v_sent record;
BEGIN
	o_types := '{}';
	o_datas := '{}';
	SELECT o.* INTO v_row FROM outbox o
	WHERE o.id = (r->>'id')::bigint AND o.tenant_id = r->>'tenant' AND o.status = 'sending'
	FOR UPDATE;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	o_tenant := v_row.tenant_id;
	IF r ? 'retry' THEN
		UPDATE outbox o SET status = 'pending', lease_until = NULL,
			next_attempt_at = now() + make_interval(secs => (r->>'retry')::bigint / 1000.0),
			error_code = r->>'code', last_error = r->>'error', updated_at = now()
		WHERE o.id = v_row.id AND o.tenant_id = v_row.tenant_id;
		RETURN;
	END IF;
	IF r ? 'failed' THEN
		UPDATE outbox o SET status = 'failed', lease_until = NULL, error_code = r->>'code',
			last_error = r->>'error', updated_at = now()
		WHERE o.id = v_row.id AND o.tenant_id = v_row.tenant_id;
		UPDATE messages m SET status = 'failed', error = r->>'error'
		WHERE m.id = v_row.message_id AND m.tenant_id = v_row.tenant_id
		      AND m.status <> 'failed' RETURNING m.* INTO v_msg;
	ELSE
		UPDATE outbox o SET status = 'done', lease_until = NULL, last_error = NULL,
			error_code = NULL, updated_at = now()
		WHERE o.id = v_row.id AND o.tenant_id = v_row.tenant_id;
		IF coalesce(r->>'sent', '') <> '' THEN
			SELECT * INTO v_sent FROM hub_message_sent(v_row.tenant_id, v_row.message_id,
							  r->>'sent');
			o_types := v_sent.o_types;
			o_datas := v_sent.o_datas;
			RETURN;
		END IF;
		UPDATE messages m SET status = 'sent'
		WHERE m.id = v_row.message_id AND m.tenant_id = v_row.tenant_id
		      AND hub_status_rank(m.status) < 1 RETURNING m.* INTO v_msg;
	END IF;
	IF v_msg.id IS NOT NULL THEN
		o_types := ARRAY['message.status'];
		o_datas := ARRAY[hub_status_json(v_msg)];
	END IF;
END;
$function$;

DROP FUNCTION hub_outbox_split(bigint, jsonb);
CREATE OR REPLACE FUNCTION hub_outbox_split(p_tenant text, p_outbox bigint, p_parts jsonb)
 RETURNS TABLE(tenant text, event_id bigint, event text, data text)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
	v_row outbox;
	v_msg messages;
	v_part messages;
	v_conv conversations;
	v_ch channels;
	v_types text[] := '{}';
	v_datas jsonb[] := '{}';
	v_text text;
BEGIN
	SELECT o.* INTO v_row FROM outbox o
	WHERE o.id = p_outbox AND o.tenant_id = p_tenant AND o.status = 'sending';
	IF NOT FOUND OR jsonb_array_length(p_parts) < 2 THEN
		RETURN;
	END IF;
	SELECT v.* INTO STRICT v_conv FROM conversations v
	WHERE v.id = v_row.conversation_id AND v.tenant_id = p_tenant FOR UPDATE;
	SELECT c.* INTO STRICT v_ch FROM channels c WHERE c.id = v_row.channel_id;
	UPDATE messages m SET text = p_parts->>0
	WHERE m.id = v_row.message_id AND m.tenant_id = p_tenant RETURNING m.* INTO v_msg;
	v_types := v_types || 'message.updated'::text;
	v_datas := v_datas || hub_message_updated(v_msg, v_ch);
	FOR v_text IN SELECT e FROM jsonb_array_elements_text(p_parts) WITH ORDINALITY AS a(e, n)
		      WHERE n > 1 ORDER BY n
	LOOP
		INSERT INTO messages AS m (tenant_id, conversation_id, channel_id, direction,
					   author, type, text, status)
		VALUES (v_msg.tenant_id, v_msg.conversation_id, v_msg.channel_id, 'out',
			v_msg.author, 'text', v_text, 'queued')
		RETURNING m.* INTO v_part;
		INSERT INTO outbox (tenant_id, message_id, channel_id, conversation_id, ord)
		VALUES (v_part.tenant_id, v_part.id, v_part.channel_id, v_part.conversation_id,
			coalesce(v_row.ord, v_row.id));
		v_types := v_types || 'message.created'::text;
		v_datas := v_datas || hub_message_json(v_part, v_conv.contact_id, v_ch.public_id);
	END LOOP;
	RETURN QUERY SELECT * FROM hub_append_events(v_row.tenant_id, v_types, v_datas);
END;
$function$;

-- 0020's numbering of a tenant's queued events: its DELETE names the tenant too.
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
		DELETE FROM event_queue e WHERE e.tenant_id = p_tenant AND e.seq IN (
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
