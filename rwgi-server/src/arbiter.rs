//! The process manager (gunicorn's arbiter): a master process that holds the listening sockets
//! and keeps `workers` worker processes serving them. Unix only.
//!
//! # Starting a worker
//!
//! The master re-executes its own program (`current_exe`, the same arguments), so a worker
//! never inherits the state of a running multi-threaded process, and it reads the settings the
//! way the master did. The master sets [`WORKER_ID_ENV`] and hands the worker one end of a Unix
//! socket pair as its standard input. Over that socket the master sends the listening sockets
//! (`SCM_RIGHTS`), and the worker sends its heartbeat back. Passing the descriptors explicitly
//! leaks none into programs the master did not mean them for, and the worker adopts them as
//! owned descriptors without unsafe code. The worker then points its standard input at
//! `/dev/null`.
//!
//! Workers read the settings themselves, from the same arguments, environment and config file.
//! So a worker started between an edit of the config file and the `HUP` that applies it (to
//! replace one that crashed or was recycled) already runs the edited settings, and one that
//! cannot parse them exits and is retried with back-off while the others serve on.
//!
//! # How a worker's exit is read
//!
//! | exit | meaning | the master |
//! |---|---|---|
//! | after the master asked it to stop | expected | replaces it if it is still wanted |
//! | status 0, unasked | recycled (`max_requests`) or a clean stop | replaces it at once |
//! | status [`EXIT_BOOT_FAILED`] before its first heartbeat | it cannot start (settings, sockets, app) | stops the server and exits with that status: every new worker would fail the same way (gunicorn halts too); but after a reload, while workers of the previous settings still serve, they serve on and the new ones are retried as crashes |
//! | any other status, or a signal | a crash | replaces it; crashes before the first heartbeat back off exponentially ([`backoff`]) |
//!
//! # Heartbeat
//!
//! A worker writes a byte every quarter of `timeout` (at least every second) from a task on its
//! runtime, so when every runtime thread is blocked by an app the beats stop. A worker that
//! sends nothing for `timeout`, counted from its start, is killed with `SIGKILL` (an app stuck
//! in a loop answers no gentler signal), the `worker_aborted` hook runs, and a new worker
//! replaces it. A `timeout` of zero turns the check off. A worker whose master is gone finds out
//! at its next beat and stops gracefully, as if sent `SIGTERM`.
//!
//! # Signals to the master
//!
//! - `TERM`, `INT`: graceful stop. The master closes its listening sockets (so once the workers
//!   close theirs, new connections are refused rather than queued), sends `TERM` to every
//!   worker, waits up to `graceful_timeout` (and [`STOP_MARGIN`]), kills what remains, and exits
//!   with status 0.
//! - `QUIT`: immediate stop: `QUIT` to every worker, `KILL` after [`QUIT_GRACE`], status 0.
//! - `HUP`: re-reads the settings with [`Settings::load`]; on an error the old ones stay. A new
//!   generation of workers starts with the new settings; the old workers get `TERM` once as many
//!   new ones as configured have sent their first heartbeat. The listening sockets stay open in
//!   the master throughout, so no connection is refused. A changed `bind` is not applied: the
//!   sockets are kept until a restart (unlike gunicorn, a reload never drops a listen queue).
//! - `TTIN`, `TTOU`: one worker more, one fewer (never fewer than one); the oldest goes first.
//!   A reload goes back to the configured `workers`.
//! - `USR1`: the master reopens its error log and forwards the signal to every worker, which
//!   reopens its log files.
//!
//! # Hooks
//!
//! The master calls `when_ready` once, when its first workers have all sent a heartbeat;
//! `on_reload` on each applied `HUP`; `worker_spawned`, `worker_exited` and `worker_aborted`
//! for each worker; `on_exit` last. (`on_starting` comes before binding, so `run` calls it.)

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use rustix::io::{fcntl_setfd, FdFlags};
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};
use rustix::process::{kill_process, Pid, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::signal::unix::SignalKind;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use crate::config::Settings;
use crate::hooks::Hooks;
use crate::listen::Listener;

/// Set by the master in each worker's environment to the worker's id; its presence makes the
/// program a worker.
pub(crate) const WORKER_ID_ENV: &str = "RWGI_WORKER_ID";

/// The heartbeat interval, in milliseconds, the master expects from a worker.
const HEARTBEAT_ENV: &str = "RWGI_HEARTBEAT_MS";

/// The exit status of a worker that cannot start (gunicorn's `WORKER_BOOT_ERROR`). A worker
/// that exits with it before its first heartbeat stops the whole server, which exits with it too,
/// unless workers started before the last reload still serve.
pub(crate) const EXIT_BOOT_FAILED: u8 = 3;

/// How long workers sent `QUIT` have before they are killed.
const QUIT_GRACE: Duration = Duration::from_secs(1);

/// How long past `graceful_timeout` a worker asked to stop has before it is killed: a worker
/// gives up on its connections after `graceful_timeout` by itself, and then needs a moment to
/// run its exit hook and flush its logs.
const STOP_MARGIN: Duration = Duration::from_secs(1);

/// The most listening sockets one master hands to its workers.
const MAX_LISTENERS: usize = 64;

/// The data that travels with the listening sockets, so a worker can tell it got them.
const GREETING: &[u8] = b"rwgi-listeners";

/// Whether [`master`] supervises worker processes (`run` serves in-process otherwise).
pub(crate) const AVAILABLE: bool = true;

/// Which side of the process model this process is.
#[derive(Debug)]
pub(crate) enum Role {
    /// No master started this process: it binds the sockets and runs the workers (or, in
    /// single-process mode, serves by itself).
    Master,
    /// A worker the master started.
    Worker(WorkerContext),
}

/// Tells whether this process is a worker and, if it is, receives its listening sockets.
///
/// Call it once, first thing, before any thread starts: it removes the master's variables from
/// the environment, so that programs the app starts do not take themselves for workers.
///
/// A worker that cannot receive its sockets cannot serve: it prints why and exits with
/// [`EXIT_BOOT_FAILED`].
pub(crate) fn role() -> Role {
    let Some(id) = std::env::var_os(WORKER_ID_ENV) else {
        return Role::Master;
    };
    let interval = std::env::var_os(HEARTBEAT_ENV);
    std::env::remove_var(WORKER_ID_ENV);
    std::env::remove_var(HEARTBEAT_ENV);
    match WorkerContext::receive(&id, interval.as_deref()) {
        Ok(context) => Role::Worker(context),
        Err(error) => {
            tracing::error!("this worker cannot receive its sockets: {error}");
            std::process::exit(EXIT_BOOT_FAILED.into())
        }
    }
}

/// What a worker got from its master.
#[derive(Debug)]
pub(crate) struct WorkerContext {
    id: u32,
    channel: UnixStream,
    listeners: Vec<OwnedFd>,
    interval: Duration,
}

impl WorkerContext {
    fn receive(id: &OsStr, interval: Option<&OsStr>) -> io::Result<WorkerContext> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let id = id
            .to_str()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| invalid("the worker id is not a number"))?;
        let interval = interval
            .and_then(OsStr::to_str)
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis)
            .ok_or_else(|| invalid("the heartbeat interval is not a number"))?;
        let channel = UnixStream::from(io::stdin().as_fd().try_clone_to_owned()?);
        rustix::stdio::dup2_stdin(File::open("/dev/null")?)?;
        let listeners = receive_listeners(&channel)?;
        Ok(WorkerContext {
            id,
            channel,
            listeners,
            interval,
        })
    }

    /// The listening sockets, in the order the master's settings bind them; empty after the
    /// first call.
    pub(crate) fn listeners(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.listeners)
    }

    /// The worker's id: 1 for the master's first worker, counting up with each worker it
    /// starts (gunicorn's `age`).
    pub(crate) fn worker_id(&self) -> u32 {
        self.id
    }

    /// Beats until the master is gone. Spawn it on the runtime that runs the app: beats stop
    /// when the app blocks every runtime thread, and the master then replaces the worker.
    ///
    /// When the master is gone, this sends the worker `SIGTERM` (a graceful stop) and returns.
    pub(crate) fn heartbeat(&self) -> impl Future<Output = ()> + Send + 'static {
        let channel = self.channel.try_clone();
        let interval = self.interval;
        async move {
            let channel = channel.and_then(|channel| {
                channel.set_nonblocking(true)?;
                tokio::net::UnixStream::from_std(channel)
            });
            let mut channel = match channel {
                Ok(channel) => channel,
                Err(error) => {
                    tracing::error!(
                        "cannot send heartbeats, the master will replace this worker: {error}"
                    );
                    return;
                }
            };
            loop {
                if let Err(error) = channel.write_all(b".").await {
                    tracing::warn!("the master is gone ({error}): stopping");
                    let _ = kill_process(rustix::process::getpid(), Signal::TERM);
                    return;
                }
                tokio::time::sleep(interval).await;
            }
        }
    }
}

