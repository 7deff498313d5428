//! The web console in a real browser (headless Chromium through chromedriver, WebDriver), on
//! the one-command stack: open an account, deposit, withdraw, watch the balance and the
//! timeline change without a reload, run the duplicate, out-of-order and crashed-replica
//! scenarios to their verdicts, which must be the ones `cargo test -p account --test service
//! -- naive` asserts, and open more tabs than a browser keeps connections per host.
//!
//! Needs `chromium` and `chromedriver` (Debian's packages; `CHROMIUM` and `CHROMEDRIVER` name
//! other paths). Outside CI a missing browser skips the test with a note; in CI it fails.
//! With `SCREENSHOTS=<dir>` it saves the screenshots the docs show.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use common::{runtime, Bank};

/// How long one step in the page may take (the stack, the browser and the build share 2 cores).
const STEP: Duration = Duration::from_secs(30);
/// How many tabs of the console the test opens at once.
const TABS: usize = 8;
/// How long a scenario may take to reach its verdict.
const SCENARIO: Duration = Duration::from_secs(90);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `$name`, or the first of `candidates` that exists.
fn program(variable: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(path) = std::env::var(variable) {
        return Some(PathBuf::from(path));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(path: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(driver: &Driver, chromium: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1400,1100",
            ],
        }),
    );
    let deadline = Instant::now() + STEP;
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(client) => return client,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("cannot start a browser session: {err}"),
        }
    }
}

