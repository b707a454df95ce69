//! A local webhook receiver on loopback for drills, benchmarks and tests: it records every
//! delivery (headers and body) and can go down and come back on the same port.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The `tpw-delivery` header.
    pub delivery_id: String,
    /// When it arrived.
    pub at: Instant,
    /// When it arrived, in ms since the Unix epoch.
    pub at_ms: u64,
    /// The body.
    pub body: Vec<u8>,
}

/// A receiver serving `POST /hook` on 127.0.0.1.
pub struct WebhookReceiver {
    /// Its port.
    pub port: u16,
    received: Arc<Mutex<Vec<Delivery>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl WebhookReceiver {
    /// Starts a receiver on `port`.
    pub async fn start(port: u16) -> anyhow::Result<Self> {
        let mut receiver = Self {
            port,
            received: Arc::default(),
            task: None,
        };
        receiver.up().await?;
        Ok(receiver)
    }

    /// The URL to register.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Serves again (after [`WebhookReceiver::down`]).
    pub async fn up(&mut self) -> anyhow::Result<()> {
        let received = Arc::clone(&self.received);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let received = Arc::clone(&received);
                    async move {
                        let delivery_id = headers
                            .get("tpw-delivery")
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        received
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .push(Delivery {
                                delivery_id,
                                at: Instant::now(),
                                at_ms: tpw_node::runtime::now_ms(),
                                body: body.to_vec(),
                            });
                        "ok"
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await?;
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
        Ok(())
    }

    /// Stops serving: deliveries fail with a refused connection until [`WebhookReceiver::up`].
    pub async fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Everything received so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Waits until at least `count` deliveries arrived, or `timeout` passed; returns how many.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let arrived = self
                .received
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .len();
            if arrived >= count || Instant::now() >= deadline {
                return arrived;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
