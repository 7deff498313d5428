//! `/metrics`: the server's counters in the Prometheus text format (version 0.0.4), every series
//! named `broker_…`; JetStream's as `broker_jetstream_…`, per stream labelled `stream`, per
//! consumer labelled `stream` and `consumer`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::since;
use crate::jetstream::usage::{ConsumerUsage, Usage};
use crate::server::ServerState;

/// A Prometheus text body being written.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    /// The `# HELP` and `# TYPE` lines of a family; `kind` is `counter` or `gauge`.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample, with its labels.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", pairs.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family of one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format wants.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub(super) async fn metrics(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    let mut out = Exposition::default();
    server_series(&mut out, &state);
    let usage = state.jetstream.get().map(|all| {
        let mut usage = Usage::default();
        for js in all.iter() {
            usage.add(js.usage());
        }
        usage
    });
    out.single(
        "broker_jetstream_enabled",
        "gauge",
        "1 when JetStream is on (-js)",
        u64::from(usage.is_some()),
    );
    if let Some(usage) = usage {
        jetstream_series(&mut out, &usage);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out.0)
}

fn server_series(out: &mut Exposition, state: &ServerState) {
    let s = &state.stats;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let series: [(&str, &str, &str, u64); 9] = [
        (
            "broker_connections",
            "gauge",
            "Client connections open now",
            state.clients.lock().len() as u64,
        ),
        (
            "broker_connections_total",
            "counter",
            "Client connections accepted",
            load(&s.total_connections),
        ),
        (
            "broker_subscriptions",
            "gauge",
            "Subscriptions held now",
            state.accounts.subscription_count(),
        ),
        (
            "broker_in_msgs_total",
            "counter",
            "Messages received from clients",
            load(&s.in_msgs),
        ),
        (
            "broker_out_msgs_total",
            "counter",
            "Messages delivered to clients",
            load(&s.out_msgs),
        ),
        (
            "broker_in_bytes_total",
            "counter",
            "Payload bytes received from clients",
            load(&s.in_bytes),
        ),
        (
            "broker_out_bytes_total",
            "counter",
            "Payload bytes delivered to clients",
            load(&s.out_bytes),
        ),
        (
            "broker_slow_consumers_total",
            "counter",
            "Clients cut off as slow consumers",
            load(&s.slow_consumers),
        ),
        (
            "broker_uptime_seconds",
            "gauge",
            "Seconds since the broker started",
            since(state.started).as_secs(),
        ),
    ];
    for (name, kind, help, value) in series {
        out.single(name, kind, help, value);
    }
}

fn jetstream_series(out: &mut Exposition, usage: &Usage) {
    let totals: [(&str, &str, &str, u64); 8] = [
        (
            "broker_jetstream_streams",
            "gauge",
            "Streams",
            usage.streams.len() as u64,
        ),
        (
            "broker_jetstream_consumers",
            "gauge",
            "Consumers of all streams",
            usage.consumers() as u64,
        ),
        (
            "broker_jetstream_messages",
            "gauge",
            "Messages stored in all streams",
            usage.messages(),
        ),
        (
            "broker_jetstream_bytes",
            "gauge",
            "Bytes stored in all streams",
            usage.bytes(),
        ),
        (
            "broker_jetstream_memory_bytes",
            "gauge",
            "Bytes stored in memory streams",
            usage.memory,
        ),
        (
            "broker_jetstream_storage_bytes",
            "gauge",
            "Bytes stored in file streams",
            usage.storage,
        ),
        (
            "broker_jetstream_api_requests_total",
            "counter",
            "JetStream API requests served",
            usage.api_total,
        ),
        (
            "broker_jetstream_api_errors_total",
            "counter",
            "JetStream API requests answered with an error",
            usage.api_errors,
        ),
    ];
    for (name, kind, help, value) in totals {
        out.single(name, kind, help, value);
    }
    per_stream(out, usage);
    per_consumer(out, usage);
}

