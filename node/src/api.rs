//! The HTTP API under /v1 (axum, JSON), /metrics for Prometheus, and the error mapping that
//! gives every refusal an HTTP status, a stable code and a message saying what to fix.

use crate::api_types::*;
use crate::limits::{
    ADMISSION_CACHE_MAX, BODY_SIZE_MAX, RECENT_BLOCKS_MAX, SUBMIT_TRANSACTIONS_MAX, WAITERS_MAX,
    WAIT_TIMEOUT_MS_DEFAULT, WAIT_TIMEOUT_MS_MAX,
};
use crate::metrics::Metrics;
use crate::runtime::{Command, Committed, Shared, SubmitError};
use crate::storage::{LedgerReader, StorageError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;
use tpw_contracts::model::{from_bytes, Account, Hash};
use tpw_contracts::sig::{verify_all, SignatureItem};
use tpw_contracts::state::{account_key, signer_key};
use tpw_contracts::tx::EnvelopeError;
use tpw_contracts::view::{AccountView, HeaderView, ReceiptView, TransactionView, TransferView};
use tpw_contracts::{transaction_id, Operation, ResultCode, Transaction};

/// What the handlers share.
pub struct ApiContext {
    /// State shared with the raft loop.
    pub shared: Arc<Shared>,
    /// Ledger reads.
    pub reader: LedgerReader,
    /// Commands to the raft loop.
    pub commands: SyncSender<Command>,
    /// This network's id.
    pub network_id: Hash,
    /// This node's Raft id.
    pub node_id: u64,
    /// Facts that admission has already read and that never change: registered signer keys and
    /// each account's asset (accounts are never deleted and never change asset).
    pub admission_cache: AdmissionCache,
}

/// Positive admission facts, bounded by [`ADMISSION_CACHE_MAX`] entries each (reset when full).
/// Admission is only a pre-filter: the ledger decides every transaction again when it applies.
#[derive(Default)]
pub struct AdmissionCache {
    signers: std::sync::RwLock<HashSet<[u8; 32]>>,
    account_assets: std::sync::RwLock<HashMap<u128, u32>>,
}

impl AdmissionCache {
    fn signer_known(&self, key: &[u8; 32]) -> bool {
        self.signers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(key)
    }
    fn remember_signer(&self, key: [u8; 32]) {
        let mut signers = self
            .signers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if signers.len() >= ADMISSION_CACHE_MAX {
            signers.clear();
        }
        signers.insert(key);
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

type AppState = Arc<ApiContext>;

/// An API refusal.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    index: Option<usize>,
    retry_after_s: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            index: None,
            retry_after_s: None,
        }
    }
    fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
    fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    fn storage(error: StorageError) -> Self {
        tracing::error!(%error, "storage read failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            "the node could not read its storage; try another node",
        )
    }
    fn unavailable(error: SubmitError) -> Self {
        let code = match error {
            SubmitError::NotLeader { .. } => "not_leader",
            SubmitError::Overloaded => "overloaded",
            SubmitError::Stopping => "stopping",
        };
        let mut api_error = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, error.to_string());
        api_error.retry_after_s = Some(1);
        api_error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
                index: self.index,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Builds the router.
pub fn router(context: Arc<ApiContext>) -> Router {
    Router::new()
        .route("/v1/transactions", post(submit))
        .route("/v1/transactions/{tx_id}", get(transaction))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/transfers/{participant}/{id}", get(transfer))
        .route("/v1/blocks", get(recent_blocks))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/status", get(status))
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see docs/api.md",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method; see docs/api.md",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_SIZE_MAX))
        .with_state(context)
}

fn parse_hash(text: &str, code: &'static str) -> Result<Hash, ApiError> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                code,
                format!("{text:?} is not 64 hex digits"),
            )
        })
}

fn parse_u128(text: &str, code: &'static str) -> Result<u128, ApiError> {
    tpw_contracts::decimal::parse(text)
        .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, code, message))
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

