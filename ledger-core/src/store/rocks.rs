//! The durable store on RocksDB.
//!
//! Column families: `entries` (index BE → entry bytes), `tiles` (tile level ‖ tile index BE →
//! encoded full tile; partial tiles are never written, see [`super::Edge`]), `runs` (run ‖ 0x00 ‖ first seq BE → [`RunSegment`]), `checkpoints` (tree size BE →
//! signed note), `catalog` (the run catalog, keys in [`super::catalog`]), `meta` (`hash`,
//! `origin`, `size`, `format`) and `payloads` (the payload store's keys, see `crate::payload`).
//!
//! Format v4 added the catalog, v5 its search keys. A v4, v3 (or v2) store is upgraded when it
//! is opened for writing: the catalog is built once from the stored entries, in batches of
//! [`UPGRADE_CHUNK`] entries, over whatever catalog it holds, and the format is set to v5 only
//! by the last, synced batch. A crash during the build leaves the old format with a catalog
//! partly built; the next open builds it again from the start (each operation is a function of
//! one entry, and replaying them in order over any part of the same replay gives the same
//! catalog). Opened read-only, a v3 store has no catalog ([`Store::has_catalog`] is false, and
//! `fsck` skips it) and a v4 one no search keys ([`Store::catalog_searchable`] is false: `fsck`
//! checks its v4 keys, and a search says to open the store for writing once).
//!
//! Durability: every group is one `WriteBatch`, so RocksDB applies it across column families
//! atomically on recovery. The WAL is flushed by hand (`manual_wal_flush`): [`Store::write`]
//! puts a batch in the memtable, visible to readers, and its WAL record in RocksDB's buffer in
//! this process, not yet durable; [`Store::sync`] (`FlushWAL(true)`) writes the buffer to the WAL
//! file and fsyncs it, covering every write that returned before it. [`Store::commit`] and every
//! other synced write are a write followed by that sync. The WAL is one ordered file, so what a
//! crash keeps is always a prefix of the writes; recovery stops at the first torn record
//! (`PointInTime`). RocksDB writes a WAL's buffer out before it switches to a new WAL and syncs
//! closed WALs before a memtable flush with several column families commits, so no SST file is
//! ever ahead of the durable WAL.
//!
//! Page cache: on the virtual machines this is measured on, a page the kernel has not handed
//! out recently is slow to fault in, and under full ingest the kernel's copy into new page-cache
//! pages was a large share of the server's CPU, every WAL being a new file and every obsolete one
//! deleted. WAL files are therefore recycled (`recycle_log_file_num`): RocksDB rewrites an old
//! WAL, whose pages are cached, instead of creating one; with `PointInTime` recovery a recycled
//! file's stale tail is told apart by the log number in each record.
//!
//! A WAL becomes obsolete, and so recyclable, only when every column family with data in it has
//! flushed. The `entries` memtable fills and flushes every ~64 MiB, but `runs`, `tiles` and `meta`
//! take a small share of each group and would hold every WAL until RocksDB's default bound on
//! live WAL bytes (four times the sum of all memtables: 2.5 GiB here), so in a young log every
//! WAL was a new file after all. The live WAL is therefore bounded at four `entries` memtables
//! (`max_total_wal_size`); past it RocksDB flushes the small column families of the oldest WAL,
//! which is then recycled. Over whole runs the throughput gain is within noise; what it surely
//! buys is a bounded restart: recovery replays at most ~4 memtables of WAL, not up to 2.5 GiB.
//!
//! Where the filesystem takes `O_DIRECT`, flushes and compactions bypass the page cache: a
//! memtable flush no longer leaves ~64 MiB of dirty pages for the kernel to write back while the
//! syncer fsyncs the WAL, which had made the acknowledgement p99 swing widely. Reads stay
//! buffered; the price is that a flushed block is first read from the disk, not from the page
//! cache the flush used to fill (receipts of old runs are a little slower). The block cache,
//! larger to make up for it, fills only as it is used.
//!
//! Why by hand: the log writes one group while the previous one is being synced. With RocksDB
//! writing each group's record to the file at once, those `write` calls met the concurrent fsync
//! of the same file and cost the committer a large share of the process's CPU in the kernel's
//! page-cache copy; one `write` per sync, made by the syncer just before its fsync, costs almost
//! nothing.
//!
//! The measurements behind each of these choices, with their commands, are in `BENCHMARKS.md`
//! ("Figures behind ledger-core's design choices").

use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, Direction, IteratorMode, Options,
    WriteBatch, WriteOptions,
};

use super::{CatalogOp, CatalogVisit, CommitBatch, LogParams, RunRecord, RunSegment, Store, catalog, run_key};
use crate::{Error, Result};

