//! Ed25519 keys in a PKCS#11 token (an HSM, SoftHSM2 in tests), signing with CKM_EDDSA (pure
//! Ed25519). The private key is generated in the token, sensitive and not extractable; the
//! node and the CLI only ever hold a handle to it and the public key.
//!
//! One library context per module path per process (PKCS#11 allows one initialisation), one
//! logged-in session per signer, used under a lock (a session is not for concurrent use).

use super::{check, Signer, SignerError};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// The curve parameters of Ed25519 as SoftHSM2 and OpenSC take them: the PrintableString
/// "edwards25519" (RFC 8410's OID 1.3.101.112 is the other accepted form).
const ED25519_PARAMS: [u8; 14] = [
    0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
];

/// Where the PIN comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PinSource {
    /// `pin-source=file:<path>`: the file's first line.
    File(PathBuf),
    /// `pin-value=` in the URI (RFC 7512 allows it; a file keeps it out of shell history).
    Value(String),
    /// Neither: the environment variable `TPW_PKCS11_PIN`.
    Environment,
}

/// A key in a token, as an RFC 7512 URI names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenKey {
    /// The PKCS#11 library.
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// The key's label (CKA_LABEL).
    pub object: String,
    pin: PinSource,
}

impl TokenKey {
    /// Parses `pkcs11:token=..;object=..?module-path=..&pin-source=file:..`. Values are
    /// percent-decoded; attributes other than these are refused, so a typo is not ignored.
    pub fn parse(uri: &str) -> Result<Self, SignerError> {
        let bad = |message: String| Err(SignerError::Uri(message));
        let Some(rest) = uri.strip_prefix("pkcs11:") else {
            return bad("it must start with \"pkcs11:\"".into());
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut token, mut object, mut module, mut pin) = (None, None, None, None);
        for (separator, part) in [(';', path), ('&', query)] {
            for attribute in part
                .split(separator)
                .filter(|attribute| !attribute.is_empty())
            {
                let Some((name, value)) = attribute.split_once('=') else {
                    return bad(format!("{attribute:?} is not name=value"));
                };
                let value = percent_decoded(value)?;
                match (separator, name) {
                    (';', "token") => token = Some(value),
                    (';', "object") => object = Some(value),
                    ('&', "module-path") => module = Some(PathBuf::from(value)),
                    ('&', "pin-source") => match value.strip_prefix("file:") {
                        Some(file) => pin = Some(PinSource::File(PathBuf::from(file))),
                        None => return bad("pin-source must be file:<path>".into()),
                    },
                    ('&', "pin-value") => pin = Some(PinSource::Value(value)),
                    _ => return bad(format!("attribute {name:?} is not supported here")),
                }
            }
        }
        let module = module
            .or_else(|| std::env::var_os("TPW_PKCS11_MODULE").map(PathBuf::from))
            .ok_or_else(|| {
                SignerError::Uri(
                    "no module-path, and TPW_PKCS11_MODULE is not set (the token's PKCS#11 library, such as /usr/lib/softhsm/libsofthsm2.so)"
                        .into(),
                )
            })?;
        match (token, object) {
            (Some(token), Some(object)) => Ok(Self {
                module,
                token,
                object,
                pin: pin.unwrap_or(PinSource::Environment),
            }),
            _ => bad("it must name token=<label> and object=<key label>".into()),
        }
    }

    fn pin(&self) -> Result<AuthPin, SignerError> {
        let pin = match &self.pin {
            PinSource::Value(value) => value.clone(),
            PinSource::File(path) => std::fs::read_to_string(path)
                .map_err(|error| {
                    SignerError::Uri(format!("pin-source {}: {error}", path.display()))
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
            PinSource::Environment => std::env::var("TPW_PKCS11_PIN").map_err(|_| {
                SignerError::Uri("no pin-source or pin-value, and TPW_PKCS11_PIN is not set".into())
            })?,
        };
        Ok(AuthPin::new(pin.into()))
    }

    /// A description without the PIN.
    fn describe(&self) -> String {
        format!(
            "PKCS#11 token {:?} key {:?} ({})",
            self.token,
            self.object,
            self.module.display()
        )
    }
}

/// `%XX` sequences decoded.
fn percent_decoded(value: &str) -> Result<String, SignerError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| SignerError::Uri(format!("bad percent-encoding in {value:?}")))?;
            out.push(hex);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).map_err(|_| SignerError::Uri(format!("{value:?} is not UTF-8")))
}

fn token_error(what: &str) -> impl Fn(cryptoki::error::Error) -> SignerError + '_ {
    move |error| SignerError::Token(format!("{what}: {error}"))
}

/// The process's context for `module`, initialised once.
fn context(module: &PathBuf) -> Result<Pkcs11, SignerError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut contexts = CONTEXTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(context) = contexts.get(module) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(module).map_err(|error| {
        SignerError::Token(format!("cannot load {}: {error}", module.display()))
    })?;
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(token_error("C_Initialize"))?;
    contexts.insert(module.clone(), context.clone());
    Ok(context)
}

/// A logged-in session on the token `key` names.
fn session(key: &TokenKey, read_write: bool) -> Result<Session, SignerError> {
    let context = context(&key.module)?;
    let mut found = None;
    for slot in context
        .get_slots_with_token()
        .map_err(token_error("C_GetSlotList"))?
    {
        let info = context
            .get_token_info(slot)
            .map_err(token_error("C_GetTokenInfo"))?;
        if info.label().trim_end() == key.token {
            found = Some(slot);
            break;
        }
    }
    let slot = found.ok_or_else(|| {
        SignerError::Token(format!(
            "no token labelled {:?} in {}",
            key.token,
            key.module.display()
        ))
    })?;
    let session = if read_write {
        context.open_rw_session(slot)
    } else {
        context.open_ro_session(slot)
    }
    .map_err(token_error("C_OpenSession"))?;
    match session.login(UserType::User, Some(&key.pin()?)) {
        Ok(()) => {}
        // Sessions of one process share the login.
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
        Err(error) => return Err(token_error("C_Login")(error)),
    }
    Ok(session)
}

