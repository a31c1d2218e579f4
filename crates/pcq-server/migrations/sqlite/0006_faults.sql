-- Faults injected on purpose (sandbox control, POST /_pcq/admin/faults): requests matching a
-- fault's method, path glob and partner are answered with its status, closed, or slowed down.
-- Every node keeps a copy and takes up changes through the meta key faults_version.
CREATE TABLE faults (
    id                  TEXT    NOT NULL PRIMARY KEY,
    method              TEXT    NOT NULL,
    path                TEXT    NOT NULL,
    partner_tenant_id   TEXT,
    status              TEXT,
    retry_after_seconds INTEGER,
    delay_ms            INTEGER NOT NULL,
    probability         TEXT    NOT NULL,
    count               INTEGER,
    remaining           INTEGER,
    seed                INTEGER,
    fire_when           TEXT    NOT NULL,
    fired               INTEGER NOT NULL,
    created_at          INTEGER NOT NULL
);
CREATE INDEX faults_by_partner ON faults (partner_tenant_id);
