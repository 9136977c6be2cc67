//! rwgi `App` → `tower::Service`.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_core::Stream;
use http_body::{Body as HttpBody, Frame, SizeHint};
use rwgi::body::Body;
use rwgi::environ::ConnectionInfo;
use rwgi::http::header::CONTENT_LENGTH;
use rwgi::http::{request, Extensions, HeaderValue, Method, StatusCode};
use rwgi::server::{prepare_with, Prepared, ResponseBody};
use rwgi::trailers::Trailers;
use rwgi::{App, Environ, Error, Input};
use tower_service::Service;

use crate::{BoxError, OriginalUri, ScriptName, SERVER_INFO};

/// An rwgi [`App`] as a [`tower_service::Service`]: serve it with hyper-util, `axum::serve`,
/// or nest it in an axum `Router`.
///
/// Each call maps the `http::Request` onto an [`Environ`] with [`Environ::from_parts`]
/// (`400 Bad Request` without calling the app when the request breaks REQ-ENV-3 or
/// REQ-ENV-6), mounts it (below), and runs the app through [`prepare_with`], so the rules of
/// REQ-SRV-4..8 and REQ-ERR-4 hold as on any rwgi server (REQ-BRIDGE-1). The service is always
/// ready: `poll_ready` returns `Ready(Ok(()))` and every request is called at once
/// (REQ-BRIDGE-2). It never fails: its error type is [`Infallible`], and an app that fails
/// gets a `500` whose cause is in the response's [`AppFailure`] extension.
///
/// # Where the connection facts come from
///
/// In this order: a [`ConnectionInfo`] request extension (a [`ServiceApp`](crate::ServiceApp)
/// in front puts the outer server's there); with the `axum` feature, the addresses of an
/// `axum::extract::ConnectInfo<SocketAddrs>` extension (what
/// `into_make_service_with_connect_info::<SocketAddrs>()` adds: both addresses) or the peer of
/// a `ConnectInfo<SocketAddr>` (peer only) over the service's own facts;
/// else the service's own facts, which a server gives per connection with
/// [`for_connection`](AppService::for_connection) or [`with_connection`](AppService::with_connection).
///
/// # Mounting
///
/// When an [`OriginalUri`] request extension (or, with the `axum` feature, axum's
/// `OriginalUri`, which `Router::nest_service` leaves) holds a target whose path ends with the
/// request's path, the app gets the original target and the part in front as its
/// `script_name`: under `Router::nest_service("/api", service)`, a request for `/api/users`
/// has `script_name` `/api` and `path_info` `/users` (REQ-BRIDGE-4). A
/// [`root_path`](AppService::root_path) then mounts the app further, as a server's configured
/// root path does (REQ-PATH-6).
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::body::Full;
/// use rwgi::http::{HeaderMap, Request, StatusCode};
/// use rwgi_tower::AppService;
/// use tower::ServiceExt;
///
/// let app = app_fn(|environ: rwgi::Environ, start: rwgi::StartResponse| async move {
///     let text = format!("{} {}", environ.script_name(), environ.path_info());
///     Ok(start.start(StatusCode::OK, HeaderMap::new()).body(Full::new(text)))
/// });
/// let router = axum::Router::new().nest_service("/api", AppService::new(app));
/// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # runtime.block_on(async {
/// let request = Request::get("/api/users").header("host", "h").body(axum::body::Body::empty()).unwrap();
/// let response = router.oneshot(request).await.unwrap();
/// let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
/// # #[cfg(feature = "axum")]
/// assert_eq!(body, "/api /users");
/// # });
/// ```
pub struct AppService<A> {
    // One reference count for everything: hyper-util and axum clone the service for every
    // request.
    shared: Arc<Shared<A>>,
}

/// What every copy of one service shares.
struct Shared<A> {
    app: Arc<A>,
    connection: ConnectionInfo,
    root_path: Option<Box<str>>,
}

impl<A> Clone for AppService<A> {
    fn clone(&self) -> Self {
        AppService {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<A> fmt::Debug for AppService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppService")
            .field("connection", &self.shared.connection)
            .field("root_path", &self.shared.root_path)
            .finish_non_exhaustive()
    }
}

impl<A: App + 'static> AppService<A> {
    /// Serves `app`, with connection facts of plain HTTP and [`SERVER_INFO`], and no
    /// addresses.
    ///
    /// ```
    /// let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
    ///     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
    /// });
    /// let service = rwgi_tower::AppService::new(app);
    /// # let _ = service;
    /// ```
    pub fn new(app: A) -> Self {
        AppService::from_arc(Arc::new(app))
    }

