//! Relations between subject patterns that stream and consumer configurations need: do two
//! patterns share a subject, is one inside the other.

/// Whether some literal subject matches both patterns (`*` and `>` wildcards).
pub(crate) fn collide(a: &str, b: &str) -> bool {
    let (mut x, mut y) = (a.split('.'), b.split('.'));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(s), Some(t)) if s == "*" || t == "*" || s == t => {}
            _ => return false,
        }
    }
}

/// Whether every subject matching `inner` also matches `outer`.
pub(crate) fn is_subset(inner: &str, outer: &str) -> bool {
    let (mut x, mut y) = (inner.split('.'), outer.split('.'));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(_), Some(">")) => return true,
            (Some(">"), _) => return false,
            (Some(_), Some("*")) => {}
            (Some(s), Some(t)) if s == t && s != "*" => {}
            _ => return false,
        }
    }
}

/// Whether a (literal or wildcard) subject matches a pattern.
pub(crate) fn matches(subject: &str, pattern: &str) -> bool {
    crate::proto::subject::subject_matches(pattern.as_bytes(), subject.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_collide_when_one_subject_matches_both() {
        assert!(collide("a.b", "a.b"));
        assert!(collide("a.*", "a.b"));
        assert!(collide("a.>", "a.b.c"));
        assert!(collide("*.b", "a.*"));
        assert!(collide(">", "x"));
        assert!(!collide("a.b", "a.c"));
        assert!(!collide("a.*", "a.b.c"));
        assert!(!collide("a", "a.>"));
    }

    #[test]
    fn subsets_are_narrower_patterns() {
        assert!(is_subset("a.b", "a.*"));
        assert!(is_subset("a.*", "a.>"));
        assert!(is_subset("a.b.c", ">"));
        assert!(is_subset("a.*", "a.*"));
        assert!(!is_subset("a.>", "a.*"));
        assert!(!is_subset("a.*", "a.b"));
        assert!(!is_subset("a", "a.>"));
    }
}
