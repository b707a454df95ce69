//! Admission: decoding, signature checks and pre-checks of a submission before it is ordered.

use super::{ApiContext, ApiError};
use crate::api_types::SubmitRequest;
use crate::limits::ADMISSION_CACHE_MAX;
use crate::storage::StorageError;
use axum::http::StatusCode;
use std::collections::{BTreeMap, HashMap, HashSet};
use tpw_contracts::model::{from_bytes, Account, Hash, Participant, Role};
use tpw_contracts::sig::{verify_all, SignatureItem};
use tpw_contracts::state::{account_key, participant_key, signer_key};
use tpw_contracts::tx::EnvelopeError;
use tpw_contracts::{transaction_id, Operation, Transaction};

/// Positive admission facts, bounded by [`ADMISSION_CACHE_MAX`] entries each (reset when full).
/// Admission is only a pre-filter: the ledger decides every transaction again when it applies.
#[derive(Default)]
pub struct AdmissionCache {
    /// Keys known to sign, with the signer-record generation they were read at.
    signers: std::sync::RwLock<(u64, HashSet<[u8; 32]>)>,
    account_assets: std::sync::RwLock<HashMap<u128, u32>>,
}

impl AdmissionCache {
    /// Whether `key` was read as a signing key since the signer records last changed
    /// (`generation` counts the blocks that changed them: a revocation empties the cache).
    fn signer_known(&self, key: &[u8; 32], generation: u64) -> bool {
        let signers = self
            .signers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        signers.0 == generation && signers.1.contains(key)
    }
    fn remember_signer(&self, key: [u8; 32], generation: u64) {
        let mut signers = self
            .signers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if signers.0 != generation || signers.1.len() >= ADMISSION_CACHE_MAX {
            signers.1.clear();
            signers.0 = generation;
        }
        signers.1.insert(key);
    }
    fn account_asset(&self, account: u128) -> Option<u32> {
        self.account_assets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&account)
            .copied()
    }
    fn remember_account(&self, account: u128, asset: u32) {
        let mut assets = self
            .account_assets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if assets.len() >= ADMISSION_CACHE_MAX {
            assets.clear();
        }
        assets.insert(account, asset);
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
) -> Result<Vec<Admitted>, ApiError> {
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
    // Charged only once every signature verified, so nobody can spend another key's tokens
    // with envelopes that merely name it.
    let admitted = admit_envelopes(context, envelopes)?;
    context
        .submit_limits
        .take(&costs, std::time::Instant::now())
        .map_err(ApiError::rate_limited)?;
    Ok(admitted)
}

/// Decodes, verifies and pre-checks envelopes.
pub(super) fn admit_envelopes(
    context: &ApiContext,
    envelopes: Vec<Vec<u8>>,
) -> Result<Vec<Admitted>, ApiError> {
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
    precheck(context, &transactions)?;
    Ok(envelopes
        .into_iter()
        .zip(&transactions)
        .map(|(envelope, transaction)| Admitted {
            tx_id: transaction_id(&envelope),
            signer: transaction.signer,
            envelope,
        })
        .collect())
}

