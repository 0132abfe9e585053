//! The gateway's embedded ledger with a witness (SPEC §8): a run's receipt carries the
//! witness's cosignature and verifies under the policy; with the witness down, runs are still
//! recorded, /healthz says the quorum is not met and a new run's receipt waits; with it back,
//! the receipt comes.

mod common;

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{gateway, workspace_bin};
use ledger_core::{LogDescriptor, Note, Policy, ReceiptVerifier, WitnessKey};
use serde_json::{Value, json};

struct Witness {
    child: Child,
    addr: String,
    vkey: WitnessKey,
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn witness(data: &Path, log: &Path, listen: &str) -> Witness {
    let mut child = Command::new(workspace_bin("ledger-witness"))
        .arg("--data")
        .arg(data)
        .args(["--listen", listen, "--name", "w1.example", "--log"])
        .arg(log)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    std::thread::spawn(move || for _ in out.lines() {});
    Witness {
        child,
        vkey: first.trim_end().strip_prefix("witness vkey ").expect(&first).parse().unwrap(),
        addr: second.trim_end().strip_prefix("listening on ").expect(&second).to_string(),
    }
}

async fn healthz(gw: &common::Gw) -> Value {
    gw.get("/healthz").send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_ledger_serves_receipts_only_under_cosigned_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gw");
    // The log is created first, so the witness can be given its descriptor.
    let out = Command::new(workspace_bin("ledger-server"))
        .args(["init", "--origin", "gw.example/log", "--hash", "sha256", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let descriptor: LogDescriptor = serde_json::from_slice(&out.stdout).unwrap();
    let log_file = dir.path().join("log.json");
    std::fs::write(&log_file, serde_json::to_string(&descriptor).unwrap()).unwrap();
    let w = witness(&dir.path().join("w1"), &log_file, "127.0.0.1:0");
    let policy_text = format!("witness w1 {} http://{}\nquorum w1\n", w.vkey, w.addr);
    let policy_file = dir.path().join("policy.txt");
    std::fs::write(&policy_file, &policy_text).unwrap();
    let policy = std::sync::Arc::new(Policy::parse(policy_text.as_bytes()).unwrap());

    let gw = gateway(&data, &["--witness-policy", policy_file.to_str().unwrap(), "--witness-timeout-ms", "1000"]);
    let (status, body) = gw.invoke("echo", json!({"text": "witnessed"})).await;
    assert_eq!(status, 200, "{body}");
    let run = body["run"].as_str().unwrap().to_string();
    let r = gw.get(&format!("/runs/{run}/receipt?wait=10")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    let receipt: Value = serde_json::from_slice(&bytes).unwrap();
    let note = Note::parse(receipt["checkpoint"].as_str().unwrap()).unwrap();
    assert_eq!(note.signatures().len(), 2, "the log's line and the witness's");
    assert_eq!(note.signatures()[1].name, "w1.example");
    ReceiptVerifier::with_policy(descriptor.clone(), policy.clone()).unwrap().verify_json(&bytes).unwrap();
    assert_eq!(healthz(&gw).await["status"], "ok");

    // The witness down: runs are recorded, receipts wait, health says why.
    let addr = w.addr.clone();
    drop(w);
    let (status, body) = gw.invoke("echo", json!({"text": "unwitnessed"})).await;
    assert_eq!(status, 200, "{body}");
    let waiting = body["run"].as_str().unwrap().to_string();
    let r = gw.get(&format!("/runs/{waiting}/receipt?wait=2")).send().await.unwrap();
    assert_eq!(r.status(), 409, "no cosigned checkpoint covers the run yet");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let h = loop {
        let h = healthz(&gw).await;
        if h["status"] == "degraded" {
            break h;
        }
        assert!(std::time::Instant::now() < deadline, "never degraded: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(h["reason"].as_str().unwrap().contains("witness quorum w1 not met"), "{h}");
    let metrics = gw.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gateway_witness_quorum_met 0"), "{metrics}");

    // Back on the same address with its state: the waiting run gets its receipt.
    let _w = witness(&dir.path().join("w1"), &log_file, &addr);
    let r = gw.get(&format!("/runs/{waiting}/receipt?wait=15")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    ReceiptVerifier::with_policy(descriptor, policy).unwrap().verify_json(&r.bytes().await.unwrap()).unwrap();
}
