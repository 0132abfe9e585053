//! The building blocks of the gateway's counters (prometheus-client handles: clones share the
//! value). The engine and the ledger seam own their counters; the ops surface registers them
//! and renders `/metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// A latency histogram in seconds, 0.5 ms to about 8 s.
pub fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// A counter family with one label, and the counter of one of its values.
pub fn labelled(family: &Family<Vec<(String, String)>, Counter>, label: &str, value: &str) -> Counter {
    family.get_or_create(&vec![(label.to_string(), value.to_string())]).clone()
}
