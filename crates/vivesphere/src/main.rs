//! `vivesphere`: sets up TLS and telemetry, loads config, and runs the chosen command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use vivesphere::app::{
    App, AppOptions, load_config, migrate, read_current_central, render_config_check,
    reset_user_password, rotate_signing_keys,
};
use vivesphere::botdata::BotdataCommand;
use vivesphere::registry;

#[derive(Parser)]
#[command(
    name = "vivesphere",
    version,
    about = "ViveSphere Bot Manager: every service in one binary"
)]
struct Cli {
    /// Directory holding global.yaml, <target>.yaml and profiles/<ENV>.yaml.
    #[arg(
        long,
        global = true,
        env = "VIVESPHERE_CONFIG_DIR",
        default_value = "config"
    )]
    config_dir: PathBuf,
    /// Print the valid targets and exit.
    #[arg(long)]
    list_targets: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every target in one process (default), or one with --target.
    Serve {
        /// The target to serve; `all` or none runs everything.
        #[arg(long, value_parser = TargetName)]
        target: Option<String>,
        /// Address to listen on; beats server.listen.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Every service in one process beside a fake X, seeded with a demo team (an admin, a
    /// Manager, an Editor, three bots, a week of scheduled posts); publishes a first post and
    /// prints where everything is and the demo passwords.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: String,
        /// Where the demo keeps its data (empty or new); none: a temporary directory,
        /// removed when the demo stops.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Apply the embedded migrations of every target, or of one.
    Migrate {
        /// The target whose migrations to apply; `all` or none: every target's.
        #[arg(long, value_parser = TargetName)]
        target: Option<String>,
    },
    /// Back up every service's database (and the embedded queue) into a new directory, with
    /// a manifest of versions, migration levels and checksums; safe while the system runs.
    /// Keys and secrets are never in it (docs/operations.md says how to keep them).
    Backup {
        /// The directory to create (it must not exist or be empty).
        #[arg(long)]
        out: PathBuf,
        /// PostgreSQL to dump each service's schema from (default: database.url); without
        /// one, the SQLite files are copied.
        #[arg(long, env = "VIVESPHERE_BACKUP_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Restore a backup into an empty data directory (or empty PostgreSQL schemas), after
    /// checking every checksum and that no database is newer than this binary.
    Restore {
        /// The backup directory.
        #[arg(long)]
        from: PathBuf,
        /// PostgreSQL to restore each service's schema into (default: database.url).
        #[arg(long, env = "VIVESPHERE_BACKUP_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Authentication service administration.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Secure Bot Data administration: KEKs, rewrap, backup and restore.
    Botdata {
        #[command(subcommand)]
        command: BotdataCommand,
    },
    /// Gateway tools.
    Gateway {
        #[command(subcommand)]
        command: GatewayCommand,
    },
    /// Run the cluster's topology as processes on this machine: every service its own
    /// process (two Authentication and two Bot Manager replicas) behind the gateway, on
    /// PostgreSQL and NATS JetStream. Stops everything on SIGTERM or Ctrl-C.
    LocalCluster(LocalClusterArgs),
}

/// A `--target` value: one of the registry's names, listed in `--help`; anything else is an
/// error naming the valid ones.
#[derive(Clone)]
struct TargetName;

impl clap::builder::TypedValueParser for TargetName {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let name = value.to_string_lossy().into_owned();
        registry::select(Some(&name)).map_err(|e| {
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{e}\n"))
        })?;
        Ok(name)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            registry::target_names()
                .into_iter()
                .map(clap::builder::PossibleValue::new),
        ))
    }
}

#[derive(Args)]
struct LocalClusterArgs {
    /// The PostgreSQL database the services keep their schemas in.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
    /// The NATS server (with JetStream) the services queue through.
    #[arg(
        long,
        default_value = "nats://127.0.0.1:4222",
        conflicts_with = "nats_nodes"
    )]
    nats_url: String,
    /// Start this many private nats-servers instead (clustered on loopback when more than
    /// one, their stores under <data-dir>/nats/), every stream kept on each: 3 is the
    /// staging and production shape, which survives losing one.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    nats_nodes: Option<u8>,
    /// The nats-server binary `--nats-nodes` runs.
    #[arg(long, default_value = "nats-server")]
    nats_server: PathBuf,
    /// First token of every subject and stream name (one per cluster on a shared NATS).
    #[arg(long, default_value = "vivesphere")]
    queue_namespace: String,
    /// The gateway's port on 127.0.0.1 (the services take free ports).
    #[arg(long, default_value_t = platform::server::SERVICE_PORT)]
    port: u16,
    /// Shared secrets, each process's state, and its log in logs/<process>.log.
    #[arg(long, default_value = "./data/local-cluster")]
    data_dir: PathBuf,
    /// A file holding the first admin's password (else a random one is written once to
    /// <data-dir>/initial-admin-password, readable by you only).
    #[arg(long)]
    initial_admin_password_file: Option<PathBuf>,
    /// X's API for the Bot Manager, e.g. a `vivesphere serve --target fake-x`.
    #[arg(long)]
    x_api_url: Option<String>,
}

