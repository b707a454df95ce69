//! What the HTTP API parses from a client: the POST /v1/transactions body (JSON, then its
//! checks, then the hex envelopes admission decodes and verifies) and the decimal ids of
//! paths. Nothing may panic; an accepted body satisfies every check, and the request
//! survives JSON.
//!
//! The body's type and checks are the API crate's (tpw-api), the very code the node runs,
//! linked without building the node.

use tpw_api::limits::{SUBMIT_TRANSACTIONS_MAX, WAIT_TIMEOUT_MS_MAX};
use tpw_api::types::SubmitRequest;
use tpw_contracts::sig::{verify_all, SignatureItem};
use tpw_contracts::Transaction;

/// Envelopes decoded and verified per input: enough to reach admission's batch check, few
/// enough to keep the fuzzer fast.
const ENVELOPES_CHECKED_MAX: usize = 8;

/// The property, for one input: panics when it does not hold.
pub fn run(data: &[u8]) {
    submit_body(data);
    if let Ok(text) = std::str::from_utf8(data) {
        path_texts(text);
    }
}

/// The submission body, as `parse_request` and admission see it.
fn submit_body(data: &[u8]) {
    let request = match SubmitRequest::from_json(data) {
        Ok(request) => request,
        Err(error) => {
            assert!(!error.code().is_empty());
            assert!(!error.message().is_empty());
            return;
        }
    };
    assert!(!request.transactions.is_empty());
    assert!(request.transactions.len() <= SUBMIT_TRANSACTIONS_MAX);
    assert!(request.timeout_ms.unwrap_or(0) <= WAIT_TIMEOUT_MS_MAX);
    let json = serde_json::to_vec(&request).expect("a request serializes");
    let back = SubmitRequest::from_json(&json).expect("a serialized request is accepted");
    assert_eq!(back.transactions, request.transactions);
    assert_eq!(
        (back.wait, back.timeout_ms),
        (request.wait, request.timeout_ms)
    );
    let mut transactions = Vec::new();
    for text in request.transactions.iter().take(ENVELOPES_CHECKED_MAX) {
        let Ok(bytes) = hex::decode(text) else {
            continue;
        };
        // Admission checks the node's network; the network the envelope names lets the fuzzer
        // past that check to the body and the signature.
        let Some(network_id) = bytes
            .get(1..33)
            .and_then(|id| <[u8; 32]>::try_from(id).ok())
        else {
            continue;
        };
        if let Ok(transaction) = Transaction::from_bytes(&bytes, &network_id) {
            transactions.push(transaction);
        }
    }
    let messages: Vec<Vec<u8>> = transactions
        .iter()
        .map(Transaction::signed_message)
        .collect();
    let items: Vec<SignatureItem<'_>> = transactions
        .iter()
        .zip(&messages)
        .map(|(transaction, message)| SignatureItem {
            key: &transaction.signer,
            signature: &transaction.signature,
            message,
        })
        .collect();
    assert_eq!(verify_all(&items).len(), items.len());
}

/// Decimal ids in paths (`parse_u128` of the read handlers): digits only, so the value prints
/// back as the text without its leading zeros.
fn path_texts(text: &str) {
    if let Ok(value) = tpw_contracts::decimal::parse(text) {
        let digits = text.trim_start_matches('0');
        let expected = if digits.is_empty() { "0" } else { digits };
        assert_eq!(value.to_string(), expected);
    }
}
