//! What the stack's tests share: the `bank` binary started on a data directory with every port
//! picked free, its table read back, and small HTTP helpers.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long the stack may take to print its table (a cold debug build on a busy 2-core machine).
pub const START_BOUND: Duration = Duration::from_secs(90);
/// How long a settled balance may take to show.
pub const SETTLE_BOUND: Duration = Duration::from_secs(30);

/// A running `bank` and what its table said.
pub struct Bank {
    pub child: Child,
    /// Component name → URL, from the table.
    pub urls: BTreeMap<String, String>,
    stderr: mpsc::Receiver<String>,
}

/// `bank` on `data` with every port picked free, then `extra` (a later flag wins).
pub fn bank_command(data: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bank"));
    command
        .args([
            "--console-port=0",
            "--transaction-port=0",
            "--account-port=0",
            "--statement-port=0",
            "--broker-port=0",
            "--monitor-port=0",
        ])
        .arg(format!("--data-dir={}", data.display()))
        .args(extra);
    command
}

impl Bank {
    pub fn start(data: &Path, extra: &[&str]) -> Self {
        let mut child = bank_command(data, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting bank");
        let (rows, table) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("bank> {line}");
                let _ = rows.send(line);
            }
        });
        let (lines, stderr) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("bank! {line}");
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + START_BOUND;
        let mut urls = BTreeMap::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = table
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("bank printed no table within {START_BOUND:?}"));
            if line.contains("the bank is up") {
                break;
            }
            let cells: Vec<&str> = line
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            if let [name, url, _data] = cells[..] {
                urls.insert(name.to_owned(), url.to_owned());
            }
        }
        Self {
            child,
            urls,
            stderr,
        }
    }

    pub fn url(&self, name: &str) -> &str {
        self.urls
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the table: {:?}", self.urls))
    }

    /// Sends `signal` to the stack and waits for it to exit; returns how long that took.
    pub fn signal_and_wait(&mut self, signal: libc::c_int) -> (Duration, std::process::ExitStatus) {
        let pid = self.child.id() as libc::pid_t;
        let sent = Instant::now();
        // SAFETY: kill(2) on our own unreaped child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for bank") {
                return (sent.elapsed(), status);
            }
            assert!(
                sent.elapsed() < Duration::from_secs(20),
                "bank did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until bank says something on stderr containing `text`.
    pub fn expect_stderr(&self, text: &str, bound: Duration) {
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(_) => panic!("bank never said {text:?} within {bound:?}"),
            }
        }
    }
}

impl Drop for Bank {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pids of processes whose parent is `parent` and whose command line contains `needle`.
pub fn children_of(parent: u32, needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let ppid: Option<u32> = after.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if ppid == Some(parent) && cmdline.contains(needle) {
            found.push(pid);
        }
    }
    found
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub async fn until<T, F, Fut>(what: &str, bound: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + bound;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn get(http: &reqwest::Client, url: String) -> Option<Value> {
    let response = http.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

pub async fn post(http: &reqwest::Client, url: String, body: Value, key: &str) -> (u16, Value) {
    let response = http
        .post(url)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Opens an account and waits until the transaction service knows it.
pub async fn open_account(http: &reqwest::Client, bank: &Bank, owner: &str) -> String {
    let (status, account) = post(
        http,
        format!("{}/api/accounts", bank.url("account-1")),
        json!({"owner": owner}),
        owner,
    )
    .await;
    assert_eq!(status, 201, "{account}");
    account["id"].as_str().expect("id").to_owned()
}

pub async fn transact(
    http: &reqwest::Client,
    bank: &Bank,
    account: &str,
    kind: &str,
    amount: i64,
    key: &str,
) {
    let url = format!("{}/api/transactions", bank.url("transaction"));
    let body = json!({"account_id": account, "kind": kind, "amount": amount});
    until(
        "the transaction service accepts the transaction",
        SETTLE_BOUND,
        || {
            let (url, body) = (url.clone(), body.clone());
            async move {
                let (status, reply) = post(http, url, body, key).await;
                match status {
                    201 | 200 => Some(()),
                    404 => None, // the account is not known there yet
                    _ => panic!("{status}: {reply}"),
                }
            }
        },
    )
    .await;
}

pub async fn balance(http: &reqwest::Client, bank: &Bank, account: &str) -> (i64, i64) {
    let account = get(
        http,
        format!("{}/api/accounts/{account}", bank.url("account-1")),
    )
    .await
    .expect("the account");
    (
        account["balance"].as_i64().expect("balance"),
        account["last_transaction_number"].as_i64().expect("number"),
    )
}

pub async fn settled(http: &reqwest::Client, bank: &Bank, account: &str, expected: (i64, i64)) {
    until("the balance settles", SETTLE_BOUND, || async {
        let got = get(
            http,
            format!("{}/api/accounts/{account}", bank.url("account-1")),
        )
        .await?;
        let got = (
            got["balance"].as_i64()?,
            got["last_transaction_number"].as_i64()?,
        );
        (got == expected).then_some(())
    })
    .await;
}
