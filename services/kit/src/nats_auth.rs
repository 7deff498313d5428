//! How a service logs in to the broker: user and password, a token, a `.creds` file (user JWT
//! plus nkey seed) or an nkey seed file, from flags or the environment (`NATS_USER` with
//! `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_CREDS`, `NATS_NKEY`). At most one way may be set; none
//! means an anonymous connection, which a broker with authentication refuses.
//!
//! TLS to the broker: `NATS_TLS_CA` (the CA that signed the broker's certificate; TLS is then
//! required), `NATS_TLS_CERT` with `NATS_TLS_KEY` (a client certificate, for a broker that
//! verifies them or maps them to users), `NATS_TLS_FIRST` (the handshake before INFO, for a
//! broker with `handshake_first`). A `tls://` URL alone also requires TLS, trusting the system's
//! CAs.
//!
//! Files are read once, at start, by [`NatsAuth::load`], so a wrong path or a malformed file
//! stops the process with a clear error instead of failing every connection attempt later.

use std::path::{Path, PathBuf};

use clap::Args;

/// The login flags; flattened into each service's configuration.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct NatsAuth {
    /// The broker user name (with `NATS_PASSWORD`).
    #[arg(long, env = "NATS_USER", requires = "nats_password",
          conflicts_with_all = ["nats_token", "nats_creds", "nats_nkey"])]
    pub nats_user: Option<String>,

    /// The broker password (with `NATS_USER`).
    #[arg(
        long,
        env = "NATS_PASSWORD",
        hide_env_values = true,
        requires = "nats_user"
    )]
    pub nats_password: Option<String>,

    /// A broker token.
    #[arg(long, env = "NATS_TOKEN", hide_env_values = true,
          conflicts_with_all = ["nats_creds", "nats_nkey"])]
    pub nats_token: Option<String>,

    /// A NATS credentials file (`.creds`: a user JWT and its nkey seed).
    #[arg(
        long,
        env = "NATS_CREDS",
        value_name = "PATH",
        conflicts_with = "nats_nkey"
    )]
    pub nats_creds: Option<PathBuf>,

    /// A file holding an nkey user seed (`SU…`).
    #[arg(long, env = "NATS_NKEY", value_name = "PATH")]
    pub nats_nkey: Option<PathBuf>,

    /// A CA certificate file (PEM) to trust for the broker's certificate; requires TLS.
    #[arg(long, env = "NATS_TLS_CA", value_name = "PATH")]
    pub nats_tls_ca: Option<PathBuf>,

    /// A client certificate chain (PEM) to present to the broker (with `NATS_TLS_KEY`).
    #[arg(
        long,
        env = "NATS_TLS_CERT",
        value_name = "PATH",
        requires = "nats_tls_key"
    )]
    pub nats_tls_cert: Option<PathBuf>,

    /// The private key (PEM) of `NATS_TLS_CERT`.
    #[arg(
        long,
        env = "NATS_TLS_KEY",
        value_name = "PATH",
        requires = "nats_tls_cert"
    )]
    pub nats_tls_key: Option<PathBuf>,

    /// Start TLS before the broker's INFO (for a broker with `handshake_first`).
    #[arg(long, env = "NATS_TLS_FIRST", default_value_t = false)]
    pub nats_tls_first: bool,

    /// The prefix of this client's reply subjects. A broker that limits each user's
    /// subscriptions gives every user its own (`_INBOX.account-service`), so that no user can
    /// read another's replies.
    #[arg(long, env = "NATS_INBOX_PREFIX", default_value = DEFAULT_INBOX_PREFIX)]
    pub nats_inbox_prefix: String,
}

/// NATS clients' usual reply prefix.
pub const DEFAULT_INBOX_PREFIX: &str = "_INBOX";

/// A login ready to use for every connection attempt: the files already read.
#[derive(Clone)]
pub struct Login {
    method: Method,
    inbox_prefix: String,
    tls: Tls,
}

/// TLS to the broker, its files checked.
#[derive(Clone, Debug, Default)]
struct Tls {
    required: bool,
    ca: Option<PathBuf>,
    client: Option<(PathBuf, PathBuf)>,
    first: bool,
}

impl Default for Login {
    fn default() -> Self {
        Self {
            method: Method::Anonymous,
            inbox_prefix: DEFAULT_INBOX_PREFIX.to_owned(),
            tls: Tls::default(),
        }
    }
}

#[derive(Clone, Default)]
enum Method {
    #[default]
    Anonymous,
    UserPassword(String, String),
    Token(String),
    Creds(String),
    Nkey(String),
}

