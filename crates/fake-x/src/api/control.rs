//! `/_fake/…`: what tests steer — users, app-only tokens, media uploads, token expiry,
//! metrics, faults — and what they read back: the request log and contract violations.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::state::{Fault, MediaKind, NewUser};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_fake/users", post(add_user))
        .route("/_fake/app_tokens", post(add_app_token))
        .route("/_fake/users/{id}/media", post(add_media))
        .route("/_fake/users/{id}/expire_tokens", post(expire_tokens))
        .route("/_fake/users/{id}/metrics", post(user_metrics))
        .route("/_fake/tweets/{id}/metrics", post(post_metrics))
        .route("/_fake/faults", post(add_fault))
        .route("/_fake/requests", get(requests))
        .route("/_fake/contract_violations", get(contract_violations))
}

async fn add_user(State(fake): State<AppState>, Json(user): Json<NewUser>) -> Response {
    (StatusCode::CREATED, Json(fake.add_user(user))).into_response()
}

async fn add_app_token(State(fake): State<AppState>) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({"access_token": fake.add_app_token()})),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMedia {
    #[serde(rename = "type")]
    kind: MediaKind,
}

/// What X's media upload would give back: the id a post attaches, and the key it shows.
async fn add_media(
    State(fake): State<AppState>,
    Path(id): Path<String>,
    Json(media): Json<NewMedia>,
) -> Response {
    match fake.add_media(&id, media.kind) {
        Some(media) => (StatusCode::CREATED, Json(media)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn expire_tokens(State(fake): State<AppState>, Path(id): Path<String>) -> StatusCode {
    if fake.expire_access_tokens(&id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn user_metrics(
    State(fake): State<AppState>,
    Path(id): Path<String>,
    Json(metrics): Json<HashMap<String, u64>>,
) -> StatusCode {
    if fake.set_user_metrics(&id, metrics) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn post_metrics(
    State(fake): State<AppState>,
    Path(id): Path<String>,
    Json(metrics): Json<HashMap<String, u64>>,
) -> StatusCode {
    if fake.set_post_metrics(&id, metrics) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn add_fault(State(fake): State<AppState>, Json(fault): Json<Fault>) -> StatusCode {
    if fault.times == 0 {
        return StatusCode::BAD_REQUEST;
    }
    fake.add_fault(fault);
    StatusCode::NO_CONTENT
}

async fn requests(State(fake): State<AppState>) -> Json<Value> {
    Json(json!({"requests": fake.requests()}))
}

async fn contract_violations(State(fake): State<AppState>) -> Json<Value> {
    Json(json!({"violations": fake.contract_violations()}))
}
