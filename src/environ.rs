//! The request as the app sees it: [`Environ`], and what a server knows about the connection.
//!
//! A server builds an [`Environ`] from the `http::Request` its HTTP stack parsed, plus the
//! facts about the connection in a [`ConnectionInfo`], with [`Environ::from_request`]. That one
//! conversion is where every server applies the same mapping rules (REQ-ENV-*), so no server
//! writes them again.
//!
//! # Paths
//!
//! The request target is kept exactly as received (REQ-PATH-1). Its path is split into
//! [`script_name`](Environ::script_name), the part where the app is mounted, and
//! [`path_info`](Environ::path_info), the part the app routes on. Both are *raw*
//! (percent-encoded) slices of the one path, so `script_name + path_info` is always the path the
//! client sent (REQ-PATH-2). Decoded forms are one call away:
//! [`path_segments`](Environ::path_segments) decodes segment by segment, so `%2F` stays inside its
//! segment; [`cgi_variables`](Environ::cgi_variables) gives the lossy whole-path decoding of
//! PEP 3333 for code that expects it.
//!
//! | request target            | form      | `script_name` | `path_info` | `query_string` |
//! |---------------------------|-----------|---------------|-------------|----------------|
//! | `/a/b%2Fc?x=1`            | origin    | `""`          | `/a/b%2Fc`  | `x=1`          |
//! | `http://h/a?x`            | absolute  | `""`          | `/a`        | `x`            |
//! | `*` (OPTIONS only)        | asterisk  | `""`          | `*`         | `""`           |
//! | `h:443` (CONNECT only)    | authority | `""`          | `""`        | `""`           |
//! | `/app/a` mounted at `/app`| origin    | `/app`        | `/a`        | `""`           |

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::header::{Entry, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::uri::Scheme;
use http::{Extensions, HeaderMap, HeaderValue, Method, Request, Uri, Version};

use crate::cgi::CgiVariables;
use crate::disconnect::Disconnect;
use crate::limits::Limits;
use crate::path::Segments;
use crate::Input;

/// What the app may assume about how the server runs it (REQ-ENV-9).
///
/// ```
/// use rwgi::environ::ServerInfo;
///
/// let info = ServerInfo::new("my-server/1.0").multithread(true);
/// assert!(info.is_multithread());
/// assert!(!info.is_multiprocess());
/// assert_eq!(info.spec_version(), rwgi::SPEC_VERSION);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    pub(crate) software: Cow<'static, str>,
    pub(crate) spec_version: (u16, u16),
    pub(crate) multithread: bool,
    pub(crate) multiprocess: bool,
    pub(crate) run_once: bool,
    /// Shared: every connection of a server carries the same limits (REQ-LIMIT-1).
    pub(crate) limits: Option<Arc<Limits>>,
    pub(crate) file_bodies: bool,
}

impl ServerInfo {
    /// Facts for a server that calls the app from one thread, in one process, many times.
    ///
    /// `software` names the server, like CGI's `SERVER_SOFTWARE` (`name/version`).
    pub const fn new(software: &'static str) -> Self {
        ServerInfo {
            software: Cow::Borrowed(software),
            spec_version: crate::SPEC_VERSION,
            multithread: false,
            multiprocess: false,
            run_once: false,
            limits: None,
            file_bodies: false,
        }
    }

    /// Facts for a server whose name is known only at run time (read from its configuration,
    /// say); otherwise the same as [`ServerInfo::new`].
    ///
    /// ```
    /// use rwgi::environ::ServerInfo;
    ///
    /// let version = "2.4";
    /// let info = ServerInfo::named(format!("my-server/{version}"));
    /// assert_eq!(info.software(), "my-server/2.4");
    /// ```
    pub fn named(software: impl Into<Cow<'static, str>>) -> Self {
        ServerInfo {
            software: software.into(),
            ..ServerInfo::new("")
        }
    }

    /// Whether the app may be called concurrently from several threads.
    #[must_use]
    pub const fn multithread(mut self, yes: bool) -> Self {
        self.multithread = yes;
        self
    }

    /// Whether copies of the app run in several processes at once, so process-local state is
    /// not shared between all requests.
    #[must_use]
    pub const fn multiprocess(mut self, yes: bool) -> Self {
        self.multiprocess = yes;
        self
    }

    /// Whether the app will be called once in this process's life (CGI-style), so caches are
    /// not worth building.
    #[must_use]
    pub const fn run_once(mut self, yes: bool) -> Self {
        self.run_once = yes;
        self
    }

    /// The limits the server holds requests to (REQ-LIMIT-1); see [`limits`](crate::limits).
    ///
    /// ```
    /// use rwgi::environ::ServerInfo;
    /// use rwgi::limits::Limits;
    ///
    /// let info = ServerInfo::new("my-server/1.0").with_limits(Limits::new().with_body(1 << 20));
    /// assert_eq!(info.limits().and_then(Limits::body), Some(1 << 20));
    /// assert!(ServerInfo::new("quiet/1.0").limits().is_none(), "a server that does not say");
    /// ```
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = Some(Arc::new(limits));
        self
    }

    /// The limits the server states, or `None` when it states none: the app then knows
    /// nothing about them (REQ-EXT-1).
    pub fn limits(&self) -> Option<&Limits> {
        self.limits.as_deref()
    }

    /// Whether the server sends file bodies its own way (§14.9): it takes the range out of a
    /// body with [`Body::take_file`](crate::body::Body::take_file) and sends it without reading
    /// the file on the threads that poll apps (REQ-FILE-2, REQ-FILE-4). Without it, a
    /// [`FileBody`](crate::file::FileBody) is polled as a stream and reads the file on the
    /// polling thread (REQ-FILE-5).
    ///
    /// ```
    /// use rwgi::environ::ServerInfo;
    ///
    /// let info = ServerInfo::new("my-server/1.0").file_bodies(true);
    /// assert!(info.has_file_bodies());
    /// assert!(!ServerInfo::new("other/1.0").has_file_bodies());
    /// ```
    #[must_use]
    pub const fn file_bodies(mut self, yes: bool) -> Self {
        self.file_bodies = yes;
        self
    }

    /// The server's name and version.
    pub fn software(&self) -> &str {
        &self.software
    }

    /// The version of the rwgi specification the server implements.
    pub const fn spec_version(&self) -> (u16, u16) {
        self.spec_version
    }

    /// See [`ServerInfo::multithread`].
    pub const fn is_multithread(&self) -> bool {
        self.multithread
    }

    /// See [`ServerInfo::multiprocess`].
    pub const fn is_multiprocess(&self) -> bool {
        self.multiprocess
    }

    /// See [`ServerInfo::run_once`].
    pub const fn is_run_once(&self) -> bool {
        self.run_once
    }

    /// See [`ServerInfo::file_bodies`].
    pub const fn has_file_bodies(&self) -> bool {
        self.file_bodies
    }
}

impl Default for ServerInfo {
    fn default() -> Self {
        ServerInfo::new("")
    }
}

/// What a server knows about the connection a request came in on.
///
/// A server makes one per connection and hands it to [`Environ::from_request`] for each
/// request.
///
/// ```
/// use rwgi::environ::{ConnectionInfo, ServerInfo};
/// use rwgi::http::uri::Scheme;
///
/// let local = "127.0.0.1:8000".parse().unwrap();
/// let peer = "127.0.0.1:53122".parse().unwrap();
/// let connection = ConnectionInfo::new(Scheme::HTTP)
///     .local_addr(local)
///     .peer_addr(peer)
///     .server(ServerInfo::new("example/0.1").multithread(true));
/// assert_eq!(connection.scheme(), &Scheme::HTTP);
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    // Shared, because every request on the connection carries the same facts: cloning is a
    // reference-count increment and the environ stays small to move between async layers.
    inner: Arc<ConnectionFacts>,
}

#[derive(Clone, Debug)]
struct ConnectionFacts {
    scheme: Scheme,
    local_addr: Option<SocketAddr>,
    peer_addr: Option<SocketAddr>,
    server: ServerInfo,
    /// What the server offers every request of the connection (spec §14).
    offers: Extensions,
    /// The `Host` value last made from a request's authority (REQ-ENV-14).
    host: LastHost,
}

/// The `Host` value last made from an authority on a connection: an HTTP/2 connection's
/// requests nearly always name the same one, and sharing the value saves checking, copying and
/// freeing it on each request.
#[derive(Default)]
struct LastHost(Mutex<Option<HeaderValue>>);

impl fmt::Debug for LastHost {
    // A memo, not a fact of the connection.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LastHost").finish_non_exhaustive()
    }
}

impl Clone for LastHost {
    // A connection made from another starts without one: it may be a different connection.
    fn clone(&self) -> Self {
        LastHost::default()
    }
}

