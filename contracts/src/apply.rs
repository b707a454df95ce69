//! apply(): the deterministic state transition of one block.
//!
//! Inputs are the committed state (through [`StateStore`]), the chain head and the proposal;
//! outputs are the derived header, one receipt per transaction and the record changes. No
//! clock, no randomness and no unordered iteration reach the result, so every replica and an
//! offline auditor compute identical bytes.

use crate::block::{merkle_root, BlockEffect, BlockHeader, Proposal, Receipt};
use crate::codec::DecodeError;
use crate::context::{ApplyError, BlockContext};
use crate::dispatch::{apply_linked, apply_single};
use crate::limits::EXPIRIES_PER_BLOCK_MAX;
use crate::model::{Hash, ParticipantId, TransferId};
use crate::overlay::Overlay;
use crate::pending::expire_pending;
use crate::result::ResultCode;
use crate::sig::{verify_all, SignatureItem};
use crate::state::{
    expiry_key, parse_expiry_key, ChainHead, Commitment, StateDiff, StateStore, StoreError,
};
use crate::tx::{transaction_id, EnvelopeError, Transaction};

/// What one block does, for the node to persist.
#[derive(Debug, Clone)]
pub struct BlockOutcome {
    /// The derived header.
    pub header: BlockHeader,
    /// One receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// Signer of each transaction, where the envelope decoded and the key is registered.
    pub signers: Vec<Option<ParticipantId>>,
    /// Record changes, to write in one batch with the header.
    pub diff: StateDiff,
    /// The new chain head.
    pub head: ChainHead,
    /// Pending transfers that expired at the start of this block.
    pub expired: Vec<(ParticipantId, TransferId)>,
    /// What fell due at the start of this block (expiries, then cycles closed by time).
    pub effects: Vec<BlockEffect>,
}

/// Effective time of the next block: never earlier than the previous block plus 1 ms.
pub fn effective_time_ms(head: &ChainHead, proposer_time_ms: u64) -> u64 {
    proposer_time_ms.max(head.time_ms.saturating_add(1))
}

/// Applies one proposal on top of `head`. `preverified(tx_id)` says that this node already
/// checked the signature of exactly these envelope bytes; every other signature is checked here.
pub fn apply_block(
    store: &dyn StateStore,
    head: &ChainHead,
    proposal: &Proposal,
    preverified: &dyn Fn(&Hash) -> bool,
) -> Result<BlockOutcome, ApplyError> {
    let context = BlockContext {
        height: head.height + 1,
        time_ms: effective_time_ms(head, proposal.proposer_time_ms),
    };
    let (tx_ids, decoded) = decode_transactions(proposal, &head.network_id);
    let verdicts = check_signatures(&decoded, &tx_ids, preverified);

    let mut overlay = Overlay::new(store);
    crate::replay::prune_expired(&mut overlay, store, context)?;
    let expired = expire_due(&mut overlay, store, context)?;
    let closed = crate::netting::close_due(&mut overlay, store, context)?;
    let effects = due_effects(&expired, closed);
    let (signers, receipts) =
        apply_transactions(&mut overlay, context, (&tx_ids, &decoded), &verdicts)?;

    let diff = overlay.into_diff();
    let commitment = updated_commitment(store, &head.commitment, &diff)?;
    let header = BlockHeader {
        network_id: head.network_id,
        height: context.height,
        previous_hash: head.hash,
        time_ms: context.time_ms,
        proposer_time_ms: proposal.proposer_time_ms,
        transaction_count: u32::try_from(receipts.len())
            .expect("bounded by BLOCK_TRANSACTIONS_MAX"),
        transactions_root: merkle_root(&tx_ids),
        receipts_root: merkle_root(&receipts.iter().map(Receipt::hash).collect::<Vec<_>>()),
        effects_root: merkle_root(&effects.iter().map(BlockEffect::hash).collect::<Vec<_>>()),
        state_root: commitment.root(),
    };
    let head = ChainHead {
        network_id: head.network_id,
        height: context.height,
        hash: header.hash(),
        time_ms: context.time_ms,
        commitment,
    };
    Ok(BlockOutcome {
        header,
        receipts,
        signers,
        diff,
        head,
        expired,
        effects,
    })
}

