//! Routes under `/api/v1/config`: the contract (`GET /settings`, `POST /update`), scopes,
//! releases (history, one release, diff, rollback), the catalogue and the long poll.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::ETAG;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use platform::auth::Caller;
use platform::config::SettingSpec;
use platform::config::central::CentralSnapshot;
use platform::http::error::ErrorBody;
use platform::http::observe::current_request_id;
use platform::http::openapi::BearerAuth;
use platform::http::precondition::{etag, if_match};
use platform::{ApiError, Json, Query};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::OpenApi;

use crate::model::{Diff, Snapshot, normalize_update, parse_profile};
use crate::ops;
use crate::ops::history::Redacted;
use crate::ops::releases::{Change, Written};
use crate::service::ConfigService;
use crate::store::Release;

pub type AppState = Arc<ConfigService>;

pub fn router(state: AppState) -> Router {
    let p = crate::ROUTE_PREFIX;
    Router::new()
        .route(&format!("{p}/settings"), get(settings))
        .route(&format!("{p}/update"), post(update))
        .route(&format!("{p}/scopes"), get(scopes))
        .route(&format!("{p}/scopes/{{scope}}"), get(scope))
        .route(&format!("{p}/releases"), get(releases))
        .route(&format!("{p}/releases/diff"), get(diff))
        .route(&format!("{p}/releases/redact"), post(redact))
        .route(&format!("{p}/releases/{{revision}}"), get(release))
        .route(&format!("{p}/rollback"), post(rollback))
        .route(&format!("{p}/catalog"), get(catalog))
        .route(&format!("{p}/watch"), get(watch))
        .with_state(state)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SettingsQuery {
    /// A service name, or `global`.
    pub service_name: String,
    /// development, staging or production; default: this service's own profile.
    pub profile: Option<String>,
}

/// The effective central settings of a service (contract): its profile's global settings
/// merged with its own, as dotted keys. The ETag is the service scope's own revision, for
/// `If-Match` on `/update`.
#[utoipa::path(get, path = "/api/v1/config/settings", tag = "settings", security(("bearer" = [])),
    params(SettingsQuery),
    responses((status = 200, body = CentralSnapshot), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn settings(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<SettingsQuery>,
) -> Result<Response, ApiError> {
    let profile = parse_profile(query.profile.as_deref(), state.profile)?;
    let (snapshot, scope_revision) =
        ops::settings::effective(&state, &caller, &query.service_name, profile).await?;
    Ok(([(ETAG, etag(scope_revision))], Json(snapshot)).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"service": "bot-manager", "settings": {"bot_manager.execution.max_attempts": 5}, "reason": "more retries while X is degraded"}))]
pub struct UpdateRequest {
    /// A service name, or `global`.
    pub service: Value,
    /// Dotted keys (or nested objects) and their values; `null` removes a key.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Default: this service's own profile.
    pub profile: Option<String>,
    /// Why, for the audit trail.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpdateResponse {
    /// Always `updated`.
    pub status: &'static str,
    #[schema(value_type = Object)]
    pub updated_settings: BTreeMap<String, Value>,
    pub service: String,
    pub profile: String,
    /// The new release.
    pub revision: i64,
    /// Changed keys that running services apply only when they restart.
    pub restart_required: Vec<String>,
}

