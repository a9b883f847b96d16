//! A webhook receiver for tests: it records every request and answers with the status it is
//! told to (`/hook`), or redirects to the cloud metadata address (`/redirect`); and checks
//! a request's signature with the Standard Webhooks reference library.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct Hit {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Hit {
    pub fn header(&self, name: &str) -> &str {
        self.headers[name].to_str().unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Whether `secret` made one of the request's signatures, by the reference library's
    /// algorithm. (Its `verify` also compares the timestamp with the wall clock, which a
    /// test's clock is not.)
    pub fn signed_by(&self, secret: &str) -> bool {
        let reference = standardwebhooks::Webhook::new(secret).unwrap();
        let expected = reference
            .sign(
                self.header("webhook-id"),
                self.header("webhook-timestamp").parse().unwrap(),
                &self.body,
            )
            .unwrap();
        self.header("webhook-signature")
            .split(' ')
            .any(|signature| signature == expected)
    }
}

#[derive(Clone)]
struct Shared {
    hits: Arc<Mutex<Vec<Hit>>>,
    status: Arc<AtomicU16>,
}

pub struct Receiver {
    pub base: String,
    shared: Shared,
}

async fn hook(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    shared.hits.lock().unwrap().push(Hit { headers, body });
    StatusCode::from_u16(shared.status.load(Ordering::SeqCst)).unwrap()
}

async fn redirect(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    shared.hits.lock().unwrap().push(Hit { headers, body });
    (
        StatusCode::TEMPORARY_REDIRECT,
        [("location", "http://169.254.169.254/latest/meta-data/")],
    )
        .into_response()
}

/// A receiver on a random loopback port, answering 200 until told otherwise.
pub async fn receiver() -> Receiver {
    let shared = Shared {
        hits: Arc::default(),
        status: Arc::new(AtomicU16::new(200)),
    };
    let router = axum::Router::new()
        .route("/hook", post(hook))
        .route("/redirect", post(redirect))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Receiver { base, shared }
}

impl Receiver {
    pub fn url(&self) -> String {
        format!("{}/hook", self.base)
    }

    pub fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// The requests of type `event_type` so far.
    pub fn of_type(&self, event_type: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|hit| hit.json()["type"] == event_type)
            .collect()
    }

    /// Waits until at least `count` requests came.
    pub async fn wait_for(&self, count: usize) -> Vec<Hit> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let hits = self.hits();
            if hits.len() >= count {
                return hits;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {count} webhook requests came",
                hits.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
