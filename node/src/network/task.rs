//! The network task: owns the libp2p swarm, sends what the node queues for its peers, and
//! handles the swarm's events (Raft messages, forwarded submissions, snapshot requests and
//! their answers), handing peers' Raft messages to the raft loop once admitted.

use super::{
    forward, Behaviour, BehaviourEvent, ForwardHandler, ForwardRefusal, ForwardReply, Member,
    Outbound, PeerDirectory, SnapshotWiring,
};
use crate::limits::{FORWARD_RESPONSES_MAX, REFUSAL_LOG_INTERVAL};
use crate::mailbox::{Command, RaftInbox};
use futures::StreamExt;
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use libp2p::PeerId;
use protobuf::Message as _;
use std::collections::HashMap;
use std::sync::mpsc::TrySendError as StdTrySendError;
use std::sync::{Arc, OnceLock};
use tpw_consensus::raft_types::{Message, MessageType};
use tpw_consensus::wire::{admit_raft_message, RaftAdmissionError};

/// A request-response event of one protocol (all three frame raw bytes).
type ProtocolEvent = request_response::Event<Vec<u8>, Vec<u8>>;

pub(super) struct NetworkTask {
    pub(super) swarm: libp2p::Swarm<Behaviour>,
    pub(super) peers: PeerDirectory,
    pub(super) commands: RaftInbox,
    pub(super) handler: Arc<OnceLock<ForwardHandler>>,
    pub(super) snapshots: Arc<OnceLock<SnapshotWiring>>,
    pub(super) forward_permits: Arc<tokio::sync::Semaphore>,
    pub(super) pending_forwards:
        HashMap<request_response::OutboundRequestId, tokio::sync::oneshot::Sender<ForwardReply>>,
    pub(super) pending_snapshots: HashMap<
        request_response::OutboundRequestId,
        tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>,
    >,
    /// Raft snapshot messages on their way, by request, with the node they go to.
    pub(super) snapshot_sends: HashMap<request_response::OutboundRequestId, u64>,
    /// Nodes the operator cut this node off from (admin partition).
    pub(super) partitioned: std::collections::BTreeSet<u64>,
    /// The refused incoming connections' log lines, at most one per interval.
    pub(super) refusals_logged: LogThrottle,
}

/// Lets one log line through per interval and counts the ones held back, so a flood of
/// refused connections cannot flood the log.
#[derive(Default)]
pub(super) struct LogThrottle {
    last: Option<std::time::Instant>,
    held_back: u64,
}

impl LogThrottle {
    /// `Some(lines held back since the last one)` when a line may go out now.
    fn allow(&mut self, now: std::time::Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_INTERVAL)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

/// A response computed off the network task, for the protocol it answers.
pub(super) enum Answer {
    Forward(request_response::ResponseChannel<Vec<u8>>, Vec<u8>),
    Snapshot(request_response::ResponseChannel<Vec<u8>>, Vec<u8>),
}

impl NetworkTask {
    pub(super) async fn run(mut self, mut outbound: tokio::sync::mpsc::Receiver<Outbound>) {
        let (answers, mut answered) = tokio::sync::mpsc::channel::<Answer>(FORWARD_RESPONSES_MAX);
        loop {
            tokio::select! {
                work = outbound.recv() => match work {
                    Some(work) => self.send(work),
                    None => return,
                },
                Some(answer) = answered.recv() => {
                    let behaviour = self.swarm.behaviour_mut();
                    let _ = match answer {
                        Answer::Forward(channel, bytes) => behaviour.forward.send_response(channel, bytes),
                        Answer::Snapshot(channel, bytes) => behaviour.snapshot.send_response(channel, bytes),
                    };
                }
                event = self.swarm.select_next_some() => self.handle_event(event, &answers),
            }
        }
    }

    fn send(&mut self, work: Outbound) {
        match work {
            Outbound::Raft(batch) => self.send_raft(batch),
            Outbound::Partition(isolate_from) => self.partition(&isolate_from),
            Outbound::Members(members) => self.set_members(&members),
            Outbound::Snapshot { to, request, reply } => {
                self.send_snapshot_request(to, request, reply)
            }
            Outbound::Forward {
                to,
                envelopes,
                reply,
            } => self.send_forward(to, &envelopes, reply),
        }
    }

