//! The HTTP/1.1 server under the API and the admin interface: axum's router served by hyper
//! with the bounds a server facing untrusted clients needs. A client gets
//! `HTTP_HEADER_READ_TIMEOUT` to send a request's headers (a connection that trickles header
//! lines is closed); the body is bounded in size and time by the router's middleware. Each
//! request carries the peer's address (`ConnectInfo<SocketAddr>`). Over TLS the handshake
//! runs in the connection's own task, bounded by `TLS_HANDSHAKE_TIMEOUT`, with the
//! configuration of the moment (a reloaded certificate serves the next connection). A
//! connection the server
//! ends is closed lingering, so the client reads the last answer rather than a reset.
//! Stopping stops accepting, lets every connection finish its request in progress, and waits
//! for them.

use crate::limits::{
    HTTP_ACCEPT_ERROR_PAUSE, HTTP_HEADER_READ_TIMEOUT, HTTP_LINGER_BYTES_MAX, HTTP_LINGER_IDLE,
    HTTP_LINGER_TIME, HTTP_READ_BUFFER_MAX, TLS_HANDSHAKE_TIMEOUT,
};
use crate::metrics::Metrics;
use crate::tls::Reload;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_service::Service;

/// A listener's TLS, and where it reports (metrics and the node's readiness warnings).
pub struct TlsServing {
    /// The certificate, key, client CA and CRL, reloadable.
    pub tls: std::sync::Arc<crate::tls::ServerTls>,
    /// Which listener this is.
    pub listener: TlsListener,
    /// The node's shared state, whose metrics the listener updates.
    pub shared: std::sync::Arc<crate::mailbox::Shared>,
}

/// The node's TLS listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsListener {
    /// The API.
    Api,
    /// The admin interface.
    Admin,
}

impl TlsListener {
    /// Its name in logs.
    pub fn name(self) -> &'static str {
        match self {
            TlsListener::Api => "api",
            TlsListener::Admin => "admin",
        }
    }

    /// Its gauges: seconds until the certificate expires, and the expiry alarm.
    fn gauges(self, metrics: &Metrics) -> (&AtomicU64, &AtomicU64) {
        match self {
            TlsListener::Api => (
                &metrics.tls_api_expiry_seconds,
                &metrics.tls_api_expiry_alarm,
            ),
            TlsListener::Admin => (
                &metrics.tls_admin_expiry_seconds,
                &metrics.tls_admin_expiry_alarm,
            ),
        }
    }
}

/// Serves `app` on `listener` (over TLS when `tls` is given, checking its files for a change
/// on their interval) until `stop` resolves, then drains the open connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsServing>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping, stopping_seen) = watch::channel(false);
    // Every connection task holds a receiver; the server is drained once none is left.
    let (drained, connection_open) = watch::channel(());
    tokio::pin!(stop);
    let interval_ms = tls
        .as_ref()
        .map_or(crate::limits::TLS_RELOAD_INTERVAL_MS_MAX, |tls| {
            tls.tls.settings().reload_interval_ms
        });
    let mut reload = tokio::time::interval(Duration::from_millis(interval_ms));
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expiry = ExpiryWatch::default();
    if let Some(tls) = &tls {
        expiry.check(tls);
    }
    let tls = tls.map(std::sync::Arc::new);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            _ = reload.tick(), if tls.is_some() => {
                if let Some(tls) = &tls {
                    reload_tls(tls);
                    expiry.check(tls);
                }
                continue;
            }
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stopping = stopping_seen.clone();
        let open = connection_open.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection(stream, peer, app, stopping, open).await,
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.tls.current());
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => connection(stream, peer, app, stopping, open).await,
                        Ok(Err(error)) => handshake_failed(&tls, peer, &error.to_string()),
                        Err(_) => handshake_failed(&tls, peer, "timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(connection_open);
    drained.closed().await;
    Ok(())
}

/// A client that did not complete the handshake (no or a wrong CA, no or a revoked client
/// certificate, plain HTTP to a TLS port): counted, and logged at debug level since any
/// scanner causes it.
fn handshake_failed(tls: &TlsServing, peer: SocketAddr, reason: &str) {
    Metrics::add(&tls.shared.metrics.tls_handshake_failures, 1);
    tracing::debug!(%peer, listener = tls.listener.name(), reason, "TLS handshake failed");
}

