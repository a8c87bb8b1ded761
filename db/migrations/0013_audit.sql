-- db/migrations/0013_audit.sql - the audit log of admin actions (admin issue 14, point 7).
-- Applied once by hub_store_migrate() inside one transaction (no BEGIN/COMMIT here).
-- One row per action an admin took through the API or an operator through hubctl: who,
-- what, on what, when and from which address. It never holds a message text, a secret or a
-- customer's personal data (a contact is named by its id only), so it survives the erasure
-- of a contact and the purge of a tenant (no foreign key to tenants on purpose).

CREATE TABLE audit_log (
	tenant_id text NOT NULL,
	id bigserial NOT NULL,
	at timestamptz NOT NULL DEFAULT now(),
	actor text NOT NULL,          -- the token's sub, or "hubctl" for the command line
	role text NOT NULL,           -- admin, agent or operator
	action text NOT NULL,         -- dotted, e.g. channel.create, contact.erase
	target text NOT NULL DEFAULT '', -- e.g. channel:acme-wa, contact:42
	address text NOT NULL DEFAULT '', -- the client's address ('' for hubctl)
	detail jsonb NOT NULL DEFAULT '{}', -- names of changed fields, counts: no values
	PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_log_at ON audit_log (tenant_id, at DESC, id DESC);

-- Appends one record and returns its id; called inside the transaction of the change it
-- records, so a change and its record commit together or not at all.
CREATE FUNCTION hub_audit(p_tenant text, p_actor text, p_role text, p_action text,
			  p_target text, p_address text, p_detail jsonb) RETURNS bigint
LANGUAGE sql AS $$
	INSERT INTO audit_log (tenant_id, actor, role, action, target, address, detail)
	VALUES (p_tenant, p_actor, p_role, p_action, coalesce(p_target, ''),
		coalesce(p_address, ''), coalesce(p_detail, '{}'))
	RETURNING id;
$$;
