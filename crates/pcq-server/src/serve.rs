//! The connection loop: accepts TCP connections and serves HTTP/1.1 and HTTP/2 on them with the
//! connection limits of `[limits]`, and shuts down gracefully.
//!
//! - at most `max_connections` connections are served at once; further ones wait in the
//!   operating system's accept queue until one closes;
//! - HTTP/1: a request head must arrive within `header_read_timeout_seconds`, counted from the
//!   moment the connection waits for a request (slow-header clients are cut off), and may not
//!   exceed twice `max_header_bytes` (at least 8192 bytes) while it is read; HTTP/2 header lists
//!   have the same bound;
//! - a connection with no request being handled and no bytes moving for
//!   `idle_timeout_seconds` is shut down gracefully, and closed outright after as long again;
//! - on shutdown no new connection is accepted, idle connections close, and in-flight requests
//!   are answered before [`serve`] returns.

use std::convert::Infallible;
use std::future::Future;
use std::io;
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
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::LimitsConfig;

/// The smallest read buffer hyper accepts.
const MIN_BUF_BYTES: usize = 8192;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets every
/// connection finish its in-flight requests, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &LimitsConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let builder = Arc::new(connection_builder(limits));
    let idle_timeout = limits.idle_timeout();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        // A free slot first, so that connections beyond the limit stay in the accept queue.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(io::Error::other)?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
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
            serve_connection(stream, &builder, router, idle_timeout, stopping).await;
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

/// The HTTP/1 and HTTP/2 settings of every connection.
fn connection_builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
    let head_cap = limits.max_header_bytes.saturating_mul(2).max(MIN_BUF_BYTES);
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

async fn serve_connection(
    stream: TcpStream,
    builder: &auto::Builder<TokioExecutor>,
    router: Router,
    idle_timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let in_service = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let handling = InFlight::start(in_service.clone());
        let answer = router.clone().oneshot(request);
        async move {
            let response = answer.await;
            drop(handling);
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let mut connection = pin!(builder.serve_connection_with_upgrades(io, service));
    let mut idle_strikes = 0;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stopping.wait_for(|stop| *stop), if !*stopping.borrow() => {
                connection.as_mut().graceful_shutdown();
            }
            () = activity.idle_for(idle_timeout) => {
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
}

/// What a connection is doing: when bytes last moved and how many requests are being handled.
struct Activity {
    opened: Instant,
    last_micros: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            last_micros: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
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
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream that records when bytes last moved.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
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
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
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
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