    /// Serves an app that is already shared.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let app = Arc::new(rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
    ///     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
    /// }));
    /// let service = rwgi_tower::AppService::from_arc(Arc::clone(&app));
    /// assert!(std::ptr::eq(service.app(), &*app));
    /// ```
    pub fn from_arc(app: Arc<A>) -> Self {
        AppService::from_shared(Shared {
            app,
            connection: ConnectionInfo::default().server(SERVER_INFO),
            root_path: None,
        })
    }

    fn from_shared(shared: Shared<A>) -> Self {
        AppService {
            shared: Arc::new(shared),
        }
    }

    /// The app.
    ///
    /// ```
    /// # let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
    /// #     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
    /// # });
    /// let service = rwgi_tower::AppService::new(app);
    /// let _app = service.app();
    /// ```
    pub fn app(&self) -> &A {
        &self.shared.app
    }

    /// The same service with `connection` as its connection facts: scheme, addresses and
    /// server facts (REQ-ENV-9) for every request it serves.
    ///
    /// ```
    /// use rwgi::environ::{ConnectionInfo, ServerInfo};
    /// use rwgi::http::uri::Scheme;
    /// # let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
    /// #     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
    /// # });
    ///
    /// let behind_tls = ConnectionInfo::new(Scheme::HTTPS).server(ServerInfo::new("my-server/1").multithread(true));
    /// let service = rwgi_tower::AppService::new(app).with_connection(behind_tls);
    /// # let _ = service;
    /// ```
    #[must_use]
    pub fn with_connection(self, connection: ConnectionInfo) -> Self {
        AppService::from_shared(Shared {
            app: Arc::clone(&self.shared.app),
            connection,
            root_path: self.shared.root_path.clone(),
        })
    }

    /// A copy of the service for one accepted connection: the same app, scheme and server
    /// facts, with the connection's local and peer addresses. A server built on hyper calls it
    /// once per connection.
    ///
    /// ```
    /// # let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
    /// #     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
    /// # });
    /// let service = rwgi_tower::AppService::new(app);
    /// let local = "127.0.0.1:8000".parse().ok();
    /// let peer = "127.0.0.1:50000".parse().ok();
    /// let for_this_connection = service.for_connection(local, peer);
    /// # let _ = for_this_connection;
    /// ```
    #[must_use]
    pub fn for_connection(&self, local: Option<SocketAddr>, peer: Option<SocketAddr>) -> Self {
        let mut connection = self.shared.connection.clone();
        if let Some(local) = local {
            connection = connection.local_addr(local);
        }
        if let Some(peer) = peer {
            connection = connection.peer_addr(peer);
        }
        self.clone().with_connection(connection)
    }

    /// Mounts the app at `prefix`, like a server's configured root path: `prefix` moves from
    /// `path_info` to `script_name`, and a request outside it gets `404 Not Found` without
    /// calling the app (REQ-PATH-6).
    ///
    /// # Errors
    ///
    /// [`RootPathError`] when `prefix` does not start with `/` or ends with `/` (REQ-PATH-5).
    ///
    /// ```
    /// # let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
    /// #     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
    /// # });
    /// let service = rwgi_tower::AppService::new(app);
    /// assert!(service.clone().root_path("/app").is_ok());
    /// let error = service.root_path("/app/").unwrap_err();
    /// assert_eq!(error.to_string(), "REQ-PATH-5: a root path starts with `/` and does not end with one, got \"/app/\"");
    /// ```
    pub fn root_path(self, prefix: &str) -> Result<Self, RootPathError> {
        if !prefix.starts_with('/') || prefix.ends_with('/') {
            return Err(RootPathError {
                prefix: prefix.into(),
            });
        }
        Ok(AppService::from_shared(Shared {
            app: Arc::clone(&self.shared.app),
            connection: self.shared.connection.clone(),
            root_path: Some(prefix.into()),
        }))
    }

