//! The storage seam under the log: one trait, [`Store`], with an in-memory implementation
//! ([`MemStore`]) and, behind the `rocksdb` feature, the durable one ([`RocksStore`]).
//!
//! A store holds six things: entries by index, the full tiles of tree nodes (the partial tiles at
//! the right edge live in the log's memory, see [`Edge`]), the run index (segments: `(run, first
//! seq) → (first index, flags)`), the run catalog (runs by caller, context and parent, open runs,
//! payload references: [`catalog`]), signed checkpoints by tree size, and metadata. The
//! log writes each group of appends as one atomic batch, through [`Store::write`] and then
//! [`Store::sync`] (or [`Store::commit`], both at once). The contract: when `sync` returns `Ok`,
//! every batch whose `write` returned before the call is durable, and batches become durable in
//! the order they were written; when `write`, `sync` or `commit` returns `Err`, any prefix of
//! what was written — or all of it — may be durable, and the log stops writing (it is
//! poisoned). A written batch may be visible to readers before it is durable: the log never
//! reads past its durable size.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

pub use catalog::{CatalogOp, RunKey, RunRef, RunSearch, RunSummary, Scan, SealSummary, SearchPage, StatusFilter};

use crate::merkle::NodeSource;
use crate::{Error, Hash, Result, TreeHash};

pub mod catalog;
#[cfg(feature = "rocksdb")]
mod rocks;
#[cfg(feature = "rocksdb")]
pub use rocks::{RocksConfig, RocksStore, set_io_options};

/// Tree levels per tile (tlog-tiles uses 8: 256 hashes per tile row 0).
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile's row 0.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// What the run index says about one entry of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunRecord {
    /// The entry's log index.
    pub index: u64,
    /// The entry's kind is `receipt.sealed`.
    pub sealed: bool,
    /// The entry's kind is `identity.registered`.
    pub identity: bool,
}

impl RunRecord {
    /// The record's flags byte: bit 0 sealed, bit 1 identity.
    pub fn flags(&self) -> u8 {
        u8::from(self.sealed) | (u8::from(self.identity) << 1)
    }

    fn from_flags(index: u64, flags: u8) -> RunRecord {
        RunRecord { index, sealed: flags & 1 != 0, identity: flags & 2 != 0 }
    }
}

/// Entries of one run with consecutive seqs at consecutive log indices: seqs `first_seq..` at
/// indices `first_index..`, one flags byte each ([`RunRecord::flags`]). The run index stores one
/// segment per run per submission (a whole run appended at once is one record), not one record
/// per entry. Identical duplicates are recognised by comparing the entry itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSegment {
    /// The run.
    pub run: Arc<str>,
    /// Seq of the first entry.
    pub first_seq: u64,
    /// Log index of the first entry.
    pub first_index: u64,
    /// One flags byte per entry; never empty.
    pub flags: Vec<u8>,
}

impl RunSegment {
    /// Entries in the segment.
    pub fn len(&self) -> u64 {
        self.flags.len() as u64
    }

    /// Whether the segment holds no entry (never true of a stored one).
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The seq after the segment's last entry.
    pub fn end_seq(&self) -> u64 {
        self.first_seq + self.len()
    }

    /// The index after the segment's last entry.
    pub fn end_index(&self) -> u64 {
        self.first_index + self.len()
    }

    /// The record of `seq`, if the segment holds it.
    pub fn record(&self, seq: u64) -> Option<RunRecord> {
        let at = seq.checked_sub(self.first_seq)?;
        let flags = *self.flags.get(usize::try_from(at).ok()?)?;
        Some(RunRecord::from_flags(self.first_index + at, flags))
    }