/// Runs the master until it is stopped; returns the status to exit with.
///
/// Call it outside any tokio runtime: it runs its own, on the calling thread.
pub(crate) fn master(
    settings: Settings,
    listeners: Vec<Listener>,
    hooks: Arc<dyn Hooks>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("cannot start the master's runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(Arbiter::new(settings, listeners, hooks).run())
}

/// The delay before starting a worker after `failures` workers in a row crashed before their
/// first heartbeat: none after the first, then 0.1 s doubling up to 5 s.
fn backoff(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis(100 << (n - 2).min(6)).min(Duration::from_secs(5)),
    }
}

/// How often a worker beats for a given `timeout`.
fn heartbeat_interval(timeout: Duration) -> Duration {
    if timeout.is_zero() {
        Duration::from_secs(1)
    } else {
        (timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(1))
    }
}

/// What a worker's watcher task reports to the master.
#[derive(Debug)]
enum Event {
    /// The worker sent a heartbeat.
    Beat(u32),
    /// The worker exited and was reaped.
    Exited(u32, io::Result<ExitStatus>),
}

/// Where a worker stands with the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Serving.
    No,
    /// Asked to stop; killed if still there at the instant given.
    Asked(Instant),
    /// Killed after missing its heartbeat.
    Aborted,
    /// Killed after not stopping in time.
    Killed,
}

