//! The probe: the app the suite hosts in the server under test.
//!
//! Each check tells the probe what to do with the next requests ([`Probe::set`], with a
//! [`Behavior`]); the probe app runs it and records what the server gave it and did with it:
//! the environ's facts, the process and thread it ran on, whether its future and its body were
//! dropped, and what reading the request body gave. The records live in the suite's process
//! ([`Probe`]); the probe app reaches them through a [`Recorder`]: directly when the server
//! runs in the suite's process, over the side channel of [`super::remote`] when it runs in
//! others. Either way the suite reads the records from its own thread, so nothing here needs an
//! async runtime: waiting is done with [`Gate`]s, which the suite opens from its own thread.

use std::collections::{BTreeMap, VecDeque};
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use http::{HeaderMap, HeaderName, Method, StatusCode};
use serde::{Deserialize, Serialize};

use rwgi::app::BoxApp;
use rwgi::body::{Body, BodyExt, BoxBody, Full};
use rwgi::cgi::server_protocol;
use rwgi::disconnect::Disconnect;
use rwgi::environ::ServerInfo;
use rwgi::interim::{FlushHead, Interim};
use rwgi::outcome::{Outcome, ResponseFinished};
use rwgi::path::latin1;
use rwgi::trailers::{Trailers, WithTrailers};
use rwgi::{App, Environ, Error, Input, Response, StartResponse};

use super::remote::Link;

/// Marks every error message and panic payload of the probe: a server that shows it to the
/// client leaks error details (REQ-ERR-5).
pub(super) const SECRET: &str = "rwgi-probe-secret-5b1e";

/// What a server tells the app about itself ([`ServerInfo`]), as plain facts that can be
/// compared and sent between processes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ServerFacts {
    pub(super) software: String,
    pub(super) spec_version: (u16, u16),
    pub(super) multithread: bool,
    pub(super) multiprocess: bool,
    pub(super) run_once: bool,
}

impl ServerFacts {
    fn of(info: &ServerInfo) -> ServerFacts {
        ServerFacts {
            software: info.software().to_owned(),
            spec_version: info.spec_version(),
            multithread: info.is_multithread(),
            multiprocess: info.is_multiprocess(),
            run_once: info.is_run_once(),
        }
    }
}

/// The facts of one request as the app saw them, every byte string mapped one byte to one
/// character as in the vectors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Seen {
    pub(super) method: String,
    pub(super) script_name: String,
    pub(super) path_info: String,
    /// The segments of `path_info`, each decoded on its own.
    pub(super) path_segments: Vec<String>,
    pub(super) query_string: String,
    pub(super) server_name: String,
    pub(super) server_port: u16,
    pub(super) version: String,
    pub(super) url_scheme: String,
    pub(super) headers: BTreeMap<String, Vec<String>>,
    pub(super) cgi: BTreeMap<String, String>,
    pub(super) input_length: Option<u64>,
    pub(super) local_addr: Option<SocketAddr>,
    pub(super) remote_addr: Option<SocketAddr>,
    pub(super) server: ServerFacts,
    /// The state of the suite's lifespan the environ carried (spec §14.3).
    pub(super) lifespan: Option<LifespanState>,
    /// Whether the environ carried a `ResponseFinished` handle (spec §14.4).
    pub(super) outcome_offered: bool,
    /// The extensions of sections 14.6 to 14.8 the server offered.
    pub(super) offered: Offered,
}

/// What the server offered, of the extensions of sections 14.6 to 14.8 the suite checks.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct Offered {
    /// The handle itself, to watch: only where the app runs in the suite's process.
    #[serde(skip)]
    pub(super) disconnect: Option<Disconnect>,
    pub(super) flush_head: bool,
    pub(super) interim: bool,
    pub(super) trailers: bool,
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
            version: server_protocol(environ.version()).to_owned(),
            url_scheme: environ.url_scheme().as_str().to_owned(),
            headers,
            cgi: environ.cgi_variables().into_map(),
            input_length: environ.input().content_length(),
            local_addr: environ.local_addr(),
            remote_addr: environ.remote_addr(),
            server: ServerFacts::of(environ.server()),
            lifespan: environ.extensions().get::<LifespanState>().copied(),
            outcome_offered: environ.extensions().get::<ResponseFinished>().is_some(),
            offered: Offered {
                disconnect: environ.extension::<Disconnect>().cloned(),
                flush_head: environ.extension::<FlushHead>().is_some(),
                interim: environ.extension::<Interim>().is_some(),
                trailers: environ.extension::<Trailers>().is_some(),
            },
        }
    }
}

