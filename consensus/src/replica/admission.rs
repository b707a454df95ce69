//! Admission's ledger pre-checks: what a node refuses before ordering, because it cannot
//! succeed whatever is ordered first. A pure function of ledger facts, answering with the
//! ledger's own result codes, shared by the node's API and the simulator.
//!
//! It checks only the signer and the signer's own accounts, so its answer never depends on
//! another participant's records: a debit account that does not exist and one that exists but
//! belongs to someone else are refused alike (`unknown_account`), and a credit account is not
//! looked at (the block decides it). A partner therefore learns nothing of other accounts from
//! admission, whatever the batch.

use std::collections::BTreeMap;
use tpw_contracts::model::{
    from_bytes, Account, AccountId, AssetId, Participant, ParticipantId, Role,
};
use tpw_contracts::ops::Needs;
use tpw_contracts::state::{account_key, participant_key, signer_key, SignerRecord, StoreError};
use tpw_contracts::{ResultCode, StateStore, Transaction};

/// The ledger facts admission reads. [`StateFacts`] reads them from state; the node reads them
/// through its caches.
pub trait AdmissionFacts {
    /// The signer record of a key.
    fn signer(&self, key: &[u8; 32]) -> Result<Option<SignerRecord>, StoreError>;
    /// A participant's role.
    fn role(&self, participant: ParticipantId) -> Result<Option<Role>, StoreError>;
    /// An account's owner and asset.
    fn account(&self, account: AccountId) -> Result<Option<(ParticipantId, AssetId)>, StoreError>;
    /// The head's block time (a key being rotated out signs until its retirement time).
    fn head_time_ms(&self) -> u64;
}

/// Admission facts read straight from ledger state.
pub struct StateFacts<'a> {
    /// The state.
    pub state: &'a dyn StateStore,
    /// The head's block time.
    pub head_time_ms: u64,
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError(format!("{what} record does not decode: {error}"))
}

impl AdmissionFacts for StateFacts<'_> {
    fn signer(&self, key: &[u8; 32]) -> Result<Option<SignerRecord>, StoreError> {
        self.state
            .get(&signer_key(key))?
            .map(|bytes| from_bytes(&bytes, SignerRecord::decode).map_err(|e| corrupt("signer", e)))
            .transpose()
    }
    fn role(&self, participant: ParticipantId) -> Result<Option<Role>, StoreError> {
        self.state
            .get(&participant_key(participant))?
            .map(|bytes| {
                from_bytes(&bytes, Participant::decode)
                    .map(|participant| participant.role)
                    .map_err(|e| corrupt("participant", e))
            })
            .transpose()
    }
    fn account(&self, account: AccountId) -> Result<Option<(ParticipantId, AssetId)>, StoreError> {
        self.state
            .get(&account_key(account))?
            .map(|bytes| {
                from_bytes(&bytes, Account::decode)
                    .map(|account| (account.owner, account.asset))
                    .map_err(|e| corrupt("account", e))
            })
            .transpose()
    }
    fn head_time_ms(&self) -> u64 {
        self.head_time_ms
    }
}

/// Why admission refused: the offending transaction's index in the request and the ledger's
/// code for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The transaction's index in the request.
    pub index: usize,
    /// The ledger's result code.
    pub code: ResultCode,
    /// What was wrong, for the client, naming only the signer's own records.
    pub message: String,
}

/// Why admission did not admit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmissionError {
    /// The ledger refuses it before ordering.
    Refused(Refusal),
    /// Reading the facts failed (a storage failure, not the client's fault).
    Store(StoreError),
}

impl From<StoreError> for AdmissionError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Refuses what cannot succeed whatever happens first: an envelope whose validity ended before
/// the head's time, a signer key that does not sign (not
/// registered, or retired by the head's time), a debit account the signer does not own or
/// that is in another asset, and a hold not signed by a regulator. Accounts the signer opens
/// earlier in the same request count as its own.
pub fn precheck(
    facts: &dyn AdmissionFacts,
    transactions: &[Transaction],
) -> Result<(), AdmissionError> {
    let mut opened: BTreeMap<AccountId, (ParticipantId, AssetId)> = BTreeMap::new();
    for (index, transaction) in transactions.iter().enumerate() {
        let refuse = |(code, message): Refused| {
            Err(AdmissionError::Refused(Refusal {
                index,
                code,
                message,
            }))
        };
        if transaction.validity.valid_until_ms < facts.head_time_ms() {
            return refuse((
                ResultCode::Expired,
                format!(
                    "the envelope's validity ended at {} ms, before the ledger time {} ms; sign it again with a new nonce",
                    transaction.validity.valid_until_ms,
                    facts.head_time_ms()
                ),
            ));
        }
        let signer = match signing_participant(facts, transaction)? {
            Ok(signer) => signer,
            Err(refused) => return refuse(refused),
        };
        for operation in &transaction.body.operations {
            if let Err(refused) = check_needs(facts, signer, operation.needs(), &mut opened)? {
                return refuse(refused);
            }
        }
    }
    Ok(())
}

/// A refusal's code and message, before it is tied to its transaction's index.
type Refused = (ResultCode, String);

/// The participant whose key signed the transaction, if the key signs at the head's time.
fn signing_participant(
    facts: &dyn AdmissionFacts,
    transaction: &Transaction,
) -> Result<Result<ParticipantId, Refused>, StoreError> {
    Ok(match facts.signer(&transaction.signer)? {
        None => Err((
            ResultCode::UnknownSigner,
            "the signer key is not registered to any participant of this network".into(),
        )),
        Some(record) if !record.signs_at(facts.head_time_ms()) => Err((
            ResultCode::KeyRetired,
            "the signer key was rotated out and its overlap window has ended".into(),
        )),
        Some(record) => Ok(record.participant),
    })
}

/// Checks what one operation needs of its signer, and notes the accounts it opens (they count
/// as the signer's own for the operations after it).
fn check_needs(
    facts: &dyn AdmissionFacts,
    signer: ParticipantId,
    needs: Needs,
    opened: &mut BTreeMap<AccountId, (ParticipantId, AssetId)>,
) -> Result<Result<(), Refused>, StoreError> {
    match needs {
        Needs::Opens(account, owner, asset) => {
            opened.insert(account, (owner, asset));
        }
        Needs::OwnDebit(account, asset) => {
            let found = match opened.get(&account) {
                Some(found) => Some(*found),
                None => facts.account(account)?,
            };
            match found {
                Some((owner, found)) if owner == signer => {
                    if found != asset {
                        return Ok(Err((
                            ResultCode::AssetMismatch,
                            format!("your account {account} is in asset {found}, the operation names asset {asset}"),
                        )));
                    }
                }
                // Absent and owned by another answer alike.
                _ => {
                    return Ok(Err((
                        ResultCode::UnknownAccount,
                        format!("you own no account {account}; debit one of your own accounts, or open it first"),
                    )))
                }
            }
        }
        Needs::RegulatorOnly => {
            let role = facts.role(signer)?;
            if role != Some(Role::Regulator) {
                return Ok(Err((
                    ResultCode::RegulatorOnly,
                    "only a regulator may place or lift a hold".into(),
                )));
            }
        }
        Needs::Nothing => {}
    }
    Ok(Ok(()))
}
