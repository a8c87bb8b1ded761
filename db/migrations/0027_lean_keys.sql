-- 0027: no foreign key to a row that every transaction of a tenant shares.
--
-- A foreign-key check locks the parent row (FOR KEY SHARE), and a row that other running
-- transactions lock as well gets a multixact: a new one each time another transaction
-- joins, written to its own log, and read again at each later check of the same row in the
-- same transaction. The tenant's row (tenants) and the channel's (channels) are such rows:
-- every webhook batch, answer and reply of a tenant locked them, once for each message,
-- outbox row and event it wrote, all at the same time.
--
-- Each key dropped here was implied by another one of the same row, whose parent carries
-- the tenant (or the channel) itself, and whose ON DELETE does what the dropped one did:
-- - messages and outbox: the conversation's key now names its channel too, so a message
--   or an outbox row can only be written to its conversation's channel (the channel's own
--   key is checked where the conversation is written, and a conversation moved to another
--   channel takes them along); the tenant's key follows from the conversation's, and a
--   tenant's deletion still reaches them through it;
-- - ai_jobs, ai_exchanges (the conversation's key), ai_disclosures, merge_suggestions (the
--   contact's): the tenant's key follows;
-- - events: their key is the tenant's stream row, which the numbering holds FOR UPDATE
--   while it writes them (the check then reads the row it already locked), and which goes
--   with its tenant.

ALTER TABLE conversations
	ADD CONSTRAINT conversations_id_tenant_id_channel_id_key UNIQUE (id, tenant_id, channel_id);

ALTER TABLE messages
	DROP CONSTRAINT messages_tenant_id_fkey,
	DROP CONSTRAINT messages_channel_id_fkey,
	DROP CONSTRAINT messages_conversation_id_tenant_id_fkey,
	ADD CONSTRAINT messages_conversation_fkey FOREIGN KEY (conversation_id, tenant_id, channel_id)
		REFERENCES conversations (id, tenant_id, channel_id)
		ON DELETE CASCADE ON UPDATE CASCADE;

ALTER TABLE outbox
	DROP CONSTRAINT outbox_tenant_id_fkey,
	DROP CONSTRAINT outbox_channel_id_fkey,
	DROP CONSTRAINT outbox_conversation_id_tenant_id_fkey,
	ADD CONSTRAINT outbox_conversation_fkey FOREIGN KEY (conversation_id, tenant_id, channel_id)
		REFERENCES conversations (id, tenant_id, channel_id)
		ON DELETE CASCADE ON UPDATE CASCADE;

ALTER TABLE ai_jobs DROP CONSTRAINT ai_jobs_tenant_id_fkey;
ALTER TABLE ai_exchanges DROP CONSTRAINT ai_exchanges_tenant_id_fkey;
ALTER TABLE ai_disclosures DROP CONSTRAINT ai_disclosures_tenant_id_fkey;
ALTER TABLE merge_suggestions DROP CONSTRAINT merge_suggestions_tenant_id_fkey;

ALTER TABLE events
	DROP CONSTRAINT events_tenant_id_fkey,
	ADD CONSTRAINT events_tenant_id_fkey FOREIGN KEY (tenant_id)
		REFERENCES tenant_stream (tenant_id) ON DELETE CASCADE;