/// Where the server called the app: its process, and the thread in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Place {
    pub(super) process: u32,
    pub(super) thread: String,
}

impl Place {
    /// The calling thread.
    pub(super) fn here() -> Place {
        Place {
            process: std::process::id(),
            thread: format!("{:?}", std::thread::current().id()),
        }
    }
}

/// How reading a request body ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum InputEnd {
    /// The body ended.
    Complete,
    /// The app stopped reading on purpose.
    Stopped,
    /// The body yielded an error.
    Failed(String),
}

/// What reading a request body gave.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct InputRecord {
    /// The first bytes, up to the limit the reader was given.
    pub(super) kept: Vec<u8>,
    /// How many bytes arrived in all.
    pub(super) received: u64,
    /// [`checksum`] of all of them.
    pub(super) checksum: u64,
    pub(super) end: InputEnd,
    /// The trailer fields that followed a complete body, names and values as text.
    pub(super) trailers: Vec<(String, String)>,
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
        trailers: Vec::new(),
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
            None => {
                if let Ok(Some(trailers)) = input.trailers().await {
                    record.trailers = trailers
                        .iter()
                        .map(|(name, value)| {
                            (name.to_string(), latin1(value.as_bytes()).into_owned())
                        })
                        .collect();
                }
                return record;
            }
        }
    }
}

/// What runs when a gate opens, besides waking its waiters: telling the copies of the gate in
/// other processes.
type OnOpen = Box<dyn FnOnce() + Send>;

/// A signal the suite gives to a waiting app or body: closed until [`Gate::open`]. Each gate has
/// an ID, by which a copy of it in a server's process is opened with it.
#[derive(Clone, Debug)]
pub(super) struct Gate {
    id: u64,
    inner: Arc<Mutex<GateState>>,
}

#[derive(Default)]
struct GateState {
    open: bool,
    wakers: Vec<Waker>,
    on_open: Vec<OnOpen>,
}

impl std::fmt::Debug for GateState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateState")
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl Default for Gate {
    fn default() -> Self {
        static IDS: AtomicU64 = AtomicU64::new(1);
        Gate::with_id(IDS.fetch_add(1, Ordering::Relaxed))
    }
}

impl Gate {
    /// A closed gate with the ID `id`: the copy, in a server's process, of the suite's gate
    /// `id`.
    pub(super) fn with_id(id: u64) -> Gate {
        Gate {
            id,
            inner: Arc::default(),
        }
    }

    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// Opens the gate for good and wakes everything waiting on it.
    pub(super) fn open(&self) {
        let (wakers, on_open) = {
            let mut state = lock(&self.inner);
            state.open = true;
            (
                std::mem::take(&mut state.wakers),
                std::mem::take(&mut state.on_open),
            )
        };
        wakers.into_iter().for_each(Waker::wake);
        on_open.into_iter().for_each(|run| run());
    }

