//! The embedded SQLite backend.
//!
//! Durability: WAL with `synchronous=FULL`, so a committed transaction is on disk. Throughput:
//! group commit. One writer task owns the only write connection; write ops queue up while it
//! commits, and it runs everything that queued in one transaction, each op inside its own
//! savepoint (an op that fails rolls back alone). Every op's caller is answered only after the
//! commit that holds its writes returned. Reads run on a separate pool and never wait for the
//! writer. An in-memory database has a single connection, so its reads go through the writer.

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
use tokio::sync::{Mutex, mpsc, oneshot};

use super::sql::impl_tx;
use super::{Op, StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl_tx!(sqlx::sqlite::SqliteConnection, sqlx::sqlite::SqliteRow);

/// Where and how to open the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Database file; `None` keeps the database in memory.
    pub path: Option<PathBuf>,
    /// Read connections (file databases only).
    pub readers: u32,
    /// Most ops committed in one transaction.
    pub max_batch: usize,
}

/// The SQLite store: one writer task, a pool of readers.
pub struct SqliteStore {
    jobs: mpsc::Sender<Message>,
    readers: Option<SqlitePool>,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
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
            let result = op.run(conn).await;
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

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database, and starts the writer.
    pub async fn open(options: SqliteOptions) -> StoreResult<Self> {
        let base = match &options.path {
            Some(path) => SqliteConnectOptions::new()
                .filename(path)
                .journal_mode(SqliteJournalMode::Wal),
            None => SqliteConnectOptions::from_str("sqlite::memory:")?,
        }
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));

        let mut writer_conn =
            SqliteConnection::connect_with(&base.clone().create_if_missing(true)).await?;
        MIGRATOR
            .run(&mut writer_conn)
            .await
            .map_err(|e| StoreError::Migration(Arc::new(e)))?;

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
        let writer = tokio::spawn(writer_loop(writer_conn, rx, options.max_batch.max(1)));
        Ok(SqliteStore {
            jobs,
            readers,
            writer: Mutex::new(Some(writer)),
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

    /// Lets the writer finish what is queued, then closes every connection.
    pub async fn close(&self) {
        if let Some(pool) = &self.readers {
            pool.close().await;
        }
        let _ = self.jobs.send(Message::Shutdown).await;
        if let Some(handle) = self.writer.lock().await.take() {
            let _ = handle.await;
        }
    }
}

async fn writer_loop(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Message>,
    max_batch: usize,
) {
    let mut shutdown = false;
    while !shutdown {
        let Some(first) = rx.recv().await else { break };
        let mut batch = Vec::new();
        match first {
            Message::Job(job) => batch.push(job),
            Message::Shutdown => break,
        }
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Message::Job(job)) => batch.push(job),
                Ok(Message::Shutdown) => {
                    shutdown = true;
                    break;
                }
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch).await;
    }
    if let Err(e) = conn.close().await {
        tracing::warn!(error = %e, "closing the SQLite writer connection failed");
    }
}

/// Runs a batch of ops in one transaction, each in a savepoint, and answers them after COMMIT.
async fn commit_batch(conn: &mut SqliteConnection, batch: Vec<Box<dyn Job>>) {
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        let err = StoreError::from(e);
        tracing::error!(error = %err, "could not begin a write transaction");
        for job in batch {
            job.fail(err.clone());
        }
        return;
    }
    let single = batch.len() == 1;
    let mut finished = Vec::with_capacity(batch.len());
    let mut broken: Option<StoreError> = None;
    for job in batch {
        if broken.is_some() {
            job.fail(broken.clone().unwrap_or(StoreError::Unavailable));
            continue;
        }
        if !single {
            if let Err(e) = conn.execute("SAVEPOINT job").await {
                broken = Some(e.into());
                job.fail(broken.clone().unwrap_or(StoreError::Unavailable));
                continue;
            }
        }
        let outcome = AssertUnwindSafe(job.run(&mut *conn)).catch_unwind().await;
        let ok = match &outcome {
            Ok(done) => done.ok,
            Err(_) => {
                tracing::error!("a write operation panicked; its changes are rolled back");
                false
            }
        };
        if !single {
            let sql = if ok {
                "RELEASE job"
            } else {
                "ROLLBACK TO job; RELEASE job"
            };
            if let Err(e) = conn.execute(sql).await {
                broken = Some(e.into());
            }
        } else if !ok {
            // A lone failed op: roll the whole transaction back instead of committing it.
            let _ = conn.execute("ROLLBACK").await;
            if let Ok(done) = outcome {
                (done.deliver)(None);
            }
            return;
        }
        if let Ok(done) = outcome {
            finished.push(done);
        }
    }

    let commit_error = match broken {
        Some(e) => Some(e),
        None => conn.execute("COMMIT").await.err().map(StoreError::from),
    };
    if let Some(e) = &commit_error {
        tracing::error!(error = %e, "a write transaction failed; its requests are answered with errors");
        let _ = conn.execute("ROLLBACK").await;
    }
    for done in finished {
        (done.deliver)(commit_error.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, Tx};

    struct PutMeta(String, &'static str);
    impl Op for PutMeta {
        type Output = String;
        async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<String> {
            tx.meta_insert_default(&self.0, self.1).await
        }
    }

    struct FailAfterPut(String);
    impl Op for FailAfterPut {
        type Output = ();
        async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<()> {
            tx.meta_insert_default(&self.0, "written").await?;
            Err(StoreError::Corrupt("forced failure".into()))
        }
    }

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

    #[tokio::test]
    async fn in_memory_reads_see_writes() {
        let store = Store::sqlite(
            SqliteStore::open(SqliteOptions {
                path: None,
                readers: 1,
                max_batch: 8,
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