/// Decodes, verifies and pre-checks a submission; returns (transaction id, envelope) pairs.
fn admit(context: &ApiContext, request: &SubmitRequest) -> Result<Vec<(Hash, Vec<u8>)>, ApiError> {
    let mut envelopes = Vec::with_capacity(request.transactions.len());
    let mut transactions = Vec::with_capacity(request.transactions.len());
    for (index, text) in request.transactions.iter().enumerate() {
        let bytes = hex::decode(text).map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_hex",
                format!("transaction is not hex: {error}"),
            )
            .at(index)
        })?;
        let transaction = Transaction::from_bytes(&bytes, &context.network_id)
            .map_err(|error| envelope_error(error).at(index))?;
        transactions.push(transaction);
        envelopes.push(bytes);
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
        .map(|bytes| (transaction_id(&bytes), bytes))
        .collect())
}

/// Refuses what cannot succeed whatever happens first: unknown signers, unknown accounts, and
/// assets that do not match the accounts. Accounts opened earlier in the same request count.
fn precheck(context: &ApiContext, transactions: &[Transaction]) -> Result<(), ApiError> {
    let mut opened: BTreeMap<u128, u32> = BTreeMap::new();
    for (index, transaction) in transactions.iter().enumerate() {
        if !signer_registered(context, &transaction.signer)? {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "unknown_signer",
                "the signer key is not registered to any participant of this network",
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
                Operation::PostPending { .. } | Operation::VoidPending { .. } => {}
            }
        }
    }
    Ok(())
}

