//! [`Lint`]: a middleware that checks the specification on live traffic, in both directions.
//!
//! Put it between a server and an app, and every rule that can be checked while requests flow
//! is checked: toward the **server** in front of it, on the environ and request body the server
//! hands over; toward the **app** behind it, on the status, headers and body the app answers
//! with, and on how the app reads the request body. A broken rule is a [`Violation`] that names
//! its requirement ID; [`RULES`] lists every ID the lint checks.
//!
//! By default ([`Lint::new`]) a violation panics, which is what a test or a debug build wants:
//! the panic message starts with the requirement ID. [`Lint::with_hook`] hands each violation
//! to a function instead, to log or collect them.
//!
//! The lint wraps the request body and the response body in a small struct each, and does no
//! other work than a few comparisons per request and per chunk. Wrapping the request body costs
//! the one allocation [`Input::from_body`] makes. It is plain generic code: an app that does not
//! use it pays nothing.
//!
//! ```
//! use rwgi::app::{app_fn, AppExt};
//! use rwgi::body::Full;
//! use rwgi::http::{header, HeaderMap, HeaderValue, StatusCode};
//! use rwgi::lint::Lint;
//! use rwgi_conformance::test_client::{block_on, TestRequest};
//! use std::sync::{Arc, Mutex};
//!
//! let app = app_fn(|_, start: rwgi::StartResponse| async move {
//!     let mut headers = HeaderMap::new();
//!     headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
//!     Ok(start.start(StatusCode::OK, headers).body(Full::new("hi")))
//! });
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let log = Arc::clone(&seen);
//! let linted = app.with(Lint::with_hook(move |violation| {
//!     log.lock().unwrap().push(violation.requirement());
//! }));
//! block_on(TestRequest::get("/").send(&linted));
//! assert_eq!(*seen.lock().unwrap(), ["REQ-RESP-2"]);
//! ```

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, Method, StatusCode, Version};

use crate::body::{Body, Mismatch, Promise};
use crate::file::FileRange;
use crate::middleware::Middleware;
use crate::response::{content_length, is_bodiless};
use crate::upgrade::{asks_for_upgrade, Upgrade};
use crate::violation::Violation;
use crate::{App, Environ, Error, Input, Response, StartResponse};

/// Every requirement the lint checks, in spec order.
///
/// Toward the server: REQ-ENV-7 (header names and values as received),
/// REQ-INPUT-1 and REQ-INPUT-2 (the request body yields exactly its declared length, and a
/// short one ends with an error), REQ-INPUT-3 (the declared length matches the headers),
/// REQ-BODY-2 (the response body is not polled again after it ended or failed) and
/// REQ-UPGRADE-1 (an upgrade offer only for a request that asked for one).
///
/// Toward the middleware in front, when another lint is in front of that: REQ-CAP-2 (the
/// environ's extensions reach this lint as the outer lint passed them on, not replaced or
/// cleared on the way). Put a middleware between two lints to check that it passes the
/// server's capabilities on.
///
/// Toward the app: REQ-INPUT-6 (the request body is not polled after it ended or failed),
/// REQ-START-1 (the response comes from the callback the app received), REQ-RESP-1 to
/// REQ-RESP-6 (the response head, and the body bytes against `Content-Length` and bodiless
/// statuses), REQ-BODY-4 (`Body::content_length` is exact), REQ-FILE-1 (a file range handed
/// out is what the body would have yielded) and REQ-UPGRADE-2 (a `101` takes an offer the
/// right way).
///
/// The lint's body passes [`Body::take_file`] on to the app's body, so a file body stays a
/// file for the server behind it.
///
/// The lint only observes: it polls the app's body and the server's request body exactly when
/// its own caller polls, never after they ended, so what the server sees is what the app sent.
///
/// A `HEAD` or `304` answer's body is not held to its `Content-Length`, which may describe the
/// `GET` answer; servers do not send that body.
pub const RULES: &[&str] = &[
    "REQ-ENV-7",
    "REQ-INPUT-1",
    "REQ-INPUT-2",
    "REQ-INPUT-3",
    "REQ-INPUT-6",
    "REQ-START-1",
    "REQ-RESP-1",
    "REQ-RESP-2",
    "REQ-RESP-3",
    "REQ-RESP-4",
    "REQ-RESP-5",
    "REQ-RESP-6",
    "REQ-BODY-2",
    "REQ-BODY-4",
    "REQ-CAP-2",
    "REQ-FILE-1",
    "REQ-UPGRADE-1",
    "REQ-UPGRADE-2",
];

