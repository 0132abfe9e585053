//! The gateway's service identity: an Ed25519 key (mode 0600, generated on first start) that
//! signs every seal, registered in the log as `identity.registered` in run `id/<name>`.

use std::path::Path;

use ledger_core::{Entry, Error, Event, NamedKey, Result, RunId};

use crate::sink::{self, Durable, LedgerSink};

/// A fresh 32-byte key seed from the OS.
pub fn os_seed() -> std::io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(std::io::Error::other)?;
    Ok(seed)
}

/// Loads the identity key at `path`, or creates it (mode 0600) with OS randomness.
pub fn load_or_create(path: &Path, name: &str) -> Result<NamedKey> {
    NamedKey::load_or_create(path, name, os_seed)
}

/// Registers `key` in run `id/<name>` unless it is already the latest registered key there.
/// Returns where the registration that is now current is durable. `ts` is the event time (Unix ns).
pub async fn register_identity(sink: &dyn LedgerSink, key: &NamedKey, ts: i64) -> Result<Durable> {
    let run = RunId::identity(key.name())?;
    let existing = sink.run_entries(run.as_str()).await?;
    let latest = existing.iter().rev().find_map(|(index, bytes)| match Entry::decode(bytes) {
        Ok(Entry { event: Event::IdentityRegistered { public_key }, .. }) => Some(Ok((*index, public_key))),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    });
    if let Some(latest) = latest {
        let (index, public_key) = latest?;
        if public_key == key.public_key() {
            return Ok(Durable::Logged(vec![index]));
        }
    }
    let entry = Entry {
        ts,
        run,
        seq: existing.len() as u64,
        actor: key.name().to_string(),
        event: Event::IdentityRegistered { public_key: key.public_key() },
        grant: None,
        payload: None,
    };
    match sink::append(sink, vec![entry.encode()]).await? {
        Durable::Logged(indices) if indices.is_empty() => Err(Error::Closed),
        d => Ok(d),
    }
}
