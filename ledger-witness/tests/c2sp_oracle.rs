//! The witness against independent C2SP code, Cloudflare's `signed_note` and `tlog_tiles` (azul):
//! a `sha256` log built, proven and signed entirely by their code (records hashed and stored by
//! `tlog_tiles`, consistency proofs by its `prove_tree`, checkpoints framed by its `Checkpoint`
//! and signed by `signed_note`'s Ed25519 signer) is cosigned by the real `ledger-witness` binary
//! over HTTP, and every cosignature line it answers is parsed by `signed_note` and verified by a
//! `cosignature/v1` verifier on `signed_note`'s `Verifier` trait.
//!
//! `signed_note` 0.2 has no `cosignature/v1` verifier of its own (only signed-note Ed25519, type
//! 0x01), so that verifier is written here from the C2SP `tlog-cosignature` text: the key id of
//! `0x04 || key` computed by `signed_note::key_id`, the message `cosignature/v1\ntime <t>\n` +
//! note text, strict Ed25519, apart from `ledger_core::witness`.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_core::{LogDescriptor, NamedKey, TreeHash, VerifierKey};
use signed_note::{Note, StandardSigner, StandardVerifier, Verifier, VerifierList};
use tlog_tiles::{Checkpoint, Hash, HashReader, TreeProof};

const ORIGIN: &str = "oracle.example/log";
const LOG_SEED: [u8; 32] = [0x51; 32];

/// The witness binary, killed on drop.
struct Running {
    child: Child,
    url: String,
    vkey: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, descriptor: &LogDescriptor) -> Running {
    let log = dir.join("log.json");
    std::fs::write(&log, serde_json::to_string(descriptor).unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ledger-witness"))
        .arg("--data")
        .arg(dir.join("data"))
        .args(["--listen", "127.0.0.1:0", "--name", "witness.example/oracle"])
        .arg("--log")
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let vkey = first.trim_end().strip_prefix("witness vkey ").expect(&first).to_string();
    let addr = second.trim_end().strip_prefix("listening on ").expect(&second).to_string();
    Running { child, url: format!("http://{addr}"), vkey }
}

/// A log kept by `tlog_tiles`: stored hashes in memory, as its `stored_hashes` makes them.
#[derive(Default)]
struct TlogLog {
    stored: Mutex<Vec<Hash>>,
    size: u64,
}

impl HashReader for TlogLog {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let stored = self.stored.lock().unwrap();
        indexes.iter().map(|&i| stored.get(i as usize).copied().ok_or(tlog_tiles::Error::IndexesNotInTree)).collect()
    }
}

impl TlogLog {
    fn append(&mut self, record: &[u8]) {
        let hashes = tlog_tiles::stored_hashes(self.size, record, self).unwrap();
        self.stored.lock().unwrap().extend(hashes);
        self.size += 1;
    }

    fn root(&self) -> Hash {
        tlog_tiles::tree_hash(self.size, self).unwrap()
    }

    /// The checkpoint note at the current size, framed by `tlog_tiles` and signed by `signed_note`.
    fn note(&self) -> String {
        let text = Checkpoint::new(ORIGIN, self.size, self.root(), "").unwrap().to_bytes();
        let mut note = Note::new(&text, &[]).unwrap();
        note.add_sigs(&[&log_signer()]).unwrap();
        String::from_utf8(note.to_bytes()).unwrap()
    }

    fn proof(&self, old: u64) -> TreeProof {
        if old == 0 { vec![] } else { tlog_tiles::prove_tree(self.size, old, self).unwrap() }
    }
}

/// The log's key as `signed_note` reads it: `PRIVATE+KEY+<name>+<id>+<base64(0x01 || seed)>`.
fn log_signer() -> StandardSigner {
    let vkey = log_vkey();
    let id = vkey.split('+').nth(1).unwrap();
    let mut raw = vec![0x01];
    raw.extend_from_slice(&LOG_SEED);
    StandardSigner::new(&format!("PRIVATE+KEY+{ORIGIN}+{id}+{}", B64.encode(raw))).unwrap()
}

fn log_vkey() -> String {
    NamedKey::from_seed(ORIGIN, LOG_SEED).unwrap().verifier().to_string()
}

/// A `cosignature/v1` verifier on `signed_note`'s trait, from a witness vkey
/// `<name>+<id>+<base64(0x04 || key)>`, written from C2SP `tlog-cosignature`.
struct CosignatureV1 {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
    /// The timestamps of the lines this verifier accepted.
    seen: Mutex<Vec<u64>>,
}

impl CosignatureV1 {
    fn new(vkey: &str) -> CosignatureV1 {
        let mut parts = vkey.splitn(3, '+');
        let (name, id, key) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let raw = B64.decode(key).unwrap();
        assert_eq!(raw[0], 0x04, "a cosignature/v1 key is of type 0x04");
        assert!(signed_note::is_key_name_valid(name));
        let computed = signed_note::key_id(name, &raw);
        assert_eq!(format!("{computed:08x}"), id, "signed_note computes the key id the witness printed");
        let key = ed25519_dalek::VerifyingKey::from_bytes(raw[1..].try_into().unwrap()).unwrap();
        CosignatureV1 { name: name.into(), id: computed, key, seen: Mutex::new(vec![]) }
    }
}

