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
//! | `a` ‖ accepted index u64 BE                            | [`RunSummary`] of the accepted entry | `task.accepted` at seq 0 (v5) |
//! | `k` ‖ len u16 BE ‖ skill ‖ accepted index u64 BE       | run             | the same (v5)                  |
//! | `g` ‖ len u16 BE ‖ agent ‖ accepted index u64 BE       | run             | the same; the agent is the entry's `actor` (v5) |
//! | `t` ‖ ts u64 BE (sign bit flipped) ‖ accepted index u64 BE | run         | the same, by its `ts` (v5)     |
//! | `s` ‖ len u16 BE ‖ status ‖ seal index u64 BE          | run             | every `receipt.sealed` (v5)    |
//! | `e` ‖ run                                             | seal index u64 BE ‖ seal ts i64 BE ‖ status | every `receipt.sealed`, overwritten by the next (v5) |
//! | `r` ‖ run                                             | accepted index u64 BE | `task.accepted` at seq 0 (v5) |
//!
//! The keys marked v5 are the run search's ([`search`]): all runs newest first, by skill, agent,
//! status and accepted time, any of them combined. A run sealed again has an `s` key per seal;
//! the search takes only the one its `e` key (its latest seal) names.
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
use crate::entry::{EntryView, Kind, RunStatus};
use crate::{Error, Hash, Result};

const TAG_CALLER: u8 = b'c';
const TAG_CONTEXT: u8 = b'x';
const TAG_PARENT: u8 = b'p';
const TAG_OPEN: u8 = b'o';
const TAG_HASH: u8 = b'h';
const TAG_ALL: u8 = b'a';
const TAG_SKILL: u8 = b'k';
const TAG_AGENT: u8 = b'g';
const TAG_TIME: u8 = b't';
const TAG_STATUS: u8 = b's';
const TAG_SEALED: u8 = b'e';
const TAG_RUN: u8 = b'r';

/// The tags of the keys a format-v4 catalog holds; the others came with v5 (the search keys).
pub const V4_TAGS: &[u8] = &[TAG_CALLER, TAG_CONTEXT, TAG_PARENT, TAG_OPEN, TAG_HASH];

/// One change to the catalog, applied in order with the rest of its batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogOp {
    /// Sets `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Removes `key` (absent or not).
    Delete(Vec<u8>),
}

impl CatalogOp {
    /// The key it sets or removes.
    pub fn key(&self) -> &[u8] {
        match self {
            CatalogOp::Put(k, _) | CatalogOp::Delete(k) => k,
        }
    }
}

/// Whether `key` is of a kind a format-v4 catalog holds ([`V4_TAGS`]).
pub fn is_v4_key(key: &[u8]) -> bool {
    key.first().is_some_and(|t| V4_TAGS.contains(t))
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
    /// `task.accepted`'s `skill` (format v5).
    Skill(&'a str),
    /// `task.accepted`'s `actor`: the service identity that recorded the run (format v5).
    Agent(&'a str),
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
    /// A `receipt.sealed`: its status and time.
    sealed: Option<(RunStatus, i64)>,
    /// Content hashes it names.
    hashes: Vec<Hash>,
}

/// The listing keys of a run's `task.accepted`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Accepted {
    caller: Box<str>,
    context: Option<Box<str>>,
    parent: Option<Box<str>>,
    skill: Box<str>,
    agent: Box<str>,
    ts: i64,
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
                skill: a.skill.into(),
                agent: e.actor().into(),
                ts: e.ts(),
            }),
            _ => None,
        };
        let sealed = if kind == Kind::ReceiptSealed { e.seal().map(|s| (s.status, e.ts())) } else { None };
        let hashes: Vec<Hash> = e.content_hashes().collect();
        (accepted.is_some() || sealed.is_some() || !hashes.is_empty()).then_some(EntryFacts {
            accepted,
            sealed,
            hashes,
        })
    }

    /// The operations recording this entry of `run` at `index`, appended to `out`.
    pub fn ops(&self, run: &str, index: u64, out: &mut Vec<CatalogOp>) {
        if let Some(Accepted { caller, context, parent, skill, agent, ts }) = &self.accepted {
            out.push(CatalogOp::Put(run_key(RunKey::Caller(caller), index), run.as_bytes().to_vec()));
            if let Some(c) = context {
                out.push(CatalogOp::Put(run_key(RunKey::Context(c), index), run.as_bytes().to_vec()));
            }
            if let Some(p) = parent {
                out.push(CatalogOp::Put(run_key(RunKey::Parent(p), index), run.as_bytes().to_vec()));
            }
            out.push(CatalogOp::Put(open_key(run), index.to_be_bytes().to_vec()));
            let summary = accepted_value(run, *ts, skill, caller, agent);
            out.push(CatalogOp::Put(all_key(index), summary));
            out.push(CatalogOp::Put(run_key(RunKey::Skill(skill), index), run.as_bytes().to_vec()));
            out.push(CatalogOp::Put(run_key(RunKey::Agent(agent), index), run.as_bytes().to_vec()));
            out.push(CatalogOp::Put(time_key(*ts, index), run.as_bytes().to_vec()));
            out.push(CatalogOp::Put(accepted_key(run), index.to_be_bytes().to_vec()));
        }
        if let Some((status, ts)) = self.sealed {
            out.push(CatalogOp::Delete(open_key(run)));
            out.push(CatalogOp::Put(status_key(status, index), run.as_bytes().to_vec()));
            let mut v = Vec::with_capacity(16 + 9);
            v.extend_from_slice(&index.to_be_bytes());
            v.extend_from_slice(&ts.to_be_bytes());
            v.extend_from_slice(status.as_str().as_bytes());
            out.push(CatalogOp::Put(sealed_key(run), v));
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
        RunKey::Skill(s) => (TAG_SKILL, s),
        RunKey::Agent(s) => (TAG_AGENT, s),
    };
    named_prefix(tag, s)
}

