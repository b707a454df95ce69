//! The read endpoints: transactions, accounts, transfers, blocks, status, health, metrics.

use super::extract::{ApiPath, ApiQuery};
use super::{parse_hash, parse_participant, parse_u128, ApiError, AppState, Principal};
use crate::api_types::*;
use crate::limits::{READY_APPLY_LAG_MAX, RECENT_BLOCKS_MAX};
use crate::storage::StorageError;
use axum::extract::{Extension, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tpw_contracts::view::{AccountView, HeaderView, ReceiptView, TransactionView, TransferView};
use tpw_contracts::{transaction_id, Transaction};

pub(super) async fn transaction(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(tx_id): ApiPath<String>,
) -> Result<Json<TransactionResponse>, ApiError> {
    let tx_id = parse_hash(&tx_id, "bad_tx_id")?;
    let reader = &context.reader;
    if let Some(location) = reader.tx_location(&tx_id).map_err(ApiError::storage)? {
        return committed_transaction(&context, &principal, tx_id, location).map(Json);
    }
    let received_signer = context
        .shared
        .in_flight
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .received_signer(&tx_id);
    // In flight: visible, like the committed transaction, only to who may read its signer's.
    let visible = match received_signer {
        Some(key) => match reader.key_owner(&key).map_err(ApiError::storage)? {
            Some(participant) => principal.sees(reader, participant.id)?,
            None => principal.sees_all(),
        },
        None => false,
    };
    if visible {
        return Ok(Json(TransactionResponse {
            head_height: head_height(&context),
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

/// A committed transaction with its receipt, visible to its signer (and whoever may read the
/// signer's records).
fn committed_transaction(
    context: &AppState,
    principal: &Principal,
    tx_id: [u8; 32],
    location: crate::storage::TxLocation,
) -> Result<TransactionResponse, ApiError> {
    let reader = &context.reader;
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
    let decoded =
        envelope.and_then(|bytes| Transaction::from_bytes(bytes, &context.network_id).ok());
    let signer = match &decoded {
        Some(transaction) => reader
            .key_owner(&transaction.signer)
            .map_err(ApiError::storage)?
            .map(|participant| participant.id),
        None => None,
    };
    let visible = match signer {
        Some(signer) => principal.sees(reader, signer)?,
        None => principal.sees_all(),
    };
    if !visible {
        return Err(ApiError::not_found("transaction"));
    }
    let transaction = decoded.map(|transaction| TransactionView::from(&transaction));
    Ok(TransactionResponse {
        head_height: head_height(context),
        tx_id: hex::encode(tx_id),
        status: "committed".into(),
        height: Some(location.height),
        position: Some(location.position),
        block_time_ms: Some(block.header.time_ms),
        receipt: block.receipts.get(position).map(ReceiptView::from),
        transaction,
    })
}

pub(super) async fn account(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AccountResponse>, ApiError> {
    let id = parse_u128(&id, "bad_account_id")?;
    match context.reader.account(id).map_err(ApiError::storage)? {
        Some((account, height, hold)) if principal.sees(&context.reader, account.owner)? => {
            Ok(Json(AccountResponse {
                height,
                account: AccountView::from(&account),
                hold: hold.as_ref().map(tpw_contracts::view::HoldView::from),
            }))
        }
        _ => Err(ApiError::not_found("account")),
    }
}

pub(super) async fn netting_cycle(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(cycle): ApiPath<String>,
) -> Result<Json<CycleResponse>, ApiError> {
    let cycle = parse_u128(&cycle, "bad_cycle_id")?;
    let found = context.reader.cycle(cycle).map_err(ApiError::storage)?;
    // Visible to its opener and members (and whoever may read theirs).
    let mut visible = false;
    if let Some((record, members, _)) = &found {
        for participant in std::iter::once(&record.opener).chain(members) {
            if principal.sees(&context.reader, *participant)? {
                visible = true;
                break;
            }
        }
    }
    match found {
        Some((record, members, height)) if visible => Ok(Json(CycleResponse {
            height,
            cycle: tpw_contracts::view::CycleView::from(&record),
            members,
        })),
        _ => Err(ApiError::not_found("netting cycle")),
    }
}

/// An asset and its outstanding supply: readable by every participant (the supply is what the
/// whole network holds, no one's position).
pub(super) async fn asset(
    State(context): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AssetResponse>, ApiError> {
    let id = parse_asset(&id)?;
    let Some(details) = context.reader.asset(id).map_err(ApiError::storage)? else {
        return Err(ApiError::not_found("asset"));
    };
    Ok(Json(AssetResponse {
        height: details.height,
        id: details.asset.id,
        code: details.asset.code,
        scale: details.asset.scale,
        issuer: details.asset.issuer,
        issuance_account: details.asset.issuance_account,
        supply_cap: details.supply.cap,
        outstanding: details.supply.outstanding,
    }))
}

pub(super) async fn limits(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((participant, asset)): ApiPath<(String, String)>,
) -> Result<Json<LimitsResponse>, ApiError> {
    let participant = parse_participant(&participant)?;
    let asset = parse_asset(&asset)?;
    let operator = principal.role == tpw_contracts::model::Role::Operator;
    if !operator && !principal.sees(&context.reader, participant)? {
        return Err(ApiError::not_found("limits"));
    }
    let details = context
        .reader
        .limits(participant, asset)
        .map_err(ApiError::storage)?;
    let today = details.time_ms / 86_400_000;
    Ok(Json(LimitsResponse {
        height: details.height,
        participant,
        asset,
        transfer_max: details.transfer_max,
        outflow_cap: details.outflow_cap.as_ref().map(|cap| cap.cap),
        spent_today: details
            .outflow_cap
            .as_ref()
            .filter(|cap| cap.day == today)
            .map_or(0, |cap| cap.spent),
    }))
}

fn parse_asset(text: &str) -> Result<u32, ApiError> {
    text.parse::<u32>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_asset_id",
            "asset ids are decimal u32",
        )
    })
}

pub(super) async fn credit_limit(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((creditor, debtor, asset)): ApiPath<(String, String, String)>,
) -> Result<Json<CreditLimitResponse>, ApiError> {
    let (creditor, debtor) = (parse_participant(&creditor)?, parse_participant(&debtor)?);
    let asset = parse_asset(&asset)?;
    if !principal.sees(&context.reader, creditor)? && !principal.sees(&context.reader, debtor)? {
        return Err(ApiError::not_found("credit limit"));
    }
    let (limit, height) = context
        .reader
        .credit_limit(creditor, debtor, asset)
        .map_err(ApiError::storage)?;
    Ok(Json(CreditLimitResponse {
        height,
        creditor,
        debtor,
        asset,
        limit,
    }))
}

pub(super) async fn transfer(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((participant, id)): ApiPath<(String, String)>,
) -> Result<Json<TransferResponse>, ApiError> {
    let participant = parse_participant(&participant)?;
    let id = parse_u128(&id, "bad_transfer_id")?;
    match context
        .reader
        .transfer(participant, id)
        .map_err(ApiError::storage)?
    {
        Some(details) if transfer_visible(&context, &principal, &details.record)? => {
            Ok(Json(TransferResponse {
                height: details.height,
                transfer: TransferView::from(&details.record),
                escrow: details
                    .escrow
                    .as_ref()
                    .map(tpw_contracts::view::EscrowView::from),
                reversal: details
                    .reversal
                    .as_ref()
                    .map(tpw_contracts::view::ReversalView::from),
                exchange: details
                    .exchange
                    .as_ref()
                    .map(tpw_contracts::view::ExchangeView::from),
                awaiting_approval: details.awaiting_approval,
            }))
        }
        _ => Err(ApiError::not_found("transfer")),
    }
}

/// A transfer is visible to its submitter and to the owners of its two accounts (and whoever
/// may read theirs).
pub(super) fn transfer_visible(
    context: &AppState,
    principal: &Principal,
    record: &tpw_contracts::model::TransferRecord,
) -> Result<bool, ApiError> {
    if principal.sees(&context.reader, record.owner)? {
        return Ok(true);
    }
    for account in [record.debit_account, record.credit_account] {
        if let Some((account, _, _)) = context.reader.account(account).map_err(ApiError::storage)? {
            if principal.sees(&context.reader, account.owner)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

pub(super) async fn block(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(height): ApiPath<String>,
) -> Result<Json<BlockResponse>, ApiError> {
    if !principal.reads_blocks() {
        return Err(ApiError::not_found("block"));
    }
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
        head_height: head_height(&context),
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
pub(super) struct RecentQuery {
    limit: Option<u64>,
}

pub(super) async fn recent_blocks(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<RecentQuery>,
) -> Result<Json<RecentBlocksResponse>, ApiError> {
    if !principal.reads_blocks() {
        return Err(ApiError::not_found("blocks"));
    }
    let limit = query.limit.unwrap_or(10).clamp(1, RECENT_BLOCKS_MAX);
    let (head, _) = context.reader.head().map_err(ApiError::storage)?;
    let mut blocks = Vec::new();
    let lowest = head.height.saturating_sub(limit - 1);
    for height in (lowest..=head.height).rev() {
        if let Some(block) = context.reader.block(height).map_err(ApiError::storage)? {
            blocks.push(HeaderView::from(&block.header));
        }
    }
    Ok(Json(RecentBlocksResponse {
        head_height: head.height,
        blocks,
    }))
}

pub(super) async fn status(State(context): State<AppState>) -> Json<StatusResponse> {
    let status = context
        .shared
        .status
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let metrics = &context.shared.metrics;
    let read =
        |value: &std::sync::atomic::AtomicU64| value.load(std::sync::atomic::Ordering::Relaxed);
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
        divergence_alarms: read(&metrics.divergence_alarms),
        snapshots_installed: read(&metrics.snapshots_installed),
        log_compacted_index: read(&metrics.log_compacted_index),
        blocks_missing: read(&metrics.blocks_missing),
        voters: status.voters,
        learners: status.learners,
    })
}

/// The raft loop's latest published status.
fn runtime_status(context: &AppState) -> crate::mailbox::RuntimeStatus {
    context
        .shared
        .status
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

pub(super) async fn health(State(context): State<AppState>) -> Response {
    let height = runtime_status(&context).height;
    (
        StatusCode::OK,
        Json(serde_json::json!({ "status": "serving", "height": height })),
    )
        .into_response()
}

/// What an operator should look at without the node being unready: the machine's clock far
/// from ledger time, a listener's certificate near its end.
fn ready_warnings(context: &AppState, status: &crate::mailbox::RuntimeStatus) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(offset) = status.clock_offset_ms {
        if offset.unsigned_abs() > status.clock_skew_alarm_ms {
            warnings.push(format!(
                "clock_skew: this machine's clock is {offset} ms from ledger time (bound {} ms)",
                status.clock_skew_alarm_ms
            ));
        }
    }
    let metrics = &context.shared.metrics;
    for (listener, alarm, seconds) in [
        (
            "api",
            &metrics.tls_api_expiry_alarm,
            &metrics.tls_api_expiry_seconds,
        ),
        (
            "admin",
            &metrics.tls_admin_expiry_alarm,
            &metrics.tls_admin_expiry_seconds,
        ),
    ] {
        if alarm.load(std::sync::atomic::Ordering::Relaxed) == 1 {
            let days = seconds.load(std::sync::atomic::Ordering::Relaxed) / 86_400;
            warnings.push(format!(
                "tls_certificate_expiry: the {listener} listener's certificate expires in {days} days"
            ));
        }
    }
    warnings
}

/// GET /v1/ready: whether this node should take traffic. 200 when it knows a leader, has
/// applied nearly everything committed, and is not stopping; 503 with the reasons otherwise.
/// Liveness is `GET /v1/health` (the process serves).
pub(super) async fn ready(State(context): State<AppState>) -> Response {
    let status = runtime_status(&context);
    let lag = status.commit_index.saturating_sub(status.applied_index);
    let mut reasons = Vec::new();
    if status.leader_id.is_none() {
        reasons.push("no_leader".to_string());
    }
    if lag > READY_APPLY_LAG_MAX {
        reasons.push(format!("catching_up: {lag} committed entries to apply"));
    }
    if context
        .shared
        .stopping
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        reasons.push("stopping".to_string());
    }
    if crate::storage::corruption_detected().is_some() {
        reasons.push("data_corruption".to_string());
    }
    let ready = reasons.is_empty();
    // Warnings are listed without making the node unready.
    let warnings = ready_warnings(&context, &status);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(serde_json::json!({
            "ready": ready,
            "reasons": reasons,
            "warnings": warnings,
            "role": status.role,
            "leader_id": status.leader_id,
            "height": status.height,
            "commit_index": status.commit_index,
            "applied_index": status.applied_index,
            "apply_lag": lag,
        })),
    )
        .into_response()
}

pub(super) async fn metrics(State(context): State<AppState>) -> Response {
    let metrics = &context.shared.metrics;
    {
        let backlog = context
            .shared
            .webhook_backlog
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        crate::metrics::Metrics::set(
            &metrics.webhook_backlog_blocks,
            backlog.values().copied().max().unwrap_or(0),
        );
        crate::metrics::Metrics::set(
            &metrics.webhook_endpoints_behind,
            backlog.values().filter(|blocks| **blocks > 0).count() as u64,
        );
    }
    crate::metrics::Metrics::set(&metrics.audit_records, context.audit.written());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        context.shared.metrics.render(),
    )
        .into_response()
}

/// The height of this node's chain head, which a read reflects at least: the raft loop moves
/// it as each block is written, before it wakes the clients waiting for that block (the
/// published status follows only at the end of its turn).
fn head_height(context: &AppState) -> u64 {
    *context.shared.head_height.borrow()
}
