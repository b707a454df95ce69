//! Checks that a block fetched from a peer is internally consistent, without the state it was
//! applied to: its transactions and receipts match the header's roots, and every signature
//! verdict recorded in a receipt is the verdict this node reaches itself.
//!
//! A node that installed a state snapshot fetches the blocks below it from peers to keep the
//! chain from genesis; each one passes this check and links by hash to the block above it.
//! Replaying state roots from genesis is the offline verifier's job.

use crate::apply::envelope_code;
use crate::block::{merkle_root, BlockHeader, Proposal, Receipt};
use crate::model::Hash;
use crate::result::ResultCode;
use crate::sig::{verify_all, SignatureItem};
use crate::tx::{transaction_id, Transaction};

/// Why a block record is not consistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockCheckError {
    /// The header names another network.
    #[error("block {height} belongs to another network")]
    WrongNetwork {
        /// Its height.
        height: u64,
    },
    /// The header's transaction count differs from the proposal's or the receipts'.
    #[error("block {height}: the header counts {header} transactions, the block holds {found}")]
    CountMismatch {
        /// Its height.
        height: u64,
        /// Count in the header.
        header: u32,
        /// Transactions or receipts found.
        found: usize,
    },
    /// A Merkle root in the header does not match the contents.
    #[error("block {height}: the {root} root does not match the contents")]
    RootMismatch {
        /// Its height.
        height: u64,
        /// "transactions" or "receipts".
        root: &'static str,
    },
    /// The leader stamp in the header differs from the proposal's.
    #[error("block {height}: the header's proposer time differs from the proposal's")]
    StampMismatch {
        /// Its height.
        height: u64,
    },
    /// A receipt names another transaction than the one at its position.
    #[error("block {height}: receipt {position} is for another transaction")]
    ReceiptOrder {
        /// Its height.
        height: u64,
        /// Position in the block.
        position: usize,
    },
    /// A receipt's verdict on a transaction's envelope or signature is not this node's.
    #[error("block {height}: receipt {position} says {recorded}, this node finds {expected}")]
    VerdictMismatch {
        /// Its height.
        height: u64,
        /// Position in the block.
        position: usize,
        /// The code in the receipt.
        recorded: &'static str,
        /// What this node's check implies.
        expected: &'static str,
    },
}

/// Checks a block record (header, proposal as replicated, receipts) on its own.
pub fn check_block_record(
    network_id: &Hash,
    header: &BlockHeader,
    proposal: &Proposal,
    receipts: &[Receipt],
    effects: &[crate::block::BlockEffect],
) -> Result<(), BlockCheckError> {
    let height = header.height;
    if &header.network_id != network_id {
        return Err(BlockCheckError::WrongNetwork { height });
    }
    for found in [proposal.transactions.len(), receipts.len()] {
        if found != header.transaction_count as usize {
            return Err(BlockCheckError::CountMismatch {
                height,
                header: header.transaction_count,
                found,
            });
        }
    }
    if header.proposer_time_ms != proposal.proposer_time_ms {
        return Err(BlockCheckError::StampMismatch { height });
    }
    let tx_ids: Vec<Hash> = proposal
        .transactions
        .iter()
        .map(|bytes| transaction_id(bytes))
        .collect();
    if merkle_root(&tx_ids) != header.transactions_root {
        return Err(BlockCheckError::RootMismatch {
            height,
            root: "transactions",
        });
    }
    let receipt_hashes: Vec<Hash> = receipts.iter().map(Receipt::hash).collect();
    if merkle_root(&receipt_hashes) != header.receipts_root {
        return Err(BlockCheckError::RootMismatch {
            height,
            root: "receipts",
        });
    }
    let effect_hashes: Vec<Hash> = effects
        .iter()
        .map(crate::block::BlockEffect::hash)
        .collect();
    if merkle_root(&effect_hashes) != header.effects_root {
        return Err(BlockCheckError::RootMismatch {
            height,
            root: "effects",
        });
    }
    for (position, (receipt, tx_id)) in receipts.iter().zip(&tx_ids).enumerate() {
        if &receipt.tx_id != tx_id {
            return Err(BlockCheckError::ReceiptOrder { height, position });
        }
    }
    check_verdicts(network_id, height, proposal, receipts)
}

/// Decoding and signature verdicts: a receipt says `malformed_transaction` (or another envelope
/// code) exactly when the envelope does not decode, and `bad_signature` exactly when it decodes
/// and its signature fails.
fn check_verdicts(
    network_id: &Hash,
    height: u64,
    proposal: &Proposal,
    receipts: &[Receipt],
) -> Result<(), BlockCheckError> {
    let decoded: Vec<Result<Transaction, ResultCode>> = proposal
        .transactions
        .iter()
        .map(|bytes| {
            Transaction::from_bytes(bytes, network_id).map_err(|error| envelope_code(&error))
        })
        .collect();
    let messages: Vec<(usize, Vec<u8>)> = decoded
        .iter()
        .enumerate()
        .filter_map(|(position, transaction)| {
            transaction
                .as_ref()
                .ok()
                .map(|transaction| (position, transaction.signed_message()))
        })
        .collect();
    let items: Vec<SignatureItem<'_>> = messages
        .iter()
        .map(|(position, message)| {
            let transaction = decoded[*position]
                .as_ref()
                .expect("only decoded transactions have messages");
            SignatureItem {
                key: &transaction.signer,
                signature: &transaction.signature,
                message,
            }
        })
        .collect();
    let mut valid = vec![false; decoded.len()];
    for ((position, _), verdict) in messages.iter().zip(verify_all(&items)) {
        valid[*position] = verdict;
    }
    for (position, (transaction, receipt)) in decoded.iter().zip(receipts).enumerate() {
        let expected = match transaction {
            Err(code) => Some(*code),
            Ok(_) if !valid[position] => Some(ResultCode::BadSignature),
            Ok(_) => None,
        };
        let consistent = match expected {
            Some(code) => receipt.code == code,
            None => !is_envelope_verdict(receipt.code),
        };
        if !consistent {
            return Err(BlockCheckError::VerdictMismatch {
                height,
                position,
                recorded: receipt.code.name(),
                expected: expected
                    .map_or("a decodable, validly signed transaction", ResultCode::name),
            });
        }
    }
    Ok(())
}

fn is_envelope_verdict(code: ResultCode) -> bool {
    matches!(
        code,
        ResultCode::BadSignature
            | ResultCode::MalformedTransaction
            | ResultCode::UnsupportedVersion
            | ResultCode::WrongNetwork
    )
}
