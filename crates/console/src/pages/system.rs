//! The system: every service's health, Secure Bot Data's seal state and key versions, its
//! audit trail (admins, as the API allows), and the banner that says when something needs
//! attention (bots waiting for new credentials, a sealed vault, publishing jobs that gave up
//! or run late); the publishing backlog.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::layout::page;
use super::{Console, Person, text};
use crate::api::{ApiFailure, segment, with_query};

/// The services whose health the page shows, by their API prefix.
const SERVICES: [(&str, &str); 5] = [
    ("Authentication", "/api/v1/auth"),
    ("Bot Manager", "/api/v1/bots"),
    ("Configuration", "/api/v1/config"),
    ("Logging", "/api/v1/logs"),
    ("Secure Bot Data", "/api/v1/botdata"),
];

/// What needs attention now, as far as the person may see: each a sentence and a link.
pub async fn attention(console: &Console, person: &Person) -> Vec<(String, String)> {
    let waiting_path = "/api/v1/bots?status=needs_reauth&limit=500";
    let (waiting, vault, backlog) = tokio::join!(
        console.api.get(&person.api, waiting_path),
        console.api.get(&person.api, "/api/v1/botdata/sys/status"),
        console.api.get(&person.api, "/api/v1/bots/backlog")
    );
    let mut notes = Vec::new();
    if let Ok(waiting) = waiting {
        let count = waiting["items"].as_array().map_or(0, Vec::len);
        let more = if waiting["next_cursor"].is_string() {
            "+"
        } else {
            ""
        };
        if count > 0 {
            notes.push((
                format!("{count}{more} bots need new credentials from X (needs_reauth)."),
                "/console/bots?status=needs_reauth".to_string(),
            ));
        }
    }
    if let Ok(vault) = vault
        && vault["sealed"] == Value::Bool(true)
    {
        notes.push((
            format!(
                "Secure Bot Data is sealed ({}): no bot can post until it is unsealed.",
                text(&vault, "reason")
            ),
            "/console/system".to_string(),
        ));
    }
    if let Ok(backlog) = backlog {
        notes.extend(backlog_notes(&backlog));
    }
    notes
}

/// A job late by more than this is worth a person's look (workers are down or swamped).
const LATE_SECONDS: i64 = 300;

/// What the publishing backlog says needs a person: jobs that gave up, work running late.
fn backlog_notes(backlog: &Value) -> Vec<(String, String)> {
    let mut notes = Vec::new();
    let dead = backlog["dead_24h"].as_i64().unwrap_or(0);
    if dead > 0 {
        notes.push((
            format!(
                "{dead} publishing jobs gave up after their last attempt in the last 24 hours \
                 (dead-lettered): their posts failed; retry them from the fleet."
            ),
            "/console/bots".to_string(),
        ));
    }
    let late = backlog["oldest_due_seconds"].as_i64().unwrap_or(0);
    if late > LATE_SECONDS {
        notes.push((
            format!("Publishing is running late: the oldest due job has waited {late} s."),
            "/console/system#backlog".to_string(),
        ));
    }
    notes
}

fn backlog_section(backlog: &Result<Value, ApiFailure>) -> Markup {
    html! {
        section.panel aria-labelledby="backlog" {
            h2 #backlog { "Publishing backlog" }
            @match backlog {
                Ok(backlog) => dl.facts {
                    dt { "Due now, waiting for a worker" } dd { (backlog["due"]) }
                    dt { "Oldest due job waiting" }
                    dd { @match backlog["oldest_due_seconds"].as_i64() { Some(late) => { (late) " s" }, None => { "none" } } }
                    dt { "Being sent" } dd { (backlog["running"]) }
                    dt { "Scheduled for later" } dd { (backlog["scheduled_later"]) }
                    dt { "Parked (bot paused or needing credentials)" } dd { (backlog["waiting"]) }
                    dt { "Gave up in the last 24 h (dead-lettered)" } dd { (backlog["dead_24h"]) }
                },
                Err(failure) => p.muted { (failure.message) },
            }
            p.muted { "Console version " (env!("CARGO_PKG_VERSION")) "." }
        }
    }
}

/// The banner for `notes` (nothing when there are none).
pub fn banner(notes: &[(String, String)]) -> Markup {
    html! {
        @if !notes.is_empty() {
            div.notice.error role="alert" aria-label="Needs attention" {
                ul { @for (note, link) in notes { li { a href=(link) { (note) } } } }
            }
        }
    }
}

