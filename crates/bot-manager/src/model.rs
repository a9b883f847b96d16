//! The domain's words: bot statuses and which changes are allowed, post states, ids, posting
//! slots, and the text rules a post must follow.

use platform::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

/// A bot's status. Only the transitions in [`BotStatus::may_become`] are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BotStatus {
    /// Publishes.
    Active,
    /// Keeps its posts, publishes nothing until resumed.
    Paused,
    /// X refused its tokens; new credentials make it active again.
    NeedsReauth,
    /// Stopped by an admin (or because X suspended the account).
    Suspended,
    /// Retired for good; read-only.
    Archived,
}

impl BotStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::NeedsReauth => "needs_reauth",
            Self::Suspended => "suspended",
            Self::Archived => "archived",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        Ok(match raw {
            "active" => Self::Active,
            "paused" => Self::Paused,
            "needs_reauth" => Self::NeedsReauth,
            "suspended" => Self::Suspended,
            "archived" => Self::Archived,
            _ => {
                return Err(ApiError::invalid_data(
                    "status: active, paused, needs_reauth, suspended or archived",
                ));
            }
        })
    }

    /// The status changes a person may ask for. `needs_reauth` is set by the system when X
    /// refuses the bot's tokens and left only by storing new credentials; lifting a
    /// suspension is for admins (checked by the caller).
    pub fn may_become(self, next: Self) -> bool {
        use BotStatus::*;
        matches!(
            (self, next),
            (Active, Paused)
                | (Paused, Active)
                | (Active | Paused | NeedsReauth, Suspended)
                | (Suspended, Active)
                | (Active | Paused | NeedsReauth | Suspended, Archived)
        )
    }
}

/// A post's state. `draft → scheduled → publishing → published | failed | unknown`, and
/// `cancelled` or `missed` instead of publishing; `deleted` after a published post is removed.
/// Where its bot requires review, `pending_review → approved | changes_requested` comes
/// before `scheduled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostState {
    Draft,
    /// Waiting for a reviewer (its bot requires approval); its `run_at` is the time asked for.
    PendingReview,
    /// Approved without a time: schedule or publish it (its content as approved).
    Approved,
    /// A reviewer asked for changes; an edit submits it again.
    ChangesRequested,
    Scheduled,
    Publishing,
    Published,
    Failed,
    /// Sent to X, no answer: verified by reading the bot's own posts before any retry.
    Unknown,
    Cancelled,
    /// Not published within the grace period after its `run_at`.
    Missed,
    Deleting,
    Deleted,
}

impl PostState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::PendingReview => "pending_review",
            Self::Approved => "approved",
            Self::ChangesRequested => "changes_requested",
            Self::Scheduled => "scheduled",
            Self::Publishing => "publishing",
            Self::Published => "published",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::Cancelled => "cancelled",
            Self::Missed => "missed",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        Ok(match raw {
            "draft" => Self::Draft,
            "pending_review" => Self::PendingReview,
            "approved" => Self::Approved,
            "changes_requested" => Self::ChangesRequested,
            "scheduled" => Self::Scheduled,
            "publishing" => Self::Publishing,
            "published" => Self::Published,
            "failed" => Self::Failed,
            "unknown" => Self::Unknown,
            "cancelled" => Self::Cancelled,
            "missed" => Self::Missed,
            "deleting" => Self::Deleting,
            "deleted" => Self::Deleted,
            _ => {
                return Err(ApiError::invalid_data(format!(
                    "state {raw:?} is not a post state"
                )));
            }
        })
    }

    /// Editing and cancelling are allowed until publishing starts.
    pub fn is_editable(self) -> bool {
        Self::EDITABLE.contains(&self)
    }

    /// The states before publishing starts, where a post may still change.
    pub const EDITABLE: [Self; 5] = [
        Self::Draft,
        Self::PendingReview,
        Self::Approved,
        Self::ChangesRequested,
        Self::Scheduled,
    ];
}

/// A job's state: `pending` (due, or waiting for its run_at), `running` (a worker is sending
/// it), `waiting` (parked while its bot cannot publish), `done`, `dead` (gave up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Waiting,
    Done,
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        Ok(match raw {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "waiting" => Self::Waiting,
            "done" => Self::Done,
            "dead" => Self::Dead,
            other => anyhow::bail!("{other:?} is not a job state"),
        })
    }

    /// Whether a worker may still act on the job.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }
}

