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
    /// How far this machine's wall clock is from ledger time, either way.
    pub clock_skew_ms: AtomicU64,
    /// 1 while that is over the configured bound.
    pub clock_skew_alarm: AtomicU64,
    /// Seconds until the API's TLS certificate expires (0 when expired or without TLS).
    pub tls_api_expiry_seconds: AtomicU64,
    /// 1 while the API's certificate is within its expiry warning.
    pub tls_api_expiry_alarm: AtomicU64,
    /// Seconds until the admin interface's TLS certificate expires (0 when expired or
    /// without TLS).
    pub tls_admin_expiry_seconds: AtomicU64,
    /// 1 while the admin interface's certificate is within its expiry warning.
    pub tls_admin_expiry_alarm: AtomicU64,
    /// TLS files reloaded after a change.
    pub tls_reloads: AtomicU64,
    /// TLS files changed that did not load (the previous ones stayed in use).
    pub tls_reload_failures: AtomicU64,
    /// Connections whose TLS handshake failed or timed out.
    pub tls_handshake_failures: AtomicU64,
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

    /// Prometheus text exposition: every metric family, in a fixed order.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(2048);
        for family in &FAMILIES {
            let Family {
                name,
                kind,
                help,
                value,
            } = family;
            let value = value(self).load(Ordering::Relaxed);
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        text
    }
}

/// One metric family of the exposition: its name, type and help, and the atomic it reads.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&Metrics) -> &AtomicU64,
}

