//! Running the real `runtime-gateway` (and `ledger-server`) binaries for the integration tests.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ledger_core::{LogDescriptor, ReceiptVerifier, RunStatus, VerifiedReceipt};
use serde_json::Value;

/// A running binary, killed on drop.
pub struct Proc {
    pub child: Child,
    pub lines: Vec<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Starts `bin` and reads its stdout until a line starting with `ready` (returned in `lines`).
    pub fn start(bin: &Path, args: &[&str], ready: &str) -> Proc {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(out.read_line(&mut line).unwrap() > 0, "{} exited before {ready:?}: {lines:?}", bin.display());
            let done = line.starts_with(ready);
            lines.push(line.trim_end().to_string());
            if done {
                break;
            }
        }
        std::thread::spawn(move || for _ in out.lines() {});
        Proc { child, lines }
    }

    /// The address after `prefix` in the startup lines (`listening http 127.0.0.1:…`).
    pub fn addr(&self, prefix: &str) -> String {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {:?}", self.lines))
            .trim()
            .to_string()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().unwrap()
    }
}

/// A free loopback port (for a process that must come back on the same address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A ledger-server on fixed loopback ports, so it can be killed and started again.
pub struct Ledger {
    pub data: PathBuf,
    pub http: u16,
    pub grpc: u16,
}

impl Ledger {
    /// A ledger under `data` on two free ports.
    pub fn new(data: PathBuf) -> Ledger {
        Ledger { data, http: free_port(), grpc: free_port() }
    }

    /// Starts it (a 50 ms checkpoint interval); SIGKILLed when dropped.
    pub fn start(&self) -> Proc {
        let (http, grpc) = (format!("127.0.0.1:{}", self.http), format!("127.0.0.1:{}", self.grpc));
        Proc::start(
            &workspace_bin("ledger-server"),
            &[
                "--data",
                self.data.to_str().unwrap(),
                "--http",
                &http,
                "--grpc",
                &grpc,
                "--checkpoint-interval-ms",
                "50",
            ],
            "listening grpc",
        )
    }

    /// The token of principal `who` written at its first start (`gateway`, `auditor`).
    pub fn token(&self, who: &str) -> String {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(self.data.join("tokens.json")).unwrap()).unwrap();
        v[who]["token"].as_str().unwrap().to_string()
    }

    /// The ingest token of the gateway.
    pub fn ingest_token(&self) -> String {
        self.token("gateway")
    }

    /// An HTTP URL of the ledger.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    /// Its log descriptor.
    pub async fn descriptor(&self) -> LogDescriptor {
        reqwest::get(self.url("/v1/log")).await.unwrap().json().await.unwrap()
    }
}

/// A binary of the workspace, built beside the test executable.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(bin.exists(), "{} is missing: run the workspace tests (./scripts/test) so {name} is built", bin.display());
    bin
}

/// A gateway on an embedded ledger under `data`.
pub struct Gw {
    pub proc: Proc,
    pub base: String,
    pub token: String,
    pub data: PathBuf,
    pub http: reqwest::Client,
}

