//! Fetching the blocks below an installed snapshot, so every node keeps the chain from genesis
//! for audit and restore. Each block is checked on its own (roots, receipts, signature verdicts)
//! and by its hash link to the block above; the lowest fetched block must link to the block this
//! node already had, or the divergence alarm is raised.

use super::{SnapshotRequest, SnapshotResponse};
use crate::limits::{BACKFILL_BLOCKS_PER_RESPONSE_MAX, BACKFILL_IDLE_CHECK, BACKFILL_RETRY_PAUSE};
use crate::mailbox::Shared;
use crate::metrics::Metrics;
use crate::network::NetworkHandle;
use crate::storage::{block_gaps, store_backfill, Db, LedgerReader, StorageError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tpw_consensus::replica::snapshot::check_chain;
use tpw_contracts::model::Hash;

/// The backfill task's inputs.
pub struct Backfill {
    /// The node's database.
    pub db: Db,
    /// The peer transport.
    pub network: NetworkHandle,
    /// This network.
    pub network_id: Hash,
    /// Status and metrics.
    pub shared: Arc<Shared>,
    /// The other members of the node set.
    pub peers: Vec<u64>,
}

impl Backfill {
    /// Runs until the node stops.
    pub async fn run(self) {
        while !self.shared.stopping.load(Ordering::Relaxed) {
            let db = self.db.clone();
            let gaps = match blocking(move || block_gaps(&db)).await {
                Ok(gaps) => gaps,
                Err(error) => {
                    tracing::error!(%error, "block gaps unreadable; backfill stopped");
                    return;
                }
            };
            let missing: u64 = gaps.iter().map(|(low, high)| high - low + 1).sum();
            Metrics::set(&self.shared.metrics.blocks_missing, missing);
            let Some(&(low, high)) = gaps.last() else {
                let _ = tokio::time::timeout(
                    BACKFILL_IDLE_CHECK,
                    self.shared.snapshot_installed.notified(),
                )
                .await;
                continue;
            };
            if let Err(error) = self.fill(low, high).await {
                tracing::warn!(low, high, %error, "block backfill paused");
                tokio::time::sleep(BACKFILL_RETRY_PAUSE).await;
            }
        }
    }

    fn peers_in_order(&self) -> Vec<u64> {
        let leader = self
            .shared
            .status
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .leader_id;
        let mut peers = self.peers.clone();
        peers.sort_by_key(|peer| Some(*peer) != leader);
        peers
    }

    /// Fetches the top part of the gap `low..=high` from the first peer that serves it.
    async fn fill(&self, low: u64, high: u64) -> Result<(), String> {
        let reader = LedgerReader::new(self.db.clone());
        let above = {
            let reader = reader.clone();
            blocking(move || reader.block(high + 1)).await?
        };
        let Some(above) = above else {
            return Err(format!("block {} above the gap is missing", high + 1));
        };
        let mut last_error = String::from("no peers");
        for peer in self.peers_in_order() {
            let request = SnapshotRequest::Blocks {
                top: high,
                count_max: (high - low + 1).min(u64::from(BACKFILL_BLOCKS_PER_RESPONSE_MAX)) as u32,
            };
            let blocks = match self.network.snapshot_request(peer, request).await {
                Ok(SnapshotResponse::Blocks(blocks)) if !blocks.is_empty() => blocks,
                Ok(_) => {
                    last_error = format!("node {peer} does not have block {high}");
                    continue;
                }
                Err(error) => {
                    last_error = format!("node {peer}: {error}");
                    continue;
                }
            };
            let checked = check_chain(
                &self.network_id,
                above.header.previous_hash,
                high,
                low,
                blocks,
            );
            let checked = match checked {
                Ok(checked) => checked,
                Err(error) => {
                    tracing::error!(node_id = peer, %error, "a peer served blocks that fail their checks");
                    last_error = format!("node {peer}: {error}");
                    continue;
                }
            };
            let (checked, lowest_hash) = checked;
            let stored: Vec<(u64, Vec<u8>, Vec<Hash>)> = checked
                .into_iter()
                .map(|block| {
                    let tx_ids = block
                        .block
                        .receipts
                        .iter()
                        .map(|receipt| receipt.tx_id)
                        .collect();
                    (block.height, block.record, tx_ids)
                })
                .collect();
            let lowest = high + 1 - stored.len() as u64;
            let count = stored.len() as u64;
            let db = self.db.clone();
            blocking(move || store_backfill(&db, &stored, high)).await?;
            Metrics::add(&self.shared.metrics.blocks_backfilled, count);
            if lowest == low {
                self.check_join(&reader, low, lowest_hash).await?;
                tracing::info!(low, high, "blocks below a snapshot fetched and linked");
            }
            return Ok(());
        }
        Err(last_error)
    }

    /// The block below a filled gap was this node's own: it must be the one the fetched chain
    /// links to.
    async fn check_join(
        &self,
        reader: &LedgerReader,
        low: u64,
        expected: Hash,
    ) -> Result<(), String> {
        let reader = reader.clone();
        let below = blocking(move || reader.block(low - 1)).await?;
        let linked = below.is_some_and(|block| block.header.hash() == expected);
        if !linked {
            Metrics::add(&self.shared.metrics.divergence_alarms, 1);
            tracing::error!(
                height = low - 1,
                "ALARM: this node's chain below a snapshot differs from the network's"
            );
        }
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| format!("storage task failed: {error}"))?
        .map_err(|error| error.to_string())
}
