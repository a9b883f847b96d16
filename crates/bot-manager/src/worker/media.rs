//! The media a post carries, on X right before the send: a medium already on X goes as it
//! is; one kept here is uploaded through X's chunked endpoints — `initialize`, one `append`
//! per stored chunk (a failed append is sent again, up to three times, before the run gives
//! up), `finalize`, the `STATUS` of a video's processing, then its alt text — and X's id is
//! kept for as long as X keeps the upload, so a retried post does not upload it again.

use std::time::Duration;

use platform::config::Secret;
use serde_json::Value;

use super::{Run, Settle};
use crate::metering;
use crate::model::{PostState, is_stored_media_id};
use crate::store::execution::Outcome;
use crate::store::media::{self, MediaRow};
use crate::store::usage;
use crate::xapi::{XAnswer, XCallError};

/// Sends of one segment before the upload is given up for this run.
const APPEND_TRIES: u32 = 3;
/// The pause before sending a segment again (doubling).
const APPEND_BACKOFF: Duration = Duration::from_millis(200);
/// How long a run waits for X to process a video before trying again later.
const PROCESSING_WAIT: Duration = Duration::from_secs(30);
/// An upload X keeps for less than this is uploaded again rather than used.
const REUSE_MARGIN_MS: i64 = 10 * 60 * 1000;

/// Why an upload stopped.
enum UploadFailure {
    /// X could not be reached, or kept failing (5xx): try later.
    Unavailable(String),
    /// X answered this step with a refusal.
    Refused(&'static str, XAnswer),
}

fn id_of(answer: &XAnswer) -> Option<String> {
    answer
        .body
        .pointer("/data/id")
        .and_then(Value::as_str)
        .map(String::from)
}

fn checked(
    step: &'static str,
    sent: Result<XAnswer, XCallError>,
) -> Result<XAnswer, UploadFailure> {
    match sent {
        Ok(answer) if answer.is_success() => Ok(answer),
        Ok(answer) if answer.status >= 500 => Err(UploadFailure::Unavailable(format!(
            "{step}: X answered {}",
            answer.status
        ))),
        Ok(answer) => Err(UploadFailure::Refused(step, answer)),
        Err(err) => Err(UploadFailure::Unavailable(format!("{step}: {err}"))),
    }
}

impl Run<'_> {
    /// X's media ids for the post, uploading what is kept here; `Err` settles the run.
    pub(super) async fn media_for_x(
        &self,
        token: &Secret,
    ) -> anyhow::Result<Result<Vec<String>, Settle>> {
        let mut ids = Vec::with_capacity(self.job.media_ids.len());
        for id in &self.job.media_ids {
            if !is_stored_media_id(id) {
                ids.push(id.clone());
                continue;
            }
            let Some(row) = media::get(&self.manager.db, &self.job.bot_id, id).await? else {
                let outcome = Outcome::Failed {
                    post_state: PostState::Failed,
                    error: format!("the medium {id} is gone"),
                };
                return Ok(Err(self.finish(outcome).await?));
            };
            let now = self.manager.clock.now_millis();
            if let (Some(x_id), Some(until)) = (&row.x_media_id, row.x_expires_at)
                && until > now + REUSE_MARGIN_MS
            {
                ids.push(x_id.clone());
                continue;
            }
            match self.upload(token, &row).await? {
                Ok(x_id) => ids.push(x_id),
                Err(failure) => return Ok(Err(self.upload_failed(failure).await?)),
            }
        }
        Ok(Ok(ids))
    }

    /// The medium uploaded to X, its id kept and the use metered.
    async fn upload(
        &self,
        token: &Secret,
        row: &MediaRow,
    ) -> anyhow::Result<Result<String, UploadFailure>> {
        let (m, job) = (self.manager, &self.job);
        let (category, _) =
            crate::ops::media::x_category(&row.media_type).unwrap_or(("tweet_image", 0));
        let declared = (row.media_type.as_str(), category, row.size_bytes as u64);
        // The first call refreshes an expired token; the rest use the token it ended with.
        let started = self
            .call_with_refresh(token.clone(), |t| async move {
                m.x.media_initialize(&t, declared).await
            })
            .await
            .map(|(answer, _)| answer);
        let answer = match checked("initialize", started) {
            Ok(answer) => answer,
            Err(failure) => return Ok(Err(failure)),
        };
        let Some(x_id) = id_of(&answer) else {
            return Ok(Err(UploadFailure::Refused("initialize", answer)));
        };
        let expires_after = answer
            .body
            .pointer("/data/expires_after_secs")
            .and_then(Value::as_i64)
            .unwrap_or(86_400);
        let token = m
            .tokens
            .access_token(&job.bot_id, self.owner())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let sent = self.send_chunks(&token, row, &x_id).await?;
        if let Err(failure) = sent {
            return Ok(Err(failure));
        }
        let now = m.clock.now_millis();
        media::set_x_media(&m.db, &row.media_id, &x_id, now + expires_after * 1000).await?;
        self.meter_upload(now).await?;
        Ok(Ok(x_id))
    }

