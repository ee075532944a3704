//! The configuration file (TOML): parsing, defaults and validation.
//!
//! Parsing rejects unknown keys. Validation then collects every problem it finds, each naming
//! the offending key, so an operator fixes a config in one pass rather than one error at a time.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::document::LOAD_BALANCER;
pub use crate::model::record::RecordsConfig;
pub use crate::reconcile::guard::{GuardConfig, PauseScope, PauserConfig, PauserKind};
use crate::reconcile::ignore::IgnoreRules;

/// Where the config is read from when `--config` is not given and `LBRECON_CONFIG` is unset.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/lbrecon/lbrecon.toml";

/// The whole configuration file, as parsed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
    #[serde(default)]
    pub guard: GuardConfig,
    #[serde(default)]
    pub snapshots: SnapshotsConfig,
    #[serde(default)]
    pub aws: AwsConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub leader_election: Option<LeaderElectionConfig>,
    #[serde(default)]
    pub ignore: Vec<IgnoreConfig>,
    #[serde(default)]
    pub records: RecordsConfig,
}

/// `[daemon]`: the reconciliation loop.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Time between the starts of two cycles of one target.
    #[serde(
        default = "default_interval",
        with = "crate::model::clock::humantime_serde"
    )]
    pub interval: Duration,
    /// Each cycle starts up to this fraction of `interval` late, so replicas and targets spread
    /// their calls instead of hitting the API in step.
    #[serde(default = "default_jitter")]
    pub jitter: f64,
    /// The longest one cycle may run before it is abandoned as incomplete; also the longest a
    /// shutdown waits for the cycle in flight.
    #[serde(
        default = "default_cycle_deadline",
        with = "crate::model::clock::humantime_serde"
    )]
    pub cycle_deadline: Duration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            interval: default_interval(),
            jitter: default_jitter(),
            cycle_deadline: default_cycle_deadline(),
        }
    }
}

/// `[http]`: the metrics and health listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
        }
    }
}

/// `[[targets]]`: one account and region to reconcile.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub name: String,
    pub region: String,
    pub state_table: String,
    pub control_table: String,
    /// An IAM role to assume for every call of this target (cross-account fleets).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The load balancers this target's control plane owns (docs/architecture.md#terms); the whole account and
    /// region by default.
    #[serde(default)]
    pub scope: ScopeConfig,
    /// Whether to tail the state table's stream (docs/architecture.md#stream).
    #[serde(default)]
    pub stream: StreamMode,
}

/// `targets[].stream`: use the state table's stream when it has one, or never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamMode {
    #[default]
    Auto,
    Off,
}

pub use crate::reconcile::ignore::IgnoreConfig;
pub use crate::reconcile::scope::ScopeConfig;

impl TargetConfig {
    /// The target's scope, compiled; the whole account and region if its rules do not compile
    /// (a config that passed validation always compiles).
    pub fn scope_rules(&self) -> crate::reconcile::scope::ScopeRules {
        crate::reconcile::scope::ScopeRules::new(&self.scope, &self.name).unwrap_or_default()
    }
}

/// `[snapshots]`: where point-in-time snapshots of the state table are kept.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotsConfig {
    #[serde(default = "default_snapshot_dir")]
    pub dir: PathBuf,
    #[serde(default)]
    pub s3: Option<S3Config>,
    /// Snapshots older than this are pruned (never while a record is missing).
    #[serde(
        default = "default_retention",
        with = "crate::model::clock::humantime_serde"
    )]
    pub retention: Duration,
    /// At most this many snapshots are kept per target.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

impl Default for SnapshotsConfig {
    fn default() -> Self {
        SnapshotsConfig {
            dir: default_snapshot_dir(),
            s3: None,
            retention: default_retention(),
            keep: default_keep(),
        }
    }
}

/// `[snapshots.s3]`: keep snapshots in S3 instead of a local directory.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
}

