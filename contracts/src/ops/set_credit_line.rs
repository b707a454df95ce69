//! A bank member grants an account of a partner it sponsors a credit line: how far the
//! account's debits may exceed its credits, within the cap governance set for that partner.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::issuance::set_line_by_bank;
use crate::model::AccountId;
use crate::ops::interface::{LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// Sets an account's credit line ("0" removes it); the owner's bank member only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCreditLine {
    /// The partner's account.
    #[serde(with = "crate::decimal")]
    pub account: AccountId,
    /// How far its debits may exceed its posted credits.
    #[serde(with = "crate::decimal")]
    pub line: u128,
}

impl LedgerOperation for SetCreditLine {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.account);
        writer.u128(self.line);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            account: reader.u128("set_credit_line.account")?,
            line: reader.u128("set_credit_line.line")?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.account(self.account)
    }
}

impl Rule for SetCreditLine {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        set_line_by_bank(overlay, context, self.account, self.line)
    }
}