const CF_ENTRIES: &str = "entries";
const CF_TILES: &str = "tiles";
const CF_RUNS: &str = "runs";
const CF_CHECKPOINTS: &str = "checkpoints";
const CF_META: &str = "meta";
const CF_CATALOG: &str = "catalog";
/// Payloads (`crate::payload`): head records and 1 MiB chunks by hash. Added after format v3
/// without a format change: a v3 store simply gains the empty column family at open.
const CF_PAYLOADS: &str = "payloads";
/// v2: the run index holds segments (one per run per submission) instead of one record per entry.
/// v3: only full tiles are written (the log rebuilds the partial ones at open).
/// v4: the run catalog (column family `catalog`), built at open from a v3 store's entries.
/// v5: the catalog's search keys (`catalog::search`), built at open from a v4 store's entries.
const STORE_FORMAT: &[u8] = b"a2a-ledger/rocks/v5";
/// A v4 store is a v5 store without the catalog's search keys (see the module docs).
const STORE_FORMAT_V4: &[u8] = b"a2a-ledger/rocks/v4";
/// A v3 store is a v4 store without its catalog (see the module docs).
const STORE_FORMAT_V3: &[u8] = b"a2a-ledger/rocks/v3";
/// Entries per batch while an older store's catalog is built.
const UPGRADE_CHUNK: u64 = 4096;
/// A v2 store is a valid v3 store: its partial tiles are never read again (readers take the right
/// edge from the log's memory, and each is overwritten by its full tile). Opening one marks it v3,
/// so that a v2 build, which would look for partial tiles, refuses it.
const STORE_FORMAT_V2: &[u8] = b"a2a-ledger/rocks/v2";

/// Tuning for [`RocksStore`].
#[derive(Clone, Debug)]
pub struct RocksConfig {
    /// Shared block cache, in bytes.
    pub block_cache_bytes: usize,
    /// Memtable size per column family, in bytes.
    pub write_buffer_bytes: usize,
}

impl Default for RocksConfig {
    fn default() -> Self {
        RocksConfig { block_cache_bytes: 512 << 20, write_buffer_bytes: 64 << 20 }
    }
}

/// WAL files RocksDB keeps for reuse (see the module docs).
const RECYCLED_WALS: usize = 4;
/// Live WAL bytes, in memtables' worth (`write_buffer_bytes`), beyond which RocksDB flushes the
/// column families that hold the oldest WAL (see the module docs).
const WAL_BUFFERS: u64 = 4;

/// The page-cache settings of the module docs, for a database in directory `dir` (created if
/// missing): recycled WAL files, and flushes and compactions with direct I/O if a file in `dir`
/// takes an aligned `O_DIRECT` write (some filesystems refuse the flag, some accept it at open and
/// fail the write, and RocksDB would then fail its first flush and poison the log, so it is
/// tried first). The load benches' raw RocksDB floor uses them too.
pub fn set_io_options(opts: &mut Options, dir: &Path) {
    opts.set_recycle_log_file_num(RECYCLED_WALS);
    opts.set_use_direct_io_for_flush_and_compaction(direct_io_supported(dir));
}

fn direct_io_supported(dir: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        if std::fs::create_dir_all(dir).is_err() {
            return false;
        }
        use std::io::Write as _;
        let probe = dir.join(".direct-io-probe");
        // One block at an address, offset and length aligned to 4 KiB, which satisfies every
        // logical block size up to it (RocksDB aligns its direct writes the same way).
        const BLOCK: usize = 4096;
        let buf = vec![0u8; 2 * BLOCK];
        let at = buf.as_ptr().align_offset(BLOCK);
        let ok = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe)
            .and_then(|mut f| f.write_all(&buf[at..at + BLOCK]))
            .is_ok();
        let _ = std::fs::remove_file(&probe);
        ok
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        false
    }
}

