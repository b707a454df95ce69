//! The ledger operations, one module each (its fields, canonical encoding, JSON view, rule,
//! admission needs and event parties), and the registry below that lists every operation once
//! with its tag. Adding an operation is a module, a registry line, and its docs and vectors.

mod accept_exchange;
mod add_key;
mod approve_escrow;
mod approve_proposal;
mod approve_transfer;
mod close_cycle;
mod create_escrow;
mod interface;
mod mint;
mod offer_exchange;
mod open_account;
mod open_cycle;
mod post_pending;
mod propose;
mod registry;
mod release_escrow;
mod reverse;
mod revoke_key;
mod set_approval_policy;
mod set_credit_limit;
mod set_credit_line;
mod set_hold;
mod set_outflow_cap;
mod set_transfer_max;
mod set_webhook;
mod submit_obligation;
mod transfer;
mod void_pending;

pub use accept_exchange::AcceptExchange;
pub use add_key::{AddKey, AddKeyJson};
pub use approve_escrow::ApproveEscrow;
pub use approve_proposal::ApproveProposal;
pub use approve_transfer::ApproveTransfer;
pub use close_cycle::CloseCycle;
pub use create_escrow::{CreateEscrow, CreateEscrowJson};
pub use interface::{LedgerOperation, Needs, Parties, PartyLookup};
pub use mint::{Burn, IssuanceFields, Mint};
pub use offer_exchange::OfferExchange;
pub use open_account::{OpenAccount, OpenAccountJson};
pub use open_cycle::OpenCycle;
pub use post_pending::PostPending;
pub use propose::{Propose, ProposeJson};
pub use release_escrow::{ReleaseEscrow, ReleaseEscrowJson};
pub use reverse::Reverse;
pub use revoke_key::{RevokeKey, RevokeKeyJson};
pub use set_approval_policy::SetApprovalPolicy;
pub use set_credit_limit::SetCreditLimit;
pub use set_credit_line::SetCreditLine;
pub use set_hold::SetHold;
pub use set_outflow_cap::SetOutflowCap;
pub use set_transfer_max::SetTransferMax;
pub use set_webhook::{webhook_key, webhook_url_valid, SetWebhook};
pub use submit_obligation::SubmitObligation;
pub use transfer::{Transfer, TransferJson};
pub use void_pending::VoidPending;

use crate::model::{AccountId, AssetId, TransferId};
use interface::Rule;

// The registry: every operation once, with its tag on the wire. Tags are never reused.
registry::registry! {
    1 => OpenAccount,
    2 => Transfer,
    3 => PostPending,
    4 => VoidPending,
    5 => SetHold,
    6 => CreateEscrow,
    7 => ApproveEscrow,
    8 => ReleaseEscrow,
    9 => OfferExchange,
    10 => AcceptExchange,
    11 => OpenCycle,
    12 => SubmitObligation,
    13 => CloseCycle,
    14 => Reverse,
    15 => SetTransferMax,
    16 => SetOutflowCap,
    17 => SetApprovalPolicy,
    18 => AddKey,
    19 => ApproveTransfer,
    20 => SetCreditLimit,
    21 => SetWebhook,
    22 => Propose,
    23 => ApproveProposal,
    24 => RevokeKey,
    25 => Mint,
    26 => Burn,
    27 => SetCreditLine,
}

impl Operation {
    /// A posted transfer with no client reference: the most common operation.
    pub fn posted(
        id: TransferId,
        debit_account: AccountId,
        credit_account: AccountId,
        asset: AssetId,
        amount: u128,
    ) -> Self {
        Operation::Transfer(Transfer::posted(
            id,
            debit_account,
            credit_account,
            asset,
            amount,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DecodeError, Reader};
    use crate::governance::GovernanceAction;
    use crate::model::ParticipantId;
    use std::collections::BTreeMap;

    /// A ledger of account owners and nothing else.
    struct Owners(BTreeMap<AccountId, ParticipantId>);

    impl PartyLookup for Owners {
        type Error = ();
        fn account_owner(&self, account: AccountId) -> Result<Option<ParticipantId>, ()> {
            Ok(self.0.get(&account).copied())
        }
        fn transfer_accounts(
            &self,
            _owner: ParticipantId,
            _id: TransferId,
        ) -> Result<Option<(AccountId, AccountId)>, ()> {
            Ok(None)
        }
        fn cycle_parties(&self, _cycle: u128) -> Result<Vec<ParticipantId>, ()> {
            Ok(Vec::new())
        }
        fn bank_members(&self) -> Result<Vec<ParticipantId>, ()> {
            Ok(Vec::new())
        }
        fn proposal_action(&self, _proposal: u64) -> Result<Option<GovernanceAction>, ()> {
            Ok(None)
        }
    }

    #[test]
    fn a_payment_concerns_its_signer_and_both_account_owners_once() {
        // Proves an operation's parties are the signer and the owners its accounts name, each
        // once and ascending, and that an unknown account adds no one.
        let lookup = Owners(BTreeMap::from([(301, 7), (501, 3)]));
        let mut parties = Parties::new(&lookup, Some(7));
        Operation::posted(1, 301, 501, 1, 10)
            .parties(&mut parties)
            .unwrap();
        assert_eq!(parties.finish(), vec![3, 7]);
        let mut parties = Parties::new(&lookup, Some(7));
        Operation::posted(1, 301, 999, 1, 10)
            .parties(&mut parties)
            .unwrap();
        assert_eq!(parties.finish(), vec![7]);
    }

    #[test]
    fn an_unregistered_tag_is_malformed() {
        // Proves decoding refuses every tag the registry does not list, naming the tag field.
        let registered: Vec<u8> = (1..=27).collect();
        for tag in 0..=u8::MAX {
            let bytes = [tag];
            let mut reader = Reader::new(&bytes);
            let refused_for_tag = matches!(
                Operation::decode(&mut reader),
                Err(DecodeError::InvalidValue {
                    field: "operation.tag",
                    ..
                })
            );
            assert_eq!(refused_for_tag, !registered.contains(&tag), "tag {tag}");
        }
    }
}