    /// Runs `run` when the gate opens; `true`, without keeping `run`, when it is open already.
    pub(super) fn on_open(&self, run: OnOpen) -> bool {
        let mut state = lock(&self.inner);
        if state.open {
            return true;
        }
        state.on_open.push(run);
        false
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
    Data(Bytes),
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

impl Step {
    /// Yields `bytes`.
    pub(super) fn data(bytes: &'static [u8]) -> Step {
        Step::Data(Bytes::from_static(bytes))
    }
}

/// A response body that follows a list of steps.
#[derive(Clone, Debug)]
pub(super) struct Script {
    pub(super) steps: VecDeque<Step>,
    pub(super) length: Option<u64>,
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
                Step::Data(data) => Ok(data.clone()),
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

/// The state the suite's lifespan hands to every request: which startup made it, in which
/// process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LifespanState {
    pub(super) process: u32,
    pub(super) startup: usize,
}

/// The lifespan the suite hands to each server it starts: it counts its startups.
#[derive(Debug, Default)]
pub(super) struct ProbeLifespan {
    startups: std::sync::atomic::AtomicUsize,
}

impl rwgi::lifespan::Lifespan for ProbeLifespan {
    type State = LifespanState;

    async fn startup(&self) -> Result<LifespanState, Error> {
        let startup = self
            .startups
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(LifespanState {
            process: std::process::id(),
            startup,
        })
    }
}

/// What the probe app does with a request: one of a few apps, described as data so that a
/// probe app in another process can be told.
#[derive(Clone, Debug)]
pub(super) enum Behavior {
    /// Reads the whole body, recording it, and answers `200` (`501` to `CONNECT`, should a
    /// server call it for one against REQ-SRV-12: the probe opens no tunnels).
    Record,
    /// Reads that many bytes of the body (none for `None`), recording them, and answers `200`.
    Partial(Option<u64>),
    /// Answers `"{method} {path_info} {body}"`, once the gate (if any) is open.
    Echo(Option<Gate>),
    /// Answers with the status, the headers and a fresh copy of the body, without reading the
    /// request body.
    Reply(StatusCode, HeaderMap, Script),
    /// Fails without answering: returns an error, or panics when set.
    Failing(bool),
    /// Runs this app, which only a probe in the suite's process can: the checks of extensions
    /// that look at a handle (spec §14.6 to §14.8) use it, and skip a server whose app runs in
    /// other processes ([`Call::in_suite_process`]).
    InProcess(BoxApp),
}

/// [`Behavior::Record`].
pub(super) fn record() -> Behavior {
    Behavior::Record
}

/// [`Behavior::Partial`].
pub(super) fn partial(read: Option<u64>) -> Behavior {
    Behavior::Partial(read)
}

/// [`Behavior::Echo`].
pub(super) fn echo(gate: Option<&Gate>) -> Behavior {
    Behavior::Echo(gate.cloned())
}

/// [`Behavior::Reply`].
pub(super) fn reply(status: StatusCode, headers: HeaderMap, body: Script) -> Behavior {
    Behavior::Reply(status, headers, body)
}

/// [`Behavior::Failing`].
pub(super) fn failing(panic: bool) -> Behavior {
    Behavior::Failing(panic)
}

/// Which call of the probe a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CallId {
    epoch: u64,
    index: usize,
}

/// Something that happened to a call after it began.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Event {
    /// The server reported the response's outcome (spec §14.4).
    Finished(OutcomeFacts),
    /// The app's future completed.
    Answered,
    /// The app's future was dropped before it completed.
    Abandoned,
    /// The response body was dropped.
    BodyDropped,
    /// The response body was polled after it ended or failed.
    PolledAfterEnd,
}

/// A response's outcome as plain facts that can be compared and sent between processes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct OutcomeFacts {
    /// How it ended, as `Ending` displays it.
    pub(super) ending: String,
    pub(super) status: Option<u16>,
    pub(super) bytes_sent: u64,
}

impl OutcomeFacts {
    pub(super) fn of(outcome: &Outcome) -> OutcomeFacts {
        OutcomeFacts {
            ending: outcome.ending().to_string(),
            status: outcome.status().map(|status| status.as_u16()),
            bytes_sent: outcome.bytes_sent(),
        }
    }
}

impl std::fmt::Display for OutcomeFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} with status {:?} after {} bytes",
            self.ending, self.status, self.bytes_sent
        )
    }
}

/// What the probe recorded about one call.
#[derive(Clone, Debug)]
pub(super) struct Call {
    pub(super) seen: Seen,
    /// The process and thread the server called the app on.
    pub(super) place: Place,
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
    /// The outcomes the server reported through the response outcome extension, in order;
    /// `None` when the environ carried no handle (spec §14.4).
    pub(super) outcomes: Option<Vec<OutcomeFacts>>,
    /// The state of the suite's lifespan the environ carried (spec §14.3).
    pub(super) lifespan: Option<LifespanState>,
}

