//! Response bodies: async streams of [`Bytes`] that may know their exact length.
//!
//! A [`Body`] is a [`Stream`] of `Result<Bytes, Error>` plus an optional exact length. The server
//! polls it after the app returned its [`Response`](crate::Response) and writes each chunk to the
//! client; the end of the stream is the end of the response (REQ-BODY-1).
//!
//! Dropping a body is WSGI's `close()`: the server drops it when the response is complete, when
//! it fails, or when the client went away (REQ-BODY-5). Put cleanup in `Drop`.
//!
//! The types here cover the common shapes without boxing: [`Full`] (one chunk), [`Empty`],
//! [`StreamBody`] (any stream), [`Either`] (one of two body types) and [`BoxBody`] (any body,
//! type-erased).

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::{HeaderMap, HeaderName};

use crate::file::FileRange;
use crate::violation::Violation;
use crate::Error;

/// A response body: a stream of byte chunks that may fail, and may know its length.
///
/// # Protocol
///
/// The caller (a server, or middleware that wraps the body) polls until the body returns
/// `Poll::Ready(None)` or an error, and then stops: polling after that is the caller's fault
/// (REQ-BODY-2), as with `http_body::Body` and most `Stream`s, which may panic then. The bodies
/// of this crate ([`Full`], [`Empty`], [`StreamBody`], and [`Either`] and [`BoxBody`] of them)
/// return `None` when polled again all the same.
///
/// # Implementer notes
///
/// - Yield each chunk once; return `Poll::Ready(None)` at the end.
/// - Empty chunks are allowed but carry no meaning; servers skip them (REQ-BODY-3).
/// - [`content_length`](Body::content_length) must be exact when it is `Some`: the number of
///   bytes the stream will still yield from now on (REQ-BODY-4). Servers turn it into a
///   `Content-Length` header.
/// - An `Err` ends the response abnormally. Before the first non-empty chunk the server can
///   still answer with an error response; after it, it aborts the connection (REQ-ERR-3).
///
/// Any `Stream<Item = Result<Bytes, Error>>` becomes a body with an empty `impl`:
///
/// ```
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use rwgi::body::Body;
/// use rwgi::Error;
/// use bytes::Bytes;
///
/// /// Counts down to zero, one line per chunk.
/// struct Countdown(u32);
///
/// impl futures_core::Stream for Countdown {
///     type Item = Result<Bytes, Error>;
///     fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
///         if self.0 == 0 {
///             return Poll::Ready(None);
///         }
///         self.0 -= 1;
///         Poll::Ready(Some(Ok(Bytes::from(format!("{}\n", self.0)))))
///     }
/// }
///
/// impl Body for Countdown {}
/// ```
pub trait Body: Stream<Item = Result<Bytes, Error>> {
    /// The exact number of bytes this body will still yield, if known.
    ///
    /// The default is `None` (unknown: the server uses chunked encoding or closes the
    /// connection to delimit the body).
    ///
    /// ```
    /// use rwgi::body::{Body, Full};
    /// assert_eq!(Full::new("four").content_length(), Some(4));
    /// ```
    fn content_length(&self) -> Option<u64> {
        None
    }

    /// The names of the trailer fields this body will yield after its data, announced before
    /// its first chunk (REQ-TRAIL-1): a server names them in the head (HTTP/1.1's `Trailer`
    /// field) and sends only these. The default is none; see [`crate::trailers`].
    ///
    /// ```
    /// use rwgi::body::{Body, Full};
    /// assert!(Full::new("no trailers").trailer_names().is_empty());
    /// ```
    fn trailer_names(&self) -> &[HeaderName] {
        &[]
    }

    /// The trailer fields, polled after [`poll_next`](Stream::poll_next) returned `None`
    /// (REQ-TRAIL-1): `Ok(None)` when there are none. The caller polls it at most until it is
    /// ready, and never before the data ended. The default has none.
    ///
    /// An `Err` ends the response abnormally, like a failing chunk after the head was sent
    /// (REQ-ERR-3).
    ///
    /// ```
    /// use rwgi::body::{BodyExt, Full};
    ///
    /// # futures_executor::block_on(async {
    /// let mut body = Full::new("data");
    /// while body.chunk().await.is_some() {}
    /// assert!(body.trailers().await.unwrap().is_none());
    /// # });
    /// ```
    fn poll_trailers(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        let _ = cx;
        Poll::Ready(Ok(None))
    }

