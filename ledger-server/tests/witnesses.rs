//! A witnessed ledger-server (SPEC §8) with three real `ledger-witness` processes and a 2-of-3
//! policy: receipts and packs verify under the policy (with ledger-verify, as an auditor runs
//! it); with one witness down they still do; with two down the server keeps serving the last
//! satisfied checkpoint and says why in /healthz and /metrics; a witness back up ends that; a
//! restarted server learns each witness's size from its 409 and is cosigned again.

mod common;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Server, gateway_key, identity_entry, run};
use ledger_core::{LogDescriptor, Note, Policy, TreeHash, WitnessKey};

/// A binary of the workspace, built beside the test executable.
fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(bin.exists(), "{} is missing: run the workspace tests (./scripts/test) so {name} is built", bin.display());
    bin
}

struct WitnessProc {
    child: Child,
    data: PathBuf,
    addr: String,
    vkey: WitnessKey,
}

impl Drop for WitnessProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WitnessProc {
    /// Starts `ledger-witness` for `log` on `listen` (port 0 for any).
    fn start(data: &Path, name: &str, log: &Path, listen: &str) -> WitnessProc {
        let mut child = Command::new(workspace_bin("ledger-witness"))
            .arg("--data")
            .arg(data)
            .args(["--listen", listen, "--name", name, "--log"])
            .arg(log)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (mut first, mut second) = (String::new(), String::new());
        out.read_line(&mut first).unwrap();
        out.read_line(&mut second).unwrap();
        let vkey = first.trim_end().strip_prefix("witness vkey ").expect(&first).parse().unwrap();
        let addr = second.trim_end().strip_prefix("listening on ").expect(&second).to_string();
        std::thread::spawn(move || for _ in out.lines() {});
        WitnessProc { child, data: data.to_path_buf(), addr, vkey }
    }

    /// Kills it (SIGKILL): it is down.
    fn stop(mut self) -> (PathBuf, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.data.clone(), self.addr.clone())
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    data: PathBuf,
    descriptor: LogDescriptor,
    log_file: PathBuf,
    policy_file: PathBuf,
    witnesses: Vec<Option<WitnessProc>>,
}