/// `tag ‖ len u16 BE ‖ s`.
fn named_prefix(tag: u8, s: &str) -> Vec<u8> {
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

/// The key of the summary of the run accepted at `index` (the listing of all runs).
pub fn all_key(index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(TAG_ALL);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// `ts` as 8 bytes that sort as the signed number does.
fn ts_bytes(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

/// The key of the run accepted at `index` with time `ts`.
pub fn time_key(ts: i64, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(TAG_TIME);
    k.extend_from_slice(&ts_bytes(ts));
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The key of the seal at `index` with `status`.
pub fn status_key(status: RunStatus, index: u64) -> Vec<u8> {
    let mut k = named_prefix(TAG_STATUS, status.as_str());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The key of `run`'s latest seal.
pub fn sealed_key(run: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + run.len());
    k.push(TAG_SEALED);
    k.extend_from_slice(run.as_bytes());
    k
}

/// The key holding the accepted index of `run`.
pub fn accepted_key(run: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + run.len());
    k.push(TAG_RUN);
    k.extend_from_slice(run.as_bytes());
    k
}

/// The value of an `a` key: ts i64 BE, then run, skill, caller and agent, each as len u16 BE ‖
/// bytes (cut to 65535 bytes, as keys are).
fn accepted_value(run: &str, ts: i64, skill: &str, caller: &str, agent: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + 8 + run.len() + skill.len() + caller.len() + agent.len());
    v.extend_from_slice(&ts.to_be_bytes());
    for s in [run, skill, caller, agent] {
        let s = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
        v.extend_from_slice(&(s.len() as u16).to_be_bytes());
        v.extend_from_slice(s);
    }
    v
}

/// A catalog key in words, for `fsck`'s findings: `caller "alice" accepted at 12`.
pub fn describe_key(key: &[u8]) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let index = |b: &[u8]| b.try_into().map(u64::from_be_bytes).ok();
    match key.split_first() {
        Some((&tag @ (TAG_CALLER | TAG_CONTEXT | TAG_PARENT | TAG_SKILL | TAG_AGENT | TAG_STATUS), rest))
            if rest.len() >= 10 =>
        {
            let what = match tag {
                TAG_CALLER => "caller",
                TAG_CONTEXT => "context",
                TAG_PARENT => "parent",
                TAG_SKILL => "skill",
                TAG_AGENT => "agent",
                _ => "status",
            };
            let at_what = if tag == TAG_STATUS { "sealed" } else { "accepted" };
            let (name, at) = rest[2..].split_at(rest.len() - 10);
            match index(at) {
                Some(i) => format!("{what} {:?} {at_what} at {i}", text(name)),
                None => format!("malformed key {}", hex::encode(key)),
            }
        }
        Some((&TAG_ALL, rest)) if rest.len() == 8 => format!("run accepted at {}", index(rest).expect("8 bytes")),
        Some((&TAG_TIME, rest)) if rest.len() == 16 => {
            let ts = (u64::from_be_bytes(rest[..8].try_into().expect("8 bytes")) ^ (1 << 63)) as i64;
            format!("time {ts} accepted at {}", index(&rest[8..]).expect("8 bytes"))
        }
        Some((&TAG_SEALED, run)) => format!("latest seal of run {:?}", text(run)),
        Some((&TAG_RUN, run)) => format!("accepted index of run {:?}", text(run)),
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

// ---- the run search (format v5) ----------------------------------------------------------------

/// What a run search asks for: every filter given must hold (none given: all runs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSearch {
    /// `task.accepted`'s `caller`.
    pub caller: Option<String>,
    /// `task.accepted`'s `skill`.
    pub skill: Option<String>,
    /// `task.accepted`'s `actor` (the identity that recorded the run).
    pub agent: Option<String>,
    /// Open, or sealed (latest seal) with this status.
    pub status: Option<StatusFilter>,
    /// `task.accepted`'s `ts` at or after this (Unix ns).
    pub from: Option<i64>,
    /// `task.accepted`'s `ts` before this (Unix ns).
    pub until: Option<i64>,
}

/// A run's status, as a search names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    /// Accepted and not sealed.
    Open,
    /// Its latest seal says this status.
    Sealed(RunStatus),
}

/// A run's latest durable seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealSummary {
    /// The seal's index.
    pub index: u64,
    /// The seal's `ts`.
    pub ts: i64,
    /// Its status.
    pub status: RunStatus,
}

/// What the catalog says of a run: its `task.accepted` and its latest seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// The run.
    pub run: String,
    /// The index of its `task.accepted`.
    pub index: u64,
    /// Its `task.accepted`'s `ts`.
    pub ts: i64,
    /// The skill asked for.
    pub skill: String,
    /// The caller.
    pub caller: String,
    /// The agent: the `task.accepted`'s `actor`.
    pub agent: String,
    /// Its latest durable seal; `None` while open.
    pub sealed: Option<SealSummary>,
    /// Its durable entries (filled by [`crate::Log::search_runs`]; 0 from the catalog alone).
    pub entries: u64,
}

