//! Acks: the reply subject a delivery carries and the bodies clients send to it.
//!
//! `$JS.ACK.<stream>.<consumer>.<deliveries>.<stream seq>.<consumer seq>.<timestamp>.<pending>`

use super::state::AckKind;

/// The reply subject of a delivery.
pub(crate) fn reply_subject(
    stream: &str,
    consumer: &str,
    deliveries: u64,
    sseq: u64,
    cseq: u64,
    ts: i64,
    pending: u64,
) -> String {
    format!("$JS.ACK.{stream}.{consumer}.{deliveries}.{sseq}.{cseq}.{ts}.{pending}")
}

/// The subscription that receives one consumer's acks.
pub(crate) fn subscription(stream: &str, consumer: &str) -> String {
    format!("$JS.ACK.{stream}.{consumer}.>")
}

/// What an ack subject says: (deliveries, stream sequence, consumer sequence).
pub(crate) fn parse_subject(subject: &str) -> Option<(u64, u64, u64)> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let numbers = match tokens.len() {
        9 => &tokens[4..7],
        12 => &tokens[6..9],
        _ => return None,
    };
    Some((
        numbers[0].parse().ok()?,
        numbers[1].parse().ok()?,
        numbers[2].parse().ok()?,
    ))
}

/// What an ack body asks for; `None` for a body that is no ack.
pub(crate) fn parse_body(body: &[u8]) -> Option<AckKind> {
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.is_empty() || text == "+ACK" {
        return Some(AckKind::Ack);
    }
    if let Some(rest) = text.strip_prefix("-NAK") {
        return Some(AckKind::Nak(nak_delay(rest.trim())));
    }
    if text.starts_with("+WPI") {
        return Some(AckKind::Progress);
    }
    if text.starts_with("+TERM") {
        return Some(AckKind::Term);
    }
    if text.starts_with("+NXT") {
        return Some(AckKind::Next);
    }
    if text.starts_with("+ACK") {
        return Some(AckKind::Ack);
    }
    None
}

/// The delay of `-NAK {"delay": <nanoseconds>}`; 0 when absent or malformed.
fn nak_delay(rest: &str) -> i64 {
    #[derive(serde::Deserialize)]
    struct Delay {
        delay: i64,
    }
    serde_json::from_str::<Delay>(rest).map_or(0, |d| d.delay.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_round_trip() {
        let s = reply_subject("S", "C", 2, 10, 12, 1_700_000_000, 5);
        assert_eq!(s, "$JS.ACK.S.C.2.10.12.1700000000.5");
        assert_eq!(parse_subject(&s), Some((2, 10, 12)));
        assert_eq!(
            parse_subject("$JS.ACK.dom.hash.S.C.1.2.3.4.5.rand"),
            Some((1, 2, 3))
        );
        assert_eq!(parse_subject("$JS.ACK.S.C.x.2.3.4.5"), None);
        assert_eq!(parse_subject("$JS.ACK.S.C"), None);
    }

    #[test]
    fn bodies_name_the_kind_of_ack() {
        assert_eq!(parse_body(b""), Some(AckKind::Ack));
        assert_eq!(parse_body(b"+ACK"), Some(AckKind::Ack));
        assert_eq!(parse_body(b"-NAK"), Some(AckKind::Nak(0)));
        assert_eq!(
            parse_body(br#"-NAK {"delay": 2000000000}"#),
            Some(AckKind::Nak(2_000_000_000))
        );
        assert_eq!(parse_body(b"+WPI"), Some(AckKind::Progress));
        assert_eq!(parse_body(b"+TERM reason"), Some(AckKind::Term));
        assert_eq!(parse_body(b"+NXT {\"batch\":1}"), Some(AckKind::Next));
        assert_eq!(parse_body(b"hello"), None);
    }
}
