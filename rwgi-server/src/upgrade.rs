//! Connection upgrades (spec §14.10) on HTTP/1.1: the offer, and the connection handed over.
//!
//! hyper marks a request that carries an `Upgrade` header (or is a `CONNECT`) with its own
//! `OnUpgrade`; only then does the connection's service look further, so an ordinary request
//! pays one check of its (empty) extensions. When the request asks for an upgrade the way
//! [`rwgi::upgrade::asks_for_upgrade`] says, the app finds an [`rwgi::upgrade::Upgrade`] offer
//! in its environ and the connection keeps the server's side of the offer ([`Handoff`]). After
//! the app's `101` went out, hyper ends the HTTP part of the connection, leaving it whole; the
//! connection's task takes the I/O back (`Connection::into_parts`, with the bytes hyper had
//! read past the request), runs the app's handler on it as an [`UpgradedIo`], and closes the
//! connection when the handler ends. The same with the `http2` feature: a connection that does
//! not open with the HTTP/2 preface is served as without it.
//!
//! The upgraded connection stays one of the worker's open connections: it holds its
//! `worker_connections` slot, and a graceful stop waits for it up to `graceful_timeout` like a
//! request in flight (the handler is not told; it is dropped when the worker exits). Writes
//! keep the `write_timeout`; no other request limit applies. HTTP/2 gets no offers: its
//! extended `CONNECT` (RFC 8441) is left for later.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use rwgi::http::Request;
use rwgi::upgrade::{offer, Acceptance, Io, Upgraded};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::connection_io::Replayed;
use crate::worker::Peer;

/// The I/O an upgrade handler gets from `rwgi-server`, inside the [`rwgi::upgrade::Upgraded`]:
/// the connection's socket (TLS included, with the `write_timeout` of its writes), reading
/// first any bytes the client sent after the request's head that the server had already read.
///
/// It is a tokio `AsyncRead + AsyncWrite`: an app that knows it runs on `rwgi-server` may take
/// it back with [`Upgraded::downcast`](rwgi::upgrade::Upgraded::downcast) and use it as such;
/// a portable app adapts `rwgi::upgrade::Upgraded` itself.
///
/// ```no_run
/// # async fn handler(io: rwgi::upgrade::Upgraded) {
/// use rwgi_server::UpgradedIo;
/// use tokio::io::AsyncWriteExt;
///
/// if let Ok(mut io) = io.downcast::<UpgradedIo>() {
///     io.write_all(b"hello").await.unwrap();
/// }
/// # }
/// ```
pub struct UpgradedIo {
    /// The connection, and what hyper read from it but did not parse.
    io: Replayed<Pin<Box<dyn Socket>>>,
}

/// The connection's I/O, whatever its transport.
trait Socket: AsyncRead + AsyncWrite + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + 'static> Socket for T {}

impl UpgradedIo {
    /// The connection `io`, with `read` already read from it.
    pub(crate) fn new<T: AsyncRead + AsyncWrite + Send + 'static>(io: T, read: Bytes) -> Self {
        UpgradedIo {
            io: Replayed::new(Box::pin(io), read),
        }
    }
}

impl fmt::Debug for UpgradedIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradedIo")
            .field("read", &self.io.unread())
            .finish_non_exhaustive()
    }
}

impl Io for UpgradedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(buf);
        ready!(AsyncRead::poll_read(self, cx, &mut read))?;
        Poll::Ready(Ok(read.filled().len()))
    }

    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(self, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(self, cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_shutdown(self, cx)
    }
}

impl AsyncRead for UpgradedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for UpgradedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The connection's last upgrade offer, kept until hyper is done with the connection.
#[derive(Default)]
pub(crate) struct Handoff {
    pending: Mutex<Option<Acceptance>>,
}

impl Handoff {
    /// For a request hyper marked as upgradable: offers the upgrade in the request's extensions
    /// (which become the environ's) when the request asks for one (REQ-UPGRADE-1), and keeps
    /// hyper's `OnUpgrade` out of the app's sight either way.
    #[cold]
    pub(crate) fn offer<B>(&self, request: &mut Request<B>) {
        let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
            return;
        };
        let Some((upgrade, acceptance)) =
            offer(request.method(), request.version(), request.headers())
        else {
            return;
        };
        request.extensions_mut().insert(upgrade);
        drop(on_upgrade);
        *self.lock() = Some(acceptance);
    }

    /// Once hyper is done with the connection: runs the app's handler on it, when the app took
    /// the last offer and its `101` went out (REQ-UPGRADE-3); `io` takes the connection's I/O
    /// back from hyper.
    pub(crate) async fn run(&self, peer: Option<SocketAddr>, io: impl FnOnce() -> UpgradedIo) {
        let pending = self.lock().take();
        let Some(handler) = pending.as_ref().and_then(Acceptance::take_handler) else {
            return;
        };
        if let Err(error) = handler.run(Upgraded::new(io())).await {
            // A handler that panicked.
            tracing::error!("{}: {error}", Peer(peer));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Acceptance>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
