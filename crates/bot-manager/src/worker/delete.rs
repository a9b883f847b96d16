//! Deleting a published post from X. Deleting twice is harmless, so a failed call is simply
//! tried again.

use super::{Run, Settle};
use crate::model::{BotStatus, PostState};
use crate::store::execution::{self, Outcome};
use crate::xapi::XAnswer;

/// The rate-limit family of deleting a post.
const ENDPOINT: &str = "tweets.delete";

impl Run<'_> {
    pub(super) async fn delete(&self) -> anyhow::Result<Settle> {
        let job = &self.job;
        let now = self.manager.clock.now_millis();
        if job.post_state != PostState::Deleting {
            execution::retire(&self.manager.db, &job.job_id, job.dispatches, now).await?;
            return Ok(Settle::Ack);
        }
        if job.bot_status != BotStatus::Active {
            return self.park(PostState::Deleting).await;
        }
        if let Some(settle) = self.wait_for_window(ENDPOINT, PostState::Deleting).await? {
            return Ok(settle);
        }
        let Some(x_post_id) = job.x_post_id.clone() else {
            return self.deleted().await;
        };
        let token = match self.token(PostState::Deleting).await? {
            Ok(token) => token,
            Err(settle) => return Ok(settle),
        };
        let now = self.manager.clock.now_millis();
        if !execution::mark_sending(&self.manager.db, job, PostState::Deleting, now).await? {
            return Ok(Settle::Ack);
        }
        let x = &self.manager.x;
        let id = x_post_id.as_str();
        match self
            .call_with_refresh(token, |t| async move { x.delete_post(&t, id).await })
            .await
        {
            Ok((answer, _)) => {
                self.save_windows(&answer).await;
                self.classify_delete(answer).await
            }
            Err(err) => {
                self.retry_or_dead(PostState::Deleting, err.to_string())
                    .await
            }
        }
    }

    async fn deleted(&self) -> anyhow::Result<Settle> {
        self.finish(Outcome::Done {
            post_state: PostState::Deleted,
            x_post_id: None,
        })
        .await
    }

    /// What X's answer to the delete means; a post X no longer has is deleted.
    async fn classify_delete(&self, answer: XAnswer) -> anyhow::Result<Settle> {
        match answer.status {
            200..=299 | 404 => self.deleted().await,
            401 => {
                self.needs_reauth(PostState::Deleting, "X refused the token")
                    .await
            }
            429 => {
                self.wait_for_reset(&answer, ENDPOINT, PostState::Deleting)
                    .await
            }
            status if status >= 500 => {
                self.retry_or_dead(PostState::Deleting, format!("X answered {status}"))
                    .await
            }
            status => {
                let problem = answer.problem();
                self.finish(Outcome::Failed {
                    post_state: PostState::Published,
                    error: format!("X refused the delete ({status}): {}", problem.detail),
                })
                .await
            }
        }
    }
}
