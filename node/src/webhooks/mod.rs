//! Webhook delivery. A participant registers endpoints on the ledger (`set_webhook`); the
//! leader POSTs each of the participant's events to each endpoint, in order, signed by the
//! delivering node's key (docs/api.md, Webhooks). A failed delivery is retried with exponential
//! backoff; after `webhooks.max_attempts` it moves to the endpoint's dead-letter list, from
//! which the participant can replay it. Progress (the delivered-up-to cursor, dead letters) is
//! kept in RocksDB and rides in the leader's next block proposal, so every node stores it and a
//! new leader resumes where the old one stopped; a delivery made just before a failover may be
//! made again, and its delivery id lets the receiver drop the repeat. Deliveries go over https
//! (or plain http where allowed) to public destinations only, as [`transport`] describes.

use crate::api::{ApiContext, Principal};
use crate::config::WebhookConfig;
use crate::events::{Cursor, LedgerEvent};
use crate::limits::{WEBHOOK_POLL_INTERVAL, WEBHOOK_REPLAY_BATCH_MAX};
use crate::signer::Signer;
use crate::storage::webhooks as store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tpw_contracts::block::{DeadLetter, WebhookProgress};
use tpw_contracts::model::Hash;

/// Header carrying the delivery id: `participant.endpoint.height.sequence`.
pub const HEADER_DELIVERY: &str = "tpw-delivery";
/// Header carrying the delivering node's id.
pub const HEADER_NODE: &str = "tpw-node";
/// Header carrying the delivery time in ms since the Unix epoch.
pub const HEADER_TIMESTAMP: &str = "tpw-timestamp";
/// Header carrying the node's ed25519 signature (128 hex digits).
pub const HEADER_SIGNATURE: &str = "tpw-signature";
/// Domain tag of a delivery signature.
pub const DOMAIN: &[u8] = b"tpwalletoec/webhook";

/// The bytes a delivery signature covers: `"tpwalletoec/webhook" 0x00 || network_id ||
/// delivery_id || 0x0a || timestamp (decimal) || 0x0a || blake3(body)`.
pub fn delivery_message(
    network_id: &Hash,
    delivery_id: &str,
    timestamp_ms: u64,
    body: &[u8],
) -> Vec<u8> {
    let mut message = Vec::with_capacity(DOMAIN.len() + 128);
    message.extend_from_slice(DOMAIN);
    message.push(0);
    message.extend_from_slice(network_id);
    message.extend_from_slice(delivery_id.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(timestamp_ms.to_string().as_bytes());
    message.push(b'\n');
    message.extend_from_slice(blake3::hash(body).as_bytes());
    message
}

/// Checks a delivery's signature against a node's public key (what a receiver does).
pub fn verify_delivery(
    node_key: &[u8; 32],
    network_id: &Hash,
    delivery_id: &str,
    timestamp_ms: u64,
    body: &[u8],
    signature_hex: &str,
) -> bool {
    let Some(signature) = hex::decode(signature_hex)
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
    else {
        return false;
    };
    ed25519_dalek::VerifyingKey::from_bytes(node_key)
        .and_then(|key| {
            key.verify_strict(
                &delivery_message(network_id, delivery_id, timestamp_ms, body),
                &ed25519_dalek::Signature::from_bytes(&signature),
            )
        })
        .is_ok()
}

pub mod transport;
pub use transport::Transport;

pub use crate::mailbox::Checkpoint;

pub use crate::mailbox::Replays;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs the deliverer until the node stops: one worker per registered endpoint while this
/// node leads, each delivering through `transport`.
pub async fn run(
    context: Arc<ApiContext>,
    node_key: Arc<dyn Signer>,
    config: WebhookConfig,
    transport: Transport,
) {
    let transport = Arc::new(transport);
    let mut workers: HashMap<(u64, u16), tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        if context
            .shared
            .stopping
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            for (_, worker) in workers.drain() {
                worker.abort();
                let _ = worker.await;
            }
            return;
        }
        workers.retain(|_, handle| !handle.is_finished());
        if !leads(&context) {
            lock(&context.shared.webhook_checkpoint).clear();
        }
        if leads(&context) {
            match context.reader.webhook_endpoints() {
                Ok(endpoints) => {
                    for (participant, endpoint, registered, url) in endpoints {
                        if workers.contains_key(&(participant, endpoint)) {
                            continue;
                        }
                        let worker = Worker {
                            context: Arc::clone(&context),
                            transport: Arc::clone(&transport),
                            node_key: Arc::clone(&node_key),
                            config: config.clone(),
                            participant,
                            endpoint,
                            url,
                        };
                        workers.insert(
                            (participant, endpoint),
                            tokio::spawn(worker.run(registered)),
                        );
                    }
                }
                Err(error) => tracing::error!(%error, "webhook endpoints unreadable"),
            }
        }
        tokio::time::sleep(WEBHOOK_POLL_INTERVAL).await;
    }
}

fn leads(context: &ApiContext) -> bool {
    context
        .shared
        .status
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .role
        == "leader"
}

