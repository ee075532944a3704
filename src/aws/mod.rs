//! The AWS edge: SDK clients and the mapping of their answers into plain data.
//!
//! Nothing outside this module sees an SDK type. Every call goes through [`Api::call`], the one
//! place that classifies errors (so a throttle, a missing table and a timeout are told apart)
//! and where the request budget and request metrics hook in.

pub mod autoscaling;
pub mod control_calls;
pub mod dynamodb;
pub mod elb;
pub mod gate;
pub mod pages;
pub mod reads;
pub mod s3;
pub mod streams;
pub mod sts;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::runtime::budget::{Bucket, BudgetKey, Budgets, Tier};
use crate::runtime::config::{AwsConfig, TargetConfig};
use crate::runtime::telemetry;

/// What went wrong with one AWS call, in a small fixed set (for metric labels and decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The API said to slow down.
    Throttled,
    /// The resource does not exist (`ResourceNotFoundException`, `LoadBalancerNotFound`, ...).
    NotFound,
    /// The credentials lack a permission.
    AccessDenied,
    /// No answer in time.
    Timeout,
    /// The connection failed or the answer could not be read.
    Network,
    /// Any other error answer.
    Service,
    /// Not sent: this replica does not hold the target's lease (docs/architecture.md#replicas).
    NotLeader,
}

impl ErrorClass {
    /// A short, fixed label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Throttled => "throttled",
            ErrorClass::NotFound => "not_found",
            ErrorClass::AccessDenied => "access_denied",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Network => "network",
            ErrorClass::Service => "service",
            ErrorClass::NotLeader => "not_leader",
        }
    }
}

/// A failed AWS call, naming the operation: `DescribeTags failed: LoadBalancerNotFound: <the
/// API's message>` for an error answer, `DescribeTags failed (timeout): <what happened>` for a
/// call that got none. Never a dump of the SDK's structures (docs/architecture.md#commands); the caller adds the
/// resource the call was for.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed{}: {message}", code_or_class(.code.as_deref(), *.class))]
pub struct AwsError {
    /// `elasticloadbalancing`, `dynamodb`, ...
    pub service: &'static str,
    /// The API's own operation name, such as `DescribeLoadBalancers`.
    pub operation: &'static str,
    pub class: ErrorClass,
    /// The error code AWS answered with, where there was one.
    pub code: Option<String>,
    pub message: String,
}

/// `: Code` when AWS answered with an error code, else ` (class)`.
fn code_or_class(code: Option<&str>, class: ErrorClass) -> String {
    match code {
        Some(code) => format!(": {code}"),
        None => format!(" ({})", class.as_str()),
    }
}

impl AwsError {
    /// A short, fixed label for metrics.
    pub fn kind(&self) -> &'static str {
        self.class.as_str()
    }

    /// Whether the resource asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.class == ErrorClass::NotFound
    }

    /// Whether a conditional write lost to another writer.
    pub fn is_condition_failed(&self) -> bool {
        self.code.as_deref() == Some(dynamodb::CONDITION_FAILED)
    }

    /// Whether the call was refused, or its write's lease check failed, because this replica
    /// does not hold the target's lease.
    pub fn is_not_leader(&self) -> bool {
        self.class == ErrorClass::NotLeader
    }

    /// The error of a write refused because this replica does not hold the target's lease.
    pub fn not_acting(target: &str) -> Self {
        AwsError {
            service: "dynamodb",
            operation: "TransactWriteItems",
            class: ErrorClass::NotLeader,
            code: None,
            message: format!("this replica does not hold the lease of target {target}"),
        }
    }

    /// An error for an answer that broke the API's contract (a page marker that repeats, say).
    pub fn unexpected(service: &'static str, operation: &'static str, message: String) -> Self {
        AwsError {
            service,
            operation,
            class: ErrorClass::Service,
            code: None,
            message,
        }
    }
}