/// The public key of the token's ed25519 public key object labelled `label`.
fn public_key(session: &Session, label: &str) -> Result<[u8; 32], SignerError> {
    let object = find_key(session, ObjectClass::PUBLIC_KEY, "public", label)?;
    let attributes = session
        .get_attributes(object, &[AttributeType::EcPoint])
        .map_err(token_error("C_GetAttributeValue"))?;
    let point = attributes
        .iter()
        .find_map(|attribute| match attribute {
            Attribute::EcPoint(point) => Some(point.as_slice()),
            _ => None,
        })
        .unwrap_or_default();
    // CKA_EC_POINT is the raw 32 bytes, or (as SoftHSM2 writes it) a DER OCTET STRING of them.
    let raw = match point {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        raw => raw,
    };
    <[u8; 32]>::try_from(raw).map_err(|_| {
        SignerError::Token(format!(
            "public key {label:?} is not a 32-byte ed25519 point"
        ))
    })
}

/// The private key object labelled `label`.
fn private_key(session: &Session, label: &str) -> Result<ObjectHandle, SignerError> {
    find_key(session, ObjectClass::PRIVATE_KEY, "private", label)
}

/// The one ed25519 key object of `class` labelled `label`; none or several is an error.
fn find_key(
    session: &Session,
    class: ObjectClass,
    kind: &str,
    label: &str,
) -> Result<ObjectHandle, SignerError> {
    let objects = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(token_error("C_FindObjects"))?;
    match objects.as_slice() {
        [object] => Ok(*object),
        _ => Err(SignerError::Token(format!(
            "{} ed25519 {kind} keys labelled {label:?} (one is needed)",
            objects.len()
        ))),
    }
}

/// Generates an ed25519 key pair in the token, labelled `key.object` (refused when a key with
/// that label exists); returns its public key. The private key is sensitive and never
/// extractable.
pub fn generate(key: &TokenKey) -> Result<[u8; 32], SignerError> {
    let session = session(key, true)?;
    if public_key(&session, &key.object).is_ok() || private_key(&session, &key.object).is_ok() {
        return Err(SignerError::Token(format!(
            "the token already holds a key labelled {:?}",
            key.object
        )));
    }
    let label = Attribute::Label(key.object.as_bytes().to_vec());
    let public_template = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(ED25519_PARAMS.to_vec()),
        label.clone(),
    ];
    let private_template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sign(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        label,
    ];
    session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &public_template,
            &private_template,
        )
        .map_err(token_error("C_GenerateKeyPair"))?;
    public_key(&session, &key.object)
}

/// A signer whose key stays in the token.
pub struct Pkcs11Signer {
    session: Mutex<Session>,
    private: ObjectHandle,
    public_key: [u8; 32],
    description: String,
}

impl Pkcs11Signer {
    /// Logs in to the token and finds the key; a test signature is checked against its public
    /// key, so a signer that opens is one that signs.
    pub fn open(key: &TokenKey) -> Result<Self, SignerError> {
        let session = session(key, false)?;
        let public_key = public_key(&session, &key.object)?;
        let private = private_key(&session, &key.object)?;
        let signer = Self {
            session: Mutex::new(session),
            private,
            public_key,
            description: key.describe(),
        };
        signer.sign(b"tpwalletoec/pkcs11-signer-check")?;
        Ok(signer)
    }
}

impl Signer for Pkcs11Signer {
    fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError> {
        let signature = {
            let session = self
                .session
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            session
                .sign(
                    &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    self.private,
                    message,
                )
                .map_err(token_error("C_Sign"))?
        };
        let signature = <[u8; 64]>::try_from(signature.as_slice()).map_err(|_| {
            SignerError::Token(format!(
                "C_Sign returned {} bytes, not an ed25519 signature",
                signature.len()
            ))
        })?;
        check(&self.public_key, message, &signature)?;
        Ok(signature)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_token_key_module_and_pin_source() {
        // Proves the URI forms the CLI and docs use parse, percent-decoded, and that a URI
        // missing what it must name, or carrying an unknown attribute, is refused clearly.
        let key = TokenKey::parse(
            "pkcs11:token=tpw%20bank;object=acme?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin",
        )
        .unwrap();
        assert_eq!(key.token, "tpw bank");
        assert_eq!(key.object, "acme");
        assert_eq!(key.module, PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
        assert_eq!(key.pin, PinSource::File("/run/pin".into()));
        assert!(!key.describe().contains("/run/pin"));
        for (uri, expected) in [
            ("acme.json", "must start with"),
            ("pkcs11:token=t?module-path=/m.so", "must name token"),
            (
                "pkcs11:token=t;object=o;slot=1?module-path=/m.so",
                "not supported",
            ),
            (
                "pkcs11:token=t;object=o?module-path=/m.so&pin-source=env:X",
                "file:<path>",
            ),
            (
                "pkcs11:token=t;object=%zz?module-path=/m.so",
                "percent-encoding",
            ),
            ("pkcs11:token=t;object?module-path=/m.so", "name=value"),
        ] {
            let error = TokenKey::parse(uri).unwrap_err().to_string();
            assert!(error.contains(expected), "{uri}: {error}");
        }
    }
}
