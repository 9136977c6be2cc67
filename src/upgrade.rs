//! Connection upgrades (spec §14.10): an app takes over the connection after a
//! `101 Switching Protocols`, as a WebSocket server does.
//!
//! # Negotiation
//!
//! For an HTTP/1.1 request that asks for an upgrade (an `Upgrade` header, and the `upgrade`
//! option in `Connection`, RFC 9110 §7.8), a server that can hand its connections over puts an
//! [`Upgrade`] offer in the environ's extensions (REQ-UPGRADE-1); it makes the offer with
//! [`offer`], which says no for every other request. No offer means no upgrade: the server
//! cannot do it, the request did not ask, or it came over HTTP/2 (whose extended `CONNECT`,
//! RFC 8441, is left for a later version). The app then answers as if the request had not
//! asked (REQ-UPGRADE-4).
//!
//! # Taking the offer
//!
//! The app answers with [`Upgrade::accept`]: a `101` with the `Upgrade` and `Connection`
//! headers set and an empty body, and a handler, an `async` function that gets the connection
//! as an [`Upgraded`] once the `101` is out (REQ-UPGRADE-2, REQ-UPGRADE-3). The server runs the
//! handler; the app needs no runtime of its own to spawn it on. A `101` made any other way
//! breaks REQ-RESP-1, and the server answers `500` instead.
//!
//! ```
//! use rwgi::body::{Body, BoxBody, Full};
//! use rwgi::http::{HeaderMap, StatusCode};
//! use rwgi::upgrade::Upgrade;
//! use rwgi::{Environ, Error, Response, StartResponse};
//!
//! /// Echoes every byte back on a connection upgraded to the made-up protocol `echo`.
//! async fn app(mut environ: Environ, start: StartResponse) -> Result<Response<BoxBody>, Error> {
//!     match environ.extensions_mut().remove::<Upgrade>() {
//!         Some(offer) if offer.asks_for("echo") => {
//!             let response = offer.accept(start, "echo", HeaderMap::new(), |mut io| async move {
//!                 let mut buf = [0; 1024];
//!                 while let Ok(n @ 1..) = io.read(&mut buf).await {
//!                     if io.write_all(&buf[..n]).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!             Ok(response.map_body(BoxBody::new))
//!         }
//!         // The fallback: no offer, so an ordinary answer.
//!         _ => Ok(start
//!             .start(StatusCode::OK, HeaderMap::new())
//!             .body(BoxBody::new(Full::new("no upgrade here\n")))),
//!     }
//! }
//! # let _ = rwgi::app::app_fn(app);
//! ```
//!
//! # The upgraded connection
//!
//! The core has no runtime, so [`Upgraded`] is a small I/O type of its own: it reads and writes
//! through the four poll methods of [`Io`], the shape of `futures::io::AsyncRead` and
//! `AsyncWrite`, which servers implement for their connection type. An app adapts it to its
//! runtime's traits in a few lines (the WebSocket example does so for tokio), or, when it knows
//! its server, takes the server's own type back with [`Upgraded::downcast`] (`rwgi-server`
//! documents which type it puts in).
//!
//! # For servers
//!
//! ```
//! use rwgi::http::{HeaderMap, HeaderValue, Method, Version};
//! use rwgi::upgrade::offer;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("connection", HeaderValue::from_static("Upgrade"));
//! headers.insert("upgrade", HeaderValue::from_static("websocket"));
//! // The server puts `upgrade` in the environ's extensions and keeps `acceptance`; once it
//! // sent the app's `101`, `acceptance.take_handler()` gives the handler to run.
//! let (upgrade, acceptance) = offer(&Method::GET, Version::HTTP_11, &headers).unwrap();
//! assert!(upgrade.asks_for("websocket"));
//! assert!(acceptance.take_handler().is_none(), "the app has not taken the offer");
//!
//! // HTTP/1.0 cannot upgrade (RFC 9110 §7.8).
//! assert!(offer(&Method::GET, Version::HTTP_10, &headers).is_none());
//! ```