impl std::fmt::Debug for Login {
    /// Names the method, never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

impl NatsAuth {
    /// Reads and checks the files the flags name; a user and password (or a token) written in
    /// the first URL of `nats_url` (`nats://user:password@host:4222`) count as a login too.
    pub fn load_for(&self, nats_url: &str) -> Result<Login, String> {
        let mut login = self.load()?;
        let first = nats_url.split(',').next().unwrap_or_default().trim();
        login.tls.required |= first.starts_with("tls://");
        let Ok(addr) = first.parse::<async_nats::ServerAddr>() else {
            return Ok(login);
        };
        let from_url = match (addr.username(), addr.password()) {
            (Some(user), Some(password)) => Method::UserPassword(user.into(), password.into()),
            (Some(token), None) => Method::Token(token.into()),
            _ => return Ok(login),
        };
        if !matches!(login.method, Method::Anonymous) {
            return Err(format!(
                "NATS_URL carries a login and {} is set too: use one of them",
                login.describe()
            ));
        }
        login.method = from_url;
        Ok(login)
    }

    /// Reads and checks the files the flags name.
    pub fn load(&self) -> Result<Login, String> {
        let prefix = self.nats_inbox_prefix.trim();
        let valid_prefix = !prefix.is_empty()
            && prefix
                .split('.')
                .all(|t| !t.is_empty() && !t.contains(['*', '>', ' ', '\t']));
        if !valid_prefix {
            return Err(format!(
                "NATS_INBOX_PREFIX {prefix:?} is not a subject prefix (tokens separated by dots, \
                 no wildcards or spaces)"
            ));
        }
        let method = if let (Some(user), Some(password)) = (&self.nats_user, &self.nats_password) {
            if user.is_empty() {
                return Err("NATS_USER is empty".to_owned());
            }
            Method::UserPassword(user.clone(), password.clone())
        } else if let Some(token) = &self.nats_token {
            if token.is_empty() {
                return Err("NATS_TOKEN is empty".to_owned());
            }
            Method::Token(token.clone())
        } else if let Some(path) = &self.nats_creds {
            let creds = read(path, "NATS_CREDS")?;
            // Parses the file now, so a malformed one fails at start.
            async_nats::ConnectOptions::with_credentials(&creds).map_err(|err| {
                format!(
                    "NATS_CREDS {}: not a NATS credentials file: {err}",
                    path.display()
                )
            })?;
            Method::Creds(creds)
        } else if let Some(path) = &self.nats_nkey {
            let seed = read(path, "NATS_NKEY")?.trim().to_owned();
            let valid = seed.starts_with("SU") && nkeys::KeyPair::from_seed(&seed).is_ok();
            if !valid {
                return Err(format!(
                    "NATS_NKEY {}: not an nkey user seed (a line starting with SU)",
                    path.display()
                ));
            }
            Method::Nkey(seed)
        } else {
            Method::Anonymous
        };
        Ok(Login {
            method,
            inbox_prefix: prefix.to_owned(),
            tls: self.tls()?,
        })
    }

