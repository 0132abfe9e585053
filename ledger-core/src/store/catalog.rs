//! The run catalog: indexes derived from the entries, written by the committer in the same
//! atomic batch as the entries they describe, so that they are never ahead of or behind the log.
//!
//! One ordered key space (RocksDB column family `catalog`; a map in [`super::MemStore`]), each
//! key starting with a tag byte:
//!
//! | key                                                   | value           | from                           |
//! |-------------------------------------------------------|-----------------|--------------------------------|
//! | `c` ‖ len u16 BE ‖ caller ‖ accepted index u64 BE      | run             | `task.accepted` at seq 0       |
//! | `x` ‖ len u16 BE ‖ context ‖ accepted index u64 BE     | run             | the same, when it has `context`|
//! | `p` ‖ len u16 BE ‖ parent ‖ accepted index u64 BE      | run             | the same, when it has `parent` |
//! | `o` ‖ run                                             | accepted index  | put at `task.accepted` (seq 0), deleted at each `receipt.sealed` of the run |
//! | `h` ‖ BLAKE3 (32 bytes) ‖ index u64 BE                 | run             | every entry naming the hash (`EntryView::content_hashes`) |
//!
//! The length prefix keeps one key's runs contiguous whatever bytes the key holds (a context is
//! any text); the index at the end orders them by time, so a page of the newest runs is one
//! reverse scan. Payload references are keyed by the naming entry's index, not by run, so that
//! a reader bounded by the durable size can tell each one's place in the log; a run naming a
//! hash in several entries has several keys, and [`payload_runs`] lists it once.
//!
//! Operations are functions of one entry and its index alone ([`EntryFacts`]), applied in index
//! order: replaying them over any prefix of the log gives the catalog of that prefix, which is
//! how a store written before the catalog existed builds it, and how `fsck` checks it.

use super::Store;
use crate::entry::{EntryView, Kind};
use crate::{Error, Hash, Result};

const TAG_CALLER: u8 = b'c';
const TAG_CONTEXT: u8 = b'x';
const TAG_PARENT: u8 = b'p';
const TAG_OPEN: u8 = b'o';
const TAG_HASH: u8 = b'h';

/// One change to the catalog, applied in order with the rest of its batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogOp {
    /// Sets `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Removes `key` (absent or not).
    Delete(Vec<u8>),
}

/// Which index of runs to list: those accepted for a caller, in an A2A context, or on behalf of
/// a parent run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKey<'a> {
    /// `task.accepted`'s `caller`.
    Caller(&'a str),
    /// `task.accepted`'s `context`.
    Context(&'a str),
    /// `task.accepted`'s `parent`.
    Parent(&'a str),
}

/// A run in a listing: its id and the index of its `task.accepted`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunRef {
    /// The run.
    pub run: String,
    /// The log index of the run's `task.accepted`.
    pub index: u64,
}

/// What the catalog records of one entry, taken when the entry is checked (its index comes
/// later, when it is sequenced). `None` from [`EntryFacts::of`] for the many entries the
/// catalog has nothing to say about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryFacts {
    /// What a `task.accepted` at seq 0 says.
    accepted: Option<Accepted>,
    /// The entry is a `receipt.sealed`.
    sealed: bool,
    /// Content hashes it names.
    hashes: Vec<Hash>,
}

/// The listing keys of a run's `task.accepted`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Accepted {
    caller: Box<str>,
    context: Option<Box<str>>,
    parent: Option<Box<str>>,
}

impl EntryFacts {
    /// What the catalog records of `e`, or `None` if nothing. Cheap for every kind but
    /// `task.accepted`, `receipt.sealed` and the hash-carrying ones.
    pub fn of(e: &EntryView<'_>) -> Option<EntryFacts> {
        let kind = e.kind();
        let accepted = match e.accepted() {
            Some(a) if e.seq() == 0 => Some(Accepted {
                caller: a.caller.into(),
                context: a.context.map(Into::into),
                parent: a.parent.map(Into::into),
            }),
            _ => None,
        };
        let sealed = kind == Kind::ReceiptSealed;
        let hashes: Vec<Hash> = e.content_hashes().collect();
        (accepted.is_some() || sealed || !hashes.is_empty()).then_some(EntryFacts { accepted, sealed, hashes })
    }

