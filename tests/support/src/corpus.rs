//! Fuzz corpora run as tests: the checks the fuzz targets make ([`check_http`] for a service's
//! HTTP request decoding, [`check_event_payload`] for event payloads), reading a target's
//! checked-in corpus ([`read`]), a seeded mutator that grows it ([`grow`]), and a service's
//! database without a broker ([`offline_database`]). See `docs/fuzzing.md`.
//!
//! An HTTP case file is a request in a small text format:
//!
//! ```text
//! POST /api/accounts?any=query          method, one space, path with its query
//! content-type: application/json        headers, `name: value`, up to an empty line
//! idempotency-key: k1
//!                                       the empty line (a file may end before it)
//! {"owner": "alice"}                    the body: every byte after the empty line, as it is
//! ```
//!
//! Lines end with `\n` (`\r\n` is read too). Variables the harness defines, such as `{account}`
//! for an account it created, are replaced in the path, the headers and the body. Bytes that do
//! not make a request (no method, a path that is not a URI, a header name with a space) are
//! what an HTTP server refuses before any route sees them: such a case is skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Uri};
use axum::Router;
use common_events::{
    AccountOpened, Envelope, Event, Publisher, TransactionApplied, TransactionCreated,
    TransactionRejected,
};
use service_kit::db::Db;
use service_kit::foundation::Migrations;
use service_kit::outbox::{Relay, RelayOptions};
use tower::ServiceExt;

/// A case: its name (the file's, or the seeds' of a mutant) and its bytes.
pub type Case = (String, Vec<u8>);

/// The files of `dir`, sorted by name.
pub fn read(dir: &Path) -> anyhow::Result<Vec<Case>> {
    use anyhow::Context;
    let mut cases = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_file() {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let bytes = std::fs::read(&path).with_context(|| format!("reading {name}"))?;
            cases.push((name.into_owned(), bytes));
        }
    }
    cases.sort();
    Ok(cases)
}

/// The corpus directory of a fuzz target: `<fuzz crate>/corpus/<target>`.
pub fn dir(fuzz_crate: &Path, target: &str) -> PathBuf {
    fuzz_crate.join("corpus").join(target)
}

/// The seeds followed by `count` mutants of them, made by a [`Mutator`] seeded with `seed`: the
/// same seeds, count and seed give the same cases.
pub fn grow(seeds: &[Case], count: usize, seed: u64) -> Vec<Case> {
    let mut mutator = Mutator::new(seed);
    let mut cases = seeds.to_vec();
    if seeds.is_empty() {
        return cases;
    }
    for _ in 0..count {
        let (name, input) = &seeds[mutator.below(seeds.len())];
        let (other_name, other) = &seeds[mutator.below(seeds.len())];
        let (how, bytes) = mutator.mutate(input, other);
        cases.push((format!("{name} ({how} {other_name})"), bytes));
    }
    cases
}

/// Byte strings a mutation inserts: what breaks parsers and databases.
const INTERESTING: &[&[u8]] = &[
    b"\\u0000",
    b"\x00",
    b"\xe2\x80\xae",
    b"\\u202e",
    b"\xff\xfe",
    b"\xe2\x82",
    b"-1",
    b"0",
    b"9223372036854775808",
    b"1e400",
    b"null",
    b"[[[[[[[[[[[[[[[[",
    b"{\"a\":",
    b"\"",
    b"\\",
    b"%00",
    b"\r\n",
    b"\n\n",
];

/// A small deterministic mutator (xorshift64*): bit flips, byte sets, inserts of
/// [`INTERESTING`] strings, deletions, duplications, truncations and splices.
pub struct Mutator(u64);

