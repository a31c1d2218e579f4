//! The embedded SQLite backend.
//!
//! Durability: WAL with `synchronous=FULL`, so a committed transaction is on disk. Throughput:
//! group commit. One writer thread owns the only write connection; write ops queue up while it
//! commits, and it runs everything that queued in one transaction. An op that fails before it
//! writes leaves nothing to undo; one that fails after writing (a bug or a database error) has
//! the transaction rolled back and the others run again in the next. Every op's caller is
//! answered only after the commit that holds its writes is on disk.
//!
//! For a file database the writer does not wait for the disk: it commits with
//! `synchronous=NORMAL` (the WAL is written, not yet flushed) and hands the batch to a second
//! thread, which flushes the WAL with `fdatasync` and only then answers the batch's ops, while
//! the writer already runs the next batch. Commits become durable in order (the flush covers
//! the whole file), checkpoints flush the WAL first, and a write is acknowledged only once it
//! is durable. A read may see a batch during its flush, a millisecond or so before its writers
//! are answered. Checkpoints too run beside the writer, on a connection of their own, whenever
//! the WAL has grown past 1,000 pages (SQLite's own threshold, which the writer no longer
//! applies itself). Reads run on separate connections and never wait for
//! the writer. An in-memory database has a single connection, so its reads go through the writer.
//!
//! The statements run through rusqlite, in the thread that asks for them: a statement is a call
//! into SQLite, not a message to a connection thread and back, so the writer runs a whole batch
//! without a thread switch and a point read costs microseconds. Migrations are applied with
//! sqlx's migrator, so the database keeps sqlx's migration table.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot, watch};

use super::sql::{Arg, FromRow, Row, Statement};
use super::tx::Conn as TxConn;
use super::{Committed, Op, StoreError, StoreResult, Tx};
use crate::error::Error;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for a lock another connection holds (a checkpoint, or a second
/// process on the same file) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements each connection keeps (pcq has about fifty distinct ones).
const STATEMENT_CACHE: usize = 128;

/// Where and how to open the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Database file; `None` keeps the database in memory.
    pub path: Option<PathBuf>,
    /// Read connections kept open (file databases only).
    pub readers: u32,
    /// Most ops committed in one transaction.
    pub max_batch: usize,
    /// Page cache of the writer connection in MiB (each reader gets a quarter); 0 keeps
    /// SQLite's default (2 MiB). A large store needs a cache that holds the pages one group
    /// commit changes.
    pub cache_mib: u32,
}

/// The SQLite store: one writer thread, a set of read connections.
pub struct SqliteStore {
    jobs: mpsc::Sender<Message>,
    readers: Option<Arc<Readers>>,
    writer_done: watch::Receiver<bool>,
    pub(super) meters: super::MetersSlot,
}

/// One SQLite connection, on which the shared statements run ([`Db`]).
pub struct Conn(rusqlite::Connection);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(Arc::new(e))
    }
}

/// Binds `args` to the statement's `?` parameters, in order.
fn bind(statement: &mut rusqlite::Statement<'_>, args: &[Arg<'_>]) -> StoreResult<()> {
    if statement.parameter_count() != args.len() {
        return Err(StoreError::Corrupt(format!(
            "a statement takes {} values, not {}",
            statement.parameter_count(),
            args.len()
        )));
    }
    for (i, arg) in args.iter().enumerate() {
        let index = i + 1;
        match arg {
            Arg::Int(v) => statement.raw_bind_parameter(index, v)?,
            Arg::Text(v) => statement.raw_bind_parameter(index, v)?,
            Arg::String(v) => statement.raw_bind_parameter(index, v)?,
            Arg::Uuid(Some(id)) => {
                let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
                statement.raw_bind_parameter(index, &*id.hyphenated().encode_lower(&mut text))?;
            }
            Arg::Uuid(None) => statement.raw_bind_parameter(index, rusqlite::types::Null)?,
            Arg::Blob(v) => statement.raw_bind_parameter(index, v)?,
            Arg::Bytes(v) => statement.raw_bind_parameter(index, v)?,
        }
    }
    Ok(())
}

/// A result row.
struct SqliteRow<'r, 's>(&'r rusqlite::Row<'s>);

impl SqliteRow<'_, '_> {
    fn wrong_type(&self, index: usize, found: ValueRef<'_>, wanted: &str) -> StoreError {
        StoreError::Corrupt(format!(
            "column {} holds {}, not {wanted}",
            self.column_name(index),
            found.data_type()
        ))
    }
}