    /// Maps one request onto an environ and starts the app on it; the server's own answer
    /// when the request cannot become an environ or lies outside the root path.
    fn start<B>(&self, request: http::Request<B>) -> ResponseFuture<A::Body>
    where
        B: HttpBody + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = request.into_parts();
        let input = if body.is_end_stream() {
            Input::empty()
        } else {
            Input::from_body(HttpInput::new(body))
        };
        let shared = &*self.shared;
        // A request straight from hyper has no extensions: nothing to look for.
        let (prefix, ours) = if parts.extensions.is_empty() {
            (None, None)
        } else {
            // Trailers do not cross the bridge (REQ-BRIDGE-5): an offer of them from the server
            // in front (an rwgi server through `ServiceApp`) is not this bridge's to make.
            parts.extensions.remove::<Trailers>();
            let prefix = restore_original_target(&mut parts);
            (
                prefix,
                connection_from(&mut parts.extensions, &shared.connection)
                    .map(ConnectionInfo::withdraw::<Trailers>),
            )
        };
        let connection = ours.as_ref().unwrap_or(&shared.connection);
        let mut environ = match Environ::from_parts(parts, input, connection) {
            Ok(environ) => environ,
            Err(error) => {
                let status = error.status();
                let text = if status == StatusCode::NOT_IMPLEMENTED {
                    "Not Implemented\n"
                } else {
                    "Bad Request\n"
                };
                let mut response = plain(status, text);
                let reason = format!("answered {}: {error}", status.as_u16());
                response.extensions_mut().insert(AppFailure(reason.into()));
                return ResponseFuture::ready(response);
            }
        };
        if environ.method() == Method::CONNECT {
            // No tunnel to offer: refused without calling the app (REQ-SRV-12).
            return ResponseFuture::ready(plain(StatusCode::NOT_IMPLEMENTED, "Not Implemented\n"));
        }
        if let Some(prefix) = prefix {
            // Checked to be whole segments of this very path: cannot fail, and a failure would
            // only leave the app unmounted.
            let _ = environ.mount(&prefix);
        }
        if let Some(root) = &shared.root_path {
            if environ.mount(root).is_err() {
                return ResponseFuture::ready(plain(StatusCode::NOT_FOUND, "Not Found\n"));
            }
        }
        let app = Arc::clone(&shared.app);
        let head = environ.method() == Method::HEAD;
        // The future owns the app through its `Arc` (an app too): no `async` block around it,
        // which would hold the environ twice.
        ResponseFuture {
            state: State::Running(Box::pin(prepare_with(app, environ, move |prepared| {
                into_response(prepared, head)
            }))),
        }
    }
}

impl<A, B> Service<http::Request<B>> for AppService<A>
where
    A: App + 'static,
    B: HttpBody + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<AppBody<A::Body>>;
    type Error = Infallible;
    type Future = ResponseFuture<A::Body>;

    /// Always ready: the app is called for every request at once (REQ-BRIDGE-2).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.start(request)
    }
}

/// Gives the request its target from before a mount prefix was stripped, and returns that
/// prefix; `None`, and the request unchanged, when no original target matches.
fn restore_original_target(parts: &mut request::Parts) -> Option<String> {
    // Ours is removed: the app sees the extensions the request had before the bridge.
    parts.extensions.remove::<ScriptName>();
    let original = match parts.extensions.remove::<OriginalUri>() {
        Some(OriginalUri(uri)) => uri,
        None => axum_original_uri(&parts.extensions)?,
    };
    if original.query() != parts.uri.query() {
        return None;
    }
    let prefix = mount_prefix(original.path(), parts.uri.path())?;
    let prefix = (!prefix.is_empty()).then(|| prefix.to_owned());
    parts.uri = original;
    prefix
}

#[cfg(feature = "axum")]
fn axum_original_uri(extensions: &Extensions) -> Option<rwgi::http::Uri> {
    extensions
        .get::<axum::extract::OriginalUri>()
        .map(|original| original.0.clone())
}

#[cfg(not(feature = "axum"))]
fn axum_original_uri(_: &Extensions) -> Option<rwgi::http::Uri> {
    None
}

/// The prefix that was stripped from `original` to leave `current`, when it is whole
/// segments: `/api` for `/api/users` → `/users`, and for `/api` → `/` (a prefix that matches
/// the whole path leaves `/`, as axum's `nest` does).
fn mount_prefix<'a>(original: &'a str, current: &str) -> Option<&'a str> {
    if original == current {
        return Some("");
    }
    let prefix = match original.strip_suffix(current) {
        Some(prefix) => prefix,
        None if current == "/" => original,
        None => return None,
    };
    (prefix.starts_with('/') && !prefix.ends_with('/') && current.starts_with('/'))
        .then_some(prefix)
}

/// The connection facts a request brings along, if any (see [`AppService`]); `None` means the
/// service's own.
fn connection_from(extensions: &mut Extensions, own: &ConnectionInfo) -> Option<ConnectionInfo> {
    if let Some(connection) = extensions.remove::<ConnectionInfo>() {
        return Some(connection);
    }
    axum_connection(extensions, own)
}

