-- Deliveries are claimed partner by partner: the partners with pending deliveries are walked
-- in this index (one probe each), and each partner's earliest due deliveries are the start of
-- its range, so a claim reads about as many rows as it takes whatever the backlog. It replaces
-- the index on (status, next_attempt_at), whose range held every pending delivery of every
-- partner.
DROP INDEX webhook_deliveries_by_due;
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries
    (partner_tenant_id, next_attempt_at, seq) WHERE status = 'pending';
-- The deliveries a claim holds (attempts in flight), counted per partner to bound how many of
-- one partner's deliveries are in flight at once. A recorded attempt clears its lease.
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries
    (partner_tenant_id, lease_until) WHERE lease_until IS NOT NULL;
