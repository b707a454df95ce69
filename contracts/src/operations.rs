//! The ledger operations: opening accounts, posted and pending transfers, post, void and
//! expiry, each checking its rules in a fixed order and returning a stable result code.

use crate::apply::{may_pay, ApplyError, BlockContext};
use crate::approval;
use crate::escrow;
use crate::exchange;
use crate::limits::PENDING_TIMEOUT_MS_MAX;
use crate::model::{
    account_flags as flags, Account, AccountId, AssetId, Hash, HoldRecord, Participant,
    ParticipantId, PublicKey, Role, TransferId, TransferRecord, TransferState,
};
use crate::netting;
use crate::overlay::Overlay;
use crate::result::ResultCode;
use crate::state::expiry_key;
use crate::tx::{Operation, TransferKind};
use std::collections::BTreeSet;

/// What evaluating one operation did.
pub(crate) enum Outcome {
    /// Applied; its records are written.
    Applied,
    /// Refused; the transfer id (if any) is recorded with this code.
    Rejected(ResultCode),
    /// The id was used before: nothing is written and this code is returned.
    Existing(ResultCode),
}

pub(crate) struct OperationContext<'a> {
    pub(crate) block: BlockContext,
    pub(crate) signer: &'a Participant,
    /// The key that signed the transaction (one of the signer's registered keys).
    pub(crate) signer_key: PublicKey,
    pub(crate) tx_id: Hash,
}

fn invariant(holds: bool, what: &str) -> Result<(), ApplyError> {
    if holds {
        Ok(())
    } else {
        Err(ApplyError::Invariant(what.to_string()))
    }
}

fn stored_code(number: u16) -> Result<ResultCode, ApplyError> {
    ResultCode::from_number(number)
        .ok_or_else(|| ApplyError::Invariant(format!("unknown stored result code {number}")))
}

/// Applies one unlinked operation and returns its code.
pub(crate) fn apply_single(
    overlay: &mut Overlay<'_>,
    block: BlockContext,
    (signer, signer_key): (&Participant, PublicKey),
    tx_id: Hash,
    operation: &Operation,
) -> Result<ResultCode, ApplyError> {
    let context = OperationContext {
        block,
        signer,
        signer_key,
        tx_id,
    };
    Ok(match evaluate(overlay, &context, operation)? {
        Outcome::Applied => ResultCode::Ok,
        Outcome::Existing(code) => code,
        Outcome::Rejected(code) => {
            record_rejection(overlay, &context, operation, code);
            code
        }
    })
}

/// Applies a linked batch: every operation or none, returning one code per operation.
pub(crate) fn apply_linked(
    overlay: &mut Overlay<'_>,
    block: BlockContext,
    (signer, signer_key): (&Participant, PublicKey),
    tx_id: Hash,
    operations: &[Operation],
) -> Result<Vec<ResultCode>, ApplyError> {
    let context = OperationContext {
        block,
        signer,
        signer_key,
        tx_id,
    };
    let fail_at = |index: usize, code: ResultCode| -> Vec<ResultCode> {
        (0..operations.len())
            .map(|other| {
                if other == index {
                    code
                } else {
                    ResultCode::LinkedBatchFailed
                }
            })
            .collect()
    };
    let mut seen = BTreeSet::new();
    for (index, operation) in operations.iter().enumerate() {
        if let Some(id) = operation.transfer_id() {
            if !seen.insert(id) {
                return Ok(fail_at(index, ResultCode::DuplicateInBatch));
            }
        }
    }
    if let Some(codes) = retried_batch(overlay, &context, operations)? {
        return Ok(codes);
    }
    overlay.begin_batch();
    for (index, operation) in operations.iter().enumerate() {
        let code = match evaluate(overlay, &context, operation)? {
            Outcome::Applied | Outcome::Existing(ResultCode::Ok) => continue,
            Outcome::Rejected(code) | Outcome::Existing(code) => code,
        };
        overlay.end_batch(false);
        let codes = fail_at(index, code);
        for (operation, code) in operations.iter().zip(&codes) {
            record_rejection(overlay, &context, operation, *code);
        }
        return Ok(codes);
    }
    overlay.end_batch(true);
    Ok(vec![ResultCode::Ok; operations.len()])
}

