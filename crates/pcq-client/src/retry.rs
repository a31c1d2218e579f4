//! When a call is attempted again, and after how long.
//!
//! The classification is the .NET SDK's: transport errors and every error status but 400, 401,
//! 403, 404, 409, 417 and 429 are retried, up to three times, with the same `MS-RequestId` (so a
//! write whose answer was lost is not applied twice). Beyond the .NET SDK, and as Partner
//! Center's throttling guidance asks, a 429 is retried too: after its `Retry-After`, plus a
//! jittered back-off so that the many clients throttled together do not all come back in the
//! same instant. Every wait is bounded, and so is the whole call.

use std::time::Duration;

/// How a client retries failed calls.
///
/// ```
/// use std::time::Duration;
/// use pcq_client::RetryPolicy;
///
/// let patient = RetryPolicy::default()
///     .max_retries(5)
///     .max_total_time(Duration::from_secs(120));
/// assert_eq!(patient.max_retries, 5);
/// assert_eq!(RetryPolicy::none().max_retries, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first (3, as the .NET SDK).
    pub max_retries: u32,
    /// The back-off before the first retry; it doubles with every further retry.
    pub base_backoff: Duration,
    /// The longest back-off (a `Retry-After` may ask for longer; it is honoured).
    pub max_backoff: Duration,
    /// The longest a call may take with its retries and waits: no retry is started whose wait
    /// would end past it.
    pub max_total_time: Duration,
    /// Whether 429 answers are retried (after their `Retry-After`).
    pub retry_throttled: bool,
}

impl Default for RetryPolicy {
    /// 3 retries, back-off from 250 ms doubling up to 8 s, 60 s in all, throttled calls retried.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_total_time: Duration::from_secs(60),
            retry_throttled: true,
        }
    }
}

/// What an attempt ended with, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// No answer: the connection failed, was reset or timed out.
    Transport,
    /// An error status, with the answer's `Retry-After` when it had one.
    Status(u16, Option<Duration>),
}

impl RetryPolicy {
    /// Never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// Sets [`RetryPolicy::max_retries`].
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets [`RetryPolicy::base_backoff`] and [`RetryPolicy::max_backoff`].
    #[must_use]
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_backoff = base;
        self.max_backoff = max.max(base);
        self
    }

    /// Sets [`RetryPolicy::max_total_time`].
    #[must_use]
    pub fn max_total_time(mut self, total: Duration) -> Self {
        self.max_total_time = total;
        self
    }

    /// Sets [`RetryPolicy::retry_throttled`].
    #[must_use]
    pub fn retry_throttled(mut self, on: bool) -> Self {
        self.retry_throttled = on;
        self
    }

    /// Whether an answer with this status is worth another attempt with the same request id
    /// (the .NET SDK's rule; 429 is decided by [`RetryPolicy::retry_throttled`]).
    pub fn is_retryable_status(status: u16) -> bool {
        status >= 400 && !matches!(status, 400 | 401 | 403 | 404 | 409 | 417 | 429)
    }

    /// The back-off before retry number `retry` (0 for the first): `base · 2^retry`, capped at
    /// `max_backoff`, of which the upper half is scaled by `jitter` (in `[0, 1]`): between half
    /// the exponential value and all of it.
    pub fn backoff_for(&self, retry: u32, jitter: f64) -> Duration {
        let exponential = self
            .base_backoff
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(self.max_backoff);
        let half = exponential / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// How long to wait before retrying after `outcome`, or `None` to give up: `retries_done`
    /// retries were made already and `elapsed` has passed since the call started.
    pub fn delay_after(
        &self,
        outcome: AttemptOutcome,
        retries_done: u32,
        elapsed: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        if retries_done >= self.max_retries {
            return None;
        }
        let backoff = self.backoff_for(retries_done, jitter);
        let delay = match outcome {
            AttemptOutcome::Transport => backoff,
            AttemptOutcome::Status(429, retry_after) => {
                if !self.retry_throttled {
                    return None;
                }
                retry_after.unwrap_or_default() + backoff
            }
            AttemptOutcome::Status(status, _) if Self::is_retryable_status(status) => backoff,
            AttemptOutcome::Status(..) => return None,
        };
        (elapsed.saturating_add(delay) <= self.max_total_time).then_some(delay)
    }
}