/// A UUIDv7 id from a path.
pub fn parse_id(raw: &str, what: &str) -> Result<String, ApiError> {
    match uuid::Uuid::parse_str(raw) {
        Ok(id) => Ok(id.hyphenated().to_string()),
        Err(_) => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no such {what}"),
        )),
    }
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The time zone of a bot that names none.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// A bot's time zone: an IANA name (`Europe/Berlin`), from the tz database built in.
pub fn parse_time_zone(raw: &str) -> Result<String, ApiError> {
    match jiff::tz::TimeZone::get(raw) {
        Ok(_) if !raw.is_empty() && raw.len() <= 64 => Ok(raw.to_string()),
        _ => Err(ApiError::invalid_data(
            "time_zone: an IANA time zone name such as Europe/Berlin or America/New_York",
        )),
    }
}

/// The zone of a stored name (checked when it was stored; UTC if the tz database lost it).
fn zone(name: &str) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(name).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// A weekly posting slot in the bot's local time (its `time_zone`), `start` inclusive, `end`
/// exclusive (`"09:00"`–`"17:30"`): 09:00 stays 09:00 on the wall clock across daylight-saving
/// changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostingSlot {
    /// mon, tue, wed, thu, fri, sat or sun.
    pub day: String,
    pub start: String,
    pub end: String,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn minutes(raw: &str) -> Option<u32> {
    let (h, m) = raw.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

impl PostingSlot {
    fn bounds(&self) -> Option<(usize, u32, u32)> {
        let day = DAYS.iter().position(|d| *d == self.day)?;
        let (start, end) = (minutes(&self.start)?, minutes(&self.end)?);
        (start < end).then_some((day, start, end))
    }

    pub fn check_all(slots: &[PostingSlot]) -> Result<(), ApiError> {
        if slots.len() > 168 {
            return Err(ApiError::invalid_data("posting_slots: at most 168"));
        }
        for (i, slot) in slots.iter().enumerate() {
            if slot.bounds().is_none() {
                return Err(ApiError::invalid_data(format!(
                    "posting_slots[{i}]: day is mon…sun, start and end are HH:MM with start before end"
                )));
            }
        }
        Ok(())
    }

    /// Whether a moment (unix milliseconds) falls in one of the slots, read on the wall clock
    /// of `time_zone`; no slots: any time.
    pub fn allows(slots: &[PostingSlot], time_zone: &str, at_millis: i64) -> bool {
        if slots.is_empty() {
            return true;
        }
        let Ok(at) = jiff::Timestamp::from_millisecond(at_millis) else {
            return false;
        };
        let local = at.to_zoned_datetime(zone(time_zone));
        let day = local.weekday().to_monday_zero_offset() as usize;
        let minute = local.hour() as u32 * 60 + local.minute() as u32;
        slots
            .iter()
            .filter_map(PostingSlot::bounds)
            .any(|(d, start, end)| d == day && (start..end).contains(&minute))
    }

    /// The slots' occurrences over the `days` local days from `from_millis` on, as unix
    /// millisecond windows `[start, end)` in time order, each starting at or after
    /// `from_millis`. A wall-clock time a daylight-saving change skips moves forward, as
    /// clocks do.
    pub fn occurrences(
        slots: &[PostingSlot],
        time_zone: &str,
        from_millis: i64,
        days: i64,
    ) -> Vec<(i64, i64)> {
        let tz = zone(time_zone);
        let Ok(from) = jiff::Timestamp::from_millisecond(from_millis) else {
            return Vec::new();
        };
        let first_day = from.to_zoned_datetime(tz.clone()).date();
        let at = |date: jiff::civil::Date, minute: u32| -> Option<i64> {
            let (date, minute) = if minute == 24 * 60 {
                (date.tomorrow().ok()?, 0)
            } else {
                (date, minute)
            };
            let local = date.at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
            Some(
                local
                    .to_zoned_datetime(tz.clone())
                    .ok()?
                    .timestamp()
                    .as_millisecond(),
            )
        };
        let mut found = Vec::new();
        let mut date = first_day;
        for _ in 0..days {
            let day = date.weekday().to_monday_zero_offset() as usize;
            for (d, start, end) in slots.iter().filter_map(PostingSlot::bounds) {
                if d != day {
                    continue;
                }
                if let (Some(s), Some(e)) = (at(date, start), at(date, end))
                    && s >= from_millis
                {
                    found.push((s, e));
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// A post's text after X's rules: NFC, at most 280 weighted characters (twitter-text v3, bare
/// domains count as URLs), none of the characters X refuses, not blank unless it carries media.
pub fn check_text(text: &str, has_media: bool) -> Result<String, ApiError> {
    let text = x_text::normalize(text);
    if text.trim().is_empty() && !has_media {
        return Err(ApiError::invalid_data("text: a post needs text or media"));
    }
    if !x_text::is_countable(&text) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!(
                "text: over {} characters, too long to count (a post is at most {} weighted characters)",
                x_text::MAX_TEXT_CHARS,
                x_text::MAX_WEIGHTED_LENGTH
            ),
        ));
    }
    if text.is_empty() {
        return Ok(text);
    }
    // One parse gives both the count and the verdict on characters X refuses.
    let parsed = x_text::parse(&text);
    let weighted = parsed.weighted_length;
    if weighted > x_text::MAX_WEIGHTED_LENGTH {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!(
                "text: {weighted} weighted characters; X allows {} (URLs count 23, CJK and emoji 2)",
                x_text::MAX_WEIGHTED_LENGTH
            ),
        )
        .with_field("weighted_length", weighted));
    }
    if !parsed.valid {
        return Err(ApiError::invalid_data(
            "text: contains a character X refuses (U+FFFE, U+FEFF or U+FFFF)",
        ));
    }
    Ok(text)
}

/// An id as X's document defines `TweetId` and `MediaId`: 1 to 19 digits.
pub fn is_x_id(id: &str) -> bool {
    (1..=19).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

/// A medium uploaded here (`POST /bots/{id}/media`), as opposed to one already on X.
pub fn is_stored_media_id(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::parse_str(id).is_ok()
}

/// Media ids: X's (`MediaId`, already uploaded to X) or media uploaded here, at most 4 per
/// post.
pub fn check_media(ids: &[String]) -> Result<(), ApiError> {
    if ids.len() > 4 {
        return Err(ApiError::invalid_data("media_ids: at most 4"));
    }
    if !ids.iter().all(|id| is_x_id(id) || is_stored_media_id(id)) {
        return Err(ApiError::invalid_data(
            "media_ids: X media ids (1 to 19 digits) or ids of media uploaded here",
        ));
    }
    Ok(())
}

/// Who may reply to a post, as X's `TweetCreateRequest.reply_settings` names them (absent:
/// everyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ReplySettings {
    #[serde(rename = "following")]
    Following,
    #[serde(rename = "mentionedUsers")]
    MentionedUsers,
    #[serde(rename = "subscribers")]
    Subscribers,
}

/// A poll as X takes it: 2 to 4 choices of 1 to 25 characters, open 5 minutes to 7 days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Poll {
    pub options: Vec<String>,
    pub duration_minutes: u32,
}

