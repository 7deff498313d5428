//! Whole-file tests: text in, `Options` (or one error line) out.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::parse::{decode, parse_text};
use super::*;
use crate::options::{Auth, Secret, User, UserPass};

fn env(name: &str) -> Option<String> {
    match name {
        "TEST_PORT" => Some("4333".into()),
        "TEST_SECRET" => Some("s3cret".into()),
        _ => None,
    }
}

fn load_as(file: &Path, text: &str) -> Result<(Options, Vec<String>), ConfigError> {
    let map = parse_text(text.to_string(), Arc::from(file), &env)?;
    let mut opts = Options::default();
    let mut warnings = Vec::new();
    apply::apply(&map, &mut opts, &mut warnings)?;
    Ok((opts, warnings))
}

pub(super) fn load(text: &str) -> Result<Options, ConfigError> {
    load_as(Path::new("foo.conf"), text).map(|(opts, _)| opts)
}

pub(super) fn load_with_warnings(text: &str) -> Result<(Options, Vec<String>), ConfigError> {
    load_as(Path::new("foo.conf"), text)
}

pub(super) fn error(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

/// A fresh directory under the system temp dir for tests that need real files.
fn temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("broker-conf-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_three_separators_comments_and_any_key_case_are_accepted() {
    let opts = load(
        "# a comment\nPort: 4333\nhost = 127.0.0.1 // another\nserver_name  edge-1\n\
         DEBUG: true, trace: on; logtime: false\n",
    )
    .unwrap();
    assert_eq!(opts.port, 4333);
    assert_eq!(opts.host, "127.0.0.1");
    assert_eq!(opts.server_name.as_deref(), Some("edge-1"));
    assert!(opts.debug && opts.trace && !opts.log_time);
}

#[test]
fn every_simple_setting_reaches_its_option() {
    let opts = load(
        r#"
        listen: "10.0.0.1:4555"
        http: localhost:8333
        max_payload: 2MB
        max_control_line: 8KB
        max_connections: 100
        max_pending: 1G
        max_subs: 50
        write_deadline: "500ms"
        ping_interval: 2m
        ping_max: 5
        log_file: '/var/log/broker.log'
        pid_file: /run/broker.pid
        ports_file_dir: /tmp
        "#,
    )
    .unwrap();
    assert_eq!((opts.host.as_str(), opts.port), ("10.0.0.1", 4555));
    assert_eq!(
        (opts.http_host.as_deref(), opts.http_port),
        (Some("localhost"), Some(8333))
    );
    assert_eq!(opts.max_payload, 2 << 20);
    assert_eq!(opts.max_control_line, 8 << 10);
    assert_eq!(opts.max_connections, 100);
    assert_eq!(opts.max_pending, 1_000_000_000);
    assert_eq!(opts.max_subscriptions, 50);
    assert_eq!(opts.write_deadline, Duration::from_millis(500));
    assert_eq!(opts.ping_interval, Duration::from_secs(120));
    assert_eq!(opts.ping_max, 5);
    assert_eq!(opts.log_file, Some(PathBuf::from("/var/log/broker.log")));
    assert_eq!(opts.pid_file, Some(PathBuf::from("/run/broker.pid")));
    assert_eq!(opts.ports_file_dir, Some(PathBuf::from("/tmp")));
}

#[test]
fn ports_follow_nats_server_conventions() {
    assert_eq!(load("port: -1").unwrap().port, 0);
    assert_eq!(load("http_port: -1").unwrap().http_port, Some(0));
    assert_eq!(load("monitor_port: 0").unwrap().http_port, None);
    assert_eq!(load("listen: :4999").unwrap().host, "0.0.0.0");
    assert_eq!(load("listen: \"[::1]:4999\"").unwrap().host, "::1");
    assert_eq!(load("listen: 4999").unwrap().port, 4999);
    assert_eq!(load("port: \"4333\"").unwrap().port, 4333);
    assert!(error("port: 70000").contains("invalid value for 'port'"));
    assert!(error("listen: nowhere").contains("expected host:port"));
}

#[test]
fn durations_may_be_bare_seconds_or_go_durations() {
    assert_eq!(
        load("ping_interval: 10").unwrap().ping_interval,
        Duration::from_secs(10)
    );
    assert_eq!(
        load("ping_interval: \"1h30m\"")
            .unwrap()
            .ping_interval
            .as_secs(),
        5400
    );
    assert!(error("ping_interval: 0").contains("must be greater than zero"));
    assert!(error("ping_interval: soon").contains("invalid duration 'soon'"));
}

#[test]
fn jetstream_limits_set_the_consumer_limits() {
    let (opts, warnings) = load_as(
        Path::new("js.conf"),
        "jetstream {\n  limits {\n    max_request_batch: 100\n    max_ack_pending: 20\n    max_ha_assets: 2\n  }\n}",
    )
    .unwrap();
    assert_eq!(opts.jetstream_limits.max_request_batch, 100);
    assert_eq!(opts.jetstream_limits.max_ack_pending, 20);
    assert_eq!(
        warnings,
        ["config file js.conf:5:5: ignoring 'max_ha_assets': this broker does not implement it"]
    );
}

#[test]
fn jetstream_is_a_switch_or_a_block() {
    assert!(load("jetstream: enabled").unwrap().jetstream);
    assert!(!load("jetstream: disabled").unwrap().jetstream);
    assert!(load("jetstream: true").unwrap().jetstream);
    let (opts, warnings) = load_as(
        Path::new("js.conf"),
        "jetstream {\n  store_dir: \"/data/js\"\n  max_mem: 1G\n}",
    )
    .unwrap();
    assert!(opts.jetstream);
    assert_eq!(opts.store_dir, Some(PathBuf::from("/data/js")));
    assert_eq!(opts.jetstream_max_memory, Some(1_000_000_000));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(
        !load("jetstream: { store: /d, enabled: false }")
            .unwrap()
            .jetstream
    );
    assert!(error("jetstream: maybe").contains("expected enabled, disabled"));
}

#[test]
fn jetstream_storage_limits_take_sizes_and_refuse_words() {
    let opts = load("jetstream { max_file_store: 10MB, max_memory_store: 4096 }").unwrap();
    assert_eq!(opts.jetstream_max_store, Some(10 << 20));
    assert_eq!(opts.jetstream_max_memory, Some(4096));
    let opts = load("jetstream { max_file: -1, max_mem_store: 1K }").unwrap();
    assert_eq!(
        opts.jetstream_max_store,
        Some(-1),
        "negative: sized from the disk"
    );
    assert_eq!(opts.jetstream_max_memory, Some(1000));
    assert!(error("jetstream { max_file_store: lots }").contains("expected a size"));
    assert!(error("jetstream { max_mem: [1] }").contains("expected a size"));
}

#[test]
fn authorization_takes_a_token_a_user_or_a_list_of_users() {
    let opts = load("authorization { token: s3cret, timeout: 0.5 }").unwrap();
    assert_eq!(opts.auth, Auth::Token("s3cret".into()));
    assert_eq!(opts.auth_timeout(), Duration::from_millis(500));
    let one = load("authorization: { user: alice, password: 1234 }").unwrap();
    let alice = UserPass {
        user: "alice".into(),
        pass: "1234".into(),
    };
    assert_eq!(one.auth, Auth::Users(vec![User::Password(alice.clone())]));
    let many = load(
        "authorization {\n  users = [\n    {user: alice, password: \"1234\"}\n    {user: bob, pass: x}\n  ]\n}",
    )
    .unwrap();
    let bob = UserPass {
        user: "bob".into(),
        pass: "x".into(),
    };
    let many_users = vec![User::Password(alice), User::Password(bob)];
    assert_eq!(many.auth, Auth::Users(many_users));
}

#[test]
fn a_bcrypt_password_is_read_quoted_or_bare_as_nats_server_reads_it() {
    // Any valid-looking hash will do: the parser does not verify it.
    let hash = "$2a$04$Tw8DFKvbt2jcr9K8n1nyBOEOP7u9ZbItQ/X6c5L9YbxvnUGcmHBDa";
    let quoted = load(&format!(
        "authorization {{ user: a, password: \"{hash}\" }}"
    ))
    .unwrap();
    let bare = load(&format!(
        "authorization {{\n users = [ {{user: a, password: {hash}}} ]\n}}"
    ));
    let a = UserPass {
        user: "a".into(),
        pass: Secret::Bcrypt(hash.into()),
    };
    assert_eq!(quoted.auth, Auth::Users(vec![User::Password(a.clone())]));
    assert_eq!(bare.unwrap().auth, Auth::Users(vec![User::Password(a)]));
    let token = load(&format!("authorization {{ token: '{hash}' }}")).unwrap();
    assert_eq!(token.auth, Auth::Token(Secret::Bcrypt(hash.into())));
    // Only `$2a$` is special-cased; another bare `$...` is a variable, as on nats-server.
    let other = error(&format!(
        "authorization {{ token: {} }}",
        hash.replace("2a", "2b")
    ));
    assert!(other.contains("variable '2b$04$"), "{other}");
}

#[test]
fn conflicting_or_incomplete_authorization_is_an_error() {
    assert!(error("authorization { token: t, user: u, password: p }").contains("token cannot"));
    assert!(error("authorization { user: u }").contains("go together"));
    // As nats-server, a user may have no password (for TLS certificates that name users).
    let open = load("authorization { users: [{user: u}] }").unwrap();
    assert!(matches!(&open.auth, Auth::Users(u) if u[0].identity() == "u"));
    let half = error("authorization { users: [{password: p}] }");
    assert!(half.contains("either a 'user'"), "{half}");
    let both = error("authorization { users: [{user: u, password: p, nkey: UAFHG6FUD2UU4SDFVAFUL5LDFO2XM4WYM76UNXTPJYJK7EEMYRBHT2VE}] }");
    assert!(both.contains("or an 'nkey'"), "{both}");
    let perms = error("authorization {\n permissions: { publish: x } }");
    assert_eq!(perms, "config file foo.conf:2:2: setting 'permissions' cannot be used: give each user its own, or use default_permissions");
}

#[test]
fn variables_come_from_earlier_keys_enclosing_blocks_or_the_environment() {
    let opts = load(
        "PASS: hunter2\nport: $TEST_PORT\nauthorization {\n  WHO: alice\n  users: [{user: $WHO, password: $PASS}]\n}",
    )
    .unwrap();
    assert_eq!(opts.port, 4333);
    let alice = UserPass {
        user: "alice".into(),
        pass: "hunter2".into(),
    };
    assert_eq!(opts.auth, Auth::Users(vec![User::Password(alice)]));
    assert_eq!(
        load("authorization { token: $TEST_SECRET }").unwrap().auth,
        Auth::Token("s3cret".into())
    );
    assert_eq!(
        error("port: 1\nhost: $NOPE"),
        "config file foo.conf:2:7: variable 'NOPE' is not defined: define it earlier in the file or set it in the environment"
    );
}

#[test]
fn includes_are_read_relative_to_the_including_file() {
    let dir = temp_dir();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/auth.conf"), "token: \"from-include\"\n").unwrap();
    std::fs::write(
        dir.join("main.conf"),
        "port: 4444\nauthorization {\n  include 'sub/auth.conf'\n}\n",
    )
    .unwrap();
    let mut opts = Options::default();
    let warnings = load_into(&dir.join("main.conf"), &mut opts).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(opts.port, 4444);
    assert_eq!(opts.auth, Auth::Token("from-include".into()));
    std::fs::write(dir.join("loop.conf"), "include loop.conf\n").unwrap();
    let err = load_into(&dir.join("loop.conf"), &mut opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("includes are nested too deeply"), "{err}");
    let missing = load_as(&dir.join("x.conf"), "include \"nope.conf\"")
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("x.conf:1:9: cannot read included file "),
        "{missing}"
    );
    assert!(missing.contains("nope.conf: "), "{missing}");
}

