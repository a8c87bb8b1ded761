-- db/migrations/0009_profiles.sql - names for Instagram senders (daemon/inbound/profiles.c):
-- an Instagram webhook gives a sender's IGSID only, so each new Instagram identity without
-- a name queues one lookup of the User Profile API. A lookup never delays the message: it
-- runs after the message is stored, and a failure leaves the IGSID shown.
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).

CREATE TABLE profile_requests (
	id bigserial PRIMARY KEY,
	identity_id bigint NOT NULL UNIQUE REFERENCES contact_identities (id) ON DELETE CASCADE,
	attempts integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	lease_until timestamptz,                 -- claimed by an instance until then
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX profile_requests_due ON profile_requests (next_attempt_at);

-- A new Instagram identity without a name or username: look it up (NOTIFY at COMMIT wakes
-- the instances).
CREATE FUNCTION hub_profile_wanted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM channels c WHERE c.id = NEW.channel_id AND c.kind = 'instagram')
	THEN
		INSERT INTO profile_requests (identity_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
		PERFORM pg_notify('hub_profiles', '');
	END IF;
	RETURN NULL;
END;
$$;
CREATE TRIGGER contact_identities_profile AFTER INSERT ON contact_identities
	FOR EACH ROW WHEN (NEW.profile_name IS NULL AND NEW.username IS NULL)
	EXECUTE FUNCTION hub_profile_wanted();

-- Up to p_limit due lookups, each this instance's for p_lease_ms (SKIP LOCKED: several
-- instances share the work): the channel (public id) and the sender's IGSID.
CREATE FUNCTION hub_profile_claim(p_limit integer, p_lease_ms integer)
RETURNS TABLE (request_id bigint, attempts integer, channel text, external_id text)
LANGUAGE sql AS $$
	WITH due AS (
		SELECT r.id FROM profile_requests r
		WHERE r.next_attempt_at <= now() AND (r.lease_until IS NULL OR r.lease_until < now())
		ORDER BY r.next_attempt_at, r.id
		LIMIT p_limit
		FOR UPDATE SKIP LOCKED
	), claimed AS (
		UPDATE profile_requests r SET attempts = r.attempts + 1,
			lease_until = now() + make_interval(secs => p_lease_ms / 1000.0)
		FROM due WHERE r.id = due.id
		RETURNING r.*
	)
	SELECT c.id, c.attempts, ch.public_id, i.external_id
	FROM claimed c
	JOIN contact_identities i ON i.id = c.identity_id
	JOIN channels ch ON ch.id = i.channel_id
	ORDER BY c.id
$$;

-- When to look again without a NOTIFY: the earliest due lookup or end of a lease.
CREATE FUNCTION hub_profile_next() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
	SELECT min(greatest(r.next_attempt_at, coalesce(r.lease_until, r.next_attempt_at)))
	FROM profile_requests r
$$;

-- The profile came: the identity takes the name and username and the contact the name
-- (or the username when there is no name), unless an agent named it, through
-- hub_resolve_contact (0004) as a webhook's profile name would; the request is done.
-- Returns the events to publish (contact.updated, contact.merge_suggested).
CREATE FUNCTION hub_profile_apply(p_request bigint, p_name text, p_username text)
RETURNS TABLE (tenant text, event_id bigint, event text, data text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_identity bigint;
	v_ident contact_identities;
	v_ch channels;
	v_res record;
BEGIN
	DELETE FROM profile_requests r WHERE r.id = p_request RETURNING r.identity_id
	INTO v_identity;
	SELECT i.* INTO v_ident FROM contact_identities i WHERE i.id = v_identity;
	IF NOT FOUND OR (nullif(p_name, '') IS NULL AND nullif(p_username, '') IS NULL) THEN
		RETURN;
	END IF;
	SELECT c.* INTO STRICT v_ch FROM channels c WHERE c.id = v_ident.channel_id;
	SELECT * INTO v_res FROM hub_resolve_contact(v_ch, v_ident.external_id, NULL,
		coalesce(nullif(p_name, ''), p_username), nullif(p_username, ''));
	RETURN QUERY SELECT * FROM hub_append_events(v_ch.tenant_id, v_res.o_types, v_res.o_datas);
END;
$$;

-- Not now: again in p_delay_ms; or, p_delay_ms NULL, never (the IGSID stays shown).
CREATE FUNCTION hub_profile_later(p_request bigint, p_delay_ms integer) RETURNS void
LANGUAGE sql AS $$
	DELETE FROM profile_requests r WHERE r.id = p_request AND p_delay_ms IS NULL;
	UPDATE profile_requests r SET lease_until = NULL,
		next_attempt_at = now() + make_interval(secs => p_delay_ms / 1000.0)
	WHERE r.id = p_request;
$$;
