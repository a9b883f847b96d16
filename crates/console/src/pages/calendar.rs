//! The calendar: the posts of every bot a person reaches, a week or a month at a time, in a
//! zone the person picks (UTC unless they pick another); filtered by team or bot; a composer
//! for any of those bots; reschedule and cancel on each post; states kept current without a
//! reload. Every read and change is the API's calendar and post routes, as the person.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::layout::{csrf_field, page};
use super::posts::{follow, instant_in_zone, submit};
use super::{Console, FormFields, Person, see_other, text};
use crate::api::{ApiFailure, segment, with_query};

/// Posts one calendar view shows at most (one page of the API); past it, the page asks for a
/// narrower filter. A view of more is not a plan anyone reads.
const MAX_SHOWN: usize = 500;
/// Bots the bot filter and the composer offer at most.
const MAX_BOTS: usize = 2_000;
/// A post's text as the calendar shows it, in characters.
const SNIPPET: usize = 80;
/// States in which a post may still be moved or cancelled.
const CHANGEABLE: [&str; 5] = [
    "draft",
    "scheduled",
    "pending_review",
    "approved",
    "changes_requested",
];

/// The calendar's choices, as its query string (and its forms' `back` field) carry them.
#[derive(Debug, Default, Deserialize)]
pub struct Choice {
    /// `week` (the default) or `month`.
    #[serde(default)]
    pub view: String,
    /// A day in the view (`YYYY-MM-DD`); today in the zone when absent.
    #[serde(default)]
    pub on: String,
    #[serde(default)]
    pub team: String,
    #[serde(default)]
    pub bot_id: String,
    /// An IANA zone the times are shown and entered in; UTC when absent or unknown.
    #[serde(default)]
    pub zone: String,
}

/// The days a view covers and the instants they span.
struct Window {
    month_view: bool,
    zone: TimeZone,
    zone_name: String,
    /// The day the view was asked for (its month is the month view's).
    on: Date,
    today: Date,
    first_day: Date,
    days: i32,
    from: Timestamp,
    to: Timestamp,
}

impl Window {
    fn new(choice: &Choice, now_millis: i64) -> Self {
        let (zone, zone_name) = match TimeZone::get(choice.zone.trim()) {
            Ok(zone) if !choice.zone.trim().is_empty() => (zone, choice.zone.trim().to_string()),
            _ => (TimeZone::UTC, "UTC".to_string()),
        };
        let today = Timestamp::from_millisecond(now_millis)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned_datetime(zone.clone())
            .date();
        let on = choice.on.parse::<Date>().unwrap_or(today);
        let month_view = choice.view == "month";
        let (first_day, last_day) = if month_view {
            (
                monday_of(on.first_of_month()),
                sunday_of(on.last_of_month()),
            )
        } else {
            (monday_of(on), sunday_of(on))
        };
        let days = first_day
            .until(last_day)
            .map_or(7, |span| span.get_days() + 1);
        let instant = |day: Date| {
            day.to_zoned_datetime(zone.clone())
                .map_or(Timestamp::UNIX_EPOCH, |at| at.timestamp())
        };
        Self {
            from: instant(first_day),
            to: instant(add_days(last_day, 1)),
            month_view,
            zone,
            zone_name,
            on,
            today,
            first_day,
            days,
        }
    }

    /// The view's title: "Week of 10 March 2031" or "March 2031".
    fn title(&self) -> String {
        if self.month_view {
            self.on.strftime("%B %Y").to_string()
        } else {
            format!("Week of {}", self.first_day.strftime("%-d %B %Y"))
        }
    }

    /// The day a view before (`-1`) or after (`1`) this one is asked for by.
    fn step(&self, direction: i32) -> Date {
        if self.month_view {
            self.on
                .first_of_month()
                .checked_add(direction.months())
                .unwrap_or(self.on)
        } else {
            add_days(self.on, 7 * direction)
        }
    }

    /// The day an instant falls on in the view's zone.
    fn day_of(&self, at: &str) -> Option<Date> {
        let at: Timestamp = at.parse().ok()?;
        Some(at.to_zoned_datetime(self.zone.clone()).date())
    }

    /// The local time of an instant: "09:30".
    fn time_of(&self, at: &str) -> String {
        at.parse::<Timestamp>().map_or_else(
            |_| String::new(),
            |at| {
                at.to_zoned_datetime(self.zone.clone())
                    .strftime("%H:%M")
                    .to_string()
            },
        )
    }

