//! The serve loop: hyper's HTTP/1.1 on tokio, hosting any [`App`] on a set of listeners.
//!
//! Per request, the server:
//! 1. checks the request line and header fields against the limits, answering `414` or `431`
//!    without calling the app, and a declared body against `limit_request_body` (`413`);
//! 2. maps hyper's request head and body onto an [`Environ`] with [`Environ::from_parts`],
//!    answering `400` without calling the app when the request breaks REQ-ENV-3, REQ-ENV-6 or
//!    REQ-ENV-13 (a `Content-Length` hyper removed from beside `Transfer-Encoding` is put back
//!    first, from what the `framing` module saw in the bytes under hyper);
//! 3. mounts the app at the configured root path (REQ-PATH-6), answering `404` without calling
//!    the app when the path lies outside it;
//! 4. runs [`prepare_with`], which calls the app and applies the rules every server shares
//!    (REQ-SRV-4..8, REQ-ERR-4), and hands the result to hyper, whose framing follows the
//!    body's exact length: `Content-Length` when known, chunked otherwise.
//!
//! A body that fails after the head went out makes hyper drop the connection, so the client
//! never sees a complete-looking response (REQ-ERR-3).
//!
//! A request body that fails because of the client (hyper refuses its framing, it ends early,
//! a deadline or the size limit cuts it off) fails the app's read with an `InputError`
//! (REQ-INPUT-8); an app that passes that error on gets its `400`, `408` or `413`, from
//! [`prepare_with`], and the connection closes after it.
//!
//! The deadlines: `header_timeout` and `keepalive` run on the server's one-second clock
//! ([`drive`]); `body_timeout` and `min_body_rate` run inside [`RequestBody`] while the app
//! waits for a chunk, `write_timeout` inside the connection's I/O while a write waits (both in
//! the `deadline` module), and `request_timeout` around [`prepare_with`]'s future
//! ([`answer_within`], chosen per request only when the setting is on). `worker_connections`
//! is a semaphore the accept loop takes a permit from before each accept.
//!
//! The access log and the request hooks share one per-request record, made only when one of
//! them is on; a server with neither pays nothing for them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::future::{ready, Either as EitherFuture};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
#[cfg(feature = "http2")]
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioIo, TokioTimer};
use rwgi::body::{Body, BoxBody};
use rwgi::disconnect::Departure;
use rwgi::environ::{ConnectionInfo, ServerInfo};
use rwgi::http::header::{CONTENT_LENGTH, TRAILER};
use rwgi::http::uri::Scheme;
use rwgi::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use rwgi::input::InputError;
use rwgi::interim::FlushHead;
use rwgi::lifespan::Running;
use rwgi::limits::Limits as StatedLimits;
use rwgi::outcome::{Finisher, Outcome as ResponseOutcome};
use rwgi::server::{prepare_with, Failure, Prepared, ResponseBody};
use rwgi::trailers::Trailers;
use rwgi::{App, Environ, Error, Input};
use rwgi_middleware::ProxyHeaders;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::connection_io::ConnectionIo;
#[cfg(feature = "http2")]
use crate::connection_io::Replayed;
use crate::deadline::{bare_lf_after_last_chunk, body_error, too_large, BodyClock, BodyPace};
use crate::files::FileReader;
use crate::framing::SharedTracker;
use crate::hooks::{Ending, Hooks, Outcome, RequestInfo};
use crate::listen::{Listener, SocketFile};
use crate::log::{AccessLog, Record};
use crate::tls::Acceptor;
use crate::upgrade::Handoff;
use crate::upgrade::UpgradedIo;

/// How a server stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stop {
    /// Serving.
    Running,
    /// Stop accepting; let requests in flight finish within the graceful timeout.
    Graceful,
    /// Stop now: connections are dropped.
    Immediate,
}

/// Why [`serve`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// It was told to stop.
    Told,
    /// It served its `max_requests`.
    MaxRequests,
}

/// Everything the serve loop needs besides the app and the listeners.
#[derive(Debug)]
pub(crate) struct ServeConfig {
    pub(crate) root_path: Option<String>,
    /// Rewrites each environ from a trusted proxy's forwarding headers.
    pub(crate) proxy_headers: Option<ProxyHeaders>,
    pub(crate) keepalive: Duration,
    pub(crate) header_timeout: Duration,
    /// Zero: off.
    pub(crate) body_timeout: Duration,
    /// Bytes per second; zero: off.
    pub(crate) min_body_rate: u64,
    pub(crate) min_body_rate_grace: Duration,
    /// Zero: off.
    pub(crate) write_timeout: Duration,
    /// Zero: off.
    pub(crate) request_timeout: Duration,
    /// The most connections open at once.
    pub(crate) worker_connections: usize,
    pub(crate) graceful_timeout: Duration,
    pub(crate) limit_request_line: usize,
    pub(crate) limit_request_fields: usize,
    pub(crate) limit_request_field_size: usize,
    pub(crate) limit_request_body: u64,
    /// Requests to serve before stopping; zero: no limit.
    pub(crate) max_requests: u64,
    pub(crate) access_log: Option<Arc<AccessLog>>,
    pub(crate) hooks: Option<Arc<dyn Hooks>>,
    /// The app's lifespan, started: its state goes into every environ, and it shuts down once
    /// the connections are closed (spec §14.3).
    pub(crate) lifespan: Option<Arc<Running>>,
    /// Whether every environ carries a response outcome handle (spec §14.4).
    pub(crate) outcome: bool,
    /// HTTPS on the TCP listeners.
    pub(crate) tls: Option<Acceptor>,
    /// What the app is told about the server (REQ-ENV-9).
    pub(crate) server: ServerInfo,
}

