//! Escrow and conditional payment: an amount locked from the payer (a pending reservation with
//! release terms) that moves to the payee only when every condition of its terms holds (a
//! hashlock's secret, a release time from the block clock, M of N named approvals), and that
//! returns to the payer when its timeout passes (the pending-expiry path). Neither party can
//! post or void it by hand.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::limits::{ESCROW_APPROVERS_MAX, PENDING_TIMEOUT_MS_MAX};
use crate::model::TransferKind;
use crate::model::{to_bytes, AccountId, AssetId, Hash, ParticipantId, TransferId, TransferState};
use crate::overlay::Overlay;
use crate::pending::settle_pending;
use crate::posting::{transfer, TransferRequest};
use crate::result::ResultCode;
use crate::state::escrow_key;

/// When an escrowed amount may be released to the payee: every condition present must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowTerms {
    /// blake3 of a 32-byte secret that the releaser must present.
    pub hashlock: Option<Hash>,
    /// Block time from which release is allowed (0: no time condition).
    pub release_after_ms: u64,
    /// Named parties whose approvals count, in ascending order, at most
    /// [`ESCROW_APPROVERS_MAX`].
    pub approvers: Vec<ParticipantId>,
    /// Approvals needed (M of the N approvers); 0 when there are no approvers.
    pub approvals_required: u8,
}

impl EscrowTerms {
    /// Canonical encoding: has_hashlock u8 [hashlock [32]] | release_after_ms u64 |
    /// approver count u8 | approvers u64* (strictly ascending) | approvals_required u8.
    pub fn encode(&self, writer: &mut Writer) {
        match &self.hashlock {
            None => writer.u8(0),
            Some(hash) => {
                writer.u8(1);
                writer.fixed(hash);
            }
        }
        writer.u64(self.release_after_ms);
        writer.u8(u8::try_from(self.approvers.len()).expect("bounded by ESCROW_APPROVERS_MAX"));
        for approver in &self.approvers {
            writer.u64(*approver);
        }
        writer.u8(self.approvals_required);
    }

    /// Reads terms written by [`EscrowTerms::encode`], refusing unsorted or repeated approvers.
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let hashlock = if reader.bool("escrow.has_hashlock")? {
            Some(reader.array("escrow.hashlock")?)
        } else {
            None
        };
        let release_after_ms = reader.u64("escrow.release_after_ms")?;
        let count = reader.u8("escrow.approver_count")? as usize;
        if count > ESCROW_APPROVERS_MAX {
            return Err(DecodeError::TooLong {
                field: "escrow.approvers",
                length: count,
                limit: ESCROW_APPROVERS_MAX,
            });
        }
        let mut approvers: Vec<ParticipantId> = Vec::with_capacity(count);
        for _ in 0..count {
            let approver = reader.u64("escrow.approver")?;
            if approvers.last().is_some_and(|last| *last >= approver) {
                return Err(DecodeError::InvalidValue {
                    field: "escrow.approvers",
                    value: approver.into(),
                });
            }
            approvers.push(approver);
        }
        Ok(Self {
            hashlock,
            release_after_ms,
            approvers,
            approvals_required: reader.u8("escrow.approvals_required")?,
        })
    }
}

/// An escrow's terms and the approvals given so far (ascending); its money and state are the
/// pending transfer record with the same owner and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowRecord {
    /// The release conditions.
    pub terms: EscrowTerms,
    /// Approvers that approved, ascending.
    pub approvals: Vec<ParticipantId>,
}

impl EscrowRecord {
    /// Canonical record encoding.
    pub fn encode(&self, writer: &mut Writer) {
        self.terms.encode(writer);
        writer.u8(u8::try_from(self.approvals.len()).expect("approvals are approvers"));
        for approver in &self.approvals {
            writer.u64(*approver);
        }
    }
    /// Reads a record written by [`EscrowRecord::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let terms = EscrowTerms::decode(reader)?;
        let count = reader.u8("escrow.approval_count")? as usize;
        if count > ESCROW_APPROVERS_MAX {
            return Err(DecodeError::TooLong {
                field: "escrow.approvals",
                length: count,
                limit: ESCROW_APPROVERS_MAX,
            });
        }
        let mut approvals = Vec::with_capacity(count);
        for _ in 0..count {
            approvals.push(reader.u64("escrow.approval")?);
        }
        Ok(Self { terms, approvals })
    }
}

fn read(
    overlay: &Overlay<'_>,
    owner: ParticipantId,
    id: TransferId,
) -> Result<Option<EscrowRecord>, ApplyError> {
    overlay.typed(&escrow_key(owner, id), EscrowRecord::decode)
}

fn write(overlay: &mut Overlay<'_>, owner: ParticipantId, id: TransferId, record: &EscrowRecord) {
    overlay.put(
        escrow_key(owner, id),
        Some(to_bytes(|writer| record.encode(writer))),
    );
}

/// Whether (owner, id) is an escrow: its pending transfer is not posted or voided by hand.
pub(crate) fn is_escrow(
    overlay: &Overlay<'_>,
    owner: ParticipantId,
    id: TransferId,
) -> Result<bool, ApplyError> {
    Ok(overlay.get(&escrow_key(owner, id))?.is_some())
}

/// The fields of a create-escrow operation.
pub(crate) struct EscrowRequest<'a> {
    pub id: TransferId,
    pub debit_account: AccountId,
    pub credit_account: AccountId,
    pub asset: AssetId,
    pub amount: u128,
    pub timeout_ms: u64,
    pub terms: &'a EscrowTerms,
    pub body_hash: Hash,
}

