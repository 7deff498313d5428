//! JetStream's files besides the message segments: each file stream's and each durable
//! consumer's configuration, and the consumers' delivery state.
//!
//! ```text
//! <store_dir>/jetstream/<account>/streams/<stream>/meta.json             stream config + created
//! <store_dir>/jetstream/<account>/streams/<stream>/msgs/                 the message store
//! <store_dir>/jetstream/<account>/streams/<stream>/obs/<consumer>/meta.json
//! <store_dir>/jetstream/<account>/streams/<stream>/obs/<consumer>/state.json
//! ```
//!
//! Every file is replaced atomically: written beside, fsynced, renamed, directory fsynced.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::consumer::state::AckState;
use super::consumer::ConsumerConfig;
use super::stream::StreamConfig;

/// A stream's meta file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StreamMeta {
    pub config: StreamConfig,
    pub created: i64,
}

/// A durable consumer's meta file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ConsumerMeta {
    pub name: String,
    pub config: ConsumerConfig,
    pub created: i64,
}

/// The directory holding every stream of `account`.
pub(crate) fn streams_dir(store_dir: &Path, account: &str) -> PathBuf {
    store_dir.join("jetstream").join(account).join("streams")
}

/// The message store directory of a stream.
pub(crate) fn msgs_dir(stream_dir: &Path) -> PathBuf {
    stream_dir.join("msgs")
}

/// The directory of a consumer of a stream.
pub(crate) fn consumer_dir(stream_dir: &Path, consumer: &str) -> PathBuf {
    stream_dir.join("obs").join(consumer)
}

/// Writes a stream's meta file.
pub(crate) fn write_stream_meta(dir: &Path, meta: &StreamMeta) -> anyhow::Result<()> {
    write_json(&dir.join("meta.json"), meta)
}

/// Writes a consumer's meta file.
pub(crate) fn write_consumer_meta(dir: &Path, meta: &ConsumerMeta) -> anyhow::Result<()> {
    write_json(&dir.join("meta.json"), meta)
}

/// Writes a consumer's delivery state.
pub(crate) fn write_consumer_state(dir: &Path, state: &AckState) -> anyhow::Result<()> {
    write_json(&dir.join("state.json"), state)
}

/// Reads a JSON file.
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// Reads a consumer's state; a consumer that never wrote one starts from its config.
pub(crate) fn read_consumer_state(dir: &Path) -> anyhow::Result<Option<AckState>> {
    let path = dir.join("state.json");
    if !path.exists() {
        return Ok(None);
    }
    read_json(&path).map(Some)
}

/// Replaces `path` with `value` as JSON, atomically and durably.
fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let dir = path.parent().context("a file path has a parent")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(value).context("serialising")?;
    let mut file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_data())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// Removes a directory and everything in it, if it exists.
pub(crate) fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}
