//! The deadlines around a connection's slow parts: reading a request body (`body_timeout` and
//! `min_body_rate`) and writing a response to a client that stopped reading (`write_timeout`),
//! and the typed errors an app sees when the server fails its request body.
//!
//! Each timer is made the first time its operation has to wait, and only when its setting is
//! on: a request whose body is already there, or a response the socket takes at once, never
//! touches the timer wheel or the clock.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rwgi::input::{InputError, InputErrorKind};
use tokio::time::{Instant, Sleep};

/// The error for a body that stopped arriving for `body_timeout`.
#[cold]
fn timed_out(after: Duration) -> InputError {
    InputError::new(
        InputErrorKind::TimedOut,
        format!("no request body bytes arrived for {after:?} (body_timeout)"),
    )
}

/// The error for a body that ran past `limit_request_body`.
#[cold]
pub(crate) fn too_large(limit: u64) -> InputError {
    InputError::new(
        InputErrorKind::TooLarge,
        format!("the request body is over {limit} bytes (limit_request_body)"),
    )
}

/// The error hyper's failure of a request body becomes: an [`InputError`] when the client is
/// the cause (REQ-INPUT-8), hyper's error itself otherwise.
///
/// hyper's HTTP/1 decoder fails a body with an `io::Error`: `InvalidInput` or `InvalidData`
/// for framing it refuses (a chunk size line that is not hexadecimal or overflows, chunk data
/// not followed by CRLF, chunk extensions over its 16 KiB limit, a bare LF in a chunk line),
/// `UnexpectedEof` for a connection that ended inside the body. A reset connection is the
/// client gone too. Anything else (HTTP/2 stream errors among them) stays hyper's error.
#[cold]
pub(crate) fn body_error(error: hyper::Error) -> rwgi::Error {
    use std::error::Error as _;

    let cause = error
        .source()
        .and_then(|source| source.downcast_ref::<io::Error>());
    let kind = match cause.map(io::Error::kind) {
        Some(io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData) => InputErrorKind::Malformed,
        Some(
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe,
        ) => InputErrorKind::Incomplete,
        _ if error.is_incomplete_message() => InputErrorKind::Incomplete,
        _ => return rwgi::Error::new(error),
    };
    let detail = cause.map_or_else(|| error.to_string(), io::Error::to_string);
    let message = match kind {
        InputErrorKind::Malformed => format!("the request body's framing is broken: {detail}"),
        _ => format!("the request body ended early: {detail}"),
    };
    rwgi::Error::new(InputError::new(kind, message))
}

/// The error for a chunked HTTP/1.1 body whose last chunk is followed by a bare LF.
///
/// hyper takes every byte after the last chunk's line up to the next CRLF CRLF as the trailer
/// section, so after `0\r\n\n` it swallows whatever comes up to there (a request a lenient
/// front end would see as the next one) and hands over an empty trailer section, which no CRLF
/// framing produces: a section with no fields is no section, and hyper then yields no trailers.
#[cold]
pub(crate) fn bare_lf_after_last_chunk() -> InputError {
    InputError::new(
        InputErrorKind::Malformed,
        "the request body's framing is broken: a bare LF after the last chunk",
    )
}

/// The request-body deadlines a server applies: `body_timeout`, `min_body_rate` and its grace.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyPace {
    /// `body_timeout`; zero: off.
    timeout: Duration,
    /// `min_body_rate` in bytes per second; zero: off.
    min_rate: u64,
    /// `min_body_rate_grace`.
    grace: Duration,
    /// The bytes `grace` buys at `min_rate`: below them the grace decides, without a division.
    grace_bytes: u64,
}

impl BodyPace {
    pub(crate) fn new(timeout: Duration, min_rate: u64, grace: Duration) -> Self {
        let grace_bytes = u128::from(min_rate) * grace.as_nanos() / 1_000_000_000;
        BodyPace {
            timeout,
            min_rate,
            grace,
            grace_bytes: u64::try_from(grace_bytes).unwrap_or(u64::MAX),
        }
    }

    fn is_off(&self) -> bool {
        self.timeout.is_zero() && self.min_rate == 0
    }
}

