//! A consistency check of a stored log, over any [`Store`]: what the log derived from its
//! entries, and signed over them, is recomputed and compared with what the store holds.
//!
//! [`check`] walks, in one pass over the entries and then over the run index and checkpoints:
//! - **entries**: present at every index below the stored tree size, none at or above it, each
//!   a valid SPEC §2 entry;
//! - **leaf hashes and tiles**: every full tile is recomputed from the entries' leaf hashes (a
//!   tile of level `t > 0` from the tops of the tiles below it, themselves recomputed) and
//!   compared with the stored one; a stored tile where the tree has only a partial one (never
//!   stored) or none is reported too;
//! - **the run index**: each run's segments follow each other from seq 0 (no gap, no overlap),
//!   every record names an entry below the tree size whose bytes have that run and seq and
//!   whose kind matches the record's flags, and every entry is named by exactly one record;
//! - **checkpoints**: each verifies under the log key, its note's size equals the size it is
//!   stored under (so sizes never decrease in storage order), it is no larger than the stored
//!   tree, and its root is the root of the first `size` entries; a non-empty log has one;
//! - **the run catalog** (when the store has one, [`Store::has_catalog`]): replaying every
//!   entry's catalog operations in index order gives exactly the stored catalog, key for key
//!   and value for value (skipped when an entry is missing or does not decode: that is
//!   reported, and the catalog cannot be judged without it); a format-v4 store read as it is
//!   ([`Store::catalog_searchable`] false) is checked for its v4 keys only;
//! - **source positions** (a bus log's `pos/` keys): each for a size within the tree, the
//!   positions increasing with size, none beyond the last position applied, and each
//!   checkpoint's stream line naming the position recorded for its size;
//! - **the right edge**: the log's own rebuild at open (the compact range and partial tiles
//!   from the last entries and the tops of the full tiles) succeeds and gives the root of all
//!   the entries.
//!
//! Each disagreement is one [`Finding`] saying what and where. Memory: about 25 bytes per entry
//! (a tag of its run, its seq and flags, for the run-index check), a tile's worth per tile
//! level, and the catalog the entries imply (its keys and values: about 300 bytes per run, with
//! the search keys, and 50 per content hash named); entries and tiles are read a tile at a time.

use std::collections::BTreeMap;

use crate::checkpoint::Checkpoint;
use crate::entry::{Entry, Kind};
use crate::keys::VerifierKey;
use crate::log::tree::TreeBuilder;
use crate::merkle::CompactRange;
use crate::store::catalog::{CatalogOp, EntryFacts, describe_key, is_v4_key};
use crate::store::{RunRecord, Store, TILE_HEIGHT, TILE_WIDTH, encode_tile};
use crate::{Hash, Result, TreeHash};

