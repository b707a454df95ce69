//! GET /v1/proofs/{participant}/{id}: an inclusion proof for a transfer, checkable offline
//! (`tpw proof verify`): the transaction that carried it, its receipt, their Merkle paths to the
//! block's roots, and the headers from that block up to this node's head (or `up_to`).

use super::extract::{ApiPath, ApiQuery};
use super::reads::transfer_visible;
use super::{parse_participant, parse_u128, ApiError, AppState, Principal};
use crate::api_types::ProofResponse;
use crate::storage::StorageError;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::Json;
use tpw_contracts::proof::{merkle_path, InclusionProof, PROOF_HEADERS_MAX};
use tpw_contracts::Receipt;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProofQuery {
    up_to: Option<u64>,
}

pub(super) async fn proof(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((participant, id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ProofQuery>,
) -> Result<Json<ProofResponse>, ApiError> {
    let participant = parse_participant(&participant)?;
    let id = parse_u128(&id, "bad_transfer_id")?;
    let record = match context
        .reader
        .transfer_record(participant, id)
        .map_err(ApiError::storage)?
    {
        Some(record) if transfer_visible(&context, &principal, &record)? => record,
        _ => return Err(ApiError::not_found("transfer")),
    };
    let reader = context.reader.clone();
    let principal_reads = principal.clone();
    let visibility = context.clone();
    tokio::task::spawn_blocking(move || {
        build(&reader, &record.tx_id, query.up_to, &|envelope| {
            envelope_visible(&visibility, &principal_reads, envelope)
        })
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the proof task failed",
        )
    })?
    .map(Json)
}

/// The proof carries the whole signed envelope: it goes to whoever may read the signer's
/// records (as `GET /v1/transactions/{id}` does), or to a party of the transfer when the
/// transaction holds that one operation only, so nothing of anyone else's shows.
fn envelope_visible(
    context: &AppState,
    principal: &Principal,
    envelope: &[u8],
) -> Result<bool, ApiError> {
    let Ok(transaction) = tpw_contracts::Transaction::from_bytes(envelope, &context.network_id)
    else {
        return Ok(principal.sees_all());
    };
    let signer = context
        .reader
        .key_owner(&transaction.signer)
        .map_err(ApiError::storage)?;
    match signer {
        Some(signer) if principal.sees(&context.reader, signer.id)? => Ok(true),
        _ => Ok(transaction.body.operations.len() == 1),
    }
}

fn build(
    reader: &crate::storage::LedgerReader,
    tx_id: &[u8; 32],
    up_to: Option<u64>,
    visible: &dyn Fn(&[u8]) -> Result<bool, ApiError>,
) -> Result<ProofResponse, ApiError> {
    let corrupt = |what: &str| ApiError::storage(StorageError::Corrupt(what.into()));
    let location = reader
        .tx_location(tx_id)
        .map_err(ApiError::storage)?
        .ok_or_else(|| ApiError::not_found("transfer"))?;
    let (head, _) = reader.head().map_err(ApiError::storage)?;
    let end = up_to.unwrap_or(head.height);
    if end < location.height || end > head.height {
        let message = format!(
            "up_to must lie between the transfer's block {} and the head {}",
            location.height, head.height
        );
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_up_to", message));
    }
    let length = end - location.height + 1;
    if length > PROOF_HEADERS_MAX as u64 {
        let message = format!(
            "the proof would carry {length} headers, over {PROOF_HEADERS_MAX}; ask for one ending earlier with up_to (at most {})",
            location.height + PROOF_HEADERS_MAX as u64 - 1
        );
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "proof_too_long",
            message,
        ));
    }
    let block = reader
        .block(location.height)
        .map_err(ApiError::storage)?
        .ok_or_else(|| ApiError::not_found("block"))?;
    let position = location.position as usize;
    let envelope = block
        .proposal
        .transactions
        .get(position)
        .ok_or_else(|| corrupt("tx index names a missing position"))?
        .clone();
    if !visible(&envelope)? {
        return Err(ApiError::not_found("transfer"));
    }
    let receipt = block
        .receipts
        .get(position)
        .ok_or_else(|| corrupt("a block lacks a receipt"))?
        .clone();
    let tx_ids: Vec<[u8; 32]> = block.receipts.iter().map(|receipt| receipt.tx_id).collect();
    let receipt_hashes: Vec<[u8; 32]> = block.receipts.iter().map(Receipt::hash).collect();
    let transaction_path =
        merkle_path(&tx_ids, position).ok_or_else(|| corrupt("transaction path"))?;
    let receipt_path =
        merkle_path(&receipt_hashes, position).ok_or_else(|| corrupt("receipt path"))?;
    let mut headers = vec![block.header];
    for height in location.height + 1..=end {
        let next = reader
            .block(height)
            .map_err(ApiError::storage)?
            .ok_or_else(|| ApiError::not_found("block"))?;
        headers.push(next.header);
    }
    let last = headers.last().ok_or_else(|| corrupt("no header"))?;
    let response = ProofResponse {
        height: location.height,
        head_height: last.height,
        head_hash: hex::encode(last.hash()),
        proof: String::new(),
    };
    let proof = InclusionProof {
        envelope,
        receipt,
        transaction_path,
        receipt_path,
        headers,
    };
    Ok(ProofResponse {
        proof: hex::encode(proof.to_bytes()),
        ..response
    })
}
