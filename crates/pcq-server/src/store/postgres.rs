//! The PostgreSQL backend, for several pcq nodes on one database.
//!
//! Every write op runs in its own transaction on a pooled connection, at the isolation it asks
//! for ([`Isolation`]): `SERIALIZABLE` by default, so that ops written for SQLite's one writer
//! keep their meaning when nodes write at the same time; the database aborts one of two
//! conflicting transactions, and the store runs the aborted op again (with a short, growing,
//! jittered pause) until it commits or the retries run out. The worker's claims run at
//! `READ COMMITTED` and take rows with `FOR UPDATE SKIP LOCKED` or conditional updates, so
//! workers on different nodes never take the same job. Reads run in a `REPEATABLE READ READ ONLY`
//! snapshot. With `synchronous_commit` on (PostgreSQL's default) a commit that returned is
//! durable.
//!
//! Migrations run at start under PostgreSQL's advisory lock, so nodes starting together apply
//! them once; `pcq migrate` applies them without serving.

use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::time::Duration;

use futures_util::FutureExt;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use super::sql::{Arg, FromRow, Row, Sql, Statement, Text};
use super::tx::{Conn, Deferred};
use super::{Committed, Isolation, Op, StoreError, StoreResult, Tx};
use crate::error::Error;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// The statement's PostgreSQL text with its values bound in order (`$1` first), ids as text.
///
/// A page of a list (a statement with a `LIMIT`) is planned for its values every time: a
/// prepared statement run often gets one generic plan, made without them, and for a page that
/// starts at a position that plan may walk the wrong index of a large table.
fn query<'q>(statement: &'q Statement<'q>) -> PgQuery<'q> {
    let mut query = match &statement.sql {
        Sql::Static(text) => sqlx::query(text.postgres.as_str()),
        Sql::Built(text) => sqlx::query(sqlx::AssertSqlSafe(text.postgres.clone())),
    };
    if statement.sql.text().paged {
        query = query.persistent(false);
    }
    for arg in &statement.args {
        query = match arg {
            Arg::Int(v) => query.bind(*v),
            Arg::Text(v) => query.bind(*v),
            Arg::String(v) => query.bind(v.as_deref()),
            Arg::Uuid(v) => query.bind(v.map(|id| id.to_string())),
            Arg::Blob(v) => query.bind(*v),
            Arg::Bytes(v) => query.bind(v.as_deref()),
        };
    }
    query
}

impl Row for PgRow {
    fn column_name(&self, index: usize) -> &str {
        use sqlx::{Column, Row};
        self.columns().get(index).map_or("?", |c| c.name())
    }

    fn int(&self, index: usize) -> StoreResult<Option<i64>> {
        Ok(sqlx::Row::try_get(self, index)?)
    }

    fn text(&self, index: usize) -> StoreResult<Option<&str>> {
        Ok(sqlx::Row::try_get(self, index)?)
    }

    fn bytes(&self, index: usize) -> StoreResult<Option<&[u8]>> {
        Ok(sqlx::Row::try_get(self, index)?)
    }
}

/// Every row the statement returns.
pub(super) async fn fetch_all<T: FromRow>(
    conn: &mut sqlx::PgConnection,
    statement: &Statement<'_>,
) -> StoreResult<Vec<T>> {
    let rows = query(statement).fetch_all(&mut *conn).await?;
    rows.iter().map(|row| T::from_row(row)).collect()
}

/// The first row the statement returns, if any.
pub(super) async fn fetch_optional<T: FromRow>(
    conn: &mut sqlx::PgConnection,
    statement: &Statement<'_>,
) -> StoreResult<Option<T>> {
    let row = query(statement).fetch_optional(&mut *conn).await?;
    row.as_ref().map(|row| T::from_row(row)).transpose()
}

/// Runs the statement; returns how many rows it changed.
pub(super) async fn execute(
    conn: &mut sqlx::PgConnection,
    statement: &Statement<'_>,
) -> StoreResult<u64> {
    Ok(query(statement).execute(&mut *conn).await?.rows_affected())
}

