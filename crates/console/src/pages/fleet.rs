//! The fleet: every bot the person reaches, filtered and paged as the API pages (by key), with
//! each bot's last and next post, recent failures, rate room and credentials; and actions on
//! many bots at once — the rows ticked, or every bot the filter matches — through the API's
//! batch route, which makes each bot's change as that bot's own request would (allowed,
//! refused and audited the same) and records the batch once, naming the person.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::layout::{csrf_field, page};
use super::posts::local_time;
use super::{Console, FormFields, Person, text};
use crate::api::{ApiFailure, segment, with_query};

/// Rows on one page of the fleet.
const PAGE_SIZE: &str = "50";
/// Bots one batch reaches at most (ticked, or every bot matching); a larger fleet narrows
/// its filter.
const MAX_BATCH: usize = 5_000;

/// The fleet's filters, as the page's query string and the batch form carry them.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub team: String,
    #[serde(default)]
    pub handle: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub cursor: String,
}

impl Filter {
    fn from_form(form: &FormFields) -> Self {
        Self {
            status: form.value("status").to_string(),
            team: form.value("team").to_string(),
            handle: form.value("handle").to_string(),
            q: form.value("q").to_string(),
            cursor: String::new(),
        }
    }

    /// The API's listing for this filter, from `cursor`.
    fn api_path(&self, cursor: &str, limit: &str) -> String {
        with_query(
            "/api/v1/bots",
            &[
                ("status", &self.status),
                ("team", &self.team),
                ("handle", &self.handle),
                ("q", &self.q),
                ("limit", limit),
                ("cursor", cursor),
            ],
        )
    }

    /// This page's own address with another cursor.
    fn page_path(&self, cursor: &str) -> String {
        with_query(
            "/console/bots",
            &[
                ("status", &self.status),
                ("team", &self.team),
                ("handle", &self.handle),
                ("q", &self.q),
                ("cursor", cursor),
            ],
        )
    }
}

const STATUSES: [&str; 5] = ["active", "paused", "needs_reauth", "suspended", "archived"];

fn filter_form(filter: &Filter) -> Markup {
    html! {
        form.panel method="get" action="/console/bots" role="search" aria-label="Filter bots" {
            div.filters {
                div {
                    label for="f-status" { "Status" }
                    select #f-status name="status" {
                        option value="" selected[filter.status.is_empty()] { "Any" }
                        @for status in STATUSES {
                            option value=(status) selected[filter.status == status] { (status) }
                        }
                    }
                }
                div {
                    label for="f-team" { "Team" }
                    input #f-team type="text" name="team" value=(filter.team);
                }
                div {
                    label for="f-handle" { "X handle" }
                    input #f-handle type="text" name="handle" value=(filter.handle);
                }
                div {
                    label for="f-q" { "Text" }
                    input #f-q type="search" name="q" value=(filter.q);
                }
                div { button type="submit" { "Filter" } }
            }
        }
    }
}

fn bot_row(bot: &Value, summary: Option<&Value>) -> Markup {
    let id = text(bot, "bot_id");
    let status = text(bot, "status");
    html! {
        tr {
            td {
                input type="checkbox" name="bot_id" value=(id) id={"pick-" (id)}
                    aria-label={"Select " (text(bot, "name"))};
            }
            td { a href={"/console/bots/" (segment(id))} { (text(bot, "name")) } }
            td { @if let Some(handle) = bot["x_handle"].as_str() { "@" (handle) } }
            td { span class={"status status-" (status)} { (status) }
                @if let Some(reason) = bot["status_reason"].as_str() {
                    br; span.muted { (reason) }
                }
            }
            td.optional { (text(bot, "team")) }
            td.optional { (text(bot, "owner_id")) }
            @if let Some(summary) = summary {
                (summary_cells(bot, summary))
            } @else {
                td.optional colspan="5" { span.muted { "not known" } }
            }
        }
    }
}

/// Last and next post (in the bot's zone), failures in 24 h, the rate window running lowest
/// and the credentials' state.
fn summary_cells(bot: &Value, summary: &Value) -> Markup {
    let zone = text(bot, "time_zone");
    let at = |field: &str| summary[field].as_str().map(|at| local_time(at, zone));
    let failed = summary["failed_24h"].as_i64().unwrap_or(0);
    let window = &summary["lowest_rate_window"];
    let credentials = text(summary, "credentials");
    html! {
        td.optional { (at("last_published_at").unwrap_or_default()) }
        td.optional { (at("next_run_at").unwrap_or_default()) }
        td.optional.failed[failed > 0] { (failed) }
        td.optional {
            @if window.is_object() {
                span.over { (window["remaining"]) " of " (window["limit"]) " left" }
                br; span.muted { (text(window, "endpoint")) ", until " (local_time(text(window, "reset_at"), zone)) }
            } @else {
                span.muted { "room" }
            }
        }
        td.optional {
            @match credentials {
                "ok" => { "working" },
                "needs_reauth" => { span.over { "needs new credentials" } },
                other => { (other) },
            }
        }
    }
}