impl Verifier for CosignatureV1 {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(raw) = <[u8; 72]>::try_from(sig) else { return false };
        let timestamp = u64::from_be_bytes(raw[..8].try_into().unwrap());
        let mut m = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
        m.extend_from_slice(msg);
        let sig = ed25519_dalek::Signature::from_bytes(raw[8..].try_into().unwrap());
        let ok = timestamp < 1 << 63 && self.key.verify_strict(&m, &sig).is_ok();
        if ok {
            self.seen.lock().unwrap().push(timestamp);
        }
        ok
    }
}

async fn add_checkpoint(w: &Running, old: u64, proof: &[Hash], note: &str) -> (u16, String) {
    let mut body = format!("old {old}\n");
    for h in proof {
        body.push_str(&B64.encode(h.0));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    let r = reqwest::Client::new().post(format!("{}/add-checkpoint", w.url)).body(body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_cosigns_checkpoints_that_tlog_tiles_and_signed_note_make() {
    let dir = tempfile::tempdir().unwrap();
    let vkey: VerifierKey = log_vkey().parse().unwrap();
    // signed_note reads our log vkey as its own kind of key: the witness and the oracle agree on it.
    assert_eq!(StandardVerifier::new(&log_vkey()).unwrap().key_id(), u32::from_be_bytes(vkey.id()));
    let w = start(dir.path(), &LogDescriptor::new(&vkey, TreeHash::Sha256));

    let mut log = TlogLog::default();
    let mut cosigned = 0;
    // Sizes that cross tile and power-of-two boundaries, starting from the empty tree.
    for target in [0u64, 1, 2, 7, 8, 255, 256, 257, 700] {
        while log.size < target {
            log.append(format!("record {}", log.size).as_bytes());
        }
        let note = log.note();
        let before = unix_now();
        let (status, lines) = add_checkpoint(&w, cosigned, &log.proof(cosigned), &note).await;
        assert_eq!(status, 200, "size {target}: {lines}");
        assert_eq!(lines.lines().count(), 1, "one cosignature line: {lines}");

        // signed_note parses the line and the cosigned note; our verifier on its trait accepts it.
        let sig = signed_note::Signature::from_bytes(lines.trim_end().as_bytes()).unwrap();
        let oracle = CosignatureV1::new(&w.vkey);
        assert_eq!((sig.name(), sig.id()), (oracle.name.as_str(), oracle.id));
        assert_eq!(sig.signature().len(), 72, "timestamp and signature");
        let full = format!("{note}{lines}");
        let parsed = Note::from_bytes(full.as_bytes()).unwrap();
        let list = VerifierList::new(vec![Box::new(oracle), Box::new(StandardVerifier::new(&log_vkey()).unwrap())]);
        let (verified, unverified) = parsed.verify(&list).unwrap();
        assert_eq!((verified.len(), unverified.len()), (2, 0), "size {target}: the log's line and the witness's");
        // The timestamp is the witness's clock now (seconds), not far off.
        let ts = u64::from_be_bytes(sig.signature()[..8].try_into().unwrap());
        assert!((before..=unix_now() + 1).contains(&ts), "timestamp {ts} at {before}");

        // tlog_tiles parses the checkpoint the witness now serves as its latest.
        let latest = reqwest::get(format!("{}/checkpoint/{ORIGIN}", w.url)).await.unwrap().text().await.unwrap();
        let latest = Note::from_bytes(latest.as_bytes()).unwrap();
        let cp = Checkpoint::from_bytes(latest.text()).unwrap();
        assert_eq!((cp.origin(), cp.size(), *cp.hash()), (ORIGIN, target, log.root()));
        cosigned = target;
    }

    // A checkpoint of another tree of the same size (a fork made by the same code): 409, no line.
    let mut fork = TlogLog::default();
    for i in 0..cosigned {
        fork.append(format!("forked {i}").as_bytes());
    }
    let (status, body) = add_checkpoint(&w, cosigned, &[], &fork.note()).await;
    assert_eq!((status, body.trim_end()), (409, cosigned.to_string().as_str()));

    // A consistency proof from tlog_tiles with one hash changed: 422.
    for i in 0..100 {
        log.append(format!("more {i}").as_bytes());
    }
    let mut proof = log.proof(cosigned);
    proof[0].0[0] ^= 1;
    let (status, _) = add_checkpoint(&w, cosigned, &proof, &log.note()).await;
    assert_eq!(status, 422);
    // The untouched proof from the same code: cosigned.
    let (status, _) = add_checkpoint(&w, cosigned, &log.proof(cosigned), &log.note()).await;
    assert_eq!(status, 200);
}
