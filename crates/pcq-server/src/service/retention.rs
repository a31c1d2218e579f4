//! Retention: the worker deletes records older than `[retention]` keeps them, in small batches.
//!
//! Each batch is one short write transaction (on SQLite, one turn of the writer shared with the
//! requests' writes of its group commit); the background pruner pauses between batches so that
//! requests' writes go in between. Age is judged on pcq's clock. Qualification history is never
//! pruned: it is a qualification's state, and the API shows it.

use std::time::Duration;

use pcq_core::time::Timestamp;

use crate::AppState;
use crate::config::Retention;
use crate::error::Error;
use crate::store::{Isolation, Op, Tx};

/// A kind of record retention prunes, as the metric's `kind` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Idempotency records and their stored answers.
    Idempotency,
    /// Finished webhook deliveries.
    WebhookDeliveries,
    /// The attempts of the pruned deliveries (pruned with them).
    WebhookAttempts,
    /// Audit records.
    AuditRecords,
}

impl Kind {
    /// Every kind, in the order of the metric's series.
    pub const ALL: [Kind; 4] = [
        Kind::Idempotency,
        Kind::WebhookDeliveries,
        Kind::WebhookAttempts,
        Kind::AuditRecords,
    ];

    /// The `kind` label.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Idempotency => "idempotency",
            Kind::WebhookDeliveries => "webhook_deliveries",
            Kind::WebhookAttempts => "webhook_attempts",
            Kind::AuditRecords => "audit_records",
        }
    }
}

/// Deletes one batch of expired records of one kind (deliveries take their attempts along);
/// returns the rows deleted: of the kind, and attempts.
#[derive(Debug, Clone)]
struct PruneBatch {
    kind: Kind,
    before: Timestamp,
    limit: i64,
}

impl Op for PruneBatch {
    type Output = (u64, u64);
    /// Each statement deletes rows by key; rows a concurrent prune took are simply not found.
    const ISOLATION: Isolation = Isolation::ReadCommitted;

    async fn run(self, tx: &mut Tx<'_>) -> Result<(u64, u64), Error> {
        Ok(match self.kind {
            Kind::Idempotency => (tx.prune_idempotency(self.before, self.limit).await?, 0),
            Kind::WebhookDeliveries => tx.prune_webhook_deliveries(self.before, self.limit).await?,
            Kind::AuditRecords => (tx.prune_audit_records(self.before, self.limit).await?, 0),
            Kind::WebhookAttempts => (0, 0),
        })
    }
}

/// Deletes every record older than its kind is kept, a batch at a time, pausing `pause`
/// between batches; counts them in the metrics and returns how many rows went (attempts
/// included).
pub async fn prune_expired(state: &AppState, pause: Duration) -> Result<u64, Error> {
    let config = &state.config.retention;
    let limit = i64::from(config.batch_size);
    let mut total = 0;
    for (kind, keep) in [
        (Kind::Idempotency, config.idempotency),
        (Kind::WebhookDeliveries, config.webhook_deliveries),
        (Kind::AuditRecords, config.audit_records),
    ] {
        let Retention(Some(keep)) = keep else {
            continue;
        };
        loop {
            // The clock is read for each batch: an advanced sandbox clock applies at once.
            let before = state.pipeline.now().plus_micros(-keep.as_micros());
            let (rows, attempts) = state
                .pipeline
                .write(PruneBatch {
                    kind,
                    before,
                    limit,
                })
                .await?;
            state.metrics.retention_pruned(kind, rows);
            state
                .metrics
                .retention_pruned(Kind::WebhookAttempts, attempts);
            total += rows + attempts;
            if rows < limit as u64 {
                break;
            }
            if pause.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(pause).await;
            }
        }
    }
    Ok(total)
}
