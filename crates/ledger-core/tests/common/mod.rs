//! Helpers shared by the integration tests: deterministic keys and realistic runs.
#![allow(dead_code)]

use ledger_core::entry::Protocol;
use ledger_core::seal::seal_event;
use ledger_core::{Entry, Event, NamedKey, RunId, RunStatus, TreeHash};

pub const T0: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

pub fn log_key() -> NamedKey {
    NamedKey::from_seed("test.a2a-ledger.example/log", [0x11; 32]).unwrap()
}

pub fn gateway_key() -> NamedKey {
    NamedKey::from_seed("gateway", [0x22; 32]).unwrap()
}

pub fn entry(run: &str, seq: u64, actor: &str, event: Event) -> Vec<u8> {
    Entry {
        ts: T0 + seq as i64 * 1_000_000,
        run: RunId::new(run).unwrap(),
        seq,
        actor: actor.into(),
        event,
        grant: None,
        payload: None,
    }
    .encode()
}

pub fn identity(key: &NamedKey) -> Vec<u8> {
    entry(&format!("id/{}", key.name()), 0, key.name(), Event::IdentityRegistered { public_key: key.public_key() })
}

/// The events of a run before its seal: accepted, working, `progress` progress steps, an
/// artifact, completed.
pub fn run_events(run: &str, actor: &str, progress: usize) -> Vec<Vec<u8>> {
    let mut events = vec![
        Event::TaskAccepted {
            protocol: Protocol::A2a,
            skill: "summarize".into(),
            caller: "alice@example.com".into(),
            input_hash: *blake3::hash(run.as_bytes()).as_bytes(),
        },
        Event::TaskStatus { state: "working".into(), message: Some("started".into()) },
    ];
    for i in 0..progress {
        events.push(Event::SkillProgress {
            stage: format!("step-{i}"),
            pct: ((i + 1) * 100 / (progress + 1)) as u8,
            message: "making progress on the task".into(),
        });
    }
    events.push(Event::ArtifactAdded {
        name: "summary.md".into(),
        media_type: "text/markdown".into(),
        bytes: 1234,
        hash: *blake3::hash(b"summary").as_bytes(),
    });
    events.push(Event::TaskEnded {
        status: RunStatus::Completed,
        elapsed_ms: 420,
        artifacts: vec!["summary.md".into()],
        error: None,
    });
    events.into_iter().enumerate().map(|(seq, ev)| entry(run, seq as u64, actor, ev)).collect()
}

/// A whole run, sealed by `key`.
pub fn sealed_run(h: TreeHash, run: &str, key: &NamedKey, progress: usize) -> Vec<Vec<u8>> {
    let mut entries = run_events(run, key.name(), progress);
    let seal = seal_event(h, run, &entries, RunStatus::Completed, key);
    entries.push(entry(run, entries.len() as u64, key.name(), seal));
    entries
}
