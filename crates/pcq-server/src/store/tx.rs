//! The transaction an op runs in: the statements of the table modules run through it, on
//! whichever backend opened it, and it collects what must happen once it has committed.

use super::settings::PolicyState;
use super::sql::{FromRow, Statement};
use super::{StoreError, StoreResult, postgres, sqlite};

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
    /// Statements sent to PostgreSQL, each one round trip.
    round_trips: u64,
    /// Inserts held back on PostgreSQL, sent together in one round trip before the next
    /// statement or the commit (see [`Tx::defer`]).
    deferred: Vec<Deferred>,
}

/// An insert held back until the next statement or the commit.
pub(super) struct Deferred {
    /// The insert, owning its values.
    pub statement: Statement<'static>,
    /// Whether it must insert a row: a conflict that inserts none fails the transaction with
    /// [`StoreError::Raced`].
    pub expect_row: bool,
}

impl<'c> Tx<'c> {
    pub(super) fn new(conn: Conn<'c>) -> Self {
        Tx {
            conn,
            effects: Effects::default(),
            writes: 0,
            round_trips: 0,
            deferred: Vec::new(),
        }
    }

    /// What the op asked to happen after the commit.
    pub(super) fn into_effects(self) -> Effects {
        self.effects
    }

    /// How many statements this transaction has sent to PostgreSQL (0 on SQLite): one round
    /// trip each, BEGIN and COMMIT not included.
    pub(super) fn round_trips(&self) -> u64 {
        self.round_trips
    }

    /// How many rows this transaction has changed so far (an insert held back counts as one):
    /// an op that refuses a request must do so before it changes anything.
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

    /// Runs an insert whose result the op does not read, now or (on PostgreSQL) together with
    /// the inserts after it, in one round trip before the transaction's next statement or its
    /// commit. With `expect_row`, an insert that inserts nothing (its conflict clause found
    /// the row) fails the transaction with [`StoreError::Raced`], then or at the commit.
    pub(super) async fn defer(
        &mut self,
        statement: Statement<'_>,
        expect_row: bool,
    ) -> StoreResult<()> {
        let text = statement.sql.text();
        debug_assert!(
            text.sqlite.starts_with("INSERT INTO ") && !text.sqlite.contains("RETURNING"),
            "only plain inserts are held back: {}",
            text.sqlite
        );
        match &mut self.conn {
            Conn::Sqlite(conn) => {
                let inserted = conn.execute(&statement)?;
                self.writes += inserted;
                if expect_row && inserted == 0 {
                    return Err(StoreError::Raced);
                }
            }
            Conn::Postgres(_) => {
                // Two inserts into one table are sent apart: they might touch one row, which
                // one statement must not do twice.
                let table = postgres::insert_table(text);
                if self
                    .deferred
                    .iter()
                    .any(|d| postgres::insert_table(d.statement.sql.text()) == table)
                {
                    self.flush().await?;
                }
                self.writes += 1;
                self.deferred.push(Deferred {
                    statement: statement.into_owned(),
                    expect_row,
                });
            }
        }
        Ok(())
    }

    /// Sends the inserts held back, in one round trip.
    pub(super) async fn flush(&mut self) -> StoreResult<()> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let deferred = std::mem::take(&mut self.deferred);
        match &mut self.conn {
            Conn::Sqlite(_) => Err(StoreError::Corrupt(
                "SQLite holds back no statement".to_owned(),
            )),
            Conn::Postgres(conn) => {
                self.round_trips += 1;
                postgres::execute_deferred(conn, &deferred).await
            }
        }
    }

    /// Every row the statement returns.
    pub(super) async fn fetch_all<T: FromRow + Send>(
        &mut self,
        statement: Statement<'_>,
    ) -> StoreResult<Vec<T>> {
        self.flush().await?;
        let rows = match &mut self.conn {
            Conn::Sqlite(conn) => conn.fetch_all(&statement),
            Conn::Postgres(conn) => {
                self.round_trips += 1;
                postgres::fetch_all(conn, &statement).await
            }
        }?;
        self.count_returned(&statement, rows.len());
        Ok(rows)
    }

    /// The first row the statement returns, if any.
    pub(super) async fn fetch_optional<T: FromRow + Send>(
        &mut self,
        statement: Statement<'_>,
    ) -> StoreResult<Option<T>> {
        self.flush().await?;
        let row = match &mut self.conn {
            Conn::Sqlite(conn) => conn.fetch_optional(&statement),
            Conn::Postgres(conn) => {
                self.round_trips += 1;
                postgres::fetch_optional(conn, &statement).await
            }
        }?;
        self.count_returned(&statement, usize::from(row.is_some()));
        Ok(row)
    }

    /// Runs the statement; returns how many rows it changed.
    pub(super) async fn execute(&mut self, statement: Statement<'_>) -> StoreResult<u64> {
        self.flush().await?;
        let changed = match &mut self.conn {
            Conn::Sqlite(conn) => conn.execute(&statement),
            Conn::Postgres(conn) => {
                self.round_trips += 1;
                postgres::execute(conn, &statement).await
            }
        }?;
        self.writes += changed;
        Ok(changed)
    }
}
