//! The services' HTTP APIs as the console calls them: the account service (one URL per replica;
//! the first that answers serves the request), the transaction service and the statement
//! service. Their answers,
//! errors included, pass through with their status; a service that does not answer is a `502`
//! naming it.

use std::time::Duration;

use axum::http::StatusCode;
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use crate::error::ConsoleError;

/// How long one request to a service may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The services.
#[derive(Clone, Debug)]
pub struct Services {
    http: reqwest::Client,
    /// One URL per account-service replica.
    pub account_urls: Vec<String>,
    /// The transaction service.
    pub transaction_url: String,
    /// The statement service.
    pub statement_url: String,
}

/// A service's answer: status and JSON body (or its text as a JSON string).
#[derive(Clone, Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
}

impl Answer {
    /// The answer itself when it is a success, else a [`ConsoleError`] passing it through.
    pub fn success(self) -> Result<Value, ConsoleError> {
        if self.status.is_success() {
            Ok(self.body)
        } else {
            Err(ConsoleError::Upstream(self.status, self.body))
        }
    }
}

/// One service's readiness as `/api/status` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    /// Its base URL.
    pub url: String,
    /// Whether `/readyz` answered 200.
    pub ready: bool,
    /// What it answered otherwise, or why it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Services {
    /// Clients for these base URLs (without trailing slashes).
    pub fn new(account_urls: Vec<String>, transaction_url: &str, statement_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("a plain HTTP client builds");
        Self {
            http,
            account_urls,
            transaction_url: transaction_url.trim_end_matches('/').to_owned(),
            statement_url: statement_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The shared HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Calls the account service: each replica in turn until one answers (any status).
    pub async fn account(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ConsoleError> {
        let mut last = None;
        for url in &self.account_urls {
            match self
                .call(url, method.clone(), path_and_query, body, &[])
                .await
            {
                Ok(answer) => return Ok(answer),
                Err(err) => last = Some((url.clone(), err)),
            }
        }
        let (url, err) = last.unwrap_or_else(|| ("(none configured)".into(), "no URL".into()));
        Err(ConsoleError::Unreachable {
            service: "account service",
            url,
            detail: err,
        })
    }

    /// The first account-service URL whose `/readyz` answers 200, or the first one.
    pub async fn ready_account_url(&self) -> Option<String> {
        for url in &self.account_urls {
            if self.probe(url).await.ready {
                return Some(url.clone());
            }
        }
        self.account_urls.first().cloned()
    }

    /// Calls the transaction service, with extra headers.
    pub async fn transaction(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, ConsoleError> {
        let url = &self.transaction_url;
        self.single(
            "transaction service",
            url,
            method,
            path_and_query,
            body,
            headers,
        )
        .await
    }

    /// `GET` from the statement service.
    pub async fn statement(&self, path_and_query: &str) -> Result<Answer, ConsoleError> {
        let url = &self.statement_url;
        self.single(
            "statement service",
            url,
            Method::GET,
            path_and_query,
            None,
            &[],
        )
        .await
    }

    /// Calls a service with one URL; not answering is [`ConsoleError::Unreachable`] naming it.
    async fn single(
        &self,
        service: &'static str,
        url: &str,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, ConsoleError> {
        self.call(url, method, path_and_query, body, headers)
            .await
            .map_err(|detail| ConsoleError::Unreachable {
                service,
                url: url.to_owned(),
                detail,
            })
    }

    async fn call(
        &self,
        base: &str,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        let mut request = self.http.request(method, format!("{base}{path_and_query}"));
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.map_err(describe)?;
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let text = response.text().await.map_err(describe)?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    /// `GET <url>/readyz`.
    pub async fn probe(&self, url: &str) -> Probe {
        let request = self
            .http
            .get(format!("{url}/readyz"))
            .timeout(PROBE_TIMEOUT);
        let problem = match request.send().await {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                Some(format!("not ready ({status}): {text}"))
            }
            Err(err) => Some(format!("unreachable: {}", describe(err))),
        };
        Probe {
            url: url.to_owned(),
            ready: problem.is_none(),
            problem,
        }
    }
}

/// A request error in one line, with its cause (reqwest's Display omits it).
pub fn describe(err: reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
