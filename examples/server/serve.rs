//! The reference rwgi server: hyper's HTTP/1.1 on tokio, hosting any [`App`].
//!
//! This module is to rwgi what `wsgiref` is to WSGI: a plain, complete server that ships beside
//! the types, shows how an HTTP stack maps onto the contract, and is good enough to develop
//! against. It lives in `examples/` so the library itself stays free of any runtime; the
//! integration tests include this very file (`#[path = "../examples/server/serve.rs"]`) and run
//! the server in-process on an ephemeral port, so they test the shipped code without starting a
//! nested `cargo` or a child process.
//!
//! Per request, the server:
//! 1. maps hyper's request head and body onto an [`Environ`] with [`Environ::from_parts`], answering `400`
//!    without calling the app when the request breaks REQ-ENV-3 or REQ-ENV-6;
//! 2. mounts the app at the configured root path (REQ-PATH-6), answering `404` without calling
//!    the app when the path lies outside it;
//! 3. runs [`prepare`], which calls the app and applies the rules every server shares
//!    (REQ-SRV-4..8, REQ-ERR-4), and hands the result to hyper, whose framing follows the
//!    body's exact length: `Content-Length` when known, chunked otherwise.
//!
//! A body that fails after the head went out makes hyper drop the connection, so the client
//! never sees a complete-looking response (REQ-ERR-3).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rwgi::body::{Body, Either, Full};
use rwgi::environ::{ConnectionInfo, ServerInfo};
use rwgi::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use rwgi::http::uri::Scheme;
use rwgi::http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use rwgi::server::{prepare, Prepared, ResponseBody};
use rwgi::{App, Environ, Error, Input};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

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
    });
    let (stop, stopping) = watch::channel(());
    match listener {
        Listener::Tcp(listener) => accept_until(&listener, &shared, &stopping, shutdown).await,
        Listener::Unix(socket) => accept_until(&socket, &shared, &stopping, shutdown).await,
    }
    drop(stopping);
    // Receivers live in the connection tasks; they see the change and shut down gracefully.
    let _ = stop.send(());
    if tokio::time::timeout(config.shutdown_timeout, stop.closed())
        .await
        .is_err()
    {
        eprintln!(
            "rwgi-server: gave up on {} connection(s) still busy after {:?}",
            stop.receiver_count(),
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
}

/// A listener as [`accept_until`] uses it: both kinds of socket with one accept loop.
trait Accept {
    type Io: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// The next connection, with the local and peer addresses when there are any.
    async fn accept(&self) -> io::Result<(Self::Io, Option<SocketAddr>, Option<SocketAddr>)>;
}

impl Accept for TcpListener {
    type Io = tokio::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Io, Option<SocketAddr>, Option<SocketAddr>)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        // Responses are written whole; waiting for an ACK before the next write only adds
        // latency. Failing to set it (or to read the local address) only means the socket is
        // already dead, which hyper finds out soon enough.
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        Ok((stream, local, Some(peer)))
    }
}

impl Accept for UnixSocket {
    type Io = tokio::net::UnixStream;

    async fn accept(&self) -> io::Result<(Self::Io, Option<SocketAddr>, Option<SocketAddr>)> {
        let (stream, _) = self.listener.accept().await?;
        Ok((stream, None, None))
    }
}

async fn accept_until<L, A>(
    listener: &L,
    shared: &Arc<Shared<A>>,
    stopping: &watch::Receiver<()>,
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
                tokio::spawn(serve_connection(
                    io,
                    connection,
                    peer,
                    Arc::clone(shared),
                    stopping.clone(),
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

async fn serve_connection<A, I>(
    io: I,
    connection: ConnectionInfo,
    peer: Option<SocketAddr>,
    shared: Arc<Shared<A>>,
    mut stopping: watch::Receiver<()>,
) where
    A: App + 'static,
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let handler = Arc::clone(&shared);
    let service = service_fn(move |request| respond(&handler, &connection, peer, request));
    let mut http = pin!(shared.http.serve_connection(TokioIo::new(io), service));
    let result = tokio::select! {
        // Fixed order: no random pick on every wake-up of a busy connection.
        biased;
        result = http.as_mut() => result,
        _ = stopping.changed() => {
            http.as_mut().graceful_shutdown();
            http.await
        }
    };
    if let Err(error) = result {
        // A failing response body was already reported when it failed.
        let ours = std::error::Error::source(&error).is_some_and(|source| source.is::<Error>());
        if !ours {
            eprintln!("rwgi-server: connection from {}: {error}", Peer(peer));
        }
    }
}

/// Answers one request. Everything happens inside the returned future, which owns what it
/// needs, so hyper polls it without boxing; the request is mapped there, in place, rather than
/// moved into the future as an environ.
fn respond<A: App + 'static>(
    shared: &Arc<Shared<A>>,
    connection: &ConnectionInfo,
    peer: Option<SocketAddr>,
    request: Request<Incoming>,
) -> impl Future<Output = Result<Response<WireBody<A::Body>>, Infallible>> + Send {
    let log = shared
        .access_log
        .then(|| Box::new(AccessLog::new(peer, &request)));
    let shared = Arc::clone(shared);
    let connection = connection.clone();
    async move {
        let (parts, incoming) = request.into_parts();
        let input = if incoming.is_end_stream() {
            Input::empty()
        } else {
            Input::from_body(RequestBody(incoming))
        };
        let mut environ = match Environ::from_parts(parts, input, &connection) {
            Ok(environ) => environ,
            Err(error) => {
                report(peer, log.as_deref(), format_args!("answered 400: {error}"));
                return Ok(plain(StatusCode::BAD_REQUEST, peer, log));
            }
        };
        if let Some(prefix) = shared.root_path.as_deref() {
            if environ.mount(prefix).is_err() {
                return Ok(plain(StatusCode::NOT_FOUND, peer, log));
            }
        }
        let head = environ.method() == Method::HEAD;
        let prepared = prepare(&shared.app, environ).await;
        if let Some(failure) = prepared.failure() {
            report(
                peer,
                log.as_deref(),
                format_args!("answered 500: {failure}"),
            );
        }
        Ok(send_prepared(prepared, head, peer, log))
    }
}

/// The server's own short answer, sent without calling the app.
fn plain<B: Body + Unpin>(
    status: StatusCode,
    peer: Option<SocketAddr>,
    mut log: Option<Box<AccessLog>>,
) -> Response<WireBody<B>> {
    if let Some(log) = &mut log {
        log.status = Some(status);
    }
    let text: &'static str = match status {
        StatusCode::BAD_REQUEST => "Bad Request\n",
        _ => "Not Found\n",
    };
    let mut response = Response::new(WireBody {
        body: Either::Left(Full::new(Bytes::from_static(text.as_bytes()))),
        peer,
        log,
    });
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

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
    let mut response = Response::new(WireBody {
        body: Either::Right(body),
        peer,
        log,
    });
    *response.status_mut() = status;
    *response.headers_mut() = headers;
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
    body: Either<Full, ResponseBody<B>>,
    peer: Option<SocketAddr>,
    log: Option<Box<AccessLog>>,
}

impl<B: Body + Unpin> HttpBody for WireBody<B> {
    type Data = Bytes;
    type Error = Error;

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
        match &self.body {
            Either::Left(text) => text.content_length() == Some(0),
            // Not the length alone: a body under a declared Content-Length is polled to its
            // end, so one that runs long is caught and the connection aborted (REQ-SRV-7).
            Either::Right(body) => body.is_end_stream(),
        }
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
