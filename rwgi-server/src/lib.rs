//! `rwgi-server`: hyper's HTTP/1.1 on tokio, hosting any [`App`].
//!
//! Per request, the server:
//! 1. maps hyper's request head and body onto an [`Environ`] with [`Environ::from_parts`], answering `400`
//!    without calling the app when the request breaks REQ-ENV-3 or REQ-ENV-6;
//! 2. mounts the app at the configured root path (REQ-PATH-6), answering `404` without calling
//!    the app when the path lies outside it;
//! 3. runs [`prepare_with`], which calls the app and applies the rules every server shares
//!    (REQ-SRV-4..8, REQ-ERR-4), and hands the result to hyper, whose framing follows the
//!    body's exact length: `Content-Length` when known, chunked otherwise.
//!
//! A body that fails after the head went out makes hyper drop the connection, so the client
//! never sees a complete-looking response (REQ-ERR-3).
#![forbid(unsafe_code)]
#![deny(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::future::{ready, Either as EitherFuture};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rwgi::body::Body;
use rwgi::environ::{ConnectionInfo, ServerInfo};
use rwgi::http::header::CONTENT_LENGTH;
use rwgi::http::uri::Scheme;
use rwgi::http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use rwgi::server::{prepare_with, Prepared, ResponseBody};
use rwgi::{App, Environ, Error, Input};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Notify;

/// What the server tells apps about itself: each request may run on any of the runtime's
/// worker threads (REQ-ENV-9).
pub const SERVER_INFO: ServerInfo = ServerInfo::new("rwgi-server/0.1").multithread(true);

/// Where to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bind {
    /// A TCP `host:port`; port `0` picks a free port.
    Tcp(String),
    /// A Unix domain socket at this path.
    Unix(PathBuf),
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bind::Tcp(address) => f.write_str(address),
            Bind::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A bound listening socket, ready for [`serve`].
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix domain socket listener; the socket file is removed when it is dropped.
    Unix(UnixSocket),
}

impl Listener {
    /// Binds `bind`. For a Unix socket, a stale socket file left by a server that is gone is
    /// removed first; a socket some process still accepts on, or a file that is not a socket,
    /// is an error.
    ///
    /// # Errors
    ///
    /// The operating system's error when the address cannot be bound.
    pub async fn bind(bind: &Bind) -> io::Result<Listener> {
        match bind {
            Bind::Tcp(address) => Ok(Listener::Tcp(TcpListener::bind(address.as_str()).await?)),
            Bind::Unix(path) => Ok(Listener::Unix(UnixSocket::bind(path)?)),
        }
    }

    /// The TCP address the listener accepts on; `None` for a Unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().ok(),
            Listener::Unix(_) => None,
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.local_addr()) {
            (Listener::Tcp(_), Some(address)) => write!(f, "http://{address}"),
            (Listener::Tcp(_), None) => f.write_str("http://(unknown address)"),
            (Listener::Unix(socket), _) => write!(f, "unix:{}", socket.path.display()),
        }
    }
}

/// A Unix domain socket listener that owns its socket file.
#[derive(Debug)]
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl UnixSocket {
    fn bind(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::FileTypeExt;

        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("a server is accepting on {}", path.display()),
                    ));
                }
                std::fs::remove_file(path)?;
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        Ok(UnixSocket {
            listener: UnixListener::bind(path)?,
            path: path.to_owned(),
        })
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        // Best effort: a file that is already gone is what we want anyway.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How [`serve`] runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The prefix the app is mounted at, like `/app`: it becomes `script_name`, and requests
    /// outside it get `404` (REQ-PATH-6). It must start with `/` and not end with one
    /// (REQ-PATH-5).
    pub root_path: Option<String>,
    /// Whether to write one line per request to stderr.
    pub access_log: bool,
    /// How long a shutdown waits for in-flight requests before giving up on them.
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root_path: None,
            access_log: true,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then shuts down gracefully.
