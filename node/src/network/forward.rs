//! The `/tpw/forward/1` protocol's node side: the codecs live in
//! [`tpw_consensus::wire::forward`]; here are the submission limit the leader applies to a
//! forwarded frame and the handler the API installs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
pub(super) use tpw_consensus::wire::forward::{decode_reply, encode_reply, encode_request};
pub use tpw_consensus::wire::forward::{ForwardRefusal, ForwardReply};

/// How a node serves forwarded submissions (installed by the API).
pub type ForwardHandler =
    Arc<dyn Fn(Vec<Vec<u8>>) -> Pin<Box<dyn Future<Output = ForwardReply> + Send>> + Send + Sync>;

/// Decodes a forwarded submission of at most one API request's worth of envelopes.
pub(super) fn decode_request(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    tpw_consensus::wire::forward::decode_request(bytes, crate::limits::SUBMIT_TRANSACTIONS_MAX)
        .map_err(|error| error.to_string())
}
