//! `gateway.toml`: the gateway's configuration (identity, callers, JWT issuers, approvers,
//! push, telemetry, the listener's limits), read at start or written at the first start with one
//! API-key caller. Checking the callers' credentials is [`crate::base::auth`]'s job; this
//! module only holds and writes what the file says.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// The configuration file under the data directory.
pub const CONFIG_FILE: &str = "gateway.toml";
/// Where the first start writes the local caller's token (mode 0600).
pub const TOKENS_FILE: &str = "gateway-tokens.json";

/// The gateway's configuration (`gateway.toml`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The gateway's service identity name (actor of its entries, signer of its seals).
    #[serde(default = "default_identity")]
    pub identity: String,
    /// Accept requests without a token, as the caller `anonymous`. For local use only.
    #[serde(default)]
    pub anonymous: bool,
    /// Base URL that links (receipts, SSE, the Agent Card's interfaces) are built on; default
    /// `http://<listen address>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Tasks kept in memory for GetTask/ListTasks/SSE replay; the oldest finished ones go first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_retention: Option<usize>,
    /// Seconds an ended task is served from memory before it is read from the ledger again
    /// (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_cache_secs: Option<u64>,
    /// How long a run's workspace grant is valid, in seconds (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_ttl_secs: Option<u64>,
    /// Callers who may approve or deny scope requests and sign reviews.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Callers who may erase payloads (`POST /v1/payloads/{hash}/erase`) and read any payload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admins: Vec<String>,
    /// The embedded ledger's payload store limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payloads: Option<PayloadsConfig>,
    /// A2A extensions a client must activate (`A2A-Extensions`) for any A2A request; only
    /// extensions the gateway supports may be listed (the Agent Card marks them required).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_extensions: Vec<String>,
    /// Callers with API keys.
    #[serde(default, rename = "caller", skip_serializing_if = "Vec::is_empty")]
    pub callers: Vec<ApiKeyCaller>,
    /// JWT callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtConfig>,
    /// Push notifications (on by default, to public addresses only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushConfig>,
    /// OpenTelemetry traces (off unless an OTLP endpoint is set here or in the environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetryConfig>,
    /// The listener's limits (concurrency, load shedding, request timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerConfig>,
    /// More logs on the bus (`runtime-gateway --bus`), each with the runs it takes: sharded
    /// logs. Runs no entry takes go to the `--bus-log` log.
    #[serde(default, rename = "bus_log", skip_serializing_if = "Vec::is_empty")]
    pub bus_logs: Vec<BusLogConfig>,
}

/// `[[bus_log]]`: one more log on the bus, and the runs that go to it. A run goes to the first
/// `[[bus_log]]` (in file order) naming its agent or its caller; a pattern is a name or a prefix
/// followed by `*`. Every later entry of a run (its end, seal, reviews) follows its first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusLogConfig {
    /// The log's name on the bus (`ledger-server bus init --log NAME`).
    pub name: String,
    /// gRPC URLs of its read replicas, in order of preference.
    pub replicas: Vec<String>,
    /// Agents (the manifest's names) whose runs go to this log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    /// Callers (tenants) whose runs go to this log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callers: Vec<String>,
}

impl GatewayConfig {
    /// Checks `[[bus_log]]` against the default log's name: names unique and not the default's,
    /// replicas given, and each log taking some runs. Says which entry is wrong and why.
    pub fn check_bus_logs(&self, default_log: &str) -> Result<()> {
        let mut seen = vec![default_log];
        for (i, l) in self.bus_logs.iter().enumerate() {
            let at = format!("[[bus_log]] #{} ({:?})", i + 1, l.name);
            if seen.contains(&l.name.as_str()) {
                anyhow::bail!("{at}: log {:?} is named twice (the --bus-log log is {default_log:?})", l.name);
            }
            seen.push(&l.name);
            if l.replicas.is_empty() {
                anyhow::bail!("{at}: replicas: give the gRPC URL of one read replica of the log or more");
            }
            if l.agents.is_empty() && l.callers.is_empty() {
                anyhow::bail!("{at}: no run would go to it: give agents = [...] or callers = [...]");
            }
            if let Some(p) = l.agents.iter().chain(&l.callers).find(|p| p.is_empty() || p[..p.len() - 1].contains('*'))
            {
                anyhow::bail!("{at}: {p:?} is not a pattern: a name, or a prefix followed by one '*'");
            }
        }
        Ok(())
    }
}

