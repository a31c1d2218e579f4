//! The SQL of the [`Tx`](super::Tx) primitives, shared by every backend.
//!
//! The statements use only what SQLite and PostgreSQL have in common (`$n` placeholders,
//! `ON CONFLICT`, `RETURNING`); ids are stored as lower-case text and times as microseconds
//! since the epoch, so the same statements and the same decoding serve both. The trait is
//! implemented once, here, for every backend connection that can run a statement ([`Db`]).

use std::future::Future;

use pcq_core::time::Timestamp;
use pcq_core::{EducationSegment, Qualification, VettingStatus};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    AttemptRow, AuditQuery, AuditRecordRow, CustomerRow, DeliveryRow, DeliveryStatus, IdemKey,
    IdemRecord, QualificationEvent, QualificationRow, ReviewItemRow, ReviewQuery, StoreError,
    StoreResult, StoredReply, ValidationCodeRow, VettingJobRow, WebhookRegistrationRow,
};

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

/// A value bound to a statement parameter. Nulls are typed, because PostgreSQL infers the
/// type of a parameter from what is bound to it.
#[derive(Debug)]
pub enum Arg<'a> {
    /// An integer (BIGINT on PostgreSQL).
    Int(Option<i64>),
    /// Borrowed text.
    Text(Option<&'a str>),
    /// Owned text.
    String(Option<String>),
    /// An id, stored as lower-case hyphenated text.
    Uuid(Option<Uuid>),
    /// Bytes (BYTEA on PostgreSQL).
    Blob(Option<&'a [u8]>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref())
    }
}
impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::String(Some(v))
    }
}
impl From<Option<String>> for Arg<'_> {
    fn from(v: Option<String>) -> Self {
        Arg::String(v)
    }
}
impl From<Uuid> for Arg<'_> {
    fn from(v: Uuid) -> Self {
        Arg::Uuid(Some(v))
    }
}
impl From<Option<Uuid>> for Arg<'_> {
    fn from(v: Option<Uuid>) -> Self {
        Arg::Uuid(v)
    }
}
impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Blob(Some(v))
    }
}
impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Arg::Blob(Some(v))
    }
}
impl From<Timestamp> for Arg<'_> {
    fn from(v: Timestamp) -> Self {
        Arg::Int(Some(v.as_micros()))
    }
}
impl From<Option<Timestamp>> for Arg<'_> {
    fn from(v: Option<Timestamp>) -> Self {
        Arg::Int(v.map(Timestamp::as_micros))
    }
}

/// The parameters of one statement, in the order of their numbers (`$1` first).
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        &[$(Arg::from($arg)),*]
    };
}

/// A result row, its columns looked up by name. Text and bytes are borrowed from the row.
pub trait Row {
    /// An integer column.
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>>;
    /// A text column.
    fn opt_str(&self, column: &str) -> StoreResult<Option<&str>>;
    /// A bytes column.
    fn opt_bytes(&self, column: &str) -> StoreResult<Option<&[u8]>>;
}

/// A column that must not be NULL.
fn required<T>(value: Option<T>, column: &str) -> StoreResult<T> {
    value.ok_or_else(|| StoreError::Corrupt(format!("column {column} is unexpectedly NULL")))
}

impl dyn Row + '_ {
    fn int(&self, column: &str) -> StoreResult<i64> {
        required(self.opt_int(column)?, column)
    }
    fn str(&self, column: &str) -> StoreResult<&str> {
        required(self.opt_str(column)?, column)
    }
    fn string(&self, column: &str) -> StoreResult<String> {
        self.str(column).map(str::to_owned)
    }
    fn opt_string(&self, column: &str) -> StoreResult<Option<String>> {
        Ok(self.opt_str(column)?.map(str::to_owned))
    }
    fn uuid(&self, column: &str) -> StoreResult<Uuid> {
        uuid(self.str(column)?)
    }
    fn opt_uuid(&self, column: &str) -> StoreResult<Option<Uuid>> {
        self.opt_str(column)?.map(uuid).transpose()
    }
    fn ts(&self, column: &str) -> StoreResult<Timestamp> {
        self.int(column).map(ts)
    }
    fn opt_ts(&self, column: &str) -> StoreResult<Option<Timestamp>> {
        Ok(self.opt_int(column)?.map(ts))
    }
    fn bytes(&self, column: &str) -> StoreResult<Vec<u8>> {
        Ok(required(self.opt_bytes(column)?, column)?.to_vec())
    }
    fn qualification(&self, column: &str) -> StoreResult<Qualification> {
        qualification(self.str(column)?)
    }
    fn vetting_status(&self, column: &str) -> StoreResult<Option<VettingStatus>> {
        vetting_status(self.opt_string(column)?)
    }
}

