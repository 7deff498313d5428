//! The console's live event stream: an action's events and the history on connect, and a slow
//! browser that must not make the console grow.

use anyhow::Context;
use common_events::observe::{decisions_subject, DecisionKind, DecisionNote};
use common_events::AccountId;
use console::timeline::Entry;
use serde_json::{json, Value};
use test_support::exposition::{self, Kind};
use test_support::wait::until_eq;
use test_support::{scenario, Scenario, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{key, rig, rss_kb, start_console, SseReader, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(the_event_stream_delivers_an_action_s_events_and_the_history_on_connect),
    scenario!(a_slow_browser_gets_a_skipped_marker_and_the_console_stays_bounded),
];

fn entry_is(event: &crate::support::SseEvent, kind: &str, account: &str) -> bool {
    event.event == "entry" && event.data["type"] == kind && event.data["account_id"] == account
}

async fn the_event_stream_delivers_an_action_s_events_and_the_history_on_connect(
    t: Target,
) -> anyhow::Result<()> {
    let rig = rig(&t).await?;
    let events = format!("{}/api/events", rig.console.url);
    let mut live = SseReader::open(&events).await?;
    let account = rig.open("carol").await?;
    rig.transact(&account, "deposit", "5", &key()).await?;
    let seen = live
        .until("TransactionApplied of carol's deposit", |e| {
            entry_is(e, "TransactionApplied", &account)
        })
        .await?;
    let opened = seen.iter().find(|e| entry_is(e, "AccountOpened", &account));
    let created = seen
        .iter()
        .find(|e| entry_is(e, "TransactionCreated", &account));
    let applied = seen.last().context("at least one event")?;
    assert!(opened.is_some(), "no AccountOpened in {seen:#?}");
    let created = created.with_context(|| format!("no TransactionCreated in {seen:#?}"))?;
    assert_eq!(created.data["number"], json!(1));
    assert_eq!(created.data["stream"], json!("TRANSACTIONS"));
    assert_eq!(applied.data["number"], json!(1));
    assert_eq!(applied.data["data"]["balance_after"], json!(500));

    // A decision note (published here as a service would) becomes a row with its decision.
    let note = DecisionNote {
        service: "test-service".into(),
        replica: "replica-7".into(),
        subject: "transactions.created".into(),
        stream_sequence: 99,
        delivered: 3,
        account_id: Some(account.parse()?),
        transaction_id: None,
        number: Some(9),
        last_transaction_number: Some(7),
        decision: DecisionKind::Gap,
        detail: Some("expected 8".into()),
        progress_acks: None,
        fault: None,
        at_ms: 1,
    };
    let nats = &rig.stack.nats;
    nats.publish(
        decisions_subject("test-service"),
        serde_json::to_vec(&note)?.into(),
    )
    .await?;
    nats.flush().await?;
    let seen = live
        .until("the published decision note", |e| {
            e.data["decision"] == "gap" && e.data["account_id"] == account
        })
        .await?;
    let row = &seen.last().context("the note")?.data;
    assert_eq!(
        (&row["type"], &row["number"]),
        (&json!("decision"), &json!(9))
    );
    assert_eq!(row["data"]["replica"], json!("replica-7"));
    assert_eq!(row["data"]["last_transaction_number"], json!(7));

    // A page that opens now gets the history first.
    let mut late = SseReader::open(&events).await?;
    late.until("AccountOpened from the history", |e| {
        entry_is(e, "AccountOpened", &account)
    })
    .await?;
    let (_, recent) = rig.console.get("/api/timeline").await?;
    let kept = recent["items"].as_array().context("items")?;
    assert!(kept
        .iter()
        .any(|e| e["type"] == "TransactionApplied" && e["account_id"] == json!(account)));
    Ok(())
}

/// A row for the flood: about as large as a real one.
fn filler(n: u64) -> Entry {
    Entry {
        id: 0,
        source: "event",
        kind: "TransactionCreated".into(),
        subject: "transactions.created".into(),
        stream: Some("TRANSACTIONS".into()),
        stream_sequence: Some(n),
        account_id: Some(AccountId::new().to_string()),
        transaction_id: None,
        number: Some(n),
        decision: None,
        summary: format!(
            "#{n} deposit 1.00 created, filler for a slow browser {}",
            "x".repeat(200)
        ),
        at_ms: 0,
        data: json!({"n": n}),
    }
}

async fn a_slow_browser_gets_a_skipped_marker_and_the_console_stays_bounded(
    t: Target,
) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let args = [
        format!("--nats-url={}", broker.url()),
        "--sse-buffer=64".to_owned(),
        "--timeline-history=100".to_owned(),
    ];
    let (console, timeline) = start_console(&args).await?;
    // A browser that asks for the stream, reads the response head, then stops reading.
    let addr: std::net::SocketAddr = console.url.trim_start_matches("http://").parse()?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let mut browser = socket.connect(addr).await?;
    browser
        .write_all(
            b"GET /api/events HTTP/1.1\r\nHost: console\r\nAccept: text/event-stream\r\n\r\n",
        )
        .await?;
    let mut seen = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(BOUND, browser.read(&mut buffer)).await??;
        anyhow::ensure!(n > 0, "the console closed the stream");
        seen.extend_from_slice(&buffer[..n]);
    }
    until_eq("one browser connected", BOUND, 1, || async {
        Ok(timeline
            .stats()
            .followers
            .load(std::sync::atomic::Ordering::Relaxed))
    })
    .await?;

    let flood = 100_000u64;
    let before = rss_kb();
    let started = std::time::Instant::now();
    for n in 0..flood {
        timeline.push(filler(n));
        if n % 1000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let pushed_in = started.elapsed();
    let after = rss_kb();
    eprintln!(
        "pushed {flood} entries in {pushed_in:?} to a browser that does not read; \
         RSS {before} kB before, {after} kB after ({:+} kB)",
        after as i64 - before as i64
    );
    assert_eq!(timeline.recent().len(), 100, "the ring keeps its size");
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "the console's memory grew by {} kB for a slow browser",
        after - before
    );

    // The browser reads again: what fit in the buffers, markers for what it missed, and then
    // live entries. Once a marker is read, a probe is pushed per read until one arrives (an
    // early probe may itself be skipped while the console is still behind); then a last entry.
    // Every entry pushed is either delivered or counted as skipped.
    let mut text = String::from_utf8_lossy(&seen).into_owned();
    text.drain(..text.find("\r\n\r\n").map_or(0, |i| i + 4));
    let (mut delivered, mut skipped, mut markers) = (0u64, 0u64, 0u64);
    let mut pushed = flood;
    let mut probes = std::collections::HashSet::new();
    let mut last: Option<u64> = None;
    let deadline = tokio::time::Instant::now() + BOUND;
    'reading: loop {
        // Complete events end with a blank line; chunk-size lines in between are ignored.
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .and_then(|id| id.trim().parse::<u64>().ok());
            if block.contains("event: entry") {
                delivered += 1;
                if last.is_some() && id == last {
                    break 'reading;
                }
                if last.is_none() && id.is_some_and(|id| probes.contains(&id)) {
                    let mut end = filler(pushed);
                    end.summary = "the last entry".into();
                    last = Some(timeline.push(end).id);
                    pushed += 1;
                }
            } else if block.contains("event: skipped") {
                let data = block
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .context("a marker without data")?;
                let marker: Value = serde_json::from_str(data)?;
                skipped += marker["skipped"].as_u64().context("a count")?;
                markers += 1;
            }
        }
        if markers > 0 && last.is_none() {
            let mut probe = filler(pushed);
            probe.summary = "a probe".into();
            probes.insert(timeline.push(probe).id);
            pushed += 1;
        }
        let n = tokio::time::timeout_at(deadline, browser.read(&mut buffer))
            .await
            .context("timed out reading the stream after the flood")??;
        anyhow::ensure!(n > 0, "the console closed the stream");
        text.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    eprintln!(
        "the slow browser got {delivered} entries and {markers} marker(s) for {skipped} skipped, \
         of {pushed} pushed ({flood} in the flood)"
    );
    assert!(markers > 0 && skipped > 0, "no skipped marker");
    assert_eq!(
        delivered + skipped,
        pushed,
        "every entry delivered or counted"
    );

    // `/metrics` in the strict exposition format: the console's families and the HTTP ones.
    let (_, metrics) = console.get("/metrics").await?;
    let text = metrics.as_str().unwrap_or_default().to_owned();
    let parsed = exposition::parse(&text).map_err(|err| anyhow::anyhow!("{err}\n{text}"))?;
    let value = |family: &str, kind: Kind| -> anyhow::Result<f64> {
        let family = parsed.family(family).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(family.kind == kind, "{family:?} is not a {kind:?}");
        Ok(family.samples.iter().map(|s| s.value).sum())
    };
    assert_eq!(value("console_connected_browsers", Kind::Gauge)?, 1.0);
    assert!(value("console_events_skipped_total", Kind::Counter)? >= skipped as f64);
    assert!(value("console_events_fanned_out_total", Kind::Counter)? >= delivered as f64);
    let streams = parsed
        .histogram_counts("http_request_duration_seconds", &[("route", "/api/events")])
        .map_err(anyhow::Error::msg)?;
    assert!(
        streams >= 1.0,
        "the event stream's request is timed\n{text}"
    );
    Ok(())
}
