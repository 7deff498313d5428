//! A bare-socket NATS client: sends whatever bytes a scenario wants and parses what the server
//! sends back into [`ServerOp`]s, with every read bounded by [`WAIT`].

use std::fmt;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::within;

/// The bound on any one wait for the server.
pub const WAIT: Duration = Duration::from_secs(5);

/// CONNECT options that keep the replies terse: no `+OK`, no pedantic checks.
pub const QUIET: &str = r#"{"verbose":false,"pedantic":false}"#;

/// One operation from the server.
#[derive(Clone, PartialEq, Eq)]
pub enum ServerOp {
    Info(serde_json::Value),
    Msg(Msg),
    Ping,
    Pong,
    Ok,
    Err(String),
}

/// A delivered `MSG` or (with `headers`) `HMSG`.
#[derive(Clone, PartialEq, Eq)]
pub struct Msg {
    pub subject: String,
    pub sid: String,
    pub reply: Option<String>,
    pub headers: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

impl fmt::Debug for ServerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerOp::Info(info) => write!(f, "INFO {info}"),
            ServerOp::Msg(msg) => write!(f, "{msg:?}"),
            ServerOp::Ping => f.write_str("PING"),
            ServerOp::Pong => f.write_str("PONG"),
            ServerOp::Ok => f.write_str("+OK"),
            ServerOp::Err(text) => write!(f, "-ERR {text}"),
        }
    }
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = if self.headers.is_some() {
            "HMSG"
        } else {
            "MSG"
        };
        write!(f, "{op} {} {}", self.subject, self.sid)?;
        if let Some(reply) = &self.reply {
            write!(f, " {reply}")?;
        }
        if let Some(headers) = &self.headers {
            write!(f, " headers={:?}", String::from_utf8_lossy(headers))?;
        }
        write!(f, " payload={:?}", String::from_utf8_lossy(&self.payload))
    }
}

impl ServerOp {
    /// The `-ERR` for this text, quoted as the server sends it: `-ERR 'text'`.
    pub fn err(text: &str) -> Self {
        ServerOp::Err(format!("'{text}'"))
    }

    /// A plain `MSG` without reply subject.
    pub fn msg(subject: &str, sid: &str, payload: &[u8]) -> Self {
        ServerOp::Msg(Msg {
            subject: subject.into(),
            sid: sid.into(),
            reply: None,
            headers: None,
            payload: payload.into(),
        })
    }
}

/// One connection to a server, speaking raw protocol.
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    /// The INFO the server sent on connect.
    pub info: serde_json::Value,
    /// Whether server PINGs are answered (and hidden) while reading; on by default.
    pub answer_pings: bool,
}

impl RawClient {
    /// Opens a connection and reads nothing (the INFO is the first operation to read).
    pub async fn open(port: u16) -> anyhow::Result<Self> {
        let stream = within(
            WAIT,
            "the TCP connection",
            TcpStream::connect(("127.0.0.1", port)),
        )
        .await?
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        Ok(RawClient {
            stream,
            buf: BytesMut::new(),
            info: serde_json::Value::Null,
            answer_pings: true,
        })
    }

    /// Opens a connection and reads the server's INFO; sends nothing.
    pub async fn connect(port: u16) -> anyhow::Result<Self> {
        let mut client = Self::open(port).await?;
        match client
            .expect()
            .await
            .context("reading the INFO sent on connect")?
        {
            ServerOp::Info(info) => client.info = info,
            other => bail!("expected INFO on connect, got {other:?}"),
        }
        Ok(client)
    }

    /// Connects, sends `CONNECT <options>` and a PING, and expects only a PONG back.
    pub async fn connect_with(port: u16, options: &str) -> anyhow::Result<Self> {
        let mut client = Self::connect(port).await?;
        client.send(format!("CONNECT {options}\r\n")).await?;
        let before = client
            .ping_until_pong()
            .await
            .context("CONNECT handshake")?;
        if !before.is_empty() && before != [ServerOp::Ok] {
            bail!("CONNECT {options} was answered with {before:?}");
        }
        Ok(client)
    }

    /// [`connect_with`](Self::connect_with) the [`QUIET`] options.
    pub async fn quiet(port: u16) -> anyhow::Result<Self> {
        Self::connect_with(port, QUIET).await
    }

    /// The local (client-side) port of this connection, as `/connz` reports it.
    pub fn local_port(&self) -> anyhow::Result<u16> {
        Ok(self
            .stream
            .local_addr()
            .context("reading the local address")?
            .port())
    }