    /// The file range this body is, handed to a server that sends files its own way (§14.9,
    /// REQ-FILE-1); the body is then empty.
    ///
    /// A server that declares file bodies calls it once, before it polls the body; what it
    /// gets must be exactly the bytes the body would have yielded, so before the call
    /// [`content_length`](Body::content_length) is `Some` of the range's length. The default is
    /// `None`: not a file. [`FileBody`](crate::file::FileBody) hands out its range, and the
    /// wrappers of this crate ([`BoxBody`], [`Either`], `Box`, `Pin`, `&mut`) pass the call
    /// on; a middleware that wraps a body without changing its bytes should too (REQ-FILE-6).
    ///
    /// ```
    /// use std::pin::Pin;
    /// use rwgi::body::{Body, Full};
    ///
    /// let mut body = Full::new("not a file");
    /// assert!(Pin::new(&mut body).take_file().is_none());
    /// ```
    fn take_file(self: Pin<&mut Self>) -> Option<FileRange> {
        None
    }
}

/// Conveniences for every [`Body`].
///
/// ```
/// use rwgi::body::{BodyExt, Full};
///
/// # futures_executor::block_on(async {
/// let mut body = Full::new("hi");
/// assert_eq!(body.chunk().await.unwrap().unwrap(), "hi");
/// assert!(body.chunk().await.is_none());
/// # });
/// ```
pub trait BodyExt: Body {
    /// The next chunk, `None` at the end, or the body's error: `poll_next` as a future, for
    /// servers that drive a body (a [`ResponseBody`](crate::server::ResponseBody), say) and
    /// for tests.
    fn chunk(&mut self) -> Chunk<'_, Self>
    where
        Self: Unpin,
    {
        Chunk { body: self }
    }

    /// The trailer fields, once the data ended: [`Body::poll_trailers`] as a future.
    fn trailers(&mut self) -> Trailers<'_, Self>
    where
        Self: Unpin,
    {
        Trailers { body: self }
    }
}

impl<B: Body + ?Sized> BodyExt for B {}

/// The future of [`BodyExt::trailers`].
#[must_use = "futures do nothing unless polled"]
pub struct Trailers<'a, B: ?Sized> {
    body: &'a mut B,
}

impl<B: ?Sized> fmt::Debug for Trailers<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trailers").finish_non_exhaustive()
    }
}

impl<B: Body + Unpin + ?Sized> std::future::Future for Trailers<'_, B> {
    type Output = Result<Option<HeaderMap>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut *self.body).poll_trailers(cx)
    }
}

/// The future of [`BodyExt::chunk`].
#[must_use = "futures do nothing unless polled"]
pub struct Chunk<'a, B: ?Sized> {
    body: &'a mut B,
}

impl<B: ?Sized> fmt::Debug for Chunk<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk").finish_non_exhaustive()
    }
}

impl<B: Body + Unpin + ?Sized> std::future::Future for Chunk<'_, B> {
    type Output = Option<Result<Bytes, Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut *self.body).poll_next(cx)
    }
}

impl<P> Body for Pin<P>
where
    P: std::ops::DerefMut + Unpin,
    P::Target: Body,
{
    fn content_length(&self) -> Option<u64> {
        (**self).content_length()
    }

    fn trailer_names(&self) -> &[HeaderName] {
        (**self).trailer_names()
    }

    fn poll_trailers(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        self.get_mut().as_mut().poll_trailers(cx)
    }

    fn take_file(self: Pin<&mut Self>) -> Option<FileRange> {
        self.get_mut().as_mut().take_file()
    }
}

impl<B: Body + Unpin + ?Sized> Body for Box<B> {
    fn content_length(&self) -> Option<u64> {
        (**self).content_length()
    }

    fn trailer_names(&self) -> &[HeaderName] {
        (**self).trailer_names()
    }

    fn poll_trailers(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        Pin::new(&mut **self.get_mut()).poll_trailers(cx)
    }

    fn take_file(self: Pin<&mut Self>) -> Option<FileRange> {
        Pin::new(&mut **self.get_mut()).take_file()
    }
}

impl<B: Body + Unpin + ?Sized> Body for &mut B {
    fn content_length(&self) -> Option<u64> {
        (**self).content_length()
    }

    fn trailer_names(&self) -> &[HeaderName] {
        (**self).trailer_names()
    }

    fn poll_trailers(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        Pin::new(&mut **self.get_mut()).poll_trailers(cx)
    }

