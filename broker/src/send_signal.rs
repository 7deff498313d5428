//! `broker --signal <command>[=<pid>]`: sends a command's signal to a running broker, with
//! nats-server's rules and messages.
//!
//! The part after `=` names the process: a pid, the path of a pid file (whose contents are then
//! read as the pid, exactly as written), or a pid prefix ending in `*` (every broker process
//! whose pid starts with it). Without it, or with nothing after it, the one broker process
//! running on the machine is signalled; several are an error listing them. Processes are found
//! by name: the broker looks for processes named `broker`, as nats-server looks for processes
//! named `nats-server`, and never signals itself.
//!
//! Each error is one message for the caller to print after the program name (exit status 1),
//! in nats-server's words; the order of the checks is nats-server's too, so the same mistake
//! gives the same message (an unknown command is only noticed once a process was found).

use std::path::Path;

/// The name of the processes `--signal` looks for when no pid is given.
pub const PROCESS_NAME: &str = "broker";

/// Where the kernel lists processes, each with its name in `<pid>/comm`.
const PROC_DIR: &str = "/proc";

/// The commands and their signals, in nats-server's usage order.
const COMMANDS: [(&str, libc::c_int); 6] = [
    ("ldm", libc::SIGUSR2),
    ("stop", libc::SIGKILL),
    ("quit", libc::SIGINT),
    ("term", libc::SIGTERM),
    ("reopen", libc::SIGUSR1),
    ("reload", libc::SIGHUP),
];

/// What `--signal` asks for, before any process is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command as written; checked only once the processes are known, as nats-server.
    pub command: String,
    /// The pid expression: what followed `=`, or the contents of the file it names. Empty
    /// when nothing names the process.
    pub pid: String,
}

/// Splits `ldm=<pid or pid file>`; the pid file is read here, and a path that cannot be read
/// is kept as written (it then fails as a pid).
pub fn parse(value: &str) -> Result<Request, String> {
    let parts: Vec<&str> = value.split('=').collect();
    let pid = match parts.as_slice() {
        [_] => String::new(),
        [_, pid] => std::fs::read_to_string(Path::new(pid)).unwrap_or_else(|_| pid.to_string()),
        [_, _, rest @ ..] => {
            return Err(format!("invalid signal parameters: [{}]", rest.join(" ")));
        }
        [] => unreachable!("split always yields one part"),
    };
    Ok(Request {
        command: parts[0].to_string(),
        pid,
    })
}

/// The signal a command sends.
pub fn signal_of(command: &str) -> Option<libc::c_int> {
    COMMANDS
        .iter()
        .find(|(name, _)| *name == command)
        .map(|&(_, signal)| signal)
}

/// Sends the request's signal. `running` lists the pids of the other broker processes (asked
/// only when the request names no single pid); `kill` sends one signal.
pub fn send(
    request: &Request,
    running: impl FnOnce() -> Result<Vec<i32>, String>,
    mut kill: impl FnMut(i32, libc::c_int) -> Result<(), &'static str>,
) -> Result<(), String> {
    let (prefix, glob) = match request.pid.strip_suffix('*') {
        Some(prefix) => (prefix, true),
        None => (request.pid.as_str(), false),
    };
    let mut pids = Vec::new();
    if !prefix.is_empty() {
        // Unlike nats-server, 0 and negative numbers are refused: kill(2) would read them as
        // process groups, and -1 as every process the user may signal.
        match prefix.parse::<i32>() {
            Ok(pid) if pid > 0 => pids.push(pid),
            _ => return Err(format!("invalid pid: {prefix}")),
        }
    }
    if prefix.is_empty() || glob {
        pids = running()?;
    }
    if pids.len() > 1 && !glob {
        let list: String = pids.iter().map(|p| format!("\n{p}")).collect();
        return Err(format!("multiple {PROCESS_NAME} processes running:{list}"));
    }
    if pids.is_empty() {
        return Err(format!("no {PROCESS_NAME} processes running"));
    }
    let signal = signal_of(&request.command)
        .ok_or_else(|| format!("unknown signal {:?}", request.command))?;
    let mut failures = String::new();
    for pid in pids {
        let written = pid.to_string();
        // As nats-server: a pid written otherwise than its plain decimal form (`0012`) matches
        // nothing, and a prefix only the pids that start with it.
        if !prefix.is_empty() && written != prefix && !(glob && written.starts_with(prefix)) {
            continue;
        }
        if let Err(reason) = kill(pid, signal) {
            failures.push_str(&format!("\nsignal {:?} {pid}: {reason}", request.command));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

/// Sends `signal` to `pid`; the error is the errno's text as Go words it.
pub fn kill(pid: i32, signal: libc::c_int) -> Result<(), &'static str> {
    // SAFETY: kill(2) has no memory effects; a bad pid or signal is reported through errno.
    if unsafe { libc::kill(pid, signal) } == 0 {
        return Ok(());
    }
    Err(match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ESRCH) => "no such process",
        Some(libc::EPERM) => "operation not permitted",
        Some(libc::EINVAL) => "invalid argument",
        _ => "unknown error",
    })
}

/// The pids of the running processes named [`PROCESS_NAME`], this one excepted.
pub fn running_brokers() -> Result<Vec<i32>, String> {
    let unresolved = || "unable to resolve pid, try providing one".to_string();
    let entries = std::fs::read_dir(PROC_DIR).map_err(|_| unresolved())?;
    let me = std::process::id() as i32;
    let mut pids: Vec<i32> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (pid != me && name.trim_end_matches('\n') == PROCESS_NAME).then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

#[cfg(test)]
#[path = "send_signal_tests.rs"]
mod tests;
