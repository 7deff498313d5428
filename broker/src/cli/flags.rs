//! The flag table, and what each flag does to [`Options`].

use std::path::PathBuf;
use std::time::Duration;

use super::CliError;
use crate::config_file::{parse_duration, parse_size};
use crate::options::{Auth, Options, StoreType, User, UserPass};
use crate::store::SyncPolicy;

/// What a flag does; several spellings (`-p`, `--port`) share one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flag {
    Addr,
    Port,
    HttpPort,
    Name,
    User,
    Pass,
    Auth,
    Config,
    CheckConfig,
    Debug,
    Trace,
    DebugTrace,
    LogTime,
    Log,
    Pid,
    PortsFileDir,
    JetStream,
    StoreDir,
    Version,
    Help,
    Signal,
    ClusterId,
    HbInterval,
    HbTimeout,
    HbFailCount,
    /// NATS Streaming's channel limits (`-mc`, `-msu`, `-mm`, `-mb`, `-ma`).
    MaxChannels,
    MaxSubs,
    MaxMsgs,
    MaxBytes,
    MaxAge,
    Store,
    Sync,
    RedeliverOnDisconnect,
    HttpsPort,
    /// `-tls`: TLS on (with the other `-tls*` flags) or, as `-tls=false`, off.
    Tls,
    TlsVerify,
    TlsCert,
    TlsKey,
    TlsCaCert,
    /// Accepted for compatibility and ignored with this warning; the value is still checked.
    Ignored(Kind, &'static str),
    /// Refused with this reason.
    Refused(&'static str),
}

/// The shape of a value that is checked but then ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Switch,
    Text,
    Size,
    Duration,
}

/// One row of the table: the spellings, without dashes, and whether a value follows.
pub(super) struct Spec {
    pub(super) names: &'static [&'static str],
    pub(super) flag: Flag,
    pub(super) takes_value: bool,
}

const fn spec(names: &'static [&'static str], flag: Flag, takes_value: bool) -> Spec {
    Spec {
        names,
        flag,
        takes_value,
    }
}

const CLUSTER: Flag = Flag::Refused("clustering is not supported");
const SYSLOG: &str = "logging goes to stderr or to the -l file";
const STAN_INACTIVITY: &str =
    "NATS Streaming channels are streams, which the broker never deletes on its own";

