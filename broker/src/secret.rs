//! A configured password or token, and how a client's is checked against it: plain text is
//! compared in constant time, a bcrypt hash (`$2a$11$...`) is verified, as nats-server does.

use std::fmt;

use subtle::ConstantTimeEq;

/// The costs bcrypt allows, here and on nats-server.
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// A password or token from the configuration file or the command line.
///
/// nats-server takes one as a bcrypt hash when it starts `$2a$`, `$2b$`, `$2x$` or `$2y$`
/// followed by two digits and `$`; whatever follows is not looked at until a client logs in.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// Compared byte for byte with what the client sends.
    Plain(String),
    /// A bcrypt hash the client's password must verify against.
    Bcrypt(String),
}

impl Secret {
    /// Whether the client's `given` password or token satisfies this one. A hash that is not
    /// valid bcrypt (a bad cost, salt or length) refuses every password, as on nats-server.
    pub(crate) fn admits(&self, given: &str) -> bool {
        match self {
            Secret::Plain(secret) => same(secret, given),
            Secret::Bcrypt(hash) => {
                off_the_runtime(|| bcrypt::verify(given, hash)).unwrap_or(false)
            }
        }
    }

    /// Whether checking a password takes milliseconds on purpose (a bcrypt hash).
    pub(crate) fn is_costly(&self) -> bool {
        matches!(self, Secret::Bcrypt(_))
    }

    /// For a bcrypt hash that cannot be verified, why not (no password will log in with it).
    pub(crate) fn malformed(&self) -> Option<String> {
        match self {
            Secret::Plain(_) => None,
            Secret::Bcrypt(hash) => match hash.parse::<bcrypt::HashParts>() {
                Err(e) => Some(e.to_string()),
                Ok(parts) if !BCRYPT_COSTS.contains(&parts.get_cost()) => Some(format!(
                    "cost {} is outside bcrypt's {BCRYPT_COSTS:?}",
                    parts.get_cost()
                )),
                Ok(_) => None,
            },
        }
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        if looks_like_bcrypt(&text) {
            Secret::Bcrypt(text)
        } else {
            Secret::Plain(text)
        }
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Secret::from(text.to_string())
    }
}

/// Shows which kind it is, never the secret (options are logged at debug level).
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Secret::Plain(..)"),
            Secret::Bcrypt(_) => f.write_str("Secret::Bcrypt(..)"),
        }
    }
}

/// nats-server's rule: `$2`, one of `abxy`, `$`, two digits, `$`, then anything.
fn looks_like_bcrypt(text: &str) -> bool {
    match text.as_bytes() {
        [b'$', b'2', minor, b'$', d1, d2, b'$', ..] => {
            b"abxy".contains(minor) && d1.is_ascii_digit() && d2.is_ascii_digit()
        }
        _ => false,
    }
}

/// Compares two strings in constant time for strings of one length (a different length is
/// told at once, as nats-server's `subtle.ConstantTimeCompare` does).
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Runs `work` (a bcrypt verification: milliseconds of CPU) without stalling the other tasks of
/// a multi-threaded runtime's worker; outside one it just runs.
fn off_the_runtime<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lowest cost bcrypt allows, to keep the tests fast.
    const COST: u32 = 4;

    fn hashed(password: &str) -> Secret {
        Secret::from(bcrypt::hash(password, COST).unwrap())
    }

    #[test]
    fn a_bcrypt_hash_admits_its_password_and_not_itself() {
        let secret = hashed("s3cret");
        let Secret::Bcrypt(hash) = &secret else {
            panic!("not taken as bcrypt: {secret:?}")
        };
        assert!(secret.admits("s3cret"));
        assert!(!secret.admits(hash));
        assert!(!secret.admits("s3cre"));
        assert!(!secret.admits(""));
        assert_eq!(secret.malformed(), None);
    }

    #[test]
    fn every_bcrypt_version_nats_server_accepts_is_verified() {
        let hash = bcrypt::hash("pw", COST).unwrap();
        for minor in ["a", "b", "x", "y"] {
            let secret = Secret::from(format!("$2{minor}{}", &hash[3..]));
            assert!(secret.is_costly(), "$2{minor}$");
            assert!(secret.admits("pw"), "$2{minor}$");
        }
    }

    #[test]
    fn only_nats_servers_prefix_makes_a_bcrypt_hash() {
        for plain in [
            "$2z$04$abc",
            "$2a$4$abc",
            "$2a$04abc",
            "2a$04$abc",
            "$1$04$abc",
            "$2a$",
        ] {
            assert_eq!(Secret::from(plain), Secret::Plain(plain.into()), "{plain}");
            assert!(Secret::from(plain).admits(plain), "{plain}");
        }
        assert!(Secret::from("$2a$99$").is_costly());
    }

    #[test]
    fn a_malformed_bcrypt_hash_refuses_every_password_and_says_why() {
        let cut = bcrypt::hash("pw", COST).unwrap()[..40].to_string();
        let low_cost = bcrypt::hash("pw", COST)
            .unwrap()
            .replacen("$04$", "$03$", 1);
        for hash in [cut, low_cost, "$2a$11$".to_string()] {
            let secret = Secret::from(hash.as_str());
            assert!(secret.is_costly(), "{hash}");
            assert!(!secret.admits("pw") && !secret.admits(&hash), "{hash}");
            assert!(secret.malformed().is_some(), "{hash}");
        }
    }

    #[test]
    fn plain_secrets_must_match_exactly() {
        let secret = Secret::from("pw");
        assert!(secret.admits("pw"));
        assert!(!secret.admits("pW") && !secret.admits("pw ") && !secret.admits(""));
        assert_eq!(secret.malformed(), None);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let shown = format!("{:?} {:?}", Secret::from("pw"), hashed("pw"));
        assert_eq!(shown, "Secret::Plain(..) Secret::Bcrypt(..)");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_bcrypt_check_runs_on_a_multi_threaded_runtime() {
        assert!(hashed("pw").admits("pw"));
    }
}
