-- Filtered list reads go along an index of their own, from where their page starts, so that a
-- page reads only the rows it lists however many others the store holds.

-- The review queue of one partner: each qualification keeps its customer's partner (the
-- customers' never changes), filled in by the trigger on every insert, whichever statement
-- makes it.
ALTER TABLE customer_qualifications ADD COLUMN partner_tenant_id TEXT;
UPDATE customer_qualifications SET partner_tenant_id =
    (SELECT c.partner_tenant_id FROM customers c WHERE c.id = customer_qualifications.customer_id);
CREATE TRIGGER customer_qualifications_partner AFTER INSERT ON customer_qualifications
BEGIN
    UPDATE customer_qualifications SET partner_tenant_id =
        (SELECT c.partner_tenant_id FROM customers c WHERE c.id = NEW.customer_id)
    WHERE customer_id = NEW.customer_id AND qualification = NEW.qualification;
END;
CREATE INDEX customer_qualifications_in_review_by_partner ON customer_qualifications
    (partner_tenant_id, vetting_create_date, customer_id, qualification)
    WHERE vetting_status = 'InReview';
-- The review queue of one qualification.
CREATE INDEX customer_qualifications_in_review_by_qualification ON customer_qualifications
    (qualification, vetting_create_date, customer_id) WHERE vetting_status = 'InReview';

-- A partner's audit records of one operation type, of one resource type, of one company name
-- (lower-cased), in the order pages list them.
CREATE INDEX audit_records_by_operation ON audit_records
    (partner_tenant_id, operation_type, operation_date, seq);
CREATE INDEX audit_records_by_resource ON audit_records
    (partner_tenant_id, resource_type, operation_date, seq);
CREATE INDEX audit_records_by_name ON audit_records
    (partner_tenant_id, customer_name_lower, operation_date, seq);
