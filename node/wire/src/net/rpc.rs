//! Request/response over QUIC: one bidirectional stream per exchange.
//!
//! The caller opens a stream, writes one request frame and finishes its side; the server reads
//! the frame, hands it to the [`Handler`] together with the caller's [`Identity`], writes one
//! response frame and finishes. A frame is a big-endian `u32` length followed by that many
//! bytes, at most [`MAX_FRAME`]; a longer declared length is refused before anything is
//! allocated.
//!
//! One [`RpcEndpoint`] per node serves and calls on the same UDP socket. Outgoing connections
//! are cached per (address, expected identity) and reused by later calls; a cached connection
//! found dead is replaced once, transparently.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use quinn::{ConnectionError, VarInt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::{AbortHandle, JoinHandle};
use tracing::{debug, warn};

use super::tls::{self, Bundle};
use super::{Identity, NetError, Peer, Revoked};

/// The largest frame, request or response, in bytes.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// How many connections one identity may hold open to a node at once (a restarted peer's old
/// connection may linger until its idle timeout, hence more than one).
pub const MAX_CONNECTIONS_PER_IDENTITY: usize = 8;

/// How many requests of one identity a node works on at once, over all its connections. A peer
/// that opens more streams waits (its further streams are not accepted until one finishes), so a
/// flood from one certificate takes at most this share of the node's handlers.
pub const MAX_HANDLERS_PER_IDENTITY: usize = 64;

/// How long a peer may take to send a whole request frame once it opened the stream.
pub const REQUEST_READ_DEADLINE: Duration = Duration::from_secs(30);

/// A frame buffer starts at most this large and grows as bytes actually arrive, so that a peer
/// cannot make us reserve [`MAX_FRAME`] by declaring it.
const INITIAL_FRAME_CAPACITY: usize = 64 * 1024;

/// How long [`RpcEndpoint::close`] waits for peers to acknowledge the close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Application close codes on connections.
const CLOSE_SHUTDOWN: VarInt = VarInt::from_u32(0);
const CLOSE_BAD_PEER: VarInt = VarInt::from_u32(1);
const CLOSE_REVOKED: VarInt = VarInt::from_u32(2);
const CLOSE_TOO_MANY: VarInt = VarInt::from_u32(3);

/// Application error codes on streams.
const STREAM_BAD_REQUEST: VarInt = VarInt::from_u32(1);
const STREAM_RESPONSE_TOO_LARGE: VarInt = VarInt::from_u32(2);

/// Serves requests. One handler serves every connection of an endpoint.
pub trait Handler: Send + Sync + 'static {
    /// Answers `request` from `peer` (the identity its certificate names) with the response
    /// bytes. The future is dropped unanswered if the caller gives up (its call timed out, the
    /// stream was stopped or the connection lost), so it must be cancel-safe. A call may be
    /// delivered twice if a connection dies mid-call and the caller retries, so requests that
    /// change state should be idempotent.
    fn handle(&self, peer: Peer, request: Vec<u8>) -> impl Future<Output = Vec<u8>> + Send;

    /// The largest request `peer` may send, in bytes (at most [`MAX_FRAME`]); a longer declared
    /// length is refused before anything is read.
    fn max_request(&self, _peer: &Peer) -> usize {
        MAX_FRAME
    }

    /// Refused peers (by role) are counted here; the default does nothing.
    fn refused_connection(&self, _peer: &Peer, _why: &'static str) {}
}

/// The certificates this endpoint refuses, shared by the accept loop, the connector and whoever
/// updates it (the node, from its replicated revocation list).
#[derive(Default)]
struct Gate {
    revoked: Revoked,
    /// Incoming connections by stable id, with the peer their certificate names.
    incoming: HashMap<usize, (Peer, quinn::Connection)>,
    /// Each identity's share of handlers ([`MAX_HANDLERS_PER_IDENTITY`]), over its connections.
    handlers: HashMap<Identity, Arc<tokio::sync::Semaphore>>,
}

