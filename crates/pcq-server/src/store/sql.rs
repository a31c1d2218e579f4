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
pub(super) use {code_columns, customer_columns, event_columns, qualification_columns};

/// Implements [`Tx`](super::Tx) for a sqlx connection type over the shared statements.
macro_rules! impl_tx {
    ($conn:ty, $row:ty) => {
        mod shared_tx {
        use pcq_core::time::Timestamp;
        use pcq_core::{EducationSegment, VettingStatus};
        use uuid::Uuid;
        use $crate::store::sql;
        use $crate::store::{
            CustomerRow, IdemKey, IdemRecord, QualificationEvent, QualificationRow, StoreError,
            StoreResult, StoredReply, ValidationCodeRow,
        };

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
