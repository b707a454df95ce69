//! POST /v1/transactions: admit, mark in flight, answer what is already committed, queue the
//! rest for the raft loop, and wait for commits when asked.

use super::admission::{admit, admit_envelopes, Admitted};
use super::{ApiError, AppState};
use crate::api_types::*;
use crate::limits::{
    ADMIT_INLINE_TRANSACTIONS_MAX, BODY_SIZE_MAX, WAITERS_MAX, WAIT_TIMEOUT_MS_DEFAULT,
};
use crate::mailbox::{Command, Committed, SubmitError};
use crate::metrics::Metrics;
use crate::network::{ForwardRefusal, ForwardReply};
use crate::storage::{LedgerReader, StorageError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::mpsc::TrySendError;
use std::sync::Arc;
use std::time::Duration;
use tpw_contracts::model::Hash;
use tpw_contracts::ResultCode;

fn committed_result(tx_id: &Hash, committed: &Committed) -> SubmitResult {
    SubmitResult {
        tx_id: hex::encode(tx_id),
        status: "committed".into(),
        height: Some(committed.height),
        position: Some(committed.position),
        code: Some(committed.receipt.code),
        outcome: Some(
            if committed.receipt.code == ResultCode::Ok {
                "settled"
            } else {
                "rejected"
            }
            .into(),
        ),
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
        outcome: None,
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

pub(super) async fn submit(
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
    let request = parse_request(body)?;
    let (wait, timeout_ms) = (
        request.wait,
        request.timeout_ms.unwrap_or(WAIT_TIMEOUT_MS_DEFAULT),
    );
    // The whole request, a forward to the leader included, ends within timeout_ms.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    let (admitted, _signer_places) = if request.transactions.len() <= ADMIT_INLINE_TRANSACTIONS_MAX
    {
        // A few signature checks cost less than the two thread hand-offs of the blocking pool.
        admit(context, &request)?
    } else {
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
    let (fresh, receivers) = mark_in_flight(context, admitted, wait, &mut results)?;
    let to_queue = answer_committed(context, fresh, &mut results)?;
    queue(context, to_queue, deadline).await?;
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
    Ok(respond(wait, results))
}

/// Reads and checks the request body.
fn parse_request(body: Result<Bytes, BytesRejection>) -> Result<SubmitRequest, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            let message = format!(
                "the body exceeds {BODY_SIZE_MAX} bytes; send fewer transactions per request"
            );
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_body", rejection.body_text())
        }
    })?;
    SubmitRequest::from_json(&body).map_err(|error| {
        let status = if error.too_large() {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::new(status, error.code(), error.message())
    })
}

type Receivers = Vec<(
    usize,
    Hash,
    tokio::sync::oneshot::Receiver<Result<Committed, SubmitError>>,
)>;
type Fresh = Vec<(usize, Hash, Vec<u8>)>;

/// Marks the transactions received and registers waiters, under the one in-flight lock.
/// Returns the transactions this request is first to receive, and the waiters' receivers.
fn mark_in_flight(
    context: &AppState,
    admitted: Vec<Admitted>,
    wait: bool,
    results: &mut [Option<SubmitResult>],
) -> Result<(Fresh, Receivers), ApiError> {
    let mut in_flight = context
        .shared
        .in_flight
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if in_flight.waiter_count() + admitted.len() > WAITERS_MAX {
        return Err(ApiError::unavailable(SubmitError::Overloaded));
    }
    let mut fresh = Vec::new();
    let mut receivers = Vec::new();
    for (index, admitted) in admitted.into_iter().enumerate() {
        let Admitted {
            tx_id,
            signer,
            envelope,
        } = admitted;
        if in_flight.receive(tx_id, signer) {
            fresh.push((index, tx_id, envelope));
        }
        let (sender, receiver) = tokio::sync::oneshot::channel();
        if wait && in_flight.add_waiter(tx_id, sender) {
            receivers.push((index, tx_id, receiver));
        } else {
            results[index] = Some(pending_result(&tx_id, "received"));
        }
    }
    Ok((fresh, receivers))
}

/// A transaction marked received here that is already in a block was committed before this
/// request marked it (the raft loop writes the index before it clears `received`): it is
/// answered from the block instead of being ordered twice. Returns the rest, to queue.
fn answer_committed(
    context: &AppState,
    fresh: Fresh,
    results: &mut [Option<SubmitResult>],
) -> Result<Vec<(Hash, Vec<u8>)>, ApiError> {
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
    Ok(to_queue)
}

/// Hands the envelopes to the raft loop, or forwards them to the leader by `deadline`; on
/// refusal, their waiters are released.
async fn queue(
    context: &AppState,
    to_queue: Vec<(Hash, Vec<u8>)>,
    deadline: tokio::time::Instant,
) -> Result<(), ApiError> {
    if to_queue.is_empty() {
        return Ok(());
    }
    let queued_ids: Vec<Hash> = to_queue.iter().map(|(tx_id, _)| *tx_id).collect();
    let (leads, leader) = {
        let status = context
            .shared
            .status
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (status.role == "leader", status.leader_id)
    };
    let sent = match (&context.network, leader) {
        // A follower or observer hands the envelopes to the leader; this node's waiters are
        // woken when it applies the leader's block, like everyone else's.
        (Some(network), Some(leader)) if !leads && leader != context.node_id => {
            let envelopes = to_queue.into_iter().map(|(_, envelope)| envelope).collect();
            let marks = ForwardMarks {
                context,
                tx_ids: &queued_ids,
                leader,
                armed: true,
            };
            let forwarded =
                tokio::time::timeout_at(deadline, network.forward(leader, envelopes)).await;
            marks.disarm();
            match forwarded {
                Ok(sent) => sent.map_err(refusal_error),
                Err(_) => Err(ApiError::retryable(
                    "leader_unreachable",
                    "the leader did not take the transactions within timeout_ms; retry, or submit to another node",
                )),
            }
        }
        _ => queue_here(context, to_queue)
            .await
            .map_err(ApiError::unavailable),
    };
    let forwarded = !leads && leader.is_some_and(|leader| leader != context.node_id);
    let mut in_flight = context
        .shared
        .in_flight
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Err(error) = sent {
        let reason = SubmitError::NotLeader { leader };
        for tx_id in &queued_ids {
            in_flight.forget(tx_id, &reason);
        }
        return Err(error);
    }
    if forwarded && context.network.is_some() {
        in_flight.handed_off(&queued_ids);
    }
    Ok(())
}

/// The in-flight marks of transactions being forwarded. If the request ends before the
/// forward does (its client gave up and the request was dropped), they are cleared, so a
/// resubmission here is forwarded again instead of finding them taken until they expire. The
/// forward may still reach the leader: it orders a transaction once however often it arrives.
struct ForwardMarks<'a> {
    context: &'a AppState,
    tx_ids: &'a [Hash],
    leader: u64,
    armed: bool,
}

