//! The bilateral credit limit: the most a creditor accepts to be owed by one debtor in an asset
//! across one netting cycle.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::limits_rules;
use crate::model::{AssetId, ParticipantId};
use crate::ops::interface::{LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// Sets (or, with `None`, removes) the most the signer (the creditor) accepts to be owed
/// by `debtor` in an asset across one netting cycle: the bilateral credit limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCreditLimit {
    /// The participant granted the credit.
    pub debtor: ParticipantId,
    /// The asset.
    pub asset: AssetId,
    /// The limit in minor units; absent or null removes it (no bilateral limit).
    #[serde(default, with = "crate::decimal::option")]
    pub limit: Option<u128>,
}

impl LedgerOperation for SetCreditLimit {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u64(self.debtor);
        writer.u32(self.asset);
        match self.limit {
            None => writer.u8(0),
            Some(limit) => {
                writer.u8(1);
                writer.u128(limit);
            }
        }
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            debtor: reader.u64("set_credit_limit.debtor")?,
            asset: reader.u32("set_credit_limit.asset")?,
            limit: if reader.bool("set_credit_limit.has_limit")? {
                Some(reader.u128("set_credit_limit.limit")?)
            } else {
                None
            },
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.add(self.debtor);
        Ok(())
    }
}

impl Rule for SetCreditLimit {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        limits_rules::set_credit_limit(overlay, context, self.debtor, self.asset, self.limit)
    }
}
