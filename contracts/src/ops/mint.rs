//! The issuer's mint and burn: money enters the ledger from the asset's issuance account, or
//! leaves it back there, posted at once and within the supply cap governance set.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::issuance::{issue, Direction, Movement};
use crate::model::{AccountId, AssetId, TransferId};
use crate::ops::interface::{body_hash, LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use crate::posting::RejectedTransfer;
use serde::{Deserialize, Serialize};

/// The fields of a mint or a burn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuanceFields {
    /// Client-chosen id, unique per signer (as a transfer's).
    #[serde(with = "crate::decimal")]
    pub id: TransferId,
    /// The account credited by a mint, or debited by a burn (one of the issuer's own).
    #[serde(with = "crate::decimal")]
    pub account: AccountId,
    /// The asset.
    pub asset: AssetId,
    /// Amount in minor units.
    #[serde(with = "crate::decimal")]
    pub amount: u128,
}

impl IssuanceFields {
    fn encode(&self, writer: &mut Writer) {
        writer.u128(self.id);
        writer.u128(self.account);
        writer.u32(self.asset);
        writer.u128(self.amount);
    }

    fn decode(
        reader: &mut Reader<'_>,
        what: &'static [&'static str; 4],
    ) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u128(what[0])?,
            account: reader.u128(what[1])?,
            asset: reader.u32(what[2])?,
            amount: reader.u128(what[3])?,
        })
    }

    fn rejected(&self) -> RejectedTransfer {
        RejectedTransfer {
            debit_account: self.account,
            credit_account: self.account,
            asset: self.asset,
            amount: self.amount,
            pending_id: 0,
        }
    }
}

/// The issuer creates money: its issuance account is debited, `account` credited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mint(pub IssuanceFields);

/// The issuer destroys money: one of its own accounts is debited, the issuance account
/// credited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Burn(pub IssuanceFields);

macro_rules! issuance_operation {
    ($type:ident, $direction:expr, $fields:expr) => {
        impl LedgerOperation for $type {
            type View = IssuanceFields;

            fn encode_fields(&self, writer: &mut Writer) {
                self.0.encode(writer);
            }

            fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                IssuanceFields::decode(reader, &$fields).map($type)
            }

            fn to_view(&self) -> Self::View {
                self.0.clone()
            }

            fn from_view(view: &Self::View) -> Result<Self, String> {
                Ok($type(view.clone()))
            }

            fn transfer_id(&self) -> Option<TransferId> {
                Some(self.0.id)
            }

            fn parties<L: PartyLookup>(
                &self,
                parties: &mut Parties<'_, L>,
            ) -> Result<(), L::Error> {
                parties.account(self.0.account)
            }
        }

        impl Rule for $type {
            fn apply(
                &self,
                overlay: &mut Overlay<'_>,
                context: &OperationContext<'_>,
            ) -> Result<Outcome, ApplyError> {
                let movement = Movement {
                    direction: $direction,
                    id: self.0.id,
                    account: self.0.account,
                    asset: self.0.asset,
                    amount: self.0.amount,
                    body_hash: body_hash(self),
                };
                issue(overlay, context, &movement)
            }

            fn rejected(&self) -> RejectedTransfer {
                self.0.rejected()
            }
        }
    };
}

issuance_operation!(
    Mint,
    Direction::Mint,
    ["mint.id", "mint.account", "mint.asset", "mint.amount"]
);
issuance_operation!(
    Burn,
    Direction::Burn,
    ["burn.id", "burn.account", "burn.asset", "burn.amount"]
);
