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
    account_flags as flags, to_bytes, Hash, ParticipantId, Role, TransferId, TransferRecord,
    TransferState,
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
    let Some(original) = overlay.transfer(request.original_owner, request.original_id)? else {
        return reject(ResultCode::NotReversible);
    };
    // Settled: posted at once or by a post operation, or a reservation a contract posted whole
    // (an exchange leg on acceptance, a transfer on its checker's approval). A reservation
    // posted by its owner is reversed through the post operation's own record instead.
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
        return reject(ResultCode::NotReversible);
    }
    let (Some(beneficiary), Some(payer)) = (
        overlay.account(original.credit_account)?,
        overlay.account(original.debit_account)?,
    ) else {
        return Err(ApplyError::Invariant(
            "a settled transfer names a missing account".into(),
        ));
    };
    let order = context.signer.role == Role::Regulator;
    if !order && beneficiary.owner != context.signer.id {
        return reject(ResultCode::NotBeneficiary);
    }
    if request.amount == 0 {
        return reject(ResultCode::ZeroAmount);
    }
    let key = reversal_key(request.original_owner, request.original_id);
    let mut record = overlay
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
    let (beneficiary, payer) = match add_amount(beneficiary, payer, request.amount, false) {
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
    record.reversed += request.amount;
    record.reversals.push((context.signer.id, request.id));
    overlay.put(key, Some(to_bytes(|writer| record.encode(writer))));
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
    Ok(Outcome::Applied)
}