/// A linked batch whose transfer ids were all used before with the same bodies is a retry and
/// gets the original outcomes; one that reuses only some ids fails at the first reused id.
fn retried_batch(
    overlay: &Overlay<'_>,
    context: &OperationContext<'_>,
    operations: &[Operation],
) -> Result<Option<Vec<ResultCode>>, ApplyError> {
    let mut existing = Vec::with_capacity(operations.len());
    for operation in operations {
        existing.push(match operation.transfer_id() {
            Some(id) => overlay.transfer(context.signer.id, id)?,
            None => None,
        });
    }
    let transfer_count = operations
        .iter()
        .filter(|operation| operation.transfer_id().is_some())
        .count();
    let same_body = |index: usize| {
        existing[index]
            .as_ref()
            .is_some_and(|record| record.body_hash == operations[index].body_hash())
    };
    let retried = (0..operations.len())
        .filter(|index| same_body(*index))
        .count();
    if transfer_count > 0 && retried == transfer_count {
        // The batch applied as a whole exactly when its recorded transfers all succeeded; the
        // operations without ids then succeeded with them.
        let mut applied = true;
        for record in existing.iter().flatten() {
            applied &= stored_code(record.result)? == ResultCode::Ok;
        }
        let without_id = if applied {
            ResultCode::Ok
        } else {
            ResultCode::LinkedBatchFailed
        };
        let mut codes = Vec::with_capacity(operations.len());
        for (index, operation) in operations.iter().enumerate() {
            codes.push(match (&existing[index], operation) {
                (Some(record), _) => stored_code(record.result)?,
                (
                    None,
                    Operation::OpenAccount {
                        account,
                        owner,
                        asset,
                        flags,
                    },
                ) => match overlay.account(*account)? {
                    Some(found)
                        if found.owner == *owner
                            && found.asset == *asset
                            && found.flags == *flags =>
                    {
                        ResultCode::Ok
                    }
                    _ => ResultCode::LinkedBatchFailed,
                },
                (None, _) => without_id,
            });
        }
        return Ok(Some(codes));
    }
    for (index, record) in existing.iter().enumerate() {
        if record.is_some() {
            let code = if same_body(index) {
                ResultCode::IdExists
            } else {
                ResultCode::IdExistsWithDifferentBody
            };
            return Ok(Some(
                (0..operations.len())
                    .map(|other| {
                        if other == index {
                            code
                        } else {
                            ResultCode::LinkedBatchFailed
                        }
                    })
                    .collect(),
            ));
        }
    }
    Ok(None)
}

