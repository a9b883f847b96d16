//! Liveness and readiness. `/health/live` says the process answers; `/health/ready` runs
//! every readiness check and answers 503 with the reasons when a required one fails (a
//! service's own database) or while the process drains for shutdown, and 200 with status
//! `degraded` when only a degrading one fails (the queue: writes that need it wait in the
//! outbox or the spill file, so the service can still serve); `/health` is the probe path
//! the deployment plan names and answers as `/health/ready` does.
//!
//! Probes read the last report, which a background task refreshes every
//! [`REFRESH_INTERVAL`]: a load balancer or an orchestrator probing many times a second
//! costs no database round trip each (the first probe starts the task and waits for its
//! first report). Draining is read on every probe, so shutdown is seen at once.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::{BoxFuture, join_all};
use serde_json::{Map, Value, json};
use tokio::sync::{OnceCell, watch};
use tokio_util::sync::CancellationToken;

use super::error::{ApiError, ErrorCode};

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How old the readiness a probe reads may be: well under any probe period (Kubernetes'
/// default is 10 s) and the gateway's upstream health checks.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

type CheckFn = dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// One named readiness check, such as `authentication.database` or `queue`.
#[derive(Clone)]
pub struct ReadinessCheck {
    pub name: String,
    check: Arc<CheckFn>,
    /// A failure makes the process not ready; otherwise it is only degraded.
    required: bool,
    /// Reads the process's own state (no I/O): run on every probe instead of by the
    /// refresher, so a change (a vault sealed or unsealed) shows at once.
    in_process: bool,
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
            in_process: false,
        }
    }

    /// A required check of the process's own state, answered without I/O; it runs on
    /// every probe.
    pub fn in_process<F>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Result<(), String> + Send + Sync + 'static,
    {
        let check = Arc::new(check);
        Self {
            in_process: true,
            ..Self::new(name, move || std::future::ready(check()))
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
    /// The checks' last outcome, kept fresh by the task the first probe starts.
    latest: Arc<OnceCell<watch::Receiver<Checked>>>,
}

/// One run of every check: whether the process is ready, whether it is degraded, and each
/// check's word.
#[derive(Clone, Debug)]
struct Checked {
    ready: bool,
    degraded: bool,
    checks: Map<String, Value>,
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
            latest: Arc::default(),
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

    /// Runs every check of one kind (in-process or not) at once, each bounded by a timeout.
    async fn run_checks(checks: &[ReadinessCheck], in_process: bool) -> Checked {
        let chosen = checks.iter().filter(|check| check.in_process == in_process);
        let results = join_all(chosen.map(|check| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, (check.check)()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
            };
            (check.name.clone(), check.required, outcome)
        }))
        .await;
        let (mut ready, mut degraded) = (true, false);
        let mut report = Map::new();
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
        Checked {
            ready,
            degraded,
            checks: report,
        }
    }

    /// The last report, starting the refresher on first use. The refresher holds only the
    /// checks and the sending side: it stops once every `Health` clone (and with them the
    /// receiver) is gone, or when the process drains.
    async fn latest(&self) -> Checked {
        let receiver = self
            .latest
            .get_or_init(|| async {
                let first = Self::run_checks(&self.checks, false).await;
                let (sender, receiver) = watch::channel(first);
                let checks = self.checks.clone();
                let draining = self.draining.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = draining.cancelled() => return,
                            _ = sender.closed() => return,
                            _ = tokio::time::sleep(REFRESH_INTERVAL) => {}
                        }
                        if sender.send(Self::run_checks(&checks, false).await).is_err() {
                            return;
                        }
                    }
                });
                receiver
            })
            .await;
        receiver.borrow().clone()
    }

    /// Whether the process is ready, whether it is degraded, and each check's word: checks
    /// that need I/O as of the last refresh, in-process ones and draining as of now.
    pub async fn report(&self) -> (bool, bool, Map<String, Value>) {
        let Checked {
            mut ready,
            mut degraded,
            mut checks,
        } = self.latest().await;
        let now = Self::run_checks(&self.checks, true).await;
        ready &= now.ready;
        degraded |= now.degraded;
        checks.extend(now.checks);
        if self.draining.is_cancelled() {
            ready = false;
            checks.insert("shutdown".into(), "draining".into());
        }
        (ready, degraded, checks)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// A check that counts its runs and fails while `failing` is set.
    fn counted(runs: &Arc<AtomicUsize>, failing: &Arc<AtomicBool>) -> ReadinessCheck {
        let (runs, failing) = (runs.clone(), failing.clone());
        ReadinessCheck::new("store.database", move || {
            runs.fetch_add(1, Ordering::SeqCst);
            let failing = failing.load(Ordering::SeqCst);
            async move {
                if failing {
                    Err("database unreachable".to_string())
                } else {
                    Ok(())
                }
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn probes_read_one_report_refreshed_in_the_background() {
        let (runs, failing) = (Arc::default(), Arc::default());
        let health = Health::new(vec![counted(&runs, &failing)], CancellationToken::new());
        join_all((0..100).map(|_| health.report())).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "the first probe runs the checks once"
        );

        tokio::time::sleep(REFRESH_INTERVAL * 3 + REFRESH_INTERVAL / 2).await;
        join_all((0..100).map(|_| health.report())).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            4,
            "then once per interval, not per probe"
        );

        failing.store(true, Ordering::SeqCst);
        let (ready, _, checks) = health.report().await;
        assert!(ready, "the failure is not seen before the next refresh");
        tokio::time::sleep(REFRESH_INTERVAL).await;
        let (ready, _, checks_after) = health.report().await;
        assert!(!ready, "seen within one interval: {checks_after:?}");
        assert_eq!(checks["store.database"], "ok");
        assert_eq!(checks_after["store.database"], "database unreachable");
    }

    #[tokio::test(start_paused = true)]
    async fn in_process_checks_and_draining_are_read_on_every_probe() {
        let sealed = Arc::new(AtomicBool::new(false));
        let seal = sealed.clone();
        let vault =
            ReadinessCheck::in_process("vault", move || match seal.load(Ordering::SeqCst) {
                true => Err("sealed".to_string()),
                false => Ok(()),
            });
        let (runs, failing) = (Arc::default(), Arc::default());
        let draining = CancellationToken::new();
        let health = Health::new(vec![counted(&runs, &failing), vault], draining.clone());
        assert!(health.report().await.0);
        sealed.store(true, Ordering::SeqCst);
        let (ready, _, checks) = health.report().await;
        assert!(!ready);
        assert_eq!(checks["vault"], "sealed");
        sealed.store(false, Ordering::SeqCst);
        assert!(health.report().await.0);
        draining.cancel();
        let (ready, _, checks) = health.report().await;
        assert!(!ready);
        assert_eq!(checks["shutdown"], "draining");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "none of this waited for a refresh"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_refresher_stops_with_the_last_handle() {
        let (runs, failing) = (Arc::default(), Arc::default());
        let health = Health::new(vec![counted(&runs, &failing)], CancellationToken::new());
        let probe = health.clone();
        probe.report().await;
        drop((health, probe));
        tokio::time::sleep(REFRESH_INTERVAL * 5).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "no checks after the last handle went"
        );
    }
}
