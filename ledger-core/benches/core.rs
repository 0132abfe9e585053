//! Function-level benchmarks of ledger-core, each beside the floor it is judged against,
//! measured in the same run (see BENCHMARKS.md for the figures and targets).
//!
//! Run: `cargo bench -p ledger-core --bench core`

use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ledger_core::entry::Protocol;
use ledger_core::{
    Entry, Event, Hash, Log, LogConfig, MemStore, MemTree, NamedKey, ReceiptVerifier, RunId, RunStatus, Store,
    TreeHash, merkle,
};

/// A ~300-byte realistic entry (the size the targets are stated for).
fn sample_entry(i: u64) -> Vec<u8> {
    Entry {
        ts: 1_767_225_600_000_000_000 + i as i64,
        run: RunId::new(format!("run-{:012}", i / 12)).unwrap(),
        seq: i % 12,
        actor: "gateway".into(),
        event: Event::TaskAccepted {
            protocol: Protocol::A2a,
            skill: "research.summarize-sources-and-cite".into(),
            caller: format!("user-{i:08}@tenant-0042.example.com"),
            input_hash: *blake3::hash(&i.to_le_bytes()).as_bytes(),
            context: None,
            parent: None,
        },
        grant: Some(format!("grant-{i:016x}-{i:016x}")),
        payload: Some(*blake3::hash(b"payload").as_bytes()),
    }
    .encode()
}

fn entries(c: &mut Criterion) {
    let bytes = sample_entry(7);
    let entry = Entry::decode(&bytes).unwrap();
    let mut g = c.benchmark_group("entry");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("encode ({} bytes)", bytes.len()), |b| {
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            out.clear();
            entry.encode_into(&mut out);
            out.len()
        })
    });
    g.bench_function("decode+validate (strict, minicbor)", |b| {
        b.iter(|| Entry::decode(std::hint::black_box(&bytes)).unwrap())
    });
    g.bench_function("check (strict, borrowed view, no copies)", |b| {
        b.iter(|| Entry::check(std::hint::black_box(&bytes)).unwrap().seq())
    });
    g.bench_function("peer: ciborium::Value decode (no validation)", |b| {
        b.iter(|| ciborium::de::from_reader::<ciborium::Value, _>(std::hint::black_box(bytes.as_slice())).unwrap())
    });
    g.finish();
}

const N: usize = 100_000;

