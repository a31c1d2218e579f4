//! Storage: the one boundary between pcq's logic and its database.
//!
//! Logic is written once, against the [`Tx`] trait (the primitive reads and writes inside one
//! transaction), as [`Op`]s. A backend runs an op in a transaction: [`Store::write`] in a write
//! transaction whose commit is on disk before the op's result is returned, [`Store::read`] in a
//! read snapshot. The SQL is shared by the backends (`sql.rs`); each backend only decides how
//! transactions are opened, batched and committed.

pub mod postgres;
mod sql;
pub mod sqlite;

use std::future::Future;
use std::sync::Arc;

use pcq_core::time::Timestamp;
use pcq_core::{EducationSegment, Qualification, VettingStatus};
use serde_json::{Map, Value};
use uuid::Uuid;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Why a store operation failed. None of these is the client's doing: they become 500s.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(Arc<sqlx::Error>),
    /// The embedded SQLite database reported an error.
    #[error("database error: {0}")]
    Sqlite(Arc<rusqlite::Error>),
    /// Stored data could not be read back (a bug or a damaged database).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The store is shutting down or its writer stopped.
    #[error("the store is not available")]
    Unavailable,
    /// The operation panicked (a bug); its writes were rolled back.
    #[error("the operation failed unexpectedly and was rolled back")]
    Panicked,
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migration(Arc<sqlx::migrate::MigrateError>),
    /// The store is configured wrongly (the message says how).
    #[error("{0}")]
    Config(String),
    /// A write kept conflicting with concurrent ones and was given up; retrying it later is
    /// safe.
    #[error("the database is too busy with conflicting writes")]
    Busy,
}

impl StoreError {
    /// Whether the store could not be reached or is overloaded (as opposed to a failure of
    /// the operation itself): the client should retry later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable | StoreError::Busy => true,
            StoreError::Database(e) => matches!(
                **e,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
            ),
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(Arc::new(e))
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Identifies one client request for idempotent replay: the partner, its `MS-RequestId`, the
/// method and the canonical route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemKey {
    /// The calling partner.
    pub partner: Uuid,
    /// The client's `MS-RequestId`.
    pub request_id: String,
    /// `POST` or `PUT`.
    pub method: &'static str,
    /// The route with its ids in canonical form.
    pub route: String,
}

/// A stored answer: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReply {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Vec<u8>,
}

/// An idempotency record found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemRecord {
    /// Hash of the request that created the record.
    pub fingerprint: String,
    /// Its answer. (A record's claim and answer commit in one transaction, so a committed record
    /// always has one.)
    pub reply: StoredReply,
}

/// A customer as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    /// Insertion order, used for paging.
    pub seq: i64,
    /// Customer tenant id.
    pub id: Uuid,
    /// The partner that created the customer.
    pub partner_tenant_id: Uuid,
    /// Commerce id.
    pub commerce_id: Uuid,
    /// Lower-cased domain, unique per partner.
    pub domain: String,
    /// Company name.
    pub company_name: Option<String>,
    /// Further company-profile properties.
    pub company_profile: Map<String, Value>,
    /// Billing profile as sent.
    pub billing_profile: Option<Map<String, Value>>,
    /// Id of the billing profile.
    pub billing_profile_id: Uuid,
    /// Creation time.
    pub created_at: Timestamp,
}

