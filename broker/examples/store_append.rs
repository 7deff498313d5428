//! Append throughput of the file store: with no fsync, an fsync per append, and one fsync per
//! batch of 100 (group commit), plus the time to reopen what was written.
//!
//! `cargo run --release -p broker --example store_append -- [messages] [payload bytes] [dir]
//! [modes]` (defaults: 20000 messages of 128 bytes in a temporary directory under the current
//! one, modes `none,each,batch`; use a directory on the disk you want to measure, not a tmpfs).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use broker::store::{FileConfig, Limits, Store};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let size: usize = args.next().map_or(Ok(128), |a| a.parse())?;
    let parent = args.next().unwrap_or_else(|| ".".to_string());
    let modes = args.next().unwrap_or_else(|| "none,each,batch".to_string());
    let payload = vec![b'x'; size];
    println!("{count} appends of {size}-byte payloads, file store in {parent}");
    let all = [
        ("none", "no fsync (flush at end)", None),
        ("each", "fsync every append", Some(1)),
        ("batch", "fsync every 100", Some(100)),
    ];
    for (_, name, every) in all.into_iter().filter(|(m, _, _)| modes.contains(m)) {
        let dir = tempfile::tempdir_in(&parent).context("temporary directory")?;
        let elapsed = run(dir.path(), count, &payload, every)?;
        let rate = count as f64 / elapsed.as_secs_f64();
        let per = elapsed.as_secs_f64() * 1e6 / count as f64;
        println!("{name:<24} {rate:>12.0} msgs/s {per:>9.2} µs/msg");
        let start = Instant::now();
        let store = Store::open_file(dir.path(), FileConfig::default(), Limits::default())?;
        assert_eq!(store.state().msgs, count);
        println!(
            "{:<24} {:>12.1} ms",
            "  reopen",
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}

fn run(
    dir: &Path,
    count: u64,
    payload: &[u8],
    sync_every: Option<u64>,
) -> anyhow::Result<Duration> {
    let mut store = Store::open_file(dir, FileConfig::default(), Limits::default())?;
    let start = Instant::now();
    for i in 1..=count {
        store.append("bench.store", None, payload, i as i64)?;
        if sync_every.is_some_and(|n| i % n == 0) {
            store.sync()?;
        }
    }
    store.sync()?;
    Ok(start.elapsed())
}
