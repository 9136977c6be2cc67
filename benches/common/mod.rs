//! The cases the benchmarks measure, shared by `inprocess` (divan: time and allocations) and
//! `instructions` (cachegrind: instructions per call).
//!
//! Every case handles one request with nothing left to wait for, so a future is polled once
//! with a waker that does nothing: no runtime, no I/O, only the code under test.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use futures_core::Stream;
use http_body::{Frame, SizeHint};
use http_body_util::{Empty, Full as HyperFull};
use hyper::service::{service_fn, Service};
use rwgi::environ::{ConnectionInfo, ServerInfo, TargetError};
use rwgi::http::{header, HeaderValue, Request, Response as HttpResponse, StatusCode};
use rwgi::lint::Lint;
use rwgi::server::{prepare_with, ResponseBody};
use rwgi::{App, AppExt, Body, Environ, Error, Input, Middleware, Response, StartResponse};

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

thread_local! {
    // Made once per thread so that polling allocates nothing per call.
    static NOOP_WAKER: Waker = Waker::from(Arc::new(NoopWake));
}

/// Polls a future that never waits, once, and returns its output.
///
/// # Panics
///
/// When the future is pending: every case here completes on its first poll.
pub fn ready<F: Future>(future: F) -> F::Output {
    let future = pin!(future);
    NOOP_WAKER.with(|waker| match future.poll(&mut Context::from_waker(waker)) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a benchmark future waited"),
    })
}

/// The reference server's `hello` app, and the pass-through middleware of its `hello-stack`.
#[path = "../../examples/apps/hello.rs"]
pub mod hello;

pub use hello::{hello_stack, Hello, PassThrough, GREETING};

/// A no-op middleware written without an `async` wrapper: its `call` returns the inner app's
/// future itself, so the layer adds no state and no poll of its own. Measured next to
/// [`PassThrough`] to show what the `async fn` wrapper costs.
#[derive(Clone, Copy, Debug)]
pub struct Forward;

/// The app [`Forward`] wraps around its inner app.
#[derive(Debug)]
pub struct ForwardApp<A>(A);

impl<A: App> Middleware<A> for Forward {
    type App = ForwardApp<A>;

    fn wrap(&self, inner: A) -> ForwardApp<A> {
        ForwardApp(inner)
    }
}

impl<A: App> App for ForwardApp<A> {
    type Body = A::Body;

    fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> impl Future<Output = Result<Response<A::Body>, Error>> + Send {
        self.0.call(environ, start)
    }
}

/// [`Hello`] behind the `rwgi::lint` middleware, which panics on a violation: the hello app
/// has none.
pub fn hello_lint() -> impl App {
    Hello.with(Lint::new())
}

/// The connection facts a server makes once per connection.
pub fn connection() -> ConnectionInfo {
    ConnectionInfo::default()
        .local_addr(([127, 0, 0, 1], 8000).into())
        .peer_addr(([127, 0, 0, 1], 53122).into())
        .server(ServerInfo::new("rwgi-bench/0").multithread(true))
}

/// A request as a load generator sends it: `GET /` with three headers.
pub fn small_request<B>(body: B) -> Request<B> {
    let mut request = Request::new(body);
    let headers = request.headers_mut();
    headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8000"));
    headers.insert(header::USER_AGENT, HeaderValue::from_static("wrk/4.1"));
    headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    request
}

