//! Receiving a snapshot: Raft snapshot messages stop here until their state is fetched,
//! verified and staged; only then does Raft see them.

use super::{SnapshotRequest, SnapshotResponse};
use crate::limits::{
    SNAPSHOT_RECEIVER_STOP_CHECK, SNAPSHOT_REQUEST_TRIES_MAX, SNAPSHOT_RETRY_PAUSE_STEP,
};
use crate::mailbox::{Command, RaftInbox, Shared};
use crate::metrics::Metrics;
use crate::network::NetworkHandle;
use crate::storage::{RecordChunk, StagedSnapshot, Staging};
use std::sync::Arc;
use std::time::Instant;
use tpw_consensus::raft_types::Message;
use tpw_consensus::replica::snapshot::{
    check_descriptor, check_snapshot_head, snapshot_arrival, SnapshotArrival,
};
use tpw_contracts::model::Hash;
use tpw_contracts::state::Commitment;

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

impl SnapshotReceiver {
    /// Runs until the node stops.
    pub async fn run(self, mut messages: tokio::sync::mpsc::Receiver<Message>) {
        loop {
            let message = tokio::select! {
                message = messages.recv() => match message {
                    Some(message) => message,
                    None => return,
                },
                _ = tokio::time::sleep(SNAPSHOT_RECEIVER_STOP_CHECK) => {
                    if self.shared.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    continue;
                }
            };
            self.receive(message).await;
        }
    }

    async fn receive(&self, message: Message) {
        let index = message.get_snapshot().get_metadata().index;
        let committed = self
            .shared
            .status
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .commit_index;
        let staged = self.shared.snapshot_gate.stepped();
        match snapshot_arrival(index, committed, staged) {
            SnapshotArrival::Step => {
                self.step(message);
                return;
            }
            SnapshotArrival::Ignore => return,
            SnapshotArrival::Fetch => {}
        }
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
                // Set before the message is queued, so the raft loop cannot resolve it first.
                self.shared.snapshot_gate.set(index);
                if !self.step(message) {
                    self.shared.snapshot_gate.clear();
                }
            }
            Err(error) => {
                Metrics::add(&self.shared.metrics.snapshot_fetch_failures, 1);
                tracing::warn!(from = message.from, index, %error, "snapshot fetch failed; waiting for the leader to resend");
            }
        }
    }

    /// Queues a snapshot message for Raft; false if the raft loop's queue was full.
    fn step(&self, message: Message) -> bool {
        let queued = self
            .inbox
            .try_send(Command::Step(Box::new(message)))
            .is_ok();
        if !queued {
            tracing::warn!("raft loop busy: snapshot message dropped");
        }
        queued
    }

    /// One request, tried again while the peer is busy.
    async fn request(
        &self,
        from: u64,
        request: SnapshotRequest,
    ) -> Result<SnapshotResponse, String> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.network.snapshot_request(from, request.clone()).await? {
                SnapshotResponse::Gone => {
                    return Err("the peer no longer keeps this snapshot".into())
                }
                SnapshotResponse::Unavailable(message) if tries >= SNAPSHOT_REQUEST_TRIES_MAX => {
                    return Err(format!("the peer cannot serve: {message}"))
                }
                SnapshotResponse::Unavailable(_) => {
                    tokio::time::sleep(SNAPSHOT_RETRY_PAUSE_STEP * tries).await;
                }
                response => return Ok(response),
            }
        }
    }

    /// Fetches every record and the head block, checks them, and stages them. Returns the
    /// number of records.
    async fn fetch(&self, from: u64, message: &Message) -> Result<u64, String> {
        let descriptor = check_descriptor(&self.network_id, message.get_snapshot())?;
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
        let head = check_snapshot_head(&descriptor, &block, commitment)?;
        let staged = StagedSnapshot {
            head,
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