/// What the lint does with a violation.
#[derive(Clone)]
enum Reaction {
    Panic,
    Hook(Arc<dyn Fn(&Violation) + Send + Sync>),
}

impl Reaction {
    fn raise(&self, violation: Violation) {
        match self {
            Reaction::Panic => panic!("rwgi lint: {violation}"),
            Reaction::Hook(hook) => hook(&violation),
        }
    }
}

impl fmt::Debug for Reaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reaction::Panic => "Panic",
            Reaction::Hook(_) => "Hook",
        })
    }
}

/// The lint middleware: checks every run-time rule of the specification on the traffic that
/// passes through it (see the [module documentation](self) and [`RULES`]).
///
/// ```
/// use rwgi::app::{app_fn, AppExt};
/// use rwgi::lint::Lint;
/// use rwgi_conformance::test_client::{block_on, TestRequest};
///
/// let app = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(rwgi::http::StatusCode::CONTINUE, Default::default()).body(rwgi::body::Empty))
/// });
/// let linted = app.with(Lint::new());
/// let response = block_on(TestRequest::get("/").send(&linted));
/// // The lint panics; behind a server that becomes a 500 whose log line names the rule.
/// assert_eq!(response.status(), 500);
/// assert!(response.failure().unwrap().starts_with("app panicked: rwgi lint: REQ-RESP-1"));
/// ```
#[derive(Clone, Debug)]
pub struct Lint {
    reaction: Reaction,
}

impl Lint {
    /// A lint that panics on the first violation, with the requirement ID at the start of the
    /// message: for tests and debug builds.
    ///
    /// Behind a server that catches panics (REQ-ERR-4), a violation in the app's call or its
    /// body turns that response into a `500` or an aborted connection.
    pub fn new() -> Self {
        Lint {
            reaction: Reaction::Panic,
        }
    }

    /// A lint that hands every violation to `hook` and lets the traffic go on unchanged.
    pub fn with_hook<F>(hook: F) -> Self
    where
        F: Fn(&Violation) + Send + Sync + 'static,
    {
        Lint {
            reaction: Reaction::Hook(Arc::new(hook)),
        }
    }
}

impl Default for Lint {
    fn default() -> Self {
        Lint::new()
    }
}

impl<A: App> Middleware<A> for Lint {
    type App = LintApp<A>;

    fn wrap(&self, inner: A) -> LintApp<A> {
        LintApp {
            inner,
            reaction: self.reaction.clone(),
        }
    }
}

/// An app wrapped by [`Lint`].
///
/// ```
/// use rwgi::lint::{Lint, LintApp};
/// use rwgi::Middleware;
///
/// # let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #     Ok(start.start(Default::default(), Default::default()).body(rwgi::body::Empty))
/// # });
/// let linted: LintApp<_> = Lint::new().wrap(app);
/// let response = rwgi_conformance::test_client::block_on(rwgi_conformance::test_client::TestRequest::get("/").send(&linted));
/// assert_eq!(response.status(), 200);
/// ```
#[derive(Debug)]
pub struct LintApp<A> {
    inner: A,
    reaction: Reaction,
}

impl<A: App> App for LintApp<A> {
    type Body = LintBody<A::Body>;

