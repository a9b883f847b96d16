//! Bulk import and export of posts over HTTP, as JSON (`{"posts":[…]}`) or CSV (a header row
//! of the same names): `ops::imports` checks and writes; export answers the calendar's posts
//! in the import's format, so an export imports again.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, ErrorCode, Json, Query};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::posts::{CalendarFilter, calendar_page};
use crate::model::ReplySettings;
use crate::ops;
use crate::ops::imports::{ImportReport, ImportRow, MAX_ROWS};
use crate::store::posts::PostRow;

/// The CSV columns, in order; JSON rows use the same names.
const COLUMNS: [&str; 7] = [
    "bot_id",
    "text",
    "run_at",
    "media_ids",
    "reply_to_x_post_id",
    "quote_x_post_id",
    "reply_settings",
];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"posts": [{"bot_id": "0193f7a4-5a1e-7c4e-9a51-8f2d6b1c0e11", "text": "Good morning! #weather", "run_at": "2027-01-15T07:00:00Z"}, {"bot_id": "0193f7a4-5a1e-7c4e-9a51-8f2d6b1c0e11", "text": "A draft for later"}]}))]
pub struct ImportBody {
    pub posts: Vec<ImportRow>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// Check every row and write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

impl ImportParams {
    /// A dry run's report is 200; an import that wrote is 201.
    pub(super) fn status(&self) -> StatusCode {
        if self.dry_run {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        }
    }
}

/// Whether an export's `format` asks for CSV (`json`, the default, or `csv`).
pub(super) fn wants_csv(format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::invalid_data(format!(
            "format {other:?}: json or csv"
        ))),
    }
}

pub(super) fn is_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/csv"))
}

/// The export's spreadsheet guard (`'` before a cell that would start a formula) comes off.
pub(super) fn unguard(cell: &str) -> String {
    match cell.strip_prefix('\'') {
        Some(rest)
            if rest
                .trim_start_matches(' ')
                .starts_with(['=', '+', '-', '@']) =>
        {
            rest.to_string()
        }
        _ => cell.to_string(),
    }
}

pub(super) fn optional(cell: Option<&str>) -> Option<String> {
    cell.map(unguard).filter(|v| !v.is_empty())
}

/// One CSV record as a row; `number` names it in errors.
fn csv_row(
    record: &csv::StringRecord,
    at: &[usize; 7],
    number: usize,
) -> Result<ImportRow, ApiError> {
    let cell = |i: usize| record.get(at[i]);
    let reply_settings = optional(cell(6))
        .map(|raw| {
            serde_json::from_value::<ReplySettings>(serde_json::Value::String(raw.clone())).map_err(
                |_| {
                    ApiError::invalid_data(format!(
                        "row {number}: reply_settings {raw:?} is not one of X's"
                    ))
                },
            )
        })
        .transpose()?;
    Ok(ImportRow {
        bot_id: cell(0).map(unguard).unwrap_or_default(),
        text: cell(1).map(unguard).unwrap_or_default(),
        run_at: optional(cell(2)),
        media_ids: cell(3)
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect(),
        reply_to_x_post_id: optional(cell(4)),
        quote_x_post_id: optional(cell(5)),
        reply_settings,
    })
}

/// What a CSV import reads: its columns, the ones it cannot do without, and its most rows.
pub(super) struct CsvTable<'a, const N: usize> {
    pub columns: [&'a str; N],
    /// Indexes into `columns`.
    pub required: &'a [usize],
    pub max_rows: usize,
    /// What the rows are, for the error on too many (`posts`, `bots`).
    pub what: &'a str,
}

/// A CSV body with a header row naming the table's columns (any order), each record made a
/// row by `row` (given where each column is, and the row's number from 1).
pub(super) fn read_csv<T, const N: usize>(
    body: &[u8],
    table: &CsvTable<'_, N>,
    row: impl Fn(&csv::StringRecord, &[usize; N], usize) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| ApiError::invalid_data(format!("CSV header: {e}")))?
        .clone();
    if let Some(unknown) = headers.iter().find(|h| !table.columns.contains(h)) {
        return Err(ApiError::invalid_data(format!(
            "CSV header: unknown column {unknown:?}; the columns are {}",
            table.columns.join(", ")
        )));
    }
    let at = table
        .columns
        .map(|name| headers.iter().position(|h| h == name).unwrap_or(usize::MAX));
    if table.required.iter().any(|i| at[*i] == usize::MAX) {
        let names: Vec<&str> = table.required.iter().map(|i| table.columns[*i]).collect();
        return Err(ApiError::invalid_data(format!(
            "CSV header: {} required",
            names.join(" and ")
        )));
    }
    let too_many =
        || ApiError::invalid_data(format!("rows: 1 to {} {}", table.max_rows, table.what));
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        if rows.len() >= table.max_rows {
            return Err(too_many());
        }
        let record =
            record.map_err(|e| ApiError::invalid_data(format!("row {}: {e}", index + 1)))?;
        rows.push(row(&record, &at, index + 1)?);
    }
    Ok(rows)
}

