//! The proxy: route by prefix, check the token at the edge (public paths exempt), pick a
//! healthy upstream, stream the request there and the answer back. The body is never
//! buffered; the request id goes along; failures answer in the standard error shape —
//! 502 when the upstream cannot be reached, 503 when none is healthy, 504 when it is late.
//! A request without a body whose upstream refused the connection (so it never arrived) goes
//! to the next healthy one, as Kong retries: a replica that just died costs its callers
//! nothing before the next health check notices.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use platform::auth::Authenticated;
use platform::http::error::{ApiError, ErrorCode};
use platform::http::observe::current_request_id;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::routes::{Route, route_for};
use crate::upstream::{Pool, Upstream};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxiedLabels {
    pub service: String,
    pub upstream: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

/// The gateway's own figures, beside the per-route request metrics every service has.
#[derive(Clone)]
pub struct ProxyMetrics {
    pub requests: Family<ProxiedLabels, Counter>,
    pub duration: Family<ServiceLabels, Histogram, fn() -> Histogram>,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl ProxyMetrics {
    pub fn register(registry: &platform::http::metrics::MetricsRegistry) -> Self {
        Self {
            requests: registry.register(
                "gateway_upstream_requests",
                "Requests proxied, by service, upstream and status (0: no answer)",
                Family::default(),
            ),
            duration: registry.register(
                "gateway_upstream_duration_seconds",
                "Time to the upstream's response headers, by service",
                Family::new_with_constructor(duration_histogram),
            ),
        }
    }
}

pub struct Proxy {
    pub pools: Arc<BTreeMap<&'static str, Pool>>,
    pub http: UpstreamClient,
    /// How long an upstream may take to its response headers (then 504).
    pub timeout: Duration,
    pub metrics: ProxyMetrics,
}

/// HTTP/1.1 to the services, connections kept and reused. hyper's client rather than
/// reqwest's: the request and response bodies pass through as they are (no stream
/// adapters, no URL parsing), which a proxy does on every request.
pub type UpstreamClient = Client<HttpConnector, Body>;

pub fn upstream_client(connect_timeout: Duration) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Why an upstream gave no answer.
enum Failure {
    /// No response headers within [`Proxy::timeout`].
    Late,
    /// The connection was refused or could not be made: the request never arrived.
    Connect(hyper_util::client::legacy::Error),
    Other(String),
}

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), and the ones
/// the gateway sets itself.
const NOT_FORWARDED: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "x-forwarded-for",
];

fn forwardable(headers: &HeaderMap) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| !NOT_FORWARDED.contains(&name.as_str()))
}

/// A path with a `.` or `..` segment (also percent-encoded) could name another route once an
/// HTTP client normalises it; such paths never pass the edge.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let lower = segment.to_ascii_lowercase().replace("%2e", ".");
        lower == "." || lower == ".."
    })
}

pub async fn handle(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (route, parts, body) = match admit(request).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    // A body is streamed, so only a request without one can be sent again.
    let mut retries = match has_body(&parts.headers) {
        true => 0,
        false => proxy
            .pools
            .get(route.service)
            .map_or(0, |pool| pool.upstreams.len() - 1),
    };
    let mut body = Some(body);
    loop {
        let upstream = match pick_upstream(&proxy, route) {
            Ok(upstream) => upstream,
            Err(refusal) => return refusal.into_response(),
        };
        let outgoing = match forward_request(&upstream, &parts, body.take().unwrap_or_default()) {
            Ok(outgoing) => outgoing,
            Err(refusal) => return refusal.into_response(),
        };
        let started = Instant::now();
        let result = send(&proxy, outgoing).await;
        proxy
            .metrics
            .duration
            .get_or_create(&ServiceLabels {
                service: route.service.to_string(),
            })
            .observe(started.elapsed().as_secs_f64());
        let status = result.as_ref().map_or(0, |answer| answer.status().as_u16());
        proxy
            .metrics
            .requests
            .get_or_create(&ProxiedLabels {
                service: route.service.to_string(),
                upstream: upstream.url.clone(),
                status,
            })
            .inc();
        match result {
            Ok(answer) => return stream_back(answer),
            Err(Failure::Connect(err)) if retries > 0 => {
                retries -= 1;
                upstream.mark(false);
                tracing::warn!(service = route.service, upstream = upstream.url, error = %err, "upstream refused the connection; trying the next");
            }
            Err(failure) => {
                return upstream_failure(&proxy, route, &upstream, failure).into_response();
            }
        }
    }
}

/// The upstream's answer up to its headers, within the proxy's timeout; the body then
/// streams at the client's pace.
async fn send(
    proxy: &Proxy,
    outgoing: Request,
) -> Result<Response<hyper::body::Incoming>, Failure> {
    match tokio::time::timeout(proxy.timeout, proxy.http.request(outgoing)).await {
        Err(_) => Err(Failure::Late),
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(err)) if err.is_connect() => Err(Failure::Connect(err)),
        Ok(Err(err)) => Err(Failure::Other(format!("{err:?}"))),
    }
}

