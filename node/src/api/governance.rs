//! Governance reads: proposals (for bank members, who vote, regulators and operators) and the
//! node set as the ledger records it (public: webhook receivers check signatures with it).

use super::extract::{ApiPath, ApiQuery};
use super::{ApiError, AppState, Principal};
use crate::api_types::{NodesResponse, ProposalsResponse};
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::Json;
use tpw_contracts::governance_view::{NodeView, ProposalView};
use tpw_contracts::model::Role;

fn reads_governance(principal: &Principal) -> bool {
    matches!(
        principal.role,
        Role::BankMember | Role::Regulator | Role::Operator
    )
}

#[derive(serde::Deserialize)]
pub(super) struct ProposalsQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

pub(super) async fn proposals(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ProposalsQuery>,
) -> Result<Json<ProposalsResponse>, ApiError> {
    if !reads_governance(&principal) {
        return Err(ApiError::not_found("proposals"));
    }
    let (head, _) = context.reader.head().map_err(ApiError::storage)?;
    let limit = query.limit.unwrap_or(crate::limits::PROPOSALS_PAGE_MAX);
    let records = context
        .reader
        .proposals(query.from.unwrap_or(0), limit.max(1))
        .map_err(ApiError::storage)?;
    Ok(Json(ProposalsResponse {
        height: head.height,
        proposals: records
            .iter()
            .map(|record| ProposalView::of(record, head.time_ms))
            .collect(),
    }))
}

pub(super) async fn proposal(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProposalView>, ApiError> {
    let id = id.parse::<u64>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_proposal_id",
            "proposal ids are decimal u64",
        )
    })?;
    if !reads_governance(&principal) {
        return Err(ApiError::not_found("proposal"));
    }
    let (head, _) = context.reader.head().map_err(ApiError::storage)?;
    let record = context
        .reader
        .proposal(id)
        .map_err(ApiError::storage)?
        .ok_or_else(|| ApiError::not_found("proposal"))?;
    Ok(Json(ProposalView::of(&record, head.time_ms)))
}

pub(super) async fn nodes(
    State(context): State<AppState>,
) -> Result<Json<NodesResponse>, ApiError> {
    let (head, _) = context.reader.head().map_err(ApiError::storage)?;
    let nodes = context.reader.nodes().map_err(ApiError::storage)?;
    Ok(Json(NodesResponse {
        network_id: hex::encode(context.network_id),
        height: head.height,
        nodes: nodes.iter().map(NodeView::from).collect(),
    }))
}
