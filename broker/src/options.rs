//! The broker's settings: one struct, filled from defaults, then a config file, then flags.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::secret::Secret;

/// Default client port, as nats-server.
pub const DEFAULT_PORT: u16 = 4222;
/// Largest message payload a client may publish (`max_payload`), as nats-server: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;
/// Longest protocol control line (`max_control_line`), as nats-server: 4 KiB.
pub const DEFAULT_MAX_CONTROL_LINE: usize = 4096;
/// Most client connections at once (`max_connections`), as nats-server.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64 * 1024;
/// Most bytes queued for one client before it is cut off as a slow consumer (`max_pending`).
pub const DEFAULT_MAX_PENDING: usize = 64 * 1024 * 1024;
/// How long one flush to a client may take before it is a slow consumer (`write_deadline`).
pub const DEFAULT_WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// How often the server PINGs each client (`ping_interval`), as nats-server: 2 minutes.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(120);
/// Unanswered PINGs before `Stale Connection` (`ping_max`), as nats-server.
pub const DEFAULT_PING_MAX: u32 = 2;
/// Time a client has to send a valid CONNECT when auth is on (`auth_timeout`): 2 s.
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long lame duck mode takes from its signal to the last client closed
/// (`lame_duck_duration`), as nats-server: 2 minutes.
pub const DEFAULT_LAME_DUCK_DURATION: Duration = Duration::from_secs(120);
/// How long lame duck mode waits, after telling clients, before it closes the first one
/// (`lame_duck_grace_period`), as nats-server: 10 s.
pub const DEFAULT_LAME_DUCK_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// How many subscriptions one connection may hold (`max_subscriptions`); 0 means no limit.
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 0;

/// Where JetStream keeps messages (NATS Streaming's `-st/--store`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreType {
    /// Files under `store_dir`.
    #[default]
    File,
    /// Memory only: lost when the process stops.
    Memory,
}

/// Who may connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    #[default]
    None,
    /// Clients must send this `auth_token` in CONNECT (or one its bcrypt hash admits).
    Token(Secret),
    /// Clients must log in as one of these users.
    Users(Vec<User>),
}

/// One user a client may log in as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum User {
    /// Logs in with `user` and `pass` in CONNECT.
    Password(UserPass),
    /// Logs in with this nkey (a public user key, `U...`) and a signature of the server's nonce.
    NKey(String),
}

impl User {
    /// The name permissions are filed under: the user name, or the nkey.
    pub fn identity(&self) -> &str {
        match self {
            User::Password(u) => &u.user,
            User::NKey(key) => key,
        }
    }
}

/// An account of the configuration file (`accounts { NAME { users: [...] } }`): a subject space
/// of its own, shared by its users and by no one else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountConfig {
    /// The account's name, as `/connz` reports it.
    pub name: String,
    /// Users who log in to this account; their permissions are in `Options::user_permissions`.
    pub users: Vec<User>,
    /// Permissions of this account's users who have none of their own.
    pub default_permissions: Option<Permissions>,
    /// `jetstream: enabled` (or a block) in the account block.
    pub jetstream: bool,
    /// The account's JetStream limits (`jetstream { max_mem, max_file, ... }`); none (-1) for
    /// `jetstream: enabled`.
    pub jetstream_limits: AccountJetStreamLimits,
    /// What the account offers other accounts (`exports: [...]`).
    pub exports: Vec<Export>,
    /// What the account takes from other accounts (`imports: [...]`).
    pub imports: Vec<Import>,
}

/// One entry of an account's `exports`: subjects other accounts may import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// The exported subject (wildcards allowed).
    pub subject: String,
    /// A stream or a service, with the service's response settings.
    pub kind: ExportKind,
    /// The accounts allowed to import it; empty: every account.
    pub accounts: Vec<String>,
}

/// What an export offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    /// Messages published in the exporting account, delivered to the importers too.
    Stream,
    /// Requests from the importers, answered in the exporting account.
    Service {
        /// How many responses a request may get.
        response: ResponseType,
        /// How long a request waits for (more) responses before its reply route is dropped.
        threshold: Duration,
    },
}

/// How many responses one request through a service import may get (`response_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponseType {
    /// One response (the default).
    #[default]
    Singleton,
    /// Any number of responses, until the threshold passes without one.
    Stream,
    /// Any number of responses, ended by an empty message or the threshold.
    Chunked,
}

