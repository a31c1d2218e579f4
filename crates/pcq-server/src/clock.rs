//! The one source of time in pcq.
//!
//! Every timestamp pcq stores or sends comes from a [`Clock`], never from the system directly,
//! so the sandbox can move time for the whole server.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use pcq_core::time::Timestamp;
use time::OffsetDateTime;

/// System time shifted by an adjustable offset. Cloning shares the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_micros: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock without offset.
    pub fn system() -> Self {
        Clock::default()
    }

    /// The current time as pcq sees it.
    pub fn now(&self) -> Timestamp {
        Timestamp::from_datetime(OffsetDateTime::now_utc())
            .plus_micros(self.offset_micros.load(Ordering::Relaxed))
    }

    /// How far pcq's time is ahead of the system's, in microseconds.
    pub fn offset_micros(&self) -> i64 {
        self.offset_micros.load(Ordering::Relaxed)
    }

    /// Sets how far pcq's time is ahead of the system's.
    pub fn set_offset_micros(&self, micros: i64) {
        self.offset_micros.store(micros, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_shared_between_clones() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = clock.now();
        other.set_offset_micros(3_600_000_000);
        assert!(clock.now().as_micros() - before.as_micros() >= 3_600_000_000);
        assert_eq!(clock.offset_micros(), 3_600_000_000);
    }
}