#[derive(Subcommand)]
enum GatewayCommand {
    /// Write Kong's DB-less configuration from the route table (and the current public
    /// keys, read from the Authentication service's JWKS when its URL is given).
    ExportKong {
        /// Where to write it; stdout when absent.
        #[arg(long)]
        output: Option<PathBuf>,
        /// The Authentication service (`http://authentication:8000`), for the public keys.
        #[arg(long)]
        authentication_url: Option<String>,
        /// Requests per minute per client address (default: `gateway.rate_limit.per_minute`'s).
        #[arg(long, default_value_t = gateway::RateLimitSettings::default().per_minute)]
        rate_limit_per_minute: u32,
        /// Keep a running DB-less Kong current: every `--interval-seconds`, export again and
        /// load what changed through this Admin API (`http://127.0.0.1:8001`), until a signal.
        #[arg(long, requires = "authentication_url")]
        kong_admin_url: Option<String>,
        /// How often to look for new keys with `--kong-admin-url`; well below
        /// `authentication.signing_key_lead_seconds`.
        #[arg(long, default_value_t = 30)]
        interval_seconds: u64,
        /// Answer `/health/live` and `/health/ready` here while keeping Kong current.
        #[arg(long, requires = "kong_admin_url")]
        health_listen: Option<std::net::SocketAddr>,
    },
}

