//! The `start_response` callback: how an app answers.
//!
//! In WSGI the server passes a `start_response` function, the app calls it once with a status
//! and headers, and only then yields body chunks. rwgi keeps that protocol and makes its rules
//! facts of the type system:
//!
//! - [`StartResponse`] is a value the app receives by move; [`start`](StartResponse::start)
//!   consumes it, so it cannot be called twice (REQ-START-2).
//! - [`Started`] is the only way to attach a body, so there is no body before the status and
//!   headers (REQ-START-3).
//! - [`Response`] can only be made through [`Started::body`], and an app must return one (or an
//!   error), so an app cannot forget to call it (REQ-START-1).
//!
//! ```compile_fail
//! # use rwgi::{http::{HeaderMap, StatusCode}, StartResponse};
//! let start = StartResponse::new();
//! let first = start.start(StatusCode::OK, HeaderMap::new());
//! let second = start.start(StatusCode::OK, HeaderMap::new()); // error: use of moved value
//! ```
//!
//! ```compile_fail
//! # use rwgi::{body::Full, Response};
//! // error: a Response has no public constructor; only `Started::body` makes one
//! let response = Response { status: 200, headers: Default::default(), body: Full::new("x") };
//! ```
//!
//! WSGI's timing holds too: calling the callback sends nothing. The server sends the status
//! line and headers only together with the first non-empty body chunk, or at the end of an
//! empty body (REQ-SRV-4), so an error before that still becomes a clean error response.

use http::{HeaderMap, StatusCode};

use crate::body::Body;
use crate::Response;

/// The callback a server hands to an app with each request; calling it is the app's answer.
///
/// Servers create one per call of the app with [`StartResponse::new`]; so does middleware that
/// wants to see the inner app's answer before giving its own.
///
/// ```
/// use rwgi::body::Full;
/// use rwgi::http::{HeaderMap, StatusCode};
/// use rwgi::StartResponse;
///
/// let start = StartResponse::new();
/// let response = start.start(StatusCode::NOT_FOUND, HeaderMap::new()).body(Full::new("no such page"));
/// assert_eq!(response.status(), StatusCode::NOT_FOUND);
/// ```
#[derive(Debug)]
#[must_use = "an app answers by calling `start`"]
pub struct StartResponse {
    _private: (),
}

impl StartResponse {
    /// A fresh callback, for servers and for middleware calling an inner app.
    pub const fn new() -> Self {
        StartResponse { _private: () }
    }

    /// Starts the response with a status and headers (REQ-START-1).
    ///
    /// The headers are the app's, end to end: hop-by-hop headers such as `Connection` and
    /// `Transfer-Encoding` belong to the server and are refused there (REQ-RESP-2). `http`'s
    /// header types cannot hold a CR, LF or NUL, so nothing given here can inject a header.
    pub fn start(self, status: StatusCode, headers: HeaderMap) -> Started {
        Started { status, headers }
    }
}

impl Default for StartResponse {
    fn default() -> Self {
        StartResponse::new()
    }
}

/// A started response, waiting for its body.
///
/// ```
/// use rwgi::body::Empty;
/// use rwgi::http::{header, HeaderMap, HeaderValue, StatusCode};
/// use rwgi::StartResponse;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::LOCATION, HeaderValue::from_static("/login"));
/// let started = StartResponse::new().start(StatusCode::SEE_OTHER, headers);
/// assert_eq!(started.status(), StatusCode::SEE_OTHER);
/// let response = started.body(Empty);
/// assert_eq!(response.headers()["location"], "/login");
/// ```
#[derive(Debug)]
#[must_use = "a started response needs a body to be returned"]
pub struct Started {
    status: StatusCode,
    headers: HeaderMap,
}

impl Started {
    /// The status given to the callback.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers given to the callback.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Attaches the body, completing the response the app returns (REQ-START-3).
    pub fn body<B: Body>(self, body: B) -> Response<B> {
        Response::new(self.status, self.headers, body)
    }
}