use std::any::{Any, TypeId};
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};

use crate::body::Empty;
use crate::server::panic_message;
use crate::{Error, Response, StartResponse};

/// The I/O of an upgraded connection, as a server provides it: the shape of
/// `futures::io::AsyncRead` and `AsyncWrite`, with nothing but `std` in the bounds.
///
/// A read of `Ok(0)` into a non-empty buffer is the end of what the client sends.
/// `poll_close` flushes and shuts the writing side down.
///
/// A server implements it for its connection type, usually by forwarding to its runtime's I/O
/// traits; [`Upgraded`] shows a whole implementation.
///
/// ```
/// use rwgi::upgrade::{Io, Upgraded};
///
/// fn hand_over<T: Io>(connection: T) -> Upgraded {
///     Upgraded::new(connection)
/// }
/// # let _ = hand_over::<Upgraded>;
/// ```
pub trait Io: Send + Unpin + 'static {
    /// Reads into `buf`: `Ok(0)` at the end of the stream.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>>;

    /// Writes some of `buf`, returning how much.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>>;

    /// Sends everything written so far.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Flushes and closes the writing side.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// [`Io`] plus what [`Upgraded::downcast`] needs.
trait Erased: Io {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
    fn io_type(&self) -> TypeId;
}

impl<T: Io> Erased for T {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }

    fn io_type(&self) -> TypeId {
        TypeId::of::<T>()
    }
}

/// An upgraded connection, as the handler of [`Upgrade::accept`] gets it: the server's I/O,
/// type-erased (REQ-UPGRADE-3).
///
/// It reads what the client sends after the request's head (including bytes that came in the
/// same packet) and writes to the client. Dropping it closes the connection.
///
/// ```
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use rwgi::upgrade::{Io, Upgraded};
///
/// /// An I/O that reads nothing and swallows writes.
/// struct Null;
///
/// impl Io for Null {
///     fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut [u8]) -> Poll<std::io::Result<usize>> {
///         Poll::Ready(Ok(0))
///     }
///     fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
///         Poll::Ready(Ok(buf.len()))
///     }
///     fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
///         Poll::Ready(Ok(()))
///     }
///     fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
///         Poll::Ready(Ok(()))
///     }
/// }
///
/// # futures_executor::block_on(async {
/// let mut io = Upgraded::new(Null);
/// io.write_all(b"hello").await?;
/// assert_eq!(io.read(&mut [0; 8]).await?, 0);
/// // The server's own type, back.
/// assert!(io.downcast::<Null>().is_ok());
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct Upgraded {
    io: Box<dyn Erased>,
}

impl Upgraded {
    /// The upgraded connection `io`, for a server.
    pub fn new<T: Io>(io: T) -> Self {
        Upgraded { io: Box::new(io) }
    }

    /// Whether the server's I/O is a `T`.
    pub fn is<T: Io>(&self) -> bool {
        self.io.io_type() == TypeId::of::<T>()
    }

    /// The server's own I/O type, when it is a `T`; otherwise the connection back.
    ///
    /// # Errors
    ///
    /// `self`, when the I/O is not a `T`.
    pub fn downcast<T: Io>(self) -> Result<T, Self> {
        if !self.is::<T>() {
            return Err(self);
        }
        match self.io.into_any().downcast::<T>() {
            Ok(io) => Ok(*io),
            Err(_) => unreachable!("the type was checked"),
        }
    }