fn default_identity() -> String {
    "gateway".into()
}

/// `[payloads]`: the embedded ledger's payload limits (a remote ledger-server has its own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadsConfig {
    /// Keep the bytes behind every hash the gateway records (default true). Off, the log holds
    /// the hashes only (the behaviour before SPEC 1.1) and restarted tasks show their inputs
    /// and artifacts as "not held".
    #[serde(default = "default_keep")]
    pub keep: bool,
    /// Largest payload kept, in bytes (default 64 MiB): a larger input, artifact or file is
    /// refused with a clear error.
    #[serde(default = "default_max_payload")]
    pub max_bytes: u64,
    /// Most bytes of payloads kept in all (default 8 GiB).
    #[serde(default = "default_payload_quota")]
    pub quota_bytes: u64,
}

fn default_keep() -> bool {
    true
}

fn default_max_payload() -> u64 {
    64 << 20
}

fn default_payload_quota() -> u64 {
    8 << 30
}

impl Default for PayloadsConfig {
    fn default() -> PayloadsConfig {
        PayloadsConfig { keep: true, max_bytes: default_max_payload(), quota_bytes: default_payload_quota() }
    }
}

/// A caller with an API key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCaller {
    /// The caller's name, as `task.accepted` records it.
    pub name: String,
    /// Lowercase hex SHA-256 of the key.
    pub token_sha256: String,
}

/// Accepted JWTs. The caller is the token's `sub`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// HS256: the name of the environment variable holding the shared secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs256_secret_env: Option<String>,
    /// HS256: a file holding the shared secret (trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs256_secret_file: Option<PathBuf>,
    /// EdDSA: the issuer's Ed25519 public key, base64 (32 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ed25519_public_key: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

fn default_leeway() -> u64 {
    30
}

/// `[server]` in gateway.toml: what the listener takes on at once, and how long a unary request
/// may take before it is answered `504`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Requests handled at once; one more is answered `503` with `Retry-After` at once (load
    /// shedding), never queued. A stream holds its slot only until its headers are sent.
    #[serde(default = "default_concurrency")]
    pub concurrency_limit: usize,
    /// Seconds a unary request may take until its response starts (streams, receipt and scope
    /// long-polls and MCP are not cut).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// The `Retry-After` an overloaded gateway answers with, in seconds.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
}

fn default_concurrency() -> usize {
    1024
}
fn default_request_timeout() -> u64 {
    300
}
fn default_retry_after() -> u64 {
    1
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            concurrency_limit: default_concurrency(),
            request_timeout_secs: default_request_timeout(),
            retry_after_secs: default_retry_after(),
        }
    }
}

/// `[push]` in gateway.toml.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Offer push notifications at all (the card's `capabilities.pushNotifications`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Networks webhooks may reach although they are private, loopback or link-local (for
    /// example `["127.0.0.1/32"]` for a receiver on the same host).
    #[serde(default)]
    pub allow_networks: Vec<IpNet>,
    /// Follow redirects (each target is checked like the first URL). Off by default.
    #[serde(default)]
    pub follow_redirects: bool,
    /// Attempts per event before it is given up.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Timeout of one attempt, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Wait before the first retry, in milliseconds; doubled each time up to 60 s.
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    /// Most configs one task may have.
    #[serde(default = "default_per_task")]
    pub max_configs_per_task: usize,
}

fn yes() -> bool {
    true
}
fn default_attempts() -> u32 {
    5
}
fn default_timeout() -> u64 {
    10
}
fn default_backoff() -> u64 {
    500
}
fn default_per_task() -> usize {
    10
}

impl Default for PushConfig {
    fn default() -> PushConfig {
        PushConfig {
            enabled: true,
            allow_networks: Vec::new(),
            follow_redirects: false,
            max_attempts: default_attempts(),
            timeout_secs: default_timeout(),
            backoff_ms: default_backoff(),
            max_configs_per_task: default_per_task(),
        }
    }
}

/// `[telemetry]` in gateway.toml.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL (for example `http://127.0.0.1:4318`); `/v1/traces` is
    /// added unless the URL already ends with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the spans (default `runtime-gateway`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
}

