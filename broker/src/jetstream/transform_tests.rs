use super::*;

fn apply(src: &str, dest: &str, subject: &str) -> Option<String> {
    Transform::new(src, dest).unwrap().unwrap().apply(subject)
}

fn error(src: &str, dest: &str) -> String {
    Transform::new(src, dest).unwrap_err().to_string()
}

#[test]
fn an_empty_destination_is_no_transform_and_an_empty_source_is_everything() {
    assert_eq!(Transform::new("a.*", "").unwrap(), None);
    assert_eq!(apply("", ">", "x.y").as_deref(), Some("x.y"));
    assert_eq!(apply(">", "pre.>", "x.y").as_deref(), Some("pre.x.y"));
}

#[test]
fn literal_sources_map_to_the_destination_as_written() {
    assert_eq!(apply("a.b", "c.d", "a.b").as_deref(), Some("c.d"));
    assert_eq!(apply("a.b", "c.d", "a.c"), None);
}

#[test]
fn wildcards_are_taken_by_number_in_both_notations() {
    assert_eq!(apply("a.*.*", "b.$2.$1", "a.x.y").as_deref(), Some("b.y.x"));
    let mustache = "b.{{wildcard(2)}}.{{ Wildcard( 1 ) }}";
    assert_eq!(apply("a.*.*", mustache, "a.x.y").as_deref(), Some("b.y.x"));
    assert_eq!(
        apply("a.*.>", "b.$1.>", "a.x.y.z").as_deref(),
        Some("b.x.y.z")
    );
    // A `$` not followed by a number is a literal token.
    assert_eq!(apply("a.*", "$x.$1", "a.q").as_deref(), Some("$x.q"));
}

#[test]
fn subjects_outside_the_source_or_with_wildcards_do_not_match() {
    assert_eq!(apply("a.*", "b.$1", "c.x"), None);
    assert_eq!(apply("a.*", "b.$1", "a.x.y"), None);
    assert_eq!(apply("a.*", "b.$1", "a.*"), None);
}

#[test]
fn partition_hashes_the_named_tokens_with_fnv1a() {
    // FNV-1a 32 of "x" is 4245442695; of "xy" 1482915802.
    assert_eq!(
        apply("a.*", "p.{{partition(10,1)}}", "a.x").as_deref(),
        Some("p.5")
    );
    let two = apply("a.*.*", "p.{{partition(7, 1, 2)}}.$1", "a.x.y");
    assert_eq!(
        two.as_deref(),
        Some(format!("p.{}.x", 1_482_915_802u32 % 7).as_str())
    );
    assert_eq!(
        error("a.*", "{{partition(0,1)}}"),
        "invalid mapping destination: function argument is invalid or in the wrong format in {{partition(0,1)}}"
    );
}

#[test]
fn split_and_slice_functions_cut_a_token() {
    let cases = [
        ("{{splitFromLeft(1,3)}}", "abcdef", "abc.def"),
        ("{{SplitFromRight(1,2)}}", "abcdef", "abcd.ef"),
        ("{{splitFromLeft(1,9)}}", "abcdef", "abcdef"),
        ("{{sliceFromLeft(1,2)}}", "abcdefg", "ab.cd.ef.g"),
        ("{{sliceFromRight(1,2)}}", "abcdefg", "a.bc.de.fg"),
        ("{{sliceFromRight(1,2)}}", "abcdef", "ab.cd.ef"),
        ("{{split(1,-)}}", "-a--b-", "a.b"),
        ("{{split(1,-)}}", "a-b", "a.b"),
        ("{{left(1,2)}}", "abcdef", "ab"),
        ("{{right(1,2)}}", "abcdef", "ef"),
        ("{{right(1,0)}}", "abcdef", "abcdef"),
    ];
    for (dest, token, expected) in cases {
        let got = apply("t.*", &format!("out.{dest}"), &format!("t.{token}"));
        assert_eq!(
            got.as_deref(),
            Some(format!("out.{expected}").as_str()),
            "{dest} of {token}"
        );
    }
}

#[test]
fn destinations_are_checked_with_nats_servers_wording() {
    assert_eq!(error("a.*", "b.*"), "invalid subject");
    assert_eq!(error("a.>", "b"), "invalid subject");
    assert_eq!(error("a..b", "b"), "invalid subject");
    assert_eq!(
        error("a.*", "b.$2"),
        "invalid mapping destination: wildcard index out of range in $2: [2]"
    );
    assert_eq!(
        error("a.b", "c.$1"),
        "invalid mapping destination: wildcard index out of range in $1"
    );
    assert_eq!(
        error("a.*", "{{nope(1)}}"),
        "invalid mapping destination: unknown function in {{nope(1)}}"
    );
    assert_eq!(
        error("a.*", "{{wildcard()}}"),
        "invalid mapping destination: not enough arguments passed to the function in {{wildcard()}}"
    );
    assert_eq!(
        error("a.*", "{{wildcard(1,2)}}"),
        "invalid mapping destination: too many arguments passed to the function in {{wildcard(1,2)}}"
    );
    assert_eq!(
        error("a.*", "{{split(1,a b)}}"),
        "invalid mapping destination: function argument is invalid or in the wrong format in {{split(1,a b)}}"
    );
    assert_eq!(
        error("a.*", "{{left(x,1)}}"),
        "invalid mapping destination: function argument is invalid or in the wrong format in {{left(x,1)}}"
    );
    assert_eq!(
        error("a.*", "{{WILDCARD(1)}}"),
        "invalid mapping destination: unknown function in {{WILDCARD(1)}}"
    );
}

#[test]
fn source_destinations_allow_known_functions_only() {
    assert!(validate_destination("").is_ok());
    assert!(validate_destination("a.{{wildcard(1)}}.>").is_ok());
    assert!(validate_destination("a.{{bogus(1)}}").is_err());
    assert!(validate_destination("a..b").is_err());
    assert!(validate_destination("a.>.b").is_err());
}
