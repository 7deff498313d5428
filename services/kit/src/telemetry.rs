//! Logging and tracing.
//!
//! Logs: human-readable by default, JSON lines with `--log-json`; `RUST_LOG` filters. Colours
//! only on a terminal: a file, a pipe or a container log gets plain text.
//!
//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are also exported over OTLP
//! (HTTP/protobuf, to `<endpoint>/v1/traces`) in batches, under the service name (or
//! `OTEL_SERVICE_NAME`); the OpenTelemetry SDK's own variables (`OTEL_BSP_SCHEDULE_DELAY`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, …) apply. [`set_remote_parent`]
//! and [`hop`] join a span to the trace of a `traceparent` and give the context to hand on, so
//! one trace follows a transaction from the HTTP request through every event it causes. The
//! spans still queued are sent when the [`Telemetry`] guard is shut down or dropped.

use std::io::IsTerminal;
use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use common_events::trace::TraceContext;

/// The variable that turns on trace export: the OTLP collector's base URL.
pub const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The most a shutdown waits for the last spans to reach the collector.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The least severe spans and events exported as traces (whatever `RUST_LOG` says about logs).
const TRACE_LEVEL: LevelFilter = LevelFilter::INFO;

/// The installed logging and tracing; flushes the spans not yet exported when shut down or
/// dropped.
#[must_use = "dropping it stops the trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exports_traces(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans still queued (waiting at most [`FLUSH_TIMEOUT`]) and stops the export.
    pub fn shutdown(mut self) {
        self.flush();
    }

    fn flush(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        // The export runs on the SDK's own thread; this waits for it (bounded).
        if let Err(err) = provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
            eprintln!("warning: the last spans may not have reached the OTLP collector: {err}");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Installs the global subscriber for `service` (once; later calls install nothing and export
/// nothing). A trace exporter that cannot be built is reported and left out: logs still work.
pub fn init(service: &str, json: bool) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stdout().is_terminal();
    let logs = tracing_subscriber::fmt::layer().with_ansi(ansi);
    let logs = if json {
        logs.json().with_filter(filter).boxed()
    } else {
        logs.with_filter(filter).boxed()
    };
    let (provider, problem) = match std::env::var(OTLP_ENDPOINT) {
        Ok(endpoint) if !endpoint.trim().is_empty() => match tracer_provider(service) {
            Ok(provider) => (Some(provider), None),
            Err(err) => (None, Some(format!("{OTLP_ENDPOINT}={endpoint}: {err}"))),
        },
        _ => (None, None),
    };
    let traces = provider.as_ref().map(|provider| {
        let tracer = provider.tracer(service.to_owned());
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(TRACE_LEVEL)
    });
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .is_ok();
    if let Some(problem) = problem {
        tracing::warn!(%problem, "traces are not exported");
    }
    let provider = provider.filter(|_| installed);
    if provider.is_some() {
        tracing::info!(endpoint = %std::env::var(OTLP_ENDPOINT).unwrap_or_default(), "exporting traces over OTLP");
    }
    Telemetry { provider }
}

fn tracer_provider(service: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|err| err.to_string())?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Makes `span` a child of the remote span that sent `incoming` (when traces are exported;
/// otherwise nothing). Call it before the span is first entered.
pub fn set_remote_parent(span: &Span, incoming: Option<TraceContext>) {
    let Some(parent) = incoming else { return };
    let context = SpanContext::new(
        TraceId::from_bytes(parent.trace_id.to_be_bytes()),
        SpanId::from_bytes(parent.parent_id.to_be_bytes()),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let parent = opentelemetry::Context::new().with_remote_span_context(context);
    // Without the OpenTelemetry layer (no export) there is nothing to join.
    let _ = span.set_parent(parent);
}

/// The trace context this hop hands on in the events it causes: the exported span's own (its
/// trace id and span id), or, when traces are not exported, a child of `incoming` or a new
/// trace.
pub fn hop(span: &Span, incoming: Option<TraceContext>) -> TraceContext {
    let context = span.context();
    let exported = context.span().span_context().clone();
    if exported.is_valid() {
        // A valid span context has non-zero ids, as a `TraceContext` needs.
        return TraceContext {
            trace_id: u128::from_be_bytes(exported.trace_id().to_bytes()),
            parent_id: u64::from_be_bytes(exported.span_id().to_bytes()),
        };
    }
    incoming.map_or_else(TraceContext::new_root, TraceContext::child)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_export_a_hop_continues_the_incoming_trace() {
        let incoming = TraceContext::new_root();
        let span = tracing::info_span!("test");
        set_remote_parent(&span, Some(incoming));
        let hop = hop(&span, Some(incoming));
        assert_eq!(hop.trace_id, incoming.trace_id);
        assert_ne!(hop.parent_id, incoming.parent_id);
    }
}