    fn take_file(self: Pin<&mut Self>) -> Option<FileRange> {
        Pin::new(&mut **self.get_mut()).take_file()
    }
}

/// A body of one chunk, known up front: the common case of a rendered page or a JSON document.
///
/// ```
/// use rwgi::body::{Body, Full};
///
/// let body = Full::new(r#"{"ok":true}"#);
/// assert_eq!(body.content_length(), Some(11));
/// ```
#[derive(Clone, Default)]
pub struct Full {
    data: Option<Bytes>,
}

impl Full {
    /// A body of exactly these bytes.
    pub fn new(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        Full {
            data: (!data.is_empty()).then_some(data),
        }
    }
}

impl fmt::Debug for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Full")
            .field("len", &self.data.as_ref().map_or(0, Bytes::len))
            .finish()
    }
}

impl Stream for Full {
    type Item = Result<Bytes, Error>;

    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.data.take().map(Ok))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.data.is_some());
        (n, Some(n))
    }
}

impl Body for Full {
    #[inline]
    fn content_length(&self) -> Option<u64> {
        Some(self.data.as_ref().map_or(0, |data| data.len() as u64))
    }
}

/// A body with no bytes.
///
/// ```
/// use rwgi::body::{Body, Empty};
/// assert_eq!(Empty.content_length(), Some(0));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Empty;

impl Stream for Empty {
    type Item = Result<Bytes, Error>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(None)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(0))
    }
}

impl Body for Empty {
    #[inline]
    fn content_length(&self) -> Option<u64> {
        Some(0)
    }
}

/// Any stream of byte chunks as a body, with an optional declared length.
///
/// The stream's error type converts into [`Error`]. For a stream that is not `Unpin`, pass
/// `Box::pin(stream)`. The body is fused: once the stream ended or failed, it is not polled
/// again and the body returns `None`, so a stream that panics when polled after its end (as
/// `futures::stream::unfold` does) is safe behind any caller.
///
/// ```
/// use bytes::Bytes;
/// use rwgi::body::{Body, StreamBody};
///
/// # struct Chunks(Vec<Bytes>);
/// # impl futures_core::Stream for Chunks {
/// #     type Item = Result<Bytes, std::io::Error>;
/// #     fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>)
/// #         -> std::task::Poll<Option<Self::Item>> {
/// #         std::task::Poll::Ready(if self.0.is_empty() { None } else { Some(Ok(self.0.remove(0))) })
/// #     }
/// # }
/// let chunks = Chunks(vec![Bytes::from("a"), Bytes::from("bc")]);
/// let body = StreamBody::new(chunks);
/// assert_eq!(body.content_length(), None);
///
/// let chunks = Chunks(vec![Bytes::from("a"), Bytes::from("bc")]);
/// let body = StreamBody::with_length(chunks, 3);
/// assert_eq!(body.content_length(), Some(3));
/// ```
#[derive(Clone, Debug)]
pub struct StreamBody<S> {
    stream: S,
    promise: Option<Promise>,
    ended: bool,
}

impl<S> StreamBody<S> {
    /// A body of unknown length.
    pub fn new(stream: S) -> Self {
        StreamBody {
            stream,
            promise: None,
            ended: false,
        }
    }

    /// A body that promises to yield exactly `length` bytes.
    ///
    /// The promise is checked: a stream that yields more, or ends with fewer, makes the body
    /// yield an error instead (REQ-BODY-4), so the server aborts the response rather than send
    /// a wrong `Content-Length`.
    pub fn with_length(stream: S, length: u64) -> Self {
        StreamBody {
            stream,
            promise: Some(Promise::new(length)),
            ended: false,
        }
    }

    /// The wrapped stream.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S, E> Stream for StreamBody<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Error>,
{
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let item = match Pin::new(&mut this.stream).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let broken =
            |mismatch: Mismatch| Error::new(mismatch.violation("REQ-BODY-4", "declared length"));
        let item = match (item, this.promise.as_mut()) {
            (Some(Ok(chunk)), Some(promise)) => {
                Some(promise.take(chunk.len()).map(|()| chunk).map_err(broken))
            }
            (Some(item), _) => Some(item.map_err(Into::into)),
            (None, Some(promise)) => promise.end().err().map(|mismatch| Err(broken(mismatch))),
            (None, None) => None,
        };
        this.ended = !matches!(item, Some(Ok(_)));
        Poll::Ready(item)
    }
}