/// Every flag, as nats-server and NATS Streaming spell them (case matters, as in Go).
pub(super) const SPECS: &[Spec] = &[
    spec(&["a", "addr", "net"], Flag::Addr, true),
    spec(&["p", "port"], Flag::Port, true),
    spec(&["m", "http_port"], Flag::HttpPort, true),
    spec(&["n", "name", "server_name"], Flag::Name, true),
    spec(&["user"], Flag::User, true),
    spec(&["pass"], Flag::Pass, true),
    spec(&["auth"], Flag::Auth, true),
    spec(&["c", "config"], Flag::Config, true),
    spec(&["t"], Flag::CheckConfig, false),
    spec(&["D", "debug", "SD", "stan_debug"], Flag::Debug, false),
    spec(
        &["V", "trace", "VV", "SV", "stan_trace"],
        Flag::Trace,
        false,
    ),
    spec(&["DV", "DVV", "SDV"], Flag::DebugTrace, false),
    spec(&["T", "logtime"], Flag::LogTime, false),
    spec(&["l", "log"], Flag::Log, true),
    spec(&["P", "pid"], Flag::Pid, true),
    spec(&["ports_file_dir"], Flag::PortsFileDir, true),
    spec(&["js", "jetstream"], Flag::JetStream, false),
    spec(&["sd", "store_dir", "dir"], Flag::StoreDir, true),
    spec(&["sync"], Flag::Sync, true),
    spec(
        &["redeliver_on_disconnect"],
        Flag::RedeliverOnDisconnect,
        false,
    ),
    spec(&["v", "version"], Flag::Version, false),
    spec(&["h", "help"], Flag::Help, false),
    spec(&["sl", "signal"], Flag::Signal, true),
    spec(&["cid", "cluster_id"], Flag::ClusterId, true),
    spec(&["hbi", "hb_interval"], Flag::HbInterval, true),
    spec(&["hbt", "hb_timeout"], Flag::HbTimeout, true),
    spec(&["hbf", "hb_fail_count"], Flag::HbFailCount, true),
    spec(&["st", "store"], Flag::Store, true),
    spec(&["mc", "max_channels"], Flag::MaxChannels, true),
    spec(&["msu", "max_subs"], Flag::MaxSubs, true),
    spec(&["mm", "max_msgs"], Flag::MaxMsgs, true),
    spec(&["mb", "max_bytes"], Flag::MaxBytes, true),
    spec(&["ma", "max_age"], Flag::MaxAge, true),
    spec(
        &["mi", "max_inactivity"],
        Flag::Ignored(Kind::Duration, STAN_INACTIVITY),
        true,
    ),
    spec(
        &["client_advertise"],
        Flag::Ignored(Kind::Text, "the broker advertises no other address"),
        true,
    ),
    spec(&["s", "syslog"], Flag::Ignored(Kind::Switch, SYSLOG), false),
    spec(
        &["r", "remote_syslog"],
        Flag::Ignored(Kind::Text, SYSLOG),
        true,
    ),
    spec(&["log_size_limit"], Flag::Ignored(Kind::Size, SYSLOG), true),
    spec(&["ms", "https_port"], Flag::HttpsPort, true),
    spec(&["tls"], Flag::Tls, false),
    spec(&["tlsverify"], Flag::TlsVerify, false),
    spec(&["tlscert"], Flag::TlsCert, true),
    spec(&["tlskey"], Flag::TlsKey, true),
    spec(&["tlscacert"], Flag::TlsCaCert, true),
    spec(
        &["routes", "cluster", "cluster_name", "cluster_advertise"],
        CLUSTER,
        true,
    ),
    spec(&["no_advertise"], CLUSTER, false),
    spec(
        &["ns", "nats_server"],
        Flag::Refused("the broker is the NATS server, it cannot use another one"),
        true,
    ),
    spec(
        &["sc", "stan_config"],
        Flag::Refused("put the settings in the file given to -c instead"),
        true,
    ),
];

/// The row for `name` (as written, without dashes).
pub(super) fn lookup(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.names.contains(&name))
}

/// One flag as given: its row, its name as written (without dashes), and its value, which for
/// a switch is `true` unless written `-D=false`.
pub(super) struct Given {
    pub(super) flag: Flag,
    pub(super) name: String,
    pub(super) value: String,
}

impl Given {
    pub(super) fn switch(&self) -> bool {
        self.value == "true"
    }

    fn invalid(&self, reason: impl Into<String>) -> CliError {
        CliError::InvalidValue {
            flag: self.name.clone(),
            value: self.value.clone(),
            reason: reason.into(),
        }
    }

    fn number<T: std::str::FromStr>(&self) -> Result<T, CliError> {
        let text = self.value.trim();
        text.parse().map_err(|_| match text.parse::<i128>() {
            Ok(_) => self.invalid("value out of range"),
            Err(_) => self.invalid("parse error"),
        })
    }

    // -1 asks for a random port, which the listener spells 0.
    fn port(&self) -> Result<u16, CliError> {
        match self.number::<i64>()? {
            -1 => Ok(0),
            n => u16::try_from(n).map_err(|_| self.invalid("value out of range")),
        }
    }

    // As nats-server: 0 turns monitoring off, -1 picks a free port.
    fn http_port(&self) -> Result<Option<u16>, CliError> {
        match self.number::<i64>()? {
            0 => Ok(None),
            _ => self.port().map(Some),
        }
    }

    fn duration(&self) -> Result<Duration, CliError> {
        match parse_duration(&self.value) {
            Ok(d) if d.is_zero() => Err(self.invalid("must be greater than zero")),
            Ok(d) => Ok(d),
            Err(reason) => Err(self.invalid(reason)),
        }
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(&self.value)
    }
}

/// Options being built from flags, with the credentials that only make sense together.
pub(super) struct Builder {
    pub(super) opts: Options,
    pub(super) warnings: Vec<String>,
    user: Option<String>,
    pass: Option<String>,
    token: Option<String>,
    tls: TlsFlags,
}

