//! Realistic traffic for load runs: runs of 5–20 entries of about 300 bytes each, ending in a
//! seal signed by a service identity, the way a gateway records them.
//!
//! ```
//! let key = ledger_core::NamedKey::from_seed("gateway", [2; 32]).unwrap();
//! let mut rng = a2a_ledger_benches::Rng::new(7);
//! let run = a2a_ledger_benches::realistic_run(ledger_core::TreeHash::Blake3, "run-1", &key, &mut rng);
//! assert!((5..=20).contains(&run.len()));
//! ```

use ledger_core::entry::Protocol;
use ledger_core::seal::seal_event;
use ledger_core::{Entry, Event, NamedKey, RunId, RunStatus, TreeHash};

/// A small deterministic generator (xorshift64*), enough for traffic shapes.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A generator seeded from the OS.
    pub fn from_os() -> Rng {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).expect("OS randomness");
        Rng::new(u64::from_le_bytes(b))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

const T0: i64 = 1_767_225_600_000_000_000;

/// The `identity.registered` entry of `key` (seq 0 of run `id/<name>`).
pub fn identity_entry(key: &NamedKey) -> Vec<u8> {
    Entry {
        ts: T0,
        run: RunId::identity(key.name()).expect("valid identity"),
        seq: 0,
        actor: key.name().to_string(),
        event: Event::IdentityRegistered { public_key: key.public_key() },
        grant: None,
        payload: None,
    }
    .encode()
}

/// A run of 5–20 entries of about 300 bytes: accepted, working, progress, workspace I/O and
/// artifacts, completed, then the seal signed by `key`.
pub fn realistic_run(h: TreeHash, run: &str, key: &NamedKey, rng: &mut Rng) -> Vec<Vec<u8>> {
    let total = rng.range(5, 20) as usize;
    let grant = Some(format!("grant/{:016x}{:016x}/workspace-read-write", rng.next_u64(), rng.next_u64()));
    let hash = |rng: &mut Rng| *blake3::hash(&rng.next_u64().to_le_bytes()).as_bytes();
    let mut events = vec![
        Event::TaskAccepted {
            protocol: [Protocol::A2a, Protocol::Mcp, Protocol::Https][rng.range(0, 2) as usize],
            skill: "research.summarize-sources".into(),
            caller: format!("user-{:08x}@tenant-{:04}.example.com", rng.next_u64() as u32, rng.range(0, 9999)),
            input_hash: hash(rng),
            context: None,
            parent: None,
        },
        Event::TaskStatus {
            state: "working".into(),
            message: Some("the agent accepted the task and is planning".into()),
        },
    ];
    let middle = total - 4; // accepted, working, completed, seal
    for i in 0..middle {
        events.push(match i % 3 {
            0 => Event::SkillProgress {
                stage: format!("stage-{i}-collecting-sources"),
                pct: ((i + 1) * 100 / (middle + 1)) as u8,
                message:
                    "fetched, deduplicated and ranked the candidate documents; the top sources go to the summary step"
                        .into(),
            },
            1 => Event::WorkspaceRead {
                path: format!("workspace/input/source-{i:03}-document.json"),
                bytes: rng.range(100, 1 << 20),
                hash: hash(rng),
            },
            _ => Event::ArtifactAdded {
                name: format!("reports/summary-part-{i:03}-with-citations-and-sources.md"),
                media_type: "text/markdown; charset=utf-8".into(),
                bytes: rng.range(100, 1 << 16),
                hash: hash(rng),
            },
        });
    }
    events.push(Event::TaskEnded {
        status: RunStatus::Completed,
        elapsed_ms: rng.range(10, 60_000),
        artifacts: vec!["summary.md".into()],
        error: None,
    });
    let run_id = RunId::new(run).expect("valid run id");
    let mut entries: Vec<Vec<u8>> = events
        .into_iter()
        .enumerate()
        .map(|(seq, event)| {
            Entry {
                ts: T0 + seq as i64 * 7_000_000,
                run: run_id.clone(),
                seq: seq as u64,
                actor: key.name().into(),
                event,
                grant: grant.clone(),
                payload: None,
            }
            .encode()
        })
        .collect();
    let seal = seal_event(h, run, &entries, RunStatus::Completed, key);
    let seq = entries.len() as u64;
    entries.push(
        Entry {
            ts: T0 + seq as i64 * 7_000_000,
            run: run_id,
            seq,
            actor: key.name().into(),
            event: seal,
            grant: None,
            payload: None,
        }
        .encode(),
    );
    entries
}

/// A load's traffic: batches of whole runs, each run sealed by one key. Entries are shared
/// buffers, as a gateway holds them: sending a batch clones references, not bytes.
#[derive(Debug, Default)]
pub struct Batches {
    /// The batches, in sending order.
    pub batches: Vec<Vec<bytes::Bytes>>,
    /// Every run's id.
    pub runs: Vec<String>,
    /// Entries in all batches.
    pub entries: usize,
    /// Bytes of all entries.
    pub bytes: usize,
}

