//! The queue contract, run against both implementations: the embedded SQLite queue always,
//! NATS JetStream when VIVESPHERE_TEST_NATS_URL is set. Each test has its own namespace (NATS)
//! or file (embedded), so they run in parallel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use platform::config::{QueueKind, QueueSettings};
use platform::queue::embedded::EmbeddedQueue;
use platform::queue::nats::NatsQueue;
use platform::queue::{ConsumerSpec, Delivery, Queue, WorkConsumer};

/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(700);
const PATIENCE: Duration = Duration::from_secs(10);

async fn next(consumer: &mut Box<dyn WorkConsumer>) -> Delivery {
    tokio::time::timeout(PATIENCE, consumer.next())
        .await
        .expect("a delivery within the patience window")
        .expect("consumer error")
}

async fn assert_quiet(consumer: &mut Box<dyn WorkConsumer>) {
    if let Ok(delivery) = tokio::time::timeout(QUIET, consumer.next()).await {
        panic!(
            "expected no delivery, got {:?}",
            delivery.map(|d| d.message)
        );
    }
}

fn spec(name: &str, filter: &str) -> ConsumerSpec {
    ConsumerSpec::new(name, filter).ack_wait(Duration::from_secs(30))
}

async fn publish(queue: &dyn Queue, subject: &str, id: &str) {
    let published = queue
        .publish(subject, id, Bytes::from(format!("payload of {id}")))
        .await
        .unwrap();
    assert!(!published.duplicate, "{id} was new");
}

// ---- the contract -------------------------------------------------------------------

async fn consume_in_order_and_ack(queue: Arc<dyn Queue>) {
    for i in 1..=3 {
        publish(&*queue, "jobs.email.send", &format!("m{i}")).await;
    }
    let mut consumer = queue.consumer(spec("mailer", "jobs.>")).await.unwrap();
    for i in 1..=3 {
        let delivery = next(&mut consumer).await;
        assert_eq!(delivery.message.id, format!("m{i}"));
        assert_eq!(delivery.message.subject, "jobs.email.send");
        assert_eq!(
            delivery.message.payload,
            Bytes::from(format!("payload of m{i}"))
        );
        assert_eq!(delivery.attempt, 1);
        delivery.ack().await.unwrap();
    }
    assert_quiet(&mut consumer).await;
}

async fn batches_take_what_is_ready_and_settle_each_message(queue: Arc<dyn Queue>) {
    for i in 1..=5 {
        publish(&*queue, "logs.debug.svc", &format!("b{i}")).await;
    }
    let mut consumer = queue
        .consumer(spec("batcher", "logs.>").max_ack_pending(100))
        .await
        .unwrap();
    let mut ids = Vec::new();
    let mut batches = 0;
    while ids.len() < 5 {
        let batch =
            tokio::time::timeout(PATIENCE, consumer.next_batch(3, Duration::from_millis(300)))
                .await
                .expect("a batch within the patience window")
                .unwrap();
        assert!(!batch.is_empty() && batch.len() <= 3, "{}", batch.len());
        batches += 1;
        for delivery in batch {
            ids.push(delivery.message.id.clone());
            delivery.ack().await.unwrap();
        }
    }
    assert_eq!(ids, vec!["b1", "b2", "b3", "b4", "b5"]);
    assert!(
        batches <= 3,
        "{batches} batches for 5 messages of at most 3"
    );
    assert_quiet(&mut consumer).await;
}

async fn duplicate_ids_are_stored_once(queue: Arc<dyn Queue>) {
    let first = queue
        .publish("jobs.a.b", "same-id", Bytes::from_static(b"1"))
        .await
        .unwrap();
    let second = queue
        .publish("jobs.a.b", "same-id", Bytes::from_static(b"2"))
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(first.sequence, second.sequence);
    let mut consumer = queue.consumer(spec("dedupe", "jobs.>")).await.unwrap();
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.message.payload, Bytes::from_static(b"1"));
    delivery.ack().await.unwrap();
    assert_quiet(&mut consumer).await;
}

