//! Restoring an online backup (`tpw restore`) into a new data folder. The backup's database is
//! copied (through a staging folder renamed into place, so an interrupted restore is simply run
//! again), checked against its manifest and the genesis, and its Raft state is reset to "applied
//! up to the backup, nothing voted": the folder can serve a new node (a new id and key added by
//! governance, which catches up from its peers from the backup's point instead of from
//! genesis) or an auditor. It can never run as the node the backup was taken from: that node
//! may have voted and acknowledged entries after the backup, and a rolled-back voter could
//! vote twice; a marker refuses it at start.

use crate::admin::BackupManifest;
use crate::storage::{Db, LedgerReader, RaftLogStore, StorageError, CF_META};
use std::io::Write;
use std::path::{Path, PathBuf};
use tpw_contracts::Genesis;

/// The meta record naming the node a restored folder's backup was taken from (u64 BE).
pub const KEY_RESTORED_FROM: &[u8] = b"restored_from_node";

/// What `tpw restore` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    /// The node the backup was taken from (which must never run on this folder).
    pub from_node: u64,
    /// The restored head.
    pub height: u64,
    /// Its hash, hex.
    pub head_hash: String,
    /// Its state root, hex.
    pub state_root: String,
    /// The Raft index it is applied to.
    pub applied_index: u64,
    /// Files and bytes copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// Why a restore was refused or failed; nothing is left in the target's `db/` then.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The backup folder is not one (`backup.json` and `db/` missing or unreadable).
    #[error("{0}")]
    NotABackup(String),
    /// The backup belongs to another network, or does not match its manifest.
    #[error("{0}")]
    Mismatch(String),
    /// The target already holds a ledger.
    #[error("{0} already holds a ledger; restore only into an empty data folder")]
    TargetInUse(PathBuf),
    /// Copying failed.
    #[error("copying the backup: {0}")]
    Io(#[from] std::io::Error),
    /// The restored database could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn read_manifest(backup: &Path) -> Result<BackupManifest, RestoreError> {
    let path = backup.join("backup.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|error| RestoreError::NotABackup(format!("{}: {error}", path.display())))?;
    serde_json::from_str(&text).map_err(|_| {
        RestoreError::NotABackup(format!("{} is not a backup manifest", path.display()))
    })
}

/// Copies the backup's database files into `staging`, reporting (bytes done, bytes total).
fn copy_files(
    source: &Path,
    staging: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(u64, u64), RestoreError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push((entry.path(), entry.metadata()?.len()));
        }
    }
    files.sort();
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    std::fs::create_dir_all(staging)?;
    let mut done = 0;
    for (path, size) in &files {
        let name = path
            .file_name()
            .ok_or_else(|| RestoreError::NotABackup(format!("{} has no name", path.display())))?;
        let target = staging.join(name);
        std::fs::copy(path, &target)?;
        std::fs::File::open(&target)?.sync_all()?;
        done += size;
        progress(done, total);
    }
    std::fs::File::open(staging)?.sync_all()?;
    Ok((files.len() as u64, total))
}

/// Restores the backup in `backup` into `data_dir` (which must hold no `db/` yet).
pub fn restore(
    backup: &Path,
    data_dir: &Path,
    genesis: &Genesis,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RestoreReport, RestoreError> {
    let manifest = read_manifest(backup)?;
    let network_id = genesis
        .compute_network_id()
        .map_err(|error| RestoreError::Mismatch(error.to_string()))?;
    if manifest.network_id != hex::encode(network_id) {
        return Err(RestoreError::Mismatch(format!(
            "the backup belongs to network {}, the genesis to {}",
            manifest.network_id,
            hex::encode(network_id)
        )));
    }
    let source = backup.join("db");
    if !source.join("CURRENT").exists() {
        return Err(RestoreError::NotABackup(format!(
            "{} holds no database",
            source.display()
        )));
    }
    let target = data_dir.join("db");
    if target.exists() {
        return Err(RestoreError::TargetInUse(data_dir.to_path_buf()));
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)?;
    }
    // An interrupted restore left its staging folder: start it over.
    let staging = data_dir.join("db.restoring");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let (files, bytes) = copy_files(&source, &staging, progress)?;
    let report = reset_raft(&staging, &manifest, genesis, files, bytes)?;
    std::fs::rename(&staging, &target)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(report)
}