    /// An instant as a `datetime-local` value in the view's zone.
    fn local_input(&self, at: &str) -> String {
        at.parse::<Timestamp>().map_or_else(
            |_| String::new(),
            |at| {
                at.to_zoned_datetime(self.zone.clone())
                    .strftime("%Y-%m-%dT%H:%M")
                    .to_string()
            },
        )
    }
}

fn add_days(day: Date, days: i32) -> Date {
    day.checked_add(days.days()).unwrap_or(day)
}

fn monday_of(day: Date) -> Date {
    add_days(day, -i32::from(day.weekday().to_monday_zero_offset()))
}

fn sunday_of(day: Date) -> Date {
    add_days(monday_of(day), 6)
}

impl Choice {
    /// The calendar's own address for these choices, another day.
    fn path(&self, on: &str) -> String {
        with_query(
            "/console/calendar",
            &[
                ("view", &self.view),
                ("on", on),
                ("team", &self.team),
                ("bot_id", &self.bot_id),
                ("zone", &self.zone),
            ],
        )
    }

    /// The API's calendar of the window, from `cursor`.
    fn api_path(&self, window: &Window, cursor: &str) -> String {
        with_query(
            "/api/v1/bots/posts",
            &[
                ("from", &window.from.to_string()),
                ("to", &window.to.to_string()),
                ("team", &self.team),
                ("bot_id", &self.bot_id),
                ("limit", "500"),
                ("cursor", cursor),
            ],
        )
    }
}

/// Up to `max` items of an API listing at `path(cursor)`, and whether more were left.
async fn listed(
    console: &Console,
    person: &Person,
    max: usize,
    path: impl Fn(&str) -> String,
) -> Result<(Vec<Value>, bool), ApiFailure> {
    let mut items = Vec::new();
    let mut cursor = String::new();
    loop {
        let listing = console.api.get(&person.api, &path(&cursor)).await?;
        items.extend(listing["items"].as_array().cloned().unwrap_or_default());
        match listing["next_cursor"].as_str() {
            Some(next) if items.len() < max => cursor = next.to_string(),
            Some(_) => return Ok((items, true)),
            None => return Ok((items, false)),
        }
    }
}

/// The bots the person reaches (in the team chosen), by id.
async fn bots(console: &Console, person: &Person, team: &str) -> Result<Vec<Value>, ApiFailure> {
    let (bots, _) = listed(console, person, MAX_BOTS, |cursor| {
        with_query(
            "/api/v1/bots",
            &[("team", team), ("limit", "500"), ("cursor", cursor)],
        )
    })
    .await?;
    Ok(bots)
}

/// `GET /console/calendar`.
pub async fn show(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(choice): Query<Choice>,
) -> Response {
    let person = match console.person(&headers).await {
        Ok(person) => person,
        Err(to_sign_in) => return to_sign_in,
    };
    let window = Window::new(&choice, console.sessions.now_millis());
    let (posts, bots) = tokio::join!(
        listed(&console, &person, MAX_SHOWN, |cursor| choice
            .api_path(&window, cursor)),
        bots(&console, &person, &choice.team)
    );
    let ((posts, more), bots) = match (posts, bots) {
        (Ok(posts), Ok(bots)) => (posts, bots),
        (Err(failure), _) | (_, Err(failure)) => {
            return console.failure_page(Some(&person), &failure);
        }
    };
    let names: HashMap<&str, &Value> = bots.iter().map(|b| (text(b, "bot_id"), b)).collect();
    let body = html! {
        h1 { "Calendar" }
        (choice_form(&choice, &window, &bots))
        (view_nav(&choice, &window))
        @if more {
            p.notice role="status" { "This view holds more than " (MAX_SHOWN) " posts; the first "
                (MAX_SHOWN) " are shown. Choose a team or a bot to see the rest." }
        }
        (grid(&person, &choice, &window, &posts, &names))
        (composer(&person, &choice, &window, &bots))
    };
    page("Calendar", Some(&person), body).into_response()
}

