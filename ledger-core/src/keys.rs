//! Ed25519 keys: log keys and service identities, verifier-key strings and key ids (SPEC §4),
//! and key files kept with mode 0600.
//!
//! Key files use the signed-note private-key format of Go's `golang.org/x/mod/sumdb/note`:
//! `PRIVATE+KEY+<name>+<key id>+<base64(0x01 || seed)>`, so the same file works with C2SP tools.
//!
//! Verification is always strict (`verify_strict`): small-order keys and `R`, and non-canonical
//! `S`, are rejected (SPEC §4).

use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::Digest as _;

use crate::{Error, Result};

/// The signature-type byte of Ed25519 in signed-note keys.
const ALG_ED25519: u8 = 0x01;

/// Checks that `bytes` is an Ed25519 public key the log accepts: a valid point, not of small order.
pub fn check_public_key(bytes: &[u8; 32]) -> Result<VerifyingKey> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| Error::BadPublicKey("not a valid curve point"))?;
    if key.is_weak() {
        return Err(Error::BadPublicKey("small-order point: it would accept forged signatures"));
    }
    Ok(key)
}

/// Checks a key name (= log origin): non-empty, printable, without whitespace or `+`.
pub fn check_key_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '+') {
        return Err(Error::BadOrigin(name.to_string()));
    }
    Ok(())
}

/// The signed-note key id: the first 4 bytes of `SHA-256(name || 0x0A || 0x01 || public_key)`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = sha2::Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Strict Ed25519 verification of `sig` over `msg`.
pub fn verify_strict(key: &VerifyingKey, msg: &[u8], sig: &[u8; 64]) -> bool {
    key.verify_strict(msg, &Signature::from_bytes(sig)).is_ok()
}

/// A verifier key, `<name>+<key id hex>+<base64(0x01 || public key)>`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl VerifierKey {
    /// The key for `name` and `public_key`.
    pub fn new(name: &str, public_key: &[u8; 32]) -> Result<VerifierKey> {
        check_key_name(name)?;
        let key = check_public_key(public_key)?;
        Ok(VerifierKey { name: name.to_string(), id: key_id(name, public_key), key })
    }

    /// The key name (for a log key: the origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key id.
    pub fn id(&self) -> [u8; 4] {
        self.id
    }

    /// The Ed25519 key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Strictly verifies `sig` over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        verify_strict(&self.key, msg, sig)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut k = [0u8; 33];
        k[0] = ALG_ED25519;
        k[1..].copy_from_slice(self.key.as_bytes());
        write!(f, "{}+{}+{}", self.name, hex::encode(self.id), B64.encode(k))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl FromStr for VerifierKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<VerifierKey> {
        let bad = |why: &str| Error::MalformedKey(format!("{why} in {s:?}"));
        // Names never contain '+'; base64 may, so split from the left.
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected <name>+<key id>+<key>"));
        };
        check_key_name(name)?;
        let id: [u8; 4] = hex::decode(id_hex)
            .ok()
            .and_then(|v| v.try_into().ok())
            .filter(|_| id_hex.len() == 8 && id_hex.bytes().all(|b| !b.is_ascii_uppercase()))
            .ok_or_else(|| bad("key id is not 8 lowercase hex digits"))?;
        let raw = B64.decode(b64).map_err(|_| bad("key is not standard base64"))?;
        let [alg, key @ ..] = raw.as_slice() else {
            return Err(bad("empty key"));
        };
        if *alg != ALG_ED25519 {
            return Err(bad("key type is not Ed25519 (0x01)"));
        }
        let key: [u8; 32] = key.try_into().map_err(|_| bad("Ed25519 key is not 32 bytes"))?;
        let vk = VerifierKey::new(name, &key)?;
        if vk.id != id {
            return Err(bad("key id does not match the name and key"));
        }
        Ok(vk)
    }
}

/// A named Ed25519 signing key: a log key (named by the origin) or a service identity.
pub struct NamedKey {
    name: String,
    key: SigningKey,
}

impl fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedKey").field("name", &self.name).field("public", &self.verifier()).finish()
    }
}

