//! The operator's admin interface, on its own listener (`admin_listen`, loopback): online
//! backups, the audit log, and controls for drills such as cutting this node off from its
//! peers. Off unless configured; every request carries the operator's token
//! (`Authorization: Bearer <token>`, from `admin_token_file`), and every request, refused or
//! not, is recorded in the audit log.

use crate::limits::{
    ADMIN_BODY_SIZE_MAX, AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX, STEP_DOWN_POLL_INTERVAL,
    STEP_DOWN_WAIT,
};
use crate::network::NetworkHandle;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

/// Body of POST /admin/v1/partition.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionRequest {
    /// Node ids to cut this node off from; empty heals every partition.
    pub isolate_from: Vec<u64>,
}

/// Body of POST /admin/v1/backup.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// An absolute path that does not exist yet, on the node's machine; its parent must.
    pub path: std::path::PathBuf,
}

/// What a backup holds: written as `backup.json` beside its `db/` folder, and returned.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BackupManifest {
    /// The node that made it.
    pub node_id: u64,
    /// The network, hex.
    pub network_id: String,
    /// The ledger head in the backup.
    pub height: u64,
    /// Its hash, hex.
    pub head_hash: String,
    /// Its state root, hex.
    pub state_root: String,
    /// The Raft index the ledger was applied to.
    pub applied_index: u64,
    /// When it was made (node clock, ms since the epoch).
    pub created_ms: u64,
    /// How long it took, ms.
    pub took_ms: u64,
}

/// What the admin handlers reach.
#[derive(Clone)]
struct AdminState {
    network: Option<NetworkHandle>,
    db: crate::storage::Db,
    node_id: u64,
    /// The raft loop's command queue and its published status (step-down).
    raft: Option<RaftControl>,
}

/// The raft loop, as the admin interface reaches it.
#[derive(Clone)]
pub struct RaftControl {
    /// Its command queue.
    pub commands: std::sync::mpsc::SyncSender<crate::mailbox::Command>,
    /// Its published status.
    pub shared: std::sync::Arc<crate::mailbox::Shared>,
}

/// Query of GET /admin/v1/audit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// First sequence (default 1).
    pub from: Option<u64>,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<usize>,
}

/// The admin routes, answering only requests that carry `token`.
pub fn router(
    network: Option<NetworkHandle>,
    db: crate::storage::Db,
    node_id: u64,
    token: &str,
    audit: crate::audit::AuditLog,
    raft: Option<RaftControl>,
) -> Router {
    let expected = blake3::hash(token.as_bytes());
    Router::new()
        .route("/admin/v1/partition", post(partition))
        .route("/admin/v1/backup", post(backup))
        .route("/admin/v1/audit", get(audit_records))
        .route("/admin/v1/step-down", post(step_down))
        .with_state(AdminState {
            network,
            db,
            node_id,
            raft,
        })
        .layer(axum::middleware::from_fn_with_state(expected, authenticate))
        .layer(axum::middleware::from_fn_with_state(audit, audited))
}

/// Records every admin request (after authentication decided) in the audit log.
async fn audited(
    State(audit): State<crate::audit::AuditLog>,
    request: Request,
    next: Next,
) -> Response {
    let time_ms = crate::clock::now_ms();
    let action = format!("{} {}", request.method(), request.uri().path());
    let target = request.uri().query().unwrap_or_default().to_string();
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, ADMIN_BODY_SIZE_MAX).await else {
        return admin_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("admin request bodies are at most {ADMIN_BODY_SIZE_MAX} bytes"),
        )
        .into_response();
    };
    let detail = if bytes.is_empty() {
        [0u8; 32]
    } else {
        *blake3::hash(&bytes).as_bytes()
    };
    let response = next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await;
    let status = response.status().as_u16();
    audit
        .record(crate::audit::Entry {
            time_ms,
            channel: crate::audit::Channel::Admin,
            actor: if status == 401 {
                "anonymous"
            } else {
                "operator"
            }
            .into(),
            action,
            target,
            status,
            detail,
        })
        .await;
    response
}

/// The audit log from a sequence: `{"records": [...], "written": N}`.
async fn audit_records(
    State(state): State<AdminState>,
    query: Result<axum::extract::Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> (StatusCode, Json<serde_json::Value>) {
    let query = match query {
        Ok(axum::extract::Query(query)) => query,
        Err(rejection) => {
            return admin_error(StatusCode::BAD_REQUEST, "bad_query", rejection.body_text())
        }
    };
    let limit = query
        .limit
        .unwrap_or(AUDIT_PAGE_DEFAULT)
        .clamp(1, AUDIT_PAGE_MAX);
    let db = state.db.clone();
    let from = query.from.unwrap_or(1);
    match tokio::task::spawn_blocking(move || crate::audit::read(&db, from, limit)).await {
        Ok(Ok(records)) => (
            StatusCode::OK,
            Json(serde_json::json!({ "records": records })),
        ),
        Ok(Err(error)) => {
            crate::storage::note_corruption(&error);
            admin_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                error.to_string(),
            )
        }
        Err(error) => admin_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        ),
    }
}