/// Turns a result row into a value.
pub type Decode<T> = fn(&dyn Row) -> StoreResult<T>;

/// What a backend's connection provides, inside a transaction it opened: running one statement.
/// [`Tx`](super::Tx) is implemented once, for every `Db`, over the shared statements.
pub trait Db: Send {
    /// Whether transactions run alongside others that write (PostgreSQL): reads that decide a
    /// write then lock the rows they read (`FOR UPDATE`), and the claim of due vetting jobs skips
    /// rows another worker holds (`FOR UPDATE SKIP LOCKED`). Where one writer runs at a time
    /// (SQLite, which has no such clauses) neither is needed.
    const ROW_LOCKS: bool;
    /// Whether built statements ([`multi_row_insert`]) number their parameters.
    const NUMBERED_PARAMS: bool;

    /// Every row the statement returns.
    fn fetch_all<T: Send>(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
        decode: Decode<T>,
    ) -> impl Future<Output = StoreResult<Vec<T>>> + Send;

    /// The first row the statement returns, if any.
    fn fetch_optional<T: Send>(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
        decode: Decode<T>,
    ) -> impl Future<Output = StoreResult<Option<T>>> + Send;

    /// Runs the statement; returns how many rows it changed.
    fn execute(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Runs a statement built at run time (bulk inserts); returns how many rows it changed.
    fn execute_built(
        &mut self,
        sql: String,
        args: &[Arg<'_>],
    ) -> impl Future<Output = StoreResult<u64>> + Send;
}

mod rows {
    use super::*;
    use crate::store::{
        AttemptRow, AuditRecordRow, CustomerRow, DeliveryRow, DeliveryStatus, QualificationEvent,
        QualificationRow, ReviewItemRow, ValidationCodeRow, VettingJobRow, WebhookRegistrationRow,
    };

    pub(super) fn customer(r: &dyn Row) -> StoreResult<CustomerRow> {
        Ok(CustomerRow {
            seq: r.int("seq")?,
            id: r.uuid("id")?,
            partner_tenant_id: r.uuid("partner_tenant_id")?,
            commerce_id: r.uuid("commerce_id")?,
            domain: r.string("domain")?,
            company_name: r.opt_string("company_name")?,
            company_profile: object(r.str("company_profile")?)?,
            billing_profile: r.opt_str("billing_profile")?.map(object).transpose()?,
            billing_profile_id: r.uuid("billing_profile_id")?,
            created_at: r.ts("created_at")?,
        })
    }

    pub(super) fn qualification(r: &dyn Row) -> StoreResult<QualificationRow> {
        Ok(QualificationRow {
            customer_id: r.uuid("customer_id")?,
            qualification: r.qualification("qualification")?,
            vetting_status: r.vetting_status("vetting_status")?,
            vetting_reason: r.opt_string("vetting_reason")?,
            vetting_create_date: r.opt_ts("vetting_create_date")?,
            education_segment: segment(r.opt_string("education_segment")?)?,
            website: r.opt_string("website")?,
            validation_id: r.opt_string("validation_id")?,
            round: r.int("round")?,
            created_at: r.ts("created_at")?,
            updated_at: r.ts("updated_at")?,
        })
    }

    pub(super) fn event(r: &dyn Row) -> StoreResult<QualificationEvent> {
        Ok(QualificationEvent {
            customer_id: r.uuid("customer_id")?,
            qualification: r.qualification("qualification")?,
            round: r.int("round")?,
            from_status: r.vetting_status("from_status")?,
            to_status: r.vetting_status("to_status")?,
            reason: r.opt_string("reason")?,
            actor: r.string("actor")?,
            request_id: r.opt_string("request_id")?,
            at: r.ts("at")?,
        })
    }

    pub(super) fn audit(r: &dyn Row) -> StoreResult<AuditRecordRow> {
        Ok(AuditRecordRow {
            seq: r.int("seq")?,
            id: r.string("id")?,
            partner_tenant_id: r.uuid("partner_tenant_id")?,
            customer_id: r.opt_uuid("customer_id")?,
            customer_name: r.opt_string("customer_name")?,
            user_principal_name: r.opt_string("user_principal_name")?,
            application_id: r.opt_string("application_id")?,
            resource_type: r.string("resource_type")?,
            resource_old_value: r.opt_string("resource_old_value")?,
            resource_new_value: r.opt_string("resource_new_value")?,
            operation_type: r.string("operation_type")?,
            operation_date: r.ts("operation_date")?,
            operation_status: r.string("operation_status")?,
            customized_data: pairs(r.str("customized_data")?)?,
        })
    }

    pub(super) fn job(r: &dyn Row) -> StoreResult<VettingJobRow> {
        Ok(VettingJobRow {
            customer_id: r.uuid("customer_id")?,
            qualification: r.qualification("qualification")?,
            round: r.int("round")?,
            partner_tenant_id: r.uuid("partner_tenant_id")?,
            created_at: r.ts("created_at")?,
            reads: r.int("reads")?,
        })
    }

    pub(super) fn review_item(r: &dyn Row) -> StoreResult<ReviewItemRow> {
        Ok(ReviewItemRow {
            qualification: qualification(r)?,
            partner_tenant_id: r.uuid("partner_tenant_id")?,
            domain: r.string("domain")?,
            company_name: r.opt_string("company_name")?,
        })
    }

    pub(super) fn registration(r: &dyn Row) -> StoreResult<WebhookRegistrationRow> {
        Ok(WebhookRegistrationRow {
            partner_tenant_id: r.uuid("partner_tenant_id")?,
            subscriber_id: r.uuid("subscriber_id")?,
            webhook_url: r.string("webhook_url")?,
            webhook_events: strings(r.str("webhook_events")?)?,
            created_at: r.ts("created_at")?,
            updated_at: r.ts("updated_at")?,
        })
    }

    pub(super) fn delivery(r: &dyn Row) -> StoreResult<DeliveryRow> {
        Ok(DeliveryRow {
            seq: r.int("seq")?,
            id: r.uuid("id")?,
            partner_tenant_id: r.uuid("partner_tenant_id")?,
            event_name: r.string("event_name")?,
            payload: r.bytes("payload")?,
            webhook_url: r.string("webhook_url")?,
            correlation_id: r.opt_string("correlation_id")?,
            status: DeliveryStatus::parse(r.str("status")?)?,
            attempts: r.int("attempts")?,
            next_attempt_at: r.ts("next_attempt_at")?,
            created_at: r.ts("created_at")?,
            finished_at: r.opt_ts("finished_at")?,
        })
    }

    pub(super) fn attempt(r: &dyn Row) -> StoreResult<AttemptRow> {
        Ok(AttemptRow {
            delivery_id: r.uuid("delivery_id")?,
            attempt: r.int("attempt")?,
            at: r.ts("at")?,
            response_code: r.opt_int("response_code")?,
            response_message: r.string("response_message")?,
            system_error: r.int("system_error")? != 0,
        })
    }

    pub(super) fn code(r: &dyn Row) -> StoreResult<ValidationCodeRow> {
        Ok(ValidationCodeRow {
            validation_id: r.string("validation_id")?,
            partner_tenant_id: r.uuid("partner_tenant_id")?,
            organization_name: r.string("organization_name")?,
            max_creates: r.int("max_creates")?,
            remaining_creates: r.int("remaining_creates")?,
            etag: r.string("etag")?,
            created_at: r.ts("created_at")?,
            updated_at: r.ts("updated_at")?,
        })
    }

    pub(super) fn partner(r: &dyn Row) -> StoreResult<Uuid> {
        r.uuid("partner_tenant_id")
    }

    pub(super) fn value(r: &dyn Row) -> StoreResult<String> {
        r.string("value")
    }

    pub(super) fn attempts(r: &dyn Row) -> StoreResult<i64> {
        r.int("attempts")
    }

    pub(super) fn idempotency(r: &dyn Row) -> StoreResult<crate::store::IdemRecord> {
        let (Some(status), Some(body)) = (r.opt_int("status")?, r.opt_bytes("body")?) else {
            return Err(StoreError::Corrupt(
                "an idempotency record without an answer".to_owned(),
            ));
        };
        Ok(crate::store::IdemRecord {
            fingerprint: r.string("fingerprint")?,
            reply: crate::store::StoredReply {
                status: u16::try_from(status)
                    .map_err(|_| StoreError::Corrupt(format!("invalid status {status}")))?,
                body: body.to_vec(),
            },
        })
    }
}

fn json_object(map: &Map<String, Value>) -> String {
    Value::Object(map.clone()).to_string()
}

// Statements that some backends run with a locking clause: each written once, as a macro, so
// that both variants are built from it with `concat!`.
macro_rules! customer_by_id {
    () => {
        concat!(
            "SELECT ",
            customer_columns!(),
            " FROM customers WHERE id = $1"
        )
    };
}
macro_rules! code_by_id {
    () => {
        concat!(
            "SELECT ",
            code_columns!(),
            " FROM validation_codes WHERE partner_tenant_id = $1 AND validation_id = $2"
        )
    };
}
macro_rules! due_jobs {
    () => {
        concat!(
            "SELECT ",
            job_columns!(),
            " FROM vetting_jobs WHERE created_at <= $1 AND reads >= $2 \
             ORDER BY created_at, customer_id, qualification LIMIT $3"
        )
    };
}

/// `plain` where one writer runs at a time, `locking` where writers run concurrently
/// ([`Db::ROW_LOCKS`]).
fn with_locks<D: Db>(plain: &'static str, locking: &'static str) -> &'static str {
    if D::ROW_LOCKS { locking } else { plain }
}

impl<D: Db> super::Tx for D {
    async fn meta_get(&mut self, key: &str) -> StoreResult<Option<String>> {
        self.fetch_optional(
            "SELECT value FROM meta WHERE key = $1",
            args![key],
            rows::value,
        )
        .await
    }

