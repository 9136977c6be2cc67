//! `tower::Service` → rwgi `App`.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_core::Stream;
use http_body::{Body as HttpBody, Frame, SizeHint};
use rwgi::body::Body;
use rwgi::http::uri::PathAndQuery;
use rwgi::http::Uri;
use rwgi::{App, Environ, Error, Input, Response, StartResponse};
use tower_service::Service;

use crate::{BoxError, OriginalUri, ScriptName};

/// A [`tower_service::Service`] as an rwgi [`App`]: host an axum `Router` (with its tower-http
/// layers) on `rwgi-server` or any rwgi server, under rwgi middleware.
///
/// # The request the service gets
///
/// - Method, version, headers and the environ's extensions, moved, not copied (REQ-BRIDGE-6).
/// - The target: when the environ is mounted (`script_name` not empty), the URI with
///   `script_name` stripped, `path_info` + query (`/` when `path_info` is empty), as axum's
///   `nest` strips its prefix; the full URI is in an [`OriginalUri`] extension and the prefix
///   in a [`ScriptName`] extension, and with the `axum` feature the full URI is also axum's
///   `OriginalUri`, so axum's extractor of that name sees what the client sent. Otherwise the
///   URI as received, moved (REQ-BRIDGE-4).
/// - The connection facts as a [`ConnectionInfo`](rwgi::environ::ConnectionInfo) extension,
///   and with the `axum` feature the client's address as
///   `axum::extract::ConnectInfo<SocketAddr>` (REQ-BRIDGE-6).
/// - The body: the environ's [`Input`] as an [`InputBody`].
///
/// # How it is called
///
/// `App::call` takes `&self`, `Service::call` takes `&mut self`: each call clones the service,
/// drives the clone's `poll_ready` to readiness and calls that same clone, so the readiness
/// reserved is the readiness used. A service that is not ready makes the call wait; rwgi has no
/// way to refuse a request for lack of capacity, so backpressure becomes waiting, not
/// rejection (REQ-BRIDGE-3). An error from `poll_ready` or from the service becomes the app's
/// `Err`, which the server answers with `500`.
///
/// The service's response becomes the rwgi response through
/// [`StartResponse::respond`]: status, headers and extensions kept, the body's data frames as a
/// [`ServiceBody`]. What rwgi cannot carry is listed in REQ-BRIDGE-5: trailers are dropped, a
/// `101 Switching Protocols` (an upgrade) breaks REQ-RESP-1 and the server answers `500`. The
/// request carries no `hyper::upgrade::OnUpgrade`, so axum's `WebSocketUpgrade` extractor
/// rejects a WebSocket handshake itself, with `426 Upgrade Required`, before any handler runs.
///
/// ```
/// use std::time::Duration;
/// use axum::routing::get;
/// use rwgi_conformance::test_client::TestRequest;
/// use rwgi_tower::ServiceApp;
///
/// let router = axum::Router::new()
///     .route("/", get(|| async { "Hello from axum" }))
///     .layer(tower_http::timeout::TimeoutLayer::with_status_code(
///         rwgi::http::StatusCode::REQUEST_TIMEOUT,
///         Duration::from_secs(10),
///     ));
/// let app = ServiceApp::new(router);
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # runtime.block_on(async {
/// let response = TestRequest::get("/").send(&app).await;
/// assert_eq!(response.text(), "Hello from axum");
/// # });
/// ```
#[derive(Clone)]
pub struct ServiceApp<S> {
    service: S,
}

impl<S> ServiceApp<S> {
    /// Hosts `service`.
    ///
    /// ```
    /// let app = rwgi_tower::ServiceApp::new(axum::Router::new());
    /// # fn assert_app<A: rwgi::App>(_: &A) {}
    /// # assert_app(&app);
    /// ```
    pub fn new(service: S) -> Self {
        ServiceApp { service }
    }

    /// The service.
    ///
    /// ```
    /// let app = rwgi_tower::ServiceApp::new(axum::Router::<()>::new());
    /// let _router: &axum::Router = app.get_ref();
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.service
    }

    /// The service, taken back.
    ///
    /// ```
    /// let app = rwgi_tower::ServiceApp::new(axum::Router::<()>::new());
    /// let _router: axum::Router = app.into_inner();
    /// ```
    pub fn into_inner(self) -> S {
        self.service
    }
}

impl<S> fmt::Debug for ServiceApp<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceApp").finish_non_exhaustive()
    }
}

impl<S, B> App for ServiceApp<S>
where
    S: Service<http::Request<InputBody>, Response = http::Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: HttpBody + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Body = ServiceBody<B>;

    // A plain function returning an `async` block, not an `async fn`, which would keep the
    // environ twice in its state (as captured and as bound).
    #[allow(clippy::manual_async_fn)]
    fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> impl Future<Output = Result<Response<ServiceBody<B>>, Error>> + Send {
        // Everything happens inside the future, where the server's panic guard is
        // (REQ-ERR-4): a service whose `clone` panics fails this request only.
        async move {
            let request = into_request(environ);
            let mut service = self.service.clone();
            // The clone that was made ready is the one called.
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(|error| Error::from(error.into()))?;
            let response = service
                .call(request)
                .await
                .map_err(|error| Error::from(error.into()))?;
            Ok(start.respond(response.map(ServiceBody::new)))
        }
    }
}