/// Serves `app` on `listeners` until `stop` says so (or `max_requests` were served).
///
/// Must run inside a tokio runtime with I/O and time enabled. On a graceful stop the listeners
/// close at once, idle connections close, and connections with a request in flight finish that
/// response and then close; after `graceful_timeout` the rest are abandoned (they end when the
/// runtime does). Accept errors (out of file descriptors, say) are logged and do not stop the
/// server.
pub(crate) async fn serve<A>(
    listeners: Vec<Listener>,
    app: A,
    config: ServeConfig,
    mut stop: watch::Receiver<Stop>,
) -> io::Result<Stopped>
where
    A: App + 'static,
{
    let http = http_builder(&config);
    let observed = config.access_log.is_some() || config.hooks.is_some() || config.outcome;
    let observers = observed.then(|| {
        Arc::new(Observers {
            log: config.access_log.clone(),
            hooks: config.hooks.clone(),
            outcome: config.outcome,
            timed: config.hooks.is_some()
                || config
                    .access_log
                    .as_deref()
                    .is_some_and(|log| log.format().timed()),
        })
    });
    let header_ticks = match seconds(config.header_timeout) {
        0 => 0,
        header => header + 1,
    };
    let shared = Arc::new(Shared {
        app,
        server_info: config.server.clone().with_limits(stated_limits(&config)),
        lifespan: config.lifespan.clone(),
        root_path: config.root_path.clone().map(String::into_boxed_str),
        proxy_headers: config.proxy_headers.clone(),
        observers,
        limits: Limits {
            line: config.limit_request_line,
            field: config.limit_request_field_size,
            lines: config
                .limit_request_line
                .min(config.limit_request_field_size),
            body: match config.limit_request_body {
                0 => u64::MAX,
                limit => limit,
            },
        },
        head_fields: config.limit_request_fields,
        max_requests: config.max_requests,
        served: AtomicU64::new(0),
        served_enough: Notify::new(),
        http,
        connections: Arc::default(),
        keepalive_ticks: seconds(config.keepalive),
        header_ticks,
        clock: AtomicU64::new(0),
        tls: config.tls.clone(),
        #[cfg(any(feature = "tls", feature = "http2"))]
        header_timeout: config.header_timeout,
        body_pace: BodyPace::new(
            config.body_timeout,
            config.min_body_rate,
            config.min_body_rate_grace,
        ),
        write_timeout: config.write_timeout,
        request_timeout: config.request_timeout,
        slots: Arc::new(Semaphore::new(
            config.worker_connections.min(Semaphore::MAX_PERMITS),
        )),
    });
    // The ticker: advances the clock and wakes every connection once a second, so that idle
    // ones notice they have been idle for `keepalive`, and late ones `header_timeout`.
    let ticker = (shared.keepalive_ticks != 0 || shared.header_ticks != 0).then(|| {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                shared.clock.fetch_add(1, Ordering::Relaxed);
                shared.connections.wake_all();
            }
        })
    });

    // Attach the listeners to this runtime; keep the socket files to remove them at the end.
    let mut accepting = Vec::with_capacity(listeners.len());
    let mut files: Vec<SocketFile> = Vec::new();
    for listener in listeners {
        match listener {
            Listener::Tcp(listener) => {
                let listener = TcpListener::from_std(listener)?;
                accepting.push(tokio::spawn(accept_until(
                    listener,
                    Arc::clone(&shared),
                    stop.clone(),
                )));
            }
            Listener::Unix(listener, file) => {
                files.extend(file);
                let listener = UnixListener::from_std(listener)?;
                accepting.push(tokio::spawn(accept_until(
                    listener,
                    Arc::clone(&shared),
                    stop.clone(),
                )));
            }
        }
    }

    let mut stopped = Stopped::Told;
    if *stop.borrow() == Stop::Running {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop != Stop::Running) => {}
            () = shared.served_enough.notified() => stopped = Stopped::MaxRequests,
        }
    }
    for accept in &accepting {
        accept.abort();
    }
    for accept in accepting {
        // The listener is closed once its task is gone.
        let _ = accept.await;
    }
    drop(files);
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    let connections = &shared.connections;
    connections.stop();
    if *stop.borrow() != Stop::Immediate {
        let graceful = tokio::time::timeout(config.graceful_timeout, connections.closed());
        tokio::select! {
            finished = graceful => if finished.is_err() {
                tracing::warn!(
                    "gave up on {} connection(s) still busy after {:?}",
                    connections.open(),
                    config.graceful_timeout
                );
            },
            _ = stop.wait_for(|stop| *stop == Stop::Immediate) => {}
        }
    }
    // After the last request in flight (REQ-LIFE-4).
    if let Some(running) = &config.lifespan {
        crate::lifespan::shutdown(running).await;
    }
    Ok(stopped)
}

/// A duration in whole seconds, rounded up: ticks of the server's clock.
fn seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// The limits the server enforces, as apps read them in its `ServerInfo` (REQ-LIMIT-1): built
/// once, shared by every connection.
fn stated_limits(config: &ServeConfig) -> StatedLimits {
    let mut limits = StatedLimits::new()
        .with_request_line(config.limit_request_line)
        .with_header_fields(config.limit_request_fields)
        .with_header_field(config.limit_request_field_size);
    if config.limit_request_body != 0 {
        limits = limits.with_body(config.limit_request_body);
    }
    let on = |timeout: Duration| (!timeout.is_zero()).then_some(timeout);
    if let Some(timeout) = on(config.header_timeout) {
        limits = limits.with_header_timeout(timeout);
    }
    if let Some(timeout) = on(config.body_timeout) {
        limits = limits.with_body_timeout(timeout);
    }
    if let Some(timeout) = on(config.write_timeout) {
        limits = limits.with_write_timeout(timeout);
    }
    if let Some(timeout) = on(config.request_timeout) {
        limits = limits.with_request_timeout(timeout);
    }
    limits
}

/// The state every connection of one server shares.
struct Shared<A> {
    app: A,
    /// What every connection tells the app about the server, its limits included.
    server_info: ServerInfo,
    /// The app's lifespan state, handed to every request.
    lifespan: Option<Arc<Running>>,
    root_path: Option<Box<str>>,
    proxy_headers: Option<ProxyHeaders>,
    observers: Option<Arc<Observers>>,
    limits: Limits,
    /// The most fields hyper parses in a head: the framing tracker parses as many.
    head_fields: usize,
    max_requests: u64,
    served: AtomicU64,
    served_enough: Notify,
    http: Http,
    connections: Arc<Connections>,
    /// `keepalive` in whole seconds (rounded up): ticks of the clock; zero when keep-alive is
    /// off.
    keepalive_ticks: u64,
    /// How many ticks a connection may wait for its first request head: `header_timeout` in
    /// whole seconds, rounded up, and one more (a tick may come right after the connection
    /// opened, so the wait is never shorter than the setting); zero: no limit.
    header_ticks: u64,
    /// Seconds since the server started, advanced by the ticker.
    clock: AtomicU64,
    tls: Option<Acceptor>,
    /// Bounds a TLS handshake, and the wait for the bytes that tell HTTP/2 from HTTP/1.1, too.
    #[cfg(any(feature = "tls", feature = "http2"))]
    header_timeout: Duration,
    /// `body_timeout` and `min_body_rate`.
    body_pace: BodyPace,
    /// `write_timeout`; zero: off.
    write_timeout: Duration,
    /// `request_timeout`; zero: off.
    request_timeout: Duration,
    /// One permit per connection a worker may have open (`worker_connections`).
    slots: Arc<Semaphore>,
}

