//! What a client trusts and the certificate it shows, and the process's default for both.
//!
//! A client given CA files trusts only them (as `curl --cacert` does); one given none trusts
//! the system's roots. Webhook deliveries trust the system's roots and an endpoint's own CA
//! file together. A program sets its default once (the CLI from `--ca-file`, the testnet
//! from each network's CA) and every [`crate::client::Client`] it makes uses it.

use super::{certificates, private_key, provider, read, root_store, TlsError};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

/// A client's TLS: trust and identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM files of the CAs to trust; with no CA at all, the system's roots.
    pub ca_files: Vec<PathBuf>,
    /// CA certificates to trust, already read.
    pub ca_certificates: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Trust the system's roots as well as `ca_files`.
    pub system_roots_too: bool,
    /// The client certificate (PEM, with its chain) and its key, shown to a listener that asks
    /// for one (mutual TLS). Both or neither.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ClientTls {
    /// Trusting only the CAs of `ca_file`.
    pub fn with_ca_file(ca_file: impl Into<PathBuf>) -> Self {
        Self {
            ca_files: vec![ca_file.into()],
            ..Self::default()
        }
    }

    /// The rustls configuration.
    pub fn config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        if (self.ca_files.is_empty() && self.ca_certificates.is_empty()) || self.system_roots_too {
            roots.roots.extend(system_roots().roots.iter().cloned());
        }
        for path in &self.ca_files {
            roots.roots.extend(root_store(path, &read(path)?)?.roots);
        }
        let (_, unusable) = roots.add_parsable_certificates(self.ca_certificates.iter().cloned());
        if unusable > 0 {
            return Err(TlsError::Config(format!(
                "{unusable} CA certificates are not usable as trust anchors"
            )));
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::Config(format!("TLS versions: {error}")))?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((certificate_file, key_file)) => {
                let chain = certificates(certificate_file, &read(certificate_file)?)?;
                let key = private_key(key_file, &read(key_file)?)?;
                builder.with_client_auth_cert(chain, key).map_err(|error| {
                    TlsError::Config(format!(
                        "{} and {}: {error}",
                        certificate_file.display(),
                        key_file.display()
                    ))
                })?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The system's trusted roots, read once (an empty set, with a warning, where there are none).
fn system_roots() -> &'static rustls::RootCertStore {
    static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "reading the system's trusted certificates");
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(found.certs);
        roots
    })
}

/// The process's default and the configuration built from it.
static PROCESS: RwLock<Option<(ClientTls, Arc<rustls::ClientConfig>)>> = RwLock::new(None);

/// Sets the TLS every client of this process uses from now on.
pub fn set_process_default(tls: ClientTls) -> Result<(), TlsError> {
    let config = Arc::new(tls.config()?);
    *PROCESS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((tls, config));
    Ok(())
}

/// Adds the CAs of `ca_file` to the process's default trust (a testnet tool that reaches
/// several networks, each with its own throwaway CA). The certificates are read now, so the
/// file may go away later.
pub fn trust_ca_file(ca_file: impl Into<PathBuf>) -> Result<(), TlsError> {
    let ca_file = ca_file.into();
    let added = certificates(&ca_file, &read(&ca_file)?)?;
    let mut process = PROCESS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut tls = process
        .as_ref()
        .map(|(tls, _)| tls.clone())
        .unwrap_or_default();
    let before = tls.ca_certificates.len();
    for certificate in added {
        if !tls.ca_certificates.contains(&certificate) {
            tls.ca_certificates.push(certificate);
        }
    }
    if tls.ca_certificates.len() == before && process.is_some() {
        return Ok(());
    }
    let config = Arc::new(tls.config()?);
    *process = Some((tls, config));
    Ok(())
}

/// The configuration clients of this process use: the default set, else the system's roots.
fn process_default() -> Result<Arc<rustls::ClientConfig>, TlsError> {
    if let Some((_, config)) = PROCESS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .as_ref()
    {
        return Ok(Arc::clone(config));
    }
    static SYSTEM: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(config) = SYSTEM.get() {
        return Ok(Arc::clone(config));
    }
    let config = Arc::new(ClientTls::default().config()?);
    Ok(Arc::clone(SYSTEM.get_or_init(|| config)))
}

/// An HTTP client builder with this process's TLS.
pub fn http_builder() -> reqwest::ClientBuilder {
    let config = process_default().expect("the system roots' configuration always builds");
    reqwest::Client::builder().use_preconfigured_tls((*config).clone())
}
