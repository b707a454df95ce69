//! Key files: ed25519 secret keys written readable by their owner only, and refused on load
//! when group or others could read them; optionally encrypted under a passphrase (Argon2id,
//! then XChaCha20-Poly1305 bound to the public key). No function here puts key bytes in an
//! error, a log line or a `Debug` output.

use crate::limits::{
    KDF_ITERATIONS, KDF_ITERATIONS_MAX, KDF_MEMORY_KIB, KDF_MEMORY_KIB_MAX, KDF_PARALLELISM,
    KDF_PARALLELISM_MAX, PASSPHRASE_LENGTH_MIN,
};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a key file could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// Group or others may read it.
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a valid key file.
    #[error("key file {path} is not a valid tpw key file: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format_version: u8,
    algorithm: String,
    public_key: String,
    /// Version 1: the secret key in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_key: Option<String>,
    /// Version 2: how the secret key is encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encryption: Option<Encryption>,
    /// Version 2: the encrypted secret key and its tag, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_key_encrypted: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Encryption {
    kdf: String,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: String,
    cipher: String,
    nonce: String,
}

/// The environment variable holding the passphrase of encrypted key files.
pub const PASSPHRASE_VARIABLE: &str = "TPW_KEY_PASSPHRASE";
/// The environment variable naming a file (mode 0600) holding that passphrase.
pub const PASSPHRASE_FILE_VARIABLE: &str = "TPW_KEY_PASSPHRASE_FILE";

/// A passphrase, kept out of `Debug` output.
pub struct Passphrase(String);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(text: String) -> Self {
        Self(text)
    }
    /// The passphrase from [`PASSPHRASE_VARIABLE`], or from the file [`PASSPHRASE_FILE_VARIABLE`]
    /// names (refused if group or others can read it); `None` when neither is set.
    pub fn from_environment() -> Result<Option<Self>, KeyFileError> {
        if let Ok(text) = std::env::var(PASSPHRASE_VARIABLE) {
            return Ok(Some(Self(text)));
        }
        let Some(path) = std::env::var_os(PASSPHRASE_FILE_VARIABLE) else {
            return Ok(None);
        };
        let path = PathBuf::from(path);
        check_private(&path)?;
        let text = std::fs::read_to_string(&path).map_err(|source| KeyFileError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Some(Self(text.trim_end_matches(['\r', '\n']).to_string())))
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Passphrase(..)")
    }
}

fn derive_key(
    passphrase: &Passphrase,
    salt: &[u8],
    (memory_kib, iterations, parallelism): (u32, u32, u32),
) -> Result<[u8; 32], String> {
    let params = argon2::Params::new(memory_kib, iterations, parallelism, Some(32))
        .map_err(|error| format!("key derivation parameters: {error}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    argon
        .hash_password_into(passphrase.0.as_bytes(), salt, &mut key)
        .map_err(|error| format!("key derivation: {error}"))?;
    Ok(key)
}

/// What the cipher authenticates besides the secret: the file's purpose and public key, so an
/// encrypted secret cannot be moved under another public key.
fn associated_data(public_key: &[u8; 32]) -> Vec<u8> {
    let mut data = b"tpwalletoec key file v2\0".to_vec();
    data.extend_from_slice(public_key);
    data
}

fn encrypt(key: &SigningKey, passphrase: &Passphrase) -> Result<KeyFile, KeyFileError> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let failed = |reason: String| KeyFileError::Invalid {
        path: PathBuf::new(),
        reason,
    };
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut salt).map_err(|error| failed(error.to_string()))?;
    getrandom::getrandom(&mut nonce).map_err(|error| failed(error.to_string()))?;
    let derived = derive_key(
        passphrase,
        &salt,
        (KDF_MEMORY_KIB, KDF_ITERATIONS, KDF_PARALLELISM),
    )
    .map_err(failed)?;
    let public = key.verifying_key().to_bytes();
    let cipher = chacha20poly1305::XChaCha20Poly1305::new((&derived).into());
    let sealed = cipher
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: &key.to_bytes(),
                aad: &associated_data(&public),
            },
        )
        .map_err(|_| failed("encryption failed".into()))?;
    Ok(KeyFile {
        format_version: 2,
        algorithm: "ed25519".into(),
        public_key: hex::encode(public),
        secret_key: None,
        encryption: Some(Encryption {
            kdf: "argon2id".into(),
            memory_kib: KDF_MEMORY_KIB,
            iterations: KDF_ITERATIONS,
            parallelism: KDF_PARALLELISM,
            salt: hex::encode(salt),
            cipher: "xchacha20poly1305".into(),
            nonce: hex::encode(nonce),
        }),
        secret_key_encrypted: Some(hex::encode(sealed)),
    })
}

