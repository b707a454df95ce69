//! `tpw backup`, `tpw export` and `tpw restore`: copies of a ledger taken from a node, and a
//! new data folder made from one.

use super::common::print_json;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// What `tpw backup` was asked.
#[derive(clap::Args)]
pub(crate) struct BackupArgs {
    /// The node's admin interface.
    #[arg(long, env = "TPW_ADMIN", default_value = "http://127.0.0.1:7200")]
    admin: String,
    /// The operator token file (admin_token_file).
    #[arg(long, env = "TPW_ADMIN_TOKEN_FILE")]
    token_file: PathBuf,
    /// Where the node writes the backup: an absolute path that does not exist yet, on the
    /// node's host.
    #[arg(long)]
    path: PathBuf,
    /// Replay the backup afterwards (needs the backup's folder on this host).
    #[arg(long, requires = "genesis")]
    verify: bool,
    /// The network's genesis file, for --verify.
    #[arg(long)]
    genesis: Option<PathBuf>,
}

/// What `tpw export` was asked.
#[derive(clap::Args)]
pub(crate) struct ExportArgs {
    /// The data folder or backup folder (holding db/).
    #[arg(long)]
    data_dir: PathBuf,
    /// The archive to write; an existing file is never overwritten.
    #[arg(long)]
    out: PathBuf,
}

/// What `tpw restore` was asked.
#[derive(clap::Args)]
pub(crate) struct RestoreArgs {
    /// The backup folder (holding backup.json and db/).
    #[arg(long, required_unless_present = "archive", conflicts_with = "archive")]
    backup: Option<PathBuf>,
    /// A ledger archive written by `tpw export`.
    #[arg(long)]
    archive: Option<PathBuf>,
    /// Restore the ledger as it stood at this height (default: the source's head).
    #[arg(long)]
    to_height: Option<u64>,
    /// The new data folder (must hold no db/ yet).
    #[arg(long)]
    data_dir: PathBuf,
    /// The network's genesis file.
    #[arg(long)]
    genesis: PathBuf,
}

/// Runs `tpw backup`.
pub(crate) async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let BackupArgs {
        admin,
        token_file,
        path,
        verify,
        genesis,
    } = args;
    let manifest = request_backup(&admin, &token_file, &path).await?;
    let Some(genesis) = verify.then_some(genesis).flatten() else {
        return print_json(&manifest);
    };
    let genesis = tpw_node::node::load_genesis(&genesis)?;
    let mut progress = tpw_node::restore::terminal_progress("verified", "blocks");
    let report = tpw_node::verify::replay_with_progress(&path, &genesis, &mut progress)
        .map_err(|error| anyhow::anyhow!("the backup does not verify: {error}"))?;
    if report.height != manifest.height || report.head_hash != manifest.head_hash {
        bail!(
            "the backup replays to height {} ({}), its manifest says {} ({})",
            report.height,
            report.head_hash,
            manifest.height,
            manifest.head_hash
        );
    }
    print_json(&serde_json::json!({ "manifest": manifest, "verified": report }))
}

/// Asks the admin interface for a backup at `path` and returns its manifest.
async fn request_backup(
    admin: &str,
    token_file: &Path,
    path: &Path,
) -> anyhow::Result<tpw_node::admin::BackupManifest> {
    let token = tpw_node::keys::load_admin_token(token_file)?;
    let response = tpw_node::tls::client::http_builder()
        .build()?
        .post(format!("{}/admin/v1/backup", admin.trim_end_matches('/')))
        .bearer_auth(token)
        .json(&serde_json::json!({ "path": path }))
        .send()
        .await
        .with_context(|| format!("cannot reach the admin interface at {admin}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .context("the admin interface did not answer JSON")?;
    if !status.is_success() {
        bail!(
            "backup refused ({status}): {} {}",
            body["error"]["code"].as_str().unwrap_or("unknown"),
            body["error"]["message"].as_str().unwrap_or("")
        );
    }
    serde_json::from_value(body).context("the answer is not a backup manifest")
}

/// Runs `tpw export`.
pub(crate) fn export(args: ExportArgs) -> anyhow::Result<()> {
    let mut progress = tpw_node::restore::terminal_progress("exported", "blocks");
    let report = tpw_node::archive::export(&args.data_dir, &args.out, &mut progress)?;
    print_json(&report)
}

/// Runs `tpw restore`: a whole backup is copied; to a height, or from an archive, replayed.
pub(crate) fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    use tpw_node::restore::{restore_replay, terminal_progress, ReplaySource};
    let RestoreArgs {
        backup,
        archive,
        to_height,
        data_dir,
        genesis,
    } = args;
    let genesis = tpw_node::node::load_genesis(&genesis)?;
    let report = match (backup, archive) {
        (Some(backup), None) if to_height.is_none() => {
            let mut progress = terminal_progress("copied", "MiB");
            tpw_node::restore::restore(&backup, &data_dir, &genesis, &mut progress)?
        }
        (Some(backup), None) => {
            let mut progress = terminal_progress("replayed", "blocks");
            let source = ReplaySource::Backup(&backup);
            restore_replay(source, &data_dir, &genesis, to_height, &mut progress)?
        }
        (None, Some(archive)) => {
            let mut progress = terminal_progress("replayed", "MiB");
            let source = ReplaySource::Archive(&archive);
            restore_replay(source, &data_dir, &genesis, to_height, &mut progress)?
        }
        _ => bail!("give --backup or --archive"),
    };
    print_json(&report)
}