/// The database options and column families of a store in `path`; for writing, the page-cache
/// settings too (their probe writes a file in `path`).
fn options(path: &Path, cfg: &RocksConfig, write: bool) -> (Options, Vec<ColumnFamilyDescriptor>) {
    let cache = Cache::new_lru_cache(cfg.block_cache_bytes);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&cache);
    table.set_bloom_filter(10.0, false);
    let cf_opts = |compress: bool| {
        let mut o = Options::default();
        o.set_block_based_table_factory(&table);
        o.set_write_buffer_size(cfg.write_buffer_bytes);
        // Compress only what reaches the lower levels: flushes stay cheap on the CPU that
        // ingest needs, and cold data still shrinks.
        let lz4 = if compress { DBCompressionType::Lz4 } else { DBCompressionType::None };
        let none = DBCompressionType::None;
        o.set_compression_per_level(&[none, none, lz4, lz4, lz4, lz4, lz4]);
        o
    };
    let mut opts = Options::default();
    opts.create_if_missing(write);
    opts.create_missing_column_families(write);
    opts.increase_parallelism(2);
    opts.set_max_background_jobs(2);
    // Recover to the last complete WAL record. Every acknowledged batch was synced whole
    // before its acknowledgement, so a torn record at the tail (a crash mid-write) is a batch
    // nobody was told about; `AbsoluteConsistency` would refuse to open after every such crash.
    opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::PointInTime);
    // See the module docs: WAL records reach the file in `sync` (or when the buffer fills).
    opts.set_manual_wal_flush(true);
    if write {
        set_io_options(&mut opts, path);
    }
    // See the module docs: a WAL can be recycled only once every column family with data in
    // it has flushed, and the small ones would otherwise wait for RocksDB's default bound.
    opts.set_max_total_wal_size(WAL_BUFFERS * cfg.write_buffer_bytes as u64);
    let cfs = vec![
        ColumnFamilyDescriptor::new(CF_ENTRIES, cf_opts(true)),
        ColumnFamilyDescriptor::new(CF_TILES, cf_opts(false)),
        ColumnFamilyDescriptor::new(CF_RUNS, cf_opts(true)),
        ColumnFamilyDescriptor::new(CF_CHECKPOINTS, cf_opts(false)),
        ColumnFamilyDescriptor::new(CF_META, cf_opts(false)),
        ColumnFamilyDescriptor::new(CF_CATALOG, cf_opts(true)),
        ColumnFamilyDescriptor::new(CF_PAYLOADS, cf_opts(false)),
    ];
    (opts, cfs)
}

/// A [`Store`] on an embedded RocksDB.
pub struct RocksStore {
    db: DB,
    path: PathBuf,
    nosync: WriteOptions,
    /// The catalog is built (format v4 or later); false only for a v3 store opened read-only.
    catalog: bool,
    /// The catalog has its search keys (format v5); false only for an older store opened
    /// read-only.
    searchable: bool,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore").field("path", &self.path).finish()
    }
}

fn rerr(what: &str) -> impl Fn(rocksdb::Error) -> Error + '_ {
    move |e| Error::Storage(format!("{what}: {e}"))
}

impl RocksStore {
    /// Opens or creates the store in directory `path`.
    pub fn open(path: &Path, cfg: &RocksConfig) -> Result<RocksStore> {
        let (opts, cfs) = options(path, cfg, true);
        let db = DB::open_cf_descriptors(&opts, path, cfs)
            .map_err(|e| Error::Storage(format!("opening RocksDB at {}: {e}", path.display())))?;
        let store = RocksStore {
            db,
            path: path.to_path_buf(),
            nosync: WriteOptions::default(),
            catalog: true,
            searchable: true,
        };
        match store.db.get_cf(store.cf(CF_META), b"format").map_err(rerr("reading meta"))? {
            // A v2 store is a v3 store (see STORE_FORMAT_V2), a v3 one a v4 store without its
            // catalog, and a v4 one a v5 store without the catalog's search keys.
            Some(f) if f == STORE_FORMAT_V2 || f == STORE_FORMAT_V3 => store.build_catalog(false)?,
            Some(f) if f == STORE_FORMAT_V4 => store.build_catalog(true)?,
            Some(f) if f != STORE_FORMAT => {
                return Err(Error::Corrupt(format!(
                    "{} holds store format {:?}, this build reads {:?}; no conversion exists (earlier \
                     formats come only from development builds): keep the old build for that log, or \
                     start a new log in another directory",
                    path.display(),
                    String::from_utf8_lossy(&f),
                    String::from_utf8_lossy(STORE_FORMAT)
                )));
            }
            _ => {}
        }
        Ok(store)
    }

