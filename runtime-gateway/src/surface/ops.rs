//! Operations: `GET /healthz` and `GET /metrics` in the Prometheus text format
//! (prometheus-client, as ledger-server uses): runs by outcome, run and ledger-append latencies,
//! running tasks, spool depth, ledger lag and push delivery. The counters belong to the engine
//! and the ledger seam; this module registers them and renders them.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use crate::engine::push::PushCounters;
use crate::engine::tasks::Counters;
use crate::ledger::LedgerSink;
use crate::surface::state::Gateway;

/// `/healthz` and `/metrics`, public.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics))
}

async fn healthz(State(gw): State<Arc<Gateway>>) -> Response {
    let backlog = gw.engine.sink().backlog();
    let mut body = json!({ "status": "ok", "running": *gw.engine.counters.running.borrow(), "spool": backlog });
    // A witnessed embedded log that cannot meet its quorum keeps running (runs are recorded;
    // receipts wait for a cosigned checkpoint): 200, degraded, and why.
    if let Some(w) = gw.engine.sink().witnessing() {
        if let Some(reason) = w.degraded() {
            body["status"] = json!("degraded");
            body["reason"] = json!(reason);
        }
        body["witnesses"] = serde_json::to_value(&w).unwrap_or_default();
    }
    let cards: Vec<Value> = gw
        .engine
        .agents()
        .iter()
        .filter_map(|a| a.upstream.verdict().map(|v| json!({ "agent": a.spec.name, "card": v })))
        .collect();
    if !cards.is_empty() {
        body["agents"] = Value::Array(cards);
    }
    axum::Json(body).into_response()
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let text = gw.metrics.render(*gw.engine.counters.running.borrow(), gw.engine.sink().as_ref());
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// The gauges read at scrape time.
#[derive(Debug, Default)]
struct Gauges {
    running: Gauge,
    spool: Gauge,
    lag: Gauge<f64, AtomicU64>,
    refused: Gauge,
    quorum_met: Gauge,
}

/// The gateway's metrics registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    gauges: Gauges,
}

impl Metrics {
    /// Registers the engine's and the pusher's metrics and the append latencies.
    pub fn new(runs: &Counters, push: &PushCounters, appends: Histogram) -> Metrics {
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
        r.register(
            "ledger_refused_batches",
            "Batches the ledger refused after the gateway had them acknowledged (kept in rejected.jsonl)",
            gauges.refused.clone(),
        );
        r.register(
            "witness_quorum_met",
            "1 when the embedded log's last witness round met its policy's quorum, 0 when not (witnessed only)",
            gauges.quorum_met.clone(),
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
        self.gauges.refused.set(i64::try_from(sink.refused_batches()).unwrap_or(i64::MAX));
        if let Some(w) = sink.witnessing() {
            self.gauges.quorum_met.set(i64::from(w.quorum_met()));
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
