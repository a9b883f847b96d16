//! Publishing a post: what must hold before anything is sent (the post still wants to go
//! out, the bot is active, the post is not too late, X's window is open), a look at the bot's
//! own posts when an earlier send may have reached X, the send, and what X's answer means.

use serde_json::{Value, json};

use super::{Run, Settle};
use crate::metering;
use crate::model::{BotStatus, PostOptions, PostState};
use crate::ops::budgets;
use crate::ops::reviews::content_hash;
use crate::service::random_below;
use crate::store::claims::{self, Claim};
use crate::store::execution::{self, Outcome};
use crate::store::posts::{self, Publisher};
use crate::xapi::{PostContent, XAnswer, XCallError};

const HOUR_MS: i64 = 3_600_000;
/// How often a post a team's budget holds back looks again.
const BUDGET_RECHECK_MS: i64 = 15 * 60 * 1000;
/// How soon a post with an unknown outcome is checked.
const VERIFY_DELAY_MS: i64 = 1_000;
/// The rate-limit family of creating a post.
const ENDPOINT: &str = "tweets.create";

impl Run<'_> {
    pub(super) async fn publish(&self) -> anyhow::Result<Settle> {
        let job = &self.job;
        if !matches!(
            job.post_state,
            PostState::Scheduled | PostState::Publishing | PostState::Unknown
        ) {
            let now = self.manager.clock.now_millis();
            execution::retire(&self.manager.db, &job.job_id, job.dispatches, now).await?;
            return Ok(Settle::Ack);
        }
        // What the post returns to while it waits: unknown stays unknown until verified.
        let waiting = if job.post_state == PostState::Unknown {
            PostState::Unknown
        } else {
            PostState::Scheduled
        };
        if let Some(settle) = self.unapproved().await? {
            return Ok(settle);
        }
        if job.thread_position.is_some_and(|p| p > 0) && job.part_before_x_id.is_none() {
            // A later part of a thread goes only after the part before it is on X; that
            // part's publish releases this job again.
            return self
                .finish(Outcome::Park {
                    post_state: waiting,
                })
                .await;
        }
        if let Some(settle) = self.before_publishing(waiting).await? {
            return Ok(settle);
        }
        let token = match self.token(waiting).await? {
            Ok(token) => token,
            Err(settle) => return Ok(settle),
        };
        // An earlier send may have reached X: look before sending again.
        let maybe_sent = job.sent_at.is_some()
            || matches!(job.post_state, PostState::Publishing | PostState::Unknown);
        if maybe_sent {
            match self.find_sent(&token).await {
                Ok(Some(x_post_id)) => return self.published(Some(x_post_id)).await,
                Ok(None) => {
                    if let Some(settle) = self.missed_if_late().await? {
                        return Ok(settle);
                    }
                }
                Err(err) => {
                    return self
                        .retry_or_dead(PostState::Unknown, format!("verifying: {err}"))
                        .await;
                }
            }
        }
        if let Some(settle) = self.claimed_elsewhere().await? {
            return Ok(settle);
        }
        self.send(token).await
    }

    /// X's rule against the same content from several accounts, checked again right before
    /// sending and atomically: the post takes the claim on its fingerprint, or fails naming
    /// the bot whose post holds it.
    async fn claimed_elsewhere(&self) -> anyhow::Result<Option<Settle>> {
        let (m, job) = (self.manager, &self.job);
        let now = m.clock.now_millis();
        let since = now - m.settings.duplicate_window_seconds as i64 * 1000;
        let ours = (job.bot_id.as_str(), job.post_id.as_str());
        let held = match claims::take(&m.db, &job.fingerprint, ours, (now, since)).await? {
            Claim::Ours => return Ok(None),
            Claim::Held { bot_id, post_id } => (bot_id, post_id),
        };
        // The holder yields when its post never reached X, or was edited to other text since.
        let holding = match posts::state_and_fingerprint(&m.db, &held.1).await? {
            Some((state, fingerprint)) => {
                fingerprint == job.fingerprint
                    && matches!(
                        state,
                        PostState::Scheduled
                            | PostState::Publishing
                            | PostState::Published
                            | PostState::Unknown
                            | PostState::Deleting
                            | PostState::Deleted
                    )
            }
            None => false,
        };
        if !holding && claims::take_over(&m.db, &job.fingerprint, &held.1, ours, now).await? {
            return Ok(None);
        }
        let error = format!(
            "bot {} is publishing or published identical or near-identical text within the \
             duplicate window; X's automation rules forbid posting the same content from several \
             accounts",
            held.0
        );
        let outcome = Outcome::Failed {
            post_state: PostState::Failed,
            error,
        };
        Ok(Some(self.finish(outcome).await?))
    }

    /// Sends a post back to review, nothing sent, when it would go out without an approval of
    /// exactly its content where one was given or is needed. The operations never schedule
    /// such a post; this catches what they cannot: content changed behind an approval, or a
    /// review policy that came into force after the post was scheduled.
    async fn unapproved(&self) -> anyhow::Result<Option<Settle>> {
        let job = &self.job;
        if job.sent_at.is_some() || job.post_state != PostState::Scheduled {
            return Ok(None);
        }
        let required = job.review_required || self.manager.live.get().approvals.required;
        let error = match &job.approved_hash {
            Some(approved)
                if *approved == content_hash(&job.text, &job.media_ids, &job.options) =>
            {
                return Ok(None);
            }
            Some(_) => "its content differs from what was approved; back to review",
            None if required => "its bot requires review and it has no approval; back to review",
            None => return Ok(None),
        };
        let outcome = Outcome::Failed {
            post_state: PostState::PendingReview,
            error: error.into(),
        };
        Ok(Some(self.finish(outcome).await?))
    }

    /// Marks the post missed when it is later than its grace and was never tried (a post a
    /// restore marked as possibly sent comes here once X is found not to have it).
    async fn missed_if_late(&self) -> anyhow::Result<Option<Settle>> {
        let job = &self.job;
        let grace_ms = self.manager.live.get().grace_seconds as i64 * 1000;
        if job.post_state != PostState::Scheduled
            || job.attempts != 0
            || self.manager.clock.now_millis() <= job.run_at + grace_ms
        {
            return Ok(None);
        }
        let error = format!("not published within {} s of its run_at", grace_ms / 1000);
        let outcome = Outcome::Failed {
            post_state: PostState::Missed,
            error,
        };
        Ok(Some(self.finish(outcome).await?))
    }

    /// The settle when the post must not be sent now: its bot cannot publish (parked), it
    /// is later than the grace period (missed), or X's window for posting is spent.
    async fn before_publishing(&self, waiting: PostState) -> anyhow::Result<Option<Settle>> {
        let job = &self.job;
        if job.bot_status != BotStatus::Active {
            return Ok(Some(self.park(waiting).await?));
        }
        if job.sent_at.is_none()
            && let Some(settle) = self.missed_if_late().await?
        {
            return Ok(Some(settle));
        }
        // A team or app budget with a hard stop that this post would overrun: wait, saying why,
        // and look again later (the budget may be raised; the month ends).
        let pricing = self.manager.live.get().pricing.clone();
        let price = metering::charge(&pricing, metering::post_kind(&job.text), 1);
        let payers = budgets::Payers {
            team: job.team.as_deref(),
            app: &job.app,
        };
        if let Some(reason) = budgets::blocked(self.manager, payers, &price).await? {
            let outcome = Outcome::Retry {
                post_state: waiting,
                due_at: self.manager.clock.now_millis() + BUDGET_RECHECK_MS,
                counted: false,
                error: reason,
            };
            return Ok(Some(self.finish(outcome).await?));
        }
        if let Some((until, why)) = self.spent_local_window().await? {
            let jitter =
                random_below(self.manager.live.get().execution.rate_limit_jitter_ms) as i64;
            let outcome = Outcome::Retry {
                post_state: waiting,
                due_at: until + jitter,
                counted: false,
                error: why,
            };
            return Ok(Some(self.finish(outcome).await?));
        }
        self.wait_for_window(ENDPOINT, waiting).await
    }

    /// X's posting limits that no header reports, from what this service published: the
    /// account's 3 hours, then the app's 24 hours. Until when and why the post must wait.
    /// (Across bots the app's count can run ahead by the sends in flight at once.)
    async fn spent_local_window(&self) -> anyhow::Result<Option<(i64, String)>> {
        let limits = self.manager.live.get().x_limits.clone();
        let (db, now) = (&self.manager.db, self.manager.clock.now_millis());
        let at = platform::time_fmt::rfc3339_from_millis;
        let account = (limits.user_posts_per_3h, 3 * HOUR_MS);
        if let Some(until) =
            posts::window_frees_at(db, Publisher::Bot(&self.job.bot_id), account, now).await?
        {
            let why = format!(
                "X allows {} posts per account in 3 hours; this bot's next can go at {}",
                limits.user_posts_per_3h,
                at(until)
            );
            return Ok(Some((until, why)));
        }
        let app = (limits.app_posts_per_24h, 24 * HOUR_MS);
        let of_app = Publisher::App(&self.job.app);
        if let Some(until) = posts::window_frees_at(db, of_app, app, now).await? {
            let why = format!(
                "X allows an app {} posts in 24 hours; app {}'s next can go at {}",
                limits.app_posts_per_24h,
                self.job.app,
                at(until)
            );
            return Ok(Some((until, why)));
        }
        Ok(None)
    }

    async fn published(&self, x_post_id: Option<String>) -> anyhow::Result<Settle> {
        // X holds the post now, so its media bytes are no longer needed here; they go before
        // the post reads as published, so whoever sees it published sees its media published.
        self.drop_published_media().await;
        self.finish(Outcome::Done {
            post_state: PostState::Published,
            x_post_id,
        })
        .await
    }

    /// The post's options as sent: a later part of a thread replies to the part before it.
    fn options_to_send(&self) -> PostOptions {
        let mut options = self.job.options.clone();
        if let Some(before) = &self.job.part_before_x_id {
            options.reply_to_x_post_id = Some(before.clone());
        }
        options
    }

    /// Sends the post, recording first that it is being sent.
    async fn send(&self, token: platform::config::Secret) -> anyhow::Result<Settle> {
        let job = &self.job;
        // Uploading media sends no post: it may be redone before the send is recorded.
        let media_ids = match self.media_for_x(&token).await? {
            Ok(ids) => ids,
            Err(settle) => return Ok(settle),
        };
        let token = match self.token(PostState::Scheduled).await? {
            Ok(token) => token,
            Err(settle) => return Ok(settle),
        };
        let now = self.manager.clock.now_millis();
        if !execution::mark_sending(&self.manager.db, job, PostState::Publishing, now).await? {
            return Ok(Settle::Ack);
        }
        let x = &self.manager.x;
        let options = &self.options_to_send();
        let media_ids = &media_ids;
        let sent = self
            .call_with_refresh(token, |t| async move {
                let post = PostContent {
                    text: &job.text,
                    media_ids,
                    options,
                };
                x.create_post(&t, &post).await
            })
            .await;
        match sent {
            Ok((answer, refreshed)) => {
                self.save_windows(&answer).await;
                self.classify(answer, refreshed).await
            }
            Err(XCallError::NotSent(err)) => {
                self.retry_or_dead(
                    PostState::Scheduled,
                    format!("X could not be reached: {err}"),
                )
                .await
            }
            Err(XCallError::NoAnswer(err)) => self.no_answer(err).await,
            Err(malformed @ XCallError::Malformed(_)) => {
                self.finish(Outcome::Failed {
                    post_state: PostState::Failed,
                    error: malformed.to_string(),
                })
                .await
            }
        }
    }

    /// Sent, but no answer came: the post is unknown until a read of the bot's own posts
    /// settles it, soon.
    async fn no_answer(&self, err: String) -> anyhow::Result<Settle> {
        if self.last_attempt() {
            return self.retry_or_dead(PostState::Unknown, err).await;
        }
        let outcome = Outcome::Retry {
            post_state: PostState::Unknown,
            due_at: self.manager.clock.now_millis() + VERIFY_DELAY_MS,
            counted: true,
            error: format!("no answer after sending; verifying: {err}"),
        };
        self.manager
            .record_for(
                "post.unknown",
                &self.job.bot_id,
                &self.job.post_id,
                json!({}),
            )
            .await;
        self.finish(outcome).await
    }

    /// What X's answer to the send means.
    async fn classify(&self, answer: XAnswer, refreshed: bool) -> anyhow::Result<Settle> {
        match answer.status {
            200..=299 => {
                let id = answer
                    .body
                    .pointer("/data/id")
                    .and_then(Value::as_str)
                    .map(String::from);
                self.published(id).await
            }
            401 => {
                let reason = if refreshed {
                    "X refused the refreshed token"
                } else {
                    "X refused the token"
                };
                self.needs_reauth(PostState::Scheduled, reason).await
            }
            429 => {
                self.wait_for_reset(&answer, ENDPOINT, PostState::Scheduled)
                    .await
            }
            status if status >= 500 => {
                self.retry_or_dead(PostState::Scheduled, format!("X answered {status}"))
                    .await
            }
            _ => self.refused(answer).await,
        }
    }

    /// X refused the post. A duplicate after an earlier attempt may be our own first send
    /// arriving late: then it is published.
    async fn refused(&self, answer: XAnswer) -> anyhow::Result<Settle> {
        let job = &self.job;
        let problem = answer.problem();
        if problem.is_duplicate_content() && job.attempts > 0 {
            let token = self
                .manager
                .tokens
                .access_token(&job.bot_id, self.owner())
                .await;
            if let Ok(token) = token
                && let Ok(Some(id)) = self.find_sent(&token).await
            {
                return self.published(Some(id)).await;
            }
        }
        let detail = if problem.detail.is_empty() {
            problem.title.clone()
        } else {
            problem.detail.clone()
        };
        self.finish(Outcome::Failed {
            post_state: PostState::Failed,
            error: format!("X refused the post ({}): {detail}", answer.status),
        })
        .await
    }
}
