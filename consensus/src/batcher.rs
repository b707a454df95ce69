//! The leader's block builder: queues submitted envelopes and cuts them into bounded blocks.
//!
//! Group commit comes from the node's loop: while one block is being persisted, new
//! submissions queue here, and the next cut takes all of them up to the block limits.

use crate::limits::{QUEUE_SIZE_MAX, QUEUE_TRANSACTIONS_MAX};
use std::collections::VecDeque;
use tpw_contracts::limits::{BLOCK_SIZE_MAX, BLOCK_TRANSACTIONS_MAX};
use tpw_contracts::Proposal;

/// The queue is full: the submitter should retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the block queue is full ({queued} transactions); retry later")]
pub struct QueueFull {
    /// Transactions queued.
    pub queued: usize,
}

/// Per-block limits chosen by configuration, within the protocol limits.
#[derive(Debug, Clone, Copy)]
pub struct BlockLimits {
    /// Transactions per block.
    pub transactions_max: usize,
    /// Bytes of envelopes per block.
    pub size_max: usize,
}

impl Default for BlockLimits {
    fn default() -> Self {
        Self {
            transactions_max: BLOCK_TRANSACTIONS_MAX,
            size_max: BLOCK_SIZE_MAX / 2,
        }
    }
}

impl BlockLimits {
    /// Checks the limits against the protocol maxima.
    pub fn validate(&self) -> Result<(), String> {
        if self.transactions_max == 0 || self.transactions_max > BLOCK_TRANSACTIONS_MAX {
            return Err(format!(
                "block transactions_max must be 1..={BLOCK_TRANSACTIONS_MAX}"
            ));
        }
        // Room for the proposal header and the length prefixes.
        if self.size_max < 64 * 1024
            || self.size_max + self.transactions_max * 4 + 64 > BLOCK_SIZE_MAX
        {
            return Err(format!(
                "block size_max must leave room within {BLOCK_SIZE_MAX} bytes"
            ));
        }
        Ok(())
    }
}

/// Queued envelopes in arrival order.
#[derive(Debug, Default)]
pub struct Batcher {
    queue: VecDeque<Vec<u8>>,
    queued_size: usize,
    limits: BlockLimits,
}

impl Batcher {
    /// An empty batcher with these limits.
    pub fn new(limits: BlockLimits) -> Self {
        Self {
            queue: VecDeque::new(),
            queued_size: 0,
            limits,
        }
    }

    /// Whether `count` more envelopes of `size` bytes in all fit the queue.
    pub fn has_room(&self, count: usize, size: usize) -> bool {
        self.queue.len() + count <= QUEUE_TRANSACTIONS_MAX
            && self.queued_size + size <= QUEUE_SIZE_MAX
    }

    /// Queues one envelope.
    pub fn push(&mut self, envelope: Vec<u8>) -> Result<(), QueueFull> {
        if self.queue.len() >= QUEUE_TRANSACTIONS_MAX
            || self.queued_size + envelope.len() > QUEUE_SIZE_MAX
        {
            return Err(QueueFull {
                queued: self.queue.len(),
            });
        }
        self.queued_size += envelope.len();
        self.queue.push_back(envelope);
        Ok(())
    }

    /// Transactions queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Takes the next block's worth of envelopes, stamped `now_ms`; `None` when empty.
    pub fn cut(&mut self, now_ms: u64) -> Option<Proposal> {
        if self.queue.is_empty() {
            return None;
        }
        let mut transactions = Vec::new();
        let mut size = 0;
        while let Some(next) = self.queue.front() {
            if transactions.len() == self.limits.transactions_max
                || (!transactions.is_empty() && size + next.len() > self.limits.size_max)
            {
                break;
            }
            let envelope = self.queue.pop_front().expect("front exists");
            size += envelope.len();
            self.queued_size -= envelope.len();
            transactions.push(envelope);
        }
        Some(Proposal {
            attestation: None,
            proposer_time_ms: now_ms,
            transactions,
            webhooks: Vec::new(),
        })
    }

    /// Drops everything queued (the node lost leadership), returning the envelopes.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        self.queued_size = 0;
        self.queue.drain(..).collect()
    }
}

/// Whether the leader should propose a block without traffic: a timer (a pending transfer's
/// expiry) is due by the leader's clock.
pub fn timer_block_due(next_timer_ms: Option<u64>, now_ms: u64) -> bool {
    next_timer_ms.is_some_and(|at| at <= now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_respect_count_and_size_limits_and_keep_order() {
        // Proves blocks never exceed their limits and envelopes leave in arrival order.
        let mut batcher = Batcher::new(BlockLimits {
            transactions_max: 3,
            size_max: 64 * 1024,
        });
        for index in 0..7u8 {
            batcher.push(vec![index; 10]).unwrap();
        }
        let sizes: Vec<usize> = std::iter::from_fn(|| batcher.cut(5))
            .map(|block| block.transactions.len())
            .collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        let mut batcher = Batcher::new(BlockLimits {
            transactions_max: 100,
            size_max: 64 * 1024,
        });
        for index in 0..3u8 {
            batcher.push(vec![index; 40 * 1024]).unwrap();
        }
        let first = batcher.cut(1).unwrap();
        assert_eq!(first.transactions.len(), 1);
        assert_eq!(first.transactions[0][0], 0);
        assert!(batcher.cut(1).is_some() && batcher.cut(1).is_some() && batcher.cut(1).is_none());
    }

    #[test]
    fn a_full_queue_refuses_with_a_retryable_error() {
        // Proves the queue bound holds and is reported rather than growing memory.
        let mut batcher = Batcher::default();
        for _ in 0..QUEUE_TRANSACTIONS_MAX {
            batcher.push(vec![1]).unwrap();
        }
        assert_eq!(
            batcher.push(vec![1]),
            Err(QueueFull {
                queued: QUEUE_TRANSACTIONS_MAX
            })
        );
        assert!(
            timer_block_due(Some(5), 5)
                && !timer_block_due(Some(6), 5)
                && !timer_block_due(None, 5)
        );
    }
}
