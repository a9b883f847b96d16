//! Connecting a bot's X account with OAuth 2.0 Authorization Code and PKCE (RFC 7636): the
//! Bot Manager builds X's consent URL with a one-time `state` and the S256 challenge of a
//! fresh verifier; the person consents at X; their client brings back the code with the
//! state; the Bot Manager redeems it with the verifier, learns the account from
//! `GET /2/users/me`, refuses an account that is not the bot's, and keeps the tokens in
//! Secure Bot Data.
//!
//! Only the person who started a connection can complete it, once, within
//! [`CONNECT_TTL_MS`]. The verifier and a confidential client's secret wait in Secure Bot
//! Data (never in this service's tables, never in a URL or an answer); the state is stored as
//! its SHA-256.

use base64::Engine;
use platform::auth::Caller;
use platform::config::Secret;
use platform::{ApiError, ErrorCode};
use serde_json::{Map, Value, json};

use super::bots::{archived, keep_credentials, reachable, resume_with_credentials};
use crate::botdata::{BotDataError, fields};
use crate::model::BotStatus;
use crate::service::{Actor, BotManager};
use crate::store::bots::{self, BotRow};
use crate::store::connections::{self, PendingConnection};
use crate::xapi::{Granted, RefreshError, XCallError};

/// What a bot asks the account holder to grant: read and write posts, read the account,
/// stay connected (a refresh token), upload media.
pub const SCOPES: [&str; 5] = [
    "tweet.read",
    "tweet.write",
    "users.read",
    "offline.access",
    "media.write",
];

/// How long a person has between being sent to X and their code coming back.
pub const CONNECT_TTL_MS: i64 = 10 * 60 * 1000;

/// Secure Bot Data fields that hold a connection's secrets until it completes.
const VERIFIER_FIELD: &str = "oauth_pkce_verifier";
const PENDING_SECRET_FIELD: &str = "oauth_pending_client_secret";

/// What a person asks to connect with: the X app's OAuth 2.0 client, and where X sends them
/// back (as registered with the app).
pub struct ConnectRequest {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub redirect_uri: String,
}

pub struct Started {
    pub authorize_url: String,
    pub state: String,
    pub expires_at: i64,
}

/// What came back on the redirect URI.
pub struct Callback {
    pub state: String,
    pub code: Option<String>,
    /// X's refusal (`access_denied` when the person declined).
    pub error: Option<String>,
}

fn random_url_safe(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .expect("the operating system's random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn sha256_url_safe(value: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// An absolute https URL (http only on the loopback, RFC 8252 §7.3), without a fragment.
fn check_redirect_uri(raw: &str) -> Result<(), ApiError> {
    let url = reqwest::Url::parse(raw)
        .map_err(|_| ApiError::invalid_data("redirect_uri: an absolute URL"))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || url.fragment().is_some() || raw.len() > 2000 || url.password().is_some() {
        return Err(ApiError::invalid_data(
            "redirect_uri: an https URL (http only on localhost) without a fragment or \
             credentials, at most 2000 characters",
        ));
    }
    Ok(())
}

fn check_request(request: &ConnectRequest) -> Result<(), ApiError> {
    let id = &request.client_id;
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_data(
            "client_id: the X app's OAuth 2.0 client id (1 to 128 printable characters)",
        ));
    }
    if let Some(secret) = &request.client_secret
        && (secret.expose().is_empty() || secret.expose().len() > 512)
    {
        return Err(ApiError::invalid_data(
            "client_secret: 1 to 512 characters when given",
        ));
    }
    check_redirect_uri(&request.redirect_uri)
}

fn botdata_unavailable(err: BotDataError) -> ApiError {
    tracing::warn!(error = %err, "Secure Bot Data unavailable for an X connection");
    ApiError::new(
        ErrorCode::NotReady,
        "the credential store is unavailable; nothing was changed, try again",
    )
}