///
/// Each connection runs as its own tokio task. On shutdown the listener closes at once, idle
/// connections close, and connections with a request in flight finish that response and then
/// close; after `config.shutdown_timeout` the rest are abandoned (they end when the runtime
/// does). Accept errors (out of file descriptors, say) are logged and do not stop the server.
pub async fn serve<A>(
    listener: Listener,
    app: A,
    config: Config,
    shutdown: impl Future<Output = ()>,
) where
    A: App + 'static,
{
    let mut http = http1::Builder::new();
    // The timer enables hyper's default timeout for reading a request head.
    http.timer(TokioTimer::new());
    let shared = Arc::new(Shared {
        app,
        root_path: config.root_path.map(String::into_boxed_str),
        access_log: config.access_log,
        http,
        connections: Arc::default(),
    });
    match listener {
        Listener::Tcp(listener) => accept_until(&listener, &shared, shutdown).await,
        Listener::Unix(socket) => accept_until(&socket, &shared, shutdown).await,
    }
    let connections = &shared.connections;
    connections.stop();
    if tokio::time::timeout(config.shutdown_timeout, connections.closed())
        .await
        .is_err()
    {
        eprintln!(
            "rwgi-server: gave up on {} connection(s) still busy after {:?}",
            connections.open(),
            config.shutdown_timeout
        );
    }
}

/// The state every connection of one server shares.
struct Shared<A> {
    app: A,
    root_path: Option<Box<str>>,
    access_log: bool,
    http: http1::Builder,
    connections: Arc<Connections>,
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
type Connection = tokio_util::either::Either<tokio::net::TcpStream, tokio::net::UnixStream>;

/// A listener as [`accept_until`] uses it: both kinds of socket with one accept loop.
trait Accept {
    /// The next connection, with the local and peer addresses when there are any.
    async fn accept(&self) -> io::Result<(Connection, Option<SocketAddr>, Option<SocketAddr>)>;
}

impl Accept for TcpListener {
    async fn accept(&self) -> io::Result<(Connection, Option<SocketAddr>, Option<SocketAddr>)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        // Responses are written whole; waiting for an ACK before the next write only adds
        // latency. Failing to set it (or to read the local address) only means the socket is
        // already dead, which hyper finds out soon enough.
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        Ok((Connection::Left(stream), local, Some(peer)))
    }
}

impl Accept for UnixSocket {
    async fn accept(&self) -> io::Result<(Connection, Option<SocketAddr>, Option<SocketAddr>)> {
        let (stream, _) = self.listener.accept().await?;
        Ok((Connection::Right(stream), None, None))
    }
}

async fn accept_until<L, A>(
    listener: &L,
    shared: &Arc<Shared<A>>,
    shutdown: impl Future<Output = ()>,
) where
    L: Accept,
    A: App + 'static,
{
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((io, local, peer)) => {
                let mut connection = ConnectionInfo::new(Scheme::HTTP).server(SERVER_INFO);
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
                    Arc::clone(shared),
                    stopping,
                ));
            }
            // The client gave up before we accepted: nothing to do.
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                eprintln!("rwgi-server: accept failed: {error}");
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

async fn serve_connection<A>(
    io: Connection,
    connection: ConnectionInfo,
    peer: Option<SocketAddr>,
    shared: Arc<Shared<A>>,
    mut stopping: Stopping,
) where
    A: App + 'static,
{
    // Requests borrow what the connection owns: no reference count changes per request.
    let Shared {
        app,
        root_path,
        access_log,
        http,
        ..
    } = &*shared;
    let service = service_fn(|request| {
        let log = access_log.then(|| Box::new(AccessLog::new(peer, &request)));
        respond(app, root_path.as_deref(), &connection, peer, log, request)
    });
    let mut http = pin!(http.serve_connection(TokioIo::new(io), service));
    let mut draining = false;
    let result = poll_fn(|cx| {
        if !draining && Pin::new(&mut stopping).poll(cx).is_ready() {
            // Finish the request in flight, if any, then close.
            http.as_mut().graceful_shutdown();
            draining = true;
        }
        http.as_mut().poll(cx)
    })
    .await;
    if let Err(error) = result {
        // A failing response body was already reported when it failed.
        let ours = std::error::Error::source(&error).is_some_and(|source| source.is::<Error>());
        if !ours {
            eprintln!("rwgi-server: connection from {}: {error}", Peer(peer));
        }
    }
}

