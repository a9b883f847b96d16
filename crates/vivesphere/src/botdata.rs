//! `vivesphere botdata …`: the Secure Bot Data operator commands (KEK rotation, rewrap,
//! retiring KEKs, status, backup, restore), run against the service's own database.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use secure_bot_data::{CONFIG_SECTION, NAME, Settings, operator};

use crate::app::{AppOptions, open_target};

#[derive(Subcommand)]
pub enum BotdataCommand {
    /// Add a KEK version for new writes (written into secure_bot_data.kek_dir).
    RotateKek {
        /// Print `<version> <base64>` instead of writing the file, to add it to a Kubernetes
        /// Secret yourself.
        #[arg(long)]
        print: bool,
    },
    /// Re-wrap every data key under the newest KEK, without decrypting any value. Resumable.
    Rewrap {
        /// Data keys per batch.
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
    /// Stop using KEK versions below VERSION (refused while a data key still needs one).
    RetireKeks {
        /// The lowest KEK version still in use (1 or more).
        #[arg(long, value_name = "VERSION")]
        below: u32,
    },
    /// KEK versions configured, data keys per KEK version, minimum decryption version.
    Status,
    /// Write ciphertexts and wrapped data keys (never a KEK) as NDJSON.
    Backup {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into an empty store.
    Restore {
        /// The backup file to read.
        #[arg(long)]
        from: PathBuf,
    },
}

pub async fn run(options: &AppOptions, command: BotdataCommand) -> anyhow::Result<()> {
    let (entry, db) = open_target(options, NAME).await?;
    let settings: Settings = entry.config.section(CONFIG_SECTION)?;
    let outcome = execute(&db, &settings, &options.clock, command).await;
    db.close().await;
    outcome
}

async fn execute(
    db: &platform::db::Database,
    settings: &Settings,
    clock: &platform::Clock,
    command: BotdataCommand,
) -> anyhow::Result<()> {
    match command {
        BotdataCommand::RotateKek { print } => {
            let rotated = operator::rotate_kek(db, settings, print, clock).await?;
            match rotated.key {
                Some(key) => println!("{} {}", rotated.version, key.as_str()),
                None => println!(
                    "KEK version {} added to {}; new writes use it once each replica rereads its keys \
                     (within secure_bot_data.kek_reload_interval)",
                    rotated.version, settings.kek_dir
                ),
            }
        }
        BotdataCommand::Rewrap { batch } => {
            let report = operator::rewrap(
                db,
                settings,
                batch,
                |done, remaining| {
                    println!("rewrapped {done}, {remaining} to go");
                },
                clock,
            )
            .await?;
            println!(
                "done: {} data key(s) now under KEK version {} ({} changed concurrently)",
                report.rewrapped, report.target_version, report.skipped
            );
        }
        BotdataCommand::RetireKeks { below } => {
            operator::retire_below(db, settings, below, clock).await?;
            println!("KEK versions below {below} are retired");
        }
        BotdataCommand::Status => {
            println!(
                "{}",
                serde_json::to_string_pretty(&operator::status(db, settings).await?)?
            );
        }
        BotdataCommand::Backup { out } => {
            let file = std::fs::File::create(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            let records = operator::backup(db, &mut writer, clock).await?;
            writer.flush()?;
            println!("{records} record(s) written to {}", out.display());
        }
        BotdataCommand::Restore { from } => {
            let file = std::fs::File::open(&from)
                .with_context(|| format!("cannot open {}", from.display()))?;
            let records = operator::restore(db, std::io::BufReader::new(file), clock).await?;
            println!("{records} record(s) restored from {}", from.display());
        }
    }
    Ok(())
}