fn evaluate(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    operation: &Operation,
) -> Result<Outcome, ApplyError> {
    if let Some(id) = operation.transfer_id() {
        if let Some(record) = overlay.transfer(context.signer.id, id)? {
            return Ok(if record.body_hash == operation.body_hash() {
                Outcome::Existing(stored_code(record.result)?)
            } else {
                Outcome::Existing(ResultCode::IdExistsWithDifferentBody)
            });
        }
    }
    match operation {
        Operation::OpenAccount {
            account,
            owner,
            asset,
            flags,
        } => open_account(overlay, context, *account, *owner, *asset, *flags),
        Operation::Transfer {
            id,
            debit_account,
            credit_account,
            asset,
            amount,
            kind,
            ..
        } => {
            let request = TransferRequest {
                id: *id,
                debit_account: *debit_account,
                credit_account: *credit_account,
                asset: *asset,
                amount: *amount,
                kind: *kind,
                body_hash: operation.body_hash(),
                checked: true,
            };
            transfer(overlay, context, &request)
        }
        Operation::PostPending { pending_id, .. } | Operation::VoidPending { pending_id, .. }
            if escrow::is_escrow(overlay, context.signer.id, *pending_id)? =>
        {
            Ok(Outcome::Rejected(ResultCode::EscrowLocked))
        }
        // A transfer waiting for its checker may be cancelled (voided) by its maker, not posted.
        Operation::PostPending { pending_id, .. }
            if approval::is_awaiting(overlay, context.signer.id, *pending_id)? =>
        {
            Ok(Outcome::Rejected(ResultCode::ApprovalRequired))
        }
        // An offer may be withdrawn (voided) but its leg settles only with the other one.
        Operation::PostPending { pending_id, .. }
            if exchange::is_exchange(overlay, context.signer.id, *pending_id)? =>
        {
            Ok(Outcome::Rejected(ResultCode::ExchangeLegLocked))
        }
        Operation::PostPending {
            id,
            pending_id,
            amount,
        } => settle_pending(
            overlay,
            context,
            *id,
            (context.signer.id, *pending_id),
            Some(*amount),
            operation.body_hash(),
        ),
        Operation::VoidPending { id, pending_id } => settle_pending(
            overlay,
            context,
            *id,
            (context.signer.id, *pending_id),
            None,
            operation.body_hash(),
        ),
        Operation::CreateEscrow {
            id,
            debit_account,
            credit_account,
            asset,
            amount,
            timeout_ms,
            terms,
        } => {
            let request = escrow::EscrowRequest {
                id: *id,
                debit_account: *debit_account,
                credit_account: *credit_account,
                asset: *asset,
                amount: *amount,
                timeout_ms: *timeout_ms,
                terms,
                body_hash: operation.body_hash(),
            };
            escrow::create(overlay, context, &request)
        }
        Operation::ApproveEscrow { owner, escrow_id } => {
            escrow::approve(overlay, context, *owner, *escrow_id)
        }
        Operation::OfferExchange {
            id,
            debit_account,
            credit_account,
            asset,
            amount,
            counter_debit_account,
            counter_credit_account,
            counter_asset,
            counter_amount,
            timeout_ms,
        } => {
            let request = exchange::OfferRequest {
                id: *id,
                debit_account: *debit_account,
                credit_account: *credit_account,
                asset: *asset,
                amount: *amount,
                counter_debit_account: *counter_debit_account,
                counter_credit_account: *counter_credit_account,
                counter_asset: *counter_asset,
                counter_amount: *counter_amount,
                timeout_ms: *timeout_ms,
                body_hash: operation.body_hash(),
            };
            exchange::offer(overlay, context, &request)
        }
        Operation::OpenCycle {
            cycle,
            asset,
            closes_at_ms,
            members,
        } => netting::open(overlay, context, *cycle, *asset, *closes_at_ms, members),
        Operation::SetCreditLimit {
            debtor,
            asset,
            limit,
        } => crate::limits_rules::set_credit_limit(overlay, context, *debtor, *asset, *limit),
        Operation::SubmitObligation {
            id,
            cycle,
            debit_account,
            credit_account,
            amount,
        } => {
            let request = netting::ObligationRequest {
                id: *id,
                cycle: *cycle,
                debit_account: *debit_account,
                credit_account: *credit_account,
                amount: *amount,
                body_hash: operation.body_hash(),
            };
            netting::submit(overlay, context, &request)
        }
        Operation::CloseCycle { cycle, carry_to } => {
            netting::close(overlay, context, *cycle, *carry_to)
        }
        Operation::SetTransferMax { asset, .. } => {
            crate::limits_rules::set_transfer_max(overlay, context, *asset)
        }
        Operation::Propose {
            proposal,
            expires_at_ms,
            action,
        } => crate::governance::propose(overlay, context, *proposal, *expires_at_ms, action),
        Operation::ApproveProposal { proposal } => {
            crate::governance::approve(overlay, context, *proposal)
        }
        Operation::RevokeKey { participant, key } => {
            crate::governance::revoke_key(overlay, context, *participant, key)
        }
        Operation::SetApprovalPolicy { account, threshold } => {
            approval::set_policy(overlay, context, *account, *threshold)
        }
        Operation::AddKey { participant, key } => {
            approval::add_key(overlay, context, *participant, *key)
        }
        Operation::ApproveTransfer { id } => approval::approve(overlay, context, *id),
        Operation::SetWebhook { endpoint, url } => set_webhook(overlay, context, *endpoint, url),
        Operation::SetOutflowCap {
            participant,
            asset,
            cap,
        } => crate::limits_rules::set_outflow_cap(overlay, context, *participant, *asset, *cap),
        Operation::Reverse {
            id,
            original_owner,
            original_id,
            amount,
        } => {
            let request = crate::reversal::ReversalRequest {
                id: *id,
                original_owner: *original_owner,
                original_id: *original_id,
                amount: *amount,
                body_hash: operation.body_hash(),
            };
            crate::reversal::reverse(overlay, context, &request)
        }
        Operation::AcceptExchange {
            id,
            owner,
            exchange_id,
        } => exchange::accept(
            overlay,
            context,
            *id,
            (*owner, *exchange_id),
            operation.body_hash(),
        ),
        Operation::ReleaseEscrow {
            id,
            owner,
            escrow_id,
            preimage,
        } => {
            let request = escrow::ReleaseRequest {
                id: *id,
                owner: *owner,
                escrow_id: *escrow_id,
                preimage: *preimage,
                body_hash: operation.body_hash(),
            };
            escrow::release(overlay, context, &request)
        }
        Operation::SetHold {
            account,
            frozen,
            reason,
        } => set_hold(overlay, context, *account, *frozen, *reason),
    }
}

