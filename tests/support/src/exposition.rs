//! A strict parser of the Prometheus text exposition format (version 0.0.4), for tests of
//! `/metrics`: stricter than a scraper, so that what passes here any Prometheus reads.
//!
//! It refuses a sample whose family has no `# TYPE` and `# HELP` before it, a family declared
//! twice or whose samples are not together, a malformed name, label or value, a series given
//! twice, and a histogram without cumulative buckets, a `+Inf` bucket equal to its `_count`, or
//! a `_sum`.

use std::collections::{BTreeMap, BTreeSet};

/// A family's type, from its `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Its name (a histogram's carry `_bucket`, `_sum` or `_count`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A metric family: its type, help and samples.
#[derive(Clone, Debug)]
pub struct Family {
    pub kind: Kind,
    pub help: String,
    pub samples: Vec<Sample>,
}

/// A parsed `/metrics` body, by family name.
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    pub families: BTreeMap<String, Family>,
}

impl Exposition {
    /// The family `name`, or an error naming what is there.
    pub fn family(&self, name: &str) -> Result<&Family, String> {
        self.families.get(name).ok_or_else(|| {
            let names: Vec<&String> = self.families.keys().collect();
            format!("no family {name}; there are {names:?}")
        })
    }

    /// The `_count` samples of histogram `name` whose labels include `with`.
    pub fn histogram_counts(&self, name: &str, with: &[(&str, &str)]) -> Result<f64, String> {
        let family = self.family(name)?;
        if family.kind != Kind::Histogram {
            return Err(format!("{name} is a {:?}, not a histogram", family.kind));
        }
        let count = format!("{name}_count");
        Ok(family
            .samples
            .iter()
            .filter(|s| s.name == count)
            .filter(|s| {
                with.iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum())
    }
}

/// Parses `text`; the error names the line.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut parser = Parser::default();
    for (index, line) in text.lines().enumerate() {
        parser
            .line(line)
            .map_err(|err| format!("line {}: {err}: {line:?}", index + 1))?;
    }
    parser.finish()
}

#[derive(Default)]
struct Parser {
    exposition: Exposition,
    help: BTreeMap<String, String>,
    current: Option<String>,
    closed: BTreeSet<String>,
    series: BTreeSet<String>,
}

impl Parser {
    fn line(&mut self, line: &str) -> Result<(), String> {
        if line.trim().is_empty() {
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            check_name(name)?;
            if self.help.insert(name.to_owned(), help.to_owned()).is_some() {
                return Err(format!("a second HELP for {name}"));
            }
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            return self.declare(rest);
        }
        if line.starts_with('#') {
            return Ok(());
        }
        self.sample(line)
    }

    fn declare(&mut self, rest: &str) -> Result<(), String> {
        let (name, kind) = rest.split_once(' ').ok_or("a TYPE without a type")?;
        check_name(name)?;
        let kind = match kind {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            "untyped" => Kind::Untyped,
            other => return Err(format!("unknown type {other:?}")),
        };
        if self.exposition.families.contains_key(name) {
            return Err(format!("a second TYPE for {name}"));
        }
        let help = self
            .help
            .get(name)
            .cloned()
            .ok_or_else(|| format!("{name} has a TYPE but no HELP before it"))?;
        if let Some(previous) = self.current.replace(name.to_owned()) {
            self.closed.insert(previous);
        }
        let family = Family {
            kind,
            help,
            samples: Vec::new(),
        };
        self.exposition.families.insert(name.to_owned(), family);
        Ok(())
    }

    fn sample(&mut self, line: &str) -> Result<(), String> {
        let (name, labels, rest) = split_sample(line)?;
        let family_name = self
            .current
            .clone()
            .ok_or("a sample before any TYPE line")?;
        let family = &self.exposition.families[&family_name];
        let allowed: Vec<String> = match family.kind {
            Kind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|suffix| format!("{family_name}{suffix}"))
                .collect(),
            Kind::Summary => ["", "_sum", "_count"]
                .iter()
                .map(|suffix| format!("{family_name}{suffix}"))
                .collect(),
            _ => vec![family_name.clone()],
        };
        if !allowed.contains(&name.to_owned()) {
            let declared = self.closed.iter().any(|f| name.starts_with(f.as_str()));
            let why = if declared {
                "its family's samples are not together"
            } else {
                "it belongs to no family declared with TYPE"
            };
            return Err(format!("sample {name}: {why}"));
        }
        let mut fields = rest.split_whitespace();
        let value = parse_value(fields.next().ok_or("a sample without a value")?)?;
        if let Some(timestamp) = fields.next() {
            timestamp
                .parse::<i64>()
                .map_err(|_| format!("timestamp {timestamp:?} is not an integer"))?;
        }
        if fields.next().is_some() {
            return Err("text after the timestamp".to_owned());
        }
        let key = format!("{name}{labels:?}");
        if !self.series.insert(key) {
            return Err(format!("series {name}{labels:?} given twice"));
        }
        let sample = Sample {
            name: name.to_owned(),
            labels,
            value,
        };
        if let Some(family) = self.exposition.families.get_mut(&family_name) {
            family.samples.push(sample);
        }
        Ok(())
    }