/// A search's parameters as a service's query gives them (`GET /v1/runs`, gRPC `ListRuns`,
/// the gateway's `GET /v1/runs`), to be checked into a [`RunSearch`].
#[derive(Debug)]
pub struct SearchTerms<'a> {
    /// `all=true`.
    pub all: bool,
    /// The caller, when the query names one.
    pub caller: Option<&'a str>,
    /// `skill`.
    pub skill: Option<&'a str>,
    /// `agent`.
    pub agent: Option<&'a str>,
    /// `status`.
    pub status: Option<&'a str>,
    /// `from`, Unix ns.
    pub from: Option<i64>,
    /// `until`, Unix ns.
    pub until: Option<i64>,
}

impl SearchTerms<'_> {
    /// Whether the terms name a search (not a listing by caller alone).
    pub fn is_search(&self) -> bool {
        self.all
            || self.skill.is_some()
            || self.agent.is_some()
            || self.status.is_some()
            || self.from.is_some()
            || self.until.is_some()
    }

    /// The search, or why the terms do not make one.
    pub fn search(&self) -> Result<RunSearch> {
        let bad = Error::BadSearch;
        let named: Vec<&str> = [
            ("caller", self.caller.is_some()),
            ("skill", self.skill.is_some()),
            ("agent", self.agent.is_some()),
            ("status", self.status.is_some()),
            ("from", self.from.is_some()),
            ("until", self.until.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
        if self.all && !named.is_empty() {
            return Err(bad(format!(
                "all=true lists every run: drop it to search by {}, or drop {}",
                named.join(" and "),
                named.join(" and ")
            )));
        }
        for (key, v) in [("caller", self.caller), ("skill", self.skill), ("agent", self.agent), ("status", self.status)]
        {
            if v == Some("") {
                return Err(bad(format!("{key}= is empty: give the {key} to search by")));
            }
        }
        let status = match self.status {
            None => None,
            Some("open") => Some(StatusFilter::Open),
            Some(s) => Some(StatusFilter::Sealed(
                s.parse::<RunStatus>()
                    .map_err(|_| bad(format!("status={s:?}: give open, completed, failed, canceled or rejected")))?,
            )),
        };
        if let (Some(f), Some(u)) = (self.from, self.until)
            && f >= u
        {
            return Err(bad(format!("from ({f}) is not before until ({u}): the range [from, until) is empty")));
        }
        Ok(RunSearch {
            caller: self.caller.map(Into::into),
            skill: self.skill.map(Into::into),
            agent: self.agent.map(Into::into),
            status,
            from: self.from,
            until: self.until,
        })
    }
}

/// Which key a search scans: the most selective of those its filters name. The order of a
/// page is that key's, newest first: by accepted index (all runs, caller, skill, agent, open
/// runs), by accepted `ts` (a time range), by the latest seal's index (a sealed status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// `a`: every run.
    All,
    /// `c`: the caller's.
    Caller,
    /// `k`: the skill's.
    Skill,
    /// `g`: the agent's.
    Agent,
    /// `s`: the status's seals.
    Status,
    /// `t`: the time range.
    Time,
    /// `o`: the open runs.
    Open,
}

impl Scan {
    /// Its name in answers and cursors.
    pub fn as_str(self) -> &'static str {
        match self {
            Scan::All => "all",
            Scan::Caller => "caller",
            Scan::Skill => "skill",
            Scan::Agent => "agent",
            Scan::Status => "status",
            Scan::Time => "time",
            Scan::Open => "open",
        }
    }

    /// The scan named `s` ([`Scan::as_str`]).
    pub fn from_name(s: &str) -> Option<Scan> {
        [Scan::All, Scan::Caller, Scan::Skill, Scan::Agent, Scan::Status, Scan::Time, Scan::Open]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// Bytes of a position in this key after its prefix.
    fn position_len(self) -> usize {
        if self == Scan::Time { 16 } else { 8 }
    }
}

/// A page of a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPage {
    /// The runs found, in the scanned key's order, newest first.
    pub runs: Vec<RunSummary>,
    /// Where the next page starts (opaque), `None` when the scan is done.
    pub cursor: Option<String>,
    /// The key scanned.
    pub scan: Scan,
    /// Keys examined for this page.
    pub examined: usize,
}

/// Keys counted per candidate key when a search chooses which one to scan.
pub const PLAN_PROBE: usize = 1024;

/// One search's bounds.
#[derive(Clone, Copy, Debug)]
pub struct SearchBounds {
    /// Runs per page.
    pub limit: usize,
    /// Most keys examined for one page: a page may come back short (even empty) with a cursor
    /// when the filters reject many candidates, so one request never reads the whole catalog.
    pub max_examined: usize,
    /// Only runs accepted (and seals) below this index: the durable size.
    pub below: u64,
}

