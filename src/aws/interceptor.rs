//! An SDK interceptor that reports every request attempt to [`crate::runtime::telemetry`]: the one place
//! AWS request metrics come from, retries included (each attempt is counted).

use std::sync::Arc;
use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use super::THROTTLING_CODES;

/// Reports request attempts of one target's clients.
#[derive(Debug, Clone)]
pub struct MetricsInterceptor {
    target: Arc<str>,
    service: &'static str,
}

impl MetricsInterceptor {
    pub fn new(target: &str, service: &'static str) -> Self {
        MetricsInterceptor {
            target: Arc::from(target),
            service,
        }
    }
}

#[derive(Debug, Clone)]
struct AttemptStart(Instant);

impl Storable for AttemptStart {
    type Storer = StoreReplace<Self>;
}

/// Whether an error answer's body carries a throttling code, in either protocol's format
/// (`<Code>Throttling</Code>`, `"__type":"...#ThrottlingException"`).
pub fn body_says_throttled(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    THROTTLING_CODES.iter().any(|code| {
        text.contains(&format!("<Code>{code}</Code>"))
            || text.contains(&format!("#{code}\""))
            || text.contains(&format!("\"{code}\""))
    })
}

impl Intercept for MetricsInterceptor {
    fn name(&self) -> &'static str {
        "lbrecon-metrics"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptStart(Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let duration = cfg
            .load::<AttemptStart>()
            .map(|start| start.0.elapsed())
            .unwrap_or_default();
        let operation = cfg
            .load::<Metadata>()
            .map(|metadata| metadata.name().to_string())
            .unwrap_or_else(|| "unknown".to_string());
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => "ok",
            _ => {
                let response = context.response();
                let throttled = response.is_some_and(|response| {
                    response.status().as_u16() == 429
                        || response.body().bytes().is_some_and(body_says_throttled)
                });
                if throttled { "throttled" } else { "error" }
            }
        };
        crate::runtime::telemetry::aws_request(
            &self.target,
            self.service,
            &operation,
            outcome,
            duration,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_recognized_in_both_protocols() {
        assert!(body_says_throttled(
            b"<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"
        ));
        assert!(body_says_throttled(
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"x"}"#
        ));
        assert!(!body_says_throttled(
            b"<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>"
        ));
    }
}
