//! The log's side (`ledger_witness::cosigner`) against witnesses in this process: real
//! `Witness` state machines served by `ledger_witness::http`, some behind fakes that fail in
//! one way each. A log on a `MemStore` is opened witnessed; what it publishes is checked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ledger_core::checkpoint::Note;
use ledger_core::store::MemStore;
use ledger_core::{Log, LogConfig, LogDescriptor, NamedKey, Policy, Store, TreeHash, WitnessKey};
use ledger_witness::Witness;
use ledger_witness::cosigner::{Cosigner, CosignerConfig};

const ORIGIN: &str = "cosigner.example/log";

fn log_key() -> NamedKey {
    NamedKey::from_seed(ORIGIN, [3; 32]).unwrap()
}

fn descriptor() -> LogDescriptor {
    LogDescriptor::new(&log_key().verifier(), TreeHash::Sha256)
}

/// How a fake witness answers before (or instead of) the real one behind it.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The real witness answers.
    Honest,
    /// 503 for the first `n` requests, then the real witness.
    FailFirst(usize),
    /// 200 with a line signed by another key under the witness's name and key id.
    BadLine,
    /// Never answers.
    Hang,
}

struct Fake {
    witness: Arc<Witness>,
    mode: Mode,
    requests: AtomicUsize,
    impostor: NamedKey,
}

async fn add_checkpoint(State(f): State<Arc<Fake>>, body: Bytes) -> Response {
    let n = f.requests.fetch_add(1, Ordering::SeqCst);
    match f.mode {
        Mode::Honest => ledger_witness::http::answer(f.witness.clone(), body).await,
        Mode::FailFirst(k) if n < k => (StatusCode::SERVICE_UNAVAILABLE, "busy\n").into_response(),
        Mode::FailFirst(_) => ledger_witness::http::answer(f.witness.clone(), body).await,
        Mode::BadLine => {
            // A well-formed line of the right name and key id whose signature is another key's.
            let text = String::from_utf8_lossy(&body);
            let note = &text[text.find("\n\n").unwrap() + 2..];
            let note_text = Note::parse(note).unwrap().text().to_string();
            let mut c = ledger_core::witness::Cosignature::sign(&note_text, &f.impostor, 1_700_000_000).unwrap();
            c.key_id = f.witness.vkey().id();
            c.to_line().into_response()
        }
        Mode::Hang => std::future::pending().await,
    }
}

struct Running {
    name: String,
    key: WitnessKey,
    url: String,
    fake: Arc<Fake>,
    _dir: tempfile::TempDir,
}

/// A witness of the test log named `name`, behind a fake in `mode`, on a loopback port.
async fn witness(name: &str, mode: Mode) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let key =
        NamedKey::from_seed(&format!("{name}.example"), [name.bytes().map(u32::from).sum::<u32>() as u8; 32]).unwrap();
    let vkey = WitnessKey::of(&key);
    let w = Arc::new(Witness::open(dir.path(), key, &[descriptor()]).unwrap());
    let impostor = NamedKey::from_seed(&format!("{name}.example"), [99; 32]).unwrap();
    let fake = Arc::new(Fake { witness: w, mode, requests: AtomicUsize::new(0), impostor });
    let app =
        axum::Router::new().route("/add-checkpoint", axum::routing::post(add_checkpoint)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Running { name: name.to_string(), key: vkey, url, fake, _dir: dir }
}

/// A URL nothing listens on.
fn down() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

fn policy(lines: &[(String, WitnessKey, String)], quorum: &str) -> Policy {
    let mut text = String::new();
    for (name, key, url) in lines {
        text.push_str(&format!("witness {name} {key} {url}\n"));
    }
    text.push_str(quorum);
    Policy::parse(text.as_bytes()).unwrap()
}

fn line(w: &Running) -> (String, WitnessKey, String) {
    (w.name.clone(), w.key.clone(), w.url.clone())
}

/// A witnessed log with a few entries, its cosigner running.
fn log_with(cosigner: &Cosigner) -> Arc<Log> {
    let cfg = LogConfig {
        hash: TreeHash::Sha256,
        checkpoint_interval: Duration::from_secs(3600),
        witnessing: Some(cosigner.witnessing()),
        ..LogConfig::default()
    };
    let log = Arc::new(Log::open(Arc::new(MemStore::new()) as Arc<dyn Store>, log_key(), cfg).unwrap());
    cosigner.spawn(log.clone()).unwrap();
    log
}