/// The `(lo, hi)` range of `scan` for `q`, before any cursor, and the prefix its positions
/// follow.
fn scan_range(scan: Scan, q: &RunSearch) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let named = |prefix: Vec<u8>| {
        let mut lo = prefix.clone();
        lo.extend_from_slice(&[0; 8]);
        let hi = prefix_end(&prefix);
        (lo, hi, prefix)
    };
    match scan {
        Scan::All => named(vec![TAG_ALL]),
        Scan::Caller => named(key_prefix(RunKey::Caller(q.caller.as_deref().unwrap_or_default()))),
        Scan::Skill => named(key_prefix(RunKey::Skill(q.skill.as_deref().unwrap_or_default()))),
        Scan::Agent => named(key_prefix(RunKey::Agent(q.agent.as_deref().unwrap_or_default()))),
        Scan::Status => {
            let status = match q.status {
                Some(StatusFilter::Sealed(s)) => s.as_str(),
                _ => "",
            };
            named(named_prefix(TAG_STATUS, status))
        }
        Scan::Time => {
            let lo = time_key(q.from.unwrap_or(i64::MIN), 0);
            let hi = match q.until {
                Some(u) => time_key(u, 0),
                None => prefix_end(&[TAG_TIME]),
            };
            (lo, hi, vec![TAG_TIME])
        }
        Scan::Open => named(vec![TAG_OPEN]),
    }
}

/// The keys `q` may scan, most preferred first when they are equally selective.
fn candidates(q: &RunSearch) -> Vec<Scan> {
    let mut out = Vec::new();
    if q.caller.is_some() {
        out.push(Scan::Caller);
    }
    if q.skill.is_some() {
        out.push(Scan::Skill);
    }
    if q.agent.is_some() {
        out.push(Scan::Agent);
    }
    match q.status {
        Some(StatusFilter::Sealed(_)) => out.push(Scan::Status),
        Some(StatusFilter::Open) => out.push(Scan::Open),
        None => {}
    }
    if q.from.is_some() || q.until.is_some() {
        out.push(Scan::Time);
    }
    out
}

/// Chooses the key to scan: of those `q` names, the one with the fewest keys, counting at most
/// [`PLAN_PROBE`] of each; all runs when `q` names none.
fn plan<S: Store + ?Sized>(s: &S, q: &RunSearch) -> Result<Scan> {
    let mut best: Option<(usize, Scan)> = None;
    for scan in candidates(q) {
        let (lo, hi, _) = scan_range(scan, q);
        let mut n = 0usize;
        s.catalog_scan(&lo, &hi, false, &mut |_, _| {
            n += 1;
            Ok(n < PLAN_PROBE)
        })?;
        if best.is_none_or(|(m, _)| n < m) {
            best = Some((n, scan));
        }
    }
    Ok(best.map_or(Scan::All, |(_, scan)| scan))
}

/// The cursor after the key `key` of `scan` (its position after `prefix`).
fn cursor_at(scan: Scan, key: &[u8], prefix_len: usize) -> String {
    format!("{}.{}", scan.as_str(), hex::encode(&key[prefix_len..]))
}

/// A cursor's scan and position, checked against `q`.
fn parse_cursor(cursor: &str, q: &RunSearch) -> Result<(Scan, Vec<u8>)> {
    let bad = |why: &str| Error::BadSearch(format!("{cursor:?}: {why}; give a cursor a page of this search answered"));
    let (name, pos) = cursor.split_once('.').ok_or_else(|| bad("not a cursor"))?;
    let scan = Scan::from_name(name).ok_or_else(|| bad("not a cursor"))?;
    let pos = hex::decode(pos).map_err(|_| bad("not a cursor"))?;
    if pos.len() != scan.position_len() {
        return Err(bad("not a cursor"));
    }
    let fits = if scan == Scan::All { candidates(q).is_empty() } else { candidates(q).contains(&scan) };
    if !fits {
        return Err(bad(&format!("it continues a scan by {}, which this search does not name", scan.as_str())));
    }
    Ok((scan, pos))
}

/// Reads the `a` value of the run accepted at `index`.
fn read_summary<S: Store + ?Sized>(s: &S, index: u64) -> Result<Option<RunSummary>> {
    s.catalog_get(&all_key(index))?.map(|v| decode_summary(index, &v)).transpose()
}

/// Decodes the `a` value of the run accepted at `index`.
pub fn decode_summary(index: u64, v: &[u8]) -> Result<RunSummary> {
    let bad = || Error::Corrupt(format!("catalog: the summary of the run accepted at {index} is malformed"));
    let ts = i64::from_be_bytes(v.get(..8).ok_or_else(bad)?.try_into().expect("8 bytes"));
    let mut rest = &v[8..];
    let mut next = || -> Result<String> {
        let len = usize::from(u16::from_be_bytes(rest.get(..2).ok_or_else(bad)?.try_into().expect("2 bytes")));
        let s = rest.get(2..2 + len).ok_or_else(bad)?;
        let s = String::from_utf8(s.to_vec()).map_err(|_| bad())?;
        rest = &rest[2 + len..];
        Ok(s)
    };
    let (run, skill, caller, agent) = (next()?, next()?, next()?, next()?);
    Ok(RunSummary { run, index, ts, skill, caller, agent, sealed: None, entries: 0 })
}

/// The index of `run`'s `task.accepted` (seq 0), from its `r` key.
pub fn accepted_index<S: Store + ?Sized>(s: &S, run: &str) -> Result<Option<u64>> {
    s.catalog_get(&accepted_key(run))?
        .map(|v| {
            <[u8; 8]>::try_from(v.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| Error::Corrupt(format!("catalog: the accepted index of run {run:?} is malformed")))
        })
        .transpose()
}

