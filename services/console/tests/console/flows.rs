//! What the console does against a running stack, and without one.

use anyhow::Context;
use common_events::observe::{decisions_subject, DecisionKind, DecisionNote};
use common_events::AccountId;
use console::timeline::Entry;
use serde_json::{json, Value};
use test_support::wait::until_eq;
use test_support::{eventually, scenario, Scenario, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{rig, rss_kb, start_console, SseReader, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(opens_deposits_and_withdraws_through_the_console),
    scenario!(shows_an_account_s_statement_from_the_statement_service),
    scenario!(bad_input_is_refused_with_a_4xx_and_a_message),
    scenario!(the_event_stream_delivers_an_action_s_events_and_the_history_on_connect),
    scenario!(a_slow_browser_gets_a_skipped_marker_and_the_console_stays_bounded),
    scenario!(the_duplicate_delivery_scenario_finds_the_naive_handler_wrong_and_the_service_right),
    scenario!(the_out_of_order_scenario_finds_the_naive_handler_wrong_and_the_service_right),
    scenario!(the_broker_panel_shows_the_account_service_consumer),
    scenario!(without_the_services_a_scenario_says_why),
    scenario!(without_fault_injection_the_fault_scenarios_say_why_before_opening_an_account),
    scenario!(without_a_broker_the_page_is_served_and_says_so),
];

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn opens_deposits_and_withdraws_through_the_console(t: Target) -> anyhow::Result<()> {
    let rig = rig(&t).await?;
    let account = rig.open("alice").await?;
    let first_key = key();
    let deposit = rig
        .transact(&account, "deposit", "12.50", &first_key)
        .await?;
    assert_eq!(
        (&deposit["number"], &deposit["amount"], &deposit["status"]),
        (&json!(1), &json!(1250), &json!("pending"))
    );
    assert_eq!(deposit["idempotency_key"], json!(first_key));
    let again = rig
        .transact(&account, "deposit", "12.50", &first_key)
        .await?;
    assert_eq!(
        again["id"], deposit["id"],
        "the same key replays the first result"
    );
    let withdrawal = rig.transact(&account, "withdrawal", "2.5", &key()).await?;
    assert_eq!(
        (&withdrawal["number"], &withdrawal["amount"]),
        (&json!(2), &json!(250))
    );
    let too_much = rig.transact(&account, "withdrawal", "100", &key()).await?;
    assert_eq!(too_much["number"], json!(3));
    until_eq("balance 10.00 at number 3", BOUND, (1000, 3), || {
        rig.balance(&account)
    })
    .await?;
    let ledger = eventually("the ledger to hold 3 decided numbers", BOUND, || async {
        let (status, ledger) = rig
            .console
            .get(&format!("/api/accounts/{account}/ledger"))
            .await?;
        anyhow::ensure!(status == 200, "{status} {ledger}");
        let decided = ledger["items"].as_array().is_some_and(|items| {
            items.len() == 3 && items.iter().all(|i| i["status"] != "pending")
        });
        Ok(decided.then_some(ledger))
    })
    .await?;
    let rows: Vec<(u64, &str)> = ledger["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|i| {
            (
                i["number"].as_u64().unwrap_or(0),
                i["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(rows, [(1, "applied"), (2, "applied"), (3, "rejected")]);
    let reason = ledger["items"][2]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("insufficient funds"), "{ledger}");
    let (_, page) = rig.console.get("/api/accounts?limit=10").await?;
    let listed = page["items"].as_array().context("items")?;
    assert!(listed
        .iter()
        .any(|a| a["id"] == json!(account) && a["balance"] == json!(1000)));
    Ok(())
}

/// `GET /api/accounts/{id}/statement` passes the statement service's statement through: the
/// lines with their running balance, a range, and the service's own 4xx answers.
async fn shows_an_account_s_statement_from_the_statement_service(t: Target) -> anyhow::Result<()> {
    let rig = rig(&t).await?;
    let account = rig.open("stella").await?;
    rig.transact(&account, "deposit", "12.50", &key()).await?;
    rig.transact(&account, "withdrawal", "100", &key()).await?;
    rig.transact(&account, "withdrawal", "2.50", &key()).await?;
    let path = format!("/api/accounts/{account}/statement");
    let statement = eventually("the statement to reach number 3", BOUND, || async {
        let (status, statement) = rig.console.get(&path).await?;
        let caught_up = status == 200 && statement["last_transaction_number"] == json!(3);
        Ok(caught_up.then_some(statement))
    })
    .await?;
    let lines: Vec<(&Value, &Value, &Value)> = statement["lines"]
        .as_array()
        .context("lines")?
        .iter()
        .map(|l| (&l["number"], &l["outcome"], &l["balance_after"]))
        .collect();
    let (one, two, three) = (json!(1), json!(2), json!(3));
    let (applied, rejected) = (json!("applied"), json!("rejected"));
    let (full, less) = (json!(1250), json!(1000));
    assert_eq!(
        lines,
        [
            (&one, &applied, &full),
            (&two, &rejected, &full),
            (&three, &applied, &less)
        ]
    );
    assert_eq!(
        (&statement["opening_balance"], &statement["closing_balance"]),
        (&json!(0), &json!(1000))
    );
    let (balance, last) = rig.balance(&account).await?;
    assert_eq!(
        (json!(balance), json!(last)),
        (statement["closing_balance"].clone(), json!(3)),
        "the statement closes at the account's balance"
    );
    let (status, range) = rig.console.get(&format!("{path}?from=2&to=2")).await?;
    assert_eq!(status, 200, "{range}");
    assert_eq!(
        (&range["opening_balance"], &range["closing_balance"]),
        (&json!(1250), &json!(1250))
    );
    assert_eq!(range["lines"].as_array().map(Vec::len), Some(1));
    let reason = range["lines"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("insufficient funds"), "{range}");
    // The statement service judges the range and answers for itself.
    let (status, answer) = rig.console.get(&format!("{path}?limit=0")).await?;
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("malformed_request"))
    );
    let (status, answer) = rig.console.get(&format!("{path}?from=x%26to%3D1")).await?;
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("malformed_request"))
    );
    let unknown = uuid::Uuid::new_v4();
    let (status, answer) = rig
        .console
        .get(&format!("/api/accounts/{unknown}/statement"))
        .await?;
    assert_eq!((status, &answer["error"]), (404, &json!("not_found")));
    // The console's own checks.
    let (status, answer) = rig.console.get("/api/accounts/nope/statement").await?;
    assert_eq!((status, &answer["error"]), (422, &json!("invalid_value")));
    let (status, answer) = rig.console.get(&format!("{path}?since=1")).await?;
    assert_eq!((status, &answer["error"]), (422, &json!("invalid_value")));
    let (_, status_body) = rig.console.get("/api/status").await?;
    assert_eq!(status_body["statement_service"]["ready"], json!(true));
    Ok(())
}

