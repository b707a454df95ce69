//! The HTTP API under /v1 (axum, JSON), /metrics for Prometheus, and the error mapping that
//! gives every refusal an HTTP status, a stable code and a message saying what to fix.

mod admission;
mod auth;
pub mod concurrency;
mod events;
mod extract;
mod governance;
mod proofs;
mod rate;
mod reads;
mod statement;
mod submit;
mod webhooks;

pub use admission::AdmissionCache;
pub use auth::{Principal, ReadKey, ReplayGuard};
pub use concurrency::Concurrency;
pub use events::event_visible;
pub use rate::RateLimiter;

use crate::api_types::{ErrorDetail, ErrorResponse};
use crate::limits::BODY_SIZE_MAX;
use crate::mailbox::{Command, Shared, SubmitError};
use crate::storage::{LedgerReader, StorageError};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use tpw_contracts::model::Hash;

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
    /// The peer transport, for forwarding submissions to the leader (none on a one-node network).
    pub network: Option<crate::network::NetworkHandle>,
    /// Facts that admission has already read and that never change: registered signer keys and
    /// each account's asset (accounts are never deleted and never change asset).
    pub admission_cache: AdmissionCache,
    /// Signed requests already seen inside the replay window.
    pub replay: ReplayGuard,
    /// Events of recent blocks, shared by the event streams.
    pub events: crate::events::EventCache,
    /// Signed reads per participant.
    pub read_limits: RateLimiter<u64>,
    /// Submitted transactions per signing key.
    pub submit_limits: RateLimiter<[u8; 32]>,
    /// Longest a request may take.
    pub request_timeout: std::time::Duration,
    /// Webhook replays asked for on this node.
    pub webhook_replays: crate::mailbox::Replays,
    /// The node's audit log.
    pub audit: crate::audit::AuditLog,
    /// Requests in flight per source address.
    pub address_requests: Concurrency<std::net::IpAddr>,
    /// Requests in flight per signing key (signed reads, and submissions by their signers).
    pub key_requests: Concurrency<[u8; 32]>,
    /// Open event streams per participant.
    pub participant_streams: Concurrency<u64>,
}

type AppState = Arc<ApiContext>;

/// An API refusal.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: std::borrow::Cow<'static, str>,
    message: String,
    index: Option<usize>,
    retry_after_s: Option<u64>,
}

impl ApiError {
    pub(super) fn new(
        status: StatusCode,
        code: impl Into<std::borrow::Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            index: None,
            retry_after_s: None,
        }
    }
    pub(super) fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
    pub(super) fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    pub(super) fn storage(error: StorageError) -> Self {
        tracing::error!(%error, "storage read failed");
        crate::storage::note_corruption(&error);
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            "the node could not read its storage; try another node",
        )
    }
    pub(super) fn unavailable(error: SubmitError) -> Self {
        let code = match error {
            SubmitError::NotLeader { .. } => "not_leader",
            SubmitError::Overloaded => "overloaded",
            SubmitError::Stopping => "stopping",
        };
        let mut api_error = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, error.to_string());
        api_error.retry_after_s = Some(1);
        api_error
    }
    pub(super) fn rate_limited(wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut api_error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("this principal's rate limit is reached; retry in {seconds} s"),
        );
        api_error.retry_after_s = Some(seconds.max(1));
        api_error
    }
    pub(super) fn retryable(code: &'static str, message: &str) -> Self {
        let mut api_error = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
        api_error.retry_after_s = Some(1);
        api_error
    }
    /// The refusal a forwarding node is told.
    pub(super) fn into_refusal(self) -> crate::network::ForwardRefusal {
        use crate::network::ForwardRefusal;
        match self.code.as_ref() {
            "overloaded" => ForwardRefusal::Overloaded,
            "stopping" => ForwardRefusal::Stopping,
            "not_leader" => ForwardRefusal::NotLeader(None),
            _ => ForwardRefusal::Refused {
                code: self.code.into_owned(),
                message: self.message,
            },
        }
    }
}

/// Installs this node's API as the server of submissions forwarded by other nodes.
pub fn serve_forwarded(context: &Arc<ApiContext>) {
    let Some(network) = &context.network else {
        return;
    };
    let handler_context = Arc::clone(context);
    network.serve_forwarded(Arc::new(move |envelopes| {
        let context = Arc::clone(&handler_context);
        Box::pin(submit::serve_forwarded(context, envelopes))
    }));
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
    // Reads of ledger records need a signed request (docs/api.md, Authentication) and show the
    // principal only what it may see; submissions carry their own signatures; status, health
    // and metrics hold no participant's data.
    let scoped = Router::new()
        .route("/v1/transactions/{tx_id}", get(reads::transaction))
        .route("/v1/accounts/{id}", get(reads::account))
        .route("/v1/accounts/{id}/statement", get(statement::statement))
        .route("/v1/transfers/{participant}/{id}", get(reads::transfer))
        .route("/v1/proofs/{participant}/{id}", get(proofs::proof))
        .route("/v1/netting/{cycle}", get(reads::netting_cycle))
        .route("/v1/limits/{participant}/{asset}", get(reads::limits))
        .route("/v1/assets/{id}", get(reads::asset))
        .route(
            "/v1/credit-limits/{creditor}/{debtor}/{asset}",
            get(reads::credit_limit),
        )
        .route("/v1/blocks", get(reads::recent_blocks))
        .route("/v1/blocks/{height}", get(reads::block))
        .route("/v1/events", get(events::stream))
        .route("/v1/webhooks", get(webhooks::list))
        .route("/v1/webhooks/{endpoint}/replay", post(webhooks::replay))
        .route("/v1/governance/proposals", get(governance::proposals))
        .route("/v1/governance/proposals/{id}", get(governance::proposal))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&context),
            auth::authenticate,
        ));
    Router::new()
        .merge(scoped)
        .route("/v1/transactions", post(submit::submit))
        .route("/v1/status", get(reads::status))
        .route("/v1/nodes", get(governance::nodes))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/health", get(reads::health))
        .route("/v1/ready", get(reads::ready))
        .route("/metrics", get(reads::metrics))
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
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&context),
            bounded_time,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&context),
            audited,
        ))
        .with_state(context)
}

