//! The embedded queue: durable, in-process, backed by one SQLite file.
//!
//! Every state change (publish, hand-out, ack, nak, term) is a committed SQLite write, so a
//! crash loses nothing that was acknowledged as published, and an outstanding delivery is
//! handed out again after its ack deadline, also across a restart. One async mutex
//! serialises the queue's writes: SQLite has one writer anyway, and the mutex keeps
//! consumers sharing a name from taking the same message.
//!
//! The queue holds work, not history: a message every matching durable consumer has settled
//! loses its payload at once and is deleted once the duplicate window has passed (its id
//! still dedupes until then), and the file gives the space back (incremental vacuum). A
//! message no consumer matches (a fan-out notice) is kept for `max_age`, as JetStream keeps
//! what no consumer has taken.

use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::Row;
use tokio::sync::{Mutex, Notify, broadcast};

use super::subject::{matches, validate_filter, validate_publish};
use super::{ConsumerSpec, Delivery, Message, Published, Queue, Settle, StreamUsage, WorkConsumer};
use crate::config::{DatabaseSettings, QueueKind, QueueSettings};
use crate::db::{Database, MigrationStep, Migrations};

/// The queue's own time (ack deadlines, delays, message age) is real time, as a NATS
/// server's is: it measures waits, it does not decide anything a service's clock decides.
fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The embedded queue's migrations (a backup checks a restored queue file against them).
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &[
        MigrationStep {
            version: 1,
            description: "embedded queue",
            sql: include_str!("../../migrations/queue/0001_embedded_queue.sql"),
        },
        MigrationStep {
            version: 2,
            description: "settled messages",
            sql: include_str!("../../migrations/queue/0002_settled_messages.sql"),
        },
    ],
    postgres: &[],
};

/// How long an idle consumer sleeps between looks when nothing wakes it.
const IDLE_POLL: Duration = Duration::from_secs(1);
const TRIM_EVERY: Duration = Duration::from_secs(10);
/// Messages one trim looks at per pass (each pass holds the write lock briefly).
const TRIM_BATCH: i64 = 2_000;
const FANOUT_CAPACITY: usize = 1024;
const SCAN_BATCH: i64 = 128;

struct Inner {
    db: Database,
    write_lock: Mutex<()>,
    wake: Notify,
    fanout: broadcast::Sender<Message>,
    duplicate_window_ms: i64,
    max_age_ms: i64,
    /// `queue.stream_max_msgs` and `stream_max_bytes`, for the whole file.
    max_messages: u64,
    max_bytes: u64,
    /// Set by the trim while the file is at a limit: work and events are refused (they wait
    /// where they came from), notices still go in.
    full: std::sync::atomic::AtomicBool,
}

/// What one look at the queue found.
enum Look {
    Found(Delivery),
    /// Something was dropped or skipped: look again.
    Again,
    Nothing,
}

/// The SQLite-backed queue of the all-in-one process.
#[derive(Clone)]
pub struct EmbeddedQueue {
    inner: Arc<Inner>,
}

