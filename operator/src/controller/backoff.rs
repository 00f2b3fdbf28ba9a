//! When to look at a policy again: the interval, spread by jitter so that thousands of policies
//! created together do not all wake in the same instant; after failures, exponentially later,
//! jittered too, so an API server that answers 429 or 5xx is not met by a retry storm.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::Duration;

/// The first retry after a failed round.
const FIRST_RETRY: Duration = Duration::from_secs(5);
/// The longest wait between retries.
pub const MAX_RETRY: Duration = Duration::from_secs(300);

/// A random fraction in [0, 1), good enough for jitter (std's hasher keys are random per process).
fn random_fraction() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// `interval` plus up to 10 % more.
pub fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(1.0 + 0.1 * random_fraction())
}

/// The wait before retry number `failures` (1 for the first) of a policy evaluated every
/// `interval`: 5 s doubling up to the interval (and never over 5 min), each with "equal jitter"
/// (half fixed, half random), so waits never collapse to zero and never align. Never past the
/// interval: a failing policy is retried no more often than it first was, and no later than its
/// next regular round would have been, so after an outage of the API server every policy is
/// evaluated again within its interval of recovery (R10), and the retries of thousands of policies
/// are spread like their rounds.
pub fn retry_after(failures: u32, interval: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let base = FIRST_RETRY.saturating_mul(1 << exponent).min(MAX_RETRY).min(interval.max(Duration::from_secs(1)));
    base / 2 + (base / 2).mul_f64(random_fraction())
}

/// Consecutive failed rounds per policy (`namespace/name`), forgotten at its next good round.
#[derive(Default)]
pub struct Failures(Mutex<HashMap<String, u32>>);

impl Failures {
    /// Counts one more failure and returns how many in a row.
    pub fn record(&self, key: &str) -> u32 {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = map.entry(key.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    pub fn clear(&self, key: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// Forgets the policies not in `existing` (deleted ones).
    pub fn forget_except(&self, existing: &std::collections::HashSet<String>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|key, _| existing.contains(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_five_seconds_to_five_minutes_with_jitter_in_the_upper_half() {
        for (failures, base) in [(1, 5), (2, 10), (3, 20), (7, 300), (40, 300)] {
            let base = Duration::from_secs(base);
            for _ in 0..50 {
                let wait = retry_after(failures, Duration::from_secs(3600));
                assert!(wait >= base / 2 && wait <= base, "retry {failures}: {wait:?} outside [{:?}, {base:?}]", base / 2);
            }
        }
    }

    #[test]
    fn a_failing_policy_is_retried_no_later_than_its_interval() {
        let interval = Duration::from_secs(15);
        for failures in [3, 4, 10, 40] {
            for _ in 0..50 {
                let wait = retry_after(failures, interval);
                assert!(wait >= interval / 2 && wait <= interval, "retry {failures}: {wait:?}");
            }
        }
        assert!(retry_after(1, interval) <= Duration::from_secs(5), "the first retry stays at 5 s");
    }

    #[test]
    fn the_interval_is_spread_over_a_tenth_more() {
        let interval = Duration::from_secs(15);
        let waits: Vec<Duration> = (0..100).map(|_| jittered(interval)).collect();
        assert!(waits.iter().all(|w| *w >= interval && *w <= interval.mul_f64(1.1)));
        assert!(waits.iter().any(|w| *w != waits[0]), "jitter varies");
    }

    #[test]
    fn failures_count_in_a_row_and_a_good_round_forgets_them() {
        let failures = Failures::default();
        assert_eq!(failures.record("ns/a"), 1);
        assert_eq!(failures.record("ns/a"), 2);
        assert_eq!(failures.record("ns/b"), 1);
        failures.clear("ns/a");
        assert_eq!(failures.record("ns/a"), 1);
    }
}
