//! The service's connections: accepted, served over HTTP/1.1 with axum's router, and watched,
//! so slow and idle clients cannot use up the process's file descriptors.
//!
//! - A request's header must arrive within `SERVE_HEADER_TIMEOUT`, counted from the connection's
//!   start for its first request and from the first byte of each later one.
//! - A kept-alive connection without a request is closed after `SERVE_IDLE_TIMEOUT`.
//! - At most `SERVE_MAX_CONNECTIONS` connections are held. A new connection beyond that closes
//!   the connection without a request in progress that has been idle longest, so a health
//!   check still gets through a crowd of idle clients; when every connection has a request in
//!   progress, the new one is closed at once.
//!
//! A connection with a request in progress (a collection that runs for its whole budget) is
//! never timed out here.

use crate::config::ServeArgs;
use axum::Router;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long clients may take and how many connections are held (`SERVE_HEADER_TIMEOUT`,
/// `SERVE_IDLE_TIMEOUT`, `SERVE_MAX_CONNECTIONS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// The longest a request's header may take to arrive; a request's body read by a handler
    /// gets as long again.
    pub header_timeout: Duration,
    /// The longest a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// The most connections held at once (at least 1).
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    /// The defaults of `ghstats serve`: 10 s, 620 s, 256 connections.
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(620),
            max_connections: 256,
        }
    }
}

impl From<&ServeArgs> for ConnectionLimits {
    fn from(a: &ServeArgs) -> Self {
        ConnectionLimits {
            header_timeout: a.header_timeout,
            idle_timeout: a.idle_timeout,
            max_connections: a.max_connections.max(1) as usize,
        }
    }
}

/// When a handler must have read its request's body: the arrival of the request plus
/// [`ConnectionLimits::header_timeout`]. Put in every request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct BodyDeadline(pub Instant);

/// Why a connection was closed by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closed {
    HeaderTimeout,
    IdleTimeout,
    Evicted,
}

impl Closed {
    fn as_str(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header timeout",
            Closed::IdleTimeout => "idle timeout",
            Closed::Evicted => "connection limit",
        }
    }
}

/// What one connection is doing, shared by its reader, its service and its watchdog.
struct Activity {
    /// Requests handed to the router and not answered yet.
    in_flight: usize,
    /// When the header of the next request started (the connection's start for the first
    /// request, its first byte for later ones); `None` while idle or answering.
    header_since: Option<Instant>,
    /// When the connection became idle (its last answer).
    idle_since: Instant,
    /// A global sequence number of its last activity: the smallest is idle longest.
    last: u64,
}

struct Watched {
    activity: Mutex<Activity>,
    evicted: AtomicBool,
    changed: Notify,
}

impl Watched {
    fn lock(&self) -> MutexGuard<'_, Activity> {
        // The lock guards plain counters: a panic elsewhere leaves them usable.
        self.activity.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the connection has no request in progress and was not evicted yet.
    fn evictable(&self) -> Option<u64> {
        if self.evicted.load(Ordering::Relaxed) {
            return None;
        }
        let a = self.lock();
        (a.in_flight == 0).then_some(a.last)
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.changed.notify_one();
    }

    /// Bytes arrived: when no request is in progress, they start the next header.
    fn on_read(&self) {
        let mut a = self.lock();
        if a.in_flight == 0 && a.header_since.is_none() {
            a.header_since = Some(Instant::now());
            drop(a);
            self.changed.notify_one();
        }
    }

    fn on_request(&self) {
        let mut a = self.lock();
        a.in_flight += 1;
        a.header_since = None;
        drop(a);
        self.changed.notify_one();
    }

    fn on_answer(&self, tick: u64) {
        let mut a = self.lock();
        a.in_flight = a.in_flight.saturating_sub(1);
        a.idle_since = Instant::now();
        a.last = tick;
        drop(a);
        self.changed.notify_one();
    }

    /// Resolves when the connection must close: its header is late, it has been idle too
    /// long, or it was evicted. Never while a request is in progress.
    async fn expired(&self, limits: &ConnectionLimits) -> Closed {
        loop {
            if self.evicted.load(Ordering::Relaxed) {
                return Closed::Evicted;
            }
            let deadline = {
                let a = self.lock();
                if a.in_flight > 0 {
                    None
                } else if let Some(t) = a.header_since {
                    Some((t + limits.header_timeout, Closed::HeaderTimeout))
                } else {
                    Some((a.idle_since + limits.idle_timeout, Closed::IdleTimeout))
                }
            };
            match deadline {
                None => self.changed.notified().await,
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.changed.notified() => {}
                    }
                }
            }
        }
    }
}

/// The connections held, for the cap and the drain at shutdown.
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<Watched>>>,
    ticks: AtomicU64,
    emptied: Notify,
    last_refusal_log: Mutex<Option<Instant>>,
}