    /// The operations recording this entry of `run` at `index`, appended to `out`.
    pub fn ops(&self, run: &str, index: u64, out: &mut Vec<CatalogOp>) {
        if let Some(Accepted { caller, context, parent }) = &self.accepted {
            out.push(CatalogOp::Put(run_key(RunKey::Caller(caller), index), run.as_bytes().to_vec()));
            if let Some(c) = context {
                out.push(CatalogOp::Put(run_key(RunKey::Context(c), index), run.as_bytes().to_vec()));
            }
            if let Some(p) = parent {
                out.push(CatalogOp::Put(run_key(RunKey::Parent(p), index), run.as_bytes().to_vec()));
            }
            out.push(CatalogOp::Put(open_key(run), index.to_be_bytes().to_vec()));
        }
        if self.sealed {
            out.push(CatalogOp::Delete(open_key(run)));
        }
        for h in &self.hashes {
            out.push(CatalogOp::Put(hash_key(h, index), run.as_bytes().to_vec()));
        }
    }
}

/// The catalog operations of `entry` (any bytes; one that does not decode has none) at `index`.
/// For rebuilding and checking the catalog from stored entries.
pub fn entry_ops(entry: &[u8], index: u64, out: &mut Vec<CatalogOp>) -> Result<()> {
    let e = crate::Entry::check(entry)?;
    if let Some(f) = EntryFacts::of(&e) {
        f.ops(e.run(), index, out);
    }
    Ok(())
}

fn key_prefix(key: RunKey<'_>) -> Vec<u8> {
    let (tag, s) = match key {
        RunKey::Caller(s) => (TAG_CALLER, s),
        RunKey::Context(s) => (TAG_CONTEXT, s),
        RunKey::Parent(s) => (TAG_PARENT, s),
    };
    // Callers, contexts (at most 256 bytes) and run ids (128) fit a u16; a longer caller is
    // cut to its first 65535 bytes, which only merges such callers' listings.
    let s = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
    let mut k = Vec::with_capacity(3 + s.len() + 8);
    k.push(tag);
    k.extend_from_slice(&(s.len() as u16).to_be_bytes());
    k.extend_from_slice(s);
    k
}

/// The key of the run accepted at `index` in the listing of `key`.
pub fn run_key(key: RunKey<'_>, index: u64) -> Vec<u8> {
    let mut k = key_prefix(key);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The key marking `run` open.
pub fn open_key(run: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + run.len());
    k.push(TAG_OPEN);
    k.extend_from_slice(run.as_bytes());
    k
}

/// The key of the reference to `hash` by the entry at `index`.
pub fn hash_key(hash: &Hash, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(41);
    k.push(TAG_HASH);
    k.extend_from_slice(hash);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// A catalog key in words, for `fsck`'s findings: `caller "alice" accepted at 12`.
pub fn describe_key(key: &[u8]) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let index = |b: &[u8]| b.try_into().map(u64::from_be_bytes).ok();
    match key.split_first() {
        Some((&tag @ (TAG_CALLER | TAG_CONTEXT | TAG_PARENT), rest)) if rest.len() >= 10 => {
            let what = match tag {
                TAG_CALLER => "caller",
                TAG_CONTEXT => "context",
                _ => "parent",
            };
            let (name, at) = rest[2..].split_at(rest.len() - 10);
            match index(at) {
                Some(i) => format!("{what} {:?} accepted at {i}", text(name)),
                None => format!("malformed key {}", hex::encode(key)),
            }
        }
        Some((&TAG_OPEN, run)) => format!("open run {:?}", text(run)),
        Some((&TAG_HASH, rest)) if rest.len() == 40 => {
            format!("payload {} named at {}", hex::encode(&rest[..32]), index(&rest[32..]).expect("8 bytes"))
        }
        _ => format!("malformed key {}", hex::encode(key)),
    }
}

/// The smallest key greater than every key starting with `prefix` (prefixes here never are all
/// 0xff).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

fn index_of(key: &[u8]) -> Result<u64> {
    key.len()
        .checked_sub(8)
        .map(|n| u64::from_be_bytes(key[n..].try_into().expect("8 bytes")))
        .ok_or_else(|| Error::Corrupt(format!("catalog key {} is too short", hex::encode(key))))
}

fn run_of(key: &[u8], value: &[u8]) -> Result<String> {
    String::from_utf8(value.to_vec())
        .map_err(|_| Error::Corrupt(format!("catalog key {}: the run is not UTF-8", describe_key(key))))
}