/// Refuses what cannot succeed whatever happens first: unknown signers, unknown accounts, and
/// assets that do not match the accounts. Accounts opened earlier in the same request count.
fn precheck(context: &ApiContext, transactions: &[Transaction]) -> Result<(), ApiError> {
    let mut opened: BTreeMap<u128, u32> = BTreeMap::new();
    // The node's role follows the ledger's node set (a joining node is an observer until it
    // has replicated its own record).
    let observer = context
        .shared
        .status
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .observer;
    for (index, transaction) in transactions.iter().enumerate() {
        if !signer_registered(context, &transaction.signer)? {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "unknown_signer",
                "the signer key is not registered to any participant of this network",
            )
            .at(index));
        }
        if observer && signer_role(context, &transaction.signer)? != Some(Role::Regulator) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "observer_regulators_only",
                "this is a regulator's observer node: it accepts only transactions signed by regulator keys; submit to a voting node",
            )
            .at(index));
        }
        for operation in &transaction.body.operations {
            match operation {
                Operation::OpenAccount { account, asset, .. } => {
                    opened.insert(*account, *asset);
                }
                Operation::Transfer {
                    debit_account,
                    credit_account,
                    asset,
                    ..
                }
                | Operation::CreateEscrow {
                    debit_account,
                    credit_account,
                    asset,
                    ..
                }
                | Operation::OfferExchange {
                    debit_account,
                    credit_account,
                    asset,
                    ..
                } => {
                    for id in [*debit_account, *credit_account] {
                        let found = match opened.get(&id) {
                            Some(asset) => Some(*asset),
                            None => account_asset(context, id)?,
                        };
                        let Some(found) = found else {
                            let message = format!("account {id} does not exist; open it first");
                            return Err(ApiError::new(
                                StatusCode::UNPROCESSABLE_ENTITY,
                                "unknown_account",
                                message,
                            )
                            .at(index));
                        };
                        if found != *asset {
                            let message = format!("account {id} is in asset {found}, the transfer names asset {asset}");
                            return Err(ApiError::new(
                                StatusCode::UNPROCESSABLE_ENTITY,
                                "asset_mismatch",
                                message,
                            )
                            .at(index));
                        }
                    }
                }
                Operation::SetHold { .. } => {
                    if signer_role(context, &transaction.signer)? != Some(Role::Regulator) {
                        return Err(ApiError::new(
                            StatusCode::FORBIDDEN,
                            "regulator_only",
                            "only a regulator may place or lift a hold",
                        )
                        .at(index));
                    }
                }
                Operation::PostPending { .. }
                | Operation::VoidPending { .. }
                | Operation::ApproveEscrow { .. }
                | Operation::ReleaseEscrow { .. }
                | Operation::AcceptExchange { .. }
                | Operation::OpenCycle { .. }
                | Operation::SubmitObligation { .. }
                | Operation::CloseCycle { .. }
                | Operation::Reverse { .. }
                | Operation::SetTransferMax { .. }
                | Operation::SetOutflowCap { .. }
                | Operation::SetCreditLimit { .. }
                | Operation::SetWebhook { .. }
                | Operation::SetApprovalPolicy { .. }
                | Operation::AddKey { .. }
                | Operation::ApproveTransfer { .. }
                | Operation::Propose { .. }
                | Operation::ApproveProposal { .. }
                | Operation::RevokeKey { .. } => {}
            }
        }
    }
    Ok(())
}

/// Whether `key` signs now: registered, not revoked, and not retired by the head's block time.
fn signer_registered(context: &ApiContext, key: &[u8; 32]) -> Result<bool, ApiError> {
    let generation = context
        .shared
        .signer_generation
        .load(std::sync::atomic::Ordering::Acquire);
    if context.admission_cache.signer_known(key, generation) {
        return Ok(true);
    }
    let Some(bytes) = context
        .reader
        .state_now(&signer_key(key))
        .map_err(ApiError::storage)?
    else {
        return Ok(false);
    };
    let record = from_bytes(&bytes, tpw_contracts::state::SignerRecord::decode)
        .map_err(|error| ApiError::storage(StorageError::Corrupt(error.to_string())))?;
    if record.retire_at_ms.is_some() {
        // A key being rotated out is checked against the head's time on every submission.
        let head_ms = context
            .shared
            .status
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .block_time_ms;
        return Ok(record.signs_at(head_ms));
    }
    context.admission_cache.remember_signer(*key, generation);
    Ok(true)
}

fn signer_role(context: &ApiContext, key: &[u8; 32]) -> Result<Option<Role>, ApiError> {
    let corrupt = |error: tpw_contracts::codec::DecodeError| {
        ApiError::storage(StorageError::Corrupt(error.to_string()))
    };
    let Some(bytes) = context
        .reader
        .state_now(&signer_key(key))
        .map_err(ApiError::storage)?
    else {
        return Ok(None);
    };
    let participant = from_bytes(&bytes, tpw_contracts::state::SignerRecord::decode)
        .map_err(corrupt)?
        .participant;
    let Some(bytes) = context
        .reader
        .state_now(&participant_key(participant))
        .map_err(ApiError::storage)?
    else {
        return Ok(None);
    };
    Ok(Some(
        from_bytes(&bytes, Participant::decode)
            .map_err(corrupt)?
            .role,
    ))
}

fn account_asset(context: &ApiContext, id: u128) -> Result<Option<u32>, ApiError> {
    if let Some(asset) = context.admission_cache.account_asset(id) {
        return Ok(Some(asset));
    }
    let Some(bytes) = context
        .reader
        .state_now(&account_key(id))
        .map_err(ApiError::storage)?
    else {
        return Ok(None);
    };
    let account = from_bytes(&bytes, Account::decode)
        .map_err(|error| ApiError::storage(StorageError::Corrupt(error.to_string())))?;
    context.admission_cache.remember_account(id, account.asset);
    Ok(Some(account.asset))
}