/// Paths that hold no participant's data and are polled by monitoring: not audited.
const UNAUDITED_PATHS: [&str; 6] = [
    "/v1/health",
    "/v1/ready",
    "/v1/status",
    "/v1/nodes",
    "/v1/openapi.json",
    "/metrics",
];

/// Records every other request in the audit log once it is answered: who (the authenticated
/// participant, else the key it claimed, else anonymous), what, the status, and a hash of the
/// body (a submission's body identifies its transactions exactly).
async fn audited(
    axum::extract::State(context): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Requests from one address at once are capped, a body still arriving included
    // (partners behind one bank's address translation share an address: this cap is wide).
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let _address_place = match peer {
        Some(address) => match context.address_requests.try_hold(address) {
            Some(place) => Some(place),
            None => return too_many_in_flight("address").into_response(),
        },
        None => None,
    };
    let mut request = request;
    let deadline = tokio::time::Instant::now() + context.request_timeout;
    request.extensions_mut().insert(RequestDeadline(deadline));
    if UNAUDITED_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let time_ms = crate::clock::now_ms();
    let action = format!("{} {}", request.method(), request.uri().path());
    let target = request.uri().query().unwrap_or_default().to_string();
    let claimed = request
        .headers()
        .get(crate::request_auth::HEADER_KEY)
        .and_then(|value| value.to_str().ok())
        .map(|key| format!("key:{}", crate::audit::cut_text(key)));
    let (parts, body) = request.into_parts();
    let detail;
    let response = if parts.method == axum::http::Method::GET {
        detail = [0u8; 32];
        next.run(axum::extract::Request::from_parts(parts, body))
            .await
    } else if declared_length(&parts.headers).is_some_and(|length| length > BODY_SIZE_MAX as u64) {
        // Refused before any byte of the body is read, so a client that asked to be told
        // (`Expect: 100-continue`) gets 413, never "100 Continue".
        detail = [0u8; 32];
        body_too_large().into_response()
    } else {
        match tokio::time::timeout_at(deadline, axum::body::to_bytes(body, BODY_SIZE_MAX)).await {
            Err(_) => {
                detail = [0u8; 32];
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    "the request body did not arrive within api.request_timeout_ms",
                )
                .into_response()
            }
            Ok(Ok(bytes)) => {
                detail = *blake3::hash(&bytes).as_bytes();
                next.run(axum::extract::Request::from_parts(
                    parts,
                    axum::body::Body::from(bytes),
                ))
                .await
            }
            Ok(Err(_)) => {
                detail = [0u8; 32];
                body_too_large().into_response()
            }
        }
    };
    let actor = match response.extensions().get::<Principal>() {
        Some(principal) => format!("participant:{}", principal.id),
        None => claimed.unwrap_or_else(|| "anonymous".into()),
    };
    context
        .audit
        .record(crate::audit::Entry {
            time_ms,
            channel: crate::audit::Channel::Api,
            actor,
            action,
            target,
            status: response.status().as_u16(),
            detail,
        })
        .await;
    response
}

/// When a request must be answered by: reading its body and handling it share one
/// `api.request_timeout_ms`.
#[derive(Clone, Copy)]
struct RequestDeadline(tokio::time::Instant);

/// The body size a request declares (`Content-Length`), if it declares one that parses.
fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// 429 for a client holding as many requests in flight as its cap allows.
pub(super) fn too_many_in_flight(per: &str) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_in_flight",
        format!(
            "too many requests in flight from this {per}; wait for an answer before sending more"
        ),
    )
}

fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request bodies are at most {BODY_SIZE_MAX} bytes"),
    )
}

/// The OpenAPI document of this API (kept in docs/openapi.json).
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Answers 503 `timeout` when a request takes longer than `api.request_timeout_ms` to produce
/// its response (an event stream's body is not bounded: it is sent after the response starts).
async fn bounded_time(
    axum::extract::State(context): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let deadline = request.extensions().get::<RequestDeadline>().map_or_else(
        || tokio::time::Instant::now() + context.request_timeout,
        |deadline| deadline.0,
    );
    match tokio::time::timeout_at(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::retryable(
            "timeout",
            "the node did not answer in time; retry (submissions are idempotent)",
        )
        .into_response(),
    }
}

pub(super) fn parse_hash(text: &str, code: &'static str) -> Result<Hash, ApiError> {
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

/// A participant id from a path: decimal u64, else 400 `bad_participant_id`.
pub(super) fn parse_participant(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_participant_id",
            "participant ids are decimal u64",
        )
    })
}

pub(super) fn parse_u128(text: &str, code: &'static str) -> Result<u128, ApiError> {
    tpw_contracts::decimal::parse(text)
        .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, code, message))
}
