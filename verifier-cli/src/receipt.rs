//! `ledger-verify receipt`: SPEC §5 against the trusted descriptors.

use std::path::Path;
use std::sync::Arc;

use ledger_core::{Error, LogDescriptor, Policy, ReceiptVerifier, VerifiedReceipt};

use crate::trust::{Failure, unchecked};

/// Verifies the receipt in `file` (a path or a URL) against the first trusted descriptor for
/// its log, and, with a trust policy, its checkpoint against the policy's witness quorum.
pub fn verify(
    file: &Path,
    trusted: &[LogDescriptor],
    policy: Option<&Policy>,
    token: Option<&str>,
) -> Result<VerifiedReceipt<'static>, Failure> {
    let name = file.to_string_lossy();
    let bytes = if crate::fetch::is_url(&name) {
        crate::fetch::get_bytes(&name, token, 64 << 20)?
    } else {
        std::fs::read(file).map_err(|e| unchecked(file, e))?
    };
    let receipt = ledger_core::Receipt::from_json(&bytes).map_err(|e| unchecked(file, e))?;
    let policy = policy.map(|p| Arc::new(p.clone()));
    let mut last = None;
    for desc in trusted {
        let verifier = match &policy {
            Some(p) => ReceiptVerifier::with_policy(desc.clone(), p.clone()),
            None => ReceiptVerifier::new(desc.clone()),
        };
        let mut verifier = verifier.map_err(|e| Failure::Unchecked(e.to_string()))?;
        match verifier.verify(&receipt) {
            Ok(v) => return Ok(v.into_owned()),
            // Try the next trusted descriptor only when this one is for another log or key.
            Err(e @ Error::WrongLog { .. }) => last = Some(e),
            Err(e) => return Err(Failure::Invalid(format!("{}: {e}", file.display()))),
        }
    }
    let e = last.ok_or_else(|| Failure::Unchecked("no --log given".into()))?;
    Err(Failure::Invalid(format!("{}: {e} (none of the {} trusted descriptors match)", file.display(), trusted.len())))
}

/// The summary for people.
pub fn print(file: &Path, v: &VerifiedReceipt<'_>) {
    println!("{}: valid", file.display());
    println!("  run        {}", v.run());
    println!("  status     {}", v.status);
    println!("  signer     {} (key registered at index {})", v.actor(), v.signer.0);
    println!("  checkpoint {} at tree size {}", v.checkpoint.origin, v.checkpoint.size);
    println!("  events");
    for (index, e) in v.views() {
        println!(
            "    {:>3}  index {:<10} {:<20} {}  {}",
            e.seq(),
            index,
            e.kind().as_str(),
            format_ts(e.ts()),
            e.actor()
        );
    }
}

/// The summary for machines.
pub fn json(v: &VerifiedReceipt<'_>) -> serde_json::Value {
    serde_json::json!({
        "verdict": "valid",
        "run": v.run(),
        "status": v.status.as_str(),
        "signer": { "actor": v.actor(), "index": v.signer.0 },
        "checkpoint": { "origin": v.checkpoint.origin, "size": v.checkpoint.size },
        "events": v.views().map(|(i, e)| serde_json::json!({
            "index": i, "seq": e.seq(), "kind": e.kind().as_str(), "ts": e.ts(), "actor": e.actor(),
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
