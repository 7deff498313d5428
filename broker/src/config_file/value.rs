//! The generic value tree a configuration file parses into, and the scalar grammars it shares
//! with the command line: sizes (`1MB`) and durations (`1h30m`).

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Where something was written: file, 1-based line and 1-based column (in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as it was named to the parser (or by an `include`).
    pub file: Arc<Path>,
    /// Line, counting from 1.
    pub line: u32,
    /// Column in characters, counting from 1.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One value of the tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A quoted string, or a bare word that is not a number or a boolean.
    String(String),
    /// An integer, with any size suffix already applied (`1KB` is 1024).
    Integer(i64),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// `true/false`, `yes/no`, `on/off`.
    Bool(bool),
    /// `[a, b, c]`.
    Array(Vec<Node>),
    /// `{ key: value ... }`, and the file itself.
    Map(Map),
}

/// A value with where it was written and, for scalars, the text as written, so that a setting
/// can read `2m` as two minutes although the bare word also reads as two million.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts.
    pub at: Location,
    /// The scalar as written (without quotes, escapes resolved); empty for arrays and maps.
    pub text: String,
}

/// One `key: value` of a map, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key as written.
    pub key: String,
    /// Where the key starts.
    pub key_at: Location,
    /// The value.
    pub node: Node,
    /// Whether a later `$key` referred to it: such keys are variables, not settings.
    pub used_as_variable: bool,
}

/// The entries of a block, in the order written; a repeated key appears twice, the last wins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    /// The entries.
    pub entries: Vec<Entry>,
}

impl Map {
    /// The value of the last entry whose key is exactly `key`, marking it as used as a variable.
    pub(crate) fn take_variable(&mut self, key: &str) -> Option<Node> {
        let entry = self.entries.iter_mut().rev().find(|e| e.key == key)?;
        entry.used_as_variable = true;
        Some(entry.node.clone())
    }
}

/// Reads a bare (unquoted) word as the most specific scalar it spells.
pub(crate) fn classify(word: &str) -> Value {
    match word.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => return Value::Bool(true),
        "false" | "no" | "off" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_size(word) {
        return Value::Integer(n);
    }
    if looks_like_float(word) {
        if let Ok(f) = word.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::String(word.to_string())
}

fn looks_like_float(word: &str) -> bool {
    let digits = word.strip_prefix('-').unwrap_or(word);
    digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.contains(['.', 'e', 'E'])
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
}

/// Size suffixes, as nats-server: a bare letter is a power of 1000, `KB`/`KI`/`KIB` of 1024.
const SIZE_SUFFIXES: &[(&str, i64)] = &[
    ("", 1),
    ("k", 1_000),
    ("kb", 1 << 10),
    ("ki", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1_000_000),
    ("mb", 1 << 20),
    ("mi", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1_000_000_000),
    ("gb", 1 << 30),
    ("gi", 1 << 30),
    ("gib", 1 << 30),
    ("t", 1_000_000_000_000),
    ("tb", 1 << 40),
    ("ti", 1 << 40),
    ("tib", 1 << 40),
];

/// Parses an integer with an optional size suffix (`512`, `-1`, `64KB`, `1G`), case-insensitive;
/// `None` if the word is not one or does not fit in an `i64`.
pub(crate) fn parse_size(word: &str) -> Option<i64> {
    let unsigned = word.strip_prefix('-').unwrap_or(word);
    let split = unsigned
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unsigned.len());
    let (digits, suffix) = unsigned.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let suffix = suffix.to_ascii_lowercase();
    let (_, multiplier) = SIZE_SUFFIXES.iter().find(|(s, _)| *s == suffix)?;
    let n: i64 = digits.parse().ok()?;
    let n = n.checked_mul(*multiplier)?;
    Some(if unsigned.len() < word.len() { -n } else { n })
}

/// Units of a Go duration, longest spelling first within each shared prefix.
const DURATION_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a duration as Go's `time.ParseDuration` does (`500ms`, `1h30m`, `1.5s`), and also a
/// bare non-negative integer as whole seconds (`10`), as NATS configuration files do.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("duration '{text}' is too long"));
    }
    if text.starts_with('-') {
        return Err(format!("duration '{text}' must not be negative"));
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return Err(format!(
            "invalid duration '{text}': expected e.g. 5s, 500ms, 2m or 1h30m"
        ));
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (part, tail) = duration_part(rest).ok_or_else(|| {
            format!("invalid duration '{text}': expected e.g. 5s, 500ms, 2m or 1h30m")
        })?;
        nanos = nanos
            .checked_add(part)
            .ok_or_else(|| format!("duration '{text}' is too long"))?;
        rest = tail;
    }
    let secs = u64::try_from(nanos / 1_000_000_000)
        .map_err(|_| format!("duration '{text}' is too long"))?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// One `<number>[.<fraction>]<unit>` at the start of `text`, in nanoseconds, and what follows.
fn duration_part(text: &str) -> Option<(u128, &str)> {
    let int_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (int, rest) = text.split_at(int_end);
    let (frac, rest) = match rest.strip_prefix('.') {
        Some(r) => r.split_at(r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len())),
        None => ("", rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let unit_end = rest
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_end);
    let (_, scale) = DURATION_UNITS.iter().find(|(u, _)| *u == unit)?;
    let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut nanos = whole.checked_mul(*scale)?;
    // Digits past the 18th cannot change the result by a nanosecond of a one-hour unit.
    let frac = &frac[..frac.len().min(18)];
    if !frac.is_empty() {
        let f: u128 = frac.parse().ok()?;
        nanos = nanos.checked_add(f * scale / 10u128.pow(frac.len() as u32))?;
    }
    Some((nanos, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_words_read_as_the_scalar_they_spell() {
        assert_eq!(classify("4222"), Value::Integer(4222));
        assert_eq!(classify("-1"), Value::Integer(-1));
        assert_eq!(classify("1.5"), Value::Float(1.5));
        assert_eq!(classify("YES"), Value::Bool(true));
        assert_eq!(classify("off"), Value::Bool(false));
        assert_eq!(classify("127.0.0.1"), Value::String("127.0.0.1".into()));
        assert_eq!(classify("inf"), Value::String("inf".into()));
        assert_eq!(classify("1h30m"), Value::String("1h30m".into()));
    }

    #[test]
    fn size_suffixes_follow_nats_server() {
        assert_eq!(parse_size("1KB"), Some(1024));
        assert_eq!(parse_size("1k"), Some(1000));
        assert_eq!(parse_size("8mb"), Some(8 << 20));
        assert_eq!(parse_size("1M"), Some(1_000_000));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1G"), Some(1_000_000_000));
        assert_eq!(parse_size("-2k"), Some(-2000));
        assert_eq!(parse_size("1XB"), None);
        assert_eq!(parse_size("KB"), None);
        assert_eq!(parse_size("99999999999999999999"), None);
        assert_eq!(parse_size("9000000000000TB"), None);
    }

    #[test]
    fn durations_read_as_go_durations_or_whole_seconds() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("5s"), Ok(ms(5_000)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h30m"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_duration("10"), Ok(ms(10_000)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
    }

    #[test]
    fn malformed_durations_are_rejected_with_a_reason() {
        for bad in ["", "s", "5q", "5x", "5s3", "-5s", ".s", "abc", "1..5s"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("duration"), "{bad}: {err}");
        }
        assert!(parse_duration("99999999999999999999999h").is_err());
        assert!(parse_duration("99999999999999999999").is_err());
    }
}
