//! What the auditor trusts (log descriptors from `--log` files) and how a check can end.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ledger_core::{LogDescriptor, Policy};

/// Why something could not be judged valid.
#[derive(Debug)]
pub enum Failure {
    /// It is invalid: exit 1. The message names the file, the index and what was wrong.
    Invalid(String),
    /// It could not be checked at all (missing or unreadable input): exit 2.
    Unchecked(String),
}

impl Failure {
    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Invalid(_) => ExitCode::from(1),
            Failure::Unchecked(_) => ExitCode::from(2),
        }
    }

    /// `invalid` or `unchecked`.
    pub fn verdict(&self) -> &'static str {
        match self {
            Failure::Invalid(_) => "invalid",
            Failure::Unchecked(_) => "unchecked",
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Failure::Invalid(m) | Failure::Unchecked(m) => m,
        }
    }

    /// Prints the failure (as JSON with `json`) and returns the exit code.
    pub fn report(&self, json: bool) -> ExitCode {
        if json {
            println!("{}", serde_json::json!({ "verdict": self.verdict(), "error": self.message() }));
        } else {
            eprintln!("ledger-verify: {}: {}", self.verdict(), self.message());
        }
        self.exit_code()
    }
}

/// An unchecked failure about `path`.
pub fn unchecked(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::Unchecked(format!("{}: {e}", path.display()))
}

/// Loads the trusted descriptors (`--log`, several for key rotation).
pub fn load(paths: &[PathBuf]) -> Result<Vec<LogDescriptor>, Failure> {
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|e| unchecked(path, e))?;
            let desc: LogDescriptor = serde_json::from_str(&text).map_err(|e| {
                unchecked(path, format!("not a log descriptor ({{\"origin\", \"hash\", \"vkey\"}}): {e}"))
            })?;
            desc.verifier_key().map_err(|e| unchecked(path, e))?;
            Ok(desc)
        })
        .collect()
}

/// The trusted descriptor equal to `claimed`, or the failure naming both.
pub fn pick<'a>(
    trusted: &'a [LogDescriptor],
    claimed: &LogDescriptor,
    file: &Path,
) -> Result<&'a LogDescriptor, Failure> {
    trusted.iter().find(|d| *d == claimed).ok_or_else(|| {
        Failure::Invalid(format!(
            "{}: is for log {} ({}, key {}); none of the {} trusted descriptors given with --log match",
            file.display(),
            claimed.origin,
            claimed.hash,
            claimed.vkey,
            trusted.len()
        ))
    })
}

/// Loads the trust policy of `--policy` (SPEC §8, a C2SP tlog-policy file), if one was given,
/// and checks that its `log` lines, if any, list every trusted descriptor's key: the policy and
/// the descriptors must agree on which log is trusted. A malformed file names its line.
pub fn load_policy(path: Option<&Path>, trusted: &[LogDescriptor]) -> Result<Option<Policy>, Failure> {
    let Some(path) = path else { return Ok(None) };
    let bytes = std::fs::read(path).map_err(|e| unchecked(path, e))?;
    let policy = Policy::parse(&bytes).map_err(|e| unchecked(path, e))?;
    for desc in trusted {
        let key = desc.verifier_key().map_err(|e| Failure::Unchecked(e.to_string()))?;
        policy.check_log(&key).map_err(|e| unchecked(path, e))?;
    }
    Ok(Some(policy))
}

/// Seconds since the Unix epoch by the system clock: the verifier's clock of SPEC §8.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
