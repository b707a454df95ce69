//! Who is asking: verifies the signed-request headers of [`crate::request_auth`] (a registered
//! key, a fresh timestamp, a nonce never seen inside the window, a good signature) and attaches
//! the [`Principal`]; and what it may read: its own records, the partners a bank member
//! sponsors, everything for a regulator. Whatever a principal may not read answers exactly as a
//! record that does not exist.

use super::{ApiError, AppState};
use crate::limits::{BODY_SIZE_MAX, REPLAY_GUARD_MAX, REQUEST_WINDOW_MS};
use crate::request_auth::{HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use crate::storage::LedgerReader;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;
use tpw_contracts::model::{Participant, Role};

/// The participant a request is signed by.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Its participant id.
    pub id: u64,
    /// Its role.
    pub role: Role,
}

impl Principal {
    /// A regulator reads everything.
    pub(super) fn sees_all(&self) -> bool {
        self.role == Role::Regulator
    }

    /// Whether it may read what belongs to `participant`: its own, a partner it sponsors (a
    /// bank member), anything (a regulator).
    pub(super) fn sees(&self, reader: &LedgerReader, participant: u64) -> Result<bool, ApiError> {
        if self.sees_all() || participant == self.id {
            return Ok(true);
        }
        if self.role != Role::BankMember {
            return Ok(false);
        }
        Ok(reader
            .participant(participant)
            .map_err(ApiError::storage)?
            .is_some_and(|found| found.bank == Some(self.id)))
    }

    /// Whether it may read whole blocks: regulators, and bank members, whose nodes hold the
    /// whole ledger anyway.
    pub(super) fn reads_blocks(&self) -> bool {
        matches!(self.role, Role::Regulator | Role::BankMember)
    }
}

/// Signatures already accepted inside the replay window, so a captured request cannot be
/// replayed. Bounded: when full of unexpired entries, new requests are told to retry.
#[derive(Default)]
pub struct ReplayGuard {
    inner: Mutex<ReplayEntries>,
}

#[derive(Default)]
struct ReplayEntries {
    seen: HashSet<[u8; 64]>,
    by_time: BTreeSet<(u64, [u8; 64])>,
}

impl ReplayGuard {
    /// Whether `signature` was already used (within the window: older ones are refused by
    /// their timestamp).
    fn seen(&self, signature: &[u8; 64]) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .seen
            .contains(signature)
    }
    /// Records `signature` taken at `timestamp_ms`; false when it was seen before.
    fn first_use(&self, signature: [u8; 64], timestamp_ms: u64, now_ms: u64) -> Result<bool, ()> {
        let mut entries = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Entries older than the window can no longer be replayed: the timestamp check refuses
        // them first.
        let horizon = now_ms.saturating_sub(REQUEST_WINDOW_MS);
        while let Some(first) = entries.by_time.first().copied() {
            if first.0 >= horizon {
                break;
            }
            entries.by_time.remove(&first);
            entries.seen.remove(&first.1);
        }
        if entries.seen.contains(&signature) {
            return Ok(false);
        }
        if entries.seen.len() >= REPLAY_GUARD_MAX {
            return Err(());
        }
        entries.seen.insert(signature);
        entries.by_time.insert((timestamp_ms, signature));
        Ok(true)
    }
}

/// The key that signed an authenticated request (a rotated-out key signs until its overlap
/// ends, so one participant may read with several).
#[derive(Clone, Copy)]
pub struct ReadKey(pub [u8; 32]);

fn replayed() -> ApiError {
    unauthorized(
        "replayed_request",
        "this signed request was already used; sign each request with a fresh nonce",
    )
}

fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

fn header<'a>(request: &'a Request, name: &str) -> Result<&'a str, ApiError> {
    request
        .headers()
        .get(name)
        .ok_or_else(|| {
            unauthorized(
                "unauthenticated",
                format!(
                    "sign the request: headers {HEADER_KEY}, {HEADER_TIMESTAMP}, {HEADER_NONCE} \
                     and {HEADER_SIGNATURE} (docs/api.md, Authentication); {name} is missing"
                ),
            )
        })?
        .to_str()
        .map_err(|_| unauthorized("bad_auth_header", format!("{name} is not ASCII")))
}

fn hex_array<const N: usize>(text: &str, name: &str) -> Result<[u8; N], ApiError> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            unauthorized(
                "bad_auth_header",
                format!("{name} must be {} hex digits", 2 * N),
            )
        })
}

