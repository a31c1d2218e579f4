//! Storage: the one boundary between pcq's logic and its database.
//!
//! Each group of tables has one module, holding its row types, their column lists (declared
//! once, with [`sql::table!`]) and its statements, as methods of the transaction type [`Tx`]:
//! customers, qualifications and their history, validation codes, vetting jobs, webhooks and
//! the outbox, audit records, idempotency records, settings and keys. The SQL is written once
//! for both backends ([`sql`]); a backend only decides how a statement runs and how
//! transactions are opened, batched and committed.
//!
//! Logic is written as [`Op`]s, each run in one transaction: [`Store::write`] in a write
//! transaction whose commit is on disk before the op's result is returned, [`Store::read`] in a
//! read snapshot. Reads of a partner's data take the partner (or a [`Scope`]) and answer the
//! Partner Center fault (404, 403) for what the partner may not see, so no caller checks
//! ownership by hand.

pub mod audit;
pub mod customers;
pub mod faults;
pub mod idempotency;
#[cfg(test)]
mod plans;
pub mod postgres;
pub mod qualifications;
pub mod reset;
pub mod retention;
#[cfg(test)]
mod schema_check;
pub mod settings;
pub mod sql;
pub mod sqlite;
pub mod state;
mod tx;
pub mod validation_codes;
pub mod vetting_jobs;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;

use uuid::Uuid;

pub use audit::{AuditQuery, AuditRecordRow};
pub use customers::CustomerRow;
pub use faults::FaultRow;
pub use idempotency::{IdemKey, IdemRecord, Reply};
pub use postgres::PgStore;
pub use qualifications::{QualificationEvent, QualificationRow, ReviewItemRow, ReviewQuery};
pub use settings::PolicyState;
pub use sqlite::SqliteStore;
pub use tx::{Effects, Tx};
pub use validation_codes::ValidationCodeRow;
pub use vetting_jobs::VettingJobRow;
pub use webhooks::{
    AttemptOutcome, AttemptRow, ClaimQuery, DeliveryRow, DeliveryStatus, DeliveryWithAttempts,
    WebhookRegistrationRow,
};

use crate::error::Error;

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
    /// A concurrent transaction stored what this one was about to (the answer of a request
    /// under the same `MS-RequestId`): this one rolls back and runs again.
    #[error("a concurrent write under the same key committed first")]
    Raced,
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

/// Whose data a read may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This partner's own: another partner's customer is refused with 403 (as Partner Center
    /// refuses a customer the partner has no relationship with), a missing one with 404.
    Partner(Uuid),
    /// Any partner's: reviewers, and pcq's own work (the worker, seeds).
    AnyPartner,
}

/// A unit of work run in one transaction.
///
/// An `Err` rolls back everything the op wrote; an `Ok` commits it. A fault (an
/// [`Error::Fault`]) answers the client: an op decides it before it writes anything, so that a
/// refused request that is recorded for idempotent replay leaves nothing else behind (the
/// pipeline checks this, see [`Tx::writes`]).
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
    fn run(self, tx: &mut Tx<'_>) -> impl Future<Output = Result<Self::Output, Error>> + Send;
}

/// What a committed write returns: the op's output and what must happen now that it is
/// durable.
#[derive(Debug)]
#[must_use]
pub struct Committed<T> {
    /// The op's output.
    pub output: T,
    /// What the op asked to happen after its commit.
    pub effects: Effects,
}

/// The store's metrics handles (no-ops until the node hands real ones over).
#[derive(Clone)]
pub struct StoreMeters {
    /// Writes committed in one transaction.
    pub batch_size: metrics::Histogram,
    /// COMMIT time.
    pub commit_seconds: metrics::Histogram,
    /// Time a write waits for the writer (SQLite) or a connection (PostgreSQL).
    pub queued_seconds: metrics::Histogram,
    /// Read transaction time.
    pub read_seconds: metrics::Histogram,
    /// PostgreSQL writes run again after a conflict.
    pub conflict_reruns: metrics::Counter,
    /// Round trips to PostgreSQL of write transactions, BEGIN and COMMIT included.
    pub round_trips: metrics::Counter,
}

impl Default for StoreMeters {
    fn default() -> Self {
        StoreMeters {
            batch_size: metrics::Histogram::noop(),
            commit_seconds: metrics::Histogram::noop(),
            queued_seconds: metrics::Histogram::noop(),
            read_seconds: metrics::Histogram::noop(),
            conflict_reruns: metrics::Counter::noop(),
            round_trips: metrics::Counter::noop(),
        }
    }
}

/// Where a store finds its metrics handles once the node sets them.
pub(crate) type MetersSlot = Arc<std::sync::OnceLock<StoreMeters>>;

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

    /// Runs `op` in a write transaction; returns once its commit is durable, with the effects
    /// the op left to apply.
    pub async fn write<O: Op>(&self, op: O) -> Result<Committed<O::Output>, Error> {
        match &*self.backend {
            Backend::Sqlite(s) => s.write(op).await,
            Backend::Postgres(s) => s.write(op).await,
        }
    }

    /// Runs `op` in a read transaction (a consistent snapshot).
    pub async fn read<O: Op>(&self, op: O) -> Result<O::Output, Error> {
        let meters = self.meters_slot().get();
        let started = meters.map(|_| std::time::Instant::now());
        let result = match &*self.backend {
            Backend::Sqlite(s) => s.read(op).await,
            Backend::Postgres(s) => s.read(op).await,
        };
        if let (Some(meters), Some(started)) = (meters, started) {
            meters.read_seconds.record(started.elapsed().as_secs_f64());
        }
        result
    }

    fn meters_slot(&self) -> &MetersSlot {
        match &*self.backend {
            Backend::Sqlite(s) => &s.meters,
            Backend::Postgres(s) => &s.meters,
        }
    }

    /// Counts the store's work in `meters` from now on (the first call only counts).
    pub fn observe(&self, meters: StoreMeters) {
        let _ = self.meters_slot().set(meters);
    }

    /// PostgreSQL's pool: its connections and the idle ones; `None` for SQLite.
    pub fn pool_state(&self) -> Option<(u32, usize)> {
        match &*self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(s) => Some(s.pool_state()),
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
