//! Building blocks for servers: the part of serving that is the same on every HTTP stack.
//!
//! Between "the app returned" and "bytes go on the wire" every server must apply the same rules:
//! refuse a head HTTP cannot carry (REQ-SRV-5), send nothing before the first non-empty chunk so
//! that an early failure still becomes a clean `500` (REQ-SRV-4), send no body for `HEAD`, `204`
//! and `304` (REQ-SRV-6), never let the bytes sent disagree with `Content-Length` (REQ-SRV-7),
//! and survive a panicking app (REQ-ERR-4). [`prepare`] does all of it without depending on any
//! runtime, so a server only maps the [`Prepared`] result onto its own HTTP stack.
//!
//! ```
//! use rwgi::app::app_fn;
//! use rwgi::body::Full;
//! use rwgi::environ::{ConnectionInfo, Environ};
//! use rwgi::http::{HeaderMap, Request, StatusCode};
//! use rwgi::server::prepare;
//! use rwgi::{Input, StartResponse};
//!
//! let app = app_fn(|_, start: StartResponse| async move {
//!     Ok(start.start(StatusCode::OK, HeaderMap::new()).body(Full::new("hello")))
//! });
//! let request = Request::get("/").header("host", "h").body(Input::empty()).unwrap();
//! let environ = Environ::from_request(request, &ConnectionInfo::default()).unwrap();
//!
//! let prepared = futures_executor::block_on(prepare(&app, environ));
//! assert_eq!(prepared.status(), StatusCode::OK);
//! assert!(prepared.failure().is_none());
//! assert_eq!(prepared.content_length(), Some(5));
//! ```

use std::any::Any;
use std::fmt;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::body::{Body, BoxBody, Mismatch, Promise};
use crate::file::{FileBody, FileRange};
use crate::input::InputError;
use crate::interim::FlushHead;
use crate::response::{check_head_declared, http_response, is_bodiless};
use crate::trailers::{announced, check_trailer_name};
use crate::upgrade::Switching;
use crate::violation::Violation;
use crate::{App, Environ, Error, Response, StartResponse};

/// Calls `app` for one request and gets its answer ready to send.
///
/// It runs the app, checks the head ([`check_head`](crate::response::check_head)), drops the body of answers that have
/// none, and polls the body up to its first non-empty chunk, except for a response that carries
/// a [`FlushHead`] in its extensions, whose head is ready at once (REQ-INTERIM-3). It keeps the
/// body's announced trailers for [`ResponseBody`]'s `poll_trailers` (REQ-TRAIL-1) and answers
/// `500` to a body that announces a field no trailer may be (REQ-TRAIL-2). When any of this fails (the app
/// returns an error or panics, the head breaks a rule, the body fails or panics before its
/// first chunk) the result is a plain `500 Internal Server Error` and
/// [`Prepared::failure`] says why, for the server's log. Nothing has been sent at that point.
/// When the error is the request body's, failed because of the client (an
/// [`InputError`]: a broken chunked coding, a body cut short, too slow
/// or too large), the answer has that error's status instead, `400`, `408` or `413`, and
/// `Connection: close` (REQ-INPUT-8).
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::server::prepare;
/// use rwgi_conformance::test_client::{block_on, TestRequest};
///
/// let failing = app_fn(|_, _: rwgi::StartResponse| async move {
///     Err::<rwgi::Response<rwgi::body::Empty>, _>(rwgi::Error::msg("no database"))
/// });
/// let prepared = block_on(prepare(&failing, TestRequest::get("/").into_environ()));
/// assert_eq!(prepared.status(), 500);
/// assert_eq!(prepared.failure().unwrap().to_string(), "app error: no database");
/// ```
pub fn prepare<A: App>(app: &A, environ: Environ) -> impl Future<Output = Prepared<A::Body>> + '_ {
    prepare_with(app, environ, |prepared| prepared)
}

/// [`prepare`], then `finish` on the result, in one future: the way for a server to turn the
/// [`Prepared`] answer into its HTTP stack's response.
///
/// Mapping [`prepare`]'s future with a combinator moves the answer out of that future and into
/// the mapping function; `finish`, called as the last step of the same state machine, takes the
/// answer where it already is. A server on a hot path uses this; `BENCHMARKS.md` in the
/// repository has the measurement.
///
/// `app` is taken by value: pass `&app` to borrow it, as servers do, or an `Arc` of it (which
/// is an app too) for a future that owns everything it needs, as a bridge whose future must be
/// `'static` does. Wrapping this future in an `async` block instead would keep the environ in
/// that block's state as well as in this one's.
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::body::Full;
/// use rwgi::server::prepare_with;
/// use rwgi_conformance::test_client::{block_on, TestRequest};
///
/// let app = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(Default::default(), Default::default()).body(Full::new("hi")))
/// });
/// // A server would build its own response type here.
/// let status = block_on(prepare_with(&app, TestRequest::get("/").into_environ(), |prepared| {
///     prepared.status().as_u16()
/// }));
/// assert_eq!(status, 200);
/// ```
#[allow(clippy::manual_async_fn)] // on purpose, see the first comment
pub fn prepare_with<'a, A, F, R>(
    app: A,
    environ: Environ,
    finish: F,
) -> impl Future<Output = R> + 'a
where
    A: App + 'a,
    F: FnOnce(Prepared<A::Body>) -> R + 'a,
{
    // A plain function returning an `async` block, not an `async fn`: an `async fn` keeps its
    // arguments twice in its state (as captured and as bound), which for the environ is 256
    // bytes more to copy on every request.
    async move {
        // One state machine, and only what the rest needs from the environ. Each step lives in its
        // own scope so that its values are dead, and their bytes reused, during the next await:
        // this future is moved on every request, so its size is paid in copies.
        let head = environ.method() == Method::HEAD;
        let prepared = 'prepared: {
            let Streaming {
                status,
                headers,
                extensions,
                mut guarded,
                bodiless,
                flush,
            } = {
                let call = pin!(app.call(environ, StartResponse::new()));
                let response = match (CatchPanic { future: call }).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(error)) => break 'prepared Prepared::failed(Failure::App(error)),
                    Err(panic) => {
                        break 'prepared Prepared::failed(Failure::Panic(panic_message(&*panic)))
                    }
                };
                match check_response(head, response) {
                    Checked::Stream(streaming) => streaming,
                    Checked::Done(prepared) => break 'prepared prepared,
                }
            };
            if flush {
                // The app asked for its head at once (REQ-INTERIM-3): no first chunk awaited.
                let advertised = guarded.length();
                let body = ResponseBody {
                    first: None,
                    rest: Some(Rest::App(guarded)),
                };
                break 'prepared Prepared::ready(status, headers, extensions, body, advertised);
            }
            let first = loop {
                match poll_fn(|cx| Pin::new(&mut guarded).poll_next(cx)).await {
                    Some(Ok(chunk)) if chunk.is_empty() => continue,
                    Some(Ok(chunk)) => break Some(chunk),
                    Some(Err(error)) => break 'prepared Prepared::failed(Failure::Body(error)),
                    None => break None,
                }
            };
            if bodiless {
                if first.is_some() {
                    break 'prepared Prepared::failed(Failure::Violation(bodiless_violation(
                        status,
                    )));
                }
                confirm_switching(status, &extensions);
                let body = ResponseBody::empty();
                break 'prepared Prepared::ready(status, headers, extensions, body, None);
            }
            let first_len = first.as_ref().map_or(0, |chunk| chunk.len() as u64);
            let advertised = guarded.length().map(|rest| first_len + rest);
            let body = ResponseBody {
                first,
                rest: (!guarded.is_done()).then_some(Rest::App(guarded)),
            };
            Prepared::ready(status, headers, extensions, body, advertised)
        };
        finish(prepared)
    }
}

