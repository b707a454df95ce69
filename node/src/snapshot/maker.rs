//! Making and serving snapshots: a thread takes a RocksDB checkpoint when Raft asks for a
//! snapshot, offers it to the log store, and keeps the latest few open so peers can fetch
//! their records; the network serves `/tpw/snapshot/1` requests through [`Snapshots::serve`].

use super::{SnapshotRequest, SnapshotResponse};
use crate::limits::{
    BACKFILL_BLOCKS_CHUNK_SIZE, BACKFILL_BLOCKS_PER_RESPONSE_MAX, CHECKPOINTS_KEPT_MAX,
    CHECKPOINT_INTERVAL_MIN, SNAPSHOT_MAKER_STOP_CHECK, SNAPSHOT_RECORDS_CHUNK_SIZE,
    SNAPSHOT_SERVES_IN_FLIGHT_MAX,
};
use crate::mailbox::Shared;
use crate::metrics::Metrics;
use crate::storage::{
    block_records_down, Checkpoint, Db, RaftLogStore, SnapshotOffer, StorageError,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tpw_consensus::Storage as _;

/// The node's snapshots: made on request, kept for serving.
pub struct Snapshots {
    db: Db,
    log: RaftLogStore,
    folder: PathBuf,
    kept: Mutex<BTreeMap<u64, Arc<Checkpoint>>>,
    serving: AtomicUsize,
    shared: Arc<Shared>,
}

impl Snapshots {
    /// Snapshots of `db` kept in `folder` (emptied first: checkpoints do not outlive a run).
    pub fn new(
        db: Db,
        log: RaftLogStore,
        folder: PathBuf,
        shared: Arc<Shared>,
    ) -> std::io::Result<Arc<Self>> {
        if folder.exists() {
            std::fs::remove_dir_all(&folder)?;
        }
        std::fs::create_dir_all(&folder)?;
        Ok(Arc::new(Self {
            db,
            log,
            folder,
            kept: Mutex::new(BTreeMap::new()),
            serving: AtomicUsize::new(0),
            shared,
        }))
    }

    /// Starts the thread that makes a checkpoint whenever Raft asks for a snapshot; it stops
    /// with the node.
    pub fn spawn_maker(self: &Arc<Self>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let snapshots = Arc::clone(self);
        std::thread::Builder::new()
            .name("tpw-snapshots".into())
            .spawn(move || {
                let mut sequence = 0u64;
                let mut last_made: Option<Instant> = None;
                while !snapshots.shared.stopping.load(Ordering::Relaxed) {
                    if !snapshots
                        .log
                        .snapshots()
                        .wait_wanted(SNAPSHOT_MAKER_STOP_CHECK)
                    {
                        continue;
                    }
                    if let Some(made) = last_made {
                        std::thread::sleep(CHECKPOINT_INTERVAL_MIN.saturating_sub(made.elapsed()));
                    }
                    sequence += 1;
                    if let Err(error) = snapshots.make(sequence) {
                        tracing::error!(%error, "snapshot checkpoint failed");
                    }
                    last_made = Some(Instant::now());
                }
            })
    }

    fn make(&self, sequence: u64) -> Result<(), StorageError> {
        let started = Instant::now();
        let path = self.folder.join(format!("{sequence:08}"));
        let checkpoint = Checkpoint::create(&self.db, &path)?;
        let descriptor = checkpoint.descriptor.clone();
        let conf_state = checkpoint.conf_state.clone();
        if descriptor.applied_index == 0 {
            return Ok(());
        }
        let term = match self.log.term(descriptor.applied_index) {
            Ok(term) => term,
            Err(error) => {
                // Compacted past it in the meantime: the next request makes a newer one.
                tracing::warn!(index = descriptor.applied_index, %error, "checkpoint dropped: its term is no longer known");
                return Ok(());
            }
        };
        {
            let mut kept = self
                .kept
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            kept.insert(descriptor.applied_index, Arc::new(checkpoint));
            while kept.len() > CHECKPOINTS_KEPT_MAX {
                kept.pop_first();
            }
        }
        self.log.snapshots().publish(SnapshotOffer {
            index: descriptor.applied_index,
            term,
            conf_state,
            data: descriptor.to_bytes(),
        });
        Metrics::add(&self.shared.metrics.snapshots_made, 1);
        tracing::info!(
            index = descriptor.applied_index,
            height = descriptor.height,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot checkpoint made"
        );
        Ok(())
    }

    /// Answers one `/tpw/snapshot/1` request (blocking: run it off the async runtime).
    pub fn serve(&self, request: &[u8]) -> Vec<u8> {
        if self.serving.fetch_add(1, Ordering::AcqRel) >= SNAPSHOT_SERVES_IN_FLIGHT_MAX {
            self.serving.fetch_sub(1, Ordering::AcqRel);
            return SnapshotResponse::Unavailable("busy serving other snapshot requests".into())
                .to_bytes();
        }
        let response = match SnapshotRequest::from_bytes(request) {
            Ok(request) => self.answer(request),
            Err(error) => SnapshotResponse::Unavailable(format!("malformed request: {error}")),
        };
        self.serving.fetch_sub(1, Ordering::AcqRel);
        response.to_bytes()
    }

    fn answer(&self, request: SnapshotRequest) -> SnapshotResponse {
        let result = match request {
            SnapshotRequest::Records { index, after } => {
                let checkpoint = self
                    .kept
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .get(&index)
                    .cloned();
                let Some(checkpoint) = checkpoint else {
                    return SnapshotResponse::Gone;
                };
                checkpoint
                    .records(after.as_deref(), SNAPSHOT_RECORDS_CHUNK_SIZE)
                    .map(|(records, done)| SnapshotResponse::Records { records, done })
            }
            SnapshotRequest::Nodes => {
                let reader = crate::storage::LedgerReader::new(self.db.clone());
                reader.head().and_then(|(head, _)| {
                    Ok(SnapshotResponse::Nodes {
                        height: head.height,
                        records: reader.nodes()?,
                    })
                })
            }
            SnapshotRequest::Blocks { top, count_max } => block_records_down(
                &self.db,
                top,
                u64::from(count_max.min(BACKFILL_BLOCKS_PER_RESPONSE_MAX)),
                BACKFILL_BLOCKS_CHUNK_SIZE,
            )
            .map(SnapshotResponse::Blocks),
        };
        result.unwrap_or_else(|error| {
            tracing::error!(%error, "snapshot request failed");
            SnapshotResponse::Unavailable(error.to_string())
        })
    }
}
