//! What an app returns: [`Response`], and the rules its head must follow.
//!
//! A response is a status, headers, typed extensions and a [`Body`]. Only the `start_response`
//! callback makes one ([`Started::body`](crate::Started::body),
//! [`StartResponse::respond`](crate::StartResponse::respond)); it converts losslessly into an
//! `http::Response` for servers and bridges.
//!
//! [`check_head`] holds the rules a status and headers must follow before a server may send
//! them (REQ-RESP-*). Servers call it on every response and answer `500` instead of sending a
//! head that breaks one (REQ-SRV-5); the lint middleware calls the same function.

use http::header::{self, HeaderName, CONTENT_LENGTH};
use http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode};

use crate::body::Body;
use crate::upgrade::Switching;
use crate::violation::Violation;

/// An app's answer: status, headers, extensions and body.
///
/// ```
/// use rwgi::body::Full;
/// use rwgi::http::{HeaderMap, StatusCode};
/// use rwgi::StartResponse;
///
/// let response = StartResponse::new().start(StatusCode::OK, HeaderMap::new()).body(Full::new("hi"));
/// let (status, headers, body) = response.into_parts();
/// assert_eq!(status, StatusCode::OK);
/// assert!(headers.is_empty());
/// ```
#[derive(Debug)]
pub struct Response<B> {
    status: StatusCode,
    headers: HeaderMap,
    extensions: Extensions,
    body: B,
}

