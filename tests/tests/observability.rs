//! What an operator sees of the stack: every service's `/metrics` passes a strict Prometheus
//! text-format parser with the histograms `docs/observability.md` names, after some traffic;
//! and one transaction's spans, exported over OTLP by the transaction service and the account
//! service (processes of their own), share one trace id at a collector stub this test runs.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

use e2e_tests::client::Client;
use e2e_tests::invariants;
use e2e_tests::stack::Stack;
use test_support::exposition::{self, Exposition, Kind};
use test_support::matrix::{self, Axes};
use test_support::process::ServiceProcess;
use test_support::{eventually, scenario, Target};

/// How long the stack gets to settle the traffic, and a service to become ready.
const SETTLE: Duration = Duration::from_secs(60);
/// How long a service gets to stop (and flush its spans) after SIGTERM.
const STOP: Duration = Duration::from_secs(20);

fn main() {
    matrix::run(
        &[
            scenario!(every_services_metrics_parse_with_their_histograms),
            scenario!(one_transactions_spans_share_a_trace_id_across_both_services),
        ],
        Axes::Brokers,
    );
}

async fn scrape(base_url: &str) -> anyhow::Result<Exposition> {
    let url = format!("{base_url}/metrics");
    let response = reqwest::get(&url).await.context("GET /metrics")?;
    let content_type = response.headers().get("content-type").cloned();
    let text = response.text().await?;
    let content_type = content_type.context("no content type")?;
    anyhow::ensure!(
        content_type
            .to_str()?
            .starts_with("text/plain; version=0.0.4"),
        "{url}: content type {content_type:?}"
    );
    exposition::parse(&text).map_err(|err| anyhow::anyhow!("{url}: {err}\n{text}"))
}

/// Creates a transaction, retrying while the transaction service does not know the account yet
/// (it learns of it from the account service's event).
async fn create(client: &Client, account: &str, kind: &str, amount: i64) -> anyhow::Result<String> {
    let what = format!("the transaction service to know account {account}");
    let created = eventually(&what, SETTLE, || client.create(account, kind, amount)).await?;
    Ok(created.id)
}

/// Opens two accounts and settles a deposit and a withdrawal on each.
async fn some_traffic(client: &Client) -> anyhow::Result<()> {
    let mut accounts = Vec::new();
    for owner in ["Ada", "Grace"] {
        let account = client.open_account(owner).await?;
        create(client, &account.id, "deposit", 500).await?;
        create(client, &account.id, "withdrawal", 200).await?;
        accounts.push(account.id);
    }
    let views = invariants::settled(client, &accounts, SETTLE).await?;
    invariants::check(&views)
}

fn positive(exposition: &Exposition, name: &str, with: &[(&str, &str)]) -> anyhow::Result<()> {
    let count = exposition
        .histogram_counts(name, with)
        .map_err(anyhow::Error::msg)?;
    anyhow::ensure!(count > 0.0, "{name} has no samples with {with:?}");
    Ok(())
}

async fn every_services_metrics_parse_with_their_histograms(t: Target) -> anyhow::Result<()> {
    let stack = Stack::start(&t, 1).await?;
    some_traffic(&stack.client).await?;
    let transaction = scrape(&stack.transaction.url).await?;
    let http = "http_request_duration_seconds";
    positive(
        &transaction,
        http,
        &[("route", "/api/transactions"), ("status", "201")],
    )?;
    let handled = "listener_handle_duration_seconds";
    positive(&transaction, handled, &[("event", "TransactionApplied")])?;
    positive(&transaction, "outbox_lag_seconds", &[])?;

    let account = scrape(&stack.replicas[0].url).await?;
    positive(
        &account,
        http,
        &[("route", "/api/accounts"), ("method", "POST")],
    )?;
    let applied = [("event", "TransactionCreated"), ("decision", "applied")];
    positive(&account, handled, &applied)?;
    positive(&account, "outbox_lag_seconds", &[])?;
    let parked = account
        .family("account_parked_transactions")
        .map_err(anyhow::Error::msg)?;
    anyhow::ensure!(parked.kind == Kind::Gauge && parked.samples.len() == 1);

    let statement = scrape(&stack.statement.url).await?;
    let recorded = [("event", "TransactionApplied"), ("decision", "recorded")];
    positive(&statement, handled, &recorded)?;
    positive(&statement, http, &[("route", "/readyz")])?;

    for (service, exposition) in [
        ("transaction", &transaction),
        ("account", &account),
        ("statement", &statement),
    ] {
        let pending = exposition
            .family("listener_consumer_pending")
            .map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            pending.kind == Kind::Gauge,
            "{service}: pending is not a gauge"
        );
        anyhow::ensure!(!pending.samples.is_empty(), "{service}: no pending series");
        let redeliveries = exposition
            .family("listener_redeliveries_total")
            .map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            redeliveries.kind == Kind::Counter,
            "{service}: redeliveries"
        );
        let messages = exposition
            .family("listener_messages_total")
            .map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            messages.samples.iter().any(|s| s.value > 0.0),
            "{service}: no messages"
        );
    }
    Ok(())
}