fn ledger_verify(args: &[&str]) -> (i32, String) {
    let out = Command::new(workspace_bin("ledger-verify")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A sha256 log created with `ledger-server init`, three witnesses of it, and a 2-of-3 policy
/// naming them with their URLs.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let out = Command::new(env!("CARGO_BIN_EXE_ledger-server"))
        .args(["init", "--origin", "witnessed.example/log", "--hash", "sha256", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let descriptor: LogDescriptor = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(descriptor.hash, TreeHash::Sha256);
    let log_file = dir.path().join("log.json");
    std::fs::write(&log_file, serde_json::to_string(&descriptor).unwrap()).unwrap();

    let witnesses: Vec<WitnessProc> = (1..=3)
        .map(|i| {
            WitnessProc::start(&dir.path().join(format!("w{i}")), &format!("w{i}.example"), &log_file, "127.0.0.1:0")
        })
        .collect();
    let mut policy = String::from("# three witnesses, any two of them\n");
    for (i, w) in witnesses.iter().enumerate() {
        policy.push_str(&format!("witness w{} {} http://{}\n", i + 1, w.vkey, w.addr));
    }
    policy.push_str("group two-of-three 2 w1 w2 w3\nquorum two-of-three\n");
    Policy::parse(policy.as_bytes()).unwrap();
    let policy_file = dir.path().join("policy.txt");
    std::fs::write(&policy_file, policy).unwrap();
    Setup { data, descriptor, log_file, policy_file, witnesses: witnesses.into_iter().map(Some).collect(), _dir: dir }
}

impl Setup {
    fn server(&self) -> Server {
        let policy = self.policy_file.to_str().unwrap();
        Server::start(&self.data, &["--witness-policy", policy, "--witness-timeout-ms", "1500"])
    }

    /// Appends a sealed run `id` and returns the size after it.
    async fn append(&self, s: &Server, id: &str) -> u64 {
        let token = s.token("gateway");
        let r = s.post_json(&run(TreeHash::Sha256, id, &gateway_key(), "alice", 2), &token).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        s.tree_size().await
    }

    /// The run's receipt, waiting up to `wait` seconds for a checkpoint that covers it.
    async fn receipt(&self, s: &Server, id: &str, wait: u32) -> reqwest::Response {
        s.get(&format!("/runs/{id}/receipt?wait={wait}"), Some(&s.token("auditor"))).await
    }

    /// Writes the receipt to a file and runs `ledger-verify receipt` on it under the policy.
    fn verify(&self, name: &str, body: &[u8], what: &str) -> (i32, String) {
        let file = self.data.parent().unwrap().join(name);
        std::fs::write(&file, body).unwrap();
        let (f, l, p) = (file.to_str().unwrap(), self.log_file.to_str().unwrap(), self.policy_file.to_str().unwrap());
        ledger_verify(&[what, f, "--log", l, "--policy", p])
    }
}

async fn json(s: &Server, path: &str) -> serde_json::Value {
    let token = s.token("auditor");
    let r =
        s.http_client.get(s.url(path)).bearer_auth(token).header("accept", "application/json").send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The witnesses whose lines the served checkpoint carries.
fn cosigners(note: &str) -> Vec<String> {
    let mut names: Vec<String> = Note::parse(note).unwrap().signatures()[1..].iter().map(|s| s.name.clone()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_witnesses_cosign_and_the_server_degrades_and_recovers_with_them() {
    let mut t = setup();
    let s = t.server();
    s.post_json(&[identity_entry(&gateway_key())], &s.token("gateway")).await;

    // All three up: the receipt's checkpoint carries three cosignatures and verifies under the
    // policy; /v1/checkpoint says who cosigned.
    let size = t.append(&s, "run-all").await;
    let r = t.receipt(&s, "run-all", 10).await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    let receipt: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let note = receipt["checkpoint"].as_str().unwrap();
    assert_eq!(cosigners(note), ["w1.example", "w2.example", "w3.example"]);
    let (code, out) = t.verify("all.json", &body, "receipt");
    assert_eq!(code, 0, "{out}");
    let cp = json(&s, "/v1/checkpoint").await;
    assert!(cp["size"].as_u64().unwrap() >= size);
    assert_eq!(cp["witnesses"]["served"]["satisfied"], true);
    assert_eq!(cp["witnesses"]["served"]["cosigned"].as_array().unwrap().len(), 3, "{cp}");
    let text = s.get("/v1/checkpoint", None).await.text().await.unwrap();
    assert_eq!(cosigners(&text), ["w1.example", "w2.example", "w3.example"]);

    // A pack of everything verifies under the policy too.
    let pack = s.get(&format!("/v1/pack?start=0&end={size}"), Some(&s.token("auditor"))).await;
    assert_eq!(pack.status(), 200);
    let (code, out) = t.verify("all.tar", &pack.bytes().await.unwrap(), "pack");
    assert_eq!(code, 0, "{out}");

    // One witness down: the next checkpoint is cosigned by the other two and still verifies.
    let (w3_data, w3_addr) = t.witnesses[2].take().unwrap().stop();
    t.append(&s, "run-two").await;
    let r = t.receipt(&s, "run-two", 10).await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    let receipt: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(cosigners(receipt["checkpoint"].as_str().unwrap()), ["w1.example", "w2.example"]);
    let (code, out) = t.verify("two.json", &body, "receipt");
    assert_eq!(code, 0, "{out}");
    let h: serde_json::Value = s.get("/healthz", None).await.json().await.unwrap();
    assert_eq!(h["status"], "ok", "{h}");

    // Two down: the quorum cannot be met. Entries are still acknowledged, but no checkpoint
    // covering them is served; receipts of earlier runs still verify; /healthz and /metrics say
    // why.
    let (w2_data, w2_addr) = t.witnesses[1].take().unwrap().stop();
    let served_before = json(&s, "/v1/checkpoint").await["size"].as_u64().unwrap();
    let size_one = t.append(&s, "run-one").await;
    let r = t.receipt(&s, "run-one", 3).await;
    assert_eq!(r.status(), 409, "a run past the served checkpoint has no receipt yet");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let h = loop {
        let h: serde_json::Value = s.get("/healthz", None).await.json().await.unwrap();
        if h["status"] == "degraded" {
            break h;
        }
        assert!(std::time::Instant::now() < deadline, "never degraded: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = h["reason"].as_str().unwrap();
    assert!(reason.contains("witness quorum two-of-three not met"), "{reason}");
    assert!(reason.contains("cosigned by w1") && reason.contains("w2 (") && reason.contains("w3 ("), "{reason}");
    assert_eq!(h["checkpoint_size"].as_u64().unwrap(), served_before, "{h}");
    assert!(h["tree_size"].as_u64().unwrap() >= size_one);
    let metrics = s.get("/metrics", Some(&s.token("auditor"))).await.text().await.unwrap();
    assert!(metrics.contains("ledger_witness_quorum_met 0"), "{metrics}");
    assert!(metrics.contains("ledger_witness_failures_total{witness=\"w3\"}"), "{metrics}");
    assert_eq!(json(&s, "/v1/checkpoint").await["size"].as_u64().unwrap(), served_before);
    let r = t.receipt(&s, "run-two", 0).await;
    let (code, out) = t.verify("two-again.json", &r.bytes().await.unwrap(), "receipt");
    assert_eq!(code, 0, "{out}");

    // A witness back (same address, same state): the quorum holds again, the waiting run gets
    // its receipt, the server is healthy.
    t.witnesses[1] = Some(WitnessProc::start(&w2_data, "w2.example", &t.log_file, &w2_addr));
    let r = t.receipt(&s, "run-one", 15).await;
    assert_eq!(r.status(), 200);
    let (code, out) = t.verify("one.json", &r.bytes().await.unwrap(), "receipt");
    assert_eq!(code, 0, "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let h: serde_json::Value = s.get("/healthz", None).await.json().await.unwrap();
        if h["status"] == "ok" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still degraded: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = s.get("/metrics", Some(&s.token("auditor"))).await.text().await.unwrap();
    assert!(metrics.contains("ledger_witness_quorum_met 1"), "{metrics}");

    // The server stops (its final checkpoint is cosigned by the two up) and starts again: it
    // does not know what the witnesses cosigned, learns it from their 409s, and is cosigned by
    // all three once the third is back.
    assert!(s.terminate().success());
    t.witnesses[2] = Some(WitnessProc::start(&w3_data, "w3.example", &t.log_file, &w3_addr));
    let s = t.server();
    t.append(&s, "run-again").await;
    let r = t.receipt(&s, "run-again", 15).await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    let receipt: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(cosigners(receipt["checkpoint"].as_str().unwrap()), ["w1.example", "w2.example", "w3.example"]);
    let (code, out) = t.verify("again.json", &body, "receipt");
    assert_eq!(code, 0, "{out}");
    // Each witness's own view of the log agrees with the checkpoint served.
    for w in t.witnesses.iter().flatten() {
        let origin = t.descriptor.origin.clone();
        let theirs =
            reqwest::get(format!("http://{}/checkpoint/{origin}", w.addr)).await.unwrap().text().await.unwrap();
        let served = s.get("/v1/checkpoint", None).await.text().await.unwrap();
        assert_eq!(Note::parse(&theirs).unwrap().text(), Note::parse(&served).unwrap().text());
    }
    assert!(s.terminate().success());
}

#[tokio::test]
async fn a_policy_without_witness_urls_or_of_another_log_stops_the_start() {
    let t = setup();
    let dir = t.data.parent().unwrap();
    let w = t.witnesses[0].as_ref().unwrap();
    let no_url = dir.join("no-url.txt");
    std::fs::write(&no_url, format!("witness w1 {}\nquorum w1\n", w.vkey)).unwrap();
    let e = Server::try_start(&t.data, &["--witness-policy", no_url.to_str().unwrap()]).err().unwrap();
    assert!(e.contains("witness \"w1\" of the policy has no URL"), "{e}");

    let other = ledger_core::NamedKey::from_seed("other.example/log", [5; 32]).unwrap().verifier();
    let other_log = dir.join("other-log.txt");
    std::fs::write(&other_log, format!("log {other}\nwitness w1 {} http://{}\nquorum w1\n", w.vkey, w.addr)).unwrap();
    let e = Server::try_start(&t.data, &["--witness-policy", other_log.to_str().unwrap()]).err().unwrap();
    assert!(e.contains("witness policy"), "{e}");

    let malformed = dir.join("malformed.txt");
    std::fs::write(&malformed, "quorum nobody\n").unwrap();
    let e = Server::try_start(&t.data, &["--witness-policy", malformed.to_str().unwrap()]).err().unwrap();
    assert!(e.contains("malformed.txt"), "{e}");
}
