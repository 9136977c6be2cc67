//! An in-process client for testing apps: no sockets, no runtime.
//!
//! Build a request with [`TestRequest`], [`send`](TestRequest::send) it to an app, and look at
//! the [`TestResponse`]. The request goes through the same [`Environ::from_request`] mapping and
//! the same [`prepare`] step a real server uses, so the app sees what it
//! would see behind a server, and a failing app gets the `500` a server would send.
//!
//! [`block_on`] runs the future on the calling thread for tests without an async runtime.
//!
//! ```
//! use rwgi::app::app_fn;
//! use rwgi::body::Full;
//! use rwgi::http::{HeaderMap, StatusCode};
//! use rwgi_conformance::test_client::{block_on, TestRequest};
//! use rwgi::{Environ, StartResponse};
//!
//! let app = app_fn(|environ: Environ, start: StartResponse| async move {
//!     let text = format!("you asked for {}", environ.path_info());
//!     Ok(start.start(StatusCode::OK, HeaderMap::new()).body(Full::new(text)))
//! });
//!
//! let response = block_on(TestRequest::get("/hello").send(&app));
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.text(), "you asked for /hello");
//! ```

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Version};

use rwgi::environ::{ConnectionInfo, MountError, TargetError};
use rwgi::server::prepare;
use rwgi::{App, Environ, Input};

/// A request to send to an app in-process.
///
/// A `Host: localhost` header is added unless one is set.
///
/// ```
/// use rwgi_conformance::test_client::TestRequest;
///
/// let environ = TestRequest::post("/upload?kind=photo")
///     .header("content-type", "image/png")
///     .body(vec![0u8; 16])
///     .into_environ();
/// assert_eq!(environ.query_string(), "kind=photo");
/// assert_eq!(environ.headers()["content-length"], "16");
/// assert_eq!(environ.headers()["host"], "localhost");
/// ```
#[derive(Debug)]
pub struct TestRequest {
    method: Method,
    target: String,
    version: Version,
    headers: HeaderMap,
    input: Input,
    connection: ConnectionInfo,
    mount: String,
}

impl TestRequest {
    /// A request with any method and target.
    pub fn new(method: Method, target: impl Into<String>) -> Self {
        TestRequest {
            method,
            target: target.into(),
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            input: Input::empty(),
            connection: ConnectionInfo::default(),
            mount: String::new(),
        }
    }

    /// A `GET` request.
    pub fn get(target: impl Into<String>) -> Self {
        TestRequest::new(Method::GET, target)
    }

    /// A `HEAD` request.
    pub fn head(target: impl Into<String>) -> Self {
        TestRequest::new(Method::HEAD, target)
    }

    /// A `POST` request.
    pub fn post(target: impl Into<String>) -> Self {
        TestRequest::new(Method::POST, target)
    }

