//! Maker-checker: an account may require that a transfer above a threshold is approved by a
//! second key of the same participant before it settles. The maker's transfer is reserved as
//! a pending transfer (its own timeout, or a day when it asked to post at once) and waits; a
//! checker signing with another key registered to the participant posts it; otherwise it
//! expires and the reservation returns. Participants get extra keys from the genesis or from
//! their bank member (`add_key`).

use crate::context::{ApplyError, OperationContext, Outcome};
use crate::limits::PARTICIPANT_KEYS_MAX;
use crate::model::{
    to_bytes, AccountId, Participant, ParticipantId, PublicKey, TransferId, TransferState,
};
use crate::overlay::Overlay;
use crate::pending::post_reserved;
use crate::result::ResultCode;
use crate::state::{participant_key, prefix, signer_key};

pub use crate::limits::APPROVAL_TIMEOUT_MS;

/// Key of an account's approval threshold.
pub fn policy_key(account: AccountId) -> Vec<u8> {
    let mut key = vec![prefix::APPROVAL_POLICY];
    key.extend_from_slice(&account.to_be_bytes());
    key
}

/// Key of a transfer awaiting a checker: the maker's key.
pub fn awaiting_key(owner: ParticipantId, id: TransferId) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(prefix::AWAITING_APPROVAL);
    key.extend_from_slice(&owner.to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The account's threshold above which a second key must approve, if it has one.
pub(crate) fn threshold(
    overlay: &Overlay<'_>,
    account: AccountId,
) -> Result<Option<u128>, ApplyError> {
    overlay.typed(&policy_key(account), |reader| {
        reader.u128("approval.threshold")
    })
}

/// Marks a just-reserved transfer as waiting for a checker.
pub(crate) fn await_checker(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    id: TransferId,
) {
    overlay.put(
        awaiting_key(context.signer.id, id),
        Some(context.signer_key.to_vec()),
    );
}

/// Whether the signer's pending transfer waits for a checker (then the maker cannot post it).
pub(crate) fn is_awaiting(
    overlay: &Overlay<'_>,
    owner: ParticipantId,
    id: TransferId,
) -> Result<bool, ApplyError> {
    let waiting = overlay
        .get(&awaiting_key(owner, id))?
        .is_some_and(|maker| !maker.is_empty());
    let pending = overlay
        .transfer(owner, id)?
        .is_some_and(|record| record.state == TransferState::Pending);
    Ok(waiting && pending)
}

/// Whether a transfer was settled by its checker's approval.
pub(crate) fn was_approved(
    overlay: &Overlay<'_>,
    owner: ParticipantId,
    id: TransferId,
) -> Result<bool, ApplyError> {
    Ok(overlay
        .get(&awaiting_key(owner, id))?
        .is_some_and(|maker| maker.is_empty()))
}

/// Whether a debit of `amount` from the account is above its maker-checker threshold.
pub(crate) fn above_threshold(
    overlay: &Overlay<'_>,
    account: AccountId,
    amount: u128,
) -> Result<bool, ApplyError> {
    Ok(threshold(overlay, account)?.is_some_and(|threshold| amount > threshold))
}

/// The account's owner or its bank member sets (or with 0 removes) the threshold.
pub(crate) fn set_policy(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    account_id: AccountId,
    amount: u128,
) -> Result<Outcome, ApplyError> {
    let Some(account) = overlay.account(account_id)? else {
        return Ok(Outcome::Rejected(ResultCode::UnknownAccount));
    };
    let owner = overlay.participant(account.owner)?;
    let bank = owner.is_some_and(|owner| owner.bank == Some(context.signer.id));
    if !bank && account.owner != context.signer.id {
        return Ok(Outcome::Rejected(ResultCode::NotAuthorized));
    }
    // The owner may only make the rule stricter (set one, or lower it): a single key that
    // could raise or remove it would defeat the second key. Loosening is its bank's.
    let stricter =
        amount > 0 && threshold(overlay, account_id)?.is_none_or(|current| amount <= current);
    if !bank && !stricter {
        return Ok(Outcome::Rejected(ResultCode::NotSponsoringBank));
    }
    let value = (amount > 0).then(|| to_bytes(|writer| writer.u128(amount)));
    overlay.put(policy_key(account_id), value);
    Ok(Outcome::Applied)
}

/// A participant's bank member registers another signing key for it.
pub(crate) fn add_key(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    participant: ParticipantId,
    key: PublicKey,
) -> Result<Outcome, ApplyError> {
    let Some(mut found) = overlay.participant(participant)? else {
        return Ok(Outcome::Rejected(ResultCode::UnknownParticipant));
    };
    if found.bank != Some(context.signer.id) {
        return Ok(Outcome::Rejected(ResultCode::NotSponsoringBank));
    }
    if overlay
        .get(&crate::governance::offboarded_key(participant))?
        .is_some()
    {
        return Ok(Outcome::Rejected(ResultCode::ParticipantOffboarded));
    }
    if ed25519_zebra::VerificationKey::try_from(key).is_err() {
        return Ok(Outcome::Rejected(ResultCode::InvalidKey));
    }
    match overlay.participant_by_key(&key)? {
        Some(owner) if owner == participant => return Ok(Outcome::Existing(ResultCode::Ok)),
        Some(_) => return Ok(Outcome::Rejected(ResultCode::KeyInUse)),
        None => {}
    }
    if overlay.get(&crate::state::key_owner_key(&key))?.is_some() {
        // A revoked or rotated-out key is never registered again.
        return Ok(Outcome::Rejected(ResultCode::KeyInUse));
    }
    if found.keys.len() >= PARTICIPANT_KEYS_MAX {
        return Ok(Outcome::Rejected(ResultCode::TooManyKeys));
    }
    found.keys.push(key);
    put_participant(overlay, &found);
    overlay.put(signer_key(&key), Some(participant.to_le_bytes().to_vec()));
    overlay.put(
        crate::state::key_owner_key(&key),
        Some(participant.to_le_bytes().to_vec()),
    );
    Ok(Outcome::Applied)
}

fn put_participant(overlay: &mut Overlay<'_>, participant: &Participant) {
    overlay.put(
        participant_key(participant.id),
        Some(to_bytes(|writer| participant.encode(writer))),
    );
}

/// A checker (another key of the same participant) approves a waiting transfer: it posts.
pub(crate) fn approve(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    id: TransferId,
) -> Result<Outcome, ApplyError> {
    let reject = |code| Ok(Outcome::Rejected(code));
    let owner = context.signer.id;
    let key = awaiting_key(owner, id);
    let Some(maker) = overlay.get(&key)?.filter(|maker| !maker.is_empty()) else {
        return reject(ResultCode::NotAwaitingApproval);
    };
    let Some(pending) = overlay.transfer(owner, id)? else {
        return Err(ApplyError::Invariant(
            "a transfer awaiting approval has no record".into(),
        ));
    };
    match pending.state {
        TransferState::Pending if pending.expires_at_ms <= context.block.time_ms => {
            return reject(ResultCode::PendingExpired)
        }
        TransferState::Pending => {}
        TransferState::PendingVoided => return reject(ResultCode::PendingAlreadyVoided),
        TransferState::PendingExpired => return reject(ResultCode::PendingExpired),
        _ => return reject(ResultCode::NotAwaitingApproval),
    }
    if maker.as_slice() == context.signer_key.as_slice() {
        return reject(ResultCode::SameKey);
    }
    if let Some(code) = post_reserved(overlay, &pending)? {
        return reject(code);
    }
    // Kept, emptied: marks the transfer as settled by its checker (a reversal may follow it).
    overlay.put(key, Some(Vec::new()));
    Ok(Outcome::Applied)
}
