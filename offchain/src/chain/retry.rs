//! Bounded retries with exponential backoff and jitter.

use std::time::Duration;

/// How a provider retries a request that failed transiently (HTTP 429, 425,
/// 5xx, a connection error or a timeout). Both bounds hold: at most
/// `max_attempts` attempts, and no pause that would end after `max_total`
/// from the first attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry; doubles with every retry.
    pub first_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
    /// The time budget of all attempts and pauses together.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, backoff from 250 ms to 8 s, 60 s in all.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_total: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The ceiling of the pause after failed attempt number `attempt` (1-based):
    /// `min(max_delay, first_delay · 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The pause after failed attempt `attempt`: "equal jitter", uniformly in
    /// `[ceiling/2, ceiling]`, so that clients that failed together spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.ceiling(attempt);
        let half = cap / 2;
        let spread = u64::try_from((cap - half).as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(rand::random_range(0..=spread))
    }
}

/// Reads a `Retry-After` header given in seconds. (The HTTP-date form is not
/// read; the backoff applies instead.)
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stays_within_its_jitter_band() {
        let p = RetryPolicy {
            max_attempts: 10,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
            max_total: Duration::from_secs(60),
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(3), Duration::from_millis(400));
        assert_eq!(p.ceiling(4), Duration::from_millis(700));
        assert_eq!(p.ceiling(40), Duration::from_millis(700));
        for attempt in 1..8 {
            let d = p.backoff(attempt);
            assert!(
                d >= p.ceiling(attempt) / 2 && d <= p.ceiling(attempt),
                "{d:?}"
            );
        }
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
