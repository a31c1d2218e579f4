//! Retention: deleting the records that are older than their kind is kept, a batch at a time.
//!
//! Each statement takes the oldest rows of its kind through the index on the time its age is
//! judged by (migration `retention`), at most `limit` of them, and deletes them by key, so a
//! batch never scans. The deletes are idempotent: on PostgreSQL two nodes pruning at once may
//! pick the same rows, and the one that comes second finds them gone and deletes nothing.

use pcq_core::time::Timestamp;
use uuid::Uuid;

use super::sql::{Arg, Sql, Statement, TextBuilder, sql};
use super::{StoreResult, Tx};

impl Tx<'_> {
    /// Deletes up to `limit` idempotency records created before `before`; returns how many.
    pub async fn prune_idempotency(&mut self, before: Timestamp, limit: i64) -> StoreResult<u64> {
        self.execute(sql!(
            "DELETE FROM idempotency WHERE (partner_tenant_id, request_id, method, route) IN \
             (SELECT partner_tenant_id, request_id, method, route FROM idempotency \
             WHERE created_at < ",
            { before },
            " ORDER BY created_at LIMIT ",
            { limit },
            ")",
        ))
        .await
    }

    /// Deletes up to `limit` audit records whose operation date is before `before`; returns
    /// how many.
    pub async fn prune_audit_records(&mut self, before: Timestamp, limit: i64) -> StoreResult<u64> {
        self.execute(sql!(
            "DELETE FROM audit_records WHERE seq IN (SELECT seq FROM audit_records \
             WHERE operation_date < ",
            { before },
            " ORDER BY operation_date LIMIT ",
            { limit },
            ")",
        ))
        .await
    }

    /// Deletes up to `limit` webhook deliveries that finished before `before`, and their
    /// attempts; returns how many deliveries and how many attempts. Pending deliveries have no
    /// finish time and are never taken.
    pub async fn prune_webhook_deliveries(
        &mut self,
        before: Timestamp,
        limit: i64,
    ) -> StoreResult<(u64, u64)> {
        // The deliveries this transaction deleted (not those a concurrent prune took), so their
        // attempts go with them.
        let ids: Vec<Uuid> = self
            .fetch_all(sql!(
                "DELETE FROM webhook_deliveries WHERE seq IN (SELECT seq FROM webhook_deliveries \
                 WHERE finished_at < ",
                { before },
                " ORDER BY finished_at LIMIT ",
                { limit },
                ") RETURNING id",
            ))
            .await?;
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let attempts = self.execute(delete_attempts_statement(&ids)).await?;
        Ok((ids.len() as u64, attempts))
    }
}

/// Deletes the attempts of the deliveries `ids`.
fn delete_attempts_statement(ids: &[Uuid]) -> Statement<'static> {
    let mut text = TextBuilder::default();
    text.push("DELETE FROM webhook_attempts WHERE delivery_id IN (");
    for n in 0..ids.len() {
        text.push(if n == 0 { "CAST(" } else { ", CAST(" });
        text.bind();
        text.push(" AS TEXT)");
    }
    text.push(")");
    Statement {
        sql: Sql::Built(text.finish()),
        args: ids.iter().map(|id| Arg::from(*id)).collect(),
    }
}
