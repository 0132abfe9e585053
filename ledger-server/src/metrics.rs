//! Prometheus metrics at `GET /metrics`: ingest rate, batch sizes, acknowledgement and commit
//! latency, tree size, checkpoint age; on a witnessed log, the quorum and each witness.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger_core::{Log, SignedCheckpoint};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The server's metrics; cheap to clone (all handles).
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    entries: Counter,
    batches: Counter,
    batch_entries: Histogram,
    ack_seconds: Histogram,
    commits: Counter,
    syncs: Counter,
    commit_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    tree_size: Gauge,
    checkpoint_size: Gauge,
    checkpoint_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    checkpoints: Counter,
    payload_bytes: Gauge,
    payload_puts: Counter,
    payload_new_bytes: Counter,
    payload_erasures: Counter,
    bus_messages: Family<Vec<(String, String)>, Counter>,
    bus_refused: Family<Vec<(String, String)>, Counter>,
    signed_size: Gauge,
    quorum_met: Gauge,
    witness_size: Family<Vec<(String, String)>, Gauge>,
    witness_cosignatures: Family<Vec<(String, String)>, Counter>,
    witness_failures: Family<Vec<(String, String)>, Counter>,
    /// When the newest checkpoint was first seen, and the log counters at the last scrape.
    state: Mutex<(Instant, ledger_core::LogStats)>,
    /// Each witness's (cosignatures, failures) at the last scrape.
    witnessed: Mutex<std::collections::HashMap<String, (u64, u64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ledger");
        let entries = Counter::default();
        let batches = Counter::default();
        let batch_entries = Histogram::new(exponential_buckets(1.0, 4.0, 9));
        let ack_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let commits = Counter::default();
        let syncs = Counter::default();
        let commit_seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        let tree_size = Gauge::default();
        let checkpoint_size = Gauge::default();
        let checkpoint_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let checkpoints = Counter::default();
        registry.register("ingest_entries", "Entries acknowledged to ingest clients", entries.clone());
        registry.register("ingest_batches", "Batches acknowledged to ingest clients", batches.clone());
        registry.register("ingest_batch_entries", "Entries per acknowledged batch", batch_entries.clone());
        registry.register(
            "ingest_ack_seconds",
            "Time from receiving a batch to acknowledging it durable",
            ack_seconds.clone(),
        );
        registry.register("commits", "Groups committed by the sequencer (one write batch each)", commits.clone());
        registry.register(
            "syncs",
            "Syncs of the write-ahead log (each covers every group written before it)",
            syncs.clone(),
        );
        registry.register(
            "commit_seconds",
            "Summed over committed groups: time from the start of its write to the end of the sync that made it durable",
            commit_seconds.clone(),
        );
        registry.register("tree_size", "Durable tree size", tree_size.clone());
        registry.register("checkpoint_size", "Tree size of the newest signed checkpoint", checkpoint_size.clone());
        registry.register(
            "checkpoint_age_seconds",
            "Seconds since the newest checkpoint was signed (since start for the first)",
            checkpoint_age.clone(),
        );
        registry.register("checkpoints", "Checkpoints signed", checkpoints.clone());
        let (payload_bytes, payload_puts) = (Gauge::default(), Counter::default());
        let (payload_new_bytes, payload_erasures) = (Counter::default(), Counter::default());
        registry.register(
            "payload_bytes",
            "Bytes of every payload stored (what the quota counts)",
            payload_bytes.clone(),
        );
        registry.register("payload_puts", "Payload uploads acknowledged (new or already stored)", payload_puts.clone());
        registry.register("payload_stored_bytes", "Bytes of payloads newly stored", payload_new_bytes.clone());
        registry.register("payload_erasures", "Payload erasures answered", payload_erasures.clone());
        let (bus_messages, bus_refused) = (Family::default(), Family::default());
        registry.register(
            "bus_messages",
            "Ingest messages applied from the bus, by outcome (appended or refused)",
            bus_messages.clone(),
        );
        registry.register("bus_refused", "Ingest messages refused, by error code", bus_refused.clone());
        let (signed_size, quorum_met) = (Gauge::default(), Gauge::default());
        let witness_size = Family::<Vec<(String, String)>, Gauge>::default();
        let witness_cosignatures = Family::<Vec<(String, String)>, Counter>::default();
        let witness_failures = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "signed_checkpoint_size",
            "Tree size of the newest checkpoint signed (on a witnessed log, possibly not yet served)",
            signed_size.clone(),
        );
        registry.register(
            "witness_quorum_met",
            "1 when the last witness round met the trust policy's quorum, 0 when it did not (witnessed logs only)",
            quorum_met.clone(),
        );
        registry.register("witness_cosigned_size", "The size each witness last cosigned", witness_size.clone());
        registry.register("witness_cosignatures", "Cosignatures received and verified", witness_cosignatures.clone());
        registry.register(
            "witness_failures",
            "Requests to a witness that got no cosignature",
            witness_failures.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                entries,
                batches,
                batch_entries,
                ack_seconds,
                commits,
                syncs,
                commit_seconds,
                tree_size,
                checkpoint_size,
                checkpoint_age,
                checkpoints,
                payload_bytes,
                payload_puts,
                payload_new_bytes,
                payload_erasures,
                bus_messages,
                bus_refused,
                signed_size,
                quorum_met,
                witness_size,
                witness_cosignatures,
                witness_failures,
                state: Mutex::new((Instant::now(), ledger_core::LogStats::default())),
                witnessed: Mutex::new(Default::default()),
            }),
        }
    }
}