impl Mutator {
    /// A mutator whose choices follow from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (which is not 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// One mutation of `input` (`other` is the far side of a splice), and its name.
    pub fn mutate(&mut self, input: &[u8], other: &[u8]) -> (&'static str, Vec<u8>) {
        let mut out = input.to_vec();
        let at = self.below(out.len() + 1);
        let how = match self.below(7) {
            0 if !out.is_empty() => {
                let at = at.min(out.len() - 1);
                out[at] ^= 1 << self.below(8);
                "bit flip"
            }
            1 if !out.is_empty() => {
                let at = at.min(out.len() - 1);
                out[at] = [0, 0x7f, 0x80, 0xff, b'"', b'{', b'\\', b' '][self.below(8)];
                "byte set"
            }
            2 => {
                let text = INTERESTING[self.below(INTERESTING.len())];
                out.splice(at..at, text.iter().copied());
                "insert"
            }
            3 => {
                let end = (at + 1 + self.below(16)).min(out.len());
                out.drain(at.min(end)..end);
                "delete"
            }
            4 => {
                let end = (at + 1 + self.below(64)).min(out.len());
                let piece = out[at.min(end)..end].to_vec();
                out.splice(at..at, piece.into_iter().cycle().take(64 * self.below(4)));
                "duplicate"
            }
            5 => {
                out.truncate(at);
                "truncate"
            }
            _ => {
                let from = self.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
                "splice"
            }
        };
        (how, out)
    }
}

/// The request an HTTP case file describes (see the module documentation), with `vars`
/// replaced; `None` when the bytes make no request.
pub fn http_request(bytes: &[u8], vars: &[(&str, String)]) -> Option<Request<Body>> {
    let (head, body) = split_head(bytes);
    let head = replace(head, vars);
    let mut lines = head
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let first = lines.next()?;
    let space = first.iter().position(|b| *b == b' ')?;
    let mut request = Request::builder()
        .method(Method::from_bytes(&first[..space]).ok()?)
        .uri(Uri::try_from(&first[space + 1..]).ok()?);
    for line in lines.filter(|line| !line.is_empty()) {
        let colon = line.iter().position(|b| *b == b':')?;
        let value = &line[colon + 1..];
        let value = &value[value.iter().take_while(|b| **b == b' ').count()..];
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        request = request.header(name, HeaderValue::from_bytes(value).ok()?);
    }
    request.body(Body::from(replace(body, vars))).ok()
}

/// The head (request line and headers) and the body of a case.
fn split_head(bytes: &[u8]) -> (&[u8], &[u8]) {
    for separator in [&b"\r\n\r\n"[..], b"\n\n"] {
        if let Some(at) = bytes.windows(separator.len()).position(|w| w == separator) {
            return (&bytes[..at], &bytes[at + separator.len()..]);
        }
    }
    (bytes, &[])
}

fn replace(bytes: &[u8], vars: &[(&str, String)]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (name, value) in vars {
        let name = name.as_bytes();
        let mut at = 0;
        while let Some(found) = out[at..].windows(name.len()).position(|w| w == name) {
            let start = at + found;
            out.splice(start..start + name.len(), value.bytes());
            at = start + value.len();
        }
    }
    out
}

/// What a router answered to a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answered {
    /// The bytes make no request; an HTTP server refuses them before routing.
    NoRequest,
    /// The router answered with this status.
    Status(u16),
}

/// Sends the request of HTTP case `bytes` to `router` and checks the answer: no panic, no
/// `5xx`, and every error (`4xx`) has the JSON error body `{"error", "message"}`. The error
/// says what was wrong.
pub async fn check_http(
    router: &Router,
    bytes: &[u8],
    vars: &[(&str, String)],
) -> Result<Answered, String> {
    let Some(request) = http_request(bytes, vars) else {
        return Ok(Answered::NoRequest);
    };
    let call = tokio::spawn(router.clone().oneshot(request));
    let response = match call.await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(err) => return Err(format!("the router panicked: {err}")),
    };
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|err| format!("{status}: reading the body: {err}"))?;
    let text = String::from_utf8_lossy(&body);
    if status.is_server_error() {
        return Err(format!("{status}: {text}"));
    }
    if status.is_client_error() {
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let field = |name: &str| json[name].as_str().is_some_and(|s| !s.is_empty());
        if !(field("error") && field("message")) {
            return Err(format!("{status} without the JSON error body: {text:?}"));
        }
    }
    Ok(Answered::Status(status.as_u16()))
}

