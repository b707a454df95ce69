//! Delivery versus payment and payment versus payment: an atomic exchange of two assets
//! between two parties. The offerer signs an offer naming both legs; its own leg (say the
//! security token) is reserved at once as a pending transfer to the counterparty. The
//! counterparty accepts by signing; acceptance moves its leg (say the cash) and posts the
//! offerer's reserved leg in one all-or-nothing step: both legs settle or neither. The offerer may
//! withdraw the offer (void its reservation) until then, and an offer not accepted in time is
//! refunded by the pending-expiry path.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::model::TransferKind;
use crate::model::{to_bytes, AccountId, AssetId, Hash, ParticipantId, TransferId, TransferState};
use crate::overlay::Overlay;
use crate::pending::post_reserved;
use crate::posting::{transfer, TransferRequest};
use crate::result::ResultCode;
use crate::state::exchange_key;

/// The counterparty's leg of an offered exchange; the offerer's leg is the pending transfer
/// with the same owner and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRecord {
    /// The party that must accept.
    pub counterparty: ParticipantId,
    /// The counterparty's account it pays from.
    pub counter_debit_account: AccountId,
    /// The offerer's account it pays into.
    pub counter_credit_account: AccountId,
    /// The asset of the counterparty's leg.
    pub counter_asset: AssetId,
    /// The amount of the counterparty's leg.
    pub counter_amount: u128,
}

impl ExchangeRecord {
    /// Canonical record encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u64(self.counterparty);
        writer.u128(self.counter_debit_account);
        writer.u128(self.counter_credit_account);
        writer.u32(self.counter_asset);
        writer.u128(self.counter_amount);
    }
    /// Reads a record written by [`ExchangeRecord::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            counterparty: reader.u64("exchange.counterparty")?,
            counter_debit_account: reader.u128("exchange.counter_debit_account")?,
            counter_credit_account: reader.u128("exchange.counter_credit_account")?,
            counter_asset: reader.u32("exchange.counter_asset")?,
            counter_amount: reader.u128("exchange.counter_amount")?,
        })
    }
}

fn read(
    overlay: &Overlay<'_>,
    owner: ParticipantId,
    id: TransferId,
) -> Result<Option<ExchangeRecord>, ApplyError> {
    overlay.typed(&exchange_key(owner, id), ExchangeRecord::decode)
}

/// Whether (owner, id) is an exchange offer, whose reserved leg is never posted by hand.
pub(crate) fn is_exchange(
    overlay: &Overlay<'_>,
    owner: ParticipantId,
    id: TransferId,
) -> Result<bool, ApplyError> {
    Ok(overlay.get(&exchange_key(owner, id))?.is_some())
}

/// The fields of an offer.
pub(crate) struct OfferRequest {
    pub id: TransferId,
    pub debit_account: AccountId,
    pub credit_account: AccountId,
    pub asset: AssetId,
    pub amount: u128,
    pub counter_debit_account: AccountId,
    pub counter_credit_account: AccountId,
    pub counter_asset: AssetId,
    pub counter_amount: u128,
    pub timeout_ms: u64,
    pub body_hash: Hash,
}

/// Reserves the offerer's leg and records the counterparty's.
pub(crate) fn offer(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    request: &OfferRequest,
) -> Result<Outcome, ApplyError> {
    let reject = |code| Ok(Outcome::Rejected(code));
    if request.counter_amount == 0 {
        return reject(ResultCode::ZeroAmount);
    }
    let accounts = (
        overlay.account(request.credit_account)?,
        overlay.account(request.counter_debit_account)?,
        overlay.account(request.counter_credit_account)?,
    );
    let (Some(receives), Some(pays), Some(offerer_receives)) = accounts else {
        return reject(ResultCode::UnknownAccount);
    };
    // The counterparty receives the offerer's leg and pays its own from an account of its own,
    // into an account of the offerer's: two parties, four accounts.
    if receives.owner != pays.owner
        || offerer_receives.owner != context.signer.id
        || receives.owner == context.signer.id
    {
        return reject(ResultCode::CounterpartyMismatch);
    }
    if pays.asset != request.counter_asset || offerer_receives.asset != request.counter_asset {
        return reject(ResultCode::AssetMismatch);
    }
    let leg = TransferRequest {
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
    let outcome = transfer(overlay, context, &leg)?;
    if matches!(outcome, Outcome::Applied) {
        let record = ExchangeRecord {
            counterparty: receives.owner,
            counter_debit_account: request.counter_debit_account,
            counter_credit_account: request.counter_credit_account,
            counter_asset: request.counter_asset,
            counter_amount: request.counter_amount,
        };
        overlay.put(
            exchange_key(context.signer.id, request.id),
            Some(to_bytes(|writer| record.encode(writer))),
        );
    }
    Ok(outcome)
}

/// The counterparty accepts: its leg moves and the offerer's reserved leg is posted, both or
/// neither. `id` is the counterparty's transfer id for its leg.
pub(crate) fn accept(
    overlay: &mut Overlay<'_>,
    context: &OperationContext<'_>,
    id: TransferId,
    (owner, exchange_id): (ParticipantId, TransferId),
    body_hash: Hash,
) -> Result<Outcome, ApplyError> {
    let reject = |code| Ok(Outcome::Rejected(code));
    let Some(record) = read(overlay, owner, exchange_id)? else {
        return reject(ResultCode::NotExchange);
    };
    if record.counterparty != context.signer.id {
        return reject(ResultCode::NotCounterparty);
    }
    let Some(offered) = overlay.transfer(owner, exchange_id)? else {
        return Err(ApplyError::Invariant(
            "an exchange without its offered leg".into(),
        ));
    };
    match offered.state {
        TransferState::Pending if offered.expires_at_ms <= context.block.time_ms => {
            return reject(ResultCode::PendingExpired)
        }
        TransferState::Pending => {}
        TransferState::PendingPosted => return reject(ResultCode::PendingAlreadyPosted),
        TransferState::PendingVoided => return reject(ResultCode::PendingAlreadyVoided),
        TransferState::PendingExpired => return reject(ResultCode::PendingExpired),
        _ => return reject(ResultCode::NotPending),
    }
    overlay.begin_batch();
    let counter_leg = TransferRequest {
        id,
        debit_account: record.counter_debit_account,
        credit_account: record.counter_credit_account,
        asset: record.counter_asset,
        amount: record.counter_amount,
        kind: TransferKind::Posted,
        body_hash,
        checked: false,
        issuance: false,
    };
    let paid = transfer(overlay, context, &counter_leg)?;
    if !matches!(paid, Outcome::Applied) {
        overlay.end_batch(false);
        return Ok(paid);
    }
    // The offerer's leg is posted as part of the same operation; its post record is not a
    // transfer id of anyone's, so it is recorded only on the offered transfer's state.
    let delivered = post_reserved(overlay, &offered)?;
    if let Some(code) = delivered {
        overlay.end_batch(false);
        return reject(code);
    }
    overlay.end_batch(true);
    Ok(Outcome::Applied)
}