fn fleet_table(bots: &[Value], summaries: &HashMap<String, Value>) -> Markup {
    html! {
        div.table-wrap {
            table {
                caption.muted { "Bots you reach, in id order" }
                thead { tr {
                    th scope="col" {
                        input type="checkbox" data-select-all aria-label="Select every row on this page";
                    }
                    th scope="col" { "Name" }
                    th scope="col" { "X handle" }
                    th scope="col" { "Status" }
                    th.optional scope="col" { "Team" }
                    th.optional scope="col" { "Owner" }
                    th.optional scope="col" { "Last post" }
                    th.optional scope="col" { "Next post" }
                    th.optional scope="col" { "Failed (24 h)" }
                    th.optional scope="col" { "Rate limit" }
                    th.optional scope="col" { "Credentials" }
                } }
                tbody {
                    @for bot in bots { (bot_row(bot, summaries.get(text(bot, "bot_id")))) }
                }
            }
        }
    }
}

/// The summaries of a page of bots, by id; empty (the table says "not known") when the
/// API cannot say, since the list itself is what the page is for.
async fn summaries_of(
    console: &Console,
    person: &Person,
    bots: &[Value],
) -> HashMap<String, Value> {
    if bots.is_empty() {
        return HashMap::new();
    }
    let ids: Vec<&str> = bots.iter().map(|bot| text(bot, "bot_id")).collect();
    let path = with_query("/api/v1/bots/summaries", &[("ids", &ids.join(","))]);
    let Ok(answer) = console.api.get(&person.api, &path).await else {
        return HashMap::new();
    };
    answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|summary| (text(summary, "bot_id").to_string(), summary.clone()))
        .collect()
}

fn batch_buttons() -> Markup {
    html! {
        div.actions {
            button type="submit" name="action" value="pause-selected" { "Pause selected" }
            button type="submit" name="action" value="resume-selected" { "Resume selected" }
            button.secondary type="submit" name="action" value="retry-selected"
                data-confirm="Send every failed post of the selected bots again?" { "Retry their failed posts" }
            button.secondary type="submit" name="action" value="cancel-selected"
                data-confirm="Cancel every scheduled post of the selected bots?" { "Cancel their scheduled posts" }
        }
        div.actions {
            button.secondary type="submit" name="action" value="pause-matching"
                data-confirm="Pause every bot this filter matches?" { "Pause every bot matching the filter" }
            button.secondary type="submit" name="action" value="resume-matching"
                data-confirm="Resume every bot this filter matches?" { "Resume every bot matching the filter" }
            button.secondary type="submit" name="action" value="retry-matching"
                data-confirm="Send every failed post of every bot this filter matches again?" { "Retry failed posts of every bot matching" }
            button.secondary type="submit" name="action" value="cancel-matching"
                data-confirm="Cancel every scheduled post of every bot this filter matches?" { "Cancel scheduled posts of every bot matching" }
        }
    }
}

/// `GET /console/bots`.
pub async fn show(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Response {
    let person = match console.person(&headers).await {
        Ok(person) => person,
        Err(to_sign_in) => return to_sign_in,
    };
    let listing_path = filter.api_path(&filter.cursor, PAGE_SIZE);
    let (listing, notes) = tokio::join!(
        console.api.get(&person.api, &listing_path),
        super::system::attention(&console, &person)
    );
    let listing = match listing {
        Ok(listing) => listing,
        Err(failure) => return console.failure_page(Some(&person), &failure),
    };
    let bots = listing["items"].as_array().cloned().unwrap_or_default();
    let next = listing["next_cursor"].as_str();
    let summaries = summaries_of(&console, &person, &bots).await;
    let body = html! {
        h1 { "Fleet" }
        (super::system::banner(&notes))
        (filter_form(&filter))
        form method="post" action="/console/bots/batch" {
            (csrf_field(&person.csrf))
            input type="hidden" name="status" value=(filter.status);
            input type="hidden" name="team" value=(filter.team);
            input type="hidden" name="handle" value=(filter.handle);
            input type="hidden" name="q" value=(filter.q);
            @if bots.is_empty() {
                p.notice { "No bot you reach matches this filter." }
            } @else {
                (batch_buttons())
                (fleet_table(&bots, &summaries))
            }
        }
        nav.actions aria-label="Pages" {
            @if !filter.cursor.is_empty() {
                a href=(filter.page_path("")) { "First page" }
            }
            @if let Some(next) = next {
                a href=(filter.page_path(next)) rel="next" { "Next page" }
            }
        }
    };
    page("Fleet", Some(&person), body).into_response()
}

/// What a batch does to each bot (the API's batch action), and to which bots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Batch {
    action: &'static str,
    matching: bool,
}

