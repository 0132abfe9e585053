//! Payloads waiting for a remote ledger: `<spool>/payloads/<hex>`, one file per payload.
//!
//! Durability rules kept here:
//! - a payload is written to a temporary file, fsynced, renamed to its hash and the directory
//!   fsynced before [`PayloadSpool::put`] returns, so a payload acknowledged while the ledger is
//!   away survives a crash, and a torn write never has a payload's name;
//! - a file is deleted only after the ledger acknowledged the upload (its PUT is durable there);
//! - the forwarder uploads every waiting payload before it forwards any further batch, so an
//!   entry never reaches the ledger before the payload it names (entries naming a payload are
//!   appended only after the payload was kept).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ledger_core::{Error, Result};

/// The directory of payloads waiting for the ledger.
#[derive(Debug)]
pub struct PayloadSpool {
    dir: PathBuf,
    waiting: AtomicUsize,
}

impl PayloadSpool {
    /// Opens (creating) `<spool>/payloads`, counting the payloads an earlier process left.
    pub fn open(spool: &Path) -> Result<PayloadSpool> {
        let dir = spool.join("payloads");
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let waiting = std::fs::read_dir(&dir)
            .map_err(|e| io_error(&dir, e))?
            .flatten()
            .filter(|e| parse_name(&e.file_name().to_string_lossy()).is_some())
            .count();
        Ok(PayloadSpool { dir, waiting: AtomicUsize::new(waiting) })
    }

    /// Payloads waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Keeps `bytes` under `hash` until the ledger has them (durable when this returns).
    pub fn put(&self, hash: &[u8; 32], bytes: &[u8]) -> Result<()> {
        let name = hex::encode(hash);
        let path = self.dir.join(&name);
        if path.exists() {
            return Ok(());
        }
        crate::base::fs::write_atomically(&path, bytes).map_err(|e| io_error(&path, e))?;
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// The payloads waiting, each as (hash, bytes).
    pub fn list(&self) -> Result<Vec<([u8; 32], Vec<u8>)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, e))?.flatten() {
            let Some(hash) = parse_name(&e.file_name().to_string_lossy()) else { continue };
            let bytes = std::fs::read(e.path()).map_err(|err| io_error(&e.path(), err))?;
            out.push((hash, bytes));
        }
        Ok(out)
    }

    /// The bytes of a waiting payload, if it is one.
    pub fn get(&self, hash: &[u8; 32]) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(hex::encode(hash))).ok()
    }

    /// Forgets a payload the ledger acknowledged.
    pub fn done(&self, hash: &[u8; 32]) -> Result<()> {
        let path = self.dir.join(hex::encode(hash));
        match std::fs::remove_file(&path) {
            Ok(()) => {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, e)),
        }
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{}: {e}", path.display()))
}

fn parse_name(name: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    (name.len() == 64).then_some(())?;
    hex::decode_to_slice(name, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_wait_across_a_reopen_until_done() {
        let dir = tempfile::tempdir().unwrap();
        let s = PayloadSpool::open(dir.path()).unwrap();
        let (a, b) = (*blake3::hash(b"a").as_bytes(), *blake3::hash(b"b").as_bytes());
        s.put(&a, b"a").unwrap();
        s.put(&a, b"a").unwrap();
        s.put(&b, b"b").unwrap();
        assert_eq!(s.waiting(), 2);
        std::fs::write(dir.path().join("payloads").join(".junk.tmp"), b"torn").unwrap();
        let s = PayloadSpool::open(dir.path()).unwrap();
        assert_eq!(s.waiting(), 2, "a temporary file is not a payload");
        let mut all = s.list().unwrap();
        all.sort();
        assert_eq!(all.len(), 2);
        assert_eq!(s.get(&a).as_deref(), Some(&b"a"[..]));
        s.done(&a).unwrap();
        s.done(&a).unwrap();
        assert_eq!(s.waiting(), 1);
        assert_eq!(s.get(&a), None);
    }
}