fn signer_registered(context: &ApiContext, key: &[u8; 32]) -> Result<bool, ApiError> {
    if context.admission_cache.signer_known(key) {
        return Ok(true);
    }
    let registered = context
        .reader
        .state_now(&signer_key(key))
        .map_err(ApiError::storage)?
        .is_some();
    if registered {
        context.admission_cache.remember_signer(*key);
    }
    Ok(registered)
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

fn committed_result(tx_id: &Hash, committed: &Committed) -> SubmitResult {
    SubmitResult {
        tx_id: hex::encode(tx_id),
        status: "committed".into(),
        height: Some(committed.height),
        position: Some(committed.position),
        code: Some(committed.receipt.code),
        operations: Some(committed.receipt.operations.clone()),
    }
}

fn pending_result(tx_id: &Hash, status: &str) -> SubmitResult {
    SubmitResult {
        tx_id: hex::encode(tx_id),
        status: status.into(),
        height: None,
        position: None,
        code: None,
        operations: None,
    }
}

fn stored_commit(reader: &LedgerReader, tx_id: &Hash) -> Result<Option<Committed>, StorageError> {
    let Some(location) = reader.tx_location(tx_id)? else {
        return Ok(None);
    };
    let Some(block) = reader.block(location.height)? else {
        return Err(StorageError::Corrupt(format!(
            "tx index names missing block {}",
            location.height
        )));
    };
    let receipt = block
        .receipts
        .get(location.position as usize)
        .cloned()
        .ok_or_else(|| StorageError::Corrupt("tx index names a missing receipt".into()))?;
    Ok(Some(Committed {
        height: location.height,
        position: location.position,
        receipt,
    }))
}

async fn submit(
    State(context): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let result = submit_inner(&context, body).await;
    if result.is_err() {
        Metrics::add(&context.shared.metrics.submissions_refused, 1);
    }
    result
}

async fn submit_inner(
    context: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the body exceeds {BODY_SIZE_MAX} bytes; send fewer transactions per request"
                ),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_body", rejection.body_text())
        }
    })?;
    let request: SubmitRequest = serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("{error}; expected {{\"transactions\": [hex, ...], \"wait\": bool}}"),
        )
    })?;
    if request.transactions.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty_batch",
            "send at least one transaction",
        ));
    }
    if request.transactions.len() > SUBMIT_TRANSACTIONS_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{} transactions in one request; the limit is {SUBMIT_TRANSACTIONS_MAX}",
                request.transactions.len()
            ),
        ));
    }
    let timeout_ms = request.timeout_ms.unwrap_or(WAIT_TIMEOUT_MS_DEFAULT);
    if timeout_ms > WAIT_TIMEOUT_MS_MAX {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_timeout",
            format!("timeout_ms must be at most {WAIT_TIMEOUT_MS_MAX}"),
        ));
    }
    let wait = request.wait;
    let admitted = {
        let context = Arc::clone(context);
        tokio::task::spawn_blocking(move || admit(&context, &request))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "admission task failed",
                )
            })??
    };
    let mut results: Vec<Option<SubmitResult>> = vec![None; admitted.len()];
    let mut receivers = Vec::new();
    let mut fresh = Vec::new();
    {
        let mut in_flight = context
            .shared
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if in_flight.waiter_count() + admitted.len() > WAITERS_MAX {
            return Err(ApiError::unavailable(SubmitError::Overloaded));
        }
        for (index, (tx_id, envelope)) in admitted.into_iter().enumerate() {
            if in_flight.receive(tx_id) {
                fresh.push((index, tx_id, envelope));
            }
            let (sender, receiver) = tokio::sync::oneshot::channel();
            if wait && in_flight.add_waiter(tx_id, sender) {
                receivers.push((index, tx_id, receiver));
            } else {
                results[index] = Some(pending_result(&tx_id, "received"));
            }
        }
    }
    // A transaction marked received here that is already in a block was committed before this
    // request marked it (the raft loop writes the index before it clears `received`): answer
    // from the block instead of ordering it twice.
    let mut to_queue = Vec::with_capacity(fresh.len());
    for (index, tx_id, envelope) in fresh {
        match stored_commit(&context.reader, &tx_id).map_err(ApiError::storage)? {
            Some(committed) => {
                let mut in_flight = context
                    .shared
                    .in_flight
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                in_flight.commit(&tx_id, &committed);
                results[index] = Some(committed_result(&tx_id, &committed));
            }
            None => to_queue.push((tx_id, envelope)),
        }
    }
    if !to_queue.is_empty() {
        let queued_ids: Vec<Hash> = to_queue.iter().map(|(tx_id, _)| *tx_id).collect();
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let sent = match context.commands.try_send(Command::Submit {
            envelopes: to_queue,
            reply,
        }) {
            Ok(()) => outcome.await.unwrap_or(Err(SubmitError::Stopping)),
            Err(TrySendError::Full(_)) => Err(SubmitError::Overloaded),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Stopping),
        };
        if let Err(error) = sent {
            let mut in_flight = context
                .shared
                .in_flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for tx_id in &queued_ids {
                in_flight.forget(tx_id, &error);
            }
            return Err(ApiError::unavailable(error));
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    for (index, tx_id, receiver) in receivers {
        if results[index].is_some() {
            continue;
        }
        results[index] = Some(match tokio::time::timeout_at(deadline, receiver).await {
            Ok(Ok(Ok(committed))) => committed_result(&tx_id, &committed),
            Ok(Ok(Err(_))) | Ok(Err(_)) => pending_result(&tx_id, "retry"),
            Err(_) => pending_result(&tx_id, "received"),
        });
    }
    let results: Vec<SubmitResult> = results
        .into_iter()
        .map(|result| result.expect("every index gets a result"))
        .collect();
    let all_committed = results.iter().all(|result| result.status == "committed");
    let first_failure = results
        .iter()
        .find_map(|result| result.code.filter(|code| *code != ResultCode::Ok));
    let (status, error) = match (wait, all_committed, first_failure) {
        (true, true, None) => (StatusCode::OK, None),
        (true, true, Some(code)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(ErrorDetail {
                code: code.name().into(),
                message: code.describe().into(),
                index: results.iter().position(|result| result.code == Some(code)),
            }),
        ),
        _ => (StatusCode::ACCEPTED, None),
    };
    Ok((status, Json(SubmitResponse { results, error })).into_response())
}