impl LastHost {
    /// The `Host` value for `authority` (without its user information), or `None` when it
    /// cannot be a header value.
    fn value(&self, authority: &str) -> Option<HeaderValue> {
        // Never waited for: a server that shares one `ConnectionInfo` among its connections
        // makes the value afresh while another thread holds it.
        let Ok(mut last) = self.0.try_lock() else {
            return HeaderValue::from_str(without_userinfo(authority)).ok();
        };
        // Reused for an authority equal to it alone, which has no user information: one
        // comparison settles it.
        if let Some(value) = last
            .as_ref()
            .filter(|value| value.as_bytes() == authority.as_bytes())
        {
            return Some(value.clone());
        }
        let value = HeaderValue::from_str(without_userinfo(authority)).ok()?;
        *last = Some(value.clone());
        Some(value)
    }
}

impl ConnectionInfo {
    /// A connection that carries `scheme` (`http`, or `https` behind TLS).
    pub fn new(scheme: Scheme) -> Self {
        ConnectionInfo {
            inner: Arc::new(ConnectionFacts {
                scheme,
                local_addr: None,
                peer_addr: None,
                server: ServerInfo::default(),
                offers: Extensions::new(),
                host: LastHost::default(),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut ConnectionFacts)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// The address the server accepted the connection on.
    #[must_use]
    pub fn local_addr(self, addr: SocketAddr) -> Self {
        self.edit(|facts| facts.local_addr = Some(addr))
    }

    /// The client's address.
    #[must_use]
    pub fn peer_addr(self, addr: SocketAddr) -> Self {
        self.edit(|facts| facts.peer_addr = Some(addr))
    }

    /// The facts about the server that the app may rely on.
    #[must_use]
    pub fn server(self, server: ServerInfo) -> Self {
        self.edit(|facts| facts.server = server)
    }

    /// The same facts with another scheme: for a proxy-header middleware that learned the
    /// client's scheme from a trusted proxy.
    #[must_use]
    pub fn with_scheme(self, scheme: Scheme) -> Self {
        self.edit(|facts| facts.scheme = scheme)
    }

    /// The connection's scheme.
    pub fn scheme(&self) -> &Scheme {
        &self.inner.scheme
    }

    /// The client's address, when the server gave one ([`peer_addr`](ConnectionInfo::peer_addr)):
    /// what [`Environ::remote_addr`] reports for the connection's requests.
    ///
    /// ```
    /// use rwgi::environ::ConnectionInfo;
    /// use rwgi::http::uri::Scheme;
    ///
    /// let client = "192.0.2.7:4000".parse().unwrap();
    /// let connection = ConnectionInfo::new(Scheme::HTTP).peer_addr(client);
    /// assert_eq!(connection.remote_addr(), Some(client));
    /// assert_eq!(ConnectionInfo::new(Scheme::HTTP).remote_addr(), None);
    /// ```
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.peer_addr
    }

    /// Offers `value` to every request of the connection: an extension the server supports
    /// (spec §14), found by [`Environ::extension`] like a value in the environ's own
    /// extensions. A server makes the offer once per connection, so requests pay nothing for
    /// it, where a value in each environ's extensions costs an allocation per request.
    ///
    /// ```
    /// use rwgi::environ::ConnectionInfo;
    /// use rwgi::trailers::Trailers;
    /// use rwgi_conformance::test_client::TestRequest;
    ///
    /// let connection = ConnectionInfo::default().offer(Trailers::new());
    /// let environ = TestRequest::get("/").connection(connection).into_environ();
    /// assert!(environ.extension::<Trailers>().is_some());
    /// assert!(environ.extensions().get::<Trailers>().is_none(), "not copied per request");
    /// ```
    #[must_use]
    pub fn offer<T: Clone + Send + Sync + 'static>(self, value: T) -> Self {
        self.edit(|facts| {
            facts.offers.insert(value);
        })
    }

    /// The same facts without the offer of `T`: for a middleware or bridge that cannot carry
    /// that extension to the app it serves (REQ-EXT-2).
    ///
    /// ```
    /// use rwgi::environ::ConnectionInfo;
    /// use rwgi::trailers::Trailers;
    ///
    /// let connection = ConnectionInfo::default().offer(Trailers::new());
    /// assert!(connection.offers().get::<Trailers>().is_some());
    /// assert!(connection.withdraw::<Trailers>().offers().get::<Trailers>().is_none());
    /// ```
    #[must_use]
    pub fn withdraw<T: Send + Sync + 'static>(self) -> Self {
        if self.inner.offers.get::<T>().is_none() {
            return self;
        }
        self.edit(|facts| {
            facts.offers.remove::<T>();
        })
    }

    /// What the server offers every request of the connection ([`offer`](ConnectionInfo::offer)).
    pub fn offers(&self) -> &Extensions {
        &self.inner.offers
    }
}

impl Default for ConnectionInfo {
    fn default() -> Self {
        ConnectionInfo::new(Scheme::HTTP)
    }
}

/// The four shapes of an HTTP request target (RFC 9112 §3.2).
///
/// ```
/// use rwgi::environ::TargetForm;
/// use rwgi::http::Method;
/// use rwgi_conformance::test_client::TestRequest;
///
/// let environ = TestRequest::new(Method::OPTIONS, "*").into_environ();
/// assert_eq!(environ.target_form(), TargetForm::Asterisk);
/// assert_eq!(environ.path_info(), "*");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetForm {
    /// `/path?query`: the usual form.
    Origin,
    /// `http://host/path?query`: as sent to proxies; servers must accept it too.
    Absolute,
    /// `host:port`: only for `CONNECT`.
    Authority,
    /// `*`: only for `OPTIONS`.
    Asterisk,
}

impl TargetForm {
    fn of(uri: &Uri) -> Self {
        if uri.scheme().is_some() {
            TargetForm::Absolute
        } else if uri.authority().is_some() {
            TargetForm::Authority
        } else if uri.path() == "*" {
            TargetForm::Asterisk
        } else {
            TargetForm::Origin
        }
    }
}

/// The request, as the app sees it: rwgi's `environ`.
///
/// It owns the parts of the `http::Request` the server parsed, moved rather than copied, plus
/// the connection facts. Everything else (server name, decoded paths, CGI variables) is derived
/// on demand, so building one costs no allocation beyond what the request already holds.
///
/// ```
/// use rwgi::environ::{ConnectionInfo, Environ};
/// use rwgi::http::Request;
/// use rwgi::Input;
///
/// let request = Request::post("/api/files/a%2Fb?v=2")
///     .header("host", "example.com:8080")
///     .body(Input::from("payload"))
///     .unwrap();
/// let mut environ = Environ::from_request(request, &ConnectionInfo::default()).unwrap();
/// environ.mount("/api").unwrap();
///
/// assert_eq!(environ.method(), "POST");
/// assert_eq!(environ.script_name(), "/api");
/// assert_eq!(environ.path_info(), "/files/a%2Fb");
/// assert_eq!(environ.query_string(), "v=2");
/// assert_eq!(environ.server_name(), "example.com");
/// assert_eq!(environ.server_port(), 8080);
/// let segments: Vec<_> = environ.path_segments().map(|s| s.to_str().unwrap()).collect();
/// assert_eq!(segments, ["files", "a/b"]);
/// assert_eq!(environ.input().content_length(), Some(7));
/// ```
pub struct Environ {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) extensions: Extensions,
    pub(crate) input: Input,
    pub(crate) connection: ConnectionInfo,
    /// The request's own disconnect handle ([`offer_disconnect`](Environ::offer_disconnect)).
    pub(crate) disconnect: Option<Disconnect>,
    /// How many bytes at the start of the path belong to `script_name`. Four bytes, so that
    /// the environ stays at 256 bytes: it is moved between async layers on every request.
    pub(crate) mount: u32,
}

impl Environ {
    /// Builds the environ for one request: the one mapping every server uses (REQ-ENV-1).
    ///
    /// The request is checked as RFC 9112 requires of a server before any app sees it; the
    /// server answers `400 Bad Request` to any error and does not call the app (REQ-ENV-2).
    ///
    /// # Errors
    ///
    /// A [`TargetError`] when:
    /// - an HTTP/1.1 request has no `Host` header and no absolute-form target, has more than
    ///   one `Host` header, or a `Host` that is not `host[:port]`;
    /// - the target is `*` and the method is not `OPTIONS`;
    /// - the target is in authority form and the method is not `CONNECT`, or the method is
    ///   `CONNECT` and the target is not in authority form.
    ///
    /// ```
    /// use rwgi::environ::{ConnectionInfo, Environ};
    /// use rwgi::http::{Request, Version};
    /// use rwgi::Input;
    ///
    /// let request = Request::get("/").version(Version::HTTP_11).body(Input::empty()).unwrap();
    /// let error = Environ::from_request(request, &ConnectionInfo::default()).unwrap_err();
    /// assert_eq!(error.to_string(), "REQ-ENV-3: HTTP/1.1 request without a Host header");
    /// ```
    pub fn from_request(
        request: Request<Input>,
        connection: &ConnectionInfo,
    ) -> Result<Self, TargetError> {
        let (parts, input) = request.into_parts();
        Environ::from_parts(parts, input, connection)
    }

