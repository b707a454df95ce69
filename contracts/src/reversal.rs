//! Reversal: a compensating transfer back along a settled one, from its credit account to its
//! debit account, signed by the original beneficiary (who owns the credit account) or ordered
//! by a regulator (the one way a regulator moves funds, and only back along a settled
//! transfer; a regulator's order also moves money out of a held account, as fraud recovery
//! needs). The link is kept both ways: the reversal's record names the original, and the
//! original's reversal record lists its reversals and the total reversed, which never exceeds
//! the original amount.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::model::{
    account_flags as flags, to_bytes, Account, Hash, ParticipantId, Role, TransferId,
    TransferRecord, TransferState,
};
use crate::overlay::Overlay;
use crate::posting::add_amount;
use crate::result::ResultCode;
use crate::state::prefix;

pub use crate::limits::BENEFICIARY_REVERSALS_MAX;
pub use crate::limits::REVERSALS_PER_TRANSFER_MAX;

/// Key of a transfer's reversal record.
pub fn reversal_key(owner: ParticipantId, id: TransferId) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(prefix::REVERSAL);
    key.extend_from_slice(&owner.to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The reversals of one settled transfer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReversalRecord {
    /// Total reversed so far.
    pub reversed: u128,
    /// The reversal transfers, as (signer, transfer id), in order.
    pub reversals: Vec<(ParticipantId, TransferId)>,
}

impl ReversalRecord {
    /// Canonical record encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u128(self.reversed);
        writer
            .u8(u8::try_from(self.reversals.len()).expect("bounded by REVERSALS_PER_TRANSFER_MAX"));
        for (signer, id) in &self.reversals {
            writer.u64(*signer);
            writer.u128(*id);
        }
    }
    /// Reads a record written by [`ReversalRecord::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let reversed = reader.u128("reversal.reversed")?;
        let count = reader.u8("reversal.count")? as usize;
        if count > REVERSALS_PER_TRANSFER_MAX {
            return Err(DecodeError::TooLong {
                field: "reversal.reversals",
                length: count,
                limit: REVERSALS_PER_TRANSFER_MAX,
            });
        }
        let mut reversals = Vec::with_capacity(count);
        for _ in 0..count {
            reversals.push((reader.u64("reversal.signer")?, reader.u128("reversal.id")?));
        }
        Ok(Self {
            reversed,
            reversals,
        })
    }
}

/// The fields of a reversal.
pub(crate) struct ReversalRequest {
    pub id: TransferId,
    pub original_owner: ParticipantId,
    pub original_id: TransferId,
    pub amount: u128,
    pub body_hash: Hash,
}

/// Moves `amount` back along a settled transfer.
pub(crate) fn reverse(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    request: &ReversalRequest,
) -> Result<Outcome, ApplyError> {
    let reject = |code| Ok(Outcome::Rejected(code));
    let original = match settled_original(overlay, request)? {
        Ok(original) => original,
        Err(code) => return reject(code),
    };
    let order = context.signer.role == Role::Regulator;
    let checked = match check_reversal(overlay, context, request, &original, order)? {
        Ok(checked) => checked,
        Err(code) => return reject(code),
    };
    let (beneficiary, payer) = match add_amount(
        (checked.beneficiary, checked.payer),
        request.amount,
        false,
        false,
    ) {
        Ok(accounts) => accounts,
        Err(code) => return reject(code),
    };
    // The beneficiary's own reversal is a payment of its own, under its limits; a
    // regulator's order is not.
    if !order {
        if let Some(code) = crate::limits_rules::check_and_count(
            overlay,
            context.block.time_ms,
            context.signer.id,
            original.asset,
            request.amount,
        )? {
            return reject(code);
        }
    }
    overlay.put_account(&beneficiary);
    overlay.put_account(&payer);
    record_reversal(overlay, context, request, &original, checked.record);
    Ok(Outcome::Applied)
}