    async fn call(
        &self,
        mut environ: Environ,
        mut start: StartResponse,
    ) -> Result<Response<LintBody<A::Body>>, Error> {
        for violation in check_environ(&environ) {
            self.reaction.raise(violation);
        }
        let method = environ.method().clone();
        // A 101 is allowed exactly for a request that asked for an upgrade, with an offer.
        let offered = environ.extensions().get::<Upgrade>().is_some()
            && asks_for_upgrade(environ.method(), environ.version(), environ.headers());
        let input = LintInput::new(environ.take_input(), self.reaction.clone());
        // Put back as it is: the lint changes nothing the app sees, not even the headers of a
        // server whose input disagrees with them (reported above).
        environ.input = Input::from_body(input);

        // REQ-START-1: the answer must come from the callback handed inward, which carries this
        // call's mark in its extensions; an outer lint's mark is put back afterwards.
        let mark = Mark::next();
        let outer = start.extensions_mut().insert(mark);
        // REQ-CAP-2: behind another lint (whose mark came in with the callback), the environ
        // must bring that lint's mark too; a middleware in between that replaced or cleared the
        // environ's extensions lost it, and every capability the server offered with it.
        let passed = environ.extensions_mut().insert(EnvironMark(mark));
        if let Some(outer) = outer {
            if passed != Some(EnvironMark(outer)) {
                self.reaction.raise(Violation::new(
                    "REQ-CAP-2",
                    "the environ's extensions were replaced or cleared on the way in, losing the \
                     capabilities the server offered (a middleware removes one only on purpose, \
                     by its type)",
                ));
            }
        }
        let mut response = self.inner.call(environ, start).await?;
        if response.extensions_mut().remove::<Mark>() != Some(mark) {
            self.reaction.raise(Violation::new(
                "REQ-START-1",
                "the response was not made from the callback this call received (a callback made \
                 with StartResponse::new, or extensions replaced on the way out)",
            ));
        }
        if let Some(outer) = outer {
            response.extensions_mut().insert(outer);
        }

        let status = response.status();
        let mut head = response.check(&method);
        if head.is_ok() && status == StatusCode::SWITCHING_PROTOCOLS && !offered {
            head = Err(Violation::new(
                "REQ-RESP-1",
                "a 101 answers only a request that asked for an upgrade and came with an offer (REQ-UPGRADE-1); this one did not",
            ));
        }
        // A head whose Content-Length is malformed or already known to be wrong is reported
        // once, here, rather than again when the bytes are counted.
        let length_reported =
            matches!(&head, Err(v) if matches!(v.requirement(), "REQ-RESP-3" | "REQ-RESP-5"));
        if let Err(violation) = head {
            self.reaction.raise(violation);
        }
        let sent = method != Method::HEAD && status != StatusCode::NOT_MODIFIED;
        let declared = content_length(response.headers())
            .ok()
            .flatten()
            .filter(|_| sent && !length_reported)
            .map(Promise::new);
        let reaction = self.reaction.clone();
        Ok(response.map_body(|inner| {
            let mut body = LintBody {
                inner,
                reporter: Reporter::new(reaction),
                status,
                produced: 0,
                declared,
                announced: None,
                state: BodyState::Streaming,
            };
            body.check_bodiless_length();
            body
        }))
    }
}

/// The mark a lint puts in the callback it hands inward, unique per call (REQ-START-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mark(u64);