/// `run`'s latest seal below `below`, from its `e` key.
pub fn latest_seal<S: Store + ?Sized>(s: &S, run: &str, below: u64) -> Result<Option<SealSummary>> {
    let Some(v) = s.catalog_get(&sealed_key(run))? else { return Ok(None) };
    let bad = || Error::Corrupt(format!("catalog: the latest seal of run {run:?} is malformed"));
    if v.len() < 16 {
        return Err(bad());
    }
    let index = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
    let ts = i64::from_be_bytes(v[8..16].try_into().expect("8 bytes"));
    let status = std::str::from_utf8(&v[16..]).ok().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
    Ok((index < below).then_some(SealSummary { index, ts, status }))
}

/// Does `r` (its seal filled in) pass every filter of `q`?
fn passes(q: &RunSearch, r: &RunSummary) -> bool {
    q.caller.as_ref().is_none_or(|c| *c == r.caller)
        && q.skill.as_ref().is_none_or(|k| *k == r.skill)
        && q.agent.as_ref().is_none_or(|a| *a == r.agent)
        && q.from.is_none_or(|f| r.ts >= f)
        && q.until.is_none_or(|u| r.ts < u)
        && match q.status {
            None => true,
            Some(StatusFilter::Open) => r.sealed.is_none(),
            Some(StatusFilter::Sealed(want)) => r.sealed.as_ref().is_some_and(|s| s.status == want),
        }
}

