//! The node's HTTP servers: the API every client uses, and the admin interface for operators
//! when it is configured. Each stops gracefully on its own signal.

use crate::api::{router, ApiContext};
use crate::config::NodeConfig;
use crate::http::{TlsListener, TlsServing};
use crate::network::NetworkHandle;
use crate::storage::Db;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;

/// The admin server's task and its stop signal.
pub(super) type AdminServer = (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
);

/// The API server, serving.
pub(super) struct ApiServer {
    /// Where it listens.
    pub(super) address: SocketAddr,
    /// Its task.
    pub(super) server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Its stop signal.
    pub(super) stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts the admin interface when `admin_listen` is configured (it needs the operator token).
pub(super) async fn start_admin(
    config: &NodeConfig,
    context: &ApiContext,
    network: Option<NetworkHandle>,
    db: Db,
    me: u64,
    audit: &crate::audit::AuditLog,
) -> anyhow::Result<Option<AdminServer>> {
    let Some(admin) = &config.admin_listen else {
        return Ok(None);
    };
    let token_file = config
        .admin_token_file
        .as_ref()
        .context("admin_listen needs admin_token_file")?;
    let token = crate::keys::load_admin_token(token_file)?;
    let tls = listener_tls(
        config.admin_tls.as_ref(),
        TlsListener::Admin,
        &context.shared,
    )?;
    let listener = tokio::net::TcpListener::bind(admin)
        .await
        .with_context(|| format!("cannot listen on admin_listen {admin}"))?;
    tracing::info!(admin = %admin, tls = tls.is_some(), "admin interface serving");
    let control = crate::admin::RaftControl {
        commands: context.commands.clone(),
        shared: Arc::clone(&context.shared),
    };
    let routes = crate::admin::router(network, db, me, &token, audit.clone(), Some(control));
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = crate::http::serve(listener, routes, tls, async move {
            let _ = admin_stopped.await;
        })
        .await;
        if let Err(error) = served {
            tracing::error!(%error, "admin interface stopped");
        }
    });
    Ok(Some((task, stop_admin)))
}

/// Starts the API on `api_listen`.
pub(super) async fn start_api(
    config: &NodeConfig,
    context: &Arc<ApiContext>,
) -> anyhow::Result<ApiServer> {
    let tls = listener_tls(config.api_tls.as_ref(), TlsListener::Api, &context.shared)?;
    let listener = tokio::net::TcpListener::bind(config.api_address())
        .await
        .with_context(|| format!("cannot listen on {}", config.api_listen))?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(Arc::clone(context));
    let with_tls = tls.is_some();
    let server = tokio::spawn(async move {
        crate::http::serve(listener, app, tls, async move {
            let _ = stopped.await;
        })
        .await
    });
    tracing::info!(api = %address, tls = with_tls, "serving");
    Ok(ApiServer {
        address,
        server,
        stop,
    })
}

/// A listener's TLS from its section; without one (allowed by `plain_http`), a warning that
/// it serves plain HTTP.
fn listener_tls(
    settings: Option<&crate::tls::TlsSettings>,
    listener: TlsListener,
    shared: &Arc<crate::mailbox::Shared>,
) -> anyhow::Result<Option<TlsServing>> {
    let Some(settings) = settings else {
        tracing::warn!(
            listener = listener.name(),
            "serving plain HTTP (plain_http = true): requests and answers cross the network unencrypted; configure [{}_tls] for any network beyond this machine",
            listener.name()
        );
        return Ok(None);
    };
    let tls = crate::tls::ServerTls::load(settings)
        .with_context(|| format!("[{}_tls]", listener.name()))?;
    Ok(Some(TlsServing {
        tls: Arc::new(tls),
        listener,
        shared: Arc::clone(shared),
    }))
}