impl Mark {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Mark(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The mark a lint puts in the environ it hands inward, the same as its callback's, so that a
/// lint further in can tell that the extensions came through (REQ-CAP-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EnvironMark(Mark);

/// The environ-side rules, checked when the server hands the request over.
fn check_environ(environ: &Environ) -> impl Iterator<Item = Violation> {
    [
        check_headers(environ),
        check_declared_length(environ),
        check_upgrade_offer(environ),
    ]
    .into_iter()
    .flatten()
}

/// REQ-UPGRADE-1: an upgrade offer only for an HTTP/1.1 request that asked for one.
fn check_upgrade_offer(environ: &Environ) -> Option<Violation> {
    environ.extensions().get::<Upgrade>()?;
    (!asks_for_upgrade(environ.method(), environ.version(), environ.headers())).then(|| {
        Violation::new(
            "REQ-UPGRADE-1",
            format!(
                "an upgrade offer only comes with an HTTP/1.1 request with Upgrade and Connection: upgrade, got one for an {} request {}",
                crate::cgi::server_protocol(environ.version()),
                if environ.headers().contains_key(http::header::UPGRADE) {
                    "without the upgrade option in Connection"
                } else {
                    "without an Upgrade header"
                }
            ),
        )
    })
}

/// REQ-ENV-7: header names as received (not CGI keys turned back into headers) and values
/// without the surrounding white space that is not part of a field value (RFC 9112 §5).
fn check_headers(environ: &Environ) -> Option<Violation> {
    environ.headers().iter().find_map(|(name, value)| {
        if name.as_str().starts_with("http_") {
            return Some(Violation::new(
                "REQ-ENV-7",
                format!("headers must reach the app under their own names, got the CGI-style name `{name}`"),
            ));
        }
        let bytes = value.as_bytes();
        let padded = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
        (padded(bytes.first()) || padded(bytes.last())).then(|| {
            Violation::new(
                "REQ-ENV-7",
                format!("the value of `{name}` must not keep surrounding white space, got {value:?}"),
            )
        })
    })
}

/// REQ-INPUT-3: before any read, the request body's length is the `Content-Length` header,
/// unknown for a chunked body, and zero for an HTTP/1 request with neither.
fn check_declared_length(environ: &Environ) -> Option<Violation> {
    let headers = environ.headers();
    let got = environ.input().content_length();
    let (expected, why) = if headers.contains_key(TRANSFER_ENCODING) {
        (None, "a chunked body")
    } else if let Ok(Some(length)) = content_length(headers) {
        (Some(length), "the Content-Length header")
    } else if !headers.contains_key(CONTENT_LENGTH) && environ.version() <= Version::HTTP_11 {
        (Some(0), "a request without a body")
    } else {
        return None;
    };
    (got != expected).then(|| {
        Violation::new(
            "REQ-INPUT-3",
            format!("Input::content_length() must be {expected:?} for {why}, got {got:?}"),
        )
    })
}

/// How a wrapped body or input reports: its reaction, and the rules (bits) it already
/// reported, each at most once.
struct Reporter {
    reaction: Reaction,
    reported: u8,
}

impl Reporter {
    fn new(reaction: Reaction) -> Self {
        Reporter {
            reaction,
            reported: 0,
        }
    }

    /// Reports the violation unless `rule` was reported already.
    fn once(&mut self, rule: u8, violation: impl FnOnce() -> Violation) {
        if self.reported & rule == 0 {
            self.reported |= rule;
            self.reaction.raise(violation());
        }
    }

    /// A poll of a stream that already stopped as `state`: reported once as `rule`, with
    /// `violation` given how the stream stopped.
    fn polled_after_stop(
        &mut self,
        state: BodyState,
        rule: u8,
        violation: impl FnOnce(&'static str) -> Violation,
    ) {
        self.once(rule, || violation(state.stopped()));
    }
}

const RESP_5: u8 = 1;
const RESP_6: u8 = 2;
const BODY_4: u8 = 4;
const BODY_2: u8 = 8;
const INPUT_1: u8 = 16;
const INPUT_6: u8 = 32;
const FILE_1: u8 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyState {
    Streaming,
    Ended,
    Failed,
}

impl BodyState {
    /// How a body that is no longer streaming stopped, for violation messages.
    fn stopped(self) -> &'static str {
        if self == BodyState::Ended {
            "ended"
        } else {
            "failed"
        }
    }
}

/// The request body as the linted app reads it.
struct LintInput {
    inner: Input,
    reporter: Reporter,
    declared: Option<u64>,
    read: u64,
    state: BodyState,
}

impl LintInput {
    fn new(inner: Input, reaction: Reaction) -> Self {
        LintInput {
            declared: inner.content_length(),
            inner,
            reporter: Reporter::new(reaction),
            read: 0,
            state: BodyState::Streaming,
        }
    }
}

impl Stream for LintInput {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.state != BodyState::Streaming {
            this.reporter.polled_after_stop(this.state, INPUT_6, |how| {
                Violation::new(
                    "REQ-INPUT-6",
                    format!("the app polled the request body again after it {how}"),
                )
            });
            // Shield the server's stream from the extra poll.
            return Poll::Ready(None);
        }
        let item = match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        match &item {
            Some(Ok(chunk)) => {
                this.read += chunk.len() as u64;
                if let Some(declared) = this.declared.filter(|&n| this.read > n) {
                    let read = this.read;
                    this.reporter.once(INPUT_1, || {
                        Violation::new(
                            "REQ-INPUT-1",
                            format!(
                                "the request body declared {declared} bytes but yielded {read}"
                            ),
                        )
                    });
                }
            }
            Some(Err(_)) => this.state = BodyState::Failed,
            None => {
                this.state = BodyState::Ended;
                if let Some(declared) = this.declared.filter(|&n| this.read < n) {
                    this.reporter.reaction.raise(Violation::new(
                        "REQ-INPUT-2",
                        format!(
                            "a request body cut short must end with an error; it declared {declared} bytes and ended after {}",
                            this.read
                        ),
                    ));
                }
            }
        }
        Poll::Ready(item)
    }
}

impl Body for LintInput {
    fn content_length(&self) -> Option<u64> {
        match self.state {
            BodyState::Streaming => self.inner.content_length(),
            BodyState::Ended | BodyState::Failed => Some(0),
        }
    }