/// One entry of an account's `imports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// The exporting account.
    pub account: String,
    /// The subject as the exporting account has it (wildcards allowed).
    pub subject: String,
    /// A stream or a service import, with where it lands in this account.
    pub kind: ImportKind,
}

/// How an import maps subjects into the importing account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportKind {
    /// Messages of the exporter's `subject` arrive here as `to` (the same subject when `None`,
    /// `prefix.subject` for a `prefix`).
    Stream { to: Option<String> },
    /// Requests published here on `to` (the same subject when `None`) go to the exporter's
    /// `subject`; `share` passes the requester's details in `Nats-Request-Info`.
    Service { to: Option<String>, share: bool },
}

/// Operator mode (decentralised auth): users log in with a JWT that an account signed, and
/// accounts are JWTs that a trusted operator signed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorMode {
    /// The trusted operators' JWTs (`operator`), as read from the file or given inline.
    pub operators: Vec<String>,
    /// Whether `resolver: MEMORY` was given (the only resolver supported).
    pub memory_resolver: bool,
    /// Account JWTs by account public key (`resolver_preload`).
    pub preload: Vec<(String, String)>,
}

/// What a user may publish and subscribe to (`permissions { publish, subscribe }`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Subjects the user may publish to.
    pub publish: SubjectRules,
    /// Subjects the user may subscribe to.
    pub subscribe: SubjectRules,
}

/// Allow and deny lists of subjects (wildcards allowed); an empty allow list allows all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectRules {
    /// When not empty, only subjects matching one of these.
    pub allow: Vec<String>,
    /// Never subjects matching one of these.
    pub deny: Vec<String>,
}

/// A user/password pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPass {
    /// The `user` field of CONNECT.
    pub user: String,
    /// What the `pass` field of CONNECT must be, or be admitted by.
    pub pass: Secret,
}