/// A worker, as the master sees it.
#[derive(Debug)]
struct Worker {
    pid: u32,
    /// The reload count when it started: workers of an older generation run older settings.
    generation: u64,
    last_beat: Instant,
    /// Whether it has sent a heartbeat yet.
    ready: bool,
    stop: Stop,
    /// To the watcher task, which signals the worker only while it has not been reaped, so
    /// a reused pid is never signalled.
    signals: mpsc::UnboundedSender<Signal>,
}

impl Worker {
    fn signal(&self, signal: Signal) {
        // The watcher is gone only when the worker has exited, and then no signal is needed.
        let _ = self.signals.send(signal);
    }

    fn ask_to_stop(&mut self, signal: Signal, deadline: Instant) {
        match self.stop {
            Stop::No => self.stop = Stop::Asked(deadline),
            Stop::Asked(earlier) => self.stop = Stop::Asked(earlier.min(deadline)),
            Stop::Aborted | Stop::Killed => return,
        }
        self.signal(signal);
    }
}

/// The master's state.
struct Arbiter {
    settings: Settings,
    /// Emptied when the master stops, so connections are refused once the workers close theirs.
    listeners: Vec<Listener>,
    hooks: Arc<dyn Hooks>,
    /// By id, so the oldest come first.
    workers: BTreeMap<u32, Worker>,
    /// How many workers to run: `workers` from the settings, moved by `TTIN` and `TTOU`.
    target: usize,
    generation: u64,
    next_id: u32,
    /// Workers in a row that crashed before their first heartbeat.
    failed_boots: u32,
    /// No worker is started before this instant (the back-off).
    spawn_after: Instant,
    announced_ready: bool,
    /// Set once the master stops: whether gracefully.
    stopping: Option<bool>,
    exit_status: u8,
    events: mpsc::UnboundedReceiver<Event>,
    events_sender: mpsc::UnboundedSender<Event>,
}

