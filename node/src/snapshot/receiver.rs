//! Receiving a snapshot: Raft snapshot messages stop here until their state is fetched,
//! verified and staged; only then does Raft see them.

use super::{SnapshotRequest, SnapshotResponse};
use crate::metrics::Metrics;
use crate::network::NetworkHandle;
use crate::runtime::{Command, RaftInbox, Shared};
use crate::storage::{
    parse_block_record, RecordChunk, SnapshotDescriptor, StagedSnapshot, Staging,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tpw_consensus::raft_types::Message;
use tpw_contracts::model::Hash;
use tpw_contracts::state::Commitment;
use tpw_contracts::ChainHead;

/// Snapshot messages waiting for the receiver; more are dropped (the leader resends).
pub const SNAPSHOT_MESSAGES_MAX: usize = 16;
/// How long a staged snapshot handed to Raft may stay neither installed nor overtaken before
/// the receiver assumes the message was lost and fetches anew.
const STEP_RESOLVE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often an idle receiver checks whether the node is stopping.
const STOP_CHECK: Duration = Duration::from_millis(500);

/// Fetches, verifies and stages snapshots, then steps their messages into Raft.
pub struct SnapshotReceiver {
    /// The peer transport.
    pub network: NetworkHandle,
    /// Where records are staged.
    pub staging: Staging,
    /// Where Raft messages go.
    pub inbox: RaftInbox,
    /// This network.
    pub network_id: Hash,
    /// Status and metrics.
    pub shared: Arc<Shared>,
}

struct Stepped {
    index: u64,
    at: Instant,
}

impl SnapshotReceiver {
    /// Runs until the node stops.
    pub async fn run(self, mut messages: tokio::sync::mpsc::Receiver<Message>) {
        let mut stepped: Option<Stepped> = None;
        loop {
            let message = tokio::select! {
                message = messages.recv() => match message {
                    Some(message) => message,
                    None => return,
                },
                _ = tokio::time::sleep(STOP_CHECK) => {
                    if self.shared.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    continue;
                }
            };
            let index = message.get_snapshot().get_metadata().index;
            let (applied, committed) = {
                let status = self
                    .shared
                    .status
                    .read()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                (status.applied_index, status.commit_index)
            };
            if index <= committed {
                // Raft answers with its progress, which moves the leader on; nothing to fetch.
                self.step(message);
                continue;
            }
            if let Some(previous) = &stepped {
                if previous.index == index {
                    self.step(message);
                    continue;
                }
                let unresolved = previous.index > applied
                    && previous.index > committed
                    && previous.at.elapsed() < STEP_RESOLVE_TIMEOUT;
                if unresolved {
                    continue;
                }
            }
            stepped = None;
            let started = Instant::now();
            match self.fetch(message.from, &message).await {
                Ok(records) => {
                    tracing::info!(
                        from = message.from,
                        index,
                        records,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "snapshot fetched and verified"
                    );
                    stepped = Some(Stepped {
                        index,
                        at: Instant::now(),
                    });
                    self.step(message);
                }
                Err(error) => {
                    Metrics::add(&self.shared.metrics.snapshot_fetch_failures, 1);
                    tracing::warn!(from = message.from, index, %error, "snapshot fetch failed; waiting for the leader to resend");
                }
            }
        }
    }

    fn step(&self, message: Message) {
        if self
            .inbox
            .try_send(Command::Step(Box::new(message)))
            .is_err()
        {
            tracing::warn!("raft loop busy: snapshot message dropped");
        }
    }

    async fn request(
        &self,
        from: u64,
        request: SnapshotRequest,
    ) -> Result<SnapshotResponse, String> {
        match self.network.snapshot_request(from, request).await? {
            SnapshotResponse::Gone => Err("the peer no longer keeps this snapshot".into()),
            SnapshotResponse::Unavailable(message) => {
                Err(format!("the peer cannot serve: {message}"))
            }
            response => Ok(response),
        }
    }

    /// Fetches every record and the head block, checks them, and stages them. Returns the
    /// number of records.
    async fn fetch(&self, from: u64, message: &Message) -> Result<u64, String> {
        let snapshot = message.get_snapshot();
        let descriptor = SnapshotDescriptor::from_bytes(snapshot.get_data())
            .map_err(|error| format!("malformed snapshot descriptor: {error}"))?;
        if descriptor.network_id != self.network_id {
            return Err("the snapshot belongs to another network".into());
        }
        if descriptor.applied_index != snapshot.get_metadata().index {
            return Err("the descriptor and the Raft metadata name different indexes".into());
        }
        let staging = self.staging.clone();
        blocking(move || staging.clear()).await?;
        let mut commitment = Commitment::default();
        let mut after: Option<Vec<u8>> = None;
        let mut count = 0u64;
        loop {
            let request = SnapshotRequest::Records {
                index: descriptor.applied_index,
                after: after.clone(),
            };
            let SnapshotResponse::Records { records, done } = self.request(from, request).await?
            else {
                return Err("the peer answered a records request with something else".into());
            };
            if records.is_empty() && !done {
                return Err("the peer sent an empty chunk".into());
            }
            check_order(after.as_deref(), &records)?;
            after = records.last().map(|(key, _)| key.clone()).or(after);
            count += records.len() as u64;
            let staging = self.staging.clone();
            commitment = blocking(move || {
                for (key, value) in &records {
                    commitment.insert(key, value);
                }
                staging.write_records(&records)?;
                Ok(commitment)
            })
            .await?;
            if done {
                break;
            }
        }
        let request = SnapshotRequest::Blocks {
            top: descriptor.height,
            count_max: 1,
        };
        let SnapshotResponse::Blocks(blocks) = self.request(from, request).await? else {
            return Err("the peer answered a blocks request with something else".into());
        };
        let Some(block) = blocks.into_iter().next() else {
            return Err("the peer does not have the snapshot's head block".into());
        };
        let stored = parse_block_record(&block).map_err(|error| error.to_string())?;
        let header = &stored.header;
        if header.hash() != descriptor.head_hash || header.height != descriptor.height {
            return Err("the head block is not the one the snapshot names".into());
        }
        tpw_contracts::check_block_record(
            &self.network_id,
            header,
            &stored.proposal,
            &stored.receipts,
        )
        .map_err(|error| error.to_string())?;
        let root = commitment.root();
        if root != header.state_root || root != descriptor.state_root {
            return Err(format!(
                "the records' state root {} differs from the head block's {}",
                hex::encode(root),
                hex::encode(header.state_root)
            ));
        }
        let staged = StagedSnapshot {
            head: ChainHead {
                network_id: self.network_id,
                height: header.height,
                hash: descriptor.head_hash,
                time_ms: header.time_ms,
                commitment,
            },
            descriptor,
            block,
        };
        let staging = self.staging.clone();
        blocking(move || staging.seal(&staged)).await?;
        Ok(count)
    }
}

/// Keys must rise strictly, across chunks too: a peer cannot send a record twice.
fn check_order(after: Option<&[u8]>, records: &RecordChunk) -> Result<(), String> {
    let mut previous = after;
    for (key, _) in records {
        if previous.is_some_and(|previous| key.as_slice() <= previous) {
            return Err("the peer sent records out of order".into());
        }
        previous = Some(key);
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, crate::storage::StorageError> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| format!("storage task failed: {error}"))?
        .map_err(|error| error.to_string())
}