thread_local! {
    /// Set when a request starts, a response chunk goes out or a response ends: the connection
    /// being polled on this thread is active. The connection task clears it before each poll
    /// of hyper and reads it after (all three happen inside that poll, on this thread).
    static ACTIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl<A> Shared<A> {
    /// How many ticks an HTTP/1.1 connection may stay idle between requests: `keepalive`, or
    /// `header_timeout` when shorter, since hyper is reading the next head all that time.
    fn http1_idle_ticks(&self) -> u64 {
        match (self.keepalive_ticks, self.header_ticks) {
            (0, _) => 0,
            (keepalive, 0) => keepalive,
            (keepalive, header) => keepalive.min(header),
        }
    }
}

/// Marks the connection being polled as active (see [`ACTIVE`]).
#[inline(always)]
fn mark_active() {
    ACTIVE.with(|active| active.set(true));
}

/// The HTTP stack: HTTP/1.1, and (the `http2` feature) HTTP/2 for a connection that opens
/// with the HTTP/2 preface.
struct Http {
    http1: http1::Builder,
    #[cfg(feature = "http2")]
    http2: http2::Builder<hyper_util::rt::TokioExecutor>,
}

fn http_builder(config: &ServeConfig) -> Http {
    let mut http1 = http1::Builder::new();
    http1.timer(TokioTimer::new());
    // The header timeout runs on the ticker's clock instead ([`drive`]).
    http1.header_read_timeout(None);
    http1.keep_alive(!config.keepalive.is_zero());
    http1.max_headers(config.limit_request_fields);
    #[cfg(feature = "http2")]
    let http2 = {
        let mut http2 = http2::Builder::new(hyper_util::rt::TokioExecutor::new());
        http2.timer(TokioTimer::new()).max_header_list_size(
            u32::try_from(config.limit_request_fields * config.limit_request_field_size)
                .unwrap_or(u32::MAX),
        );
        http2
    };
    Http {
        http1,
        #[cfg(feature = "http2")]
        http2,
    }
}

/// The request limits the server checks itself (hyper counts the header fields).
#[derive(Clone, Copy, Debug)]
struct Limits {
    line: usize,
    field: usize,
    /// The smaller of the two: a head no longer than this has no line over either.
    lines: usize,
    /// `u64::MAX` for no limit.
    body: u64,
}

/// What sees each request end: the access log and the hooks.
#[derive(Debug)]
struct Observers {
    log: Option<Arc<AccessLog>>,
    hooks: Option<Arc<dyn Hooks>>,
    /// Whether each request's environ gets a response outcome handle.
    outcome: bool,
    /// Whether anyone needs each request's duration: the hooks, or the log's format.
    timed: bool,
}

/// One request's record, reported to the observers when it is dropped: when the response body
/// is finished or dropped, or when hyper drops the request before the app answered.
struct Tracked {
    record: Record,
    observers: Arc<Observers>,
    /// Reports the outcome to the app's callbacks, when the app was offered the handle.
    finisher: Option<Finisher>,
}

impl Tracked {
    fn info(&self) -> RequestInfo<'_> {
        RequestInfo {
            method: &self.record.method,
            target: &self.record.target,
            version: self.record.version,
            peer: self.record.peer,
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(finisher) = self.finisher.take() {
            let record = &self.record;
            finisher.finish(ResponseOutcome::new(
                record.ending,
                record.status,
                record.sent,
            ));
        }
        let duration = self
            .record
            .started
            .map_or(Duration::ZERO, |started| started.elapsed());
        if let Some(log) = &self.observers.log {
            log.log(&self.record, duration);
        }
        if let Some(hooks) = &self.observers.hooks {
            let outcome = Outcome {
                status: self.record.status,
                sent: self.record.sent,
                duration,
                ending: self.record.ending,
            };
            hooks.after_request(&self.info(), &outcome);
        }
    }
}

/// The connections a server has open, and the signal that tells them to shut down.
///
/// Every wake-up of a busy connection polls the stop signal. A `tokio::sync::watch` receiver
/// takes a lock each time it is polled; a [`Stopping`] costs an atomic load and a waker
/// comparison, and takes the lock only when its task's waker changes.
#[derive(Default)]
struct Connections {
    stopping: AtomicBool,
    /// The waker of each open connection, by its number; `None` until it is first polled.
    open: Mutex<HashMap<u64, Option<Waker>>>,
    next: AtomicU64,
    /// Signalled whenever the last open connection closes; [`Connections::closed`] waits on it.
    all_closed: Notify,
}

impl Connections {
    /// Counts a new connection as open and returns the signal it watches.
    fn register(self: &Arc<Self>) -> Stopping {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.wakers().insert(id, None);
        Stopping {
            connections: Arc::clone(self),
            id,
            waker: None,
        }
    }

    /// Tells every open connection to shut down.
    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for waker in self.wakers().values().flatten() {
            waker.wake_by_ref();
        }
    }

    /// Wakes every open connection (for the keep-alive check).
    fn wake_all(&self) {
        for waker in self.wakers().values().flatten() {
            waker.wake_by_ref();
        }
    }

    /// How many connections are open.
    fn open(&self) -> usize {
        self.wakers().len()
    }

    /// Completes once every connection has closed.
    async fn closed(&self) {
        // `notify_one` keeps its permit when nobody waits yet, so a close between the check
        // and the wait is not missed.
        while self.open() > 0 {
            self.all_closed.notified().await;
        }
    }

    fn wakers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Option<Waker>>> {
        // The map stays consistent whatever panicked while it was locked: every update is a
        // single insert or remove.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connection's stop signal: completes once the server shuts down. Dropping it counts the
/// connection as closed.
struct Stopping {
    connections: Arc<Connections>,
    id: u64,
    /// The waker registered for this connection, to skip the lock while it stays the same.
    waker: Option<Waker>,
}

impl Stopping {
    /// Registers the connection task's waker; only its first poll, or a new waker, gets here.
    #[cold]
    fn register(&mut self, waker: &Waker) {
        self.connections
            .wakers()
            .insert(self.id, Some(waker.clone()));
        self.waker = Some(waker.clone());
    }
}

impl Future for Stopping {
    type Output = ();

    // Inlined, with the registration kept out of line: the common poll is two comparisons and
    // a load, in the connection task's own code.
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let current = self
            .waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        if !current {
            self.register(cx.waker());
        }
        // After registering: a `stop` that this load misses wakes the waker just registered.
        if self.connections.stopping.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Stopping {
    fn drop(&mut self) {
        let mut wakers = self.connections.wakers();
        wakers.remove(&self.id);
        if wakers.is_empty() {
            self.connections.all_closed.notify_one();
        }
    }
}

/// An accepted connection of either kind. One type for both, so that the HTTP stack is compiled
/// once rather than once per kind of socket: with a single copy the compiler inlines more of
/// it, which measured 83 instructions per request fewer.
type Plain = tokio_util::either::Either<tokio::net::TcpStream, tokio::net::UnixStream>;

/// An accepted connection as hyper serves it: the socket, or TLS over a TCP socket.
#[cfg(feature = "tls")]
type Connection =
    tokio_util::either::Either<Plain, tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;

/// The connection to serve: `io` itself, or `io` after a TLS handshake (bounded by the header
/// timeout) when the server has an acceptor; `None` when the handshake failed.
#[cfg(feature = "tls")]
async fn secure(io: Plain, tls: Option<&Acceptor>, timeout: Duration) -> Option<Connection> {
    use tokio_util::either::Either;

    match (io, tls) {
        (Either::Left(tcp), Some(acceptor)) => {
            let handshake = acceptor.0.accept(tcp);
            let result = if timeout.is_zero() {
                Ok(handshake.await)
            } else {
                tokio::time::timeout(timeout, handshake).await
            };
            match result {
                Ok(Ok(tls)) => Some(Either::Right(tls)),
                Ok(Err(error)) => {
                    tracing::debug!("TLS handshake failed: {error}");
                    None
                }
                Err(_) => None,
            }
        }
        (io, _) => Some(Either::Left(io)),
    }
}

/// A listener as [`accept_until`] uses it: both kinds of socket with one accept loop.
trait Accept: Send + 'static {
    /// The next connection, with the local and peer addresses when there are any.
    fn accept(
        &self,
    ) -> impl Future<Output = io::Result<(Plain, Option<SocketAddr>, Option<SocketAddr>)>> + Send;
}

impl Accept for TcpListener {
    async fn accept(&self) -> io::Result<(Plain, Option<SocketAddr>, Option<SocketAddr>)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        // Responses are written whole; waiting for an ACK before the next write only adds
        // latency. Failing to set it (or to read the local address) only means the socket is
        // already dead, which hyper finds out soon enough.
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        Ok((Plain::Left(stream), local, Some(peer)))
    }
}

impl Accept for UnixListener {
    async fn accept(&self) -> io::Result<(Plain, Option<SocketAddr>, Option<SocketAddr>)> {
        let (stream, _) = UnixListener::accept(self).await?;
        Ok((Plain::Right(stream), None, None))
    }
}

async fn accept_until<L, A>(listener: L, shared: Arc<Shared<A>>, mut stop: watch::Receiver<Stop>)
where
    L: Accept,
    A: App + 'static,
{
    loop {
        // A free connection slot first: past `worker_connections`, new connections wait in the
        // kernel's listen queue until one closes.
        let permit = tokio::select! {
            _ = stop.wait_for(|stop| *stop != Stop::Running) => return,
            permit = Arc::clone(&shared.slots).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            _ = stop.wait_for(|stop| *stop != Stop::Running) => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((io, local, peer)) => {
                // TLS applies to TCP listeners, whose connections have a local address.
                let scheme = if shared.tls.is_some() && local.is_some() {
                    Scheme::HTTPS
                } else {
                    Scheme::HTTP
                };
                let mut connection = ConnectionInfo::new(scheme).server(shared.server_info.clone());
                if let Some(local) = local {
                    connection = connection.local_addr(local);
                }
                if let Some(peer) = peer {
                    connection = connection.peer_addr(peer);
                }
                let stopping = shared.connections.register();
                tokio::spawn(serve_connection(
                    io,
                    connection,
                    peer,
                    Arc::clone(&shared),
                    stopping,
                    permit,
                ));
            }
            // The client gave up before we accepted: nothing to do.
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                tracing::error!("accept failed: {error}");
                // Out of file descriptors, most likely: retrying at once would spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// Hands the framing tracker a request hyper parsed, with the framing hyper read in it: the
/// exact length of its body (none for a chunked one), and whether hyper may hand the connection
/// over after it (`upgrade`). Returns the length of its head, when the tracker placed it.
#[inline(always)]
fn track(tracked: &SharedTracker, request: &mut Request<Incoming>, upgrade: bool) -> Option<usize> {
    let length = request.body().size_hint().exact();
    let version = request.version();
    tracked.request(version, length, upgrade, request.headers_mut())
}

async fn serve_connection<A>(
    io: Plain,
    connection: ConnectionInfo,
    peer: Option<SocketAddr>,
    shared: Arc<Shared<A>>,
    mut stopping: Stopping,
    _permit: OwnedSemaphorePermit,
) where
    A: App + 'static,
{
    let started = AtomicBool::new(false);
    // An HTTP/1.1 connection carries one request at a time, and a client that goes away takes
    // all of them: one departure serves the connection. The extensions are offered once per
    // connection, so a request pays nothing for them (REQ-DISC-1, REQ-INTERIM-3, REQ-TRAIL-3,
    // REQ-TRAIL-4).
    let departure = Departure::new();
    let connection = connection
        .offer(departure.disconnect())
        .offer(FlushHead::new())
        .offer(Trailers::new());
    // The connection's upgrade offer, if a request asks for one (the `upgrade` module).
    let handoff = Handoff::default();
    // The framing tracker, which the service catches up with each request (the `framing`
    // module).
    let tracked = SharedTracker::new(shared.head_fields);
    // Requests borrow what the connection owns: no reference count changes per request.
    let service = service_fn(|mut request: Request<Incoming>| {
        started.store(true, Ordering::Relaxed);
        // hyper marks a request with an `Upgrade` header; an ordinary one has no extensions.
        let upgrade = request.extensions().get::<OnUpgrade>().is_some();
        let head_len = track(&tracked, &mut request, upgrade);
        if upgrade {
            handoff.offer(&mut request);
        }
        respond(
            &shared,
            &shared.app,
            &connection,
            request,
            head_len,
            departure.clone(),
            false,
        )
    });
    #[cfg(feature = "tls")]
    let Some(io) = secure(io, shared.tls.as_ref(), shared.header_timeout).await
    else {
        return;
    };
    // The first bytes tell HTTP/2 from HTTP/1.1; read until they do (the whole preface, or a
    // byte that differs from it: the first, for an HTTP/1.1 request).
    #[cfg(feature = "http2")]
    let mut io = io;
    #[cfg(feature = "http2")]
    let Some((opening, http2)) = read_opening(&mut io, shared.header_timeout).await
    else {
        return;
    };
    // Reads go through the framing tracker, writes through the write deadline: both inline
    // into hyper's calls. An HTTP/2 connection's preface stops the tracker at once.
    let io = ConnectionIo::new(io, shared.write_timeout, tracked.clone());
    // The opening bytes, read already: the tracker sees them now, hyper first.
    #[cfg(feature = "http2")]
    let io = {
        tracked.read(&opening);
        Replayed::new(io, opening)
    };
    #[cfg(feature = "http2")]
    if http2 {
        serve_http2(io, &shared, &connection, peer, &mut stopping, &started).await;
        return;
    }
    // hyper's connection is `Unpin` and stays where it is, movable, so that its socket can be
    // taken back, after a `101` or (without the `http2` feature) to answer an HTTP/2 preface.
    // The plain connection, not hyper's `with_upgrades()` wrapper, whose layout costs every
    // request (BENCHMARKS.md): after a `101` hyper leaves the connection whole.
    let mut served = shared
        .http
        .http1
        .serve_connection(TokioIo::new(io), service);
    let Some(result) = drive(
        Pin::new(&mut served),
        |http| http.graceful_shutdown(),
        &mut stopping,
        &started,
        &shared,
        shared.http1_idle_ticks(),
    )
    .await
    else {
        return;
    };
    if let Err(error) = result {
        #[cfg(not(feature = "http2"))]
        if error.is_parse_version_h2() {
            refuse_http2(served.into_parts().io.into_inner(), peer).await;
            return;
        }
        connection_failed(peer, &error);
    }
    // A connection handed over after a `101`: the app's handler runs on it here, keeping the
    // connection's slot and its place among the open connections.
    handoff
        .run(peer, move || {
            let parts = served.into_parts();
            UpgradedIo::new(parts.io.into_inner(), parts.read_buf)
        })
        .await;
}

/// Serves a connection until it ends, with keep-alive, the header timeout and graceful stop:
/// `graceful` asks the connection to finish what is in flight and close, `idle` is how many
/// ticks it may go without a request, response chunk or response end once it started (zero: no
/// limit). `None` when the connection's first request head did not come within
/// `header_timeout`: the caller drops the connection.
///
/// The timeouts run on the ticker's clock, which the connection reads when it wakes (the ticker
/// wakes it every second), rather than on a timer of their own: hyper's header-read timer, armed
/// and disarmed around every request head, and the read more per request hyper makes while it
/// is on, measured about 1,460 instructions per request.
async fn drive<A, C, T, E>(
    mut http: Pin<&mut C>,
    graceful: impl Fn(Pin<&mut C>),
    stopping: &mut Stopping,
    started: &AtomicBool,
    shared: &Shared<A>,
    idle: u64,
) -> Option<Result<T, E>>
where
    A: App,
    C: Future<Output = Result<T, E>>,
{
    let mut stop = false;
    let mut draining = false;
    let mut last_active = shared.clock.load(Ordering::Relaxed);
    poll_fn(|cx| {
        stop = stop || Pin::new(&mut *stopping).poll(cx).is_ready();
        if !started.load(Ordering::Relaxed) {
            // The first request head is late. hyper would wait on: a connection that has sent
            // part of a head is not idle to it, and a graceful stop leaves it open.
            if shared.header_ticks != 0
                && shared.clock.load(Ordering::Relaxed) - last_active >= shared.header_ticks
            {
                return Poll::Ready(None);
            }
        } else if idle != 0 && !stop && !draining {
            // Idle for too long: closes as on a stop, at once between requests, or after the
            // one in flight.
            stop = shared.clock.load(Ordering::Relaxed) - last_active >= idle;
        }
        // Finish the request in flight, if any, then close. A connection accepted just before
        // the stop is not closed before its first request: hyper counts it idle and would close
        // it unread, failing a request its client already sent (a worker recycled by
        // `max_requests` or replaced on `HUP` must fail none). The header timeout bounds the wait.
        if stop && !draining && started.load(Ordering::Relaxed) {
            graceful(http.as_mut());
            draining = true;
        }
        ACTIVE.with(|active| active.set(false));
        let poll = http.as_mut().poll(cx);
        if ACTIVE.with(std::cell::Cell::get) {
            last_active = shared.clock.load(Ordering::Relaxed);
        }
        if poll.is_pending() && stop && !draining && started.load(Ordering::Relaxed) {
            // The first request arrived during this poll.
            graceful(http.as_mut());
            draining = true;
        }
        poll.map(Some)
    })
    .await
}

/// How an HTTP/2 connection opens (RFC 9113 §3.4).
#[cfg(feature = "http2")]
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The most bytes [`read_opening`] reads: a request head of the usual size, which hyper then
/// takes from it, in one read; the rest of a longer one, hyper reads itself.
#[cfg(feature = "http2")]
const OPENING_READ: usize = 4096;

/// Reads the first bytes of a connection until they show whether it opens with the HTTP/2
/// preface: the bytes read, and whether it does. `None` when the client closes first, or sends
/// nothing telling within `timeout` (zero: no limit), as hyper closes a connection whose
/// request head does not come in time. One read, for an HTTP/1.1 request: its first byte
/// already differs from the preface. The header timeout bounds this wait and then hyper's
/// read of the head, each on its own.
#[cfg(feature = "http2")]
async fn read_opening<T>(io: &mut T, timeout: Duration) -> Option<(Bytes, bool)>
where
    T: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;

    let read = async {
        let mut opening = bytes::BytesMut::with_capacity(OPENING_READ);
        loop {
            if io.read_buf(&mut opening).await.ok()? == 0 {
                return None;
            }
            let seen = opening.len().min(PREFACE.len());
            if opening[..seen] != PREFACE[..seen] {
                return Some((opening.freeze(), false));
            }
            if seen == PREFACE.len() {
                return Some((opening.freeze(), true));
            }
        }
    };
    if timeout.is_zero() {
        read.await
    } else {
        tokio::time::timeout(timeout, read).await.ok().flatten()
    }
}

/// Serves HTTP/2 on a connection that opened with its preface: each stream's request runs as a
/// task of its own, which must own what it uses, and has a departure of its own (a stream can
/// be reset alone).
#[cfg(feature = "http2")]
async fn serve_http2<A, I>(
    io: I,
    shared: &Arc<Shared<A>>,
    connection: &ConnectionInfo,
    peer: Option<SocketAddr>,
    stopping: &mut Stopping,
    started: &AtomicBool,
) where
    A: App + 'static,
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    // The preface was the client's first word: from here on, a stop closes the connection
    // once its streams are done (hyper's GOAWAY tells the client which ones were taken), and
    // keep-alive counts from it, where HTTP/1.1 waits for a first request.
    started.store(true, Ordering::Relaxed);
    let service = service_fn(|request: Request<Incoming>| {
        // The answer's future owns its handle on the app, and hyper moves it into a task of
        // its own: boxed, that move (and each one after) copies a pointer, not the future.
        Box::pin(respond(
            shared,
            OwnedApp(Arc::clone(shared)),
            connection,
            request,
            None,
            Departure::new(),
            true,
        ))
    });
    let served = std::pin::pin!(shared
        .http
        .http2
        .serve_connection(TokioIo::new(io), service));
    // Started from its preface: never late for a first head.
    let result = drive(
        served,
        |http| http.graceful_shutdown(),
        stopping,
        started,
        shared,
        shared.keepalive_ticks,
    )
    .await;
    if let Some(Err(error)) = result {
        connection_failed(peer, &error);
    }
}

/// Answers an HTTP/2 connection preface sent to this HTTP/1-only server with `505` and closes,
/// where hyper closes without a word (it has no answer for that parse error).
///
/// What it costs: nothing on a connection that speaks HTTP/1. hyper recognises the preface
/// itself, as the first bytes of a connection it cannot parse as a request, and fails the
/// connection with [`hyper::Error::is_parse_version_h2`]; only then is the socket taken back
/// from hyper's connection (which is why that connection is kept movable) and the answer
/// written. No peek, no extra read, no check per request. With the `http2` feature the preface
/// selects HTTP/2 instead, and is served.
#[cfg(not(feature = "http2"))]
#[cold]
async fn refuse_http2<T: tokio::io::AsyncWrite + Unpin>(mut io: T, peer: Option<SocketAddr>) {
    use tokio::io::AsyncWriteExt;

    const ANSWER: &[u8] = b"HTTP/1.1 505 HTTP Version Not Supported\r\n\
        connection: close\r\n\
        content-type: text/plain; charset=utf-8\r\n\
        content-length: 27\r\n\r\n\
        HTTP Version Not Supported\n";
    tracing::debug!(
        "connection from {}: an HTTP/2 preface, answered 505",
        Peer(peer)
    );
    // `write_timeout` bounds both, through the connection's `ConnectionIo`.
    if io.write_all(ANSWER).await.is_ok() {
        let _ = io.shutdown().await;
    }
}

/// Logs why hyper gave up on a connection, unless a response body failed: that was reported
/// when it failed.
fn connection_failed(peer: Option<SocketAddr>, error: &hyper::Error) {
    let failed_body = std::error::Error::source(error).is_some_and(|source| source.is::<Error>());
    if !failed_body {
        tracing::debug!("connection from {}: {error}", Peer(peer));
    }
}

/// Answers one request: checks it and maps it onto an environ, then returns [`prepare_with`]'s
/// future, which ends with the hyper response.
///
/// The mapping happens here rather than inside the returned future, and the future is a plain
/// combinator over [`prepare_with`]'s: hyper moves this future a few times per request, and an
/// `async` block that awaited it would hold it twice (as captured and as awaited), which
/// measured 245 instructions per request more. The future holds `app` and nothing it borrows
/// from the server: HTTP/1 passes a reference, HTTP/2 an owned [`OwnedApp`]. `head_len` is the
/// length of the request's head when the framing tracker measured it. `departure` is the
/// connection's, or the request's own when `own` (offered to the environ as such).
#[allow(clippy::too_many_arguments)]
fn respond<'a, A: App, P: App<Body = A::Body> + 'a>(
    shared: &Shared<A>,
    app: P,
    connection: &ConnectionInfo,
    request: Request<Incoming>,
    head_len: Option<usize>,
    departure: Departure,
    own: bool,
) -> impl Future<Output = Result<Response<WireBody<A::Body>>, Infallible>> + Send + 'a {
    mark_active();
    if shared.max_requests != 0 {
        count_request(shared);
    }
    let (parts, incoming) = request.into_parts();
    let mut tracked = shared.observers.as_ref().map(|observers| {
        let format = observers.log.as_deref().map(AccessLog::format);
        Box::new(Tracked {
            record: Record::new(
                connection.remote_addr(),
                &parts.method,
                &parts.uri,
                parts.version,
                &parts.headers,
                format,
                observers.timed,
            ),
            observers: Arc::clone(observers),
            finisher: None,
        })
    });
    if let Some(status) = over_limits(&shared.limits, &parts, &incoming, head_len) {
        return EitherFuture::Right(boxed(ready(Ok(plain(status, connection.clone(), tracked)))));
    }
    // Read from the length hyper found, not from the body: an HTTP/2 body answers with its
    // stream's lock held, and hyper gives a stream that ended with its head a length of zero.
    let bodiless = incoming.size_hint().exact() == Some(0);
    let input = if bodiless {
        Input::empty()
    } else {
        Input::from_body(RequestBody {
            incoming,
            left: shared.limits.body,
            limit: shared.limits.body,
            clock: BodyClock::new(shared.body_pace),
            trailers: None,
            #[cfg(feature = "http2")]
            http2: parts.version == rwgi::http::Version::HTTP_2,
        })
    };
    let mut environ = match Environ::from_parts(parts, input, connection) {
        Ok(environ) => environ,
        Err(error) => {
            report(
                connection.remote_addr(),
                tracked.as_deref(),
                format_args!("answered {}: {error}", error.status().as_u16()),
            );
            let mut response = plain(error.status(), connection.clone(), tracked);
            if !bodiless {
                // The body was not read, and its framing may be what was wrong (REQ-ENV-13).
                close_after(&mut response);
            }
            return EitherFuture::Right(boxed(ready(Ok(response))));
        }
    };
    if environ.method() == Method::CONNECT {
        // No tunnel to offer: refused without calling the app (REQ-SRV-12).
        return EitherFuture::Right(boxed(ready(Ok(plain(
            StatusCode::NOT_IMPLEMENTED,
            connection.clone(),
            tracked,
        )))));
    }
    // Before mounting: the prefix nginx removed goes back in front of the path first, so that
    // `root_path` mounts what follows it.
    if let Some(proxy) = &shared.proxy_headers {
        proxy.apply(&mut environ);
    }
    if let Some(prefix) = shared.root_path.as_deref() {
        if environ.mount(prefix).is_err() {
            return EitherFuture::Right(boxed(ready(Ok(plain(
                StatusCode::NOT_FOUND,
                connection.clone(),
                tracked,
            )))));
        }
    }
    if let Some(running) = &shared.lifespan {
        running.provide(&mut environ);
    }
    if let Some(tracked) = &mut tracked {
        if tracked.observers.outcome {
            offer_outcome(tracked, &mut environ);
        }
        if let Some(hooks) = &tracked.observers.hooks {
            hooks.before_request(&tracked.info());
        }
    }
    if own {
        // Found before the connection's, and no allocation: the environ holds it itself.
        environ.offer_disconnect(departure.disconnect());
    }
    let watch = Watch(Some(departure));
    let head = environ.method() == Method::HEAD;
    if !shared.request_timeout.is_zero() {
        return EitherFuture::Right(boxed(answer_within(
            app,
            shared.request_timeout,
            environ,
            head,
            connection.clone(),
            tracked,
            watch,
        )));
    }
    let connection = connection.clone();
    EitherFuture::Left(prepare_with(app, environ, move |prepared| {
        Ok(send_answer(prepared, head, connection, tracked, watch))
    }))
}

/// An answer other than [`prepare_with`]'s plain future: the server's own (rare), or one under
/// `request_timeout`.
type Boxed<'a, B> =
    Pin<Box<dyn Future<Output = Result<Response<WireBody<B>>, Infallible>> + Send + 'a>>;

/// Boxes an answer that is not the common one, so that the common future is not nested in
/// two `Either`s: one level less measured about 31 fewer instructions per HTTP/1.1 request
/// (the future is moved whole into hyper's slot); over HTTP/2, no change beyond the noise.
fn boxed<'a, B, F>(answer: F) -> Boxed<'a, B>
where
    B: Body + Unpin,
    F: Future<Output = Result<Response<WireBody<B>>, Infallible>> + Send + 'a,
{
    Box::pin(answer)
}

/// Puts a response outcome handle in the environ, whose callbacks run when `tracked` is
/// reported (REQ-OUTCOME-1).
#[cold]
fn offer_outcome(tracked: &mut Tracked, environ: &mut Environ) {
    let (finisher, finished) = Finisher::pair();
    environ.extensions_mut().insert(finished);
    tracked.finisher = Some(finisher);
}

/// The server's app, owned through the server's shared state: what an HTTP/2 request's future
/// calls, as it runs in a task of its own and cannot borrow from the connection.
#[cfg(feature = "http2")]
struct OwnedApp<A>(Arc<Shared<A>>);

#[cfg(feature = "http2")]
impl<A: App> App for OwnedApp<A> {
    type Body = A::Body;

    fn call(
        &self,
        environ: Environ,
        start: rwgi::StartResponse,
    ) -> impl Future<Output = Result<rwgi::Response<A::Body>, rwgi::Error>> + Send {
        self.0.app.call(environ, start)
    }
}

/// Tells a request's `Disconnect` handles that the client went away when it is dropped armed:
/// when hyper drops the answer (the app's future, or the response body before its end)
/// because the connection or the HTTP/2 stream is gone (REQ-DISC-1). Disarmed when the
/// response is complete, when it failed, and when the server answers in the app's place.
struct Watch(Option<Departure>);

impl Watch {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(departure) = self.0.take() {
            departure.client_gone();
        }
    }
}