    fn trailer_names(&self) -> &[HeaderName] {
        self.inner.trailer_names()
    }

    fn poll_trailers(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        Pin::new(&mut self.inner).poll_trailers(cx)
    }
}

/// The response body of a [`LintApp`]: the app's body, with its bytes counted and its end
/// checked.
///
/// It only observes: every poll reaches the app's body exactly when the caller polls, and once
/// the app's body ended or failed it is not polled again.
///
/// ```
/// use rwgi::body::{Body, Full};
/// use rwgi::lint::Lint;
/// use rwgi::{App, Middleware, StartResponse};
///
/// # let app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #     Ok(start.start(Default::default(), Default::default()).body(Full::new("four")))
/// # });
/// let linted = Lint::new().wrap(app);
/// let environ = rwgi_conformance::test_client::TestRequest::get("/").into_environ();
/// let response = rwgi_conformance::test_client::block_on(linted.call(environ, StartResponse::new())).unwrap();
/// // The lint's body keeps the app's promise about its length.
/// assert_eq!(response.body().content_length(), Some(4));
/// ```
pub struct LintBody<B> {
    inner: B,
    reporter: Reporter,
    status: StatusCode,
    produced: u64,
    /// The `Content-Length` the bytes must match (REQ-RESP-5), when the body is sent.
    declared: Option<Promise>,
    /// What `content_length()` announced (REQ-BODY-4).
    announced: Option<Promise>,
    state: BodyState,
}

impl<B> fmt::Debug for LintBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LintBody")
            .field("produced", &self.produced)
            .field("declared", &self.declared.map(|promise| promise.promised()))
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<B: Body + Unpin> LintBody<B> {
    /// REQ-RESP-6 before any poll: a 204 or 304 whose body announces bytes.
    fn check_bodiless_length(&mut self) {
        let announced = self.inner.content_length();
        if let Some(length) = announced.filter(|&n| n > 0 && is_bodiless(self.status)) {
            let status = self.status.as_u16();
            self.reporter.once(RESP_6, || {
                Violation::new(
                    "REQ-RESP-6",
                    format!(
                        "a {status} response must have an empty body, got one of {length} bytes"
                    ),
                )
            });
        }
    }

    /// REQ-BODY-4: every `Some` the body's `content_length()` gives must point at the same end.
    fn observe_length(&mut self) {
        let Some(rest) = self.inner.content_length() else {
            return;
        };
        let now = Promise::after(self.produced, rest);
        if let Some(before) = self
            .announced
            .filter(|before| before.promised() != now.promised())
        {
            let (before, produced) = (before.promised(), self.produced);
            self.reporter.once(BODY_4, || {
                Violation::new(
                    "REQ-BODY-4",
                    format!("content_length() announced {before} bytes in all, then {rest} more after {produced}"),
                )
            });
        }
        self.announced = Some(now);
    }

    fn on_chunk(&mut self, len: usize) {
        self.produced += len as u64;
        if len > 0 && is_bodiless(self.status) {
            let status = self.status.as_u16();
            self.reporter.once(RESP_6, || {
                Violation::new(
                    "REQ-RESP-6",
                    format!(
                        "a {status} response must have an empty body, got a chunk of {len} bytes"
                    ),
                )
            });
        }
        self.count(|promise| promise.take(len));
    }

    fn on_end(&mut self) {
        self.count(|promise| promise.end());
    }

    /// Applies `step` to both promises, reporting each broken one once.
    fn count(&mut self, step: impl Fn(&mut Promise) -> Result<(), Mismatch>) {
        if let Some(Err(mismatch)) = self.declared.as_mut().map(&step) {
            self.reporter.once(RESP_5, || {
                mismatch.violation("REQ-RESP-5", "Content-Length")
            });
        }
        if let Some(Err(mismatch)) = self.announced.as_mut().map(&step) {
            self.reporter.once(BODY_4, || {
                mismatch.violation("REQ-BODY-4", "content_length()")
            });
        }
    }
}

impl<B: Body + Unpin> Stream for LintBody<B> {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.state != BodyState::Streaming {
            this.reporter.polled_after_stop(this.state, BODY_2, |how| {
                Violation::new(
                    "REQ-BODY-2",
                    format!("the response body was polled again after it {how}; its caller must stop polling and drop it"),
                )
            });
            // The app's body is not polled again: it may panic when polled after its end.
            return Poll::Ready(None);
        }
        this.observe_length();
        let item = match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        match &item {
            Some(Ok(chunk)) => this.on_chunk(chunk.len()),
            Some(Err(_)) => this.state = BodyState::Failed,
            None => {
                this.state = BodyState::Ended;
                this.on_end();
            }
        }
        Poll::Ready(item)
    }
}