/// The bot the caller may connect: theirs or their team's, not archived.
async fn connectable(m: &BotManager, caller: &Caller, bot_id: &str) -> Result<BotRow, ApiError> {
    caller.require("bots:write")?;
    let bot = reachable(m, caller, bot_id).await?;
    if bot.status == BotStatus::Archived {
        return Err(archived());
    }
    Ok(bot)
}

/// Starts connecting the bot's X account: the URL to send the person to.
pub async fn start(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    request: ConnectRequest,
) -> Result<Started, ApiError> {
    let bot = connectable(m, caller, bot_id).await?;
    check_request(&request)?;
    let (state, verifier) = (random_url_safe(32), random_url_safe(48));
    let mut pending = Map::new();
    pending.insert(VERIFIER_FIELD.into(), Value::String(verifier.clone()));
    if let Some(secret) = &request.client_secret {
        pending.insert(
            PENDING_SECRET_FIELD.into(),
            Value::String(secret.expose().to_string()),
        );
    }
    m.botdata
        .store(
            &bot.bot_id,
            (&bot.owner_id, bot.team.as_deref()),
            &pending,
            None,
        )
        .await
        .map_err(botdata_unavailable)?;
    let now = m.clock.now_millis();
    let expires_at = now + CONNECT_TTL_MS;
    connections::start(
        &m.db,
        &PendingConnection {
            state_hash: sha256_url_safe(&state),
            bot_id: bot.bot_id.clone(),
            requested_by: caller.id().to_string(),
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            confidential: request.client_secret.is_some(),
            created_at: now,
            expires_at,
        },
    )
    .await?;
    let details = json!({"client_id": request.client_id, "redirect_uri": request.redirect_uri});
    m.record(
        Actor::Caller(caller),
        "bot.x_connect_started",
        &bot,
        &bot.bot_id,
        details,
    )
    .await;
    let challenge = sha256_url_safe(&verifier);
    let authorize_url = reqwest::Url::parse_with_params(
        &m.settings.x_api.authorize_url(),
        &[
            ("response_type", "code"),
            ("client_id", request.client_id.as_str()),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("scope", SCOPES.join(" ").as_str()),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .map_err(|e| anyhow::anyhow!("bot_manager.x_api.authorize_url: {e}"))?;
    Ok(Started {
        authorize_url: authorize_url.to_string(),
        state,
        expires_at,
    })
}

/// Takes the bot's connection the state names (a wrong state leaves the bot's connection in
/// progress as it was).
async fn take_pending(
    m: &BotManager,
    bot: &BotRow,
    state: &str,
) -> Result<PendingConnection, ApiError> {
    if state.is_empty() || state.len() > 256 {
        return Err(ApiError::invalid_data("state: the state X sent back"));
    }
    connections::take(&m.db, &bot.bot_id, &sha256_url_safe(state))
        .await?
        .ok_or_else(|| {
            ApiError::invalid_data(
                "state: no connection in progress for this bot has this state (it was used, \
                 replaced by a newer one, or never started); start again",
            )
        })
}

/// A taken connection completes only for the person who started it, while it is fresh.
fn check_pending(
    m: &BotManager,
    caller: &Caller,
    pending: &PendingConnection,
) -> Result<(), ApiError> {
    if pending.requested_by != caller.id() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the person who started this connection can complete it; it is cancelled",
        ));
    }
    if pending.expires_at <= m.clock.now_millis() {
        return Err(ApiError::invalid_data(
            "state: the connection expired (10 minutes); start again",
        ));
    }
    Ok(())
}

/// The pending connection's verifier and client secret, from Secure Bot Data.
async fn pending_secrets(
    m: &BotManager,
    bot: &BotRow,
    pending: &PendingConnection,
) -> Result<(Secret, Option<Secret>), ApiError> {
    let verifier = m
        .botdata
        .reveal(&bot.bot_id, VERIFIER_FIELD)
        .await
        .map_err(botdata_unavailable)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Conflict,
                "the connection's verifier is gone; start again",
            )
        })?;
    let secret = if pending.confidential {
        let revealed = m
            .botdata
            .reveal(&bot.bot_id, PENDING_SECRET_FIELD)
            .await
            .map_err(botdata_unavailable)?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Conflict,
                    "the connection's client secret is gone; start again",
                )
            })?;
        Some(revealed.value)
    } else {
        None
    };
    Ok((verifier.value, secret))
}