/// The current state of one qualification of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualificationRow {
    /// Customer tenant id.
    pub customer_id: Uuid,
    /// The qualification.
    pub qualification: Qualification,
    /// Vetting status (`None` for StateOwnedEntity).
    pub vetting_status: Option<VettingStatus>,
    /// Reason of a denial.
    pub vetting_reason: Option<String>,
    /// Start of the current vetting round.
    pub vetting_create_date: Option<Timestamp>,
    /// Education segment, when given.
    pub education_segment: Option<EducationSegment>,
    /// Website, when given.
    pub website: Option<String>,
    /// The validation code a GCC qualification used.
    pub validation_id: Option<String>,
    /// Vetting round, from 1.
    pub round: i64,
    /// When the qualification was first requested.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// One step in a qualification's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualificationEvent {
    /// Customer tenant id.
    pub customer_id: Uuid,
    /// The qualification.
    pub qualification: Qualification,
    /// Vetting round.
    pub round: i64,
    /// Status before (`None` when the round starts).
    pub from_status: Option<VettingStatus>,
    /// Status after (`None` for StateOwnedEntity).
    pub to_status: Option<VettingStatus>,
    /// Reason given with the step.
    pub reason: Option<String>,
    /// Who caused it (user principal name, application id or `pcq`).
    pub actor: String,
    /// The `MS-RequestId` of the request that caused it.
    pub request_id: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// A partner's GCC validation code as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationCodeRow {
    /// The code.
    pub validation_id: String,
    /// The owning partner.
    pub partner_tenant_id: Uuid,
    /// Organisation name.
    pub organization_name: String,
    /// Creates allowed in all.
    pub max_creates: i64,
    /// Creates left.
    pub remaining_creates: i64,
    /// Version tag.
    pub etag: String,
    /// Issue time.
    pub created_at: Timestamp,
    /// Last change; strictly increases with every change.
    pub updated_at: Timestamp,
}

/// An audit record as stored (Partner Center's AuditRecord).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecordRow {
    /// Insertion order, used for paging.
    pub seq: i64,
    /// Record id.
    pub id: String,
    /// The partner the record belongs to.
    pub partner_tenant_id: Uuid,
    /// The customer acted on.
    pub customer_id: Option<Uuid>,
    /// Its company name at the time.
    pub customer_name: Option<String>,
    /// The acting user.
    pub user_principal_name: Option<String>,
    /// The acting application.
    pub application_id: Option<String>,
    /// `customer`, …
    pub resource_type: String,
    /// JSON of the resource before.
    pub resource_old_value: Option<String>,
    /// JSON of the resource after.
    pub resource_new_value: Option<String>,
    /// `add_customer`, `update_customer_qualification`, …
    pub operation_type: String,
    /// When.
    pub operation_date: Timestamp,
    /// `succeeded`, `failed` or `progress`.
    pub operation_status: String,
    /// Further key-value details.
    pub customized_data: Vec<(String, String)>,
}

/// Which audit records to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// The calling partner (only its records are listed).
    pub partner: Uuid,
    /// Earliest operation date (inclusive).
    pub from: Timestamp,
    /// Latest operation date (exclusive).
    pub until: Timestamp,
    /// Only this customer.
    pub customer_id: Option<Uuid>,
    /// Only this operation type.
    pub operation_type: Option<String>,
    /// Only this resource type.
    pub resource_type: Option<String>,
    /// Only customers whose name contains this (case-insensitive).
    pub customer_name_contains: Option<String>,
    /// Only customers with exactly this name (case-insensitive).
    pub customer_name_is: Option<String>,
    /// Position after which the page starts.
    pub after_seq: i64,
    /// Page size.
    pub limit: i64,
}

/// A pending vetting decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VettingJobRow {
    /// Customer tenant id.
    pub customer_id: Uuid,
    /// The qualification InReview.
    pub qualification: Qualification,
    /// Its vetting round.
    pub round: i64,
    /// The customer's partner.
    pub partner_tenant_id: Uuid,
    /// When the round started.
    pub created_at: Timestamp,
    /// Reads of the customer's qualifications since the round started.
    pub reads: i64,
}

/// A qualification waiting for a decision, with its customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewItemRow {
    /// The qualification.
    pub qualification: QualificationRow,
    /// The customer's partner.
    pub partner_tenant_id: Uuid,
    /// The customer's domain.
    pub domain: String,
    /// The customer's company name.
    pub company_name: Option<String>,
}

/// Which pending qualifications to list for review, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewQuery {
    /// Only this partner's customers.
    pub partner: Option<Uuid>,
    /// Only this qualification.
    pub qualification: Option<Qualification>,
    /// Only rounds started before this time.
    pub started_before: Option<Timestamp>,
    /// Position after which the page starts: (round start, customer, qualification).
    pub after: Option<(Timestamp, Uuid, Qualification)>,
    /// Page size.
    pub limit: i64,
}

