//! The API budget (docs/architecture.md#budget): a token bucket per account and region, shared by every target
//! there, that every ELB (and DynamoDB) request waits on, retries included.
//!
//! On a throttling answer the bucket slows down (its rate halves, down to a sixteenth) and then
//! recovers linearly to the configured rate over [`RECOVERY`], so lbrecon yields to the console
//! and the operator's own control plane when the account's shared limit is reached.
//!
//! AWS counts requests against the account they are made in, whatever role signs them, so the
//! buckets are keyed by account ID and region ([`BudgetKey`]), never by the role.
//!
//! The presence pass comes first ([`Tier`]): while a presence request waits for a token, no deep
//! read takes one, so deep reads never delay the pass the guard depends on. Each target tells
//! its bucket what its presence pass costs ([`Bucket::set_presence_cost`]), so the deep reads of
//! every target sharing it get only what the interval's budget leaves after all of them
//! ([`Bucket::deep_calls`]), and when throttling shrinks the rate in force, they give way first.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How long a slowed bucket takes to return to its full rate.
pub const RECOVERY: Duration = Duration::from_secs(30);
const SLOWEST: f64 = 1.0 / 16.0;
/// How often a deep read that gave way to a waiting presence request looks again.
const YIELD_POLL: Duration = Duration::from_millis(20);

/// Which pass a request belongs to (docs/architecture.md#budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Every page of `DescribeLoadBalancers` and `DescribeTargetGroups` and the scan of the state
    /// table, and the confirmation of a record's loss: served before any deep read.
    Presence,
    /// Listeners, rules, attributes, tags: what is left.
    Deep,
}

/// One token bucket.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<State>,
    /// What each target's presence pass costs, in calls, as of its last pass.
    presence_costs: Mutex<HashMap<String, u64>>,
    /// The targets of the account and region this process leads, and how many there are in
    /// all: the process spends that share of the rate (replicas leading a third of the
    /// targets each spend a third each). With none set, the whole rate.
    leading: Mutex<Leading>,
}

#[derive(Debug, Default)]
struct Leading {
    targets: usize,
    led: std::collections::BTreeSet<String>,
}

