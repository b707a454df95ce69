//! The block record nodes store and exchange: the derived header, the proposal as replicated,
//! one receipt per transaction and the block's effects (docs/encoding.md).
//!
//! Peers send block records to a node catching up through a snapshot (the snapshot's head block
//! and the blocks below it), so decoding is the edge for untrusted bytes: it refuses anything
//! that is not one canonical record and never panics. What the record claims is checked apart,
//! by [`crate::check_block_record`].

use crate::block::{BlockEffect, BlockHeader, Proposal, Receipt, EFFECTS_PER_BLOCK_MAX};
use crate::codec::{DecodeError, Reader, Writer};
use crate::limits::BLOCK_SIZE_MAX;

use crate::limits::HEADER_SIZE_MAX;

/// A block as nodes store and exchange it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRecord {
    /// Header.
    pub header: BlockHeader,
    /// Proposal (transactions and leader stamp).
    pub proposal: Proposal,
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    /// What fell due at the block's start (committed by the header's effects root).
    pub effects: Vec<BlockEffect>,
}

/// Why bytes are not a block record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockRecordError {
    /// A part does not decode, or bytes remain after the record.
    #[error("block record: {0}")]
    Malformed(#[from] DecodeError),
    /// The receipts are not one per transaction.
    #[error("block record: receipt count differs from transaction count")]
    ReceiptCount,
    /// More effects than [`EFFECTS_PER_BLOCK_MAX`].
    #[error("block record: more effects than a block may have")]
    TooManyEffects,
}

/// Encodes a block record: header | proposal (both u32 length + bytes) | receipt count u32 |
/// receipts | effect count u32 | effects. The proposal goes in as the bytes that were
/// replicated, so the record keeps them exactly.
pub fn encode_block_record(
    header: &BlockHeader,
    proposal_bytes: &[u8],
    receipts: &[Receipt],
    effects: &[BlockEffect],
) -> Vec<u8> {
    let mut writer = Writer::with_capacity(
        proposal_bytes.len() + receipts.len() * 40 + effects.len() * 25 + 256,
    );
    writer.bytes(&header.to_bytes());
    writer.bytes(proposal_bytes);
    writer.u32(receipts.len() as u32);
    for receipt in receipts {
        receipt.encode(&mut writer);
    }
    writer.u32(effects.len() as u32);
    for effect in effects {
        effect.encode(&mut writer);
    }
    writer.finish()
}

impl BlockRecord {
    /// The record's canonical bytes (the proposal re-encoded, which reproduces the replicated
    /// bytes because proposals have one encoding).
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_block_record(
            &self.header,
            &self.proposal.to_bytes(),
            &self.receipts,
            &self.effects,
        )
    }

    /// Decodes untrusted bytes written by [`encode_block_record`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlockRecordError> {
        let mut reader = Reader::new(bytes);
        let header = BlockHeader::from_bytes(reader.bytes("header", HEADER_SIZE_MAX)?)?;
        let proposal = Proposal::from_bytes(reader.bytes("proposal", BLOCK_SIZE_MAX)?)?;
        let count = reader.u32("receipts")? as usize;
        if count != proposal.transactions.len() {
            return Err(BlockRecordError::ReceiptCount);
        }
        let mut receipts = Vec::with_capacity(count);
        for _ in 0..count {
            receipts.push(Receipt::decode(&mut reader)?);
        }
        let count = reader.u32("effects")? as usize;
        if count > EFFECTS_PER_BLOCK_MAX {
            return Err(BlockRecordError::TooManyEffects);
        }
        let mut effects = Vec::with_capacity(count);
        for _ in 0..count {
            effects.push(BlockEffect::decode(&mut reader)?);
        }
        reader.finish()?;
        Ok(Self {
            header,
            proposal,
            receipts,
            effects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::ResultCode;

    fn record() -> BlockRecord {
        BlockRecord {
            header: BlockHeader {
                network_id: [1; 32],
                height: 3,
                previous_hash: [2; 32],
                time_ms: 5,
                proposer_time_ms: 4,
                transaction_count: 1,
                transactions_root: [3; 32],
                receipts_root: [4; 32],
                effects_root: [6; 32],
                state_root: [5; 32],
            },
            proposal: Proposal {
                proposer_time_ms: 4,
                attestation: Some((2, [7; 32])),
                transactions: vec![vec![9, 9]],
                webhooks: Vec::new(),
            },
            receipts: vec![Receipt {
                tx_id: [8; 32],
                code: ResultCode::Ok,
                operations: vec![ResultCode::Ok],
            }],
            effects: vec![
                BlockEffect::PendingExpired { owner: 1, id: 2 },
                BlockEffect::CycleSettled { cycle: 3 },
            ],
        }
    }

    #[test]
    fn a_record_round_trips_and_every_truncation_is_refused() {
        // Proves decode inverts encode byte for byte, and that a cut record is an error.
        let record = record();
        let bytes = record.to_bytes();
        assert_eq!(BlockRecord::from_bytes(&bytes).unwrap(), record);
        for cut in 0..bytes.len() {
            assert!(BlockRecord::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut trailing = bytes;
        trailing.push(0);
        assert!(matches!(
            BlockRecord::from_bytes(&trailing),
            Err(BlockRecordError::Malformed(DecodeError::TrailingBytes {
                count: 1
            }))
        ));
    }

    #[test]
    fn receipts_must_match_the_transactions() {
        // Proves a record whose receipts are not one per transaction is refused by name.
        let mut record = record();
        record.receipts.clear();
        assert_eq!(
            BlockRecord::from_bytes(&record.to_bytes()),
            Err(BlockRecordError::ReceiptCount)
        );
        assert_eq!(
            BlockRecordError::ReceiptCount.to_string(),
            "block record: receipt count differs from transaction count"
        );
    }
}
