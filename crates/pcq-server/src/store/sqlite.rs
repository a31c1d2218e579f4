//! The embedded SQLite backend.
//!
//! Durability: WAL with `synchronous=FULL`, so a committed transaction is on disk. Throughput:
//! group commit. One writer task owns the only write connection; write ops queue up while it
//! commits, and it runs everything that queued in one transaction, each op inside its own
//! savepoint (an op that fails rolls back alone). Every op's caller is answered only after the
//! commit that holds its writes returned. Reads run on a separate pool and never wait for the
//! writer. An in-memory database has a single connection, so its reads go through the writer.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Executor};
use tokio::sync::{mpsc, oneshot, watch};

use super::sql::impl_tx;
use super::{Op, StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl_tx!(
    sqlx::sqlite::SqliteConnection,
    sqlx::sqlite::SqliteRow,
    skip_locked = "",
    numbered_params = false
);

/// Where and how to open the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Database file; `None` keeps the database in memory.
    pub path: Option<PathBuf>,
    /// Read connections (file databases only).
    pub readers: u32,
    /// Most ops committed in one transaction.
    pub max_batch: usize,
    /// Page cache of the writer connection in MiB (each reader gets a quarter); 0 keeps
    /// SQLite's default (2 MiB). A large store needs a cache that holds the pages one group
    /// commit changes.
    pub cache_mib: u32,
}

/// The SQLite store: one writer task, a pool of readers.
pub struct SqliteStore {
    jobs: mpsc::Sender<Message>,
    readers: Option<SqlitePool>,
    writer_done: watch::Receiver<bool>,
}

enum Message {
    Job(Box<dyn Job>),
    Shutdown,
}

/// An op with its reply channel, with the output type erased so the writer can queue any op.
trait Job: Send {
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Finished>;
    fn fail(self: Box<Self>, err: StoreError);
}

/// An op that ran: whether it succeeded, and how to answer its caller once the commit is known.
struct Finished {
    ok: bool,
    deliver: Box<dyn FnOnce(Option<StoreError>) + Send>,
}

struct OpJob<O: Op> {
    op: O,
    reply: oneshot::Sender<StoreResult<O::Output>>,
}

impl<O: Op> Job for OpJob<O> {
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Finished> {
        let OpJob { op, reply } = *self;
        Box::pin(async move {
            let result = match AssertUnwindSafe(op.run(conn)).catch_unwind().await {
                Ok(result) => result,
                Err(_) => {
                    tracing::error!("a write operation panicked; its changes are rolled back");
                    Err(StoreError::Panicked)
                }
            };
            Finished {
                ok: result.is_ok(),
                deliver: Box::new(move |commit_error| {
                    let _ = reply.send(match commit_error {
                        Some(e) => Err(e),
                        None => result,
                    });
                }),
            }
        })
    }

    fn fail(self: Box<Self>, err: StoreError) {
        let _ = self.reply.send(Err(err));
    }
}

fn connect_options(path: Option<&PathBuf>) -> StoreResult<SqliteConnectOptions> {
    Ok(match path {
        Some(path) => SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal),
        None => SqliteConnectOptions::from_str("sqlite::memory:")?,
    }
    .synchronous(SqliteSynchronous::Full)
    .foreign_keys(true)
    .busy_timeout(Duration::from_secs(10)))
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database, and starts the writer.
    pub async fn open(options: SqliteOptions) -> StoreResult<Self> {
        let mut base = connect_options(options.path.as_ref())?;
        let mut writer_options = base.clone().create_if_missing(true);
        if options.cache_mib > 0 {
            // A negative cache_size is in KiB.
            let kib = i64::from(options.cache_mib) * 1024;
            writer_options = writer_options.pragma("cache_size", format!("-{kib}"));
            base = base.pragma("cache_size", format!("-{}", (kib / 4).max(2048)));
        }
        let mut conn = SqliteConnection::connect_with(&writer_options).await?;
        MIGRATOR
            .run(&mut conn)
            .await
            .map_err(|e| StoreError::Migration(Arc::new(e)))?;
        lower_audit_names(&mut conn).await?;

        let readers = match options.path {
            Some(_) => Some(
                SqlitePoolOptions::new()
                    .max_connections(options.readers.max(1))
                    .min_connections(1)
                    .connect_with(base)
                    .await?,
            ),
            None => None,
        };

        let (jobs, rx) = mpsc::channel(4096);
        let (done_tx, writer_done) = watch::channel(false);
        let writer = Writer {
            conn,
            // An in-memory database lives in its one connection: it cannot be reopened.
            reopen: readers.is_some().then_some(writer_options),
            max_batch: options.max_batch.max(1),
        };
        tokio::spawn(async move {
            writer.run(rx).await;
            let _ = done_tx.send(true);
        });
        Ok(SqliteStore {
            jobs,
            readers,
            writer_done,
        })
    }

    /// Whether the database lives in memory.
    pub fn is_in_memory(&self) -> bool {
        self.readers.is_none()
    }

    /// Queues `op` for the writer; returns after the commit that holds it.
    pub async fn write<O: Op>(&self, op: O) -> StoreResult<O::Output> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Message::Job(Box::new(OpJob { op, reply })))
            .await
            .map_err(|_| StoreError::Unavailable)?;
        answer.await.map_err(|_| StoreError::Unavailable)?
    }

    /// Runs `op` in a read transaction on a reader connection.
    pub async fn read<O: Op>(&self, op: O) -> StoreResult<O::Output> {
        let Some(pool) = &self.readers else {
            return self.write(op).await;
        };
        let mut tx = pool.begin().await?;
        let out = op.run(&mut *tx).await;
        tx.rollback().await?;
        out
    }

    /// Lets the writer finish what was queued before, then closes every connection. Returns
    /// once the writer has stopped, however many callers close at once.
    pub async fn close(&self) {
        if let Some(pool) = &self.readers {
            pool.close().await;
        }
        let _ = self.jobs.send(Message::Shutdown).await;
        let mut done = self.writer_done.clone();
        let _ = done.wait_for(|stopped| *stopped).await;
    }
}

