//! `lbrecon run`: one loop per target, a cycle every interval (with jitter), the HTTP listener,
//! and systemd integration.
//!
//! Targets are independent: each has its own loop and clients, so a slow or failing target never
//! delays another. The first shutdown signal lets every cycle in flight finish (each is bounded
//! by its deadline: `daemon.cycle_deadline`, or longer when the fleet's presence pass needs it),
//! starts no new one, and returns; `main` exits at once on a second.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::app::cycle::{DeepCache, DeepScope, read_presence};
use crate::app::http::{Status, router};
use crate::app::reader::{Items, Reader};
use crate::aws::Clients;
use crate::aws::autoscaling::AutoScaling;
use crate::control;
use crate::control::enforce::Enforcer;
use crate::control::{ControlItem, ControlStore, Loaded};
use crate::model::node::Node;
use crate::model::record::RecordCache;
use crate::reconcile::guard::HighWater;
use crate::reconcile::ignore::IgnoreRules;
use crate::reconcile::report::GuardView;
use crate::reconcile::report::TargetReport;
use crate::runtime::config::{Config, TargetConfig};
use crate::runtime::telemetry::{self, CycleEvent, DriftSeries};

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {address}: {source} (set http.listen to a free address)")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "state table {table} of target {target} does not exist in region {region}, and lbrecon \
         has never seen it: create it, or fix targets.state_table in the config"
    )]
    StateTableMissing {
        target: String,
        table: String,
        region: String,
    },
    #[error("{0}")]
    Config(String),
}

impl DaemonError {
    /// The process exit code: configuration problems are 78.
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Listen { .. } => crate::reconcile::report::exit::ERROR,
            DaemonError::StateTableMissing { .. } | DaemonError::Config(_) => {
                crate::reconcile::report::exit::CONFIG
            }
        }
    }

    /// A short, fixed label.
    pub fn kind(&self) -> &'static str {
        match self {
            DaemonError::Listen { .. } => "listen",
            DaemonError::StateTableMissing { .. } => "state_table_missing",
            DaemonError::Config(_) => "config",
        }
    }
}

/// ELB calls one load balancer's deep read takes, as a first estimate: listeners, attributes,
/// two listeners' rules, a target group's attributes, a share of tags.
const DEEP_CALLS_PER_LOAD_BALANCER: f64 = 6.0;

/// Rows a page of `DescribeLoadBalancers` or `DescribeTargetGroups` holds at most.
const PAGE_SIZE: u64 = crate::aws::elb::PAGE_SIZE as u64;

/// ELB calls the presence pass of a target takes for `load_balancers` and `target_groups`: one
/// page of each at least (docs/architecture.md#budget).
pub fn presence_calls(load_balancers: usize, target_groups: usize) -> u64 {
    (load_balancers as u64).div_ceil(PAGE_SIZE).max(1)
        + (target_groups as u64).div_ceil(PAGE_SIZE).max(1)
}

/// Items a page of the state table's scan holds at most.
const SCAN_PAGE: u64 = crate::aws::dynamodb::SCAN_PAGE_ITEMS as u64;

/// Pages the scan of a state table of `records` items takes: one at least.
pub fn scan_pages(records: usize) -> u64 {
    (records as u64).div_ceil(SCAN_PAGE).max(1)
}

/// How long the presence passes take at the configured rates: `elb_calls` at `elb_rate`, then
/// `scan_pages` at `scan_rate` (one after the other, as a cycle reads them).
pub fn presence_time(elb_calls: u64, elb_rate: f64, scan_pages: u64, scan_rate: f64) -> Duration {
    let seconds = elb_calls as f64 / elb_rate.max(f64::MIN_POSITIVE)
        + scan_pages as f64 / scan_rate.max(f64::MIN_POSITIVE);
    Duration::from_secs_f64(seconds.min(1e9))
}

/// The cadence the presence passes of every target sharing a budget can keep: the interval,
/// or longer when they need longer (`needed`).
pub fn cadence(interval: Duration, needed: Duration) -> Duration {
    if needed > interval {
        // In whole tenths of a second, rounded up, so the figure logged is the one kept.
        Duration::from_secs_f64((needed.as_secs_f64() * 10.0).ceil() / 10.0)
    } else {
        interval
    }
}

/// The cap on the next cycle's deep reads after this one planned `planned` and finished
/// `read` in time. Reads are handed in by batch, so a batch the deadline cuts yields nothing:
/// a cut halves the cap (down to one load balancer, which always fits) so that every cycle
/// makes progress, and a cycle that finished what it planned doubles it back.
pub fn deep_cap(cap: Option<usize>, planned: usize, read: usize) -> Option<usize> {
    if read < planned {
        Some(read.max(planned / 2).max(1))
    } else {
        cap.map(|cap| cap.saturating_mul(2))
            .filter(|cap| *cap < 1 << 20)
    }
}

/// How many load balancers this cycle deep-reads, from the calls the budget leaves the deep
/// reads this interval (`deep_calls`) and what earlier cycles left unspent (`credit`): a budget
/// too small for one load balancer an interval still reads one every few intervals. Returns the
/// limit and the credit carried to the next cycle (never more than one load balancer's worth
/// beyond an interval's).
pub fn deep_limit(deep_calls: u64, credit: f64) -> (usize, f64) {
    let available =
        (credit + deep_calls as f64).min(deep_calls as f64 + DEEP_CALLS_PER_LOAD_BALANCER);
    let limit = (available / DEEP_CALLS_PER_LOAD_BALANCER).floor();
    (
        limit as usize,
        available - limit * DEEP_CALLS_PER_LOAD_BALANCER,
    )
}

