//! Liveness and readiness. `/health/live` says the process answers; `/health/ready` runs
//! every readiness check and answers 503 with the reasons when a required one fails (a
//! service's own database) or while the process drains for shutdown, and 200 with status
//! `degraded` when only a degrading one fails (the queue: writes that need it wait in the
//! outbox or the spill file, so the service can still serve); `/health` is the probe path
//! the deployment plan names and answers as `/health/ready` does.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::{BoxFuture, join_all};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::error::{ApiError, ErrorCode};

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type CheckFn = dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// One named readiness check, such as `authentication.database` or `queue`.
#[derive(Clone)]
pub struct ReadinessCheck {
    pub name: String,
    check: Arc<CheckFn>,
    /// A failure makes the process not ready; otherwise it is only degraded.
    required: bool,
}

impl ReadinessCheck {
    pub fn new<F, Fut>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name: name.into(),
            check: Arc::new(move || Box::pin(check())),
            required: true,
        }
    }

    /// A check whose failure leaves the process ready but degraded (reported as
    /// `degraded: <reason>`).
    pub fn degrading<F, Fut>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            required: false,
            ..Self::new(name, check)
        }
    }
}

/// The readiness of a set of checks; the process has one over all its targets, and each
/// service one over its own.
#[derive(Clone)]
pub struct Health {
    checks: Arc<Vec<ReadinessCheck>>,
    draining: CancellationToken,
    facts: Vec<(String, Arc<FactFn>)>,
}

type FactFn = dyn Fn() -> Value + Send + Sync;

impl Health {
    /// `draining` is the app's shutdown token: once it fires, readiness fails so that load
    /// balancers stop sending new requests while in-flight ones finish.
    pub fn new(checks: Vec<ReadinessCheck>, draining: CancellationToken) -> Self {
        Self {
            checks: Arc::new(checks),
            draining,
            facts: Vec::new(),
        }
    }

    /// Adds a fact shown beside the checks (such as the applied config revision); it does
    /// not affect readiness.
    pub fn with_fact(
        mut self,
        name: impl Into<String>,
        fact: impl Fn() -> Value + Send + Sync + 'static,
    ) -> Self {
        self.facts.push((name.into(), Arc::new(fact)));
        self
    }

    fn facts(&self) -> Map<String, Value> {
        self.facts
            .iter()
            .map(|(name, fact)| (name.clone(), fact()))
            .collect()
    }

    /// Runs every check at once, each bounded by a timeout: whether the process is ready,
    /// whether it is degraded, and each check's word.
    pub async fn report(&self) -> (bool, bool, Map<String, Value>) {
        let results = join_all(self.checks.iter().map(|check| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, (check.check)()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
            };
            (check.name.clone(), check.required, outcome)
        }))
        .await;
        let (mut ready, mut degraded) = (true, false);
        let mut report = Map::new();
        if self.draining.is_cancelled() {
            ready = false;
            report.insert("shutdown".into(), "draining".into());
        }
        for (name, required, outcome) in results {
            match outcome {
                Ok(()) => report.insert(name, "ok".into()),
                Err(reason) if required => {
                    ready = false;
                    report.insert(name, reason.into())
                }
                Err(reason) => {
                    degraded = true;
                    report.insert(name, format!("degraded: {reason}").into())
                }
            };
        }
        (ready, degraded, report)
    }

    /// The readiness answer: 200 `{"status":"ready","checks":{...}}` or 503 in the error shape
    /// with the same `checks`.
    pub async fn readiness_response(&self) -> Response {
        let (ready, degraded, checks) = self.report().await;
        if ready {
            let mut body = self.facts();
            let status = if degraded { "degraded" } else { "ready" };
            body.insert("status".into(), status.into());
            body.insert("checks".into(), Value::Object(checks));
            axum::Json(Value::Object(body)).into_response()
        } else {
            let failing: Vec<&str> = checks
                .iter()
                .filter(|(_, v)| {
                    v.as_str()
                        .is_some_and(|v| v != "ok" && !v.starts_with("degraded: "))
                })
                .map(|(k, _)| k.as_str())
                .collect();
            let mut details = self.facts();
            details.insert("checks".into(), Value::Object(checks.clone()));
            ApiError::new(
                ErrorCode::NotReady,
                format!("not ready: {}", failing.join(", ")),
            )
            .with_details(details)
            .into_response()
        }
    }
}

async fn live() -> Response {
    axum::Json(json!({"status": "live"})).into_response()
}

async fn ready(State(health): State<Health>) -> Response {
    health.readiness_response().await
}

/// Liveness: the process answers (Kubernetes' liveness and startup probes).
pub const LIVE_PATH: &str = "/health/live";
/// Readiness: every check passes (Kubernetes' readiness probe, the gateway's health check).
pub const READY_PATH: &str = "/health/ready";

/// `/health/live`, `/health/ready` and `/health` for the whole process.
pub fn health_routes(health: Health) -> Router {
    Router::new()
        .route(LIVE_PATH, get(live))
        .route(READY_PATH, get(ready))
        .route("/health", get(ready))
        .with_state(health)
}

/// `GET <prefix>/health`: one service's own readiness, reachable through the gateway.
pub fn service_health_route(prefix: &str, health: Health) -> Router {
    Router::new()
        .route(&format!("{prefix}/health"), get(ready))
        .with_state(health)
}
