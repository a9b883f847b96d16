//! Bulk import of posts, all or nothing: every row is checked as a create would check it (the
//! bot within reach and not archived, X's text and option rules, the time and the bot's
//! posting slots, one cashtag, duplicates across bots — in the database and within the
//! import —, the bots' quotas), and either every row is written in one transaction or none
//! is and the answer names each bad row. A dry run checks and writes nothing.

use std::collections::HashMap;

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde::Serialize;
use serde_json::json;

use super::bots::reachable;
use super::compliance;
use super::posts::{check_slot, insert_with_history, parse_run_at, writable};
use super::reviews::{self, next_state};
use crate::model::{PostOptions, PostState, ReplySettings, check_media, check_options, check_text};
use crate::service::BotManager;
use crate::store::bots::BotRow;
use crate::store::posts::{self, PostRow};

/// Most rows in one import.
pub const MAX_ROWS: usize = 10_000;

/// One row as given (CSV columns or JSON members of the same names).
#[derive(Debug, Default, Clone, serde::Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRow {
    pub bot_id: String,
    #[serde(default)]
    pub text: String,
    /// RFC 3339; empty or absent: a draft.
    #[serde(default)]
    pub run_at: Option<String>,
    /// X media ids (CSV: separated by spaces).
    #[serde(default)]
    pub media_ids: Vec<String>,
    #[serde(default)]
    pub reply_to_x_post_id: Option<String>,
    #[serde(default)]
    pub quote_x_post_id: Option<String>,
    #[serde(default)]
    pub reply_settings: Option<ReplySettings>,
}

/// What is wrong with one row (rows count from 1, the first after a CSV header).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowError {
    pub row: usize,
    pub message: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    pub rows: usize,
    /// Rows that passed every check.
    pub valid: usize,
    pub errors: Vec<RowError>,
    /// The posts written, in row order (none on a dry run or when a row is bad).
    pub post_ids: Vec<String>,
}

/// What the checks learn of each bot once: the bot, whether it requires review, and the
/// posts it has pending.
struct BotFacts {
    bot: BotRow,
    review: bool,
    pending: i64,
    /// Why its first post must wait (its automation disclosure is not confirmed), if so.
    undisclosed: Option<String>,
}

/// Looks a bot up once per import.
async fn facts<'a>(
    m: &BotManager,
    caller: &Caller,
    known: &'a mut HashMap<String, Result<BotFacts, String>>,
    bot_id: &str,
) -> Result<&'a mut BotFacts, String> {
    if !known.contains_key(bot_id) {
        let looked = async {
            let bot = reachable(m, caller, bot_id).await?;
            writable(&bot)?;
            let policy = reviews::policy(m, &bot.bot_id, bot.team.as_deref()).await?;
            let pending = posts::count_pending(&m.db, &bot.bot_id).await?;
            let undisclosed = match super::disclosure::check(m, &bot.bot_id).await {
                Ok(()) => None,
                Err(err) if err.code == ErrorCode::Conflict => Some(err.message),
                Err(err) => return Err(err),
            };
            Ok::<_, ApiError>(BotFacts {
                review: policy.approval_required,
                bot,
                pending,
                undisclosed,
            })
        }
        .await
        .map_err(|e| format!("bot_id: {}", e.message));
        known.insert(bot_id.to_string(), looked);
    }
    known
        .get_mut(bot_id)
        .expect("just inserted")
        .as_mut()
        .map_err(|e| e.clone())
}

/// The post a row makes, X's rules and the slot checked (not yet duplicates or quotas).
fn row_post(caller: &Caller, bot: &BotRow, row: ImportRow, now: i64) -> Result<PostRow, ApiError> {
    check_media(&row.media_ids)?;
    let options = PostOptions {
        reply_to_x_post_id: row.reply_to_x_post_id.filter(|v| !v.is_empty()),
        quote_x_post_id: row.quote_x_post_id.filter(|v| !v.is_empty()),
        poll: None,
        reply_settings: row.reply_settings,
    };
    check_options(&options, !row.media_ids.is_empty())?;
    let text = check_text(&row.text, !row.media_ids.is_empty())?;
    let run_at = match row.run_at.as_deref().filter(|r| !r.is_empty()) {
        Some(raw) => {
            let at = parse_run_at(raw, now)?;
            check_slot(bot, at)?;
            compliance::check_cashtags(&text)?;
            Some(at)
        }
        None => None,
    };
    let mut post = PostRow::draft(
        (&bot.bot_id, caller.id()),
        (text, row.media_ids, options),
        now,
    );
    post.run_at = run_at;
    Ok(post)
}