    /// Reads into `buf`: the number of bytes read, `0` at the end of what the client sends.
    pub fn read<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        poll_fn(move |cx| Pin::new(&mut *self.io).poll_read(cx, buf))
    }

    /// Writes all of `buf`.
    pub fn write_all<'a>(
        &'a mut self,
        mut buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        poll_fn(move |cx| {
            while !buf.is_empty() {
                match Pin::new(&mut *self.io).poll_write(cx, buf) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    Poll::Ready(Ok(n)) => buf = &buf[n..],
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                }
            }
            Pin::new(&mut *self.io).poll_flush(cx)
        })
    }

    /// Sends everything written so far.
    pub fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        poll_fn(move |cx| Pin::new(&mut *self.io).poll_flush(cx))
    }

    /// Flushes and closes the writing side.
    pub fn close(&mut self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        poll_fn(move |cx| Pin::new(&mut *self.io).poll_close(cx))
    }
}

impl Io for Upgraded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().io).poll_read(cx, buf)
    }

    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_close(cx)
    }
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded").finish_non_exhaustive()
    }
}

type BoxHandler = Box<dyn FnOnce(Upgraded) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// What an offer and the server's side of it share.
struct Shared {
    /// The protocols the request's `Upgrade` header lists, in its order.
    protocols: Vec<String>,
    handler: Mutex<Option<BoxHandler>>,
    /// Set by `prepare` when it let the app's `101` through: the head will be sent.
    confirmed: AtomicBool,
}

impl Shared {
    fn handler(&self) -> std::sync::MutexGuard<'_, Option<BoxHandler>> {
        self.handler.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether a request asks for a connection upgrade a server may offer (REQ-UPGRADE-1): an
/// HTTP/1.1 request other than `CONNECT`, with an `Upgrade` header and the `upgrade` option in
/// `Connection` (RFC 9110 §7.6.1, §7.8).
///
/// ```
/// use rwgi::http::{HeaderMap, HeaderValue, Method, Version};
/// use rwgi::upgrade::asks_for_upgrade;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("upgrade", HeaderValue::from_static("websocket"));
/// assert!(!asks_for_upgrade(&Method::GET, Version::HTTP_11, &headers), "no Connection: upgrade");
/// headers.insert("connection", HeaderValue::from_static("keep-alive, Upgrade"));
/// assert!(asks_for_upgrade(&Method::GET, Version::HTTP_11, &headers));
/// assert!(!asks_for_upgrade(&Method::GET, Version::HTTP_2, &headers));
/// ```
pub fn asks_for_upgrade(method: &Method, version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11
        && method != Method::CONNECT
        && headers.contains_key(UPGRADE)
        && has_option(headers, "upgrade")
}

/// Whether the `Connection` header lists `option` (case-insensitive).
pub(crate) fn has_option(headers: &HeaderMap, option: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(option))
}