impl Arbiter {
    fn new(settings: Settings, listeners: Vec<Listener>, hooks: Arc<dyn Hooks>) -> Arbiter {
        let (events_sender, events) = mpsc::unbounded_channel();
        Arbiter {
            target: settings.workers.max(1),
            settings,
            listeners,
            hooks,
            workers: BTreeMap::new(),
            generation: 0,
            next_id: 1,
            failed_boots: 0,
            spawn_after: Instant::now(),
            announced_ready: false,
            stopping: None,
            exit_status: 0,
            events,
            events_sender,
        }
    }

    async fn run(mut self) -> ExitCode {
        let mut signals = match Signals::new() {
            Ok(signals) => signals,
            Err(error) => {
                tracing::error!("cannot handle signals: {error}");
                return ExitCode::FAILURE;
            }
        };
        let pidfile = match self.write_pidfile() {
            Ok(pidfile) => pidfile,
            Err(error) => {
                tracing::error!("cannot write the pidfile: {error}");
                return ExitCode::FAILURE;
            }
        };
        let addresses: Vec<String> = self.listeners.iter().map(Listener::describe).collect();
        tracing::info!(
            "rwgi-server {} listening on {} (master pid {}, {} worker(s))",
            env!("CARGO_PKG_VERSION"),
            addresses.join(", "),
            std::process::id(),
            self.target
        );
        loop {
            self.manage();
            if self.stopping.is_some() && self.workers.is_empty() {
                break;
            }
            let wake = self.next_wake();
            tokio::select! {
                signal = signals.recv() => self.on_signal(signal),
                Some(event) = self.events.recv() => self.on_event(event),
                () = sleep_until(wake) => {}
            }
            self.check_deadlines(Instant::now());
        }
        if let Some(path) = pidfile {
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!("cannot remove the pidfile {}: {error}", path.display());
            }
        }
        tracing::info!("master {} exiting", std::process::id());
        self.hooks.on_exit();
        ExitCode::from(self.exit_status)
    }

    fn write_pidfile(&self) -> io::Result<Option<PathBuf>> {
        let Some(path) = &self.settings.pidfile else {
            return Ok(None);
        };
        std::fs::write(path, format!("{}\n", std::process::id()))?;
        Ok(Some(path.clone()))
    }

    /// When the master next has to look at the clock: heartbeats, stop deadlines, back-off.
    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let tick = (self.settings.timeout / 8)
            .clamp(Duration::from_millis(20), Duration::from_millis(500));
        let mut wake = now + tick;
        if self.stopping.is_none() && self.spawn_after > now {
            wake = wake.min(self.spawn_after);
        }
        wake
    }

    fn on_signal(&mut self, signal: Signal) {
        match signal {
            Signal::TERM | Signal::INT => self.stop(true),
            Signal::QUIT => self.stop(false),
            _ if self.stopping.is_some() => {}
            Signal::HUP => self.reload(),
            Signal::TTIN => {
                self.target += 1;
                tracing::info!("{} worker(s) wanted", self.target);
            }
            Signal::TTOU => {
                self.target = self.target.saturating_sub(1).max(1);
                tracing::info!("{} worker(s) wanted", self.target);
            }
            Signal::USR1 => {
                for worker in self.workers.values() {
                    worker.signal(Signal::USR1);
                }
                crate::log::reopen_error_log();
            }
            _ => {}
        }
    }

    fn stop(&mut self, graceful: bool) {
        if self.stopping == Some(false) || self.stopping == Some(graceful) {
            return;
        }
        tracing::info!(
            "master {} stopping {}",
            std::process::id(),
            if graceful { "gracefully" } else { "now" }
        );
        self.stopping = Some(graceful);
        self.listeners.clear();
        let (signal, deadline) = if graceful {
            (
                Signal::TERM,
                Instant::now() + self.settings.graceful_timeout + STOP_MARGIN,
            )
        } else {
            (Signal::QUIT, Instant::now() + QUIT_GRACE)
        };
        for worker in self.workers.values_mut() {
            worker.ask_to_stop(signal, deadline);
        }
    }

    fn reload(&mut self) {
        let settings = match Settings::load() {
            Ok(settings) => settings,
            Err(error) => {
                tracing::error!("reload: keeping the current settings: {error}");
                return;
            }
        };
        if settings.bind != self.settings.bind {
            tracing::warn!(
                "reload: a changed bind takes effect on a restart; the sockets are kept"
            );
        }
        self.hooks.on_reload();
        self.target = settings.workers.max(1);
        self.settings = settings;
        self.generation += 1;
        self.failed_boots = 0;
        self.spawn_after = Instant::now();
        tracing::info!("reload: starting {} new worker(s)", self.target);
    }

    /// Starts and stops workers until the current generation has `target` of them, and retires
    /// older generations once it is ready.
    fn manage(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let current: Vec<u32> = self
            .workers
            .iter()
            .filter(|(_, worker)| worker.generation == self.generation && worker.stop == Stop::No)
            .map(|(&id, _)| id)
            .collect();
        if current.len() > self.target {
            let deadline = Instant::now() + self.settings.graceful_timeout + STOP_MARGIN;
            for id in &current[..current.len() - self.target] {
                if let Some(worker) = self.workers.get_mut(id) {
                    worker.ask_to_stop(Signal::TERM, deadline);
                }
            }
        } else if Instant::now() >= self.spawn_after {
            for _ in current.len()..self.target {
                if let Err(error) = self.spawn() {
                    tracing::error!("cannot start a worker: {error}");
                    self.failed_boots += 1;
                    self.spawn_after =
                        Instant::now() + backoff(self.failed_boots).max(Duration::from_millis(100));
                    break;
                }
            }
        }

        let ready = self
            .workers
            .values()
            .filter(|worker| {
                worker.generation == self.generation && worker.stop == Stop::No && worker.ready
            })
            .count();
        if ready < self.target {
            return;
        }
        let deadline = Instant::now() + self.settings.graceful_timeout + STOP_MARGIN;
        for worker in self.workers.values_mut() {
            if worker.generation < self.generation {
                worker.ask_to_stop(Signal::TERM, deadline);
            }
        }
        if !self.announced_ready {
            self.announced_ready = true;
            tracing::info!("ready: {ready} worker(s) serving");
            let addresses: Vec<String> = self.listeners.iter().map(Listener::describe).collect();
            self.hooks.when_ready(&addresses);
        }
    }

    fn spawn(&mut self) -> io::Result<()> {
        let id = self.next_id;
        let (ours, theirs) = UnixStream::pair()?;
        // Everything that can fail before the worker exists fails here, so that every worker
        // started is watched.
        ours.set_nonblocking(true)?;
        let channel = tokio::net::UnixStream::from_std(ours)?;
        let mut command = Command::new(std::env::current_exe()?);
        let mut args = std::env::args_os();
        if let Some(name) = args.next() {
            command.arg0(name);
        }
        command
            .args(args)
            .env(WORKER_ID_ENV, id.to_string())
            .env(
                HEARTBEAT_ENV,
                heartbeat_interval(self.settings.timeout)
                    .as_millis()
                    .to_string(),
            )
            .stdin(Stdio::from(OwnedFd::from(theirs)));
        let mut child = command.spawn()?;
        // Our copy of the worker's end of the socket goes with the command.
        drop(command);
        // A fresh socket's buffer takes the message at once, nonblocking or not.
        if let Err(error) = send_listeners(&channel, self.listeners.iter().map(Listener::as_fd)) {
            // It cannot serve without them, or has exited already. Either way its exit status
            // tells how to go on, as for a worker that failed by itself.
            tracing::error!("cannot hand worker {id} its sockets: {error}");
            let _ = child.start_kill();
        }

        self.next_id += 1;
        let pid = child.id().unwrap_or_default();
        let (signals, signal_receiver) = mpsc::unbounded_channel();
        tokio::spawn(watch(
            id,
            child,
            channel,
            signal_receiver,
            self.events_sender.clone(),
        ));
        self.workers.insert(
            id,
            Worker {
                pid,
                generation: self.generation,
                last_beat: Instant::now(),
                ready: false,
                stop: Stop::No,
                signals,
            },
        );
        tracing::info!("worker {id} started, pid {pid}");
        self.hooks.worker_spawned(id, pid);
        Ok(())
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Beat(id) => {
                if let Some(worker) = self.workers.get_mut(&id) {
                    worker.last_beat = Instant::now();
                    if !worker.ready {
                        worker.ready = true;
                        self.failed_boots = 0;
                    }
                }
            }
            Event::Exited(id, status) => {
                let Some(worker) = self.workers.remove(&id) else {
                    return;
                };
                self.on_exit(id, &worker, status);
                self.hooks.worker_exited(id, worker.pid);
            }
        }
    }

    fn on_exit(&mut self, id: u32, worker: &Worker, status: io::Result<ExitStatus>) {
        let pid = worker.pid;
        let status = match status {
            Ok(status) => status,
            Err(error) => {
                tracing::error!("worker {id} (pid {pid}) lost: {error}");
                return;
            }
        };
        let crashed = match (worker.stop, status.code()) {
            (Stop::Asked(_) | Stop::Killed, _) => {
                tracing::info!("worker {id} (pid {pid}) stopped: {status}");
                false
            }
            (Stop::Aborted, _) => {
                tracing::info!("worker {id} (pid {pid}) killed: {status}");
                true
            }
            (Stop::No, Some(0)) => {
                tracing::info!("worker {id} (pid {pid}) exited by itself (recycled)");
                false
            }
            (Stop::No, Some(code)) if code == i32::from(EXIT_BOOT_FAILED) && !worker.ready => {
                let previous_serving = self
                    .workers
                    .values()
                    .any(|other| other.generation < worker.generation && other.stop == Stop::No);
                if previous_serving {
                    tracing::error!(
                        "worker {id} (pid {pid}) failed to boot with the reloaded settings; \
                         the previous workers serve on"
                    );
                    true
                } else {
                    tracing::error!("worker {id} (pid {pid}) failed to boot: stopping the server");
                    self.exit_status = EXIT_BOOT_FAILED;
                    self.stop(true);
                    false
                }
            }
            (Stop::No, _) => {
                tracing::error!("worker {id} (pid {pid}) crashed: {status}");
                true
            }
        };
        if crashed && !worker.ready {
            self.failed_boots += 1;
            self.spawn_after = Instant::now() + backoff(self.failed_boots);
        }
    }

    /// Kills the workers whose heartbeat stopped and those that outstayed their stop deadline.
    fn check_deadlines(&mut self, now: Instant) {
        let timeout = self.settings.timeout;
        for (&id, worker) in &mut self.workers {
            match worker.stop {
                Stop::No | Stop::Asked(_)
                    if !timeout.is_zero() && now.duration_since(worker.last_beat) > timeout =>
                {
                    tracing::error!(
                        "worker {id} (pid {}) sent no heartbeat for {timeout:?}: killing it",
                        worker.pid
                    );
                    worker.stop = Stop::Aborted;
                    worker.signal(Signal::KILL);
                    self.hooks.worker_aborted(id, worker.pid);
                }
                Stop::Asked(deadline) if now >= deadline => {
                    tracing::warn!(
                        "worker {id} (pid {}) did not stop in time: killing it",
                        worker.pid
                    );
                    worker.stop = Stop::Killed;
                    worker.signal(Signal::KILL);
                }
                _ => {}
            }
        }
    }
}

