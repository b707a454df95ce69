//! Pending reservations: posting, voiding, releasing and expiring money reserved by a pending
//! transfer. The primitives below the contracts (escrow, exchange, maker-checker) that settle
//! a reservation; they import only the leaf modules and the overlay.

use crate::context::{invariant, ApplyError, OperationContext, Outcome};
use crate::model::{
    account_flags as flags, Hash, ParticipantId, TransferId, TransferRecord, TransferState,
};
use crate::overlay::Overlay;
use crate::result::ResultCode;
use crate::state::expiry_key;

/// Releases a pending reservation from both accounts and moves `posted` of it.
pub(crate) fn release(
    overlay: &mut Overlay<'_>,
    pending: &TransferRecord,
    posted: u128,
    check_frozen: bool,
) -> Result<Option<ResultCode>, ApplyError> {
    let debit = overlay.account(pending.debit_account)?;
    let credit = overlay.account(pending.credit_account)?;
    let (Some(mut debit), Some(mut credit)) = (debit, credit) else {
        return Err(ApplyError::Invariant(format!(
            "pending transfer {} names a missing account",
            pending.id
        )));
    };
    if check_frozen && (debit.has(flags::FROZEN) || credit.has(flags::FROZEN)) {
        return Ok(Some(ResultCode::AccountFrozen));
    }
    invariant(
        debit.debits_pending >= pending.amount && credit.credits_pending >= pending.amount,
        "pending reservations are included in the account balances",
    )?;
    debit.debits_pending -= pending.amount;
    credit.credits_pending -= pending.amount;
    let (Some(debits_posted), Some(credits_posted)) = (
        debit.debits_posted.checked_add(posted),
        credit.credits_posted.checked_add(posted),
    ) else {
        return Ok(Some(ResultCode::Overflow));
    };
    debit.debits_posted = debits_posted;
    credit.credits_posted = credits_posted;
    overlay.put_account(&debit);
    overlay.put_account(&credit);
    Ok(None)
}

/// Posts or voids the pending transfer `(owner, pending_id)`, recording this operation as the
/// signer's transfer `id`.
pub(crate) fn settle_pending(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    id: TransferId,
    (owner, pending_id): (ParticipantId, TransferId),
    post_amount: Option<u128>,
    body_hash: Hash,
) -> Result<Outcome, ApplyError> {
    let reject = |code| Ok(Outcome::Rejected(code));
    let Some(mut pending) = overlay.transfer(owner, pending_id)? else {
        return reject(ResultCode::PendingNotFound);
    };
    if let Err(code) = check_settleable(&pending, post_amount, context.block.time_ms) {
        return reject(code);
    }
    if let Some(code) = release(
        overlay,
        &pending,
        post_amount.unwrap_or(0),
        post_amount.is_some(),
    )? {
        return reject(code);
    }
    overlay.put(
        expiry_key(pending.expires_at_ms, pending.owner, pending.id),
        None,
    );
    pending.state = if post_amount.is_some() {
        TransferState::PendingPosted
    } else {
        TransferState::PendingVoided
    };
    overlay.put_transfer(&pending);
    overlay.put_transfer(&TransferRecord {
        owner: context.signer.id,
        id,
        body_hash,
        tx_id: context.tx_id,
        height: context.block.height,
        result: ResultCode::Ok.number(),
        state: if post_amount.is_some() {
            TransferState::Posted
        } else {
            TransferState::Voided
        },
        debit_account: pending.debit_account,
        credit_account: pending.credit_account,
        asset: pending.asset,
        amount: post_amount.unwrap_or(pending.amount),
        expires_at_ms: 0,
        pending_id,
    });
    Ok(Outcome::Applied)
}

/// Whether the pending transfer can still be posted (`post_amount`) or voided (`None`) at
/// block time `now_ms`: still pending and not past its deadline, and a posted amount from 1 to
/// the reserved amount.
fn check_settleable(
    pending: &TransferRecord,
    post_amount: Option<u128>,
    now_ms: u64,
) -> Result<(), ResultCode> {
    match pending.state {
        // Expiries are bounded per block, so a pending transfer can be past its deadline for a
        // block or two before its expiry is processed: it is expired all the same.
        TransferState::Pending if pending.expires_at_ms <= now_ms => {
            return Err(ResultCode::PendingExpired)
        }
        TransferState::Pending => {}
        TransferState::PendingPosted => return Err(ResultCode::PendingAlreadyPosted),
        TransferState::PendingVoided => return Err(ResultCode::PendingAlreadyVoided),
        TransferState::PendingExpired => return Err(ResultCode::PendingExpired),
        TransferState::Rejected => return Err(ResultCode::PendingNotFound),
        TransferState::Posted | TransferState::Voided => return Err(ResultCode::NotPending),
    }
    if let Some(amount) = post_amount {
        if amount == 0 {
            return Err(ResultCode::ZeroAmount);
        }
        if amount > pending.amount {
            return Err(ResultCode::ExceedsPendingAmount);
        }
    }
    Ok(())
}

/// Posts the whole of a pending transfer (checked to be pending and not expired) on behalf of a
/// contract, without a separate post record: its state becomes `pending_posted`. Returns the
/// rejection if an account is frozen or a balance would overflow.
pub(crate) fn post_reserved(
    overlay: &mut Overlay<'_>,
    pending: &TransferRecord,
) -> Result<Option<ResultCode>, ApplyError> {
    invariant(
        pending.state == TransferState::Pending,
        "only a pending transfer is posted",
    )?;
    if let Some(code) = release(overlay, pending, pending.amount, true)? {
        return Ok(Some(code));
    }
    overlay.put(
        expiry_key(pending.expires_at_ms, pending.owner, pending.id),
        None,
    );
    let mut posted = pending.clone();
    posted.state = TransferState::PendingPosted;
    overlay.put_transfer(&posted);
    Ok(None)
}

/// Expires a pending transfer whose timeout has passed, releasing its reservation.
pub(crate) fn expire_pending(
    overlay: &mut Overlay<'_>,
    owner: ParticipantId,
    id: TransferId,
    key: &[u8],
) -> Result<(), ApplyError> {
    let Some(mut pending) = overlay.transfer(owner, id)? else {
        return Err(ApplyError::Invariant(format!(
            "expiry entry for unknown transfer {owner}/{id}"
        )));
    };
    invariant(
        pending.state == TransferState::Pending,
        "only pending transfers have expiry entries",
    )?;
    if let Some(code) = release(overlay, &pending, 0, false)? {
        return Err(ApplyError::Invariant(format!(
            "releasing an expired reservation failed: {code}"
        )));
    }
    pending.state = TransferState::PendingExpired;
    overlay.put_transfer(&pending);
    overlay.put(key.to_vec(), None);
    Ok(())
}
