//! The HTTP monitoring port: `/healthz`, `/varz`, `/connz`, `/subsz`.
//!
//! `/metrics`: nats-server has none, so its scenario is a broker extension. `/jsz` has a file of
//! its own, `jsz.rs`.

use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::Value;
use tokio::time::Instant;

use crate::http::{get, get_json};
use crate::protocol::u64_field;
use crate::raw::{RawClient, WAIT};
use crate::{block_on, scenarios, with_log, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        healthz_returns_200_with_status_ok,
        varz_reports_the_documented_fields,
        varz_counts_connections_messages_and_bytes_after_traffic,
        connz_lists_connections_with_cid_ip_port_subscriptions_and_name,
        subsz_counts_subscriptions_as_they_come_and_go,
        connz_drops_a_closed_connection,
        unknown_monitoring_path_gets_404,
    ]
}

/// Polls `GET path` until `check` accepts the JSON, or fails after [`WAIT`] with the last body
/// and the last complaint. Monitoring counters are updated asynchronously.
pub async fn poll_json(
    http_port: u16,
    path: &str,
    mut check: impl FnMut(&Value) -> anyhow::Result<()>,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let body = get_json(http_port, path).await?;
        match check(&body) {
            Ok(()) => return Ok(body),
            Err(err) if Instant::now() >= deadline => {
                return Err(err.context(format!("GET {path} after {WAIT:?}: {body}")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Waits until `/connz` reports exactly `n` client connections.
pub async fn wait_for_connections(http_port: u16, n: u64) -> anyhow::Result<()> {
    poll_json(http_port, "/connz", |connz| {
        let now = u64_field(connz, "num_connections")?;
        ensure!(now == n, "num_connections is {now}, waiting for {n}");
        Ok(())
    })
    .await
    .map(drop)
}

fn healthz_returns_200_with_status_ok(t: &Target) -> anyhow::Result<()> {
    let http_port = t.shared()?.http_port();
    block_on(async move {
        let response = get(http_port, "/healthz").await?;
        ensure!(response.status == 200, "status {}", response.status);
        let body: Value = serde_json::from_str(&response.body).context("/healthz body")?;
        ensure!(body == serde_json::json!({"status": "ok"}), "body {body}");
        Ok(())
    })
}

fn varz_reports_the_documented_fields(t: &Target) -> anyhow::Result<()> {
    let server = t.shared()?;
    let (port, http_port) = (server.port(), server.http_port());
    block_on(async move {
        let info = RawClient::connect(port).await?.info;
        let varz = get_json(http_port, "/varz").await?;
        ensure!(
            varz["server_id"] == info["server_id"],
            "server_id differs from INFO: {varz}"
        );
        // The broker reports its own version here (nats-server's in INFO): any string will do.
        ensure!(
            varz["version"].as_str().is_some_and(|v| !v.is_empty()),
            "version: {varz}"
        );
        for field in [
            "connections",
            "in_msgs",
            "out_msgs",
            "in_bytes",
            "out_bytes",
        ] {
            u64_field(&varz, field)?;
        }
        ensure!(
            varz["max_payload"] == info["max_payload"],
            "max_payload: {varz}"
        );
        ensure!(varz["port"] == port, "port is not {port}: {varz}");
        ensure!(
            varz["http_port"] == http_port,
            "http_port is not {http_port}: {varz}"
        );
        Ok(())
    })
}

fn varz_counts_connections_messages_and_bytes_after_traffic(t: &Target) -> anyhow::Result<()> {
    let server = t.start(&[])?;
    let (port, http_port) = (server.port(), server.http_port());
    block_on(async move {
        wait_for_connections(http_port, 0).await?;
        let before = get_json(http_port, "/varz").await?;
        let mut subscribers = [RawClient::quiet(port).await?, RawClient::quiet(port).await?];
        let mut publisher = RawClient::quiet(port).await?;
        for s in &mut subscribers {
            s.send("SUB varz.s 1\r\n").await?;
            s.ping_until_pong().await?;
        }
        publisher
            .send("PUB varz.s 5\r\nhello\r\n".repeat(10))
            .await?;
        publisher.ping_until_pong().await?;
        for s in &mut subscribers {
            ensure!(
                s.ping_until_pong().await?.len() == 10,
                "a subscriber missed messages"
            );
        }
        let grown = |varz: &Value, field: &str| -> anyhow::Result<u64> {
            Ok(u64_field(varz, field)? - u64_field(&before, field)?)
        };
        poll_json(http_port, "/varz", |varz| {
            let connections = u64_field(varz, "connections")?;
            ensure!(connections == 3, "connections is {connections}, expected 3");
            let growth = ["in_msgs", "in_bytes", "out_msgs", "out_bytes"]
                .map(|field| grown(varz, field).unwrap_or(u64::MAX));
            ensure!(growth == [10, 50, 20, 100], "in_msgs, in_bytes, out_msgs, out_bytes grew by {growth:?}, expected [10, 50, 20, 100]");
            Ok(())
        })
        .await
        .map(drop)
    })
}

fn connz_lists_connections_with_cid_ip_port_subscriptions_and_name(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start(&[])?;
    let (port, http_port) = (server.port(), server.http_port());
    block_on(async move {
        let options = r#"{"verbose":false,"name":"connz-client"}"#;
        let mut c = RawClient::connect_with(port, options).await?;
        c.send("SUB connz.a 1\r\nSUB connz.b 2\r\n").await?;
        c.ping_until_pong().await?;
        let local_port = c.local_port()?;
        let cid = c.info["client_id"].clone();
        let find = |connz: &Value| -> anyhow::Result<Value> {
            let list = connz["connections"]
                .as_array()
                .context("no connections array")?;
            let found = list.iter().find(|conn| conn["port"] == local_port);
            found
                .cloned()
                .with_context(|| format!("no connection from port {local_port}"))
        };
        let connz = poll_json(http_port, "/connz", |connz| find(connz).map(drop)).await?;
        let conn = find(&connz)?;
        ensure!(
            conn["cid"] == cid,
            "cid is not INFO's client_id {cid}: {conn}"
        );
        ensure!(conn["ip"] == "127.0.0.1", "ip: {conn}");
        ensure!(conn["name"] == "connz-client", "name: {conn}");
        ensure!(conn["subscriptions"] == 2, "subscriptions: {conn}");
        let connz = get_json(http_port, "/connz?subs=1").await?;
        let conn = find(&connz)?;
        let list = conn["subscriptions_list"]
            .as_array()
            .context("no subscriptions_list")?;
        let mut subjects: Vec<_> = list.iter().filter_map(Value::as_str).collect();
        subjects.sort_unstable();
        ensure!(
            subjects == ["connz.a", "connz.b"],
            "subscriptions_list: {conn}"
        );
        Ok(())
    })
}

fn subsz_counts_subscriptions_as_they_come_and_go(t: &Target) -> anyhow::Result<()> {
    let server = t.start(&[])?;
    let (port, http_port) = (server.port(), server.http_port());
    block_on(async move {
        let base = u64_field(&get_json(http_port, "/subsz").await?, "num_subscriptions")?;
        let mut c = RawClient::quiet(port).await?;
        c.send("SUB subsz.a 1\r\nSUB subsz.b 2\r\nSUB subsz.* 3\r\n")
            .await?;
        c.ping_until_pong().await?;
        let expect = |n: u64| {
            move |subsz: &Value| -> anyhow::Result<()> {
                let now = u64_field(subsz, "num_subscriptions")?;
                ensure!(
                    now == base + n,
                    "num_subscriptions is {now}, expected {base} + {n}"
                );
                Ok(())
            }
        };
        poll_json(http_port, "/subsz", expect(3)).await?;
        c.send("UNSUB 2\r\n").await?;
        c.ping_until_pong().await?;
        poll_json(http_port, "/subsz", expect(2)).await?;
        drop(c);
        poll_json(http_port, "/subsz", expect(0)).await.map(drop)
    })
}

fn connz_drops_a_closed_connection(t: &Target) -> anyhow::Result<()> {
    let server = t.start(&[])?;
    let (port, http_port) = (server.port(), server.http_port());
    block_on(async move {
        let a = RawClient::quiet(port).await?;
        let _b = RawClient::quiet(port).await?;
        wait_for_connections(http_port, 2).await?;
        drop(a);
        wait_for_connections(http_port, 1).await
    })
}

fn unknown_monitoring_path_gets_404(t: &Target) -> anyhow::Result<()> {
    let http_port = t.shared()?.http_port();
    block_on(async move {
        let response = get(http_port, "/no-such-endpoint").await?;
        ensure!(response.status == 404, "status {}", response.status);
        Ok(())
    })
}

/// Broker-only: nats-server has no `/metrics`; the broker serves Prometheus text there.
pub fn broker_extensions() -> Vec<Scenario> {
    scenarios![broker_extension_metrics_serves_prometheus_series_that_follow_traffic]
}

/// The value of one series in a Prometheus text body.
fn series(body: &str, name: &str) -> anyhow::Result<u64> {
    let line = body
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .with_context(|| format!("no series {name} in /metrics:\n{body}"))?;
    let value = line.split_whitespace().nth(1).unwrap_or_default();
    value
        .parse()
        .with_context(|| format!("series {name} has value {value:?}"))
}

fn broker_extension_metrics_serves_prometheus_series_that_follow_traffic(
    t: &Target,
) -> anyhow::Result<()> {
    let server = t.start(&[])?;
    let (port, http_port) = (server.port(), server.http_port());
    let result = block_on(async move {
        let before = crate::http::get(http_port, "/metrics").await?;
        ensure!(
            before.status == 200,
            "GET /metrics: status {}",
            before.status
        );
        for name in [
            "broker_slow_consumers_total",
            "broker_uptime_seconds",
            "broker_connections",
        ] {
            series(&before.body, name)?;
        }
        ensure!(
            before.body.contains("# TYPE broker_in_msgs_total counter"),
            "{}",
            before.body
        );
        let mut c = RawClient::quiet(port).await?;
        c.send("SUB m.x 1\r\nPUB m.x 5\r\nhello\r\nPUB m.x 5\r\nworld\r\n")
            .await?;
        c.ping_until_pong().await?;
        poll_metrics(http_port, |body| {
            ensure!(series(body, "broker_in_msgs_total")? == 2, "in_msgs");
            ensure!(series(body, "broker_out_msgs_total")? == 2, "out_msgs");
            ensure!(series(body, "broker_in_bytes_total")? == 10, "in_bytes");
            ensure!(series(body, "broker_subscriptions")? == 1, "subscriptions");
            ensure!(series(body, "broker_connections")? == 1, "connections");
            Ok(())
        })
        .await
    });
    with_log(&server, result)
}

/// Polls `/metrics` until `check` accepts the body, or fails after [`WAIT`] with it.
pub async fn poll_metrics(
    http_port: u16,
    mut check: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let body = crate::http::get(http_port, "/metrics").await?.body;
        match check(&body) {
            Ok(()) => return Ok(()),
            Err(err) if Instant::now() >= deadline => {
                return Err(err.context(format!("/metrics after {WAIT:?}:\n{body}")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
