//! The one HTTP listener (docs/architecture.md#http): `/metrics`, `/healthz`, `/readyz`, `/drift`. Nothing on it
//! changes anything: every route is GET only, and any other path is 404.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::reconcile::report::{Report, TargetReport};

/// What the loops share with the listener: liveness, readiness and the last reports.
#[derive(Debug)]
pub struct Status {
    targets: Mutex<BTreeMap<String, LoopHealth>>,
    /// A loop that made no progress for this long is hung.
    stall_after: Duration,
}

/// What `/healthz` and `/readyz` know of one target's loop.
#[derive(Debug, Clone)]
struct LoopHealth {
    last_progress: Instant,
    complete_cycle_seen: bool,
    /// Another replica holds the target's lease; this one is warm and ready to take over.
    standby: bool,
    report: Option<TargetReport>,
    generated_at: Option<String>,
}

impl Status {
    /// `stall_after` should exceed an interval plus a cycle's deadline.
    pub fn new<'a>(targets: impl IntoIterator<Item = &'a str>, stall_after: Duration) -> Self {
        let now = Instant::now();
        Status {
            targets: Mutex::new(
                targets
                    .into_iter()
                    .map(|name| {
                        (
                            name.to_string(),
                            LoopHealth {
                                last_progress: now,
                                complete_cycle_seen: false,
                                standby: false,
                                report: None,
                                generated_at: None,
                            },
                        )
                    })
                    .collect(),
            ),
            stall_after,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, LoopHealth>) -> T) -> T {
        let mut guard = self
            .targets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// A target's loop made progress (started or finished a cycle, or woke up).
    pub fn progress(&self, target: &str) {
        self.with(|targets| {
            if let Some(status) = targets.get_mut(target) {
                status.last_progress = Instant::now();
            }
        });
    }

    /// This replica stands by for `target` (another holds its lease), or acts for it again.
    /// A standby counts as progress, and as ready.
    pub fn standby(&self, target: &str, standby: bool) {
        self.with(|targets| {
            if let Some(status) = targets.get_mut(target) {
                status.last_progress = Instant::now();
                status.standby = standby;
            }
        });
    }

    /// A target finished a cycle with this report.
    pub fn cycle_done(
        &self,
        target: &str,
        report: TargetReport,
        complete: bool,
        generated_at: String,
    ) {
        self.with(|targets| {
            if let Some(status) = targets.get_mut(target) {
                status.last_progress = Instant::now();
                status.complete_cycle_seen |= complete;
                status.report = Some(report);
                status.generated_at = Some(generated_at);
            }
        });
    }

    /// Every target's loop has made progress recently.
    pub fn alive(&self) -> bool {
        self.with(|targets| {
            targets
                .values()
                .all(|status| status.last_progress.elapsed() < self.stall_after)
        })
    }

    /// Every target has had a complete cycle, or is in another replica's hands.
    pub fn ready(&self) -> bool {
        self.with(|targets| {
            targets
                .values()
                .all(|status| status.complete_cycle_seen || status.standby)
        })
    }

    /// The last report of every target that has one.
    pub fn drift(&self) -> Report {
        self.with(|targets| Report {
            generated_at: targets
                .values()
                .filter_map(|status| status.generated_at.clone())
                .max()
                .unwrap_or_default(),
            targets: targets
                .values()
                .filter_map(|status| status.report.clone())
                .collect(),
        })
    }
}

#[derive(Clone)]
struct AppState {
    status: Arc<Status>,
    metrics: PrometheusHandle,
}

/// The listener's routes.
pub fn router(status: Arc<Status>, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/drift", get(drift))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(AppState { status, metrics })
}

async fn metrics_page(State(state): State<AppState>) -> Response {
    state.metrics.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::runtime::telemetry::render(state.metrics.render()),
    )
        .into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    if state.status.alive() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "a reconciliation loop is stalled\n",
        )
            .into_response()
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.status.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no complete cycle yet\n").into_response()
    }
}

