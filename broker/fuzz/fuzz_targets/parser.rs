//! Fuzzes the client-protocol parser: it must never panic, and feeding the same bytes in two
//! pieces must give the same operations as feeding them at once.
#![no_main]

use broker::proto::{parse, ClientOp, Limits, ProtocolError};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits { max_control_line: 256, max_payload: 1024, headers: true };

/// Parses every complete operation; returns their debug forms and the error that stopped it.
fn parse_stream(mut buf: &[u8]) -> (Vec<String>, Option<ProtocolError>, usize) {
    let mut ops = Vec::new();
    loop {
        match parse(buf, &LIMITS) {
            Ok(Some((op, n))) => {
                assert!(n > 0 && n <= buf.len(), "consumed {n} of {}", buf.len());
                ops.push(describe(&op));
                buf = &buf[n..];
            }
            Ok(None) => return (ops, None, buf.len()),
            Err(e) => return (ops, Some(e), buf.len()),
        }
    }
}

fn describe(op: &ClientOp<'_>) -> String {
    format!("{op:?}")
}

fuzz_target!(|data: &[u8]| {
    let (whole, whole_err, _) = parse_stream(data);
    if data.is_empty() {
        return;
    }
    // Feed a prefix first, as if it arrived in an earlier read.
    let cut = usize::from(data[0]) % data.len();
    let (first, first_err, left) = parse_stream(&data[..cut]);
    if whole_err.is_none() {
        assert_eq!(first_err, None, "a prefix failed where the whole did not");
    }
    if first_err.is_some() {
        return;
    }
    let (second, second_err, _) = parse_stream(&data[cut - left..]);
    if whole_err.is_none() {
        assert_eq!(second_err, None, "the rest failed where the whole did not");
        let mut split = first;
        split.extend(second);
        assert_eq!(whole, split);
    }
});