/// Everything that shapes one broker process.
#[derive(Clone, Debug)]
pub struct Options {
    /// Interface to listen on for clients (`-a/--addr`, `host`/`listen`).
    pub host: String,
    /// Client port (`-p/--port`); 0 picks a free one (the flag's `-1`).
    pub port: u16,
    /// Monitoring port (`-m/--http_port`); `None` disables monitoring, `Some(0)` picks one.
    pub http_port: Option<u16>,
    /// Interface for monitoring; defaults to `host`.
    pub http_host: Option<String>,
    /// Name reported in INFO and `/varz`; defaults to the server id.
    pub server_name: Option<String>,
    /// Authentication.
    pub auth: Auth,
    /// See [`DEFAULT_MAX_PAYLOAD`].
    pub max_payload: usize,
    /// See [`DEFAULT_MAX_CONTROL_LINE`].
    pub max_control_line: usize,
    /// See [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`DEFAULT_MAX_PENDING`].
    pub max_pending: usize,
    /// See [`DEFAULT_MAX_SUBSCRIPTIONS`].
    pub max_subscriptions: usize,
    /// See [`DEFAULT_WRITE_DEADLINE`].
    pub write_deadline: Duration,
    /// See [`DEFAULT_PING_INTERVAL`].
    pub ping_interval: Duration,
    /// See [`DEFAULT_PING_MAX`].
    pub ping_max: u32,
    /// How long a PING may go unanswered before it counts towards `ping_max` (NATS Streaming's
    /// `-hbt/--hb_timeout`); `None` counts it when the next PING is due, as nats-server does.
    pub ping_timeout: Option<Duration>,
    /// Time a client has to send a valid CONNECT when auth is on (`authorization { timeout }`);
    /// `None` is [`DEFAULT_AUTH_TIMEOUT`], or with TLS the TLS timeout plus one second, as
    /// nats-server. Read it with [`Options::auth_timeout`].
    pub auth_timeout: Option<Duration>,
    /// TLS on the client port (`tls {}`, `--tls*` flags); `None` is clear text only.
    pub tls: Option<crate::tls::TlsSettings>,
    /// With TLS, clients may still connect without it (`allow_non_tls`): INFO then says
    /// `tls_available` instead of `tls_required`.
    pub allow_non_tls: bool,
    /// Monitoring over HTTPS on this port (`-ms/--https_port`, `https_port`), with the client
    /// port's certificate; `Some(0)` picks a free port. Excludes `http_port`.
    pub https_port: Option<u16>,
    /// Permissions of users, by user name or nkey.
    pub user_permissions: std::collections::HashMap<String, Permissions>,
    /// Permissions of every connection whose user has none of its own (`default_permissions`).
    pub default_permissions: Option<Permissions>,
    /// Accounts of the configuration file; everyone else is in the global account `$G`.
    pub accounts: Vec<AccountConfig>,
    /// Operator mode, when `operator` is configured; then no users or accounts are.
    pub operator: Option<OperatorMode>,
    /// The system account's name (or public key in operator mode), reported in `/varz`.
    pub system_account: Option<String>,
    /// The user (name or nkey) a client that sends no credentials logs in as (`no_auth_user`).
    pub no_auth_user: Option<String>,
    /// See [`DEFAULT_LAME_DUCK_DURATION`].
    pub lame_duck_duration: Duration,
    /// See [`DEFAULT_LAME_DUCK_GRACE_PERIOD`].
    pub lame_duck_grace_period: Duration,
    /// Debug logging (`-D`).
    pub debug: bool,
    /// Protocol tracing (`-V`).
    pub trace: bool,
    /// Timestamps on log lines (`-T/--logtime`, `logtime`); on by default, as nats-server.
    pub log_time: bool,
    /// Log file (`-l/--log`); stderr when `None`.
    pub log_file: Option<PathBuf>,
    /// JetStream enabled (`-js`).
    pub jetstream: bool,
    /// JetStream storage kind (NATS Streaming's `-st/--store`).
    pub store_type: StoreType,
    /// JetStream storage directory (`-sd`, `--store_dir`, NATS Streaming's `--dir`); the
    /// system's temporary directory plus `nats` when not given, as nats-server.
    pub store_dir: Option<PathBuf>,
    /// When a file stream's PubAck may be sent (`--sync`, `jetstream { sync_interval }`):
    /// after an fsync (the default, with group commit), or after the write with an fsync at an
    /// interval, or leaving fsync to the operating system.
    pub sync: crate::store::SyncPolicy,
    /// Redeliver at once what a closed connection held unacknowledged for a queue group,
    /// as NATS Streaming did (`--redeliver_on_disconnect`; on by default).
    pub redeliver_on_disconnect: bool,
    /// Server-wide consumer limits (`jetstream { limits { ... } }` in the config file).
    pub jetstream_limits: JetStreamLimits,
    /// The JetStream domain (`jetstream { domain }`): reported in INFO, PubAcks, stream and
    /// account info, and `$JS.<domain>.API.>` reaches the API as `$JS.API.>` does.
    pub jetstream_domain: Option<String>,
    /// Most bytes in memory streams (`jetstream { max_memory_store }`); 75% of the system's
    /// memory when `None` or negative, as nats-server.
    pub jetstream_max_memory: Option<i64>,
    /// Most bytes in file streams (`jetstream { max_file_store }`); 75% of the disk space
    /// available to the store directory when `None` or negative, as nats-server.
    pub jetstream_max_store: Option<i64>,
    /// NATS Streaming cluster id (`-cid`): the broker serves NATS Streaming clients under it
    /// (see `crate::stan`), and reports it in `/varz`.
    pub cluster_id: Option<String>,
    /// NATS Streaming's heartbeats and channel limits, in force with `cluster_id`.
    pub stan: crate::stan::StanSettings,
    /// Directory to write `<name>_<pid>.ports` into once listening (`--ports_file_dir`).
    pub ports_file_dir: Option<PathBuf>,
    /// File to write the process id into (`-P/--pid`).
    pub pid_file: Option<PathBuf>,
    /// The config file given with `-c`, which a reload reads again.
    pub config_file: Option<PathBuf>,
}

impl Options {
    /// See [`Options::auth_timeout`](#structfield.auth_timeout).
    pub fn auth_timeout(&self) -> Duration {
        match (self.auth_timeout, &self.tls) {
            (Some(t), _) => t,
            (None, Some(tls)) => tls.timeout + Duration::from_secs(1),
            (None, None) => DEFAULT_AUTH_TIMEOUT,
        }
    }

    /// Whether clients must authenticate: a token, users (anywhere) or an operator.
    pub fn auth_required(&self) -> bool {
        self.auth != Auth::None
            || self.operator.is_some()
            || self.accounts.iter().any(|a| !a.users.is_empty())
    }