    async fn meta_insert_default(&mut self, key: &str, value: &str) -> StoreResult<String> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            args![key, value],
        )
        .await?;
        let stored = self
            .fetch_optional(
                "SELECT value FROM meta WHERE key = $1",
                args![key],
                rows::value,
            )
            .await?;
        required(stored, "meta.value")
    }

    async fn meta_put(&mut self, key: &str, value: &str) -> StoreResult<()> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            args![key, value],
        )
        .await?;
        Ok(())
    }

    async fn meta_delete(&mut self, key: &str) -> StoreResult<()> {
        self.execute("DELETE FROM meta WHERE key = $1", args![key])
            .await?;
        Ok(())
    }

    async fn idem_get(&mut self, key: &IdemKey) -> StoreResult<Option<IdemRecord>> {
        self.fetch_optional(
            "SELECT fingerprint, status, body FROM idempotency \
             WHERE partner_tenant_id = $1 AND request_id = $2 AND method = $3 AND route = $4",
            args![key.partner, &key.request_id, key.method, &key.route],
            rows::idempotency,
        )
        .await
    }

    async fn idem_claim(
        &mut self,
        key: &IdemKey,
        fingerprint: &str,
        now: Timestamp,
    ) -> StoreResult<Option<IdemRecord>> {
        let inserted = self
            .execute(
                "INSERT INTO idempotency \
                 (partner_tenant_id, request_id, method, route, fingerprint, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (partner_tenant_id, request_id, method, route) DO NOTHING",
                args![
                    key.partner,
                    &key.request_id,
                    key.method,
                    &key.route,
                    fingerprint,
                    now
                ],
            )
            .await?;
        if inserted == 1 {
            return Ok(None);
        }
        match self.idem_get(key).await? {
            Some(record) => Ok(Some(record)),
            None => Err(StoreError::Corrupt(
                "an idempotency key held by no record".to_owned(),
            )),
        }
    }

    async fn idem_complete(&mut self, key: &IdemKey, reply: &StoredReply) -> StoreResult<()> {
        self.execute(
            "UPDATE idempotency SET status = $5, body = $6 \
             WHERE partner_tenant_id = $1 AND request_id = $2 AND method = $3 AND route = $4",
            args![
                key.partner,
                &key.request_id,
                key.method,
                &key.route,
                i64::from(reply.status),
                &reply.body
            ],
        )
        .await?;
        Ok(())
    }

    async fn bulk_insert(
        &mut self,
        customers: &[CustomerRow],
        qualifications: &[QualificationRow],
        events: &[QualificationEvent],
    ) -> StoreResult<()> {
        for chunk in customers.chunks(BULK_ROWS) {
            let statement = multi_row_insert(
                "INSERT INTO customers (id, partner_tenant_id, commerce_id, domain, company_name, \
                 company_profile, billing_profile, billing_profile_id, created_at) VALUES ",
                9,
                chunk.len(),
                D::NUMBERED_PARAMS,
            );
            let mut values = Vec::with_capacity(chunk.len() * 9);
            for row in chunk {
                values.extend([
                    Arg::from(row.id),
                    Arg::from(row.partner_tenant_id),
                    Arg::from(row.commerce_id),
                    Arg::from(&row.domain),
                    Arg::from(&row.company_name),
                    Arg::from(json_object(&row.company_profile)),
                    Arg::from(row.billing_profile.as_ref().map(json_object)),
                    Arg::from(row.billing_profile_id),
                    Arg::from(row.created_at),
                ]);
            }
            self.execute_built(statement, &values).await?;
        }
        for chunk in qualifications.chunks(BULK_ROWS) {
            let statement = multi_row_insert(
                concat!(
                    "INSERT INTO customer_qualifications (",
                    qualification_columns!(),
                    ") VALUES "
                ),
                11,
                chunk.len(),
                D::NUMBERED_PARAMS,
            );
            let mut values = Vec::with_capacity(chunk.len() * 11);
            for row in chunk {
                values.extend(qualification_args(row));
            }
            self.execute_built(statement, &values).await?;
        }
        for chunk in events.chunks(BULK_ROWS) {
            let statement = multi_row_insert(
                concat!(
                    "INSERT INTO qualification_events (",
                    event_columns!(),
                    ") VALUES "
                ),
                9,
                chunk.len(),
                D::NUMBERED_PARAMS,
            );
            let mut values = Vec::with_capacity(chunk.len() * 9);
            for e in chunk {
                values.extend(event_args(e));
            }
            self.execute_built(statement, &values).await?;
        }
        Ok(())
    }

    async fn insert_customer(&mut self, row: &CustomerRow) -> StoreResult<bool> {
        let affected = self
            .execute(
                "INSERT INTO customers (id, partner_tenant_id, commerce_id, domain, company_name, \
                 company_profile, billing_profile, billing_profile_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (partner_tenant_id, domain) DO NOTHING",
                args![
                    row.id,
                    row.partner_tenant_id,
                    row.commerce_id,
                    &row.domain,
                    &row.company_name,
                    json_object(&row.company_profile),
                    row.billing_profile.as_ref().map(json_object),
                    row.billing_profile_id,
                    row.created_at
                ],
            )
            .await?;
        Ok(affected == 1)
    }

    async fn customer(&mut self, id: Uuid) -> StoreResult<Option<CustomerRow>> {
        self.fetch_optional(customer_by_id!(), args![id], rows::customer)
            .await
    }

    async fn lock_customer(&mut self, id: Uuid) -> StoreResult<Option<CustomerRow>> {
        let sql = with_locks::<D>(customer_by_id!(), concat!(customer_by_id!(), " FOR UPDATE"));
        self.fetch_optional(sql, args![id], rows::customer).await
    }

    async fn customer_partner(&mut self, id: Uuid) -> StoreResult<Option<Uuid>> {
        self.fetch_optional(
            "SELECT partner_tenant_id FROM customers WHERE id = $1",
            args![id],
            rows::partner,
        )
        .await
    }

    async fn customers_page(
        &mut self,
        partner: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<CustomerRow>> {
        self.fetch_all(
            concat!(
                "SELECT ",
                customer_columns!(),
                " FROM customers WHERE partner_tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            ),
            args![partner, after_seq, limit],
            rows::customer,
        )
        .await
    }

    async fn qualifications(&mut self, customer: Uuid) -> StoreResult<Vec<QualificationRow>> {
        self.fetch_all(
            concat!(
                "SELECT ",
                qualification_columns!(),
                " FROM customer_qualifications WHERE customer_id = $1"
            ),
            args![customer],
            rows::qualification,
        )
        .await
    }

    async fn put_qualification(&mut self, row: &QualificationRow) -> StoreResult<()> {
        self.execute(
            concat!(
                "INSERT INTO customer_qualifications (",
                qualification_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (customer_id, qualification) DO UPDATE SET \
                 vetting_status = excluded.vetting_status, vetting_reason = excluded.vetting_reason, \
                 vetting_create_date = excluded.vetting_create_date, \
                 education_segment = excluded.education_segment, website = excluded.website, \
                 validation_id = excluded.validation_id, round = excluded.round, \
                 updated_at = excluded.updated_at"
            ),
            &qualification_args(row),
        )
        .await?;
        Ok(())
    }

    async fn insert_qualification_event(&mut self, e: &QualificationEvent) -> StoreResult<()> {
        self.execute(
            concat!(
                "INSERT INTO qualification_events (",
                event_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            &event_args(e),
        )
        .await?;
        Ok(())
    }

    async fn qualification_events(
        &mut self,
        customer: Uuid,
    ) -> StoreResult<Vec<QualificationEvent>> {
        self.fetch_all(
            concat!(
                "SELECT ",
                event_columns!(),
                " FROM qualification_events WHERE customer_id = $1 ORDER BY id"
            ),
            args![customer],
            rows::event,
        )
        .await
    }

    async fn lock_validation_code(
        &mut self,
        partner: Uuid,
        validation_id: &str,
    ) -> StoreResult<Option<ValidationCodeRow>> {
        let sql = with_locks::<D>(code_by_id!(), concat!(code_by_id!(), " FOR UPDATE"));
        self.fetch_optional(sql, args![partner, validation_id], rows::code)
            .await
    }

    async fn validation_codes(&mut self, partner: Uuid) -> StoreResult<Vec<ValidationCodeRow>> {
        self.fetch_all(
            concat!(
                "SELECT ",
                code_columns!(),
                " FROM validation_codes WHERE partner_tenant_id = $1 \
                 ORDER BY created_at, validation_id"
            ),
            args![partner],
            rows::code,
        )
        .await
    }

    async fn insert_validation_code(&mut self, row: &ValidationCodeRow) -> StoreResult<bool> {
        let affected = self
            .execute(
                concat!(
                    "INSERT INTO validation_codes (",
                    code_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (validation_id) DO NOTHING"
                ),
                args![
                    &row.validation_id,
                    row.partner_tenant_id,
                    &row.organization_name,
                    row.max_creates,
                    row.remaining_creates,
                    &row.etag,
                    row.created_at,
                    row.updated_at
                ],
            )
            .await?;
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
        let affected = self
            .execute(
                "UPDATE customer_qualifications SET vetting_status = $5, vetting_reason = $6, \
                 updated_at = $7 \
                 WHERE customer_id = $1 AND qualification = $2 AND round = $3 AND vetting_status = $4",
                args![
                    customer,
                    qualification.as_str(),
                    round,
                    from.as_str(),
                    to.as_str(),
                    reason,
                    at
                ],
            )
            .await?;
        Ok(affected == 1)
    }

    async fn insert_audit_record(&mut self, row: &AuditRecordRow) -> StoreResult<()> {
        self.execute(
            "INSERT INTO audit_records (id, partner_tenant_id, customer_id, customer_name, \
             user_principal_name, application_id, resource_type, resource_old_value, \
             resource_new_value, operation_type, operation_date, operation_status, customized_data, \
             customer_name_lower) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            args![
                &row.id,
                row.partner_tenant_id,
                row.customer_id,
                &row.customer_name,
                &row.user_principal_name,
                &row.application_id,
                &row.resource_type,
                &row.resource_old_value,
                &row.resource_new_value,
                &row.operation_type,
                row.operation_date,
                &row.operation_status,
                serde_json::to_string(&row.customized_data).unwrap_or_else(|_| "[]".to_owned()),
                row.customer_name.as_deref().map(str::to_lowercase)
            ],
        )
        .await?;
        Ok(())
    }

    async fn audit_records(&mut self, q: &AuditQuery) -> StoreResult<Vec<AuditRecordRow>> {
        self.fetch_all(
            concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit_records \
                 WHERE partner_tenant_id = $1 AND operation_date >= $2 AND operation_date < $3 \
                 AND seq > $4 \
                 AND ($5 IS NULL OR customer_id = $5) \
                 AND ($6 IS NULL OR operation_type = $6) \
                 AND ($7 IS NULL OR resource_type = $7) \
                 AND ($8 IS NULL OR customer_name_lower LIKE $8 ESCAPE '\\') \
                 AND ($10 IS NULL OR customer_name_lower = $10) \
                 ORDER BY seq LIMIT $9"
            ),
            args![
                q.partner,
                q.from,
                q.until,
                q.after_seq,
                q.customer_id,
                &q.operation_type,
                &q.resource_type,
                q.customer_name_contains
                    .as_deref()
                    .map(|n| format!("%{}%", like_escape(n))),
                q.limit,
                q.customer_name_is.as_deref().map(str::to_lowercase)
            ],
            rows::audit,
        )
        .await
    }

    async fn audit_record(
        &mut self,
        partner: Uuid,
        id: &str,
    ) -> StoreResult<Option<AuditRecordRow>> {
        self.fetch_optional(
            concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit_records WHERE partner_tenant_id = $1 AND id = $2"
            ),
            args![partner, id],
            rows::audit,
        )
        .await
    }

    async fn put_vetting_job(&mut self, row: &VettingJobRow) -> StoreResult<()> {
        self.execute(
            concat!(
                "INSERT INTO vetting_jobs (",
                job_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (customer_id, qualification) DO UPDATE SET round = excluded.round, \
                 partner_tenant_id = excluded.partner_tenant_id, created_at = excluded.created_at, \
                 reads = excluded.reads"
            ),
            args![
                row.customer_id,
                row.qualification.as_str(),
                row.round,
                row.partner_tenant_id,
                row.created_at,
                row.reads
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_vetting_job(
        &mut self,
        customer: Uuid,
        qualification: Qualification,
        round: i64,
    ) -> StoreResult<()> {
        self.execute(
            "DELETE FROM vetting_jobs WHERE customer_id = $1 AND qualification = $2 AND round = $3",
            args![customer, qualification.as_str(), round],
        )
        .await?;
        Ok(())
    }

    async fn due_vetting_jobs(
        &mut self,
        started_by: Timestamp,
        min_reads: i64,
        limit: i64,
    ) -> StoreResult<Vec<VettingJobRow>> {
        let sql = with_locks::<D>(due_jobs!(), concat!(due_jobs!(), " FOR UPDATE SKIP LOCKED"));
        self.fetch_all(sql, args![started_by, min_reads, limit], rows::job)
            .await
    }

    async fn count_vetting_read(&mut self, customer: Uuid) -> StoreResult<Vec<VettingJobRow>> {
        self.fetch_all(
            concat!(
                "UPDATE vetting_jobs SET reads = reads + 1 WHERE customer_id = $1 RETURNING ",
                job_columns!()
            ),
            args![customer],
            rows::job,
        )
        .await
    }

    async fn review_queue(&mut self, q: &ReviewQuery) -> StoreResult<Vec<ReviewItemRow>> {
        let after = q.after.as_ref();
        self.fetch_all(
            "SELECT q.customer_id, q.qualification, q.vetting_status, q.vetting_reason, \
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
             ORDER BY q.vetting_create_date, q.customer_id, q.qualification LIMIT $7",
            args![
                q.partner,
                q.qualification.map(Qualification::as_str),
                q.started_before,
                after.map(|a| a.0),
                after.map(|a| a.1),
                after.map(|a| a.2.as_str()),
                q.limit
            ],
            rows::review_item,
        )
        .await
    }

    async fn webhook_registration(
        &mut self,
        partner: Uuid,
    ) -> StoreResult<Option<WebhookRegistrationRow>> {
        self.fetch_optional(
            concat!(
                "SELECT ",
                registration_columns!(),
                " FROM webhook_registrations WHERE partner_tenant_id = $1"
            ),
            args![partner],
            rows::registration,
        )
        .await
    }

    async fn put_webhook_registration(&mut self, row: &WebhookRegistrationRow) -> StoreResult<()> {
        self.execute(
            concat!(
                "INSERT INTO webhook_registrations (",
                registration_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (partner_tenant_id) DO UPDATE SET subscriber_id = excluded.subscriber_id, \
                 webhook_url = excluded.webhook_url, webhook_events = excluded.webhook_events, \
                 updated_at = excluded.updated_at"
            ),
            args![
                row.partner_tenant_id,
                row.subscriber_id,
                &row.webhook_url,
                serde_json::to_string(&row.webhook_events).unwrap_or_else(|_| "[]".to_owned()),
                row.created_at,
                row.updated_at
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_webhook_registration(&mut self, partner: Uuid) -> StoreResult<bool> {
        let affected = self
            .execute(
                "DELETE FROM webhook_registrations WHERE partner_tenant_id = $1",
                args![partner],
            )
            .await?;
        Ok(affected == 1)
    }

    async fn insert_delivery(&mut self, row: &DeliveryRow) -> StoreResult<()> {
        self.execute(
            "INSERT INTO webhook_deliveries (id, partner_tenant_id, event_name, payload, \
             webhook_url, correlation_id, status, attempts, next_attempt_at, created_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            args![
                row.id,
                row.partner_tenant_id,
                &row.event_name,
                &row.payload,
                &row.webhook_url,
                &row.correlation_id,
                row.status.as_str(),
                row.attempts,
                row.next_attempt_at,
                row.created_at,
                row.finished_at
            ],
        )
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
        // The conditions are repeated outside the subquery so that a concurrent claimer that
        // waited on a row re-checks it and leaves it alone.
        let mut claimed = self
            .fetch_all(
                concat!(
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
                     RETURNING ",
                    delivery_columns!()
                ),
                args![now, real_now, lease_until, token, limit, per_partner],
                rows::delivery,
            )
            .await?;
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
        let finished = (status != DeliveryStatus::Pending).then_some(attempt.at);
        let number = self
            .fetch_optional(
                "UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1, \
                 next_attempt_at = $4, finished_at = $5, lease_until = NULL, lease_owner = NULL \
                 WHERE id = $1 AND lease_owner = $2 AND status = 'pending' RETURNING attempts",
                args![
                    attempt.delivery_id,
                    token,
                    status.as_str(),
                    next_attempt_at,
                    finished
                ],
                rows::attempts,
            )
            .await?;
        let Some(number) = number else {
            return Ok(false);
        };
        self.execute(
            concat!(
                "INSERT INTO webhook_attempts (",
                attempt_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6)"
            ),
            args![
                attempt.delivery_id,
                number,
                attempt.at,
                attempt.response_code,
                &attempt.response_message,
                i64::from(attempt.system_error)
            ],
        )
        .await?;
        Ok(true)
    }

    async fn deliveries_by_correlation(
        &mut self,
        partner: Uuid,
        correlation_id: &str,
    ) -> StoreResult<Vec<DeliveryRow>> {
        self.fetch_all(
            concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM webhook_deliveries WHERE partner_tenant_id = $1 AND correlation_id = $2 \
                 ORDER BY seq"
            ),
            args![partner, correlation_id],
            rows::delivery,
        )
        .await
    }

    async fn recent_deliveries(
        &mut self,
        partner: Uuid,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryRow>> {
        self.fetch_all(
            concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM webhook_deliveries WHERE partner_tenant_id = $1 ORDER BY seq DESC LIMIT $2"
            ),
            args![partner, limit],
            rows::delivery,
        )
        .await
    }

    async fn delivery_attempts(&mut self, delivery: Uuid) -> StoreResult<Vec<AttemptRow>> {
        self.fetch_all(
            concat!(
                "SELECT ",
                attempt_columns!(),
                " FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt"
            ),
            args![delivery],
            rows::attempt,
        )
        .await
    }

    async fn consume_validation_code(
        &mut self,
        partner: Uuid,
        validation_id: &str,
        etag: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let affected = self
            .execute(
                "UPDATE validation_codes SET remaining_creates = remaining_creates - 1, \
                 etag = $3, updated_at = $4 \
                 WHERE partner_tenant_id = $1 AND validation_id = $2 AND remaining_creates > 0",
                args![partner, validation_id, etag, at],
            )
            .await?;
        Ok(affected == 1)
    }
}

fn qualification_args(row: &QualificationRow) -> [Arg<'_>; 11] {
    [
        Arg::from(row.customer_id),
        Arg::from(row.qualification.as_str()),
        Arg::from(row.vetting_status.map(VettingStatus::as_str)),
        Arg::from(&row.vetting_reason),
        Arg::from(row.vetting_create_date),
        Arg::from(row.education_segment.map(EducationSegment::as_str)),
        Arg::from(&row.website),
        Arg::from(&row.validation_id),
        Arg::from(row.round),
        Arg::from(row.created_at),
        Arg::from(row.updated_at),
    ]
}

fn event_args(e: &QualificationEvent) -> [Arg<'_>; 9] {
    [
        Arg::from(e.customer_id),
        Arg::from(e.qualification.as_str()),
        Arg::from(e.round),
        Arg::from(e.from_status.map(VettingStatus::as_str)),
        Arg::from(e.to_status.map(VettingStatus::as_str)),
        Arg::from(&e.reason),
        Arg::from(&e.actor),
        Arg::from(&e.request_id),
        Arg::from(e.at),
    ]
}
