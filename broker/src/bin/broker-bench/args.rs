//! The command line: which servers to measure, which benchmarks, and how much work per run.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::bench::Suite;

/// The usage text printed by `--help`.
pub(crate) const USAGE: &str = "\
broker-bench: measures core NATS and JetStream throughput and latency of the bundled broker
against nats-server

usage: broker-bench [options]

With no --url, starts the bundled `broker` (next to this executable, or --broker-bin) and
`nats-server` ($NATS_SERVER, else PATH) on free loopback ports and measures both. The JetStream
benchmarks (js-*) run on three servers, each with JetStream and its own temporary store: the
broker in its default (fsync before every PubAck), the broker with --sync interval=2m
(nats-server's default), and nats-server -js. The NATS Streaming benchmarks (stan-*) run on
the broker with -cid, and their JetStream twins (js-pub-async, js-consume) on the broker and
nats-server, each on a fresh server per run.

options:
  --url URL          measure this server instead (repeatable; nats://host:port)
  --broker-bin PATH  the broker executable to start (default: `broker` beside broker-bench)
  --only LIST        benchmarks to run, comma-separated: pub,pubsub,pub-async,reqrep,
                     js-pub,js-pub-async,js-consume,js-rss,stan-pub,stan-sub
                     (default: all)
  --sizes LIST       payload sizes in bytes, comma-separated (default: 16,128 for core
                     NATS, 128 for JetStream)
  --messages N       messages per throughput run (default: chosen per benchmark and size)
  --requests N       requests per latency run, after a warm-up of N/10 (default: 10000)
  --duration D       run each measurement for about D (e.g. 2s) instead of a fixed count
  --runs R           repeat every measurement R times and report the median (default: 3)
  --window N         PubAcks a JetStream publisher may await at once (js-pub-async, js-rss
                     and the js-consume pre-fill; default: 256)
  --batch N          messages per pull request in js-consume (default: 256)
  --tls              start the servers with TLS (a certificate made for the run) and connect
                     every client over TLS
  --tls-ca FILE      with --url: trust this CA (PEM) besides the system's
  --json             print machine-readable JSON instead of the table
  -h, --help         print this text
";

/// How much work one measurement does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Workload {
    /// The benchmark's own default count for the payload size.
    Default,
    /// Exactly this many messages (or requests).
    Count(u64),
    /// As many as fit in this time.
    For(Duration),
}

/// Everything the command line says.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Servers to measure; empty means start the broker and nats-server.
    pub urls: Vec<String>,
    /// The broker executable to start, when given.
    pub broker_bin: Option<PathBuf>,
    /// Benchmark names to run; empty means all.
    pub only: Vec<String>,
    /// Payload sizes in bytes; `None` means each suite's default.
    pub sizes: Option<Vec<usize>>,
    /// Work per throughput run.
    pub messages: Workload,
    /// Work per latency run.
    pub requests: Workload,
    /// Measurements per benchmark, size and server.
    pub runs: usize,
    /// Outstanding PubAcks allowed to a windowed JetStream publisher.
    pub window: usize,
    /// Messages per pull request of the JetStream consumer.
    pub batch: usize,
    /// Start the servers with TLS.
    pub tls: bool,
    /// A CA to trust for `--url` servers with TLS.
    pub tls_ca: Option<PathBuf>,
    /// Print JSON instead of a table.
    pub json: bool,
    /// Print the usage and stop.
    pub help: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            urls: Vec::new(),
            broker_bin: None,
            only: Vec::new(),
            sizes: None,
            messages: Workload::Default,
            requests: Workload::Default,
            runs: 3,
            window: 256,
            batch: 256,
            tls: false,
            tls_ca: None,
            json: false,
            help: false,
        }
    }
}