/// A request as a browser sends it: a query string and twenty headers, cookies included.
pub fn header_heavy_request<B>(body: B) -> Request<B> {
    const HEADERS: [(&str, &str); 20] = [
        ("host", "shop.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-GB,en;q=0.7,fr;q=0.3"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("referer", "https://shop.example.com/catalog/shoes?page=2"),
        (
            "cookie",
            "session=7f3a9c0e4b2d41f8a6c5; theme=dark; consent=essential",
        ),
        ("cookie", "cart=3fa85f64-5717-4562-b3fc-2c963f66afa6"),
        ("upgrade-insecure-requests", "1"),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-user", "?1"),
        ("priority", "u=0, i"),
        ("dnt", "1"),
        ("cache-control", "max-age=0"),
        ("if-none-match", "\"5f2b-18c4e2a1d40\""),
        ("x-request-id", "0b8a1e6c-2a7d-4f3e-9c1b-5d6e7f8a9b0c"),
        ("x-forwarded-for", "203.0.113.7, 198.51.100.2"),
        ("x-forwarded-proto", "https"),
    ];
    let mut request = Request::new(body);
    *request.uri_mut() = "/catalog/shoes/trail-runner-2?size=44&colour=blue%20grey&ref=home"
        .parse()
        .expect("a valid target");
    let headers = request.headers_mut();
    for (name, value) in HEADERS {
        headers.append(name, HeaderValue::from_static(value));
    }
    request
}

/// Builds the environ of a bodiless request, as a server does for each request.
///
/// # Panics
///
/// When the request is one a server refuses: the benchmark requests are all valid.
pub fn environ(request: Request<Input>, connection: &ConnectionInfo) -> Environ {
    Environ::from_request(request, connection).expect("a valid benchmark request")
}

/// One app call through the callback, and its one-chunk body polled to the end: what an app
/// costs, without the server around it.
pub fn call_app<A: App>(app: &A, environ: Environ) -> usize {
    let response = ready(app.call(environ, StartResponse::new())).expect("the app answers");
    let mut body = response.into_parts().2;
    let mut sent = 0;
    while let Some(chunk) = ready(std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx))) {
        sent += chunk.expect("the body does not fail").len();
    }
    sent
}

/// The raw hyper hello world: a `service_fn` answering every request with a one-chunk body.
pub fn raw_hyper_service() -> impl Service<
    Request<Empty<Bytes>>,
    Response = HttpResponse<HyperFull<Bytes>>,
    Error = std::convert::Infallible,
> {
    service_fn(|_request: Request<Empty<Bytes>>| async {
        let mut response =
            HttpResponse::new(HyperFull::new(Bytes::from_static(GREETING.as_bytes())));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok(response)
    })
}

/// An rwgi app behind a hyper `service_fn`, as a server on hyper hosts it: the request becomes
/// an environ, [`prepare_with`] runs the app and turns the prepared answer into a hyper
/// response. A refused request is an error here; a server answers it with `400` (REQ-ENV-2).
pub fn rwgi_service<A: App>(
    app: A,
    connection: ConnectionInfo,
) -> impl Service<Request<Empty<Bytes>>, Response = HttpResponse<HyperBody<A::Body>>, Error = TargetError>
{
    let shared = Arc::new((app, connection));
    service_fn(move |request: Request<Empty<Bytes>>| {
        let shared = Arc::clone(&shared);
        async move {
            let (app, connection) = &*shared;
            // The in-process requests are bodiless, which a server sees from the
            // incoming body and answers with the allocation-free empty input.
            let request = request.map(|_| Input::empty());
            let environ = Environ::from_request(request, connection)?;
            Ok(prepare_with(app, environ, |prepared| {
                let (status, headers, body) = prepared.into_parts();
                let mut response = HttpResponse::new(HyperBody(body));
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                response
            })
            .await)
        }
    })
}

/// [`ResponseBody`] as a hyper body: what a server on hyper writes to the connection.
#[derive(Debug)]
pub struct HyperBody<B>(ResponseBody<B>);

impl<B: Body + Unpin> http_body::Body for HyperBody<B> {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|item| item.map(|chunk| chunk.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.0.content_length() == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .content_length()
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// Calls a hyper service with one request and polls the response body to its end, as hyper's
/// connection task does: the whole in-process path of one request.
pub fn serve_one<S, B>(service: &S, request: Request<Empty<Bytes>>) -> usize
where
    S: Service<Request<Empty<Bytes>>, Response = HttpResponse<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let response = ready(service.call(request)).expect("the service answers");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut sent = 0;
    while let Some(frame) = ready(std::future::poll_fn(|cx| {
        Pin::new(&mut body).poll_frame(cx)
    })) {
        let frame = frame.expect("the body does not fail");
        sent += frame.data_ref().map_or(0, Bytes::len);
    }
    sent
}