/// One node's (or client's) QUIC endpoint: a UDP socket that accepts the port's connections
/// (when bound with [`RpcEndpoint::bind`]) and makes calls to other nodes.
pub struct RpcEndpoint {
    endpoint: quinn::Endpoint,
    client_config: quinn::ClientConfig,
    port: String,
    /// Outgoing connections by (peer address, identity expected there).
    connections: Arc<Mutex<HashMap<(SocketAddr, Identity), quinn::Connection>>>,
    /// One handshake at a time per (address, identity): concurrent first calls share the
    /// connection it makes instead of each opening one (which would spend the peer's
    /// per-identity connection cap).
    dialing: Mutex<HashMap<(SocketAddr, Identity), Arc<tokio::sync::Mutex<()>>>>,
    /// The accept loops started by [`RpcEndpoint::serve`], stopped on close.
    serving: Mutex<Vec<AbortHandle>>,
    /// Revoked serial numbers and the incoming connections they are checked against.
    gate: Arc<Mutex<Gate>>,
}

impl std::fmt::Debug for RpcEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcEndpoint")
            .field("port", &self.port)
            .field("local_addr", &self.endpoint.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl RpcEndpoint {
    /// An endpoint that serves the port's connections on `listen` and calls from the same
    /// socket. Must be called within a tokio runtime.
    pub fn bind(bundle: &Bundle, listen: SocketAddr) -> Result<RpcEndpoint, NetError> {
        let server_config = tls::server_config(bundle)?;
        let endpoint_config = tls::endpoint_config(bundle)?;
        let bind_error = |source| NetError::Bind {
            addr: listen,
            source,
        };
        let socket = std::net::UdpSocket::bind(listen).map_err(bind_error)?;
        let runtime = quinn::default_runtime()
            .ok_or_else(|| bind_error(io::Error::other("no tokio runtime")))?;
        let endpoint = quinn::Endpoint::new(endpoint_config, Some(server_config), socket, runtime)
            .map_err(bind_error)?;
        RpcEndpoint::new(bundle, endpoint)
    }

    /// A call-only endpoint (the command line, consoles) on an ephemeral port: dual-stack
    /// `[::]:0` where the host has IPv6, `0.0.0.0:0` otherwise. Must be called within a tokio
    /// runtime.
    pub fn client(bundle: &Bundle) -> Result<RpcEndpoint, NetError> {
        let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
        let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let endpoint = quinn::Endpoint::client(v6)
            .or_else(|_| quinn::Endpoint::client(v4))
            .map_err(|source| NetError::Bind { addr: v4, source })?;
        RpcEndpoint::new(bundle, endpoint)
    }

    fn new(bundle: &Bundle, endpoint: quinn::Endpoint) -> Result<RpcEndpoint, NetError> {
        Ok(RpcEndpoint {
            client_config: tls::client_config(bundle)?,
            endpoint,
            port: bundle.port.clone(),
            connections: Arc::new(Mutex::new(HashMap::new())),
            dialing: Mutex::new(HashMap::new()),
            serving: Mutex::new(Vec::new()),
            gate: Arc::new(Mutex::new(Gate::default())),
        })
    }

    /// Replaces the revocation list: new connections presenting a revoked certificate are
    /// refused, and open connections in either direction whose peer presents one are closed now.
    /// Returns how many connections were closed.
    pub fn set_revoked(&self, revoked: Revoked) -> usize {
        let mut closed = 0;
        let mut gate = lock(&self.gate);
        gate.incoming.retain(|_, (peer, conn)| {
            if peer.is_revoked(&revoked) {
                warn!(%peer, "Closing the connection of a revoked certificate.");
                conn.close(CLOSE_REVOKED, b"certificate revoked");
                closed += 1;
                false
            } else {
                conn.close_reason().is_none()
            }
        });
        lock(&self.connections).retain(|_, conn| match tls::peer_identity(conn, &self.port) {
            Ok(peer) if peer.is_revoked(&revoked) => {
                conn.close(CLOSE_REVOKED, b"certificate revoked");
                closed += 1;
                false
            }
            _ => true,
        });
        gate.revoked = revoked;
        closed
    }

    /// The address of the UDP socket.
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        self.endpoint
            .local_addr()
            .map_err(|source| NetError::ConnectionClosed {
                reason: format!("endpoint has no local address: {source}"),
            })
    }

    /// The port this endpoint belongs to.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// How many QUIC connections the endpoint has open, in both directions.
    pub fn quic_connections(&self) -> usize {
        self.endpoint.open_connections()
    }

    /// How many cached outgoing connections are still open.
    pub fn open_connections(&self) -> usize {
        lock(&self.connections)
            .values()
            .filter(|c| c.close_reason().is_none())
            .count()
    }

    /// Sends `request` to the node at `addr`, which must prove to be `expect`, and returns its
    /// response. Everything — connecting, the handshake, the exchange and one retry on a fresh
    /// connection if a cached one turns out dead — happens within `timeout`.
    pub async fn call(
        &self,
        addr: SocketAddr,
        expect: &Identity,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, NetError> {
        if request.len() > MAX_FRAME {
            return Err(NetError::FrameTooLarge {
                len: request.len() as u64,
                limit: MAX_FRAME,
            });
        }
        tokio::time::timeout(timeout, self.call_inner(addr, expect, request))
            .await
            .unwrap_or(Err(NetError::Timeout { after: timeout }))
    }

    async fn call_inner(
        &self,
        addr: SocketAddr,
        expect: &Identity,
        request: &[u8],
    ) -> Result<Vec<u8>, NetError> {
        let key = (addr, expect.clone());
        let cached = lock(&self.connections).get(&key).cloned();
        if let Some(conn) = cached {
            if conn.close_reason().is_none() {
                match exchange(&conn, addr, request).await {
                    Err(NetError::ConnectionClosed { reason }) => {
                        debug!(peer = %expect, %addr, %reason, "Cached connection lost; reconnecting.");
                    }
                    result => return result,
                }
            }
            self.forget(&key, &conn);
        }

        let dial = lock(&self.dialing).entry(key.clone()).or_default().clone();
        let _dialing = dial.lock().await;
        let fresh = lock(&self.connections).get(&key).cloned();
        if let Some(conn) = fresh.filter(|c| c.close_reason().is_none()) {
            // Another caller connected while this one waited.
            drop(_dialing);
            let result = exchange(&conn, addr, request).await;
            if conn.close_reason().is_some() {
                self.forget(&key, &conn);
            }
            return result;
        }

        // The handshake runs in its own task that caches the connection when done: a caller
        // with a short deadline (Raft heartbeats) that gives up mid-handshake on a loaded
        // machine still leaves a connection for its next attempt, instead of starting over.
        let connector = Connector {
            endpoint: self.endpoint.clone(),
            client_config: self.client_config.clone(),
            port: self.port.clone(),
            gate: self.gate.clone(),
        };
        let connections = self.connections.clone();
        let (a, e) = (addr, expect.clone());
        let conn = tokio::spawn(async move {
            let conn = connector.connect(a, &e).await?;
            lock(&connections).insert((a, e), conn.clone());
            Ok::<_, NetError>(conn)
        })
        .await
        .map_err(|e| NetError::Connect {
            addr,
            reason: format!("connect task failed: {e}"),
        })??;
        drop(_dialing);
        let result = exchange(&conn, addr, request).await;
        if conn.close_reason().is_some() {
            self.forget(&key, &conn);
        }
        result
    }
}

/// What a detached connection attempt needs.
struct Connector {
    endpoint: quinn::Endpoint,
    client_config: quinn::ClientConfig,
    port: String,
    gate: Arc<Mutex<Gate>>,
}

impl Connector {
    /// Connects to `addr` with `expect`'s DNS name as the server name and checks the identity
    /// in the certificate the server presented.
    async fn connect(
        &self,
        addr: SocketAddr,
        expect: &Identity,
    ) -> Result<quinn::Connection, NetError> {
        let server_name = expect.dns_name(&self.port);
        let connecting = self
            .endpoint
            .connect_with(self.client_config.clone(), addr, &server_name)
            .map_err(|e| NetError::Connect {
                addr,
                reason: e.to_string(),
            })?;
        let conn = connecting.await.map_err(|e| match handshake_refusal(&e) {
            Some(reason) => NetError::HandshakeRefused { addr, reason },
            None => NetError::Connect {
                addr,
                reason: e.to_string(),
            },
        })?;
        let got = match tls::peer_identity(&conn, &self.port) {
            Ok(got) => got,
            Err(e) => {
                conn.close(CLOSE_BAD_PEER, b"bad identity");
                return Err(e);
            }
        };
        if got.identity != *expect {
            conn.close(CLOSE_BAD_PEER, b"unexpected identity");
            return Err(NetError::PeerMismatch {
                expected: expect.clone(),
                got: got.identity,
            });
        }
        if got.is_revoked(&lock(&self.gate).revoked) {
            conn.close(CLOSE_REVOKED, b"certificate revoked");
            return Err(NetError::Revoked {
                peer: got.to_string(),
            });
        }
        debug!(peer = %expect, %addr, "Connected.");
        Ok(conn)
    }
}

impl RpcEndpoint {
    /// Drops `conn` from the cache if it is still the one cached under `key`.
    fn forget(&self, key: &(SocketAddr, Identity), conn: &quinn::Connection) {
        let mut connections = lock(&self.connections);
        if connections
            .get(key)
            .is_some_and(|c| c.stable_id() == conn.stable_id())
        {
            connections.remove(key);
        }
    }

    /// Starts accepting connections and serving their requests with `handler`. The task runs
    /// until the endpoint is closed or dropped. On a call-only endpoint it accepts nothing.
    pub fn serve<H: Handler>(&self, handler: Arc<H>) -> JoinHandle<()> {
        let endpoint = self.endpoint.clone();
        let port = self.port.clone();
        let gate = self.gate.clone();
        let task = tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                tokio::spawn(serve_connection(
                    incoming,
                    port.clone(),
                    handler.clone(),
                    gate.clone(),
                ));
            }
            debug!(port = %port, "Endpoint closed; no longer accepting connections.");
        });
        lock(&self.serving).push(task.abort_handle());
        task
    }

    /// Stops serving, closes every connection and waits (briefly) for peers to be told.
    pub async fn close(&self) {
        self.shut();
        let _ = tokio::time::timeout(CLOSE_WAIT, self.endpoint.wait_idle()).await;
    }

    fn shut(&self) {
        for task in lock(&self.serving).drain(..) {
            task.abort();
        }
        lock(&self.connections).clear();
        lock(&self.gate).incoming.clear();
        self.endpoint.close(CLOSE_SHUTDOWN, b"shutdown");
    }
}

