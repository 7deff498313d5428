//! Printing: the header (machine, versions, settings), the table of medians with ratios, the CPU
//! table, and the same as JSON.

use serde_json::json;

use crate::args::{Settings, Workload};
use crate::bench::{Metric, Suite};
use crate::runner::CaseResult;
use crate::system::{Conditions, FsyncLatency, Machine};
use crate::targets::{Target, Targets};

/// What the report says before any figures.
pub(crate) struct Header<'a> {
    /// When the bench started (UTC, RFC 3339).
    pub date: String,
    /// The machine.
    pub machine: Machine,
    /// The servers, in groups, each group's baseline last.
    pub targets: &'a Targets,
    /// The command line.
    pub settings: &'a Settings,
    /// The disk's fsync latency before the runs, when JetStream runs.
    pub fsync: Option<FsyncLatency>,
}

/// Prints the header as text.
pub(crate) fn print_header(h: &Header) {
    let m = &h.machine;
    println!("broker-bench: NATS throughput and latency ({})", h.date);
    println!(
        "machine   {}, {} logical CPUs ({} available to the bench), Linux {}, load average {}",
        m.cpu_model, m.cpus, m.available, m.kernel, m.load_at_start
    );
    if let Some(fsync) = h.fsync {
        println!("disk      {fsync}");
    }
    for t in h.targets.all() {
        let pid = t
            .pid
            .map_or_else(|| "pid unknown".into(), |p| format!("pid {p}"));
        println!(
            "server    {} ({}): {} at {} ({pid}; {}){}",
            t.name,
            suite_name(t.suite),
            t.version,
            t.url,
            t.info,
            if t.args.is_empty() {
                String::new()
            } else {
                format!(", started with {}", t.args)
            }
        );
    }
    let s = h.settings;
    let sizes: Vec<String> = h
        .targets
        .groups
        .iter()
        .map(|g| {
            let sizes: Vec<String> = s.sizes_for(g.suite).iter().map(|x| x.to_string()).collect();
            format!("{} B ({})", sizes.join(", "), suite_name(g.suite))
        })
        .collect();
    println!(
        "settings  runs {} (median shown, server order rotated per run), sizes {}",
        s.runs,
        sizes.join(", ")
    );
    if h.targets.groups.iter().any(|g| g.suite == Suite::JetStream) {
        println!(
            "          JetStream: file storage, PubAck window {}, pull batch {}",
            s.window, s.batch
        );
    }
    println!(
        "          messages per throughput run: {}; requests per latency run: {} \
         (after a warm-up of a tenth as many)",
        workload(s.messages),
        workload(s.requests)
    );
    println!();
}

fn workload(w: Workload) -> String {
    match w {
        Workload::Default => "benchmark default (count column)".into(),
        Workload::Count(n) => n.to_string(),
        Workload::For(d) => format!("as many as fit in {}", humantime::format_duration(d)),
    }
}

fn suite_name(suite: Suite) -> &'static str {
    match suite {
        Suite::Core => "core NATS",
        Suite::JetStream => "JetStream",
        Suite::Stan => "NATS Streaming",
    }
}

/// Prints, for each group of servers, the tables of medians, ratios and CPU use; then any
/// failures.
pub(crate) fn print_results(targets: &Targets, results: &[CaseResult], end: &Conditions) {
    for group in &targets.groups {
        let results: Vec<&CaseResult> = results.iter().filter(|r| r.suite == group.suite).collect();
        println!("== {}\n", suite_name(group.suite));
        print_group(&group.list, &results);
        println!();
    }
    print_failures(results);
    println!("\nload average at the end: {}", end.load_average);
    if let Some(fsync) = end.fsync {
        println!("disk at the end: {fsync}");
    }
}

fn print_group(targets: &[Target], results: &[&CaseResult]) {
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    let baseline = *names.last().unwrap_or(&"");
    let others = &names[..names.len().saturating_sub(1)];
    if !others.is_empty() {
        println!(
            "ratio = {0} / {baseline} for throughput and {baseline} / {0} for latency: \
             above 1.00 the {0} is better",
            others.join(" or ")
        );
    }
    println!("±x% = half the range of the runs: (max − min) / 2 / median\n");
    let mut rows = vec![header_row(&names, others, baseline)];
    for r in results {
        for (k, &metric) in r.metrics.iter().enumerate() {
            rows.push(figure_row(r, k, metric, others.len()));
        }
        if r.metrics.is_empty() {
            let mut row = vec![r.title.to_string(), size(r), count(r), "-".into()];
            row.extend(r.targets.iter().map(|_| "FAILED".to_string()));
            row.extend(others.iter().map(|_| "-".to_string()));
            rows.push(row);
        }
    }
    print_table(&rows);
    println!(
        "\nCPU use over the measured interval, median of the runs, in % of one core \
         (server process / this bench process):\n"
    );
    let mut rows = vec![["benchmark", "size"]
        .iter()
        .map(|s| s.to_string())
        .chain(names.iter().map(|n| n.to_string()))
        .collect()];
    for r in results {
        let mut row = vec![r.title.to_string(), size(r)];
        row.extend(r.targets.iter().map(|t| {
            let (server, client) = t.median_cpu();
            format!("{} / {}", pct(server), pct(client))
        }));
        rows.push(row);
    }
    print_table(&rows);
}

