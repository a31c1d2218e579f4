-- Faults injected on purpose (sandbox control, POST /_pcq/admin/faults): requests matching a
-- fault's method, path glob and partner are answered with its status, closed, or slowed down.
-- Every node keeps a copy and takes up changes through the meta key faults_version.
CREATE TABLE faults (
    id                  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    method              TEXT COLLATE "C" NOT NULL,
    path                TEXT COLLATE "C" NOT NULL,
    partner_tenant_id   TEXT COLLATE "C",
    status              TEXT COLLATE "C",
    retry_after_seconds BIGINT,
    delay_ms            BIGINT NOT NULL,
    probability         TEXT   NOT NULL,
    count               BIGINT,
    remaining           BIGINT,
    seed                BIGINT,
    fire_when           TEXT COLLATE "C" NOT NULL,
    fired               BIGINT NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX faults_by_partner ON faults (partner_tenant_id);
