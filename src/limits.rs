//! [`Limits`]: the bounds a server holds requests to, as the app can read them (spec §14.5).
//!
//! Servers bound what a client may send (the body, the request head) and how long each step
//! may take. An app that knows those bounds can refuse an upload before reading it, pick a
//! buffer size, or set its own deadlines inside the server's. A server that states its limits
//! attaches them to its [`ServerInfo`](crate::environ::ServerInfo), which every request of
//! every connection shares: stating them costs nothing per request (REQ-LIMIT-1).
//!
//! Each bound is `None` when the server enforces none (or does not say); an app treats `None`
//! as "unknown", never as "unlimited" (REQ-EXT-1).
//!
//! ```
//! use std::time::Duration;
//! use rwgi::environ::{ConnectionInfo, ServerInfo};
//! use rwgi::limits::Limits;
//! use rwgi::http::uri::Scheme;
//!
//! // What a server does once, when it starts.
//! let limits = Limits::new()
//!     .with_body(10 << 20)
//!     .with_header_field(8190)
//!     .with_body_timeout(Duration::from_secs(30));
//! let server = ServerInfo::new("my-server/1.0").with_limits(limits);
//! let connection = ConnectionInfo::new(Scheme::HTTP).server(server);
//!
//! // What an app reads.
//! let environ = rwgi_conformance::test_client::TestRequest::post("/upload")
//!     .connection(connection)
//!     .into_environ();
//! let limits = environ.server().limits().expect("this server states its limits");
//! assert_eq!(limits.body(), Some(10 << 20));
//! assert_eq!(limits.request_timeout(), None);
//! ```

use std::time::Duration;

/// The bounds a server holds each request to (REQ-LIMIT-1).
///
/// Built by a server with [`Limits::new`] and the setters, read by apps with the getters of the
/// same name. A bound the server does not enforce stays `None`.
///
/// ```
/// use rwgi::limits::Limits;
///
/// let limits = Limits::new().with_body(1024).with_header_fields(100);
/// assert_eq!(limits.body(), Some(1024));
/// assert_eq!(limits.header_fields(), Some(100));
/// assert_eq!(limits.request_line(), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    body: Option<u64>,
    request_line: Option<usize>,
    header_fields: Option<usize>,
    header_field: Option<usize>,
    header_timeout: Option<Duration>,
    body_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
}

impl Limits {
    /// No bound stated.
    pub const fn new() -> Self {
        Limits {
            body: None,
            request_line: None,
            header_fields: None,
            header_field: None,
            header_timeout: None,
            body_timeout: None,
            write_timeout: None,
            request_timeout: None,
        }
    }

    /// The largest request body in bytes: a larger declared body is refused with `413` before
    /// the app is called, and reading past it fails.
    #[must_use]
    pub const fn with_body(mut self, bytes: u64) -> Self {
        self.body = Some(bytes);
        self
    }

    /// The longest request line in bytes.
    #[must_use]
    pub const fn with_request_line(mut self, bytes: usize) -> Self {
        self.request_line = Some(bytes);
        self
    }

    /// The most header fields in a request.
    #[must_use]
    pub const fn with_header_fields(mut self, fields: usize) -> Self {
        self.header_fields = Some(fields);
        self
    }

    /// The longest header field line in bytes.
    #[must_use]
    pub const fn with_header_field(mut self, bytes: usize) -> Self {
        self.header_field = Some(bytes);
        self
    }

    /// How long a client may take to send a request head.
    #[must_use]
    pub const fn with_header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = Some(timeout);
        self
    }

    /// How long the app may wait for the next chunk of the request body before the read fails.
    #[must_use]
    pub const fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = Some(timeout);
        self
    }

    /// How long a response write may make no progress before the connection is dropped.
    #[must_use]
    pub const fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = Some(timeout);
        self
    }

    /// How long the app has to return its response before the server answers for it.
    #[must_use]
    pub const fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// See [`with_body`](Limits::with_body).
    pub const fn body(&self) -> Option<u64> {
        self.body
    }

    /// See [`with_request_line`](Limits::with_request_line).
    pub const fn request_line(&self) -> Option<usize> {
        self.request_line
    }

    /// See [`with_header_fields`](Limits::with_header_fields).
    pub const fn header_fields(&self) -> Option<usize> {
        self.header_fields
    }

    /// See [`with_header_field`](Limits::with_header_field).
    pub const fn header_field(&self) -> Option<usize> {
        self.header_field
    }

    /// See [`with_header_timeout`](Limits::with_header_timeout).
    pub const fn header_timeout(&self) -> Option<Duration> {
        self.header_timeout
    }

    /// See [`with_body_timeout`](Limits::with_body_timeout).
    pub const fn body_timeout(&self) -> Option<Duration> {
        self.body_timeout
    }

    /// See [`with_write_timeout`](Limits::with_write_timeout).
    pub const fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    /// See [`with_request_timeout`](Limits::with_request_timeout).
    pub const fn request_timeout(&self) -> Option<Duration> {
        self.request_timeout
    }
}
