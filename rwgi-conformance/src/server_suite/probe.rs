//! The probe: the app the suite hosts in the server under test.
//!
//! Each check tells the probe what to do with the next requests ([`Probe::set`]); the probe runs
//! that app and records what the server gave it and did with it: the environ's facts, the
//! thread it ran on, whether its future and its body were dropped, and what reading the
//! request body gave. The suite reads the records from another thread, so nothing here needs an
//! async runtime: waiting is done with [`Gate`]s, which the suite opens from its own thread.

use std::collections::{BTreeMap, VecDeque};
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use http::{HeaderMap, Method, StatusCode};

use rwgi::app::{app_fn, BoxApp};
use rwgi::body::{Body, BoxBody, Full};
use rwgi::cgi::server_protocol;
use rwgi::environ::ServerInfo;
use rwgi::path::latin1;
use rwgi::{App, Environ, Error, Input, Response, StartResponse};

/// Marks every error message and panic payload of the probe: a server that shows it to the
/// client leaks error details (REQ-ERR-5).
pub(super) const SECRET: &str = "rwgi-probe-secret-5b1e";

/// The facts of one request as the app saw them, every byte string mapped one byte to one
/// character as in the vectors.
#[derive(Clone, Debug)]
pub(super) struct Seen {
    pub(super) method: String,
    pub(super) script_name: String,
    pub(super) path_info: String,
    /// The segments of `path_info`, each decoded on its own.
    pub(super) path_segments: Vec<String>,
    pub(super) query_string: String,
    pub(super) server_name: String,
    pub(super) server_port: u16,
    pub(super) version: &'static str,
    pub(super) url_scheme: String,
    pub(super) headers: BTreeMap<String, Vec<String>>,
    pub(super) cgi: BTreeMap<String, String>,
    pub(super) input_length: Option<u64>,
    pub(super) local_addr: Option<SocketAddr>,
    pub(super) remote_addr: Option<SocketAddr>,
    pub(super) server: ServerInfo,
}

impl Seen {
    /// Captures the facts of `environ`, before its body is read.
    pub(super) fn of(environ: &Environ) -> Seen {
        let text = |s: &str| latin1(s.as_bytes()).into_owned();
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in environ.headers() {
            headers
                .entry(name.as_str().to_owned())
                .or_default()
                .push(latin1(value.as_bytes()).into_owned());
        }
        Seen {
            method: environ.method().as_str().to_owned(),
            script_name: text(environ.script_name()),
            path_info: text(environ.path_info()),
            path_segments: environ
                .path_segments()
                .map(|segment| latin1(&segment.decode()).into_owned())
                .collect(),
            query_string: text(environ.query_string()),
            server_name: text(&environ.server_name()),
            server_port: environ.server_port(),
            version: server_protocol(environ.version()),
            url_scheme: environ.url_scheme().as_str().to_owned(),
            headers,
            cgi: environ.cgi_variables().into_map(),
            input_length: environ.input().content_length(),
            local_addr: environ.local_addr(),
            remote_addr: environ.remote_addr(),
            server: environ.server().clone(),
        }
    }
}

/// How reading a request body ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum InputEnd {
    /// The body ended.
    Complete,
    /// The app stopped reading on purpose.
    Stopped,
    /// The body yielded an error.
    Failed(String),
}

/// What reading a request body gave.
#[derive(Clone, Debug)]
pub(super) struct InputRecord {
    /// The first bytes, up to the limit the reader was given.
    pub(super) kept: Vec<u8>,
    /// How many bytes arrived in all.
    pub(super) received: u64,
    /// [`checksum`] of all of them.
    pub(super) checksum: u64,
    pub(super) end: InputEnd,
}