/// What [`check`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The stored tree size (0 for an empty store).
    pub size: u64,
    /// The tree hash the log was created with (`None` for an empty store).
    pub hash: Option<TreeHash>,
    /// Root of the tree of the stored entries (up to the first missing one).
    pub root: Hash,
    /// Run-index segments read.
    pub segments: u64,
    /// Checkpoints read.
    pub checkpoints: u64,
    /// Source positions read (`pos/` keys: one per appending message of a bus log).
    pub positions: u64,
    /// Run-catalog keys read (`None` when the store has no catalog: an earlier format opened
    /// read-only).
    pub catalog_keys: Option<u64>,
    /// Every disagreement, in the order found.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether nothing disagrees.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// One disagreement between parts of a stored log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// The store holds log data but no log parameters.
    NoParameters,
    /// The log was created for another origin than the key's.
    OriginMismatch {
        /// The stored origin.
        stored: String,
        /// The key's name.
        key: String,
    },
    /// Entries `[from, to)` are missing below the tree size.
    MissingEntries {
        /// First missing index.
        from: u64,
        /// End of the missing range.
        to: u64,
    },
    /// An entry is stored at or above the tree size.
    EntryBeyondSize {
        /// Its index.
        index: u64,
    },
    /// An entry is not a valid SPEC §2 entry.
    BadEntry {
        /// Its index.
        index: u64,
        /// Why.
        error: String,
    },
    /// A full tile of the tree is not stored.
    MissingTile {
        /// Tile level.
        level: u8,
        /// Tile index.
        index: u64,
    },
    /// A stored full tile differs from the one recomputed from the entries.
    TileMismatch {
        /// Tile level.
        level: u8,
        /// Tile index.
        index: u64,
        /// The first differing node as `(row, position)`, or `None` when the stored tile is not
        /// even a full tile's encoding.
        node: Option<(u8, u64)>,
    },
    /// A tile is stored where the tree has only a partial tile (never stored) or none.
    UnexpectedTile {
        /// Tile level.
        level: u8,
        /// Tile index.
        index: u64,
    },
    /// A run's segments do not follow each other: one starts after a gap, or over seqs an
    /// earlier one holds.
    RunSegments {
        /// The run.
        run: String,
        /// The seq the segment should start at (0 for a run's first).
        expected_seq: u64,
        /// The seq it starts at.
        first_seq: u64,
    },
    /// A run-index record disagrees with the entry it names.
    RunRecordMismatch {
        /// The run.
        run: String,
        /// The seq.
        seq: u64,
        /// The index it names.
        index: u64,
        /// What disagrees.
        what: String,
    },
    /// No run-index record names this entry.
    EntryNotIndexed {
        /// Its index.
        index: u64,
    },
    /// The run index could not be read.
    BadRunIndex {
        /// Why.
        error: String,
    },
    /// A non-empty log has no checkpoint.
    NoCheckpoint,
    /// A checkpoint does not verify under the log key, or does not parse.
    CheckpointSignature {
        /// The size it is stored under.
        size: u64,
        /// Why.
        error: String,
    },
    /// A checkpoint's note has another size than the one it is stored under.
    CheckpointSize {
        /// The size it is stored under.
        stored_as: u64,
        /// The size in its note.
        size: u64,
    },
    /// A checkpoint covers more entries than the stored tree has.
    CheckpointBeyondSize {
        /// Its size.
        size: u64,
        /// The stored tree size.
        tree_size: u64,
    },
    /// A checkpoint's root is not the root of its first `size` entries.
    CheckpointRoot {
        /// Its size.
        size: u64,
    },
    /// A recorded source position (a bus log's stream sequence per tree size) disagrees with the
    /// tree, the other positions, or a checkpoint's stream line.
    Position {
        /// The tree size it is recorded for.
        size: u64,
        /// What disagrees.
        what: String,
    },
    /// The run catalog disagrees with the entries at one key.
    Catalog {
        /// The key, in words ([`crate::store::catalog::describe_key`]).
        key: String,
        /// What disagrees: the key is missing, is not derived from any entry, or holds another
        /// value.
        what: String,
    },
    /// The run catalog could not be read.
    BadCatalog {
        /// Why.
        error: String,
    },
    /// The log's rebuild of its right edge at open fails.
    EdgeUnbuildable {
        /// Why.
        error: String,
    },
    /// The rebuilt right edge gives another root than the entries.
    EdgeRoot,
    /// A read from the store failed.
    Unreadable {
        /// What was being read.
        what: &'static str,
        /// Why.
        error: String,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::NoParameters => write!(f, "the store holds log data but no log parameters"),
            Finding::OriginMismatch { stored, key } => {
                write!(f, "the log was created for origin {stored:?}, the key is {key:?}")
            }
            Finding::MissingEntries { from, to } => write!(f, "entries {from}..{to} are missing"),
            Finding::EntryBeyondSize { index } => write!(f, "entry {index} is stored at or above the tree size"),
            Finding::BadEntry { index, error } => write!(f, "entry {index} is not a valid entry: {error}"),
            Finding::MissingTile { level, index } => write!(f, "full tile {level}/{index} is missing"),
            Finding::TileMismatch { level, index, node: Some((row, pos)) } => {
                write!(f, "tile {level}/{index} differs from the entries, first at row {row} position {pos}")
            }
            Finding::TileMismatch { level, index, node: None } => {
                write!(f, "tile {level}/{index} is not a full tile's encoding")
            }
            Finding::UnexpectedTile { level, index } => {
                write!(f, "tile {level}/{index} is stored but is not a full tile of the tree")
            }
            Finding::RunSegments { run, expected_seq, first_seq } => {
                write!(f, "run {run:?}: a run-index segment starts at seq {first_seq}, expected {expected_seq}")
            }
            Finding::RunRecordMismatch { run, seq, index, what } => {
                write!(f, "run {run:?} seq {seq} names entry {index}, but {what}")
            }
            Finding::EntryNotIndexed { index } => write!(f, "entry {index} is in no run-index segment"),
            Finding::BadRunIndex { error } => write!(f, "the run index cannot be read: {error}"),
            Finding::NoCheckpoint => write!(f, "a non-empty log has no checkpoint"),
            Finding::CheckpointSignature { size, error } => {
                write!(f, "checkpoint {size} does not verify under the log key: {error}")
            }
            Finding::CheckpointSize { stored_as, size } => {
                write!(f, "the checkpoint stored as size {stored_as} has size {size}")
            }
            Finding::CheckpointBeyondSize { size, tree_size } => {
                write!(f, "checkpoint {size} covers more than the {tree_size} stored entries")
            }
            Finding::CheckpointRoot { size } => {
                write!(f, "checkpoint {size}'s root is not the root of its entries")
            }
            Finding::Position { size, what } => write!(f, "the source position at size {size}: {what}"),
            Finding::Catalog { key, what } => write!(f, "run catalog, {key}: {what}"),
            Finding::BadCatalog { error } => write!(f, "the run catalog cannot be read: {error}"),
            Finding::EdgeUnbuildable { error } => write!(f, "the right edge of the tree cannot be rebuilt: {error}"),
            Finding::EdgeRoot => write!(f, "the rebuilt right edge gives another root than the entries"),
            Finding::Unreadable { what, error } => write!(f, "reading {what}: {error}"),
        }
    }
}