    fn finish(self) -> Result<Exposition, String> {
        for (name, family) in &self.exposition.families {
            if family.kind == Kind::Histogram {
                check_histogram(name, &family.samples)?;
            }
        }
        Ok(self.exposition)
    }
}

/// `name{labels} rest` or `name rest`.
fn split_sample(line: &str) -> Result<(&str, BTreeMap<String, String>, &str), String> {
    let end = line.find(['{', ' ']).ok_or("a sample without a value")?;
    let name = &line[..end];
    check_name(name)?;
    if line[end..].starts_with(' ') {
        return Ok((name, BTreeMap::new(), &line[end..]));
    }
    let (labels, rest) = parse_labels(&line[end + 1..])?;
    if !rest.starts_with(' ') {
        return Err("no space between the labels and the value".to_owned());
    }
    Ok((name, labels, rest))
}

/// Parses `k="v",k2="v2"}` and returns the labels and what follows the `}`.
fn parse_labels(mut text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        if let Some(rest) = text.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let (key, rest) = text.split_once("=\"").ok_or("a label without =\"")?;
        let valid = key
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if key.is_empty() || !valid || key.starts_with("__") {
            return Err(format!("label name {key:?} is not valid"));
        }
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label {key} is not closed")),
                Some((at, '"')) => break at,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in label {key}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key} given twice"));
        }
        text = &rest[end + 1..];
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.chars().enumerate().all(|(i, c)| {
            c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
        });
    if valid {
        Ok(())
    } else {
        Err(format!("metric name {name:?} is not valid"))
    }
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        other => other
            .parse()
            .map_err(|_| format!("value {other:?} is not a number")),
    }
}

/// Each label set of a histogram: buckets cumulative, a `+Inf` bucket equal to `_count`, and a
/// `_sum`.
fn check_histogram(name: &str, samples: &[Sample]) -> Result<(), String> {
    /// Per label set: `(le, count)` buckets, the `_count`, whether there is a `_sum`.
    type Series = (Vec<(f64, f64)>, Option<f64>, bool);
    let mut series: BTreeMap<Vec<(String, String)>, Series> = BTreeMap::new();
    for sample in samples {
        let mut labels = sample.labels.clone();
        let le = labels.remove("le");
        let entry = series.entry(labels.into_iter().collect()).or_default();
        if sample.name.ends_with("_bucket") {
            let le = le.ok_or_else(|| format!("{name}: a bucket without le"))?;
            entry.0.push((parse_value(&le)?, sample.value));
        } else if sample.name.ends_with("_count") {
            entry.1 = Some(sample.value);
        } else {
            entry.2 = true;
        }
    }
    for (labels, (buckets, count, sum)) in series {
        let at = format!("{name}{labels:?}");
        let mut previous = (f64::NEG_INFINITY, 0.0);
        for &(le, value) in &buckets {
            if le <= previous.0 || value < previous.1 {
                return Err(format!("{at}: buckets are not in order or not cumulative"));
            }
            previous = (le, value);
        }
        if previous.0 != f64::INFINITY {
            return Err(format!("{at}: no +Inf bucket"));
        }
        if count != Some(previous.1) {
            return Err(format!(
                "{at}: _count {count:?} is not the +Inf bucket {}",
                previous.1
            ));
        }
        if !sum {
            return Err(format!("{at}: no _sum"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
# HELP requests_total Requests.
# TYPE requests_total counter
requests_total{status=\"200\",path=\"a\\\"b\"} 3
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{le=\"0.1\"} 1
latency_seconds_bucket{le=\"+Inf\"} 2
latency_seconds_sum 0.5
latency_seconds_count 2
";

    #[test]
    fn a_well_formed_body_parses_with_its_histogram() {
        let exposition = parse(GOOD).unwrap();
        let requests = exposition.family("requests_total").unwrap();
        assert_eq!(requests.samples[0].labels["path"], "a\"b");
        assert_eq!(exposition.histogram_counts("latency_seconds", &[]), Ok(2.0));
    }

    #[test]
    fn what_a_scraper_could_misread_is_refused() {
        let cases = [
            ("requests_total 1\n", "before any TYPE"),
            ("# TYPE x counter\nx 1\n", "no HELP"),
            (
                &GOOD.replace("_count 2", "_count 3"),
                "is not the +Inf bucket",
            ),
            (
                &GOOD.replace("le=\"+Inf\"} 2", "le=\"+Inf\"} 0"),
                "not cumulative",
            ),
            (&GOOD.replace("latency_seconds_sum 0.5\n", ""), "no _sum"),
            (
                &format!("{GOOD}requests_total{{status=\"200\"}} 1\n"),
                "not together",
            ),
            (&GOOD.replace("} 3", "} three"), "not a number"),
            (&GOOD.replace("status=", "1status="), "not valid"),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
    }
}