    /// Opens the store in directory `path` for reading only (for `fsck`): nothing is written, not
    /// even RocksDB's recovery of its write-ahead log, which it replays in memory. It sees the
    /// store as it was when opened; a store that a running process writes may change under it.
    pub fn open_read_only(path: &Path, cfg: &RocksConfig) -> Result<RocksStore> {
        if !path.join("CURRENT").is_file() {
            return Err(Error::Storage(format!("{} holds no RocksDB store", path.display())));
        }
        let (opts, mut cfs) = options(path, cfg, false);
        // A store of an earlier format lacks the column families added since (and reading
        // creates none): open those it has.
        let existing = DB::list_cf(&opts, path).map_err(rerr("listing column families"))?;
        cfs.retain(|cf| existing.iter().any(|name| name == cf.name()));
        let db = DB::open_cf_descriptors_read_only(&opts, path, cfs, false)
            .map_err(|e| Error::Storage(format!("opening RocksDB at {} read-only: {e}", path.display())))?;
        let mut store = RocksStore {
            db,
            path: path.to_path_buf(),
            nosync: WriteOptions::default(),
            catalog: true,
            searchable: true,
        };
        match store.db.get_cf(store.cf(CF_META), b"format").map_err(rerr("reading meta"))? {
            Some(f) if f == STORE_FORMAT_V2 || f == STORE_FORMAT_V3 => {
                store.catalog = false;
                store.searchable = false;
                Ok(store)
            }
            Some(f) if f == STORE_FORMAT_V4 => {
                store.searchable = false;
                Ok(store)
            }
            Some(f) if f != STORE_FORMAT => Err(Error::Corrupt(format!(
                "{} holds store format {:?}, this build reads {:?}",
                path.display(),
                String::from_utf8_lossy(&f),
                String::from_utf8_lossy(STORE_FORMAT)
            ))),
            _ => Ok(store),
        }
    }

    /// The store format this build writes (`meta` key `format`), e.g. `a2a-ledger/rocks/v3`.
    pub fn format() -> &'static str {
        std::str::from_utf8(STORE_FORMAT).expect("ASCII")
    }

    /// Flushes every memtable to table files and compacts them, so that the directory holds the
    /// data in as few files as it can (for a small store checked in as test data).
    pub fn compact(&self) -> Result<()> {
        for name in [CF_ENTRIES, CF_TILES, CF_RUNS, CF_CHECKPOINTS, CF_META, CF_CATALOG, CF_PAYLOADS] {
            let Some(cf) = self.db.cf_handle(name) else { continue };
            self.db.flush_cf(cf).map_err(rerr("flushing"))?;
            self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("column families are created at open")
    }

    /// Writes `wb` and syncs the WAL (every earlier write included).
    fn write_synced(&self, wb: WriteBatch, what: &str) -> Result<()> {
        self.db.write_opt(wb, &self.nosync).map_err(rerr(what))?;
        self.db.flush_wal(true).map_err(rerr(what))
    }

    /// Builds the catalog of an older store from its entries and marks it v5 (see the module
    /// docs). A v4 store (`v4`) has its v4 keys right: only the search keys are written, so
    /// that a crash part way leaves its v4 catalog as it was (`fsck` of it read-only checks
    /// only those).
    fn build_catalog(&self, v4: bool) -> Result<()> {
        let size = self.load_meta()?.map_or(0, |(_, size)| size);
        let cf = self.cf(CF_CATALOG);
        catalog::build(self, size, UPGRADE_CHUNK, &mut |mut ops, end| {
            if v4 {
                ops.retain(|op| !catalog::is_v4_key(op.key()));
            }
            let mut wb = WriteBatch::default();
            put_catalog(&mut wb, cf, &ops);
            if end < size {
                self.db.write_opt(wb, &self.nosync).map_err(rerr("building the run catalog"))
            } else {
                // The last batch marks the store v5, once every earlier one is in the WAL before it.
                wb.put_cf(self.cf(CF_META), b"format", STORE_FORMAT);
                self.write_synced(wb, "building the run catalog")
            }
        })?;
        if size == 0 {
            let mut wb = WriteBatch::default();
            wb.put_cf(self.cf(CF_META), b"format", STORE_FORMAT);
            self.write_synced(wb, "marking an empty older store as v5")?;
        }
        Ok(())
    }

    /// The `WriteBatch` of a group.
    fn group_batch(&self, b: &CommitBatch) -> WriteBatch {
        let mut wb = WriteBatch::default();
        let (entries, runs, tiles, meta) = (self.cf(CF_ENTRIES), self.cf(CF_RUNS), self.cf(CF_TILES), self.cf(CF_META));
        if let Some(p) = &b.params {
            wb.put_cf(meta, b"format", STORE_FORMAT);
            wb.put_cf(meta, b"hash", p.hash.name());
            wb.put_cf(meta, b"origin", &p.origin);
        }
        for (i, e) in &b.entries {
            wb.put_cf(entries, be(*i), e);
        }
        for seg in &b.runs {
            wb.put_cf(runs, run_key(&seg.run, seg.first_seq), seg.value());
        }
        for (t, i, tile) in &b.tiles {
            wb.put_cf(tiles, tile_key(*t, *i), tile);
        }
        // The catalog's changes, in order, in the same atomic batch as the entries they describe.
        put_catalog(&mut wb, self.cf(CF_CATALOG), &b.catalog);
        wb.put_cf(meta, b"size", be(b.tree_size));
        if let Some(p) = b.position {
            wb.put_cf(meta, b"position", be(p));
        }
        for (size, p) in &b.positions {
            wb.put_cf(meta, position_key(*size), be(*p));
        }
        wb
    }
}