/// Sends the prepared answer, logging first why it became a `500` (or a `4xx` for a request
/// body the client broke, which [`prepare_with`] also closes the connection after) if it did
/// (REQ-SRV-10).
// The failure branch only borrows the answer: any other shape measured 25 to 55 instructions
// more per request.
#[inline(always)]
fn send_answer<B: Body + Unpin>(
    prepared: Prepared<B>,
    head: bool,
    connection: ConnectionInfo,
    tracked: Option<Box<Tracked>>,
    watch: Watch,
) -> Response<WireBody<B>> {
    if let Some(failure) = prepared.failure() {
        report_failure(connection.remote_addr(), tracked.as_deref(), failure);
    }
    send_prepared(prepared, head, connection, tracked, watch)
}

/// Logs why an answer replaced a failed one, with the status it got.
#[cold]
fn report_failure(peer: Option<SocketAddr>, tracked: Option<&Tracked>, failure: &Failure) {
    let status = failure
        .input_error()
        .map_or(StatusCode::INTERNAL_SERVER_ERROR, InputError::status);
    report(
        peer,
        tracked,
        format_args!("answered {}: {failure}", status.as_u16()),
    );
}

/// [`respond`]'s future under `request_timeout`: an app that has not answered in time is
/// dropped (with its request body) and the client gets `503`.
#[cold]
async fn answer_within<A: App>(
    app: A,
    limit: Duration,
    environ: Environ,
    head: bool,
    connection: ConnectionInfo,
    tracked: Option<Box<Tracked>>,
    mut watch: Watch,
) -> Result<Response<WireBody<A::Body>>, Infallible> {
    let answer = prepare_with(app, environ, |prepared| prepared);
    match tokio::time::timeout(limit, answer).await {
        Ok(prepared) => Ok(send_answer(prepared, head, connection, tracked, watch)),
        Err(_) => {
            // The server gives up, not the client.
            watch.disarm();
            report(
                connection.remote_addr(),
                tracked.as_deref(),
                format_args!(
                    "answered 503: the app did not answer within {limit:?} (request_timeout)"
                ),
            );
            let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, connection, tracked);
            if let Some(tracked) = &mut response.body_mut().tracked {
                tracked.record.ending = Ending::TimedOut;
            }
            Ok(response)
        }
    }
}