    /// Sends each Raft message to its peer, remembering the snapshot messages until they are
    /// acknowledged or fail.
    fn send_raft(&mut self, batch: Vec<Message>) {
        for message in batch {
            let snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
            let Some((peer, addresses)) = self.peers.by_node.get(&message.to) else {
                tracing::warn!(
                    to = message.to,
                    "raft message for a node outside the node set dropped"
                );
                continue;
            };
            match message.write_to_bytes() {
                Ok(bytes) => {
                    let id = self.swarm.behaviour_mut().raft.send_request_with_addresses(
                        peer,
                        bytes,
                        addresses.clone(),
                    );
                    if snapshot {
                        self.snapshot_sends.insert(id, message.to);
                    }
                }
                Err(error) => tracing::error!(%error, "raft message could not be encoded"),
            }
        }
    }

    /// Cuts this node off from `isolate_from` and admits every other member again.
    fn partition(&mut self, isolate_from: &[u64]) {
        self.partitioned = isolate_from.iter().copied().collect();
        let members: Vec<(u64, PeerId)> = self
            .peers
            .by_node
            .iter()
            .map(|(node, (peer, _))| (*node, *peer))
            .collect();
        for (node, peer) in members {
            if isolate_from.contains(&node) {
                self.swarm.behaviour_mut().allowed.disallow_peer(peer);
                tracing::warn!(node_id = node, "partitioned from peer by the operator");
            } else {
                self.swarm.behaviour_mut().allowed.allow_peer(peer);
            }
        }
    }

    fn send_snapshot_request(
        &mut self,
        to: u64,
        request: Vec<u8>,
        reply: tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>,
    ) {
        match self.peers.by_node.get(&to) {
            Some((peer, addresses)) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .snapshot
                    .send_request_with_addresses(peer, request, addresses.clone());
                self.pending_snapshots.insert(id, reply);
            }
            None => {
                let _ = reply.send(Err(format!("node {to} is not in the node set")));
            }
        }
    }

    fn send_forward(
        &mut self,
        to: u64,
        envelopes: &[Vec<u8>],
        reply: tokio::sync::oneshot::Sender<ForwardReply>,
    ) {
        match self.peers.by_node.get(&to) {
            Some((peer, addresses)) => {
                let request = forward::encode_request(envelopes);
                let id = self
                    .swarm
                    .behaviour_mut()
                    .forward
                    .send_request_with_addresses(peer, request, addresses.clone());
                self.pending_forwards.insert(id, reply);
            }
            None => {
                let _ = reply.send(Err(ForwardRefusal::Unreachable));
            }
        }
    }

    /// Admits the new node set's peer ids, and refuses and disconnects those no longer in it.
    fn set_members(&mut self, members: &[Member]) {
        let directory = match PeerDirectory::of(members, self.peers.me) {
            Ok(directory) => directory,
            Err(error) => {
                tracing::error!(%error, "node set update refused: a key is not a peer identity");
                return;
            }
        };
        let gone: Vec<PeerId> = self
            .peers
            .by_peer
            .keys()
            .filter(|peer| !directory.by_peer.contains_key(peer))
            .copied()
            .collect();
        for peer in gone {
            self.swarm.behaviour_mut().allowed.disallow_peer(peer);
            let _ = self.swarm.disconnect_peer_id(peer);
            tracing::warn!(%peer, "peer left the node set (removed, or its key rotated): disconnected");
        }
        for (peer, node) in &directory.by_peer {
            if !self.peers.by_peer.contains_key(peer) {
                tracing::info!(%peer, node_id = node, "peer joined the node set");
            }
            // An operator's partition outlives node set changes.
            if self.partitioned.contains(node) {
                self.swarm.behaviour_mut().allowed.disallow_peer(*peer);
            } else {
                self.swarm.behaviour_mut().allowed.allow_peer(*peer);
            }
        }
        self.peers = directory;
    }