    /// The records of the segment's entries with their seqs, in seq order.
    pub fn records(&self) -> impl DoubleEndedIterator<Item = (u64, RunRecord)> + '_ {
        self.flags.iter().enumerate().map(|(at, f)| {
            let at = at as u64;
            (self.first_seq + at, RunRecord::from_flags(self.first_index + at, *f))
        })
    }

    /// The stored value: first index (u64 big-endian) ‖ one flags byte per entry.
    pub fn value(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(8 + self.flags.len());
        v.extend_from_slice(&self.first_index.to_be_bytes());
        v.extend_from_slice(&self.flags);
        v
    }

    /// Parses a stored segment of `run` starting at `first_seq`.
    pub fn from_stored(run: &str, first_seq: u64, value: &[u8]) -> Result<RunSegment> {
        let corrupt = |what: &str| Error::Corrupt(format!("run {run:?} segment at seq {first_seq}: {what}"));
        if value.len() < 9 {
            return Err(corrupt(&format!("{} bytes, at least 9 expected", value.len())));
        }
        let first_index = u64::from_be_bytes(value[..8].try_into().expect("8 bytes"));
        let flags = value[8..].to_vec();
        if let Some(f) = flags.iter().find(|f| **f > 3) {
            return Err(corrupt(&format!("unknown flags {f:#04x}")));
        }
        let n = flags.len() as u64;
        if first_seq.checked_add(n).is_none() || first_index.checked_add(n).is_none() {
            return Err(corrupt("runs past the end of the seq or index space"));
        }
        Ok(RunSegment { run: run.into(), first_seq, first_index, flags })
    }
}