/// Sends every seed and `mutants` mutants of them (made with `seed`, see [`grow`]) through
/// [`check_http`], and panics naming each case that failed, a seed that makes no request, or
/// too few mutants that do. Returns how many answers each status got.
pub async fn check_http_corpus(
    router: &Router,
    vars: &[(&str, String)],
    seeds: &[Case],
    mutants: usize,
    seed: u64,
) -> BTreeMap<u16, usize> {
    let mut failures = Vec::new();
    let mut statuses = BTreeMap::<u16, usize>::new();
    for (i, (name, bytes)) in grow(seeds, mutants, seed).iter().enumerate() {
        match check_http(router, bytes, vars).await {
            Ok(Answered::Status(status)) => *statuses.entry(status).or_default() += 1,
            Ok(Answered::NoRequest) if i < seeds.len() => {
                failures.push(format!("{name}: a seed that makes no request"))
            }
            Ok(Answered::NoRequest) => {}
            Err(problem) => failures.push(format!("{name}: {problem}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let answered: usize = statuses.values().sum();
    assert!(
        answered > mutants / 2,
        "only {answered} cases made requests"
    );
    statuses
}

/// Feeds `payload` to the decoding every listener does (`Envelope::<E>::decode`, for each event
/// type): it decodes, and then encodes and decodes again to the same envelope, or it is an
/// error, which the runner treats as poison (terminated, `UndecodableMessage`). Returns how
/// many types it decoded as; the error says what broke.
pub fn check_event_payload(payload: &[u8]) -> Result<usize, String> {
    let decoded = [
        round_trip::<AccountOpened>(payload)?,
        round_trip::<TransactionCreated>(payload)?,
        round_trip::<TransactionApplied>(payload)?,
        round_trip::<TransactionRejected>(payload)?,
    ];
    Ok(decoded.into_iter().filter(|ok| *ok).count())
}

fn round_trip<E: Event + PartialEq + std::fmt::Debug>(payload: &[u8]) -> Result<bool, String> {
    let Ok(event) = Envelope::<E>::decode(payload) else {
        return Ok(false);
    };
    let again = Envelope::<E>::decode(&event.encode(None).payload)
        .map_err(|err| format!("a decoded {} does not decode once encoded: {err}", E::TYPE))?;
    if again != event {
        return Err(format!(
            "{} changed through encode and decode: {event:?} became {again:?}",
            E::TYPE
        ));
    }
    Ok(true)
}

/// A service's database on a new SQLite file in `dir`, migrated, and an outbox relay that is
/// never run (its broker client points at a closed port): enough to build the service's API
/// router without a broker.
pub async fn offline_database(
    dir: &Path,
    service: &str,
    migrations: Migrations,
) -> anyhow::Result<(Db, Relay)> {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.join(format!("{service}.db")).display()
    );
    let db = Db::connect(&url, 4).await?;
    db.migrate(migrations.sqlite, migrations.postgres).await?;
    let port = crate::unused_port()?;
    let nats = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(format!("127.0.0.1:{port}"))
        .await?;
    let publisher = Publisher::new(async_nats::jetstream::new(nats));
    let relay = Relay::new(db.clone(), publisher, RelayOptions::default());
    Ok((db, relay))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_file_makes_its_request_with_variables_replaced() {
        let bytes = b"POST /api/x/{id}?a=1\nContent-Type: application/json\nX-Empty:\n\n{\"id\": \"{id}\"}\n";
        let request = http_request(bytes, &[("{id}", "42".into())]).unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(request.uri(), "/api/x/42?a=1");
        assert_eq!(request.headers()["content-type"], "application/json");
        assert_eq!(request.headers()["x-empty"], "");
        assert!(http_request(b"GET /ok", &[]).is_some());
        let obs_text = http_request(b"GET /\nidempotency-key: \xc3\xa9\tx\n", &[]).unwrap();
        assert_eq!(
            obs_text.headers()["idempotency-key"].as_bytes(),
            b"\xc3\xa9\tx"
        );
        for no_request in [
            &b""[..],
            b"GET",
            b"GET /a b",
            b"GET /\nbad header\n\n",
            b"G\xffT /",
        ] {
            assert!(http_request(no_request, &[]).is_none(), "{no_request:?}");
        }
    }

    #[test]
    fn growing_is_deterministic_and_keeps_the_seeds_first() {
        let seeds = vec![
            ("a".to_owned(), b"{\"x\": 1}".to_vec()),
            ("b".to_owned(), vec![]),
        ];
        let grown = grow(&seeds, 200, 7);
        assert_eq!(grown.len(), 202);
        assert_eq!(&grown[..2], &seeds[..]);
        assert_eq!(grown, grow(&seeds, 200, 7));
        assert_ne!(grown, grow(&seeds, 200, 8));
    }
}