impl EmbeddedQueue {
    pub async fn open(settings: &QueueSettings) -> anyhow::Result<Self> {
        let db = Database::connect(
            "queue",
            &DatabaseSettings {
                path: settings.path.clone(),
                url: None,
                schema: None,
                max_connections: 4,
                ..DatabaseSettings::default()
            },
        )
        .await
        .context("cannot open the embedded queue (queue.path)")?;
        db.migrate(&MIGRATIONS).await?;
        db.reclaim_space_from_now_on()
            .await
            .context("cannot turn on incremental vacuum for the embedded queue")?;
        let inner = Arc::new(Inner {
            db,
            write_lock: Mutex::new(()),
            wake: Notify::new(),
            fanout: broadcast::channel(FANOUT_CAPACITY).0,
            duplicate_window_ms: (settings.duplicate_window * 1000) as i64,
            max_age_ms: (settings.max_age * 1000) as i64,
            max_messages: settings.stream_max_msgs,
            max_bytes: settings.stream_max_bytes,
            full: std::sync::atomic::AtomicBool::new(false),
        });
        inner.note_fullness().await?;
        tokio::spawn(trim_periodically(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// Deletes what the queue no longer needs — messages every matching consumer settled
    /// (past the duplicate window), messages older than `max_age` and the deliveries that
    /// pointed at them — and gives the file's free pages back. How many messages went.
    pub async fn trim(&self) -> anyhow::Result<u64> {
        self.inner.trim().await
    }

    /// Messages held, and the queue file's size in bytes.
    pub async fn stored(&self) -> anyhow::Result<(u64, u64)> {
        self.inner.stored().await
    }
}

impl Inner {
    async fn stored(&self) -> anyhow::Result<(u64, u64)> {
        let pool = self.db.pool();
        let messages: i64 = sqlx::query("SELECT COUNT(*) AS n FROM eq_messages WHERE settled = 0")
            .fetch_one(pool)
            .await?
            .try_get("n")?;
        let pages: i64 = sqlx::query("PRAGMA page_count")
            .fetch_one(pool)
            .await?
            .try_get(0)?;
        let page_size: i64 = sqlx::query("PRAGMA page_size")
            .fetch_one(pool)
            .await?
            .try_get(0)?;
        Ok((messages as u64, (pages * page_size) as u64))
    }

    /// Whether the file is at a limit now, remembered for `publish`.
    async fn note_fullness(&self) -> anyhow::Result<()> {
        let (messages, bytes) = self.stored().await?;
        let full = messages >= self.max_messages || bytes >= self.max_bytes;
        let was = self.full.swap(full, std::sync::atomic::Ordering::Relaxed);
        if full && !was {
            tracing::warn!(
                messages,
                bytes,
                max_messages = self.max_messages,
                max_bytes = self.max_bytes,
                "the embedded queue is full: work and events wait where they came from"
            );
        }
        Ok(())
    }
}

async fn trim_periodically(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(TRIM_EVERY).await;
        let Some(inner) = inner.upgrade() else { return };
        if let Err(err) = inner.trim().await {
            tracing::warn!(error = %format!("{err:#}"), "embedded queue trim failed");
        }
    }
}

impl Inner {
    async fn trim(&self) -> anyhow::Result<u64> {
        let mut removed = self.trim_settled().await?;
        let _guard = self.write_lock.lock().await;
        let cutoff = now_millis() - self.max_age_ms;
        sqlx::query("DELETE FROM eq_messages WHERE settled = 1 AND published_at < $1")
            .bind(now_millis() - self.duplicate_window_ms)
            .execute(self.db.pool())
            .await?;
        removed += sqlx::query("DELETE FROM eq_messages WHERE published_at < $1")
            .bind(cutoff)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM eq_deliveries WHERE seq NOT IN (SELECT seq FROM eq_messages)")
            .execute(self.db.pool())
            .await?;
        if removed > 0 {
            // Free pages back to the file system.
            sqlx::query("PRAGMA incremental_vacuum")
                .execute(self.db.pool())
                .await?;
        }
        drop(_guard);
        self.note_fullness().await?;
        Ok(removed)
    }

    /// Lets go, a batch at a time, of the messages that match at least one consumer and
    /// that every matching consumer has passed with its cursor and holds no delivery of:
    /// deleted when past the duplicate window, else emptied to their id and time (deleted by
    /// a later trim). Each batch under the write lock, so no hand-out or settlement
    /// interleaves with its reads. How many were let go.
    async fn trim_settled(&self) -> anyhow::Result<u64> {
        let mut removed = 0;
        let mut after = 0i64;
        loop {
            let _guard = self.write_lock.lock().await;
            let pool = self.db.pool();
            let consumers: Vec<(String, String, i64)> =
                sqlx::query("SELECT name, filter, cursor FROM eq_consumers")
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|row| {
                        Ok((
                            row.try_get("name")?,
                            row.try_get("filter")?,
                            row.try_get("cursor")?,
                        ))
                    })
                    .collect::<anyhow::Result<_>>()?;
            let Some(furthest) = consumers.iter().map(|(_, _, cursor)| *cursor).max() else {
                return Ok(removed);
            };
            let rows = sqlx::query(
                "SELECT seq, subject, published_at FROM eq_messages WHERE seq > $1 AND seq <= $2 \
                 AND settled = 0 ORDER BY seq LIMIT $3",
            )
            .bind(after)
            .bind(furthest)
            .bind(TRIM_BATCH)
            .fetch_all(pool)
            .await?;
            let window_start = now_millis() - self.duplicate_window_ms;
            let Some(last) = rows.last() else {
                return Ok(removed);
            };
            let last: i64 = last.try_get("seq")?;
            let held: std::collections::HashSet<(String, i64)> =
                sqlx::query("SELECT consumer, seq FROM eq_deliveries WHERE seq > $1 AND seq <= $2")
                    .bind(after)
                    .bind(last)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|row| Ok((row.try_get("consumer")?, row.try_get("seq")?)))
                    .collect::<anyhow::Result<_>>()?;
            let (mut expired, mut recent) = (Vec::new(), Vec::new());
            for row in &rows {
                let seq: i64 = row.try_get("seq")?;
                let subject: String = row.try_get("subject")?;
                let mut matching = consumers
                    .iter()
                    .filter(|(_, filter, _)| matches(filter, &subject))
                    .peekable();
                let any = matching.peek().is_some();
                if any
                    && matching.all(|(name, _, cursor)| {
                        *cursor >= seq && !held.contains(&(name.clone(), seq))
                    })
                {
                    match row.try_get::<i64, _>("published_at")? < window_start {
                        true => expired.push(seq),
                        false => recent.push(seq),
                    }
                }
            }
            removed += self
                .by_seq("DELETE FROM eq_messages WHERE seq IN", &expired)
                .await?;
            removed += self
                .by_seq(
                    "UPDATE eq_messages SET payload = x'', settled = 1 WHERE seq IN",
                    &recent,
                )
                .await?;
            after = last;
        }
    }