/// Runs the daemon until `shutdown` resolves; then lets the cycles in flight finish and returns.
pub async fn run(
    config: Config,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let config = Arc::new(config);
    let ignore = Arc::new(
        IgnoreRules::new(&config.ignore)
            .map_err(|problems| DaemonError::Config(problems.join("; ")))?,
    );
    let listener = tokio::net::TcpListener::bind(&config.http.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            address: config.http.listen.clone(),
            source,
        })?;
    tracing::info!(address = %config.http.listen, "listening for /metrics, /healthz, /readyz, /drift");

    // One budget per account and region for the whole process, shared by its targets.
    let budgets = crate::runtime::budget::Budgets::default();
    let mut runtimes = Vec::new();
    for target in &config.targets {
        let clients = Clients::connect(target, &config.aws, &budgets).await;
        runtimes.push((target.clone(), clients));
    }
    startup_checks(&runtimes).await?;

    let stall_after =
        config.daemon.interval + config.daemon.cycle_deadline + Duration::from_secs(30);
    let status = Arc::new(Status::new(
        config.targets.iter().map(|t| t.name.as_str()),
        stall_after,
    ));
    let (stop_tx, stop_rx) = watch::channel(false);

    let server = {
        let mut stop = stop_rx.clone();
        let app = router(status.clone(), metrics);
        tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await;
            if let Err(err) = result {
                tracing::error!(error = %err, "the HTTP listener failed");
            }
        })
    };

    let started = Instant::now();
    let mut loops = Vec::new();
    let mut elections = Vec::new();
    let owner = crate::control::lease::owner_id();
    if config.leader_election.is_some() {
        tracing::info!(owner = %owner, "leader election on: acting for a target only while holding its lease");
    }
    // Each process spends the share of an account and region's budget that its led targets
    // make of the targets there: replicas leading two of six targets each spend a third each.
    let mut per_key: HashMap<crate::runtime::budget::BudgetKey, usize> = HashMap::new();
    for (_, clients) in &runtimes {
        *per_key.entry(clients.budget.clone()).or_default() += 1;
    }
    for (_, clients) in &runtimes {
        let targets = per_key[&clients.budget];
        clients.elb_bucket.set_targets(targets);
        clients.dynamodb_bucket.set_targets(targets);
    }
    // The targets whose leases share a lease table (one per account and region) are shared
    // between the replicas there (docs/leader-election.md#sharing).
    let mut rosters: HashMap<crate::runtime::budget::BudgetKey, RosterGroup> = HashMap::new();
    if let Some(election) = &config.leader_election {
        for (_, clients) in &runtimes {
            let targets = runtimes
                .iter()
                .filter(|(_, other)| other.budget == clients.budget)
                .map(|(target, _)| target.name.clone())
                .collect();
            rosters
                .entry(clients.budget.clone())
                .or_insert_with(|| RosterGroup {
                    roster: crate::control::roster::Roster::new(
                        clients.dynamodb.without_budget(),
                        &election.table,
                        &owner,
                        election.lease,
                        targets,
                    ),
                    leases: Vec::new(),
                });
        }
    }
    for (target, mut clients) in runtimes {
        telemetry::target_started(&target.name, config.leader_election.is_some());
        // A throttled presence page is retried from its marker for most of the cycle's
        // deadline: it gives up just before it, so the report names the throttled call.
        clients.set_presence_patience(config.daemon.cycle_deadline.mul_f64(0.8));
        let (done_tx, done_rx) = watch::channel(false);
        let lease = config.leader_election.as_ref().map(|election| {
            // The lease's own client stays ungated; every other waits for the lease. It takes
            // no token from the DynamoDB budget either (docs/architecture.md#budget): a renewal that queued behind
            // a large scan of the state table could come after the lease ran out, and a leader
            // would lose its lease for being busy. The lease makes a call or two a heartbeat
            // (a third of the lease), too few to need a limit.
            let own = clients.dynamodb.without_budget();
            let gate = Arc::new(crate::control::lease::Gate::default());
            clients.set_gate(&gate);
            let group = rosters
                .get_mut(&clients.budget)
                .expect("a roster for every account and region");
            let lease = crate::control::lease::Lease::new(
                own,
                gate,
                &election.table,
                &target.name,
                &owner,
                election.lease,
                Some(group.roster.clone()),
            );
            group.leases.push(lease.clone());
            elections.push(tokio::spawn(lease.clone().run(stop_rx.clone(), done_rx)));
            lease
        });
        let looper = TargetLoop {
            lease,
            streams: clients.streams.clone(),
            basis: Default::default(),
            done: done_tx,
            elb_bucket: clients.elb_bucket.clone(),
            dynamodb_bucket: clients.dynamodb_bucket.clone(),
            reader: Reader::new(&clients, config.aws.concurrency, (&config.records).into()),
            // The control item's reads and fenced writes take no token from the DynamoDB budget:
            // a guard write queued behind a large scan would hold the lease's fence and delay
            // its renewal. They are a few calls a cycle.
            control_dynamodb: clients.dynamodb.without_budget(),
            scope: target.scope_rules(),
            autoscaling: clients.autoscaling.clone(),
            snapshots: crate::app::commands::recovery::store(&config, &clients),
            target,
            config: config.clone(),
            ignore: ignore.clone(),
            status: status.clone(),
            started,
        };
        loops.push(tokio::spawn(looper.run(stop_rx.clone())));
    }
    for (_, group) in rosters {
        elections.push(tokio::spawn(
            group.roster.run(group.leases, stop_rx.clone()),
        ));
    }

    notify(&[sd_notify::NotifyState::Ready]);
    let watchdog = spawn_watchdog(status.clone(), stop_rx.clone());

    shutdown.await;
    tracing::info!("shutting down: finishing the cycles in flight, starting no new one");
    notify(&[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    for handle in loops {
        let _ = handle.await;
    }
    for handle in elections {
        let _ = handle.await;
    }
    let _ = server.await;
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// A state table that does not exist is a configuration error at start-up, unless lbrecon has
/// seen it before (then every record is missing, which the cycles report).
async fn startup_checks(runtimes: &[(TargetConfig, Clients)]) -> Result<(), DaemonError> {
    for (target, clients) in runtimes {
        match clients.dynamodb.table_exists(&target.state_table).await {
            Ok(true) => {}
            Ok(false) => {
                let seen =
                    control::read_view(&clients.dynamodb, &target.control_table, &target.name)
                        .await
                        .map(|view| view.state_table_seen)
                        .unwrap_or(false);
                if !seen {
                    return Err(DaemonError::StateTableMissing {
                        target: target.name.clone(),
                        table: target.state_table.clone(),
                        region: target.region.clone(),
                    });
                }
            }
            Err(err) => {
                // Not a reason to refuse to start: the cycles report it as staleness.
                tracing::warn!(target_name = %target.name, error = %err, "cannot check that the state table exists");
            }
        }
    }
    Ok(())
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(err) = sd_notify::notify(states)
    {
        tracing::warn!(error = %err, "cannot notify systemd");
    }
}

/// Under systemd with `WatchdogSec=`, pings the watchdog only while every target's loop makes
/// progress, so a hung loop gets the service restarted.
fn spawn_watchdog(
    status: Arc<Status>,
    mut stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let timeout = sd_notify::watchdog_enabled().filter(|timeout| !timeout.is_zero())?;
    let period = timeout / 2;
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => return,
                _ = ticks.tick() => {
                    if status.alive() {
                        notify(&[sd_notify::NotifyState::Watchdog]);
                    } else {
                        tracing::error!("a reconciliation loop is stalled: not pinging the systemd watchdog");
                    }
                }
            }
        }
    }))
}

