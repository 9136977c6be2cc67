//! Serve an rwgi app with hyper or axum: the same app on hyper's HTTP/1.1 server (port 8001)
//! and nested in an axum `Router` under `/rwgi` (port 8002). Run it with
//!
//! ```text
//! cargo run --release -p rwgi-tower --example rwgi_on_hyper
//! curl http://127.0.0.1:8001/hello
//! curl http://127.0.0.1:8002/rwgi/hello
//! ```
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rwgi::app::app_fn;
use rwgi::body::Full;
use rwgi::http::{header, HeaderMap, HeaderValue, StatusCode};
use rwgi::{Environ, StartResponse};
use rwgi_tower::{AppService, SocketAddrs};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = app_fn(|environ: Environ, start: StartResponse| async move {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let peer = environ
            .remote_addr()
            .map_or("-".into(), |peer| peer.to_string());
        let text = format!(
            "Hello, {peer}! script_name={:?} path_info={:?}\n",
            environ.script_name(),
            environ.path_info()
        );
        Ok(start.start(StatusCode::OK, headers).body(Full::new(text)))
    });
    let service = AppService::new(app);

    // axum: the prefix of `nest_service` becomes the app's script_name.
    let router = axum::Router::new()
        .route("/", get(|| async { "axum's own route\n" }))
        .nest_service("/rwgi", service.clone());
    let axum_listener = TcpListener::bind("127.0.0.1:8002").await?;
    // Both addresses of each connection reach the app (axum's `SocketAddr` alone: the peer).
    let make_service = router.into_make_service_with_connect_info::<SocketAddrs>();
    tokio::spawn(async move { axum::serve(axum_listener, make_service).await });

    // hyper: one copy of the service per connection, with the connection's addresses.
    let listener = TcpListener::bind("127.0.0.1:8001").await?;
    println!("hyper on http://127.0.0.1:8001, axum on http://127.0.0.1:8002/rwgi");
    loop {
        let (stream, peer) = listener.accept().await?;
        let service = service.for_connection(stream.local_addr().ok(), Some(peer));
        tokio::spawn(async move {
            let mut http = http1::Builder::new();
            http.timer(TokioTimer::new());
            let connection =
                http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(error) = connection.await {
                eprintln!("connection from {peer}: {error}");
            }
        });
    }
}
