//! The connection loop: accepts TCP connections and serves HTTP/1.1 and HTTP/2 on them with the
//! connection limits of `[limits]`, and shuts down gracefully.
//!
//! - at most `max_connections` connections are served at once; further ones wait in the
//!   operating system's accept queue until one closes;
//! - a new connection must send, within `header_read_timeout_seconds` of being accepted, a
//!   complete HTTP/1 request head or the HTTP/2 connection preface with its SETTINGS frame,
//!   whatever it sends and however slowly, or it is closed; on HTTP/1 every later request head
//!   has the same time, counted from the moment the connection waits for it;
//! - a request head may not exceed twice `max_header_bytes` (at least 8192 bytes) while it is
//!   read; HTTP/2 header lists have the same bound;
//! - a connection with no request being handled and no bytes moving for
//!   `idle_timeout_seconds` is shut down gracefully, and closed outright after as long again;
//! - on shutdown no new connection is accepted, idle connections close, and in-flight requests
//!   are answered before [`serve`] returns;
//! - when the HTTP/1 server cannot read a request (a malformed or oversized head) it answers on
//!   its own, without a body; pcq puts the Partner Center error envelope into that answer, as in
//!   every other error answer;
//! - a closing connection lingers: pcq ends its side and reads and discards what the client
//!   still sends (at most [`LINGER_BYTES`] for at most [`LINGER_TIME`]) before closing, so that
//!   a client still writing a body pcq refused (413) reads the answer instead of a reset;
//! - a request can ask for its connection to be reset without an answer (an injected fault of
//!   `"status": "reset"`) through the [`ConnectionHandle`] in its extensions: the connection,
//!   with every request in flight on it, is dropped at once and the socket closed with a reset.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, oneshot, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::LimitsConfig;

/// The smallest read buffer hyper accepts.
const MIN_BUF_BYTES: usize = 8192;
/// What an HTTP/2 client sends first (RFC 9113, section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An HTTP/2 frame header's length, and the SETTINGS frame's type.
const H2_FRAME_HEADER: usize = 9;
const H2_SETTINGS: u8 = 0x4;
/// The largest SETTINGS frame waited for (the smallest maximum frame size; larger ones are
/// handed on as they are, for the HTTP/2 server to refuse).
const H2_MAX_SETTINGS: usize = 16_384;
/// Most bytes a closing connection reads and discards.
pub const LINGER_BYTES: usize = 64 * 1024 * 1024;
/// Longest a closing connection waits for its client to stop sending.
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// A request's way to have its connection closed without an answer (in the request's
/// extensions).
#[derive(Debug, Clone)]
pub struct ConnectionHandle(Arc<Notify>, SocketAddr);

impl ConnectionHandle {
    /// The client's address, as this server sees the connection's peer (no forwarding header
    /// is trusted).
    pub fn peer(&self) -> SocketAddr {
        self.1
    }

    /// Drops the connection this request came on (and every request in flight on it) and
    /// resets the socket; nothing more is written to it.
    pub fn reset(&self) {
        self.0.notify_one();
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets every
/// connection finish its in-flight requests, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &LimitsConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let builder = Arc::new(connection_builder(limits));
    let head_cap = head_cap(limits);
    let timeouts = Timeouts {
        head: limits.header_read_timeout(),
        idle: limits.idle_timeout(),
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        // A free slot first, so that connections beyond the limit stay in the accept queue.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let builder = builder.clone();
        let router = router.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, &builder, router, timeouts, head_cap, stopping).await;
            drop(slot);
        });
    }
    drop(listener);
    drop(stopping);
    let _ = stop.send(true);
    // Every connection task holds a receiver: all are gone once the last connection is done.
    stop.closed().await;
    Ok(())
}

/// The most bytes of a request head the HTTP server reads.
fn head_cap(limits: &LimitsConfig) -> usize {
    limits.max_header_bytes.saturating_mul(2).max(MIN_BUF_BYTES)
}

/// The HTTP/1 and HTTP/2 settings of every connection.
fn connection_builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
    let head_cap = head_cap(limits);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout())
        .max_buf_size(head_cap);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(head_cap).unwrap_or(u32::MAX));
    builder
}

/// Errors of one connection that was reset before it was accepted: not a reason to pause.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The time limits of one connection.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    /// For a request head (and, first, for telling the protocol).
    head: Duration,
    /// For a connection with nothing moving.
    idle: Duration,
}

/// Which protocol a new connection speaks, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    /// The preface and the first frame (SETTINGS) have arrived.
    Http2,
}

