//! State snapshots: every table a partner's data lives in, read page by page in key order (for
//! a dump, inside one read snapshot) and written many rows per statement (for a load).
//!
//! The row types here are the tables' columns exactly as stored (times as microseconds since
//! the epoch, enums by their stored names, JSON columns as JSON), and they are also the rows of
//! the state document (`docs/state.md`): what a dump writes is what a load inserts. Insertion
//! sequences (`seq`, the history's `id`) are not part of a document: rows are dumped in their
//! order and inserted in it again, so the sequences a load assigns order them the same way.
//! Delivery leases are not kept either: a restored delivery in flight is due again.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::sql::{Arg, BULK_ROWS, Column, Row, Statement, Table, sql, table};
use super::{StoreError, StoreResult, Tx};

/// Bytes that are UTF-8 text (webhook payloads, stored answers): a string in a document, bytes
/// in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextBytes(pub Vec<u8>);

impl Serialize for TextBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => Err(serde::ser::Error::custom("stored bytes are not UTF-8")),
        }
    }
}

impl<'de> Deserialize<'de> for TextBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| TextBytes(s.into_bytes()))
    }
}

impl Column for TextBytes {
    fn arg(&self) -> Arg<'_> {
        Arg::Blob(Some(&self.0))
    }
    fn null() -> Arg<'static> {
        Arg::Blob(None)
    }
    fn read_optional(row: &dyn Row, index: usize) -> StoreResult<Option<Self>> {
        Ok(row.bytes(index)?.map(|b| TextBytes(b.to_vec())))
    }
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerState {
    #[serde(skip)]
    pub seq: i64,
    pub id: Uuid,
    pub partner_tenant_id: Uuid,
    pub commerce_id: Uuid,
    pub domain: String,
    pub company_name: Option<String>,
    pub company_profile: Map<String, Value>,
    pub billing_profile: Option<Map<String, Value>>,
    pub billing_profile_id: Uuid,
    pub created_at: i64,
}

table!(CustomerState in "customers" {
    generated: [seq],
    columns: [
        id, partner_tenant_id, commerce_id, domain, company_name, company_profile,
        billing_profile, billing_profile_id, created_at,
    ],
});

/// The current state of a qualification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QualificationState {
    pub customer_id: Uuid,
    pub qualification: String,
    pub vetting_status: Option<String>,
    pub vetting_reason: Option<String>,
    pub vetting_create_date: Option<i64>,
    pub education_segment: Option<String>,
    pub website: Option<String>,
    pub validation_id: Option<String>,
    pub round: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

table!(QualificationState in "customer_qualifications" {
    generated: [],
    columns: [
        customer_id, qualification, vetting_status, vetting_reason, vetting_create_date,
        education_segment, website, validation_id, round, created_at, updated_at,
    ],
});

/// A step of a qualification's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QualificationEventState {
    #[serde(skip)]
    pub id: i64,
    pub customer_id: Uuid,
    pub qualification: String,
    pub round: i64,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub reason: Option<String>,
    pub actor: String,
    pub request_id: Option<String>,
    pub at: i64,
}

table!(QualificationEventState in "qualification_events" {
    generated: [id],
    columns: [
        customer_id, qualification, round, from_status, to_status, reason, actor, request_id, at,
    ],
});

/// A GCC validation code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidationCodeState {
    pub validation_id: String,
    pub partner_tenant_id: Uuid,
    pub organization_name: String,
    pub max_creates: i64,
    pub remaining_creates: i64,
    pub etag: String,
    pub created_at: i64,
    pub updated_at: i64,
}

table!(ValidationCodeState in "validation_codes" {
    generated: [],
    columns: [
        validation_id, partner_tenant_id, organization_name, max_creates, remaining_creates,
        etag, created_at, updated_at,
    ],
});

/// A pending vetting decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VettingJobState {
    pub customer_id: Uuid,
    pub qualification: String,
    pub round: i64,
    pub partner_tenant_id: Uuid,
    pub created_at: i64,
    pub reads: i64,
}

table!(VettingJobState in "vetting_jobs" {
    generated: [],
    columns: [customer_id, qualification, round, partner_tenant_id, created_at, reads],
});

