//! Reading: a time window (default the last hour) and filters, newest first with keyset
//! pagination on (ts, id); the same filter streamed as NDJSON or CSV; and deletes by filter
//! for admins. The caller's readable categories bound every one of them.

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::http::observe::current_request_id;
use platform::http::page::{Listing, clamp_limit};
use platform::{ApiError, Json, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use crate::model::{Category, LEVELS, LogEvent, parse_timestamp};
use crate::ops;
use crate::store::{Cursor, Filter};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"category": "console", "service": "web-ui", "to": "2027-01-01T00:00:00Z"}))]
pub struct EventQuery {
    /// Start of the window, RFC 3339 or Unix ms (default: one hour before `to`).
    pub from: Option<String>,
    /// End of the window, exclusive (default: now).
    pub to: Option<String>,
    /// Comma-separated categories (default: every one you may read).
    pub category: Option<String>,
    pub service: Option<String>,
    pub level: Option<String>,
    /// The acting user's id.
    pub actor_id: Option<String>,
    /// The bot the events concern.
    pub bot_id: Option<String>,
    pub action: Option<String>,
    pub request_id: Option<String>,
    /// Words the message must contain.
    pub q: Option<String>,
    /// 1 to 500, default 50 (lists only).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (lists only).
    pub cursor: Option<String>,
    /// `ndjson` (default) or `csv` (exports only).
    pub format: Option<String>,
}

fn time_param(name: &str, raw: &str) -> Result<i64, ApiError> {
    let value = raw
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(raw.to_string()));
    parse_timestamp(&value)
        .ok_or_else(|| ApiError::invalid_data(format!("{name}: RFC 3339 or Unix milliseconds")))
}

fn short(name: &str, value: &Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() || v.len() > 256 => Err(ApiError::invalid_data(format!(
            "{name}: 1 to 256 characters"
        ))),
        other => Ok(other.clone()),
    }
}

