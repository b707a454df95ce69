//! A listener's TLS: its certificate chain and key, and for mutual TLS the client CA and the
//! CRL, read from PEM files. [`ServerTls::reload`] reads the files again and switches to them
//! when they changed and make a valid configuration; a connection takes the configuration of
//! the moment it arrives, so a rotated certificate is served by the next connection and the
//! connections already open keep theirs. Files that fail to load leave the last good
//! configuration in place.

use super::{certificates, not_after_unix, private_key, read, revocation_lists, root_store};
use super::{provider, TlsError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// A listener's TLS configuration (`[api_tls]`, `[admin_tls]` in the node's TOML file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file: the listener's certificate, then the intermediates of its chain.
    pub certificate_file: PathBuf,
    /// PEM file: the certificate's private key (PKCS#8, SEC1 or PKCS#1).
    pub key_file: PathBuf,
    /// PEM file of the CAs that issue client certificates: turns mutual TLS on.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// With a client CA: refuse, at the handshake, a client that shows no certificate (true,
    /// the default) or let it through to the request checks (false).
    #[serde(default = "client_certificate_required_default")]
    pub client_certificate_required: bool,
    /// PEM file of CRLs from the client CAs: a revoked client certificate is refused at the
    /// handshake. Reloaded like the certificate.
    #[serde(default)]
    pub crl_file: Option<PathBuf>,
    /// Oldest TLS version accepted: "1.3" (default) or "1.2".
    #[serde(default = "min_version_default")]
    pub min_version: String,
    /// How often the files are checked for a change, in milliseconds.
    #[serde(default = "reload_interval_ms_default")]
    pub reload_interval_ms: u64,
    /// A metric alarm, a log warning and a /v1/ready warning from this many days before the
    /// certificate expires.
    #[serde(default = "expiry_warning_days_default")]
    pub expiry_warning_days: u64,
}

fn client_certificate_required_default() -> bool {
    true
}
fn min_version_default() -> String {
    "1.3".into()
}
fn reload_interval_ms_default() -> u64 {
    crate::limits::TLS_RELOAD_INTERVAL_MS_DEFAULT
}
fn expiry_warning_days_default() -> u64 {
    30
}

impl TlsSettings {
    /// Settings serving `certificate_file` and `key_file`, with every other field at its
    /// default.
    pub fn new(certificate_file: PathBuf, key_file: PathBuf) -> Self {
        Self {
            certificate_file,
            key_file,
            client_ca_file: None,
            client_certificate_required: client_certificate_required_default(),
            crl_file: None,
            min_version: min_version_default(),
            reload_interval_ms: reload_interval_ms_default(),
            expiry_warning_days: expiry_warning_days_default(),
        }
    }

    /// Checks the fields that need no file: `name` is the section, for the message.
    pub fn validate(&self, name: &str) -> Result<(), String> {
        if !matches!(self.min_version.as_str(), "1.2" | "1.3") {
            return Err(format!(
                "{name}.min_version {:?} must be \"1.3\" or \"1.2\"",
                self.min_version
            ));
        }
        if self.crl_file.is_some() && self.client_ca_file.is_none() {
            return Err(format!(
                "{name}.crl_file revokes client certificates: it needs {name}.client_ca_file"
            ));
        }
        let bounds =
            crate::limits::TLS_RELOAD_INTERVAL_MS_MIN..=crate::limits::TLS_RELOAD_INTERVAL_MS_MAX;
        if !bounds.contains(&self.reload_interval_ms) {
            return Err(format!(
                "{name}.reload_interval_ms must be {}..={}",
                bounds.start(),
                bounds.end()
            ));
        }
        Ok(())
    }

    /// Every file this configuration reads, in a fixed order.
    fn files(&self) -> Vec<&PathBuf> {
        let mut files = vec![&self.certificate_file, &self.key_file];
        files.extend(self.client_ca_file.as_ref());
        files.extend(self.crl_file.as_ref());
        files
    }
}

/// A configuration built from the files, and what identifies it.
struct Loaded {
    config: Arc<rustls::ServerConfig>,
    /// blake3 over the files' contents: a reload builds again only when it differs.
    fingerprint: blake3::Hash,
    /// The end of the served certificate's validity (Unix seconds).
    not_after_unix: i64,
}