/// An upgrade offer for a request that asks for one, and the server's side of it: for a
/// server that can hand connections over. `None` when the request does not ask
/// ([`asks_for_upgrade`]).
///
/// The server puts the [`Upgrade`] in the environ's extensions and keeps the [`Acceptance`];
/// after it sent the app's `101`, [`Acceptance::take_handler`] gives the handler to run on the
/// connection.
///
/// ```
/// use rwgi::http::{HeaderMap, HeaderValue, Method, Version};
/// use rwgi::upgrade::offer;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("upgrade", HeaderValue::from_static("websocket"));
/// assert!(offer(&Method::GET, Version::HTTP_11, &headers).is_none(), "no Connection: upgrade");
/// headers.insert("connection", HeaderValue::from_static("upgrade"));
/// let (upgrade, _acceptance) = offer(&Method::GET, Version::HTTP_11, &headers).unwrap();
/// assert_eq!(upgrade.protocols().collect::<Vec<_>>(), ["websocket"]);
/// ```
pub fn offer(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
) -> Option<(Upgrade, Acceptance)> {
    if !asks_for_upgrade(method, version, headers) {
        return None;
    }
    let protocols = headers
        .get_all(UPGRADE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
        .collect();
    let shared = Arc::new(Shared {
        protocols,
        handler: Mutex::new(None),
        confirmed: AtomicBool::new(false),
    });
    Some((
        Upgrade {
            shared: Arc::clone(&shared),
        },
        Acceptance { shared },
    ))
}

/// A server's offer to hand this request's connection to the app: in the environ's extensions
/// when the request asked for an upgrade and the server can do it (REQ-UPGRADE-1).
///
/// Take it out with `environ.extensions_mut().remove::<Upgrade>()` and answer with
/// [`accept`](Upgrade::accept), or ignore it and answer as usual.
///
/// ```
/// use rwgi::http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
/// use rwgi::upgrade::offer;
/// use rwgi::StartResponse;
///
/// # let mut headers = HeaderMap::new();
/// # headers.insert("connection", HeaderValue::from_static("upgrade"));
/// # headers.insert("upgrade", HeaderValue::from_static("echo"));
/// let (upgrade, _) = offer(&Method::GET, Version::HTTP_11, &headers).unwrap();
/// let response = upgrade.accept(StartResponse::new(), "echo", HeaderMap::new(), |_io| async {});
/// assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
/// assert_eq!(response.headers()["upgrade"], "echo");
/// assert_eq!(response.headers()["connection"], "upgrade");
/// ```
#[derive(Clone)]
pub struct Upgrade {
    shared: Arc<Shared>,
}

impl Upgrade {
    /// The protocols the client asked for, in the order of its `Upgrade` header (like
    /// `websocket`, or `name/version`).
    pub fn protocols(&self) -> impl Iterator<Item = &str> {
        self.shared.protocols.iter().map(String::as_str)
    }

    /// Whether the client asked for `protocol` (compared without regard to ASCII case).
    pub fn asks_for(&self, protocol: &str) -> bool {
        self.protocols()
            .any(|asked| asked.eq_ignore_ascii_case(protocol))
    }

    /// Takes the offer (REQ-UPGRADE-2): the `101 Switching Protocols` answer to return, switching
    /// to `protocol`, which must be one the client asked for, with `headers` (such as
    /// `Sec-WebSocket-Accept`), `Upgrade` and `Connection: upgrade` set, and an empty body.
    ///
    /// Once the server has sent the `101`, it calls `handler` with the connection and runs
    /// the future it returns to its end; then the connection closes. When the `101` is not sent
    /// (a middleware replaced the answer, the head broke a rule and became a `500`, the client
    /// went away), the handler is dropped without being called. The handler runs apart from
    /// the request: what it needs from the environ, it takes along.
    pub fn accept<F, Fut>(
        self,
        mut start: StartResponse,
        protocol: &str,
        mut headers: HeaderMap,
        handler: F,
    ) -> Response<Empty>
    where
        F: FnOnce(Upgraded) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // The client's spelling of a protocol it asked for; anything else as given, which the
        // server then refuses (REQ-UPGRADE-2).
        let named = self
            .protocols()
            .find(|asked| asked.eq_ignore_ascii_case(protocol))
            .unwrap_or(protocol);
        match HeaderValue::from_str(named) {
            Ok(value) => {
                headers.insert(UPGRADE, value);
            }
            Err(_) => {
                headers.remove(UPGRADE);
            }
        }
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        *self.shared.handler() = Some(Box::new(move |io| Box::pin(handler(io))));
        start.extensions_mut().insert(Switching {
            shared: Arc::clone(&self.shared),
        });
        start
            .start(StatusCode::SWITCHING_PROTOCOLS, headers)
            .body(Empty)
    }
}

impl fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrade")
            .field("protocols", &self.shared.protocols)
            .finish()
    }
}