/// Checks the copy against the manifest and resets its Raft state (see the module comment).
fn reset_raft(
    folder: &Path,
    manifest: &BackupManifest,
    genesis: &Genesis,
    files: u64,
    bytes: u64,
) -> Result<RestoreReport, RestoreError> {
    let db = Db::open(folder)?;
    let (head, applied_index) = LedgerReader::new(db.clone()).head()?;
    if head.height != manifest.height
        || hex::encode(head.hash) != manifest.head_hash
        || applied_index != manifest.applied_index
    {
        return Err(RestoreError::Mismatch(format!(
            "the backup holds height {} (applied index {applied_index}), its manifest says {} ({})",
            head.height, manifest.height, manifest.applied_index
        )));
    }
    let voters = genesis_ids(genesis, tpw_contracts::genesis::NodeRole::Voter);
    let learners = genesis_ids(genesis, tpw_contracts::genesis::NodeRole::Observer);
    let log = RaftLogStore::open(db.clone(), voters, learners)?;
    let term = tpw_consensus::Storage::term(&log, applied_index).map_err(|error| {
        StorageError::Corrupt(format!(
            "the backup's Raft log has no term for its applied index {applied_index}: {error}"
        ))
    })?;
    let mut batch = rocksdb::WriteBatch::default();
    log.restored_state_changes(applied_index, term, &mut batch)?;
    batch.put_cf(
        db.cf(CF_META),
        KEY_RESTORED_FROM,
        crate::storage::seal_record(&manifest.node_id.to_be_bytes()),
    );
    let mut options = rocksdb::WriteOptions::default();
    options.set_sync(true);
    db.rocks()
        .write_opt(batch, &options)
        .map_err(StorageError::from)?;
    Ok(RestoreReport {
        from_node: manifest.node_id,
        height: head.height,
        head_hash: hex::encode(head.hash),
        state_root: hex::encode(head.commitment.root()),
        applied_index,
        files,
        bytes,
    })
}

fn genesis_ids(genesis: &Genesis, role: tpw_contracts::genesis::NodeRole) -> Vec<u64> {
    genesis
        .nodes
        .iter()
        .filter(|node| node.role == role)
        .map(|node| node.id)
        .collect()
}

/// The node a restored folder's backup came from, if the folder was restored.
pub fn restored_from(db: &Db) -> Result<Option<u64>, StorageError> {
    match db.rocks().get_cf(db.cf(CF_META), KEY_RESTORED_FROM)? {
        None => Ok(None),
        Some(bytes) => {
            let payload = crate::storage::open_record(&bytes, "meta")?;
            <[u8; 8]>::try_from(payload)
                .map(|id| Some(u64::from_be_bytes(id)))
                .map_err(|_| {
                    StorageError::Corrupt("restored-from marker has the wrong size".into())
                })
        }
    }
}

/// Progress on a terminal: one line rewritten in place, or a line per second elsewhere.
pub fn terminal_progress(what: &'static str) -> impl FnMut(u64, u64) {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let mut last = std::time::Instant::now();
    move |done: u64, all: u64| {
        if done == all || last.elapsed() >= std::time::Duration::from_secs(1) {
            last = std::time::Instant::now();
            let line = format!("{what} {} of {} MiB", done >> 20, all >> 20);
            let mut stderr = std::io::stderr();
            if terminal {
                let _ = write!(stderr, "\r{line}");
                if done == all {
                    let _ = writeln!(stderr);
                }
            } else {
                let _ = writeln!(stderr, "{line}");
            }
        }
    }
}
