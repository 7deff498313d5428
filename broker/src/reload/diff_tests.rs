use std::path::PathBuf;

use super::*;

/// Options from config-file text, as a reload reads them.
fn conf(text: &str) -> Options {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.conf");
    std::fs::write(&path, text).unwrap();
    let mut opts = Options::default();
    crate::config_file::load_into(&path, &mut opts).unwrap();
    opts
}

fn changes(old: &str, new: &str) -> Changes {
    diff(&conf(old), &mut conf(new)).unwrap()
}

fn refusal(old: &str, new: &str) -> String {
    diff(&conf(old), &mut conf(new)).unwrap_err()
}

#[test]
fn the_same_file_changes_nothing() {
    let text = "port: 4333\nauthorization { users: [{user: a, password: b}] }\n";
    assert_eq!(changes(text, text), Changes::default());
}

#[test]
fn limits_are_reloaded_with_a_line_each() {
    let c = changes(
        "",
        "max_payload: 2048\nmax_control_line: 1024\nping_interval: \"20s\"\nping_max: 3\n\
         write_deadline: \"3s\"\nauthorization { timeout: 0.5 }\n",
    );
    assert_eq!(
        c.lines,
        [
            "ping_interval = 20s",
            "ping_max = 3",
            "authorization timeout = 0.5",
            "max_control_line = 1024",
            "max_payload = 2048",
            "write_deadline = 3s",
        ]
    );
    assert!(!c.auth && !c.logging && !c.max_connections);
    let c = changes("", "max_connections: 10\n");
    assert!(c.max_connections);
    assert_eq!(c.lines, ["max_connections = 10"]);
}

#[test]
fn users_accounts_and_permissions_are_auth_changes() {
    let users = "authorization { users: [{user: a, password: b}] }\n";
    let c = changes(users, "authorization { users: [{user: a, password: c}] }\n");
    assert!(c.auth);
    assert_eq!(c.lines, ["authorization users"]);
    let c = changes("", "authorization { token: s3cret }\n");
    assert_eq!(
        (c.auth, c.lines),
        (true, vec!["authorization token".into()])
    );
    let c = changes(
        users,
        "authorization { users: [{user: a, password: b, permissions: {publish: \"x\"}}] }\n",
    );
    assert_eq!(
        (c.auth, c.lines),
        (true, vec!["authorization users".into()])
    );
    let c = changes("", "accounts { A { users: [{user: a, password: b}] } }\n");
    assert_eq!((c.auth, c.lines), (true, vec!["accounts".into()]));
}

#[test]
fn logging_and_files_are_reloaded() {
    let c = changes(
        "",
        "debug: true\ntrace: true\nlogtime: false\nlog_file: \"/tmp/x.log\"\n",
    );
    assert!(c.logging);
    assert_eq!(
        c.lines,
        [
            "trace = true",
            "debug = true",
            "logtime = false",
            "log_file = /tmp/x.log"
        ]
    );
    let c = changes("", "pid_file: \"/tmp/b.pid\"\nports_file_dir: \"/tmp\"\n");
    assert!(c.pid_file && c.ports_file_dir);
}

#[test]
fn settings_nats_server_cannot_reload_are_refused_in_its_words() {
    let cases = [
        ("server_name: b\n", "ServerName: old=, new=b"),
        ("host: 127.0.0.1\n", "Host: old=0.0.0.0, new=127.0.0.1"),
        ("port: 4333\n", "Port: old=4222, new=4333"),
        ("max_subscriptions: 10\n", "MaxSubs: old=0, new=10"),
        ("http_port: 8222\n", "HTTPPort: old=0, new=8222"),
        ("max_pending: 1000\n", "MaxPending: old=67108864, new=1000"),
        (
            "lame_duck_duration: \"30s\"\n",
            "LameDuckDuration: old=2m0s, new=30s",
        ),
        (
            "lame_duck_grace_period: \"3s\"\n",
            "LameDuckGracePeriod: old=10s, new=3s",
        ),
        (
            "system_account: SYS\naccounts { SYS {} }\n",
            "SystemAccount: old=$SYS, new=SYS",
        ),
        ("jetstream: enabled\n", "JetStream: old=false, new=true"),
    ];
    for (new, want) in cases {
        assert_eq!(
            refusal("", new),
            format!("config reload not supported for {want}"),
            "{new}"
        );
    }
}

#[test]
fn the_first_refused_setting_in_nats_server_order_is_reported() {
    assert_eq!(
        refusal("", "max_pending: 1000\nserver_name: b\n"),
        "config reload not supported for ServerName: old=, new=b"
    );
}

#[test]
fn a_random_port_keeps_the_running_one() {
    let mut old = conf("");
    old.port = 4333;
    let mut new = conf("port: -1\n");
    assert_eq!(diff(&old, &mut new), Ok(Changes::default()));
    assert_eq!(new.port, 4333);
}

#[test]
fn no_auth_user_may_only_go_along_with_its_user() {
    let with = "authorization { users: [{user: a, password: b}, {user: c, password: d}] }\n";
    let old = format!("{with}no_auth_user: a\n");
    assert_eq!(
        refusal(&old, with),
        "config reload not supported for NoAuthUser: old=a, new="
    );
    assert_eq!(
        refusal(&old, &format!("{with}no_auth_user: c\n")),
        "config reload not supported for NoAuthUser: old=a, new=c"
    );
    let c = changes(&old, "authorization { users: [{user: c, password: d}] }\n");
    assert!(c.auth);
}

#[test]
fn jetstream_store_and_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = |name: &str| -> PathBuf { dir.path().join(name) };
    let js = |store_dir: &PathBuf, extra: &str| {
        format!(
            "jetstream {{ store_dir: \"{}\", {extra} }}\n",
            store_dir.display()
        )
    };
    let (a, b) = (store("a"), store("b"));
    assert_eq!(
        refusal(&js(&a, ""), &js(&b, "")),
        "config reload not supported for jetstream storage directory"
    );
    assert_eq!(
        refusal(
            &js(&a, "max_memory_store: 1000"),
            &js(&a, "max_memory_store: 2000")
        ),
        "config reload not supported for jetstream max memory and store"
    );
    assert_eq!(
        refusal(&js(&a, ""), &js(&a, "max_file_store: 2000")),
        "config reload not supported for jetstream dynamic max memory and store"
    );
    assert_eq!(
        changes(&js(&a, ""), &js(&a, "")),
        Changes::default(),
        "an unchanged store is fine"
    );
}

#[test]
fn imports_and_exports_cannot_change_on_reload() {
    let before = "accounts { A { exports: [ {stream: x} ] }\n B {} }\n";
    let after = "accounts { A { exports: [ {stream: x} ] }\n B { imports: [ {stream: {account: A, subject: x}} ] } }\n";
    let refused = refusal(before, after);
    assert!(refused.contains("imports and exports"), "{refused}");
    let users_only =
        "accounts { A { exports: [ {stream: x} ], users: [ {user: u, password: p} ] }\n B {} }\n";
    assert!(
        changes(before, users_only).auth,
        "other account changes still reload"
    );
}