/// What a post carries to X besides its text and media: the post it replies to or quotes, a
/// poll, who may reply. Stored with the post; sent in X's `POST /2/tweets` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostOptions {
    /// The X post this one replies to (X's `reply.in_reply_to_tweet_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_x_post_id: Option<String>,
    /// The X post this one quotes (X's `quote_tweet_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_x_post_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<Poll>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_settings: Option<ReplySettings>,
}

/// X's rules for a post's options, with its media: ids of 1 to 19 digits, a poll's limits,
/// and at most one of media, a poll and a quote (X's document makes them exclusive).
pub fn check_options(options: &PostOptions, has_media: bool) -> Result<(), ApiError> {
    for (field, id) in [
        ("reply_to_x_post_id", &options.reply_to_x_post_id),
        ("quote_x_post_id", &options.quote_x_post_id),
    ] {
        if id.as_deref().is_some_and(|id| !is_x_id(id)) {
            return Err(ApiError::invalid_data(format!(
                "{field}: an X post id, 1 to 19 digits"
            )));
        }
    }
    if let Some(poll) = &options.poll {
        if !(2..=4).contains(&poll.options.len()) {
            return Err(ApiError::invalid_data("poll.options: 2 to 4 choices"));
        }
        if !poll
            .options
            .iter()
            .all(|o| (1..=25).contains(&o.chars().count()))
        {
            return Err(ApiError::invalid_data(
                "poll.options: each choice 1 to 25 characters",
            ));
        }
        if !(5..=10_080).contains(&poll.duration_minutes) {
            return Err(ApiError::invalid_data(
                "poll.duration_minutes: 5 to 10080 (7 days)",
            ));
        }
    }
    let exclusive = [
        has_media,
        options.poll.is_some(),
        options.quote_x_post_id.is_some(),
    ];
    if exclusive.iter().filter(|given| **given).count() > 1 {
        return Err(ApiError::invalid_data(
            "media_ids, poll and quote_x_post_id: X takes at most one of them in a post",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowed_status_changes_pass() {
        use BotStatus::*;
        assert!(Active.may_become(Paused));
        assert!(Paused.may_become(Active));
        assert!(Suspended.may_become(Active));
        assert!(Active.may_become(Archived));
        assert!(!Archived.may_become(Active));
        assert!(!Active.may_become(NeedsReauth));
        assert!(!NeedsReauth.may_become(Active));
        assert!(!Paused.may_become(Paused));
    }

    #[test]
    fn posting_slots_are_weekly_on_the_bots_wall_clock() {
        let slots = vec![PostingSlot {
            day: "fri".into(),
            start: "09:00".into(),
            end: "17:00".into(),
        }];
        PostingSlot::check_all(&slots).unwrap();
        // 2026-11-27 is a Friday.
        let friday_10h = 1_795_773_600_000; // 2026-11-27T10:00:00Z
        assert!(PostingSlot::allows(&slots, "UTC", friday_10h));
        assert!(!PostingSlot::allows(
            &slots,
            "UTC",
            friday_10h + 8 * 3_600_000
        ));
        assert!(!PostingSlot::allows(&slots, "UTC", friday_10h + 86_400_000));
        assert!(PostingSlot::allows(&[], "UTC", friday_10h));
        // 10:00Z is 05:00 in New York (UTC-5 in November): before its slot opens.
        assert!(!PostingSlot::allows(&slots, "America/New_York", friday_10h));
        assert!(PostingSlot::allows(
            &slots,
            "America/New_York",
            friday_10h + 4 * 3_600_000
        ));
        let bad = vec![PostingSlot {
            day: "fri".into(),
            start: "18:00".into(),
            end: "17:00".into(),
        }];
        assert!(PostingSlot::check_all(&bad).is_err());
        assert!(parse_time_zone("Europe/Berlin").is_ok());
        assert!(parse_time_zone("Mars/Olympus").is_err());
        assert!(parse_time_zone("").is_err());
    }

    /// Europe/Berlin leaves winter time on 2027-03-28 (02:00 → 03:00): a Sunday 09:00 slot is
    /// 08:00Z the week before and 07:00Z that day; a 02:30 slot that day does not exist on
    /// the wall clock and moves forward to 03:30 (01:30Z).
    #[test]
    fn slot_occurrences_keep_local_time_across_a_daylight_saving_change() {
        let slot = |start: &str, end: &str| PostingSlot {
            day: "sun".into(),
            start: start.into(),
            end: end.into(),
        };
        let ms = |raw: &str| raw.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let from = ms("2027-03-20T00:00:00Z");
        let found = PostingSlot::occurrences(&[slot("09:00", "10:00")], "Europe/Berlin", from, 14);
        assert_eq!(
            found,
            [
                (ms("2027-03-21T08:00:00Z"), ms("2027-03-21T09:00:00Z")),
                (ms("2027-03-28T07:00:00Z"), ms("2027-03-28T08:00:00Z")),
            ]
        );
        let skipped = PostingSlot::occurrences(
            &[slot("02:30", "04:00")],
            "Europe/Berlin",
            ms("2027-03-27T00:00:00Z"),
            2,
        );
        assert_eq!(
            skipped,
            [(ms("2027-03-28T01:30:00Z"), ms("2027-03-28T02:00:00Z"))]
        );
        // Only occurrences that start at or after `from`.
        let later = PostingSlot::occurrences(
            &[slot("09:00", "10:00")],
            "Europe/Berlin",
            ms("2027-03-21T08:30:00Z"),
            8,
        );
        assert_eq!(
            later,
            [(ms("2027-03-28T07:00:00Z"), ms("2027-03-28T08:00:00Z"))]
        );
    }

    #[test]
    fn text_is_normalized_and_weighed() {
        assert_eq!(check_text("e\u{301}", false).unwrap(), "é");
        assert!(check_text("   ", false).is_err());
        assert!(check_text("", true).is_ok());
        let err = check_text(&"字".repeat(141), false).unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationFailed);
    }

    #[test]
    fn ids_that_are_not_uuids_are_simply_not_found() {
        assert_eq!(
            parse_id("nope", "bot").unwrap_err().code,
            ErrorCode::NotFound
        );
        let id = new_id();
        assert_eq!(parse_id(&id, "bot").unwrap(), id);
    }
}