/// How long a pooled connection may sit idle before it is checked before use.
const IDLE_BEFORE_CHECK: Duration = Duration::from_secs(5);

/// The table an `INSERT INTO table …` writes to.
pub(super) fn insert_table(text: &Text) -> &str {
    text.postgres
        .strip_prefix("INSERT INTO ")
        .and_then(|rest| rest.split([' ', '(']).next())
        .unwrap_or("")
}

/// `text`'s PostgreSQL form with its parameters numbered from `offset + 1`.
fn renumbered(text: &str, offset: usize, out: &mut String) {
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(n) = rest[..digits].parse::<usize>() {
            let _ = write!(out, "{}", n + offset);
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
}

/// Runs held-back inserts in one round trip: one alone as it is, several as one statement of
/// data-modifying common table expressions (each into a table of its own, so no two touch one
/// row) that answers how many rows each inserted. An insert that must insert a row and did not
/// fails with [`StoreError::Raced`].
pub(super) async fn execute_deferred(
    conn: &mut sqlx::PgConnection,
    deferred: &[Deferred],
) -> StoreResult<()> {
    let inserted: Vec<i64> = if let [one] = deferred {
        vec![execute(conn, &one.statement).await? as i64]
    } else {
        let mut sql = String::from("WITH ");
        let mut offset = 0;
        for (i, d) in deferred.iter().enumerate() {
            let text = d.statement.sql.text();
            let _ = write!(sql, "{}d{i} AS (", if i == 0 { "" } else { ", " });
            renumbered(&text.postgres, offset, &mut sql);
            sql.push_str(" RETURNING 1)");
            offset += text.params;
        }
        sql.push_str(" SELECT ");
        for i in 0..deferred.len() {
            let _ = write!(
                sql,
                "{}(SELECT count(*) FROM d{i})",
                if i == 0 { "" } else { ", " }
            );
        }
        let statement = Statement {
            sql: Sql::Built(Text {
                sqlite: String::new(),
                postgres: sql,
                params: offset,
                writes: true,
                paged: false,
            }),
            args: deferred
                .iter()
                .flat_map(|d| d.statement.args.iter().cloned())
                .collect(),
        };
        let row = query(&statement).fetch_one(&mut *conn).await?;
        (0..deferred.len())
            .map(|i| sqlx::Row::try_get::<i64, _>(&row, i))
            .collect::<Result<_, _>>()?
    };
    if deferred
        .iter()
        .zip(&inserted)
        .any(|(d, n)| d.expect_row && *n == 0)
    {
        return Err(StoreError::Raced);
    }
    Ok(())
}

/// How to reach and use the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database?...`
    pub url: String,
    /// Most connections this node opens.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long a request waits for a free connection.
    pub acquire_timeout: Duration,
    /// How long one statement may run before the database cancels it.
    pub statement_timeout: Duration,
    /// How often an op aborted by a conflict with a concurrent one is run again.
    pub conflict_retries: u32,
}

/// The PostgreSQL store: a connection pool.
pub struct PgStore {
    pool: PgPool,
    conflict_retries: u32,
    pub(super) meters: super::MetersSlot,
}

/// Parses a database URL, with a message that names what is wrong (and never the password).
pub fn parse_url(url: &str) -> Result<PgConnectOptions, String> {
    let scheme = url.split("://").next().unwrap_or_default();
    if !(scheme == "postgres" || scheme == "postgresql") || !url.contains("://") {
        return Err(format!(
            "the database URL must start with postgres:// (for example \
             postgres://pcq@db.example.com:5432/pcq), not {:?}",
            redact_url(url)
        ));
    }
    PgConnectOptions::from_str(url)
        .map_err(|e| format!("the database URL {} is not valid: {e}", redact_url(url)))
}

/// The URL with its password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let Some((credentials, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = match credentials.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => credentials.to_owned(),
    };
    format!("{scheme}://{user}@{host}{tail}")
}

