//! Disconnect notification: a future that completes when the client went away (spec §14.6,
//! REQ-DISC-*).
//!
//! When the client goes away, the server drops the app's future and its body (REQ-CONC-2).
//! That is enough for work done inside them, but not for work they started elsewhere: a task
//! that waits for events to push to a server-sent events stream, a query on a pool, a long
//! poll registered with a broker. A server that offers this extension offers a [`Disconnect`]
//! (found by [`Environ::extension`](crate::Environ::extension)); the app clones it into that
//! work and awaits [`gone`](Disconnect::gone) beside it.
//!
//! Without the extension, the app learns of a departure only by the drop of its future or its
//! body: it can tie such work to a guard it keeps in the body.
//!
//! The server's end is a [`Departure`], which hands out the handles and signals them.
//!
//! ```
//! use rwgi::disconnect::Departure;
//!
//! // The server: one departure per request (or per HTTP/1.1 connection).
//! let departure = Departure::new();
//! let disconnect = departure.disconnect();
//!
//! // The app: work that stops when the client goes.
//! let watcher = std::thread::spawn(move || {
//!     futures_executor::block_on(disconnect.gone());
//!     "cleaned up"
//! });
//!
//! // The server saw the connection close before the response was complete.
//! departure.client_gone();
//! assert_eq!(watcher.join().unwrap(), "cleaned up");
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

/// What an app holds to learn that its client went away (REQ-DISC-1): cheap to clone, `Send`,
/// `Sync` and `'static`, so it can go into any task.
///
/// A server offers it in the environ's extensions, or for a whole connection
/// ([`ConnectionInfo::offer`](crate::environ::ConnectionInfo::offer)):
///
/// ```
/// use rwgi::disconnect::{Departure, Disconnect};
/// use rwgi_conformance::test_client::TestRequest;
///
/// let mut environ = TestRequest::get("/events").into_environ();
/// environ.extensions_mut().insert(Departure::new().disconnect());
///
/// // The app:
/// match environ.extension::<Disconnect>() {
///     Some(disconnect) => assert!(!disconnect.is_gone()),
///     None => { /* rely on the drop of the future and the body (REQ-CONC-2) */ }
/// }
/// ```
#[derive(Clone)]
pub struct Disconnect {
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    gone: AtomicBool,
    waiting: Mutex<Vec<Waker>>,
}

impl Disconnect {
    /// Whether the client has gone away.
    pub fn is_gone(&self) -> bool {
        self.state.gone.load(Ordering::Acquire)
    }

    /// A future that completes once the client has gone away, and never while it is there.
    /// It owns a handle, so it can be moved into a task.
    ///
    /// ```
    /// use rwgi::disconnect::Departure;
    ///
    /// let departure = Departure::new();
    /// let gone = departure.disconnect().gone();
    /// departure.client_gone();
    /// futures_executor::block_on(gone);
    /// ```
    pub fn gone(&self) -> Gone {
        Gone {
            disconnect: self.clone(),
        }
    }

    fn poll_gone(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_gone() {
            return Poll::Ready(());
        }
        {
            let mut waiting = lock(&self.state.waiting);
            if !waiting.iter().any(|waker| waker.will_wake(cx.waker())) {
                waiting.push(cx.waker().clone());
            }
        }
        // Checked again after registering: a departure in between woke no one.
        if self.is_gone() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl fmt::Debug for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Disconnect")
            .field("gone", &self.is_gone())
            .finish()
    }
}

/// The future of [`Disconnect::gone`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Gone {
    disconnect: Disconnect,
}

impl Future for Gone {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.disconnect.poll_gone(cx)
    }
}

/// The server's end of a [`Disconnect`]: it hands out handles and tells them when the client
/// went away. Dropping it tells them nothing, so handles of a request whose client stayed
/// never complete.
///
/// ```
/// use rwgi::disconnect::Departure;
///
/// let departure = Departure::new();
/// let disconnect = departure.disconnect();
/// drop(departure);
/// assert!(!disconnect.is_gone(), "the client did not go");
/// ```
#[derive(Clone, Default)]
pub struct Departure {
    state: Arc<State>,
}

impl Departure {
    /// A departure that has not happened.
    pub fn new() -> Self {
        Departure::default()
    }

    /// A handle for the app.
    pub fn disconnect(&self) -> Disconnect {
        Disconnect {
            state: Arc::clone(&self.state),
        }
    }

    /// Tells every handle that the client went away (REQ-DISC-1), waking what awaits them.
    /// Only the first call has an effect.
    pub fn client_gone(&self) {
        if self.state.gone.swap(true, Ordering::AcqRel) {
            return;
        }
        let waiting = std::mem::take(&mut *lock(&self.state.waiting));
        waiting.into_iter().for_each(Waker::wake);
    }
}

impl fmt::Debug for Departure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Departure")
            .field("gone", &self.state.gone.load(Ordering::Acquire))
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update of the list is a single push or take, so a panic elsewhere leaves it whole.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::tests::noop_waker;

    #[test]
    fn a_waiting_future_completes_once_and_stays_complete() {
        let departure = Departure::new();
        let disconnect = departure.disconnect();
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut gone = disconnect.gone();
        assert!(Pin::new(&mut gone).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut gone).poll(&mut cx).is_pending());
        assert_eq!(
            lock(&departure.state.waiting).len(),
            1,
            "one waker, kept once"
        );
        departure.client_gone();
        departure.client_gone();
        assert!(Pin::new(&mut gone).poll(&mut cx).is_ready());
        assert!(disconnect.is_gone());
        assert!(format!("{disconnect:?}").contains("gone: true"));
        assert!(format!("{departure:?}").contains("gone: true"));
    }

    #[test]
    fn handles_are_send_sync_and_static() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Disconnect>();
        check::<Gone>();
        check::<Departure>();
    }
}
