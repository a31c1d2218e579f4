-- Fewer B-tree writes per request. A request for a qualification writes its idempotency
-- record, the qualification, its history step and an audit record; each table's rows and each
-- of its indexes are a B-tree of their own, and every AUTOINCREMENT insert also updates
-- sqlite_sequence.
-- - The qualifications and the idempotency records are kept in their primary key's order
--   (WITHOUT ROWID): one B-tree where there were two.
-- - History steps and audit records number their rows without AUTOINCREMENT: a row's number
--   is still one more than the largest in the table, and pages are read in that order.
-- Each table is copied into its new form; on a large database this takes a few seconds, once.

CREATE TABLE customer_qualifications_new (
    customer_id         TEXT    NOT NULL REFERENCES customers (id),
    qualification       TEXT    NOT NULL,
    vetting_status      TEXT,
    vetting_reason      TEXT,
    vetting_create_date INTEGER,
    education_segment   TEXT,
    website             TEXT,
    validation_id       TEXT,
    round               INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (customer_id, qualification)
) WITHOUT ROWID;
INSERT INTO customer_qualifications_new
    (customer_id, qualification, vetting_status, vetting_reason, vetting_create_date,
     education_segment, website, validation_id, round, created_at, updated_at)
SELECT customer_id, qualification, vetting_status, vetting_reason, vetting_create_date,
       education_segment, website, validation_id, round, created_at, updated_at
FROM customer_qualifications;
DROP TABLE customer_qualifications;
ALTER TABLE customer_qualifications_new RENAME TO customer_qualifications;
CREATE INDEX customer_qualifications_in_review ON customer_qualifications
    (vetting_create_date, customer_id, qualification) WHERE vetting_status = 'InReview';

CREATE TABLE idempotency_new (
    partner_tenant_id TEXT    NOT NULL,
    request_id        TEXT    NOT NULL,
    method            TEXT    NOT NULL,
    route             TEXT    NOT NULL,
    fingerprint       TEXT    NOT NULL,
    status            INTEGER,
    body              BLOB,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (partner_tenant_id, request_id, method, route)
) WITHOUT ROWID;
INSERT INTO idempotency_new
    (partner_tenant_id, request_id, method, route, fingerprint, status, body, created_at)
SELECT partner_tenant_id, request_id, method, route, fingerprint, status, body, created_at
FROM idempotency;
DROP TABLE idempotency;
ALTER TABLE idempotency_new RENAME TO idempotency;
CREATE INDEX idempotency_by_created ON idempotency (created_at);

CREATE TABLE qualification_events_new (
    id            INTEGER PRIMARY KEY,
    customer_id   TEXT    NOT NULL REFERENCES customers (id),
    qualification TEXT    NOT NULL,
    round         INTEGER NOT NULL,
    from_status   TEXT,
    to_status     TEXT,
    reason        TEXT,
    actor         TEXT    NOT NULL,
    request_id    TEXT,
    at            INTEGER NOT NULL
);
INSERT INTO qualification_events_new
    (id, customer_id, qualification, round, from_status, to_status, reason, actor, request_id, at)
SELECT id, customer_id, qualification, round, from_status, to_status, reason, actor, request_id, at
FROM qualification_events;
DROP TABLE qualification_events;
ALTER TABLE qualification_events_new RENAME TO qualification_events;
CREATE INDEX qualification_events_by_customer ON qualification_events (customer_id, id);

CREATE TABLE audit_records_new (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    partner_tenant_id   TEXT    NOT NULL,
    customer_id         TEXT,
    customer_name       TEXT,
    user_principal_name TEXT,
    application_id      TEXT,
    resource_type       TEXT    NOT NULL,
    resource_old_value  TEXT,
    resource_new_value  TEXT,
    operation_type      TEXT    NOT NULL,
    operation_date      INTEGER NOT NULL,
    operation_status    TEXT    NOT NULL,
    customized_data     TEXT    NOT NULL,
    customer_name_lower TEXT
);
INSERT INTO audit_records_new
    (seq, id, partner_tenant_id, customer_id, customer_name, user_principal_name, application_id,
     resource_type, resource_old_value, resource_new_value, operation_type, operation_date,
     operation_status, customized_data, customer_name_lower)
SELECT seq, id, partner_tenant_id, customer_id, customer_name, user_principal_name,
       application_id, resource_type, resource_old_value, resource_new_value, operation_type,
       operation_date, operation_status, customized_data, customer_name_lower
FROM audit_records;
DROP TABLE audit_records;
ALTER TABLE audit_records_new RENAME TO audit_records;
CREATE INDEX audit_records_by_partner ON audit_records (partner_tenant_id, operation_date, seq);
CREATE INDEX audit_records_unlowered ON audit_records (seq)
WHERE customer_name IS NOT NULL AND customer_name_lower IS NULL;
CREATE INDEX audit_records_by_date ON audit_records (operation_date);
CREATE INDEX audit_records_by_customer ON audit_records
    (partner_tenant_id, customer_id, operation_date, seq);
