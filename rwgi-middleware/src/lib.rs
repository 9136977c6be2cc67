//! `rwgi-middleware`: the middleware people deploy rwgi apps with.
//!
//! - [`AccessLog`]: one [`Record`](access_log::Record) per request, handed to a sink once the
//!   response is over (ended, failed, or dropped because the client left).
//! - [`UrlMap`]: one app made of several, each mounted at a path prefix, which moves from
//!   `path_info` to `script_name` (REQ-MW-5, REQ-PATH-6).
//! - [`ProxyHeaders`]: the client's address, scheme, host and path prefix as a trusted proxy in
//!   front (nginx) reports them in `X-Forwarded-*` or `Forwarded` headers; nothing is trusted
//!   by default.
//! - [`StaticFiles`]: a directory served at a path prefix as file bodies (spec §14.9), with
//!   `ETag`, `Last-Modified`, conditional requests and byte ranges.
//!
//! Each passes the app suite's middleware checks (`rwgi_conformance::app_suite::run_middleware`
//! for the access log; the app suite for the URL map), and works on any rwgi server: this crate
//! depends on `rwgi` alone, not on a server or a runtime, so frameworks and libraries can use it
//! too.
//!
//! ```
//! use rwgi::app::app_fn;
//! use rwgi::body::Full;
//! use rwgi::{AppExt, StartResponse};
//! use rwgi_conformance::test_client::{block_on, TestRequest};
//! use rwgi_middleware::{AccessLog, UrlMap};
//!
//! let hello = app_fn(|_, start: StartResponse| async move {
//!     Ok(start.start(Default::default(), Default::default()).body(Full::new("hello\n")))
//! });
//! let api = app_fn(|environ: rwgi::Environ, start: StartResponse| async move {
//!     let text = format!("{} {}\n", environ.script_name(), environ.path_info());
//!     Ok(start.start(Default::default(), Default::default()).body(Full::new(text)))
//! });
//! let app = UrlMap::new()
//!     .mount("/api", api)
//!     .mount("", hello)
//!     .with(AccessLog::with_sink(|record| eprintln!("{record}")));
//!
//! assert_eq!(block_on(TestRequest::get("/api/users").send(&app)).text(), "/api /users\n");
//! assert_eq!(block_on(TestRequest::get("/").send(&app)).text(), "hello\n");
//! ```
#![forbid(unsafe_code)]
#![deny(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

pub mod access_log;
pub mod proxy;
pub mod static_files;
pub mod url_map;

pub use access_log::AccessLog;
pub use proxy::ProxyHeaders;
pub use static_files::StaticFiles;
pub use url_map::UrlMap;