/// The environ as the `http::Request` a service expects (see [`ServiceApp`]).
// Inlined into the app's future, so that the request is built where it is kept.
#[inline(always)]
fn into_request(environ: Environ) -> http::Request<InputBody> {
    #[cfg(feature = "axum")]
    let peer = environ.remote_addr();
    let mount = if environ.script_name().is_empty() {
        None
    } else {
        let stripped = strip_script_name(&environ);
        Some((stripped, ScriptName::new(environ.script_name())))
    };
    let (mut head, input, connection) = environ.into_parts();
    let extensions = &mut head.extensions;
    extensions.insert(connection);
    #[cfg(feature = "axum")]
    if let Some(peer) = peer {
        extensions.insert(axum::extract::ConnectInfo(peer));
    }
    if let Some((stripped, script_name)) = mount {
        let original = std::mem::replace(&mut head.uri, stripped);
        extensions.insert(script_name);
        #[cfg(feature = "axum")]
        extensions.insert(axum::extract::OriginalUri(original.clone()));
        extensions.insert(OriginalUri(original));
    }
    http::Request::from_parts(head, InputBody::new(input))
}

/// `path_info` + query, keeping the scheme and authority of an absolute-form target.
fn strip_script_name(environ: &Environ) -> Uri {
    let original = environ.uri();
    let path = match environ.path_info() {
        "" => "/",
        path => path,
    };
    let path_and_query = match original.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = original.clone().into_parts();
    // Slices of a valid target are a valid target: the fallback is never taken.
    match PathAndQuery::try_from(path_and_query) {
        Ok(path_and_query) => parts.path_and_query = Some(path_and_query),
        Err(_) => return original.clone(),
    }
    Uri::from_parts(parts).unwrap_or_else(|_| original.clone())
}

/// The app's [`Input`] as the request body a service reads: an [`http_body::Body`] of data
/// frames whose size hint is the length still to come, exact when known.
///
/// ```
/// use http_body::Body as _;
/// use http_body_util::BodyExt;
/// use rwgi_tower::InputBody;
///
/// let body = InputBody::new(rwgi::Input::from("name=rwgi"));
/// assert_eq!(body.size_hint().exact(), Some(9));
/// let bytes = futures_executor::block_on(body.collect()).unwrap().to_bytes();
/// assert_eq!(bytes, "name=rwgi");
/// ```
pub struct InputBody {
    input: Input,
    done: bool,
}

impl InputBody {
    /// Wraps `input`.
    ///
    /// ```
    /// let body = rwgi_tower::InputBody::new(rwgi::Input::empty());
    /// assert!(http_body::Body::is_end_stream(&body));
    /// ```
    pub fn new(input: Input) -> Self {
        InputBody { input, done: false }
    }

    /// The input, taken back.
    ///
    /// ```
    /// let body = rwgi_tower::InputBody::new(rwgi::Input::from("x"));
    /// assert_eq!(body.into_inner().content_length(), Some(1));
    /// ```
    pub fn into_inner(self) -> Input {
        self.input
    }
}

impl fmt::Debug for InputBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputBody")
            .field("input", &self.input)
            .field("done", &self.done)
            .finish()
    }
}

impl HttpBody for InputBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        // The input is not polled past its end (REQ-INPUT-6), whatever the service does.
        if this.done {
            return Poll::Ready(None);
        }
        let item = ready!(Pin::new(&mut this.input).poll_next(cx));
        if !matches!(item, Some(Ok(_))) {
            this.done = true;
        }
        Poll::Ready(item.map(|chunk| chunk.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.input.is_end()
    }

    fn size_hint(&self) -> SizeHint {
        match (self.done, self.input.content_length()) {
            (true, _) => SizeHint::with_exact(0),
            (false, Some(length)) => SizeHint::with_exact(length),
            (false, None) => SizeHint::default(),
        }
    }
}

/// A service's response body as an rwgi [`Body`]: its data frames, in order, and its exact
/// size hint as the body's [`content_length`](Body::content_length). Trailer frames are
/// dropped (REQ-BRIDGE-5); an error ends the body with it, which after the first chunk makes
/// the server abort the connection (REQ-ERR-3). Once ended it yields nothing more, and the
/// service's body is dropped at its end.
///
/// ```
/// use rwgi::body::Body;
/// use rwgi_tower::ServiceBody;
///
/// let body = ServiceBody::new(http_body_util::Full::new(bytes::Bytes::from_static(b"hello")));
/// assert_eq!(body.content_length(), Some(5));
/// ```
pub struct ServiceBody<B> {
    body: Option<Pin<Box<B>>>,
}

impl<B> ServiceBody<B> {
    /// Wraps `body`.
    ///
    /// ```
    /// let body = rwgi_tower::ServiceBody::new(http_body_util::Empty::<bytes::Bytes>::new());
    /// # let _ = body;
    /// ```
    pub fn new(body: B) -> Self {
        ServiceBody {
            body: Some(Box::pin(body)),
        }
    }
}

impl<B> fmt::Debug for ServiceBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceBody")
            .field("ended", &self.body.is_none())
            .finish_non_exhaustive()
    }
}

impl<B> Stream for ServiceBody<B>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let Some(body) = self.body.as_mut() else {
                return Poll::Ready(None);
            };
            let item = match ready!(body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => Ok(data.copy_to_bytes(data.remaining())),
                    // Trailers: rwgi has no place for them (REQ-BRIDGE-5).
                    Err(_) => continue,
                },
                Some(Err(error)) => Err(Error::from(error.into())),
                None => {
                    self.body = None;
                    return Poll::Ready(None);
                }
            };
            if item.is_err() {
                self.body = None;
            }
            return Poll::Ready(Some(item));
        }
    }
}

impl<B> Body for ServiceBody<B>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    fn content_length(&self) -> Option<u64> {
        match &self.body {
            Some(body) => body.size_hint().exact(),
            None => Some(0),
        }
    }
}