async fn bad_input_is_refused_with_a_4xx_and_a_message(t: Target) -> anyhow::Result<()> {
    let rig = rig(&t).await?;
    let c = &rig.console;
    let account = rig.open("bob").await?;
    let long = "x".repeat(201);
    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "/api/accounts",
            json!({"owner": "  "}),
            422,
            "invalid_value",
            "owner must be 1 to 200",
        ),
        (
            "/api/accounts",
            json!({"owner": long}),
            422,
            "invalid_value",
            "owner must be 1 to 200",
        ),
        (
            "/api/accounts",
            json!({"name": "x"}),
            422,
            "invalid_value",
            "owner",
        ),
        (
            "/api/transactions",
            json!({"account_id": account, "kind": "deposit", "amount": "12.345"}),
            422,
            "invalid_value",
            "at most 2 decimals",
        ),
        (
            "/api/transactions",
            json!({"account_id": account, "kind": "deposit", "amount": "-1"}),
            422,
            "invalid_value",
            "a number like 12.50",
        ),
        (
            "/api/transactions",
            json!({"account_id": account, "kind": "deposit", "amount": "0.00"}),
            422,
            "invalid_value",
            "positive",
        ),
        (
            "/api/transactions",
            json!({"account_id": account, "kind": "deposit", "amount": "1000000.01"}),
            422,
            "invalid_value",
            "at most 1000000.00",
        ),
        (
            "/api/transactions",
            json!({"account_id": account, "kind": "deposit", "amount": true}),
            422,
            "invalid_value",
            "decimal amount",
        ),
        (
            "/api/transactions",
            json!({"account_id": account, "kind": "refund", "amount": "1"}),
            422,
            "invalid_value",
            "kind must be",
        ),
        (
            "/api/transactions",
            json!({"account_id": "nope", "kind": "deposit", "amount": "1"}),
            422,
            "invalid_value",
            "not a UUID",
        ),
    ];
    for (path, body, status, code, message) in cases {
        let (got, answer) = c.post(path, &body, &[]).await?;
        assert_eq!(got, status, "{path} {body}: {answer}");
        assert_eq!(answer["error"], json!(code), "{path} {body}: {answer}");
        let text = answer["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{path} {body}: {answer}");
    }
    let (status, answer) = c.post_raw("/api/accounts", "{not json").await?;
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("malformed_request")),
        "{answer}"
    );
    // The services' own errors pass through with their status and message.
    let unknown = AccountId::new();
    let body = json!({"account_id": unknown, "kind": "deposit", "amount": "1"});
    let (status, answer) = c.post("/api/transactions", &body, &[]).await?;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{answer}"
    );
    let (status, answer) = c.get(&format!("/api/accounts/{unknown}")).await?;
    assert_eq!(
        (status, &answer["error"]),
        (404, &json!("not_found")),
        "{answer}"
    );
    for path in [
        "/api/accounts/not-a-uuid".to_owned(),
        format!("/api/accounts/{account}/ledger?after=abc"),
        "/api/accounts?limit=0".to_owned(),
    ] {
        let (status, answer) = c.get(&path).await?;
        assert_eq!(
            (status, &answer["error"]),
            (422, &json!("invalid_value")),
            "{path}: {answer}"
        );
    }
    let (status, answer) = c
        .post("/api/scenarios/nothing/run", &json!({}), &[])
        .await?;
    assert_eq!(
        (status, &answer["error"]),
        (404, &json!("not_found")),
        "{answer}"
    );
    Ok(())
}

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

    let (_, metrics) = console.get("/metrics").await?;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    for line in [
        "# TYPE console_connected_browsers gauge",
        "console_connected_browsers 1",
        "# HELP console_events_skipped_total",
        "# TYPE console_events_fanned_out_total counter",
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }
    let counted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("console_events_skipped_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(counted >= skipped, "{metrics}");
    Ok(())
}