/// Reads from a new connection until its protocol is known: for HTTP/2, until the preface and
/// the SETTINGS frame after it are in; for HTTP/1, until a byte differs from the preface. What
/// was read, to be read again by the HTTP server; `None` when the client closed first. Fails
/// when nothing arrives for `idle`.
async fn sniff(stream: &mut TcpStream, idle: Duration) -> io::Result<Option<(Protocol, Vec<u8>)>> {
    let mut seen = Vec::with_capacity(H2_PREFACE.len() + H2_FRAME_HEADER);
    let mut chunk = [0u8; 1024];
    loop {
        let n = H2_PREFACE.len().min(seen.len());
        if seen[..n] != H2_PREFACE[..n] {
            return Ok(Some((Protocol::Http1, seen)));
        }
        if let Some(frame) = seen.get(H2_PREFACE.len()..) {
            if frame.len() >= H2_FRAME_HEADER {
                let length = usize::from(frame[0]) << 16
                    | usize::from(frame[1]) << 8
                    | usize::from(frame[2]);
                let complete = frame[3] != H2_SETTINGS
                    || length > H2_MAX_SETTINGS
                    || frame.len() >= H2_FRAME_HEADER + length;
                if complete {
                    return Ok(Some((Protocol::Http2, seen)));
                }
            }
        }
        let read = tokio::time::timeout(idle, stream.read(&mut chunk))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if read == 0 {
            return Ok(None);
        }
        seen.extend_from_slice(&chunk[..read]);
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    builder: &auto::Builder<TokioExecutor>,
    router: Router,
    timeouts: Timeouts,
    head_cap: usize,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    // The first request head (or HTTP/2's preface and settings) is due this long after accept,
    // however the client spreads its bytes.
    let head_due = Instant::now() + timeouts.head;
    let (protocol, seen) = tokio::select! {
        sniffed = tokio::time::timeout_at(head_due, sniff(&mut stream, timeouts.idle)) => {
            match sniffed {
                Ok(Ok(Some(sniffed))) => sniffed,
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "closing a connection before its first request");
                    return;
                }
                Err(_elapsed) => {
                    tracing::debug!("closing a connection that sent no request in time");
                    return;
                }
            }
        }
        _ = stopping.wait_for(|stop| *stop) => return,
    };
    let activity = Arc::new(Activity::new());
    let (give_back, given_back) = oneshot::channel();
    let io = TokioIo::new(Watched {
        replay: seen,
        replayed: 0,
        envelope_bare_errors: (protocol == Protocol::Http1).then_some(head_cap),
        unsent: Vec::new(),
        inner: Some(stream),
        give_back: Some(give_back),
        activity: activity.clone(),
    });
    let in_service = activity.clone();
    let reset = Arc::new(Notify::new());
    let handle = ConnectionHandle(reset.clone(), peer);
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(handle.clone());
        let handling = InFlight::start(in_service.clone());
        let answer = router.clone().oneshot(request);
        async move {
            let response = answer.await;
            drop(handling);
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let mut connection = Box::pin(builder.serve_connection_with_upgrades(io, service));
    let mut idle_strikes = 0;
    let mut resetting = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = reset.notified() => {
                tracing::debug!("resetting a connection, as a request asked");
                resetting = true;
                break;
            }
            _ = stopping.wait_for(|stop| *stop), if !*stopping.borrow() => {
                connection.as_mut().graceful_shutdown();
            }
            // HTTP/1's first head must be complete by the deadline the sniffing started; later
            // ones are timed by the HTTP/1 server itself.
            () = tokio::time::sleep_until(head_due),
                if protocol == Protocol::Http1 && activity.requests() == 0 =>
            {
                if activity.requests() == 0 {
                    tracing::debug!("closing a connection that sent no request head in time");
                    return;
                }
            }
            () = activity.idle_for(timeouts.idle) => {
                idle_strikes += 1;
                if idle_strikes == 1 {
                    tracing::debug!("closing an idle connection");
                    connection.as_mut().graceful_shutdown();
                    activity.touch();
                } else {
                    tracing::debug!("dropping a connection that stayed idle after shutdown");
                    return;
                }
            }
        }
    }
    // The HTTP server is done with the stream: it hands it back when dropped. Shutting down
    // does not wait for the lingering.
    drop(connection);
    drop(stopping);
    if let Ok(stream) = given_back.await {
        if resetting {
            // Closing with SO_LINGER 0 sends a reset; it does not block, nothing being unsent.
            let _ = stream.set_zero_linger();
            drop(stream);
        } else {
            linger(stream).await;
        }
    }
}

/// Ends pcq's side of `stream`, then reads and discards what the client still sends until it
/// closes its side, at most [`LINGER_BYTES`] for at most [`LINGER_TIME`]. Closing a socket
/// with unread data makes the kernel reset the connection, which can destroy an answer the
/// client has not read yet.
async fn linger(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut discarded = 0;
    let mut chunk = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while discarded < LINGER_BYTES {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => discarded += n,
            }
        }
    })
    .await;
}