impl Call {
    /// Whether the server called the app in the suite's process, where the probe can hold the
    /// handles the server offered.
    pub(super) fn in_suite_process(&self) -> bool {
        self.place.process == std::process::id()
    }

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
    behavior: Option<Behavior>,
    calls: Vec<Call>,
    /// Every process that called the app in this run, with what the server told the app in its
    /// first call there. Kept across checks.
    processes: BTreeMap<u32, ServerFacts>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// The records of the probe's calls, in the suite's process, and what the probe app is to do
/// next.
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

    /// Does `behavior` for the next requests, forgetting the calls recorded so far.
    pub(super) fn set(&self, behavior: Behavior) {
        let mut state = lock(&self.shared.state);
        state.epoch += 1;
        state.behavior = Some(behavior);
        state.calls.clear();
    }

    /// Stops answering: requests get an error until the next [`Probe::set`].
    pub(super) fn clear(&self) {
        let mut state = lock(&self.shared.state);
        state.epoch += 1;
        state.behavior = None;
        state.calls.clear();
    }

    /// The calls recorded since the last [`Probe::set`].
    pub(super) fn calls(&self) -> Vec<Call> {
        lock(&self.shared.state).calls.clone()
    }

    /// Every process the app was called in during the run, with the server's facts there.
    pub(super) fn processes(&self) -> BTreeMap<u32, ServerFacts> {
        lock(&self.shared.state).processes.clone()
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

    /// Records what reading the body of call `id` gave.
    pub(super) fn note_input(&self, id: CallId, record: InputRecord) {
        self.update(id, |call| call.input = Some(record));
    }

    /// Records `event` for call `id`.
    pub(super) fn note(&self, id: CallId, event: Event) {
        self.update(id, |call| match event {
            Event::Answered => call.answered = true,
            Event::Abandoned => call.abandoned = true,
            Event::BodyDropped => call.body_dropped = true,
            Event::PolledAfterEnd => call.polled_after_end = true,
            Event::Finished(outcome) => call.outcomes.get_or_insert_with(Vec::new).push(outcome),
        });
    }

    /// Records a new call, made at `place` with `seen`; returns its ID and what to do.
    pub(super) fn begin(&self, seen: Seen, place: Place) -> (CallId, Option<Behavior>) {
        let mut state = lock(&self.shared.state);
        let id = CallId {
            epoch: state.epoch,
            index: state.calls.len(),
        };
        state
            .processes
            .entry(place.process)
            .or_insert_with(|| seen.server.clone());
        let (outcomes, lifespan) = (seen.outcome_offered.then(Vec::new), seen.lifespan);
        state.calls.push(Call {
            seen,
            place,
            input: None,
            answered: false,
            abandoned: false,
            body_dropped: false,
            polled_after_end: false,
            outcomes,
            lifespan,
        });
        let behavior = state.behavior.clone();
        drop(state);
        self.shared.changed.notify_all();
        (id, behavior)
    }
}

/// How the probe app reaches the records: in this process, or over a side channel to the
/// suite's process.
#[derive(Clone)]
pub(super) enum Recorder {
    Local(Probe),
    Remote(Arc<Link>),
}

/// A call, as its recorder knows it.
#[derive(Clone, Copy, Debug)]
pub(super) enum Key {
    Local(CallId),
    /// The number the probe app gave the call on its side channel.
    Remote(u64),
}

impl Recorder {
    /// Records a new call with `seen`; returns its key and what to do (`Err` when the suite
    /// cannot be reached).
    async fn begin(&self, seen: Seen, running: &mut Running) -> Result<Option<Behavior>, Error> {
        match self {
            Recorder::Local(probe) => {
                let (id, behavior) = probe.begin(seen, Place::here());
                running.key = Some(Key::Local(id));
                Ok(behavior)
            }
            Recorder::Remote(link) => {
                let number = link.number();
                // From here on, a drop of the app's future is reported for this call.
                running.key = Some(Key::Remote(number));
                link.begin(number, seen, Place::here()).await
            }
        }
    }

