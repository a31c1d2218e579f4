//! The transaction an op runs in: the statements of the table modules run through it, on
//! whichever backend opened it, and it collects what must happen once it has committed.

use super::settings::PolicyState;
use super::sql::{FromRow, Statement};
use super::{StoreResult, postgres, sqlite};

/// What a committed transaction leaves to do, outside the database: applied by the write
/// pipeline once the commit is durable, and never for a transaction that rolled back.
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use]
pub struct Effects {
    /// New work may be due: a vetting decision to make, a webhook event to deliver.
    pub wake_worker: bool,
    /// The sandbox clock moved to this offset (microseconds ahead of the system's time).
    pub clock_offset: Option<i64>,
    /// The run-time vetting policy changed to this stored state.
    pub policy: Option<PolicyState>,
    /// The injected faults changed: the node reads them again.
    pub faults_changed: bool,
}

/// The connection a transaction runs on.
pub(super) enum Conn<'c> {
    Sqlite(&'c mut sqlite::Conn),
    Postgres(&'c mut sqlx::PgConnection),
}

/// One open transaction of either backend.
pub struct Tx<'c> {
    conn: Conn<'c>,
    effects: Effects,
    writes: u64,
}

impl<'c> Tx<'c> {
    pub(super) fn new(conn: Conn<'c>) -> Self {
        Tx {
            conn,
            effects: Effects::default(),
            writes: 0,
        }
    }

    /// What the op asked to happen after the commit.
    pub(super) fn into_effects(self) -> Effects {
        self.effects
    }

    /// How many rows this transaction has changed so far: an op that refuses a request must do
    /// so before it changes anything.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// After the commit, wake the worker: new work may be due.
    pub fn wake_worker(&mut self) {
        self.effects.wake_worker = true;
    }

    /// After the commit, move this node's clock to the stored offset (and wake the worker, for
    /// which decisions and retries may now be due).
    pub fn clock_moved(&mut self, offset: i64) {
        self.effects.clock_offset = Some(offset);
        self.effects.wake_worker = true;
    }

    /// After the commit, take up the new run-time vetting policy (and wake the worker).
    pub fn policy_changed(&mut self, state: PolicyState) {
        self.effects.policy = Some(state);
        self.effects.wake_worker = true;
    }

    /// After the commit, read the injected faults again (they changed).
    pub fn faults_changed_effect(&mut self) {
        self.effects.faults_changed = true;
    }

    /// Counts the rows a statement returned as changed, when it is a write (`RETURNING`).
    fn count_returned(&mut self, statement: &Statement<'_>, rows: usize) {
        if statement.sql.text().writes {
            self.writes += rows as u64;
        }
    }

    /// Every row the statement returns.
    pub(super) async fn fetch_all<T: FromRow + Send>(
        &mut self,
        statement: Statement<'_>,
    ) -> StoreResult<Vec<T>> {
        let rows = match &mut self.conn {
            Conn::Sqlite(conn) => conn.fetch_all(&statement),
            Conn::Postgres(conn) => postgres::fetch_all(conn, &statement).await,
        }?;
        self.count_returned(&statement, rows.len());
        Ok(rows)
    }

    /// The first row the statement returns, if any.
    pub(super) async fn fetch_optional<T: FromRow + Send>(
        &mut self,
        statement: Statement<'_>,
    ) -> StoreResult<Option<T>> {
        let row = match &mut self.conn {
            Conn::Sqlite(conn) => conn.fetch_optional(&statement),
            Conn::Postgres(conn) => postgres::fetch_optional(conn, &statement).await,
        }?;
        self.count_returned(&statement, usize::from(row.is_some()));
        Ok(row)
    }

    /// Runs the statement; returns how many rows it changed.
    pub(super) async fn execute(&mut self, statement: Statement<'_>) -> StoreResult<u64> {
        let changed = match &mut self.conn {
            Conn::Sqlite(conn) => conn.execute(&statement),
            Conn::Postgres(conn) => postgres::execute(conn, &statement).await,
        }?;
        self.writes += changed;
        Ok(changed)
    }
}
