//! `tpw verify` and `tpw audit verify`: the read-only checks of a ledger (by replaying it from
//! genesis) and of a node's audit log (by walking its hash chain).

use super::common::print_json;
use anyhow::{bail, Context};
use clap::Subcommand;
use std::path::{Path, PathBuf};

/// What `tpw verify` was asked.
#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// The node's data folder (holding db/).
    #[arg(long, required_unless_present = "archive", conflicts_with = "archive")]
    data_dir: Option<PathBuf>,
    /// A ledger archive written by `tpw export`, instead of a data folder.
    #[arg(long)]
    archive: Option<PathBuf>,
    /// The network's genesis file.
    #[arg(long)]
    genesis: PathBuf,
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Walks the audit log of a stopped node's data folder (or a backup): every record's own
    /// hash, its link to the one before, and sequences without gaps. Prints one JSON line
    /// with the record count and the head hash (compare it with the `audit head` lines the
    /// node logged); exits 1 at the first break, naming it.
    Verify {
        /// The node's data folder (holding db/).
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// `tpw verify`: replays a data folder or an archive and prints what it found.
pub(crate) fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let genesis = tpw_node::node::load_genesis(&args.genesis)?;
    let started = std::time::Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let replayed = match (args.data_dir.as_deref(), args.archive.as_deref()) {
        (Some(data_dir), None) => {
            let mut progress = tpw_node::restore::terminal_progress("verified", "blocks");
            tpw_node::verify::replay_with_progress(data_dir, &genesis, &mut progress)
        }
        (None, Some(archive)) => {
            let mut progress = tpw_node::restore::terminal_progress("verified", "MiB");
            tpw_node::verify::replay_archive(archive, &genesis, &mut progress)
        }
        _ => bail!("give --data-dir or --archive"),
    };
    match replayed {
        Ok(report) => {
            let mut line = serde_json::to_value(&report)?;
            line["verified"] = true.into();
            line["seconds"] = ((started.elapsed().as_secs_f64() * 10.0).round() / 10.0).into();
            println!("{line}");
            Ok(())
        }
        Err(error) => {
            if terminal {
                eprintln!();
            }
            print_divergence(&error);
            anyhow::bail!("verification failed: {error}")
        }
    }
}

/// The one JSON line of a failed replay, naming the first divergence.
fn print_divergence(error: &tpw_node::verify::ReplayError) {
    let height = match error {
        tpw_node::verify::ReplayError::Diverged { height, .. }
        | tpw_node::verify::ReplayError::Apply { height, .. }
        | tpw_node::verify::ReplayError::MissingBlock { height }
        | tpw_node::verify::ReplayError::Money { height, .. } => Some(*height),
        _ => None,
    };
    println!(
        "{}",
        serde_json::json!({
            "verified": false,
            "first_divergence": { "height": height, "what": error.to_string() },
        })
    );
}

/// Runs `tpw audit ...`.
pub(crate) fn audit(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { data_dir } => audit_verify(&data_dir),
    }
}

/// `tpw audit verify`: walks the audit log's hash chain in a stopped node's data folder.
fn audit_verify(data_dir: &Path) -> anyhow::Result<()> {
    let database = data_dir.join("db");
    if !database.join("CURRENT").exists() {
        bail!("{} holds no database (db/)", data_dir.display());
    }
    let db = tpw_node::storage::Db::open_read_only(&database)
        .with_context(|| format!("cannot open {}", database.display()))?;
    let report = tpw_node::audit::verify(&db)?;
    print_json(&report)?;
    if let Some(broken) = &report.broken {
        bail!("the audit log is broken: {broken}");
    }
    Ok(())
}