/// The run-index key of a segment: run bytes, 0x00, first seq big-endian. Run ids never contain
/// 0x00, so all keys of one run are contiguous and ordered by seq.
pub fn run_key(run: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(run.len() + 9);
    k.extend_from_slice(run.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// What [`Store::catalog_scan`] calls with each `(key, value)`: `false` stops the scan.
pub type CatalogVisit<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<bool>;

/// The log parameters fixed at creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogParams {
    /// The tree hash.
    pub hash: TreeHash,
    /// The origin (log key name).
    pub origin: String,
}

/// One atomic write: a group of appended entries with everything derived from them.
#[derive(Debug, Default)]
pub struct CommitBatch {
    /// `(index, entry bytes)`, indices consecutive from the previous tree size. The bytes are
    /// shared: the server hands in slices of the request that carried them, uncopied.
    pub entries: Vec<(u64, Bytes)>,
    /// Run-index segments.
    pub runs: Vec<RunSegment>,
    /// Tiles this batch completed: `(tile level, tile index, encoded full tile)`. Partial tiles
    /// are never stored ([`Edge`]).
    pub tiles: Vec<(u8, u64, Vec<u8>)>,
    /// Run-catalog changes the entries make, in index order ([`catalog`]): applied in order, in
    /// the same atomic write as the entries.
    pub catalog: Vec<CatalogOp>,
    /// The tree size after this batch.
    pub tree_size: u64,
    /// The source position of the last submission this batch takes (a bus log's stream
    /// sequence, [`crate::log::Log::append_at`]): stored in the same atomic write as the entries,
    /// so that a log that restarts resumes exactly after the last submission it made durable.
    /// `None` leaves the stored position as it is.
    pub position: Option<u64>,
    /// `(tree size after it, source position)` of each positioned submission in this batch that
    /// appended entries, in order: which position made the tree reach which size
    /// ([`Store::position_at`]). Kept per submission, not per batch, because batch boundaries
    /// differ between processes that follow the same source and submissions do not.
    pub positions: Vec<(u64, u64)>,
    /// Log parameters, set on the first commit of a new log only.
    pub params: Option<LogParams>,
}

/// Where the log keeps its data. See the module docs for the durability contract.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The parameters and the committed tree size, or `None` for a store never committed to.
    fn load_meta(&self) -> Result<Option<(LogParams, u64)>>;
    /// The source position last committed ([`CommitBatch::position`]), `None` if none ever was.
    fn position(&self) -> Result<Option<u64>>;
    /// The source position whose submission made the tree reach exactly `size` entries
    /// ([`CommitBatch::positions`]), `None` if no positioned submission did.
    fn position_at(&self, size: u64) -> Result<Option<u64>>;
    /// Calls `f` with every recorded `(size, position)` ([`CommitBatch::positions`]) in size
    /// order, until it fails (fsck's check of the positions).
    fn scan_positions(&self, f: &mut dyn FnMut(u64, u64) -> Result<()>) -> Result<()>;
    /// Writes `batch` atomically and durably.
    fn commit(&self, batch: &CommitBatch) -> Result<()>;
    /// Writes `batch` atomically; it is durable after the next successful [`Store::sync`]. A
    /// store without a cheaper way commits it durably here.
    fn write(&self, batch: &CommitBatch) -> Result<()> {
        self.commit(batch)
    }
    /// Makes durable every batch whose [`Store::write`] returned before this call.
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    /// Stops the store's own background work and waits for what is running, once nothing will
    /// write to it again (a service's log closed, just before the process exits). Reads still
    /// work. A process can exit while requests still hold the store, so that it is never dropped:
    /// background threads must not still be working when the exit destroys the library's
    /// static state (RocksDB then aborts with `pthread lock: Invalid argument`).
    fn quiesce(&self) {}
    /// The entry at `index`.
    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>>;
    /// The entries at `indices` (ascending), in that order: one batched lookup where the store
    /// has one.
    fn entries(&self, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        indices.iter().map(|&i| self.entry(i)).collect()
    }
    /// Calls `f` for entries `[start, end)` in index order, stopping at the first missing one.
    fn scan_entries(&self, start: u64, end: u64, f: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()>;
    /// The encoded tile `(level, index)`.
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>>;
    /// The record of `(run, seq)`.
    fn run_record(&self, run: &str, seq: u64) -> Result<Option<RunRecord>>;
    /// Whether `run` has any entry: a point lookup of its first segment, which a store may
    /// answer from a filter for the many runs that are new.
    fn run_started(&self, run: &str) -> Result<bool> {
        Ok(self.run_record(run, 0)?.is_some())
    }
    /// The highest seq of `run` and its record.
    fn run_last(&self, run: &str) -> Result<Option<(u64, RunRecord)>>;
    /// All records of `run` in seq order.
    fn run_records(&self, run: &str) -> Result<Vec<(u64, RunRecord)>>;
    /// Calls `f` for every stored run-index segment, in key order (by run, then first seq), as
    /// stored: no check that a run's segments follow each other. For `fsck`.
    fn scan_runs(&self, f: &mut dyn FnMut(RunSegment) -> Result<()>) -> Result<()>;
    /// Stores a signed checkpoint durably.
    fn put_checkpoint(&self, size: u64, note: &str) -> Result<()>;
    /// The checkpoint with the largest tree size.
    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>>;
    /// All stored checkpoints in size order.
    fn checkpoints(&self) -> Result<Vec<(u64, String)>>;
    /// Calls `f` with the run catalog's `(key, value)` pairs whose keys lie in `[lo, hi)`, in key
    /// order (descending if `reverse`), until `f` answers `false` ([`catalog`] has the keys).
    /// Like every read of a store, it may see batches written but not yet synced.
    fn catalog_scan(&self, lo: &[u8], hi: &[u8], reverse: bool, f: CatalogVisit<'_>) -> Result<()>;
    /// Whether the store holds the run catalog of its entries. Only a store of an earlier format
    /// opened read-only does not (opening it for writing builds it).
    fn has_catalog(&self) -> Result<bool> {
        Ok(true)
    }
    /// Whether the catalog holds the run search's keys (format v5; [`catalog::search`]). Only a
    /// format-v4 store opened read-only has a catalog without them.
    fn catalog_searchable(&self) -> Result<bool> {
        self.has_catalog()
    }
    /// The catalog's value under `key`.
    fn catalog_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut hi = key.to_vec();
        hi.push(0);
        let mut out = None;
        self.catalog_scan(key, &hi, false, &mut |_, v| {
            out = Some(v.to_vec());
            Ok(false)
        })?;
        Ok(out)
    }
    /// Runs whose `task.accepted` (seq 0) names `key`, newest first, accepted below index
    /// `before` if given, at most `limit`.
    fn runs_by(&self, key: RunKey<'_>, before: Option<u64>, limit: usize) -> Result<Vec<RunRef>> {
        catalog::runs_by(self, key, before, limit)
    }
    /// How many runs [`Store::runs_by`] lists for `key` (one pass over them).
    fn count_runs_by(&self, key: RunKey<'_>) -> Result<u64> {
        catalog::count_runs_by(self, key)
    }
    /// Runs accepted and not yet sealed, by ascending accepted index.
    fn open_runs(&self) -> Result<Vec<RunRef>> {
        catalog::open_runs(self)
    }
    /// Runs with an entry naming `hash` (as an input, artifact, workspace or payload hash), each
    /// once, by the index of the first such entry, at most `limit`.
    fn payload_runs(&self, hash: &[u8; 32], limit: usize) -> Result<Vec<String>> {
        catalog::payload_runs(self, hash, limit)
    }

    // ---- payloads: a key space of their own, laid out by `crate::payload` ----
    // A store that keeps no payloads (a test double) leaves these as they are: every payload
    // call then fails with a storage error that says so.

    /// The value under `key` in the payload space.
    fn payload_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let _ = key;
        Err(no_payloads())
    }
    /// Writes `puts` and deletes `deletes` in the payload space, atomically and not synced: it
    /// is durable after the next [`Store::sync`], and in write order with the log's batches
    /// (a batch written after this call is durable no earlier than it).
    fn payload_write(&self, puts: &[(&[u8], &[u8])], deletes: &[&[u8]]) -> Result<()> {
        let _ = (puts, deletes);
        Err(no_payloads())
    }
    /// Deletes every key in `[from, to)` of the payload space, and makes the deletion reach
    /// whatever files hold the bytes (RocksDB: the range is compacted, so the bytes leave the
    /// table files). Synced: durable when it returns.
    fn payload_delete_range(&self, from: &[u8], to: &[u8]) -> Result<()> {
        let _ = (from, to);
        Err(no_payloads())
    }
    /// The keys in `[from, to)` of the payload space, in order.
    fn payload_keys(&self, from: &[u8], to: &[u8]) -> Result<Vec<Vec<u8>>> {
        let _ = (from, to);
        Err(no_payloads())
    }
}

