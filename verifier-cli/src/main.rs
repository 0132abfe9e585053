//! `ledger-verify`: what auditors run, offline, to verify a2a-ledger receipts and compliance packs
//! (SPEC §5, §6), check checkpoints for consistency, and look inside the files. It trusts only
//! the log descriptors the auditor supplies with `--log`.
//!
//! Exit codes: 0 valid, 1 invalid (the message names the file, the step or file at fault and the
//! log index), 2 could not check (missing file, unparseable input or descriptor). A reader that
//! closes our stdout early (`ledger-verify inspect FILE | head`) is not a failure: exit 0, as in
//! ripgrep.

mod export;
mod fetch;
mod inspect;
mod keys;
mod monitor;
mod pack;
mod receipt;
mod trust;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ledger_core::TreeHash;

#[derive(Parser)]
#[command(name = "ledger-verify", version, about = "Verify a2a-ledger receipts and compliance packs offline")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Verify a receipt (SPEC §5) against a trusted log descriptor.
    ///
    /// Example:
    ///   ledger-verify receipt run-42.receipt.json --log trusted-log.json
    ///   ledger-verify receipt https://ledger.example.com/runs/run-42/receipt --log trusted-log.json --token "$T"
    ///
    /// The descriptor ({"origin", "hash", "vkey"}) must come from you, not from the receipt:
    /// a receipt that names another log is invalid. Several --log files may be given (key
    /// rotation); the receipt must match one of them. With --policy, the receipt's checkpoint
    /// must also satisfy that trust policy (SPEC §8): a failure names the step `witness quorum`
    /// and the witnesses that did and did not cosign.
    Receipt {
        /// The receipt JSON file, or its URL.
        file: PathBuf,
        /// Bearer token for a URL (default: $LEDGER_TOKEN).
        #[arg(long, env = "LEDGER_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Trusted log descriptor JSON file(s).
        #[arg(long = "log", required = true)]
        logs: Vec<PathBuf>,
        /// A trust policy (C2SP tlog-policy): the checkpoint must also carry its witness quorum.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a compliance pack (SPEC §6): a .tar file or a directory.
    ///
    /// Example:
    ///   ledger-verify pack pack-0-1000000.tar --log trusted-log.json
    ///   ledger-verify pack "https://ledger.example.com/v1/pack?start=0&end=1000000" --log trusted-log.json --token "$T"
    ///
    /// Checks the manifest against the trusted log, every file's hash, the checkpoint's
    /// signature, that the entries extend the pack's left compact range to a tree consistent with
    /// the checkpoint, every entry's encoding, and every seal whose run lies wholly in the range.
    /// Runs cut by the range are reported as partial, not as failures. Streams: memory does not
    /// grow with the pack. Progress goes to stderr (a bar on a terminal, lines otherwise).
    /// Seal signatures are checked on every CPU the process may use (limit it with `taskset`);
    /// the failure reported is always the first in index order. With --policy, the pack's
    /// checkpoint must also satisfy that trust policy (SPEC §8).
    Pack {
        /// The pack: a .tar file, a directory of its files, or the URL of a tar.
        pack: PathBuf,
        /// Bearer token for a URL (default: $LEDGER_TOKEN).
        #[arg(long, env = "LEDGER_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Trusted log descriptor JSON file(s).
        #[arg(long = "log", required = true)]
        logs: Vec<PathBuf>,
        /// A trust policy (C2SP tlog-policy): the checkpoint must also carry its witness quorum.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check that checkpoint OLD is a prefix of checkpoint NEW (the log did not fork).
    ///
    /// Example:
    ///   curl -s "$LEDGER/v1/proof/consistency?from=1000&to=2000" -H "Authorization: Bearer $T" > proof.json
    ///   ledger-verify consistency cp-1000.txt cp-2000.txt --proof proof.json --log trusted-log.json
    ///
    /// Both checkpoints must verify under one trusted descriptor. A shrinking tree or a proof
    /// that fails is reported with both checkpoints as evidence.
    Consistency {
        /// The older signed checkpoint (note text).
        old: PathBuf,
        /// The newer signed checkpoint.
        new: PathBuf,
        /// The consistency proof: {"proof": [base64, …]}.
        #[arg(long)]
        proof: PathBuf,
        /// Trusted log descriptor JSON file(s).
        #[arg(long = "log", required = true)]
        logs: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Follow live logs: verify each new checkpoint against the last verified one.
    ///
    /// Example:
    ///   ledger-verify monitor https://ledger.example.com --log trusted-log.json --state monitor.json --token "$T"
    ///   ledger-verify monitor https://a.example https://b.example https://b-2.example --log a.json --log b.json --state states/
    ///
    /// Each URL's GET /v1/log must be one of the --log descriptors. Each round fetches every
    /// URL's GET /v1/checkpoint, verifies its signature, fetches the consistency proof from the
    /// last verified checkpoint of that log (GET /v1/proof/consistency, which needs an auditor
    /// token) and verifies it, then replaces the log's state file atomically. Several URLs may
    /// serve several logs (shards) and one log (replicas): the checkpoints of one log's URLs must
    /// be consistent with each other too (two roots for one size is a split view, a FORK), and
    /// a replica that lags is proven a prefix of the newest one with a proof from the URL that
    /// served it. A bad signature, a shrinking tree or a fork is an alarm: it is printed naming
    /// the log's origin and the URL, with the evidence, written to STATE.evidence-<time>.json,
    /// and the monitor stops with exit 1 after checking the other URLs of that round. An
    /// unreachable URL is reported and retried, the others carry on; with --once it makes the
    /// exit code 2 (1 if an alarm was raised too). With --policy, every checkpoint must also
    /// satisfy that trust policy (SPEC §8); one that does not is an alarm the same way.
    Monitor {
        /// The ledgers' base URLs (ledger-servers or read replicas), one or more.
        #[arg(required = true)]
        urls: Vec<String>,
        /// Trusted log descriptor JSON file(s).
        #[arg(long = "log", required = true)]
        logs: Vec<PathBuf>,
        /// A trust policy (C2SP tlog-policy): the checkpoint must also carry its witness quorum.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Where the last verified checkpoints are kept: with one URL the state file; with
        /// several a directory (created if missing) of one file per log origin, named by the
        /// origin with every byte outside [A-Za-z0-9._-] percent-encoded, plus .json.
        #[arg(long)]
        state: PathBuf,
        /// Bearer token with the auditor role (default: $LEDGER_TOKEN).
        #[arg(long, env = "LEDGER_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Seconds between rounds.
        #[arg(long, default_value_t = 10)]
        interval: u64,
        /// One round, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Export a pack's entries as SPEC §7 rows: Parquet (zstd) and/or JSON lines.
    ///
    /// Example:
    ///   ledger-verify export pack-0-1000000.tar --log trusted-log.json --parquet audit.parquet
    ///
    /// The pack is verified while it is exported, in one streaming pass; the outputs are written
    /// as OUT.partial and renamed into place only if the whole pack verifies.
    Export {
        /// The pack: a .tar file, a directory of its files, or the URL of a tar.
        pack: PathBuf,
        /// Trusted log descriptor JSON file(s).
        #[arg(long = "log", required = true)]
        logs: Vec<PathBuf>,
        /// Parquet output file.
        #[arg(long, required_unless_present = "jsonl")]
        parquet: Option<PathBuf>,
        /// JSON-lines output file (one object per entry, the same columns; attrs as an object).
        #[arg(long)]
        jsonl: Option<PathBuf>,
        /// Bearer token for a URL (default: $LEDGER_TOKEN).
        #[arg(long, env = "LEDGER_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Show what a file holds, as JSON: an entry, entries.bin, a receipt, a pack manifest, a log
    /// descriptor or a signed checkpoint. CBOR is shown as JSON, byte strings as hex.
    ///
    /// Example:
    ///   ledger-verify inspect pack/entries.bin
    Inspect {
        /// The file.
        file: PathBuf,
    },
    /// Create an Ed25519 key (log key or service identity) in a new file, mode 0600, and print
    /// its verifier key.
    ///
    /// Example:
    ///   ledger-verify keygen --name ledger.example.com/prod --out log.key --log-hash blake3
    Keygen {
        /// The key's name: a log's origin, or a service identity.
        #[arg(long)]
        name: String,
        /// Where to write the private key (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Also print the log descriptor of a log with this tree hash using the key.
        #[arg(long)]
        log_hash: Option<TreeHash>,
    },
}

/// Prints a verdict (JSON with `json`, else for people) and gives its exit code.
fn verdict<T>(
    r: Result<T, trust::Failure>,
    json: bool,
    to_json: impl FnOnce(&T) -> serde_json::Value,
    print: impl FnOnce(&T),
) -> ExitCode {
    match r {
        Ok(v) if json => {
            println!("{}", to_json(&v));
            ExitCode::SUCCESS
        }
        Ok(v) => {
            print(&v);
            ExitCode::SUCCESS
        }
        Err(f) => f.report(json),
    }
}

/// `EPIPE`: the same number on Linux, macOS and the BSDs.
const EPIPE: i32 = 32;

/// A closed stdout is success (ripgrep's rule): `println!` panics when its write fails, so the
/// panic of a write that met a broken pipe ends the process with exit code 0 and no message.
/// Every other panic is reported as before.
fn broken_pipe_is_success() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        let broken_pipe = format!("failed printing to stdout: {}", std::io::Error::from_raw_os_error(EPIPE));
        if message == Some(broken_pipe.as_str()) {
            std::process::exit(0);
        }
        report(info);
    }));
}