impl<B: Body + Unpin> Body for LintBody<B> {
    fn content_length(&self) -> Option<u64> {
        match self.state {
            BodyState::Streaming => self.inner.content_length(),
            BodyState::Ended | BodyState::Failed => Some(0),
        }
    }

    fn trailer_names(&self) -> &[HeaderName] {
        self.inner.trailer_names()
    }

    fn poll_trailers(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        Pin::new(&mut self.inner).poll_trailers(cx)
    }

    /// Passes the call on, and checks REQ-FILE-1: the range is what the body would still have
    /// yielded, and the body is empty afterwards. The range's bytes count as produced.
    fn take_file(self: Pin<&mut Self>) -> Option<FileRange> {
        let this = self.get_mut();
        if this.state != BodyState::Streaming {
            return None;
        }
        let before = this.inner.content_length();
        let range = Pin::new(&mut this.inner).take_file()?;
        let len = range.len();
        let after = this.inner.content_length();
        if before != Some(len) || after != Some(0) {
            this.reporter.once(FILE_1, || {
                Violation::new(
                    "REQ-FILE-1",
                    format!(
                        "take_file() handed out a range of {len} bytes; content_length() said {before:?} before (expected Some({len})) and {after:?} after (expected Some(0))"
                    ),
                )
            });
        }
        this.announced = Some(Promise::after(this.produced, len));
        this.on_chunk(usize::try_from(len).unwrap_or(usize::MAX));
        Some(range)
    }
}