/// A span the collector stub received.
#[derive(Clone, Debug)]
struct ReceivedSpan {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    /// Its `http.response.status_code`, for a server span.
    status: Option<i64>,
}

/// An OTLP/HTTP collector stub: decodes every `POST /v1/traces` (protobuf) and keeps its spans.
async fn collector() -> anyhow::Result<(String, Arc<Mutex<Vec<ReceivedSpan>>>)> {
    let spans: Arc<Mutex<Vec<ReceivedSpan>>> = Arc::default();
    let kept = Arc::clone(&spans);
    let receive = move |body: Bytes| {
        let kept = Arc::clone(&kept);
        async move {
            let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                return axum::http::StatusCode::BAD_REQUEST;
            };
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            for resource in request.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "service.name")
                    .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                        Value::StringValue(name) => Some(name.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                    let status = span
                        .attributes
                        .iter()
                        .find(|a| a.key == "http.response.status_code")
                        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                            Value::IntValue(status) => Some(*status),
                            _ => None,
                        });
                    kept.push(ReceivedSpan {
                        service: service.clone(),
                        name: span.name,
                        trace_id: span.trace_id,
                        status,
                    });
                }
            }
            axum::http::StatusCode::OK
        }
    };
    let app = axum::Router::new().route("/v1/traces", post(receive));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, spans))
}

async fn one_transactions_spans_share_a_trace_id_across_both_services(
    t: Target,
) -> anyhow::Result<()> {
    let (endpoint, spans) = collector().await?;
    let broker = t.broker.start()?;
    let dir = tempfile::tempdir()?;
    let database = t.database();
    let env = |name: &str, url: String| {
        vec![
            ("NATS_URL", broker.url()),
            ("DATABASE_URL", url),
            ("STREAM_REPLICAS", t.broker.stream_replicas().to_string()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
            // Nothing is sent on a schedule within the test: the spans arrive with the flush
            // at shutdown, which this checks too.
            ("OTEL_BSP_SCHEDULE_DELAY", "600000".to_owned()),
            ("REPLICA_ID", name.to_owned()),
        ]
    };
    let account_env = env("account", database.fresh_url(dir.path(), "account").await?);
    let transaction_env = env("tx", database.fresh_url(dir.path(), "transaction").await?);
    let (mut account, mut transaction) = tokio::task::spawn_blocking(move || {
        let program = Path::new(env!("CARGO_BIN_EXE_killable"));
        let account = ServiceProcess::start_with_args(program, &["account-service"], &account_env)?;
        let transaction =
            ServiceProcess::start_with_args(program, &["transaction-service"], &transaction_env)?;
        anyhow::Ok((account, transaction))
    })
    .await??;
    account.wait_ready(SETTLE).await?;
    transaction.wait_ready(SETTLE).await?;
    let client = Client::new(&account.url(), &transaction.url())?;
    let opened = client.open_account("Ada").await?;
    let created = create(&client, &opened.id, "deposit", 700).await?;
    eventually("the deposit to be applied", SETTLE, || async {
        Ok((client.account(&opened.id).await?.balance == 700).then_some(()))
    })
    .await?;
    for process in [&mut transaction, &mut account] {
        let status = process.terminate(STOP)?;
        anyhow::ensure!(status.success(), "a service stopped with {status}");
    }
    let spans = spans.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // Earlier POSTs may have been answered 404 (the account not known yet): the one that
    // created the transaction answered 201.
    let post = spans
        .iter()
        .find(|s| {
            s.service == "transaction-service"
                && s.name == "POST /api/transactions"
                && s.status == Some(201)
        })
        .with_context(|| format!("no POST span answered 201 among {spans:?}"))?;
    let handled = spans.iter().find(|s| {
        s.service == "account-service"
            && s.name == "process transactions.created"
            && s.trace_id == post.trace_id
    });
    anyhow::ensure!(
        handled.is_some(),
        "transaction {}: no account-service span in the POST's trace among {spans:?}",
        created
    );
    Ok(())
}
