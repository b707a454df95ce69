//! Maker-checker policy: the amount above which a transfer from an account waits for a second
//! key of its owner (the contract is in `crate::approval`).

use crate::approval;
use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::model::AccountId;
use crate::ops::interface::{LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// Sets the amount above which a transfer from the account waits for a second key of its
/// owner (maker-checker); 0 removes it. Signed by the owner or its bank member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetApprovalPolicy {
    /// The account.
    #[serde(with = "crate::decimal")]
    pub account: AccountId,
    /// Transfers above this amount wait for a second key ("0" removes the rule).
    #[serde(with = "crate::decimal")]
    pub threshold: u128,
}

impl LedgerOperation for SetApprovalPolicy {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.account);
        writer.u128(self.threshold);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            account: reader.u128("set_approval_policy.account")?,
            threshold: reader.u128("set_approval_policy.threshold")?,
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

impl Rule for SetApprovalPolicy {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        approval::set_policy(overlay, context, self.account, self.threshold)
    }
}
