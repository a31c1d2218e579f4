-- Asynchronous vetting, audit records and webhooks.

-- Audit records in the Partner Center AuditRecord shape, per partner.
CREATE TABLE audit_records (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
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
    customized_data     TEXT    NOT NULL
);
CREATE INDEX audit_records_by_partner ON audit_records (partner_tenant_id, operation_date, seq);

-- One pending vetting decision per InReview qualification. due_at is NULL while the policy
-- waits for a reviewer (or for more reads).
CREATE TABLE vetting_jobs (
    customer_id       TEXT    NOT NULL,
    qualification     TEXT    NOT NULL,
    round             INTEGER NOT NULL,
    partner_tenant_id TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    due_at            INTEGER,
    reads             INTEGER NOT NULL,
    PRIMARY KEY (customer_id, qualification)
);
CREATE INDEX vetting_jobs_by_due ON vetting_jobs (due_at);

-- One webhook registration per partner.
CREATE TABLE webhook_registrations (
    partner_tenant_id TEXT    PRIMARY KEY,
    subscriber_id     TEXT    NOT NULL,
    webhook_url       TEXT    NOT NULL,
    webhook_events    TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

-- The outbox: every event to deliver, written in the transaction of the change it announces.
CREATE TABLE webhook_deliveries (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT    NOT NULL UNIQUE,
    partner_tenant_id TEXT    NOT NULL,
    event_name        TEXT    NOT NULL,
    payload           BLOB    NOT NULL,
    webhook_url       TEXT    NOT NULL,
    correlation_id    TEXT,
    status            TEXT    NOT NULL,
    attempts          INTEGER NOT NULL,
    next_attempt_at   INTEGER NOT NULL,
    lease_until       INTEGER,
    lease_owner       TEXT,
    created_at        INTEGER NOT NULL,
    finished_at       INTEGER
);
CREATE INDEX webhook_deliveries_by_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_partner ON webhook_deliveries (partner_tenant_id, seq);
CREATE INDEX webhook_deliveries_by_correlation ON webhook_deliveries (partner_tenant_id, correlation_id);

-- Every delivery attempt and its result.
CREATE TABLE webhook_attempts (
    delivery_id      TEXT    NOT NULL,
    attempt          INTEGER NOT NULL,
    at               INTEGER NOT NULL,
    response_code    INTEGER,
    response_message TEXT    NOT NULL,
    system_error     INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
