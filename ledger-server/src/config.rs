//! The server's configuration: `DIR/server.toml` (or `--config FILE`), overridden by flags.
//!
//! Principals hold only the SHA-256 of their bearer tokens. On a first start with no
//! configuration the server writes one with an ingest token bound to the identity `gateway` and
//! an auditor token, and writes the tokens themselves once, to `DIR/tokens.json` (mode 0600).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use ledger_core::TreeHash;
use serde::{Deserialize, Serialize};

use crate::auth::{Principal, Role, token_hash_hex};
use crate::limits::{self, Limits};

/// File name of the configuration written into a data directory on first start.
pub const CONFIG_FILE: &str = "server.toml";
/// File name of the tokens written once on first start.
pub const TOKENS_FILE: &str = "tokens.json";

/// Default HTTP listener.
pub const DEFAULT_HTTP: &str = "127.0.0.1:7700";
/// Default gRPC listener.
pub const DEFAULT_GRPC: &str = "127.0.0.1:7701";
/// Default origin of a new log.
pub const DEFAULT_ORIGIN: &str = "localhost/a2a-ledger";

/// What `server.toml` holds. Every field is optional; flags override it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The log's origin (used when the log is created; a later start with another is refused).
    pub origin: Option<String>,
    /// `blake3` or `sha256` (fixed when the log is created).
    pub hash: Option<String>,
    /// Milliseconds between checkpoints while the log grows.
    pub checkpoint_interval_ms: Option<u64>,
    /// HTTP listener address.
    pub http: Option<SocketAddr>,
    /// gRPC listener address.
    pub grpc: Option<SocketAddr>,
    /// Largest request body accepted, bytes.
    pub max_body_bytes: Option<usize>,
    /// Requests in progress at once on each front end (HTTP, gRPC) before more are refused with
    /// 503 / `UNAVAILABLE` `overloaded` (default 1024).
    pub max_concurrent_requests: Option<usize>,
    /// Milliseconds a request may take until its answer starts (default 30000); streams are not
    /// cut, and receipt long polls get their wait on top.
    pub request_timeout_ms: Option<u64>,
    /// `[payloads]`: limits of the payload store and the erasure actor.
    pub payloads: Option<PayloadsConfig>,
    /// `[witnesses]`: serve only checkpoints that witnesses cosigned under a trust policy.
    pub witnesses: Option<WitnessesConfig>,
    /// Who may do what.
    #[serde(default, rename = "principal")]
    pub principals: Vec<Principal>,
}

/// `[payloads]` of `server.toml`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadsConfig {
    /// Largest payload accepted, bytes (default 64 MiB).
    pub max_bytes: Option<u64>,
    /// Most bytes all payloads may take together (default 8 GiB).
    pub quota_bytes: Option<u64>,
    /// The actor of the `payload.erased` entries the server appends (default `ledger-server`).
    pub actor: Option<String>,
}

/// `[witnesses]` of `server.toml` (SPEC §8).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessesConfig {
    /// A C2SP tlog-policy file: its `witness` lines (each with its URL) are the witnesses asked,
    /// its quorum decides when a checkpoint is served. Relative to the configuration file.
    pub policy: PathBuf,
    /// Milliseconds one round of requests to the witnesses may take (default 5000).
    pub timeout_ms: Option<u64>,
}

/// The cosigner asking the witnesses of the trust policy in `path`.
fn cosigner(path: &Path, timeout_ms: Option<u64>) -> Result<ledger_witness::cosigner::Cosigner> {
    ledger_witness::cosigner::Cosigner::from_file(path, timeout_ms.map(|ms| Duration::from_millis(ms.max(1))))
}

/// The payload settings the server runs with.
#[derive(Clone, Debug)]
pub struct PayloadSettings {
    /// Size limit and quota.
    pub limits: ledger_core::PayloadLimits,
    /// The erasure actor.
    pub actor: String,
}

impl Default for PayloadSettings {
    fn default() -> Self {
        PayloadSettings {
            limits: ledger_core::PayloadLimits::default(),
            actor: crate::payloads::DEFAULT_ERASURE_ACTOR.to_string(),
        }
    }
}