fn choice_form(choice: &Choice, window: &Window, bots: &[Value]) -> Markup {
    let mut zones: Vec<&str> = bots.iter().map(|b| text(b, "time_zone")).collect();
    zones.sort_unstable();
    zones.dedup();
    html! {
        form.filters.panel method="get" action="/console/calendar" aria-label="Calendar view" {
            div { label for="cal-view" { "View" }
                select #cal-view name="view" {
                    option value="week" selected[!window.month_view] { "Week" }
                    option value="month" selected[window.month_view] { "Month" }
                } }
            div { label for="cal-on" { "Day in view" }
                input #cal-on type="date" name="on" value=(window.on.to_string()); }
            div { label for="cal-team" { "Team" }
                input #cal-team type="text" name="team" value=(choice.team); }
            div { label for="cal-bot" { "Bot" }
                select #cal-bot name="bot_id" {
                    option value="" { "Every bot" }
                    @for bot in bots {
                        option value=(text(bot, "bot_id")) selected[text(bot, "bot_id") == choice.bot_id] { (bot_label(bot)) }
                    }
                } }
            div { label for="cal-zone" { "Time zone" }
                input #cal-zone type="text" name="zone" list="cal-zones" value=(window.zone_name);
                datalist #cal-zones { option value="UTC" {} @for zone in zones { option value=(zone) {} } } }
            div { button type="submit" { "Show" } }
        }
    }
}

/// "Weather Lisbon (@lisbonwx)".
fn bot_label(bot: &Value) -> String {
    match bot["x_handle"].as_str() {
        Some(handle) => format!("{} (@{handle})", text(bot, "name")),
        None => text(bot, "name").to_string(),
    }
}

fn view_nav(choice: &Choice, window: &Window) -> Markup {
    let unit = if window.month_view { "month" } else { "week" };
    html! {
        nav.actions aria-label="Weeks and months" {
            a href=(choice.path(&window.step(-1).to_string())) { "Previous " (unit) }
            a href=(choice.path(&window.today.to_string())) { "This " (unit) }
            a href=(choice.path(&window.step(1).to_string())) { "Next " (unit) }
        }
    }
}

/// When a post is placed: published, else due, else created.
fn placed_at(post: &Value) -> &str {
    post["published_at"]
        .as_str()
        .or(post["run_at"].as_str())
        .unwrap_or(text(post, "created_at"))
}

fn grid(
    person: &Person,
    choice: &Choice,
    window: &Window,
    posts: &[Value],
    bots: &HashMap<&str, &Value>,
) -> Markup {
    let mut by_day: HashMap<Date, Vec<&Value>> = HashMap::new();
    for post in posts {
        if let Some(day) = window.day_of(placed_at(post)) {
            by_day.entry(day).or_default().push(post);
        }
    }
    for day_posts in by_day.values_mut() {
        day_posts.sort_by_key(|post| placed_at(post).parse::<Timestamp>().ok());
    }
    let live = with_query(
        "/console/calendar/live",
        &[
            ("view", &choice.view),
            ("on", &window.on.to_string()),
            ("team", &choice.team),
            ("bot_id", &choice.bot_id),
            ("zone", &window.zone_name),
        ],
    );
    let back = choice.path(&window.on.to_string());
    html! {
        section.panel aria-labelledby="cal-title" data-live=(live) {
            h2 #cal-title { (window.title()) " (" (window.zone_name) ")" }
            ol class={"calendar " @if window.month_view { "month" } @else { "week" }} {
                @for offset in 0..window.days {
                    @let day = add_days(window.first_day, offset);
                    @let outside = window.month_view && day.month() != window.on.month();
                    li.day.outside[outside].today[day == window.today] {
                        h3 { (day.strftime("%a %-d %b")) }
                        @if let Some(day_posts) = by_day.get(&day) {
                            ul.entries { @for post in day_posts { (entry(person, window, post, bots, &back)) } }
                        }
                    }
                }
            }
        }
    }
}

fn entry(
    person: &Person,
    window: &Window,
    post: &Value,
    bots: &HashMap<&str, &Value>,
    back: &str,
) -> Markup {
    let post_id = text(post, "post_id");
    let bot_id = text(post, "bot_id");
    let state = text(post, "state");
    let name = bots
        .get(bot_id)
        .map_or(bot_id.to_string(), |b| bot_label(b));
    let snippet: String = text(post, "text").chars().take(SNIPPET).collect();
    html! {
        li.entry #{"post-" (post_id)} {
            time datetime=(placed_at(post)) { (window.time_of(placed_at(post))) }
            " " a href={"/console/bots/" (segment(bot_id))} { (name) }
            " " span.state data-field="state" { (state) }
            p.snippet { (snippet) }
            p.muted data-field="error" { (text(post, "error")) }
            @if CHANGEABLE.contains(&state) {
                details {
                    summary { "Move or cancel" span.visually-hidden { " this post of " (name) } }
                    form method="post" action="/console/calendar/reschedule" {
                        (hidden(person, bot_id, post_id, back, window))
                        label for={"at-" (post_id)} { "New time (" (window.zone_name) ")" }
                        input #{"at-" (post_id)} type="datetime-local" name="run_at" required
                            value=(post["run_at"].as_str().map(|at| window.local_input(at)).unwrap_or_default());
                        button type="submit" { "Move" }
                    }
                    form method="post" action="/console/calendar/cancel" {
                        (hidden(person, bot_id, post_id, back, window))
                        button.secondary type="submit" data-confirm="Cancel this post?" { "Cancel post" }
                    }
                }
            }
        }
    }
}

