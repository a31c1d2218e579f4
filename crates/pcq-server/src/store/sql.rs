//! The SQL of the [`Tx`](super::Tx) primitives, shared by every backend.
//!
//! The statements use only what SQLite and PostgreSQL have in common (`$n` placeholders,
//! `ON CONFLICT`, `RETURNING`); ids are stored as lower-case text and times as microseconds
//! since the epoch, so the same statements and the same decoding serve both. `impl_tx!`
//! implements the trait for a backend's connection type.

use pcq_core::time::Timestamp;
use pcq_core::{EducationSegment, Qualification, VettingStatus};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{StoreError, StoreResult};

pub(super) fn uuid(raw: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| StoreError::Corrupt(format!("invalid uuid {raw:?}")))
}

pub(super) fn qualification(raw: &str) -> StoreResult<Qualification> {
    Qualification::parse_str(raw)
        .ok_or_else(|| StoreError::Corrupt(format!("invalid qualification {raw:?}")))
}

pub(super) fn vetting_status(raw: Option<String>) -> StoreResult<Option<VettingStatus>> {
    raw.map(|s| {
        VettingStatus::parse_str(&s)
            .ok_or_else(|| StoreError::Corrupt(format!("invalid vetting status {s:?}")))
    })
    .transpose()
}

pub(super) fn segment(raw: Option<String>) -> StoreResult<Option<EducationSegment>> {
    raw.map(|s| {
        EducationSegment::parse_str(&s)
            .ok_or_else(|| StoreError::Corrupt(format!("invalid education segment {s:?}")))
    })
    .transpose()
}

pub(super) fn object(raw: &str) -> StoreResult<Map<String, Value>> {
    match serde_json::from_str(raw) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(StoreError::Corrupt("invalid stored JSON object".to_owned())),
    }
}

