//! Posting money between two accounts: the balance checks and the transfer primitive that
//! plain transfers and every contract leg go through, with the maker-checker threshold and the
//! payment limits checked in a fixed order.

use crate::approval;
use crate::context::{may_pay, ApplyError, OperationContext, Outcome};
use crate::limits::PENDING_TIMEOUT_MS_MAX;
use crate::model::{
    account_flags as flags, Account, AccountId, AssetId, Hash, TransferId, TransferKind,
    TransferRecord, TransferState,
};
use crate::overlay::Overlay;
use crate::result::ResultCode;
use crate::state::expiry_key;

/// A request to move or reserve money, from a plain transfer or a contract leg.
pub(crate) struct TransferRequest {
    pub(crate) id: TransferId,
    pub(crate) debit_account: AccountId,
    pub(crate) credit_account: AccountId,
    pub(crate) asset: AssetId,
    pub(crate) amount: u128,
    pub(crate) kind: TransferKind,
    pub(crate) body_hash: Hash,
    /// A plain transfer, subject to the debit account's maker-checker threshold (contract
    /// legs are not: their own terms govern them).
    pub(crate) checked: bool,
    /// A mint or burn: the one movement that may touch the asset's issuance account.
    pub(crate) issuance: bool,
}

/// Checks the balance limits of both accounts after adding `amount` to the posted (or pending)
/// side, returning the updated accounts or the rejection. The debit account stays within its
/// bound (credits plus credit line) unless it is the issuance account, which only a mint or
/// burn (`issuance`) may touch.
pub(crate) fn add_amount(
    (mut debit, mut credit): (Account, Account),
    amount: u128,
    pending: bool,
    issuance: bool,
) -> Result<(Account, Account), ResultCode> {
    if !issuance && (debit.has(flags::ISSUANCE) || credit.has(flags::ISSUANCE)) {
        return Err(ResultCode::IssuanceAccount);
    }
    let add = |value: u128| value.checked_add(amount).ok_or(ResultCode::Overflow);
    if pending {
        debit.debits_pending = add(debit.debits_pending)?;
        credit.credits_pending = add(credit.credits_pending)?;
    } else {
        debit.debits_posted = add(debit.debits_posted)?;
        credit.credits_posted = add(credit.credits_posted)?;
    }
    let debits_total = debit
        .debits_posted
        .checked_add(debit.debits_pending)
        .ok_or(ResultCode::Overflow)?;
    let credits_total = credit
        .credits_posted
        .checked_add(credit.credits_pending)
        .ok_or(ResultCode::Overflow)?;
    if !debit.debits_within_bound(debits_total) {
        return Err(ResultCode::ExceedsCredits);
    }
    if credit.has(flags::CREDITS_MUST_NOT_EXCEED_DEBITS) && credits_total > credit.debits_posted {
        return Err(ResultCode::ExceedsDebits);
    }
    Ok((debit, credit))
}

/// Moves (or reserves) money between two accounts of an asset, signed by the debit account's
/// owner: the checks in the protocol's order, then the writes.
pub(crate) fn transfer(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    request: &TransferRequest,
) -> Result<Outcome, ApplyError> {
    let reject = |code| Ok(Outcome::Rejected(code));
    let timeout_ms = match check_request(context, request) {
        Ok(timeout_ms) => timeout_ms,
        Err(code) => return reject(code),
    };
    let (debit, credit) = match own_accounts(overlay, context, request)? {
        Ok(accounts) => accounts,
        Err(code) => return reject(code),
    };
    // Above the account's threshold a plain transfer is reserved and waits for a second key;
    // a contract leg, which has no such wait, is refused.
    let above = approval::above_threshold(overlay, request.debit_account, request.amount)?;
    if above && !request.checked {
        return reject(ResultCode::ApprovalRequired);
    }
    let needs_checker = above;
    let timeout_ms = match timeout_ms {
        None if needs_checker => Some(approval::APPROVAL_TIMEOUT_MS),
        timeout_ms => timeout_ms,
    };
    if debit.has(flags::FROZEN) || credit.has(flags::FROZEN) {
        return reject(ResultCode::AccountFrozen);
    }
    let pending = timeout_ms.is_some();
    let (debit, credit) =
        match add_amount((debit, credit), request.amount, pending, request.issuance) {
            Ok(accounts) => accounts,
            Err(code) => return reject(code),
        };
    // Limits last: the outflow counts only a debit that every other rule allows.
    if let Some(code) = crate::limits_rules::check_and_count(
        overlay,
        context.block.time_ms,
        context.signer.id,
        request.asset,
        request.amount,
    )? {
        return reject(code);
    }
    record_transfer(overlay, context, request, (&debit, &credit), timeout_ms);
    if needs_checker {
        approval::await_checker(overlay, context, request.id);
    }
    Ok(Outcome::Applied)
}