/// A partner's webhook registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRegistrationRow {
    /// The partner.
    pub partner_tenant_id: Uuid,
    /// The registration's id.
    pub subscriber_id: Uuid,
    /// Where events go.
    pub webhook_url: String,
    /// The events it receives.
    pub webhook_events: Vec<String>,
    /// Registration time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// State of a webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not delivered yet; more attempts follow.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(raw: &str) -> StoreResult<Self> {
        match raw {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            other => Err(StoreError::Corrupt(format!(
                "invalid delivery status {other:?}"
            ))),
        }
    }
}

/// An event in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Insertion order.
    pub seq: i64,
    /// Delivery id.
    pub id: Uuid,
    /// The partner it belongs to.
    pub partner_tenant_id: Uuid,
    /// `test-created`, `customer-qualification-updated`.
    pub event_name: String,
    /// The exact body to POST (the signature covers these bytes).
    pub payload: Vec<u8>,
    /// Where to POST it.
    pub webhook_url: String,
    /// The correlation id of a validation event.
    pub correlation_id: Option<String>,
    /// Delivery state.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: i64,
    /// When the next attempt is due.
    pub next_attempt_at: Timestamp,
    /// When the event was written.
    pub created_at: Timestamp,
    /// When it was delivered or given up.
    pub finished_at: Option<Timestamp>,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    /// The delivery.
    pub delivery_id: Uuid,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// When.
    pub at: Timestamp,
    /// The receiver's HTTP status, when it answered.
    pub response_code: Option<i64>,
    /// What happened, in words.
    pub response_message: String,
    /// Whether the attempt failed before an answer (refused connection, timeout).
    pub system_error: bool,
}