/// The clock of one request body. It runs only while the app waits for the body (a body whose
/// bytes are already there never starts it), and fails the wait:
///
/// - after `body_timeout` with no byte (restarted by each chunk, as nginx's
///   `client_body_timeout`), and
/// - once the time spent waiting passes `min_body_rate_grace` and the bytes received are fewer
///   than `min_body_rate` per second of it (Kestrel's `MinRequestBodyDataRate`): a client that
///   dribbles a byte at a time, each within `body_timeout`, is cut off too. Time the app spends
///   not reading is not counted: a slow app is not the client's fault.
#[derive(Debug)]
pub(crate) struct BodyClock {
    pace: BodyPace,
    /// Made on the first wait; `None` while off or never waited.
    timer: Option<Pin<Box<Sleep>>>,
    /// When the current wait began; `None` while not waiting.
    since: Option<Instant>,
    /// The time spent waiting before the current wait.
    waited: Duration,
    /// Whether the timer runs for the rate's deadline rather than `body_timeout`'s.
    rate_due: bool,
}

impl BodyClock {
    pub(crate) fn new(pace: BodyPace) -> Self {
        BodyClock {
            pace,
            timer: None,
            since: None,
            waited: Duration::ZERO,
            rate_due: false,
        }
    }

    /// The body made progress: a wait in course ends, and the next starts a fresh
    /// `body_timeout`.
    #[inline(always)]
    pub(crate) fn progress(&mut self) {
        if let Some(since) = self.since {
            self.end_wait(since);
        }
    }

    #[cold]
    fn end_wait(&mut self, since: Instant) {
        // Only the rate needs the time waited: without it, no clock is read here.
        if self.pace.min_rate != 0 {
            self.waited += since.elapsed();
        }
        self.since = None;
    }

    /// The app has to wait for the body, which has yielded `received` bytes so far: the error
    /// to fail the wait with, once a deadline has passed (the timer wakes the task when one
    /// does).
    #[inline]
    pub(crate) fn expired(&mut self, cx: &mut Context<'_>, received: u64) -> Option<InputError> {
        if self.pace.is_off() {
            return None;
        }
        self.expired_slow(cx, received)
    }

    #[cold]
    fn expired_slow(&mut self, cx: &mut Context<'_>, received: u64) -> Option<InputError> {
        let since = match self.since {
            Some(since) => since,
            None => {
                let now = Instant::now();
                self.since = Some(now);
                let stall = (!self.pace.timeout.is_zero())
                    .then(|| now.checked_add(self.pace.timeout))
                    .flatten();
                let rate = self.rate_deadline(now, received);
                let (deadline, rate_due) = match (stall, rate) {
                    (Some(stall), Some(rate)) if rate < stall => (rate, true),
                    (Some(stall), _) => (stall, false),
                    (None, Some(rate)) => (rate, true),
                    // Both too far away to represent.
                    (None, None) => return None,
                };
                self.rate_due = rate_due;
                match &mut self.timer {
                    Some(timer) => timer.as_mut().reset(deadline),
                    None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
                now
            }
        };
        let timer = self.timer.as_mut()?;
        if timer.as_mut().poll(cx).is_pending() {
            return None;
        }
        Some(if self.rate_due {
            let waited = self.waited + since.elapsed();
            InputError::new(
                InputErrorKind::TimedOut,
                format!(
                    "the request body arrived slower than {} bytes/s (min_body_rate): {received} \
                     bytes in {:.1} s of waiting",
                    self.pace.min_rate,
                    waited.as_secs_f64()
                ),
            )
        } else {
            timed_out(self.pace.timeout)
        })
    }

    /// When a wait that starts `now` fails the rate: once the total time waited reaches the
    /// grace period, or the time `received` bytes buy at the minimum rate if that is longer.
    /// `None` when the rate is off or the deadline too far away to represent.
    fn rate_deadline(&self, now: Instant, received: u64) -> Option<Instant> {
        let rate = self.pace.min_rate;
        if rate == 0 {
            return None;
        }
        let allowed = if received <= self.pace.grace_bytes {
            self.pace.grace
        } else {
            let nanos = u128::from(received % rate) * 1_000_000_000 / u128::from(rate);
            // Below a second's worth of nanoseconds by construction.
            Duration::new(received / rate, u32::try_from(nanos).unwrap_or(0))
        };
        now.checked_add(allowed.saturating_sub(self.waited))
    }
}

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

impl Stall {
    /// A write's `poll` as the connection returns it: one that has made no progress for the
    /// limit fails with [`io::ErrorKind::TimedOut`] (`write_timeout`), and hyper then drops the
    /// connection and the response body.
    #[inline]
    pub(crate) fn check<R>(
        &mut self,
        poll: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match poll {
            Poll::Pending => {
                if self.expired(cx) {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "a response write made no progress for {:?} (write_timeout)",
                            self.limit()
                        ),
                    )))
                } else {
                    Poll::Pending
                }
            }
            ready => {
                self.progress();
                ready
            }
        }
    }
}