async fn run_scenario(rig: &crate::support::Rig, slug: &str) -> anyhow::Result<Value> {
    let path = format!("/api/scenarios/{slug}/run");
    let (status, verdict) = rig.console.post(&path, &json!({}), &[]).await?;
    anyhow::ensure!(status == 200, "{path}: {status} {verdict}");
    eprintln!("{}", verdict["line"].as_str().unwrap_or_default());
    Ok(verdict)
}

fn numbers(verdict: &Value) -> (i64, i64, i64, i64) {
    let n = |name: &str| verdict[name].as_i64().unwrap_or(-1);
    (
        n("truth"),
        n("naive"),
        n("service"),
        n("service_last_number"),
    )
}

async fn the_duplicate_delivery_scenario_finds_the_naive_handler_wrong_and_the_service_right(
    t: Target,
) -> anyhow::Result<()> {
    let rig = rig(&t).await?;
    let verdict = run_scenario(&rig, "duplicate-delivery").await?;
    assert_eq!(numbers(&verdict), (100, 200, 100, 1), "{verdict:#}");
    assert_eq!(
        (&verdict["passed"], &verdict["naive_wrong"]),
        (&json!(true), &json!(true))
    );
    let line = verdict["line"].as_str().unwrap_or_default();
    assert!(line.contains("PASSED"), "{line}");
    // The scenario's account refuses transactions of the transaction service.
    let account = verdict["account_id"].as_str().unwrap_or_default();
    let body = json!({"account_id": account, "kind": "deposit", "amount": "1"});
    let (status, answer) = rig.console.post("/api/transactions", &body, &[]).await?;
    assert_eq!(
        (status, &answer["error"]),
        (409, &json!("scenario_account")),
        "{answer}"
    );
    Ok(())
}

