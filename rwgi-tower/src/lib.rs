//! Bridges between rwgi and the tower ecosystem, both ways.
//!
//! Most Rust web code speaks [`tower_service::Service`] over `http::Request`: axum, tonic,
//! tower-http's middleware, hyper-util's server. This crate connects the two worlds:
//!
//! - [`AppService`] turns any rwgi [`App`](rwgi::App) into a
//!   `Service<http::Request<B>>` for any [`http_body::Body`] request body, so the app runs
//!   wherever hyper runs: on hyper-util's server, under `axum::serve`, or nested in an axum
//!   `Router` under a prefix (the prefix becomes `SCRIPT_NAME`). rwgi's server rules are kept,
//!   because the service calls the app through [`rwgi::server::prepare_with`]: nothing is sent
//!   before the first non-empty chunk, a failure before it becomes a `500`, the body is dropped
//!   when it ends or the client goes away, and panics are caught.
//! - [`ServiceApp`] turns a `tower` service, an axum `Router` with its tower-http layers say,
//!   into an rwgi [`App`](rwgi::App) that any rwgi server hosts, under rwgi middleware.
//!
//! `spec/SPEC.md` §14.1 in the repository ("Bridges", `REQ-BRIDGE-*`) says, direction by
//! direction, what is carried across and what cannot be.
//!
//! # Serve an rwgi app with hyper (or axum)
//!
//! ```no_run
//! use rwgi::app::app_fn;
//! use rwgi::body::Full;
//! use rwgi::http::{HeaderMap, StatusCode};
//! use rwgi_tower::AppService;
//!
//! # async fn serve() -> std::io::Result<()> {
//! let app = app_fn(|environ: rwgi::Environ, start: rwgi::StartResponse| async move {
//!     let text = format!("Hello from {}!", environ.path_info());
//!     Ok(start.start(StatusCode::OK, HeaderMap::new()).body(Full::new(text)))
//! });
//! let service = AppService::new(app);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! loop {
//!     let (stream, peer) = listener.accept().await?;
//!     // One service per connection, so that the app sees the connection's addresses.
//!     let service = service.for_connection(stream.local_addr().ok(), Some(peer));
//!     tokio::spawn(async move {
//!         let io = hyper_util::rt::TokioIo::new(stream);
//!         let hyper_service = hyper_util::service::TowerToHyperService::new(service);
//!         let _ = hyper::server::conn::http1::Builder::new()
//!             .serve_connection(io, hyper_service)
//!             .await;
//!     });
//! }
//! # }
//! ```
//!
//! # Host an axum router on an rwgi server
//!
//! ```
//! use axum::routing::get;
//! use rwgi_tower::ServiceApp;
//! use rwgi_conformance::test_client::TestRequest;
//!
//! let router = axum::Router::new().route("/hello", get(|| async { "Hello, world!" }));
//! let app = ServiceApp::new(router);
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! # runtime.block_on(async {
//! let response = TestRequest::get("/hello").send(&app).await;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.text(), "Hello, world!");
//! # });
//! ```
//!
//! # What travels across
//!
//! | rwgi | `http::Request` / `http::Response` |
//! |---|---|
//! | `Environ` method, target, version, headers | the request's (the target as [`ServiceApp`] describes) |
//! | `Environ::extensions` | the request's extensions, both ways |
//! | `SCRIPT_NAME` | stripped from the URI, as axum's `nest` does; [`ScriptName`] and [`OriginalUri`] carry it |
//! | connection facts (`ConnectionInfo`) | a [`ConnectionInfo`](rwgi::environ::ConnectionInfo) request extension; with the `axum` feature also `axum::extract::ConnectInfo<SocketAddr>` toward axum, and `ConnectInfo<SocketAddrs>` or `ConnectInfo<SocketAddr>` from `axum::serve` |
//! | `Input` | the request body's data frames (trailers are not carried) |
//! | `Response` status, headers, extensions | the response's |
//! | `Body` | the response body's data frames, with its exact length as the size hint |
//!
//! # Why a crate of its own
//!
//! The bridge could have been a feature of `rwgi`. It is a crate instead because its public
//! API names `tower-service` 0.3 and `http-body` 1 types: when either makes a breaking release,
//! this crate makes one too, while `rwgi`, whose dependencies are `http`, `bytes` and
//! `futures-core` and nothing else, keeps its version. An app or server that never meets tower
//! never compiles it.
//!
//! # Crate features
//!
//! - `axum` (on by default): reads axum's `ConnectInfo<SocketAddr>`, `ConnectInfo<SocketAddrs>`
//!   and `OriginalUri` request extensions in [`AppService`], and gives the service behind
//!   [`ServiceApp`] axum's `ConnectInfo<SocketAddr>` and `OriginalUri`, so that axum's own
//!   extractors see the peer and the full URI. It adds `SocketAddrs`, the connect info that
//!   carries both addresses of a connection `axum::serve` accepted. It raises the minimum Rust
//!   version to axum's, 1.80.
#![forbid(unsafe_code)]
#![deny(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

