//! A raw NATS client over a blocking TCP socket: just enough protocol to publish pipelined
//! batches and count deliveries without a client library's overhead, so the server is what is
//! measured.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

#[path = "raw_msgs.rs"]
mod msgs;
pub(crate) use msgs::{Msg, Stall};

/// How long a read may see no bytes before the run is declared stuck.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Size of the read buffer.
const READ_BUFFER: usize = 256 * 1024;

/// The CONNECT the raw clients send: no `+OK`s, no echo of our own publishes; headers on, so
/// that pull requests can end with a status message.
const CONNECT: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"raw\",\"version\":\"0\",\
\"protocol\":1,\"echo\":false,\"headers\":true,\"name\":\"broker-bench\"}\r\nPING\r\n";

/// `host:port` from `nats://host:port`, `host:port` or `host` (port 4222).
pub(crate) fn socket_addr(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let rest = rest.trim_end_matches('/');
    if rest
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        rest.to_string()
    } else {
        format!("{rest}:4222")
    }
}

/// The socket under a connection: plain, or TLS once INFO asked for it.
enum Socket {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Socket {
    fn tcp(&self) -> &TcpStream {
        match self {
            Socket::Plain(s) => s,
            Socket::Tls(s) => &s.sock,
        }
    }

    /// Upgrades to TLS with `host` as the server's name; the handshake runs with the first
    /// write.
    fn upgrade(self, host: &str) -> anyhow::Result<Socket> {
        let Socket::Plain(tcp) = self else {
            return Ok(self);
        };
        let name = rustls_pki_types::ServerName::try_from(host.to_owned())
            .with_context(|| format!("{host} is not a valid TLS server name"))?;
        let conn = rustls::ClientConnection::new(crate::tls::client_config()?, name)
            .context("starting TLS")?;
        Ok(Socket::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Socket::Plain(s) => s.read(buf),
            Socket::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Socket::Plain(s) => s.write(buf),
            Socket::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Socket::Plain(s) => s.flush(),
            Socket::Tls(s) => s.flush(),
        }
    }
}

/// One connected, handshaken client connection.
pub(crate) struct RawConn {
    stream: Socket,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The server's INFO line, without `INFO ` and the line end.
    info: String,
    /// How long reads may see nothing before giving up.
    stall_timeout: Duration,
}

impl RawConn {
    /// Connects to `url`, reads INFO, sends CONNECT and waits for the PONG of a PING.
    pub(crate) fn connect(url: &str) -> anyhow::Result<RawConn> {
        let addr = socket_addr(url);
        let stream = TcpStream::connect(&addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .context("setting the read timeout")?;
        let mut conn = RawConn {
            stream: Socket::Plain(stream),
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            info: String::new(),
            stall_timeout: STALL_TIMEOUT,
        };
        let info = conn.read_line().context("reading INFO")?;
        let Some(info) = info.strip_prefix("INFO ") else {
            bail!("expected INFO from {addr}, got {info:?}");
        };
        conn.info = info.to_string();
        if info.contains("\"tls_required\":true") {
            let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
            let spare = Socket::Plain(conn.stream.tcp().try_clone()?);
            let plain = std::mem::replace(&mut conn.stream, spare);
            conn.stream = plain.upgrade(host)?;
        }
        conn.write_all(CONNECT)?;
        conn.wait_for_pong()?;
        Ok(conn)
    }

    /// Gives up after `timeout` without bytes instead of [`STALL_TIMEOUT`].
    #[cfg(test)]
    pub(crate) fn set_stall_timeout(&mut self, timeout: Duration) {
        self.stall_timeout = timeout;
    }

    /// Another handle on the socket, so a different thread can shut it down.
    pub(crate) fn try_clone_stream(&self) -> anyhow::Result<TcpStream> {
        self.stream
            .tcp()
            .try_clone()
            .context("cloning the socket handle")
    }

    /// The server's INFO as JSON text.
    pub(crate) fn info(&self) -> &str {
        &self.info
    }

    /// Writes all of `bytes`.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .context("writing to the server")
    }

    /// Sends PING and waits for PONG: the server has then processed everything sent before.
    pub(crate) fn ping_pong(&mut self) -> anyhow::Result<()> {
        self.write_all(b"PING\r\n")?;
        self.wait_for_pong()
    }

    fn wait_for_pong(&mut self) -> anyhow::Result<()> {
        loop {
            let line = self.read_line()?;
            match line.as_str() {
                "PONG" => return Ok(()),
                "PING" => self.write_all(b"PONG\r\n")?,
                "+OK" => {}
                l if l.starts_with("INFO ") => {}
                l => bail!("server said {l:?} while we waited for PONG"),
            }
        }
    }

    /// Reads one protocol line (without CRLF).
    fn read_line(&mut self) -> anyhow::Result<String> {
        let mut last_progress = Instant::now();
        loop {
            let avail = &self.buf[self.start..self.end];
            if let Some(i) = memchr::memmem::find(avail, b"\r\n") {
                let line = String::from_utf8_lossy(&avail[..i]).into_owned();
                self.start += i + 2;
                return Ok(line);
            }
            if self.fill()? > 0 {
                last_progress = Instant::now();
            } else if last_progress.elapsed() > self.stall_timeout {
                bail!(
                    "server sent no complete line within {:?}",
                    self.stall_timeout
                );
            }
        }
    }

