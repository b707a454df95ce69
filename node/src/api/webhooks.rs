//! Webhook endpoints' state for their participant (GET /v1/webhooks), replay of dead letters
//! (POST /v1/webhooks/{endpoint}/replay, on the leader), and the node keys that sign
//! deliveries (GET /v1/nodes).

use super::extract::ApiPath;
use super::{ApiError, AppState, Principal};
use crate::api_types::{DeadLetterView, WebhookView, WebhooksResponse};
use crate::limits::DEAD_LETTERS_LISTED_MAX;
use crate::storage::webhooks as store;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub(super) async fn list(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<WebhooksResponse>, ApiError> {
    let db = context.reader.db();
    let mut endpoints = Vec::new();
    for (participant, endpoint, registered, url) in context
        .reader
        .webhook_endpoints()
        .map_err(ApiError::storage)?
    {
        if participant != principal.id {
            continue;
        }
        let delivered = store::delivered(db, participant, endpoint)
            .map_err(ApiError::storage)?
            .filter(|(height, _)| *height >= registered)
            .map(|(height, sequence)| format!("{height}.{sequence}"));
        let dead_letters = store::dead_letters(db, participant, endpoint, DEAD_LETTERS_LISTED_MAX)
            .map_err(ApiError::storage)?
            .into_iter()
            .map(|letter| DeadLetterView {
                cursor: format!("{}.{}", letter.height, letter.sequence),
                attempts: letter.attempts,
                error: letter.error,
            })
            .collect();
        endpoints.push(WebhookView {
            endpoint,
            url,
            registered_height: registered,
            delivered,
            dead_letters,
        });
    }
    Ok(Json(WebhooksResponse { endpoints }))
}

pub(super) async fn replay(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(endpoint): ApiPath<String>,
) -> Result<Response, ApiError> {
    let endpoint = endpoint.parse::<u16>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_endpoint",
            "endpoint numbers are 0 to 3",
        )
    })?;
    let registered = context
        .reader
        .webhook_endpoints()
        .map_err(ApiError::storage)?
        .iter()
        .any(|(participant, number, _, _)| *participant == principal.id && *number == endpoint);
    if !registered {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    let (role, leader) = {
        let status = context
            .shared
            .status
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (status.role, status.leader_id)
    };
    if role != "leader" {
        return Err(ApiError::retryable(
            "not_leader",
            &format!(
                "the leader delivers webhooks; ask it (leader: {})",
                leader.map_or_else(|| "unknown".to_string(), |id| format!("node {id}"))
            ),
        ));
    }
    context.webhook_replays.ask(principal.id, endpoint);
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "endpoint": endpoint, "replaying": true })),
    )
        .into_response())
}
