//! How `ServiceApp` drives a tower service (`poll_ready` on the clone it calls, backpressure
//! as waiting, errors as `500`) and what neither direction can carry (trailers, upgrades).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use rwgi::app::app_fn;
use rwgi::body::Full as RwgiFull;
use rwgi::environ::ConnectionInfo;
use rwgi::http::uri::Scheme;
use rwgi::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Version};
use rwgi::{Environ, StartResponse};
use rwgi_conformance::test_client::TestRequest;
use rwgi_tower::{AppService, InputBody, ServiceApp};
use tower::ServiceExt;
use tower_service::Service;

/// A service that is not ready on its first `poll_ready`, and answers whether the instance it
/// is called on was made ready first.
#[derive(Clone, Default)]
struct Picky {
    ready: bool,
    readiness_polls: Arc<AtomicUsize>,
}

impl Service<Request<InputBody>> for Picky {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.readiness_polls.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<InputBody>) -> Self::Future {
        let text = if self.ready {
            "ready"
        } else {
            "called unready"
        };
        self.ready = false;
        std::future::ready(Ok(Response::new(Full::new(Bytes::from(text)))))
    }
}

#[test]
fn poll_ready_is_driven_on_the_clone_that_is_called() {
    let service = Picky::default();
    let polls = Arc::clone(&service.readiness_polls);
    let app = ServiceApp::new(service);
    for round in 1..=3 {
        let response = rwgi_conformance::test_client::block_on(TestRequest::get("/").send(&app));
        assert_eq!(response.text(), "ready");
        assert_eq!(
            polls.load(Ordering::SeqCst),
            2 * round,
            "pending, then ready"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_becomes_waiting_not_rejection() {
    let slow = tower::service_fn(|_: Request<InputBody>| async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"done"))))
    });
    // One request at a time: the second call waits in `poll_ready` for the first's permit.
    let app = ServiceApp::new(tower::limit::ConcurrencyLimit::new(slow, 1));
    let started = Instant::now();
    let (first, second) = tokio::join!(
        TestRequest::get("/").send(&app),
        TestRequest::get("/").send(&app)
    );
    let took = started.elapsed();
    assert_eq!(
        (first.status(), first.text()),
        (StatusCode::OK, "done".into())
    );
    assert_eq!(
        (second.status(), second.text()),
        (StatusCode::OK, "done".into())
    );
    assert!(
        took >= Duration::from_millis(300),
        "served one after the other: {took:?}"
    );
}

/// A service whose readiness fails.
#[derive(Clone)]
struct Broken;

impl Service<Request<InputBody>> for Broken {
    type Response = Response<Full<Bytes>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Err(std::io::Error::other("pool closed")))
    }

    fn call(&mut self, _: Request<InputBody>) -> Self::Future {
        Box::pin(async { Err(std::io::Error::other("called anyway")) })
    }
}

#[test]
fn a_service_error_is_the_apps_error_and_a_500() {
    let response = rwgi_conformance::test_client::block_on(
        TestRequest::get("/").send(&ServiceApp::new(Broken)),
    );
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.failure(), Some("app error: pool closed"));

    let failing = tower::service_fn(|_: Request<InputBody>| async {
        Err::<Response<Full<Bytes>>, _>(std::io::Error::other("handler failed"))
    });
    let response = rwgi_conformance::test_client::block_on(
        TestRequest::get("/").send(&ServiceApp::new(failing)),
    );
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.failure(), Some("app error: handler failed"));
}

type Frames =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn with_trailers(data: &'static [u8]) -> Frames {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    StreamBody::new(futures_util::stream::iter(vec![
        Ok(Frame::data(Bytes::from_static(data))),
        Ok(Frame::trailers(trailers)),
    ]))
}

#[test]
fn response_trailers_are_dropped_and_the_data_kept() {
    let service = tower::service_fn(|_: Request<InputBody>| async {
        Ok::<_, Infallible>(Response::new(with_trailers(b"payload")))
    });
    let response = rwgi_conformance::test_client::block_on(
        TestRequest::get("/").send(&ServiceApp::new(service)),
    );
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text(), "payload");
    assert_eq!(response.body_error(), None);
}

#[test]
fn request_trailers_are_dropped_and_the_data_kept() {
    let echo = app_fn(|mut environ: Environ, start: StartResponse| async move {
        let body = environ
            .input_mut()
            .read_to_end(1024)
            .await
            .map_err(rwgi::Error::new)?;
        Ok(start
            .start(StatusCode::OK, HeaderMap::new())
            .body(RwgiFull::new(body)))
    });
    let request = Request::post("/")
        .header("host", "h")
        .body(with_trailers(b"uploaded"))
        .unwrap();
    let response = rwgi_conformance::test_client::block_on(AppService::new(echo).oneshot(request))
        .unwrap_or_else(|error| match error {});
    let body = rwgi_conformance::test_client::block_on(response.into_body().collect())
        .unwrap()
        .to_bytes();
    assert_eq!(body, "uploaded");
}

#[test]
fn an_upgrade_answer_cannot_cross_and_becomes_a_500() {
    let upgrading = tower::service_fn(|_: Request<InputBody>| async {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        response
            .headers_mut()
            .insert("upgrade", HeaderValue::from_static("websocket"));
        Ok::<_, Infallible>(response)
    });
    let response = rwgi_conformance::test_client::block_on(
        TestRequest::get("/").send(&ServiceApp::new(upgrading)),
    );
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let failure = response.failure().expect("a failure");
    assert!(failure.starts_with("app broke REQ-RESP-1"), "{failure}");
}

