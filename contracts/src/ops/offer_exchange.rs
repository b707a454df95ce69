//! Offering an exchange of two assets (DvP, PvP): the offerer's leg is reserved at once and the
//! counterparty's leg is named, to move when it accepts (the contract is in `crate::exchange`).

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::exchange::{self, OfferRequest};
use crate::model::{AccountId, AssetId, TransferId};
use crate::ops::interface::{body_hash, LedgerOperation, Needs, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use crate::posting::RejectedTransfer;
use serde::{Deserialize, Serialize};

/// Offers an exchange of two assets (DvP, PvP): the signer's leg is reserved at once; the
/// counterparty's leg is named here and moves when it accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferExchange {
    /// Client-chosen id, unique per signer (the offerer).
    #[serde(with = "crate::decimal")]
    pub id: TransferId,
    /// The offerer's account it delivers from.
    #[serde(with = "crate::decimal")]
    pub debit_account: AccountId,
    /// The counterparty's account it delivers into.
    #[serde(with = "crate::decimal")]
    pub credit_account: AccountId,
    /// The asset the offerer delivers.
    pub asset: AssetId,
    /// The amount the offerer delivers.
    #[serde(with = "crate::decimal")]
    pub amount: u128,
    /// The counterparty's account it pays from.
    #[serde(with = "crate::decimal")]
    pub counter_debit_account: AccountId,
    /// The offerer's account it is paid into.
    #[serde(with = "crate::decimal")]
    pub counter_credit_account: AccountId,
    /// The asset the counterparty pays.
    pub counter_asset: AssetId,
    /// The amount the counterparty pays (the agreed rate is counter_amount / amount).
    #[serde(with = "crate::decimal")]
    pub counter_amount: u128,
    /// Milliseconds of block time before an unaccepted offer is refunded.
    pub timeout_ms: u64,
}

impl LedgerOperation for OfferExchange {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.id);
        writer.u128(self.debit_account);
        writer.u128(self.credit_account);
        writer.u32(self.asset);
        writer.u128(self.amount);
        writer.u128(self.counter_debit_account);
        writer.u128(self.counter_credit_account);
        writer.u32(self.counter_asset);
        writer.u128(self.counter_amount);
        writer.u64(self.timeout_ms);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u128("offer_exchange.id")?,
            debit_account: reader.u128("offer_exchange.debit_account")?,
            credit_account: reader.u128("offer_exchange.credit_account")?,
            asset: reader.u32("offer_exchange.asset")?,
            amount: reader.u128("offer_exchange.amount")?,
            counter_debit_account: reader.u128("offer_exchange.counter_debit_account")?,
            counter_credit_account: reader.u128("offer_exchange.counter_credit_account")?,
            counter_asset: reader.u32("offer_exchange.counter_asset")?,
            counter_amount: reader.u128("offer_exchange.counter_amount")?,
            timeout_ms: reader.u64("offer_exchange.timeout_ms")?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }

    fn transfer_id(&self) -> Option<TransferId> {
        Some(self.id)
    }

    fn needs(&self) -> Needs {
        Needs::OwnDebit(self.debit_account, self.asset)
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        for account in [
            self.debit_account,
            self.credit_account,
            self.counter_debit_account,
            self.counter_credit_account,
        ] {
            parties.account(account)?;
        }
        Ok(())
    }
}

impl Rule for OfferExchange {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        let request = OfferRequest {
            id: self.id,
            debit_account: self.debit_account,
            credit_account: self.credit_account,
            asset: self.asset,
            amount: self.amount,
            counter_debit_account: self.counter_debit_account,
            counter_credit_account: self.counter_credit_account,
            counter_asset: self.counter_asset,
            counter_amount: self.counter_amount,
            timeout_ms: self.timeout_ms,
            body_hash: body_hash(self),
        };
        exchange::offer(overlay, context, &request)
    }

    fn rejected(&self) -> RejectedTransfer {
        RejectedTransfer {
            debit_account: self.debit_account,
            credit_account: self.credit_account,
            asset: self.asset,
            amount: self.amount,
            pending_id: 0,
        }
    }
}
