//! Settings: a service's declared central settings with their effective values and where
//! each comes from (the service's own scope, the global scope, or the files and defaults
//! the process started with); an edit with the Configuration service's own validation
//! message beside the setting it refused; the service's releases with their diffs, and a
//! rollback to any of them.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::layout::{csrf_field, page};
use super::{Console, FormFields, Person, see_other, text};
use crate::api::{ApiFailure, segment, with_query};

#[derive(Debug, Default, Deserialize)]
pub struct SettingsQuery {
    #[serde(default)]
    service: String,
}

/// What the page shows of one service.
struct ServiceSettings {
    service: String,
    services: Vec<String>,
    /// The declared settings of the service's section.
    specs: Vec<Value>,
    effective: Value,
    own: Value,
    global: Value,
    releases: Vec<Value>,
}

/// The section a service's settings live under (`bot-manager` → `bot_manager.`).
fn section_prefix(service: &str) -> String {
    format!("{}.", service.replace('-', "_"))
}

async fn load(
    console: &Console,
    person: &Person,
    service: &str,
) -> Result<ServiceSettings, ApiFailure> {
    let token = &person.api;
    let catalog = console.api.get(token, "/api/v1/config/catalog").await?;
    let services: Vec<String> = catalog["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    let service = if services.iter().any(|s| s == service) {
        service.to_string()
    } else {
        services.first().cloned().unwrap_or_default()
    };
    let prefix = section_prefix(&service);
    let specs: Vec<Value> = catalog["settings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|spec| text(spec, "key").starts_with(&prefix))
        .cloned()
        .collect();
    let effective_path = with_query("/api/v1/config/settings", &[("service_name", &service)]);
    let own_path = format!("/api/v1/config/scopes/{}", segment(&service));
    let history_path = with_query(
        "/api/v1/config/releases",
        &[("scope", &service), ("limit", "20")],
    );
    let (effective, own, global, history) = tokio::join!(
        console.api.get(token, &effective_path),
        console.api.get(token, &own_path),
        console.api.get(token, "/api/v1/config/scopes/global"),
        console.api.get(token, &history_path)
    );
    Ok(ServiceSettings {
        service,
        services,
        specs,
        effective: effective?,
        own: own?,
        global: global?,
        releases: history?["releases"].as_array().cloned().unwrap_or_default(),
    })
}

impl ServiceSettings {
    fn origin(&self, key: &str) -> &'static str {
        if self.own["settings"].get(key).is_some() {
            "this service's central settings"
        } else if self.global["settings"].get(key).is_some() {
            "global central settings"
        } else {
            "the files and defaults the service started with"
        }
    }
}

/// The value field of a setting, by its declared kind.
fn value_input(spec: &Value, id: &str, current: &Value) -> Markup {
    let shown = match current {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match text(spec, "type") {
        "bool" => html! {
            select #(id) name="value" {
                option value="" selected[current.is_null()] { "(default)" }
                option value="true" selected[*current == Value::Bool(true)] { "true" }
                option value="false" selected[*current == Value::Bool(false)] { "false" }
            }
        },
        "one_of" => html! {
            select #(id) name="value" {
                option value="" selected[current.is_null()] { "(default)" }
                @for word in spec["values"].as_array().into_iter().flatten() {
                    @let word = word.as_str().unwrap_or("");
                    option value=(word) selected[shown == word] { (word) }
                }
            }
        },
        "integer" => html! {
            input #(id) type="number" name="value" value=(shown)
                min=(spec["min"]) max=(spec["max"]);
        },
        _ => html! { input #(id) type="text" name="value" value=(shown); },
    }
}

/// The value a form sent, as the setting's kind reads it; empty removes the central value.
fn typed_value(kind: &str, raw: &str) -> Result<Value, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    match kind {
        "bool" => match raw {
            "true" => Ok(json!(true)),
            "false" => Ok(json!(false)),
            _ => Err("must be true or false".into()),
        },
        "integer" => raw
            .parse::<i64>()
            .map(|n| json!(n))
            .map_err(|_| "must be a whole number".into()),
        _ => Ok(json!(raw)),
    }
}

fn setting_row(
    person: &Person,
    loaded: &ServiceSettings,
    spec: &Value,
    problem: Option<(&str, &str)>,
) -> Markup {
    let key = text(spec, "key");
    let id = format!("s-{}", key.replace('.', "-"));
    let current = loaded.effective["settings"]
        .get(key)
        .cloned()
        .unwrap_or(Value::Null);
    let refused = problem
        .filter(|(k, _)| *k == key)
        .map(|(_, message)| message);
    html! {
        li.panel #{"setting-" (key)} {
            form method="post" action="/console/settings" {
                (csrf_field(&person.csrf))
                input type="hidden" name="service" value=(loaded.service);
                input type="hidden" name="key" value=(key);
                input type="hidden" name="kind" value=(text(spec, "type"));
                label for=(id) { code { (key) } }
                p.muted { (text(spec, "description")) " · "
                    @if spec["live"] == Value::Bool(true) { "applies at once" } @else { "applies at restart" }
                    " · from " (loaded.origin(key)) }
                @if let Some(message) = refused {
                    div.notice.error role="alert" id={(id) "-problem"} { (key) " " (message) }
                }
                (value_input(spec, &id, &current))
                label for={(id) "-reason"} { "Why (for the history)" }
                input #{(id) "-reason"} type="text" name="reason";
                p { button type="submit" { "Save " span.visually-hidden { (key) } } }
            }
        }
    }
}

