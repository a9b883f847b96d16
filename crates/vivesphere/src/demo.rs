//! `vivesphere demo`: every service in one process beside an in-process fake X, seeded with
//! a demo team through the public API — as a client would, so every record and audit event
//! is what real use makes — and a first post published within seconds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use fake_x::{FakeX, NewUser};
use platform::Clock;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::app::{App, AppOptions};

/// The demo team's name, and what its people and bots are called.
pub const TEAM: &str = "demo";
const MANAGER: &str = "demo_manager";
const EDITOR: &str = "demo_editor";
/// The bots: X handle, display name, and what they post about.
const BOTS: [(&str, &str, &str); 3] = [
    ("lisbon_weather", "Lisbon Weather (automated)", "weather"),
    ("metro_status", "Metro Status (automated)", "metro"),
    ("daily_fact_bot", "Daily Fact (automated)", "fact"),
];
/// Scheduled posts per bot: one a day for a week.
const DAYS: i64 = 7;

/// How to run a demo.
pub struct DemoOptions {
    pub config_dir: PathBuf,
    /// The address every service answers on (`127.0.0.1:8000`; port 0 picks one).
    pub listen: String,
    /// Where the data goes: a new temporary directory (removed at the end) when `None`;
    /// a given one must be empty or absent.
    pub data_dir: Option<PathBuf>,
    pub clock: Clock,
}

/// A person of the demo team and the password to sign in with.
#[derive(Debug, Clone)]
pub struct DemoPerson {
    pub username: String,
    pub role: &'static str,
    pub password: String,
}

/// A running demo: the app and the fake X, and what was seeded.
pub struct Demo {
    pub url: String,
    pub fake_x_url: String,
    pub people: Vec<DemoPerson>,
    /// Bot ids, in the order of the handles in [`BOTS`].
    pub bot_ids: Vec<String>,
    pub scheduled_posts: usize,
    /// The post published at start, as the Bot Manager answers it.
    pub first_post: Value,
    pub fake: Arc<FakeX>,
    shutdown: CancellationToken,
    app: tokio::task::JoinHandle<anyhow::Result<()>>,
    fake_server: tokio::task::JoinHandle<()>,
    data_dir: DataDir,
}

enum DataDir {
    Temporary(tempfile::TempDir),
    Given(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            DataDir::Temporary(dir) => dir.path(),
            DataDir::Given(path) => path,
        }
    }
}

impl Demo {
    /// Starts the fake X and the app, seeds the team and waits for the first post.
    pub async fn start(options: DemoOptions) -> anyhow::Result<Self> {
        let data_dir = prepare_data_dir(options.data_dir)?;
        let fake = Arc::new(FakeX::new(
            fake_x::Settings::default(),
            options.clock.clone(),
        ));
        let fake_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let fake_x_url = format!("http://{}", fake_listener.local_addr()?);
        let fake_router = fake_x::router(fake.clone());
        let fake_server = tokio::spawn(async move {
            let _ = axum::serve(fake_listener, fake_router).await;
        });
        let admin_password = authentication::crypto::random_token();
        let app_options = AppOptions {
            config_dir: options.config_dir,
            env: demo_env(data_dir.path(), &fake_x_url, &admin_password),
            target: None,
            listen: Some(options.listen),
            file_root: None,
            log_level: None,
            clock: options.clock.clone(),
        };
        let app = App::build(app_options).await?;
        let addr: SocketAddr = app.local_addr();
        let shutdown = app.shutdown_token();
        let app = tokio::spawn(app.run());
        let url = format!("http://{addr}");
        let seeded = seed(&url, &fake, &options.clock, admin_password).await;
        let demo_parts = match seeded {
            Ok(seeded) => seeded,
            Err(err) => {
                shutdown.cancel();
                fake_server.abort();
                return Err(err);
            }
        };
        Ok(Self {
            url,
            fake_x_url,
            people: demo_parts.people,
            bot_ids: demo_parts.bot_ids,
            scheduled_posts: demo_parts.scheduled_posts,
            first_post: demo_parts.first_post,
            fake,
            shutdown,
            app,
            fake_server,
            data_dir,
        })
    }