/// An audit record (with the lower-cased company name its filters use).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditRecordState {
    #[serde(skip)]
    pub seq: i64,
    pub id: String,
    pub partner_tenant_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub customer_name: Option<String>,
    #[serde(skip)]
    pub customer_name_lower: Option<String>,
    pub user_principal_name: Option<String>,
    pub application_id: Option<String>,
    pub resource_type: String,
    pub resource_old_value: Option<String>,
    pub resource_new_value: Option<String>,
    pub operation_type: String,
    pub operation_date: i64,
    pub operation_status: String,
    pub customized_data: Vec<(String, String)>,
}

table!(AuditRecordState in "audit_records" {
    generated: [seq],
    columns: [
        id, partner_tenant_id, customer_id, customer_name, customer_name_lower,
        user_principal_name, application_id, resource_type, resource_old_value,
        resource_new_value, operation_type, operation_date, operation_status, customized_data,
    ],
});

/// A webhook registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookRegistrationState {
    pub partner_tenant_id: Uuid,
    pub subscriber_id: String,
    pub webhook_url: String,
    pub webhook_events: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

table!(WebhookRegistrationState in "webhook_registrations" {
    generated: [],
    columns: [
        partner_tenant_id, subscriber_id, webhook_url, webhook_events, created_at, updated_at,
    ],
});

/// An event of the outbox (without its lease).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookDeliveryState {
    #[serde(skip)]
    pub seq: i64,
    pub id: Uuid,
    pub partner_tenant_id: Uuid,
    pub event_name: String,
    pub payload: TextBytes,
    pub webhook_url: String,
    pub correlation_id: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

table!(WebhookDeliveryState in "webhook_deliveries" {
    generated: [seq],
    columns: [
        id, partner_tenant_id, event_name, payload, webhook_url, correlation_id, status,
        attempts, next_attempt_at, created_at, finished_at,
    ],
});

/// An attempt to deliver an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookAttemptState {
    pub delivery_id: Uuid,
    pub attempt: i64,
    pub at: i64,
    pub response_code: Option<i64>,
    pub response_message: String,
    pub system_error: bool,
}

table!(WebhookAttemptState in "webhook_attempts" {
    generated: [],
    columns: [delivery_id, attempt, at, response_code, response_message, system_error],
});

/// The stored answer of an idempotent request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdempotencyState {
    pub partner_tenant_id: Uuid,
    pub request_id: String,
    pub method: String,
    pub route: String,
    pub fingerprint: String,
    pub status: Option<i64>,
    pub body: Option<TextBytes>,
    pub created_at: i64,
}

table!(IdempotencyState in "idempotency" {
    generated: [],
    columns: [
        partner_tenant_id, request_id, method, route, fingerprint, status, body, created_at,
    ],
});

/// Rows read per statement of a dump.
pub const DUMP_PAGE: i64 = 1000;

/// Where a page of a dump starts: after this key (`None`: from the first row).
#[derive(Debug, Clone, Default)]
pub enum After {
    /// From the first row.
    #[default]
    Start,
    /// After this insertion sequence.
    Seq(i64),
    /// After this pair of text keys.
    Pair(String, String),
    /// After this partner, request id, method and route.
    Idem(Uuid, String, String, String),
    /// After this delivery and attempt number.
    Attempt(Uuid, i64),
}

impl After {
    fn seq(&self) -> i64 {
        match self {
            After::Seq(seq) => *seq,
            _ => 0,
        }
    }
    fn pair(&self) -> (&str, &str) {
        match self {
            After::Pair(a, b) => (a, b),
            _ => ("", ""),
        }
    }
}

