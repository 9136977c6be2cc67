//! The side channel between the suite and a probe app in another process.
//!
//! A server under test may run the probe app in processes of its own (workers, say), where
//! the suite cannot see the app's calls in memory. Then the suite opens a TCP listener on
//! loopback ([`Channel`]) and the server hosts a [`RemoteProbe`] pointed at it, which connects
//! once per process on its first call ([`Link`]). Over the connection go JSON lines:
//!
//! - from the probe app: a call began, with the facts of its environ and where it runs
//!   (answered with what to do, the [`Behavior`] the check set); what reading the request
//!   body gave (answered once recorded, so that the record is in before the response goes
//!   out); and the later events of the call: its future completed or was dropped, its body
//!   polled after its end or dropped;
//! - from the suite: the answers, and the opening of each [`Gate`] the probe app was given.
//!
//! So the probe app does the same things in either place, and the checks judge the same
//! records: a server checked in its own process and one checked across processes pass and
//! fail the same checks.

use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Poll, Waker};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use rwgi::body::BoxBody;
use rwgi::{App, Environ, Error, Response, StartResponse};

use super::probe::{
    Behavior, CallId, Event, Gate, InputRecord, Place, Probe, ProbeApp, Script, Seen, Step,
};

/// The environment variable that tells [`RemoteProbe::from_env`] where the suite's side
/// channel is: a server author's test sets it on the server process to the value of
/// [`Hosting::probe_channel`](super::Hosting::probe_channel).
pub const PROBE_CHANNEL_ENV: &str = "RWGI_PROBE_CHANNEL";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A message from the probe app to the suite; `number` is the call's, given by the probe app.
#[derive(Debug, Serialize, Deserialize)]
enum Up {
    /// A call began; answered with [`Down::Begun`].
    Begin {
        number: u64,
        seen: Box<Seen>,
        place: Place,
    },
    /// What reading the body gave; answered with [`Down::Noted`] once recorded.
    Input { number: u64, record: InputRecord },
    /// Something else happened to the call.
    Event { number: u64, event: Event },
}

/// A message from the suite to the probe app.
#[derive(Debug, Serialize, Deserialize)]
enum Down {
    /// What call `number` is to do; none: answer with an error.
    Begun {
        number: u64,
        behavior: Option<WireBehavior>,
    },
    /// The input of call `number` is recorded.
    Noted { number: u64 },
    /// The gate `gate` is open.
    Open { gate: u64 },
}

/// A [`Behavior`] as sent.
#[derive(Debug, Serialize, Deserialize)]
enum WireBehavior {
    Record,
    Partial(Option<u64>),
    Echo(Option<WireGate>),
    Reply {
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
        steps: Vec<WireStep>,
        length: Option<u64>,
    },
    Failing(bool),
    /// [`Behavior::InProcess`]: the probe app in another process answers with an error.
    InProcess,
}

/// A [`Step`] as sent.
#[derive(Debug, Serialize, Deserialize)]
enum WireStep {
    Data(Vec<u8>),
    Empty,
    Fail,
    Panic,
    Wait(WireGate),
    Endless,
}

/// A [`Gate`] as sent: its ID, and whether it was open already.
#[derive(Debug, Serialize, Deserialize)]
struct WireGate {
    id: u64,
    open: bool,
}

/// One side's sending half: whole lines, one writer at a time.
#[derive(Clone)]
struct Writer(Arc<Mutex<TcpStream>>);

impl Writer {
    fn send(&self, message: &impl Serialize) -> io::Result<()> {
        let mut line = serde_json::to_vec(message).map_err(io::Error::other)?;
        line.push(b'\n');
        lock(&self.0).write_all(&line)
    }
}

// ---- The suite's side ----