    /// Checks the settings against each other, as nats-server does at start-up and on reload.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_payload > self.max_pending {
            return Err(format!(
                "max_payload ({}) cannot be higher than max_pending ({})",
                self.max_payload, self.max_pending
            ));
        }
        Ok(())
    }

    /// Whether clients may have to sign a nonce, so INFO must carry one: an nkey user exists, or
    /// users log in with JWTs.
    pub fn needs_nonce(&self) -> bool {
        let nkey = |users: &[User]| users.iter().any(|u| matches!(u, User::NKey(_)));
        self.operator.is_some()
            || matches!(&self.auth, Auth::Users(users) if nkey(users))
            || self.accounts.iter().any(|a| nkey(&a.users))
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "0.0.0.0".to_string(),
            port: DEFAULT_PORT,
            http_port: None,
            http_host: None,
            server_name: None,
            auth: Auth::None,
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_control_line: DEFAULT_MAX_CONTROL_LINE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_pending: DEFAULT_MAX_PENDING,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            write_deadline: DEFAULT_WRITE_DEADLINE,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_max: DEFAULT_PING_MAX,
            ping_timeout: None,
            auth_timeout: None,
            tls: None,
            allow_non_tls: false,
            https_port: None,
            user_permissions: Default::default(),
            default_permissions: None,
            accounts: Vec::new(),
            operator: None,
            system_account: None,
            no_auth_user: None,
            lame_duck_duration: DEFAULT_LAME_DUCK_DURATION,
            lame_duck_grace_period: DEFAULT_LAME_DUCK_GRACE_PERIOD,
            debug: false,
            trace: false,
            log_time: true,
            log_file: None,
            jetstream: false,
            store_type: StoreType::File,
            store_dir: None,
            sync: crate::store::SyncPolicy::Always,
            redeliver_on_disconnect: true,
            jetstream_limits: Default::default(),
            jetstream_domain: None,
            jetstream_max_memory: None,
            jetstream_max_store: None,
            cluster_id: None,
            stan: crate::stan::StanSettings::default(),
            ports_file_dir: None,
            pid_file: None,
            config_file: None,
        }
    }
}

/// An account's JetStream limits, as nats-server's account `jetstream {}` block and account
/// JWTs set them and `$JS.API.INFO` reports them. -1 (0 for the stream byte caps) is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountJetStreamLimits {
    /// Most bytes in the account's memory streams (`max_mem`; `mem_storage` in a JWT).
    pub max_memory: i64,
    /// Most bytes in its file streams (`max_file`; `disk_storage`).
    pub max_storage: i64,
    /// Most streams (`max_streams`; `streams`).
    pub max_streams: i64,
    /// Most consumers of one stream (`max_consumers`; `consumer`): nats-server counts them per
    /// stream.
    pub max_consumers: i64,
    /// Largest and default `max_ack_pending` of a consumer.
    pub max_ack_pending: i64,
    /// Largest `max_bytes` of a memory stream, and a cap on what memory streams hold.
    pub memory_max_stream_bytes: i64,
    /// Largest `max_bytes` of a file stream, and a cap on what file streams hold.
    pub storage_max_stream_bytes: i64,
    /// Every stream must set `max_bytes`.
    pub max_bytes_required: bool,
    /// The limits are an account JWT's `R1` tier: the account info reports them under
    /// `tiers`, as nats-server does.
    pub tiered: bool,
}

impl Default for AccountJetStreamLimits {
    /// No limits, as `jetstream: enabled` gives an account.
    fn default() -> Self {
        AccountJetStreamLimits {
            max_memory: -1,
            max_storage: -1,
            max_streams: -1,
            max_consumers: -1,
            max_ack_pending: -1,
            memory_max_stream_bytes: -1,
            storage_max_stream_bytes: -1,
            max_bytes_required: false,
            tiered: false,
        }
    }
}

/// The consumer limits of `jetstream { limits { max_request_batch, max_ack_pending } }`; 0 is
/// no limit. Each is also the default of a consumer that sets none, as on nats-server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JetStreamLimits {
    /// Largest `max_batch` of a pull consumer, and the `max_batch` of one that sets none.
    pub max_request_batch: i64,
    /// Largest `max_ack_pending`, and the default when it is below nats-server's 1000.
    pub max_ack_pending: i64,
}