    /// What to print: where everything is, who can sign in, what was seeded.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "ViveSphere demo: every service in one process, beside a fake X.\n\n\
             \x20 console                {url}/console/\n\
             \x20 API, docs and health   {url}/api/\n\
             \x20 fake X (X API v2)      {fake}\n\
             \x20 data                   {data}{removed}\n\n\
             \x20 sign in as             username          password\n",
            url = self.url,
            fake = self.fake_x_url,
            data = self.data_dir.path().display(),
            removed = match self.data_dir {
                DataDir::Temporary(_) => " (removed when the demo stops)",
                DataDir::Given(_) => "",
            },
        );
        for person in &self.people {
            out.push_str(&format!(
                "  {:<22} {:<17} {}\n",
                person.role, person.username, person.password
            ));
        }
        let handles: Vec<String> = BOTS.iter().map(|(h, _, _)| format!("@{h}")).collect();
        out.push_str(&format!(
            "\n  team {TEAM:?}: {} bots ({}), {} posts scheduled over the next {DAYS} days\n",
            BOTS.len(),
            handles.join(", "),
            self.scheduled_posts
        ));
        out.push_str(&format!(
            "  first post: {} as X post {} by @{}: {:?}\n\n",
            self.first_post["state"].as_str().unwrap_or_default(),
            self.first_post["x_post_id"].as_str().unwrap_or_default(),
            BOTS[0].0,
            self.first_post["text"].as_str().unwrap_or_default()
        ));
        out.push_str(&format!(
            "Try it (README, \"Quickstart: your first post\"):\n\
             \x20 T=$(curl -s {url}/api/v1/auth/login -H 'content-type: application/json' \\\n\
             \x20   -d '{{\"username\":\"{MANAGER}\",\"password\":\"{password}\"}}' | jq -r .token)\n\
             \x20 curl -s {url}/api/v1/bots -H \"authorization: Bearer $T\"\n",
            url = self.url,
            password = self.password_of(MANAGER),
        ));
        out
    }

    fn password_of(&self, username: &str) -> &str {
        self.people
            .iter()
            .find(|p| p.username == username)
            .map(|p| p.password.as_str())
            .unwrap_or_default()
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the app (draining as `serve` does) and the fake X; a temporary data directory
    /// goes with them.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let served = self.app.await.context("the app task")?;
        self.fake_server.abort();
        drop(self.data_dir);
        served
    }
}

fn prepare_data_dir(given: Option<PathBuf>) -> anyhow::Result<DataDir> {
    let Some(path) = given else {
        return Ok(DataDir::Temporary(
            tempfile::Builder::new()
                .prefix("vivesphere-demo-")
                .tempdir()?,
        ));
    };
    if path.exists() && std::fs::read_dir(&path)?.next().is_some() {
        bail!(
            "--data-dir {} is not empty: the demo seeds a new system (give an empty or new \
             directory, or none for a temporary one)",
            path.display()
        );
    }
    std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(DataDir::Given(path))
}

/// The settings of a demo: its data under `data_dir`, the Bot Manager on the fake X.
fn demo_env(data_dir: &Path, fake_x_url: &str, admin_password: &str) -> Vec<(String, String)> {
    let under = |name: &str| data_dir.join(name).display().to_string();
    let own: Vec<(String, String)> = vec![
        ("VIVESPHERE_DATABASE__PATH".into(), under("{service}.db")),
        ("VIVESPHERE_QUEUE__PATH".into(), under("queue.db")),
        (
            "VIVESPHERE_AUTHENTICATION__DEVELOPMENT_KEY_PATH".into(),
            under("authentication.key"),
        ),
        (
            "VIVESPHERE_LOGGING__WEBHOOKS__DEVELOPMENT_KEY_PATH".into(),
            under("logging-webhooks.key"),
        ),
        (
            "VIVESPHERE_AUTHENTICATION__INITIAL_ADMIN_PASSWORD".into(),
            admin_password.into(),
        ),
        (
            "VIVESPHERE_SECURE_BOT_DATA__KEK_DIR".into(),
            under("botdata-kek"),
        ),
        (
            "VIVESPHERE_AUTH__SERVICE_SECRETS_DIR".into(),
            under("service-clients"),
        ),
        (
            "VIVESPHERE_CONFIG_CLIENT__CACHE_DIR".into(),
            under("config-cache"),
        ),
        ("VIVESPHERE_TELEMETRY__SPILL_DIR".into(), under("spill")),
        (
            "VIVESPHERE_BOT_MANAGER__X_API__BASE_URL".into(),
            fake_x_url.into(),
        ),
    ];
    // The rest of the environment still applies (a log level, say), but not in place of these.
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(key, _)| !own.iter().any(|(mine, _)| mine == key))
        .collect();
    env.extend(own);
    env
}

struct Seeded {
    people: Vec<DemoPerson>,
    bot_ids: Vec<String>,
    scheduled_posts: usize,
    first_post: Value,
}

