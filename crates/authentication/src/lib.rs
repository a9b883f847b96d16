//! Authentication service: users, password hashes, roles and permissions, login sessions
//! with rotating refresh tokens, Ed25519 signing keys (JWKS), TOTP, brute-force protection
//! and OAuth service clients, under `/api/v1/auth`.

mod api;
pub mod crypto;
mod hashing;
mod keys;
mod mfa;
mod ops;
pub mod password;
mod service;
mod settings;
mod store;
mod tokens;

use std::sync::Arc;

use anyhow::{Context, bail};
use async_trait::async_trait;
use platform::activity::ActivityLog;
use platform::auth::TokenVerifier;
use platform::config::Profile;
use platform::db::{Database, MigrationStep, Migrations};
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use utoipa::OpenApi;

pub use settings::Settings;

use crate::crypto::Sealer;
use crate::keys::KeyStore;
use crate::password::PasswordPolicy;
use crate::service::{Authentication, LocalKeys};
use crate::store::users::NewUser;

pub const NAME: &str = "authentication";
pub const CONFIG_SECTION: &str = "authentication";
pub const ROUTE_PREFIX: &str = "/api/v1/auth";

const STEPS: &[MigrationStep] = &[
    MigrationStep {
        version: 1,
        description: "authentication",
        sql: include_str!("../migrations/0001_authentication.sql"),
    },
    MigrationStep {
        version: 2,
        description: "user team",
        sql: include_str!("../migrations/0002_user_team.sql"),
    },
    MigrationStep {
        version: 3,
        description: "signing key lead",
        sql: include_str!("../migrations/0003_signing_key_lead.sql"),
    },
    MigrationStep {
        version: 4,
        description: "post permissions",
        sql: include_str!("../migrations/0004_post_permissions.sql"),
    },
];

const MIGRATIONS: Migrations = Migrations {
    sqlite: STEPS,
    postgres: STEPS,
};

pub(crate) use platform::time_fmt::rfc3339_from_unix as rfc3339;

/// The key that seals secrets at rest: from config, or in development from a file made on
/// first start.
fn sealer(settings: &Settings, profile: Profile) -> anyhow::Result<Sealer> {
    Sealer::from_settings(
        settings.encryption_key.as_ref(),
        profile,
        &settings.development_key_path,
        "authentication.encryption_key",
    )
}

/// Creates the first admin when there are no users at all.
async fn bootstrap_admin(state: &Authentication) -> anyhow::Result<()> {
    if store::users::count(&state.db).await? > 0 {
        return Ok(());
    }
    let username = &state.settings.initial_admin_username;
    let (password, generated) = match &state.settings.initial_admin_password {
        Some(password) => {
            state
                .policy
                .check(username, password.expose())
                .map_err(|reason| {
                    anyhow::anyhow!("authentication.initial_admin_password: {reason}")
                })?;
            (password.expose().to_string(), false)
        }
        None => (crypto::random_token(), true),
    };
    let hash = state.hash_password(password.clone()).await?;
    let created = store::users::create(
        &state.db,
        NewUser {
            username,
            display_name: "Administrator",
            email: None,
            team: None,
            password_hash: &hash,
            roles: &[store::roles::ADMIN.to_string()],
            must_change_password: generated,
        },
        state.clock.unix_seconds(),
    )
    .await?;
    if created.is_some() && generated {
        // Printed once, on stdout only, so the operator can sign in and change it.
        println!(
            "Initial admin created: username {username:?}, one-time password {password:?} \
             (change it at POST {ROUTE_PREFIX}/password before logging in)"
        );
    }
    Ok(())
}

/// Registers the service clients the configuration declares, with their mounted secrets.
async fn register_declared_clients(
    state: &Authentication,
    ctx: &TargetContext,
) -> anyhow::Result<()> {
    let dir = &ctx.platform.auth.service_secrets_dir;
    for client in &state.settings.service_clients {
        for scope in &client.scopes {
            if !store::roles::PERMISSIONS.contains(&scope.as_str()) {
                bail!(
                    "authentication.service_clients: {} asks for the unknown scope {scope:?}",
                    client.client_id
                );
            }
        }
        let Some(secret) =
            platform::auth::service_secret(dir, &client.client_id, ctx.config.profile())?
        else {
            tracing::warn!(
                client_id = %client.client_id,
                file = %platform::auth::service_secret_path(dir, &client.client_id).display(),
                "declared service client has no secret file; not registered"
            );
            continue;
        };
        store::clients::upsert_declared(
            &state.db,
            &client.client_id,
            secret.expose(),
            &client.audiences,
            &client.scopes,
            &client.description,
            state.clock.unix_seconds(),
        )
        .await?;
    }
    Ok(())
}