use std::fmt;
use std::sync::Arc;

use rwgi::http::Uri;

mod app_service;
mod service_app;

#[cfg(feature = "axum")]
pub use app_service::SocketAddrs;
pub use app_service::{AppBody, AppFailure, AppService, HttpInput, ResponseFuture, RootPathError};
pub use service_app::{InputBody, ServiceApp, ServiceBody};

/// The error type of the services and bodies this crate meets: what `tower` and `http-body`
/// errors are converted from, and what an rwgi [`Error`](rwgi::Error) is made of.
///
/// ```
/// let error: rwgi_tower::BoxError = "connection pool closed".into();
/// let rwgi_error = rwgi::Error::from(error);
/// assert_eq!(rwgi_error.to_string(), "connection pool closed");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What [`AppService`] tells apps about the server when nothing else says (REQ-ENV-9):
/// `rwgi-tower/0.1`, and calls may come from several threads at once, as a tower service's
/// may.
///
/// ```
/// assert!(rwgi_tower::SERVER_INFO.is_multithread());
/// assert_eq!(rwgi_tower::SERVER_INFO.software(), "rwgi-tower/0.1");
/// ```
pub const SERVER_INFO: rwgi::environ::ServerInfo =
    rwgi::environ::ServerInfo::new("rwgi-tower/0.1").multithread(true);

/// The `SCRIPT_NAME` of a request that [`ServiceApp`] hands to its service: the raw
/// (percent-encoded) prefix the rwgi app is mounted at, which the service's URI no longer
/// contains (REQ-BRIDGE-4).
///
/// It is a request extension, present only when the environ was mounted (its `script_name` not
/// empty). In an axum handler, take it with `Option<axum::Extension<ScriptName>>`, and build
/// links as `script_name + path`:
///
/// ```
/// use axum::routing::get;
/// use axum::Extension;
/// use rwgi_conformance::test_client::TestRequest;
/// use rwgi_tower::{ScriptName, ServiceApp};
///
/// async fn link(script_name: Option<Extension<ScriptName>>) -> String {
///     let prefix = script_name.as_ref().map_or("", |Extension(name)| name.as_str());
///     format!("{prefix}/users/1")
/// }
///
/// let app = ServiceApp::new(axum::Router::new().route("/link", get(link)));
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # runtime.block_on(async {
/// let response = TestRequest::get("/api/link").mount("/api").send(&app).await;
/// assert_eq!(response.text(), "/api/users/1");
/// let response = TestRequest::get("/link").send(&app).await;
/// assert_eq!(response.text(), "/users/1");
/// # });
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ScriptName(Arc<str>);

impl ScriptName {
    /// A script name: empty, or starting with `/` and not ending with one (REQ-PATH-5).
    /// Bridges make these; tests of handlers that take one can too.
    ///
    /// ```
    /// assert_eq!(rwgi_tower::ScriptName::new("/api").as_str(), "/api");
    /// ```
    pub fn new(script_name: &str) -> Self {
        ScriptName(Arc::from(script_name))
    }

    /// The prefix, raw as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ScriptName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ScriptName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The request target before a mount prefix was stripped from it: the URI the client sent,
/// `script_name` included (REQ-BRIDGE-4).
///
/// [`ServiceApp`] adds it next to [`ScriptName`] when the environ is mounted; [`AppService`]
/// reads it (and axum's own `OriginalUri`, with the `axum` feature) to give the app the whole
/// target again with the stripped part as its `script_name`, so that `script_name + path_info`
/// is still the path the client sent (REQ-PATH-2).
///
/// ```
/// use rwgi_tower::OriginalUri;
///
/// let original = OriginalUri("/api/users?page=2".parse().unwrap());
/// assert_eq!(original.0.path(), "/api/users");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginalUri(pub Uri);