fn no_payloads() -> Error {
    Error::Storage("this store keeps no payloads".into())
}

/// Encodes a tile: width `w` of row 0 (u16 big-endian), then rows 0..8, row `r` holding the
/// `w >> r` complete nodes of level `8t + r` under the tile, left to right. Row 0 alone is the
/// tlog-tiles tile of the same coordinates.
pub fn encode_tile(rows: &[Vec<Hash>]) -> Vec<u8> {
    let w = rows.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(2 + 32 * 2 * w);
    out.extend_from_slice(&(w as u16).to_be_bytes());
    for (r, row) in rows.iter().enumerate() {
        debug_assert_eq!(row.len(), w >> r);
        for h in row {
            out.extend_from_slice(h);
        }
    }
    out
}

/// Number of hashes in a tile whose row 0 has `w` hashes.
fn tile_hashes(w: usize) -> usize {
    (0..TILE_HEIGHT).map(|r| w >> r).sum()
}

/// Reads node `(row, pos)` of an encoded tile.
pub fn tile_node(tile: &[u8], row: u8, pos: u64) -> Result<Option<Hash>> {
    if tile.len() < 2 {
        return Err(Error::Corrupt("tile shorter than its header".into()));
    }
    let w = usize::from(u16::from_be_bytes([tile[0], tile[1]]));
    if w > TILE_WIDTH as usize || tile.len() != 2 + 32 * tile_hashes(w) {
        return Err(Error::Corrupt(format!("tile of width {w} has {} bytes", tile.len())));
    }
    let row_start: usize = (0..row).map(|r| w >> r).sum();
    if pos as usize >= w >> row {
        return Ok(None);
    }
    let at = 2 + 32 * (row_start + pos as usize);
    Ok(Some(tile[at..at + 32].try_into().expect("32 bytes")))
}

/// Row 0 of an encoded tile, the tlog-tiles tile of the same coordinates: `w` hashes.
pub fn tile_row0(tile: &[u8]) -> Result<&[u8]> {
    tile_node(tile, 0, 0)?; // validates the header and length
    let w = usize::from(u16::from_be_bytes([tile[0], tile[1]]));
    Ok(&tile[2..2 + 32 * w])
}