/// Reads the listener's files again; a change is served from the next connection on.
fn reload_tls(tls: &TlsServing) {
    let listener = tls.listener.name();
    match tls.tls.reload() {
        Reload::Unchanged => {}
        Reload::Reloaded => {
            Metrics::add(&tls.shared.metrics.tls_reloads, 1);
            tracing::info!(listener, "TLS certificate and key reloaded");
        }
        Reload::Failed { reason, first } => {
            if first {
                Metrics::add(&tls.shared.metrics.tls_reload_failures, 1);
                tracing::error!(listener, %reason, "TLS files changed but do not load; the previous certificate is still served");
            }
        }
    }
}

/// The certificate's expiry against the clock: the gauges, and a warning at most daily.
#[derive(Default)]
struct ExpiryWatch {
    warned: Option<tokio::time::Instant>,
}

impl ExpiryWatch {
    fn check(&mut self, tls: &TlsServing) {
        let now = crate::clock::now_ms() / 1000;
        let left = tls.tls.not_after_unix().saturating_sub(now as i64).max(0) as u64;
        let warning = tls
            .tls
            .settings()
            .expiry_warning_days
            .saturating_mul(86_400);
        let alarm = left <= warning;
        let (seconds, alarm_gauge) = tls.listener.gauges(&tls.shared.metrics);
        Metrics::set(seconds, left);
        Metrics::set(alarm_gauge, u64::from(alarm));
        let due = self
            .warned
            .is_none_or(|warned| warned.elapsed() >= Duration::from_secs(86_400));
        if alarm && due {
            self.warned = Some(tokio::time::Instant::now());
            tracing::warn!(
                listener = tls.listener.name(),
                days_left = left / 86_400,
                "the TLS certificate expires soon: replace its files (they are reloaded without a restart)"
            );
        }
    }
}

/// A failed accept: the peer went away (nothing to do), or the process is out of file
/// descriptors or memory, where accepting again at once would spin.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(%error, "accepting an HTTP connection failed; pausing");
    tokio::time::sleep(HTTP_ACCEPT_ERROR_PAUSE).await;
}

/// Serves one connection's requests until the client closes it, a header read times out, or
/// the server stops (then after the request in progress); then closes it lingering.
async fn connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    mut stopping: watch::Receiver<bool>,
    _open: watch::Receiver<()>,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        // Boxed so that the connection can be polled without shutting its stream down.
        Box::pin(async move {
            std::future::poll_fn(|context| {
                <Router as Service<axum::extract::Request>>::poll_ready(&mut app, context)
            })
            .await?;
            app.call(request.map(axum::body::Body::new)).await
        })
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HTTP_HEADER_READ_TIMEOUT)
        .max_buf_size(HTTP_READ_BUFFER_MAX);
    let mut connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut stop_seen = false;
    loop {
        tokio::select! {
            served = std::future::poll_fn(|context| connection.poll_without_shutdown(context)) => {
                if let Err(error) = served {
                    tracing::debug!(%error, %peer, "HTTP connection ended");
                }
                break;
            }
            changed = stopping.changed(), if !stop_seen => {
                stop_seen = true;
                if changed.is_ok() {
                    std::pin::Pin::new(&mut connection).graceful_shutdown();
                }
            }
        }
    }
    let stream = connection.into_parts().io.into_inner();
    if stop_seen {
        // The node is stopping: it does not wait on what clients still send.
        drop(stream);
    } else {
        linger(stream).await;
    }
}

/// Closes the sending side, then reads and discards what the client still sends (bounded by
/// `HTTP_LINGER_*`) before the stream is dropped. Closing a socket with unread bytes makes the
/// kernel send a reset, which can destroy an answer the client has not read yet: a client still
/// writing a body the server refused would see "broken pipe" instead of 413.
async fn linger(mut stream: impl AsyncRead + AsyncWrite + Unpin) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.shutdown().await.is_err() {
        return;
    }
    let until = tokio::time::Instant::now() + HTTP_LINGER_TIME;
    let mut discarded = 0u64;
    let mut buffer = vec![0u8; 16 * 1024];
    while discarded < HTTP_LINGER_BYTES_MAX {
        let deadline = until.min(tokio::time::Instant::now() + HTTP_LINGER_IDLE);
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(read)) if read > 0 => discarded += read as u64,
            _ => return,
        }
    }
}