/// `[aws]`: the API budget, concurrency, timeouts and retries of every AWS client.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// ELB Describe calls a second, per account and region, shared by every target there.
    #[serde(default = "default_elb_rps")]
    pub elb_requests_per_second: f64,
    /// The ELB bucket's burst.
    #[serde(default = "default_elb_burst")]
    pub elb_burst: u32,
    /// DynamoDB calls a second, per account and region.
    #[serde(default = "default_dynamodb_rps")]
    pub dynamodb_requests_per_second: f64,
    /// Requests in flight at once per target.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Attempts per call, the first included (the SDK's standard retry mode).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The longest one attempt may take.
    #[serde(
        default = "default_attempt_timeout",
        with = "crate::model::clock::humantime_serde"
    )]
    pub attempt_timeout: Duration,
    /// The longest one call may take, retries included.
    #[serde(
        default = "default_operation_timeout",
        with = "crate::model::clock::humantime_serde"
    )]
    pub operation_timeout: Duration,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            elb_requests_per_second: default_elb_rps(),
            elb_burst: default_elb_burst(),
            dynamodb_requests_per_second: default_dynamodb_rps(),
            concurrency: default_concurrency(),
            max_attempts: default_max_attempts(),
            attempt_timeout: default_attempt_timeout(),
            operation_timeout: default_operation_timeout(),
        }
    }
}

/// `[metrics]`: what `/metrics` exports.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Export `lbrecon_load_balancer_drift{name,kind}`, one series per drifted load balancer.
    #[serde(default = "default_true")]
    pub per_load_balancer: bool,
    /// At most this many per-load-balancer series per target (bounded cardinality).
    #[serde(default = "default_per_lb_cap")]
    pub per_load_balancer_limit: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            per_load_balancer: true,
            per_load_balancer_limit: default_per_lb_cap(),
        }
    }
}

/// `[leader_election]`: several replicas, one acting per target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderElectionConfig {
    pub table: String,
    #[serde(
        default = "default_lease",
        with = "crate::model::clock::humantime_serde"
    )]
    pub lease: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_jitter() -> f64 {
    0.1
}
fn default_cycle_deadline() -> Duration {
    Duration::from_secs(60)
}
fn default_listen() -> String {
    "127.0.0.1:9477".to_string()
}
fn default_snapshot_dir() -> PathBuf {
    PathBuf::from("/var/lib/lbrecon/snapshots")
}
fn default_retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_keep() -> u32 {
    500
}
fn default_elb_rps() -> f64 {
    2.0
}
fn default_elb_burst() -> u32 {
    10
}
fn default_dynamodb_rps() -> f64 {
    25.0
}
fn default_concurrency() -> usize {
    4
}
fn default_max_attempts() -> u32 {
    3
}
fn default_attempt_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_operation_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_true() -> bool {
    true
}
fn default_per_lb_cap() -> usize {
    1000
}
fn default_lease() -> Duration {
    Duration::from_secs(15)
}

/// Why a config could not be used. Every variant maps to exit code 78.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read config file {path}: {source} (pass --config PATH or set LBRECON_CONFIG; \
         config/lbrecon.example.toml is a commented example)"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path} has {} problem(s):\n{}", .problems.len(), Problems(.problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

struct Problems<'a>(&'a [String]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// A short, fixed label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "read",
            ConfigError::Parse { .. } => "parse",
            ConfigError::Invalid { .. } => "invalid",
        }
    }
}