/// Answers one request: maps it onto an environ, then returns [`prepare`]'s future, mapped to
/// hyper's response when it completes.
///
/// The mapping happens here rather than inside the returned future, and the future is a plain
/// combinator over [`prepare`]'s: hyper moves this future a few times per request, and an
/// `async` block that awaited [`prepare`]'s future would hold it twice (as captured and as
/// awaited), which measured 245 instructions per request more.
fn respond<'a, A: App>(
    app: &'a A,
    root_path: Option<&str>,
    connection: &ConnectionInfo,
    peer: Option<SocketAddr>,
    log: Option<Box<AccessLog>>,
    request: Request<Incoming>,
) -> impl Future<Output = Result<Response<WireBody<A::Body>>, Infallible>> + Send + 'a {
    let (parts, incoming) = request.into_parts();
    let input = if incoming.is_end_stream() {
        Input::empty()
    } else {
        Input::from_body(RequestBody(incoming))
    };
    let mut environ = match Environ::from_parts(parts, input, connection) {
        Ok(environ) => environ,
        Err(error) => {
            report(peer, log.as_deref(), format_args!("answered 400: {error}"));
            return EitherFuture::Left(ready(Ok(plain(StatusCode::BAD_REQUEST, peer, log))));
        }
    };
    if let Some(prefix) = root_path {
        if environ.mount(prefix).is_err() {
            return EitherFuture::Left(ready(Ok(plain(StatusCode::NOT_FOUND, peer, log))));
        }
    }
    let head = environ.method() == Method::HEAD;
    EitherFuture::Right(prepare_with(app, environ, move |prepared| {
        if let Some(failure) = prepared.failure() {
            report(
                peer,
                log.as_deref(),
                format_args!("answered 500: {failure}"),
            );
        }
        Ok(send_prepared(prepared, head, peer, log))
    }))
}

/// The server's own short answer, sent without calling the app.
#[cold]
fn plain<B: Body + Unpin>(
    status: StatusCode,
    peer: Option<SocketAddr>,
    log: Option<Box<AccessLog>>,
) -> Response<WireBody<B>> {
    let text = match status {
        StatusCode::BAD_REQUEST => "Bad Request\n",
        _ => "Not Found\n",
    };
    send_prepared(Prepared::plain(status, text), false, peer, log)
}

#[inline(always)]
fn send_prepared<B>(
    prepared: Prepared<B>,
    head: bool,
    peer: Option<SocketAddr>,
    mut log: Option<Box<AccessLog>>,
) -> Response<WireBody<B>>
where
    B: Body + Unpin,
{
    let length = prepared.content_length();
    let (status, mut headers, body) = prepared.into_parts();
    // `prepare` dropped the body of a HEAD answer; announce the length a GET would have had.
    if head && !headers.contains_key(CONTENT_LENGTH) {
        if let Some(length) = length {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    if let Some(log) = &mut log {
        log.status = Some(status);
    }
    let mut response = Response::new(WireBody { body, peer, log });
    *response.status_mut() = status;
    // The map `Response::new` made is empty, and an empty map owns no memory (`HeaderMap::new`
    // does not allocate): forgetting it leaks nothing and skips dropping it on every request.
    std::mem::forget(std::mem::replace(response.headers_mut(), headers));
    response
}

/// The request body as the app reads it: hyper's data frames, with hyper's errors (a client
/// that stops sending early, REQ-INPUT-2) passed on.
struct RequestBody(Incoming);

impl Stream for RequestBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match ready!(Pin::new(&mut self.0).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    // Trailers carry no body bytes, and the contract has no place for them.
                    if let Ok(data) = frame.into_data() {
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(Error::new(error)))),
                None => return Poll::Ready(None),
            }
        }
    }
}

impl Body for RequestBody {
    fn content_length(&self) -> Option<u64> {
        // hyper counts its exact hint down as data arrives: it is the length still to come.
        self.0.size_hint().exact()
    }
}