/// Each envelope's id, and its transaction or the code of why it does not decode for this
/// network.
fn decode_transactions(
    proposal: &Proposal,
    network_id: &Hash,
) -> (Vec<Hash>, Vec<Result<Transaction, ResultCode>>) {
    let tx_ids = proposal
        .transactions
        .iter()
        .map(|bytes| transaction_id(bytes))
        .collect();
    let decoded = proposal
        .transactions
        .iter()
        .map(|bytes| {
            Transaction::from_bytes(bytes, network_id).map_err(|error| envelope_code(&error))
        })
        .collect();
    (tx_ids, decoded)
}

/// The block's effects of what fell due at its start: the expired pending transfers, then the
/// netting cycles closed by time.
fn due_effects(expired: &[(ParticipantId, TransferId)], closed: Vec<u128>) -> Vec<BlockEffect> {
    expired
        .iter()
        .map(|(owner, id)| BlockEffect::PendingExpired {
            owner: *owner,
            id: *id,
        })
        .chain(
            closed
                .into_iter()
                .map(|cycle| BlockEffect::CycleSettled { cycle }),
        )
        .collect()
}

/// Applies the transactions in block order: an envelope that did not decode or whose signature
/// fails gets its code and no signer; the others are applied. Returns each one's signer and
/// receipt.
fn apply_transactions(
    overlay: &mut Overlay<'_>,
    context: BlockContext,
    (tx_ids, decoded): (&[Hash], &[Result<Transaction, ResultCode>]),
    verdicts: &[bool],
) -> Result<(Vec<Option<ParticipantId>>, Vec<Receipt>), ApplyError> {
    let mut receipts = Vec::with_capacity(decoded.len());
    let mut signers = Vec::with_capacity(decoded.len());
    for (index, transaction) in decoded.iter().enumerate() {
        let tx_id = tx_ids[index];
        let refused = |code| Receipt {
            tx_id,
            code,
            operations: Vec::new(),
        };
        let (signer, receipt) = match transaction {
            Err(code) => (None, refused(*code)),
            Ok(_) if !verdicts[index] => (None, refused(ResultCode::BadSignature)),
            Ok(transaction) => apply_transaction(overlay, context, tx_id, transaction)?,
        };
        signers.push(signer);
        receipts.push(receipt);
    }
    Ok((signers, receipts))
}

/// The state commitment after the block: `commitment` with each changed record's old value
/// taken out and its new value put in.
fn updated_commitment(
    store: &dyn StateStore,
    commitment: &Commitment,
    diff: &StateDiff,
) -> Result<Commitment, ApplyError> {
    let mut commitment = commitment.clone();
    for (key, value) in diff {
        if let Some(old) = store.get(key)? {
            commitment.remove(key, &old);
        }
        if let Some(new) = value {
            commitment.insert(key, new);
        }
    }
    Ok(commitment)
}

/// The earliest block time at which something falls due without a transaction (a pending
/// transfer expires, a netting cycle closes): the leader proposes a block by then even
/// without traffic.
pub fn next_expiry_ms(store: &dyn StateStore) -> Result<Option<u64>, StoreError> {
    let first = store.scan(&expiry_key(0, 0, 0), &[crate::state::prefix::EXPIRY + 1], 1)?;
    let expiry = first
        .first()
        .and_then(|(key, _)| parse_expiry_key(key))
        .map(|(at, _, _)| at);
    let close = crate::netting::next_close_ms(store)?;
    Ok(match (expiry, close) {
        (Some(expiry), Some(close)) => Some(expiry.min(close)),
        (expiry, close) => expiry.or(close),
    })
}

pub(crate) fn envelope_code(error: &EnvelopeError) -> ResultCode {
    match error {
        EnvelopeError::Malformed(_) | EnvelopeError::TooLarge { .. } => {
            ResultCode::MalformedTransaction
        }
        EnvelopeError::UnsupportedVersion(_) => ResultCode::UnsupportedVersion,
        EnvelopeError::WrongNetwork { .. } => ResultCode::WrongNetwork,
    }
}

