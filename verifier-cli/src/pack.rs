//! `ledger-verify pack FILE.tar|DIR`: SPEC §6, streamed. The small files are read first, then
//! `entries.bin` goes through `ledger_core::pack::PackVerifier` in 1 MiB chunks, so memory does
//! not grow with the pack. A tar that puts `entries.bin` before the small files (any order is
//! allowed) has it spooled to a temporary file first.

use std::io::{IsTerminal as _, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use ledger_core::pack::{self, Manifest, PackReport, PackVerifier};
use ledger_core::{LogDescriptor, Policy};

use crate::trust::{Failure, pick, unchecked};

/// Largest small file (manifest, checkpoint, proof, history) read into memory.
const SMALL_LIMIT: u64 = 64 << 20;

/// What a valid pack proves, with the descriptor it was checked against.
#[derive(Debug)]
pub struct Verified {
    /// The report.
    pub report: PackReport,
    /// The trusted descriptor.
    pub log: LogDescriptor,
    /// Other files checked (history, payloads, …).
    pub others: Vec<String>,
}

/// Progress on stderr: a bar on a terminal, a line every few seconds otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    started: Instant,
    last_line: Instant,
    label: String,
}

impl Progress {
    fn new(label: String, total: u64, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {human_pos}/{human_len} entries, {per_sec}, ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_message(label.clone());
            b
        });
        let now = Instant::now();
        Progress { bar, total, started: now, last_line: now, label: if quiet { String::new() } else { label } }
    }

    fn set(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        } else if !self.label.is_empty() && self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            let secs = self.started.elapsed().as_secs_f64();
            let rate = done as f64 / secs.max(1e-9);
            let eta = (self.total.saturating_sub(done)) as f64 / rate.max(1.0);
            eprintln!(
                "{}: {done}/{} entries ({:.0}%), {:.0} entries/s, ETA {:.0}s",
                self.label,
                self.total,
                100.0 * done as f64 / self.total.max(1) as f64,
                rate,
                eta
            );
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The pack's files as they are met.
struct State<'a, 'b> {
    file: &'a Path,
    trusted: &'a [LogDescriptor],
    policy: Option<&'a Policy>,
    manifest: Option<Vec<u8>>,
    checkpoint: Option<Vec<u8>>,
    proof: Option<Vec<u8>>,
    verifier: Option<(PackVerifier, LogDescriptor)>,
    entries_done: bool,
    spooled: Option<tempfile::NamedTempFile>,
    others: Vec<(String, Vec<u8>)>,
    progress: Option<Progress>,
    quiet: bool,
    each: Option<ledger_core::pack::EachEntry<'b>>,
}

fn invalid(file: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::Invalid(format!("{}: {e}", file.display()))
}

impl State<'_, '_> {
    fn read_small(&self, name: &str, r: &mut dyn Read) -> Result<Vec<u8>, Failure> {
        let mut buf = Vec::new();
        r.take(SMALL_LIMIT + 1)
            .read_to_end(&mut buf)
            .map_err(|e| unchecked(self.file, format!("reading {name}: {e}")))?;
        if buf.len() as u64 > SMALL_LIMIT {
            return Err(invalid(self.file, format!("{name} is over {SMALL_LIMIT} bytes")));
        }
        Ok(buf)
    }

    /// Builds the verifier once the three small files are in.
    fn ready(&mut self) -> Result<bool, Failure> {
        if self.verifier.is_some() {
            return Ok(true);
        }
        let (Some(m), Some(c), Some(p)) = (&self.manifest, &self.checkpoint, &self.proof) else { return Ok(false) };
        let manifest: Manifest = serde_json::from_slice(m)
            .map_err(|e| unchecked(self.file, format!("{}: not a pack manifest: {e}", pack::MANIFEST)))?;
        let log = pick(self.trusted, &manifest.log, self.file)?.clone();
        let v = PackVerifier::new(&log, m, c, p).map_err(|e| invalid(self.file, e))?;
        // Under a trust policy the checkpoint, whose log signature PackVerifier has just checked,
        // must also carry the policy's quorum of cosignatures (SPEC §8).
        if let Some(policy) = self.policy {
            let key = log.verifier_key().map_err(|e| Failure::Unchecked(e.to_string()))?;
            let note = std::str::from_utf8(c).map_err(|e| invalid(self.file, e))?;
            policy
                .verify(note, Some(&key), crate::trust::unix_now())
                .map_err(|e| invalid(self.file, format!("{}: step witness quorum failed: {e}", pack::CHECKPOINT)))?;
        }
        let total = manifest.end - manifest.start;
        self.progress = Some(Progress::new(self.file.display().to_string(), total, self.quiet));
        self.verifier = Some((v, log));
        Ok(true)
    }