    /// [`from_request`](Environ::from_request) for a server that holds the request head and
    /// the body apart, as HTTP stacks hand them over: no `Request` is rebuilt in between.
    ///
    /// # Errors
    ///
    /// As [`from_request`](Environ::from_request).
    ///
    /// ```
    /// use rwgi::environ::{ConnectionInfo, Environ};
    /// use rwgi::http::Request;
    /// use rwgi::Input;
    ///
    /// let (parts, ()) = Request::get("/x").header("host", "h").body(()).unwrap().into_parts();
    /// let environ = Environ::from_parts(parts, Input::empty(), &ConnectionInfo::default()).unwrap();
    /// assert_eq!(environ.path_info(), "/x");
    /// ```
    #[inline(always)]
    pub fn from_parts(
        parts: http::request::Parts,
        input: Input,
        connection: &ConnectionInfo,
    ) -> Result<Self, TargetError> {
        check_target(&parts)?;
        let mut headers = parts.headers;
        if let Some(authority) = parts.uri.authority() {
            take_host_from(authority, &mut headers, &connection.inner.host)?;
        }
        Ok(Environ {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers,
            extensions: parts.extensions,
            input,
            connection: connection.clone(),
            disconnect: None,
            mount: 0,
        })
    }

    /// The environ taken apart again, the inverse of [`from_parts`](Environ::from_parts): the
    /// request head as `http` holds it, the body and the connection facts, moved, nothing
    /// copied. For a bridge that hands the request on to an `http` service. The head carries
    /// the whole target: the mount is not kept, so a bridge that needs it reads
    /// [`script_name`](Environ::script_name) first. A `Disconnect` offered to the request
    /// ([`offer_disconnect`](Environ::offer_disconnect)) goes into the head's extensions (unless
    /// they hold one already, which [`extension`](Environ::extension) finds first), where an
    /// environ made from them finds it again.
    ///
    /// ```
    /// use rwgi::http::{Method, Version};
    /// use rwgi_conformance::test_client::TestRequest;
    ///
    /// let mut environ = TestRequest::post("/app/items?page=2")
    ///     .header("accept", "text/plain")
    ///     .body("name=rwgi")
    ///     .mount("/app")
    ///     .into_environ();
    /// environ.extensions_mut().insert(7u8);
    /// assert_eq!(environ.script_name(), "/app");
    /// let (head, input, connection) = environ.into_parts();
    /// assert_eq!(head.method, Method::POST);
    /// assert_eq!(head.uri, "/app/items?page=2");
    /// assert_eq!(head.version, Version::HTTP_11);
    /// assert_eq!(head.headers["accept"], "text/plain");
    /// assert_eq!(head.extensions.get::<u8>(), Some(&7));
    /// assert_eq!(input.content_length(), Some(9));
    /// assert_eq!(connection.scheme(), "http");
    /// ```
    #[inline]
    pub fn into_parts(self) -> (http::request::Parts, Input, ConnectionInfo) {
        let (mut head, ()) = Request::new(()).into_parts();
        head.method = self.method;
        head.uri = self.uri;
        head.version = self.version;
        // The default head's header map owns nothing (`HeaderMap::new` does not allocate):
        // forgetting it spares every request its drop glue.
        std::mem::forget(std::mem::replace(&mut head.headers, self.headers));
        head.extensions = self.extensions;
        // Where `extension` would find it: only if the extensions have none of their own.
        if let Some(disconnect) = self.disconnect {
            if head.extensions.get::<Disconnect>().is_none() {
                head.extensions.insert(disconnect);
            }
        }
        (head, self.input, self.connection)
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target as parsed; [`request_target`](Environ::request_target) gives it back
    /// as text.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Which of the four target forms the client used.
    ///
    /// ```
    /// use rwgi::environ::TargetForm;
    /// let environ = rwgi_conformance::test_client::TestRequest::get("/x").into_environ();
    /// assert_eq!(environ.target_form(), TargetForm::Origin);
    /// ```
    pub fn target_form(&self) -> TargetForm {
        TargetForm::of(&self.uri)
    }

    /// The request target as the client sent it (REQ-PATH-1): the path and query for origin
    /// form, the whole URI for absolute form, `host:port` for authority form, `*` for asterisk
    /// form. A fragment is never part of a request target and is not kept.
    ///
    /// ```
    /// let environ = rwgi_conformance::test_client::TestRequest::get("/a%20b/?q=%2F").into_environ();
    /// assert_eq!(environ.request_target(), "/a%20b/?q=%2F");
    /// ```
    pub fn request_target(&self) -> Cow<'_, str> {
        match self.target_form() {
            TargetForm::Origin | TargetForm::Asterisk => {
                Cow::Borrowed(self.uri.path_and_query().map_or("", |pq| pq.as_str()))
            }
            TargetForm::Authority => Cow::Borrowed(self.uri.authority().map_or("", |a| a.as_str())),
            TargetForm::Absolute => Cow::Owned(self.uri.to_string()),
        }
    }

    /// The path part of the target, raw: `script_name() + path_info()`.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// Where the app is mounted: the raw path prefix that led to it, empty or starting with
    /// `/` and never ending with one (REQ-PATH-5).
    pub fn script_name(&self) -> &str {
        &self.path()[..self.mount as usize]
    }

    /// The rest of the path, raw, that the app routes on: empty or starting with `/`, or `*`
    /// for an asterisk-form target.
    pub fn path_info(&self) -> &str {
        &self.path()[self.mount as usize..]
    }