impl Leading {
    /// The share of the rate this process spends.
    fn share(&self) -> f64 {
        if self.targets == 0 {
            1.0
        } else {
            (self.led.len().max(1) as f64 / self.targets as f64).min(1.0)
        }
    }
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
    /// The share of `rate` in force: 1 normally, less after throttling.
    factor: f64,
    /// Presence requests waiting for a token: deep reads take none meanwhile.
    presence_waiting: usize,
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
                presence_waiting: 0,
            }),
            presence_costs: Mutex::new(HashMap::new()),
            leading: Mutex::new(Leading::default()),
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
        let rate = self.shared_rate();
        state.tokens = (state.tokens + elapsed * rate * state.factor).min(self.burst);
    }

    /// The configured rate, times this process's share of the targets.
    fn shared_rate(&self) -> f64 {
        let share = self
            .leading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .share();
        self.rate * share
    }

    /// How many targets of this account and region the configuration holds.
    pub fn set_targets(&self, targets: usize) {
        self.leading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .targets = targets;
    }

    /// This process leads `target` (acts for it), or no longer does.
    pub fn set_led(&self, target: &str, leading: bool) {
        let mut state = self
            .leading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if leading {
            state.led.insert(target.to_string());
        } else {
            state.led.remove(target);
        }
    }

    /// Takes one token now, or says how long to wait before trying again.
    pub fn try_take(&self) -> Result<(), Duration> {
        let mut state = self.lock();
        self.take(&mut state)
    }

    fn take(&self, state: &mut State) -> Result<(), Duration> {
        self.refill(state, Instant::now());
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - state.tokens;
            Err(Duration::from_secs_f64(
                missing / (self.shared_rate() * state.factor),
            ))
        }
    }

    /// Waits for a token and takes it, a presence request before any deep read.
    pub async fn acquire(&self, tier: Tier) {
        match tier {
            Tier::Presence => {
                let waiting = Waiting::new(self);
                loop {
                    let wait = {
                        let mut state = self.lock();
                        match self.take(&mut state) {
                            Ok(()) => break,
                            Err(wait) => wait,
                        }
                    };
                    tokio::time::sleep(wait).await;
                }
                drop(waiting);
            }
            Tier::Deep => loop {
                let wait = {
                    let mut state = self.lock();
                    if state.presence_waiting > 0 {
                        YIELD_POLL
                    } else {
                        match self.take(&mut state) {
                            Ok(()) => return,
                            Err(wait) => wait,
                        }
                    }
                };
                tokio::time::sleep(wait).await;
            },
        }
    }

    /// Records what `target`'s presence pass costs (`ceil(N/400) + ceil(T/400)` ELB calls, or
    /// the scan's pages), as of its last pass.
    pub fn set_presence_cost(&self, target: &str, calls: u64) {
        self.presence_costs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(target.to_string(), calls);
    }

    /// Forgets what `target`'s presence pass costs: another replica reads it now.
    pub fn forget_presence_cost(&self, target: &str) {
        self.presence_costs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(target);
    }

    /// What `target`'s presence pass costs, as last told.
    pub fn presence_cost_of(&self, target: &str) -> Option<u64> {
        self.presence_costs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(target)
            .copied()
    }

    /// Holds deep reads back for as long as the hold lives: a presence request between two
    /// attempts (backing off after a throttle) keeps its place ahead of them.
    pub fn hold_for_presence(&self) -> impl Drop + '_ {
        Waiting::new(self)
    }

    /// What the presence passes of every target sharing this bucket cost together, and how many
    /// targets have told it.
    pub fn presence_cost(&self) -> (u64, usize) {
        let costs = self
            .presence_costs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (costs.values().sum(), costs.len())
    }

    /// The calls one of `sharing` targets may spend on deep reads in one `interval`: the
    /// interval's budget at the rate in force (less after throttling), less every sharing
    /// target's presence pass, split evenly. Zero when the presence passes need it all.
    pub fn deep_calls(&self, interval: Duration, sharing: usize) -> u64 {
        let (presence, _) = self.presence_cost();
        let budget = self.current_rate() * interval.as_secs_f64();
        ((budget - presence as f64).max(0.0) / sharing.max(1) as f64).floor() as u64
    }

    /// The configured rate this process may spend, in tokens a second: its share of the
    /// account and region's rate.
    pub fn rate(&self) -> f64 {
        self.shared_rate()
    }

    /// The API said to slow down: halve the rate in force.
    pub fn throttled(&self) {
        let mut state = self.lock();
        self.refill(&mut state, Instant::now());
        state.factor = (state.factor / 2.0).max(SLOWEST);
        state.tokens = state.tokens.min(0.0);
    }

    /// The rate in force now, in tokens a second: this process's share, less after throttling.
    pub fn current_rate(&self) -> f64 {
        let mut state = self.lock();
        self.refill(&mut state, Instant::now());
        self.shared_rate() * state.factor
    }
}

/// Counts a presence request as waiting while it lives, so a cancelled one stops counting too.
struct Waiting<'a>(&'a Bucket);

impl<'a> Waiting<'a> {
    fn new(bucket: &'a Bucket) -> Self {
        bucket.lock().presence_waiting += 1;
        Waiting(bucket)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.presence_waiting = state.presence_waiting.saturating_sub(1);
    }
}