fn key_store(
    db: &Database,
    sealer: Arc<Sealer>,
    settings: &Settings,
    ctx: &TargetContext,
) -> Arc<KeyStore> {
    let longest_token = settings
        .access_token_ttl
        .max(settings.mfa_token_ttl)
        .max(settings.service_token_ttl);
    Arc::new(KeyStore::new(
        db.clone(),
        sealer,
        (
            (longest_token + ctx.platform.auth.leeway) as i64,
            settings.signing_key_lead_seconds as i64,
        ),
        ctx.clock.clone(),
    ))
}

/// `vivesphere auth rotate-keys`: a new signing key; the old ones stay published until the
/// tokens they signed expire. Returns the new key id.
pub async fn rotate_keys(ctx: &TargetContext) -> anyhow::Result<(String, i64)> {
    let settings: Settings = ctx.config.section(CONFIG_SECTION)?;
    let db = ctx
        .database
        .clone()
        .context("the authentication target needs its database")?;
    let sealer = Arc::new(sealer(&settings, ctx.config.profile())?);
    let keys = key_store(&db, sealer, &settings, ctx);
    keys.ensure_key().await?;
    let (key, signs_from) = keys.rotate().await?;
    Ok((key.kid, signs_from))
}

/// The service's state over its database: settings, signing keys, roles, the verifier.
async fn open_state(ctx: &TargetContext) -> anyhow::Result<(Arc<Authentication>, TokenVerifier)> {
    let live = ctx
        .live
        .section::<Settings>(CONFIG_SECTION, check_live_settings)?;
    let settings: Settings = live.get().as_ref().clone();
    if settings.service_token_ttl > 300 {
        bail!("authentication.service_token_ttl is at most 300 seconds");
    }
    let db = ctx.require_database(NAME)?;
    let sealer = Arc::new(sealer(&settings, ctx.config.profile())?);
    let keys = key_store(&db, sealer.clone(), &settings, ctx);
    keys.ensure_key().await?;
    store::roles::seed(&db, ctx.clock.unix_seconds()).await?;
    let verifier = TokenVerifier::new(
        Arc::new(LocalKeys {
            keys: keys.clone(),
            db: db.clone(),
            clock: ctx.clock.clone(),
        }),
        &ctx.platform.auth,
        NAME,
        ctx.clock.clone(),
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let state = Arc::new(Authentication {
        policy: PasswordPolicy::new(live.clone()),
        live,
        decoy_hash: password::DECOY_HASH.to_string(),
        hashing: hashing::HashingPool::new(match settings.hashing_threads {
            0 => cores,
            threads => threads,
        })?,
        sealer,
        activity: ActivityLog::new(ctx.events.clone(), NAME),
        queue: ctx.queue.clone(),
        auth: ctx.platform.auth.clone(),
        verifier: verifier.clone(),
        keys,
        settings,
        db,
        clock: ctx.clock.clone(),
    });
    Ok((state, verifier))
}

/// `vivesphere auth reset-password --username U`: a new one-time password for the user
/// (printed by the caller, changed at the next login); their sessions end; audited with the
/// operator as actor.
pub async fn reset_password(
    ctx: &TargetContext,
    operator: &str,
    username: &str,
) -> anyhow::Result<String> {
    let (state, _) = open_state(ctx).await?;
    let reset = ops::users::reset_password_by_operator(&state, operator, username)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(reset.temporary_password)
}

/// Rules the types cannot say, checked at start and before a live change applies.
fn check_live_settings(settings: &Settings) -> Result<(), String> {
    let password = &settings.password;
    if password.min_length < 8 || password.min_length > password.max_length.max(128) {
        return Err("password.min_length is 8 to password.max_length".into());
    }
    if password.min_strength > 4 {
        return Err("password.min_strength is 0 to 4".into());
    }
    let brute = &settings.brute_force;
    if brute.backoff_after == 0 || brute.lock_after < brute.backoff_after {
        return Err(
            "brute_force.backoff_after is at least 1 and lock_after at least backoff_after".into(),
        );
    }
    Ok(())
}

/// The Authentication target.
pub struct AuthenticationService;

#[async_trait]
impl Target for AuthenticationService {
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION)
            .with_routes(ROUTE_PREFIX)
            .with_settings(settings::declared_settings)
            .with_migrations(MIGRATIONS)
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let (state, verifier) = open_state(&ctx).await?;
        bootstrap_admin(&state).await?;
        register_declared_clients(&state, &ctx).await?;
        Ok(BuiltTarget::service(
            api::router(state),
            "Authentication",
            ROUTE_PREFIX,
            api::AuthApi::openapi(),
        )
        .with_verifier(verifier))
    }
}