/// A regulator places or lifts a hold: the frozen flag stops every debit and credit of the
/// account, and the hold record says who placed it, why and when. Placing a hold on a held
/// account replaces the record (a new reason); lifting clears both.
fn set_hold(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    account_id: AccountId,
    frozen: bool,
    reason: u16,
) -> Result<Outcome, ApplyError> {
    if context.signer.role != Role::Regulator {
        return Ok(Outcome::Rejected(ResultCode::RegulatorOnly));
    }
    let Some(mut account) = overlay.account(account_id)? else {
        return Ok(Outcome::Rejected(ResultCode::UnknownAccount));
    };
    if frozen {
        if reason == 0 {
            return Ok(Outcome::Rejected(ResultCode::InvalidHoldReason));
        }
        account.flags |= flags::FROZEN;
        overlay.put_account(&account);
        let record = HoldRecord {
            account: account_id,
            reason,
            regulator: context.signer.id,
            height: context.block.height,
            time_ms: context.block.time_ms,
        };
        overlay.put_hold(account_id, Some(&record));
    } else {
        if !account.has(flags::FROZEN) {
            return Ok(Outcome::Rejected(ResultCode::NotHeld));
        }
        account.flags &= !flags::FROZEN;
        overlay.put_account(&account);
        overlay.put_hold(account_id, None);
    }
    Ok(Outcome::Applied)
}

fn open_account(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    account: AccountId,
    owner: ParticipantId,
    asset: AssetId,
    account_flags: u16,
) -> Result<Outcome, ApplyError> {
    let Some(owner_participant) = overlay.participant(owner)? else {
        return Ok(Outcome::Rejected(ResultCode::UnknownParticipant));
    };
    if context.signer.id != owner && owner_participant.bank != Some(context.signer.id) {
        return Ok(Outcome::Rejected(ResultCode::NotAuthorized));
    }
    if overlay.asset(asset)?.is_none() {
        return Ok(Outcome::Rejected(ResultCode::UnknownAsset));
    }
    let both_limits = flags::DEBITS_MUST_NOT_EXCEED_CREDITS | flags::CREDITS_MUST_NOT_EXCEED_DEBITS;
    if account_flags & !flags::ALL != 0
        || account_flags & flags::FROZEN != 0
        || account_flags & both_limits == both_limits
    {
        return Ok(Outcome::Rejected(ResultCode::InvalidFlags));
    }
    if let Some(found) = overlay.account(account)? {
        return Ok(
            if found.owner == owner && found.asset == asset && found.flags == account_flags {
                Outcome::Existing(ResultCode::Ok)
            } else {
                Outcome::Rejected(ResultCode::AccountExists)
            },
        );
    }
    overlay.put_account(&Account::new(account, owner, asset, account_flags));
    Ok(Outcome::Applied)
}

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
}

