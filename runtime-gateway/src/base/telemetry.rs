//! OpenTelemetry traces, off unless configured: `[telemetry] otlp_endpoint` in gateway.toml, or
//! the standard `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`. Spans go
//! out over OTLP/HTTP (protobuf) through a batch processor, flushed at shutdown.
//!
//! Every span is about one run and carries its id as `a2a_ledger.run`: the run itself (from
//! acceptance to the durable seal), the ledger writes that open and seal it, the agent's call
//! (whose W3C `traceparent` the agent receives: an HTTP header for `http` and `a2a` upstreams,
//! `_meta.traceparent` for `mcp` ones), workspace operations and push deliveries. Without a
//! provider the global tracer is a no-op, so the instrumented paths cost next to nothing.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::base::config::TelemetryConfig;

/// The attribute naming the run on every span.
pub const RUN: &str = "a2a_ledger.run";

/// Starts exporting when configured; the provider is to be shut down (flushed) at exit.
pub fn init(cfg: Option<&TelemetryConfig>) -> anyhow::Result<Option<SdkTracerProvider>> {
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    let configured = cfg.and_then(|c| c.otlp_endpoint.clone()).filter(|e| !e.is_empty());
    let from_env = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()));
    if configured.is_none() && !from_env {
        return Ok(None);
    }
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http().with_headers(HashMap::new());
    if let Some(ep) = &configured {
        let ep = ep.trim_end_matches('/');
        let full = if ep.ends_with("/v1/traces") { ep.to_string() } else { format!("{ep}/v1/traces") };
        builder = builder.with_endpoint(full);
    }
    let exporter = builder.build().map_err(|e| anyhow::anyhow!("the OTLP trace exporter: {e}"))?;
    let name = cfg.and_then(|c| c.service_name.clone()).unwrap_or_else(|| "runtime-gateway".into());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(name).build())
        .build();
    global::set_tracer_provider(provider.clone());
    global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(Some(provider))
}

/// A span that ends when dropped (or at [`SpanGuard::end`]).
#[derive(Debug)]
pub struct SpanGuard(Context);

impl SpanGuard {
    /// Adds an attribute.
    pub fn set(&self, kv: KeyValue) {
        self.0.span().set_attribute(kv);
    }

    /// Marks the span failed, with why.
    pub fn error(&self, why: impl Into<String>) {
        self.0.span().set_status(Status::error(why.into()));
    }

    /// The W3C `traceparent` of this span, when it is being recorded.
    pub fn traceparent(&self) -> Option<String> {
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&self.0, &mut carrier);
        carrier.remove("traceparent")
    }

    /// Ends the span now.
    pub fn end(self) {}
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        self.0.span().end();
    }
}

/// A run's trace: the root span of the run, to which every span of the run is a child.
#[derive(Clone, Debug)]
pub struct RunTrace {
    cx: Context,
    run: String,
}

impl RunTrace {
    /// Starts the run's span.
    pub fn start(run: &str, attrs: Vec<KeyValue>) -> RunTrace {
        let tracer = global::tracer("runtime-gateway");
        let mut all = vec![KeyValue::new(RUN, run.to_string())];
        all.extend(attrs);
        let span = tracer.span_builder("run").with_kind(SpanKind::Server).with_attributes(all).start(&tracer);
        RunTrace { cx: Context::new().with_span(span), run: run.to_string() }
    }

    /// The trace of a run this process did not start (a task rebuilt from the ledger): no span
    /// of its own; spans made under it are roots.
    pub fn detached(run: &str) -> RunTrace {
        RunTrace { cx: Context::new(), run: run.to_string() }
    }

    /// Starts a span of the run.
    pub fn child(&self, name: &'static str, attrs: Vec<KeyValue>) -> SpanGuard {
        let tracer = global::tracer("runtime-gateway");
        let mut all = vec![KeyValue::new(RUN, self.run.clone())];
        all.extend(attrs);
        let span = tracer.span_builder(name).with_attributes(all).start_with_context(&tracer, &self.cx);
        SpanGuard(Context::new().with_span(span))
    }

    /// An event on the run's span (a status change, progress).
    pub fn event(&self, name: &'static str, attrs: Vec<KeyValue>) {
        self.cx.span().add_event(name, attrs);
    }

    /// Ends the run's span with its status.
    pub fn end(&self, status: &str, error: Option<&str>) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new("a2a_ledger.status", status.to_string()));
        if let Some(e) = error {
            span.set_status(Status::error(e.to_string()));
        }
        span.end();
    }
}
