//! The app suite's driving machinery, independent of any async runtime: a timer thread, polling
//! with caught panics and a time limit, and the request bodies the suite sends.

use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;

use rwgi::body::Body;
use rwgi::server::panic_message;
use rwgi::Error;

/// The upgraded connection the driver hands an upgrade handler: the client closed it at once,
/// so reads end and writes go nowhere.
pub(super) struct Closed;

impl rwgi::upgrade::Io for Closed {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(0))
    }

    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Locks `mutex`, poisoned or not.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked: every critical section is
    // a single assignment or push.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A future that is ready once `duration` has passed, on any executor: a thread sleeps and
/// wakes it. Dropping it early ends the thread.
pub(super) struct Sleep {
    duration: Duration,
    timer: Option<Arc<Timer>>,
}

#[derive(Default)]
struct Timer {
    state: Mutex<TimerState>,
    cancelled: Condvar,
}

#[derive(Default)]
struct TimerState {
    fired: bool,
    cancelled: bool,
    waker: Option<Waker>,
}

impl Sleep {
    pub(super) fn new(duration: Duration) -> Self {
        Sleep {
            duration,
            timer: None,
        }
    }

    fn start(duration: Duration) -> Arc<Timer> {
        let timer = Arc::new(Timer::default());
        let shared = Arc::clone(&timer);
        thread::Builder::new()
            .name("rwgi-app-suite-timer".to_owned())
            .spawn(move || {
                let state = lock(&shared.state);
                let (mut state, _) = shared
                    .cancelled
                    .wait_timeout_while(state, duration, |state| !state.cancelled)
                    .unwrap_or_else(PoisonError::into_inner);
                if !state.cancelled {
                    state.fired = true;
                    let waker = state.waker.take();
                    drop(state);
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                }
            })
            .expect("the app suite needs a timer thread");
        timer
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let duration = self.duration;
        let timer = self.timer.get_or_insert_with(|| Sleep::start(duration));
        let mut state = lock(&timer.state);
        if state.fired {
            return Poll::Ready(());
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(timer) = &self.timer {
            lock(&timer.state).cancelled = true;
            timer.cancelled.notify_one();
        }
    }
}

/// Why driving a future or a body stopped without an answer.
#[derive(Debug)]
pub(super) enum Stop {
    /// It panicked, with this message.
    Panicked(String),
    /// It returned `Pending` and was not woken within the time limit.
    Stalled,
    /// It waits for the part of the request body the gate holds back.
    Gated,
}

/// Drops `value`, catching a panic in its `Drop`.
pub(super) fn drop_caught<T>(value: T) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| drop(value))).map_err(|panic| panic_message(&*panic))
}

/// Polls `future` to its output, with its panics caught, giving up when it is pending without
/// being woken for `limit`, or as soon as it waits at `gate`.
pub(super) async fn drive<F: Future>(
    mut future: Pin<&mut F>,
    limit: Duration,
    gate: Option<&Gate>,
) -> Result<F::Output, Stop> {
    let mut timer = Sleep::new(limit);
    poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Err(panic) => Poll::Ready(Err(Stop::Panicked(panic_message(&*panic)))),
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) if gate.is_some_and(Gate::is_waiting) => {
                Poll::Ready(Err(Stop::Gated))
            }
            Ok(Poll::Pending) => Pin::new(&mut timer).poll(cx).map(|()| Err(Stop::Stalled)),
        },
    )
    .await
}

/// Polls `future` once, with its panics caught.
pub(super) async fn poll_once<F: Future>(
    mut future: Pin<&mut F>,
) -> Result<Poll<F::Output>, String> {
    poll_fn(|cx| {
        Poll::Ready(
            catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)))
                .map_err(|panic| panic_message(&*panic)),
        )
    })
    .await
}

