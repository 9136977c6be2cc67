//! Connection upgrades (spec §14.10) on HTTP/1.1: the offer, and the connection handed over.
//!
//! hyper marks a request that carries an `Upgrade` header (or is a `CONNECT`) with its own
//! `OnUpgrade`; only then does the connection's service look further, so an ordinary request
//! pays one check of its (empty) extensions. When the request asks for an upgrade the way
//! [`rwgi::upgrade::asks_for_upgrade`] says, the app finds an [`rwgi::upgrade::Upgrade`] offer
//! in its environ and the connection keeps hyper's `OnUpgrade` with the server's side of the
//! offer ([`Handoff`]). After the app's `101` went out, hyper ends the HTTP part of the
//! connection and hands its I/O over; the connection's task then runs the app's handler on it,
//! as an [`UpgradedIo`], and closes the connection when the handler ends.
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

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use rwgi::http::Request;
use rwgi::upgrade::{offer, Acceptance, Io};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::worker::Peer;

/// The I/O an upgrade handler gets from `rwgi-server`, inside the [`rwgi::upgrade::Upgraded`]:
/// hyper's upgraded connection (which holds any bytes the client sent after the request's head
/// before the `101` went out).
///
/// An app that knows it runs on `rwgi-server` may take it back with
/// [`Upgraded::downcast`](rwgi::upgrade::Upgraded::downcast) and use it as a tokio
/// `AsyncRead + AsyncWrite` directly, or take hyper's type out with
/// [`into_inner`](UpgradedIo::into_inner); a portable app adapts `rwgi::upgrade::Upgraded`
/// itself.
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
    io: TokioIo<Upgraded>,
}

impl UpgradedIo {
    /// hyper's upgraded connection, with tokio's I/O traits.
    pub fn into_inner(self) -> TokioIo<Upgraded> {
        self.io
    }
}

impl fmt::Debug for UpgradedIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradedIo").finish_non_exhaustive()
    }
}

impl Io for UpgradedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(buf);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
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

/// An offer made on a connection: hyper's promise of the I/O, and the server's side of the
/// offer.
struct Pending {
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
        *self.lock() = Some(Pending {
            on_upgrade,
            acceptance,
        });
    }

    /// Once hyper is done with the connection: runs the app's handler on it, when the app took
    /// the last offer and its `101` went out (REQ-UPGRADE-3).
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
        let io = match on_upgrade.await {
            Ok(io) => io,
            Err(error) => {
                tracing::debug!("{}: the upgrade did not happen: {error}", Peer(peer));
                return;
            }
        };
        let io = rwgi::upgrade::Upgraded::new(UpgradedIo {
            io: TokioIo::new(io),
        });
        if let Err(error) = handler.run(io).await {
            tracing::error!("{}: {error}", Peer(peer));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