#[cfg(feature = "axum")]
fn axum_connection(extensions: &Extensions, own: &ConnectionInfo) -> Option<ConnectionInfo> {
    use axum::extract::ConnectInfo;

    if let Some(ConnectInfo(addrs)) = extensions.get::<ConnectInfo<SocketAddrs>>() {
        let connection = own.clone().peer_addr(addrs.peer);
        return Some(match addrs.local {
            Some(local) => connection.local_addr(local),
            None => connection,
        });
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| own.clone().peer_addr(*peer))
}

#[cfg(not(feature = "axum"))]
fn axum_connection(_: &Extensions, _: &ConnectionInfo) -> Option<ConnectionInfo> {
    None
}

/// Both addresses of a TCP connection that `axum::serve` accepted, as axum's connect info: serve
/// with `into_make_service_with_connect_info::<SocketAddrs>()` and an [`AppService`] in the
/// router gives its app the local address as well as the peer's (REQ-ENV-10), which axum's
/// `ConnectInfo<SocketAddr>` alone cannot.
///
/// ```no_run
/// use rwgi_tower::{AppService, SocketAddrs};
/// # async fn serve(app: impl rwgi::App + 'static) -> std::io::Result<()> {
/// let router = axum::Router::new().fallback_service(AppService::new(app));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
/// axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddrs>()).await
/// # }
/// ```
#[cfg(feature = "axum")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketAddrs {
    local: Option<SocketAddr>,
    peer: SocketAddr,
}

#[cfg(feature = "axum")]
impl SocketAddrs {
    /// The addresses of one connection.
    ///
    /// ```
    /// let peer = "127.0.0.1:50000".parse().unwrap();
    /// let addrs = rwgi_tower::SocketAddrs::new(None, peer);
    /// assert_eq!(addrs.peer(), peer);
    /// assert_eq!(addrs.local(), None);
    /// ```
    pub fn new(local: Option<SocketAddr>, peer: SocketAddr) -> Self {
        SocketAddrs { local, peer }
    }

    /// The address the server accepted the connection on, when the socket could tell.
    pub fn local(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

#[cfg(feature = "axum")]
impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for SocketAddrs
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        SocketAddrs {
            local: stream.io().local_addr().ok(),
            peer: *stream.remote_addr(),
        }
    }
}

/// The prepared answer as an `http::Response`: the HEAD answer announces the length a GET
/// would have had, and a replaced answer says why in an [`AppFailure`].
fn into_response<B: Body + Unpin>(prepared: Prepared<B>, head: bool) -> http::Response<AppBody<B>> {
    let length = prepared.content_length();
    let failure = prepared
        .failure()
        .map(|failure| AppFailure(failure.to_string().into()));
    let mut prepared = prepared;
    let extensions = std::mem::take(prepared.extensions_mut());
    let (status, mut headers, body) = prepared.into_parts();
    if head && !headers.contains_key(CONTENT_LENGTH) {
        if let Some(length) = length {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    // Built in place around the body rather than mapped from `Prepared::into_http`, which
    // would move the whole response once more.
    let mut response = http::Response::new(AppBody { body });
    *response.status_mut() = status;
    // The map `Response::new` made is empty and owns no memory: forgetting it leaks nothing
    // and skips dropping it.
    std::mem::forget(std::mem::replace(response.headers_mut(), headers));
    *response.extensions_mut() = extensions;
    if let Some(failure) = failure {
        response.extensions_mut().insert(failure);
    }
    response
}

/// The `500` for an app that panicked outside `prepare`'s guard.
#[cold]
fn panicked<B: Body + Unpin>(panic: &(dyn std::any::Any + Send)) -> http::Response<AppBody<B>> {
    let mut response = plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n");
    let message = format!("app panicked: {}", rwgi::server::panic_message(panic));
    response.extensions_mut().insert(AppFailure(message.into()));
    response
}

/// The bridge's own short answer, sent without calling the app.
#[cold]
fn plain<B: Body + Unpin>(status: StatusCode, text: &'static str) -> http::Response<AppBody<B>> {
    into_response(Prepared::plain(status, text), false)
}

/// Why [`AppService`] answered `500` (or `400`) in place of the app: a response extension,
/// for the host's logs, since a service has no log of its own.
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::http::Request;
/// use rwgi_tower::{AppFailure, AppService};
/// use tower::ServiceExt;
///
/// let failing = app_fn(|_, _: rwgi::StartResponse| async move {
///     Err::<rwgi::Response<rwgi::body::Empty>, _>(rwgi::Error::msg("no database"))
/// });
/// let request = Request::get("/").header("host", "h").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
/// let response = futures_executor::block_on(AppService::new(failing).oneshot(request)).unwrap();
/// assert_eq!(response.status(), 500);
/// let failure = response.extensions().get::<AppFailure>().unwrap();
/// assert_eq!(failure.message(), "app error: no database");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppFailure(Arc<str>);

impl AppFailure {
    /// What went wrong, as [`rwgi::server::Failure`] says it.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A root path that cannot be one: see [`AppService::root_path`].
///
/// ```
/// # let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
/// # });
/// let error = rwgi_tower::AppService::new(app).root_path("app").unwrap_err();
/// assert_eq!(error.prefix(), "app");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RootPathError {
    prefix: Box<str>,
}

impl RootPathError {
    /// The prefix that was refused.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl fmt::Display for RootPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "REQ-PATH-5: a root path starts with `/` and does not end with one, got {:?}",
            self.prefix
        )
    }
}