/// The transfer to reverse, if it is settled and moved money. Settled: posted at once or by a
/// post operation, or a reservation a contract posted whole (an exchange leg on acceptance, a
/// transfer on its checker's approval). A reservation posted by its owner is reversed through
/// the post operation's own record instead.
fn settled_original(
    overlay: &Overlay<'_>,
    request: &ReversalRequest,
) -> Result<Result<TransferRecord, ResultCode>, ApplyError> {
    let Some(original) = overlay.transfer(request.original_owner, request.original_id)? else {
        return Ok(Err(ResultCode::NotReversible));
    };
    let settled = match original.state {
        TransferState::Posted => true,
        TransferState::PendingPosted => {
            crate::exchange::is_exchange(overlay, request.original_owner, request.original_id)?
                || crate::approval::was_approved(
                    overlay,
                    request.original_owner,
                    request.original_id,
                )?
        }
        _ => false,
    };
    if !settled || original.amount == 0 {
        return Ok(Err(ResultCode::NotReversible));
    }
    Ok(Ok(original))
}

/// What a reversal that passed its checks moves money between, and the original's reversal
/// record so far.
struct CheckedReversal {
    beneficiary: Account,
    payer: Account,
    record: ReversalRecord,
}

/// The checks of a reversal of a settled transfer, in the protocol's order: who may reverse,
/// the amount, the reversal counts and the amount left, held accounts and the maker-checker
/// threshold (these two only for the beneficiary's own reversal).
fn check_reversal(
    overlay: &Overlay<'_>,
    context: &OperationContext<'_>,
    request: &ReversalRequest,
    original: &TransferRecord,
    order: bool,
) -> Result<Result<CheckedReversal, ResultCode>, ApplyError> {
    let reject = |code| Ok(Err(code));
    let (Some(beneficiary), Some(payer)) = (
        overlay.account(original.credit_account)?,
        overlay.account(original.debit_account)?,
    ) else {
        return Err(ApplyError::Invariant(
            "a settled transfer names a missing account".into(),
        ));
    };
    if !order && beneficiary.owner != context.signer.id {
        return reject(ResultCode::NotBeneficiary);
    }
    if request.amount == 0 {
        return reject(ResultCode::ZeroAmount);
    }
    let key = reversal_key(request.original_owner, request.original_id);
    let record = overlay
        .typed(&key, ReversalRecord::decode)?
        .unwrap_or_default();
    let by_beneficiary = record
        .reversals
        .iter()
        .filter(|(signer, _)| *signer == beneficiary.owner)
        .count();
    if record.reversals.len() >= REVERSALS_PER_TRANSFER_MAX
        || (!order && by_beneficiary >= BENEFICIARY_REVERSALS_MAX)
    {
        return reject(ResultCode::ReversalLimit);
    }
    let remaining = original.amount.saturating_sub(record.reversed);
    if request.amount > remaining {
        return reject(ResultCode::ExceedsReversible);
    }
    if !order && (beneficiary.has(flags::FROZEN) || payer.has(flags::FROZEN)) {
        return reject(ResultCode::AccountFrozen);
    }
    if !order && crate::approval::above_threshold(overlay, original.credit_account, request.amount)?
    {
        return reject(ResultCode::ApprovalRequired);
    }
    Ok(Ok(CheckedReversal {
        beneficiary,
        payer,
        record,
    }))
}

/// Adds the reversal to the original's reversal record and records it as the signer's posted
/// transfer back from the original's credit account to its debit account.
fn record_reversal(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    request: &ReversalRequest,
    original: &TransferRecord,
    mut record: ReversalRecord,
) {
    record.reversed += request.amount;
    record.reversals.push((context.signer.id, request.id));
    overlay.put(
        reversal_key(request.original_owner, request.original_id),
        Some(to_bytes(|writer| record.encode(writer))),
    );
    overlay.put_transfer(&TransferRecord {
        owner: context.signer.id,
        id: request.id,
        body_hash: request.body_hash,
        tx_id: context.tx_id,
        height: context.block.height,
        result: ResultCode::Ok.number(),
        state: TransferState::Posted,
        debit_account: original.credit_account,
        credit_account: original.debit_account,
        asset: original.asset,
        amount: request.amount,
        expires_at_ms: 0,
        // The reversed transfer's id; its owner is in the reversal operation and the original's
        // reversal record lists this reversal.
        pending_id: request.original_id,
    });
}