/// The starting value of [`checksum`].
pub(super) const CHECKSUM_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, continued from `state` over `bytes`: enough to tell whether megabytes arrived
/// intact without keeping them.
pub(super) fn checksum(state: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(state, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Reads `input` until it ends, fails, or `stop_after` bytes arrived, keeping the first `keep`
/// bytes.
pub(super) async fn drain(input: &mut Input, keep: usize, stop_after: Option<u64>) -> InputRecord {
    let mut record = InputRecord {
        kept: Vec::new(),
        received: 0,
        checksum: CHECKSUM_START,
        end: InputEnd::Complete,
    };
    loop {
        if stop_after.is_some_and(|limit| record.received >= limit) {
            record.end = InputEnd::Stopped;
            return record;
        }
        match input.chunk().await {
            Some(Ok(chunk)) => {
                let room = keep.saturating_sub(record.kept.len()).min(chunk.len());
                record.kept.extend_from_slice(&chunk[..room]);
                record.received += chunk.len() as u64;
                record.checksum = checksum(record.checksum, &chunk);
            }
            Some(Err(error)) => {
                record.end = InputEnd::Failed(error.to_string());
                return record;
            }
            None => return record,
        }
    }
}

/// A signal the suite gives to a waiting app or body: closed until [`Gate::open`].
#[derive(Clone, Debug, Default)]
pub(super) struct Gate {
    inner: Arc<Mutex<GateState>>,
}

#[derive(Debug, Default)]
struct GateState {
    open: bool,
    wakers: Vec<Waker>,
}

impl Gate {
    /// Opens the gate for good and wakes everything waiting on it.
    pub(super) fn open(&self) {
        let wakers = {
            let mut state = lock(&self.inner);
            state.open = true;
            std::mem::take(&mut state.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// A guard that opens the gate when the check is over, however it ends, so that nothing
    /// stays parked in the server.
    pub(super) fn opener(&self) -> Opener {
        Opener(self.clone())
    }

    fn poll_open(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.inner);
        if state.open {
            return Poll::Ready(());
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits until the gate is open.
    pub(super) async fn passed(&self) {
        poll_fn(|cx| self.poll_open(cx)).await;
    }
}

/// Opens its gate when dropped.
#[derive(Debug)]
pub(super) struct Opener(Gate);

impl Drop for Opener {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// One step of a [`Script`] body.
#[derive(Clone, Debug)]
pub(super) enum Step {
    /// Yields these bytes.
    Data(&'static [u8]),
    /// Yields an empty chunk.
    Empty,
    /// Yields an error.
    Fail,
    /// Panics.
    Panic,
    /// Waits for the gate, then goes on.
    Wait(Gate),
    /// Yields 1 KiB chunks forever.
    Endless,
}

/// A response body that follows a list of steps.
#[derive(Clone, Debug)]
pub(super) struct Script {
    steps: VecDeque<Step>,
    length: Option<u64>,
}

impl Script {
    /// A body of unknown length.
    pub(super) fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Script {
            steps: steps.into_iter().collect(),
            length: None,
        }
    }

    /// Announces `length` as the body's exact length.
    pub(super) fn with_length(mut self, length: u64) -> Self {
        self.length = Some(length);
        self
    }
}

impl Stream for Script {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let Some(step) = self.steps.front() else {
                return Poll::Ready(None);
            };
            let item = match step {
                Step::Wait(gate) => {
                    if gate.poll_open(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.steps.pop_front();
                    continue;
                }
                Step::Endless => return Poll::Ready(Some(Ok(Bytes::from_static(&[b'.'; 1024])))),
                Step::Data(data) => Ok(Bytes::from_static(data)),
                Step::Empty => Ok(Bytes::new()),
                Step::Fail => Err(Error::msg(format!("probe body failed: {SECRET}"))),
                Step::Panic => panic!("rwgi probe: deliberate panic in a body: {SECRET}"),
            };
            self.steps.pop_front();
            if let (Ok(chunk), Some(length)) = (&item, self.length.as_mut()) {
                *length = length.saturating_sub(chunk.len() as u64);
            }
            return Poll::Ready(Some(item));
        }
    }
}

impl Body for Script {
    fn content_length(&self) -> Option<u64> {
        self.length
    }
}

/// Which call of the probe a request is: put in the environ's extensions so the app can
/// report on its own call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CallId {
    epoch: u64,
    index: usize,
}

/// What the probe recorded about one call.
#[derive(Clone, Debug)]
pub(super) struct Call {
    pub(super) seen: Seen,
    /// The thread the server called the app on.
    pub(super) thread: ThreadId,
    /// What reading the body gave, when the app read it.
    pub(super) input: Option<InputRecord>,
    /// The app's future completed.
    pub(super) answered: bool,
    /// The app's future was dropped before it completed.
    pub(super) abandoned: bool,
    /// The response body was dropped.
    pub(super) body_dropped: bool,
    /// The response body was polled after it ended or failed.
    pub(super) polled_after_end: bool,
}

impl Call {
    /// Whether the app's future is still running.
    pub(super) fn in_app(&self) -> bool {
        !self.answered && !self.abandoned
    }
}

#[derive(Default)]
struct State {
    /// Bumped by every [`Probe::set`], so that late reports of an earlier check's calls are
    /// ignored.
    epoch: u64,
    app: Option<BoxApp>,
    calls: Vec<Call>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// The app the suite hosts, and the records of its calls.
#[derive(Clone)]
pub(super) struct Probe {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking probe app never holds a lock, but a poisoned lock must not end the suite.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Probe {
    pub(super) fn new() -> Probe {
        Probe {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
        }
    }

    /// Runs `app` for the next requests, forgetting the calls recorded so far.
    pub(super) fn set<A: App + 'static>(&self, app: A) {
        let mut state = lock(&self.shared.state);
        state.epoch += 1;
        state.app = Some(BoxApp::new(app));
        state.calls.clear();
    }

    /// Stops answering: requests get an error until the next [`Probe::set`].
    pub(super) fn clear(&self) {
        let mut state = lock(&self.shared.state);
        state.epoch += 1;
        state.app = None;
        state.calls.clear();
    }

    /// The calls recorded since the last [`Probe::set`].
    pub(super) fn calls(&self) -> Vec<Call> {
        lock(&self.shared.state).calls.clone()
    }

    /// Waits up to `timeout` until `done` holds for the recorded calls: `Ok` with them then,
    /// `Err` with them at the timeout.
    pub(super) fn wait(
        &self,
        timeout: Duration,
        done: impl Fn(&[Call]) -> bool,
    ) -> Result<Vec<Call>, Vec<Call>> {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.shared.state);
        loop {
            if done(&state.calls) {
                return Ok(state.calls.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(state.calls.clone());
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn update(&self, id: CallId, change: impl FnOnce(&mut Call)) {
        let mut state = lock(&self.shared.state);
        if state.epoch == id.epoch {
            if let Some(call) = state.calls.get_mut(id.index) {
                change(call);
            }
        }
        drop(state);
        self.shared.changed.notify_all();
    }

    /// Records what reading the body of `environ`'s call gave.
    pub(super) fn note_input(&self, environ: &Environ, record: InputRecord) {
        if let Some(&id) = environ.extensions().get::<CallId>() {
            self.update(id, |call| call.input = Some(record));
        }
    }

    fn begin(&self, environ: &Environ) -> (CallId, Option<BoxApp>) {
        let seen = Seen::of(environ);
        let mut state = lock(&self.shared.state);
        let id = CallId {
            epoch: state.epoch,
            index: state.calls.len(),
        };
        state.calls.push(Call {
            seen,
            thread: std::thread::current().id(),
            input: None,
            answered: false,
            abandoned: false,
            body_dropped: false,
            polled_after_end: false,
        });
        let app = state.app.clone();
        drop(state);
        self.shared.changed.notify_all();
        (id, app)
    }
}

impl App for Probe {
    type Body = BoxBody;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<BoxBody>, Error> {
        let (id, app) = self.begin(&environ);
        environ.extensions_mut().insert(id);
        let mut running = Running {
            probe: self.clone(),
            id,
            answered: false,
        };
        let result = match app {
            Some(app) => app.call(environ, start).await,
            None => Err(Error::msg("the probe has no app to run")),
        };
        running.answered = true;
        drop(running);
        let probe = self.clone();
        Ok(result?.map_body(|body| {
            BoxBody::new(Traced {
                body,
                probe,
                id,
                ended: false,
            })
        }))
    }
}

/// Records, when dropped, whether the app's future completed or was abandoned.
struct Running {
    probe: Probe,
    id: CallId,
    answered: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        let answered = self.answered;
        self.probe.update(self.id, |call| {
            if answered {
                call.answered = true;
            } else {
                call.abandoned = true;
            }
        });
    }
}

/// The app's response body, recording when it is dropped and whether it is polled after it
/// ended.
struct Traced {
    body: BoxBody,
    probe: Probe,
    id: CallId,
    ended: bool,
}

impl Stream for Traced {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            self.probe
                .update(self.id, |call| call.polled_after_end = true);
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut self.body).poll_next(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.ended = true;
        }
        polled
    }
}

impl Body for Traced {
    fn content_length(&self) -> Option<u64> {
        self.body.content_length()
    }

    /// A file body stays a file for the server (§14.9).
    fn take_file(mut self: Pin<&mut Self>) -> Option<rwgi::file::FileRange> {
        Pin::new(&mut self.body).take_file()
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        self.probe.update(self.id, |call| call.body_dropped = true);
    }
}

/// How many body bytes [`record`] keeps for comparison.
pub(super) const KEEP: usize = 64 * 1024;

/// Reads the whole body, recording it, and answers `200` (`501` to `CONNECT`, should a server
/// call it for one against REQ-SRV-12: the probe opens no tunnels).
pub(super) fn record(probe: &Probe) -> impl App {
    let probe = probe.clone();
    app_fn(move |mut environ: Environ, start: StartResponse| {
        let probe = probe.clone();
        async move {
            let record = drain(environ.input_mut(), KEEP, None).await;
            probe.note_input(&environ, record);
            let status = if environ.method() == Method::CONNECT {
                StatusCode::NOT_IMPLEMENTED
            } else {
                StatusCode::OK
            };
            Ok(start
                .start(status, HeaderMap::new())
                .body(Full::new("recorded\n")))
        }
    })
}

/// Reads `read` bytes of the body (none for `None`), recording them, and answers `200`.
pub(super) fn partial(probe: &Probe, read: Option<u64>) -> impl App {
    let probe = probe.clone();
    app_fn(move |mut environ: Environ, start: StartResponse| {
        let probe = probe.clone();
        async move {
            if let Some(limit) = read {
                let record = drain(environ.input_mut(), 0, Some(limit)).await;
                probe.note_input(&environ, record);
            }
            Ok(start
                .start(StatusCode::OK, HeaderMap::new())
                .body(Full::new("first\n")))
        }
    })
}

/// Answers `"{method} {path_info} {body}"`, once `gate` (if any) is open.
pub(super) fn echo(probe: &Probe, gate: Option<&Gate>) -> impl App {
    let probe = probe.clone();
    let gate = gate.cloned();
    app_fn(move |mut environ: Environ, start: StartResponse| {
        let probe = probe.clone();
        let gate = gate.clone();
        async move {
            if let Some(gate) = gate {
                gate.passed().await;
            }
            let record = drain(environ.input_mut(), KEEP, None).await;
            let mut text = format!("{} {} ", environ.method(), environ.path_info()).into_bytes();
            text.extend_from_slice(&record.kept);
            probe.note_input(&environ, record);
            Ok(start
                .start(StatusCode::OK, HeaderMap::new())
                .body(Full::new(text)))
        }
    })
}

/// Answers with `status`, `headers` and a fresh copy of `body`, without reading the request
/// body.
pub(super) fn reply(status: StatusCode, headers: HeaderMap, body: Script) -> impl App {
    app_fn(move |_: Environ, start: StartResponse| {
        let response = start.start(status, headers.clone()).body(body.clone());
        async move { Ok(response) }
    })
}

/// Fails without answering: returns an error, or panics when `panic` is set.
pub(super) fn failing(panic: bool) -> impl App {
    app_fn(move |_: Environ, _: StartResponse| async move {
        if panic {
            panic!("rwgi probe: deliberate panic in an app: {SECRET}");
        }
        Err::<Response<Full>, _>(Error::msg(format!("probe app failed: {SECRET}")))
    })
}