/// The mark of an accepted offer, in the extensions of the `101` that [`Upgrade::accept`]
/// makes: the only way a `101` passes the head checks (REQ-RESP-1, REQ-UPGRADE-2).
///
/// ```
/// use rwgi::http::{HeaderMap, HeaderValue, Method, Version};
/// use rwgi::upgrade::{offer, Switching};
/// use rwgi::StartResponse;
///
/// # let mut headers = HeaderMap::new();
/// # headers.insert("connection", HeaderValue::from_static("upgrade"));
/// # headers.insert("upgrade", HeaderValue::from_static("echo"));
/// let (upgrade, _) = offer(&Method::GET, Version::HTTP_11, &headers).unwrap();
/// let response = upgrade.accept(StartResponse::new(), "echo", HeaderMap::new(), |_io| async {});
/// assert!(response.extensions().get::<Switching>().is_some());
/// assert!(response.check(&Method::GET).is_ok());
/// ```
#[derive(Clone)]
pub struct Switching {
    shared: Arc<Shared>,
}

impl Switching {
    /// Whether the offer this answer takes listed `protocol`.
    pub(crate) fn offered(&self, protocol: &str) -> bool {
        self.shared
            .protocols
            .iter()
            .any(|asked| asked.eq_ignore_ascii_case(protocol))
    }

    /// The protocols the offer listed, for messages.
    pub(crate) fn protocols(&self) -> &[String] {
        &self.shared.protocols
    }

    /// Marks the `101` as about to be sent, so that [`Acceptance::take_handler`] gives the
    /// handler out. [`prepare`](crate::server::prepare) does this when it lets the `101`
    /// through; a server or driver that does not use it calls this once it checked the answer
    /// ([`Response::check`]) and is about to send it.
    pub fn confirm(&self) {
        self.shared.confirmed.store(true, Ordering::SeqCst);
    }
}

impl fmt::Debug for Switching {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Switching")
            .field("protocols", &self.shared.protocols)
            .finish()
    }
}

/// The server's side of an offer: where the app's handler arrives.
///
/// The whole of a server's part, with [`prepare`](crate::server::prepare) and an in-memory
/// connection:
///
/// ```
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use rwgi::app::app_fn;
/// use rwgi::http::{HeaderMap, HeaderValue, Request, StatusCode};
/// use rwgi::environ::{ConnectionInfo, Environ};
/// use rwgi::server::prepare;
/// use rwgi::upgrade::{offer, Io, Upgrade, Upgraded};
/// use rwgi::{Input, StartResponse};
///
/// /// A connection whose client sent `hi` and then closed its side.
/// struct Memory(Vec<u8>);
/// impl Io for Memory {
///     fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
///         let n = buf.len().min(self.0.len());
///         buf[..n].copy_from_slice(&self.0[..n]);
///         self.0.drain(..n);
///         Poll::Ready(Ok(n))
///     }
///     fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
///         Poll::Ready(Ok(buf.len()))
///     }
///     fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
///         Poll::Ready(Ok(()))
///     }
///     fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
///         Poll::Ready(Ok(()))
///     }
/// }
///
/// let app = app_fn(|mut environ: Environ, start: StartResponse| async move {
///     let offer = environ.extensions_mut().remove::<Upgrade>().expect("an offer");
///     Ok(offer.accept(start, "echo", HeaderMap::new(), |mut io| async move {
///         let mut buf = [0; 8];
///         let n = io.read(&mut buf).await.unwrap();
///         io.write_all(&buf[..n]).await.unwrap();
///     }))
/// });
///
/// // The server: an offer for the request that asks, in the environ's extensions.
/// let mut request = Request::get("/")
///     .header("host", "h")
///     .header("connection", "upgrade")
///     .header("upgrade", "echo")
///     .body(Input::empty())
///     .unwrap();
/// let (upgrade, acceptance) =
///     offer(request.method(), request.version(), request.headers()).unwrap();
/// request.extensions_mut().insert(upgrade);
/// let environ = Environ::from_request(request, &ConnectionInfo::default()).unwrap();
/// let prepared = futures_executor::block_on(prepare(&app, environ));
/// assert_eq!(prepared.status(), StatusCode::SWITCHING_PROTOCOLS);
/// // ... having sent the 101 head, it runs the handler on the connection.
/// let handler = acceptance.take_handler().expect("the 101 passed");
/// futures_executor::block_on(handler.run(Upgraded::new(Memory(b"hi".to_vec())))).unwrap();
/// ```
pub struct Acceptance {
    shared: Arc<Shared>,
}

