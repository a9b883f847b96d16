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

/// `bots` new bots (`<name>bot0`, …) with `per_bot` posts each, the i-th due `first_ms` +
/// i × `spacing_ms` from now; the bots and the posts' texts.
async fn schedule_posts(
    t: &crate::Topology,
    admin: &str,
    (name, bots, per_bot): (&str, usize, i64),
    (first_ms, spacing_ms): (i64, i64),
) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    for b in 0..bots {
        let (bot, _) = t.create_bot(admin, &format!("{name}bot{b}")).await;
        for i in 0..per_bot {
            let text = format!("{name} post {i} of bot {b}");
            let response = t
                .send(
                    Method::POST,
                    &format!("/api/v1/bots/{bot}/posts"),
                    admin,
                    json!({"text": text, "run_at": in_ms(first_ms + i * spacing_ms)}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
            texts.push(text);
        }
        ids.push(bot);
    }
    (ids, texts)
}

/// Waits (90 s at most) until `count` posts of `bots` are published.
async fn all_published(t: &crate::Topology, admin: &str, bots: &[String], count: usize) {
    eventually(
        Duration::from_secs(90),
        "every post is published",
        || async {
            let mut published = 0;
            for bot in bots {
                published += t.published_count(admin, bot).await;
            }
            (published == count).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn killing_a_bot_manager_replica_mid_load_loses_and_repeats_no_post() {
    let _serial = SERIAL.lock().await;
    let Some(mut t) = start().await else { return };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    let (bots, texts) = schedule_posts(&t, &admin, ("load", 3, 20), (1500, 100)).await;
    eventually(Duration::from_secs(30), "publishing starts", || async {
        (t.published_texts().len() >= 5).then_some(())
    })
    .await;
    t.cluster.kill("bot-manager-1").await.unwrap();
    let at_kill = t.published_texts().len();
    assert!(at_kill < texts.len(), "the replica died with work left");
    // The other replica takes over what the dead one held once its lease and ack deadline
    // pass; a post it had sent is found on X instead of being sent again.
    all_published(&t, &admin, &bots, texts.len()).await;
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
        let binary = crate::nats_server_binary()?;
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
    let returned = Instant::now();

    eventually(
        Duration::from_secs(60),
        "every post is published",
        || async { (t.published_count(&admin, &bot).await == texts.len()).then_some(()) },
    )
    .await;
    let published = returned.elapsed();
    eprintln!("NATS back: every post due during the outage published after {published:?}");
    // Within seconds: the outbox relays them as soon as the queue takes them, and a job
    // whose message was lost with the old connection is re-driven.
    assert!(published < Duration::from_secs(15), "{published:?}");
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
    /// Where the data directory is: under `data`, or on a volume of the test's.
    data_dir: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

impl PrivatePostgres {
    fn start() -> Option<Self> {
        Self::start_with_data_on(None)
    }

    /// With its data directory on `volume` (its write-ahead log stays under the temporary
    /// directory, as production keeps WAL on a volume of its own).
    fn start_with_data_on(volume: Option<&std::path::Path>) -> Option<Self> {
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
        let data_dir = volume.unwrap_or(data.path()).join("pg");
        let server = Self {
            bin,
            data_dir,
            data,
            port,
            as_postgres_user,
        };
        if as_postgres_user {
            for dir in [Some(server.data.path()), volume].into_iter().flatten() {
                let status = Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir)
                    .status()
                    .unwrap();
                assert!(status.success(), "chown for the postgres user");
            }
        }
        let wal = server.data.path().join("wal").display().to_string();
        server.run(
            "initdb",
            &[
                "-A",
                "trust",
                "-U",
                "postgres",
                "-D",
                &server.dir(),
                "--waldir",
                &wal,
            ],
        );
        server.ctl("start");
        Some(server)
    }

    fn dir(&self) -> String {
        self.data_dir.display().to_string()
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
    let Some(mut t) = crate::start_on(crate::Setup {
        database_url: Some(postgres.url()),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    // The processes whose targets keep data (not the gateway, not the console).
    let keeps_data = |target: &str| {
        vivesphere::registry::targets()
            .iter()
            .any(|t| t.info().name == target && t.info().uses_database)
    };
    let services: Vec<(String, String)> = t
        .cluster
        .members()
        .iter()
        .filter(|m| keeps_data(m.target))
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

    // Load through the gateway all along: reads and writes that need the database.
    let load_stop = tokio_util::sync::CancellationToken::new();
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<u16, usize>::new()));
    let load: Vec<_> = (0..2)
        .map(|worker| {
            let (http, base, token) = (
                t.http.clone(),
                t.cluster.gateway_url().to_string(),
                admin.clone(),
            );
            let (stop, statuses) = (load_stop.clone(), statuses.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.is_cancelled() {
                    n += 1;
                    let request = match n % 2 {
                        0 => http.get(format!("{base}/api/v1/bots/list")),
                        _ => http.post(format!("{base}/api/v1/logs/submit")).json(
                            &json!({"log_type": "console", "log_data": {
                                "timestamp": in_ms(0), "source": "load",
                                "message": format!("load {worker}-{n}")}}),
                        ),
                    };
                    let status = match request.bearer_auth(&token).send().await {
                        Ok(response) => response.status().as_u16(),
                        Err(_) => 0,
                    };
                    *statuses.lock().unwrap().entry(status).or_default() += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    postgres.ctl("stop");
    // A request that needs the database is told at once (503 with Retry-After), not after
    // the whole connect timeout.
    let asked = Instant::now();
    let response = t
        .send_to(
            "bot-manager-1",
            Method::GET,
            "/api/v1/bots/list",
            &admin,
            Value::Null,
        )
        .await;
    let answered = asked.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    eprintln!("PostgreSQL gone: a request needing it answered 503 in {answered:?}");
    assert!(answered < Duration::from_secs(3), "{answered:?}");
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
    load_stop.cancel();
    for worker in load {
        worker.await.unwrap();
    }
    // Under load across the restart: served, or told to come back — never a 500.
    let statuses = statuses.lock().unwrap().clone();
    eprintln!("answers under load across the PostgreSQL restart: {statuses:?}");
    assert!(
        statuses
            .keys()
            .all(|status| [200, 201, 503].contains(status)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains_key(&503),
        "the outage was seen: {statuses:?}"
    );
    assert!(
        recovered <= Duration::from_secs(5),
        "the system answered again {recovered:?} after PostgreSQL returned"
    );
    t.cluster.stop().await;
}

/// The node that leads the replicas of the stream whose name ends with `suffix` (`_BOTS`), as
/// any live node's monitoring endpoint reports it.
async fn stream_leader(t: &crate::Topology, suffix: &str) -> Option<String> {
    for node in t.cluster.nats_nodes() {
        let member = t.cluster.member_named(&node)?;
        if !member.is_running() {
            continue;
        }
        let url = member
            .ready_url
            .replace("/healthz", "/jsz?accounts=true&streams=true");
        let Ok(response) = t.http.get(url).send().await else {
            continue;
        };
        let jsz: Value = response.json().await.unwrap_or_default();
        for account in jsz["account_details"].as_array().into_iter().flatten() {
            for stream in account["stream_detail"].as_array().into_iter().flatten() {
                if stream["name"].as_str().is_some_and(|n| n.ends_with(suffix)) {
                    return stream["cluster"]["leader"].as_str().map(str::to_string);
                }
            }
        }
    }
    None
}

/// How many stored user_activity events record the creation of user `id`.
async fn creations_stored(t: &crate::Topology, admin: &str, id: &str) -> usize {
    let response = t
        .http
        .get(format!(
            "{}/api/v1/logs/events?category=user_activity&action=user.created&limit=500",
            t.cluster.gateway_url()
        ))
        .bearer_auth(admin)
        .send()
        .await;
    let Ok(response) = response else { return 0 };
    let body: Value = response.json().await.unwrap_or_default();
    body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| event.to_string().contains(id))
        .count()
}

/// Three NATS nodes, every stream and consumer on each: killing (SIGKILL) the node that
/// leads the bot jobs' stream while posts are due and events are written loses nothing and
/// repeats nothing, and publishing resumes once the other two elect a new leader.
#[tokio::test]
async fn killing_a_nats_node_mid_load_loses_and_repeats_nothing() {
    let _serial = SERIAL.lock().await;
    if !crate::backends_configured() || crate::nats_server_binary().is_none() {
        return;
    }
    let Some(mut t) = crate::start_on(crate::Setup {
        nats_nodes: 3,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    assert_eq!(t.cluster.nats_nodes().len(), 3);
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    let (bots, texts) = schedule_posts(&t, &admin, ("quorum", 2, 20), (2000, 300)).await;
    let mut users = Vec::new();
    for i in 0..3 {
        users.push(t.create_viewer(&admin, &format!("before-{i}"), None).await);
    }
    eventually(Duration::from_secs(30), "publishing starts", || async {
        (t.published_texts().len() >= 4).then_some(())
    })
    .await;
    let leader = eventually(Duration::from_secs(10), "the stream has a leader", || {
        stream_leader(&t, "_BOTS")
    })
    .await;
    t.cluster.kill(&leader).await.unwrap();
    let killed = Instant::now();
    let at_kill = t.published_texts().len();
    assert!(at_kill < texts.len(), "the node died with posts still due");
    for i in 0..3 {
        users.push(t.create_viewer(&admin, &format!("after-{i}"), None).await);
    }
    eventually(Duration::from_secs(60), "publishing resumes", || async {
        (t.published_texts().len() > at_kill).then_some(())
    })
    .await;
    eprintln!(
        "NATS node {leader} (the bot stream's leader) killed: publishing resumed after {:?}",
        killed.elapsed()
    );
    all_published(&t, &admin, &bots, texts.len()).await;
    assert_each_once(&t.published_texts(), &texts);
    for id in &users {
        let stored = eventually(
            Duration::from_secs(60),
            &format!("the creation of {id} is stored"),
            || async {
                let n = creations_stored(&t, &admin, id).await;
                (n > 0).then_some(n)
            },
        )
        .await;
        assert_eq!(stored, 1, "the creation of {id} is stored once");
    }
    t.cluster.stop().await;
}

/// A job whose message the queue handed to a pull that then died (a NATS server or a replica
/// gone with it) would wait out its ack deadline (lease 5 s + 30 s here) before any worker
/// saw it again. The database knows the job is due and that nobody holds it: a replica that
/// starts (or sees its queue come back) hands it over again at once, and it is published
/// once.
#[tokio::test]
async fn a_due_job_lost_in_a_dead_pull_is_re_driven_in_seconds_not_its_ack_deadline() {
    let _serial = SERIAL.lock().await;
    let Some(mut t) = start().await else { return };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    let (bot, _) = t.create_bot(&admin, "strandedbot").await;
    let text = "Handed to a pull that died";
    let response = t
        .send(
            Method::POST,
            &format!("/api/v1/bots/{bot}/posts"),
            &admin,
            json!({"text": text, "run_at": in_ms(3000)}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = Instant::now();
    // No worker runs, so what the queue delivers next goes to this test's pull.
    t.cluster.kill("bot-manager-1").await.unwrap();
    t.cluster.kill("bot-manager-2").await.unwrap();
    // Acting as the relay once the job is due: the row leaves the outbox and its message
    // enters the queue…
    tokio::time::sleep(Duration::from_millis(3200).saturating_sub(created.elapsed())).await;
    let db = sqlx::PgPool::connect(&t.database_url).await.unwrap();
    let row: (String, i64, String) =
        sqlx::query_as("DELETE FROM bot_manager.outbox RETURNING job_id, dispatch, bot_id")
            .fetch_one(&db)
            .await
            .unwrap();
    let due = bot_manager::Due {
        job_id: row.0,
        dispatch: row.1,
        bot_id: row.2,
    };
    let mut settings = platform::testing::nats_settings().unwrap();
    settings.namespace = t.queue_namespace.clone();
    let queue = platform::queue::nats::NatsQueue::connect(&settings)
        .await
        .unwrap();
    use platform::queue::Queue as _;
    queue
        .publish(
            bot_manager::DUE_SUBJECT,
            &format!("{}:{}", due.job_id, due.dispatch),
            bot_manager::due_envelope(&due, &platform::Clock::system()),
        )
        .await
        .unwrap();
    // …and is delivered to a pull that is never heard from again.
    let mut execution = bot_manager::Settings::default().execution;
    execution.lease_seconds = 5;
    let mut consumer = queue
        .consumer(bot_manager::consumer_spec(&execution))
        .await
        .unwrap();
    let lost = consumer.next().await.unwrap();
    assert!(String::from_utf8_lossy(&lost.message.payload).contains(&due.job_id));
    std::mem::forget(lost);
    drop(consumer);

    t.cluster.spawn("bot-manager-1").unwrap();
    let restarted = Instant::now();
    eventually(Duration::from_secs(30), "the post is published", || async {
        (t.published_count(&admin, &bot).await == 1).then_some(())
    })
    .await;
    let waited = restarted.elapsed();
    eprintln!("a job lost in a dead pull was published {waited:?} after a replica started");
    assert!(
        waited < Duration::from_secs(20),
        "re-driven, not left for the 35 s ack deadline: {waited:?}"
    );
    assert_each_once(&t.published_texts(), &[text.to_string()]);
    t.cluster.stop().await;
}

/// PostgreSQL's data directory on a full volume: a write through the gateway answers 503
/// with `Retry-After` and stores nothing, reads go on, PostgreSQL stays up, and writes go
/// through again once space returns, with no restart of anything.
#[tokio::test]
async fn a_full_postgresql_volume_refuses_writes_keeps_reads_and_recovers_by_itself() {
    let _serial = SERIAL.lock().await;
    if !crate::backends_configured() {
        return;
    }
    let Some((volume, _mountpoint)) = crate::volume::SmallVolume::mount(128) else {
        return;
    };
    let Some(postgres) = PrivatePostgres::start_with_data_on(Some(&volume.path)) else {
        return;
    };
    let Some(mut t) = crate::start_on(crate::Setup {
        database_url: Some(postgres.url()),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    let filler = volume.fill(8 * 1024 * 1024);
    let batch = |round| crate::volume::filler_batch(round, |i| json!(in_ms(-(i as i64))));
    let (accepted, _) = crate::volume::send_until_refused(400, |round| {
        t.send(Method::POST, "/api/v1/logs/batch", &admin, batch(round))
    })
    .await;
    eprintln!("PostgreSQL volume full after {accepted} batches of 100 events");
    // Reads go on (a login writes its session, so the token from before is used).
    t.get("/api/v1/bots/list", &admin).await;
    let stored = t.get("/api/v1/logs/space", &admin).await.to_string();
    assert!(stored.contains("\"debug\""), "{stored}");

    std::fs::remove_file(filler).unwrap();
    eventually(
        Duration::from_secs(15),
        "writes go through again once space returns",
        || async {
            let response = t
                .send(Method::POST, "/api/v1/logs/batch", &admin, batch(accepted))
                .await;
            (response.status() == StatusCode::CREATED).then_some(())
        },
    )
    .await;
    t.cluster.stop().await;
}
