-- Retention: each kind of record that is pruned when old has an index on the time its age is
-- judged by, so that one batch of the pruner finds its oldest rows without a scan.
CREATE INDEX idempotency_by_created ON idempotency (created_at);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX audit_records_by_date ON audit_records (operation_date);