struct Worker {
    context: Arc<ApiContext>,
    transport: Arc<Transport>,
    node_key: Arc<dyn Signer>,
    config: WebhookConfig,
    participant: u64,
    endpoint: u16,
    url: String,
}

/// What delivering one event came to.
enum Attempt {
    Delivered,
    Failed(String),
}

impl Worker {
    /// Whether this worker should go on: still the leader, the endpoint still registered with
    /// the same URL, the node not stopping.
    fn current(&self) -> bool {
        if self
            .context
            .shared
            .stopping
            .load(std::sync::atomic::Ordering::Relaxed)
            || !leads(&self.context)
        {
            return false;
        }
        match self.context.reader.webhook_endpoints() {
            Ok(endpoints) => endpoints.iter().any(|(participant, endpoint, _, url)| {
                *participant == self.participant && *endpoint == self.endpoint && *url == self.url
            }),
            Err(_) => false,
        }
    }

    async fn run(self, registered: u64) {
        self.serve(registered).await;
        self.forget_backlog();
    }

    /// Records how many blocks this endpoint still has to look through.
    fn note_backlog(&self, blocks: u64) {
        lock(&self.context.shared.webhook_backlog)
            .insert((self.participant, self.endpoint), blocks);
    }

    fn forget_backlog(&self) {
        lock(&self.context.shared.webhook_backlog).remove(&(self.participant, self.endpoint));
    }

    async fn serve(&self, registered: u64) {
        let db = self.context.reader.db().clone();
        let principal = match self.context.reader.participant(self.participant) {
            Ok(Some(participant)) => Principal {
                id: participant.id,
                role: participant.role,
            },
            _ => return,
        };
        let Some(mut cursor) = self.start_cursor(&db, registered) else {
            return;
        };
        let mut known = HashMap::new();
        let mut scanned = 0u64;
        let mut watch = self.context.shared.head_height.subscribe();
        // Leadership and registration are re-checked at most every WEBHOOK_POLL_INTERVAL
        // between deliveries (a state scan each time would cost more than the delivery).
        let mut checked = Instant::now();
        while checked.elapsed() < WEBHOOK_POLL_INTERVAL || {
            checked = Instant::now();
            self.current()
        } {
            if self
                .context
                .webhook_replays
                .take(self.participant, self.endpoint)
            {
                self.replay(&db).await;
            }
            let next = match self.next_event(&principal, &mut known, cursor, &mut scanned) {
                Ok(next) => next,
                Err(()) => return,
            };
            let head = *self.context.shared.head_height.borrow();
            self.note_backlog(head.saturating_sub(cursor.height.max(scanned)));
            let Some(event) = next else {
                let _ = tokio::time::timeout(WEBHOOK_POLL_INTERVAL * 5, watch.changed()).await;
                continue;
            };
            let position = (event.view.height, event.view.sequence);
            if !self.deliver_with_retries(&db, &event).await {
                return;
            }
            cursor = Cursor {
                height: position.0,
                sequence: Some(position.1),
            };
        }
    }

    /// Where delivery resumes: after the last delivered event, or at the block the endpoint
    /// was registered at; `None` when the progress cannot be read.
    fn start_cursor(&self, db: &crate::storage::Db, registered: u64) -> Option<Cursor> {
        match store::delivered(db, self.participant, self.endpoint) {
            Ok(Some((height, sequence))) if height >= registered => Some(Cursor {
                height,
                sequence: Some(sequence),
            }),
            Ok(_) => Some(Cursor {
                height: registered,
                sequence: None,
            }),
            Err(error) => {
                tracing::error!(%error, "webhook progress unreadable");
                None
            }
        }
    }

    /// Delivers one event, retrying with backoff up to the configured attempts, then
    /// dead-letters it; false when this node stopped serving the endpoint meanwhile.
    async fn deliver_with_retries(&self, db: &crate::storage::Db, event: &LedgerEvent) -> bool {
        let position = (event.view.height, event.view.sequence);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.deliver(event).await {
                Attempt::Delivered => {
                    self.progress(db, position, None, None);
                    return true;
                }
                Attempt::Failed(error) if attempts >= self.config.max_attempts => {
                    tracing::warn!(participant = self.participant, endpoint = self.endpoint, cursor = %event.view.cursor, %error, "webhook delivery dead-lettered");
                    let dead = DeadLetter {
                        height: position.0,
                        sequence: position.1,
                        attempts,
                        error,
                    };
                    self.progress(db, position, Some(dead), None);
                    return true;
                }
                Attempt::Failed(_) => {
                    crate::metrics::Metrics::add(&self.context.shared.metrics.webhook_retries, 1);
                    tokio::time::sleep(self.backoff(attempts)).await;
                    if !self.current() {
                        return false;
                    }
                }
            }
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u64 << attempts.saturating_sub(1).min(20);
        Duration::from_millis(
            self.config
                .backoff_initial_ms
                .saturating_mul(factor)
                .min(self.config.backoff_max_ms),
        )
    }