fn check_signatures(
    decoded: &[Result<Transaction, ResultCode>],
    tx_ids: &[Hash],
    preverified: &dyn Fn(&Hash) -> bool,
) -> Vec<bool> {
    let mut verdicts = vec![true; decoded.len()];
    let mut positions = Vec::new();
    let mut messages = Vec::new();
    for (index, transaction) in decoded.iter().enumerate() {
        if let Ok(transaction) = transaction {
            if !preverified(&tx_ids[index]) {
                positions.push(index);
                messages.push(transaction.signed_message());
            }
        }
    }
    let items: Vec<SignatureItem<'_>> = positions
        .iter()
        .zip(&messages)
        .map(|(index, message)| {
            let transaction = decoded[*index]
                .as_ref()
                .expect("only decoded transactions are queued");
            SignatureItem {
                key: &transaction.signer,
                signature: &transaction.signature,
                message,
            }
        })
        .collect();
    for (index, verdict) in positions.iter().zip(verify_all(&items)) {
        verdicts[*index] = verdict;
    }
    verdicts
}

fn expire_due(
    overlay: &mut Overlay<'_>,
    store: &dyn StateStore,
    context: BlockContext,
) -> Result<Vec<(ParticipantId, TransferId)>, ApplyError> {
    let end = expiry_key(context.time_ms, u64::MAX, u128::MAX);
    let mut end_inclusive = end.clone();
    end_inclusive.push(0);
    let due = store.scan(&expiry_key(0, 0, 0), &end_inclusive, EXPIRIES_PER_BLOCK_MAX)?;
    let mut expired = Vec::with_capacity(due.len());
    for (key, _) in due {
        let Some((_, owner, id)) = parse_expiry_key(&key) else {
            return Err(ApplyError::Corrupt {
                key: hex::encode(&key),
                source: DecodeError::InvalidValue {
                    field: "expiry.key",
                    value: key.len() as u128,
                },
            });
        };
        expire_pending(overlay, owner, id, &key)?;
        expired.push((owner, id));
    }
    Ok(expired)
}

fn apply_transaction(
    overlay: &mut Overlay<'_>,
    context: BlockContext,
    tx_id: Hash,
    transaction: &Transaction,
) -> Result<(Option<ParticipantId>, Receipt), ApplyError> {
    let refused = |code| Receipt {
        tx_id,
        code,
        operations: Vec::new(),
    };
    if let Some(code) = crate::replay::window_refusal(transaction.validity, context.time_ms) {
        return Ok((None, refused(code)));
    }
    let Some(signer_record) = overlay.signer(&transaction.signer)? else {
        return Ok((None, refused(ResultCode::UnknownSigner)));
    };
    if !signer_record.signs_at(context.time_ms) {
        return Ok((None, refused(ResultCode::KeyRetired)));
    }
    let signer_id = signer_record.participant;
    let Some(signer) = overlay.participant(signer_id)? else {
        return Err(ApplyError::Corrupt {
            key: hex::encode(crate::state::participant_key(signer_id)),
            source: DecodeError::InvalidValue {
                field: "signer.participant",
                value: signer_id.into(),
            },
        });
    };
    if crate::replay::was_applied(overlay, transaction.validity, &tx_id)? {
        return Ok((Some(signer.id), refused(ResultCode::Replayed)));
    }
    crate::replay::record_applied(overlay, transaction.validity, &tx_id);
    let operations = if transaction.body.linked {
        apply_linked(
            overlay,
            context,
            (&signer, transaction.signer),
            tx_id,
            &transaction.body.operations,
        )?
    } else {
        vec![apply_single(
            overlay,
            context,
            (&signer, transaction.signer),
            tx_id,
            &transaction.body.operations[0],
        )?]
    };
    // The transaction's code is the reason of the operation that failed, not the
    // linked_batch_failed of its companions; a retried failed batch reports linked_batch_failed.
    let failed = |code: &ResultCode| *code != ResultCode::Ok;
    let code = operations
        .iter()
        .copied()
        .find(|code| failed(code) && *code != ResultCode::LinkedBatchFailed)
        .or_else(|| operations.iter().copied().find(failed))
        .unwrap_or(ResultCode::Ok);
    Ok((
        Some(signer.id),
        Receipt {
            tx_id,
            code,
            operations,
        },
    ))
}
