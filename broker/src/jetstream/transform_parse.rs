//! Parsing a transform's destination tokens: `$n` and the `{{function(args)}}` forms, with the
//! spelling, whitespace and argument rules nats-server applies.

use super::{bad, Reason, Token, TransformError, FUNCTIONS};

/// A mapping function as written: which one, its raw arguments and the wildcard numbers they
/// name.
pub(super) struct Function<'a> {
    pub name: &'static str,
    token: &'a str,
    args: Vec<&'a str>,
    pub indexes: Vec<i64>,
}

impl Function<'_> {
    pub fn build(&self, position: &dyn Fn(i64) -> usize) -> Result<Token, TransformError> {
        let at = position(self.indexes[0]);
        Ok(match self.name {
            "Wildcard" => Token::Wildcard(at),
            "Partition" => {
                let buckets = int_arg(self.args[0], self.token)?;
                // Zero buckets would divide by zero on every message.
                let buckets = u32::try_from(buckets)
                    .ok()
                    .filter(|&b| b > 0)
                    .ok_or_else(|| bad(Reason::InvalidArg, self.token))?;
                Token::Partition {
                    buckets,
                    of: self.indexes.iter().map(|&n| position(n)).collect(),
                }
            }
            "Split" => Token::Split(at, self.args[1].to_string()),
            name => {
                let n = int_arg(self.args[1], self.token)?;
                match name {
                    "SplitFromLeft" => Token::SplitFromLeft(at, n),
                    "SplitFromRight" => Token::SplitFromRight(at, n),
                    "SliceFromLeft" => Token::SliceFromLeft(at, n),
                    "SliceFromRight" => Token::SliceFromRight(at, n),
                    "Left" => Token::Left(at, n),
                    _ => Token::Right(at, n),
                }
            }
        })
    }
}

fn int_arg(arg: &str, token: &str) -> Result<i64, TransformError> {
    arg.trim_matches(' ')
        .parse::<i64>()
        .ok()
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| bad(Reason::InvalidArg, token))
}

/// `$n` or `{{function(args)}}`; `None` for a literal token.
pub(super) fn parse_token(token: &str) -> Result<Option<Function<'_>>, TransformError> {
    if token.len() < 2 {
        return Ok(None);
    }
    if let Some(number) = token.strip_prefix('$') {
        // `$` and something else than a number is a literal.
        return Ok(number.parse::<i64>().ok().map(|n| Function {
            name: "Wildcard",
            token,
            args: vec![number],
            indexes: vec![n],
        }));
    }
    let Some(inner) = token
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .filter(|_| token.len() > 4)
    else {
        return Ok(None);
    };
    let (name, args) = split_call(inner).ok_or_else(|| bad(Reason::UnknownFunction, token))?;
    let args: Vec<&str> = split_args(args);
    let int = |a: &str| int_arg(a, token);
    let (min, max) = match name {
        "Wildcard" => (1, 1),
        "Partition" => (2, usize::MAX),
        _ => (2, 2),
    };
    if args.len() < min || (name == "Wildcard" && args[0].is_empty()) {
        return Err(bad(Reason::NotEnoughArgs, token));
    }
    if args.len() > max {
        return Err(bad(Reason::TooManyArgs, token));
    }
    let indexes = match name {
        "Partition" => {
            int(args[0])?;
            args[1..].iter().map(|a| int(a)).collect::<Result<_, _>>()?
        }
        "Split" => {
            let n = int(args[0])?;
            if args[1].contains(' ') || args[1].contains('.') {
                return Err(bad(Reason::InvalidArg, token));
            }
            vec![n]
        }
        "Wildcard" => vec![int(args[0])?],
        _ => {
            let n = int(args[0])?;
            int(args[1])?;
            vec![n]
        }
    };
    Ok(Some(Function {
        name,
        token,
        args,
        indexes,
    }))
}

/// `name ( args )` inside the braces, with the whitespace nats-server allows: the function's
/// canonical name and the text between the parentheses (up to the last `)`).
pub(super) fn split_call(inner: &str) -> Option<(&'static str, &str)> {
    let inner = inner.trim_start_matches(is_space);
    let open = inner.find('(')?;
    let written = inner[..open].trim_end_matches(is_space);
    let name = FUNCTIONS.iter().find(|f| name_matches(f, written))?;
    let rest = &inner[open + 1..];
    let close = rest.rfind(')')?;
    if !rest[close + 1..].chars().all(is_space) || rest[..close].contains('\n') {
        return None;
    }
    Some((name, &rest[..close]))
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c' | '\x0b')
}

/// Whether `written` spells `canonical`, where the first letter and every capital may be
/// either case.
fn name_matches(canonical: &str, written: &str) -> bool {
    canonical.len() == written.len()
        && canonical
            .chars()
            .zip(written.chars())
            .enumerate()
            .all(|(i, (c, w))| {
                if i == 0 || c.is_ascii_uppercase() {
                    c.eq_ignore_ascii_case(&w)
                } else {
                    c == w
                }
            })
}

/// Arguments separated by a comma and any whitespace after it.
fn split_args(args: &str) -> Vec<&str> {
    let mut parts = args.split(',');
    let first = parts.next().unwrap_or_default();
    std::iter::once(first)
        .chain(parts.map(|p| p.trim_start_matches(is_space)))
        .collect()
}