    fn progress(
        &self,
        db: &crate::storage::Db,
        position: (u64, u32),
        dead: Option<DeadLetter>,
        revived: Option<(u64, u32)>,
    ) {
        let entry = WebhookProgress {
            participant: self.participant,
            endpoint: self.endpoint,
            delivered_height: position.0,
            delivered_sequence: position.1,
            dead: dead.clone().into_iter().collect(),
            revived: revived.into_iter().collect(),
        };
        if let Err(error) = store::record(db, std::slice::from_ref(&entry)) {
            tracing::error!(%error, "webhook progress not stored");
        }
        let mut checkpoint = lock(&self.context.shared.webhook_checkpoint);
        if revived.is_none() {
            checkpoint.delivered(self.participant, self.endpoint, position);
        }
        let slot = checkpoint.entry(self.participant, self.endpoint);
        slot.dead.extend(dead);
        slot.revived.extend(revived);
    }

    /// The first event after `cursor` that the endpoint's participant may see; `Ok(None)`
    /// when there is none yet.
    /// `scanned` is the highest height already searched without finding one; the search
    /// resumes above it, so an endpoint with no events costs nothing per block.
    fn next_event(
        &self,
        principal: &Principal,
        known: &mut HashMap<u64, bool>,
        cursor: Cursor,
        scanned: &mut u64,
    ) -> Result<Option<LedgerEvent>, ()> {
        let head = *self.context.shared.head_height.borrow();
        let mut height = match cursor.sequence {
            Some(_) => cursor.height.max(1),
            None => cursor.height.saturating_add(1),
        }
        .max(scanned.saturating_add(1));
        while height <= head {
            let events = match self.context.events.block_events(
                &self.context.reader,
                &self.context.network_id,
                height,
            ) {
                Ok(Some(events)) => events,
                Ok(None) => return Ok(None),
                Err(error) => {
                    tracing::error!(%error, height, "webhook deliverer could not read a block");
                    return Err(());
                }
            };
            for event in events.iter() {
                if !cursor.before(event.view.height, event.view.sequence) {
                    continue;
                }
                if crate::api::event_visible(&self.context, principal, known, event)
                    .map_err(|_| ())?
                {
                    return Ok(Some(event.clone()));
                }
            }
            *scanned = height;
            height += 1;
        }
        Ok(None)
    }

    fn delivery_id(&self, event: &LedgerEvent) -> String {
        format!(
            "{}.{}.{}",
            self.participant, self.endpoint, event.view.cursor
        )
    }

    async fn deliver(&self, event: &LedgerEvent) -> Attempt {
        let http = match self.transport.client_for(&self.url) {
            Ok(http) => http,
            Err(refusal) => return Attempt::Failed(refusal.to_string()),
        };
        let delivery_id = self.delivery_id(event);
        let body = match serde_json::to_vec(&serde_json::json!({
            "delivery_id": delivery_id,
            "event": event.view,
        })) {
            Ok(body) => body,
            Err(error) => return Attempt::Failed(error.to_string()),
        };
        let timestamp_ms = crate::clock::now_ms();
        let message = delivery_message(&self.context.network_id, &delivery_id, timestamp_ms, &body);
        // A key in a token may fail to sign (the token gone, its session closed): the attempt
        // fails and is retried like a failed delivery.
        let signature = match self.node_key.sign(&message) {
            Ok(signature) => signature,
            Err(error) => return Attempt::Failed(format!("signing failed: {error}")),
        };
        let sent = http
            .post(&self.url)
            .header("content-type", "application/json")
            .header(HEADER_DELIVERY, &delivery_id)
            .header(HEADER_NODE, self.context.node_id.to_string())
            .header(HEADER_TIMESTAMP, timestamp_ms.to_string())
            .header(HEADER_SIGNATURE, hex::encode(signature))
            .body(body)
            .send()
            .await;
        let metrics = &self.context.shared.metrics;
        match sent {
            Ok(response) if response.status().is_success() => {
                crate::metrics::Metrics::add(&metrics.webhook_deliveries, 1);
                Attempt::Delivered
            }
            Ok(response) => Attempt::Failed(format!("HTTP {}", response.status().as_u16())),
            Err(error) => Attempt::Failed(transport::failure(&error)),
        }
    }

    /// Delivers each dead letter once more; the delivered leave the list.
    async fn replay(&self, db: &crate::storage::Db) {
        let letters = match store::dead_letters(
            db,
            self.participant,
            self.endpoint,
            WEBHOOK_REPLAY_BATCH_MAX,
        ) {
            Ok(letters) => letters,
            Err(error) => {
                tracing::error!(%error, "dead letters unreadable");
                return;
            }
        };
        for letter in letters {
            if !self.current() {
                return;
            }
            let events = match self.context.events.block_events(
                &self.context.reader,
                &self.context.network_id,
                letter.height,
            ) {
                Ok(Some(events)) => events,
                _ => continue,
            };
            let Some(event) = events
                .iter()
                .find(|event| event.view.sequence == letter.sequence)
            else {
                continue;
            };
            if let Attempt::Delivered = self.deliver(event).await {
                let revived = (letter.height, letter.sequence);
                let current = store::delivered(db, self.participant, self.endpoint)
                    .ok()
                    .flatten()
                    .unwrap_or(revived);
                self.progress(db, current, None, Some(revived));
            }
        }
    }
}
