//! The `start_response` callback: how an app answers.
//!
//! In WSGI the server passes a `start_response` function, the app calls it once with a status
//! and headers, and only then yields body chunks. rwgi keeps that protocol, makes its order a
//! fact of the type system, and gives the callback something only the server has: the
//! response's extensions, which the server seeds and the app's [`Response`] carries back.
//!
//! What the types enforce:
//!
//! - [`start`](StartResponse::start) consumes the callback, so it cannot be called twice
//!   (REQ-START-2).
//! - [`Started`] is the only way to attach a body, so there is no body before the status and
//!   headers (REQ-START-3).
//! - [`Response`] has no public constructor: [`Started::body`] and
//!   [`StartResponse::respond`] are the only ways to make one, so every response an app returns
//!   went through a callback (REQ-START-1).
//!
//! What they do not enforce: that the callback is *the one this call received*.
//! [`StartResponse::new`] is public, because servers, test drivers and suites outside this
//! crate must make one, so an app could ignore the callback it was given and make its own. Such
//! an app loses what the server put in the callback (its response extensions), and the lint
//! middleware reports it under REQ-START-1: the callback the lint passes inward carries a mark,
//! and the response must come back with it. Middleware therefore passes the callback it received
//! inward rather than making a new one.
//!
//! Calling the callback twice does not compile:
//!
//! ```compile_fail,E0382
//! # use rwgi::{http::{HeaderMap, StatusCode}, StartResponse};
//! let start = StartResponse::new();
//! let first = start.start(StatusCode::OK, HeaderMap::new());
//! let second = start.start(StatusCode::OK, HeaderMap::new()); // error: use of moved value
//! ```
//!
//! Nor does building a response by hand, even with fields of the right types:
//!
//! ```compile_fail,E0451
//! # use rwgi::{body::Full, http::{Extensions, HeaderMap, StatusCode}, Response};
//! let response = Response {
//!     status: StatusCode::OK,
//!     headers: HeaderMap::new(),
//!     extensions: Extensions::new(),
//!     body: Full::new("x"),
//! }; // error: the fields are private
//! ```
//!
//! WSGI's timing holds too: calling the callback sends nothing. The server sends the status
//! line and headers only together with the first non-empty body chunk, or at the end of an
//! empty body (REQ-SRV-4), so an error before that still becomes a clean error response. An
//! app that needs its head out at once (server-sent events) says so with a
//! [`FlushHead`](crate::interim::FlushHead) in its response's extensions, where the server
//! offers it (REQ-INTERIM-3).

use http::{Extensions, HeaderMap, StatusCode};

use crate::body::Body;
use crate::Response;

/// The callback a server hands to an app with each request; calling it is the app's answer.
///
/// A server makes one per call of the app with [`StartResponse::new`] (or
/// [`with_extensions`](StartResponse::with_extensions), to hand the app typed values for its
/// response). Middleware passes the one it received to the app it wraps.
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
#[derive(Debug, Default)]
#[must_use = "an app answers by calling `start`"]
pub struct StartResponse {
    extensions: Extensions,
}

impl StartResponse {
    /// A fresh callback with no extensions, for servers and test drivers.
    ///
    /// Apps and middleware do not need this: they answer with the callback they were given
    /// (see the [module documentation](self) for what a made-up callback loses).
    pub fn new() -> Self {
        StartResponse {
            extensions: Extensions::new(),
        }
    }

    /// A callback whose response starts with `extensions`: typed values a server hands to the
    /// app for its answer, which come back in [`Response::extensions`].
    ///
    /// ```
    /// use rwgi::body::Empty;
    /// use rwgi::http::{Extensions, HeaderMap, StatusCode};
    /// use rwgi::StartResponse;
    ///
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct RequestId(u64);
    ///
    /// let mut extensions = Extensions::new();
    /// extensions.insert(RequestId(7));
    /// let response = StartResponse::with_extensions(extensions)
    ///     .start(StatusCode::NO_CONTENT, HeaderMap::new())
    ///     .body(Empty);
    /// assert_eq!(response.extensions().get(), Some(&RequestId(7)));
    /// ```
    pub fn with_extensions(extensions: Extensions) -> Self {
        StartResponse { extensions }
    }

    /// The extensions the response will carry.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The extensions the response will carry, to add to before answering.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// Starts the response with a status and headers (REQ-START-1).
    ///
    /// The headers are the app's, end to end: hop-by-hop headers such as `Connection` and
    /// `Transfer-Encoding` belong to the server and are refused there (REQ-RESP-2). `http`'s
    /// header types cannot hold a CR, LF or NUL, so nothing given here can inject a header.
    pub fn start(self, status: StatusCode, headers: HeaderMap) -> Started {
        Started {
            status,
            headers,
            extensions: self.extensions,
        }
    }

    /// Answers with an `http::Response`, for apps and bridges that already build one.
    ///
    /// Status, headers, extensions and body are kept; the callback's extensions come first and
    /// the response's are added over them. The HTTP version is not: the server chooses the
    /// version it answers with.
    ///
    /// ```
    /// use rwgi::body::Full;
    /// use rwgi::StartResponse;
    ///
    /// let built = rwgi::http::Response::builder()
    ///     .status(201)
    ///     .header("location", "/items/1")
    ///     .body(Full::new("created"))
    ///     .unwrap();
    /// let response = StartResponse::new().respond(built);
    /// assert_eq!(response.status(), 201);
    /// assert_eq!(response.headers()["location"], "/items/1");
    /// ```
    pub fn respond<B: Body>(self, response: http::Response<B>) -> Response<B> {
        let (parts, body) = response.into_parts();
        let mut extensions = self.extensions;
        extensions.extend(parts.extensions);
        Response::new(parts.status, parts.headers, extensions, body)
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
    extensions: Extensions,
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
        Response::new(self.status, self.headers, self.extensions, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Empty;

    #[test]
    fn the_callback_keeps_extensions_status_and_headers() {
        let mut extensions = Extensions::new();
        extensions.insert(7u8);
        let start = StartResponse::with_extensions(extensions);
        assert_eq!(start.extensions().get::<u8>(), Some(&7));
        let mut headers = HeaderMap::new();
        headers.insert("x-id", http::HeaderValue::from_static("7"));
        let started = start.start(StatusCode::CREATED, headers);
        assert_eq!(started.status(), StatusCode::CREATED);
        assert_eq!(started.headers()["x-id"], "7");
        let response = started.body(Empty);
        assert_eq!(response.extensions().get::<u8>(), Some(&7));
    }

    #[test]
    fn respond_keeps_both_sets_of_extensions() {
        let mut start = StartResponse::new();
        start.extensions_mut().insert(1u8);
        let mut built = http::Response::new(Empty);
        built.extensions_mut().insert("app");
        *built.version_mut() = http::Version::HTTP_10;
        let response = start.respond(built);
        assert_eq!(response.extensions().get::<u8>(), Some(&1));
        assert_eq!(response.extensions().get::<&str>(), Some(&"app"));
        let back = http::Response::from(response);
        assert_eq!(
            back.version(),
            http::Version::default(),
            "the server picks the version"
        );
    }
}
