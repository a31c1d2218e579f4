//! The one source of time in pcq.
//!
//! Every timestamp pcq stores or sends comes from a [`Clock`], never from the system directly,
//! so the sandbox can move time for the whole server.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use pcq_core::time::Timestamp;
use time::OffsetDateTime;

/// System time shifted by an adjustable offset. Cloning shares the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_micros: Arc<AtomicI64>,
    /// How many times the stored clock was reset, as this node last saw it.
    epoch: Arc<AtomicU64>,
    /// The sum of the offset's forward moves: it never goes back, even when a reset does.
    forward_micros: Arc<AtomicI64>,
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
        let old = self.offset_micros.swap(micros, Ordering::Relaxed);
        self.moved_forward(old, micros);
    }

    /// How many sandbox resets this node has taken up (the stored clock's epoch as last seen).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// How far the offset has moved forward in all (never less than before: time measured
    /// with it, such as the throttle's, does not run backwards when the clock is reset).
    pub fn forward_micros(&self) -> i64 {
        self.forward_micros.load(Ordering::Relaxed)
    }

    fn moved_forward(&self, old: i64, new: i64) {
        if new > old {
            let by = new.saturating_sub(old);
            let _ = self
                .forward_micros
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                    Some(f.saturating_add(by))
                });
        }
    }

    /// Takes up a stored offset: between resets the clock only moves forward, so a larger
    /// offset is newer; a reset (a larger `epoch`) replaces the offset whatever it is.
    pub fn observe(&self, offset: i64, epoch: u64) {
        let old = if self.epoch.fetch_max(epoch, Ordering::Relaxed) < epoch {
            self.offset_micros.swap(offset, Ordering::Relaxed)
        } else {
            self.offset_micros.fetch_max(offset, Ordering::Relaxed)
        };
        self.moved_forward(old, offset);
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

    #[test]
    fn a_reset_moves_the_clock_back_once() {
        let clock = Clock::system();
        clock.observe(5, 0);
        clock.observe(3, 0);
        assert_eq!(clock.offset_micros(), 5);
        clock.observe(0, 1);
        assert_eq!(clock.offset_micros(), 0);
        clock.observe(2, 1);
        assert_eq!(clock.offset_micros(), 2);
        assert_eq!(clock.forward_micros(), 7);
    }
}