    /// The segments of [`path_info`](Environ::path_info), each decoded on its own (REQ-PATH-4).
    ///
    /// ```
    /// let environ = rwgi_conformance::test_client::TestRequest::get("/users/j%2Fdoe/").into_environ();
    /// let decoded: Vec<Vec<u8>> = environ.path_segments().map(|s| s.decode().into_owned()).collect();
    /// assert_eq!(decoded, [b"users".to_vec(), b"j/doe".to_vec(), b"".to_vec()]);
    /// ```
    pub fn path_segments(&self) -> Segments<'_> {
        Segments::new(self.path_info())
    }

    /// The query string, raw, without the `?`; empty when there is none (REQ-ENV-5).
    pub fn query_string(&self) -> &str {
        self.uri.query().unwrap_or("")
    }

    /// The HTTP version of the request.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The request headers, repeated headers kept as separate entries in arrival order.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The request headers, for middleware that adds or removes some before the app sees them.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The request body.
    pub fn input(&self) -> &Input {
        &self.input
    }

    /// The request body, to read from.
    pub fn input_mut(&mut self) -> &mut Input {
        &mut self.input
    }

    /// Takes the request body out, leaving an empty one: for middleware that wraps it.
    pub fn take_input(&mut self) -> Input {
        std::mem::take(&mut self.input)
    }

    /// Puts a (wrapped or replaced) request body back, keeping the framing headers in step
    /// with its length (REQ-INPUT-3, REQ-MW-6).
    ///
    /// When the new body's [`content_length`](Input::content_length) differs from what the
    /// headers declare, they are rewritten: a known length sets `Content-Length` and removes
    /// `Transfer-Encoding`; an unknown one removes `Content-Length` and, for HTTP/1.x, sets
    /// `Transfer-Encoding: chunked`. A wrapper that keeps the length changes no header.
    ///
    /// ```
    /// use rwgi::Input;
    /// use rwgi_conformance::test_client::TestRequest;
    ///
    /// // A middleware that decompresses an upload does not know the new length.
    /// let mut environ = TestRequest::post("/").body("compressed").into_environ();
    /// let upload = environ.take_input();
    /// environ.set_input(upload.map(Ok));
    /// assert!(environ.headers().get("content-length").is_none());
    /// assert_eq!(environ.headers()["transfer-encoding"], "chunked");
    ///
    /// // One that buffered it does.
    /// environ.set_input(Input::from("twelve bytes"));
    /// assert_eq!(environ.headers()["content-length"], "12");
    /// assert!(environ.headers().get("transfer-encoding").is_none());
    /// ```
    pub fn set_input(&mut self, input: Input) {
        let length = input.content_length();
        if length != self.framed_length() {
            let headers = &mut self.headers;
            match length {
                Some(length) => {
                    headers.remove(TRANSFER_ENCODING);
                    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
                }
                None => {
                    headers.remove(CONTENT_LENGTH);
                    if self.version <= Version::HTTP_11 {
                        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
                    }
                }
            }
        }
        self.input = input;
    }

    /// The body length the framing headers declare: unknown for a transfer coding, the
    /// `Content-Length` when there is one, none without either (REQ-INPUT-3).
    fn framed_length(&self) -> Option<u64> {
        if self.headers.contains_key(TRANSFER_ENCODING) {
            return None;
        }
        match crate::response::content_length(&self.headers) {
            Ok(declared) => Some(declared.unwrap_or(0)),
            Err(_) => None,
        }
    }

    /// Typed values the server or middleware attached: the place for server-specific
    /// additions and extensions (REQ-EXT-1).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// See [`extensions`](Environ::extensions).
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// The value of type `T` the server offers this request: from the environ's extensions,
    /// else the request's own [`Disconnect`] when `T` is that
    /// ([`offer_disconnect`](Environ::offer_disconnect)), else from what the server offers the
    /// whole connection ([`ConnectionInfo::offer`]). How an app looks for an extension (spec
    /// §14): absent means the server does not support it.
    ///
    /// ```
    /// use rwgi::interim::FlushHead;
    /// use rwgi_conformance::test_client::TestRequest;
    ///
    /// let mut environ = TestRequest::get("/").into_environ();
    /// assert!(environ.extension::<FlushHead>().is_none());
    /// environ.extensions_mut().insert(FlushHead::new());
    /// assert!(environ.extension::<FlushHead>().is_some());
    /// ```
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.extensions
            .get::<T>()
            .or_else(|| {
                let disconnect: &dyn Any = self.disconnect.as_ref()?;
                disconnect.downcast_ref::<T>()
            })
            .or_else(|| self.connection.offers().get::<T>())
    }

    /// Offers this request a [`Disconnect`] of its own, which
    /// [`extension`](Environ::extension) finds before one the connection offers: for a server
    /// that carries several requests on one connection at once (HTTP/2), where a request's
    /// stream can be reset while the connection stays (REQ-DISC-1). Unlike an insert into the
    /// [`extensions`](Environ::extensions), it allocates nothing.
    ///
    /// ```
    /// use rwgi::disconnect::{Departure, Disconnect};
    /// use rwgi::environ::ConnectionInfo;
    /// use rwgi_conformance::test_client::TestRequest;
    ///
    /// let connection = Departure::new();
    /// let stream = Departure::new();
    /// let mut environ = TestRequest::get("/")
    ///     .connection(ConnectionInfo::default().offer(connection.disconnect()))
    ///     .into_environ();
    /// environ.offer_disconnect(stream.disconnect());
    /// stream.client_gone();
    /// let found = environ.extension::<Disconnect>().unwrap();
    /// assert!(found.is_gone(), "the stream's handle, not the connection's");
    /// ```
    pub fn offer_disconnect(&mut self, disconnect: Disconnect) {
        self.disconnect = Some(disconnect);
    }

    /// The URL scheme of the request: `http` or `https`.
    pub fn url_scheme(&self) -> &Scheme {
        self.uri.scheme().unwrap_or(self.connection.scheme())
    }

    /// The host the client asked for, without the port: from an absolute-form target, else the
    /// `Host` header, else the address the server accepted the connection on, else
    /// `localhost` (REQ-ENV-4). An IPv6 address keeps its brackets.
    ///
    /// ```
    /// let environ = rwgi_conformance::test_client::TestRequest::get("/").header("host", "example.com:8080").into_environ();
    /// assert_eq!(environ.server_name(), "example.com");
    /// assert_eq!(environ.server_port(), 8080);
    /// ```
    pub fn server_name(&self) -> Cow<'_, str> {
        if let Some((host, _)) = self.authority() {
            return Cow::Borrowed(host);
        }
        match self.connection.inner.local_addr {
            Some(SocketAddr::V4(addr)) => Cow::Owned(addr.ip().to_string()),
            Some(SocketAddr::V6(addr)) => Cow::Owned(format!("[{}]", addr.ip())),
            None => Cow::Borrowed("localhost"),
        }
    }

    /// The port the client asked for: from the target or `Host` header, else the default port
    /// of the scheme when a host was named, else the local port (REQ-ENV-4).
    pub fn server_port(&self) -> u16 {
        match (self.authority(), self.connection.inner.local_addr) {
            (Some((_, Some(port))), _) => port,
            (None, Some(local)) => local.port(),
            _ if *self.url_scheme() == Scheme::HTTPS => 443,
            _ => 80,
        }
    }

    /// The host and port named by the request: the absolute-form authority overrides `Host`
    /// (RFC 9112 §3.2.2).
    fn authority(&self) -> Option<(&str, Option<u16>)> {
        if let Some(authority) = self.uri.authority() {
            return Some((authority.host(), authority.port_u16()));
        }
        let value = self.headers.get(HOST)?.as_bytes();
        let (end, port) = split_host(value).filter(|&(end, _)| end > 0)?;
        // A valid host is ASCII, so this never fails.
        let host = std::str::from_utf8(&value[..end]).ok()?;
        Some((host, port))
    }

    /// The client's address, when the server knows it.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.connection.inner.peer_addr
    }

    /// The address the server accepted the connection on, when it has one (a Unix socket has
    /// none).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.connection.inner.local_addr
    }

    /// The connection facts the server built the environ with, for bridges and middleware
    /// that hand the request on to something that builds an environ of its own.
    ///
    /// ```
    /// use rwgi::environ::ConnectionInfo;
    ///
    /// let environ = rwgi_conformance::test_client::TestRequest::get("/").into_environ();
    /// let connection: &ConnectionInfo = environ.connection();
    /// assert_eq!(connection.scheme(), environ.url_scheme());
    /// ```
    pub fn connection(&self) -> &ConnectionInfo {
        &self.connection
    }

    /// What the app may assume about the server.
    pub fn server(&self) -> &ServerInfo {
        &self.connection.inner.server
    }

    /// The CGI variables of this request, exactly as a PEP 3333 server sets them.
    ///
    /// See [`CgiVariables`] for the rules.
    pub fn cgi_variables(&self) -> CgiVariables {
        CgiVariables::from_environ(self)
    }

    /// Mounts the app at `prefix`: moves it from the start of `path_info` to the end of
    /// `script_name` (REQ-PATH-6). Servers use it for a configured root path; URL-map
    /// middleware for the prefix they dispatched on.
    ///
    /// The prefix is compared with the raw path byte for byte and must end at a segment
    /// boundary: `/app` mounts `/app` and `/app/x`, not `/apple` and not `/%61pp`.
    ///
    /// # Errors
    ///
    /// [`MountError`] when `prefix` is not empty and does not start with `/`, ends with `/`,
    /// or is not a leading run of whole segments of `path_info`. The environ is unchanged.
    ///
    /// ```
    /// let mut environ = rwgi_conformance::test_client::TestRequest::get("/api/v1/users").into_environ();
    /// environ.mount("/api").unwrap();
    /// environ.mount("/v1").unwrap();
    /// assert_eq!(environ.script_name(), "/api/v1");
    /// assert_eq!(environ.path_info(), "/users");
    /// assert!(environ.mount("/user").is_err());
    /// ```
    pub fn mount(&mut self, prefix: &str) -> Result<(), MountError> {
        if prefix.is_empty() {
            return Ok(());
        }
        check_prefix(prefix)?;
        let rest = self
            .path_info()
            .strip_prefix(prefix)
            .ok_or(MountError::NotLeading)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Err(MountError::NotLeading);
        }
        self.mount = self.mount_with(prefix)?;
        Ok(())
    }

    /// Puts back in front of the path a prefix that a proxy removed before passing the request
    /// on (nginx's `location /app/ { proxy_pass http://app/; }`, announced in
    /// `X-Forwarded-Prefix`), as part of `script_name`: the path becomes `prefix` followed by
    /// the path received, the request target the one the client sent, and REQ-PATH-2 holds.
    ///
    /// # Errors
    ///
    /// [`MountError`] when `prefix` is not empty and does not start with `/`, ends with `/`, is
    /// not a valid path, or the request has no path (an `*` or authority-form target). The
    /// environ is then unchanged.
    ///
    /// ```
    /// let mut environ = rwgi_conformance::test_client::TestRequest::get("/users?page=2").into_environ();
    /// environ.restore_prefix("/app").unwrap();
    /// assert_eq!(environ.script_name(), "/app");
    /// assert_eq!(environ.path_info(), "/users");
    /// assert_eq!(environ.request_target(), "/app/users?page=2");
    /// assert!(environ.restore_prefix("/bad/").is_err());
    /// ```
    pub fn restore_prefix(&mut self, prefix: &str) -> Result<(), MountError> {
        if prefix.is_empty() {
            return Ok(());
        }
        check_prefix(prefix)?;
        if matches!(
            TargetForm::of(&self.uri),
            TargetForm::Asterisk | TargetForm::Authority
        ) {
            return Err(MountError::NoPath);
        }
        let mount = self.mount_with(prefix)?;
        let target = match self.uri.path_and_query() {
            Some(path_and_query) => format!("{prefix}{path_and_query}"),
            None => prefix.to_owned(),
        };
        let mut parts = self.uri.clone().into_parts();
        parts.path_and_query = Some(target.try_into().map_err(|_| MountError::InvalidPrefix)?);
        let uri = Uri::from_parts(parts).map_err(|_| MountError::InvalidPrefix)?;
        // A `?` or `#` in the prefix would end the path inside it: the prefix must come out
        // as exactly the path's first bytes, the old path right after it.
        let expected = prefix.len() + self.path().len();
        if uri.path().len() != expected || !uri.path().starts_with(prefix) {
            return Err(MountError::InvalidPrefix);
        }
        self.uri = uri;
        self.mount = mount;
        Ok(())
    }

    /// The mount with `prefix` added. No `Uri` holds a path of 4 GiB, so the error is for
    /// completeness: a prefix is never counted short.
    fn mount_with(&self, prefix: &str) -> Result<u32, MountError> {
        u32::try_from(prefix.len())
            .ok()
            .and_then(|len| self.mount.checked_add(len))
            .ok_or(MountError::InvalidPrefix)
    }

    /// Replaces the connection facts, for middleware that knows better than the socket: a
    /// proxy-header middleware that learned the client's address and scheme from a trusted
    /// proxy in front.
    ///
    /// ```
    /// use rwgi::http::uri::Scheme;
    ///
    /// let mut environ = rwgi_conformance::test_client::TestRequest::get("/").into_environ();
    /// let client = "203.0.113.7:0".parse().unwrap();
    /// let facts = environ.connection().clone().peer_addr(client).with_scheme(Scheme::HTTPS);
    /// environ.set_connection(facts);
    /// assert_eq!(environ.remote_addr(), Some(client));
    /// assert_eq!(environ.url_scheme(), &Scheme::HTTPS);
    /// ```
    pub fn set_connection(&mut self, connection: ConnectionInfo) {
        self.connection = connection;
    }
}