#[test]
fn a_missing_value_names_the_file_line_and_column() {
    assert_eq!(
        error("# settings\nhost: a\n  port: \n"),
        "config file foo.conf:3:9: expected a value after 'port'"
    );
    assert_eq!(
        error("port"),
        "config file foo.conf:1:5: expected a value after 'port'"
    );
}

#[test]
fn syntax_errors_say_what_was_expected() {
    let cases = [
        (
            "port: 1 2",
            "1:9: expected a line break, ',' or ';' after the value of 'port'",
        ),
        (
            "a {\n port: 1\n",
            "3:1: expected '}' to close the block opened at line 1",
        ),
        (
            "a: [1, 2",
            "1:9: expected ']' to close the array opened at line 1",
        ),
        ("a: [1 2]", "1:7: expected ',' or ']' after an array item"),
        ("}", "1:1: expected a setting name, found '}'"),
        ("port:4222]", "1:10: expected a setting name, found ']'"),
        (
            "a: \"open",
            "1:4: string is not closed before the end of the line",
        ),
        ("a: $", "1:5: expected a variable name after '$'"),
    ];
    for (text, want) in cases {
        assert_eq!(
            error(text),
            format!("config file foo.conf:{want}"),
            "{text:?}"
        );
    }
}

#[test]
fn unknown_settings_are_errors_and_harmless_ones_are_warnings() {
    assert_eq!(
        error("port: 1\ncluster { port: 6222 }"),
        "config file foo.conf:2:1: unknown setting 'cluster': this broker does not implement it"
    );
    let (_, warnings) = load_as(Path::new("w.conf"), "syslog: true\nlogtime: true").unwrap();
    assert_eq!(
        warnings,
        ["config file w.conf:1:1: ignoring 'syslog': this broker does not implement it"]
    );
}