/// Hands this leader's leadership to the most up-to-date voter that answers it, and waits
/// (up to 5 s) until another node leads: `{"from", "to", "leader", "term"}`. For draining a
/// node before maintenance such as its own key rotation.
async fn step_down(State(state): State<AdminState>) -> (StatusCode, Json<serde_json::Value>) {
    let Some(raft) = state.raft else {
        return admin_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this node runs no raft loop".into(),
        );
    };
    match request_step_down(&raft).await {
        Ok(target) => wait_for_new_leader(&raft, state.node_id, target).await,
        Err(refused) => refused,
    }
}

/// Asks the raft loop to hand its leadership over; the voter it hands it to.
async fn request_step_down(
    raft: &RaftControl,
) -> Result<u64, (StatusCode, Json<serde_json::Value>)> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    if raft
        .commands
        .try_send(crate::mailbox::Command::StepDown { reply })
        .is_err()
    {
        return Err(admin_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the raft loop's queue is full; try again".into(),
        ));
    }
    match answer.await {
        Ok(Ok(target)) => Ok(target),
        Ok(Err(error @ crate::mailbox::StepDownError::NotLeader(_))) => Err(admin_error(
            StatusCode::CONFLICT,
            "not_leader",
            error.to_string(),
        )),
        Ok(Err(error)) => Err(admin_error(
            StatusCode::CONFLICT,
            "no_transfer_target",
            error.to_string(),
        )),
        Err(_) => Err(admin_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "the node is stopping".into(),
        )),
    }
}

/// Waits (up to [`STEP_DOWN_WAIT`]) until a node other than this one leads.
async fn wait_for_new_leader(
    raft: &RaftControl,
    node_id: u64,
    target: u64,
) -> (StatusCode, Json<serde_json::Value>) {
    let deadline = tokio::time::Instant::now() + STEP_DOWN_WAIT;
    loop {
        let (leader, term) = {
            let status = raft
                .shared
                .status
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (status.leader_id, status.term)
        };
        if leader.is_some_and(|leader| leader != node_id) {
            return (
                StatusCode::OK,
                Json(serde_json::json!({
                    "from": node_id,
                    "to": target,
                    "leader": leader,
                    "term": term,
                })),
            );
        }
        if tokio::time::Instant::now() >= deadline {
            return admin_error(
                StatusCode::GATEWAY_TIMEOUT,
                "transfer_timeout",
                format!(
                    "leadership did not move to node {target} within 5 s; this node may still lead"
                ),
            );
        }
        tokio::time::sleep(STEP_DOWN_POLL_INTERVAL).await;
    }
}

fn admin_error(
    status: StatusCode,
    code: &str,
    message: String,
) -> (StatusCode, Json<serde_json::Value>) {
    (
        status,
        Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
}

/// Takes an online backup: a RocksDB checkpoint (hard links where the file system allows) of
/// the whole database while the node keeps serving, then a manifest read from the backup
/// itself. A backup is a data folder: `tpw verify --data-dir <path>` replays it.
async fn backup(
    State(state): State<AdminState>,
    body: Result<Json<BackupRequest>, axum::extract::rejection::JsonRejection>,
) -> (StatusCode, Json<serde_json::Value>) {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                rejection.body_text(),
            )
        }
    };
    let path = request.path;
    let parent_exists = path.parent().is_some_and(std::path::Path::is_dir);
    if !path.is_absolute() || path.exists() || !parent_exists {
        return admin_error(
            StatusCode::BAD_REQUEST,
            "bad_backup_path",
            format!(
                "{} must be an absolute path that does not exist yet, in a folder that does",
                path.display()
            ),
        );
    }
    let made = tokio::task::spawn_blocking(move || make_backup(&state, &path)).await;
    match made {
        Ok(Ok(manifest)) => {
            tracing::info!(
                height = manifest.height,
                took_ms = manifest.took_ms,
                "backup made"
            );
            (
                StatusCode::OK,
                Json(serde_json::to_value(&manifest).unwrap_or_default()),
            )
        }
        Ok(Err(error)) => admin_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backup_failed",
            format!("{error:#}"),
        ),
        Err(_) => admin_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backup_failed",
            "the backup task failed".into(),
        ),
    }
}

fn make_backup(state: &AdminState, path: &std::path::Path) -> anyhow::Result<BackupManifest> {
    use anyhow::Context;
    let started = std::time::Instant::now();
    // Readable by the node's user only, like its data folder: a backup holds the whole ledger.
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
    }
    state
        .db
        .checkpoint(&path.join("db"))
        .context("checkpoint failed")?;
    let copy = crate::storage::Db::open_read_only(&path.join("db"))?;
    let (head, applied_index) = crate::storage::LedgerReader::new(copy).head()?;
    let manifest = BackupManifest {
        node_id: state.node_id,
        network_id: hex::encode(head.network_id),
        height: head.height,
        head_hash: hex::encode(head.hash),
        state_root: hex::encode(head.commitment.root()),
        applied_index,
        created_ms: crate::clock::now_ms(),
        took_ms: started.elapsed().as_millis() as u64,
    };
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path.join("backup.json"))
            .context("cannot write backup.json")?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .context("cannot write backup.json")?;
    }
    Ok(manifest)
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
    State(AdminState { network, .. }): State<AdminState>,
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