impl<S, E> Body for StreamBody<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Error>,
{
    fn content_length(&self) -> Option<u64> {
        if self.ended {
            Some(0)
        } else {
            self.promise.map(|promise| promise.remaining())
        }
    }
}

/// Bytes counted against a length promised in advance: the one comparison behind
/// [`StreamBody::with_length`] (REQ-BODY-4), the server's `Content-Length` guard (REQ-RESP-5,
/// REQ-SRV-7) and the lint.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Promise {
    promised: u64,
    yielded: u64,
}

impl Promise {
    /// A promise of `promised` bytes, none yielded yet.
    pub(crate) const fn new(promised: u64) -> Self {
        Promise {
            promised,
            yielded: 0,
        }
    }

    /// A promise made after `yielded` bytes, of `remaining` more.
    pub(crate) const fn after(yielded: u64, remaining: u64) -> Self {
        Promise {
            promised: yielded.saturating_add(remaining),
            yielded,
        }
    }

    /// The total the promise names.
    pub(crate) const fn promised(&self) -> u64 {
        self.promised
    }

    /// The bytes still owed.
    pub(crate) const fn remaining(&self) -> u64 {
        self.promised.saturating_sub(self.yielded)
    }

    /// Counts a chunk of `len` bytes.
    ///
    /// # Errors
    ///
    /// When the bytes so far exceed the promise.
    pub(crate) fn take(&mut self, len: usize) -> Result<(), Mismatch> {
        self.yielded = self.yielded.saturating_add(len as u64);
        self.check(self.yielded <= self.promised)
    }

    /// Whether ending here keeps the promise.
    ///
    /// # Errors
    ///
    /// When the bytes yielded differ from the promise.
    pub(crate) fn end(&self) -> Result<(), Mismatch> {
        self.check(self.yielded == self.promised)
    }

    fn check(&self, kept: bool) -> Result<(), Mismatch> {
        if kept {
            Ok(())
        } else {
            Err(Mismatch {
                promised: self.promised,
                yielded: self.yielded,
            })
        }
    }
}

/// A broken [`Promise`]: more bytes than promised, or an end before the promised count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mismatch {
    promised: u64,
    yielded: u64,
}

impl Mismatch {
    /// The violation of `rule`, naming the promise broken (`"Content-Length"`, say).
    pub(crate) fn violation(self, rule: &'static str, promise: &str) -> Violation {
        let Mismatch { promised, yielded } = self;
        let message = if yielded > promised {
            format!("the body yielded {yielded} bytes, more than the {promised} of its {promise}")
        } else {
            format!(
                "the body ended after {yielded} bytes, {} short of the {promised} of its {promise}",
                promised - yielded
            )
        };
        Violation::new(rule, message)
    }
}

/// One of two body types, for an app or middleware that answers with either without boxing.
///
/// ```
/// use rwgi::body::{Body, Either, Empty, Full};
///
/// fn pick(found: bool) -> Either<Full, Empty> {
///     if found { Either::Left(Full::new("here")) } else { Either::Right(Empty) }
/// }
/// assert_eq!(pick(true).content_length(), Some(4));
/// assert_eq!(pick(false).content_length(), Some(0));
/// ```
#[derive(Clone, Debug)]
pub enum Either<L, R> {
    /// The first body type.
    Left(L),
    /// The second body type.
    Right(R),
}

impl<L, R> Stream for Either<L, R>
where
    L: Body + Unpin,
    R: Body + Unpin,
{
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            Either::Left(body) => Pin::new(body).poll_next(cx),
            Either::Right(body) => Pin::new(body).poll_next(cx),
        }
    }
}

impl<L, R> Body for Either<L, R>
where
    L: Body + Unpin,
    R: Body + Unpin,
{
    fn content_length(&self) -> Option<u64> {
        match self {
            Either::Left(body) => body.content_length(),
            Either::Right(body) => body.content_length(),
        }
    }

    fn trailer_names(&self) -> &[HeaderName] {
        match self {
            Either::Left(body) => body.trailer_names(),
            Either::Right(body) => body.trailer_names(),
        }
    }

    fn poll_trailers(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        match self.get_mut() {
            Either::Left(body) => Pin::new(body).poll_trailers(cx),
            Either::Right(body) => Pin::new(body).poll_trailers(cx),
        }
    }

    fn take_file(self: Pin<&mut Self>) -> Option<FileRange> {
        match self.get_mut() {
            Either::Left(body) => Pin::new(body).take_file(),
            Either::Right(body) => Pin::new(body).take_file(),
        }
    }
}