/// The head checks, and the answers whose body is never sent; otherwise the parts to stream,
/// with the body guarded and whether the status forbids body bytes.
// Inlined into `prepare`'s state machine, the answer is taken apart once instead of being moved
// into and out of `Checked` (measured in BENCHMARKS.md; a plain `#[inline]` hint does not take).
#[inline(always)]
fn check_response<B: Body + Unpin>(head: bool, response: Response<B>) -> Checked<B> {
    let (status, headers, extensions, mut body) = response.into_all();
    let length = body.content_length();
    let declared = match check_head_declared(head, status, &headers, &extensions, length) {
        Ok(declared) => declared,
        Err(violation) => return Checked::Done(Prepared::failed(Failure::Violation(violation))),
    };
    if let Some(Err(violation)) = body
        .trailer_names()
        .iter()
        .map(check_trailer_name)
        .find(Result::is_err)
    {
        return Checked::Done(Prepared::failed(Failure::Violation(violation)));
    }
    let bodiless = is_bodiless(status);
    if bodiless && length.is_some_and(|n| n > 0) {
        return Checked::Done(Prepared::failed(Failure::Violation(bodiless_violation(
            status,
        ))));
    }
    if head || (bodiless && length == Some(0)) {
        // The body is never sent: drop it now (REQ-SRV-6), but advertise the length a GET
        // would have had.
        let advertised = declared.or(length).filter(|_| !bodiless);
        drop(body);
        confirm_switching(status, &extensions);
        return Checked::Done(Prepared::ready(
            status,
            headers,
            extensions,
            ResponseBody::empty(),
            advertised,
        ));
    }
    // A file body goes to the server as its range, unread (§14.9): one call, which a body
    // type that is never a file answers with a `None` the compiler sees through.
    if let Some(range) = Pin::new(&mut body).take_file() {
        drop(body);
        return Checked::Done(file_answer(
            (status, headers, extensions),
            range,
            declared,
            length,
        ));
    }
    let flush = !bodiless && extensions.get::<FlushHead>().is_some();
    Checked::Stream(Streaming {
        status,
        headers,
        extensions,
        guarded: Guarded::new(body, declared, length),
        bodiless,
        flush,
    })
}

/// Marks a `101` that passed the head checks as about to be sent, so that the server gets the
/// upgrade handler (REQ-UPGRADE-3). Only answers without a body get here.
#[inline(always)]
fn confirm_switching(status: StatusCode, extensions: &Extensions) {
    if status == StatusCode::SWITCHING_PROTOCOLS {
        confirm_switch(extensions);
    }
}

#[cold]
fn confirm_switch(extensions: &Extensions) {
    if let Some(switching) = extensions.get::<Switching>() {
        switching.confirm();
    }
}

/// The answer whose body handed out a file range: checked against the lengths the app
/// announced (REQ-FILE-1, REQ-RESP-5, REQ-RESP-6), then ready with the range unread.
#[cold]
fn file_answer<B: Body + Unpin>(
    (status, headers, extensions): (StatusCode, HeaderMap, Extensions),
    range: FileRange,
    declared: Option<u64>,
    length: Option<u64>,
) -> Prepared<B> {
    let len = range.len();
    if length.is_some_and(|length| length != len) {
        return Prepared::failed(Failure::Violation(Violation::new(
            "REQ-FILE-1",
            format!(
                "take_file() handed out a range of {len} bytes, but content_length() said {}",
                length.unwrap_or_default()
            ),
        )));
    }
    if let Some(declared) = declared.filter(|&declared| declared != len) {
        return Prepared::failed(Failure::Violation(Violation::new(
            "REQ-RESP-5",
            format!("Content-Length is {declared} but the body is a file range of {len} bytes"),
        )));
    }
    if is_bodiless(status) && len > 0 {
        return Prepared::failed(Failure::Violation(Violation::new(
            "REQ-RESP-6",
            format!(
                "a {} response must have an empty body, got a file range of {len} bytes",
                status.as_u16()
            ),
        )));
    }
    let body = if len == 0 {
        ResponseBody::empty()
    } else {
        let file = BoxBody::new(FileBody::new(range));
        ResponseBody {
            first: None,
            rest: Some(Rest::File(Box::new(Guarded::new(
                file,
                declared,
                Some(len),
            )))),
        }
    };
    let advertised = (!is_bodiless(status)).then_some(len);
    Prepared::ready(status, headers, extensions, body, advertised)
}

/// What the head checks leave to do: stream a body, or nothing more.
enum Checked<B> {
    Stream(Streaming<B>),
    Done(Prepared<B>),
}

/// An answer whose body is to be polled: its head, its guarded body, whether its status
/// forbids body bytes (so a first chunk is a violation), and whether the app asked for its head
/// to go out at once.
struct Streaming<B> {
    status: StatusCode,
    headers: HeaderMap,
    extensions: Extensions,
    guarded: Guarded<B>,
    bodiless: bool,
    flush: bool,
}

fn bodiless_violation(status: StatusCode) -> Violation {
    Violation::new(
        "REQ-RESP-6",
        format!("a {} response must have an empty body", status.as_u16()),
    )
}

/// An answer ready to send: status, headers and the body to stream, or the error response
/// that replaces a failed answer.
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::body::Full;
/// use rwgi::server::prepare;
/// use rwgi_conformance::test_client::{block_on, TestRequest};
///
/// let app = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(Default::default(), Default::default()).body(Full::new("hello")))
/// });
/// // HEAD: the body is dropped, the length a GET would have is kept for the header.
/// let prepared = block_on(prepare(&app, TestRequest::head("/").into_environ()));
/// assert_eq!(prepared.content_length(), Some(5));
/// let (status, _headers, body) = prepared.into_parts();
/// assert_eq!(status, 200);
/// assert!(body.is_end_stream());
/// ```
pub struct Prepared<B> {
    status: StatusCode,
    headers: HeaderMap,
    extensions: Extensions,
    body: ResponseBody<B>,
    content_length: Option<u64>,
    failure: Option<Box<Failure>>,
}

impl<B: Body + Unpin> Prepared<B> {
    fn ready(
        status: StatusCode,
        headers: HeaderMap,
        extensions: Extensions,
        body: ResponseBody<B>,
        content_length: Option<u64>,
    ) -> Self {
        Prepared {
            status,
            headers,
            extensions,
            body,
            content_length,
            failure: None,
        }
    }

