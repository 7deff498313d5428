//! Subject transforms, as nats-server 2.10 defines them for a stream's `subject_transform`, its
//! `republish` and the `subject_transforms` of mirrors and sources: a source pattern and a
//! destination whose tokens are literals, `$n` or a mapping function between `{{` and `}}`:
//! `wildcard(n)`, `partition(buckets, n...)`, `split(n, delimiter)`, `splitFromLeft(n, pos)`,
//! `splitFromRight(n, pos)`, `sliceFromLeft(n, size)`, `sliceFromRight(n, size)`,
//! `left(n, len)` and `right(n, len)`. `n` counts the source's `*` wildcards from 1.
//!
//! A transform is parsed once, when the configuration is checked, and applied per message
//! without parsing again.

use std::fmt;

use super::subjects::matches;
use parse::{parse_token, split_call};

#[path = "transform_parse.rs"]
mod parse;

/// Why a transform cannot be built; `Display` gives nats-server's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TransformError {
    /// Source or destination is not a usable subject (or their `>` differ).
    BadSubject,
    /// A destination token nats-server refuses: the reason and the token.
    Destination(Reason, String),
}

/// What is wrong with a destination token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    InvalidSubject,
    UnknownFunction,
    IndexOutOfRange,
    NotEnoughArgs,
    InvalidArg,
    TooManyArgs,
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransformError::BadSubject => f.write_str("invalid subject"),
            TransformError::Destination(reason, token) => {
                let why = match reason {
                    Reason::InvalidSubject => "invalid subject",
                    Reason::UnknownFunction => "unknown function",
                    Reason::IndexOutOfRange => "wildcard index out of range",
                    Reason::NotEnoughArgs => "not enough arguments passed to the function",
                    Reason::InvalidArg => "function argument is invalid or in the wrong format",
                    Reason::TooManyArgs => "too many arguments passed to the function",
                };
                write!(f, "invalid mapping destination: {why} in {token}")
            }
        }
    }
}

/// One destination token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    Literal(String),
    /// The trailing `>`: the rest of the subject's tokens.
    Rest,
    /// The source token at this position.
    Wildcard(usize),
    /// A bucket number: FNV-1a of the tokens at these positions, modulo `buckets`.
    Partition {
        buckets: u32,
        of: Vec<usize>,
    },
    SplitFromLeft(usize, i64),
    SplitFromRight(usize, i64),
    SliceFromLeft(usize, i64),
    SliceFromRight(usize, i64),
    Split(usize, String),
    Left(usize, i64),
    Right(usize, i64),
}

/// A parsed transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transform {
    src: String,
    dest: String,
    /// How many tokens the source has (for the `>` tail).
    src_len: usize,
    /// The destination, token by token; empty when the source has no wildcards (every
    /// matching subject becomes `dest` as written).
    tokens: Vec<Token>,
}

/// The mapping functions, by the name nats-server accepts: the first letter and each capital
/// may be either case.
pub(super) const FUNCTIONS: [&str; 9] = [
    "Wildcard",
    "Partition",
    "SplitFromLeft",
    "SplitFromRight",
    "SliceFromLeft",
    "SliceFromRight",
    "Right",
    "Left",
    "Split",
];

impl Transform {
    /// Builds the transform from `src` (empty: `>`) to `dest`; `None` for an empty `dest`
    /// (nothing to transform).
    pub fn new(src: &str, dest: &str) -> Result<Option<Transform>, TransformError> {
        if dest.is_empty() {
            return Ok(None);
        }
        let src = if src.is_empty() { ">" } else { src };
        let (src_tokens, src_pwcs, src_fwc) =
            subject_info(src).ok_or(TransformError::BadSubject)?;
        let (dest_tokens, dest_pwcs, dest_fwc) =
            subject_info(dest).ok_or(TransformError::BadSubject)?;
        if dest_pwcs > 0 || src_fwc != dest_fwc {
            return Err(TransformError::BadSubject);
        }
        // The position in the source of each `*`, by its number from 1.
        let wildcard_at: Vec<usize> = src_tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == "*")
            .map(|(i, _)| i)
            .collect();
        let position = |n: i64| -> usize {
            // nats-server maps numbers below 1 to the first token.
            usize::try_from(n - 1)
                .ok()
                .and_then(|i| wildcard_at.get(i).copied())
                .unwrap_or(0)
        };
        let mut tokens = Vec::with_capacity(dest_tokens.len());
        for token in &dest_tokens {
            let parsed = parse_token(token)?;
            let Some(function) = parsed else {
                tokens.push(match *token {
                    ">" => Token::Rest,
                    t => Token::Literal(t.to_string()),
                });
                continue;
            };
            if src_pwcs == 0 {
                return Err(out_of_range(token));
            }
            if let Some(&n) = function.indexes.iter().find(|&&n| n > src_pwcs as i64) {
                return Err(out_of_range(&format!("{token}: [{n}]")));
            }
            tokens.push(function.build(&position)?);
        }
        if src_pwcs == 0 && !src_fwc {
            tokens.clear();
        }
        Ok(Some(Transform {
            src: src.to_string(),
            dest: dest.to_string(),
            src_len: src_tokens.len(),
            tokens,
        }))
    }

    /// The transformed subject, or `None` when `subject` does not match the source.
    pub fn apply(&self, subject: &str) -> Option<String> {
        if self.src == ">" && self.dest == ">" {
            return Some(subject.to_string());
        }
        let parts: Vec<&str> = subject.split('.').collect();
        if parts.iter().any(|t| t.is_empty() || *t == "*" || *t == ">") {
            return None;
        }
        if self.src != ">" && !matches(subject, &self.src) {
            return None;
        }
        if self.tokens.is_empty() {
            return Some(self.dest.clone());
        }
        let mut out = String::with_capacity(subject.len() + self.dest.len());
        let last = self.tokens.len() - 1;
        for (i, token) in self.tokens.iter().enumerate() {
            if let Token::Rest = token {
                break;
            }
            write_token(&mut out, token, &parts);
            if i < last {
                out.push('.');
            }
        }
        if let Some(Token::Rest) = self.tokens.last() {
            let from = self.src_len.saturating_sub(1);
            out.push_str(&parts[from.min(parts.len())..].join("."));
        }
        Some(out)
    }
}