/// The fields every post form of the calendar carries.
fn hidden(person: &Person, bot_id: &str, post_id: &str, back: &str, window: &Window) -> Markup {
    html! {
        (csrf_field(&person.csrf))
        input type="hidden" name="bot_id" value=(bot_id);
        input type="hidden" name="post_id" value=(post_id);
        input type="hidden" name="zone" value=(window.zone_name);
        input type="hidden" name="back" value=(back);
    }
}

fn composer(person: &Person, choice: &Choice, window: &Window, bots: &[Value]) -> Markup {
    html! {
        section.panel aria-labelledby="compose" {
            h2 #compose { "New post" }
            @if bots.is_empty() {
                p.muted { "No bot to post for." }
            } @else {
                form.composer method="post" action="/console/calendar/posts" {
                    (csrf_field(&person.csrf))
                    input type="hidden" name="zone" value=(window.zone_name);
                    input type="hidden" name="back" value=(choice.path(&window.on.to_string()));
                    label for="post-bot" { "Bot" }
                    select #post-bot name="bot_id" required {
                        @for bot in bots {
                            option value=(text(bot, "bot_id")) selected[text(bot, "bot_id") == choice.bot_id] { (bot_label(bot)) }
                        }
                    }
                    label for="post-text" { "Text" }
                    textarea #post-text name="text" rows="4" required aria-describedby="post-count post-duplicate" {}
                    p #post-count .muted aria-live="polite" data-counter {
                        "X counts URLs as 23 characters and most emoji and CJK as 2; at most 280."
                    }
                    p #post-duplicate .over aria-live="polite" data-duplicate {}
                    label for="post-at" { "Time (" (window.zone_name) ")" }
                    input #post-at type="datetime-local" name="run_at";
                    div.actions {
                        button type="submit" name="when" value="schedule" { "Schedule" }
                        button.secondary type="submit" name="when" value="now" { "Publish now" }
                    }
                }
            }
        }
    }
}

/// Where a calendar form goes back to: the calendar view it was sent from, never elsewhere.
fn back(form: &FormFields) -> String {
    let back = form.value("back");
    if back.starts_with("/console/calendar") && !back.contains(['\r', '\n']) {
        back.to_string()
    } else {
        "/console/calendar".to_string()
    }
}

/// The zone a calendar form's times are in.
fn zone(form: &FormFields) -> String {
    let zone = form.value("zone");
    if TimeZone::get(zone).is_ok() {
        zone.to_string()
    } else {
        "UTC".to_string()
    }
}

/// `POST /console/calendar/posts`: the composer's post for the bot chosen.
pub async fn create(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let bot_id = form.value("bot_id");
    match submit(&console, &person, bot_id, &form, &zone(&form)).await {
        Ok(()) => see_other(&back(&form)),
        Err(answer) => answer,
    }
}

/// `POST /console/calendar/reschedule`: a post moved to the time given in the view's zone.
pub async fn reschedule(
    State(console): State<Console>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let Some(at) = instant_in_zone(form.value("run_at"), &zone(&form)) else {
        let failure = ApiFailure::refused("Give the new time.");
        return console.failure_page(Some(&person), &failure);
    };
    let path = format!(
        "/api/v1/bots/{}/posts/{}/schedule",
        segment(form.value("bot_id")),
        segment(form.value("post_id"))
    );
    match console
        .api
        .post(&person.api, &path, &json!({"run_at": at}))
        .await
    {
        Ok(_) => see_other(&back(&form)),
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}

/// `POST /console/calendar/cancel`.
pub async fn cancel(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let path = format!(
        "/api/v1/bots/{}/posts/{}/cancel",
        segment(form.value("bot_id")),
        segment(form.value("post_id"))
    );
    match console.api.post(&person.api, &path, &json!({})).await {
        Ok(_) => see_other(&back(&form)),
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}

/// `GET /console/calendar/live`: the view's posts as they change state.
pub async fn live(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(choice): Query<Choice>,
) -> Response {
    let permit = match super::posts::open_live(&console, &headers).await {
        Ok(permit) => permit,
        Err(answer) => return answer,
    };
    let window = Window::new(&choice, console.sessions.now_millis());
    follow(console, headers, choice.api_path(&window, ""), permit)
}