impl Batch {
    /// A button's value: `<what>-selected` or `<what>-matching`.
    fn parse(value: &str) -> Option<Self> {
        let (what, scope) = value.split_once('-')?;
        let action = match what {
            "pause" => "pause",
            "resume" => "resume",
            "retry" => "retry_failed",
            "cancel" => "cancel_scheduled",
            _ => return None,
        };
        let matching = match scope {
            "selected" => false,
            "matching" => true,
            _ => return None,
        };
        Some(Self { action, matching })
    }

    /// The summary's end: "10 bots now paused.", "3 bots done: 5 failed posts sent again."
    fn done(self, bots: usize, changes: i64) -> String {
        match self.action {
            "pause" => format!("{bots} bots now paused."),
            "resume" => format!("{bots} bots now active."),
            "retry_failed" => format!("{bots} bots done: {changes} failed posts sent again."),
            _ => format!("{bots} bots done: {changes} scheduled posts cancelled."),
        }
    }

    /// What a bot's line says when the action went through for it.
    fn done_for_one(self, item: &Value) -> String {
        let changed = item["changed"].as_i64().unwrap_or(0);
        let skipped = item["skipped"].as_i64().unwrap_or(0);
        let left = if skipped > 0 {
            format!(", {skipped} had moved on")
        } else {
            String::new()
        };
        match self.action {
            "pause" => "paused".to_string(),
            "resume" => "active".to_string(),
            "retry_failed" => format!("{changed} sent again{left}"),
            _ => format!("{changed} cancelled{left}"),
        }
    }
}

/// Every bot id the filter matches, page by page, up to [`MAX_BATCH`].
async fn matching_ids(
    console: &Console,
    person: &Person,
    filter: &Filter,
) -> Result<Vec<String>, ApiFailure> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let listing = console
            .api
            .get(&person.api, &filter.api_path(&cursor, "500"))
            .await?;
        let items = listing["items"].as_array().cloned().unwrap_or_default();
        ids.extend(items.iter().map(|bot| text(bot, "bot_id").to_string()));
        match listing["next_cursor"].as_str() {
            Some(next) if ids.len() < MAX_BATCH => cursor = next.to_string(),
            _ => break,
        }
    }
    ids.truncate(MAX_BATCH);
    Ok(ids)
}

/// The API's batch answer as a summary and a line per bot.
fn outcome_list(batch: Batch, answer: &Value) -> Markup {
    let items = answer["items"].as_array().cloned().unwrap_or_default();
    let refused = items.iter().filter(|item| item["ok"] != true).count();
    let changes: i64 = items
        .iter()
        .filter_map(|item| item["changed"].as_i64())
        .sum();
    html! {
        p.notice role="status" {
            (items.len() - refused) " of " (batch.done(items.len(), changes))
            @if refused > 0 { " " (refused) " refused (below)." }
        }
        ul.results {
            @for item in &items {
                @let bot_id = text(item, "bot_id");
                @if item["ok"] == true {
                    li { a href={"/console/bots/" (segment(bot_id))} { (bot_id) } ": " (batch.done_for_one(item)) }
                } @else {
                    li.failed { a href={"/console/bots/" (segment(bot_id))} { (bot_id) } ": " (text(item, "message")) }
                }
            }
        }
    }
}

/// `POST /console/bots/batch`: pause or resume the ticked bots, or every bot the filter
/// matches; answers with each bot's result.
pub async fn batch(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let filter = Filter::from_form(&form);
    let problem = |message: &str| {
        let body = html! {
            h1 { "Nothing was changed" }
            div.notice.error role="alert" { (message) }
            p { a href=(filter.page_path("")) { "Back to the fleet" } }
        };
        (
            StatusCode::BAD_REQUEST,
            page("Nothing was changed", Some(&person), body),
        )
            .into_response()
    };
    let Some(batch) = Batch::parse(form.value("action")) else {
        return problem(
            "Choose an action: pause, resume, retry failed posts or cancel scheduled ones.",
        );
    };
    let ids: Vec<String> = if batch.matching {
        match matching_ids(&console, &person, &filter).await {
            Ok(ids) => ids,
            Err(failure) => return console.failure_page(Some(&person), &failure),
        }
    } else {
        form.values("bot_id")
            .into_iter()
            .take(MAX_BATCH)
            .map(String::from)
            .collect()
    };
    if ids.is_empty() {
        return problem("No bot was selected.");
    }
    // One request: the API runs each bot's change as its own and records the batch once.
    let request = json!({"action": batch.action, "bot_ids": ids});
    let answer = match console
        .api
        .post(&person.api, "/api/v1/bots/batch", &request)
        .await
    {
        Ok(answer) => answer,
        Err(failure) => return console.failure_page(Some(&person), &failure),
    };
    let body = html! {
        h1 { "Batch result" }
        (outcome_list(batch, &answer))
        p { a href=(filter.page_path("")) { "Back to the fleet" } }
    };
    page("Batch result", Some(&person), body).into_response()
}