    fn handle_event(
        &mut self,
        event: SwarmEvent<BehaviourEvent>,
        answers: &tokio::sync::mpsc::Sender<Answer>,
    ) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Raft(event)) => self.handle_raft(event),
            SwarmEvent::Behaviour(BehaviourEvent::Snapshot(event)) => {
                self.handle_snapshot(event, answers)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Forward(event)) => {
                self.handle_forward(event, answers)
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                if let Some(held_back) = self.refusals_logged.allow(std::time::Instant::now()) {
                    tracing::warn!(address = %send_back_addr, %error, held_back, "incoming connection refused (held_back: refusals not logged since the last line)");
                }
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                tracing::info!(peer = %peer_id, node_id = ?self.peers.by_peer.get(&peer_id), "peer connected");
            }
            SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                tracing::info!(peer = %peer_id, cause = ?cause.map(|cause| cause.to_string()), "peer disconnected");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "peer transport listening")
            }
            _ => {}
        }
    }

    /// A peer's Raft message (acknowledged at once, then delivered), or the fate of one this
    /// node sent: a snapshot message's delivery is reported to Raft, a failure names the peer
    /// unreachable.
    fn handle_raft(&mut self, event: ProtocolEvent) {
        use request_response::{Event, Message as Wire};
        match event {
            Event::Message {
                peer,
                message: Wire::Request {
                    request, channel, ..
                },
                ..
            } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .raft
                    .send_response(channel, Vec::new());
                deliver(
                    &self.peers,
                    &self.commands,
                    self.snapshots.get(),
                    &peer,
                    &request,
                );
            }
            Event::Message {
                message: Wire::Response { request_id, .. },
                ..
            } => {
                if let Some(node) = self.snapshot_sends.remove(&request_id) {
                    let _ = self.commands.try_send(Command::SnapshotStatus {
                        node,
                        delivered: true,
                    });
                }
            }
            Event::OutboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                tracing::debug!(%peer, %error, "raft message not delivered");
                if let Some(node) = self.snapshot_sends.remove(&request_id) {
                    let _ = self.commands.try_send(Command::SnapshotStatus {
                        node,
                        delivered: false,
                    });
                }
                if let Some(node) = self.peers.by_peer.get(&peer) {
                    let _ = self.commands.try_send(Command::Unreachable(*node));
                }
            }
            _ => {}
        }
    }

    /// A peer's snapshot request (served off the task), or the answer to one of this node's.
    fn handle_snapshot(
        &mut self,
        event: ProtocolEvent,
        answers: &tokio::sync::mpsc::Sender<Answer>,
    ) {
        use request_response::{Event, Message as Wire};
        match event {
            Event::Message {
                peer,
                message: Wire::Request {
                    request, channel, ..
                },
                ..
            } => self.serve_snapshot(peer, request, channel, answers),
            Event::Message {
                message:
                    Wire::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending_snapshots.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.pending_snapshots.remove(&request_id) {
                    let _ = reply.send(Err(format!("snapshot request failed: {error}")));
                }
            }
            _ => {}
        }
    }

    /// A forwarded submission (served through the API's handler), or the leader's answer to
    /// one this node forwarded.
    fn handle_forward(
        &mut self,
        event: ProtocolEvent,
        answers: &tokio::sync::mpsc::Sender<Answer>,
    ) {
        use request_response::{Event, Message as Wire};
        match event {
            Event::Message {
                peer,
                message: Wire::Request {
                    request, channel, ..
                },
                ..
            } => self.serve_forward(peer, request, channel, answers),
            Event::Message {
                message:
                    Wire::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending_forwards.remove(&request_id) {
                    let _ = reply.send(forward::decode_reply(&response));
                }
            }
            Event::OutboundFailure {
                request_id, error, ..
            } => {
                tracing::warn!(%error, "forwarding to the leader failed");
                if let Some(reply) = self.pending_forwards.remove(&request_id) {
                    let _ = reply.send(Err(ForwardRefusal::Unreachable));
                }
            }
            _ => {}
        }
    }

    /// Answers a forwarded submission through the handler the API installed.
    fn serve_forward(
        &mut self,
        peer: PeerId,
        request: Vec<u8>,
        channel: request_response::ResponseChannel<Vec<u8>>,
        answers: &tokio::sync::mpsc::Sender<Answer>,
    ) {
        let envelopes = match forward::decode_request(&request) {
            Ok(envelopes) => envelopes,
            Err(error) => {
                tracing::warn!(%peer, %error, "malformed forwarded submission");
                let refusal = ForwardRefusal::Refused {
                    code: "malformed_forward".into(),
                    message: error,
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .forward
                    .send_response(channel, forward::encode_reply(&Err(refusal)));
                return;
            }
        };
        let Some(handler) = self.handler.get().cloned() else {
            let _ = self.swarm.behaviour_mut().forward.send_response(
                channel,
                forward::encode_reply(&Err(ForwardRefusal::Stopping)),
            );
            return;
        };
        let Ok(permit) = Arc::clone(&self.forward_permits).try_acquire_owned() else {
            let busy = forward::encode_reply(&Err(ForwardRefusal::Overloaded));
            let _ = self
                .swarm
                .behaviour_mut()
                .forward
                .send_response(channel, busy);
            return;
        };
        let answers = answers.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let reply = handler(envelopes).await;
            let _ = answers
                .send(Answer::Forward(channel, forward::encode_reply(&reply)))
                .await;
        });
    }

    /// Answers a snapshot request off the network task (it reads RocksDB).
    fn serve_snapshot(
        &mut self,
        peer: PeerId,
        request: Vec<u8>,
        channel: request_response::ResponseChannel<Vec<u8>>,
        answers: &tokio::sync::mpsc::Sender<Answer>,
    ) {
        let Some(wiring) = self.snapshots.get().cloned() else {
            let refusal = crate::snapshot::SnapshotResponse::Unavailable("starting".into());
            let _ = self
                .swarm
                .behaviour_mut()
                .snapshot
                .send_response(channel, refusal.to_bytes());
            return;
        };
        tracing::debug!(%peer, "serving a snapshot request");
        let answers = answers.clone();
        tokio::spawn(async move {
            let response = tokio::task::spawn_blocking(move || wiring.server.serve(&request))
                .await
                .unwrap_or_else(|_| {
                    crate::snapshot::SnapshotResponse::Unavailable("serving failed".into())
                        .to_bytes()
                });
            let _ = answers.send(Answer::Snapshot(channel, response)).await;
        });
    }
}