    /// The server's own short answer, for the requests it answers without calling the app:
    /// `status` with `text` as a `text/plain` body, which the server sends like any prepared
    /// answer. The status is the server's choice and must allow a body (not 1xx, 204, 205 or
    /// 304). The body type `B` is the one the server sends the app's answers with, so one
    /// response type serves both; where nothing else fixes it, name any body type.
    ///
    /// ```
    /// use rwgi::http::StatusCode;
    /// use rwgi::server::Prepared;
    ///
    /// // REQ-ENV-2: a request that cannot become an environ gets a 400, and the app is not called.
    /// let prepared = Prepared::<rwgi::body::Empty>::plain(StatusCode::BAD_REQUEST, "Bad Request\n");
    /// assert_eq!(prepared.content_length(), Some(12));
    /// assert_eq!(prepared.headers()["content-type"], "text/plain; charset=utf-8");
    /// assert!(prepared.failure().is_none());
    ///
    /// // A text made at run time.
    /// let limit = 1 << 20;
    /// let text = format!("the body is over the limit of {limit} bytes\n");
    /// let prepared = Prepared::<rwgi::body::Empty>::plain(StatusCode::PAYLOAD_TOO_LARGE, text);
    /// assert_eq!(prepared.status(), 413);
    /// ```
    pub fn plain(status: StatusCode, text: impl Into<Bytes>) -> Self {
        let text: Bytes = text.into();
        let length = text.len();
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        let body = ResponseBody {
            first: (!text.is_empty()).then_some(text),
            rest: None,
        };
        Prepared::ready(
            status,
            headers,
            Extensions::new(),
            body,
            Some(length as u64),
        )
    }

    /// The answer in place of a failed one: `500`, or the status of the request body's own
    /// failure when the client caused it (REQ-INPUT-8), with `Connection: close`: that body was
    /// not read to its end, and its framing may be what broke.
    #[cold]
    fn failed(failure: Failure) -> Self {
        let mut plain = match failure.input_error().map(InputError::status) {
            Some(StatusCode::BAD_REQUEST) => {
                Prepared::plain(StatusCode::BAD_REQUEST, "Bad Request\n")
            }
            Some(StatusCode::REQUEST_TIMEOUT) => {
                Prepared::plain(StatusCode::REQUEST_TIMEOUT, "Request Timeout\n")
            }
            Some(StatusCode::PAYLOAD_TOO_LARGE) => {
                Prepared::plain(StatusCode::PAYLOAD_TOO_LARGE, "Content Too Large\n")
            }
            _ => {
                return Prepared {
                    failure: Some(Box::new(failure)),
                    ..Prepared::plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
                }
            }
        };
        plain
            .headers
            .insert(CONNECTION, HeaderValue::from_static("close"));
        Prepared {
            failure: Some(Box::new(failure)),
            ..plain
        }
    }

    /// The status to send.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers to send: the app's. The server adds its own (`Date`, framing) as its stack
    /// does.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The `Content-Length` the response announces: the app's header if it set one, else the
    /// body's exact length when known. `None` means the length is unknown and the server
    /// delimits the body by chunked encoding (or by closing the connection for HTTP/1.0).
    /// It is also `None` for the statuses without a body (204, 205, 304): the server frames
    /// nothing for them, and a `Content-Length` the app set on a `304` (the `GET` answer's, which
    /// REQ-RESP-5 allows) is sent as it is, among [`headers`](Prepared::headers).
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The response's extensions (REQ-EXT-2): what the server's callback, the app and its
    /// middleware put there, for the server's own use (logs, metrics). Empty when the answer
    /// was replaced by a `500`.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The extensions, mutably, to take values out before sending.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// Why the app's answer was replaced by a `500` (or by the status of a request body the
    /// client broke, [`Failure::input_error`]), if it was.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_deref()
    }

    /// Splits into status, headers and the body to send, dropping the extensions; see
    /// [`into_http`](Prepared::into_http) to keep them.
    pub fn into_parts(self) -> (StatusCode, HeaderMap, ResponseBody<B>) {
        (self.status, self.headers, self.body)
    }

    /// The answer as an `http::Response`, extensions included, for servers and bridges built
    /// on `http`'s types.
    ///
    /// ```
    /// use rwgi::app::app_fn;
    /// use rwgi::body::Full;
    /// use rwgi::server::prepare;
    /// use rwgi_conformance::test_client::{block_on, TestRequest};
    ///
    /// let app = app_fn(|_, start: rwgi::StartResponse| async move {
    ///     let mut response = start.start(Default::default(), Default::default()).body(Full::new("hi"));
    ///     response.extensions_mut().insert("route: /");
    ///     Ok(response)
    /// });
    /// let response = block_on(prepare(&app, TestRequest::get("/").into_environ())).into_http();
    /// assert_eq!(response.extensions().get::<&str>(), Some(&"route: /"));
    /// ```
    pub fn into_http(self) -> http::Response<ResponseBody<B>> {
        http_response(self.status, self.headers, self.extensions, self.body)
    }
}

impl<B> fmt::Debug for Prepared<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("content_length", &self.content_length)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

/// Why a server answered `500` in place of the app.
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::http::{header, HeaderMap, HeaderValue};
/// use rwgi::server::{prepare, Failure};
/// use rwgi_conformance::test_client::{block_on, TestRequest};
///
/// let app = app_fn(|_, start: rwgi::StartResponse| async move {
///     let mut headers = HeaderMap::new();
///     headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
///     Ok(start.start(Default::default(), headers).body(rwgi::body::Empty))
/// });
/// let prepared = block_on(prepare(&app, TestRequest::get("/").into_environ()));
/// let Some(Failure::Violation(violation)) = prepared.failure() else { panic!("expected a violation") };
/// assert_eq!(violation.requirement(), "REQ-RESP-2");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// The app returned an error.
    App(Error),
    /// The app panicked; the panic's message.
    Panic(String),
    /// The app's head broke a rule.
    Violation(Violation),
    /// The body failed (or panicked) before its first chunk.
    Body(Error),
}

impl Failure {
    /// The [`InputError`] the failure carries, when the app (or its body) failed because the
    /// request body did, and the client caused that (REQ-INPUT-8): the answer then has its
    /// status (`400`, `408`, `413`) rather than `500`, and `Connection: close`, since the body
    /// was not read to its end.
    ///
    /// ```
    /// use rwgi::app::app_fn;
    /// use rwgi::input::{InputError, InputErrorKind};
    /// use rwgi::server::prepare;
    /// use rwgi_conformance::test_client::{block_on, TestRequest};
    ///
    /// // An app that passes on the error its request body yielded.
    /// let app = app_fn(|_, _: rwgi::StartResponse| async move {
    ///     let broken = InputError::new(InputErrorKind::Malformed, "bad chunk size");
    ///     Err::<rwgi::Response<rwgi::body::Empty>, _>(rwgi::Error::new(broken))
    /// });
    /// let prepared = block_on(prepare(&app, TestRequest::post("/").into_environ()));
    /// assert_eq!(prepared.status(), 400);
    /// assert!(prepared.failure().unwrap().input_error().unwrap().is_malformed());
    /// ```
    pub fn input_error(&self) -> Option<&InputError> {
        match self {
            Failure::App(error) | Failure::Body(error) => error.input_error(),
            Failure::Panic(_) | Failure::Violation(_) => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::App(error) => write!(f, "app error: {error}"),
            Failure::Panic(message) => write!(f, "app panicked: {message}"),
            Failure::Violation(violation) => write!(f, "app broke {violation}"),
            Failure::Body(error) => write!(f, "body failed before its first chunk: {error}"),
        }
    }
}

