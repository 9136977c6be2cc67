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
//! connection when the handler ends. (With the `http2` feature, HTTP/1.1 connections go
//! through hyper's own upgrade machinery instead, `serve_connection_with_upgrades`.)
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
    /// Read from the connection but not yet by the handler.
    read: Bytes,
    io: Pin<Box<dyn Socket>>,
}

/// The connection's I/O, whatever its transport.
trait Socket: AsyncRead + AsyncWrite + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + 'static> Socket for T {}

impl UpgradedIo {
    /// The connection `io`, with `read` already read from it.
    pub(crate) fn new<T: AsyncRead + AsyncWrite + Send + 'static>(io: T, read: Bytes) -> Self {
        UpgradedIo {
            read,
            io: Box::pin(io),
        }
    }
}

impl fmt::Debug for UpgradedIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradedIo")
            .field("read", &self.read.len())
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
        if !self.read.is_empty() {
            let n = buf.remaining().min(self.read.len());
            let read = self.read.split_to(n);
            buf.put_slice(&read);
            return Poll::Ready(Ok(()));
        }
        self.io.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for UpgradedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_shutdown(cx)
    }
}

/// An offer made on a connection: the server's side of it, and (HTTP/2 builds, whose HTTP/1.1
/// connections go through hyper's upgrade machinery) hyper's promise of the I/O.
struct Pending {
    #[cfg(feature = "http2")]
    on_upgrade: OnUpgrade,
    acceptance: Acceptance,
}

/// The connection's last upgrade offer, kept until hyper is done with the connection.
#[derive(Default)]
pub(crate) struct Handoff {
    pending: Mutex<Option<Pending>>,
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
        #[cfg(not(feature = "http2"))]
        drop(on_upgrade);
        *self.lock() = Some(Pending {
            #[cfg(feature = "http2")]
            on_upgrade,
            acceptance,
        });
    }

    /// Once hyper is done with the connection: runs the app's handler on it, when the app took
    /// the last offer and its `101` went out (REQ-UPGRADE-3); `io` takes the connection's I/O
    /// back from hyper.
    #[cfg(not(feature = "http2"))]
    pub(crate) async fn run(&self, peer: Option<SocketAddr>, io: impl FnOnce() -> UpgradedIo) {
        let Some(handler) = self.handler() else {
            return;
        };
        finish(handler.run(Upgraded::new(io())).await, peer);
    }

    /// Once hyper is done with the connection: runs the app's handler on it, when the app took
    /// the last offer and its `101` went out (REQ-UPGRADE-3).
    #[cfg(feature = "http2")]
    pub(crate) async fn run(&self, peer: Option<SocketAddr>) {
        let Some(Pending {
            on_upgrade,
            acceptance,
        }) = self.lock().take()
        else {
            return;
        };
        let Some(handler) = acceptance.take_handler() else {
            return;
        };
        match on_upgrade.await {
            Ok(io) => {
                let io = UpgradedIo::new(hyper_util::rt::TokioIo::new(io), Bytes::new());
                finish(handler.run(Upgraded::new(io)).await, peer);
            }
            Err(error) => {
                tracing::debug!("{}: the upgrade did not happen: {error}", Peer(peer));
            }
        }
    }

    #[cfg(not(feature = "http2"))]
    fn handler(&self) -> Option<rwgi::upgrade::Handler> {
        self.lock().take()?.acceptance.take_handler()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Logs a handler that panicked.
fn finish(ran: Result<(), rwgi::Error>, peer: Option<SocketAddr>) {
    if let Err(error) = ran {
        tracing::error!("{}: {error}", Peer(peer));
    }
}
