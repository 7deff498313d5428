//! Subject rules: dot-separated tokens, `*` matches one token, `>` matches the rest.

/// True when `subject` may be subscribed to: non-empty tokens without whitespace, where `*` and
/// `>` stand alone and `>` comes last.
pub fn is_valid_subject(subject: &[u8]) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut tokens = subject.split(|&b| b == b'.').peekable();
    while let Some(token) = tokens.next() {
        if token.is_empty() || token.iter().any(|b| b.is_ascii_whitespace()) {
            return false;
        }
        if token.len() > 1 && token.iter().any(|&b| b == b'*' || b == b'>') {
            // A wildcard character inside a longer token is a literal in nats-server.
            continue;
        }
        if token == b">" && tokens.peek().is_some() {
            return false;
        }
    }
    true
}

/// True when `subject` may be published to: a valid subject without wildcard tokens.
pub fn is_valid_literal_subject(subject: &[u8]) -> bool {
    is_valid_subject(subject)
        && subject
            .split(|&b| b == b'.')
            .all(|t| t != b"*" && t != b">")
}

/// True when the literal `subject` falls under `filter`, where a `*` token in the filter matches
/// any one token and a final `>` matches one or more tokens (nats-server's rules).
pub fn subject_matches(filter: &[u8], subject: &[u8]) -> bool {
    let mut f = filter.split(|&b| b == b'.');
    let mut s = subject.split(|&b| b == b'.');
    loop {
        match (f.next(), s.next()) {
            (Some(b">"), Some(_)) => return true,
            (Some(ft), Some(st)) if ft == b"*" || ft == st => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when `queue` is a usable queue group name: non-empty, no whitespace.
pub fn is_valid_queue(queue: &[u8]) -> bool {
    !queue.is_empty() && !queue.iter().any(|b| b.is_ascii_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_wildcard_subjects_are_valid() {
        for s in [
            "foo",
            "foo.bar",
            "foo.*",
            "foo.>",
            ">",
            "*",
            "*.bar.>",
            "_INBOX.abc.*",
        ] {
            assert!(is_valid_subject(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn empty_tokens_whitespace_and_inner_full_wildcards_are_invalid() {
        for s in [
            "",
            ".",
            "foo.",
            ".foo",
            "foo..bar",
            "foo.>.bar",
            "foo bar",
            "foo\tbar",
            "> .a",
        ] {
            assert!(!is_valid_subject(s.as_bytes()), "{s:?}");
        }
    }

    #[test]
    fn filters_match_tokens_with_star_and_full_wildcards() {
        let yes = [
            ("foo", "foo"),
            ("foo.*", "foo.bar"),
            ("foo.>", "foo.bar.baz"),
            (">", "foo"),
            ("*.bar", "foo.bar"),
            ("*.*", "a.b"),
        ];
        for (f, s) in yes {
            assert!(subject_matches(f.as_bytes(), s.as_bytes()), "{f} {s}");
        }
        let no = [
            ("foo", "foo.bar"),
            ("foo.bar", "foo"),
            ("foo.*", "foo"),
            ("foo.*", "foo.bar.baz"),
            ("foo.>", "foo"),
            ("*.bar", "foo.baz"),
            ("foo", "fo"),
        ];
        for (f, s) in no {
            assert!(!subject_matches(f.as_bytes(), s.as_bytes()), "{f} {s}");
        }
    }

    #[test]
    fn wildcards_are_not_literal_subjects() {
        assert!(is_valid_literal_subject(b"foo.bar"));
        assert!(is_valid_literal_subject(b"foo.b*r"));
        assert!(!is_valid_literal_subject(b"foo.*"));
        assert!(!is_valid_literal_subject(b"foo.>"));
    }
}
