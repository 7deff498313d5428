//! Authentication of CONNECT against the configured token, passwords or nkeys.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

use crate::options::{AccountConfig, Auth, Options, User};
use crate::proto::connect::ConnectInfo;
use crate::secret::same;
use crate::tls::peer::PeerCert;

/// Random bytes in a nonce, as nats-server: 11, sent as 15 base64url characters.
const NONCE_BYTES: usize = 11;

/// A fresh nonce for one connection's INFO, for nkey users to sign.
pub(crate) fn new_nonce() -> String {
    let bytes: [u8; NONCE_BYTES] = std::array::from_fn(|_| fastrand::u8(..));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Who a CONNECT logged in as.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Login<'a> {
    /// The credentials satisfy nothing configured.
    Refused,
    /// No users are configured (no auth, or a shared token).
    Anonymous,
    /// This configured user, of this account (`None`: a user of `authorization {}`).
    User {
        /// See [`User::identity`].
        identity: &'a str,
        /// The account the user is declared in.
        account: Option<&'a AccountConfig>,
    },
}

/// Checks the credentials in `connect` against the token or users of `opts` (not operator
/// mode: see `trust`); `nonce` is what INFO sent. With `verify_and_map`, `cert` (the client's
/// certificate) names the user instead of CONNECT's `user`.
pub(crate) fn login<'a>(
    opts: &'a Options,
    connect: &ConnectInfo,
    nonce: &str,
    cert: Option<&PeerCert>,
) -> Login<'a> {
    let mapped = opts.tls.as_ref().is_some_and(|t| t.map);
    if mapped && users(opts).next().is_some() {
        // As nats-server: an nkey in CONNECT must be a configured nkey user that signed the
        // nonce; anything else is named by the certificate, never by CONNECT's `user`.
        if connect.nkey.is_some() {
            return users(opts)
                .find(|(u, _)| matches!(u, User::NKey(_)) && user_matches(u, connect, nonce))
                .map_or(Login::Refused, |(u, account)| Login::User {
                    identity: u.identity(),
                    account,
                });
        }
        return cert.map_or(Login::Refused, |cert| {
            login_by_certificate(opts, connect, cert)
        });
    }
    let mut users = users(opts);
    if let Some(name) = opts
        .no_auth_user
        .as_deref()
        .filter(|_| no_credentials(connect))
    {
        return users
            .find(|(u, _)| u.identity() == name)
            .map_or(Login::Refused, |(u, account)| Login::User {
                identity: u.identity(),
                account,
            });
    }
    match &opts.auth {
        Auth::None if !opts.auth_required() => Login::Anonymous,
        Auth::Token(token)
            if connect
                .auth_token
                .as_deref()
                .is_some_and(|t| token.admits(t)) =>
        {
            Login::Anonymous
        }
        Auth::Token(_) => Login::Refused,
        // Check every entry so the time taken does not tell which user exists.
        Auth::None | Auth::Users(_) => users.fold(Login::Refused, |found, (u, account)| {
            match (user_matches(u, connect, nonce), found) {
                (true, Login::Refused) => Login::User {
                    identity: u.identity(),
                    account,
                },
                (_, found) => found,
            }
        }),
    }
}

/// `verify_and_map`: the first user named by the certificate (its emails, DNS names, URIs, its
/// subject as a DN in any order, its subject with domain components, its subject), whose
/// password, usually none, matches CONNECT's.
fn login_by_certificate<'a>(
    opts: &'a Options,
    connect: &ConnectInfo,
    cert: &PeerCert,
) -> Login<'a> {
    let named =
        |name: &str| users(opts).find(|(u, _)| matches!(u, User::Password(p) if p.user == name));
    let mut names = cert.candidate_names();
    let subject_names = names.split_off(cert.emails.len() + cert.dns.len() + cert.uris.len());
    let found = names
        .iter()
        .find_map(|n| named(n))
        .or_else(|| {
            users(opts).find(|(u, _)| matches!(u, User::Password(p) if cert.subject_is(&p.user)))
        })
        .or_else(|| subject_names.iter().find_map(|n| named(n)));
    match found {
        Some((user @ User::Password(p), account))
            if p.pass.admits(connect.pass.as_deref().unwrap_or("")) =>
        {
            Login::User {
                identity: user.identity(),
                account,
            }
        }
        _ => Login::Refused,
    }
}

/// The account of the configured user with this name or nkey: `None` when there is no such
/// user, `Some(None)` for a user of `authorization {}` (the global account).
pub(crate) fn account_of<'a>(
    opts: &'a Options,
    identity: &str,
) -> Option<Option<&'a AccountConfig>> {
    users(opts)
        .find(|(u, _)| u.identity() == identity)
        .map(|(_, account)| account)
}