impl Row for SqliteRow<'_, '_> {
    fn column_name(&self, index: usize) -> &str {
        let statement: &rusqlite::Statement<'_> = self.0.as_ref();
        statement.column_name(index).unwrap_or("?")
    }

    fn int(&self, index: usize) -> StoreResult<Option<i64>> {
        match self.0.get_ref(index)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(v) => Ok(Some(v)),
            other => Err(self.wrong_type(index, other, "an integer")),
        }
    }

    fn text(&self, index: usize) -> StoreResult<Option<&str>> {
        match self.0.get_ref(index)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(raw) => std::str::from_utf8(raw).map(Some).map_err(|_| {
                StoreError::Corrupt(format!("column {} is not UTF-8", self.column_name(index)))
            }),
            other => Err(self.wrong_type(index, other, "text")),
        }
    }

    fn bytes(&self, index: usize) -> StoreResult<Option<&[u8]>> {
        match self.0.get_ref(index)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(raw) | ValueRef::Text(raw) => Ok(Some(raw)),
            other => Err(self.wrong_type(index, other, "bytes")),
        }
    }
}

impl Conn {
    /// Opens a connection to the database file with pcq's settings. A reader refuses to write.
    fn open(path: &Path, cache_kib: i64, reader: bool) -> StoreResult<Conn> {
        let db = rusqlite::Connection::open(path)?;
        db.busy_timeout(BUSY_TIMEOUT)?;
        Self::configure(db, cache_kib, reader)
    }

    /// Opens the write connection of a file database: its commits write the WAL without
    /// flushing it; the syncer flushes it before anyone is answered.
    /// It never checkpoints either: the checkpointer does, beside it.
    fn open_writer(path: &Path, cache_kib: i64) -> StoreResult<Conn> {
        let conn = Self::open(path, cache_kib, false)?;
        conn.0.pragma_update(None, "synchronous", "NORMAL")?;
        conn.0.pragma_update(None, "wal_autocheckpoint", 0)?;
        // After the pragma, which installs a hook of its own.
        conn.0.wal_hook(Some(note_wal_frames));
        Ok(conn)
    }

    fn configure(db: rusqlite::Connection, cache_kib: i64, reader: bool) -> StoreResult<Conn> {
        db.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        db.pragma_update(None, "synchronous", "FULL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        // Statement journals in memory, not in a temporary file: a statement that must be
        // undone on its own is rare, and each page it changes would otherwise be written out
        // first.
        db.pragma_update(None, "temp_store", "MEMORY")?;
        if cache_kib > 0 {
            // A negative cache_size is in KiB.
            db.pragma_update(None, "cache_size", -cache_kib)?;
        }
        if reader {
            db.pragma_update(None, "query_only", "ON")?;
        }
        Ok(Conn(db))
    }

    /// Runs a statement that takes no parameters (transaction control).
    fn run(&mut self, sql: &str) -> StoreResult<()> {
        self.0.prepare_cached(sql)?.raw_execute()?;
        Ok(())
    }

    /// The cached prepared statement for `sql`, with `args` bound.
    fn prepared(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> StoreResult<rusqlite::CachedStatement<'_>> {
        let mut statement = self.0.prepare_cached(sql)?;
        bind(&mut statement, args)?;
        Ok(statement)
    }
}

// Every statement completes inside the call, in the calling thread.
impl Conn {
    pub(super) fn fetch_all<T: FromRow>(
        &mut self,
        statement: &Statement<'_>,
    ) -> StoreResult<Vec<T>> {
        let mut prepared = self.prepared(&statement.sql.text().sqlite, &statement.args)?;
        let mut rows = prepared.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(T::from_row(&SqliteRow(row))?);
        }
        Ok(out)
    }

    pub(super) fn fetch_optional<T: FromRow>(
        &mut self,
        statement: &Statement<'_>,
    ) -> StoreResult<Option<T>> {
        let mut prepared = self.prepared(&statement.sql.text().sqlite, &statement.args)?;
        let mut rows = prepared.raw_query();
        rows.next()?
            .map(|row| T::from_row(&SqliteRow(row)))
            .transpose()
    }

    pub(super) fn execute(&mut self, statement: &Statement<'_>) -> StoreResult<u64> {
        Ok(self
            .prepared(&statement.sql.text().sqlite, &statement.args)?
            .raw_execute()? as u64)
    }
}