impl Config {
    /// Reads, parses and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` only names the file in errors. Every problem
    /// is reported at once: unknown keys, wrong types and bad values (each with its key), then
    /// the semantic checks of [`Config::problems`].
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let read = read_document::<Config>(text).map_err(|err| ConfigError::Parse {
            path: path.to_path_buf(),
            message: err.to_string().trim_end().to_string(),
        })?;
        let mut problems = read.problems;
        match read.value {
            Some(config) if problems.is_empty() => {
                let semantic = config.problems();
                if semantic.is_empty() {
                    return Ok(config);
                }
                problems = semantic;
            }
            // With a list element set aside, later elements moved up: the semantic problems of
            // that list would name the wrong index, so they wait for the next run.
            Some(config) => problems.extend(config.problems().into_iter().filter(|problem| {
                !read
                    .removed_from_lists
                    .iter()
                    .any(|list| problem.starts_with(list.as_str()))
            })),
            None => {}
        }
        Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }

    /// Every semantic problem of a parsed config, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, message: String| {
            if !ok {
                problems.push(message);
            }
        };

        check(
            !self.daemon.interval.is_zero(),
            "daemon.interval: must be longer than 0s".into(),
        );
        check(
            (0.0..=1.0).contains(&self.daemon.jitter),
            format!(
                "daemon.jitter: {} is not a fraction between 0 and 1",
                self.daemon.jitter
            ),
        );
        check(
            !self.daemon.cycle_deadline.is_zero(),
            "daemon.cycle_deadline: must be longer than 0s".into(),
        );
        check(
            !self.guard.claim_timeout.is_zero(),
            "guard.claim_timeout: must be longer than 0s".into(),
        );
        for (i, pauser) in self.guard.pausers.iter().enumerate() {
            if pauser.kind == PauserKind::Command
                && let Some(timeout) = pauser.timeout
            {
                check(
                    self.guard.claim_timeout > timeout,
                    format!(
                        "guard.claim_timeout: must be longer than guard.pausers[{i}].timeout ({}), or another actor may take the pausers over while that command runs",
                        humantime::format_duration(timeout)
                    ),
                );
            }
        }
        check(
            self.http.listen.parse::<std::net::SocketAddr>().is_ok(),
            format!(
                "http.listen: {:?} is not an address and port such as \"127.0.0.1:9477\"",
                self.http.listen
            ),
        );

        check(
            !self.targets.is_empty(),
            "targets: at least one [[targets]] table is needed".into(),
        );
        let mut names = BTreeSet::new();
        for (i, target) in self.targets.iter().enumerate() {
            let key = format!("targets[{i}]");
            if let Err(errors) = crate::reconcile::scope::ScopeRules::new(&target.scope, &key) {
                for error in errors {
                    check(false, error);
                }
            }
            check(
                !target.name.trim().is_empty(),
                format!("{key}.name: must not be empty"),
            );
            check(
                names.insert(target.name.clone()),
                format!("{key}.name: {:?} is used by another target", target.name),
            );
            check(
                !target.name.starts_with(REPLICA_ITEM_PREFIX),
                format!(
                    "{key}.name: {:?} starts with {REPLICA_ITEM_PREFIX:?}, which the lease table keeps for its replica items",
                    target.name
                ),
            );
            check(
                !target.region.trim().is_empty(),
                format!("{key}.region: must not be empty"),
            );
            check(
                valid_table_name(&target.state_table),
                format!(
                    "{key}.state_table: {:?} is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ - .)",
                    target.state_table
                ),
            );
            check(
                valid_table_name(&target.control_table),
                format!(
                    "{key}.control_table: {:?} is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ - .)",
                    target.control_table
                ),
            );
            check(
                target.state_table != target.control_table,
                format!(
                    "{key}.control_table: must differ from state_table ({:?})",
                    target.state_table
                ),
            );
            if let Some(role) = &target.role_arn {
                check(
                    role.starts_with("arn:") && role.contains(":role/"),
                    format!("{key}.role_arn: {role:?} is not an IAM role ARN"),
                );
            }
        }

        let guard = &self.guard;
        check(
            guard.min_missing >= 1,
            "guard.min_missing: must be at least 1".into(),
        );
        check(
            guard.max_missing_ratio >= 0.0 && guard.max_missing_ratio <= 1.0,
            format!(
                "guard.max_missing_ratio: {} is not between 0 and 1",
                guard.max_missing_ratio
            ),
        );
        check(
            guard.confirm_cycles >= 1,
            "guard.confirm_cycles: must be at least 1".into(),
        );
        check(
            guard.mass_loss_ratio > 0.0 && guard.mass_loss_ratio <= 1.0,
            format!(
                "guard.mass_loss_ratio: {} is not above 0 and at most 1",
                guard.mass_loss_ratio
            ),
        );
        if let Some(cycles) = guard.auto_resume_after {
            check(
                cycles >= 1,
                "guard.auto_resume_after: must be at least 1 cycle".into(),
            );
        }
        for (i, pauser) in guard.pausers.iter().enumerate() {
            let key = format!("guard.pausers[{i}]");
            match pauser.kind {
                PauserKind::Command => {
                    check(
                        pauser.command.as_ref().is_some_and(|c| !c.is_empty()),
                        format!("{key}.command: a command pauser needs the program to run"),
                    );
                }
                _ => check(
                    pauser.command.is_none(),
                    format!("{key}.command: only a command pauser takes a command"),
                ),
            }
            if pauser.kind != PauserKind::Autoscaling {
                check(
                    pauser.scope.is_none() && pauser.processes.is_none(),
                    format!("{key}: scope and processes are for an autoscaling pauser only"),
                );
            }
            if let Some(processes) = &pauser.processes {
                for process in processes {
                    check(
                        AUTOSCALING_PROCESSES.contains(&process.as_str()),
                        format!(
                            "{key}.processes: {process:?} is not an Auto Scaling process (one of {})",
                            AUTOSCALING_PROCESSES.join(", ")
                        ),
                    );
                }
            }
        }

        check(
            self.snapshots.dir.is_absolute(),
            format!(
                "snapshots.dir: {:?} must be an absolute path",
                self.snapshots.dir
            ),
        );
        if let Some(s3) = &self.snapshots.s3 {
            check(
                !s3.bucket.is_empty(),
                "snapshots.s3.bucket: must not be empty".into(),
            );
        }
        check(
            self.snapshots.keep >= 1,
            "snapshots.keep: must be at least 1".into(),
        );

        let aws = &self.aws;
        check(
            aws.elb_requests_per_second > 0.0,
            "aws.elb_requests_per_second: must be above 0".into(),
        );
        check(
            aws.elb_burst >= 1,
            "aws.elb_burst: must be at least 1".into(),
        );
        check(
            aws.dynamodb_requests_per_second > 0.0,
            "aws.dynamodb_requests_per_second: must be above 0".into(),
        );
        check(
            aws.concurrency >= 1,
            "aws.concurrency: must be at least 1".into(),
        );
        check(
            (1..=10).contains(&aws.max_attempts),
            "aws.max_attempts: must be between 1 and 10".into(),
        );
        check(
            !aws.attempt_timeout.is_zero() && aws.attempt_timeout <= aws.operation_timeout,
            "aws.attempt_timeout: must be above 0s and at most aws.operation_timeout".into(),
        );

        if let Some(election) = &self.leader_election {
            check(
                valid_table_name(&election.table),
                format!(
                    "leader_election.table: {:?} is not a DynamoDB table name",
                    election.table
                ),
            );
            check(
                election.lease >= Duration::from_secs(3),
                "leader_election.lease: must be at least 3s".into(),
            );
            for (i, target) in self.targets.iter().enumerate() {
                // Lease and replica items would overwrite control items, or land in the
                // operator's own table.
                check(
                    election.table != target.state_table && election.table != target.control_table,
                    format!(
                        "leader_election.table: {:?} is also targets[{i}]'s state or control table; give the leases a table of their own",
                        election.table
                    ),
                );
            }
        }

        let fields: Vec<&str> = LOAD_BALANCER.iter().map(|(name, _)| *name).collect();
        for (i, field) in self.records.required.iter().enumerate() {
            check(
                fields.contains(&field.as_str()),
                format!(
                    "records.required[{i}]: {field:?} is not a top-level field of the load-balancer document (one of {})",
                    fields.join(", ")
                ),
            );
        }

        if let Err(errors) = IgnoreRules::new(&self.ignore) {
            problems.extend(errors);
        }
        problems
    }

    /// The target named `name`, or an error listing the names there are.
    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.name == name)
    }
}

