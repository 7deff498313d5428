//! The console's ordering scenarios and panels, with a stack and without parts of it.

use anyhow::Context;
use serde_json::{json, Value};
use test_support::wait::until_eq;
use test_support::{eventually, scenario, Scenario, Target};

use crate::support::{key, rig, start_console, BOUND};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(the_duplicate_delivery_scenario_finds_the_naive_handler_wrong_and_the_service_right),
    scenario!(the_out_of_order_scenario_finds_the_naive_handler_wrong_and_the_service_right),
    scenario!(the_broker_panel_shows_the_account_service_consumer),
    scenario!(without_the_services_a_scenario_says_why),
    scenario!(without_fault_injection_the_fault_scenarios_say_why_before_opening_an_account),
    scenario!(without_a_broker_the_page_is_served_and_says_so),
];

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
