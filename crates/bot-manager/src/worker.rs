//! The workers: take due jobs from the queue and act on X. Any number of replicas run them;
//! what keeps a post from being published twice is, in order: the job's dispatch number
//! (an old or duplicate message is ignored), the bot's lease (one write in flight per bot),
//! the job's and post's state read under that lease, and — when an earlier attempt may have
//! reached X — a read of the bot's own posts before sending again.
//!
//! Outcomes: 2xx published; 400/403 failed without retry; 401 refresh once, then the bot
//! needs re-authorisation; 429 wait for `x-rate-limit-reset` plus jitter (not an attempt);
//! a network error before sending or a 5xx retries with exponential backoff and full jitter
//! up to `max_attempts`, then the job is dead-lettered; no answer after sending makes the
//! post unknown until a read settles it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use platform::config::Secret;
use platform::queue::{ConsumerSpec, Delivery};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fingerprint::fingerprint;
use crate::model::{BotStatus, PostState};
use crate::service::{BotManager, random_below};
use crate::store::bots;
use crate::store::execution::{self, JobContext, Outcome};
use crate::store::posts::JobKind;
use crate::tokens::{Owner, TokenError};
use crate::xapi::{XAnswer, XCallError};

/// The durable consumer every replica shares.
pub const CONSUMER: &str = "bot-manager-jobs";
/// Where dead-lettered jobs are announced.
pub const DEAD_LETTER_SUBJECT: &str = "bots.jobs.dead";
/// How soon a post with an unknown outcome is checked.
const VERIFY_DELAY_MS: i64 = 1_000;
/// How soon to try again when Secure Bot Data or the database could not be asked.
const UNAVAILABLE_RETRY_MS: i64 = 5_000;

#[derive(Deserialize)]
struct DueMessage {
    data: DueData,
}

#[derive(Deserialize)]
struct DueData {
    job_id: String,
    dispatch: i64,
    bot_id: String,
}

/// What to do with the delivery.
enum Settle {
    Ack,
    Later(Duration),
}

/// The durable consumer every worker replica shares.
pub fn consumer_spec(execution: &crate::settings::ExecutionSettings) -> ConsumerSpec {
    ConsumerSpec::new(CONSUMER, crate::relay::SUBJECT)
        .max_deliver(0)
        .ack_wait(Duration::from_secs(execution.lease_seconds + 30))
        .max_ack_pending((execution.concurrency * 4).min(u32::MAX as usize) as u32)
}

