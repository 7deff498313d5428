//! Runs every selected benchmark and size against every target of its suite, `--runs` times,
//! rotating which server goes first so none always runs on a warmer (or busier) machine.

use std::time::Duration;

use anyhow::bail;
use serde::Serialize;

use crate::args::Settings;
use crate::bench::{self, Benchmark, Case, Env, Metric, Sample, Suite, Work, WorkUnit};
use crate::targets::{Group, Targets};

/// A pause between runs so the previous run's leftovers (socket buffers, a Go GC cycle) do not
/// land in the next measurement.
const SETTLE: Duration = Duration::from_millis(200);

/// Everything measured for one benchmark and payload size.
#[derive(Debug, Serialize)]
pub(crate) struct CaseResult {
    /// The benchmark's short name.
    pub benchmark: &'static str,
    /// The benchmark's table title.
    pub title: &'static str,
    /// The servers it ran on.
    pub suite: Suite,
    /// Payload bytes per message.
    pub payload: usize,
    /// The work each run did.
    #[serde(serialize_with = "serialize_work")]
    pub work: Work,
    /// The metrics, in the benchmark's order.
    pub metrics: Vec<Metric>,
    /// One entry per target, in target order.
    pub targets: Vec<TargetResult>,
}

/// The runs of one case against one target.
#[derive(Debug, Serialize)]
pub(crate) struct TargetResult {
    /// The target's name.
    pub target: String,
    /// The successful runs.
    pub samples: Vec<Sample>,
    /// Why runs failed; any failure marks the case failed for this target.
    pub errors: Vec<String>,
}

impl TargetResult {
    /// The median of `metric` over the successful runs, unless a run failed.
    pub(crate) fn median(&self, metric: Metric) -> Option<f64> {
        if !self.errors.is_empty() {
            return None;
        }
        median(
            self.samples
                .iter()
                .filter_map(|s| s.value(metric))
                .collect(),
        )
    }

    /// (max − min) / median of `metric` over the runs.
    pub(crate) fn spread(&self, metric: Metric) -> Option<f64> {
        let values: Vec<f64> = self
            .samples
            .iter()
            .filter_map(|s| s.value(metric))
            .collect();
        let (min, max) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let mid = self.median(metric)?;
        (values.len() > 1 && mid > 0.0).then(|| (max - min) / mid)
    }

    /// The median server and client CPU use over the successful runs.
    pub(crate) fn median_cpu(&self) -> (Option<f64>, Option<f64>) {
        let server = self
            .samples
            .iter()
            .filter_map(|s| s.cpu.server_pct)
            .collect();
        let client = self
            .samples
            .iter()
            .filter_map(|s| s.cpu.client_pct)
            .collect();
        (median(server), median(client))
    }
}

/// The median of `values`, or `None` when empty.
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

fn serialize_work<S: serde::Serializer>(work: &Work, s: S) -> Result<S::Ok, S::Error> {
    match work {
        Work::Count(n) => s.serialize_str(&format!("{n} per run")),
        Work::For(d) => s.serialize_str(&format!("{} per run", humantime::format_duration(*d))),
    }
}

/// The benchmarks `--only` names (all when empty), in their usual order.
pub(crate) fn select(settings: &Settings) -> anyhow::Result<Vec<Box<dyn Benchmark>>> {
    let only = &settings.only;
    let all = bench::all(settings);
    let names: Vec<&str> = all.iter().map(|b| b.name()).collect();
    if let Some(unknown) = only.iter().find(|o| !names.contains(&o.as_str())) {
        bail!(
            "unknown benchmark {unknown:?}: choose from {}",
            names.join(", ")
        );
    }
    Ok(all
        .into_iter()
        .filter(|b| only.is_empty() || only.iter().any(|o| o == b.name()))
        .collect())
}