fn connect_options(options: &PgOptions) -> StoreResult<PgConnectOptions> {
    let millis = options.statement_timeout.as_millis().max(1);
    let parsed = parse_url(&options.url).map_err(StoreError::Config)?;
    // The name the URL (`?application_name=`) or PGAPPNAME gives, so that an operator can tell
    // nodes apart in pg_stat_activity; "pcq" otherwise.
    let parsed = match parsed.get_application_name() {
        Some(_) => parsed,
        None => parsed.application_name("pcq"),
    };
    Ok(parsed.options([
        ("statement_timeout", millis.to_string()),
        // A connection left inside a transaction by a stuck node does not hold locks for
        // long.
        (
            "idle_in_transaction_session_timeout",
            (millis * 6).to_string(),
        ),
    ]))
}

/// Whether an error is a conflict with a concurrent transaction, after which the op can simply
/// run again.
fn is_conflict(e: &Error) -> bool {
    let e = match e {
        Error::Store(StoreError::Raced) => return true,
        Error::Store(StoreError::Database(e)) => e,
        _ => return false,
    };
    let Some(db) = e.as_database_error() else {
        return false;
    };
    // serialization_failure, deadlock_detected
    matches!(db.code().as_deref(), Some("40001" | "40P01"))
}

/// The pause before running an aborted op again: doubling from 2 ms to at most 256 ms, with
/// jitter so that the ops that collided do not collide again.
fn conflict_pause(attempt: u32) -> Duration {
    let ceiling = 2u64 << attempt.min(7);
    let jitter = u64::from(getrandom::u32().unwrap_or(0)) % ceiling;
    Duration::from_millis(ceiling / 2 + jitter / 2)
}

/// Applies every migration on one connection (whose search path names the schema).
#[cfg(test)]
pub(super) async fn migrate_connection(conn: &mut sqlx::PgConnection) {
    MIGRATOR.run(conn).await.expect("the migrations apply");
}

impl PgStore {
    /// Connects (without migrating). One connection is opened first, so that a database that
    /// cannot be reached is reported with the reason (refused, unknown host, authentication,
    /// no such database) rather than as a pool timeout.
    pub async fn connect(options: &PgOptions) -> StoreResult<Self> {
        let connect = connect_options(options)?;
        let first = tokio::time::timeout(
            options.acquire_timeout,
            sqlx::PgConnection::connect_with(&connect),
        )
        .await
        .map_err(|_| {
            StoreError::Config(format!(
                "no answer from the database server within {} ms",
                options.acquire_timeout.as_millis()
            ))
        })?
        .map_err(|e| match e {
            sqlx::Error::Io(io) => {
                StoreError::Config(format!("cannot reach the database server: {io}"))
            }
            sqlx::Error::Database(db) => StoreError::Config(db.message().to_owned()),
            other => StoreError::from(other),
        })?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(options.min_connections.min(options.max_connections))
            .acquire_timeout(options.acquire_timeout)
            // A connection is checked before use only when it has been idle a while (the
            // server may have closed it since): a check before every use would cost each
            // request one more round trip.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_CHECK {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(connect);
        Ok(PgStore {
            pool,
            conflict_retries: options.conflict_retries,
            meters: super::MetersSlot::default(),
        })
    }

