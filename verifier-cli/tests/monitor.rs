//! `ledger-verify monitor` against real `ledger-server`s made to present a forked checkpoint (the
//! log key copied into a second data directory that gets other entries), several logs followed in
//! one invocation, and stand-in servers for what a real server will not show: replicas of one log
//! that disagree, a bus log's lease term going back.
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
        Server::spawn(data, &[])
    }

    /// A server of the log `origin` in `data`; with `tokens_of`, it takes that server's tokens
    /// (its configuration, copied before the first start), so one auditor token reads both.
    fn start_log(data: &Path, origin: &str, tokens_of: Option<&Server>) -> Server {
        std::fs::create_dir_all(data).unwrap();
        if let Some(other) = tokens_of {
            for f in ["server.toml", "tokens.json"] {
                std::fs::copy(other.data.join(f), data.join(f)).unwrap();
            }
        }
        Server::spawn(data, &["--origin", origin])
    }

    fn spawn(data: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(server_binary())
            .args(["--data"])
            .arg(data)
            .args(["--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--checkpoint-interval-ms", "20"])
            .args(args)
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

/// `ledger-verify monitor URL… --once --log LOG… --state STATE`: exit code, stdout, stderr.
fn monitor_all(urls: &[&str], logs: &[&Path], state: &Path, token: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ledger-verify"));
    cmd.arg("monitor").args(urls).arg("--once").arg("--state").arg(state).env_remove("LEDGER_TOKEN");
    for log in logs {
        cmd.arg("--log").arg(log);
    }
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The files in `dir` whose names start with `prefix`.
fn files_starting(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect()
}

fn state_checkpoint(path: &Path) -> String {
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    st["checkpoint"].as_str().unwrap().to_string()
}

#[test]
fn one_monitor_follows_two_logs_each_in_its_own_state_and_names_the_one_that_forks() {
    let dir = tempfile::tempdir().unwrap();
    let key = NamedKey::from_seed("gateway", [8; 32]).unwrap();
    let (a_origin, b_origin) = ("shard-a.example/log", "shard-b.example/log");
    let a = Server::start_log(&dir.path().join("a"), a_origin, None);
    let b = Server::start_log(&dir.path().join("b"), b_origin, Some(&a));
    let (a_log, b_log) = (dir.path().join("a.json"), dir.path().join("b.json"));
    std::fs::write(&a_log, a.descriptor()).unwrap();
    std::fs::write(&b_log, b.descriptor()).unwrap();
    let token = a.token("auditor");
    assert_eq!(token, b.token("auditor"));
    for srv in [&a, &b] {
        srv.append(&[identity(&key)]);
        srv.append(&sealed("r1", &key));
    }
    // A directory that does not exist yet is created, and holds one state per origin.
    let states = dir.path().join("states");
    let logs = [a_log.as_path(), b_log.as_path()];
    let (code, out, err) = monitor_all(&[&a.http, &b.http], &logs, &states, Some(&token));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("{a_origin}: checkpoint 4 verified ({})", a.http)), "{out}");
    assert!(out.contains(&format!("{b_origin}: checkpoint 4 verified ({})", b.http)), "{out}");
    let (a_state, b_state) = (states.join("shard-a.example%2Flog.json"), states.join("shard-b.example%2Flog.json"));
    assert!(state_checkpoint(&a_state).starts_with(&format!("{a_origin}\n4\n")));
    assert!(state_checkpoint(&b_state).starts_with(&format!("{b_origin}\n4\n")));

    // Each log moves on its own: only the one that grew is reported.
    a.append(&sealed("r2", &key));
    let (code, out, err) = monitor_all(&[&a.http, &b.http], &logs, &states, Some(&token));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("{a_origin}: checkpoint 7 verified, consistent with 4 ({})", a.http)), "{out}");
    assert!(!out.contains(b_origin), "{out}");

    // A URL that does not answer is named, and the others are still checked.
    b.append(&sealed("r2", &key));
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (code, out, err) = monitor_all(&[&a.http, &dead, &b.http], &logs, &states, Some(&token));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{dead}/v1/log")), "{err}");
    assert!(out.contains(&format!("{b_origin}: checkpoint 7 verified, consistent with 4 ({})", b.http)), "{out}");
    assert!(state_checkpoint(&b_state).starts_with(&format!("{b_origin}\n7\n")));

    // Log b's key, other entries: b now shows another history; a goes on and is still followed.
    let b_key = b.data.join("log.key");
    drop(b);
    let forked_dir = dir.path().join("b-forked");
    std::fs::create_dir_all(&forked_dir).unwrap();
    std::fs::copy(&b_key, forked_dir.join("log.key")).unwrap();
    let forked = Server::start_log(&forked_dir, b_origin, Some(&a));
    assert_eq!(forked.descriptor(), std::fs::read_to_string(&b_log).unwrap());
    forked.append(&[identity(&key)]);
    for run in ["other-1", "other-2", "other-3"] {
        forked.append(&sealed(run, &key));
    }
    a.append(&sealed("r3", &key));
    // With a URL away in the same round: both reported, and the alarm decides the exit code.
    let (code, out, err) = monitor_all(&[&a.http, &dead, &forked.http], &logs, &states, Some(&token));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("{dead}/v1/log")), "{err}");
    assert!(err.contains("2 findings over the 3 URLs (each reported above): alarms 1, not checked 1"), "{err}");
    assert!(
        err.contains(&format!(
            "FORK: log {b_origin} at {}: checkpoint 10 is not an extension of the verified checkpoint 7",
            forked.http
        )),
        "{err}"
    );
    assert!(out.contains(&format!("{a_origin}: checkpoint 10 verified, consistent with 7 ({})", a.http)), "{out}");
    assert!(!err.contains(a_origin), "{err}");
    // The evidence lies beside the forked log's state, which still holds its last honest checkpoint.
    let found = files_starting(&states, "shard-b.example%2Flog.json.evidence-");
    assert_eq!(found.len(), 1, "{found:?}");
    let evidence: serde_json::Value = serde_json::from_slice(&std::fs::read(&found[0]).unwrap()).unwrap();
    assert_eq!(evidence["what"], "FORK");
    assert_eq!(evidence["evidence"]["current_url"], forked.http.as_str());
    assert!(files_starting(&states, "shard-a.example%2Flog.json.evidence-").is_empty());
    assert!(state_checkpoint(&b_state).starts_with(&format!("{b_origin}\n7\n")));
    assert!(state_checkpoint(&a_state).starts_with(&format!("{a_origin}\n10\n")));
}