async fn nak_redelivers_after_the_delay(queue: Arc<dyn Queue>) {
    publish(&*queue, "jobs.retry.x", "r1").await;
    let mut consumer = queue
        .consumer(spec("retrier", "jobs.retry.*"))
        .await
        .unwrap();
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.attempt, 1);
    let naked_at = Instant::now();
    delivery.nak(Duration::from_millis(1500)).await.unwrap();
    let again = next(&mut consumer).await;
    assert!(
        naked_at.elapsed() >= Duration::from_millis(1200),
        "redelivered after {:?}, before the delay",
        naked_at.elapsed()
    );
    assert_eq!(again.message.id, "r1");
    assert_eq!(again.attempt, 2);
    again.ack().await.unwrap();
    assert_quiet(&mut consumer).await;
}

async fn unacknowledged_messages_come_back_after_the_ack_wait(queue: Arc<dyn Queue>) {
    publish(&*queue, "jobs.slow.x", "s1").await;
    let mut consumer = queue
        .consumer(ConsumerSpec::new("slow", "jobs.slow.x").ack_wait(Duration::from_secs(1)))
        .await
        .unwrap();
    let first = next(&mut consumer).await;
    drop(first); // neither acked nor naked: a crashed worker
    let again = next(&mut consumer).await;
    assert_eq!(again.message.id, "s1");
    assert_eq!(again.attempt, 2);
    again.ack().await.unwrap();
}

async fn redelivery_stops_at_the_limit(queue: Arc<dyn Queue>) {
    publish(&*queue, "jobs.poison.x", "p1").await;
    let mut consumer = queue
        .consumer(spec("limited", "jobs.poison.>").max_deliver(2))
        .await
        .unwrap();
    let first = next(&mut consumer).await;
    first.nak(Duration::ZERO).await.unwrap();
    let second = next(&mut consumer).await;
    assert_eq!(second.attempt, 2);
    second.nak(Duration::ZERO).await.unwrap();
    assert_quiet(&mut consumer).await;
}

async fn terminated_messages_are_not_redelivered(queue: Arc<dyn Queue>) {
    publish(&*queue, "jobs.bad.x", "t1").await;
    publish(&*queue, "jobs.bad.x", "t2").await;
    let mut consumer = queue
        .consumer(spec("terminator", "jobs.bad.x"))
        .await
        .unwrap();
    let first = next(&mut consumer).await;
    assert_eq!(first.message.id, "t1");
    first.term().await.unwrap();
    let second = next(&mut consumer).await;
    assert_eq!(second.message.id, "t2");
    second.ack().await.unwrap();
    assert_quiet(&mut consumer).await;
}

async fn filters_select_subjects(queue: Arc<dyn Queue>) {
    publish(&*queue, "jobs.a.one", "f1").await;
    publish(&*queue, "jobs.b.one", "f2").await;
    publish(&*queue, "jobs.a.two.deep", "f3").await;
    let mut consumer = queue.consumer(spec("only-a", "jobs.a.*")).await.unwrap();
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.message.id, "f1");
    delivery.ack().await.unwrap();
    assert_quiet(&mut consumer).await;
}