/// The primitive reads and writes, inside one transaction. Implemented once per backend over
/// the shared SQL.
pub trait Tx: Send {
    /// A value from the key-value `meta` table.
    fn meta_get(&mut self, key: &str) -> impl Future<Output = StoreResult<Option<String>>> + Send;
    /// Stores `value` under `key` unless the key exists; returns the value now stored.
    fn meta_insert_default(
        &mut self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = StoreResult<String>> + Send;

    /// Stores `value` under `key`, replacing any value.
    fn meta_put(&mut self, key: &str, value: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// Removes `key`.
    fn meta_delete(&mut self, key: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// The record holding an idempotency key, if any.
    fn idem_get(
        &mut self,
        key: &IdemKey,
    ) -> impl Future<Output = StoreResult<Option<IdemRecord>>> + Send;
    /// Claims an idempotency key for this transaction: inserts a record without an answer and
    /// returns `None`, or returns the committed record that already holds the key (a concurrent
    /// claimer waits on the key until the holder commits).
    fn idem_claim(
        &mut self,
        key: &IdemKey,
        fingerprint: &str,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Option<IdemRecord>>> + Send;
    /// Stores the answer of a claimed key.
    fn idem_complete(
        &mut self,
        key: &IdemKey,
        reply: &StoredReply,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Inserts many customers, qualifications and qualification events with few statements
    /// (bulk loading). Any conflict fails the whole transaction.
    fn bulk_insert(
        &mut self,
        customers: &[CustomerRow],
        qualifications: &[QualificationRow],
        events: &[QualificationEvent],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Inserts a customer; `false` when the partner already has a customer with its domain.
    fn insert_customer(
        &mut self,
        row: &CustomerRow,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// A customer by id.
    fn customer(
        &mut self,
        id: Uuid,
    ) -> impl Future<Output = StoreResult<Option<CustomerRow>>> + Send;
    /// A customer by id, locked until the transaction ends where writers run concurrently: an op
    /// that decides a write from the customer's state reads it this way first, so that writes
    /// for one customer run one after another.
    fn lock_customer(
        &mut self,
        id: Uuid,
    ) -> impl Future<Output = StoreResult<Option<CustomerRow>>> + Send;
    /// The partner a customer belongs to, if the customer exists.
    fn customer_partner(
        &mut self,
        id: Uuid,
    ) -> impl Future<Output = StoreResult<Option<Uuid>>> + Send;
    /// A partner's customers after `after_seq`, in creation order, at most `limit`.
    fn customers_page(
        &mut self,
        partner: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<CustomerRow>>> + Send;

    /// A customer's current qualifications.
    fn qualifications(
        &mut self,
        customer: Uuid,
    ) -> impl Future<Output = StoreResult<Vec<QualificationRow>>> + Send;
    /// Inserts or replaces the current state of a qualification.
    fn put_qualification(
        &mut self,
        row: &QualificationRow,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Appends a history step.
    fn insert_qualification_event(
        &mut self,
        event: &QualificationEvent,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// A customer's qualification history, oldest first.
    fn qualification_events(
        &mut self,
        customer: Uuid,
    ) -> impl Future<Output = StoreResult<Vec<QualificationEvent>>> + Send;

    /// One of a partner's validation codes, locked like [`Tx::lock_customer`].
    fn lock_validation_code(
        &mut self,
        partner: Uuid,
        validation_id: &str,
    ) -> impl Future<Output = StoreResult<Option<ValidationCodeRow>>> + Send;
    /// A partner's validation codes, oldest first.
    fn validation_codes(
        &mut self,
        partner: Uuid,
    ) -> impl Future<Output = StoreResult<Vec<ValidationCodeRow>>> + Send;
    /// Inserts a code; `false` when the id is taken.
    fn insert_validation_code(
        &mut self,
        row: &ValidationCodeRow,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Moves a qualification from `from` to `to` (with `reason`), only if it is in round
    /// `round` with status `from`; `false` when it is not (someone decided it already).
    #[allow(clippy::too_many_arguments)]
    fn transition_qualification(
        &mut self,
        customer: Uuid,
        qualification: Qualification,
        round: i64,
        from: VettingStatus,
        to: VettingStatus,
        reason: Option<&str>,
        at: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Appends an audit record.
    fn insert_audit_record(
        &mut self,
        row: &AuditRecordRow,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// A page of a partner's audit records, oldest first.
    fn audit_records(
        &mut self,
        query: &AuditQuery,
    ) -> impl Future<Output = StoreResult<Vec<AuditRecordRow>>> + Send;
    /// One of a partner's audit records.
    fn audit_record(
        &mut self,
        partner: Uuid,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<AuditRecordRow>>> + Send;

    /// Inserts or replaces the pending decision of a qualification.
    fn put_vetting_job(
        &mut self,
        row: &VettingJobRow,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Removes the pending decision of one round of a qualification.
    fn delete_vetting_job(
        &mut self,
        customer: Uuid,
        qualification: Qualification,
        round: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Pending decisions started at or before `started_by` and read at least `min_reads`
    /// times, earliest first.
    fn due_vetting_jobs(
        &mut self,
        started_by: Timestamp,
        min_reads: i64,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<VettingJobRow>>> + Send;
    /// Counts a read of a customer's qualifications against its pending decisions; returns
    /// them as they are after the read.
    fn count_vetting_read(
        &mut self,
        customer: Uuid,
    ) -> impl Future<Output = StoreResult<Vec<VettingJobRow>>> + Send;
    /// A page of the qualifications waiting for a decision.
    fn review_queue(
        &mut self,
        query: &ReviewQuery,
    ) -> impl Future<Output = StoreResult<Vec<ReviewItemRow>>> + Send;

    /// A partner's webhook registration.
    fn webhook_registration(
        &mut self,
        partner: Uuid,
    ) -> impl Future<Output = StoreResult<Option<WebhookRegistrationRow>>> + Send;
    /// Inserts or replaces a partner's webhook registration.
    fn put_webhook_registration(
        &mut self,
        row: &WebhookRegistrationRow,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Removes a partner's webhook registration; `false` when there was none.
    fn delete_webhook_registration(
        &mut self,
        partner: Uuid,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Adds an event to the outbox.
    fn insert_delivery(
        &mut self,
        row: &DeliveryRow,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Leases up to `limit` deliveries due at `now` (pcq's clock), at most `per_partner` of any
    /// one partner (the earliest) and none of a partner another claim holds deliveries of, to
    /// the claim `token` until `lease_until` (real time; a lease that ran out by `real_now` may
    /// be taken over).
    fn claim_deliveries(
        &mut self,
        now: Timestamp,
        real_now: Timestamp,
        lease_until: Timestamp,
        token: &str,
        limit: i64,
        per_partner: i64,
    ) -> impl Future<Output = StoreResult<Vec<DeliveryRow>>> + Send;
    /// Records an attempt made under the claim `token` and the delivery's new state, releasing
    /// the lease; the attempt's number is the delivery's count of attempts. `false` (and
    /// nothing recorded) when the claim no longer holds the delivery.
    fn finish_delivery_attempt(
        &mut self,
        attempt: &AttemptRow,
        token: &str,
        status: DeliveryStatus,
        next_attempt_at: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// A partner's deliveries of one validation event.
    fn deliveries_by_correlation(
        &mut self,
        partner: Uuid,
        correlation_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<DeliveryRow>>> + Send;
    /// A partner's most recent deliveries, newest first.
    fn recent_deliveries(
        &mut self,
        partner: Uuid,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<DeliveryRow>>> + Send;
    /// The attempts of a delivery, in order.
    fn delivery_attempts(
        &mut self,
        delivery: Uuid,
    ) -> impl Future<Output = StoreResult<Vec<AttemptRow>>> + Send;

    /// Uses one create of a code if it has any left, setting its new eTag and change time;
    /// `false` when none was left.
    fn consume_validation_code(
        &mut self,
        partner: Uuid,
        validation_id: &str,
        etag: &str,
        at: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}

/// The isolation an [`Op`] needs on a backend whose writers run in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// As if the op ran alone (the default). A conflict with a concurrent op aborts one of
    /// them, and the store runs it again: an op must be safe to run more than once until one
    /// run commits (it is: an aborted run leaves no trace).
    Serializable,
    /// Each statement sees what was committed before it. For ops written so that this is
    /// enough: every decision they make is a conditional `UPDATE` (re-checked by the database
    /// on the row's latest version) or a claim of rows locked by it.
    ReadCommitted,
}

/// A unit of work run in one transaction.
///
/// An `Err` rolls back everything the op wrote; an `Ok` commits it, whatever the value says. So
/// an op that answers a client with a fault must decide that before it writes anything.
pub trait Op: Send + Clone + 'static {
    /// What the op returns.
    type Output: Send + 'static;
    /// How strictly the op must be isolated from concurrent ones where writers run in parallel
    /// (PostgreSQL; SQLite's one writer runs ops one after another anyway).
    const ISOLATION: Isolation = Isolation::Serializable;
    /// Whether the op, run as a read, looks up a few rows by key and never scans: SQLite then runs
    /// it in the calling task (microseconds) instead of on a blocking thread.
    const BRIEF_READ: bool = false;
    /// Runs the op.
    fn run<T: Tx>(self, tx: &mut T) -> impl Future<Output = StoreResult<Self::Output>> + Send;
}

/// The store of a pcq node.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Wraps an opened SQLite store.
    pub fn sqlite(store: SqliteStore) -> Self {
        Store {
            backend: Arc::new(Backend::Sqlite(store)),
        }
    }

    /// Wraps an opened PostgreSQL store.
    pub fn postgres(store: PgStore) -> Self {
        Store {
            backend: Arc::new(Backend::Postgres(store)),
        }
    }

    /// Runs `op` in a write transaction; returns once its commit is durable.
    pub async fn write<O: Op>(&self, op: O) -> StoreResult<O::Output> {
        match &*self.backend {
            Backend::Sqlite(s) => s.write(op).await,
            Backend::Postgres(s) => s.write(op).await,
        }
    }

    /// Runs `op` in a read transaction (a consistent snapshot).
    pub async fn read<O: Op>(&self, op: O) -> StoreResult<O::Output> {
        match &*self.backend {
            Backend::Sqlite(s) => s.read(op).await,
            Backend::Postgres(s) => s.read(op).await,
        }
    }

    /// Finishes pending writes and closes the database.
    pub async fn close(&self) {
        match &*self.backend {
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(s) => s.close().await,
        }
    }

    /// A short name of the backend, for logs and health output.
    pub fn backend_name(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite(s) if s.is_in_memory() => "sqlite-memory",
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Whether several nodes may share this store (so node-local files cannot hold what they
    /// must agree on).
    pub fn is_shared(&self) -> bool {
        matches!(&*self.backend, Backend::Postgres(_))
    }
}