#[test]
fn several_urls_need_a_state_directory_and_one_url_a_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = NamedKey::from_seed("example.com/log", [5; 32]).unwrap();
    let log = dir.path().join("log.json");
    std::fs::write(
        &log,
        serde_json::to_string(&ledger_core::LogDescriptor::new(&key.verifier(), TreeHash::Blake3)).unwrap(),
    )
    .unwrap();
    // Nothing listens there: the refusals come before any request.
    let (u1, u2) = ("http://127.0.0.1:1", "http://127.0.0.1:2");
    let file = dir.path().join("monitor.json");
    std::fs::write(&file, "{}").unwrap();
    let (code, _, err) = monitor_all(&[u1, u2], &[&log], &file, None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "{}: --state is a file, but with 2 URLs it names a directory that holds one state file per log origin",
            file.display()
        )),
        "{err}"
    );
    let (code, _, err) = monitor_all(&[u1], &[&log], dir.path(), None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "{}: --state is a directory, but with one URL it names the state file",
            dir.path().display()
        )),
        "{err}"
    );
}

/// Serves whatever `routes` maps the request's path (query included) to at the time of the
/// request, else 404.
fn fake_ledger(routes: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split(' ').nth(1).unwrap_or_default();
            let (status, body) = match routes.lock().unwrap().get(path) {
                Some(body) => ("200 OK", body.clone()),
                None => ("404 Not Found", String::new()),
            };
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    url
}