/// REQ-PATH-5 for a non-empty prefix.
fn check_prefix(prefix: &str) -> Result<(), MountError> {
    if prefix.starts_with('/') && !prefix.ends_with('/') {
        Ok(())
    } else {
        Err(MountError::InvalidPrefix)
    }
}

impl fmt::Debug for Environ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environ")
            .field("method", &self.method)
            .field("target", &self.request_target())
            .field("script_name", &self.script_name())
            .field("version", &self.version)
            .field("headers", &self.headers)
            .field("input", &self.input)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

/// The bytes allowed in a host name: RFC 3986 `reg-name` (unreserved, sub-delims and the `%`
/// of percent-encoding), as a table because this runs on every request.
const REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        i += 1;
    }
    table
};

/// The bytes allowed inside the brackets of an IP literal (RFC 3986 §3.2.2, IPv6 and IPvFuture
/// kept simple: hex digits, `:` and `.`).
const IP_LITERAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_hexdigit() || b == b':' || b == b'.';
        i += 1;
    }
    table
};

/// Checks `host[:port]` (RFC 3986 §3.2.2, §3.2.3) in one pass over the bytes, as this runs on
/// every request, and returns where the host ends and the port, if any. An empty port counts as
/// none.
#[inline(always)]
pub(crate) fn split_host(value: &[u8]) -> Option<(usize, Option<u16>)> {
    let host_end = if value.first() == Some(&b'[') {
        let end = value.iter().position(|&b| b == b']')? + 1;
        let literal = &value[1..end - 1];
        if literal.is_empty() || !literal.iter().all(|&b| IP_LITERAL[usize::from(b)]) {
            return None;
        }
        end
    } else {
        // One loop rather than a search for `:` and a second pass: measured cheaper.
        let mut end = 0;
        while end < value.len() && REG_NAME[usize::from(value[end])] {
            end += 1;
        }
        end
    };
    let port = match value.get(host_end) {
        None => None,
        Some(b':') => parse_port(&value[host_end + 1..])?,
        Some(_) => return None,
    };
    Some((host_end, port))
}

/// The digits after `host:`: `Some(None)` when there are none, `None` when they are not a port.
fn parse_port(digits: &[u8]) -> Option<Option<u16>> {
    if digits.len() > 5 {
        return None;
    }
    let mut port: u32 = 0;
    for &digit in digits {
        let value = digit.wrapping_sub(b'0');
        if value > 9 {
            return None;
        }
        port = port * 10 + u32::from(value);
    }
    if digits.is_empty() {
        return Some(None);
    }
    u16::try_from(port).ok().map(Some)
}

/// The target and `Host` rules every request must pass before it becomes an environ (REQ-ENV-3,
/// REQ-ENV-6); the `Host` of a target with an authority is checked where it is replaced
/// ([`take_host_from`]). Kept out of line so that building the environ itself inlines into the
/// server.
#[inline(never)]
fn check_target(parts: &http::request::Parts) -> Result<(), TargetError> {
    check_host(&parts.headers, &parts.uri, parts.version)?;
    check_framing(&parts.headers)?;
    match (TargetForm::of(&parts.uri), parts.method == Method::CONNECT) {
        (TargetForm::Asterisk, _) if parts.method != Method::OPTIONS => {
            return Err(TargetError::new(TargetErrorKind::AsteriskWithoutOptions))
        }
        (TargetForm::Authority, false) => {
            return Err(TargetError::new(TargetErrorKind::AuthorityWithoutConnect))
        }
        (TargetForm::Origin | TargetForm::Absolute | TargetForm::Asterisk, true) => {
            return Err(TargetError::new(TargetErrorKind::ConnectWithoutAuthority))
        }
        _ => {}
    }
    Ok(())
}

fn check_host(headers: &HeaderMap, uri: &Uri, version: Version) -> Result<(), TargetError> {
    if uri.authority().is_some() {
        // `take_host_from` checks the `Host` it replaces, in the lookup it makes anyway.
        return Ok(());
    }
    // When no header name repeats, which is the usual request, one lookup settles it; and user
    // agents send `Host` as the first field (RFC 9110 §7.2), where it costs no hashing.
    let (host, repeated) = if headers.keys_len() == headers.len() {
        match headers.iter().next() {
            Some((name, value)) if name == HOST => (Some(value), None),
            _ => (headers.get(HOST), None),
        }
    } else {
        let mut hosts = headers.get_all(HOST).iter();
        (hosts.next(), hosts.next())
    };
    match (host, repeated) {
        (_, Some(_)) => Err(TargetError::new(TargetErrorKind::DuplicateHost)),
        (Some(value), None) => match split_host(value.as_bytes()) {
            Some(_) => Ok(()),
            None => Err(TargetError::new(TargetErrorKind::InvalidHost)),
        },
        (None, None) if version == Version::HTTP_11 => {
            Err(TargetError::new(TargetErrorKind::MissingHost))
        }
        (None, None) => Ok(()),
    }
}

/// REQ-ENV-14: an absolute-form target's authority replaces the `Host` header (RFC 9112
/// §3.2.2 has a server ignore the received one), so every place an app reads the host names
/// the same one. Rare over HTTP/1.1, but HTTP/2 gives every request an authority: the text is
/// taken as it is (without user information, which RFC 9113 §8.3.1 forbids anyway), and a
/// `Host` that already says the same is left alone. A received `Host` is still checked as
/// REQ-ENV-3 has it (RFC 9112 §3.2: repeated or invalid is refused, replaced or not).
fn take_host_from(
    authority: &http::uri::Authority,
    headers: &mut HeaderMap,
    last: &LastHost,
) -> Result<(), TargetError> {
    let text = authority.as_str();
    // One lookup for the checks, the comparison and the insertion.
    let entry = headers.entry(HOST);
    if let Entry::Occupied(received) = &entry {
        let mut values = received.iter();
        let first = values.next().map_or(&[][..], HeaderValue::as_bytes);
        if values.next().is_some() {
            return Err(TargetError::new(TargetErrorKind::DuplicateHost));
        }
        if split_host(first).is_none() {
            return Err(TargetError::new(TargetErrorKind::InvalidHost));
        }
        if first == without_userinfo(text).as_bytes() {
            return Ok(());
        }
    }
    if let Some(value) = last.value(text) {
        match entry {
            Entry::Occupied(mut entry) => {
                entry.insert(value);
            }
            Entry::Vacant(entry) => {
                entry.insert(value);
            }
        }
    }
    Ok(())
}

/// An authority's host and port: its text without the user information RFC 9112 §3.2.2 does
/// not carry into `Host`.
fn without_userinfo(authority: &str) -> &str {
    // Looking for the rare `@` first: a forward byte search costs a fraction of `rsplit_once`'s
    // backward one on a short authority.
    match authority.as_bytes().contains(&b'@') {
        true => authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host),
        false => authority,
    }
}

/// Up to this many field names, scanning them costs less than a hashed lookup.
const FEW_FIELDS: usize = 8;