    async fn note_input(&self, key: Key, record: InputRecord) {
        match (self, key) {
            (Recorder::Local(probe), Key::Local(id)) => probe.note_input(id, record),
            (Recorder::Remote(link), Key::Remote(number)) => link.note_input(number, record).await,
            _ => unreachable!("a key is made by its recorder"),
        }
    }

    fn note(&self, key: Key, event: Event) {
        match (self, key) {
            (Recorder::Local(probe), Key::Local(id)) => probe.note(id, event),
            (Recorder::Remote(link), Key::Remote(number)) => link.note(number, event),
            _ => unreachable!("a key is made by its recorder"),
        }
    }
}

/// The app the suite hosts: does what the probe says, recording each call.
#[derive(Clone)]
pub(super) struct ProbeApp {
    recorder: Recorder,
}

impl std::fmt::Debug for ProbeApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = match self.recorder {
            Recorder::Local(_) => "local",
            Recorder::Remote(_) => "remote",
        };
        f.debug_struct("ProbeApp")
            .field("recorder", &place)
            .finish()
    }
}

impl ProbeApp {
    /// The probe app of a server in the suite's process.
    pub(super) fn local(probe: &Probe) -> ProbeApp {
        ProbeApp {
            recorder: Recorder::Local(probe.clone()),
        }
    }

    /// The probe app of a server in another process, reporting over `link`.
    pub(super) fn remote(link: Arc<Link>) -> ProbeApp {
        ProbeApp {
            recorder: Recorder::Remote(link),
        }
    }
}

impl App for ProbeApp {
    type Body = BoxBody;

    async fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> Result<Response<BoxBody>, Error> {
        let mut running = Running {
            recorder: self.recorder.clone(),
            key: None,
            answered: false,
        };
        let behavior = self
            .recorder
            .begin(Seen::of(&environ), &mut running)
            .await?;
        let key = running.key.expect("a begun call has a key");
        if let Some(finished) = environ.extensions().get::<ResponseFinished>() {
            let recorder = self.recorder.clone();
            finished.on_finish(move |outcome| {
                recorder.note(key, Event::Finished(OutcomeFacts::of(outcome)));
            });
        }
        let result = match behavior {
            Some(behavior) => perform(behavior, &self.recorder, key, environ, start).await,
            None => Err(Error::msg("the probe has no app to run")),
        };
        running.answered = true;
        drop(running);
        let recorder = self.recorder.clone();
        Ok(result?.map_body(|body| {
            BoxBody::new(Traced {
                body,
                recorder,
                key,
                ended: false,
            })
        }))
    }
}

/// Records, when dropped, whether the app's future completed or was abandoned.
struct Running {
    recorder: Recorder,
    /// Set once the call is known to the recorder.
    key: Option<Key>,
    answered: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let event = if self.answered {
                Event::Answered
            } else {
                Event::Abandoned
            };
            self.recorder.note(key, event);
        }
    }
}

/// The app's response body, recording when it is dropped and whether it is polled after it
/// ended.
struct Traced {
    body: BoxBody,
    recorder: Recorder,
    key: Key,
    ended: bool,
}

impl Stream for Traced {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            self.recorder.note(self.key, Event::PolledAfterEnd);
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

    fn trailer_names(&self) -> &[HeaderName] {
        self.body.trailer_names()
    }

