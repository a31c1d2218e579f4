-- pcq schema, version 1. Ids are lower-case text, times are microseconds since the Unix epoch.

-- Node-wide settings such as the development partner tenant.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Customers, each created by one partner.
CREATE TABLE customers (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT    NOT NULL UNIQUE,
    partner_tenant_id  TEXT    NOT NULL,
    commerce_id        TEXT    NOT NULL,
    domain             TEXT    NOT NULL,
    company_name       TEXT,
    company_profile    TEXT    NOT NULL,
    billing_profile    TEXT,
    billing_profile_id TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    UNIQUE (partner_tenant_id, domain)
);
CREATE INDEX customers_by_partner ON customers (partner_tenant_id, seq);

-- The current state of each qualification of a customer.
CREATE TABLE customer_qualifications (
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
);

-- Every step of every qualification: requests, vetting rounds and transitions.
CREATE TABLE qualification_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE INDEX qualification_events_by_customer ON qualification_events (customer_id, id);

-- GCC validation codes issued to partners.
CREATE TABLE validation_codes (
    validation_id     TEXT    PRIMARY KEY,
    partner_tenant_id TEXT    NOT NULL,
    organization_name TEXT    NOT NULL,
    max_creates       INTEGER NOT NULL,
    remaining_creates INTEGER NOT NULL CHECK (remaining_creates >= 0),
    etag              TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX validation_codes_by_partner ON validation_codes (partner_tenant_id, created_at);

-- Answers to POST and PUT requests by (partner, MS-RequestId, method, route), for replay.
CREATE TABLE idempotency (
    partner_tenant_id TEXT    NOT NULL,
    request_id        TEXT    NOT NULL,
    method            TEXT    NOT NULL,
    route             TEXT    NOT NULL,
    fingerprint       TEXT    NOT NULL,
    status            INTEGER,
    body              BLOB,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (partner_tenant_id, request_id, method, route)
);
