//! Queuing a payment obligation of the signer (the debtor) in an open netting cycle.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::model::{AccountId, TransferId};
use crate::netting::{self, ObligationRequest};
use crate::ops::interface::{body_hash, LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// Queues a payment obligation of the signer (the debtor) in an open cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitObligation {
    /// Obligation id, unique per debtor.
    #[serde(with = "crate::decimal")]
    pub id: TransferId,
    /// The cycle.
    #[serde(with = "crate::decimal")]
    pub cycle: u128,
    /// The debtor's account.
    #[serde(with = "crate::decimal")]
    pub debit_account: AccountId,
    /// The creditor's account.
    #[serde(with = "crate::decimal")]
    pub credit_account: AccountId,
    /// Amount in minor units (at most 2^96).
    #[serde(with = "crate::decimal")]
    pub amount: u128,
}

impl LedgerOperation for SubmitObligation {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.id);
        writer.u128(self.cycle);
        writer.u128(self.debit_account);
        writer.u128(self.credit_account);
        writer.u128(self.amount);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u128("submit_obligation.id")?,
            cycle: reader.u128("submit_obligation.cycle")?,
            debit_account: reader.u128("submit_obligation.debit_account")?,
            credit_account: reader.u128("submit_obligation.credit_account")?,
            amount: reader.u128("submit_obligation.amount")?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.account(self.debit_account)?;
        parties.account(self.credit_account)
    }
}

impl Rule for SubmitObligation {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        let request = ObligationRequest {
            id: self.id,
            cycle: self.cycle,
            debit_account: self.debit_account,
            credit_account: self.credit_account,
            amount: self.amount,
            body_hash: body_hash(self),
        };
        netting::submit(overlay, context, &request)
    }
}
