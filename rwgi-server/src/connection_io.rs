//! A connection's socket as hyper sees it: its reads go through the connection's framing
//! tracker (the `framing` module), its writes fail once one has made no progress for
//! `write_timeout` (the `deadline` module's [`Stall`]). One wrapper for both, so that each
//! read and each write passes one layer.
//!
//! [`Replayed`] hands a connection to its next reader with the bytes already read from it in
//! front: after the server read them to tell HTTP/2 from HTTP/1.1, or after hyper read past an
//! upgraded request's head.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::deadline::Stall;
use crate::framing::SharedTracker;

/// The connection under hyper (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct ConnectionIo<T> {
    io: T,
    /// `write_timeout`: a write that makes no progress this long fails with
    /// [`io::ErrorKind::TimedOut`], and hyper drops the connection and the response body.
    stall: Stall,
    tracked: SharedTracker,
}

impl<T> ConnectionIo<T> {
    pub(crate) fn new(io: T, write_timeout: Duration, tracked: SharedTracker) -> Self {
        ConnectionIo {
            io,
            stall: Stall::new(write_timeout),
            tracked,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ConnectionIo<T> {
    #[inline(always)]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.tracked.read(&buf.filled()[before..]);
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ConnectionIo<T> {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.stall.check(poll, cx)
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.stall.check(poll, cx)
    }

    #[inline(always)]
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.stall.check(poll, cx)
    }

    #[inline(always)]
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.stall.check(poll, cx)
    }
}

/// A connection's I/O that reads `read` first: bytes read from it before its present reader
/// took it (to tell HTTP/2 from HTTP/1.1, or by hyper before an upgrade).
pub(crate) struct Replayed<T> {
    read: Bytes,
    io: T,
}

impl<T> Replayed<T> {
    pub(crate) fn new(io: T, read: Bytes) -> Self {
        Replayed { read, io }
    }

    /// How many of the bytes read before are still to be read.
    pub(crate) fn unread(&self) -> usize {
        self.read.len()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Replayed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read.is_empty() {
            let n = buf.remaining().min(self.read.len());
            // The last of them lets go of the buffer they were read into.
            let read = match n == self.read.len() {
                true => std::mem::take(&mut self.read),
                false => self.read.split_to(n),
            };
            buf.put_slice(&read);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Replayed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