/// Any body, type-erased: what routers and boxed apps answer with.
///
/// ```
/// use rwgi::body::{Body, BoxBody, Full};
///
/// let body = BoxBody::new(Full::new("hi"));
/// assert_eq!(body.content_length(), Some(2));
/// ```
pub struct BoxBody {
    inner: Pin<Box<dyn Body + Send + 'static>>,
}

impl BoxBody {
    /// Erases the type of `body`.
    pub fn new<B>(body: B) -> Self
    where
        B: Body + Send + 'static,
    {
        BoxBody {
            inner: Box::pin(body),
        }
    }
}

impl fmt::Debug for BoxBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxBody")
            .field("content_length", &self.inner.content_length())
            .finish_non_exhaustive()
    }
}

impl Stream for BoxBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl Body for BoxBody {
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
        self.inner.as_mut().poll_trailers(cx)
    }

    fn take_file(self: Pin<&mut Self>) -> Option<FileRange> {
        self.get_mut().inner.as_mut().take_file()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct NoopWake;

    impl Wake for NoopWake {
        fn wake(self: Arc<Self>) {}
    }

    /// A waker for futures and streams that tests poll by hand.
    pub(crate) fn noop_waker() -> Waker {
        Waker::from(Arc::new(NoopWake))
    }

    /// Polls a body that never waits to its end, collecting chunks or the first error.
    pub(crate) fn collect<B: Body + Unpin>(mut body: B) -> Result<Vec<Bytes>, Error> {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut chunks = Vec::new();
        loop {
            match Pin::new(&mut body).poll_next(&mut cx) {
                Poll::Ready(Some(Ok(chunk))) => chunks.push(chunk),
                Poll::Ready(Some(Err(error))) => return Err(error),
                Poll::Ready(None) => return Ok(chunks),
                Poll::Pending => panic!("test body is not ready"),
            }
        }
    }

    /// A test body of the given chunks (`Err` items fail) and the length it claims.
    pub(crate) struct Chunks(
        pub(crate) Vec<Result<&'static str, &'static str>>,
        pub(crate) Option<u64>,
    );

    impl Stream for Chunks {
        type Item = Result<Bytes, Error>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready((!self.0.is_empty()).then(|| {
                self.0
                    .remove(0)
                    .map(|s| Bytes::from_static(s.as_bytes()))
                    .map_err(Error::msg)
            }))
        }
    }

    impl Body for Chunks {
        fn content_length(&self) -> Option<u64> {
            self.1
        }
    }

    /// The chunks of a body that does not fail.
    fn ok(chunks: &[&'static str]) -> Chunks {
        Chunks(chunks.iter().map(|c| Ok(*c)).collect(), None)
    }

    #[test]
    fn full_yields_once_then_ends() {
        let chunks = collect(Full::new("abc")).unwrap();
        assert_eq!(chunks, vec![Bytes::from("abc")]);
        assert!(collect(Full::new("")).unwrap().is_empty());
        assert_eq!(Full::new("").content_length(), Some(0));
    }

    #[test]
    fn stream_body_counts_down_its_length() {
        let mut body = StreamBody::with_length(ok(&["ab", "c"]), 3);
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(body.content_length(), Some(3));
        let _ = Pin::new(&mut body).poll_next(&mut cx);
        assert_eq!(body.content_length(), Some(1));
    }

    #[test]
    fn stream_body_rejects_a_long_stream() {
        let error = collect(StreamBody::with_length(ok(&["ab", "cd"]), 3)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "REQ-BODY-4: the body yielded 4 bytes, more than the 3 of its declared length"
        );
    }

    #[test]
    fn stream_body_rejects_a_short_stream() {
        let error = collect(StreamBody::with_length(ok(&["ab"]), 3)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "REQ-BODY-4: the body ended after 2 bytes, 1 short of the 3 of its declared length"
        );
    }

    /// Yields one chunk, ends, and panics if polled after its end.
    struct Strict(u8);

    impl Stream for Strict {
        type Item = Result<Bytes, Error>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.0 += 1;
            match self.0 {
                1 => Poll::Ready(Some(Ok(Bytes::from_static(b"x")))),
                2 => Poll::Ready(None),
                _ => panic!("polled after its end"),
            }
        }
    }

    #[test]
    fn stream_body_is_fused() {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        for mut body in [
            StreamBody::new(Strict(0)),
            StreamBody::with_length(Strict(0), 1),
        ] {
            assert!(matches!(
                Pin::new(&mut body).poll_next(&mut cx),
                Poll::Ready(Some(Ok(_)))
            ));
            for _ in 0..3 {
                assert!(matches!(
                    Pin::new(&mut body).poll_next(&mut cx),
                    Poll::Ready(None)
                ));
            }
            assert_eq!(body.content_length(), Some(0));
        }
        // A broken promise is an error once, then the end.
        let mut short = StreamBody::with_length(Strict(0), 5);
        let _ = Pin::new(&mut short).poll_next(&mut cx);
        assert!(matches!(
            Pin::new(&mut short).poll_next(&mut cx),
            Poll::Ready(Some(Err(_)))
        ));
        assert!(matches!(
            Pin::new(&mut short).poll_next(&mut cx),
            Poll::Ready(None)
        ));
    }

    #[test]
    fn full_and_empty_stay_ended() {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut full = Full::new("a");
        let _ = Pin::new(&mut full).poll_next(&mut cx);
        assert!(matches!(
            Pin::new(&mut full).poll_next(&mut cx),
            Poll::Ready(None)
        ));
        assert!(matches!(
            Pin::new(&mut full).poll_next(&mut cx),
            Poll::Ready(None)
        ));
        assert!(matches!(
            Pin::new(&mut Empty).poll_next(&mut cx),
            Poll::Ready(None)
        ));
    }

    #[test]
    fn box_body_forwards_everything() {
        let body = BoxBody::new(StreamBody::new(ok(&["x", "yz"])));
        assert_eq!(body.content_length(), None);
        assert_eq!(collect(body).unwrap().concat(), b"xyz");
    }

    #[test]
    fn lengths_hints_and_debug_forms_are_forwarded() {
        let boxed: Box<Full> = Box::new(Full::new("abc"));
        assert_eq!(Body::content_length(&boxed), Some(3));
        assert_eq!(BoxBody::new(Full::new("abcd")).content_length(), Some(4));
        assert_eq!(Full::new("x").size_hint(), (1, Some(1)));
        assert_eq!(Full::new("").size_hint(), (0, Some(0)));
        assert_eq!(Empty.size_hint(), (0, Some(0)));
        assert_eq!(format!("{:?}", Full::new("abc")), "Full { len: 3 }");
        let boxed = format!("{:?}", BoxBody::new(Full::new("ab")));
        assert!(boxed.contains("content_length: Some(2)"), "{boxed}");
        let mut body = Full::new("a");
        assert!(format!("{:?}", body.chunk()).starts_with("Chunk"));
    }

    #[test]
    fn the_wrappers_pass_take_file_on() {
        use crate::file::{FileBody, FileRange};
        let temp = crate::file::tests::Temp::new("wrappers", b"abcdef");
        let file = || FileBody::new(FileRange::new(temp.open(), 1, 3).unwrap());
        let len = |range: Option<FileRange>| range.map(|range| range.len());
        let mut boxed = BoxBody::new(file());
        assert_eq!(len(Pin::new(&mut boxed).take_file()), Some(3));
        assert_eq!(boxed.content_length(), Some(0));
        let mut either: Either<Full, FileBody> = Either::Right(file());
        assert_eq!(len(Pin::new(&mut either).take_file()), Some(3));
        let mut left: Either<FileBody, Full> = Either::Left(file());
        assert_eq!(len(Pin::new(&mut left).take_file()), Some(3));
        let mut plain: Box<FileBody> = Box::new(file());
        assert_eq!(len(Pin::new(&mut plain).take_file()), Some(3));
        let mut inner = file();
        let mut by_ref = &mut inner;
        assert_eq!(len(Pin::new(&mut by_ref).take_file()), Some(3));
        let mut pinned = Box::pin(file());
        assert_eq!(len(Pin::new(&mut pinned).take_file()), Some(3));
        let mut stream = StreamBody::new(ok(&["x"]));
        assert!(Pin::new(&mut stream).take_file().is_none());
        assert!(Pin::new(&mut Empty).take_file().is_none());
    }

    #[test]
    fn bodies_are_send_and_sync_where_it_matters() {
        fn send<T: Send>() {}
        send::<Full>();
        send::<Empty>();
        send::<BoxBody>();
    }
}
