//! The AWS edge: SDK clients and the mapping of their answers into plain data.
//!
//! Nothing outside this module sees an SDK type. Every call goes through [`Api::call`], the one
//! place that classifies errors (so a throttle, a missing table and a timeout are told apart)
//! and where the request budget and request metrics hook in.

pub mod autoscaling;
pub mod dynamodb;
pub mod elb;
pub mod interceptor;
pub mod s3;

use std::future::Future;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::config::{AwsConfig, TargetConfig};

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
        }
    }
}

/// A failed AWS call, naming the operation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed ({}): {message}", .class.as_str())]
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
        self.code.as_deref() == Some("ConditionalCheckFailedException")
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
    let code = err.code().map(str::to_string);
    let class = match &err {
        SdkError::TimeoutError(_) => ErrorClass::Timeout,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => ErrorClass::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => ErrorClass::Network,
        SdkError::ServiceError(_) => match code.as_deref() {
            Some(code) if THROTTLING_CODES.contains(&code) => ErrorClass::Throttled,
            Some(code) if ACCESS_DENIED_CODES.contains(&code) => ErrorClass::AccessDenied,
            Some(code) if code == "ResourceNotFoundException" || code.ends_with("NotFound") => {
                ErrorClass::NotFound
            }
            _ => ErrorClass::Service,
        },
        _ => ErrorClass::Network,
    };
    AwsError {
        service,
        operation,
        class,
        code,
        message: DisplayErrorContext(&err).to_string(),
    }
}

/// The shared part of every client: the service name, for errors and metrics.
#[derive(Debug, Clone)]
pub struct Api {
    service: &'static str,
}

impl Api {
    pub fn new(service: &'static str) -> Self {
        Api { service }
    }

    /// Runs one AWS call and classifies its error.
    pub async fn call<T, E, R, F>(&self, operation: &'static str, request: F) -> Result<T, AwsError>
    where
        F: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        request
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
    let retries = RetryConfig::standard()
        .with_max_attempts(aws.max_attempts)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(5));
    let base = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .timeout_config(timeouts)
        .retry_config(retries)
        .app_name(AppName::new("lbrecon").expect("a valid app name"))
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
}

impl Clients {
    /// Builds the clients of one target; every request attempt they make is counted under the
    /// target's name.
    pub async fn connect(target: &TargetConfig, aws: &AwsConfig) -> Clients {
        let config = sdk_config(target, aws).await;
        Clients {
            elb: elb::Elb::new(&config, &target.name),
            dynamodb: dynamodb::Dynamo::new(&config, &target.name),
            autoscaling: autoscaling::AutoScaling::new(&config, &target.name),
            s3: s3::S3::new(&config, &target.name),
        }
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
}