async fn the_out_of_order_scenario_finds_the_naive_handler_wrong_and_the_service_right(
    t: Target,
) -> anyhow::Result<()> {
    let rig = rig(&t).await?;
    let verdict = run_scenario(&rig, "out-of-order").await?;
    assert_eq!(numbers(&verdict), (40, 100, 40, 2), "{verdict:#}");
    assert_eq!(verdict["naive_rejected"], json!(1));
    assert_eq!(verdict["passed"], json!(true));
    let outcomes: Vec<&str> = verdict["service_outcomes"]
        .as_array()
        .context("outcomes")?
        .iter()
        .filter_map(|o| o["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["applied", "applied"]);
    // Running it again gives a fresh account and the same verdict.
    let again = run_scenario(&rig, "out-of-order").await?;
    assert_eq!(numbers(&again), (40, 100, 40, 2));
    assert_ne!(again["account_id"], verdict["account_id"]);
    Ok(())
}

async fn the_broker_panel_shows_the_account_service_consumer(t: Target) -> anyhow::Result<()> {
    let rig = rig(&t).await?;
    let account = rig.open("dave").await?;
    rig.transact(&account, "deposit", "1", &key()).await?;
    until_eq("the deposit applied", BOUND, (100, 1), || {
        rig.balance(&account)
    })
    .await?;
    let consumer = eventually(
        "the account-service consumer to be all acked",
        BOUND,
        || async {
            let (status, snapshot) = rig.console.get("/api/broker?fresh=true").await?;
            anyhow::ensure!(status == 200, "{status} {snapshot}");
            anyhow::ensure!(snapshot["connected"] == json!(true), "{snapshot}");
            let streams = snapshot["streams"].as_array().context("streams")?;
            let transactions = streams
                .iter()
                .find(|s| s["name"] == "TRANSACTIONS")
                .context("no TRANSACTIONS stream")?;
            let consumer = transactions["consumers"]
                .as_array()
                .context("consumers")?
                .iter()
                .find(|c| c["name"] == "account-service")
                .cloned();
            Ok(consumer.filter(|c| c["delivered_stream_sequence"].as_u64() >= Some(1)))
        },
    )
    .await?;
    assert_eq!(consumer["durable"], json!(true));
    assert_eq!(consumer["filter_subject"], json!("transactions.created"));
    for field in [
        "num_pending",
        "num_ack_pending",
        "num_redelivered",
        "num_waiting",
    ] {
        assert!(consumer[field].is_u64(), "{field} in {consumer}");
    }
    // The periodic refresh serves the same without `fresh`.
    eventually("the refreshed snapshot", BOUND, || async {
        let (_, snapshot) = rig.console.get("/api/broker").await?;
        Ok((snapshot["at_ms"].as_i64() > Some(0)).then_some(()))
    })
    .await?;
    Ok(())
}

async fn without_the_services_a_scenario_says_why(t: Target) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let args = [
        format!("--nats-url={}", broker.url()),
        "--account-url=http://127.0.0.1:1".to_owned(),
        "--transaction-url=http://127.0.0.1:1".to_owned(),
        "--statement-url=http://127.0.0.1:1".to_owned(),
    ];
    let (console, _) = start_console(&args).await?;
    eventually("the console to connect", BOUND, || async {
        let (status, _) = console.get("/readyz").await?;
        Ok((status == 200).then_some(()))
    })
    .await?;
    let (status, answer) = console
        .post("/api/scenarios/duplicate-delivery/run", &json!({}), &[])
        .await?;
    assert_eq!(
        (status, &answer["error"]),
        (503, &json!("scenario_unavailable")),
        "{answer}"
    );
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("account service at http://127.0.0.1:1 is unreachable"),
        "{message}"
    );
    let (status, answer) = console.get("/api/accounts").await?;
    assert_eq!(
        (status, &answer["error"]),
        (502, &json!("upstream_unreachable")),
        "{answer}"
    );
    let body = json!({"owner": "erin"});
    let (status, answer) = console.post("/api/accounts", &body, &[]).await?;
    assert_eq!(status, 502, "{answer}");
    assert!(answer["message"]
        .as_str()
        .unwrap_or_default()
        .contains("account service"));
    let path = format!("/api/accounts/{}/statement", uuid::Uuid::new_v4());
    let (status, answer) = console.get(&path).await?;
    assert_eq!(status, 502, "{answer}");
    assert!(answer["message"]
        .as_str()
        .unwrap_or_default()
        .contains("statement service"));
    let (_, status_body) = console.get("/api/status").await?;
    assert_eq!(status_body["broker"]["connected"], json!(true));
    assert_eq!(status_body["account_service"][0]["ready"], json!(false));
    assert_eq!(status_body["statement_service"]["ready"], json!(false));
    Ok(())
}