/// The account of an IAM role, read from its ARN (`arn:PARTITION:iam::ACCOUNT:role/NAME`, in
/// any partition: `aws`, `aws-cn`, `aws-us-gov`, ...), or `None` when `arn` is not a role ARN.
pub fn account_of_role(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (prefix, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let is_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let role_name = resource
        .strip_prefix("role/")
        .and_then(|path| path.rsplit('/').next())
        .unwrap_or_default();
    (prefix == "arn"
        && partition.starts_with("aws")
        && service == "iam"
        && region.is_empty()
        && is_account
        && !role_name.is_empty())
    .then_some(account)
}

/// The account of default credentials whose account could not be learned: every target on
/// default credentials still shares one bucket per region under it.
pub const UNKNOWN_DEFAULT_ACCOUNT: &str = "default";

/// Whose budget a target spends: the account and region its requests count against at AWS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BudgetKey {
    /// The account ID; [`UNKNOWN_DEFAULT_ACCOUNT`], or the role's ARN, when it could not be
    /// learned.
    pub account: String,
    pub region: String,
}

/// The buckets of one process, by service, account and region, so targets in one account and
/// region share theirs whichever credentials they use.
#[derive(Debug, Default)]
pub struct Budgets {
    buckets: Mutex<HashMap<(String, BudgetKey), Arc<Bucket>>>,
    /// The account of the default credentials, asked for once per process.
    default_account: tokio::sync::OnceCell<String>,
}

impl Budgets {
    pub fn new() -> Arc<Budgets> {
        Arc::new(Budgets::default())
    }

    /// The budget key of a target in `region`: the account of its role, read from the ARN, or,
    /// for the default credentials (or a role ARN that names no account), the account
    /// `caller_account` learns (`GetCallerIdentity` with the target's credentials). The default
    /// credentials' account is asked for once per process; every later target reuses it.
    ///
    /// When that call fails, the default credentials' targets share the key
    /// [`UNKNOWN_DEFAULT_ACCOUNT`] (and a role's targets the role's ARN), and a warning says that
    /// targets reached through roles of the same account then have a budget of their own.
    pub async fn key<F, Fut, E>(
        &self,
        role_arn: Option<&str>,
        region: &str,
        caller_account: F,
    ) -> BudgetKey
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, E>>,
        E: std::fmt::Display,
    {
        let account = match role_arn {
            Some(role) => match account_of_role(role) {
                Some(account) => account.to_string(),
                None => caller_account().await.unwrap_or_else(|err| {
                    tracing::warn!(
                        role_arn = %role,
                        error = %err,
                        "the account of role {role} is unknown ({err}): its targets get a budget of their own, apart from other targets of the same account and region"
                    );
                    role.to_string()
                }),
            },
            None => self
                .default_account
                .get_or_init(|| async {
                    caller_account().await.unwrap_or_else(|err| {
                        tracing::warn!(
                            error = %err,
                            "the account of the default credentials is unknown ({err}): targets on the default credentials share one budget per region, but targets reached through roles of the same account get a budget of their own"
                        );
                        UNKNOWN_DEFAULT_ACCOUNT.to_string()
                    })
                })
                .await
                .clone(),
        };
        BudgetKey {
            account,
            region: region.to_string(),
        }
    }

