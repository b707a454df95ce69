//! GET /v1/events: the principal's ledger events as Server-Sent Events, from a cursor (the
//! `after` parameter or the `Last-Event-ID` header a reconnecting client sends) or from now,
//! then live as blocks are applied. Every event carries its cursor as the SSE id, so a client
//! that reconnects, to this node or another, gets each later event exactly once.

use super::concurrency::Held;
use super::extract::ApiQuery;
use super::{ApiContext, ApiError, AppState, Principal, ReadKey};
use crate::events::{Cursor, LedgerEvent};
use crate::limits::{
    EVENT_STREAM_BUFFER_MAX, EVENT_STREAM_MISSING_BLOCK_RETRY, EVENT_STREAM_STOP_CHECK,
};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    after: Option<String>,
}

pub(super) async fn stream(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ReadKey(key)): Extension<ReadKey>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let resume = match (query.after, headers.get("last-event-id")) {
        (Some(after), _) => Some(after),
        (None, Some(value)) => Some(
            value
                .to_str()
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_cursor",
                        "the Last-Event-ID header is not ASCII, so it is no cursor: height or height.sequence",
                    )
                })?
                .to_string(),
        ),
        (None, None) => None,
    };
    let cursor = match resume {
        Some(text) => Cursor::parse(&text).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_cursor",
                format!("{text:?} is not a cursor: height or height.sequence"),
            )
        })?,
        None => Cursor {
            height: *context.shared.head_height.borrow(),
            sequence: None,
        },
    };
    let Some(place) = context.participant_streams.try_hold(principal.id) else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            "this participant holds as many event streams open as api.event_streams_per_participant allows; close one first",
        ));
    };
    let (sender, receiver) = tokio::sync::mpsc::channel(EVENT_STREAM_BUFFER_MAX);
    let reader = StreamReader {
        principal,
        key,
        _place: place,
    };
    tokio::spawn(produce(context, reader, cursor, sender));
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|event| (Ok::<Event, std::convert::Infallible>(event), receiver))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Whether the principal may see an event: it concerns the principal (or, for a bank, one of
/// its sponsored partners); a regulator sees all.
pub fn event_visible(
    context: &ApiContext,
    principal: &Principal,
    known: &mut HashMap<u64, bool>,
    event: &LedgerEvent,
) -> Result<bool, ApiError> {
    if principal.sees_all() {
        return Ok(true);
    }
    for party in &event.parties {
        let sees = match known.get(party) {
            Some(sees) => *sees,
            None => {
                let sees = principal.sees(&context.reader, *party)?;
                known.insert(*party, sees);
                sees
            }
        };
        if sees {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Who reads a stream: the participant, the key that opened it, and its place among the
/// participant's open streams (given back when the stream ends).
struct StreamReader {
    principal: Principal,
    key: [u8; 32],
    _place: Held<u64>,
}

impl StreamReader {
    /// Whether the key that opened the stream still signs for its participant at the head:
    /// a stream ends once its key is revoked, or rotated out and past its overlap, or its
    /// participant is gone.
    fn key_signs(&self, context: &AppState) -> bool {
        matches!(
            context.reader.participant_by_key(&self.key),
            Ok(Some(participant)) if participant.id == self.principal.id
        )
    }
}

async fn produce(
    context: AppState,
    reader: StreamReader,
    cursor: Cursor,
    sender: tokio::sync::mpsc::Sender<Event>,
) {
    let principal = &reader.principal;
    let mut watch = context.shared.head_height.subscribe();
    let mut height = match cursor.sequence {
        Some(_) => cursor.height.max(1),
        None => cursor.height.saturating_add(1),
    };
    let mut known = HashMap::new();
    loop {
        let head = *watch.borrow_and_update();
        while height <= head {
            // Checked against the head before each block, so no block at or after the one
            // that took the key away reaches the stream.
            if !reader.key_signs(&context) {
                return;
            }
            let events =
                match context
                    .events
                    .block_events(&context.reader, &context.network_id, height)
                {
                    Ok(Some(events)) => events,
                    Ok(None) => {
                        tokio::select! {
                            _ = tokio::time::sleep(EVENT_STREAM_MISSING_BLOCK_RETRY) => continue,
                            _ = sender.closed() => return,
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, height, "event stream could not read a block");
                        return;
                    }
                };
            for event in events.iter() {
                if !cursor.before(event.view.height, event.view.sequence) {
                    continue;
                }
                match event_visible(&context, principal, &mut known, event) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => return,
                }
                let Ok(data) = serde_json::to_string(&event.view) else {
                    return;
                };
                let message = Event::default()
                    .id(event.view.cursor.clone())
                    .event("ledger")
                    .data(data);
                if sender.send(message).await.is_err() {
                    return;
                }
            }
            height += 1;
        }
        tokio::select! {
            changed = watch.changed() => if changed.is_err() { return },
            _ = sender.closed() => return,
            // A stopping node ends its streams; clients resume elsewhere with their cursor.
            _ = tokio::time::sleep(EVENT_STREAM_STOP_CHECK) => {
                if context.shared.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
            }
        }
    }
}