/// Checks the body's framing (RFC 9112 §6.1, §6.3; REQ-ENV-13): `chunked` is the only transfer
/// coding, applied once and as the last one, and never together with `Content-Length`. Each
/// of these is a way to make a proxy and a server disagree about where a request ends.
fn check_framing(headers: &HeaderMap) -> Result<(), TargetError> {
    // Most requests have no `Transfer-Encoding`: among a few names, a scan rules it out for a
    // fraction of what hashing the name to look it up costs.
    if headers.keys_len() <= FEW_FIELDS && !headers.keys().any(|name| name == TRANSFER_ENCODING) {
        return Ok(());
    }
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter().peekable();
    if codings.peek().is_none() {
        return Ok(());
    }
    let mut chunked = 0;
    for value in codings {
        for coding in value.as_bytes().split(|&b| b == b',') {
            let coding = std::str::from_utf8(coding).map(str::trim);
            if coding.is_ok_and(|coding| coding.eq_ignore_ascii_case("chunked")) {
                chunked += 1;
            } else {
                return Err(TargetError::new(TargetErrorKind::UnsupportedTransferCoding));
            }
        }
    }
    if chunked > 1 {
        return Err(TargetError::new(TargetErrorKind::RepeatedChunked));
    }
    if headers.contains_key(CONTENT_LENGTH) {
        return Err(TargetError::new(TargetErrorKind::LengthWithTransferCoding));
    }
    Ok(())
}

/// Why a request cannot become an [`Environ`]; the server answers [`status`](TargetError::status)
/// (`400 Bad Request`, or `501 Not Implemented` for a transfer coding it does not know) without
/// calling the app (REQ-ENV-2).
///
/// ```
/// use rwgi::environ::{ConnectionInfo, Environ, TargetErrorKind};
/// use rwgi::http::Request;
/// use rwgi::Input;
///
/// let request = Request::get("*").header("host", "h").body(Input::empty()).unwrap();
/// let error = Environ::from_request(request, &ConnectionInfo::default()).unwrap_err();
/// assert_eq!(error.kind(), TargetErrorKind::AsteriskWithoutOptions);
/// assert_eq!(error.requirement(), "REQ-ENV-6");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetError {
    kind: TargetErrorKind,
}

/// The kinds of [`TargetError`].
///
/// ```
/// use rwgi::environ::TargetErrorKind;
/// use rwgi_conformance::test_client::{TestRequest, TestRequestError};
///
/// let error = TestRequest::get("/").header("host", "a").header("host", "b").try_into_environ();
/// let Err(TestRequestError::Target(error)) = error else { panic!("two Host headers are refused") };
/// assert_eq!(error.kind(), TargetErrorKind::DuplicateHost);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetErrorKind {
    /// An HTTP/1.1 request without a `Host` header (RFC 9112 §3.2).
    MissingHost,
    /// More than one `Host` header.
    DuplicateHost,
    /// A `Host` header that is not `host[:port]`.
    InvalidHost,
    /// The `*` target with a method other than `OPTIONS`.
    AsteriskWithoutOptions,
    /// An authority-form target with a method other than `CONNECT`.
    AuthorityWithoutConnect,
    /// `CONNECT` with a target that is not in authority form.
    ConnectWithoutAuthority,
    /// A transfer coding other than `chunked` (RFC 9112 §6.1): `501 Not Implemented`.
    UnsupportedTransferCoding,
    /// `chunked` applied more than once, on one field line or several.
    RepeatedChunked,
    /// `Transfer-Encoding` together with `Content-Length` (RFC 9112 §6.3).
    LengthWithTransferCoding,
}

impl TargetError {
    fn new(kind: TargetErrorKind) -> Self {
        TargetError { kind }
    }

    /// What is wrong.
    pub fn kind(&self) -> TargetErrorKind {
        self.kind
    }

    /// The ID of the requirement in the specification that the request breaks.
    pub fn requirement(&self) -> &'static str {
        match self.kind {
            TargetErrorKind::MissingHost
            | TargetErrorKind::DuplicateHost
            | TargetErrorKind::InvalidHost => "REQ-ENV-3",
            TargetErrorKind::AsteriskWithoutOptions
            | TargetErrorKind::AuthorityWithoutConnect
            | TargetErrorKind::ConnectWithoutAuthority => "REQ-ENV-6",
            TargetErrorKind::UnsupportedTransferCoding
            | TargetErrorKind::RepeatedChunked
            | TargetErrorKind::LengthWithTransferCoding => "REQ-ENV-13",
        }
    }

    /// The status the server answers with: `501 Not Implemented` for a transfer coding it does
    /// not know (RFC 9112 §6.1), `400 Bad Request` for everything else.
    ///
    /// ```
    /// use rwgi::environ::{ConnectionInfo, Environ};
    /// use rwgi::http::{Request, StatusCode};
    /// use rwgi::Input;
    ///
    /// let request = Request::post("/")
    ///     .header("host", "h")
    ///     .header("transfer-encoding", "gzip, chunked")
    ///     .body(Input::empty())
    ///     .unwrap();
    /// let error = Environ::from_request(request, &ConnectionInfo::default()).unwrap_err();
    /// assert_eq!(error.status(), StatusCode::NOT_IMPLEMENTED);
    /// assert_eq!(error.to_string(), "REQ-ENV-13: a transfer coding other than chunked");
    /// ```
    pub fn status(&self) -> http::StatusCode {
        match self.kind {
            TargetErrorKind::UnsupportedTransferCoding => http::StatusCode::NOT_IMPLEMENTED,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TargetErrorKind::MissingHost => "HTTP/1.1 request without a Host header",
            TargetErrorKind::DuplicateHost => "more than one Host header",
            TargetErrorKind::InvalidHost => "Host header is not host[:port]",
            TargetErrorKind::AsteriskWithoutOptions => "the * target is only for OPTIONS",
            TargetErrorKind::AuthorityWithoutConnect => {
                "an authority-form target is only for CONNECT"
            }
            TargetErrorKind::ConnectWithoutAuthority => "CONNECT needs an authority-form target",
            TargetErrorKind::UnsupportedTransferCoding => "a transfer coding other than chunked",
            TargetErrorKind::RepeatedChunked => "the chunked transfer coding applied twice",
            TargetErrorKind::LengthWithTransferCoding => {
                "Transfer-Encoding together with Content-Length"
            }
        };
        write!(f, "{}: {what}", self.requirement())
    }
}

impl std::error::Error for TargetError {}

/// [`Environ::mount`] or [`Environ::restore_prefix`] was given a prefix that is malformed or
/// does not fit the path.
///
/// ```
/// let mut environ = rwgi_conformance::test_client::TestRequest::get("/apple").into_environ();
/// let error = environ.mount("/app").unwrap_err();
/// assert_eq!(error.to_string(), "REQ-PATH-6: the mount prefix is not a leading run of whole path segments");
/// assert_eq!(environ.script_name(), "", "a failed mount changes nothing");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MountError {
    /// The prefix is not empty and does not start with `/`, or ends with `/` (REQ-PATH-5).
    InvalidPrefix,
    /// The prefix is not a leading run of whole segments of `path_info` (REQ-PATH-6).
    NotLeading,
    /// The request has no path to mount: an `*` or authority-form target.
    NoPath,
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MountError::InvalidPrefix => {
                "REQ-PATH-5: a mount prefix must be empty or start with / and not end with /"
            }
            MountError::NotLeading => {
                "REQ-PATH-6: the mount prefix is not a leading run of whole path segments"
            }
            MountError::NoPath => "REQ-PATH-6: an * or authority-form target has no path to mount",
        })
    }
}

impl std::error::Error for MountError {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http::header::HOST;
    use http::request::Builder;
    use http::HeaderValue;

    /// The environ of a bodiless request, on a default connection, with `Host: localhost`
    /// unless the request sets a Host.
    pub(crate) fn try_environ(request: Builder) -> Result<Environ, TargetError> {
        try_environ_on(request, &ConnectionInfo::default())
    }

    pub(crate) fn try_environ_on(
        request: Builder,
        connection: &ConnectionInfo,
    ) -> Result<Environ, TargetError> {
        let mut request = request.body(Input::empty()).expect("a valid test request");
        if !request.headers().contains_key(HOST) {
            let localhost = HeaderValue::from_static("localhost");
            request.headers_mut().insert(HOST, localhost);
        }
        Environ::from_request(request, connection)
    }

    pub(crate) fn environ_of(request: Builder) -> Environ {
        try_environ(request).expect("a mappable test request")
    }