fn grow(log: &Log, tag: &str) -> u64 {
    let gw = NamedKey::from_seed("gateway", [7; 32]).unwrap();
    let id = ledger_core::Entry {
        ts: 1,
        run: ledger_core::RunId::identity(&format!("gw-{tag}")).unwrap(),
        seq: 0,
        actor: format!("gw-{tag}"),
        event: ledger_core::Event::IdentityRegistered { public_key: gw.public_key() },
        grant: None,
        payload: None,
    };
    log.append(vec![id.encode()]).unwrap();
    log.sign_checkpoint().unwrap().checkpoint.size
}

/// Waits until the log serves a checkpoint of `size`; its note.
async fn published(log: &Log, size: u64, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let cp = log.checkpoint();
        if cp.checkpoint.size >= size && !cp.note.is_empty() {
            return cp.note.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "checkpoint {size} not published within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn cosigned_by(note: &str) -> Vec<String> {
    Note::parse(note).unwrap().signatures()[1..].iter().map(|s| s.name.clone()).collect()
}

fn config(timeout: Duration) -> CosignerConfig {
    CosignerConfig { timeout, retry: Duration::from_millis(100) }
}

#[tokio::test]
async fn every_cosignature_is_gathered_and_each_witness_learns_the_size_from_its_409() {
    let (a, b) = (witness("a", Mode::Honest).await, witness("b", Mode::Honest).await);
    let p = policy(&[line(&a), line(&b)], "group both all a b\nquorum both\n");
    let cosigner = Cosigner::new(p.clone(), config(Duration::from_secs(10))).unwrap();
    let log = log_with(&cosigner);
    let size = grow(&log, "1");
    let note = published(&log, size, Duration::from_secs(10)).await;
    assert_eq!(cosigned_by(&note), ["a.example", "b.example"]);
    p.verify(&note, Some(&log_key().verifier()), u64::MAX / 2).unwrap();
    let st = cosigner.status(&log);
    assert!(st.quorum_met());
    assert!(st.witnesses.iter().all(|w| w.cosigned_size == Some(size) && w.last_error.is_none()));

    // A new cosigner (a restarted log) starts from old size 0; each witness answers 409 with its
    // size, and the request is made again with a proof from there.
    let before = (a.fake.requests.load(Ordering::SeqCst), b.fake.requests.load(Ordering::SeqCst));
    let fresh = Cosigner::new(p, config(Duration::from_secs(10))).unwrap();
    let cfg = LogConfig {
        hash: TreeHash::Sha256,
        checkpoint_interval: Duration::from_secs(3600),
        witnessing: Some(fresh.witnessing()),
        ..LogConfig::default()
    };
    let store = log.store().clone();
    log.close().unwrap();
    drop(log);
    let log = Arc::new(Log::open(store, log_key(), cfg).unwrap());
    assert_eq!(log.checkpoint().checkpoint.size, size, "the published checkpoint is served again at open");
    fresh.spawn(log.clone()).unwrap();
    let size = grow(&log, "2");
    let note = published(&log, size, Duration::from_secs(10)).await;
    assert_eq!(cosigned_by(&note), ["a.example", "b.example"]);
    // Each witness: a 409 then a cosignature for the new size (the reopened log's round for the
    // old size may add one more request each).
    assert!(a.fake.requests.load(Ordering::SeqCst) - before.0 >= 2);
    assert!(b.fake.requests.load(Ordering::SeqCst) - before.1 >= 2);
}

#[tokio::test]
async fn a_line_that_does_not_verify_does_not_count() {
    let (good, bad) = (witness("good", Mode::Honest).await, witness("bad", Mode::BadLine).await);
    let all = policy(&[line(&good), line(&bad)], "group both all good bad\nquorum both\n");
    let cosigner = Cosigner::new(all, config(Duration::from_secs(2))).unwrap();
    let log = log_with(&cosigner);
    let size = grow(&log, "1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cosigner.status(&log).last_round.is_none_or(|r| r.size < size) {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let st = cosigner.status(&log);
    assert!(!st.quorum_met());
    assert_eq!(st.published_size, 0, "nothing published");
    let bad_status = st.witnesses.iter().find(|w| w.name == "bad").unwrap();
    assert!(bad_status.last_error.as_deref().unwrap().contains("without a cosignature that verifies"), "{st:?}");
    assert!(st.degraded().unwrap().contains("witness quorum both not met"), "{st:?}");

    // Under `any`, the good witness alone publishes, and the bad line is not carried.
    let any = policy(&[line(&good), line(&bad)], "group either any good bad\nquorum either\n");
    let cosigner = Cosigner::new(any, config(Duration::from_secs(2))).unwrap();
    let log = log_with(&cosigner);
    let size = grow(&log, "1");
    let note = published(&log, size, Duration::from_secs(10)).await;
    assert_eq!(cosigned_by(&note), ["good.example"]);
}

#[tokio::test]
async fn a_witness_answering_503_is_asked_again_until_it_cosigns() {
    let w = witness("flaky", Mode::FailFirst(2)).await;
    let cosigner = Cosigner::new(policy(&[line(&w)], "quorum flaky\n"), config(Duration::from_secs(10))).unwrap();
    let log = log_with(&cosigner);
    let size = grow(&log, "1");
    let note = published(&log, size, Duration::from_secs(10)).await;
    assert_eq!(cosigned_by(&note), ["flaky.example"]);
    assert!(w.fake.requests.load(Ordering::SeqCst) >= 3);
}

#[tokio::test]
async fn a_witness_that_is_down_delays_nothing_when_the_quorum_holds_without_it() {
    let up = witness("up", Mode::Honest).await;
    let gone = (String::from("gone"), witness("gone", Mode::Honest).await.key.clone(), down());
    let p = policy(&[line(&up), gone], "group either any up gone\nquorum either\n");
    // A deadline far beyond the wait below: publication must not wait for it.
    let cosigner = Cosigner::new(p, config(Duration::from_secs(120))).unwrap();
    let log = log_with(&cosigner);
    let size = grow(&log, "1");
    let note = published(&log, size, Duration::from_secs(30)).await;
    assert_eq!(cosigned_by(&note), ["up.example"]);
}

#[tokio::test]
async fn a_witness_that_hangs_is_given_up_at_the_deadline() {
    let (up, stuck) = (witness("up", Mode::Honest).await, witness("stuck", Mode::Hang).await);
    let p = policy(&[line(&up), line(&stuck)], "group either any up stuck\nquorum either\n");
    let cosigner = Cosigner::new(p, config(Duration::from_millis(500))).unwrap();
    let log = log_with(&cosigner);
    let size = grow(&log, "1");
    let note = published(&log, size, Duration::from_secs(30)).await;
    assert_eq!(cosigned_by(&note), ["up.example"]);
    let st = cosigner.status(&log);
    let stuck = st.witnesses.iter().find(|w| w.name == "stuck").unwrap();
    assert!(stuck.last_error.as_deref().unwrap().contains("no cosignature within"), "{st:?}");
}

#[tokio::test]
async fn a_witness_holding_another_tree_is_reported_as_a_split_view() {
    // The witness first cosigns a fork of the log (same key, other entries), then is asked for
    // the real log's checkpoint of the same size.
    let w = witness("w", Mode::Honest).await;
    let p = policy(&[line(&w)], "quorum w\n");
    let fork = Cosigner::new(p.clone(), config(Duration::from_secs(5))).unwrap();
    let forked = log_with(&fork);
    let size = grow(&forked, "fork");
    published(&forked, size, Duration::from_secs(10)).await;

    let cosigner = Cosigner::new(p, config(Duration::from_secs(5))).unwrap();
    let log = log_with(&cosigner);
    assert_eq!(grow(&log, "real"), size);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cosigner.status(&log).last_round.is_none_or(|r| r.size < size) {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let st = cosigner.status(&log);
    assert!(!st.quorum_met());
    let why = st.witnesses[0].last_error.clone().unwrap();
    assert!(why.contains("another root hash") && why.contains("split view"), "{why}");
}

#[tokio::test]
async fn a_policy_witness_without_url_is_refused() {
    let key = WitnessKey::of(&NamedKey::from_seed("w.example", [1; 32]).unwrap());
    let p = Policy::parse(format!("witness w {key}\nquorum w\n").as_bytes()).unwrap();
    let e = Cosigner::new(p, CosignerConfig::default()).unwrap_err().to_string();
    assert!(e.contains("witness \"w\" of the policy has no URL"), "{e}");
}
