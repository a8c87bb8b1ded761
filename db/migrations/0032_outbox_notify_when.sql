-- 0032: the outbox's NOTIFY trigger fires only where it would notify.
--
-- hubd's pooled connections say hub.local_wake=on (0020): hubd wakes its own sender after
-- the COMMIT, and hub_outbox_wake leaves the NOTIFY out. The statement trigger still ran
-- two PL/pgSQL calls for every statement that queued a reply (an agent's send, an
-- assistant's answer) only to do nothing. Its WHEN now asks the same question, so on those
-- connections it is not fired at all; hubctl, psql and hubd through a transaction pooler
-- still wake every instance.

DROP TRIGGER outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT
	WHEN (current_setting('hub.local_wake', true) IS DISTINCT FROM 'on')
	EXECUTE FUNCTION hub_outbox_notify();
