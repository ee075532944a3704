//! The API budget (SPEC 12): a token bucket per account and region, shared by every target
//! there, that every ELB (and DynamoDB) request waits on, retries included.
//!
//! On a throttling answer the bucket slows down (its rate halves, down to a sixteenth) and then
//! recovers linearly to the configured rate over [`RECOVERY`], so lbrecon yields to the console
//! and the operator's own control plane when the account's shared limit is reached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How long a slowed bucket takes to return to its full rate.
pub const RECOVERY: Duration = Duration::from_secs(30);
const SLOWEST: f64 = 1.0 / 16.0;

/// One token bucket.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
    /// The share of `rate` in force: 1 normally, less after throttling.
    factor: f64,
}

impl Bucket {
    /// A bucket of `rate` tokens a second holding at most `burst`, full at first.
    pub fn new(rate: f64, burst: f64) -> Arc<Bucket> {
        let burst = burst.max(1.0);
        Arc::new(Bucket {
            rate: rate.max(f64::MIN_POSITIVE),
            burst,
            state: Mutex::new(State {
                tokens: burst,
                last: Instant::now(),
                factor: 1.0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn refill(&self, state: &mut State, now: Instant) {
        let elapsed = now.saturating_duration_since(state.last).as_secs_f64();
        state.last = now;
        // Recover toward the full rate, then earn tokens at the rate in force.
        state.factor = (state.factor + elapsed / RECOVERY.as_secs_f64()).min(1.0);
        state.tokens = (state.tokens + elapsed * self.rate * state.factor).min(self.burst);
    }

    /// Takes one token now, or says how long to wait before trying again.
    pub fn try_take(&self) -> Result<(), Duration> {
        let mut state = self.lock();
        self.refill(&mut state, Instant::now());
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - state.tokens;
            Err(Duration::from_secs_f64(
                missing / (self.rate * state.factor),
            ))
        }
    }

    /// Waits for a token and takes it.
    pub async fn acquire(&self) {
        while let Err(wait) = self.try_take() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The API said to slow down: halve the rate in force.
    pub fn throttled(&self) {
        let mut state = self.lock();
        self.refill(&mut state, Instant::now());
        state.factor = (state.factor / 2.0).max(SLOWEST);
        state.tokens = state.tokens.min(0.0);
    }

    /// The rate in force now, in tokens a second.
    pub fn current_rate(&self) -> f64 {
        let mut state = self.lock();
        self.refill(&mut state, Instant::now());
        self.rate * state.factor
    }
}

/// The buckets of one process, by scope (an account, known by the role assumed, if any) and
/// region, so targets in one account and region share theirs.
#[derive(Debug, Default)]
pub struct Budgets {
    buckets: Mutex<HashMap<(String, String, String), Arc<Bucket>>>,
}

impl Budgets {
    pub fn new() -> Arc<Budgets> {
        Arc::new(Budgets::default())
    }

    /// The bucket of `service` for this account and region, made on first use.
    pub fn bucket(
        &self,
        service: &str,
        account: &str,
        region: &str,
        rate: f64,
        burst: f64,
    ) -> Arc<Bucket> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        buckets
            .entry((service.to_string(), account.to_string(), region.to_string()))
            .or_insert_with(|| Bucket::new(rate, burst))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_burst_then_the_rate() {
        let bucket = Bucket::new(2.0, 10.0);
        let start = Instant::now();
        for _ in 0..10 {
            bucket.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(1));
        for _ in 0..20 {
            bucket.acquire().await;
        }
        // Twenty more at two a second: ten seconds.
        let elapsed = start.elapsed().as_secs_f64();
        assert!((9.9..10.1).contains(&elapsed), "{elapsed}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_slows_the_bucket_then_it_recovers() {
        let bucket = Bucket::new(4.0, 1.0);
        bucket.acquire().await;
        bucket.throttled();
        assert!((bucket.current_rate() - 2.0).abs() < 0.01);
        bucket.throttled();
        bucket.throttled();
        bucket.throttled();
        bucket.throttled();
        assert!(
            (bucket.current_rate() - 4.0 / 16.0).abs() < 0.01,
            "{}",
            bucket.current_rate()
        );
        tokio::time::advance(RECOVERY).await;
        assert!((bucket.current_rate() - 4.0).abs() < 0.01);
    }

    #[tokio::test(start_paused = true)]
    async fn targets_of_one_account_and_region_share_a_bucket() {
        let budgets = Budgets::new();
        let a = budgets.bucket("elb", "default", "us-east-1", 2.0, 10.0);
        let b = budgets.bucket("elb", "default", "us-east-1", 2.0, 10.0);
        let other = budgets.bucket("elb", "default", "eu-west-1", 2.0, 10.0);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &other));
        for _ in 0..10 {
            a.acquire().await;
        }
        assert!(b.try_take().is_err());
        assert!(other.try_take().is_ok());
    }
}