/// Checks the log in `store` against its entries and the log key `key` (see the module docs).
/// Every disagreement is a [`Finding`] in the report; `Err` only when the store's parameters
/// cannot be read at all.
pub fn check(store: &dyn Store, key: &VerifierKey) -> Result<Report> {
    let mut findings = Vec::new();
    let meta = store.load_meta()?;
    let (hash, size) = match &meta {
        Some((params, size)) => {
            if params.origin != key.name() {
                findings.push(Finding::OriginMismatch { stored: params.origin.clone(), key: key.name().to_string() });
            }
            (params.hash, *size)
        }
        None => (TreeHash::Blake3, 0),
    };

    // Checkpoints first: their roots are taken during the pass over the entries.
    let checkpoints = match store.checkpoints() {
        Ok(c) => c,
        Err(e) => {
            findings.push(Finding::Unreadable { what: "checkpoints", error: e.to_string() });
            Vec::new()
        }
    };
    let mut wanted_roots: BTreeMap<u64, Option<Hash>> = BTreeMap::new();
    let mut opened = Vec::new();
    for (stored_as, note) in &checkpoints {
        match Checkpoint::open(note, key) {
            Err(e) => findings.push(Finding::CheckpointSignature { size: *stored_as, error: e.to_string() }),
            Ok(cp) => {
                if cp.size != *stored_as {
                    findings.push(Finding::CheckpointSize { stored_as: *stored_as, size: cp.size });
                }
                if cp.size > size {
                    findings.push(Finding::CheckpointBeyondSize { size: cp.size, tree_size: size });
                } else {
                    wanted_roots.insert(cp.size, None);
                    opened.push(cp);
                }
            }
        }
    }

    // One pass over the entries: leaf hashes into the compact range (roots at checkpoint sizes)
    // and into the tiles; each entry decoded for the run-index check.
    // The catalog the entries imply, built as the pass goes.
    let catalog = match store.has_catalog() {
        Ok(true) => Some(BTreeMap::new()),
        Ok(false) => None,
        Err(e) => {
            findings.push(Finding::BadCatalog { error: e.to_string() });
            None
        }
    };
    let mut pass = EntryPass {
        hash,
        range: CompactRange::new(),
        tiles: Vec::new(),
        next: 0,
        hole: false,
        kinds: Vec::with_capacity(usize::try_from(size.min(1 << 24)).unwrap_or(0)),
        completed: Vec::new(),
        findings: &mut findings,
        store,
        wanted_roots: &mut wanted_roots,
        catalog,
    };
    if let Some(root) = pass.wanted_roots.get_mut(&0) {
        *root = Some(hash.empty_root());
    }
    // A tile at a time: stores may hold a lock while they call back, so tiles are read between
    // the chunks.
    let mut start = 0;
    while start < size {
        let end = size.min(start + TILE_WIDTH);
        let scanned = store.scan_entries(start, end, &mut |i, e| {
            pass.entry(i, e);
            Ok(())
        });
        if let Err(e) = scanned {
            pass.findings.push(Finding::Unreadable { what: "entries", error: e.to_string() });
            pass.catalog = None;
            break;
        }
        pass.compare_tiles();
        start = end;
    }
    if pass.next < size {
        pass.findings.push(Finding::MissingEntries { from: pass.next, to: size });
        pass.hole = true;
        pass.catalog = None;
    }
    pass.finish_tiles(size);
    let root = pass.range.root(hash);
    let kinds = std::mem::take(&mut pass.kinds);
    let expected_catalog = pass.catalog.take();
    match store.scan_entries(size, u64::MAX, &mut |i, _| {
        findings.push(Finding::EntryBeyondSize { index: i });
        Ok(())
    }) {
        Ok(()) => {}
        Err(e) => findings.push(Finding::Unreadable { what: "entries", error: e.to_string() }),
    }

    for cp in &opened {
        if wanted_roots.get(&cp.size).copied().flatten().is_some_and(|r| r != cp.root) {
            findings.push(Finding::CheckpointRoot { size: cp.size });
        }
    }
    if size > 0 && checkpoints.is_empty() {
        findings.push(Finding::NoCheckpoint);
    }
    if meta.is_none() && (!checkpoints.is_empty() || !kinds.is_empty()) {
        findings.push(Finding::NoParameters);
    }

    let positions = check_positions(store, size, &opened, &mut findings);
    let segments = check_runs(store, size, &kinds, &mut findings);
    // A format-v4 catalog (read-only: opened for writing, it gets the rest) is checked for the
    // keys it has.
    let v4_only = !store.catalog_searchable().unwrap_or(false);
    let catalog_keys = expected_catalog.map(|mut expected| {
        if v4_only {
            expected.retain(|k, _| is_v4_key(k));
        }
        check_catalog(store, expected, v4_only, &mut findings)
    });

    // The right edge, rebuilt as the log does at open.
    match TreeBuilder::open(store, hash, size) {
        Ok(tree) if tree.root() != root => findings.push(Finding::EdgeRoot),
        Ok(_) => {}
        Err(e) => findings.push(Finding::EdgeUnbuildable { error: e.to_string() }),
    }

    Ok(Report {
        size,
        hash: meta.map(|(p, _)| p.hash),
        root,
        segments,
        checkpoints: checkpoints.len() as u64,
        positions,
        catalog_keys,
        findings,
    })
}

