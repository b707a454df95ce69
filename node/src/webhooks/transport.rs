//! How deliveries reach a receiver: https with the system's trusted roots, plus a CA file the
//! operator names for an endpoint's origin (`webhooks.ca_files`); plain http only where the
//! operator allows it (`webhooks.allow_plain_http`, for local networks). No redirect is
//! followed.
//!
//! Private destinations are refused where the connection is made: the HTTP client resolves an
//! endpoint's name through [`CheckedResolver`], which refuses a name with any loopback,
//! private, link-local or shared address and hands the client exactly the addresses it
//! checked. A name cannot answer a public address to a check and a private one to the
//! connection that follows (DNS rebinding), because there is no separate check: each
//! connection's own resolution is the one checked. An address written in the URL itself is
//! checked before the request.

use crate::config::WebhookConfig;
use crate::tls::ClientTls;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Why a delivery was not attempted or its connection was refused: the text is what the dead
/// letter records (docs/api.md, Webhooks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The endpoint resolves to (or is) an address of a private network.
    #[error("destination not allowed")]
    PrivateDestination,
    /// An http:// endpoint where the operator has not allowed plain HTTP.
    #[error("plain http not allowed")]
    PlainHttp,
    /// The URL does not parse, or names no host.
    #[error("bad url")]
    BadUrl,
}

/// Whether `ip` is an address of the public internet: not loopback, private, link-local,
/// shared (100.64/10), unspecified, broadcast, multicast, unique-local, or IPv4-mapped.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_multicast()
                || ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(ip) => {
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
                || ip.to_ipv4_mapped().is_some())
        }
    }
}

/// A name lookup: the system's resolver in the node, a scripted one in tests.
pub type Lookup = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// The system's resolver.
fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.collect()) })
    })
}

/// The HTTP client's resolver: the addresses a name resolves to, refused when any is private
/// (unless allowed).
pub struct CheckedResolver {
    allow_private: bool,
    lookup: Lookup,
}

impl CheckedResolver {
    /// A resolver over `lookup`.
    pub fn new(allow_private: bool, lookup: Lookup) -> Self {
        Self {
            allow_private,
            lookup,
        }
    }

    /// The addresses of `host`, all checked.
    pub async fn resolve_checked(&self, host: String) -> Result<Vec<SocketAddr>, ResolveError> {
        let addresses = (self.lookup)(host).await.map_err(ResolveError::Lookup)?;
        if addresses.is_empty() {
            return Err(ResolveError::Lookup(std::io::Error::other("no address")));
        }
        if !self.allow_private && addresses.iter().any(|address| !is_public(address.ip())) {
            return Err(ResolveError::Refused(Refusal::PrivateDestination));
        }
        Ok(addresses)
    }
}

/// Why a resolution gave no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The name did not resolve.
    #[error("name lookup failed: {0}")]
    Lookup(std::io::Error),
    /// It resolved to a refused address.
    #[error("{0}")]
    Refused(Refusal),
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = CheckedResolver {
            allow_private: self.allow_private,
            lookup: Arc::clone(&self.lookup),
        };
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses = resolver.resolve_checked(host).await?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP clients of the deliverer: one trusting the system's roots, and one per origin the
/// operator named a CA file for.
pub struct Transport {
    default: reqwest::Client,
    by_origin: BTreeMap<String, reqwest::Client>,
    allow_private: bool,
    allow_plain_http: bool,
}

/// `scheme://host:port` of a URL (the port always written), as `webhooks.ca_files` keys are.
pub fn origin(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(format!("{}://{host}:{port}", url.scheme()))
}

impl Transport {
    /// The clients for `config`; a CA file that does not load stops the node's start.
    pub fn new(config: &WebhookConfig) -> Result<Self, crate::tls::TlsError> {
        Self::with_lookup(config, system_lookup())
    }

    /// As [`Transport::new`], resolving names with `lookup`.
    pub fn with_lookup(
        config: &WebhookConfig,
        lookup: Lookup,
    ) -> Result<Self, crate::tls::TlsError> {
        let client = |ca_file: Option<&std::path::PathBuf>| {
            let tls = ClientTls {
                ca_files: ca_file.into_iter().cloned().collect(),
                system_roots_too: true,
                ca_certificates: Vec::new(),
                identity: None,
            };
            reqwest::Client::builder()
                .use_preconfigured_tls(tls.config()?)
                .dns_resolver(Arc::new(CheckedResolver::new(
                    config.allow_private_networks,
                    Arc::clone(&lookup),
                )))
                .timeout(Duration::from_millis(config.timeout_ms))
                .pool_max_idle_per_host(crate::limits::WEBHOOK_IDLE_CONNECTIONS_MAX)
                // A receiver cannot bounce deliveries elsewhere (into the node's networks).
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|error| crate::tls::TlsError::Config(error.to_string()))
        };
        let mut by_origin = BTreeMap::new();
        for (key, ca_file) in &config.ca_files {
            let normalized = reqwest::Url::parse(key)
                .ok()
                .as_ref()
                .and_then(origin)
                .unwrap_or_else(|| key.clone());
            by_origin.insert(normalized, client(Some(ca_file))?);
        }
        Ok(Self {
            default: client(None)?,
            by_origin,
            allow_private: config.allow_private_networks,
            allow_plain_http: config.allow_plain_http,
        })
    }

    /// The client for `url`, or why no delivery is attempted there.
    pub fn client_for(&self, url: &str) -> Result<&reqwest::Client, Refusal> {
        let url = reqwest::Url::parse(url).map_err(|_| Refusal::BadUrl)?;
        let origin = origin(&url).ok_or(Refusal::BadUrl)?;
        // An address in the URL is never resolved, so it is checked here.
        let host = url.host_str().ok_or(Refusal::BadUrl)?;
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if literal.is_some_and(|ip| !self.allow_private && !is_public(ip)) {
            return Err(Refusal::PrivateDestination);
        }
        match url.scheme() {
            "https" => {}
            "http" if self.allow_plain_http => {}
            "http" => return Err(Refusal::PlainHttp),
            _ => return Err(Refusal::BadUrl),
        }
        Ok(self.by_origin.get(&origin).unwrap_or(&self.default))
    }
}