fn tree(c: &mut Criterion) {
    let h = TreeHash::Blake3;
    let es: Vec<Vec<u8>> = (0..N as u64).map(sample_entry).collect();
    let leaves: Vec<Hash> = es.iter().map(|e| h.leaf(e)).collect();
    let mut g = c.benchmark_group("tree");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("floor: BLAKE3 node hash (65 bytes)", |b| {
        b.iter(|| {
            let mut acc = [0u8; 32];
            for l in &leaves {
                acc = h.node(&acc, l);
            }
            acc
        })
    });
    g.bench_function("append from leaf hashes", |b| {
        b.iter_batched(
            || MemTree::new(h),
            |mut t| {
                for l in &leaves {
                    t.push_leaf_hash(*l);
                }
                t.size()
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("floor: BLAKE3 leaf hash of the entries", |b| {
        b.iter(|| es.iter().fold(0u8, |acc, e| acc ^ h.leaf(e)[0]))
    });
    g.bench_function("append entries (leaf hash + append)", |b| {
        b.iter_batched(
            || MemTree::new(h),
            |mut t| {
                for e in &es {
                    t.push_entry(e);
                }
                t.size()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let h = TreeHash::Blake3;
    let mut t = MemTree::new(h);
    for i in 0..1_000_000u64 {
        t.push_leaf_hash(h.digest(&i.to_le_bytes()));
    }
    let n = t.size();
    let root = t.root();
    let mut g = c.benchmark_group("proof (1M leaves)");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("inclusion: generate", |b| {
        b.iter(|| {
            i = (i + 7919) % n;
            t.inclusion_proof(i, n).unwrap()
        })
    });
    let idx = 123_457;
    let proof = t.inclusion_proof(idx, n).unwrap();
    let leaf = h.digest(&idx.to_le_bytes());
    g.bench_function("inclusion: verify", |b| {
        b.iter(|| merkle::verify_inclusion(h, idx, n, &leaf, &proof, &root).unwrap())
    });
    let old = 654_321;
    let cproof = t.consistency_proof(old, n).unwrap();
    let old_root = t.root_at(old).unwrap();
    g.bench_function("consistency: generate", |b| b.iter(|| t.consistency_proof(old, n).unwrap()));
    g.bench_function("consistency: verify", |b| {
        b.iter(|| merkle::verify_consistency(h, old, n, &old_root, &root, &cproof).unwrap())
    });
    g.finish();
}

fn receipts(c: &mut Criterion) {
    // A log of 1M entries would make proofs 20 deep; use one of 2^17 + runs of 6 entries.
    let cfg = LogConfig { checkpoint_interval: Duration::from_secs(3600), ..LogConfig::default() };
    let log_key = NamedKey::from_seed("bench/log", [1; 32]).unwrap();
    let log = Log::open(Arc::new(MemStore::new()) as Arc<dyn Store>, log_key, cfg).unwrap();
    let key = NamedKey::from_seed("gateway", [2; 32]).unwrap();
    let mk = |run: &str, seq: u64, event: Event| {
        Entry { ts: 1, run: RunId::new(run).unwrap(), seq, actor: "gateway".into(), event, grant: None, payload: None }
            .encode()
    };
    log.append(vec![mk("id/gateway", 0, Event::IdentityRegistered { public_key: key.public_key() })]).unwrap();
    let runs = 20_000;
    let mut batch = Vec::new();
    for r in 0..runs {
        let run = format!("run-{r}");
        let mut es: Vec<Vec<u8>> = (0..5)
            .map(|s| {
                mk(
                    &run,
                    s,
                    Event::SkillProgress { stage: "s".into(), pct: 50, message: "a realistic progress message".into() },
                )
            })
            .collect();
        let seal = ledger_core::seal::seal_event(log.hash(), &run, &es, RunStatus::Completed, &key);
        es.push(mk(&run, 5, seal));
        batch.extend(es);
        if batch.len() >= 6000 {
            log.append(std::mem::take(&mut batch)).unwrap();
        }
    }
    log.append(batch).unwrap();
    log.sign_checkpoint().unwrap();
    let receipts: Vec<_> = (0..1000).map(|r| log.receipt(&format!("run-{}", r * (runs / 1000))).unwrap()).collect();
    let mut verifier = ReceiptVerifier::new(log.descriptor().clone()).unwrap();
    let mut g = c.benchmark_group("receipt (6 entries, 120k-entry log)");
    g.throughput(Throughput::Elements(1));
    let vk = key.verifier();
    let msg =
        b"a2a-ledger/seal/v1\nrun-1\n5\n0000000000000000000000000000000000000000000000000000000000000000\ncompleted\n";
    let sig = key.sign(msg);
    g.bench_function("floor: Ed25519 verify_strict", |b| b.iter(|| assert!(vk.verify(msg, &sig))));
    let mut k = 0;
    g.bench_function("verify (checkpoint cached)", |b| {
        b.iter(|| {
            k = (k + 1) % receipts.len();
            verifier.verify(&receipts[k]).unwrap()
        })
    });
    g.bench_function("build from the log (in memory) and write JSON", |b| {
        b.iter(|| {
            k = (k + 1) % receipts.len();
            log.receipt(&format!("run-{}", k * (runs / 1000))).unwrap().to_json().len()
        })
    });
    g.bench_function("write JSON", |b| {
        b.iter(|| {
            k = (k + 1) % receipts.len();
            receipts[k].to_json().len()
        })
    });
    g.bench_function("peer: write JSON through serde_json", |b| {
        b.iter(|| {
            k = (k + 1) % receipts.len();
            serde_json::to_string(&receipts[k]).unwrap().len()
        })
    });
    let json: Vec<String> = receipts.iter().map(|r| r.to_json()).collect();
    g.bench_function("parse JSON + verify (checkpoint cached)", |b| {
        b.iter(|| {
            k = (k + 1) % json.len();
            verifier.verify_json(json[k].as_bytes()).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, entries, tree, proofs, receipts);
criterion_main!(benches);