/// The body a server sends: the first chunk that [`prepare`] already polled, then the rest of
/// the app's body.
///
/// It guards the wire (REQ-SRV-7): when the app's body yields more or fewer bytes than the
/// announced `Content-Length`, or panics, it yields an error, and the server must abort the
/// connection rather than end the response normally (REQ-ERR-3).
///
/// ```
/// use rwgi::app::app_fn;
/// use rwgi::body::BodyExt;
/// use rwgi::body::Full;
/// use rwgi::server::prepare;
/// use rwgi_conformance::test_client::{block_on, TestRequest};
///
/// let app = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(Default::default(), Default::default()).body(Full::new("hi")))
/// });
/// let (_, _, mut body) = block_on(prepare(&app, TestRequest::get("/").into_environ())).into_parts();
/// let chunk = block_on(body.chunk());
/// assert_eq!(chunk.unwrap().unwrap(), "hi");
/// assert!(body.is_end_stream());
/// ```
pub struct ResponseBody<B> {
    first: Option<Bytes>,
    rest: Option<Rest<B>>,
}

/// What a [`ResponseBody`] streams after its first chunk: the app's body, or the file range
/// a file body handed out (§14.9), both guarded against the announced length.
enum Rest<B> {
    App(Guarded<B>),
    /// A [`FileBody`], or what the server put in its place ([`ResponseBody::map_file`]).
    File(Box<Guarded<BoxBody>>),
}

impl<B: Body + Unpin> Rest<B> {
    #[inline(always)]
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        match self {
            Rest::App(guarded) => Pin::new(guarded).poll_next(cx),
            Rest::File(guarded) => Pin::new(&mut **guarded).poll_next(cx),
        }
    }

    fn at_end(&self) -> bool {
        match self {
            Rest::App(guarded) => guarded.at_end(),
            Rest::File(guarded) => guarded.at_end(),
        }
    }

    fn length(&self) -> Option<u64> {
        match self {
            Rest::App(guarded) => guarded.length(),
            Rest::File(guarded) => guarded.length(),
        }
    }

    /// The trailer fields the app's body announced; a file has none.
    fn trailer_names(&self) -> &[HeaderName] {
        match self {
            Rest::App(guarded) => guarded.body.trailer_names(),
            Rest::File(_) => &[],
        }
    }

    fn done(&self) -> bool {
        match self {
            Rest::App(guarded) => guarded.done,
            Rest::File(guarded) => guarded.done,
        }
    }
}

impl<B> ResponseBody<B> {
    fn empty() -> Self {
        ResponseBody {
            first: None,
            rest: None,
        }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("first", &self.first.as_ref().map(Bytes::len))
            .field("streaming", &self.rest.is_some())
            .finish()
    }
}

impl<B: Body + Unpin> ResponseBody<B> {
    /// Whether the body is known to have nothing more to send, so the server can finish the
    /// response without polling again.
    ///
    /// True once the body ended, and also when the app's body itself promises no more bytes
    /// (REQ-BODY-4) and no `Content-Length` header has to be verified against it: a one-chunk
    /// body then costs one poll, not two.
    pub fn is_end_stream(&self) -> bool {
        self.first.is_none()
            && self.rest.as_ref().map_or(true, |rest| {
                rest.trailer_names().is_empty() && rest.at_end()
            })
    }

    /// Whether the body is a file range that the server has not taken (§14.9).
    pub fn is_file(&self) -> bool {
        matches!(self.rest, Some(Rest::File(_)))
    }

    /// For a server that declares file bodies (REQ-FILE-2): when the body is a file range,
    /// replaces the [`FileBody`] that would read it on the polling thread with `send`'s body,
    /// which sends the range the server's way (read on threads of its own, say). The
    /// replacement is held to the range's length like any body (REQ-SRV-7); a body that is no
    /// file is left as it is.
    ///
    /// (A server that sends the range without a body, with `sendfile` on the socket, takes it
    /// out with [`Body::take_file`] instead; the body is then empty.)
    ///
    /// ```
    /// # use std::io::Write;
    /// use rwgi::app::app_fn;
    /// use rwgi::body::{BodyExt, BoxBody, Full};
    /// use rwgi::file::FileBody;
    /// use rwgi::server::prepare;
    /// use rwgi_conformance::test_client::{block_on, TestRequest};
    ///
    /// # let path = std::env::temp_dir().join(format!("rwgi-map-file-doc-{}", std::process::id()));
    /// # std::fs::File::create(&path).unwrap().write_all(b"hello").unwrap();
    /// # let file = path.clone();
    /// let app = app_fn(move |_, start: rwgi::StartResponse| {
    ///     let file = file.clone();
    ///     async move { Ok(start.start(Default::default(), Default::default()).body(FileBody::open(file)?)) }
    /// });
    /// let prepared = block_on(prepare(&app, TestRequest::get("/").into_environ()));
    /// assert_eq!(prepared.content_length(), Some(5));
    /// let (_, _, mut body) = prepared.into_parts();
    /// assert!(body.is_file());
    /// // This "server" sends every file as the same five bytes.
    /// body.map_file(|range| BoxBody::new(Full::new(vec![b'x'; range.len() as usize])));
    /// assert_eq!(block_on(body.chunk()).unwrap().unwrap(), "xxxxx");
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    #[inline]
    pub fn map_file(&mut self, send: impl FnOnce(FileRange) -> BoxBody) {
        if let Some(Rest::File(guarded)) = &mut self.rest {
            replace_file(guarded, send);
        }
    }
}

#[cold]
fn replace_file(guarded: &mut Guarded<BoxBody>, send: impl FnOnce(FileRange) -> BoxBody) {
    if let Some(range) = Pin::new(&mut guarded.body).take_file() {
        guarded.body = send(range);
    }
}

impl<B: Body + Unpin> Stream for ResponseBody<B> {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        let Some(rest) = self.rest.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = rest.poll_next(cx);
        match polled {
            // A body with trailers to come is kept until they are polled (REQ-TRAIL-3).
            Poll::Ready(None) if !rest.trailer_names().is_empty() => {}
            // Dropping the app's body now is its close() (REQ-SRV-8).
            Poll::Ready(None | Some(Err(_))) => self.rest = None,
            _ => {}
        }
        polled
    }
}

impl<B: Body + Unpin> Body for ResponseBody<B> {
    fn content_length(&self) -> Option<u64> {
        let first = self.first.as_ref().map_or(0, |chunk| chunk.len() as u64);
        match &self.rest {
            None => Some(first),
            Some(rest) => rest.length().map(|rest| first + rest),
        }
    }

    fn trailer_names(&self) -> &[HeaderName] {
        self.rest.as_ref().map_or(&[], |rest| rest.trailer_names())
    }

