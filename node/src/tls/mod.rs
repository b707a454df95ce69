//! TLS for the node's HTTP listeners and for every HTTP client of the project: rustls with the
//! ring provider (it builds with a C compiler alone), TLS 1.3 by default and 1.2 where a
//! listener's configuration allows it.
//!
//! - [`ServerTls`]: a listener's certificate, key, client CA and CRL, read from PEM files and
//!   reloaded when they change, so an operator rotates a certificate with no restart.
//! - [`ClientTls`]: what a client trusts (a CA file, or the system's roots) and the client
//!   certificate it shows where a listener asks for one (mutual TLS).
//! - [`dev`]: throwaway certificate authorities for the demo, the testnet and the tests.

pub mod client;
pub mod dev;
mod server;

pub use client::ClientTls;
pub use server::{Reload, ServerTls, TlsSettings};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file was read but holds nothing usable.
    #[error("{}: {reason}", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The pieces do not make a configuration (a key that does not match its certificate, a
    /// CRL without a client CA, ...).
    #[error("{0}")]
    Config(String),
}

/// The crypto provider every TLS configuration of the project uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The bytes of `path`.
fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A content error for `path`.
fn content(path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::Content {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Every certificate of a PEM file (at least one), in file order.
pub fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| content(path, format!("not PEM certificates: {error}")))?;
    if certificates.is_empty() {
        return Err(content(path, "holds no PEM certificate"));
    }
    Ok(certificates)
}

/// The private key of a PEM file (PKCS#8, SEC1 or PKCS#1).
pub fn private_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|error| content(path, format!("holds no PEM private key: {error}")))
}

/// Every CRL of a PEM file (at least one).
pub fn revocation_lists(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let lists = CertificateRevocationListDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| content(path, format!("not PEM CRLs: {error}")))?;
    if lists.is_empty() {
        return Err(content(path, "holds no PEM X509 CRL"));
    }
    Ok(lists)
}

/// A certificate's end of validity, in seconds since the Unix epoch.
pub fn not_after_unix(path: &Path, certificate: &CertificateDer<'_>) -> Result<i64, TlsError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|error| content(path, format!("certificate does not parse: {error}")))?;
    Ok(parsed.validity().not_after.timestamp())
}

/// A root store holding every certificate of `pem` (at least one must be usable as a root).
fn root_store(path: &Path, pem: &[u8]) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certificates(path, pem)?);
    if added == 0 {
        return Err(content(
            path,
            "holds no certificate usable as a trust anchor",
        ));
    }
    Ok(roots)
}