    fn entries(&mut self, r: &mut dyn Read) -> Result<(), Failure> {
        let file = self.file;
        let (v, _) = self.verifier.as_mut().expect("ready");
        let progress = self.progress.as_mut().expect("ready");
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match r.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    // A bad seal in what did arrive is a verdict; the read error is not.
                    v.check_queued().map_err(|e| invalid(file, e))?;
                    return Err(unchecked(file, format!("reading {}: {e}", pack::ENTRIES)));
                }
            };
            if n == 0 {
                break;
            }
            match &mut self.each {
                Some(each) => v.entries_bin_each(&buf[..n], &mut **each),
                None => v.entries_bin(&buf[..n]),
            }
            .map_err(|e| invalid(file, e))?;
            progress.set(v.entries_done());
        }
        // Nothing the caller checks next may be reported before a bad seal of entries.bin.
        v.check_queued().map_err(|e| invalid(file, e))?;
        self.entries_done = true;
        Ok(())
    }

    fn file(&mut self, name: &str, r: &mut dyn Read) -> Result<(), Failure> {
        match name {
            pack::MANIFEST => self.manifest = Some(self.read_small(name, r)?),
            pack::CHECKPOINT => self.checkpoint = Some(self.read_small(name, r)?),
            pack::PROOF => self.proof = Some(self.read_small(name, r)?),
            pack::ENTRIES => {
                if self.ready()? {
                    self.entries(r)?;
                } else {
                    // The small files come later: keep entries.bin on disk meanwhile (a fresh
                    // file of our own, removed when dropped).
                    let mut f = tempfile::NamedTempFile::new()
                        .map_err(|e| Failure::Unchecked(format!("a temporary file for {}: {e}", pack::ENTRIES)))?;
                    std::io::copy(r, &mut f).map_err(|e| unchecked(f.path(), e))?;
                    self.spooled = Some(f);
                }
                return Ok(());
            }
            other => {
                let bytes = self.read_small(other, r)?;
                self.others.push((other.to_string(), bytes));
            }
        }
        if self.spooled.is_some() && self.ready()? {
            let spool = self.spooled.take().expect("checked");
            let mut f = spool.reopen().map_err(|e| unchecked(spool.path(), e))?;
            self.entries(&mut f)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Verified, Failure> {
        drop(self.spooled.take());
        for (name, present) in [
            (pack::MANIFEST, self.manifest.is_some()),
            (pack::CHECKPOINT, self.checkpoint.is_some()),
            (pack::PROOF, self.proof.is_some()),
        ] {
            if !present {
                return Err(unchecked(self.file, format!("the pack has no {name}")));
            }
        }
        self.ready()?;
        if !self.entries_done {
            return Err(invalid(self.file, format!("the pack has no {}", pack::ENTRIES)));
        }
        if let Some(p) = &self.progress {
            p.finish();
        }
        let (mut v, log) = self.verifier.take().expect("ready");
        let mut history = 0;
        let mut names = Vec::new();
        for (name, bytes) in &self.others {
            v.other_file(name, bytes).map_err(|e| invalid(self.file, e))?;
            if name == pack::HISTORY {
                history = serde_json::from_slice::<Vec<serde_json::Value>>(bytes).map_or(0, |h| h.len() as u64);
            }
            names.push(name.clone());
        }
        let listed: Vec<String> = v.manifest().files.keys().cloned().collect();
        for name in listed {
            let core = [pack::CHECKPOINT, pack::PROOF, pack::ENTRIES].contains(&name.as_str());
            if !core && !names.contains(&name) {
                return Err(invalid(self.file, format!("the manifest lists {name}, which the pack does not hold")));
            }
        }
        let mut report = v.finish().map_err(|e| invalid(self.file, e))?;
        report.history = history;
        Ok(Verified { report, log, others: names })
    }
}

/// Verifies the pack at `path`: a tar file, a directory, or the URL of a tar (read as it
/// arrives, e.g. `GET /v1/pack`).
pub fn verify(
    path: &Path,
    trusted: &[LogDescriptor],
    policy: Option<&Policy>,
    quiet: bool,
    token: Option<&str>,
) -> Result<Verified, Failure> {
    verify_each(path, trusted, policy, quiet, token, None)
}

/// Like [`verify`], handing every entry that passed its own checks to `each` as it goes (the
/// pack, seal signatures included, is proven only when this returns `Ok`).
pub fn verify_each(
    path: &Path,
    trusted: &[LogDescriptor],
    policy: Option<&Policy>,
    quiet: bool,
    token: Option<&str>,
    each: Option<ledger_core::pack::EachEntry<'_>>,
) -> Result<Verified, Failure> {
    let mut st = State {
        file: path,
        trusted,
        policy,
        manifest: None,
        checkpoint: None,
        proof: None,
        verifier: None,
        entries_done: false,
        spooled: None,
        others: Vec::new(),
        progress: None,
        quiet,
        each,
    };
    let name = path.to_string_lossy();
    let url = crate::fetch::is_url(&name);
    if !url && std::fs::metadata(path).map_err(|e| unchecked(path, e))?.is_dir() {
        let mut names = Vec::new();
        walk(path, path, &mut names).map_err(|e| unchecked(path, e))?;
        // The small files first, then the entries, then the rest.
        let rank = |n: &str| match n {
            pack::MANIFEST => 0,
            pack::CHECKPOINT => 1,
            pack::PROOF => 2,
            pack::ENTRIES => 3,
            _ => 4,
        };
        names.sort_by(|a, b| (rank(a), a).cmp(&(rank(b), b)));
        for name in names {
            let full = path.join(&name);
            let mut f = std::fs::File::open(&full).map_err(|e| unchecked(&full, e))?;
            st.file(&name, &mut f)?;
        }
    } else {
        let f: Box<dyn Read> = if url {
            crate::fetch::get(&name, token)?
        } else {
            Box::new(std::fs::File::open(path).map_err(|e| unchecked(path, e))?)
        };
        let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, f));
        let entries = archive.entries().map_err(|e| unchecked(path, format!("not a tar archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| invalid(path, format!("the tar archive is damaged: {e}")))?;
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                tar::EntryType::Directory => continue,
                t => return Err(invalid(path, format!("the tar holds a {t:?} entry; a pack holds only files"))),
            }
            let name = entry.path().map_err(|e| invalid(path, format!("a tar entry has a bad name: {e}")))?;
            let name = name.to_string_lossy().trim_start_matches("./").to_string();
            if name.split('/').any(|c| c == ".." || c.is_empty()) {
                return Err(invalid(path, format!("the tar entry {name:?} leaves the pack")));
            }
            st.file(&name, &mut entry)?;
        }
    }
    st.finish()
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(root, &p, out)?;
        } else {
            out.push(p.strip_prefix(root).expect("under root").to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// The summary for people.
pub fn print(path: &Path, v: &Verified) {
    let r = &v.report;
    println!("{}: valid", path.display());
    println!("  log        {} ({})", v.log.origin, v.log.hash);
    println!(
        "  range      entries [{}, {}) — {} entries, proven against the checkpoint of size {}",
        r.start,
        r.end,
        r.end - r.start,
        r.tree_size
    );
    println!("  seals      {} verified (runs wholly inside the range)", r.seals_verified);
    println!("  open runs  {} (no seal yet in the range)", r.open_runs);
    println!("  partial    {} runs cut by the range or signed by a key registered before it", r.partial.len());
    for p in r.partial.iter().take(10) {
        println!("    {}: {}", p.run, p.reason);
    }
    if r.partial.len() > 10 {
        println!("    … and {} more (--json lists them all)", r.partial.len() - 10);
    }
    if r.history > 0 {
        println!("  history    {} earlier checkpoints consistent with this one", r.history);
    }
    println!(
        "  payloads   {} included (each checked against its name), {} named but absent, {} erased",
        r.payloads_included,
        r.payloads_absent.len(),
        r.payloads_erased.len()
    );
    for e in &r.payloads_erased {
        println!(
            "    erased {} at index {}, {}, approved by {:?}: {:?}",
            e.hash,
            e.index,
            crate::inspect::when(e.ts),
            e.approver,
            e.reason
        );
    }
    for o in v.others.iter().filter(|o| !o.starts_with(pack::PAYLOADS_DIR)) {
        println!("  file       {o} (hash checked)");
    }
}

/// The summary for machines.
pub fn json(v: &Verified) -> serde_json::Value {
    serde_json::json!({
        "verdict": "valid",
        "log": v.log,
        "report": v.report,
        "files": v.others,
    })
}