/// Fills `customer_name_lower` for audit records written before the column existed whose names
/// are not ASCII (migration 0003 lower-cases the ASCII ones). Finds nothing on later starts.
async fn lower_audit_names(conn: &mut SqliteConnection) -> StoreResult<()> {
    let unlowered: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, customer_name FROM audit_records \
         WHERE customer_name IS NOT NULL AND customer_name_lower IS NULL",
    )
    .fetch_all(&mut *conn)
    .await?;
    if unlowered.is_empty() {
        return Ok(());
    }
    let mut tx = conn.begin().await?;
    for (seq, name) in unlowered {
        sqlx::query("UPDATE audit_records SET customer_name_lower = $1 WHERE seq = $2")
            .bind(name.to_lowercase())
            .bind(seq)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The writer task's state: the one write connection.
struct Writer {
    conn: SqliteConnection,
    /// How to open a fresh connection if this one is left unusable.
    reopen: Option<SqliteConnectOptions>,
    max_batch: usize,
}

impl Writer {
    /// Commits batches until shutdown. Ops left over from a transaction that broke run first in
    /// the next one.
    async fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        let mut carried: VecDeque<Box<dyn Job>> = VecDeque::new();
        let mut shutdown = false;
        loop {
            let mut batch: Vec<Box<dyn Job>> = carried.drain(..).collect();
            if batch.is_empty() {
                if shutdown {
                    break;
                }
                match rx.recv().await {
                    Some(Message::Job(job)) => batch.push(job),
                    Some(Message::Shutdown) | None => break,
                }
            }
            while !shutdown && batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(Message::Job(job)) => batch.push(job),
                    Ok(Message::Shutdown) => shutdown = true,
                    Err(_) => break,
                }
            }
            carried = self.commit_batch(batch).await;
        }
        if let Err(e) = self.conn.close().await {
            tracing::warn!(error = %e, "closing the SQLite writer connection failed");
        }
    }

    /// Runs a batch in one transaction, each op in a savepoint, and answers the ops after the
    /// COMMIT. If the transaction itself breaks, the ops that ran are answered with the error
    /// and the ones that did not run yet are returned, to run in the next transaction.
    async fn commit_batch(&mut self, batch: Vec<Box<dyn Job>>) -> VecDeque<Box<dyn Job>> {
        if let Err(e) = self.conn.execute("BEGIN IMMEDIATE").await {
            let err = StoreError::from(e);
            tracing::error!(error = %err, "could not begin a write transaction");
            for job in batch {
                job.fail(err.clone());
            }
            self.recover().await;
            return VecDeque::new();
        }
        if let [_] = batch.as_slice() {
            let job = batch.into_iter().next().expect("one job");
            let done = job.run(&mut self.conn).await;
            let error = if done.ok {
                self.conn
                    .execute("COMMIT")
                    .await
                    .err()
                    .map(StoreError::from)
            } else {
                // A lone failed op: its result is already the error.
                None
            };
            if !done.ok || error.is_some() {
                if let Some(e) = &error {
                    tracing::error!(error = %e, "a write transaction failed to commit");
                }
                self.recover().await;
            }
            (done.deliver)(error);
            return VecDeque::new();
        }

        let mut finished = Vec::with_capacity(batch.len());
        let mut pending: VecDeque<Box<dyn Job>> = batch.into();
        let mut broken: Option<StoreError> = None;
        while let Some(job) = pending.pop_front() {
            if let Err(e) = self.conn.execute("SAVEPOINT job").await {
                let e = StoreError::from(e);
                if finished.is_empty() {
                    // Nothing ran in this transaction: fail this op rather than retry it forever.
                    job.fail(e.clone());
                } else {
                    pending.push_front(job);
                }
                broken = Some(e);
                break;
            }
            let done = job.run(&mut self.conn).await;
            let end = if done.ok {
                "RELEASE job"
            } else {
                "ROLLBACK TO job; RELEASE job"
            };
            finished.push(done);
            if let Err(e) = self.conn.execute(end).await {
                broken = Some(e.into());
                break;
            }
        }

        let error = match broken {
            Some(e) => Some(e),
            None => self
                .conn
                .execute("COMMIT")
                .await
                .err()
                .map(StoreError::from),
        };
        if let Some(e) = &error {
            tracing::error!(
                error = %e,
                failed = finished.len(),
                retried = pending.len(),
                "a write transaction failed; its requests are answered with errors"
            );
            self.recover().await;
        }
        for done in finished {
            (done.deliver)(error.clone());
        }
        pending
    }

    /// Leaves no transaction open after a failure: rolls back, and if even that fails, opens a
    /// fresh connection.
    async fn recover(&mut self) {
        let Err(e) = self.conn.execute("ROLLBACK").await else {
            return;
        };
        if e.to_string().contains("no transaction is active") {
            return;
        }
        tracing::error!(error = %e, "rolling back failed; reopening the write connection");
        let Some(options) = &self.reopen else { return };
        match SqliteConnection::connect_with(options).await {
            Ok(fresh) => {
                let old = std::mem::replace(&mut self.conn, fresh);
                let _ = old.close().await;
            }
            Err(e) => tracing::error!(error = %e, "could not reopen the write connection"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, Tx};

    #[derive(Clone)]
    struct PutMeta(String, &'static str);
    impl Op for PutMeta {
        type Output = String;
        async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<String> {
            tx.meta_insert_default(&self.0, self.1).await
        }
    }

    #[derive(Clone)]
    struct FailAfterPut(String);
    impl Op for FailAfterPut {
        type Output = ();
        async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<()> {
            tx.meta_insert_default(&self.0, "written").await?;
            Err(StoreError::Corrupt("forced failure".into()))
        }
    }

    #[derive(Clone)]
    struct GetMeta(String);
    impl Op for GetMeta {
        type Output = Option<String>;
        async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<Option<String>> {
            tx.meta_get(&self.0).await
        }
    }

    async fn file_store(dir: &tempfile::TempDir) -> Store {
        Store::sqlite(
            SqliteStore::open(SqliteOptions {
                path: Some(dir.path().join("pcq.db")),
                readers: 2,
                max_batch: 64,
                cache_mib: 0,
            })
            .await
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn a_failed_op_in_a_batch_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        store.write(PutMeta(format!("k{i}"), "v")).await.map(|_| ())
                    } else {
                        store.write(FailAfterPut(format!("k{i}"))).await
                    }
                })
            })
            .collect();
        for (i, r) in futures_util::future::join_all(handles)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(r.unwrap().is_ok(), i % 2 == 0);
        }
        for i in 0..50 {
            let got = store.read(GetMeta(format!("k{i}"))).await.unwrap();
            assert_eq!(got.is_some(), i % 2 == 0, "k{i}");
        }
        store.close().await;
    }

    #[tokio::test]
    async fn writes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        store.write(PutMeta("k".into(), "v1")).await.unwrap();
        store.close().await;
        assert!(matches!(
            store.write(PutMeta("k2".into(), "v")).await,
            Err(StoreError::Unavailable)
        ));
        let again = file_store(&dir).await;
        assert_eq!(
            again.read(GetMeta("k".into())).await.unwrap().as_deref(),
            Some("v1")
        );
        again.close().await;
    }

    #[derive(Clone)]
    struct Panics;
    impl Op for Panics {
        type Output = ();
        async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<()> {
            tx.meta_insert_default("panicked", "written").await?;
            panic!("a bug in an op");
        }
    }

    #[tokio::test]
    async fn a_panicking_op_is_rolled_back_and_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let (panicked, fine) = tokio::join!(
            store.write(Panics),
            store.write(PutMeta("fine".into(), "v"))
        );
        assert!(
            matches!(panicked, Err(StoreError::Panicked)),
            "{panicked:?}"
        );
        assert_eq!(fine.unwrap(), "v");
        assert_eq!(store.read(GetMeta("panicked".into())).await.unwrap(), None);
        // The writer goes on.
        store.write(PutMeta("after".into(), "v")).await.unwrap();
        store.close().await;
    }

    /// Stands for SQLite aborting the whole transaction (as it does on some I/O errors).
    struct AbortsTransaction(oneshot::Sender<StoreResult<()>>);
    impl Job for AbortsTransaction {
        fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Finished> {
            Box::pin(async move {
                conn.execute("ROLLBACK").await.unwrap();
                let reply = self.0;
                Finished {
                    ok: true,
                    deliver: Box::new(move |e| {
                        let _ = reply.send(e.map_or(Ok(()), Err));
                    }),
                }
            })
        }
        fn fail(self: Box<Self>, err: StoreError) {
            let _ = self.0.send(Err(err));
        }
    }

    fn job<O: Op>(op: O) -> (Box<dyn Job>, oneshot::Receiver<StoreResult<O::Output>>) {
        let (reply, answer) = oneshot::channel();
        (Box::new(OpJob { op, reply }), answer)
    }

    #[tokio::test]
    async fn ops_after_a_broken_transaction_run_in_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let options = connect_options(Some(&dir.path().join("pcq.db")))
            .unwrap()
            .create_if_missing(true);
        let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
        MIGRATOR.run(&mut conn).await.unwrap();
        let mut writer = Writer {
            conn,
            reopen: Some(options),
            max_batch: 16,
        };

        let (before, before_answer) = job(PutMeta("before".into(), "v"));
        let (abort_reply, abort_answer) = oneshot::channel();
        let (after, after_answer) = job(PutMeta("after".into(), "v"));
        let carried = writer
            .commit_batch(vec![
                before,
                Box::new(AbortsTransaction(abort_reply)),
                after,
            ])
            .await;
        assert!(
            before_answer.await.unwrap().is_err(),
            "its writes were lost with the transaction"
        );
        assert!(abort_answer.await.unwrap().is_err());
        assert_eq!(carried.len(), 1, "the op that had not run is kept");

        let left = writer.commit_batch(carried.into_iter().collect()).await;
        assert!(left.is_empty());
        assert_eq!(after_answer.await.unwrap().unwrap(), "v");
        let (read, read_answer) = job(GetMeta("before".into()));
        writer.commit_batch(vec![read]).await;
        assert_eq!(read_answer.await.unwrap().unwrap(), None);
    }

    #[tokio::test]
    async fn every_close_waits_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteOptions {
            path: Some(dir.path().join("pcq.db")),
            readers: 1,
            max_batch: 4,
            cache_mib: 0,
        })
        .await
        .unwrap();
        let writes: Vec<_> = (0..20)
            .map(|i| store.write(PutMeta(format!("w{i}"), "v")))
            .collect();
        let (results, (), ()) = tokio::join!(
            futures_util::future::join_all(writes),
            store.close(),
            store.close()
        );
        assert!(
            *store.writer_done.borrow(),
            "both closes returned after the writer stopped"
        );
        // Writes queued before the shutdown were committed; none is left hanging.
        let committed = results.iter().filter(|r| r.is_ok()).count();
        let reopened = file_store(&dir).await;
        for (i, result) in results.iter().enumerate() {
            let present = reopened
                .read(GetMeta(format!("w{i}")))
                .await
                .unwrap()
                .is_some();
            assert_eq!(present, result.is_ok(), "w{i}");
        }
        assert!(committed > 0);
        reopened.close().await;
    }

    #[tokio::test]
    async fn in_memory_reads_see_writes() {
        let store = Store::sqlite(
            SqliteStore::open(SqliteOptions {
                path: None,
                readers: 1,
                max_batch: 8,
                cache_mib: 0,
            })
            .await
            .unwrap(),
        );
        assert_eq!(store.write(PutMeta("a".into(), "1")).await.unwrap(), "1");
        assert_eq!(store.write(PutMeta("a".into(), "2")).await.unwrap(), "1");
        assert_eq!(
            store.read(GetMeta("a".into())).await.unwrap().as_deref(),
            Some("1")
        );
        store.close().await;
    }
}