impl Registry {
    fn conns(&self) -> MutexGuard<'_, HashMap<u64, Arc<Watched>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tick(&self) -> u64 {
        self.ticks.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes room for a new connection and registers it; `None` when every connection held
    /// has a request in progress.
    fn admit(&self, max: usize) -> Option<(u64, Arc<Watched>)> {
        let mut conns = self.conns();
        let live = conns
            .values()
            .filter(|w| !w.evicted.load(Ordering::Relaxed))
            .count();
        if live >= max {
            let oldest = conns
                .values()
                .filter_map(|w| w.evictable().map(|last| (last, w)))
                .min_by_key(|(last, _)| *last)
                .map(|(_, w)| w.clone());
            match oldest {
                Some(w) => w.evict(),
                None => return None,
            }
        }
        let id = self.tick();
        let now = Instant::now();
        let watched = Arc::new(Watched {
            activity: Mutex::new(Activity {
                in_flight: 0,
                header_since: Some(now),
                idle_since: now,
                last: id,
            }),
            evicted: AtomicBool::new(false),
            changed: Notify::new(),
        });
        conns.insert(id, watched.clone());
        Some((id, watched))
    }

    fn remove(&self, id: u64) {
        let mut conns = self.conns();
        conns.remove(&id);
        if conns.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    async fn drained(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.conns().is_empty() {
                return;
            }
            emptied.await;
        }
    }

    /// Whether a refusal should be logged: at most one line every ten seconds.
    fn log_refusal(&self) -> bool {
        let mut last = self
            .last_refusal_log
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(10)) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// A TCP stream that tells its connection's watchdog when bytes arrive.
struct WatchedStream {
    inner: TcpStream,
    watched: Arc<Watched>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watched.on_read();
        }
        r
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Marks a request answered when dropped: on its answer, or when hyper drops it unanswered.
struct InFlight {
    watched: Arc<Watched>,
    registry: Arc<Registry>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.watched.on_answer(self.registry.tick());
    }
}

/// The router as hyper calls it, counting requests in progress on the connection.
#[derive(Clone)]
struct Service {
    router: Router,
    watched: Arc<Watched>,
    registry: Arc<Registry>,
    header_timeout: Duration,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Service {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn call(&self, req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        use tower_service::Service as _;
        self.watched.on_request();
        let guard = InFlight {
            watched: self.watched.clone(),
            registry: self.registry.clone(),
        };
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut()
            .insert(BodyDeadline(Instant::now() + self.header_timeout));
        let mut router = self.router.clone();
        Box::pin(async move {
            let response = router.call(req).await;
            drop(guard);
            response
        })
    }
}

/// Accepts connections on `listener` and serves `router` on each until `shutdown` resolves;
/// then stops accepting, lets requests in progress finish, closes idle connections, and
/// returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    if registry.log_refusal() {
                        tracing::warn!(error = %e, "Accepting a connection failed; retrying.");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some((id, watched)) = registry.admit(limits.max_connections) else {
            if registry.log_refusal() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "Every connection has a request in progress; a new connection was refused."
                );
            }
            drop(stream);
            continue;
        };
        let service = Service {
            router: router.clone(),
            watched: watched.clone(),
            registry: registry.clone(),
            header_timeout: limits.header_timeout,
        };
        let registry = registry.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, watched, service, limits, stop).await;
            registry.remove(id);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    registry.drained().await;
}

async fn serve_connection(
    stream: TcpStream,
    watched: Arc<Watched>,
    service: Service,
    limits: ConnectionLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let io = TokioIo::new(WatchedStream {
        inner: stream,
        watched: watched.clone(),
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = *stop.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "A connection ended with an error.");
                }
                return;
            }
            why = watched.expired(&limits) => {
                // Dropping the connection closes its socket.
                tracing::debug!(reason = why.as_str(), "Closing a connection.");
                return;
            }
            changed = stop.changed(), if !draining => {
                if changed.is_err() || *stop.borrow() {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Errors of one connection, not of the listener: the next accept may succeed at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_evicts_the_connection_idle_longest_and_spares_busy_ones() {
        let r = Registry::default();
        let (a, wa) = r.admit(2).unwrap();
        let (_b, wb) = r.admit(2).unwrap();
        // `a` has a request in progress: `b` is the only one that can go.
        wa.on_request();
        let (_c, wc) = r.admit(2).unwrap();
        assert!(wb.evicted.load(Ordering::Relaxed));
        assert!(!wa.evicted.load(Ordering::Relaxed));
        // `c` is busy too: a fourth connection finds none to close.
        wc.on_request();
        assert!(r.admit(2).is_none());
        // `a` answers: it is idle now, and goes for the next one.
        wa.on_answer(r.tick());
        assert!(r.admit(2).is_some());
        assert!(wa.evicted.load(Ordering::Relaxed));
        r.remove(a);
    }
}
