//! A log in a data directory: `DIR/log.key` (the log's signing key, mode 0600, created on first
//! use) and `DIR/rocksdb/` (the store). What `ledger-server` and an embedded gateway open.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::keys::{NamedKey, VerifierKey};
use crate::log::{Log, LogConfig};
use crate::store::{RocksConfig, RocksStore, Store};
use crate::{Error, Result};

/// File name of the log key inside a data directory.
pub const LOG_KEY_FILE: &str = "log.key";
/// Directory name of the RocksDB store inside a data directory.
pub const STORE_DIR: &str = "rocksdb";

/// Paths of a data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root` (created on open if missing).
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The log key file.
    pub fn key_path(&self) -> PathBuf {
        self.root.join(LOG_KEY_FILE)
    }

    /// Opens (or creates) the log: loads or creates the key for `origin` from `fresh_seed`,
    /// opens the store, and checks both against what the log was created with.
    pub fn open(
        &self,
        origin: &str,
        cfg: LogConfig,
        rocks: &RocksConfig,
        fresh_seed: impl FnOnce() -> std::io::Result<[u8; 32]>,
    ) -> Result<Log> {
        self.open_inner(origin, cfg, true, rocks, fresh_seed)
    }

    /// Like [`DataDir::open`], but `cfg.hash` applies only to a new log: an existing one opens
    /// with the hash it was created with.
    pub fn open_keeping_hash(
        &self,
        origin: &str,
        cfg: LogConfig,
        rocks: &RocksConfig,
        fresh_seed: impl FnOnce() -> std::io::Result<[u8; 32]>,
    ) -> Result<Log> {
        self.open_inner(origin, cfg, false, rocks, fresh_seed)
    }

    fn open_inner(
        &self,
        origin: &str,
        mut cfg: LogConfig,
        strict_hash: bool,
        rocks: &RocksConfig,
        fresh_seed: impl FnOnce() -> std::io::Result<[u8; 32]>,
    ) -> Result<Log> {
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let key = NamedKey::load_or_create(&self.key_path(), origin, fresh_seed)?;
        let store: Arc<dyn Store> = Arc::new(RocksStore::open(&self.root.join(STORE_DIR), rocks)?);
        if !strict_hash && let Some((params, _)) = store.load_meta()? {
            cfg.hash = params.hash;
        }
        Log::open(store, key, cfg)
    }

    /// The log key's verifier and the store, opened for reading only (for `fsck`): nothing in
    /// the directory is created or changed.
    pub fn open_read_only(&self, rocks: &RocksConfig) -> Result<(VerifierKey, RocksStore)> {
        let text = std::fs::read_to_string(self.key_path()).map_err(|e| Error::io(self.key_path(), e))?;
        let key = NamedKey::from_private_string(&text)?.verifier();
        Ok((key, RocksStore::open_read_only(&self.root.join(STORE_DIR), rocks)?))
    }

    /// The origin recorded in an existing log key, if there is one.
    pub fn existing_origin(&self) -> Result<Option<String>> {
        match std::fs::read_to_string(self.key_path()) {
            Ok(text) => Ok(Some(NamedKey::from_private_string(&text)?.name().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(self.key_path(), e)),
        }
    }
}
