//! The log's tree hash `H` (SPEC §1): BLAKE3-256 or SHA-256, fixed when a log is created.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

use crate::Error;

/// A 32-byte hash: a leaf hash, a node hash or a root.
pub type Hash = [u8; 32];

/// The tree hash function of one log. Chosen at creation and never changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TreeHash {
    /// BLAKE3-256, the default.
    #[default]
    Blake3,
    /// SHA-256, for RFC 6962 / C2SP tooling and public witnesses.
    Sha256,
}

impl TreeHash {
    /// The name used in log descriptors: `blake3` or `sha256`.
    pub fn name(self) -> &'static str {
        match self {
            TreeHash::Blake3 => "blake3",
            TreeHash::Sha256 => "sha256",
        }
    }

    /// `H(data)`.
    #[inline]
    pub fn digest(self, data: &[u8]) -> Hash {
        match self {
            TreeHash::Blake3 => *blake3::hash(data).as_bytes(),
            TreeHash::Sha256 => sha2::Sha256::digest(data).into(),
        }
    }

    /// Root of the empty tree, `H("")`.
    pub fn empty_root(self) -> Hash {
        self.digest(b"")
    }

    /// Leaf hash `H(0x00 || entry)`.
    #[inline]
    pub fn leaf(self, entry: &[u8]) -> Hash {
        match self {
            TreeHash::Blake3 => {
                let mut h = blake3::Hasher::new();
                h.update(&[0]);
                h.update(entry);
                *blake3::Hasher::finalize(&h).as_bytes()
            }
            TreeHash::Sha256 => {
                let mut h = sha2::Sha256::new();
                h.update([0u8]);
                h.update(entry);
                h.finalize().into()
            }
        }
    }

    /// Node hash `H(0x01 || left || right)`, hashed from one contiguous buffer
    /// (measurably faster for BLAKE3 than three `update` calls).
    #[inline]
    pub fn node(self, left: &Hash, right: &Hash) -> Hash {
        let mut buf = [0u8; 65];
        buf[0] = 1;
        buf[1..33].copy_from_slice(left);
        buf[33..].copy_from_slice(right);
        self.digest(&buf)
    }
}

impl fmt::Display for TreeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TreeHash {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "blake3" => Ok(TreeHash::Blake3),
            "sha256" => Ok(TreeHash::Sha256),
            other => Err(Error::UnknownTreeHash(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_empty_root_is_rfc6962() {
        assert_eq!(
            hex::encode(TreeHash::Sha256.empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn leaf_and_node_are_domain_separated() {
        for h in [TreeHash::Blake3, TreeHash::Sha256] {
            assert_eq!(h.leaf(b"abc"), h.digest(b"\x00abc"));
            let (l, r) = (h.digest(b"l"), h.digest(b"r"));
            let mut cat = vec![1u8];
            cat.extend_from_slice(&l);
            cat.extend_from_slice(&r);
            assert_eq!(h.node(&l, &r), h.digest(&cat));
        }
    }

    #[test]
    fn names_round_trip() {
        for h in [TreeHash::Blake3, TreeHash::Sha256] {
            assert_eq!(h.name().parse::<TreeHash>().unwrap(), h);
        }
        assert!("md5".parse::<TreeHash>().is_err());
    }
}