#[derive(Subcommand)]
enum AuthCommand {
    /// Start a new signing key; old public keys stay published until their tokens expire.
    RotateKeys,
    /// Give a user (a lost admin, say) a new one-time password, printed once; they change it
    /// at their next login, their sessions end, and the reset is audited.
    ResetPassword {
        /// The user's username.
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration, secrets redacted, with each value's origin.
    Check {
        /// The target whose configuration to print; none: every target's.
        #[arg(long, value_parser = TargetName)]
        target: Option<String>,
        /// Read `*_file` secrets under this directory instead of `/`: checks a container's
        /// configuration offline, its mounted files laid out there.
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

/// Large allocations (argon2 takes 19 MiB per password hash) go straight to mmap and back to
/// the OS when freed. Without a fixed threshold glibc raises it after the first such free
/// and then keeps every later 19 MiB block in a per-thread arena for good.
fn return_large_allocations_to_the_os() {
    // SAFETY: mallopt only sets an allocator parameter; called once, before other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// glibc keeps memory freed after a burst of load in its arenas, so a process stays at its
/// peak long after the load has gone. Every few seconds a background thread asks it to give
/// free pages back (`malloc_trim`), so memory follows the load down as well as up.
fn give_freed_memory_back_periodically() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("memory-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(10));
                    // SAFETY: malloc_trim only returns free pages; it takes the arenas' locks.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                }
            });
        if let Err(err) = spawned {
            eprintln!("warning: no memory-trim thread: {err}");
        }
    }
}

fn main() -> ExitCode {
    return_large_allocations_to_the_os();
    give_freed_memory_back_periodically();
    platform::install_crypto_provider();
    let cli = Cli::parse();
    if cli.list_targets {
        for name in registry::target_names() {
            println!("{name}");
        }
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve {
        target: None,
        listen: None,
    });
    let config_dir = cli.config_dir;
    let options = |target| AppOptions::from_process_env(config_dir.clone(), target, None);
    match command {
        Command::Serve { target, listen } => {
            serve(AppOptions::from_process_env(
                config_dir.clone(),
                target,
                listen,
            ))
            .await
        }
        Command::Demo { listen, data_dir } => demo(config_dir.clone(), listen, data_dir).await,
        Command::Migrate { target } => {
            for line in migrate(&options(target)).await? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Backup { out, database_url } => {
            backup(&options(None), &out, database_url.as_deref()).await
        }
        Command::Restore { from, database_url } => {
            restore(&options(None), &from, database_url.as_deref()).await
        }
        Command::Auth {
            command: AuthCommand::RotateKeys,
        } => {
            let (kid, signs_from) = rotate_signing_keys(&options(None)).await?;
            println!(
                "new signing key {kid}: published now, signing from {}; the key it replaces signs until then and stays published until its tokens expire",
                platform::time_fmt::rfc3339_from_unix(signs_from)
            );
            Ok(())
        }
        Command::Auth {
            command: AuthCommand::ResetPassword { username },
        } => {
            let password = reset_user_password(&options(None), &username).await?;
            println!(
                "one-time password for {username:?}: {password}\n(change it at POST /api/v1/auth/password before logging in; their sessions have ended)"
            );
            Ok(())
        }
        Command::Botdata { command } => vivesphere::botdata::run(&options(None), command).await,
        Command::Gateway {
            command:
                GatewayCommand::ExportKong {
                    output,
                    authentication_url,
                    rate_limit_per_minute,
                    kong_admin_url,
                    interval_seconds,
                    health_listen,
                },
        } => {
            let export = vivesphere::kong::Export {
                authentication_url,
                rate_limit_per_minute,
                output,
                kong_admin_url,
                interval: std::time::Duration::from_secs(interval_seconds.max(1)),
                health_listen,
            };
            let stop = tokio_util::sync::CancellationToken::new();
            platform::server::cancel_on_signal(stop.clone());
            vivesphere::kong::export(&export, stop).await
        }
        Command::LocalCluster(args) => local_cluster(config_dir.clone(), args).await,
        Command::Config {
            command: ConfigCommand::Check { target, root },
        } => config_check(options(target), root).await,
    }
}

/// `vivesphere config check`: the effective settings with their origins; for one target
/// online, the central layer as the Configuration service has it now.
async fn config_check(mut options: AppOptions, root: Option<PathBuf>) -> anyhow::Result<()> {
    let offline = root.is_some();
    options.file_root = root;
    let loaded = load_config(&options)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    if options.target.is_some() && !offline {
        match read_current_central(&loaded, options.clock.clone()).await {
            Ok((revision, url)) => {
                eprintln!("central settings: revision {revision}, read from {url}")
            }
            Err(err) => eprintln!(
                "note: central settings not read ({err:#}); showing the saved copy, if any"
            ),
        }
    }
    print!("{}", render_config_check(&options, &loaded));
    Ok(())
}

/// `vivesphere serve`: telemetry from the loaded configuration, then the app until a signal.
async fn serve(mut options: AppOptions) -> anyhow::Result<()> {
    let loaded = load_config(&options)?;
    options.log_level = Some(platform::telemetry::init(
        &loaded.process_platform.telemetry,
    )?);
    let profile = loaded.process.profile().as_str();
    let targets = options
        .target
        .clone()
        .unwrap_or_else(|| registry::ALL.into());
    let app = App::build_with(&options, loaded).await?;
    platform::server::cancel_on_signal(app.shutdown_token());
    tracing::info!(address = %app.local_addr(), profile, targets, "listening");
    app.run().await?;
    tracing::info!("stopped");
    Ok(())
}

/// `vivesphere demo`: the demo until a signal, quiet but for errors (`RUST_LOG` or
/// `VIVESPHERE_TELEMETRY__LOG_LEVEL` say otherwise).
async fn demo(
    config_dir: PathBuf,
    listen: String,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let level = std::env::var("VIVESPHERE_TELEMETRY__LOG_LEVEL").unwrap_or_else(|_| "error".into());
    platform::telemetry::init(&platform::config::TelemetrySettings {
        log_level: level,
        ..Default::default()
    })?;
    let demo = vivesphere::demo::Demo::start(vivesphere::demo::DemoOptions {
        config_dir,
        listen,
        data_dir,
        clock: platform::Clock::system(),
    })
    .await?;
    println!("{}", demo.summary());
    println!("Ctrl-C stops the demo.");
    platform::server::cancel_on_signal(demo.shutdown_token());
    demo.shutdown_token().cancelled().await;
    demo.stop().await?;
    println!("stopped");
    Ok(())
}

/// `vivesphere local-cluster`: every process, their addresses, until a signal.
async fn local_cluster(config_dir: PathBuf, args: LocalClusterArgs) -> anyhow::Result<()> {
    let initial_admin_password = match args.initial_admin_password_file {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))?
                .trim_end()
                .to_string(),
        ),
        None => None,
    };
    let options = vivesphere::local_cluster::ClusterOptions {
        binary: std::env::current_exe()?,
        config_dir,
        data_dir: args.data_dir,
        database_url: args.database_url,
        nats_url: args.nats_url,
        nats_nodes: args.nats_nodes.map_or(0, usize::from),
        nats_server: args.nats_server,
        queue_namespace: args.queue_namespace,
        gateway_port: args.port,
        initial_admin_password,
        x_api_url: args.x_api_url,
        extra_env: Vec::new(),
        ready_timeout: std::time::Duration::from_secs(60),
    };
    let mut cluster = vivesphere::local_cluster::LocalCluster::start(options).await?;
    for member in cluster.members() {
        println!(
            "{:<18} {}  pid {}",
            member.name,
            member.url,
            member.pid().unwrap_or_default()
        );
    }
    println!(
        "admin: username \"admin\", password in {} (readable by you only; it is the \
         first admin's while the database has no users)",
        cluster.admin_password_file().display()
    );
    if cluster.member_named(console::NAME).is_some() {
        println!("console: {}/console/", cluster.gateway_url());
    }
    println!("ready: {} (Ctrl-C stops everything)", cluster.gateway_url());
    let stop = tokio_util::sync::CancellationToken::new();
    platform::server::cancel_on_signal(stop.clone());
    // Watch the processes as Kubernetes would: one that dies is started again.
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {
                for line in cluster.supervise_once()? {
                    eprintln!("{line}");
                }
            }
        }
    }
    cluster.stop().await;
    println!("stopped");
    Ok(())
}