/// Counts a request toward `max_requests`, and says when the last one arrived.
#[cold]
fn count_request<A>(shared: &Shared<A>) {
    if shared.served.fetch_add(1, Ordering::Relaxed) + 1 == shared.max_requests {
        shared.served_enough.notify_one();
    }
}

/// The status for a request over a limit: its line (414), a header field (431), or its
/// declared body (413). `head_len` is the length of the request's head as it came, if known.
#[inline]
fn over_limits(
    limits: &Limits,
    parts: &rwgi::http::request::Parts,
    incoming: &Incoming,
    head_len: Option<usize>,
) -> Option<StatusCode> {
    // Every line of the head, CRLF included, is longer than what is counted of it below, so a
    // head within both limits has nothing to count.
    if !head_len.is_some_and(|length| length <= limits.lines) {
        // `METHOD SP target SP HTTP/1.1`: the version and spaces are 10 bytes.
        if parts.method.as_str().len() + target_len(&parts.uri) + 10 > limits.line {
            return Some(StatusCode::URI_TOO_LONG);
        }
        if parts
            .headers
            .iter()
            .any(|(name, value)| name.as_str().len() + value.len() + 2 > limits.field)
        {
            return Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        }
    }
    if incoming
        .size_hint()
        .exact()
        .is_some_and(|length| length > limits.body)
    {
        return Some(StatusCode::PAYLOAD_TOO_LARGE);
    }
    None
}