impl std::error::Error for RootPathError {}

/// The future of [`AppService`]'s response.
///
/// It owns the app's future; dropping it (the client went away) drops the app's future and
/// whatever it holds (REQ-CONC-2). Polling it again after it completed returns `Pending`.
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::body::Full;
/// use rwgi::http::Request;
/// use rwgi_tower::{AppService, ResponseFuture};
/// use tower_service::Service;
///
/// let app = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(Default::default(), Default::default()).body(Full::new("hi")))
/// });
/// let mut service = AppService::new(app);
/// let request = Request::get("/").header("host", "h").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
/// let future: ResponseFuture<Full> = service.call(request);
/// let response = futures_executor::block_on(future).unwrap();
/// assert_eq!(response.status(), 200);
/// ```
pub struct ResponseFuture<B> {
    state: State<B>,
}

type Running<B> = Pin<Box<dyn Future<Output = http::Response<AppBody<B>>> + Send>>;

enum State<B> {
    // Boxed, so that the future stays two words, moved cheaply on the common path; the bridge's
    // own answers (400, 404) are rare.
    Ready(Option<Box<http::Response<AppBody<B>>>>),
    Running(Running<B>),
}

impl<B> ResponseFuture<B> {
    #[cold]
    fn ready(response: http::Response<AppBody<B>>) -> Self {
        ResponseFuture {
            state: State::Ready(Some(Box::new(response))),
        }
    }
}

impl<B> fmt::Debug for ResponseFuture<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Ready(Some(_)) => "ready",
            State::Ready(None) => "done",
            State::Running(_) => "running",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

// The response is never pinned in place: it is moved out whole.
impl<B> Unpin for ResponseFuture<B> {}

impl<B: Body + Unpin> Future for ResponseFuture<B> {
    type Output = Result<http::Response<AppBody<B>>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = match &mut self.state {
            State::Ready(response) => match response.take() {
                Some(response) => *response,
                None => return Poll::Pending,
            },
            // `prepare` catches the panics of the app's future and body; this catches one in
            // the synchronous part of `App::call`, before there is a future, so that no panic
            // reaches the HTTP stack (REQ-ERR-4).
            State::Running(future) => {
                // The answer is written in place rather than returned through `catch_unwind`'s
                // `Result`, which would copy it twice more.
                let mut answer = None;
                let polled = catch_unwind(AssertUnwindSafe(|| {
                    if let Poll::Ready(response) = future.as_mut().poll(cx) {
                        answer = Some(response);
                    }
                }));
                match (polled, answer) {
                    (Ok(()), Some(response)) => response,
                    (Ok(()), None) => return Poll::Pending,
                    (Err(panic), _) => panicked(&*panic),
                }
            }
        };
        self.state = State::Ready(None);
        Poll::Ready(Ok(response))
    }
}

