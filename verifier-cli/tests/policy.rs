//! `--policy FILE` (SPEC §8) through the binary: receipts, packs and the monitor, their
//! checkpoints cosigned by three test witnesses, judged by a 2-of-3 C2SP trust policy. Two or
//! three cosignatures pass; one fails naming the step `witness quorum` and the witnesses that did
//! and did not cosign; a tampered cosignature does not count; without `--policy` nothing changes;
//! a malformed policy or one whose `log` lines disagree with `--log` is an error (exit 2).

mod common;

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use common::*;
use ledger_core::checkpoint::Note;
use ledger_core::{Cosignature, NamedKey, Receipt, WitnessKey, pack};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn witness(i: u8) -> NamedKey {
    NamedKey::from_seed(&format!("witness.example/w{i}"), [40 + i; 32]).unwrap()
}

fn recently() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 60
}

/// The 2-of-3 policy, with `extra` lines first, written to `dir/name`.
fn policy_file(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let mut text = format!("# three test witnesses, any two\n{extra}");
    for i in 1..=3 {
        text.push_str(&format!("witness w{i} {}\n", WitnessKey::of(&witness(i))));
    }
    text.push_str("group two-of-three 2 w1 w2 w3\nquorum two-of-three\n");
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `note` with cosignature lines of the witnesses `who`; a negative number is that witness's
/// cosignature with one signature bit flipped.
fn cosign(note: &str, who: &[i8]) -> String {
    let text = Note::parse(note).unwrap().text().to_string();
    let mut out = note.to_string();
    for &i in who {
        let mut c = Cosignature::sign(&text, &witness(i.unsigned_abs()), recently()).unwrap();
        if i < 0 {
            c.signature[10] ^= 4;
        }
        out.push_str(&c.to_line());
    }
    out
}

fn receipt(file: &Path, log: &Path, policy: Option<&Path>) -> (i32, String, String) {
    let mut args: Vec<&OsStr> = vec!["receipt".as_ref(), file.as_os_str(), "--log".as_ref(), log.as_os_str()];
    if let Some(p) = policy {
        args.extend(["--policy".as_ref(), p.as_os_str()]);
    }
    run(&args)
}

#[test]
fn receipts_under_a_two_of_three_policy() {
    let dir = tempfile::tempdir().unwrap();
    let log = repo("testdata/golden/log-sha256.json");
    let golden = Receipt::from_json(&std::fs::read(repo("testdata/golden/receipt-1.1-sha256.json")).unwrap()).unwrap();
    let policy = policy_file(dir.path(), "policy.txt", "");
    let with = |name: &str, who: &[i8]| {
        let mut r = golden.clone();
        r.checkpoint = cosign(&r.checkpoint, who);
        let path = dir.path().join(name);
        std::fs::write(&path, r.to_json()).unwrap();
        path
    };

    for (name, who) in [("two", &[1, 3][..]), ("three", &[3, 2, 1])] {
        let (code, out, err) = receipt(&with(name, who), &log, Some(&policy));
        assert_eq!(code, 0, "{name}: {err}");
        assert!(out.contains("valid"), "{out}");
    }

    let one = with("one", &[2]);
    let (code, _, err) = receipt(&one, &log, Some(&policy));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("receipt step 1 (witness quorum) failed"), "{err}");
    assert!(err.contains("cosigned by [w2], not by [w1 (no cosignature), w3 (no cosignature)]"), "{err}");

    let tampered = with("tampered", &[1, -2]);
    let (code, _, err) = receipt(&tampered, &log, Some(&policy));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cosigned by [w1], not by [w2 (bad signature), w3 (no cosignature)]"), "{err}");

    // As JSON, the verdict is invalid and the message the same.
    let (code, out, _) = run(&[
        "receipt".as_ref(),
        one.as_os_str(),
        "--log".as_ref(),
        log.as_os_str(),
        "--policy".as_ref(),
        policy.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "invalid");
    assert!(v["error"].as_str().unwrap().contains("witness quorum"), "{v}");

    // Without --policy, cosignatures (good, missing or tampered) change nothing.
    for path in [one, tampered, repo("testdata/golden/receipt-1.1-sha256.json")] {
        let (code, _, err) = receipt(&path, &log, None);
        assert_eq!(code, 0, "{}: {err}", path.display());
    }
}

#[test]
fn bad_policies_are_errors_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = repo("testdata/golden/log-sha256.json");
    let r = repo("testdata/golden/receipt-1.1-sha256.json");

    let malformed = dir.path().join("malformed.txt");
    let w1 = WitnessKey::of(&witness(1));
    std::fs::write(&malformed, format!("# fine\nwitness w1 {w1}\ngroup g 1 w1 w9\nquorum g\n")).unwrap();
    let (code, _, err) = receipt(&r, &log, Some(&malformed));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unchecked") && err.contains("malformed.txt") && err.contains("line 3"), "{err}");

    let missing = dir.path().join("absent.txt");
    let (code, _, err) = receipt(&r, &log, Some(&missing));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("absent.txt"), "{err}");

    // A policy whose log lines name another key than the trusted descriptor's.
    let other = NamedKey::from_seed("test.a2a-ledger.example/log", [7; 32]).unwrap().verifier();
    let foreign = policy_file(dir.path(), "foreign.txt", &format!("log {other}\n"));
    let (code, _, err) = receipt(&r, &log, Some(&foreign));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("foreign.txt") && err.contains("log lines name") && err.contains(&other.to_string()), "{err}");

    // One that lists the trusted key agrees.
    let vkey = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&log).unwrap()).unwrap()["vkey"]
        .as_str()
        .unwrap()
        .to_string();
    let agreeing = policy_file(dir.path(), "agreeing.txt", &format!("log {vkey}\n"));
    let mut cosigned = Receipt::from_json(&std::fs::read(&r).unwrap()).unwrap();
    cosigned.checkpoint = cosign(&cosigned.checkpoint, &[1, 2]);
    let path = dir.path().join("cosigned.json");
    std::fs::write(&path, cosigned.to_json()).unwrap();
    let (code, _, err) = receipt(&path, &log, Some(&agreeing));
    assert_eq!(code, 0, "{err}");
}