/// What [`read_document`] made of a TOML document.
#[derive(Debug)]
pub struct DocumentRead<T> {
    /// The document read with every problem set aside (`None` when one could not be).
    pub value: Option<T>,
    /// Every problem found, each as `key: what is wrong`.
    pub problems: Vec<String>,
    /// The lists (`targets`, `guard.pausers`) a problem set a whole element aside from.
    pub removed_from_lists: Vec<String>,
}

/// Reads a TOML document into `T`, collecting every problem the deserializer finds (unknown
/// keys, wrong types, bad values, missing keys), each with its key, instead of stopping at the
/// first: serde stops at one, so each one found is set aside (its key taken out of the document,
/// or for a missing key the table that lacks it) and the document read again. Only a syntax
/// error, which leaves no document to read, is an `Err`.
///
/// Nothing here knows the config's keys: what is allowed is what `T` deserializes, so a key
/// added to `T` needs no change here.
pub fn read_document<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<DocumentRead<T>, toml::de::Error> {
    use toml::de::{DeTable, Deserializer};

    let original = DeTable::parse(text)?;
    let mut working = original.clone();
    let mut read = DocumentRead {
        value: None,
        problems: Vec::new(),
        removed_from_lists: Vec::new(),
    };
    let mut named: Vec<String> = Vec::new();
    // Each round sets one problem aside; a document has fewer problems than bytes.
    for _ in 0..=text.len() {
        let err = match T::deserialize(Deserializer::from(working.clone())) {
            Ok(value) => {
                read.value = Some(value);
                return Ok(read);
            }
            Err(err) => err,
        };
        let message = err.message().trim_end().to_string();
        let Some(span) = err.span() else {
            read.problems.push(message);
            return Ok(read);
        };
        let located = locate(original.get_ref(), &span);
        let key = key_path(&located);
        // A missing key where an earlier problem took one out says nothing new.
        let inside = |earlier: &String| {
            key.is_empty()
                || earlier.starts_with(&format!("{key}."))
                || earlier.starts_with(&format!("{key}["))
        };
        let consequence = message.starts_with("missing field") && named.iter().any(inside);
        if !consequence {
            read.problems.push(if key.is_empty() {
                message
            } else {
                format!("{key}: {message}")
            });
            named.push(key);
        }
        let path = locate(working.get_ref(), &span);
        if path.is_empty() || !remove(working.get_mut(), &path) {
            return Ok(read);
        }
        if let Some((Step::Index(_), list)) = located.split_last() {
            read.removed_from_lists.push(key_path(list));
        }
    }
    Ok(read)
}