    /// The TLS settings, each file checked to be a readable PEM file.
    fn tls(&self) -> Result<Tls, String> {
        let pem = |path: &Path, variable: &str| -> Result<PathBuf, String> {
            let text = read(path, variable)?;
            if !text.contains("-----BEGIN ") {
                return Err(format!("{variable} {}: not a PEM file", path.display()));
            }
            Ok(path.to_owned())
        };
        let ca = match &self.nats_tls_ca {
            Some(path) => Some(pem(path, "NATS_TLS_CA")?),
            None => None,
        };
        let client = match (&self.nats_tls_cert, &self.nats_tls_key) {
            (Some(cert), Some(key)) => {
                Some((pem(cert, "NATS_TLS_CERT")?, pem(key, "NATS_TLS_KEY")?))
            }
            _ => None,
        };
        Ok(Tls {
            required: ca.is_some() || client.is_some() || self.nats_tls_first,
            ca,
            client,
            first: self.nats_tls_first,
        })
    }
}

impl Login {
    /// `options` with this login applied.
    pub fn apply(&self, options: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
        let mut options = options.custom_inbox_prefix(&self.inbox_prefix);
        if self.tls.required {
            options = options.require_tls(true);
        }
        if let Some(ca) = &self.tls.ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.tls.client {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.tls.first {
            options = options.tls_first();
        }
        match &self.method {
            Method::Anonymous => options,
            Method::UserPassword(user, password) => {
                options.user_and_password(user.clone(), password.clone())
            }
            Method::Token(token) => options.token(token.clone()),
            // Checked by `load`; the parse cannot fail the second time.
            Method::Creds(creds) => options
                .credentials(creds)
                .unwrap_or_else(|_| unreachable!("credentials were parsed when they were loaded")),
            Method::Nkey(seed) => options.nkey(seed.clone()),
        }
    }

    /// How this login authenticates, for logs (`user and password`, `anonymous`…).
    pub fn describe(&self) -> &'static str {
        match self.method {
            Method::Anonymous => "anonymous",
            Method::UserPassword(..) => "user and password",
            Method::Token(_) => "token",
            Method::Creds(_) => "credentials file",
            Method::Nkey(_) => "nkey",
        }
    }
}

fn read(path: &Path, variable: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|err| format!("{variable} {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        auth: NatsAuth,
    }

    fn parse(args: &[&str]) -> Result<NatsAuth, clap::Error> {
        Cli::try_parse_from(std::iter::once("svc").chain(args.iter().copied())).map(|c| c.auth)
    }

    #[test]
    fn no_flags_is_an_anonymous_login() {
        let login = parse(&[]).unwrap().load().unwrap();
        assert_eq!(login.describe(), "anonymous");
    }

    #[test]
    fn user_needs_password_and_only_one_method_may_be_set() {
        assert!(parse(&["--nats-user", "a"]).is_err());
        assert!(parse(&["--nats-password", "p"]).is_err());
        assert!(parse(&[
            "--nats-user",
            "a",
            "--nats-password",
            "p",
            "--nats-token",
            "t"
        ])
        .is_err());
        assert!(parse(&["--nats-token", "t", "--nats-nkey", "/x"]).is_err());
        assert!(parse(&["--nats-creds", "/x", "--nats-nkey", "/y"]).is_err());
        let login = parse(&["--nats-user", "a", "--nats-password", "s3cr3t"])
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(login.describe(), "user and password");
        assert!(
            !format!("{login:?}").contains("s3cr3t"),
            "Debug never shows the password"
        );
    }

    #[test]
    fn a_login_in_the_url_counts_unless_another_is_set() {
        let none = parse(&[]).unwrap();
        let login = none
            .load_for("nats://svc:s3cr3t@broker:4222,nats://b:4222")
            .unwrap();
        assert_eq!(login.describe(), "user and password");
        assert_eq!(
            none.load_for("nats://tok@broker:4222").unwrap().describe(),
            "token"
        );
        assert_eq!(
            none.load_for("nats://broker:4222").unwrap().describe(),
            "anonymous"
        );
        let both = parse(&["--nats-token", "t"]).unwrap();
        let err = both.load_for("nats://svc:pw@broker:4222").unwrap_err();
        assert!(
            err.contains("NATS_URL carries a login and token is set too"),
            "{err}"
        );
    }

    #[test]
    fn the_inbox_prefix_must_be_a_subject_prefix() {
        assert!(parse(&[]).unwrap().load().is_ok());
        for bad in ["", "_INBOX.>", "a..b", "with space"] {
            let err = parse(&["--nats-inbox-prefix", bad])
                .unwrap()
                .load()
                .unwrap_err();
            assert!(err.contains("NATS_INBOX_PREFIX"), "{bad}: {err}");
        }
        let ok = parse(&["--nats-inbox-prefix", "_INBOX.account-service"]).unwrap();
        assert!(ok.load().is_ok());
    }

    #[test]
    fn tls_files_come_in_pairs_and_must_be_pem() {
        assert!(parse(&["--nats-tls-cert", "/c.pem"]).is_err());
        assert!(parse(&["--nats-tls-key", "/k.pem"]).is_err());
        let missing = parse(&["--nats-tls-ca", "/no/such/ca.pem"]).unwrap().load();
        assert!(missing.unwrap_err().contains("NATS_TLS_CA /no/such/ca.pem"));
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("ca.txt");
        std::fs::write(&text, "not a certificate").unwrap();
        let bad = parse(&["--nats-tls-ca", text.to_str().unwrap()])
            .unwrap()
            .load();
        assert!(bad.unwrap_err().contains("not a PEM file"));
    }

    #[test]
    fn missing_or_malformed_files_are_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let missing = parse(&["--nats-creds", "/no/such/file.creds"])
            .unwrap()
            .load();
        assert!(missing
            .unwrap_err()
            .contains("NATS_CREDS /no/such/file.creds"));

        let bad = dir.path().join("bad");
        std::fs::write(&bad, "hello").unwrap();
        let creds = parse(&["--nats-creds", bad.to_str().unwrap()])
            .unwrap()
            .load();
        assert!(creds.unwrap_err().contains("not a NATS credentials file"));
        let nkey = parse(&["--nats-nkey", bad.to_str().unwrap()])
            .unwrap()
            .load();
        assert!(nkey.unwrap_err().contains("not an nkey user seed"));

        let seed = dir.path().join("seed");
        let user = nkeys::KeyPair::new_user();
        std::fs::write(&seed, format!("{}\n", user.seed().unwrap())).unwrap();
        let login = parse(&["--nats-nkey", seed.to_str().unwrap()])
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(login.describe(), "nkey");
        assert!(!format!("{login:?}").contains("SU"));
    }
}