/// The pack's files with its checkpoint cosigned by `who` and the manifest's hash of it updated.
fn cosigned_pack(files: &[(String, Vec<u8>)], who: &[i8]) -> Vec<(String, Vec<u8>)> {
    let note = String::from_utf8(files.iter().find(|(n, _)| n == pack::CHECKPOINT).unwrap().1.clone()).unwrap();
    let note = cosign(&note, who);
    let mut out = files.to_vec();
    for (name, bytes) in &mut out {
        if name == pack::CHECKPOINT {
            *bytes = note.clone().into_bytes();
        } else if name == pack::MANIFEST {
            let mut m: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            m["files"][pack::CHECKPOINT] = blake3::hash(note.as_bytes()).to_hex().to_string().into();
            *bytes = serde_json::to_vec(&m).unwrap();
        }
    }
    out
}

#[test]
fn packs_under_a_two_of_three_policy() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_runs(4);
    let log_json = dir.path().join("log.json");
    std::fs::write(&log_json, serde_json::to_vec(log.descriptor()).unwrap()).unwrap();
    let policy = policy_file(dir.path(), "policy.txt", "");
    let files = pack_files(&log, 0, log.durable_size());
    let verify = |name: &str, who: &[i8], policy: Option<&Path>| {
        let tar = write_tar(&dir.path().join(format!("{name}.tar")), &cosigned_pack(&files, who));
        let mut args: Vec<&OsStr> = vec!["pack".as_ref(), tar.as_os_str(), "--log".as_ref(), log_json.as_os_str()];
        args.push("--quiet".as_ref());
        if let Some(p) = policy {
            args.extend(["--policy".as_ref(), p.as_os_str()]);
        }
        run(&args)
    };

    for (name, who) in [("two", &[2, 3][..]), ("three", &[1, 2, 3])] {
        let (code, out, err) = verify(name, who, Some(&policy));
        assert_eq!(code, 0, "{name}: {err}");
        assert!(out.contains("valid") && out.contains("4 verified"), "{out}");
    }
    let (code, _, err) = verify("one", &[3], Some(&policy));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("checkpoint: step witness quorum failed"), "{err}");
    assert!(err.contains("cosigned by [w3], not by [w1 (no cosignature), w2 (no cosignature)]"), "{err}");
    let (code, _, err) = verify("tampered", &[-3, 1], Some(&policy));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cosigned by [w1], not by [w2 (no cosignature), w3 (bad signature)]"), "{err}");

    // Without --policy: as before, cosigned or not.
    for (name, who) in [("plain", &[][..]), ("one-plain", &[3]), ("tampered-plain", &[-1])] {
        let (code, _, err) = verify(name, who, None);
        assert_eq!(code, 0, "{name}: {err}");
    }
}