fn put_catalog(wb: &mut WriteBatch, cf: &rocksdb::ColumnFamily, ops: &[CatalogOp]) {
    for op in ops {
        match op {
            CatalogOp::Put(k, v) => wb.put_cf(cf, k, v),
            CatalogOp::Delete(k) => wb.delete_cf(cf, k),
        }
    }
}

fn be(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// The meta key recording which source position made the tree reach `size`: `pos/` and the
/// size, 8 bytes big-endian.
fn position_key(size: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(b"pos/");
    k[4..].copy_from_slice(&size.to_be_bytes());
    k
}

fn tile_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn seq_of(key: &[u8]) -> u64 {
    u64::from_be_bytes(key[key.len() - 8..].try_into().expect("run keys end in 8 bytes"))
}

impl Store for RocksStore {
    fn load_meta(&self) -> Result<Option<(LogParams, u64)>> {
        let meta = self.cf(CF_META);
        let get = |k: &[u8]| self.db.get_cf(meta, k).map_err(rerr("reading meta"));
        let (Some(hash), Some(origin)) = (get(b"hash")?, get(b"origin")?) else {
            return Ok(None);
        };
        let hash = String::from_utf8_lossy(&hash).parse()?;
        let origin = String::from_utf8(origin).map_err(|_| Error::Corrupt("origin is not UTF-8".into()))?;
        let size = match get(b"size")? {
            Some(b) => u64::from_be_bytes(b.as_slice().try_into().map_err(|_| Error::Corrupt("bad size".into()))?),
            None => 0,
        };
        Ok(Some((LogParams { hash, origin }, size)))
    }

    fn position(&self) -> Result<Option<u64>> {
        match self.db.get_cf(self.cf(CF_META), b"position").map_err(rerr("reading meta"))? {
            None => Ok(None),
            Some(b) => Ok(Some(u64::from_be_bytes(
                b.as_slice().try_into().map_err(|_| Error::Corrupt("bad source position".into()))?,
            ))),
        }
    }

    fn position_at(&self, size: u64) -> Result<Option<u64>> {
        match self.db.get_cf(self.cf(CF_META), position_key(size)).map_err(rerr("reading meta"))? {
            None => Ok(None),
            Some(b) => Ok(Some(u64::from_be_bytes(
                b.as_slice().try_into().map_err(|_| Error::Corrupt(format!("bad source position at size {size}")))?,
            ))),
        }
    }

    fn scan_positions(&self, f: &mut dyn FnMut(u64, u64) -> Result<()>) -> Result<()> {
        let mut it = self.db.raw_iterator_cf(self.cf(CF_META));
        it.seek(b"pos/");
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let Some(size) = k.strip_prefix(b"pos/") else { break };
            let corrupt = || Error::Corrupt(format!("bad source position key {}", hex::encode(k)));
            let size = u64::from_be_bytes(size.try_into().map_err(|_| corrupt())?);
            let position = u64::from_be_bytes(v.try_into().map_err(|_| corrupt())?);
            f(size, position)?;
            it.next();
        }
        it.status().map_err(rerr("reading source positions"))
    }

    fn commit(&self, b: &CommitBatch) -> Result<()> {
        self.write_synced(self.group_batch(b), "committing a batch")
    }

    fn write(&self, b: &CommitBatch) -> Result<()> {
        self.db.write_opt(self.group_batch(b), &self.nosync).map_err(rerr("writing a batch"))
    }

    fn sync(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(rerr("syncing the write-ahead log"))
    }

    fn quiesce(&self) {
        self.db.cancel_all_background_work(true);
    }

    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(CF_ENTRIES), be(index)).map_err(rerr("reading an entry"))
    }

    fn entries(&self, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        let keys: Vec<[u8; 8]> = indices.iter().map(|&i| be(i)).collect();
        let sorted = indices.is_sorted();
        self.db
            .batched_multi_get_cf(self.cf(CF_ENTRIES), keys.iter(), sorted)
            .into_iter()
            .map(|r| r.map(|v| v.map(|v| v.to_vec())).map_err(rerr("reading entries")))
            .collect()
    }

    fn scan_entries(&self, start: u64, end: u64, f: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        let from = be(start);
        for item in self.db.iterator_cf(self.cf(CF_ENTRIES), IteratorMode::From(&from, Direction::Forward)) {
            let (k, v) = item.map_err(rerr("scanning entries"))?;
            let i = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| Error::Corrupt("entry key".into()))?);
            if i >= end {
                break;
            }
            f(i, &v)?;
        }
        Ok(())
    }

    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(CF_TILES), tile_key(level, index)).map_err(rerr("reading a tile"))
    }

    fn run_record(&self, run: &str, seq: u64) -> Result<Option<RunRecord>> {
        Ok(self.segment_at_or_before(run, seq)?.and_then(|seg| seg.record(seq)))
    }

    fn run_started(&self, run: &str) -> Result<bool> {
        // A run's first segment starts at seq 0: a point lookup, answered by the bloom filter
        // for the runs that are new.
        Ok(self.db.get_pinned_cf(self.cf(CF_RUNS), run_key(run, 0)).map_err(rerr("reading the run index"))?.is_some())
    }

    fn run_last(&self, run: &str) -> Result<Option<(u64, RunRecord)>> {
        Ok(self.segment_at_or_before(run, u64::MAX)?.and_then(|seg| seg.records().next_back()))
    }

    fn run_records(&self, run: &str) -> Result<Vec<(u64, RunRecord)>> {
        let lo = run_key(run, 0);
        let prefix = &lo[..run.len() + 1];
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_RUNS), IteratorMode::From(&lo, Direction::Forward)) {
            let (k, v) = item.map_err(rerr("reading the run index"))?;
            if !(k.len() == prefix.len() + 8 && k.starts_with(prefix)) {
                break;
            }
            let seg = RunSegment::from_stored(run, seq_of(&k), &v)?;
            if out.last().is_some_and(|(seq, _): &(u64, RunRecord)| seq + 1 != seg.first_seq) {
                return Err(Error::Corrupt(format!(
                    "run {run:?} has a gap in the run index before seq {}",
                    seg.first_seq
                )));
            }
            out.extend(seg.records());
        }
        Ok(out)
    }

    fn scan_runs(&self, f: &mut dyn FnMut(RunSegment) -> Result<()>) -> Result<()> {
        for item in self.db.iterator_cf(self.cf(CF_RUNS), IteratorMode::Start) {
            let (k, v) = item.map_err(rerr("reading the run index"))?;
            let run = k
                .len()
                .checked_sub(9)
                .filter(|&n| k[n] == 0)
                .and_then(|n| std::str::from_utf8(&k[..n]).ok())
                .ok_or_else(|| Error::Corrupt(format!("run-index key {} is not run ‖ 0x00 ‖ seq", hex::encode(&k))))?;
            f(RunSegment::from_stored(run, seq_of(&k), &v)?)?;
        }
        Ok(())
    }

    fn put_checkpoint(&self, size: u64, note: &str) -> Result<()> {
        let mut wb = WriteBatch::default();
        wb.put_cf(self.cf(CF_CHECKPOINTS), be(size), note);
        self.write_synced(wb, "storing a checkpoint")
    }

    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>> {
        let mut it = self.db.iterator_cf(self.cf(CF_CHECKPOINTS), IteratorMode::End);
        it.next().map(|item| decode_checkpoint(item.map_err(rerr("reading checkpoints"))?)).transpose()
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>> {
        self.db
            .iterator_cf(self.cf(CF_CHECKPOINTS), IteratorMode::Start)
            .map(|item| decode_checkpoint(item.map_err(rerr("reading checkpoints"))?))
            .collect()
    }

    fn catalog_scan(&self, lo: &[u8], hi: &[u8], reverse: bool, f: CatalogVisit<'_>) -> Result<()> {
        if lo >= hi {
            return Ok(());
        }
        let Some(cf) = self.db.cf_handle(CF_CATALOG) else {
            return Err(Error::Storage(format!(
                "{} has no run catalog: a store of format v3 opened read-only (opening it for writing builds one)",
                self.path.display()
            )));
        };
        let mut it = self.db.raw_iterator_cf(cf);
        if reverse {
            it.seek_for_prev(hi);
            // `hi` itself is excluded.
            if it.key() == Some(hi) {
                it.prev();
            }
        } else {
            it.seek(lo);
        }
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if k < lo || k >= hi || !f(k, v)? {
                return Ok(());
            }
            if reverse { it.prev() } else { it.next() }
        }
        it.status().map_err(rerr("reading the run catalog"))
    }

    fn has_catalog(&self) -> Result<bool> {
        Ok(self.catalog)
    }

    fn catalog_searchable(&self) -> Result<bool> {
        Ok(self.searchable)
    }

    fn catalog_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(cf) = self.db.cf_handle(CF_CATALOG) else { return Ok(None) };
        self.db.get_cf(cf, key).map_err(rerr("reading the run catalog"))
    }

    fn payload_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(cf) = self.db.cf_handle(CF_PAYLOADS) else { return Ok(None) };
        self.db.get_cf(cf, key).map_err(rerr("reading a payload"))
    }

    fn payload_write(&self, puts: &[(&[u8], &[u8])], deletes: &[&[u8]]) -> Result<()> {
        // Not synced, like a group's write: the WAL is one ordered file, so this is durable at
        // the next sync and no later than any batch written after it (see the module docs).
        let cf = self.cf(CF_PAYLOADS);
        let mut wb = WriteBatch::default();
        for (k, v) in puts {
            wb.put_cf(cf, k, v);
        }
        for k in deletes {
            wb.delete_cf(cf, k);
        }
        self.db.write_opt(wb, &self.nosync).map_err(rerr("writing a payload"))
    }

    fn payload_delete_range(&self, from: &[u8], to: &[u8]) -> Result<()> {
        // A range tombstone, synced; then the range is flushed and compacted so that the bytes
        // leave the memtable and the table files, not only the reads. (The WAL files that
        // carried them are recycled or deleted as the live WAL moves on, see the module docs.)
        let cf = self.cf(CF_PAYLOADS);
        let mut wb = WriteBatch::default();
        wb.delete_range_cf(cf, from, to);
        self.write_synced(wb, "deleting a payload")?;
        self.db.flush_cf(cf).map_err(rerr("flushing payloads"))?;
        self.db.compact_range_cf(cf, Some(from), Some(to));
        Ok(())
    }

    fn payload_keys(&self, from: &[u8], to: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let Some(cf) = self.db.cf_handle(CF_PAYLOADS) else { return Ok(out) };
        for item in self.db.iterator_cf(cf, IteratorMode::From(from, Direction::Forward)) {
            let (k, _) = item.map_err(rerr("listing payloads"))?;
            if *k >= *to {
                break;
            }
            out.push(k.into_vec());
        }
        Ok(out)
    }
}