/// The `-tls*` flags as given; they replace the config file's certificate, key, CA and verify.
#[derive(Default)]
struct TlsFlags {
    /// `-tls` or `-tls=false`.
    switch: Option<bool>,
    /// Any `-tls*` flag was given.
    any: bool,
    verify: bool,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
}

impl Builder {
    /// Starts from `opts` (defaults, or what the config file set).
    pub(super) fn new(opts: Options) -> Self {
        Builder {
            opts,
            warnings: Vec::new(),
            user: None,
            pass: None,
            token: None,
            tls: TlsFlags::default(),
        }
    }

    /// Applies one flag; a later flag overrides an earlier one.
    pub(super) fn apply(&mut self, given: &Given) -> Result<(), CliError> {
        let opts = &mut self.opts;
        match given.flag {
            Flag::Addr => opts.host = given.value.clone(),
            Flag::Port => opts.port = given.port()?,
            // 0 turns monitoring off, as nats-server; -1 picks a free port.
            Flag::HttpPort => opts.http_port = given.http_port()?,
            Flag::Name => opts.server_name = Some(given.value.clone()),
            Flag::User => self.user = Some(given.value.clone()),
            Flag::Pass => self.pass = Some(given.value.clone()),
            Flag::Auth => self.token = Some(given.value.clone()),
            Flag::Debug => opts.debug = given.switch(),
            Flag::Trace => opts.trace = given.switch(),
            Flag::DebugTrace => (opts.debug, opts.trace) = (given.switch(), given.switch()),
            Flag::LogTime => opts.log_time = given.switch(),
            Flag::Log => opts.log_file = Some(given.path()),
            Flag::Pid => opts.pid_file = Some(given.path()),
            Flag::PortsFileDir => opts.ports_file_dir = Some(given.path()),
            Flag::JetStream => opts.jetstream = given.switch(),
            Flag::StoreDir => opts.store_dir = Some(given.path()),
            Flag::ClusterId => opts.cluster_id = Some(given.value.clone()),
            Flag::HbInterval => {
                opts.ping_interval = given.duration()?;
                opts.stan.hb_interval = opts.ping_interval;
            }
            Flag::HbTimeout => {
                opts.ping_timeout = Some(given.duration()?);
                opts.stan.hb_timeout = given.duration()?;
            }
            Flag::HbFailCount => {
                opts.ping_max = given.number()?;
                opts.stan.hb_fail_count = opts.ping_max;
            }
            Flag::MaxChannels => opts.stan.max_channels = given.number()?,
            Flag::MaxSubs => opts.stan.max_subs = given.number()?,
            Flag::MaxMsgs => opts.stan.max_msgs = given.number()?,
            Flag::MaxBytes => {
                opts.stan.max_bytes = parse_size(&given.value)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| given.invalid("parse error"))?;
            }
            Flag::MaxAge => {
                opts.stan.max_age = match given.value.trim() {
                    "0" => Duration::ZERO,
                    _ => given.duration()?,
                }
            }
            Flag::Store => opts.store_type = store_type(given)?,
            Flag::Sync => opts.sync = sync_policy(given)?,
            Flag::RedeliverOnDisconnect => opts.redeliver_on_disconnect = given.switch(),
            Flag::HttpsPort => opts.https_port = given.http_port()?,
            Flag::Tls => self.tls.switch = Some(given.switch()),
            Flag::TlsVerify => (self.tls.any, self.tls.verify) = (true, given.switch()),
            Flag::TlsCert => (self.tls.any, self.tls.cert) = (true, Some(given.path())),
            Flag::TlsKey => (self.tls.any, self.tls.key) = (true, Some(given.path())),
            Flag::TlsCaCert => (self.tls.any, self.tls.ca) = (true, Some(given.path())),
            Flag::Ignored(kind, why) => self.ignore(given, kind, why)?,
            Flag::Refused(reason) => return Err(refused(given, reason)),
            Flag::Config | Flag::CheckConfig | Flag::Version | Flag::Help | Flag::Signal => {}
        }
        Ok(())
    }

    fn ignore(&mut self, given: &Given, kind: Kind, why: &str) -> Result<(), CliError> {
        match kind {
            Kind::Size => {
                parse_size(&given.value)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| given.invalid("parse error"))?;
            }
            Kind::Duration => drop(given.duration()?),
            Kind::Switch | Kind::Text => {}
        }
        self.warnings
            .push(format!("flag -{} is ignored: {why}", given.name));
        Ok(())
    }

    /// The options, once the credential flags are checked against each other; they replace
    /// whatever `authorization` the config file set.
    pub(super) fn finish(mut self) -> Result<(Options, Vec<String>), CliError> {
        self.opts.auth = match (self.token, self.user, self.pass) {
            (None, None, None) => self.opts.auth,
            (Some(token), None, None) => Auth::Token(token.into()),
            (None, Some(user), Some(pass)) => Auth::Users(vec![User::Password(UserPass {
                user,
                pass: pass.into(),
            })]),
            (Some(_), Some(_), _) => return Err(CliError::Conflict("auth", "user")),
            (Some(_), None, Some(_)) => return Err(CliError::Conflict("auth", "pass")),
            (None, Some(_), None) => return Err(CliError::Requires("user", "pass")),
            (None, None, Some(_)) => return Err(CliError::Requires("pass", "user")),
        };
        match (self.tls.switch, self.tls.any) {
            // As nats-server: `-tls=false` turns TLS off, whatever else says otherwise.
            (Some(false), _) => self.opts.tls = None,
            (Some(true), _) | (None, true) => {
                self.opts.tls = Some(tls_settings(self.tls, self.opts.tls.take())?)
            }
            (None, false) => {}
        }
        // A NATS Streaming deployment always had streaming: its flags turn JetStream on.
        if self.opts.cluster_id.is_some() {
            self.opts.jetstream = true;
        }
        Ok((self.opts, self.warnings))
    }
}

