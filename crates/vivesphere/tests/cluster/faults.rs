//! Faults on the multi-process topology, on loopback and bounded in time: a Bot Manager
//! replica killed mid-load, NATS stopped for 10 s, Logging down, Configuration down. Each
//! fails if a post is lost or published twice, or an event is lost.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use vivesphere::local_cluster::free_port;

use crate::{ADMIN_PASSWORD, MID_PASSWORD, SERIAL, eventually, in_ms, start, start_with};

/// Every text exactly once.
fn assert_each_once(published: &[String], expected: &[String]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for text in published {
        *counts.entry(text.as_str()).or_default() += 1;
    }
    for text in expected {
        assert_eq!(
            counts.get(text.as_str()),
            Some(&1),
            "{text:?} published {:?} times",
            counts.get(text.as_str())
        );
    }
    assert_eq!(
        published.len(),
        expected.len(),
        "nothing else was published"
    );
}

#[tokio::test]
async fn killing_a_bot_manager_replica_mid_load_loses_and_repeats_no_post() {
    let _serial = SERIAL.lock().await;
    let Some(mut t) = start().await else { return };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    let mut bots = Vec::new();
    let mut texts = Vec::new();
    for b in 0..3 {
        let (bot, _) = t.create_bot(&admin, &format!("loadbot{b}")).await;
        for i in 0..20 {
            let text = format!("Load post {i} of bot {b}");
            let response = t
                .send(
                    Method::POST,
                    &format!("/api/v1/bots/{bot}/posts"),
                    &admin,
                    json!({"text": text, "run_at": in_ms(1500 + i * 100)}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
            texts.push(text);
        }
        bots.push(bot);
    }
    eventually(Duration::from_secs(30), "publishing starts", || async {
        (t.published_texts().len() >= 5).then_some(())
    })
    .await;
    t.cluster.kill("bot-manager-1").await.unwrap();
    let at_kill = t.published_texts().len();
    assert!(at_kill < texts.len(), "the replica died with work left");
    // The other replica takes over what the dead one held once its lease and ack deadline
    // pass; a post it had sent is found on X instead of being sent again.
    eventually(
        Duration::from_secs(90),
        "every post is published",
        || async {
            let mut published = 0;
            for bot in &bots {
                published += t.published_count(&admin, bot).await;
            }
            (published == texts.len()).then_some(())
        },
    )
    .await;
    assert_each_once(&t.published_texts(), &texts);
    t.cluster.stop().await;
}

#[tokio::test]
async fn user_activity_waits_while_logging_is_down_and_arrives_after() {
    let _serial = SERIAL.lock().await;
    let Some(mut t) = start().await else { return };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    t.cluster.kill("logging").await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            t.create_viewer(&admin, &format!("while-down-{i}"), None)
                .await,
        );
    }
    t.cluster.spawn("logging").unwrap();
    t.cluster
        .wait_ready(&["logging".to_string()])
        .await
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "every event reaches Logging",
        || async { t.activity_contains(&admin, &ids).await.then_some(()) },
    )
    .await;
    t.cluster.stop().await;
}

