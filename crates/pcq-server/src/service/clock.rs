//! The sandbox clock's offset, kept in the store so that restarts (and other nodes) agree.

use crate::store::{Op, StoreResult, Tx};

/// Meta key of the clock offset in microseconds.
pub const OFFSET_KEY: &str = "clock_offset_micros";

/// Reads the stored offset (0 when never advanced).
#[derive(Clone)]
pub struct StoredOffset;

impl Op for StoredOffset {
    type Output = i64;
    const BRIEF_READ: bool = true;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<i64> {
        Ok(tx
            .meta_get(OFFSET_KEY)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }
}

/// The latest time pcq's clock may show: 9999-12-31T23:59:59Z (dates must stay writable as
/// four-digit years).
pub const LATEST_MICROS: i64 = 253_402_300_799_000_000;

/// Moves the stored offset forward by `by` microseconds, unless the clock would pass
/// [`LATEST_MICROS`] given the system time `system_now`; returns the new offset, or `None`
/// when the move is refused (and nothing changed).
#[derive(Clone)]
pub struct Advance {
    /// How far.
    pub by: i64,
    /// The system time now, in microseconds.
    pub system_now: i64,
}

impl Op for Advance {
    type Output = Option<i64>;

    async fn run<T: Tx>(self, tx: &mut T) -> StoreResult<Option<i64>> {
        let current = StoredOffset.run(tx).await?;
        let next = current.checked_add(self.by);
        match next {
            Some(next)
                if self
                    .system_now
                    .checked_add(next)
                    .is_some_and(|t| t <= LATEST_MICROS) =>
            {
                tx.meta_put(OFFSET_KEY, &next.to_string()).await?;
                Ok(Some(next))
            }
            _ => Ok(None),
        }
    }
}