/// The suites whose servers `benches` need, in order of first use.
pub(crate) fn suites(benches: &[Box<dyn Benchmark>]) -> Vec<Suite> {
    let mut suites = Vec::new();
    for b in benches {
        if !suites.contains(&b.suite()) {
            suites.push(b.suite());
        }
    }
    suites
}

/// Runs `benches` over every size, run and target of their suite; progress goes to stderr.
pub(crate) fn run_all(
    settings: &Settings,
    env: &Env,
    targets: &mut Targets,
    benches: &[Box<dyn Benchmark>],
) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for bench in benches {
        let Some(group) = targets.groups.iter_mut().find(|g| g.suite == bench.suite()) else {
            continue; // prepared from the same benches, so never
        };
        for &payload in settings.sizes_for(bench.suite()) {
            let workload = match bench.unit() {
                WorkUnit::Messages => settings.messages,
                WorkUnit::Requests => settings.requests,
            };
            let case = Case {
                payload,
                work: Work::resolve(workload, bench.as_ref(), payload),
            };
            results.push(run_case(bench.as_ref(), case, settings.runs, env, group));
        }
    }
    results
}

fn run_case(
    bench: &dyn Benchmark,
    case: Case,
    runs: usize,
    env: &Env,
    group: &mut Group,
) -> CaseResult {
    let mut per_target: Vec<TargetResult> = group
        .list
        .iter()
        .map(|t| TargetResult {
            target: t.name.clone(),
            samples: Vec::new(),
            errors: Vec::new(),
        })
        .collect();
    let mut metrics = Vec::new();
    let n = group.list.len();
    for run in 0..runs {
        for k in 0..n {
            // Run r starts with target r (mod n): with two servers, they alternate.
            let i = (run + k) % n;
            let outcome = if bench.fresh_server() {
                group.restart(i)
            } else {
                Ok(())
            };
            std::thread::sleep(SETTLE);
            let outcome = outcome.and_then(|()| bench.run(env, &group.list[i], &case));
            eprintln!(
                "{} {} B, run {}/{runs}, {}: {}",
                bench.name(),
                case.payload,
                run + 1,
                group.list[i].name,
                describe(&outcome)
            );
            match outcome {
                Ok(sample) => {
                    metrics = sample.figures.iter().map(|f| f.metric).collect();
                    per_target[i].samples.push(sample);
                }
                Err(e) => per_target[i].errors.push(format!("{e:#}")),
            }
        }
    }
    CaseResult {
        benchmark: bench.name(),
        title: bench.title(),
        suite: bench.suite(),
        payload: case.payload,
        work: case.work,
        metrics,
        targets: per_target,
    }
}

fn describe(outcome: &anyhow::Result<Sample>) -> String {
    match outcome {
        Ok(s) => {
            let figures: Vec<String> = s
                .figures
                .iter()
                .map(|f| format!("{} {:.1}", f.metric.name, f.value))
                .collect();
            format!("{} in {:.2} s; {}", s.count, s.seconds, figures.join(", "))
        }
        Err(e) => format!("FAILED: {e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    fn only(names: &[&str]) -> Settings {
        Settings {
            only: names.iter().map(|n| n.to_string()).collect(),
            ..Settings::default()
        }
    }

    #[test]
    fn only_refuses_unknown_benchmarks() {
        assert!(select(&only(&["nope"])).is_err());
        assert_eq!(select(&only(&["reqrep"])).unwrap().len(), 1);
        let all = bench::all(&Settings::default()).len();
        assert_eq!(select(&only(&[])).unwrap().len(), all);
    }

    #[test]
    fn only_the_suites_of_the_selected_benchmarks_are_started() {
        let js = select(&only(&["js-consume", "js-pub"])).unwrap();
        assert_eq!(suites(&js), [Suite::JetStream]);
        let both = select(&only(&["js-rss", "pub"])).unwrap();
        assert_eq!(suites(&both), [Suite::Core, Suite::JetStream]);
    }
}