#[tokio::test]
async fn a_service_restarted_while_configuration_is_down_runs_on_its_last_good_copy() {
    let _serial = SERIAL.lock().await;
    let Some(mut t) = start().await else { return };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    let revision = t.raise_password_minimum(&admin).await;
    t.applied_by("authentication-2", revision).await;

    t.cluster.kill("configuration").await.unwrap();
    t.cluster.kill("authentication-2").await.unwrap();
    t.cluster.spawn("authentication-2").unwrap();
    t.cluster
        .wait_ready(&["authentication-2".to_string()])
        .await
        .expect("starts without the Configuration service");
    // Straight to the restarted replica: the policy from its saved copy is in force.
    let response = t
        .send_to(
            "authentication-2",
            Method::POST,
            "/api/v1/auth/users",
            &admin,
            json!({"username": "short", "password": MID_PASSWORD, "roles": ["Viewer"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("at least 20"),
        "{body}"
    );
    // And the system goes on serving through the gateway.
    let response = t
        .http
        .get(format!("{}/api/v1/bots/list", t.cluster.gateway_url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    t.cluster.stop().await;
}

/// A nats-server of this test's own, so stopping it disturbs no other test.
struct PrivateNats {
    binary: PathBuf,
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateNats {
    fn start() -> Option<Self> {
        let binary = [
            "/usr/sbin/nats-server",
            "/usr/local/bin/nats-server",
            "/usr/bin/nats-server",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists());
        let Some(binary) = binary else {
            eprintln!("=== SKIPPED: no nats-server binary for a private NATS");
            return None;
        };
        let port = free_port().unwrap();
        let mut nats = Self {
            binary,
            port,
            store: tempfile::tempdir().unwrap(),
            child: None,
        };
        nats.run();
        Some(nats)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server on its port and store, and waits until it takes connections.
    fn run(&mut self) {
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the server this test started.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn work_and_events_accepted_while_nats_is_down_are_delivered_when_it_returns() {
    let _serial = SERIAL.lock().await;
    // The rest of the topology still needs the test PostgreSQL and NATS settings.
    if !crate::backends_configured() {
        return;
    }
    let Some(mut nats) = PrivateNats::start() else {
        return;
    };
    let Some(mut t) = start_with(Some(nats.url())).await else {
        return;
    };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    let (bot, _) = t.create_bot(&admin, "outagebot").await;

    nats.stop();
    let stopped = Instant::now();
    // Readiness means "can serve": every service stays ready, reported degraded, and reads
    // through the gateway keep answering.
    let bot_manager = t.cluster.member_named("bot-manager-1").unwrap().url.clone();
    eventually(
        Duration::from_secs(10),
        "bot-manager-1 reports the queue degraded",
        || {
            let http = t.http.clone();
            let url = format!("{bot_manager}/health/ready");
            async move {
                let response = http.get(url).send().await.ok()?;
                if response.status() != StatusCode::OK {
                    return None;
                }
                let body: Value = response.json().await.ok()?;
                (body["status"] == "degraded").then_some(())
            }
        },
    )
    .await;
    let read = t.get(&format!("/api/v1/bots/{bot}"), &admin).await;
    assert_eq!(read["name"], "outagebot");
    // Writes go straight to one process here, so its spill file is the one to watch; they
    // are accepted: posts and their jobs are rows until the relay can publish, events wait
    // in each process's spill file.
    let mut texts = Vec::new();
    for i in 0..5 {
        let text = format!("Written while the queue was away {i}");
        let response = t
            .send_to(
                "bot-manager-2",
                Method::POST,
                &format!("/api/v1/bots/{bot}/posts"),
                &admin,
                json!({"text": text, "run_at": in_ms(500)}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        texts.push(text);
    }
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = t
            .create_viewer(&admin, &format!("outage-{i}"), Some("authentication-1"))
            .await;
        ids.push(id);
    }
    assert!(
        t.published_texts().is_empty(),
        "nothing can be published without the queue"
    );
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed())).await;
    nats.run();

    eventually(
        Duration::from_secs(60),
        "every post is published",
        || async { (t.published_count(&admin, &bot).await == texts.len()).then_some(()) },
    )
    .await;
    assert_each_once(&t.published_texts(), &texts);
    eventually(
        Duration::from_secs(60),
        "every event reaches Logging",
        || async { t.activity_contains(&admin, &ids).await.then_some(()) },
    )
    .await;
    t.cluster.stop().await;
}

/// A PostgreSQL server of this test's own (initdb into a temporary directory), so
/// restarting it disturbs no other test. As root, the server runs as the `postgres` user.
struct PrivatePostgres {
    bin: PathBuf,
    data: tempfile::TempDir,
    port: u16,
    as_postgres_user: bool,
}

impl PrivatePostgres {
    fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .find(|bin| bin.join("initdb").exists());
        let Some(bin) = bin else {
            eprintln!("=== SKIPPED: no initdb for a private PostgreSQL");
            return None;
        };
        // SAFETY: geteuid has no preconditions.
        let as_postgres_user = unsafe { libc::geteuid() } == 0;
        let data = tempfile::tempdir().unwrap();
        let port = free_port().unwrap();
        let server = Self {
            bin,
            data,
            port,
            as_postgres_user,
        };
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(server.data.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown for the postgres user");
        }
        server.run(
            "initdb",
            &["-A", "trust", "-U", "postgres", "-D", &server.dir()],
        );
        server.ctl("start");
        Some(server)
    }

    fn dir(&self) -> String {
        self.data.path().join("pg").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A PostgreSQL tool, as the `postgres` user when this runs as root (initdb and pg_ctl
    /// refuse root).
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = self
            .command(tool)
            .args(args)
            .output()
            .expect("a PostgreSQL tool runs");
        assert!(
            output.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `pg_ctl start|stop`, waiting until it is done.
    fn ctl(&self, action: &str) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.data.path().display()
        );
        let log = self.data.path().join("server.log").display().to_string();
        match action {
            "start" => self.run(
                "pg_ctl",
                &["-D", &self.dir(), "-o", &options, "-l", &log, "-w", "start"],
            ),
            _ => self.run("pg_ctl", &["-D", &self.dir(), "-m", "fast", "-w", "stop"]),
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.dir(), "-m", "immediate", "stop"])
            .output();
    }
}

#[tokio::test]
async fn services_are_not_ready_without_postgresql_and_recover_within_5_s_of_its_return() {
    let _serial = SERIAL.lock().await;
    if !crate::backends_configured() {
        return;
    }
    let Some(postgres) = PrivatePostgres::start() else {
        return;
    };
    let Some(mut t) = crate::start_on(Some(postgres.url()), None).await else {
        return;
    };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    let services: Vec<(String, String)> = t
        .cluster
        .members()
        .iter()
        .filter(|m| m.target != gateway::NAME)
        .map(|m| (m.name.clone(), format!("{}/health/ready", m.url)))
        .collect();
    let ready = |url: String| {
        let http = t.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .is_ok_and(|response| response.status() == StatusCode::OK)
        }
    };

    postgres.ctl("stop");
    for (name, url) in &services {
        eventually(
            Duration::from_secs(15),
            &format!("{name} reports not ready"),
            || {
                let check = ready(url.clone());
                async move { (!check.await).then_some(()) }
            },
        )
        .await;
    }
    postgres.ctl("start");
    let returned = Instant::now();
    for (name, url) in &services {
        eventually(
            Duration::from_secs(15),
            &format!("{name} is ready again"),
            || {
                let check = ready(url.clone());
                async move { check.await.then_some(()) }
            },
        )
        .await;
    }
    // The gateway takes a service back at its next health check (every 2 s).
    eventually(
        Duration::from_secs(15),
        "the API answers through the gateway",
        || async {
            let response = t
                .http
                .get(format!("{}/api/v1/bots/list", t.cluster.gateway_url()))
                .bearer_auth(&admin)
                .send()
                .await
                .ok()?;
            (response.status() == StatusCode::OK).then_some(())
        },
    )
    .await;
    let recovered = returned.elapsed();
    eprintln!("PostgreSQL back: every service ready and the API answering after {recovered:?}");
    assert!(
        recovered <= Duration::from_secs(5),
        "the system answered again {recovered:?} after PostgreSQL returned"
    );
    t.cluster.stop().await;
}