#[test]
fn extensions_travel_both_ways() {
    #[derive(Clone, Debug, PartialEq)]
    struct RequestId(u32);
    #[derive(Clone, Debug, PartialEq)]
    struct Route(&'static str);

    let service = tower::service_fn(|request: Request<InputBody>| async move {
        let id = request.extensions().get::<RequestId>().cloned();
        let mut response = Response::new(Full::new(Bytes::from(format!("{id:?}"))));
        response.extensions_mut().insert(Route("/items"));
        Ok::<_, Infallible>(response)
    });
    let app = ServiceApp::new(service);
    let mut environ = TestRequest::get("/").into_environ();
    environ.extensions_mut().insert(RequestId(7));
    let response = rwgi_conformance::test_client::block_on(rwgi::App::call(
        &app,
        environ,
        StartResponse::new(),
    ))
    .expect("an answer");
    assert_eq!(response.extensions().get::<Route>(), Some(&Route("/items")));
    let (_, _, mut body) = response.into_parts();
    let chunk = rwgi_conformance::test_client::block_on(std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(Pin::new(&mut body), cx)
    }));
    assert_eq!(chunk.unwrap().unwrap(), "Some(RequestId(7))");
}

#[test]
fn the_service_gets_the_whole_request() {
    let service = tower::service_fn(|request: Request<InputBody>| async move {
        let (head, body) = request.into_parts();
        let body = body.collect().await?.to_bytes();
        let accept: Vec<_> = head.headers.get_all("accept").iter().collect();
        let facts = head.extensions.get::<ConnectionInfo>();
        let peer = head.extensions.get::<ConnectInfo<SocketAddr>>();
        let text = format!(
            "{} {} {:?} {accept:?} {:?} {:?} {:?} {}",
            head.method,
            head.uri,
            head.version,
            head.extensions.get::<u8>(),
            facts.map(|facts| facts.scheme().as_str()),
            peer.map(|peer| peer.0),
            String::from_utf8_lossy(&body),
        );
        Ok::<_, rwgi::Error>(Response::new(Full::new(Bytes::from(text))))
    });
    let peer: SocketAddr = "192.0.2.7:50000".parse().unwrap();
    let mut environ = TestRequest::post("/items?x=y")
        .version(Version::HTTP_10)
        .header("accept", "a")
        .header("accept", "b")
        .body("abc")
        .connection(ConnectionInfo::new(Scheme::HTTPS).peer_addr(peer))
        .into_environ();
    environ.extensions_mut().insert(3u8);
    let response = rwgi_conformance::test_client::block_on(rwgi::App::call(
        &ServiceApp::new(service),
        environ,
        StartResponse::new(),
    ))
    .expect("an answer");
    let (_, _, mut body) = response.into_parts();
    let chunk = rwgi_conformance::test_client::block_on(std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(Pin::new(&mut body), cx)
    }));
    // axum's connect info is the `axum` feature's.
    let connect_info = if cfg!(feature = "axum") {
        "Some(192.0.2.7:50000)"
    } else {
        "None"
    };
    assert_eq!(
        chunk.unwrap().unwrap(),
        format!(
            "POST /items?x=y HTTP/1.0 [\"a\", \"b\"] Some(3) Some(\"https\") {connect_info} abc"
        )
    );
}

/// A service that cannot even be cloned.
struct CloneBomb;

impl Clone for CloneBomb {
    fn clone(&self) -> Self {
        panic!("clone exploded")
    }
}

impl Service<Request<InputBody>> for CloneBomb {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<InputBody>) -> Self::Future {
        std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
    }
}

#[test]
fn a_panicking_service_clone_is_caught_by_the_server() {
    let response = rwgi_conformance::test_client::block_on(
        TestRequest::get("/").send(&ServiceApp::new(CloneBomb)),
    );
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.failure(), Some("app panicked: clone exploded"));
}

/// An app that panics in `call` itself, before it has a future to return.
struct PanicsBeforeItsFuture;

impl rwgi::App for PanicsBeforeItsFuture {
    type Body = rwgi::body::Empty;

    #[allow(unreachable_code)]
    fn call(
        &self,
        _: Environ,
        _: StartResponse,
    ) -> impl Future<Output = Result<rwgi::Response<rwgi::body::Empty>, rwgi::Error>> + Send {
        panic!("no future for you");
        std::future::pending()
    }
}

#[test]
fn app_service_catches_a_panic_before_the_apps_future_exists() {
    let request = Request::get("/")
        .header("host", "h")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let response = rwgi_conformance::test_client::block_on(
        AppService::new(PanicsBeforeItsFuture).oneshot(request),
    )
    .unwrap_or_else(|error| match error {});
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response
            .extensions()
            .get::<rwgi_tower::AppFailure>()
            .map(|failure| failure.message()),
        Some("app panicked: no future for you")
    );
}

#[test]
fn any_request_body_reaches_the_app_whatever_its_buffer_type() {
    let echo = app_fn(|mut environ: Environ, start: StartResponse| async move {
        let length = environ.input().content_length();
        let body = environ
            .input_mut()
            .read_to_end(1024)
            .await
            .map_err(rwgi::Error::new)?;
        let text = format!("{length:?} {}", String::from_utf8_lossy(&body));
        Ok(start
            .start(StatusCode::OK, HeaderMap::new())
            .body(RwgiFull::new(text)))
    });
    // Data frames of `&[u8]`, not `Bytes`.
    let request = Request::post("/")
        .header("host", "h")
        .body(Full::new(&b"borrowed bytes"[..]))
        .unwrap();
    let response = rwgi_conformance::test_client::block_on(AppService::new(echo).oneshot(request))
        .unwrap_or_else(|error| match error {});
    let body = rwgi_conformance::test_client::block_on(response.into_body().collect())
        .unwrap()
        .to_bytes();
    assert_eq!(body, "Some(14) borrowed bytes");
}
