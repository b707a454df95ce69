//! Admission: decoding, signature checks and pre-checks of a submission before it is ordered.

use super::{ApiContext, ApiError};
use crate::api_types::SubmitRequest;
use crate::limits::ADMISSION_CACHE_MAX;
use crate::storage::StorageError;
use axum::http::StatusCode;
use std::collections::HashMap;
use tpw_consensus::replica::admission::{self, AdmissionError, AdmissionFacts, StateFacts};
use tpw_contracts::model::{Hash, Role};
use tpw_contracts::sig::{verify_all, SignatureItem};
use tpw_contracts::state::{SignerRecord, StoreError};
use tpw_contracts::tx::EnvelopeError;
use tpw_contracts::{transaction_id, ResultCode, Transaction};

/// Positive admission facts, bounded by [`ADMISSION_CACHE_MAX`] entries each (reset when full).
/// Admission is only a pre-filter: the ledger decides every transaction again when it applies.
#[derive(Default)]
pub struct AdmissionCache {
    /// Keys known to sign (with their participant), and the signer-record generation they
    /// were read at.
    signers: std::sync::RwLock<(u64, HashMap<[u8; 32], u64>)>,
    /// Accounts' owner and asset, which never change.
    accounts: std::sync::RwLock<HashMap<u128, (u64, u32)>>,
}

impl AdmissionCache {
    /// The participant of `key` if it was read as a signing key since the signer records last
    /// changed (`generation` counts the blocks that changed them: a revocation empties it).
    fn signer(&self, key: &[u8; 32], generation: u64) -> Option<u64> {
        let signers = self
            .signers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (signers.0 == generation)
            .then(|| signers.1.get(key).copied())
            .flatten()
    }
    fn remember_signer(&self, key: [u8; 32], participant: u64, generation: u64) {
        let mut signers = self
            .signers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if signers.0 != generation || signers.1.len() >= ADMISSION_CACHE_MAX {
            signers.1.clear();
            signers.0 = generation;
        }
        signers.1.insert(key, participant);
    }
    fn account(&self, account: u128) -> Option<(u64, u32)> {
        self.accounts
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&account)
            .copied()
    }
    fn remember_account(&self, account: u128, owner: u64, asset: u32) {
        let mut accounts = self
            .accounts
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if accounts.len() >= ADMISSION_CACHE_MAX {
            accounts.clear();
        }
        accounts.insert(account, (owner, asset));
    }
}

fn envelope_error(error: EnvelopeError) -> ApiError {
    let code = match &error {
        EnvelopeError::Malformed(_) => "malformed_transaction",
        EnvelopeError::TooLarge { .. } => "transaction_too_large",
        EnvelopeError::UnsupportedVersion(_) => "unsupported_version",
        EnvelopeError::WrongNetwork { .. } => "wrong_network",
    };
    ApiError::new(
        StatusCode::BAD_REQUEST,
        code,
        format!("{error}; build it with the encoding in docs/encoding.md"),
    )
}

/// One admitted transaction: its id, its signer's key and its envelope.
pub(super) struct Admitted {
    pub tx_id: Hash,
    pub signer: [u8; 32],
    pub envelope: Vec<u8>,
}

/// Decodes the hex of a submission, then admits it as [`admit_envelopes`] does.
pub(super) fn admit(
    context: &ApiContext,
    request: &SubmitRequest,
) -> Result<(Vec<Admitted>, SignerPlaces), ApiError> {
    let mut envelopes = Vec::with_capacity(request.transactions.len());
    for (index, text) in request.transactions.iter().enumerate() {
        let bytes = hex::decode(text).map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_hex",
                format!("transaction is not hex: {error}"),
            )
            .at(index)
        })?;
        envelopes.push(bytes);
    }
    // Each signer's transactions count against its rate limit where they are submitted.
    let mut costs: HashMap<[u8; 32], u64> = HashMap::new();
    for bytes in &envelopes {
        if let Ok(transaction) = Transaction::from_bytes(bytes, &context.network_id) {
            *costs.entry(transaction.signer).or_default() += 1;
        }
    }
    let costs: Vec<([u8; 32], u64)> = costs.into_iter().collect();
    let transactions = verify_envelopes(context, &envelopes)?;
    // Each signer holds a place while the request runs, taken once its signatures verified.
    let mut places = Vec::with_capacity(costs.len());
    for (signer, _) in &costs {
        match context.key_requests.try_hold(*signer) {
            Some(place) => places.push(place),
            None => return Err(super::too_many_in_flight("signing key")),
        }
    }
    // Charged once every signature verified, so nobody can spend another key's tokens with
    // envelopes that merely name it; and before the pre-checks, so a refused batch (from a key
    // no participant holds, say) costs its signer as much as an admitted one.
    context
        .submit_limits
        .take(&costs, std::time::Instant::now())
        .map_err(ApiError::rate_limited)?;
    precheck(context, &transactions)?;
    Ok((admitted_of(envelopes, &transactions), places))
}

/// The places a submission's signers hold while it runs.
pub(super) type SignerPlaces = Vec<super::concurrency::Held<[u8; 32]>>;

/// Decodes, verifies and pre-checks envelopes.
pub(super) fn admit_envelopes(
    context: &ApiContext,
    envelopes: Vec<Vec<u8>>,
) -> Result<Vec<Admitted>, ApiError> {
    let transactions = verify_envelopes(context, &envelopes)?;
    precheck(context, &transactions)?;
    Ok(admitted_of(envelopes, &transactions))
}