/// Decodes a tile into its rows.
pub fn decode_tile(tile: &[u8]) -> Result<Vec<Vec<Hash>>> {
    let w = if tile.len() >= 2 { usize::from(u16::from_be_bytes([tile[0], tile[1]])) } else { 0 };
    let mut rows = Vec::with_capacity(usize::from(TILE_HEIGHT));
    for r in 0..TILE_HEIGHT {
        let mut row = Vec::with_capacity(w >> r);
        for p in 0..(w >> r) as u64 {
            row.push(tile_node(tile, r, p)?.expect("within width"));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// An encoded tile shared by readers.
pub type SharedTile = Arc<Vec<u8>>;

/// The partial tiles at the right edge of a tree: on each tile level, the one tile that is not
/// full yet (if it has any node), encoded as [`encode_tile`]. Stores hold full tiles only, each
/// written once; the log keeps its durable tree's edge in memory for readers and rebuilds it on
/// open from the full tiles and entries below it.
///
/// Every node of a tree of `size` leaves lies either in a full tile or in the edge of that tree
/// (or of any larger one: tiles only gain nodes), so readers need nothing else.
#[derive(Clone, Debug, Default)]
pub struct Edge {
    /// Per tile level: the edge tile's index and, if it has any node, its encoding.
    tiles: Vec<(u64, Option<SharedTile>)>,
}

impl Edge {
    /// An edge from each tile level's `(edge tile index, encoded tile or None when empty)`,
    /// lowest level first.
    pub fn new(tiles: Vec<(u64, Option<SharedTile>)>) -> Edge {
        Edge { tiles }
    }

    /// The edge tile `(level, index)`, if that is this edge's tile on `level` and has nodes.
    pub fn tile(&self, level: u8, index: u64) -> Option<&SharedTile> {
        match self.tiles.get(usize::from(level)) {
            Some((i, t)) if *i == index => t.as_ref(),
            _ => None,
        }
    }

    /// Whether `(level, index)` is this edge's tile on `level` (then no store holds it).
    pub fn is_edge(&self, level: u8, index: u64) -> bool {
        self.tiles.get(usize::from(level)).is_some_and(|(i, _)| *i == index)
    }

    /// Whether `(level, index)` lies right of this edge, or above the tree: not a tile of this
    /// tree, though a store written ahead of it (a group not yet synced) may already hold it.
    pub fn is_beyond(&self, level: u8, index: u64) -> bool {
        self.tiles.get(usize::from(level)).is_none_or(|(i, _)| index > *i)
    }
}

/// Full tiles never change, so readers may keep them: an LRU by `(level, index)`, shared by every
/// proof and receipt a log serves.
#[derive(Debug)]
pub struct TileCache {
    tiles: Mutex<lru::LruCache<(u8, u64), SharedTile>>,
    /// Roots of non-perfect ranges `[start, end)` (right edges of trees proofs were asked for).
    edges: Mutex<lru::LruCache<(u64, u64), Hash>>,
}

impl TileCache {
    /// A cache of at most `tiles` tiles (16 KiB each).
    pub fn new(tiles: usize) -> TileCache {
        let n = |x: usize| std::num::NonZeroUsize::new(x.max(1)).expect("non-zero");
        TileCache { tiles: Mutex::new(lru::LruCache::new(n(tiles))), edges: Mutex::new(lru::LruCache::new(n(4096))) }
    }

    /// Full tile `(level, index)` from the cache or, when missing, from the store.
    pub fn tile(&self, store: &dyn Store, level: u8, index: u64) -> Result<Option<SharedTile>> {
        if let Some(t) = self.tiles.lock().unwrap_or_else(|p| p.into_inner()).get(&(level, index)) {
            return Ok(Some(t.clone()));
        }
        let Some(tile) = store.tile(level, index)? else { return Ok(None) };
        let tile = Arc::new(tile);
        self.tiles.lock().unwrap_or_else(|p| p.into_inner()).put((level, index), tile.clone());
        Ok(Some(tile))
    }
}

/// Tile levels of a tree of up to 2^64 leaves.
const TILE_LEVELS: usize = 64 / TILE_HEIGHT as usize;

/// Reads tree nodes out of a tree's [`Edge`] and a store's full tiles through a [`TileCache`],
/// for one reader at a time. It keeps the last full tile of each tile level it read: a proof
/// takes up to eight nodes from each tile on its path, and the proofs of a run's entries share
/// most of their tiles, so the shared cache (one lock for every reader) is asked once per tile
/// rather than once per node.
#[derive(Debug)]
pub struct CachedNodes<'a> {
    store: &'a dyn Store,
    cache: &'a TileCache,
    edge: &'a Edge,
    last: RefCell<[Option<(u64, SharedTile)>; TILE_LEVELS]>,
}

impl<'a> CachedNodes<'a> {
    /// The nodes of the tree whose right edge is `edge`, full tiles from `store` through `cache`.
    pub fn new(store: &'a dyn Store, cache: &'a TileCache, edge: &'a Edge) -> CachedNodes<'a> {
        CachedNodes { store, cache, edge, last: RefCell::default() }
    }

    /// Full tile `(level, index)`.
    fn full_tile(&self, level: u8, index: u64) -> Result<Option<SharedTile>> {
        let slot = usize::from(level);
        if let Some(Some((i, tile))) = self.last.borrow().get(slot)
            && *i == index
        {
            return Ok(Some(tile.clone()));
        }
        let tile = self.cache.tile(self.store, level, index)?;
        if let (Some(t), Some(last)) = (&tile, self.last.borrow_mut().get_mut(slot)) {
            *last = Some((index, t.clone()));
        }
        Ok(tile)
    }
}

impl NodeSource for CachedNodes<'_> {
    fn node(&self, level: u8, index: u64) -> Result<Hash> {
        let (t, row) = (level / TILE_HEIGHT, level % TILE_HEIGHT);
        let per_row = TILE_WIDTH >> row;
        let (tile_index, pos) = (index / per_row, index % per_row);
        let node = if self.edge.is_edge(t, tile_index) {
            match self.edge.tile(t, tile_index) {
                Some(tile) => tile_node(tile, row, pos)?,
                None => None,
            }
        } else {
            match self.full_tile(t, tile_index)? {
                Some(tile) => tile_node(&tile, row, pos)?,
                None => None,
            }
        };
        node.ok_or_else(|| Error::Corrupt(format!("tile {t}/{tile_index} lacks node {level}/{index}")))
    }

    fn remembered_root(&self, start: u64, end: u64) -> Option<Hash> {
        self.cache.edges.lock().unwrap_or_else(|p| p.into_inner()).get(&(start, end)).copied()
    }

    fn remember_root(&self, start: u64, end: u64, root: &Hash) {
        self.cache.edges.lock().unwrap_or_else(|p| p.into_inner()).put((start, end), *root);
    }
}

/// A store in memory: for tests, benchmarks and tools. It keeps nothing across processes.
#[derive(Debug, Default)]
pub struct MemStore {
    inner: Mutex<MemInner>,
}

#[derive(Debug, Default)]
struct MemInner {
    params: Option<LogParams>,
    size: u64,
    entries: BTreeMap<u64, Vec<u8>>,
    tiles: BTreeMap<(u8, u64), Vec<u8>>,
    /// Segments by [`run_key`] of their first seq, as the durable store keeps them.
    runs: BTreeMap<Vec<u8>, RunSegment>,
    /// The run catalog by its keys.
    catalog: BTreeMap<Vec<u8>, Vec<u8>>,
    checkpoints: BTreeMap<u64, String>,
    position: Option<u64>,
    positions: BTreeMap<u64, u64>,
    /// The payload space (`crate::payload` lays out its keys).
    payloads: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemStore {
    fn load_meta(&self) -> Result<Option<(LogParams, u64)>> {
        let g = self.lock();
        Ok(g.params.clone().map(|p| (p, g.size)))
    }

    fn position(&self) -> Result<Option<u64>> {
        Ok(self.lock().position)
    }

    fn position_at(&self, size: u64) -> Result<Option<u64>> {
        Ok(self.lock().positions.get(&size).copied())
    }

    fn scan_positions(&self, f: &mut dyn FnMut(u64, u64) -> Result<()>) -> Result<()> {
        let positions: Vec<(u64, u64)> = self.lock().positions.iter().map(|(s, p)| (*s, *p)).collect();
        positions.into_iter().try_for_each(|(s, p)| f(s, p))
    }

    fn commit(&self, b: &CommitBatch) -> Result<()> {
        let mut g = self.lock();
        if let Some(p) = &b.params {
            g.params = Some(p.clone());
        }
        for (i, e) in &b.entries {
            g.entries.insert(*i, e.to_vec());
        }
        for seg in &b.runs {
            g.runs.insert(run_key(&seg.run, seg.first_seq), seg.clone());
        }
        for (t, i, tile) in &b.tiles {
            g.tiles.insert((*t, *i), tile.clone());
        }
        for op in &b.catalog {
            match op {
                CatalogOp::Put(k, v) => g.catalog.insert(k.clone(), v.clone()),
                CatalogOp::Delete(k) => g.catalog.remove(k),
            };
        }
        g.size = b.tree_size;
        if b.position.is_some() {
            g.position = b.position;
        }
        g.positions.extend(b.positions.iter().copied());
        Ok(())
    }

    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().entries.get(&index).cloned())
    }

    fn scan_entries(&self, start: u64, end: u64, f: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        let g = self.lock();
        for (i, e) in g.entries.range(start..end) {
            f(*i, e)?;
        }
        Ok(())
    }

    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().tiles.get(&(level, index)).cloned())
    }

    fn run_record(&self, run: &str, seq: u64) -> Result<Option<RunRecord>> {
        let g = self.lock();
        let (lo, at) = (run_key(run, 0), run_key(run, seq));
        Ok(g.runs.range(lo..=at).next_back().and_then(|(_, seg)| seg.record(seq)))
    }

    fn run_last(&self, run: &str) -> Result<Option<(u64, RunRecord)>> {
        let g = self.lock();
        let (lo, hi) = (run_key(run, 0), run_key(run, u64::MAX));
        Ok(g.runs.range(lo..=hi).next_back().and_then(|(_, seg)| seg.records().next_back()))
    }

    fn run_records(&self, run: &str) -> Result<Vec<(u64, RunRecord)>> {
        let g = self.lock();
        let (lo, hi) = (run_key(run, 0), run_key(run, u64::MAX));
        Ok(g.runs.range(lo..=hi).flat_map(|(_, seg)| seg.records()).collect())
    }

    fn scan_runs(&self, f: &mut dyn FnMut(RunSegment) -> Result<()>) -> Result<()> {
        let segments: Vec<RunSegment> = self.lock().runs.values().cloned().collect();
        segments.into_iter().try_for_each(f)
    }

    fn put_checkpoint(&self, size: u64, note: &str) -> Result<()> {
        self.lock().checkpoints.insert(size, note.to_string());
        Ok(())
    }

    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>> {
        Ok(self.lock().checkpoints.iter().next_back().map(|(s, n)| (*s, n.clone())))
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>> {
        Ok(self.lock().checkpoints.iter().map(|(s, n)| (*s, n.clone())).collect())
    }

    fn catalog_scan(&self, lo: &[u8], hi: &[u8], reverse: bool, f: CatalogVisit<'_>) -> Result<()> {
        use std::ops::Bound::{Excluded, Included};
        if lo >= hi {
            return Ok(());
        }
        // A chunk at a time, copied out of the lock: `f` may read the store again.
        const CHUNK: usize = 256;
        let (mut lo, mut hi) = (Included(lo.to_vec()), Excluded(hi.to_vec()));
        loop {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = {
                let g = self.lock();
                let range = g.catalog.range::<Vec<u8>, _>((lo.clone(), hi.clone()));
                let copy = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
                if reverse {
                    range.rev().take(CHUNK).map(copy).collect()
                } else {
                    range.take(CHUNK).map(copy).collect()
                }
            };
            for (k, v) in &pairs {
                if !f(k, v)? {
                    return Ok(());
                }
            }
            match pairs.into_iter().next_back() {
                Some((last, _)) if reverse => hi = Excluded(last),
                Some((last, _)) => lo = Excluded(last),
                None => return Ok(()),
            }
        }
    }
    fn payload_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().payloads.get(key).cloned())
    }

    fn payload_write(&self, puts: &[(&[u8], &[u8])], deletes: &[&[u8]]) -> Result<()> {
        let mut g = self.lock();
        for (k, v) in puts {
            g.payloads.insert(k.to_vec(), v.to_vec());
        }
        for k in deletes {
            g.payloads.remove(*k);
        }
        Ok(())
    }

    fn payload_delete_range(&self, from: &[u8], to: &[u8]) -> Result<()> {
        let mut g = self.lock();
        let doomed: Vec<Vec<u8>> = g.payloads.range(from.to_vec()..to.to_vec()).map(|(k, _)| k.clone()).collect();
        for k in doomed {
            g.payloads.remove(&k);
        }
        Ok(())
    }

    fn payload_keys(&self, from: &[u8], to: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(self.lock().payloads.range(from.to_vec()..to.to_vec()).map(|(k, _)| k.clone()).collect())
    }
}