pub(super) fn out_of_range(token: &str) -> TransformError {
    TransformError::Destination(Reason::IndexOutOfRange, token.to_string())
}

pub(super) fn bad(reason: Reason, token: &str) -> TransformError {
    TransformError::Destination(reason, token.to_string())
}

/// A subject's tokens, `*` count and whether it ends in `>`; `None` when it is not a subject
/// (an empty token, or something after `>`).
fn subject_info(subject: &str) -> Option<(Vec<&str>, usize, bool)> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let (mut pwcs, mut fwc) = (0, false);
    for t in &tokens {
        if t.is_empty() || fwc {
            return None;
        }
        match *t {
            ">" => fwc = true,
            "*" => pwcs += 1,
            _ => {}
        }
    }
    Some((tokens, pwcs, fwc))
}

/// Checks a destination as nats-server does for a source's transforms: tokens, `>` last and
/// only known functions.
pub(crate) fn validate_destination(dest: &str) -> Result<(), TransformError> {
    if dest.is_empty() {
        return Ok(());
    }
    let mut fwc = false;
    for t in dest.split('.') {
        if t.is_empty() || fwc {
            return Err(bad(Reason::InvalidSubject, t));
        }
        if t.len() > 4 && t.starts_with("{{") && t.ends_with("}}") {
            if split_call(&t[2..t.len() - 2]).is_none() {
                return Err(bad(Reason::UnknownFunction, t));
            }
            continue;
        }
        if t == ">" {
            fwc = true;
        } else if t.contains(['\t', '\n', '\x0c', '\r', ' ']) {
            return Err(bad(Reason::InvalidSubject, t));
        }
    }
    Ok(())
}

fn write_token(out: &mut String, token: &Token, parts: &[&str]) {
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let within = |n: i64, len: usize| usize::try_from(n).ok().filter(|&n| n > 0 && n < len);
    match token {
        Token::Literal(t) => out.push_str(t),
        Token::Rest => {}
        Token::Wildcard(i) => out.push_str(part(*i)),
        Token::Partition { buckets, of } => {
            let mut hash: u32 = 0x811c_9dc5;
            for b in of.iter().flat_map(|&i| part(i).bytes()) {
                hash ^= u32::from(b);
                hash = hash.wrapping_mul(0x0100_0193);
            }
            out.push_str(&(hash % buckets).to_string());
        }
        Token::SplitFromLeft(i, n) | Token::SplitFromRight(i, n) => {
            let t = part(*i);
            match within(*n, t.len()) {
                Some(n) => {
                    let at = if matches!(token, Token::SplitFromLeft(..)) {
                        n
                    } else {
                        t.len() - n
                    };
                    push_split(out, t, at);
                }
                None => out.push_str(t),
            }
        }
        Token::SliceFromLeft(i, n) => {
            let t = part(*i);
            match within(*n, t.len()) {
                Some(size) => push_slices(out, t, size, 0),
                None => out.push_str(t),
            }
        }
        Token::SliceFromRight(i, n) => {
            let t = part(*i);
            match within(*n, t.len()) {
                Some(size) => push_slices(out, t, size, t.len() % size),
                None => out.push_str(t),
            }
        }
        Token::Split(i, delimiter) => {
            let pieces: Vec<&str> = part(*i).split(delimiter.as_str()).collect();
            for (j, piece) in pieces.iter().enumerate() {
                out.push_str(piece);
                let next_non_empty = pieces.get(j + 1).is_some_and(|p| !p.is_empty());
                if next_non_empty && !(j == 0 && piece.is_empty()) {
                    out.push('.');
                }
            }
        }
        Token::Left(i, n) | Token::Right(i, n) => {
            let t = part(*i);
            match within(*n, t.len()) {
                Some(n) if matches!(token, Token::Left(..)) => out.push_str(byte_slice(t, 0, n)),
                Some(n) => out.push_str(byte_slice(t, t.len() - n, t.len())),
                None => out.push_str(t),
            }
        }
    }
}

/// `t[from..to]` by bytes, as nats-server slices (a cut inside a UTF-8 character keeps the
/// whole character rather than failing).
fn byte_slice(t: &str, from: usize, to: usize) -> &str {
    let floor = |mut i: usize| {
        while !t.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    &t[floor(from)..floor(to).max(floor(from))]
}

fn push_split(out: &mut String, t: &str, at: usize) {
    out.push_str(byte_slice(t, 0, at));
    out.push('.');
    out.push_str(byte_slice(t, at, t.len()));
}

/// Slices of `size` bytes; a first slice of `head` bytes when slicing from the right, the
/// remainder as the last slice when slicing from the left.
fn push_slices(out: &mut String, t: &str, size: usize, head: usize) {
    let mut pieces = Vec::new();
    if head > 0 {
        pieces.push(byte_slice(t, 0, head));
    }
    let mut i = head;
    while i < t.len() {
        let end = (i + size).min(t.len());
        pieces.push(byte_slice(t, i, end));
        i = end;
    }
    out.push_str(&pieces.join("."));
}

#[cfg(test)]
#[path = "transform_tests.rs"]
mod tests;