pub async fn run(manager: Arc<BotManager>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let execution = &manager.settings.execution;
    let mut consumer = manager.queue.consumer(consumer_spec(execution)).await?;
    let permits = Arc::new(tokio::sync::Semaphore::new(execution.concurrency));
    let in_flight = TaskTracker::new();
    let batch = execution.concurrency.min(256);
    let mut failures = 0u32;
    loop {
        let deliveries = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = consumer.next_batch(batch, Duration::from_millis(2)) => next,
        };
        let deliveries = match deliveries {
            Ok(deliveries) => {
                failures = 0;
                deliveries
            }
            Err(err) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(30) {
                    tracing::warn!(error = %format!("{err:#}"), "taking jobs from the queue failed; retrying");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for delivery in deliveries {
            let permit = permits.clone().acquire_owned().await?;
            let manager = manager.clone();
            in_flight.spawn(async move {
                handle(&manager, delivery).await;
                drop(permit);
            });
        }
    }
    // Finish what was started; what was not taken stays in the queue.
    in_flight.close();
    in_flight.wait().await;
    Ok(())
}

async fn handle(manager: &BotManager, delivery: Delivery) {
    let message: DueMessage = match serde_json::from_slice(&delivery.message.payload) {
        Ok(message) => message,
        Err(err) => {
            tracing::error!(error = %err, id = %delivery.message.id, "unreadable job message; dropped");
            let _ = delivery.term().await;
            return;
        }
    };
    let settle = match execute(manager, &message.data).await {
        Ok(settle) => settle,
        Err(err) => {
            tracing::warn!(job_id = %message.data.job_id, error = %format!("{err:#}"), "job failed; it will be retried");
            Settle::Later(Duration::from_millis(UNAVAILABLE_RETRY_MS as u64))
        }
    };
    let settled = match settle {
        Settle::Ack => delivery.ack().await,
        Settle::Later(delay) => delivery.nak(delay).await,
    };
    if let Err(err) = settled {
        // Not settled: the queue delivers it again after the ack deadline, and the
        // dispatch number makes the second run harmless.
        tracing::warn!(error = %format!("{err:#}"), "could not settle a job message");
    }
}

async fn execute(manager: &BotManager, due: &DueData) -> anyhow::Result<Settle> {
    // Unique per execution: two copies of one message in one process must not share it.
    let holder = format!("{}:{}", manager.instance, uuid::Uuid::new_v4());
    let lease_ms = manager.settings.execution.lease_seconds as i64 * 1000;
    if !execution::acquire_lease(
        &manager.db,
        &due.bot_id,
        &holder,
        manager.clock.now_millis(),
        lease_ms,
    )
    .await?
    {
        let busy = manager.settings.execution.busy_retry_ms;
        return Ok(Settle::Later(Duration::from_millis(
            busy + random_below(busy),
        )));
    }
    let released = AtomicBool::new(false);
    let outcome = execute_leased(manager, due, &holder, &released).await;
    if !released.load(Ordering::Relaxed)
        && let Err(err) = execution::release_lease(&manager.db, &due.bot_id, &holder).await
    {
        tracing::warn!(error = %format!("{err:#}"), "could not release a bot lease; it lapses by itself");
    }
    outcome
}

async fn execute_leased(
    manager: &BotManager,
    due: &DueData,
    holder: &str,
    released: &AtomicBool,
) -> anyhow::Result<Settle> {
    let Some(job) =
        execution::load_job(&manager.db, &due.job_id, manager.clock.now_millis()).await?
    else {
        return Ok(Settle::Ack);
    };
    // An older dispatch, or a job already settled: nothing to do.
    if job.dispatches != due.dispatch || !job.state.is_open() {
        return Ok(Settle::Ack);
    }
    let run = Run {
        manager,
        job,
        holder,
        released,
    };
    match run.job.kind {
        JobKind::Publish => run.publish().await,
        JobKind::Delete => run.delete().await,
    }
}

/// One execution of one job under the bot's lease.
struct Run<'a> {
    manager: &'a BotManager,
    job: JobContext,
    /// This execution's hold on the bot's lease, released with the outcome.
    holder: &'a str,
    released: &'a AtomicBool,
}

