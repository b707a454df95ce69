//! Crash points for tests: with `TPW_FAILPOINT=<point>[:<n>]` in its environment, the node
//! aborts the n-th time (the first by default) it reaches the named point, as a SIGKILL or a
//! power cut would stop it there: no destructor runs and nothing more is written. Without the
//! variable a point costs one atomic load.
//!
//! The points sit at each boundary between persisting and applying (docs/testing.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable naming the point.
pub const VARIABLE: &str = "TPW_FAILPOINT";

/// Every crash point, in the order a block meets them.
pub const POINTS: &[&str] = &[
    // Before the synced write of new Raft entries and hard state.
    "raft_persist_before",
    // After it, before the messages that must follow persistence are sent.
    "raft_persist_after",
    // After the (unsynced) write of a new commit index.
    "raft_commit_after",
    // Before a committed block is applied to the ledger.
    "apply_before",
    // After the block's ledger batch is written, before clients are told.
    "apply_after",
    // After the Raft log is compacted.
    "compact_after",
];

static ARMED: OnceLock<Option<(&'static str, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

/// Reads [`VARIABLE`]; an unknown point or a bad count is an error naming the valid ones.
pub fn init() -> Result<(), String> {
    let armed = match std::env::var(VARIABLE) {
        Err(_) => None,
        Ok(text) => Some(parse(&text)?),
    };
    let _ = ARMED.set(armed);
    if let Some((point, count)) = armed {
        tracing::warn!(point, count, "crash point armed: the node will abort there");
    }
    Ok(())
}

fn parse(text: &str) -> Result<(&'static str, u64), String> {
    let (name, count) = match text.split_once(':') {
        Some((name, count)) => {
            let count: u64 = count
                .parse()
                .ok()
                .filter(|count| *count > 0)
                .ok_or_else(|| format!("{VARIABLE}: {count:?} is not a positive count"))?;
            (name, count)
        }
        None => (text, 1),
    };
    let point = POINTS
        .iter()
        .find(|point| **point == name)
        .ok_or_else(|| format!("{VARIABLE}: no crash point {name:?}; the points are {POINTS:?}"))?;
    Ok((point, count))
}

/// Aborts here if this is the armed point's n-th hit.
pub fn point(name: &'static str) {
    let Some(Some((armed, count))) = ARMED.get() else {
        return;
    };
    if *armed != name {
        return;
    }
    if HITS.fetch_add(1, Ordering::Relaxed) + 1 == *count {
        eprintln!("crash point {name} reached (hit {count}): aborting");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_parse_with_and_without_a_count_and_bad_ones_are_named() {
        assert_eq!(parse("apply_after"), Ok(("apply_after", 1)));
        assert_eq!(parse("apply_before:7"), Ok(("apply_before", 7)));
        assert!(parse("apply_before:0").unwrap_err().contains("positive"));
        assert!(parse("apply_before:x").unwrap_err().contains("positive"));
        assert!(parse("nowhere")
            .unwrap_err()
            .contains("raft_persist_before"));
    }
}