/// Whether the request carries a body (a length above zero, or chunked).
fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match length {
        Some(length) => length > 0,
        None => headers.contains_key(axum::http::header::TRANSFER_ENCODING),
    }
}

/// The checks at the edge: a route, no dot segments, and a valid token unless the path is
/// public. A refused request never reaches a service.
async fn admit(
    request: Request,
) -> Result<(&'static Route, axum::http::request::Parts, Body), Response> {
    let path = request.uri().path();
    let Some(route) = route_for(path) else {
        return Err(ApiError::not_found("no route matches this path").into_response());
    };
    if has_dot_segment(path) {
        return Err(ApiError::invalid_data("the path has a `.` or `..` segment").into_response());
    }
    let is_public = route.is_public(path);
    let (mut parts, body) = request.into_parts();
    if !is_public && let Err(rejection) = Authenticated::from_request_parts(&mut parts, &()).await {
        return Err(rejection.into_response());
    }
    Ok((route, parts, body))
}

fn pick_upstream(proxy: &Proxy, route: &Route) -> Result<Arc<Upstream>, ApiError> {
    let pool = proxy
        .pools
        .get(route.service)
        .ok_or_else(|| ApiError::internal(format!("no upstreams for {}", route.service)))?;
    pool.pick().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotReady,
            format!("no healthy instance of {} right now", route.service),
        )
    })
}

/// The request as the upstream gets it: same method, path, query and end-to-end headers,
/// this request's id, the client appended to X-Forwarded-For, and the body passed through
/// (hyper sets Host from the URI, and the length or chunking from the body).
fn forward_request(
    upstream: &Upstream,
    parts: &axum::http::request::Parts,
    body: Body,
) -> Result<Request, ApiError> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |pq| pq.as_str());
    let uri: Uri = format!("{}{path_and_query}", upstream.url)
        .parse()
        .map_err(|err| ApiError::invalid_data(format!("the path cannot be forwarded: {err}")))?;
    let mut outgoing = Request::new(body);
    *outgoing.method_mut() = parts.method.clone();
    *outgoing.uri_mut() = uri;
    let headers = outgoing.headers_mut();
    // The request id is set once below, as this request's span knows it.
    for (name, value) in forwardable(&parts.headers).filter(|(name, _)| *name != "x-request-id") {
        headers.append(name.clone(), value.clone());
    }
    if let Some(id) = current_request_id().and_then(|id| HeaderValue::from_str(&id).ok()) {
        headers.insert("x-request-id", id);
    }
    if let Some(forwarded_for) = forwarded_for(parts).and_then(|f| HeaderValue::from_str(&f).ok()) {
        headers.insert("x-forwarded-for", forwarded_for);
    }
    Ok(outgoing)
}

/// Earlier hops' X-Forwarded-For with this connection's client appended.
fn forwarded_for(parts: &axum::http::request::Parts) -> Option<String> {
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string());
    match (parts.headers.get("x-forwarded-for"), client) {
        (Some(earlier), Some(client)) => earlier
            .to_str()
            .ok()
            .map(|earlier| format!("{earlier}, {client}")),
        (None, Some(client)) => Some(client),
        (Some(earlier), None) => earlier.to_str().ok().map(str::to_string),
        (None, None) => None,
    }
}

fn stream_back(answer: Response<hyper::body::Incoming>) -> Response {
    let (mut parts, body) = answer.into_parts();
    for name in NOT_FORWARDED {
        parts.headers.remove(name);
    }
    Response::from_parts(parts, Body::new(body))
}

/// 504 when the upstream was late, 502 when it could not be reached (and then it counts as
/// down until its next passing health check).
fn upstream_failure(
    proxy: &Proxy,
    route: &Route,
    upstream: &Upstream,
    failure: Failure,
) -> ApiError {
    let err = match failure {
        Failure::Late => {
            tracing::warn!(
                service = route.service,
                upstream = upstream.url,
                "upstream timed out"
            );
            return ApiError::new(
                ErrorCode::UpstreamTimeout,
                format!(
                    "{} did not answer within {} ms",
                    route.service,
                    proxy.timeout.as_millis()
                ),
            );
        }
        Failure::Connect(err) => {
            upstream.mark(false);
            format!("{err:?}")
        }
        Failure::Other(err) => err,
    };
    tracing::warn!(service = route.service, upstream = upstream.url, error = %err, "upstream unreachable");
    ApiError::new(
        ErrorCode::BadGateway,
        format!("{} could not be reached", route.service),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_recognised_in_any_spelling() {
        assert!(has_dot_segment("/api/v1/auth/docs/../me"));
        assert!(has_dot_segment("/api/v1/auth/docs/%2E%2e/me"));
        assert!(has_dot_segment("/api/v1/./bots"));
        assert!(!has_dot_segment("/api/v1/auth/.well-known/jwks.json"));
        assert!(!has_dot_segment("/api/v1/bots/a..b"));
    }
}