/// Runs `op` to its end on `conn`, in the calling thread. An op only awaits the statements it
/// runs, which complete inside the call (or something that is ready again at once, such as a
/// yield), so it finishes without waiting; one that panics or would wait for anything else is a
/// bug, and fails.
/// Also returns whether the op changed rows.
fn run_op<O: Op>(op: O, conn: &mut Conn) -> (Result<Committed<O::Output>, Error>, bool) {
    let mut tx = Tx::new(TxConn::Sqlite(conn));
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| finish_now(op.run(&mut tx))));
    let wrote = tx.writes() > 0;
    let result = match ran {
        Ok(Some(result)) => result.map(|output| Committed {
            output,
            effects: tx.into_effects(),
        }),
        Ok(None) => {
            tracing::error!("an operation waited on something other than the database");
            Err(StoreError::Panicked.into())
        }
        Err(_) => {
            tracing::error!("an operation panicked; its changes are rolled back");
            Err(StoreError::Panicked.into())
        }
    };
    (result, wrote)
}

/// Records whether a future asked to be polled again.
struct Woken(AtomicBool);

impl std::task::Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// Polls `future` for as long as it is ready to go on; `None` when it waits for something.
fn finish_now<F: Future>(future: F) -> Option<F::Output> {
    let woken = Arc::new(Woken(AtomicBool::new(false)));
    let waker = std::task::Waker::from(Arc::clone(&woken));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        if !woken.0.swap(false, Ordering::AcqRel) {
            return None;
        }
    }
}

enum Message {
    Job(Box<dyn Job>),
    Shutdown,
}

/// An op with its reply channel, with the output type erased so the writer can queue any op.
trait Job: Send {
    /// Runs the op (a copy of it: a job may run again, in a later transaction, when the one it
    /// ran in is rolled back) and keeps its result until the commit is known.
    fn run(&mut self, conn: &mut Conn) -> Ran;
    /// Answers the caller with the result of the last run, or with the error of the commit.
    fn answer(self: Box<Self>, commit_error: Option<StoreError>);
    /// Answers the caller with `err` (the op did not run).
    fn fail(self: Box<Self>, err: StoreError);
    /// When the op was queued, if that was noted.
    fn queued(&self) -> Option<Instant> {
        None
    }
}

/// How a run of an op went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    /// It succeeded.
    Ok,
    /// It failed before changing anything.
    Failed,
    /// It failed after changing rows: only rolling the transaction back undoes them.
    FailedAfterWriting,
}

/// What the writer answers for one op.
type Answer<T> = Result<Committed<T>, Error>;

struct OpJob<O: Op> {
    op: O,
    reply: oneshot::Sender<Answer<O::Output>>,
    queued: Option<Instant>,
    result: Option<Answer<O::Output>>,
}

impl<O: Op> Job for OpJob<O> {
    fn run(&mut self, conn: &mut Conn) -> Ran {
        let (result, wrote) = run_op(self.op.clone(), conn);
        let ran = match (&result, wrote) {
            (Ok(_), _) => Ran::Ok,
            (Err(_), false) => Ran::Failed,
            (Err(_), true) => Ran::FailedAfterWriting,
        };
        self.result = Some(result);
        ran
    }

    fn answer(self: Box<Self>, commit_error: Option<StoreError>) {
        let answer = match (commit_error, self.result) {
            (Some(e), _) => Err(e.into()),
            (None, Some(result)) => result,
            (None, None) => {
                Err(StoreError::Corrupt("an op answered before it ran".to_owned()).into())
            }
        };
        let _ = self.reply.send(answer);
    }

    fn fail(self: Box<Self>, err: StoreError) {
        let _ = self.reply.send(Err(err.into()));
    }

    fn queued(&self) -> Option<Instant> {
        self.queued
    }
}

/// The read connections of a file database: idle ones are reused, and a read that finds none
/// idle opens one (kept afterwards if fewer than `keep` are idle), so a read never waits for
/// another.
struct Readers {
    path: PathBuf,
    cache_kib: i64,
    keep: usize,
    idle: Mutex<Vec<Conn>>,
    closed: AtomicBool,
}