fn decrypt(contents: &KeyFile, passphrase: &Passphrase) -> Result<[u8; 32], String> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let (Some(encryption), Some(sealed)) = (&contents.encryption, &contents.secret_key_encrypted)
    else {
        return Err("an encrypted key file needs encryption and secret_key_encrypted".into());
    };
    if encryption.kdf != "argon2id" || encryption.cipher != "xchacha20poly1305" {
        return Err("unsupported kdf or cipher".into());
    }
    if encryption.memory_kib > KDF_MEMORY_KIB_MAX
        || encryption.iterations > KDF_ITERATIONS_MAX
        || encryption.parallelism == 0
        || encryption.parallelism > KDF_PARALLELISM_MAX
    {
        return Err("key derivation parameters out of bounds".into());
    }
    let salt = hex::decode(&encryption.salt).map_err(|_| "salt is not hex".to_string())?;
    let nonce: [u8; 24] = hex::decode(&encryption.nonce)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("nonce must be 24 bytes of hex")?;
    let sealed = hex::decode(sealed).map_err(|_| "secret_key_encrypted is not hex".to_string())?;
    let public: [u8; 32] = hex::decode(&contents.public_key)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("public_key must be 32 bytes of hex")?;
    let derived = derive_key(
        passphrase,
        &salt,
        (
            encryption.memory_kib,
            encryption.iterations,
            encryption.parallelism,
        ),
    )?;
    let cipher = chacha20poly1305::XChaCha20Poly1305::new((&derived).into());
    let secret = cipher
        .decrypt(
            (&nonce).into(),
            Payload {
                msg: &sealed,
                aad: &associated_data(&public),
            },
        )
        .map_err(|_| "wrong passphrase, or the file was altered".to_string())?;
    secret
        .try_into()
        .map_err(|_| "the decrypted secret is not 32 bytes".to_string())
}

