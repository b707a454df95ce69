//! Transaction envelopes, as the API and every block bring them: decoding must refuse any
//! bytes that are not one canonical envelope and never panic; what decodes must re-encode to
//! the very input (the transaction id and idempotency rely on it), verify its signature
//! without panicking, and show in the API view the operation it carries.

use tpw_contracts::model::account_flags;
use tpw_contracts::ops::OpenAccount;
use tpw_contracts::sig::{verify_one, SignatureItem};
use tpw_contracts::tx::SIGNING_DOMAIN;
use tpw_contracts::view::TransactionView;
use tpw_contracts::{Operation, Transaction};

/// The network id of docs/encoding-vectors.json, whose envelopes seed the corpus.
const VECTORS_NETWORK_ID: [u8; 32] = [
    0x11, 0x8f, 0xcd, 0xea, 0x41, 0x11, 0x80, 0x93, 0x13, 0xc9, 0x54, 0x70, 0x68, 0x7c, 0x78, 0x18,
    0xa9, 0x24, 0x09, 0x9d, 0x95, 0x8c, 0x6e, 0x38, 0xd7, 0xea, 0xac, 0x19, 0x23, 0xeb, 0x57, 0x5d,
];

/// Offset of the network id in an envelope (after the version byte).
const NETWORK_ID_OFFSET: usize = 1;

/// The property, for one input: panics when it does not hold.
pub fn run(data: &[u8]) {
    // The vectors' network refuses most inputs early (wrong network); the network the input
    // names lets the fuzzer reach the body decoder with any network id.
    let _ = Transaction::from_bytes(data, &VECTORS_NETWORK_ID);
    let Some(named) = data
        .get(NETWORK_ID_OFFSET..NETWORK_ID_OFFSET + 32)
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
    else {
        return;
    };
    let Ok(transaction) = Transaction::from_bytes(data, &named) else {
        return;
    };
    check_decoded(data, &transaction);
}

/// The properties every decoded envelope has.
fn check_decoded(data: &[u8], transaction: &Transaction) {
    assert_eq!(transaction.to_bytes(), data, "canonical re-encoding");
    assert_eq!(
        Transaction::from_bytes(&transaction.to_bytes(), &transaction.network_id).as_ref(),
        Ok(transaction),
        "decode inverts encode"
    );
    let message = transaction.signed_message();
    assert!(message.starts_with(SIGNING_DOMAIN));
    assert_eq!(
        &message[SIGNING_DOMAIN.len()..],
        &data[..data.len() - 64],
        "the signature covers every envelope byte before it"
    );
    let _ = verify_one(&SignatureItem {
        key: &transaction.signer,
        signature: &transaction.signature,
        message: &message,
    });
    let view = TransactionView::from(transaction);
    let json = serde_json::to_string(&view).expect("views serialize");
    let back: TransactionView = serde_json::from_str(&json).expect("a view reads back");
    assert_eq!(back, view, "the view survives JSON");
    for (operation, shown) in transaction.body.operations.iter().zip(&view.operations) {
        assert_eq!(
            shown.to_operation().as_ref(),
            Ok(&shown_as(operation)),
            "the view names the operation"
        );
    }
}

/// The operation as the view can show it: account flags the ledger does not define have no
/// name, so the view leaves them out (apply refuses them).
fn shown_as(operation: &Operation) -> Operation {
    match operation {
        Operation::OpenAccount(OpenAccount {
            account,
            owner,
            asset,
            flags,
        }) => Operation::OpenAccount(OpenAccount {
            account: *account,
            owner: *owner,
            asset: *asset,
            flags: flags & account_flags::ALL,
        }),
        other => other.clone(),
    }
}