impl Readers {
    fn take(&self) -> StoreResult<Conn> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable);
        }
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => Conn::open(&self.path, self.cache_kib, true),
        }
    }

    fn put(&self, conn: Conn) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.keep {
            idle.push(conn);
        }
    }

    /// Runs `op` in a read transaction (a snapshot from its first statement on).
    fn read<O: Op>(&self, op: O) -> Result<O::Output, Error> {
        let mut conn = self.take()?;
        conn.run("BEGIN")?;
        let (result, _) = run_op(op, &mut conn);
        // A connection whose transaction cannot be ended is not reused.
        if conn.run("ROLLBACK").is_ok() {
            self.put(conn);
        }
        result.map(|committed| committed.output)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// The options sqlx migrates the database file with.
fn migration_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .create_if_missing(true)
}

/// The files SQLite keeps beside the database in WAL mode.
const SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

/// Makes the database file, its WAL and its shared-memory file readable and writable by their
/// owner only: creates the database file with mode 0600 when it is missing (SQLite gives the
/// files it creates beside it the database file's mode), and takes group and other access away
/// from any of them that exist already.
fn make_files_private(path: &Path) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let failed = |what: &str, file: &Path, e: std::io::Error| {
            StoreError::Config(format!("{what} {}: {e}", file.display()))
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| failed("cannot create the database file", path, e))?;
        let mut files = vec![path.to_path_buf()];
        files.extend(SIDE_FILES.map(|suffix| side_file(path, suffix)));
        for file in files {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))
                    .map_err(|e| failed("cannot make private", &file, e))?;
            }
        }
    }
    Ok(())
}