/// Decodes envelopes and batch-verifies their signatures.
fn verify_envelopes(
    context: &ApiContext,
    envelopes: &[Vec<u8>],
) -> Result<Vec<Transaction>, ApiError> {
    let mut transactions = Vec::with_capacity(envelopes.len());
    for (index, bytes) in envelopes.iter().enumerate() {
        let transaction = Transaction::from_bytes(bytes, &context.network_id)
            .map_err(|error| envelope_error(error).at(index))?;
        transactions.push(transaction);
    }
    let messages: Vec<Vec<u8>> = transactions
        .iter()
        .map(Transaction::signed_message)
        .collect();
    let items: Vec<SignatureItem<'_>> = transactions
        .iter()
        .zip(&messages)
        .map(|(transaction, message)| SignatureItem {
            key: &transaction.signer,
            signature: &transaction.signature,
            message,
        })
        .collect();
    if let Some(index) = verify_all(&items).iter().position(|valid| !valid) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_signature",
            "the signature does not verify under the signer key; sign the bytes described in docs/encoding.md",
        )
        .at(index));
    }
    Ok(transactions)
}

/// The admitted envelopes with their ids and signers.
fn admitted_of(envelopes: Vec<Vec<u8>>, transactions: &[Transaction]) -> Vec<Admitted> {
    envelopes
        .into_iter()
        .zip(transactions)
        .map(|(envelope, transaction)| Admitted {
            tx_id: transaction_id(&envelope),
            signer: transaction.signer,
            envelope,
        })
        .collect()
}

/// The node's own rule first (an observer accepts only regulators' transactions), then the
/// ledger's pre-checks (`tpw_consensus::replica::admission`), answered with the ledger's codes.
fn precheck(context: &ApiContext, transactions: &[Transaction]) -> Result<(), ApiError> {
    let facts = CachedFacts { context };
    // The node's role follows the ledger's node set (a joining node is an observer until it
    // has replicated its own record).
    let observer = context
        .shared
        .status
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .observer;
    if observer {
        for (index, transaction) in transactions.iter().enumerate() {
            let role = match facts.signer(&transaction.signer).map_err(store_failure)? {
                Some(record) => facts.role(record.participant).map_err(store_failure)?,
                None => None,
            };
            if role != Some(Role::Regulator) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "observer_regulators_only",
                    "this is a regulator's observer node: it accepts only transactions signed by regulator keys; submit to a voting node",
                )
                .at(index));
            }
        }
    }
    match admission::precheck(&facts, transactions) {
        Ok(()) => Ok(()),
        Err(AdmissionError::Store(error)) => Err(store_failure(error)),
        Err(AdmissionError::Refused(refusal)) => {
            let status = match refusal.code {
                ResultCode::UnknownAccount | ResultCode::AssetMismatch | ResultCode::Expired => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                _ => StatusCode::FORBIDDEN,
            };
            Err(ApiError::new(status, refusal.code.name(), refusal.message).at(refusal.index))
        }
    }
}

fn store_failure(error: tpw_contracts::state::StoreError) -> ApiError {
    ApiError::storage(StorageError::Corrupt(error.to_string()))
}

/// Admission's facts read through the node's caches: signer keys until the signer records
/// change (a revocation empties the cache), accounts' owner and asset (never changed).
struct CachedFacts<'a> {
    context: &'a ApiContext,
}

impl CachedFacts<'_> {
    fn state(&self, key: &[u8]) -> Result<Option<Vec<u8>>, tpw_contracts::state::StoreError> {
        self.context
            .reader
            .state_now(key)
            .map_err(|error| tpw_contracts::state::StoreError(error.to_string()))
    }
}

impl AdmissionFacts for CachedFacts<'_> {
    fn signer(&self, key: &[u8; 32]) -> Result<Option<SignerRecord>, StoreError> {
        let generation = self
            .context
            .shared
            .signer_generation
            .load(std::sync::atomic::Ordering::Acquire);
        if let Some(participant) = self.context.admission_cache.signer(key, generation) {
            return Ok(Some(SignerRecord {
                participant,
                retire_at_ms: None,
            }));
        }
        let facts = StateFacts {
            state: &StateView(self),
            head_time_ms: 0,
        };
        let record = facts.signer(key)?;
        if let Some(record) = &record {
            // A key being rotated out is checked against the head's time on every submission.
            if record.retire_at_ms.is_none() {
                self.context
                    .admission_cache
                    .remember_signer(*key, record.participant, generation);
            }
        }
        Ok(record)
    }
    fn role(&self, participant: u64) -> Result<Option<Role>, StoreError> {
        StateFacts {
            state: &StateView(self),
            head_time_ms: 0,
        }
        .role(participant)
    }
    fn account(&self, account: u128) -> Result<Option<(u64, u32)>, StoreError> {
        if let Some(found) = self.context.admission_cache.account(account) {
            return Ok(Some(found));
        }
        let found = StateFacts {
            state: &StateView(self),
            head_time_ms: 0,
        }
        .account(account)?;
        if let Some((owner, asset)) = found {
            self.context
                .admission_cache
                .remember_account(account, owner, asset);
        }
        Ok(found)
    }
    fn head_time_ms(&self) -> u64 {
        self.context
            .shared
            .status
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .block_time_ms
    }
}

/// The node's latest committed state as the ledger engine's read interface (point reads only).
struct StateView<'a, 'b>(&'a CachedFacts<'b>);

impl tpw_contracts::StateStore for StateView<'_, '_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.state(key)
    }
    fn scan(
        &self,
        _start: &[u8],
        _end: &[u8],
        _limit: usize,
    ) -> Result<tpw_contracts::state::Records, StoreError> {
        Err(StoreError("admission reads no ranges".into()))
    }
}