impl ForwardMarks<'_> {
    /// The forward ended: the request itself settles the marks.
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for ForwardMarks<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut in_flight = self
            .context
            .shared
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let reason = SubmitError::NotLeader {
            leader: Some(self.leader),
        };
        for tx_id in self.tx_ids {
            in_flight.forget(tx_id, &reason);
        }
    }
}

/// Hands envelopes to this node's raft loop.
async fn queue_here(context: &AppState, to_queue: Vec<(Hash, Vec<u8>)>) -> Result<(), SubmitError> {
    let (reply, outcome) = tokio::sync::oneshot::channel();
    match context.commands.try_send(Command::Submit {
        envelopes: to_queue,
        reply,
    }) {
        Ok(()) => outcome.await.unwrap_or(Err(SubmitError::Stopping)),
        Err(TrySendError::Full(_)) => Err(SubmitError::Overloaded),
        Err(TrySendError::Disconnected(_)) => Err(SubmitError::Stopping),
    }
}

fn refusal_error(refusal: ForwardRefusal) -> ApiError {
    match refusal {
        ForwardRefusal::NotLeader(leader) => {
            ApiError::unavailable(SubmitError::NotLeader { leader })
        }
        ForwardRefusal::Overloaded => ApiError::unavailable(SubmitError::Overloaded),
        ForwardRefusal::Stopping => ApiError::unavailable(SubmitError::Stopping),
        ForwardRefusal::Unreachable => ApiError::retryable(
            "leader_unreachable",
            "the leader could not be reached from this node; retry, or submit to another node",
        ),
        ForwardRefusal::Refused { code, message } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            format!("the leader refused it: {message}"),
        ),
    }
}

/// Serves a submission forwarded by another node: admits it again and queues it here.
pub(crate) async fn serve_forwarded(context: AppState, envelopes: Vec<Vec<u8>>) -> ForwardReply {
    let admitted = {
        let context = Arc::clone(&context);
        tokio::task::spawn_blocking(move || admit_envelopes(&context, envelopes))
            .await
            .map_err(|_| ForwardRefusal::Stopping)?
            .map_err(ApiError::into_refusal)?
    };
    let mut results: Vec<Option<SubmitResult>> = vec![None; admitted.len()];
    let (fresh, _) =
        mark_in_flight(&context, admitted, false, &mut results).map_err(ApiError::into_refusal)?;
    let to_queue =
        answer_committed(&context, fresh, &mut results).map_err(ApiError::into_refusal)?;
    if to_queue.is_empty() {
        return Ok(());
    }
    let queued_ids: Vec<Hash> = to_queue.iter().map(|(tx_id, _)| *tx_id).collect();
    let result = queue_here(&context, to_queue).await;
    if let Err(error) = &result {
        let mut in_flight = context
            .shared
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for tx_id in &queued_ids {
            in_flight.forget(tx_id, error);
        }
    }
    result.map_err(|error| match error {
        SubmitError::NotLeader { leader } => ForwardRefusal::NotLeader(leader),
        SubmitError::Overloaded => ForwardRefusal::Overloaded,
        SubmitError::Stopping => ForwardRefusal::Stopping,
    })
}

/// 200 when every waited-for transaction committed ok, 422 naming the first rejection, 202
/// otherwise.
fn respond(wait: bool, results: Vec<SubmitResult>) -> Response {
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
    (status, Json(SubmitResponse { results, error })).into_response()
}