/// Draws a new key from the operating system's randomness.
pub fn generate() -> Result<SigningKey, getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes a new key file with mode 0600; refuses to overwrite an existing file.
pub fn write(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let contents = KeyFile {
        format_version: 1,
        algorithm: "ed25519".into(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        secret_key: Some(hex::encode(key.to_bytes())),
        encryption: None,
        secret_key_encrypted: None,
    };
    write_file(path, &contents)
}

/// Writes a new key file encrypted under `passphrase` (at least [`PASSPHRASE_LENGTH_MIN`]
/// characters), mode 0600; refuses to overwrite an existing file.
pub fn write_encrypted(
    path: &Path,
    key: &SigningKey,
    passphrase: &Passphrase,
) -> Result<(), KeyFileError> {
    if passphrase.0.chars().count() < PASSPHRASE_LENGTH_MIN {
        return Err(KeyFileError::Invalid {
            path: path.to_path_buf(),
            reason: format!("a passphrase has at least {PASSPHRASE_LENGTH_MIN} characters"),
        });
    }
    let contents = encrypt(key, passphrase).map_err(|error| match error {
        KeyFileError::Invalid { reason, .. } => KeyFileError::Invalid {
            path: path.to_path_buf(),
            reason,
        },
        other => other,
    })?;
    write_file(path, &contents)
}

fn write_file(path: &Path, contents: &KeyFile) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let json = serde_json::to_string_pretty(contents).expect("a key file always serializes");
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(json.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(())
}

/// Refuses a secret file that group or others can read.
fn check_private(path: &Path) -> Result<(), KeyFileError> {
    let metadata = std::fs::metadata(path).map_err(|source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Bytes of randomness in an admin token.
const ADMIN_TOKEN_SIZE: usize = 32;

/// Writes a new admin token (32 random bytes, hex) to a file with mode 0600; refuses to
/// overwrite an existing file. Returns the token.
pub fn write_admin_token(path: &Path) -> Result<String, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut secret = [0u8; ADMIN_TOKEN_SIZE];
    getrandom::getrandom(&mut secret).map_err(|error| io(std::io::Error::other(error)))?;
    let token = hex::encode(secret);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(token.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(token)
}

/// Loads an admin token file, refusing one that group or others can read.
pub fn load_admin_token(path: &Path) -> Result<String, KeyFileError> {
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    let valid = token.len() == 2 * ADMIN_TOKEN_SIZE && hex::decode(token).is_ok();
    if !valid {
        return Err(KeyFileError::Invalid {
            path: path.to_path_buf(),
            reason: format!("an admin token is {} hex digits", 2 * ADMIN_TOKEN_SIZE),
        });
    }
    Ok(token.to_string())
}

/// Loads a key file, refusing one that group or others can read. An encrypted file is
/// decrypted with the passphrase from the environment ([`Passphrase::from_environment`]).
pub fn load(path: &Path) -> Result<SigningKey, KeyFileError> {
    load_with(path, Passphrase::from_environment()?.as_ref())
}

/// Loads a key file with the passphrase given (needed only if the file is encrypted).
pub fn load_with(path: &Path, passphrase: Option<&Passphrase>) -> Result<SigningKey, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |reason: String| KeyFileError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(io)?;
    // serde_json's messages may quote the input: they are not passed on.
    let contents: KeyFile = serde_json::from_str(&text).map_err(|error| {
        invalid(format!(
            "not a key file's JSON (line {}, column {})",
            error.line(),
            error.column()
        ))
    })?;
    if contents.algorithm != "ed25519" {
        return Err(invalid("unsupported algorithm".into()));
    }
    let secret: [u8; 32] = match (contents.format_version, &contents.secret_key) {
        (1, Some(secret)) => hex::decode(secret)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| invalid("secret_key must be 32 bytes of hex".into()))?,
        (2, None) => {
            let passphrase = passphrase.ok_or_else(|| {
                invalid(format!(
                    "the key is encrypted: set {PASSPHRASE_VARIABLE}, or {PASSPHRASE_FILE_VARIABLE} to a file holding the passphrase"
                ))
            })?;
            decrypt(&contents, passphrase).map_err(invalid)?
        }
        _ => return Err(invalid("unsupported format_version".into())),
    };
    let key = SigningKey::from_bytes(&secret);
    if hex::encode(key.verifying_key().to_bytes()) != contents.public_key {
        return Err(invalid("public_key does not belong to secret_key".into()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_private_on_write_and_refused_when_open() {
        // Proves written key files are mode 0600, round-trip, and a group-readable one is refused.
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("key.json");
        let key = SigningKey::from_bytes(&[3; 32]);
        write(&path, &key).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load(&path).unwrap().to_bytes(), key.to_bytes());
        assert!(
            matches!(write(&path, &key), Err(KeyFileError::Io { .. })),
            "no silent overwrite"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let error = load(&path).unwrap_err();
        assert!(matches!(error, KeyFileError::TooOpen { mode: 0o640, .. }));
        assert!(
            !error.to_string().contains(&hex::encode(key.to_bytes())),
            "errors never show key bytes"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "{}").unwrap();
        assert!(matches!(load(&path), Err(KeyFileError::Invalid { .. })));
    }

    #[test]
    fn an_encrypted_key_needs_its_passphrase_and_no_error_shows_key_bytes() {
        // Proves passphrase encryption: the file holds no secret bytes, the right passphrase
        // loads the key, a wrong one, a missing one, or an altered file or public key is
        // refused, short passphrases are refused, and no error or Debug output carries the
        // secret or the passphrase.
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("key.json");
        let key = SigningKey::from_bytes(&[9; 32]);
        let secret_hex = hex::encode(key.to_bytes());
        let passphrase = Passphrase::new("correct horse battery staple".into());
        let short = Passphrase::new("short".into());
        assert!(write_encrypted(&folder.path().join("short.json"), &key, &short).is_err());
        write_encrypted(&path, &key, &passphrase).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&secret_hex));
        assert!(text.contains("argon2id") && text.contains("xchacha20poly1305"));
        assert_eq!(
            load_with(&path, Some(&passphrase)).unwrap().to_bytes(),
            key.to_bytes()
        );
        let mut errors = Vec::new();
        errors.push(load_with(&path, None).unwrap_err().to_string());
        let wrong = Passphrase::new("incorrect horse battery staple".into());
        errors.push(load_with(&path, Some(&wrong)).unwrap_err().to_string());
        // Another public key over the same ciphertext is refused (it is authenticated).
        let other = hex::encode(SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes());
        let public = hex::encode(key.verifying_key().to_bytes());
        let moved = folder.path().join("moved.json");
        std::fs::write(&moved, text.replace(&public, &other)).unwrap();
        std::fs::set_permissions(&moved, std::fs::Permissions::from_mode(0o600)).unwrap();
        errors.push(
            load_with(&moved, Some(&passphrase))
                .unwrap_err()
                .to_string(),
        );
        // A plaintext file whose JSON is broken next to the secret.
        let broken = folder.path().join("broken.json");
        std::fs::write(
            &broken,
            format!("{{\"format_version\": 1, \"secret_key\": \"{secret_hex}\", \"x\": }}"),
        )
        .unwrap();
        std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o600)).unwrap();
        errors.push(load_with(&broken, None).unwrap_err().to_string());
        for error in &errors {
            assert!(!error.contains(&secret_hex), "{error}");
            assert!(!error.contains("horse"), "{error}");
        }
        assert!(errors[0].contains(PASSPHRASE_VARIABLE), "{}", errors[0]);
        assert!(errors[1].contains("wrong passphrase"), "{}", errors[1]);
        assert!(!format!("{passphrase:?}").contains("horse"));
        let debug = format!("{key:?}");
        assert!(
            !debug.contains(&secret_hex) && !debug.contains("9, 9, 9"),
            "{debug}"
        );
    }
}