/// Sends the listening sockets over a worker's channel.
fn send_listeners<'a>(
    channel: &impl AsFd,
    listeners: impl Iterator<Item = BorrowedFd<'a>>,
) -> io::Result<()> {
    let fds: Vec<BorrowedFd<'_>> = listeners.collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_LISTENERS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if fds.len() > MAX_LISTENERS || !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("at most {MAX_LISTENERS} listening sockets can be handed to workers"),
        ));
    }
    let sent = sendmsg(
        channel,
        &[IoSlice::new(GREETING)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    if sent != GREETING.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the worker took part of its sockets",
        ));
    }
    Ok(())
}

/// Receives what [`send_listeners`] sent.
fn receive_listeners(channel: &impl AsFd) -> io::Result<Vec<OwnedFd>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut greeting = [0; GREETING.len()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_LISTENERS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = recvmsg(
        channel,
        &mut [IoSliceMut::new(&mut greeting)],
        &mut control,
        RecvFlags::empty(),
    )?;
    let mut listeners = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            listeners.extend(fds);
        }
    }
    // Close-on-exec, so programs the app starts do not inherit them (set here rather than
    // with `MSG_CMSG_CLOEXEC`, which not every Unix has; nothing runs a program meanwhile).
    for listener in &listeners {
        fcntl_setfd(listener, FdFlags::CLOEXEC)?;
    }
    if received.bytes != GREETING.len() || greeting != GREETING {
        return Err(invalid("the master sent no listening sockets"));
    }
    if received.flags.contains(ReturnFlags::CTRUNC) {
        return Err(invalid("the master sent more listening sockets than fit"));
    }
    Ok(listeners)
}

