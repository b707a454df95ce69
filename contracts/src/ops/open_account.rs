//! Opening an account: signed by its owner or the owner's bank member, in a known asset, with
//! flags that make sense together.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::genesis::{flag_names, parse_flags};
use crate::model::{account_flags as flags, Account, AccountId, AssetId, ParticipantId};
use crate::ops::interface::{LedgerOperation, Needs, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use crate::result::ResultCode;
use serde::{Deserialize, Serialize};

/// Opens an account; signed by the owner or the owner's bank member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAccount {
    /// The new account's id.
    pub account: AccountId,
    /// Its owner.
    pub owner: ParticipantId,
    /// Its asset.
    pub asset: AssetId,
    /// Its flags (the frozen flag is not allowed here).
    pub flags: u16,
}

/// JSON view of an account opening: its flags by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAccountJson {
    /// Account id.
    #[serde(with = "crate::decimal")]
    pub account: u128,
    /// Owner.
    pub owner: ParticipantId,
    /// Asset.
    pub asset: AssetId,
    /// Flag names.
    #[serde(default)]
    pub flags: Vec<String>,
}

impl LedgerOperation for OpenAccount {
    type View = OpenAccountJson;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.account);
        writer.u64(self.owner);
        writer.u32(self.asset);
        writer.u16(self.flags);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            account: reader.u128("open_account.account")?,
            owner: reader.u64("open_account.owner")?,
            asset: reader.u32("open_account.asset")?,
            flags: reader.u16("open_account.flags")?,
        })
    }

    fn to_view(&self) -> Self::View {
        OpenAccountJson {
            account: self.account,
            owner: self.owner,
            asset: self.asset,
            flags: flag_names(self.flags)
                .into_iter()
                .map(String::from)
                .collect(),
        }
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(Self {
            account: view.account,
            owner: view.owner,
            asset: view.asset,
            flags: parse_flags(&view.flags)?,
        })
    }

    fn needs(&self) -> Needs {
        Needs::Opens(self.account, self.owner, self.asset)
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.add(self.owner);
        Ok(())
    }
}

impl Rule for OpenAccount {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        let Some(owner_participant) = overlay.participant(self.owner)? else {
            return Ok(Outcome::Rejected(ResultCode::UnknownParticipant));
        };
        if context.signer.id != self.owner && owner_participant.bank != Some(context.signer.id) {
            return Ok(Outcome::Rejected(ResultCode::NotAuthorized));
        }
        if overlay.asset(self.asset)?.is_none() {
            return Ok(Outcome::Rejected(ResultCode::UnknownAsset));
        }
        let both_limits =
            flags::DEBITS_MUST_NOT_EXCEED_CREDITS | flags::CREDITS_MUST_NOT_EXCEED_DEBITS;
        if self.flags & !flags::ALL != 0
            || self.flags & (flags::FROZEN | flags::ISSUANCE) != 0
            || self.flags & both_limits == both_limits
        {
            return Ok(Outcome::Rejected(ResultCode::InvalidFlags));
        }
        // Money only by the rules: an account that can be debited is bounded.
        if self.flags & flags::DEBITS_MUST_NOT_EXCEED_CREDITS == 0 {
            return Ok(Outcome::Rejected(ResultCode::UnboundedAccount));
        }
        if let Some(found) = overlay.account(self.account)? {
            return Ok(if self.is_opened(&found) {
                Outcome::Existing(ResultCode::Ok)
            } else {
                Outcome::Rejected(ResultCode::AccountExists)
            });
        }
        overlay.put_account(&Account::new(
            self.account,
            self.owner,
            self.asset,
            self.flags,
        ));
        Ok(Outcome::Applied)
    }

    /// A retried batch opened the account exactly when it exists as this operation asked.
    fn retried_code(
        &self,
        overlay: &Overlay<'_>,
        _batch_code: ResultCode,
    ) -> Result<ResultCode, ApplyError> {
        Ok(match overlay.account(self.account)? {
            Some(found) if self.is_opened(&found) => ResultCode::Ok,
            _ => ResultCode::LinkedBatchFailed,
        })
    }
}

impl OpenAccount {
    /// Whether `found` is the account this operation opens (same owner, asset and flags).
    fn is_opened(&self, found: &Account) -> bool {
        found.owner == self.owner && found.asset == self.asset && found.flags == self.flags
    }
}
