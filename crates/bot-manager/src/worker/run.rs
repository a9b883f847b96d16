//! What every execution of a job does, whatever it does on X: settling an outcome and
//! reporting it, backing off, waiting for X's rate windows, getting the bot's token (and
//! refreshing it once), parking while the bot cannot act, and finding an earlier send.

use std::sync::atomic::Ordering;

use platform::config::Secret;
use serde_json::{Value, json};

use super::{DEAD_LETTER_SUBJECT, Run, Settle, UNAVAILABLE_RETRY_MS};
use crate::fingerprint::fingerprint;
use crate::metering;
use crate::model::{BotStatus, PostState};
use crate::service::random_below;
use crate::store::bots;
use crate::store::execution::{self, Outcome};
use crate::store::posts::JobKind;
use crate::store::usage::Charge;
use crate::tokens::{Owner, TokenError};
use crate::xapi::{XAnswer, XCallError};

impl Run<'_> {
    pub(super) fn owner(&self) -> Owner<'_> {
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

    pub(super) fn last_attempt(&self) -> bool {
        self.job.attempts + 1 >= i64::from(self.manager.live.get().execution.max_attempts)
    }

    pub(super) async fn finish(&self, outcome: Outcome) -> anyhow::Result<Settle> {
        // Billed with the outcome, in its commit: a use is metered exactly once.
        let charge = self.charge(&outcome);
        // Reported only when written: a job that moved on meanwhile was someone else's.
        let written = execution::finish(
            &self.manager.db,
            &self.job,
            (&outcome, charge.as_ref()),
            self.holder,
            self.manager.clock.now_millis(),
        )
        .await?;
        self.released.store(true, Ordering::Relaxed);
        if written {
            if let Some(charge) = &charge {
                self.manager.metrics.bill(charge);
                let payers = crate::ops::budgets::Payers {
                    team: self.job.team.as_deref(),
                    app: &self.job.app,
                };
                if let Err(err) = crate::ops::budgets::after_billing(self.manager, payers).await {
                    tracing::warn!(error = %format!("{err:#}"), "budget check after billing failed");
                }
            }
            self.report(&outcome).await;
            if self.job.next_part_post_id.is_some()
                && matches!(
                    outcome,
                    Outcome::Done {
                        post_state: PostState::Published,
                        ..
                    }
                )
            {
                // The thread's next part was released in that commit: send it now rather
                // than at the relay's next look.
                self.manager.relay_wake.notify_one();
            }
        }
        Ok(Settle::Ack)
    }

    /// What X bills for an outcome: a post it created (found again after a lost answer, too),
    /// a post it deleted; nothing else.
    fn charge(&self, outcome: &Outcome) -> Option<Charge> {
        let Outcome::Done { post_state, .. } = outcome else {
            return None;
        };
        let kind = match (self.job.kind, post_state) {
            (JobKind::Publish, PostState::Published) => metering::post_kind(&self.job.text),
            (JobKind::Delete, PostState::Deleted) => "delete",
            _ => return None,
        };
        Some(metering::charge(&self.manager.live.get().pricing, kind, 1))
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
                match post_state {
                    PostState::Missed => "missed",
                    // Held back for review, nothing sent.
                    PostState::PendingReview => "held",
                    _ => "failed",
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
        m.record_for(&event, &self.job.bot_id, &self.job.post_id, details(extra))
            .await;
    }

    pub(super) async fn retry_or_dead(
        &self,
        post_state: PostState,
        error: String,
    ) -> anyhow::Result<Settle> {
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
    pub(super) async fn wait_for_window(
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

    /// X answered 429. A spent rate window: run again when it resets (a minute if X did not
    /// say). A spent usage cap: the window's reset does not help, so run again when the cap's
    /// period starts over (the next UTC day or month). Plus jitter either way; not an attempt.
    pub(super) async fn wait_for_reset(
        &self,
        answer: &XAnswer,
        endpoint: &str,
        post_state: PostState,
    ) -> anyhow::Result<Settle> {
        let now = self.manager.clock.now_millis();
        let problem = answer.problem();
        let (reset, error) = if problem.is_usage_capped() {
            self.manager.metrics.count("usage_cap", "hit");
            let period = answer.body["period"].as_str().unwrap_or("Monthly");
            let reset = next_period_start(now, period);
            let error = format!(
                "X's {} usage cap is spent; publishing resumes at {}",
                period.to_lowercase(),
                platform::time_fmt::rfc3339_from_millis(reset)
            );
            // A post that could only go out past its grace is missed now, saying why,
            // rather than weeks late or silently at the turn of the month.
            let grace_ms = self.manager.live.get().grace_seconds as i64 * 1000;
            if self.job.kind == JobKind::Publish && reset > self.job.run_at + grace_ms {
                let error = format!("{error}, later than {} s after its run_at", grace_ms / 1000);
                let missed = Outcome::Failed {
                    post_state: PostState::Missed,
                    error,
                };
                return self.finish(missed).await;
            }
            (reset, error)
        } else {
            let reset = answer
                .reset_of(endpoint)
                .map(|s| s * 1000)
                .unwrap_or(now + 60_000);
            (reset, "X answered 429 Too Many Requests".to_string())
        };
        let jitter = random_below(self.manager.live.get().execution.rate_limit_jitter_ms) as i64;
        self.finish(Outcome::Retry {
            post_state,
            due_at: reset.max(now) + jitter,
            counted: false,
            error,
        })
        .await
    }

    /// A token, or the settle that handles its absence.
    pub(super) async fn token(
        &self,
        waiting_state: PostState,
    ) -> anyhow::Result<Result<Secret, Settle>> {
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
    pub(super) async fn needs_reauth(
        &self,
        waiting_state: PostState,
        reason: &str,
    ) -> anyhow::Result<Settle> {
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
    pub(super) async fn park(&self, post_state: PostState) -> anyhow::Result<Settle> {
        let settle = self.finish(Outcome::Park { post_state }).await?;
        let current = bots::get(&self.manager.db, &self.job.bot_id).await?;
        if current.is_some_and(|bot| bot.status == BotStatus::Active) {
            self.manager.release_waiting(&self.job.bot_id).await?;
        }
        Ok(settle)
    }

    /// Calls X, refreshing the token once if X says it is no longer valid.
    pub(super) async fn call_with_refresh<F, Fut>(
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
                    .record_for(
                        "bot.token_refreshed",
                        &self.job.bot_id,
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

    pub(super) async fn save_windows(&self, answer: &XAnswer) {
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
    pub(super) async fn find_sent(&self, token: &Secret) -> Result<Option<String>, XCallError> {
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
}

/// When a usage cap's period (`Daily` or `Monthly`, UTC) after `now_ms` starts, in ms.
fn next_period_start(now_ms: i64, period: &str) -> i64 {
    let now = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let tomorrow = now.date().next_day().unwrap_or(now.date());
    let start = if period == "Daily" {
        tomorrow
    } else {
        let (year, month) = match now.month() {
            time::Month::December => (now.year() + 1, time::Month::January),
            month => (now.year(), month.next()),
        };
        time::Date::from_calendar_date(year, month, 1).unwrap_or(tomorrow)
    };
    start.midnight().assume_utc().unix_timestamp() * 1000
}

#[cfg(test)]
mod tests {
    use super::next_period_start;

    #[test]
    fn a_usage_cap_resets_at_the_next_utc_day_or_month() {
        let at = |s: &str| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .unwrap()
                .unix_timestamp()
                * 1000
        };
        let now = at("2031-03-14T09:26:53Z");
        assert_eq!(
            next_period_start(now, "Monthly"),
            at("2031-04-01T00:00:00Z")
        );
        assert_eq!(next_period_start(now, "Daily"), at("2031-03-15T00:00:00Z"));
        let december = at("2031-12-31T23:59:59Z");
        assert_eq!(
            next_period_start(december, "Monthly"),
            at("2032-01-01T00:00:00Z")
        );
    }
}