/// Watches one worker: relays its heartbeats, signals it on the master's behalf while it
/// lives, and reports its exit.
async fn watch(
    id: u32,
    mut child: Child,
    channel: tokio::net::UnixStream,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut channel = Some(channel);
    let mut beats = [0; 64];
    loop {
        tokio::select! {
            status = child.wait() => {
                let _ = events.send(Event::Exited(id, status));
                return;
            }
            Some(signal) = signals.recv() => {
                // `id()` is `None` once the child is reaped.
                let pid = child.id().and_then(|pid| Pid::from_raw(i32::try_from(pid).ok()?));
                if let Some(pid) = pid {
                    let _ = kill_process(pid, signal);
                }
            }
            read = read_beats(&mut channel, &mut beats) => match read {
                Ok(n) if n > 0 => {
                    let _ = events.send(Event::Beat(id));
                }
                // The worker closed its end: it is exiting, and `wait` will say how.
                _ => channel = None,
            }
        }
    }
}

/// Reads heartbeats; never completes once the channel is closed.
async fn read_beats(
    channel: &mut Option<tokio::net::UnixStream>,
    buffer: &mut [u8],
) -> io::Result<usize> {
    match channel {
        Some(channel) => channel.read(buffer).await,
        None => std::future::pending().await,
    }
}

