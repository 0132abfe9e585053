//! `ledger-verify monitor` against a real `ledger-server` that is made to present a forked
//! checkpoint: the log key is copied into a second data directory that gets other entries.
//!
//! Needs the `ledger-server` binary, which `cargo test --workspace` (scripts/test) builds beside
//! this test's own binaries.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ledger_core::seal::seal_event;
use ledger_core::{Entry, Event, NamedKey, Protocol, RunId, RunStatus, TreeHash};

fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("ledger-server");
    assert!(
        bin.exists(),
        "{} is missing: run the workspace tests (./scripts/test) so ledger-server is built",
        bin.display()
    );
    bin
}

struct Server {
    child: Child,
    http: String,
    data: PathBuf,
}

impl Server {
    fn start(data: &Path) -> Server {
        let mut child = Command::new(server_binary())
            .args(["--data"])
            .arg(data)
            .args(["--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--checkpoint-interval-ms", "20"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let http = loop {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "ledger-server exited");
            if let Some(a) = line.trim().strip_prefix("listening http ") {
                break a.to_string();
            }
        };
        std::thread::spawn(move || for _ in out.lines() {});
        Server { child, http, data: data.to_path_buf() }
    }

    fn token(&self, who: &str) -> String {
        let t: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.data.join("tokens.json")).unwrap()).unwrap();
        t[who]["token"].as_str().unwrap().to_string()
    }

    fn append(&self, entries: &[Vec<u8>]) {
        let body = serde_json::json!({
            "entries": entries.iter().map(|e| base64::engine::general_purpose::STANDARD.encode(e)).collect::<Vec<_>>()
        });
        let resp = ureq::post(&format!("{}/v1/entries", self.http))
            .header("Authorization", &format!("Bearer {}", self.token("gateway")))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .unwrap();
        assert_eq!(resp.status(), 200);
        // Wait until a checkpoint covers it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let h: serde_json::Value = serde_json::from_str(
                &ureq::get(&format!("{}/healthz", self.http)).call().unwrap().into_body().read_to_string().unwrap(),
            )
            .unwrap();
            if h["checkpoint_size"] == h["tree_size"] {
                return;
            }
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn descriptor(&self) -> String {
        ureq::get(&format!("{}/v1/log", self.http)).call().unwrap().into_body().read_to_string().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn entry(run: &RunId, seq: u64, event: Event) -> Vec<u8> {
    Entry { ts: 7, run: run.clone(), seq, actor: "gateway".into(), event, grant: None, payload: None }.encode()
}

fn sealed(id: &str, key: &NamedKey) -> Vec<Vec<u8>> {
    let run = RunId::new(id).unwrap();
    let mut e = vec![
        entry(
            &run,
            0,
            Event::TaskAccepted {
                protocol: Protocol::Https,
                skill: "s".into(),
                caller: "c".into(),
                input_hash: [1; 32],
                context: None,
                parent: None,
            },
        ),
        entry(
            &run,
            1,
            Event::TaskEnded { status: RunStatus::Completed, elapsed_ms: 1, artifacts: vec![], error: None },
        ),
    ];
    let seal = seal_event(TreeHash::Blake3, id, &e, RunStatus::Completed, key);
    e.push(entry(&run, 2, seal));
    e
}

fn identity(key: &NamedKey) -> Vec<u8> {
    entry(&RunId::identity("gateway").unwrap(), 0, Event::IdentityRegistered { public_key: key.public_key() })
}

fn monitor(srv: &Server, log: &Path, state: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ledger-verify"))
        .args(["monitor", &srv.http, "--once", "--log"])
        .arg(log)
        .arg("--state")
        .arg(state)
        .args(["--token", &srv.token("auditor")])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn monitor_follows_the_log_and_catches_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let key = NamedKey::from_seed("gateway", [8; 32]).unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let state = dir.path().join("monitor.json");
    let log = dir.path().join("log.json");

    let a = Server::start(&a_dir);
    std::fs::write(&log, a.descriptor()).unwrap();
    a.append(&[identity(&key)]);
    a.append(&sealed("r1", &key));
    let (code, out, err) = monitor(&a, &log, &state);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("checkpoint 4 verified"), "{out}");
    a.append(&sealed("r2", &key));
    let (code, out, err) = monitor(&a, &log, &state);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("checkpoint 7 verified, consistent with 4"), "{out}");

    // Receipts and packs straight from the server's URLs.
    let verify = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ledger-verify"))
            .args(args)
            .arg("--log")
            .arg(&log)
            .env("LEDGER_TOKEN", a.token("auditor"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = verify(&["receipt", &format!("{}/runs/r2/receipt", a.http)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("run        r2"), "{out}");
    let (code, out, err) = verify(&["pack", &format!("{}/v1/pack", a.http)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("seals      2 verified"), "{out}");
    let (code, _, err) = verify(&["receipt", &format!("{}/runs/nope/receipt", a.http)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("HTTP 404") && err.contains("unknown run"), "{err}");
    drop(a);

    // The same log key, other entries: the server now presents a different history.
    std::fs::create_dir_all(&b_dir).unwrap();
    std::fs::copy(a_dir.join("log.key"), b_dir.join("log.key")).unwrap();
    let b = Server::start(&b_dir);
    assert_eq!(b.descriptor(), std::fs::read_to_string(&log).unwrap());
    b.append(&[identity(&key)]);
    b.append(&sealed("other-1", &key));
    let (code, _, err) = monitor(&b, &log, &state);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("SHRINKING TREE") && err.contains("from 7 to 4"), "{err}");
    b.append(&sealed("other-2", &key));
    b.append(&sealed("other-3", &key));
    let (code, _, err) = monitor(&b, &log, &state);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("FORK") && err.contains("not an extension of the verified checkpoint 7"), "{err}");
    // Two failures, two evidence files: nothing is overwritten.
    let mut found: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("monitor.json.evidence-"))
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    found.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let evidence: serde_json::Value = serde_json::from_slice(&std::fs::read(found.last().unwrap()).unwrap()).unwrap();
    assert_eq!(evidence["what"], "FORK");
    assert!(evidence["evidence"]["previous"].as_str().unwrap().contains("\n7\n"));
    assert!(evidence["evidence"]["current"].as_str().unwrap().contains("\n10\n"));
    // The state still holds the last checkpoint verified on the honest log.
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert!(st["checkpoint"].as_str().unwrap().contains("\n7\n"));
}

/// Serves `/v1/log` and, at `/v1/checkpoint`, whatever `note` holds at the time of the request.
fn fake_log(descriptor: String, note: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let body =
                if request.starts_with("GET /v1/log ") { descriptor.clone() } else { note.lock().unwrap().clone() };
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    url
}

#[test]
fn the_monitor_catches_a_bus_checkpoint_whose_lease_term_went_back() {
    // A bus log's notes carry the lease term they were signed under (FORMATS §4); a lower term
    // after a higher one is a signer that lost its lease and still published.
    let key = NamedKey::from_seed("bus.example/main", [4; 32]).unwrap();
    let tree = ledger_core::MemTree::new(TreeHash::Blake3);
    let note = |term: u64| {
        ledger_core::Checkpoint {
            origin: key.name().into(),
            size: 0,
            root: tree.root(),
            extensions: vec!["a2a-ledger/stream LEDGER_main 0".into(), format!("a2a-ledger/lease {term}")],
        }
        .sign(&key)
    };
    let descriptor =
        serde_json::to_string(&ledger_core::LogDescriptor::new(&key.verifier(), TreeHash::Blake3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (log, state) = (dir.path().join("log.json"), dir.path().join("monitor.json"));
    std::fs::write(&log, &descriptor).unwrap();
    let current = std::sync::Arc::new(std::sync::Mutex::new(note(7)));
    let url = fake_log(descriptor, current.clone());
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_ledger-verify"))
            .args(["monitor", &url, "--once", "--log"])
            .arg(&log)
            .arg("--state")
            .arg(&state)
            .output()
            .unwrap();
        (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(run().0, 0);
    *current.lock().unwrap() = note(9);
    assert_eq!(run().0, 0, "a later term is how a failover looks");
    *current.lock().unwrap() = note(8);
    let (code, err) = run();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("LEASE WENT BACK") && err.contains("term 8 after one under term 9"), "{err}");
}
