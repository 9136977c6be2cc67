//! The deadlines around a connection's slow parts: reading a request body (`body_timeout`) and
//! writing a response to a client that stopped reading (`write_timeout`), and the typed error
//! an app sees when the server fails its request body.
//!
//! Each timer is made the first time its operation has to wait, and only when its setting is
//! on: a request whose body is already there, or a response the socket takes at once, never
//! touches the timer wheel.

use std::fmt;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Why the server failed the request body an app was reading. The app's
/// [`Input`](rwgi::Input) yields an [`rwgi::Error`] that wraps it:
///
/// ```
/// # fn check(error: &rwgi::Error) -> u16 {
/// use rwgi_server::InputError;
///
/// match error.downcast_ref::<InputError>() {
///     Some(error) if error.is_timeout() => 408, // the client stopped sending
///     Some(error) if error.is_too_large() => 413, // over limit_request_body
///     _ => 400, // the client went away, or sent a broken body
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InputError {
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    TimedOut(Duration),
    TooLarge(u64),
}

impl InputError {
    pub(crate) fn timed_out(after: Duration) -> Self {
        InputError {
            kind: Kind::TimedOut(after),
        }
    }

    pub(crate) fn too_large(limit: u64) -> Self {
        InputError {
            kind: Kind::TooLarge(limit),
        }
    }

    /// Whether no body bytes arrived for `body_timeout` while the app waited for them.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, Kind::TimedOut(_))
    }

    /// Whether the body ran past `limit_request_body` (a body of unknown length; one that
    /// declares a longer `Content-Length` is answered `413` before the app is called).
    pub fn is_too_large(&self) -> bool {
        matches!(self.kind, Kind::TooLarge(_))
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::TimedOut(after) => write!(
                f,
                "no request body bytes arrived for {after:?} (body_timeout)"
            ),
            Kind::TooLarge(limit) => write!(
                f,
                "the request body is over {limit} bytes (limit_request_body)"
            ),
        }
    }
}

impl std::error::Error for InputError {}

/// A deadline that runs only while an operation waits, restarted each time it waits anew
/// after making progress.
#[derive(Debug)]
pub(crate) struct Stall {
    /// Zero: off.
    limit: Duration,
    /// Made on the first wait; `None` while off or never waited.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether the timer runs for the current wait.
    waiting: bool,
}

impl Stall {
    pub(crate) fn new(limit: Duration) -> Self {
        Stall {
            limit,
            timer: None,
            waiting: false,
        }
    }

    /// The operation made progress: the next wait starts a fresh deadline.
    #[inline(always)]
    pub(crate) fn progress(&mut self) {
        self.waiting = false;
    }

    /// The operation has to wait: whether its deadline has passed (the timer wakes the task
    /// when it does).
    #[inline]
    pub(crate) fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.limit.is_zero() {
            return false;
        }
        self.expired_slow(cx)
    }

    #[cold]
    fn expired_slow(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.waiting {
            self.waiting = true;
            let deadline = Instant::now() + self.limit;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        match &mut self.timer {
            Some(timer) => timer.as_mut().poll(cx).is_ready(),
            None => false,
        }
    }

    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }
}

/// A connection whose writes fail with [`io::ErrorKind::TimedOut`] once one has made no
/// progress for `write_timeout`: hyper then drops the connection (and the response body).
#[derive(Debug)]
pub(crate) struct WriteDeadline<T> {
    io: T,
    stall: Stall,
}

impl<T> WriteDeadline<T> {
    pub(crate) fn new(io: T, limit: Duration) -> Self {
        WriteDeadline {
            io,
            stall: Stall::new(limit),
        }
    }

    #[inline]
    fn check<R>(&mut self, poll: Poll<io::Result<R>>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match poll {
            Poll::Pending => {
                if self.stall.expired(cx) {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "a response write made no progress for {:?} (write_timeout)",
                            self.stall.limit()
                        ),
                    )))
                } else {
                    Poll::Pending
                }
            }
            ready => {
                self.stall.progress();
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    #[inline(always)]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.check(poll, cx)
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.check(poll, cx)
    }

    #[inline(always)]
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.check(poll, cx)
    }

    #[inline(always)]
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.check(poll, cx)
    }
}