async fn transaction(
    State(context): State<AppState>,
    Path(tx_id): Path<String>,
) -> Result<Json<TransactionResponse>, ApiError> {
    let tx_id = parse_hash(&tx_id, "bad_tx_id")?;
    let reader = &context.reader;
    if let Some(location) = reader.tx_location(&tx_id).map_err(ApiError::storage)? {
        let block = reader
            .block(location.height)
            .map_err(ApiError::storage)?
            .ok_or_else(|| {
                ApiError::storage(StorageError::Corrupt(
                    "tx index names a missing block".into(),
                ))
            })?;
        let position = location.position as usize;
        let envelope = block.proposal.transactions.get(position);
        let transaction = envelope
            .and_then(|bytes| Transaction::from_bytes(bytes, &context.network_id).ok())
            .map(|transaction| TransactionView::from(&transaction));
        return Ok(Json(TransactionResponse {
            tx_id: hex::encode(tx_id),
            status: "committed".into(),
            height: Some(location.height),
            position: Some(location.position),
            block_time_ms: Some(block.header.time_ms),
            receipt: block.receipts.get(position).map(ReceiptView::from),
            transaction,
        }));
    }
    let received = context
        .shared
        .in_flight
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .is_received(&tx_id);
    if received {
        return Ok(Json(TransactionResponse {
            tx_id: hex::encode(tx_id),
            status: "received".into(),
            height: None,
            position: None,
            block_time_ms: None,
            receipt: None,
            transaction: None,
        }));
    }
    Err(ApiError::not_found("transaction"))
}

async fn account(
    State(context): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AccountResponse>, ApiError> {
    let id = parse_u128(&id, "bad_account_id")?;
    match context.reader.account(id).map_err(ApiError::storage)? {
        Some((account, height)) => Ok(Json(AccountResponse {
            height,
            account: AccountView::from(&account),
        })),
        None => Err(ApiError::not_found("account")),
    }
}

async fn transfer(
    State(context): State<AppState>,
    Path((participant, id)): Path<(String, String)>,
) -> Result<Json<TransferResponse>, ApiError> {
    let participant = participant.parse::<u64>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_participant_id",
            "participant ids are decimal u64",
        )
    })?;
    let id = parse_u128(&id, "bad_transfer_id")?;
    match context
        .reader
        .transfer(participant, id)
        .map_err(ApiError::storage)?
    {
        Some((record, height)) => Ok(Json(TransferResponse {
            height,
            transfer: TransferView::from(&record),
        })),
        None => Err(ApiError::not_found("transfer")),
    }
}

async fn block(
    State(context): State<AppState>,
    Path(height): Path<String>,
) -> Result<Json<BlockResponse>, ApiError> {
    let height = height.parse::<u64>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_height",
            "heights are decimal u64",
        )
    })?;
    let block = context
        .reader
        .block(height)
        .map_err(ApiError::storage)?
        .ok_or_else(|| ApiError::not_found("block"))?;
    Ok(Json(BlockResponse {
        header: HeaderView::from(&block.header),
        transactions: block
            .proposal
            .transactions
            .iter()
            .map(|bytes| hex::encode(transaction_id(bytes)))
            .collect(),
        receipts: block.receipts.iter().map(ReceiptView::from).collect(),
    }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecentQuery {
    limit: Option<u64>,
}

async fn recent_blocks(
    State(context): State<AppState>,
    query: Result<Query<RecentQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecentBlocksResponse>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_query", rejection.body_text())
    })?;
    let limit = query.limit.unwrap_or(10).clamp(1, RECENT_BLOCKS_MAX);
    let (head, _) = context.reader.head().map_err(ApiError::storage)?;
    let mut blocks = Vec::new();
    let lowest = head.height.saturating_sub(limit - 1);
    for height in (lowest..=head.height).rev() {
        if let Some(block) = context.reader.block(height).map_err(ApiError::storage)? {
            blocks.push(HeaderView::from(&block.header));
        }
    }
    Ok(Json(RecentBlocksResponse { blocks }))
}

async fn status(State(context): State<AppState>) -> Json<StatusResponse> {
    let status = context
        .shared
        .status
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    Json(StatusResponse {
        node_id: context.node_id,
        network_id: hex::encode(context.network_id),
        role: status.role.into(),
        term: status.term,
        leader_id: status.leader_id,
        commit_index: status.commit_index,
        applied_index: status.applied_index,
        height: status.height,
        head_hash: hex::encode(status.head_hash),
        state_root: hex::encode(status.state_root),
        block_time_ms: status.block_time_ms,
        queue_depth: status.queue_depth,
    })
}

async fn health(State(context): State<AppState>) -> Response {
    let height = context
        .shared
        .status
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .height;
    (
        StatusCode::OK,
        Json(serde_json::json!({ "status": "serving", "height": height })),
    )
        .into_response()
}

async fn metrics(State(context): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        context.shared.metrics.render(),
    )
        .into_response()
}