/// Lowercase hex SHA-256 of a token.
pub fn token_hash_hex(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// A fresh API key: `a2ag_` and 32 random bytes, base64url.
pub fn new_token() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    Ok(format!("a2ag_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)))
}

/// What a first start created, to tell the operator.
#[derive(Debug)]
pub struct Bootstrap {
    /// The local caller's token.
    pub token: String,
    /// Where it was written.
    pub path: PathBuf,
}

/// Where the configuration is read from: `explicit`, or [`CONFIG_FILE`] under `data`.
pub fn path(data: &Path, explicit: Option<&Path>) -> PathBuf {
    explicit.map(Path::to_path_buf).unwrap_or_else(|| data.join(CONFIG_FILE))
}

/// Reads `path`, or (when it is the default file and missing) writes a first configuration with
/// one API-key caller, `local-user`, whose token goes to [`TOKENS_FILE`] (mode 0600).
pub fn load_or_create(data: &Path, explicit: Option<&Path>) -> Result<(GatewayConfig, Option<Bootstrap>)> {
    let path = path(data, explicit);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let cfg: GatewayConfig =
                toml::from_str(&text).with_context(|| format!("gateway config {}", path.display()))?;
            Ok((cfg, None))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            let token = new_token()?;
            let cfg = GatewayConfig {
                identity: default_identity(),
                callers: vec![ApiKeyCaller { name: "local-user".into(), token_sha256: token_hash_hex(&token) }],
                ..GatewayConfig::default()
            };
            let tokens_path = data.join(TOKENS_FILE);
            let tokens = serde_json::json!({
                "note": "written once at first start; the gateway keeps only the SHA-256 of each token",
                "local-user": { "token": token },
            });
            ledger_core::keys::write_private_file(&tokens_path, serde_json::to_string_pretty(&tokens)?.as_bytes())
                .with_context(|| format!("writing {}", tokens_path.display()))?;
            let text = format!(
                "# a2a-ledger gateway configuration, written at first start.\n\
                 # Callers' API keys are stored as SHA-256 only; the first one went to {TOKENS_FILE}.\n\
                 # Add [jwt] (issuer, audience, hs256_secret_env | ed25519_public_key) for JWT callers;\n\
                 # anonymous = true accepts requests without a token (local use only).\n\n{}",
                toml::to_string_pretty(&cfg)?
            );
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            Ok((cfg, Some(Bootstrap { token, path: tokens_path })))
        }
        Err(e) => Err(e).with_context(|| format!("reading the gateway config {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(logs: &str) -> Result<()> {
        let cfg: GatewayConfig = toml::from_str(logs).unwrap();
        cfg.check_bus_logs("main")
    }

    #[test]
    fn bus_logs_are_checked_entry_by_entry() {
        let ok = "[[bus_log]]\nname = \"billing\"\nreplicas = [\"http://r\"]\nagents = [\"billing\", \"pay-*\"]\n";
        with(ok).unwrap();
        let cases = [
            (
                "[[bus_log]]\nname = \"main\"\nreplicas = [\"http://r\"]\ncallers = [\"a\"]\n",
                "log \"main\" is named twice",
            ),
            ("[[bus_log]]\nname = \"b\"\nreplicas = []\ncallers = [\"a\"]\n", "#1 (\"b\"): replicas: give"),
            ("[[bus_log]]\nname = \"b\"\nreplicas = [\"http://r\"]\n", "no run would go to it"),
            ("[[bus_log]]\nname = \"b\"\nreplicas = [\"http://r\"]\ncallers = [\"a*b\"]\n", "\"a*b\" is not a pattern"),
            (
                "[[bus_log]]\nname = \"b\"\nreplicas = [\"r\"]\ncallers = [\"a\"]\n[[bus_log]]\nname = \"b\"\nreplicas = [\"r\"]\ncallers = [\"c\"]\n",
                "#2 (\"b\"): log \"b\" is named twice",
            ),
        ];
        for (toml, want) in cases {
            let e = with(toml).unwrap_err().to_string();
            assert!(e.contains(want), "{toml}: {e}");
        }
        let e = toml::from_str::<GatewayConfig>("[[bus_log]]\nname = \"b\"\nreplica = [\"r\"]\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `replica`"), "{e}");
    }
}