impl Tx<'_> {
    /// A page of customers (of `partner`, or every partner's), in insertion order.
    pub async fn state_customers(
        &mut self,
        partner: Option<Uuid>,
        after: &After,
    ) -> StoreResult<Vec<CustomerState>> {
        self.fetch_all(sql!(
            "SELECT ",
            (CustomerState::COLUMNS),
            " FROM customers WHERE seq > ",
            { after.seq() },
            " AND (",
            { partner },
            " IS NULL OR partner_tenant_id = ",
            { partner },
            ") ORDER BY seq LIMIT ",
            { DUMP_PAGE },
        ))
        .await
    }

    /// A page of qualifications, by customer and qualification.
    pub async fn state_qualifications(
        &mut self,
        partner: Option<Uuid>,
        after: &After,
    ) -> StoreResult<Vec<QualificationState>> {
        let (customer, qualification) = after.pair();
        self.fetch_all(sql!(
            "SELECT ",
            (QualificationState::COLUMNS),
            " FROM customer_qualifications WHERE (customer_id > ",
            { customer },
            " OR (customer_id = ",
            { customer },
            " AND qualification > ",
            { qualification },
            ")) AND (",
            { partner },
            " IS NULL OR customer_id IN (SELECT id FROM customers WHERE partner_tenant_id = ",
            { partner },
            ")) ORDER BY customer_id, qualification LIMIT ",
            { DUMP_PAGE },
        ))
        .await
    }

    /// A page of the qualifications' history, in order.
    pub async fn state_qualification_events(
        &mut self,
        partner: Option<Uuid>,
        after: &After,
    ) -> StoreResult<Vec<QualificationEventState>> {
        self.fetch_all(sql!(
            "SELECT ",
            (QualificationEventState::COLUMNS),
            " FROM qualification_events WHERE id > ",
            { after.seq() },
            " AND (",
            { partner },
            " IS NULL OR customer_id IN (SELECT id FROM customers WHERE partner_tenant_id = ",
            { partner },
            ")) ORDER BY id LIMIT ",
            { DUMP_PAGE },
        ))
        .await
    }

    /// A page of validation codes, by id.
    pub async fn state_validation_codes(
        &mut self,
        partner: Option<Uuid>,
        after: &After,
    ) -> StoreResult<Vec<ValidationCodeState>> {
        let (id, _) = after.pair();
        self.fetch_all(sql!(
            "SELECT ",
            (ValidationCodeState::COLUMNS),
            " FROM validation_codes WHERE validation_id > ",
            { id },
            " AND (",
            { partner },
            " IS NULL OR partner_tenant_id = ",
            { partner },
            ") ORDER BY validation_id LIMIT ",
            { DUMP_PAGE },
        ))
        .await
    }

    /// A page of pending vetting decisions, by customer and qualification.
    pub async fn state_vetting_jobs(
        &mut self,
        partner: Option<Uuid>,
        after: &After,
    ) -> StoreResult<Vec<VettingJobState>> {
        let (customer, qualification) = after.pair();
        self.fetch_all(sql!(
            "SELECT ",
            (VettingJobState::COLUMNS),
            " FROM vetting_jobs WHERE (customer_id > ",
            { customer },
            " OR (customer_id = ",
            { customer },
            " AND qualification > ",
            { qualification },
            ")) AND (",
            { partner },
            " IS NULL OR partner_tenant_id = ",
            { partner },
            ") ORDER BY customer_id, qualification LIMIT ",
            { DUMP_PAGE },
        ))
        .await
    }

    /// A page of audit records, in insertion order.
    pub async fn state_audit_records(
        &mut self,
        partner: Option<Uuid>,
        after: &After,
    ) -> StoreResult<Vec<AuditRecordState>> {
        self.fetch_all(sql!(
            "SELECT ",
            (AuditRecordState::COLUMNS),
            " FROM audit_records WHERE seq > ",
            { after.seq() },
            " AND (",
            { partner },
            " IS NULL OR partner_tenant_id = ",
            { partner },
            ") ORDER BY seq LIMIT ",
            { DUMP_PAGE },
        ))
        .await
    }

    /// A page of webhook registrations, by partner.
    pub async fn state_webhook_registrations(
        &mut self,
        partner: Option<Uuid>,
        after: &After,
    ) -> StoreResult<Vec<WebhookRegistrationState>> {
        let (last, _) = after.pair();
        self.fetch_all(sql!(
            "SELECT ",
            (WebhookRegistrationState::COLUMNS),
            " FROM webhook_registrations WHERE partner_tenant_id > ",
            { last },
            " AND (",
            { partner },
            " IS NULL OR partner_tenant_id = ",
            { partner },
            ") ORDER BY partner_tenant_id LIMIT ",
            { DUMP_PAGE },
        ))
        .await
    }

    /// A page of the outbox, in insertion order.
    pub async fn state_webhook_deliveries(
        &mut self,
        partner: Option<Uuid>,
        after: &After,
    ) -> StoreResult<Vec<WebhookDeliveryState>> {
        self.fetch_all(sql!(
            "SELECT ",
            (WebhookDeliveryState::COLUMNS),
            " FROM webhook_deliveries WHERE seq > ",
            { after.seq() },
            " AND (",
            { partner },
            " IS NULL OR partner_tenant_id = ",
            { partner },
            ") ORDER BY seq LIMIT ",
            { DUMP_PAGE },
        ))
        .await
    }

    /// A page of delivery attempts, by delivery and attempt.
    pub async fn state_webhook_attempts(
        &mut self,
        partner: Option<Uuid>,
        after: &After,
    ) -> StoreResult<Vec<WebhookAttemptState>> {
        let (delivery, attempt) = match after {
            After::Attempt(d, a) => (d.to_string(), *a),
            _ => (String::new(), 0),
        };
        self.fetch_all(sql!(
            "SELECT ",
            (WebhookAttemptState::COLUMNS),
            " FROM webhook_attempts WHERE (delivery_id > ",
            { &delivery },
            " OR (delivery_id = ",
            { &delivery },
            " AND attempt > ",
            { attempt },
            ")) AND (",
            { partner },
            " IS NULL OR delivery_id IN \
             (SELECT id FROM webhook_deliveries WHERE partner_tenant_id = ",
            { partner },
            ")) ORDER BY delivery_id, attempt LIMIT ",
            { DUMP_PAGE },
        ))
        .await
    }

    /// A page of idempotency records, by key.
    pub async fn state_idempotency(
        &mut self,
        partner: Option<Uuid>,
        after: &After,
    ) -> StoreResult<Vec<IdempotencyState>> {
        let (p, r, m, route) = match after {
            After::Idem(p, r, m, route) => (p.to_string(), r.as_str(), m.as_str(), route.as_str()),
            _ => (String::new(), "", "", ""),
        };
        self.fetch_all(sql!(
            "SELECT ",
            (IdempotencyState::COLUMNS),
            " FROM idempotency WHERE (partner_tenant_id, request_id, method, route) > (",
            { &p },
            ", ",
            { r },
            ", ",
            { m },
            ", ",
            { route },
            ") AND (",
            { partner },
            " IS NULL OR partner_tenant_id = ",
            { partner },
            ") ORDER BY partner_tenant_id, request_id, method, route LIMIT ",
            { DUMP_PAGE },
        ))
        .await
    }

    /// Inserts rows of a state document, many per statement. `ON CONFLICT DO NOTHING`: the
    /// answer is how many were inserted, so a caller sees a row that collided with one it did
    /// not remove (another partner's) and refuses the load.
    pub async fn insert_state_rows<T: Table>(&mut self, rows: &[T]) -> StoreResult<u64> {
        let mut inserted = 0;
        for chunk in rows.chunks(BULK_ROWS) {
            inserted += self
                .execute(Statement::insert_rows(chunk, " ON CONFLICT DO NOTHING"))
                .await?;
        }
        Ok(inserted)
    }

    /// Whether the store holds no customer.
    pub async fn holds_no_customer(&mut self) -> StoreResult<bool> {
        let any: Option<i64> = self
            .fetch_optional(sql!("SELECT seq FROM customers LIMIT 1"))
            .await?;
        Ok(any.is_none())
    }

    /// The stored clock epoch, offset and policy text, for a dump: read here so that a dump
    /// never reads any other `meta` key.
    pub async fn state_settings(&mut self) -> StoreResult<(i64, Option<Value>)> {
        let offset = self.clock_offset().await?;
        let policy = self.policy_state().await?.policy;
        let policy = policy
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("encoding the policy: {e}")))?;
        Ok((offset, policy))
    }
}