async fn drift(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.status.drift().to_json(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::report::GuardView;

    const HOUR: Duration = Duration::from_secs(3600);

    fn report(target: &str, complete: bool) -> TargetReport {
        TargetReport {
            target: target.to_string(),
            complete,
            error: (!complete).then(|| "DescribeLoadBalancers: Throttling".to_string()),
            summary: Default::default(),
            load_balancers: Vec::new(),
            guard: GuardView {
                paused: false,
                reason: None,
            },
            deep_checked_at: None,
            exit_code: 0,
        }
    }

    fn state(status: Status) -> State<AppState> {
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle();
        State(AppState {
            status: Arc::new(status),
            metrics,
        })
    }

    async fn body(response: Response) -> (StatusCode, String) {
        let code = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        (code, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[test]
    fn ready_once_every_target_had_a_complete_cycle_or_stands_by() {
        let status = Status::new(["a", "b"], HOUR);
        assert!(status.alive());
        assert!(!status.ready());
        status.cycle_done("a", report("a", true), true, "t1".into());
        // An incomplete cycle is progress, not readiness.
        status.cycle_done("b", report("b", false), false, "t2".into());
        assert!(!status.ready());
        status.standby("b", true);
        assert!(status.ready());
        status.standby("b", false);
        assert!(!status.ready());
        status.cycle_done("b", report("b", true), true, "t3".into());
        assert!(status.ready());
        // An unknown target changes nothing.
        status.cycle_done("c", report("c", true), true, "t4".into());
        assert_eq!(status.drift().targets.len(), 2);
    }

    #[test]
    fn a_loop_without_progress_for_stall_after_is_not_alive() {
        let stalled = Status::new(["a"], Duration::ZERO);
        assert!(!stalled.alive());
        let fresh = Status::new(["a"], HOUR);
        fresh.progress("a");
        assert!(fresh.alive());
    }

    #[test]
    fn drift_holds_the_last_report_of_each_target_and_the_newest_time() {
        let status = Status::new(["a", "b"], HOUR);
        assert!(status.drift().targets.is_empty());
        status.cycle_done("a", report("a", true), true, "2026-11-29T10:00:00Z".into());
        status.cycle_done(
            "b",
            report("b", false),
            false,
            "2026-11-29T10:00:05Z".into(),
        );
        status.cycle_done(
            "a",
            report("a", false),
            false,
            "2026-11-29T10:00:01Z".into(),
        );
        let drift = status.drift();
        assert_eq!(drift.generated_at, "2026-11-29T10:00:05Z");
        let a = drift.targets.iter().find(|t| t.target == "a").unwrap();
        assert!(!a.complete, "the last report, not the first");
    }

    #[tokio::test]
    async fn the_routes_answer_from_the_status() {
        let (code, text) = body(healthz(state(Status::new(["a"], Duration::ZERO))).await).await;
        assert_eq!(
            (code, text.as_str()),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "a reconciliation loop is stalled\n"
            )
        );
        let (code, _) = body(healthz(state(Status::new(["a"], HOUR))).await).await;
        assert_eq!(code, StatusCode::OK);

        let waiting = Status::new(["a"], HOUR);
        let (code, text) = body(readyz(state(waiting)).await).await;
        assert_eq!(
            (code, text.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "no complete cycle yet\n")
        );
        let done = Status::new(["a"], HOUR);
        done.cycle_done("a", report("a", true), true, "t".into());
        let State(app) = state(done);
        let (code, _) = body(readyz(State(app.clone())).await).await;
        assert_eq!(code, StatusCode::OK);
        let (code, json) = body(drift(State(app)).await).await;
        assert_eq!(code, StatusCode::OK);
        let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(value["targets"][0]["target"], "a");
        assert_eq!(value["targets"][0]["complete"], true);
    }
}
