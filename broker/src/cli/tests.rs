use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::flags::SPECS;
use super::*;
use crate::options::{Auth, Secret, StoreType, User, UserPass};

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

fn run(line: &str) -> (Options, Vec<String>) {
    match parse_args(args(line)) {
        Ok((Command::Run(opts), warnings)) => (*opts, warnings),
        other => panic!("{line}: expected Run, got {other:?}"),
    }
}

fn opts(line: &str) -> Options {
    run(line).0
}

fn error(line: &str) -> String {
    parse_args(args(line)).unwrap_err().to_string()
}

/// Writes `text` to a fresh file under the system temp dir and returns its path.
fn config(text: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("broker-cli-{}-{n}.conf", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_nats_streaming_command_line_of_the_services_parses() {
    let (o, warnings) = run("-p 4222 -m 8222 -hbi 5s -hbt 5s -hbf 2 -SD -cid ticketing");
    assert_eq!(o.port, 4222);
    assert_eq!(o.http_port, Some(8222));
    assert_eq!(o.ping_interval, Duration::from_secs(5));
    assert_eq!(o.ping_timeout, Some(Duration::from_secs(5)));
    assert_eq!(o.ping_max, 2);
    assert!(o.debug && !o.trace);
    assert_eq!(o.cluster_id.as_deref(), Some("ticketing"));
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn no_arguments_give_the_defaults() {
    let (o, warnings) = run("");
    assert_eq!(o.port, crate::options::DEFAULT_PORT);
    assert_eq!(o.http_port, None);
    assert!(o.log_time && warnings.is_empty());
}

#[test]
fn flags_take_one_or_two_dashes_and_a_separate_or_inline_value() {
    for line in [
        "-p 5222",
        "--p 5222",
        "-port=5222",
        "--port=5222",
        "--port 5222",
    ] {
        assert_eq!(opts(line).port, 5222, "{line}");
    }
    let o = opts("--addr 127.0.0.1 -n edge -user=a --pass b -l /tmp/b.log -P=/tmp/b.pid");
    assert_eq!(o.host, "127.0.0.1");
    assert_eq!(o.server_name.as_deref(), Some("edge"));
    let a = UserPass {
        user: "a".into(),
        pass: "b".into(),
    };
    assert_eq!(o.auth, Auth::Users(vec![User::Password(a)]));
    assert_eq!(o.log_file, Some(PathBuf::from("/tmp/b.log")));
    assert_eq!(o.pid_file, Some(PathBuf::from("/tmp/b.pid")));
    assert_eq!(opts("-net 10.0.0.1").host, "10.0.0.1");
    assert_eq!(opts("--server_name x").server_name.as_deref(), Some("x"));
}

#[test]
fn a_bcrypt_pass_or_token_on_the_command_line_is_a_hash_and_a_malformed_one_is_warned_about() {
    let hash = "$2y$04$Tw8DFKvbt2jcr9K8n1nyBOEOP7u9ZbItQ/X6c5L9YbxvnUGcmHBDa";
    let (o, warnings) = run(&format!("--user a --pass {hash}"));
    let a = UserPass {
        user: "a".into(),
        pass: Secret::Bcrypt(hash.into()),
    };
    assert_eq!(o.auth, Auth::Users(vec![User::Password(a)]));
    assert!(warnings.is_empty(), "{warnings:?}");
    let (o, warnings) = run("--auth $2a$11$cut");
    assert_eq!(o.auth, Auth::Token(Secret::Bcrypt("$2a$11$cut".into())));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("the token is not a valid bcrypt hash ("),
        "{warnings:?}"
    );
}

#[test]
fn minus_one_asks_for_a_random_port_and_a_zero_monitor_port_is_off() {
    assert_eq!(opts("-p -1").port, 0);
    assert_eq!(opts("-m -1").http_port, Some(0));
    assert_eq!(opts("-m 0").http_port, None);
    assert_eq!(opts("--http_port=8222").http_port, Some(8222));
}

#[test]
fn switches_take_no_value_or_an_inline_boolean() {
    let o = opts("-D -V");
    assert!(o.debug && o.trace);
    let o = opts("-D -D=false -V=1 -T=false");
    assert!(!o.debug && o.trace && !o.log_time);
    for line in ["-DV", "-DVV", "-SDV", "--debug --trace", "-SD -SV"] {
        let o = opts(line);
        assert!(o.debug && o.trace, "{line}");
    }
    let o = opts("-VV");
    assert!(o.trace && !o.debug);
    assert!(opts("--logtime").log_time);
}

#[test]
fn jetstream_and_store_flags_set_the_store() {
    let o = opts("-js -sd /data");
    assert!(o.jetstream);
    assert_eq!(o.store_dir, Some(PathBuf::from("/data")));
    let o = opts("--jetstream --store_dir=/a --dir /b -st MEMORY");
    assert_eq!(o.store_dir, Some(PathBuf::from("/b")));
    assert_eq!(o.store_type, StoreType::Memory);
    assert_eq!(opts("--store file").store_type, StoreType::File);
    assert_eq!(
        error("-st sql"),
        "invalid value \"sql\" for flag -st: the SQL store is not supported, use file (or memory)"
    );
    assert_eq!(
        error("-st disk"),
        "invalid value \"disk\" for flag -st: expected file or memory"
    );
}

#[test]
fn heartbeat_flags_accept_go_durations_and_bare_seconds() {
    for (given, want) in [
        ("500ms", 500),
        ("1m30s", 90_000),
        ("10", 10_000),
        ("1h", 3_600_000),
    ] {
        let o = opts(&format!("--hb_interval {given}"));
        assert_eq!(o.ping_interval, Duration::from_millis(want), "{given}");
        assert_eq!(o.stan.hb_interval, Duration::from_millis(want), "{given}");
    }
    assert_eq!(opts("--hb_fail_count=7").ping_max, 7);
    let o = opts("-hbi 5s -hbt 2s -hbf 2");
    assert_eq!(
        (o.stan.hb_interval, o.stan.hb_timeout, o.stan.hb_fail_count),
        (Duration::from_secs(5), Duration::from_secs(2), 2),
        "NATS Streaming's heartbeats to its clients"
    );
    assert!(error("-hbi 0s").ends_with("for flag -hbi: must be greater than zero"));
    assert!(
        error("-hbt soon").starts_with("invalid value \"soon\" for flag -hbt: invalid duration")
    );
}

#[test]
fn streaming_limits_set_the_channels_limits_and_the_rest_is_ignored_with_a_warning() {
    let (o, warnings) =
        run("-mc 100 -msu 10 -mm 1000 -mb 1GB -ma 24h -mi 1h --client_advertise x:1");
    assert_eq!(
        o.max_subscriptions, 0,
        "-msu is per channel, not per connection"
    );
    assert_eq!(
        (o.stan.max_channels, o.stan.max_subs, o.stan.max_msgs),
        (100, 10, 1000)
    );
    assert_eq!(o.stan.max_bytes, 1024 * 1024 * 1024);
    assert_eq!(o.stan.max_age, std::time::Duration::from_secs(24 * 3600));
    assert_eq!(warnings.len(), 2);
    assert!(warnings[0].starts_with("flag -mi is ignored: NATS Streaming channels are streams"));
    assert!(warnings[1].starts_with("flag -client_advertise is ignored"));
    let (o, _) = run("-mc 0 -mm 0 -mb 0 -ma 0");
    assert_eq!(
        (o.stan.max_channels, o.stan.max_msgs, o.stan.max_bytes),
        (0, 0, 0),
        "0 is no limit"
    );
    assert!(o.stan.max_age.is_zero());
    assert_eq!(
        run("").0.stan,
        crate::stan::StanSettings::default(),
        "NATS Streaming's defaults"
    );
    assert_eq!(
        error("-mm lots"),
        "invalid value \"lots\" for flag -mm: parse error"
    );
    assert_eq!(
        error("-mb -5"),
        "invalid value \"-5\" for flag -mb: parse error"
    );
    assert_eq!(
        error("-mc -1"),
        "invalid value \"-1\" for flag -mc: value out of range"
    );
    assert!(error("-ma forever").starts_with("invalid value \"forever\" for flag -ma"));
}

#[test]
fn version_and_help_win_over_everything_else() {
    for line in [
        "-v",
        "--version",
        "-p 1 -v",
        "version",
        "-D version",
        "-- version",
        "-h -v",
    ] {
        assert!(
            matches!(parse_args(args(line)), Ok((Command::Version, _))),
            "{line}"
        );
    }
    for line in [
        "-h",
        "--help",
        "help",
        "-c /nonexistent.conf -h",
        "-v=false -h",
    ] {
        assert!(
            matches!(parse_args(args(line)), Ok((Command::Help, _))),
            "{line}"
        );
    }
}

#[test]
fn dash_t_checks_the_configuration_instead_of_running() {
    match parse_args(args("-t -p 4333")) {
        Ok((Command::CheckConfig(o), _)) => assert_eq!(o.port, 4333),
        other => panic!("expected CheckConfig, got {other:?}"),
    }
}

#[test]
fn flags_override_the_config_file_wherever_they_appear() {
    let path = config("port: 5000\ndebug: true\nserver_name: from-file\nsyslog: true\n");
    let path = path.display();
    let (o, warnings) = run(&format!("-p 6000 -c {path} -n from-flag"));
    assert_eq!(o.port, 6000);
    assert!(o.debug);
    assert_eq!(o.server_name.as_deref(), Some("from-flag"));
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("ignoring 'syslog'"));
    assert!(!opts(&format!("-D=false --config={path}")).debug);
    assert_eq!(opts(&format!("--config {path}")).port, 5000);
}

#[test]
fn credential_flags_replace_the_config_files_authorization() {
    let path = config("authorization { users = [ {user: a, password: b} ] }\n");
    let o = opts(&format!("-c {} --auth tok", path.display()));
    assert_eq!(o.auth, Auth::Token("tok".into()));
    assert_eq!(
        error("--auth t --user u --pass p"),
        "flags -auth and -user cannot be used together"
    );
    assert_eq!(
        error("--auth t --pass p"),
        "flags -auth and -pass cannot be used together"
    );
    assert_eq!(error("--user u"), "flag -user needs flag -pass as well");
    assert_eq!(error("--pass p"), "flag -pass needs flag -user as well");
}

#[test]
fn config_file_errors_pass_through_unchanged() {
    let err = error("-c /nonexistent/broker.conf");
    assert!(
        err.starts_with("config file /nonexistent/broker.conf: "),
        "{err}"
    );
    let path = config("port: 1\nbogus: 2\n");
    let err = error(&format!("-c {}", path.display()));
    assert!(err.ends_with(":2:1: unknown setting 'bogus': this broker does not implement it"));
}

#[test]
fn every_kind_of_mistake_is_one_line_naming_the_flag() {
    let cases = [
        ("-foo", "flag provided but not defined: -foo"),
        ("--foo=1", "flag provided but not defined: -foo"),
        ("-d", "flag provided but not defined: -d"),
        ("-p abc", "invalid value \"abc\" for flag -p: parse error"),
        (
            "-p 70000",
            "invalid value \"70000\" for flag -p: value out of range",
        ),
        ("-p=", "invalid value \"\" for flag -p: parse error"),
        (
            "-m -2",
            "invalid value \"-2\" for flag -m: value out of range",
        ),
        (
            "-hbf -1",
            "invalid value \"-1\" for flag -hbf: value out of range",
        ),
        ("-p", "flag needs an argument: -p"),
        ("-D -c", "flag needs an argument: -c"),
        (
            "-D=maybe",
            "invalid boolean value \"maybe\" for -D: parse error",
        ),
        ("---p 1", "bad flag syntax: ---p"),
        ("-=1", "bad flag syntax: -=1"),
        ("serve", "unrecognized command: \"serve\""),
        ("-p 1 - ", "unrecognized command: \"-\""),
        ("--tls", "TLS Server certificate must be present and valid"),
        (
            "--tlscert /nonexistent/cert.pem",
            "TLS Server private key must be present and valid",
        ),
        ("-ms x", "invalid value \"x\" for flag -ms: parse error"),
        (
            "--routes nats://a:6222",
            "flag -routes: clustering is not supported",
        ),
        (
            "-ns nats://x:4222",
            "flag -ns: the broker is the NATS server, it cannot use another one",
        ),
        (
            "-p abc -v",
            "invalid value \"abc\" for flag -p: parse error",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(error(line), want, "{line}");
    }
}

#[test]
fn the_help_text_lists_every_flag() {
    let text = usage();
    for name in SPECS.iter().flat_map(|s| s.names) {
        let listed = text.match_indices(&format!("-{name}")).any(|(at, found)| {
            let after = text[at + found.len()..].chars().next();
            !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        });
        assert!(listed, "-{name} is missing from usage()");
    }
}

#[test]
fn the_signal_flag_is_handled_before_the_config_file_is_read() {
    let signal = |line: &str| match parse_args(args(line)) {
        Ok((Command::Signal(value), _)) => value,
        other => panic!("{line}: expected Signal, got {other:?}"),
    };
    assert_eq!(signal("--signal ldm=1"), "ldm=1");
    assert_eq!(signal("-sl=reload"), "reload");
    // nats-server sends the signal without reading the config file, so a broken one is fine.
    assert_eq!(signal("-c /nonexistent/broker.conf --signal quit"), "quit");
    // Flags are still checked first.
    assert!(error("--signal ldm=1 --bogus").contains("-bogus"));
    // An empty value sends nothing: the server runs.
    assert!(matches!(
        parse_args(args("--signal= -p 4333")),
        Ok((Command::Run(_), _))
    ));
}

#[test]
fn max_payload_may_not_pass_max_pending() {
    let path = config("max_payload: 100MB\n");
    assert_eq!(
        error(&format!("-c {}", path.display())),
        "max_payload (104857600) cannot be higher than max_pending (67108864)"
    );
    let path = config("max_payload: 2048\nmax_pending: 2048\n");
    assert!(parse_args(args(&format!("-c {}", path.display()))).is_ok());
}

#[test]
fn tls_flags_replace_the_files_certificates_but_keep_its_other_tls_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = crate::tls::test_certificate(dir.path());
    let file = config(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", timeout: 5, handshake_first: true, \
         min_version: \"1.3\" }}",
        c.display(),
        k.display()
    ));
    let (c2, k2) = (dir.path().join("c2.pem"), dir.path().join("k2.pem"));
    std::fs::copy(&c, &c2).unwrap();
    std::fs::copy(&k, &k2).unwrap();
    let tls = opts(&format!(
        "-c {} --tlscert {} --tlskey {}",
        file.display(),
        c2.display(),
        k2.display()
    ))
    .tls
    .unwrap();
    assert_eq!(tls.certs[0].cert_file, c2);
    assert_eq!(tls.timeout, Duration::from_secs(5));
    assert_eq!(tls.handshake_first, crate::tls::HandshakeFirst::On);
    assert_eq!(
        tls.min_version,
        crate::tls::TlsVersion::V1_2,
        "reset as nats-server"
    );
    assert!(opts(&format!("-c {} --tls=false", file.display()))
        .tls
        .is_none());
}
