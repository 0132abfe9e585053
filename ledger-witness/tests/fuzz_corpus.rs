//! The `add_checkpoint` fuzz target's checks (`fuzz/witness_checks.rs`) over its checked-in corpus
//! (`fuzz/corpus/add_checkpoint/seed-*`): the seeds, one per answer of `add-checkpoint`, each named
//! `seed-<status>-<what>` and answered with that status; and any crash input a fuzzer ever found,
//! kept as a regression test. The seeds are made here: `UPDATE_SEEDS=1 cargo test -p
//! ledger-witness --test fuzz_corpus` rewrites them; otherwise a drift fails the test.

#[path = "../../fuzz/witness_checks.rs"]
mod witness_checks;

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_core::{Checkpoint, Cosignature, NamedKey, Note, TreeHash};
use witness_checks::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/add_checkpoint")
}

/// Every seed: `(file name, body)`.
fn seeds() -> Vec<(String, String)> {
    let sha = honest_tree(TreeHash::Sha256, 300);
    let b3 = honest_tree(TreeHash::Blake3, 300);
    let fork = tree(TreeHash::Sha256, 8, "fork");
    let proof = |t: &ledger_core::MemTree, old, new| t.consistency_proof(old, new).unwrap();
    let mut out = vec![
        ("200-sha256-grow", body(SHA256_ORIGIN, &sha, SEEDED, 8, &proof(&sha, SEEDED, 8))),
        ("200-blake3-grow", body(BLAKE3_ORIGIN, &b3, SEEDED, 300, &proof(&b3, SEEDED, 300))),
        ("200-same-checkpoint", body(SHA256_ORIGIN, &sha, SEEDED, SEEDED, &[])),
        ("409-old-size", body(SHA256_ORIGIN, &sha, 0, 8, &[])),
        ("409-fork-same-size", body(SHA256_ORIGIN, &fork, SEEDED, SEEDED, &[])),
        ("422-fork-grown", body(SHA256_ORIGIN, &fork, SEEDED, 8, &proof(&fork, SEEDED, 8))),
        ("400-old-above-size", body(SHA256_ORIGIN, &sha, 9, 8, &[])),
        (
            "400-old-not-canonical",
            body(SHA256_ORIGIN, &sha, SEEDED, 8, &proof(&sha, SEEDED, 8)).replacen("old 5", "old 05", 1),
        ),
        ("400-64-proof-lines", body(BLAKE3_ORIGIN, &b3, SEEDED, 300, &vec![[1; 32]; 64])),
        ("404-unknown-log", {
            let other = "fuzz.example/other-log";
            let cp = Checkpoint { origin: other.into(), size: 8, root: sha.root_at(8).unwrap(), extensions: vec![] };
            format!("old 5\n\n{}", cp.sign(&NamedKey::from_seed(other, [3; 32]).unwrap()))
        }),
    ];
    let mut bad = proof(&sha, SEEDED, 8);
    bad[1][7] ^= 1;
    out.push(("422-bad-proof", body(SHA256_ORIGIN, &sha, SEEDED, 8, &bad)));
    // Signed under the log's name by another key: no line of the log's key verifies.
    let cp = Checkpoint { origin: SHA256_ORIGIN.into(), size: 8, root: sha.root_at(8).unwrap(), extensions: vec![] };
    let note = cp.sign(&NamedKey::from_seed(SHA256_ORIGIN, [4; 32]).unwrap());
    let lines: String = proof(&sha, SEEDED, 8).iter().map(|h| format!("{}\n", B64.encode(h))).collect();
    out.push(("403-other-key", format!("old 5\n{lines}\n{note}")));
    // Another witness's cosignature already on the note: kept, ours added.
    let grown = body(SHA256_ORIGIN, &sha, SEEDED, 9, &proof(&sha, SEEDED, 9));
    let split = grown.find("\n\n").unwrap() + 2;
    let text = Note::parse(&grown[split..]).unwrap().text().to_string();
    let other = Cosignature::sign(&text, &NamedKey::from_seed("other.example/w", [5; 32]).unwrap(), NOW).unwrap();
    out.push(("200-other-cosignature", format!("{grown}{}", other.to_line())));
    out.into_iter().map(|(n, b)| (format!("seed-{n}"), b)).collect()
}

#[test]
fn seeds_are_what_the_code_makes_and_each_gets_its_status() {
    let seeds = seeds();
    if std::env::var_os("UPDATE_SEEDS").is_some() {
        std::fs::create_dir_all(dir()).unwrap();
        for (name, body) in &seeds {
            std::fs::write(dir().join(name), body).unwrap();
        }
    }
    let mut statuses = std::collections::BTreeSet::new();
    for (name, body) in &seeds {
        let stored = std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(stored == body.as_bytes(), "fuzz/corpus/add_checkpoint/{name} drifted (UPDATE_SEEDS=1 rewrites it)");
        let want: u16 = name["seed-".len()..][..3].parse().unwrap();
        assert_eq!(add_checkpoint(body.as_bytes()), want, "{name}");
        statuses.insert(want);
    }
    assert_eq!(statuses.into_iter().collect::<Vec<_>>(), [200, 400, 403, 404, 409, 422], "every answer is seeded");
}

/// Every `seed-*` file of the corpus (the seeds and `seed-regress-*` crash inputs) through the
/// fuzzer's checks.
#[test]
fn the_corpus_passes_the_checks() {
    let mut n = 0;
    for e in std::fs::read_dir(dir()).unwrap() {
        let path = e.unwrap().path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")) {
            add_checkpoint(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    assert!(n >= 13, "{n} files");
}
