//! The request body as the app reads it: rwgi's `wsgi.input`.
//!
//! [`Input`] is a concrete stream of [`Bytes`] chunks that the server fills from the
//! connection. It ends exactly at the end of the request body; a body that ends early (the client
//! went away mid-upload) yields an error, never a silent end (REQ-INPUT-2). An app that does not
//! read the body at all is fine: the server discards or closes as it sees fit (REQ-INPUT-4), and
//! a client that sent `Expect: 100-continue` gets its `100 Continue` only once the app starts
//! reading (REQ-INPUT-5).
//!
//! A request without a body costs no allocation: [`Input::empty`] is a plain value.
//!
//! When the server fails the body because of the client (a broken chunked coding, a body cut
//! short, too slow or too large), the error the stream yields wraps an [`InputError`], which an
//! app finds with [`Error::input_error`] and tells apart from a server fault (REQ-INPUT-8).

use std::borrow::Cow;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http::{HeaderMap, StatusCode};

use crate::body::{Body, BodyExt};
use crate::Error;

/// The request body stream.
///
/// An app reads it until it ends or fails and then stops (REQ-INPUT-6). `Input` passes every
/// poll to the stream the server gave it, so a poll past the end reaches that stream: a lint in
/// between reports it, and the bodies of this crate answer it with `None`.
///
/// ```
/// use rwgi::Input;
///
/// # futures_executor::block_on(async {
/// let mut input = Input::from("name=rwgi");
/// assert_eq!(input.content_length(), Some(9));
/// let body = input.read_to_end(1024).await.unwrap();
/// assert_eq!(&body[..], b"name=rwgi");
/// assert!(input.chunk().await.is_none());
/// # });
/// ```
pub struct Input {
    // `None` is the empty body. Every poll goes through to the stream, so that a lint the
    // server put in between sees an app that polls past the end (REQ-INPUT-6). `Sync`, so that
    // an app's future that holds `&Environ` across an `.await` stays `Send`.
    body: Option<Pin<Box<dyn Body + Send + Sync + 'static>>>,
}

impl Input {
    /// A request without a body.
    pub const fn empty() -> Self {
        Input { body: None }
    }

    /// A body that the server already holds in memory. It is boxed like a streamed body: one
    /// allocation, so that every `Input` stays three words small (the environ is moved several
    /// times per request, and its size is paid in each move).
    pub fn from_bytes(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        if data.is_empty() {
            return Input::empty();
        }
        Input::from_body(crate::body::Full::new(data))
    }

    /// A body read from a stream, for servers: the stream must end exactly at the end of the
    /// request body and yield an error if the client stops sending early (REQ-INPUT-2), and its
    /// [`content_length`](Body::content_length) is the declared length, if any.
    ///
    /// The [`Body`] trait serves both directions: a request body is a stream of chunks with an
    /// optional exact length, like a response body. It must be `Sync` as well as `Send` (hyper's
    /// request body is both); a stream that is not can be wrapped in a type that only exposes
    /// it through `&mut`.
    ///
    /// ```
    /// use rwgi::body::StreamBody;
    /// use rwgi::Input;
    ///
    /// # let stream = rwgi::body::Full::new("hello");
    /// // A server wraps its HTTP stack's body stream; the declared length travels with it.
    /// let input = Input::from_body(StreamBody::with_length(stream, 5));
    /// assert_eq!(input.content_length(), Some(5));
    /// ```
    pub fn from_body<B>(body: B) -> Self
    where
        B: Body + Send + Sync + 'static,
    {
        Input {
            body: Some(Box::pin(body)),
        }
    }

    /// The number of bytes still to come, if known: the declared `Content-Length` before any
    /// read.
    ///
    /// ```
    /// assert_eq!(rwgi::Input::empty().content_length(), Some(0));
    /// ```
    pub fn content_length(&self) -> Option<u64> {
        Body::content_length(self)
    }