/// One page of the runs `q` finds, with `visible` deciding which of them the reader may see
/// (a run it may not is skipped as if it did not match). Ops are listed in the module docs; the
/// key scanned is `plan`'s (or the cursor's), every other filter is checked per candidate
/// against the run's `a` summary and `e` seal. At most `b.max_examined` keys are read per
/// page, so a page may be short, or empty, with a cursor to go on.
pub fn search<S: Store + ?Sized>(
    s: &S,
    q: &RunSearch,
    cursor: Option<&str>,
    b: SearchBounds,
    visible: &dyn Fn(&RunSummary) -> bool,
) -> Result<SearchPage> {
    if !s.catalog_searchable()? {
        return Err(Error::Storage(
            "this store's run catalog is of format v4 (opened read-only): it has no search keys; open the \
             store for writing once (start the service on it) to build them"
                .into(),
        ));
    }
    let (scan, position) = match cursor {
        Some(c) => {
            let (scan, pos) = parse_cursor(c, q)?;
            (scan, Some(pos))
        }
        None => (plan(s, q)?, None),
    };
    let mut page = SearchPage { runs: Vec::new(), cursor: None, scan, examined: 0 };
    if b.limit == 0 {
        return Ok(page);
    }
    let (lo, mut hi, prefix) = scan_range(scan, q);
    if let Some(pos) = &position {
        let mut at = prefix.clone();
        at.extend_from_slice(pos);
        hi = hi.min(at);
    }
    // Nothing accepted (or, for a status, sealed) at or past `below` is listed.
    if scan != Scan::Time && scan != Scan::Open {
        let mut bound = prefix.clone();
        bound.extend_from_slice(&b.below.to_be_bytes());
        hi = hi.min(bound);
    }
    // The candidate at each key: its summary, or `None` to skip it.
    let candidate = |k: &[u8], v: &[u8]| -> Result<Option<RunSummary>> {
        let mut r = match scan {
            Scan::All => decode_summary(index_of(k)?, v)?,
            Scan::Status => {
                // A seal of the run, but the run's status is its latest seal's.
                let run = run_of(k, v)?;
                let at = index_of(k)?;
                if latest_seal(s, &run, b.below)?.is_none_or(|l| l.index != at) {
                    return Ok(None);
                }
                let Some(first) = accepted_index(s, &run)? else { return Ok(None) };
                match read_summary(s, first)? {
                    Some(r) if r.run == run && r.index < b.below => r,
                    _ => return Ok(None),
                }
            }
            Scan::Open => {
                let index = u64::from_be_bytes(v.try_into().map_err(|_| Error::Corrupt("open-run value".into()))?);
                match read_summary(s, index)? {
                    Some(r) if r.index < b.below => r,
                    _ => return Ok(None),
                }
            }
            _ => {
                let index = index_of(k)?;
                if index >= b.below {
                    return Ok(None);
                }
                match read_summary(s, index)? {
                    Some(r) => r,
                    None => return Ok(None),
                }
            }
        };
        r.sealed = latest_seal(s, &r.run, b.below)?;
        Ok((passes(q, &r) && visible(&r)).then_some(r))
    };
    if scan == Scan::Open {
        // Keyed by run, not by index: the open runs (few: those in flight) sorted newest first.
        let mut open: Vec<(u64, Vec<u8>, Vec<u8>)> = Vec::new();
        s.catalog_scan(&[TAG_OPEN], &[TAG_OPEN + 1], false, &mut |k, v| {
            let index =
                <[u8; 8]>::try_from(v).map(u64::from_be_bytes).map_err(|_| Error::Corrupt("open-run value".into()))?;
            let limit = position
                .as_deref()
                .map_or(b.below, |p| u64::from_be_bytes(p.try_into().expect("8 bytes")).min(b.below));
            if index < limit {
                open.push((index, k.to_vec(), v.to_vec()));
            }
            Ok(true)
        })?;
        open.sort_by_key(|o| std::cmp::Reverse(o.0));
        let mut last: Option<u64> = None;
        let at = |last: Option<u64>| last.map(|i| format!("open.{}", hex::encode(i.to_be_bytes())));
        for (index, k, v) in open {
            if page.examined == b.max_examined {
                page.cursor = at(last);
                return Ok(page);
            }
            page.examined += 1;
            if let Some(r) = candidate(&k, &v)? {
                if page.runs.len() == b.limit {
                    page.cursor = at(last);
                    return Ok(page);
                }
                page.runs.push(r);
            }
            last = Some(index);
        }
        return Ok(page);
    }
    let mut last_key: Option<Vec<u8>> = None;
    let mut more = false;
    s.catalog_scan(&lo, &hi, true, &mut |k, v| {
        if page.examined == b.max_examined {
            more = true;
            return Ok(false);
        }
        page.examined += 1;
        if let Some(r) = candidate(k, v)? {
            if page.runs.len() == b.limit {
                // One more match: there is a next page, which starts after the last one kept.
                more = true;
                return Ok(false);
            }
            page.runs.push(r);
        }
        last_key = Some(k.to_vec());
        Ok(true)
    })?;
    if more && let Some(k) = last_key {
        page.cursor = Some(cursor_at(scan, &k, prefix.len()));
    }
    Ok(page)
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

    const TS: i64 = 1_767_225_600_000_000_000;

    fn bytes(run: &str, seq: u64, event: Event, payload: Option<Hash>) -> Vec<u8> {
        Entry { ts: TS, run: RunId::new(run).unwrap(), seq, actor: "gateway".into(), event, grant: None, payload }
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
                CatalogOp::Put(all_key(7), accepted_value("r", TS, "s", "alice", "gateway")),
                CatalogOp::Put(run_key(RunKey::Skill("s"), 7), r.clone()),
                CatalogOp::Put(run_key(RunKey::Agent("gateway"), 7), r.clone()),
                CatalogOp::Put(time_key(TS, 7), r.clone()),
                CatalogOp::Put(accepted_key("r"), 7u64.to_be_bytes().to_vec()),
                CatalogOp::Put(hash_key(&[1; 32], 7), r),
            ]
        );
        // Without context and parent: caller, open, the five search keys and the input hash.
        assert_eq!(ops_of(&accepted("r", 0, "alice", None, None), 7).len(), 8);
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
        let mut latest = 12u64.to_be_bytes().to_vec();
        latest.extend_from_slice(&TS.to_be_bytes());
        latest.extend_from_slice(b"completed");
        assert_eq!(
            ops_of(&sealed("r", 4), 12),
            vec![
                CatalogOp::Delete(open_key("r")),
                CatalogOp::Put(status_key(RunStatus::Completed, 12), b"r".to_vec()),
                CatalogOp::Put(sealed_key("r"), latest),
            ]
        );
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
        assert_eq!(describe_key(&all_key(4)), "run accepted at 4");
        assert_eq!(describe_key(&run_key(RunKey::Skill("sum"), 4)), "skill \"sum\" accepted at 4");
        assert_eq!(describe_key(&run_key(RunKey::Agent("gw"), 4)), "agent \"gw\" accepted at 4");
        assert_eq!(describe_key(&time_key(-5, 4)), "time -5 accepted at 4");
        assert_eq!(describe_key(&status_key(RunStatus::Failed, 9)), "status \"failed\" sealed at 9");
        assert_eq!(describe_key(&sealed_key("r")), "latest seal of run \"r\"");
        assert_eq!(describe_key(&accepted_key("r")), "accepted index of run \"r\"");
    }

    // ---- the search ----

    /// `task.accepted` (seq 0) of `run` for `skill`, caller `caller`, by `agent`, at `ts`.
    fn opened(run: &str, skill: &str, caller: &str, agent: &str, ts: i64) -> Vec<u8> {
        let event = Event::TaskAccepted {
            protocol: Protocol::A2a,
            skill: skill.into(),
            caller: caller.into(),
            input_hash: [0; 32],
            context: None,
            parent: None,
        };
        Entry { ts, run: RunId::new(run).unwrap(), seq: 0, actor: agent.into(), event, grant: None, payload: None }
            .encode()
    }

    fn sealed_as(run: &str, seq: u64, status: RunStatus, ts: i64) -> Vec<u8> {
        let event = Event::ReceiptSealed { content_hash: [0; 32], events: seq, status, sig: [0; 64] };
        Entry { ts, run: RunId::new(run).unwrap(), seq, actor: "gw".into(), event, grant: None, payload: None }.encode()
    }

    const ALL: SearchBounds = SearchBounds { limit: 100, max_examined: 10_000, below: u64::MAX };

    fn everyone(_: &RunSummary) -> bool {
        true
    }

    fn found(store: &MemStore, q: &RunSearch, b: SearchBounds) -> (Vec<String>, Scan, Option<String>) {
        let page = search(store, q, None, b, &everyone).unwrap();
        (page.runs.into_iter().map(|r| r.run).collect(), page.scan, page.cursor)
    }

    /// Every page of `q`, following cursors; the runs in order and the number of pages.
    fn all_pages(store: &MemStore, q: &RunSearch, b: SearchBounds) -> (Vec<String>, usize) {
        let (mut runs, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
        loop {
            let page = search(store, q, cursor.as_deref(), b, &everyone).unwrap();
            pages += 1;
            runs.extend(page.runs.into_iter().map(|r| r.run));
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return (runs, pages),
            }
            assert!(pages < 1000, "the cursor does not advance");
        }
    }

    /// 30 runs `r0`..`r29` at indices 0.., each sealed right after (`r{i}` at 2i, its seal at
    /// 2i + 1), but every fifth left open; skill `a` for even runs, `b` for odd; agent `gw-2`
    /// for every third, else `gw`; caller `alice` below 15, else `bob`; `ts` = 1000 × i, except
    /// that `r29` is stamped earliest of all (-1); status failed for every seventh, else
    /// completed.
    fn search_store() -> MemStore {
        let mut entries = Vec::new();
        for i in 0..30i64 {
            let run = format!("r{i}");
            let skill = if i % 2 == 0 { "a" } else { "b" };
            let agent = if i % 3 == 0 { "gw-2" } else { "gw" };
            let caller = if i < 15 { "alice" } else { "bob" };
            let ts = if i == 29 { -1 } else { 1000 * i };
            entries.push(opened(&run, skill, caller, agent, ts));
            let status = if i % 7 == 0 { RunStatus::Failed } else { RunStatus::Completed };
            if i % 5 == 4 {
                entries.push(sealed_as("filler", 0, RunStatus::Completed, 0)); // keeps indices 2i, 2i+1
            } else {
                entries.push(sealed_as(&run, 1, status, ts + 1));
            }
        }
        store_of(&entries)
    }

    fn runs(v: &[i64]) -> Vec<String> {
        v.iter().map(|i| format!("r{i}")).collect()
    }

    #[test]
    fn a_search_lists_every_run_newest_first_with_its_summary() {
        let store = search_store();
        let page = search(&store, &RunSearch::default(), None, ALL, &everyone).unwrap();
        assert_eq!(page.scan, Scan::All);
        assert_eq!(
            page.runs.iter().map(|r| r.run.clone()).collect::<Vec<_>>(),
            runs(&(0..30).rev().collect::<Vec<_>>())
        );
        let r3 = page.runs.iter().find(|r| r.run == "r3").unwrap();
        assert_eq!(
            r3,
            &RunSummary {
                run: "r3".into(),
                index: 6,
                ts: 3000,
                skill: "b".into(),
                caller: "alice".into(),
                agent: "gw-2".into(),
                sealed: Some(SealSummary { index: 7, ts: 3001, status: RunStatus::Completed }),
                entries: 0,
            }
        );
        assert_eq!(page.runs.iter().find(|r| r.run == "r4").unwrap().sealed, None, "r4 is open");
        assert_eq!(page.cursor, None);
        // Bounded by the durable size: nothing accepted at or past `below`, no seal either.
        let below = SearchBounds { below: 7, ..ALL };
        let page = search(&store, &RunSearch::default(), None, below, &everyone).unwrap();
        assert_eq!(page.runs.iter().map(|r| r.run.clone()).collect::<Vec<_>>(), runs(&[3, 2, 1, 0]));
        assert_eq!(page.runs[0].sealed, None, "r3's seal at 7 is not below 7");
    }

    #[test]
    fn each_filter_alone_finds_exactly_its_runs() {
        let store = search_store();
        let q = |f: fn(&mut RunSearch)| {
            let mut q = RunSearch::default();
            f(&mut q);
            q
        };
        let skill_a = q(|q| q.skill = Some("a".into()));
        assert_eq!(found(&store, &skill_a, ALL).0, runs(&(0..30).rev().filter(|i| i % 2 == 0).collect::<Vec<_>>()));
        assert_eq!(found(&store, &skill_a, ALL).1, Scan::Skill);
        let agent = q(|q| q.agent = Some("gw-2".into()));
        assert_eq!(found(&store, &agent, ALL), (runs(&[27, 24, 21, 18, 15, 12, 9, 6, 3, 0]), Scan::Agent, None));
        let failed = q(|q| q.status = Some(StatusFilter::Sealed(RunStatus::Failed)));
        // r14 (every seventh: 0, 7, 14, 21, 28) is sealed failed; ordered by seal.
        assert_eq!(found(&store, &failed, ALL), (runs(&[28, 21, 7, 0]), Scan::Status, None), "r14 is open");
        let open = q(|q| q.status = Some(StatusFilter::Open));
        assert_eq!(found(&store, &open, ALL), (runs(&[29, 24, 19, 14, 9, 4]), Scan::Open, None));
        // [5000, 9000): by accepted time, newest first; r29 (ts -1) only from below.
        let range = q(|q| (q.from, q.until) = (Some(5000), Some(9000)));
        assert_eq!(found(&store, &range, ALL), (runs(&[8, 7, 6, 5]), Scan::Time, None));
        let early = q(|q| q.until = Some(1000));
        assert_eq!(found(&store, &early, ALL).0, runs(&[0, 29]), "time order, not index order");
        let bob = q(|q| q.caller = Some("bob".into()));
        assert_eq!(found(&store, &bob, ALL).0, runs(&(15..30).rev().collect::<Vec<_>>()));
        let nobody = q(|q| q.skill = Some("c".into()));
        assert_eq!(found(&store, &nobody, ALL), (vec![], Scan::Skill, None));
    }

    #[test]
    fn combined_filters_scan_the_most_selective_key_and_check_the_rest() {
        let store = search_store();
        let q = RunSearch {
            skill: Some("a".into()),
            status: Some(StatusFilter::Sealed(RunStatus::Failed)),
            from: Some(1),
            ..RunSearch::default()
        };
        // Failed seals (4 keys) are fewer than skill a's runs (15) or the time range's (29).
        assert_eq!(found(&store, &q, ALL), (runs(&[28]), Scan::Status, None), "r0 is before `from`");
        let q = RunSearch {
            agent: Some("gw".into()),
            caller: Some("alice".into()),
            status: Some(StatusFilter::Open),
            ..RunSearch::default()
        };
        assert_eq!(found(&store, &q, ALL), (runs(&[14, 4]), Scan::Open, None));
        let q = RunSearch { skill: Some("b".into()), until: Some(4000), ..RunSearch::default() };
        assert_eq!(found(&store, &q, ALL), (runs(&[3, 1, 29]), Scan::Time, None));
        // A reader sees only what `visible` lets through.
        let page = search(&store, &RunSearch::default(), None, ALL, &|r| r.caller == "bob").unwrap();
        assert_eq!(page.runs.len(), 15);
    }

    #[test]
    fn pages_follow_cursors_and_a_page_examines_a_bounded_number_of_keys() {
        let store = search_store();
        let every: Vec<String> = runs(&(0..30).rev().collect::<Vec<_>>());
        let small = SearchBounds { limit: 4, ..ALL };
        assert_eq!(all_pages(&store, &RunSearch::default(), small), (every.clone(), 8));
        // The last page is full and the cursor stops there: no empty page after it.
        assert_eq!(all_pages(&store, &RunSearch::default(), SearchBounds { limit: 5, ..ALL }).1, 6);
        let skill_a = RunSearch { skill: Some("a".into()), ..RunSearch::default() };
        let want: Vec<String> = every.iter().filter(|r| r[1..].parse::<i64>().unwrap() % 2 == 0).cloned().collect();
        assert_eq!(all_pages(&store, &skill_a, small).0, want);
        let open = RunSearch { status: Some(StatusFilter::Open), ..RunSearch::default() };
        assert_eq!(all_pages(&store, &open, SearchBounds { limit: 2, ..ALL }), (runs(&[29, 24, 19, 14, 9, 4]), 3));
        let range = RunSearch { from: Some(2000), ..RunSearch::default() };
        assert_eq!(all_pages(&store, &range, small).0, runs(&(2..29).rev().collect::<Vec<_>>()));
        // Few matches among many keys: each page reads at most 5 keys, and short pages carry
        // the cursor on until the scan is done.
        let failed_a = RunSearch {
            skill: Some("a".into()),
            caller: Some("alice".into()),
            status: Some(StatusFilter::Sealed(RunStatus::Failed)),
            ..RunSearch::default()
        };
        let tight = SearchBounds { max_examined: 2, ..ALL };
        let first = search(&store, &failed_a, None, tight, &everyone).unwrap();
        assert_eq!((first.examined, first.runs.len()), (2, 0), "r28 and r21 are not alice's");
        assert!(first.cursor.is_some());
        assert_eq!(all_pages(&store, &failed_a, tight), (runs(&[0]), 2), "r14 is open, r7 is b");
    }

    #[test]
    fn a_run_sealed_again_is_listed_once_by_its_latest_status() {
        let store = store_of(&[
            opened("x", "s", "u", "gw", 1),
            sealed_as("x", 1, RunStatus::Failed, 2),
            opened("y", "s", "u", "gw", 3),
            sealed_as("y", 1, RunStatus::Completed, 4),
            sealed_as("x", 2, RunStatus::Completed, 5),
        ]);
        let status = |s| RunSearch { status: Some(StatusFilter::Sealed(s)), ..RunSearch::default() };
        assert_eq!(found(&store, &status(RunStatus::Completed), ALL).0, vec!["x", "y"]);
        assert_eq!(found(&store, &status(RunStatus::Failed), ALL).0, Vec::<String>::new());
        // While x's newest seal is not durable (below 4), a status search skips x (for a group
        // commit's time), and a listing shows it as open rather than by an older status.
        let early = SearchBounds { below: 4, ..ALL };
        assert_eq!(found(&store, &status(RunStatus::Failed), early).0, Vec::<String>::new());
        assert_eq!(found(&store, &status(RunStatus::Completed), early).0, vec!["y"]);
        let open = RunSearch { status: Some(StatusFilter::Open), ..RunSearch::default() };
        let all = search(&store, &RunSearch::default(), None, early, &everyone).unwrap();
        assert_eq!((all.runs.len(), all.runs[1].run.as_str(), all.runs[1].sealed.clone()), (2, "x", None));
        assert_eq!(found(&store, &open, early).0, Vec::<String>::new(), "no `o` key: x was sealed once");
    }

    #[test]
    fn cursors_of_another_search_are_refused() {
        let store = search_store();
        let skill = RunSearch { skill: Some("a".into()), ..RunSearch::default() };
        let cursor = search(&store, &skill, None, SearchBounds { limit: 2, ..ALL }, &everyone).unwrap().cursor.unwrap();
        assert!(cursor.starts_with("skill."), "{cursor}");
        for (bad, says) in [
            (cursor.as_str(), "which this search does not name"),
            ("skill", "not a cursor"),
            ("skill.zz", "not a cursor"),
            ("skill.00", "not a cursor"),
            ("nothing.0000000000000000", "not a cursor"),
        ] {
            let q = if bad == cursor { RunSearch::default() } else { skill.clone() };
            match search(&store, &q, Some(bad), ALL, &everyone) {
                Err(Error::BadSearch(m)) => assert!(m.contains(says), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let time = RunSearch { from: Some(0), ..RunSearch::default() };
        assert!(matches!(search(&store, &time, Some(&cursor), ALL, &everyone), Err(Error::BadSearch(_))));
    }
}