/// [`Store::runs_by`] over [`Store::catalog_scan`].
pub fn runs_by<S: Store + ?Sized>(s: &S, key: RunKey<'_>, before: Option<u64>, limit: usize) -> Result<Vec<RunRef>> {
    let prefix = key_prefix(key);
    let mut lo = prefix.clone();
    lo.extend_from_slice(&0u64.to_be_bytes());
    let hi = match before {
        Some(b) => {
            let mut hi = prefix.clone();
            hi.extend_from_slice(&b.to_be_bytes());
            hi
        }
        None => prefix_end(&prefix),
    };
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    s.catalog_scan(&lo, &hi, true, &mut |k, v| {
        out.push(RunRef { run: run_of(k, v)?, index: index_of(k)? });
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// [`Store::count_runs_by`] over [`Store::catalog_scan`]: one pass over the key's entries.
pub fn count_runs_by<S: Store + ?Sized>(s: &S, key: RunKey<'_>) -> Result<u64> {
    let prefix = key_prefix(key);
    let mut n = 0u64;
    s.catalog_scan(&prefix, &prefix_end(&prefix), false, &mut |_, _| {
        n += 1;
        Ok(true)
    })?;
    Ok(n)
}

/// [`Store::open_runs`] over [`Store::catalog_scan`].
pub fn open_runs<S: Store + ?Sized>(s: &S) -> Result<Vec<RunRef>> {
    let mut out = Vec::new();
    s.catalog_scan(&[TAG_OPEN], &[TAG_OPEN + 1], false, &mut |k, v| {
        let run = String::from_utf8(k[1..].to_vec())
            .map_err(|_| Error::Corrupt(format!("open-run key {} is not UTF-8", hex::encode(k))))?;
        let index = <[u8; 8]>::try_from(v)
            .map(u64::from_be_bytes)
            .map_err(|_| Error::Corrupt(format!("open run {run:?}: the index has {} bytes, not 8", v.len())))?;
        out.push(RunRef { run, index });
        Ok(true)
    })?;
    out.sort_by_key(|r| r.index);
    Ok(out)
}

/// The runs naming `hash` with the index of each naming entry, in index order, each run once
/// (at its first naming entry), at most `limit` runs, only entries below `below`.
pub fn payload_refs<S: Store + ?Sized>(s: &S, hash: &Hash, limit: usize, below: u64) -> Result<Vec<RunRef>> {
    let mut out: Vec<RunRef> = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let (lo, hi) = (hash_key(hash, 0), hash_key(hash, below));
    let mut seen = std::collections::HashSet::new();
    s.catalog_scan(&lo, &hi, false, &mut |k, v| {
        let run = run_of(k, v)?;
        if seen.insert(run.clone()) {
            out.push(RunRef { run, index: index_of(k)? });
        }
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// [`Store::payload_runs`] over [`Store::catalog_scan`].
pub fn payload_runs<S: Store + ?Sized>(s: &S, hash: &Hash, limit: usize) -> Result<Vec<String>> {
    Ok(payload_refs(s, hash, limit, u64::MAX)?.into_iter().map(|r| r.run).collect())
}

/// Calls `f` with each operation recording the entries `[0, size)` of `store`, in index order,
/// in chunks of about `chunk` entries (a store building its catalog writes each chunk as one
/// batch). An entry that does not decode is [`Error::Corrupt`]: a store that cannot build its
/// catalog does not open.
pub fn build(
    store: &dyn Store,
    size: u64,
    chunk: u64,
    f: &mut dyn FnMut(Vec<CatalogOp>, u64) -> Result<()>,
) -> Result<()> {
    let mut start = 0;
    while start < size {
        let end = size.min(start + chunk.max(1));
        let mut ops = Vec::new();
        let mut next = start;
        store.scan_entries(start, end, &mut |i, e| {
            if i != next {
                return Err(Error::Corrupt(format!("entry {next} is missing")));
            }
            next += 1;
            entry_ops(e, i, &mut ops).map_err(|err| Error::Corrupt(format!("entry {i}: {err}")))
        })?;
        if next != end {
            return Err(Error::Corrupt(format!("entry {next} is missing")));
        }
        f(ops, end)?;
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Event, Protocol, RunId};
    use crate::store::{CommitBatch, MemStore};
    use crate::{Entry, RunStatus};

    fn bytes(run: &str, seq: u64, event: Event, payload: Option<Hash>) -> Vec<u8> {
        Entry {
            ts: 1_767_225_600_000_000_000,
            run: RunId::new(run).unwrap(),
            seq,
            actor: "gateway".into(),
            event,
            grant: None,
            payload,
        }
        .encode()
    }

    fn accepted(run: &str, seq: u64, caller: &str, context: Option<&str>, parent: Option<&str>) -> Vec<u8> {
        let event = Event::TaskAccepted {
            protocol: Protocol::A2a,
            skill: "s".into(),
            caller: caller.into(),
            input_hash: [run.len() as u8; 32],
            context: context.map(Into::into),
            parent: parent.map(|p| RunId::new(p).unwrap()),
        };
        bytes(run, seq, event, None)
    }

    fn sealed(run: &str, seq: u64) -> Vec<u8> {
        let event =
            Event::ReceiptSealed { content_hash: [0; 32], events: seq, status: RunStatus::Completed, sig: [0; 64] };
        bytes(run, seq, event, None)
    }

    fn ops_of(entry: &[u8], index: u64) -> Vec<CatalogOp> {
        let mut out = Vec::new();
        entry_ops(entry, index, &mut out).unwrap();
        out
    }

    /// A store holding only the catalog operations of `entries`, applied in order.
    fn store_of(entries: &[Vec<u8>]) -> MemStore {
        let store = MemStore::new();
        let mut catalog = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            entry_ops(e, i as u64, &mut catalog).unwrap();
        }
        store.commit(&CommitBatch { catalog, ..CommitBatch::default() }).unwrap();
        store
    }

    #[test]
    fn an_accepted_entry_is_listed_by_caller_context_parent_and_open() {
        let ops = ops_of(&accepted("r", 0, "alice", Some("ctx"), Some("up")), 7);
        let r = b"r".to_vec();
        assert_eq!(
            ops,
            vec![
                CatalogOp::Put(run_key(RunKey::Caller("alice"), 7), r.clone()),
                CatalogOp::Put(run_key(RunKey::Context("ctx"), 7), r.clone()),
                CatalogOp::Put(run_key(RunKey::Parent("up"), 7), r.clone()),
                CatalogOp::Put(open_key("r"), 7u64.to_be_bytes().to_vec()),
                CatalogOp::Put(hash_key(&[1; 32], 7), r),
            ]
        );
        // Without context and parent: caller, open and the input hash only.
        assert_eq!(ops_of(&accepted("r", 0, "alice", None, None), 7).len(), 3);
    }

    #[test]
    fn an_accepted_entry_past_seq_zero_opens_nothing() {
        // Only the run's first entry makes it a run of a caller; its input hash still counts.
        assert_eq!(
            ops_of(&accepted("r", 3, "alice", None, None), 9),
            vec![CatalogOp::Put(hash_key(&[1; 32], 9), b"r".to_vec())]
        );
    }

    #[test]
    fn a_seal_closes_and_hash_carrying_kinds_and_payloads_are_referenced() {
        assert_eq!(ops_of(&sealed("r", 4), 12), vec![CatalogOp::Delete(open_key("r"))]);
        let artifact =
            Event::ArtifactAdded { name: "a".into(), media_type: "text/plain".into(), bytes: 1, hash: [5; 32] };
        assert_eq!(
            ops_of(&bytes("r", 1, artifact, Some([6; 32])), 3),
            vec![
                CatalogOp::Put(hash_key(&[5; 32], 3), b"r".to_vec()),
                CatalogOp::Put(hash_key(&[6; 32], 3), b"r".to_vec())
            ]
        );
        for event in [
            Event::WorkspaceRead { path: "p".into(), bytes: 1, hash: [7; 32] },
            Event::WorkspaceWritten { path: "p".into(), bytes: 1, hash: [7; 32] },
        ] {
            assert_eq!(
                ops_of(&bytes("r", 1, event, None), 4),
                vec![CatalogOp::Put(hash_key(&[7; 32], 4), b"r".to_vec())]
            );
        }
        let status = Event::TaskStatus { state: "working".into(), message: None };
        assert!(ops_of(&bytes("r", 1, status.clone(), None), 4).is_empty());
        assert_eq!(
            ops_of(&bytes("r", 1, status, Some([8; 32])), 4),
            vec![CatalogOp::Put(hash_key(&[8; 32], 4), b"r".to_vec())]
        );
        let erased = Event::PayloadErased { hash: [9; 32], reason: "asked".into(), approver: "dpo".into() };
        assert!(
            ops_of(&bytes(RunId::erasure(&[9; 32]).as_str(), 0, erased, None), 5).is_empty(),
            "erased bytes are not a reference"
        );
    }

    #[test]
    fn listings_are_newest_first_below_before_and_counted() {
        let entries: Vec<Vec<u8>> = (0..10)
            .map(|i| accepted(&format!("r{i}"), 0, if i % 2 == 0 { "even" } else { "odd" }, Some("c"), None))
            .collect();
        let store = store_of(&entries);
        let names = |v: Vec<RunRef>| v.into_iter().map(|r| (r.run, r.index)).collect::<Vec<_>>();
        assert_eq!(
            names(store.runs_by(RunKey::Caller("even"), None, 3).unwrap()),
            vec![("r8".into(), 8), ("r6".into(), 6), ("r4".into(), 4)]
        );
        assert_eq!(
            names(store.runs_by(RunKey::Caller("even"), Some(4), 3).unwrap()),
            vec![("r2".into(), 2), ("r0".into(), 0)]
        );
        assert!(store.runs_by(RunKey::Caller("even"), Some(0), 3).unwrap().is_empty());
        assert!(store.runs_by(RunKey::Caller("even"), None, 0).unwrap().is_empty());
        assert_eq!(store.count_runs_by(RunKey::Caller("odd")).unwrap(), 5);
        assert_eq!(store.count_runs_by(RunKey::Context("c")).unwrap(), 10);
        // A key that is a prefix of another is its own listing.
        assert_eq!(store.count_runs_by(RunKey::Caller("eve")).unwrap(), 0);
        assert_eq!(store.count_runs_by(RunKey::Parent("c")).unwrap(), 0);
    }

    /// Longer than the chunks `MemStore` scans in, both ways.
    #[test]
    fn long_listings_come_back_whole_in_order() {
        let entries: Vec<Vec<u8>> = (0..700).map(|i| accepted(&format!("r{i}"), 0, "u", None, None)).collect();
        let store = store_of(&entries);
        let newest: Vec<u64> =
            store.runs_by(RunKey::Caller("u"), None, 1000).unwrap().iter().map(|r| r.index).collect();
        assert_eq!(newest, (0..700).rev().collect::<Vec<u64>>());
        let page: Vec<u64> =
            store.runs_by(RunKey::Caller("u"), Some(600), 300).unwrap().iter().map(|r| r.index).collect();
        assert_eq!(page, (300..600).rev().collect::<Vec<u64>>());
        assert_eq!(store.count_runs_by(RunKey::Caller("u")).unwrap(), 700);
        assert_eq!(store.open_runs().unwrap().len(), 700);
    }

    #[test]
    fn open_runs_go_away_at_the_seal_even_in_the_same_batch() {
        let store = store_of(&[
            accepted("a", 0, "u", None, None),
            accepted("b", 0, "u", None, None),
            sealed("a", 1),
            accepted("c", 0, "u", None, None),
            sealed("c", 1),
            sealed("c", 2), // a second seal (a reseal) changes nothing
        ]);
        assert_eq!(store.open_runs().unwrap(), vec![RunRef { run: "b".into(), index: 1 }]);
    }

    #[test]
    fn payload_runs_lists_each_run_once_in_index_order() {
        let artifact = |run: &str, seq| {
            let e = Event::ArtifactAdded { name: "a".into(), media_type: "t/p".into(), bytes: 1, hash: [3; 32] };
            bytes(run, seq, e, None)
        };
        let store = store_of(&[artifact("b", 1), artifact("a", 1), artifact("b", 2), artifact("c", 1)]);
        assert_eq!(store.payload_runs(&[3; 32], 10).unwrap(), vec!["b", "a", "c"]);
        assert_eq!(store.payload_runs(&[3; 32], 2).unwrap(), vec!["b", "a"]);
        assert!(store.payload_runs(&[4; 32], 10).unwrap().is_empty());
        let below: Vec<String> = payload_refs(&store, &[3; 32], 10, 2).unwrap().into_iter().map(|r| r.run).collect();
        assert_eq!(below, vec!["b", "a"]);
    }

    #[test]
    fn keys_read_back_in_words() {
        assert_eq!(describe_key(&run_key(RunKey::Context("c 1"), 12)), "context \"c 1\" accepted at 12");
        assert_eq!(describe_key(&open_key("run-1")), "open run \"run-1\"");
        assert_eq!(describe_key(&hash_key(&[0xab; 32], 3)), format!("payload {} named at 3", "ab".repeat(32)));
        assert_eq!(describe_key(b"zz"), "malformed key 7a7a");
    }
}