/// Defines `$item` and `$value`, converting the `AttributeValue` in scope where it is used
/// (DynamoDB's, or DynamoDB Streams': the same shape in two crates) into plain data. An
/// attribute type the SDK gained since is an error rather than something silently dropped.
macro_rules! attribute_conversion {
    ($item:ident, $value:ident) => {
        /// Converts an SDK item into plain data; an attribute type this SDK does not know is an
        /// error rather than something silently dropped.
        pub fn $item(
            item: &std::collections::HashMap<String, AttributeValue>,
        ) -> Result<crate::model::item::Item, String> {
            item.iter()
                .map(|(key, value)| Ok((key.clone(), $value(value)?)))
                .collect()
        }

        fn $value(value: &AttributeValue) -> Result<crate::model::item::AttrValue, String> {
            use crate::model::item::AttrValue;
            Ok(match value {
                AttributeValue::S(s) => AttrValue::S(s.clone()),
                AttributeValue::N(n) => AttrValue::N(n.clone()),
                AttributeValue::B(b) => AttrValue::B(b.as_ref().to_vec()),
                AttributeValue::Bool(b) => AttrValue::Bool(*b),
                AttributeValue::Null(n) => AttrValue::Null(*n),
                AttributeValue::M(map) => AttrValue::M(
                    map.iter()
                        .map(|(key, value)| Ok((key.clone(), $value(value)?)))
                        .collect::<Result<_, String>>()?,
                ),
                AttributeValue::L(list) => {
                    AttrValue::L(list.iter().map($value).collect::<Result<_, _>>()?)
                }
                AttributeValue::Ss(list) => AttrValue::Ss(list.clone()),
                AttributeValue::Ns(list) => AttrValue::Ns(list.clone()),
                AttributeValue::Bs(list) => {
                    AttrValue::Bs(list.iter().map(|b| b.as_ref().to_vec()).collect())
                }
                _ => {
                    return Err(
                        "an attribute of a type this version of lbrecon does not know".into(),
                    );
                }
            })
        }
    };
}
pub(crate) use attribute_conversion;

/// Error codes that mean "slow down", across the services lbrecon calls.
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    // DynamoDB Streams: too many GetRecords calls on a shard.
    "LimitExceededException",
];

const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
];

/// Classifies a failed attempt: [`class_of`], and a bare HTTP 429 is a throttle too.
fn attempt_class<E>(err: &SdkError<E, HttpResponse>) -> ErrorClass
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let too_many = err
        .raw_response()
        .is_some_and(|response| response.status().as_u16() == 429);
    if too_many {
        ErrorClass::Throttled
    } else {
        class_of(err)
    }
}

/// Classifies an SDK error by its code and kind: the one classifier of the edge.
fn class_of<E, R>(err: &SdkError<E, R>) -> ErrorClass
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ConstructionFailure(_)
            if std::error::Error::source(err)
                .is_some_and(|source| source.is::<crate::aws::gate::NotLeader>()) =>
        {
            ErrorClass::NotLeader
        }
        SdkError::TimeoutError(_) => ErrorClass::Timeout,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => ErrorClass::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => ErrorClass::Network,
        SdkError::ServiceError(_) => match err.code() {
            Some(code) if THROTTLING_CODES.contains(&code) => ErrorClass::Throttled,
            Some(code) if ACCESS_DENIED_CODES.contains(&code) => ErrorClass::AccessDenied,
            Some(code) if code == "ResourceNotFoundException" || code.ends_with("NotFound") => {
                ErrorClass::NotFound
            }
            _ => ErrorClass::Service,
        },
        _ => ErrorClass::Network,
    }
}

/// Classifies an SDK error by its code and kind.
pub fn classify<E, R>(
    service: &'static str,
    operation: &'static str,
    err: SdkError<E, R>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    AwsError {
        service,
        operation,
        class: class_of(&err),
        code: err.code().map(str::to_string),
        message: describe(&err),
    }
}

/// What went wrong, in words: the API's own message for an error answer, else what happened to
/// the request and why (the error chain), never the raw response.
fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let cause = || {
        std::error::Error::source(err)
            .map(|source| DisplayErrorContext(source).to_string())
            .unwrap_or_default()
    };
    match err {
        SdkError::ServiceError(_) => match err.message() {
            Some(message) if !message.is_empty() => message.to_string(),
            _ => "the answer carried no message".to_string(),
        },
        SdkError::TimeoutError(_) => "no answer within the configured timeout".to_string(),
        SdkError::DispatchFailure(_) => format!("the request could not be sent: {}", cause()),
        SdkError::ResponseError(_) => format!("the answer could not be read: {}", cause()),
        SdkError::ConstructionFailure(_) => {
            format!("the request could not be built: {}", cause())
        }
        _ => cause(),
    }
}