/// The checks that need no ledger record: the signer may pay, and the request is well formed.
/// Returns the reservation's timeout, if the request reserves.
fn check_request(
    context: &OperationContext<'_>,
    request: &TransferRequest,
) -> Result<Option<u64>, ResultCode> {
    if !may_pay(context.signer) {
        return Err(ResultCode::NotAuthorized);
    }
    if request.amount == 0 {
        return Err(ResultCode::ZeroAmount);
    }
    if request.debit_account == request.credit_account {
        return Err(ResultCode::SameAccount);
    }
    match request.kind {
        TransferKind::Posted => Ok(None),
        TransferKind::Pending { timeout_ms } => {
            if timeout_ms == 0 || timeout_ms > PENDING_TIMEOUT_MS_MAX {
                return Err(ResultCode::InvalidTimeout);
            }
            Ok(Some(timeout_ms))
        }
    }
}

/// The debit and credit accounts, if both exist, the signer owns the debit account, and both
/// are in the request's asset.
fn own_accounts(
    overlay: &Overlay<'_>,
    context: &OperationContext<'_>,
    request: &TransferRequest,
) -> Result<Result<(Account, Account), ResultCode>, ApplyError> {
    let (Some(debit), Some(credit)) = (
        overlay.account(request.debit_account)?,
        overlay.account(request.credit_account)?,
    ) else {
        return Ok(Err(ResultCode::UnknownAccount));
    };
    if debit.owner != context.signer.id {
        return Ok(Err(ResultCode::NotAuthorized));
    }
    if debit.asset != request.asset || credit.asset != request.asset {
        return Ok(Err(ResultCode::AssetMismatch));
    }
    Ok(Ok((debit, credit)))
}

/// Writes an accepted transfer: both accounts, the expiry entry of a reservation, and the
/// signer's transfer record (pending until `timeout_ms` of block time, or posted).
fn record_transfer(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    request: &TransferRequest,
    (debit, credit): (&Account, &Account),
    timeout_ms: Option<u64>,
) {
    let expires_at_ms = match timeout_ms {
        None => 0,
        Some(timeout_ms) => context.block.time_ms.saturating_add(timeout_ms),
    };
    overlay.put_account(debit);
    overlay.put_account(credit);
    let state = if timeout_ms.is_some() {
        TransferState::Pending
    } else {
        TransferState::Posted
    };
    if state == TransferState::Pending {
        overlay.put(
            expiry_key(expires_at_ms, context.signer.id, request.id),
            Some(Vec::new()),
        );
    }
    overlay.put_transfer(&TransferRecord {
        owner: context.signer.id,
        id: request.id,
        body_hash: request.body_hash,
        tx_id: context.tx_id,
        height: context.block.height,
        result: ResultCode::Ok.number(),
        state,
        debit_account: request.debit_account,
        credit_account: request.credit_account,
        asset: request.asset,
        amount: request.amount,
        expires_at_ms,
        pending_id: 0,
    });
}

/// What the record of a rejected transfer names besides its id: the accounts, asset and amount
/// the operation named, or the transfer it referred to (`pending_id`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RejectedTransfer {
    pub(crate) debit_account: AccountId,
    pub(crate) credit_account: AccountId,
    pub(crate) asset: AssetId,
    pub(crate) amount: u128,
    pub(crate) pending_id: TransferId,
}

/// Records the signer's transfer `id` as rejected with `code`, so that a retry gets the same
/// answer and the id cannot be used for another body.
pub(crate) fn record_rejection(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    (id, body_hash): (TransferId, Hash),
    rejected: RejectedTransfer,
    code: ResultCode,
) {
    overlay.put_transfer(&TransferRecord {
        owner: context.signer.id,
        id,
        body_hash,
        tx_id: context.tx_id,
        height: context.block.height,
        result: code.number(),
        state: TransferState::Rejected,
        debit_account: rejected.debit_account,
        credit_account: rejected.credit_account,
        asset: rejected.asset,
        amount: rejected.amount,
        expires_at_ms: 0,
        pending_id: rejected.pending_id,
    });
}