impl Drop for RpcEndpoint {
    /// Closes the endpoint so that its connections end and its socket is released.
    fn drop(&mut self) {
        self.shut();
    }
}

/// Locks a mutex that is only ever held for map operations; a panic elsewhere cannot leave the
/// map inconsistent, so a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One request/response exchange on a new stream of `conn`, which leads to `addr`.
async fn exchange(
    conn: &quinn::Connection,
    addr: SocketAddr,
    request: &[u8],
) -> Result<Vec<u8>, NetError> {
    let result = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(connection_error)?;
        write_frame(&mut send, request).await?;
        send.finish().map_err(|e| NetError::StreamClosed {
            reason: e.to_string(),
        })?;
        read_frame(&mut recv, MAX_FRAME).await
    }
    .await;
    // The frame layer does not know the peer's address; name it in a refusal.
    result.map_err(|e| match e {
        NetError::HandshakeRefused { reason, .. } => NetError::HandshakeRefused { addr, reason },
        e => e,
    })
}

/// Completes the handshake of an incoming connection and serves its streams until it closes.
async fn serve_connection<H: Handler>(
    incoming: quinn::Incoming,
    port: String,
    handler: Arc<H>,
    gate: Arc<Mutex<Gate>>,
) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            match handshake_refusal(&e) {
                Some(reason) => warn!(%remote, %reason, "Refused a connection at the handshake."),
                None => debug!(%remote, error = %e, "Incoming handshake failed."),
            }
            return;
        }
    };
    let peer = match tls::peer_identity(&conn, &port) {
        Ok(peer) => peer,
        Err(e) => {
            warn!(%remote, error = %e, "Refused a connection: bad peer identity.");
            conn.close(CLOSE_BAD_PEER, b"bad identity");
            return;
        }
    };
    let permits = {
        let mut gate = lock(&gate);
        if peer.is_revoked(&gate.revoked) {
            drop(gate);
            warn!(%peer, %remote, "Refused a connection: the certificate is revoked.");
            handler.refused_connection(&peer, "revoked");
            conn.close(CLOSE_REVOKED, b"certificate revoked");
            return;
        }
        gate.incoming.retain(|_, (_, c)| c.close_reason().is_none());
        let open = gate
            .incoming
            .values()
            .filter(|(p, _)| p.identity == peer.identity)
            .count();
        if open >= MAX_CONNECTIONS_PER_IDENTITY {
            drop(gate);
            warn!(%peer, %remote, open, "Refused a connection: too many from this identity.");
            handler.refused_connection(&peer, "too_many_connections");
            conn.close(CLOSE_TOO_MANY, b"too many connections");
            return;
        }
        gate.incoming
            .insert(conn.stable_id(), (peer.clone(), conn.clone()));
        gate.handlers
            .entry(peer.identity.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(MAX_HANDLERS_PER_IDENTITY)))
            .clone()
    };
    debug!(%peer, %remote, "Accepted a connection.");
    let limit = handler.max_request(&peer).min(MAX_FRAME);
    loop {
        // A free handler first, then the next stream: while this identity's share is busy its
        // streams wait unaccepted (QUIC flow control pushes back on the peer).
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.ok(),
            _ = conn.closed() => None,
        };
        let Some(permit) = permit else {
            lock(&gate).incoming.remove(&conn.stable_id());
            return;
        };
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(serve_stream(
                    permit,
                    send,
                    recv,
                    peer.clone(),
                    limit,
                    handler.clone(),
                ));
            }
            Err(e) => {
                debug!(%peer, %remote, reason = %e, "Connection closed.");
                lock(&gate).incoming.remove(&conn.stable_id());
                return;
            }
        }
    }
}

