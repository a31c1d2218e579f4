//! The test PostgreSQL server and schemas of their own on it.

use std::io::Write;

use sqlx::Connection;
use uuid::Uuid;

/// The PostgreSQL server tests run against (`PCQ_TEST_DATABASE_URL`), if any.
pub fn test_database_url() -> Option<String> {
    std::env::var("PCQ_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// The test PostgreSQL server, or `None` after saying that `what` (a test, on PostgreSQL) was
/// skipped because `PCQ_TEST_DATABASE_URL` is not set.
pub fn database_or_skip(what: &str) -> Option<String> {
    let url = test_database_url();
    if url.is_none() {
        // Written past the test harness's output capture, so that it shows.
        let _ = writeln!(
            std::io::stderr(),
            "skipped {what}: PCQ_TEST_DATABASE_URL is not set"
        );
    }
    url
}

/// A schema of its own on the test PostgreSQL server, empty when created; dropped (with the
/// connections still using it) when this goes.
pub struct PgSchema {
    pub name: String,
    /// The server's URL with the schema as search path, and as application name.
    pub url: String,
    server: String,
}

impl PgSchema {
    /// Creates `{prefix}_{random}` on `server` (a PostgreSQL URL).
    pub async fn create(server: &str, prefix: &str) -> PgSchema {
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(server)
            .await
            .unwrap_or_else(|e| panic!("PCQ_TEST_DATABASE_URL={server} is not reachable: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let _ = admin.close().await;
        let separator = if server.contains('?') { '&' } else { '?' };
        // The schema's name is also the connections' application name, so that the drop can
        // end the connections of nodes still running when it drops the schema.
        let url = format!("{server}{separator}options[search_path]={name}&application_name={name}");
        PgSchema {
            name,
            url,
            server: server.to_owned(),
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop may run inside a test's runtime: clean up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&server).await {
                    // A node dropped with the test may still be running (its runtime is the
                    // one this drop blocks), holding the schema's locks in a transaction that
                    // cannot finish: end its connections first.
                    let _ = sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    )
                    .bind(&name)
                    .execute(&mut admin)
                    .await;
                    let _ = sqlx::query("SET lock_timeout = '10s'")
                        .execute(&mut admin)
                        .await;
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
                    )))
                    .execute(&mut admin)
                    .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}
