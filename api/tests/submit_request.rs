//! The submission body's checks, on bodies a hostile client might send.

use tpw_api::limits::SUBMIT_TRANSACTIONS_MAX;
use tpw_api::types::{SubmitRequest, SubmitRequestError};

fn body_of(count: usize, item: &str) -> Vec<u8> {
    let items = vec![format!("\"{item}\""); count].join(",");
    format!("{{\"transactions\":[{items}],\"wait\":false}}").into_bytes()
}

#[test]
fn the_transaction_count_is_checked_while_parsing() {
    // Proves the limit holds exactly, and that a 16 MiB body of millions of empty strings is
    // refused as too large (413), not parsed into millions of strings and then refused.
    let at_limit = SubmitRequest::from_json(&body_of(SUBMIT_TRANSACTIONS_MAX, "00")).unwrap();
    assert_eq!(at_limit.transactions.len(), SUBMIT_TRANSACTIONS_MAX);
    let over = SubmitRequest::from_json(&body_of(SUBMIT_TRANSACTIONS_MAX + 1, "00")).unwrap_err();
    assert_eq!(over, SubmitRequestError::BatchTooLarge);
    assert!(over.too_large());
    assert_eq!(over.code(), "batch_too_large");
    let flood = body_of(6_000_000, "");
    assert!(flood.len() > 16 * 1024 * 1024);
    assert_eq!(
        SubmitRequest::from_json(&flood).unwrap_err(),
        SubmitRequestError::BatchTooLarge
    );
}

#[test]
fn other_malformed_bodies_keep_their_codes() {
    // Proves the bounded list parser still tells a wrong shape from a long list.
    for (body, code) in [
        (&b"{\"transactions\":[],\"wait\":false}"[..], "empty_batch"),
        (
            &b"{\"transactions\":[1],\"wait\":false}"[..],
            "malformed_json",
        ),
        (&b"{\"transactions\":\"00\"}"[..], "malformed_json"),
        (
            &b"{\"transactions\":[\"00\"],\"extra\":1}"[..],
            "malformed_json",
        ),
        (
            &b"{\"transactions\":[\"00\"],\"timeout_ms\":60001}"[..],
            "bad_timeout",
        ),
    ] {
        let error = SubmitRequest::from_json(body).unwrap_err();
        assert_eq!(error.code(), code, "{}", String::from_utf8_lossy(body));
    }
}
