//! Limits on payments: a per-transfer maximum per asset (a network parameter, set by an
//! approved governance proposal) and a daily outflow cap per
//! participant and asset by UTC day of block time (set by the participant's bank member). Both
//! apply to every debit a participant starts: transfers, pending reservations (counted when
//! reserved), escrows and exchange legs.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{may_pay, ApplyError, OperationContext, Outcome};
use crate::model::{to_bytes, AssetId, ParticipantId};
use crate::overlay::Overlay;
use crate::result::ResultCode;
use crate::state::prefix;

/// Milliseconds in a UTC day of block time.
const DAY_MS: u64 = 86_400_000;

/// Key of an asset's per-transfer maximum.
pub fn transfer_max_key(asset: AssetId) -> Vec<u8> {
    let mut key = vec![prefix::TRANSFER_MAX];
    key.extend_from_slice(&asset.to_be_bytes());
    key
}

/// Key of a participant's daily outflow cap in an asset.
pub fn outflow_cap_key(participant: ParticipantId, asset: AssetId) -> Vec<u8> {
    let mut key = Vec::with_capacity(13);
    key.push(prefix::OUTFLOW_CAP);
    key.extend_from_slice(&participant.to_be_bytes());
    key.extend_from_slice(&asset.to_be_bytes());
    key
}

/// Key of the bilateral credit limit a creditor grants a debtor in an asset.
pub fn credit_limit_key(creditor: ParticipantId, debtor: ParticipantId, asset: AssetId) -> Vec<u8> {
    let mut key = Vec::with_capacity(21);
    key.push(prefix::CREDIT_LIMIT);
    key.extend_from_slice(&creditor.to_be_bytes());
    key.extend_from_slice(&debtor.to_be_bytes());
    key.extend_from_slice(&asset.to_be_bytes());
    key
}

/// The bilateral credit limit a creditor grants a debtor in an asset, if it set one.
pub(crate) fn credit_limit(
    overlay: &Overlay<'_>,
    creditor: ParticipantId,
    debtor: ParticipantId,
    asset: AssetId,
) -> Result<Option<u128>, ApplyError> {
    overlay.typed(&credit_limit_key(creditor, debtor, asset), |reader| {
        reader.u128("credit_limit.limit")
    })
}

/// The signer (the creditor) sets or removes the bilateral credit limit it grants `debtor`.
pub(crate) fn set_credit_limit(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    debtor: ParticipantId,
    asset: AssetId,
    limit: Option<u128>,
) -> Result<Outcome, ApplyError> {
    if !may_pay(context.signer) || debtor == context.signer.id {
        return Ok(Outcome::Rejected(ResultCode::InvalidCreditLimit));
    }
    match overlay.participant(debtor)? {
        Some(found) if may_pay(&found) => {}
        Some(_) => return Ok(Outcome::Rejected(ResultCode::InvalidCreditLimit)),
        None => return Ok(Outcome::Rejected(ResultCode::UnknownParticipant)),
    }
    if overlay.asset(asset)?.is_none() {
        return Ok(Outcome::Rejected(ResultCode::UnknownAsset));
    }
    let key = credit_limit_key(context.signer.id, debtor, asset);
    overlay.put(
        key,
        limit.map(|limit| to_bytes(|writer| writer.u128(limit))),
    );
    Ok(Outcome::Applied)
}

/// A daily outflow cap and what was spent on the current day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutflowCap {
    /// Most the participant may send in the asset per UTC day.
    pub cap: u128,
    /// The day (block time / 86,400,000) `spent` counts.
    pub day: u64,
    /// Sent so far that day.
    pub spent: u128,
}

impl OutflowCap {
    /// Canonical record encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u128(self.cap);
        writer.u64(self.day);
        writer.u128(self.spent);
    }
    /// Reads a record written by [`OutflowCap::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            cap: reader.u128("outflow_cap.cap")?,
            day: reader.u64("outflow_cap.day")?,
            spent: reader.u128("outflow_cap.spent")?,
        })
    }
}

/// The direct operation is refused: per-transfer maximums are network parameters, set only by
/// an approved governance proposal that changes the maximum.
pub(crate) fn set_transfer_max(
    overlay: &mut Overlay<'_>,
    _context: &OperationContext<'_>,
    asset: AssetId,
) -> Result<Outcome, ApplyError> {
    if overlay.asset(asset)?.is_none() {
        return Ok(Outcome::Rejected(ResultCode::UnknownAsset));
    }
    Ok(Outcome::Rejected(ResultCode::GovernanceRequired))
}

/// Writes (or with 0 removes) an asset's per-transfer maximum, as an approved proposal does.
pub(crate) fn put_transfer_max(overlay: &mut Overlay<'_>, asset: AssetId, amount_max: u128) {
    let value = (amount_max > 0).then(|| to_bytes(|writer| writer.u128(amount_max)));
    overlay.put(transfer_max_key(asset), value);
}

/// A participant's bank member sets (or with 0 removes) its daily outflow cap in an asset.
pub(crate) fn set_outflow_cap(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    participant: ParticipantId,
    asset: AssetId,
    cap: u128,
) -> Result<Outcome, ApplyError> {
    let Some(found) = overlay.participant(participant)? else {
        return Ok(Outcome::Rejected(ResultCode::UnknownParticipant));
    };
    if found.bank != Some(context.signer.id) {
        return Ok(Outcome::Rejected(ResultCode::NotSponsoringBank));
    }
    if overlay.asset(asset)?.is_none() {
        return Ok(Outcome::Rejected(ResultCode::UnknownAsset));
    }
    let key = outflow_cap_key(participant, asset);
    if cap == 0 {
        overlay.put(key, None);
        return Ok(Outcome::Applied);
    }
    let day = context.block.time_ms / DAY_MS;
    let spent = overlay
        .typed(&key, OutflowCap::decode)?
        .filter(|current| current.day == day)
        .map_or(0, |current| current.spent);
    let record = OutflowCap { cap, day, spent };
    overlay.put(key, Some(to_bytes(|writer| record.encode(writer))));
    Ok(Outcome::Applied)
}

/// Whether `amount` exceeds the asset's per-transfer maximum.
pub(crate) fn above_transfer_max(
    overlay: &Overlay<'_>,
    asset: AssetId,
    amount: u128,
) -> Result<bool, ApplyError> {
    let amount_max = overlay.typed(&transfer_max_key(asset), |reader| {
        reader.u128("transfer_max")
    })?;
    Ok(amount_max.is_some_and(|amount_max| amount > amount_max))
}

/// Checks a debit of `amount` in `asset` started by `payer` against both limits and counts it
/// toward the payer's day; the rejection if a limit refuses it (nothing is counted then).
pub(crate) fn check_and_count(
    overlay: &mut Overlay<'_>,
    time_ms: u64,
    payer: ParticipantId,
    asset: AssetId,
    amount: u128,
) -> Result<Option<ResultCode>, ApplyError> {
    if above_transfer_max(overlay, asset, amount)? {
        return Ok(Some(ResultCode::ExceedsTransferMax));
    }
    let cap_key = outflow_cap_key(payer, asset);
    let Some(mut record) = overlay.typed(&cap_key, OutflowCap::decode)? else {
        return Ok(None);
    };
    let day = time_ms / DAY_MS;
    if record.day != day {
        record.day = day;
        record.spent = 0;
    }
    match record.spent.checked_add(amount) {
        Some(spent) if spent <= record.cap => record.spent = spent,
        _ => return Ok(Some(ResultCode::ExceedsDailyCap)),
    }
    overlay.put(cap_key, Some(to_bytes(|writer| record.encode(writer))));
    Ok(None)
}