/// The response body as hyper sends it: the server's own text or the prepared app body,
/// reported to the access log when it is done.
struct WireBody<B: Body + Unpin> {
    body: ResponseBody<B>,
    peer: Option<SocketAddr>,
    log: Option<Box<AccessLog>>,
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
                if let Some(log) = &mut this.log {
                    log.sent += chunk.len() as u64;
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Some(Err(error)) => {
                report(
                    this.peer,
                    this.log.as_deref(),
                    format_args!("response aborted after its head was sent: {error}"),
                );
                if let Some(log) = &mut this.log {
                    log.ending = Ending::Aborted;
                }
                // hyper drops the connection on this error (REQ-ERR-3).
                Poll::Ready(Some(Err(error)))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        // Not the length alone: a body under a declared Content-Length is polled to its end, so
        // one that runs long is caught and the connection aborted (REQ-SRV-7).
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .content_length()
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

impl<B: Body + Unpin> fmt::Debug for WireBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireBody").finish_non_exhaustive()
    }
}

impl<B: Body + Unpin> Drop for WireBody<B> {
    fn drop(&mut self) {
        // hyper drops the body once it wrote the last byte or gave up on the connection; only
        // in the first case is nothing left to send.
        if let Some(log) = &mut self.log {
            if log.ending == Ending::Unfinished && self.body.content_length() == Some(0) {
                log.ending = Ending::Complete;
            }
        }
    }
}

/// One access-log line, written to stderr when the request is done with: when the response
/// body is finished or dropped, or when hyper drops the request before the app answered.
#[derive(Debug)]
struct AccessLog {
    peer: Option<SocketAddr>,
    method: Method,
    target: Uri,
    version: Version,
    started: Instant,
    status: Option<StatusCode>,
    sent: u64,
    ending: Ending,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Unfinished,
    Complete,
    Aborted,
}

impl AccessLog {
    fn new<T>(peer: Option<SocketAddr>, request: &Request<T>) -> Self {
        AccessLog {
            peer,
            method: request.method().clone(),
            // A `Uri` clone shares its bytes: the target costs no copy even here.
            target: request.uri().clone(),
            version: request.version(),
            started: Instant::now(),
            status: None,
            sent: 0,
            ending: Ending::Unfinished,
        }
    }
}

impl fmt::Display for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} \"{} {} {:?}\" ",
            Peer(self.peer),
            self.method,
            self.target,
            self.version,
        )?;
        match self.status {
            Some(status) => write!(f, "{}", status.as_u16())?,
            None => f.write_str("-")?,
        }
        write!(
            f,
            " {} {:.3}ms",
            self.sent,
            self.started.elapsed().as_secs_f64() * 1e3
        )?;
        match (self.ending, self.status) {
            (Ending::Complete, _) => Ok(()),
            (Ending::Aborted, _) => f.write_str(" aborted"),
            (Ending::Unfinished, None) => f.write_str(" client gone before the answer"),
            (Ending::Unfinished, Some(_)) => f.write_str(" client gone during the body"),
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        eprintln!("{self}");
    }
}

/// A peer address for logs: `-` when there is none (Unix sockets).
struct Peer(Option<SocketAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(address) => address.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// Logs a server-side problem with one request, naming the request when it is known.
fn report(peer: Option<SocketAddr>, log: Option<&AccessLog>, message: fmt::Arguments<'_>) {
    match log {
        Some(log) => eprintln!(
            "rwgi-server: {} \"{} {} {:?}\": {message}",
            Peer(peer),
            log.method,
            log.target,
            log.version
        ),
        None => eprintln!("rwgi-server: {}: {message}", Peer(peer)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The line `log` writes, with its duration (the one varying field) replaced by `<ms>`.
    fn line(log: &AccessLog) -> String {
        let text = log.to_string();
        let words: Vec<&str> = text
            .split(' ')
            .map(|word| match word.strip_suffix("ms") {
                Some(ms) if ms.parse::<f64>().is_ok() => "<ms>",
                _ => word,
            })
            .collect();
        words.join(" ")
    }

    fn log_for(peer: Option<&str>, request: Request<()>) -> AccessLog {
        AccessLog::new(peer.map(|peer| peer.parse().unwrap()), &request)
    }

    #[test]
    fn access_log_lines_name_the_request_and_how_it_ended() {
        let request = Request::get("/a%20b?q=1").body(()).unwrap();
        let mut log = log_for(Some("127.0.0.1:5000"), request);
        log.status = Some(StatusCode::OK);
        log.sent = 14;
        log.ending = Ending::Complete;
        assert_eq!(
            line(&log),
            r#"127.0.0.1:5000 "GET /a%20b?q=1 HTTP/1.1" 200 14 <ms>"#
        );
        log.ending = Ending::Aborted;
        assert_eq!(
            line(&log),
            r#"127.0.0.1:5000 "GET /a%20b?q=1 HTTP/1.1" 200 14 <ms> aborted"#
        );
        log.ending = Ending::Unfinished;
        assert_eq!(
            line(&log),
            r#"127.0.0.1:5000 "GET /a%20b?q=1 HTTP/1.1" 200 14 <ms> client gone during the body"#
        );

        let request = Request::options("*")
            .version(Version::HTTP_10)
            .body(())
            .unwrap();
        let log = log_for(None, request);
        assert_eq!(
            line(&log),
            r#"- "OPTIONS * HTTP/1.0" - 0 <ms> client gone before the answer"#
        );
    }
}