/// Every configured user with its account: `authorization {}` users first.
fn users(opts: &Options) -> impl Iterator<Item = (&User, Option<&AccountConfig>)> {
    let global = match &opts.auth {
        Auth::Users(users) => users.as_slice(),
        _ => &[],
    };
    let in_accounts = opts
        .accounts
        .iter()
        .flat_map(|a| a.users.iter().map(move |u| (u, Some(a))));
    global.iter().map(|u| (u, None)).chain(in_accounts)
}

/// A CONNECT without any credentials, which `no_auth_user` applies to.
fn no_credentials(connect: &ConnectInfo) -> bool {
    connect.user.is_none()
        && connect.pass.is_none()
        && connect.auth_token.is_none()
        && connect.nkey.is_none()
        && connect.jwt.is_none()
}

#[cfg(test)]
fn allows(auth: &Auth, connect: &ConnectInfo, nonce: &str) -> bool {
    let opts = Options {
        auth: auth.clone(),
        ..Options::default()
    };
    login(&opts, connect, nonce, None) != Login::Refused
}

fn user_matches(user: &User, connect: &ConnectInfo, nonce: &str) -> bool {
    match user {
        // A user configured without a password logs in by name alone, as on nats-server.
        User::Password(u) => match (connect.user.as_deref(), connect.pass.as_deref()) {
            (Some(name), pass) => {
                let pass = pass.unwrap_or("");
                let named = same(&u.user, name);
                // Plain passwords are compared for every user; a bcrypt hash, milliseconds of
                // work by design, only for the user named (nats-server looks the name up first).
                let admitted = (named || !u.pass.is_costly()) && u.pass.admits(pass);
                named & admitted
            }
            _ => false,
        },
        User::NKey(key) => {
            connect
                .nkey
                .as_deref()
                .is_some_and(|given| same(key, given))
                && signed(key, nonce, connect.sig.as_deref())
        }
    }
}

/// Whether `sig` (base64, URL-safe or standard) is `key`'s Ed25519 signature of `nonce`.
pub(crate) fn signed(key: &str, nonce: &str, sig: Option<&str>) -> bool {
    let Some(sig) = sig else { return false };
    let Ok(sig) = URL_SAFE_NO_PAD
        .decode(sig)
        .or_else(|_| STANDARD.decode(sig))
    else {
        return false;
    };
    nkeys::KeyPair::from_public_key(key)
        .is_ok_and(|pair| pair.verify(nonce.as_bytes(), &sig).is_ok())
}

/// One line for each configured password or token that looks like a bcrypt hash but is not a
/// valid one, for the start-up log: it refuses every login (nats-server starts with it too).
/// Warnings about users without a password where no client certificate names the user: anyone
/// who knows such a name logs in as that user (nats-server allows it, for `verify_and_map`).
pub(crate) fn users_without_password(opts: &Options) -> Vec<String> {
    if opts.tls.as_ref().is_some_and(|t| t.map) {
        return Vec::new();
    }
    users(opts)
        .filter_map(|(user, _)| match user {
            User::Password(u) if u.pass.admits("") => Some(format!(
                "user {} has no password: any client that sends that name logs in as it",
                u.user
            )),
            _ => None,
        })
        .collect()
}

