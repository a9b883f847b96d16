//! Media for posts: uploaded here (checked against X's types and limits, and against what the
//! bytes are), kept until the post that carries them is published, and named in a post's
//! `media_ids` beside media already on X. The worker uploads them to X in chunks right before
//! the send (`worker::media`).

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde_json::json;

use super::bots::reachable;
use super::posts::writable;
use crate::model::{is_stored_media_id, new_id, parse_id};
use crate::service::{Actor, BotManager};
use crate::store::media::{self, MediaRow, MediaState};

/// What a person uploads.
pub struct NewMedia {
    pub media_type: String,
    pub alt_text: Option<String>,
    pub bytes: bytes::Bytes,
}

/// X's category and byte limit for a media type it takes.
pub fn x_category(media_type: &str) -> Option<(&'static str, u64)> {
    match media_type {
        "image/jpeg" | "image/png" | "image/webp" => Some(("tweet_image", 5 * 1024 * 1024)),
        "image/gif" => Some(("tweet_gif", 15 * 1024 * 1024)),
        "video/mp4" => Some(("tweet_video", 512 * 1024 * 1024)),
        _ => None,
    }
}

/// Whether the bytes are what the type says (their signature), so X is not sent a file it
/// will refuse after the post was scheduled.
fn looks_like(media_type: &str, bytes: &[u8]) -> bool {
    match media_type {
        "image/jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/gif" => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        "image/webp" => bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        "video/mp4" => bytes.len() >= 8 && &bytes[4..8] == b"ftyp",
        _ => false,
    }
}

fn check_new(m: &BotManager, new: &NewMedia) -> Result<&'static str, ApiError> {
    let Some((category, x_limit)) = x_category(&new.media_type) else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "media: image/jpeg, image/png, image/webp, image/gif or video/mp4",
        ));
    };
    let limit = x_limit.min(m.settings.media_max_bytes);
    let size = new.bytes.len() as u64;
    if size > limit {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "media: {size} bytes; a {} is kept here up to {limit} bytes (X takes up to \
                 {x_limit})",
                new.media_type
            ),
        ));
    }
    if !looks_like(&new.media_type, &new.bytes) {
        return Err(ApiError::invalid_data(format!(
            "media: the bytes are not a {} (empty, or another format)",
            new.media_type
        )));
    }
    if new
        .alt_text
        .as_ref()
        .is_some_and(|t| t.chars().count() > 1000)
    {
        return Err(ApiError::invalid_data(
            "alt_text: at most 1000 characters (X's limit)",
        ));
    }
    Ok(category)
}

/// Keeps a medium for the bot's posts.
pub async fn upload(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    new: NewMedia,
) -> Result<MediaRow, ApiError> {
    caller.require("posts:write")?;
    let bot = reachable(m, caller, bot_id).await?;
    writable(&bot)?;
    check_new(m, &new)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &new.bytes);
    let row = MediaRow {
        media_id: new_id(),
        bot_id: bot.bot_id.clone(),
        uploaded_by: caller.id().to_string(),
        media_type: new.media_type,
        size_bytes: new.bytes.len() as i64,
        sha256: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
        alt_text: new.alt_text.filter(|t| !t.is_empty()),
        state: MediaState::Stored,
        x_media_id: None,
        x_expires_at: None,
        created_at: m.clock.now_millis(),
        published_at: None,
    };
    let chunk = m.settings.media_chunk_bytes as usize;
    media::insert(&m.db, &row, &new.bytes, chunk).await?;
    let details = json!({"media_type": row.media_type, "size_bytes": row.size_bytes});
    m.record(
        Actor::Caller(caller),
        "media.uploaded",
        &bot,
        &row.media_id,
        details,
    )
    .await;
    Ok(row)
}

async fn reachable_media(
    m: &BotManager,
    caller: &Caller,
    (bot_id, media_id): (&str, &str),
) -> Result<MediaRow, ApiError> {
    let bot = reachable(m, caller, bot_id).await?;
    let id = parse_id(media_id, "medium")?;
    media::get(&m.db, &bot.bot_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such medium"))
}

pub async fn get(m: &BotManager, caller: &Caller, ids: (&str, &str)) -> Result<MediaRow, ApiError> {
    caller.require("bots:read")?;
    reachable_media(m, caller, ids).await
}

/// Deletes a medium no post still waiting to go out names.
pub async fn delete(m: &BotManager, caller: &Caller, ids: (&str, &str)) -> Result<(), ApiError> {
    caller.require("posts:write")?;
    let row = reachable_media(m, caller, ids).await?;
    if media::in_use(&m.db, &row.bot_id, &row.media_id).await? {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a post that has not gone out yet carries this medium; cancel or edit it first",
        ));
    }
    media::delete(&m.db, &row.media_id).await?;
    Ok(())
}

/// The media uploaded here that a post names are the bot's and still kept, and combine as X
/// allows (one video or GIF alone, or up to four images).
pub async fn check_attached(
    m: &BotManager,
    bot_id: &str,
    media_ids: &[String],
) -> Result<(), ApiError> {
    let mut kinds = Vec::new();
    for id in media_ids.iter().filter(|id| is_stored_media_id(id)) {
        match media::get(&m.db, bot_id, id).await? {
            Some(row) if row.state == MediaState::Stored => kinds.push(row.media_type),
            _ => {
                return Err(ApiError::invalid_data(format!(
                    "media_ids: {id} is not a medium uploaded for this bot and still kept"
                )));
            }
        }
    }
    let moving = kinds.iter().any(|k| k == "video/mp4" || k == "image/gif");
    if moving && media_ids.len() > 1 {
        return Err(ApiError::invalid_data(
            "media_ids: a video or GIF goes alone (X's rule); up to four images go together",
        ));
    }
    Ok(())
}