/// Polls `body` for its next item, as [`drive`] does.
pub(super) async fn next_chunk<B: Body + Unpin>(
    body: &mut B,
    limit: Duration,
    gate: Option<&Gate>,
) -> Result<Option<Result<Bytes, Error>>, Stop> {
    let mut next = poll_fn(|cx| Pin::new(&mut *body).poll_next(cx));
    drive(Pin::new(&mut next), limit, gate).await
}

/// Holds back the request body after its first chunk until it is opened: shows whether an app
/// answers, and its body yields, before the whole request body is there.
#[derive(Debug, Default)]
pub(super) struct Gate {
    open: AtomicBool,
    waiting: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Gate {
    /// Whether the body may go on; when not, remembers who to wake.
    pub(super) fn pass(&self, cx: &Context<'_>) -> bool {
        if self.open.load(Ordering::SeqCst) {
            return true;
        }
        *lock(&self.waker) = Some(cx.waker().clone());
        self.waiting.store(true, Ordering::SeqCst);
        self.open.load(Ordering::SeqCst)
    }

    /// Whether the request body is waiting at the closed gate.
    pub(super) fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) && !self.open.load(Ordering::SeqCst)
    }

    /// Whether the gate is still closed.
    pub(super) fn is_closed(&self) -> bool {
        !self.open.load(Ordering::SeqCst)
    }

    /// Lets the rest of the request body through.
    pub(super) fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        if let Some(waker) = lock(&self.waker).take() {
            waker.wake();
        }
    }
}

/// A request body as a client sends it: `length` bytes in chunks of at most `chunk` bytes,
/// with the faults a network adds.
#[derive(Debug)]
pub(super) struct Upload {
    chunk: Bytes,
    remaining: u64,
    sent: u64,
    declared: bool,
    /// The client goes away once this many bytes were sent.
    gone_at: Option<u64>,
    /// Every item is preceded by one `Pending` (with an immediate wake-up).
    slow: bool,
    held: bool,
    gate: Option<Arc<Gate>>,
}

impl Upload {
    /// `length` bytes in chunks of `chunk` bytes; `declared` says whether the length is known
    /// up front (a `Content-Length`) or not (chunked).
    pub(super) fn new(length: u64, chunk: u64, declared: bool) -> Self {
        Upload {
            // The suite's chunks are a few KiB: the cast cannot truncate.
            chunk: Bytes::from(vec![b'r'; chunk as usize]),
            remaining: length,
            sent: 0,
            declared,
            gone_at: None,
            slow: false,
            held: false,
            gate: None,
        }
    }

    /// The client goes away after sending `bytes` bytes: the body fails there.
    pub(super) fn gone_at(mut self, bytes: u64) -> Self {
        self.gone_at = Some(bytes);
        self
    }

    /// Every chunk arrives only on the second poll.
    pub(super) fn slow(mut self) -> Self {
        self.slow = true;
        self
    }

    /// Everything after the first chunk waits for `gate`.
    pub(super) fn gated(mut self, gate: Arc<Gate>) -> Self {
        self.gate = Some(gate);
        self
    }
}

impl Stream for Upload {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.slow && !this.held {
            this.held = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.held = false;
        if this.sent > 0 && this.gate.as_ref().is_some_and(|gate| !gate.pass(cx)) {
            return Poll::Pending;
        }
        if this.gone_at == Some(this.sent) {
            this.gone_at = None;
            this.remaining = 0;
            return Poll::Ready(Some(Err(Error::msg(
                "the client went away in the middle of the upload",
            ))));
        }
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let until_gone = this.gone_at.map_or(u64::MAX, |at| at - this.sent);
        let n = this.remaining.min(until_gone).min(this.chunk.len() as u64);
        this.remaining -= n;
        this.sent += n;
        // `n` is at most the template's length, so it fits a usize.
        Poll::Ready(Some(Ok(this.chunk.slice(..n as usize))))
    }
}

impl Body for Upload {
    fn content_length(&self) -> Option<u64> {
        self.declared.then_some(self.remaining)
    }
}
