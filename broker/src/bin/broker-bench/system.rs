//! What the bench learns from the operating system: the machine it runs on, and how much CPU a
//! process used over an interval (to tell whether the server or the client was the bottleneck).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

/// Clock ticks per second in `/proc/<pid>/stat`; `USER_HZ` is 100 on every Linux ABI we run on.
const USER_HZ: f64 = 100.0;

/// The machine the measurements were taken on.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Machine {
    /// CPU model from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Logical processors in `/proc/cpuinfo`.
    pub cpus: usize,
    /// Processors this process may run on.
    pub available: usize,
    /// Kernel release.
    pub kernel: String,
    /// The 1-minute load average when the bench started (others share this machine).
    pub load_at_start: String,
}

impl Machine {
    /// Reads what `/proc` tells; unknown fields say `unknown`.
    pub(crate) fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let cpus = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        Machine {
            cpu_model,
            cpus,
            available: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            load_at_start: load_average(),
        }
    }
}

/// The load averages (1, 5, 15 minutes) from `/proc/loadavg`.
pub(crate) fn load_average() -> String {
    read_trimmed("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// The first line `program --version` prints, or `None` when it fails.
pub(crate) fn version_of(program: &Path) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let text = if text.trim().is_empty() {
        String::from_utf8_lossy(&out.stderr)
    } else {
        text
    };
    text.lines().next().map(|l| l.trim().to_string())
}

/// CPU time used by a process (user + system, all threads) since it started.
pub(crate) fn process_cpu_time(pid: &str) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces; fields after it are
    // plain. utime and stime are fields 14 and 15, so 11 and 12 after the closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|t| t as f64)
            .with_context(|| format!("unexpected format of {path}"))
    };
    Ok(Duration::from_secs_f64((ticks(11)? + ticks(12)?) / USER_HZ))
}

/// How long a small durable append takes on the filesystem of the temporary directory (where
/// the JetStream stores are): the broker's default waits for one before each group of PubAcks.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct FsyncLatency {
    /// Median milliseconds for a 4 KiB append and `fdatasync`.
    pub p50_ms: f64,
    /// 90th percentile, milliseconds.
    pub p90_ms: f64,
}

impl std::fmt::Display for FsyncLatency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "4 KiB append + fdatasync in {}: p50 {:.2} ms, p90 {:.2} ms",
            std::env::temp_dir().display(),
            self.p50_ms,
            self.p90_ms
        )
    }
}

/// Measures [`FsyncLatency`] over 100 appends to a temporary file.
pub(crate) fn fsync_latency() -> anyhow::Result<FsyncLatency> {
    use std::io::Write;
    let mut file = tempfile::tempfile().context("creating a file to time fdatasync")?;
    let block = [b'x'; 4096];
    let mut times = Vec::with_capacity(100);
    for _ in 0..100 {
        let start = Instant::now();
        file.write_all(&block)
            .context("appending to the timing file")?;
        file.sync_data().context("fdatasync of the timing file")?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(FsyncLatency {
        p50_ms: times[50],
        p90_ms: times[90],
    })
}

/// The machine's state at one moment: others share it, and a busy neighbour shows in figures.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Conditions {
    /// The load averages.
    pub load_average: String,
    /// The disk's fsync latency, when the JetStream benchmarks run.
    pub fsync: Option<FsyncLatency>,
}

impl Conditions {
    /// Reads the load average and, with `disk`, times fdatasync.
    pub(crate) fn now(disk: bool) -> Conditions {
        Conditions {
            load_average: load_average(),
            fsync: if disk { fsync_latency().ok() } else { None },
        }
    }
}

/// A process's resident memory, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Memory {
    /// The most it ever had resident (`VmHWM`), in KiB.
    pub peak_kib: u64,
    /// What it has resident now (`VmRSS`), in KiB.
    pub current_kib: u64,
}

/// The resident memory of process `pid`.
pub(crate) fn process_memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_memory(&status).with_context(|| format!("no VmHWM and VmRSS in {path}"))
}

// VmHWM:	   12345 kB
fn parse_memory(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|n| n.trim().parse().ok())
    };
    Some(Memory {
        peak_kib: field("VmHWM:")?,
        current_kib: field("VmRSS:")?,
    })
}

/// Takes CPU-time snapshots of the server process (when known) and of this process.
#[derive(Clone, Debug)]
pub(crate) struct CpuProbe {
    server_pid: Option<u32>,
}

/// One snapshot of [`CpuProbe`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct CpuSnapshot {
    at: Instant,
    server: Option<Duration>,
    client: Option<Duration>,
}

/// CPU use over an interval, in percent of one core (200 means both cores of a 2-core machine).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct CpuUsage {
    /// The server process; `None` when its pid is unknown (servers given by `--url`).
    pub server_pct: Option<f64>,
    /// The bench process itself: all its client connections and threads.
    pub client_pct: Option<f64>,
}

impl CpuProbe {
    /// A probe for the server with this pid, if known.
    pub(crate) fn new(server_pid: Option<u32>) -> CpuProbe {
        CpuProbe { server_pid }
    }

    /// CPU times now.
    pub(crate) fn snapshot(&self) -> CpuSnapshot {
        CpuSnapshot {
            at: Instant::now(),
            server: self
                .server_pid
                .and_then(|p| process_cpu_time(&p.to_string()).ok()),
            client: process_cpu_time("self").ok(),
        }
    }
}

impl CpuSnapshot {
    /// When the snapshot was taken.
    pub(crate) fn at(&self) -> Instant {
        self.at
    }

    /// CPU use from `self` to `later`.
    pub(crate) fn usage_until(&self, later: &CpuSnapshot) -> CpuUsage {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        let pct = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) if wall > 0.0 => {
                Some(b.saturating_sub(a).as_secs_f64() / wall * 100.0)
            }
            _ => None,
        };
        CpuUsage {
            server_pct: pct(self.server, later.server),
            client_pct: pct(self.client, later.client),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_cpu_time() {
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        assert!(process_cpu_time("self").unwrap() > Duration::ZERO);
    }

    #[test]
    fn memory_comes_from_the_status_fields() {
        let status = "Name:\tx\nVmPeak:\t  900 kB\nVmHWM:\t   512 kB\nVmRSS:\t   256 kB\n";
        let want = Memory {
            peak_kib: 512,
            current_kib: 256,
        };
        assert_eq!(parse_memory(status), Some(want));
        assert!(process_memory(std::process::id()).unwrap().peak_kib > 0);
    }

    #[test]
    fn fsync_latency_is_timed() {
        let fsync = fsync_latency().unwrap();
        assert!(fsync.p50_ms > 0.0 && fsync.p90_ms >= fsync.p50_ms);
    }

    #[test]
    fn machine_detection_finds_processors() {
        assert!(Machine::detect().cpus >= 1);
    }
}