#[test]
fn two_replicas_of_one_log_must_agree_with_each_other() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    let key = NamedKey::from_seed("replicated.example/log", [6; 32]).unwrap();
    let descriptor =
        serde_json::to_string(&ledger_core::LogDescriptor::new(&key.verifier(), TreeHash::Blake3)).unwrap();
    let tree = |tag: u8| {
        let mut t = ledger_core::MemTree::new(TreeHash::Blake3);
        for i in 0..7u8 {
            t.push_entry(&[tag, i]);
        }
        t
    };
    let (honest, forked) = (tree(0), tree(1));
    let note = |t: &ledger_core::MemTree, size: u64| {
        ledger_core::Checkpoint { origin: key.name().into(), size, root: t.root_at(size).unwrap(), extensions: vec![] }
            .sign(&key)
    };
    let proof = |t: &ledger_core::MemTree, from: u64, to: u64| {
        let p: Vec<String> = t
            .consistency_proof(from, to)
            .unwrap()
            .iter()
            .map(|h| base64::engine::general_purpose::STANDARD.encode(h))
            .collect();
        (format!("/v1/proof/consistency?from={from}&to={to}"), serde_json::json!({ "proof": p }).to_string())
    };
    let serving = |cp: String, extra: Vec<(String, String)>| {
        let mut routes = HashMap::from([("/v1/log".to_string(), descriptor.clone()), ("/v1/checkpoint".into(), cp)]);
        routes.extend(extra);
        routes
    };
    // Replica a is ahead (5 entries), replica b lags (3): b is proven a prefix with a's proof.
    let a_routes = Arc::new(Mutex::new(serving(note(&honest, 5), vec![proof(&honest, 3, 5)])));
    let b_routes = Arc::new(Mutex::new(serving(note(&honest, 3), vec![])));
    let (a, b) = (fake_ledger(a_routes.clone()), fake_ledger(b_routes.clone()));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    std::fs::write(&log, &descriptor).unwrap();
    let states = dir.path().join("states");
    let state = states.join("replicated.example%2Flog.json");
    let (code, out, err) = monitor_all(&[&b, &a], &[&log], &states, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("replicated.example/log: checkpoint 5 verified ({a})")), "{out}");
    assert!(out.contains(&format!("replicated.example/log: checkpoint 3 verified, a prefix of 5 ({b})")), "{out}");
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(st["url"], a.as_str());
    assert!(st["checkpoint"].as_str().unwrap().contains("\n5\n"));

    // With a away, b's 3 entries cannot be proven a prefix of the 5 verified: not checked, no alarm.
    a_routes.lock().unwrap().remove("/v1/checkpoint");
    let (code, _, err) = monitor_all(&[&a, &b], &[&log], &states, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{a}/v1/checkpoint: HTTP 404")), "{err}");
    assert!(
        err.contains(&format!("{b}: checkpoint 3 of log replicated.example/log is behind the verified checkpoint 5")),
        "{err}"
    );
    assert!(err.contains("2 findings over the 2 URLs (each reported above): alarms 0, not checked 2"), "{err}");
    a_routes.lock().unwrap().insert("/v1/checkpoint".into(), note(&honest, 5));

    // b shows another tree of 3 entries: a's proof does not bind it to a's 5, a split view.
    b_routes.lock().unwrap().insert("/v1/checkpoint".into(), note(&forked, 3));
    let (code, _, err) = monitor_all(&[&a, &b], &[&log], &states, None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "FORK: log replicated.example/log at {b}: checkpoint 3 is not a prefix of the verified checkpoint 5 (proof from {a})"
        )),
        "{err}"
    );

    // b shows another root at a's size: a split view too, with both notes and both URLs as evidence.
    b_routes.lock().unwrap().insert("/v1/checkpoint".into(), note(&forked, 5));
    let (code, _, err) = monitor_all(&[&a, &b], &[&log], &states, None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "FORK: log replicated.example/log at {b}: two checkpoints of size 5 with different roots"
        )),
        "{err}"
    );
    let mut found = files_starting(&states, "replicated.example%2Flog.json.evidence-");
    assert_eq!(found.len(), 2, "{found:?}");
    found.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let evidence: serde_json::Value = serde_json::from_slice(&std::fs::read(found.last().unwrap()).unwrap()).unwrap();
    assert_eq!(evidence["evidence"]["previous_url"], a.as_str());
    assert_eq!(evidence["evidence"]["current_url"], b.as_str());
    assert_eq!(evidence["evidence"]["current"], note(&forked, 5));
    // a shows another history past the head; b, lagging, is then not blamed for a shrink.
    a_routes.lock().unwrap().extend([("/v1/checkpoint".to_string(), note(&forked, 7)), proof(&forked, 5, 7)]);
    b_routes.lock().unwrap().insert("/v1/checkpoint".into(), note(&honest, 3));
    let (code, _, err) = monitor_all(&[&a, &b], &[&log], &states, None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "FORK: log replicated.example/log at {a}: checkpoint 7 is not an extension of the verified checkpoint 5"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("{b}: checkpoint 3 of log replicated.example/log is behind")), "{err}");
    assert!(!err.contains("SHRINKING TREE"), "{err}");
    a_routes.lock().unwrap().insert("/v1/checkpoint".into(), note(&honest, 5));

    // A note that the log's key did not sign, from one replica: named with its URL.
    let impostor = NamedKey::from_seed("replicated.example/log", [9; 32]).unwrap();
    let forged = ledger_core::Checkpoint {
        origin: impostor.name().into(),
        size: 5,
        root: honest.root_at(5).unwrap(),
        extensions: vec![],
    }
    .sign(&impostor);
    b_routes.lock().unwrap().insert("/v1/checkpoint".into(), forged);
    let (code, _, err) = monitor_all(&[&a, &b], &[&log], &states, None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "BAD CHECKPOINT: log replicated.example/log at {b}: /v1/checkpoint does not verify under the trusted key"
        )),
        "{err}"
    );
    // The state still holds a's checkpoint.
    assert!(state_checkpoint(&state).contains("\n5\n"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&state).unwrap()).unwrap()["url"],
        a.as_str()
    );
}