/// Whether an error may go away by itself: a throttle, a timeout, a broken connection, or a
/// server-side (5xx) error.
fn transient<E>(class: ErrorClass, err: &SdkError<E, HttpResponse>) -> bool {
    match class {
        ErrorClass::Throttled | ErrorClass::Timeout | ErrorClass::Network => true,
        ErrorClass::Service => err
            .raw_response()
            .is_some_and(|response| response.status().as_u16() >= 500),
        ErrorClass::NotFound | ErrorClass::AccessDenied | ErrorClass::NotLeader => false,
    }
}

/// The delay before retry `attempt` (1 for the first retry): exponential from 100 ms, capped at
/// 5 s, with full jitter.
pub fn backoff(attempt: u32) -> Duration {
    let cap = Duration::from_millis(100)
        .saturating_mul(1 << attempt.saturating_sub(1).min(6))
        .min(Duration::from_secs(5));
    cap.mul_f64(rand::random::<f64>())
}

/// How many requests a client sent, retries counted apart.
#[derive(Debug, Default)]
pub struct CallCounter {
    calls: Mutex<BTreeMap<&'static str, (u64, u64)>>,
}

impl CallCounter {
    fn record(&self, operation: &'static str, retry: bool) {
        let mut calls = self
            .calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = calls.entry(operation).or_default();
        if retry {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
    }

    /// Per operation: (calls, retries).
    pub fn snapshot(&self) -> BTreeMap<&'static str, (u64, u64)> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

static COMMAND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Names the command this process runs; every request's User-Agent then carries
/// `app/lbrecon-<command>` (CloudTrail's `userAgent` shows which command made a call).
pub fn set_command(command: &'static str) {
    let _ = COMMAND.set(command);
}

fn app_name() -> AppName {
    COMMAND
        .get()
        .and_then(|command| AppName::new(format!("lbrecon-{command}")).ok())
        .unwrap_or_else(|| AppName::new("lbrecon").expect("a valid app name"))
}

/// The shared part of every client: the budget every request waits on, retries with backoff,
/// error classification, and call counting.
#[derive(Debug, Clone)]
pub struct Api {
    /// The target whose requests these are, for the request metrics.
    target: Arc<str>,
    service: &'static str,
    bucket: Option<Arc<Bucket>>,
    max_attempts: u32,
    counter: Arc<CallCounter>,
    /// With leader election: no request leaves while this replica does not hold the lease.
    gate: Option<Arc<crate::aws::gate::Gate>>,
    /// How long a throttled presence request keeps being retried (from its marker, with
    /// backoff) before it fails: the presence pass's own deadline.
    presence_patience: Duration,
    /// The last operation answered with a throttle, and when.
    last_throttled: Arc<Mutex<Option<(&'static str, tokio::time::Instant)>>>,
}

/// The operations of the presence pass (docs/architecture.md#budget): every page of the load
/// balancers and target groups, and the scan of the state table. `DescribeLoadBalancers` by
/// name, which confirms a loss, is one of them too.
pub fn tier_of(service: &str, operation: &str) -> Tier {
    match (service, operation) {
        ("elasticloadbalancing", "DescribeLoadBalancers" | "DescribeTargetGroups")
        | ("dynamodb", "Scan") => Tier::Presence,
        _ => Tier::Deep,
    }
}

impl Api {
    pub fn new(
        target: &str,
        service: &'static str,
        bucket: Option<Arc<Bucket>>,
        max_attempts: u32,
    ) -> Self {
        Api {
            target: Arc::from(target),
            service,
            bucket,
            max_attempts: max_attempts.max(1),
            counter: Arc::new(CallCounter::default()),
            gate: None,
            presence_patience: Duration::ZERO,
            last_throttled: Arc::new(Mutex::new(None)),
        }
    }

    /// The last operation answered with a throttle, and when.
    pub fn last_throttled(&self) -> Option<(&'static str, tokio::time::Instant)> {
        *self
            .last_throttled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Retries a throttled presence request for up to `patience` (beyond `max_attempts`).
    pub fn set_presence_patience(&mut self, patience: Duration) {
        self.presence_patience = patience;
    }

    /// Sends nothing while `gate` is closed.
    pub fn set_gate(&mut self, gate: Arc<crate::aws::gate::Gate>) {
        self.gate = Some(gate);
    }

    /// This client, its requests waiting on no budget (counted with this one's still).
    pub fn without_budget(&self) -> Self {
        Api {
            bucket: None,
            ..self.clone()
        }
    }

    /// Requests this client sent.
    pub fn counter(&self) -> &CallCounter {
        &self.counter
    }

    /// Sends one request, made anew by `make` for each attempt. Every attempt first takes a
    /// token from the budget (a presence request before any deep read); a throttling answer
    /// slows the budget; transient errors are retried up to `max_attempts` with backoff, and a
    /// throttled presence request for as long as its patience allows.
    pub async fn send<T, E, F, Fut>(
        &self,
        operation: &'static str,
        make: F,
    ) -> Result<T, SdkError<E, HttpResponse>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.send_counted(operation, false, make).await
    }

    /// [`Api::send`]; `again`: this request asks again what an earlier one asked (a
    /// `DescribeTags` batch narrowed after a NotFound), so it is counted as a retry, apart from
    /// the calls a full read needs (docs/architecture.md#budget).
    async fn send_counted<T, E, F, Fut>(
        &self,
        operation: &'static str,
        again: bool,
        mut make: F,
    ) -> Result<T, SdkError<E, HttpResponse>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let tier = tier_of(self.service, operation);
        let first = tokio::time::Instant::now();
        // A presence request keeps deep reads back through its retries' backoff too.
        let _hold = self
            .bucket
            .as_ref()
            .filter(|_| tier == Tier::Presence)
            .map(|bucket| bucket.hold_for_presence());
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(bucket) = &self.bucket {
                bucket.acquire(tier).await;
            }
            if self.gate.as_ref().is_some_and(|gate| !gate.open()) {
                return Err(SdkError::construction_failure(crate::aws::gate::NotLeader));
            }
            self.counter.record(operation, again || attempt > 1);
            let sent = std::time::Instant::now();
            let answer = make().await;
            let class = answer.as_ref().err().map(attempt_class);
            telemetry::aws_request(
                &self.target,
                self.service,
                operation,
                match class {
                    None => "ok",
                    Some(ErrorClass::Throttled) => "throttled",
                    Some(_) => "error",
                },
                sent.elapsed(),
            );
            match answer {
                Ok(value) => return Ok(value),
                Err(err) => {
                    let class = attempt_class(&err);
                    if class == ErrorClass::Throttled {
                        *self
                            .last_throttled
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
                            Some((operation, tokio::time::Instant::now()));
                    }
                    if class == ErrorClass::Throttled
                        && let Some(bucket) = &self.bucket
                    {
                        bucket.throttled();
                    }
                    let patient = tier == Tier::Presence
                        && class == ErrorClass::Throttled
                        && first.elapsed() < self.presence_patience;
                    if !patient && (attempt >= self.max_attempts || !transient(class, &err)) {
                        return Err(err);
                    }
                    let mut delay = backoff(attempt);
                    if patient {
                        // The last retry comes within the patience, not a backoff after it.
                        delay = delay.min(self.presence_patience.saturating_sub(first.elapsed()));
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// [`Api::send`], with the error classified.
    pub async fn call<T, E, F, Fut>(&self, operation: &'static str, make: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.send(operation, make)
            .await
            .map_err(|err| classify(self.service, operation, err))
    }

    /// [`Api::call`] for a request that asks again what an earlier one asked: counted as a
    /// retry.
    pub async fn call_again<T, E, F, Fut>(
        &self,
        operation: &'static str,
        make: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.send_counted(operation, true, make)
            .await
            .map_err(|err| classify(self.service, operation, err))
    }
}

/// Loads the AWS configuration of one target: the standard credential chain (environment,
/// profile, ECS task role, instance metadata), the target's region, bounded timeouts and the
/// standard retry mode, and the target's role where it names one.
pub async fn sdk_config(target: &TargetConfig, aws: &AwsConfig) -> SdkConfig {
    let region = Region::new(target.region.clone());
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5).min(aws.attempt_timeout))
        .operation_attempt_timeout(aws.attempt_timeout)
        .operation_timeout(aws.operation_timeout)
        .build();
    // Retries are lbrecon's own (`Api::send`), so that each one waits on the budget too.
    let retries = RetryConfig::standard().with_max_attempts(1);
    let base = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .timeout_config(timeouts)
        .retry_config(retries)
        .app_name(app_name())
        .load()
        .await;
    match &target.role_arn {
        None => base,
        Some(role) => {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name(format!("lbrecon-{}", sanitize_session(&target.name)))
                .region(region)
                .configure(&base)
                .build()
                .await;
            base.into_builder()
                .credentials_provider(aws_types::sdk_config::SharedCredentialsProvider::new(
                    provider,
                ))
                .build()
        }
    }
}

/// A role session name allows `[\w+=,.@-]`, at most 64 characters.
fn sanitize_session(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(56)
        .collect()
}

/// The clients of one target.
#[derive(Debug, Clone)]
pub struct Clients {
    pub elb: elb::Elb,
    pub dynamodb: dynamodb::Dynamo,
    pub autoscaling: autoscaling::AutoScaling,
    pub s3: s3::S3,
    /// The state table's stream, on a budget of its own.
    pub streams: streams::Streams,
    /// The account and region whose budget the ELB and DynamoDB clients spend.
    pub budget: BudgetKey,
    /// That account and region's ELB bucket, shared with every target there.
    pub elb_bucket: Arc<Bucket>,
    /// And its DynamoDB bucket.
    pub dynamodb_bucket: Arc<Bucket>,
}

impl Clients {
    /// Builds the clients of one target. ELB and DynamoDB requests wait on the budgets of the
    /// target's account and region, shared with every other target there, whether it uses the
    /// default credentials or a role (the default credentials' account is learned by one
    /// `GetCallerIdentity` a process); every request attempt is counted under the target's name.
    pub async fn connect(target: &TargetConfig, aws: &AwsConfig, budgets: &Budgets) -> Clients {
        let config = sdk_config(target, aws).await;
        let api = |service, bucket| {
            let mut api = Api::new(&target.name, service, bucket, aws.max_attempts);
            api.set_presence_patience(aws.operation_timeout);
            api
        };
        let identity = api("sts", None);
        let budget = budgets
            .key(target.role_arn.as_deref(), &target.region, || {
                sts::caller_account(&config, &identity)
            })
            .await;
        let elb_bucket = budgets.bucket(
            "elasticloadbalancing",
            &budget,
            aws.elb_requests_per_second,
            aws.elb_burst as f64,
        );
        let dynamodb_bucket = budgets.bucket(
            "dynamodb",
            &budget,
            aws.dynamodb_requests_per_second,
            aws.dynamodb_requests_per_second,
        );
        Clients {
            elb: elb::Elb::new(
                &config,
                api("elasticloadbalancing", Some(elb_bucket.clone())),
            ),
            dynamodb: dynamodb::Dynamo::new(
                &config,
                api("dynamodb", Some(dynamodb_bucket.clone())),
            ),
            autoscaling: autoscaling::AutoScaling::new(&config, api("autoscaling", None)),
            s3: s3::S3::new(&config, api("s3", None)),
            streams: streams::Streams::new(
                &config,
                api(
                    "dynamodb",
                    Some(Bucket::new(
                        streams::REQUESTS_PER_SECOND,
                        streams::REQUESTS_PER_SECOND,
                    )),
                ),
            ),
            budget,
            elb_bucket,
            dynamodb_bucket,
        }
    }

    /// Retries throttled presence requests for up to `patience` (the daemon: its cycle
    /// deadline, which ends the presence pass anyway).
    pub fn set_presence_patience(&mut self, patience: Duration) {
        self.elb.api_mut().set_presence_patience(patience);
        self.dynamodb.api_mut().set_presence_patience(patience);
    }

    /// Puts every client behind `gate` (leader election): none sends while it is closed.
    pub fn set_gate(&mut self, gate: &Arc<crate::aws::gate::Gate>) {
        self.elb.set_gate(gate.clone());
        self.dynamodb.set_gate(gate.clone());
        self.autoscaling.set_gate(gate.clone());
        self.s3.set_gate(gate.clone());
        self.streams.set_gate(gate.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_sanitized() {
        assert_eq!(sanitize_session("prod use1/a"), "prod-use1-a");
        assert_eq!(sanitize_session(&"x".repeat(100)).len(), 56);
    }

    #[test]
    fn a_client_without_budget_takes_no_token_and_is_counted_with_its_source() {
        let bucket = Bucket::new(1.0, 1.0);
        let api = Api::new("a", "dynamodb", Some(bucket), 3);
        let lease = api.without_budget();
        assert!(lease.bucket.is_none());
        assert!(api.bucket.is_some());
        assert!(Arc::ptr_eq(&api.counter, &lease.counter));
    }
}