/// Serves one request stream: read the request, answer it, finish.
async fn serve_stream<H: Handler>(
    _permit: tokio::sync::OwnedSemaphorePermit,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    peer: Peer,
    limit: usize,
    handler: Arc<H>,
) {
    let read = tokio::time::timeout(REQUEST_READ_DEADLINE, read_frame(&mut recv, limit)).await;
    let request = match read.unwrap_or(Err(NetError::Timeout {
        after: REQUEST_READ_DEADLINE,
    })) {
        Ok(request) => request,
        Err(e) => {
            debug!(%peer, error = %e, "Bad request frame; closing the stream.");
            let _ = recv.stop(STREAM_BAD_REQUEST);
            let _ = send.reset(STREAM_BAD_REQUEST);
            return;
        }
    };
    // If the caller gives up (stops the stream or the connection is lost), stop working for it.
    let stopped = send.stopped();
    let response = tokio::select! {
        response = handler.handle(peer.clone(), request) => response,
        _ = stopped => {
            debug!(%peer, "Caller gave up before the answer; dropped the request.");
            return;
        }
    };
    if response.len() > MAX_FRAME {
        warn!(%peer, len = response.len(), limit = MAX_FRAME, "Response too large; resetting the stream.");
        let _ = send.reset(STREAM_RESPONSE_TOO_LARGE);
        return;
    }
    let written = match write_frame(&mut send, &response).await {
        Ok(()) => send.finish().map_err(|e| NetError::StreamClosed {
            reason: e.to_string(),
        }),
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        debug!(%peer, error = %e, "Could not send the response.");
    }
}