/// What a failed request comes to in a dead letter: a refusal by the resolver, a TLS failure
/// (with rustls' reason: an operator fixes a receiver's certificate from it), a timeout, or a
/// connection or request failure.
pub fn failure(error: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(ResolveError::Refused(refusal)) = cause.downcast_ref::<ResolveError>() {
            return refusal.to_string();
        }
        // An I/O error's `source` skips the error it wraps, and tokio-rustls wraps rustls'
        // error in I/O errors: look inside them.
        let mut inner: &(dyn std::error::Error + 'static) = cause;
        loop {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return format!("TLS failed: {tls}");
            }
            match inner
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
            {
                Some(wrapped) => inner = wrapped,
                None => break,
            }
        }
        source = cause.source();
    }
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A lookup answering a public address the first time and loopback after: a rebinding
    /// name.
    fn rebinding(calls: Arc<AtomicUsize>) -> Lookup {
        Arc::new(move |_host| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                let ip: IpAddr = if call == 0 {
                    "203.0.113.7".parse().unwrap()
                } else {
                    "127.0.0.1".parse().unwrap()
                };
                Ok(vec![SocketAddr::new(ip, 0)])
            })
        })
    }

    #[tokio::test]
    async fn each_connection_gets_only_the_addresses_its_own_resolution_checked() {
        // Proves the resolver the HTTP client connects through checks what it returns: a
        // rebinding name's public answer is handed over as checked, and its later private
        // answer is refused rather than connected to; allowed private networks let it through.
        let calls = Arc::new(AtomicUsize::new(0));
        let resolver = CheckedResolver::new(false, rebinding(Arc::clone(&calls)));
        let first = resolver
            .resolve_checked("rebind.example".into())
            .await
            .unwrap();
        assert_eq!(first, vec!["203.0.113.7:0".parse::<SocketAddr>().unwrap()]);
        let second = resolver.resolve_checked("rebind.example".into()).await;
        assert!(matches!(
            second,
            Err(ResolveError::Refused(Refusal::PrivateDestination))
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let allowing = CheckedResolver::new(true, rebinding(Arc::new(AtomicUsize::new(1))));
        assert!(allowing
            .resolve_checked("rebind.example".into())
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn a_request_to_a_rebinding_name_never_connects_to_the_private_address() {
        // Proves, through the real HTTP client, that the connection uses the checked
        // resolution: a name answering loopback, where a receiver listens, is refused with
        // "destination not allowed" and the receiver sees no connection.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls = Arc::new(AtomicUsize::new(1));
        let config = WebhookConfig {
            allow_plain_http: true,
            ..WebhookConfig::default()
        };
        let transport = Transport::with_lookup(&config, rebinding(Arc::clone(&calls))).unwrap();
        let url = format!("http://rebind.example:{port}/hook");
        let client = transport.client_for(&url).unwrap();
        let error = client.post(&url).body("{}").send().await.unwrap_err();
        assert_eq!(failure(&error), "destination not allowed");
        let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(
            accepted.is_err(),
            "no connection reached the private address"
        );
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        // Proves the checks made on the URL itself: private address literals, plain http
        // unless allowed, and unparsable URLs; and that an origin's CA picks its client.
        let mut config = WebhookConfig::default();
        let transport = Transport::new(&config).unwrap();
        for (url, refusal) in [
            ("https://127.0.0.1/hook", Refusal::PrivateDestination),
            ("https://[::1]:8443/hook", Refusal::PrivateDestination),
            ("https://10.1.2.3/hook", Refusal::PrivateDestination),
            ("http://hooks.example/hook", Refusal::PlainHttp),
            ("not a url", Refusal::BadUrl),
            ("ftp://hooks.example/hook", Refusal::BadUrl),
        ] {
            assert_eq!(transport.client_for(url).unwrap_err(), refusal, "{url}");
        }
        assert!(transport.client_for("https://hooks.example/hook").is_ok());
        assert!(transport.client_for("https://203.0.113.9/hook").is_ok());
        config.allow_plain_http = true;
        config.allow_private_networks = true;
        let transport = Transport::new(&config).unwrap();
        assert!(transport.client_for("http://127.0.0.1:9/hook").is_ok());
    }
}
