//! The `ledger-witness` binary on loopback: every answer of `add-checkpoint`, durable state,
//! evidence of forks and concurrent submissions.

use std::io::BufRead as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_core::witness::Cosignature;
use ledger_core::{Checkpoint, Hash, LogDescriptor, MemTree, NamedKey, Note, TreeHash, WitnessKey};

const ORIGIN: &str = "example.com/log";
const ORIGIN_B3: &str = "example.com/blake3-log";

struct Running {
    child: Child,
    url: String,
    vkey: WitnessKey,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_key(origin: &str) -> NamedKey {
    NamedKey::from_seed(origin, [origin.len() as u8; 32]).unwrap()
}

/// Writes the descriptors of the two test logs into `dir` and returns their paths.
fn descriptors(dir: &Path) -> Vec<PathBuf> {
    [(ORIGIN, TreeHash::Sha256), (ORIGIN_B3, TreeHash::Blake3)]
        .iter()
        .enumerate()
        .map(|(i, (origin, h))| {
            let p = dir.join(format!("log{i}.json"));
            let d = LogDescriptor::new(&log_key(origin).verifier(), *h);
            std::fs::write(&p, serde_json::to_string(&d).unwrap()).unwrap();
            p
        })
        .collect()
}

fn start(dir: &Path) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ledger-witness"));
    cmd.arg("--data").arg(dir.join("data")).args(["--listen", "127.0.0.1:0", "--name", "w1"]);
    for p in descriptors(dir) {
        cmd.arg("--log").arg(p);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let vkey: WitnessKey = first.trim_end().strip_prefix("witness vkey ").expect(&first).parse().unwrap();
    let addr = second.trim_end().strip_prefix("listening on ").expect(&second).to_string();
    Running { child, url: format!("http://{addr}"), vkey }
}

fn tree(h: TreeHash, tag: &str, n: u64) -> MemTree {
    let mut t = MemTree::new(h);
    for i in 0..n {
        t.push_entry(format!("{tag} {i}").as_bytes());
    }
    t
}

fn signed(origin: &str, t: &MemTree, size: u64) -> String {
    Checkpoint { origin: origin.into(), size, root: t.root_at(size).unwrap(), extensions: vec![] }
        .sign(&log_key(origin))
}

fn body(old: u64, proof: &[Hash], note: &str) -> String {
    let mut b = format!("old {old}\n");
    for h in proof {
        b.push_str(&B64.encode(h));
        b.push('\n');
    }
    b.push('\n');
    b.push_str(note);
    b
}

/// The request moving the witness from `old` to `new` in tree `t`, with a real proof.
fn step(origin: &str, t: &MemTree, old: u64, new: u64) -> String {
    let proof = if old == 0 { vec![] } else { t.consistency_proof(old, new).unwrap() };
    body(old, &proof, &signed(origin, t, new))
}

async fn post(w: &Running, body: String) -> (u16, Option<String>, String) {
    let r = reqwest::Client::new().post(format!("{}/add-checkpoint", w.url)).body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    (status, ct, r.text().await.unwrap())
}

async fn latest(w: &Running, origin: &str) -> Option<String> {
    let r = reqwest::get(format!("{}/checkpoint/{origin}", w.url)).await.unwrap();
    if r.status() == 404 {
        return None;
    }
    assert_eq!(r.status(), 200);
    Some(r.text().await.unwrap())
}

fn size_of(note: &str) -> u64 {
    Checkpoint::parse_text(Note::parse(note).unwrap().text()).unwrap().size
}

fn evidence_files(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir.join("data/evidence")) {
        Ok(rd) => rd.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect(),
        Err(_) => vec![],
    }
}

