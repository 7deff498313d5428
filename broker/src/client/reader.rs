//! The reading side of a connection: socket bytes to operations, with liveness and auth timers.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};

use super::liveness::{Action, Liveness};
use super::login;
use super::route::{NewSub, Router};
use super::{writer, Client, CloseReason};
use crate::permissions::Checker;
use crate::proto::connect::ConnectInfo;
use crate::proto::server_op::{self, PING, PONG};
use crate::proto::{self, ClientOp, Limits, ProtocolError};
use crate::server::{Live, ServerState};
use crate::tls::{OpenError, Stream};

mod reconfigure;

/// Longest a publisher waits, per read, for a subscriber that is near `max_pending`.
const PRODUCER_STALL: Duration = Duration::from_millis(5);
/// Smallest free space kept in the read buffer before each read.
const READ_RESERVE: usize = 32 * 1024;

/// Runs one connection to the end and removes every trace of it from the server.
/// `live` is the reloadable settings in force when the connection was accepted.
pub(crate) async fn serve(
    state: Arc<ServerState>,
    live: Arc<Live>,
    client: Arc<Client>,
    socket: TcpStream,
) {
    let mut info = live.info.clone();
    info.client_id = client.id;
    info.client_ip = client.addr.ip().to_string();
    if live.opts.needs_nonce() {
        info.nonce = crate::auth::new_nonce();
    }
    let nonce = info.nonce.clone();
    let stream = match &live.tls {
        None => {
            client.queue_proto(|out| server_op::write_info(out, &info));
            Stream::Plain(socket)
        }
        Some(tls) => {
            let open = tls.open(socket, |required| {
                let mut bytes = Vec::new();
                server_op::write_info(&mut bytes, &with_tls(&info, required));
                bytes
            });
            // A shutdown (or a reload closing the client) does not wait for a slow handshake.
            let opened = tokio::select! {
                opened = open => opened,
                _ = state.shutdown.cancelled() => Err(OpenError::Stopped),
                _ = client.closed.cancelled() => Err(OpenError::Stopped),
            };
            match opened {
                Ok(opened) => {
                    if opened.info_after_handshake {
                        let info = with_tls(&info, true);
                        client.queue_proto(|out| server_op::write_info(out, &info));
                    }
                    if let Some(session) = opened.session {
                        client.set_tls(session);
                    }
                    opened.stream
                }
                Err(e) => {
                    match &e {
                        OpenError::Handshake(why) => tracing::warn!(
                            cid = client.id, addr = %client.addr, "TLS handshake error: {why}"
                        ),
                        OpenError::Throttled => tracing::debug!(
                            cid = client.id, addr = %client.addr, "TLS connection throttled"
                        ),
                        OpenError::Stopped => {}
                    }
                    client.close(match e {
                        OpenError::Handshake(_) => CloseReason::TlsHandshakeError,
                        OpenError::Throttled => CloseReason::MaxConnectionsExceeded,
                        OpenError::Stopped => CloseReason::ServerShutdown,
                    });
                    finish(&state, &client);
                    return;
                }
            }
        }
    };
    client.flush_soon();
    match stream {
        Stream::Plain(socket) => {
            let (read_half, write_half) = socket.into_split();
            run(&state, live, &client, nonce, read_half, write_half).await;
        }
        Stream::Tls(socket) => {
            let (read_half, write_half) = tokio::io::split(*socket);
            run(&state, live, &client, nonce, read_half, write_half).await;
        }
    }
    finish(&state, &client);
    match client.close_reason() {
        Some(
            r @ (CloseReason::SlowConsumerPendingBytes | CloseReason::SlowConsumerWriteDeadline),
        ) => {
            state.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(cid = client.id, addr = %client.addr, "slow consumer: {}", r.as_str());
        }
        Some(r) => tracing::debug!(cid = client.id, addr = %client.addr, "closed: {}", r.as_str()),
        None => {}
    }
}

/// INFO as a client that has not done the handshake sees it, or (`required`) one that has.
fn with_tls(info: &server_op::Info, required: bool) -> server_op::Info {
    let mut info = info.clone();
    // `tls_available` (from `allow_non_tls`) stays as it is, as on nats-server.
    info.tls_required = required;
    info
}