    /// The app's trailers, of the fields it announced (REQ-TRAIL-1); the app's body is dropped
    /// once they are polled (REQ-SRV-8).
    fn poll_trailers(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        let Some(Rest::App(rest)) = self.rest.as_mut().filter(|rest| rest.done()) else {
            return Poll::Ready(Ok(None));
        };
        let polled = catch_unwind(AssertUnwindSafe(|| {
            Pin::new(&mut rest.body).poll_trailers(cx)
        }));
        let fields = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(Ok(fields))) => {
                Ok(fields.map(|fields| announced(rest.body.trailer_names(), fields)))
            }
            Ok(Poll::Ready(Err(error))) => Err(error),
            Err(panic) => Err(Error::msg(format!(
                "body panicked: {}",
                panic_message(&*panic)
            ))),
        };
        self.rest = None;
        Poll::Ready(fields)
    }

    /// The file range, when the body is one the server has not taken; the body is then empty.
    fn take_file(self: Pin<&mut Self>) -> Option<FileRange> {
        let this = self.get_mut();
        let Some(Rest::File(guarded)) = &mut this.rest else {
            return None;
        };
        let range = Pin::new(&mut guarded.body).take_file();
        this.rest = None;
        range
    }
}

/// The app's body, checked against the length it announced, with panics caught.
struct Guarded<B> {
    body: B,
    /// The announced `Content-Length`, counted down.
    promise: Option<Promise>,
    /// Whether `promise` comes from a `Content-Length` header rather than the body's own.
    declared: bool,
    done: bool,
}

impl<B: Body + Unpin> Guarded<B> {
    /// Guards `body`, whose own length is `length`, against the `declared` `Content-Length`.
    fn new(body: B, declared: Option<u64>, length: Option<u64>) -> Self {
        Guarded {
            body,
            promise: declared.or(length).map(Promise::new),
            declared: declared.is_some(),
            done: false,
        }
    }

    fn length(&self) -> Option<u64> {
        if self.done {
            Some(0)
        } else {
            self.promise.map(|promise| promise.remaining())
        }
    }

    fn is_done(&self) -> bool {
        self.done
    }

    /// Whether nothing is left to send: the body ended, or it promises no more bytes itself
    /// and no `Content-Length` header has to be verified against it.
    fn at_end(&self) -> bool {
        self.done || (!self.declared && self.body.content_length() == Some(0))
    }
}

impl<B: Body + Unpin> Stream for Guarded<B> {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        let polled = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut this.body).poll_next(cx)));
        let item = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(item)) => item,
            Err(panic) => Some(Err(Error::msg(format!(
                "body panicked: {}",
                panic_message(&*panic)
            )))),
        };
        let broken =
            |mismatch: Mismatch| Error::new(mismatch.violation("REQ-RESP-5", "Content-Length"));
        let mut item = match (item, this.promise.as_mut()) {
            (Some(Ok(chunk)), Some(promise)) => {
                Some(promise.take(chunk.len()).map(|()| chunk).map_err(broken))
            }
            (None, Some(promise)) => promise.end().err().map(|mismatch| Err(broken(mismatch))),
            (item, _) => item,
        };
        if matches!(item, Some(Ok(_))) && this.complete_by_promise() {
            // The last promised byte is due. An HTTP stack that frames by Content-Length stops
            // polling once it has them, so a body that yields more must be caught now, while
            // the response can still be cut short (REQ-SRV-7).
            if let Some(failure) = this.look_past_the_end(cx) {
                item = Some(Err(failure));
            }
        }
        if !matches!(item, Some(Ok(_))) {
            this.done = true;
        }
        Poll::Ready(item)
    }
}

impl<B: Body + Unpin> Guarded<B> {
    /// Whether the promised bytes are all yielded while the body does not vouch for its own
    /// end (its length is not `Some(0)`), so one more poll is needed to know it ends.
    fn complete_by_promise(&self) -> bool {
        self.promise.is_some_and(|promise| promise.remaining() == 0)
            && self.body.content_length() != Some(0)
    }

    /// Polls the body once past its promised end: an end marks it done, bytes or an error are
    /// the failure to report in place of the last chunk. A body not ready yet is left alone.
    fn look_past_the_end(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        loop {
            let polled = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut self.body).poll_next(cx)));
            match polled {
                Ok(Poll::Pending) => return None,
                Ok(Poll::Ready(None)) => {
                    self.done = true;
                    return None;
                }
                Ok(Poll::Ready(Some(Ok(chunk)))) if chunk.is_empty() => continue,
                Ok(Poll::Ready(Some(Ok(chunk)))) => {
                    let promise = self.promise.as_mut()?;
                    let mismatch = promise.take(chunk.len()).err()?;
                    return Some(Error::new(
                        mismatch.violation("REQ-RESP-5", "Content-Length"),
                    ));
                }
                Ok(Poll::Ready(Some(Err(error)))) => return Some(error),
                Err(panic) => {
                    return Some(Error::msg(format!(
                        "body panicked: {}",
                        panic_message(&*panic)
                    )))
                }
            }
        }
    }
}

/// A future whose panics become `Err` with the panic payload.
struct CatchPanic<'a, F> {
    future: Pin<&'a mut F>,
}