pub(super) fn ts(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

// Column lists as macros, so statements are built with `concat!` into static strings.
macro_rules! customer_columns {
    () => {
        "seq, id, partner_tenant_id, commerce_id, domain, company_name, company_profile, \
         billing_profile, billing_profile_id, created_at"
    };
}
macro_rules! qualification_columns {
    () => {
        "customer_id, qualification, vetting_status, vetting_reason, vetting_create_date, \
         education_segment, website, validation_id, round, created_at, updated_at"
    };
}
macro_rules! event_columns {
    () => {
        "customer_id, qualification, round, from_status, to_status, reason, actor, request_id, at"
    };
}
macro_rules! code_columns {
    () => {
        "validation_id, partner_tenant_id, organization_name, max_creates, remaining_creates, \
         etag, created_at, updated_at"
    };
}
macro_rules! audit_columns {
    () => {
        "seq, id, partner_tenant_id, customer_id, customer_name, user_principal_name, \
         application_id, resource_type, resource_old_value, resource_new_value, operation_type, \
         operation_date, operation_status, customized_data"
    };
}
macro_rules! job_columns {
    () => {
        "customer_id, qualification, round, partner_tenant_id, created_at, reads"
    };
}
macro_rules! registration_columns {
    () => {
        "partner_tenant_id, subscriber_id, webhook_url, webhook_events, created_at, updated_at"
    };
}
macro_rules! delivery_columns {
    () => {
        "seq, id, partner_tenant_id, event_name, payload, webhook_url, correlation_id, status, \
         attempts, next_attempt_at, created_at, finished_at"
    };
}
macro_rules! attempt_columns {
    () => {
        "delivery_id, attempt, at, response_code, response_message, system_error"
    };
}
pub(super) use {
    attempt_columns, audit_columns, code_columns, customer_columns, delivery_columns,
    event_columns, job_columns, qualification_columns, registration_columns,
};

pub(super) fn pairs(raw: &str) -> StoreResult<Vec<(String, String)>> {
    serde_json::from_str(raw)
        .map_err(|_| StoreError::Corrupt("invalid stored key-value list".to_owned()))
}

pub(super) fn strings(raw: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(raw)
        .map_err(|_| StoreError::Corrupt("invalid stored string list".to_owned()))
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub(super) fn like_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Implements [`Tx`](super::Tx) for a sqlx connection type over the shared statements.
///
/// `skip_locked` is appended to the query that claims due vetting jobs: `""` where one writer
/// runs at a time, `" FOR UPDATE SKIP LOCKED"` where concurrent workers must not take the same
/// rows.
/// Rows per statement of a bulk insert (at most 11 columns: well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters).
pub const BULK_ROWS: usize = 500;

/// `prefix` followed by `rows` groups of `columns` parameters: numbered (`($1, $2), ($3, $4)`,
/// PostgreSQL) or anonymous (`(?, ?), (?, ?)`, SQLite, which looks numbered parameters up by
/// name at a cost that grows with their number).
pub fn multi_row_insert(prefix: &str, columns: usize, rows: usize, numbered: bool) -> String {
    use std::fmt::Write;
    let mut sql = String::with_capacity(prefix.len() + rows * columns * 7);
    sql.push_str(prefix);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            if numbered {
                let _ = write!(sql, "${}", row * columns + column + 1);
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

macro_rules! impl_tx {
    ($conn:ty, $row:ty, skip_locked = $skip_locked:literal, numbered_params = $numbered:literal) => {
        mod shared_tx {
        use pcq_core::time::Timestamp;
        use pcq_core::{EducationSegment, VettingStatus};
        use uuid::Uuid;
        use $crate::store::sql;
        use $crate::store::{
            AttemptRow, AuditQuery, AuditRecordRow, CustomerRow, DeliveryRow, DeliveryStatus,
            IdemKey, IdemRecord, QualificationEvent, QualificationRow, ReviewItemRow, ReviewQuery,
            StoreError, StoreResult, StoredReply, ValidationCodeRow, VettingJobRow,
            WebhookRegistrationRow,
        };
        use pcq_core::Qualification;

        mod rows {
            use super::*;
            use sqlx::Row as _;

            pub(super) fn customer(r: &$row) -> StoreResult<CustomerRow> {
                let billing: Option<String> = r.try_get("billing_profile")?;
                Ok(CustomerRow {
                    seq: r.try_get("seq")?,
                    id: sql::uuid(r.try_get("id")?)?,
                    partner_tenant_id: sql::uuid(r.try_get("partner_tenant_id")?)?,
                    commerce_id: sql::uuid(r.try_get("commerce_id")?)?,
                    domain: r.try_get("domain")?,
                    company_name: r.try_get("company_name")?,
                    company_profile: sql::object(r.try_get("company_profile")?)?,
                    billing_profile: billing.as_deref().map(sql::object).transpose()?,
                    billing_profile_id: sql::uuid(r.try_get("billing_profile_id")?)?,
                    created_at: sql::ts(r.try_get("created_at")?),
                })
            }

            pub(super) fn qualification(r: &$row) -> StoreResult<QualificationRow> {
                Ok(QualificationRow {
                    customer_id: sql::uuid(r.try_get("customer_id")?)?,
                    qualification: sql::qualification(r.try_get("qualification")?)?,
                    vetting_status: sql::vetting_status(r.try_get("vetting_status")?)?,
                    vetting_reason: r.try_get("vetting_reason")?,
                    vetting_create_date: r
                        .try_get::<Option<i64>, _>("vetting_create_date")?
                        .map(sql::ts),
                    education_segment: sql::segment(r.try_get("education_segment")?)?,
                    website: r.try_get("website")?,
                    validation_id: r.try_get("validation_id")?,
                    round: r.try_get("round")?,
                    created_at: sql::ts(r.try_get("created_at")?),
                    updated_at: sql::ts(r.try_get("updated_at")?),
                })
            }

            pub(super) fn event(r: &$row) -> StoreResult<QualificationEvent> {
                Ok(QualificationEvent {
                    customer_id: sql::uuid(r.try_get("customer_id")?)?,
                    qualification: sql::qualification(r.try_get("qualification")?)?,
                    round: r.try_get("round")?,
                    from_status: sql::vetting_status(r.try_get("from_status")?)?,
                    to_status: sql::vetting_status(r.try_get("to_status")?)?,
                    reason: r.try_get("reason")?,
                    actor: r.try_get("actor")?,
                    request_id: r.try_get("request_id")?,
                    at: sql::ts(r.try_get("at")?),
                })
            }

            pub(super) fn audit(r: &$row) -> StoreResult<AuditRecordRow> {
                let customer: Option<String> = r.try_get("customer_id")?;
                Ok(AuditRecordRow {
                    seq: r.try_get("seq")?,
                    id: r.try_get("id")?,
                    partner_tenant_id: sql::uuid(r.try_get("partner_tenant_id")?)?,
                    customer_id: customer.as_deref().map(sql::uuid).transpose()?,
                    customer_name: r.try_get("customer_name")?,
                    user_principal_name: r.try_get("user_principal_name")?,
                    application_id: r.try_get("application_id")?,
                    resource_type: r.try_get("resource_type")?,
                    resource_old_value: r.try_get("resource_old_value")?,
                    resource_new_value: r.try_get("resource_new_value")?,
                    operation_type: r.try_get("operation_type")?,
                    operation_date: sql::ts(r.try_get("operation_date")?),
                    operation_status: r.try_get("operation_status")?,
                    customized_data: sql::pairs(r.try_get("customized_data")?)?,
                })
            }

            pub(super) fn job(r: &$row) -> StoreResult<VettingJobRow> {
                Ok(VettingJobRow {
                    customer_id: sql::uuid(r.try_get("customer_id")?)?,
                    qualification: sql::qualification(r.try_get("qualification")?)?,
                    round: r.try_get("round")?,
                    partner_tenant_id: sql::uuid(r.try_get("partner_tenant_id")?)?,
                    created_at: sql::ts(r.try_get("created_at")?),
                    reads: r.try_get("reads")?,
                })
            }

            pub(super) fn review_item(r: &$row) -> StoreResult<ReviewItemRow> {
                Ok(ReviewItemRow {
                    qualification: qualification(r)?,
                    partner_tenant_id: sql::uuid(r.try_get("partner_tenant_id")?)?,
                    domain: r.try_get("domain")?,
                    company_name: r.try_get("company_name")?,
                })
            }

            pub(super) fn registration(r: &$row) -> StoreResult<WebhookRegistrationRow> {
                Ok(WebhookRegistrationRow {
                    partner_tenant_id: sql::uuid(r.try_get("partner_tenant_id")?)?,
                    subscriber_id: sql::uuid(r.try_get("subscriber_id")?)?,
                    webhook_url: r.try_get("webhook_url")?,
                    webhook_events: sql::strings(r.try_get("webhook_events")?)?,
                    created_at: sql::ts(r.try_get("created_at")?),
                    updated_at: sql::ts(r.try_get("updated_at")?),
                })
            }

            pub(super) fn delivery(r: &$row) -> StoreResult<DeliveryRow> {
                Ok(DeliveryRow {
                    seq: r.try_get("seq")?,
                    id: sql::uuid(r.try_get("id")?)?,
                    partner_tenant_id: sql::uuid(r.try_get("partner_tenant_id")?)?,
                    event_name: r.try_get("event_name")?,
                    payload: r.try_get("payload")?,
                    webhook_url: r.try_get("webhook_url")?,
                    correlation_id: r.try_get("correlation_id")?,
                    status: DeliveryStatus::parse(r.try_get("status")?)?,
                    attempts: r.try_get("attempts")?,
                    next_attempt_at: sql::ts(r.try_get("next_attempt_at")?),
                    created_at: sql::ts(r.try_get("created_at")?),
                    finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(sql::ts),
                })
            }

            pub(super) fn attempt(r: &$row) -> StoreResult<AttemptRow> {
                Ok(AttemptRow {
                    delivery_id: sql::uuid(r.try_get("delivery_id")?)?,
                    attempt: r.try_get("attempt")?,
                    at: sql::ts(r.try_get("at")?),
                    response_code: r.try_get("response_code")?,
                    response_message: r.try_get("response_message")?,
                    system_error: r.try_get::<i64, _>("system_error")? != 0,
                })
            }

            pub(super) fn code(r: &$row) -> StoreResult<ValidationCodeRow> {
                Ok(ValidationCodeRow {
                    validation_id: r.try_get("validation_id")?,
                    partner_tenant_id: sql::uuid(r.try_get("partner_tenant_id")?)?,
                    organization_name: r.try_get("organization_name")?,
                    max_creates: r.try_get("max_creates")?,
                    remaining_creates: r.try_get("remaining_creates")?,
                    etag: r.try_get("etag")?,
                    created_at: sql::ts(r.try_get("created_at")?),
                    updated_at: sql::ts(r.try_get("updated_at")?),
                })
            }
        }

        impl $crate::store::Tx for $conn {
            async fn meta_get(&mut self, key: &str) -> StoreResult<Option<String>> {
                Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&mut *self)
                    .await?)
            }

            async fn meta_insert_default(&mut self, key: &str, value: &str) -> StoreResult<String> {
                sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(value)
                    .execute(&mut *self)
                    .await?;
                Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_one(&mut *self)
                    .await?)
            }

            async fn meta_put(&mut self, key: &str, value: &str) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(&mut *self)
                .await?;
                Ok(())
            }

            async fn meta_delete(&mut self, key: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM meta WHERE key = $1")
                    .bind(key)
                    .execute(&mut *self)
                    .await?;
                Ok(())
            }

            async fn idem_get(&mut self, key: &IdemKey) -> StoreResult<Option<IdemRecord>> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "SELECT fingerprint, status, body FROM idempotency \
                     WHERE partner_tenant_id = $1 AND request_id = $2 AND method = $3 AND route = $4",
                )
                .bind(key.partner.to_string())
                .bind(&key.request_id)
                .bind(key.method)
                .bind(&key.route)
                .fetch_optional(&mut *self)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let status: Option<i64> = row.try_get("status")?;
                let body: Option<Vec<u8>> = row.try_get("body")?;
                let (Some(status), Some(body)) = (status, body) else {
                    return Err(StoreError::Corrupt("an idempotency record without an answer".to_owned()));
                };
                Ok(Some(IdemRecord {
                    fingerprint: row.try_get("fingerprint")?,
                    reply: StoredReply {
                        status: u16::try_from(status)
                            .map_err(|_| StoreError::Corrupt(format!("invalid status {status}")))?,
                        body,
                    },
                }))
            }

            async fn idem_claim(
                &mut self,
                key: &IdemKey,
                fingerprint: &str,
                now: Timestamp,
            ) -> StoreResult<Option<IdemRecord>> {
                let inserted = sqlx::query(
                    "INSERT INTO idempotency (partner_tenant_id, request_id, method, route, fingerprint, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (partner_tenant_id, request_id, method, route) DO NOTHING",
                )
                .bind(key.partner.to_string())
                .bind(&key.request_id)
                .bind(key.method)
                .bind(&key.route)
                .bind(fingerprint)
                .bind(now.as_micros())
                .execute(&mut *self)
                .await?
                .rows_affected();
                if inserted == 1 {
                    return Ok(None);
                }
                match self.idem_get(key).await? {
                    Some(record) => Ok(Some(record)),
                    None => Err(StoreError::Corrupt("an idempotency key held by no record".to_owned())),
                }
            }

            async fn idem_complete(&mut self, key: &IdemKey, reply: &StoredReply) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE idempotency SET status = $5, body = $6 \
                     WHERE partner_tenant_id = $1 AND request_id = $2 AND method = $3 AND route = $4",
                )
                .bind(key.partner.to_string())
                .bind(&key.request_id)
                .bind(key.method)
                .bind(&key.route)
                .bind(i64::from(reply.status))
                .bind(&reply.body)
                .execute(&mut *self)
                .await?;
                Ok(())
            }

            async fn bulk_insert(
                &mut self,
                customers: &[CustomerRow],
                qualifications: &[QualificationRow],
                events: &[QualificationEvent],
            ) -> StoreResult<()> {
                for chunk in customers.chunks(sql::BULK_ROWS) {
                    let statement = sql::multi_row_insert(
                        "INSERT INTO customers (id, partner_tenant_id, commerce_id, domain, company_name, \
                         company_profile, billing_profile, billing_profile_id, created_at) VALUES ",
                        9,
                        chunk.len(),
                        $numbered,
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
                    for row in chunk {
                        query = query
                            .bind(row.id.to_string())
                            .bind(row.partner_tenant_id.to_string())
                            .bind(row.commerce_id.to_string())
                            .bind(row.domain.clone())
                            .bind(row.company_name.clone())
                            .bind(serde_json::Value::Object(row.company_profile.clone()).to_string())
                            .bind(row.billing_profile.as_ref().map(|b| serde_json::Value::Object(b.clone()).to_string()))
                            .bind(row.billing_profile_id.to_string())
                            .bind(row.created_at.as_micros());
                    }
                    query.execute(&mut *self).await?;
                }
                for chunk in qualifications.chunks(sql::BULK_ROWS) {
                    let statement = sql::multi_row_insert(
                        concat!("INSERT INTO customer_qualifications (", sql::qualification_columns!(), ") VALUES "),
                        11,
                        chunk.len(),
                        $numbered,
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
                    for row in chunk {
                        query = query
                            .bind(row.customer_id.to_string())
                            .bind(row.qualification.as_str())
                            .bind(row.vetting_status.map(VettingStatus::as_str))
                            .bind(row.vetting_reason.clone())
                            .bind(row.vetting_create_date.map(Timestamp::as_micros))
                            .bind(row.education_segment.map(EducationSegment::as_str))
                            .bind(row.website.clone())
                            .bind(row.validation_id.clone())
                            .bind(row.round)
                            .bind(row.created_at.as_micros())
                            .bind(row.updated_at.as_micros());
                    }
                    query.execute(&mut *self).await?;
                }
                for chunk in events.chunks(sql::BULK_ROWS) {
                    let statement = sql::multi_row_insert(
                        concat!("INSERT INTO qualification_events (", sql::event_columns!(), ") VALUES "),
                        9,
                        chunk.len(),
                        $numbered,
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
                    for e in chunk {
                        query = query
                            .bind(e.customer_id.to_string())
                            .bind(e.qualification.as_str())
                            .bind(e.round)
                            .bind(e.from_status.map(VettingStatus::as_str))
                            .bind(e.to_status.map(VettingStatus::as_str))
                            .bind(e.reason.clone())
                            .bind(e.actor.clone())
                            .bind(e.request_id.clone())
                            .bind(e.at.as_micros());
                    }
                    query.execute(&mut *self).await?;
                }
                Ok(())
            }

            async fn insert_customer(&mut self, row: &CustomerRow) -> StoreResult<bool> {
                let billing = row
                    .billing_profile
                    .as_ref()
                    .map(|b| serde_json::Value::Object(b.clone()).to_string());
                let affected = sqlx::query(
                    "INSERT INTO customers (id, partner_tenant_id, commerce_id, domain, company_name, \
                     company_profile, billing_profile, billing_profile_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (partner_tenant_id, domain) DO NOTHING",
                )
                .bind(row.id.to_string())
                .bind(row.partner_tenant_id.to_string())
                .bind(row.commerce_id.to_string())
                .bind(&row.domain)
                .bind(&row.company_name)
                .bind(serde_json::Value::Object(row.company_profile.clone()).to_string())
                .bind(billing)
                .bind(row.billing_profile_id.to_string())
                .bind(row.created_at.as_micros())
                .execute(&mut *self)
                .await?
                .rows_affected();
                Ok(affected == 1)
            }

            async fn customer(&mut self, id: Uuid) -> StoreResult<Option<CustomerRow>> {
                let sql = concat!("SELECT ", sql::customer_columns!(), " FROM customers WHERE id = $1");
                sqlx::query(sql)
                    .bind(id.to_string())
                    .fetch_optional(&mut *self)
                    .await?
                    .as_ref()
                    .map(rows::customer)
                    .transpose()
            }

            async fn customers_page(
                &mut self,
                partner: Uuid,
                after_seq: i64,
                limit: i64,
            ) -> StoreResult<Vec<CustomerRow>> {
                let sql = concat!("SELECT ", sql::customer_columns!(), " FROM customers WHERE partner_tenant_id = $1 AND seq > $2 \
                     ORDER BY seq LIMIT $3");
                sqlx::query(sql)
                    .bind(partner.to_string())
                    .bind(after_seq)
                    .bind(limit)
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(rows::customer)
                    .collect()
            }

            async fn qualifications(&mut self, customer: Uuid) -> StoreResult<Vec<QualificationRow>> {
                let sql = concat!("SELECT ", sql::qualification_columns!(), " FROM customer_qualifications WHERE customer_id = $1");
                sqlx::query(sql)
                    .bind(customer.to_string())
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(rows::qualification)
                    .collect()
            }

            async fn put_qualification(&mut self, row: &QualificationRow) -> StoreResult<()> {
                let sql = concat!("INSERT INTO customer_qualifications (", sql::qualification_columns!(), ") \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (customer_id, qualification) DO UPDATE SET \
                     vetting_status = excluded.vetting_status, vetting_reason = excluded.vetting_reason, \
                     vetting_create_date = excluded.vetting_create_date, \
                     education_segment = excluded.education_segment, website = excluded.website, \
                     validation_id = excluded.validation_id, round = excluded.round, \
                     updated_at = excluded.updated_at");
                sqlx::query(sql)
                    .bind(row.customer_id.to_string())
                    .bind(row.qualification.as_str())
                    .bind(row.vetting_status.map(VettingStatus::as_str))
                    .bind(&row.vetting_reason)
                    .bind(row.vetting_create_date.map(Timestamp::as_micros))
                    .bind(row.education_segment.map(EducationSegment::as_str))
                    .bind(&row.website)
                    .bind(&row.validation_id)
                    .bind(row.round)
                    .bind(row.created_at.as_micros())
                    .bind(row.updated_at.as_micros())
                    .execute(&mut *self)
                    .await?;
                Ok(())
            }

            async fn insert_qualification_event(&mut self, e: &QualificationEvent) -> StoreResult<()> {
                let sql = concat!("INSERT INTO qualification_events (", sql::event_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
                sqlx::query(sql)
                    .bind(e.customer_id.to_string())
                    .bind(e.qualification.as_str())
                    .bind(e.round)
                    .bind(e.from_status.map(VettingStatus::as_str))
                    .bind(e.to_status.map(VettingStatus::as_str))
                    .bind(&e.reason)
                    .bind(&e.actor)
                    .bind(&e.request_id)
                    .bind(e.at.as_micros())
                    .execute(&mut *self)
                    .await?;
                Ok(())
            }

            async fn qualification_events(&mut self, customer: Uuid) -> StoreResult<Vec<QualificationEvent>> {
                let sql = concat!("SELECT ", sql::event_columns!(), " FROM qualification_events WHERE customer_id = $1 ORDER BY id");
                sqlx::query(sql)
                    .bind(customer.to_string())
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(rows::event)
                    .collect()
            }

            async fn validation_code(
                &mut self,
                partner: Uuid,
                validation_id: &str,
            ) -> StoreResult<Option<ValidationCodeRow>> {
                let sql = concat!("SELECT ", sql::code_columns!(), " FROM validation_codes WHERE partner_tenant_id = $1 AND validation_id = $2");
                sqlx::query(sql)
                    .bind(partner.to_string())
                    .bind(validation_id)
                    .fetch_optional(&mut *self)
                    .await?
                    .as_ref()
                    .map(rows::code)
                    .transpose()
            }

            async fn validation_codes(&mut self, partner: Uuid) -> StoreResult<Vec<ValidationCodeRow>> {
                let sql = concat!("SELECT ", sql::code_columns!(), " FROM validation_codes WHERE partner_tenant_id = $1 \
                     ORDER BY created_at, validation_id");
                sqlx::query(sql)
                    .bind(partner.to_string())
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(rows::code)
                    .collect()
            }

            async fn insert_validation_code(&mut self, row: &ValidationCodeRow) -> StoreResult<bool> {
                let sql = concat!("INSERT INTO validation_codes (", sql::code_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (validation_id) DO NOTHING");
                let affected = sqlx::query(sql)
                    .bind(&row.validation_id)
                    .bind(row.partner_tenant_id.to_string())
                    .bind(&row.organization_name)
                    .bind(row.max_creates)
                    .bind(row.remaining_creates)
                    .bind(&row.etag)
                    .bind(row.created_at.as_micros())
                    .bind(row.updated_at.as_micros())
                    .execute(&mut *self)
                    .await?
                    .rows_affected();
                Ok(affected == 1)
            }

            async fn transition_qualification(
                &mut self,
                customer: Uuid,
                qualification: Qualification,
                round: i64,
                from: VettingStatus,
                to: VettingStatus,
                reason: Option<&str>,
                at: Timestamp,
            ) -> StoreResult<bool> {
                let affected = sqlx::query(
                    "UPDATE customer_qualifications SET vetting_status = $5, vetting_reason = $6, \
                     updated_at = $7 \
                     WHERE customer_id = $1 AND qualification = $2 AND round = $3 AND vetting_status = $4",
                )
                .bind(customer.to_string())
                .bind(qualification.as_str())
                .bind(round)
                .bind(from.as_str())
                .bind(to.as_str())
                .bind(reason)
                .bind(at.as_micros())
                .execute(&mut *self)
                .await?
                .rows_affected();
                Ok(affected == 1)
            }

            async fn insert_audit_record(&mut self, row: &AuditRecordRow) -> StoreResult<()> {
                let sql = "INSERT INTO audit_records (id, partner_tenant_id, customer_id, customer_name, \
                     user_principal_name, application_id, resource_type, resource_old_value, \
                     resource_new_value, operation_type, operation_date, operation_status, customized_data, \
                     customer_name_lower) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
                sqlx::query(sql)
                    .bind(&row.id)
                    .bind(row.partner_tenant_id.to_string())
                    .bind(row.customer_id.map(|c| c.to_string()))
                    .bind(&row.customer_name)
                    .bind(&row.user_principal_name)
                    .bind(&row.application_id)
                    .bind(&row.resource_type)
                    .bind(&row.resource_old_value)
                    .bind(&row.resource_new_value)
                    .bind(&row.operation_type)
                    .bind(row.operation_date.as_micros())
                    .bind(&row.operation_status)
                    .bind(serde_json::to_string(&row.customized_data).unwrap_or_else(|_| "[]".to_owned()))
                    .bind(row.customer_name.as_deref().map(str::to_lowercase))
                    .execute(&mut *self)
                    .await?;
                Ok(())
            }

            async fn audit_records(&mut self, q: &AuditQuery) -> StoreResult<Vec<AuditRecordRow>> {
                let sql = concat!(
                    "SELECT ", sql::audit_columns!(), " FROM audit_records \
                     WHERE partner_tenant_id = $1 AND operation_date >= $2 AND operation_date < $3 \
                     AND seq > $4 \
                     AND ($5 IS NULL OR customer_id = $5) \
                     AND ($6 IS NULL OR operation_type = $6) \
                     AND ($7 IS NULL OR resource_type = $7) \
                     AND ($8 IS NULL OR customer_name_lower LIKE $8 ESCAPE '\\') \
                     AND ($10 IS NULL OR customer_name_lower = $10) \
                     ORDER BY seq LIMIT $9"
                );
                sqlx::query(sql)
                    .bind(q.partner.to_string())
                    .bind(q.from.as_micros())
                    .bind(q.until.as_micros())
                    .bind(q.after_seq)
                    .bind(q.customer_id.map(|c| c.to_string()))
                    .bind(&q.operation_type)
                    .bind(&q.resource_type)
                    .bind(q.customer_name_contains.as_deref().map(|n| format!("%{}%", sql::like_escape(n))))
                    .bind(q.limit)
                    .bind(q.customer_name_is.as_deref().map(str::to_lowercase))
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(rows::audit)
                    .collect()
            }

            async fn audit_record(&mut self, partner: Uuid, id: &str) -> StoreResult<Option<AuditRecordRow>> {
                let sql = concat!(
                    "SELECT ", sql::audit_columns!(), " FROM audit_records WHERE partner_tenant_id = $1 AND id = $2"
                );
                sqlx::query(sql)
                    .bind(partner.to_string())
                    .bind(id)
                    .fetch_optional(&mut *self)
                    .await?
                    .as_ref()
                    .map(rows::audit)
                    .transpose()
            }

            async fn put_vetting_job(&mut self, row: &VettingJobRow) -> StoreResult<()> {
                let sql = concat!(
                    "INSERT INTO vetting_jobs (", sql::job_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (customer_id, qualification) DO UPDATE SET round = excluded.round, \
                     partner_tenant_id = excluded.partner_tenant_id, created_at = excluded.created_at, \
                     reads = excluded.reads"
                );
                sqlx::query(sql)
                    .bind(row.customer_id.to_string())
                    .bind(row.qualification.as_str())
                    .bind(row.round)
                    .bind(row.partner_tenant_id.to_string())
                    .bind(row.created_at.as_micros())
                    .bind(row.reads)
                    .execute(&mut *self)
                    .await?;
                Ok(())
            }

            async fn delete_vetting_job(
                &mut self,
                customer: Uuid,
                qualification: Qualification,
                round: i64,
            ) -> StoreResult<()> {
                sqlx::query("DELETE FROM vetting_jobs WHERE customer_id = $1 AND qualification = $2 AND round = $3")
                    .bind(customer.to_string())
                    .bind(qualification.as_str())
                    .bind(round)
                    .execute(&mut *self)
                    .await?;
                Ok(())
            }

            async fn due_vetting_jobs(
                &mut self,
                started_by: Timestamp,
                min_reads: i64,
                limit: i64,
            ) -> StoreResult<Vec<VettingJobRow>> {
                let sql = concat!(
                    "SELECT ", sql::job_columns!(), " FROM vetting_jobs \
                     WHERE created_at <= $1 AND reads >= $2 \
                     ORDER BY created_at, customer_id, qualification LIMIT $3",
                    $skip_locked
                );
                sqlx::query(sql)
                    .bind(started_by.as_micros())
                    .bind(min_reads)
                    .bind(limit)
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(rows::job)
                    .collect()
            }

            async fn count_vetting_read(&mut self, customer: Uuid) -> StoreResult<Vec<VettingJobRow>> {
                let sql = concat!(
                    "UPDATE vetting_jobs SET reads = reads + 1 WHERE customer_id = $1 RETURNING ",
                    sql::job_columns!()
                );
                sqlx::query(sql)
                    .bind(customer.to_string())
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(rows::job)
                    .collect()
            }

            async fn review_queue(&mut self, q: &ReviewQuery) -> StoreResult<Vec<ReviewItemRow>> {
                let sql = "SELECT q.customer_id, q.qualification, q.vetting_status, q.vetting_reason, \
                     q.vetting_create_date, q.education_segment, q.website, q.validation_id, q.round, \
                     q.created_at, q.updated_at, c.partner_tenant_id, c.domain, c.company_name \
                     FROM customer_qualifications q JOIN customers c ON c.id = q.customer_id \
                     WHERE q.vetting_status = 'InReview' \
                     AND ($1 IS NULL OR c.partner_tenant_id = $1) \
                     AND ($2 IS NULL OR q.qualification = $2) \
                     AND ($3 IS NULL OR q.vetting_create_date < $3) \
                     AND ($4 IS NULL OR q.vetting_create_date > $4 \
                          OR (q.vetting_create_date = $4 AND (q.customer_id > $5 \
                              OR (q.customer_id = $5 AND q.qualification > $6)))) \
                     ORDER BY q.vetting_create_date, q.customer_id, q.qualification LIMIT $7";
                let after = q.after.as_ref();
                sqlx::query(sql)
                    .bind(q.partner.map(|p| p.to_string()))
                    .bind(q.qualification.map(Qualification::as_str))
                    .bind(q.started_before.map(Timestamp::as_micros))
                    .bind(after.map(|a| a.0.as_micros()))
                    .bind(after.map(|a| a.1.to_string()))
                    .bind(after.map(|a| a.2.as_str()))
                    .bind(q.limit)
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(rows::review_item)
                    .collect()
            }

            async fn webhook_registration(&mut self, partner: Uuid) -> StoreResult<Option<WebhookRegistrationRow>> {
                let sql = concat!(
                    "SELECT ", sql::registration_columns!(), " FROM webhook_registrations WHERE partner_tenant_id = $1"
                );
                sqlx::query(sql)
                    .bind(partner.to_string())
                    .fetch_optional(&mut *self)
                    .await?
                    .as_ref()
                    .map(rows::registration)
                    .transpose()
            }

            async fn put_webhook_registration(&mut self, row: &WebhookRegistrationRow) -> StoreResult<()> {
                let sql = concat!(
                    "INSERT INTO webhook_registrations (", sql::registration_columns!(), ") \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (partner_tenant_id) DO UPDATE SET subscriber_id = excluded.subscriber_id, \
                     webhook_url = excluded.webhook_url, webhook_events = excluded.webhook_events, \
                     updated_at = excluded.updated_at"
                );
                sqlx::query(sql)
                    .bind(row.partner_tenant_id.to_string())
                    .bind(row.subscriber_id.to_string())
                    .bind(&row.webhook_url)
                    .bind(serde_json::to_string(&row.webhook_events).unwrap_or_else(|_| "[]".to_owned()))
                    .bind(row.created_at.as_micros())
                    .bind(row.updated_at.as_micros())
                    .execute(&mut *self)
                    .await?;
                Ok(())
            }

            async fn delete_webhook_registration(&mut self, partner: Uuid) -> StoreResult<bool> {
                let affected = sqlx::query("DELETE FROM webhook_registrations WHERE partner_tenant_id = $1")
                    .bind(partner.to_string())
                    .execute(&mut *self)
                    .await?
                    .rows_affected();
                Ok(affected == 1)
            }

            async fn insert_delivery(&mut self, row: &DeliveryRow) -> StoreResult<()> {
                let sql = "INSERT INTO webhook_deliveries (id, partner_tenant_id, event_name, payload, \
                     webhook_url, correlation_id, status, attempts, next_attempt_at, created_at, finished_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
                sqlx::query(sql)
                    .bind(row.id.to_string())
                    .bind(row.partner_tenant_id.to_string())
                    .bind(&row.event_name)
                    .bind(&row.payload)
                    .bind(&row.webhook_url)
                    .bind(&row.correlation_id)
                    .bind(row.status.as_str())
                    .bind(row.attempts)
                    .bind(row.next_attempt_at.as_micros())
                    .bind(row.created_at.as_micros())
                    .bind(row.finished_at.map(Timestamp::as_micros))
                    .execute(&mut *self)
                    .await?;
                Ok(())
            }

            async fn claim_deliveries(
                &mut self,
                now: Timestamp,
                real_now: Timestamp,
                lease_until: Timestamp,
                token: &str,
                limit: i64,
                per_partner: i64,
            ) -> StoreResult<Vec<DeliveryRow>> {
                // The conditions are repeated outside the subquery so that a concurrent claimer
                // that waited on a row re-checks it and leaves it alone.
                let sql = concat!(
                    "UPDATE webhook_deliveries SET lease_until = $3, lease_owner = $4 \
                     WHERE status = 'pending' AND next_attempt_at <= $1 \
                     AND (lease_until IS NULL OR lease_until <= $2) \
                     AND id IN (SELECT id FROM ( \
                         SELECT id, next_attempt_at, seq, ROW_NUMBER() OVER ( \
                             PARTITION BY partner_tenant_id ORDER BY next_attempt_at, seq) AS nth \
                         FROM webhook_deliveries d WHERE status = 'pending' \
                         AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $2) \
                         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries busy \
                             WHERE busy.partner_tenant_id = d.partner_tenant_id \
                             AND busy.status = 'pending' AND busy.lease_until > $2) \
                     ) due WHERE nth <= $6 ORDER BY next_attempt_at, seq LIMIT $5) \
                     RETURNING ", sql::delivery_columns!()
                );
                let mut claimed: Vec<DeliveryRow> = sqlx::query(sql)
                    .bind(now.as_micros())
                    .bind(real_now.as_micros())
                    .bind(lease_until.as_micros())
                    .bind(token)
                    .bind(limit)
                    .bind(per_partner)
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(rows::delivery)
                    .collect::<StoreResult<_>>()?;
                claimed.sort_by_key(|d| d.seq);
                Ok(claimed)
            }

            async fn finish_delivery_attempt(
                &mut self,
                attempt: &AttemptRow,
                token: &str,
                status: DeliveryStatus,
                next_attempt_at: Timestamp,
            ) -> StoreResult<bool> {
                let finished = (status != DeliveryStatus::Pending).then_some(attempt.at.as_micros());
                let number: Option<i64> = sqlx::query_scalar(
                    "UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1, \
                     next_attempt_at = $4, finished_at = $5, lease_until = NULL, lease_owner = NULL \
                     WHERE id = $1 AND lease_owner = $2 AND status = 'pending' RETURNING attempts",
                )
                .bind(attempt.delivery_id.to_string())
                .bind(token)
                .bind(status.as_str())
                .bind(next_attempt_at.as_micros())
                .bind(finished)
                .fetch_optional(&mut *self)
                .await?;
                let Some(number) = number else { return Ok(false) };
                let sql = concat!(
                    "INSERT INTO webhook_attempts (", sql::attempt_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6)"
                );
                sqlx::query(sql)
                    .bind(attempt.delivery_id.to_string())
                    .bind(number)
                    .bind(attempt.at.as_micros())
                    .bind(attempt.response_code)
                    .bind(&attempt.response_message)
                    .bind(i64::from(attempt.system_error))
                    .execute(&mut *self)
                    .await?;
                Ok(true)
            }

            async fn deliveries_by_correlation(
                &mut self,
                partner: Uuid,
                correlation_id: &str,
            ) -> StoreResult<Vec<DeliveryRow>> {
                let sql = concat!(
                    "SELECT ", sql::delivery_columns!(), " FROM webhook_deliveries \
                     WHERE partner_tenant_id = $1 AND correlation_id = $2 ORDER BY seq"
                );
                sqlx::query(sql)
                    .bind(partner.to_string())
                    .bind(correlation_id)
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(rows::delivery)
                    .collect()
            }

            async fn recent_deliveries(&mut self, partner: Uuid, limit: i64) -> StoreResult<Vec<DeliveryRow>> {
                let sql = concat!(
                    "SELECT ", sql::delivery_columns!(), " FROM webhook_deliveries \
                     WHERE partner_tenant_id = $1 ORDER BY seq DESC LIMIT $2"
                );
                sqlx::query(sql)
                    .bind(partner.to_string())
                    .bind(limit)
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(rows::delivery)
                    .collect()
            }

            async fn delivery_attempts(&mut self, delivery: Uuid) -> StoreResult<Vec<AttemptRow>> {
                let sql = concat!(
                    "SELECT ", sql::attempt_columns!(), " FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt"
                );
                sqlx::query(sql)
                    .bind(delivery.to_string())
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(rows::attempt)
                    .collect()
            }

            async fn consume_validation_code(
                &mut self,
                partner: Uuid,
                validation_id: &str,
                etag: &str,
                at: Timestamp,
            ) -> StoreResult<bool> {
                let affected = sqlx::query(
                    "UPDATE validation_codes SET remaining_creates = remaining_creates - 1, \
                     etag = $3, updated_at = $4 \
                     WHERE partner_tenant_id = $1 AND validation_id = $2 AND remaining_creates > 0",
                )
                .bind(partner.to_string())
                .bind(validation_id)
                .bind(etag)
                .bind(at.as_micros())
                .execute(&mut *self)
                .await?
                .rows_affected();
                Ok(affected == 1)
            }
        }
        }
    };
}

pub(super) use impl_tx;
