//! The Rust Web Gateway Interface: one small contract between HTTP servers and web applications.
//!
//! rwgi does for Rust what WSGI (PEP 3333) does for Python. A **server** accepts HTTP
//! connections, turns each request into an [`Environ`] and calls an [`App`] with it and a
//! [`StartResponse`] callback. The **app** (a framework, or a hand-written handler) answers by
//! calling the callback with a status and headers, which yields the only way to build a
//! [`Response`], and returns a streaming [`Body`]. **Middleware** wraps an app into another app
//! and can look at and change everything that passes between the two.
//!
//! ```text
//! client ──> nginx ──> rwgi server ──Environ + StartResponse──> [middleware] ──> app
//!                                  <──────── Response<Body> ────
//! ```
//!
//! The normative text lives in `spec/SPEC.md` in the repository; each requirement has an ID of
//! the form `REQ-<AREA>-<N>`, and the documentation of every item names the requirements it
//! carries.
//!
//! # A complete app
//!
//! ```
//! use rwgi::body::Full;
//! use rwgi::http::{header, HeaderMap, HeaderValue, StatusCode};
//! use rwgi::{App, Environ, Error, Response, StartResponse};
//!
//! struct Hello;
//!
//! impl App for Hello {
//!     type Body = Full;
//!
//!     async fn call(&self, environ: Environ, start: StartResponse) -> Result<Response<Full>, Error> {
//!         let mut headers = HeaderMap::new();
//!         headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
//!         let text = format!("Hello from {}!", environ.path_info());
//!         Ok(start.start(StatusCode::OK, headers).body(Full::new(text)))
//!     }
//! }
//! # fn assert_app<A: App>(_: &A) {}
//! # assert_app(&Hello);
//! ```
//!
//! # Crate features
//!
//! - `serde` (default): `Serialize`/`Deserialize` for [`Environ`] (everything but the request
//!   body and the typed extensions), [`ServerInfo`](environ::ServerInfo) and
//!   [`CgiVariables`](cgi::CgiVariables).
#![forbid(unsafe_code)]
#![deny(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod app;
pub mod body;
pub mod cgi;
pub mod disconnect;
pub mod environ;
pub mod error;
pub mod file;
pub mod input;
pub mod interim;
pub mod lifespan;
pub mod limits;
pub mod lint;
pub mod middleware;
pub mod outcome;
pub mod path;
pub mod response;
pub mod server;
pub mod start_response;
pub mod trailers;
pub mod upgrade;

pub mod violation;

#[cfg(feature = "serde")]
mod serde_impls;

pub use app::{App, AppExt};
pub use body::Body;
pub use environ::Environ;
pub use error::Error;
pub use input::Input;
pub use middleware::Middleware;
pub use response::Response;
pub use start_response::{StartResponse, Started};

/// The `http` crate, re-exported so that apps and servers agree on one version of its types.
pub use http;

// The README's examples are compiled and run as doctests, so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The version of the specification (`spec/SPEC.md`) that this crate implements, as
/// `(major, minor)`.
///
/// A server reports it to apps through [`ServerInfo::spec_version`](environ::ServerInfo::spec_version).
/// Minor versions add optional features; a major version changes a contract (REQ-VER-1).
///
/// ```
/// assert_eq!(rwgi::SPEC_VERSION, (1, 1));
/// ```
pub const SPEC_VERSION: (u16, u16) = (1, 1);