    /// Whether the body is known to have no more bytes.
    ///
    /// ```
    /// assert!(rwgi::Input::empty().is_end());
    /// assert!(!rwgi::Input::from("x").is_end());
    /// ```
    pub fn is_end(&self) -> bool {
        self.content_length() == Some(0)
    }

    /// The next chunk, or `None` at the end of the body.
    ///
    /// # Errors
    ///
    /// The server's error when the body cannot be read to its end, for example when the client
    /// disconnects in the middle of an upload.
    ///
    /// ```
    /// # rwgi_conformance::test_client::block_on(async {
    /// let mut input = rwgi::Input::from("abc");
    /// let mut total = 0;
    /// while let Some(chunk) = input.chunk().await {
    ///     total += chunk.unwrap().len();
    /// }
    /// assert_eq!(total, 3);
    /// # });
    /// ```
    pub async fn chunk(&mut self) -> Option<Result<Bytes, Error>> {
        BodyExt::chunk(self).await
    }

    /// Reads the rest of the body into one buffer, refusing to hold more than `limit` bytes.
    ///
    /// When the declared length already exceeds `limit`, nothing is read: an app can refuse an
    /// upload before the client sends it.
    ///
    /// # Errors
    ///
    /// [`ReadError::TooLarge`] when the body is longer than `limit` (declared or as read), and
    /// [`ReadError::Body`] when the body itself fails.
    ///
    /// ```
    /// use rwgi::input::{Input, ReadError};
    ///
    /// # futures_executor::block_on(async {
    /// let mut input = Input::from("far too long");
    /// assert!(matches!(input.read_to_end(4).await, Err(ReadError::TooLarge { limit: 4 })));
    /// # });
    /// ```
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Bytes, ReadError> {
        if self.content_length().is_some_and(|n| n > limit as u64) {
            return Err(ReadError::TooLarge { limit });
        }
        let Some(first) = self.chunk().await.transpose().map_err(ReadError::Body)? else {
            return Ok(Bytes::new());
        };
        let Some(second) = self.chunk().await.transpose().map_err(ReadError::Body)? else {
            return if first.len() > limit {
                Err(ReadError::TooLarge { limit })
            } else {
                Ok(first)
            };
        };
        let mut buffer = BytesMut::new();
        for chunk in [first, second] {
            append(&mut buffer, &chunk, limit)?;
        }
        while let Some(chunk) = self.chunk().await {
            append(&mut buffer, &chunk.map_err(ReadError::Body)?, limit)?;
        }
        Ok(buffer.freeze())
    }
}

impl Input {
    /// Calls `f` with each chunk as the app reads it, and changes nothing else: the chunks, the
    /// errors and the length stay the server's. For middleware that counts, hashes or logs
    /// request bytes.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use rwgi::Input;
    ///
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let counter = Arc::clone(&seen);
    /// let mut input = Input::from("hello").inspect(move |chunk| {
    ///     counter.fetch_add(chunk.len(), Ordering::Relaxed);
    /// });
    /// assert_eq!(input.content_length(), Some(5), "the length is kept");
    /// # futures_executor::block_on(async {
    /// input.read_to_end(100).await.unwrap();
    /// # });
    /// assert_eq!(seen.load(Ordering::Relaxed), 5);
    /// ```
    pub fn inspect<F>(self, f: F) -> Input
    where
        F: FnMut(&Bytes) + Send + Sync + 'static,
    {
        self.adapt(
            f,
            |inspect, chunk| {
                inspect(&chunk);
                Ok(chunk)
            },
            true,
        )
    }

    /// Replaces each chunk with what `f` makes of it, or with `f`'s error. The new length is
    /// unknown (`None`) unless the body is empty: put the result back with
    /// [`Environ::set_input`](crate::Environ::set_input), which makes the framing headers say so
    /// (REQ-MW-6). For middleware that decodes or transforms an upload.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use rwgi::Input;
    ///
    /// let mut input = Input::from("shout").map(|chunk| Ok(Bytes::from(chunk.to_ascii_uppercase())));
    /// assert_eq!(input.content_length(), None);
    /// # futures_executor::block_on(async {
    /// assert_eq!(input.read_to_end(100).await.unwrap(), "SHOUT");
    /// # });
    /// ```
    pub fn map<F>(self, f: F) -> Input
    where
        F: FnMut(Bytes) -> Result<Bytes, Error> + Send + Sync + 'static,
    {
        self.adapt(f, |map, chunk| map(chunk), false)
    }