impl PayloadsConfig {
    /// The settings, defaults filled in; a bad actor name is refused.
    pub fn settings(&self) -> Result<PayloadSettings> {
        let d = PayloadSettings::default();
        let actor = self.actor.clone().unwrap_or(d.actor);
        ledger_core::RunId::identity(&actor).map_err(|e| anyhow::anyhow!("[payloads] actor: {e}"))?;
        Ok(PayloadSettings {
            limits: ledger_core::PayloadLimits {
                max_bytes: self.max_bytes.unwrap_or(d.limits.max_bytes),
                quota_bytes: self.quota_bytes.unwrap_or(d.limits.quota_bytes),
            },
            actor,
        })
    }
}

impl FileConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let cfg: FileConfig =
            toml::from_str(&text).with_context(|| format!("{}: invalid configuration", path.display()))?;
        for p in &cfg.principals {
            p.check().with_context(|| format!("{}: principal {:?}", path.display(), p.name))?;
        }
        Ok(cfg)
    }
}

/// The settings the server runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The data directory.
    pub data: PathBuf,
    /// Origin for a new log (an existing log keeps its own, and refuses another).
    pub origin: Option<String>,
    /// Tree hash requested; `None` means the existing log's, or blake3 for a new one.
    pub hash: Option<TreeHash>,
    /// Checkpoint interval.
    pub checkpoint_interval: Duration,
    /// HTTP listener.
    pub http: SocketAddr,
    /// gRPC listener.
    pub grpc: SocketAddr,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Request limits of each front end.
    pub limits: Limits,
    /// Principals.
    pub principals: Vec<Principal>,
    /// Payload limits and the erasure actor.
    pub payloads: PayloadSettings,
    /// With witnesses: the cosigner asking them; checkpoints are served once its policy holds.
    pub cosigner: Option<ledger_witness::cosigner::Cosigner>,
}

/// Flags that override the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--origin`.
    pub origin: Option<String>,
    /// `--hash`.
    pub hash: Option<TreeHash>,
    /// `--checkpoint-interval-ms`.
    pub checkpoint_interval_ms: Option<u64>,
    /// `--http`.
    pub http: Option<SocketAddr>,
    /// `--grpc`.
    pub grpc: Option<SocketAddr>,
    /// `--max-concurrent-requests`.
    pub max_concurrent_requests: Option<usize>,
    /// `--request-timeout-ms`.
    pub request_timeout_ms: Option<u64>,
    /// `--witness-policy FILE`.
    pub witness_policy: Option<PathBuf>,
    /// `--witness-timeout-ms`.
    pub witness_timeout_ms: Option<u64>,
}

/// What happened on a first start, to tell the operator.
#[derive(Debug)]
pub struct Bootstrap {
    /// Where the tokens were written.
    pub tokens: PathBuf,
    /// Where the configuration was written.
    pub config: PathBuf,
}