    /// Adds a header (repeated calls with one name add repeated headers).
    ///
    /// # Panics
    ///
    /// When the name or value is not a valid header name or value.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name).expect("valid header name");
        let value = HeaderValue::try_from(value).expect("valid header value");
        self.headers.append(name, value);
        self
    }

    /// Sets the HTTP version (HTTP/1.1 by default).
    #[must_use]
    pub fn version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// Sets the body; a `Content-Length` header is added when its length is known and no such
    /// header is set.
    #[must_use]
    pub fn body(mut self, input: impl Into<Input>) -> Self {
        self.input = input.into();
        self
    }

    /// Sets the connection facts (scheme, addresses, server facts).
    #[must_use]
    pub fn connection(mut self, connection: ConnectionInfo) -> Self {
        self.connection = connection;
        self
    }

    /// Mounts the app at `prefix`, as a server's root path does.
    #[must_use]
    pub fn mount(mut self, prefix: impl Into<String>) -> Self {
        self.mount = prefix.into();
        self
    }

    /// The environ this request maps to.
    ///
    /// # Errors
    ///
    /// When the request is one a server must refuse (see [`Environ::from_request`]) or the
    /// mount prefix does not fit the path.
    pub fn try_into_environ(mut self) -> Result<Environ, TestRequestError> {
        if !self.headers.contains_key(HOST) {
            self.headers
                .insert(HOST, HeaderValue::from_static("localhost"));
        }
        if let Some(length) = self.input.content_length().filter(|&n| n > 0) {
            self.headers
                .entry(http::header::CONTENT_LENGTH)
                .or_insert_with(|| HeaderValue::from(length));
        }
        let mut request = Request::builder()
            .method(self.method)
            .uri(self.target.as_str())
            .version(self.version)
            .body(self.input)
            .map_err(|error| TestRequestError::Uri(error.to_string()))?;
        *request.headers_mut() = self.headers;
        let mut environ =
            Environ::from_request(request, &self.connection).map_err(TestRequestError::Target)?;
        environ
            .mount(&self.mount)
            .map_err(TestRequestError::Mount)?;
        Ok(environ)
    }

    /// The environ this request maps to.
    ///
    /// # Panics
    ///
    /// Where [`try_into_environ`](TestRequest::try_into_environ) fails.
    ///
    /// ```
    /// let environ = rwgi_conformance::test_client::TestRequest::get("/app/x?y").mount("/app").into_environ();
    /// assert_eq!(environ.script_name(), "/app");
    /// assert_eq!(environ.path_info(), "/x");
    /// assert_eq!(environ.query_string(), "y");
    /// ```
    pub fn into_environ(self) -> Environ {
        self.try_into_environ()
            .unwrap_or_else(|error| panic!("invalid test request: {error}"))
    }

    /// Sends the request to `app` and collects the whole response.
    ///
    /// # Panics
    ///
    /// When the request is invalid, as [`into_environ`](TestRequest::into_environ).
    pub async fn send<A: App>(self, app: &A) -> TestResponse {
        let prepared = prepare(app, self.into_environ()).await;
        let failure = prepared.failure().map(ToString::to_string);
        let length = prepared.content_length();
        let (status, mut headers, mut body) = prepared.into_parts();
        // A server announces every known length; so does this client, HEAD answers included.
        if let Some(length) = length {
            headers
                .entry(http::header::CONTENT_LENGTH)
                .or_insert_with(|| HeaderValue::from(length));
        }
        let mut bytes = BytesMut::new();
        let mut body_error = None;
        while let Some(chunk) = std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut body), cx)
        })
        .await
        {
            match chunk {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(error) => {
                    body_error = Some(error.to_string());
                    break;
                }
            }
        }
        TestResponse {
            status,
            headers,
            body: bytes.freeze(),
            failure,
            body_error,
        }
    }
}

/// Why a [`TestRequest`] is not a valid request.
///
/// ```
/// use rwgi_conformance::test_client::{TestRequest, TestRequestError};
///
/// let error = TestRequest::get("/a").mount("/b").try_into_environ().unwrap_err();
/// assert!(matches!(error, TestRequestError::Mount(_)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TestRequestError {
    /// The target is not a URI.
    Uri(String),
    /// A server must refuse the request.
    Target(TargetError),
    /// The mount prefix does not fit the path.
    Mount(MountError),
}

impl std::fmt::Display for TestRequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestRequestError::Uri(error) => write!(f, "invalid request target: {error}"),
            TestRequestError::Target(error) => error.fmt(f),
            TestRequestError::Mount(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for TestRequestError {}

/// The whole response an app gave to a [`TestRequest`].
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::body::Full;
/// use rwgi_conformance::test_client::{block_on, TestRequest};
///
/// let app = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(rwgi::http::StatusCode::CREATED, Default::default()).body(Full::new("made")))
/// });
/// let response = block_on(TestRequest::post("/").send(&app));
/// assert_eq!(response.status(), 201);
/// assert_eq!(response.header("content-length"), Some("4"));
/// assert_eq!(response.text(), "made");
/// assert!(response.failure().is_none() && response.body_error().is_none());
/// ```
#[derive(Debug)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    failure: Option<String>,
    body_error: Option<String>,
}

impl TestResponse {
    /// The status sent.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers a server would send: the app's, plus `Content-Length` when the length is
    /// known (the framing headers a server adds for unknown lengths are left out).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The value of one header, as text, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body bytes sent.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Why the app's answer was replaced by a `500`, if it was (see
    /// [`Prepared::failure`](rwgi::server::Prepared::failure)).
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// The error that cut the body short after the head was sent, if any: a real server would
    /// have aborted the connection there.
    pub fn body_error(&self) -> Option<&str> {
        self.body_error.as_deref()
    }
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on the current thread, parking while it waits.
///
/// ```
/// assert_eq!(rwgi_conformance::test_client::block_on(async { 1 + 1 }), 2);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => thread::park(),
        }
    }
}
