//! Bulk import and export of bots over HTTP, as JSON (`{"bots":[…]}`) or CSV (a header row of
//! the same names; posting slots as `mon 09:00-17:00 tue 09:00-12:00`): `ops::bot_imports`
//! checks and writes; export answers the bots the caller reaches in the import's format.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json, Query};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::imports::{
    CsvTable, ImportParams, is_csv, optional, read_csv, read_json, unguard, wants_csv,
};
use crate::model::PostingSlot;
use crate::ops;
use crate::ops::bot_imports::{BotImportReport, BotImportRow, MAX_BOTS};
use crate::store::bots::{BotFilter, BotRow};

/// The CSV columns, in order; JSON rows use the same names.
const COLUMNS: [&str; 7] = [
    "bot_name",
    "x_handle",
    "description",
    "operator_account",
    "time_zone",
    "x_app",
    "posting_slots",
];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"bots": [{"bot_name": "Harbour news", "x_handle": "harbour_news", "description": "Ferry times and tides, posted automatically", "operator_account": "ada_operator", "time_zone": "Europe/Berlin", "posting_slots": [{"day": "mon", "start": "07:00", "end": "19:00"}]}, {"bot_name": "Pier weather", "x_handle": "pier_weather"}]}))]
pub struct BotImportBody {
    pub bots: Vec<BotImportRow>,
}

/// `mon 09:00-17:00 tue 09:00-12:00` → slots.
fn parse_slots(cell: &str, number: usize) -> Result<Vec<PostingSlot>, ApiError> {
    let words: Vec<&str> = cell.split_whitespace().collect();
    if !words.len().is_multiple_of(2) {
        return Err(ApiError::invalid_data(format!(
            "row {number}: posting_slots: pairs of a day and a time range, as mon 09:00-17:00"
        )));
    }
    words
        .chunks(2)
        .map(|pair| {
            let (start, end) = pair[1].split_once('-').ok_or_else(|| {
                ApiError::invalid_data(format!(
                    "row {number}: posting_slots: {:?} is not a range such as 09:00-17:00",
                    pair[1]
                ))
            })?;
            Ok(PostingSlot {
                day: pair[0].to_string(),
                start: start.to_string(),
                end: end.to_string(),
            })
        })
        .collect()
}

fn format_slots(slots: &[PostingSlot]) -> String {
    let pairs: Vec<String> = slots
        .iter()
        .map(|s| format!("{} {}-{}", s.day, s.start, s.end))
        .collect();
    pairs.join(" ")
}

fn csv_row(
    record: &csv::StringRecord,
    at: &[usize; 7],
    number: usize,
) -> Result<BotImportRow, ApiError> {
    let cell = |i: usize| record.get(at[i]);
    Ok(BotImportRow {
        bot_name: cell(0).map(unguard).unwrap_or_default(),
        x_handle: optional(cell(1)),
        description: optional(cell(2)),
        operator_account: optional(cell(3)),
        time_zone: optional(cell(4)),
        x_app: optional(cell(5)),
        posting_slots: parse_slots(&cell(6).map(unguard).unwrap_or_default(), number)?,
    })
}

const TABLE: CsvTable<'static, 7> = CsvTable {
    columns: COLUMNS,
    required: &[0],
    max_rows: MAX_BOTS,
    what: "bots",
};

/// CSV with a header row naming the columns (`bot_name` at least; any order).
fn parse_csv(body: &[u8]) -> Result<Vec<BotImportRow>, ApiError> {
    read_csv(body, &TABLE, csv_row)
}

fn parse_json(body: &[u8]) -> Result<Vec<BotImportRow>, ApiError> {
    read_json::<BotImportBody>(body).map(|b| b.bots)
}

/// Import bots all or nothing, from JSON or CSV (`content-type: text/csv`, a header row), for
/// the caller and their team. They hold no credentials: each waits in `needs_reauth` until its
/// X account is connected. With `dry_run=true` every row is checked and nothing written; an
/// import with a bad row writes nothing and answers 422 with every bad row in `errors`.
#[utoipa::path(post, path = "/api/v1/bots/import", operation_id = "import_bots", tag = "bots", security(("bearer" = [])),
    params(ImportParams), request_body(content((BotImportBody = "application/json"), (String = "text/csv"))),
    responses((status = 200, body = BotImportReport, description = "A dry run's report"),
        (status = 201, body = BotImportReport, description = "Imported"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ImportParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<BotImportReport>), ApiError> {
    let rows = if is_csv(&headers) {
        parse_csv(&body)?
    } else {
        parse_json(&body)?
    };
    let report = ops::bot_imports::import(&state, &caller, rows, params.dry_run).await?;
    Ok((params.status(), Json(report)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BotExportParams {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BotExportBody {
    pub bots: Vec<BotImportRow>,
}

fn export_row(bot: BotRow) -> BotImportRow {
    BotImportRow {
        bot_name: bot.name,
        x_handle: bot.x_handle,
        description: Some(bot.description).filter(|d| !d.is_empty()),
        operator_account: bot.operator_account,
        time_zone: Some(bot.time_zone),
        x_app: Some(bot.x_app),
        posting_slots: bot.posting_slots,
    }
}

fn csv_of(rows: &[BotImportRow]) -> String {
    let mut text = platform::http::csv::line(COLUMNS);
    for row in rows {
        let slots = format_slots(&row.posting_slots);
        text.push_str(&platform::http::csv::line([
            row.bot_name.as_str(),
            row.x_handle.as_deref().unwrap_or(""),
            row.description.as_deref().unwrap_or(""),
            row.operator_account.as_deref().unwrap_or(""),
            row.time_zone.as_deref().unwrap_or(""),
            row.x_app.as_deref().unwrap_or(""),
            slots.as_str(),
        ]));
    }
    text
}

/// Export the bots the caller reaches (not archived), up to 10,000, in the import's format
/// (never their credentials).
#[utoipa::path(get, path = "/api/v1/bots/export", operation_id = "export_bots", tag = "bots", security(("bearer" = [])),
    params(BotExportParams),
    responses((status = 200, body = BotExportBody, description = "JSON, or CSV (text/csv) with format=csv"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<BotExportParams>,
) -> Result<Response, ApiError> {
    let as_csv = wants_csv(params.format.as_deref())?;
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = ops::bots::list(
            &state,
            &caller,
            &BotFilter::default(),
            cursor.as_deref(),
            500,
        )
        .await?;
        let last = page.last().map(|b| b.bot_id.clone());
        let full = page.len() == 500;
        rows.extend(
            page.into_iter()
                .filter(|b| b.status != crate::model::BotStatus::Archived)
                .map(export_row),
        );
        if !full || rows.len() >= 10_000 {
            break;
        }
        cursor = last;
    }
    if !as_csv {
        return Ok(Json(BotExportBody { bots: rows }).into_response());
    }
    let mut response = csv_of(&rows).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    Ok(response)
}
