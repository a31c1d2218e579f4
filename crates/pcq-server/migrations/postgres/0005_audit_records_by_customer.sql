-- A customer's audit records, in the order pages list them: a page of one customer's records
-- (customerId, or a filter on CustomerId) reads only its own rows, however many records the
-- partner has.
CREATE INDEX audit_records_by_customer ON audit_records
    (partner_tenant_id, customer_id, operation_date, seq);
