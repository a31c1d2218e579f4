//! The sandbox clock's offset, kept in the store so that restarts (and other nodes) agree.

use pcq_core::ApiFault;

use crate::error::Error;
use crate::store::{Op, Tx};

/// Reads the stored offset (0 when never advanced).
#[derive(Clone)]
pub struct StoredOffset;

impl Op for StoredOffset {
    type Output = i64;
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<i64, Error> {
        Ok(tx.clock_offset().await?)
    }
}

/// Reads the stored offset and how many times the clock was reset.
#[derive(Clone)]
pub struct StoredClock;

impl Op for StoredClock {
    type Output = (i64, u64);
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<(i64, u64), Error> {
        Ok((tx.clock_offset().await?, tx.clock_epoch().await?))
    }
}

/// The latest time pcq's clock may show: 9999-12-31T23:59:59Z (dates must stay writable as
/// four-digit years).
pub const LATEST_MICROS: i64 = 253_402_300_799_000_000;

/// Moves the stored offset forward by `by` microseconds, unless the clock would pass
/// [`LATEST_MICROS`] given the system time `system_now` (then 400, and nothing changes);
/// returns the new offset, which the node takes up once it is committed.
#[derive(Clone)]
pub struct Advance {
    /// How far.
    pub by: i64,
    /// How far, as the client wrote it (for the refusal).
    pub written: String,
    /// The system time now, in microseconds.
    pub system_now: i64,
}

impl Advance {
    /// An advance by `by` (as the client wrote it: `written`), judged against the system time
    /// now.
    pub fn from_now(by: pcq_core::vetting::Duration, written: &str) -> Self {
        Advance {
            by: by.as_micros(),
            written: written.to_owned(),
            system_now: pcq_core::time::Timestamp::from_datetime(time::OffsetDateTime::now_utc())
                .as_micros(),
        }
    }
}

impl Op for Advance {
    type Output = i64;

    async fn run(self, tx: &mut Tx<'_>) -> Result<i64, Error> {
        let current = tx.clock_offset().await?;
        let next = current
            .checked_add(self.by)
            .filter(|next| {
                self.system_now
                    .checked_add(*next)
                    .is_some_and(|t| t <= LATEST_MICROS)
            })
            .ok_or_else(|| {
                ApiFault::invalid_input(format!(
                    "Advancing by {} would move pcq's clock past 9999-12-31T23:59:59Z; \
                     choose a shorter advance.",
                    self.written
                ))
                .with_param("field", "advance")
            })?;
        tx.set_clock_offset(next).await?;
        Ok(next)
    }
}