/// Waits until `probe` gives a value; after `bound`, fails with `what` and what the page shows.
async fn wait_for<T, F, Fut>(client: &Client, what: &str, bound: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + bound;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() >= deadline {
            let text = match find(client, "main").await {
                Some(main) => main.text().await.unwrap_or_default(),
                None => String::new(),
            };
            panic!("{what}: not within {bound:?}; the page shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn attr(element: &Element, name: &str) -> Option<String> {
    element.attr(name).await.ok().flatten()
}

async fn find(client: &Client, css: &str) -> Option<Element> {
    client.find(Locator::Css(css)).await.ok()
}

async fn count(client: &Client, css: &str) -> usize {
    client
        .find_all(Locator::Css(css))
        .await
        .map_or(0, |all| all.len())
}

async fn type_into(client: &Client, css: &str, text: &str) {
    let field = find(client, css)
        .await
        .unwrap_or_else(|| panic!("{css} missing"));
    field.clear().await.expect("clearing a field");
    field.send_keys(text).await.expect("typing");
}

async fn click(client: &Client, css: &str) {
    let button = find(client, css)
        .await
        .unwrap_or_else(|| panic!("{css} missing"));
    button.click().await.expect("clicking");
}

/// Scrolls the element with this id to the bottom of the window.
async fn scroll_to(client: &Client, id: &str) {
    let script = format!("document.getElementById('{id}').scrollIntoView({{block: 'end'}});");
    client.execute(&script, vec![]).await.expect("scrolling");
}

async fn screenshot(client: &Client, name: &str) {
    let Ok(dir) = std::env::var("SCREENSHOTS") else {
        return;
    };
    let png = client.screenshot().await.expect("a screenshot");
    let path = Path::new(&dir).join(name);
    std::fs::write(&path, png).expect("writing the screenshot");
    eprintln!("saved {}", path.display());
}

/// Submits the transaction form and waits for its result.
async fn transact(client: &Client, account: &str, kind: &str, amount: &str) {
    let select = find(client, "#tx-account").await.expect("#tx-account");
    select
        .select_by_value(account)
        .await
        .expect("choosing the account");
    let kinds = find(client, "#tx-kind").await.expect("#tx-kind");
    kinds
        .select_by_value(kind)
        .await
        .expect("choosing the kind");
    type_into(client, "#tx-amount", amount).await;
    // Forget the previous result, so the wait below sees this submission's.
    client
        .execute(
            "document.getElementById('form-result').dataset.state = '';",
            vec![],
        )
        .await
        .expect("clearing the result");
    click(client, "#tx-submit").await;
    wait_for(client, "the transaction form's result", STEP, || async {
        let result = find(client, "#form-result").await?;
        match attr(&result, "data-state").await?.as_str() {
            "ok" => Some(()),
            "error" => panic!("the form said: {}", result.text().await.unwrap_or_default()),
            _ => None,
        }
    })
    .await;
}

/// The account row's (balance in cents, last number).
async fn account_row(client: &Client, account: &str) -> Option<(i64, i64)> {
    let row = format!("tr[data-testid=\"account-row\"][data-account-id=\"{account}\"]");
    let balance = find(client, &format!("{row} [data-testid=\"account-balance\"]")).await?;
    let last = find(
        client,
        &format!("{row} [data-testid=\"account-last-number\"]"),
    )
    .await?;
    let cents = attr(&balance, "data-cents").await?.parse().ok()?;
    let last = last.text().await.ok()?.trim().parse().ok()?;
    Some((cents, last))
}

/// Runs a scenario from its button and returns (truth, naive, service) in cents.
async fn run_scenario(client: &Client, slug: &str) -> (i64, i64, i64) {
    click(client, &format!("#scenario-run-{slug}")).await;
    let verdict = format!("#scenario-verdict-{slug}");
    wait_for(client, &format!("the {slug} verdict"), SCENARIO, || async {
        let line = find(client, &verdict).await?;
        match attr(&line, "data-state").await?.as_str() {
            "done" => Some(()),
            "error" => panic!("{slug}: {}", line.text().await.unwrap_or_default()),
            _ => None,
        }
    })
    .await;
    let line = find(client, &verdict).await.expect("the verdict");
    let text = line.text().await.unwrap_or_default();
    assert_eq!(
        attr(&line, "data-passed").await.as_deref(),
        Some("true"),
        "{slug}: {text}"
    );
    assert!(!text.trim().is_empty(), "{slug}: the verdict line is empty");
    let cents = |part: &'static str| {
        let css = format!("#scenario-{part}-{slug}");
        async move {
            let cell = find(client, &css).await.unwrap_or_else(|| panic!("{css}"));
            let value = attr(&cell, "data-cents").await.unwrap_or_default();
            value
                .parse::<i64>()
                .unwrap_or_else(|_| panic!("{css} data-cents {value:?}"))
        }
    };
    (
        cents("truth").await,
        cents("naive").await,
        cents("service").await,
    )
}

#[test]
fn the_console_drives_the_bank_and_its_scenarios_in_a_real_browser() {
    let chromium = program(
        "CHROMIUM",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    );
    let chromedriver = program("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        assert!(
            !in_ci(),
            "chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        );
        eprintln!("note: skipping the browser test: chromium or chromedriver is missing");
        return;
    };
    let data = tempfile::tempdir().expect("tempdir");
    let mut bank = Bank::start(data.path(), &[]);
    let console = bank.url("console").to_owned();
    let driver = Driver::start(&chromedriver);
    runtime().block_on(async {
        let client = connect(&driver, &chromium).await;
        client.goto(&console).await.expect("opening the console");
        wait_for(&client, "the broker shows as up", STEP, || async {
            let pill = find(&client, "#status-broker").await?;
            (attr(&pill, "data-state").await? == "up").then_some(())
        })
        .await;

        type_into(&client, "#open-owner", "alice").await;
        click(&client, "#open-submit").await;
        let account = wait_for(&client, "alice's row", STEP, || async {
            let rows = client
                .find_all(Locator::Css("tr[data-testid=\"account-row\"]"))
                .await
                .ok()?;
            for row in rows {
                let owner = row
                    .find(Locator::Css("[data-testid=\"account-owner\"]"))
                    .await
                    .ok()?;
                if owner.text().await.ok()? == "alice" {
                    return attr(&row, "data-account-id").await;
                }
            }
            None
        })
        .await;

        // The transaction service learns the account from its event; the form retries a 404.
        transact(&client, &account, "deposit", "100.00").await;
        transact(&client, &account, "withdrawal", "25.00").await;
        wait_for(&client, "the balance 75.00 at number 2", STEP, || async {
            (account_row(&client, &account).await? == (7_500, 2)).then_some(())
        })
        .await;
        let applied = format!(
            "li[data-testid=\"timeline-row\"][data-type=\"TransactionApplied\"][data-account=\"{account}\"]"
        );
        let decided = format!(
            "li[data-testid=\"timeline-row\"][data-type=\"decision\"][data-decision=\"applied\"][data-account=\"{account}\"]"
        );
        wait_for(&client, "two applied events and decisions in the timeline", STEP, || async {
            (count(&client, &applied).await >= 2 && count(&client, &decided).await >= 2)
                .then_some(())
        })
        .await;
        screenshot(&client, "console.png").await;

        // Alice's statement, from the statement service: two lines, closing at her balance.
        wait_for(&client, "the statement service shows as up", STEP, || async {
            let pill = find(&client, "#status-statement").await?;
            (attr(&pill, "data-state").await? == "up").then_some(())
        })
        .await;
        let button = format!(
            "tr[data-account-id=\"{account}\"] [data-testid=\"account-statement-button\"]"
        );
        let lines = "#statement tr[data-testid=\"statement-row\"]";
        wait_for(&client, "alice's statement closing at 75.00 after two lines", STEP, || async {
            // Opening it again reads it again, should the statement service still be behind.
            find(&client, &button).await?.click().await.ok()?;
            let closing = find(&client, "#statement-closing").await?;
            let done = attr(&closing, "data-cents").await? == "7500"
                && closing.text().await.ok()? == "75.00"
                && count(&client, lines).await == 2;
            done.then_some(())
        })
        .await;
        let last = find(&client, &format!("{lines}[data-number=\"2\"] [data-testid=\"statement-balance\"]"))
            .await
            .expect("line 2");
        assert_eq!(attr(&last, "data-cents").await.as_deref(), Some("7500"));
        scroll_to(&client, "statement").await;
        screenshot(&client, "console-statement.png").await;
        click(&client, "#statement-close").await;

        // The same scenarios and verdicts as the account service's naive tests.
        assert_eq!(run_scenario(&client, "duplicate-delivery").await, (100, 200, 100));
        assert_eq!(run_scenario(&client, "out-of-order").await, (40, 100, 40));
        // A replica really aborts; the broker hands its message to the other, bank restarts it.
        assert_eq!(run_scenario(&client, "crashed-replica").await, (100, 0, 100));
        scroll_to(&client, "scenario-out-of-order").await;
        screenshot(&client, "console-scenarios.png").await;

        // More tabs than a browser keeps HTTP connections per host (six): each still goes live
        // and shows the history.
        for tab in 2..=TABS {
            let window = client.new_window(true).await.expect("a new tab");
            client.switch_to_window(window.handle).await.expect("switching tabs");
            client.goto(&console).await.expect("opening the console");
            wait_for(&client, &format!("tab {tab} goes live"), STEP, || async {
                let state = find(&client, "#timeline-state").await?;
                (attr(&state, "data-state").await? == "up").then_some(())
            })
            .await;
        }
        wait_for(&client, "the last tab shows alice's events", STEP, || async {
            (count(&client, &applied).await >= 2).then_some(())
        })
        .await;
        client.close().await.expect("closing the browser");
    });
    let (took, status) = bank.signal_and_wait(libc::SIGINT);
    assert!(
        status.success() && took < Duration::from_secs(5),
        "{status} in {took:?}"
    );
}