/// Middleware: authenticates the request and attaches its [`Principal`], or refuses it with
/// 401 and a stable code.
pub(super) async fn authenticate(
    State(context): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match verify(&context, request).await {
        Ok(request) => {
            // The audit log (outside this layer) names who asked.
            let principal = request.extensions().get::<Principal>().cloned();
            let Some(ReadKey(key)) = request.extensions().get::<ReadKey>().copied() else {
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an authenticated request lost its key",
                )
                .into_response();
            };
            // Counted once the signature verified, so nobody can fill another key's places.
            let Some(_key_place) = context.key_requests.try_hold(key) else {
                return super::too_many_in_flight("signing key").into_response();
            };
            let mut response = next.run(request).await;
            if let Some(principal) = principal {
                response.extensions_mut().insert(principal);
            }
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn verify(context: &AppState, request: Request) -> Result<Request, ApiError> {
    let signed = SignedHeaders::parse(&request)?;
    let now_ms = crate::clock::now_ms();
    if signed.timestamp_ms.abs_diff(now_ms) > REQUEST_WINDOW_MS {
        return Err(unauthorized(
            "stale_request",
            format!(
                "the request's timestamp is more than {} s from this node's clock; sign it anew",
                REQUEST_WINDOW_MS / 1000
            ),
        ));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_SIZE_MAX)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request bodies are at most {BODY_SIZE_MAX} bytes"),
            )
        })?;
    signed.check_signature(context, &parts, &bytes)?;
    let participant = admit(context, &signed, now_ms)?;
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(principal_of(&participant));
    request.extensions_mut().insert(ReadKey(signed.key));
    Ok(request)
}

/// The authentication headers of a signed request, parsed.
struct SignedHeaders {
    key: [u8; 32],
    timestamp_ms: u64,
    nonce: String,
    signature: [u8; 64],
}

impl SignedHeaders {
    fn parse(request: &Request) -> Result<Self, ApiError> {
        let key: [u8; 32] = hex_array(header(request, HEADER_KEY)?, HEADER_KEY)?;
        let timestamp_ms = header(request, HEADER_TIMESTAMP)?
            .parse::<u64>()
            .map_err(|_| {
                unauthorized(
                    "bad_auth_header",
                    format!("{HEADER_TIMESTAMP} is decimal milliseconds since the Unix epoch"),
                )
            })?;
        let nonce = header(request, HEADER_NONCE)?.to_string();
        if !(16..=64).contains(&nonce.len()) || !nonce.bytes().all(|byte| byte.is_ascii_hexdigit())
        {
            return Err(unauthorized(
                "bad_auth_header",
                format!("{HEADER_NONCE} is 16 to 64 hex digits"),
            ));
        }
        let signature: [u8; 64] = hex_array(header(request, HEADER_SIGNATURE)?, HEADER_SIGNATURE)?;
        Ok(Self {
            key,
            timestamp_ms,
            nonce,
            signature,
        })
    }

    /// Checks the signature over this network, the method, path, timestamp, nonce and body.
    fn check_signature(
        &self,
        context: &AppState,
        parts: &axum::http::request::Parts,
        body: &[u8],
    ) -> Result<(), ApiError> {
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path(), |path| path.as_str());
        let message = crate::request_auth::message(
            &context.network_id,
            parts.method.as_str(),
            path,
            self.timestamp_ms,
            &self.nonce,
            body,
        );
        let verified = ed25519_dalek::VerifyingKey::from_bytes(&self.key)
            .and_then(|public| {
                public.verify_strict(
                    &message,
                    &ed25519_dalek::Signature::from_bytes(&self.signature),
                )
            })
            .is_ok();
        if !verified {
            return Err(unauthorized(
                "bad_signature",
                "the signature does not verify for this method, path, timestamp, nonce, body and network",
            ));
        }
        Ok(())
    }
}

/// The participant the key is registered to, once its read budget and the replay guard let
/// the request through.
fn admit(context: &AppState, signed: &SignedHeaders, now_ms: u64) -> Result<Participant, ApiError> {
    let Some(participant) = context
        .reader
        .participant_by_key(&signed.key)
        .map_err(ApiError::storage)?
    else {
        return Err(unauthorized(
            "unknown_key",
            "the key is not registered to any participant",
        ));
    };
    // A replay of a request already served is refused first, so a captured request sent
    // again costs its signer nothing; a fresh one spends the participant's own budget before
    // it takes a place in the shared replay guard.
    if context.replay.seen(&signed.signature) {
        return Err(replayed());
    }
    context
        .read_limits
        .take(&[(participant.id, 1)], std::time::Instant::now())
        .map_err(ApiError::rate_limited)?;
    match context
        .replay
        .first_use(signed.signature, signed.timestamp_ms, now_ms)
    {
        Ok(true) => Ok(participant),
        Ok(false) => Err(replayed()),
        Err(()) => Err(ApiError::retryable(
            "overloaded",
            "too many signed requests in the replay window",
        )),
    }
}

fn principal_of(participant: &Participant) -> Principal {
    Principal {
        id: participant.id,
        role: participant.role,
    }
}