impl Metrics {
    /// A batch of `n` entries was acknowledged after `took`.
    pub fn acked(&self, n: usize, took: Duration) {
        let i = &self.inner;
        i.entries.inc_by(n as u64);
        i.batches.inc();
        i.batch_entries.observe(n as f64);
        i.ack_seconds.observe(took.as_secs_f64());
    }

    /// A payload upload of `len` bytes was acknowledged (`created`: newly stored).
    pub fn payload_put(&self, created: bool, len: u64) {
        self.inner.payload_puts.inc();
        if created {
            self.inner.payload_new_bytes.inc_by(len);
        }
    }

    /// Counts one ingest message applied from the bus: appended, or refused with `code`.
    pub fn bus_message(&self, refused: Option<&str>) {
        let outcome = if refused.is_some() { "refused" } else { "appended" };
        self.inner.bus_messages.get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())]).inc();
        if let Some(code) = refused {
            self.inner.bus_refused.get_or_create(&vec![("code".to_owned(), code.to_owned())]).inc();
        }
    }

    /// A payload erasure was answered.
    pub fn payload_erased(&self) {
        self.inner.payload_erasures.inc();
    }

    /// The bytes all stored payloads take.
    pub fn payload_bytes(&self, used: u64) {
        self.inner.payload_bytes.set(i64::try_from(used).unwrap_or(i64::MAX));
    }

    /// A newer checkpoint was signed.
    pub fn checkpoint_signed(&self, cp: &SignedCheckpoint) {
        let i = &self.inner;
        i.checkpoint_size.set(cp.checkpoint.size as i64);
        i.state.lock().unwrap_or_else(|p| p.into_inner()).0 = Instant::now();
    }

    /// The exposition text, with the log's counters (and witnessing's) brought up to date.
    pub fn render(&self, log: &Log, witnessing: Option<&ledger_witness::cosigner::CosignStatus>) -> String {
        let i = &self.inner;
        {
            let mut st = i.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = log.stats();
            let before = st.1;
            i.commits.inc_by(now.batches.saturating_sub(before.batches));
            i.syncs.inc_by(now.syncs.saturating_sub(before.syncs));
            i.commit_seconds.inc_by(now.commit_nanos.saturating_sub(before.commit_nanos) as f64 / 1e9);
            i.checkpoints.inc_by(now.checkpoints.saturating_sub(before.checkpoints));
            st.1 = now;
            i.checkpoint_age.set(st.0.elapsed().as_secs_f64());
        }
        i.tree_size.set(log.durable_size() as i64);
        i.signed_size.set(log.signed_checkpoint().checkpoint.size as i64);
        if let Some(st) = witnessing {
            i.quorum_met.set(i64::from(st.quorum_met()));
            let mut seen = i.witnessed.lock().unwrap_or_else(|p| p.into_inner());
            for w in &st.witnesses {
                let label = vec![("witness".to_string(), w.name.clone())];
                if let Some(size) = w.cosigned_size {
                    i.witness_size.get_or_create(&label).set(i64::try_from(size).unwrap_or(i64::MAX));
                }
                let before = seen.insert(w.name.clone(), (w.cosignatures, w.failures)).unwrap_or((0, 0));
                i.witness_cosignatures.get_or_create(&label).inc_by(w.cosignatures.saturating_sub(before.0));
                i.witness_failures.get_or_create(&label).inc_by(w.failures.saturating_sub(before.1));
            }
        }
        let mut out = String::new();
        encode(&mut out, &i.registry).expect("writing to a String cannot fail");
        out
    }
}
