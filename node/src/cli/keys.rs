//! `tpw keygen`, `tpw encrypt-key` and `tpw admin-token`: the key and token files a node and
//! its operators hold.

use super::common::print_json;
use anyhow::Context;
use std::path::PathBuf;

/// What `tpw keygen` was asked.
#[derive(clap::Args)]
pub(crate) struct KeygenArgs {
    /// Where to write it; an existing file is never overwritten.
    #[arg(long, required_unless_present = "pkcs11", conflicts_with = "pkcs11")]
    out: Option<PathBuf>,
    /// Generate the key in a PKCS#11 token instead, labelled as the URI's `object` (sensitive,
    /// never extractable; refused if the label is taken): `pkcs11:token=LABEL;object=KEY?
    /// module-path=LIB&pin-source=file:PIN_FILE`. Prints its public key.
    #[arg(long)]
    pkcs11: Option<String>,
    /// Encrypts it under the passphrase in TPW_KEY_PASSPHRASE (or the file named by
    /// TPW_KEY_PASSPHRASE_FILE): Argon2id and XChaCha20-Poly1305.
    #[arg(long)]
    encrypt: bool,
}

/// What `tpw encrypt-key` was asked.
#[derive(clap::Args)]
pub(crate) struct EncryptKeyArgs {
    /// The key file.
    #[arg(long)]
    file: PathBuf,
}

/// What `tpw admin-token` was asked.
#[derive(clap::Args)]
pub(crate) struct AdminTokenArgs {
    /// Where to write it; an existing file is never overwritten.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `tpw keygen`.
pub(crate) fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let KeygenArgs {
        out,
        pkcs11,
        encrypt,
    } = args;
    if let Some(uri) = pkcs11 {
        anyhow::ensure!(
            !encrypt,
            "--encrypt is for key files; a token protects its own keys"
        );
        let key = tpw_node::signer::pkcs11::TokenKey::parse(&uri)?;
        let public_key = tpw_node::signer::pkcs11::generate(&key)?;
        return print_json(&serde_json::json!({
            "public_key": hex::encode(public_key),
            "token": key.token,
            "object": key.object,
        }));
    }
    let out = out.context("--out names the key file")?;
    let key = tpw_node::keys::generate()?;
    if encrypt {
        tpw_node::keys::write_encrypted(&out, &key, &passphrase_for_encryption()?)?;
    } else {
        tpw_node::keys::write(&out, &key)?;
    }
    print_json(&serde_json::json!({
        "public_key": hex::encode(key.verifying_key().to_bytes()),
        "file": out,
        "encrypted": encrypt,
    }))
}

/// Runs `tpw encrypt-key`.
pub(crate) fn encrypt_key(args: EncryptKeyArgs) -> anyhow::Result<()> {
    let EncryptKeyArgs { file } = args;
    let passphrase = passphrase_for_encryption()?;
    let key = tpw_node::keys::load_with(&file, None)
        .context("only a plaintext key file can be encrypted")?;
    let name = file
        .file_name()
        .context("the key file path names no file")?
        .to_string_lossy()
        .into_owned();
    let staged = file.with_file_name(format!(".{name}.encrypting"));
    let _ = std::fs::remove_file(&staged);
    tpw_node::keys::write_encrypted(&staged, &key, &passphrase)?;
    // The new file is complete and synced before it replaces the old one.
    std::fs::rename(&staged, &file)
        .with_context(|| format!("cannot replace {}", file.display()))?;
    print_json(&serde_json::json!({
        "public_key": hex::encode(key.verifying_key().to_bytes()),
        "file": file,
        "encrypted": true,
    }))
}

/// Runs `tpw admin-token`.
pub(crate) fn admin_token(args: AdminTokenArgs) -> anyhow::Result<()> {
    tpw_node::keys::write_admin_token(&args.out)?;
    print_json(&serde_json::json!({ "file": args.out }))
}

/// The passphrase for encrypting a key file, from the environment.
fn passphrase_for_encryption() -> anyhow::Result<tpw_node::keys::Passphrase> {
    tpw_node::keys::Passphrase::from_environment()?.with_context(|| {
        format!(
            "set {} (or {} to a file of mode 0600 holding it) to the passphrase",
            tpw_node::keys::PASSPHRASE_VARIABLE,
            tpw_node::keys::PASSPHRASE_FILE_VARIABLE
        )
    })
}