impl<B: Body> Response<B> {
    pub(crate) fn new(
        status: StatusCode,
        headers: HeaderMap,
        extensions: Extensions,
        body: B,
    ) -> Self {
        Response {
            status,
            headers,
            extensions,
            body,
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Changes the status, for middleware.
    ///
    /// ```
    /// use rwgi::body::Empty;
    /// use rwgi::http::{HeaderMap, StatusCode};
    /// use rwgi::StartResponse;
    ///
    /// let mut response = StartResponse::new().start(StatusCode::OK, HeaderMap::new()).body(Empty);
    /// response.set_status(StatusCode::ACCEPTED);
    /// assert_eq!(response.status(), StatusCode::ACCEPTED);
    /// ```
    pub fn set_status(&mut self, status: StatusCode) {
        self.status = status;
    }

    /// Typed values that travel outward with the response: from the server's callback, the
    /// app and the middleware in between, to the middleware outside and the server (REQ-EXT-2).
    ///
    /// ```
    /// use rwgi::body::Empty;
    /// use rwgi::http::{HeaderMap, StatusCode};
    /// use rwgi::StartResponse;
    ///
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct Route(&'static str);
    ///
    /// let mut response = StartResponse::new().start(StatusCode::OK, HeaderMap::new()).body(Empty);
    /// response.extensions_mut().insert(Route("/users/{id}"));
    /// assert_eq!(response.extensions().get(), Some(&Route("/users/{id}")));
    /// ```
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The extensions, mutably.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, for middleware that adds or removes some. Nothing has been sent yet: the
    /// server sends the head only when it has the first body chunk (REQ-SRV-4).
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &B {
        &self.body
    }

    /// The body, mutably.
    pub fn body_mut(&mut self) -> &mut B {
        &mut self.body
    }

    /// Replaces the body with `f(body)`, keeping status and headers: for middleware that wraps
    /// the body stream.
    ///
    /// A middleware that changes the number of bytes must also fix `Content-Length`
    /// (REQ-MW-3).
    ///
    /// ```
    /// use rwgi::body::{Body, BoxBody, Full};
    /// use rwgi::http::{HeaderMap, StatusCode};
    /// use rwgi::StartResponse;
    ///
    /// let response = StartResponse::new().start(StatusCode::OK, HeaderMap::new()).body(Full::new("x"));
    /// let boxed = response.map_body(BoxBody::new);
    /// assert_eq!(boxed.body().content_length(), Some(1));
    /// ```
    pub fn map_body<C: Body>(self, f: impl FnOnce(B) -> C) -> Response<C> {
        Response::new(self.status, self.headers, self.extensions, f(self.body))
    }

    /// Splits the response into status, headers and body, dropping the extensions; see
    /// [`into_http`](Response::into_http) to keep them.
    pub fn into_parts(self) -> (StatusCode, HeaderMap, B) {
        (self.status, self.headers, self.body)
    }

    /// All four parts, for the server step that takes the answer apart.
    pub(crate) fn into_all(self) -> (StatusCode, HeaderMap, Extensions, B) {
        (self.status, self.headers, self.extensions, self.body)
    }

    /// The same response as an `http::Response`: status, headers, extensions and body, with
    /// the default version (the server chooses the one it answers with).
    ///
    /// ```
    /// use rwgi::body::Full;
    /// use rwgi::http::{HeaderMap, StatusCode};
    /// use rwgi::StartResponse;
    ///
    /// let mut response = StartResponse::new().start(StatusCode::OK, HeaderMap::new()).body(Full::new("hi"));
    /// response.extensions_mut().insert(42u32);
    /// let http_response = response.into_http();
    /// assert_eq!(http_response.status(), StatusCode::OK);
    /// assert_eq!(http_response.extensions().get::<u32>(), Some(&42));
    /// ```
    pub fn into_http(self) -> http::Response<B> {
        http_response(self.status, self.headers, self.extensions, self.body)
    }

    /// Checks the status and headers against the rules for an answer to a `method` request:
    /// see [`check_head`].
    ///
    /// # Errors
    ///
    /// The first rule broken.
    ///
    /// Unlike [`check_head`], it sees the response's extensions, so it lets through the `101`
    /// that [`Upgrade::accept`](crate::upgrade::Upgrade::accept) makes (REQ-UPGRADE-2).
    pub fn check(&self, method: &Method) -> Result<(), Violation> {
        check_head_declared(
            method == Method::HEAD,
            self.status,
            &self.headers,
            &self.extensions,
            self.body.content_length(),
        )
        .map(|_| ())
    }
}

impl<B: Body> From<Response<B>> for http::Response<B> {
    fn from(response: Response<B>) -> Self {
        response.into_http()
    }
}

/// An `http::Response` of these parts, with the default version.
pub(crate) fn http_response<B>(
    status: StatusCode,
    headers: HeaderMap,
    extensions: Extensions,
    body: B,
) -> http::Response<B> {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    // The map `Response::new` made owns no memory: forgetting it leaks nothing and skips its
    // drop glue.
    std::mem::forget(std::mem::replace(response.headers_mut(), headers));
    *response.extensions_mut() = extensions;
    response
}

/// The hop-by-hop headers (RFC 9110 §7.6.1, and the ones PEP 3333 lists): they describe one
/// connection, so only the server may set them (REQ-RESP-2).
///
/// A slice, so that a later version of the spec can name another header without changing the
/// type.
///
/// ```
/// assert!(rwgi::response::HOP_BY_HOP.contains(&rwgi::http::header::UPGRADE));
/// ```
pub static HOP_BY_HOP: &[HeaderName] = &HOP_BY_HOP_NAMES;

static HOP_BY_HOP_NAMES: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Whether `name` is a hop-by-hop header.
///
/// ```
/// use rwgi::response::is_hop_by_hop;
/// use rwgi::http::header;
///
/// assert!(is_hop_by_hop(&header::TRANSFER_ENCODING));
/// assert!(!is_hop_by_hop(&header::CONTENT_TYPE));
/// ```
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Whether a response with `status` has no body: informational (1xx), `204 No Content`,
/// `205 Reset Content` and `304 Not Modified` (RFC 9110 §6.4.1, §15.3.6; REQ-RESP-6). Servers
/// send no body bytes for these, and the lint and the server refuse bytes from an app's body.
///
/// ```
/// use rwgi::http::StatusCode;
/// use rwgi::response::is_bodiless;
///
/// assert!(is_bodiless(StatusCode::NO_CONTENT));
/// assert!(is_bodiless(StatusCode::NOT_MODIFIED));
/// assert!(is_bodiless(StatusCode::RESET_CONTENT));
/// assert!(is_bodiless(StatusCode::CONTINUE));
/// assert!(!is_bodiless(StatusCode::OK));
/// ```
pub fn is_bodiless(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::RESET_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// Checks a response head before it is sent. `body_length` is the body's
/// [`content_length`](Body::content_length), when known.
///
/// The rules:
/// - REQ-RESP-1: the status is not informational (1xx). The one exception, a `101` taking an
///   upgrade offer (REQ-UPGRADE-2), needs the response's extensions, so this function refuses
///   every `101`; [`Response::check`] judges it.
/// - REQ-RESP-2: no hop-by-hop header ([`HOP_BY_HOP`]).
/// - REQ-RESP-3: at most one `Content-Length`, and it is a decimal number.
/// - REQ-RESP-4: no `Content-Length` on a `204`.
/// - REQ-RESP-5: a `Content-Length` equals the body's known length (for `HEAD` and `304`,
///   where the body is not sent, it may describe the `GET` answer instead).
///
/// # Errors
///
/// The first rule broken.
///
/// ```
/// use rwgi::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
/// use rwgi::response::check_head;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
/// assert!(check_head(&Method::GET, StatusCode::OK, &headers, Some(5)).is_ok());
///
/// let error = check_head(&Method::GET, StatusCode::OK, &headers, Some(4)).unwrap_err();
/// assert_eq!(error.to_string(), "REQ-RESP-5: Content-Length is 5 but the body has 4 bytes");
///
/// headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
/// let error = check_head(&Method::GET, StatusCode::OK, &headers, Some(5)).unwrap_err();
/// assert_eq!(error.requirement(), "REQ-RESP-2");
/// ```
pub fn check_head(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    body_length: Option<u64>,
) -> Result<(), Violation> {
    check_head_declared(
        method == Method::HEAD,
        status,
        headers,
        &Extensions::new(),
        body_length,
    )
    .map(|_| ())
}

/// [`check_head`] for a request that was (`head`) or was not a `HEAD`, returning the declared
/// `Content-Length` for a server, which needs it again to frame the body. One pass over the
/// headers serves both the hop-by-hop rule and the length.
#[inline(always)]
pub(crate) fn check_head_declared(
    head: bool,
    status: StatusCode,
    headers: &HeaderMap,
    extensions: &Extensions,
    body_length: Option<u64>,
) -> Result<Option<u64>, Violation> {
    if status.is_informational() {
        return check_switching(status, headers, extensions, body_length).map(|()| None);
    }
    let mut declared = None;
    for (name, value) in headers {
        if name == CONTENT_LENGTH {
            if declared.is_some() {
                return Err(several_lengths());
            }
            declared = Some(parse_length(value)?);
        } else if is_hop_by_hop(name) {
            return Err(Violation::new(
                "REQ-RESP-2",
                format!("apps must not set the hop-by-hop header `{name}`"),
            ));
        }
    }
    let Some(length) = declared else {
        return Ok(None);
    };
    if status == StatusCode::NO_CONTENT {
        return Err(Violation::new(
            "REQ-RESP-4",
            "a 204 response must not have a Content-Length",
        ));
    }
    let unsent = head || status == StatusCode::NOT_MODIFIED;
    match body_length {
        Some(actual) if actual != length && !unsent => Err(Violation::new(
            "REQ-RESP-5",
            format!("Content-Length is {length} but the body has {actual} bytes"),
        )),
        _ => Ok(declared),
    }
}

/// The head of a 1xx answer: only a `101` that takes an upgrade offer passes (REQ-RESP-1),
/// with `Upgrade` naming a protocol the client asked for, `Connection: upgrade`, no other
/// hop-by-hop header, no `Content-Length` and an empty body (REQ-UPGRADE-2).
#[cold]
fn check_switching(
    status: StatusCode,
    headers: &HeaderMap,
    extensions: &Extensions,
    body_length: Option<u64>,
) -> Result<(), Violation> {
    let switching = extensions.get::<Switching>();
    let Some(switching) = switching.filter(|_| status == StatusCode::SWITCHING_PROTOCOLS) else {
        let why = if status == StatusCode::SWITCHING_PROTOCOLS {
            " (a 101 only takes an upgrade offer, with Upgrade::accept)"
        } else {
            ""
        };
        return Err(Violation::new(
            "REQ-RESP-1",
            format!(
                "the final status must not be 1xx, got {}{why}",
                status.as_u16()
            ),
        ));
    };
    let broken = |message: String| Err(Violation::new("REQ-UPGRADE-2", message));
    let upgrades: Vec<&HeaderValue> = headers.get_all(header::UPGRADE).iter().collect();
    let protocol = match upgrades[..] {
        [one] => one.to_str().unwrap_or_default().trim(),
        _ => {
            return broken(format!(
                "a 101 names the one protocol it switches to in one Upgrade header, got {} of them",
                upgrades.len()
            ))
        }
    };
    if !switching.offered(protocol) {
        return broken(format!(
            "a 101 switches to a protocol the client asked for ({}), got Upgrade: {protocol:?}",
            switching.protocols().join(", ")
        ));
    }
    if !crate::upgrade::has_option(headers, "upgrade") {
        return broken("a 101 carries Connection: upgrade".to_owned());
    }
    if headers.contains_key(CONTENT_LENGTH) || body_length.is_some_and(|n| n > 0) {
        return broken("a 101 has no Content-Length and an empty body".to_owned());
    }
    match headers.keys().find(|name| {
        is_hop_by_hop(name) && **name != header::UPGRADE && **name != header::CONNECTION
    }) {
        Some(name) => Err(Violation::new(
            "REQ-RESP-2",
            format!("apps must not set the hop-by-hop header `{name}`"),
        )),
        None => Ok(()),
    }
}

/// The value of the one `Content-Length` header, if there is one.
///
/// # Errors
///
/// REQ-RESP-3 when there are several, or the value is not a decimal number.
///
/// ```
/// use rwgi::http::{HeaderMap, HeaderValue};
/// use rwgi::response::content_length;
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(content_length(&headers), Ok(None));
/// headers.insert("content-length", HeaderValue::from_static("42"));
/// assert_eq!(content_length(&headers), Ok(Some(42)));
/// headers.insert("content-length", HeaderValue::from_static("+42"));
/// assert!(content_length(&headers).is_err());
/// ```
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, Violation> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(several_lengths());
    }
    parse_length(value).map(Some)
}

fn several_lengths() -> Violation {
    Violation::new(
        "REQ-RESP-3",
        "expected at most one Content-Length header, got several",
    )
}

/// A `Content-Length` value: decimal digits only, no sign, no white space, no overflow.
fn parse_length(value: &HeaderValue) -> Result<u64, Violation> {
    let digits = value.as_bytes();
    let mut length: u64 = 0;
    let valid = !digits.is_empty()
        && digits.iter().all(|&digit| {
            let next = length
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(digit.wrapping_sub(b'0'))));
            match next {
                Some(n) if digit.is_ascii_digit() => {
                    length = n;
                    true
                }
                _ => false,
            }
        });
    if valid {
        Ok(length)
    } else {
        Err(Violation::new(
            "REQ-RESP-3",
            format!("Content-Length must be a decimal number, got {value:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
            .collect()
    }

    fn requirement(
        method: Method,
        status: u16,
        headers: &HeaderMap,
        len: Option<u64>,
    ) -> &'static str {
        let status = StatusCode::from_u16(status).unwrap();
        check_head(&method, status, headers, len).map_or_else(|v| v.requirement(), |()| "ok")
    }

    #[test]
    fn informational_statuses_are_refused() {
        assert_eq!(
            requirement(Method::GET, 100, &head(&[]), None),
            "REQ-RESP-1"
        );
        assert_eq!(
            requirement(Method::GET, 101, &head(&[]), None),
            "REQ-RESP-1"
        );
        assert_eq!(requirement(Method::GET, 200, &head(&[]), None), "ok");
    }

    #[test]
    fn a_101_passes_only_with_an_accepted_offer_and_its_headers() {
        use crate::body::Empty;
        use crate::upgrade::offer;
        use crate::StartResponse;
        let mut asking = HeaderMap::new();
        asking.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        asking.insert(header::UPGRADE, HeaderValue::from_static("echo, foo"));
        let accepted = |protocol: &str, extra: &[(&'static str, &'static str)]| {
            let (upgrade, _) = offer(&Method::GET, http::Version::HTTP_11, &asking).unwrap();
            let mut response =
                upgrade.accept(StartResponse::new(), protocol, head(&[]), |_| async {});
            for (name, value) in extra {
                response.headers_mut().append(
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
            response
                .check(&Method::GET)
                .map_or_else(|v| v.requirement(), |()| "ok")
        };
        assert_eq!(accepted("echo", &[]), "ok");
        assert_eq!(accepted("FOO", &[]), "ok");
        assert_eq!(accepted("h2c", &[]), "REQ-UPGRADE-2");
        assert_eq!(accepted("echo", &[("upgrade", "foo")]), "REQ-UPGRADE-2");
        assert_eq!(
            accepted("echo", &[("content-length", "0")]),
            "REQ-UPGRADE-2"
        );
        assert_eq!(
            accepted("echo", &[("transfer-encoding", "chunked")]),
            "REQ-RESP-2"
        );
        let mut no_option = StartResponse::new();
        let (upgrade, _) = offer(&Method::GET, http::Version::HTTP_11, &asking).unwrap();
        let mut response = upgrade.accept(StartResponse::new(), "echo", head(&[]), |_| async {});
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        assert_eq!(
            response.check(&Method::GET).unwrap_err().requirement(),
            "REQ-UPGRADE-2"
        );
        // Without the mark of an accepted offer, a 101 is a 1xx final status.
        no_option.extensions_mut().insert(7u8);
        let by_hand = no_option
            .start(StatusCode::SWITCHING_PROTOCOLS, head(&[]))
            .body(Empty);
        assert_eq!(
            by_hand.check(&Method::GET).unwrap_err().requirement(),
            "REQ-RESP-1"
        );
    }

    #[test]
    fn every_hop_by_hop_header_is_refused() {
        for name in HOP_BY_HOP {
            assert!(is_hop_by_hop(name));
            let mut headers = HeaderMap::new();
            headers.insert(name.clone(), HeaderValue::from_static("x"));
            assert_eq!(
                requirement(Method::GET, 200, &headers, None),
                "REQ-RESP-2",
                "{name}"
            );
        }
    }

    #[test]
    fn content_length_rules() {
        let five = head(&[("content-length", "5")]);
        assert_eq!(requirement(Method::GET, 200, &five, Some(5)), "ok");
        assert_eq!(
            requirement(Method::GET, 200, &five, None),
            "ok",
            "streamed: checked while sent"
        );
        assert_eq!(requirement(Method::GET, 200, &five, Some(6)), "REQ-RESP-5");
        assert_eq!(requirement(Method::HEAD, 200, &five, Some(0)), "ok");
        assert_eq!(requirement(Method::GET, 304, &five, Some(0)), "ok");
        assert_eq!(requirement(Method::GET, 204, &five, Some(0)), "REQ-RESP-4");
        let mut twice = five.clone();
        twice.append("content-length", HeaderValue::from_static("5"));
        assert_eq!(requirement(Method::GET, 200, &twice, Some(5)), "REQ-RESP-3");
        let bad = head(&[("content-length", "5 ")]);
        assert_eq!(requirement(Method::GET, 200, &bad, Some(5)), "REQ-RESP-3");
        let huge = head(&[("content-length", "99999999999999999999")]);
        assert_eq!(requirement(Method::GET, 200, &huge, None), "REQ-RESP-3");
    }
}