/// The replicas of one lease table and this replica's leases there.
struct RosterGroup {
    roster: Arc<crate::control::roster::Roster>,
    leases: Vec<Arc<crate::control::lease::Lease>>,
}

struct TargetLoop {
    /// With leader election, this replica's lease of the target.
    lease: Option<Arc<crate::control::lease::Lease>>,
    /// Set when the loop has stopped, so the lease is released only after.
    done: watch::Sender<bool>,
    target: TargetConfig,
    config: Arc<Config>,
    ignore: Arc<IgnoreRules>,
    /// The target's scope, compiled.
    scope: crate::reconcile::scope::ScopeRules,
    reader: Reader,
    /// The control table's client, outside the budget.
    control_dynamodb: crate::aws::dynamodb::Dynamo,
    autoscaling: AutoScaling,
    snapshots: crate::recovery::snapshot::Store,
    status: Arc<Status>,
    /// The state table's stream client.
    streams: crate::aws::streams::Streams,
    /// The last complete presence pass, for the stream's detection.
    basis: crate::app::stream::SharedBasis,
    /// That budget's ELB bucket.
    elb_bucket: Arc<crate::runtime::budget::Bucket>,
    /// And its DynamoDB bucket.
    dynamodb_bucket: Arc<crate::runtime::budget::Bucket>,
    started: Instant,
}

/// The high-water mark as a loop knows it: not read from the control table yet, or read (and
/// kept up to date since), possibly absent.
#[derive(Debug, Default)]
enum KnownMark {
    #[default]
    Unread,
    Read(Option<HighWater>),
}

/// What one target's loop carries from cycle to cycle.
#[derive(Default)]
struct LoopState {
    cache: DeepCache,
    /// The records of the last scan, so unchanged items are not read again.
    records: RecordCache,
    series: DriftSeries,
    /// The high-water mark, once read from the control table.
    high_water: KnownMark,
    protection_checked: Option<Instant>,
    warned_no_control_table: bool,
    /// The content hash of the last snapshot, once read from the store.
    last_snapshot: Option<String>,
    /// Tags of live load balancers without a record, by ARN, with when they were read (Unix
    /// seconds), where tags decide the scope. Those with a record are always in scope.
    scope_tags: HashMap<String, (Node, i64)>,
    /// When the deep-check age counts from (Unix seconds), as of the last complete cycle.
    deep_age_since: Option<i64>,
    /// Deep-read calls the budget left unspent (see [`deep_limit`]).
    deep_credit: f64,
    /// The most load balancers one cycle's deep reads finished in time, as last learnt (see
    /// [`deep_cap`]); none until a deadline cuts them.
    deep_cap: Option<usize>,
    /// The cadence the presence pass can keep, when longer than the interval.
    cadence: Option<Duration>,
    /// The stream's tailer, while this replica acts and the table has a stream.
    tail: Option<TailHandle>,
    /// When the state table's stream was last looked for, and what was said of it.
    stream_looked: Option<Instant>,
    stream_said: Option<String>,
    /// The next snapshot is written even if the state is unchanged: the journal started after
    /// the last one, and the recovery check needs a snapshot it follows.
    force_snapshot: bool,
    /// When this loop last wrote a snapshot.
    snapshot_written: Option<Instant>,
}

/// A running tailer.
struct TailHandle {
    stream_arn: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    sealed: watch::Receiver<i64>,
    /// When the journal this tailer writes begins (Unix milliseconds; 0 until it has started).
    begun: watch::Receiver<i64>,
    seal_now: Arc<tokio::sync::Notify>,
    /// The recovery check running, if one is.
    check: Option<tokio::task::JoinHandle<()>>,
}

/// How often the state table is looked at for a stream while it has none (or one lbrecon
/// cannot use).
const STREAM_LOOK_EVERY: Duration = Duration::from_secs(300);

/// Tags read for the scope are read again after this long (a tag added to a load balancer
/// without a record brings it into scope within it).
const SCOPE_TAGS_MAX_AGE: i64 = 3600;

/// How often a running cycle's progress is shown to the health check.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How often a standby looks at its lease between the election task's rounds.
const STANDBY_POLL: Duration = Duration::from_secs(1);

/// How often the state table's protection is read.
const PROTECTION_EVERY: Duration = Duration::from_secs(3600);