/// Every metric family, in the order /metrics lists them.
const FAMILIES: [Family; 40] = [
    Family {
        name: "tpw_transactions_submitted_total",
        kind: "counter",
        help: "Transactions accepted for ordering.",
        value: |metrics| &metrics.transactions_submitted,
    },
    Family {
        name: "tpw_transactions_applied_ok_total",
        kind: "counter",
        help: "Transactions applied with code ok.",
        value: |metrics| &metrics.transactions_applied_ok,
    },
    Family {
        name: "tpw_transactions_applied_rejected_total",
        kind: "counter",
        help: "Transactions applied with a rejection code.",
        value: |metrics| &metrics.transactions_applied_rejected,
    },
    Family {
        name: "tpw_submissions_refused_total",
        kind: "counter",
        help: "Submission requests refused (4xx and 5xx).",
        value: |metrics| &metrics.submissions_refused,
    },
    Family {
        name: "tpw_blocks_applied_total",
        kind: "counter",
        help: "Blocks applied.",
        value: |metrics| &metrics.blocks_applied,
    },
    Family {
        name: "tpw_apply_microseconds_total",
        kind: "counter",
        help: "Time spent applying blocks.",
        value: |metrics| &metrics.apply_micros,
    },
    Family {
        name: "tpw_raft_persists_total",
        kind: "counter",
        help: "Synced Raft log writes.",
        value: |metrics| &metrics.persists,
    },
    Family {
        name: "tpw_raft_persist_microseconds_total",
        kind: "counter",
        help: "Time spent in synced Raft log writes.",
        value: |metrics| &metrics.persist_micros,
    },
    Family {
        name: "tpw_block_height",
        kind: "gauge",
        help: "Height of the last applied block.",
        value: |metrics| &metrics.height,
    },
    Family {
        name: "tpw_raft_term",
        kind: "gauge",
        help: "Current Raft term.",
        value: |metrics| &metrics.term,
    },
    Family {
        name: "tpw_raft_is_leader",
        kind: "gauge",
        help: "1 when this node is the Raft leader.",
        value: |metrics| &metrics.is_leader,
    },
    Family {
        name: "tpw_raft_commit_index",
        kind: "gauge",
        help: "Raft commit index.",
        value: |metrics| &metrics.commit_index,
    },
    Family {
        name: "tpw_raft_applied_index",
        kind: "gauge",
        help: "Raft applied index.",
        value: |metrics| &metrics.applied_index,
    },
    Family {
        name: "tpw_block_queue_depth",
        kind: "gauge",
        help: "Transactions waiting for a block.",
        value: |metrics| &metrics.queue_depth,
    },
    Family {
        name: "tpw_divergence_alarms_total",
        kind: "counter",
        help: "Blocks whose leader-attested head differed from this node's own chain.",
        value: |metrics| &metrics.divergence_alarms,
    },
    Family {
        name: "tpw_commit_waiters",
        kind: "gauge",
        help: "Transaction ids with clients waiting for their commit.",
        value: |metrics| &metrics.waiters,
    },
    Family {
        name: "tpw_snapshots_made_total",
        kind: "counter",
        help: "Snapshot checkpoints made for peers that need compacted entries.",
        value: |metrics| &metrics.snapshots_made,
    },
    Family {
        name: "tpw_webhook_deliveries_total",
        kind: "counter",
        help: "Webhook deliveries acknowledged by their receivers (this node as leader).",
        value: |metrics| &metrics.webhook_deliveries,
    },
    Family {
        name: "tpw_webhook_retries_total",
        kind: "counter",
        help: "Webhook delivery attempts that failed and were retried after a backoff.",
        value: |metrics| &metrics.webhook_retries,
    },
    Family {
        name: "tpw_snapshots_installed_total",
        kind: "counter",
        help: "Snapshots installed on this node.",
        value: |metrics| &metrics.snapshots_installed,
    },
    Family {
        name: "tpw_snapshot_fetch_failures_total",
        kind: "counter",
        help: "Snapshot fetches that failed and wait for the leader to resend.",
        value: |metrics| &metrics.snapshot_fetch_failures,
    },
    Family {
        name: "tpw_blocks_backfilled_total",
        kind: "counter",
        help: "Blocks below an installed snapshot fetched from peers and checked.",
        value: |metrics| &metrics.blocks_backfilled,
    },
    Family {
        name: "tpw_blocks_missing",
        kind: "gauge",
        help: "Blocks below an installed snapshot not yet fetched.",
        value: |metrics| &metrics.blocks_missing,
    },
    Family {
        name: "tpw_clock_skew_ms",
        kind: "gauge",
        help: "How far this machine's wall clock is from ledger time (either way), in ms.",
        value: |metrics| &metrics.clock_skew_ms,
    },
    Family {
        name: "tpw_clock_skew_alarm",
        kind: "gauge",
        help: "1 while this machine's wall clock and ledger time differ by more than clock.skew_alarm_ms.",
        value: |metrics| &metrics.clock_skew_alarm,
    },
    Family {
        name: "tpw_tls_api_certificate_expiry_seconds",
        kind: "gauge",
        help: "Seconds until the API's TLS certificate expires (0 when expired or plain HTTP).",
        value: |metrics| &metrics.tls_api_expiry_seconds,
    },
    Family {
        name: "tpw_tls_api_certificate_expiry_alarm",
        kind: "gauge",
        help: "1 while the API's TLS certificate is within api_tls.expiry_warning_days of expiring.",
        value: |metrics| &metrics.tls_api_expiry_alarm,
    },
    Family {
        name: "tpw_tls_admin_certificate_expiry_seconds",
        kind: "gauge",
        help: "Seconds until the admin interface's TLS certificate expires (0 when expired, plain HTTP or off).",
        value: |metrics| &metrics.tls_admin_expiry_seconds,
    },
    Family {
        name: "tpw_tls_admin_certificate_expiry_alarm",
        kind: "gauge",
        help: "1 while the admin interface's TLS certificate is within admin_tls.expiry_warning_days of expiring.",
        value: |metrics| &metrics.tls_admin_expiry_alarm,
    },
    Family {
        name: "tpw_tls_reloads_total",
        kind: "counter",
        help: "TLS certificate, key, client CA or CRL files reloaded after a change.",
        value: |metrics| &metrics.tls_reloads,
    },
    Family {
        name: "tpw_tls_reload_failures_total",
        kind: "counter",
        help: "Changed TLS files that did not load; the previous configuration stayed in use.",
        value: |metrics| &metrics.tls_reload_failures,
    },
    Family {
        name: "tpw_tls_handshake_failures_total",
        kind: "counter",
        help: "Connections whose TLS handshake failed (unknown CA, missing or revoked client certificate, plain HTTP) or timed out.",
        value: |metrics| &metrics.tls_handshake_failures,
    },
    Family {
        name: "tpw_apply_lag_entries",
        kind: "gauge",
        help:
            "Committed Raft entries this node has not applied yet (commit index - applied index).",
        value: |metrics| &metrics.apply_lag,
    },
    Family {
        name: "tpw_webhook_backlog_blocks",
        kind: "gauge",
        help: "The most blocks any webhook endpoint is behind the head (leader only; 0 elsewhere).",
        value: |metrics| &metrics.webhook_backlog_blocks,
    },
    Family {
        name: "tpw_webhook_endpoints_behind",
        kind: "gauge",
        help: "Webhook endpoints with blocks still to deliver (leader only).",
        value: |metrics| &metrics.webhook_endpoints_behind,
    },
    Family {
        name: "tpw_audit_records_total",
        kind: "counter",
        help: "Records written to this node's hash-chained audit log.",
        value: |metrics| &metrics.audit_records,
    },
    Family {
        name: "tpw_raft_conf_changes_total",
        kind: "counter",
        help: "Raft configuration changes applied on this node (governance's node set changes).",
        value: |metrics| &metrics.conf_changes_applied,
    },
    Family {
        name: "tpw_raft_voters",
        kind: "gauge",
        help: "Voting nodes in Raft's configuration as this node applied it.",
        value: |metrics| &metrics.raft_voters,
    },
    Family {
        name: "tpw_raft_learners",
        kind: "gauge",
        help: "Learners (observers, and voters still catching up) in Raft's configuration.",
        value: |metrics| &metrics.raft_learners,
    },
    Family {
        name: "tpw_raft_log_compacted_index",
        kind: "gauge",
        help: "Raft log entries up to this index are compacted away.",
        value: |metrics| &metrics.log_compacted_index,
    },
];