/// Checks every row; the posts the valid ones make, and the errors of the others.
async fn check_rows(
    m: &BotManager,
    caller: &Caller,
    rows: Vec<ImportRow>,
) -> Result<(Vec<PostRow>, Vec<RowError>), ApiError> {
    let now = m.clock.now_millis();
    let mut known = HashMap::new();
    // Timed text by fingerprint within this import: the first bot that has it.
    let mut claimed: HashMap<String, String> = HashMap::new();
    let (mut made, mut errors) = (Vec::new(), Vec::new());
    for (index, row) in rows.into_iter().enumerate() {
        let number = index + 1;
        let mut fail = |message: String| {
            errors.push(RowError {
                row: number,
                message,
            })
        };
        let facts = match facts(m, caller, &mut known, &row.bot_id).await {
            Ok(facts) => facts,
            Err(message) => {
                fail(message);
                continue;
            }
        };
        let mut post = match row_post(caller, &facts.bot, row, now) {
            Ok(post) => post,
            Err(err) => {
                fail(err.message);
                continue;
            }
        };
        if post.run_at.is_some() {
            if let Some(message) = &facts.undisclosed {
                fail(message.clone());
                continue;
            }
            if let Err(err) =
                compliance::check_not_duplicated(m, &post.bot_id, &post.fingerprint).await
            {
                fail(err.message);
                continue;
            }
            let first = claimed
                .entry(post.fingerprint.clone())
                .or_insert(post.bot_id.clone());
            if *first != post.bot_id {
                fail(format!(
                    "text: the same or near-identical text is timed for another bot ({first}) in \
                     this import; X's automation rules forbid the same content from several accounts"
                ));
                continue;
            }
            facts.pending += 1;
            if facts.pending > m.settings.max_pending_posts_per_bot {
                fail("the bot would have more pending posts than allowed".into());
                continue;
            }
            post.state = next_state(PostState::Draft, facts.review, true, true);
        }
        made.push(post);
    }
    Ok((made, errors))
}

/// Writes every post with its job (when scheduled) and history, in one transaction.
async fn write_all(m: &BotManager, caller: &Caller, made: &[PostRow]) -> Result<(), ApiError> {
    let now = m.clock.now_millis();
    let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
    for post in made {
        insert_with_history(&mut tx, post, (caller.id(), "imported"), now).await?;
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(())
}

/// One activity record per bot that got posts, with how many.
async fn record_per_bot(m: &BotManager, caller: &Caller, made: &[PostRow]) {
    let mut per_bot: HashMap<&str, usize> = HashMap::new();
    for post in made {
        *per_bot.entry(post.bot_id.as_str()).or_default() += 1;
    }
    for (bot_id, count) in per_bot {
        if let Ok(Some(bot)) = crate::store::bots::get(&m.db, bot_id).await {
            let actor = crate::service::Actor::Caller(caller);
            m.record(
                actor,
                "posts.imported",
                &bot,
                bot_id,
                json!({"posts": count}),
            )
            .await;
        }
    }
}

/// Imports posts all or nothing (or, on a dry run, only checks them). With a bad row nothing
/// is written: a dry run answers the report, an import 422 with the report as details.
pub async fn import(
    m: &BotManager,
    caller: &Caller,
    rows: Vec<ImportRow>,
    dry_run: bool,
) -> Result<ImportReport, ApiError> {
    caller.require("posts:write")?;
    if rows.is_empty() || rows.len() > MAX_ROWS {
        return Err(ApiError::invalid_data("rows: 1 to 10000 posts"));
    }
    let count = rows.len();
    let (made, errors) = check_rows(m, caller, rows).await?;
    let mut report = ImportReport {
        dry_run,
        rows: count,
        valid: made.len(),
        errors,
        post_ids: Vec::new(),
    };
    if !report.errors.is_empty() && !dry_run {
        let first = &report.errors[0];
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!(
                "{} of {count} rows are not valid (row {}: {}); nothing was imported",
                report.errors.len(),
                first.row,
                first.message
            ),
        )
        .with_field("errors", json!(report.errors)));
    }
    if dry_run {
        return Ok(report);
    }
    write_all(m, caller, &made).await?;
    if made.iter().any(|p| p.state == PostState::Scheduled) {
        m.relay_wake.notify_one();
    }
    record_per_bot(m, caller, &made).await;
    report.post_ids = made.into_iter().map(|p| p.post_id).collect();
    Ok(report)
}