impl<F: Future> Future for CatchPanic<'_, F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.future.as_mut();
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// The message of a panic payload (`&str` or `String`, as `panic!` makes them), for a server's
/// log.
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("app exploded")).unwrap_err();
/// assert_eq!(rwgi::server::panic_message(&*payload), "app exploded");
/// ```
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::app_fn;
    use crate::body::tests::{collect, Chunks};
    use crate::body::{Full, StreamBody};
    use crate::environ::tests::environ_of;
    use futures_executor::block_on;
    use http::header::CONTENT_LENGTH;
    use http::request::Builder;
    use http::Request;

    fn prepared<B: Body + Send + Unpin + 'static>(
        request: Builder,
        status: StatusCode,
        headers: &[(&'static str, &'static str)],
        body: impl Fn() -> B + Send + Sync,
    ) -> Prepared<B> {
        let headers: HeaderMap = headers
            .iter()
            .map(|(n, v)| {
                (
                    http::HeaderName::from_static(n),
                    HeaderValue::from_static(v),
                )
            })
            .collect();
        let app = app_fn(move |_, start: StartResponse| {
            let response = start.start(status, headers.clone()).body(body());
            async move { Ok(response) }
        });
        block_on(prepare(&app, environ_of(request)))
    }

    #[test]
    fn a_one_chunk_body_is_complete_after_one_poll() {
        let prepared = prepared(Request::get("/"), StatusCode::OK, &[], || Full::new("hi"));
        assert_eq!(prepared.content_length(), Some(2));
        let (_, _, mut body) = prepared.into_parts();
        assert!(!body.is_end_stream());
        let waker = crate::body::tests::noop_waker();
        let chunk = Pin::new(&mut body).poll_next(&mut Context::from_waker(&waker));
        assert!(matches!(chunk, Poll::Ready(Some(Ok(ref c))) if c == "hi"));
        assert!(body.is_end_stream());
    }

    #[test]
    fn the_response_body_counts_its_length_down() {
        let prepared = prepared(Request::get("/"), StatusCode::OK, &[], || {
            StreamBody::with_length(Chunks(vec![Ok("ab"), Ok("c")], None), 3)
        });
        let (_, _, mut body) = prepared.into_parts();
        assert_eq!(
            Body::content_length(&body),
            Some(3),
            "the polled chunk and the rest"
        );
        let waker = crate::body::tests::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let _ = Pin::new(&mut body).poll_next(&mut cx);
        assert_eq!(Body::content_length(&body), Some(1));
        let _ = Pin::new(&mut body).poll_next(&mut cx);
        assert_eq!(Body::content_length(&body), Some(0));
    }

    #[test]
    fn a_body_found_complete_while_preparing_is_dropped_there() {
        use futures_util::StreamExt;
        use std::sync::Arc;
        // REQ-SRV-8: the look past the declared end saw the end, so the app's body is closed
        // before the server sends anything, whatever the server does next.
        let alive = Arc::new(());
        let probe = Arc::clone(&alive);
        let prepared = prepared(
            Request::get("/"),
            StatusCode::OK,
            &[("content-length", "2")],
            move || {
                let held = Arc::clone(&probe);
                let chunks =
                    ["ab", "", ""].map(|c| Ok::<_, Error>(Bytes::from_static(c.as_bytes())));
                StreamBody::new(futures_util::stream::iter(chunks).map(move |chunk| {
                    let _ = &held;
                    chunk
                }))
            },
        );
        assert_eq!(Arc::strong_count(&alive), 1, "the app's body is gone");
        let (_, _, mut body) = prepared.into_parts();
        let waker = crate::body::tests::noop_waker();
        let first = Pin::new(&mut body).poll_next(&mut Context::from_waker(&waker));
        assert!(matches!(first, Poll::Ready(Some(Ok(ref c))) if c == "ab"));
        assert!(
            body.is_end_stream(),
            "the empty chunks past the end were skipped"
        );
    }

    #[test]
    fn a_body_of_unknown_length_is_not_at_its_end_after_the_first_chunk() {
        let prepared = prepared(Request::get("/"), StatusCode::OK, &[], || {
            Chunks(vec![Ok("a"), Ok("b")], None)
        });
        let (_, _, mut body) = prepared.into_parts();
        let waker = crate::body::tests::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(
            matches!(Pin::new(&mut body).poll_next(&mut cx), Poll::Ready(Some(Ok(ref c))) if c == "a")
        );
        assert!(!body.is_end_stream(), "`b` is still to come");
        assert!(
            matches!(Pin::new(&mut body).poll_next(&mut cx), Poll::Ready(Some(Ok(ref c))) if c == "b")
        );
        assert!(matches!(
            Pin::new(&mut body).poll_next(&mut cx),
            Poll::Ready(None)
        ));
        assert!(body.is_end_stream());
    }

    #[test]
    fn head_drops_the_body_and_keeps_its_length() {
        let prepared = prepared(Request::head("/"), StatusCode::OK, &[], || {
            Full::new("hello")
        });
        assert_eq!(prepared.content_length(), Some(5));
        let (_, _, body) = prepared.into_parts();
        assert!(body.is_end_stream());
        assert!(collect(body).unwrap().is_empty());
    }

    #[test]
    fn empty_chunks_before_the_first_are_skipped() {
        let prepared = prepared(Request::get("/"), StatusCode::OK, &[], || {
            Chunks(vec![Ok(""), Ok(""), Ok("a"), Ok("b")], None)
        });
        assert!(prepared.failure().is_none());
        assert_eq!(prepared.content_length(), None);
        assert_eq!(collect(prepared.into_parts().2).unwrap().concat(), b"ab");
    }

    #[test]
    fn a_body_failing_before_its_first_chunk_becomes_a_500() {
        let prepared = prepared(Request::get("/"), StatusCode::OK, &[], || {
            Chunks(vec![Ok(""), Err("template missing")], None)
        });
        assert_eq!(prepared.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            prepared.failure().unwrap().to_string(),
            "body failed before its first chunk: template missing"
        );
        assert_eq!(prepared.headers()[CONTENT_LENGTH], "22");
    }

    #[test]
    fn a_failure_caused_by_the_clients_body_gets_that_bodys_status() {
        use crate::input::{InputError, InputErrorKind};

        for (kind, status, text) in [
            (InputErrorKind::Malformed, 400, "Bad Request\n"),
            (InputErrorKind::Incomplete, 400, "Bad Request\n"),
            (InputErrorKind::TimedOut, 408, "Request Timeout\n"),
            (InputErrorKind::TooLarge, 413, "Content Too Large\n"),
        ] {
            // The app returns the error, wrapped; or its body (an echo of the upload) yields it
            // before its first chunk.
            let app = app_fn(move |environ: Environ, start: StartResponse| async move {
                if environ.path_info() == "/app" {
                    let error = Error::new(InputError::new(kind, "the client's fault"));
                    return Err(Error::new(crate::input::ReadError::Body(error)));
                }
                let error = Error::new(InputError::new(kind, "the client's fault"));
                let body =
                    StreamBody::new(futures_util::stream::iter([Ok(Bytes::new()), Err(error)]));
                Ok(start.start(StatusCode::OK, HeaderMap::new()).body(body))
            });
            for path in ["/app", "/body"] {
                let prepared = block_on(prepare(&app, environ_of(Request::post(path))));
                assert_eq!(prepared.status(), status, "{kind:?} {path}");
                assert_eq!(
                    prepared
                        .failure()
                        .and_then(Failure::input_error)
                        .map(InputError::kind),
                    Some(kind)
                );
                assert_eq!(prepared.headers()["connection"], "close");
                assert_eq!(
                    collect(prepared.into_parts().2).unwrap().concat(),
                    text.as_bytes()
                );
            }
        }
        // Any other failure is still a 500.
        let prepared = prepared(Request::get("/"), StatusCode::OK, &[], || {
            Chunks(vec![Err("disk gone")], None)
        });
        assert_eq!(prepared.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(prepared.failure().unwrap().input_error().is_none());
        assert!(!prepared.headers().contains_key("connection"));
    }

    #[test]
    fn a_body_failing_after_its_first_chunk_yields_the_error_to_the_server() {
        let prepared = prepared(Request::get("/"), StatusCode::OK, &[], || {
            Chunks(vec![Ok("a"), Err("disk gone")], None)
        });
        assert_eq!(prepared.status(), StatusCode::OK);
        let error = collect(prepared.into_parts().2).unwrap_err();
        assert_eq!(error.to_string(), "disk gone");
    }

    #[test]
    fn extensions_and_debug_forms() {
        let app = app_fn(|_, start: StartResponse| async move {
            let mut response = start
                .start(StatusCode::OK, HeaderMap::new())
                .body(Full::new("hi"));
            response.extensions_mut().insert(7u8);
            Ok(response)
        });
        let mut prepared = block_on(prepare(&app, environ_of(Request::get("/"))));
        assert_eq!(prepared.extensions().get::<u8>(), Some(&7));
        assert_eq!(prepared.extensions_mut().remove::<u8>(), Some(7));
        assert!(prepared.extensions().is_empty());
        assert_eq!(
            format!("{prepared:?}"),
            "Prepared { status: 200, headers: {}, content_length: Some(2), failure: None, .. }"
        );
        let (_, _, body) = prepared.into_parts();
        assert_eq!(
            format!("{body:?}"),
            "ResponseBody { first: Some(2), streaming: true }"
        );
    }

    #[test]
    fn bodiless_statuses_refuse_bytes() {
        for status in [
            StatusCode::NO_CONTENT,
            StatusCode::RESET_CONTENT,
            StatusCode::NOT_MODIFIED,
        ] {
            // A body that announces bytes is refused on its head, without a poll.
            let announced = prepared(Request::get("/"), status, &[], || {
                Chunks(vec![Err("polled")], Some(1))
            });
            let failure = announced.failure().unwrap().to_string();
            assert!(failure.starts_with("app broke REQ-RESP-6"), "{failure}");
            let prepared = prepared(Request::get("/"), status, &[], || {
                Chunks(vec![Ok("x")], None)
            });
            let failure = prepared.failure().unwrap().to_string();
            assert!(failure.starts_with("app broke REQ-RESP-6"), "{failure}");
            let prepared = prepared_ok(status);
            assert!(prepared.failure().is_none());
            assert_eq!(prepared.content_length(), None);
        }
    }

    fn prepared_ok(status: StatusCode) -> Prepared<StreamBody<Chunks>> {
        prepared(Request::get("/"), status, &[], || {
            StreamBody::new(Chunks(vec![Ok("")], None))
        })
    }

    #[test]
    fn content_length_header_is_enforced_both_ways() {
        let long = prepared(
            Request::get("/"),
            StatusCode::OK,
            &[("content-length", "2")],
            || Chunks(vec![Ok("a"), Ok("bc")], None),
        );
        let error = collect(long.into_parts().2).unwrap_err();
        assert_eq!(
            error.to_string(),
            "REQ-RESP-5: the body yielded 3 bytes, more than the 2 of its Content-Length"
        );
        let short = prepared(
            Request::get("/"),
            StatusCode::OK,
            &[("content-length", "3")],
            || Chunks(vec![Ok("a")], None),
        );
        let error = collect(short.into_parts().2).unwrap_err();
        assert_eq!(
            error.to_string(),
            "REQ-RESP-5: the body ended after 1 bytes, 2 short of the 3 of its Content-Length"
        );
    }

    #[test]
    fn bytes_past_exactly_the_declared_length_fail_in_place_of_the_last_chunk() {
        let waker = crate::body::tests::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let (_, _, mut body) = prepared(
            Request::get("/"),
            StatusCode::OK,
            &[("content-length", "3")],
            || Chunks(vec![Ok("a"), Ok("bc"), Ok("d")], None),
        )
        .into_parts();
        assert!(
            matches!(Pin::new(&mut body).poll_next(&mut cx), Poll::Ready(Some(Ok(c))) if c == "a")
        );
        match Pin::new(&mut body).poll_next(&mut cx) {
            Poll::Ready(Some(Err(error))) => assert_eq!(
                error.to_string(),
                "REQ-RESP-5: the body yielded 4 bytes, more than the 3 of its Content-Length"
            ),
            other => panic!("expected the excess as an error, got {other:?}"),
        }
        assert!(body.is_end_stream());
        // Before anything went out, the excess is a failure of the answer: a 500.
        let prepared = prepared(
            Request::get("/"),
            StatusCode::OK,
            &[("content-length", "1")],
            || Chunks(vec![Ok("a"), Ok("b")], None),
        );
        assert_eq!(prepared.status(), StatusCode::INTERNAL_SERVER_ERROR);
        // A body that ends where its header said is complete without a poll after the end.
        let (_, _, mut body) = prepared_with_length(&["a", "bc"]).into_parts();
        assert!(
            matches!(Pin::new(&mut body).poll_next(&mut cx), Poll::Ready(Some(Ok(c))) if c == "a")
        );
        assert!(
            matches!(Pin::new(&mut body).poll_next(&mut cx), Poll::Ready(Some(Ok(c))) if c == "bc")
        );
        assert!(body.is_end_stream());
    }

    fn prepared_with_length(chunks: &'static [&'static str]) -> Prepared<Chunks> {
        prepared(
            Request::get("/"),
            StatusCode::OK,
            &[("content-length", "3")],
            move || Chunks(chunks.iter().map(|c| Ok(*c)).collect(), None),
        )
    }

    #[test]
    fn a_lying_body_length_is_caught_on_the_wire() {
        let prepared = prepared(Request::get("/"), StatusCode::OK, &[], || {
            Chunks(vec![Ok("a"), Ok("bc")], Some(2))
        });
        assert_eq!(prepared.content_length(), Some(2));
        let error = collect(prepared.into_parts().2).unwrap_err();
        assert!(error.to_string().starts_with("REQ-RESP-5"), "{error}");
    }

    #[test]
    fn panics_in_the_app_and_in_the_body_are_caught() {
        let app = app_fn(|environ: Environ, start: StartResponse| async move {
            if environ.path_info() == "/app" {
                panic!("app exploded");
            }
            let body = StreamBody::new(Exploding(false));
            Ok(start.start(StatusCode::OK, HeaderMap::new()).body(body))
        });
        let prepared = block_on(prepare(&app, environ_of(Request::get("/app"))));
        assert_eq!(
            prepared.failure().unwrap().to_string(),
            "app panicked: app exploded"
        );
        let prepared = block_on(prepare(&app, environ_of(Request::get("/body"))));
        assert_eq!(prepared.status(), StatusCode::OK);
        let error = collect(prepared.into_parts().2).unwrap_err();
        assert_eq!(error.to_string(), "body panicked: body exploded");
    }

    /// Never yields: a stream waiting for its first event.
    struct Waiting;

    impl Stream for Waiting {
        type Item = Result<Bytes, Error>;
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Pending
        }
    }

    impl Body for Waiting {}

    #[test]
    fn a_flushed_head_is_ready_before_the_first_chunk() {
        let app = app_fn(|_, start: StartResponse| async move {
            let mut response = start.start(StatusCode::OK, HeaderMap::new()).body(Waiting);
            response.extensions_mut().insert(FlushHead::new());
            Ok(response)
        });
        // Without the flush this would wait for a chunk that never comes.
        let prepared = block_on(prepare(&app, environ_of(Request::get("/events"))));
        assert_eq!(prepared.status(), StatusCode::OK);
        assert_eq!(prepared.content_length(), None);
        let (_, _, mut body) = prepared.into_parts();
        assert!(!body.is_end_stream());
        let waker = crate::body::tests::noop_waker();
        assert!(Pin::new(&mut body)
            .poll_next(&mut Context::from_waker(&waker))
            .is_pending());
    }

    #[test]
    fn trailers_go_through_announced_only_and_the_body_is_dropped_after_them() {
        let app = app_fn(|_, start: StartResponse| async move {
            let names = vec![http::HeaderName::from_static("x-sum")];
            let trailers = Box::pin(async {
                let mut fields = HeaderMap::new();
                fields.insert("x-sum", HeaderValue::from_static("3"));
                fields.insert("x-other", HeaderValue::from_static("4"));
                Ok(fields)
            });
            let body = crate::trailers::WithTrailers::new(Full::new("abc"), names, trailers);
            Ok(start.start(StatusCode::OK, HeaderMap::new()).body(body))
        });
        let (_, _, mut body) = block_on(prepare(&app, environ_of(Request::get("/")))).into_parts();
        assert_eq!(
            body.trailer_names(),
            [http::HeaderName::from_static("x-sum")]
        );
        assert!(!body.is_end_stream(), "the trailers are still to come");
        let waker = crate::body::tests::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            Pin::new(&mut body).poll_next(&mut cx),
            Poll::Ready(Some(Ok(_)))
        ));
        assert!(matches!(
            Pin::new(&mut body).poll_next(&mut cx),
            Poll::Ready(None)
        ));
        let Poll::Ready(Ok(Some(fields))) = Pin::new(&mut body).poll_trailers(&mut cx) else {
            panic!("expected the trailers");
        };
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields["x-sum"], "3");
        assert!(body.is_end_stream());
        assert!(body.trailer_names().is_empty(), "the app's body is dropped");
    }

    #[test]
    fn a_file_body_reaches_the_server_unread_with_its_length() {
        use crate::file::{FileBody, FileRange};
        let temp = crate::file::tests::Temp::new("prepare", b"0123456789");
        let range = || FileBody::new(FileRange::new(temp.open(), 3, 4).unwrap());
        let answer = prepared(Request::get("/"), StatusCode::OK, &[], range);
        assert!(answer.failure().is_none());
        assert_eq!(answer.content_length(), Some(4));
        let (_, _, body) = answer.into_parts();
        assert!(body.is_file());
        assert_eq!(body.content_length(), Some(4));
        assert!(!body.is_end_stream());
        // A server without its own way reads it through the body.
        assert_eq!(collect(body).unwrap().concat(), b"3456");
        // One that takes it gets the range; the body is then empty.
        let (_, _, mut body) =
            prepared_file(Request::get("/"), &[("content-length", "4")], range).into_parts();
        let taken = Pin::new(&mut body).take_file().unwrap();
        assert_eq!((taken.offset(), taken.len()), (3, 4));
        assert!(body.is_end_stream() && !body.is_file());
        // HEAD: nothing to send, the length announced.
        let head = prepared_file(Request::head("/"), &[], range);
        assert_eq!(head.content_length(), Some(4));
        assert!(!head.into_parts().2.is_file());
        // An empty range is an empty body.
        let empty = prepared(Request::get("/"), StatusCode::OK, &[], || {
            FileBody::new(FileRange::new(temp.open(), 10, 0).unwrap())
        });
        assert_eq!(empty.content_length(), Some(0));
        assert!(empty.into_parts().2.is_end_stream());
    }

    fn prepared_file(
        request: Builder,
        headers: &[(&'static str, &'static str)],
        body: impl Fn() -> crate::file::FileBody + Send + Sync,
    ) -> Prepared<crate::file::FileBody> {
        prepared(request, StatusCode::OK, headers, body)
    }

    /// A body that says it has `said` bytes and hands out a range of `range` bytes.
    struct Disagreeing {
        said: Option<u64>,
        range: Option<crate::file::FileRange>,
    }

    impl Stream for Disagreeing {
        type Item = Result<Bytes, Error>;
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready(None)
        }
    }

    impl Body for Disagreeing {
        fn content_length(&self) -> Option<u64> {
            self.said
        }
        fn take_file(mut self: Pin<&mut Self>) -> Option<crate::file::FileRange> {
            self.range.take()
        }
    }

    #[test]
    fn a_file_range_the_answer_disagrees_with_is_a_500() {
        use crate::file::FileRange;
        let temp = crate::file::tests::Temp::new("disagree", b"0123456789");
        let range = || Some(FileRange::new(temp.open(), 0, 5).unwrap());
        type Case = (
            StatusCode,
            &'static [(&'static str, &'static str)],
            Option<u64>,
            &'static str,
        );
        let cases: [Case; 3] = [
            (StatusCode::OK, &[], Some(7), "app broke REQ-FILE-1: take_file() handed out a range of 5 bytes, but content_length() said 7"),
            (StatusCode::OK, &[("content-length", "6")], None, "app broke REQ-RESP-5: Content-Length is 6 but the body is a file range of 5 bytes"),
            (StatusCode::NO_CONTENT, &[], None, "app broke REQ-RESP-6: a 204 response must have an empty body, got a file range of 5 bytes"),
        ];
        for (status, headers, said, failure) in cases {
            let answer = prepared(Request::get("/"), status, headers, || Disagreeing {
                said,
                range: range(),
            });
            assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(answer.failure().unwrap().to_string(), failure);
        }
    }

    #[test]
    fn map_file_puts_the_servers_way_in_and_holds_it_to_the_length() {
        use crate::file::{FileBody, FileRange};
        let temp = crate::file::tests::Temp::new("map", b"0123456789");
        let file = || FileBody::new(FileRange::new(temp.open(), 2, 3).unwrap());
        let (_, _, mut body) = prepared(Request::get("/"), StatusCode::OK, &[], file).into_parts();
        body.map_file(|range| {
            assert_eq!((range.offset(), range.len()), (2, 3));
            BoxBody::new(Full::new("abc"))
        });
        assert_eq!(collect(body).unwrap().concat(), b"abc");
        let (_, _, mut body) = prepared(Request::get("/"), StatusCode::OK, &[], file).into_parts();
        body.map_file(|_| BoxBody::new(Full::new("toolong")));
        let error = collect(body).unwrap_err();
        assert!(error.to_string().starts_with("REQ-RESP-5"), "{error}");
        // A body that is no file is left alone.
        let (_, _, mut body) =
            prepared(Request::get("/"), StatusCode::OK, &[], || Full::new("x")).into_parts();
        body.map_file(|_| unreachable!("not a file"));
        assert_eq!(collect(body).unwrap().concat(), b"x");
    }

    #[test]
    fn a_101_that_takes_an_offer_is_confirmed_and_a_broken_one_is_not() {
        use crate::upgrade::offer;
        let asking = || {
            let mut headers = HeaderMap::new();
            headers.insert("connection", HeaderValue::from_static("upgrade"));
            headers.insert("upgrade", HeaderValue::from_static("echo"));
            headers
        };
        for (extra, switched) in [(None, true), (Some(("content-length", "0")), false)] {
            let (upgrade, acceptance) =
                offer(&Method::GET, http::Version::HTTP_11, &asking()).unwrap();
            let app = app_fn(move |_, start: StartResponse| {
                let mut headers = HeaderMap::new();
                if let Some((name, value)) = extra {
                    headers.insert(name, HeaderValue::from_static(value));
                }
                let response = upgrade.clone().accept(start, "echo", headers, |_| async {});
                async move { Ok(response) }
            });
            let answer = block_on(prepare(&app, environ_of(Request::get("/"))));
            if switched {
                assert_eq!(answer.status(), StatusCode::SWITCHING_PROTOCOLS);
                assert_eq!(answer.headers()["upgrade"], "echo");
                assert!(answer.into_parts().2.is_end_stream());
                assert!(acceptance.take_handler().is_some());
            } else {
                assert_eq!(
                    answer.failure().unwrap().to_string(),
                    "app broke REQ-UPGRADE-2: a 101 has no Content-Length and an empty body"
                );
                assert!(acceptance.is_accepted() && acceptance.take_handler().is_none());
            }
        }
    }

    /// Yields one chunk, then panics.
    struct Exploding(bool);

    impl Stream for Exploding {
        type Item = Result<Bytes, Error>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            assert!(!self.0, "body exploded");
            self.0 = true;
            Poll::Ready(Some(Ok(Bytes::from_static(b"x"))))
        }
    }
}
