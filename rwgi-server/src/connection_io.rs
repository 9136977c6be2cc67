//! A connection's socket as hyper sees it: its reads go through the connection's framing
//! tracker (the `framing` module), its writes fail once one has made no progress for
//! `write_timeout` (the `deadline` module's [`Stall`]). One wrapper for both, so that each
//! read and each write passes one layer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

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
