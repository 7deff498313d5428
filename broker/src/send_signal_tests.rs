use super::*;

fn request(value: &str) -> Request {
    parse(value).unwrap()
}

/// Runs `send` with `running` as the other broker processes; returns the outcome and the
/// signals sent.
fn sent(value: &str, running: &[i32]) -> (Result<(), String>, Vec<(i32, libc::c_int)>) {
    let mut signals = Vec::new();
    let result = send(
        &request(value),
        || Ok(running.to_vec()),
        |pid, signal| {
            signals.push((pid, signal));
            if pid == 404 {
                Err("no such process")
            } else {
                Ok(())
            }
        },
    );
    (result, signals)
}

#[test]
fn every_command_names_its_signal() {
    let words = "ldm stop quit term reopen reload".split(' ');
    let signals = [
        libc::SIGUSR2,
        libc::SIGKILL,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGUSR1,
        libc::SIGHUP,
    ];
    for (word, signal) in words.zip(signals) {
        assert_eq!(sent(&format!("{word}=7"), &[]), (Ok(()), vec![(7, signal)]));
    }
    assert_eq!(signal_of("LDM"), None, "commands are lower case");
}

#[test]
fn the_value_splits_into_a_command_and_a_pid() {
    assert_eq!(
        request("ldm=12"),
        Request {
            command: "ldm".into(),
            pid: "12".into()
        }
    );
    assert_eq!(request("reload").pid, "");
    assert_eq!(request("reload=").pid, "");
    assert_eq!(
        parse("ldm=1=2=3"),
        Err("invalid signal parameters: [2 3]".into())
    );
}

#[test]
fn a_pid_file_is_read_as_written_and_a_missing_one_is_kept_as_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broker.pid");
    std::fs::write(&file, "4242").unwrap();
    assert_eq!(request(&format!("ldm={}", file.display())).pid, "4242");
    std::fs::write(&file, "garbage\n").unwrap();
    let garbage = request(&format!("ldm={}", file.display()));
    assert_eq!(garbage.pid, "garbage\n");
    let missing = dir.path().join("missing.pid");
    let missing = request(&format!("ldm={}", missing.display()));
    assert_eq!(
        missing.pid,
        dir.path().join("missing.pid").to_str().unwrap()
    );
    assert_eq!(
        send(&garbage, || unreachable!(), |_, _| unreachable!()),
        Err("invalid pid: garbage\n".into())
    );
}

#[test]
fn a_pid_that_is_not_a_positive_number_is_refused_before_anything_is_looked_up() {
    for pid in ["abc", "0", "-1", "1.5", "12a"] {
        assert_eq!(
            sent(&format!("ldm={pid}"), &[1, 2]),
            (Err(format!("invalid pid: {pid}")), vec![]),
            "{pid}"
        );
    }
}

#[test]
fn an_unknown_command_is_refused_once_the_process_is_known() {
    assert_eq!(
        sent("bogus=1", &[]),
        (Err("unknown signal \"bogus\"".into()), vec![])
    );
    // Without a pid, the lookup comes first, as nats-server.
    assert_eq!(
        sent("bogus", &[]),
        (Err("no broker processes running".into()), vec![])
    );
}

#[test]
fn without_a_pid_the_one_running_broker_is_signalled() {
    assert_eq!(sent("reload", &[31]), (Ok(()), vec![(31, libc::SIGHUP)]));
    assert_eq!(
        sent("ldm", &[]),
        (Err("no broker processes running".into()), vec![])
    );
    assert_eq!(
        sent("ldm=", &[31, 32]),
        (
            Err("multiple broker processes running:\n31\n32".into()),
            vec![]
        )
    );
}

#[test]
fn a_prefix_ending_in_a_star_signals_every_broker_whose_pid_starts_with_it() {
    assert_eq!(
        sent("term=12*", &[12, 123, 212, 1200]),
        (
            Ok(()),
            vec![
                (12, libc::SIGTERM),
                (123, libc::SIGTERM),
                (1200, libc::SIGTERM)
            ]
        )
    );
    assert_eq!(
        sent("term=*", &[5, 6]),
        (Ok(()), vec![(5, libc::SIGTERM), (6, libc::SIGTERM)])
    );
    assert_eq!(sent("term=9*", &[5]), (Ok(()), vec![]));
    assert_eq!(
        sent("term=9*", &[]),
        (Err("no broker processes running".into()), vec![])
    );
}

#[test]
fn a_pid_not_written_in_its_plain_form_matches_nothing() {
    assert_eq!(sent("ldm=0012", &[]), (Ok(()), vec![]));
    assert_eq!(sent("ldm=+12", &[]), (Ok(()), vec![]));
}

#[test]
fn a_failed_kill_is_reported_per_process() {
    assert_eq!(
        sent("quit=404", &[]),
        (
            Err("\nsignal \"quit\" 404: no such process".into()),
            vec![(404, libc::SIGINT)]
        )
    );
}

#[test]
fn kill_words_errors_as_go_does() {
    // pid_max is at most 2^22, so this process cannot exist.
    assert_eq!(kill(i32::MAX, 0), Err("no such process"));
    assert_eq!(kill(std::process::id() as i32, 0), Ok(()));
}

#[test]
fn the_lookup_finds_processes_by_name_and_never_this_one() {
    // A `sleep` copied under the broker's name stands for a running broker.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join(PROCESS_NAME);
    std::fs::copy("/bin/sleep", &fake).unwrap();
    let mut child = std::process::Command::new(&fake).arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    // The name is set once the child has exec'd; wait for it rather than sleep.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let found = loop {
        let pids = running_brokers().unwrap();
        if pids.contains(&pid) || std::time::Instant::now() > deadline {
            break pids;
        }
        std::thread::yield_now();
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(found.contains(&pid), "{found:?} lacks {pid}");
    assert!(!found.contains(&(std::process::id() as i32)));
}