/// The TLS of the `-tls*` flags, checked by loading its files. As nats-server, they replace the
/// file's certificates, CA, verification, suites, curves and minimum version; the file's timeout,
/// `verify_and_map`, pins, rate limit and `handshake_first` stay.
fn tls_settings(
    flags: TlsFlags,
    file: Option<crate::tls::TlsSettings>,
) -> Result<crate::tls::TlsSettings, CliError> {
    let cert = flags
        .cert
        .ok_or_else(|| CliError::Tls("TLS Server certificate must be present and valid".into()))?;
    let key = flags
        .key
        .ok_or_else(|| CliError::Tls("TLS Server private key must be present and valid".into()))?;
    let fresh = crate::tls::TlsSettings::new(cert, key);
    let mut settings = match file {
        Some(file) => crate::tls::TlsSettings {
            certs: fresh.certs,
            cipher_suites: None,
            curve_preferences: None,
            min_version: fresh.min_version,
            ..file
        },
        None => fresh,
    };
    settings.ca_file = flags.ca;
    settings.verify = flags.verify;
    crate::tls::load::server_config(&settings).map_err(CliError::Tls)?;
    Ok(settings)
}

fn refused(given: &Given, reason: &str) -> CliError {
    CliError::Unsupported {
        flag: given.name.clone(),
        reason: reason.to_string(),
    }
}

// --sync always | interval=<duration> | never
fn sync_policy(given: &Given) -> Result<SyncPolicy, CliError> {
    let value = given.value.trim();
    match value.to_ascii_lowercase().as_str() {
        "always" => return Ok(SyncPolicy::Always),
        "never" => return Ok(SyncPolicy::Never),
        _ => {}
    }
    let Some(interval) = value.strip_prefix("interval=") else {
        return Err(given.invalid("expected always, interval=<duration> or never"));
    };
    match parse_duration(interval) {
        Ok(d) if !d.is_zero() => Ok(SyncPolicy::Interval(d)),
        Ok(_) => Err(given.invalid("the interval must be greater than zero")),
        Err(reason) => Err(given.invalid(reason)),
    }
}

// -st file | memory | sql (NATS Streaming's store types; case does not matter)
fn store_type(given: &Given) -> Result<StoreType, CliError> {
    match given.value.to_ascii_lowercase().as_str() {
        "file" => Ok(StoreType::File),
        "memory" | "mem" => Ok(StoreType::Memory),
        "sql" => Err(given.invalid("the SQL store is not supported, use file (or memory)")),
        _ => Err(given.invalid("expected file or memory")),
    }
}