    /// Reads more bytes into the buffer, compacting it first; returns how many (0 on timeout).
    fn fill(&mut self) -> anyhow::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A frame larger than the buffer: make room for it.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        match self.stream.read(&mut self.buf[self.end..]) {
            Ok(0) => bail!("server closed the connection"),
            Ok(n) => {
                self.end += n;
                Ok(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(0),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e).context("reading from the server"),
        }
    }

    /// Counts deliveries shaped like `frame` (header + payload + CRLF) until `done(count)` says
    /// stop; answers PINGs; fails on `-ERR`, any other frame, or no progress for
    /// [`STALL_TIMEOUT`]. Returns the count and the time of the last delivery.
    pub(crate) fn count_deliveries(
        &mut self,
        frame: &DeliveryFrame,
        mut done: impl FnMut(u64) -> bool,
    ) -> anyhow::Result<(u64, Instant)> {
        let mut count = 0u64;
        let mut last = Instant::now();
        while !done(count) {
            let before = count;
            self.take_frames(frame, &mut count)?;
            if count > before {
                last = Instant::now();
                continue;
            }
            if self.fill()? == 0 && last.elapsed() > self.stall_timeout {
                bail!(
                    "received {count} messages, then nothing for {:?}",
                    self.stall_timeout
                );
            }
        }
        Ok((count, last))
    }

    /// Consumes every complete frame in the buffer.
    fn take_frames(&mut self, frame: &DeliveryFrame, count: &mut u64) -> anyhow::Result<()> {
        let (header, len) = (frame.header.as_slice(), frame.len);
        loop {
            let avail = &self.buf[self.start..self.end];
            if avail.len() >= len && avail.starts_with(header) {
                if &avail[len - 2..len] != b"\r\n" {
                    bail!("a delivery without CRLF after its payload");
                }
                self.start += len;
                *count += 1;
                continue;
            }
            let Some(i) = memchr::memmem::find(avail, b"\r\n") else {
                return Ok(());
            };
            match &avail[..i] {
                line if line == &header[..header.len() - 2] => return Ok(()), // payload pending
                b"PING" => {
                    self.start += i + 2;
                    self.write_all(b"PONG\r\n")?;
                }
                b"PONG" | b"+OK" => self.start += i + 2,
                line => bail!(
                    "unexpected from the server: {:?}",
                    String::from_utf8_lossy(line)
                ),
            }
        }
    }
}

/// The exact bytes of one delivery: `MSG <subject> <sid> <len>\r\n<payload>\r\n`.
pub(crate) struct DeliveryFrame {
    header: Vec<u8>,
    len: usize,
}

impl DeliveryFrame {
    /// The frame a subscription `sid` on `subject` receives for a `payload`-byte message.
    pub(crate) fn new(subject: &str, sid: u64, payload: usize) -> DeliveryFrame {
        // MSG <subject> <sid> [reply-to] <#bytes>\r\n[payload]\r\n
        let header = format!("MSG {subject} {sid} {payload}\r\n").into_bytes();
        let len = header.len() + payload + 2;
        DeliveryFrame { header, len }
    }
}

/// Bytes of PUB frames written per `write` call.
const BATCH_BYTES: usize = 256 * 1024;

/// Publishes pipelined PUB frames from one buffer built once and written over and over.
pub(crate) struct Publisher {
    batch: Vec<u8>,
    frame_len: usize,
    per_batch: u64,
}

impl Publisher {
    /// A publisher of `payload`-byte messages on `subject`.
    pub(crate) fn new(subject: &str, payload: usize) -> Publisher {
        // PUB <subject> [reply-to] <#bytes>\r\n[payload]\r\n
        let mut frame = format!("PUB {subject} {payload}\r\n").into_bytes();
        frame.extend(std::iter::repeat_n(b'x', payload));
        frame.extend_from_slice(b"\r\n");
        let per_batch = (BATCH_BYTES / frame.len()).max(1);
        Publisher {
            batch: frame.repeat(per_batch),
            frame_len: frame.len(),
            per_batch: per_batch as u64,
        }
    }

    /// Writes exactly `count` messages.
    pub(crate) fn send_count(&self, conn: &mut RawConn, count: u64) -> anyhow::Result<()> {
        for _ in 0..count / self.per_batch {
            conn.write_all(&self.batch)?;
        }
        let rest = (count % self.per_batch) as usize * self.frame_len;
        conn.write_all(&self.batch[..rest])
    }

    /// Writes whole batches until `duration` has passed; returns how many messages.
    pub(crate) fn send_for(&self, conn: &mut RawConn, duration: Duration) -> anyhow::Result<u64> {
        let start = Instant::now();
        let mut sent = 0;
        while start.elapsed() < duration {
            conn.write_all(&self.batch)?;
            sent += self.per_batch;
        }
        Ok(sent)
    }
}

#[cfg(test)]
#[path = "raw_tests.rs"]
mod tests;