impl TargetLoop {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut state = LoopState::default();
        let mut next = tokio::time::Instant::now();
        let mut leader = self.lease.as_ref().map(|lease| lease.subscribe());
        let mut acting = self.lease.is_none();
        if acting {
            self.lead(true);
        }
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => break,
                _ = tokio::time::sleep_until(next) => {}
            }
            // Held through the cycle: the lease is handed over only between two cycles.
            let between_cycles = match &self.lease {
                Some(lease) => Some(lease.cycle().await),
                None => None,
            };
            if let (Some(lease), Some(leader)) = (&self.lease, leader.as_mut()) {
                if !lease.acting() {
                    drop(between_cycles);
                    self.stop_tail(&mut state, false).await;
                    // A standby: no AWS call but the lease's; wake when the lease changes hands.
                    acting = false;
                    self.status.standby(&self.target.name, true);
                    self.lead(false);
                    tokio::select! {
                        biased;
                        _ = stop.wait_for(|stopped| *stopped) => break,
                        _ = leader.changed() => {}
                        _ = tokio::time::sleep(STANDBY_POLL) => {}
                    }
                    next = tokio::time::Instant::now();
                    continue;
                }
                if !acting {
                    // Another replica may have acted meanwhile: start from the tables again.
                    acting = true;
                    self.lead(true);
                    state = LoopState {
                        series: std::mem::take(&mut state.series),
                        ..LoopState::default()
                    };
                    self.status.standby(&self.target.name, false);
                }
            }
            self.keep_tailing(&mut state).await;
            let cycle_start = tokio::time::Instant::now();
            self.status.progress(&self.target.name);
            let lost = async {
                match leader.as_mut() {
                    Some(leader) => {
                        let _ = leader.wait_for(|leading| !*leading).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.cycle(&mut state) => {}
                _ = self.show_progress() => {}
                _ = lost => {
                    tracing::warn!(target_name = %self.target.name, "the lease was lost during a cycle: the rest of it was dropped");
                    next = tokio::time::Instant::now();
                    continue;
                }
            }
            if *stop.borrow() {
                break;
            }
            self.check_protection(&mut state).await;
            let interval = state.cadence.unwrap_or(self.config.daemon.interval);
            next = cycle_start + interval + jitter(interval, self.config.daemon.jitter);
            let now = tokio::time::Instant::now();
            if next < now {
                tracing::warn!(target_name = %self.target.name, "a cycle took longer than the interval");
                next = now;
            }
        }
        self.stop_tail(&mut state, true).await;
        let _ = self.done.send(true);
    }

    /// Starts the stream's tailer when this replica acts, the target does not turn the stream
    /// off, and the state table has a stream lbrecon can use; says once why not otherwise.
    async fn keep_tailing(&self, state: &mut LoopState) {
        if self.target.stream == crate::runtime::config::StreamMode::Off {
            if state.stream_said.is_none() {
                let said = "targets[].stream is \"off\": the state table's stream is not read; losses are seen by the cycle alone, and restore --at gives the snapshot before the instant";
                tracing::info!(target_name = %self.target.name, "{said}");
                state.stream_said = Some(said.to_string());
            }
            return;
        }
        if state
            .tail
            .as_ref()
            .is_some_and(|tail| tail.task.is_finished())
        {
            // It stopped by itself (the lease was gone a moment): started again at once.
            state.tail = None;
            state.stream_looked = None;
        }
        if state
            .stream_looked
            .is_some_and(|at| at.elapsed() < STREAM_LOOK_EVERY)
        {
            return;
        }
        state.stream_looked = Some(Instant::now());
        let table = &self.target.state_table;
        let found = self.reader.dynamodb.stream_of(table).await;
        if let Some(tail) = &state.tail {
            match &found {
                Ok(Some((arn, _))) if *arn == tail.stream_arn => return,
                // Not known now: the tailer goes on with the stream it has.
                Err(_) => return,
                _ => {
                    tracing::info!(target_name = %self.target.name, stream = %tail.stream_arn, "the state table's stream changed or was disabled: tailing it stops");
                    self.stop_tail(state, true).await;
                    state.stream_looked = Some(Instant::now());
                }
            }
        }
        let said = match found {
            Ok(Some((arn, view))) if view == "NEW_AND_OLD_IMAGES" => {
                self.start_tail(state, arn);
                return;
            }
            Ok(Some((_, view))) => format!(
                "the state table {table} has a stream of view type {view}; lbrecon needs NEW_AND_OLD_IMAGES to journal both images. Its owner can change it (docs/architecture.md#stream); until then losses are seen by the cycle alone"
            ),
            Ok(None) => format!(
                "the state table {table} has no stream: losses are seen by the cycle alone, and restore --at gives the snapshot before the instant. Its owner can enable one with view type NEW_AND_OLD_IMAGES (docs/architecture.md#stream)"
            ),
            Err(err) => format!("cannot look for the state table's stream: {err}"),
        };
        if state.stream_said.as_deref() != Some(said.as_str()) {
            tracing::warn!(target_name = %self.target.name, "{said}");
            state.stream_said = Some(said);
        }
    }

    fn start_tail(&self, state: &mut LoopState, stream_arn: String) {
        tracing::info!(target_name = %self.target.name, stream = %stream_arn, "tailing the state table's stream");
        state.stream_said = None;
        let (stop, stop_rx) = watch::channel(false);
        let (sealed_tx, sealed) = watch::channel(0);
        let (begun_tx, begun) = watch::channel(0);
        let seal_now = Arc::new(tokio::sync::Notify::new());
        let tailer = crate::app::stream::Tailer {
            target: self.target.name.clone(),
            stream_arn: stream_arn.clone(),
            streams: self.streams.clone(),
            elb: self.reader.elb.clone(),
            journal: crate::app::stream::StoreJournal {
                store: self.snapshots.clone(),
                target: self.target.name.clone(),
                region: self.target.region.clone(),
                table: self.target.state_table.clone(),
                stream_arn,
            },
            control: Arc::new(self.control_dynamodb.clone()),
            control_table: self.target.control_table.clone(),
            lease: self.lease.clone(),
            autoscaling: Arc::new(self.autoscaling.clone()),
            guard: self.config.guard.clone(),
            rules: self.reader.rules.clone(),
            basis: self.basis.clone(),
            sealed: sealed_tx,
            begun: begun_tx,
        };
        let stream_arn = tailer.stream_arn.clone();
        let task = tokio::spawn(tailer.run(stop_rx, seal_now.clone()));
        state.tail = Some(TailHandle {
            stream_arn,
            stop,
            task,
            sealed,
            begun,
            seal_now,
            check: None,
        });
        state.force_snapshot = true;
    }

    /// Stops the tailer: `graceful` lets it seal what it read (the daemon stops); otherwise
    /// (the lease is gone) it is dropped, and the next leader reads again from the checkpoint.
    async fn stop_tail(&self, state: &mut LoopState, graceful: bool) {
        let Some(tail) = state.tail.take() else {
            return;
        };
        if let Some(check) = &tail.check {
            check.abort();
        }
        state.stream_looked = None;
        // The next tailer starts from the next complete presence pass, never from this one's.
        *self
            .basis
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        if graceful {
            let _ = tail.stop.send(true);
            let mut task = tail.task;
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        } else {
            tail.task.abort();
        }
    }

    /// Tells the budget what this target's presence pass costs, and keeps the cadence every
    /// presence pass sharing the budget can keep at its configured rate: the interval, or
    /// longer, said once with the numbers whenever it changes.
    fn keep_cadence(
        &self,
        presence: &crate::app::cycle::PresencePhase,
        cadence: &mut Option<Duration>,
    ) {
        let load_balancers =
            presence.load_balancers.len() + presence.outside.len() + presence.pending.len();
        let target_groups = presence.target_groups.len();
        self.elb_bucket.set_presence_cost(
            &self.target.name,
            presence_calls(load_balancers, target_groups),
        );
        let records = presence.records.len();
        self.dynamodb_bucket
            .set_presence_cost(&self.target.name, scan_pages(records));
        let (calls, targets) = self.elb_bucket.presence_cost();
        let (pages, _) = self.dynamodb_bucket.presence_cost();
        let interval = self.config.daemon.interval;
        let rate = self.elb_bucket.rate();
        let scan_rate = self.dynamodb_bucket.rate();
        let needed = presence_time(calls, rate, pages, scan_rate);
        let kept = self::cadence(interval, needed);
        let now = (kept > interval).then_some(kept);
        if now != *cadence {
            match now {
                Some(kept) => tracing::warn!(
                    target_name = %self.target.name,
                    load_balancers,
                    target_groups,
                    records,
                    presence_calls = calls,
                    scan_pages = pages,
                    sharing_targets = targets,
                    elb_requests_per_second = rate,
                    dynamodb_requests_per_second = scan_rate,
                    interval_seconds = interval.as_secs_f64(),
                    cadence_seconds = kept.as_secs_f64(),
                    "the presence pass needs {calls} ELB calls and {pages} scan pages a cycle ({load_balancers} load balancers, {target_groups} target groups and {records} records here, {targets} target(s) sharing the budget); at {rate} ELB and {scan_rate} DynamoDB calls a second that takes longer than daemon.interval ({}): keeping a cadence of {} instead. Raise aws.elb_requests_per_second (or aws.dynamodb_requests_per_second) to keep the interval",
                    humantime::format_duration(interval),
                    humantime::format_duration(kept),
                ),
                None => tracing::info!(
                    target_name = %self.target.name,
                    "the presence pass fits daemon.interval again: back to a cadence of {}",
                    humantime::format_duration(interval)
                ),
            }
            *cadence = now;
        }
    }

    fn control_store(&self) -> ControlStore<'_> {
        ControlStore {
            lease: self.lease.as_deref(),
            dynamodb: &self.control_dynamodb,
            table: &self.target.control_table,
            target: &self.target.name,
        }
    }

    /// This process leads the target, or no longer does: its share of the account and region's
    /// budget follows, and a target it no longer leads stops counting in what the presence
    /// passes cost here.
    fn lead(&self, leading: bool) {
        for bucket in [&self.elb_bucket, &self.dynamodb_bucket] {
            bucket.set_led(&self.target.name, leading);
        }
        if !leading {
            self.elb_bucket.forget_presence_cost(&self.target.name);
        }
    }

    /// While a cycle runs, tells the health check the loop is alive as long as its requests
    /// keep being answered: a presence pass of a large fleet may rightly take minutes. Never
    /// returns.
    async fn show_progress(&self) {
        let answered = || {
            let count = |calls: std::collections::BTreeMap<&str, (u64, u64)>| {
                calls.values().map(|(made, _)| made).sum::<u64>()
            };
            count(self.reader.elb.calls()) + count(self.reader.dynamodb.calls())
        };
        let mut last = answered();
        loop {
            tokio::time::sleep(PROGRESS_EVERY).await;
            let now = answered();
            if now != last {
                self.status.progress(&self.target.name);
                last = now;
            }
        }
    }

    /// How long this cycle's presence pass, guard and snapshot may take: `cycle_deadline`, or
    /// longer when the presence passes sharing the budget need longer at its configured rate
    /// (half as long again, for retries).
    fn presence_deadline(&self) -> Duration {
        let (calls, _) = self.elb_bucket.presence_cost();
        let (pages, _) = self.dynamodb_bucket.presence_cost();
        let needed = presence_time(
            calls,
            self.elb_bucket.rate(),
            pages,
            self.dynamodb_bucket.rate(),
        );
        self.config.daemon.cycle_deadline.max(needed.mul_f64(1.5))
    }

    /// Presence pages (`DescribeLoadBalancers`, `DescribeTargetGroups`) asked so far.
    fn presence_pages(&self) -> u64 {
        let calls = self.reader.elb.calls();
        ["DescribeLoadBalancers", "DescribeTargetGroups"]
            .iter()
            .filter_map(|operation| calls.get(operation))
            .map(|(made, retries)| made.saturating_sub(*retries))
            .sum()
    }

    /// One cycle: the control item, the presence pass, the guard, the deep pass, the report.
    async fn cycle(&self, state: &mut LoopState) {
        let target = &self.target;
        let started = Instant::now();
        let deadline = self.presence_deadline();
        let pages_before = self.presence_pages();
        let cycle_start = tokio::time::Instant::now();
        let store = self.control_store();
        let LoopState {
            cache,
            records,
            high_water,
            warned_no_control_table,
            last_snapshot,
            scope_tags,
            deep_credit,
            deep_cap,
            cadence,
            tail,
            force_snapshot,
            snapshot_written,
            ..
        } = state;
        let started_millis = crate::model::clock::now_millis();
        let work = async {
            let loaded = store.load().await;
            let view = match &loaded {
                Ok(Loaded::Item(item)) => Some(item.view()),
                _ => None,
            };
            let mut presence =
                read_presence(target, &self.reader, view.as_ref(), records, Items::Kept).await;
            if presence.complete {
                self.keep_cadence(&presence, cadence);
            }
            // Names the guard counts as missing, quarantines, or had a valid record for at the
            // high-water mark stay in scope whatever the rules say.
            let mut keep = view
                .as_ref()
                .map(|view| view.keep_in_scope.clone())
                .unwrap_or_default();
            // The mark is read before the scope is applied, so the first cycle after a restart
            // keeps the load balancers in scope only through records lost since.
            if presence.complete
                && matches!(high_water, KnownMark::Unread)
                && let Ok(Loaded::Item(_)) = &loaded
                && let Ok(mark) = store.load_high_water().await
            {
                *high_water = KnownMark::Read(mark);
            }
            if let KnownMark::Read(Some(mark)) = &*high_water {
                keep.extend(mark.names.iter().cloned());
            }
            presence.apply_scope(
                &target.name,
                &self.scope,
                |arn| {
                    scope_tags
                        .get(arn)
                        .map(|(tags, _)| Cow::Borrowed(tags))
                        .or_else(|| cache.tags(arn).map(Cow::Owned))
                },
                &keep,
            );
            let mut guard_error = None;
            let control = match loaded {
                Ok(Loaded::Item(mut item)) => {
                    if presence.complete
                        && let Err(err) = self.guard(&presence, &mut item, high_water).await
                    {
                        if err.is_condition_failed() {
                            tracing::warn!(target_name = %target.name, "the control item changed under this cycle; the guard acts again next cycle");
                        } else if err.is_not_leader() {
                            tracing::warn!(target_name = %target.name, "this replica no longer holds the lease: the guard's writes were refused");
                        } else {
                            guard_error = Some(err);
                        }
                    }
                    Some(*item)
                }
                Ok(Loaded::NoTable) => {
                    if !*warned_no_control_table {
                        tracing::error!(
                            target_name = %target.name,
                            table = %target.control_table,
                            "the control table does not exist: the guard cannot pause anything; run `lbrecon init --target {}`",
                            target.name
                        );
                        *warned_no_control_table = true;
                    }
                    None
                }
                Err(err) => {
                    guard_error = Some(err);
                    None
                }
            };
            if presence.complete && tail.is_some() {
                // What the stream's detection compares with, from now on.
                let basis = crate::app::stream::Basis::of(
                    started_millis,
                    &presence.load_balancers,
                    &presence.target_groups,
                    presence.valid_record_names(),
                );
                *self
                    .basis
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(basis));
            }
            // Once the journal has begun, one snapshot it follows (its scan started after the
            // journal did), whatever changed; and one an hour after, so the recovery check
            // replays at most an hour of the journal.
            let begun = tail.as_ref().map_or(0, |tail| *tail.begun.borrow());
            let journal_begun = begun > 0 && started_millis >= begun;
            if tail.is_some()
                && snapshot_written
                    .is_none_or(|at| at.elapsed() >= crate::app::stream::SNAPSHOT_EVERY)
            {
                *force_snapshot = true;
            }
            if *force_snapshot && journal_begun {
                *last_snapshot = Some(String::new());
            }
            if presence.complete && store.acting() {
                match crate::app::commands::recovery::snapshot_step(
                    &self.config,
                    target,
                    &self.snapshots,
                    &presence,
                    last_snapshot,
                    started_millis,
                )
                .await
                {
                    Ok(Some(_)) => {
                        *snapshot_written = Some(Instant::now());
                        if journal_begun {
                            *force_snapshot = false;
                        }
                    }
                    Ok(None) => {}
                    Err(err) => telemetry::snapshot_failed(&target.name, &err.to_string()),
                }
            }
            if presence.complete
                && store.acting()
                && let Some(tail) = tail.as_mut()
            {
                self.recovery_check(&presence, started_millis, tail);
            }
            // The items were kept for the snapshot and the recovery check alone: not held
            // through the deep pass.
            presence.items = Vec::new();
            // Deep reads (the scope's tags first) get what the interval's budget leaves after
            // every presence pass sharing it, and end before the next presence pass is due (or
            // the deadline).
            let interval = cadence.unwrap_or(self.config.daemon.interval);
            let (_, sharing) = self.elb_bucket.presence_cost();
            let mut deep_calls = self.elb_bucket.deep_calls(interval, sharing.max(1));
            let until = cycle_start + interval.min(deadline.mul_f64(0.9));
            if presence.complete && self.scope.needs_tags() {
                let read = self.read_scope_tags(&presence, scope_tags, deep_calls);
                match tokio::time::timeout_at(until, read).await {
                    Ok(spent) => deep_calls = deep_calls.saturating_sub(spent),
                    Err(_) => {
                        tracing::info!(target_name = %target.name, "the scope's tag reads ran out of time before the next presence pass: the pending load balancers are read first next cycle");
                        deep_calls = 0;
                    }
                }
            }
            let (limit, credit) = deep_limit(deep_calls, *deep_credit);
            *deep_credit = credit;
            let limit = deep_cap.map_or(limit, |cap| limit.min(cap));
            let cycle = presence
                .finish(
                    &self.reader,
                    &self.ignore,
                    DeepScope::Oldest {
                        limit,
                        until: Some(until),
                    },
                    cache,
                )
                .await;
            *deep_cap = self::deep_cap(*deep_cap, cycle.deep_planned, cycle.deep_read);
            if cycle.deep_read < cycle.deep_planned {
                tracing::info!(
                    target_name = %target.name,
                    read = cycle.deep_read,
                    planned = cycle.deep_planned,
                    "the deep reads ran out of time before the next presence pass: the rest are read first next cycle"
                );
            }
            (cycle, control, guard_error)
        };
        let Ok((cycle, control, guard_error)) = tokio::time::timeout(deadline, work).await else {
            // A presence pass cut short still says how many pages it needs at least: the next
            // cycle allows for them, and the cadence follows once one pass completes.
            let pages = self.presence_pages().saturating_sub(pages_before);
            let at_least = pages + 1;
            let known = self.elb_bucket.presence_cost_of(&target.name);
            if known.is_none_or(|calls| calls < at_least) {
                self.elb_bucket.set_presence_cost(&target.name, at_least);
            }
            let throttled = self
                .reader
                .elb
                .last_throttled()
                .into_iter()
                .chain(self.reader.dynamodb.last_throttled())
                .filter(|(_, at)| at.elapsed() < deadline)
                .map(|(operation, _)| format!("; {operation} was throttled"))
                .next()
                .unwrap_or_default();
            let report = TargetReport {
                target: target.name.clone(),
                complete: false,
                error: Some(format!(
                    "the cycle did not finish within daemon.cycle_deadline ({}){throttled}",
                    humantime::format_duration(deadline)
                )),
                summary: Default::default(),
                load_balancers: Vec::new(),
                guard: GuardView {
                    paused: false,
                    reason: None,
                },
                deep_checked_at: None,
                exit_code: crate::reconcile::report::exit::ERROR,
            };
            let deep_age = self.deep_age(None, state);
            self.finish(report, false, started, 0, deep_age, &mut state.series);
            return;
        };
        let guard = match (&control, &guard_error) {
            (Some(item), _) => item.view().guard,
            (None, Some(err)) => GuardView {
                paused: false,
                reason: Some(format!("control table unreadable ({})", err.kind())),
            },
            (None, None) => GuardView {
                paused: false,
                reason: Some(crate::control::NO_CONTROL_TABLE.to_string()),
            },
        };
        if let Some(item) = &control {
            telemetry::guard_state(&target.name, item.paused, item.quarantine.len());
        } else {
            telemetry::guard_state(&target.name, false, 0);
        }
        let mut report = cycle.report(target, guard, false);
        // A control table that cannot be read or written pages: the guard could not act.
        let complete = cycle.complete() && guard_error.is_none();
        if let Some(err) = &guard_error {
            tracing::error!(target_name = %target.name, error = %err, "the control table cannot be read or written; workflows must treat the flag as paused");
            report.complete = false;
            report.error = Some(format!("control table {}: {err}", target.control_table));
        }
        let deep_age = self.deep_age(Some(&cycle), state);
        self.finish(
            report,
            complete,
            started,
            cycle.deep_read,
            deep_age,
            &mut state.series,
        );
    }

    /// The recovery check (docs/architecture.md#stream), exported when it could run.
    fn recovery_check(
        &self,
        presence: &crate::app::cycle::PresencePhase,
        started_millis: i64,
        tail: &mut TailHandle,
    ) {
        // One at a time, beside the cycle: it waits for the journal to be sealed past the scan.
        if tail
            .check
            .as_ref()
            .is_some_and(|check| !check.is_finished())
        {
            return;
        }
        // The scan as digests, an item at a time: its items' trees would take some 80 MB at
        // 10,000 records, held while the check waits for the journal.
        let scanned: std::collections::BTreeMap<String, crate::model::item::Digests> = presence
            .items
            .iter()
            .filter_map(|stored| {
                let item = stored.item().ok()?;
                let name = item.get("name")?.as_s()?.to_string();
                Some((name, crate::model::item::digests(&item)))
            })
            .collect();
        let store = self.snapshots.clone();
        let target = self.target.name.clone();
        let mut sealed = tail.sealed.clone();
        let seal_now = tail.seal_now.clone();
        tail.check = Some(tokio::spawn(async move {
            if let Some(mismatches) = crate::app::stream::recovery_check(
                &store,
                &target,
                started_millis,
                &scanned,
                &mut sealed,
                &seal_now,
            )
            .await
            {
                telemetry::recovery_check(&target, &mismatches);
            }
        }));
    }

    /// The deep-check age after a cycle (`None`: it did not finish), in seconds; it keeps
    /// growing while cycles are incomplete.
    fn deep_age(
        &self,
        cycle: Option<&crate::app::cycle::Cycle>,
        state: &mut LoopState,
    ) -> Option<f64> {
        let now = crate::model::clock::now_unix();
        let started = now - self.started.elapsed().as_secs() as i64;
        let read = cycle.and_then(crate::app::cycle::Cycle::deep_read_age);
        let since = crate::app::cycle::deep_age_since(read, state.deep_age_since, started, now);
        state.deep_age_since = Some(since);
        Some((now - since).max(0) as f64)
    }

    async fn guard(
        &self,
        presence: &crate::app::cycle::PresencePhase,
        control: &mut ControlItem,
        high_water: &mut KnownMark,
    ) -> Result<(), crate::aws::AwsError> {
        let store = self.control_store();
        if let KnownMark::Unread = high_water {
            *high_water = KnownMark::Read(store.load_high_water().await?);
        }
        let KnownMark::Read(mark) = high_water else {
            unreachable!("read above")
        };
        let enforcer = Enforcer {
            target: &self.target.name,
            config: &self.config.guard,
            store,
            autoscaling: &self.autoscaling,
        };
        enforcer
            .after_presence(
                &presence.view(),
                &presence.observation(crate::model::clock::now_unix()),
                control,
                mark,
            )
            .await
            .map(|_| ())
    }

    /// Reads, ahead of the deep pass, the tags of the load balancers whose scope is pending,
    /// then of those read longest ago (past [`SCOPE_TAGS_MAX_AGE`]), in one call of 20 at most
    /// beyond the pending ones, and in `calls` at most (one at least). Tags of load balancers no
    /// longer live are dropped. Returns the calls it made.
    async fn read_scope_tags(
        &self,
        presence: &crate::app::cycle::PresencePhase,
        scope_tags: &mut HashMap<String, (Node, i64)>,
        calls: u64,
    ) -> u64 {
        let now = crate::model::clock::now_unix();
        let recorded = presence.record_names();
        let live: Vec<&crate::model::live::LiveLoadBalancer> = presence
            .load_balancers
            .iter()
            .chain(&presence.outside)
            .chain(&presence.pending)
            .collect();
        let live_arns: std::collections::HashSet<&str> =
            live.iter().map(|lb| lb.arn.as_str()).collect();
        scope_tags.retain(|arn, _| live_arns.contains(arn.as_str()));
        let mut stale: Vec<(i64, &crate::model::live::LiveLoadBalancer)> = live
            .iter()
            .filter(|lb| !recorded.contains(lb.name.as_str()))
            .filter_map(|lb| {
                scope_tags
                    .get(&lb.arn)
                    .filter(|(_, at)| now - at > SCOPE_TAGS_MAX_AGE)
                    .map(|(_, at)| (*at, *lb))
            })
            .collect();
        stale.sort_by_key(|(at, _)| *at);
        // Bounded per cycle, so a fleet of thousands of unrecorded load balancers after a start
        // is read over a few cycles, never in one that its deadline would drop.
        let most = crate::aws::elb::TAGS_PER_CALL.saturating_mul(calls.clamp(1, 50) as usize);
        let to_read: Vec<&crate::model::live::LiveLoadBalancer> = presence
            .pending
            .iter()
            .chain(stale.into_iter().take(20).map(|(_, lb)| lb))
            .take(most)
            .collect();
        if to_read.is_empty() {
            return 0;
        }
        let spent = to_read.len().div_ceil(crate::aws::elb::TAGS_PER_CALL) as u64;
        let (read, failures) = crate::app::cycle::read_scope_tags(&self.reader, &to_read).await;
        for failure in failures {
            tracing::warn!(target_name = %self.target.name, "{failure}; those load balancers stay pending and are read again next cycle");
        }
        for (arn, tags) in read {
            scope_tags.insert(arn, (tags, now));
        }
        spent
    }

    /// Reads the state table's protection once an hour and exports it.
    async fn check_protection(&self, state: &mut LoopState) {
        if state
            .protection_checked
            .is_some_and(|at| at.elapsed() < PROTECTION_EVERY)
        {
            return;
        }
        state.protection_checked = Some(Instant::now());
        let protection = self
            .reader
            .dynamodb
            .protection(&self.target.state_table)
            .await;
        telemetry::state_table_protection(
            &self.target.name,
            &self.target.state_table,
            protection.kinds(),
        );
    }

    fn finish(
        &self,
        report: TargetReport,
        complete: bool,
        started: Instant,
        deep_read: usize,
        deep_check_age: Option<f64>,
        series: &mut DriftSeries,
    ) {
        let metrics_config = &self.config.metrics;
        telemetry::cycle_finished(
            &CycleEvent {
                target: &self.target.name,
                complete,
                duration: started.elapsed(),
                report: &report,
                deep_read,
                deep_check_age,
                per_load_balancer: metrics_config
                    .per_load_balancer
                    .then_some(metrics_config.per_load_balancer_limit),
            },
            series,
        );
        self.status.cycle_done(
            &self.target.name,
            report,
            complete,
            crate::model::clock::now_rfc3339(),
        );
    }
}