/// The demo team through the public API: two people, three bots with X credentials, a week
/// of scheduled posts each, and one post published now.
async fn seed(
    url: &str,
    fake: &FakeX,
    clock: &Clock,
    admin_password: String,
) -> anyhow::Result<Seeded> {
    let api = Api::new(url);
    let admin = api.login("admin", &admin_password).await?;
    let mut people = vec![DemoPerson {
        username: "admin".into(),
        role: "Admin",
        password: admin_password,
    }];
    for (username, role) in [(MANAGER, "Manager"), (EDITOR, "Editor")] {
        let password = authentication::crypto::random_token();
        api.call(
            "POST",
            "/api/v1/auth/users",
            &admin,
            json!({"username": username, "password": password, "roles": [role],
                   "team": TEAM, "display_name": format!("Demo {role}")}),
        )
        .await?;
        people.push(DemoPerson {
            username: username.into(),
            role,
            password,
        });
    }
    let manager = api.login(MANAGER, &people[1].password).await?;
    let mut bot_ids = Vec::new();
    for (handle, name, _) in BOTS {
        let mut user = NewUser::named(handle);
        user.name = Some(name.to_string());
        let tokens = fake.add_user(user);
        let bot = api
            .call(
                "POST",
                "/api/v1/bots",
                &manager,
                json!({"bot_name": name, "x_handle": handle, "operator_account": "vivesphere_demo",
                       "description": format!("{name}: posts automatically, run by @vivesphere_demo"),
                       "credentials": {"access_token": tokens.access_token,
                                       "refresh_token": tokens.refresh_token,
                                       "client_id": tokens.client_id}}),
            )
            .await?;
        let bot_id = bot["bot_id"].as_str().context("a bot id")?.to_string();
        // The label, the bio and the operator, confirmed before the first post.
        api.call(
            "PUT",
            &format!("/api/v1/bots/{bot_id}/compliance"),
            &manager,
            json!({"automated_label": true, "bio_discloses_automation": true,
                   "operator_account": "vivesphere_demo"}),
        )
        .await?;
        bot_ids.push(bot_id);
    }
    let scheduled_posts = schedule_week(&api, &manager, &bot_ids, clock).await?;
    let first_post = publish_first(&api, &manager, &bot_ids[0], clock).await?;
    Ok(Seeded {
        people,
        bot_ids,
        scheduled_posts,
        first_post,
    })
}

/// One post a day at 09:00 UTC for the next week, for every bot; no two texts alike (X
/// forbids the same content across accounts, and the Bot Manager refuses it).
async fn schedule_week(
    api: &Api,
    token: &str,
    bot_ids: &[String],
    clock: &Clock,
) -> anyhow::Result<usize> {
    let today = clock.now().replace_time(time::Time::from_hms(9, 0, 0)?);
    let mut count = 0;
    for day in 1..=DAYS {
        let at = today + time::Duration::days(day);
        for (bot_id, (_, _, topic)) in bot_ids.iter().zip(BOTS) {
            let text = demo_text(topic, at);
            api.call(
                "POST",
                &format!("/api/v1/bots/{bot_id}/posts"),
                token,
                json!({"text": text, "run_at": platform::time_fmt::rfc3339(at)}),
            )
            .await?;
            count += 1;
        }
    }
    Ok(count)
}

fn demo_text(topic: &str, at: time::OffsetDateTime) -> String {
    let day = at.weekday();
    let date = at.date();
    match topic {
        "weather" => format!(
            "Lisbon, {day} {date}: sunny spells, {}–{} °C. #weather (automated post)",
            14 + date.day() % 5,
            20 + date.day() % 6
        ),
        "metro" => format!(
            "Metro status, {day} {date}: all four lines running; line {} has works after 22:00. (automated post)",
            ["blue", "yellow", "green", "red"][usize::from(date.day()) % 4]
        ),
        _ => format!(
            "Fact of {day} {date}: light from the Sun takes about 8 minutes and 20 seconds to reach us. (automated post)"
        ),
    }
}

/// The first post, published now; waits (by the demo's clock's pace, up to a minute) until
/// the Bot Manager has published it to the fake X.
async fn publish_first(
    api: &Api,
    token: &str,
    bot_id: &str,
    clock: &Clock,
) -> anyhow::Result<Value> {
    let text = format!(
        "Hello from the ViveSphere demo, {}! First automated post of @{}. (automated post)",
        clock.now().date(),
        BOTS[0].0
    );
    let created = api
        .call(
            "POST",
            &format!("/api/v1/bots/{bot_id}/posts"),
            token,
            json!({"text": text, "publish_now": true}),
        )
        .await?;
    let post_id = created["post_id"].as_str().context("a post id")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let post = api
            .get(&format!("/api/v1/bots/{bot_id}/posts/{post_id}"), token)
            .await?;
        match post["state"].as_str() {
            Some("published") => return Ok(post),
            Some("failed") => bail!("the first post failed: {post}"),
            _ if tokio::time::Instant::now() > deadline => {
                bail!("the first post was not published within a minute: {post}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The public API, as a client calls it.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(base: &str) -> Self {
        platform::install_crypto_provider();
        Self {
            base: base.to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn login(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let answer = self
            .call(
                "POST",
                "/api/v1/auth/login",
                "",
                json!({"username": username, "password": password}),
            )
            .await?;
        Ok(answer["token"].as_str().context("a token")?.to_string())
    }

    async fn get(&self, path: &str, token: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        Self::answer("GET", path, response).await
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .json(&body);
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        Self::answer(method.as_str(), path, request.send().await?).await
    }

    async fn answer(
        method: &str,
        path: &str,
        response: reqwest::Response,
    ) -> anyhow::Result<Value> {
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path}: {status}: {body}");
        }
        Ok(body)
    }
}