impl NamedKey {
    /// A key from its 32-byte seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<NamedKey> {
        check_key_name(name)?;
        Ok(NamedKey { name: name.to_string(), key: SigningKey::from_bytes(&seed) })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key bytes.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The verifier key.
    pub fn verifier(&self) -> VerifierKey {
        let public = self.public_key();
        VerifierKey { name: self.name.clone(), id: key_id(&self.name, &public), key: self.key.verifying_key() }
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    /// The key-file text (one line, secret).
    pub fn to_private_string(&self) -> String {
        let mut k = [0u8; 33];
        k[0] = ALG_ED25519;
        k[1..].copy_from_slice(self.key.as_bytes());
        let id = key_id(&self.name, &self.public_key());
        format!("PRIVATE+KEY+{}+{}+{}", self.name, hex::encode(id), B64.encode(k))
    }

    /// Parses key-file text.
    pub fn from_private_string(s: &str) -> Result<NamedKey> {
        let bad = |why: &str| Error::MalformedKey(format!("private key: {why}"));
        let rest = s.trim_end().strip_prefix("PRIVATE+KEY+").ok_or_else(|| bad("missing PRIVATE+KEY+ prefix"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected PRIVATE+KEY+<name>+<key id>+<key>"));
        };
        let raw = B64.decode(b64).map_err(|_| bad("key is not standard base64"))?;
        let [ALG_ED25519, seed @ ..] = raw.as_slice() else {
            return Err(bad("key type is not Ed25519 (0x01)"));
        };
        let seed: [u8; 32] = seed.try_into().map_err(|_| bad("seed is not 32 bytes"))?;
        let key = NamedKey::from_seed(name, seed)?;
        if hex::encode(key_id(name, &key.public_key())) != id_hex {
            return Err(bad("key id does not match the name and key"));
        }
        Ok(key)
    }

    /// Loads the key at `path`, or creates it there (mode 0600) from `fresh_seed` if the file
    /// does not exist. Randomness is passed in; binaries use the OS generator.
    ///
    /// Creation writes a temporary file with mode 0600, syncs it, renames it into place and syncs
    /// the directory, so a crash leaves either no key or the whole key. A key file that others
    /// can read is refused rather than used.
    pub fn load_or_create(
        path: &Path,
        name: &str,
        fresh_seed: impl FnOnce() -> std::io::Result<[u8; 32]>,
    ) -> Result<NamedKey> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private_mode(path)?;
                let key = NamedKey::from_private_string(&text)
                    .map_err(|e| Error::KeyFile { path: path.into(), reason: e.to_string() })?;
                if key.name != name {
                    return Err(Error::KeyFile {
                        path: path.into(),
                        reason: format!("holds the key of {:?}, expected {name:?}", key.name),
                    });
                }
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let seed = fresh_seed().map_err(|e| Error::io(path, e))?;
                let key = NamedKey::from_seed(name, seed)?;
                write_private_file(path, key.to_private_string().as_bytes())?;
                Ok(key)
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

fn check_private_mode(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::KeyFile {
            path: path.into(),
            reason: format!("is accessible to others (mode {:o}); run chmod 600 on it", mode & 0o777),
        });
    }
    Ok(())
}

/// Writes a secret file atomically with mode 0600 (temp file, fsync, rename, fsync directory).
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    f.write_all(contents).and_then(|_| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_key_round_trip() {
        let k = NamedKey::from_seed("example.com/log", [7; 32]).unwrap();
        let vk = k.verifier();
        let s = vk.to_string();
        assert_eq!(s.parse::<VerifierKey>().unwrap(), vk);
        // A key id for another name does not parse.
        let other = s.replacen("example.com/log", "example.com/lag", 1);
        assert!(other.parse::<VerifierKey>().is_err());
        let p = k.to_private_string();
        assert_eq!(NamedKey::from_private_string(&p).unwrap().public_key(), k.public_key());
    }

    #[test]
    fn keys_whose_base64_holds_a_plus_parse() {
        let mut found = 0;
        for seed in 0..64u8 {
            let k = NamedKey::from_seed("example.com/log", [seed; 32]).unwrap();
            let (v, p) = (k.verifier().to_string(), k.to_private_string());
            let b64 = v.splitn(3, '+').nth(2).unwrap();
            if b64.contains('+') {
                found += 1;
            }
            assert_eq!(v.parse::<VerifierKey>().unwrap(), k.verifier(), "{v}");
            assert_eq!(NamedKey::from_private_string(&p).unwrap().public_key(), k.public_key());
        }
        assert!(found > 0, "some of these keys have '+' in their base64");
    }

    #[test]
    fn small_order_keys_are_refused() {
        // The identity point (small order) and a non-point.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(check_public_key(&identity), Err(Error::BadPublicKey(_))));
        assert!(VerifierKey::new("n", &identity).is_err());
    }

    #[test]
    fn key_files_are_private_and_reloaded() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.key");
        let a = NamedKey::load_or_create(&path, "o", || Ok([3; 32])).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let b = NamedKey::load_or_create(&path, "o", || panic!("must not regenerate")).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert!(NamedKey::load_or_create(&path, "other", || Ok([0; 32])).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(NamedKey::load_or_create(&path, "o", || Ok([0; 32])), Err(Error::KeyFile { .. })));
    }
}
