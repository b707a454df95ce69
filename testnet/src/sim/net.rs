//! The simulated network: every message between nodes and between clients and nodes is
//! delayed, and may be dropped, duplicated (and so reordered), or cut by a partition. All of it
//! is drawn from the run's seeded generator, so one seed gives one history.

use super::rng::SimRng;
use std::collections::BTreeMap;
use tpw_consensus::raft_types::Message;
use tpw_consensus::replica::StagedState;
use tpw_contracts::model::Hash;
use tpw_contracts::ResultCode;

/// Who sends or receives a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    /// A node, by Raft id.
    Node(u64),
    /// A client, by index.
    Client(usize),
}

/// A node's answer to a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Committed at this height with this result code.
    Committed { height: u64, code: ResultCode },
    /// This node does not lead; the known leader, if any.
    NotLeader(Option<u64>),
    /// Accepted but then dropped (leadership lost before commit): submit again.
    Retry,
    /// Refused at admission (the envelope does not decode or verify), as the node answers 400.
    Refused,
}

/// What travels.
#[derive(Debug, Clone)]
pub enum Payload {
    /// A Raft message between nodes.
    Raft(Message),
    /// A node asks the sender of a snapshot message for its records (`/tpw/snapshot/1`).
    SnapshotFetch { index: u64 },
    /// The records of the snapshot at `index`, or `None` when the peer no longer keeps it.
    SnapshotData {
        index: u64,
        staged: Option<Box<StagedState>>,
    },
    /// The transport's word to a node on whether its snapshot message reached `peer` (a local
    /// message: it never crosses the network).
    SnapshotStatus { peer: u64, delivered: bool },
    /// A node asks for block records from `top` down (backfill below a snapshot).
    BlocksRequest { top: u64, count: u64 },
    /// Block records from `top` down, as many as the peer holds in a row.
    Blocks { top: u64, records: Vec<Vec<u8>> },
    /// A node asks a peer for the node set its ledger records.
    NodesRequest,
    /// A peer's node records, from its ledger at `height`.
    Nodes {
        height: u64,
        records: Vec<tpw_contracts::governance::NodeRecord>,
    },
    /// A client submits a signed envelope.
    Submit { envelope: Vec<u8>, tx_id: Hash },
    /// A node answers a client about one transaction.
    Answer { tx_id: Hash, answer: Answer },
}

/// A message on its way.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: Endpoint,
    pub to: Endpoint,
    pub payload: Payload,
}

/// How hostile the network is right now.
#[derive(Debug, Clone, Copy)]
pub struct Weather {
    /// Chance of losing a message, per million.
    pub drop_ppm: u64,
    /// Chance of delivering a message twice, per million.
    pub duplicate_ppm: u64,
    /// Shortest one-way delay, ms.
    pub delay_min_ms: u64,
    /// Longest one-way delay, ms (delays vary, so messages overtake each other).
    pub delay_max_ms: u64,
}

impl Weather {
    /// A healthy local network.
    pub const CALM: Weather = Weather {
        drop_ppm: 0,
        duplicate_ppm: 0,
        delay_min_ms: 1,
        delay_max_ms: 8,
    };
}

/// Messages in flight, ordered by delivery time then by send order.
pub struct Network {
    queue: BTreeMap<(u64, u64), Envelope>,
    sequence: u64,
    /// Partition group of each node; nodes in different groups cannot reach each other.
    /// Clients reach every node.
    groups: BTreeMap<u64, u8>,
    pub weather: Weather,
    /// Messages lost to drops or partitions.
    pub dropped: u64,
    /// Messages delivered twice.
    pub duplicated: u64,
}

impl Network {
    pub fn new() -> Self {
        Self {
            queue: BTreeMap::new(),
            sequence: 0,
            groups: BTreeMap::new(),
            weather: Weather::CALM,
            dropped: 0,
            duplicated: 0,
        }
    }

    /// Whether `from` can reach `to` across the current partition.
    pub fn connected(&self, from: Endpoint, to: Endpoint) -> bool {
        match (from, to) {
            (Endpoint::Node(a), Endpoint::Node(b)) => {
                self.groups.get(&a).copied().unwrap_or(0)
                    == self.groups.get(&b).copied().unwrap_or(0)
            }
            _ => true,
        }
    }

    /// Splits the nodes: each node id goes to the group given.
    pub fn partition(&mut self, groups: BTreeMap<u64, u8>) {
        self.groups = groups;
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.groups.clear();
    }

    /// Sends a message at `now_ms`, subject to the weather and partitions (a node's message
    /// to itself is local and always arrives). Returns whether it is on its way.
    pub fn send(&mut self, rng: &mut SimRng, now_ms: u64, envelope: Envelope) -> bool {
        if envelope.from == envelope.to {
            self.sequence += 1;
            self.queue.insert((now_ms + 1, self.sequence), envelope);
            return true;
        }
        if !self.connected(envelope.from, envelope.to) || rng.chance_ppm(self.weather.drop_ppm) {
            self.dropped += 1;
            return false;
        }
        let copies = if rng.chance_ppm(self.weather.duplicate_ppm) {
            self.duplicated += 1;
            2
        } else {
            1
        };
        for copy in 0..copies {
            let delay = rng.between(self.weather.delay_min_ms, self.weather.delay_max_ms);
            let due = now_ms + delay + copy;
            self.sequence += 1;
            self.queue.insert((due, self.sequence), envelope.clone());
        }
        true
    }

    /// Takes the next message due at or before `now_ms`. A message whose path a partition
    /// cut while it was in flight is lost.
    pub fn next_due(&mut self, now_ms: u64) -> Option<Envelope> {
        loop {
            let (&key, _) = self.queue.first_key_value()?;
            if key.0 > now_ms {
                return None;
            }
            let envelope = self.queue.remove(&key)?;
            if self.connected(envelope.from, envelope.to) {
                return Some(envelope);
            }
            self.dropped += 1;
        }
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}
