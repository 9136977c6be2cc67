//! [`AccessLog`]: middleware that records one line per request, when its response is over.
//!
//! A response is over only when its body is: the body may stream for minutes after the app
//! returned, fail halfway, or be dropped because the client went away. So the middleware wraps
//! the body, counts the bytes it yields, and emits the record when the body ends, fails or is
//! dropped, whichever comes first (WSGI's `close()` is `Drop` here, REQ-BODY-5).
//!
//! A server that offers the response outcome (spec §14.4) knows more: what it really handed
//! to the connection, its own answers in the app's place (a `503` after its request timeout),
//! and requests whose client left before the app answered. When the environ carries a
//! [`ResponseFinished`] handle, the record comes from the server's outcome instead, once.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use rwgi::body::Body;
use rwgi::http::{HeaderMap, HeaderName, Method, StatusCode};
use rwgi::outcome::{Ending, ResponseFinished};
use rwgi::{App, Environ, Error, Middleware, Response, StartResponse};

/// How a response ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The body was sent to its end, or had nothing to send (`HEAD`, `204`, `304`).
    Complete,
    /// The app returned an error, or its body failed while being sent.
    Failed,
    /// The body was dropped before its end: the client went away.
    Dropped,
}

/// One request, as logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The request method.
    pub method: Method,
    /// The request target as sent, path and query.
    pub target: String,
    /// The status the app answered with; `500` when it returned an error. With the server's
    /// outcome, the status the server sent, and `499` (nginx's "client closed request") when
    /// the client left before any was.
    pub status: StatusCode,
    /// The body bytes the app's body yielded; with the server's outcome, the bytes the server
    /// handed to the connection.
    pub bytes_sent: u64,
    /// From the call of the app to the end of the response.
    pub duration: Duration,
    /// How the response ended. With the server's outcome, a request the server gave up
    /// waiting for (its `503`) is [`Outcome::Failed`].
    pub outcome: Outcome,
}

/// The status logged for a request whose client left before any status was sent.
const CLIENT_CLOSED: StatusCode = match StatusCode::from_u16(499) {
    Ok(status) => status,
    Err(_) => StatusCode::BAD_REQUEST,
};

impl fmt::Display for Record {
    /// `GET /hello?x=1 200 13 1.250ms`, plus `failed` or `dropped` when it did not complete.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.duration.as_secs_f64() * 1000.0;
        write!(
            f,
            "{} {} {} {} {millis:.3}ms",
            self.method,
            self.target,
            self.status.as_u16(),
            self.bytes_sent
        )?;
        match self.outcome {
            Outcome::Complete => Ok(()),
            Outcome::Failed => f.write_str(" failed"),
            Outcome::Dropped => f.write_str(" dropped"),
        }
    }
}

type Sink = Arc<dyn Fn(&Record) + Send + Sync>;

/// Middleware that hands a [`Record`] of every request to a sink once its response is over.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use rwgi::app::app_fn;
/// use rwgi::body::Full;
/// use rwgi::AppExt;
/// use rwgi_conformance::test_client::{block_on, TestRequest};
/// use rwgi_middleware::AccessLog;
///
/// let hello = app_fn(|_, start: rwgi::StartResponse| async move {
///     Ok(start.start(Default::default(), Default::default()).body(Full::new("hello\n")))
/// });
/// // One line per request on stderr: `GET / 200 6 0.012ms`.
/// let _logged = hello.clone().with(AccessLog::new());
/// // Or anything else: here, count the bytes sent.
/// let sent = Arc::new(AtomicU64::new(0));
/// let counter = Arc::clone(&sent);
/// let app = hello.with(AccessLog::with_sink(move |record| {
///     counter.fetch_add(record.bytes_sent, Ordering::Relaxed);
/// }));
/// block_on(TestRequest::get("/").send(&app));
/// assert_eq!(sent.load(Ordering::Relaxed), 6);
/// ```
///
/// The body keeps streaming chunk by chunk (REQ-MW-2) and keeps its `content_length`, so the
/// server frames the response as it would without the log.
#[derive(Clone)]
pub struct AccessLog {
    sink: Sink,
}

impl AccessLog {
    /// Logs each request as one line on stderr (see [`Record`]'s `Display`).
    pub fn new() -> Self {
        AccessLog::with_sink(|record| eprintln!("{record}"))
    }

    /// Hands each record to `sink`. It runs on the server's executor when a body ends: keep it
    /// quick and non-blocking.
    pub fn with_sink(sink: impl Fn(&Record) + Send + Sync + 'static) -> Self {
        AccessLog {
            sink: Arc::new(sink),
        }
    }
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog::new()
    }
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessLog").finish_non_exhaustive()
    }
}

impl<A: App> Middleware<A> for AccessLog {
    type App = AccessLogApp<A>;