fn health_table(health: &[(&str, Result<Value, ApiFailure>)]) -> Markup {
    html! {
        section.panel aria-labelledby="health" {
            h2 #health { "Services" }
            div.table-wrap { table {
                thead { tr { th scope="col" { "Service" } th scope="col" { "Status" } th.optional scope="col" { "Checks" } } }
                tbody { @for (name, answer) in health {
                    tr {
                        td { (name) }
                        @match answer {
                            Ok(report) => {
                                td { span class={"status status-" (text(report, "status"))} { (text(report, "status")) } }
                                td.optional { (checks_text(&report["checks"])) }
                            }
                            Err(failure) => {
                                td { span.status.status-suspended { "not ready" } }
                                td.optional { (failure.message) }
                            }
                        }
                    }
                } }
            } }
        }
    }
}

fn checks_text(checks: &Value) -> String {
    checks
        .as_object()
        .map(|checks| {
            checks
                .iter()
                .map(|(name, word)| format!("{name}: {}", word.as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn versions(value: &Value) -> String {
    value
        .as_array()
        .map(|v| {
            v.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "none".into())
}

fn vault_section(vault: &Result<Value, ApiFailure>) -> Markup {
    html! {
        section.panel aria-labelledby="vault" {
            h2 #vault { "Secure Bot Data" }
            @match vault {
                Ok(vault) => dl.facts {
                    dt { "Seal" }
                    dd { @if vault["sealed"] == Value::Bool(true) { "sealed (" (text(vault, "reason")) ")" } @else { "unsealed" } }
                    dt { "Key versions loaded" }
                    dd { (versions(&vault["kek_versions"])) }
                    dt { "Version new writes use" }
                    dd { (vault["active_kek_version"]) }
                    dt { "Versions stored data needs but not loaded" }
                    dd { (versions(&vault["missing_kek_versions"])) }
                },
                Err(failure) => p.muted { (failure.message) },
            }
        }
    }
}

fn audit_section(audit: &Result<Value, ApiFailure>, bot_id: &str) -> Markup {
    html! {
        section.panel aria-labelledby="audit" {
            h2 #audit { "Audit trail" }
            form method="get" action="/console/system" role="search" aria-label="Filter the audit trail" {
                div.filters {
                    div { label for="a-bot" { "Bot id" } input #a-bot type="text" name="bot_id" value=(bot_id); }
                    div { button type="submit" { "Filter" } }
                }
            }
            @match audit {
                Ok(listing) => div.table-wrap { table {
                    caption.muted { "Newest first; values appear only as HMACs" }
                    thead { tr {
                        th scope="col" { "When (UTC)" } th scope="col" { "Action" } th scope="col" { "Result" }
                        th.optional scope="col" { "Actor" } th scope="col" { "Bot" } th scope="col" { "Field" }
                    } }
                    tbody { @for entry in listing["items"].as_array().into_iter().flatten() {
                        tr {
                            td { (entry["at"].as_i64().map(platform::time_fmt::rfc3339_from_millis).unwrap_or_default()) }
                            td { (text(entry, "action")) }
                            td { (text(entry, "result")) }
                            td.optional { (text(entry, "actor")) }
                            td { @if let Some(bot) = entry["bot_id"].as_str() { a href={"/console/bots/" (segment(bot))} { (bot) } } }
                            td { (text(entry, "field")) }
                        }
                    } }
                } },
                Err(failure) => p.muted { (failure.message) },
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SystemQuery {
    #[serde(default)]
    bot_id: String,
}

/// `GET /console/system`.
pub async fn show(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<SystemQuery>,
) -> Response {
    let person = match console.person(&headers).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let health = futures::future::join_all(SERVICES.iter().map(|(name, prefix)| {
        let path = format!("{prefix}/health");
        let (console, person) = (&console, &person);
        async move { (*name, console.api.get(&person.api, &path).await) }
    }))
    .await;
    let audit_path = with_query(
        "/api/v1/botdata/audit",
        &[("bot_id", &query.bot_id), ("limit", "50")],
    );
    let (vault, audit, backlog, notes) = tokio::join!(
        console.api.get(&person.api, "/api/v1/botdata/sys/status"),
        console.api.get(&person.api, &audit_path),
        console.api.get(&person.api, "/api/v1/bots/backlog"),
        attention(&console, &person)
    );
    let body = html! {
        h1 { "System" }
        (banner(&notes))
        (health_table(&health))
        (backlog_section(&backlog))
        (vault_section(&vault))
        (audit_section(&audit, &query.bot_id))
    };
    page("System", Some(&person), body).into_response()
}