/// The rig's account service runs without `--fault-injection`, and alone: the fault scenarios
/// are listed, and refuse to run with a message that says what is missing, before they open an
/// account.
async fn without_fault_injection_the_fault_scenarios_say_why_before_opening_an_account(
    t: Target,
) -> anyhow::Result<()> {
    let rig = rig(&t).await?;
    let (status, listed) = rig.console.get("/api/scenarios").await?;
    assert_eq!(status, 200);
    let items = listed["items"].as_array().context("items")?;
    let field =
        |name: &str| -> Vec<&str> { items.iter().filter_map(|s| s[name].as_str()).collect() };
    assert_eq!(
        field("slug"),
        [
            "failed-before-ack",
            "out-of-order",
            "slow-handler",
            "dead-client",
            "crashed-replica",
            "duplicate-delivery",
            "replica-race"
        ]
    );
    assert_eq!(field("mode"), ["a", "b", "c", "d", "d", "e", "f"]);
    assert!(listed["items"][2]["takes"]
        .as_str()
        .is_some_and(|t| t.contains("12 s")));
    for (slug, says) in [
        ("failed-before-ack", "FAULT_INJECTION=true"),
        ("slow-handler", "FAULT_INJECTION=true"),
        ("dead-client", "at least 2 account-service replicas"),
        ("crashed-replica", "at least 2 account-service replicas"),
        ("replica-race", "at least 2 account-service replicas"),
    ] {
        let path = format!("/api/scenarios/{slug}/run");
        let (status, answer) = rig.console.post(&path, &json!({}), &[]).await?;
        assert_eq!(
            (status, &answer["error"]),
            (503, &json!("scenario_unavailable")),
            "{slug}: {answer}"
        );
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{slug}: {message}");
    }
    let (_, accounts) = rig.console.get("/api/accounts").await?;
    let owners: Vec<&str> = accounts["items"]
        .as_array()
        .context("accounts")?
        .iter()
        .filter_map(|a| a["owner"].as_str())
        .collect();
    assert!(
        !owners.iter().any(|o| o.starts_with("scenario:")),
        "{owners:?}"
    );
    Ok(())
}

async fn without_a_broker_the_page_is_served_and_says_so(_: Target) -> anyhow::Result<()> {
    let args = ["--nats-url=nats://127.0.0.1:1".to_owned()];
    let (console, _) = start_console(&args).await?;
    let page = console.http.get(&console.url).send().await?;
    assert_eq!(page.status(), 200);
    let html = page.text().await?;
    for hook in [
        "id=\"open-owner\"",
        "id=\"open-submit\"",
        "id=\"tx-account\"",
        "id=\"tx-amount\"",
        "id=\"tx-submit\"",
        "id=\"accounts-table\"",
        "id=\"timeline\"",
        "id=\"broker-streams\"",
        "aria-live=\"polite\"",
        "<label for=\"tx-amount\">",
    ] {
        assert!(html.contains(hook), "the page has no {hook}");
    }
    let script = console
        .http
        .get(format!("{}/app.js", console.url))
        .send()
        .await?;
    let content_type = script.headers()["content-type"].to_str()?.to_owned();
    assert!(
        content_type.starts_with("text/javascript"),
        "{content_type}"
    );
    assert!(script.text().await?.contains("timeline-row"));
    let (status, body) = console.get("/readyz").await?;
    assert_eq!((status, &body["broker"]), (503, &json!(false)));
    let (status, _) = console.get("/healthz").await?;
    assert_eq!(status, 200);
    let (_, snapshot) = console.get("/api/broker?fresh=true").await?;
    assert_eq!(snapshot["connected"], json!(false));
    assert_eq!(snapshot["error"], json!("broker unreachable"));
    let (status, answer) = console
        .post("/api/scenarios/out-of-order/run", &json!({}), &[])
        .await?;
    assert_eq!(
        (status, &answer["error"]),
        (503, &json!("broker_unreachable")),
        "{answer}"
    );
    let (_, metrics) = console.get("/metrics").await?;
    assert!(metrics
        .as_str()
        .unwrap_or_default()
        .contains("console_broker_connected 0"));
    Ok(())
}