/// Reads one frame: a big-endian `u32` length, then that many bytes. A declared length above
/// `limit` is refused with [`NetError::FrameTooLarge`] before anything is allocated; the buffer
/// grows only as bytes arrive.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<Vec<u8>, NetError> {
    let mut header = [0u8; 4];
    reader
        .read_exact(&mut header)
        .await
        .map_err(|e| io_error(e, "the stream ended inside the frame header"))?;
    let len = u64::from(u32::from_be_bytes(header));
    if len > limit as u64 {
        return Err(NetError::FrameTooLarge { len, limit });
    }
    let mut body = Vec::with_capacity((len as usize).min(INITIAL_FRAME_CAPACITY));
    reader
        .take(len)
        .read_to_end(&mut body)
        .await
        .map_err(|e| io_error(e, "unreadable frame body"))?;
    if body.len() as u64 != len {
        return Err(NetError::BadFrame {
            reason: format!(
                "truncated: the header declares {len} bytes, the stream ended after {}",
                body.len()
            ),
        });
    }
    Ok(body)
}

/// Writes one frame. Bytes longer than [`MAX_FRAME`] are refused with
/// [`NetError::FrameTooLarge`].
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
) -> Result<(), NetError> {
    let too_large = || NetError::FrameTooLarge {
        len: bytes.len() as u64,
        limit: MAX_FRAME,
    };
    if bytes.len() > MAX_FRAME {
        return Err(too_large());
    }
    let len = u32::try_from(bytes.len()).map_err(|_| too_large())?;
    writer
        .write_all(&len.to_be_bytes())
        .await
        .map_err(|e| io_error(e, "could not write the frame header"))?;
    writer
        .write_all(bytes)
        .await
        .map_err(|e| io_error(e, "could not write the frame body"))?;
    Ok(())
}