async fn replicas_share_work_and_names_each_see_everything(queue: Arc<dyn Queue>) {
    for i in 0..6 {
        publish(&*queue, "jobs.shared.x", &format!("w{i}")).await;
    }
    let mut replica_a = queue
        .consumer(spec("workers", "jobs.shared.>"))
        .await
        .unwrap();
    let mut replica_b = queue
        .consumer(spec("workers", "jobs.shared.>"))
        .await
        .unwrap();
    let mut auditor = queue
        .consumer(spec("auditor", "jobs.shared.>"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for i in 0..6 {
        let replica = if i % 2 == 0 {
            &mut replica_a
        } else {
            &mut replica_b
        };
        let delivery = next(replica).await;
        seen.push(delivery.message.id.clone());
        delivery.ack().await.unwrap();
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..6).map(|i| format!("w{i}")).collect::<Vec<_>>(),
        "each once"
    );
    assert_quiet(&mut replica_a).await;
    assert_quiet(&mut replica_b).await;
    for i in 0..6 {
        let delivery = next(&mut auditor).await;
        assert_eq!(delivery.message.id, format!("w{i}"));
        delivery.ack().await.unwrap();
    }
}

async fn fan_out_reaches_every_subscriber(queue: Arc<dyn Queue>) {
    let mut first = queue.subscribe("events.config.>").await.unwrap();
    let mut second = queue.subscribe("events.*.changed").await.unwrap();
    publish(&*queue, "events.other.thing", "ignored").await;
    publish(&*queue, "events.config.changed", "c1").await;
    for stream in [&mut first, &mut second] {
        let message = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(message.id, "c1");
        assert_eq!(message.subject, "events.config.changed");
    }
}

async fn bad_subjects_are_refused(queue: Arc<dyn Queue>) {
    assert!(queue.publish("jobs.*", "x", Bytes::new()).await.is_err());
    assert!(queue.publish("jobs", "x", Bytes::new()).await.is_err());
    assert!(queue.publish("jobs.a", "", Bytes::new()).await.is_err());
    assert!(queue.consumer(spec("bad", ">")).await.is_err());
    // A fresh NATS client may still be connecting; readiness must turn ok soon after.
    let started = Instant::now();
    while let Err(reason) = queue.check().await {
        assert!(
            started.elapsed() < PATIENCE,
            "queue never became ready: {reason}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- running the contract on each implementation ------------------------------------

fn embedded_settings(dir: &tempfile::TempDir) -> QueueSettings {
    QueueSettings {
        kind: QueueKind::Embedded,
        path: dir.path().join("queue.db").display().to_string(),
        ..QueueSettings::default()
    }
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let queue = super::EmbeddedQueue::open(&super::embedded_settings(&dir)).await.unwrap();
                    super::$case(std::sync::Arc::new(queue)).await;
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(settings) = platform::testing::nats_settings() else { return };
                    let queue = std::sync::Arc::new(super::NatsQueue::connect(&settings).await.unwrap());
                    super::$case(queue.clone()).await;
                    queue.delete_namespace_streams().await.unwrap();
                }
            )*
        }
    };
}

contract!(
    consume_in_order_and_ack,
    batches_take_what_is_ready_and_settle_each_message,
    duplicate_ids_are_stored_once,
    nak_redelivers_after_the_delay,
    unacknowledged_messages_come_back_after_the_ack_wait,
    redelivery_stops_at_the_limit,
    terminated_messages_are_not_redelivered,
    filters_select_subjects,
    replicas_share_work_and_names_each_see_everything,
    fan_out_reaches_every_subscriber,
    bad_subjects_are_refused,
);

// ---- embedded only: durability across a restart -------------------------------------

#[tokio::test]
async fn embedded_queue_loses_nothing_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let settings = embedded_settings(&dir);
    {
        let queue = EmbeddedQueue::open(&settings).await.unwrap();
        for id in ["k1", "k2", "k3"] {
            publish(&queue, "jobs.durable.x", id).await;
        }
        let mut consumer = queue
            .consumer(
                ConsumerSpec::new("durable", "jobs.durable.x").ack_wait(Duration::from_secs(1)),
            )
            .await
            .unwrap();
        next(&mut consumer).await.ack().await.unwrap(); // k1 done
        let in_flight = next(&mut consumer).await; // k2 taken, then the process "dies"
        assert_eq!(in_flight.message.id, "k2");
        drop(in_flight);
    }
    let queue = EmbeddedQueue::open(&settings).await.unwrap();
    // The dedupe window survives too.
    assert!(
        queue
            .publish("jobs.durable.x", "k3", Bytes::new())
            .await
            .unwrap()
            .duplicate
    );
    let mut consumer = queue
        .consumer(ConsumerSpec::new("durable", "jobs.durable.x").ack_wait(Duration::from_secs(1)))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let delivery = next(&mut consumer).await;
        ids.push((delivery.message.id.clone(), delivery.attempt));
        delivery.ack().await.unwrap();
    }
    ids.sort();
    assert_eq!(ids, vec![("k2".to_string(), 2), ("k3".to_string(), 1)]);
    assert_quiet(&mut consumer).await;
}

#[tokio::test]
async fn embedded_queue_trims_messages_past_max_age() {
    let dir = tempfile::tempdir().unwrap();
    let settings = QueueSettings {
        max_age: 1,
        ..embedded_settings(&dir)
    };
    let queue = EmbeddedQueue::open(&settings).await.unwrap();
    publish(&queue, "jobs.old.x", "o1").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(queue.trim().await.unwrap(), 1);
    let mut consumer: Box<dyn WorkConsumer> =
        queue.consumer(spec("late", "jobs.old.x")).await.unwrap();
    assert_quiet(&mut consumer).await;
}