/// `vivesphere backup`: one line per file, then what was left out.
async fn backup(
    options: &AppOptions,
    out: &std::path::Path,
    database_url: Option<&str>,
) -> anyhow::Result<()> {
    let manifest = vivesphere::backup::backup(options, out, database_url).await?;
    for file in &manifest.files {
        println!(
            "{}: {} ({} bytes, migration {}, sha256 {})",
            file.service, file.file, file.bytes, file.migration_level, file.sha256
        );
    }
    println!(
        "backup written to {}; not in it (keep apart): {}",
        out.display(),
        manifest.kept_apart.join("; ")
    );
    Ok(())
}

/// `vivesphere restore`: what went where, and the reminder to bring the keys back.
async fn restore(
    options: &AppOptions,
    from: &std::path::Path,
    database_url: Option<&str>,
) -> anyhow::Result<()> {
    for line in vivesphere::backup::restore(options, from, database_url).await? {
        println!("{line}");
    }
    println!(
        "restored; put the key material back (KEKs, encryption keys, service secrets) before starting"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every command with its path, depth first.
    fn commands(command: &clap::Command, path: String, all: &mut Vec<(String, clap::Command)>) {
        all.push((path.clone(), command.clone()));
        for sub in command.get_subcommands() {
            commands(sub, format!("{path} {}", sub.get_name()), all);
        }
    }

    #[test]
    fn every_option_says_what_it_is_for_and_every_target_option_lists_the_targets() {
        let mut all = Vec::new();
        commands(&Cli::command(), "vivesphere".into(), &mut all);
        let targets: Vec<String> = registry::target_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        let mut target_options = 0;
        for (path, command) in &all {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                assert!(arg.get_help().is_some(), "{path} --{id} has no description");
                if id == "target" {
                    target_options += 1;
                    let listed: Vec<String> = arg
                        .get_possible_values()
                        .iter()
                        .map(|v| v.get_name().to_string())
                        .collect();
                    assert_eq!(listed, targets, "{path} --target");
                }
            }
        }
        assert_eq!(
            target_options, 3,
            "serve, migrate and config check take --target"
        );
    }

    #[test]
    fn an_unknown_target_is_refused_naming_the_valid_ones() {
        let error = Cli::try_parse_from(["vivesphere", "migrate", "--target", "kong"])
            .err()
            .expect("refused");
        let message = error.to_string();
        assert!(message.contains("unknown target \"kong\""), "{message}");
        assert!(message.contains("secure-bot-data"), "{message}");
    }
}
