//! The node's one reading of the wall clock: a leader's block stamp, signed-request windows,
//! webhook timestamps. A leaf, so any module may read the time without importing the loop.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch by this machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}