/// A JSON body, malformed JSON and a wrong shape each in the standard error shape.
pub(super) fn read_json<B: serde::de::DeserializeOwned>(body: &[u8]) -> Result<B, ApiError> {
    serde_json::from_slice::<B>(body).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            ErrorCode::MalformedJson
        } else {
            ErrorCode::InvalidData
        };
        ApiError::new(code, format!("body: {e}"))
    })
}

const TABLE: CsvTable<'static, 7> = CsvTable {
    columns: COLUMNS,
    required: &[0, 1],
    max_rows: MAX_ROWS,
    what: "posts",
};

/// CSV with a header row naming the columns (`bot_id` and `text` at least; any order).
fn parse_csv(body: &[u8]) -> Result<Vec<ImportRow>, ApiError> {
    read_csv(body, &TABLE, csv_row)
}

fn parse_json(body: &[u8]) -> Result<Vec<ImportRow>, ApiError> {
    read_json::<ImportBody>(body).map(|b| b.posts)
}

/// Import posts all or nothing, from JSON or CSV (`content-type: text/csv`, a header row).
/// With `dry_run=true` every row is checked and nothing written; an import with a bad row
/// writes nothing and answers 422 with every bad row in `errors`.
#[utoipa::path(post, path = "/api/v1/bots/posts/import", operation_id = "import_posts", tag = "posts", security(("bearer" = [])),
    params(ImportParams), request_body(content((ImportBody = "application/json"), (String = "text/csv"))),
    responses((status = 200, body = ImportReport, description = "A dry run's report"),
        (status = 201, body = ImportReport, description = "Imported"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ImportParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    let rows = if is_csv(&headers) {
        parse_csv(&body)?
    } else {
        parse_json(&body)?
    };
    let report = ops::imports::import(&state, &caller, rows, params.dry_run).await?;
    Ok((params.status(), Json(report)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// One state or several, comma-separated.
    pub state: Option<String>,
    pub team: Option<String>,
    pub bot_id: Option<String>,
    pub cursor: Option<String>,
}

fn export_row(post: PostRow) -> ImportRow {
    ImportRow {
        bot_id: post.bot_id,
        text: post.text,
        run_at: post.run_at.map(platform::time_fmt::rfc3339_from_millis),
        media_ids: post.media_ids,
        reply_to_x_post_id: post.options.reply_to_x_post_id,
        quote_x_post_id: post.options.quote_x_post_id,
        reply_settings: post.options.reply_settings,
    }
}

fn csv_of(rows: &[ImportRow]) -> String {
    let mut text = platform::http::csv::line(COLUMNS);
    for row in rows {
        let media = row.media_ids.join(" ");
        let settings = row
            .reply_settings
            .map(|s| {
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
            })
            .unwrap_or_default()
            .unwrap_or_default();
        text.push_str(&platform::http::csv::line([
            row.bot_id.as_str(),
            row.text.as_str(),
            row.run_at.as_deref().unwrap_or(""),
            media.as_str(),
            row.reply_to_x_post_id.as_deref().unwrap_or(""),
            row.quote_x_post_id.as_deref().unwrap_or(""),
            settings.as_str(),
        ]));
    }
    text
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportBody {
    pub posts: Vec<ImportRow>,
}

/// Export posts across the bots the caller reaches (the calendar's filters), in the import's
/// format, up to 10,000 per answer; `x-next-cursor` continues.
#[utoipa::path(get, path = "/api/v1/bots/posts/export", operation_id = "export_posts", tag = "posts", security(("bearer" = [])),
    params(ExportParams),
    responses((status = 200, body = ExportBody, description = "JSON, or CSV (text/csv) with format=csv"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let as_csv = wants_csv(params.format.as_deref())?;
    let filter = CalendarFilter {
        from: params.from,
        to: params.to,
        state: params.state,
        team: params.team,
        bot_id: params.bot_id,
        cursor: params.cursor,
    };
    let (found, next) = calendar_page(&state, &caller, filter, MAX_ROWS as i64).await?;
    let rows: Vec<ImportRow> = found.into_iter().map(export_row).collect();
    let mut response = if as_csv {
        (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            csv_of(&rows),
        )
            .into_response()
    } else {
        Json(ExportBody { posts: rows }).into_response()
    };
    if let Some(next) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert("x-next-cursor", next);
    }
    Ok(response)
}