    /// Writes these bytes in one write.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) -> anyhow::Result<()> {
        let write = self.stream.write_all(bytes.as_ref());
        within(WAIT, "a write to the server", write)
            .await?
            .context("writing to the server")
    }

    /// The next operation, or `None` when the server closed the connection.
    pub async fn next_op(&mut self) -> anyhow::Result<Option<ServerOp>> {
        loop {
            if let Some((op, used)) = parse(&self.buf)? {
                self.buf.advance(used);
                if op == ServerOp::Ping && self.answer_pings {
                    self.send("PONG\r\n").await?;
                    continue;
                }
                return Ok(Some(op));
            }
            self.buf.reserve(64 * 1024);
            let read = within(
                WAIT,
                "data from the server",
                self.stream.read_buf(&mut self.buf),
            );
            match read.await? {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
                Err(err) => return Err(err).context("reading from the server"),
            }
        }
    }

    /// The next operation; the connection closing is an error.
    pub async fn expect(&mut self) -> anyhow::Result<ServerOp> {
        self.next_op()
            .await?
            .context("the server closed the connection unexpectedly")
    }

    /// Sends PING and returns everything the server sent before the PONG: a barrier proving
    /// that the server processed all earlier commands.
    pub async fn ping_until_pong(&mut self) -> anyhow::Result<Vec<ServerOp>> {
        self.send("PING\r\n").await?;
        self.until_pong().await
    }

    /// Returns everything the server sends before the next PONG.
    pub async fn until_pong(&mut self) -> anyhow::Result<Vec<ServerOp>> {
        let mut before = Vec::new();
        loop {
            match self.next_op().await {
                Ok(Some(ServerOp::Pong)) => return Ok(before),
                Ok(Some(op)) => before.push(op),
                Ok(None) => bail!("connection closed before PONG; received {before:?}"),
                Err(err) => return Err(err.context(format!("no PONG; received {before:?}"))),
            }
        }
    }

    /// Reads until the server closes the connection and returns what it sent meanwhile.
    pub async fn until_closed(&mut self) -> anyhow::Result<Vec<ServerOp>> {
        let mut before = Vec::new();
        loop {
            match self.next_op().await {
                Ok(Some(op)) => before.push(op),
                Ok(None) => return Ok(before),
                Err(err) => {
                    return Err(err.context(format!("connection stayed open; received {before:?}")))
                }
            }
        }
    }

    /// Expects exactly `-ERR '<text>'` and then the connection closing.
    pub async fn expect_err_and_close(&mut self, text: &str) -> anyhow::Result<()> {
        let ops = self.until_closed().await?;
        if ops != [ServerOp::err(text)] {
            bail!("expected -ERR '{text}' then close, got {ops:?}");
        }
        Ok(())
    }

    /// Expects the server to close the connection, sending nothing but `-ERR`s first (for
    /// malformed input, nats-server closes with or without one).
    pub async fn expect_close_with_at_most_an_error(&mut self) -> anyhow::Result<()> {
        let ops = self.until_closed().await?;
        let only_errors = ops.iter().all(|op| matches!(op, ServerOp::Err(_)));
        if !only_errors {
            bail!("expected at most an -ERR before the close, got {ops:?}");
        }
        Ok(())
    }

    /// Asserts the connection still works: a PING gets a PONG with nothing before it.
    pub async fn expect_still_open(&mut self) -> anyhow::Result<()> {
        let before = self
            .ping_until_pong()
            .await
            .context("connection should stay open")?;
        if !before.is_empty() {
            bail!("expected only PONG, got {before:?} first");
        }
        Ok(())
    }
}

/// Parses one operation from the front of `buf`: `None` when more bytes are needed.
fn parse(buf: &[u8]) -> anyhow::Result<Option<(ServerOp, usize)>> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = std::str::from_utf8(&buf[..end]).context("control line is not UTF-8")?;
    let after = end + 2;
    let (op, rest) = line.split_once([' ', '\t']).unwrap_or((line, ""));
    let simple = |op| Ok(Some((op, after)));
    match op {
        "PING" => simple(ServerOp::Ping),
        "PONG" => simple(ServerOp::Pong),
        "+OK" => simple(ServerOp::Ok),
        "-ERR" => simple(ServerOp::Err(rest.trim().to_string())),
        "INFO" => {
            let info = serde_json::from_str(rest.trim())
                .with_context(|| format!("INFO is not JSON: {rest}"))?;
            simple(ServerOp::Info(info))
        }
        "MSG" | "HMSG" => parse_msg(buf, op == "HMSG", rest, after),
        _ => bail!("unexpected line from the server: {line:?}"),
    }
}

// MSG <subject> <sid> [reply-to] <#bytes>
// HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>
fn parse_msg(
    buf: &[u8],
    has_headers: bool,
    args: &str,
    start: usize,
) -> anyhow::Result<Option<(ServerOp, usize)>> {
    let mut args: Vec<&str> = args.split_ascii_whitespace().collect();
    let sizes = if has_headers { 2 } else { 1 };
    if args.len() != 2 + sizes && args.len() != 3 + sizes {
        bail!("malformed MSG arguments: {args:?}");
    }
    let numbers: Vec<usize> = args
        .split_off(args.len() - sizes)
        .iter()
        .map(|n| n.parse().with_context(|| format!("bad MSG size {n:?}")))
        .collect::<anyhow::Result<_>>()?;
    let total = *numbers.last().unwrap_or(&0);
    let header_len = if has_headers { numbers[0] } else { 0 };
    if buf.len() < start + total + 2 {
        return Ok(None);
    }
    if &buf[start + total..start + total + 2] != b"\r\n" {
        bail!("MSG payload of {total} bytes is not followed by CRLF");
    }
    let body = &buf[start..start + total];
    let msg = Msg {
        subject: args[0].to_string(),
        sid: args[1].to_string(),
        reply: args.get(2).map(|r| r.to_string()),
        headers: has_headers.then(|| body[..header_len].to_vec()),
        payload: body[header_len..].to_vec(),
    };
    Ok(Some((ServerOp::Msg(msg), start + total + 2)))
}