/// What a connection is doing: when bytes last moved and how many requests are being handled.
struct Activity {
    opened: Instant,
    last_micros: AtomicU64,
    in_flight: AtomicUsize,
    /// Requests whose head has arrived, in all.
    started: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            last_micros: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
        }
    }

    /// How many requests have started on the connection.
    fn requests(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    fn touch(&self) {
        let micros = u64::try_from(self.opened.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_micros.fetch_max(micros, Ordering::Relaxed);
    }

    /// Resolves once no request has been handled and no byte has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last =
                self.opened + Duration::from_micros(self.last_micros.load(Ordering::Relaxed));
            let due = last + limit;
            if Instant::now() >= due && self.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
            tokio::time::sleep_until(due.max(Instant::now() + limit / 4)).await;
        }
    }
}

/// Counts a request as in flight until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.started.fetch_add(1, Ordering::Relaxed);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream that records when bytes last moved. It first hands out again the bytes read to
/// tell the protocol, and gives the stream back (for [`linger`]) when the HTTP server drops it.
struct Watched {
    replay: Vec<u8>,
    replayed: usize,
    /// On HTTP/1: the head limit, for the envelope put into the server's own error answers.
    envelope_bare_errors: Option<usize>,
    /// An enveloped answer still to be written (its original was reported written).
    unsent: Vec<u8>,
    inner: Option<TcpStream>,
    give_back: Option<oneshot::Sender<TcpStream>>,
    activity: Arc<Activity>,
}

impl Watched {
    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Writes what is left of an enveloped answer; ready once it is all written.
    fn poll_unsent(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.unsent.is_empty() {
            let unsent = std::mem::take(&mut self.unsent);
            let polled = Pin::new(self.stream()?).poll_write(cx, &unsent);
            self.unsent = unsent;
            match polled {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.unsent.drain(..n);
                    self.activity.touch();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// When `data` is an error answer the HTTP/1 server made on its own, takes it in enveloped
    /// form (to be written by [`Watched::poll_unsent`]) and returns true.
    fn took_bare_error(&mut self, data: &[u8]) -> bool {
        let Some(head_cap) = self.envelope_bare_errors else {
            return false;
        };
        match enveloped(data, head_cap) {
            Some(answer) => {
                self.unsent = answer;
                true
            }
            None => false,
        }
    }
}

/// The answer `head` with the error envelope as its body, when `head` is a whole answer the
/// HTTP/1 server wrote on its own for a request it could not read: an error status, no body,
/// and the connection closing. pcq's own error answers always carry the envelope, so they
/// never match.
fn enveloped(head: &[u8], head_cap: usize) -> Option<Vec<u8>> {
    // Cheap checks first: this sees every write of an HTTP/1 connection.
    let error_status = head.starts_with(b"HTTP/1.1 ") && matches!(head.get(9), Some(b'4' | b'5'));
    if !error_status || !head.ends_with(b"\r\n\r\n") || head.len() > 1024 {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let status: u16 = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let lower = text.to_ascii_lowercase();
    let bare = status >= 400
        && lower.ends_with("\r\n\r\n")
        && lower.contains("\r\nconnection: close\r\n")
        && lower.contains("\r\ncontent-length: 0\r\n");
    if !bare {
        return None;
    }
    let fault = pcq_core::fault::ApiFault::unreadable_request(status, head_cap);
    let body = serde_json::to_vec(&fault).ok()?;
    let at = lower.find("\r\ncontent-length: 0\r\n")?;
    let mut answer = Vec::with_capacity(head.len() + body.len() + 64);
    answer.extend_from_slice(&head[..at]);
    answer.extend_from_slice(
        format!(
            "\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}",
            body.len()
        )
        .as_bytes(),
    );
    answer.extend_from_slice(&head[at + "\r\ncontent-length: 0".len()..]);
    answer.extend_from_slice(&body);
    Some(answer)
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let (Some(stream), Some(give_back)) = (self.inner.take(), self.give_back.take()) {
            let _ = give_back.send(stream);
        }
    }
}

/// Turns a missing stream into a ready error.
macro_rules! stream_or_ready {
    ($watched:expr) => {
        match $watched.stream() {
            Ok(stream) => stream,
            Err(e) => return Poll::Ready(Err(e)),
        }
    };
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.replayed < self.replay.len() {
            let rest = &self.replay[self.replayed..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            self.replayed += n;
            if self.replayed == self.replay.len() {
                self.replay = Vec::new();
                self.replayed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(stream_or_ready!(self)).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.poll_unsent(cx)?.is_pending() {
            return Poll::Pending;
        }
        if self.took_bare_error(data) {
            let _ = self.poll_unsent(cx)?;
            return Poll::Ready(Ok(data.len()));
        }
        let polled = Pin::new(stream_or_ready!(self)).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.poll_unsent(cx)?.is_pending() {
            return Poll::Pending;
        }
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next()) {
            if self.took_bare_error(only) {
                let _ = self.poll_unsent(cx)?;
                return Poll::Ready(Ok(only.len()));
            }
        }
        let polled = Pin::new(stream_or_ready!(self)).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.poll_unsent(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(stream_or_ready!(self)).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.poll_unsent(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(stream_or_ready!(self)).poll_shutdown(cx)
    }
}