impl Settings {
    /// The payload sizes for `suite`: `--sizes`, else 16 and 128 B for core NATS and 128 B for
    /// JetStream (whose runs take longer, and whose questions are about 128 B messages).
    pub(crate) fn sizes_for(&self, suite: Suite) -> &[usize] {
        match (&self.sizes, suite) {
            (Some(sizes), _) => sizes,
            (None, Suite::Core) => &[16, 128],
            (None, Suite::JetStream | Suite::Stan) => &[128],
        }
    }
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Settings> {
    let mut s = Settings::default();
    let mut duration = None;
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (flag, None),
        };
        let mut value = || match inline.clone() {
            Some(v) => Ok(v),
            None => args
                .next()
                .with_context(|| format!("flag needs an argument: {flag}")),
        };
        match flag.as_str() {
            "--url" => s.urls.push(value()?),
            "--broker-bin" => s.broker_bin = Some(PathBuf::from(value()?)),
            "--only" => s.only = list(&value()?),
            "--sizes" => s.sizes = Some(sizes(&value()?)?),
            "--messages" => s.messages = Workload::Count(count(&flag, &value()?)?),
            "--requests" => s.requests = Workload::Count(count(&flag, &value()?)?),
            "--duration" => duration = Some(parse_duration(&value()?)?),
            "--runs" => s.runs = count(&flag, &value()?)? as usize,
            "--window" => s.window = count(&flag, &value()?)? as usize,
            "--batch" => s.batch = count(&flag, &value()?)? as usize,
            "--tls" => s.tls = true,
            "--tls-ca" => s.tls_ca = Some(PathBuf::from(value()?)),
            "--json" => s.json = true,
            "-h" | "--help" => s.help = true,
            other => bail!("unknown flag {other} (see --help)"),
        }
    }
    if let Some(d) = duration {
        if s.messages != Workload::Default || s.requests != Workload::Default {
            bail!("--duration cannot be combined with --messages or --requests");
        }
        s.messages = Workload::For(d);
        s.requests = Workload::For(d);
    }
    Ok(s)
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

fn sizes(v: &str) -> anyhow::Result<Vec<usize>> {
    let sizes: Vec<usize> = list(v)
        .iter()
        .map(|x| x.parse().with_context(|| format!("invalid size {x:?}")))
        .collect::<anyhow::Result<_>>()?;
    if sizes.is_empty() {
        bail!("--sizes needs at least one size");
    }
    Ok(sizes)
}

fn count(flag: &str, v: &str) -> anyhow::Result<u64> {
    let n: u64 = v
        .replace('_', "")
        .parse()
        .with_context(|| format!("{flag} needs a positive whole number, not {v:?}"))?;
    if n == 0 {
        bail!("{flag} must be at least 1");
    }
    Ok(n)
}

fn parse_duration(v: &str) -> anyhow::Result<Duration> {
    let d = humantime::parse_duration(v)
        .with_context(|| format!("invalid duration {v:?} (try 2s or 500ms)"))?;
    if d.is_zero() {
        bail!("--duration must be longer than zero");
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> anyhow::Result<Settings> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn no_arguments_give_the_defaults() {
        let s = parse_str("").unwrap();
        assert!(s.urls.is_empty());
        assert_eq!(s.sizes_for(Suite::Core), [16, 128]);
        assert_eq!(s.sizes_for(Suite::JetStream), [128]);
        assert_eq!(s.runs, 3);
        assert_eq!((s.window, s.batch), (256, 256));
        assert_eq!(s.messages, Workload::Default);
    }

    #[test]
    fn every_flag_is_understood() {
        let s = parse_str(
            "--url nats://a:1 --url=nats://b:2 --only pub,reqrep --sizes 8,1024 \
             --messages 1_000 --requests 50 --runs 5 --window 64 --batch 10 --json",
        )
        .unwrap();
        assert_eq!(s.urls, vec!["nats://a:1", "nats://b:2"]);
        assert_eq!(s.only, vec!["pub", "reqrep"]);
        assert_eq!(s.sizes_for(Suite::Core), [8, 1024]);
        assert_eq!(s.sizes_for(Suite::JetStream), [8, 1024]);
        assert_eq!((s.window, s.batch), (64, 10));
        assert_eq!(s.messages, Workload::Count(1000));
        assert_eq!(s.requests, Workload::Count(50));
        assert_eq!(s.runs, 5);
        assert!(s.json);
    }

    #[test]
    fn duration_applies_to_every_benchmark() {
        let s = parse_str("--duration 2s").unwrap();
        assert_eq!(s.messages, Workload::For(Duration::from_secs(2)));
        assert_eq!(s.requests, Workload::For(Duration::from_secs(2)));
    }

    #[test]
    fn zero_runs_and_unknown_flags_are_refused() {
        assert!(parse_str("--runs 0").is_err());
        assert!(parse_str("--bogus").is_err());
        assert!(parse_str("--duration 2s --messages 5").is_err());
    }
}