/// Creates (if needed) and migrates the database file.
async fn migrate_file(path: &Path) -> StoreResult<()> {
    make_files_private(path)?;
    let mut conn = SqliteConnection::connect_with(&migration_options(path)).await?;
    MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|e| StoreError::Migration(Arc::new(e)))?;
    lower_audit_names(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Creates the schema in a fresh in-memory database: every migration in order.
fn migrate_memory(conn: &mut Conn) -> StoreResult<()> {
    for migration in MIGRATOR.iter() {
        if migration.migration_type.is_up_migration() {
            conn.0.execute_batch(migration.sql.as_str())?;
        }
    }
    Ok(())
}

/// A fresh in-memory database with every migration applied (for schema checks).
#[cfg(test)]
pub(super) fn migrated_memory() -> rusqlite::Connection {
    let mut conn = Conn(rusqlite::Connection::open_in_memory().expect("in-memory database"));
    migrate_memory(&mut conn).expect("the migrations apply");
    conn.0
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database, and starts the writer.
    pub async fn open(options: SqliteOptions) -> StoreResult<Self> {
        let cache_kib = i64::from(options.cache_mib) * 1024;
        let (conn, readers) = match &options.path {
            Some(path) => {
                migrate_file(path).await?;
                let conn = Conn::open_writer(path, cache_kib)?;
                let readers = Readers {
                    path: path.clone(),
                    cache_kib: if cache_kib > 0 {
                        (cache_kib / 4).max(2048)
                    } else {
                        0
                    },
                    keep: options.readers.max(1) as usize,
                    idle: Mutex::new(Vec::new()),
                    closed: AtomicBool::new(false),
                };
                // One reader at once, so that a database readers cannot open fails the start;
                // the others open when reads need them.
                readers.put(Conn::open(path, readers.cache_kib, true)?);
                (conn, Some(Arc::new(readers)))
            }
            None => {
                let mut conn =
                    Conn::configure(rusqlite::Connection::open_in_memory()?, cache_kib, false)?;
                migrate_memory(&mut conn)?;
                (conn, None)
            }
        };

        let (jobs, rx) = mpsc::channel(4096);
        let (done_tx, writer_done) = watch::channel(false);
        let meters = super::MetersSlot::default();
        let syncer = match &options.path {
            Some(path) => Some(Syncer::start(path, CHECKPOINTER_CACHE_KIB, meters.clone())?),
            None => None,
        };
        let writer = Writer {
            meters: meters.clone(),
            syncer,
            conn,
            // An in-memory database lives in its one connection: it cannot be reopened.
            reopen: options.path.clone().map(|path| (path, cache_kib)),
            max_batch: options.max_batch.max(1),
        };
        std::thread::Builder::new()
            .name("pcq-sqlite-writer".to_owned())
            .spawn(move || {
                if std::panic::catch_unwind(AssertUnwindSafe(|| writer.run(rx))).is_err() {
                    tracing::error!("the SQLite writer stopped after a panic");
                }
                let _ = done_tx.send(true);
            })
            .map_err(|e| StoreError::Config(format!("could not start the SQLite writer: {e}")))?;
        Ok(SqliteStore {
            jobs,
            readers,
            writer_done,
            meters,
        })
    }

    /// Whether the database lives in memory.
    pub fn is_in_memory(&self) -> bool {
        self.readers.is_none()
    }

    /// Queues `op` for the writer; returns after the commit that holds it.
    pub async fn write<O: Op>(&self, op: O) -> Result<Committed<O::Output>, Error> {
        let (reply, answer) = oneshot::channel();
        let queued = self.meters.get().map(|_| Instant::now());
        self.jobs
            .send(Message::Job(Box::new(OpJob {
                op,
                reply,
                queued,
                result: None,
            })))
            .await
            .map_err(|_| StoreError::Unavailable)?;
        answer.await.map_err(|_| StoreError::Unavailable)?
    }

    /// Runs `op` in a read transaction on a read connection: in the calling task when the op
    /// says it is brief ([`Op::BRIEF_READ`]), else on a blocking thread, so that a long scan does
    /// not hold up the tasks of an async worker thread.
    pub async fn read<O: Op>(&self, op: O) -> Result<O::Output, Error> {
        let Some(readers) = &self.readers else {
            return Ok(self.write(op).await?.output);
        };
        if O::BRIEF_READ {
            return readers.read(op);
        }
        let readers = Arc::clone(readers);
        tokio::task::spawn_blocking(move || readers.read(op))
            .await
            .map_err(|_| StoreError::Panicked)?
    }

    /// Lets the writer finish what was queued before, then closes every connection. Returns
    /// once the writer has stopped, however many callers close at once.
    pub async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.close();
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

/// The writer thread's state: the one write connection.
struct Writer {
    conn: Conn,
    /// How to open a fresh connection if this one is left unusable (file databases).
    reopen: Option<(PathBuf, i64)>,
    max_batch: usize,
    meters: super::MetersSlot,
    /// Where committed batches go to be made durable (file databases).
    syncer: Option<Syncer>,
}

/// Makes committed batches durable beside the writer, in commit order, and answers their ops;
/// and checkpoints the WAL beside the writer once it has grown.
struct Syncer {
    batches: Option<std::sync::mpsc::Sender<CommittedBatch>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A committed batch's ops, and the frames in the WAL after its commit.
type CommittedBatch = (Vec<Box<dyn Job>>, i32);

/// The page cache of the checkpointer's connection, in KiB: it reads pages once, to copy them.
const CHECKPOINTER_CACHE_KIB: i64 = 2048;

/// The WAL size, in frames (pages), from which it is checkpointed (SQLite's own default).
const CHECKPOINT_FRAMES: i32 = 1000;

thread_local! {
    /// The frames in the WAL after the writer's last commit, as SQLite's WAL hook reports them
    /// (on the writer's thread, the only one that commits on its connection).
    static WAL_FRAMES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// The write connection's WAL hook: notes how large the WAL has grown.
fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(frames);
    Ok(())
}

/// Checkpoints the WAL on a connection of its own whenever it is nudged, so that the writer never
/// copies pages into the database itself. A PASSIVE checkpoint runs beside the writer and readers;
/// the writer starts the WAL over once a checkpoint has copied all of it.
fn start_checkpointer(
    path: &Path,
    cache_kib: i64,
) -> StoreResult<(std::sync::mpsc::SyncSender<()>, std::thread::JoinHandle<()>)> {
    let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
    let mut conn = Conn::open(path, cache_kib, false)?;
    let thread = std::thread::Builder::new()
        .name("pcq-sqlite-checkpoint".to_owned())
        .spawn(move || {
            while nudged.recv().is_ok() {
                if let Err(e) = conn.run("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::warn!(error = %e, "checkpointing the SQLite WAL failed");
                }
            }
            let _ = conn.0.close();
        })
        .map_err(|e| StoreError::Config(format!("could not start the SQLite checkpointer: {e}")))?;
    Ok((nudge, thread))
}

impl Syncer {
    /// Starts the thread that flushes the database at `path` (its WAL) after each commit.
    fn start(path: &Path, cache_kib: i64, meters: super::MetersSlot) -> StoreResult<Syncer> {
        let (batches, rx) = std::sync::mpsc::channel::<CommittedBatch>();
        let mut wal = Wal {
            path: side_file(path, "-wal"),
            db: path.to_owned(),
            file: None,
        };
        let (nudge, checkpointer) = start_checkpointer(path, cache_kib)?;
        let thread = std::thread::Builder::new()
            .name("pcq-sqlite-sync".to_owned())
            .spawn(move || {
                let nudge = nudge;
                let checkpointer = checkpointer;
                while let Ok((first, mut frames)) = rx.recv() {
                    // Every batch committed by now is covered by one flush.
                    let mut ready = vec![first];
                    for (jobs, more) in rx.try_iter() {
                        ready.push(jobs);
                        frames = frames.max(more);
                    }
                    let started = Instant::now();
                    let error = wal.flush().err().map(|e| {
                        tracing::error!(error = %e, "flushing the SQLite WAL to disk failed");
                        StoreError::Unavailable
                    });
                    if let Some(meters) = meters.get() {
                        meters
                            .commit_seconds
                            .record(started.elapsed().as_secs_f64());
                    }
                    for job in ready.into_iter().flatten() {
                        job.answer(error.clone());
                    }
                    if frames >= CHECKPOINT_FRAMES {
                        // Full: a checkpoint is running or already asked for.
                        let _ = nudge.try_send(());
                    }
                }
                drop(nudge);
                let _ = checkpointer.join();
            })
            .map_err(|e| StoreError::Config(format!("could not start the SQLite syncer: {e}")))?;
        Ok(Syncer {
            batches: Some(batches),
            thread: Some(thread),
        })
    }

    /// Answers `jobs` once their committed batch is on disk (the WAL holding `frames` after it).
    fn durable(&self, jobs: Vec<Box<dyn Job>>, frames: i32) {
        if let Some(batches) = &self.batches {
            if let Err(std::sync::mpsc::SendError((jobs, _))) = batches.send((jobs, frames)) {
                for job in jobs {
                    job.answer(Some(StoreError::Unavailable));
                }
            }
        }
    }
}

impl Drop for Syncer {
    /// Answers what is still being flushed before the writer reports that it stopped.
    fn drop(&mut self) {
        self.batches = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `path` with `suffix` appended to its file name (SQLite's `-wal` and `-shm`).
fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The WAL the syncer flushes, opened once: SQLite removes it only when the last connection
/// closes, and the writer's and the checkpointer's stay open as long as the syncer runs.
struct Wal {
    path: PathBuf,
    db: PathBuf,
    file: Option<std::fs::File>,
}

impl Wal {
    /// Flushes what was committed to the WAL (or, before SQLite has made one, the database
    /// file).
    fn flush(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            match std::fs::File::open(&self.path) {
                Ok(file) => self.file = Some(file),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return std::fs::File::open(&self.db)?.sync_data();
                }
                Err(e) => return Err(e),
            }
        }
        let result = self.file.as_ref().map_or(Ok(()), std::fs::File::sync_data);
        if result.is_err() {
            // Opened again for the next flush.
            self.file = None;
        }
        result
    }
}

impl Writer {
    /// Commits batches until shutdown. Ops left over from a transaction that broke run first in
    /// the next one.
    fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        let mut carried: VecDeque<Box<dyn Job>> = VecDeque::new();
        let mut shutdown = false;
        loop {
            let mut batch: Vec<Box<dyn Job>> = carried.drain(..).collect();
            if batch.is_empty() {
                if shutdown {
                    break;
                }
                match rx.blocking_recv() {
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
            if let Some(meters) = self.meters.get() {
                let now = Instant::now();
                meters.batch_size.record(batch.len() as f64);
                for queued in batch.iter().filter_map(|job| job.queued()) {
                    meters
                        .queued_seconds
                        .record(now.saturating_duration_since(queued).as_secs_f64());
                }
            }
            carried = self.commit_batch(batch);
        }
        // Answers what is still being flushed.
        drop(self.syncer.take());
        if let Err((_, e)) = self.conn.0.close() {
            tracing::warn!(error = %e, "closing the SQLite writer connection failed");
        }
    }

    /// Runs a batch in one transaction and answers the ops after the COMMIT. An op that fails
    /// before it changes anything leaves nothing to undo. One that fails after changing rows
    /// (a bug, or a database error) is answered with its error, the transaction is rolled back,
    /// and the ops that ran before it are returned with the ones that did not run yet, to run
    /// again in the next transaction. Ops are not wrapped in savepoints: a savepoint has SQLite
    /// copy every page it changes, once more, for a rollback that almost never happens. If the
    /// transaction itself breaks, the ops that ran are answered with the error and the others
    /// are returned.
    fn commit_batch(&mut self, batch: Vec<Box<dyn Job>>) -> VecDeque<Box<dyn Job>> {
        if let Err(err) = self.conn.run("BEGIN IMMEDIATE") {
            tracing::error!(error = %err, "could not begin a write transaction");
            for job in batch {
                job.fail(err.clone());
            }
            self.recover();
            return VecDeque::new();
        }
        let mut ran: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
        let mut pending: VecDeque<Box<dyn Job>> = batch.into();
        let mut broken = None;
        while let Some(mut job) = pending.pop_front() {
            let outcome = job.run(&mut self.conn);
            if self.conn.0.is_autocommit() {
                // SQLite ended the transaction (as it does on some I/O errors): what ran in it
                // is lost.
                ran.push(job);
                broken = Some(StoreError::Corrupt(
                    "the write transaction was rolled back by the database".to_owned(),
                ));
                break;
            }
            if outcome == Ran::FailedAfterWriting {
                self.recover();
                job.answer(None);
                for earlier in ran.into_iter().rev() {
                    pending.push_front(earlier);
                }
                return pending;
            }
            ran.push(job);
        }
        let error = match broken {
            Some(e) => Some(e),
            None => self.conn.run("COMMIT").err(),
        };
        if let Some(e) = &error {
            tracing::error!(
                error = %e,
                failed = ran.len(),
                retried = pending.len(),
                "a write transaction failed; its requests are answered with errors"
            );
            self.recover();
        }
        match (&self.syncer, error) {
            (Some(syncer), None) => syncer.durable(ran, WAL_FRAMES.get()),
            (_, error) => {
                for job in ran {
                    job.answer(error.clone());
                }
            }
        }
        pending
    }

    /// Leaves no transaction open after a failure: rolls back, and if even that fails, opens a
    /// fresh connection.
    fn recover(&mut self) {
        if self.conn.0.is_autocommit() {
            return;
        }
        let Err(e) = self.conn.run("ROLLBACK") else {
            return;
        };
        tracing::error!(error = %e, "rolling back failed; reopening the write connection");
        let Some((path, cache_kib)) = &self.reopen else {
            return;
        };
        match Conn::open_writer(path, *cache_kib) {
            Ok(fresh) => self.conn = fresh,
            Err(e) => tracing::error!(error = %e, "could not reopen the write connection"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, Tx};

    /// The output of a committed write.
    async fn written<T>(
        result: impl Future<Output = Result<Committed<T>, Error>>,
    ) -> Result<T, Error> {
        result.await.map(|committed| committed.output)
    }

    #[derive(Clone)]
    struct PutMeta(String, &'static str);
    impl Op for PutMeta {
        type Output = String;
        async fn run(self, tx: &mut Tx<'_>) -> Result<String, Error> {
            Ok(tx.meta_insert_default(&self.0, self.1).await?)
        }
    }

    #[derive(Clone)]
    struct FailAfterPut(String);
    impl Op for FailAfterPut {
        type Output = ();
        async fn run(self, tx: &mut Tx<'_>) -> Result<(), Error> {
            tx.meta_insert_default(&self.0, "written").await?;
            Err(StoreError::Corrupt("forced failure".into()).into())
        }
    }

    #[derive(Clone)]
    struct GetMeta(String);
    impl Op for GetMeta {
        type Output = Option<String>;
        async fn run(self, tx: &mut Tx<'_>) -> Result<Option<String>, Error> {
            Ok(tx.meta_get(&self.0).await?)
        }
    }

    /// The same read, run in the calling task.
    #[derive(Clone)]
    struct GetMetaBriefly(String);
    impl Op for GetMetaBriefly {
        type Output = Option<String>;
        const BRIEF_READ: bool = true;
        async fn run(self, tx: &mut Tx<'_>) -> Result<Option<String>, Error> {
            Ok(tx.meta_get(&self.0).await?)
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
                        written(store.write(PutMeta(format!("k{i}"), "v")))
                            .await
                            .map(|_| ())
                    } else {
                        written(store.write(FailAfterPut(format!("k{i}")))).await
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
            let briefly = store.read(GetMetaBriefly(format!("k{i}"))).await.unwrap();
            assert_eq!(briefly, got, "k{i}");
        }
        store.close().await;
    }

    #[tokio::test]
    async fn writes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let _ = store.write(PutMeta("k".into(), "v1")).await.unwrap();
        store.close().await;
        assert!(matches!(
            store.write(PutMeta("k2".into(), "v")).await,
            Err(Error::Store(StoreError::Unavailable))
        ));
        assert!(matches!(
            store.read(GetMeta("k".into())).await,
            Err(Error::Store(StoreError::Unavailable))
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
        async fn run(self, tx: &mut Tx<'_>) -> Result<(), Error> {
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
            matches!(panicked, Err(Error::Store(StoreError::Panicked))),
            "{panicked:?}"
        );
        assert_eq!(fine.unwrap().output, "v");
        assert_eq!(store.read(GetMeta("panicked".into())).await.unwrap(), None);
        // The writer goes on.
        let _ = store.write(PutMeta("after".into(), "v")).await.unwrap();
        store.close().await;
    }

    /// An op that waits on something other than the database.
    #[derive(Clone)]
    struct Waits;
    impl Op for Waits {
        type Output = ();
        async fn run(self, tx: &mut Tx<'_>) -> Result<(), Error> {
            tx.meta_insert_default("waited", "written").await?;
            futures_util::future::pending::<()>().await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_op_that_would_wait_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        assert!(matches!(
            store.write(Waits).await,
            Err(Error::Store(StoreError::Panicked))
        ));
        assert_eq!(store.read(GetMeta("waited".into())).await.unwrap(), None);
        store.close().await;
    }

    #[derive(Clone)]
    struct WritesInARead;
    impl Op for WritesInARead {
        type Output = String;
        async fn run(self, tx: &mut Tx<'_>) -> Result<String, Error> {
            Ok(tx.meta_insert_default("read", "written").await?)
        }
    }

    #[tokio::test]
    async fn reads_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        assert!(store.read(WritesInARead).await.is_err());
        assert_eq!(store.read(GetMeta("read".into())).await.unwrap(), None);
        store.close().await;
    }

    /// Stands for SQLite aborting the whole transaction (as it does on some I/O errors).
    struct AbortsTransaction(oneshot::Sender<StoreResult<()>>);
    impl Job for AbortsTransaction {
        fn run(&mut self, conn: &mut Conn) -> Ran {
            conn.run("ROLLBACK").unwrap();
            Ran::Ok
        }
        fn answer(self: Box<Self>, commit_error: Option<StoreError>) {
            let _ = self.0.send(commit_error.map_or(Ok(()), Err));
        }
        fn fail(self: Box<Self>, err: StoreError) {
            let _ = self.0.send(Err(err));
        }
    }

    fn job<O: Op>(op: O) -> (Box<dyn Job>, oneshot::Receiver<Answer<O::Output>>) {
        let (reply, answer) = oneshot::channel();
        (
            Box::new(OpJob {
                op,
                reply,
                queued: None,
                result: None,
            }),
            answer,
        )
    }

    #[tokio::test]
    async fn ops_after_a_broken_transaction_run_in_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pcq.db");
        migrate_file(&path).await.unwrap();
        let mut writer = Writer {
            conn: Conn::open(&path, 0, false).unwrap(),
            reopen: Some((path, 0)),
            max_batch: 16,
            meters: Default::default(),
            syncer: None,
        };

        let (before, before_answer) = job(PutMeta("before".into(), "v"));
        let (abort_reply, abort_answer) = oneshot::channel();
        let (after, after_answer) = job(PutMeta("after".into(), "v"));
        let carried = writer.commit_batch(vec![
            before,
            Box::new(AbortsTransaction(abort_reply)),
            after,
        ]);
        assert!(
            before_answer.await.unwrap().is_err(),
            "its writes were lost with the transaction"
        );
        assert!(abort_answer.await.unwrap().is_err());
        assert_eq!(carried.len(), 1, "the op that had not run is kept");

        let left = writer.commit_batch(carried.into_iter().collect());
        assert!(left.is_empty());
        assert_eq!(after_answer.await.unwrap().unwrap().output, "v");
        let (read, read_answer) = job(GetMeta("before".into()));
        writer.commit_batch(vec![read]);
        assert_eq!(read_answer.await.unwrap().unwrap().output, None);
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
        assert_eq!(
            store.write(PutMeta("a".into(), "1")).await.unwrap().output,
            "1"
        );
        assert_eq!(
            store.write(PutMeta("a".into(), "2")).await.unwrap().output,
            "1"
        );
        assert_eq!(
            store.read(GetMeta("a".into())).await.unwrap().as_deref(),
            Some("1")
        );
        store.close().await;
    }
}