/// A random delay of up to `fraction` of `interval`.
fn jitter(interval: Duration, fraction: f64) -> Duration {
    if fraction <= 0.0 {
        return Duration::ZERO;
    }
    interval.mul_f64(fraction * rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_presence_pass_costs_a_page_per_400() {
        assert_eq!(presence_calls(0, 0), 2);
        assert_eq!(presence_calls(400, 1), 2);
        assert_eq!(presence_calls(401, 400), 3);
        assert_eq!(presence_calls(100_000, 100_000), 500);
    }

    #[test]
    fn the_cadence_is_the_interval_unless_the_presence_pass_needs_longer() {
        let interval = Duration::from_secs(30);
        let at = |calls, pages| cadence(interval, presence_time(calls, 2.0, pages, 25.0));
        assert_eq!(at(2, 1), interval);
        assert_eq!(at(58, 25), interval);
        // 100,000 load balancers and as many target groups at 2 calls a second, 100,000
        // records at 25 pages a second: 250 s and 16 s.
        assert_eq!(at(500, scan_pages(100_000)), Duration::from_secs(266));
        assert_eq!(at(61, 0), Duration::from_millis(30_500));
        assert_eq!(scan_pages(0), 1);
        assert_eq!(scan_pages(250), 1);
        assert_eq!(scan_pages(251), 2);
    }

    #[test]
    fn a_deadline_in_the_deep_reads_halves_the_next_cycles_share_until_they_fit() {
        // Twenty planned, none in time: ten next, then five; two batches a cycle fit again.
        assert_eq!(deep_cap(None, 20, 0), Some(10));
        assert_eq!(deep_cap(Some(10), 10, 0), Some(5));
        assert_eq!(deep_cap(Some(5), 5, 3), Some(3));
        assert_eq!(deep_cap(Some(1), 1, 0), Some(1));
        // Finished what it planned: the cap doubles back, then goes.
        assert_eq!(deep_cap(Some(3), 3, 3), Some(6));
        assert_eq!(deep_cap(Some(1 << 19), 10, 10), None);
        assert_eq!(deep_cap(None, 10, 10), None);
    }

    #[test]
    fn deep_reads_get_what_the_budget_leaves() {
        // 60 calls an interval, 6 a load balancer.
        assert_eq!(deep_limit(58, 0.0), (9, 4.0));
        // Nothing left after the presence pass: none this cycle, nothing carried.
        assert_eq!(deep_limit(0, 0.0), (0, 0.0));
        // Two calls an interval: one load balancer every third interval.
        let (first, credit) = deep_limit(2, 0.0);
        let (second, credit) = deep_limit(2, credit);
        let (third, credit) = deep_limit(2, credit);
        assert_eq!((first, second, third, credit), (0, 0, 1, 0.0));
        // Credit never grows past one load balancer beyond an interval's calls.
        assert_eq!(deep_limit(2, 100.0), (1, 2.0));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        for _ in 0..100 {
            let delay = jitter(Duration::from_secs(10), 0.1);
            assert!(delay <= Duration::from_secs(1));
        }
        assert_eq!(jitter(Duration::from_secs(10), 0.0), Duration::ZERO);
    }
}