/// The length of `uri` as its `Display` writes it, counted without writing it: an HTTP/2
/// request always has a scheme and an authority, and formatting them cost an allocation.
#[inline(always)]
fn target_len(uri: &rwgi::http::Uri) -> usize {
    match uri.path_and_query() {
        // The origin form (and `*`), nearly every HTTP/1.1 request: its text as it came.
        Some(path) if uri.scheme().is_none() => path.as_str().len(),
        _ => {
            uri.scheme_str().map_or(0, |scheme| scheme.len() + 3)
                + uri
                    .authority()
                    .map_or(0, |authority| authority.as_str().len())
                + uri.path().len()
                + uri.query().map_or(0, |query| query.len() + 1)
        }
    }
}

/// The server's own short answer, sent without calling the app.
#[cold]
fn plain<B: Body + Unpin>(
    status: StatusCode,
    connection: ConnectionInfo,
    tracked: Option<Box<Tracked>>,
) -> Response<WireBody<B>> {
    let text = match status {
        StatusCode::BAD_REQUEST => "Bad Request\n",
        StatusCode::URI_TOO_LONG => "URI Too Long\n",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "Request Header Fields Too Large\n",
        StatusCode::PAYLOAD_TOO_LARGE => "Content Too Large\n",
        StatusCode::NOT_IMPLEMENTED => "Not Implemented\n",
        StatusCode::SERVICE_UNAVAILABLE => "Service Unavailable\n",
        _ => "Not Found\n",
    };
    let mut response = send_prepared(
        Prepared::plain(status, text),
        false,
        connection,
        tracked,
        Watch(None),
    );
    if status != StatusCode::NOT_FOUND && status != StatusCode::BAD_REQUEST {
        // The request's body, if any, was not read: the connection cannot carry on.
        close_after(&mut response);
    }
    response
}