/// Checks the recorded source positions (`(size, position)`, one per appending message of a
/// bus log): each for a size within the tree, positions increasing with size, none beyond the
/// last position applied, and each checkpoint's stream line (`a2a-ledger/stream`) naming the
/// position recorded for its size. Returns how many were read.
fn check_positions(store: &dyn Store, tree_size: u64, checkpoints: &[Checkpoint], findings: &mut Vec<Finding>) -> u64 {
    let mut read = 0u64;
    let mut last: Option<(u64, u64)> = None;
    let scanned = store.scan_positions(&mut |size, position| {
        read += 1;
        if size == 0 || size > tree_size {
            findings.push(Finding::Position {
                size,
                what: format!("recorded for a size outside the tree (1..={tree_size})"),
            });
        }
        if let Some((s, p)) = last
            && position <= p
        {
            findings.push(Finding::Position {
                size,
                what: format!("position {position} is not after position {p}, recorded at the smaller size {s}"),
            });
        }
        last = Some((size, position));
        Ok(())
    });
    if let Err(e) = scanned {
        findings.push(Finding::Unreadable { what: "source positions", error: e.to_string() });
        return read;
    }
    if let Some((size, p)) = last {
        match store.position() {
            Ok(Some(applied)) if applied >= p => {}
            Ok(applied) => findings.push(Finding::Position {
                size,
                what: format!(
                    "position {p} is beyond the last position applied ({})",
                    applied.map_or("none".to_string(), |a| a.to_string())
                ),
            }),
            Err(e) => findings.push(Finding::Unreadable { what: "the source position", error: e.to_string() }),
        }
    }
    for cp in checkpoints {
        let Some((_, named)) = cp.stream_position() else { continue };
        match store.position_at(cp.size) {
            Ok(Some(p)) if p == named => {}
            Ok(recorded) => findings.push(Finding::Position {
                size: cp.size,
                what: format!(
                    "checkpoint {} names stream position {named}, the store recorded {}",
                    cp.size,
                    recorded.map_or("none".to_string(), |p| p.to_string())
                ),
            }),
            Err(e) => findings.push(Finding::Unreadable { what: "a source position", error: e.to_string() }),
        }
    }
    read
}

