//! Prometheus metrics: counters and gauges in atomics, rendered as text at /metrics.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The node's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Transactions accepted for ordering.
    pub transactions_submitted: AtomicU64,
    /// Transactions applied with code ok.
    pub transactions_applied_ok: AtomicU64,
    /// Transactions applied with a rejection code.
    pub transactions_applied_rejected: AtomicU64,
    /// Submissions refused at admission (4xx).
    pub submissions_refused: AtomicU64,
    /// Blocks applied.
    pub blocks_applied: AtomicU64,
    /// Microseconds spent applying blocks.
    pub apply_micros: AtomicU64,
    /// Synced Raft persists.
    pub persists: AtomicU64,
    /// Microseconds spent in synced Raft persists.
    pub persist_micros: AtomicU64,
    /// Current block height.
    pub height: AtomicU64,
    /// Current Raft term.
    pub term: AtomicU64,
    /// 1 when this node leads.
    pub is_leader: AtomicU64,
    /// Raft commit index.
    pub commit_index: AtomicU64,
    /// Raft applied index.
    pub applied_index: AtomicU64,
    /// Transactions waiting for a block.
    pub queue_depth: AtomicU64,
    /// Clients waiting for commit.
    pub waiters: AtomicU64,
    /// Blocks whose leader-attested head differed from this node's chain.
    pub divergence_alarms: AtomicU64,
    /// Snapshot checkpoints made for peers.
    pub snapshots_made: AtomicU64,
    /// Snapshots installed here.
    pub snapshots_installed: AtomicU64,
    /// Snapshot fetches that failed (peer gone, bad records).
    pub snapshot_fetch_failures: AtomicU64,
    /// Blocks below a snapshot fetched from peers.
    pub blocks_backfilled: AtomicU64,
    /// Blocks below a snapshot still to fetch.
    pub blocks_missing: AtomicU64,
    /// Raft log entries compacted away.
    pub log_compacted_index: AtomicU64,
    /// Webhook deliveries acknowledged by their receivers.
    pub webhook_deliveries: AtomicU64,
    /// Webhook delivery attempts that failed and will be retried.
    pub webhook_retries: AtomicU64,
    /// Raft configuration changes applied here.
    pub conf_changes_applied: AtomicU64,
    /// Committed Raft entries not yet applied.
    pub apply_lag: AtomicU64,
    /// The most blocks one webhook endpoint is behind the head.
    pub webhook_backlog_blocks: AtomicU64,
    /// Webhook endpoints with blocks still to look through.
    pub webhook_endpoints_behind: AtomicU64,
    /// Records in this node's audit log.
    pub audit_records: AtomicU64,
    /// Voters in Raft's configuration.
    pub raft_voters: AtomicU64,
    /// Learners (observers, voters catching up) in Raft's configuration.
    pub raft_learners: AtomicU64,
}