pub fn gateway(data: &Path, extra: &[&str]) -> Gw {
    let mut args = vec!["--embedded", data.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    gateway_with(data, &args)
}

pub fn gateway_with(data: &Path, args: &[&str]) -> Gw {
    let proc = Proc::start(Path::new(env!("CARGO_BIN_EXE_runtime-gateway")), args, "try:");
    let base = format!("http://{}", proc.addr("listening http "));
    let token = std::fs::read_to_string(data.join("gateway-tokens.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["local-user"]["token"].as_str().map(String::from))
        .unwrap_or_default();
    Gw { proc, base, token, data: data.to_path_buf(), http: reqwest::Client::new() }
}

impl Gw {
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    /// A JSON-RPC call; returns the whole response object.
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params });
        let r = self.post("/").header("A2A-Version", "1.0").json(&body).send().await.unwrap();
        r.json().await.unwrap()
    }

    /// POST /invoke/{skill}; returns status and body.
    pub async fn invoke(&self, skill: &str, input: Value) -> (u16, Value) {
        let r = self.post(&format!("/invoke/{skill}")).json(&input).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Follows the task's platform SSE (`GET /sse/{task}`) until an event's data satisfies `until`
    /// (that data is returned) or the stream ends (`None`: the task has ended and its seal is
    /// durable); panics if neither happens within `within`.
    pub async fn follow_sse(&self, task: &str, within: Duration, until: impl Fn(&Value) -> bool) -> Option<Value> {
        use futures_util::StreamExt as _;
        let follow = async {
            let r = self.get(&format!("/sse/{task}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "SSE of {task}");
            let mut body = r.bytes_stream();
            let mut text = String::new();
            while let Some(chunk) = body.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
                while let Some(end) = text.find("\n\n") {
                    let block: String = text.drain(..end + 2).collect();
                    let data: String = block
                        .lines()
                        .filter_map(|l| l.strip_prefix("data:"))
                        .map(|v| v.strip_prefix(' ').unwrap_or(v))
                        .collect();
                    if let Ok(v) = serde_json::from_str::<Value>(&data)
                        && until(&v)
                    {
                        return Some(v);
                    }
                }
            }
            None
        };
        tokio::time::timeout(within, follow)
            .await
            .unwrap_or_else(|_| panic!("task {task}: nothing awaited in {within:?}"))
    }

    /// The run's receipt, verified by ledger-core against the descriptor the embedded ledger wrote.
    pub async fn verified_receipt(&self, run: &str) -> VerifiedReceipt<'static> {
        let r = self.get(&format!("/runs/{run}/receipt?wait=10")).send().await.unwrap();
        assert_eq!(r.status(), 200, "receipt of {run}: {}", r.text().await.unwrap());
        let bytes = r.bytes().await.unwrap();
        verify(&self.data.join("log.json"), &bytes)
    }
}

/// Verifies receipt JSON against a descriptor file, with ledger-core and with the independent
/// Python verifier written from SPEC alone (`tests/python/a2a_verify.py`); both must agree.
pub fn verify(descriptor: &Path, receipt: &[u8]) -> VerifiedReceipt<'static> {
    let desc: LogDescriptor = serde_json::from_str(&std::fs::read_to_string(descriptor).unwrap()).unwrap();
    let v = ReceiptVerifier::new(desc).unwrap().verify_json(receipt).unwrap();
    let python = std::env::var("A2A_LEDGER_PYTHON")
        .unwrap_or_else(|_| panic!("A2A_LEDGER_PYTHON is not set: run the suite through ./scripts/test"));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), receipt).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/a2a_verify.py");
    let out =
        Command::new(python).arg(script).arg("receipt").arg(file.path()).arg("--log").arg(descriptor).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python verifier refuses the receipt: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(py["status"], v.status.to_string(), "{stdout}");
    assert_eq!(py["events"].as_u64(), Some(v.views().len() as u64 - 1), "{stdout}");
    v
}

/// The kinds of a verified receipt's entries, in order.
pub fn kinds(v: &VerifiedReceipt<'_>) -> Vec<String> {
    v.views().map(|(_, e)| e.kind().as_str().to_string()).collect()
}

/// Asserts a receipt's status and kinds.
pub fn assert_run(v: &VerifiedReceipt<'_>, status: RunStatus, expected: &[&str]) {
    assert_eq!(v.status, status);
    assert_eq!(kinds(v), expected, "kinds of run {}", v.run());
}

/// Polls `check` until it gives a value, pausing `every` between tries; panics naming `what` when
/// `within` has passed.
pub async fn poll<T, F, Fut>(what: &str, within: Duration, every: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(every).await;
    }
}

/// Reads an SSE response: each event's (id, event, data).
pub async fn sse_events(r: reqwest::Response) -> Vec<(Option<String>, Option<String>, Value)> {
    let text = tokio::time::timeout(Duration::from_secs(30), r.text()).await.expect("the stream ends").unwrap();
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let (mut id, mut event, mut data) = (None, None, String::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("event:") {
                event = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if !data.is_empty() {
            out.push((id, event, serde_json::from_str(&data).unwrap()));
        }
    }
    out
}