/// A stand-in for a ledger's read endpoints: `/v1/log` and `/v1/checkpoint`, for the monitor's
/// first round (which needs no consistency proof). Answers until the test process ends.
fn serve(descriptor: String, checkpoint: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                line.clear();
            }
            let (status, body) = match request.split(' ').nth(1) {
                Some("/v1/log") => ("200 OK", descriptor.as_str()),
                Some("/v1/checkpoint") => ("200 OK", checkpoint.as_str()),
                _ => ("404 Not Found", ""),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn the_monitor_checks_each_checkpoint_against_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_runs(2);
    let descriptor = serde_json::to_string(log.descriptor()).unwrap();
    let log_json = dir.path().join("log.json");
    std::fs::write(&log_json, &descriptor).unwrap();
    let policy = policy_file(dir.path(), "policy.txt", "");
    let files = pack_files(&log, 0, log.durable_size());
    let note = String::from_utf8(files.iter().find(|(n, _)| n == pack::CHECKPOINT).unwrap().1.clone()).unwrap();

    let monitor = |name: &str, who: &[i8], policy: Option<&Path>| {
        let url = serve(descriptor.clone(), cosign(&note, who));
        let state = dir.path().join(format!("{name}.state.json"));
        let mut args: Vec<&OsStr> = vec![
            "monitor".as_ref(),
            url.as_ref(),
            "--log".as_ref(),
            log_json.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
            "--once".as_ref(),
        ];
        if let Some(p) = policy {
            args.extend(["--policy".as_ref(), p.as_os_str()]);
        }
        let (code, out, err) = run(&args);
        (code, out, err, state)
    };

    let (code, out, err, state) = monitor("two", &[1, 2], Some(&policy));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("verified"), "{out}");
    assert!(state.exists());

    // A server serving checkpoints without cosignatures fails every round under this policy.
    for (name, who) in [("none", &[][..]), ("one", &[1]), ("tampered", &[1, -2])] {
        let (code, _, err, state) = monitor(name, who, Some(&policy));
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.contains("WITNESS QUORUM") && err.contains("does not satisfy the trust policy"), "{err}");
        assert!(err.contains("witness quorum not met: cosigned by ["), "{err}");
        assert!(!state.exists(), "{name}: a checkpoint that fails the policy is not recorded");
        assert!(err.contains("evidence written to"), "{err}");
    }
    let (_, _, err, _) = monitor("tampered-again", &[1, -2], Some(&policy));
    assert!(err.contains("cosigned by [w1], not by [w2 (bad signature), w3 (no cosignature)]"), "{err}");

    // Without --policy the same uncosigned checkpoint is followed as before.
    let (code, _, err, state) = monitor("plain", &[], None);
    assert_eq!(code, 0, "{err}");
    assert!(state.exists());
}