    /// The bucket of `service` for this account and region, made on first use.
    pub fn bucket(&self, service: &str, key: &BudgetKey, rate: f64, burst: f64) -> Arc<Bucket> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        buckets
            .entry((service.to_string(), key.clone()))
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
            bucket.acquire(Tier::Deep).await;
        }
        assert!(start.elapsed() < Duration::from_millis(1));
        for _ in 0..20 {
            bucket.acquire(Tier::Deep).await;
        }
        // Twenty more at two a second: ten seconds.
        let elapsed = start.elapsed().as_secs_f64();
        assert!((9.9..10.1).contains(&elapsed), "{elapsed}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_presence_request_goes_before_every_deep_read() {
        let bucket = Bucket::new(1.0, 1.0);
        bucket.acquire(Tier::Presence).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Three deep reads queue first, then one presence request.
        for name in ["deep-1", "deep-2", "deep-3", "presence"] {
            let (bucket, order) = (bucket.clone(), order.clone());
            let tier = if name == "presence" {
                Tier::Presence
            } else {
                Tier::Deep
            };
            tasks.push(tokio::spawn(async move {
                bucket.acquire(tier).await;
                order.lock().unwrap().push(name);
            }));
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order[0], "presence", "{order:?}");
        assert_eq!(order.len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_presence_request_stops_holding_deep_reads_back() {
        let bucket = Bucket::new(1.0, 1.0);
        bucket.acquire(Tier::Presence).await;
        let waiting = tokio::spawn({
            let bucket = bucket.clone();
            async move { bucket.acquire(Tier::Presence).await }
        });
        tokio::task::yield_now().await;
        waiting.abort();
        let _ = waiting.await;
        let started = Instant::now();
        bucket.acquire(Tier::Deep).await;
        assert!(started.elapsed() <= Duration::from_millis(1100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_spends_its_led_targets_share_of_the_rate() {
        let bucket = Bucket::new(3.0, 1.0);
        assert!(
            (bucket.rate() - 3.0).abs() < 1e-9,
            "no targets told: the whole rate"
        );
        bucket.set_targets(6);
        bucket.set_led("a", true);
        bucket.set_led("b", true);
        // Two of six targets: a third of the account's rate.
        assert!((bucket.rate() - 1.0).abs() < 1e-9, "{}", bucket.rate());
        bucket.acquire(Tier::Presence).await;
        let started = Instant::now();
        bucket.acquire(Tier::Presence).await;
        assert!((started.elapsed().as_secs_f64() - 1.0).abs() < 0.01);
        bucket.set_led("b", false);
        assert!((bucket.rate() - 0.5).abs() < 1e-9);
        for target in ["a", "b", "c", "d", "e", "f"] {
            bucket.set_led(target, true);
        }
        assert!((bucket.rate() - 3.0).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_forgotten_target_stops_counting_in_the_presence_cost() {
        let bucket = Bucket::new(2.0, 10.0);
        bucket.set_presence_cost("a", 4);
        bucket.set_presence_cost("b", 6);
        bucket.forget_presence_cost("b");
        assert_eq!(bucket.presence_cost(), (4, 1));
        assert_eq!(bucket.presence_cost_of("a"), Some(4));
        assert_eq!(bucket.presence_cost_of("b"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn deep_reads_get_what_the_presence_passes_leave() {
        let bucket = Bucket::new(2.0, 10.0);
        let interval = Duration::from_secs(30);
        // No presence pass known yet: the whole interval's budget.
        assert_eq!(bucket.deep_calls(interval, 1), 60);
        bucket.set_presence_cost("a", 2);
        bucket.set_presence_cost("b", 4);
        bucket.set_presence_cost("a", 2);
        assert_eq!(bucket.presence_cost(), (6, 2));
        // 60 calls less both presence passes, split between the two targets.
        assert_eq!(bucket.deep_calls(interval, 2), 27);
        // Throttled: the rate in force halves, and the deep reads give way.
        bucket.throttled();
        assert_eq!(bucket.deep_calls(interval, 2), 12);
        // A presence pass that needs the whole budget leaves nothing.
        bucket.set_presence_cost("b", 1000);
        assert_eq!(bucket.deep_calls(interval, 2), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_slows_the_bucket_then_it_recovers() {
        let bucket = Bucket::new(4.0, 1.0);
        bucket.acquire(Tier::Deep).await;
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
        let key = |region: &str| BudgetKey {
            account: "123456789012".into(),
            region: region.into(),
        };
        let a = budgets.bucket("elb", &key("us-east-1"), 2.0, 10.0);
        let b = budgets.bucket("elb", &key("us-east-1"), 2.0, 10.0);
        let other = budgets.bucket("elb", &key("eu-west-1"), 2.0, 10.0);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &other));
        for _ in 0..10 {
            a.acquire(Tier::Deep).await;
        }
        assert!(b.try_take().is_err());
        assert!(other.try_take().is_ok());
    }

    #[test]
    fn the_account_of_a_role_comes_from_its_arn() {
        let cases = [
            ("arn:aws:iam::123456789012:role/x", Some("123456789012")),
            (
                "arn:aws:iam::123456789012:role/team/ops/reader",
                Some("123456789012"),
            ),
            ("arn:aws-cn:iam::210987654321:role/x", Some("210987654321")),
            (
                "arn:aws-us-gov:iam::111122223333:role/x",
                Some("111122223333"),
            ),
            // Malformed, or not a role: the account is asked of STS instead.
            ("", None),
            ("not-an-arn", None),
            ("arn:aws:iam::12345678901:role/x", None),
            ("arn:aws:iam::1234567890123:role/x", None),
            ("arn:aws:iam::12345678901x:role/x", None),
            ("arn:aws:iam::123456789012:role/", None),
            ("arn:aws:iam::123456789012:user/x", None),
            ("arn:aws:sts::123456789012:assumed-role/x/session", None),
            ("arn:aws:iam:us-east-1:123456789012:role/x", None),
            ("arn::iam::123456789012:role/x", None),
            ("arn:aws:iam::123456789012", None),
            ("urn:aws:iam::123456789012:role/x", None),
        ];
        for (arn, account) in cases {
            assert_eq!(account_of_role(arn), account, "{arn}");
        }
    }

    fn failed() -> String {
        "GetCallerIdentity failed: the request could not be sent".to_string()
    }

    #[tokio::test]
    async fn default_credentials_and_a_role_of_one_account_share_a_bucket() {
        let budgets = Budgets::new();
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let caller = || async {
            asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, String>("123456789012".to_string())
        };
        let default = budgets.key(None, "us-east-1", caller).await;
        let again = budgets.key(None, "us-east-1", caller).await;
        let role = budgets
            .key(
                Some("arn:aws:iam::123456789012:role/lbrecon-reader"),
                "us-east-1",
                caller,
            )
            .await;
        let other_account = budgets
            .key(
                Some("arn:aws:iam::210987654321:role/lbrecon-reader"),
                "us-east-1",
                caller,
            )
            .await;
        // The default credentials' account is asked for once; a role's comes from its ARN.
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(default, again);
        assert_eq!(default, role);
        assert_eq!(default.account, "123456789012");
        assert_ne!(default, other_account);
        let bucket = |key| budgets.bucket("elasticloadbalancing", key, 2.0, 10.0);
        assert!(Arc::ptr_eq(&bucket(&default), &bucket(&role)));
        assert!(!Arc::ptr_eq(&bucket(&default), &bucket(&other_account)));
    }

    #[tokio::test]
    async fn a_role_arn_without_an_account_asks_sts() {
        let budgets = Budgets::new();
        let key = budgets
            .key(Some("arn:aws:iam::role/x"), "us-east-1", || async {
                Ok::<_, String>("123456789012".to_string())
            })
            .await;
        assert_eq!(key.account, "123456789012");
        let unknown = budgets
            .key(Some("arn:aws:iam::role/x"), "us-east-1", || async {
                Err(failed())
            })
            .await;
        assert_eq!(unknown.account, "arn:aws:iam::role/x");
    }

    #[tokio::test]
    async fn when_sts_fails_default_credentials_still_share_a_bucket() {
        let budgets = Budgets::new();
        let a = budgets
            .key(None, "us-east-1", || async { Err(failed()) })
            .await;
        let b = budgets
            .key(None, "us-east-1", || async {
                Ok::<_, String>("123456789012".to_string())
            })
            .await;
        let west = budgets
            .key(None, "us-west-2", || async {
                Ok::<_, String>("123456789012".to_string())
            })
            .await;
        assert_eq!(a.account, UNKNOWN_DEFAULT_ACCOUNT);
        assert_eq!(a, b);
        assert_ne!(a, west);
        let role = budgets
            .key(
                Some("arn:aws:iam::123456789012:role/x"),
                "us-east-1",
                || async { Err(failed()) },
            )
            .await;
        assert_ne!(a, role);
    }
}
