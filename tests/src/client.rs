//! A client of the account, transaction and statement services' HTTP APIs.

use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::json;

/// How long a request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The services' base URLs and a shared connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    /// `http://host:port` of the account service.
    pub account_url: String,
    /// `http://host:port` of the transaction service.
    pub transaction_url: String,
    /// `http://host:port` of the statement service (empty when it has none).
    pub statement_url: String,
}

/// An account as the account service reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Account {
    pub id: String,
    pub owner: String,
    pub balance: i64,
    pub last_transaction_number: i64,
}

/// A transaction as the transaction service reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Transaction {
    pub id: String,
    pub account_id: String,
    pub number: i64,
    pub kind: String,
    pub amount: i64,
    pub status: String,
}

/// A ledger entry as the account service reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LedgerEntry {
    pub number: i64,
    pub transaction_id: String,
    pub kind: String,
    pub amount: i64,
    pub outcome: String,
    pub balance_after: i64,
}

/// An account's whole statement as the statement service reports it, every page joined.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Statement {
    pub account_id: String,
    pub opening_balance: i64,
    pub closing_balance: i64,
    pub lines: Vec<StatementLine>,
    /// The last number the statement service recorded for the account.
    pub last_transaction_number: i64,
    /// The running balance after it.
    pub balance: i64,
    next_from: Option<i64>,
}

/// A line of a statement.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct StatementLine {
    pub number: i64,
    pub transaction_id: String,
    pub kind: String,
    pub amount: i64,
    pub outcome: String,
    pub balance_after: i64,
}

#[derive(Deserialize)]
struct Page<T> {
    items: Vec<T>,
    next_after: Option<serde_json::Value>,
}

impl Client {
    /// A client of the services at these URLs.
    pub fn new(account_url: &str, transaction_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(256)
            .build()?;
        Ok(Self {
            http,
            account_url: account_url.trim_end_matches('/').to_owned(),
            transaction_url: transaction_url.trim_end_matches('/').to_owned(),
            statement_url: String::new(),
        })
    }

    /// The same client, reading statements from the statement service at `url`.
    pub fn with_statement_url(mut self, url: &str) -> Self {
        self.statement_url = url.trim_end_matches('/').to_owned();
        self
    }

    /// Opens an account.
    pub async fn open_account(&self, owner: &str) -> anyhow::Result<Account> {
        let url = format!("{}/api/accounts", self.account_url);
        let response = self
            .http
            .post(&url)
            .json(&json!({"owner": owner}))
            .send()
            .await?;
        expect(response, 201).await
    }

    /// Creates a transaction; `Ok(None)` when the account is not known yet (404).
    pub async fn create(
        &self,
        account_id: &str,
        kind: &str,
        amount: i64,
    ) -> anyhow::Result<Option<Transaction>> {
        let url = format!("{}/api/transactions", self.transaction_url);
        let body = json!({"account_id": account_id, "kind": kind, "amount": amount});
        let response = self.http.post(&url).json(&body).send().await?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        expect(response, 201).await.map(Some)
    }

    /// One account.
    pub async fn account(&self, id: &str) -> anyhow::Result<Account> {
        let url = format!("{}/api/accounts/{id}", self.account_url);
        expect(self.http.get(&url).send().await?, 200).await
    }

    /// Every transaction of an account, in number order.
    pub async fn transactions(&self, account_id: &str) -> anyhow::Result<Vec<Transaction>> {
        let base = format!(
            "{}/api/transactions?account_id={account_id}&limit=1000",
            self.transaction_url
        );
        self.all_pages(&base).await
    }

    /// An account's whole ledger, in number order.
    pub async fn ledger(&self, account_id: &str) -> anyhow::Result<Vec<LedgerEntry>> {
        let base = format!(
            "{}/api/accounts/{account_id}/ledger?limit=1000",
            self.account_url
        );
        self.all_pages(&base).await
    }

    /// An account's whole statement, page after page (following `next_from`); `Ok(None)` while
    /// the statement service has not seen the account opened (404).
    pub async fn statement(&self, account_id: &str) -> anyhow::Result<Option<Statement>> {
        anyhow::ensure!(!self.statement_url.is_empty(), "no statement service URL");
        let base = format!(
            "{}/api/accounts/{account_id}/statement?limit=1000",
            self.statement_url
        );
        let mut whole: Option<Statement> = None;
        let mut url = base.clone();
        loop {
            let response = self.http.get(&url).send().await?;
            if response.status().as_u16() == 404 && whole.is_none() {
                return Ok(None);
            }
            let page: Statement = expect(response, 200).await?;
            let next = page.next_from;
            whole = Some(match whole {
                None => page,
                Some(mut joined) => {
                    joined.lines.extend(page.lines);
                    joined.closing_balance = page.closing_balance;
                    joined.last_transaction_number = page.last_transaction_number;
                    joined.balance = page.balance;
                    joined
                }
            });
            match next {
                Some(from) => url = format!("{base}&from={from}"),
                None => return Ok(whole),
            }
        }
    }

    async fn all_pages<T: for<'de> Deserialize<'de>>(&self, base: &str) -> anyhow::Result<Vec<T>> {
        let mut items = Vec::new();
        let mut url = base.to_owned();
        loop {
            let page: Page<T> = expect(self.http.get(&url).send().await?, 200).await?;
            items.extend(page.items);
            match page.next_after {
                Some(after) if !after.is_null() => url = format!("{base}&after={after}"),
                _ => return Ok(items),
            }
        }
    }
}

async fn expect<T: for<'de> Deserialize<'de>>(
    response: reqwest::Response,
    status: u16,
) -> anyhow::Result<T> {
    let got = response.status().as_u16();
    let url = response.url().to_string();
    let text = response.text().await.context("reading the response")?;
    if got != status {
        bail!("{url}: expected {status}, got {got}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{url}: unexpected body {text}"))
}
