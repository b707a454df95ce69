//! Key files: ed25519 secret keys written readable by their owner only, and refused on load
//! when group or others could read them.

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
    secret_key: String,
}

/// Draws a new key from the operating system's randomness.
pub fn generate() -> Result<SigningKey, getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes a new key file with mode 0600; refuses to overwrite an existing file.
pub fn write(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let contents = KeyFile {
        format_version: 1,
        algorithm: "ed25519".into(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        secret_key: hex::encode(key.to_bytes()),
    };
    let json = serde_json::to_string_pretty(&contents).expect("a key file always serializes");
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

/// Loads a key file, refusing one that group or others can read.
pub fn load(path: &Path) -> Result<SigningKey, KeyFileError> {
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
    let contents: KeyFile =
        serde_json::from_str(&text).map_err(|error| invalid(error.to_string()))?;
    if contents.format_version != 1 || contents.algorithm != "ed25519" {
        return Err(invalid("unsupported format_version or algorithm".into()));
    }
    let secret: [u8; 32] = hex::decode(&contents.secret_key)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| invalid("secret_key must be 32 bytes of hex".into()))?;
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
}
