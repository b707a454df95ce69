//! The records behind money only by the rules, and the changes governance makes to them:
//! each asset's supply (cap and outstanding), the cap on the credit line a bank may grant a
//! partner, and an account's credit line. A leaf below the posting rules, so governance can
//! use it without reaching the money primitives.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, Outcome};
use crate::model::{account_flags, to_bytes, AccountId, AssetId, ParticipantId};
use crate::overlay::Overlay;
use crate::result::ResultCode;
use crate::state::prefix;

/// An asset's supply: the cap governance set and what is outstanding (minted minus burned,
/// the genesis funding included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupplyRecord {
    /// Most that may be outstanding; a mint over it is refused.
    pub cap: u128,
    /// Money in circulation: the issuance account's posted debits minus its posted credits.
    pub outstanding: u128,
}

impl SupplyRecord {
    /// Canonical encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u128(self.cap);
        writer.u128(self.outstanding);
    }
    /// Reads a record written by [`SupplyRecord::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            cap: reader.u128("supply.cap")?,
            outstanding: reader.u128("supply.outstanding")?,
        })
    }
}

/// Key of an asset's supply record.
pub fn supply_key(asset: AssetId) -> Vec<u8> {
    let mut key = Vec::with_capacity(5);
    key.push(prefix::SUPPLY);
    key.extend_from_slice(&asset.to_be_bytes());
    key
}

/// Key of the cap on the credit line a bank may grant one of its partners' accounts in an
/// asset.
pub fn line_cap_key(participant: ParticipantId, asset: AssetId) -> Vec<u8> {
    let mut key = Vec::with_capacity(13);
    key.push(prefix::CREDIT_LINE_CAP);
    key.extend_from_slice(&participant.to_be_bytes());
    key.extend_from_slice(&asset.to_be_bytes());
    key
}

pub(crate) fn supply(overlay: &Overlay<'_>, asset: AssetId) -> Result<SupplyRecord, ApplyError> {
    overlay
        .typed(&supply_key(asset), SupplyRecord::decode)?
        .ok_or_else(|| ApplyError::Corrupt {
            key: hex::encode(supply_key(asset)),
            source: DecodeError::InvalidValue {
                field: "supply",
                value: asset.into(),
            },
        })
}

pub(crate) fn put_supply(overlay: &mut Overlay<'_>, asset: AssetId, record: SupplyRecord) {
    overlay.put(
        supply_key(asset),
        Some(to_bytes(|writer| record.encode(writer))),
    );
}

/// Sets an account's credit line (governance, or a bank within its cap). Lowering it below
/// what the account uses blocks new debits only; nothing posted is undone.
pub(crate) fn grant_line(
    overlay: &mut Overlay<'_>,
    account: AccountId,
    line: u128,
) -> Result<Outcome, ApplyError> {
    let Some(mut found) = overlay.account(account)? else {
        return Ok(Outcome::Rejected(ResultCode::UnknownAccount));
    };
    if found.has(account_flags::ISSUANCE) {
        return Ok(Outcome::Rejected(ResultCode::IssuanceAccount));
    }
    found.credit_line = line;
    overlay.put_account(&found);
    Ok(Outcome::Applied)
}

/// Why governance may not grant `account` a line: it does not exist, or it is an issuance
/// account.
pub(crate) fn check_line(
    overlay: &Overlay<'_>,
    account: AccountId,
) -> Result<Option<ResultCode>, ApplyError> {
    Ok(match overlay.account(account)? {
        None => Some(ResultCode::UnknownAccount),
        Some(found) if found.has(account_flags::ISSUANCE) => Some(ResultCode::IssuanceAccount),
        Some(_) => None,
    })
}

/// Governance sets an asset's supply cap; below what is outstanding it stops further mints.
pub(crate) fn set_supply_cap(
    overlay: &mut Overlay<'_>,
    asset: AssetId,
    cap: u128,
) -> Result<(), ApplyError> {
    let mut record = supply(overlay, asset)?;
    record.cap = cap;
    put_supply(overlay, asset, record);
    Ok(())
}

/// Governance sets (0 removes) the most a bank may grant one partner's account in an asset.
pub(crate) fn set_line_cap(
    overlay: &mut Overlay<'_>,
    participant: ParticipantId,
    asset: AssetId,
    cap: u128,
) {
    let value = (cap > 0).then(|| to_bytes(|writer| writer.u128(cap)));
    overlay.put(line_cap_key(participant, asset), value);
}