fn header_row(names: &[&str], others: &[&str], baseline: &str) -> Vec<String> {
    let mut row: Vec<String> = ["benchmark", "size", "count", "metric"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    row.extend(names.iter().map(|n| n.to_string()));
    row.extend(others.iter().map(|o| {
        if others.len() == 1 {
            "ratio".to_string()
        } else {
            format!("{o}/{baseline}")
        }
    }));
    row
}

fn figure_row(r: &CaseResult, k: usize, metric: Metric, ratios: usize) -> Vec<String> {
    let first = k == 0;
    let mut row = vec![
        if first {
            r.title.to_string()
        } else {
            String::new()
        },
        if first { size(r) } else { String::new() },
        if first { count(r) } else { String::new() },
        metric.name.to_string(),
    ];
    let medians: Vec<Option<f64>> = r.targets.iter().map(|t| t.median(metric)).collect();
    for (t, m) in r.targets.iter().zip(&medians) {
        row.push(match (m, t.spread(metric)) {
            (None, _) => "FAILED".into(),
            (Some(v), Some(s)) => format!("{} ±{:.0}%", value(metric, *v), s * 50.0),
            (Some(v), None) => value(metric, *v),
        });
    }
    let base = medians.last().copied().flatten();
    for m in medians.iter().take(ratios) {
        row.push(match (m, base) {
            (Some(a), Some(b)) if *a > 0.0 && b > 0.0 => {
                let ratio = if metric.higher_is_better {
                    a / b
                } else {
                    b / a
                };
                format!("{ratio:.2}")
            }
            _ => "-".into(),
        });
    }
    row
}

fn size(r: &CaseResult) -> String {
    format!("{} B", r.payload)
}

fn count(r: &CaseResult) -> String {
    match r.work {
        crate::bench::Work::Count(n) => si(n as f64),
        crate::bench::Work::For(d) => humantime::format_duration(d).to_string(),
    }
}

fn value(metric: Metric, v: f64) -> String {
    if metric.name.ends_with("msgs/s") {
        si(v)
    } else {
        format!("{v:.1}")
    }
}

/// 12.3M, 45.6k, 789.
fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "?".into(), |v| format!("{v:.0}%"))
}

fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

fn print_failures(results: &[CaseResult]) {
    for r in results {
        for t in &r.targets {
            for e in &t.errors {
                println!(
                    "\nFAILED {} {} B on {}: {e}",
                    r.benchmark, r.payload, t.target
                );
            }
        }
    }
}

/// Prints the header and every run as JSON.
pub(crate) fn print_json(
    h: &Header,
    results: &[CaseResult],
    end: &Conditions,
) -> anyhow::Result<()> {
    let s = h.settings;
    let medians: Vec<_> = results
        .iter()
        .map(|r| {
            let per_target: serde_json::Map<_, _> = r
                .targets
                .iter()
                .map(|t| {
                    let figures: serde_json::Map<_, _> = r
                        .metrics
                        .iter()
                        .map(|m| (m.name.to_string(), json!(t.median(*m))))
                        .collect();
                    (t.target.clone(), json!(figures))
                })
                .collect();
            json!({
                "benchmark": r.benchmark,
                "suite": r.suite,
                "payload": r.payload,
                "median": per_target,
            })
        })
        .collect();
    let doc = json!({
        "date": h.date,
        "machine": h.machine,
        "targets": h.targets.all().collect::<Vec<_>>(),
        "settings": {
            "runs": s.runs,
            "sizes": {
                "core": s.sizes_for(Suite::Core),
                "jetstream": s.sizes_for(Suite::JetStream),
            },
            "window": s.window,
            "batch": s.batch,
            "messages": workload(s.messages),
            "requests": workload(s.requests),
        },
        "medians": medians,
        "results": results,
        "fsync_at_start": h.fsync,
        "load_average_at_end": end.load_average,
        "fsync_at_end": end.fsync,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