/// What the run index must say about an entry: its run (a 64-bit tag of it, not the run id),
/// seq and flags; `None` for an entry that is missing or does not decode.
type Named = Option<([u8; 8], u64, u8)>;

fn run_tag(run: &str) -> [u8; 8] {
    blake3::hash(run.as_bytes()).as_bytes()[..8].try_into().expect("8 bytes")
}

/// The pass over the entries.
struct EntryPass<'a> {
    hash: TreeHash,
    range: CompactRange,
    /// Per tile level, the row 0 of the tile being filled.
    tiles: Vec<Vec<Hash>>,
    /// The next index expected.
    next: u64,
    /// An entry was missing: the tree is not recomputed past it.
    hole: bool,
    /// Per entry, what the run index must say about it.
    kinds: Vec<Named>,
    /// Tiles completed in the current chunk, to compare with the stored ones after it.
    completed: Vec<(u8, u64, Vec<Vec<Hash>>)>,
    findings: &'a mut Vec<Finding>,
    store: &'a dyn Store,
    wanted_roots: &'a mut BTreeMap<u64, Option<Hash>>,
    /// The run catalog the entries so far imply (`None`: the store has none to check).
    catalog: Option<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl EntryPass<'_> {
    fn entry(&mut self, index: u64, bytes: &[u8]) {
        if index != self.next {
            self.findings.push(Finding::MissingEntries { from: self.next, to: index });
            self.hole = true;
            self.catalog = None;
            self.kinds.resize(usize::try_from(index).unwrap_or(usize::MAX), None);
        }
        self.next = index + 1;
        let named = match Entry::check(bytes) {
            Ok(e) => {
                if let (Some(catalog), Some(facts)) = (&mut self.catalog, EntryFacts::of(&e)) {
                    let mut ops = Vec::new();
                    facts.ops(e.run(), index, &mut ops);
                    for op in ops {
                        match op {
                            CatalogOp::Put(k, v) => catalog.insert(k, v),
                            CatalogOp::Delete(k) => catalog.remove(&k),
                        };
                    }
                }
                let kind = e.kind();
                let flags = RunRecord {
                    index: 0,
                    sealed: kind == Kind::ReceiptSealed,
                    identity: kind == Kind::IdentityRegistered,
                }
                .flags();
                Some((run_tag(e.run()), e.seq(), flags))
            }
            Err(e) => {
                self.findings.push(Finding::BadEntry { index, error: e.to_string() });
                self.catalog = None;
                None
            }
        };
        self.kinds.push(named);
        if self.hole {
            return; // the tree cannot be recomputed past a missing entry
        }
        let leaf = self.hash.leaf(bytes);
        self.range.push(self.hash, leaf, |_, _, _| {});
        self.push_node(0, leaf);
        if let Some(root) = self.wanted_roots.get_mut(&self.next) {
            *root = Some(self.range.root(self.hash));
        }
    }

    /// Adds a node of level `8t` to tile level `t`; a tile it fills is checked.
    fn push_node(&mut self, t: usize, node: Hash) {
        if self.tiles.len() <= t {
            self.tiles.push(Vec::with_capacity(TILE_WIDTH as usize));
        }
        self.tiles[t].push(node);
        if self.tiles[t].len() == TILE_WIDTH as usize {
            let row0 = std::mem::replace(&mut self.tiles[t], Vec::with_capacity(TILE_WIDTH as usize));
            // Its index: the tiles of this level completed so far, less one.
            let index = tiles_below(self.next, t) - 1;
            let rows = rows_of(self.hash, row0);
            let top = self.hash.node(&rows[7][0], &rows[7][1]);
            self.completed.push((t as u8, index, rows));
            self.push_node(t + 1, top);
        }
    }

    /// Compares the tiles completed since the last call with the stored ones.
    fn compare_tiles(&mut self) {
        for (level, index, rows) in std::mem::take(&mut self.completed) {
            self.compare_tile(level, index, &rows);
        }
    }

    fn compare_tile(&mut self, level: u8, index: u64, rows: &[Vec<Hash>]) {
        match self.store.tile(level, index) {
            Err(e) => self.findings.push(Finding::Unreadable { what: "tiles", error: e.to_string() }),
            Ok(None) => self.findings.push(Finding::MissingTile { level, index }),
            Ok(Some(stored)) => {
                let expected = encode_tile(rows);
                if stored != expected {
                    let node = (stored.len() == expected.len()).then(|| first_difference(&stored, &expected));
                    self.findings.push(Finding::TileMismatch { level, index, node });
                }
            }
        }
    }

    /// After the last entry: on each level, the tile at the edge (partial or empty) and the
    /// first tile of the level above the highest must not be stored.
    fn finish_tiles(&mut self, size: u64) {
        if self.hole {
            return; // the tiles past a missing entry were not recomputed
        }
        for t in 0..=self.tiles.len() {
            let index = tiles_below(size, t);
            let level = t as u8;
            match self.store.tile(level, index) {
                Ok(Some(_)) => self.findings.push(Finding::UnexpectedTile { level, index }),
                Ok(None) => {}
                Err(e) => self.findings.push(Finding::Unreadable { what: "tiles", error: e.to_string() }),
            }
        }
    }
}

