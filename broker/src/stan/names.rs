//! The names NATS Streaming lets clients choose, checked as it checks them, and the JetStream
//! names they become.
//!
//! A channel is a subject without wildcards; its stream is named after it. Stream and consumer
//! names may not hold `.`, `*`, `>`, whitespace or path separators, so those characters (and
//! `%` and `:`, which the encoding itself uses) are written as `%` and two upper-case hex digits,
//! as in a URL: channel `orders.created` is stream `orders%2Ecreated`. [`decode`] undoes it.

/// Whether `id` is a client ID NATS Streaming accepts: letters, digits, `-` and `_`.
pub fn valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `subject` can be a channel: dot-separated non-empty tokens, no wildcard, no
/// whitespace.
pub fn valid_channel(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && !token.bytes().any(|b| b.is_ascii_whitespace() || b < 0x20)
        })
        && !subject.contains(['*', '>'])
}

/// Whether a name token may hold `b` as it is.
fn plain(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'.' | b'*' | b'>' | b'/' | b'\\' | b'%' | b':')
}

/// `name` with every character a JetStream name may not hold written as `%XX`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The name [`encode`] wrote `encoded` from; `None` when it is not such an encoding.
pub fn decode(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = encoded.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The stream a new channel gets.
pub fn stream_for(channel: &str) -> String {
    encode(channel)
}

/// The durable consumer of a durable subscription: `d:<channel>:<client ID>:<durable name>`.
/// The channel is in it because several channels can share a stream.
pub fn durable_consumer(channel: &str, client_id: &str, durable: &str) -> String {
    format!(
        "d:{}:{}:{}",
        encode(channel),
        encode(client_id),
        encode(durable)
    )
}

/// The durable consumer of a durable queue group: `q:<channel>:<durable name>:<group>`.
pub fn queue_consumer(channel: &str, durable: &str, group: &str) -> String {
    format!(
        "q:{}:{}:{}",
        encode(channel),
        encode(durable),
        encode(group)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_letters_digits_dashes_and_underscores() {
        assert!(valid_client_id("client-1_A"));
        for bad in ["", "a.b", "a b", "é", "a*", "a:b"] {
            assert!(!valid_client_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn channels_are_literal_subjects() {
        for good in ["foo", "ticket:created", "a.b.c", "$x.y"] {
            assert!(valid_channel(good), "{good:?}");
        }
        for bad in [
            "", "a..b", ".a", "a.", "a.*", "a.>", "a*", "a b", "a\tb", "x>",
        ] {
            assert!(!valid_channel(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_stream_name_round_trips_to_its_channel_and_holds_no_forbidden_character() {
        for channel in [
            "orders.created",
            "ticket:created",
            "a%2Eb",
            "x/y\\z",
            "plain",
        ] {
            let stream = stream_for(channel);
            assert!(
                !stream.contains(['.', '*', '>', '/', '\\', ' ', ':']),
                "{stream}"
            );
            assert_eq!(decode(&stream).as_deref(), Some(channel));
        }
        assert_eq!(stream_for("orders.created"), "orders%2Ecreated");
        assert_eq!(stream_for("ticket:created"), "ticket%3Acreated");
        assert_eq!(decode("bad%2"), None);
        assert_eq!(decode("bad%zz"), None);
    }

    #[test]
    fn consumer_names_keep_durables_of_different_channels_clients_and_groups_apart() {
        assert_eq!(durable_consumer("orders", "c1", "dur"), "d:orders:c1:dur");
        assert_eq!(
            queue_consumer("a.b", "dur", "workers"),
            "q:a%2Eb:dur:workers"
        );
        assert_ne!(
            durable_consumer("x", "a", "b:c"),
            durable_consumer("x", "a:b", "c"),
            "a colon in a durable name is encoded"
        );
        assert_ne!(
            queue_consumer("orders.applied", "d", "g"),
            queue_consumer("orders.rejected", "d", "g"),
            "two channels of one stream"
        );
        assert!(!durable_consumer("x.y", "c", "x.y").contains('.'));
    }
}
