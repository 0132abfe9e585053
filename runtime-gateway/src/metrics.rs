//! `/metrics` in the Prometheus text format (prometheus-client, as ledger-server uses): runs by
//! outcome, run and ledger-append latencies, running tasks, spool depth, ledger lag and push
//! delivery. [`MeteredSink`] times every ledger append.

use std::time::{Duration, Instant};

use ledger_core::{LogDescriptor, Result, TreeHash};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::sink::{AppendDone, BoxFuture, LedgerSink, ReceiptError, RunEntries};

/// A latency histogram in seconds, 0.5 ms to about 8 s.
pub fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// A counter family with one label, and the counter of one of its values.
pub fn labelled(family: &Family<Vec<(String, String)>, Counter>, label: &str, value: &str) -> Counter {
    family.get_or_create(&vec![(label.to_string(), value.to_string())]).clone()
}

/// The gauges read at scrape time.
#[derive(Debug, Default)]
struct Gauges {
    running: Gauge,
    spool: Gauge,
    lag: Gauge<f64, AtomicU64>,
}

/// The gateway's metrics registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    gauges: Gauges,
}

impl Metrics {
    /// Registers the engine's and the pusher's metrics and the append latencies.
    pub fn new(runs: &crate::tasks::Counters, push: &crate::push::PushCounters, appends: Histogram) -> Metrics {
        let mut r = Registry::with_prefix("gateway");
        let gauges = Gauges::default();
        r.register("tasks_accepted", "Tasks accepted (task.accepted durable)", runs.accepted.clone());
        r.register("tasks_refused", "Tasks refused because they could not be recorded", runs.refused.clone());
        r.register("runs_unrecorded", "Runs whose recording failed after they started", runs.unrecorded.clone());
        r.register("runs_sealed", "Runs ended and sealed, by status", runs.sealed.clone());
        r.register("runs_running", "Runs in progress", gauges.running.clone());
        r.register("run_duration_seconds", "From a run's acceptance to its durable seal", runs.run_seconds.clone());
        r.register(
            "ledger_append_seconds",
            "From an append to its durable acknowledgement (in the log, or in the spool when the ledger is remote)",
            appends,
        );
        r.register("spool_batches", "Batches accepted but not yet in the ledger", gauges.spool.clone());
        r.register(
            "ledger_lag_seconds",
            "Age of the oldest batch accepted but not yet in the ledger (0 when none)",
            gauges.lag.clone(),
        );
        r.register("push_attempts", "Push notification delivery attempts", push.attempts.clone());
        r.register("push_deliveries", "Push events by outcome", push.deliveries.clone());
        r.register("push_refused_urls", "Push configs refused by the webhook address rules", push.refused_urls.clone());
        Metrics { registry: r, gauges }
    }

    /// The exposition text, with the gauges read now.
    pub fn render(&self, running: u64, sink: &dyn LedgerSink) -> String {
        self.gauges.running.set(i64::try_from(running).unwrap_or(i64::MAX));
        self.gauges.spool.set(i64::try_from(sink.backlog()).unwrap_or(i64::MAX));
        self.gauges.lag.set(sink.lag().as_secs_f64());
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// A sink that times each append from the call to its durable acknowledgement.
#[derive(Debug)]
pub struct MeteredSink {
    inner: Arc<dyn LedgerSink>,
    appends: Histogram,
}

impl MeteredSink {
    /// Wraps `inner`; the latencies go to `appends`.
    pub fn new(inner: Arc<dyn LedgerSink>, appends: Histogram) -> MeteredSink {
        MeteredSink { inner, appends }
    }
}

impl LedgerSink for MeteredSink {
    fn append(&self, entries: Vec<Vec<u8>>, done: AppendDone) {
        let (start, h) = (Instant::now(), self.appends.clone());
        self.inner.append(
            entries,
            Box::new(move |r| {
                h.observe(start.elapsed().as_secs_f64());
                done(r)
            }),
        );
    }
    fn tree_hash(&self) -> TreeHash {
        self.inner.tree_hash()
    }
    fn descriptor(&self) -> LogDescriptor {
        self.inner.descriptor()
    }
    fn run_entries(&self, run: &str) -> BoxFuture<'_, Result<RunEntries>> {
        self.inner.run_entries(run)
    }
    fn receipt(&self, run: &str, wait: Duration) -> BoxFuture<'_, std::result::Result<String, ReceiptError>> {
        self.inner.receipt(run, wait)
    }
    fn backlog(&self) -> u64 {
        self.inner.backlog()
    }
    fn lag(&self) -> Duration {
        self.inner.lag()
    }
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        self.inner.close()
    }
}