/// One step down a TOML document: a table's key or a list's index.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn covers(outer: &std::ops::Range<usize>, inner: &std::ops::Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// The path to the key or value the error at `span` is about: of every key and value of the
/// document whose text holds `span`, the one of the shortest text (the deeper one on a tie).
/// Every part of the document is looked at: a table's own span need not hold its keys (a
/// `[table]` header's span is the header's).
fn locate(table: &toml::de::DeTable<'_>, span: &std::ops::Range<usize>) -> Vec<Step> {
    let mut best: Option<(usize, Vec<Step>)> = None;
    let mut path = Vec::new();
    visit_table(table, span, &mut path, &mut best);
    best.map(|(_, path)| path).unwrap_or_default()
}

/// Keeps `path` as the best candidate so far when `candidate` holds `span` more tightly.
fn consider(
    candidate: &std::ops::Range<usize>,
    span: &std::ops::Range<usize>,
    path: &[Step],
    best: &mut Option<(usize, Vec<Step>)>,
) {
    if !covers(candidate, span) {
        return;
    }
    let length = candidate.end - candidate.start;
    let better = match best {
        None => true,
        Some((best_length, best_path)) => {
            length < *best_length || (length == *best_length && path.len() > best_path.len())
        }
    };
    if better {
        *best = Some((length, path.to_vec()));
    }
}

fn visit_table(
    table: &toml::de::DeTable<'_>,
    span: &std::ops::Range<usize>,
    path: &mut Vec<Step>,
    best: &mut Option<(usize, Vec<Step>)>,
) {
    for (key, value) in table.iter() {
        path.push(Step::Key(key.get_ref().to_string()));
        consider(&key.span(), span, path, best);
        consider(&value.span(), span, path, best);
        visit_value(value.get_ref(), span, path, best);
        path.pop();
    }
}

