use super::*;

fn names(m: &Matches<&'static str>) -> Vec<&'static str> {
    let mut v: Vec<_> = m.plain.iter().map(|s| **s).collect();
    v.sort();
    v
}

fn list(subs: &[&'static str]) -> Sublist<&'static str> {
    let sl = Sublist::default();
    for s in subs {
        sl.insert(s.as_bytes(), None, Arc::new(*s));
    }
    sl
}

#[test]
fn literal_star_and_full_wildcards_match_as_nats_does() {
    let sl = list(&[
        "foo",
        "foo.bar",
        "foo.*",
        "foo.>",
        "*.bar",
        ">",
        "foo.*.baz",
    ]);
    assert_eq!(names(&sl.matches(b"foo")), [">", "foo"]);
    assert_eq!(
        names(&sl.matches(b"foo.bar")),
        ["*.bar", ">", "foo.*", "foo.>", "foo.bar"]
    );
    assert_eq!(
        names(&sl.matches(b"foo.bar.baz")),
        [">", "foo.*.baz", "foo.>"]
    );
    assert_eq!(names(&sl.matches(b"other")), [">"]);
}

#[test]
fn a_subject_with_an_empty_token_matches_nothing() {
    let sl = list(&[">", "a.>", "a.*.b", "*"]);
    for subject in ["", ".", "a.", ".a", "a..b", "a.b."] {
        assert!(
            names(&sl.matches(subject.as_bytes())).is_empty(),
            "{subject:?}"
        );
    }
    // Wildcard characters in a published subject are literal tokens that wildcards match.
    assert_eq!(names(&sl.matches(b"a.*.b")), [">", "a.*.b", "a.>"]);
    assert_eq!(names(&sl.matches(b"a.>")), [">", "a.>"]);
}

#[test]
fn queue_members_are_grouped_by_queue_name() {
    let sl: Sublist<&'static str> = Sublist::default();
    sl.insert(b"work", Some(b"a"), Arc::new("a1"));
    sl.insert(b"work", Some(b"a"), Arc::new("a2"));
    sl.insert(b"work.*", Some(b"a"), Arc::new("a3"));
    sl.insert(b"work", Some(b"b"), Arc::new("b1"));
    sl.insert(b"work", None, Arc::new("p"));
    let m = sl.matches(b"work");
    assert_eq!(names(&m), ["p"]);
    let mut groups: Vec<usize> = m.groups.iter().map(Vec::len).collect();
    groups.sort();
    assert_eq!(groups, [1, 2]);
}

#[test]
fn removing_subscriptions_prunes_the_tree_and_bumps_the_generation() {
    let sl: Sublist<&'static str> = Sublist::default();
    let a = Arc::new("a");
    let q = Arc::new("q");
    sl.insert(b"a.b.c", None, a.clone());
    sl.insert(b"a.*.>", Some(b"g"), q.clone());
    let before = sl.generation();
    assert!(sl.remove(b"a.b.c", None, &a));
    assert!(
        !sl.remove(b"a.b.c", None, &a),
        "second removal finds nothing"
    );
    assert!(sl.remove(b"a.*.>", Some(b"g"), &q));
    assert!(sl.generation() > before);
    assert_eq!(sl.count(), 0);
    assert!(sl.root.read().is_empty());
    assert!(sl.matches(b"a.b.c").is_empty());
}

#[test]
fn the_same_subscription_object_is_removed_not_an_equal_one() {
    let sl: Sublist<&'static str> = Sublist::default();
    let first = Arc::new("x");
    let second = Arc::new("x");
    sl.insert(b"s", None, first.clone());
    sl.insert(b"s", None, second.clone());
    assert!(sl.remove(b"s", None, &second));
    let m = sl.matches(b"s");
    assert!(Arc::ptr_eq(&m.plain[0], &first));
}
