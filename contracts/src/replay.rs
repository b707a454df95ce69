//! Once per intended submission: the validity window of an envelope and the record of the
//! envelopes applied within it.
//!
//! The transaction id is blake3 of the envelope, and the envelope carries the signer's nonce,
//! so a retry (the same bytes) has the same id and a repeat meant to apply again (a new nonce)
//! has another. The ledger records each applied id until its `valid_until_ms` has passed and
//! refuses the same id again as `replayed`; after that the envelope itself is `expired`, so the
//! record only holds what may still arrive, at most [`VALIDITY_WINDOW_MAX_MS`] of traffic.

use crate::context::{ApplyError, BlockContext};
use crate::limits::{REPLAYS_PRUNED_PER_BLOCK_MAX, VALIDITY_WINDOW_MAX_MS};
use crate::model::Hash;
use crate::overlay::Overlay;
use crate::result::ResultCode;
use crate::state::{prefix, replay_key, StateStore};
use crate::tx::Validity;

/// Why an envelope may not apply in this block because of its window, if it may not.
pub fn window_refusal(validity: Validity, block_time_ms: u64) -> Option<ResultCode> {
    if validity.valid_until_ms < block_time_ms {
        Some(ResultCode::Expired)
    } else if validity.valid_until_ms - block_time_ms > VALIDITY_WINDOW_MAX_MS {
        Some(ResultCode::ValidityTooLong)
    } else {
        None
    }
}

/// Whether these exact envelope bytes were applied already (within their window).
pub(crate) fn was_applied(
    overlay: &Overlay<'_>,
    validity: Validity,
    tx_id: &Hash,
) -> Result<bool, ApplyError> {
    Ok(overlay
        .get(&replay_key(validity.valid_until_ms, tx_id))?
        .is_some())
}

/// Records that these envelope bytes applied (whatever their operations' outcome).
pub(crate) fn record_applied(overlay: &mut Overlay<'_>, validity: Validity, tx_id: &Hash) {
    overlay.put(replay_key(validity.valid_until_ms, tx_id), Some(Vec::new()));
}

/// Removes, at the start of a block, the replay records whose window ended before the block's
/// time (at most [`REPLAYS_PRUNED_PER_BLOCK_MAX`]; the rest go in the next blocks, and until
/// then the envelopes they name are refused as expired anyway).
pub(crate) fn prune_expired(
    overlay: &mut Overlay<'_>,
    store: &dyn StateStore,
    context: BlockContext,
) -> Result<usize, ApplyError> {
    let due = store.scan(
        &[prefix::REPLAY],
        &replay_key(context.time_ms, &[0; 32]),
        REPLAYS_PRUNED_PER_BLOCK_MAX,
    )?;
    let count = due.len();
    for (key, _) in due {
        overlay.put(key, None);
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_open_from_now_to_one_hour_ahead() {
        // Proves the window's edges: valid at exactly its end, expired 1 ms after, and refused
        // when it ends more than the longest window after the block.
        let at = |until| window_refusal(Validity::new(1, until), 10_000);
        assert_eq!(at(9_999), Some(ResultCode::Expired));
        assert_eq!(at(10_000), None);
        assert_eq!(at(10_000 + VALIDITY_WINDOW_MAX_MS), None);
        assert_eq!(
            at(10_001 + VALIDITY_WINDOW_MAX_MS),
            Some(ResultCode::ValidityTooLong)
        );
        assert_eq!(at(u64::MAX), Some(ResultCode::ValidityTooLong));
    }
}