fn visit_value(
    value: &toml::de::DeValue<'_>,
    span: &std::ops::Range<usize>,
    path: &mut Vec<Step>,
    best: &mut Option<(usize, Vec<Step>)>,
) {
    match value {
        toml::de::DeValue::Table(table) => visit_table(table, span, path, best),
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                consider(&item.span(), span, path, best);
                visit_value(item.get_ref(), span, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `targets[0].region`.
fn key_path(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(key) if text.is_empty() => text.push_str(key),
            Step::Key(key) => {
                text.push('.');
                text.push_str(key);
            }
            Step::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

/// Takes what `path` leads to out of the document; false when it is not there.
fn remove(table: &mut toml::de::DeTable<'_>, path: &[Step]) -> bool {
    let Some((Step::Key(key), rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return table.remove(key.as_str()).is_some();
    }
    table
        .get_mut(key.as_str())
        .is_some_and(|value| remove_in_value(value.get_mut(), rest))
}

fn remove_in_value(value: &mut toml::de::DeValue<'_>, path: &[Step]) -> bool {
    match (value, path.split_first()) {
        (toml::de::DeValue::Table(table), Some((Step::Key(_), _))) => remove(table, path),
        (toml::de::DeValue::Array(items), Some((Step::Index(i), rest))) => {
            if rest.is_empty() {
                if *i >= items.len() {
                    return false;
                }
                let mut kept = toml::de::DeArray::new();
                for (j, item) in items.iter().enumerate() {
                    if j != *i {
                        kept.push(item.clone());
                    }
                }
                *items = kept;
                true
            } else {
                items
                    .get_mut(*i)
                    .is_some_and(|item| remove_in_value(item.get_mut(), rest))
            }
        }
        _ => false,
    }
}

/// The Auto Scaling processes a pauser may suspend.
pub const AUTOSCALING_PROCESSES: &[&str] = &[
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "AZRebalance",
    "HealthCheck",
    "InstanceRefresh",
    "ReplaceUnhealthy",
    "ScheduledActions",
];

/// The key prefix of the lease table's replica items (docs/leader-election.md#sharing): no
/// target may be named so.
pub const REPLICA_ITEM_PREFIX: &str = "replica#";

fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[daemon]
interval = "30s"

[http]
listen = "127.0.0.1:9477"

[[targets]]
name = "prod-use1"
region = "us-east-1"
state_table = "lb-state"
control_table = "lb-state-control"

[guard]
min_missing = 1
max_missing_ratio = 0.05

[[guard.pausers]]
type = "dynamodb_flag"

[snapshots]
dir = "/var/lib/lbrecon/snapshots"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn the_minimal_config_parses_with_the_spec_defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.daemon.interval, Duration::from_secs(30));
        assert_eq!(config.targets[0].name, "prod-use1");
        assert_eq!(config.targets[0].role_arn, None);
        assert_eq!(config.guard.confirm_cycles, 2);
        assert_eq!(
            config.guard.new_load_balancer_grace,
            Duration::from_secs(300)
        );
        assert_eq!(config.guard.mass_loss_ratio, 0.2);
        assert_eq!(config.guard.mass_loss_window, Duration::from_secs(3600));
        assert_eq!(config.guard.auto_resume_after, None);
        assert_eq!(config.aws.elb_requests_per_second, 2.0);
        assert_eq!(config.aws.dynamodb_requests_per_second, 25.0);
        assert!(config.leader_election.is_none());
        assert_eq!(config.guard.pausers[0].kind, PauserKind::DynamodbFlag);
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../config/lbrecon.example.toml");
        let config = parse(text).unwrap();
        assert!(config.targets.len() >= 2);
        assert!(!config.ignore.is_empty());
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let text = MINIMAL.replace("[http]", "[http]\nlisten_port = 9477");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("listen_port"), "{err}");
    }

    #[test]
    fn every_problem_is_collected_with_its_key() {
        let text = r#"
[daemon]
interval = "0s"
[http]
listen = "nowhere"
[[targets]]
name = "a"
region = ""
state_table = "x"
control_table = "ctl-table"
role_arn = "not-an-arn"
[guard]
max_missing_ratio = 2.0
[[ignore]]
paths = ["/tags/[", "/ok"]
"#;
        let err = parse(text).unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("expected an invalid config, got {err}");
        };
        let joined = problems.join("\n");
        for key in [
            "daemon.interval",
            "http.listen",
            "targets[0].region",
            "targets[0].state_table",
            "targets[0].role_arn",
            "guard.max_missing_ratio",
            "ignore[0].paths[0]",
        ] {
            assert!(joined.contains(key), "{key} not named in:\n{joined}");
        }
        assert_eq!(err.kind(), "invalid");
    }

    #[test]
    fn required_record_fields_default_to_none_and_must_be_document_fields() {
        assert!(parse(MINIMAL).unwrap().records.required.is_empty());
        let good = format!("{MINIMAL}\n[records]\nrequired = [\"type\", \"listeners\"]\n");
        assert_eq!(
            parse(&good).unwrap().records.required,
            vec!["type".to_string(), "listeners".to_string()]
        );
        let bad = format!("{MINIMAL}\n[records]\nrequired = [\"type\", \"listener\", \"\"]\n");
        let err = parse(&bad).unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("expected an invalid config, got {err}");
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with(
                "records.required[1]: \"listener\" is not a top-level field of the load-balancer document (one of name, type, scheme,"
            ),
            "{}",
            problems[0]
        );
        assert!(
            problems[0].contains("listeners, target_groups)"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].starts_with("records.required[2]: \"\""),
            "{}",
            problems[1]
        );
        // A field of a listener or a target group is not a top-level field.
        let nested = format!("{MINIMAL}\n[records]\nrequired = [\"port\"]\n");
        assert!(parse(&nested).is_err());
        let unknown = format!("{MINIMAL}\n[records]\nmandatory = [\"type\"]\n");
        assert!(
            parse(&unknown)
                .unwrap_err()
                .to_string()
                .contains("mandatory")
        );
        // The shipped example's commented block, uncommented, is a valid one.
        let example = include_str!("../../config/lbrecon.example.toml")
            .replace("# [records]\n# required", "[records]\nrequired");
        assert_eq!(
            parse(&example).unwrap().records.required,
            ["type", "listeners"]
        );
    }

    #[test]
    fn every_structural_problem_is_listed_with_its_key_not_only_the_first() {
        let text = r#"
[daemon]
interval = "soon"
speed = 1
[[targets]]
name = "a"
region = "us-east-1"
state_table = "lb-state"
control_table = "lb-ctl"
colour = "red"
[guard]
min_missing = "one"
max_missing_ratio = 2.0
[[guard.pausers]]
type = "email"
"#;
        let err = parse(text).unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("expected an invalid config, got {err}");
        };
        let joined = problems.join("\n");
        for (key, what) in [
            ("daemon.interval", "not a duration"),
            ("daemon.speed", "unknown field"),
            ("targets[0].colour", "unknown field"),
            ("guard.min_missing", "invalid type"),
            ("guard.pausers[0].type", "unknown variant"),
            // A semantic problem is listed beside them.
            ("guard.max_missing_ratio", ""),
        ] {
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(&format!("{key}: ")) && p.contains(what)),
                "{key} ({what}) not named in:\n{joined}"
            );
        }
        assert_eq!(problems.len(), 6, "{joined}");
        assert_eq!(err.kind(), "invalid");
    }

    #[test]
    fn a_missing_key_is_named_once_and_a_syntax_error_stops_there() {
        // The wrong type takes `region` out; the missing key that leaves is not listed again.
        let text = MINIMAL.replace("region = \"us-east-1\"", "region = 5");
        let ConfigError::Invalid { problems, .. } = parse(&text).unwrap_err() else {
            panic!("expected an invalid config");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("targets[0].region: invalid type"),
            "{problems:?}"
        );

        let text = MINIMAL.replace("region = \"us-east-1\"\n", "");
        let ConfigError::Invalid { problems, .. } = parse(&text).unwrap_err() else {
            panic!("expected an invalid config");
        };
        assert_eq!(
            problems,
            vec!["targets[0]: missing field `region`".to_string()]
        );

        let err = parse("[daemon\ninterval = 1").unwrap_err();
        assert_eq!(err.kind(), "parse", "{err}");
    }

    #[test]
    fn a_bad_duration_says_what_is_expected() {
        let err = parse(&MINIMAL.replace("\"30s\"", "\"soon\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a duration"), "{err}");
    }

    #[test]
    fn the_lease_table_is_no_target_s_state_or_control_table() {
        for table in ["lb-state-control", "lb-state"] {
            let shared =
                format!("{MINIMAL}\n[leader_election]\ntable = \"{table}\"\nlease = \"15s\"\n");
            let err = parse(&shared).unwrap_err().to_string();
            assert!(
                err.contains("leader_election.table") && err.contains("table of their own"),
                "{err}"
            );
        }
        let own =
            format!("{MINIMAL}\n[leader_election]\ntable = \"lbrecon-leases\"\nlease = \"15s\"\n");
        assert!(parse(&own).is_ok());
    }

    #[test]
    fn a_target_may_not_take_the_name_of_a_replica_item() {
        let text = MINIMAL.replace("name = \"prod-use1\"", "name = \"replica#x\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("targets[0].name"), "{err}");
    }

    #[test]
    fn duplicate_target_names_are_rejected() {
        let text = format!(
            "{MINIMAL}\n[[targets]]\nname = \"prod-use1\"\nregion = \"eu-west-1\"\nstate_table = \"lb-state\"\ncontrol_table = \"lb-ctl\"\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("targets[1].name"), "{err}");
    }

    #[test]
    fn a_missing_file_names_the_path_and_what_to_do() {
        let err = Config::load(Path::new("/nonexistent/lbrecon.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent/lbrecon.toml"), "{text}");
        assert!(text.contains("--config"), "{text}");
    }
}