/// Full tiles on tile level `t` of a tree of `size` leaves.
fn tiles_below(size: u64, t: usize) -> u64 {
    size.checked_shr(u32::from(TILE_HEIGHT) * (t as u32 + 1)).unwrap_or(0)
}

/// The rows of a full tile from its row 0.
fn rows_of(h: TreeHash, row0: Vec<Hash>) -> Vec<Vec<Hash>> {
    let mut rows = vec![row0];
    for r in 1..usize::from(TILE_HEIGHT) {
        let row = rows[r - 1].chunks_exact(2).map(|p| h.node(&p[0], &p[1])).collect();
        rows.push(row);
    }
    rows
}

/// The `(row, position)` of the first node where two full tiles' encodings differ.
fn first_difference(a: &[u8], b: &[u8]) -> (u8, u64) {
    let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
    let mut node = at.saturating_sub(2) as u64 / 32;
    for row in 0..TILE_HEIGHT {
        let width = TILE_WIDTH >> row;
        if node < width {
            return (row, node);
        }
        node -= width;
    }
    (0, 0)
}

/// Checks the run index against the entries' runs and seqs (`kinds`); returns the segments read.
fn check_runs(store: &dyn Store, size: u64, kinds: &[Named], findings: &mut Vec<Finding>) -> u64 {
    let mut covered = vec![false; kinds.len()];
    let mut segments = 0u64;
    // The run being walked and the seq its next segment must start at.
    let mut current: Option<(String, u64)> = None;
    let scanned = store.scan_runs(&mut |seg| {
        segments += 1;
        let expected_seq = match &current {
            Some((run, next)) if **run == *seg.run => *next,
            _ => 0,
        };
        if seg.first_seq != expected_seq {
            findings.push(Finding::RunSegments { run: seg.run.to_string(), expected_seq, first_seq: seg.first_seq });
        }
        current = Some((seg.run.to_string(), seg.end_seq().max(expected_seq)));
        let tag = run_tag(&seg.run);
        for (seq, rec) in seg.records() {
            let mismatch =
                |what: String| Finding::RunRecordMismatch { run: seg.run.to_string(), seq, index: rec.index, what };
            if rec.index >= size {
                findings.push(mismatch(format!("the tree has {size} entries")));
                continue;
            }
            let Some(named) = kinds.get(rec.index as usize) else {
                continue; // a missing entry, already reported
            };
            match named {
                None => {} // an entry that does not decode, already reported
                Some((t, s, _)) if (*t, *s) != (tag, seq) => {
                    findings.push(mismatch("the entry has another run or seq".into()));
                }
                Some((_, _, flags)) => {
                    let c = &mut covered[rec.index as usize];
                    if *c {
                        findings.push(mismatch("another record names it too".into()));
                    }
                    *c = true;
                    if *flags != rec.flags() {
                        findings.push(mismatch(format!(
                            "the record's flags are {:#04x} and the entry's kind says {flags:#04x}",
                            rec.flags()
                        )));
                    }
                }
            }
        }
        Ok(())
    });
    if let Err(e) = scanned {
        findings.push(Finding::BadRunIndex { error: e.to_string() });
        return segments;
    }
    for (index, c) in covered.iter().enumerate() {
        if !c && kinds[index].is_some() {
            findings.push(Finding::EntryNotIndexed { index: index as u64 });
        }
    }
    segments
}