impl Acceptance {
    /// The app's handler, once the app took the offer and [`prepare`](crate::server::prepare)
    /// let its `101` through (REQ-UPGRADE-3); `None` otherwise, and after the first call.
    ///
    /// A server calls it after it sent the `101` head and runs the handler on the connection;
    /// whatever it gets for any other answer, it drops.
    pub fn take_handler(&self) -> Option<Handler> {
        if !self.shared.confirmed.load(Ordering::SeqCst) {
            return None;
        }
        self.shared.handler().take().map(|run| Handler { run })
    }

    /// Whether the app took the offer, whatever became of its answer.
    pub fn is_accepted(&self) -> bool {
        self.shared.handler().is_some()
    }
}

impl fmt::Debug for Acceptance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptance")
            .field("protocols", &self.shared.protocols)
            .field("confirmed", &self.shared.confirmed.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

/// The app's handler of an upgraded connection, for the server to run: see [`Acceptance`].
///
/// ```
/// use rwgi::upgrade::Handler;
///
/// fn run_later(handler: Handler) -> impl std::future::Future<Output = Result<(), rwgi::Error>> {
///     // A server calls this with the upgraded connection once the 101 is out.
///     # let io: rwgi::upgrade::Upgraded = unimplemented!();
///     handler.run(io)
/// }
/// # let _ = run_later;
/// ```
pub struct Handler {
    run: BoxHandler,
}

impl Handler {
    /// Runs the handler on `io` to its end. A panic of the handler, or of its future, is
    /// caught and becomes the `Err` (with the panic's message), so the server goes on serving
    /// (as REQ-ERR-4 has it for apps).
    pub fn run(self, io: Upgraded) -> impl Future<Output = Result<(), Error>> + Send {
        let started = catch_unwind(AssertUnwindSafe(move || (self.run)(io)));
        let mut future = started.map_err(|panic| panic_message(&*panic));
        poll_fn(move |cx| match &mut future {
            Err(message) => Poll::Ready(Err(Error::msg(format!(
                "upgrade handler panicked: {message}"
            )))),
            Ok(future) => match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
                Err(panic) => Poll::Ready(Err(Error::msg(format!(
                    "upgrade handler panicked: {}",
                    panic_message(&*panic)
                )))),
            },
        })
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asking(connection: &'static str, upgrade: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static(connection));
        headers.insert(UPGRADE, HeaderValue::from_static(upgrade));
        headers
    }

    #[test]
    fn only_an_http_1_1_request_with_both_headers_asks() {
        let get = Method::GET;
        let both = asking("Upgrade", "websocket");
        assert!(asks_for_upgrade(&get, Version::HTTP_11, &both));
        assert!(!asks_for_upgrade(&get, Version::HTTP_10, &both));
        assert!(!asks_for_upgrade(&get, Version::HTTP_2, &both));
        assert!(!asks_for_upgrade(&Method::CONNECT, Version::HTTP_11, &both));
        assert!(!asks_for_upgrade(
            &get,
            Version::HTTP_11,
            &asking("close", "websocket")
        ));
        let mut options = asking("keep-alive", "websocket");
        options.append(CONNECTION, HeaderValue::from_static(" upgrade "));
        assert!(asks_for_upgrade(&get, Version::HTTP_11, &options));
        let mut none = both.clone();
        none.remove(UPGRADE);
        assert!(!asks_for_upgrade(&get, Version::HTTP_11, &none));
    }

    #[test]
    fn the_offer_lists_the_protocols_asked_for() {
        let (upgrade, _) = offer(
            &Method::GET,
            Version::HTTP_11,
            &asking("upgrade", "h2c, WebSocket , foo/2"),
        )
        .unwrap();
        assert_eq!(
            upgrade.protocols().collect::<Vec<_>>(),
            ["h2c", "WebSocket", "foo/2"]
        );
        assert!(upgrade.asks_for("websocket"));
        assert!(!upgrade.asks_for("foo"));
        assert!(format!("{upgrade:?}").contains("WebSocket"));
    }

    #[test]
    fn accepting_makes_a_101_and_the_handler_waits_for_confirmation() {
        let (upgrade, acceptance) = offer(
            &Method::GET,
            Version::HTTP_11,
            &asking("upgrade", "WebSocket"),
        )
        .unwrap();
        assert!(!acceptance.is_accepted());
        let response = upgrade.accept(
            StartResponse::new(),
            "websocket",
            HeaderMap::new(),
            |_| async {},
        );
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers()[UPGRADE],
            "WebSocket",
            "the client's spelling"
        );
        assert_eq!(response.headers()[CONNECTION], "upgrade");
        let switching = response.extensions().get::<Switching>().unwrap();
        assert!(switching.offered("WEBSOCKET"));
        assert!(acceptance.is_accepted());
        assert!(acceptance.take_handler().is_none(), "not confirmed yet");
        switching.confirm();
        assert!(acceptance.take_handler().is_some());
        assert!(acceptance.take_handler().is_none(), "only once");
    }

    /// An in-memory I/O: reads from `input`, keeps what is written.
    #[derive(Debug)]
    struct Memory {
        input: Vec<u8>,
        output: Vec<u8>,
    }

    impl Io for Memory {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.input.len());
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            Poll::Ready(Ok(n))
        }
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(3);
            self.output.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn the_handler_runs_on_the_connection_and_panics_are_caught() {
        let (upgrade, acceptance) =
            offer(&Method::GET, Version::HTTP_11, &asking("upgrade", "echo")).unwrap();
        let response = upgrade.accept(
            StartResponse::new(),
            "echo",
            HeaderMap::new(),
            |mut io| async move {
                let mut buf = [0; 16];
                let n = io.read(&mut buf).await.unwrap();
                io.write_all(&buf[..n]).await.unwrap();
                io.flush().await.unwrap();
                io.close().await.unwrap();
                let memory = io.downcast::<Memory>().unwrap();
                assert_eq!(memory.output, b"hello");
            },
        );
        response.extensions().get::<Switching>().unwrap().confirm();
        let handler = acceptance.take_handler().unwrap();
        let io = Upgraded::new(Memory {
            input: b"hello".to_vec(),
            output: Vec::new(),
        });
        assert!(io.is::<Memory>());
        assert!(format!("{handler:?}").starts_with("Handler"));
        futures_executor::block_on(handler.run(io)).unwrap();

        let (upgrade, acceptance) =
            offer(&Method::GET, Version::HTTP_11, &asking("upgrade", "echo")).unwrap();
        let response = upgrade.accept(StartResponse::new(), "echo", HeaderMap::new(), |_| async {
            panic!("handler exploded");
        });
        response.extensions().get::<Switching>().unwrap().confirm();
        let error = futures_executor::block_on(acceptance.take_handler().unwrap().run(
            Upgraded::new(Memory {
                input: Vec::new(),
                output: Vec::new(),
            }),
        ))
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "upgrade handler panicked: handler exploded"
        );
    }

    #[test]
    fn a_wrong_downcast_gives_the_connection_back() {
        struct Other;
        impl Io for Other {
            fn poll_read(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                _: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                Poll::Ready(Ok(0))
            }
            fn poll_write(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                _: &[u8],
            ) -> Poll<io::Result<usize>> {
                Poll::Ready(Ok(0))
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
        let io = Upgraded::new(Other);
        let mut io = io.downcast::<Memory>().unwrap_err();
        let error = futures_executor::block_on(io.write_all(b"x")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WriteZero);
        assert!(format!("{io:?}").starts_with("Upgraded"));
    }
}
