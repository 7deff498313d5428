//! `healthcheck http://127.0.0.1:8080/healthz`: the probe every image runs for Docker's
//! `HEALTHCHECK`, which needs no shell, curl or wget in the image.
//!
//! It sends one HTTP/1.0 `GET` and exits 0 when the answer's status is 200, 1 otherwise (with
//! the reason on stderr), and 2 on a usage error. The whole check is bounded by [`TIMEOUT`], so
//! a server that accepts and never answers still fails the check in time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long one check may take, connect to last byte.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The most of the response read: the status line is all that matters.
const MAX_RESPONSE: usize = 4096;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url] = args.as_slice() else {
        eprintln!("usage: healthcheck http://HOST:PORT/PATH (exit 0 when the answer is 200)");
        return ExitCode::from(2);
    };
    let target = match Target::parse(url) {
        Ok(target) => target,
        Err(err) => {
            eprintln!("healthcheck: {err}");
            return ExitCode::from(2);
        }
    };
    match check(&target) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("healthcheck: {url}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Where to send the request.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// `host:port`, as written.
    authority: String,
    /// The path and query, `/` when the URL has none.
    path: String,
}

impl Target {
    /// Parses `http://host:port/path`; the port defaults to 80.
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            authority,
            path: path.to_owned(),
        })
    }

    fn addrs(&self) -> Result<Vec<SocketAddr>, String> {
        self.authority
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|err| format!("resolving {}: {err}", self.authority))
    }
}

/// One GET; `Ok` only for status 200.
fn check(target: &Target) -> Result<(), String> {
    let deadline = Instant::now() + TIMEOUT;
    let mut last = String::from("no address");
    let mut stream = None;
    for addr in target.addrs()? {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(err) => last = format!("connecting to {addr}: {err}"),
        }
    }
    let mut stream = stream.ok_or(last)?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: healthcheck\r\n\r\n",
        target.path, target.authority
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|err| format!("sending the request: {err}"))?;
    let mut response = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    while response.len() < MAX_RESPONSE && !response.contains(&b'\n') {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(err) => return Err(format!("reading the answer: {err}")),
        }
    }
    match status(&response) {
        Some(200) => Ok(()),
        Some(code) => Err(format!("status {code}")),
        None => Err("no HTTP status line in the answer".to_owned()),
    }
}

/// The status code of an HTTP/1.x status line.
fn status(response: &[u8]) -> Option<u16> {
    let line = response.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_urls_with_and_without_port_and_path() {
        assert_eq!(
            Target::parse("http://127.0.0.1:8222/healthz").unwrap(),
            Target {
                authority: "127.0.0.1:8222".into(),
                path: "/healthz".into()
            }
        );
        assert_eq!(
            Target::parse("http://localhost").unwrap(),
            Target {
                authority: "localhost:80".into(),
                path: "/".into()
            }
        );
        assert_eq!(
            Target::parse("http://[::1]:81/x?y=1").unwrap().authority,
            "[::1]:81"
        );
        assert!(Target::parse("https://x/").is_err());
        assert!(Target::parse("http:///healthz").is_err());
    }

    /// Serves one connection with `answer` (or nothing, holding it open) and returns the URL.
    fn serve_once(answer: Option<&'static [u8]>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            match answer {
                Some(bytes) => {
                    let _ = conn.write_all(bytes);
                }
                None => std::thread::park_timeout(TIMEOUT * 2),
            }
        });
        format!("http://127.0.0.1:{port}/healthz")
    }

    #[test]
    fn a_200_passes_and_anything_else_fails_with_the_status() {
        let ok = serve_once(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
        assert_eq!(check(&Target::parse(&ok).unwrap()), Ok(()));
        let starting = serve_once(Some(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"));
        assert_eq!(
            check(&Target::parse(&starting).unwrap()),
            Err("status 503".to_owned())
        );
        let garbage = serve_once(Some(b"SSH-2.0-OpenSSH\r\n"));
        assert!(check(&Target::parse(&garbage).unwrap())
            .unwrap_err()
            .contains("no HTTP status"));
    }

    #[test]
    fn a_closed_port_and_a_silent_server_fail_within_the_timeout() {
        let closed = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/healthz", listener.local_addr().unwrap())
        };
        assert!(check(&Target::parse(&closed).unwrap())
            .unwrap_err()
            .contains("connecting"));
        let silent = serve_once(None);
        let started = Instant::now();
        assert!(check(&Target::parse(&silent).unwrap())
            .unwrap_err()
            .contains("reading"));
        assert!(started.elapsed() < TIMEOUT * 2);
    }
}
