-- Pending decisions no longer store when they are due: the worker asks the policy in force
-- (read in its own transaction), so a policy change needs no rescheduling and cannot race one.
DROP INDEX vetting_jobs_by_due;
ALTER TABLE vetting_jobs DROP COLUMN due_at;
CREATE INDEX vetting_jobs_by_created ON vetting_jobs (created_at);

-- Qualifications that were InReview before pending decisions existed get one now.
INSERT INTO vetting_jobs (customer_id, qualification, round, partner_tenant_id, created_at, reads)
SELECT q.customer_id, q.qualification, q.round, c.partner_tenant_id,
       COALESCE(q.vetting_create_date, q.updated_at), 0
FROM customer_qualifications q JOIN customers c ON c.id = q.customer_id
WHERE q.vetting_status = 'InReview'
ON CONFLICT (customer_id, qualification) DO NOTHING;

-- Delivery leases are now per claim (lease_owner holds the claim's token) and in real time.
UPDATE webhook_deliveries SET lease_until = NULL, lease_owner = NULL;

-- Company names for case-insensitive filtering, lower-cased by pcq (not by the database, whose
-- lower() differs between SQLite and PostgreSQL outside ASCII). ASCII names are filled here;
-- pcq fills the others when it opens the database, finding them through the partial index.
ALTER TABLE audit_records ADD COLUMN customer_name_lower TEXT;
UPDATE audit_records SET customer_name_lower = lower(customer_name)
WHERE customer_name IS NOT NULL AND customer_name NOT GLOB '*[^ -~]*';
CREATE INDEX audit_records_unlowered ON audit_records (seq)
WHERE customer_name IS NOT NULL AND customer_name_lower IS NULL;
