//! The response outcome: code that runs once a response is over and is told how it ended
//! (spec §14.4).
//!
//! Dropping a body tells an app that the response is over, not how: whether the client got it
//! all, went away halfway, or the body failed. Access logs, metrics and cleanup that must not
//! be skipped need to know. A server that offers the outcome puts a [`ResponseFinished`] handle
//! in each request's environ extensions; the app (or a middleware) registers callbacks on it,
//! and the server runs each exactly once after the response ended, with the [`Outcome`]
//! (REQ-OUTCOME-1, REQ-OUTCOME-2). It is Rack's `rack.response_finished`, told more.
//!
//! No handle means the server does not offer it (REQ-EXT-1): the app falls back on what the
//! body's `Drop` tells it (REQ-BODY-5), as the access log middleware does.
//!
//! ```
//! use rwgi::body::Full;
//! use rwgi::outcome::{Ending, ResponseFinished};
//! use rwgi::{Environ, Error, Response, StartResponse};
//!
//! async fn download(environ: Environ, start: StartResponse) -> Result<Response<Full>, Error> {
//!     if let Some(finished) = environ.extensions().get::<ResponseFinished>() {
//!         finished.on_finish(|outcome| {
//!             if outcome.ending() != Ending::Completed {
//!                 eprintln!("download cut short after {} bytes", outcome.bytes_sent());
//!             }
//!         });
//!     }
//!     Ok(start.start(Default::default(), Default::default()).body(Full::new("file contents")))
//! }
//! # let _ = download;
//! ```

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};

use http::StatusCode;

/// How a response ended (REQ-OUTCOME-2).
///
/// ```
/// use rwgi::outcome::Ending;
///
/// assert_eq!(Ending::Completed.to_string(), "completed");
/// assert_eq!(Ending::ClientGone.to_string(), "client-gone");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ending {
    /// The whole response was handed to the connection.
    Completed,
    /// The client went away (REQ-CONC-2), or stopped reading until the server gave up on it,
    /// before the response was complete.
    ClientGone,
    /// The response body failed after the head was sent, and the server aborted the
    /// connection (REQ-ERR-3).
    Failed,
    /// The app did not answer in the time the server allows, and the server answered for it.
    TimedOut,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ending::Completed => "completed",
            Ending::ClientGone => "client-gone",
            Ending::Failed => "failed",
            Ending::TimedOut => "timed-out",
        })
    }
}

/// What became of one response: how it ended, the status sent, and how many body bytes went
/// out (REQ-OUTCOME-2).
///
/// ```
/// use rwgi::http::StatusCode;
/// use rwgi::outcome::{Ending, Outcome};
///
/// let outcome = Outcome::new(Ending::ClientGone, Some(StatusCode::OK), 65_536);
/// assert_eq!(outcome.ending(), Ending::ClientGone);
/// assert_eq!(outcome.status(), Some(StatusCode::OK));
/// assert_eq!(outcome.bytes_sent(), 65_536);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    ending: Ending,
    status: Option<StatusCode>,
    bytes_sent: u64,
}

impl Outcome {
    /// An outcome, as a server reports it.
    pub const fn new(ending: Ending, status: Option<StatusCode>, bytes_sent: u64) -> Self {
        Outcome {
            ending,
            status,
            bytes_sent,
        }
    }

    /// How the response ended.
    pub const fn ending(&self) -> Ending {
        self.ending
    }

    /// The status sent (the server's own `500` or `503` where it answered for the app);
    /// `None` when nothing was sent because the client went away first.
    pub const fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// The body bytes handed to the connection.
    pub const fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }
}

type Callback = Box<dyn FnOnce(&Outcome) + Send>;

enum Progress {
    /// The response is not over: the callbacks wait.
    Waiting(Vec<Callback>),
    /// The response ended like this; a callback registered now runs at once.
    Finished(Outcome),
}

