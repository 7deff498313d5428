//! The `Idempotency-Key` header: a client's name for one intended transaction, so that a retry
//! returns the first result instead of creating another transaction.
//!
//! A key is 1 to [`MAX_KEY_BYTES`] bytes of visible ASCII (0x21 to 0x7E), as Stripe's are at
//! most 255 characters. Spaces are refused too: HTTP drops them at either end of a header value
//! and a proxy may fold them inside, so a key with spaces might not come back byte for byte.

use axum::http::HeaderMap;

/// The header's name.
pub const HEADER: &str = "idempotency-key";

/// The longest key, in bytes. Keys are stored and indexed as they are, and PostgreSQL refuses
/// an index row above about 2.7 kB, so a bound is needed; 255 is Stripe's.
pub const MAX_KEY_BYTES: usize = 255;

/// A valid idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Why an `Idempotency-Key` header is refused (400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The header is there but empty: it would be one key shared by every client.
    #[error(
        "Idempotency-Key is empty: send 1 to {MAX_KEY_BYTES} visible ASCII characters \
         (a UUID, for instance), or no header"
    )]
    Empty,
    /// Longer than [`MAX_KEY_BYTES`].
    #[error(
        "Idempotency-Key is {0} bytes long; the limit is {MAX_KEY_BYTES} bytes \
         (a UUID, for instance, is 36)"
    )]
    TooLong(usize),
    /// A byte outside 0x21..=0x7E.
    #[error(
        "Idempotency-Key may hold only visible ASCII characters (no spaces, control \
         characters or non-ASCII): byte 0x{byte:02x} at position {position}"
    )]
    NotVisibleAscii {
        /// The offending byte.
        byte: u8,
        /// Where, from 0.
        position: usize,
    },
    /// The header was sent more than once.
    #[error("Idempotency-Key was sent {0} times: send it once")]
    Repeated(usize),
}

impl IdempotencyKey {
    /// Checks a key's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.is_empty() {
            return Err(KeyError::Empty);
        }
        if bytes.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLong(bytes.len()));
        }
        if let Some(position) = bytes.iter().position(|b| !(0x21..=0x7e).contains(b)) {
            let byte = bytes[position];
            return Err(KeyError::NotVisibleAscii { byte, position });
        }
        // Visible ASCII is UTF-8.
        Ok(Self(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// The request's key: `None` without the header, an error for a bad or repeated one.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, KeyError> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(first) = values.next() else {
            return Ok(None);
        };
        let more = values.count();
        if more > 0 {
            return Err(KeyError::Repeated(more + 1));
        }
        Self::parse(first.as_bytes()).map(Some)
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(HEADER, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn a_key_of_visible_ascii_up_to_the_limit_is_accepted() {
        let longest = "k".repeat(MAX_KEY_BYTES);
        for key in [
            "a",
            "key-1",
            "0b6e8a52-3f0c-4d7e-9a41-6c2f5e8b1d03",
            "!~",
            &longest,
        ] {
            let parsed = IdempotencyKey::parse(key.as_bytes()).unwrap();
            assert_eq!(parsed.as_str(), key);
        }
    }

    #[test]
    fn a_key_one_byte_over_the_limit_is_refused_naming_the_limit() {
        let err = IdempotencyKey::parse("k".repeat(MAX_KEY_BYTES + 1).as_bytes()).unwrap_err();
        assert_eq!(err, KeyError::TooLong(MAX_KEY_BYTES + 1));
        assert!(err.to_string().contains("the limit is 255 bytes"), "{err}");
        let huge = IdempotencyKey::parse(&[b'x'; 10_000]).unwrap_err();
        assert_eq!(huge, KeyError::TooLong(10_000));
    }

    #[test]
    fn spaces_controls_and_non_ascii_bytes_are_refused_with_their_position() {
        for (key, byte, position) in [
            (&b"two words"[..], b' ', 3),
            (b"tab\there", b'\t', 3),
            (b"nul\0", 0, 3),
            (b"del\x7f", 0x7f, 3),
            ("caf\u{e9}".as_bytes(), 0xc3, 3),
        ] {
            let err = IdempotencyKey::parse(key).unwrap_err();
            assert_eq!(err, KeyError::NotVisibleAscii { byte, position }, "{key:?}");
        }
    }

    #[test]
    fn no_header_is_no_key_and_an_empty_or_repeated_one_is_refused() {
        assert_eq!(IdempotencyKey::from_headers(&HeaderMap::new()), Ok(None));
        let one = IdempotencyKey::from_headers(&headers(&[b"k1"])).unwrap();
        assert_eq!(one.map(|k| k.0), Some("k1".to_owned()));
        let empty = IdempotencyKey::from_headers(&headers(&[b""])).unwrap_err();
        assert_eq!(empty, KeyError::Empty);
        assert!(empty.to_string().contains("or no header"), "{empty}");
        let twice = IdempotencyKey::from_headers(&headers(&[b"a", b"a"])).unwrap_err();
        assert_eq!(twice, KeyError::Repeated(2));
    }
}