/// Asks hyper to close the connection once `response` is sent.
fn close_after<B>(response: &mut Response<B>) {
    response.headers_mut().insert(
        rwgi::http::header::CONNECTION,
        HeaderValue::from_static("close"),
    );
}

#[inline(always)]
fn send_prepared<B>(
    prepared: Prepared<B>,
    head: bool,
    connection: ConnectionInfo,
    mut tracked: Option<Box<Tracked>>,
    watch: Watch,
) -> Response<WireBody<B>>
where
    B: Body + Unpin,
{
    let length = prepared.content_length();
    let (status, mut headers, mut body) = prepared.into_parts();
    // A file body is read on the blocking pool, not by the app's body on this thread.
    body.map_file(|range| BoxBody::new(FileReader::new(range)));
    // `prepare` dropped the body of a HEAD answer; announce the length a GET would have had.
    if head && !headers.contains_key(CONTENT_LENGTH) {
        if let Some(length) = length {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    if !body.trailer_names().is_empty() {
        announce_trailers(&mut headers, body.trailer_names());
    }
    if let Some(tracked) = &mut tracked {
        tracked.record.status = Some(status);
    }
    let mut response = Response::new(WireBody {
        body,
        connection,
        tracked,
        watch,
    });
    *response.status_mut() = status;
    // The map `Response::new` made owns no memory: forgetting it leaks nothing and skips its
    // drop glue.
    std::mem::forget(std::mem::replace(response.headers_mut(), headers));
    response
}

/// Names the trailer fields to come in the head (HTTP/1.1's `Trailer` field, which hyper needs
/// to send them, REQ-TRAIL-3).
#[cold]
fn announce_trailers(headers: &mut HeaderMap, names: &[HeaderName]) {
    let names: Vec<&str> = names.iter().map(HeaderName::as_str).collect();
    // Field names are tokens, so the list is always a valid value.
    if let Ok(value) = HeaderValue::from_str(&names.join(", ")) {
        headers.insert(TRAILER, value);
    }
}

/// The request body as the app reads it: hyper's data frames, with hyper's errors (a client
/// that stops sending early, REQ-INPUT-2) passed on, typed when the client caused them
/// (REQ-INPUT-8), `limit_request_body` enforced on bodies of unknown length, and the trailer
/// fields kept for the app (REQ-TRAIL-4).
struct RequestBody {
    incoming: Incoming,
    /// Bytes the body may still carry.
    left: u64,
    /// `limit_request_body` (`u64::MAX` for none).
    limit: u64,
    /// `body_timeout` and `min_body_rate`: run while the app waits for the next chunk.
    clock: BodyClock,
    /// The trailer fields, once they arrived.
    trailers: Option<HeaderMap>,
    /// An HTTP/2 request, whose trailers may be empty.
    #[cfg(feature = "http2")]
    http2: bool,
}

impl RequestBody {
    /// Whether `frame` (not data) is the empty trailer section that only a bare LF after an
    /// HTTP/1.1 body's last chunk makes (see [`bare_lf_after_last_chunk`]).
    #[cold]
    fn bare_lf_trailers(&self, frame: &Frame<Bytes>) -> bool {
        #[cfg(feature = "http2")]
        if self.http2 {
            return false;
        }
        frame
            .trailers_ref()
            .is_some_and(|trailers| trailers.is_empty())
    }
}

impl Stream for RequestBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let poll = Pin::new(&mut self.incoming).poll_frame(cx);
            if poll.is_pending() {
                let received = self.limit - self.left;
                if let Some(error) = self.clock.expired(cx, received) {
                    return Poll::Ready(Some(Err(Error::new(error))));
                }
                return Poll::Pending;
            }
            self.clock.progress();
            match ready!(poll) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let Some(left) = self.left.checked_sub(data.len() as u64) else {
                            let limit = self.limit;
                            self.left = 0;
                            return Poll::Ready(Some(Err(Error::new(too_large(limit)))));
                        };
                        self.left = left;
                        return Poll::Ready(Some(Ok(data)));
                    }
                    Err(frame) => {
                        if self.bare_lf_trailers(&frame) {
                            return Poll::Ready(Some(Err(Error::new(bare_lf_after_last_chunk()))));
                        }
                        self.trailers = frame.into_trailers().ok();
                    }
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(body_error(error)))),
                None => return Poll::Ready(None),
            }
        }
    }
}

