//! The operator's admin interface, on its own listener (`admin_listen`, loopback): controls for
//! drills such as cutting this node off from its peers. Off unless configured; every request
//! carries the operator's token (`Authorization: Bearer <token>`, from `admin_token_file`).

use crate::network::NetworkHandle;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

/// The admin routes, answering only requests that carry `token`.
pub fn router(network: Option<NetworkHandle>, token: &str) -> Router {
    let expected = blake3::hash(token.as_bytes());
    Router::new()
        .route("/admin/v1/partition", post(partition))
        .with_state(network)
        .layer(axum::middleware::from_fn_with_state(expected, authenticate))
}

/// Refuses a request without the operator's token. The hashes compare in constant time, so the
/// answer time says nothing about how much of a guess was right.
async fn authenticate(
    State(expected): State<blake3::Hash>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| blake3::hash(token.trim().as_bytes()));
    if presented == Some(expected) {
        return next.run(request).await;
    }
    tracing::warn!(path = %request.uri().path(), "admin request without a valid token refused");
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": {
            "code": "admin_unauthorized",
            "message": "the admin interface needs `Authorization: Bearer <token>` with the token in this node's admin_token_file"
        } })),
    )
        .into_response()
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