/// A number in `[0, 1)` from the operating system's randomness (by way of a v4 UUID, which the
/// client makes anyway for its request ids).
pub(crate) fn jitter() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn the_dotnet_classification() {
        for status in [400, 401, 403, 404, 409, 417, 429] {
            assert!(!RetryPolicy::is_retryable_status(status), "{status}");
        }
        for status in [405, 408, 413, 500, 502, 503, 504] {
            assert!(RetryPolicy::is_retryable_status(status), "{status}");
        }
        for status in [200, 201, 204, 304] {
            assert!(!RetryPolicy::is_retryable_status(status), "{status}");
        }
    }

    #[test]
    fn backoff_doubles_within_its_bounds_whatever_the_jitter() {
        let policy = RetryPolicy::default().backoff(MS(100), MS(1000));
        for retry in 0..40 {
            let exponential = MS(100 * (1u64 << retry.min(20))).min(MS(1000));
            for jitter in [0.0, 0.3, 0.999, 1.0, -5.0, 7.0] {
                let d = policy.backoff_for(retry, jitter);
                assert!(
                    d >= exponential / 2 && d <= exponential,
                    "{retry} {jitter} {d:?}"
                );
            }
        }
        assert_eq!(policy.backoff_for(0, 0.0), MS(50));
        assert_eq!(policy.backoff_for(0, 1.0), MS(100));
        assert_eq!(policy.backoff_for(1, 1.0), MS(200));
        assert_eq!(policy.backoff_for(9, 1.0), MS(1000));
    }

    #[test]
    fn jitter_stays_in_the_unit_interval() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn retries_stop_at_the_count_the_status_or_the_total_time() {
        let policy = RetryPolicy::default()
            .backoff(MS(100), MS(400))
            .max_total_time(Duration::from_secs(10));
        let t = AttemptOutcome::Transport;
        assert_eq!(policy.delay_after(t, 0, MS(0), 1.0), Some(MS(100)));
        assert_eq!(policy.delay_after(t, 2, MS(0), 1.0), Some(MS(400)));
        assert_eq!(
            policy.delay_after(t, 3, MS(0), 1.0),
            None,
            "3 retries at most"
        );
        let s503 = AttemptOutcome::Status(503, None);
        assert_eq!(policy.delay_after(s503, 1, MS(0), 0.0), Some(MS(100)));
        assert_eq!(
            policy.delay_after(AttemptOutcome::Status(409, None), 0, MS(0), 0.0),
            None
        );
        assert_eq!(
            policy.delay_after(s503, 0, Duration::from_secs(9) + MS(950), 1.0),
            None,
            "the wait would end past the total time"
        );
        assert_eq!(RetryPolicy::none().delay_after(s503, 0, MS(0), 0.0), None);
    }

    #[test]
    fn a_429_waits_its_retry_after_then_backs_off() {
        let policy = RetryPolicy::default().backoff(MS(100), MS(400));
        let throttled = AttemptOutcome::Status(429, Some(Duration::from_secs(2)));
        for jitter in [0.0, 0.5, 1.0] {
            let d = policy.delay_after(throttled, 0, MS(0), jitter).unwrap();
            assert!(d >= Duration::from_secs(2) + MS(50) && d <= Duration::from_secs(2) + MS(100));
        }
        let later = policy.delay_after(throttled, 2, MS(0), 1.0).unwrap();
        assert_eq!(later, Duration::from_secs(2) + MS(400));
        assert_eq!(
            policy
                .retry_throttled(false)
                .delay_after(throttled, 0, MS(0), 1.0),
            None
        );
        let long = AttemptOutcome::Status(429, Some(Duration::from_secs(3600)));
        assert_eq!(
            policy.delay_after(long, 0, MS(0), 0.0),
            None,
            "past the total time"
        );
    }
}
