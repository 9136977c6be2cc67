//! What the bridge's tests share: the axum router they host, the servers they start, and a
//! small HTTP/1.1 client over real sockets.
#![allow(dead_code)] // each test file uses a part

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body as AxumBody;
use axum::extract::{ConnectInfo, NestedPath, OriginalUri, Request};
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use http_body_util::BodyExt;
use rwgi::app::BoxApp;
use rwgi::http::{HeaderMap, StatusCode};
use rwgi::App;
use rwgi_conformance::server_suite::{Hosting, ServerHandle};
use rwgi_tower::{AppService, ScriptName};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;

/// How long the router lets a handler take before it answers `408` itself.
pub const TIMEOUT: Duration = Duration::from_millis(300);

/// A text that compresses well, served at `/big`.
pub fn big_text() -> String {
    "rwgi bridges to the tower ecosystem, both ways.\n".repeat(400)
}

/// An axum router with two tower-http layers (compression and timeout), a nested router, and
/// handlers that show what the bridge gave them.
pub fn router() -> Router {
    let nested = Router::new().route(
        "/inner",
        get(
            |nested: NestedPath, OriginalUri(original): OriginalUri, request: Request| async move {
                format!(
                    "nested_path={} original={} uri={}",
                    nested.as_str(),
                    original,
                    request.uri()
                )
            },
        ),
    );
    Router::new()
        .route(
            "/",
            get(|| async { "Hello, world!" }).post(|request: Request| async move {
                // Streams the upload back as it arrives.
                AxumBody::from_stream(request.into_body().into_data_stream())
            }),
        )
        .route("/big", get(|| async { big_text() }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "too late"
            }),
        )
        .route("/whoami", get(whoami))
        .nest("/nested", nested)
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            TIMEOUT,
        ))
}

/// What axum's extractors see of the bridge: the peer, the URIs and the script name.
async fn whoami(
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    OriginalUri(original): OriginalUri,
    script_name: Option<Extension<ScriptName>>,
    request: Request,
) -> String {
    let peer = connect_info.map_or("-".to_owned(), |Extension(ConnectInfo(peer))| {
        peer.to_string()
    });
    let script_name = script_name.map_or("-".to_owned(), |Extension(name)| name.to_string());
    format!(
        "peer={peer} original={original} uri={} script_name={script_name}",
        request.uri()
    )
}

/// A tokio runtime for one server.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Starts `rwgi-server` hosting `app` on a free loopback port, mounted at `root_path`; the
/// server stops when the returned sender is dropped or sent to. The one place these tests use
/// the reference server's API.
pub async fn start_rwgi_server<A: App + 'static>(
    app: A,
    root_path: Option<String>,
) -> (SocketAddr, oneshot::Sender<()>) {
    let mut builder = rwgi_server::Server::builder()
        .bind("127.0.0.1:0")
        .threads(2)
        .graceful_timeout(Duration::from_millis(500));
    if let Some(root_path) = &root_path {
        builder = builder.root_path(root_path);
    }
    let handle = builder.serve(app).expect("the reference server binds");
    let address = handle.local_addr().expect("a TCP address");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = stopped.await;
        // Stopping waits for the server's own thread: not on this runtime's threads.
        let _ = tokio::task::spawn_blocking(move || handle.shutdown()).await;
    });
    (address, stop)
}

/// Serves `service` with hyper's HTTP/1.1 on a free loopback port until `stopped` completes,
/// one copy of the service per connection with the connection's addresses.
pub async fn serve_with_hyper<A: App + 'static>(
    listener: TcpListener,
    service: AppService<A>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let service = service.for_connection(stream.local_addr().ok(), Some(peer));
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper_util::service::TowerToHyperService::new(service);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new());
            let _ = http.serve_connection(io, service).await;
        });
    }
}

/// The server suite's start function for "an rwgi app through the bridge on hyper": each
/// configuration gets its own runtime and server; `wrap` may wrap the suite's app first.
pub fn hyper_hosting<W, A>(wrap: W) -> impl FnMut(Hosting) -> ServerHandle
where
    W: Fn(BoxApp) -> A,
    A: App + 'static,
{
    move |hosting| {
        let (app, root_path) = hosting.into_parts();
        let mut service = AppService::new(wrap(app));
        if let Some(root_path) = root_path {
            service = service.root_path(&root_path).expect("a valid root path");
        }
        let runtime = runtime();
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("a free port");
        let address = listener.local_addr().expect("a bound socket");
        let (stop, stopped) = oneshot::channel();
        runtime.spawn(serve_with_hyper(listener, service, stopped));
        ServerHandle::new(address).on_stop(move || {
            let _ = stop.send(());
            runtime.shutdown_timeout(Duration::from_secs(2));
        })
    }
}

/// A response read to its end.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Sends one request over a new connection to `address` with hyper's client, and reads the
/// answer to its end. Returns the client's own address too.
pub async fn send(
    address: SocketAddr,
    request: rwgi::http::Request<http_body_util::Full<Bytes>>,
) -> (Answer, SocketAddr) {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("the server accepts");
    let local = stream.local_addr().expect("a local address");
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("an HTTP/1.1 handshake");
    tokio::spawn(connection);
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .expect("an answer within 10 s")
        .expect("an HTTP response");
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .expect("the body within 10 s")
        .expect("a complete body")
        .to_bytes();
    let answer = Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    };
    (answer, local)
}

/// A request with a `Host` header and `body`.
pub fn request(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> rwgi::http::Request<http_body_util::Full<Bytes>> {
    let mut builder = rwgi::http::Request::builder()
        .method(method)
        .uri(target)
        .header("host", "localhost");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(http_body_util::Full::new(Bytes::from_static(
            body.as_bytes(),
        )))
        .expect("a valid request")
}

/// The server suite's start function for `rwgi-server` hosting the suite's app, wrapped by
/// `wrap` first.
pub fn rwgi_server_hosting<W, A>(wrap: W) -> impl FnMut(Hosting) -> ServerHandle
where
    W: Fn(BoxApp) -> A,
    A: App + 'static,
{
    move |hosting| {
        let (app, root_path) = hosting.into_parts();
        let app = wrap(app);
        let runtime = runtime();
        let (address, stop) = runtime.block_on(start_rwgi_server(app, root_path));
        ServerHandle::new(address).on_stop(move || {
            let _ = stop.send(());
            runtime.shutdown_timeout(Duration::from_secs(2));
        })
    }
}
