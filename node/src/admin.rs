//! The operator's admin interface, on its own listener (`admin_listen`, loopback): controls for
//! drills such as cutting this node off from its peers. Off unless configured.

use crate::network::NetworkHandle;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

/// Body of POST /admin/v1/partition.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionRequest {
    /// Node ids to cut this node off from; empty heals every partition.
    pub isolate_from: Vec<u64>,
}

/// The admin routes.
pub fn router(network: Option<NetworkHandle>) -> Router {
    Router::new()
        .route("/admin/v1/partition", post(partition))
        .with_state(network)
}

async fn partition(
    State(network): State<Option<NetworkHandle>>,
    body: Result<Json<PartitionRequest>, axum::extract::rejection::JsonRejection>,
) -> (StatusCode, Json<serde_json::Value>) {
    let error = |status: StatusCode, code: &str, message: String| {
        (
            status,
            Json(serde_json::json!({ "error": { "code": code, "message": message } })),
        )
    };
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                rejection.body_text(),
            )
        }
    };
    let Some(network) = network else {
        return error(
            StatusCode::CONFLICT,
            "no_peers",
            "this node has no peers to partition from".into(),
        );
    };
    match network.partition(request.isolate_from.clone()).await {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({ "isolated_from": request.isolate_from })),
        ),
        Err(failure) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "network_stopped",
            failure.to_string(),
        ),
    }
}
