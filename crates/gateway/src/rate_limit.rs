//! The edge rate limit: requests per minute per client address (a loopback proxy's
//! `X-Forwarded-For`, see `platform::http::client`), GCRA (governor) with a burst
//! of the whole minute's allowance, as Kong's `rate-limiting` plugin counts them. The limit
//! follows `gateway.rate_limit.per_minute` live: a change swaps in a fresh limiter, so every
//! client starts the new minute with the new allowance. 0 turns the limit off.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock as _;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use platform::config::Live;
use platform::http::error::{ApiError, ErrorCode};

use crate::Settings;

type Limiter =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, PlatformClock, StateInformationMiddleware>;

/// The platform's clock as governor reads time, so the edge's windows move with the app's
/// clock (a test's, too) rather than a clock of their own.
#[derive(Clone)]
struct PlatformClock(platform::Clock);

impl governor::clock::Clock for PlatformClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(u64::try_from(self.0.now().unix_timestamp_nanos()).unwrap_or(0))
    }
}

/// A limiter and the allowance per minute it was made for.
type Current = Option<(u32, Arc<Limiter>)>;

/// The limiter in effect, remade when the allowance changes.
#[derive(Clone)]
pub struct EdgeRateLimit {
    settings: Live<Settings>,
    current: Arc<Mutex<Current>>,
    clock: PlatformClock,
}

impl EdgeRateLimit {
    pub fn new(settings: Live<Settings>, clock: platform::Clock) -> Self {
        Self {
            settings,
            current: Arc::default(),
            clock: PlatformClock(clock),
        }
    }

    /// The limiter for the allowance in effect now (`None`: no limit).
    fn limiter(&self) -> Option<(u32, Arc<Limiter>)> {
        let per_minute = self.settings.get().rate_limit.per_minute;
        let per_minute_nz = NonZeroU32::new(per_minute)?;
        let mut current = self.current.lock().expect("rate limiter lock");
        match current.as_ref() {
            Some((limit, limiter)) if *limit == per_minute => Some((*limit, limiter.clone())),
            _ => {
                let limiter = Arc::new(
                    RateLimiter::dashmap_with_clock(
                        Quota::per_minute(per_minute_nz),
                        self.clock.clone(),
                    )
                    .with_middleware::<StateInformationMiddleware>(),
                );
                *current = Some((per_minute, limiter.clone()));
                Some((per_minute, limiter))
            }
        }
    }
}

/// Health probes are never limited: a busy client must not make a pod look dead.
fn is_exempt(path: &str) -> bool {
    path.ends_with("/health")
}

fn header(value: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&value.to_string()).expect("digits are a valid header")
}

fn set_limit_headers(headers: &mut HeaderMap, limit: u32, remaining: u32, reset_secs: u64) {
    headers.insert("ratelimit-limit", header(limit));
    headers.insert("ratelimit-remaining", header(remaining));
    headers.insert("ratelimit-reset", header(reset_secs));
    headers.insert("x-ratelimit-limit-minute", header(limit));
    headers.insert("x-ratelimit-remaining-minute", header(remaining));
}

/// The middleware: 429 `RATE_LIMITED` with `Retry-After` once a client address has used its
/// allowance; the limit headers on every answer.
pub async fn limit(State(edge): State<EdgeRateLimit>, request: Request, next: Next) -> Response {
    if is_exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let Some((limit, limiter)) = edge.limiter() else {
        return next.run(request).await;
    };
    // Behind the console (or a proxy on this host), the person's address, not the proxy's.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let client = platform::http::client::client_address(request.headers(), peer)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match limiter.check_key(&client) {
        Ok(snapshot) => {
            let remaining = snapshot.remaining_burst_capacity();
            let mut response = next.run(request).await;
            let reset = 60u64.div_ceil(u64::from(limit)).max(1);
            set_limit_headers(response.headers_mut(), limit, remaining, reset);
            response
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(edge.clock.now());
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let retry_after = retry_after.max(1);
            let mut response = ApiError::new(
                ErrorCode::RateLimited,
                format!("more than {limit} requests per minute from this address; retry in {retry_after}s"),
            )
            .into_response();
            let headers = response.headers_mut();
            headers.insert("retry-after", header(retry_after));
            set_limit_headers(headers, limit, 0, retry_after);
            response
        }
    }
}
