//! `ledger-verify`: verifies a2a-ledger receipts offline (SPEC §5), trusting only the log
//! descriptor the auditor supplies.
//!
//! Exit codes: 0 valid, 1 invalid (the message names the step and the log index), 2 could not
//! check (missing file, unparseable input or descriptor).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ledger_core::{Error, LogDescriptor, ReceiptVerifier, VerifiedReceipt};

#[derive(Parser)]
#[command(name = "ledger-verify", version, about = "Verify a2a-ledger receipts offline")]
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
    ///
    /// The descriptor ({"origin", "hash", "vkey"}) must come from you, not from the receipt:
    /// a receipt that names another log is invalid. Several --log files may be given (key
    /// rotation); the receipt must match one of them.
    Receipt {
        /// The receipt JSON file.
        file: PathBuf,
        /// Trusted log descriptor JSON file(s).
        #[arg(long = "log", required = true)]
        logs: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Why a receipt could not be judged valid.
enum Failure {
    /// The receipt is invalid.
    Invalid(String),
    /// It could not be checked at all.
    Unchecked(String),
}

fn main() -> ExitCode {
    let Cli { cmd: Cmd::Receipt { file, logs, json } } = Cli::parse();
    match verify_receipt(&file, &logs) {
        Ok(v) => {
            if json {
                println!("{}", summary_json(&v));
            } else {
                print_summary(&file, &v);
            }
            ExitCode::SUCCESS
        }
        Err(Failure::Invalid(msg)) => {
            report(json, "invalid", &msg);
            ExitCode::from(1)
        }
        Err(Failure::Unchecked(msg)) => {
            report(json, "unchecked", &msg);
            ExitCode::from(2)
        }
    }
}

fn report(json: bool, verdict: &str, msg: &str) {
    if json {
        println!("{}", serde_json::json!({ "verdict": verdict, "error": msg }));
    } else {
        eprintln!("ledger-verify: {verdict}: {msg}");
    }
}

fn verify_receipt(file: &PathBuf, logs: &[PathBuf]) -> Result<VerifiedReceipt, Failure> {
    let unchecked = |m: String| Failure::Unchecked(m);
    let bytes = std::fs::read(file).map_err(|e| unchecked(format!("{}: {e}", file.display())))?;
    let receipt = ledger_core::Receipt::from_json(&bytes).map_err(|e| unchecked(format!("{}: {e}", file.display())))?;
    let mut last = None;
    for path in logs {
        let text = std::fs::read_to_string(path).map_err(|e| unchecked(format!("{}: {e}", path.display())))?;
        let desc: LogDescriptor = serde_json::from_str(&text)
            .map_err(|e| unchecked(format!("{}: not a log descriptor: {e}", path.display())))?;
        let mut verifier = ReceiptVerifier::new(desc).map_err(|e| unchecked(format!("{}: {e}", path.display())))?;
        match verifier.verify(&receipt) {
            Ok(v) => return Ok(v),
            // Try the next trusted descriptor only when this one is for another log or key.
            Err(e @ Error::WrongLog { .. }) => last = Some(e),
            Err(e) => return Err(Failure::Invalid(format!("{}: {e}", file.display()))),
        }
    }
    let e = last.expect("at least one --log");
    Err(Failure::Invalid(format!("{}: {e} (none of the {} trusted descriptors match)", file.display(), logs.len())))
}

fn print_summary(file: &std::path::Path, v: &VerifiedReceipt) {
    println!("{}: valid", file.display());
    println!("  run        {}", v.run());
    println!("  status     {}", v.status);
    println!("  signer     {} (key registered at index {})", v.actor(), v.signer.0);
    println!("  checkpoint {} at tree size {}", v.checkpoint.origin, v.checkpoint.size);
    println!("  events");
    for (index, e) in &v.entries {
        println!("    {:>3}  index {:<10} {:<20} {}  {}", e.seq, index, e.kind().as_str(), format_ts(e.ts), e.actor);
    }
}

fn summary_json(v: &VerifiedReceipt) -> serde_json::Value {
    serde_json::json!({
        "verdict": "valid",
        "run": v.run(),
        "status": v.status.as_str(),
        "signer": { "actor": v.actor(), "index": v.signer.0 },
        "checkpoint": { "origin": v.checkpoint.origin, "size": v.checkpoint.size },
        "events": v.entries.iter().map(|(i, e)| serde_json::json!({
            "index": i, "seq": e.seq, "kind": e.kind().as_str(), "ts": e.ts, "actor": e.actor,
        })).collect::<Vec<_>>(),
    })
}

/// Unix nanoseconds as RFC 3339 UTC (civil-from-days, Howard Hinnant's algorithm).
fn format_ts(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem / 60 % 60, rem % 60, nanos / 1_000_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(super::format_ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::format_ts(1_767_225_600_123_000_000), "2026-01-01T00:00:00.123Z");
        assert_eq!(super::format_ts(951_782_400_000_000_000), "2000-02-29T00:00:00.000Z");
    }
}