/// The response body of [`AppService`]: the app's body as [`rwgi::server::prepare`] hands it
/// on, as an [`http_body::Body`] of data frames.
///
/// Its size hint is exact when the length is known, so hyper sends `Content-Length`; otherwise
/// hyper uses chunked encoding. An error after the head went out ends the body with that error,
/// on which hyper drops the connection (REQ-ERR-3). It has no trailers (REQ-BRIDGE-5).
///
/// ```
/// use http_body::Body as _;
/// use rwgi::app::app_fn;
/// use rwgi::body::Full;
/// use rwgi::http::Request;
/// use tower::ServiceExt;
///
/// let app = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(Default::default(), Default::default()).body(Full::new("hello")))
/// });
/// let request = Request::get("/").header("host", "h").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
/// let response = futures_executor::block_on(rwgi_tower::AppService::new(app).oneshot(request)).unwrap();
/// assert_eq!(response.body().size_hint().exact(), Some(5));
/// ```
pub struct AppBody<B> {
    body: ResponseBody<B>,
}

impl<B> fmt::Debug for AppBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppBody").field("body", &self.body).finish()
    }
}

impl<B: Body + Unpin> HttpBody for AppBody<B> {
    type Data = Bytes;
    type Error = Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        Pin::new(&mut this.body)
            .poll_next(cx)
            .map(|item| item.map(|chunk| chunk.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .content_length()
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// A request body of the tower world (any [`http_body::Body`]) as the app's [`Input`]: its data
/// frames as [`Bytes`], with its errors
/// passed on (a client gone in the middle of an upload, REQ-INPUT-2) and its exact size hint as
/// the length still to come. Trailer frames are skipped (REQ-BRIDGE-5).
///
/// [`AppService`] makes one for every request with a body; it is public for servers and
/// middleware of their own.
///
/// ```
/// use rwgi::Input;
/// use rwgi_tower::HttpInput;
///
/// let body = http_body_util::Full::new(bytes::Bytes::from_static(b"name=rwgi"));
/// let mut input = Input::from_body(HttpInput::new(body));
/// assert_eq!(input.content_length(), Some(9));
/// let all = futures_executor::block_on(input.read_to_end(1024)).unwrap();
/// assert_eq!(&all[..], b"name=rwgi");
/// ```
pub struct HttpInput<B> {
    // Behind a mutex, which is only ever taken through `&mut` (no locking) when polled:
    // `Input` must be `Sync`, and axum's body, for one, is not.
    body: Mutex<Pin<Box<B>>>,
    done: bool,
}

impl<B> HttpInput<B> {
    /// Wraps `body`.
    ///
    /// ```
    /// let input = rwgi_tower::HttpInput::new(http_body_util::Empty::<bytes::Bytes>::new());
    /// # let _ = input;
    /// ```
    pub fn new(body: B) -> Self {
        HttpInput {
            body: Mutex::new(Box::pin(body)),
            done: false,
        }
    }
}

impl<B> fmt::Debug for HttpInput<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpInput")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<B> Stream for HttpInput<B>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let body = this.body.get_mut().unwrap_or_else(PoisonError::into_inner);
        loop {
            match ready!(body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    // Trailers carry no body bytes, and an environ has no place for them.
                    if let Ok(mut data) = frame.into_data() {
                        // `Bytes` hands itself over without a copy.
                        return Poll::Ready(Some(Ok(data.copy_to_bytes(data.remaining()))));
                    }
                }
                Some(Err(error)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(Error::from(error.into()))));
                }
                None => {
                    this.done = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl<B> Body for HttpInput<B>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    fn content_length(&self) -> Option<u64> {
        if self.done {
            return Some(0);
        }
        let body = self.body.lock().unwrap_or_else(PoisonError::into_inner);
        body.size_hint().exact()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_prefix_is_what_was_stripped_in_whole_segments() {
        assert_eq!(mount_prefix("/api/users", "/users"), Some("/api"));
        assert_eq!(mount_prefix("/api", "/"), Some("/api"));
        assert_eq!(mount_prefix("/api/", "/"), Some("/api"));
        assert_eq!(mount_prefix("/a/b/c", "/c"), Some("/a/b"));
        assert_eq!(mount_prefix("/same", "/same"), Some(""));
        // Not a suffix, or not at a segment boundary.
        assert_eq!(mount_prefix("/api/users", "/other"), None);
        assert_eq!(mount_prefix("/apiusers", "users"), None);
        assert_eq!(mount_prefix("//users", "/users"), None);
    }

    #[test]
    fn a_root_path_must_start_with_a_slash_and_not_end_with_one() {
        let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
            Ok(start
                .start(StatusCode::OK, Default::default())
                .body(rwgi::body::Empty))
        });
        let service = AppService::new(app);
        for bad in ["", "app", "/app/", "/"] {
            let error = service.clone().root_path(bad).unwrap_err();
            assert_eq!(error.prefix(), bad);
        }
        assert!(service.root_path("/a/b").is_ok());
    }
}