/// Hands a peer's Raft message to the raft loop, after [`admit_raft_message`]: it decodes, it
/// claims to come from the node that sent it, and that node's role may send its kind.
fn deliver(
    peers: &PeerDirectory,
    commands: &RaftInbox,
    snapshots: Option<&SnapshotWiring>,
    peer: &PeerId,
    bytes: &[u8],
) {
    let Some(node) = peers.by_peer.get(peer) else {
        tracing::warn!(%peer, "raft message from a peer outside the node set dropped");
        return;
    };
    let message = match admit_raft_message(bytes, *node, peers.observers.contains(node)) {
        Ok(message) => message,
        Err(RaftAdmissionError::Malformed(error)) => {
            tracing::warn!(node_id = node, %error, "malformed raft message dropped");
            return;
        }
        Err(RaftAdmissionError::WrongSender { claimed }) => {
            tracing::warn!(
                node_id = node,
                claimed,
                "raft message claiming another sender dropped"
            );
            return;
        }
        Err(RaftAdmissionError::KindNotAllowed(kind)) => {
            tracing::warn!(node_id = node, kind = ?kind, "raft message of a kind this peer may not send dropped");
            return;
        }
    };
    if message.get_msg_type() == MessageType::MsgSnapshot {
        // Raft sees a snapshot message only once its records are fetched and verified.
        match snapshots {
            Some(wiring) => {
                if wiring.messages.try_send(message).is_err() {
                    tracing::debug!(node_id = node, "snapshot receiver busy: message dropped");
                }
            }
            None => tracing::warn!(
                node_id = node,
                "snapshot message before snapshots are wired: dropped"
            ),
        }
        return;
    }
    match commands.try_send(Command::Step(Box::new(message))) {
        Ok(()) => {}
        Err(StdTrySendError::Full(_)) => {
            tracing::warn!(node_id = node, "raft loop busy: message dropped")
        }
        Err(StdTrySendError::Disconnected(_)) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_refusal_line_per_interval_and_the_rest_counted() {
        let mut throttle = LogThrottle::default();
        let start = std::time::Instant::now();
        assert_eq!(throttle.allow(start), Some(0));
        for _ in 0..1000 {
            assert_eq!(throttle.allow(start), None);
        }
        assert_eq!(throttle.allow(start + REFUSAL_LOG_INTERVAL), Some(1000));
    }
}
