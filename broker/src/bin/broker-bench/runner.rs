//! Runs every selected benchmark and size against every target, `--runs` times, alternating
//! which server goes first so neither always runs on a warmer (or busier) machine.

use std::time::Duration;

use anyhow::bail;
use serde::Serialize;

use crate::args::Settings;
use crate::bench::{self, Benchmark, Case, Env, Metric, Sample, Work, WorkUnit};
use crate::targets::Target;

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
pub(crate) fn select(only: &[String]) -> anyhow::Result<Vec<Box<dyn Benchmark>>> {
    let all = bench::all();
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

/// Runs `benches` over every size, run and target; progress goes to stderr.
pub(crate) fn run_all(
    settings: &Settings,
    env: &Env,
    targets: &[Target],
    benches: &[Box<dyn Benchmark>],
) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for bench in benches {
        for &payload in &settings.sizes {
            let workload = match bench.unit() {
                WorkUnit::Messages => settings.messages,
                WorkUnit::Requests => settings.requests,
            };
            let case = Case {
                payload,
                work: Work::resolve(workload, bench.as_ref(), payload),
            };
            results.push(run_case(bench.as_ref(), case, settings.runs, env, targets));
        }
    }
    results
}

fn run_case(
    bench: &dyn Benchmark,
    case: Case,
    runs: usize,
    env: &Env,
    targets: &[Target],
) -> CaseResult {
    let mut per_target: Vec<TargetResult> = targets
        .iter()
        .map(|t| TargetResult {
            target: t.name.clone(),
            samples: Vec::new(),
            errors: Vec::new(),
        })
        .collect();
    let mut metrics = Vec::new();
    for run in 0..runs {
        for k in 0..targets.len() {
            // Run r starts with target r (mod n): with two servers, they alternate.
            let i = (run + k) % targets.len();
            std::thread::sleep(SETTLE);
            let outcome = bench.run(env, &targets[i], &case);
            eprintln!(
                "{} {} B, run {}/{runs}, {}: {}",
                bench.name(),
                case.payload,
                run + 1,
                targets[i].name,
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

    #[test]
    fn only_refuses_unknown_benchmarks() {
        assert!(select(&["nope".into()]).is_err());
        assert_eq!(select(&["reqrep".into()]).unwrap().len(), 1);
        assert_eq!(select(&[]).unwrap().len(), bench::all().len());
    }
}
