//! Authentication of CONNECT against the configured token or users.

use crate::options::Auth;
use crate::proto::connect::ConnectInfo;

/// Whether the credentials in `connect` satisfy `auth`.
pub(crate) fn allows(auth: &Auth, connect: &ConnectInfo) -> bool {
    match auth {
        Auth::None => true,
        Auth::Token(token) => connect
            .auth_token
            .as_deref()
            .is_some_and(|t| same(t, token)),
        Auth::Users(users) => {
            let (Some(user), Some(pass)) = (connect.user.as_deref(), connect.pass.as_deref())
            else {
                return false;
            };
            // Check every entry so the time taken does not tell which user exists.
            users.iter().fold(false, |ok, u| {
                (same(&u.user, user) & same(&u.pass, pass)) | ok
            })
        }
    }
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::UserPass;

    fn connect(json: &str) -> ConnectInfo {
        ConnectInfo::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn token_must_match_exactly() {
        let auth = Auth::Token("s3cret".into());
        assert!(allows(&auth, &connect(r#"{"auth_token":"s3cret"}"#)));
        assert!(!allows(&auth, &connect(r#"{"auth_token":"s3cre"}"#)));
        assert!(!allows(&auth, &connect("{}")));
    }

    #[test]
    fn any_configured_user_may_log_in_with_its_own_password() {
        let users = vec![
            UserPass {
                user: "a".into(),
                pass: "pa".into(),
            },
            UserPass {
                user: "b".into(),
                pass: "pb".into(),
            },
        ];
        let auth = Auth::Users(users);
        assert!(allows(&auth, &connect(r#"{"user":"b","pass":"pb"}"#)));
        assert!(!allows(&auth, &connect(r#"{"user":"a","pass":"pb"}"#)));
        assert!(!allows(&auth, &connect(r#"{"user":"a"}"#)));
    }
}
