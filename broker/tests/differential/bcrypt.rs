//! bcrypt-hashed passwords and tokens: a password or token of the form `$2a$NN$...` (also
//! `$2b$`, `$2x$`, `$2y$`) is a hash the client's must verify against, not a plain string; the
//! hash itself is refused like any wrong password. Hashes are made here at bcrypt's lowest cost,
//! 4, which both servers accept.

use crate::auth::{accepted, check_token, check_user, rejected};
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![
        a_bcrypt_password_in_the_config_file_admits_the_password_and_not_the_hash,
        bcrypt_passwords_in_a_users_list_may_be_bare_and_sit_beside_plain_ones,
        a_bcrypt_password_of_an_account_user_admits_the_password_and_not_the_hash,
        every_bcrypt_version_prefix_is_verified,
        a_bcrypt_password_from_the_pass_flag_admits_the_password_and_not_the_hash,
        a_bcrypt_token_admits_the_token_and_not_the_hash,
        a_malformed_bcrypt_hash_refuses_every_login_and_the_server_still_starts,
    ]
}

/// bcrypt's lowest cost, to keep the trials fast.
const COST: u32 = 4;

/// A fresh bcrypt hash of `password` (`$2b$04$...`, the crate's default version).
fn hash(password: &str) -> anyhow::Result<String> {
    Ok(bcrypt::hash(password, COST)?)
}

/// A `CONNECT` body logging in as `user` with `pass`.
fn login(user: &str, pass: &str) -> String {
    format!(r#"{{"verbose":false,"user":"{user}","pass":"{pass}"}}"#)
}

/// Checks a server where `user` has the bcrypt `hash` of `pass`: the password only, never the
/// hash itself.
async fn check_hashed_user(port: u16, user: &str, pass: &str, hash: &str) -> anyhow::Result<()> {
    check_user(port, user, pass).await?;
    rejected(port, &login(user, hash)).await
}

fn a_bcrypt_password_in_the_config_file_admits_the_password_and_not_the_hash(
    t: &Target,
) -> anyhow::Result<()> {
    let hash = hash("conf pass")?;
    let config = format!("authorization {{\n  user: confuser\n  password: \"{hash}\"\n}}\n");
    let server = t.start_with_config(&config, &[])?;
    block_on(check_hashed_user(
        server.port(),
        "confuser",
        "conf pass",
        &hash,
    ))
}

fn bcrypt_passwords_in_a_users_list_may_be_bare_and_sit_beside_plain_ones(
    t: &Target,
) -> anyhow::Result<()> {
    // nats-server reads an unquoted `$2a$...` as a string, not as a variable reference.
    let alice = hash("alice-pw")?.replacen("$2b$", "$2a$", 1);
    let config = format!(
        "authorization {{\n  users = [\n    {{ user: alice, password: {alice} }}\n    \
         {{ user: bob, password: \"bob-pw\" }}\n  ]\n}}\n"
    );
    let server = t.start_with_config(&config, &[])?;
    block_on(async move {
        let port = server.port();
        check_hashed_user(port, "alice", "alice-pw", &alice).await?;
        check_user(port, "bob", "bob-pw").await?;
        rejected(port, &login("bob", "alice-pw")).await
    })
}

fn a_bcrypt_password_of_an_account_user_admits_the_password_and_not_the_hash(
    t: &Target,
) -> anyhow::Result<()> {
    let hash = hash("a-pw")?;
    let config =
        format!("accounts {{\n  A: {{ users: [ {{user: a, password: \"{hash}\"}} ] }}\n}}\n");
    let server = t.start_with_config(&config, &[])?;
    block_on(check_hashed_user(server.port(), "a", "a-pw", &hash))
}

fn every_bcrypt_version_prefix_is_verified(t: &Target) -> anyhow::Result<()> {
    let hash = hash("pw")?;
    let users: Vec<(String, String)> = ["a", "b", "x", "y"]
        .iter()
        .map(|minor| (format!("u{minor}"), format!("$2{minor}{}", &hash[3..])))
        .collect();
    let list: String = users
        .iter()
        .map(|(user, hash)| format!("    {{ user: {user}, password: \"{hash}\" }}\n"))
        .collect();
    let config = format!("authorization {{\n  users = [\n{list}  ]\n}}\n");
    let server = t.start_with_config(&config, &[])?;
    block_on(async move {
        for (user, hash) in &users {
            check_hashed_user(server.port(), user, "pw", hash).await?;
        }
        Ok(())
    })
}

fn a_bcrypt_password_from_the_pass_flag_admits_the_password_and_not_the_hash(
    t: &Target,
) -> anyhow::Result<()> {
    let hash = hash("flagpass")?;
    let server = t.start(&["--user", "flaguser", "--pass", &hash])?;
    block_on(check_hashed_user(
        server.port(),
        "flaguser",
        "flagpass",
        &hash,
    ))
}

fn a_bcrypt_token_admits_the_token_and_not_the_hash(t: &Target) -> anyhow::Result<()> {
    let flag_hash = hash("fl4g-t0ken")?;
    let conf_hash = hash("c0nf-t0ken")?;
    let from_flag = t.start(&["--auth", &flag_hash])?;
    let config = format!("authorization {{\n  token: \"{conf_hash}\"\n}}\n");
    let from_config = t.start_with_config(&config, &[])?;
    block_on(async move {
        let token = |t: &str| format!(r#"{{"verbose":false,"auth_token":"{t}"}}"#);
        for (port, secret, hash) in [
            (from_flag.port(), "fl4g-t0ken", &flag_hash),
            (from_config.port(), "c0nf-t0ken", &conf_hash),
        ] {
            check_token(port, secret).await?;
            rejected(port, &token(hash)).await?;
        }
        Ok(())
    })
}

fn a_malformed_bcrypt_hash_refuses_every_login_and_the_server_still_starts(
    t: &Target,
) -> anyhow::Result<()> {
    // A hash cut short, and one whose cost bcrypt does not allow: both pass nats-server's
    // `$2a$NN$` test, so neither is compared as plain text.
    let cut = "$2a$11$notahash";
    let low_cost = hash("pw")?.replacen("$04$", "$03$", 1);
    let config = format!(
        "authorization {{\n  users = [\n    {{ user: cut, password: \"{cut}\" }}\n    \
         {{ user: low, password: \"{low_cost}\" }}\n    {{ user: ok, password: ok }}\n  ]\n}}\n"
    );
    let server = t.start_with_config(&config, &[])?;
    block_on(async move {
        let port = server.port();
        for (user, hash) in [("cut", cut), ("low", low_cost.as_str())] {
            rejected(port, &login(user, hash)).await?;
            rejected(port, &login(user, "pw")).await?;
            rejected(port, &login(user, "")).await?;
        }
        accepted(port, &login("ok", "ok")).await
    })
}