/// The suite's end of the side channel: a listener on loopback, and a thread per probe app
/// connection that applies what it reports to the [`Probe`].
pub(super) struct Channel {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    accepter: Option<JoinHandle<()>>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// Listens on a free port of 127.0.0.1 for probe apps reporting to `probe`.
    pub(super) fn open(probe: &Probe) -> io::Result<Channel> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let probe = probe.clone();
        let stopped = Arc::clone(&stop);
        let accepter = thread::Builder::new()
            .name("rwgi-probe-channel".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let probe = probe.clone();
                    // A connection that cannot get a thread is closed, and its probe app
                    // answers with an error, which the checks see.
                    let _ = thread::Builder::new()
                        .name("rwgi-probe-channel-connection".into())
                        .spawn(move || serve(stream, &probe));
                }
            })?;
        Ok(Channel {
            address,
            stop,
            accepter: Some(accepter),
        })
    }

    /// Where the probe apps connect.
    pub(super) fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees the flag and closes the listener. It is
        // joined only once woken, so that a suite never waits on it.
        if TcpStream::connect_timeout(&self.address, Duration::from_secs(1)).is_ok() {
            if let Some(accepter) = self.accepter.take() {
                let _ = accepter.join();
            }
        }
    }
}

/// Applies what one probe app connection reports, until it closes.
fn serve(stream: TcpStream, probe: &Probe) {
    let _ = stream.set_nodelay(true);
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let writer = Writer(Arc::new(Mutex::new(writer)));
    let mut calls: HashMap<u64, CallId> = HashMap::new();
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        // Anything but the probe app's messages ends the connection.
        let Ok(message) = serde_json::from_str::<Up>(&line) else {
            return;
        };
        let sent = match message {
            Up::Begin {
                number,
                seen,
                place,
            } => {
                let (id, behavior) = probe.begin(*seen, place);
                calls.insert(number, id);
                let behavior = behavior.map(|behavior| to_wire(&behavior, &writer));
                writer.send(&Down::Begun { number, behavior })
            }
            Up::Input { number, record } => {
                if let Some(&id) = calls.get(&number) {
                    probe.note_input(id, record);
                }
                writer.send(&Down::Noted { number })
            }
            Up::Event { number, event } => {
                if let Some(&id) = calls.get(&number) {
                    probe.note(id, event);
                }
                Ok(())
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// `gate` as sent on `writer`, which will carry its opening.
fn wire_gate(gate: &Gate, writer: &Writer) -> WireGate {
    let id = gate.id();
    let writer = writer.clone();
    let open = gate.on_open(Box::new(move || {
        let _ = writer.send(&Down::Open { gate: id });
    }));
    WireGate { id, open }
}

fn to_wire(behavior: &Behavior, writer: &Writer) -> WireBehavior {
    match behavior {
        Behavior::Record => WireBehavior::Record,
        Behavior::Partial(read) => WireBehavior::Partial(*read),
        Behavior::Echo(gate) => {
            WireBehavior::Echo(gate.as_ref().map(|gate| wire_gate(gate, writer)))
        }
        Behavior::Reply(status, headers, body) => WireBehavior::Reply {
            status: status.as_u16(),
            headers: headers
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
                .collect(),
            steps: body
                .steps
                .iter()
                .map(|step| match step {
                    Step::Data(data) => WireStep::Data(data.to_vec()),
                    Step::Empty => WireStep::Empty,
                    Step::Fail => WireStep::Fail,
                    Step::Panic => WireStep::Panic,
                    Step::Wait(gate) => WireStep::Wait(wire_gate(gate, writer)),
                    Step::Endless => WireStep::Endless,
                })
                .collect(),
            length: body.length,
        },
        Behavior::Failing(panic) => WireBehavior::Failing(*panic),
        Behavior::InProcess(_) => WireBehavior::InProcess,
    }
}

// ---- The probe app's side ----

/// Where the answer to one message of a probe app arrives.
#[derive(Default)]
struct Slot {
    /// The answer; `None` inside when the channel closed first.
    answer: Mutex<(Option<Option<Down>>, Option<Waker>)>,
}

impl Slot {
    fn fill(&self, answer: Option<Down>) {
        let waker = {
            let mut state = lock(&self.answer);
            state.0 = Some(answer);
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    async fn answer(&self) -> Option<Down> {
        poll_fn(|cx| {
            let mut state = lock(&self.answer);
            match state.0.take() {
                Some(answer) => Poll::Ready(answer),
                None => {
                    state.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

#[derive(Default)]
struct Pending {
    /// The channel closed: no answer will come.
    closed: bool,
    slots: HashMap<u64, Arc<Slot>>,
}

/// A probe app's connection to the suite: one per server process, shared by its calls.
pub(super) struct Link {
    writer: Writer,
    next: AtomicU64,
    pending: Mutex<Pending>,
    /// The copies of the suite's gates in this process, by ID.
    gates: Mutex<HashMap<u64, Gate>>,
}

impl Link {
    fn connect(address: &str) -> io::Result<Arc<Link>> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        let link = Arc::new(Link {
            writer: Writer(Arc::new(Mutex::new(stream.try_clone()?))),
            next: AtomicU64::new(0),
            pending: Mutex::default(),
            gates: Mutex::default(),
        });
        let reader = Arc::clone(&link);
        thread::Builder::new()
            .name("rwgi-probe-link".into())
            .spawn(move || reader.read(stream))?;
        Ok(link)
    }

    /// Takes in the suite's messages until the channel closes; then every call still waiting
    /// for an answer gets none.
    fn read(&self, stream: TcpStream) {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let Ok(message) = serde_json::from_str::<Down>(&line) else {
                break;
            };
            match message {
                Down::Open { gate } => self.gate(gate).open(),
                Down::Begun { number, .. } | Down::Noted { number } => {
                    let slot = lock(&self.pending).slots.remove(&number);
                    if let Some(slot) = slot {
                        slot.fill(Some(message));
                    }
                }
            }
        }
        let slots = {
            let mut pending = lock(&self.pending);
            pending.closed = true;
            std::mem::take(&mut pending.slots)
        };
        for slot in slots.into_values() {
            slot.fill(None);
        }
    }

    /// This process's copy of the gate `id`.
    fn gate(&self, id: u64) -> Gate {
        lock(&self.gates)
            .entry(id)
            .or_insert_with(|| Gate::with_id(id))
            .clone()
    }

    /// A number for a new call.
    pub(super) fn number(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends `message` and waits for the answer to the message of call `number`.
    async fn ask(&self, number: u64, message: &Up) -> Option<Down> {
        let slot = Arc::new(Slot::default());
        {
            let mut pending = lock(&self.pending);
            if pending.closed {
                return None;
            }
            pending.slots.insert(number, Arc::clone(&slot));
        }
        if self.writer.send(message).is_err() {
            lock(&self.pending).slots.remove(&number);
            return None;
        }
        slot.answer().await
    }

    /// Reports the call `number` and learns what to do.
    pub(super) async fn begin(
        &self,
        number: u64,
        seen: Seen,
        place: Place,
    ) -> Result<Option<Behavior>, Error> {
        let message = Up::Begin {
            number,
            seen: Box::new(seen),
            place,
        };
        match self.ask(number, &message).await {
            Some(Down::Begun { behavior, .. }) => {
                behavior.map(|behavior| self.behavior(behavior)).transpose()
            }
            _ => Err(Error::msg(
                "the probe app's side channel to the conformance suite is closed",
            )),
        }
    }

    /// Reports what reading the body of call `number` gave, and waits until it is recorded.
    pub(super) async fn note_input(&self, number: u64, record: InputRecord) {
        let _ = self.ask(number, &Up::Input { number, record }).await;
    }

    /// Reports `event` for call `number`.
    pub(super) fn note(&self, number: u64, event: Event) {
        let _ = self.writer.send(&Up::Event { number, event });
    }

    fn wire_gate(&self, gate: WireGate) -> Gate {
        let copy = self.gate(gate.id);
        if gate.open {
            copy.open();
        }
        copy
    }

    fn behavior(&self, wire: WireBehavior) -> Result<Behavior, Error> {
        Ok(match wire {
            WireBehavior::Record => Behavior::Record,
            WireBehavior::Partial(read) => Behavior::Partial(read),
            WireBehavior::Echo(gate) => Behavior::Echo(gate.map(|gate| self.wire_gate(gate))),
            WireBehavior::Reply {
                status,
                headers,
                steps,
                length,
            } => {
                let status = StatusCode::from_u16(status).map_err(Error::new)?;
                let mut map = HeaderMap::new();
                for (name, value) in headers {
                    map.append(
                        HeaderName::from_bytes(name.as_bytes()).map_err(Error::new)?,
                        HeaderValue::from_bytes(&value).map_err(Error::new)?,
                    );
                }
                let steps = steps.into_iter().map(|step| match step {
                    WireStep::Data(data) => Step::Data(Bytes::from(data)),
                    WireStep::Empty => Step::Empty,
                    WireStep::Fail => Step::Fail,
                    WireStep::Panic => Step::Panic,
                    WireStep::Wait(gate) => Step::Wait(self.wire_gate(gate)),
                    WireStep::Endless => Step::Endless,
                });
                let mut body = Script::new(steps);
                body.length = length;
                Behavior::Reply(status, map, body)
            }
            WireBehavior::Failing(panic) => Behavior::Failing(panic),
            WireBehavior::InProcess => Behavior::Failing(false),
        })
    }
}

/// The probe app for a server under test that runs it in processes of its own (workers, say),
/// where the suite cannot look at it in memory: it does what the suite's checks tell it and
/// reports what it sees over a side channel on loopback, which the suite opens when the start
/// function asks for it with [`Hosting::probe_channel`](super::Hosting::probe_channel).
///
/// The server's program hosts it in place of the app it would serve; each process connects to
/// the channel on its first request. A program that hosts either an app of its own or the
/// probe picks by [`RemoteProbe::from_env`]:
///
/// ```no_run
/// # fn serve<A: rwgi::App + 'static>(_: A) -> std::process::ExitCode { std::process::ExitCode::SUCCESS }
/// # let my_app = rwgi::app::app_fn(|_, start: rwgi::StartResponse| async move {
/// #     Ok(start.start(rwgi::http::StatusCode::OK, Default::default()).body(rwgi::body::Empty))
/// # });
/// use rwgi_conformance::server_suite::RemoteProbe;
///
/// // In the server's `main`:
/// let status = match RemoteProbe::from_env() {
///     Some(probe) => serve(probe),
///     None => serve(my_app),
/// };
/// # let _ = status;
/// ```
///
/// A request it cannot report (the channel is closed, or was never reachable) is answered with
/// an error, so the checks fail rather than pass unobserved.
#[derive(Clone)]
pub struct RemoteProbe {
    channel: String,
    app: Arc<OnceLock<Result<ProbeApp, String>>>,
}

impl fmt::Debug for RemoteProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteProbe")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl RemoteProbe {
    /// The probe app reporting to the side channel at `channel` (`host:port`), as
    /// [`Hosting::probe_channel`](super::Hosting::probe_channel) gives it.
    ///
    /// ```
    /// let probe = rwgi_conformance::server_suite::RemoteProbe::new("127.0.0.1:9");
    /// assert_eq!(probe.channel(), "127.0.0.1:9");
    /// ```
    pub fn new(channel: impl Into<String>) -> RemoteProbe {
        RemoteProbe {
            channel: channel.into(),
            app: Arc::default(),
        }
    }

    /// The probe app reporting to the channel named by [`PROBE_CHANNEL_ENV`], when it is set.
    pub fn from_env() -> Option<RemoteProbe> {
        std::env::var(PROBE_CHANNEL_ENV).ok().map(RemoteProbe::new)
    }

    /// Where it reports.
    pub fn channel(&self) -> &str {
        &self.channel
    }
}

impl App for RemoteProbe {
    type Body = BoxBody;

    async fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> Result<Response<BoxBody>, Error> {
        let app = self.app.get_or_init(|| {
            Link::connect(&self.channel)
                .map(ProbeApp::remote)
                .map_err(|error| {
                    format!(
                        "the probe app cannot reach the conformance suite's side channel at {}: \
                         {error}",
                        self.channel
                    )
                })
        });
        match app {
            Ok(app) => app.call(environ, start).await,
            Err(why) => Err(Error::msg(why.clone())),
        }
    }
}
