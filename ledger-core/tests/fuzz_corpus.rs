//! The fuzz targets' checks over the checked-in corpus (`fuzz/corpus/<target>/seed-*`): seed
//! inputs and every crash input a fuzzer ever found, kept as regression tests.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds for {target}");
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

#[test]
fn entry_decode_corpus() {
    let mut accepted = 0;
    for (_, data) in corpus("entry_decode") {
        checks::entry_decode(&data);
        accepted += usize::from(ledger_core::Entry::decode(&data).is_ok());
    }
    assert!(accepted >= 22, "the seeds are valid entries of every kind, and the 1.1 shapes");
}

/// The near misses of SPEC 1.1 in the corpus (`seed-1.1-bad-*`) are refused, each for its own
/// reason, so that a fuzzer starting from them starts at the edge of each rule.
#[test]
fn entry_decode_near_misses_of_revision_1_1() {
    use ledger_core::Error;
    let mut seen = 0;
    for (path, data) in corpus("entry_decode") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(what) = name.strip_prefix("seed-1.1-bad-") else { continue };
        let err = ledger_core::Entry::decode(&data).expect_err(&name);
        let key = match &err {
            Error::BadValue { key, .. } => key.as_str(),
            Error::NotCanonical { what, .. } => what,
            other => panic!("{name}: {other}"),
        };
        let expected = match what {
            "key-order" => "map keys not in canonical order",
            "empty-context" | "long-context" => "context",
            "parent" => "parent",
            "erasure-run" => "run",
            "erasure-seq" => "seq",
            "erasure-hash31" => "hash",
            other => panic!("no expectation for {other}"),
        };
        assert_eq!(key, expected, "{name}: {err}");
        seen += 1;
    }
    assert_eq!(seen, 7);
}

#[test]
fn checkpoint_parse_corpus() {
    for (_, data) in corpus("checkpoint_parse") {
        checks::checkpoint_parse(&data);
    }
}

#[test]
fn receipt_verify_corpus() {
    for (_, data) in corpus("receipt_verify") {
        checks::receipt_verify(&data);
    }
}

#[test]
fn proof_verify_corpus() {
    for (_, data) in corpus("proof_verify") {
        checks::proof_verify(&data);
    }
}

#[test]
fn pack_verify_corpus() {
    let log: ledger_core::LogDescriptor =
        serde_json::from_str(include_str!("../../testdata/golden/log-blake3.json")).unwrap();
    let mut accepted = 0;
    for (_, data) in corpus("pack_verify") {
        checks::pack_verify(&data);
        let Some((_, [m, c, p], entries)) = checks::split_pack_input(&data) else { continue };
        let ok = ledger_core::pack::PackVerifier::new(&log, m, c, p)
            .and_then(|mut v| v.entries_bin(entries).map(|_| v))
            .and_then(|v| v.finish());
        accepted += usize::from(ok.is_ok());
    }
    assert!(accepted >= 2, "the seeds are valid packs");
}

#[test]
fn policy_parse_corpus() {
    let mut accepted = 0;
    for (path, data) in corpus("policy_parse") {
        checks::policy_parse(&data);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let ok = ledger_core::Policy::parse(&data).is_ok();
        assert_eq!(ok, !name.starts_with("seed-bad-"), "{name}");
        accepted += usize::from(ok);
    }
    assert!(accepted >= 3, "the seeds hold valid policies");
}

#[test]
fn cosignature_line_corpus() {
    let mut accepted = 0;
    for (path, data) in corpus("cosignature_line") {
        checks::cosignature_line(&data);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let ok = ledger_core::Cosignature::parse_line(std::str::from_utf8(&data).unwrap()).is_ok();
        assert_eq!(ok, !name.starts_with("seed-bad-"), "{name}");
        accepted += usize::from(ok);
    }
    assert_eq!(accepted, 2, "the seeds hold two valid lines");
}

#[test]
fn bus_batch_corpus() {
    let mut accepted = 0;
    for (_, data) in corpus("bus_batch") {
        checks::bus_batch(&data);
        accepted += usize::from(ledger_core::bus::decode_batch(&bytes::Bytes::from(data)).is_ok());
    }
    assert!(accepted >= 2, "the seeds hold valid batches");
}