/// The signals the master handles.
struct Signals(Vec<(Signal, tokio::signal::unix::Signal)>);

impl Signals {
    fn new() -> io::Result<Signals> {
        let handled = [
            Signal::TERM,
            Signal::INT,
            Signal::QUIT,
            Signal::HUP,
            Signal::TTIN,
            Signal::TTOU,
            Signal::USR1,
        ];
        let mut streams = Vec::with_capacity(handled.len());
        for signal in handled {
            streams.push((
                signal,
                tokio::signal::unix::signal(SignalKind::from_raw(signal.as_raw()))?,
            ));
        }
        Ok(Signals(streams))
    }

    /// The next signal received.
    async fn recv(&mut self) -> Signal {
        poll_fn(|cx| {
            for (signal, stream) in &mut self.0 {
                if stream.poll_recv(cx).is_ready() {
                    return Poll::Ready(*signal);
                }
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use rustix::io::fcntl_getfd;

    use super::*;

    #[test]
    fn backoff_is_none_after_one_failure_then_doubles_up_to_five_seconds() {
        let delays: Vec<u64> = (0..10).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(delays, [0, 0, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn heartbeats_come_four_times_per_timeout_at_most_a_second_apart() {
        assert_eq!(
            heartbeat_interval(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        assert_eq!(
            heartbeat_interval(Duration::from_secs(30)),
            Duration::from_secs(1)
        );
        assert_eq!(heartbeat_interval(Duration::ZERO), Duration::from_secs(1));
    }

    #[test]
    fn listeners_travel_over_the_channel_and_arrive_close_on_exec() {
        let (master, worker) = UnixStream::pair().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        send_listeners(&master, std::iter::once(listener.as_fd())).unwrap();
        drop(listener);

        let mut fds = receive_listeners(&worker).unwrap();
        assert_eq!(fds.len(), 1);
        assert_eq!(fcntl_getfd(&fds[0]).unwrap(), FdFlags::CLOEXEC);
        // The received descriptor is the same socket: it accepts a connection made to it.
        let received = std::net::TcpListener::from(fds.pop().unwrap());
        assert_eq!(received.local_addr().unwrap(), address);
        let _client = std::net::TcpStream::connect(address).unwrap();
        received.accept().unwrap();
    }
}