/// Forgets a finished connection's secrets (whatever the outcome).
async fn drop_pending_secrets(m: &BotManager, bot_id: &str) {
    for field in [VERIFIER_FIELD, PENDING_SECRET_FIELD] {
        if let Err(err) = m.botdata.delete_field(bot_id, field).await {
            tracing::warn!(error = %err, field, "a finished X connection's secret stays for now");
        }
    }
}

fn x_unavailable(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::NotReady,
        format!("X could not be asked now ({why}); nothing was changed, start again"),
    )
}

/// Redeems the code with the verifier; X's refusal (a wrong verifier, a spent or foreign
/// code) is the caller's 400.
async fn exchange(
    m: &BotManager,
    pending: &PendingConnection,
    code: &str,
    (verifier, secret): (&Secret, Option<&Secret>),
) -> Result<Granted, ApiError> {
    let granted =
        m.x.exchange_code(
            (code, verifier),
            &pending.redirect_uri,
            &pending.client_id,
            secret,
        )
        .await
        .map_err(|err| match err {
            RefreshError::Refused(why) => ApiError::invalid_data(format!(
                "code: X refused the authorization code ({why}); start again"
            )),
            other => x_unavailable(other),
        })?;
    let missing: Vec<&str> = SCOPES
        .iter()
        .copied()
        .filter(|s| *s != "media.write" && !granted.scopes.iter().any(|g| g == s))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::invalid_data(format!(
            "code: the account holder did not grant {}; a bot needs them to post",
            missing.join(", ")
        )));
    }
    Ok(granted)
}

/// The account that consented (`GET /2/users/me`): its id and handle.
async fn account_of(m: &BotManager, token: &Secret) -> Result<(String, String), ApiError> {
    let answer =
        m.x.me(token)
            .await
            .map_err(|err: XCallError| x_unavailable(err))?;
    let field = |name: &str| {
        answer
            .body
            .pointer(&format!("/data/{name}"))
            .and_then(Value::as_str)
            .map(String::from)
    };
    match (answer.is_success(), field("id"), field("username")) {
        (true, Some(id), Some(username)) => Ok((id, username)),
        _ => Err(x_unavailable(format!(
            "users/me answered {}",
            answer.status
        ))),
    }
}

/// Hands back at X the tokens of an account the bot will not use (RFC 7009), so none stays
/// valid anywhere; a failure is logged, not the caller's (the tokens were never stored).
async fn revoke_granted(m: &BotManager, granted: &Granted, client: (&str, Option<&Secret>)) {
    let tokens = std::iter::once(&granted.access_token).chain(granted.refresh_token.as_ref());
    for token in tokens {
        match m.x.revoke(token, client.0, client.1).await {
            Ok(answer) if answer.is_success() => {}
            Ok(answer) => {
                tracing::warn!(status = answer.status, "X did not revoke a refused token")
            }
            Err(err) => {
                tracing::warn!(error = %err, "X could not be asked to revoke a refused token")
            }
        }
    }
}

/// Refuses an account that is not the bot's: another handle, another X user, or an account
/// another bot already holds.
async fn check_account(
    m: &BotManager,
    bot: &BotRow,
    (id, username): (&str, &str),
) -> Result<(), ApiError> {
    if let Some(handle) = &bot.x_handle
        && !handle
            .trim_start_matches('@')
            .eq_ignore_ascii_case(username)
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "the X account that consented is @{username}, but this bot is @{handle}; sign \
                 in to X as @{handle} and connect again (nothing was stored)"
            ),
        ));
    }
    if bot.x_user_id.as_deref().is_some_and(|known| known != id) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("@{username} is not the X account this bot posted as (nothing was stored)"),
        ));
    }
    // Which bot holds it is not said: it may be beyond the caller's reach.
    if bots::holding_x_user(&m.db, id, &bot.bot_id)
        .await?
        .is_some()
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("@{username} is already connected to another bot (nothing was stored)"),
        ));
    }
    Ok(())
}

