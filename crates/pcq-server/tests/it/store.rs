//! The store's guarantees, on both backends: an op commits whole or not at all, and ops that
//! run at the same time behave as if they ran one after another.

use std::sync::Arc;

use crate::common::backend_schema;
use pcq_server::Error;
use pcq_server::config::Config;
use pcq_server::store::{Op, Store, StoreError, Tx};
use pcq_test_support::PgSchema;

/// A store on the test's backend, with what keeps it alive.
async fn open() -> (Store, Option<PgSchema>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.data_dir = dir.path().to_path_buf();
    config.store.pg_max_connections = 8;
    let schema = backend_schema().await;
    if let Some(schema) = &schema {
        config.database_url = schema.url.clone();
    }
    let store = pcq_server::open_store(&config).await.unwrap();
    (store, schema, dir)
}

#[derive(Clone)]
struct Get(&'static str);

impl Op for Get {
    type Output = Option<String>;
    async fn run(self, tx: &mut Tx<'_>) -> Result<Option<String>, Error> {
        Ok(tx.meta_get(self.0).await?)
    }
}

/// Reads a counter and writes it back plus one: two of these at the same time lose an
/// increment unless the store isolates them.
#[derive(Clone)]
struct Increment(&'static str);

impl Op for Increment {
    type Output = i64;
    async fn run(self, tx: &mut Tx<'_>) -> Result<i64, Error> {
        let current: i64 = tx.meta_get(self.0).await?.map_or(0, |v| v.parse().unwrap());
        // Give the other ops every chance to interleave.
        tokio::task::yield_now().await;
        tx.meta_put(self.0, &(current + 1).to_string()).await?;
        Ok(current + 1)
    }
}

/// Writes, then fails.
#[derive(Clone)]
struct PutThenFail;

impl Op for PutThenFail {
    type Output = ();
    async fn run(self, tx: &mut Tx<'_>) -> Result<(), Error> {
        tx.meta_put("half", "written").await?;
        Err(StoreError::Corrupt("the op gives up".to_owned()).into())
    }
}

/// Writes, then panics.
#[derive(Clone)]
struct PutThenPanic;

impl Op for PutThenPanic {
    type Output = ();
    async fn run(self, tx: &mut Tx<'_>) -> Result<(), Error> {
        tx.meta_put("panicked", "written").await?;
        panic!("a bug in an op");
    }
}

async fn concurrent_increments_are_not_lost() {
    let (store, _schema, _dir) = open().await;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.write(Increment("counter")).await.unwrap().output })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=40).collect::<Vec<i64>>(),
        "every op saw the one before"
    );
    assert_eq!(
        store.read(Get("counter")).await.unwrap().as_deref(),
        Some("40")
    );
    store.close().await;
}

async fn a_failed_op_leaves_nothing_behind() {
    let (store, _schema, _dir) = open().await;
    let err = store.write(PutThenFail).await.unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::Corrupt(_))),
        "{err:?}"
    );
    assert_eq!(store.read(Get("half")).await.unwrap(), None);
    // The store goes on working.
    assert_eq!(store.write(Increment("after")).await.unwrap().output, 1);
    store.close().await;
}

async fn a_panicking_op_is_rolled_back_and_reported() {
    let (store, _schema, _dir) = open().await;
    let err = store.write(PutThenPanic).await.unwrap_err();
    assert!(matches!(err, Error::Store(StoreError::Panicked)), "{err:?}");
    assert_eq!(store.read(Get("panicked")).await.unwrap(), None);
    assert_eq!(store.write(Increment("after")).await.unwrap().output, 1);
    store.close().await;
}

crate::common::backend_tests!(
    concurrent_increments_are_not_lost,
    a_failed_op_leaves_nothing_behind,
    a_panicking_op_is_rolled_back_and_reported,
);