impl Run<'_> {
    fn owner(&self) -> Owner<'_> {
        Owner {
            user_id: &self.job.owner_id,
            team: self.job.team.as_deref(),
        }
    }

    fn backoff_ms(&self) -> i64 {
        let live = self.manager.live.get();
        let e = &live.execution;
        let exp = e
            .backoff_base_ms
            .saturating_mul(1u64 << self.job.attempts.clamp(0, 20))
            .min(e.backoff_max_ms);
        random_below(exp + 1) as i64
    }

    fn last_attempt(&self) -> bool {
        self.job.attempts + 1 >= i64::from(self.manager.live.get().execution.max_attempts)
    }

    async fn finish(&self, outcome: Outcome) -> anyhow::Result<Settle> {
        // Reported only when written: a job that moved on meanwhile was someone else's.
        let written = execution::finish(
            &self.manager.db,
            &self.job,
            &outcome,
            self.holder,
            self.manager.clock.now_millis(),
        )
        .await?;
        self.released.store(true, Ordering::Relaxed);
        if written {
            self.report(&outcome).await;
        }
        Ok(Settle::Ack)
    }

    /// Events and figures for an outcome.
    async fn report(&self, outcome: &Outcome) {
        let m = self.manager;
        let action = self.job.kind.as_str();
        let details = |extra: Value| {
            let mut d = json!({"bot_id": self.job.bot_id, "post_id": self.job.post_id, "attempts": self.job.attempts});
            if let (Value::Object(d), Value::Object(extra)) = (&mut d, extra) {
                d.extend(extra);
            }
            d
        };
        let (event, result, extra) = match outcome {
            Outcome::Done {
                post_state,
                x_post_id,
            } => {
                if *post_state == PostState::Published {
                    let late =
                        (self.manager.clock.now_millis() - self.job.run_at).max(0) as f64 / 1000.0;
                    m.metrics.lateness.observe(late);
                }
                (
                    format!("post.{}", post_state.as_str()),
                    "ok",
                    json!({"x_post_id": x_post_id}),
                )
            }
            Outcome::Failed { post_state, error } => (
                format!("post.{}", post_state.as_str()),
                if *post_state == PostState::Missed {
                    "missed"
                } else {
                    "failed"
                },
                json!({"error": error}),
            ),
            Outcome::Dead { error, .. } => {
                let body = json!({"job_id": self.job.job_id, "bot_id": self.job.bot_id, "post_id": self.job.post_id, "error": error});
                if let Err(err) = m
                    .queue
                    .publish(
                        DEAD_LETTER_SUBJECT,
                        &format!("{}:dead", self.job.job_id),
                        body.to_string().into(),
                    )
                    .await
                {
                    tracing::warn!(error = %format!("{err:#}"), "could not announce a dead-lettered job");
                }
                (
                    "job.dead_lettered".to_string(),
                    "dead",
                    json!({"error": error}),
                )
            }
            Outcome::Retry {
                error,
                due_at,
                counted,
                post_state,
            } => {
                m.metrics
                    .count(action, if *counted { "retry" } else { "wait" });
                m.activity.debug(
                    "info",
                    &format!("{action} scheduled again"),
                    details(json!({"error": error, "due_at": platform::time_fmt::rfc3339_from_millis(*due_at), "counted": counted, "post_state": post_state.as_str()})),
                );
                return;
            }
            Outcome::Park { .. } => {
                m.metrics.count(action, "parked");
                return;
            }
        };
        m.metrics.count(action, result);
        m.record(&event, "bot-manager", &self.job.post_id, details(extra))
            .await;
    }

    async fn retry_or_dead(&self, post_state: PostState, error: String) -> anyhow::Result<Settle> {
        if self.last_attempt() {
            let post_state = match post_state {
                // Still not known: a person must look before anything is sent again.
                PostState::Unknown => PostState::Unknown,
                // The post is still on X.
                PostState::Deleting => PostState::Published,
                _ => PostState::Failed,
            };
            let error = format!("gave up after {} attempts: {error}", self.job.attempts + 1);
            return self.finish(Outcome::Dead { post_state, error }).await;
        }
        let due_at = self.manager.clock.now_millis() + self.backoff_ms();
        self.finish(Outcome::Retry {
            post_state,
            due_at,
            counted: true,
            error,
        })
        .await
    }

    /// Waits for the endpoint's window when X said it is spent.
    async fn wait_for_window(
        &self,
        endpoint: &str,
        post_state: PostState,
    ) -> anyhow::Result<Option<Settle>> {
        let Some(until) = self.job.blocked_until else {
            return Ok(None);
        };
        let jitter = random_below(self.manager.live.get().execution.rate_limit_jitter_ms) as i64;
        let outcome = Outcome::Retry {
            post_state,
            due_at: until + jitter,
            counted: false,
            error: format!(
                "rate limit of {endpoint} spent until {}",
                platform::time_fmt::rfc3339_from_millis(until)
            ),
        };
        Ok(Some(self.finish(outcome).await?))
    }

    /// X answered 429: run again when the endpoint's window resets (a minute if X did not
    /// say), plus jitter; not an attempt.
    async fn wait_for_reset(
        &self,
        answer: &XAnswer,
        endpoint: &str,
        post_state: PostState,
    ) -> anyhow::Result<Settle> {
        let reset = answer
            .reset_of(endpoint)
            .map(|s| s * 1000)
            .unwrap_or(self.manager.clock.now_millis() + 60_000);
        let jitter = random_below(self.manager.live.get().execution.rate_limit_jitter_ms) as i64;
        self.finish(Outcome::Retry {
            post_state,
            due_at: reset.max(self.manager.clock.now_millis()) + jitter,
            counted: false,
            error: "X answered 429 Too Many Requests".into(),
        })
        .await
    }

    /// A token, or the settle that handles its absence.
    async fn token(&self, waiting_state: PostState) -> anyhow::Result<Result<Secret, Settle>> {
        match self
            .manager
            .tokens
            .access_token(&self.job.bot_id, self.owner())
            .await
        {
            Ok(token) => Ok(Ok(token)),
            Err(TokenError::NeedsReauth(reason)) => {
                Ok(Err(self.needs_reauth(waiting_state, &reason).await?))
            }
            Err(TokenError::Unavailable(reason)) => Ok(Err(self
                .finish(Outcome::Retry {
                    post_state: waiting_state,
                    due_at: self.manager.clock.now_millis() + UNAVAILABLE_RETRY_MS,
                    counted: false,
                    error: reason,
                })
                .await?)),
        }
    }

    /// X refused the bot's tokens for good: the bot waits for a person, and so does the job.
    async fn needs_reauth(&self, waiting_state: PostState, reason: &str) -> anyhow::Result<Settle> {
        // The job waits first, then the bot changes: new credentials (which release waiting
        // jobs) can only arrive after the bot shows needs_reauth, by which time this job is
        // among the waiting ones.
        let settle = self
            .finish(Outcome::Park {
                post_state: waiting_state,
            })
            .await?;
        crate::ops::bots::mark_needs_reauth(self.manager, &self.job.bot_id, reason).await?;
        Ok(settle)
    }

    /// Parks the job while the bot cannot publish. If the bot was resumed meanwhile (after
    /// this job read its status, before it parked), the resume missed this job: release it.
    async fn park(&self, post_state: PostState) -> anyhow::Result<Settle> {
        let settle = self.finish(Outcome::Park { post_state }).await?;
        let current = bots::get(&self.manager.db, &self.job.bot_id).await?;
        if current.is_some_and(|bot| bot.status == BotStatus::Active) {
            self.manager.release_waiting(&self.job.bot_id).await?;
        }
        Ok(settle)
    }

    /// Calls X, refreshing the token once if X says it is no longer valid.
    async fn call_with_refresh<F, Fut>(
        &self,
        token: Secret,
        call: F,
    ) -> Result<(XAnswer, bool), XCallError>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<XAnswer, XCallError>>,
    {
        let answer = call(token.clone()).await?;
        if answer.status != 401 {
            return Ok((answer, false));
        }
        match self
            .manager
            .tokens
            .refresh(&self.job.bot_id, self.owner(), Some(&token))
            .await
        {
            Ok(fresh) => {
                self.manager.metrics.count("refresh", "ok");
                self.manager
                    .record(
                        "bot.token_refreshed",
                        "bot-manager",
                        &self.job.bot_id,
                        json!({}),
                    )
                    .await;
                Ok((call(fresh).await?, true))
            }
            // The refresh itself failed: report the 401, which leads to needs_reauth.
            Err(err) => {
                tracing::info!(bot_id = %self.job.bot_id, error = %err, "token refresh failed");
                Ok((answer, true))
            }
        }
    }

    async fn save_windows(&self, answer: &XAnswer) {
        if let Err(err) =
            execution::save_windows(&self.manager.db, &self.job.bot_id, &answer.windows).await
        {
            tracing::warn!(error = %format!("{err:#}"), "could not save rate-limit state");
        }
    }

    /// The bot's X user id, asked from X once and kept on the bot.
    async fn x_user_id(&self, token: &Secret) -> Result<Option<String>, XCallError> {
        if let Some(id) = &self.job.x_user_id {
            return Ok(Some(id.clone()));
        }
        let answer = self.manager.x.me(token).await?;
        self.save_windows(&answer).await;
        let id = answer
            .body
            .pointer("/data/id")
            .and_then(Value::as_str)
            .map(String::from);
        if let Some(id) = &id
            && let Err(err) = bots::set_x_user_id(&self.manager.db, &self.job.bot_id, id).await
        {
            // Asked again next time; nothing depends on keeping it now.
            tracing::warn!(error = %format!("{err:#}"), "could not keep the bot's X user id");
        }
        Ok(id)
    }

    /// Whether an earlier send created the post: its text among the bot's latest posts
    /// since that send. `Ok(None)`: not there.
    async fn find_sent(&self, token: &Secret) -> Result<Option<String>, XCallError> {
        let Some(user_id) = self.x_user_id(token).await? else {
            return Err(XCallError::NoAnswer("X did not say who the bot is".into()));
        };
        let answer = self.manager.x.own_posts(token, &user_id).await?;
        self.save_windows(&answer).await;
        if !answer.is_success() {
            return Err(XCallError::NoAnswer(format!(
                "reading own posts answered {}",
                answer.status
            )));
        }
        let wanted = fingerprint(&self.job.text);
        let since = self.job.sent_at.unwrap_or(self.job.run_at) / 1000 - 60;
        let found = answer
            .body
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|post| {
                post.get("created_at")
                    .and_then(Value::as_str)
                    .and_then(|t| {
                        time::OffsetDateTime::parse(
                            t,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .is_none_or(|t| t.unix_timestamp() >= since)
            })
            .find(|post| {
                post.get("text")
                    .and_then(Value::as_str)
                    .is_some_and(|t| fingerprint(t) == wanted)
            })
            .and_then(|post| post.get("id").and_then(Value::as_str).map(String::from));
        self.manager
            .metrics
            .count("verify", if found.is_some() { "found" } else { "absent" });
        Ok(found)
    }

    async fn publish(&self) -> anyhow::Result<Settle> {
        let job = &self.job;
        let now = self.manager.clock.now_millis();
        if !matches!(
            job.post_state,
            PostState::Scheduled | PostState::Publishing | PostState::Unknown
        ) {
            execution::retire(&self.manager.db, &job.job_id, job.dispatches, now).await?;
            return Ok(Settle::Ack);
        }
        // What the post returns to while it waits: unknown stays unknown until verified.
        let waiting = if job.post_state == PostState::Unknown {
            PostState::Unknown
        } else {
            PostState::Scheduled
        };
        if job.bot_status != BotStatus::Active {
            return self.park(waiting).await;
        }
        let grace_ms = self.manager.live.get().grace_seconds as i64 * 1000;
        if job.post_state == PostState::Scheduled
            && job.attempts == 0
            && job.sent_at.is_none()
            && now > job.run_at + grace_ms
        {
            let error = format!("not published within {} s of its run_at", grace_ms / 1000);
            return self
                .finish(Outcome::Failed {
                    post_state: PostState::Missed,
                    error,
                })
                .await;
        }
        if let Some(settle) = self.wait_for_window("tweets.create", waiting).await? {
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
                Ok(Some(x_post_id)) => {
                    return self
                        .finish(Outcome::Done {
                            post_state: PostState::Published,
                            x_post_id: Some(x_post_id),
                        })
                        .await;
                }
                Ok(None) => {}
                Err(err) => {
                    return self
                        .retry_or_dead(PostState::Unknown, format!("verifying: {err}"))
                        .await;
                }
            }
        }
        if !execution::mark_sending(
            &self.manager.db,
            job,
            PostState::Publishing,
            self.manager.clock.now_millis(),
        )
        .await?
        {
            return Ok(Settle::Ack);
        }
        let x = &self.manager.x;
        let sent = self
            .call_with_refresh(token, |t| async move {
                x.create_post(&t, &job.text, &job.media_ids).await
            })
            .await;
        let (answer, refreshed) = match sent {
            Ok(answer) => answer,
            Err(XCallError::NotSent(err)) => {
                return self
                    .retry_or_dead(
                        PostState::Scheduled,
                        format!("X could not be reached: {err}"),
                    )
                    .await;
            }
            Err(XCallError::NoAnswer(err)) => {
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
                    .record(
                        "post.unknown",
                        "bot-manager",
                        &job.post_id,
                        json!({"bot_id": job.bot_id}),
                    )
                    .await;
                return self.finish(outcome).await;
            }
        };
        self.save_windows(&answer).await;
        self.classify_publish(answer, refreshed).await
    }

    async fn classify_publish(&self, answer: XAnswer, refreshed: bool) -> anyhow::Result<Settle> {
        let job = &self.job;
        match answer.status {
            200..=299 => {
                let id = answer
                    .body
                    .pointer("/data/id")
                    .and_then(Value::as_str)
                    .map(String::from);
                self.finish(Outcome::Done {
                    post_state: PostState::Published,
                    x_post_id: id,
                })
                .await
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
                self.wait_for_reset(&answer, "tweets.create", PostState::Scheduled)
                    .await
            }
            status if status >= 500 => {
                self.retry_or_dead(PostState::Scheduled, format!("X answered {status}"))
                    .await
            }
            _ => {
                let problem = answer.problem();
                // A duplicate after an earlier attempt may be our own first send arriving late.
                if problem.is_duplicate_content() && job.attempts > 0 {
                    let token = self
                        .manager
                        .tokens
                        .access_token(&job.bot_id, self.owner())
                        .await;
                    if let Ok(token) = token
                        && let Ok(Some(id)) = self.find_sent(&token).await
                    {
                        return self
                            .finish(Outcome::Done {
                                post_state: PostState::Published,
                                x_post_id: Some(id),
                            })
                            .await;
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
    }

    async fn delete(&self) -> anyhow::Result<Settle> {
        let job = &self.job;
        if job.post_state != PostState::Deleting {
            execution::retire(
                &self.manager.db,
                &job.job_id,
                job.dispatches,
                self.manager.clock.now_millis(),
            )
            .await?;
            return Ok(Settle::Ack);
        }
        if job.bot_status != BotStatus::Active {
            return self.park(PostState::Deleting).await;
        }
        if let Some(settle) = self
            .wait_for_window("tweets.delete", PostState::Deleting)
            .await?
        {
            return Ok(settle);
        }
        let Some(x_post_id) = job.x_post_id.clone() else {
            return self
                .finish(Outcome::Done {
                    post_state: PostState::Deleted,
                    x_post_id: None,
                })
                .await;
        };
        let token = match self.token(PostState::Deleting).await? {
            Ok(token) => token,
            Err(settle) => return Ok(settle),
        };
        if !execution::mark_sending(
            &self.manager.db,
            job,
            PostState::Deleting,
            self.manager.clock.now_millis(),
        )
        .await?
        {
            return Ok(Settle::Ack);
        }
        let x = &self.manager.x;
        let id = x_post_id.as_str();
        let answer = match self
            .call_with_refresh(token, |t| async move { x.delete_post(&t, id).await })
            .await
        {
            Ok((answer, _)) => answer,
            // Deleting twice is harmless: retry whether or not it was sent.
            Err(err) => {
                return self
                    .retry_or_dead(PostState::Deleting, err.to_string())
                    .await;
            }
        };
        self.save_windows(&answer).await;
        match answer.status {
            200..=299 | 404 => {
                self.finish(Outcome::Done {
                    post_state: PostState::Deleted,
                    x_post_id: None,
                })
                .await
            }
            401 => {
                self.needs_reauth(PostState::Deleting, "X refused the token")
                    .await
            }
            429 => {
                self.wait_for_reset(&answer, "tweets.delete", PostState::Deleting)
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