    /// Wraps the body in an [`Adapted`] stream that runs `step` with `state` on each chunk.
    fn adapt<S>(
        self,
        state: S,
        step: fn(&mut S, Bytes) -> Result<Bytes, Error>,
        keeps_length: bool,
    ) -> Input
    where
        S: Send + Sync + 'static,
    {
        match self.body {
            None => Input::empty(),
            Some(inner) => Input::from_body(Adapted {
                inner,
                state,
                step,
                keeps_length,
            }),
        }
    }
}

/// A request body with a step applied to each chunk: what [`Input::inspect`] and
/// [`Input::map`] make.
struct Adapted<S> {
    inner: Pin<Box<dyn Body + Send + Sync + 'static>>,
    state: S,
    step: fn(&mut S, Bytes) -> Result<Bytes, Error>,
    keeps_length: bool,
}

// Nothing in an `Adapted` is pinned through it: `inner` is pinned by its own box and `state` is
// only ever used by `&mut`.
impl<S> Unpin for Adapted<S> {}

impl<S> Stream for Adapted<S> {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = Pin::into_inner(self);
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some((this.step)(&mut this.state, chunk))),
            other => other,
        }
    }
}

impl<S> Body for Adapted<S> {
    fn content_length(&self) -> Option<u64> {
        match self.inner.content_length() {
            Some(0) => Some(0),
            length if self.keeps_length => length,
            _ => None,
        }
    }

    fn poll_trailers(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        self.inner.as_mut().poll_trailers(cx)
    }
}

fn append(buffer: &mut BytesMut, chunk: &[u8], limit: usize) -> Result<(), ReadError> {
    if buffer.len() + chunk.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    buffer.extend_from_slice(chunk);
    Ok(())
}

impl Default for Input {
    fn default() -> Self {
        Input::empty()
    }
}

impl From<Bytes> for Input {
    fn from(data: Bytes) -> Self {
        Input::from_bytes(data)
    }
}

impl From<&'static str> for Input {
    fn from(data: &'static str) -> Self {
        Input::from_bytes(data)
    }
}

impl From<Vec<u8>> for Input {
    fn from(data: Vec<u8>) -> Self {
        Input::from_bytes(data)
    }
}

impl From<String> for Input {
    fn from(data: String) -> Self {
        Input::from_bytes(data)
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Input")
            .field("content_length", &self.content_length())
            .finish()
    }
}

impl Stream for Input {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        body.as_mut().poll_next(cx)
    }
}

impl Body for Input {
    fn content_length(&self) -> Option<u64> {
        match &self.body {
            None => Some(0),
            Some(body) => body.content_length(),
        }
    }

    /// The request's trailer fields, once the body ended (REQ-TRAIL-4): what the client sent
    /// after a chunked HTTP/1.1 body or an HTTP/2 stream's data, when the server offers
    /// [`Trailers`](crate::trailers::Trailers).
    fn poll_trailers(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        match self.body.as_mut() {
            None => Poll::Ready(Ok(None)),
            Some(body) => body.as_mut().poll_trailers(cx),
        }
    }
}

/// Why [`Input::read_to_end`] gave up.
///
/// ```
/// use rwgi::input::{Input, ReadError};
///
/// let mut input = Input::from("0123456789");
/// match rwgi_conformance::test_client::block_on(input.read_to_end(4)) {
///     Err(ReadError::TooLarge { limit }) => assert_eq!(limit, 4), // answer 413
///     other => panic!("expected TooLarge, got {other:?}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// The body is longer than the caller's limit; the app should answer `413 Content Too Large`.
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The body failed while being read.
    Body(Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::TooLarge { limit } => {
                write!(f, "request body is larger than the limit of {limit} bytes")
            }
            ReadError::Body(_) => f.write_str("request body could not be read"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::TooLarge { .. } => None,
            ReadError::Body(error) => Some(error),
        }
    }
}