/// Checks a 200 answer: one cosignature line of the witness over `note`'s text.
fn check_cosigned(w: &Running, note: &str, answer: &str) {
    let line = Cosignature::parse_line(answer).unwrap();
    assert_eq!(answer, line.to_line());
    w.vkey.verify(Note::parse(note).unwrap().text(), &line.to_note_signature()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_growing_log_is_cosigned_from_size_zero_and_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let w = start(dir.path());
    let key = dir.path().join("data/witness.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let vkey_file = std::fs::read_to_string(dir.path().join("data/witness.vkey")).unwrap();
    assert_eq!(vkey_file, format!("{}\n", w.vkey));
    assert!(vkey_file.starts_with("w1+"));
    assert_eq!(latest(&w, ORIGIN).await, None);

    let t = tree(TreeHash::Sha256, "a", 40);
    let mut old = 0;
    for new in [0, 1, 2, 5, 8, 8, 13, 32, 40] {
        let b = step(ORIGIN, &t, old, new);
        let (status, _, answer) = post(&w, b.clone()).await;
        assert_eq!(status, 200, "{old} -> {new}: {answer}");
        check_cosigned(&w, &signed(ORIGIN, &t, new), &answer);
        let served = latest(&w, ORIGIN).await.unwrap();
        assert_eq!(size_of(&served), new);
        assert!(served.ends_with(&answer), "the served note carries the cosignature");
        old = new;
    }
    // Through a percent-escaped origin too.
    let escaped = latest(&w, &ORIGIN.replace('/', "%2F")).await.unwrap();
    assert_eq!(size_of(&escaped), 40);
    // The blake3 log is witnessed with its own tree hash.
    let t3 = tree(TreeHash::Blake3, "b", 9);
    assert_eq!(post(&w, step(ORIGIN_B3, &t3, 0, 6)).await.0, 200);
    assert_eq!(post(&w, step(ORIGIN_B3, &t3, 6, 9)).await.0, 200);
    let before = latest(&w, ORIGIN).await.unwrap();
    let vkey = w.vkey.clone();
    drop(w);

    let w = start(dir.path());
    assert_eq!(w.vkey, vkey, "the key is kept");
    assert_eq!(latest(&w, ORIGIN).await.unwrap(), before);
    let (status, ct, size) = post(&w, step(ORIGIN, &t, 0, 40)).await;
    assert_eq!((status, ct.as_deref(), size.as_str()), (409, Some("text/x.tlog.size"), "40\n"));
    assert_eq!(size_of(&latest(&w, ORIGIN_B3).await.unwrap()), 9);
    let t = tree(TreeHash::Sha256, "a", 50);
    assert_eq!(post(&w, step(ORIGIN, &t, 40, 50)).await.0, 200);
    assert!(evidence_files(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_has_its_status_code() {
    let dir = tempfile::tempdir().unwrap();
    let w = start(dir.path());
    let t = tree(TreeHash::Sha256, "a", 20);
    let some = t.consistency_proof(3, 10).unwrap();

    // 400: not the request format.
    for b in [
        "".to_string(),
        "old 1".into(),
        "old x\n\n".into(),
        "old 01\n\n".into(),
        format!("old 1\nnot base64\n\n{}", signed(ORIGIN, &t, 5)),
        body(1, &[[1; 32]; 64], &signed(ORIGIN, &t, 5)),
        "old 0\n\nnot a note\n".into(),
        body(0, &[], &format!("{ORIGIN}\n5\nbad root\n\n\u{2014} {ORIGIN} AAAAAAA=\n")),
    ] {
        let (status, _, msg) = post(&w, b.clone()).await;
        assert_eq!(status, 400, "{b:?}: {msg}");
    }
    // 400: old size above the checkpoint's size.
    let (status, _, msg) = post(&w, body(6, &[], &signed(ORIGIN, &t, 5))).await;
    assert_eq!((status, msg.as_str()), (400, "old size 6 is larger than the checkpoint size 5\n"));
    // 404: unknown origin.
    let other = tree(TreeHash::Sha256, "o", 3);
    let (status, _, msg) = post(&w, step("example.com/other", &other, 0, 3)).await;
    assert_eq!(status, 404, "{msg}");
    // 403: a known origin not signed by its key (another key of the same name, no signature).
    let impostor = NamedKey::from_seed(ORIGIN, [99; 32]).unwrap();
    let cp = Checkpoint { origin: ORIGIN.into(), size: 5, root: t.root_at(5).unwrap(), extensions: vec![] };
    let (status, _, msg) = post(&w, body(0, &[], &cp.sign(&impostor))).await;
    assert_eq!(status, 403, "{msg}");
    let forged = signed(ORIGIN, &t, 5).replace(&B64.encode(t.root_at(5).unwrap()), &B64.encode(t.root_at(6).unwrap()));
    let (status, _, msg) = post(&w, body(0, &[], &forged)).await;
    assert_eq!(status, 403, "{msg}");
    // 422: old size 0 needs an empty proof; a size-0 checkpoint needs the empty root.
    let (status, _, msg) = post(&w, body(0, &some, &signed(ORIGIN, &t, 10))).await;
    assert_eq!(status, 422, "{msg}");
    let not_empty = Checkpoint { origin: ORIGIN.into(), size: 0, root: [5; 32], extensions: vec![] };
    let (status, _, msg) = post(&w, body(0, &[], &not_empty.sign(&log_key(ORIGIN)))).await;
    assert_eq!(status, 422, "{msg}");
    assert_eq!(latest(&w, ORIGIN).await, None, "nothing was cosigned");

    assert_eq!(post(&w, step(ORIGIN, &t, 0, 3)).await.0, 200);
    // 409: old size is not the latest cosigned size (here 3), body the size.
    let (status, ct, msg) = post(&w, step(ORIGIN, &t, 5, 10)).await;
    assert_eq!((status, ct.as_deref(), msg.as_str()), (409, Some("text/x.tlog.size"), "3\n"));
    // 422: a proof that does not lead to the new root, or of the wrong length.
    let mut wrong = t.consistency_proof(3, 10).unwrap();
    wrong[0][0] ^= 1;
    let (status, _, msg) = post(&w, body(3, &wrong, &signed(ORIGIN, &t, 10))).await;
    assert_eq!(status, 422, "{msg}");
    let (status, _, msg) = post(&w, body(3, &some[1..], &signed(ORIGIN, &t, 10))).await;
    assert_eq!(status, 422, "{msg}");
    let (status, _, msg) = post(&w, body(3, &[], &signed(ORIGIN, &t, 10))).await;
    assert_eq!(status, 422, "{msg}");
    // The state did not move.
    assert_eq!(size_of(&latest(&w, ORIGIN).await.unwrap()), 3);
    assert_eq!(post(&w, step(ORIGIN, &t, 3, 10)).await.0, 200);
    // GET of an unknown log.
    assert_eq!(latest(&w, "example.com/other").await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_is_refused_and_kept_as_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let w = start(dir.path());
    let a = tree(TreeHash::Sha256, "a", 12);
    let b = tree(TreeHash::Sha256, "b", 12);
    assert_eq!(post(&w, step(ORIGIN, &a, 0, 8)).await.0, 200);
    let cosigned = latest(&w, ORIGIN).await.unwrap();

    // The same size with another root, signed by the log: 409 with the size, and evidence.
    let fork = body(8, &[], &signed(ORIGIN, &b, 8));
    let (status, ct, msg) = post(&w, fork.clone()).await;
    assert_eq!((status, ct.as_deref(), msg.as_str()), (409, Some("text/x.tlog.size"), "8\n"));
    // Even when the old size claims to be elsewhere.
    let (status, _, _) = post(&w, body(0, &[], &signed(ORIGIN, &b, 8))).await;
    assert_eq!(status, 409);
    // A larger tree of the other branch with its own (valid for it) proof: 422, and evidence.
    let grown = body(8, &b.consistency_proof(8, 12).unwrap(), &signed(ORIGIN, &b, 12));
    let (status, _, msg) = post(&w, grown.clone()).await;
    assert_eq!(status, 422, "{msg}");

    let ev = evidence_files(dir.path());
    assert_eq!(ev.len(), 3, "{ev:?}");
    assert!(ev.iter().any(
        |e| e.starts_with("# refused with 409: size 8 was cosigned with another root hash\n") && e.ends_with(&fork)
    ));
    assert!(ev.iter().any(|e| e.starts_with("# refused with 422: bad consistency proof") && e.ends_with(&grown)));
    // Unsigned forks are not evidence (403), nor are stale old sizes (409 without a fork).
    let impostor = NamedKey::from_seed(ORIGIN, [99; 32]).unwrap();
    let cp = Checkpoint { origin: ORIGIN.into(), size: 8, root: b.root_at(8).unwrap(), extensions: vec![] };
    assert_eq!(post(&w, body(8, &[], &cp.sign(&impostor))).await.0, 403);
    assert_eq!(post(&w, step(ORIGIN, &a, 5, 12)).await.0, 409);
    assert_eq!(evidence_files(dir.path()).len(), 3);
    assert_eq!(latest(&w, ORIGIN).await.unwrap(), cosigned, "the state is the first branch's");
    assert_eq!(post(&w, step(ORIGIN, &a, 8, 12)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_submissions_never_move_the_state_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let w = std::sync::Arc::new(start(dir.path()));
    const N: u64 = 60;
    let t = std::sync::Arc::new(tree(TreeHash::Blake3, "c", N));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    // A monitor polling the served checkpoint: sizes never decrease.
    let watcher = {
        let (w, done) = (w.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(note) = latest(&w, ORIGIN_B3).await {
                    seen.push(size_of(&note));
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    // Eight submitters, each walking its own targets (some smaller than others' latest), each
    // learning the witness's size from a 409 and proving from there.
    let mut tasks = Vec::new();
    for k in 0..8u64 {
        let (w, t) = (w.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let (mut cosigned, mut conflicts) = (Vec::new(), 0);
            let mut old = 0;
            for target in (1..=N).filter(|s| (s + k) % 3 == 0 || *s == N) {
                loop {
                    if old > target {
                        break;
                    }
                    let (status, ct, msg) = post(&w, step(ORIGIN_B3, &t, old, target)).await;
                    match status {
                        200 => {
                            cosigned.push(target);
                            old = target;
                            break;
                        }
                        409 => {
                            assert_eq!(ct.as_deref(), Some("text/x.tlog.size"));
                            old = msg.trim_end().parse().unwrap();
                            conflicts += 1;
                        }
                        s => panic!("{s}: {msg}"),
                    }
                }
            }
            (cosigned, conflicts)
        }));
    }
    let (mut all, mut conflicts) = (Vec::new(), 0);
    for t in tasks {
        let (c, n) = t.await.unwrap();
        all.extend(c);
        conflicts += n;
    }
    // All eight start from size 0: every one but the first to be cosigned learns the size from a 409.
    assert!(conflicts >= 7, "{conflicts} conflicts");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = watcher.await.unwrap();
    assert!(seen.windows(2).all(|p| p[0] <= p[1]), "{seen:?}");
    assert!(all.contains(&N));
    assert_eq!(size_of(&latest(&w, ORIGIN_B3).await.unwrap()), N);
    assert!(evidence_files(dir.path()).is_empty());
}
