//! The web console: usable on its own against any deployment of the stack, through the
//! services' HTTP APIs and the broker.
//!
//! What the page shows:
//! - **Accounts**: each with its balance and `last_transaction_number`; open an account,
//!   deposit and withdraw (each submission sends a new `Idempotency-Key`), and each account's
//!   ledger with numbers, statuses and rejection reasons (the account service's ledger merged
//!   with the transaction service's pending transactions), and its statement (the statement
//!   service's lines with the running balance, the opening and closing balance).
//! - **Live timeline**: every `AccountOpened`, `TransactionCreated`, `TransactionApplied` and
//!   `TransactionRejected` the streams `ACCOUNTS` and `TRANSACTIONS` carry (ordered consumers
//!   starting at new messages), with its number, and the decision notes the account service
//!   publishes on `observe.decisions.>` (the account's last number at that moment, the replica,
//!   the delivery count, the decision). The last 500 are kept for pages that open later; then
//!   live updates over a WebSocket (`/api/live`; server-sent events on `/api/events`).
//! - **Broker panel**: streams and consumers with pending, ack-pending and redelivered counts,
//!   read through the JetStream API (the bundled broker or nats-server), refreshed every 2 s.
//! - **Scenarios**: each failure mode of delivery, run live with a naive handler beside the
//!   account service, ending in a verdict line (duplicate delivery, out-of-order arrival, a
//!   slow handler, a crashed replica, a dead client; the last three arm faults on the account
//!   replicas through their fault injection, `--fault-injection`).
//!
//! A tour of the crate:
//! - [`config`]: flags and environment ([`Config`]).
//! - [`app`]: [`Console`] (bind first, then serve) and [`run`], the entry point the `console`
//!   binary and the launcher call; `/healthz`, `/readyz`, `/metrics`.
//! - [`link`]: the broker connection, made in the background with retry and backoff; the page
//!   says "broker unreachable" meanwhile.
//! - [`timeline`]: the ring buffer and the bounded broadcast; a slow browser skips ahead, marked.
//! - [`feed`]: the timeline's sources on the broker.
//! - [`sse`]: `GET /api/events`; [`live`]: `GET /api/live`, the same over a WebSocket (the
//!   page's feed: browsers cap event streams at six per host, WebSockets they do not).
//! - [`panel`]: the broker panel.
//! - [`scenarios`]: the scenario runner, which needs only a JetStream context and the account
//!   service's URLs (the account service's test suite runs it too).
//! - [`api`]: the JSON API the page uses; [`upstream`]: the services' APIs; [`error`]: its errors;
//!   [`money`]: "12.50" ↔ 1250.
//! - [`web`]: the page (`web/index.html`, `web/app.js`, `web/app.css`, embedded).
//!
//! # Elements a browser test can rely on
//!
//! | Element | What |
//! |---|---|
//! | `#status-broker`, `#status-account`, `#status-transaction`, `#status-statement` | connection pills; `data-state` is `up` or `down` |
//! | `#open-form`, `#open-owner`, `#open-submit` | open an account |
//! | `#tx-form`, `#tx-account` (a `select` of account ids), `#tx-kind` (`deposit`/`withdrawal`), `#tx-amount`, `#tx-submit` | deposit or withdraw |
//! | `#form-result` | the last form's result (`aria-live`); `data-state` is `ok` or `error` |
//! | `#accounts-table` with rows `tr[data-testid="account-row"][data-account-id]` | cells `[data-testid="account-owner"]`, `[data-testid="account-balance"]` (text `12.50`, `data-cents`), `[data-testid="account-last-number"]`, buttons `[data-testid="account-ledger-button"]` and `[data-testid="account-statement-button"]` |
//! | `#ledger`, rows `tr[data-testid="ledger-row"][data-number][data-status]` | the selected account's ledger; reason in `[data-testid="ledger-reason"]` |
//! | `#statement` (`data-account-id`), `#statement-opening`, `#statement-closing` (text `12.50`, `data-cents`), `#statement-last-number`, rows `tr[data-testid="statement-row"][data-number][data-outcome]` | the selected account's statement from the statement service; running balance in `[data-testid="statement-balance"]` (`data-cents`), reason in `[data-testid="statement-reason"]` |
//! | `#timeline`, rows `li[data-testid="timeline-row"]` | `data-id`, `data-type` (event type or `decision`), `data-account`, `data-number`, `data-decision`; `li[data-testid="timeline-skipped"][data-skipped]` marks skipped entries |
//! | `#broker-streams`, rows `tr[data-testid="consumer-row"][data-stream][data-consumer]` | cells `[data-field="num_pending"]`, `[data-field="num_ack_pending"]`, `[data-field="num_redelivered"]` |
//! | `#scenario-<slug>` (`failed-before-ack`, `out-of-order`, `slow-handler`, `dead-client`, `crashed-replica`, `duplicate-delivery`, `replica-race`) | button `#scenario-run-<slug>`; `#scenario-truth-<slug>`, `#scenario-naive-<slug>`, `#scenario-service-<slug>` (balances), `#scenario-verdict-<slug>` (the line; `data-passed` `true`/`false`, `data-state` `running`/`done`/`error`), `#scenario-takes-<slug>` (how long a run takes), `#scenario-needs-<slug>` (what the stack needs, when anything) |

pub mod api;
pub mod app;
pub mod config;
pub mod error;
pub mod feed;
pub mod link;
pub mod live;
pub mod money;
pub mod panel;
pub mod scenarios;
pub mod sse;
pub mod timeline;
pub mod upstream;
pub mod web;

use std::future::Future;

pub use app::Console;
pub use config::Config;

/// Runs the console until `shutdown` resolves: binds `--http-addr` first (a busy port is an
/// error naming it), then serves the page while connecting to the broker with retry.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Console::bind(config).await?.run_until(shutdown).await
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