/// Why a server failed a request body, when the client is the cause (REQ-INPUT-8): the body
/// breaks its framing, ends early, arrives too slowly or is over the server's limit.
///
/// A server puts it in the error the [`Input`] yields; an app finds it with
/// [`Error::input_error`], however deeply the app wrapped the error, and answers with
/// [`status`](InputError::status). An app that simply passes the error on (`?`) gets that status
/// from the server too: `prepare` answers it in place of `500` (REQ-ERR-2). Any other body error
/// is a server fault.
///
/// ```
/// use rwgi::input::{InputError, InputErrorKind};
/// use rwgi::http::StatusCode;
///
/// // What a server yields for a chunk size line that is not hexadecimal.
/// let error = rwgi::Error::new(InputError::new(
///     InputErrorKind::Malformed,
///     "the chunked coding is broken: invalid chunk size",
/// ));
/// // What an app asks.
/// match error.input_error() {
///     Some(input) => assert_eq!(input.status(), StatusCode::BAD_REQUEST), // the client's fault
///     None => unreachable!("a server fault: 500"),
/// }
/// assert!(error.input_error().unwrap().is_malformed());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    kind: InputErrorKind,
    message: Cow<'static, str>,
}

/// What went wrong with a request body on the client's side; each kind has its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InputErrorKind {
    /// The body breaks its framing: in a chunked coding, a size line that is not hexadecimal,
    /// a size that overflows, chunk data not followed by CRLF, an over-long chunk extension, a
    /// bare LF where CRLF belongs. `400 Bad Request`; the connection cannot carry another
    /// request.
    Malformed,
    /// The body ended before its end: the client closed the connection (or its sending side)
    /// in the middle of it. `400 Bad Request`.
    Incomplete,
    /// The body did not arrive in time: no bytes for the server's body timeout, or slower than
    /// its minimum rate. `408 Request Timeout`.
    TimedOut,
    /// The body is longer than the server's limit. `413 Content Too Large`.
    TooLarge,
}