/// The filter a request asks for, checked field by field. Operations bound it by what the
/// caller may read and give a read its default window.
fn filter_of(query: &EventQuery) -> Result<Filter, ApiError> {
    let categories = match &query.category {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|c| {
                Category::parse(c.trim()).ok_or_else(|| {
                    ApiError::invalid_data("category: user_activity, debug, terminal or console")
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let to = query
        .to
        .as_deref()
        .map(|t| time_param("to", t))
        .transpose()?;
    let from = query
        .from
        .as_deref()
        .map(|f| time_param("from", f))
        .transpose()?;
    if let Some(level) = &query.level
        && !LEVELS.contains(&level.as_str())
    {
        return Err(ApiError::invalid_data(
            "level: trace, debug, info, warn, error or fatal",
        ));
    }
    let text = query
        .q
        .as_ref()
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty());
    if text.as_ref().is_some_and(|q| q.len() > 256) {
        return Err(ApiError::invalid_data("q: at most 256 characters"));
    }
    Ok(Filter {
        from,
        to,
        categories,
        service: short("service", &query.service)?,
        level: query.level.clone(),
        actor_id: short("actor_id", &query.actor_id)?,
        bot_id: short("bot_id", &query.bot_id)?,
        action: short("action", &query.action)?,
        request_id: short("request_id", &query.request_id)?,
        text,
        scope: None,
    })
}

fn encode_cursor(event: &LogEvent) -> String {
    super::encode_cursor(event.ts, &event.id)
}

fn decode_cursor(raw: &str) -> Result<Cursor, ApiError> {
    let (ts, id) = super::decode_cursor(raw)?;
    Ok(Cursor { ts, id })
}

/// Events, newest first (user_activity needs `logs:read`; debug, terminal and console need
/// `logs:read:debug`).
#[utoipa::path(get, path = "/api/v1/logs/events", tag = "logs", security(("bearer" = [])),
    params(EventQuery),
    responses((status = 200, body = Listing<LogEvent>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<EventQuery>,
) -> Result<Json<Listing<LogEvent>>, ApiError> {
    let filter = filter_of(&query)?;
    let cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let limit = clamp_limit(query.limit);
    let items = ops::read::list(&state, &caller, filter, cursor.as_ref(), limit + 1).await?;
    Ok(Json(Listing::from_overfetch(items, limit, encode_cursor)))
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Ndjson,
    Csv,
}

const CSV_HEADER: &str = "id,time,category,service,level,actor_id,actor_name,actor_service,\
bot_id,team,action,request_id,message,data\n";

fn csv_line(event: &LogEvent) -> String {
    let time = platform::time_fmt::rfc3339_from_millis(event.ts);
    let cells = [
        event.id.as_str(),
        &time,
        event.category.as_str(),
        &event.service,
        &event.level,
        event.actor_id.as_deref().unwrap_or(""),
        event.actor_name.as_deref().unwrap_or(""),
        event.actor_service.as_deref().unwrap_or(""),
        event.bot_id.as_deref().unwrap_or(""),
        event.team.as_deref().unwrap_or(""),
        event.action.as_deref().unwrap_or(""),
        event.request_id.as_deref().unwrap_or(""),
        &event.message,
        &event.data.to_string(),
    ];
    platform::http::csv::line(cells)
}

/// The last line of every export: that it is complete and how many events it holds, or that
/// it failed part-way (`failed`: the request id to quote). A download without it was cut off.
fn end_marker(format: Format, events: u64, failed: Option<&str>) -> bytes::Bytes {
    let line = match (format, failed) {
        (Format::Ndjson, None) => format!("{}\n", json!({"export": "complete", "events": events})),
        (Format::Ndjson, Some(request_id)) => format!(
            "{}\n",
            json!({"export": "failed", "events": events, "error_code": "INTERNAL_ERROR",
                   "message": "the export stopped part-way; ask again", "request_id": request_id})
        ),
        (Format::Csv, None) => format!("\"#end\",\"complete\",\"{events} events\"\n"),
        (Format::Csv, Some(request_id)) => format!(
            "\"#end\",\"failed\",\"{events} events; the export stopped part-way (request {request_id})\"\n"
        ),
    };
    bytes::Bytes::from(line)
}

fn encode_page(format: Format, events: &[LogEvent]) -> bytes::Bytes {
    let mut chunk = String::new();
    for event in events {
        match format {
            Format::Ndjson => {
                chunk.push_str(&serde_json::to_string(event).unwrap_or_default());
                chunk.push('\n');
            }
            Format::Csv => chunk.push_str(&csv_line(event)),
        }
    }
    bytes::Bytes::from(chunk)
}

/// Every event the filter covers, streamed page by page as NDJSON or CSV, ending with a
/// line that says whether the export is complete.
#[utoipa::path(get, path = "/api/v1/logs/export", tag = "logs", security(("bearer" = [])),
    params(EventQuery),
    responses((status = 200, description = "NDJSON (application/x-ndjson) or CSV (text/csv)"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<EventQuery>,
) -> Result<Response, ApiError> {
    let format = match query.format.as_deref() {
        None | Some("ndjson") => Format::Ndjson,
        Some("csv") => Format::Csv,
        Some(_) => return Err(ApiError::invalid_data("format: ndjson or csv")),
    };
    let pages = ops::read::export(state, &caller, filter_of(&query)?)?;
    let first = (format == Format::Csv).then(|| bytes::Bytes::from(CSV_HEADER));
    let request_id = current_request_id();
    let pages = futures::stream::unfold(Some((Box::pin(pages), 0u64)), move |progress| {
        let request_id = request_id.clone();
        async move {
            let (mut pages, sent) = progress?;
            match pages.next().await {
                None => Some((end_marker(format, sent, None), None)),
                Some(Ok(events)) => {
                    let sent = sent + events.len() as u64;
                    Some((encode_page(format, &events), Some((pages, sent))))
                }
                Some(Err(err)) => {
                    // The status line has gone out: the last line says the export
                    // failed (the cause goes to the log), and the stream ends cleanly.
                    tracing::error!(error = %format!("{err:#}"), "export stopped");
                    Some((end_marker(format, sent, request_id.as_deref()), None))
                }
            }
        }
    })
    .map(Ok::<_, std::io::Error>);
    let stream = futures::stream::iter(first.map(Ok)).chain(pages);
    let (content_type, file) = match format {
        Format::Ndjson => ("application/x-ndjson", "logs.ndjson"),
        Format::Csv => ("text/csv; charset=utf-8", "logs.csv"),
    };
    Ok((
        [
            (CONTENT_TYPE, content_type.to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeleteResponse {
    /// Always `deleted`.
    pub status: &'static str,
    pub deleted: u64,
}

/// Delete every event a filter covers (`logs:delete`, and read access to the categories),
/// e.g. all events of one user. The window is optional here; at least one filter is required.
#[utoipa::path(post, path = "/api/v1/logs/delete", tag = "logs", security(("bearer" = [])),
    request_body = EventQuery,
    responses((status = 200, body = DeleteResponse), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Json(query): Json<EventQuery>,
) -> Result<Json<DeleteResponse>, ApiError> {
    if query.limit.is_some() || query.cursor.is_some() || query.format.is_some() {
        return Err(ApiError::invalid_data(
            "a delete takes filters only (no limit, cursor or format)",
        ));
    }
    let deleted = ops::read::delete(&state, &caller, filter_of(&query)?).await?;
    Ok(Json(DeleteResponse {
        status: "deleted",
        deleted,
    }))
}

/// How much each category holds, how fast it grows and how long its byte budget lasts at
/// that rate. Admins only: it covers every team's events.
#[utoipa::path(get, path = "/api/v1/logs/space", tag = "logs", security(("bearer" = [])),
    responses((status = 200, body = ops::space::SpaceReport), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn space(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ops::space::SpaceReport>, ApiError> {
    Ok(Json(ops::space::report(&state, &caller).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_ends_with_a_line_saying_whether_it_is_complete() {
        let complete = end_marker(Format::Ndjson, 3, None);
        let line: Value = serde_json::from_slice(&complete).unwrap();
        assert_eq!(line, json!({"export": "complete", "events": 3}));
        let failed = end_marker(Format::Ndjson, 1000, Some("req-1"));
        let line: Value = serde_json::from_slice(&failed).unwrap();
        assert_eq!(line["export"], "failed");
        assert_eq!(line["request_id"], "req-1");
        assert_eq!(
            end_marker(Format::Csv, 2, None),
            bytes::Bytes::from("\"#end\",\"complete\",\"2 events\"\n")
        );
    }
}