impl Metrics {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }

    /// Sets a gauge.
    pub fn set(gauge: &AtomicU64, value: u64) {
        gauge.store(value, Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let read = |value: &AtomicU64| value.load(Ordering::Relaxed);
        let mut text = String::with_capacity(2048);
        let mut emit = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        emit(
            "tpw_transactions_submitted_total",
            "counter",
            "Transactions accepted for ordering.",
            read(&self.transactions_submitted),
        );
        emit(
            "tpw_transactions_applied_ok_total",
            "counter",
            "Transactions applied with code ok.",
            read(&self.transactions_applied_ok),
        );
        emit(
            "tpw_transactions_applied_rejected_total",
            "counter",
            "Transactions applied with a rejection code.",
            read(&self.transactions_applied_rejected),
        );
        emit(
            "tpw_submissions_refused_total",
            "counter",
            "Submission requests refused (4xx and 5xx).",
            read(&self.submissions_refused),
        );
        emit(
            "tpw_blocks_applied_total",
            "counter",
            "Blocks applied.",
            read(&self.blocks_applied),
        );
        emit(
            "tpw_apply_microseconds_total",
            "counter",
            "Time spent applying blocks.",
            read(&self.apply_micros),
        );
        emit(
            "tpw_raft_persists_total",
            "counter",
            "Synced Raft log writes.",
            read(&self.persists),
        );
        emit(
            "tpw_raft_persist_microseconds_total",
            "counter",
            "Time spent in synced Raft log writes.",
            read(&self.persist_micros),
        );
        emit(
            "tpw_block_height",
            "gauge",
            "Height of the last applied block.",
            read(&self.height),
        );
        emit(
            "tpw_raft_term",
            "gauge",
            "Current Raft term.",
            read(&self.term),
        );
        emit(
            "tpw_raft_is_leader",
            "gauge",
            "1 when this node is the Raft leader.",
            read(&self.is_leader),
        );
        emit(
            "tpw_raft_commit_index",
            "gauge",
            "Raft commit index.",
            read(&self.commit_index),
        );
        emit(
            "tpw_raft_applied_index",
            "gauge",
            "Raft applied index.",
            read(&self.applied_index),
        );
        emit(
            "tpw_block_queue_depth",
            "gauge",
            "Transactions waiting for a block.",
            read(&self.queue_depth),
        );
        emit(
            "tpw_divergence_alarms_total",
            "counter",
            "Blocks whose leader-attested head differed from this node's own chain.",
            read(&self.divergence_alarms),
        );
        emit(
            "tpw_commit_waiters",
            "gauge",
            "Transaction ids with clients waiting for their commit.",
            read(&self.waiters),
        );
        emit(
            "tpw_snapshots_made_total",
            "counter",
            "Snapshot checkpoints made for peers that need compacted entries.",
            read(&self.snapshots_made),
        );
        emit(
            "tpw_webhook_deliveries_total",
            "counter",
            "Webhook deliveries acknowledged by their receivers (this node as leader).",
            read(&self.webhook_deliveries),
        );
        emit(
            "tpw_webhook_retries_total",
            "counter",
            "Webhook delivery attempts that failed and were retried after a backoff.",
            read(&self.webhook_retries),
        );
        emit(
            "tpw_snapshots_installed_total",
            "counter",
            "Snapshots installed on this node.",
            read(&self.snapshots_installed),
        );
        emit(
            "tpw_snapshot_fetch_failures_total",
            "counter",
            "Snapshot fetches that failed and wait for the leader to resend.",
            read(&self.snapshot_fetch_failures),
        );
        emit(
            "tpw_blocks_backfilled_total",
            "counter",
            "Blocks below an installed snapshot fetched from peers and checked.",
            read(&self.blocks_backfilled),
        );
        emit(
            "tpw_blocks_missing",
            "gauge",
            "Blocks below an installed snapshot not yet fetched.",
            read(&self.blocks_missing),
        );
        emit(
            "tpw_apply_lag_entries",
            "gauge",
            "Committed Raft entries this node has not applied yet (commit index - applied index).",
            read(&self.apply_lag),
        );
        emit(
            "tpw_webhook_backlog_blocks",
            "gauge",
            "The most blocks any webhook endpoint is behind the head (leader only; 0 elsewhere).",
            read(&self.webhook_backlog_blocks),
        );
        emit(
            "tpw_webhook_endpoints_behind",
            "gauge",
            "Webhook endpoints with blocks still to deliver (leader only).",
            read(&self.webhook_endpoints_behind),
        );
        emit(
            "tpw_audit_records_total",
            "counter",
            "Records written to this node's hash-chained audit log.",
            read(&self.audit_records),
        );
        emit(
            "tpw_raft_conf_changes_total",
            "counter",
            "Raft configuration changes applied on this node (governance's node set changes).",
            read(&self.conf_changes_applied),
        );
        emit(
            "tpw_raft_voters",
            "gauge",
            "Voting nodes in Raft's configuration as this node applied it.",
            read(&self.raft_voters),
        );
        emit(
            "tpw_raft_learners",
            "gauge",
            "Learners (observers, and voters still catching up) in Raft's configuration.",
            read(&self.raft_learners),
        );
        emit(
            "tpw_raft_log_compacted_index",
            "gauge",
            "Raft log entries up to this index are compacted away.",
            read(&self.log_compacted_index),
        );
        text
    }
}