/// Checks the balance limits of both accounts after adding `amount` to the posted (or pending)
/// side, returning the updated accounts or the rejection.
pub(crate) fn add_amount(
    mut debit: Account,
    mut credit: Account,
    amount: u128,
    pending: bool,
) -> Result<(Account, Account), ResultCode> {
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
    if debit.has(flags::DEBITS_MUST_NOT_EXCEED_CREDITS) && debits_total > debit.credits_posted {
        return Err(ResultCode::ExceedsCredits);
    }
    if credit.has(flags::CREDITS_MUST_NOT_EXCEED_DEBITS) && credits_total > credit.debits_posted {
        return Err(ResultCode::ExceedsDebits);
    }
    Ok((debit, credit))
}

pub(crate) fn transfer(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    request: &TransferRequest,
) -> Result<Outcome, ApplyError> {
    let reject = |code| Ok(Outcome::Rejected(code));
    if !may_pay(context.signer) {
        return reject(ResultCode::NotAuthorized);
    }
    if request.amount == 0 {
        return reject(ResultCode::ZeroAmount);
    }
    if request.debit_account == request.credit_account {
        return reject(ResultCode::SameAccount);
    }
    let timeout_ms = match request.kind {
        TransferKind::Posted => None,
        TransferKind::Pending { timeout_ms } => {
            if timeout_ms == 0 || timeout_ms > PENDING_TIMEOUT_MS_MAX {
                return reject(ResultCode::InvalidTimeout);
            }
            Some(timeout_ms)
        }
    };
    let (Some(debit), Some(credit)) = (
        overlay.account(request.debit_account)?,
        overlay.account(request.credit_account)?,
    ) else {
        return reject(ResultCode::UnknownAccount);
    };
    if debit.owner != context.signer.id {
        return reject(ResultCode::NotAuthorized);
    }
    if debit.asset != request.asset || credit.asset != request.asset {
        return reject(ResultCode::AssetMismatch);
    }
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
    let (debit, credit) = match add_amount(debit, credit, request.amount, timeout_ms.is_some()) {
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
    let expires_at_ms = match timeout_ms {
        None => 0,
        Some(timeout_ms) => context.block.time_ms.saturating_add(timeout_ms),
    };
    overlay.put_account(&debit);
    overlay.put_account(&credit);
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
    if needs_checker {
        approval::await_checker(overlay, context, request.id);
    }
    Ok(Outcome::Applied)
}

/// Releases a pending reservation from both accounts and moves `posted` of it.
fn release(
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
    match pending.state {
        // Expiries are bounded per block, so a pending transfer can be past its deadline for a
        // block or two before its expiry is processed: it is expired all the same.
        TransferState::Pending if pending.expires_at_ms <= context.block.time_ms => {
            return reject(ResultCode::PendingExpired)
        }
        TransferState::Pending => {}
        TransferState::PendingPosted => return reject(ResultCode::PendingAlreadyPosted),
        TransferState::PendingVoided => return reject(ResultCode::PendingAlreadyVoided),
        TransferState::PendingExpired => return reject(ResultCode::PendingExpired),
        TransferState::Rejected => return reject(ResultCode::PendingNotFound),
        TransferState::Posted | TransferState::Voided => return reject(ResultCode::NotPending),
    }
    if let Some(amount) = post_amount {
        if amount == 0 {
            return reject(ResultCode::ZeroAmount);
        }
        if amount > pending.amount {
            return reject(ResultCode::ExceedsPendingAmount);
        }
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

fn record_rejection(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    operation: &Operation,
    code: ResultCode,
) {
    let (debit_account, credit_account, asset, amount, pending_id) = match operation {
        // No transfer id: the receipt alone records the rejection.
        Operation::OpenAccount { .. }
        | Operation::SetHold { .. }
        | Operation::ApproveEscrow { .. }
        | Operation::OpenCycle { .. }
        | Operation::SubmitObligation { .. }
        | Operation::CloseCycle { .. }
        | Operation::SetTransferMax { .. }
        | Operation::SetOutflowCap { .. }
        | Operation::SetCreditLimit { .. }
        | Operation::SetWebhook { .. }
        | Operation::SetApprovalPolicy { .. }
        | Operation::AddKey { .. }
        | Operation::ApproveTransfer { .. }
        | Operation::Propose { .. }
        | Operation::ApproveProposal { .. }
        | Operation::RevokeKey { .. } => return,
        Operation::CreateEscrow {
            debit_account,
            credit_account,
            asset,
            amount,
            ..
        } => (*debit_account, *credit_account, *asset, *amount, 0),
        Operation::ReleaseEscrow { escrow_id, .. } => (0, 0, 0, 0, *escrow_id),
        Operation::OfferExchange {
            debit_account,
            credit_account,
            asset,
            amount,
            ..
        } => (*debit_account, *credit_account, *asset, *amount, 0),
        Operation::AcceptExchange { exchange_id, .. } => (0, 0, 0, 0, *exchange_id),
        Operation::Reverse {
            original_id,
            amount,
            ..
        } => (0, 0, 0, *amount, *original_id),
        Operation::Transfer {
            debit_account,
            credit_account,
            asset,
            amount,
            ..
        } => (*debit_account, *credit_account, *asset, *amount, 0),
        Operation::PostPending {
            pending_id, amount, ..
        } => (0, 0, 0, *amount, *pending_id),
        Operation::VoidPending { pending_id, .. } => (0, 0, 0, 0, *pending_id),
    };
    let id = operation
        .transfer_id()
        .expect("every other operation has a transfer id");
    overlay.put_transfer(&TransferRecord {
        owner: context.signer.id,
        id,
        body_hash: operation.body_hash(),
        tx_id: context.tx_id,
        height: context.block.height,
        result: code.number(),
        state: TransferState::Rejected,
        debit_account,
        credit_account,
        asset,
        amount,
        expires_at_ms: 0,
        pending_id,
    });
}

/// Key of a participant's webhook endpoint.
pub fn webhook_key(participant: crate::model::ParticipantId, endpoint: u16) -> Vec<u8> {
    let mut key = Vec::with_capacity(11);
    key.push(crate::state::prefix::WEBHOOK);
    key.extend_from_slice(&participant.to_be_bytes());
    key.extend_from_slice(&endpoint.to_be_bytes());
    key
}

/// Whether a webhook URL is acceptable: http:// or https://, a host, printable ASCII without
/// spaces, within the size bound.
pub fn webhook_url_valid(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    url.len() <= crate::limits::WEBHOOK_URL_SIZE_MAX
        && rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && url.bytes().all(|byte| byte.is_ascii_graphic())
}

/// The signer registers, replaces or (with an empty URL) removes one of its webhook endpoints.
fn set_webhook(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    endpoint: u16,
    url: &str,
) -> Result<Outcome, ApplyError> {
    if endpoint >= crate::limits::WEBHOOK_ENDPOINTS_MAX
        || !(url.is_empty() || webhook_url_valid(url))
    {
        return Ok(Outcome::Rejected(ResultCode::InvalidWebhook));
    }
    let key = webhook_key(context.signer.id, endpoint);
    // The value: the registering block's height (deliveries start after it), then the URL.
    let value = (!url.is_empty()).then(|| {
        let mut value = context.block.height.to_be_bytes().to_vec();
        value.extend_from_slice(url.as_bytes());
        value
    });
    overlay.put(key, value);
    Ok(Outcome::Applied)
}
