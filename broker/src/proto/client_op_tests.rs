use super::*;

const LIMITS: Limits = Limits {
    max_control_line: 64,
    max_payload: 16,
    headers: true,
};

fn one(buf: &[u8]) -> (ClientOp<'_>, usize) {
    parse(buf, &LIMITS).expect("valid").expect("complete")
}

#[test]
fn pub_with_and_without_reply_is_parsed() {
    let (op, n) = one(b"PUB foo 5\r\nhello\r\nrest");
    let want = Publish {
        subject: b"foo",
        reply: None,
        header_len: None,
        message: b"hello",
    };
    assert_eq!((op, n), (ClientOp::Pub(want), 18));
    let (op, _) = one(b"pub foo\tbar  2\r\nhi\r\n");
    let want = Publish {
        subject: b"foo",
        reply: Some(b"bar"),
        header_len: None,
        message: b"hi",
    };
    assert_eq!(op, ClientOp::Pub(want));
}

#[test]
fn hpub_splits_headers_from_payload_by_size() {
    let (op, _) = one(b"HPUB foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    let want = Publish {
        subject: b"foo",
        reply: Some(b"r"),
        header_len: Some(12),
        message: b"NATS/1.0\r\n\r\nhi",
    };
    assert_eq!(op, ClientOp::Pub(want));
}

#[test]
fn payload_may_contain_crlf_and_be_empty() {
    let (op, _) = one(b"PUB foo 4\r\n\r\n\r\n\r\n");
    assert!(matches!(
        op,
        ClientOp::Pub(Publish {
            message: b"\r\n\r\n",
            ..
        })
    ));
    let (op, n) = one(b"PUB foo 0\r\n\r\n");
    assert_eq!(
        (op, n),
        (
            ClientOp::Pub(Publish {
                subject: b"foo",
                reply: None,
                header_len: None,
                message: b""
            }),
            13
        )
    );
}

#[test]
fn every_prefix_of_a_frame_asks_for_more_bytes() {
    let frame = b"HPUB foo.bar _INBOX.x 12 14\r\nNATS/1.0\r\n\r\nhi\r\n";
    for end in 0..frame.len() {
        assert_eq!(
            parse(&frame[..end], &LIMITS),
            Ok(None),
            "prefix of {end} bytes"
        );
    }
    assert!(parse(frame, &LIMITS).unwrap().is_some());
}

#[test]
fn sub_unsub_ping_pong_connect_are_parsed() {
    assert_eq!(
        one(b"SUB foo 1\r\n").0,
        ClientOp::Sub {
            subject: b"foo",
            queue: None,
            sid: b"1"
        }
    );
    assert_eq!(
        one(b"sub foo q 1\n").0,
        ClientOp::Sub {
            subject: b"foo",
            queue: Some(b"q"),
            sid: b"1"
        }
    );
    assert_eq!(
        one(b"UNSUB 1\r\n").0,
        ClientOp::Unsub {
            sid: b"1",
            max: None
        }
    );
    assert_eq!(
        one(b"UNSUB 1 5\r\n").0,
        ClientOp::Unsub {
            sid: b"1",
            max: Some(5)
        }
    );
    assert_eq!(one(b"PING\r\n"), (ClientOp::Ping, 6));
    assert_eq!(one(b"pong\r\n"), (ClientOp::Pong, 6));
    assert_eq!(
        one(b"CONNECT {\"verbose\":true} \r\n").0,
        ClientOp::Connect(b"{\"verbose\":true}")
    );
}

#[test]
fn unknown_operations_are_rejected_before_the_line_ends() {
    assert_eq!(parse(b"FOO", &LIMITS), Err(ProtocolError::UnknownOperation));
    assert_eq!(
        parse(b"MSG foo 1 2\r\n", &LIMITS),
        Err(ProtocolError::UnknownOperation)
    );
    assert_eq!(
        parse(b"PUBX foo 1\r\n", &LIMITS),
        Err(ProtocolError::UnknownOperation)
    );
    assert_eq!(
        parse(b"PUB\r\n", &LIMITS),
        Err(ProtocolError::UnknownOperation)
    );
    assert_eq!(
        parse(b"UNSUB\r\n", &LIMITS),
        Err(ProtocolError::UnknownOperation)
    );
}

#[test]
fn payload_not_followed_by_crlf_is_an_unknown_operation() {
    assert_eq!(
        parse(b"PUB foo 2\r\nhello\r\n", &LIMITS),
        Err(ProtocolError::UnknownOperation)
    );
}

#[test]
fn oversized_payload_is_rejected_on_the_control_line() {
    assert_eq!(
        parse(b"PUB foo 17\r\n", &LIMITS),
        Err(ProtocolError::MaxPayload)
    );
    assert_eq!(
        parse(b"HPUB foo 1 17\r\n", &LIMITS),
        Err(ProtocolError::MaxPayload)
    );
}

#[test]
fn long_control_lines_are_rejected_with_or_without_a_newline() {
    let long = format!("SUB {} 1", "a".repeat(70));
    assert_eq!(
        parse(long.as_bytes(), &LIMITS),
        Err(ProtocolError::MaxControlLine)
    );
    let line = format!("{long}\r\n");
    assert_eq!(
        parse(line.as_bytes(), &LIMITS),
        Err(ProtocolError::MaxControlLine)
    );
}

#[test]
fn bad_arguments_are_malformed() {
    for bad in [
        &b"PUB foo\r\n"[..],
        b"PUB foo bar baz 1\r\n",
        b"PUB foo x\r\n",
        b"PUB foo -1\r\n",
        b"HPUB foo 5 2\r\n",
        b"SUB foo\r\n",
        b"SUB a b c d\r\n",
    ] {
        assert!(
            matches!(parse(bad, &LIMITS), Err(ProtocolError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn the_malformed_corpus_never_panics_and_always_makes_progress() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/malformed");
    let limits = Limits {
        max_control_line: 4096,
        max_payload: 1024 * 1024,
        headers: false,
    };
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("corpus directory") {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let mut rest = &bytes[..];
        while let Ok(Some((_, n))) = parse(rest, &limits) {
            assert!(n > 0 && n <= rest.len());
            rest = &rest[n..];
        }
        files += 1;
    }
    assert!(files >= 30, "only {files} corpus files");
}

#[test]
fn unsub_with_a_count_that_is_not_positive_means_now() {
    for line in [&b"UNSUB 1 x\r\n"[..], b"UNSUB 1 0\r\n"] {
        assert_eq!(
            one(line).0,
            ClientOp::Unsub {
                sid: b"1",
                max: None
            }
        );
    }
}

#[test]
fn hpub_without_negotiated_headers_is_refused_before_its_size_is_checked() {
    let limits = Limits {
        headers: false,
        ..LIMITS
    };
    let got = parse(b"HPUB foo 1 17\r\n", &limits);
    assert!(matches!(got, Err(ProtocolError::Malformed(_))), "{got:?}");
}

#[test]
fn connect_may_run_into_its_argument() {
    assert_eq!(one(b"CONNECT\r\n").0, ClientOp::Connect(b""));
}
