//! The sandbox clock's offset, kept in the store so that restarts (and other nodes) agree.

use crate::store::{Op, StoreResult, Tx};

/// Meta key of the clock offset in microseconds.
pub const OFFSET_KEY: &str = "clock_offset_micros";

/// Reads the stored offset (0 when never advanced).
pub struct StoredOffset;

impl Op for StoredOffset {
    type Output = i64;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<i64> {
        Ok(tx
            .meta_get(OFFSET_KEY)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }
}

/// Moves the stored offset forward; returns the new offset.
pub struct Advance(pub i64);

impl Op for Advance {
    type Output = i64;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<i64> {
        let current = StoredOffset.run(tx).await?;
        let next = current.saturating_add(self.0);
        tx.meta_put(OFFSET_KEY, &next.to_string()).await?;
        Ok(next)
    }
}
