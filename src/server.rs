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
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode};

use crate::body::{Body, Mismatch, Promise};
use crate::response::{check_head_declared, http_response, is_bodiless};
use crate::violation::Violation;
use crate::{App, Environ, Error, Response, StartResponse};

/// Calls `app` for one request and gets its answer ready to send.
///
/// It runs the app, checks the head ([`check_head`](crate::response::check_head)), drops the body of answers that have
/// none, and polls the body up to its first non-empty chunk. When any of this fails (the app
/// returns an error or panics, the head breaks a rule, the body fails or panics before its
/// first chunk) the result is a plain `500 Internal Server Error` and
/// [`Prepared::failure`] says why, for the server's log. Nothing has been sent at that point.
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
                let body = ResponseBody::empty();
                break 'prepared Prepared::ready(status, headers, extensions, body, None);
            }
            let first_len = first.as_ref().map_or(0, |chunk| chunk.len() as u64);
            let advertised = guarded.length().map(|rest| first_len + rest);
            let body = ResponseBody {
                first,
                rest: (!guarded.is_done()).then_some(guarded),
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
    let (status, headers, extensions, body) = response.into_all();
    let length = body.content_length();
    let declared = match check_head_declared(head, status, &headers, length) {
        Ok(declared) => declared,
        Err(violation) => return Checked::Done(Prepared::failed(Failure::Violation(violation))),
    };
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
        return Checked::Done(Prepared::ready(
            status,
            headers,
            extensions,
            ResponseBody::empty(),
            advertised,
        ));
    }
    Checked::Stream(Streaming {
        status,
        headers,
        extensions,
        guarded: Guarded::new(body, declared, length),
        bodiless,
    })
}

/// What the head checks leave to do: stream a body, or nothing more.
enum Checked<B> {
    Stream(Streaming<B>),
    Done(Prepared<B>),
}

/// An answer whose body is to be polled: its head, its guarded body, and whether its status
/// forbids body bytes (so a first chunk is a violation).
struct Streaming<B> {
    status: StatusCode,
    headers: HeaderMap,
    extensions: Extensions,
    guarded: Guarded<B>,
    bodiless: bool,
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

    fn failed(failure: Failure) -> Self {
        Prepared {
            failure: Some(Box::new(failure)),
            ..Prepared::plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
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

    /// Why the app's answer was replaced by a `500`, if it was.
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
    rest: Option<Guarded<B>>,
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
                rest.done || (!rest.declared && rest.body.content_length() == Some(0))
            })
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
        let polled = Pin::new(rest).poll_next(cx);
        if let Poll::Ready(None | Some(Err(_))) = polled {
            // Dropping the app's body now is its close() (REQ-SRV-8).
            self.rest = None;
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