/// A listener's TLS, reloadable.
pub struct ServerTls {
    settings: TlsSettings,
    loaded: RwLock<Arc<Loaded>>,
    /// The fingerprint of files that failed to load, so the failure is reported once.
    failed: RwLock<Option<blake3::Hash>>,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    /// The files are those already served.
    Unchanged,
    /// The files changed and are served from now on.
    Reloaded,
    /// The files changed but do not load; the last good configuration stays. `first` is true
    /// the first time these contents failed.
    Failed {
        /// Why.
        reason: String,
        /// The first failure of these contents.
        first: bool,
    },
}

impl ServerTls {
    /// Loads the files; the node does not start on an error.
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        let (fingerprint, contents) = read_all(settings)?;
        let loaded = build(settings, fingerprint, &contents)?;
        Ok(Self {
            settings: settings.clone(),
            loaded: RwLock::new(Arc::new(loaded)),
            failed: RwLock::new(None),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The configuration a new connection gets.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.loaded().config)
    }

    /// The end of the served certificate's validity (Unix seconds).
    pub fn not_after_unix(&self) -> i64 {
        self.loaded().not_after_unix
    }

    fn loaded(&self) -> Arc<Loaded> {
        Arc::clone(
            &self
                .loaded
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// Reads the files again and serves them when they changed and load.
    pub fn reload(&self) -> Reload {
        let read = read_all(&self.settings);
        let (fingerprint, contents) = match read {
            Ok(read) => read,
            // A file missing or unreadable mid-rotation: reported like bad contents, under a
            // fingerprint of the error so that it is reported once.
            Err(error) => {
                let fingerprint = blake3::hash(error.to_string().as_bytes());
                return self.failed(fingerprint, error);
            }
        };
        if fingerprint == self.loaded().fingerprint {
            return Reload::Unchanged;
        }
        match build(&self.settings, fingerprint, &contents) {
            Ok(loaded) => {
                *self
                    .loaded
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(loaded);
                *self
                    .failed
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
                Reload::Reloaded
            }
            Err(error) => self.failed(fingerprint, error),
        }
    }

    fn failed(&self, fingerprint: blake3::Hash, error: TlsError) -> Reload {
        let mut failed = self
            .failed
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let first = *failed != Some(fingerprint);
        *failed = Some(fingerprint);
        Reload::Failed {
            reason: error.to_string(),
            first,
        }
    }
}

/// The contents of every file, and their fingerprint.
fn read_all(settings: &TlsSettings) -> Result<(blake3::Hash, Vec<Vec<u8>>), TlsError> {
    let mut hasher = blake3::Hasher::new();
    let mut contents = Vec::new();
    for path in settings.files() {
        let bytes = read(path)?;
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
        contents.push(bytes);
    }
    Ok((hasher.finalize(), contents))
}

/// A server configuration from the files' contents (in [`TlsSettings::files`] order).
fn build(
    settings: &TlsSettings,
    fingerprint: blake3::Hash,
    contents: &[Vec<u8>],
) -> Result<Loaded, TlsError> {
    let chain = certificates(&settings.certificate_file, &contents[0])?;
    let key = private_key(&settings.key_file, &contents[1])?;
    let not_after_unix = not_after_unix(&settings.certificate_file, &chain[0])?;
    let versions: &[&rustls::SupportedProtocolVersion] = if settings.min_version == "1.2" {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|error| TlsError::Config(format!("TLS versions: {error}")))?;
    let builder = match &settings.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let roots = root_store(ca_file, &contents[2])?;
            let mut verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            );
            if let Some(crl_file) = &settings.crl_file {
                // Only the client's own certificate is looked up in the CRLs, and a certificate
                // from a CA the file has no list for is let through: the file revokes, it does
                // not have to enumerate every issuer.
                verifier = verifier
                    .with_crls(revocation_lists(crl_file, &contents[3])?)
                    .only_check_end_entity_revocation()
                    .allow_unknown_revocation_status();
            }
            if !settings.client_certificate_required {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|error| TlsError::Config(format!("client CA or CRL: {error}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|error| {
        TlsError::Config(format!(
            "{} and {}: {error}",
            settings.certificate_file.display(),
            settings.key_file.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        fingerprint,
        not_after_unix,
    })
}
