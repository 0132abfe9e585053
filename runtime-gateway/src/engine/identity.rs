//! The gateway's service identity: an Ed25519 key (mode 0600, generated on first start) that
//! signs every seal, registered in the log as `identity.registered` in run `id/<name>`.

use std::path::Path;

use ledger_core::{Entry, Error, Event, NamedKey, Result, RunId};

use crate::ledger::{self, Batch, Durable, LedgerSink};

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
    let run_name = run.as_str().to_string();
    let run_str = run_name.as_str();
    let existing = sink.run_entries(run_str).await?;
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
    let opens_run = entry.seq == 0;
    match ledger::append(sink, Batch::new(vec![entry.encode()], opens_run)).await? {
        Durable::Logged(indices) if indices.is_empty() => Err(Error::Closed),
        // On the bus, acknowledged means in the stream, not yet appended: the sequencer may still
        // refuse it (another registration won seq `entry.seq`, say), and seals signed with a key
        // the log does not hold would not verify. So the registration counts only once the log
        // shows it. One read suffices: reads carry the highest acknowledged position, and a
        // replica answers only after applying the stream that far, so a registration absent
        // from its answer was refused. Reading (rather than waiting for the result message)
        // also gives the index the replicas serve.
        Durable::Streamed { position } => {
            let entries = sink.run_entries(run_str).await?;
            entries
                .iter()
                .rev()
                .find_map(|(index, bytes)| match Entry::decode(bytes) {
                    Ok(Entry { event: Event::IdentityRegistered { public_key }, .. })
                        if public_key == key.public_key() =>
                    {
                        Some(Durable::Logged(vec![*index]))
                    }
                    _ => None,
                })
                .ok_or_else(|| {
                    Error::Storage(format!(
                        "the registration of identity {:?} (stream position {position}) is not in the log: the ledger refused it (see rejected.jsonl)",
                        key.name()
                    ))
                })
        }
        d => Ok(d),
    }
}

/// Registers `key` as [`register_identity`] does, and remembers under `data` that it did, for
/// this log (as read from the ledger at this start). When the gateway started `offline` (a remote ledger away at start: its
/// descriptor comes from the last start), a gateway whose key that log confirmed before starts
/// anyway; its entries wait in the spool, and the spool is forwarded only once the ledger shows
/// the same log still holding this key (`remote`). One never confirmed cannot start, since the
/// registration's place in `id/<name>` is unknown.
pub async fn register_or_remember(
    sink: &dyn LedgerSink,
    key: &NamedKey,
    data: &Path,
    offline: bool,
    ts: i64,
) -> anyhow::Result<()> {
    let marker = data.join(format!("identity-{}.registered.json", key.name()));
    let d = sink.descriptor();
    let this = serde_json::json!({
        "log": d,
        "identity": key.name(),
        "public_key": hex::encode(key.public_key()),
    });
    match register_identity(sink, key, ts).await {
        // Spooled counts: it is durable here, and after an offline start nothing is forwarded
        // before the ledger shows it holds the key.
        Ok(_) if !offline => {
            crate::base::fs::write_atomically(&marker, serde_json::to_string_pretty(&this)?.as_bytes())
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", marker.display()))?;
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => {
            let known = offline
                && std::fs::read(&marker)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .is_some_and(|v| v == this);
            if !known {
                return Err(anyhow::Error::new(e)
                    .context(format!("registering the gateway identity {:?} in the ledger", key.name())));
            }
            eprintln!(
                "identity {:?} was registered in this log before; the ledger cannot confirm it now ({e}), starting anyway",
                key.name()
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ledger_core::{Log, LogConfig, MemStore};

    use super::*;
    use crate::ledger::EmbeddedLedger;
    use crate::ledger::testing::{Mode, Noting};

    fn sink(mode: Mode) -> Noting {
        let log = Log::open(
            Arc::new(MemStore::new()),
            NamedKey::from_seed("test/log", [1; 32]).unwrap(),
            LogConfig::default(),
        )
        .unwrap();
        Noting::with_mode(EmbeddedLedger::new(Arc::new(log)), mode)
    }

    #[tokio::test]
    async fn a_streamed_registration_counts_once_the_log_shows_it_and_a_refused_one_fails() {
        let key = NamedKey::from_seed("gateway", [2; 32]).unwrap();
        let streamed = sink(Mode::Streamed);
        assert_eq!(register_identity(&streamed, &key, 0).await.unwrap(), Durable::Logged(vec![0]));
        // Registered already: nothing appended again.
        assert_eq!(register_identity(&streamed, &key, 1).await.unwrap(), Durable::Logged(vec![0]));
        assert_eq!(streamed.seen.lock().unwrap().len(), 1);

        let refused = sink(Mode::StreamedRefused);
        let e = register_identity(&refused, &key, 0).await.unwrap_err();
        assert!(e.to_string().contains("(stream position 1) is not in the log: the ledger refused it"), "{e}");
    }
}
