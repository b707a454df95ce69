//! The HTTP/1.1 server under the API and the admin interface: axum's router served by hyper
//! with the bounds a server facing untrusted clients needs. A client gets
//! `HTTP_HEADER_READ_TIMEOUT` to send a request's headers (a connection that trickles header
//! lines is closed); the body is bounded in size and time by the router's middleware. Each
//! request carries the peer's address (`ConnectInfo<SocketAddr>`). A connection the server
//! ends is closed lingering, so the client reads the last answer rather than a reset.
//! Stopping stops accepting, lets every connection finish its request in progress, and waits
//! for them.

use crate::limits::{
    HTTP_ACCEPT_ERROR_PAUSE, HTTP_HEADER_READ_TIMEOUT, HTTP_LINGER_BYTES_MAX, HTTP_LINGER_IDLE,
    HTTP_LINGER_TIME, HTTP_READ_BUFFER_MAX,
};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_service::Service;

/// Serves `app` on `listener` until `stop` resolves, then drains the open connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping, stopping_seen) = watch::channel(false);
    // Every connection task holds a receiver; the server is drained once none is left.
    let (drained, connection_open) = watch::channel(());
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            stopping_seen.clone(),
            connection_open.clone(),
        ));
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(connection_open);
    drained.closed().await;
    Ok(())
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
async fn connection(
    stream: tokio::net::TcpStream,
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
async fn linger(mut stream: tokio::net::TcpStream) {
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