/// Maps an IO error from a stream to what happened: the connection was lost, the peer reset or
/// stopped the stream, or the stream ended early (`eof`).
fn io_error(e: io::Error, eof: &str) -> NetError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return NetError::BadFrame {
            reason: eof.to_owned(),
        };
    }
    let inner = e.get_ref();
    if let Some(read) = inner.and_then(|i| i.downcast_ref::<quinn::ReadError>()) {
        return match read {
            quinn::ReadError::ConnectionLost(c) => connection_error(c.clone()),
            other => NetError::StreamClosed {
                reason: other.to_string(),
            },
        };
    }
    if let Some(write) = inner.and_then(|i| i.downcast_ref::<quinn::WriteError>()) {
        return match write {
            quinn::WriteError::ConnectionLost(c) => connection_error(c.clone()),
            other => NetError::StreamClosed {
                reason: other.to_string(),
            },
        };
    }
    NetError::StreamClosed {
        reason: e.to_string(),
    }
}

/// Maps the loss of an established connection. A TLS alert still counts as a refusal: a server
/// may reject our client certificate after we consider the handshake done. The address is
/// filled in by the caller, which knows it.
fn connection_error(e: ConnectionError) -> NetError {
    match handshake_refusal(&e) {
        Some(reason) => NetError::HandshakeRefused {
            addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            reason,
        },
        None => NetError::ConnectionClosed {
            reason: e.to_string(),
        },
    }
}

/// If `e` is a TLS failure (an alert sent or received), says why.
fn handshake_refusal(e: &ConnectionError) -> Option<String> {
    let is_tls = |code: quinn::TransportErrorCode| (0x100..0x200).contains(&u64::from(code));
    match e {
        ConnectionError::TransportError(t) if is_tls(t.code) => Some(t.to_string()),
        ConnectionError::ConnectionClosed(c) if is_tls(c.error_code) => Some(c.to_string()),
        _ => None,
    }
}