    fn poll_trailers(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, Error>> {
        Pin::new(&mut self.body).poll_trailers(cx)
    }

    /// A file body stays a file for the server (§14.9).
    fn take_file(mut self: Pin<&mut Self>) -> Option<rwgi::file::FileRange> {
        Pin::new(&mut self.body).take_file()
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        self.recorder.note(self.key, Event::BodyDropped);
    }
}

/// How many body bytes [`Behavior::Record`] and [`Behavior::Echo`] keep for comparison.
pub(super) const KEEP: usize = 64 * 1024;

/// Does what `behavior` says with one request.
async fn perform(
    behavior: Behavior,
    recorder: &Recorder,
    key: Key,
    mut environ: Environ,
    start: StartResponse,
) -> Result<Response<BoxBody>, Error> {
    fn full(start: StartResponse, status: StatusCode, text: Vec<u8>) -> Response<BoxBody> {
        start
            .start(status, HeaderMap::new())
            .body(BoxBody::new(Full::new(text)))
    }
    match behavior {
        Behavior::Record => {
            let record = drain(environ.input_mut(), KEEP, None).await;
            recorder.note_input(key, record).await;
            let status = if environ.method() == Method::CONNECT {
                StatusCode::NOT_IMPLEMENTED
            } else {
                StatusCode::OK
            };
            Ok(full(start, status, b"recorded\n".to_vec()))
        }
        Behavior::Partial(read) => {
            if let Some(limit) = read {
                let record = drain(environ.input_mut(), 0, Some(limit)).await;
                recorder.note_input(key, record).await;
            }
            Ok(full(start, StatusCode::OK, b"first\n".to_vec()))
        }
        Behavior::Echo(gate) => {
            if let Some(gate) = gate {
                gate.passed().await;
            }
            let record = drain(environ.input_mut(), KEEP, None).await;
            let mut text = format!("{} {} ", environ.method(), environ.path_info()).into_bytes();
            text.extend_from_slice(&record.kept);
            recorder.note_input(key, record).await;
            Ok(full(start, StatusCode::OK, text))
        }
        Behavior::Reply(status, headers, body) => {
            Ok(start.start(status, headers).body(BoxBody::new(body)))
        }
        Behavior::InProcess(app) => app.call(environ, start).await,
        Behavior::Failing(panic) => {
            if panic {
                panic!("rwgi probe: deliberate panic in an app: {SECRET}");
            }
            Err(Error::msg(format!("probe app failed: {SECRET}")))
        }
    }
}

/// [`Behavior::InProcess`] running `app`.
pub(super) fn in_process_app<A>(app: A) -> Behavior
where
    A: App + Send + Sync + 'static,
    A::Body: Send + Unpin + 'static,
{
    Behavior::InProcess(BoxApp::new(app))
}

/// [`Behavior::InProcess`] running `handler`.
fn in_process<F, Fut, B>(handler: F) -> Behavior
where
    F: Fn(Environ, StartResponse) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<B>, Error>> + Send + 'static,
    B: Body + Send + Unpin + 'static,
{
    Behavior::InProcess(BoxApp::new(rwgi::app::app_fn(handler)))
}

/// Answers `200` with `body`, asking for the head to go out at once (REQ-INTERIM-3).
pub(super) fn flushing(body: Script) -> Behavior {
    in_process(move |_: Environ, start: StartResponse| {
        let mut response = start
            .start(StatusCode::OK, HeaderMap::new())
            .body(body.clone());
        response.extensions_mut().insert(FlushHead::new());
        async move { Ok(response) }
    })
}

/// Sends a `103 Early Hints` when the server offers interim responses, then answers `200`.
pub(super) fn hinting() -> Behavior {
    in_process(move |environ: Environ, start: StartResponse| async move {
        if let Some(interim) = environ.extension::<Interim>() {
            let mut hints = HeaderMap::new();
            hints.insert(
                "link",
                http::HeaderValue::from_static("</probe.css>; rel=preload; as=style"),
            );
            interim
                .send(StatusCode::EARLY_HINTS, hints)
                .map_err(Error::new)?;
        }
        Ok(start
            .start(StatusCode::OK, HeaderMap::new())
            .body(Full::new("hinted\n")))
    })
}

/// Answers `200` with `data`, then the trailer `fields`, announcing `names`.
pub(super) fn trailing(
    names: &[&'static str],
    fields: &[(&'static str, &'static str)],
) -> Behavior {
    let names: Vec<HeaderName> = names
        .iter()
        .map(|name| HeaderName::from_static(name))
        .collect();
    let fields: HeaderMap = fields
        .iter()
        .map(|(name, value)| {
            (
                HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            )
        })
        .collect();
    in_process(move |_: Environ, start: StartResponse| {
        let fields = fields.clone();
        let body = WithTrailers::new(
            Full::new("trailed\n"),
            names.clone(),
            Box::pin(async move { Ok(fields) }),
        );
        let response = start.start(StatusCode::OK, HeaderMap::new()).body(body);
        async move { Ok(response) }
    })
}