/// Change a service's (or global) settings (contract); admins only. `If-Match: "<revision>"`
/// makes it a check-and-set: 409 when the scope has moved on.
#[utoipa::path(post, path = "/api/v1/config/update", tag = "settings", security(("bearer" = [])),
    request_body = UpdateRequest,
    responses((status = 200, body = UpdateResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(request): Json<UpdateRequest>,
) -> Result<Response, ApiError> {
    let Some(service) = request.service.as_str().filter(|s| !s.is_empty()) else {
        return Err(ApiError::invalid_data("service: a service name, or global")
            .with_field("field", "service"));
    };
    let updates = normalize_update(&request.settings)?;
    let profile = parse_profile(request.profile.as_deref(), state.profile)?;
    let change = Change {
        scope: service.to_string(),
        profile,
        reason: request.reason.unwrap_or_default(),
        request_id: current_request_id(),
        expected: if_match(&headers)?,
    };
    let written = ops::releases::update(&state, &caller, &change, &updates).await?;
    Ok(written_response(
        UpdateResponse {
            status: "updated",
            updated_settings: updates,
            service: change.scope,
            profile: profile.as_str().to_string(),
            revision: written.release.revision,
            restart_required: written.restart_required.clone(),
        },
        &written,
    ))
}

fn written_response(body: impl Serialize, written: &Written) -> Response {
    (
        [(ETAG, etag(written.release.revision))],
        Json(serde_json::to_value(body).expect("responses serialize")),
    )
        .into_response()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ProfileQuery {
    pub profile: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScopeSummary {
    pub scope: String,
    /// 0: no release yet.
    pub revision: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScopesResponse {
    pub profile: String,
    pub scopes: Vec<ScopeSummary>,
}

/// Every scope (global and each service) with the revision it is at in a profile.
#[utoipa::path(get, path = "/api/v1/config/scopes", tag = "settings", security(("bearer" = [])),
    params(ProfileQuery),
    responses((status = 200, body = ScopesResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn scopes(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ProfileQuery>,
) -> Result<Json<ScopesResponse>, ApiError> {
    let profile = parse_profile(query.profile.as_deref(), state.profile)?;
    let scopes = ops::settings::scopes(&state, &caller, profile).await?;
    Ok(Json(ScopesResponse {
        profile: profile.as_str().to_string(),
        scopes: scopes
            .into_iter()
            .map(|(scope, revision)| ScopeSummary { scope, revision })
            .collect(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScopeResponse {
    pub scope: String,
    pub profile: String,
    pub revision: i64,
    /// The scope's own settings (not merged with global).
    #[schema(value_type = Object)]
    pub settings: Snapshot,
}

/// One scope's own settings, with its revision as the ETag.
#[utoipa::path(get, path = "/api/v1/config/scopes/{scope}", tag = "settings", security(("bearer" = [])),
    params(("scope" = String, Path, description = "global or a service name"), ProfileQuery),
    responses((status = 200, body = ScopeResponse), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn scope(
    State(state): State<AppState>,
    caller: Caller,
    Path(scope): Path<String>,
    Query(query): Query<ProfileQuery>,
) -> Result<Response, ApiError> {
    let profile = parse_profile(query.profile.as_deref(), state.profile)?;
    let (settings, revision) = ops::settings::scope(&state, &caller, &scope, profile).await?;
    Ok((
        [(ETAG, etag(revision))],
        Json(ScopeResponse {
            scope,
            profile: profile.as_str().to_string(),
            revision,
            settings,
        }),
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct HistoryQuery {
    pub scope: Option<String>,
    pub profile: Option<String>,
    /// Only releases older than this revision (the previous page's `next`).
    pub before: Option<i64>,
    /// 1 to 200; default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryResponse {
    pub releases: Vec<Release>,
    /// `before` for the next page, when there may be one.
    pub next: Option<i64>,
}

/// Releases, newest first: who changed what, when, why, in which request.
#[utoipa::path(get, path = "/api/v1/config/releases", tag = "releases", security(("bearer" = [])),
    params(HistoryQuery),
    responses((status = 200, body = HistoryResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn releases(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_data("limit: 1 to 200").with_field("field", "limit"));
    }
    let profile = match query.profile.as_deref() {
        Some(text) => Some(parse_profile(Some(text), state.profile)?),
        None => None,
    };
    let releases = ops::history::list(
        &state,
        &caller,
        query.scope.as_deref(),
        profile,
        query.before,
        limit,
    )
    .await?;
    let next = (releases.len() as i64 == limit)
        .then(|| releases.last().map(|r| r.revision))
        .flatten();
    Ok(Json(HistoryResponse { releases, next }))
}

/// One release: its full snapshot, diff, author, reason and request id.
#[utoipa::path(get, path = "/api/v1/config/releases/{revision}", tag = "releases", security(("bearer" = [])),
    params(("revision" = i64, Path)),
    responses((status = 200, body = Release), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Path(revision): Path<String>,
) -> Result<Json<Release>, ApiError> {
    let revision = parse_revision("revision", &revision)?;
    Ok(Json(
        ops::history::release(&state, &caller, revision).await?,
    ))
}

fn parse_revision(field: &str, text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::invalid_data(format!("{field}: a revision number")).with_field("field", field)
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DiffQuery {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DiffResponse {
    pub from: i64,
    pub to: i64,
    pub diff: Diff,
}

/// What differs between the snapshots of two releases.
#[utoipa::path(get, path = "/api/v1/config/releases/diff", tag = "releases", security(("bearer" = [])),
    params(DiffQuery),
    responses((status = 200, body = DiffResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<DiffQuery>,
) -> Result<Json<DiffResponse>, ApiError> {
    let from = parse_revision("from", &query.from)?;
    let to = parse_revision("to", &query.to)?;
    let diff = ops::history::diff(&state, &caller, from, to).await?;
    Ok(Json(DiffResponse { from, to, diff }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"revision": 0, "service": "bot-manager", "reason": "back to the defaults"}))]
pub struct RollbackRequest {
    /// The release whose snapshot becomes current again; `0`: the defaults (no central
    /// settings), for the scope `service` names.
    pub revision: i64,
    /// The scope (a service name, or `global`): required with revision 0; otherwise, if
    /// given, it must be the release's.
    pub service: Option<String>,
    /// Default: this service's own profile.
    pub profile: Option<String>,
    /// Why, for the audit trail.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RollbackResponse {
    /// Always `rolled_back`.
    pub status: &'static str,
    pub release: Release,
    pub restart_required: Vec<String>,
}

/// Roll a scope back: a new release copying an earlier one's snapshot, or none
/// (`revision: 0` with `service`: back to the defaults); admins only. `If-Match` (the scope's
/// current revision) makes it a check-and-set.
#[utoipa::path(post, path = "/api/v1/config/rollback", tag = "releases", security(("bearer" = [])),
    request_body = RollbackRequest,
    responses((status = 200, body = RollbackResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(request): Json<RollbackRequest>,
) -> Result<Response, ApiError> {
    let scope = match request.service {
        Some(service) => Some((
            service,
            parse_profile(request.profile.as_deref(), state.profile)?,
        )),
        None => None,
    };
    let target = ops::releases::RollbackTarget {
        revision: request.revision,
        scope,
    };
    let written = ops::releases::rollback(
        &state,
        &caller,
        target,
        request.reason.unwrap_or_default(),
        current_request_id(),
        if_match(&headers)?,
    )
    .await?;
    Ok(written_response(
        RollbackResponse {
            status: "rolled_back",
            release: written.release.clone(),
            restart_required: written.restart_required.clone(),
        },
        &written,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"service": "bot-manager", "key": "bot_manager.x_api.base_url", "reason": "a token was pasted into the URL"}))]
pub struct RedactRequest {
    /// A service name, or `global`.
    pub service: String,
    /// The dotted key whose values are redacted in every release of the scope.
    pub key: String,
    /// Default: this service's own profile.
    pub profile: Option<String>,
    /// Why, for the audit trail.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RedactResponse {
    /// Always `redacted`.
    pub status: &'static str,
    #[serde(flatten)]
    pub redacted: Redacted,
}

/// Redact a value from history: every release of the scope keeps its place, but the key's
/// values in clear (not `${secret:NAME}` references) become `[redacted]`, in snapshots and
/// diffs. For a secret written in clear. Admins only; audited as `settings.redacted`. 409
/// while the scope's newest release still holds the key in clear; a redacted release cannot
/// be rolled back to.
#[utoipa::path(post, path = "/api/v1/config/releases/redact", tag = "releases", security(("bearer" = [])),
    request_body = RedactRequest,
    responses((status = 200, body = RedactResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn redact(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<RedactRequest>,
) -> Result<Json<RedactResponse>, ApiError> {
    let change = Change {
        scope: request.service,
        profile: parse_profile(request.profile.as_deref(), state.profile)?,
        reason: request.reason.unwrap_or_default(),
        request_id: current_request_id(),
        expected: None,
    };
    let redacted = ops::history::redact_history(&state, &caller, &change, &request.key).await?;
    Ok(Json(RedactResponse {
        status: "redacted",
        redacted,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogResponse {
    pub services: Vec<String>,
    /// Keys that hold secrets: written centrally only as `${secret:NAME}` references.
    pub secrets: Vec<String>,
    /// The declared settings: type, range, and whether running services apply them live.
    /// Any other key a service's settings have can be set too; it applies at restart.
    #[schema(value_type = Vec<Object>)]
    pub settings: Vec<SettingSpec>,
}

/// The settings services declare, with types, ranges and live/restart.
#[utoipa::path(get, path = "/api/v1/config/catalog", tag = "settings", security(("bearer" = [])),
    responses((status = 200, body = CatalogResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn catalog(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CatalogResponse>, ApiError> {
    let catalog = ops::settings::catalog(&state, &caller)?;
    Ok(Json(CatalogResponse {
        services: catalog.services().map(str::to_string).collect(),
        secrets: catalog.secret_keys().iter().cloned().collect(),
        settings: catalog.specs().cloned().collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct WatchQuery {
    pub service_name: String,
    pub profile: Option<String>,
    /// Answer once the effective revision is above this; default 0.
    pub since: Option<i64>,
    /// How long to wait: `30s`, `30` (seconds) or `500ms`; default 30 s, at most
    /// `configuration.max_wait_seconds` and 5 s less than the request timeout.
    pub wait: Option<String>,
}

fn parse_wait(text: Option<&str>, max: Duration) -> Result<Duration, ApiError> {
    let bad = || {
        ApiError::invalid_data("wait: a duration such as 30s, 500ms or 30")
            .with_field("field", "wait")
    };
    let wait = match text {
        None => Duration::from_secs(30),
        Some(text) => {
            let (number, unit) = match text.strip_suffix("ms") {
                Some(number) => (number, 1),
                None => (text.strip_suffix('s').unwrap_or(text), 1000),
            };
            let number: u64 = number.parse().map_err(|_| bad())?;
            Duration::from_millis(number.checked_mul(unit).ok_or_else(bad)?)
        }
    };
    Ok(wait.min(max))
}

/// Long poll: the effective settings as soon as their revision is above `since`; 304 when
/// `wait` passes with no change.
#[utoipa::path(get, path = "/api/v1/config/watch", tag = "settings", security(("bearer" = [])),
    params(WatchQuery),
    responses((status = 200, body = CentralSnapshot), (status = 304, description = "no change within wait"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn watch(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<WatchQuery>,
) -> Result<Response, ApiError> {
    let profile = parse_profile(query.profile.as_deref(), state.profile)?;
    let wait = parse_wait(query.wait.as_deref(), state.max_wait())?;
    let since = query.since.unwrap_or(0);
    match ops::settings::wait_for_change(&state, &caller, &query.service_name, profile, since, wait)
        .await?
    {
        Some(snapshot) => {
            let revision = snapshot.revision;
            Ok(([(ETAG, etag(revision))], Json(snapshot)).into_response())
        }
        None => Ok(StatusCode::NOT_MODIFIED.into_response()),
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(settings, update, scopes, scope, releases, release, diff, redact, rollback, catalog, watch),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    tags((name = "settings", description = "Central settings per scope and profile"),
         (name = "releases", description = "Immutable releases: history, diff, rollback")),
)]
pub struct ConfigApi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_accepts_seconds_and_milliseconds_and_is_capped() {
        let max = Duration::from_secs(60);
        assert_eq!(
            parse_wait(Some("30s"), max).unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            parse_wait(Some("30"), max).unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            parse_wait(Some("250ms"), max).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_wait(Some("600s"), max).unwrap(), max);
        assert!(parse_wait(Some("soon"), max).is_err());
        assert!(parse_wait(Some("-1s"), max).is_err());
    }
}