fn per_stream(out: &mut Exposition, usage: &Usage) {
    type Field = fn(&crate::jetstream::usage::StreamUsage) -> u64;
    let families: [(&str, &str, Field); 3] = [
        (
            "broker_jetstream_stream_messages",
            "Messages stored in the stream",
            |s| s.messages,
        ),
        (
            "broker_jetstream_stream_bytes",
            "Bytes stored in the stream",
            |s| s.bytes,
        ),
        (
            "broker_jetstream_stream_consumers",
            "Consumers of the stream",
            |s| s.consumers.len() as u64,
        ),
    ];
    for (name, help, field) in families {
        out.family(name, "gauge", help);
        for s in &usage.streams {
            out.sample(
                name,
                &[("account", &s.account), ("stream", &s.name)],
                field(s),
            );
        }
    }
}

fn per_consumer(out: &mut Exposition, usage: &Usage) {
    type Field = fn(&ConsumerUsage) -> u64;
    let families: [(&str, &str, Field); 4] = [
        (
            "broker_jetstream_consumer_pending_messages",
            "Messages the consumer has yet to deliver",
            |c| c.num_pending,
        ),
        (
            "broker_jetstream_consumer_ack_pending_messages",
            "Messages delivered and not yet acknowledged",
            |c| c.num_ack_pending,
        ),
        (
            "broker_jetstream_consumer_redelivered_messages",
            "Unacknowledged messages delivered more than once",
            |c| c.num_redelivered,
        ),
        (
            "broker_jetstream_consumer_waiting_requests",
            "Pull requests waiting for messages",
            |c| c.num_waiting,
        ),
    ];
    for (name, help, field) in families {
        out.family(name, "gauge", help);
        for s in &usage.streams {
            for c in &s.consumers {
                let labels = [
                    ("account", s.account.as_str()),
                    ("stream", s.name.as_str()),
                    ("consumer", c.name.as_str()),
                ];
                out.sample(name, &labels, field(c));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jetstream::usage::StreamUsage;

    fn usage() -> Usage {
        let consumer = ConsumerUsage {
            name: "workers".into(),
            num_pending: 4,
            num_ack_pending: 2,
            num_redelivered: 1,
            num_waiting: 3,
        };
        Usage {
            memory: 10,
            storage: 90,
            api_total: 7,
            api_errors: 1,
            streams: vec![
                StreamUsage {
                    account: "$G".into(),
                    name: "ORDERS".into(),
                    messages: 5,
                    bytes: 90,
                    consumers: vec![consumer],
                },
                StreamUsage {
                    account: "$G".into(),
                    name: "MEM".into(),
                    messages: 1,
                    bytes: 10,
                    consumers: Vec::new(),
                },
            ],
        }
    }

    #[test]
    fn jetstream_series_carry_totals_and_per_stream_and_consumer_labels() {
        let mut out = Exposition::default();
        jetstream_series(&mut out, &usage());
        let body = out.0;
        for line in [
            "# TYPE broker_jetstream_streams gauge",
            "broker_jetstream_streams 2",
            "broker_jetstream_consumers 1",
            "broker_jetstream_messages 6",
            "broker_jetstream_bytes 100",
            "broker_jetstream_memory_bytes 10",
            "broker_jetstream_storage_bytes 90",
            "# TYPE broker_jetstream_api_requests_total counter",
            "broker_jetstream_api_requests_total 7",
            "broker_jetstream_api_errors_total 1",
            "broker_jetstream_stream_messages{account=\"$G\",stream=\"ORDERS\"} 5",
            "broker_jetstream_stream_bytes{account=\"$G\",stream=\"MEM\"} 10",
            "broker_jetstream_stream_consumers{account=\"$G\",stream=\"MEM\"} 0",
            "broker_jetstream_consumer_pending_messages{account=\"$G\",stream=\"ORDERS\",consumer=\"workers\"} 4",
            "broker_jetstream_consumer_ack_pending_messages{account=\"$G\",stream=\"ORDERS\",consumer=\"workers\"} 2",
            "broker_jetstream_consumer_redelivered_messages{account=\"$G\",stream=\"ORDERS\",consumer=\"workers\"} 1",
            "broker_jetstream_consumer_waiting_requests{account=\"$G\",stream=\"ORDERS\",consumer=\"workers\"} 3",
        ] {
            assert!(body.lines().any(|l| l == line), "no line {line:?} in:\n{body}");
        }
        let families = body.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(families, 15, "one TYPE line per family:\n{body}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = Exposition::default();
        out.sample("x", &[("stream", "a\"b\\c\nd")], 1);
        assert_eq!(out.0, "x{stream=\"a\\\"b\\\\c\\nd\"} 1\n");
    }
}