pub(crate) fn malformed_hashes(opts: &Options) -> Vec<String> {
    let token = match &opts.auth {
        Auth::Token(token) => Some(("the token".to_string(), token)),
        _ => None,
    };
    let passwords = users(opts).filter_map(|(user, _)| match user {
        User::Password(u) => Some((format!("the password of user {}", u.user), &u.pass)),
        User::NKey(_) => None,
    });
    token
        .into_iter()
        .chain(passwords)
        .filter_map(|(what, secret)| {
            let why = secret.malformed()?;
            Some(format!(
                "{what} is not a valid bcrypt hash ({why}): it refuses every login"
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::UserPass;

    fn connect(json: &str) -> ConnectInfo {
        ConnectInfo::parse(json.as_bytes()).unwrap()
    }

    fn user(name: &str, pass: &str) -> User {
        User::Password(UserPass {
            user: name.into(),
            pass: pass.into(),
        })
    }

    #[test]
    fn with_verify_and_map_only_the_certificate_or_a_signed_nkey_names_the_user() {
        let dir = std::path::PathBuf::from("/unused");
        let mut tls = crate::tls::TlsSettings::new(dir.join("c.pem"), dir.join("k.pem"));
        tls.verify = true;
        tls.map = true;
        let opts = Options {
            auth: Auth::Users(vec![
                user("CN=admin,O=bank", ""),
                user("alice@example.com", ""),
            ]),
            tls: Some(tls),
            ..Options::default()
        };
        // CONNECT naming a password-less user, with or without an unknown nkey, and no
        // certificate: refused.
        for json in [
            r#"{"user":"CN=admin,O=bank"}"#,
            r#"{"nkey":"UXXX","user":"CN=admin,O=bank"}"#,
        ] {
            assert_eq!(
                login(&opts, &connect(json), "", None),
                Login::Refused,
                "{json}"
            );
        }
        let cert = PeerCert {
            subject: "CN=someone".into(),
            emails: vec!["alice@example.com".into()],
            ..PeerCert::default()
        };
        // The certificate names alice, whatever CONNECT says.
        let by_cert = login(
            &opts,
            &connect(r#"{"user":"CN=admin,O=bank"}"#),
            "",
            Some(&cert),
        );
        assert!(
            matches!(
                by_cert,
                Login::User {
                    identity: "alice@example.com",
                    ..
                }
            ),
            "{by_cert:?}"
        );
        let stranger = PeerCert {
            subject: "CN=nobody".into(),
            ..PeerCert::default()
        };
        assert_eq!(
            login(&opts, &connect("{}"), "", Some(&stranger)),
            Login::Refused
        );
    }

    #[test]
    fn token_must_match_exactly() {
        let auth = Auth::Token("s3cret".into());
        assert!(allows(&auth, &connect(r#"{"auth_token":"s3cret"}"#), ""));
        assert!(!allows(&auth, &connect(r#"{"auth_token":"s3cre"}"#), ""));
        assert!(!allows(&auth, &connect("{}"), ""));
    }

    #[test]
    fn any_configured_user_may_log_in_with_its_own_password() {
        let auth = Auth::Users(vec![user("a", "pa"), user("b", "pb")]);
        assert!(allows(&auth, &connect(r#"{"user":"b","pass":"pb"}"#), ""));
        assert!(!allows(&auth, &connect(r#"{"user":"a","pass":"pb"}"#), ""));
        assert!(!allows(&auth, &connect(r#"{"user":"a"}"#), ""));
    }

    #[test]
    fn a_bcrypt_password_admits_the_password_and_not_the_hash() {
        let hash = bcrypt::hash("pb", 4).unwrap();
        let auth = Auth::Users(vec![user("a", "pa"), user("b", &hash)]);
        let login = |u: &str, p: &str| {
            let json = serde_json::json!({ "user": u, "pass": p }).to_string();
            allows(&auth, &connect(&json), "")
        };
        assert!(login("b", "pb"));
        assert!(!login("b", &hash), "the hash itself");
        assert!(!login("b", "pa") && !login("a", "pb") && !login("a", &hash));
        assert!(login("a", "pa"), "a plain password beside a hashed one");
    }

    #[test]
    fn a_bcrypt_token_admits_the_token_and_not_the_hash() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = Auth::Token(hash.as_str().into());
        let login = |t: &str| {
            let json = serde_json::json!({ "auth_token": t }).to_string();
            allows(&auth, &connect(&json), "")
        };
        assert!(login("s3cret"));
        assert!(!login(&hash) && !login("s3cre"));
    }

    #[test]
    fn malformed_hashes_are_named_for_the_log() {
        let good = bcrypt::hash("pw", 4).unwrap();
        let opts = Options {
            auth: Auth::Users(vec![user("a", "$2a$11$short"), user("b", &good)]),
            accounts: vec![AccountConfig {
                name: "X".into(),
                users: vec![user("c", "$2b$03$short"), user("d", "plain")],
                ..AccountConfig::default()
            }],
            ..Options::default()
        };
        let lines = malformed_hashes(&opts);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("the password of user a is not a valid bcrypt hash ("));
        assert!(lines[1].starts_with("the password of user c "), "{lines:?}");
    }

    #[test]
    fn an_nkey_user_must_sign_this_connections_nonce() {
        let pair = nkeys::KeyPair::new_user();
        let auth = Auth::Users(vec![User::NKey(pair.public_key())]);
        let nonce = new_nonce();
        let login = |nonce: &str, sig: Vec<u8>| {
            let sig = URL_SAFE_NO_PAD.encode(sig);
            let login = connect(&format!(
                r#"{{"nkey":"{}","sig":"{sig}"}}"#,
                pair.public_key()
            ));
            allows(&auth, &login, nonce)
        };
        assert!(login(&nonce, pair.sign(nonce.as_bytes()).unwrap()));
        assert!(
            !login(&nonce, pair.sign(b"another nonce").unwrap()),
            "a replayed signature"
        );
        let stranger = nkeys::KeyPair::new_user();
        assert!(!login(&nonce, stranger.sign(nonce.as_bytes()).unwrap()));
        assert!(!allows(&auth, &connect("{}"), &nonce));
    }
}