#[test]
fn invalid_utf8_is_reported_at_its_position() {
    let err = decode(
        b"port: 1\nhost: \xff\n".to_vec(),
        Arc::from(Path::new("u.conf")),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "config file u.conf:2:7: the file is not valid UTF-8"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    assert!(error(&format!("a: {}", "[".repeat(100_000))).contains("nested too deeply"));
    assert!(error(&"a {".repeat(100_000)).contains("nested too deeply"));
}

/// A small deterministic PRNG (xorshift64*), so the fuzz test needs no dependency and is
/// reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_and_mutated_input_never_panics() {
    const SAMPLE: &[u8] = b"port: 4222\nlisten = \"0.0.0.0:4222\" # c\nV: 1MB\nmax_payload $V\n\
        authorization { users = [ {user: a, password: 'b'} ], timeout: 1.5 }\n\
        jetstream { store_dir: /x }\nping_interval: \"1h30m\"; debug: on, http: h:-1\n";
    const ALPHABET: &[u8] = b" \t\n\r:=,;{}[]\"'\\$#/.-+0123456789abcdeKMGkmgsuhx\xc3\xa9\xff";
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..4000 {
        let mut bytes = if round % 2 == 0 {
            SAMPLE.to_vec()
        } else {
            Vec::new()
        };
        for _ in 0..rng.below(40) + 1 {
            let byte = ALPHABET[rng.below(ALPHABET.len())];
            let at = rng.below(bytes.len() + 1);
            let last = bytes.len().saturating_sub(1);
            match rng.below(3) {
                0 if !bytes.is_empty() => bytes[at.min(last)] = byte,
                1 if !bytes.is_empty() => drop(bytes.remove(at.min(last))),
                _ => bytes.insert(at, byte),
            }
        }
        let file: Arc<Path> = Arc::from(Path::new("fuzz.conf"));
        if let Ok(text) = decode(bytes, file.clone()) {
            if let Ok(map) = parse_text(text, file, &env) {
                let _ = apply::apply(&map, &mut Options::default(), &mut Vec::new());
            }
        }
    }
}