    /// Runs `statement` (ending in `seq IN`) over `seqs`, 500 at a time; the rows it
    /// changed.
    async fn by_seq(&self, statement: &str, seqs: &[i64]) -> anyhow::Result<u64> {
        let mut changed = 0;
        for chunk in seqs.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("{statement} ({})", placeholders.join(", "));
            let mut query = crate::db::one_off_query(sql);
            for seq in chunk {
                query = query.bind(*seq);
            }
            changed += query.execute(self.db.pool()).await?.rows_affected();
        }
        Ok(changed)
    }

    /// Hands out the next message for `spec`: first a delivery that came due again, then
    /// the next new matching message. `None` when there is nothing to hand out now.
    async fn take(self: &Arc<Self>, spec: &ConsumerSpec) -> anyhow::Result<Option<Delivery>> {
        let _guard = self.write_lock.lock().await;
        loop {
            let now = now_millis();
            match self.redeliver_due(spec, now).await? {
                Look::Found(delivery) => return Ok(Some(delivery)),
                Look::Again => continue,
                Look::Nothing => {}
            }
            match self.hand_out_next(spec, now).await? {
                Look::Found(delivery) => return Ok(Some(delivery)),
                Look::Again => continue,
                Look::Nothing => return Ok(None),
            }
        }
    }

    /// The consumer's oldest delivery whose ack deadline passed, handed out again — unless it
    /// used up its deliveries or its message was trimmed, and then it is dropped.
    async fn redeliver_due(
        self: &Arc<Self>,
        spec: &ConsumerSpec,
        now: i64,
    ) -> anyhow::Result<Look> {
        let due = sqlx::query(
            "SELECT seq, attempts FROM eq_deliveries WHERE consumer = $1 AND due_at <= $2 \
             ORDER BY due_at, seq LIMIT 1",
        )
        .bind(&spec.name)
        .bind(now)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = due else {
            return Ok(Look::Nothing);
        };
        let seq: i64 = row.try_get("seq")?;
        let attempts: i64 = row.try_get("attempts")?;
        let exhausted = spec.max_deliver > 0 && attempts >= i64::from(spec.max_deliver);
        let message = match self.message(seq).await? {
            Some(message) if !exhausted => message,
            _ => {
                if exhausted {
                    tracing::warn!(consumer = %spec.name, seq, attempts, "message given up after its last delivery");
                }
                self.forget(&spec.name, seq).await?;
                return Ok(Look::Again);
            }
        };
        sqlx::query(
            "UPDATE eq_deliveries SET attempts = attempts + 1, due_at = $1 \
             WHERE consumer = $2 AND seq = $3",
        )
        .bind(now + spec.ack_wait.as_millis() as i64)
        .bind(&spec.name)
        .bind(seq)
        .execute(self.db.pool())
        .await?;
        Ok(Look::Found(self.delivery(
            spec,
            seq,
            message,
            attempts as u64 + 1,
        )))
    }

    /// The first message past the consumer's cursor that matches its filter, in one batch;
    /// the cursor moves past what was scanned either way.
    async fn hand_out_next(
        self: &Arc<Self>,
        spec: &ConsumerSpec,
        now: i64,
    ) -> anyhow::Result<Look> {
        let pool = self.db.pool();
        let cursor: i64 = sqlx::query("SELECT cursor FROM eq_consumers WHERE name = $1")
            .bind(&spec.name)
            .fetch_one(pool)
            .await?
            .try_get("cursor")?;
        let rows = sqlx::query(
            "SELECT seq, subject, msg_id, payload FROM eq_messages WHERE seq > $1 \
             AND settled = 0 ORDER BY seq LIMIT $2",
        )
        .bind(cursor)
        .bind(SCAN_BATCH)
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(Look::Nothing);
        };
        let mut new_cursor: i64 = last.try_get("seq")?;
        let mut found = None;
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let subject: String = row.try_get("subject")?;
            if matches(&spec.filter, &subject) {
                let payload: Vec<u8> = row.try_get("payload")?;
                let message = Message {
                    subject,
                    id: row.try_get("msg_id")?,
                    payload: Bytes::from(payload),
                };
                found = Some((seq, message));
                new_cursor = seq;
                break;
            }
        }
        // The hand-out and the cursor move commit together: after a crash the message is
        // either still ahead of the cursor or an outstanding delivery, never both.
        let mut tx = pool.begin().await?;
        if let Some((seq, _)) = &found {
            sqlx::query(
                "INSERT INTO eq_deliveries (consumer, seq, attempts, due_at) VALUES ($1, $2, 1, $3)",
            )
            .bind(&spec.name)
            .bind(*seq)
            .bind(now + spec.ack_wait.as_millis() as i64)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE eq_consumers SET cursor = $1 WHERE name = $2")
            .bind(new_cursor)
            .bind(&spec.name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(match found {
            Some((seq, message)) => Look::Found(self.delivery(spec, seq, message, 1)),
            None => Look::Again,
        })
    }

    async fn message(&self, seq: i64) -> anyhow::Result<Option<Message>> {
        let row = sqlx::query("SELECT subject, msg_id, payload FROM eq_messages WHERE seq = $1")
            .bind(seq)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|row| {
            let payload: Vec<u8> = row.try_get("payload")?;
            Ok(Message {
                subject: row.try_get("subject")?,
                id: row.try_get("msg_id")?,
                payload: Bytes::from(payload),
            })
        })
        .transpose()
    }

    async fn forget(&self, consumer: &str, seq: i64) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM eq_deliveries WHERE consumer = $1 AND seq = $2")
            .bind(consumer)
            .bind(seq)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    fn delivery(
        self: &Arc<Self>,
        spec: &ConsumerSpec,
        seq: i64,
        message: Message,
        attempt: u64,
    ) -> Delivery {
        Delivery::new(
            message,
            attempt,
            Box::new(EmbeddedSettle {
                inner: self.clone(),
                consumer: spec.name.clone(),
                seq,
            }),
        )
    }

    /// How long until the consumer's earliest outstanding delivery comes due.
    async fn next_due_in(&self, consumer: &str) -> anyhow::Result<Option<Duration>> {
        let row = sqlx::query("SELECT MIN(due_at) AS due FROM eq_deliveries WHERE consumer = $1")
            .bind(consumer)
            .fetch_one(self.db.pool())
            .await?;
        let due: Option<i64> = row.try_get("due")?;
        Ok(due.map(|due| Duration::from_millis((due - now_millis()).max(0) as u64)))
    }
}

