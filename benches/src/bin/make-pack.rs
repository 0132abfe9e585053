//! `make-pack`: a compliance pack of any size for the verifier's benchmarks, written in one
//! streaming pass (nothing is kept in memory), and the hashing floor over the same entries.
//!
//! `make-pack write --entries N --out DIR` writes `[0, N)` of a log of realistic runs (5–20
//! entries ending in a signed seal) against a checkpoint of size N, signed by a fresh log key,
//! plus `DIR.log.json` (the descriptor). `make-pack floor DIR` reads `DIR/entries.bin` and
//! computes the tree root from it, one core, BLAKE3 leaf and node hashes only: what pack
//! verification cannot beat.

use std::io::{BufWriter, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use a2a_ledger_benches::{Rng, identity_entry, realistic_run};
use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use ledger_core::pack::{self, Manifest, PackProof};
use ledger_core::{Checkpoint, CompactRange, LogDescriptor, NamedKey, TreeHash};

#[derive(Parser)]
#[command(about = "Compliance packs for the verifier's benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a pack of N entries into DIR (and DIR.log.json).
    Write {
        #[arg(long)]
        entries: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// The hashing floor: leaf and node hashes over DIR/entries.bin, one core.
    Floor { dir: PathBuf },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Write { entries, out } => write(entries, &out),
        Cmd::Floor { dir } => floor(&dir),
    }
}

fn write(n: u64, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let h = TreeHash::Blake3;
    let log_key = NamedKey::from_seed("bench.a2a-ledger.example/log", [0x31; 32])?;
    let gateway = NamedKey::from_seed("gateway", [0x42; 32])?;
    let mut range = CompactRange::new();
    let mut hasher = blake3::Hasher::new();
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out.join(pack::ENTRIES))?);
    let mut put = |e: &[u8], range: &mut CompactRange| -> Result<()> {
        let head = pack::frame_header(e);
        w.write_all(&head)?;
        w.write_all(e)?;
        hasher.update(&head);
        hasher.update(e);
        range.push(h, h.leaf(e), |_, _, _| {});
        Ok(())
    };
    put(&identity_entry(&gateway), &mut range)?;
    let mut rng = Rng::new(7);
    let mut r = 0u64;
    'outer: loop {
        for e in realistic_run(h, &format!("bench-{r}"), &gateway, &mut rng) {
            if range.size() == n {
                break 'outer;
            }
            put(&e, &mut range)?;
        }
        r += 1;
    }
    w.flush()?;
    drop(w);
    let cp = Checkpoint { origin: log_key.name().to_string(), size: n, root: range.root(h), extensions: vec![] };
    let note = cp.sign(&log_key);
    let proof = serde_json::to_vec(&PackProof { left: vec![], consistency: vec![] })?;
    let desc = LogDescriptor::new(&log_key.verifier(), h);
    let manifest =
        Manifest::new(&desc, (0, n, n), "2026-11-23T00:00:00Z".into(), note.as_bytes(), &proof, &hasher.finalize());
    std::fs::write(out.join(pack::MANIFEST), serde_json::to_vec_pretty(&manifest)?)?;
    std::fs::write(out.join(pack::CHECKPOINT), &note)?;
    std::fs::write(out.join(pack::PROOF), &proof)?;
    let mut log_json = out.as_os_str().to_owned();
    log_json.push(".log.json");
    std::fs::write(PathBuf::from(&log_json), serde_json::to_vec(&desc)?)?;
    println!("{}", serde_json::json!({ "entries": n, "runs": r, "pack": out, "log": PathBuf::from(log_json) }));
    Ok(())
}

fn floor(dir: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    std::fs::File::open(dir.join(pack::ENTRIES)).context("entries.bin")?.read_to_end(&mut bytes)?;
    let h = TreeHash::Blake3;
    let started = Instant::now();
    let mut range = CompactRange::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = u32::from_be_bytes(bytes[at..at + 4].try_into()?) as usize;
        range.push(h, h.leaf(&bytes[at + 4..at + 4 + n]), |_, _, _| {});
        at += 4 + n;
    }
    std::hint::black_box(range.root(h));
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "floor": "BLAKE3 leaf + node hashes, one core",
            "entries": range.size(),
            "mean_entry_bytes": (bytes.len() as u64 - 4 * range.size()) / range.size().max(1),
            "entries_per_s": (range.size() as f64 / secs).round(),
        })
    );
    Ok(())
}