fn diff_text(diff: &Value) -> Markup {
    let entries = |name: &str| diff[name].as_object().cloned().unwrap_or_default();
    html! {
        ul.diff {
            @for (key, value) in entries("added") { li { "+ " code { (key) } " = " (value) } }
            @for (key, change) in entries("changed") { li { "~ " code { (key) } ": " (change["from"]) " → " (change["to"]) } }
            @for (key, value) in entries("removed") { li { "− " code { (key) } " (was " (value) ")" } }
        }
    }
}

fn history(person: &Person, loaded: &ServiceSettings) -> Markup {
    html! {
        section.panel aria-labelledby="history" {
            h2 #history { "History of " (loaded.service) }
            @if loaded.releases.is_empty() { p.muted { "No central change yet." } }
            ol.releases reversed {
                @for release in &loaded.releases {
                    li {
                        strong { "Release " (release["revision"]) } " · " (text(release, "kind"))
                        " · " (text(release, "created_at")) " · by " (text(release, "author"))
                        @if !text(release, "reason").is_empty() { " · “" (text(release, "reason")) "”" }
                        (diff_text(&release["diff"]))
                        form method="post" action="/console/settings/rollback" {
                            (csrf_field(&person.csrf))
                            input type="hidden" name="service" value=(loaded.service);
                            input type="hidden" name="revision" value=(release["revision"]);
                            button.secondary type="submit"
                                data-confirm="Make the settings what this release made them?" {
                                "Restore release " (release["revision"])
                            }
                        }
                    }
                }
            }
        }
    }
}

fn settings_page(
    person: &Person,
    loaded: &ServiceSettings,
    problem: Option<(&str, &str)>,
) -> Markup {
    let body = html! {
        h1 { "Settings" }
        form.panel method="get" action="/console/settings" aria-label="Choose a service" {
            div.filters {
                div {
                    label for="service" { "Service" }
                    select #service name="service" {
                        @for service in &loaded.services {
                            option value=(service) selected[*service == loaded.service] { (service) }
                        }
                    }
                }
                div { button type="submit" { "Show" } }
            }
        }
        p.muted { "Central settings at revision " (loaded.effective["revision"]) " for profile "
            (text(&loaded.effective, "profile")) ". An empty value removes the central one." }
        ul.settings { @for spec in &loaded.specs { (setting_row(person, loaded, spec, problem)) } }
        (history(person, loaded))
    };
    page("Settings", Some(person), body)
}

/// `GET /console/settings`.
pub async fn show(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<SettingsQuery>,
) -> Response {
    let person = match console.person(&headers).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    match load(&console, &person, &query.service).await {
        Ok(loaded) => settings_page(&person, &loaded, None).into_response(),
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}

fn back_to(service: &str) -> Response {
    see_other(&with_query("/console/settings", &[("service", service)]))
}

/// A setting the Configuration service (or the form) refused.
struct Refused<'a> {
    console: &'a Console,
    person: &'a Person,
    service: &'a str,
    key: &'a str,
}

impl Refused<'_> {
    /// The settings page again, with `message` beside the refused setting.
    async fn page(&self, status: StatusCode, message: &str) -> Response {
        match load(self.console, self.person, self.service).await {
            Ok(loaded) => {
                let page = settings_page(self.person, &loaded, Some((self.key, message)));
                (status, page).into_response()
            }
            Err(failure) => self.console.failure_page(Some(self.person), &failure),
        }
    }
}

/// `POST /console/settings`: one setting changed, or the page again with the service's
/// reason beside it.
pub async fn update(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let (service, key) = (form.value("service"), form.value("key"));
    let refused = Refused {
        console: &console,
        person: &person,
        service,
        key,
    };
    let value = match typed_value(form.value("kind"), form.value("value")) {
        Ok(value) => value,
        Err(message) => {
            return refused
                .page(StatusCode::UNPROCESSABLE_ENTITY, &message)
                .await;
        }
    };
    let request = json!({
        "service": service,
        "settings": {key: value},
        "reason": form.value("reason"),
    });
    match console
        .api
        .post(&person.api, "/api/v1/config/update", &request)
        .await
    {
        Ok(_) => back_to(service),
        Err(failure) if failure.is_unauthenticated() => {
            console.failure_page(Some(&person), &failure)
        }
        Err(failure) => {
            // The service names the key in its message; the page shows it beside the setting.
            let message = failure
                .message
                .trim_start_matches(key)
                .trim_start()
                .to_string();
            refused.page(failure.status, &message).await
        }
    }
}

/// `POST /console/settings/rollback`.
pub async fn rollback(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let service = form.value("service");
    let Ok(revision) = form.value("revision").parse::<i64>() else {
        return console.failure_page(
            Some(&person),
            &ApiFailure::refused("Choose a release to restore."),
        );
    };
    let request = json!({
        "revision": revision,
        "service": service,
        "reason": format!("restored release {revision} from the console"),
    });
    match console
        .api
        .post(&person.api, "/api/v1/config/rollback", &request)
        .await
    {
        Ok(_) => back_to(service),
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}
