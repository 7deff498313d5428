use super::*;

fn import(subject: &str, kind: ImportKind) -> Import {
    Import {
        account: "A".into(),
        subject: subject.into(),
        kind,
    }
}

#[test]
fn a_stream_import_maps_the_exporters_subject_and_wildcards_keep_their_order() {
    let stream = |subject: &str, to: &str| {
        import_transform(&import(
            subject,
            ImportKind::Stream {
                to: Some(to.into()),
            },
        ))
        .unwrap()
        .unwrap()
    };
    assert_eq!(
        stream("news.>", "a.news.>").apply("news.x.y").as_deref(),
        Some("a.news.x.y")
    );
    let swapped = stream("orders.*.*", "by.*.*");
    assert_eq!(swapped.apply("orders.eu.1").as_deref(), Some("by.eu.1"));
    assert_eq!(swapped.apply("other.eu.1"), None);
    let same = import(
        "x.*",
        ImportKind::Stream {
            to: Some("x.*".into()),
        },
    );
    assert!(
        import_transform(&same).unwrap().is_none(),
        "no mapping needed"
    );
    let plain = import("x", ImportKind::Stream { to: None });
    assert!(import_transform(&plain).unwrap().is_none());
}

#[test]
fn a_service_import_maps_the_local_subject_onto_the_exporters() {
    let service = import(
        "$JS.API.>",
        ImportKind::Service {
            to: Some("$JS.A.API.>".into()),
            share: false,
        },
    );
    let t = import_transform(&service).unwrap().unwrap();
    assert_eq!(
        t.apply("$JS.A.API.STREAM.INFO.S").as_deref(),
        Some("$JS.API.STREAM.INFO.S")
    );
    let bad = import(
        "a.>",
        ImportKind::Service {
            to: Some("b.*".into()),
            share: false,
        },
    );
    assert!(import_transform(&bad).is_err());
}

#[test]
fn a_chain_of_service_imports_stops_at_the_hop_limit() {
    fn nest(depth: &mut u8) -> bool {
        one_hop_deeper(|| {
            *depth += 1;
            nest(depth)
        })
        .unwrap_or(true)
    }
    let mut depth = 0;
    assert!(nest(&mut depth));
    assert_eq!(depth, MAX_HOPS);
    assert_eq!(one_hop_deeper(|| 1), Some(1), "the count unwinds");
}
