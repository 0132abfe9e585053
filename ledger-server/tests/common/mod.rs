//! The real `ledger-server` binary on loopback, and entries to feed it.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use base64::Engine as _;
use ledger_core::entry::Protocol;
use ledger_core::seal::seal_event;
use ledger_core::{Entry, Event, LogDescriptor, NamedKey, RunId, RunStatus, TreeHash};
use ledger_wire::ledger_client::LedgerClient;

pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A running server process.
pub struct Server {
    pub child: Child,
    pub data: PathBuf,
    pub http: String,
    pub grpc: String,
    pub http_client: reqwest::Client,
}

impl Server {
    /// Starts `ledger-server --data DIR` with `extra` flags on ephemeral ports.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Self::try_start(data, extra).unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// Starts the server, or returns what it printed when it exits instead.
    pub fn try_start(data: &Path, extra: &[&str]) -> Result<Server, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ledger-server"))
            .arg("--data")
            .arg(data)
            .args(["--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning ledger-server");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let (mut http, mut grpc) = (None, None);
        let mut line = String::new();
        while http.is_none() || grpc.is_none() {
            line.clear();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                let status = child.wait().expect("wait");
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut err).ok();
                return Err(format!("exited with {status}: {err}"));
            }
            if let Some(a) = line.trim().strip_prefix("listening http ") {
                http = Some(a.to_string());
            }
            if let Some(a) = line.trim().strip_prefix("listening grpc ") {
                grpc = Some(a.to_string());
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in out.lines() {});
        Ok(Server {
            child,
            data: data.to_path_buf(),
            http: http.expect("http"),
            grpc: grpc.expect("grpc"),
            http_client: reqwest::Client::new(),
        })
    }

    /// A token from `tokens.json` (`gateway` or `auditor`).
    pub fn token(&self, who: &str) -> String {
        let t: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.data.join("tokens.json")).expect("tokens.json")).expect("json");
        t[who]["token"].as_str().expect("token").to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut r = self.http_client.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.expect("GET")
    }

    /// POSTs a batch as JSON.
    pub async fn post_json(&self, entries: &[Vec<u8>], token: &str) -> reqwest::Response {
        let body = serde_json::json!({"entries": entries.iter().map(|e| B64.encode(e)).collect::<Vec<_>>()});
        self.http_client.post(self.url("/v1/entries")).bearer_auth(token).json(&body).send().await.expect("POST")
    }

    /// POSTs a batch as a CBOR array of byte strings.
    pub async fn post_cbor(&self, entries: &[Vec<u8>], token: &str) -> reqwest::Response {
        let mut body = Vec::new();
        let mut enc = minicbor::Encoder::new(&mut body);
        enc.array(entries.len() as u64).expect("array");
        for e in entries {
            enc.bytes(e).expect("bytes");
        }
        self.post_raw(body, "application/cbor", token).await
    }

    pub async fn post_raw(&self, body: Vec<u8>, content_type: &str, token: &str) -> reqwest::Response {
        self.http_client
            .post(self.url("/v1/entries"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn descriptor(&self) -> LogDescriptor {
        self.get("/v1/log", None).await.json().await.expect("descriptor")
    }

    pub async fn tree_size(&self) -> u64 {
        let h: serde_json::Value = self.get("/healthz", None).await.json().await.expect("healthz");
        h["tree_size"].as_u64().expect("tree_size")
    }

    /// Waits until the newest checkpoint covers `size` entries.
    pub async fn wait_checkpoint(&self, size: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let h: serde_json::Value = self.get("/healthz", None).await.json().await.expect("healthz");
            if h["checkpoint_size"].as_u64().expect("checkpoint_size") >= size {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "no checkpoint covers {size} entries");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn grpc_client(&self) -> LedgerClient<tonic::transport::Channel> {
        LedgerClient::connect(self.grpc.clone()).await.expect("gRPC connect")
    }

    /// SIGTERM, then waits for a clean exit.
    /// An exit other than a clean one prints what the server wrote to stderr.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("kill");
        let status = wait_timeout(&mut self.child, Duration::from_secs(30));
        if !status.success() {
            let mut err = String::new();
            if let Some(e) = self.child.stderr.as_mut() {
                std::io::Read::read_to_string(e, &mut err).ok();
            }
            eprintln!("the server exited with {status}; its stderr:\n{err}");
        }
        status
    }

    /// SIGKILL.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` until it holds; fails the test if it does not within `limit`.
pub async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "the condition did not hold within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn wait_timeout(child: &mut Child, t: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + t;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "the server did not exit within {t:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ledger-server status --data DIR` as JSON (the server must be stopped).
pub fn status(data: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ledger-server")).args(["status", "--data"]).arg(data).output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The identity key the tests write as (bound to the default ingest token).
pub fn gateway_key() -> NamedKey {
    NamedKey::from_seed("gateway", [7; 32]).expect("key")
}

pub fn identity_entry(key: &NamedKey) -> Vec<u8> {
    Entry {
        ts: 1,
        run: RunId::identity(key.name()).expect("identity"),
        seq: 0,
        actor: key.name().into(),
        event: Event::IdentityRegistered { public_key: key.public_key() },
        grant: None,
        payload: None,
    }
    .encode()
}

/// A complete run of `n` + 3 entries by `key` for `caller`, sealed.
pub fn run(h: TreeHash, id: &str, key: &NamedKey, caller: &str, n: usize) -> Vec<Vec<u8>> {
    let run = RunId::new(id).expect("run id");
    let mut events = vec![Event::TaskAccepted {
        protocol: Protocol::Https,
        skill: "demo.echo".into(),
        caller: caller.into(),
        input_hash: *blake3::hash(id.as_bytes()).as_bytes(),
        context: None,
        parent: None,
    }];
    for i in 0..n {
        events.push(Event::SkillProgress {
            stage: format!("step-{i}"),
            pct: (i * 100 / n.max(1)) as u8,
            message: "working".into(),
        });
    }
    events.push(Event::TaskEnded { status: RunStatus::Completed, elapsed_ms: 5, artifacts: vec![], error: None });
    let mut entries: Vec<Vec<u8>> =
        events.into_iter().enumerate().map(|(seq, event)| entry(&run, seq as u64, key.name(), event)).collect();
    let seal = seal_event(h, id, &entries, RunStatus::Completed, key);
    let seq = entries.len() as u64;
    entries.push(entry(&run, seq, key.name(), seal));
    entries
}

pub fn entry(run: &RunId, seq: u64, actor: &str, event: Event) -> Vec<u8> {
    Entry { ts: 1_000 + seq as i64, run: run.clone(), seq, actor: actor.into(), event, grant: None, payload: None }
        .encode()
}

/// Runs the independent Python verifier (tests/python/a2a_verify.py) and returns its JSON and
/// exit code. The interpreter comes from `A2A_LEDGER_PYTHON`, which scripts/test sets up.
pub fn python_verify(args: &[&str]) -> (serde_json::Value, i32) {
    let python = std::env::var("A2A_LEDGER_PYTHON").unwrap_or_else(|_| {
        panic!("A2A_LEDGER_PYTHON is not set: run the suite through ./scripts/test, which creates the venv")
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/a2a_verify.py");
    let out = Command::new(python).arg(script).args(args).output().expect("running the Python verifier");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verifier printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (v, out.status.code().unwrap_or(-1))
}

/// `msg` with the bearer token in its metadata.
pub fn authorized<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

/// A server whose receipts never get a checkpoint (one interval is ten minutes), holding the
/// sealed run `held`: a receipt long poll on it waits until its `wait` ends or the server stops.
pub async fn server_with_a_run_to_wait_for(dir: &std::path::Path, extra: &[&str]) -> Server {
    let mut args = vec!["--checkpoint-interval-ms", "600000"];
    args.extend_from_slice(extra);
    let srv = Server::start(&dir.join("l"), &args);
    let ingest = srv.token("gateway");
    let key = gateway_key();
    assert_eq!(srv.post_json(&[identity_entry(&key)], &ingest).await.status(), 200);
    assert_eq!(srv.post_json(&run(TreeHash::Blake3, "held", &key, "c", 1), &ingest).await.status(), 200);
    srv
}
