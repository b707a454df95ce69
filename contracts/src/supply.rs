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

/// The asset a supply record's key names.
pub fn supply_asset(key: &[u8]) -> Option<AssetId> {
    match key {
        [prefix::SUPPLY, asset @ ..] => asset.try_into().ok().map(u32::from_be_bytes),
        _ => None,
    }
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

/// An asset's money as the state holds it: what a check of the whole state found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AssetMoney {
    /// The asset.
    pub asset: AssetId,
    /// Its supply record's outstanding amount (checked equal to what its issuance account let
    /// out, and to the posted balances of every other account).
    #[serde(with = "crate::decimal")]
    pub outstanding: u128,
}

/// Sums of one asset's accounts, in 256 bits ((high, low) halves), what its issuance account
/// let out, and its supply record's outstanding amount.
#[derive(Default)]
struct MoneySums {
    posted: ((u128, u128), (u128, u128)),
    pending: ((u128, u128), (u128, u128)),
    let_out: Option<u128>,
    outstanding: Option<u128>,
}

fn add_wide(sum: &mut (u128, u128), value: u128) {
    let (low, carry) = sum.1.overflowing_add(value);
    sum.1 = low;
    sum.0 += u128::from(carry);
}

/// Every asset's sums over the account and supply records.
fn money_sums<'a>(
    records: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<std::collections::BTreeMap<AssetId, MoneySums>, String> {
    use crate::model::{from_bytes, Account};
    let mut assets: std::collections::BTreeMap<AssetId, MoneySums> = Default::default();
    for (key, value) in records {
        match key.first() {
            Some(&prefix::ACCOUNT) => {
                let account = from_bytes(value, Account::decode)
                    .map_err(|error| format!("account record {}: {error}", hex::encode(key)))?;
                let sums = assets.entry(account.asset).or_default();
                add_wide(&mut sums.posted.0, account.debits_posted);
                add_wide(&mut sums.posted.1, account.credits_posted);
                add_wide(&mut sums.pending.0, account.debits_pending);
                add_wide(&mut sums.pending.1, account.credits_pending);
                if account.has(account_flags::ISSUANCE) {
                    let let_out = account.debits_posted.checked_sub(account.credits_posted);
                    sums.let_out = Some(let_out.ok_or_else(|| {
                        format!(
                            "issuance account {} took in more than it let out",
                            account.id
                        )
                    })?);
                }
            }
            Some(&prefix::SUPPLY) => {
                let asset = supply_asset(key)
                    .ok_or_else(|| format!("supply key {} is malformed", hex::encode(key)))?;
                let record = crate::model::from_bytes(value, SupplyRecord::decode)
                    .map_err(|error| format!("supply record of asset {asset}: {error}"))?;
                assets.entry(asset).or_default().outstanding = Some(record.outstanding);
            }
            _ => {}
        }
    }
    Ok(assets)
}

/// Checks, over every state record in key order, the money invariants of each asset: posted
/// debits equal posted credits and pending debits equal pending credits across its accounts,
/// and its supply record's outstanding amount equals its issuance account's posted debits minus
/// posted credits (and so the posted balances of all its other accounts). Sums are kept in 256
/// bits, so no ledger can overflow the check.
pub fn check_money<'a>(
    records: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Vec<AssetMoney>, String> {
    let mut report = Vec::new();
    for (asset, sums) in money_sums(records)? {
        if sums.posted.0 != sums.posted.1 {
            return Err(format!(
                "asset {asset}: posted debits differ from posted credits"
            ));
        }
        if sums.pending.0 != sums.pending.1 {
            return Err(format!(
                "asset {asset}: pending debits differ from pending credits"
            ));
        }
        match (sums.outstanding, sums.let_out) {
            (Some(outstanding), Some(let_out)) if outstanding == let_out => {
                report.push(AssetMoney { asset, outstanding });
            }
            (Some(outstanding), Some(let_out)) => {
                return Err(format!(
                    "asset {asset}: the supply record says {outstanding} outstanding, the issuance account let out {let_out}"
                ))
            }
            _ => return Err(format!("asset {asset} lacks its supply record or issuance account")),
        }
    }
    Ok(report)
}
