//! Faults injected on purpose (sandbox control): their rows, and the version in `meta` that
//! every change sets anew, so that each node can tell cheaply whether its copy is current.

use pcq_core::time::Timestamp;
use uuid::Uuid;

use super::sql::{Table, sql, table};
use super::{StoreResult, Tx};

/// Meta key of the faults' version: a new random value with every change of the `faults`
/// table (added, removed, spent), compared by the nodes that keep a copy.
const FAULTS_VERSION_KEY: &str = "faults_version";

/// A fault as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRow {
    /// Its id.
    pub id: Uuid,
    /// The method it matches (upper case), or `*` for any.
    pub method: String,
    /// The glob the request path must match.
    pub path: String,
    /// Only requests authenticated as this partner tenant, when set.
    pub partner_tenant_id: Option<Uuid>,
    /// The status answered (`"503"`), `"reset"` to close the connection, or none (a delay only).
    pub status: Option<String>,
    /// The `Retry-After` of the answer, when set.
    pub retry_after_seconds: Option<i64>,
    /// How long the answer is held back, in milliseconds.
    pub delay_ms: i64,
    /// The chance that a matching request is faulted, as written (`"0.3"`).
    pub probability: String,
    /// How many times it fires in all, when limited.
    pub count: Option<i64>,
    /// How many times it may still fire, when limited.
    pub remaining: Option<i64>,
    /// The seed that makes `probability` repeatable.
    pub seed: Option<i64>,
    /// `before` (the request never reaches its handler) or `after` (it takes effect first).
    pub fire_when: String,
    /// How many times it has fired.
    pub fired: i64,
    /// When it was added.
    pub created_at: Timestamp,
}

table!(FaultRow in "faults" {
    generated: [],
    columns: [
        id, method, path, partner_tenant_id, status, retry_after_seconds, delay_ms, probability,
        count, remaining, seed, fire_when, fired, created_at,
    ],
});

impl Tx<'_> {
    /// The stored faults' version (`None` before the first change).
    pub async fn faults_version(&mut self) -> StoreResult<Option<String>> {
        self.meta_get(FAULTS_VERSION_KEY).await
    }

    /// Gives the faults a new version and asks the node to take them up after the commit.
    async fn faults_changed(&mut self) -> StoreResult<()> {
        self.meta_put(FAULTS_VERSION_KEY, &Uuid::new_v4().to_string())
            .await?;
        self.faults_changed_effect();
        Ok(())
    }

    /// Every fault, oldest first.
    pub async fn faults(&mut self) -> StoreResult<Vec<FaultRow>> {
        self.fetch_all(sql!(
            "SELECT ",
            (FaultRow::COLUMNS),
            " FROM faults ORDER BY created_at, id",
        ))
        .await
    }

    /// Adds a fault.
    pub async fn insert_fault(&mut self, row: &FaultRow) -> StoreResult<()> {
        self.execute(sql!(
            "INSERT INTO faults (",
            (FaultRow::INSERT_COLUMNS),
            ") VALUES (",
            [FaultRow: row],
            ")",
        ))
        .await?;
        self.faults_changed().await
    }

    /// Removes one fault; `false` when there is none with that id.
    pub async fn delete_fault(&mut self, id: Uuid) -> StoreResult<bool> {
        let removed = self
            .execute(sql!("DELETE FROM faults WHERE id = ", { id }))
            .await?;
        if removed > 0 {
            self.faults_changed().await?;
        }
        Ok(removed > 0)
    }

    /// Removes every fault (or every fault scoped to `partner`); how many.
    pub async fn delete_faults(&mut self, partner: Option<Uuid>) -> StoreResult<u64> {
        let removed = match partner {
            None => self.execute(sql!("DELETE FROM faults")).await?,
            Some(partner) => {
                self.execute(sql!("DELETE FROM faults WHERE partner_tenant_id = ", {
                    partner
                },))
                    .await?
            }
        };
        if removed > 0 {
            self.faults_changed().await?;
        }
        Ok(removed)
    }

    /// Counts one firing of a fault, if it still exists and has firings left: a conditional
    /// update, so that concurrent requests on any node spend a limited fault exactly `count`
    /// times. A fault with none left afterwards is removed. `false` when it must not fire.
    pub async fn fire_fault(&mut self, id: Uuid) -> StoreResult<bool> {
        let left: Option<i64> = self
            .fetch_optional(sql!(
                "UPDATE faults SET fired = fired + 1, remaining = remaining - 1 WHERE id = ",
                { id },
                " AND (remaining IS NULL OR remaining > 0) RETURNING COALESCE(remaining, -1)",
            ))
            .await?;
        if left == Some(0) {
            self.execute(sql!(
                "DELETE FROM faults WHERE id = ",
                { id },
                " AND remaining = 0",
            ))
            .await?;
            self.faults_changed().await?;
        }
        Ok(left.is_some())
    }
}
