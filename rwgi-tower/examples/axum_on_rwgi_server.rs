//! Host an axum app on rwgi-server: an axum `Router` with two tower-http layers, wrapped in an
//! rwgi middleware, served by the reference server. Run it with
//!
//! ```text
//! cargo run --release -p rwgi-tower --example axum_on_rwgi_server
//! curl -i --compressed http://127.0.0.1:8000/
//! ```
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Extension, Router};
use rwgi::app::AppExt;
use rwgi::http::StatusCode;
use rwgi::lint::Lint;
use rwgi_tower::{ScriptName, ServiceApp};
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;

/// A handler that uses what the bridge hands axum: the client's address, and the prefix the
/// app is mounted at (present when the server mounts it at a root path).
async fn hello(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    script_name: Option<Extension<ScriptName>>,
) -> String {
    let mount = script_name.map_or(String::new(), |Extension(name)| name.to_string());
    format!("Hello, {peer}! Links here start with {mount}/\n")
}

fn main() -> std::process::ExitCode {
    let router = Router::new()
        .route("/", get(hello))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ));
    // The router is an rwgi app now: rwgi middleware wraps it like any other app, and
    // rwgi-server runs it with its settings, workers, signals and logs (`--help`).
    let app = ServiceApp::new(router).with(Lint::with_hook(|violation| {
        eprintln!("rwgi rule broken: {violation}");
    }));
    rwgi_server::run(app)
}