impl InputErrorKind {
    /// The status that answers a request whose body failed this way.
    ///
    /// ```
    /// use rwgi::input::InputErrorKind;
    ///
    /// assert_eq!(InputErrorKind::Malformed.status(), 400);
    /// assert_eq!(InputErrorKind::Incomplete.status(), 400);
    /// assert_eq!(InputErrorKind::TimedOut.status(), 408);
    /// assert_eq!(InputErrorKind::TooLarge.status(), 413);
    /// ```
    pub fn status(self) -> StatusCode {
        match self {
            InputErrorKind::Malformed | InputErrorKind::Incomplete => StatusCode::BAD_REQUEST,
            InputErrorKind::TimedOut => StatusCode::REQUEST_TIMEOUT,
            InputErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

impl InputError {
    /// An error of `kind`, displayed as `message` (which says what the server saw, for logs).
    pub fn new(kind: InputErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        InputError {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> InputErrorKind {
        self.kind
    }

    /// The status to answer with: `400`, `408` or `413` ([`InputErrorKind::status`]).
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// Whether the body breaks its framing ([`InputErrorKind::Malformed`]).
    pub fn is_malformed(&self) -> bool {
        self.kind == InputErrorKind::Malformed
    }

    /// Whether the body ended early ([`InputErrorKind::Incomplete`]).
    pub fn is_incomplete(&self) -> bool {
        self.kind == InputErrorKind::Incomplete
    }

    /// Whether the body did not arrive in time ([`InputErrorKind::TimedOut`]).
    pub fn is_timeout(&self) -> bool {
        self.kind == InputErrorKind::TimedOut
    }

    /// Whether the body is over the server's limit ([`InputErrorKind::TooLarge`]).
    pub fn is_too_large(&self) -> bool {
        self.kind == InputErrorKind::TooLarge
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InputError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::tests::{collect, Chunks};
    use crate::body::StreamBody;
    use futures_executor::block_on;

    #[test]
    fn empty_input_is_at_its_end() {
        let input = Input::from("");
        assert!(input.is_end());
        assert!(collect(input).unwrap().is_empty());
        assert!(!Input::from("x").is_end());
        assert!(
            !Input::from_body(Chunks(vec![Ok("x")], None)).is_end(),
            "unknown length"
        );
    }

    #[test]
    fn every_conversion_keeps_the_bytes() {
        let inputs = [
            Input::from(Bytes::from_static(b"ab")),
            Input::from("ab"),
            Input::from(b"ab".to_vec()),
            Input::from(String::from("ab")),
        ];
        for input in inputs {
            assert_eq!(format!("{input:?}"), "Input { content_length: Some(2) }");
            assert_eq!(collect(input).unwrap(), ["ab"]);
        }
    }

    #[test]
    fn read_to_end_joins_chunks() {
        let mut input = Input::from_body(Chunks(vec![Ok("ab"), Ok("cd"), Ok("e")], None));
        assert_eq!(input.content_length(), None);
        assert_eq!(block_on(input.read_to_end(5)).unwrap(), "abcde");
    }

    #[test]
    fn read_to_end_enforces_the_limit_while_reading() {
        let mut input = Input::from_body(Chunks(vec![Ok("ab"), Ok("cd"), Ok("e")], None));
        let error = block_on(input.read_to_end(4)).unwrap_err();
        assert!(matches!(error, ReadError::TooLarge { limit: 4 }));
        assert_eq!(
            error.to_string(),
            "request body is larger than the limit of 4 bytes"
        );
    }

    #[test]
    fn read_to_end_refuses_a_declared_length_over_the_limit_without_reading() {
        let mut input =
            Input::from_body(StreamBody::with_length(Chunks(vec![Ok("abcdef")], None), 6));
        assert!(matches!(
            block_on(input.read_to_end(5)),
            Err(ReadError::TooLarge { limit: 5 })
        ));
        assert_eq!(input.content_length(), Some(6), "nothing was read");
    }

    #[test]
    fn inspect_sees_every_chunk_and_keeps_the_length() {
        let (tx, rx) = std::sync::mpsc::channel();
        let input = Input::from_body(StreamBody::with_length(
            Chunks(vec![Ok("ab"), Ok("c")], None),
            3,
        ))
        .inspect(move |chunk| tx.send(chunk.clone()).unwrap());
        assert_eq!(input.content_length(), Some(3));
        assert_eq!(collect(input).unwrap(), ["ab", "c"]);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["ab", "c"]);
    }

    #[test]
    fn map_replaces_chunks_and_forgets_the_length_until_the_end() {
        let mut input = Input::from("ab").map(|chunk| Ok(chunk.to_ascii_uppercase().into()));
        assert_eq!(input.content_length(), None);
        assert_eq!(block_on(input.chunk()).unwrap().unwrap(), "AB");
        assert_eq!(input.content_length(), Some(0), "the body says it is done");
        assert!(input.is_end());
    }

    #[test]
    fn read_to_end_reports_a_failing_body() {
        let mut input = Input::from_body(Chunks(vec![Ok("ab"), Err("client went away")], None));
        let error = block_on(input.read_to_end(100)).unwrap_err();
        let ReadError::Body(inner) = &error else {
            panic!("expected a body error, got {error:?}");
        };
        assert_eq!(inner.to_string(), "client went away");
        let source = std::error::Error::source(&error).expect("the body's error is the source");
        assert_eq!(source.to_string(), "client went away");
        let too_large = ReadError::TooLarge { limit: 1 };
        assert!(std::error::Error::source(&too_large).is_none());
    }
}
