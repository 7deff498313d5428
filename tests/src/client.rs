//! A client of the account and transaction services' HTTP APIs.

use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::json;

/// How long a request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Both services' base URLs and a shared connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    /// `http://host:port` of the account service.
    pub account_url: String,
    /// `http://host:port` of the transaction service.
    pub transaction_url: String,
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
        })
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