/// At least `entries` entries of [`realistic_run`]s sealed by `key`, `runs_per_batch` whole
/// runs a batch, run ids `<prefix>-<thread>-<n>`; generated on two threads (seals are signed),
/// each seeded from `seed` and its number, so the same arguments give the same batches.
pub fn traffic(h: TreeHash, key: &NamedKey, entries: usize, runs_per_batch: usize, seed: u64, prefix: &str) -> Batches {
    let per_thread = entries.div_ceil(2);
    /// One generator thread's batches and run ids.
    type Part = (Vec<Vec<bytes::Bytes>>, Vec<String>);
    let parts: Vec<Part> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|w| {
                s.spawn(move || {
                    let mut rng = Rng::new(seed * 1000 + w);
                    let (mut batches, mut runs, mut n, mut r) = (Vec::new(), Vec::new(), 0, 0);
                    while n < per_thread {
                        let mut batch = Vec::new();
                        for _ in 0..runs_per_batch {
                            let id = format!("{prefix}-{w}-{r}");
                            r += 1;
                            let run = realistic_run(h, &id, key, &mut rng);
                            n += run.len();
                            batch.extend(run.into_iter().map(bytes::Bytes::from));
                            runs.push(id);
                        }
                        batches.push(batch);
                    }
                    (batches, runs)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("generator")).collect()
    });
    let mut out = Batches::default();
    for (b, r) in parts {
        out.batches.extend(b);
        out.runs.extend(r);
    }
    for b in &out.batches {
        out.entries += b.len();
        out.bytes += b.iter().map(bytes::Bytes::len).sum::<usize>();
    }
    out
}

/// Latency percentiles in milliseconds (p50, p90, p99, p999, max), or null for none.
pub fn percentiles(mut v: Vec<std::time::Duration>) -> serde_json::Value {
    if v.is_empty() {
        return serde_json::Value::Null;
    }
    v.sort();
    let p = |q: f64| (v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e6).round() / 1e3;
    serde_json::json!({"p50": p(0.5), "p90": p(0.9), "p99": p(0.99), "p999": p(0.999), "max": p(1.0)})
}

/// The floor of every durable-path figure: `entries` written to a fresh RocksDB at `path` as
/// synced `WriteBatch`es of `group` entries (key = position), from one thread, nothing else.
/// It gets the ledger store's I/O settings (recycled WAL files, flushes with direct I/O where
/// the filesystem takes it), so that the floor is what RocksDB does here at its best.
/// Returns entries per second.
pub fn raw_rocksdb(path: &std::path::Path, entries: &[Vec<u8>], group: usize) -> Result<Floor, rocksdb::Error> {
    let group = group.max(1);
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.increase_parallelism(2);
    ledger_core::store::set_io_options(&mut opts, path);
    let db = rocksdb::DB::open(&opts, path)?;
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(true);
    let (started, cpu) = (std::time::Instant::now(), cpu_time("self"));
    for (c, chunk) in entries.chunks(group).enumerate() {
        let mut wb = rocksdb::WriteBatch::default();
        for (i, e) in chunk.iter().enumerate() {
            wb.put(((c * group + i) as u64).to_be_bytes(), e);
        }
        db.write_opt(wb, &wo)?;
    }
    Ok(Floor::of(entries.len(), started.elapsed(), cpu_time("self").saturating_sub(cpu)))
}

/// What a floor did: its rate, and the CPU it spent per entry (every thread of the process,
/// RocksDB's own included).
#[derive(Clone, Copy, Debug)]
pub struct Floor {
    /// Entries per second of wall-clock time.
    pub entries_per_s: f64,
    /// CPU time per entry, in microseconds.
    pub cpu_us_per_entry: f64,
}

impl Floor {
    /// The floor of `entries` done in `wall` using `cpu`.
    pub fn of(entries: usize, wall: std::time::Duration, cpu: std::time::Duration) -> Floor {
        let n = entries.max(1) as f64;
        Floor { entries_per_s: n / wall.as_secs_f64(), cpu_us_per_entry: cpu.as_secs_f64() * 1e6 / n }
    }
}

/// The work the log must do for every entry before storing it, on one thread and nothing else:
/// the strict check of SPEC §2 ([`ledger_core::Entry::check`]), the leaf hash, and the tree's
/// node hashes (one per leaf on average). The CPU-per-entry figures of the ratio targets add
/// this to the floors of the transport and of RocksDB (BENCHMARKS.md).
pub fn prepare_floor(entries: &[Vec<u8>], h: ledger_core::TreeHash) -> ledger_core::Result<Floor> {
    let (started, cpu) = (std::time::Instant::now(), cpu_time("self"));
    let mut range = ledger_core::merkle::CompactRange::new();
    for e in entries {
        ledger_core::Entry::check(e)?;
        range.push(h, h.leaf(e), |_, _, _| {});
    }
    std::hint::black_box(range.root(h));
    Ok(Floor::of(entries.len(), started.elapsed(), cpu_time("self").saturating_sub(cpu)))
}

/// CPU time (user + system, all threads) of process `pid` (`"self"` for this one), from
/// `/proc/<pid>/stat`; zero where that cannot be read (a process gone, not Linux).
pub fn cpu_time(pid: &str) -> std::time::Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces), from field 3 (state): utime is 14, stime 15.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // In USER_HZ, which the kernel exports as 100 on x86 and arm (sysconf(_SC_CLK_TCK)): 10 ms
    // steps, under 1% of a run of a few seconds on two cores.
    let hz = 100;
    let t = ticks(11) + ticks(12);
    std::time::Duration::from_secs(t / hz) + std::time::Duration::from_nanos((t % hz) * 1_000_000_000 / hz)
}