#[test]
fn a_running_monitor_retries_a_url_that_is_away_and_stops_on_an_alarm_at_another() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    let key = NamedKey::from_seed("kept.example/log", [7; 32]).unwrap();
    let descriptor =
        serde_json::to_string(&ledger_core::LogDescriptor::new(&key.verifier(), TreeHash::Blake3)).unwrap();
    let note = |tag: u8| {
        let mut t = ledger_core::MemTree::new(TreeHash::Blake3);
        t.push_entry(&[tag]);
        ledger_core::Checkpoint { origin: key.name().into(), size: 1, root: t.root(), extensions: vec![] }.sign(&key)
    };
    // a is away (404 everywhere) at first; b serves the log.
    let a_routes = Arc::new(Mutex::new(HashMap::new()));
    let b_routes = Arc::new(Mutex::new(HashMap::from([
        ("/v1/log".to_string(), descriptor.clone()),
        ("/v1/checkpoint".to_string(), note(0)),
    ])));
    let (a, b) = (fake_ledger(a_routes.clone()), fake_ledger(b_routes));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    std::fs::write(&log, &descriptor).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ledger-verify"))
        .args(["monitor", &a, &b, "--interval", "1", "--log"])
        .arg(&log)
        .arg("--state")
        .arg(dir.path().join("states"))
        .env_remove("LEDGER_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, format!("kept.example/log: checkpoint 1 verified ({b})\n"));
    line.clear();
    err.read_line(&mut line).unwrap();
    assert!(line.contains(&format!("{a}/v1/log: HTTP 404")) && line.contains("retrying in 1s"), "{line}");

    // a comes back showing another tree of the same size: the monitor stops with the fork.
    a_routes.lock().unwrap().extend([("/v1/log".to_string(), descriptor.clone()), ("/v1/checkpoint".into(), note(1))]);
    let code = child.wait().unwrap().code().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(code, 1, "{rest}");
    assert!(
        rest.contains(&format!("FORK: log kept.example/log at {a}: two checkpoints of size 1 with different roots")),
        "{rest}"
    );
}

#[test]
fn two_urls_of_one_origin_under_two_keys_are_refused() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    // Both descriptors are trusted (a key rotation), but one state per origin cannot follow both.
    let dir = tempfile::tempdir().unwrap();
    let mut urls = Vec::new();
    let mut logs = Vec::new();
    for seed in [1u8, 2] {
        let key = NamedKey::from_seed("rotated.example/log", [seed; 32]).unwrap();
        let descriptor =
            serde_json::to_string(&ledger_core::LogDescriptor::new(&key.verifier(), TreeHash::Blake3)).unwrap();
        let log = dir.path().join(format!("log-{seed}.json"));
        std::fs::write(&log, &descriptor).unwrap();
        logs.push(log);
        let cp = ledger_core::Checkpoint {
            origin: key.name().into(),
            size: 0,
            root: ledger_core::MemTree::new(TreeHash::Blake3).root(),
            extensions: vec![],
        }
        .sign(&key);
        let routes = HashMap::from([("/v1/log".to_string(), descriptor), ("/v1/checkpoint".to_string(), cp)]);
        urls.push(fake_ledger(Arc::new(Mutex::new(routes))));
    }
    let (code, out, err) = monitor_all(&[&urls[0], &urls[1]], &[&logs[0], &logs[1]], &dir.path().join("states"), None);
    assert_eq!(code, 2, "{err}");
    assert!(out.contains(&format!("rotated.example/log: checkpoint 0 verified ({})", urls[0])), "{out}");
    assert!(
        err.contains(&format!("{}: serves log rotated.example/log under key rotated.example/log+", urls[1]))
            && err.contains("another URL serves it under key rotated.example/log+"),
        "{err}"
    );
}