impl RocksStore {
    /// The segment of `run` holding `seq`, or else the last one before it.
    fn segment_at_or_before(&self, run: &str, seq: u64) -> Result<Option<RunSegment>> {
        let key = run_key(run, seq);
        let prefix = &key[..run.len() + 1];
        let mut it = self.db.raw_iterator_cf(self.cf(CF_RUNS));
        it.seek_for_prev(&key);
        if let (Some(k), Some(v)) = (it.key(), it.value())
            && k.len() == prefix.len() + 8
            && k.starts_with(prefix)
        {
            return RunSegment::from_stored(run, seq_of(k), v).map(Some);
        }
        it.status().map_err(rerr("reading the run index"))?;
        Ok(None)
    }
}

fn decode_checkpoint((k, v): (Box<[u8]>, Box<[u8]>)) -> Result<(u64, String)> {
    let size = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| Error::Corrupt("checkpoint key".into()))?);
    let note = String::from_utf8(v.into_vec()).map_err(|_| Error::Corrupt("checkpoint is not UTF-8".into()))?;
    Ok((size, note))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn set_format(dir: &Path, format: &[u8]) {
        let store = RocksStore::open(dir, &RocksConfig::default()).unwrap();
        let mut wb = WriteBatch::default();
        wb.put_cf(store.cf(CF_META), b"format", format);
        store.write_synced(wb, "test").unwrap();
    }

    fn format(dir: &Path) -> Vec<u8> {
        let store = RocksStore::open(dir, &RocksConfig::default()).unwrap();
        store.db.get_cf(store.cf(CF_META), b"format").unwrap().unwrap()
    }

    /// Where direct I/O works (here: ext4 and tmpfs), the probe says so and leaves nothing behind.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_direct_io_probe_writes_an_aligned_block_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let fs = dir.path().join("db");
        assert!(direct_io_supported(&fs), "O_DIRECT works on this machine's temporary directory");
        assert_eq!(std::fs::read_dir(&fs).unwrap().count(), 0, "the probe file is removed");
    }

    /// Small memtables, so that a few MB of entries go through many flushes and WAL switches.
    const SMALL: RocksConfig = RocksConfig { block_cache_bytes: 8 << 20, write_buffer_bytes: 64 << 10 };

    /// Entry `i` of [`write_group`]: 300 bytes.
    fn value(i: u64) -> Vec<u8> {
        format!("entry {i:08} ").repeat(20).into_bytes()
    }

    /// Writes and syncs entries `*next..*next + 100` as one group (the first with the log's
    /// parameters), and advances `next`.
    fn write_group(store: &RocksStore, next: &mut u64) {
        let entries = (*next..*next + 100).map(|i| (i, Bytes::from(value(i)))).collect();
        let params = (*next == 0).then(|| LogParams { hash: crate::TreeHash::Blake3, origin: "test".into() });
        store.write(&CommitBatch { entries, tree_size: *next + 100, params, ..CommitBatch::default() }).unwrap();
        store.sync().unwrap();
        *next += 100;
    }

    /// Through many memtable flushes (with direct I/O where the filesystem takes it) and recycled
    /// WAL files, every synced write is there after each reopen.
    #[test]
    fn flushes_and_recycled_wals_keep_every_write_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut next = 0u64;
        for _ in 0..4 {
            let store = RocksStore::open(dir.path(), &SMALL).unwrap();
            assert_eq!(store.load_meta().unwrap().map(|(_, size)| size).unwrap_or(0), next);
            for i in 0..next {
                assert_eq!(store.entry(i).unwrap(), Some(value(i)), "entry {i}");
            }
            for _ in 0..60 {
                write_group(&store, &mut next);
            }
        }
        let ssts = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|f| f.as_ref().unwrap().path().extension().is_some_and(|e| e == "sst"));
        assert!(ssts.count() > 1, "the memtables were flushed");
    }

    /// `meta` gets a record in every group but never fills a memtable: without a bound on the
    /// live WAL it would keep every WAL live (none recycled) until RocksDB's default bound.
    #[test]
    fn the_live_wal_stays_bounded_and_its_files_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), &SMALL).unwrap();
        let wals = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|f| f.as_ref().unwrap().path().extension().is_some_and(|e| e == "log"))
                .count()
        };
        let (mut next, mut most) = (0u64, 0);
        // 7.5 MB of entries: over a hundred memtables of `entries`, each ending a WAL.
        for _ in 0..250 {
            write_group(&store, &mut next);
            most = most.max(wals());
        }
        // Live: up to WAL_BUFFERS memtables' worth plus the current one; then the recycled ones.
        assert!(most <= WAL_BUFFERS as usize + 2 + RECYCLED_WALS, "{most} WAL files at once");
        drop(store);
        let store = RocksStore::open(dir.path(), &SMALL).unwrap();
        assert_eq!(store.load_meta().unwrap().map(|(_, size)| size), Some(next));
        assert_eq!(store.entry(next - 1).unwrap(), Some(value(next - 1)));
    }

    #[test]
    fn a_v2_store_opens_and_is_marked_current() {
        let dir = tempfile::tempdir().unwrap();
        set_format(dir.path(), STORE_FORMAT_V2);
        assert_eq!(format(dir.path()), STORE_FORMAT);
    }

    /// The catalog's scans on RocksDB: reverse with an exclusive upper bound, prefixes kept
    /// apart, deletes applied in batch order, and all of it across a reopen.
    #[test]
    fn catalog_scans_and_ops_survive_a_reopen() {
        use crate::store::{RunKey, RunRef};
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RocksStore::open(dir.path(), &SMALL).unwrap();
            let mut catalog = Vec::new();
            for i in 0..20u64 {
                let caller = if i % 2 == 0 { "ann" } else { "anna" };
                catalog.push(CatalogOp::Put(catalog::run_key(RunKey::Caller(caller), i), format!("r{i}").into_bytes()));
                catalog.push(CatalogOp::Put(catalog::open_key(&format!("r{i}")), i.to_be_bytes().to_vec()));
            }
            for i in 0..19u64 {
                catalog.push(CatalogOp::Delete(catalog::open_key(&format!("r{i}"))));
            }
            store.write(&CommitBatch { catalog, ..CommitBatch::default() }).unwrap();
            store.sync().unwrap();
        }
        let store = RocksStore::open(dir.path(), &SMALL).unwrap();
        let r = |i: u64| RunRef { run: format!("r{i}"), index: i };
        assert_eq!(store.runs_by(RunKey::Caller("ann"), None, 2).unwrap(), vec![r(18), r(16)]);
        assert_eq!(store.runs_by(RunKey::Caller("ann"), Some(16), 2).unwrap(), vec![r(14), r(12)]);
        assert_eq!(store.runs_by(RunKey::Caller("ann"), Some(1), 5).unwrap(), vec![r(0)]);
        assert_eq!(store.runs_by(RunKey::Caller("anna"), Some(u64::MAX), 1).unwrap(), vec![r(19)]);
        assert_eq!(store.count_runs_by(RunKey::Caller("ann")).unwrap(), 10);
        assert_eq!(store.count_runs_by(RunKey::Caller("an")).unwrap(), 0);
        assert_eq!(store.open_runs().unwrap(), vec![r(19)]);
    }

    #[test]
    fn other_formats_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        set_format(dir.path(), b"a2a-ledger/rocks/v1");
        let err = RocksStore::open(dir.path(), &RocksConfig::default()).unwrap_err().to_string();
        assert!(
            err.contains("\"a2a-ledger/rocks/v1\"") && err.contains("start a new log in another directory"),
            "{err}"
        );
    }
}