#[derive(Default)]
struct Slot {
    progress: Mutex<Option<Progress>>,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Progress>> {
        // Every update is one assignment: the state is whole whatever panicked.
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The handle a server puts in the environ's extensions when it offers the outcome: register
/// callbacks on it with [`on_finish`](ResponseFinished::on_finish).
///
/// Clones share the same callbacks, so a middleware and the app it wraps can both register.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use rwgi::http::StatusCode;
/// use rwgi::outcome::{Ending, Finisher, Outcome};
///
/// // The server's side: one pair per request.
/// let (finisher, finished) = Finisher::pair();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&seen);
/// finished.on_finish(move |outcome| log.lock().unwrap().push(outcome.ending()));
/// finisher.finish(Outcome::new(Ending::Completed, Some(StatusCode::OK), 5));
/// // Registered after the end: runs at once.
/// let log = Arc::clone(&seen);
/// finished.on_finish(move |outcome| log.lock().unwrap().push(outcome.ending()));
/// assert_eq!(*seen.lock().unwrap(), [Ending::Completed, Ending::Completed]);
/// ```
#[derive(Clone)]
pub struct ResponseFinished {
    slot: Arc<Slot>,
}

impl ResponseFinished {
    /// Runs `callback` once the response is over, with its outcome; at once when it is over
    /// already (REQ-OUTCOME-1).
    ///
    /// The callback runs on the server's thread as the response ends: keep it quick, do not
    /// block (send slow work elsewhere) and do not panic. A panicking callback does not keep
    /// the others from running.
    pub fn on_finish(&self, callback: impl FnOnce(&Outcome) + Send + 'static) {
        let mut progress = self.slot.lock();
        match &mut *progress {
            Some(Progress::Finished(outcome)) => {
                let outcome = *outcome;
                drop(progress);
                run(Box::new(callback), &outcome);
            }
            Some(Progress::Waiting(callbacks)) => callbacks.push(Box::new(callback)),
            None => *progress = Some(Progress::Waiting(vec![Box::new(callback)])),
        }
    }
}

impl fmt::Debug for ResponseFinished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFinished").finish_non_exhaustive()
    }
}

/// The server's side of a [`ResponseFinished`] handle: it reports the outcome once.
///
/// A `Finisher` dropped without [`finish`](Finisher::finish) (a server whose connection task
/// ended without a word) reports the client gone, with no status and no bytes, so that the
/// callbacks still run exactly once.
///
/// ```
/// use rwgi::outcome::{Ending, Finisher};
///
/// let (finisher, finished) = Finisher::pair();
/// finished.on_finish(|outcome| assert_eq!(outcome.ending(), Ending::ClientGone));
/// drop(finisher);
/// ```
pub struct Finisher {
    slot: Option<Arc<Slot>>,
}

impl Finisher {
    /// A new pair for one request: the server keeps the finisher and puts the handle in the
    /// environ's extensions.
    pub fn pair() -> (Finisher, ResponseFinished) {
        let slot = Arc::new(Slot::default());
        let handle = ResponseFinished {
            slot: Arc::clone(&slot),
        };
        (Finisher { slot: Some(slot) }, handle)
    }

    /// Reports how the response ended: every callback registered runs now, once, and any
    /// registered later runs at once.
    pub fn finish(mut self, outcome: Outcome) {
        self.report(outcome);
    }

    fn report(&mut self, outcome: Outcome) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let waiting = slot.lock().replace(Progress::Finished(outcome));
        if let Some(Progress::Waiting(callbacks)) = waiting {
            for callback in callbacks {
                run(callback, &outcome);
            }
        }
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        self.report(Outcome::new(Ending::ClientGone, None, 0));
    }
}

impl fmt::Debug for Finisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finisher")
            .field("finished", &self.slot.is_none())
            .finish()
    }
}

/// Runs one callback; a panic stops only that one.
fn run(callback: Callback, outcome: &Outcome) {
    let _ = catch_unwind(AssertUnwindSafe(|| callback(outcome)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn each_callback_runs_once_even_when_one_panics() {
        let (finisher, finished) = Finisher::pair();
        let runs = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let runs = Arc::clone(&runs);
            finished.clone().on_finish(move |_| {
                runs.fetch_add(1, Ordering::SeqCst);
            });
        }
        finished.on_finish(|_| panic!("a broken callback"));
        finisher.finish(Outcome::new(Ending::Failed, Some(StatusCode::OK), 1));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let late = Arc::clone(&runs);
        finished.on_finish(move |outcome| {
            assert_eq!(outcome.ending(), Ending::Failed);
            late.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert!(format!("{finished:?}").starts_with("ResponseFinished"));
    }

    #[test]
    fn a_finisher_reports_once_and_says_so() {
        let (finisher, finished) = Finisher::pair();
        assert_eq!(format!("{finisher:?}"), "Finisher { finished: false }");
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        finished.on_finish(move |outcome| {
            assert_eq!(outcome.ending(), Ending::TimedOut);
            counted.fetch_add(1, Ordering::SeqCst);
        });
        finisher.finish(Outcome::new(
            Ending::TimedOut,
            Some(StatusCode::SERVICE_UNAVAILABLE),
            0,
        ));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(Ending::TimedOut.to_string(), "timed-out");
        assert_eq!(Ending::Failed.to_string(), "failed");
    }
}
