//! Money only by the rules: the issuer's mint and burn within the asset's governed supply cap,
//! the outstanding-supply record, and the credit lines that let an account's debits exceed
//! its credits (granted by its owner's bank within a governed per-partner cap, or by
//! governance itself).
//!
//! Invariant: per asset, the posted balances (credits minus debits) of every account but the
//! issuance account sum to the supply record's `outstanding`, which equals the issuance
//! account's posted debits minus its posted credits.

use crate::context::{ApplyError, OperationContext, Outcome};
use crate::model::{AccountId, AssetId, Hash, TransferId, TransferKind};
use crate::overlay::Overlay;
use crate::posting::{transfer, TransferRequest};
use crate::result::ResultCode;
use crate::supply::{grant_line, put_supply, supply};
pub use crate::supply::{line_cap_key, supply_key, SupplyRecord};

/// Whether the signer mints (money enters: the issuance account is debited) or burns (money
/// leaves: the issuance account is credited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Mint,
    Burn,
}

/// A mint or burn as the operations carry it.
pub(crate) struct Movement {
    pub(crate) direction: Direction,
    pub(crate) id: TransferId,
    pub(crate) account: AccountId,
    pub(crate) asset: AssetId,
    pub(crate) amount: u128,
    pub(crate) body_hash: Hash,
}

/// Mints into, or burns from, `account`: signed by the asset's issuer, posted at once, within
/// the supply cap; the supply record follows.
pub(crate) fn issue(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    movement: &Movement,
) -> Result<Outcome, ApplyError> {
    let reject = |code| Ok(Outcome::Rejected(code));
    let Some(asset) = overlay.asset(movement.asset)? else {
        return reject(ResultCode::UnknownAsset);
    };
    if asset.issuer != context.signer.id {
        return reject(ResultCode::IssuerOnly);
    }
    let mut record = supply(overlay, asset.id)?;
    let (debit_account, credit_account, outstanding) = match movement.direction {
        Direction::Mint => (
            asset.issuance_account,
            movement.account,
            record.outstanding.checked_add(movement.amount),
        ),
        Direction::Burn => (
            movement.account,
            asset.issuance_account,
            record.outstanding.checked_sub(movement.amount),
        ),
    };
    let Some(outstanding) = outstanding else {
        return reject(ResultCode::Overflow);
    };
    if movement.direction == Direction::Mint && outstanding > record.cap {
        return reject(ResultCode::ExceedsSupplyCap);
    }
    let request = TransferRequest {
        id: movement.id,
        debit_account,
        credit_account,
        asset: asset.id,
        amount: movement.amount,
        kind: TransferKind::Posted,
        body_hash: movement.body_hash,
        checked: false,
        issuance: true,
    };
    let outcome = transfer(overlay, context, &request)?;
    if matches!(outcome, Outcome::Applied) {
        record.outstanding = outstanding;
        put_supply(overlay, asset.id, record);
    }
    Ok(outcome)
}

/// A bank member sets the credit line of an account of a partner it sponsors, within the cap
/// governance set for that partner in that asset (0 removes the line).
pub(crate) fn set_line_by_bank(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    account: AccountId,
    line: u128,
) -> Result<Outcome, ApplyError> {
    let reject = |code| Ok(Outcome::Rejected(code));
    let Some(found) = overlay.account(account)? else {
        return reject(ResultCode::UnknownAccount);
    };
    let owner = overlay.participant(found.owner)?;
    if owner.and_then(|owner| owner.bank) != Some(context.signer.id) {
        // A bank's own accounts, and any account of a partner it does not sponsor, get their
        // lines through governance.
        return reject(ResultCode::NotSponsoringBank);
    }
    let cap = overlay
        .typed(&line_cap_key(found.owner, found.asset), |reader| {
            reader.u128("line_cap.cap")
        })?
        .unwrap_or(0);
    if line > cap {
        return reject(ResultCode::ExceedsCreditLineCap);
    }
    grant_line(overlay, account, line)
}