#[test]
fn nkey_users_are_checked_public_user_keys() {
    let key = "UAFHG6FUD2UU4SDFVAFUL5LDFO2XM4WYM76UNXTPJYJK7EEMYRBHT2VE";
    let opts = load(&format!(
        "authorization {{ users: [ {{nkey: {key}}}, {{user: a, password: b}} ] }}"
    ))
    .unwrap();
    let a = UserPass {
        user: "a".into(),
        pass: "b".into(),
    };
    assert_eq!(
        opts.auth,
        Auth::Users(vec![User::NKey(key.into()), User::Password(a)])
    );
    assert!(opts.needs_nonce());
    let broken = error("authorization { users: [ {nkey: UAFHG6FUD2UU4SDFVAFUL5LDFO2XM4WYM76UNXTPJYJK7EEMYRBHT2VF} ] }");
    assert!(broken.contains("not a valid public nkey"), "{broken}");
    let account = error("authorization { users: [ {nkey: AAFHG6FUD2UU4SDFVAFUL5LDFO2XM4WYM76UNXTPJYJK7EEMYRBHT2VE} ] }");
    assert!(account.contains("nkey"), "{account}");
}

#[test]
fn user_and_default_permissions_take_a_subject_a_list_or_allow_and_deny() {
    let opts = load(
        "authorization {\n default_permissions: { publish: \"a.>\" }\n users: [ {user: u, password: p, permissions: { publish: [x, y], subscribe: { allow: \"s.*\", deny: [s.no] } }} ]\n}",
    )
    .unwrap();
    let default = opts.default_permissions.expect("default permissions");
    assert_eq!(default.publish.allow, ["a.>"]);
    let user = &opts.user_permissions["u"];
    assert_eq!(user.publish.allow, ["x", "y"]);
    assert_eq!(user.subscribe.allow, ["s.*"]);
    assert_eq!(user.subscribe.deny, ["s.no"]);
    let bad = error(
        "authorization { users: [ {user: u, password: p, permissions: { publish: \"a..b\" }} ] }",
    );
    assert!(bad.contains("'a..b' is not a valid subject"), "{bad}");
    let odd =
        error("authorization { users: [ {user: u, password: p, permissions: { respond: 1 }} ] }");
    assert!(odd.contains("only 'publish' and 'subscribe'"), "{odd}");
}