    fn wrap(&self, inner: A) -> AccessLogApp<A> {
        AccessLogApp {
            inner,
            sink: Arc::clone(&self.sink),
        }
    }
}

/// An app wrapped by [`AccessLog`].
pub struct AccessLogApp<A> {
    inner: A,
    sink: Sink,
}

impl<A: fmt::Debug> fmt::Debug for AccessLogApp<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessLogApp")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<A: App> App for AccessLogApp<A> {
    type Body = LoggedBody<A::Body>;

    async fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> Result<Response<LoggedBody<A::Body>>, Error> {
        let started = Instant::now();
        let method = environ.method().clone();
        let target = environ.request_target().into_owned();
        if let Some(finished) = environ.extensions().get::<ResponseFinished>() {
            let sink = Arc::clone(&self.sink);
            finished.on_finish(move |outcome| {
                let record = Record {
                    method,
                    target,
                    status: outcome.status().unwrap_or(CLIENT_CLOSED),
                    bytes_sent: outcome.bytes_sent(),
                    duration: started.elapsed(),
                    outcome: match outcome.ending() {
                        Ending::Completed => Outcome::Complete,
                        Ending::ClientGone => Outcome::Dropped,
                        _ => Outcome::Failed,
                    },
                };
                sink(&record);
            });
            // The server reports the end: the body only passes through.
            let response = self.inner.call(environ, start).await?;
            return Ok(response.map_body(|inner| LoggedBody {
                inner,
                pending: None,
            }));
        }
        let response = match self.inner.call(environ, start).await {
            Ok(response) => response,
            Err(error) => {
                // The server answers an app error with a 500 (REQ-ERR-2).
                let record = Record {
                    method,
                    target,
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    bytes_sent: 0,
                    duration: started.elapsed(),
                    outcome: Outcome::Failed,
                };
                (self.sink)(&record);
                return Err(error);
            }
        };
        let status = response.status();
        // No body goes out for these (REQ-SRV-6): the server drops it unread, and that is a
        // complete response, not a client that went away.
        let bodiless = method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let pending = Pending {
            record: Record {
                method,
                target,
                status,
                bytes_sent: 0,
                duration: Duration::ZERO,
                outcome: Outcome::Complete,
            },
            started,
            bodiless,
            handed_off: false,
            sink: Arc::clone(&self.sink),
        };
        Ok(response.map_body(|inner| LoggedBody {
            inner,
            pending: Some(pending),
        }))
    }
}

/// The record of a response still in flight.
struct Pending {
    record: Record,
    started: Instant,
    bodiless: bool,
    /// The body was a file range the server took (§14.9): it sends it beyond our sight.
    handed_off: bool,
    sink: Sink,
}

impl Pending {
    fn emit(mut self, outcome: Outcome) {
        self.record.duration = self.started.elapsed();
        self.record.outcome = outcome;
        (self.sink)(&self.record);
    }
}

/// The body of a logged response: the inner body, counted, emitting the record at its end.
///
/// Dropping it drops the inner body right after the record goes out, so the inner app's
/// cleanup still runs (REQ-MW-4).
///
/// A file body stays a file for the server (REQ-FILE-6): [`Body::take_file`] is passed on, and
/// the range, which the server then sends on its own, counts as sent in full.
pub struct LoggedBody<B> {
    inner: B,
    /// `None` once the record is out, so it goes out once.
    pending: Option<Pending>,
}

impl<B> fmt::Debug for LoggedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggedBody")
            .field("record", &self.pending.as_ref().map(|p| &p.record))
            .finish_non_exhaustive()
    }
}

impl<B: Body + Unpin> Stream for LoggedBody<B> {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(pending) = &mut this.pending {
                    pending.record.bytes_sent += chunk.len() as u64;
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(Outcome::Failed),
            Poll::Ready(None) => this.finish(Outcome::Complete),
            Poll::Pending => {}
        }
        polled
    }
}

impl<B> LoggedBody<B> {
    fn finish(&mut self, outcome: Outcome) {
        if let Some(pending) = self.pending.take() {
            pending.emit(outcome);
        }
    }
}

impl<B: Body + Unpin> Body for LoggedBody<B> {
    fn content_length(&self) -> Option<u64> {
        self.inner.content_length()
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

    fn take_file(mut self: Pin<&mut Self>) -> Option<rwgi::file::FileRange> {
        let this = &mut *self;
        let range = Pin::new(&mut this.inner).take_file()?;
        if let Some(pending) = &mut this.pending {
            pending.record.bytes_sent += range.len();
            pending.handed_off = true;
        }
        Some(range)
    }
}

impl<B> Drop for LoggedBody<B> {
    fn drop(&mut self) {
        let outcome = match &self.pending {
            Some(pending) if pending.bodiless || pending.handed_off => Outcome::Complete,
            _ => Outcome::Dropped,
        };
        self.finish(outcome);
    }
}