/// Reads until the connection ends, while its writer drains what is queued for it.
async fn run<R, W>(
    state: &Arc<ServerState>,
    live: Arc<Live>,
    client: &Arc<Client>,
    nonce: String,
    read: R,
    write: W,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let writer = tokio::spawn(writer::run(client.clone(), write, live.opts.write_deadline));
    let mut conn = Connection::new(state.clone(), live, client.clone(), nonce);
    let reason = conn.read_loop(read).await;
    client.close(reason);
    drop_subscriptions(state, client);
    let _ = writer.await;
}

/// Removes the connection's subscriptions from its account and JetStream's view.
fn drop_subscriptions(state: &ServerState, client: &Client) {
    let account = client.account();
    for sub in client
        .subs
        .lock()
        .drain()
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
    {
        account
            .sublist
            .remove(&sub.subject, sub.queue.as_deref(), &sub);
    }
    if let Some(js) = state.jetstream.get() {
        js.connection_closed(client.id);
    }
}

/// The last of a connection: out of its account and off the server's list.
fn finish(state: &ServerState, client: &Client) {
    client.account().leave();
    state.clients.lock().remove(&client.id);
}

/// Refuses a connection over `max_connections`: writes INFO and the error, then closes.
pub(crate) async fn refuse(mut socket: TcpStream, bytes: Vec<u8>) {
    let write = async {
        socket.write_all(&bytes).await?;
        socket.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

/// The reader's own state; other connections never touch it.
struct Connection {
    state: Arc<ServerState>,
    /// The reloadable settings this connection goes by; a reload replaces them.
    live: Arc<Live>,
    /// The CONNECT that logged in, checked again against the users of a reload.
    connect: Option<ConnectInfo>,
    client: Arc<Client>,
    router: Router,
    connected: bool,
    verbose: bool,
    pedantic: bool,
    liveness: Liveness,
    limits: Limits,
    /// The nonce this connection's INFO carried, for nkey logins; empty otherwise.
    nonce: String,
    /// What the logged-in user may publish and subscribe to; `None` means anything.
    perms: Option<Checker>,
    /// When the login expires (a user JWT's `exp`), once CONNECT set it and until the read loop
    /// has armed its timer.
    expires: Option<SystemTime>,
}

impl Connection {
    fn new(
        state: Arc<ServerState>,
        live: Arc<Live>,
        client: Arc<Client>,
        nonce: String,
    ) -> Connection {
        let limits = Limits {
            max_control_line: live.opts.max_control_line,
            max_payload: live.opts.max_payload,
            headers: false,
        };
        let router = Router::new(state.clone(), client.clone());
        let liveness = Liveness::new(live.opts.ping_max, live.opts.ping_timeout);
        Connection {
            state,
            live,
            connect: None,
            client,
            router,
            connected: false,
            // Until CONNECT says otherwise, as nats-server.
            verbose: true,
            pedantic: true,
            liveness,
            limits,
            nonce,
            perms: None,
            expires: None,
        }
    }

    async fn read_loop<R: AsyncRead + Unpin>(&mut self, mut socket: R) -> CloseReason {
        let live = self.live.clone();
        let opts = &live.opts;
        let mut buf = BytesMut::with_capacity(READ_RESERVE * 2);
        let mut ping =
            tokio::time::interval_at(Instant::now() + opts.ping_interval, opts.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let auth_required = live.info.auth_required;
        let auth_deadline = tokio::time::sleep(opts.auth_timeout());
        tokio::pin!(auth_deadline);
        let pong_overdue = tokio::time::sleep(opts.ping_interval);
        tokio::pin!(pong_overdue);
        let (expiry, mut expiring) = (tokio::time::sleep(Duration::ZERO), false);
        tokio::pin!(expiry);
        let closed = self.client.closed.clone();
        let shutdown = self.state.shutdown.clone();
        let client = self.client.clone();
        let reloaded = client.reloaded.notified();
        tokio::pin!(reloaded);
        loop {
            if buf.capacity() - buf.len() < READ_RESERVE {
                buf.reserve(READ_RESERVE);
            }
            tokio::select! {
                read = socket.read_buf(&mut buf) => match read {
                    Ok(0) => return CloseReason::ClientClosed,
                    Ok(_) => {
                        self.liveness.on_activity();
                        let result = self.process(&mut buf);
                        self.router.finish_batch();
                        if let Err(reason) = result {
                            return reason;
                        }
                        if let Some(at) = self.expires.take() {
                            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
                            expiry.as_mut().reset(Instant::now() + left);
                            expiring = true;
                        }
                        if let Some(behind) = self.router.take_behind() {
                            // Bounded backpressure: a subscriber near max_pending gets a moment
                            // to drain before this publisher sends more; a truly slow one is
                            // still cut off, and nobody waits longer than PRODUCER_STALL.
                            behind.wait_drained(PRODUCER_STALL).await;
                        }
                    }
                    // A TLS client that hangs up without close_notify, as many do, has closed.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        return CloseReason::ClientClosed
                    }
                    Err(_) => return CloseReason::ReadError,
                },
                now = ping.tick() => {
                    let action = self.liveness.on_tick(now);
                    if let Some(due) = self.liveness.pong_due() {
                        pong_overdue.as_mut().reset(due);
                    }
                    if let Err(reason) = self.act(action) {
                        return reason;
                    }
                }
                _ = &mut pong_overdue, if self.liveness.pong_due().is_some() => {
                    let action = self.liveness.on_pong_overdue();
                    if let Err(reason) = self.act(action) {
                        return reason;
                    }
                }
                _ = &mut expiry, if expiring => {
                    self.send_err("User Authentication Expired");
                    self.router.finish_batch();
                    return CloseReason::AuthenticationExpired;
                }
                _ = &mut auth_deadline, if auth_required && !self.connected => {
                    self.send_err("Authentication Timeout");
                    return CloseReason::AuthenticationTimeout;
                }
                _ = &mut reloaded => {
                    reloaded.set(client.reloaded.notified());
                    if let Err(reason) = self.on_reload() {
                        self.router.finish_batch();
                        return reason;
                    }
                    self.router.finish_batch();
                }
                _ = closed.cancelled() => {
                    return self.client.close_reason().unwrap_or(CloseReason::ServerShutdown);
                }
                _ = shutdown.cancelled() => return CloseReason::ServerShutdown,
            }
        }
    }

    /// Handles every complete operation in `buf` and keeps the incomplete rest.
    fn process(&mut self, buf: &mut BytesMut) -> Result<(), CloseReason> {
        self.client.touch();
        let mut used = 0;
        let result = loop {
            match proto::parse(&buf[used..], &self.limits) {
                Ok(Some((op, n))) => {
                    if let Err(reason) = self.handle(op) {
                        break Err(reason);
                    }
                    used += n;
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(self.protocol_error(&e)),
            }
        };
        buf.advance(used);
        result
    }

    fn handle(&mut self, op: ClientOp<'_>) -> Result<(), CloseReason> {
        if !self.connected && self.live.info.auth_required && !matches!(op, ClientOp::Connect(_)) {
            self.send_err("Authorization Violation");
            return Err(CloseReason::AuthenticationViolation);
        }
        match op {
            ClientOp::Connect(json) => self.on_connect(json)?,
            ClientOp::Pub(publish) => {
                if self
                    .perms
                    .as_ref()
                    .is_some_and(|p| !p.can_publish(publish.subject))
                {
                    let subject = String::from_utf8_lossy(publish.subject);
                    self.log_violation("publish", &subject);
                    self.send_err(&format!("Permissions Violation for Publish to {subject:?}"));
                    return Ok(());
                }
                if self.pedantic && !proto::subject::is_valid_literal_subject(publish.subject) {
                    self.send_err("Invalid Publish Subject");
                }
                // nats-server acknowledges before routing, so +OK precedes any 503 status.
                self.ok();
                self.router.publish(&publish);
            }
            ClientOp::Sub {
                subject,
                queue,
                sid,
            } => self.subscribe(subject, queue, sid),
            ClientOp::Unsub { sid, max } => {
                self.router.unsubscribe(sid, max);
                self.ok();
            }
            ClientOp::Ping => {
                self.client.queue_proto(|out| out.extend_from_slice(PONG));
                self.router.mark_own_flush();
            }
            ClientOp::Pong => self.liveness.on_pong(),
            // nats-server closes a client that sends it an error.
            ClientOp::Err => return Err(CloseReason::ProtocolViolation),
            ClientOp::Info | ClientOp::Ok => {}
        }
        Ok(())
    }

    /// `SUB`, after the user's subscribe permissions.
    fn subscribe(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
        let mut deny = None;
        if let Some(perms) = &self.perms {
            if !perms.can_subscribe(subject) {
                let subject = String::from_utf8_lossy(subject);
                self.log_violation("subscription", &subject);
                let text = match queue {
                    Some(q) => {
                        let q = String::from_utf8_lossy(q);
                        format!("Permissions Violation for Subscription to {subject:?} using queue {q:?}")
                    }
                    None => format!("Permissions Violation for Subscription to {subject:?}"),
                };
                self.send_err(&text);
                return;
            }
            deny = perms.delivery_filter(subject);
        }
        let sub = NewSub {
            subject,
            queue,
            sid,
            deny,
        };
        self.router.subscribe(sub, self.verbose);
    }

    fn on_connect(&mut self, json: &[u8]) -> Result<(), CloseReason> {
        let Ok(info) = ConnectInfo::parse(json) else {
            tracing::debug!(cid = self.client.id, "malformed CONNECT");
            return Err(CloseReason::ProtocolViolation);
        };
        let placement = self.log_in(&self.live.clone(), &info)?;
        self.perms = placement.perms;
        self.expires = placement.expires;
        if !self.router.set_account(&placement.account) {
            self.send_err("maximum account active connections exceeded");
            return Err(CloseReason::MaxAccountConnectionsExceeded);
        }
        if info.no_responders && !info.headers {
            self.send_err("no responders requires headers support");
            return Err(CloseReason::ProtocolViolation);
        }
        self.connected = true;
        self.verbose = info.verbose();
        self.pedantic = info.pedantic();
        self.limits.headers = info.headers;
        self.client.set_headers(info.headers);
        self.client.protocol.store(info.protocol, Ordering::Relaxed);
        self.router
            .configure(info.echo(), info.no_responders && info.headers);
        let mut meta = self.client.meta.lock();
        meta.name = info.name.clone().unwrap_or_default();
        meta.lang = info.lang.clone().unwrap_or_default();
        meta.version = info.version.clone().unwrap_or_default();
        meta.user = placement.user;
        drop(meta);
        self.connect = Some(info);
        self.ok();
        Ok(())
    }

    /// Logs in `info` against the users of `live`; a refusal is told to the client.
    fn log_in(&mut self, live: &Live, info: &ConnectInfo) -> Result<login::Placement, CloseReason> {
        let ip = self.client.addr.ip();
        let cert = self.client.tls().and_then(|t| t.peer_certs.first());
        login::place(&self.state, &live.opts, info, &self.nonce, ip, cert).map_err(|why| {
            tracing::warn!(cid = self.client.id, addr = %self.client.addr, "authorization violation");
            tracing::debug!(cid = self.client.id, "login refused: {why}");
            self.send_err("Authorization Violation");
            CloseReason::AuthenticationViolation
        })
    }

    fn act(&mut self, action: Action) -> Result<(), CloseReason> {
        match action {
            Action::Nothing => Ok(()),
            Action::SendPing => {
                self.client.queue_proto(|out| out.extend_from_slice(PING));
                self.client.flush_soon();
                Ok(())
            }
            Action::Stale => {
                self.send_err("Stale Connection");
                self.router.finish_batch();
                Err(CloseReason::StaleConnection)
            }
        }
    }

    fn protocol_error(&mut self, e: &ProtocolError) -> CloseReason {
        tracing::debug!(cid = self.client.id, "protocol error: {e}");
        if let Some(text) = e.err_text() {
            self.send_err(text);
        }
        match e {
            ProtocolError::MaxPayload => CloseReason::MaxPayloadExceeded,
            ProtocolError::MaxControlLine => CloseReason::MaxControlLineExceeded,
            _ => CloseReason::ProtocolViolation,
        }
    }

    fn ok(&mut self) {
        if self.verbose {
            self.client
                .queue_proto(|out| out.extend_from_slice(server_op::OK));
            self.router.mark_own_flush();
        }
    }

    /// Logs a refused publish or subscription with the user, as nats-server does, so an
    /// operator sees a service whose permissions are too narrow (or a client probing them).
    fn log_violation(&self, kind: &str, subject: &str) {
        let user = self.client.meta.lock().user.clone();
        tracing::warn!(
            cid = self.client.id,
            addr = %self.client.addr,
            user = %user,
            subject,
            "{kind} permissions violation"
        );
    }

    fn send_err(&mut self, text: &str) {
        self.client
            .queue_proto(|out| server_op::write_err(out, text));
        self.router.mark_own_flush();
    }
}