struct EmbeddedSettle {
    inner: Arc<Inner>,
    consumer: String,
    seq: i64,
}

#[async_trait]
impl Settle for EmbeddedSettle {
    async fn ack(&self) -> anyhow::Result<()> {
        let _guard = self.inner.write_lock.lock().await;
        self.inner.forget(&self.consumer, self.seq).await
    }

    async fn nak(&self, delay: Duration) -> anyhow::Result<()> {
        {
            let _guard = self.inner.write_lock.lock().await;
            sqlx::query("UPDATE eq_deliveries SET due_at = $1 WHERE consumer = $2 AND seq = $3")
                .bind(now_millis() + delay.as_millis() as i64)
                .bind(&self.consumer)
                .bind(self.seq)
                .execute(self.inner.db.pool())
                .await?;
        }
        self.inner.wake.notify_waiters();
        Ok(())
    }

    async fn term(&self) -> anyhow::Result<()> {
        let _guard = self.inner.write_lock.lock().await;
        self.inner.forget(&self.consumer, self.seq).await
    }
}

struct EmbeddedConsumer {
    inner: Arc<Inner>,
    spec: ConsumerSpec,
}

#[async_trait]
impl WorkConsumer for EmbeddedConsumer {
    async fn next(&mut self) -> anyhow::Result<Delivery> {
        loop {
            // Registered before looking, so a publish between the look and the wait wakes us.
            let woken = self.inner.wake.notified();
            if let Some(delivery) = self.inner.take(&self.spec).await? {
                return Ok(delivery);
            }
            let wait = self
                .inner
                .next_due_in(&self.spec.name)
                .await?
                .map_or(IDLE_POLL, |due| due.min(IDLE_POLL));
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Takes what is ready, waiting up to `linger` for more. Only the waiting is ever cut
    /// short, never a hand-out: a hand-out cancelled after it committed would strand its
    /// message until the ack deadline.
    async fn next_batch(
        &mut self,
        max: usize,
        max_bytes: usize,
        linger: Duration,
    ) -> anyhow::Result<Vec<Delivery>> {
        let mut batch = vec![self.next().await?];
        let mut bytes = super::payload_bytes(&batch);
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max && bytes < max_bytes {
            let woken = self.inner.wake.notified();
            match self.inner.take(&self.spec).await? {
                Some(delivery) => {
                    bytes += delivery.message.payload.len();
                    batch.push(delivery);
                }
                None => {
                    if tokio::time::timeout_at(deadline, woken).await.is_err() {
                        break;
                    }
                }
            }
        }
        Ok(batch)
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn publish(
        &self,
        subject: &str,
        dedupe_id: &str,
        payload: Bytes,
    ) -> anyhow::Result<Published> {
        validate_publish(subject, dedupe_id)?;
        let inner = &self.inner;
        if inner.full.load(std::sync::atomic::Ordering::Relaxed)
            && !super::is_notice_root(super::subject::root(subject))
        {
            anyhow::bail!(
                "the embedded queue is full (queue.stream_max_msgs {}, stream_max_bytes {}): the message waits where it came from",
                inner.max_messages,
                inner.max_bytes
            );
        }
        let published = {
            let _guard = inner.write_lock.lock().await;
            let now = now_millis();
            let earlier = sqlx::query(
                "SELECT seq FROM eq_messages WHERE msg_id = $1 AND published_at >= $2 ORDER BY seq LIMIT 1",
            )
            .bind(dedupe_id)
            .bind(now - inner.duplicate_window_ms)
            .fetch_optional(inner.db.pool())
            .await?;
            if let Some(row) = earlier {
                let seq: i64 = row.try_get("seq")?;
                return Ok(Published {
                    sequence: seq as u64,
                    duplicate: true,
                });
            }
            let row = sqlx::query(
                "INSERT INTO eq_messages (subject, msg_id, payload, published_at) \
                 VALUES ($1, $2, $3, $4) RETURNING seq",
            )
            .bind(subject)
            .bind(dedupe_id)
            .bind(payload.to_vec())
            .bind(now)
            .fetch_one(inner.db.pool())
            .await?;
            let seq: i64 = row.try_get("seq")?;
            Published {
                sequence: seq as u64,
                duplicate: false,
            }
        };
        inner.wake.notify_waiters();
        // No live subscriber is fine: fan-out is for whoever listens now.
        let _ = inner.fanout.send(Message {
            subject: subject.to_string(),
            id: dedupe_id.to_string(),
            payload,
        });
        Ok(published)
    }

    async fn consumer(&self, spec: ConsumerSpec) -> anyhow::Result<Box<dyn WorkConsumer>> {
        validate_filter(&spec.filter)?;
        anyhow::ensure!(!spec.name.is_empty(), "a consumer name is required");
        {
            let _guard = self.inner.write_lock.lock().await;
            sqlx::query(
                "INSERT INTO eq_consumers (name, filter, max_deliver, ack_wait_ms, cursor) \
                 VALUES ($1, $2, $3, $4, 0) ON CONFLICT (name) DO UPDATE SET \
                 filter = excluded.filter, max_deliver = excluded.max_deliver, \
                 ack_wait_ms = excluded.ack_wait_ms",
            )
            .bind(&spec.name)
            .bind(&spec.filter)
            .bind(i64::from(spec.max_deliver))
            .bind(spec.ack_wait.as_millis() as i64)
            .execute(self.inner.db.pool())
            .await?;
        }
        Ok(Box::new(EmbeddedConsumer {
            inner: self.inner.clone(),
            spec,
        }))
    }

    async fn backlog(&self, spec: &ConsumerSpec) -> anyhow::Result<u64> {
        let pool = self.inner.db.pool();
        let cursor: i64 = sqlx::query("SELECT cursor FROM eq_consumers WHERE name = $1")
            .bind(&spec.name)
            .fetch_optional(pool)
            .await?
            .with_context(|| format!("no consumer {}", spec.name))?
            .try_get("cursor")?;
        // Few distinct subjects: count per subject, then keep those the filter matches.
        let ahead = sqlx::query(
            "SELECT subject, COUNT(*) AS n FROM eq_messages WHERE seq > $1 GROUP BY subject",
        )
        .bind(cursor)
        .fetch_all(pool)
        .await?;
        let mut waiting = 0u64;
        for row in &ahead {
            let subject: String = row.try_get("subject")?;
            if matches(&spec.filter, &subject) {
                waiting += row.try_get::<i64, _>("n")? as u64;
            }
        }
        let outstanding: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM eq_deliveries WHERE consumer = $1")
                .bind(&spec.name)
                .fetch_one(pool)
                .await?
                .try_get("n")?;
        Ok(waiting + outstanding as u64)
    }

    async fn subscribe(&self, filter: &str) -> anyhow::Result<BoxStream<'static, Message>> {
        validate_filter(filter)?;
        let filter = filter.to_string();
        let receiver = self.inner.fanout.subscribe();
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(message) => return Some((message, receiver)),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "fan-out subscriber fell behind; messages skipped");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .filter(move |message| std::future::ready(matches(&filter, &message.subject)));
        Ok(stream.boxed())
    }

    async fn check(&self) -> Result<(), String> {
        self.inner
            .db
            .ping()
            .await
            .map_err(|err| format!("embedded queue: {err}"))
    }

    /// The whole file, as one stream.
    async fn usage(&self) -> anyhow::Result<Vec<StreamUsage>> {
        let (messages, bytes) = self.inner.stored().await?;
        Ok(vec![StreamUsage {
            stream: "embedded".into(),
            messages,
            bytes,
            max_messages: self.inner.max_messages,
            max_bytes: self.inner.max_bytes,
        }])
    }

    fn kind(&self) -> QueueKind {
        QueueKind::Embedded
    }
}