    #[test]
    fn host_syntax() {
        let split = |value: &str| split_host(value.as_bytes());
        assert_eq!(split("example.com"), Some((11, None)));
        assert_eq!(split("example.com:8080"), Some((11, Some(8080))));
        assert_eq!(split("h:"), Some((1, None)));
        assert_eq!(split("h:65535"), Some((1, Some(65535))));
        assert_eq!(split("h:09"), Some((1, Some(9))));
        assert_eq!(split("[::1]:8080"), Some((5, Some(8080))));
        assert_eq!(split("[::1]"), Some((5, None)));
        assert_eq!(split(""), Some((0, None)));
        for bad in [
            "[]", "a b", "h:65536", "h:123456", "h:8a", "[::1]x", "h:80:90", "h/x", "[g]",
        ] {
            assert_eq!(split(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn host_rules_of_rfc_9112() {
        let kind = |request: Builder| try_environ(request).err().map(|e| e.to_string());
        assert_eq!(
            kind(
                http::Request::get("/")
                    .header("host", "a")
                    .header("host", "b")
            )
            .as_deref(),
            Some("REQ-ENV-3: more than one Host header")
        );
        assert_eq!(
            kind(http::Request::get("/").header("host", "a b")).as_deref(),
            Some("REQ-ENV-3: Host header is not host[:port]")
        );
        // Host after another field: looked up rather than found first, same answers.
        let after_accept = || http::Request::get("/").header("accept", "a");
        assert_eq!(kind(after_accept().header("host", "h")), None);
        assert_eq!(
            kind(after_accept().header("host", "a b")).as_deref(),
            Some("REQ-ENV-3: Host header is not host[:port]")
        );
        let without_host = http::Request::get("/")
            .header("accept", "a")
            .body(Input::empty())
            .unwrap();
        let error = Environ::from_request(without_host, &ConnectionInfo::default()).unwrap_err();
        assert_eq!(error.kind(), TargetErrorKind::MissingHost);
        // With another header repeated, the Host check takes its slower path: same answers.
        let repeated = || {
            http::Request::get("/")
                .header("accept", "a")
                .header("accept", "b")
        };
        assert_eq!(kind(repeated().header("host", "h")), None);
        assert_eq!(
            kind(repeated().header("host", "h").header("host", "h")).as_deref(),
            Some("REQ-ENV-3: more than one Host header")
        );
        assert_eq!(
            kind(repeated().header("host", "a b")).as_deref(),
            Some("REQ-ENV-3: Host header is not host[:port]")
        );
        assert_eq!(
            kind(http::Request::get("http://h/").header("host", "h")),
            None
        );
        assert_eq!(
            kind(http::Request::get("/").version(Version::HTTP_10)),
            None
        );
    }

    #[test]
    fn framing_that_can_smuggle_a_request_is_refused() {
        let kind = |request: Builder| try_environ(request).err().map(|e| (e.kind(), e.status()));
        let post = || http::Request::post("/");
        assert_eq!(kind(post().header("transfer-encoding", "chunked")), None);
        assert_eq!(kind(post().header("transfer-encoding", "Chunked ")), None);
        assert_eq!(kind(post().header("content-length", "3")), None);
        let not_implemented = Some((
            TargetErrorKind::UnsupportedTransferCoding,
            http::StatusCode::NOT_IMPLEMENTED,
        ));
        assert_eq!(
            kind(post().header("transfer-encoding", "gzip, chunked")),
            not_implemented
        );
        assert_eq!(
            kind(post().header("transfer-encoding", "gzip")),
            not_implemented
        );
        assert_eq!(
            kind(post().header("transfer-encoding", "")),
            not_implemented
        );
        let repeated = Some((
            TargetErrorKind::RepeatedChunked,
            http::StatusCode::BAD_REQUEST,
        ));
        assert_eq!(
            kind(post().header("transfer-encoding", "chunked, chunked")),
            repeated
        );
        let twice = post()
            .header("transfer-encoding", "chunked")
            .header("transfer-encoding", "chunked");
        assert_eq!(kind(twice), repeated);
        let both = post()
            .header("content-length", "5")
            .header("transfer-encoding", "chunked");
        assert_eq!(
            kind(both),
            Some((
                TargetErrorKind::LengthWithTransferCoding,
                http::StatusCode::BAD_REQUEST
            ))
        );
        // Past a few field names, the check looks the coding up instead of scanning for it.
        let many = |request: Builder| {
            (0..FEW_FIELDS).fold(request, |request, n| request.header(format!("x-{n}"), "1"))
        };
        assert_eq!(
            kind(many(post().header("transfer-encoding", "chunked"))),
            None
        );
        assert_eq!(
            kind(many(post().header("transfer-encoding", "gzip"))),
            not_implemented
        );
        let both =
            many(post().header("content-length", "5")).header("transfer-encoding", "chunked");
        assert_eq!(
            kind(both).map(|(kind, _)| kind),
            Some(TargetErrorKind::LengthWithTransferCoding)
        );
    }

    #[test]
    fn connection_facts_can_be_replaced_and_read_back() {
        let local: SocketAddr = "192.0.2.1:8443".parse().unwrap();
        let connection = ConnectionInfo::new(Scheme::HTTP).local_addr(local);
        let mut environ = try_environ_on(http::Request::get("/x"), &connection).unwrap();
        assert_eq!(environ.local_addr(), Some(local));
        assert_eq!(environ.connection().scheme(), &Scheme::HTTP);
        assert_eq!(environ.uri().path(), "/x");
        let https = environ.connection().clone().with_scheme(Scheme::HTTPS);
        environ.set_connection(https);
        assert_eq!(environ.url_scheme(), &Scheme::HTTPS);
        assert_eq!(environ.connection().scheme(), &Scheme::HTTPS);
        environ.extensions_mut().insert(7u8);
        assert_eq!(environ.extensions().get::<u8>(), Some(&7));
        let shown = format!("{environ:?}");
        assert!(
            shown.starts_with("Environ {") && shown.contains("/x"),
            "{shown}"
        );
    }

    #[test]
    fn an_environ_taken_apart_gives_back_what_built_it() {
        let peer: SocketAddr = "192.0.2.7:50000".parse().unwrap();
        let connection = ConnectionInfo::new(Scheme::HTTPS)
            .peer_addr(peer)
            .offer(2u16);
        let request = Request::put("/app/items/1?x=y")
            .version(Version::HTTP_10)
            .header("host", "example.com")
            .header("accept", "a")
            .header("accept", "b")
            .extension(3u8)
            .body(Input::from("abc"))
            .unwrap();
        let mut environ = Environ::from_request(request, &connection).unwrap();
        environ.mount("/app").unwrap();
        let (head, input, moved) = environ.into_parts();
        assert_eq!(head.method, Method::PUT);
        assert_eq!(
            head.uri, "/app/items/1?x=y",
            "the whole target, not path_info"
        );
        assert_eq!(head.version, Version::HTTP_10);
        assert_eq!(head.headers["host"], "example.com");
        let accept: Vec<_> = head.headers.get_all("accept").iter().collect();
        assert_eq!(accept, ["a", "b"]);
        assert_eq!(head.headers.len(), 3);
        assert_eq!(head.extensions.get::<u8>(), Some(&3));
        assert_eq!(input.content_length(), Some(3));
        assert!(
            Arc::ptr_eq(&moved.inner, &connection.inner),
            "moved, not copied"
        );
        let again = Environ::from_parts(head, input, &moved).unwrap();
        assert_eq!(again.path_info(), "/app/items/1");
        assert_eq!(again.remote_addr(), Some(peer));
        assert_eq!(again.extension::<u16>(), Some(&2));
    }

    #[test]
    fn the_requests_own_extension_comes_before_the_connections_offer() {
        let connection = ConnectionInfo::default().offer(1u8).offer(2u16);
        let mut environ = try_environ_on(Request::get("/").header("host", "h"), &connection)
            .expect("a valid request");
        environ.extensions_mut().insert(3u8);
        assert_eq!(environ.extension::<u8>(), Some(&3));
        assert_eq!(environ.extension::<u16>(), Some(&2));
        assert_eq!(environ.extension::<u32>(), None);
        let withdrawn = connection.withdraw::<u16>();
        assert!(withdrawn.offers().get::<u16>().is_none());
        assert_eq!(withdrawn.offers().get::<u8>(), Some(&1));
    }

    #[test]
    fn the_requests_own_disconnect_comes_between_its_extensions_and_the_connections() {
        use crate::disconnect::Departure;

        let (connection, own) = (Departure::new(), Departure::new());
        let on = ConnectionInfo::default().offer(connection.disconnect());
        let mut environ =
            try_environ_on(Request::get("/").header("host", "h"), &on).expect("a valid request");
        let found = |environ: &Environ, departure: &Departure| {
            departure.client_gone();
            environ.extension::<Disconnect>().unwrap().is_gone()
        };
        environ.offer_disconnect(own.disconnect());
        // Other types are not answered by the request's disconnect.
        assert_eq!(environ.extension::<u8>(), None);
        assert!(
            !found(&environ, &connection),
            "the request's own, not the connection's"
        );
        assert!(found(&environ, &own));
        let fresh = Departure::new();
        environ.extensions_mut().insert(fresh.disconnect());
        assert!(
            !environ.extension::<Disconnect>().unwrap().is_gone(),
            "the extensions' first"
        );
        // Taken apart, the offered one travels in the head's extensions unless one is there.
        let (head, _, _) = environ.into_parts();
        assert!(!head.extensions.get::<Disconnect>().unwrap().is_gone());
        let other = Departure::new();
        let on = ConnectionInfo::default().offer(other.disconnect());
        let mut environ =
            try_environ_on(Request::get("/").header("host", "h"), &on).expect("a valid request");
        let own = Departure::new();
        environ.offer_disconnect(own.disconnect());
        let (head, input, connection_info) = environ.into_parts();
        let again = Environ::from_parts(head, input, &connection_info).expect("the same request");
        own.client_gone();
        assert!(again.extension::<Disconnect>().unwrap().is_gone());
    }

    #[test]
    fn server_info_names_itself_and_its_spec_version() {
        let info = ServerInfo::named(String::from("built/2"));
        assert_eq!(info.software(), "built/2");
        assert_eq!(info.spec_version(), crate::SPEC_VERSION);
        assert_ne!(info.spec_version(), (0, 0));
    }

    #[test]
    fn an_https_host_without_a_port_is_on_443() {
        let connection = ConnectionInfo::new(Scheme::HTTPS);
        let environ = try_environ_on(
            http::Request::get("/").header("host", "example.com"),
            &connection,
        )
        .unwrap();
        assert_eq!(environ.server_port(), 443);
    }

    #[test]
    fn set_input_frames_an_unknown_length_by_version() {
        let unknown = || Input::from("abc").map(Ok);
        let mut http11 = environ_of(http::Request::post("/").header("content-length", "3"));
        http11.set_input(unknown());
        assert_eq!(http11.headers()["transfer-encoding"], "chunked");
        assert!(http11.headers().get("content-length").is_none());
        let mut http2 = environ_of(
            http::Request::post("/")
                .version(Version::HTTP_2)
                .header("content-length", "3"),
        );
        http2.set_input(unknown());
        assert!(
            http2.headers().get("transfer-encoding").is_none(),
            "no TE in HTTP/2"
        );
        assert!(http2.headers().get("content-length").is_none());
        // The same length changes no header.
        let mut same = environ_of(http::Request::post("/").header("content-length", "3"));
        same.set_input(Input::from("xyz"));
        assert_eq!(same.headers()["content-length"], "3");
        assert!(same.headers().get("transfer-encoding").is_none());
        // No framing headers at all means no body: a body of one byte gets its length.
        let mut bodiless = environ_of(http::Request::post("/"));
        bodiless.set_input(Input::from("z"));
        assert_eq!(bodiless.headers()["content-length"], "1");
    }

    #[test]
    fn an_absolute_form_target_names_the_host_everywhere() {
        let environ = environ_of(
            http::Request::get("http://user@target.example:8080/a").header("host", "other.example"),
        );
        assert_eq!(environ.headers()["host"], "target.example:8080");
        assert_eq!(environ.headers().get_all(HOST).iter().count(), 1);
        assert_eq!(
            environ.cgi_variables().get("HTTP_HOST"),
            Some("target.example:8080")
        );
        assert_eq!(environ.server_name(), "target.example");
        let origin = environ_of(http::Request::get("/a").header("host", "other.example"));
        assert_eq!(origin.headers()["host"], "other.example");
        // HTTP/2 names the authority on every request, usually with no `Host` field.
        let h2 = environ_of(http::Request::get("http://[::1]:8443/a").version(Version::HTTP_2));
        assert_eq!(h2.headers()["host"], "[::1]:8443");
        let same = environ_of(http::Request::get("http://h.example/a").header("host", "h.example"));
        assert_eq!(same.headers().get_all(HOST).iter().count(), 1);
        assert_eq!(same.headers()["host"], "h.example");
    }

    #[test]
    fn each_request_on_a_connection_gets_its_own_authority_as_host() {
        // The connection keeps the last `Host` it made; a request naming another authority
        // must not get it.
        let connection = ConnectionInfo::default();
        let host_of = |target: &str| {
            let request = http::Request::get(target).version(Version::HTTP_2);
            try_environ_on(request, &connection)
                .expect("a valid request")
                .headers()[HOST]
                .clone()
        };
        assert_eq!(host_of("http://a.example/1"), "a.example");
        assert_eq!(host_of("http://a.example/2"), "a.example");
        assert_eq!(host_of("http://b.example:8080/3"), "b.example:8080");
        assert_eq!(host_of("http://a.example/4"), "a.example");
        // User information is never part of the `Host`, kept or not.
        assert_eq!(host_of("http://user@a.example/5"), "a.example");
        assert_eq!(host_of("http://user@c.example/6"), "c.example");
        assert_eq!(host_of("http://c.example/7"), "c.example");
        assert_eq!(host_of("http://user@c.example/8"), "c.example");
        // A connection made from this one is another connection, and starts afresh.
        let other = connection.clone().peer_addr("127.0.0.1:1".parse().unwrap());
        assert!(other.inner.host.0.lock().unwrap().is_none());
        // While another request holds the value, one is made without waiting for it.
        let held = connection.inner.host.0.lock().unwrap();
        let fresh = host_of("http://d.example/9");
        assert_eq!(fresh, "d.example");
        assert_eq!(
            held.as_ref().map(HeaderValue::as_bytes),
            Some(&b"c.example"[..])
        );
    }

    #[test]
    fn server_name_and_port_fall_back_in_order() {
        let environ = environ_of(
            http::Request::get("http://absolute.example:81/x").header("host", "header.example:82"),
        );
        assert_eq!(
            (environ.server_name().as_ref(), environ.server_port()),
            ("absolute.example", 81)
        );
        let environ = environ_of(http::Request::get("/").header("host", "[::1]"));
        assert_eq!(
            (environ.server_name().as_ref(), environ.server_port()),
            ("[::1]", 80)
        );
        let environ = try_environ_on(
            http::Request::get("/")
                .version(Version::HTTP_10)
                .header("host", ""),
            &ConnectionInfo::new(Scheme::HTTPS).local_addr("[::1]:8443".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(
            (environ.server_name().as_ref(), environ.server_port()),
            ("[::1]", 8443)
        );
        assert_eq!(environ.url_scheme(), &Scheme::HTTPS);
    }

    #[test]
    fn target_forms_and_methods() {
        let environ = environ_of(http::Request::options("*"));
        assert_eq!(environ.target_form(), TargetForm::Asterisk);
        assert_eq!((environ.script_name(), environ.path_info()), ("", "*"));
        let environ = environ_of(http::Request::connect("example.com:443"));
        assert_eq!(environ.target_form(), TargetForm::Authority);
        assert_eq!(environ.request_target(), "example.com:443");
        assert_eq!(environ.path_info(), "");
        let error = try_environ(http::Request::get("example.com:443")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "REQ-ENV-6: an authority-form target is only for CONNECT"
        );
        let error = try_environ(http::Request::connect("/x")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "REQ-ENV-6: CONNECT needs an authority-form target"
        );
    }

    #[test]
    fn mounting_keeps_the_path_whole() {
        let mut environ = environ_of(http::Request::get("/app/x%2Fy/"));
        assert_eq!(
            environ.mount("app").unwrap_err().to_string(),
            "REQ-PATH-5: a mount prefix must be empty or start with / and not end with /"
        );
        assert!(environ.mount("/app/").is_err());
        assert!(environ.mount("/ap").is_err());
        assert!(environ.mount("/%61pp").is_err());
        environ.mount("/app").unwrap();
        environ.mount("").unwrap();
        assert_eq!(
            format!("{}{}", environ.script_name(), environ.path_info()),
            environ.path()
        );
        assert_eq!(environ.path_info(), "/x%2Fy/");
    }

    #[test]
    fn a_restored_prefix_must_be_path_only() {
        // Found by fuzzing the proxy headers: a `?` in the prefix moved the rest into the query.
        for bad in ["/a?b=cdefghijklmnop", "/a#frag", "/a/?x"] {
            let mut environ = environ_of(http::Request::get("/x?q=1"));
            assert!(environ.restore_prefix(bad).is_err(), "{bad}");
            assert_eq!((environ.script_name(), environ.path_info()), ("", "/x"));
            assert_eq!(environ.query_string(), "q=1");
        }
        let mut environ = environ_of(http::Request::get("/x?q=1"));
        environ.restore_prefix("/app%20one").unwrap();
        assert_eq!(
            (environ.script_name(), environ.path_info()),
            ("/app%20one", "/x")
        );
        assert_eq!(environ.query_string(), "q=1");
    }

    #[test]
    fn mounting_reaches_the_longest_target_http_accepts() {
        let longest = format!("/{}/b", "a".repeat(65_534 - 3));
        assert!(http::Uri::try_from(format!("{longest}x")).is_err());
        let mut environ = environ_of(http::Request::get(&longest));
        let prefix = &longest[..longest.len() - 2];
        environ.mount(prefix).unwrap();
        assert_eq!(environ.script_name(), prefix);
        assert_eq!(environ.path_info(), "/b");
    }

    #[test]
    fn environ_copies_in_one_short_step() {
        // Moved several times per request; above 256 bytes each move costs about twice as
        // many instructions (spec §17).
        assert!(std::mem::size_of::<Environ>() <= 256);
    }
}
