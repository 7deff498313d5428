//! The broker panel: every stream and its consumers with their pending, ack-pending and
//! redelivered counts, read through the JetStream API over NATS (`$JS.API.STREAM.LIST`,
//! `CONSUMER.LIST`), so it works on the bundled broker and on nats-server alike. A background
//! task refreshes a snapshot periodically; `GET /api/broker` serves it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream;
use futures_util::TryStreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::link::BrokerLink;

/// How long one read of the panel may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the panel shows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BrokerSnapshot {
    /// Whether the console's broker connection is up.
    pub connected: bool,
    /// The broker URL.
    pub url: String,
    /// When the snapshot was taken, ms since the epoch (0: never).
    pub at_ms: i64,
    /// Why the last read failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The streams, by name.
    pub streams: Vec<StreamRow>,
}

/// One stream.
#[derive(Clone, Debug, Serialize)]
pub struct StreamRow {
    /// Its name.
    pub name: String,
    /// The subjects it captures.
    pub subjects: Vec<String>,
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// First and last stored sequence.
    pub first_sequence: u64,
    /// The last stored sequence.
    pub last_sequence: u64,
    /// Its consumers, by name.
    pub consumers: Vec<ConsumerRow>,
}

/// One consumer.
#[derive(Clone, Debug, Serialize)]
pub struct ConsumerRow {
    /// Its name (the durable name for durable consumers).
    pub name: String,
    /// Durable (a service's queue group) or ephemeral (an ordered reader such as the console's).
    pub durable: bool,
    /// The subject it receives.
    pub filter_subject: String,
    /// Messages not yet delivered (`num_pending`).
    pub num_pending: u64,
    /// Delivered and not yet acknowledged (`num_ack_pending`).
    pub num_ack_pending: usize,
    /// Delivered again after an ack wait or a NAK (`num_redelivered`).
    pub num_redelivered: usize,
    /// Pull requests waiting (`num_waiting`).
    pub num_waiting: usize,
    /// The stream sequence last delivered.
    pub delivered_stream_sequence: u64,
    /// The stream sequence below which everything is acknowledged.
    pub ack_floor_stream_sequence: u64,
    /// Its ack wait, in milliseconds.
    pub ack_wait_ms: u64,
}

/// Reads every stream and consumer once.
pub async fn read(js: &jetstream::Context) -> Result<Vec<StreamRow>, async_nats::Error> {
    let infos: Vec<jetstream::stream::Info> = js.streams().try_collect().await?;
    let mut streams = Vec::with_capacity(infos.len());
    for info in infos {
        let stream = js.get_stream_no_info(&info.config.name).await?;
        let consumers: Vec<jetstream::consumer::Info> = stream.consumers().try_collect().await?;
        let mut rows: Vec<ConsumerRow> = consumers.into_iter().map(consumer_row).collect();
        rows.sort_by(|a, b| (!a.durable, &a.name).cmp(&(!b.durable, &b.name)));
        streams.push(StreamRow {
            name: info.config.name.clone(),
            subjects: info.config.subjects.clone(),
            messages: info.state.messages,
            bytes: info.state.bytes,
            first_sequence: info.state.first_sequence,
            last_sequence: info.state.last_sequence,
            consumers: rows,
        });
    }
    streams.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(streams)
}

fn consumer_row(info: jetstream::consumer::Info) -> ConsumerRow {
    let filter_subject = if info.config.filter_subject.is_empty() {
        info.config.filter_subjects.join(", ")
    } else {
        info.config.filter_subject.clone()
    };
    ConsumerRow {
        durable: info.config.durable_name.is_some(),
        name: info.name,
        filter_subject,
        num_pending: info.num_pending,
        num_ack_pending: info.num_ack_pending,
        num_redelivered: info.num_redelivered,
        num_waiting: info.num_waiting,
        delivered_stream_sequence: info.delivered.stream_sequence,
        ack_floor_stream_sequence: info.ack_floor.stream_sequence,
        ack_wait_ms: info.config.ack_wait.as_millis() as u64,
    }
}

/// The latest snapshot, shared between the refresher and the API.
#[derive(Clone, Debug)]
pub struct Panel {
    link: BrokerLink,
    latest: Arc<RwLock<BrokerSnapshot>>,
}

impl Panel {
    /// A panel over `link`, empty until the first refresh.
    pub fn new(link: BrokerLink) -> Self {
        let latest = BrokerSnapshot {
            url: link.url().to_owned(),
            ..Default::default()
        };
        Self {
            link,
            latest: Arc::new(RwLock::new(latest)),
        }
    }

    /// The last snapshot taken.
    pub fn latest(&self) -> BrokerSnapshot {
        let mut snapshot = self.latest.read().expect("not poisoned").clone();
        snapshot.connected = self.link.is_connected();
        snapshot
    }

    /// Reads the broker now and keeps the result.
    pub async fn refresh(&self) -> BrokerSnapshot {
        let mut snapshot = BrokerSnapshot {
            connected: self.link.is_connected(),
            url: self.link.url().to_owned(),
            at_ms: crate::now_ms(),
            ..Default::default()
        };
        match self.link.jetstream() {
            None => snapshot.error = Some("broker unreachable".into()),
            Some(js) => match tokio::time::timeout(READ_TIMEOUT, read(&js)).await {
                Ok(Ok(streams)) => snapshot.streams = streams,
                Ok(Err(err)) => snapshot.error = Some(format!("reading the JetStream API: {err}")),
                Err(_) => {
                    snapshot.error = Some(format!(
                        "the JetStream API did not answer within {READ_TIMEOUT:?}"
                    ))
                }
            },
        }
        if snapshot.error.is_some() {
            // Keep showing the last streams read, marked with the error.
            let previous = self.latest.read().expect("not poisoned");
            snapshot.streams = previous.streams.clone();
        }
        *self.latest.write().expect("not poisoned") = snapshot.clone();
        snapshot
    }

    /// Refreshes every `period` until `shutdown`.
    pub fn spawn_refresher(&self, period: Duration, shutdown: CancellationToken) {
        let panel = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period.max(Duration::from_millis(100)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                panel.refresh().await;
            }
        });
    }
}