    /// Append every chunk (each sent again on a failure), finalize, wait for processing, set
    /// the alt text.
    async fn send_chunks(
        &self,
        token: &Secret,
        row: &MediaRow,
        x_id: &str,
    ) -> anyhow::Result<Result<(), UploadFailure>> {
        let x = &self.manager.x;
        for (index, chunk) in media::chunks(&self.manager.db, &row.media_id)
            .await?
            .into_iter()
            .enumerate()
        {
            if let Err(failure) = self.append(token, x_id, (index as u32, chunk)).await {
                return Ok(Err(failure));
            }
        }
        let finalized = match checked("finalize", x.media_finalize(token, x_id).await) {
            Ok(answer) => answer,
            Err(failure) => return Ok(Err(failure)),
        };
        if let Err(failure) = self.processed(token, x_id, finalized).await {
            return Ok(Err(failure));
        }
        if let Some(text) = &row.alt_text
            && let Err(failure) = checked("metadata", x.media_alt_text(token, x_id, text).await)
        {
            return Ok(Err(failure));
        }
        Ok(Ok(()))
    }

    /// One segment, sent again (after a pause) when X fails or cannot be reached.
    async fn append(
        &self,
        token: &Secret,
        x_id: &str,
        (index, bytes): (u32, Vec<u8>),
    ) -> Result<(), UploadFailure> {
        let mut pause = APPEND_BACKOFF;
        let mut tries = 0;
        loop {
            tries += 1;
            let sent = self
                .manager
                .x
                .media_append(token, x_id, (index, bytes.clone()))
                .await;
            match checked("append", sent) {
                Ok(_) => return Ok(()),
                Err(UploadFailure::Unavailable(why)) if tries < APPEND_TRIES => {
                    tracing::info!(segment = index, error = %why, "sending a media segment again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(failure) => return Err(failure),
            }
        }
    }

    /// Waits for X to process what it says it is processing (a video), as X says when to
    /// look again.
    async fn processed(
        &self,
        token: &Secret,
        x_id: &str,
        mut answer: XAnswer,
    ) -> Result<(), UploadFailure> {
        let deadline = tokio::time::Instant::now() + PROCESSING_WAIT;
        loop {
            let info = answer.body.pointer("/data/processing_info").cloned();
            let state = info
                .as_ref()
                .and_then(|i| i.get("state"))
                .and_then(Value::as_str);
            match state {
                None | Some("succeeded") => return Ok(()),
                Some("failed") => return Err(UploadFailure::Refused("processing", answer)),
                Some(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(UploadFailure::Unavailable(
                        "X is still processing the medium".into(),
                    ));
                }
                Some(_) => {
                    let after = info
                        .as_ref()
                        .and_then(|i| i.get("check_after_secs"))
                        .and_then(Value::as_u64)
                        .unwrap_or(1)
                        .clamp(1, 10);
                    tokio::time::sleep(Duration::from_secs(after)).await;
                    answer = checked("status", self.manager.x.media_status(token, x_id).await)?;
                }
            }
        }
    }

    /// What a failed upload means for the post: try later, wait out X's window, ask for new
    /// credentials, or fail naming X's refusal.
    async fn upload_failed(&self, failure: UploadFailure) -> anyhow::Result<Settle> {
        match failure {
            UploadFailure::Unavailable(why) => {
                self.retry_or_dead(PostState::Scheduled, format!("uploading media: {why}"))
                    .await
            }
            UploadFailure::Refused(_, answer) if answer.status == 401 => {
                self.needs_reauth(PostState::Scheduled, "X refused the token")
                    .await
            }
            UploadFailure::Refused(_, answer) if answer.status == 429 => {
                self.wait_for_reset(&answer, "media.upload", PostState::Scheduled)
                    .await
            }
            UploadFailure::Refused(step, answer) => {
                let problem = answer.problem();
                let detail = if problem.detail.is_empty() {
                    problem.title
                } else {
                    problem.detail
                };
                let outcome = Outcome::Failed {
                    post_state: PostState::Failed,
                    error: format!(
                        "X refused the media upload at {step} ({}): {detail}",
                        answer.status
                    ),
                };
                self.finish(outcome).await
            }
        }
    }

    /// X bills a media upload; metered when the upload is done.
    async fn meter_upload(&self, at: i64) -> anyhow::Result<()> {
        let m = self.manager;
        let charge = metering::charge(&m.live.get().pricing, "media_upload", 1);
        let id = m.clock.uuid_v7().to_string();
        let metered = usage::Metered {
            id: &id,
            bot_id: &self.job.bot_id,
            team: self.job.team.as_deref(),
            app: &self.job.app,
            at,
        };
        usage::record(&m.db, &metered, &charge).await?;
        m.metrics.bill(&charge);
        Ok(())
    }

    /// A published post's media kept here are no longer needed: their bytes go.
    pub(super) async fn drop_published_media(&self) {
        let stored: Vec<String> = self
            .job
            .media_ids
            .iter()
            .filter(|id| is_stored_media_id(id))
            .cloned()
            .collect();
        if stored.is_empty() {
            return;
        }
        let now = self.manager.clock.now_millis();
        if let Err(err) = media::mark_published(&self.manager.db, &stored, now).await {
            tracing::warn!(error = %format!("{err:#}"), "a published post's media bytes stay for now");
        }
    }
}