    /// Connects and applies the migrations this version of pcq needs.
    pub async fn open(options: &PgOptions) -> StoreResult<Self> {
        let store = Self::connect(options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations under the database's advisory lock; returns how many were
    /// applied.
    pub async fn migrate(&self) -> StoreResult<usize> {
        let before = self.applied_migrations().await?;
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(std::sync::Arc::new(e)))?;
        Ok(self.applied_migrations().await?.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> StoreResult<usize> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await?;
        if !exists {
            return Ok(0);
        }
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Runs `op` in a write transaction at the isolation it asks for; returns once the commit
    /// is durable. An op aborted by a conflict with a concurrent transaction runs again.
    pub async fn write<O: Op>(&self, op: O) -> Result<Committed<O::Output>, Error> {
        let mut attempt = 0;
        loop {
            match self.write_once(op.clone()).await {
                Err(e) if is_conflict(&e) && attempt < self.conflict_retries => {
                    attempt += 1;
                    if let Some(meters) = self.meters.get() {
                        meters.conflict_reruns.increment(1);
                    }
                    tokio::time::sleep(conflict_pause(attempt)).await;
                }
                Err(e) if is_conflict(&e) => {
                    tracing::warn!(
                        attempts = attempt + 1,
                        "a write kept conflicting with others"
                    );
                    return Err(StoreError::Busy.into());
                }
                other => return other,
            }
        }
    }

    async fn write_once<O: Op>(&self, op: O) -> Result<Committed<O::Output>, Error> {
        let begin = match O::ISOLATION {
            Isolation::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
            Isolation::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
        };
        let meters = self.meters.get();
        let queued = meters.map(|_| std::time::Instant::now());
        let mut tx = self
            .pool
            .begin_with(begin)
            .await
            .map_err(StoreError::from)?;
        if let (Some(meters), Some(queued)) = (meters, queued) {
            meters.queued_seconds.record(queued.elapsed().as_secs_f64());
        }
        let mut run = Tx::new(Conn::Postgres(&mut tx));
        let result = match AssertUnwindSafe(op.run(&mut run)).catch_unwind().await {
            Ok(Ok(output)) => run.flush().await.map(|()| output).map_err(Error::from),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                tracing::error!("a write operation panicked; its changes are rolled back");
                Err(StoreError::Panicked.into())
            }
        };
        // BEGIN, the op's statements, and COMMIT or ROLLBACK.
        let round_trips = run.round_trips() + 2;
        let effects = run.into_effects();
        if let Some(meters) = meters {
            meters.round_trips.increment(round_trips);
        }
        match result {
            Ok(output) => {
                let committing = meters.map(|_| std::time::Instant::now());
                tx.commit().await.map_err(StoreError::from)?;
                if let (Some(meters), Some(committing)) = (meters, committing) {
                    meters.batch_size.record(1.0);
                    meters
                        .commit_seconds
                        .record(committing.elapsed().as_secs_f64());
                }
                Ok(Committed { output, effects })
            }
            Err(e) => {
                // Dropping the transaction rolls it back too; rolling back here returns the
                // connection to the pool at once.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// Runs `op` in a read-only snapshot.
    pub async fn read<O: Op>(&self, op: O) -> Result<O::Output, Error> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(StoreError::from)?;
        let mut run = Tx::new(Conn::Postgres(&mut tx));
        let result = match AssertUnwindSafe(op.run(&mut run)).catch_unwind().await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Panicked.into()),
        };
        drop(run);
        let _ = tx.rollback().await;
        result
    }

    /// The pool's connections and the idle ones.
    pub fn pool_state(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Closes every connection (waiting for the ones in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("postgres://pcq:s3cret@db:5432/pcq?sslmode=require"),
            "postgres://pcq:***@db:5432/pcq?sslmode=require"
        );
        assert_eq!(redact_url("postgres://pcq@db/pcq"), "postgres://pcq@db/pcq");
        assert_eq!(redact_url("postgres://db/pcq"), "postgres://db/pcq");
        assert_eq!(
            redact_url("postgresql://u:p@w@host/db"),
            "postgresql://u:***@host/db"
        );
        let e = parse_url("mysql://u:hunter2@db/pcq").unwrap_err();
        assert!(e.contains("postgres://") && !e.contains("hunter2"), "{e}");
        assert!(parse_url("postgres://pcq@127.0.0.1:5432/pcq").is_ok());
    }

    #[test]
    fn conflict_pauses_grow_and_stay_short() {
        for attempt in 1..50 {
            let pause = conflict_pause(attempt);
            assert!(pause <= Duration::from_millis(256), "{attempt}: {pause:?}");
            assert!(pause >= Duration::from_millis(1), "{attempt}: {pause:?}");
        }
    }
}