/// Compares the stored run catalog with the one the entries imply; returns the keys read.
/// With `v4_only`, stored keys of other kinds (search keys an upgrade cut short left) are
/// neither read nor counted.
fn check_catalog(
    store: &dyn Store,
    mut expected: BTreeMap<Vec<u8>, Vec<u8>>,
    v4_only: bool,
    findings: &mut Vec<Finding>,
) -> u64 {
    let mut keys = 0u64;
    // Every catalog key starts with a tag byte below 0xff.
    let scanned = store.catalog_scan(&[], &[0xff], false, &mut |k, v| {
        if v4_only && !is_v4_key(k) {
            return Ok(true);
        }
        keys += 1;
        match expected.remove(k) {
            None => {
                findings.push(Finding::Catalog { key: describe_key(k), what: "stored, but no entry implies it".into() })
            }
            Some(want) if want != v => findings.push(Finding::Catalog {
                key: describe_key(k),
                what: format!("holds {}, the entries imply {}", show(v), show(&want)),
            }),
            Some(_) => {}
        }
        Ok(true)
    });
    if let Err(e) = scanned {
        findings.push(Finding::BadCatalog { error: e.to_string() });
        return keys;
    }
    for k in expected.keys() {
        findings.push(Finding::Catalog { key: describe_key(k), what: "missing".into() });
    }
    keys
}

/// A catalog value in words: a run id as text, an index as a number.
fn show(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(s) if !s.is_empty() && !s.contains(char::is_control) => format!("{s:?}"),
        _ => match <[u8; 8]>::try_from(v) {
            Ok(b) => u64::from_be_bytes(b).to_string(),
            Err(_) => hex::encode(v),
        },
    }
}