/// Resolves the settings for `data`: `--config FILE`, else `DIR/server.toml`, else a new
/// `DIR/server.toml` with fresh principals (returned as [`Bootstrap`]).
pub fn resolve(data: &Path, o: &Overrides) -> Result<(Settings, Option<Bootstrap>)> {
    let default_path = data.join(CONFIG_FILE);
    let (file, bootstrap) = match &o.config {
        Some(path) => (FileConfig::load(path)?, None),
        None if default_path.exists() => (FileConfig::load(&default_path)?, None),
        None => {
            std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
            let (file, b) = first_start(data, o)?;
            (file, Some(b))
        }
    };
    let hash = match (o.hash, file.hash.as_deref()) {
        (Some(h), _) => Some(h),
        (None, Some(name)) => Some(name.parse::<TreeHash>().map_err(|e| anyhow::anyhow!("configuration: {e}"))?),
        (None, None) => None,
    };
    let principals = file.principals.clone();
    let payloads = file.payloads.clone().unwrap_or_default().settings()?;
    if principals.is_empty() {
        bail!("the configuration names no principals: nobody could write to or read the log");
    }
    let config_dir = o.config.as_deref().and_then(Path::parent).unwrap_or(data).to_path_buf();
    let cosigner = match (&o.witness_policy, &file.witnesses) {
        (Some(path), w) => Some(cosigner(path, o.witness_timeout_ms.or(w.as_ref().and_then(|w| w.timeout_ms)))?),
        (None, Some(w)) => Some(cosigner(&config_dir.join(&w.policy), o.witness_timeout_ms.or(w.timeout_ms))?),
        (None, None) => None,
    };
    Ok((
        Settings {
            data: data.to_path_buf(),
            origin: o.origin.clone().or(file.origin),
            hash,
            checkpoint_interval: Duration::from_millis(
                o.checkpoint_interval_ms.or(file.checkpoint_interval_ms).unwrap_or(100).max(1),
            ),
            http: o.http.or(file.http).unwrap_or_else(|| DEFAULT_HTTP.parse().expect("valid")),
            grpc: o.grpc.or(file.grpc).unwrap_or_else(|| DEFAULT_GRPC.parse().expect("valid")),
            max_body_bytes: file.max_body_bytes.unwrap_or(16 << 20),
            limits: Limits {
                max_concurrent_requests: o
                    .max_concurrent_requests
                    .or(file.max_concurrent_requests)
                    .unwrap_or(limits::DEFAULT_MAX_CONCURRENT_REQUESTS)
                    .max(1),
                request_timeout: o
                    .request_timeout_ms
                    .or(file.request_timeout_ms)
                    .map_or(limits::DEFAULT_REQUEST_TIMEOUT, |ms| Duration::from_millis(ms.max(1))),
            },
            principals,
            payloads,
            cosigner,
        },
        bootstrap,
    ))
}

/// A fresh bearer token: `a2al_` and 32 random bytes, base64url.
pub fn new_token() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    Ok(format!("a2al_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)))
}

fn first_start(data: &Path, o: &Overrides) -> Result<(FileConfig, Bootstrap)> {
    let ingest = new_token()?;
    let auditor = new_token()?;
    let file = FileConfig {
        origin: o.origin.clone(),
        hash: o.hash.map(|h| h.to_string()),
        checkpoint_interval_ms: o.checkpoint_interval_ms,
        http: None,
        grpc: None,
        max_body_bytes: None,
        max_concurrent_requests: None,
        request_timeout_ms: None,
        payloads: None,
        witnesses: None,
        principals: vec![
            Principal {
                name: "gateway".into(),
                role: Role::Ingest,
                token_sha256: token_hash_hex(&ingest),
                identities: vec!["gateway".into()],
                callers: vec![],
            },
            Principal {
                name: "auditor".into(),
                role: Role::Auditor,
                token_sha256: token_hash_hex(&auditor),
                identities: vec![],
                callers: vec![],
            },
        ],
    };
    let tokens_path = data.join(TOKENS_FILE);
    let tokens = serde_json::json!({
        "note": "written once at first start; the server keeps only the SHA-256 of each token",
        "gateway": {"role": "ingest", "identities": ["gateway"], "token": ingest},
        "auditor": {"role": "auditor", "token": auditor},
    });
    ledger_core::keys::write_private_file(&tokens_path, serde_json::to_string_pretty(&tokens)?.as_bytes())
        .with_context(|| format!("writing {}", tokens_path.display()))?;
    let config_path = data.join(CONFIG_FILE);
    let text = format!(
        "# a2a-ledger server configuration, written at first start. Flags override it.\n\
         # Tokens are stored as their SHA-256 only; the tokens themselves went to {TOKENS_FILE}.\n\
         # Roles: ingest (appends as its identities), auditor (reads all), owner (reads the runs\n\
         # whose task.accepted caller is one of its callers), admin.\n\n{}",
        toml::to_string_pretty(&file)?
    );
    std::fs::write(&config_path, text).with_context(|| format!("writing {}", config_path.display()))?;
    Ok((file, Bootstrap { tokens: tokens_path, config: config_path }))
}