fn main() -> ExitCode {
    broken_pipe_is_success();
    match Cli::parse().cmd {
        Cmd::Receipt { file, token, logs, policy, json } => verdict(
            trust::load(&logs).and_then(|t| {
                let policy = trust::load_policy(policy.as_deref(), &t)?;
                receipt::verify(&file, &t, policy.as_ref(), token.as_deref())
            }),
            json,
            receipt::json,
            |v| receipt::print(&file, v),
        ),
        Cmd::Pack { pack: path, token, logs, policy, json, quiet } => verdict(
            trust::load(&logs).and_then(|t| {
                let policy = trust::load_policy(policy.as_deref(), &t)?;
                pack::verify(&path, &t, policy.as_ref(), quiet || json, token.as_deref())
            }),
            json,
            pack::json,
            |v| pack::print(&path, v),
        ),
        Cmd::Consistency { old, new, proof, logs, json } => {
            match trust::load(&logs).and_then(|t| keys::consistency(&old, &new, &proof, &t)) {
                Ok(v) => {
                    if json {
                        println!("{v}");
                    } else {
                        println!(
                            "consistent: {} (size {}) extends {} (size {})",
                            new.display(),
                            v["new_size"],
                            old.display(),
                            v["old_size"]
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(f) => f.report(json),
            }
        }
        Cmd::Monitor { urls, logs, policy, state, token, interval, once } => {
            let r = trust::load(&logs).and_then(|t| {
                let policy = trust::load_policy(policy.as_deref(), &t)?;
                let interval = std::time::Duration::from_secs(interval.max(1));
                monitor::run(&urls, &t, policy.as_ref(), &state, token.as_deref(), interval, once)
            });
            match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(f) => f.report(false),
            }
        }
        Cmd::Export { pack: path, logs, parquet, jsonl, token, quiet } => {
            let r = trust::load(&logs).and_then(|t| {
                let mut ex = export::Exporter::new(parquet.as_deref(), jsonl.as_deref())?;
                let verified = pack::verify_each(
                    &path,
                    &t,
                    None,
                    quiet,
                    token.as_deref(),
                    Some(&mut |i, _, e, leaf| ex.row(i, e, leaf)),
                );
                match verified {
                    Ok(v) => ex.commit().map(|rows| (v, rows)),
                    Err(f) => {
                        ex.abort();
                        Err(f)
                    }
                }
            });
            match r {
                Ok((v, rows)) => {
                    pack::print(&path, &v);
                    for out in parquet.iter().chain(jsonl.iter()) {
                        println!("  exported   {rows} rows to {}", out.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(f) => f.report(false),
            }
        }
        Cmd::Inspect { file } => match inspect::inspect(&file) {
            Ok(v) => {
                println!("{}", serde_json::to_string_pretty(&v).expect("serialisable"));
                ExitCode::SUCCESS
            }
            Err(f) => f.report(false),
        },
        Cmd::Keygen { name, out, log_hash } => match keys::keygen(&name, &out, log_hash) {
            Ok(v) => {
                println!("{}", serde_json::to_string_pretty(&v).expect("serialisable"));
                ExitCode::SUCCESS
            }
            Err(f) => f.report(false),
        },
    }
}
