//! Every store, API, vetting and webhook test runs on SQLite and on PostgreSQL.

use pcq_server::config::Config;
use pcq_test_support::{PgSchema, test_database_url};

use super::fixture_signing_key;

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in a fresh data directory.
    Sqlite,
    /// A fresh schema in the PostgreSQL database named by `PCQ_TEST_DATABASE_URL`.
    Postgres,
}

tokio::task_local! {
    static BACKEND: Backend;
}

/// The backend of the running test (SQLite outside [`on_backend`]).
pub fn backend() -> Backend {
    BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite)
}

/// Runs a test on `backend`. On PostgreSQL without `PCQ_TEST_DATABASE_URL`, says that the test
/// was skipped and passes.
pub async fn on_backend(backend: Backend, name: &str, test: impl std::future::Future<Output = ()>) {
    if backend == Backend::Postgres
        && pcq_test_support::database_or_skip(&format!("{name} on PostgreSQL")).is_none()
    {
        return;
    }
    BACKEND.scope(backend, test).await
}

/// Runs `future` with `backend` as the test's backend (for work a test hands to another thread,
/// such as proptest cases driven from a blocking thread).
pub async fn with_backend<F: std::future::Future>(backend: Backend, future: F) -> F::Output {
    BACKEND.scope(backend, future).await
}

/// Turns `async fn`s into tests, one on SQLite and one on PostgreSQL each:
/// `sqlite::name` and `postgres::name`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        crate::common::backend_tests!(@on sqlite Sqlite: $($name),*);
        crate::common::backend_tests!(@on postgres Postgres: $($name),*);
    };
    (@on $module:ident $backend:ident: $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::common::on_backend(
                        crate::common::Backend::$backend,
                        stringify!($name),
                        super::$name(),
                    )
                    .await
                }
            )*
        }
    };
}
pub(crate) use backend_tests;

/// On PostgreSQL, a migrated schema of the test's own (see [`migrated_schema`]); on SQLite,
/// none.
pub async fn backend_schema() -> Option<PgSchema> {
    match backend() {
        Backend::Sqlite => None,
        Backend::Postgres => Some(migrated_schema().await),
    }
}

/// A schema of its own in the test PostgreSQL database, migrated and holding the fixture
/// webhook signing key; dropped when the last node using it is gone.
async fn migrated_schema() -> PgSchema {
    let server = test_database_url().expect("PCQ_TEST_DATABASE_URL is set");
    let schema = PgSchema::create(&server, "pcq_t").await;
    let mut config = Config::defaults();
    config.database_url = schema.url.clone();
    let store = pcq_server::open_store(&config)
        .await
        .expect("schema migrates");
    let _ = store
        .write(pcq_server::service::keys::KeepKey {
            name: pcq_server::service::keys::WEBHOOK_SIGNING_KEY,
            pem: fixture_signing_key().to_owned(),
        })
        .await
        .unwrap();
    store.close().await;
    schema
}
