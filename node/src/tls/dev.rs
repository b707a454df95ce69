//! Throwaway certificate authorities for local networks: `tpw demo`, `tpw-testnet up --tls` and
//! the tests. A folder holds the CA's certificate (`ca.crt`, what clients trust) and key
//! (`ca.key`, mode 0600, so nodes added later get certificates too), and a certificate and key
//! per node or client. Nothing here is for a production network, whose certificates come
//! from the bank's own PKI.

use super::TlsError;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// The names a certificate for a node on this machine answers to.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How long a throwaway certificate is valid.
const VALIDITY_DAYS: i64 = 365;

/// A certificate authority whose key is at hand.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    certificate_pem: String,
}

/// A certificate and its key, PEM.
pub struct Issued {
    /// The certificate.
    pub certificate_pem: String,
    /// Its private key.
    pub key_pem: String,
}

fn rcgen_error(what: &str) -> impl Fn(rcgen::Error) -> TlsError + '_ {
    move |error| TlsError::Config(format!("{what}: {error}"))
}

impl DevCa {
    /// A new CA named `name`.
    pub fn generate(name: &str) -> Result<Self, TlsError> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "tpwalletoec local network");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(VALIDITY_DAYS);
        let key = KeyPair::generate().map_err(rcgen_error("CA key"))?;
        let certificate = params
            .self_signed(&key)
            .map_err(rcgen_error("CA certificate"))?;
        Ok(Self {
            certificate_pem: certificate.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA of `folder` (its `ca.crt` and `ca.key`).
    pub fn load(folder: &Path) -> Result<Self, TlsError> {
        let certificate_pem = read_text(&folder.join("ca.crt"))?;
        let key = KeyPair::from_pem(&read_text(&folder.join("ca.key"))?)
            .map_err(rcgen_error("ca.key"))?;
        let issuer =
            Issuer::from_ca_cert_pem(&certificate_pem, key).map_err(rcgen_error("ca.crt"))?;
        Ok(Self {
            issuer,
            certificate_pem,
        })
    }

    /// Writes `ca.crt` and `ca.key` into `folder` (created); refuses to overwrite.
    pub fn save(&self, folder: &Path) -> Result<PathBuf, TlsError> {
        create_folder(folder)?;
        let certificate = folder.join("ca.crt");
        write_new(&certificate, &self.certificate_pem, 0o644)?;
        write_new(
            &folder.join("ca.key"),
            &self.issuer.key().serialize_pem(),
            0o600,
        )?;
        Ok(certificate)
    }

    /// The CA's certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// A server certificate for `names` (DNS names or IP addresses) with serial `serial`,
    /// valid from a day ago for `days`.
    pub fn issue_server(&self, names: &[&str], serial: u64, days: i64) -> Result<Issued, TlsError> {
        let names = names
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>();
        let mut params = CertificateParams::new(names.clone()).map_err(rcgen_error("names"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, serial, days)
    }

    /// A client certificate for `name` with serial `serial`, valid for a year.
    pub fn issue_client(&self, name: &str, serial: u64) -> Result<Issued, TlsError> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, serial, VALIDITY_DAYS)
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        serial: u64,
        days: i64,
    ) -> Result<Issued, TlsError> {
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(days);
        params.serial_number = Some(SerialNumber::from(serial));
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().map_err(rcgen_error("key"))?;
        let certificate = params
            .signed_by(&key, &self.issuer)
            .map_err(rcgen_error("certificate"))?;
        Ok(Issued {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A CRL, PEM, revoking the certificates with these serials.
    pub fn revocation_list(&self, number: u64, revoked: &[u64]) -> Result<String, TlsError> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(1),
            next_update: now + Duration::days(7),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from(*serial),
                    revocation_time: now - Duration::minutes(1),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .map_err(rcgen_error("CRL"))?
            .pem()
            .map_err(rcgen_error("CRL"))
    }
}

impl Issued {
    /// Writes `{stem}.crt` and `{stem}.key` (mode 0600) into `folder`; refuses to overwrite.
    /// Returns the two paths.
    pub fn save(&self, folder: &Path, stem: &str) -> Result<(PathBuf, PathBuf), TlsError> {
        create_folder(folder)?;
        let certificate = folder.join(format!("{stem}.crt"));
        let key = folder.join(format!("{stem}.key"));
        write_new(&certificate, &self.certificate_pem, 0o644)?;
        write_new(&key, &self.key_pem, 0o600)?;
        Ok((certificate, key))
    }
}

fn read_text(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn create_folder(folder: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(folder).map_err(|source| TlsError::Io {
        path: folder.to_path_buf(),
        source,
    })
}

/// Writes a new file with `mode`, synced; refuses to overwrite.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}
