//! From the credentials of a CONNECT to where the connection belongs: its account, what it may
//! publish and subscribe to, and when its login expires.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::accounts::Account;
use crate::auth::{self, Login};
use crate::options::{AccountConfig, Permissions};
use crate::permissions::Checker;
use crate::proto::connect::ConnectInfo;
use crate::server::ServerState;
use crate::tls::peer::PeerCert;

/// A logged-in connection's place.
pub(crate) struct Placement {
    /// The account its subscriptions and publications are in.
    pub account: Arc<Account>,
    /// What it may do; `None` means anything.
    pub perms: Option<Checker>,
    /// Who it logged in as, for `/connz`; empty without users.
    pub user: String,
    /// When the login ends: a user JWT's `exp`.
    pub expires: Option<SystemTime>,
}

/// Logs in the CONNECT `info` (its INFO carried `nonce`; it comes from `ip`) against the users
/// of `opts` (the settings in force: a reload checks existing logins again); `Err` says why
/// not, for the debug log.
pub(crate) fn place(
    state: &ServerState,
    opts: &crate::options::Options,
    info: &ConnectInfo,
    nonce: &str,
    ip: IpAddr,
    cert: Option<&PeerCert>,
) -> Result<Placement, String> {
    if let Some(trust) = &state.trust {
        let login = trust.login(info, nonce, ip, unix_now())?;
        let account = state
            .accounts
            .get(&login.account)
            .ok_or_else(|| format!("account {} is not loaded", login.account))?;
        return Ok(Placement {
            account,
            perms: login.permissions.as_ref().map(Checker::new),
            user: login.user,
            expires: login
                .expires
                .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s.max(0) as u64)),
        });
    }
    let (user, config) = match auth::login(opts, info, nonce, cert) {
        Login::Refused => return Err("no configured credentials match".into()),
        Login::Anonymous => ("", None),
        Login::User { identity, account } => (identity, account),
    };
    let account = match config {
        Some(config) => state
            .accounts
            .get(&config.name)
            .ok_or_else(|| format!("account {} is not loaded", config.name))?,
        None => state.accounts.global().clone(),
    };
    Ok(Placement {
        account,
        perms: permissions(opts, user, config).map(Checker::new),
        user: user.to_string(),
        expires: None,
    })
}

/// A configured user's permissions: its own, else its account's defaults (a user of
/// `authorization {}`: the `default_permissions` there).
fn permissions<'a>(
    opts: &'a crate::options::Options,
    user: &str,
    account: Option<&'a AccountConfig>,
) -> Option<&'a Permissions> {
    let defaults = match account {
        Some(account) => account.default_permissions.as_ref(),
        None => opts.default_permissions.as_ref(),
    };
    opts.user_permissions.get(user).or(defaults)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