/// Locks the amount as a pending reservation and records the terms.
pub(crate) fn create(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    request: &EscrowRequest<'_>,
) -> Result<Outcome, ApplyError> {
    let terms = request.terms;
    let has_condition =
        terms.hashlock.is_some() || terms.release_after_ms > 0 || !terms.approvers.is_empty();
    if !has_condition {
        return Ok(Outcome::Rejected(ResultCode::EscrowNeedsCondition));
    }
    let approvals_possible = usize::from(terms.approvals_required) <= terms.approvers.len()
        && (terms.approvers.is_empty() == (terms.approvals_required == 0));
    let expires_at_ms = context
        .block
        .time_ms
        .saturating_add(request.timeout_ms.min(PENDING_TIMEOUT_MS_MAX));
    // A release time must lie ahead: one already past would be no condition at all.
    let time_ahead = terms.release_after_ms == 0 || terms.release_after_ms > context.block.time_ms;
    if !approvals_possible || !time_ahead || terms.release_after_ms >= expires_at_ms {
        return Ok(Outcome::Rejected(ResultCode::InvalidEscrowTerms));
    }
    for approver in &terms.approvers {
        if overlay.participant(*approver)?.is_none() {
            return Ok(Outcome::Rejected(ResultCode::UnknownParticipant));
        }
    }
    let pending = TransferRequest {
        id: request.id,
        debit_account: request.debit_account,
        credit_account: request.credit_account,
        asset: request.asset,
        amount: request.amount,
        kind: TransferKind::Pending {
            timeout_ms: request.timeout_ms,
        },
        body_hash: request.body_hash,
        checked: false,
        issuance: false,
    };
    let outcome = transfer(overlay, context, &pending)?;
    if matches!(outcome, Outcome::Applied) {
        let record = EscrowRecord {
            terms: terms.clone(),
            approvals: Vec::new(),
        };
        write(overlay, context.signer.id, request.id, &record);
    }
    Ok(outcome)
}

/// The state of an escrow's money, as a rejection if it can no longer be approved or released.
fn still_locked(
    overlay: &Overlay<'_>,
    context: &OperationContext<'_>,
    owner: ParticipantId,
    id: TransferId,
) -> Result<Option<ResultCode>, ApplyError> {
    let Some(pending) = overlay.transfer(owner, id)? else {
        return Err(ApplyError::Invariant(format!(
            "escrow {owner}/{id} has no transfer record"
        )));
    };
    Ok(match pending.state {
        TransferState::Pending if pending.expires_at_ms <= context.block.time_ms => {
            Some(ResultCode::PendingExpired)
        }
        TransferState::Pending => None,
        TransferState::PendingPosted => Some(ResultCode::PendingAlreadyPosted),
        TransferState::PendingExpired => Some(ResultCode::PendingExpired),
        _ => Some(ResultCode::NotPending),
    })
}

/// Records the signer's approval; approving twice changes nothing.
pub(crate) fn approve(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    owner: ParticipantId,
    id: TransferId,
) -> Result<Outcome, ApplyError> {
    let Some(mut record) = read(overlay, owner, id)? else {
        return Ok(Outcome::Rejected(ResultCode::NotEscrow));
    };
    if !record.terms.approvers.contains(&context.signer.id) {
        return Ok(Outcome::Rejected(ResultCode::NotAnApprover));
    }
    if let Some(code) = still_locked(overlay, context, owner, id)? {
        return Ok(Outcome::Rejected(code));
    }
    match record.approvals.binary_search(&context.signer.id) {
        Ok(_) => Ok(Outcome::Existing(ResultCode::Ok)),
        Err(position) => {
            record.approvals.insert(position, context.signer.id);
            write(overlay, owner, id, &record);
            Ok(Outcome::Applied)
        }
    }
}

/// The fields of a release-escrow operation.
pub(crate) struct ReleaseRequest {
    pub id: TransferId,
    pub owner: ParticipantId,
    pub escrow_id: TransferId,
    pub preimage: Option<[u8; 32]>,
    pub body_hash: Hash,
}

/// Moves the whole amount to the payee if every condition holds.
pub(crate) fn release(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    request: &ReleaseRequest,
) -> Result<Outcome, ApplyError> {
    let reject = |code| Ok(Outcome::Rejected(code));
    let Some(record) = read(overlay, request.owner, request.escrow_id)? else {
        return reject(ResultCode::NotEscrow);
    };
    let Some(pending) = overlay.transfer(request.owner, request.escrow_id)? else {
        return Err(ApplyError::Invariant(
            "an escrow without its transfer".into(),
        ));
    };
    let payee = match overlay.account(pending.credit_account)? {
        Some(account) => account.owner,
        None => {
            return Err(ApplyError::Invariant(
                "an escrow's payee account is gone".into(),
            ))
        }
    };
    let signer = context.signer.id;
    if signer != request.owner && signer != payee && !record.terms.approvers.contains(&signer) {
        return reject(ResultCode::NotAuthorized);
    }
    if let Some(code) = still_locked(overlay, context, request.owner, request.escrow_id)? {
        return reject(code);
    }
    let terms = &record.terms;
    if context.block.time_ms < terms.release_after_ms {
        return reject(ResultCode::EscrowTooEarly);
    }
    if record.approvals.len() < usize::from(terms.approvals_required) {
        return reject(ResultCode::EscrowApprovalsMissing);
    }
    if let Some(hashlock) = &terms.hashlock {
        let opens = request
            .preimage
            .is_some_and(|secret| blake3::hash(&secret).as_bytes() == hashlock);
        if !opens {
            return reject(ResultCode::EscrowWrongPreimage);
        }
    }
    settle_pending(
        overlay,
        context,
        request.id,
        (request.owner, request.escrow_id),
        Some(pending.amount),
        request.body_hash,
    )
}