/// Completes a connection with what X sent back: the bot holds the account's tokens, knows
/// its X id and handle, and — if it needed re-authorisation — resumes.
pub async fn complete(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    callback: Callback,
) -> Result<BotRow, ApiError> {
    let bot = connectable(m, caller, bot_id).await?;
    let pending = take_pending(m, &bot, &callback.state).await?;
    let outcome = match check_pending(m, caller, &pending) {
        Ok(()) => connect(m, caller, &bot, &pending, &callback).await,
        Err(err) => Err(err),
    };
    drop_pending_secrets(m, &bot.bot_id).await;
    if let Err(err) = &outcome {
        let details = json!({"reason": err.message});
        m.record(
            Actor::Caller(caller),
            "bot.x_connect_failed",
            &bot,
            &bot.bot_id,
            details,
        )
        .await;
    }
    outcome
}

async fn connect(
    m: &BotManager,
    caller: &Caller,
    bot: &BotRow,
    pending: &PendingConnection,
    callback: &Callback,
) -> Result<BotRow, ApiError> {
    if let Some(error) = &callback.error {
        return Err(ApiError::invalid_data(format!(
            "error: X did not authorise the bot ({}); nothing was stored",
            error.chars().take(64).collect::<String>()
        )));
    }
    let Some(code) = callback
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 1024)
    else {
        return Err(ApiError::invalid_data("code: the code X sent back"));
    };
    let (verifier, secret) = pending_secrets(m, bot, pending).await?;
    let granted = exchange(m, pending, code, (&verifier, secret.as_ref())).await?;
    let (x_user_id, username) = account_of(m, &granted.access_token).await?;
    if let Err(refused) = check_account(m, bot, (&x_user_id, &username)).await {
        revoke_granted(m, &granted, (&pending.client_id, secret.as_ref())).await;
        return Err(refused);
    }
    let mut credentials = Map::new();
    let mut put = |field: &str, value: &str| {
        credentials.insert(field.to_string(), Value::String(value.to_string()));
    };
    put(fields::ACCESS_TOKEN, granted.access_token.expose());
    if let Some(refresh) = &granted.refresh_token {
        put(fields::REFRESH_TOKEN, refresh.expose());
    }
    put(fields::CLIENT_ID, &pending.client_id);
    if let Some(secret) = &secret {
        put(fields::CLIENT_SECRET, secret.expose());
    }
    keep_credentials(m, bot, &credentials).await?;
    let bot = set_account(m, bot, (&x_user_id, &username)).await?;
    let details = json!({"x_user_id": x_user_id, "x_handle": username, "scopes": granted.scopes});
    m.record(
        Actor::Caller(caller),
        "bot.x_connected",
        &bot,
        &bot.bot_id,
        details,
    )
    .await;
    resume_with_credentials(m, bot, &credentials).await
}

/// Keeps the account's X id and handle (as X spells it) on the bot, retrying an edit that
/// raced another.
async fn set_account(
    m: &BotManager,
    bot: &BotRow,
    (x_user_id, username): (&str, &str),
) -> Result<BotRow, ApiError> {
    let mut current = bot.clone();
    for _ in 0..5 {
        current.x_user_id = Some(x_user_id.to_string());
        current.x_handle = Some(username.to_string());
        if let Some(updated) = bots::update(&m.db, &current, m.clock.now_millis()).await? {
            return Ok(updated);
        }
        current = bots::get(&m.db, &bot.bot_id)
            .await?
            .ok_or_else(|| ApiError::not_found("no such bot"))?;
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        "the bot kept changing meanwhile; its tokens are stored, edit its handle to match",
    ))
}