impl Body for RequestBody {
    fn content_length(&self) -> Option<u64> {
        // hyper counts its exact hint down as data arrives: it is the length still to come.
        self.incoming.size_hint().exact()
    }

    fn poll_trailers(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        Poll::Ready(Ok(self.trailers.take()))
    }
}

/// The response body as hyper sends it: the server's own text or the prepared app body,
/// reported to the observers when it is done.
pub(crate) struct WireBody<B: Body + Unpin> {
    body: ResponseBody<B>,
    /// For the client's address in a report. A reference count rather than the address
    /// itself: the body is moved several times per request, and 24 bytes less kept it small
    /// enough to be moved without a `memcpy` call (about 140 instructions per request).
    connection: ConnectionInfo,
    tracked: Option<Box<Tracked>>,
    watch: Watch,
}

impl<B: Body + Unpin> WireBody<B> {
    /// Reports a body that failed after the head went out; hyper then drops the connection
    /// (REQ-ERR-3).
    #[cold]
    fn fail(&mut self, error: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        report(
            self.connection.remote_addr(),
            self.tracked.as_deref(),
            format_args!("response aborted after its head was sent: {error}"),
        );
        if let Some(tracked) = &mut self.tracked {
            tracked.record.ending = Ending::Failed;
        }
        // The response failed; the client did not go.
        self.watch.disarm();
        Poll::Ready(Some(Err(error)))
    }
}

impl<B: Body + Unpin> HttpBody for WireBody<B> {
    type Data = Bytes;
    type Error = Error;

    #[inline(always)]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        // hyper skips empty chunks itself (REQ-BODY-3).
        match ready!(Pin::new(&mut this.body).poll_next(cx)) {
            Some(Ok(chunk)) => {
                mark_active();
                if let Some(tracked) = &mut this.tracked {
                    tracked.record.sent += chunk.len() as u64;
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Some(Err(error)) => this.fail(error),
            None => match ready!(Pin::new(&mut this.body).poll_trailers(cx)) {
                Ok(None) => Poll::Ready(None),
                Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
                Err(error) => this.fail(error),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        // Not the length alone: a body under a declared Content-Length is polled to its end, so
        // one that runs long is caught and the connection aborted (REQ-SRV-7).
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // Trailers to come need a chunked HTTP/1.1 body: no exact length then (REQ-TRAIL-3).
        match self.body.content_length() {
            Some(length) if self.body.trailer_names().is_empty() => SizeHint::with_exact(length),
            _ => SizeHint::default(),
        }
    }
}

impl<B: Body + Unpin> fmt::Debug for WireBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireBody").finish_non_exhaustive()
    }
}

impl<B: Body + Unpin> Drop for WireBody<B> {
    fn drop(&mut self) {
        mark_active();
        // hyper drops the body once it wrote the last byte or gave up on the connection; only
        // in the first case is nothing left to send.
        let complete = self.body.content_length() == Some(0);
        if complete {
            self.watch.disarm();
        }
        if let Some(tracked) = &mut self.tracked {
            if tracked.record.ending == Ending::ClientGone && complete {
                tracked.record.ending = Ending::Completed;
            }
        }
    }
}

/// A peer address for logs: `-` when there is none (Unix sockets).
pub(crate) struct Peer(pub(crate) Option<SocketAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(address) => address.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// Logs a server-side problem with one request, naming the request when it is known.
#[cold]
fn report(peer: Option<SocketAddr>, tracked: Option<&Tracked>, message: fmt::Arguments<'_>) {
    match tracked {
        Some(tracked) => tracing::error!(
            "{} \"{} {} {:?}\": {message}",
            Peer(peer),
            tracked.record.method,
            tracked.record.target,
            tracked.record.version
        ),
        None => tracing::error!("{}: {message}", Peer(peer)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    #[test]
    fn a_target_is_as_long_as_its_text() {
        for target in [
            "/",
            "/a/b?x=1&y",
            "/?",
            "*",
            "http://example.com",
            "https://example.com:8443/p/q?r=s",
            "http://user@example.com/",
            "example.com:443",
            "[::1]:8080",
            "http://[::1]/x?",
        ] {
            let uri: rwgi::http::Uri = target.parse().unwrap();
            assert_eq!(target_len(&uri), uri.to_string().len(), "{target}");
        }
    }

    #[tokio::test]
    async fn stopping_wakes_every_connection_and_closed_waits_for_the_last() {
        let connections = Arc::new(Connections::default());
        let mut polled = connections.register();
        let never_polled = connections.register();
        assert_eq!(connections.open(), 2);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut polled).poll(&mut cx).is_pending());

        connections.stop();
        assert!(Pin::new(&mut polled).poll(&mut cx).is_ready());
        let mut closed = pin!(connections.closed());
        assert!(closed.as_mut().poll(&mut cx).is_pending(), "two still open");
        drop(polled);
        assert!(closed.as_mut().poll(&mut cx).is_pending(), "one still open");
        // A connection that had not been polled yet sees the stop on its first poll.
        let mut never_polled = never_polled;
        assert!(Pin::new(&mut never_polled).poll(&mut cx).is_ready());
        drop(never_polled);
        assert_eq!(connections.open(), 0);
        assert!(closed.as_mut().poll(&mut cx).is_ready());
    }
}
